/* SPDX-License-Identifier: MIT */
/*
 * vq_env.h - a guest with one split ring, and libhvnotify's device side
 * attached to it, for tests.  Guest memory:
 *
 *   R0  [0x00000, 0x40000)  rings at 0, indirect tables at 0x10000,
 *                           data from 0x20000
 *   R1  [0x40000, 0x50000)  adjacent to R0 (buffers across the boundary)
 *       [0x50000, 0x60000)  hole
 *   R2  [0x60000, 0x70000)  mapped from an unaligned file offset
 *
 * Each region is its own memfd; above 0x70000 nothing is mapped.
 */
#ifndef HVN_TEST_VQ_ENV_H
#define HVN_TEST_VQ_ENV_H

#include <hvnotify/mem.h>
#include <hvnotify/vq.h>

#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"

#define ENV_R0		0x00000ull
#define ENV_R0_SIZE	0x40000ull
#define ENV_IND		0x10000ull
#define ENV_DATA	0x20000ull
#define ENV_R1		0x40000ull
#define ENV_R1_SIZE	0x10000ull
#define ENV_HOLE	0x50000ull
#define ENV_R2		0x60000ull
#define ENV_R2_SIZE	0x10000ull
#define ENV_R2_OFFSET	0x2345ull
#define ENV_END		0x70000ull
#define ENV_IND_MAX	16

/* env_setup flags */
#define ENV_GPA_ADDR	(1u << 0)	/* give the device guest-physical ring addresses */
#define ENV_NO_START	(1u << 1)	/* configure, but do not start the device */

struct vq_env {
	struct gmem g;
	struct hvn_mem *mem;
	struct hvn_vq *vq;
	struct vring_driver d;
	uint32_t num;
	uint64_t features;
};

/* Exits 1 on any failure: set-up problems are test failures. */
void env_setup(struct vq_env *e, uint32_t num, uint64_t features, unsigned int flags);
void env_teardown(struct vq_env *e);

/* Guest address of data slot i (256 bytes each, in R0). */
static inline uint64_t env_data(unsigned int i)
{
	return ENV_DATA + 0x100ull * i;
}

/* Fill [gpa, gpa + len) through the guest's view with a pattern from seed. */
void env_fill(struct vq_env *e, uint64_t gpa, uint32_t len, uint8_t seed);
/* Compare an iovec list with guest bytes starting at gpa (guest's view). */
int env_iov_equals(struct vq_env *e, const struct iovec *iov, unsigned int n, uint64_t gpa,
		   uint64_t len);

#endif /* HVN_TEST_VQ_ENV_H */
