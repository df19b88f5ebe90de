// SPDX-License-Identifier: MIT
/*
 * kvm-virtqueue.c - the whole path on a real KVM: a guest's virtqueue, its
 * doorbell and its interrupt, with a device backend that never sees an
 * exit.
 *
 * A minimal VMM: 1 MiB of guest RAM in a memfd (so that another process
 * can map it), one vCPU in 32-bit protected mode, the in-kernel irqchip.
 * The guest is a virtio-blk driver a few hundred instructions long that
 * this program writes into its memory: it lays out a split virtqueue in
 * its own RAM (descriptor table, available ring, used ring), tells the
 * VMM where (the only exits it is meant to take, as a virtio transport's
 * queue registers), writes 8 sectors with a pattern, one request and one
 * doorbell at a time, then reads them back, 8 requests and one doorbell,
 * halting until its interrupt handler has seen the used ring move; then it
 * checks every used entry, every status byte and the data read back, and
 * reports.
 *
 *   doorbell   an I/O port write (KVM_IOEVENTFD), or with --doorbell
 *              hyperv a Hyper-V HvSignalEvent hypercall (KVM_HYPERV_EVENTFD,
 *              SynIC enabled): either way an eventfd signalled by the kernel
 *   interrupt  KVM_IRQFD on GSI 5 (the in-kernel 8259's IRQ5)
 *   device     the library's virtio-blk (<hvnotify/dev.h>) on a memfd disk,
 *              run in this process on the library's io_uring loop in a
 *              thread of its own; or with --vhost-user PATH the same device
 *              in hvnotifyd, this VMM being its vhost-user frontend: the
 *              guest's memfd and the two eventfds go to the daemon
 *
 * The VMM counts every exit.  The doorbell never causes one: the kernel
 * signals the eventfd, the device's loop wakes, serves the ring, and its
 * call eventfd raises the guest's interrupt, all without this process's
 * vCPU thread.  The disk image is checked too once the guest is done
 * (--image for the daemon's file).
 *
 * Build: cc -pthread -o kvm-virtqueue kvm-virtqueue.c $(pkg-config --cflags --libs hvnotify)
 *        in examples/ of the source tree (it includes tests/kvm/guest-code.h,
 *        the tiny x86 emitter the real-KVM tests write their guests with)
 * Run:   kvm-virtqueue [--doorbell pio|hyperv] [--vhost-user SOCKET [--image FILE]]
 *        tests/kvm-virtqueue.sh runs it in the nested-KVM harness.
 * Exit status: 0 when the guest verified every request and no doorbell
 * exited to the VMM, 1 if not, 77 without /dev/kvm.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
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

#include <hvnotify/hvnotify.h>

#include "../tests/kvm/guest-code.h"

/* ---- guest-physical layout (paging off: GPA = linear address) ---- */
#define RAM_SIZE	0x100000u
#define GDT_GPA		0x0000u
#define IDT_GPA		0x1000u
#define HCALL_PAGE_GPA	0x2000u		/* Hyper-V hypercall page, KVM fills it */
#define RESULT_GPA	0x3000u		/* what the guest reports */
#define   VERIFIED_GPA	(RESULT_GPA + 0x000)	/* u32 per request: VERIFIED_* bits */
#define   IRQS_GPA	(RESULT_GPA + 0x100)	/* interrupts its handler took */
#define   SEEN_GPA	(RESULT_GPA + 0x104)	/* used->idx its handler saw last */
#define   KICKS_GPA	(RESULT_GPA + 0x108)	/* doorbells it rang */
#define   DONE_GPA	(RESULT_GPA + 0x200)	/* u8 per descriptor: came back used */
#define STUBS_GPA	0x4000u		/* 256 x 16 bytes: "unexpected vector" */
#define DESC_GPA	0x8000u		/* the split ring, written by the guest */
#define AVAIL_GPA	0x9000u
#define USED_GPA	0xa000u
#define CODE_GPA	0x10000u
#define CODE_SIZE	0x8000u
#define HDR_GPA(i)	(0x20000u + 16u * (i))	/* virtio_blk_outhdr */
#define STATUS_GPA(i)	(0x21000u + (i))
#define WBUF_GPA(i)	(0x30000u + 512u * (i))	/* what request i writes */
#define RBUF_GPA(i)	(0x40000u + 512u * (i))	/* where read i lands */
#define STACK_TOP	0xff000u

#define QSIZE		64
#define NWRITE		8		/* requests 0..7 write sectors 0..7 */
#define NREQ		16		/* requests 8..15 read them back */
#define SECTOR		512u
#define DISK_SIZE	(64u * 1024)	/* the in-process disk: 128 sectors */

/* VERIFIED_* bits the guest sets per request, after its checks passed */
#define VERIFIED_USED	1u		/* its head came back once, with the right length */
#define VERIFIED_STATUS	2u		/* VIRTIO_BLK_S_OK */
#define VERIFIED_DATA	4u		/* a read: the bytes are what was written */

/* The queue registers of this VMM's little transport, and the guest's reports. */
#define PORT_Q_SIZE	0xe0
#define PORT_Q_DESC	0xe4
#define PORT_Q_AVAIL	0xe8
#define PORT_Q_USED	0xec
#define PORT_Q_READY	0xf0		/* 1: the device may start the queue */
#define PORT_DONE	0xf4		/* eax = requests verified */
#define PORT_FAIL	0xf5		/* eax = which check failed */
#define PORT_BAD	0xf6		/* al = an unexpected vector */
#define PORT_DOORBELL	0x10		/* 2 bytes, the queue's index: 0 */

#define HV_CONN_ID	0x42		/* the Hyper-V doorbell's connection id */
#define IRQ		5		/* GSI 5 = 8259 IRQ5 */
#define PIC_BASE	0x20		/* master 8259 vectors 0x20..0x27 */

