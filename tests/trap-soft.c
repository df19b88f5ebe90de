// SPDX-License-Identifier: MIT
/*
 * trap-soft.c - the doorbell table's rules, on the userspace adapter, with
 * real eventfds: validation, KVM's collision rules, any-length and
 * datamatch, exact-match delete, all-or-nothing batches, hypercall spaces,
 * 10,000 doorbells, interrupt lines, and the KVM constructor's refusals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hvnotify/trap.h>

#include "support/check.h"

static int new_efd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	REQUIRE(fd >= 0, "eventfd()");
	return fd;
}

/* Read and reset an eventfd's counter: how many times it was signalled. */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static struct hvn_doorbell db(uint32_t space, uint64_t addr, uint32_t len, int fd)
{
	struct hvn_doorbell d = { .space = space, .addr = addr, .len = len, .fd = fd };

	return d;
}

static struct hvn_doorbell db_match(uint32_t space, uint64_t addr, uint32_t len,
				    uint64_t value, int fd)
{
	struct hvn_doorbell d = db(space, addr, len, fd);

	d.flags = HVN_DOORBELL_DATAMATCH;
	d.datamatch = value;
	return d;
}

static void test_validation(struct hvn_vm *vm, int fd)
{
	struct hvn_doorbell d;

	d = db(HVN_SPACE_COUNT, 0x10, 1, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "unknown space -> EINVAL");
	d = db(HVN_SPACE_PIO, 0x10, 1, fd);
	d.flags = 1u << 7;
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "unknown flag -> EINVAL");
	d = db(HVN_SPACE_PIO, 0x10, 3, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "len 3 -> EINVAL");
	d = db(HVN_SPACE_MMIO, 0x1000, 16, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "len 16 -> EINVAL");
	d = db_match(HVN_SPACE_MMIO, 0x1000, 0, 1, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "any-length with datamatch -> EINVAL");
	d = db_match(HVN_SPACE_PIO, 0x10, 1, 0x100, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "datamatch wider than len -> EINVAL");
	d = db(HVN_SPACE_PIO, 0x10, 1, -1);
	CHECK(hvn_doorbell_add(vm, &d) == -EBADF, "negative fd -> EBADF");
	d = db(HVN_SPACE_PIO, 0x10000, 1, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "port 0x10000 -> EINVAL");
	d = db(HVN_SPACE_PIO, 0xffff, 2, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "port 0xffff len 2 runs past 64K -> EINVAL");
	d = db(HVN_SPACE_MMIO, UINT64_MAX - 1, 4, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "MMIO range wraps -> EINVAL");
	d = db(HVN_SPACE_HYPERV_SIGNAL, 1, 4, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "hypercall doorbell with a width -> EINVAL");
	d = db(HVN_SPACE_HYPERV_SIGNAL, 0x1000000, 0, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "Hyper-V connection id > 24 bits -> EINVAL");
	d = db(HVN_SPACE_XEN_EVTCHN, UINT64_C(1) << 32, 0, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "Xen port > 32 bits -> EINVAL");
	d = db(HVN_SPACE_XEN_EVTCHN, 0, 0, fd);
	CHECK(hvn_doorbell_add(vm, &d) == -EINVAL, "Xen port 0 -> EINVAL");
	d = db(HVN_SPACE_PIO, 0x10, 1, 1000);
	CHECK(fcntl(1000, F_GETFD) < 0 && hvn_doorbell_add(vm, &d) == -EBADF, "fd not open -> EBADF");
	CHECK(hvn_doorbell_add(NULL, &d) == -EINVAL, "NULL vm -> EINVAL");
	CHECK(hvn_dispatch(vm, HVN_SPACE_COUNT, 0, 1, 0) == -EINVAL, "dispatch unknown space -> EINVAL");
	CHECK(hvn_dispatch(NULL, HVN_SPACE_PIO, 0, 1, 0) == -EINVAL, "dispatch NULL vm -> EINVAL");
}

