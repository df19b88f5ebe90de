/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/loop.h - the data-plane engine: one thread, one io_uring.
 *
 * A loop waits on kick eventfds (multishot poll) and carries the device's
 * own I/O in the same ring, so one io_uring_enter() submits new I/O, signals
 * call eventfds and reaps completions.  Operations are caller-owned structs
 * embedded in the caller's requests: the loop allocates nothing per
 * operation.  A loop belongs to the thread that created it; none of these
 * functions may be called from another thread: to reach a loop from
 * outside, poll an eventfd of your own on it.
 *
 * Where io_uring is forbidden (a seccomp filter, kernel.io_uring_disabled)
 * or missing (an old kernel), the same API runs on epoll (libevent), with
 * the same callbacks in the same places; hvn_loop_get_engine() says which
 * engine a loop runs on, and why it is not io_uring.
 */
#ifndef HVNOTIFY_LOOP_H
#define HVNOTIFY_LOOP_H

#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hvn_loop;
struct hvn_loop_op;

/* hvn_loop_op callback flags */
#define HVN_LOOP_MORE	(1u << 0)	/* a multishot operation stays armed */

/*
 * An operation in flight.  res is what the system call would have
 * returned: a byte count, 0, or a negative errno; for a poll, the ready
 * events.  The callback may submit new operations, including on op itself
 * once it is no longer in flight (no HVN_LOOP_MORE).
 */
typedef void (*hvn_loop_cb)(struct hvn_loop_op *op, int32_t res, uint32_t flags);

struct hvn_loop_op {
	hvn_loop_cb cb;
};

/*
 * Work to run once after the current batch of completions (a queue that
 * completed several requests publishes them and notifies the guest once),
 * or, with hvn_loop_defer_next(), once the loop has been round the kernel
 * again (a queue that used up its share lets other work in first).  The
 * caller zeroes the struct and sets fn; the other fields are the loop's.
 */
struct hvn_loop_defer {
	void (*fn)(struct hvn_loop_defer *defer);
	struct hvn_loop_defer *next;	/* private to the loop */
	uint32_t queued;		/* private to the loop */
};

/* The engine behind a loop. */
enum hvn_loop_engine {
	HVN_LOOP_AUTO = 0,	/* io_uring, or epoll where io_uring cannot run */
	HVN_LOOP_URING = 1,
	HVN_LOOP_EPOLL = 2,
};

int hvn_loop_new(unsigned int entries, struct hvn_loop **loopp);
int hvn_loop_new_engine(enum hvn_loop_engine engine, unsigned int entries,
			struct hvn_loop **loopp);
int hvn_loop_get_engine(const struct hvn_loop *loop, int *uring_err);
void hvn_loop_free(struct hvn_loop *loop);
int hvn_loop_run(struct hvn_loop *loop, int timeout_ms);

int hvn_loop_poll(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, uint32_t events,
		  int multishot);
int hvn_loop_cancel(struct hvn_loop *loop, struct hvn_loop_op *op);
int hvn_loop_readv(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		   const struct iovec *iov, unsigned int iovcnt, uint64_t offset);
int hvn_loop_writev(struct hvn_loop *loop, struct hvn_loop_op *op, int fd,
		    const struct iovec *iov, unsigned int iovcnt, uint64_t offset);
int hvn_loop_fsync(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int datasync);
int hvn_loop_fallocate(struct hvn_loop *loop, struct hvn_loop_op *op, int fd, int mode,
		       uint64_t offset, uint64_t len);
int hvn_loop_signal(struct hvn_loop *loop, int eventfd);
/* Register a file the loop's operations use often (io_uring's fixed files;
 * -EOPNOTSUPP where the engine has none), in the loop's thread. */
int hvn_loop_register_file(struct hvn_loop *loop, int fd);
int hvn_loop_unregister_file(struct hvn_loop *loop, int fd);
int hvn_loop_submit(struct hvn_loop *loop);
void hvn_loop_defer(struct hvn_loop *loop, struct hvn_loop_defer *defer);
void hvn_loop_defer_next(struct hvn_loop *loop, struct hvn_loop_defer *defer);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_LOOP_H */