/* Hyper-V TLFS values (the kernel keeps them out of its uapi). */
#define HV_X64_MSR_GUEST_OS_ID		0x40000000u
#define HV_X64_MSR_HYPERCALL		0x40000001u
#define HV_CPUID_VENDOR_AND_MAX		0x40000000u
#define HV_CPUID_INTERFACE		0x40000001u
#define HV_CPUID_SIGNATURE_EAX		0x31237648u	/* "Hv#1" */
#define HVCALL_SIGNAL_EVENT		0x005du
#define HV_HYPERCALL_FAST_BIT		(1u << 16)
#define HV_STATUS_INVALID_PORT_ID	0x0011u

/* virtio */
#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_F_VERSION_1	(UINT64_C(1) << 32)

/* The dword pattern of sector s: seed, then + STEP per dword. */
#define PATTERN_STEP	0x01000193u
static uint32_t pattern_seed(unsigned int s)
{
	return 0x9e3779b9u * (s + 1);
}

/* ------------------------------------------------------------- the VMM -- */

struct vmm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;			/* the memfd, mapped shared */
	int ram_fd;
	struct hvn_vm *hvn;
	int hyperv;			/* the doorbell is a hypercall */
	const char *vu_path;		/* hvnotifyd's socket, or NULL: in-process */
	const char *image;		/* the daemon's disk image, to check */

	int kick_fd, call_fd;		/* the doorbell's and the interrupt's eventfds */
	struct hvn_doorbell db;
	struct hvn_irq irq;

	/* the queue registers, as the guest programmed them */
	uint32_t q_size, q_desc, q_avail, q_used;
	int q_started;

	/* exits, by cause */
	unsigned int exits_io_setup, exits_io_report, exits_doorbell, exits_hcall;
	unsigned int exits_mmio, exits_other, dispatched;
	uint32_t done_value, fail_code;
	int stop;			/* 1 done, 2 failed */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "kvm-virtqueue: %s: %s\n", what, strerror(err));
	exit(1);
}

/* --------------------------------------- the device, in this process -- */
/*
 * The library's virtio-blk, run on the library's loop in a thread of its
 * own, as a VMM runs a device's data plane: the thread owns the loop, the
 * queue and (while it runs) the virtqueue; the vCPU thread reaches it only
 * through an eventfd it polls (quit).
 */
struct inproc {
	struct vmm *vm;
	int disk_fd;			/* the disk image, a memfd */
	struct hvn_dev_blk *blk;
	struct hvn_mem *mem;
	struct hvn_vq *vq;
	pthread_t thread;
	int quit_fd;
	struct hvn_loop_op quit_op;
	int quit, stopped;
	int start_result;		/* for the vCPU thread, under lock */
	int start_done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct hvn_dev_queue_stats stats;
};

static struct inproc dev;

static void on_quit(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	dev.quit = 1;
}

static void on_stopped(struct hvn_dev_queue *q, void *arg)
{
	hvn_dev_queue_stats(q, &dev.stats);
	hvn_dev_queue_free(q);
	dev.stopped = 1;
}

static void on_broken(struct hvn_dev_queue *q, int err, void *arg)
{
	printf("device: the guest broke the queue: %s\n", strerror(-err));
}

static void *device_thread(void *arg)
{
	struct vmm *vm = arg;
	struct hvn_dev_queue_config qc;
	struct hvn_vq_addr addr = {
		.desc = vm->q_desc, .avail = vm->q_avail, .used = vm->q_used,
		.flags = HVN_VQ_ADDR_GPA,	/* the guest programmed guest-physical addresses */
	};
	struct hvn_dev_queue *q = NULL;
	struct hvn_loop *loop;
	int r;

	r = hvn_loop_new(64, &loop);
	if (r == 0)
		r = hvn_loop_poll(loop, &dev.quit_op, dev.quit_fd, POLLIN, 0);
	/* The ring as the driver set it up: its size and addresses, and the
	 * features the VMM acked for it (VERSION_1 only: the guest is tiny). */
	if (r == 0)
		r = hvn_vq_set_size(dev.vq, vm->q_size);
	if (r == 0)
		r = hvn_vq_set_features(dev.vq, VIRTIO_F_VERSION_1);
	if (r == 0)
		r = hvn_vq_set_addr(dev.vq, &addr);
	if (r == 0)
		r = hvn_vq_set_base(dev.vq, 0);
	if (r == 0) {
		memset(&qc, 0, sizeof(qc));
		qc.ops = hvn_dev_blk_ops();
		qc.dev = dev.blk;
		qc.vq = dev.vq;
		qc.index = 0;
		qc.kick_fd = vm->kick_fd;	/* signalled by KVM: the doorbell */
		qc.call_fd = vm->call_fd;	/* an irqfd: KVM raises GSI 5 */
		qc.err_fd = -1;
		qc.broken = on_broken;
		r = hvn_dev_queue_start(loop, &qc, &q);
	}
	pthread_mutex_lock(&dev.lock);
	dev.start_result = r;
	dev.start_done = 1;
	pthread_cond_signal(&dev.cond);
	pthread_mutex_unlock(&dev.lock);
	if (r < 0) {
		hvn_loop_free(loop);
		return NULL;
	}
	while (!dev.quit) {
		r = hvn_loop_run(loop, -1);
		if (r < 0 && r != -EINTR)
			die("hvn_loop_run", -r);
	}
	hvn_dev_queue_stop(q, on_stopped, NULL);
	while (!dev.stopped) {
		r = hvn_loop_run(loop, -1);
		if (r < 0 && r != -EINTR)
			die("hvn_loop_run", -r);
	}
	hvn_loop_free(loop);
	return NULL;
}

