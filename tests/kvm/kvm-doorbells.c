// SPDX-License-Identifier: MIT
/*
 * kvm-doorbells.c - libhvnotify against a real KVM.
 *
 * Runs tiny 32-bit guests through /dev/kvm and checks, by counting eventfd
 * signals and KVM exits per address, that every doorbell the library puts
 * "in the kernel" really is handled there (no exit reaches us), and that
 * every doorbell it puts "in userspace" reaches its eventfd through our exit
 * handler and hvn_dispatch().  Meant to run inside the nested-KVM harness
 * (tests/kvm/run-nested.sh) but works on any x86 host with /dev/kvm.
 *
 * VM A has no in-kernel irqchip (PIO, MMIO, collisions, batches, many
 * doorbells, Xen, irqfd fallback); VM B has one (Hyper-V SIGNAL_EVENT, which
 * needs SynIC, which needs the irqchip; irqfd with and without resample).
 *
 * Output: one "ok   ..." or "FAIL ..." line per check, "info ..." lines
 * for what the kernel did, and a verdict line
 * "HVN-KVM RESULT: PASS|FAIL (N checks, M failed)".
 * Exit status: 0 pass, 1 fail, 77 no /dev/kvm.
 *
 * --require-hyperv: fail instead of checking the userspace fallback when
 * the kernel has no Hyper-V support (Linux >= 6.8 can be built without it;
 * Debian's kernel, which the nested harness boots, has it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/trap.h>

#include "../support/check.h"
#include "guest-code.h"

/* Guest memory: one memslot at GPA 0; every doorbell GPA is outside it. */
#define MEM_SIZE	0x100000u
#define GDT_GPA		0x0000u
#define IDT_GPA		0x1000u
#define HCALL_PAGE_GPA	0x2000u		/* Hyper-V hypercall page (KVM fills it) */
#define RESULT_GPA	0x3000u		/* guests store hypercall statuses here */
#define STUBS_GPA	0x4000u		/* 256 x 16 bytes: "unexpected vector" */
#define CODE_GPA	0x10000u	/* programs, one after another */
#define CODE_END	0xc0000u
#define PROG_MAX	0x4000u
#define STACK_TOP	0xff000u

#define MMIO_BASE	0x10000000u
#define MMIO_A		(MMIO_BASE + 0x000)	/* kernel route, datamatch */
#define MMIO_CTL	(MMIO_BASE + 0x100)	/* never registered: always exits */
#define MMIO_ANY	(MMIO_BASE + 0x200)	/* len 0 */
#define MMIO_BATCH	(MMIO_BASE + 0x300)
#define MMIO_USER	(MMIO_BASE + 0x400)	/* HVN_DOORBELL_USERSPACE */
#define MMIO_DIRECT	(MMIO_BASE + 0x500)	/* registered behind the library's back */

/* Ports the test harness itself uses; < 0x100 so "out imm8, al" reaches them. */
#define PORT_CTL	0x11	/* never registered: always exits */
#define PORT_DONE	0xf0	/* program finished */
#define PORT_BAD	0xf1	/* unexpected vector, al = vector */
#define PORT_READY	0xf2	/* irq program: PIC set up, waiting */
#define PORT_IRQ	0xf3	/* irq handler, before EOI, al = irq */
#define PORT_EOID	0xf4	/* irq handler, after EOI, al = irq */

/* Doorbell ports. */
#define PORT_A		0x10
#define PORT_W2		0x12
#define PORT_W4		0x14
#define PORT_USER	0x20
#define PORT_DIRECT	0x30
#define PORT_ANY	0x40
#define PORT_BATCH	0x50
#define PORT_MANY	0x1000
#define NR_MANY		1100

/* Hyper-V TLFS values (the kernel keeps them out of its uapi). */
#define HV_X64_MSR_GUEST_OS_ID		0x40000000u
#define HV_X64_MSR_HYPERCALL		0x40000001u
#define HV_CPUID_VENDOR_AND_MAX		0x40000000u
#define HV_CPUID_INTERFACE		0x40000001u
#define HV_CPUID_SIGNATURE_EAX		0x31237648u	/* "Hv#1" */
#define HVCALL_SIGNAL_EVENT		0x005du
#define HV_HYPERCALL_FAST_BIT		(1u << 16)
#define HV_STATUS_SUCCESS		0x0000u
#define HV_STATUS_INVALID_HYPERCALL_CODE 0x0002u
#define HV_STATUS_INVALID_PORT_ID	0x0011u

/* PIC (8259) as programmed by the irq guest. */
#define PIC_VECTOR_BASE	0x20
#define IRQ_EDGE	4
#define IRQ_LEVEL	5

