// SPDX-License-Identifier: MIT
/*
 * vring_driver.c - the guest driver's half of a split ring (see
 * vring_driver.h).  Its barriers mirror those of Linux's virtio_ring.c;
 * each says what it orders, and which device-side barrier in
 * lib/vq_split.c it pairs with.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vring_driver.h"

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

uint64_t vrd_ring_bytes(uint32_t num)
{
	uint64_t used = align_up(16 * (uint64_t)num + 6 + 2 * (uint64_t)num, 64);

	return used + 6 + 8 * (uint64_t)num;
}

int vrd_init(struct vring_driver *d, struct gmem *mem, uint32_t num, uint64_t ring_gpa,
	     uint64_t features)
{
	uint64_t avail = ring_gpa + 16 * (uint64_t)num;
	uint64_t used = ring_gpa + align_up(16 * (uint64_t)num + 6 + 2 * (uint64_t)num, 64);

	return vrd_init_at(d, mem, num, ring_gpa, avail, used, features);
}

int vrd_init_at(struct vring_driver *d, struct gmem *mem, uint32_t num, uint64_t desc_gpa,
		uint64_t avail_gpa, uint64_t used_gpa, uint64_t features)
{
	uint32_t i;

	memset(d, 0, sizeof(*d));
	if (num == 0 || num > 32768 || (num & (num - 1)))
		return -EINVAL;
	d->mem = mem;
	d->num = num;
	d->features = features;
	d->desc_gpa = desc_gpa;
	d->avail_gpa = avail_gpa;
	d->used_gpa = used_gpa;
	d->desc = gmem_ptr(mem, desc_gpa, 16 * (uint64_t)num);
	d->avail = gmem_ptr(mem, avail_gpa, 6 + 2 * (uint64_t)num);
	d->used = gmem_ptr(mem, used_gpa, 6 + 8 * (uint64_t)num);
	if (!d->desc || !d->avail || !d->used)
		return -EFAULT;
	memset(d->desc, 0, 16 * (size_t)num);
	memset(d->avail, 0, 6 + 2 * (size_t)num);
	memset(d->used, 0, 6 + 8 * (size_t)num);
	d->used_event = &d->avail->ring[num];
	d->avail_event = (uint16_t *)&d->used->ring[num];

	d->next = calloc(num, sizeof(*d->next));
	d->chain_len = calloc(num, sizeof(*d->chain_len));
	d->token = calloc(num, sizeof(*d->token));
	d->busy = calloc(num, sizeof(*d->busy));
	if (!d->next || !d->chain_len || !d->token || !d->busy) {
		vrd_free(d);
		return -ENOMEM;
	}
	for (i = 0; i < num; i++)
		d->next[i] = (uint16_t)(i + 1);
	d->free_head = 0;
	d->num_free = num;
	return 0;
}

void vrd_free(struct vring_driver *d)
{
	free(d->next);
	free(d->chain_len);
	free(d->token);
	free(d->busy);
	d->next = d->chain_len = NULL;
	d->token = NULL;
	d->busy = NULL;
}

int vrd_set_indirect_area(struct vring_driver *d, uint64_t gpa, uint32_t max_entries)
{
	if (!gmem_ptr(d->mem, gpa, 16 * (uint64_t)max_entries * d->num))
		return -EFAULT;
	d->ind_gpa = gpa;
	d->ind_max = max_entries;
	return 0;
}

void vrd_set_indices(struct vring_driver *d, uint16_t idx)
{
	d->avail_idx = d->kicked_idx = d->last_used = idx;
	STORE(&d->avail->idx, htole16(idx));
	STORE(&d->used->idx, htole16(idx));
	STORE(d->used_event, htole16(idx));
}

void vrd_addr(const struct vring_driver *d, bool gpa, struct hvn_vq_addr *addr)
{
	memset(addr, 0, sizeof(*addr));
	if (gpa) {
		addr->desc = d->desc_gpa;
		addr->avail = d->avail_gpa;
		addr->used = d->used_gpa;
		addr->flags = HVN_VQ_ADDR_GPA;
	} else {
		addr->desc = gmem_uva(d->mem, d->desc_gpa);
		addr->avail = gmem_uva(d->mem, d->avail_gpa);
		addr->used = gmem_uva(d->mem, d->used_gpa);
	}
	addr->log = d->used_gpa;
}

void vrd_write_desc(struct vrd_desc *desc, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	STORE(&desc->addr, htole64(addr));
	STORE(&desc->len, htole32(len));
	STORE(&desc->flags, htole16(flags));
	STORE(&desc->next, htole16(next));
}

static const struct vrd_buf *nth_buf(const struct vrd_buf *out, unsigned int n_out,
				     const struct vrd_buf *in, unsigned int i, uint16_t *flags)
{
	*flags = i < n_out ? 0 : VRD_DESC_F_WRITE;
	return i < n_out ? &out[i] : &in[i - n_out];
}

int vrd_add(struct vring_driver *d, const struct vrd_buf *out, unsigned int n_out,
	    const struct vrd_buf *in, unsigned int n_in, void *token, bool indirect)
{
	unsigned int total = n_out + n_in, i;
	uint16_t head = d->free_head, cur, flags;

	if (total == 0 || (indirect && (total > d->ind_max || !d->ind_max)))
		return -EINVAL;
	if (d->num_free < (indirect ? 1 : total))
		return -ENOSPC;

	if (indirect) {
		uint64_t tgpa = d->ind_gpa + 16 * (uint64_t)d->ind_max * head;
		struct vrd_desc *t = gmem_ptr(d->mem, tgpa, 16 * (uint64_t)total);

		if (!t)
			return -EFAULT;
		for (i = 0; i < total; i++) {
			const struct vrd_buf *b = nth_buf(out, n_out, in, i, &flags);

			if (i + 1 < total)
				flags |= VRD_DESC_F_NEXT;
			vrd_write_desc(&t[i], b->gpa, b->len, flags, (uint16_t)(i + 1));
		}
		vrd_write_desc(&d->desc[head], tgpa, 16 * total, VRD_DESC_F_INDIRECT, 0);
		d->free_head = d->next[head];
		d->chain_len[head] = 1;
		d->num_free--;
	} else {
		cur = head;
		for (i = 0; i < total; i++) {
			const struct vrd_buf *b = nth_buf(out, n_out, in, i, &flags);

			if (i + 1 < total)
				flags |= VRD_DESC_F_NEXT;
			vrd_write_desc(&d->desc[cur], b->gpa, b->len, flags, d->next[cur]);
			if (i + 1 < total)
				cur = d->next[cur];
		}
		d->free_head = d->next[cur];
		d->chain_len[head] = (uint16_t)total;
		d->num_free -= total;
	}
	d->token[head] = token;
	d->busy[head] = true;
	STORE(&d->avail->ring[d->avail_idx & (d->num - 1)], htole16(head));
	d->avail_idx++;
	return head;
}

void vrd_put_raw(struct vring_driver *d, uint16_t head)
{
	STORE(&d->avail->ring[d->avail_idx & (d->num - 1)], htole16(head));
	d->avail_idx++;
}

struct vrd_desc *vrd_desc(struct vring_driver *d, uint16_t i)
{
	return &d->desc[i];
}

void vrd_publish(struct vring_driver *d)
{
	/*
	 * Release: descriptors and ring entries are visible before the index
	 * that makes them available (pairs with the device's acquire load of
	 * avail->idx in hvn_vq_pop_batch).
	 */
	__atomic_store_n(&d->avail->idx, htole16(d->avail_idx), __ATOMIC_RELEASE);
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vrd_kick_needed(struct vring_driver *d)
{
	uint16_t old = d->kicked_idx, new_idx = d->avail_idx;

	/*
	 * Full barrier: the store of avail->idx (vrd_publish) is visible
	 * before we load avail_event / used->flags.  Pairs with the device's
	 * full barrier in hvn_vq_enable_notify between its store of
	 * avail_event (or clearing NO_NOTIFY) and its re-read of avail->idx.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	d->kicked_idx = new_idx;
	if (d->features & HVN_VQ_F_EVENT_IDX)
		return need_event(le16toh(LOAD(d->avail_event)), new_idx, old);
	return !(le16toh(LOAD(&d->used->flags)) & VRD_USED_F_NO_NOTIFY);
}

int vrd_get_used(struct vring_driver *d, uint16_t *head, uint32_t *len, void **token)
{
	uint16_t idx, n, last;
	uint32_t id;

	/*
	 * Acquire: the used element is read after the index that published
	 * it (pairs with the device's release store in vq_flush).
	 */
	idx = le16toh(__atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE));
	if (idx == d->last_used)
		return 0;
	id = le32toh(LOAD(&d->used->ring[d->last_used & (d->num - 1)].id));
	if (id >= d->num || !d->busy[id])
		return -EIO;
	if (len)
		*len = le32toh(LOAD(&d->used->ring[d->last_used & (d->num - 1)].len));
	if (head)
		*head = (uint16_t)id;
	if (token)
		*token = d->token[id];
	last = (uint16_t)id;
	for (n = 1; n < d->chain_len[id]; n++)
		last = d->next[last];
	d->next[last] = d->free_head;
	d->free_head = (uint16_t)id;
	d->num_free += d->chain_len[id];
	d->busy[id] = false;
	d->last_used++;
	return 1;
}

bool vrd_enable_interrupts(struct vring_driver *d)
{
	if (d->features & HVN_VQ_F_EVENT_IDX) {
		STORE(d->used_event, htole16(d->last_used));
	} else {
		d->avail_flags &= (uint16_t)~VRD_AVAIL_F_NO_INTERRUPT;
		STORE(&d->avail->flags, htole16(d->avail_flags));
	}
	/*
	 * Full barrier: our request for an interrupt is visible before we
	 * re-read used->idx.  Pairs with the device's full barrier in
	 * hvn_vq_should_notify between publishing used->idx and reading
	 * used_event / avail->flags.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return le16toh(LOAD(&d->used->idx)) != d->last_used;
}

void vrd_disable_interrupts(struct vring_driver *d)
{
	/* With EVENT_IDX, leaving used_event behind is what suppresses. */
	if (!(d->features & HVN_VQ_F_EVENT_IDX)) {
		d->avail_flags |= VRD_AVAIL_F_NO_INTERRUPT;
		STORE(&d->avail->flags, htole16(d->avail_flags));
	}
}
