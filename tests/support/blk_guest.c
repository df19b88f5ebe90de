// SPDX-License-Identifier: MIT
/*
 * blk_guest.c - a virtio-blk guest behind a vhost-user frontend (see
 * blk_guest.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk_guest.h"

static void gq_fds(struct gq *q)
{
	q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	MUST(q->kick >= 0 && q->call >= 0 && q->err >= 0, "eventfds");
}

static void gq_close_fds(struct gq *q)
{
	close(q->kick);
	close(q->call);
	close(q->err);
	q->kick = q->call = q->err = -1;
}

void gq_init(struct gq *q, struct gmem *g, unsigned int index, uint64_t ring, uint64_t meta,
	     uint64_t ind, uint64_t features)
{
	memset(q, 0, sizeof(*q));
	q->index = index;
	MUST(vrd_init(&q->d, g, GQ_SIZE, ring, features & (HVN_VQ_F_EVENT_IDX |
			 HVN_VQ_F_INDIRECT_DESC)) == 0, "ring %u at %#llx", index,
	     (unsigned long long)ring);
	if (ind)
		MUST(vrd_set_indirect_area(&q->d, ind, GQ_IND_ENTRIES) == 0, "indirect tables");
	gq_fds(q);
	MUST(blk_queue_init(&q->q, &q->d, meta, q->kick, q->call) == 0, "blk queue %u", index);
}

void gq_free(struct gq *q)
{
	gq_close_fds(q);
	vrd_free(&q->d);
}

void gq_start(struct hvn_vu_frontend *fe, struct gq *q)
{
	struct hvn_vu_frontend_vring vr = {
		.num = GQ_SIZE, .base = q->made, .kick_fd = q->kick, .call_fd = q->call,
		.err_fd = q->err,
	};
	int r;

	vrd_addr(&q->d, false, &vr.addr);
	vr.addr.flags = 0;	/* frontend virtual addresses, no logging */
	r = hvn_vu_frontend_start_queue(fe, q->index, &vr);
	MUST(r == 0, "start queue %u at base %u: %s", q->index, q->made, strerror(-r));
}

bool gq_stop(struct hvn_vu_frontend *fe, struct gq *q)
{
	uint32_t base = 0xdead;
	int r = hvn_vu_frontend_stop_queue(fe, q->index, &base);

	MUST(r == 0, "stop queue %u: %s", q->index, strerror(-r));
	snprintf(q->why, sizeof(q->why), "GET_VRING_BASE %u, requests made %u", base, q->made);
	/* QEMU hands new eventfds at every start; the backend dropped these. */
	gq_close_fds(q);
	gq_fds(q);
	q->q.kick_fd = q->kick;
	q->q.call_fd = q->call;
	return base == (q->made & 0xffff);
}

int gq_do_bufs(struct gq *q, uint32_t type, uint64_t sector, const struct vrd_buf *bufs,
	       unsigned int n, bool indirect, uint32_t *used)
{
	q->made++;
	return blk_do(&q->q, type, sector, bufs, n, indirect, used, GQ_TIMEOUT_MS);
}

int gq_do(struct gq *q, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len,
	  uint32_t *used)
{
	struct vrd_buf b = { gpa, len };

	return gq_do_bufs(q, type, sector, &b, len ? 1 : 0, false, used);
}

/* len bytes at gpa as segs buffers: the first one short, the last one long. */
static unsigned int split(struct vrd_buf *b, unsigned int segs, uint64_t gpa, uint32_t len)
{
	uint32_t each = len / segs, first = segs > 1 && each > 3 ? each - 3 : each, off = 0;
	unsigned int i;

	for (i = 0; i < segs; i++) {
		b[i].gpa = gpa + off;
		b[i].len = i + 1 == segs ? len - off : i == 0 ? first : each;
		off += b[i].len;
	}
	return segs;
}

bool gq_write_read(struct gq *q, uint64_t sector, uint64_t wr_gpa, uint64_t rd_gpa, uint32_t len,
		   unsigned int seed, unsigned int segs, bool indirect)
{
	struct vrd_buf b[BLK_MAX_DATA];
	uint64_t at = sector * VBLK_SECTOR_SIZE;
	uint8_t *rd = gmem_ptr(q->d.mem, rd_gpa, len);
	uint32_t wr_used = 0, rd_used = 0;
	int wr, st;
	bool same;

	MUST(rd && segs >= 1 && segs <= BLK_MAX_DATA, "read buffer, %u buffers", segs);
	pat_fill(q->d.mem, wr_gpa, len, seed, at);
	wr = gq_do_bufs(q, VBLK_T_OUT, sector, b, split(b, segs, wr_gpa, len), indirect, &wr_used);
	memset(rd, 0xa5, len);
	st = gq_do_bufs(q, VBLK_T_IN, sector, b, split(b, segs, rd_gpa, len), indirect, &rd_used);
	same = pat_same(rd, len, seed, at);
	snprintf(q->why, sizeof(q->why), "OUT status %d used %u, IN status %d used %u, data %s",
		 wr, wr_used, st, rd_used, same ? "matches" : "differs");
	return wr == VBLK_S_OK && wr_used == 1 && st == VBLK_S_OK && rd_used == len + 1 && same;
}

