// SPDX-License-Identifier: MIT
/*
 * loop_uring.c - the io_uring engine behind <hvnotify/loop.h>.
 *
 * Each operation's user_data is the address of its struct hvn_loop_op;
 * user_data 0 marks fire-and-forget work (call-eventfd signals, cancels)
 * whose completion nobody waits for.  Submission is lazy: SQEs pile up
 * while callbacks run and all go to the kernel in the one io_uring_enter()
 * that also waits for the next completions.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "hvnotify/loop.h"

struct hvn_loop {
	struct io_uring ring;
	struct hvn_loop_defer *deferred;	/* LIFO of work for after the batch */
	struct hvn_loop_defer *next_round;	/* for after the next enter */
};

/* What every signal writes: eventfds take an 8-byte counter increment.  The
 * buffer must outlive the asynchronous write, hence static. */
static const uint64_t eventfd_one = 1;

int hvn_loop_new(unsigned int entries, struct hvn_loop **loopp)
{
	/* Newest first: a single-issuer ring runs its task work when we enter
	 * the kernel anyway, instead of interrupting the thread with IPIs, and
	 * raises IORING_SQ_TASKRUN when it has some (see hvn_loop_run). */
	static const unsigned int setup_flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	struct io_uring_params p;
	struct hvn_loop *loop;
	unsigned int i;
	int r = -EINVAL;

	if (!loopp)
		return -EINVAL;
	*loopp = NULL;
	if (entries == 0)
		return -EINVAL;
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	for (i = 0; i < sizeof(setup_flags) / sizeof(setup_flags[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = setup_flags[i];
		r = io_uring_queue_init_params(entries, &loop->ring, &p);
		/* EINVAL: a flag this kernel does not know; try an older set. */
		if (r != -EINVAL)
			break;
	}
	if (r < 0) {
		free(loop);
		return r;
	}
	/*
	 * Multishot polls need Linux 5.13; IORING_FEAT_RSRC_TAGS came with the
	 * same release and is the one sign of it the kernel gives.  Without it
	 * the kicks would never arrive: refuse, as for a missing io_uring.
	 */
	if (!(p.features & IORING_FEAT_RSRC_TAGS) || !(p.features & IORING_FEAT_EXT_ARG)) {
		io_uring_queue_exit(&loop->ring);
		free(loop);
		return -ENOSYS;
	}
	*loopp = loop;
	return 0;
}

void hvn_loop_free(struct hvn_loop *loop)
{
	if (!loop)
		return;
	io_uring_queue_exit(&loop->ring);
	free(loop);
}

/* An SQE, submitting what is queued when the ring is full; NULL with *err. */
static struct io_uring_sqe *get_sqe(struct hvn_loop *loop, int *err)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (!sqe) {
		int r = io_uring_submit(&loop->ring);

		sqe = io_uring_get_sqe(&loop->ring);
		if (!sqe)
			*err = r < 0 ? r : -EBUSY;
	}
	return sqe;
}

static void set_op(struct io_uring_sqe *sqe, struct hvn_loop_op *op)
{
	io_uring_sqe_set_data(sqe, op);
}

/* Every operation needs a loop and an op with a callback. */
#define GET_SQE(loop, op, sqe, err) do {				\
	if (!(loop) || !(op) || !(op)->cb)				\
		return -EINVAL;						\
	(sqe) = get_sqe(loop, &(err));					\
	if (!(sqe))							\
		return (err);						\
} while (0)

int hvn_loop_poll(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, uint32_t events,
		  int multishot)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	if (multishot)
		io_uring_prep_poll_multishot(sqe, fd, events);
	else
		io_uring_prep_poll_add(sqe, fd, events);
	set_op(sqe, op);
	return 0;
}

/* The op's callback still runs, with -ECANCELED, unless it completed first. */
int hvn_loop_cancel(struct hvn_loop *loop, struct hvn_loop_op *op)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

int hvn_loop_readv(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		   const struct iovec *iov, unsigned int iovcnt, uint64_t offset)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	io_uring_prep_readv(sqe, fd, iov, iovcnt, offset);
	set_op(sqe, op);
	return 0;
}

int hvn_loop_writev(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		    const struct iovec *iov, unsigned int iovcnt, uint64_t offset)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	io_uring_prep_writev(sqe, fd, iov, iovcnt, offset);
	set_op(sqe, op);
	return 0;
}

int hvn_loop_fsync(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int datasync)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
	set_op(sqe, op);
	return 0;
}

int hvn_loop_fallocate(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int mode,
		       uint64_t offset, uint64_t len)
{
	struct io_uring_sqe *sqe;
	int err;

	GET_SQE(loop, op, sqe, err);
	io_uring_prep_fallocate(sqe, fd, mode, (off_t)offset, (off_t)len);
	set_op(sqe, op);
	return 0;
}

/* Signal an eventfd (a call fd) as part of the next submission. */
int hvn_loop_signal(struct hvn_loop *loop, int eventfd)
{
	struct io_uring_sqe *sqe;
	int err = 0;

	if (!loop || eventfd < 0)
		return -EINVAL;
	sqe = get_sqe(loop, &err);
	if (!sqe)
		return err;
	io_uring_prep_write(sqe, eventfd, &eventfd_one, sizeof(eventfd_one), 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
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

/*
 * Hand the queued operations to the kernel now.  The kernel takes its own
 * reference to each operation's file as it takes the operation, so the
 * caller may close a descriptor it just signalled once this returns.
 */
int hvn_loop_submit(struct hvn_loop *loop)
{
	int r;

	if (!loop)
		return -EINVAL;
	/* The kernel may take fewer than offered (e.g. out of memory for a
	 * request): offer the rest until it takes none. */
	while (io_uring_sq_ready(&loop->ring)) {
		r = io_uring_submit(&loop->ring);
		if (r < 0)
			return r;
		if (r == 0)
			return -EAGAIN;
	}
	return 0;
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
 * negative errno if the kernel refused to submit or wait (-EINTR: a signal
 * interrupted the wait) and nothing was there to run.
 */
int hvn_loop_run(struct hvn_loop *loop, int timeout_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct hvn_loop_defer *this_round;
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int r = 0, ran = 0;

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
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		tsp = &ts;
	}
	if (timeout_ms != 0) {
		r = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, tsp, NULL);
	} else if (io_uring_sq_ready(&loop->ring) ||
		   (IO_URING_READ_ONCE(*loop->ring.sq.kflags) &
		    (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
		/* Enter only when there is something to submit, completions
		 * waiting as task work (COOP_TASKRUN) or held back by a full
		 * completion queue: a busy poll of an idle loop makes no
		 * system call. */
		r = io_uring_submit_and_get_events(&loop->ring);
	}
	if (r == -ETIME)
		r = 0;

	/* Whatever the kernel said, run what completed. */
	io_uring_for_each_cqe(&loop->ring, head, cqe) {
		struct hvn_loop_op *op = io_uring_cqe_get_data(cqe);

		seen++;
		if (op) {
			op->cb(op, cqe->res, (cqe->flags & IORING_CQE_F_MORE) ? HVN_LOOP_MORE : 0);
			ran++;
		}
	}
	io_uring_cq_advance(&loop->ring, seen);
	/* What was put off to this round runs with this batch's work. */
	while (this_round) {
		struct hvn_loop_defer *d = this_round;

		this_round = d->next;
		d->next = loop->deferred;
		loop->deferred = d;
		ran++;
	}
	run_deferred(loop);
	if (!ran && r < 0)
		return r;
	return ran;
}
