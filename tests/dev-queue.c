// SPDX-License-Identifier: MIT
/*
 * dev-queue.c - a device's queue run by the library on a real loop, against
 * the guest's half of the ring: kicks through a real eventfd, completions
 * that finish now and later (after real asynchronous I/O), one used-index
 * publication and at most one call per batch, a batch limit that still
 * serves everything, a request that was there before the start, a stop
 * that waits for the I/O in flight, a request the device aborts (nothing
 * more reaches the ring), a guest that breaks the queue, and a queue whose
 * previous host died with requests in flight (inflight tracking): the
 * device gets all of them at the start.
 * On io_uring by default, or the engine of HVN_TEST_ENGINE
 * (tests/dev-queue-epoll.sh, tests/dev-queue-nouring.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hvnotify/dev.h>
#include <hvnotify/loop.h>

#include "support/check.h"
#include "support/engine.h"
#include "support/vq_env.h"

/*
 * The test device answers each request by writing the bytes of its
 * readable part, each plus one, into its writable part.  Requests whose
 * first byte is odd complete at once; even ones only after an fsync on a
 * memfd has gone through the loop (real asynchronous work).  A first byte
 * of ABORT_BYTE is a request the device cannot answer: it aborts it.
 */
#define ABORT_BYTE 0xfe

struct test_dev {
	int file;
	int hold;			/* keep async requests until released */
	struct hvn_dev_req *held[64];
	int nheld;
	int started, stopped;
};

struct test_req {
	struct hvn_loop_op op;
	struct hvn_dev_req *req;
	uint32_t written;
};

static uint32_t answer(struct hvn_dev_req *req)
{
	uint8_t buf[512];
	uint32_t n = 0, i, off = 0;

	for (i = 0; i < req->vq.n_out; i++) {
		size_t l = req->vq.iov[i].iov_len;

		if (n + l > sizeof(buf))
			l = sizeof(buf) - n;
		memcpy(buf + n, req->vq.iov[i].iov_base, l);
		n += (uint32_t)l;
	}
	for (i = 0; i < n; i++)
		buf[i]++;
	for (i = req->vq.n_out; i < req->vq.n_out + req->vq.n_in && off < n; i++) {
		size_t l = req->vq.iov[i].iov_len;

		if (l > n - off)
			l = n - off;
		memcpy(req->vq.iov[i].iov_base, buf + off, l);
		off += (uint32_t)l;
	}
	return off;
}

static void io_done(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct test_req *t = (struct test_req *)op;

	hvn_dev_req_done(t->req, res == 0 ? t->written : 0);
}

static void test_handle(void *opaque, struct hvn_dev_req *req)
{
	struct test_dev *dev = opaque;
	struct test_req *t = req->priv;
	uint8_t first = req->vq.n_out ? *(uint8_t *)req->vq.iov[0].iov_base : 0;

	if (first == ABORT_BYTE) {
		hvn_dev_req_abort(req, -EBADMSG);
		return;
	}
	t->req = req;
	t->written = answer(req);
	if (first & 1) {
		hvn_dev_req_done(req, t->written);
		return;
	}
	if (dev->hold) {
		dev->held[dev->nheld++] = req;
		return;
	}
	t->op.cb = io_done;
	if (hvn_loop_fsync(hvn_dev_queue_loop(req->queue), &t->op, dev->file, 1) < 0)
		hvn_dev_req_done(req, 0);
}

static int test_queue_start(void *opaque, struct hvn_dev_queue *q)
{
	((struct test_dev *)opaque)->started++;
	return 0;
}

static void test_queue_stop(void *opaque, struct hvn_dev_queue *q)
{
	((struct test_dev *)opaque)->stopped++;
}

static const struct hvn_dev_ops test_ops = {
	.name = "test",
	.req_size = sizeof(struct test_req),
	.max_segments = 8,
	.max_queues = 1,
	.queue_start = test_queue_start,
	.queue_stop = test_queue_stop,
	.handle = test_handle,
};

static struct vq_env env;
static struct hvn_loop *loop;
static int kick, call, err;

/* Put a request with one readable buffer of len bytes starting with byte
 * first, and one writable buffer, in slot i's data area. */
