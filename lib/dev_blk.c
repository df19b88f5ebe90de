// SPDX-License-Identifier: MIT
/*
 * dev_blk.c - virtio-blk on a file, a block device, or nothing (null).
 *
 * A device of <hvnotify/dev.h>, in the library so that hvnotifyd and a VMM
 * that hosts it in-process run the same code.
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
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvnotify/dev.h"

#define SECTOR 512u
#define SEG_MAX 126u			/* data descriptors per request (QEMU's default) */
#define MAX_SEGMENTS (SEG_MAX + 2)	/* plus the header and the status */
#define MAX_DISCARD_SECTORS (UINT32_C(1) << 22)	/* 2 GiB per request */
#define ZERO_CHUNK (1u << 20)		/* bytes per write when zeroes are written */

/* What write-zeroes writes where the file system cannot zero a range
 * (tmpfs has no FALLOC_FL_ZERO_RANGE).  Only ever read (by the kernel);
 * aligned for O_DIRECT.  In .bss, so it costs no memory until then. */
static uint8_t zero_buf[ZERO_CHUNK] __attribute__((aligned(4096)));

struct hvn_dev_blk {
	int fd;				/* -1: the null backing */
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
	/* Queue i registered fd with its loop.  Each entry is its queue's,
	 * touched in the thread that runs the queue. */
	bool fd_registered[HVN_DEV_BLK_MAX_QUEUES];
};