__attribute__((format(printf, 1, 2)))
static void info(const char *fmt, ...)
{
	va_list ap;

	fputs("info ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void section(const char *title)
{
	printf("== %s\n", title);
}

static void result_line(void)
{
	printf("HVN-KVM RESULT: %s (%d checks, %d failed)\n",
	       t_failures ? "FAIL" : "PASS", t_checks, t_failures);
}

__attribute__((noreturn))
static void fatal(const char *what, int err)
{
	printf("FATAL %s: %s\n", what, strerror(err));
	t_failures++;
	result_line();
	exit(T_EXIT_FAIL);
}

/* "kernel", "user" or "-EEXIST": what an hvn_* call returned. */
static const char *rstr(int r)
{
	static char buf[4][24];
	static unsigned int n;
	static const struct { int err; const char *name; } names[] = {
		{ EEXIST, "EEXIST" }, { ENOENT, "ENOENT" }, { EINVAL, "EINVAL" },
		{ EAGAIN, "EAGAIN" }, { EOPNOTSUPP, "EOPNOTSUPP" }, { ENOSPC, "ENOSPC" },
		{ EBADF, "EBADF" }, { ENOTTY, "ENOTTY" }, { EBUSY, "EBUSY" },
	};
	char *b = buf[n++ % 4];
	size_t i;

	if (r == HVN_ROUTE_KERNEL)
		return "kernel";
	if (r == HVN_ROUTE_USER)
		return "user";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (r == -names[i].err) {
			snprintf(b, sizeof(buf[0]), "-%s", names[i].name);
			return b;
		}
	snprintf(b, sizeof(buf[0]), "%d", r);
	return b;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ eventfds -- */

static int efd_new(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		fatal("eventfd", errno);
	return fd;
}

/* Read and reset the counter: how often it was signalled since last time. */
static uint64_t efd_take(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;	/* EAGAIN: never signalled */
	return v;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		fatal("eventfd write", errno);
}

/* ---------------------------------------------------------- doorbells -- */

static struct hvn_doorbell db_pio(uint16_t port, uint32_t len, int fd)
{
	return (struct hvn_doorbell){ .space = HVN_SPACE_PIO, .addr = port, .len = len, .fd = fd };
}

static struct hvn_doorbell db_mmio(uint64_t gpa, uint32_t len, int fd)
{
	return (struct hvn_doorbell){ .space = HVN_SPACE_MMIO, .addr = gpa, .len = len, .fd = fd };
}

static struct hvn_doorbell db_dm(struct hvn_doorbell db, uint64_t value)
{
	db.flags |= HVN_DOORBELL_DATAMATCH;
	db.datamatch = value;
	return db;
}

static struct hvn_doorbell db_user(struct hvn_doorbell db)
{
	db.flags |= HVN_DOORBELL_USERSPACE;
	return db;
}

static struct hvn_doorbell db_hv(uint32_t conn_id, int fd)
{
	return (struct hvn_doorbell){ .space = HVN_SPACE_HYPERV_SIGNAL, .addr = conn_id, .fd = fd };
}

/* KVM_IOEVENTFD straight on the VM fd, behind the library's back. */
static int raw_ioeventfd(int vm_fd, int pio, uint64_t addr, uint32_t len, int fd,
			 int deassign)
{
	struct kvm_ioeventfd a = { .addr = addr, .len = len, .fd = fd };

	if (pio)
		a.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (deassign)
		a.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return ioctl(vm_fd, KVM_IOEVENTFD, &a) < 0 ? -errno : 0;
}

static int raw_hv_eventfd(int vm_fd, uint32_t conn_id, int fd, int deassign)
{
	struct kvm_hyperv_eventfd a = {
		.conn_id = conn_id, .fd = fd,
		.flags = deassign ? KVM_HYPERV_EVENTFD_DEASSIGN : 0,
	};

	return ioctl(vm_fd, KVM_HYPERV_EVENTFD, &a) < 0 ? -errno : 0;
}

/* -------------------------------------------------------------- guests -- */

/* What reached userspace during one run, per address. */
struct exits {
	uint32_t io[0x10000];		/* KVM_EXIT_IO writes per port */
	uint32_t io_last[0x10000];	/* last value written */
	uint8_t io_last_len[0x10000];	/* and its width */
	struct { uint64_t addr, last; uint32_t n; } mmio[16];
	unsigned int nmmio;
	struct { uint32_t conn, n; } hv[16];
	unsigned int nhv;
	unsigned int io_total, mmio_total, hv_total, other;
	unsigned int dispatched[HVN_SPACE_COUNT];	/* hvn_dispatch() == 1 */
};

struct guest {
	const char *name;
	int vm_fd, vcpu_fd, irqchip;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint32_t code_next;
	struct hvn_vm *hvn;		/* exits are passed to hvn_dispatch() */
	struct exits *ex;
	int stop_port;			/* where the last run stopped */
	uint32_t stop_value;
	double run_ms;
};

static int kvm_fd;
static int require_hyperv;	/* --require-hyperv: the kernel must have it */
static struct kvm_run *volatile timer_run;
static volatile sig_atomic_t timer_fired;

static void on_timer(int sig)
{
	(void)sig;
	timer_fired = 1;
	/* KVM_RUN checks immediate_exit on entry, so a timer that fires just
	 * before the ioctl still stops it (api.rst, "immediate_exit"). */
	if (timer_run)
		timer_run->immediate_exit = 1;
}

static uint32_t mmio_exits(const struct exits *ex, uint64_t addr)
{
	unsigned int i;

	for (i = 0; i < ex->nmmio; i++)
		if (ex->mmio[i].addr == addr)
			return ex->mmio[i].n;
	return 0;
}

static uint64_t mmio_last(const struct exits *ex, uint64_t addr)
{
	unsigned int i;

	for (i = 0; i < ex->nmmio; i++)
		if (ex->mmio[i].addr == addr)
			return ex->mmio[i].last;
	return 0;
}

static uint32_t hv_exits(const struct exits *ex, uint32_t conn)
{
	unsigned int i;

	for (i = 0; i < ex->nhv; i++)
		if (ex->hv[i].conn == conn)
			return ex->hv[i].n;
	return 0;
}

static void dispatch(struct guest *g, uint32_t space, uint64_t addr, uint32_t len,
		     uint64_t value, int *hit)
{
	int r = g->hvn ? hvn_dispatch(g->hvn, space, addr, len, value) : 0;

	if (r == 1)
		g->ex->dispatched[space]++;
	else if (r < 0)
		info("hvn_dispatch(space %u, 0x%llx) = %s", space, (unsigned long long)addr,
		     rstr(r));
	if (hit)
		*hit = r == 1;
}

static void on_hyperv(struct guest *g)
{
	struct kvm_run *run = g->run;
	struct exits *ex = g->ex;
	uint64_t input = run->hyperv.u.hcall.input;
	uint32_t conn;
	unsigned int i;
	int hit;

	if (run->hyperv.type != KVM_EXIT_HYPERV_HCALL) {
		ex->other++;	/* SynIC MSR writes: none of our guests do that */
		return;
	}
	ex->hv_total++;
	/* Only fast SIGNAL_EVENT: the connection id is the input "GPA". */
	if ((input & 0xffff) != HVCALL_SIGNAL_EVENT || !(input & HV_HYPERCALL_FAST_BIT)) {
		info("KVM_EXIT_HYPERV: unexpected hypercall input 0x%llx",
		     (unsigned long long)input);
		run->hyperv.u.hcall.result = HV_STATUS_INVALID_HYPERCALL_CODE;
		return;
	}
	conn = (uint32_t)run->hyperv.u.hcall.params[0] & KVM_HYPERV_CONN_ID_MASK;
	for (i = 0; i < ex->nhv && ex->hv[i].conn != conn; i++)
		;
	if (i == ex->nhv && ex->nhv < 16) {
		ex->hv[ex->nhv].conn = conn;
		ex->hv[ex->nhv++].n = 0;
	}
	if (i < 16)
		ex->hv[i].n++;
	dispatch(g, HVN_SPACE_HYPERV_SIGNAL, conn, 0, 0, &hit);
	/* KVM hands this status to the guest when we re-enter (EDX:EAX). */
	run->hyperv.u.hcall.result = hit ? HV_STATUS_SUCCESS : HV_STATUS_INVALID_PORT_ID;
}

/* 1: stop (g->stop_port set), 0: run on, <0: error. */
static int handle_exit(struct guest *g, int stop_port)
{
	struct kvm_run *run = g->run;
	struct exits *ex = g->ex;
	uint8_t *data;
	uint32_t i, v;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		data = (uint8_t *)run + run->io.data_offset;
		if (run->io.direction != KVM_EXIT_IO_OUT) {
			memset(data, 0xff, run->io.size * run->io.count);
			ex->other++;
			return 0;
		}
		for (i = 0; i < run->io.count; i++) {
			uint16_t port = run->io.port;

			v = 0;
			memcpy(&v, data + i * run->io.size, run->io.size);
			if (port == PORT_DONE || port == PORT_BAD || port == stop_port) {
				g->stop_port = port;
				g->stop_value = v;
				return 1;
			}
			ex->io[port]++;
			ex->io_last[port] = v;
			ex->io_last_len[port] = run->io.size;
			ex->io_total++;
			dispatch(g, HVN_SPACE_PIO, port, run->io.size, v, NULL);
		}
		return 0;
	case KVM_EXIT_MMIO: {
		uint64_t val = 0;

		if (!run->mmio.is_write) {
			memset(run->mmio.data, 0xff, run->mmio.len);
			ex->other++;
			return 0;
		}
		memcpy(&val, run->mmio.data, run->mmio.len);
		for (i = 0; i < ex->nmmio && ex->mmio[i].addr != run->mmio.phys_addr; i++)
			;
		if (i == ex->nmmio && ex->nmmio < 16) {
			ex->mmio[ex->nmmio].addr = run->mmio.phys_addr;
			ex->mmio[ex->nmmio++].n = 0;
		}
		if (i < 16) {
			ex->mmio[i].n++;
			ex->mmio[i].last = val;
		}
		ex->mmio_total++;
		dispatch(g, HVN_SPACE_MMIO, run->mmio.phys_addr, run->mmio.len, val, NULL);
		return 0;
	}
	case KVM_EXIT_HYPERV:
		on_hyperv(g);
		return 0;
	default:
		break;
	}
	ex->other++;
	printf("     %s: unexpected exit_reason %u", g->name, run->exit_reason);
	if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		printf(" (hardware_entry_failure_reason 0x%llx)",
		       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		printf(" (suberror %u)", run->internal.suberror);
	{
		struct kvm_regs regs;

		if (ioctl(g->vcpu_fd, KVM_GET_REGS, &regs) == 0 && regs.rip < MEM_SIZE - 4)
			printf(" at rip 0x%llx: %02x %02x %02x %02x", (unsigned long long)regs.rip,
			       g->mem[regs.rip], g->mem[regs.rip + 1], g->mem[regs.rip + 2],
			       g->mem[regs.rip + 3]);
	}
	putchar('\n');
	return -EIO;
}

/*
 * Run the vCPU until it writes to PORT_DONE, PORT_BAD or stop_port.
 * Returns that port, -ETIMEDOUT, or another negative errno.
 */
static int guest_run(struct guest *g, int stop_port, unsigned int timeout_ms)
{
	struct itimerval it = {
		.it_value = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 },
	};
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	double t0 = now();
	int r;

	g->stop_port = -1;
	g->run->immediate_exit = 0;
	timer_fired = 0;
	timer_run = g->run;
	setitimer(ITIMER_REAL, &it, NULL);
	for (;;) {
		if (ioctl(g->vcpu_fd, KVM_RUN, 0) < 0) {
			r = -errno;
			if (r == -EINTR && timer_fired) {
				r = -ETIMEDOUT;
				break;
			}
			if (r == -EINTR)
				continue;
			printf("     %s: KVM_RUN: %s\n", g->name, strerror(-r));
			break;
		}
		r = handle_exit(g, stop_port);
		if (r)
			break;
	}
	setitimer(ITIMER_REAL, &off, NULL);
	timer_run = NULL;
	g->run->immediate_exit = 0;
	g->run_ms = (now() - t0) * 1e3;
	if (r == 1 && g->stop_port == PORT_BAD)
		printf("     %s: guest took unexpected vector %u\n", g->name, g->stop_value & 0xff);
	return r == 1 ? g->stop_port : r;
}

static void exits_reset(struct guest *g)
{
	memset(g->ex, 0, sizeof(*g->ex));
}

/* Point the vCPU at a program.  A vCPU of an irqchip VM may be halted in
 * the kernel (mp_state HALTED): registers alone would not wake it. */
static void guest_start(struct guest *g, uint32_t entry)
{
	struct kvm_regs regs = { .rip = entry, .rsp = STACK_TOP, .rflags = 0x2 };

	if (ioctl(g->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		fatal("KVM_SET_REGS", errno);
	if (g->irqchip) {
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

		if (ioctl(g->vcpu_fd, KVM_SET_MP_STATE, &mp) < 0)
			fatal("KVM_SET_MP_STATE", errno);
	}
	exits_reset(g);
}

/* Run a program to PORT_DONE; returns 1 if it got there. */
static int run_prog(struct guest *g, uint32_t entry)
{
	guest_start(g, entry);
	return guest_run(g, -1, 20000) == PORT_DONE;
}

static uint32_t prog_begin(struct guest *g, struct gcode *c)
{
	if (g->code_next + PROG_MAX > CODE_END)
		fatal("out of guest code space", ENOSPC);
	gc_init(c, g->mem, g->code_next, PROG_MAX);
	return g->code_next;
}

static void prog_end(struct guest *g, struct gcode *c)
{
	x86_out_imm_al(c, PORT_DONE);
	x86_hlt(c);
	g->code_next = (gc_here(c) + 15) & ~15u;
}

/* "times" writes of value to port, width bytes each. */
static void emit_out(struct gcode *c, uint16_t port, unsigned int width, uint32_t value,
		     unsigned int times)
{
	x86_mov_dx(c, port);
	x86_mov_r32(c, X86_EAX, value);
	while (times--)
		x86_out_dx(c, width);
}

static void emit_store(struct gcode *c, uint32_t gpa, unsigned int width, uint32_t value,
		       unsigned int times)
{
	x86_mov_r32(c, X86_EAX, value);
	while (times--)
		x86_store(c, width, gpa);
}

/* Fast HvSignalEvent(conn_id) through the hypercall page, 32-bit ABI:
 * control in EDX:EAX, input (the connection id) in EBX:ECX, status back in
 * EDX:EAX.  The status goes to RESULT_GPA[slot]. */
static void emit_hv_signal(struct gcode *c, uint32_t conn_id, unsigned int slot)
{
	x86_mov_r32(c, X86_EAX, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST_BIT);
	x86_mov_r32(c, X86_EDX, 0);
	x86_mov_r32(c, X86_ECX, conn_id);
	x86_mov_r32(c, X86_EBX, 0);
	x86_call(c, HCALL_PAGE_GPA);
	x86_store(c, 4, RESULT_GPA + 4 * slot);
}

static uint32_t guest_result(const struct guest *g, unsigned int slot)
{
	uint32_t v;

	memcpy(&v, g->mem + RESULT_GPA + 4 * slot, sizeof(v));
	return v;
}

static void guest_create(struct guest *g, const char *name, int irqchip)
{
	struct kvm_userspace_memory_region slot;
	struct kvm_sregs sregs;
	struct gcode c;
	int sz, v;

	memset(g, 0, sizeof(*g));
	g->name = name;
	g->irqchip = irqchip;
	g->code_next = CODE_GPA;
	g->ex = calloc(1, sizeof(*g->ex));
	if (!g->ex)
		fatal("calloc", ENOMEM);
	g->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (g->vm_fd < 0)
		fatal("KVM_CREATE_VM", errno);
	/* The irqchip must exist before the first vCPU. */
	if (irqchip && ioctl(g->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		fatal("KVM_CREATE_IRQCHIP", errno);
	g->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g->mem == MAP_FAILED)
		fatal("mmap guest memory", errno);
	slot = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)g->mem,
	};
	if (ioctl(g->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		fatal("KVM_SET_USER_MEMORY_REGION", errno);
	g->vcpu_fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, 0);
	if (g->vcpu_fd < 0)
		fatal("KVM_CREATE_VCPU", errno);
	sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		fatal("KVM_GET_VCPU_MMAP_SIZE", errno);
	g->run_size = (size_t)sz;
	g->run = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu_fd, 0);
	if (g->run == MAP_FAILED)
		fatal("mmap kvm_run", errno);

	/* Every vector goes to a stub that reports it: a guest that faults
	 * says so instead of hanging or triple-faulting. */
	guest_write_gdt(g->mem, GDT_GPA);
	for (v = 0; v < 256; v++) {
		gc_init(&c, g->mem, STUBS_GPA + 16 * v, 16);
		x86_mov_al(&c, (uint8_t)v);
		x86_out_imm_al(&c, PORT_BAD);
		x86_hlt(&c);
		x86_jmp8(&c, gc_here(&c) - 1);
		guest_set_gate(g->mem, IDT_GPA, v, STUBS_GPA + 16 * v);
	}
	if (ioctl(g->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		fatal("KVM_GET_SREGS", errno);
	guest_sregs_flat32(&sregs, GDT_GPA, IDT_GPA);
	if (ioctl(g->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		fatal("KVM_SET_SREGS", errno);
}

static void guest_destroy(struct guest *g)
{
	hvn_vm_destroy(g->hvn);
	munmap(g->run, g->run_size);	/* the mapping pins the vCPU, and so the VM */
	close(g->vcpu_fd);
	close(g->vm_fd);
	munmap(g->mem, MEM_SIZE);
	free(g->ex);
}

static int kvm_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

/* ------------------------------------------------------------- phases -- */

static void test_create(struct guest *a)
{
	struct hvn_vm *vm = NULL;
	int efd, r;

	section("hvn_vm_create_kvm");
	r = hvn_vm_create_kvm(kvm_fd, &vm);
	CHECK(r == -EINVAL && !vm, "hvn_vm_create_kvm(/dev/kvm fd) = %s (want -EINVAL: not a VM fd)",
	      rstr(r));
	efd = efd_new();
	r = hvn_vm_create_kvm(efd, &vm);
	CHECK(r == -ENOTTY && !vm, "hvn_vm_create_kvm(eventfd) = %s (want -ENOTTY)", rstr(r));
	close(efd);
	r = hvn_vm_create_kvm(a->vm_fd, &a->hvn);
	CHECK(r == 0 && a->hvn, "hvn_vm_create_kvm(VM A fd) = %s", rstr(r));
	if (r)
		fatal("hvn_vm_create_kvm", -r);
}

static void test_caps(struct guest *a)
{
	struct hvn_caps caps;
	uint32_t want_kernel = 0, want_any = 0;
	int ioev, anylen, hv, xen, irqfd, resample, r;

	section("capabilities");
	ioev = kvm_cap(a->vm_fd, KVM_CAP_IOEVENTFD);
	anylen = kvm_cap(a->vm_fd, KVM_CAP_IOEVENTFD_ANY_LENGTH);
	hv = kvm_cap(a->vm_fd, KVM_CAP_HYPERV_EVENTFD);
	xen = kvm_cap(a->vm_fd, KVM_CAP_XEN_HVM);
	irqfd = kvm_cap(a->vm_fd, KVM_CAP_IRQFD);
	resample = kvm_cap(a->vm_fd, KVM_CAP_IRQFD_RESAMPLE);
	info("KVM_CHECK_EXTENSION on VM A: IOEVENTFD=%d IOEVENTFD_ANY_LENGTH=%d HYPERV_EVENTFD=%d "
	     "XEN_HVM=0x%x IRQFD=%d IRQFD_RESAMPLE=%d HYPERV=%d HYPERV_SYNIC=%d",
	     ioev, anylen, hv, xen, irqfd, resample, kvm_cap(a->vm_fd, KVM_CAP_HYPERV),
	     kvm_cap(a->vm_fd, KVM_CAP_HYPERV_SYNIC));

	r = hvn_vm_caps(a->hvn, &caps);
	CHECK(r == 0, "hvn_vm_caps = %s", rstr(r));
	info("hvn_vm_caps: kernel_spaces=0x%x any_length_spaces=0x%x datamatch_widths=0x%x "
	     "irqfd=%u irqfd_resample=%u", caps.kernel_spaces, caps.any_length_spaces,
	     caps.datamatch_widths, caps.irqfd, caps.irqfd_resample);

	if (ioev) {
		want_kernel |= 1u << HVN_SPACE_PIO | 1u << HVN_SPACE_MMIO;
		if (anylen)
			want_any |= 1u << HVN_SPACE_PIO | 1u << HVN_SPACE_MMIO;
	}
	if (hv) {
		want_kernel |= 1u << HVN_SPACE_HYPERV_SIGNAL;
		want_any |= 1u << HVN_SPACE_HYPERV_SIGNAL;
	}
	if (xen & KVM_XEN_HVM_CONFIG_EVTCHN_SEND) {
		want_kernel |= 1u << HVN_SPACE_XEN_EVTCHN;
		want_any |= 1u << HVN_SPACE_XEN_EVTCHN;
	}
	CHECK(ioev, "this kernel has KVM_CAP_IOEVENTFD");
	if (require_hyperv)
		CHECK(hv, "this kernel has KVM_CAP_HYPERV_EVENTFD (--require-hyperv)");
	CHECK(caps.kernel_spaces == want_kernel,
	      "kernel_spaces 0x%x = PIO|MMIO%s%s per KVM_CHECK_EXTENSION (want 0x%x)",
	      caps.kernel_spaces, hv ? "|HYPERV_SIGNAL" : "",
	      want_kernel & (1u << HVN_SPACE_XEN_EVTCHN) ? "|XEN_EVTCHN" : "", want_kernel);
	CHECK(!(caps.kernel_spaces & (1u << HVN_SPACE_HCALL)),
	      "generic hypercalls (HVN_SPACE_HCALL) are never in the kernel");
	CHECK(caps.any_length_spaces == want_any, "any_length_spaces 0x%x (want 0x%x)",
	      caps.any_length_spaces, want_any);
	CHECK(caps.datamatch_widths == ((1u << 1) | (1u << 2) | (1u << 4) | (1u << 8)),
	      "datamatch_widths 0x%x = 1, 2, 4 and 8 bytes", caps.datamatch_widths);
	CHECK(caps.irqfd == (irqfd > 0) && caps.irqfd_resample == (resample > 0),
	      "irqfd=%u irqfd_resample=%u match KVM_CAP_IRQFD=%d KVM_CAP_IRQFD_RESAMPLE=%d",
	      caps.irqfd, caps.irqfd_resample, irqfd, resample);
	if (xen & KVM_XEN_HVM_CONFIG_EVTCHN_SEND)
		info("this kernel has KVM Xen event channels (KVM_CAP_XEN_HVM=0x%x)", xen);
	else
		CHECK(!(caps.kernel_spaces & (1u << HVN_SPACE_XEN_EVTCHN)),
		      "Xen event channels not in the kernel (KVM_CAP_XEN_HVM=0x%x: no CONFIG_KVM_XEN)",
		      xen);
}

/* 5 PIO writes, 3 MMIO writes, then one control write of each kind. */
static uint32_t prog_basic(struct guest *g)
{
	struct gcode c;
	uint32_t entry = prog_begin(g, &c);

	emit_out(&c, PORT_A, 1, 1, 5);
	emit_store(&c, MMIO_A, 4, 0x12345678, 3);
	emit_out(&c, PORT_CTL, 1, 0x42, 1);
	emit_store(&c, MMIO_CTL, 4, 0x42, 1);
	prog_end(g, &c);
	return entry;
}

static void test_kernel_route(struct guest *a, int efd_pio, int efd_mmio, uint32_t prog)
{
	struct hvn_doorbell pio = db_pio(PORT_A, 1, efd_pio), mmio = db_mmio(MMIO_A, 4, efd_mmio);
	struct exits *ex = a->ex;
	uint64_t np, nm;
	int r;

	section("PIO and MMIO doorbells in the kernel");
	r = hvn_doorbell_add(a->hvn, &pio);
	CHECK(r == HVN_ROUTE_KERNEL, "add PIO 0x%x len 1 -> %s (want kernel)", PORT_A, rstr(r));
	r = hvn_doorbell_add(a->hvn, &mmio);
	CHECK(r == HVN_ROUTE_KERNEL, "add MMIO 0x%x len 4 -> %s (want kernel)", MMIO_A, rstr(r));
	r = hvn_doorbell_lookup(a->hvn, &pio);
	CHECK(r == HVN_ROUTE_KERNEL, "lookup PIO 0x%x -> %s", PORT_A, rstr(r));

	r = run_prog(a, prog);
	np = efd_take(efd_pio);
	nm = efd_take(efd_mmio);
	CHECK(r, "guest: 5x out 0x%x, 3x mov [0x%x], ran to done (%.1f ms)", PORT_A, MMIO_A,
	      a->run_ms);
	CHECK(np == 5, "PIO eventfd = %llu (want 5)", (unsigned long long)np);
	CHECK(nm == 3, "MMIO eventfd = %llu (want 3)", (unsigned long long)nm);
	CHECK(ex->io[PORT_A] == 0 && mmio_exits(ex, MMIO_A) == 0,
	      "KVM_EXIT_IO at 0x%x = %u, KVM_EXIT_MMIO at 0x%x = %u (want 0, 0)",
	      PORT_A, ex->io[PORT_A], MMIO_A, mmio_exits(ex, MMIO_A));
	CHECK(ex->io[PORT_CTL] == 1 && ex->io_last[PORT_CTL] == 0x42 &&
	      mmio_exits(ex, MMIO_CTL) == 1 && ex->io_total == 1 && ex->mmio_total == 1 &&
	      ex->other == 0,
	      "control writes still exit: io %u (port 0x%x: %u), mmio %u (0x%x: %u), other %u",
	      ex->io_total, PORT_CTL, ex->io[PORT_CTL], ex->mmio_total, MMIO_CTL,
	      mmio_exits(ex, MMIO_CTL), ex->other);
	CHECK(ex->dispatched[HVN_SPACE_PIO] + ex->dispatched[HVN_SPACE_MMIO] == 0,
	      "hvn_dispatch matched no exit (%u)",
	      ex->dispatched[HVN_SPACE_PIO] + ex->dispatched[HVN_SPACE_MMIO]);
}

static void test_delete(struct guest *a, int efd_pio, int efd_mmio, uint32_t prog)
{
	struct hvn_doorbell pio = db_pio(PORT_A, 1, efd_pio), mmio = db_mmio(MMIO_A, 4, efd_mmio);
	struct hvn_doorbell wrong;
	struct exits *ex = a->ex;
	uint64_t n;
	int r;

	section("hvn_doorbell_del");
	wrong = pio;
	wrong.fd = efd_mmio;
	r = hvn_doorbell_del(a->hvn, &wrong);
	CHECK(r == -ENOENT, "del PIO 0x%x with another fd -> %s (want -ENOENT)", PORT_A, rstr(r));
	wrong = db_dm(pio, 1);
	r = hvn_doorbell_del(a->hvn, &wrong);
	CHECK(r == -ENOENT, "del PIO 0x%x with a datamatch it lacks -> %s (want -ENOENT)", PORT_A,
	      rstr(r));
	wrong = mmio;
	wrong.len = 0;
	r = hvn_doorbell_del(a->hvn, &wrong);
	CHECK(r == -ENOENT, "del MMIO 0x%x len 0 (registered len 4) -> %s (want -ENOENT)", MMIO_A,
	      rstr(r));
	r = hvn_doorbell_del(a->hvn, &pio);
	CHECK(r == 0, "del PIO 0x%x (exact record) -> %s", PORT_A, rstr(r));
	r = hvn_doorbell_del(a->hvn, &mmio);
	CHECK(r == 0, "del MMIO 0x%x (exact record) -> %s", MMIO_A, rstr(r));
	r = hvn_doorbell_del(a->hvn, &pio);
	CHECK(r == -ENOENT, "del PIO 0x%x again -> %s (want -ENOENT)", PORT_A, rstr(r));
	r = hvn_doorbell_lookup(a->hvn, &pio);
	CHECK(r == -ENOENT, "lookup PIO 0x%x -> %s (want -ENOENT)", PORT_A, rstr(r));

	r = run_prog(a, prog);
	n = efd_take(efd_pio) + efd_take(efd_mmio);
	CHECK(r, "guest: same program ran to done (%.1f ms)", a->run_ms);
	CHECK(ex->io[PORT_A] == 5 && mmio_exits(ex, MMIO_A) == 3,
	      "writes exit again: KVM_EXIT_IO at 0x%x = %u (want 5), KVM_EXIT_MMIO at 0x%x = %u (want 3)",
	      PORT_A, ex->io[PORT_A], MMIO_A, mmio_exits(ex, MMIO_A));
	CHECK(n == 0, "no eventfd signalled after del (sum %llu)", (unsigned long long)n);
}

static void test_datamatch(struct guest *a)
{
	int efd[7], i, r;
	struct hvn_doorbell dbs[7];
	struct exits *ex = a->ex;
	uint64_t v[7];
	struct gcode c;
	uint32_t entry;

	section("datamatch");
	for (i = 0; i < 7; i++)
		efd[i] = efd_new();
	dbs[0] = db_dm(db_pio(PORT_A, 1, efd[0]), 1);
	dbs[1] = db_dm(db_pio(PORT_A, 1, efd[1]), 2);
	dbs[2] = db_dm(db_pio(PORT_A, 1, efd[2]), 3);
	dbs[3] = db_dm(db_pio(PORT_W2, 2, efd[3]), 0xbeef);
	dbs[4] = db_dm(db_pio(PORT_W4, 4, efd[4]), 0xdeadbeef);
	dbs[5] = db_dm(db_mmio(MMIO_A, 4, efd[5]), 0xcafebabe);
	dbs[6] = db_dm(db_mmio(MMIO_A + 8, 2, efd[6]), 0x5a5a);
	for (i = 0; i < 7; i++) {
		r = hvn_doorbell_add(a->hvn, &dbs[i]);
		CHECK(r == HVN_ROUTE_KERNEL, "add %s 0x%llx len %u datamatch 0x%llx -> %s (want kernel)",
		      dbs[i].space == HVN_SPACE_PIO ? "PIO" : "MMIO",
		      (unsigned long long)dbs[i].addr, dbs[i].len,
		      (unsigned long long)dbs[i].datamatch, rstr(r));
	}

	entry = prog_begin(a, &c);
	emit_out(&c, PORT_A, 1, 1, 2);
	emit_out(&c, PORT_A, 1, 2, 1);
	emit_out(&c, PORT_A, 1, 3, 3);
	emit_out(&c, PORT_A, 1, 4, 1);		/* no match: exits */
	emit_out(&c, PORT_A, 2, 1, 1);		/* value 1 but 2 bytes wide: exits */
	emit_out(&c, PORT_W2, 2, 0xbeef, 2);
	emit_out(&c, PORT_W2, 2, 0x1234, 1);	/* exits */
	emit_out(&c, PORT_W4, 4, 0xdeadbeef, 1);
	emit_out(&c, PORT_W4, 4, 0, 1);		/* exits */
	emit_store(&c, MMIO_A, 4, 0xcafebabe, 2);
	emit_store(&c, MMIO_A, 4, 1, 1);	/* exits */
	emit_store(&c, MMIO_A + 8, 2, 0x5a5a, 3);
	prog_end(a, &c);
	r = run_prog(a, entry);
	for (i = 0; i < 7; i++)
		v[i] = efd_take(efd[i]);
	CHECK(r, "guest ran to done (%.1f ms)", a->run_ms);
	CHECK(v[0] == 2 && v[1] == 1 && v[2] == 3,
	      "PIO 0x%x datamatch 1/2/3 eventfds = %llu/%llu/%llu (want 2/1/3)", PORT_A,
	      (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2]);
	CHECK(ex->io[PORT_A] == 2 && ex->io_last[PORT_A] == 1 && ex->io_last_len[PORT_A] == 2,
	      "PIO 0x%x: only value 4 and the 2-byte write exited (exits %u, last 0x%x len %u)",
	      PORT_A, ex->io[PORT_A], ex->io_last[PORT_A], ex->io_last_len[PORT_A]);
	CHECK(v[3] == 2 && ex->io[PORT_W2] == 1 && ex->io_last[PORT_W2] == 0x1234,
	      "PIO 0x%x len 2 datamatch 0xbeef: eventfd %llu (want 2), exits %u (want 1, 0x1234)",
	      PORT_W2, (unsigned long long)v[3], ex->io[PORT_W2]);
	CHECK(v[4] == 1 && ex->io[PORT_W4] == 1 && ex->io_last[PORT_W4] == 0,
	      "PIO 0x%x len 4 datamatch 0xdeadbeef: eventfd %llu (want 1), exits %u (want 1, 0)",
	      PORT_W4, (unsigned long long)v[4], ex->io[PORT_W4]);
	CHECK(v[5] == 2 && mmio_exits(ex, MMIO_A) == 1 && mmio_last(ex, MMIO_A) == 1,
	      "MMIO 0x%x len 4 datamatch 0xcafebabe: eventfd %llu (want 2), exits %u (want 1, 0x1)",
	      MMIO_A, (unsigned long long)v[5], mmio_exits(ex, MMIO_A));
	CHECK(v[6] == 3 && mmio_exits(ex, MMIO_A + 8) == 0,
	      "MMIO 0x%x len 2 datamatch 0x5a5a: eventfd %llu (want 3), exits %u (want 0)",
	      MMIO_A + 8, (unsigned long long)v[6], mmio_exits(ex, MMIO_A + 8));
	CHECK(ex->io_total == 4 && ex->mmio_total == 1 && ex->other == 0 &&
	      ex->dispatched[HVN_SPACE_PIO] + ex->dispatched[HVN_SPACE_MMIO] == 0,
	      "exactly the 5 non-matching writes exited (io %u, mmio %u), none dispatched",
	      ex->io_total, ex->mmio_total);
	for (i = 0; i < 7; i++) {
		r = hvn_doorbell_del(a->hvn, &dbs[i]);
		if (r)
			CHECK(0, "del datamatch doorbell %d -> %s", i, rstr(r));
		close(efd[i]);
	}
	CHECK(1, "deleted the 7 datamatch doorbells");
}

static void test_any_length(struct guest *a)
{
	int efd_m = efd_new(), efd_p = efd_new(), rm, rp, r;
	struct hvn_doorbell m = db_mmio(MMIO_ANY, 0, efd_m), p = db_pio(PORT_ANY, 0, efd_p);
	struct exits *ex = a->ex;
	struct gcode c;
	uint32_t entry;
	uint64_t vm, vp;

	section("any length (len 0)");
	rm = hvn_doorbell_add(a->hvn, &m);
	CHECK(rm == HVN_ROUTE_KERNEL, "add MMIO 0x%x len 0 -> %s (want kernel)", MMIO_ANY, rstr(rm));
	rp = hvn_doorbell_add(a->hvn, &p);
	CHECK(rp == HVN_ROUTE_KERNEL, "add PIO 0x%x len 0 -> %s (want kernel)", PORT_ANY, rstr(rp));

	entry = prog_begin(a, &c);
	emit_store(&c, MMIO_ANY, 1, 0x11, 1);
	emit_store(&c, MMIO_ANY, 2, 0x2222, 1);
	emit_store(&c, MMIO_ANY, 4, 0x44444444, 1);
	emit_store(&c, MMIO_ANY + 1, 1, 0x11, 1);	/* next byte: not the doorbell */
	emit_out(&c, PORT_ANY, 1, 0x11, 1);
	emit_out(&c, PORT_ANY, 2, 0x2222, 1);
	emit_out(&c, PORT_ANY, 4, 0x44444444, 1);
	emit_out(&c, PORT_ANY + 1, 1, 0x11, 1);		/* next port: not the doorbell */
	prog_end(a, &c);
	r = run_prog(a, entry);
	vm = efd_take(efd_m);
	vp = efd_take(efd_p);
	CHECK(r, "guest: 1, 2 and 4 byte writes to each, ran to done (%.1f ms)", a->run_ms);
	CHECK(vm == 3 && mmio_exits(ex, MMIO_ANY) == 0,
	      "MMIO len 0: eventfd %llu (want 3), exits %u (want 0)", (unsigned long long)vm,
	      mmio_exits(ex, MMIO_ANY));
	CHECK(mmio_exits(ex, MMIO_ANY + 1) == 1, "MMIO 0x%x (address + 1) exits: %u (want 1)",
	      MMIO_ANY + 1, mmio_exits(ex, MMIO_ANY + 1));
	/* KVM registers a len-0 PIO ioeventfd on the PIO bus like MMIO, and its
	 * bus lookup matches a len-0 device on the exact address at any width. */
	CHECK(vp == 3 && ex->io[PORT_ANY] == 0,
	      "PIO len 0: eventfd %llu (want 3), exits %u (want 0): KVM matches any width on the exact port",
	      (unsigned long long)vp, ex->io[PORT_ANY]);
	CHECK(ex->io[PORT_ANY + 1] == 1, "PIO 0x%x (port + 1) exits: %u (want 1)", PORT_ANY + 1,
	      ex->io[PORT_ANY + 1]);
	CHECK(ex->io_total == 1 && ex->mmio_total == 1 && ex->other == 0,
	      "no other exits (io %u, mmio %u, other %u)", ex->io_total, ex->mmio_total, ex->other);
	r = hvn_doorbell_del(a->hvn, &m);
	CHECK(r == 0, "del MMIO len 0 -> %s", rstr(r));
	r = hvn_doorbell_del(a->hvn, &p);
	CHECK(r == 0, "del PIO len 0 -> %s", rstr(r));
	close(efd_m);
	close(efd_p);
}

static void test_collisions(struct guest *a)
{
	int e1 = efd_new(), e2 = efd_new(), eraw = efd_new(), r;
	struct hvn_doorbell base = db_pio(PORT_A, 1, e1), user = db_user(db_pio(PORT_USER, 1, e1));
	struct hvn_doorbell d;
	struct exits *ex = a->ex;
	struct gcode c;
	uint32_t entry;
	uint64_t vraw, v1, v2;

	section("collisions");
	r = hvn_doorbell_add(a->hvn, &base);
	CHECK(r == HVN_ROUTE_KERNEL, "add PIO 0x%x len 1 -> %s", PORT_A, rstr(r));
	d = base;
	d.fd = e2;
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "same port and len, other fd -> %s (want -EEXIST)", rstr(r));
	d = db_dm(db_pio(PORT_A, 1, e2), 7);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "datamatch 7 on a port without datamatch -> %s (want -EEXIST)", rstr(r));
	d = db_pio(PORT_A, 0, e2);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "len 0 on the same port -> %s (want -EEXIST)", rstr(r));
	d = db_pio(PORT_A, 2, e2);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == HVN_ROUTE_KERNEL, "len 2 on the same port -> %s (want kernel: no collision, as in KVM)",
	      rstr(r));
	if (r == HVN_ROUTE_KERNEL)
		hvn_doorbell_del(a->hvn, &d);

	/* Only the library can see this one: nothing is in the kernel. */
	r = hvn_doorbell_add(a->hvn, &user);
	CHECK(r == HVN_ROUTE_USER, "add PIO 0x%x USERSPACE -> %s (want user)", PORT_USER, rstr(r));
	d = db_pio(PORT_USER, 1, e2);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "kernel-capable PIO 0x%x over the userspace one -> %s (want -EEXIST, "
	      "from the library's table)", PORT_USER, rstr(r));
	r = hvn_doorbell_del(a->hvn, &user);
	CHECK(r == 0, "del PIO 0x%x USERSPACE -> %s", PORT_USER, rstr(r));

	/* Behind the library's back: the kernel's EEXIST must come through,
	 * not become a silent userspace fallback (the guest would then
	 * signal the VMM's fd, and ours never). */
	r = raw_ioeventfd(a->vm_fd, 1, PORT_DIRECT, 1, eraw, 0);
	CHECK(r == 0, "KVM_IOEVENTFD PIO 0x%x directly on the VM fd -> %s", PORT_DIRECT, rstr(r));
	d = db_pio(PORT_DIRECT, 1, e2);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "hvn add PIO 0x%x -> %s (want the kernel's -EEXIST)", PORT_DIRECT, rstr(r));
	r = hvn_doorbell_lookup(a->hvn, &d);
	CHECK(r == -ENOENT, "  and nothing recorded: lookup -> %s (want -ENOENT)", rstr(r));
	r = raw_ioeventfd(a->vm_fd, 0, MMIO_DIRECT, 4, eraw, 0);
	CHECK(r == 0, "KVM_IOEVENTFD MMIO 0x%x len 4 directly on the VM fd -> %s", MMIO_DIRECT, rstr(r));
	d = db_mmio(MMIO_DIRECT, 0, e2);
	r = hvn_doorbell_add(a->hvn, &d);
	CHECK(r == -EEXIST, "hvn add MMIO 0x%x len 0 -> %s (want the kernel's -EEXIST)", MMIO_DIRECT,
	      rstr(r));

	entry = prog_begin(a, &c);
	emit_out(&c, PORT_DIRECT, 1, 1, 2);
	emit_store(&c, MMIO_DIRECT, 4, 1, 1);
	emit_out(&c, PORT_A, 1, 1, 1);
	prog_end(a, &c);
	r = run_prog(a, entry);
	vraw = efd_take(eraw);
	v1 = efd_take(e1);
	v2 = efd_take(e2);
	CHECK(r && vraw == 3 && v1 == 1 && v2 == 0 && ex->io_total == 0 && ex->mmio_total == 0,
	      "guest: the direct registrations fired %llu times (want 3), ours %llu/%llu (want 1/0), "
	      "exits %u (want 0)", (unsigned long long)vraw, (unsigned long long)v1,
	      (unsigned long long)v2, ex->io_total + ex->mmio_total);

	r = raw_ioeventfd(a->vm_fd, 1, PORT_DIRECT, 1, eraw, 1);
	r = r ? r : raw_ioeventfd(a->vm_fd, 0, MMIO_DIRECT, 4, eraw, 1);
	CHECK(r == 0, "removed the direct registrations -> %s", rstr(r));
	d = db_pio(PORT_BATCH + 9, 1, e1);
	r = hvn_doorbell_del(a->hvn, &d);
	CHECK(r == -ENOENT, "del of a never-added record -> %s (want -ENOENT)", rstr(r));
	r = hvn_doorbell_del(a->hvn, &base);
	CHECK(r == 0, "del PIO 0x%x -> %s", PORT_A, rstr(r));
	close(e1);
	close(e2);
	close(eraw);
}

/* Writes to the three batch doorbells (and to the colliding one). */
static uint32_t prog_batch(struct guest *g)
{
	struct gcode c;
	uint32_t entry = prog_begin(g, &c);

	emit_out(&c, PORT_BATCH + 1, 1, 1, 1);
	emit_out(&c, PORT_BATCH + 2, 2, 1, 1);
	emit_store(&c, MMIO_BATCH, 4, 1, 1);
	emit_out(&c, PORT_BATCH + 3, 1, 1, 1);
	prog_end(g, &c);
	return entry;
}

static void test_batch(struct guest *a)
{
	int efd[4], routes[4], r, i;
	struct hvn_doorbell dbs[4], old;
	struct exits *ex = a->ex;
	uint32_t prog = prog_batch(a);
	uint64_t sum, v[4];

	section("batch add is all-or-nothing");
	for (i = 0; i < 4; i++)
		efd[i] = efd_new();
	dbs[0] = db_pio(PORT_BATCH + 1, 1, efd[0]);
	dbs[1] = db_pio(PORT_BATCH + 2, 2, efd[1]);
	dbs[2] = db_mmio(MMIO_BATCH, 4, efd[2]);
	dbs[3] = db_pio(PORT_BATCH + 3, 1, efd[3]);

	/* (a) The last entry collides with a record the library holds: it
	 * refuses before touching the kernel. */
	old = db_pio(PORT_BATCH + 3, 0, efd[3]);
	r = hvn_doorbell_add(a->hvn, &old);
	CHECK(r == HVN_ROUTE_KERNEL, "add PIO 0x%x len 0 -> %s", PORT_BATCH + 3, rstr(r));
	r = hvn_doorbell_add_batch(a->hvn, dbs, 4, routes);
	CHECK(r == -EEXIST && routes[0] == 0 && routes[1] == 0 && routes[2] == 0 &&
	      routes[3] == -EEXIST,
	      "batch of 4, last collides with a library record -> %s, routes %d/%d/%d/%s",
	      rstr(r), routes[0], routes[1], routes[2], rstr(routes[3]));
	r = run_prog(a, prog);
	for (sum = 0, i = 0; i < 3; i++)
		sum += efd_take(efd[i]);
	CHECK(r && ex->io[PORT_BATCH + 1] == 1 && ex->io[PORT_BATCH + 2] == 1 &&
	      mmio_exits(ex, MMIO_BATCH) == 1 && sum == 0,
	      "nothing registered: the 3 writes exit (%u/%u/%u), eventfds silent (sum %llu)",
	      ex->io[PORT_BATCH + 1], ex->io[PORT_BATCH + 2], mmio_exits(ex, MMIO_BATCH),
	      (unsigned long long)sum);
	efd_take(efd[3]);
	hvn_doorbell_del(a->hvn, &old);

	/* (b) The last entry collides in the kernel only: the first three are
	 * already in KVM when it says EEXIST, so they must be taken out again. */
	r = raw_ioeventfd(a->vm_fd, 1, PORT_BATCH + 3, 1, efd[3], 0);
	CHECK(r == 0, "KVM_IOEVENTFD PIO 0x%x directly on the VM fd -> %s", PORT_BATCH + 3, rstr(r));
	r = hvn_doorbell_add_batch(a->hvn, dbs, 4, routes);
	CHECK(r == -EEXIST && routes[3] == -EEXIST,
	      "batch of 4, last collides in the kernel -> %s, routes[3] %s", rstr(r),
	      rstr(routes[3]));
	for (r = 0, i = 0; i < 3; i++)
		r += hvn_doorbell_lookup(a->hvn, &dbs[i]) == -ENOENT;
	CHECK(r == 3, "lookup of the first 3 -> -ENOENT (%d of 3)", r);
	r = run_prog(a, prog);
	for (i = 0; i < 4; i++)
		v[i] = efd_take(efd[i]);
	CHECK(r && ex->io[PORT_BATCH + 1] == 1 && ex->io[PORT_BATCH + 2] == 1 &&
	      mmio_exits(ex, MMIO_BATCH) == 1 && v[0] + v[1] + v[2] == 0,
	      "rolled back in KVM: the 3 writes exit (%u/%u/%u), eventfds silent (sum %llu)",
	      ex->io[PORT_BATCH + 1], ex->io[PORT_BATCH + 2], mmio_exits(ex, MMIO_BATCH),
	      (unsigned long long)(v[0] + v[1] + v[2]));
	CHECK(v[3] == 1 && ex->io[PORT_BATCH + 3] == 0,
	      "the direct registration is untouched (eventfd %llu, exits %u)",
	      (unsigned long long)v[3], ex->io[PORT_BATCH + 3]);
	raw_ioeventfd(a->vm_fd, 1, PORT_BATCH + 3, 1, efd[3], 1);

	/* (c) Without the collision the whole batch goes in. */
	r = hvn_doorbell_add_batch(a->hvn, dbs, 4, routes);
	CHECK(r == 0 && routes[0] == HVN_ROUTE_KERNEL && routes[1] == HVN_ROUTE_KERNEL &&
	      routes[2] == HVN_ROUTE_KERNEL && routes[3] == HVN_ROUTE_KERNEL,
	      "same batch without the collision -> %s, routes %s/%s/%s/%s", rstr(r),
	      rstr(routes[0]), rstr(routes[1]), rstr(routes[2]), rstr(routes[3]));
	r = run_prog(a, prog);
	for (i = 0; i < 4; i++)
		v[i] = efd_take(efd[i]);
	CHECK(r && v[0] == 1 && v[1] == 1 && v[2] == 1 && v[3] == 1 && ex->io_total == 0 &&
	      ex->mmio_total == 0,
	      "guest: each eventfd once (%llu/%llu/%llu/%llu), exits %u (want 0)",
	      (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
	      (unsigned long long)v[3], ex->io_total + ex->mmio_total);
	for (r = 0, i = 0; i < 4; i++)
		r |= hvn_doorbell_del(a->hvn, &dbs[i]);
	CHECK(r == 0, "del the 4 -> %s", rstr(r));
	for (i = 0; i < 4; i++)
		close(efd[i]);
}

static void test_userspace(struct guest *a)
{
	int ep = efd_new(), em = efd_new(), r;
	struct hvn_doorbell p = db_user(db_pio(PORT_USER, 1, ep));
	struct hvn_doorbell m = db_user(db_dm(db_mmio(MMIO_USER, 4, em), 7));
	struct exits *ex = a->ex;
	struct gcode c;
	uint32_t entry;
	uint64_t vp, vm;

	section("userspace doorbells (HVN_DOORBELL_USERSPACE) through hvn_dispatch");
	r = hvn_doorbell_add(a->hvn, &p);
	CHECK(r == HVN_ROUTE_USER, "add PIO 0x%x USERSPACE -> %s (want user)", PORT_USER, rstr(r));
	r = hvn_doorbell_add(a->hvn, &m);
	CHECK(r == HVN_ROUTE_USER, "add MMIO 0x%x len 4 datamatch 7 USERSPACE -> %s (want user)",
	      MMIO_USER, rstr(r));
	entry = prog_begin(a, &c);
	emit_out(&c, PORT_USER, 1, 0x99, 4);
	emit_out(&c, PORT_USER, 2, 0x99, 1);	/* wrong width: no match */
	emit_store(&c, MMIO_USER, 4, 7, 2);
	emit_store(&c, MMIO_USER, 4, 8, 1);	/* wrong value: no match */
	prog_end(a, &c);
	r = run_prog(a, entry);
	vp = efd_take(ep);
	vm = efd_take(em);
	CHECK(r, "guest ran to done (%.1f ms)", a->run_ms);
	CHECK(ex->io[PORT_USER] == 5 && ex->dispatched[HVN_SPACE_PIO] == 4 && vp == 4,
	      "PIO: KVM_EXIT_IO %u (want 5), hvn_dispatch hits %u (want 4), eventfd %llu (want 4)",
	      ex->io[PORT_USER], ex->dispatched[HVN_SPACE_PIO], (unsigned long long)vp);
	CHECK(mmio_exits(ex, MMIO_USER) == 3 && ex->dispatched[HVN_SPACE_MMIO] == 2 && vm == 2,
	      "MMIO datamatch: KVM_EXIT_MMIO %u (want 3), hvn_dispatch hits %u (want 2), eventfd %llu (want 2)",
	      mmio_exits(ex, MMIO_USER), ex->dispatched[HVN_SPACE_MMIO], (unsigned long long)vm);
	r = hvn_doorbell_del(a->hvn, &p);
	r = r ? r : hvn_doorbell_del(a->hvn, &m);
	CHECK(r == 0, "del both -> %s", rstr(r));
	r = hvn_dispatch(a->hvn, HVN_SPACE_PIO, PORT_USER, 1, 0x99);
	CHECK(r == 0 && efd_take(ep) == 0, "hvn_dispatch after del -> %d (want 0), eventfd silent", r);
	close(ep);
	close(em);
}

static void test_many(struct guest *a)
{
	static const unsigned int fire[] = { 0, 1, 999, 1000, NR_MANY - 1 };
	enum { NFIRE = sizeof(fire) / sizeof(fire[0]) };
	struct hvn_doorbell *dbs = calloc(NR_MANY, sizeof(*dbs));
	int *routes = calloc(NR_MANY, sizeof(*routes));
	int efd[NFIRE], bulk = efd_new(), nk = 0, nu = 0, r, i, ok;
	struct hvn_vm *again;
	struct exits *ex = a->ex;
	struct gcode c;
	uint32_t entry;
	double t0, dt;

	section("many doorbells (KVM's NR_IOBUS_DEVS is 1000)");
	if (!dbs || !routes)
		fatal("calloc", ENOMEM);
	for (i = 0; i < NR_MANY; i++)
		dbs[i] = db_pio(PORT_MANY + i, 1, bulk);
	for (i = 0; i < NFIRE; i++) {
		efd[i] = efd_new();
		dbs[fire[i]].fd = efd[i];
	}
	t0 = now();
	r = hvn_doorbell_add_batch(a->hvn, dbs, NR_MANY, routes);
	dt = now() - t0;
	for (i = 0; i < NR_MANY; i++) {
		nk += routes[i] == HVN_ROUTE_KERNEL;
		nu += routes[i] == HVN_ROUTE_USER;
	}
	CHECK(r == 0, "batch add of %d PIO doorbells -> %s (%.1f ms)", NR_MANY, rstr(r), dt * 1e3);
	/* kvm_io_bus_register_dev() checks dev_count - ioeventfd_count against
	 * NR_IOBUS_DEVS: ioeventfds are limited by fds, not by the bus. */
	info("routes: %d kernel, %d user: ioeventfds do not count against NR_IOBUS_DEVS "
	     "in this kernel, so no ENOSPC fallback", nk, nu);
	CHECK(nk == NR_MANY && nu == 0, "all %d in the kernel (kernel %d, user %d)", NR_MANY, nk, nu);

	entry = prog_begin(a, &c);
	for (i = 0; i < NFIRE; i++)
		emit_out(&c, PORT_MANY + fire[i], 1, 1, 1);
	prog_end(a, &c);
	r = run_prog(a, entry);
	for (ok = r, i = 0; i < NFIRE; i++)
		ok &= efd_take(efd[i]) == 1;
	CHECK(ok && efd_take(bulk) == 0 && ex->io_total == 0,
	      "guest wrote doorbells #0, #1, #999, #1000, #%d: each eventfd once, the rest silent, "
	      "%u exits (want 0)", NR_MANY - 1, ex->io_total);

	/* hvn_vm_destroy must leave the VM fd as it found it: a new binding
	 * can register the same doorbells again. */
	t0 = now();
	hvn_vm_destroy(a->hvn);
	dt = now() - t0;
	a->hvn = NULL;
	r = hvn_vm_create_kvm(a->vm_fd, &again);
	CHECK(r == 0, "hvn_vm_destroy (%.1f ms) and hvn_vm_create_kvm on the same VM fd -> %s",
	      dt * 1e3, rstr(r));
	a->hvn = again;
	r = hvn_doorbell_add_batch(a->hvn, dbs, NR_MANY, routes);
	CHECK(r == 0 && routes[NR_MANY - 1] == HVN_ROUTE_KERNEL,
	      "the same %d again -> %s: destroy took its registrations out of KVM", NR_MANY, rstr(r));
	for (r = 0, i = 0; i < NR_MANY; i++)
		r |= hvn_doorbell_del(a->hvn, &dbs[i]);
	CHECK(r == 0, "del all %d one by one -> %s", NR_MANY, rstr(r));
	for (i = 0; i < NFIRE; i++)
		close(efd[i]);
	close(bulk);
	free(dbs);
	free(routes);
}

static void test_xen(struct guest *a)
{
	int efd = efd_new(), r;
	struct hvn_doorbell x = { .space = HVN_SPACE_XEN_EVTCHN, .addr = 7, .fd = efd };
	struct hvn_caps caps;
	uint64_t v;

	section("Xen event channel (no CONFIG_KVM_XEN: userspace)");
	hvn_vm_caps(a->hvn, &caps);
	r = hvn_doorbell_add(a->hvn, &x);
	if (caps.kernel_spaces & (1u << HVN_SPACE_XEN_EVTCHN)) {
		CHECK(r == HVN_ROUTE_KERNEL, "add XEN_EVTCHN port 7 -> %s (kernel has Xen)", rstr(r));
	} else {
		CHECK(r == HVN_ROUTE_USER, "add XEN_EVTCHN port 7 -> %s (want user)", rstr(r));
		r = hvn_dispatch(a->hvn, HVN_SPACE_XEN_EVTCHN, 7, 0, 0);
		v = efd_take(efd);
		CHECK(r == 1 && v == 1, "hvn_dispatch(XEN_EVTCHN, 7) -> %d, eventfd %llu (want 1, 1)", r,
		      (unsigned long long)v);
		r = hvn_dispatch(a->hvn, HVN_SPACE_XEN_EVTCHN, 8, 0, 0);
		CHECK(r == 0 && efd_take(efd) == 0, "hvn_dispatch(XEN_EVTCHN, 8) -> %d (want 0)", r);
	}
	r = hvn_doorbell_del(a->hvn, &x);
	CHECK(r == 0, "del -> %s", rstr(r));
	close(efd);
}

static void test_irq_no_irqchip(struct guest *a)
{
	int fd = efd_new(), fd2 = efd_new(), rfd = efd_new(), r, r2;
	struct kvm_irqfd raw = { .fd = (uint32_t)fd, .gsi = 4 };
	struct hvn_irq irq = { .gsi = 4, .fd = fd, .resample_fd = rfd };
	struct hvn_irq edge = { .gsi = 3, .fd = fd2, .resample_fd = -1 };

	section("irqfd without an in-kernel irqchip (VM A)");
	/* x86 KVM says EINVAL here (kvm_arch_irqfd_allowed); EAGAIN is arm64's
	 * answer for a vgic that is not initialised yet. */
	r = ioctl(a->vm_fd, KVM_IRQFD, &raw) < 0 ? -errno : 0;
	raw.flags = KVM_IRQFD_FLAG_RESAMPLE;
	raw.resamplefd = (uint32_t)rfd;
	r2 = ioctl(a->vm_fd, KVM_IRQFD, &raw) < 0 ? -errno : 0;
	CHECK(r == -EINVAL && r2 == -EINVAL,
	      "KVM_IRQFD directly on VM A -> %s, with a resample fd -> %s (x86 KVM: -EINVAL, not -EAGAIN)",
	      rstr(r), rstr(r2));
	r = hvn_irq_add(a->hvn, &irq);
	CHECK(r == HVN_ROUTE_USER, "hvn_irq_add(gsi 4, resample fd) -> %s (want user: the VMM injects)",
	      rstr(r));
	r = hvn_irq_add(a->hvn, &edge);
	CHECK(r == HVN_ROUTE_USER, "hvn_irq_add(gsi 3) -> %s (want user)", rstr(r));
	r = hvn_irq_resample(a->hvn, 4);
	CHECK(r == 1 && efd_take(rfd) == 1, "hvn_irq_resample(4) -> %d, resample fd signalled (want 1)",
	      r);
	r = hvn_irq_del(a->hvn, &irq);
	r = r ? r : hvn_irq_del(a->hvn, &edge);
	CHECK(r == 0, "hvn_irq_del both -> %s", rstr(r));
	close(fd);
	close(fd2);
	close(rfd);
}

/* Make the vCPU a Hyper-V guest: CPUID leaves, SynIC, guest OS id and the
 * hypercall page.  CPUID must be set before the first KVM_RUN. */
static int hyperv_setup(struct guest *b)
{
	struct {
		struct kvm_cpuid2 h;
		struct kvm_cpuid_entry2 e[2];
	} cpuid;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[2];
	} msrs;
	struct kvm_enable_cap synic = { .cap = KVM_CAP_HYPERV_SYNIC };
	uint8_t *page = b->mem + HCALL_PAGE_GPA;
	int r, ok = 1;

	memset(&cpuid, 0, sizeof(cpuid));
	cpuid.h.nent = 2;
	cpuid.e[0].function = HV_CPUID_VENDOR_AND_MAX;
	cpuid.e[0].eax = HV_CPUID_INTERFACE;	/* highest Hyper-V leaf */
	memcpy(&cpuid.e[0].ebx, "Micr", 4);
	memcpy(&cpuid.e[0].ecx, "osof", 4);
	memcpy(&cpuid.e[0].edx, "t Hv", 4);
	cpuid.e[1].function = HV_CPUID_INTERFACE;
	cpuid.e[1].eax = HV_CPUID_SIGNATURE_EAX;	/* sets vcpu->arch.hyperv_enabled */
	r = ioctl(b->vcpu_fd, KVM_SET_CPUID2, &cpuid) < 0 ? -errno : 0;
	ok &= r == 0;
	CHECK(r == 0, "KVM_SET_CPUID2 with Hyper-V leaves 0x40000000/1 ('Hv#1') -> %s", rstr(r));

	/* Without an active SynIC, KVM answers an unknown connection id itself
	 * (HV_STATUS_INVALID_HYPERCALL_INPUT) instead of exiting to us. */
	r = ioctl(b->vcpu_fd, KVM_ENABLE_CAP, &synic) < 0 ? -errno : 0;
	ok &= r == 0;
	CHECK(r == 0, "KVM_ENABLE_CAP(KVM_CAP_HYPERV_SYNIC) on the vCPU -> %s", rstr(r));

	/* Guest OS id first: KVM ignores the hypercall MSR while it is 0. */
	memset(&msrs, 0, sizeof(msrs));
	msrs.h.nmsrs = 2;
	msrs.e[0].index = HV_X64_MSR_GUEST_OS_ID;
	msrs.e[0].data = 0x8100000000000000ull;	/* "open source, Linux" */
	msrs.e[1].index = HV_X64_MSR_HYPERCALL;
	msrs.e[1].data = HCALL_PAGE_GPA | 1;	/* page address | enable */
	memset(page, 0xcc, 16);
	r = ioctl(b->vcpu_fd, KVM_SET_MSRS, &msrs);
	ok &= r == 2;
	CHECK(r == 2, "KVM_SET_MSRS HV_X64_MSR_GUEST_OS_ID, HV_X64_MSR_HYPERCALL -> %d (want 2)", r);
	/* vmmcall on AMD, vmcall on Intel, then ret */
	r = page[0] == 0x0f && page[1] == 0x01 && (page[2] == 0xd9 || page[2] == 0xc1) &&
	    page[3] == 0xc3;
	ok &= r;
	CHECK(r, "KVM wrote the hypercall page: %02x %02x %02x %02x (%s; ret)", page[0], page[1],
	      page[2], page[3], page[2] == 0xc1 ? "vmcall" : "vmmcall");
	return ok;
}

static void test_hyperv(struct guest *b)
{
	enum { CONN_K = 0x11, CONN_U = 0x22, CONN_NONE = 0x33, CONN_DIRECT = 0x44 };
	int ek = efd_new(), eu = efd_new(), ed = efd_new(), i, r, ok;
	struct hvn_doorbell k = db_hv(CONN_K, ek), u = db_user(db_hv(CONN_U, eu));
	struct hvn_doorbell d = db_hv(CONN_DIRECT, eu);
	struct exits *ex = b->ex;
	struct gcode c;
	uint32_t entry;
	uint64_t vk, vu, vd;

	section("Hyper-V SIGNAL_EVENT from a protected-mode guest (VM B)");
	if (!kvm_cap(b->vm_fd, KVM_CAP_HYPERV_EVENTFD) || !kvm_cap(b->vm_fd, KVM_CAP_HYPERV_SYNIC)) {
		/* Linux >= 6.8 may be built without CONFIG_KVM_HYPERV. */
		CHECK(!require_hyperv, "this KVM has KVM_CAP_HYPERV_EVENTFD and KVM_CAP_HYPERV_SYNIC "
		      "(--require-hyperv)");
		r = hvn_doorbell_add(b->hvn, &k);
		CHECK(r == HVN_ROUTE_USER, "no Hyper-V in this KVM: add conn 0x%x -> %s (want user)",
		      CONN_K, rstr(r));
		r = hvn_dispatch(b->hvn, HVN_SPACE_HYPERV_SIGNAL, CONN_K, 0, 0);
		vk = efd_take(ek);
		CHECK(r == 1 && vk == 1, "hvn_dispatch(HYPERV_SIGNAL, 0x%x) -> %d, eventfd %llu (want 1, 1)",
		      CONN_K, r, (unsigned long long)vk);
		hvn_doorbell_del(b->hvn, &k);
		goto out;
	}
	if (!hyperv_setup(b)) {
		CHECK(0, "Hyper-V setup failed: skipping the hypercall checks");
		return;
	}
	r = hvn_doorbell_add(b->hvn, &k);
	CHECK(r == HVN_ROUTE_KERNEL, "add HYPERV_SIGNAL conn 0x%x -> %s (want kernel)", CONN_K, rstr(r));
	r = hvn_doorbell_add(b->hvn, &u);
	CHECK(r == HVN_ROUTE_USER, "add HYPERV_SIGNAL conn 0x%x USERSPACE -> %s (want user)", CONN_U,
	      rstr(r));
	r = raw_hv_eventfd(b->vm_fd, CONN_DIRECT, ed, 0);
	CHECK(r == 0, "KVM_HYPERV_EVENTFD conn 0x%x directly on the VM fd -> %s", CONN_DIRECT, rstr(r));
	r = hvn_doorbell_add(b->hvn, &d);
	CHECK(r == -EEXIST, "hvn add conn 0x%x -> %s (want the kernel's -EEXIST)", CONN_DIRECT, rstr(r));

	/* slots 0-2: CONN_K, 3-4: CONN_U, 5: CONN_NONE, 6: CONN_DIRECT */
	entry = prog_begin(b, &c);
	for (i = 0; i < 3; i++)
		emit_hv_signal(&c, CONN_K, i);
	for (i = 3; i < 5; i++)
		emit_hv_signal(&c, CONN_U, i);
	emit_hv_signal(&c, CONN_NONE, 5);
	emit_hv_signal(&c, CONN_DIRECT, 6);
	prog_end(b, &c);
	memset(b->mem + RESULT_GPA, 0xee, 64);
	r = run_prog(b, entry);
	vk = efd_take(ek);
	vu = efd_take(eu);
	vd = efd_take(ed);
	CHECK(r, "guest: 3x conn 0x%x, 2x 0x%x, 1x 0x%x, 1x 0x%x via the hypercall page, ran to done "
	      "(%.1f ms)", CONN_K, CONN_U, CONN_NONE, CONN_DIRECT, b->run_ms);
	CHECK(vk == 3 && hv_exits(ex, CONN_K) == 0 && guest_result(b, 0) == HV_STATUS_SUCCESS &&
	      guest_result(b, 2) == HV_STATUS_SUCCESS,
	      "kernel conn 0x%x: eventfd %llu (want 3), KVM_EXIT_HYPERV %u (want 0), status 0x%x",
	      CONN_K, (unsigned long long)vk, hv_exits(ex, CONN_K), guest_result(b, 0));
	CHECK(vu == 2 && hv_exits(ex, CONN_U) == 2 && ex->dispatched[HVN_SPACE_HYPERV_SIGNAL] == 2 &&
	      guest_result(b, 3) == HV_STATUS_SUCCESS && guest_result(b, 4) == HV_STATUS_SUCCESS,
	      "userspace conn 0x%x: KVM_EXIT_HYPERV %u (want 2), hvn_dispatch hits %u (want 2), "
	      "eventfd %llu (want 2), status 0x%x", CONN_U, hv_exits(ex, CONN_U),
	      ex->dispatched[HVN_SPACE_HYPERV_SIGNAL], (unsigned long long)vu, guest_result(b, 3));
	CHECK(hv_exits(ex, CONN_NONE) == 1 && guest_result(b, 5) == HV_STATUS_INVALID_PORT_ID,
	      "unknown conn 0x%x: KVM_EXIT_HYPERV %u (want 1), guest got status 0x%x "
	      "(HV_STATUS_INVALID_PORT_ID from the VMM)", CONN_NONE, hv_exits(ex, CONN_NONE),
	      guest_result(b, 5));
	CHECK(vd == 1 && hv_exits(ex, CONN_DIRECT) == 0,
	      "direct conn 0x%x: its eventfd %llu (want 1), exits %u (want 0)", CONN_DIRECT,
	      (unsigned long long)vd, hv_exits(ex, CONN_DIRECT));
	CHECK(ex->hv_total == 3 && ex->io_total == 0 && ex->mmio_total == 0 && ex->other == 0,
	      "exits: hyperv %u (want 3), io %u, mmio %u, other %u", ex->hv_total, ex->io_total,
	      ex->mmio_total, ex->other);

	r = hvn_doorbell_del(b->hvn, &k);
	CHECK(r == 0, "del conn 0x%x -> %s", CONN_K, rstr(r));
	memset(b->mem + RESULT_GPA, 0xee, 64);
	r = run_prog(b, entry);
	vk = efd_take(ek);
	efd_take(eu);
	efd_take(ed);
	for (ok = r, i = 0; i < 3; i++)
		ok &= guest_result(b, i) == HV_STATUS_INVALID_PORT_ID;
	CHECK(ok && vk == 0 && hv_exits(ex, CONN_K) == 3,
	      "after del: conn 0x%x exits to userspace %u times (want 3), eventfd %llu (want 0), "
	      "status 0x%x", CONN_K, hv_exits(ex, CONN_K), (unsigned long long)vk, guest_result(b, 0));
	r = hvn_doorbell_del(b->hvn, &u);
	CHECK(r == 0, "del conn 0x%x -> %s", CONN_U, rstr(r));
	raw_hv_eventfd(b->vm_fd, CONN_DIRECT, ed, 1);
out:
	close(ek);
	close(eu);
	close(ed);
}

/* Program the in-kernel 8259, then wait for interrupts with IF=1. */
static uint32_t prog_irq(struct guest *g)
{
	struct gcode c;
	uint32_t entry = prog_begin(g, &c), loop;
	int irq;

	x86_mov_al(&c, 0x11); x86_out_imm_al(&c, 0x20);	/* ICW1: edge, cascade, ICW4 */
	x86_mov_al(&c, PIC_VECTOR_BASE); x86_out_imm_al(&c, 0x21);	/* ICW2: vectors */
	x86_mov_al(&c, 0x04); x86_out_imm_al(&c, 0x21);	/* ICW3: slave on IRQ2 */
	x86_mov_al(&c, 0x01); x86_out_imm_al(&c, 0x21);	/* ICW4: 8086 mode */
	x86_mov_al(&c, (uint8_t)~(1u << IRQ_EDGE | 1u << IRQ_LEVEL));
	x86_out_imm_al(&c, 0x21);				/* OCW1: unmask ours */
	x86_mov_dx(&c, 0x4d0);					/* ELCR1 */
	x86_mov_al(&c, 1u << IRQ_LEVEL);
	x86_out_dx(&c, 1);					/* IRQ_LEVEL is level */
	x86_out_imm_al(&c, PORT_READY);
	x86_sti(&c);
	loop = gc_here(&c);
	x86_hlt(&c);
	x86_jmp8(&c, loop);

	/* One handler per irq: report, EOI, report again.  The host checks
	 * the resample fd between the two reports. */
	for (irq = IRQ_EDGE; irq <= IRQ_LEVEL; irq++) {
		guest_set_gate(g->mem, IDT_GPA, PIC_VECTOR_BASE + irq, gc_here(&c));
		x86_mov_al(&c, (uint8_t)irq); x86_out_imm_al(&c, PORT_IRQ);
		x86_mov_al(&c, 0x20); x86_out_imm_al(&c, 0x20);	/* non-specific EOI */
		x86_mov_al(&c, (uint8_t)irq); x86_out_imm_al(&c, PORT_EOID);
		x86_iret(&c);
	}
	g->code_next = (gc_here(&c) + 15) & ~15u;
	return entry;
}

static void test_irqfd(struct guest *b)
{
	int fe = efd_new(), fl = efd_new(), rl = efd_new(), pfd[2], r, n;
	struct hvn_irq edge = { .gsi = IRQ_EDGE, .fd = fe, .resample_fd = -1 };
	struct hvn_irq level = { .gsi = IRQ_LEVEL, .fd = fl, .resample_fd = rl };
	struct exits *ex = b->ex;
	uint64_t v;

	section("irqfd with the in-kernel irqchip (VM B)");
	r = hvn_irq_add(b->hvn, &edge);
	CHECK(r == HVN_ROUTE_KERNEL, "hvn_irq_add(gsi %d) -> %s (want kernel)", IRQ_EDGE, rstr(r));
	r = hvn_irq_add(b->hvn, &level);
	CHECK(r == HVN_ROUTE_KERNEL, "hvn_irq_add(gsi %d, resample fd) -> %s (want kernel)", IRQ_LEVEL,
	      rstr(r));
	r = hvn_irq_add(b->hvn, &(struct hvn_irq){ .gsi = 6, .fd = fe, .resample_fd = -1 });
	CHECK(r == -EBUSY, "the same fd on another gsi -> %s (want -EBUSY)", rstr(r));
	if (pipe(pfd) == 0) {
		/* With the irqchip there, KVM's EINVAL means the fd is wrong:
		 * no fallback that would hide it. */
		r = hvn_irq_add(b->hvn, &(struct hvn_irq){ .gsi = 6, .fd = pfd[0], .resample_fd = -1 });
		CHECK(r == -EINVAL, "a pipe instead of an eventfd -> %s (want KVM's -EINVAL)", rstr(r));
		close(pfd[0]);
		close(pfd[1]);
	}

	guest_start(b, prog_irq(b));
	r = guest_run(b, PORT_READY, 20000);
	CHECK(r == PORT_READY, "guest programmed the 8259 (IRQ%d edge, IRQ%d level) (%.1f ms)",
	      IRQ_EDGE, IRQ_LEVEL, b->run_ms);

	for (n = 1; n <= 2; n++) {
		exits_reset(b);
		efd_signal(fe);
		r = guest_run(b, PORT_EOID, 10000);
		CHECK(r == PORT_EOID && b->stop_value == IRQ_EDGE && ex->io[PORT_IRQ] == 1 &&
		      ex->io_last[PORT_IRQ] == IRQ_EDGE,
		      "signal #%d on the gsi %d fd: the guest's IRQ%d handler ran once and EOId (%.1f ms)",
		      n, IRQ_EDGE, IRQ_EDGE, b->run_ms);
	}

	exits_reset(b);
	efd_signal(fl);
	r = guest_run(b, PORT_IRQ, 10000);
	v = efd_take(rl);
	CHECK(r == PORT_IRQ && b->stop_value == IRQ_LEVEL && v == 0,
	      "signal on the gsi %d fd: handler entered, resample fd %llu before EOI (want 0)",
	      IRQ_LEVEL, (unsigned long long)v);
	r = guest_run(b, PORT_EOID, 10000);
	v = efd_take(rl);
	CHECK(r == PORT_EOID && v == 1, "after the guest's EOI: resample fd %llu (want 1)",
	      (unsigned long long)v);
	info("hvn_irq_resample on the kernel line -> %s (KVM resamples it itself)",
	     rstr(hvn_irq_resample(b->hvn, IRQ_LEVEL)));

	r = hvn_irq_del(b->hvn, &edge);
	r = r ? r : hvn_irq_del(b->hvn, &level);
	CHECK(r == 0, "hvn_irq_del both -> %s", rstr(r));
	/* Nothing may arrive now: the run ends by timer, not by a handler. */
	exits_reset(b);
	efd_signal(fe);
	efd_signal(fl);
	r = guest_run(b, -1, 500);
	CHECK(r == -ETIMEDOUT && ex->io[PORT_IRQ] == 0 && efd_take(rl) == 0,
	      "after del, signalling both fds injects nothing (%s after %.0f ms, %u handler runs)",
	      r == -ETIMEDOUT ? "timed out" : rstr(r), b->run_ms, ex->io[PORT_IRQ]);
	close(fe);
	close(fl);
	close(rl);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct guest a, b;
	double t0 = now();
	uint32_t prog;
	int efd_pio, efd_mmio, api, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (r = 1; r < argc; r++) {
		if (!strcmp(argv[r], "--require-hyperv")) {
			require_hyperv = 1;
		} else {
			fprintf(stderr, "usage: %s [--require-hyperv]\n", argv[0]);
			return T_EXIT_FAIL;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigaction(SIGALRM, &sa, NULL);

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("SKIP cannot open /dev/kvm: %s\n", strerror(errno));
		return T_EXIT_SKIP;
	}
	api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	CHECK(api == KVM_API_VERSION, "KVM_GET_API_VERSION = %d", api);

	guest_create(&a, "VM A", 0);
	test_create(&a);
	test_caps(&a);
	efd_pio = efd_new();
	efd_mmio = efd_new();
	prog = prog_basic(&a);
	test_kernel_route(&a, efd_pio, efd_mmio, prog);
	test_delete(&a, efd_pio, efd_mmio, prog);
	close(efd_pio);
	close(efd_mmio);
	test_datamatch(&a);
	test_any_length(&a);
	test_collisions(&a);
	test_batch(&a);
	test_userspace(&a);
	test_many(&a);
	test_xen(&a);
	test_irq_no_irqchip(&a);
	guest_destroy(&a);

	guest_create(&b, "VM B", 1);
	r = hvn_vm_create_kvm(b.vm_fd, &b.hvn);
	CHECK(r == 0, "hvn_vm_create_kvm(VM B fd, with KVM_CREATE_IRQCHIP) = %s", rstr(r));
	if (r)
		fatal("hvn_vm_create_kvm", -r);
	test_hyperv(&b);
	test_irqfd(&b);
	guest_destroy(&b);
	close(kvm_fd);

	info("wall time %.3f s", now() - t0);
	result_line();
	return t_failures ? T_EXIT_FAIL : T_EXIT_PASS;
}
