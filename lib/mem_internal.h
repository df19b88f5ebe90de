/* SPDX-License-Identifier: MIT */
/*
 * mem_internal.h - guest memory snapshots, shared by mem.c and the
 * virtqueues.  Not installed.
 *
 * A struct mem_table is an immutable, sorted snapshot of the regions.  It
 * is reference counted: hvn_mem holds one on the current snapshot, and a
 * virtqueue holds one on the snapshot it translates with, plus one per
 * in-flight request that was popped with an older snapshot (vq_split.c).
 * Each snapshot holds a reference on every mapping (struct mem_map) it
 * contains; a mapping shared by consecutive snapshots is mapped once, and
 * unmapped when the last snapshot containing it is released.
 */
#ifndef HVN_MEM_INTERNAL_H
#define HVN_MEM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hvnotify/mem.h"

#define HVN_CACHELINE 64

/* One mmap of a region's fd, with a PROT_NONE guard on either side. */
struct mem_map {
	atomic_uint refs;
	void *reserve;		/* the whole reservation, guards included */
	size_t reserve_len;
};

struct mem_slot {
	uint64_t gpa;		/* first guest-physical byte */
	uint64_t size;		/* > 0; gpa + size - 1 does not wrap */
	uint64_t uaddr;		/* the frontend's address of gpa */
	uint64_t mmap_offset;	/* kept to match and report, not to translate */
	uint8_t *host;		/* our address of gpa */
	struct mem_map *map;
};

struct mem_table {
	atomic_uint refs;
	uint64_t gen;			/* equal to hvn_mem.gen while current */
	unsigned int count;
	uint16_t *by_uaddr;		/* slot indices sorted by uaddr */
	struct mem_slot slots[];	/* sorted by gpa, disjoint */
};

struct hvn_mem {
	/*
	 * Bumped under lock each time a table is published; data-plane threads
	 * read it on every pop and push to notice a change, so it has a line
	 * of its own that only writers dirty.
	 */
	_Alignas(HVN_CACHELINE) _Atomic uint64_t gen;

	_Alignas(HVN_CACHELINE) pthread_mutex_t lock;	/* serialises writers and table_get */
	struct mem_table *cur;				/* written only with lock held */
	atomic_uint hint;				/* last slot hit by the public lookups */
};

/* mem.c */
struct mem_table *mem_table_get(struct hvn_mem *mem);
void mem_table_put(struct mem_table *t);

/*
 * The slot holding gpa, or NULL.  *hint is the caller's last hit: most
 * lookups land in the same region as the previous one, so it is tried
 * before the binary search.
 */
static inline const struct mem_slot *mem_find_gpa(const struct mem_table *t, uint64_t gpa,
						  unsigned int *hint)
{
	unsigned int lo = 0, hi = t->count, h = *hint;
	const struct mem_slot *s;

	/* gpa - s->gpa wraps to a huge value when gpa < s->gpa: one compare. */
	if (h < t->count && gpa - t->slots[h].gpa < t->slots[h].size)
		return &t->slots[h];
	/* Find the last slot that starts at or below gpa. */
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t->slots[mid].gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	s = &t->slots[lo - 1];
	if (gpa - s->gpa >= s->size)
		return NULL;
	*hint = lo - 1;
	return s;
}

static inline const struct mem_slot *mem_find_uva(const struct mem_table *t, uint64_t uaddr)
{
	unsigned int lo = 0, hi = t->count;
	const struct mem_slot *s;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t->slots[t->by_uaddr[mid]].uaddr <= uaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	s = &t->slots[t->by_uaddr[lo - 1]];
	return uaddr - s->uaddr < s->size ? s : NULL;
}

/* Host address of [gpa, gpa + len) if it lies in one region, else NULL. */
static inline void *mem_gpa_ptr(const struct mem_table *t, uint64_t gpa, uint64_t len,
				unsigned int *hint)
{
	const struct mem_slot *s = mem_find_gpa(t, gpa, hint);

	if (!s || len > s->size - (gpa - s->gpa))
		return NULL;
	return s->host + (gpa - s->gpa);
}

static inline void *mem_uva_ptr(const struct mem_table *t, uint64_t uaddr, uint64_t len)
{
	const struct mem_slot *s = mem_find_uva(t, uaddr);

	if (!s || len > s->size - (uaddr - s->uaddr))
		return NULL;
	return s->host + (uaddr - s->uaddr);
}

/*
 * Append [gpa, gpa + len) to iov as one entry per region it touches.
 * Returns the number of entries (0 for len 0), -EOVERFLOW if the range
 * wraps around the address space, -EFAULT if any byte is outside guest
 * memory, -ENOBUFS if max_iov entries are not enough.  Regions are disjoint
 * and sorted, so a range that continues past a region's end must continue
 * in the region that starts exactly there.
 */
static inline int mem_gpa_iov(const struct mem_table *t, uint64_t gpa, uint64_t len,
			      struct iovec *iov, unsigned int max_iov, unsigned int *hint)
{
	unsigned int n = 0;

	if (len && len - 1 > UINT64_MAX - gpa)
		return -EOVERFLOW;
	while (len) {
		const struct mem_slot *s = mem_find_gpa(t, gpa, hint);
		uint64_t off, chunk;

		if (!s)
			return -EFAULT;
		if (n == max_iov)
			return -ENOBUFS;
		off = gpa - s->gpa;
		chunk = s->size - off < len ? s->size - off : len;
		iov[n].iov_base = s->host + off;
		iov[n].iov_len = chunk;
		n++;
		gpa += chunk;
		len -= chunk;
	}
	return (int)n;
}

#endif /* HVN_MEM_INTERNAL_H */
