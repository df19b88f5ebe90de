// SPDX-License-Identifier: MIT
/*
 * dev-rng.c - the library's virtio-rng device, run by the queue runner on
 * a real io_uring loop against the guest's half of the ring
 * (tests/support): requests filled from getrandom(2) up to their size or
 * the per-request limit, across several buffers, readable parts ignored;
 * a source of the test's own whose bytes are checked exactly; a source
 * with no entropy yet, where the request waits on the loop (the loop
 * never blocks) and gets the bytes once they come, or an empty answer
 * after the retry period; a stop that such a wait does not hold up; one
 * queue per instance; bad configurations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/dev.h>
#include <hvnotify/loop.h>

#include "support/check.h"
#include "support/vq_env.h"

static struct vq_env env;
static struct hvn_loop *loop;
static int kick, call;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The test's source: a counter, or nothing while dry. */
struct counter_src {
	uint8_t next;
	int dry;			/* answer -EAGAIN */
	unsigned int calls;
	uint32_t most;			/* the largest len asked for */
};

static int counter_source(void *arg, void *buf, uint32_t len)
{
	struct counter_src *c = arg;
	uint8_t *p = buf;
	uint32_t i, n = len < 100 ? len : 100;	/* short answers: the device asks again */

	c->calls++;
	if (len > c->most)
		c->most = len;
	if (c->dry)
		return -EAGAIN;
	for (i = 0; i < n; i++)
		p[i] = c->next++;
	return (int)n;
}

static void kick_now(void)
{
	uint64_t one = 1;

	vrd_publish(&env.d);
	if (vrd_kick_needed(&env.d))
		REQUIRE(write(kick, &one, 8) == 8, "kick");
}

/* Run the loop until a used entry comes or ms pass; 1 and its length. */
static int wait_used(uint32_t *len, double ms)
{
	double end = now_ms() + ms;
	uint16_t head;
	void *token;

	do {
		if (vrd_get_used(&env.d, &head, len, &token) == 1)
			return 1;
		hvn_loop_run(loop, 5);
	} while (now_ms() < end);
	return vrd_get_used(&env.d, &head, len, &token) == 1;
}

static int distinct_bytes(const uint8_t *p, uint32_t len)
{
	int seen[256] = { 0 }, n = 0;
	uint32_t i;

	for (i = 0; i < len; i++)
		if (!seen[p[i]]++)
			n++;
	return n;
}

static int stopped;

static void on_stopped(struct hvn_dev_queue *q, void *arg)
{
	stopped++;
	hvn_dev_queue_free(q);
}

static struct hvn_dev_queue *start(struct hvn_dev_rng *rng, uint16_t base)
{
	struct hvn_dev_queue_config cfg;
	struct hvn_dev_queue *q;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ops = hvn_dev_rng_ops();
	cfg.dev = rng;
	cfg.vq = env.vq;
	cfg.kick_fd = kick;
	cfg.call_fd = call;
	cfg.err_fd = -1;
	hvn_vq_set_base(env.vq, base);
	r = hvn_dev_queue_start(loop, &cfg, &q);
	REQUIRE(r == 0, "start a queue of the rng device (r=%d)", r);
	return q;
}

static void stop(struct hvn_dev_queue *q)
{
	int i;

	stopped = 0;
	REQUIRE(hvn_dev_queue_stop(q, on_stopped, NULL) == 0, "stop");
	for (i = 0; i < 100 && !stopped; i++)
		hvn_loop_run(loop, 5);
	REQUIRE(stopped == 1, "stopped");
}

