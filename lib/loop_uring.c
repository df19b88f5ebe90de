// SPDX-License-Identifier: MIT
/*
 * loop_uring.c - the io_uring engine behind <hvnotify/loop.h>: each
 * operation is an SQE, submitted lazily, and each completion a CQE.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

struct uring_loop {
	struct hvn_loop base;		/* first: a struct hvn_loop * is one of these */
	struct io_uring ring;
};

static const struct loop_engine_ops uring_ops;

/* What every signal writes: eventfds take an 8-byte counter increment.  The
 * buffer must outlive the asynchronous write, hence static. */
static const uint64_t eventfd_one = 1;

/*
 * Multishot polls need Linux 5.13; IORING_FEAT_RSRC_TAGS came with the
 * same release and is the one sign of it the kernel gives.  Without it
 * the kicks would never arrive: refuse, as for a missing io_uring.
 */
static int uring_features_ok(const struct io_uring_params *p)
{
	return (p->features & IORING_FEAT_RSRC_TAGS) && (p->features & IORING_FEAT_EXT_ARG);
}

/*
 * Before Linux 5.12 the rings count against RLIMIT_MEMLOCK, so a large
 * ring fails with ENOMEM on exactly the kernels the loop refuses anyway.
 * Ask a one-entry ring what the kernel has, so that such a kernel reads as
 * too old (ENOSYS, which auto mode falls back on) rather than out of
 * memory.
 */
static int uring_enomem(void)
{
	struct io_uring_params p;
	struct io_uring probe;

	memset(&p, 0, sizeof(p));
	if (io_uring_queue_init_params(1, &probe, &p) < 0)
		return -ENOMEM;
	io_uring_queue_exit(&probe);
	return uring_features_ok(&p) ? -ENOMEM : -ENOSYS;
}

int loop_uring_new(unsigned int entries, struct hvn_loop **loopp)
{
	/* Newest first: a single-issuer ring runs its task work when we enter
	 * the kernel anyway, instead of interrupting the thread with IPIs, and
	 * raises IORING_SQ_TASKRUN when it has some (see uring_reap). */
	static const unsigned int setup_flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	struct io_uring_params p;
	struct uring_loop *loop;
	unsigned int i;
	int r = -EINVAL;

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
	if (r == -ENOMEM)
		r = uring_enomem();
	if (r < 0) {
		free(loop);
		return r;
	}
	if (!uring_features_ok(&p)) {
		io_uring_queue_exit(&loop->ring);
		free(loop);
		return -ENOSYS;
	}
	loop->base.ops = &uring_ops;
	loop->base.engine = HVN_LOOP_URING;
	*loopp = &loop->base;
	return 0;
}

static void uring_destroy(struct hvn_loop *base)
{
	struct uring_loop *loop = (struct uring_loop *)base;

	io_uring_queue_exit(&loop->ring);
	free(loop);
}

/* An SQE, submitting what is queued when the ring is full; NULL with *err. */
static struct io_uring_sqe *get_sqe(struct uring_loop *loop, int *err)
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

/*
 * user_data is the address of the operation's struct hvn_loop_op, or 0 for
 * fire-and-forget work (signals, cancels) whose completion nobody waits for.
 */
static int uring_queue(struct hvn_loop *base, const struct loop_req *req)
{
	struct uring_loop *loop = (struct uring_loop *)base;
	struct io_uring_sqe *sqe;
	int err = 0;

	sqe = get_sqe(loop, &err);
	if (!sqe)
		return err;
	switch (req->kind) {
	case LOOP_REQ_POLL:
		if (req->u.poll.multishot)
			io_uring_prep_poll_multishot(sqe, req->fd, req->u.poll.events);
		else
			io_uring_prep_poll_add(sqe, req->fd, req->u.poll.events);
		break;
	case LOOP_REQ_CANCEL:
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req->op, 0);
		io_uring_sqe_set_data(sqe, NULL);
		return 0;
	case LOOP_REQ_READV:
		io_uring_prep_readv(sqe, req->fd, req->u.rw.iov, req->u.rw.iovcnt, req->u.rw.offset);
		break;
	case LOOP_REQ_WRITEV:
		io_uring_prep_writev(sqe, req->fd, req->u.rw.iov, req->u.rw.iovcnt, req->u.rw.offset);
		break;
	case LOOP_REQ_FSYNC:
		io_uring_prep_fsync(sqe, req->fd, req->u.fsync.datasync ? IORING_FSYNC_DATASYNC : 0);
		break;
	case LOOP_REQ_FALLOCATE:
		io_uring_prep_fallocate(sqe, req->fd, req->u.falloc.mode, (off_t)req->u.falloc.offset,
					(off_t)req->u.falloc.len);
		break;
	case LOOP_REQ_SIGNAL:
		io_uring_prep_write(sqe, req->fd, &eventfd_one, sizeof(eventfd_one), 0);
		io_uring_sqe_set_data(sqe, NULL);
		return 0;
	}
	io_uring_sqe_set_data(sqe, req->op);
	return 0;
}

/*
 * The kernel takes its own reference to each operation's file as it takes
 * the operation, so the caller may close a descriptor it just signalled
 * once this returns.
 */
static int uring_submit(struct hvn_loop *base)
{
	struct uring_loop *loop = (struct uring_loop *)base;
	int r;

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

/*
 * Submission is lazy: SQEs pile up while callbacks run and all go to the
 * kernel in the one io_uring_enter() that also waits for the next
 * completions.
 */
static int uring_reap(struct hvn_loop *base, int timeout_ms, int *err)
{
	struct uring_loop *loop = (struct uring_loop *)base;
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int r = 0, ran = 0;

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
	*err = r < 0 ? r : 0;

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
	return ran;
}

static const struct loop_engine_ops uring_ops = {
	.queue = uring_queue,
	.submit = uring_submit,
	.reap = uring_reap,
	.destroy = uring_destroy,
};
