/* SPDX-License-Identifier: MIT */
/*
 * guest_mem.h - a guest's RAM for tests, benchmarks and integration tests:
 * regions backed by real memfds, mapped by the test the way a VMM maps its
 * guest RAM (the "frontend" view), each with PROT_NONE guard pages around
 * it so that a stray access faults.  The same fds are handed to
 * libhvnotify, which maps them again (the backend view), exactly as
 * vhost-user does.
 */
#ifndef HVN_TEST_GUEST_MEM_H
#define HVN_TEST_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <hvnotify/mem.h>

#define GMEM_MAX_REGIONS 64

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;	/* where the region starts in fd */
	int fd;
	uint8_t *host;		/* the frontend's mapping of gpa: its uaddr */
	void *resv;		/* reservation including guard pages */
	size_t resv_len;
};

struct gmem {
	unsigned int count;
	struct gmem_region r[GMEM_MAX_REGIONS];
};

void gmem_init(struct gmem *g);
/* A region of size bytes at gpa, in a new memfd at file offset mmap_offset
 * (any value, page aligned or not).  Returns its index or -errno. */
int gmem_add(struct gmem *g, uint64_t gpa, uint64_t size, uint64_t mmap_offset);
void gmem_free(struct gmem *g);

/* The frontend's pointer to [gpa, gpa + len), or NULL if not in one region. */
void *gmem_ptr(const struct gmem *g, uint64_t gpa, uint64_t len);
/* The frontend virtual address of gpa (what vhost-user calls uaddr), or 0. */
uint64_t gmem_uva(const struct gmem *g, uint64_t gpa);

/* Region i in libhvnotify's terms. */
void gmem_region(const struct gmem *g, unsigned int i, struct hvn_mem_region *out);
/* hvn_mem_set_table() with every region. */
int gmem_attach(const struct gmem *g, struct hvn_mem *mem);

/* Copy every region's bytes to buf (size: gmem_total()), to compare later. */
size_t gmem_total(const struct gmem *g);
void gmem_snapshot(const struct gmem *g, uint8_t *buf);
/* Offset of the first byte that differs from the snapshot, or -1. */
long gmem_diff(const struct gmem *g, const uint8_t *buf);

/*
 * Ask the kernel, not the library, about this process's address space:
 * the permissions ("rw-s", "---p" ...) of the mapping that holds p, from
 * /proc/self/maps.  Returns 1 and fills perms, or 0 if nothing is mapped
 * there.
 */
int host_mapping(const void *p, char perms[5]);
/* p is in a readable mapping (not a hole, not a PROT_NONE guard). */
int host_mapped(const void *p);

#endif /* HVN_TEST_GUEST_MEM_H */