static void test_plain_and_datamatch(struct hvn_vm *vm)
{
	int fa = new_efd(), f1 = new_efd(), f2 = new_efd(), fany = new_efd();
	struct hvn_doorbell plain = db(HVN_SPACE_PIO, 0x10, 1, fa);
	struct hvn_doorbell m1 = db_match(HVN_SPACE_PIO, 0x20, 2, 1, f1);
	struct hvn_doorbell m2 = db_match(HVN_SPACE_PIO, 0x20, 2, 2, f2);
	struct hvn_doorbell any = db(HVN_SPACE_MMIO, 0x1000, 0, fany);
	int i, hits;

	CHECK(hvn_doorbell_add(vm, &plain) == HVN_ROUTE_USER, "soft adapter routes PIO to userspace");
	CHECK(hvn_doorbell_add(vm, &m1) == HVN_ROUTE_USER, "PIO 0x20 datamatch 1 added");
	CHECK(hvn_doorbell_add(vm, &m2) == HVN_ROUTE_USER, "PIO 0x20 datamatch 2 added");
	CHECK(hvn_doorbell_add(vm, &any) == HVN_ROUTE_USER, "MMIO 0x1000 any-length added");

	for (i = 0, hits = 0; i < 5; i++)
		hits += hvn_dispatch(vm, HVN_SPACE_PIO, 0x10, 1, (uint64_t)i);
	CHECK(hits == 5 && efd_take(fa) == 5, "5 writes to port 0x10 signal 5 times (any value)");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x10, 2, 0) == 0, "2-byte write to a 1-byte doorbell: no match");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x11, 1, 0) == 0, "write to port 0x11: no match");
	CHECK(hvn_dispatch(vm, HVN_SPACE_MMIO, 0x10, 1, 0) == 0, "same address, other space: no match");
	CHECK(efd_take(fa) == 0, "no stray signal on port 0x10's eventfd");

	hits = hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 1);
	hits += hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 1);
	hits += hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 2);
	CHECK(hits == 3, "three matching datamatch writes dispatched");
	CHECK(efd_take(f1) == 2 && efd_take(f2) == 1, "datamatch 1 fired twice, datamatch 2 once");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 3) == 0, "value 3 matches no datamatch");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 0x10002) == 1 && efd_take(f2) == 1,
	      "value is compared at the access width (0x10002 as 2 bytes is 2)");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 4, 1) == 0, "4-byte write with value 1: no match");
	CHECK(efd_take(f1) == 0, "no stray signal on datamatch 1");

	hits = 0;
	for (i = 0; i < 4; i++)
		hits += hvn_dispatch(vm, HVN_SPACE_MMIO, 0x1000, 1u << i, 0xdead);
	CHECK(hits == 4 && efd_take(fany) == 4, "any-length doorbell fires for 1, 2, 4 and 8-byte writes");
	CHECK(hvn_dispatch(vm, HVN_SPACE_MMIO, 0x1001, 1, 0) == 0, "any-length matches its address only");

	CHECK(hvn_doorbell_lookup(vm, &m1) == HVN_ROUTE_USER, "lookup finds datamatch 1");
	CHECK(hvn_doorbell_del(vm, &m1) == 0, "delete datamatch 1");
	CHECK(hvn_doorbell_lookup(vm, &m1) == -ENOENT, "lookup after delete -> ENOENT");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 1) == 0 && efd_take(f1) == 0,
	      "after delete, the write is no doorbell and nothing fires");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x20, 2, 2) == 1 && efd_take(f2) == 1,
	      "the other datamatch at the same port still fires");

	CHECK(hvn_doorbell_del(vm, &plain) == 0 && hvn_doorbell_del(vm, &m2) == 0 &&
	      hvn_doorbell_del(vm, &any) == 0, "delete the rest");
	close(fa); close(f1); close(f2); close(fany);
}

