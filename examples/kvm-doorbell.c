// SPDX-License-Identifier: MIT
/*
 * kvm-doorbell.c - a minimal KVM VMM whose doorbells are libhvnotify's.
 *
 * The VM has 64 KiB of RAM and one vCPU in real mode.  Its guest rings two
 * doorbells: I/O port 0x10 (three writes) and the MMIO address 0xd0000 (two
 * writes; no RAM there, as for a device register), then halts.  Each
 * doorbell is an eventfd that a device backend would wait on.
 *
 *   run 1: the doorbells go where libhvnotify puts them.  With KVM that is
 *          the kernel (KVM_IOEVENTFD): the eventfds count the writes and no
 *          exit reaches this VMM.
 *   run 2: the same doorbells with HVN_DOORBELL_USERSPACE.  Every write
 *          exits to this VMM, whose exit handler hands it to hvn_dispatch(),
 *          which signals the same eventfds.  This is the path for every
 *          doorbell hvn_doorbell_add() returns HVN_ROUTE_USER for.
 *
 * Build: cc -o kvm-doorbell kvm-doorbell.c $(pkg-config --cflags --libs hvnotify)
 * Needs /dev/kvm; scripts/demo-kvm.sh runs it under a nested KVM when there is none.
 * Exit status: 0 if every count is what the routes promise, 1 if not, 77
 * without /dev/kvm.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hvnotify/hvnotify.h>

#define GUEST_RAM	0x10000		/* 64 KiB at guest-physical 0 */
#define GUEST_ENTRY	0x1000
#define DOORBELL_PORT	0x10
#define DOORBELL_MMIO	0xd0000		/* outside RAM: a write traps */
#define PIO_WRITES	3
#define MMIO_WRITES	2

/* The guest, 16-bit real-mode code assembled by hand. */
static const uint8_t guest_code[] = {
	0xba, 0x10, 0x00,		/* mov dx, 0x10                     */
	0xb0, 0x01,			/* mov al, 1                        */
	0xee, 0xee, 0xee,		/* out dx, al   x3: the PIO doorbell  */
	0xb8, 0x00, 0xd0,		/* mov ax, 0xd000                   */
	0x8e, 0xd8,			/* mov ds, ax   (ds base 0xd0000)   */
	0xc6, 0x06, 0x00, 0x00, 0x01,	/* mov byte [0], 1: the MMIO doorbell */
	0xc6, 0x06, 0x00, 0x00, 0x01,	/* mov byte [0], 1                  */
	0xf4,				/* hlt                              */
};

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	uint8_t *ram;
};

/* What reached this VMM during one run of the guest. */
struct exits {
	unsigned int pio, mmio;		/* writes to our doorbell addresses */
	unsigned int dispatched;	/* of those, hvn_dispatch() signalled */
};

