// SPDX-License-Identifier: MIT
/*
 * mem.c - the guest memory table: mapping the regions a VMM shares and
 * publishing snapshots of them (mem_internal.h explains the lifetimes).
 *
 * Writers (set_table, add_region, remove_region) run on the control plane
 * and are serialised by hvn_mem.lock; they build a new snapshot, publish
 * it, and drop the table's reference on the old one.  Data-plane threads
 * take references with mem_table_get(), under the same lock, only when
 * they notice that hvn_mem.gen changed, so the hot path never locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mem_internal.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

static void mem_map_put(struct mem_map *m)
{
	/*
	 * acq_rel: the thread that drops the last reference must see every
	 * access other threads made through the mapping before it unmaps.
	 */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	munmap(m->reserve, m->reserve_len);
	free(m);
}

static void mem_map_ref(struct mem_map *m)
{
	/* Only called by a writer that already holds a table containing m. */
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void mem_table_put(struct mem_table *t)
{
	unsigned int i;

	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < t->count; i++)
		mem_map_put(t->slots[i].map);
	free(t);
}

struct mem_table *mem_table_get(struct hvn_mem *mem)
{
	struct mem_table *t;

	/*
	 * The lock keeps the writer from dropping the table's reference on
	 * cur between our load and our increment.
	 */
	pthread_mutex_lock(&mem->lock);
	t = mem->cur;
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&mem->lock);
	return t;
}

static struct mem_table *table_alloc(unsigned int count)
{
	struct mem_table *t;
	size_t slots = sizeof(struct mem_slot) * count;

	t = calloc(1, sizeof(*t) + slots + sizeof(uint16_t) * count);
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->count = count;
	t->by_uaddr = (uint16_t *)((char *)t->slots + slots);
	return t;
}

/* Publish next (mem->lock held) and return the snapshot it replaces. */
static struct mem_table *table_publish(struct hvn_mem *mem, struct mem_table *next)
{
	struct mem_table *old = mem->cur;

	next->gen = old->gen + 1;
	mem->cur = next;
	/*
	 * Readers use gen only as a hint to come and take the lock, which
	 * orders everything else, so relaxed is enough; a reader that sees
	 * the old value catches up on its next pop or push.
	 */
	atomic_store_explicit(&mem->gen, next->gen, memory_order_relaxed);
	return old;
}

static int slot_cmp_gpa(const void *a, const void *b)
{
	const struct mem_slot *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/*
 * Sort t's slots and build its uaddr index; -EEXIST if two regions
 * overlap in guest-physical or in frontend-virtual addresses, since either
 * would make a translation ambiguous.
 */
static int table_index(struct mem_table *t)
{
	unsigned int i, j;

	qsort(t->slots, t->count, sizeof(t->slots[0]), slot_cmp_gpa);
	for (i = 1; i < t->count; i++)
		if (t->slots[i].gpa - t->slots[i - 1].gpa < t->slots[i - 1].size)
			return -EEXIST;
	/*
	 * Insertion sort: qsort has no context argument in C11, tables are
	 * small (HVN_MEM_MAX_REGIONS) and this runs on the control plane.
	 */
	for (i = 0; i < t->count; i++) {
		uint16_t k = (uint16_t)i;

		for (j = i; j > 0 && t->slots[t->by_uaddr[j - 1]].uaddr > t->slots[k].uaddr; j--)
			t->by_uaddr[j] = t->by_uaddr[j - 1];
		t->by_uaddr[j] = k;
	}
	for (i = 1; i < t->count; i++) {
		const struct mem_slot *a = &t->slots[t->by_uaddr[i - 1]];
		const struct mem_slot *b = &t->slots[t->by_uaddr[i]];

		if (b->uaddr - a->uaddr < a->size)
			return -EEXIST;
	}
	return 0;
}

static int region_validate(const struct hvn_mem_region *r)
{
	if (r->flags)
		return -EINVAL;
	if (r->fd < 0)
		return -EBADF;
	if (r->size == 0 || r->size - 1 > UINT64_MAX - r->gpa ||
	    r->size - 1 > UINT64_MAX - r->uaddr ||
	    r->mmap_offset > (uint64_t)INT64_MAX || r->size > (uint64_t)INT64_MAX - r->mmap_offset)
		return -EINVAL;
	return 0;
}

/*
 * Map r->fd with a PROT_NONE guard on each side: a bug that ran off the
 * end of a region faults instead of reading or corrupting whatever the
 * process happens to have mapped next to it.
 */
static int region_map(const struct hvn_mem_region *r, struct mem_slot *s)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), granule = page;
	uint64_t start, delta, map_len, resv_len;
	struct mem_map *m;
	struct statfs sfs;
	struct stat st;
	void *resv, *p;

	if (fstat(r->fd, &st) < 0)
		return -errno;
	/*
	 * Touching a shared mapping beyond the end of its file raises SIGBUS:
	 * refuse a region that the file does not cover.
	 */
	if (S_ISREG(st.st_mode) && r->mmap_offset + r->size > (uint64_t)st.st_size)
		return -EINVAL;
	/* hugetlbfs maps only whole huge pages, at huge-page-aligned addresses. */
	if (fstatfs(r->fd, &sfs) == 0 && (unsigned long)sfs.f_type == HUGETLBFS_MAGIC &&
	    st.st_blksize > 0 && (uint64_t)st.st_blksize > page &&
	    !((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)))
		granule = (uint64_t)st.st_blksize;

	/* The file offset of a mapping must be aligned; the region need not be. */
	delta = r->mmap_offset & (granule - 1);
	if (r->size > SIZE_MAX - delta - 4 * granule)
		return -ENOMEM;
	map_len = (delta + r->size + granule - 1) & ~(granule - 1);
	/* Guard before, the mapping, guard after, and slack to align the start. */
	resv_len = map_len + 3 * granule - page;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	resv = mmap(NULL, resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED) {
		int err = -errno;

		free(m);
		return err;
	}
	start = ((uint64_t)(uintptr_t)resv + 2 * granule - 1) & ~(granule - 1);
	p = mmap((void *)(uintptr_t)start, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 r->fd, (off_t)(r->mmap_offset - delta));
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap(resv, resv_len);
		free(m);
		return err;
	}
	atomic_init(&m->refs, 1);
	m->reserve = resv;
	m->reserve_len = resv_len;

	s->gpa = r->gpa;
	s->size = r->size;
	s->uaddr = r->uaddr;
	s->mmap_offset = r->mmap_offset;
	s->host = (uint8_t *)p + delta;
	s->map = m;
	return 0;
}

