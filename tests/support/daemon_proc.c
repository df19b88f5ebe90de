// SPDX-License-Identifier: MIT
/*
 * daemon_proc.c - hvnotifyd as a child process of a test (see daemon.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_proc.h"

/* One daemon per test program: the atexit handler needs to find it. */
static struct dproc *cleanup_daemon;

long long dproc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void remove_tree(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char path[512];

	while (dp && (e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (dp)
		closedir(dp);
	rmdir(dir);
}

static void cleanup(void)
{
	struct dproc *d = cleanup_daemon;

	if (!d)
		return;
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
	/* HVN_KEEP=1 keeps the daemon's log and images for a post-mortem. */
	if (getenv("HVN_KEEP") && !strcmp(getenv("HVN_KEEP"), "1"))
		printf("kept %s\n", d->dir);
	else
		remove_tree(d->dir);
}

void dproc_init(struct dproc *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->pid = -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/hvn-%s-XXXXXX", name);
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(d->log, sizeof(d->log), "%s/hvnotifyd.log", d->dir);
	cleanup_daemon = d;
	atexit(cleanup);
}

const char *dproc_path(struct dproc *d, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", d->dir, file);
	return buf;
}

int dproc_image(struct dproc *d, const char *file, unsigned long long size, char *path, size_t len)
{
	int fd, r = 0;

	dproc_path(d, file, path, len);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		r = -errno;
	close(fd);
	return r;
}

int dproc_start(struct dproc *d, const char *const *argv, int timeout_ms)
{
	const char *top = getenv("top_builddir");
	char bin[4096];
	const char *args[64];
	long long deadline;
	int n = 0, logfd;

	snprintf(bin, sizeof(bin), "%s/daemon/hvnotifyd", top && *top ? top : ".");
	if (access(bin, X_OK) < 0)
		return -errno;
	args[n++] = bin;
	while (*argv && n < 63)
		args[n++] = *argv++;
	args[n] = NULL;
	logfd = open(d->log, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	fflush(stdout);
	d->pid = fork();
	if (d->pid < 0) {
		close(logfd);
		return -errno;
	}
	if (d->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* Only stdin, stdout and stderr: the daemon's exit check
		 * counts every other descriptor as its own. */
		dup2(null, 0);
		dup2(null, 1);
		dup2(logfd, 2);
		closefrom(3);
		execv(bin, (char *const *)args);
		_exit(127);
	}
	close(logfd);
	deadline = dproc_now_ms() + timeout_ms;
	while (dproc_now_ms() < deadline) {
		if (!dproc_alive(d))
			return -ECHILD;
		if (dproc_log_has(d, 0, " ready (pid ", NULL, 0, 0))
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

bool dproc_alive(struct dproc *d)
{
	int status;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		printf("hvnotifyd (pid %d) is gone: status %#x\n", (int)d->pid, status);
		d->pid = -1;
		return false;
	}
	return true;
}

int dproc_stop(struct dproc *d, int timeout_ms)
{
	long long deadline = dproc_now_ms() + timeout_ms;
	int status;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	while (dproc_now_ms() < deadline) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
	d->pid = -1;
	return -1;
}

long dproc_log_mark(struct dproc *d)
{
	struct stat st;

	return stat(d->log, &st) == 0 ? (long)st.st_size : 0;
}

/* Look once through the complete lines after mark. */
static bool find_once(struct dproc *d, long mark, const char *const *needles, char *out,
		      size_t len)
{
	FILE *f = fopen(d->log, "r");
	char line[2048];
	bool found = false;

	if (!f)
		return false;
	if (fseek(f, mark, SEEK_SET) == 0) {
		while (!found && fgets(line, sizeof(line), f)) {
			const char *const *n;

			if (!strchr(line, '\n'))
				break;		/* a line still being written */
			for (n = needles; *n && strstr(line, *n); n++)
				;
			if (*n)
				continue;
			found = true;
			if (out && len) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(out, len, "%s", line);
			}
		}
	}
	fclose(f);
	return found;
}

bool dproc_log_find(struct dproc *d, long mark, const char *const *needles, char *line,
		   size_t len, int timeout_ms)
{
	long long deadline = dproc_now_ms() + timeout_ms;

	for (;;) {
		if (find_once(d, mark, needles, line, len))
			return true;
		if (dproc_now_ms() >= deadline)
			return false;
		usleep(5000);
	}
}

bool dproc_log_has(struct dproc *d, long mark, const char *needle, char *line, size_t len,
		  int timeout_ms)
{
	const char *needles[2] = { needle, NULL };

	return dproc_log_find(d, mark, needles, line, len, timeout_ms);
}

void dproc_log_dump(struct dproc *d, long mark)
{
	FILE *f = fopen(d->log, "r");
	char line[2048];

	if (!f)
		return;
	if (fseek(f, mark, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f))
			printf("    | %s", line);
	fclose(f);
	fflush(stdout);
}

/* The counter an eventfd holds, from fdinfo; -1 if fd is not an eventfd. */
static long long eventfd_count(pid_t pid, const char *fd)
{
	char path[300], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "eventfd-count: %llx", (unsigned long long *)&v) == 1)
			break;
	fclose(f);
	return v;
}

int fd_census(pid_t pid, const char *tag, unsigned long long tag_count, struct fd_census *c)
{
	char path[64];
	struct dirent *e;
	DIR *dp;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dp = opendir(path);
	if (!dp)
		return -errno;
	while ((e = readdir(dp))) {
		char link[300], target[512];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		/* Our own directory handle, when pid is this process. */
		if (pid == getpid() && atoi(e->d_name) == dirfd(dp))
			continue;
		c->total++;
		snprintf(link, sizeof(link), "/proc/%d/fd/%s", (int)pid, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;	/* closed meanwhile */
		target[n] = '\0';
		if (!strcmp(target, "anon_inode:[eventfd]")) {
			c->eventfds++;
			if (tag_count && eventfd_count(pid, e->d_name) == (long long)tag_count)
				c->tagged++;
		} else if (!strncmp(target, "/memfd:", 7)) {
			c->memfds++;
			if (tag && strstr(target, tag))
				c->tagged++;
		}
	}
	closedir(dp);

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	{
		FILE *f = fopen(path, "r");
		char line[1024];

		if (!f)
			return -errno;
		while (fgets(line, sizeof(line), f)) {
			const char *m = strstr(line, "/memfd:");

			if (!m)
				continue;
			c->maps++;
			if (tag && strstr(m, tag))
				c->maps_tagged++;
		}
		fclose(f);
	}
	return 0;
}
