// SPDX-License-Identifier: MIT
/*
 * dev_queue.c - running one queue of a device on a loop.
 *
 * The cycle: a kick (multishot poll on the kick eventfd) pops requests into
 * free slots and hands them to the device; the device finishes each with
 * hvn_dev_req_done(), which only records the completion; after the loop's
 * batch of events, one deferred flush pushes every recorded completion,
 * publishes the used index once and signals the call eventfd at most once,
 * when the ring's suppression rules say the guest wants it.
 *
 * The kick eventfd is never read: a multishot poll reports every write by
 * itself, and the count is meaningless (a hint to look at the ring).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hvnotify/dev.h"
#include "loop_internal.h"
#include "vq_internal.h"

#define DEFAULT_BATCH 32

struct dev_slot {
	struct hvn_dev_req req;
	uint8_t busy;		/* popped and not yet done */
	struct iovec iov[];	/* then, 16-byte aligned, the device's bytes */
};

struct hvn_dev_queue {
	struct hvn_dev_queue_config cfg;
	struct hvn_loop *loop;
	struct hvn_loop_op kick_op;
	struct hvn_loop_defer flush;
	struct hvn_loop_defer resume;	/* popping again after a used-up share */

	unsigned int size;		/* ring size: the most requests in flight */
	size_t slot_size;
	unsigned char *slots;
	uint16_t *free_slots;		/* stack of free slot numbers */
	unsigned int nr_free;
	struct hvn_vq_done *done;	/* completions waiting for the flush */
	unsigned int nr_done;

	int kick_armed;			/* the multishot poll is in the kernel */
	int cancel_due;			/* stopping, and its cancel is not queued yet */
	int starved;			/* popping stopped for want of a slot */
	int polling;			/* the host polls the ring: no kicks wanted */
	unsigned int resubmits_left;	/* recovered chains still to pop (inflight tracking) */
	int stopping;
	void (*stopped)(struct hvn_dev_queue *q, void *arg);
	void *stopped_arg;
	struct hvn_dev_queue_stats stats;
};

static struct dev_slot *slot_at(struct hvn_dev_queue *q, unsigned int i)
{
	return (struct dev_slot *)(q->slots + (size_t)i * q->slot_size);
}

struct hvn_loop *hvn_dev_queue_loop(const struct hvn_dev_queue *q)
{
	return q->loop;
}

unsigned int hvn_dev_queue_index(const struct hvn_dev_queue *q)
{
	return q->cfg.index;
}

static void queue_broken(struct hvn_dev_queue *q, int err)
{
	if (q->stats.error)
		return;
	q->stats.error = err;
	/* vhost-user's SET_VRING_ERR: tell the frontend the queue is dead. */
	if (q->cfg.err_fd >= 0)
		loop_signal_nowait(q->loop, q->cfg.err_fd);
	if (q->cfg.broken)
		q->cfg.broken(q, err, q->cfg.arg);
}

static void finish_stop(struct hvn_dev_queue *q);

/* Pop what the guest made available, as far as slots and budget last. */
static void process_budget(struct hvn_dev_queue *q, unsigned int budget)
{
	if (q->stopping || q->stats.error)
		return;
	if (!q->polling)
		hvn_vq_disable_notify(q->cfg.vq);
	for (;;) {
		struct dev_slot *s;
		int r;

		/* A handler may have stopped or broken the queue. */
		if (q->stopping || q->stats.error)
			return;
		if (!q->nr_free) {
			/* The flush re-runs us when a slot comes back. */
			q->starved = 1;
			return;
		}
		if (!budget) {
			/* Share used up: let the device's I/O, completions
			 * and other queues in first, and carry on after the
			 * loop's next round through the kernel. */
			hvn_loop_defer_next(q->loop, &q->resume);
			return;
		}
		s = slot_at(q, q->free_slots[q->nr_free - 1]);
		r = hvn_vq_pop(q->cfg.vq, &s->req.vq);
		if (r < 0) {
			queue_broken(q, r);
			return;
		}
		if (r == 0) {
			/* Empty.  A polling host comes back by itself. */
			if (q->polling)
				return;
			/* Ask for kicks again, and look once more, as a
			 * request may have landed before the driver saw that. */
			r = hvn_vq_enable_notify(q->cfg.vq);
			if (r < 0) {
				queue_broken(q, r);
				return;
			}
			if (r == 0)
				return;
			hvn_vq_disable_notify(q->cfg.vq);
			continue;
		}
		q->nr_free--;
		budget--;
		s->busy = 1;
		q->stats.requests++;
		q->stats.inflight++;
		/* The first pops after a recovery are the chains a previous
		 * host left in flight: the host may want to say which. */
		if (q->resubmits_left) {
			q->resubmits_left--;
			if (q->cfg.resubmitted)
				q->cfg.resubmitted(q, &s->req, q->cfg.arg);
		}
		q->cfg.ops->handle(q->cfg.dev, &s->req);
	}
}

