// SPDX-License-Identifier: MIT
/*
 * loop_epoll.c - the epoll engine behind <hvnotify/loop.h>, on libevent (one
 * event_base per loop), for where io_uring is forbidden or missing.
 *
 * Callers are built on the io_uring engine's behaviour (dev_queue.c is), so
 * this engine keeps it, not only the signatures:
 *
 * - Submission is lazy.  Operations wait in a queue, in order, until
 *   hvn_loop_submit() or the start of hvn_loop_run(), as SQEs do; only
 *   then is a poll armed, a file read or written, an eventfd signalled.
 *   A signal is written there and then: never lost, never early.
 *
 * - Callbacks run only inside hvn_loop_run().  File I/O is an ordinary
 *   system call made at submission (epoll cannot wait for a regular file
 *   to be ready), but its result stays in the queue as a completion until
 *   hvn_loop_run() delivers it, so a callback never runs inside the call
 *   that queued its operation, nor inside hvn_loop_submit().
 *
 * - Polls are edge-triggered (EV_ET).  io_uring's poll follows the file's
 *   wake-ups, not its level: a multishot poll on an eventfd that nobody
 *   reads calls back once per write (dev_queue.c never reads its kick
 *   fds, since the count means nothing).  A level-triggered epoll would
 *   report that unread eventfd on every round and spin.  Reading the
 *   eventfd in the engine would stop the spin for eventfds only, and is
 *   wrong for a poll on an arbitrary fd: it would eat a socket's data, or
 *   a wake-up that the caller reads itself (the daemon's mailboxes do).
 *   Linux's EPOLLET reports each wake-up of the file, not only a change
 *   from not ready to ready, and a file that is ready when it is armed:
 *   that is io_uring's poll, which is edge-triggered too (unless asked
 *   for IORING_POLL_ADD_LEVEL, which the loop never does).  One-shot polls
 *   are EV_ET as well: libevent refuses to mix edge- and level-triggered
 *   events on one fd, and io_uring's one-shot polls are edge-triggered.
 *
 * - Cancel finds an armed poll and ends it with -ECANCELED, delivered like
 *   any completion.  Other operations have completed by the time a cancel
 *   that follows them is submitted, so the cancel leaves them alone, as
 *   io_uring does with an operation that has completed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loop_internal.h"

/* One queued operation; once submitted, req.op (NULL: no callback), res
 * and flags are its completion. */
struct epoll_entry {
	struct loop_req req;
	int32_t res;
	uint32_t flags;
};

/* An armed poll.  io_uring keeps this in the kernel; here it is ours, kept
 * for reuse so that re-arming a one-shot poll allocates nothing. */
struct poll_rec {
	struct poll_rec *next, **pprev;	/* armed list; next alone on the spare list */
	struct epoll_loop *loop;
	struct hvn_loop_op *op;
	uint32_t events;
	int multishot;
	max_align_t ev[];		/* libevent's struct event, of a size it says */
};

struct epoll_loop {
	struct hvn_loop base;		/* first: a struct hvn_loop * is one of these */
	struct event_base *evb;
	struct event *timer;		/* ends a wait that has a timeout */
	/*
	 * The queue, a ring of mask + 1 entries indexed by free-running
	 * counters: [head, sub) submitted, their completions waiting for
	 * hvn_loop_run(); [sub, tail) queued, waiting for submission.
	 */
	struct epoll_entry *q;
	uint32_t mask, head, sub, tail;
	unsigned int ready;		/* completions in [head, sub) with a callback */
	struct poll_rec *armed, *spare;
	size_t rec_size;
	int ran;			/* callbacks run by the current reap */
};

static const struct loop_engine_ops epoll_ops;

/* What io_uring's poll reports for a file that cannot wait: the kernel's
 * DEFAULT_POLLMASK. */
#define ALWAYS_READY (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)

static struct event *rec_event(struct poll_rec *p)
{
	return (struct event *)p->ev;
}

/* The libevent events for poll(2) events; 0 when none can be waited for. */
static short poll_to_ev(uint32_t events)
{
	short what = 0;

	if (events & (POLLIN | POLLRDNORM | POLLRDBAND))
		what |= EV_READ;
	if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
		what |= EV_WRITE;
	if (events & POLLRDHUP)
		what |= EV_CLOSED;
	return what;
}

/*
 * The poll(2) events that libevent's report stands for, among those asked
 * for.  libevent folds an error or a hang-up into "readable and writable":
 * the caller learns which from the read or write that follows.
 */
