/* SPDX-License-Identifier: MIT */
/*
 * trap_internal.h - the doorbell table and the adapter interface, shared by
 * trap.c (the generic part), trap_table.c and the adapters (trap_kvm.c,
 * trap_soft.c).  Not installed.
 */
#ifndef HVN_TRAP_INTERNAL_H
#define HVN_TRAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "hvnotify/trap.h"

#define HVN_CACHELINE 64

/* One registered doorbell: the caller's record, normalised (datamatch is 0
 * unless HVN_DOORBELL_DATAMATCH), and where it went. */
struct trap_entry {
	struct hvn_doorbell db;
	uint32_t route;			/* enum hvn_route */
};

/* An immutable, sorted snapshot of every doorbell of a VM.  Readers never
 * see one change; writers build a new one and publish it (trap_table.c). */
struct trap_table {
	size_t count;
	struct trap_entry entries[];
};

/*
 * Readers of the published table announce themselves in one of two slots
 * (an SRCU-style scheme, see trap_table.c).  Each counter has its own cache
 * line so vCPU threads do not also fight with the writer's epoch.
 */
struct trap_readers {
	_Alignas(HVN_CACHELINE) atomic_ulong epoch;
	struct {
		_Alignas(HVN_CACHELINE) atomic_long active;
	} slot[2];
};

struct trap_irq_entry {
	struct hvn_irq irq;
	uint32_t route;
};

struct hvn_vm;

/* What an adapter provides.  assign/deassign return 0 or a negative errno;
 * the generic code decides on the fallback to userspace (trap.c). */
struct trap_adapter {
	const char *name;
	int (*doorbell_assign)(struct hvn_vm *vm, const struct hvn_doorbell *db);
	int (*doorbell_deassign)(struct hvn_vm *vm, const struct hvn_doorbell *db);
	int (*irq_assign)(struct hvn_vm *vm, const struct hvn_irq *irq);
	int (*irq_deassign)(struct hvn_vm *vm, const struct hvn_irq *irq);
};

struct hvn_vm {
	struct trap_readers readers;
	_Atomic(struct trap_table *) table;	/* published snapshot, never NULL */

	/* Everything below is written only with lock held. */
	pthread_mutex_t lock;
	const struct trap_adapter *adapter;
	struct hvn_caps caps;
	int vm_fd;				/* kvm: the VMM's VM fd, not ours */
	struct trap_irq_entry *irqs;
	size_t nr_irqs, cap_irqs;
};

/* trap_table.c */
struct trap_table *trap_table_alloc(size_t count);
int trap_entry_cmp(const struct trap_entry *a, const struct trap_entry *b);
size_t trap_table_lower_bound(const struct trap_table *t, const struct trap_entry *key);
const struct trap_entry *trap_table_find(const struct trap_table *t,
					 const struct trap_entry *key);
unsigned int trap_read_lock(struct hvn_vm *vm);
void trap_read_unlock(struct hvn_vm *vm, unsigned int slot);
void trap_table_publish(struct hvn_vm *vm, struct trap_table *next);

/* Adapters. */
extern const struct trap_adapter trap_soft_adapter;
extern const struct trap_adapter trap_kvm_adapter;
void trap_kvm_probe(int vm_fd, struct hvn_caps *caps);

/* trap.c: shared by the constructors. */
int trap_vm_alloc(const struct trap_adapter *adapter, int vm_fd, struct hvn_vm **vmp);

#endif /* HVN_TRAP_INTERNAL_H */