/* A round: as far as slots and the queue's share last. */
static void process(struct hvn_dev_queue *q)
{
	process_budget(q, q->cfg.batch);
}

void hvn_dev_req_done(struct hvn_dev_req *req, uint32_t written)
{
	struct hvn_dev_queue *q = req->queue;
	struct dev_slot *s = (struct dev_slot *)req;
	unsigned int i = (unsigned int)(((unsigned char *)s - q->slots) / q->slot_size);

	/* Completing twice would overrun done[] and the free stack. */
	if (!s->busy)
		return;
	s->busy = 0;
	q->done[q->nr_done].head = req->vq.head;
	q->done[q->nr_done].reserved = 0;
	q->done[q->nr_done].len = written;
	q->nr_done++;
	q->free_slots[q->nr_free++] = (uint16_t)i;
	q->stats.inflight--;
	hvn_loop_defer(q->loop, &q->flush);
}

/*
 * The request breaks the device's protocol (a block request without a
 * status byte, say): the driver is broken or hostile.  The queue breaks as
 * if the ring itself were malformed: the virtqueue breaks first, so that
 * neither this chain nor any request still in flight is written to the
 * used ring (a completion would have the driver read a status byte the
 * request does not have: a stale "OK" for a write never done), and no call
 * is signalled.  The chain still goes back to the virtqueue, unwritten,
 * which releases its hold on it so that the queue can start again.
 */
void hvn_dev_req_abort(struct hvn_dev_req *req, int err)
{
	struct hvn_dev_queue *q = req->queue;

	err = err < 0 ? err : -EPROTO;
	vq_break(q->cfg.vq, err);
	queue_broken(q, err);
	hvn_dev_req_done(req, 0);
}

static void flush(struct hvn_loop_defer *d)
{
	struct hvn_dev_queue *q = (struct hvn_dev_queue *)((char *)d - offsetof(struct hvn_dev_queue, flush));

	if (q->nr_done) {
		int r = hvn_vq_push_batch(q->cfg.vq, q->done, q->nr_done);

		q->stats.completions += q->nr_done;
		q->stats.batches++;
		q->nr_done = 0;
		if (r < 0)
			queue_broken(q, r);
		else if (q->cfg.call_fd >= 0 && hvn_vq_should_notify(q->cfg.vq) > 0 &&
			 loop_signal_nowait(q->loop, q->cfg.call_fd) == 0)
			q->stats.calls++;
	}
	if (q->stopping) {
		/* A cancel that found the ring full is tried again here. */
		if (q->cancel_due && q->kick_armed) {
			if (hvn_loop_cancel(q->loop, &q->kick_op) == 0)
				q->cancel_due = 0;
			else
				hvn_loop_defer_next(q->loop, &q->flush);
		}
		finish_stop(q);
		return;
	}
	if (q->starved && q->nr_free) {
		q->starved = 0;
		process(q);
	}
}

/*
 * Polling: while the host polls, the driver need not kick (notifications
 * stay off, sparing the guest an exit and us a wake-up); turning polling
 * off asks for kicks again and looks at the ring once more, so a request
 * made in between is not left waiting for a kick that will not come.
 */
int hvn_dev_queue_set_polling(struct hvn_dev_queue *q, int on)
{
	if (!q)
		return -EINVAL;
	if (!!on == q->polling)
		return 0;
	q->polling = !!on;
	if (q->stopping || q->stats.error)
		return 0;
	if (on)
		hvn_vq_disable_notify(q->cfg.vq);
	else
		process(q);
	return 0;
}

/* One look at the ring: the requests it popped. */
int hvn_dev_queue_poll(struct hvn_dev_queue *q)
{
	uint64_t before;

	if (!q)
		return -EINVAL;
	before = q->stats.requests;
	process(q);
	return (int)(q->stats.requests - before);
}

static void resume(struct hvn_loop_defer *d)
{
	process((struct hvn_dev_queue *)((char *)d - offsetof(struct hvn_dev_queue, resume)));
}

