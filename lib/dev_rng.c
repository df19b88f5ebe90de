// SPDX-License-Identifier: MIT
/*
 * dev_rng.c - virtio-rng (entropy): each request's device-writable part
 * is filled from getrandom(2), or from a source the host gives.
 *
 * The one rule that shapes it: a device must never block its loop, which
 * every other queue on that loop shares.  getrandom() is called with
 * GRND_NONBLOCK, and when it has nothing to give (the kernel's generator
 * is not seeded yet, early in the host's boot) the request is not
 * completed empty at once, which would have the guest's driver ask again
 * at once, round and round.  It waits instead, parked, for a timer on the
 * queue's loop (a timerfd it polls), and is then filled with whatever the
 * source has, possibly nothing.  So a parked request holds the queue for
 * at most one period: a stop, which waits for the requests in flight,
 * stays prompt, and an empty answer reaches the driver at most once per
 * period per request.
 *
 * The device has one queue and keeps that queue's state itself (the
 * parked list, the timer); an instance runs one queue at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hvnotify/dev.h"

#define DEFAULT_MAX_REQUEST	65536u
#define MAX_MAX_REQUEST		1048576u	/* filling more would hold up the loop */
#define RETRY_NS		50000000L	/* 50 ms: how long a request waits for entropy */
#define MAX_SEGMENTS		64u

struct rng_req {
	struct hvn_dev_req *req;
	struct rng_req *next;		/* on the parked list */
};

struct hvn_dev_rng {
	int (*source)(void *arg, void *buf, uint32_t len);
	void *arg;
	uint32_t max_request;

	/* The running queue's state, in its loop's thread. */
	struct hvn_dev_queue *queue;
	int timer_fd;
	struct hvn_loop_op timer_op;
	int timer_armed;		/* the poll is on the loop: parked is not empty */
	struct rng_req *parked, **parked_tail;
};