static int add_req(unsigned int i, uint8_t first, uint32_t len)
{
	struct vrd_buf out = { env_data(2 * i), len }, in = { env_data(2 * i + 1), 256 };
	uint8_t *p = gmem_ptr(&env.g, out.gpa, len);

	memset(p, 0, len);
	p[0] = first;
	p[len - 1] = (uint8_t)i;
	return vrd_add(&env.d, &out, 1, &in, 1, (void *)(uintptr_t)(i + 1), false);
}

static void kick_if_needed(void)
{
	uint64_t one = 1;

	vrd_publish(&env.d);
	if (vrd_kick_needed(&env.d))
		REQUIRE(write(kick, &one, 8) == 8, "kick");
}

static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, 8) != 8)
		return 0;
	return v;
}

/* Reap used entries (running the loop) until n arrived; check each. */
static int reap(int n, int *bad)
{
	int got = 0, rounds;

	for (rounds = 0; rounds < 400 && got < n; rounds++) {
		uint16_t head;
		uint32_t len;
		void *token;

		while (vrd_get_used(&env.d, &head, &len, &token) == 1) {
			unsigned int i = (unsigned int)(uintptr_t)token - 1;
			uint8_t *in = gmem_ptr(&env.g, env_data(2 * i + 1), 256);
			uint8_t *out = gmem_ptr(&env.g, env_data(2 * i), 256);

			if (len == 0 || in[0] != (uint8_t)(out[0] + 1) ||
			    in[len - 1] != (uint8_t)(out[len - 1] + 1))
				(*bad)++;
			got++;
		}
		if (got < n)
			hvn_loop_run(loop, 20);
	}
	return got;
}

static int stop_calls;

static void on_stopped(struct hvn_dev_queue *q, void *arg)
{
	stop_calls++;
}

static int broken_err;

static void on_broken(struct hvn_dev_queue *q, int e, void *arg)
{
	broken_err = e;
}

/*
 * A host dies with ten requests held by the device (its loop, queue and
 * virtqueue simply vanish); a new host starts a queue on the same ring
 * and inflight region.  The device gets all ten inside the start, though
 * the batch is 4, the guest is called once at once (it may be waiting for
 * completions the dead host published), and each completes exactly once.
 */
