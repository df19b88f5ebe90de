// SPDX-License-Identifier: MIT
/*
 * dev_blk.c - virtio-blk on a file, a block device, or nothing (null).
 *
 * Requests are parsed in place: the header is copied out of the readable
 * part, the status byte is the last byte of the writable part, and the data
 * is the slot's own iovec list trimmed at both ends, handed to the loop's
 * readv/writev as it is.  Short transfers are resubmitted for the rest.
 * A request that does not have the layout virtio-blk requires (no room for
 * a header or a status byte) means a broken or hostile driver: the queue
 * breaks.  A well-formed request the device cannot serve (out of range, a
 * length that is not whole sectors, a write to a read-only disk, an I/O
 * error) gets an error status, as the specification says.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvnotifyd.h"

#define SECTOR 512u
#define SEG_MAX 126u			/* data descriptors per request (QEMU's default) */
#define MAX_SEGMENTS (SEG_MAX + 2)	/* plus the header and the status */
#define MAX_DISCARD_SECTORS (UINT32_C(1) << 22)	/* 2 GiB per request */

#define BLK_MAX_QUEUES 64

struct blk_dev {
	int fd;				/* -1: the null backing */
	/* Per queue: requests still to log as resubmitted (blk_log_next);
	 * each touched only by the worker that runs the queue. */
	unsigned int log_next[BLK_MAX_QUEUES];
	/* 1: writeback cache, 0: writethrough (each write synced before it
	 * completes).  The driver flips it through the config space
	 * (VIRTIO_BLK_F_CONFIG_WCE) from the control thread while workers
	 * read it: an atomic, relaxed (a write uses whichever mode it saw). */
	atomic_uchar writeback;
	uint64_t capacity;		/* bytes, a multiple of SECTOR */
	bool readonly;
	uint64_t features;
	struct virtio_blk_config config;
	char id[VIRTIO_BLK_ID_BYTES];
};

struct blk_req {
	struct hvn_loop_op op;
	struct hvn_dev_req *req;
	struct blk_dev *blk;
	uint8_t *status;		/* the guest's status byte */
	uint32_t type;
	uint64_t offset;		/* bytes */
	uint32_t len;			/* data bytes still to transfer */
	uint32_t total;			/* data bytes of the request */
	struct iovec *iov;		/* the data, within the slot's iovecs */
	unsigned int niov;
};

uint64_t blk_capacity_bytes(const struct blk_dev *blk)
{
	return blk->capacity;
}

/* ---- iovec helpers: the request's own array, changed in place ---- */

static size_t iov_copy_out(const struct iovec *iov, unsigned int n, void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy((char *)buf + done, iov[i].iov_base, l);
		done += l;
	}
	return done;
}

static size_t iov_copy_in(const struct iovec *iov, unsigned int n, const void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const char *)buf + done, l);
		done += l;
	}
	return done;
}

