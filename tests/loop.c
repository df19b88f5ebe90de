// SPDX-License-Identifier: MIT
/*
 * loop.c - the io_uring data-plane engine against the real kernel: a
 * multishot poll that fires once per eventfd write and stays armed, cancel,
 * vectored file I/O at offsets, fsync, fallocate, eventfd signalling as part
 * of the next submission, and deferred work that runs once per batch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/loop.h>

#include "support/check.h"

struct counting_op {
	struct hvn_loop_op op;
	int calls, more, last_res;
};

static void count_cb(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct counting_op *c = (struct counting_op *)((char *)op - offsetof(struct counting_op, op));

	c->calls++;
	c->last_res = res;
	if (flags & HVN_LOOP_MORE)
		c->more++;
}

struct batch_defer {
	struct hvn_loop_defer d;
	int runs;
};

static void defer_cb(struct hvn_loop_defer *d)
{
	((struct batch_defer *)d)->runs++;
}

/* Run until pred holds or 200 rounds went by. */
#define RUN_UNTIL(loop, pred) do {					\
	int _i;								\
	for (_i = 0; _i < 200 && !(pred); _i++)				\
		hvn_loop_run(loop, 50);					\
} while (0)

int main(void)
{
	struct hvn_loop *loop;
	struct counting_op kick = { .op.cb = count_cb }, io = { .op.cb = count_cb };
	struct batch_defer bd = { .d.fn = defer_cb };
	int efd, sig, fd, r, i;
	uint64_t one = 1, v;
	char out[8192], in[8192];
	struct iovec wv[2] = { { out, 4096 }, { out + 4096, 4096 } };
	struct iovec rv[2] = { { in, 100 }, { in + 100, 8092 } };
	struct stat st;

	r = hvn_loop_new(64, &loop);
	if (r == -EPERM || r == -ENOSYS) {
		printf("io_uring unavailable here (%s): nothing to test\n", strerror(-r));
		return T_EXIT_SKIP;
	}
	REQUIRE(r == 0, "hvn_loop_new (r=%d)", r);
	{
		struct hvn_loop *other = (struct hvn_loop *)&other;

		CHECK(hvn_loop_new(0, &other) == -EINVAL && other == NULL,
		      "0 entries -> EINVAL, and the result pointer cleared");
	}
	CHECK(hvn_loop_new(8, NULL) == -EINVAL, "NULL result pointer -> EINVAL");
	CHECK(hvn_loop_poll(loop, NULL, 0, POLLIN, 0) == -EINVAL, "NULL op -> EINVAL");
	CHECK(hvn_loop_run(NULL, 0) == -EINVAL, "run on NULL -> EINVAL");
	CHECK(hvn_loop_run(loop, 0) == 0, "run with nothing queued and timeout 0 returns 0");

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(hvn_loop_poll(loop, &kick.op, efd, POLLIN, 1) == 0, "multishot poll on an eventfd");
	hvn_loop_run(loop, 0);
	CHECK(kick.calls == 0, "nothing fires before the first write");
	for (i = 0; i < 3; i++) {
		REQUIRE(write(efd, &one, 8) == 8, "kick %d", i);
		RUN_UNTIL(loop, kick.calls == i + 1);
	}
	CHECK(kick.calls == 3 && kick.more == 3, "3 writes, 3 callbacks, each still armed (%d, %d)",
	      kick.calls, kick.more);
	CHECK(kick.last_res & POLLIN, "the poll result says readable");
	/* Busy polling (timeout 0) must see a kick without blocking: the
	 * completion may wait as task work until we enter the kernel. */
	REQUIRE(write(efd, &one, 8) == 8, "kick while busy polling");
	for (i = 0; i < 1000000 && kick.calls == 3; i++)
		hvn_loop_run(loop, 0);
	CHECK(kick.calls == 4, "a busy-polling loop saw the kick (after %d rounds)", i);
	REQUIRE(hvn_loop_cancel(loop, &kick.op) == 0, "cancel the poll");
	RUN_UNTIL(loop, kick.calls == 5);
	CHECK(kick.calls == 5 && kick.more == 4 && kick.last_res == -ECANCELED,
	      "the cancelled poll reports -ECANCELED, no longer armed (res %d)", kick.last_res);
	REQUIRE(write(efd, &one, 8) == 8, "write after cancel");
	hvn_loop_run(loop, 20);
	CHECK(kick.calls == 5, "no callback after cancel");

	/* A real file: a memfd, so the test needs no disk. */
	fd = memfd_create("hvn-loop-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0, "memfd");
	for (i = 0; i < (int)sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	REQUIRE(hvn_loop_writev(loop, &io.op, fd, wv, 2, 4096) == 0, "writev 8 KiB at 4 KiB");
	RUN_UNTIL(loop, io.calls == 1);
	CHECK(io.calls == 1 && io.last_res == 8192, "writev wrote 8192 (res %d)", io.last_res);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 12288, "file is 12 KiB (%lld)", (long long)st.st_size);
	memset(in, 0, sizeof(in));
	REQUIRE(hvn_loop_readv(loop, &io.op, fd, rv, 2, 4096) == 0, "readv into two pieces");
	RUN_UNTIL(loop, io.calls == 2);
	CHECK(io.last_res == 8192 && memcmp(in, out, sizeof(out)) == 0, "readv read back the same bytes");
	REQUIRE(hvn_loop_readv(loop, &io.op, fd, rv, 2, 12288) == 0, "readv at end of file");
	RUN_UNTIL(loop, io.calls == 3);
	CHECK(io.last_res == 0, "read at EOF returns 0 (res %d)", io.last_res);
	REQUIRE(hvn_loop_fsync(loop, &io.op, fd, 1) == 0, "fdatasync");
	RUN_UNTIL(loop, io.calls == 4);
	CHECK(io.last_res == 0, "fdatasync completed (res %d)", io.last_res);
	REQUIRE(hvn_loop_fallocate(loop, &io.op, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   4096, 4096) == 0, "punch a hole");
	RUN_UNTIL(loop, io.calls == 5);
	CHECK(io.last_res == 0, "fallocate(PUNCH_HOLE) completed (res %d)", io.last_res);
	REQUIRE(pread(fd, in, 4096, 4096) == 4096, "pread the hole");
	for (i = 0, r = 0; i < 4096; i++)
		r |= in[i];
	CHECK(r == 0, "the punched range reads back as zeroes");
	REQUIRE(hvn_loop_readv(loop, &io.op, -1, rv, 1, 0) == 0, "readv on fd -1");
	RUN_UNTIL(loop, io.calls == 6);
	CHECK(io.last_res == -EBADF, "a bad fd completes with -EBADF (res %d)", io.last_res);

	/* Signals ride on the next submission; deferred work runs once. */
	sig = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(hvn_loop_signal(loop, sig) == 0 && hvn_loop_signal(loop, sig) == 0, "two signals queued");
	CHECK(read(sig, &v, 8) < 0 && errno == EAGAIN, "nothing signalled before the loop runs");
	hvn_loop_defer(loop, &bd.d);
	hvn_loop_defer(loop, &bd.d);
	hvn_loop_run(loop, 0);
	CHECK(bd.runs == 1, "deferred twice in a batch, run once (%d)", bd.runs);
	{
		/* Work deferred between runs is due: the next run does not
		 * sleep first (nothing else is coming to wake it). */
		struct timespec t0, t1;
		long ms;

		hvn_loop_defer(loop, &bd.d);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		hvn_loop_run(loop, 3000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		CHECK(bd.runs == 2 && ms < 1000, "deferred between runs: the next run does it "
		      "without waiting (%d runs, %ld ms)", bd.runs, ms);
	}
	RUN_UNTIL(loop, read(sig, &v, 8) == 8);
	CHECK(v == 2, "both signals reached the eventfd (counter %llu)", (unsigned long long)v);

	/* Many operations at once: more than the ring's 64 entries. */
	{
		static struct counting_op many[200];
		int done = 0;

		for (i = 0; i < 200; i++) {
			many[i].op.cb = count_cb;
			REQUIRE(hvn_loop_fsync(loop, &many[i].op, fd, 1) == 0, "fsync %d queued", i);
		}
		for (i = 0; i < 400 && done < 200; i++) {
			int j;

			hvn_loop_run(loop, 50);
			for (j = 0, done = 0; j < 200; j++)
				done += many[j].calls;
		}
		CHECK(done == 200, "200 operations through a 64-entry ring all completed (%d)", done);
	}

	close(fd);
	close(efd);
	close(sig);
	hvn_loop_free(loop);
	return t_done("loop");
}