static void inproc_setup(struct vmm *vm)
{
	struct hvn_mem_region region = {
		.gpa = 0, .size = RAM_SIZE, .uaddr = (uintptr_t)vm->ram, .fd = vm->ram_fd,
	};
	struct hvn_dev_blk_config bc = { .fd = -1, .serial = "kvm-virtqueue", .num_queues = 1 };
	const struct hvn_dev_ops *ops = hvn_dev_blk_ops();
	uint64_t capacity;
	int r;

	dev.vm = vm;
	dev.disk_fd = memfd_create("kvm-virtqueue-disk", MFD_CLOEXEC);
	if (dev.disk_fd < 0 || ftruncate(dev.disk_fd, DISK_SIZE) < 0)
		die("disk memfd", errno);
	bc.fd = dev.disk_fd;
	r = hvn_dev_blk_new(&bc, &dev.blk);
	if (r < 0)
		die("hvn_dev_blk_new", -r);
	/* The transport's side of the device: what a VMM's virtio model reads
	 * and acks through the same ops table the queues use. */
	ops->get_config(dev.blk, &capacity, 0, sizeof(capacity));
	r = ops->set_features(dev.blk, VIRTIO_F_VERSION_1);
	if (r < 0)
		die("set_features", -r);
	printf("device: virtio-blk (%s, virtio id %u) in this process, on libhvnotify's io_uring loop "
	       "in a thread of its own; disk: a memfd of %u KiB, %llu sectors; features 0x%llx, "
	       "acked VERSION_1\n", ops->name, ops->virtio_id, DISK_SIZE / 1024,
	       (unsigned long long)capacity, (unsigned long long)ops->get_features(dev.blk));

	/* The guest's memory as the device sees it: the same memfd. */
	r = hvn_mem_new(&dev.mem);
	if (r == 0)
		r = hvn_mem_add_region(dev.mem, &region);
	if (r == 0)
		r = hvn_vq_new(dev.mem, &dev.vq);
	if (r < 0)
		die("guest memory for the device", -r);
	dev.quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev.quit_fd < 0)
		die("eventfd", errno);
	dev.quit_op.cb = on_quit;
	pthread_mutex_init(&dev.lock, NULL);
	pthread_cond_init(&dev.cond, NULL);
}

/* The guest wrote QUEUE_READY: start the device's thread and wait until
 * the queue runs, as a device's "queue enable" register would. */
static int inproc_start(struct vmm *vm)
{
	int r;

	if (pthread_create(&dev.thread, NULL, device_thread, vm))
		return -EAGAIN;
	pthread_mutex_lock(&dev.lock);
	while (!dev.start_done)
		pthread_cond_wait(&dev.cond, &dev.lock);
	r = dev.start_result;
	pthread_mutex_unlock(&dev.lock);
	if (r < 0)
		pthread_join(dev.thread, NULL);
	return r;
}

static void inproc_stop(struct vmm *vm)
{
	uint64_t one = 1;

	if (write(dev.quit_fd, &one, sizeof(one)) != sizeof(one))
		die("eventfd write", errno);
	pthread_join(dev.thread, NULL);
	printf("device: %llu requests, %llu completions, %llu kick wake-ups, %llu calls "
	       "(interrupts), %llu used-index publications\n",
	       (unsigned long long)dev.stats.requests, (unsigned long long)dev.stats.completions,
	       (unsigned long long)dev.stats.kicks, (unsigned long long)dev.stats.calls,
	       (unsigned long long)dev.stats.batches);
}

static void inproc_free(void)
{
	hvn_vq_free(dev.vq);
	hvn_mem_free(dev.mem);
	hvn_dev_blk_free(dev.blk);
	close(dev.disk_fd);
	close(dev.quit_fd);
}

/* -------------------------------------- the device, in hvnotifyd -- */

static struct hvn_vu_frontend *fe;

static void vu_setup(struct vmm *vm)
{
	struct hvn_mem_region region = {
		.gpa = 0, .size = RAM_SIZE, .uaddr = (uintptr_t)vm->ram, .fd = vm->ram_fd,
	};
	struct hvn_vu_frontend_info info;
	uint64_t capacity = 0;
	int r, i;

	/* The daemon may still be starting: wait for its socket a little. */
	for (i = 0; i < 100; i++) {
		r = hvn_vu_frontend_connect(&fe, vm->vu_path, NULL);
		if (r != -ENOENT && r != -ECONNREFUSED)
			break;
		usleep(100000);
	}
	if (r < 0)
		die(vm->vu_path, -r);
	hvn_vu_frontend_info(fe, &info);
	r = hvn_vu_frontend_get_config(fe, 0, &capacity, sizeof(capacity));
	if (r < 0)
		die("GET_CONFIG", -r);
	/* The guest is a virtio 1.x driver with no ring features: ack
	 * VERSION_1 alone (the library adds PROTOCOL_FEATURES itself). */
	r = hvn_vu_frontend_set_features(fe, VIRTIO_F_VERSION_1);
	if (r < 0)
		die("SET_FEATURES", -r);
	/* The backend maps the guest's RAM from the memfd that backs it. */
	r = hvn_vu_frontend_set_mem_table(fe, &region, 1, 0);
	if (r < 0)
		die("SET_MEM_TABLE", -r);
	printf("device: virtio-blk in hvnotifyd, over vhost-user on %s; features offered 0x%llx, "
	       "protocol features 0x%llx; disk: %llu sectors; acked VERSION_1; guest RAM shared "
	       "as its memfd\n", vm->vu_path, (unsigned long long)info.features,
	       (unsigned long long)info.protocol_features, (unsigned long long)capacity);
}

static int vu_start(struct vmm *vm)
{
	/* vhost-user speaks the frontend's virtual addresses: the guest's GPA
	 * plus where this VMM mapped its RAM. */
	struct hvn_vu_frontend_vring vr = {
		.num = vm->q_size, .base = 0,
		.addr = {
			.desc = (uintptr_t)vm->ram + vm->q_desc,
			.avail = (uintptr_t)vm->ram + vm->q_avail,
			.used = (uintptr_t)vm->ram + vm->q_used,
		},
		.kick_fd = vm->kick_fd, .call_fd = vm->call_fd, .err_fd = -1,
	};

	return hvn_vu_frontend_start_queue(fe, 0, &vr);
}

