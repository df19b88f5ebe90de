/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/dev.h - device backends, written once and hosted anywhere.
 *
 * A device is a small ops table: its virtio identity and features, its
 * config space, and a handler that starts work on one request.  A host
 * runs the device's queues: hvnotifyd over vhost-user, or a VMM in-process
 * on its own loop.  The host pops requests, hands each to the device,
 * collects completions, publishes them to the guest in batches and
 * signals the guest only when it asked for it; the device never touches
 * the ring.
 *
 * Everything a queue does happens in its loop's thread (<hvnotify/loop.h>):
 * the handler runs there, and the device submits its I/O on that loop.
 *
 * The library's own devices (virtio-blk and virtio-rng, at the end of this
 * header) are such ops tables: hvnotifyd serves them, and a VMM runs the
 * very same ones on its own loop.  hvnotify-device(7) shows how to write
 * one.
 */
#ifndef HVNOTIFY_DEV_H
#define HVNOTIFY_DEV_H

#include <stdint.h>

#include <hvnotify/loop.h>
#include <hvnotify/vq.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hvn_dev_queue;

/* A request in flight: storage the host owns, one per request the queue
 * can hold, so nothing is allocated per request. */
struct hvn_dev_req {
	struct hvn_vq_req vq;		/* the chain: iov, n_out, n_in, head */
	struct hvn_dev_queue *queue;	/* the queue it came from */
	void *priv;			/* hvn_dev_ops.req_size bytes for the device */
};

struct hvn_dev_ops {
	const char *name;		/* "blk", "rng" ... */
	uint32_t virtio_id;		/* VIRTIO_ID_*: 2 block, 4 entropy */
	uint32_t config_size;		/* bytes of config space */
	uint32_t req_size;		/* device-private bytes per request */
	uint32_t max_segments;		/* descriptors a request may have */
	uint32_t max_queues;		/* the most queues the device serves */

	/* Device feature bits (the host adds the ring and transport bits). */
	uint64_t (*get_features)(void *dev);
	/* The driver's choice; 0 or a negative errno to refuse it. */
	int (*set_features)(void *dev, uint64_t features);
	int (*get_config)(void *dev, void *buf, uint32_t offset, uint32_t len);
	int (*set_config)(void *dev, const void *buf, uint32_t offset, uint32_t len);
	/* Optional: a queue starts or has stopped (no request in flight). */
	int (*queue_start)(void *dev, struct hvn_dev_queue *q);
	void (*queue_stop)(void *dev, struct hvn_dev_queue *q);
	/* Start work on req; finish now or later with hvn_dev_req_done(). */
	void (*handle)(void *dev, struct hvn_dev_req *req);
};

/* Everything a host needs to run one queue of a device. */
struct hvn_dev_queue_config {
	const struct hvn_dev_ops *ops;
	void *dev;
	struct hvn_vq *vq;		/* configured (size, addr, features, base) */
	unsigned int index;		/* the queue's number in its device */
	int kick_fd;			/* the guest's doorbell, an eventfd */
	int call_fd;			/* the guest's interrupt, an eventfd; -1: none */
	int err_fd;			/* signalled when the queue breaks; -1: none */
	unsigned int batch;		/* requests popped per round; 0: default */
	/* Optional, in the loop's thread: the guest broke the queue. */
	void (*broken)(struct hvn_dev_queue *q, int err, void *arg);
	/* Optional, in the loop's thread: req is a chain a previous host left
	 * in flight (inflight tracking), about to go to the device again. */
	void (*resubmitted)(struct hvn_dev_queue *q, const struct hvn_dev_req *req, void *arg);
	void *arg;
};

/* Counters of a queue, for statistics and tests. */
struct hvn_dev_queue_stats {
	uint64_t requests;		/* popped and handed to the device */
	uint64_t completions;		/* pushed to the used ring */
	uint64_t kicks;			/* kick eventfd wake-ups */
	uint64_t calls;			/* call eventfd signals */
	uint64_t batches;		/* used-index publications */
	uint32_t inflight;		/* handed to the device, not yet done */
	int32_t error;			/* 0, or why the guest broke the queue */
};

