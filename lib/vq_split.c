// SPDX-License-Identifier: MIT
/*
 * vq_split.c - the device side of the virtio 1.x split virtqueue.
 *
 * Everything in the rings is written by the guest, concurrently with us,
 * and may be hostile.  Three rules follow:
 *  - each guest field is loaded once (GUEST_LOAD) into a local, and only
 *    the local is checked and used;
 *  - every index is bounded by the table it indexes before use, every
 *    address and length is translated through the memory snapshot, and
 *    every walk is bounded by a count, so no input makes us touch memory
 *    outside guest RAM or loop forever;
 *  - a violation breaks the queue (vq_break) with a distinct error; a
 *    broken queue pops nothing and writes nothing more to the rings.
 *
 * Memory lifetimes: the queue holds one reference on its snapshot vq->mt,
 * which covers the rings and every request popped with it (counted in
 * cur_inflight).  When the memory table changes, the queue moves to the
 * new snapshot and converts its reference on the old one into one per
 * request still in flight there; pushing such a request drops it.  So the
 * memory a request's iovecs point into stays mapped until it is pushed.
 *
 * Inflight tracking (hvn_vq_set_inflight) keeps a record of the chains in
 * flight in a region that outlives us; its ordering rules are with its
 * code, below.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vq_internal.h"

void vq_break(struct hvn_vq *vq, int err)
{
	if (!vq->error)
		vq->error = err;
}

/* [gpa, gpa + len) lies entirely in guest memory (possibly several regions). */
static bool mem_gpa_covered(const struct mem_table *t, uint64_t gpa, uint64_t len,
			    unsigned int *hint)
{
	while (len) {
		const struct mem_slot *s = mem_find_gpa(t, gpa, hint);
		uint64_t room;

		if (!s)
			return false;
		room = s->size - (gpa - s->gpa);
		if (room >= len)
			return true;
		gpa += room;
		len -= room;
	}
	return true;
}

/*
 * Copy guest bytes that may span regions, one load per byte: the slow path
 * for indirect tables that are split across regions or misaligned.  The
 * caller checked that the range is covered.
 */
static void guest_copy(const struct mem_table *t, uint64_t gpa, void *dst, uint64_t len,
		       unsigned int *hint)
{
	uint8_t *d = dst;

	while (len) {
		const struct mem_slot *s = mem_find_gpa(t, gpa, hint);
		uint64_t off, n, i;

		if (!s) {	/* cannot happen after mem_gpa_covered; stay safe */
			memset(d, 0, len);
			return;
		}
		off = gpa - s->gpa;
		n = s->size - off < len ? s->size - off : len;
		for (i = 0; i < n; i++)
			d[i] = GUEST_LOAD(&s->host[off + i]);
		d += n;
		gpa += n;
		len -= n;
	}
}

/* The table a chain is currently walking: the ring's, or an indirect one. */
struct desc_table {
	const struct vq_desc *tab;	/* host address, or NULL: use guest_copy */
	uint64_t gpa;			/* indirect tables: their guest address */
	uint32_t n;			/* entries */
};

static inline void desc_fetch(struct hvn_vq *vq, const struct desc_table *dt, uint32_t i,
			      struct vq_desc *d)
{
	if (likely(dt->tab != NULL)) {
		const struct vq_desc *g = &dt->tab[i];

		d->addr = le64toh(GUEST_LOAD(&g->addr));
		d->len = le32toh(GUEST_LOAD(&g->len));
		d->flags = le16toh(GUEST_LOAD(&g->flags));
		d->next = le16toh(GUEST_LOAD(&g->next));
	} else {
		struct vq_desc raw;

		guest_copy(vq->mt, dt->gpa + VQ_DESC_SIZE(i), &raw, sizeof(raw), &vq->hint);
		d->addr = le64toh(raw.addr);
		d->len = le32toh(raw.len);
		d->flags = le16toh(raw.flags);
		d->next = le16toh(raw.next);
	}
}

