// SPDX-License-Identifier: MIT
/*
 * blk_load.c - guest queues behind a frontend, and a steady load on them
 * (see blk_load.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "blk_load.h"

#define IO_TIMEOUT_MS 10000

static void close_fds(struct gq *q)
{
	if (q->kick >= 0)
		close(q->kick);
	if (q->call >= 0)
		close(q->call);
	if (q->err >= 0)
		close(q->err);
	q->kick = q->call = q->err = -1;
}

int gq_start(struct hvn_vu_frontend *fe, struct gq *q)
{
	struct hvn_vu_frontend_vring vr = { .num = q->num, .base = 0 };
	int r;

	r = vrd_init(&q->d, q->g, q->num, q->ring, q->features);
	if (r < 0)
		return r;
	q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick < 0 || q->call < 0 || q->err < 0) {
		r = -errno;
		goto fail;
	}
	r = blk_queue_init(&q->q, &q->d, q->meta, q->kick, q->call);
	if (r < 0)
		goto fail;
	vr.kick_fd = q->kick;
	vr.call_fd = q->call;
	vr.err_fd = q->err;
	vrd_addr(&q->d, false, &vr.addr);
	vr.addr.flags = 0;	/* frontend virtual addresses, no dirty log */
	r = hvn_vu_frontend_start_queue(fe, q->index, &vr);
	if (r == 0)
		return 0;
fail:
	close_fds(q);
	vrd_free(&q->d);
	return r;
}

int gq_stop(struct hvn_vu_frontend *fe, struct gq *q, uint32_t *base)
{
	int r = hvn_vu_frontend_stop_queue(fe, q->index, base);

	/* QEMU hands new eventfds at every start: these are done with. */
	gq_drop(q);
	return r;
}

void gq_drop(struct gq *q)
{
	close_fds(q);
	vrd_free(&q->d);
}

static uint8_t pat(uint64_t byte, unsigned int seed)
{
	return (uint8_t)(seed * 37u + byte * 7u + (byte >> 9) * 13u + 1u);
}

int gq_write_read(struct gq *q, uint64_t sector, uint32_t len, unsigned int seed, char *why,
		  size_t why_len)
{
	struct vrd_buf w = { q->wbuf, len }, rd = { q->rbuf, len };
	uint8_t *wp = gmem_ptr(q->g, q->wbuf, len), *rp = gmem_ptr(q->g, q->rbuf, len);
	uint32_t used = 0, i;
	int st;

	if (!wp || !rp) {
		snprintf(why, why_len, "%s: buffers outside guest memory", q->name);
		return -1;
	}
	for (i = 0; i < len; i++)
		wp[i] = pat(sector * VBLK_SECTOR_SIZE + i, seed);
	st = blk_do(&q->q, VBLK_T_OUT, sector, &w, 1, false, &used, IO_TIMEOUT_MS);
	if (st != VBLK_S_OK) {
		snprintf(why, why_len, "%s: OUT at sector %llu: %d", q->name,
			 (unsigned long long)sector, st);
		return -1;
	}
	memset(rp, 0xa5, len);
	st = blk_do(&q->q, VBLK_T_IN, sector, &rd, 1, false, &used, IO_TIMEOUT_MS);
	if (st != VBLK_S_OK || used != len + 1) {
		snprintf(why, why_len, "%s: IN at sector %llu: status %d, used length %u", q->name,
			 (unsigned long long)sector, st, used);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (rp[i] != pat(sector * VBLK_SECTOR_SIZE + i, seed)) {
			snprintf(why, why_len, "%s: byte %u read back from sector %llu differs",
				 q->name, i, (unsigned long long)sector);
			return -1;
		}
	return 0;
}

/* ---- the load thread ---- */

#define LOAD_MAX 8
static struct gq *load[LOAD_MAX];
static unsigned int nload;
static atomic_int stop_flag;
static pthread_t thread;
static bool running;

static void *load_main(void *arg)
{
	unsigned int iter = 0, i;

	(void)arg;
	while (!atomic_load(&stop_flag)) {
		for (i = 0; i < nload; i++) {
			struct gq *q = load[i];
			char why[256];

			/* A queue that failed once is out of step: leave it. */
			if (atomic_load(&q->bad))
				continue;
			if (gq_write_read(q, q->sector + (iter % 32) * 8, 4096, iter + i, why,
					  sizeof(why)) == 0) {
				atomic_fetch_add(&q->ok, 1);
			} else {
				snprintf(q->why, sizeof(q->why), "%s", why);
				atomic_fetch_add(&q->bad, 1);
			}
		}
		iter++;
	}
	return NULL;
}

int load_start(struct gq *const *queues, unsigned int n)
{
	unsigned int i;
	int r;

	if (running || n == 0 || n > LOAD_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		load[i] = queues[i];
	nload = n;
	atomic_store(&stop_flag, 0);
	r = pthread_create(&thread, NULL, load_main, NULL);
	if (r)
		return -r;
	running = true;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool load_progresses(unsigned long rounds, int timeout_ms)
{
	unsigned long start[LOAD_MAX];
	long long deadline = now_ms() + timeout_ms;
	unsigned int i, done;

	for (i = 0; i < nload; i++)
		start[i] = atomic_load(&load[i]->ok);
	do {
		for (i = 0, done = 0; i < nload; i++)
			done += atomic_load(&load[i]->ok) >= start[i] + rounds;
		if (done == nload)
			return true;
		usleep(2000);
	} while (now_ms() < deadline);
	for (i = 0; i < nload; i++)
		printf("    %s: %lu -> %lu rounds (%lu failed%s%s)\n", load[i]->name, start[i],
		       (unsigned long)atomic_load(&load[i]->ok), (unsigned long)atomic_load(&load[i]->bad),
		       load[i]->why[0] ? ": " : "", load[i]->why);
	return false;
}

void load_stop(void)
{
	if (!running)
		return;
	atomic_store(&stop_flag, 1);
	pthread_join(thread, NULL);
	running = false;
}
