/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/trap.h - guest doorbells and interrupt lines.
 *
 * A doorbell is a guest write (PIO, MMIO) or hypercall that carries no data:
 * it only tells a device to look at its ring.  Registering one makes the
 * guest's trap signal an eventfd, in the hypervisor's kernel where it can
 * (KVM's ioeventfd and friends) and in the VMM's exit handler otherwise
 * (hvn_dispatch()).
 */
#ifndef HVNOTIFY_TRAP_H
#define HVNOTIFY_TRAP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where a doorbell lives.  Values are stable ABI. */
enum hvn_space {
	HVN_SPACE_PIO = 0,		/* x86 I/O port write                         */
	HVN_SPACE_MMIO = 1,		/* guest-physical memory write                */
	HVN_SPACE_HYPERV_SIGNAL = 2,	/* Hyper-V HvSignalEvent, addr = connection id */
	HVN_SPACE_XEN_EVTCHN = 3,	/* Xen EVTCHNOP_send, addr = event channel port */
	HVN_SPACE_HCALL = 4,		/* any other hypercall, addr = its number     */
};
#define HVN_SPACE_COUNT 5

/* hvn_doorbell.flags */
#define HVN_DOORBELL_DATAMATCH	(1u << 0)  /* signal only when the value equals datamatch */
#define HVN_DOORBELL_USERSPACE	(1u << 1)  /* never put it in the kernel (e.g. for tracing) */

/*
 * One record for every kind of doorbell.  The library keeps a full copy,
 * because KVM (like every hypervisor modelled on it) only removes a
 * registration when the exact same record is given back.
 *
 * len is the access width in bytes: 1, 2, 4 or 8, or 0 for "any width",
 * which cannot be combined with HVN_DOORBELL_DATAMATCH.  The hypercall
 * spaces (HYPERV_SIGNAL, XEN_EVTCHN, HCALL) have no width: len must be 0.
 */
struct hvn_doorbell {
	uint32_t space;		/* enum hvn_space */
	uint32_t flags;		/* HVN_DOORBELL_* */
	uint64_t addr;		/* port, GPA, connection id, event port or hypercall number */
	uint64_t datamatch;	/* compared with the written value when DATAMATCH is set */
	uint32_t len;		/* 0 (any), 1, 2, 4 or 8 */
	int32_t fd;		/* eventfd to signal; owned by the caller */
};

/* Where a registration went: what hvn_doorbell_add() and hvn_irq_add()
 * return, and what hvn_doorbell_add_batch() stores for each record. */
enum hvn_route {
	HVN_ROUTE_KERNEL = 1,	/* the hypervisor signals fd; no exit reaches the VMM */
	HVN_ROUTE_USER = 2,	/* the VMM must pass matching exits to hvn_dispatch() */
};

/* An interrupt line: signalling fd raises gsi in the guest. */
struct hvn_irq {
	uint32_t gsi;
	int32_t fd;		/* eventfd that injects the interrupt */
	int32_t resample_fd;	/* level-triggered: signalled on guest EOI, -1 for none */
	uint32_t flags;		/* must be 0 */
};

/* What the adapter can do in the kernel (hvn_vm_caps()). */
struct hvn_caps {
	uint32_t kernel_spaces;		/* bit (1 << space) set: such doorbells go in the kernel */
	uint32_t any_length_spaces;	/* bit set: len 0 goes in the kernel for that space */
	uint32_t datamatch_widths;	/* bit (1 << n) set: n-byte datamatch in the kernel */
	uint32_t irqfd;			/* 1: interrupt lines are injected by the kernel */
	uint32_t irqfd_resample;	/* 1: resample_fd is honoured by the kernel */
	uint32_t reserved[3];
};

struct hvn_vm;

int hvn_vm_create_kvm(int vm_fd, struct hvn_vm **vmp);
int hvn_vm_create_soft(struct hvn_vm **vmp);
void hvn_vm_destroy(struct hvn_vm *vm);
int hvn_vm_caps(const struct hvn_vm *vm, struct hvn_caps *caps);

int hvn_doorbell_add(struct hvn_vm *vm, const struct hvn_doorbell *db);
int hvn_doorbell_add_batch(struct hvn_vm *vm, const struct hvn_doorbell *dbs,
			   unsigned int count, int *routes);
int hvn_doorbell_del(struct hvn_vm *vm, const struct hvn_doorbell *db);
int hvn_doorbell_lookup(struct hvn_vm *vm, const struct hvn_doorbell *db);

int hvn_dispatch(struct hvn_vm *vm, uint32_t space, uint64_t addr, uint32_t len,
		 uint64_t value);

int hvn_irq_add(struct hvn_vm *vm, const struct hvn_irq *irq);
int hvn_irq_del(struct hvn_vm *vm, const struct hvn_irq *irq);
int hvn_irq_resample(struct hvn_vm *vm, uint32_t gsi);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_TRAP_H */