/* For devices. */
void hvn_dev_req_done(struct hvn_dev_req *req, uint32_t written);
void hvn_dev_req_abort(struct hvn_dev_req *req, int err);
struct hvn_loop *hvn_dev_queue_loop(const struct hvn_dev_queue *q);
unsigned int hvn_dev_queue_index(const struct hvn_dev_queue *q);

/* For hosts, in the loop's thread. */
int hvn_dev_queue_start(struct hvn_loop *loop, const struct hvn_dev_queue_config *cfg,
			struct hvn_dev_queue **qp);
int hvn_dev_queue_stop(struct hvn_dev_queue *q,
		       void (*stopped)(struct hvn_dev_queue *q, void *arg), void *arg);
void hvn_dev_queue_free(struct hvn_dev_queue *q);
int hvn_dev_queue_stats(const struct hvn_dev_queue *q, struct hvn_dev_queue_stats *stats);
int hvn_dev_queue_set_polling(struct hvn_dev_queue *q, int on);
int hvn_dev_queue_poll(struct hvn_dev_queue *q);

/* ---------------------------------------------------- built-in devices -- */
/*
 * Each is an instance (its state) plus its ops table, given together to a
 * host: cfg.ops = hvn_dev_blk_ops(), cfg.dev = blk.  An instance serves
 * one frontend (or one in-process guest) at a time.
 */

/* virtio-blk: a disk on a file, a block device, a descriptor, or nothing. */
#define HVN_DEV_BLK_MAX_QUEUES	64

/* hvn_dev_blk_config.flags */
#define HVN_DEV_BLK_READONLY	(1u << 0)	/* VIRTIO_BLK_F_RO: writes fail */
#define HVN_DEV_BLK_DIRECT	(1u << 1)	/* open path with O_DIRECT */
#define HVN_DEV_BLK_NULL	(1u << 2)	/* no backing: for benchmarks */

/* Exactly one backing: path, fd, or HVN_DEV_BLK_NULL (with null_size). */
struct hvn_dev_blk_config {
	const char *path;	/* a file or block device to open, or NULL */
	int32_t fd;		/* or one already open (duplicated); else -1 */
	uint32_t flags;		/* HVN_DEV_BLK_* */
	uint64_t null_size;	/* HVN_DEV_BLK_NULL: bytes; otherwise 0 */
	const char *serial;	/* GET_ID's answer; NULL: path's last part */
	uint32_t num_queues;	/* what the config space says; 0: 1 */
	uint32_t reserved[3];	/* must be 0 */
};

struct hvn_dev_blk;

int hvn_dev_blk_new(const struct hvn_dev_blk_config *cfg, struct hvn_dev_blk **blkp);
void hvn_dev_blk_free(struct hvn_dev_blk *blk);
const struct hvn_dev_ops *hvn_dev_blk_ops(void);

/* virtio-rng: entropy from getrandom(2), or from a source of the caller's. */
struct hvn_dev_rng_config {
	/* Optional: put up to len bytes in buf without blocking; the count,
	 * or a negative errno (-EAGAIN: none yet).  NULL: getrandom(2)
	 * with GRND_NONBLOCK. */
	int (*source)(void *arg, void *buf, uint32_t len);
	void *arg;
	uint32_t max_request;	/* bytes per request, <= 1 MiB; 0: 64 KiB */
	uint32_t flags;		/* must be 0 */
	uint64_t reserved[2];	/* must be 0 */
};

struct hvn_dev_rng;

int hvn_dev_rng_new(const struct hvn_dev_rng_config *cfg, struct hvn_dev_rng **rngp);
void hvn_dev_rng_free(struct hvn_dev_rng *rng);
const struct hvn_dev_ops *hvn_dev_rng_ops(void);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_DEV_H */
