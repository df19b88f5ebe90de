// SPDX-License-Identifier: MIT
/*
 * vq-hostile.c - a guest driver that breaks the rules.  Every case must
 * break the queue with its own error, keep it broken (pop, batch pop and
 * enable all report the error; nothing is signalled), consume nothing,
 * and write nothing: guest memory is compared byte for byte with a
 * snapshot taken before the pop.  Reads outside guest memory would hit
 * the PROT_NONE guards around every mapping and crash the test.  Then the
 * queue is restarted on a clean ring and must work again.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

static struct iovec iov[64];

#define D(i)	vrd_desc(&e->d, (i))
#define IND(i)	(&((struct vrd_desc *)gmem_ptr(&e->g, ENV_IND, 16 * 64))[i])

/* Process memory that is not guest memory: must never be touched. */
static volatile uint64_t canary[4] = { 0x1111, 0x2222, 0x3333, 0x4444 };

struct hostile {
	const char *name;
	int err;
	uint32_t num;
	uint64_t features;
	void (*craft)(struct vq_env *e);
};

static void head_out_of_range(struct vq_env *e) { vrd_put_raw(&e->d, (uint16_t)e->num); }
static void head_way_out_of_range(struct vq_env *e) { vrd_put_raw(&e->d, 0xffff); }

static void next_out_of_range(struct vq_env *e)
{
	vrd_write_desc(D(0), env_data(0), 8, VRD_DESC_F_NEXT, (uint16_t)e->num);
	vrd_put_raw(&e->d, 0);
}

static void indirect_next_out_of_range(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, VRD_DESC_F_NEXT, 2);	/* table has 2 */
	vrd_write_desc(IND(1), env_data(1), 8, 0, 0);
	vrd_write_desc(D(3), ENV_IND, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 3);
}

static void loop_self(struct vq_env *e)
{
	vrd_write_desc(D(0), env_data(0), 8, VRD_DESC_F_NEXT, 0);
	vrd_put_raw(&e->d, 0);
}

static void loop_two(struct vq_env *e)
{
	vrd_write_desc(D(5), env_data(0), 8, VRD_DESC_F_NEXT, 9);
	vrd_write_desc(D(9), env_data(1), 8, VRD_DESC_F_NEXT, 5);
	vrd_put_raw(&e->d, 5);
}

/* A loop that only closes after visiting every descriptor of the ring once. */
static void loop_full_ring(struct vq_env *e)
{
	uint32_t i;

	for (i = 0; i < e->num; i++)
		vrd_write_desc(D(i), env_data(0), 0, VRD_DESC_F_NEXT, (uint16_t)((i + 1) % e->num));
	vrd_put_raw(&e->d, 0);
}

static void loop_indirect(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(IND(1), env_data(1), 8, VRD_DESC_F_NEXT, 0);
	vrd_write_desc(D(2), ENV_IND, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 2);
}