static int32_t ev_to_poll(short what, uint32_t events)
{
	uint32_t res = 0;

	if (what & EV_READ)
		res |= events & (POLLIN | POLLRDNORM | POLLRDBAND);
	if (what & EV_WRITE)
		res |= events & (POLLOUT | POLLWRNORM | POLLWRBAND);
	if (what & EV_CLOSED)
		res |= events & POLLRDHUP;
	return (int32_t)res;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	/* Nothing to do: it only ends the wait of event_base_loop(). */
}

int loop_epoll_new(unsigned int entries, struct hvn_loop **loopp)
{
	struct event_config *cfg;
	struct epoll_loop *loop;
	uint32_t size = 1;
	int r = -ENOMEM;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	/* The queue starts at the size asked for, so that a loop used within
	 * it never allocates; it grows rather than refusing more. */
	while (size < entries)
		size <<= 1;
	loop->q = calloc(size, sizeof(*loop->q));
	if (!loop->q)
		goto fail;
	loop->mask = size - 1;
	loop->rec_size = offsetof(struct poll_rec, ev) + event_get_struct_event_size();

	/*
	 * epoll and nothing else: edge-triggered events and O(1) dispatch rule
	 * out poll and select.  No locks and no notification fd (the loop
	 * belongs to one thread), whatever the program set up for its own
	 * bases, and no EVENT_* environment variables choosing another method.
	 */
	cfg = event_config_new();
	if (!cfg)
		goto fail;
	if (event_config_require_features(cfg, EV_FEATURE_ET | EV_FEATURE_O1) < 0 ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_IGNORE_ENV) < 0) {
		event_config_free(cfg);
		goto fail;
	}
	errno = 0;
	loop->evb = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!loop->evb) {
		/* epoll_create1() failed (EMFILE, ENOMEM), or no epoll here. */
		r = errno ? -errno : -EOPNOTSUPP;
		goto fail;
	}
	if (strcmp(event_base_get_method(loop->evb), "epoll") != 0) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	loop->timer = evtimer_new(loop->evb, on_timeout, loop);
	if (!loop->timer)
		goto fail;
	loop->base.ops = &epoll_ops;
	loop->base.engine = HVN_LOOP_EPOLL;
	*loopp = &loop->base;
	return 0;
fail:
	if (loop->evb)
		event_base_free(loop->evb);
	free(loop->q);
	free(loop);
	return r;
}

static void epoll_destroy(struct hvn_loop *base)
{
	struct epoll_loop *loop = (struct epoll_loop *)base;
	struct poll_rec *p;

	/* Armed polls end without a callback, as the ring's do when it
	 * closes; what is queued is dropped. */
	while ((p = loop->armed)) {
		loop->armed = p->next;
		event_del(rec_event(p));
		free(p);
	}
	while ((p = loop->spare)) {
		loop->spare = p->next;
		free(p);
	}
	event_free(loop->timer);
	event_base_free(loop->evb);
	free(loop->q);
	free(loop);
}

/* Twice the room, the entries keeping their indices. */
static int queue_grow(struct epoll_loop *loop)
{
	uint32_t size = (loop->mask + 1) * 2, i;
	struct epoll_entry *q;

	if (size > (1u << 28))
		return -ENOMEM;
	q = malloc(size * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (i = loop->head; i != loop->tail; i++)
		q[i & (size - 1)] = loop->q[i & loop->mask];
	free(loop->q);
	loop->q = q;
	loop->mask = size - 1;
	return 0;
}

static int epoll_queue(struct hvn_loop *base, const struct loop_req *req)
{
	struct epoll_loop *loop = (struct epoll_loop *)base;
	struct epoll_entry *e;

	/* A poll for nothing that epoll can wait for (POLLPRI alone, or only
	 * POLLERR and POLLHUP) would never call back. */
	if (req->kind == LOOP_REQ_POLL && !poll_to_ev(req->u.poll.events))
		return -EOPNOTSUPP;
	if (loop->tail - loop->head > loop->mask && queue_grow(loop) < 0)
		return -ENOMEM;
	e = &loop->q[loop->tail & loop->mask];
	e->req = *req;
	e->res = 0;
	e->flags = 0;
	loop->tail++;
	return 0;
}

static void rec_link(struct epoll_loop *loop, struct poll_rec *p)
{
	p->next = loop->armed;
	p->pprev = &loop->armed;
	if (loop->armed)
		loop->armed->pprev = &p->next;
	loop->armed = p;
}

/* Out of the armed list and back to the spare list. */
static void rec_release(struct epoll_loop *loop, struct poll_rec *p)
{
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	p->next = loop->spare;
	loop->spare = p;
}

static struct poll_rec *rec_find(struct epoll_loop *loop, const struct hvn_loop_op *op)
{
	struct poll_rec *p;

	/* A loop has a few polls (a kick fd per queue, a mailbox), and
	 * cancels are rare (a queue that stops): a list will do. */
	for (p = loop->armed; p; p = p->next)
		if (p->op == op)
			return p;
	return NULL;
}

/* libevent's callback, from event_base_loop() inside hvn_loop_run(). */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct poll_rec *p = arg;
	struct epoll_loop *loop = p->loop;
	struct hvn_loop_op *op = p->op;
	int32_t res = ev_to_poll(what, p->events);

	loop->ran++;
	if (p->multishot) {
		op->cb(op, res, HVN_LOOP_MORE);
		return;
	}
	/* libevent has dropped the one-shot event already.  The op leaves
	 * flight before its callback, which may arm it again, or free it. */
	rec_release(loop, p);
	op->cb(op, res, 0);
}

