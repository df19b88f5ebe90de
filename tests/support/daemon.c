// SPDX-License-Identifier: MIT
/*
 * daemon.c - the real hvnotifyd for tests, and a frontend session on it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

int hvnd_timeout_ms = 5000;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* The log as one string (malloc'd), or NULL. */
static char *read_log(const struct hvnd *d)
{
	FILE *f = fopen(d->log, "re");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

unsigned int hvnd_log_count(const struct hvnd *d, const char *needle)
{
	char *log = read_log(d), *p;
	unsigned int n = 0;

	for (p = log; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(log);
	return n;
}

bool hvnd_log_wait(const struct hvnd *d, const char *needle, unsigned int n, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		if (hvnd_log_count(d, needle) >= n)
			return true;
		if (now_ms() > end)
			return false;
		usleep(2000);
	}
}

void hvnd_log_dump(const struct hvnd *d, unsigned int lines)
{
	char *log = read_log(d), *p;
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
	long long end = now_ms() + timeout_ms;
	unsigned int n = 0;
	int fd, r;

	d->pid = 0;
	snprintf(d->log, sizeof(d->log), "%s", log);
	if (!bin)
		return -ENOENT;
	argv[n++] = bin;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
		/* Only stdio: the descriptors the daemon counts are its own. */
		dup2(fd, 1);
		dup2(fd, 2);
		close_range(3, ~0u, 0);
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
		if (now_ms() > end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

int hvnd_wait(struct hvnd *d, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int r;

	if (d->pid <= 0)
		return -ESRCH;
	for (;;) {
		r = reap(d, WNOHANG);
		if (r >= 0)
			return r;
		if (now_ms() > end)
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
	char path[64];
	FILE *p;
	int n = 0, c;

	/* ls, not opendir: no descriptor of ours to tell apart (it is
	 * another process's directory anyway). */
	snprintf(path, sizeof(path), "ls -1 /proc/%d/fd 2>/dev/null", (int)pid);
	p = popen(path, "re");
	if (!p)
		return -1;
	while ((c = fgetc(p)) != EOF)
		n += c == '\n';
	return pclose(p) == 0 ? n : -1;
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

/* ---- a frontend session ---- */

int sess_open(struct hvnd_session *s, struct gmem *g, const char *sock, int timeout_ms,
	      unsigned int *refused)
{
	struct hvn_mem_region reg[GMEM_MAX_REGIONS];
	struct hvn_vu_frontend_info info;
	long long end = now_ms() + timeout_ms;
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
		if (now_ms() > end)
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
