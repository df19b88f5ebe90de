// SPDX-License-Identifier: MIT
/*
 * fuzz-vq-split.c - libFuzzer target for the split ring's device side: the
 * descriptor walker, the index checks, push and notification, over a
 * guest memory image built from the input (format in fuzz-vq-split.h).
 *
 * Besides "no crash, no sanitizer report", it checks what the library
 * promises: every iovec lies inside a guest region as mapped by the
 * library, the counts and lengths add up, every error is one of the
 * documented ones and a breaking one stays.  Writable buffers are written
 * (as a device would), so a buffer pointing at the rings changes them for
 * later rounds.  With FZ_MEM_CHANGE the table is replaced while requests
 * are in flight and their buffers are written afterwards: an early unmap
 * would fault.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hvnotify/mem.h>
#include <hvnotify/vq.h>

#include "../../lib/guest/guest_mem.h"
#include "fuzz-vq-split.h"

#define MAX_REQS	8
#define MAX_IOV		64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gmem g;
static struct hvn_mem *mem;
static struct hvn_mem_region regions[3];
static uint8_t *lib_base[3];	/* the library's mapping of each region */

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "fuzz-vq-split: %s:%d: %s\n", __FILE__,	\
				__LINE__, #cond);				\
			abort();						\
		}								\
	} while (0)

static void map_table(void)
{
	unsigned int i;

	CHECK(hvn_mem_set_table(mem, regions, 3) == 0);
	for (i = 0; i < 3; i++) {
		lib_base[i] = hvn_mem_gpa_to_ptr(mem, regions[i].gpa, regions[i].size);
		CHECK(lib_base[i] != NULL);
	}
}

static void setup(void)
{
	unsigned int i;

	gmem_init(&g);
	CHECK(gmem_add(&g, FZ_R0, FZ_R0_SIZE, 0) == 0);
	CHECK(gmem_add(&g, FZ_R1, FZ_R1_SIZE, 0) == 1);
	CHECK(gmem_add(&g, FZ_R2, FZ_R2_SIZE, FZ_R2_OFFSET) == 2);
	CHECK(hvn_mem_new(&mem) == 0);
	for (i = 0; i < 3; i++)
		gmem_region(&g, i, &regions[i]);
	map_table();
}

static bool in_guest(const struct iovec *v)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		uintptr_t b = (uintptr_t)lib_base[i], p = (uintptr_t)v->iov_base;

		if (p >= b && v->iov_len <= regions[i].size && p - b <= regions[i].size - v->iov_len)
			return true;
	}
	return false;
}

static bool documented(int err)
{
	switch (err) {
	case -ERANGE: case -ELOOP: case -E2BIG: case -EMLINK: case -EINVAL:
	case -EOPNOTSUPP: case -EMSGSIZE: case -EFAULT: case -EOVERFLOW:
	case -EBADMSG: case -EPROTO: case -EALREADY:
		return true;
	}
	return false;
}

static void check_req(const struct hvn_vq_req *r, uint16_t size)
{
	uint64_t out = 0, in = 0;
	uint32_t i;

	CHECK(r->head < size);
	CHECK(r->n_out + r->n_in <= r->max_iov);
	for (i = 0; i < r->n_out + r->n_in; i++) {
		const struct iovec *v = &r->iov[i];

		CHECK(v->iov_len > 0);
		CHECK(in_guest(v));
		if (i < r->n_out)
			out += v->iov_len;
		else
			in += v->iov_len;
		/* Touch both ends: a bad pointer faults here. */
		(void)*(volatile uint8_t *)v->iov_base;
		(void)*(volatile uint8_t *)((uint8_t *)v->iov_base + v->iov_len - 1);
	}
	CHECK(out == r->out_len);
	CHECK(in == r->in_len);
	CHECK(out + in <= (UINT64_C(1) << 32));
}