static void die(const char *what)
{
	fprintf(stderr, "kvm-doorbell: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void vm_create(struct vm *vm)
{
	struct kvm_userspace_memory_region ram;
	struct kvm_sregs sregs;
	int size;

	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");
	vm->ram = mmap(NULL, GUEST_RAM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (vm->ram == MAP_FAILED)
		die("mmap");
	memcpy(vm->ram + GUEST_ENTRY, guest_code, sizeof(guest_code));
	ram = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_RAM,
		.userspace_addr = (uintptr_t)vm->ram,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &ram) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");

	/* Real mode, code segment at 0 (the reset state points at the BIOS). */
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

/*
 * Run the guest from its entry point to its hlt.  This is the part of a VMM
 * that matters here: a write that exits is offered to hvn_dispatch() first;
 * only if it is no doorbell (0) would the VMM emulate it as device I/O.
 */
static void run_guest(struct vm *vm, struct hvn_vm *hvn, struct exits *ex)
{
	struct kvm_regs regs = { .rip = GUEST_ENTRY, .rflags = 0x2 };
	struct kvm_run *run = vm->run;

	memset(ex, 0, sizeof(*ex));
	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
	for (;;) {
		uint64_t value = 0;

		if (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_HLT:
			return;
		case KVM_EXIT_IO:
			if (run->io.direction != KVM_EXIT_IO_OUT || run->io.count != 1)
				break;
			memcpy(&value, (uint8_t *)run + run->io.data_offset, run->io.size);
			ex->pio += run->io.port == DOORBELL_PORT;
			if (hvn_dispatch(hvn, HVN_SPACE_PIO, run->io.port, run->io.size, value) == 1)
				ex->dispatched++;
			continue;
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write)
				break;
			memcpy(&value, run->mmio.data, run->mmio.len);
			ex->mmio += run->mmio.phys_addr == DOORBELL_MMIO;
			if (hvn_dispatch(hvn, HVN_SPACE_MMIO, run->mmio.phys_addr, run->mmio.len,
					 value) == 1)
				ex->dispatched++;
			continue;
		}
		fprintf(stderr, "kvm-doorbell: unexpected exit %u\n", run->exit_reason);
		exit(1);
	}
}

static const char *route_name(int route)
{
	if (route == HVN_ROUTE_KERNEL)
		return "kernel (no exit reaches the VMM)";
	if (route == HVN_ROUTE_USER)
		return "user (exits go through hvn_dispatch)";
	return strerror(-route);
}

static uint64_t eventfd_count(int fd)
{
	uint64_t n;

	return read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;	/* EAGAIN: 0 */
}

/* One run of the guest with both doorbells registered with these flags;
 * returns 1 if what happened is what the routes say should happen. */
static int demo(struct vm *vm, struct hvn_vm *hvn, uint32_t flags)
{
	int pio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int mmio_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct hvn_doorbell pio = {
		.space = HVN_SPACE_PIO, .addr = DOORBELL_PORT, .len = 1,
		.flags = flags, .fd = pio_fd,
	};
	struct hvn_doorbell mmio = {
		.space = HVN_SPACE_MMIO, .addr = DOORBELL_MMIO, .len = 1,
		.flags = flags, .fd = mmio_fd,
	};
	unsigned int want_pio, want_mmio;
	uint64_t n_pio, n_mmio;
	int pio_route, mmio_route;
	struct exits ex;

	if (pio_fd < 0 || mmio_fd < 0)
		die("eventfd");
	pio_route = hvn_doorbell_add(hvn, &pio);
	mmio_route = hvn_doorbell_add(hvn, &mmio);
	printf("  doorbell PIO port 0x%x    -> %s\n", DOORBELL_PORT, route_name(pio_route));
	printf("  doorbell MMIO 0x%x     -> %s\n", DOORBELL_MMIO, route_name(mmio_route));
	if (pio_route < 0 || mmio_route < 0)
		return 0;

	run_guest(vm, hvn, &ex);
	n_pio = eventfd_count(pio_fd);
	n_mmio = eventfd_count(mmio_fd);
	printf("  guest wrote the port %d times and the MMIO doorbell %d times, then halted\n",
	       PIO_WRITES, MMIO_WRITES);
	printf("  eventfds: PIO %llu, MMIO %llu\n", (unsigned long long)n_pio,
	       (unsigned long long)n_mmio);
	printf("  exits to the VMM: PIO %u, MMIO %u; hvn_dispatch signalled %u\n",
	       ex.pio, ex.mmio, ex.dispatched);

	/* Deleting takes the exact record that was added (KVM's rule). */
	hvn_doorbell_del(hvn, &pio);
	hvn_doorbell_del(hvn, &mmio);
	close(pio_fd);
	close(mmio_fd);

	want_pio = pio_route == HVN_ROUTE_USER ? PIO_WRITES : 0;
	want_mmio = mmio_route == HVN_ROUTE_USER ? MMIO_WRITES : 0;
	return n_pio == PIO_WRITES && n_mmio == MMIO_WRITES && ex.pio == want_pio &&
	       ex.mmio == want_mmio && ex.dispatched == want_pio + want_mmio;
}

int main(void)
{
	struct hvn_vm *hvn;
	struct vm vm;
	int ok, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(20);	/* a guest that never halts ends the demo */
	vm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm.kvm < 0) {
		printf("kvm-doorbell: no /dev/kvm (%s); try scripts/demo-kvm.sh\n", strerror(errno));
		return 77;
	}
	vm_create(&vm);

	/* Bind libhvnotify to the VM fd; the fd stays the VMM's. */
	r = hvn_vm_create_kvm(vm.fd, &hvn);
	if (r < 0) {
		fprintf(stderr, "kvm-doorbell: hvn_vm_create_kvm: %s\n", strerror(-r));
		return 1;
	}
	printf("kvm-doorbell: a VM with 64 KiB of RAM and one real-mode vCPU\n");
	printf("run 1: the doorbells where libhvnotify puts them\n");
	ok = demo(&vm, hvn, 0);
	printf("run 2: the same doorbells with HVN_DOORBELL_USERSPACE\n");
	ok &= demo(&vm, hvn, HVN_DOORBELL_USERSPACE);
	hvn_vm_destroy(hvn);

	printf("kvm-doorbell: %s\n", ok ? "ok, every count as the routes promise" :
	       "UNEXPECTED counts");
	return ok ? 0 : 1;
}