struct blk_req {
	struct hvn_loop_op op;
	struct hvn_dev_req *req;
	struct hvn_dev_blk *blk;
	uint8_t *status;		/* the guest's status byte */
	uint32_t type;
	uint64_t offset;		/* bytes */
	uint32_t len;			/* data bytes still to transfer */
	uint32_t total;			/* data bytes of the request */
	struct iovec *iov;		/* the data, within the slot's iovecs */
	unsigned int niov;
	struct iovec zero_iov;		/* write-zeroes written: a piece of zero_buf */
};

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

	if (res <= 0) {
		/* An error, or nothing moved (the file shrank under us): the
		 * guest learns it from the status. */
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
	if (r->type != VIRTIO_BLK_T_IN &&
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
	if (r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		/* Written, not allocated: the next piece of the range. */
		r->zero_iov.iov_base = zero_buf;
		r->zero_iov.iov_len = r->len < ZERO_CHUNK ? r->len : ZERO_CHUNK;
		r->iov = &r->zero_iov;
		r->niov = 1;
	}
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

/* A write-zeroes the file system cannot do with fallocate: write them. */
static void zeroes_done(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct blk_req *r = (struct blk_req *)op;

	if (res == -EOPNOTSUPP && r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		if (submit_rw(r) < 0)
			finish(r, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	sync_done(op, res, flags);
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
	/* Where the file system cannot do it, write-zeroes writes them
	 * (zeroes_done): the range, as submit_rw() and rw_done() see it. */
	r->offset = sector * SECTOR;
	r->total = r->len = (uint32_t)bytes;
	r->op.cb = zeroes_done;
	if (hvn_loop_fallocate(hvn_dev_queue_loop(r->req->queue), &r->op, r->blk->fd, mode,
			       sector * SECTOR, bytes) < 0)
		finish(r, VIRTIO_BLK_S_IOERR, 0);
}

static void blk_handle(void *dev, struct hvn_dev_req *req)
{
	struct blk_req *r = req->priv;
	struct hvn_vq_req *vr = &req->vq;
	struct virtio_blk_outhdr hdr;

	/* The layout every request must have: a readable header first and
	 * a writable status byte last.  Without them there is nothing to
	 * answer in: the driver is broken, and so is the queue (the host
	 * hears why through its broken callback). */
	if (vr->out_len < sizeof(hdr) || vr->in_len < 1) {
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
	return ((struct hvn_dev_blk *)dev)->features;
}

/* A driver negotiates features right after resetting the device, and a
 * reset brings the config space back to its defaults: writeback on. */
static int blk_set_features(void *dev, uint64_t features)
{
	atomic_store_explicit(&((struct hvn_dev_blk *)dev)->writeback, 1, memory_order_relaxed);
	return 0;
}

static int blk_get_config(void *dev, void *buf, uint32_t offset, uint32_t len)
{
	struct hvn_dev_blk *blk = dev;
	struct virtio_blk_config c = blk->config;

	c.wce = atomic_load_explicit(&blk->writeback, memory_order_relaxed);
	memcpy(buf, (const char *)&c + offset, len);
	return 0;
}

/* Only the writeback byte is the driver's to write; writes to the rest of
 * the config space (read-only to a driver) are ignored. */
static int blk_set_config(void *dev, const void *buf, uint32_t offset, uint32_t len)
{
	struct hvn_dev_blk *blk = dev;
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

/*
 * Every request does I/O on the one image: register it with the queue's
 * loop (io_uring's fixed files), so that the kernel takes no reference to
 * the file per request, an atomic on a struct file that every worker
 * serving this image shares.  Where the engine has no registered files the
 * I/O goes as it would anyway.
 */
static int blk_queue_start(void *dev, struct hvn_dev_queue *q)
{
	struct hvn_dev_blk *blk = dev;
	unsigned int idx = hvn_dev_queue_index(q);

	if (blk->fd >= 0 && idx < HVN_DEV_BLK_MAX_QUEUES)
		blk->fd_registered[idx] =
			hvn_loop_register_file(hvn_dev_queue_loop(q), blk->fd) == 0;
	return 0;
}

static void blk_queue_stop(void *dev, struct hvn_dev_queue *q)
{
	struct hvn_dev_blk *blk = dev;
	unsigned int idx = hvn_dev_queue_index(q);

	if (idx < HVN_DEV_BLK_MAX_QUEUES && blk->fd_registered[idx]) {
		hvn_loop_unregister_file(hvn_dev_queue_loop(q), blk->fd);
		blk->fd_registered[idx] = false;
	}
}

static const struct hvn_dev_ops blk_ops = {
	.name = "blk",
	.virtio_id = 2,				/* VIRTIO_ID_BLOCK */
	.config_size = sizeof(struct virtio_blk_config),
	.req_size = sizeof(struct blk_req),
	.max_segments = MAX_SEGMENTS,
	.max_queues = HVN_DEV_BLK_MAX_QUEUES,
	.get_features = blk_get_features,
	.set_features = blk_set_features,
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.queue_start = blk_queue_start,
	.queue_stop = blk_queue_stop,
	.handle = blk_handle,
};

const struct hvn_dev_ops *hvn_dev_blk_ops(void)
{
	return &blk_ops;
}

#define BLK_FLAGS (HVN_DEV_BLK_READONLY | HVN_DEV_BLK_DIRECT | HVN_DEV_BLK_NULL)

/* Exactly one backing: a path, a descriptor, or none (null). */
static int check_config(const struct hvn_dev_blk_config *cfg)
{
	bool null = cfg->flags & HVN_DEV_BLK_NULL;
	unsigned int i;

	if ((cfg->flags & ~BLK_FLAGS) || cfg->num_queues > HVN_DEV_BLK_MAX_QUEUES)
		return -EINVAL;
	for (i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (null)
		return !cfg->path && cfg->fd < 0 && !(cfg->flags & HVN_DEV_BLK_DIRECT) &&
		       cfg->null_size >= SECTOR ? 0 : -EINVAL;
	if (cfg->null_size)
		return -EINVAL;
	if (cfg->path)
		return cfg->fd < 0 ? 0 : -EINVAL;
	/* O_DIRECT is a flag of an open: a descriptor brings its own. */
	return cfg->fd >= 0 && !(cfg->flags & HVN_DEV_BLK_DIRECT) ? 0 : -EINVAL;
}

/* The size of what fd is, in bytes, and its logical block size. */
static int backing_size(int fd, uint64_t *size, uint32_t *lbs)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		int ssz = 0;

		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		if (ioctl(fd, BLKSSZGET, &ssz) == 0 && ssz >= (int)SECTOR)
			*lbs = (uint32_t)ssz;
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	return -ENOTBLK;
}

int hvn_dev_blk_new(const struct hvn_dev_blk_config *cfg, struct hvn_dev_blk **blkp)
{
	struct hvn_dev_blk *blk;
	unsigned int num_queues;
	uint32_t lbs = SECTOR;
	const char *base;
	int r;

	if (!blkp)
		return -EINVAL;
	*blkp = NULL;
	if (!cfg)
		return -EINVAL;
	r = check_config(cfg);
	if (r < 0)
		return r;
	num_queues = cfg->num_queues ? cfg->num_queues : 1;
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	blk->fd = -1;
	blk->readonly = cfg->flags & HVN_DEV_BLK_READONLY;
	if (cfg->path) {
		int flags = (blk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
			    (cfg->flags & HVN_DEV_BLK_DIRECT ? O_DIRECT : 0);

		blk->fd = open(cfg->path, flags);
	} else if (cfg->fd >= 0) {
		/* Our own descriptor: the caller may close theirs. */
		blk->fd = fcntl(cfg->fd, F_DUPFD_CLOEXEC, 3);
	}
	if (blk->fd < 0 && !(cfg->flags & HVN_DEV_BLK_NULL)) {
		r = -errno;
		goto fail;
	}
	if (blk->fd >= 0) {
		r = backing_size(blk->fd, &blk->capacity, &lbs);
		if (r < 0)
			goto fail;
	} else {
		blk->capacity = cfg->null_size;
	}
	blk->capacity -= blk->capacity % SECTOR;
	if (blk->capacity == 0) {
		r = -EINVAL;	/* smaller than one sector */
		goto fail;
	}

	blk->features = (UINT64_C(1) << VIRTIO_BLK_F_SEG_MAX) | (UINT64_C(1) << VIRTIO_BLK_F_BLK_SIZE) |
			(UINT64_C(1) << VIRTIO_BLK_F_FLUSH) | (UINT64_C(1) << VIRTIO_BLK_F_CONFIG_WCE);
	atomic_init(&blk->writeback, 1);
	if (num_queues > 1)
		blk->features |= UINT64_C(1) << VIRTIO_BLK_F_MQ;
	if (blk->readonly)
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

	if (cfg->serial) {
		base = cfg->serial;
	} else if (cfg->path) {
		base = strrchr(cfg->path, '/');
		base = base ? base + 1 : cfg->path;
	} else {
		base = cfg->fd >= 0 ? "fd" : "null";
	}
	/* 20 bytes, NUL-padded, not NUL-terminated when full (GET_ID's format). */
	memcpy(blk->id, base, strlen(base) < sizeof(blk->id) ? strlen(base) : sizeof(blk->id));
	*blkp = blk;
	return 0;
fail:
	hvn_dev_blk_free(blk);
	return r;
}

void hvn_dev_blk_free(struct hvn_dev_blk *blk)
{
	if (!blk)
		return;
	if (blk->fd >= 0)
		close(blk->fd);
	free(blk);
}