static void test_collisions(struct hvn_vm *vm)
{
	int f1 = new_efd(), f2 = new_efd();
	struct hvn_doorbell any = db(HVN_SPACE_MMIO, 0x2000, 0, f1);
	struct hvn_doorbell w4 = db(HVN_SPACE_MMIO, 0x3000, 4, f1);
	struct hvn_doorbell m4 = db_match(HVN_SPACE_MMIO, 0x3000, 4, 7, f2);
	struct hvn_doorbell d;

	REQUIRE(hvn_doorbell_add(vm, &any) > 0, "any-length MMIO 0x2000");
	d = db(HVN_SPACE_MMIO, 0x2000, 4, f2);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "len 4 at an any-length address -> EEXIST");
	d = db_match(HVN_SPACE_MMIO, 0x2000, 2, 1, f2);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "datamatch at an any-length address -> EEXIST");
	d = db(HVN_SPACE_MMIO, 0x2000, 0, f2);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "second any-length (other fd) -> EEXIST");
	d = db(HVN_SPACE_PIO, 0x2000, 0, f2);
	CHECK(hvn_doorbell_add(vm, &d) > 0 && hvn_doorbell_del(vm, &d) == 0,
	      "same address in another space does not collide");

	REQUIRE(hvn_doorbell_add(vm, &w4) > 0, "wildcard len 4 at MMIO 0x3000");
	CHECK(hvn_doorbell_add(vm, &m4) == -EEXIST, "datamatch len 4 under a len-4 wildcard -> EEXIST");
	d = db(HVN_SPACE_MMIO, 0x3000, 0, f2);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "any-length over a len-4 record -> EEXIST");
	d = db_match(HVN_SPACE_MMIO, 0x3000, 2, 7, f2);
	CHECK(hvn_doorbell_add(vm, &d) > 0, "len 2 datamatch beside a len-4 wildcard is fine");
	CHECK(hvn_dispatch(vm, HVN_SPACE_MMIO, 0x3000, 2, 7) == 1 && efd_take(f2) == 1 &&
	      hvn_dispatch(vm, HVN_SPACE_MMIO, 0x3000, 4, 7) == 1 && efd_take(f1) == 1,
	      "each width reaches its own record");
	CHECK(hvn_doorbell_del(vm, &d) == 0, "delete len 2 datamatch");
	CHECK(hvn_doorbell_del(vm, &w4) == 0, "delete the wildcard");
	REQUIRE(hvn_doorbell_add(vm, &m4) > 0, "now datamatch 7 len 4 fits");
	d = db_match(HVN_SPACE_MMIO, 0x3000, 4, 7, f1);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "same datamatch, other fd -> EEXIST");
	d = db(HVN_SPACE_MMIO, 0x3000, 4, f1);
	CHECK(hvn_doorbell_add(vm, &d) == -EEXIST, "wildcard over a datamatch of the same width -> EEXIST");
	d = db_match(HVN_SPACE_MMIO, 0x3000, 4, 8, f1);
	CHECK(hvn_doorbell_add(vm, &d) > 0, "other datamatch value, same width: fine");

	/* Delete needs the exact record: KVM would refuse anything else. */
	struct hvn_doorbell wrong = m4;
	wrong.fd = f1;
	CHECK(hvn_doorbell_del(vm, &wrong) == -ENOENT, "delete with another fd -> ENOENT");
	wrong = m4;
	wrong.datamatch = 9;
	CHECK(hvn_doorbell_del(vm, &wrong) == -ENOENT, "delete with another datamatch -> ENOENT");
	wrong = m4;
	wrong.len = 8;
	CHECK(hvn_doorbell_del(vm, &wrong) == -ENOENT, "delete with another length -> ENOENT");
	wrong = m4;
	wrong.flags |= HVN_DOORBELL_USERSPACE;
	CHECK(hvn_doorbell_del(vm, &wrong) == -ENOENT, "delete with other flags -> ENOENT");
	CHECK(hvn_doorbell_del(vm, &m4) == 0, "delete the exact record");
	CHECK(hvn_doorbell_del(vm, &m4) == -ENOENT, "second delete -> ENOENT");
	CHECK(hvn_doorbell_del(vm, &d) == 0, "delete datamatch 8");

	/* Without DATAMATCH the datamatch field is ignored, as in KVM. */
	any.datamatch = 0x1234;
	CHECK(hvn_doorbell_del(vm, &any) == 0, "no-datamatch record deleted whatever datamatch holds");
	close(f1);
	close(f2);
}

