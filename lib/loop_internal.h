/* SPDX-License-Identifier: MIT */
/*
 * loop_internal.h - what the engines behind <hvnotify/loop.h> share.
 *
 * lib/loop.c holds the public functions: it checks their arguments, turns
 * each operation into a struct loop_req for the engine, and keeps the work
 * deferred to the end of a batch or to the next round, which is the same
 * whatever the engine.  An engine (loop_uring.c, loop_epoll.c) embeds
 * struct hvn_loop at the start of its own loop and fills in the ops table:
 * queue operations, submit them, and reap completions.
 */
#ifndef HVN_LOOP_INTERNAL_H
#define HVN_LOOP_INTERNAL_H

#include <stdint.h>
#include <sys/uio.h>

#include "hvnotify/loop.h"

enum loop_req_kind {
	LOOP_REQ_POLL,		/* op, fd, poll.events, poll.multishot */
	LOOP_REQ_CANCEL,	/* op: the operation to cancel; no callback */
	LOOP_REQ_READV,		/* op, fd, rw */
	LOOP_REQ_WRITEV,	/* op, fd, rw */
	LOOP_REQ_FSYNC,		/* op, fd, fsync */
	LOOP_REQ_FALLOCATE,	/* op, fd, falloc */
	LOOP_REQ_SIGNAL,	/* fd: an eventfd to add 1 to; no callback; signal */
};

/* One operation, as the caller asked for it; checked by loop.c. */
struct loop_req {
	enum loop_req_kind kind;
	int fd;
	struct hvn_loop_op *op;
	union {
		struct {
			uint32_t events;
			int multishot;
		} poll;
		struct {
			const struct iovec *iov;
			unsigned int iovcnt;
			uint64_t offset;
		} rw;
		struct {
			int datasync;
		} fsync;
		struct {
			int mode;
			uint64_t offset, len;
		} falloc;
		struct {
			int nowait;	/* fd is O_NONBLOCK: a full counter fails it */
		} signal;
	} u;
};

struct loop_engine_ops {
	/* Queue req for the next submission: 0, or a negative errno and
	 * nothing queued. */
	int (*queue)(struct hvn_loop *loop, const struct loop_req *req);
	/* hvn_loop_submit(). */
	int (*submit)(struct hvn_loop *loop);
	/* Submit, wait up to timeout_ms (-1: no limit, 0: not at all) for a
	 * completion, run the callbacks of what completed: the number run.
	 * *err: why submitting or waiting failed, or 0. */
	int (*reap)(struct hvn_loop *loop, int timeout_ms, int *err);
	void (*destroy)(struct hvn_loop *loop);
	/* hvn_loop_register_file() and hvn_loop_unregister_file(); NULL:
	 * the engine has no registered files. */
	int (*register_file)(struct hvn_loop *loop, int fd);
	int (*unregister_file)(struct hvn_loop *loop, int fd);
};

/* The head of every engine's loop. */
struct hvn_loop {
	const struct loop_engine_ops *ops;
	enum hvn_loop_engine engine;
	int uring_err;				/* why auto mode is not on io_uring */
	struct hvn_loop_defer *deferred;	/* LIFO of work for after the batch */
	struct hvn_loop_defer *next_round;	/* for the next hvn_loop_run */
};

/* Each creates a loop of its engine with the head filled in but for
 * uring_err: 0, or a negative errno and *loopp untouched. */
/*
 * hvn_loop_signal() for an eventfd the caller made non-blocking: a signal
 * that finds the counter full is dropped, where io_uring would otherwise
 * hold the write in the kernel until there is room, one more for each
 * signal, for as long as the other side leaves the counter full.
 */
int loop_signal_nowait(struct hvn_loop *loop, int eventfd);

int loop_uring_new(unsigned int entries, struct hvn_loop **loopp);
int loop_epoll_new(unsigned int entries, struct hvn_loop **loopp);

#endif /* HVN_LOOP_INTERNAL_H */
