// SPDX-License-Identifier: MIT
/*
 * vq-thread.c - a guest driver thread and a device thread on one ring,
 * with real eventfds for kicks and interrupts, each side suppressing
 * notifications the way it is meant to.  Both sleep whenever they run out
 * of work, so a lost kick or a lost interrupt (a missing or misplaced
 * barrier, a re-check that does not re-check) leaves both asleep: the test
 * fails after a timeout.  Run with EVENT_IDX and with the flags, with
 * out-of-order completion, past the 16-bit wrap of every index.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

#define NUM		64
#define QD		32
#define REQUESTS	100000
#define TIMEOUT_MS	10000

struct shared {
	struct vq_env e;
	int kick, call;
	atomic_int stop;
	unsigned long kicks, interrupts, device_wakeups, driver_wakeups;
};

/* Sleep on fd until it is signalled; fail on timeout (a lost notification). */
static void wait_fd(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int r;

	do
		r = poll(&p, 1, TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		fprintf(stderr, "vq-thread: no %s in %d ms: notification lost\n", what, TIMEOUT_MS);
		exit(1);
	}
	EXPECT_EQ(r, 1);
	EXPECT_EQ(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	EXPECT_EQ(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

static void *device_thread(void *arg)
{
	struct shared *s = arg;
	struct hvn_vq *vq = s->e.vq;
	static struct iovec iov[QD][4];
	struct hvn_vq_req reqs[QD];
	struct hvn_vq_done done[QD];
	int i, n;

	for (i = 0; i < QD; i++) {
		reqs[i].iov = iov[i];
		reqs[i].max_iov = 4;
	}
	for (;;) {
		EXPECT_EQ(hvn_vq_disable_notify(vq), 0);
		while ((n = hvn_vq_pop_batch(vq, reqs, QD)) > 0) {
			/* Complete in reverse: out of order across the batch. */
			for (i = 0; i < n; i++) {
				struct hvn_vq_req *r = &reqs[n - 1 - i];
				uint32_t token;

				EXPECT_EQ(r->n_out, 1);
				EXPECT_EQ(r->iov[0].iov_len, sizeof(token));
				memcpy(&token, r->iov[0].iov_base, sizeof(token));
				done[i].head = r->head;
				done[i].len = token;
			}
			EXPECT_EQ(hvn_vq_push_batch(vq, done, (unsigned int)n), 0);
			if (hvn_vq_should_notify(vq)) {
				s->interrupts++;
				signal_fd(s->call);
			}
		}
		EXPECT_EQ(n, 0);
		n = hvn_vq_enable_notify(vq);
		EXPECT(n >= 0);
		if (n > 0)
			continue;	/* requests landed while we were not listening */
		if (atomic_load(&s->stop))
			break;
		wait_fd(s->kick, "kick");
		s->device_wakeups++;
	}
	return NULL;
}

static void drive(struct shared *s)
{
	struct vring_driver *d = &s->e.d;
	uint32_t sent = 0, completed = 0, outstanding = 0;

	vrd_disable_interrupts(d);
	while (completed < REQUESTS) {
		uint32_t added = 0, len;
		uint16_t head;
		void *token;
		int r;

		while (outstanding < QD && sent < REQUESTS) {
			/* A single-descriptor chain's head is the next free one. */
			uint16_t slot = d->free_head;
			struct vrd_buf out = { env_data(slot), sizeof(sent) };

			memcpy(gmem_ptr(&s->e.g, out.gpa, sizeof(sent)), &sent, sizeof(sent));
			EXPECT_EQ(vrd_add(d, &out, 1, NULL, 0, (void *)(uintptr_t)sent, false), slot);
			sent++;
			outstanding++;
			added++;
		}
		if (added) {
			vrd_publish(d);
			if (vrd_kick_needed(d)) {
				s->kicks++;
				signal_fd(s->kick);
			}
		}
		added = 0;
		while ((r = vrd_get_used(d, &head, &len, &token)) == 1) {
			EXPECT_EQ(len, (uint32_t)(uintptr_t)token);
			completed++;
			outstanding--;
			added++;
		}
		EXPECT_EQ(r, 0);
		if (added || completed == REQUESTS)
			continue;
		if (outstanding < QD && sent < REQUESTS)
			continue;
		/* Nothing to do until the device completes something. */
		if (vrd_enable_interrupts(d)) {
			vrd_disable_interrupts(d);
			continue;
		}
		wait_fd(s->call, "interrupt");
		s->driver_wakeups++;
		vrd_disable_interrupts(d);
	}
}

static void run(uint64_t features)
{
	static struct shared s;
	pthread_t t;

	memset(&s, 0, sizeof(s));
	env_setup(&s.e, NUM, features, 0);
	s.kick = eventfd(0, EFD_CLOEXEC);
	s.call = eventfd(0, EFD_CLOEXEC);
	EXPECT(s.kick >= 0 && s.call >= 0);
	EXPECT_EQ(pthread_create(&t, NULL, device_thread, &s), 0);
	drive(&s);
	atomic_store(&s.stop, 1);
	signal_fd(s.kick);
	EXPECT_EQ(pthread_join(t, NULL), 0);
	EXPECT_EQ(hvn_vq_error(s.e.vq), 0);
	EXPECT_EQ(hvn_vq_get_base(s.e.vq), (uint16_t)REQUESTS);
	printf("  %s: %d requests, %lu kicks, %lu interrupts, %lu/%lu device/driver sleeps\n",
	       features & HVN_VQ_F_EVENT_IDX ? "EVENT_IDX" : "flags", REQUESTS, s.kicks,
	       s.interrupts, s.device_wakeups, s.driver_wakeups);
	close(s.kick);
	close(s.call);
	env_teardown(&s.e);
}

static void test_flags(void) { run(0); }
static void test_event_idx(void) { run(HVN_VQ_F_EVENT_IDX); }

int main(void)
{
	RUN(test_flags);
	RUN(test_event_idx);
	return 0;
}