static void test_recovery(struct test_dev *dev, struct hvn_dev_queue_config *cfg)
{
	uint64_t rsize = hvn_vq_inflight_size(64);
	struct hvn_dev_queue_stats st;
	struct hvn_vq_addr addr;
	struct hvn_dev_queue *q;
	struct hvn_loop *loop1;
	struct hvn_vq *vq;
	int i, got, bad = 0;
	void *region;

	region = mmap(NULL, rsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(region != MAP_FAILED, "inflight region");
	env_setup(&env, 64, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX, ENV_NO_START);
	REQUIRE(hvn_vq_set_inflight(env.vq, region, 64) == 0, "set_inflight");
	REQUIRE(hvn_loop_new(128, &loop1) == 0, "the first host's loop");
	cfg->vq = env.vq;
	dev->hold = 1;
	dev->nheld = 0;
	REQUIRE(hvn_dev_queue_start(loop1, cfg, &q) == 0, "the first host's queue");
	for (i = 0; i < 10; i++)
		REQUIRE(add_req((unsigned int)i, 0, 16) >= 0, "add %d", i);
	kick_if_needed();
	for (i = 0; i < 20 && dev->nheld < 10; i++)
		hvn_loop_run(loop1, 10);
	REQUIRE(dev->nheld == 10, "the first host's device holds 10 requests");
	/* It dies: nothing of it is stopped, pushed or told. */
	hvn_loop_free(loop1);
	hvn_dev_queue_free(q);
	hvn_vq_free(env.vq);
	env.vq = NULL;
	dev->nheld = 0;
	efd_take(call);

	REQUIRE(hvn_vq_new(env.mem, &vq) == 0 && hvn_vq_set_size(vq, 64) == 0 &&
		hvn_vq_set_features(vq, env.features) == 0, "the second host's virtqueue");
	vrd_addr(&env.d, false, &addr);
	REQUIRE(hvn_vq_set_addr(vq, &addr) == 0, "addr");
	REQUIRE(hvn_vq_set_base(vq, 0) == 0, "base: the used index, as QEMU sends after a crash");
	REQUIRE(hvn_vq_set_inflight(vq, region, 64) == 0, "the same region");
	cfg->vq = vq;
	REQUIRE(hvn_dev_queue_start(loop, cfg, &q) == 0, "the second host's queue");
	CHECK(dev->nheld == 10, "all 10 requests in flight went to the device inside the start, "
	      "with a batch of %u (%d)", cfg->batch, dev->nheld);
	hvn_loop_run(loop, 0);
	CHECK(efd_take(call) == 1, "and the guest was called once, before anything completed");
	for (i = 0; i < dev->nheld; i++) {
		struct test_req *t = dev->held[i]->priv;

		hvn_dev_req_done(dev->held[i], t->written);
	}
	dev->nheld = 0;
	got = reap(10, &bad);
	CHECK(got == 10 && bad == 0, "each completed once, with its answer (%d, %d bad)", got, bad);
	for (i = 0; i < 10; i++)
		hvn_loop_run(loop, 5);
	CHECK(vrd_get_used(&env.d, NULL, NULL, NULL) == 0, "and nothing more came back");
	hvn_dev_queue_stats(q, &st);
	CHECK(st.requests == 10 && st.completions == 10, "counters: 10 requests, 10 completions");
	stop_calls = 0;
	REQUIRE(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "stop");
	for (i = 0; i < 20 && !stop_calls; i++)
		hvn_loop_run(loop, 10);
	hvn_dev_queue_free(q);
	hvn_vq_free(vq);
	env_teardown(&env);
	munmap(region, rsize);
}

/*
 * The host hands a blocking call eventfd whose counter the other side left
 * one short of its maximum (a hostile vhost-user frontend can): a write
 * would block until somebody reads it, on the epoll engine in the loop's
 * own thread.  The queue makes its call and error eventfds non-blocking
 * and serves on.
 */
static void test_blocking_call(struct test_dev *dev, struct hvn_dev_queue_config *cfg)
{
	const uint64_t nearly_full = UINT64_C(0xfffffffffffffffe);
	int call_blocking = eventfd(0, EFD_CLOEXEC), err_blocking = eventfd(0, EFD_CLOEXEC);
	struct hvn_dev_queue *q;
	int i, got, bad = 0;
	uint64_t v;

	REQUIRE(call_blocking >= 0 && err_blocking >= 0, "two blocking eventfds");
	/* A write that blocks would hang the test: SIGALRM fails it instead. */
	alarm(60);
	REQUIRE(write(call_blocking, &nearly_full, 8) == 8, "the call counter at its maximum");
	/* Without EVENT_IDX: every completion with interrupts on calls. */
	env_setup(&env, 64, HVN_VQ_F_VERSION_1, 0);
	cfg->vq = env.vq;
	cfg->call_fd = call_blocking;
	cfg->err_fd = err_blocking;
	dev->hold = 0;
	dev->nheld = 0;
	REQUIRE(hvn_dev_queue_start(loop, cfg, &q) == 0, "a queue on blocking eventfds");
	CHECK((fcntl(call_blocking, F_GETFL) & O_NONBLOCK) && (fcntl(err_blocking, F_GETFL) & O_NONBLOCK),
	      "the queue made its call and error eventfds non-blocking");
	vrd_enable_interrupts(&env.d);
	for (i = 0; i < 5; i++) {
		REQUIRE(add_req((unsigned int)i, 1, 16) >= 0, "add %d", i);
		kick_if_needed();
		got = reap(1, &bad);
		CHECK(got == 1 && bad == 0, "request %d served with the call counter full", i);
	}
	hvn_loop_run(loop, 0);
	CHECK(efd_take(call_blocking) == nearly_full, "no signal landed on the full counter");
	REQUIRE(add_req(5, 1, 16) >= 0, "add 5");
	kick_if_needed();
	got = reap(1, &bad);
	hvn_loop_run(loop, 0);	/* the call goes out with this submission */
	/* The signals that found the counter full failed (EAGAIN) and are
	 * gone: the kernel holds none of them, to add up for as long as a
	 * frontend keeps its counter full.  This completion's call is the
	 * one that arrives. */
	v = efd_take(call_blocking);
	CHECK(got == 1 && bad == 0 && v == 1,
	      "once the guest read it, the next completion calls it, once (%llu)", (unsigned long long)v);
	stop_calls = 0;
	REQUIRE(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "stop");
	for (i = 0; i < 20 && !stop_calls; i++)
		hvn_loop_run(loop, 10);
	CHECK(stop_calls == 1, "and it stops");
	hvn_dev_queue_free(q);
	env_teardown(&env);
	close(call_blocking);
	close(err_blocking);
	alarm(0);
}

int main(void)
{
	struct test_dev dev = { 0 };
	struct hvn_dev_queue_config cfg;
	struct hvn_dev_queue_stats st;
	struct hvn_dev_queue *q;
	uint16_t base;
	int r, i, bad = 0, got;

	env_setup(&env, 64, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX, 0);
	loop = t_loop_new(128);
	dev.file = memfd_create("dev-queue", MFD_CLOEXEC);
	kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	err = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	/* A request already in the ring before the queue starts. */
	REQUIRE(add_req(0, 1, 64) >= 0, "request before start");
	vrd_publish(&env.d);

	memset(&cfg, 0, sizeof(cfg));
	cfg.ops = &test_ops;
	cfg.dev = &dev;
	cfg.vq = env.vq;
	cfg.kick_fd = kick;
	cfg.call_fd = call;
	cfg.err_fd = err;
	cfg.batch = 4;
	cfg.broken = on_broken;
	CHECK(hvn_dev_queue_start(loop, &cfg, NULL) == -EINVAL, "start without a result pointer -> EINVAL");
	r = hvn_dev_queue_start(loop, &cfg, &q);
	REQUIRE(r == 0, "start the queue (r=%d)", r);
	CHECK(dev.started == 1, "the device saw queue_start");
	got = reap(1, &bad);
	hvn_loop_run(loop, 0);	/* the call goes out with the next submission */
	CHECK(got == 1 && bad == 0, "the request made before start was served without a kick");
	CHECK(efd_take(call) == 1, "and the guest was called once");

	/* 30 requests (60 descriptors of 64), one kick: mixed sync and async,
	 * a batch limit of 4. */
	vrd_enable_interrupts(&env.d);
	for (i = 1; i <= 30; i++)
		REQUIRE(add_req((unsigned int)i, (uint8_t)(i & 1), 32 + (uint32_t)i) >= 0, "add %d", i);
	kick_if_needed();
	got = reap(30, &bad);
	CHECK(got == 30 && bad == 0, "30 requests answered correctly (%d, %d bad)", got, bad);
	hvn_dev_queue_stats(q, &st);
	printf("info requests %llu completions %llu kicks %llu calls %llu batches %llu\n",
	       (unsigned long long)st.requests, (unsigned long long)st.completions,
	       (unsigned long long)st.kicks, (unsigned long long)st.calls,
	       (unsigned long long)st.batches);
	hvn_loop_run(loop, 0);	/* the last call goes out with this submission */
	CHECK(st.requests == 31 && st.completions == 31 && st.inflight == 0, "counters add up");
	CHECK(st.kicks == 1, "one kick for the burst (%llu)", (unsigned long long)st.kicks);
	CHECK(st.batches < st.completions, "completions were published in batches (%llu for %llu)",
	      (unsigned long long)st.batches, (unsigned long long)st.completions);
	CHECK(st.calls <= st.batches, "at most one call per batch (%llu calls)", (unsigned long long)st.calls);
	CHECK(efd_take(call) == st.calls - 1, "the call eventfd saw exactly those calls");

	/* Interrupts off (EVENT_IDX: used_event left behind): no calls. */
	vrd_disable_interrupts(&env.d);
	for (i = 31; i <= 38; i++)
		REQUIRE(add_req((unsigned int)i, 1, 16) >= 0, "add %d", i);
	kick_if_needed();
	for (i = 0; i < 20; i++)
		hvn_loop_run(loop, 10);
	got = reap(8, &bad);
	CHECK(got == 8 && bad == 0, "8 more served while the driver polls");
	CHECK(efd_take(call) == 0, "with interrupts off the guest is never called");

	/* Polling: the driver is told not to kick, and the host's look at
	 * the ring serves it; off again, kicks are asked for. */
	vrd_enable_interrupts(&env.d);
	CHECK(hvn_dev_queue_set_polling(q, 1) == 0, "polling on");
	hvn_dev_queue_stats(q, &st);
	{
		uint64_t kicks_before = st.kicks, v;
		int n;

		for (i = 31; i <= 34; i++)
			REQUIRE(add_req((unsigned int)(i + 100), 1, 16) >= 0, "add %d", i);
		vrd_publish(&env.d);
		CHECK(!vrd_kick_needed(&env.d), "while the host polls, the driver need not kick");
		n = hvn_dev_queue_poll(q);
		CHECK(n == 4, "one look at the ring popped the 4 requests (%d)", n);
		got = reap(4, &bad);
		CHECK(got == 4 && bad == 0, "and they were answered");
		CHECK(hvn_dev_queue_poll(q) == 0, "an empty ring: nothing popped");
		REQUIRE(add_req(140, 1, 16) >= 0, "a request just before polling stops");
		vrd_publish(&env.d);
		CHECK(hvn_dev_queue_set_polling(q, 0) == 0, "polling off");
		got = reap(1, &bad);
		CHECK(got == 1 && bad == 0, "the request made while polling was ending was not left waiting");
		REQUIRE(add_req(141, 1, 16) >= 0, "a request after polling");
		vrd_publish(&env.d);
		CHECK(vrd_kick_needed(&env.d), "after polling the driver is asked to kick again");
		{
			uint64_t one = 1;

			REQUIRE(write(kick, &one, 8) == 8, "kick");
		}
		got = reap(1, &bad);
		hvn_dev_queue_stats(q, &st);
		CHECK(got == 1 && st.kicks == kicks_before + 1, "served through the kick (%llu kicks)",
		      (unsigned long long)(st.kicks - kicks_before));
		(void)v;
	}

	/* Stop with requests in flight: it waits for them. */
	vrd_enable_interrupts(&env.d);
	dev.hold = 1;
	for (i = 39; i <= 42; i++)
		REQUIRE(add_req((unsigned int)i, 0, 16) >= 0, "add %d", i);
	kick_if_needed();
	for (i = 0; i < 20 && dev.nheld < 4; i++)
		hvn_loop_run(loop, 10);
	REQUIRE(dev.nheld == 4, "the device holds 4 requests");
	CHECK(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "stop requested");
	CHECK(hvn_dev_queue_stop(q, on_stopped, NULL) == -EALREADY, "a second stop -> EALREADY");
	for (i = 0; i < 10; i++)
		hvn_loop_run(loop, 10);
	CHECK(stop_calls == 0 && dev.stopped == 0, "not stopped while 4 requests are in flight");
	for (i = 0; i < dev.nheld; i++) {
		struct test_req *t = dev.held[i]->priv;

		hvn_dev_req_done(dev.held[i], t->written);
	}
	dev.nheld = 0;
	for (i = 0; i < 20 && !stop_calls; i++)
		hvn_loop_run(loop, 10);
	CHECK(stop_calls == 1 && dev.stopped == 1, "stopped once they completed");
	got = reap(4, &bad);
	CHECK(got == 4 && bad == 0, "and their completions reached the guest");
	CHECK(hvn_vq_get_base(env.vq) == 49, "the ring stopped at index 49 (%u)", hvn_vq_get_base(env.vq));
	REQUIRE(add_req(43, 1, 16) >= 0, "a request after the stop");
	kick_if_needed();
	for (i = 0; i < 10; i++)
		hvn_loop_run(loop, 10);
	hvn_dev_queue_stats(q, &st);
	CHECK(st.requests == 49, "nothing popped after the stop (%llu)", (unsigned long long)st.requests);
	hvn_dev_queue_free(q);

	/* Restart from the saved index: the waiting request is served. */
	dev.hold = 0;
	REQUIRE(hvn_vq_set_base(env.vq, 49) == 0, "set base 49");
	r = hvn_dev_queue_start(loop, &cfg, &q);
	REQUIRE(r == 0, "restart (r=%d)", r);
	got = reap(1, &bad);
	CHECK(got == 1 && bad == 0, "the request waiting since the stop was served on restart");

	/* The device aborts a request while another one is in flight: the
	 * queue breaks, and neither of them reaches the used ring. */
	hvn_loop_run(loop, 0);	/* the last call goes out with this submission */
	efd_take(err);
	efd_take(call);
	base = hvn_vq_get_base(env.vq);
	vrd_enable_interrupts(&env.d);
	dev.hold = 1;
	REQUIRE(add_req(44, 0, 16) >= 0, "a request the device holds");
	REQUIRE(add_req(45, ABORT_BYTE, 16) >= 0, "a request the device aborts");
	kick_if_needed();
	for (i = 0; i < 20 && !broken_err; i++)
		hvn_loop_run(loop, 10);
	CHECK(broken_err == -EBADMSG, "the abort breaks the queue with the device's error (%d)",
	      broken_err);
	REQUIRE(dev.nheld == 1, "the device holds request 44");
	hvn_dev_req_done(dev.held[0], ((struct test_req *)dev.held[0]->priv)->written);
	dev.nheld = 0;
	for (i = 0; i < 10; i++)
		hvn_loop_run(loop, 10);
	hvn_dev_queue_stats(q, &st);
	CHECK(st.error == -EBADMSG && st.inflight == 0 && hvn_vq_error(env.vq) == -EBADMSG,
	      "stats (%d, %u in flight) and the virtqueue (%d) report it", st.error, st.inflight,
	      hvn_vq_error(env.vq));
	CHECK(efd_take(err) == 1, "the error eventfd was signalled once");
	r = vrd_get_used(&env.d, NULL, NULL, NULL);
	CHECK(r == 0, "neither the aborted request nor the one in flight was published (%d)", r);
	CHECK(efd_take(call) == 0, "and the guest was not called");
	stop_calls = 0;
	CHECK(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "the queue stops");
	for (i = 0; i < 20 && !stop_calls; i++)
		hvn_loop_run(loop, 10);
	CHECK(stop_calls == 1 && hvn_vq_get_base(env.vq) == (uint16_t)(base + 2),
	      "after both requests: at index %u (%u before them)", hvn_vq_get_base(env.vq), base);
	hvn_dev_queue_free(q);
	dev.hold = 0;
	broken_err = 0;
	r = hvn_dev_queue_start(loop, &cfg, &q);
	REQUIRE(r == 0, "restart after the abort (r=%d)", r);
	REQUIRE(add_req(46, 1, 16) >= 0, "a request after the restart");
	kick_if_needed();
	got = reap(1, &bad);
	CHECK(got == 1 && bad == 0 && broken_err == 0, "a restart mends the queue");

	/* The guest breaks the ring: a head beyond the table. */
	efd_take(err);
	vrd_put_raw(&env.d, 200);
	kick_if_needed();
	for (i = 0; i < 20 && !broken_err; i++)
		hvn_loop_run(loop, 10);
	CHECK(broken_err == -ERANGE, "a head out of range breaks the queue with -ERANGE (%d)", broken_err);
	for (i = 0; i < 5; i++)
		hvn_loop_run(loop, 10);
	CHECK(efd_take(err) == 1, "the error eventfd was signalled once");
	hvn_dev_queue_stats(q, &st);
	CHECK(st.error == -ERANGE, "stats report the error");
	stop_calls = 0;
	CHECK(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "a broken queue still stops");
	for (i = 0; i < 20 && !stop_calls; i++)
		hvn_loop_run(loop, 10);
	CHECK(stop_calls == 1, "and reports it");
	hvn_dev_queue_free(q);
	env_teardown(&env);

	cfg.broken = NULL;
	test_recovery(&dev, &cfg);
	test_blocking_call(&dev, &cfg);

	hvn_loop_free(loop);
	close(kick); close(call); close(err); close(dev.file);
	return t_done("dev-queue");
}
