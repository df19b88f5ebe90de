// SPDX-License-Identifier: MIT
/*
 * trap_table.c - the doorbell table that hvn_dispatch() searches.
 *
 * hvn_dispatch() runs on every vCPU thread at once, while the VMM adds and
 * removes doorbells from another thread.  The scheme:
 *
 *  - The table is an immutable array sorted by (space, addr, len, datamatch
 *    flag, datamatch).  A lookup is a binary search: O(log n), no lock.
 *  - A writer (serialised by vm->lock) builds a complete new array and
 *    publishes it with one atomic pointer store.  A reader sees either the
 *    old or the new array, never a half-updated one.
 *  - The old array is freed only when no reader can still hold it.  Readers
 *    announce themselves by incrementing one of two counters (the slot is
 *    chosen by the parity of an epoch) before they load the table pointer,
 *    and decrement it when done.  After publishing, the writer waits for
 *    each slot in turn to drain, flipping the epoch before each wait so that
 *    readers arriving meanwhile use the other slot and cannot starve it.
 *    This is the two-counter scheme of the kernel's SRCU, reduced to what
 *    one VM needs.
 *
 * Why waiting for both slots is enough: a reader that holds the old table
 * incremented its counter before its load of the pointer, and that load
 * returned the old value, so the increment precedes the writer's store in
 * the single total order of seq_cst operations.  Whichever slot it chose,
 * the writer's wait on that slot starts after the store and cannot finish
 * until that reader decremented.  The flips are only there for progress.
 *
 * The same wait gives the caller a useful promise: when hvn_doorbell_del()
 * returns, no hvn_dispatch() will signal the removed record's eventfd any
 * more, so the VMM may close it at once.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "trap_internal.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

struct trap_table *trap_table_alloc(size_t count)
{
	struct trap_table *t;

	t = malloc(sizeof(*t) + count * sizeof(t->entries[0]));
	if (t)
		t->count = count;
	return t;
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b))

/* The order of the table and the identity of a record for collisions:
 * two records that compare equal cannot both be registered. */
int trap_entry_cmp(const struct trap_entry *a, const struct trap_entry *b)
{
	const struct hvn_doorbell *x = &a->db, *y = &b->db;
	uint32_t xdm = x->flags & HVN_DOORBELL_DATAMATCH;
	uint32_t ydm = y->flags & HVN_DOORBELL_DATAMATCH;

	if (x->space != y->space)
		return CMP(x->space, y->space);
	if (x->addr != y->addr)
		return CMP(x->addr, y->addr);
	if (x->len != y->len)
		return CMP(x->len, y->len);
	if (xdm != ydm)
		return CMP(xdm, ydm);
	return CMP(x->datamatch, y->datamatch);
}

/* First index whose entry is not less than key. */
size_t trap_table_lower_bound(const struct trap_table *t, const struct trap_entry *key)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (trap_entry_cmp(&t->entries[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct trap_entry *trap_table_find(const struct trap_table *t,
					 const struct trap_entry *key)
{
	size_t i = trap_table_lower_bound(t, key);

	if (i < t->count && trap_entry_cmp(&t->entries[i], key) == 0)
		return &t->entries[i];
	return NULL;
}

unsigned int trap_read_lock(struct hvn_vm *vm)
{
	/* Any slot is correct (see the top of the file); the current parity
	 * only keeps readers off the slot a writer is draining.  */
	unsigned int slot = atomic_load_explicit(&vm->readers.epoch, memory_order_relaxed) & 1;

	/* seq_cst: the increment must be ordered before the caller's load of
	 * vm->table (a store followed by a load needs a full barrier). */
	atomic_fetch_add_explicit(&vm->readers.slot[slot].active, 1, memory_order_seq_cst);
	return slot;
}

void trap_read_unlock(struct hvn_vm *vm, unsigned int slot)
{
	/* release: every read of the table happens before the writer, which
	 * acquires this counter, frees it. */
	atomic_fetch_sub_explicit(&vm->readers.slot[slot].active, 1, memory_order_release);
}

static void wait_slot_drained(struct hvn_vm *vm)
{
	/* Flip first, so that new readers go to the other slot. */
	unsigned long old = atomic_fetch_add_explicit(&vm->readers.epoch, 1,
						      memory_order_seq_cst);
	unsigned int slot = old & 1;

	unsigned int spins = 0;

	/* Read sections are a binary search and one eventfd write: spin a
	 * little before giving the CPU away, or a writer on a busy machine
	 * waits a whole time slice per publish. */
	/* seq_cst, not just acquire: the argument above needs this load in
	 * the total order after the exchange that published the table.  It
	 * also acquires, pairing with the readers' release. */
	while (atomic_load_explicit(&vm->readers.slot[slot].active, memory_order_seq_cst)) {
		if (++spins < 1000)
			cpu_relax();
		else
			sched_yield();
	}
}

/* Called with vm->lock held.  Takes ownership of next. */
void trap_table_publish(struct hvn_vm *vm, struct trap_table *next)
{
	struct trap_table *prev;

	prev = atomic_exchange_explicit(&vm->table, next, memory_order_seq_cst);
	wait_slot_drained(vm);
	wait_slot_drained(vm);
	free(prev);
}
