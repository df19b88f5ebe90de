// SPDX-License-Identifier: MIT
/*
 * loop.c - the data-plane loop against the real kernel: a multishot poll
 * that fires once per eventfd write and stays armed, one-shot polls, polls
 * on a file that cannot wait and on a bad fd, cancel, vectored file I/O at
 * offsets, fsync, fallocate, callbacks only from hvn_loop_run, eventfd
 * signalling as part of the next submission, the timeouts of
 * hvn_loop_run, and deferred work that runs once per batch or waits a
 * round.  On the engine of HVN_TEST_ENGINE (tests/support/engine.h):
 * io_uring by default, epoll in tests/loop-epoll.sh, auto under a seccomp
 * filter in tests/loop-nouring.sh.
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
#include "support/engine.h"

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

static struct hvn_loop *the_loop;
static int rearm_fd;
static struct batch_defer later = { .d.fn = defer_cb }, chained = { .d.fn = NULL };

/* Puts `later` off to the next round, from inside a round. */
static void chain_cb(struct hvn_loop_defer *d)
{
	((struct batch_defer *)d)->runs++;
	hvn_loop_defer_next(the_loop, &later.d);
}

/* A one-shot poll that re-arms itself from its callback, twice. */
static void rearm_cb(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct counting_op *c = (struct counting_op *)((char *)op - offsetof(struct counting_op, op));

	count_cb(op, res, flags);
	if (c->calls < 3 && res > 0)
		c->more += 100 * (hvn_loop_poll(the_loop, op, rearm_fd, POLLIN, 0) != 0);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

	/* A hung wait fails the test rather than hanging make check. */
	alarm(60);
	{
		struct hvn_loop *other = (struct hvn_loop *)&other;

		CHECK(hvn_loop_new(0, &other) == -EINVAL && other == NULL,
		      "0 entries -> EINVAL, and the result pointer cleared");
		other = (struct hvn_loop *)&other;
		CHECK(hvn_loop_new_engine(HVN_LOOP_EPOLL, 32769, &other) == -EINVAL && other == NULL,
		      "more than 32768 entries -> EINVAL, on epoll too");
		CHECK(hvn_loop_new_engine((enum hvn_loop_engine)7, 8, &other) == -EINVAL,
		      "an unknown engine -> EINVAL");
	}
	CHECK(hvn_loop_new(8, NULL) == -EINVAL, "NULL result pointer -> EINVAL");
	CHECK(hvn_loop_new_engine(HVN_LOOP_EPOLL, 8, NULL) == -EINVAL, "NULL result pointer -> EINVAL");
	CHECK(hvn_loop_get_engine(NULL, NULL) == -EINVAL, "the engine of NULL -> EINVAL");
	loop = the_loop = t_loop_new(64);
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

	/* One-shot polls: one callback without MORE, for the first wake-up. */
	{
		struct counting_op once = { .op.cb = count_cb }, again = { .op.cb = rearm_cb };
		struct counting_op gone = { .op.cb = count_cb };
		int bad = dup(efd);

		REQUIRE(read(efd, &v, 8) == 8, "empty the eventfd");
		REQUIRE(hvn_loop_poll(loop, &once.op, efd, POLLIN, 0) == 0, "one-shot poll");
		hvn_loop_run(loop, 10);
		CHECK(once.calls == 0, "a one-shot poll waits for the fd to be ready");
		REQUIRE(write(efd, &one, 8) == 8, "write");
		RUN_UNTIL(loop, once.calls == 1);
		CHECK(once.calls == 1 && once.more == 0 && (once.last_res & POLLIN),
		      "one callback, without MORE, saying readable (res %d)", once.last_res);
		REQUIRE(write(efd, &one, 8) == 8, "write again");
		hvn_loop_run(loop, 20);
		CHECK(once.calls == 1, "and nothing after it");

		/* Armed on a ready fd, a poll calls back at once; the callback
		 * may arm its op again. */
		rearm_fd = efd;
		REQUIRE(hvn_loop_poll(loop, &again.op, efd, POLLIN, 0) == 0, "self-re-arming poll");
		RUN_UNTIL(loop, again.calls == 3);
		hvn_loop_run(loop, 20);
		CHECK(again.calls == 3 && again.more == 0,
		      "a one-shot poll on a ready fd fired, and re-armed from its callback (%d, %d)",
		      again.calls, again.more);

		/* Cancelled in the batch that armed it. */
		REQUIRE(read(efd, &v, 8) == 8, "empty the eventfd");
		REQUIRE(hvn_loop_poll(loop, &once.op, efd, POLLIN, 1) == 0 &&
			hvn_loop_cancel(loop, &once.op) == 0, "poll and cancel in one batch");
		RUN_UNTIL(loop, once.calls == 2);
		CHECK(once.calls == 2 && once.last_res == -ECANCELED && once.more == 0,
		      "the poll ends with -ECANCELED (res %d)", once.last_res);
		REQUIRE(write(efd, &one, 8) == 8, "write");
		hvn_loop_run(loop, 20);
		CHECK(once.calls == 2, "and never fires");
		REQUIRE(hvn_loop_cancel(loop, &gone.op) == 0, "cancel an op not in flight");
		hvn_loop_run(loop, 20);
		CHECK(gone.calls == 0, "no callback for it");

		/* A bad fd: the error comes in the callback. */
		close(bad);
		REQUIRE(hvn_loop_poll(loop, &gone.op, bad, POLLIN, 1) == 0, "poll a closed fd");
		RUN_UNTIL(loop, gone.calls == 1);
		CHECK(gone.calls == 1 && gone.last_res == -EBADF && gone.more == 0,
		      "-EBADF, without MORE (res %d)", gone.last_res);
	}

	/* A real file: a memfd, so the test needs no disk. */
	fd = memfd_create("hvn-loop-test", MFD_CLOEXEC);
	REQUIRE(fd >= 0, "memfd");
	for (i = 0; i < (int)sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	REQUIRE(hvn_loop_writev(loop, &io.op, fd, wv, 2, 4096) == 0, "writev 8 KiB at 4 KiB");
	CHECK(io.calls == 0, "no callback from the call that queues");
	REQUIRE(hvn_loop_submit(loop) == 0, "submit");
	CHECK(io.calls == 0, "nor from hvn_loop_submit");
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

	/* A registered file is the open file, not the number: with another
	 * file put on the same number (dup2), operations through the loop
	 * still reach the registered one, which shows the fixed file is what
	 * the kernel used.  Unregistered, the number means the new file. */
	{
		int other = memfd_create("hvn-loop-other", MFD_CLOEXEC), saved = dup(fd), calls;
		char mark = 'X';

		REQUIRE(other >= 0 && saved >= 0, "a second memfd, and the first kept");
		REQUIRE(pwrite(other, &mark, 1, 0) == 1, "the second file starts with X");
		CHECK(hvn_loop_register_file(NULL, fd) == -EINVAL &&
		      hvn_loop_register_file(loop, -1) == -EINVAL, "bad arguments -> EINVAL");
		r = hvn_loop_register_file(loop, fd);
		if (hvn_loop_get_engine(loop, NULL) == HVN_LOOP_EPOLL) {
			CHECK(r == -EOPNOTSUPP && hvn_loop_unregister_file(loop, fd) == -EOPNOTSUPP,
			      "epoll has no registered files: EOPNOTSUPP (%d)", r);
		} else {
			REQUIRE(r == 0, "register the file (%d)", r);
			CHECK(hvn_loop_register_file(loop, fd) == 0, "twice: counted");
			REQUIRE(dup2(other, fd) == fd, "another file on the same number");
			memset(in, 0, sizeof(in));
			calls = io.calls;
			REQUIRE(hvn_loop_readv(loop, &io.op, fd, rv, 2, 0) == 0, "readv by number");
			RUN_UNTIL(loop, io.calls == calls + 1);
			CHECK(io.last_res == 8192 && in[0] == 0,
			      "the registered file answered (res %d, first byte %d)", io.last_res, in[0]);
			CHECK(hvn_loop_unregister_file(loop, fd) == 0, "unregister once: still registered");
			memset(in, 'Z', sizeof(in));
			REQUIRE(hvn_loop_readv(loop, &io.op, fd, rv, 1, 0) == 0, "readv again");
			RUN_UNTIL(loop, io.calls == calls + 2);
			CHECK(io.last_res == (int)rv[0].iov_len && in[0] == 0,
			      "still the registered file (res %d)", io.last_res);
			CHECK(hvn_loop_unregister_file(loop, fd) == 0, "unregister the last");
			CHECK(hvn_loop_unregister_file(loop, fd) == -ENOENT, "a third time -> ENOENT");
			REQUIRE(hvn_loop_readv(loop, &io.op, fd, rv, 1, 0) == 0, "readv after");
			RUN_UNTIL(loop, io.calls == calls + 3);
			CHECK(io.last_res == 1 && in[0] == mark, "now the number means the new file (res %d)",
			      io.last_res);
			REQUIRE(dup2(saved, fd) == fd, "the first file back on its number");
		}
		close(saved);
		close(other);
	}

	/* A file cannot wait: a poll on it is ready at once, and ends. */
	{
		struct counting_op fp = { .op.cb = count_cb };

		REQUIRE(hvn_loop_poll(loop, &fp.op, fd, POLLIN | POLLOUT, 1) == 0, "multishot poll on a file");
		RUN_UNTIL(loop, fp.calls == 1);
		hvn_loop_run(loop, 20);
		CHECK(fp.calls == 1 && fp.more == 0 && (fp.last_res & (POLLIN | POLLOUT)) == (POLLIN | POLLOUT),
		      "one callback, readable and writable, the poll ended (%d calls, res %#x)",
		      fp.calls, (unsigned int)fp.last_res);
	}

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

	/* A signal submitted before its fd is closed still lands. */
	{
		int d = dup(sig);

		REQUIRE(d >= 0 && hvn_loop_signal(loop, d) == 0, "signal a duplicate");
		REQUIRE(hvn_loop_submit(loop) == 0, "submit it");
		close(d);
		RUN_UNTIL(loop, read(sig, &v, 8) == 8);
		CHECK(v == 1, "the signal reached the eventfd after its fd was closed (%llu)",
		      (unsigned long long)v);
	}

	/* Timeouts, and work that keeps hvn_loop_run from sleeping. */
	{
		long long t0, el;

		/* The signal's own completion (no callback) may still be there,
		 * and would end the wait. */
		for (i = 0; i < 5; i++)
			hvn_loop_run(loop, 10);
		t0 = now_ms();
		r = hvn_loop_run(loop, 60);
		el = now_ms() - t0;
		CHECK(r == 0 && el >= 50 && el < 5000, "run(60) with nothing to do waited (%lld ms, r %d)", el, r);
		t0 = now_ms();
		r = hvn_loop_run(loop, 0);
		el = now_ms() - t0;
		CHECK(r == 0 && el < 50, "run(0) did not wait (%lld ms)", el);
		REQUIRE(hvn_loop_fsync(loop, &io.op, fd, 0) == 0, "fsync");
		i = io.calls;
		r = hvn_loop_run(loop, -1);
		CHECK(r == 1 && io.calls == i + 1 && io.last_res == 0, "run(-1) returned with the fsync (r %d)", r);
		hvn_loop_defer_next(loop, &later.d);
		r = hvn_loop_run(loop, -1);
		CHECK(r == 1 && later.runs == 1, "run(-1) did not sleep with work put off to it (r %d)", r);
		chained.d.fn = chain_cb;
		hvn_loop_defer(loop, &chained.d);
		hvn_loop_run(loop, 0);
		CHECK(chained.runs == 1 && later.runs == 1, "work put off in a round waits for the next one");
		r = hvn_loop_run(loop, -1);
		CHECK(r == 1 && later.runs == 2, "and runs there, without a wait (r %d)", r);
	}

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