/* Queue of 4; an indirect table with 5 chained entries. */
static void long_indirect(struct vq_env *e)
{
	uint16_t i;

	for (i = 0; i < 5; i++)
		vrd_write_desc(IND(i), env_data(i), 8, i < 4 ? VRD_DESC_F_NEXT : 0, i + 1);
	vrd_write_desc(D(0), ENV_IND, 5 * 16, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

/* Queue of 4; two direct descriptors, then an indirect table of 3. */
static void long_direct_then_indirect(struct vq_env *e)
{
	uint16_t i;

	vrd_write_desc(D(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), env_data(1), 8, VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), ENV_IND, 3 * 16, VRD_DESC_F_INDIRECT, 0);
	for (i = 0; i < 3; i++)
		vrd_write_desc(IND(i), env_data(2 + i), 8, i < 2 ? VRD_DESC_F_NEXT : 0, i + 1);
	vrd_put_raw(&e->d, 0);
}

/* Queue of 4; a loop inside an indirect table of 8 passes the queue size first. */
static void loop_in_big_indirect(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(IND(1), env_data(1), 8, VRD_DESC_F_NEXT, 0);
	vrd_write_desc(D(1), ENV_IND, 8 * 16, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 1);
}

static void nested_indirect(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(IND(1), ENV_IND + 0x100, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_write_desc(D(0), ENV_IND, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_with_next(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, 0, 0);
	vrd_write_desc(D(0), ENV_IND, 16, VRD_DESC_F_INDIRECT | VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), env_data(1), 8, 0, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_not_negotiated(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, 0, 0);
	vrd_write_desc(D(0), ENV_IND, 16, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_len_zero(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_IND, 0, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_len_ragged(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, 0, 0);
	vrd_write_desc(D(0), ENV_IND, 24, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void buffer_in_hole(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_HOLE + 0x100, 8, 0, 0);
	vrd_put_raw(&e->d, 0);
}

static void buffer_beyond_memory(struct vq_env *e)
{
	vrd_write_desc(D(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), ENV_END, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e->d, 0);
}

/* Starts in R2, runs one byte past its end (nothing is mapped above). */
static void buffer_off_region_end(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_R2 + ENV_R2_SIZE - 8, 9, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e->d, 0);
}

/* Starts in R1, runs into the hole. */
static void buffer_into_hole(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_HOLE - 4, 0x1000, 0, 0);
	vrd_put_raw(&e->d, 0);
}

/* A pointer into this process, as if it were a guest address. */
static void buffer_at_process_memory(struct vq_env *e)
{
	vrd_write_desc(D(0), (uint64_t)(uintptr_t)canary, sizeof(canary), VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_table_in_hole(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_HOLE, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_table_off_end(struct vq_env *e)
{
	vrd_write_desc(D(0), ENV_R2 + ENV_R2_SIZE - 16, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void addr_len_wraps(struct vq_env *e)
{
	vrd_write_desc(D(0), UINT64_MAX - 3, 8, 0, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_addr_len_wraps(struct vq_env *e)
{
	vrd_write_desc(D(0), UINT64_MAX - 15, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

static void readable_after_writable(struct vq_env *e)
{
	vrd_write_desc(D(0), env_data(0), 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), env_data(1), 8, VRD_DESC_F_NEXT | VRD_DESC_F_WRITE, 2);
	vrd_write_desc(D(2), env_data(2), 8, 0, 0);
	vrd_put_raw(&e->d, 0);
}

static void indirect_readable_after_writable(struct vq_env *e)
{
	vrd_write_desc(IND(0), env_data(0), 8, VRD_DESC_F_NEXT | VRD_DESC_F_WRITE, 1);
	vrd_write_desc(IND(1), env_data(1), 8, 0, 0);
	vrd_write_desc(D(0), ENV_IND, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 0);
}

/* The available index moves by more than the queue size, or backwards. */
static void avail_jump(struct vq_env *e)
{
	e->d.avail_idx = (uint16_t)(e->num + 1);
}

static void avail_backwards(struct vq_env *e)
{
	e->d.avail_idx = 0xffff;
}

static void avail_jump_huge(struct vq_env *e)
{
	e->d.avail_idx = 0x8000;
}

static const struct hostile cases[] = {
	{ "head out of range", -ERANGE, 16, 0, head_out_of_range },
	{ "head 0xffff", -ERANGE, 16, 0, head_way_out_of_range },
	{ "next out of range", -ERANGE, 16, 0, next_out_of_range },
	{ "indirect next out of range", -ERANGE, 16, HVN_VQ_F_INDIRECT_DESC, indirect_next_out_of_range },
	{ "loop on itself", -ELOOP, 16, 0, loop_self },
	{ "loop of two", -ELOOP, 16, 0, loop_two },
	{ "loop through the whole ring", -ELOOP, 256, 0, loop_full_ring },
	{ "loop in an indirect table", -ELOOP, 16, HVN_VQ_F_INDIRECT_DESC, loop_indirect },
	{ "indirect chain longer than the queue", -E2BIG, 4, HVN_VQ_F_INDIRECT_DESC, long_indirect },
	{ "direct + indirect longer than the queue", -E2BIG, 4, HVN_VQ_F_INDIRECT_DESC, long_direct_then_indirect },
	{ "loop in an indirect table larger than the queue", -E2BIG, 4, HVN_VQ_F_INDIRECT_DESC, loop_in_big_indirect },
	{ "indirect inside indirect", -EMLINK, 16, HVN_VQ_F_INDIRECT_DESC, nested_indirect },
	{ "indirect with NEXT", -EINVAL, 16, HVN_VQ_F_INDIRECT_DESC, indirect_with_next },
	{ "indirect not negotiated", -EOPNOTSUPP, 16, 0, indirect_not_negotiated },
	{ "indirect table of length 0", -EMSGSIZE, 16, HVN_VQ_F_INDIRECT_DESC, indirect_len_zero },
	{ "indirect table of length 24", -EMSGSIZE, 16, HVN_VQ_F_INDIRECT_DESC, indirect_len_ragged },
	{ "buffer in a hole", -EFAULT, 16, 0, buffer_in_hole },
	{ "buffer beyond guest memory", -EFAULT, 16, 0, buffer_beyond_memory },
	{ "buffer one byte past a region", -EFAULT, 16, 0, buffer_off_region_end },
	{ "buffer running into a hole", -EFAULT, 16, 0, buffer_into_hole },
	{ "buffer at process memory", -EFAULT, 16, 0, buffer_at_process_memory },
	{ "indirect table in a hole", -EFAULT, 16, HVN_VQ_F_INDIRECT_DESC, indirect_table_in_hole },
	{ "indirect table past a region", -EFAULT, 16, HVN_VQ_F_INDIRECT_DESC, indirect_table_off_end },
	{ "addr + len wraps", -EOVERFLOW, 16, 0, addr_len_wraps },
	{ "indirect addr + len wraps", -EOVERFLOW, 16, HVN_VQ_F_INDIRECT_DESC, indirect_addr_len_wraps },
	{ "readable after writable", -EBADMSG, 16, 0, readable_after_writable },
	{ "readable after writable, indirect", -EBADMSG, 16, HVN_VQ_F_INDIRECT_DESC, indirect_readable_after_writable },
	{ "avail index jumps by size + 1", -EPROTO, 16, 0, avail_jump },
	{ "avail index goes backwards", -EPROTO, 16, 0, avail_backwards },
	{ "avail index jumps by 0x8000", -EPROTO, 256, 0, avail_jump_huge },
};

/* Fresh rings and a valid request: a restarted queue works again. */
static void expect_recovers(struct vq_env *e)
{
	struct hvn_vq_req req = { .iov = iov, .max_iov = 64 };
	struct vrd_buf b = { env_data(0), 8 };
	int head;

	EXPECT_EQ(hvn_vq_stop(e->vq), 0);
	vrd_free(&e->d);
	EXPECT_EQ(vrd_init(&e->d, &e->g, e->num, ENV_R0, e->features), 0);
	EXPECT_EQ(hvn_vq_set_base(e->vq, 0), 0);
	EXPECT_EQ(hvn_vq_start(e->vq), 0);
	EXPECT_EQ(hvn_vq_error(e->vq), 0);
	head = vrd_add(&e->d, &b, 1, NULL, 0, NULL, false);
	vrd_publish(&e->d);
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
	EXPECT_EQ(req.head, head);
	EXPECT_EQ(hvn_vq_push(e->vq, req.head, 0), 0);
	EXPECT_EQ(vrd_get_used(&e->d, NULL, NULL, NULL), 1);
}

static void run_case(const struct hostile *c)
{
	struct hvn_vq_req reqs[2] = { { .iov = iov, .max_iov = 32 },
				      { .iov = iov + 32, .max_iov = 32 } };
	uint64_t saved_canary[4];
	struct hvn_vq_state st;
	struct vq_env e;
	uint8_t *before;

	env_setup(&e, c->num, c->features, 0);
	c->craft(&e);
	vrd_publish(&e.d);
	memcpy(saved_canary, (const void *)canary, sizeof(saved_canary));
	before = malloc(gmem_total(&e.g));
	EXPECT_PTR(before);
	gmem_snapshot(&e.g, before);

	if (hvn_vq_pop(e.vq, &reqs[0]) != c->err) {
		fprintf(stderr, "case \"%s\":\n", c->name);
		EXPECT_EQ(hvn_vq_error(e.vq), c->err);
	}
	/* Sticky, everywhere. */
	EXPECT_EQ(hvn_vq_error(e.vq), c->err);
	EXPECT_EQ(hvn_vq_pop(e.vq, &reqs[0]), c->err);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs, 2), c->err);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), c->err);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	EXPECT_EQ(hvn_vq_push(e.vq, 0, 1), -EINVAL);	/* nothing in flight */
	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT_EQ(st.error, c->err);
	EXPECT_EQ(st.last_avail_idx, 0);
	EXPECT_EQ(st.inflight, 0);
	/* Not a byte of guest memory changed, and nothing outside it. */
	EXPECT_EQ(gmem_diff(&e.g, before), -1);
	EXPECT(memcmp(saved_canary, (const void *)canary, sizeof(saved_canary)) == 0);
	free(before);

	expect_recovers(&e);
	env_teardown(&e);
}

static void test_hostile_cases(void)
{
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i]);
		printf("  %-50s %s\n", cases[i].name, strerror(-cases[i].err));
	}
}

/* The limits themselves are legal: chains exactly as long as the queue,
 * an avail index exactly size ahead, the last byte of guest memory. */
static void test_limits_are_legal(void)
{
	struct hvn_vq_req req = { .iov = iov, .max_iov = 64 };
	struct vq_env e0, *e = &e0;
	uint16_t i;

	env_setup(e, 4, HVN_VQ_F_INDIRECT_DESC, 0);
	for (i = 0; i < 4; i++)
		vrd_write_desc(D(i), env_data(i), 8, i < 3 ? VRD_DESC_F_NEXT : 0, i + 1);
	vrd_put_raw(&e->d, 0);
	vrd_publish(&e->d);
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
	EXPECT_EQ(req.n_out, 4);
	EXPECT_EQ(hvn_vq_push(e->vq, 0, 0), 0);

	for (i = 0; i < 4; i++)
		vrd_write_desc(IND(i), env_data(i), 8, i < 3 ? VRD_DESC_F_NEXT : 0, i + 1);
	vrd_write_desc(D(1), ENV_IND, 4 * 16, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&e->d, 1);
	vrd_publish(&e->d);
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
	EXPECT_EQ(req.n_out, 4);
	EXPECT_EQ(hvn_vq_push(e->vq, 1, 0), 0);

	/* A full ring: the index is exactly size ahead. */
	vrd_write_desc(D(0), ENV_R2 + ENV_R2_SIZE - 1, 1, VRD_DESC_F_WRITE, 0);
	vrd_write_desc(D(1), ENV_R0, 1, 0, 0);
	vrd_write_desc(D(2), ENV_R1 + ENV_R1_SIZE - 1, 1, 0, 0);
	vrd_write_desc(D(3), ENV_R0 + ENV_R0_SIZE - 4, 4, 0, 0);
	for (i = 0; i < 4; i++)
		vrd_put_raw(&e->d, i);
	vrd_publish(&e->d);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
		EXPECT_EQ(req.head, i);
	}
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 0);
	EXPECT_EQ(hvn_vq_error(e->vq), 0);
	env_teardown(e);
}

/* A head made available again while in flight. */
static void test_head_in_flight(void)
{
	struct hvn_vq_req reqs[2] = { { .iov = iov, .max_iov = 32 },
				      { .iov = iov + 32, .max_iov = 32 } };
	struct vq_env e0, *e = &e0;

	env_setup(e, 8, 0, 0);
	vrd_write_desc(D(3), env_data(0), 8, 0, 0);
	vrd_put_raw(&e->d, 3);
	vrd_put_raw(&e->d, 3);
	vrd_publish(&e->d);
	/* The batch returns the good one; the error comes with the next call. */
	EXPECT_EQ(hvn_vq_pop_batch(e->vq, reqs, 2), 1);
	EXPECT_EQ(reqs[0].head, 3);
	EXPECT_EQ(hvn_vq_pop(e->vq, &reqs[1]), -EALREADY);
	EXPECT_EQ(hvn_vq_error(e->vq), -EALREADY);
	EXPECT_EQ(hvn_vq_get_base(e->vq), 1);
	/* Completing the good one releases it but writes nothing to a broken ring. */
	EXPECT_EQ(hvn_vq_push(e->vq, 3, 8), 0);
	EXPECT_EQ(le16toh(e->d.used->idx), 0);
	/* Pushed once already. */
	EXPECT_EQ(hvn_vq_push(e->vq, 3, 8), -EINVAL);
	expect_recovers(e);
	env_teardown(e);
}

/* A chain of more than 4 GiB in total; exactly 4 GiB is legal. */
static void test_total_length(void)
{
	struct hvn_vq_req req = { .iov = iov, .max_iov = 64 };
	struct hvn_mem_region r;
	struct vq_env e0, *e = &e0;
	int big;

	env_setup(e, 8, 0, 0);
	/* 3 GiB of sparse memfd at 4 GiB: address space only, never touched. */
	big = gmem_add(&e->g, 1ull << 32, 3ull << 30, 0);
	EXPECT(big >= 0);
	gmem_region(&e->g, (unsigned int)big, &r);
	EXPECT_EQ(hvn_mem_add_region(e->mem, &r), 0);

	vrd_write_desc(D(0), 1ull << 32, 3u << 30, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), 1ull << 32, 1u << 30, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e->d, 0);
	vrd_publish(&e->d);
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
	EXPECT_EQ(req.out_len, 3ull << 30);
	EXPECT_EQ(req.in_len, 1ull << 30);
	EXPECT_EQ(hvn_vq_push(e->vq, 0, 0), 0);

	vrd_write_desc(D(2), 1ull << 32, 3u << 30, VRD_DESC_F_NEXT, 3);
	vrd_write_desc(D(3), 1ull << 32, (1u << 30) + 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e->d, 2);
	vrd_publish(&e->d);
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), -EOVERFLOW);
	EXPECT_EQ(hvn_vq_get_base(e->vq), 1);
	env_teardown(e);
}

/* Ring addresses that point at process memory instead of guest memory. */
static void test_rings_at_process_memory(void)
{
	struct hvn_vq_addr addr;
	struct vq_env e;

	env_setup(&e, 4, 0, ENV_NO_START);
	vrd_addr(&e.d, false, &addr);
	addr.used = (uint64_t)(uintptr_t)canary;
	EXPECT_EQ(hvn_vq_set_addr(e.vq, &addr), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), -EFAULT);
	EXPECT_EQ(canary[0], 0x1111);
	addr.flags = HVN_VQ_ADDR_GPA;
	addr.desc = addr.used & ~15ull;
	addr.avail = e.d.avail_gpa;
	EXPECT_EQ(hvn_vq_set_addr(e.vq, &addr), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), -EFAULT);
	env_teardown(&e);
}

int main(void)
{
	RUN(test_hostile_cases);
	RUN(test_limits_are_legal);
	RUN(test_head_in_flight);
	RUN(test_total_length);
	RUN(test_rings_at_process_memory);
	return 0;
}
