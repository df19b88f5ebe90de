// SPDX-License-Identifier: MIT
/*
 * bench-floor.c - the machine's floors for a notification round trip,
 * between two threads pinned to the CPUs that the benchmark and the
 * backend use:
 *
 *   eventfd ping-pong: each side writes the other's eventfd and sleeps in
 *   poll() on its own, then reads it, which is what a kick and a call cost
 *   at best (two writes, two sleeps, two wake-ups per round trip).  The
 *   eventfds are non-blocking and waited for with poll(), as QEMU's and
 *   as hvn-bench's in interrupt mode, so that the floor and the benchmark
 *   pay for the same system calls;
 *
 *   spin ping-pong: each side spins on a cache line until the other's
 *   store shows, which is what a driver polling the used ring and a
 *   backend polling the available ring cost at best (two cache-line
 *   transfers per round trip).
 *
 * Each is run for a fixed time in batches of round trips, with the clock
 * read between batches only (reading it per round trip would add to what
 * is measured), and reported two ways: elapsed / round trips, and the
 * median over batches.  On a shared machine another process that gets one
 * of the two CPUs for a time slice stalls a ping-pong for that long: the
 * mean takes it in, the median of short batches does not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"

/* Each word on its own cache line: false sharing would be a third party. */
struct pingpong {
	_Alignas(64) _Atomic uint64_t ping;
	_Alignas(64) _Atomic uint64_t pong;
	_Alignas(64) int efd_ping, efd_pong;
	_Atomic int stop;
	int peer_cpu;
	int pin_err;
};

#define SPIN_STOP UINT64_MAX
#define SPIN_BATCH	64	/* round trips per clock read: about 25 us here */
#define EVENTFD_BATCH	8	/* about 400 us here */
#define MAX_BATCHES	(1u << 20)

/* Round-trip times of batches, ns per round trip. */
struct batches {
	double *v;
	size_t n, cap;
};

static void batch_add(struct batches *b, double rtt)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 4096;
		double *v;

		if (cap > MAX_BATCHES || !(v = realloc(b->v, cap * sizeof(*v))))
			return;		/* enough of them: the median does not move */
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = rtt;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double batch_median(struct batches *b)
{
	if (!b->n)
		return 0;
	qsort(b->v, b->n, sizeof(*b->v), cmp_double);
	return b->v[b->n / 2];
}

static void *spin_peer(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t last = 0;

	pp->pin_err = pin_thread(pp->peer_cpu);
	for (;;) {
		uint64_t v;

		while ((v = atomic_load_explicit(&pp->ping, memory_order_acquire)) == last)
			cpu_relax();
		if (v == SPIN_STOP)
			return NULL;
		atomic_store_explicit(&pp->pong, v, memory_order_release);
		last = v;
	}
}