static void on_kick(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct hvn_dev_queue *q = (struct hvn_dev_queue *)((char *)op - offsetof(struct hvn_dev_queue, kick_op));

	if (!(flags & HVN_LOOP_MORE))
		q->kick_armed = 0;
	if (q->stopping) {
		/* Only the flush finishes a stop: it runs last in the batch
		 * and is off the loop's list by then, so stopped() may free
		 * q with nothing left pointing at it. */
		hvn_loop_defer(q->loop, &q->flush);
		return;
	}
	if (res < 0) {
		/* The kick fd itself failed (closed behind our back): no kick
		 * can reach this queue any more, and re-arming would spin. */
		queue_broken(q, res);
		return;
	}
	if (res > 0) {
		q->stats.kicks++;
		process(q);
	}
	/* The kernel may end a multishot poll on its own (no MORE, e.g. when
	 * its completion queue overflowed): arm a new one, and look at the
	 * ring in case a kick fell in between. */
	if (!q->kick_armed) {
		int r = hvn_loop_poll(q->loop, &q->kick_op, q->cfg.kick_fd, POLLIN, 1);

		if (r < 0) {
			queue_broken(q, r);	/* deaf from now on: say so */
			return;
		}
		q->kick_armed = 1;
		process(q);
	}
}

/*
 * The queue's signals must never wait.  A blocking eventfd whose counter
 * someone left at its maximum (a hostile vhost-user frontend can) blocks a
 * write until it is read: on the epoll engine that is the loop's own
 * thread, and every queue on it stops; on io_uring each such write holds
 * a kernel worker thread, and even a harmless blocking eventfd costs one
 * round trip through io-wq per signal (tens of microseconds of CPU, where
 * a non-blocking one costs one or two).  O_NONBLOCK belongs to the open
 * file, which the eventfd's other holders share: QEMU, Cloud Hypervisor
 * and the like create theirs non-blocking anyway, and a driver that reads
 * its call eventfd polls it first.
 */
