// SPDX-License-Identifier: MIT
/*
 * loop_uring.c - the io_uring engine behind <hvnotify/loop.h>: each
 * operation is an SQE, submitted lazily, and each completion a CQE.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop_internal.h"

/*
 * Registered (fixed) files: the kernel takes no reference to a fixed
 * file per operation, where it takes one (an atomic increment and
 * decrement on a struct file that every worker using the same image
 * shares) for a plain descriptor.  The table is sparse, so that a file
 * comes and goes with one update and no quiescing of the ring, and small:
 * a loop serves a few images.  The lookup is a scan of the files in use,
 * as there are one or two.
 */
#define FIXED_FILES 64

struct fixed_file {
	int fd;
	unsigned int slot;		/* its index in the kernel's table */
	unsigned int refs;		/* hvn_loop_register_file() calls */
};

struct uring_loop {
	struct hvn_loop base;		/* first: a struct hvn_loop * is one of these */
	struct io_uring ring;
	bool fixed_ok;			/* the kernel took a sparse file table */
	bool nowait_ok;			/* RWF_NOWAIT fails a write to a full eventfd */
	unsigned int nr_fixed;
	struct fixed_file fixed[FIXED_FILES];
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

/* One write of 1 to efd with RWF_NOWAIT: its result, or -ETIME if the
 * kernel kept it waiting (then it is left to complete once drained). */
static int probe_write(struct io_uring *ring, int efd)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int r;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, efd, &eventfd_one, sizeof(eventfd_one), 0);
	sqe->rw_flags = RWF_NOWAIT;
	io_uring_sqe_set_data(sqe, NULL);
	r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
	if (r < 0)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

/*
 * Does a write with RWF_NOWAIT to a non-blocking eventfd whose counter is
 * full fail at once with EAGAIN?  Without the flag, a kernel whose eventfd
 * supports non-blocking attempts (FMODE_NOWAIT) arms a poll and writes once
 * there is room, holding the request: a frontend that keeps its call
 * counter full would make the daemon pile one up per batch.  Asked once
 * per loop, of a real eventfd, as kernels differ.
 */
static bool nowait_signals_work(struct io_uring *ring)
{
	const uint64_t fill = UINT64_C(0xfffffffffffffffe) - 1;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	bool ok = false;
	uint64_t v;

	if (efd < 0)
		return false;
	if (probe_write(ring, efd) == (int)sizeof(eventfd_one) &&
	    write(efd, &fill, sizeof(fill)) == sizeof(fill)) {
		int r = probe_write(ring, efd);

		ok = r == -EAGAIN;
		if (r == -ETIME) {
			/* Held: drain the counter so that it completes, and
			 * take its completion. */
			struct io_uring_cqe *cqe;

			if (read(efd, &v, sizeof(v)) == sizeof(v) &&
			    io_uring_wait_cqe(ring, &cqe) == 0)
				io_uring_cqe_seen(ring, cqe);
		}
	}
	close(efd);
	return ok;
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
	/* Sparse tables came with Linux 5.19; before, no fixed files. */
	loop->fixed_ok = io_uring_register_files_sparse(&loop->ring, FIXED_FILES) == 0;
	loop->nowait_ok = nowait_signals_work(&loop->ring);
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

static struct fixed_file *fixed_find(struct uring_loop *loop, int fd)
{
	unsigned int i;

	for (i = 0; i < loop->nr_fixed; i++)
		if (loop->fixed[i].fd == fd)
			return &loop->fixed[i];
	return NULL;
}

/* A free slot of the kernel's table: one that no file in use holds. */
static unsigned int fixed_free_slot(const struct uring_loop *loop)
{
	unsigned int slot, i;

	for (slot = 0;; slot++) {
		for (i = 0; i < loop->nr_fixed && loop->fixed[i].slot != slot; i++)
			;
		if (i == loop->nr_fixed)
			return slot;
	}
}

static int uring_register_file(struct hvn_loop *base, int fd)
{
	struct uring_loop *loop = (struct uring_loop *)base;
	struct fixed_file *f = fixed_find(loop, fd);
	unsigned int slot;
	int r;

	if (!loop->fixed_ok)
		return -EOPNOTSUPP;
	if (f) {
		f->refs++;
		return 0;
	}
	if (loop->nr_fixed == FIXED_FILES)
		return -ENOSPC;
	slot = fixed_free_slot(loop);
	r = io_uring_register_files_update(&loop->ring, slot, &fd, 1);
	if (r < 0)
		return r;
	if (r != 1)
		return -EIO;
	loop->fixed[loop->nr_fixed++] = (struct fixed_file){ fd, slot, 1 };
	return 0;
}

/*
 * Operations already queued or in flight keep the file: the kernel holds
 * a fixed file for every request that named it until the request ends,
 * whatever the table says meanwhile.
 */
static int uring_unregister_file(struct hvn_loop *base, int fd)
{
	struct uring_loop *loop = (struct uring_loop *)base;
	struct fixed_file *f = fixed_find(loop, fd);
	int none = -1, r;

	if (!loop->fixed_ok)
		return -EOPNOTSUPP;
	if (!f)
		return -ENOENT;
	if (--f->refs)
		return 0;
	/* Queued SQEs name the slot: the kernel must see them before the
	 * slot is emptied (or given to another file). */
	r = io_uring_submit(&loop->ring);
	if (r >= 0)
		r = io_uring_register_files_update(&loop->ring, f->slot, &none, 1);
	*f = loop->fixed[--loop->nr_fixed];
	return r < 0 ? r : 0;
}

/* The descriptor an SQE names for fd, and IOSQE_FIXED_FILE if registered. */
static void sqe_set_file(struct uring_loop *loop, struct io_uring_sqe *sqe, int fd)
{
	struct fixed_file *f = loop->nr_fixed ? fixed_find(loop, fd) : NULL;

	if (f) {
		sqe->fd = (int)f->slot;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
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
		sqe_set_file(loop, sqe, req->fd);
		break;
	case LOOP_REQ_WRITEV:
		io_uring_prep_writev(sqe, req->fd, req->u.rw.iov, req->u.rw.iovcnt, req->u.rw.offset);
		sqe_set_file(loop, sqe, req->fd);
		break;
	case LOOP_REQ_FSYNC:
		io_uring_prep_fsync(sqe, req->fd, req->u.fsync.datasync ? IORING_FSYNC_DATASYNC : 0);
		sqe_set_file(loop, sqe, req->fd);
		break;
	case LOOP_REQ_FALLOCATE:
		io_uring_prep_fallocate(sqe, req->fd, req->u.falloc.mode, (off_t)req->u.falloc.offset,
					(off_t)req->u.falloc.len);
		sqe_set_file(loop, sqe, req->fd);
		break;
	case LOOP_REQ_SIGNAL:
		io_uring_prep_write(sqe, req->fd, &eventfd_one, sizeof(eventfd_one), 0);
		if (req->u.signal.nowait && loop->nowait_ok)
			sqe->rw_flags = RWF_NOWAIT;
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
	.register_file = uring_register_file,
	.unregister_file = uring_unregister_file,
};