static int getrandom_source(void *arg, void *buf, uint32_t len)
{
	ssize_t n;

	(void)arg;
	do
		n = getrandom(buf, len, GRND_NONBLOCK);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

/* Fill the writable part, up to max_request bytes; the count.  *err is
 * the source's error when it stopped short, else 0. */
static uint32_t fill(struct hvn_dev_rng *rng, struct hvn_dev_req *req, int *err)
{
	const struct hvn_vq_req *vr = &req->vq;
	uint64_t want = vr->in_len < rng->max_request ? vr->in_len : rng->max_request;
	uint32_t done = 0, i;

	*err = 0;
	for (i = vr->n_out; i < vr->n_out + vr->n_in && done < want; i++) {
		uint8_t *p = vr->iov[i].iov_base;
		uint64_t len = vr->iov[i].iov_len, off = 0;

		if (len > want - done)
			len = want - done;
		while (off < len) {
			int n = rng->source(rng->arg, p + off, (uint32_t)(len - off));

			if (n <= 0) {
				*err = n < 0 ? n : -EAGAIN;
				return done;
			}
			/* A source that claims more than it was asked for is
			 * believed only as far as the buffer goes. */
			if ((uint64_t)n > len - off)
				n = (int)(len - off);
			off += (uint32_t)n;
			done += (uint32_t)n;
		}
	}
	return done;
}

static void on_timer(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct hvn_dev_rng *rng = (struct hvn_dev_rng *)((char *)op -
							 offsetof(struct hvn_dev_rng, timer_op));
	struct rng_req *list = rng->parked;
	uint64_t expirations;
	int err;

	(void)res;
	(void)flags;
	/* Whatever the poll says (an error, a cancel): the parked requests
	 * must not wait longer, or a stop would wait for ever. */
	if (read(rng->timer_fd, &expirations, sizeof(expirations)) < 0) {
		/* EAGAIN: the poll ended without the timer: still go on */
	}
	rng->timer_armed = 0;
	rng->parked = NULL;
	rng->parked_tail = &rng->parked;
	while (list) {
		struct rng_req *r = list;

		list = r->next;
		/* The second and last try: an empty answer now, so that the
		 * request does not hold the queue; the driver asks again. */
		hvn_dev_req_done(r->req, fill(rng, r->req, &err));
	}
}

static void park(struct hvn_dev_rng *rng, struct rng_req *r)
{
	struct itimerspec its = { .it_value = { .tv_sec = 0, .tv_nsec = RETRY_NS } };

	r->next = NULL;
	*rng->parked_tail = r;
	rng->parked_tail = &r->next;
	if (rng->timer_armed)
		return;		/* it comes back with the others */
	if (timerfd_settime(rng->timer_fd, 0, &its, NULL) < 0 ||
	    hvn_loop_poll(hvn_dev_queue_loop(r->req->queue), &rng->timer_op, rng->timer_fd,
			  POLLIN, 0) < 0) {
		/* No way to wait without blocking: answer now, empty. */
		on_timer(&rng->timer_op, -EAGAIN, 0);
		return;
	}
	rng->timer_armed = 1;
}

static void rng_handle(void *dev, struct hvn_dev_req *req)
{
	struct hvn_dev_rng *rng = dev;
	struct rng_req *r = req->priv;
	uint32_t n;
	int err;

	/* A driver-readable part means nothing to this device: ignored, as
	 * QEMU does.  No room to write is answered at once (nothing to wait
	 * for). */
	n = fill(rng, req, &err);
	if (n > 0 || !err || req->vq.in_len == 0) {
		hvn_dev_req_done(req, n);
		return;
	}
	r->req = req;
	park(rng, r);
}

static int rng_queue_start(void *dev, struct hvn_dev_queue *q)
{
	struct hvn_dev_rng *rng = dev;

	/* The parked list and the timer are the one queue's. */
	if (rng->queue)
		return -EBUSY;
	rng->queue = q;
	return 0;
}

static void rng_queue_stop(void *dev, struct hvn_dev_queue *q)
{
	struct hvn_dev_rng *rng = dev;

	/* No request is in flight, so none is parked and the timer's poll
	 * has completed: nothing of the queue is left on its loop. */
	if (rng->queue == q)
		rng->queue = NULL;
}

static const struct hvn_dev_ops rng_ops = {
	.name = "rng",
	.virtio_id = 4,			/* VIRTIO_ID_RNG */
	.config_size = 0,		/* no config space */
	.req_size = sizeof(struct rng_req),
	.max_segments = MAX_SEGMENTS,
	.max_queues = 1,		/* the specification's one requestq */
	/* No device features, nothing to configure: get_features,
	 * set_features, get_config and set_config stay NULL. */
	.queue_start = rng_queue_start,
	.queue_stop = rng_queue_stop,
	.handle = rng_handle,
};

const struct hvn_dev_ops *hvn_dev_rng_ops(void)
{
	return &rng_ops;
}

int hvn_dev_rng_new(const struct hvn_dev_rng_config *cfg, struct hvn_dev_rng **rngp)
{
	struct hvn_dev_rng *rng;

	if (!rngp)
		return -EINVAL;
	*rngp = NULL;
	if (cfg && (cfg->flags || cfg->reserved[0] || cfg->reserved[1] ||
		    (!cfg->source && cfg->arg) || cfg->max_request > MAX_MAX_REQUEST))
		return -EINVAL;
	rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	rng->source = cfg && cfg->source ? cfg->source : getrandom_source;
	rng->arg = cfg ? cfg->arg : NULL;
	rng->max_request = cfg && cfg->max_request ? cfg->max_request : DEFAULT_MAX_REQUEST;
	rng->parked_tail = &rng->parked;
	rng->timer_op.cb = on_timer;
	rng->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (rng->timer_fd < 0) {
		int err = -errno;

		free(rng);
		return err;
	}
	*rngp = rng;
	return 0;
}

void hvn_dev_rng_free(struct hvn_dev_rng *rng)
{
	if (!rng)
		return;
	close(rng->timer_fd);
	free(rng);
}