static void vu_stop(struct vmm *vm)
{
	uint32_t base = 0;
	int r = hvn_vu_frontend_stop_queue(fe, 0, &base);

	if (r < 0)
		printf("device: GET_VRING_BASE: %s\n", strerror(-r));
	else
		printf("device: stopped by GET_VRING_BASE at ring index %u; hvnotifyd counts its "
		       "requests, kicks and calls in its own log\n", base);
	hvn_vu_frontend_close(fe);
}

/* ------------------------------------------------------------ the guest -- */

static uint32_t fail_label;	/* the guest's "report and stop" code */

/* Go on if the flags say cc, else report code and stop. */
static void check(struct gcode *c, int cc, uint32_t code)
{
	uint32_t skip = x86_jcc8_fwd(c, cc);

	x86_mov_r32(c, X86_EAX, code);
	x86_jmp(c, fail_label);
	gc_land(c, skip);
}

/* Halt until the device has used 'target' entries (the handler wakes us). */
static void emit_wait_used(struct gcode *c, uint16_t target)
{
	uint32_t top, out;

	x86_cli(c);
	top = gc_here(c);
	x86_cmp_mem16(c, USED_GPA + 2, target);	/* used->idx */
	out = x86_jcc8_fwd(c, X86_CC_E);
	/* sti; hlt: the interrupt cannot slip in between (sti's shadow) */
	x86_sti(c);
	x86_hlt(c);
	x86_cli(c);
	x86_jmp8(c, top);
	gc_land(c, out);
	x86_sti(c);
}

static void emit_doorbell(struct gcode *c, int hyperv)
{
	x86_inc_mem32(c, KICKS_GPA);
	if (hyperv) {
		/* Fast HvSignalEvent(connection id) through the hypercall page,
		 * 32-bit ABI: control in EDX:EAX, input in EBX:ECX, status back
		 * in EDX:EAX. */
		x86_mov_r32(c, X86_EAX, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST_BIT);
		x86_mov_r32(c, X86_EDX, 0);
		x86_mov_r32(c, X86_ECX, HV_CONN_ID);
		x86_mov_r32(c, X86_EBX, 0);
		x86_call(c, HCALL_PAGE_GPA);
		x86_cmp_r32(c, X86_EAX, 0);		/* HV_STATUS_SUCCESS */
		check(c, X86_CC_E, 0x700);
	} else {
		/* virtio-pci's notify: the queue's index, written to the port */
		x86_mov_dx(c, PORT_DOORBELL);
		x86_mov_ax(c, 0);
		x86_out_dx(c, 2);
	}
}

/* Request i's three descriptors (3i .. 3i+2) and its header. */
static void emit_request(struct gcode *c, unsigned int i)
{
	int read = i >= NWRITE;
	unsigned int sector = i % NWRITE, d = 3 * i;
	uint32_t data = read ? RBUF_GPA(i - NWRITE) : WBUF_GPA(i);
	struct { uint32_t addr, len; uint16_t flags, next; } desc[3] = {
		{ HDR_GPA(i), 16, VRING_DESC_F_NEXT, (uint16_t)(d + 1) },
		{ data, SECTOR, VRING_DESC_F_NEXT | (read ? VRING_DESC_F_WRITE : 0), (uint16_t)(d + 2) },
		{ STATUS_GPA(i), 1, VRING_DESC_F_WRITE, 0 },
	};
	unsigned int k;

	x86_store_imm32(c, HDR_GPA(i), read ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT);
	x86_store_imm32(c, HDR_GPA(i) + 4, 0);			/* ioprio */
	x86_store_imm32(c, HDR_GPA(i) + 8, sector);		/* sector, u64 */
	x86_store_imm32(c, HDR_GPA(i) + 12, 0);
	x86_store_imm8(c, STATUS_GPA(i), 0xff);			/* the device must write it */
	for (k = 0; k < 3; k++) {
		uint32_t at = DESC_GPA + 16 * (d + k);

		x86_store_imm32(c, at, desc[k].addr);		/* addr, u64 */
		x86_store_imm32(c, at + 4, 0);
		x86_store_imm32(c, at + 8, desc[k].len);
		x86_store_imm32(c, at + 12, desc[k].flags | (uint32_t)desc[k].next << 16);
	}
	/* The head in the available ring's slot i; published by idx later.
	 * x86 keeps stores in order, so no fence: virtio_wmb() is a compiler
	 * barrier there, and this code has no compiler. */
	x86_store_imm16(c, AVAIL_GPA + 4 + 2 * i, (uint16_t)d);
}

