// SPDX-License-Identifier: MIT
/*
 * trap_kvm.c - the KVM adapter: doorbells as KVM_IOEVENTFD (PIO, MMIO),
 * KVM_HYPERV_EVENTFD (Hyper-V SIGNAL_EVENT) and Xen event channels
 * (KVM_XEN_HVM_SET_ATTR), interrupt lines as KVM_IRQFD.  The VM fd belongs
 * to the VMM; we only add and remove our own registrations on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "trap_internal.h"

static int vm_ioctl(struct hvn_vm *vm, unsigned long req, void *arg)
{
	return ioctl(vm->vm_fd, req, arg) < 0 ? -errno : 0;
}

static int ioeventfd(struct hvn_vm *vm, const struct hvn_doorbell *db, uint32_t extra)
{
	struct kvm_ioeventfd a;

	memset(&a, 0, sizeof(a));
	a.addr = db->addr;
	a.len = db->len;
	a.fd = db->fd;
	a.flags = extra;
	if (db->space == HVN_SPACE_PIO)
		a.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (db->flags & HVN_DOORBELL_DATAMATCH) {
		a.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
		a.datamatch = db->datamatch;
	}
	return vm_ioctl(vm, KVM_IOEVENTFD, &a);
}

static int hyperv_eventfd(struct hvn_vm *vm, const struct hvn_doorbell *db, uint32_t flags)
{
	struct kvm_hyperv_eventfd a;

	memset(&a, 0, sizeof(a));
	a.conn_id = (uint32_t)db->addr;
	a.fd = db->fd;
	a.flags = flags;
	return vm_ioctl(vm, KVM_HYPERV_EVENTFD, &a);
}

static int xen_evtchn(struct hvn_vm *vm, const struct hvn_doorbell *db, uint32_t flags)
{
#ifdef KVM_XEN_ATTR_TYPE_EVTCHN
	struct kvm_xen_hvm_attr a;

	memset(&a, 0, sizeof(a));
	a.type = KVM_XEN_ATTR_TYPE_EVTCHN;
	a.u.evtchn.send_port = (uint32_t)db->addr;
	a.u.evtchn.type = 2;	/* EVTCHNSTAT_interdomain: the far end is us */
	a.u.evtchn.flags = flags;
	a.u.evtchn.deliver.eventfd.port = 0;	/* 0: deliver to the eventfd */
	a.u.evtchn.deliver.eventfd.fd = db->fd;
	return vm_ioctl(vm, KVM_XEN_HVM_SET_ATTR, &a);
#else
	return -EOPNOTSUPP;
#endif
}

static int kvm_doorbell_assign(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	switch (db->space) {
	case HVN_SPACE_PIO:
	case HVN_SPACE_MMIO:
		return ioeventfd(vm, db, 0);
	case HVN_SPACE_HYPERV_SIGNAL:
		return hyperv_eventfd(vm, db, 0);
	case HVN_SPACE_XEN_EVTCHN:
		return xen_evtchn(vm, db, 0);
	}
	return -EOPNOTSUPP;
}

static int kvm_doorbell_deassign(struct hvn_vm *vm, const struct hvn_doorbell *db)
{
	switch (db->space) {
	case HVN_SPACE_PIO:
	case HVN_SPACE_MMIO:
		return ioeventfd(vm, db, KVM_IOEVENTFD_FLAG_DEASSIGN);
	case HVN_SPACE_HYPERV_SIGNAL:
		return hyperv_eventfd(vm, db, KVM_HYPERV_EVENTFD_DEASSIGN);
	case HVN_SPACE_XEN_EVTCHN:
#ifdef KVM_XEN_EVTCHN_DEASSIGN
		return xen_evtchn(vm, db, KVM_XEN_EVTCHN_DEASSIGN);
#endif
		break;
	}
	return -EOPNOTSUPP;
}

static int irqfd(struct hvn_vm *vm, const struct hvn_irq *irq, uint32_t flags)
{
	struct kvm_irqfd a;

	memset(&a, 0, sizeof(a));
	a.fd = (uint32_t)irq->fd;
	a.gsi = irq->gsi;
	a.flags = flags;
	if (irq->resample_fd >= 0 && !(flags & KVM_IRQFD_FLAG_DEASSIGN)) {
		a.flags |= KVM_IRQFD_FLAG_RESAMPLE;
		a.resamplefd = (uint32_t)irq->resample_fd;
	}
	return vm_ioctl(vm, KVM_IRQFD, &a);
}

