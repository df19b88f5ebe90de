/* SPDX-License-Identifier: MIT */
/*
 * vring_driver.h - the guest's half of a virtio 1.x split ring: what a
 * guest's virtio driver does.  It fills descriptors (direct or through an
 * indirect table), publishes them in the available ring, decides whether
 * to kick, re-enables interrupts with a re-check, and reaps used entries.
 * Used by the unit tests against libhvnotify's device side, and by the
 * benchmark and integration tests.
 *
 * It works on guest memory through the frontend's view (struct gmem), so
 * the device under test sees the ring only through shared memory, as it
 * would see a real guest's.  One thread drives one ring.
 */
#ifndef HVN_TEST_VRING_DRIVER_H
#define HVN_TEST_VRING_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <hvnotify/vq.h>

#include "guest_mem.h"

/* Split ring layout, little-endian (virtio 1.x, 2.7). */
#define VRD_DESC_F_NEXT		1
#define VRD_DESC_F_WRITE	2
#define VRD_DESC_F_INDIRECT	4
#define VRD_USED_F_NO_NOTIFY	1
#define VRD_AVAIL_F_NO_INTERRUPT 1

struct vrd_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vrd_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* [num], then used_event */
};

struct vrd_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vrd_used {
	uint16_t flags;
	uint16_t idx;
	struct vrd_used_elem ring[];	/* [num], then avail_event */
};

/* A guest buffer: guest-physical address and length. */
struct vrd_buf {
	uint64_t gpa;
	uint32_t len;
};

struct vring_driver {
	struct gmem *mem;
	uint32_t num;
	uint64_t features;		/* HVN_VQ_F_* the driver uses */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vrd_desc *desc;		/* frontend pointers into guest memory */
	struct vrd_avail *avail;
	struct vrd_used *used;
	uint16_t *used_event;		/* &avail->ring[num] */
	uint16_t *avail_event;		/* after used->ring[num] */

	uint64_t ind_gpa;		/* indirect tables: ind_max entries per head */
	uint32_t ind_max;

	uint16_t avail_idx;		/* next entry to fill (published or not) */
	uint16_t kicked_idx;		/* avail->idx at the last kick decision */
	uint16_t last_used;		/* next used entry to reap */
	uint16_t avail_flags;		/* shadow of avail->flags */
	uint32_t num_free;
	uint16_t free_head;

	/* Private per descriptor, never read back from guest memory. */
	uint16_t *next;			/* free list and chain links */
	uint16_t *chain_len;		/* per head: descriptors it took */
	void **token;			/* per head: the caller's cookie */
	bool *busy;			/* per head: in flight */
};

/* Bytes of guest memory the rings take at their default placement. */
uint64_t vrd_ring_bytes(uint32_t num);

/*
 * Lay the rings out from ring_gpa (desc, then avail, then used at the next
 * 64-byte boundary) and zero them.  num is a power of two <= 32768.
 */
int vrd_init(struct vring_driver *d, struct gmem *mem, uint32_t num, uint64_t ring_gpa,
	     uint64_t features);
/* The same, with each part where the caller says. */
int vrd_init_at(struct vring_driver *d, struct gmem *mem, uint32_t num, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa, uint64_t features);
void vrd_free(struct vring_driver *d);

/* Guest memory for indirect tables: max_entries descriptors per head. */
int vrd_set_indirect_area(struct vring_driver *d, uint64_t gpa, uint32_t max_entries);

/*
 * Start both indices at idx (before the device starts), as a ring that has
 * been running for a while would be: for wrap-around tests.  The device
 * must be given the same value with hvn_vq_set_base().
 */
void vrd_set_indices(struct vring_driver *d, uint16_t idx);

/* The ring's addresses for hvn_vq_set_addr(): frontend-virtual, or GPA. */
void vrd_addr(const struct vring_driver *d, bool gpa, struct hvn_vq_addr *addr);

/*
 * Put a chain in the next available slot without publishing it: n_out
 * device-readable buffers, then n_in device-writable ones.  With indirect,
 * the buffers go in this head's indirect table and the ring gets one
 * descriptor.  Returns the head, -ENOSPC when the ring is full, -EINVAL.
 */
int vrd_add(struct vring_driver *d, const struct vrd_buf *out, unsigned int n_out,
	    const struct vrd_buf *in, unsigned int n_in, void *token, bool indirect);

/* Publish every chain added since the last publish (one index store). */
void vrd_publish(struct vring_driver *d);

/* After publishing: must the driver kick?  EVENT_IDX-aware, updates state. */
bool vrd_kick_needed(struct vring_driver *d);

/*
 * Reap one used entry: 1 and its head, length and token; 0 when none;
 * -EIO if the device returned a head that is not in flight.
 */
int vrd_get_used(struct vring_driver *d, uint16_t *head, uint32_t *len, void **token);

/*
 * Ask for an interrupt on the next used entry; returns true if entries
 * arrived meanwhile (reap them instead of sleeping).
 */
bool vrd_enable_interrupts(struct vring_driver *d);
void vrd_disable_interrupts(struct vring_driver *d);

/*
 * Raw access for hostile tests: a descriptor of the ring's table, and
 * placing any head in the next available slot (no allocation).
 */
struct vrd_desc *vrd_desc(struct vring_driver *d, uint16_t i);
void vrd_put_raw(struct vring_driver *d, uint16_t head);
void vrd_write_desc(struct vrd_desc *desc, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next);

#endif /* HVN_TEST_VRING_DRIVER_H */