/* What a device does with a request: write its writable part. */
static void fill_in(const struct hvn_vq_req *r, uint8_t v)
{
	uint32_t i;

	for (i = r->n_out; i < r->n_out + r->n_in; i++)
		memset(r->iov[i].iov_base, v, r->iov[i].iov_len < 64 ? r->iov[i].iov_len : 64);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[MAX_REQS][MAX_IOV];
	struct hvn_vq_req reqs[MAX_REQS];
	struct hvn_vq_done done[MAX_REQS];
	struct hvn_vq_addr addr;
	struct hvn_vq *vq;
	uint32_t num, seed, i, rounds, inflight = 0;
	uint16_t heads[MAX_REQS];
	uint8_t flags;
	size_t n;
	int ret, broken = 0;

	if (!mem)
		setup();
	if (size < FZ_HDR)
		return 0;
	num = 1u << (data[0] % 9);
	flags = data[1];
	rounds = data[5] % 8 + 1;
	seed = (uint32_t)data[12] | (uint32_t)data[13] << 8 | (uint32_t)data[14] << 16 |
	       (uint32_t)data[15] << 24;

	/* The guest's memory image, through the guest's (frontend's) view. */
	n = size - FZ_HDR < FZ_R0_SIZE + FZ_R1_SIZE ? size - FZ_HDR : FZ_R0_SIZE + FZ_R1_SIZE;
	memcpy(g.r[0].host, data + FZ_HDR, n < FZ_R0_SIZE ? n : FZ_R0_SIZE);
	memset(g.r[0].host + (n < FZ_R0_SIZE ? n : FZ_R0_SIZE), 0,
	       FZ_R0_SIZE - (n < FZ_R0_SIZE ? n : FZ_R0_SIZE));
	memset(g.r[1].host, 0, FZ_R1_SIZE);
	if (n > FZ_R0_SIZE)
		memcpy(g.r[1].host, data + FZ_HDR + FZ_R0_SIZE, n - FZ_R0_SIZE);
	memset(g.r[2].host, 0, FZ_R2_SIZE);
	if (size - FZ_HDR > FZ_R0_SIZE + FZ_R1_SIZE) {
		size_t m = size - FZ_HDR - FZ_R0_SIZE - FZ_R1_SIZE;

		memcpy(g.r[2].host, data + FZ_HDR + FZ_R0_SIZE + FZ_R1_SIZE,
		       m < FZ_R2_SIZE ? m : FZ_R2_SIZE);
	}

	memset(&addr, 0, sizeof(addr));
	if (flags & FZ_PLACE) {
		addr.desc = (16u * le16(data + 6)) % FZ_END;
		addr.avail = (2u * le16(data + 8)) % FZ_END;
		addr.used = (4u * le16(data + 10)) % FZ_END;
	} else {
		addr.desc = 0;
		addr.avail = 16 * num;
		addr.used = (16 * num + 6 + 2 * num + 63) & ~63u;
	}
	/* The base goes to the used index too, so wrap-around is reachable. */
	if (!(flags & FZ_PLACE))
		memcpy(g.r[0].host + addr.used + 2, data + 2, 2);
	if (!(flags & FZ_GPA_ADDR)) {
		uint64_t d = gmem_uva(&g, addr.desc), a = gmem_uva(&g, addr.avail);
		uint64_t u = gmem_uva(&g, addr.used);

		/* A ring in the hole has no frontend address: give a bogus one. */
		addr.desc = d ? d : 0x10;
		addr.avail = a ? a : 0x10;
		addr.used = u ? u : 0x10;
	} else {
		addr.flags = HVN_VQ_ADDR_GPA;
	}

	CHECK(hvn_vq_new(mem, &vq) == 0);
	CHECK(hvn_vq_set_size(vq, num) == 0);
	CHECK(hvn_vq_set_features(vq, (flags & FZ_EVENT_IDX ? HVN_VQ_F_EVENT_IDX : 0) |
				      (flags & FZ_INDIRECT ? HVN_VQ_F_INDIRECT_DESC : 0) |
				      HVN_VQ_F_VERSION_1) == 0);
	ret = hvn_vq_set_addr(vq, &addr);
	if (ret == 0)
		CHECK(hvn_vq_set_base(vq, le16(data + 2)) == 0);
	if (ret == 0)
		ret = hvn_vq_start(vq);
	if (ret) {
		CHECK(ret == -EINVAL || ret == -EFAULT);
		hvn_vq_free(vq);
		return 0;
	}

	for (i = 0; i < MAX_REQS; i++) {
		reqs[i].iov = iov[i];
		reqs[i].max_iov = data[4] % MAX_IOV + 1;
	}
	while (rounds--) {
		int got;

		if (flags & FZ_NOTIFY)
			CHECK(hvn_vq_disable_notify(vq) == (broken ? hvn_vq_error(vq) : 0));
		if (flags & FZ_BATCH) {
			got = hvn_vq_pop_batch(vq, reqs + inflight, MAX_REQS - inflight);
		} else {
			got = 0;
			while (inflight + got < MAX_REQS &&
			       (ret = hvn_vq_pop(vq, &reqs[inflight + got])) == 1)
				got++;
			if (got == 0 && ret < 0)
				got = ret;
		}
		if (got < 0) {
			CHECK(got == -ENOBUFS || documented(got));
			if (got != -ENOBUFS) {
				CHECK(hvn_vq_error(vq) == got);
				broken = 1;
			}
			got = 0;
		}
		for (i = inflight; i < inflight + (uint32_t)got; i++) {
			check_req(&reqs[i], (uint16_t)num);
			heads[i] = reqs[i].head;
		}
		inflight += (uint32_t)got;
		if (broken)
			CHECK(hvn_vq_pop(vq, &reqs[0]) == hvn_vq_error(vq));

		if ((flags & FZ_MEM_CHANGE) && inflight) {
			/* Same memory, new mappings: the rings move, the requests must not. */
			map_table();
			ret = hvn_vq_update_mem(vq);
			CHECK(ret == 0 || documented(ret));
		}
		/* Complete some or all, in order or reversed. */
		{
			uint32_t k = seed % (inflight + 1), j;

			if (rounds == 0)
				k = inflight;
			for (j = 0; j < k; j++) {
				uint32_t idx = flags & FZ_REVERSE ? inflight - 1 - j : j;

				fill_in(&reqs[idx], (uint8_t)seed);
				done[j].head = heads[idx];
				done[j].len = (uint32_t)(seed >> 8) % 4096;
				done[j].reserved = 0;
			}
			if (flags & FZ_BATCH) {
				CHECK(hvn_vq_push_batch(vq, done, k) == 0);
			} else {
				for (j = 0; j < k; j++)
					CHECK(hvn_vq_push(vq, done[j].head, done[j].len) == 0);
			}
			/*
			 * Keep the requests still in flight at the front.  Reversed,
			 * the last k went and the rest already are; in order, slide
			 * the rest down, each request with its own iovec array.
			 */
			if (!(flags & FZ_REVERSE)) {
				for (j = 0; j + k < inflight; j++) {
					memcpy(iov[j], iov[j + k], sizeof(iov[0]));
					reqs[j] = reqs[j + k];
					reqs[j].iov = iov[j];
					heads[j] = heads[j + k];
				}
			}
			inflight -= k;
		}
		if (flags & FZ_NOTIFY) {
			ret = hvn_vq_should_notify(vq);
			CHECK(ret == 0 || ret == 1);
			ret = hvn_vq_enable_notify(vq);
			CHECK(ret == 0 || ret == 1 || (broken && ret == hvn_vq_error(vq)) ||
			      (!broken && documented(ret) && (broken = 1)));
		}
		/* The driver makes a few more entries available between rounds. */
		if (!(flags & FZ_PLACE)) {
			uint8_t *idx = g.r[0].host + 16 * num + 2;
			uint16_t v = (uint16_t)(idx[0] | idx[1] << 8);

			v = (uint16_t)(v + ((seed >> (rounds * 2)) & 3));
			idx[0] = (uint8_t)v;
			idx[1] = (uint8_t)(v >> 8);
		}
		seed = seed * 1103515245u + 12345u;
	}
	{
		struct hvn_vq_state st;

		CHECK(hvn_vq_get_state(vq, &st) == 0);
		CHECK(st.inflight == 0);
		CHECK(st.error == hvn_vq_error(vq));
	}
	hvn_vq_free(vq);
	return 0;
}
