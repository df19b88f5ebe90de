// SPDX-License-Identifier: MIT
/*
 * loop.c - <hvnotify/loop.h> whatever the engine: choosing the engine,
 * checking arguments, and the work deferred to the end of a batch or to the
 * next round, which only needs to know when a round ends.
 */
#include <errno.h>
#include <stddef.h>

#include "loop_internal.h"

/*
 * The errors that say "io_uring is not for this process" rather than
 * "this request is wrong": EPERM from a seccomp filter (Docker's default
 * profile) or from kernel.io_uring_disabled, EACCES from a security
 * module's policy, ENOSYS from a kernel without io_uring or one too old
 * for the loop (and from filters that answer ENOSYS, as gVisor does),
 * EOPNOTSUPP from kernels and sandboxes that have the system call but not
 * what it needs.
 */
static int uring_forbidden(int err)
{
	return err == -EPERM || err == -EACCES || err == -ENOSYS || err == -EOPNOTSUPP;
}

int hvn_loop_new_engine(enum hvn_loop_engine engine, unsigned int entries,
			struct hvn_loop **loopp)
{
	int r, uring_err = 0;

	if (!loopp)
		return -EINVAL;
	*loopp = NULL;
	/* Both engines take the same sizes, so that a program that works on
	 * one does not fail on the other for its arguments. */
	if (entries == 0 || entries > 32768)
		return -EINVAL;
	switch (engine) {
	case HVN_LOOP_URING:
		return loop_uring_new(entries, loopp);
	case HVN_LOOP_EPOLL:
		return loop_epoll_new(entries, loopp);
	case HVN_LOOP_AUTO:
		r = loop_uring_new(entries, loopp);
		if (!uring_forbidden(r))
			return r;
		uring_err = r;
		r = loop_epoll_new(entries, loopp);
		if (r < 0)
			return r;
		(*loopp)->uring_err = uring_err;
		return 0;
	}
	return -EINVAL;
}

int hvn_loop_new(unsigned int entries, struct hvn_loop **loopp)
{
	return hvn_loop_new_engine(HVN_LOOP_AUTO, entries, loopp);
}

int hvn_loop_get_engine(const struct hvn_loop *loop, int *uring_err)
{
	if (!loop)
		return -EINVAL;
	if (uring_err)
		*uring_err = loop->uring_err;
	return (int)loop->engine;
}

void hvn_loop_free(struct hvn_loop *loop)
{
	if (loop)
		loop->ops->destroy(loop);
}

/* Every operation with a callback needs a loop and an op that has one. */
static int queue_op(struct hvn_loop *loop, struct loop_req *req)
{
	if (!loop || !req->op || !req->op->cb)
		return -EINVAL;
	return loop->ops->queue(loop, req);
}

int hvn_loop_poll(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, uint32_t events,
		  int multishot)
{
	struct loop_req req = { .kind = LOOP_REQ_POLL, .fd = fd, .op = op };

	req.u.poll.events = events;
	req.u.poll.multishot = !!multishot;
	return queue_op(loop, &req);
}

/* The op's callback still runs, with -ECANCELED, unless it completed first. */
int hvn_loop_cancel(struct hvn_loop *loop, struct hvn_loop_op *op)
{
	struct loop_req req = { .kind = LOOP_REQ_CANCEL, .fd = -1, .op = op };

	return queue_op(loop, &req);
}

int hvn_loop_readv(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		   const struct iovec *iov, unsigned int iovcnt, uint64_t offset)
{
	struct loop_req req = { .kind = LOOP_REQ_READV, .fd = fd, .op = op };

	req.u.rw.iov = iov;
	req.u.rw.iovcnt = iovcnt;
	req.u.rw.offset = offset;
	return queue_op(loop, &req);
}

int hvn_loop_writev(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		    const struct iovec *iov, unsigned int iovcnt, uint64_t offset)
{
	struct loop_req req = { .kind = LOOP_REQ_WRITEV, .fd = fd, .op = op };

	req.u.rw.iov = iov;
	req.u.rw.iovcnt = iovcnt;
	req.u.rw.offset = offset;
	return queue_op(loop, &req);
}

int hvn_loop_fsync(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int datasync)
{
	struct loop_req req = { .kind = LOOP_REQ_FSYNC, .fd = fd, .op = op };

	req.u.fsync.datasync = datasync;
	return queue_op(loop, &req);
}

