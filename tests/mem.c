// SPDX-License-Identifier: MIT
/*
 * mem.c - guest memory regions and translation (<hvnotify/mem.h>), on real
 * memfds: mapping with offsets, bounds, cross-region ranges, overlaps,
 * limits, guard pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hvnotify/mem.h>

#include "support/expect.h"
#include "../lib/guest/guest_mem.h"

#define PAGE 4096ull

static struct hvn_mem *new_mem(void)
{
	struct hvn_mem *mem;

	EXPECT_EQ(hvn_mem_new(&mem), 0);
	return mem;
}

/* The library's pointer and the guest's pointer name the same bytes. */
static void expect_same_bytes(uint8_t *lib, uint8_t *guest, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		guest[i] = (uint8_t)(i * 13 + 1);
		EXPECT_EQ(lib[i], (uint8_t)(i * 13 + 1));
	}
	lib[0] ^= 0xff;
	EXPECT_EQ(guest[0], (uint8_t)(1 ^ 0xff));
}

static void test_empty(void)
{
	struct hvn_mem *mem = new_mem();
	struct iovec iov[2];

	EXPECT(hvn_mem_gpa_to_ptr(mem, 0, 1) == NULL);
	EXPECT(hvn_mem_uva_to_ptr(mem, 0x1000, 1) == NULL);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0, 1, iov, 2), -EFAULT);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0, 0, iov, 2), 0);
	EXPECT_EQ(hvn_mem_new(NULL), -EINVAL);
	hvn_mem_free(mem);
	hvn_mem_free(NULL);
}

static void test_bounds_and_offset(void)
{
	struct hvn_mem *mem = new_mem();
	struct hvn_mem_region r;
	struct gmem g;
	uint8_t *p;

	gmem_init(&g);
	/* An mmap offset that is not page aligned (vhost-user allows any). */
	EXPECT_EQ(gmem_add(&g, 0x100000, 3 * PAGE, 3 * PAGE + 100), 0);
	gmem_region(&g, 0, &r);
	EXPECT_EQ(hvn_mem_add_region(mem, &r), 0);

	p = hvn_mem_gpa_to_ptr(mem, 0x100000, 3 * PAGE);
	EXPECT_PTR(p);
	EXPECT(p != g.r[0].host);	/* our own mapping, not the frontend's */
	expect_same_bytes(p, g.r[0].host, 3 * PAGE);

	/* First and last byte, and one byte beyond, on both ends. */
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000, 1) == p);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000 + 3 * PAGE - 1, 1) == p + 3 * PAGE - 1);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000 + 3 * PAGE - 1, 2) == NULL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000 + 3 * PAGE, 1) == NULL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000 - 1, 1) == NULL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000 - 1, 2) == NULL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000, 3 * PAGE + 1) == NULL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x100000, UINT64_MAX) == NULL);

	/* Frontend virtual addresses: the same bytes, the same bounds. */
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr, 1) == p);
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr + 10, 4) == p + 10);
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr + 3 * PAGE - 4, 4) == p + 3 * PAGE - 4);
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr + 3 * PAGE - 4, 5) == NULL);
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr - 1, 1) == NULL);
	EXPECT(hvn_mem_uva_to_ptr(mem, r.uaddr + 3 * PAGE, 1) == NULL);

	hvn_mem_free(mem);
	gmem_free(&g);
}