static void test_batch(struct hvn_vm *vm)
{
	int f = new_efd(), g = new_efd();
	struct hvn_doorbell existing = db(HVN_SPACE_PIO, 0x80, 1, g);
	struct hvn_doorbell b[4];
	int routes[4], r, i;

	for (i = 0; i < 4; i++)
		b[i] = db(HVN_SPACE_PIO, 0x70 + (unsigned)i, 1, f);
	r = hvn_doorbell_add_batch(vm, b, 4, routes);
	CHECK(r == 0 && routes[0] == HVN_ROUTE_USER && routes[3] == HVN_ROUTE_USER,
	      "batch of 4 added, each routed to userspace (r=%d)", r);
	for (i = 0; i < 4; i++)
		CHECK(hvn_doorbell_del(vm, &b[i]) == 0, "delete batch entry %d", i);

	REQUIRE(hvn_doorbell_add(vm, &existing) > 0, "port 0x80 registered before the batch");
	b[3] = db(HVN_SPACE_PIO, 0x80, 0, f);	/* collides with 0x80 */
	r = hvn_doorbell_add_batch(vm, b, 4, routes);
	CHECK(r == -EEXIST && routes[3] == -EEXIST && routes[0] == 0,
	      "batch whose last entry collides fails with EEXIST at index 3 (r=%d)", r);
	for (i = 0; i < 3; i++)
		CHECK(hvn_doorbell_lookup(vm, &b[i]) == -ENOENT &&
		      hvn_dispatch(vm, HVN_SPACE_PIO, b[i].addr, 1, 0) == 0,
		      "rolled back: entry %d is not registered", i);
	CHECK(efd_take(f) == 0, "nothing of the failed batch ever fired");

	b[3] = b[1];	/* collides inside the batch */
	r = hvn_doorbell_add_batch(vm, b, 4, routes);
	CHECK(r == -EEXIST && routes[3] == -EEXIST, "collision inside the batch -> EEXIST");
	CHECK(hvn_doorbell_lookup(vm, &b[0]) == -ENOENT, "and nothing of it registered");

	b[3] = db(HVN_SPACE_PIO, 0x73, 5, f);	/* invalid */
	r = hvn_doorbell_add_batch(vm, b, 4, routes);
	CHECK(r == -EINVAL && routes[3] == -EINVAL, "invalid entry -> EINVAL at its index");
	CHECK(hvn_doorbell_add_batch(vm, b, 0, NULL) == 0, "empty batch is a no-op");
	CHECK(hvn_doorbell_add_batch(vm, NULL, 1, NULL) == -EINVAL, "NULL array -> EINVAL");
	CHECK(hvn_doorbell_del(vm, &existing) == 0, "delete port 0x80");
	close(f);
	close(g);
}

static void test_hypercall_spaces(struct hvn_vm *vm)
{
	int fh = new_efd(), fx = new_efd(), fc = new_efd();
	struct hvn_doorbell hv = db(HVN_SPACE_HYPERV_SIGNAL, 0x17, 0, fh);
	struct hvn_doorbell xen = db(HVN_SPACE_XEN_EVTCHN, 3, 0, fx);
	struct hvn_doorbell hc = db(HVN_SPACE_HCALL, 0x1234, 0, fc);
	struct hvn_doorbell dup = db(HVN_SPACE_HYPERV_SIGNAL, 0x17, 0, fc);

	CHECK(hvn_doorbell_add(vm, &hv) == HVN_ROUTE_USER, "Hyper-V connection 0x17 added");
	CHECK(hvn_doorbell_add(vm, &xen) == HVN_ROUTE_USER, "Xen port 3 added");
	CHECK(hvn_doorbell_add(vm, &hc) == HVN_ROUTE_USER, "hypercall 0x1234 added");
	CHECK(hvn_doorbell_add(vm, &dup) == -EEXIST, "connection 0x17 twice -> EEXIST");
	CHECK(hvn_dispatch(vm, HVN_SPACE_HYPERV_SIGNAL, 0x17, 0, 0) == 1 && efd_take(fh) == 1,
	      "SIGNAL_EVENT on connection 0x17 fires");
	CHECK(hvn_dispatch(vm, HVN_SPACE_HYPERV_SIGNAL, 0x18, 0, 0) == 0, "connection 0x18: none");
	CHECK(hvn_dispatch(vm, HVN_SPACE_XEN_EVTCHN, 3, 4, 99) == 1 && efd_take(fx) == 1,
	      "EVTCHNOP_send on port 3 fires (width and value ignored)");
	CHECK(hvn_dispatch(vm, HVN_SPACE_HCALL, 0x1234, 0, 0) == 1 && efd_take(fc) == 1,
	      "hypercall 0x1234 fires");
	CHECK(hvn_dispatch(vm, HVN_SPACE_HCALL, 0x17, 0, 0) == 0, "hypercall numbers are their own space");
	CHECK(hvn_doorbell_del(vm, &hv) == 0 && hvn_doorbell_del(vm, &xen) == 0 &&
	      hvn_doorbell_del(vm, &hc) == 0, "delete the hypercall doorbells");
	close(fh); close(fx); close(fc);
}