/*
 * Walk the chain at head into req.  Returns 0, a breaking error (see
 * vq.h), or -ENOBUFS when req->iov is too small (which does not break the
 * queue: the request stays available).
 *
 * Loop detection needs no marks: a chain that visits more descriptors than
 * its table has entries must have visited one twice.  Only data
 * descriptors count toward the chain's length; the indirect descriptor
 * itself is a pointer to more of the same chain.
 */
static int vq_walk(struct hvn_vq *vq, uint16_t head, struct hvn_vq_req *req)
{
	struct desc_table dt = { .tab = vq->desc, .n = vq->size };
	uint32_t idx = head, visited = 0, chain = 0, niov = 0, n_out = 0;
	uint64_t out_len = 0, in_len = 0;
	bool in_indirect = false, writable = false;

	for (;;) {
		struct vq_desc d;

		if (unlikely(idx >= dt.n))
			return -ERANGE;
		if (unlikely(++visited > dt.n))
			return -ELOOP;
		desc_fetch(vq, &dt, idx, &d);

		if (unlikely(d.flags & VQ_DESC_F_INDIRECT)) {
			void *p;

			if (in_indirect)
				return -EMLINK;
			if (!vq->indirect)
				return -EOPNOTSUPP;
			if (d.flags & VQ_DESC_F_NEXT)
				return -EINVAL;
			if (d.len == 0 || d.len % sizeof(struct vq_desc))
				return -EMSGSIZE;
			if (d.len - 1 > UINT64_MAX - d.addr)
				return -EOVERFLOW;
			p = mem_gpa_ptr(vq->mt, d.addr, d.len, &vq->hint);
			if (!p && !mem_gpa_covered(vq->mt, d.addr, d.len, &vq->hint))
				return -EFAULT;
			/* Aligned loads need an aligned table; else copy entries. */
			dt.tab = p && !((uintptr_t)p & 7) ? p : NULL;
			dt.gpa = d.addr;
			dt.n = d.len / sizeof(struct vq_desc);
			in_indirect = true;
			visited = 0;
			idx = 0;
			continue;
		}

		if (unlikely(++chain > vq->size))
			return -E2BIG;
		if (d.flags & VQ_DESC_F_WRITE)
			writable = true;
		else if (unlikely(writable))
			return -EBADMSG;
		if (d.len) {
			int n;

			if (unlikely(d.len - 1 > UINT64_MAX - d.addr))
				return -EOVERFLOW;
			if (writable)
				in_len += d.len;
			else
				out_len += d.len;
			/* virtio: a chain is at most 2^32 bytes in total. */
			if (unlikely(out_len + in_len > (UINT64_C(1) << 32)))
				return -EOVERFLOW;
			n = mem_gpa_iov(vq->mt, d.addr, d.len, req->iov + niov,
					req->max_iov - niov, &vq->hint);
			if (unlikely(n < 0))
				return n;
			niov += (uint32_t)n;
			if (!writable)
				n_out = niov;
		}
		if (!(d.flags & VQ_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	req->head = head;
	req->n_out = n_out;
	req->n_in = niov - n_out;
	req->out_len = out_len;
	req->in_len = in_len;
	return 0;
}

/* Point the queue at its rings in snapshot t. */
static int vq_map_rings(struct hvn_vq *vq, const struct mem_table *t)
{
	const struct hvn_vq_addr *a = &vq->addr;
	unsigned int hint = 0;
	void *d, *av, *u;

	if (a->flags & HVN_VQ_ADDR_GPA) {
		d = mem_gpa_ptr(t, a->desc, VQ_DESC_SIZE(vq->size), &hint);
		av = mem_gpa_ptr(t, a->avail, VQ_AVAIL_SIZE(vq->size), &hint);
		u = mem_gpa_ptr(t, a->used, VQ_USED_SIZE(vq->size), &hint);
	} else {
		d = mem_uva_ptr(t, a->desc, VQ_DESC_SIZE(vq->size));
		av = mem_uva_ptr(t, a->avail, VQ_AVAIL_SIZE(vq->size));
		u = mem_uva_ptr(t, a->used, VQ_USED_SIZE(vq->size));
	}
	if (!d || !av || !u)
		return -EFAULT;
	/*
	 * The guest addresses are aligned (set_addr checked), but a region
	 * whose mmap offset is not congruent with its guest address would
	 * make our addresses unaligned, and our atomic loads need them aligned.
	 */
	if (((uintptr_t)d & 15) || ((uintptr_t)av & 1) || ((uintptr_t)u & 3))
		return -EINVAL;
	vq->desc = d;
	vq->avail = av;
	vq->used = u;
	vq->used_event = &vq->avail->ring[vq->size];
	vq->avail_event = (uint16_t *)&vq->used->ring[vq->size];
	return 0;
}

static void vq_unmap_rings(struct hvn_vq *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->used_event = NULL;
	vq->avail_event = NULL;
}

/* Move to the current memory snapshot (see the top of this file). */
static void vq_switch_mem(struct hvn_vq *vq)
{
	struct mem_table *nt = mem_table_get(vq->mem), *old = vq->mt;

	if (nt == old) {
		mem_table_put(nt);
		return;
	}
	if (old) {
		if (vq->cur_inflight == 0)
			mem_table_put(old);
		else if (vq->cur_inflight > 1)
			atomic_fetch_add_explicit(&old->refs, vq->cur_inflight - 1,
						  memory_order_relaxed);
	}
	vq->mt = nt;
	vq->cur_inflight = 0;
	vq->hint = 0;
	if (vq->started && !vq->error && vq_map_rings(vq, nt) < 0) {
		/* The frontend took the rings away while the queue runs. */
		vq_unmap_rings(vq);
		vq_break(vq, -EFAULT);
	}
}

/* Cheap enough for every pop and push: one load of a read-mostly line. */
static inline void vq_check_mem(struct hvn_vq *vq)
{
	if (unlikely(atomic_load_explicit(&vq->mem->gen, memory_order_relaxed) != vq->mt->gen))
		vq_switch_mem(vq);
}

/* ---- inflight tracking ---- */

/*
 * Who reads the region, and so what ordering it needs.  The frontend only
 * keeps the region; its one reader is the next backend, after this process
 * died (SIGKILL, a crash) at an arbitrary instruction.  A process dies at
 * an instruction boundary with every store before it done (the CPU drains
 * its store buffer whatever becomes of the process, and the next process
 * starts after the kernel has torn this one down), so the next backend
 * finds exactly our stores up to that instruction: program order is all
 * that matters, and what could break it is the compiler.  IFL_STORE (a
 * relaxed atomic: emitted once, as written) and IFL_BARRIER (a compiler
 * barrier, no instruction) fix that order at no cost to the CPU.  Were the
 * region ever read while we run, these would need release ordering.
 *
 * What a death leaves, and what the next start (ifl_restore) makes of it:
 *  - pop: counter, then inflight = 1, chain after chain in available-ring
 *    order.  Dead before a flag: that chain is not counted and the ring
 *    resumes at it, so it is popped again as new.  As flags are set in
 *    ring order, used_idx + (flags set) is exactly how far the available
 *    ring was popped, whatever SET_VRING_BASE says.
 *  - push: each completed head's next = the previous one (the batch list,
 *    as the used elements are written), last_batch_head = the last; then
 *    used->idx, published (release: the batch list is written before it);
 *    then the batch's flags cleared; then used_idx = used->idx.  Dead
 *    before used->idx: nothing of the batch completed, the flags say so.
 *    Dead after it: used->idx - used_idx heads of the batch list completed
 *    although their flags may still be set; the start clears them.
 * So a chain is resubmitted if and only if its completion never reached
 * the used ring: none is lost, none completed twice.
 */
#define IFL_STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define IFL_LOAD(p)	__atomic_load_n((p), __ATOMIC_RELAXED)
#define IFL_BARRIER()	__atomic_signal_fence(__ATOMIC_SEQ_CST)

_Static_assert(sizeof(struct vq_ifl_desc) == 16, "DescStateSplit");
_Static_assert(sizeof(struct vq_ifl) == 16, "QueueRegionSplit header");

uint64_t hvn_vq_inflight_size(unsigned int desc_num)
{
	if (desc_num == 0 || desc_num > HVN_VQ_MAX_SIZE)
		return 0;
	/*
	 * libvhost-user's vu_inflight_queue_size(), so that a region has one
	 * layout for every backend.  It counts 2 bytes of header where there
	 * are 16, but rounding 16 * n + 2 up to 64 always leaves room for 16.
	 */
	return (sizeof(struct vq_ifl_desc) * (uint64_t)desc_num + sizeof(uint16_t) +
		VQ_IFL_ALIGN - 1) & ~(uint64_t)(VQ_IFL_ALIGN - 1);
}

int hvn_vq_set_inflight(struct hvn_vq *vq, void *region, unsigned int desc_num)
{
	if (!vq)
		return -EINVAL;
	if (vq->started)
		return -EBUSY;
	if (!region) {
		if (desc_num)
			return -EINVAL;
		vq->ifl = NULL;
		vq->ifl_desc_num = 0;
		return 0;
	}
	/* The counters are 64-bit: the region must be aligned for them. */
	if (!hvn_vq_inflight_size(desc_num) || ((uintptr_t)region & 7))
		return -EINVAL;
	vq->ifl = region;
	vq->ifl_desc_num = (uint16_t)desc_num;
	return 0;
}

static void resubmit_drop(struct hvn_vq *vq)
{
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->n_resubmit = 0;
	vq->next_resubmit = 0;
}

struct ifl_entry {
	uint64_t counter;
	uint16_t head;
};

static int ifl_entry_cmp(const void *a, const void *b)
{
	const struct ifl_entry *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->head - (int)y->head;
}

/*
 * Make the region agree with the used ring, and resume from it: the chains
 * in flight, oldest first, and the available index after them.  Called by
 * start with the rings mapped and used_idx read.  -EBADMSG: the region
 * says something no backend could have written there.
 */
static int ifl_restore(struct hvn_vq *vq)
{
	struct vq_ifl *r = vq->ifl;
	uint16_t n_desc = vq->ifl_desc_num, done, h;
	struct ifl_entry *list;
	uint32_t i, count = 0;

	if (vq->size > n_desc)
		return -EINVAL;
	if (IFL_LOAD(&r->version) == 0) {
		/*
		 * Never used (as GET_INFLIGHT_FD made it): nothing in flight.
		 * The version goes last, so that a death before it leaves a
		 * region that is still "never used".
		 */
		memset(r->desc, 0, sizeof(r->desc[0]) * n_desc);
		IFL_STORE(&r->features, vq->features);
		IFL_STORE(&r->desc_num, n_desc);
		IFL_STORE(&r->last_batch_head, 0);
		IFL_STORE(&r->used_idx, vq->used_idx);
		IFL_BARRIER();
		IFL_STORE(&r->version, VQ_IFL_VERSION);
		vq->ifl_counter = 0;
		vq->ifl_batch_head = 0;
		return 0;
	}
	if (IFL_LOAD(&r->version) != VQ_IFL_VERSION || IFL_LOAD(&r->desc_num) != n_desc)
		return -EBADMSG;

	/* A batch was published and its flags maybe not all cleared: the
	 * last `done` heads of the batch list are complete. */
	done = (uint16_t)(vq->used_idx - IFL_LOAD(&r->used_idx));
	if (done) {
		if (done > vq->size)
			return -EBADMSG;
		h = IFL_LOAD(&r->last_batch_head);
		for (i = 0; i < done; i++) {
			if (h >= vq->size)
				return -EBADMSG;
			IFL_STORE(&r->desc[h].inflight, 0);
			h = IFL_LOAD(&r->desc[h].next);
		}
		/* The flags before used_idx: dying here redoes the same. */
		IFL_BARRIER();
		IFL_STORE(&r->used_idx, vq->used_idx);
	}

	for (i = 0; i < n_desc; i++) {
		uint8_t f = IFL_LOAD(&r->desc[i].inflight);

		if (f > 1 || (f && i >= vq->size))
			return -EBADMSG;
		count += f;
	}
	vq->ifl_counter = 0;
	if (count) {
		list = malloc(sizeof(*list) * count);
		vq->resubmit = malloc(sizeof(*vq->resubmit) * count);
		if (!list || !vq->resubmit) {
			free(list);
			resubmit_drop(vq);
			return -ENOMEM;
		}
		for (i = 0, h = 0; i < n_desc; i++)
			if (IFL_LOAD(&r->desc[i].inflight))
				list[h++] = (struct ifl_entry){ IFL_LOAD(&r->desc[i].counter),
								(uint16_t)i };
		qsort(list, count, sizeof(*list), ifl_entry_cmp);
		for (i = 0; i < count; i++)
			vq->resubmit[i] = list[i].head;
		vq->ifl_counter = list[count - 1].counter;
		vq->n_resubmit = count;
		free(list);
	}
	/* Every chain up to here was popped: completed, or in flight. */
	vq->last_avail = (uint16_t)(vq->used_idx + count);
	vq->shadow_avail = vq->last_avail;
	vq->ifl_batch_head = IFL_LOAD(&r->last_batch_head);
	vq->recovered = true;
	return 0;
}

/* A chain was popped from the available ring: record it (see above). */
static inline void ifl_popped(struct hvn_vq *vq, uint16_t head)
{
	struct vq_ifl_desc *d = &vq->ifl->desc[head];

	IFL_STORE(&d->counter, ++vq->ifl_counter);
	/* The counter before the flag: a flag with an older counter would
	 * resubmit this chain out of order. */
	IFL_BARRIER();
	IFL_STORE(&d->inflight, 1);
	/* This flag before any later pop's (ring order) and before the
	 * push that clears it. */
	IFL_BARRIER();
}

/* The batch done[0 .. n) was just published: no longer in flight. */
static void ifl_retire(struct hvn_vq *vq, const struct hvn_vq_done *done, unsigned int n)
{
	unsigned int i;

	/* After the used->idx store: cleared before it, a death in between
	 * would lose the chain. */
	IFL_BARRIER();
	for (i = 0; i < n; i++)
		IFL_STORE(&vq->ifl->desc[done[i].head].inflight, 0);
	/* used_idx last: until it moves, the next start walks the batch. */
	IFL_BARRIER();
	IFL_STORE(&vq->ifl->used_idx, vq->used_idx);
}

int hvn_vq_new(struct hvn_mem *mem, struct hvn_vq **vqp)
{
	struct hvn_vq *vq;

	if (!mem || !vqp)
		return -EINVAL;
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		return -ENOMEM;
	vq->mem = mem;
	vq->mt = mem_table_get(mem);
	*vqp = vq;
	return 0;
}

void hvn_vq_free(struct hvn_vq *vq)
{
	uint32_t i;

	if (!vq)
		return;
	/* Requests still in flight on older snapshots hold a reference each. */
	for (i = 0; vq->inflight && i < vq->size; i++)
		if (vq->inflight[i] && vq->inflight[i] != vq->mt)
			mem_table_put(vq->inflight[i]);
	mem_table_put(vq->mt);
	free(vq->inflight);
	free(vq->resubmit);
	free(vq);
}

int hvn_vq_set_size(struct hvn_vq *vq, unsigned int size)
{
	struct mem_table **inflight;

	if (!vq || size == 0 || size > HVN_VQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if (vq->started || vq->n_inflight)
		return -EBUSY;
	if (size == vq->size)
		return 0;
	inflight = calloc(size, sizeof(*inflight));
	if (!inflight)
		return -ENOMEM;
	free(vq->inflight);
	vq->inflight = inflight;
	vq->size = size;
	vq->mask = (uint16_t)(size - 1);
	return 0;
}

int hvn_vq_set_features(struct hvn_vq *vq, uint64_t features)
{
	if (!vq)
		return -EINVAL;
	if (vq->started)
		return -EBUSY;
	vq->features = features;
	return 0;
}

int hvn_vq_set_addr(struct hvn_vq *vq, const struct hvn_vq_addr *addr)
{
	struct hvn_vq_addr saved;
	int ret;

	if (!vq || !addr || (addr->flags & ~(HVN_VQ_ADDR_GPA | HVN_VQ_ADDR_LOG)) ||
	    addr->reserved)
		return -EINVAL;
	/* virtio 1.x, 2.7: the alignment each part of a split ring needs. */
	if ((addr->desc & 15) || (addr->avail & 1) || (addr->used & 3))
		return -EINVAL;
	saved = vq->addr;
	vq->addr = *addr;
	/*
	 * vhost-user sends SET_VRING_ADDR to a running ring to switch dirty
	 * logging; the rings move only if the new addresses translate.
	 */
	if (vq->started && !vq->error) {
		ret = vq_map_rings(vq, vq->mt);
		if (ret) {
			vq->addr = saved;
			return ret;
		}
	}
	vq->addr_set = true;
	return 0;
}

int hvn_vq_set_base(struct hvn_vq *vq, uint16_t last_avail_idx)
{
	if (!vq)
		return -EINVAL;
	if (vq->started)
		return -EBUSY;
	vq->last_avail = last_avail_idx;
	vq->shadow_avail = last_avail_idx;
	return 0;
}

uint16_t hvn_vq_get_base(const struct hvn_vq *vq)
{
	return vq ? vq->last_avail : 0;
}

/* Ask the driver to kick (or not), and say so where the driver looks. */
static void vq_write_notify(struct hvn_vq *vq, bool on)
{
	vq->notify_on = on;
	if (vq->event_idx) {
		/*
		 * With EVENT_IDX the driver kicks when a publish moves its index
		 * past avail_event.  "On": the next publish does.  "Off": an
		 * index just behind the one we will pop next, which the driver
		 * has passed already, so no publish crosses it until the
		 * 16-bit index comes round again (once per 65536 requests): a
		 * polling device gets no kick at all, not even the first.
		 */
		GUEST_STORE(vq->avail_event, htole16(on ? vq->last_avail : (uint16_t)(vq->last_avail - 1)));
	} else {
		vq->used_flags = on ? 0 : VQ_USED_F_NO_NOTIFY;
		GUEST_STORE(&vq->used->flags, htole16(vq->used_flags));
	}
}

int hvn_vq_start(struct hvn_vq *vq)
{
	int ret;

	if (!vq)
		return -EINVAL;
	if (vq->started || vq->n_inflight)
		return -EBUSY;
	if (!vq->size || !vq->addr_set)
		return -EINVAL;
	vq_switch_mem(vq);
	ret = vq_map_rings(vq, vq->mt);
	if (ret)
		return ret;
	vq->event_idx = !!(vq->features & HVN_VQ_F_EVENT_IDX);
	vq->indirect = !!(vq->features & HVN_VQ_F_INDIRECT_DESC);
	vq->error = 0;
	vq->shadow_avail = vq->last_avail;
	/* Carry on from where the previous device (or reset) left the used ring. */
	vq->used_idx = le16toh(GUEST_LOAD(&vq->used->idx));
	resubmit_drop(vq);
	vq->recovered = false;
	if (vq->ifl) {
		ret = ifl_restore(vq);
		if (ret) {
			vq_unmap_rings(vq);
			return ret;
		}
	}
	vq->signalled_valid = false;
	vq->hint = 0;
	vq->started = true;
	/* A previous backend may have left kicks suppressed: ask for them. */
	vq_write_notify(vq, true);
	return 0;
}

int hvn_vq_stop(struct hvn_vq *vq)
{
	if (!vq)
		return -EINVAL;
	/*
	 * The rings now belong to the frontend.  Requests in flight keep their
	 * memory; pushing them later only releases it (see hvn_vq_push).
	 */
	vq->started = false;
	vq_unmap_rings(vq);
	/* Chains not handed out again stay in flight in the region: the
	 * next start on it hands them out. */
	resubmit_drop(vq);
	return 0;
}

int hvn_vq_update_mem(struct hvn_vq *vq)
{
	if (!vq)
		return -EINVAL;
	vq_switch_mem(vq);
	return vq->error;
}

int hvn_vq_pop_batch(struct hvn_vq *vq, struct hvn_vq_req *reqs, unsigned int count)
{
	unsigned int n = 0;
	int ret;

	if (unlikely(vq->error))
		return vq->error;
	if (unlikely(!vq->started))
		return -EBADFD;
	vq_check_mem(vq);
	if (unlikely(vq->error))	/* the new memory may not hold the rings */
		return vq->error;

	while (n < count) {
		uint16_t head;

		if (unlikely(vq->n_resubmit)) {
			/* A previous backend's chains go first, oldest first. */
			head = vq->resubmit[vq->next_resubmit];
			ret = vq_walk(vq, head, &reqs[n]);
			if (ret < 0) {
				if (ret != -ENOBUFS)
					vq_break(vq, ret);
				return n ? (int)n : ret;
			}
			vq->inflight[head] = vq->mt;
			vq->n_inflight++;
			vq->cur_inflight++;
			if (++vq->next_resubmit == vq->n_resubmit)
				resubmit_drop(vq);
			n++;
			continue;
		}
		if (vq->last_avail == vq->shadow_avail) {
			/*
			 * Acquire: the ring entries and descriptors read below
			 * must not be read before the index that published them
			 * (pairs with the driver's write barrier between filling
			 * them and storing avail->idx).  Read once per batch,
			 * not per entry, to bounce the line less.
			 */
			uint16_t idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));

			/* The driver can make at most size entries available. */
			if (unlikely((uint16_t)(idx - vq->last_avail) > vq->size)) {
				vq_break(vq, -EPROTO);
				break;
			}
			vq->shadow_avail = idx;
			if (idx == vq->last_avail)
				break;
		}
		head = le16toh(GUEST_LOAD(&vq->avail->ring[vq->last_avail & vq->mask]));
		if (unlikely(head >= vq->size)) {
			vq_break(vq, -ERANGE);
			break;
		}
		/* In flight, resubmitted ones included: they were all
		 * handed out before any new entry is looked at. */
		if (unlikely(vq->inflight[head] != NULL)) {
			vq_break(vq, -EALREADY);
			break;
		}
		ret = vq_walk(vq, head, &reqs[n]);
		if (unlikely(ret < 0)) {
			if (ret != -ENOBUFS)
				vq_break(vq, ret);
			/* Requests popped so far are good; the error comes next call. */
			return n ? (int)n : ret;
		}
		if (vq->ifl)
			ifl_popped(vq, head);
		vq->inflight[head] = vq->mt;
		vq->n_inflight++;
		vq->cur_inflight++;
		vq->last_avail++;
		n++;
	}
	return n ? (int)n : vq->error;
}

int hvn_vq_pop(struct hvn_vq *vq, struct hvn_vq_req *req)
{
	return hvn_vq_pop_batch(vq, req, 1);
}

/*
 * Release head and, when the queue is running, write its used element.
 * Returns 1 if an element was written, 0 if only released, -EINVAL if head
 * is not in flight.
 */
static inline int vq_fill(struct hvn_vq *vq, uint16_t head, uint32_t len)
{
	struct vq_used_elem *e;
	struct mem_table *t;

	if (unlikely(head >= vq->size || !(t = vq->inflight[head])))
		return -EINVAL;
	vq->inflight[head] = NULL;
	vq->n_inflight--;
	if (likely(t == vq->mt))
		vq->cur_inflight--;
	else
		mem_table_put(t);	/* may unmap memory removed since the pop */
	if (unlikely(!vq->started || vq->error))
		return 0;
	e = &vq->used->ring[vq->used_idx & vq->mask];
	GUEST_STORE(&e->id, htole32(head));
	GUEST_STORE(&e->len, htole32(len));
	if (vq->ifl) {
		/* The batch list, published with the used elements. */
		IFL_STORE(&vq->ifl->desc[head].next, vq->ifl_batch_head);
		vq->ifl_batch_head = head;
	}
	vq->used_idx++;
	return 1;
}

static inline void vq_flush(struct hvn_vq *vq)
{
	/*
	 * Release: the used elements written above become visible before the
	 * index that publishes them (pairs with the driver's read barrier
	 * between loading used->idx and reading the elements).  It also
	 * keeps the compiler from sinking the inflight region's batch list
	 * below the index, which the next backend relies on.
	 */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

int hvn_vq_push_batch(struct hvn_vq *vq, const struct hvn_vq_done *done, unsigned int count)
{
	unsigned int i;
	int written = 0, ret = 0;

	/* Drop old snapshots first, so their last request unmaps them now. */
	vq_check_mem(vq);
	for (i = 0; i < count; i++) {
		int r = vq_fill(vq, done[i].head, done[i].len);

		if (r < 0) {
			ret = r;
			break;
		}
		written += r;
	}
	/* One index update for the whole batch: the driver sees all or none. */
	if (written && vq->started && !vq->error) {
		if (vq->ifl)
			IFL_STORE(&vq->ifl->last_batch_head, vq->ifl_batch_head);
		vq_flush(vq);
		/* Every element up to i was written (written == i): the
		 * queue's state cannot change within the loop. */
		if (vq->ifl)
			ifl_retire(vq, done, (unsigned int)written);
	}
	return ret;
}

int hvn_vq_push(struct hvn_vq *vq, uint16_t head, uint32_t len)
{
	struct hvn_vq_done d = { .head = head, .len = len };

	return hvn_vq_push_batch(vq, &d, 1);
}

/* virtio's vring_need_event: did [old, new) cross event?  16-bit wrap-safe. */
static inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

int hvn_vq_should_notify(struct hvn_vq *vq)
{
	uint16_t old, new_idx;
	bool valid;

	if (!vq->started || vq->error)
		return 0;
	/*
	 * Full barrier: our store of used->idx (vq_flush) must be visible
	 * before we load used_event or avail->flags.  It pairs with the
	 * driver's full barrier between storing used_event (or clearing
	 * NO_INTERRUPT) and re-reading used->idx when it re-enables
	 * interrupts: either it sees our new index, or we see its request
	 * for an interrupt.  Without it both could miss and the guest would
	 * wait forever.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	new_idx = vq->used_idx;
	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (valid && old == new_idx)
		return 0;	/* nothing published since the last decision */
	if (!vq->event_idx)
		return !(le16toh(GUEST_LOAD(&vq->avail->flags)) & VQ_AVAIL_F_NO_INTERRUPT);
	/* After (re)start we do not know what the driver saw: notify. */
	if (!valid)
		return 1;
	return need_event(le16toh(GUEST_LOAD(vq->used_event)), new_idx, old);
}

int hvn_vq_enable_notify(struct hvn_vq *vq)
{
	uint16_t idx;

	if (vq->error)
		return vq->error;
	if (!vq->started)
		return -EBADFD;
	vq_check_mem(vq);
	if (vq->error)
		return vq->error;
	vq_write_notify(vq, true);
	/*
	 * Full barrier: the store above (avail_event, or clearing NO_NOTIFY)
	 * must be visible before we load avail->idx.  It pairs with the
	 * driver's full barrier between storing avail->idx and loading
	 * avail_event / used->flags for its kick decision: either the driver
	 * sees that we want a kick, or we see its new entries here.  This is
	 * the re-check that keeps a request landing in the gap from being
	 * lost.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	idx = le16toh(GUEST_LOAD(&vq->avail->idx));
	return idx != vq->last_avail;
}

int hvn_vq_disable_notify(struct hvn_vq *vq)
{
	if (vq->error)
		return vq->error;
	if (!vq->started)
		return -EBADFD;
	/* Only a hint to the driver: no ordering needed. */
	if (vq->notify_on)
		vq_write_notify(vq, false);
	return 0;
}

int hvn_vq_error(const struct hvn_vq *vq)
{
	return vq ? vq->error : -EINVAL;
}

int hvn_vq_get_state(const struct hvn_vq *vq, struct hvn_vq_state *st)
{
	if (!vq || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->features = vq->features;
	st->size = vq->size;
	st->last_avail_idx = vq->last_avail;
	st->used_idx = vq->used_idx;
	st->inflight = vq->n_inflight;
	st->error = vq->error;
	if (vq->started)
		st->flags |= HVN_VQ_STATE_STARTED;
	if (vq->started && vq->notify_on)
		st->flags |= HVN_VQ_STATE_NOTIFY;
	if (vq->ifl)
		st->flags |= HVN_VQ_STATE_INFLIGHT;
	if (vq->recovered)
		st->flags |= HVN_VQ_STATE_RECOVERED;
	st->resubmit = vq->n_resubmit - vq->next_resubmit;
	return 0;
}