static void test_cross_region(void)
{
	struct hvn_mem *mem = new_mem();
	struct iovec iov[4];
	struct gmem g;
	uint8_t *a, *b, *c;

	gmem_init(&g);
	/* Three adjacent regions, each its own memfd, then a hole, then one more. */
	EXPECT_EQ(gmem_add(&g, 0x10000, PAGE, 0), 0);
	EXPECT_EQ(gmem_add(&g, 0x11000, PAGE, 100), 1);
	EXPECT_EQ(gmem_add(&g, 0x12000, PAGE, 0), 2);
	EXPECT_EQ(gmem_add(&g, 0x14000, PAGE, 0), 3);
	EXPECT_EQ(gmem_attach(&g, mem), 0);
	a = hvn_mem_gpa_to_ptr(mem, 0x10000, PAGE);
	b = hvn_mem_gpa_to_ptr(mem, 0x11000, PAGE);
	c = hvn_mem_gpa_to_ptr(mem, 0x12000, PAGE);
	EXPECT(a && b && c);

	/* A buffer across the boundary of two regions: two entries. */
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x10ff0, 0x20, iov, 4), 2);
	EXPECT(iov[0].iov_base == a + 0xff0);
	EXPECT_EQ(iov[0].iov_len, 0x10);
	EXPECT(iov[1].iov_base == b);
	EXPECT_EQ(iov[1].iov_len, 0x10);
	g.r[0].host[0xff0] = 0x5a;
	g.r[1].host[0] = 0xa5;
	EXPECT_EQ(((uint8_t *)iov[0].iov_base)[0], 0x5a);
	EXPECT_EQ(((uint8_t *)iov[1].iov_base)[0], 0xa5);
	/* ... but not one contiguous pointer. */
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x10ff0, 0x20) == NULL);

	/* Across three regions: three entries, the middle one whole. */
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x10fff, PAGE + 2, iov, 4), 3);
	EXPECT(iov[0].iov_base == a + 0xfff);
	EXPECT_EQ(iov[0].iov_len, 1);
	EXPECT(iov[1].iov_base == b);
	EXPECT_EQ(iov[1].iov_len, PAGE);
	EXPECT(iov[2].iov_base == c);
	EXPECT_EQ(iov[2].iov_len, 1);

	/* Not enough entries: nothing partial is promised, the error is distinct. */
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x10fff, PAGE + 2, iov, 2), -ENOBUFS);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x10ff0, 0x20, iov, 1), -ENOBUFS);

	/* Running into the hole, or starting in it. */
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x12ff0, 0x11, iov, 4), -EFAULT);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x12ff0, 0x10, iov, 4), 1);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x13000, 1, iov, 4), -EFAULT);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x13fff, 2, iov, 4), -EFAULT);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x14000, PAGE, iov, 4), 1);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x14000, PAGE + 1, iov, 4), -EFAULT);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0xffff, 2, iov, 4), -EFAULT);

	/* Wrapping around the top of the address space. */
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, UINT64_MAX - 3, 8, iov, 4), -EOVERFLOW);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, 0x10000, UINT64_MAX, iov, 4), -EOVERFLOW);

	hvn_mem_free(mem);
	gmem_free(&g);
}

static void test_top_of_address_space(void)
{
	struct hvn_mem *mem = new_mem();
	struct hvn_mem_region r;
	struct iovec iov[1];
	struct gmem g;

	gmem_init(&g);
	EXPECT_EQ(gmem_add(&g, 0, PAGE, 0), 0);
	gmem_region(&g, 0, &r);
	/* A region that ends exactly at 2^64 is valid; one byte more wraps. */
	r.gpa = UINT64_MAX - PAGE + 1;
	EXPECT_EQ(hvn_mem_add_region(mem, &r), 0);
	EXPECT_PTR(hvn_mem_gpa_to_ptr(mem, UINT64_MAX, 1));
	EXPECT(hvn_mem_gpa_to_ptr(mem, UINT64_MAX, 2) == NULL);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, UINT64_MAX - 1, 2, iov, 1), 1);
	EXPECT_EQ(hvn_mem_gpa_to_iov(mem, UINT64_MAX - 1, 3, iov, 1), -EOVERFLOW);
	EXPECT_EQ(hvn_mem_remove_region(mem, &r), 0);
	r.gpa = UINT64_MAX - PAGE + 2;
	EXPECT_EQ(hvn_mem_add_region(mem, &r), -EINVAL);
	hvn_mem_free(mem);
	gmem_free(&g);
}

