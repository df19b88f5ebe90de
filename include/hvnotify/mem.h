/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/mem.h - guest memory: the regions a VMM shares, and translation
 * of guest addresses into pointers in this process.
 *
 * A region is what vhost-user's SET_MEM_TABLE and ADD_MEM_REG carry: a
 * range of guest-physical addresses, the same range as the VMM (frontend)
 * sees it in its own address space, and a file descriptor that the backend
 * maps.  Every address and length that comes from the guest is checked
 * against the table; nothing outside a region is ever returned.
 *
 * Lifetimes.  The table is replaced, never edited: each change publishes a
 * new snapshot.  A virtqueue (<hvnotify/vq.h>) holds a reference on the
 * snapshot its requests were translated with, so the memory under a popped
 * request stays mapped until that request is pushed, even if its region is
 * removed or replaced meanwhile; a mapping is unmapped when the last
 * snapshot that contains it goes.  The translation functions below read the
 * current snapshot without taking a reference: their results are valid
 * until the next change of the table, and they must not run concurrently
 * with one (use a virtqueue, or serialise with the thread that changes
 * memory).
 */
#ifndef HVNOTIFY_MEM_H
#define HVNOTIFY_MEM_H

#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The most regions a table holds: the number of memory slots that KVM and
 * libvhost-user allow, so any frontend's table fits (vhost-user's
 * GET_MAX_MEM_SLOTS answers this).
 */
#define HVN_MEM_MAX_REGIONS 509

/*
 * One region, in vhost-user's terms (VhostUserMemoryRegion plus its fd).
 * The library maps size bytes of fd starting at file offset mmap_offset
 * (which need not be page aligned).  fd stays the caller's: the library
 * does not keep it once the call returns, the mapping does.
 */
struct hvn_mem_region {
	uint64_t gpa;		/* guest-physical address of the first byte */
	uint64_t size;		/* length in bytes, > 0 */
	uint64_t uaddr;		/* the frontend's virtual address of the first byte */
	uint64_t mmap_offset;	/* where the region starts in fd */
	int32_t fd;		/* shared memory to map (memfd, hugetlbfs file ...) */
	uint32_t flags;		/* must be 0 */
};

struct hvn_mem;

int hvn_mem_new(struct hvn_mem **memp);
void hvn_mem_free(struct hvn_mem *mem);

int hvn_mem_set_table(struct hvn_mem *mem, const struct hvn_mem_region *regions,
		      unsigned int count);
int hvn_mem_add_region(struct hvn_mem *mem, const struct hvn_mem_region *region);
int hvn_mem_remove_region(struct hvn_mem *mem, const struct hvn_mem_region *region);

int hvn_mem_gpa_to_iov(struct hvn_mem *mem, uint64_t gpa, uint64_t len,
		       struct iovec *iov, unsigned int max_iov);
void *hvn_mem_gpa_to_ptr(struct hvn_mem *mem, uint64_t gpa, uint64_t len);
void *hvn_mem_uva_to_ptr(struct hvn_mem *mem, uint64_t uaddr, uint64_t len);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_MEM_H */