static int signal_fd_nonblocking(int fd)
{
	int flags;

	if (fd < 0)
		return 0;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int hvn_dev_queue_start(struct hvn_loop *loop, const struct hvn_dev_queue_config *cfg,
			struct hvn_dev_queue **qp)
{
	struct hvn_vq_state st;
	struct hvn_dev_queue *q;
	unsigned int i, max_iov;
	size_t priv_offset;
	int started_vq = 0, r;

	if (!qp)
		return -EINVAL;
	*qp = NULL;
	if (!loop || !cfg || !cfg->ops || !cfg->ops->handle || !cfg->vq || cfg->kick_fd < 0)
		return -EINVAL;
	r = hvn_vq_get_state(cfg->vq, &st);
	if (r < 0)
		return r;
	if (st.size == 0)
		return -EINVAL;
	r = signal_fd_nonblocking(cfg->call_fd);
	if (r == 0)
		r = signal_fd_nonblocking(cfg->err_fd);
	if (r < 0)
		return r;

	/* A descriptor that spans two memory regions takes two entries.  A
	 * device that names no limit gets a bounded one: the slots are
	 * allocated for every request the ring can hold. */
	if (cfg->ops->max_segments > HVN_VQ_MAX_SIZE)
		return -EINVAL;
	max_iov = (cfg->ops->max_segments ? cfg->ops->max_segments : 128) * 2;
	priv_offset = (offsetof(struct dev_slot, iov) + max_iov * sizeof(struct iovec) + 15) &
		      ~(size_t)15;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->slot_size = (priv_offset + cfg->ops->req_size + 15) & ~(size_t)15;
	q->cfg = *cfg;
	if (!q->cfg.batch)
		q->cfg.batch = DEFAULT_BATCH;
	q->loop = loop;
	q->size = st.size;
	q->slots = calloc(q->size, q->slot_size);
	q->free_slots = calloc(q->size, sizeof(*q->free_slots));
	q->done = calloc(q->size, sizeof(*q->done));
	if (!q->slots || !q->free_slots || !q->done) {
		hvn_dev_queue_free(q);
		return -ENOMEM;
	}
	/* Slot 0 on top of the stack: the first requests use low memory. */
	for (i = 0; i < q->size; i++) {
		struct dev_slot *s = slot_at(q, i);

		s->req.queue = q;
		s->req.vq.iov = s->iov;
		s->req.vq.max_iov = max_iov;
		s->req.priv = cfg->ops->req_size ? (unsigned char *)s + priv_offset : NULL;
		q->free_slots[q->size - 1 - i] = (uint16_t)i;
	}
	q->nr_free = q->size;
	q->kick_op.cb = on_kick;
	q->flush.fn = flush;
	q->resume.fn = resume;

	if (!(st.flags & HVN_VQ_STATE_STARTED)) {
		r = hvn_vq_start(cfg->vq);
		if (r < 0)
			goto fail;
		started_vq = 1;
	}
	if (cfg->ops->queue_start) {
		r = cfg->ops->queue_start(cfg->dev, q);
		if (r < 0)
			goto fail;
	}
	r = hvn_loop_poll(loop, &q->kick_op, cfg->kick_fd, POLLIN, 1);
	if (r < 0) {
		if (cfg->ops->queue_stop)
			cfg->ops->queue_stop(cfg->dev, q);
		goto fail;
	}
	q->kick_armed = 1;
	/* The driver may have made requests available before we watched its
	 * doorbell (a restart, a reconnect): look once without a kick.  The
	 * caller has its queue first: the device may already use it.
	 * Chains a previous backend popped and never completed (inflight
	 * tracking, hvn_vq_set_inflight) come first from the ring, and all
	 * of them go to the device now, whatever the share: from here on a
	 * stop waits for them like for any request in flight, so the index
	 * it leaves behind never skips one. */
	*qp = q;
	hvn_vq_get_state(cfg->vq, &st);
	q->resubmits_left = st.resubmit;
	process_budget(q, st.resubmit + q->cfg.batch);
	/* After a restart the driver may be waiting for completions that the
	 * previous backend published but died before signalling: one
	 * interrupt too many costs the guest a look at its ring, one too few
	 * a wait without end. */
	if ((st.flags & HVN_VQ_STATE_RECOVERED) && q->cfg.call_fd >= 0 &&
	    loop_signal_nowait(loop, q->cfg.call_fd) == 0)
		q->stats.calls++;
	return 0;
fail:
	if (started_vq)
		hvn_vq_stop(cfg->vq);
	hvn_dev_queue_free(q);
	return r;
}

static void finish_stop(struct hvn_dev_queue *q)
{
	void (*stopped)(struct hvn_dev_queue *, void *) = q->stopped;

	/* Wait for the device's I/O and for the kernel to drop the poll. */
	if (q->stats.inflight || q->kick_armed || q->nr_done || !stopped)
		return;
	/* The loop still holds the queue while a put-off round waits, and the
	 * last call signal must reach the kernel before the host may close
	 * the call fd (and the number be reused for another file): if either
	 * is not so, try again next round. */
	if (q->resume.queued || hvn_loop_submit(q->loop) < 0) {
		hvn_loop_defer_next(q->loop, &q->flush);
		return;
	}
	q->stopped = NULL;
	hvn_vq_stop(q->cfg.vq);
	if (q->cfg.ops->queue_stop)
		q->cfg.ops->queue_stop(q->cfg.dev, q);
	stopped(q, q->stopped_arg);
}

/*
 * Stop taking requests, let those in flight finish and publish them, then
 * stop the ring and call stopped() (in the loop's thread; it may free q).
 * After that, hvn_vq_get_base() gives the index to resume from.
 */
int hvn_dev_queue_stop(struct hvn_dev_queue *q,
		       void (*stopped)(struct hvn_dev_queue *q, void *arg), void *arg)
{
	if (!q || !stopped)
		return -EINVAL;
	if (q->stopping)
		return -EALREADY;
	q->stopping = 1;
	q->stopped = stopped;
	q->stopped_arg = arg;
	/* The stop cannot fail from here on: a cancel that cannot be queued
	 * now (the ring is full) is retried by the flush. */
	q->cancel_due = q->kick_armed && hvn_loop_cancel(q->loop, &q->kick_op) < 0;
	hvn_loop_defer(q->loop, &q->flush);
	return 0;
}

void hvn_dev_queue_free(struct hvn_dev_queue *q)
{
	if (!q)
		return;
	free(q->slots);
	free(q->free_slots);
	free(q->done);
	free(q);
}

int hvn_dev_queue_stats(const struct hvn_dev_queue *q, struct hvn_dev_queue_stats *stats)
{
	if (!q || !stats)
		return -EINVAL;
	*stats = q->stats;
	return 0;
}