#define MANY 10000
#define MANY_FDS 100

static void test_many(void)
{
	static struct hvn_doorbell dbs[MANY];
	static int routes[MANY];
	int fds[MANY_FDS], i, r, hits = 0, counted_ok = 1;
	struct hvn_vm *batch_vm, *single_vm;

	REQUIRE(hvn_vm_create_soft(&batch_vm) == 0 && hvn_vm_create_soft(&single_vm) == 0,
		"two soft VMs");
	for (i = 0; i < MANY_FDS; i++)
		fds[i] = new_efd();
	/* Every other doorbell is a datamatch one, so both searches are used. */
	for (i = 0; i < MANY; i++)
		dbs[i] = i & 1 ? db_match(HVN_SPACE_MMIO, 0x100000 + (uint64_t)(i / 2) * 8, 4,
					  (uint64_t)i, fds[i % MANY_FDS])
			       : db(HVN_SPACE_PIO, (uint64_t)i, 2, fds[i % MANY_FDS]);
	r = hvn_doorbell_add_batch(batch_vm, dbs, MANY, routes);
	CHECK(r == 0 && routes[MANY - 1] == HVN_ROUTE_USER, "%d doorbells in one batch (r=%d)", MANY, r);
	for (i = MANY - 1, r = 0; i >= 0; i--)
		r += hvn_doorbell_add(single_vm, &dbs[i]) == HVN_ROUTE_USER;
	CHECK(r == MANY, "%d doorbells added one by one, in reverse order", MANY);

	for (i = 0; i < MANY; i++) {
		const struct hvn_doorbell *d = &dbs[i];

		hits += hvn_dispatch(batch_vm, d->space, d->addr, d->len, d->datamatch);
		hits += hvn_dispatch(single_vm, d->space, d->addr, d->len, d->datamatch);
	}
	CHECK(hits == 2 * MANY, "every doorbell found in both tables (%d hits)", hits);
	for (i = 0; i < MANY_FDS; i++)
		counted_ok &= efd_take(fds[i]) == 2 * MANY / MANY_FDS;
	CHECK(counted_ok, "each eventfd signalled exactly by its own %d doorbells", 2 * MANY / MANY_FDS);
	CHECK(hvn_dispatch(batch_vm, HVN_SPACE_MMIO, 0x100000, 4, 0) == 0,
	      "datamatch 0 at the first MMIO address is not registered (1 is)");

	for (i = 0, r = 0; i < MANY; i += 2)
		r += hvn_doorbell_del(single_vm, &dbs[i]) == 0;
	CHECK(r == MANY / 2, "deleted every PIO doorbell");
	for (i = 0, hits = 0; i < MANY; i++)
		hits += hvn_dispatch(single_vm, dbs[i].space, dbs[i].addr, dbs[i].len, dbs[i].datamatch);
	CHECK(hits == MANY / 2, "only the MMIO half still dispatches (%d)", hits);

	hvn_vm_destroy(batch_vm);
	hvn_vm_destroy(single_vm);
	for (i = 0; i < MANY_FDS; i++)
		close(fds[i]);
}