int hvn_mem_new(struct hvn_mem **memp)
{
	struct hvn_mem *mem;
	int ret;

	if (!memp)
		return -EINVAL;
	mem = aligned_alloc(HVN_CACHELINE, (sizeof(*mem) + HVN_CACHELINE - 1) & ~(size_t)(HVN_CACHELINE - 1));
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, sizeof(*mem));
	ret = pthread_mutex_init(&mem->lock, NULL);
	if (ret) {
		free(mem);
		return -ret;
	}
	mem->cur = table_alloc(0);
	if (!mem->cur) {
		pthread_mutex_destroy(&mem->lock);
		free(mem);
		return -ENOMEM;
	}
	atomic_init(&mem->gen, 0);
	atomic_init(&mem->hint, 0);
	*memp = mem;
	return 0;
}

void hvn_mem_free(struct hvn_mem *mem)
{
	if (!mem)
		return;
	/* Queues hold their own references; they must be freed first anyway. */
	mem_table_put(mem->cur);
	pthread_mutex_destroy(&mem->lock);
	free(mem);
}

int hvn_mem_set_table(struct hvn_mem *mem, const struct hvn_mem_region *regions,
		      unsigned int count)
{
	struct mem_table *t, *old;
	unsigned int i;
	int ret;

	if (!mem || (count && !regions))
		return -EINVAL;
	if (count > HVN_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < count; i++) {
		ret = region_validate(&regions[i]);
		if (ret)
			return ret;
	}
	t = table_alloc(count);
	if (!t)
		return -ENOMEM;
	/* Check overlaps before mapping anything: the slots carry the addresses. */
	for (i = 0; i < count; i++) {
		t->slots[i].gpa = regions[i].gpa;
		t->slots[i].size = regions[i].size;
		t->slots[i].uaddr = regions[i].uaddr;
	}
	ret = table_index(t);
	if (ret) {
		free(t);
		return ret;
	}
	/*
	 * All or nothing: the old table stays if any region fails to map.
	 * Slot i is overwritten with region i (the sort above only checked
	 * overlaps), so on failure slots [0, i) are exactly the mapped ones.
	 */
	for (i = 0; i < count; i++) {
		ret = region_map(&regions[i], &t->slots[i]);
		if (ret) {
			t->count = i;
			mem_table_put(t);
			return ret;
		}
	}
	/* Mapped in input order; sort again, now carrying the mappings along. */
	table_index(t);
	pthread_mutex_lock(&mem->lock);
	old = table_publish(mem, t);
	pthread_mutex_unlock(&mem->lock);
	mem_table_put(old);
	return 0;
}

