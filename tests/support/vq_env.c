// SPDX-License-Identifier: MIT
/*
 * vq_env.c - a guest with one split ring and the device side attached
 * (see vq_env.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vq_env.h"

static void must(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "vq_env: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

void env_setup(struct vq_env *e, uint32_t num, uint64_t features, unsigned int flags)
{
	struct hvn_vq_addr addr;

	memset(e, 0, sizeof(*e));
	e->num = num;
	e->features = features;
	gmem_init(&e->g);
	must(gmem_add(&e->g, ENV_R0, ENV_R0_SIZE, 0), "R0");
	must(gmem_add(&e->g, ENV_R1, ENV_R1_SIZE, 0), "R1");
	must(gmem_add(&e->g, ENV_R2, ENV_R2_SIZE, ENV_R2_OFFSET), "R2");
	must(hvn_mem_new(&e->mem), "hvn_mem_new");
	must(gmem_attach(&e->g, e->mem), "hvn_mem_set_table");

	must(vrd_init(&e->d, &e->g, num, ENV_R0, features), "vrd_init");
	if (num * 16ull * ENV_IND_MAX <= ENV_DATA - ENV_IND)
		must(vrd_set_indirect_area(&e->d, ENV_IND, ENV_IND_MAX), "indirect area");

	must(hvn_vq_new(e->mem, &e->vq), "hvn_vq_new");
	must(hvn_vq_set_size(e->vq, num), "hvn_vq_set_size");
	must(hvn_vq_set_features(e->vq, features), "hvn_vq_set_features");
	vrd_addr(&e->d, flags & ENV_GPA_ADDR, &addr);
	must(hvn_vq_set_addr(e->vq, &addr), "hvn_vq_set_addr");
	must(hvn_vq_set_base(e->vq, 0), "hvn_vq_set_base");
	if (!(flags & ENV_NO_START))
		must(hvn_vq_start(e->vq), "hvn_vq_start");
}

void env_teardown(struct vq_env *e)
{
	hvn_vq_free(e->vq);
	hvn_mem_free(e->mem);
	vrd_free(&e->d);
	gmem_free(&e->g);
}

void env_fill(struct vq_env *e, uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i++) {
		uint8_t *p = gmem_ptr(&e->g, gpa + i, 1);

		if (!p) {
			fprintf(stderr, "vq_env: fill outside guest memory at 0x%llx\n",
				(unsigned long long)(gpa + i));
			exit(1);
		}
		*p = (uint8_t)(seed + i * 7);
	}
}

int env_iov_equals(struct vq_env *e, const struct iovec *iov, unsigned int n, uint64_t gpa,
		   uint64_t len)
{
	uint64_t done = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		const uint8_t *p = gmem_ptr(&e->g, gpa + done, iov[i].iov_len);

		if (!p || memcmp(p, iov[i].iov_base, iov[i].iov_len))
			return 0;
		done += iov[i].iov_len;
	}
	return done == len;
}