int hvn_loop_fallocate(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int mode,
		       uint64_t offset, uint64_t len)
{
	struct loop_req req = { .kind = LOOP_REQ_FALLOCATE, .fd = fd, .op = op };

	req.u.falloc.mode = mode;
	req.u.falloc.offset = offset;
	req.u.falloc.len = len;
	return queue_op(loop, &req);
}

/* Signal an eventfd (a call fd) as part of the next submission. */
static int queue_signal(struct hvn_loop *loop, int eventfd, int nowait)
{
	struct loop_req req = { .kind = LOOP_REQ_SIGNAL, .fd = eventfd };

	if (!loop || eventfd < 0)
		return -EINVAL;
	req.u.signal.nowait = nowait;
	return loop->ops->queue(loop, &req);
}

int hvn_loop_signal(struct hvn_loop *loop, int eventfd)
{
	return queue_signal(loop, eventfd, 0);
}

int loop_signal_nowait(struct hvn_loop *loop, int eventfd)
{
	return queue_signal(loop, eventfd, 1);
}

/*
 * Registered files are an engine's business (io_uring's fixed files); an
 * engine without them says so, and its operations on fd work as before.
 */
int hvn_loop_register_file(struct hvn_loop *loop, int fd)
{
	if (!loop || fd < 0)
		return -EINVAL;
	if (!loop->ops->register_file)
		return -EOPNOTSUPP;
	return loop->ops->register_file(loop, fd);
}

int hvn_loop_unregister_file(struct hvn_loop *loop, int fd)
{
	if (!loop || fd < 0)
		return -EINVAL;
	if (!loop->ops->unregister_file)
		return -EOPNOTSUPP;
	return loop->ops->unregister_file(loop, fd);
}

/*
 * Hand the queued operations to the kernel now, so that the caller may
 * close a descriptor it just signalled once this returns.
 */
int hvn_loop_submit(struct hvn_loop *loop)
{
	if (!loop)
		return -EINVAL;
	return loop->ops->submit(loop);
}

void hvn_loop_defer(struct hvn_loop *loop, struct hvn_loop_defer *defer)
{
	if (defer->queued)
		return;
	defer->queued = 1;
	defer->next = loop->deferred;
	loop->deferred = defer;
}

/* Queued for the next hvn_loop_run, which then does not block. */
void hvn_loop_defer_next(struct hvn_loop *loop, struct hvn_loop_defer *defer)
{
	if (defer->queued)
		return;
	defer->queued = 1;
	defer->next = loop->next_round;
	loop->next_round = defer;
}

static void run_deferred(struct hvn_loop *loop)
{
	/* A deferred function may defer again (itself or another): loop
	 * until the list stays empty. */
	while (loop->deferred) {
		struct hvn_loop_defer *d = loop->deferred;

		loop->deferred = NULL;
		while (d) {
			struct hvn_loop_defer *next = d->next;

			d->queued = 0;
			d->fn(d);
			d = next;
		}
	}
}

/*
 * Submit what is queued, wait up to timeout_ms (-1: forever, 0: not at all)
 * for a completion, run the callbacks of every completion that is there,
 * then the deferred work.  Returns the number of callbacks run, or a
 * negative errno if the engine could not submit or wait (-EINTR: a signal
 * interrupted the wait) and nothing was there to run.
 */
int hvn_loop_run(struct hvn_loop *loop, int timeout_ms)
{
	struct hvn_loop_defer *this_round;
	int err = 0, ran;

	if (!loop)
		return -EINVAL;
	/* Work put off to this round waits: look at the kernel, but do not
	 * sleep.  What is put off during this round is for the next one.
	 * Nor with work deferred since the last run (from outside a run: a
	 * queue started, or polled, between runs completed a request, whose
	 * flush is here): it would wait for an event that need not come,
	 * the guest waiting for that very completion. */
	this_round = loop->next_round;
	loop->next_round = NULL;
	if (this_round || loop->deferred)
		timeout_ms = 0;
	/* Whatever the engine says, run what completed. */
	ran = loop->ops->reap(loop, timeout_ms, &err);
	/* What was put off to this round runs with this batch's work. */
	while (this_round) {
		struct hvn_loop_defer *d = this_round;

		this_round = d->next;
		d->next = loop->deferred;
		loop->deferred = d;
		ran++;
	}
	run_deferred(loop);
	if (!ran && err < 0)
		return err;
	return ran;
}