static uint32_t emit_guest(struct vmm *vm)
{
	struct gcode c;
	uint32_t entry, handler, spurious, fill;
	unsigned int i, j, v;

	/* Every vector reports itself: a fault says so instead of hanging. */
	for (v = 0; v < 256; v++) {
		gc_init(&c, vm->ram, STUBS_GPA + 16 * v, 16);
		x86_mov_al(&c, (uint8_t)v);
		x86_out_imm_al(&c, PORT_BAD);
		x86_hlt(&c);
		x86_jmp8(&c, gc_here(&c) - 1);
		guest_set_gate(vm->ram, IDT_GPA, v, STUBS_GPA + 16 * v);
	}
	guest_write_gdt(vm->ram, GDT_GPA);
	gc_init(&c, vm->ram, CODE_GPA, CODE_SIZE);

	/* The failure path: the code is in eax. */
	fail_label = gc_here(&c);
	x86_out_imm_eax(&c, PORT_FAIL);
	x86_hlt(&c);
	x86_jmp8(&c, fail_label);

	/* The interrupt handler: count, note the used index it saw, EOI. */
	handler = gc_here(&c);
	x86_push_eax(&c);
	x86_inc_mem32(&c, IRQS_GPA);
	x86_load16(&c, X86_EAX, USED_GPA + 2);
	x86_store_r32(&c, X86_EAX, SEEN_GPA);
	x86_mov_al(&c, 0x20);
	x86_out_imm_al(&c, 0x20);			/* non-specific EOI */
	x86_pop_eax(&c);
	x86_iret(&c);
	guest_set_gate(vm->ram, IDT_GPA, PIC_BASE + IRQ, handler);
	/* The 8259's spurious IRQ7 wants no EOI: ignore it. */
	spurious = gc_here(&c);
	x86_iret(&c);
	guest_set_gate(vm->ram, IDT_GPA, PIC_BASE + 7, spurious);

	entry = gc_here(&c);
	/* The 8259: vectors 0x20.., only our IRQ unmasked, edge-triggered. */
	x86_mov_al(&c, 0x11); x86_out_imm_al(&c, 0x20);	/* ICW1: edge, cascade, ICW4 */
	x86_mov_al(&c, PIC_BASE); x86_out_imm_al(&c, 0x21);	/* ICW2: vector base */
	x86_mov_al(&c, 0x04); x86_out_imm_al(&c, 0x21);	/* ICW3: slave on IRQ2 */
	x86_mov_al(&c, 0x01); x86_out_imm_al(&c, 0x21);	/* ICW4: 8086 mode */
	x86_mov_al(&c, (uint8_t)~(1u << IRQ)); x86_out_imm_al(&c, 0x21);	/* OCW1: mask */
	x86_sti(&c);

	/* The data: sector s gets seed(s), seed(s) + STEP, ... per dword. */
	for (i = 0; i < NWRITE; i++) {
		x86_mov_r32(&c, X86_EDI, WBUF_GPA(i));
		x86_mov_r32(&c, X86_ECX, SECTOR / 4);
		x86_mov_r32(&c, X86_EAX, pattern_seed(i));
		fill = gc_here(&c);
		x86_stosd(&c);
		x86_add_eax(&c, PATTERN_STEP);
		x86_loop(&c, fill);
	}
	/* Poison where the reads land: stale bytes cannot pass for data. */
	x86_mov_r32(&c, X86_EDI, RBUF_GPA(0));
	x86_mov_r32(&c, X86_ECX, NWRITE * SECTOR / 4);
	x86_mov_r32(&c, X86_EAX, 0xdeadbeef);
	x86_rep_stosd(&c);

	/* Tell the device where the ring is, and that it may start. */
	x86_mov_r32(&c, X86_EAX, QSIZE);      x86_out_imm_eax(&c, PORT_Q_SIZE);
	x86_mov_r32(&c, X86_EAX, DESC_GPA);   x86_out_imm_eax(&c, PORT_Q_DESC);
	x86_mov_r32(&c, X86_EAX, AVAIL_GPA);  x86_out_imm_eax(&c, PORT_Q_AVAIL);
	x86_mov_r32(&c, X86_EAX, USED_GPA);   x86_out_imm_eax(&c, PORT_Q_USED);
	x86_mov_r32(&c, X86_EAX, 1);          x86_out_imm_eax(&c, PORT_Q_READY);

	/* Writes: publish each one and ring the doorbell for it. */
	for (i = 0; i < NWRITE; i++) {
		emit_request(&c, i);
		x86_store_imm16(&c, AVAIL_GPA + 2, (uint16_t)(i + 1));	/* avail->idx */
		emit_doorbell(&c, vm->hyperv);
	}
	emit_wait_used(&c, NWRITE);

	/* Reads: all eight, then one doorbell. */
	for (i = NWRITE; i < NREQ; i++)
		emit_request(&c, i);
	x86_store_imm16(&c, AVAIL_GPA + 2, NREQ);
	emit_doorbell(&c, vm->hyperv);
	emit_wait_used(&c, NREQ);

	/* The used ring: each entry a head we made available, with the bytes
	 * a blk request writes (1: the status; 513: the sector and status). */
	for (j = 0; j < NREQ; j++) {
		uint32_t is_read, len_ok;

		x86_load32(&c, X86_EAX, USED_GPA + 4 + 8 * j);		/* id */
		x86_load32(&c, X86_ECX, USED_GPA + 4 + 8 * j + 4);	/* len */
		x86_cmp_r32(&c, X86_EAX, 3 * NREQ);
		check(&c, X86_CC_B, 0x100 | j);			/* a head we never made */
		x86_cmp_r32(&c, X86_EAX, 3 * NWRITE);
		is_read = x86_jcc8_fwd(&c, X86_CC_AE);
		x86_cmp_r32(&c, X86_ECX, 1);
		check(&c, X86_CC_E, 0x200 | j);			/* a write's length */
		len_ok = x86_jmp8_fwd(&c);
		gc_land(&c, is_read);
		x86_cmp_r32(&c, X86_ECX, SECTOR + 1);
		check(&c, X86_CC_E, 0x300 | j);			/* a read's length */
		gc_land(&c, len_ok);
		x86_store_imm8_idx(&c, X86_EAX, DONE_GPA, 1);
	}
	/* Each request: its head came back, its status is OK, a read's data
	 * is what its sector's write carried. */
	for (i = 0; i < NREQ; i++) {
		x86_cmp_mem8(&c, DONE_GPA + 3 * i, 1);
		check(&c, X86_CC_E, 0x400 | i);			/* never used: some head came twice */
		x86_cmp_mem8(&c, STATUS_GPA(i), 0);
		check(&c, X86_CC_E, 0x500 | i);			/* VIRTIO_BLK_S_OK */
		if (i >= NWRITE) {
			x86_mov_r32(&c, X86_ESI, WBUF_GPA(i - NWRITE));
			x86_mov_r32(&c, X86_EDI, RBUF_GPA(i - NWRITE));
			x86_mov_r32(&c, X86_ECX, SECTOR / 4);
			x86_repe_cmpsd(&c);
			check(&c, X86_CC_E, 0x600 | i);		/* the data read back */
		}
		x86_store_imm32(&c, VERIFIED_GPA + 4 * i, VERIFIED_USED | VERIFIED_STATUS |
				(i >= NWRITE ? VERIFIED_DATA : 0));
	}
	x86_cli(&c);
	x86_mov_r32(&c, X86_EAX, NREQ);
	x86_out_imm_eax(&c, PORT_DONE);
	x86_hlt(&c);
	return entry;
}