static void complete(struct epoll_loop *loop, struct epoll_entry *e, int32_t res, uint32_t flags)
{
	e->res = res;
	e->flags = flags;
	loop->ready++;
}

static void no_completion(struct epoll_entry *e)
{
	e->req.op = NULL;
}

static void submit_poll(struct epoll_loop *loop, struct epoll_entry *e)
{
	const struct loop_req *req = &e->req;
	uint32_t events = req->u.poll.events;
	struct poll_rec *p;
	struct stat st;
	short what;
	int err;

	/* io_uring reports a bad fd in the completion; so do we. */
	if (fstat(req->fd, &st) < 0) {
		complete(loop, e, -errno, 0);
		return;
	}
	/*
	 * A file that cannot wait (a regular file, a directory, a block
	 * device): epoll refuses it with EPERM, while io_uring finds it ready
	 * at once and ends the poll there, multishot or not, as there is no
	 * wake-up to wait for.  The type spares us libevent's warning on
	 * stderr; the EPERM below catches the other such files.
	 */
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
		complete(loop, e, (int32_t)(events & ALWAYS_READY), 0);
		return;
	}
	p = loop->spare;
	if (p)
		loop->spare = p->next;
	else if (!(p = malloc(loop->rec_size))) {
		complete(loop, e, -ENOMEM, 0);
		return;
	}
	p->loop = loop;
	p->op = req->op;
	p->events = events;
	p->multishot = req->u.poll.multishot;
	rec_link(loop, p);
	what = poll_to_ev(events) | EV_ET | (p->multishot ? EV_PERSIST : 0);
	event_assign(rec_event(p), loop->evb, req->fd, what, on_ready, p);
	errno = 0;
	if (event_add(rec_event(p), NULL) == 0) {
		no_completion(e);	/* libevent calls back */
		return;
	}
	err = errno ? -errno : -EIO;
	rec_release(loop, p);
	complete(loop, e, err == -EPERM ? (int32_t)(events & ALWAYS_READY) : err, 0);
}

static void submit_cancel(struct epoll_loop *loop, struct epoll_entry *e)
{
	struct poll_rec *p = rec_find(loop, e->req.op);

	if (!p) {
		no_completion(e);	/* not in flight, or completed */
		return;
	}
	event_del(rec_event(p));
	rec_release(loop, p);
	/* The entry becomes the poll's last completion. */
	complete(loop, e, -ECANCELED, 0);
}

/* A system call's result as io_uring gives it: the count, or -errno. */
static int32_t sys_result(ssize_t r)
{
	/* A transfer is at most MAX_RW_COUNT (2 GiB - 4 KiB): it fits. */
	return r < 0 ? -errno : (int32_t)r;
}

static int32_t do_rw(const struct loop_req *req)
{
	off_t off = (off_t)req->u.rw.offset;
	ssize_t r;

	for (;;) {
		if (req->kind == LOOP_REQ_READV)
			r = preadv2(req->fd, req->u.rw.iov, (int)req->u.rw.iovcnt, off, 0);
		else
			r = pwritev2(req->fd, req->u.rw.iov, (int)req->u.rw.iovcnt, off, 0);
		/* A file without a position takes no offset: io_uring ignores
		 * it there, and -1 is preadv2's "no offset". */
		if (r < 0 && errno == ESPIPE && off != -1)
			off = -1;
		else if (r >= 0 || errno != EINTR)
			return sys_result(r);
	}
}