/*
 * Does the VM have KVM's full in-kernel irqchip (PIC and IOAPIC)?
 * KVM_GET_IRQCHIP reads state only, and fails with ENXIO without one.
 */
static int has_kernel_irqchip(struct hvn_vm *vm)
{
#ifdef KVM_IRQCHIP_PIC_MASTER
	struct kvm_irqchip chip;

	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
	return vm_ioctl(vm, KVM_GET_IRQCHIP, &chip) == 0;
#else
	return 1;	/* no way to ask: keep KVM's answer as it is */
#endif
}

static int kvm_irq_assign(struct hvn_vm *vm, const struct hvn_irq *irq)
{
	int r = irqfd(vm, irq, 0);

	/*
	 * x86 KVM refuses an irqfd with EINVAL, not EAGAIN (arm64's "vgic not
	 * initialised yet"), when the VM lacks the irqchip the line needs: any
	 * in-kernel one, or the full one for a resample fd.  Report that as
	 * the EAGAIN trap.c falls back on; an EINVAL on a VM that has the
	 * irqchip (e.g. fd is not an eventfd) still reaches the caller.
	 */
	if (r == -EINVAL && !has_kernel_irqchip(vm))
		return -EAGAIN;
	return r;
}

static int kvm_irq_deassign(struct hvn_vm *vm, const struct hvn_irq *irq)
{
	return irqfd(vm, irq, KVM_IRQFD_FLAG_DEASSIGN);
}

const struct trap_adapter trap_kvm_adapter = {
	.name = "kvm",
	.doorbell_assign = kvm_doorbell_assign,
	.doorbell_deassign = kvm_doorbell_deassign,
	.irq_assign = kvm_irq_assign,
	.irq_deassign = kvm_irq_deassign,
};

/* Asked on the VM fd, KVM answers for this VM (KVM_CAP_CHECK_EXTENSION_VM). */
static int check_extension(int vm_fd, long cap)
{
	int r = ioctl(vm_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

void trap_kvm_probe(int vm_fd, struct hvn_caps *caps)
{
	const uint32_t pio_mmio = (1u << HVN_SPACE_PIO) | (1u << HVN_SPACE_MMIO);

	memset(caps, 0, sizeof(*caps));
	if (check_extension(vm_fd, KVM_CAP_IOEVENTFD)) {
		caps->kernel_spaces |= pio_mmio;
		caps->datamatch_widths = (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8);
		if (check_extension(vm_fd, KVM_CAP_IOEVENTFD_ANY_LENGTH))
			caps->any_length_spaces |= pio_mmio;
	}
	/* Hypercall doorbells have no width: they are "any length" by nature. */
	if (check_extension(vm_fd, KVM_CAP_HYPERV_EVENTFD)) {
		caps->kernel_spaces |= 1u << HVN_SPACE_HYPERV_SIGNAL;
		caps->any_length_spaces |= 1u << HVN_SPACE_HYPERV_SIGNAL;
	}
#ifdef KVM_XEN_HVM_CONFIG_EVTCHN_SEND
	/* KVM_CAP_XEN_HVM answers with a mask of KVM_XEN_HVM_CONFIG_* bits. */
	if (check_extension(vm_fd, KVM_CAP_XEN_HVM) & KVM_XEN_HVM_CONFIG_EVTCHN_SEND) {
		caps->kernel_spaces |= 1u << HVN_SPACE_XEN_EVTCHN;
		caps->any_length_spaces |= 1u << HVN_SPACE_XEN_EVTCHN;
	}
#endif
	caps->irqfd = check_extension(vm_fd, KVM_CAP_IRQFD) > 0;
	caps->irqfd_resample = caps->irqfd && check_extension(vm_fd, KVM_CAP_IRQFD_RESAMPLE) > 0;
}

int hvn_vm_create_kvm(int vm_fd, struct hvn_vm **vmp)
{
	int r;

	if (!vmp)
		return -EINVAL;
	*vmp = NULL;
	if (vm_fd < 0 || fcntl(vm_fd, F_GETFD) < 0)
		return -EBADF;
	/* /dev/kvm itself answers KVM_GET_API_VERSION; a VM fd does not. */
	if (ioctl(vm_fd, KVM_GET_API_VERSION, 0) >= 0)
		return -EINVAL;
	/* A VM fd answers KVM_CHECK_EXTENSION (Linux >= 4.0); other fds do not. */
	if (ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) < 0)
		return -ENOTTY;
	r = trap_vm_alloc(&trap_kvm_adapter, vm_fd, vmp);
	if (r == 0)
		trap_kvm_probe(vm_fd, &(*vmp)->caps);
	return r;
}