static void test_getrandom(void)
{
	const struct hvn_dev_ops *ops = hvn_dev_rng_ops();
	struct hvn_dev_queue_stats st;
	struct hvn_dev_rng *rng;
	struct hvn_dev_queue *q;
	struct vrd_buf in[2], out;
	uint8_t *p;
	uint32_t len;
	int r, d;

	CHECK(ops && !strcmp(ops->name, "rng") && ops->virtio_id == 4 && ops->config_size == 0 &&
	      ops->max_queues == 1 && ops->handle && !ops->get_config,
	      "ops: \"rng\", virtio id 4, no config space, one queue");
	r = hvn_dev_rng_new(NULL, &rng);
	REQUIRE(r == 0, "hvn_dev_rng_new(NULL): getrandom (r=%d)", r);
	q = start(rng, 0);

	/* 512 bytes in one buffer, as Linux's driver asks. */
	memset(gmem_ptr(&env.g, env_data(0), 512), 0, 512);
	in[0] = (struct vrd_buf){ env_data(0), 512 };
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	p = gmem_ptr(&env.g, env_data(0), 512);
	d = distinct_bytes(p, 512);
	CHECK(r && len == 512 && d > 150, "512-byte request: used len %u, %d distinct byte values", len, d);

	/* Two buffers and a readable one, which the device ignores. */
	memset(gmem_ptr(&env.g, env_data(4), 0x300), 0, 0x300);
	env_fill(&env, env_data(8), 16, 0x40);
	out = (struct vrd_buf){ env_data(8), 16 };
	in[0] = (struct vrd_buf){ env_data(4), 100 };
	in[1] = (struct vrd_buf){ env_data(5), 300 };
	REQUIRE(vrd_add(&env.d, &out, 1, in, 2, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	d = distinct_bytes(gmem_ptr(&env.g, env_data(5), 300), 300);
	p = gmem_ptr(&env.g, env_data(8), 16);
	CHECK(r && len == 400 && d > 100 && p[0] == 0x40 && p[15] == (uint8_t)(0x40 + 15 * 7),
	      "100 + 300 writable bytes and 16 readable: used len %u, readable part untouched", len);

	/* Only a readable buffer: nothing to fill, answered at once. */
	REQUIRE(vrd_add(&env.d, &out, 1, NULL, 0, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	CHECK(r && len == 0, "no writable part: answered with 0 bytes (%u)", len);

	/* 100 KiB: more than the default per-request limit of 64 KiB. */
	in[0] = (struct vrd_buf){ ENV_DATA, 100 * 1024 };
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	CHECK(r && len == 65536, "a 100 KiB request gets the 64 KiB limit (%u)", len);

	hvn_dev_queue_stats(q, &st);
	CHECK(st.requests == 4 && st.completions == 4 && st.inflight == 0 && st.error == 0,
	      "queue counters: %llu requests, %llu completions",
	      (unsigned long long)st.requests, (unsigned long long)st.completions);
	stop(q);
	hvn_dev_rng_free(rng);
}

static void test_source(void)
{
	struct counter_src src = { 0 };
	struct hvn_dev_rng_config rc = { .source = counter_source, .arg = &src, .max_request = 1000 };
	struct hvn_dev_queue *q, *q2;
	struct hvn_dev_queue_config cfg;
	struct hvn_dev_rng *rng;
	struct vrd_buf in[2];
	unsigned int calls;
	uint32_t len, i;
	double t0, t;
	uint8_t *p;
	int r, ok;

	r = hvn_dev_rng_new(&rc, &rng);
	REQUIRE(r == 0, "hvn_dev_rng_new with the test's source (r=%d)", r);
	q = start(rng, hvn_vq_get_base(env.vq));

	/* Exact bytes, in order, across two buffers, short answers and all. */
	in[0] = (struct vrd_buf){ env_data(0), 250 };
	in[1] = (struct vrd_buf){ env_data(2), 250 };
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 2, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	for (ok = 1, i = 0; i < 500; i++) {
		p = gmem_ptr(&env.g, i < 250 ? env_data(0) + i : env_data(2) + i - 250, 1);
		ok &= *p == (uint8_t)i;
	}
	CHECK(r && len == 500 && ok, "the source's bytes 0..499 landed in order in 250 + 250 bytes "
	      "(used len %u, %u source calls)", len, src.calls);

	/* max_request 1000: a 4000-byte request gets 1000. */
	in[0] = (struct vrd_buf){ ENV_DATA, 4000 };
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	r = wait_used(&len, 1000);
	CHECK(r && len == 1000 && src.most <= 1000, "max_request 1000: used len %u, largest ask %u",
	      len, src.most);

	/* No entropy yet: the request waits, and the loop does not. */
	src.dry = 1;
	src.calls = 0;
	in[0] = (struct vrd_buf){ env_data(0), 64 };
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	t0 = now_ms();
	for (i = 0; i < 200 && !src.calls; i++)
		hvn_loop_run(loop, 5);
	r = vrd_get_used(&env.d, &(uint16_t){ 0 }, &len, &(void *){ NULL });
	CHECK(src.calls == 1 && r == 0, "a dry source: the loop ran on, the request waits unanswered "
	      "(%u source call)", src.calls);
	src.dry = 0;
	src.next = 0x80;
	r = wait_used(&len, 1000);
	t = now_ms() - t0;
	p = gmem_ptr(&env.g, env_data(0), 64);
	CHECK(r && len == 64 && p[0] == 0x80 && p[63] == 0xbf && t >= 45,
	      "entropy came: the waiting request got 64 bytes after %.0f ms (the 50 ms retry)", t);

	/* Dry for good: an empty answer after the retry period, not before. */
	src.dry = 1;
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	t0 = now_ms();
	r = wait_used(&len, 500);
	t = now_ms() - t0;
	CHECK(r && len == 0 && t >= 45, "still dry: answered with 0 bytes after %.0f ms", t);

	/* A stop with a request waiting: it is answered, the stop is prompt. */
	REQUIRE(vrd_add(&env.d, NULL, 0, in, 1, NULL, false) >= 0, "add");
	kick_now();
	for (i = 0; i < 3; i++)
		hvn_loop_run(loop, 1);
	calls = src.calls;
	t0 = now_ms();
	stop(q);
	t = now_ms() - t0;
	r = wait_used(&len, 0);
	CHECK(r && len == 0 && t < 1000 && src.calls == calls + 1,
	      "a stop while a request waits for entropy took %.0f ms and answered it empty", t);

	/* One queue per instance. */
	q = start(rng, hvn_vq_get_base(env.vq));
	memset(&cfg, 0, sizeof(cfg));
	cfg.ops = hvn_dev_rng_ops();
	cfg.dev = rng;
	cfg.vq = env.vq;
	cfg.kick_fd = kick;
	cfg.call_fd = -1;
	cfg.err_fd = -1;
	r = hvn_dev_queue_start(loop, &cfg, &q2);
	CHECK(r == -EBUSY, "a second queue on the same instance is refused (r=%d)", r);
	stop(q);
	q = start(rng, hvn_vq_get_base(env.vq));
	CHECK(q != NULL, "once the first stopped, a queue starts again");
	stop(q);
	hvn_dev_rng_free(rng);
}

static void test_config(void)
{
	struct hvn_dev_rng_config rc;
	struct hvn_dev_rng *rng = (struct hvn_dev_rng *)&rc;
	int r;

	CHECK(hvn_dev_rng_new(NULL, NULL) == -EINVAL, "no result pointer -> EINVAL");
	memset(&rc, 0, sizeof(rc));
	rc.flags = 1;
	r = hvn_dev_rng_new(&rc, &rng);
	CHECK(r == -EINVAL && rng == NULL, "unknown flags -> EINVAL, *rngp NULL");
	memset(&rc, 0, sizeof(rc));
	rc.reserved[1] = 1;
	CHECK(hvn_dev_rng_new(&rc, &rng) == -EINVAL, "reserved not 0 -> EINVAL");
	memset(&rc, 0, sizeof(rc));
	rc.max_request = 1048577;
	CHECK(hvn_dev_rng_new(&rc, &rng) == -EINVAL, "max_request over 1 MiB -> EINVAL");
	memset(&rc, 0, sizeof(rc));
	rc.arg = &rc;
	CHECK(hvn_dev_rng_new(&rc, &rng) == -EINVAL, "arg without a source -> EINVAL");
	memset(&rc, 0, sizeof(rc));
	rc.max_request = 1048576;
	r = hvn_dev_rng_new(&rc, &rng);
	CHECK(r == 0, "an all-zero configuration but max_request 1 MiB is fine");
	hvn_dev_rng_free(rng);
	hvn_dev_rng_free(NULL);
}

int main(void)
{
	int r;

	env_setup(&env, 16, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX, ENV_NO_START);
	r = hvn_loop_new(64, &loop);
	REQUIRE(r == 0, "loop (r=%d)", r);
	kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(kick >= 0 && call >= 0, "eventfds");
	vrd_enable_interrupts(&env.d);

	test_getrandom();
	test_source();
	test_config();

	hvn_loop_free(loop);
	env_teardown(&env);
	close(kick);
	close(call);
	return t_done("dev-rng");
}