static int32_t do_fsync(const struct loop_req *req)
{
	int r;

	do
		r = req->u.fsync.datasync ? fdatasync(req->fd) : fsync(req->fd);
	while (r < 0 && errno == EINTR);
	return sys_result(r);
}

static int32_t do_fallocate(const struct loop_req *req)
{
	int r;

	do
		r = fallocate(req->fd, req->u.falloc.mode, (off_t)req->u.falloc.offset,
			      (off_t)req->u.falloc.len);
	while (r < 0 && errno == EINTR);
	return sys_result(r);
}

static void do_signal(const struct loop_req *req)
{
	static const uint64_t one = 1;
	ssize_t r;

	/* A failed signal is not reported, as with io_uring (a closed fd, a
	 * counter at its maximum). */
	do
		r = write(req->fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

/* File I/O blocks the loop's thread for as long as it takes: this engine
 * is the fallback, and the callbacks still come as they would. */
static void submit_one(struct epoll_loop *loop, struct epoll_entry *e)
{
	const struct loop_req *req = &e->req;

	switch (req->kind) {
	case LOOP_REQ_POLL:
		submit_poll(loop, e);
		break;
	case LOOP_REQ_CANCEL:
		submit_cancel(loop, e);
		break;
	case LOOP_REQ_READV:
	case LOOP_REQ_WRITEV:
		complete(loop, e, do_rw(req), 0);
		break;
	case LOOP_REQ_FSYNC:
		complete(loop, e, do_fsync(req), 0);
		break;
	case LOOP_REQ_FALLOCATE:
		complete(loop, e, do_fallocate(req), 0);
		break;
	case LOOP_REQ_SIGNAL:
		do_signal(req);
		no_completion(e);
		break;
	}
}

static int epoll_submit(struct hvn_loop *base)
{
	struct epoll_loop *loop = (struct epoll_loop *)base;

	/* Nothing here calls back or queues: the queue does not move. */
	while (loop->sub != loop->tail)
		submit_one(loop, &loop->q[loop->sub++ & loop->mask]);
	return 0;
}

static int epoll_reap(struct hvn_loop *base, int timeout_ms, int *err)
{
	struct epoll_loop *loop = (struct epoll_loop *)base;
	int flags = EVLOOP_ONCE, r;
	uint32_t end;

	loop->ran = 0;
	epoll_submit(base);
	/* Completions are waiting: look at the fds, but do not sleep. */
	if (loop->ready)
		timeout_ms = 0;
	if (timeout_ms == 0) {
		flags = EVLOOP_NONBLOCK;
	} else if (timeout_ms > 0) {
		struct timeval tv = {
			.tv_sec = timeout_ms / 1000,
			.tv_usec = (timeout_ms % 1000) * 1000,
		};

		evtimer_add(loop->timer, &tv);
	} else {
		/* Wait even with no poll armed, as io_uring_enter() would. */
		flags |= EVLOOP_NO_EXIT_ON_EMPTY;
	}
	/* Runs the callbacks of the polls that are ready (on_ready); waits
	 * first, for one at least, unless NONBLOCK. */
	errno = 0;
	r = event_base_loop(loop->evb, flags);
	*err = r < 0 ? (errno ? -errno : -EIO) : 0;
	if (timeout_ms > 0)
		evtimer_del(loop->timer);

	/*
	 * Then the completions submitted so far.  What the callbacks submit
	 * from here on (with hvn_loop_submit()) is for the next call: the
	 * engine completes file I/O as it submits it, and a callback that
	 * always submits more would otherwise never let the call return.
	 */
	end = loop->sub;
	while (loop->head != end) {
		struct epoll_entry *e = &loop->q[loop->head++ & loop->mask];
		struct hvn_loop_op *op = e->req.op;
		int32_t res = e->res;
		uint32_t fl = e->flags;

		/* Callbacks may queue, and so move the queue: e is done with. */
		if (!op)
			continue;
		loop->ready--;
		loop->ran++;
		op->cb(op, res, fl);
	}
	return loop->ran;
}

static const struct loop_engine_ops epoll_ops = {
	.queue = epoll_queue,
	.submit = epoll_submit,
	.reap = epoll_reap,
	.destroy = epoll_destroy,
};