/* A table of cur's slots plus s, indexed; -ENOSPC, -EEXIST, -ENOMEM. */
static int table_plus(const struct mem_table *cur, const struct mem_slot *s,
		      struct mem_table **tp)
{
	struct mem_table *t;
	int ret;

	if (cur->count == HVN_MEM_MAX_REGIONS)
		return -ENOSPC;
	t = table_alloc(cur->count + 1);
	if (!t)
		return -ENOMEM;
	memcpy(t->slots, cur->slots, sizeof(cur->slots[0]) * cur->count);
	t->slots[cur->count] = *s;
	ret = table_index(t);
	if (ret) {
		free(t);
		return ret;
	}
	*tp = t;
	return 0;
}

int hvn_mem_add_region(struct hvn_mem *mem, const struct hvn_mem_region *region)
{
	struct mem_table *t, *old;
	struct mem_slot s = { 0 };
	unsigned int i;
	int ret;

	if (!mem || !region)
		return -EINVAL;
	ret = region_validate(region);
	if (ret)
		return ret;
	s.gpa = region->gpa;
	s.size = region->size;
	s.uaddr = region->uaddr;

	/* Refuse what cannot fit before mapping anything. */
	pthread_mutex_lock(&mem->lock);
	ret = table_plus(mem->cur, &s, &t);
	pthread_mutex_unlock(&mem->lock);
	if (ret)
		return ret;
	free(t);

	/*
	 * Map without the lock: a data-plane thread that noticed an earlier
	 * change may be waiting for it in mem_table_get().
	 */
	ret = region_map(region, &s);
	if (ret)
		return ret;

	pthread_mutex_lock(&mem->lock);
	ret = table_plus(mem->cur, &s, &t);	/* again: another writer may have run */
	if (ret) {
		pthread_mutex_unlock(&mem->lock);
		mem_map_put(s.map);
		return ret;
	}
	for (i = 0; i < t->count; i++)
		if (t->slots[i].map != s.map)
			mem_map_ref(t->slots[i].map);
	old = table_publish(mem, t);
	pthread_mutex_unlock(&mem->lock);
	mem_table_put(old);
	return 0;
}

int hvn_mem_remove_region(struct hvn_mem *mem, const struct hvn_mem_region *region)
{
	struct mem_table *t, *old;
	unsigned int i, j, n;

	if (!mem || !region)
		return -EINVAL;

	pthread_mutex_lock(&mem->lock);
	old = mem->cur;
	n = old->count;
	/* vhost-user's REM_MEM_REG names a region by these three; fd and offset differ. */
	for (i = 0; i < n; i++) {
		const struct mem_slot *s = &old->slots[i];

		if (s->gpa == region->gpa && s->size == region->size && s->uaddr == region->uaddr)
			break;
	}
	if (i == n) {
		pthread_mutex_unlock(&mem->lock);
		return -ENOENT;
	}
	t = table_alloc(n - 1);
	if (!t) {
		pthread_mutex_unlock(&mem->lock);
		return -ENOMEM;
	}
	for (j = 0; j < n - 1; j++) {
		t->slots[j] = old->slots[j < i ? j : j + 1];
		mem_map_ref(t->slots[j].map);
	}
	table_index(t);
	old = table_publish(mem, t);
	pthread_mutex_unlock(&mem->lock);
	/* The removed mapping goes with the last snapshot that holds it. */
	mem_table_put(old);
	return 0;
}

int hvn_mem_gpa_to_iov(struct hvn_mem *mem, uint64_t gpa, uint64_t len,
		       struct iovec *iov, unsigned int max_iov)
{
	unsigned int hint;
	int ret;

	if (!mem || (!iov && max_iov))
		return -EINVAL;
	hint = atomic_load_explicit(&mem->hint, memory_order_relaxed);
	ret = mem_gpa_iov(mem->cur, gpa, len, iov, max_iov, &hint);
	atomic_store_explicit(&mem->hint, hint, memory_order_relaxed);
	return ret;
}

void *hvn_mem_gpa_to_ptr(struct hvn_mem *mem, uint64_t gpa, uint64_t len)
{
	unsigned int hint;
	void *p;

	if (!mem)
		return NULL;
	hint = atomic_load_explicit(&mem->hint, memory_order_relaxed);
	p = mem_gpa_ptr(mem->cur, gpa, len, &hint);
	atomic_store_explicit(&mem->hint, hint, memory_order_relaxed);
	return p;
}

void *hvn_mem_uva_to_ptr(struct hvn_mem *mem, uint64_t uaddr, uint64_t len)
{
	return mem ? mem_uva_ptr(mem->cur, uaddr, len) : NULL;
}