static void test_irq(struct hvn_vm *vm)
{
	int f = new_efd(), rs = new_efd(), g = new_efd();
	struct hvn_irq line = { .gsi = 5, .fd = f, .resample_fd = rs };
	struct hvn_irq edge = { .gsi = 9, .fd = g, .resample_fd = -1 };
	struct hvn_irq bad = line;

	CHECK(hvn_irq_add(vm, &line) == HVN_ROUTE_USER, "soft adapter: the VMM injects GSI 5");
	bad.gsi = 6;
	CHECK(hvn_irq_add(vm, &bad) == -EBUSY, "one eventfd drives one line -> EBUSY");
	bad = edge;
	bad.resample_fd = bad.fd;
	CHECK(hvn_irq_add(vm, &bad) == -EINVAL, "resample fd equal to the fd -> EINVAL");
	bad = edge;
	bad.flags = 1;
	CHECK(hvn_irq_add(vm, &bad) == -EINVAL, "unknown flags -> EINVAL");
	bad = edge;
	bad.fd = -1;
	CHECK(hvn_irq_add(vm, &bad) == -EBADF, "negative fd -> EBADF");
	bad = edge;
	bad.resample_fd = 1000;
	CHECK(hvn_irq_add(vm, &bad) == -EBADF, "resample fd not open -> EBADF");
	CHECK(hvn_irq_add(vm, &edge) == HVN_ROUTE_USER, "edge line on GSI 9");

	CHECK(hvn_irq_resample(vm, 5) == 1 && efd_take(rs) == 1, "EOI on GSI 5 signals its resample fd");
	CHECK(hvn_irq_resample(vm, 9) == -EINVAL, "GSI 9 has no resample fd -> EINVAL");
	CHECK(hvn_irq_resample(vm, 7) == -ENOENT, "no line on GSI 7 -> ENOENT");

	bad = line;
	bad.gsi = 6;
	CHECK(hvn_irq_del(vm, &bad) == -ENOENT, "delete with another GSI -> ENOENT");
	CHECK(hvn_irq_del(vm, &line) == 0 && hvn_irq_del(vm, &edge) == 0, "delete both lines");
	CHECK(hvn_irq_del(vm, &line) == -ENOENT, "second delete -> ENOENT");
	close(f); close(rs); close(g);
}

static void test_eventfd_edges(struct hvn_vm *vm)
{
	int f = new_efd();
	struct hvn_doorbell d = db(HVN_SPACE_PIO, 0x90, 1, f);
	uint64_t almost = UINT64_MAX - 1;	/* the largest counter an eventfd holds */

	REQUIRE(hvn_doorbell_add(vm, &d) > 0, "port 0x90");
	REQUIRE(write(f, &almost, sizeof(almost)) == sizeof(almost), "saturate the eventfd");
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x90, 1, 0) == 1,
	      "saturated eventfd: a wake-up is already pending, dispatch reports the hit");
	CHECK(efd_take(f) == almost, "counter unchanged");
	close(f);
	CHECK(hvn_dispatch(vm, HVN_SPACE_PIO, 0x90, 1, 0) == -EBADF,
	      "eventfd closed behind the library's back: EBADF is reported, not hidden");
	CHECK(hvn_doorbell_del(vm, &d) == 0, "the record can still be deleted");
}

static void test_kvm_refusals(void)
{
	struct hvn_vm *vm = (struct hvn_vm *)&vm;
	struct hvn_caps caps;
	int f = new_efd(), kvm;

	CHECK(hvn_vm_create_kvm(f, &vm) == -ENOTTY && vm == NULL, "an eventfd is no VM fd -> ENOTTY");
	CHECK(hvn_vm_create_kvm(-1, &vm) == -EBADF, "fd -1 -> EBADF");
	close(f);
	CHECK(hvn_vm_create_kvm(f, &vm) == -EBADF, "a closed fd -> EBADF");
	CHECK(hvn_vm_create_kvm(0, NULL) == -EINVAL, "NULL result pointer -> EINVAL");
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm >= 0) {
		CHECK(hvn_vm_create_kvm(kvm, &vm) == -EINVAL, "/dev/kvm itself is no VM fd -> EINVAL");
		close(kvm);
	}
	REQUIRE(hvn_vm_create_soft(&vm) == 0, "soft VM");
	CHECK(hvn_vm_caps(vm, &caps) == 0 && caps.kernel_spaces == 0 && caps.irqfd == 0,
	      "soft adapter puts nothing in a kernel");
	CHECK(hvn_vm_caps(vm, NULL) == -EINVAL, "caps into NULL -> EINVAL");
	hvn_vm_destroy(vm);
	hvn_vm_destroy(NULL);
}

int main(void)
{
	struct hvn_vm *vm;
	int fd = new_efd();

	REQUIRE(hvn_vm_create_soft(&vm) == 0, "create a soft VM");
	test_validation(vm, fd);
	test_plain_and_datamatch(vm);
	test_collisions(vm);
	test_batch(vm);
	test_hypercall_spaces(vm);
	test_irq(vm);
	test_eventfd_edges(vm);
	hvn_vm_destroy(vm);
	test_many();
	test_kvm_refusals();
	close(fd);
	return t_done("trap-soft");
}