static void test_validation(void)
{
	struct hvn_mem *mem = new_mem();
	struct hvn_mem_region r, o;
	struct gmem g;
	int pfd[2];

	gmem_init(&g);
	EXPECT_EQ(gmem_add(&g, 0x100000, 4 * PAGE, PAGE), 0);
	gmem_region(&g, 0, &r);

	o = r; o.size = 0;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	o = r; o.flags = 1;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	o = r; o.fd = -1;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EBADF);
	o = r; o.uaddr = UINT64_MAX - 10;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	o = r; o.mmap_offset = UINT64_MAX - 10;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	/* Beyond the end of the file: touching it would raise SIGBUS. */
	o = r; o.size += 1;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	o = r; o.mmap_offset += 1;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EINVAL);
	/* Something that cannot be mapped at all. */
	EXPECT_EQ(pipe(pfd), 0);
	o = r; o.fd = pfd[0]; o.mmap_offset = 0;
	EXPECT(hvn_mem_add_region(mem, &o) < 0);
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(hvn_mem_add_region(mem, NULL), -EINVAL);
	EXPECT_EQ(hvn_mem_set_table(mem, NULL, 1), -EINVAL);

	EXPECT_EQ(hvn_mem_add_region(mem, &r), 0);
	/* Overlapping guest-physical ranges, from either side, or identical. */
	EXPECT_EQ(hvn_mem_add_region(mem, &r), -EEXIST);
	o = r; o.gpa += 4 * PAGE - 1; o.uaddr += 1ull << 30;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EEXIST);
	o = r; o.gpa -= PAGE; o.size = PAGE + 1; o.uaddr += 1ull << 30;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EEXIST);
	/* Overlapping frontend addresses make uaddr translation ambiguous. */
	o = r; o.gpa += 1ull << 30; o.uaddr += PAGE;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), -EEXIST);
	/* Adjacent is fine. */
	o = r; o.gpa += 4 * PAGE; o.uaddr += 4 * PAGE; o.size = PAGE; o.mmap_offset = 0;
	EXPECT_EQ(hvn_mem_add_region(mem, &o), 0);

	/* Removal names gpa, size and uaddr; fd and offset are ignored. */
	o.fd = 12345;
	o.mmap_offset = 77;
	EXPECT_EQ(hvn_mem_remove_region(mem, &o), 0);
	EXPECT_EQ(hvn_mem_remove_region(mem, &o), -ENOENT);
	o = r; o.size = PAGE;
	EXPECT_EQ(hvn_mem_remove_region(mem, &o), -ENOENT);
	o = r; o.uaddr += PAGE;
	EXPECT_EQ(hvn_mem_remove_region(mem, &o), -ENOENT);
	EXPECT_PTR(hvn_mem_gpa_to_ptr(mem, r.gpa, r.size));
	EXPECT_EQ(hvn_mem_remove_region(mem, &r), 0);
	EXPECT(hvn_mem_gpa_to_ptr(mem, r.gpa, 1) == NULL);

	hvn_mem_free(mem);
	gmem_free(&g);
}

static void test_set_table_all_or_nothing(void)
{
	struct hvn_mem *mem = new_mem();
	struct hvn_mem_region rs[3];
	struct gmem g;
	uint8_t *p;

	gmem_init(&g);
	EXPECT_EQ(gmem_add(&g, 0, PAGE, 0), 0);
	EXPECT_EQ(gmem_add(&g, 0x10000, PAGE, 0), 1);
	EXPECT_EQ(gmem_add(&g, 0x20000, PAGE, 0), 2);
	gmem_region(&g, 0, &rs[0]);
	EXPECT_EQ(hvn_mem_set_table(mem, rs, 1), 0);
	p = hvn_mem_gpa_to_ptr(mem, 0, PAGE);
	EXPECT_PTR(p);

	/* The last region cannot be mapped: nothing changes. */
	gmem_region(&g, 1, &rs[0]);
	gmem_region(&g, 2, &rs[1]);
	rs[1].size = 2 * PAGE;
	EXPECT_EQ(hvn_mem_set_table(mem, rs, 2), -EINVAL);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0, PAGE) == p);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x10000, 1) == NULL);
	/* Overlapping regions in one table. */
	gmem_region(&g, 1, &rs[1]);
	rs[1].uaddr = rs[0].uaddr + 1;
	rs[1].gpa = 0x30000;
	EXPECT_EQ(hvn_mem_set_table(mem, rs, 2), -EEXIST);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0, PAGE) == p);

	/* A good table replaces the old one entirely, given in any order. */
	gmem_region(&g, 2, &rs[0]);
	gmem_region(&g, 1, &rs[1]);
	EXPECT_EQ(hvn_mem_set_table(mem, rs, 2), 0);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0, 1) == NULL);
	expect_same_bytes(hvn_mem_gpa_to_ptr(mem, 0x10000, PAGE), g.r[1].host, PAGE);
	expect_same_bytes(hvn_mem_gpa_to_ptr(mem, 0x20000, PAGE), g.r[2].host, PAGE);
	EXPECT(hvn_mem_uva_to_ptr(mem, (uint64_t)(uintptr_t)g.r[2].host, PAGE) ==
	       hvn_mem_gpa_to_ptr(mem, 0x20000, PAGE));
	/* And an empty one empties it. */
	EXPECT_EQ(hvn_mem_set_table(mem, NULL, 0), 0);
	EXPECT(hvn_mem_gpa_to_ptr(mem, 0x10000, 1) == NULL);

	hvn_mem_free(mem);
	gmem_free(&g);
}