/* Drop skip bytes from the front of *iov / *n (entries that empty go). */
static void iov_skip(struct iovec **iov, unsigned int *n, size_t skip)
{
	while (*n && skip) {
		if ((*iov)->iov_len > skip) {
			(*iov)->iov_base = (char *)(*iov)->iov_base + skip;
			(*iov)->iov_len -= skip;
			return;
		}
		skip -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
}

/* Drop trim bytes from the back. */
static void iov_trim(struct iovec *iov, unsigned int *n, size_t trim)
{
	while (*n && trim) {
		struct iovec *last = &iov[*n - 1];

		if (last->iov_len > trim) {
			last->iov_len -= trim;
			return;
		}
		trim -= last->iov_len;
		(*n)--;
	}
}

/* The last byte of the writable part. */
static uint8_t *status_byte(const struct hvn_vq_req *vr)
{
	unsigned int i = vr->n_out + vr->n_in;

	while (i > vr->n_out) {
		const struct iovec *v = &vr->iov[--i];

		if (v->iov_len)
			return (uint8_t *)v->iov_base + v->iov_len - 1;
	}
	return NULL;
}

/* ---- completion ---- */

static void finish(struct blk_req *r, uint8_t status, uint32_t data_written)
{
	*r->status = status;
	hvn_dev_req_done(r->req, data_written + 1);
}

static int submit_rw(struct blk_req *r);
static void sync_done(struct hvn_loop_op *op, int32_t res, uint32_t flags);

static void rw_done(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct blk_req *r = (struct blk_req *)op;

	if (res < 0) {
		log_debug("blk: %s of %u bytes at %llu: %s", r->type == VIRTIO_BLK_T_IN ? "read" : "write",
			  r->total, (unsigned long long)r->offset, strerror(-res));
		finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (res == 0) {
		/* Nothing moved: the file shrank under us. */
		finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if ((uint32_t)res < r->len) {
		/* A short transfer: carry on with the rest. */
		r->offset += (uint32_t)res;
		r->len -= (uint32_t)res;
		iov_skip(&r->iov, &r->niov, (uint32_t)res);
		if (submit_rw(r) < 0)
			finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (r->type == VIRTIO_BLK_T_OUT &&
	    !atomic_load_explicit(&r->blk->writeback, memory_order_relaxed)) {
		/* Writethrough: the data is on stable storage before the
		 * guest hears about it. */
		r->op.cb = sync_done;
		if (hvn_loop_fsync(hvn_dev_queue_loop(r->req->queue), &r->op, r->blk->fd, 1) < 0)
			finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	finish(r, VIRTIO_BLK_S_OK, r->type == VIRTIO_BLK_T_IN ? r->total : 0);
}

static void sync_done(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct blk_req *r = (struct blk_req *)op;

	finish(r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 0);
}

static int submit_rw(struct blk_req *r)
{
	struct hvn_loop *loop = hvn_dev_queue_loop(r->req->queue);

	r->op.cb = rw_done;
	if (r->type == VIRTIO_BLK_T_IN)
		return hvn_loop_readv(loop, &r->op, r->blk->fd, r->iov, r->niov, r->offset);
	return hvn_loop_writev(loop, &r->op, r->blk->fd, r->iov, r->niov, r->offset);
}

/* ---- requests ---- */

static void do_rw(struct blk_req *r, struct hvn_vq_req *vr)
{
	if (r->type == VIRTIO_BLK_T_IN) {
		/* Data: the writable part but its last byte. */
		r->iov = vr->iov + vr->n_out;
		r->niov = vr->n_in;
		iov_trim(r->iov, &r->niov, 1);
		r->total = (uint32_t)(vr->in_len - 1);
	} else {
		if (r->blk->readonly) {
			finish(r, VIRTIO_BLK_S_IOERR, 0);
			return;
		}
		r->iov = vr->iov;
		r->niov = vr->n_out;
		iov_skip(&r->iov, &r->niov, sizeof(struct virtio_blk_outhdr));
		r->total = (uint32_t)(vr->out_len - sizeof(struct virtio_blk_outhdr));
	}
	r->len = r->total;
	if (r->total % SECTOR || r->offset > r->blk->capacity ||
	    r->total > r->blk->capacity - r->offset) {
		finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (r->total == 0 || r->blk->fd < 0) {
		/* Nothing to move, or the null backing: done, data untouched. */
		finish(r, VIRTIO_BLK_S_OK, r->type == VIRTIO_BLK_T_IN ? r->total : 0);
		return;
	}
	if (submit_rw(r) < 0)
		finish(r, VIRTIO_BLK_S_IOERR, 0);
}

static void do_flush(struct blk_req *r)
{
	if (r->blk->fd < 0) {
		finish(r, VIRTIO_BLK_S_OK, 0);
		return;
	}
	r->op.cb = sync_done;
	if (hvn_loop_fsync(hvn_dev_queue_loop(r->req->queue), &r->op, r->blk->fd, 1) < 0)
		finish(r, VIRTIO_BLK_S_IOERR, 0);
}

static void do_get_id(struct blk_req *r, struct hvn_vq_req *vr)
{
	struct iovec *iov = vr->iov + vr->n_out;
	unsigned int n = vr->n_in;
	size_t room = vr->in_len - 1, len = room < sizeof(r->blk->id) ? room : sizeof(r->blk->id);

	iov_trim(iov, &n, 1);
	iov_copy_in(iov, n, r->blk->id, len);
	finish(r, VIRTIO_BLK_S_OK, (uint32_t)len);
}

static void do_discard(struct blk_req *r, struct hvn_vq_req *vr)
{
	struct virtio_blk_discard_write_zeroes seg;
	struct iovec *iov = vr->iov;
	unsigned int n = vr->n_out;
	uint64_t sector, bytes;
	uint32_t num, seg_flags;
	int mode;

	if (r->blk->readonly) {
		finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	/* One segment per request (max_discard_seg = max_write_zeroes_seg = 1). */
	if (vr->out_len != sizeof(struct virtio_blk_outhdr) + sizeof(seg)) {
		finish(r, VIRTIO_BLK_S_UNSUPP, 0);
		return;
	}
	iov_skip(&iov, &n, sizeof(struct virtio_blk_outhdr));
	iov_copy_out(iov, n, &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	num = le32toh(seg.num_sectors);
	seg_flags = le32toh(seg.flags);
	bytes = (uint64_t)num * SECTOR;
	/* Only the unmap flag is defined, and only for WRITE_ZEROES. */
	if ((seg_flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
	    (r->type == VIRTIO_BLK_T_DISCARD && seg_flags)) {
		finish(r, VIRTIO_BLK_S_UNSUPP, 0);
		return;
	}
	if (num > MAX_DISCARD_SECTORS || sector > r->blk->capacity / SECTOR ||
	    bytes > r->blk->capacity - sector * SECTOR) {
		finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	if (r->blk->fd < 0 || num == 0) {
		finish(r, VIRTIO_BLK_S_OK, 0);
		return;
	}
	/* Discard and "zeroes, may unmap" punch a hole; plain write-zeroes
	 * keeps the blocks allocated.  Both read back as zeroes. */
	if (r->type == VIRTIO_BLK_T_DISCARD || (seg_flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	else
		mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	r->op.cb = sync_done;
	if (hvn_loop_fallocate(hvn_dev_queue_loop(r->req->queue), &r->op, r->blk->fd, mode,
			       sector * SECTOR, bytes) < 0)
		finish(r, VIRTIO_BLK_S_IOERR, 0);
}

/*
 * After a restart the first requests of a queue are the ones the previous
 * daemon left in flight (resubmitted by the library before any new one):
 * say what they are, as they are what a crash put at risk.
 */
void blk_log_next(struct blk_dev *blk, unsigned int queue, unsigned int count)
{
	if (queue < BLK_MAX_QUEUES)
		blk->log_next[queue] = count;
}

static void log_resubmitted(struct blk_req *r, const struct hvn_vq_req *vr, unsigned int queue)
{
	static const char *const names[] = {
		[VIRTIO_BLK_T_IN] = "read", [VIRTIO_BLK_T_OUT] = "write",
		[VIRTIO_BLK_T_FLUSH] = "flush", [VIRTIO_BLK_T_GET_ID] = "get-id",
		[VIRTIO_BLK_T_DISCARD] = "discard", [VIRTIO_BLK_T_WRITE_ZEROES] = "write-zeroes",
	};
	const char *name = r->type < sizeof(names) / sizeof(names[0]) && names[r->type] ?
			   names[r->type] : "request";
	uint64_t bytes = r->type == VIRTIO_BLK_T_IN ? vr->in_len - 1 :
			 vr->out_len - sizeof(struct virtio_blk_outhdr);

	log_info("blk: queue %u: resubmitted head %u: %s (type %u) of %llu bytes at sector %llu",
		 queue, vr->head, name, r->type, (unsigned long long)bytes,
		 (unsigned long long)(r->offset / SECTOR));
}

static void blk_handle(void *dev, struct hvn_dev_req *req)
{
	struct blk_req *r = req->priv;
	struct hvn_vq_req *vr = &req->vq;
	struct virtio_blk_outhdr hdr;

	/* The layout every request must have: a readable header first and
	 * a writable status byte last.  Without them there is nothing to
	 * answer in: the driver is broken, and so is the queue. */
	if (vr->out_len < sizeof(hdr) || vr->in_len < 1) {
		log_debug("blk: request without room for a header (%llu bytes) or a status (%llu)",
			  (unsigned long long)vr->out_len, (unsigned long long)vr->in_len);
		hvn_dev_req_abort(req, -EBADMSG);
		return;
	}
	memset(r, 0, sizeof(*r));
	r->req = req;
	r->blk = dev;
	r->status = status_byte(vr);
	iov_copy_out(vr->iov, vr->n_out, &hdr, sizeof(hdr));
	r->type = le32toh(hdr.type);
	r->offset = le64toh(hdr.sector);
	/* sector * 512 must not wrap: a huge sector is simply out of range. */
	if (r->offset > UINT64_MAX / SECTOR)
		r->offset = UINT64_MAX;
	else
		r->offset *= SECTOR;
	{
		unsigned int qi = hvn_dev_queue_index(req->queue);

		if (qi < BLK_MAX_QUEUES && r->blk->log_next[qi]) {
			r->blk->log_next[qi]--;
			log_resubmitted(r, vr, qi);
		}
	}

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		do_rw(r, vr);
		return;
	case VIRTIO_BLK_T_FLUSH:
		do_flush(r);
		return;
	case VIRTIO_BLK_T_GET_ID:
		do_get_id(r, vr);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		do_discard(r, vr);
		return;
	}
	finish(r, VIRTIO_BLK_S_UNSUPP, 0);
}

/* ---- the device ---- */

static uint64_t blk_get_features(void *dev)
{
	return ((struct blk_dev *)dev)->features;
}

/* A driver negotiates features right after resetting the device, and a
 * reset brings the config space back to its defaults: writeback on. */
static int blk_set_features(void *dev, uint64_t features)
{
	atomic_store_explicit(&((struct blk_dev *)dev)->writeback, 1, memory_order_relaxed);
	return 0;
}

static int blk_get_config(void *dev, void *buf, uint32_t offset, uint32_t len)
{
	struct blk_dev *blk = dev;
	struct virtio_blk_config c = blk->config;

	c.wce = atomic_load_explicit(&blk->writeback, memory_order_relaxed);
	memcpy(buf, (const char *)&c + offset, len);
	return 0;
}

/* Only the writeback byte is the driver's to write; writes to the rest of
 * the config space (read-only to a driver) are ignored. */
static int blk_set_config(void *dev, const void *buf, uint32_t offset, uint32_t len)
{
	struct blk_dev *blk = dev;
	const uint32_t wce = offsetof(struct virtio_blk_config, wce);
	uint8_t v;

	if (offset > wce || offset + len <= wce)
		return 0;
	v = ((const uint8_t *)buf)[wce - offset];
	if (v > 1)
		return -EINVAL;
	atomic_store_explicit(&blk->writeback, v, memory_order_relaxed);
	return 0;
}

const struct hvn_dev_ops blk_ops = {
	.name = "blk",
	.virtio_id = 2,				/* VIRTIO_ID_BLOCK */
	.config_size = sizeof(struct virtio_blk_config),
	.req_size = sizeof(struct blk_req),
	.max_segments = MAX_SEGMENTS,
	.max_queues = BLK_MAX_QUEUES,
	.get_features = blk_get_features,
	.set_features = blk_set_features,
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.handle = blk_handle,
};

int blk_open(const struct blk_options *opt, unsigned int num_queues, struct blk_dev **out,
	     char *why, size_t why_len)
{
	struct blk_dev *blk;
	struct stat st;
	uint32_t lbs = SECTOR;
	const char *base;

	*out = NULL;
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	blk->fd = -1;
	blk->readonly = opt->readonly;
	if (opt->path) {
		int flags = (opt->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (opt->direct ? O_DIRECT : 0);

		blk->fd = open(opt->path, flags);
		if (blk->fd < 0 || fstat(blk->fd, &st) < 0) {
			int err = -errno;

			snprintf(why, why_len, "%s: %s", opt->path, strerror(errno));
			blk_close(blk);
			return err;
		}
		if (S_ISBLK(st.st_mode)) {
			uint64_t size = 0;
			int ssz = 0;

			if (ioctl(blk->fd, BLKGETSIZE64, &size) < 0) {
				int err = -errno;

				snprintf(why, why_len, "%s: size of the block device: %s", opt->path,
					 strerror(errno));
				blk_close(blk);
				return err;
			}
			if (ioctl(blk->fd, BLKSSZGET, &ssz) == 0 && ssz >= (int)SECTOR)
				lbs = (uint32_t)ssz;
			blk->capacity = size;
		} else if (S_ISREG(st.st_mode)) {
			blk->capacity = (uint64_t)st.st_size;
		} else {
			snprintf(why, why_len, "%s: neither a regular file nor a block device", opt->path);
			blk_close(blk);
			return -EINVAL;
		}
	} else {
		blk->capacity = opt->null_size;
	}
	blk->capacity -= blk->capacity % SECTOR;
	if (blk->capacity == 0) {
		snprintf(why, why_len, "%s: smaller than one sector", opt->path ? opt->path : "null");
		blk_close(blk);
		return -EINVAL;
	}

	blk->features = (UINT64_C(1) << VIRTIO_BLK_F_SEG_MAX) | (UINT64_C(1) << VIRTIO_BLK_F_BLK_SIZE) |
			(UINT64_C(1) << VIRTIO_BLK_F_FLUSH) | (UINT64_C(1) << VIRTIO_BLK_F_CONFIG_WCE);
	atomic_init(&blk->writeback, 1);
	if (num_queues > 1)
		blk->features |= UINT64_C(1) << VIRTIO_BLK_F_MQ;
	if (opt->readonly)
		blk->features |= UINT64_C(1) << VIRTIO_BLK_F_RO;
	else
		blk->features |= (UINT64_C(1) << VIRTIO_BLK_F_DISCARD) |
				 (UINT64_C(1) << VIRTIO_BLK_F_WRITE_ZEROES);

	/* The config space is little-endian, as is every field a guest reads. */
	blk->config.capacity = htole64(blk->capacity / SECTOR);
	blk->config.seg_max = htole32(SEG_MAX);
	blk->config.blk_size = htole32(lbs);
	blk->config.num_queues = htole16((uint16_t)num_queues);
	blk->config.max_discard_sectors = htole32(MAX_DISCARD_SECTORS);
	blk->config.max_discard_seg = htole32(1);
	blk->config.discard_sector_alignment = htole32(lbs / SECTOR);
	blk->config.max_write_zeroes_sectors = htole32(MAX_DISCARD_SECTORS);
	blk->config.max_write_zeroes_seg = htole32(1);
	blk->config.write_zeroes_may_unmap = 1;

	if (opt->serial) {
		base = opt->serial;
	} else {
		base = opt->path ? strrchr(opt->path, '/') : NULL;
		base = base ? base + 1 : (opt->path ? opt->path : "null");
	}
	/* 20 bytes, NUL-padded, not NUL-terminated when full (GET_ID's format). */
	memcpy(blk->id, base, strlen(base) < sizeof(blk->id) ? strlen(base) : sizeof(blk->id));
	*out = blk;
	return 0;
}

void blk_close(struct blk_dev *blk)
{
	if (!blk)
		return;
	if (blk->fd >= 0)
		close(blk->fd);
	free(blk);
}
