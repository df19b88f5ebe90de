/* SPDX-License-Identifier: MIT */
/*
 * vq_internal.h - the virtqueue object and the split ring's layout in
 * guest memory.  Not installed.
 */
#ifndef HVN_VQ_INTERNAL_H
#define HVN_VQ_INTERNAL_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>

#include "hvnotify/vq.h"
#include "mem_internal.h"

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* Split ring layout (virtio 1.x, 2.7); every field is little-endian. */
#define VQ_DESC_F_NEXT		1
#define VQ_DESC_F_WRITE		2
#define VQ_DESC_F_INDIRECT	4
#define VQ_USED_F_NO_NOTIFY	1
#define VQ_AVAIL_F_NO_INTERRUPT	1

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* [size], then used_event */
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[];	/* [size], then avail_event */
};

/*
 * vhost-user's inflight region for a split ring (docs/interop/vhost-user.rst,
 * "Inflight I/O tracking"; the layout libvhost-user uses).  Host order, as
 * only backends on this host read it: the frontend only keeps it.
 */
struct vq_ifl_desc {
	uint8_t inflight;	/* 1: popped, its completion not yet in the used ring */
	uint8_t padding[5];
	uint16_t next;		/* the previous head of the same push batch */
	uint64_t counter;	/* pop order, for resubmitting in that order */
};

struct vq_ifl {
	uint64_t features;
	uint16_t version;	/* 0: never used; VQ_IFL_VERSION: in use */
	uint16_t desc_num;
	uint16_t last_batch_head;	/* the last head of the last push batch */
	uint16_t used_idx;	/* used->idx once that batch's flags were cleared */
	struct vq_ifl_desc desc[];
};

#define VQ_IFL_VERSION		1
#define VQ_IFL_ALIGN		64

#define VQ_DESC_SIZE(n)		(16 * (uint64_t)(n))
#define VQ_AVAIL_SIZE(n)	(6 + 2 * (uint64_t)(n))
#define VQ_USED_SIZE(n)		(6 + 8 * (uint64_t)(n))

/*
 * Guest memory is shared with another agent (the guest's CPUs), so the
 * compiler must load each field exactly once and never invent or merge
 * accesses: a value we checked must be the value we use.  Relaxed atomics
 * say exactly that; ordering comes from the explicit acquire/release and
 * fences at the places that need it (vq_split.c).
 */
#define GUEST_LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define GUEST_STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

struct hvn_vq {
	/* Hot: ring pointers into guest memory, translated through mt. */
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
	uint16_t *used_event;		/* &avail->ring[size] */
	uint16_t *avail_event;		/* just after used->ring[size] */
	struct mem_table *mt;		/* snapshot the rings and new requests use */
	struct mem_table **inflight;	/* per head: snapshot of its request, NULL if free */
	unsigned int hint;		/* last region hit, for mem_find_gpa */
	uint32_t size;
	uint16_t mask;
	uint16_t last_avail;		/* next available entry to pop */
	uint16_t shadow_avail;		/* avail->idx as last read */
	uint16_t used_idx;		/* next used entry to fill */
	uint16_t signalled_used;	/* used_idx at the last notify decision */
	uint16_t used_flags;		/* what we last wrote to used->flags */
	bool signalled_valid;
	bool event_idx, indirect;
	bool started, notify_on;
	int error;			/* 0 or the negative errno that broke the queue */
	uint32_t n_inflight;		/* popped, not pushed */
	uint32_t cur_inflight;		/* of those, popped with mt */

	/* Inflight tracking (hvn_vq_set_inflight); ifl NULL: none. */
	struct vq_ifl *ifl;
	uint64_t ifl_counter;		/* the counter of the last pop */
	uint16_t ifl_batch_head;	/* last_batch_head as the current push builds it */
	uint16_t *resubmit;		/* heads to hand out again, oldest pop first */
	uint32_t n_resubmit;		/* entries in resubmit */
	uint32_t next_resubmit;		/* the next one to hand out */

	/* Cold: configuration. */
	struct hvn_mem *mem;
	uint64_t features;
	struct hvn_vq_addr addr;
	bool addr_set;
	bool recovered;			/* this start resumed from a region in use */
	uint16_t ifl_desc_num;
};

/*
 * Break the queue with err (the first error stays): it pops nothing and
 * writes nothing more to the rings until it is started again.  vq_split.c
 * calls it for a malformed ring, dev_queue.c for a request the device
 * cannot answer (hvn_dev_req_abort).
 */
void vq_break(struct hvn_vq *vq, int err);

#endif /* HVN_VQ_INTERNAL_H */
