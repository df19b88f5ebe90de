/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/vq.h - the device side of a virtio 1.x split virtqueue.
 *
 * The guest's driver puts descriptor chains in the ring and kicks; the
 * device pops each chain as an iovec list (the device-readable part first,
 * then the device-writable part), does the work, and pushes the chain's
 * head back with the number of bytes it wrote.  Everything in the ring is
 * written by the guest and is treated as hostile: a malformed chain or
 * index puts the queue in a broken state with a distinct error (listed
 * below), after which it pops nothing and writes nothing to the ring.
 *
 * Threads.  A queue is used by one thread at a time (a data-plane worker);
 * no function here locks.  The memory it translates through (struct
 * hvn_mem) may be changed from another thread at any time: the queue
 * notices at its next pop or push, or at hvn_vq_update_mem(), and keeps the
 * old mappings alive for the requests still in flight (see mem.h).
 *
 * Life cycle: hvn_vq_new, then (in any order) set_size, set_features,
 * set_addr, set_base; hvn_vq_start; pop / push / notification calls;
 * hvn_vq_stop (get_base for vhost-user's GET_VRING_BASE); start again or
 * hvn_vq_free.  A queue must be freed before the hvn_mem it uses.
 *
 * Inflight tracking.  With hvn_vq_set_inflight() the queue also records,
 * in a region that outlives the process (vhost-user's INFLIGHT_SHMFD: the
 * frontend keeps it and hands it to the next backend), which chains it
 * popped and has not yet completed in the used ring, and in which order.
 * A queue started on a region that was in use (the previous process died,
 * or the queue was stopped and started again) hands those chains out
 * again, first and oldest first, from pop, and resumes the available ring
 * after them.  A chain handed out again may have been executed before:
 * only devices whose requests can safely run twice should use it.
 *
 * The notification loop that loses no kick:
 *
 *	for (;;) {
 *		hvn_vq_disable_notify(vq);
 *		while ((n = hvn_vq_pop_batch(vq, reqs, N)) > 0)
 *			submit(reqs, n);
 *		if (n < 0 || hvn_vq_enable_notify(vq) <= 0)
 *			break;	// wait for the next kick
 *	}
 */
#ifndef HVNOTIFY_VQ_H
#define HVNOTIFY_VQ_H

#include <stdint.h>
#include <sys/uio.h>

#include <hvnotify/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Queue sizes are powers of two up to this (virtio 1.x split ring). */
#define HVN_VQ_MAX_SIZE 32768

/*
 * Feature bits the queue honours, as in the virtio specification; pass the
 * negotiated feature word to hvn_vq_set_features().  Other bits are kept
 * and reported but change nothing here.
 */
#define HVN_VQ_F_INDIRECT_DESC	(UINT64_C(1) << 28)	/* VIRTIO_RING_F_INDIRECT_DESC */
#define HVN_VQ_F_EVENT_IDX	(UINT64_C(1) << 29)	/* VIRTIO_RING_F_EVENT_IDX */
#define HVN_VQ_F_VERSION_1	(UINT64_C(1) << 32)	/* VIRTIO_F_VERSION_1 */

/* hvn_vq_addr.flags */
#define HVN_VQ_ADDR_GPA	(1u << 0)	/* desc/avail/used are guest-physical, not frontend-virtual */
#define HVN_VQ_ADDR_LOG	(1u << 1)	/* log is valid (vhost-user's VHOST_VRING_F_LOG) */

/*
 * Where the three parts of the ring are.  vhost-user's SET_VRING_ADDR gives
 * frontend virtual addresses (the default); an in-process transport, where
 * the guest programs the addresses itself, sets HVN_VQ_ADDR_GPA.  log is
 * the guest-physical address of the used ring for dirty logging; it is
 * kept for the daemon and not used by the queue.
 */
struct hvn_vq_addr {
	uint64_t desc;		/* descriptor table, 16-byte aligned */
	uint64_t avail;		/* available ring, 2-byte aligned */
	uint64_t used;		/* used ring, 4-byte aligned */
	uint64_t log;
	uint32_t flags;		/* HVN_VQ_ADDR_* */
	uint32_t reserved;	/* must be 0 */
};

/*
 * A popped request.  The caller owns it and its iovec array, and sets iov
 * and max_iov before popping (once: pop does not change them).  Pop fills
 * the rest: iov[0 .. n_out) is the device-readable part (the driver's
 * "out" buffers) and iov[n_out .. n_out + n_in) the device-writable part.
 * A descriptor that spans two memory regions gives two entries, so size
 * the array for more than the longest chain the device accepts.
 */
struct hvn_vq_req {
	struct iovec *iov;	/* caller's array */
	uint32_t max_iov;	/* its capacity, set by the caller */
	uint16_t head;		/* the chain's head: give it back to hvn_vq_push() */
	uint16_t reserved;
	uint32_t n_out;		/* device-readable entries */
	uint32_t n_in;		/* device-writable entries */
	uint64_t out_len;	/* bytes in the device-readable part */
	uint64_t in_len;	/* bytes in the device-writable part */
};

/* One completion for hvn_vq_push_batch(). */
struct hvn_vq_done {
	uint16_t head;		/* hvn_vq_req.head of the request */
	uint16_t reserved;
	uint32_t len;		/* bytes the device wrote into the writable part */
};

/* hvn_vq_state.flags */
#define HVN_VQ_STATE_STARTED	(1u << 0)
#define HVN_VQ_STATE_NOTIFY	(1u << 1)	/* the driver is asked to kick */
#define HVN_VQ_STATE_INFLIGHT	(1u << 2)	/* an inflight region is attached */
#define HVN_VQ_STATE_RECOVERED	(1u << 3)	/* started from a region in use */

/* A snapshot of the queue, for the daemon's GET_VRING_BASE, stats and logs. */
struct hvn_vq_state {
	uint64_t features;
	uint32_t size;
	uint16_t last_avail_idx;	/* next available entry to pop */
	uint16_t used_idx;		/* next used entry to fill; published */
	uint32_t inflight;		/* popped and not yet pushed */
	int32_t error;			/* 0, or the error that broke the queue */
	uint32_t flags;			/* HVN_VQ_STATE_* */
	uint32_t resubmit;		/* chains still to hand out again */
	uint32_t reserved[2];
};

/*
 * Errors that break a queue (hvn_vq_error(), and the return of pop).  Each
 * names one violation by the guest's driver; the queue stays broken until
 * it is started again.
 *
 *   -ERANGE      a head or next index is not below the size of its table
 *   -ELOOP       a chain visits more descriptors than its table holds: a loop
 *   -E2BIG       a chain has more descriptors than the queue size
 *   -EMLINK      an indirect descriptor inside an indirect table
 *   -EINVAL      an indirect descriptor with VRING_DESC_F_NEXT set
 *   -EOPNOTSUPP  an indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC
 *   -EMSGSIZE    an indirect table whose length is 0 or not a multiple of 16
 *   -EFAULT      a buffer or indirect table outside guest memory (or the
 *                rings themselves, after a memory change)
 *   -EOVERFLOW   addr + len wraps around, or a chain totals more than 4 GiB
 *   -EBADMSG     a device-readable descriptor after a device-writable one
 *   -EPROTO      the available index moved by more than the queue size
 *   -EALREADY    a head that is already in flight was made available again
 */

struct hvn_vq;

int hvn_vq_new(struct hvn_mem *mem, struct hvn_vq **vqp);
void hvn_vq_free(struct hvn_vq *vq);

int hvn_vq_set_size(struct hvn_vq *vq, unsigned int size);
int hvn_vq_set_features(struct hvn_vq *vq, uint64_t features);
int hvn_vq_set_addr(struct hvn_vq *vq, const struct hvn_vq_addr *addr);
int hvn_vq_set_base(struct hvn_vq *vq, uint16_t last_avail_idx);
uint16_t hvn_vq_get_base(const struct hvn_vq *vq);

uint64_t hvn_vq_inflight_size(unsigned int desc_num);
int hvn_vq_set_inflight(struct hvn_vq *vq, void *region, unsigned int desc_num);

int hvn_vq_start(struct hvn_vq *vq);
int hvn_vq_stop(struct hvn_vq *vq);
int hvn_vq_update_mem(struct hvn_vq *vq);

int hvn_vq_pop(struct hvn_vq *vq, struct hvn_vq_req *req);
int hvn_vq_pop_batch(struct hvn_vq *vq, struct hvn_vq_req *reqs, unsigned int count);
int hvn_vq_push(struct hvn_vq *vq, uint16_t head, uint32_t len);
int hvn_vq_push_batch(struct hvn_vq *vq, const struct hvn_vq_done *done,
		      unsigned int count);

int hvn_vq_should_notify(struct hvn_vq *vq);
int hvn_vq_enable_notify(struct hvn_vq *vq);
int hvn_vq_disable_notify(struct hvn_vq *vq);

int hvn_vq_error(const struct hvn_vq *vq);
int hvn_vq_get_state(const struct hvn_vq *vq, struct hvn_vq_state *state);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_VQ_H */
