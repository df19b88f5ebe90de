// SPDX-License-Identifier: MIT
/*
 * daemon.c - the real hvnotifyd for tests, and a frontend session on it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

int hvnd_timeout_ms = 5000;

long long hvnd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* ---- the scratch directory ---- */

/* One per test program: the atexit handler needs to find it. */
static struct hvnd *scratch_owner;

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

static void scratch_cleanup(void)
{
	struct hvnd *d = scratch_owner;
	const char *keep = getenv("HVN_KEEP");

	if (!d)
		return;
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	if (keep && !strcmp(keep, "1"))
		printf("kept %s\n", d->dir);
	else
		remove_tree(d->dir);
}

void hvnd_scratch(struct hvnd *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/hvn-%s-XXXXXX", name);
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(d->log, sizeof(d->log), "%s/hvnotifyd.log", d->dir);
	scratch_owner = d;
	atexit(scratch_cleanup);
}

const char *hvnd_path(const struct hvnd *d, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", d->dir, file);
	return buf;
}

int hvnd_image(const struct hvnd *d, const char *file, unsigned long long size, char *path,
	       size_t len)
{
	int fd, r = 0;

	hvnd_path(d, file, path, len);
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		r = -errno;
	close(fd);
	return r;
}

const char *hvnd_binary(void)
{
	static char path[4096];
	const char *top = getenv("top_builddir"), *bin = getenv("HVND_BINARY");

	if (bin && *bin)
		return bin;
	if (!top || !*top)
		return NULL;
	snprintf(path, sizeof(path), "%s/daemon/hvnotifyd", top);
	return path;
}