/* ----------------------------------------------------------- the vCPU -- */

static volatile sig_atomic_t timed_out;
static struct kvm_run *volatile timer_run;

static void on_alarm(int sig)
{
	timed_out = 1;
	/* KVM_RUN checks immediate_exit on entry: a timer that fires just
	 * before the ioctl still stops it. */
	if (timer_run)
		timer_run->immediate_exit = 1;
}

static void hyperv_setup(struct vmm *vm)
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

	if (ioctl(vm->vm, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_EVENTFD) <= 0 ||
	    ioctl(vm->vm, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV_SYNIC) <= 0) {
		printf("kvm-virtqueue: this KVM has no Hyper-V SIGNAL_EVENT eventfds\n");
		exit(1);
	}
	/* The Hyper-V CPUID leaves make the vCPU a Hyper-V guest. */
	memset(&cpuid, 0, sizeof(cpuid));
	cpuid.h.nent = 2;
	cpuid.e[0].function = HV_CPUID_VENDOR_AND_MAX;
	cpuid.e[0].eax = HV_CPUID_INTERFACE;
	memcpy(&cpuid.e[0].ebx, "Micr", 4);
	memcpy(&cpuid.e[0].ecx, "osof", 4);
	memcpy(&cpuid.e[0].edx, "t Hv", 4);
	cpuid.e[1].function = HV_CPUID_INTERFACE;
	cpuid.e[1].eax = HV_CPUID_SIGNATURE_EAX;
	if (ioctl(vm->vcpu, KVM_SET_CPUID2, &cpuid) < 0)
		die("KVM_SET_CPUID2", errno);
	/* Without an active SynIC, KVM answers SIGNAL_EVENT itself instead of
	 * looking up its eventfds. */
	if (ioctl(vm->vcpu, KVM_ENABLE_CAP, &synic) < 0)
		die("KVM_ENABLE_CAP(KVM_CAP_HYPERV_SYNIC)", errno);
	/* The guest OS id first (KVM ignores the hypercall MSR while it is 0),
	 * then the hypercall page, which KVM fills with vmmcall/vmcall; ret. */
	memset(&msrs, 0, sizeof(msrs));
	msrs.h.nmsrs = 2;
	msrs.e[0].index = HV_X64_MSR_GUEST_OS_ID;
	msrs.e[0].data = 0x8100000000000000ull;	/* "open source, Linux" */
	msrs.e[1].index = HV_X64_MSR_HYPERCALL;
	msrs.e[1].data = HCALL_PAGE_GPA | 1;
	if (ioctl(vm->vcpu, KVM_SET_MSRS, &msrs) != 2)
		die("KVM_SET_MSRS (Hyper-V guest OS id, hypercall page)", errno);
}

