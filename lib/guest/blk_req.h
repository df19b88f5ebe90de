/* SPDX-License-Identifier: MIT */
/*
 * blk_req.h - virtio-blk requests on the guest's half of a split ring:
 * what a guest's virtio_blk driver puts in the ring (virtio 1.x, 5.2).
 * Each request is a chain of a 16-byte header (device-readable), the data
 * buffers, and a 1-byte status (device-writable).  Headers and status bytes
 * live in guest memory the caller sets aside (blk_meta_bytes()), one slot
 * per ring entry; data buffers are wherever the caller says.
 *
 * Used by the vhost-user frontend tests against qemu-storage-daemon, the
 * daemon's integration tests and the benchmark: a blk_queue drives one
 * vring_driver, kicks through an eventfd and waits for completions on
 * another, as a guest with ioeventfd and irqfd would.  One thread per queue.
 */
#ifndef HVN_TEST_BLK_REQ_H
#define HVN_TEST_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "vring_driver.h"

/* Request types */
#define VBLK_T_IN		0
#define VBLK_T_OUT		1
#define VBLK_T_FLUSH		4
#define VBLK_T_GET_ID		8
#define VBLK_T_DISCARD		11
#define VBLK_T_WRITE_ZEROES	13

/* Status byte */
#define VBLK_S_OK		0
#define VBLK_S_IOERR		1
#define VBLK_S_UNSUPP		2

#define VBLK_SECTOR_SIZE	512
#define VBLK_ID_BYTES		20

/* Device feature bits */
#define VBLK_F_SIZE_MAX		(UINT64_C(1) << 1)
#define VBLK_F_SEG_MAX		(UINT64_C(1) << 2)
#define VBLK_F_GEOMETRY		(UINT64_C(1) << 4)
#define VBLK_F_RO		(UINT64_C(1) << 5)
#define VBLK_F_BLK_SIZE		(UINT64_C(1) << 6)
#define VBLK_F_FLUSH		(UINT64_C(1) << 9)
#define VBLK_F_TOPOLOGY		(UINT64_C(1) << 10)
#define VBLK_F_CONFIG_WCE	(UINT64_C(1) << 11)
#define VBLK_F_MQ		(UINT64_C(1) << 12)
#define VBLK_F_DISCARD		(UINT64_C(1) << 13)
#define VBLK_F_WRITE_ZEROES	(UINT64_C(1) << 14)

/* The config space, little-endian (struct virtio_blk_config). */
struct vblk_config {
	uint64_t capacity;		/* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

#define VBLK_CONFIG_WRITEBACK	32	/* offset of writeback: the one field a driver writes */

/* Data buffers per request, at most. */
#define BLK_MAX_DATA		64

/* Guest memory for headers and status bytes: per ring entry. */
#define BLK_META_BYTES		32
static inline uint64_t blk_meta_bytes(uint32_t num)
{
	return (uint64_t)BLK_META_BYTES * num;
}

struct blk_queue {
	struct vring_driver *d;
	uint64_t meta_gpa;	/* blk_meta_bytes(d->num) of guest memory */
	int kick_fd;		/* eventfd to kick; -1: never kick */
	int call_fd;		/* eventfd the device signals; -1: poll the used ring */
	unsigned long kicks;	/* kicks sent */
	unsigned long calls;	/* call signals consumed */
};

/* A completed request. */
struct blk_done {
	uint16_t head;
	uint8_t status;		/* the status byte; 0xff: the device never wrote it */
	uint32_t len;		/* bytes the device says it wrote, status included */
	void *token;
};

int blk_queue_init(struct blk_queue *q, struct vring_driver *d, uint64_t meta_gpa, int kick_fd,
		   int call_fd);

/*
 * Add one request without publishing it.  The data buffers are
 * device-readable for OUT, DISCARD and WRITE_ZEROES (and for types this
 * file does not know), device-writable for IN and GET_ID; FLUSH takes none.
 * Returns the head, -ENOSPC when the ring is full, -EINVAL.
 */
int blk_add(struct blk_queue *q, uint32_t type, uint64_t sector, const struct vrd_buf *data,
	    unsigned int n_data, void *token, bool indirect);

/* Publish what was added and kick if the device asked for it: 1 kicked, 0 not, -errno. */
int blk_submit(struct blk_queue *q);

/* Reap one completion: 1, 0 when none, -EIO for a head not in flight. */
int blk_reap(struct blk_queue *q, struct blk_done *done);

/*
 * Reap one completion, waiting up to timeout_ms for the call eventfd (with
 * interrupts re-enabled and the ring re-checked, so none is missed):
 * 1, -ETIMEDOUT, -EIO.
 */
int blk_wait(struct blk_queue *q, struct blk_done *done, int timeout_ms);

/*
 * One request start to finish (add, submit, wait), on a queue with nothing
 * else in flight: returns its status byte, or -errno; *len, if not NULL,
 * gets the used length.
 */
int blk_do(struct blk_queue *q, uint32_t type, uint64_t sector, const struct vrd_buf *data,
	   unsigned int n_data, bool indirect, uint32_t *len, int timeout_ms);

#endif /* HVN_TEST_BLK_REQ_H */