char *hvnd_log_text(const struct hvnd *d)
{
	FILE *f = fopen(d->log, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

unsigned int hvnd_log_count(const struct hvnd *d, const char *needle)
{
	char *log = hvnd_log_text(d), *p;
	unsigned int n = 0;

	for (p = log; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(log);
	return n;
}

bool hvnd_log_wait(const struct hvnd *d, const char *needle, unsigned int n, int timeout_ms)
{
	long long end = hvnd_now_ms() + timeout_ms;

	for (;;) {
		if (hvnd_log_count(d, needle) >= n)
			return true;
		if (hvnd_now_ms() > end)
			return false;
		usleep(2000);
	}
}

void hvnd_log_dump(const struct hvnd *d, unsigned int lines)
{
	char *log = hvnd_log_text(d), *p;
	unsigned int n = 0;

	if (!log)
		return;
	/* Back from the end to the start of the last `lines` lines. */
	for (p = log + strlen(log); p > log; p--)
		if (p[-1] == '\n' && p[0] && ++n > lines)
			break;
	printf("---- %s (last %u lines) ----\n%s", d->log, lines, p);
	free(log);
}

long hvnd_log_mark(const struct hvnd *d)
{
	struct stat st;

	return stat(d->log, &st) == 0 ? (long)st.st_size : 0;
}

/* Look once through the complete lines after mark. */
static bool find_once(const struct hvnd *d, long mark, const char *const *needles, char *out,
		      size_t len)
{
	FILE *f = fopen(d->log, "re");
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

bool hvnd_log_find(const struct hvnd *d, long mark, const char *const *needles, char *line,
		   size_t len, int timeout_ms)
{
	long long deadline = hvnd_now_ms() + timeout_ms;

	for (;;) {
		if (find_once(d, mark, needles, line, len))
			return true;
		if (hvnd_now_ms() >= deadline)
			return false;
		usleep(5000);
	}
}

bool hvnd_log_has(const struct hvnd *d, long mark, const char *needle, char *line, size_t len,
		  int timeout_ms)
{
	const char *needles[2] = { needle, NULL };

	return hvnd_log_find(d, mark, needles, line, len, timeout_ms);
}

void hvnd_log_dump_from(const struct hvnd *d, long mark)
{
	FILE *f = fopen(d->log, "re");
	char line[2048];

	if (!f)
		return;
	if (fseek(f, mark, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f))
			printf("    | %s", line);
	fclose(f);
	fflush(stdout);
}

/* Reap the daemon if it exited: its status as hvnd_stop() says it, or -1. */
static int reap(struct hvnd *d, int flags)
{
	int status;

	if (d->pid <= 0 || waitpid(d->pid, &status, flags) != d->pid)
		return -1;
	d->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int hvnd_start(struct hvnd *d, const char *log, const char *const *args, int timeout_ms)
{
	const char *bin = hvnd_binary();
	const char *argv[64];
	long long end = hvnd_now_ms() + timeout_ms;
	unsigned int n = 0;
	int fd, r;

	d->pid = 0;
	if (log)
		snprintf(d->log, sizeof(d->log), "%s", log);
	else if (!d->log[0])
		return -EINVAL;		/* no hvnd_scratch() either */
	if (!bin)
		return -ENOENT;
	argv[n++] = bin;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	fflush(stdout);
	d->pid = fork();
	if (d->pid < 0) {
		r = -errno;
		close(fd);
		d->pid = 0;
		return r;
	}
	if (d->pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		/* No daemon outlives a test that died (atexit handlers do not
		 * run on a signal). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Only stdio: the descriptors the daemon counts are its own. */
		if (null >= 0)
			dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close_range(3, ~0u, 0);
		/* Its log lines as a terminal gets them, not the journal's "<6>". */
		unsetenv("JOURNAL_STREAM");
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fd);
	for (;;) {
		if (hvnd_log_count(d, " ready (pid "))
			return 0;
		r = reap(d, WNOHANG);
		if (r >= 0)
			return r > 0 ? r : 256;	/* exited 0 without being ready: odd */
		if (hvnd_now_ms() > end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

bool hvnd_running(struct hvnd *d)
{
	int r;

	if (d->pid <= 0)
		return false;
	r = reap(d, WNOHANG);
	if (r >= 0)
		printf("hvnotifyd is gone: status %d\n", r);
	return r < 0;
}

int hvnd_wait(struct hvnd *d, int timeout_ms)
{
	long long end = hvnd_now_ms() + timeout_ms;
	int r;

	if (d->pid <= 0)
		return -ESRCH;
	for (;;) {
		r = reap(d, WNOHANG);
		if (r >= 0)
			return r;
		if (hvnd_now_ms() > end)
			break;
		usleep(2000);
	}
	kill(d->pid, SIGKILL);
	reap(d, 0);
	return -ETIMEDOUT;
}

int hvnd_stop(struct hvnd *d, int timeout_ms)
{
	if (d->pid <= 0)
		return -ESRCH;
	kill(d->pid, SIGTERM);
	return hvnd_wait(d, timeout_ms);
}

int proc_fd_count(pid_t pid)
{
	struct fd_census c;

	return fd_census(pid, NULL, 0, &c) == 0 ? c.total : -1;
}

long proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

long proc_map_count(pid_t pid)
{
	char path[64];
	long n = 0;
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* The counter an eventfd holds, from fdinfo; -1 if fd is not an eventfd. */
static long long eventfd_count(pid_t pid, const char *fd)
{
	char path[300], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	f = fopen(path, "re");
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
	char path[64], line[1024];
	struct dirent *e;
	FILE *f;
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
	f = fopen(path, "re");
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
	return 0;
}

/* ---- a frontend session ---- */

int sess_open(struct hvnd_session *s, struct gmem *g, const char *sock, int timeout_ms,
	      unsigned int *refused)
{
	struct hvn_mem_region reg[GMEM_MAX_REGIONS];
	struct hvn_vu_frontend_info info;
	long long end = hvnd_now_ms() + timeout_ms;
	unsigned int i;
	int r;

	memset(s, 0, sizeof(*s));
	s->g = g;
	s->kick = s->call = s->err = -1;
	for (;;) {
		struct hvn_vu_frontend_opts o = { .timeout_ms = (uint32_t)hvnd_timeout_ms };

		r = hvn_vu_frontend_connect(&s->fe, sock, &o);
		if (r == 0)
			break;
		/* The device still winds up the previous frontend (it refuses
		 * a second one by closing it), or it has not listened yet. */
		if (refused)
			(*refused)++;
		if (hvnd_now_ms() > end)
			return r;
		usleep(500);
	}
	r = hvn_vu_frontend_info(s->fe, &info);
	if (r < 0)
		goto fail;
	s->features = HVN_VQ_F_VERSION_1 | VBLK_F_FLUSH;
	if ((info.features & s->features) != s->features) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	r = hvn_vu_frontend_set_features(s->fe, s->features);
	if (r < 0)
		goto fail;
	for (i = 0; i < g->count; i++)
		gmem_region(g, i, &reg[i]);
	r = hvn_vu_frontend_set_mem_table(s->fe, reg, g->count, 0);
	if (r < 0)
		goto fail;
	s->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->kick < 0 || s->call < 0 || s->err < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	sess_close(s);
	return r;
}

int sess_start(struct hvnd_session *s)
{
	struct hvn_vu_frontend_vring vr = {
		.num = SESS_QSIZE, .kick_fd = s->kick, .call_fd = s->call, .err_fd = s->err,
	};
	int r;

	if (!s->ring) {
		r = vrd_init(&s->d, s->g, SESS_QSIZE, SESS_RING, 0);
		if (r < 0)
			return r;
		s->ring = true;
		r = blk_queue_init(&s->q, &s->d, SESS_META, s->kick, s->call);
		if (r < 0)
			return r;
	}
	vr.base = s->made;
	vrd_addr(&s->d, false, &vr.addr);
	vr.addr.flags = 0;	/* frontend virtual addresses, no logging */
	r = hvn_vu_frontend_start_queue(s->fe, 0, &vr);
	if (r == 0)
		s->running = true;
	return r;
}

int sess_io(struct hvnd_session *s, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len)
{
	struct vrd_buf b = { gpa, len };

	s->made++;
	return blk_do(&s->q, type, sector, &b, len ? 1 : 0, false, NULL, hvnd_timeout_ms);
}

int sess_stop(struct hvnd_session *s)
{
	uint32_t base = 0xdead;
	int r = hvn_vu_frontend_stop_queue(s->fe, 0, &base);

	s->running = false;
	if (r < 0)
		return r;
	return (uint16_t)base == (uint16_t)s->made ? 0 : -EPROTO;
}

void sess_close(struct hvnd_session *s)
{
	hvn_vu_frontend_close(s->fe);
	s->fe = NULL;
	if (s->kick >= 0)
		close(s->kick);
	if (s->call >= 0)
		close(s->call);
	if (s->err >= 0)
		close(s->err);
	s->kick = s->call = s->err = -1;
	if (s->ring)
		vrd_free(&s->d);
	s->ring = s->running = false;
}