/* 64 one-page regions in one memfd, added in a scrambled order; then the limit. */
static void test_many_regions(void)
{
	struct hvn_mem *mem = new_mem();
	struct hvn_mem_region r;
	unsigned int i, k;
	uint8_t *view;
	int fd;

	fd = memfd_create("hvn-test-many", MFD_CLOEXEC);
	EXPECT(fd >= 0);
	EXPECT_EQ(ftruncate(fd, (off_t)(HVN_MEM_MAX_REGIONS * PAGE)), 0);
	view = mmap(NULL, HVN_MEM_MAX_REGIONS * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(view != MAP_FAILED);
	for (i = 0; i < HVN_MEM_MAX_REGIONS; i++)
		memcpy(view + i * PAGE, &i, sizeof(i));

	/* Region k: gpa 2 pages apart (holes between), file page k. */
	for (i = 0; i < 64; i++) {
		k = (i * 37) % 64;
		memset(&r, 0, sizeof(r));
		r.gpa = 0x1000000 + 2 * PAGE * k;
		r.size = PAGE;
		r.uaddr = 0x7000000000ull + 3 * PAGE * k;
		r.mmap_offset = PAGE * k;
		r.fd = fd;
		EXPECT_EQ(hvn_mem_add_region(mem, &r), 0);
	}
	/* Alternate far-apart lookups so the last-hit cache misses. */
	for (i = 0; i < 64; i++) {
		unsigned int j = i % 2 ? 63 - i / 2 : i / 2, v;
		uint8_t *p = hvn_mem_gpa_to_ptr(mem, 0x1000000 + 2 * PAGE * j + 8, 4);
		uint8_t *u = hvn_mem_uva_to_ptr(mem, 0x7000000000ull + 3 * PAGE * j, 4);

		EXPECT_PTR(p);
		EXPECT(u == p - 8);
		memcpy(&v, u, sizeof(v));
		EXPECT_EQ(v, j);
		EXPECT(hvn_mem_gpa_to_ptr(mem, 0x1000000 + 2 * PAGE * j + PAGE, 1) == NULL);
	}
	/* Fill up to the limit, then one more. */
	for (i = 64; i < HVN_MEM_MAX_REGIONS; i++) {
		memset(&r, 0, sizeof(r));
		r.gpa = 0x1000000 + 2 * PAGE * i;
		r.size = PAGE;
		r.uaddr = 0x7000000000ull + 3 * PAGE * i;
		r.mmap_offset = PAGE * i;
		r.fd = fd;
		EXPECT_EQ(hvn_mem_add_region(mem, &r), 0);
	}
	r.gpa += 2 * PAGE;
	r.uaddr += 3 * PAGE;
	EXPECT_EQ(hvn_mem_add_region(mem, &r), -ENOSPC);
	for (i = 0; i < HVN_MEM_MAX_REGIONS; i += 50) {
		unsigned int v;

		memcpy(&v, hvn_mem_gpa_to_ptr(mem, 0x1000000 + 2 * PAGE * i, 4), sizeof(v));
		EXPECT_EQ(v, i);
	}
	EXPECT_EQ(hvn_mem_set_table(mem, &r, HVN_MEM_MAX_REGIONS + 1), -ENOSPC);

	/* The library keeps its mappings, not the fd. */
	close(fd);
	view[5 * PAGE + 100] = 0x42;
	EXPECT_EQ(*(uint8_t *)hvn_mem_gpa_to_ptr(mem, 0x1000000 + 2 * PAGE * 5 + 100, 1), 0x42);
	munmap(view, HVN_MEM_MAX_REGIONS * PAGE);
	hvn_mem_free(mem);
}

static void test_guard_pages(void)
{
	struct hvn_mem *mem = new_mem();
	struct gmem g;
	char perms[5];
	uintptr_t p;

	gmem_init(&g);
	EXPECT_EQ(gmem_add(&g, 0x100000, 2 * PAGE, 0), 0);
	EXPECT_EQ(gmem_attach(&g, mem), 0);
	p = (uintptr_t)hvn_mem_gpa_to_ptr(mem, 0x100000, 2 * PAGE);
	EXPECT(p);
	EXPECT(host_mapping((const void *)p, perms));
	EXPECT_EQ(strcmp(perms, "rw-s"), 0);
	/* Both neighbours of the region are inaccessible: a stray access faults. */
	EXPECT(host_mapping((const void *)(p - 1), perms));
	EXPECT_EQ(strcmp(perms, "---p"), 0);
	EXPECT(host_mapping((const void *)(p + 2 * PAGE), perms));
	EXPECT_EQ(strcmp(perms, "---p"), 0);
	/* Removing the region unmaps it, guards and all. */
	EXPECT_EQ(hvn_mem_set_table(mem, NULL, 0), 0);
	EXPECT(!host_mapped((const void *)p));
	hvn_mem_free(mem);
	gmem_free(&g);
}

int main(void)
{
	RUN(test_empty);
	RUN(test_bounds_and_offset);
	RUN(test_cross_region);
	RUN(test_top_of_address_space);
	RUN(test_validation);
	RUN(test_set_table_all_or_nothing);
	RUN(test_many_regions);
	RUN(test_guard_pages);
	return 0;
}