int gq_write_batch(struct gq *q, uint64_t sector, uint64_t gpa, unsigned int n, uint32_t each,
		   unsigned int seed)
{
	struct blk_done done;
	unsigned int i, ok;
	int r;

	for (i = 0; i < n; i++) {
		uint64_t buf = gpa + (uint64_t)each * i;
		struct vrd_buf b[2];

		pat_fill(q->d.mem, buf, each, seed, (sector + (uint64_t)i * each / 512) * 512);
		r = blk_add(&q->q, VBLK_T_OUT, sector + (uint64_t)i * each / 512, b,
			    split(b, (i & 1) ? 2 : 1, buf, each), (void *)(uintptr_t)i,
			    i % 3 == 2 && q->d.ind_max);
		MUST(r >= 0, "add write %u of %u: %d", i, n, r);
		q->made++;
	}
	MUST(blk_submit(&q->q) >= 0, "submit");
	for (i = 0, ok = 0; i < n; i++) {
		r = blk_wait(&q->q, &done, GQ_TIMEOUT_MS);
		if (r < 0)
			return r;
		ok += done.status == VBLK_S_OK && done.len == 1;
	}
	return (int)ok;
}

/* ---- patterns ---- */

uint8_t pat(uint64_t at, unsigned int seed)
{
	return (uint8_t)(seed * 37u + at * 7u + (at >> 9) * 13u + 1u);
}

void pat_fill(struct gmem *g, uint64_t gpa, uint32_t len, unsigned int seed, uint64_t at)
{
	uint8_t *p = gmem_ptr(g, gpa, len);
	uint32_t i;

	MUST(p, "guest buffer %#llx+%u", (unsigned long long)gpa, len);
	for (i = 0; i < len; i++)
		p[i] = pat(at + i, seed);
}

bool pat_same(const uint8_t *p, uint32_t len, unsigned int seed, uint64_t at)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(at + i, seed))
			return false;
	return true;
}

static uint8_t *file_read(const char *path, uint64_t off, uint32_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = buf && fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

bool file_has(const char *path, uint64_t off, uint32_t len, unsigned int seed)
{
	uint8_t *buf = file_read(path, off, len);
	bool ok = buf && pat_same(buf, len, seed, off);

	free(buf);
	return ok;
}

bool file_zero(const char *path, uint64_t off, uint32_t len)
{
	uint8_t *buf = file_read(path, off, len);
	uint32_t i;
	bool ok = buf != NULL;

	for (i = 0; ok && i < len; i++)
		ok = buf[i] == 0;
	free(buf);
	return ok;
}

/* ---- eventfds ---- */

unsigned int efd_drain(int efd)
{
	uint64_t n = 0;

	return read(efd, &n, sizeof(n)) == sizeof(n) ? (unsigned int)n : 0;
}

unsigned int efd_wait(int efd, int timeout_ms)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) != 1)
		return 0;
	return efd_drain(efd);
}

/* ---- the backend process ---- */

bool in_ci(void)
{
	const char *ci = getenv("HVN_CI");

	return ci && (!strcmp(ci, "1") || !strcmp(ci, "yes") || !strcmp(ci, "true"));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool proc_alive(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

bool proc_wait(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
		if (now_ms() >= deadline)
			return false;
		usleep(10000);
	}
}

void proc_stop(pid_t *pid, int sig, int timeout_ms)
{
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, sig);
	if (!proc_wait(*pid, timeout_ms, &status)) {
		kill(*pid, SIGKILL);
		waitpid(*pid, &status, 0);
	}
	*pid = -1;
}

int vu_connect_retry(struct hvn_vu_frontend **fe, const char *path,
		     const struct hvn_vu_frontend_opts *opts, pid_t pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int r = -ENOENT;

	*fe = NULL;
	while (proc_alive(pid)) {
		r = hvn_vu_frontend_connect(fe, path, opts);
		if ((r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN) || now_ms() >= deadline)
			break;
		usleep(10000);
	}
	return r;
}