static void vm_create(struct vmm *vm)
{
	struct kvm_userspace_memory_region slot;
	struct kvm_sregs sregs;
	int size;

	vm->vm = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	if (vm->vm < 0)
		die("KVM_CREATE_VM", errno);
	/* The 8259s and IOAPIC in the kernel: what irqfd injects into. */
	if (ioctl(vm->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP", errno);
	/* Guest RAM in a memfd: hvnotifyd maps the same pages. */
	vm->ram_fd = memfd_create("kvm-virtqueue-ram", MFD_CLOEXEC);
	if (vm->ram_fd < 0 || ftruncate(vm->ram_fd, RAM_SIZE) < 0)
		die("memfd", errno);
	vm->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vm->ram_fd, 0);
	if (vm->ram == MAP_FAILED)
		die("mmap", errno);
	slot = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE,
		.userspace_addr = (uintptr_t)vm->ram,
	};
	if (ioctl(vm->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		die("KVM_SET_USER_MEMORY_REGION", errno);
	vm->vcpu = ioctl(vm->vm, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU", errno);
	size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE", errno);
	vm->run_size = (size_t)size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run", errno);
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS", errno);
	guest_sregs_flat32(&sregs, GDT_GPA, IDT_GPA);
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS", errno);
	if (vm->hyperv)
		hyperv_setup(vm);
}

/* The VMM's side of the queue registers: the only I/O it emulates. */
static void on_io_out(struct vmm *vm, uint16_t port, uint32_t value)
{
	int r;

	switch (port) {
	case PORT_Q_SIZE:  vm->q_size = value;  vm->exits_io_setup++; return;
	case PORT_Q_DESC:  vm->q_desc = value;  vm->exits_io_setup++; return;
	case PORT_Q_AVAIL: vm->q_avail = value; vm->exits_io_setup++; return;
	case PORT_Q_USED:  vm->q_used = value;  vm->exits_io_setup++; return;
	case PORT_Q_READY:
		vm->exits_io_setup++;
		printf("transport: the guest programmed queue 0: %u entries, desc 0x%x, avail 0x%x, "
		       "used 0x%x; starting the device\n", vm->q_size, vm->q_desc, vm->q_avail,
		       vm->q_used);
		r = vm->vu_path ? vu_start(vm) : inproc_start(vm);
		if (r < 0) {
			printf("transport: the device did not start: %s\n", strerror(-r));
			vm->stop = 2;
			return;
		}
		vm->q_started = 1;
		return;
	case PORT_DONE:
		vm->exits_io_report++;
		vm->done_value = value;
		vm->stop = 1;
		return;
	case PORT_FAIL:
		vm->exits_io_report++;
		vm->fail_code = value;
		vm->stop = 2;
		return;
	case PORT_BAD:
		printf("guest: unexpected vector 0x%x\n", value & 0xff);
		vm->stop = 2;
		return;
	}
	vm->exits_other++;
	printf("guest: write to unknown port 0x%x\n", port);
}

static void run_guest(struct vmm *vm, uint32_t entry)
{
	struct kvm_regs regs = { .rip = entry, .rsp = STACK_TOP, .rflags = 0x2 };
	struct itimerval it = { .it_value = { .tv_sec = 20 } };
	struct kvm_run *run = vm->run;

	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS", errno);
	timer_run = run;
	setitimer(ITIMER_REAL, &it, NULL);
	while (!vm->stop) {
		uint32_t value = 0;

		if (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR && timed_out) {
				printf("kvm-virtqueue: the guest did not finish in 20 s\n");
				vm->stop = 2;
				break;
			}
			if (errno == EINTR)
				continue;
			die("KVM_RUN", errno);
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction != KVM_EXIT_IO_OUT || run->io.count != 1) {
				vm->exits_other++;
				continue;
			}
			memcpy(&value, (uint8_t *)run + run->io.data_offset, run->io.size);
			if (run->io.port == PORT_DOORBELL) {
				/* Only where the kernel could not take it. */
				vm->exits_doorbell++;
				if (hvn_dispatch(vm->hvn, HVN_SPACE_PIO, PORT_DOORBELL, run->io.size,
						 value) == 1)
					vm->dispatched++;
				continue;
			}
			on_io_out(vm, run->io.port, value);
			continue;
		case KVM_EXIT_HYPERV:
			if (run->hyperv.type != KVM_EXIT_HYPERV_HCALL) {
				vm->exits_other++;	/* SynIC MSR writes: this guest makes none */
				continue;
			}
			vm->exits_hcall++;
			if (hvn_dispatch(vm->hvn, HVN_SPACE_HYPERV_SIGNAL,
					 run->hyperv.u.hcall.params[0] & KVM_HYPERV_CONN_ID_MASK,
					 0, 0) == 1) {
				vm->dispatched++;
				run->hyperv.u.hcall.result = 0;
			} else {
				run->hyperv.u.hcall.result = HV_STATUS_INVALID_PORT_ID;
			}
			continue;
		case KVM_EXIT_MMIO:
			vm->exits_mmio++;
			continue;
		default:
			vm->exits_other++;
			printf("kvm-virtqueue: unexpected exit %u\n", run->exit_reason);
			vm->stop = 2;
		}
	}
	setitimer(ITIMER_REAL, &(struct itimerval){ { 0, 0 }, { 0, 0 } }, NULL);
	timer_run = NULL;
}

/* Where a registration went; 'how' names the kernel's mechanism. */
static const char *route_name(int route, const char *how)
{
	static char buf[4][80];
	static unsigned int n;
	char *b = buf[n++ % 4];

	if (route == HVN_ROUTE_KERNEL)
		snprintf(b, sizeof(buf[0]), "the kernel (%s): no exit reaches the VMM", how);
	else if (route == HVN_ROUTE_USER)
		snprintf(b, sizeof(buf[0]), "userspace: its exits go through hvn_dispatch()");
	else
		snprintf(b, sizeof(buf[0]), "%s", strerror(-route));
	return b;
}

/* Reads the disk the device wrote; returns the sectors that hold their pattern. */
static unsigned int check_disk(int fd)
{
	unsigned int s, k, good = 0;
	uint32_t buf[SECTOR / 4];

	for (s = 0; s < NWRITE; s++) {
		uint32_t want = pattern_seed(s);

		if (pread(fd, buf, SECTOR, (off_t)s * SECTOR) != SECTOR)
			break;
		for (k = 0; k < SECTOR / 4 && buf[k] == want; k++)
			want += PATTERN_STEP;
		good += k == SECTOR / 4;
	}
	return good;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvm-virtqueue [--doorbell pio|hyperv] [--vhost-user SOCKET [--image FILE]]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "doorbell", required_argument, NULL, 'd' },
		{ "vhost-user", required_argument, NULL, 'u' },
		{ "image", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmm vm = { 0 };
	struct sigaction sa;
	unsigned int i, j, verified = 0, disk_good = 0;
	uint32_t used_id[NREQ], used_len[NREQ];
	int opt, r, db_route, irq_route, ok;
	uint32_t entry;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "d:u:i:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (!strcmp(optarg, "hyperv")) {
				vm.hyperv = 1;
			} else if (strcmp(optarg, "pio")) {
				usage(stderr);
				return 2;
			}
			break;
		case 'u':
			vm.vu_path = optarg;
			break;
		case 'i':
			vm.image = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigaction(SIGALRM, &sa, NULL);

	vm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm.kvm < 0) {
		printf("kvm-virtqueue: no /dev/kvm (%s)\n", strerror(errno));
		return 77;
	}
	vm_create(&vm);
	r = hvn_vm_create_kvm(vm.vm, &vm.hvn);
	if (r < 0)
		die("hvn_vm_create_kvm", -r);
	printf("kvm-virtqueue: a VM with 1 MiB of RAM in a memfd, one 32-bit vCPU, the in-kernel "
	       "8259/IOAPIC; doorbell: %s; device: %s\n",
	       vm.hyperv ? "Hyper-V SIGNAL_EVENT hypercall" : "I/O port write",
	       vm.vu_path ? "virtio-blk in hvnotifyd (vhost-user)" : "virtio-blk in this process");

	/* The doorbell and the interrupt, each an eventfd the kernel drives. */
	vm.kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm.kick_fd < 0 || vm.call_fd < 0)
		die("eventfd", errno);
	if (vm.hyperv)
		vm.db = (struct hvn_doorbell){ .space = HVN_SPACE_HYPERV_SIGNAL, .addr = HV_CONN_ID,
					       .fd = vm.kick_fd };
	else
		vm.db = (struct hvn_doorbell){ .space = HVN_SPACE_PIO, .addr = PORT_DOORBELL,
					       .len = 2, .flags = HVN_DOORBELL_DATAMATCH,
					       .datamatch = 0, .fd = vm.kick_fd };
	db_route = hvn_doorbell_add(vm.hvn, &vm.db);
	vm.irq = (struct hvn_irq){ .gsi = IRQ, .fd = vm.call_fd, .resample_fd = -1 };
	irq_route = hvn_irq_add(vm.hvn, &vm.irq);
	if (vm.hyperv)
		printf("doorbell: HvSignalEvent(connection 0x%x) -> %s\n", HV_CONN_ID,
		       route_name(db_route, "KVM_HYPERV_EVENTFD"));
	else
		printf("doorbell: port 0x%x, 2 bytes, value 0 (queue 0) -> %s\n", PORT_DOORBELL,
		       route_name(db_route, "KVM_IOEVENTFD"));
	printf("interrupt: GSI %d (8259 IRQ%d) -> %s\n", IRQ, IRQ,
	       route_name(irq_route, "KVM_IRQFD"));
	if (db_route < 0 || irq_route < 0)
		return 1;

	if (vm.vu_path)
		vu_setup(&vm);
	else
		inproc_setup(&vm);

	entry = emit_guest(&vm);
	run_guest(&vm, entry);

	if (vm.q_started) {
		if (vm.vu_path)
			vu_stop(&vm);
		else
			inproc_stop(&vm);
	}

	/* What the guest reports, from its memory, next to the used ring it
	 * checked. */
	for (j = 0; j < NREQ; j++) {
		memcpy(&used_id[j], vm.ram + USED_GPA + 4 + 8 * j, 4);
		memcpy(&used_len[j], vm.ram + USED_GPA + 8 + 8 * j, 4);
	}
	for (i = 0; i < NREQ; i++) {
		uint32_t v;

		memcpy(&v, vm.ram + VERIFIED_GPA + 4 * i, 4);
		if (v != (VERIFIED_USED | VERIFIED_STATUS | (i >= NWRITE ? VERIFIED_DATA : 0)))
			continue;
		verified++;
		for (j = 0; j < NREQ && used_id[j] != 3 * i; j++)
			;
		printf("guest: request %2u %-5s sector %u verified: head %2u is used entry %2u "
		       "(len %u), status OK%s\n", i, i < NWRITE ? "write" : "read", i % NWRITE,
		       3 * i, j, j < NREQ ? used_len[j] : 0,
		       i >= NWRITE ? ", 512 bytes equal to what was written" : "");
	}
	printf("guest: used ring order:");
	for (j = 0; j < NREQ; j++)
		printf(" %u", used_id[j]);
	printf("\n");
	{
		uint32_t irqs, kicks, seen;

		memcpy(&irqs, vm.ram + IRQS_GPA, 4);
		memcpy(&kicks, vm.ram + KICKS_GPA, 4);
		memcpy(&seen, vm.ram + SEEN_GPA, 4);
		printf("guest: %u of %u requests verified; %u doorbells rung; %u interrupts taken, "
		       "the last one saw used->idx %u\n", verified, NREQ, kicks, irqs, seen);
	}
	if (vm.stop == 2 && vm.fail_code)
		printf("guest: FAILED check 0x%x (%s, entry or request %u)\n", vm.fail_code,
		       (const char *[]){ "?", "a used head it never made", "a write's used length",
					 "a read's used length", "a request never used",
					 "a status not OK", "data read back differs",
					 "the hypercall failed" }[(vm.fail_code >> 8) & 7],
		       vm.fail_code & 0xff);
	printf("VMM exits: queue setup I/O %u, report I/O %u, doorbell %s %u, MMIO %u, other %u "
	       "(hvn_dispatch signalled %u)\n", vm.exits_io_setup, vm.exits_io_report,
	       vm.hyperv ? "hypercall" : "I/O", vm.hyperv ? vm.exits_hcall : vm.exits_doorbell,
	       vm.exits_mmio, vm.exits_other, vm.dispatched);

	/* The disk, from the host's side: what the device wrote there. */
	if (!vm.vu_path) {
		disk_good = check_disk(dev.disk_fd);
		printf("host: the memfd disk holds %u of %u sectors with the guest's pattern\n",
		       disk_good, NWRITE);
	} else if (vm.image) {
		int fd = open(vm.image, O_RDONLY | O_CLOEXEC);

		disk_good = fd < 0 ? 0 : check_disk(fd);
		printf("host: %s holds %u of %u sectors with the guest's pattern\n", vm.image,
		       disk_good, NWRITE);
		if (fd >= 0)
			close(fd);
	} else {
		disk_good = NWRITE;
		printf("host: no --image: the daemon's disk is not checked\n");
	}

	hvn_irq_del(vm.hvn, &vm.irq);
	hvn_doorbell_del(vm.hvn, &vm.db);
	hvn_vm_destroy(vm.hvn);
	if (!vm.vu_path)
		inproc_free();

	ok = vm.stop == 1 && vm.done_value == NREQ && verified == NREQ && disk_good == NWRITE &&
	     db_route == HVN_ROUTE_KERNEL && irq_route == HVN_ROUTE_KERNEL &&
	     vm.exits_doorbell == 0 && vm.exits_hcall == 0 && vm.exits_mmio == 0 &&
	     vm.exits_other == 0;
	if (ok)
		printf("kvm-virtqueue: ok, %u requests verified by the guest, 0 doorbell exits to the "
		       "VMM (%u exits in all: %u queue setup, %u report)\n", verified,
		       vm.exits_io_setup + vm.exits_io_report, vm.exits_io_setup, vm.exits_io_report);
	else
		printf("kvm-virtqueue: FAIL\n");
	munmap(vm.run, vm.run_size);
	close(vm.vcpu);
	close(vm.vm);
	munmap(vm.ram, RAM_SIZE);
	close(vm.ram_fd);
	close(vm.kick_fd);
	close(vm.call_fd);
	close(vm.kvm);
	return ok ? 0 : 1;
}