/* Sleep until the eventfd is signalled, then take the signal. */
static int efd_wait(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (read(fd, &v, sizeof(v)) == sizeof(v))
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static void *eventfd_peer(void *arg)
{
	struct pingpong *pp = arg;
	uint64_t v;

	pp->pin_err = pin_thread(pp->peer_cpu);
	for (;;) {
		if (efd_wait(pp->efd_ping) < 0)
			return NULL;
		if (atomic_load_explicit(&pp->stop, memory_order_acquire))
			return NULL;
		v = 1;
		if (write(pp->efd_pong, &v, sizeof(v)) != sizeof(v))
			return NULL;
	}
}

/*
 * Round trips in batches, looking at the clock between batches only.
 * *seq carries the sequence over runs: a value the peer already answered
 * would be taken as answered at once.
 */
static double spin_run(struct pingpong *pp, double secs, uint64_t *seq, uint64_t *iters,
		       struct batches *bt)
{
	uint64_t i = *seq, first = *seq, t0, t1, tb, end;

	t0 = tb = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	do {
		uint64_t stop = i + SPIN_BATCH;

		for (; i < stop; i++) {
			atomic_store_explicit(&pp->ping, i + 1, memory_order_release);
			while (atomic_load_explicit(&pp->pong, memory_order_acquire) != i + 1)
				cpu_relax();
		}
		t1 = now_ns();
		if (bt)
			batch_add(bt, (double)(t1 - tb) / SPIN_BATCH);
		tb = t1;
	} while (t1 < end);
	*seq = i;
	*iters = i - first;
	return (double)(t1 - t0) / (double)(i - first);
}

static double eventfd_run(struct pingpong *pp, double secs, uint64_t *iters, int *err,
			  struct batches *bt)
{
	uint64_t i = 0, t0, t1, tb, end, v;

	t0 = tb = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	do {
		uint64_t stop = i + EVENTFD_BATCH;

		for (; i < stop; i++) {
			v = 1;
			if (write(pp->efd_ping, &v, sizeof(v)) != sizeof(v)) {
				*err = -errno;
				return 0;
			}
			if ((*err = efd_wait(pp->efd_pong)) < 0)
				return 0;
		}
		t1 = now_ns();
		if (bt)
			batch_add(bt, (double)(t1 - tb) / EVENTFD_BATCH);
		tb = t1;
	} while (t1 < end);
	*iters = i;
	return (double)(t1 - t0) / (double)i;
}

int floor_measure(int cpu, int peer_cpu, double secs, struct floor_result *out, char *why,
		  size_t why_len)
{
	struct batches spin_b = { 0 }, efd_b = { 0 };
	struct pingpong pp;
	pthread_t t;
	uint64_t v = 1, seq = 0;
	int r, err = 0;

	memset(out, 0, sizeof(*out));
	memset(&pp, 0, sizeof(pp));
	pp.peer_cpu = peer_cpu;
	r = pin_thread(cpu);
	if (r < 0) {
		snprintf(why, why_len, "cannot pin to CPU %d: %s", cpu, strerror(-r));
		return r;
	}

	/* Spin first: a blocked peer from the eventfd run would not matter,
	 * but a peer that never sleeps must not share its CPU with one. */
	r = pthread_create(&t, NULL, spin_peer, &pp);
	if (r) {
		snprintf(why, why_len, "pthread_create: %s", strerror(r));
		return -r;
	}
	/* A short run first, so that both threads are on their CPUs and the
	 * caches are warm when the measured run starts. */
	spin_run(&pp, secs / 10, &seq, &out->spin_iters, NULL);
	out->spin_rtt_ns = spin_run(&pp, secs, &seq, &out->spin_iters, &spin_b);
	out->spin_p50_ns = batch_median(&spin_b);
	free(spin_b.v);
	atomic_store_explicit(&pp.ping, SPIN_STOP, memory_order_release);
	pthread_join(t, NULL);
	if (pp.pin_err) {
		snprintf(why, why_len, "cannot pin to CPU %d: %s", peer_cpu, strerror(-pp.pin_err));
		return pp.pin_err;
	}

	pp.efd_ping = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pp.efd_pong = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pp.efd_ping < 0 || pp.efd_pong < 0) {
		err = -errno;
		snprintf(why, why_len, "eventfd: %s", strerror(errno));
		goto out;
	}
	r = pthread_create(&t, NULL, eventfd_peer, &pp);
	if (r) {
		err = -r;
		snprintf(why, why_len, "pthread_create: %s", strerror(r));
		goto out;
	}
	eventfd_run(&pp, secs / 10, &out->eventfd_iters, &err, NULL);
	if (!err)
		out->eventfd_rtt_ns = eventfd_run(&pp, secs, &out->eventfd_iters, &err, &efd_b);
	out->eventfd_p50_ns = batch_median(&efd_b);
	free(efd_b.v);
	atomic_store_explicit(&pp.stop, 1, memory_order_release);
	if (write(pp.efd_ping, &v, sizeof(v)) != sizeof(v) && !err)
		err = -errno;
	pthread_join(t, NULL);
	if (err)
		snprintf(why, why_len, "eventfd ping-pong: %s", strerror(-err));
out:
	if (pp.efd_ping >= 0)
		close(pp.efd_ping);
	if (pp.efd_pong >= 0)
		close(pp.efd_pong);
	return err;
}
