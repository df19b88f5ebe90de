// SPDX-License-Identifier: MIT
/*
 * vq-split.c - the device side of the split ring against a guest driver
 * in shared memory: configuration checks, direct and indirect chains,
 * readable/writable split, cross-region buffers, batches, in-order and
 * out-of-order completion, base get/set, stop and restart.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

#define NIOV 64

static struct iovec iovs[16][NIOV];

static void req_init(struct hvn_vq_req *req, unsigned int i)
{
	memset(req, 0, sizeof(*req));
	req->iov = iovs[i];
	req->max_iov = NIOV;
}

/* Reap exactly one used entry and check it. */
static void expect_used(struct vq_env *e, int head, uint32_t len, void *token)
{
	uint16_t h;
	uint32_t l;
	void *t;

	EXPECT_EQ(vrd_get_used(&e->d, &h, &l, &t), 1);
	EXPECT_EQ(h, head);
	EXPECT_EQ(l, len);
	EXPECT(t == token);
}

static void test_config(void)
{
	struct hvn_vq_addr addr, bad;
	struct hvn_vq_req req;
	struct hvn_vq *vq;
	struct vq_env e;

	env_setup(&e, 256, 0, ENV_NO_START);
	vq = e.vq;
	vrd_addr(&e.d, false, &addr);

	EXPECT_EQ(hvn_vq_set_size(vq, 0), -EINVAL);
	EXPECT_EQ(hvn_vq_set_size(vq, 3), -EINVAL);
	EXPECT_EQ(hvn_vq_set_size(vq, 65536), -EINVAL);
	EXPECT_EQ(hvn_vq_set_size(vq, 32768 + 1), -EINVAL);
	EXPECT_EQ(hvn_vq_set_size(vq, 1), 0);
	EXPECT_EQ(hvn_vq_set_size(vq, 256), 0);

	/* Alignment of each part (virtio 1.x, 2.7): 16, 2, 4. */
	bad = addr; bad.desc += 8;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EINVAL);
	bad = addr; bad.avail += 1;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EINVAL);
	bad = addr; bad.used += 2;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EINVAL);
	bad = addr; bad.flags = 1u << 7;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EINVAL);
	bad = addr; bad.reserved = 1;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EINVAL);

	/* Rings must lie in guest memory, each within one region. */
	bad = addr; bad.desc = 0x1000;	/* a frontend address nothing maps */
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EFAULT);
	bad = addr; bad.flags = HVN_VQ_ADDR_GPA; bad.desc = ENV_R1 - 16 * 128;
	bad.avail = e.d.avail_gpa; bad.used = e.d.used_gpa;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EFAULT);	/* straddles R0 and R1 */
	bad.desc = ENV_HOLE;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EFAULT);
	bad.desc = e.d.desc_gpa;
	bad.used = ENV_R2 + ENV_R2_SIZE - 8 * 256;	/* used ring runs off R2 */
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EFAULT);
	/* R2's file offset is not aligned like its guest addresses. */
	bad.used = ENV_R2;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EINVAL);

	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(vq, &req), -EBADFD);
	EXPECT_EQ(hvn_vq_enable_notify(vq), -EBADFD);
	EXPECT_EQ(hvn_vq_disable_notify(vq), -EBADFD);
	EXPECT_EQ(hvn_vq_should_notify(vq), 0);

	EXPECT_EQ(hvn_vq_set_addr(vq, &addr), 0);
	EXPECT_EQ(hvn_vq_start(vq), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EBUSY);
	EXPECT_EQ(hvn_vq_set_size(vq, 128), -EBUSY);
	EXPECT_EQ(hvn_vq_set_features(vq, 0), -EBUSY);
	EXPECT_EQ(hvn_vq_set_base(vq, 5), -EBUSY);
	/* Moving a running ring (vhost-user does it to switch logging). */
	bad = addr; bad.desc = 0x1000;
	EXPECT_EQ(hvn_vq_set_addr(vq, &bad), -EFAULT);
	EXPECT_EQ(hvn_vq_pop(vq, &req), 0);	/* still on the old, good rings */
	addr.flags |= HVN_VQ_ADDR_LOG;
	EXPECT_EQ(hvn_vq_set_addr(vq, &addr), 0);
	EXPECT_EQ(hvn_vq_pop(vq, &req), 0);
	env_teardown(&e);

	/* Not configured. */
	env_setup(&e, 8, 0, ENV_NO_START);
	EXPECT_EQ(hvn_vq_new(NULL, &vq), -EINVAL);
	EXPECT_EQ(hvn_vq_new(e.mem, &vq), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EINVAL);
	EXPECT_EQ(hvn_vq_set_size(vq, 8), 0);
	EXPECT_EQ(hvn_vq_start(vq), -EINVAL);
	hvn_vq_free(vq);
	env_teardown(&e);
}

/* A virtio-blk-like request: header + data out, status in. */
static void simple_request(unsigned int flags, bool indirect)
{
	struct vrd_buf out[2] = { { env_data(0), 16 }, { env_data(1), 200 } };
	struct vrd_buf in[1] = { { env_data(3), 1 } };
	struct hvn_vq_req req;
	struct hvn_vq_state st;
	struct vq_env e;
	int token, head;

	env_setup(&e, 256, indirect ? HVN_VQ_F_INDIRECT_DESC : 0, flags);
	env_fill(&e, env_data(0), 16, 1);
	env_fill(&e, env_data(1), 200, 2);
	env_fill(&e, env_data(3), 1, 0);
	head = vrd_add(&e.d, out, 2, in, 1, &token, indirect);
	EXPECT(head >= 0);

	req_init(&req, 0);
	/* Added but not yet published: the device must not see it. */
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 0);
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(req.head, head);
	EXPECT_EQ(req.n_out, 2);
	EXPECT_EQ(req.n_in, 1);
	EXPECT_EQ(req.out_len, 216);
	EXPECT_EQ(req.in_len, 1);
	EXPECT_EQ(req.iov[0].iov_len, 16);
	EXPECT_EQ(req.iov[1].iov_len, 200);
	EXPECT_EQ(req.iov[2].iov_len, 1);
	EXPECT(env_iov_equals(&e, &req.iov[0], 1, env_data(0), 16));
	EXPECT(env_iov_equals(&e, &req.iov[1], 1, env_data(1), 200));
	EXPECT(req.iov[0].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(0), 16));
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 0);

	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT_EQ(st.inflight, 1);
	EXPECT_EQ(st.last_avail_idx, 1);
	EXPECT_EQ(st.used_idx, 0);
	EXPECT_EQ(st.size, 256);
	EXPECT_EQ(st.error, 0);
	EXPECT_EQ(st.flags, HVN_VQ_STATE_STARTED | HVN_VQ_STATE_NOTIFY);

	/* The device writes its status through the iovec; the guest sees it. */
	*(uint8_t *)req.iov[2].iov_base = 0x7e;
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 0);
	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 1), 0);
	expect_used(&e, head, 1, &token);
	EXPECT_EQ(*(uint8_t *)gmem_ptr(&e.g, env_data(3), 1), 0x7e);
	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT_EQ(st.inflight, 0);
	EXPECT_EQ(st.used_idx, 1);
	env_teardown(&e);
}

static void test_simple_uva(void) { simple_request(0, false); }
static void test_simple_gpa(void) { simple_request(ENV_GPA_ADDR, false); }
static void test_simple_indirect(void) { simple_request(0, true); }

/* Direct descriptors, then an indirect one at the end: the spec allows it. */
static void test_direct_then_indirect(void)
{
	struct hvn_vq_req req;
	struct vrd_desc *t;
	struct vq_env e;

	env_setup(&e, 16, HVN_VQ_F_INDIRECT_DESC, 0);
	t = gmem_ptr(&e.g, ENV_IND, 3 * 16);
	vrd_write_desc(vrd_desc(&e.d, 0), env_data(0), 10, VRD_DESC_F_NEXT, 5);
	/* The WRITE flag on the indirect descriptor itself must be ignored. */
	vrd_write_desc(vrd_desc(&e.d, 5), ENV_IND, 3 * 16,
		       VRD_DESC_F_INDIRECT | VRD_DESC_F_WRITE, 0);
	vrd_write_desc(&t[0], env_data(1), 20, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(&t[1], env_data(2), 30, VRD_DESC_F_NEXT | VRD_DESC_F_WRITE, 2);
	vrd_write_desc(&t[2], env_data(3), 40, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&e.d, 0);
	vrd_publish(&e.d);
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(req.head, 0);
	EXPECT_EQ(req.n_out, 2);
	EXPECT_EQ(req.n_in, 2);
	EXPECT_EQ(req.out_len, 30);
	EXPECT_EQ(req.in_len, 70);
	EXPECT(req.iov[0].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(0), 10));
	EXPECT(req.iov[1].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(1), 20));
	EXPECT(req.iov[3].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(3), 40));
	EXPECT_EQ(hvn_vq_error(e.vq), 0);
	env_teardown(&e);
}

/*
 * Indirect tables that the fast path cannot read in place: one across the
 * R0/R1 boundary, one at a misaligned address (R2 is mapped from an odd
 * file offset).  Both are legal and must decode the same.
 */
static void test_indirect_slow_paths(void)
{
	static const uint64_t tables[] = { ENV_R1 - 2 * 16 - 8, ENV_R2 + 0x104 };
	unsigned int i, k;

	for (k = 0; k < 2; k++) {
		struct hvn_vq_req req;
		struct vq_env e;

		env_setup(&e, 16, HVN_VQ_F_INDIRECT_DESC, 0);
		for (i = 0; i < 4; i++) {
			struct vrd_desc d;
			uint16_t flags = (i < 3 ? VRD_DESC_F_NEXT : 0) | (i >= 2 ? VRD_DESC_F_WRITE : 0);
			uint64_t at = tables[k] + 16 * i;
			unsigned int b;

			vrd_write_desc(&d, env_data(i), 8 + i, flags, (uint16_t)(i + 1));
			for (b = 0; b < 16; b++)
				*(uint8_t *)gmem_ptr(&e.g, at + b, 1) = ((uint8_t *)&d)[b];
		}
		vrd_write_desc(vrd_desc(&e.d, 3), tables[k], 4 * 16, VRD_DESC_F_INDIRECT, 0);
		vrd_put_raw(&e.d, 3);
		vrd_publish(&e.d);
		req_init(&req, 0);
		EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
		EXPECT_EQ(req.head, 3);
		EXPECT_EQ(req.n_out, 2);
		EXPECT_EQ(req.n_in, 2);
		for (i = 0; i < 4; i++) {
			EXPECT(req.iov[i].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(i), 1));
			EXPECT_EQ(req.iov[i].iov_len, 8 + i);
		}
		env_teardown(&e);
	}
}

/* A buffer across two regions comes back as two iovec entries. */
static void test_cross_region_buffer(void)
{
	struct vrd_buf out[1] = { { ENV_R1 - 0x10, 0x30 } };
	struct vrd_buf in[2] = { { ENV_R0 + ENV_R0_SIZE - 1, 2 }, { env_data(5), 4 } };
	struct hvn_vq_req req;
	struct vq_env e;

	env_setup(&e, 64, 0, 0);
	env_fill(&e, ENV_R1 - 0x10, 0x30, 9);
	EXPECT(vrd_add(&e.d, out, 1, in, 2, NULL, false) >= 0);
	vrd_publish(&e.d);
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(req.n_out, 2);
	EXPECT_EQ(req.n_in, 3);
	EXPECT(req.iov[0].iov_base == hvn_mem_gpa_to_ptr(e.mem, ENV_R1 - 0x10, 0x10));
	EXPECT_EQ(req.iov[0].iov_len, 0x10);
	EXPECT(req.iov[1].iov_base == hvn_mem_gpa_to_ptr(e.mem, ENV_R1, 0x20));
	EXPECT_EQ(req.iov[1].iov_len, 0x20);
	EXPECT(env_iov_equals(&e, req.iov, 2, ENV_R1 - 0x10, 0x30));
	EXPECT_EQ(req.iov[2].iov_len, 1);
	EXPECT_EQ(req.iov[3].iov_len, 1);
	EXPECT(req.iov[3].iov_base == hvn_mem_gpa_to_ptr(e.mem, ENV_R1, 1));
	EXPECT_EQ(req.iov[4].iov_len, 4);
	EXPECT_EQ(req.out_len, 0x30);
	EXPECT_EQ(req.in_len, 6);

	/* Too few iovecs: not the guest's fault; nothing consumed, not broken. */
	EXPECT(vrd_add(&e.d, out, 1, in, 2, NULL, false) >= 0);
	vrd_publish(&e.d);
	req_init(&req, 1);
	req.max_iov = 4;
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), -ENOBUFS);
	EXPECT_EQ(hvn_vq_error(e.vq), 0);
	EXPECT_EQ(hvn_vq_get_base(e.vq), 1);
	req.max_iov = 5;
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(hvn_vq_get_base(e.vq), 2);
	env_teardown(&e);
}

/* Zero-length descriptors are legal and produce no iovec. */
static void test_zero_length(void)
{
	struct vrd_buf out[3] = { { env_data(0), 0 }, { env_data(1), 8 }, { ENV_HOLE, 0 } };
	struct vrd_buf in[1] = { { env_data(2), 0 } };
	struct hvn_vq_req req;
	struct vq_env e;

	env_setup(&e, 8, 0, 0);
	EXPECT(vrd_add(&e.d, out, 3, in, 1, NULL, false) >= 0);
	vrd_publish(&e.d);
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(req.n_out, 1);
	EXPECT_EQ(req.n_in, 0);
	EXPECT_EQ(req.iov[0].iov_len, 8);
	env_teardown(&e);
}

static void test_batch_and_order(void)
{
	struct hvn_vq_req reqs[16];
	struct hvn_vq_done done[10];
	int tokens[10], heads[10];
	struct vq_env e;
	unsigned int i;

	env_setup(&e, 16, HVN_VQ_F_INDIRECT_DESC, 0);
	for (i = 0; i < 10; i++) {
		struct vrd_buf out = { env_data(i), 8 }, in = { env_data(16 + i), 64 };

		heads[i] = vrd_add(&e.d, &out, 1, &in, 1, &tokens[i], i % 3 == 0);
		EXPECT(heads[i] >= 0);
	}
	vrd_publish(&e.d);
	for (i = 0; i < 16; i++)
		req_init(&reqs[i], i);

	/* Pop many: as many as asked, then the rest, then none. */
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs, 4), 4);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs + 4, 16), 6);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs + 10, 6), 0);
	for (i = 0; i < 10; i++) {
		EXPECT_EQ(reqs[i].head, heads[i]);
		EXPECT(reqs[i].iov[0].iov_base == hvn_mem_gpa_to_ptr(e.mem, env_data(i), 8));
		EXPECT_EQ(reqs[i].in_len, 64);
	}

	/* Out of order: complete the odd ones in reverse, in one batch. */
	for (i = 0; i < 5; i++) {
		done[i].head = reqs[9 - 2 * i].head;
		done[i].len = 9 - 2 * i;
	}
	EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 5), 0);
	/* One index update published all five. */
	EXPECT_EQ(le16toh(e.d.used->idx), 5);
	for (i = 0; i < 5; i++)
		expect_used(&e, heads[9 - 2 * i], 9 - 2 * i, &tokens[9 - 2 * i]);
	/* In order for the even ones. */
	for (i = 0; i < 10; i += 2)
		EXPECT_EQ(hvn_vq_push(e.vq, reqs[i].head, i), 0);
	for (i = 0; i < 10; i += 2)
		expect_used(&e, heads[i], i, &tokens[i]);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 0);

	/* Everything was given back: the driver can fill the ring again. */
	EXPECT_EQ(e.d.num_free, 16);
	for (i = 0; i < 16; i++) {
		struct vrd_buf out = { env_data(i), 8 };

		EXPECT(vrd_add(&e.d, &out, 1, NULL, 0, NULL, false) >= 0);
	}
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs, 16), 16);
	env_teardown(&e);
}

static void test_push_errors(void)
{
	struct hvn_vq_done done[4];
	struct hvn_vq_req reqs[4];
	struct vq_env e;
	unsigned int i;

	env_setup(&e, 8, 0, 0);
	for (i = 0; i < 4; i++) {
		struct vrd_buf in = { env_data(i), 8 };

		EXPECT(vrd_add(&e.d, NULL, 0, &in, 1, NULL, false) >= 0);
		req_init(&reqs[i], i);
	}
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, reqs, 4), 4);

	/* Heads not in flight, or out of range, are the caller's bug. */
	EXPECT_EQ(hvn_vq_push(e.vq, 7, 0), -EINVAL);
	EXPECT_EQ(hvn_vq_push(e.vq, 8, 0), -EINVAL);
	EXPECT_EQ(hvn_vq_push(e.vq, 0xffff, 0), -EINVAL);
	EXPECT_EQ(hvn_vq_push(e.vq, reqs[0].head, 1), 0);
	EXPECT_EQ(hvn_vq_push(e.vq, reqs[0].head, 1), -EINVAL);
	EXPECT_EQ(le16toh(e.d.used->idx), 1);

	/* A batch stops at the first bad entry, having pushed those before it. */
	done[0] = (struct hvn_vq_done){ .head = reqs[1].head, .len = 2 };
	done[1] = (struct hvn_vq_done){ .head = reqs[2].head, .len = 3 };
	done[2] = (struct hvn_vq_done){ .head = reqs[1].head, .len = 4 };
	done[3] = (struct hvn_vq_done){ .head = reqs[3].head, .len = 5 };
	EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 4), -EINVAL);
	EXPECT_EQ(le16toh(e.d.used->idx), 3);
	EXPECT_EQ(hvn_vq_push(e.vq, reqs[3].head, 5), 0);
	EXPECT_EQ(le16toh(e.d.used->idx), 4);
	env_teardown(&e);
}

/* GET_VRING_BASE / SET_VRING_BASE: stop, read the base, restart from it. */
static void test_base_and_restart(void)
{
	struct vrd_buf in = { env_data(0), 8 };
	struct hvn_vq_req req;
	struct hvn_vq_state st;
	struct vq_env e;
	unsigned int i;
	int head;

	env_setup(&e, 4, 0, ENV_NO_START);
	/* A ring that has run a while: both indices just below the wrap. */
	vrd_set_indices(&e.d, 65533);
	EXPECT_EQ(hvn_vq_set_base(e.vq, 65533), 0);
	EXPECT_EQ(hvn_vq_get_base(e.vq), 65533);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	req_init(&req, 0);
	for (i = 0; i < 2; i++) {
		head = vrd_add(&e.d, NULL, 0, &in, 1, NULL, false);
		vrd_publish(&e.d);
		EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
		EXPECT_EQ(req.head, head);
		EXPECT_EQ(hvn_vq_push(e.vq, req.head, 8), 0);
		EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	}
	EXPECT_EQ(hvn_vq_get_base(e.vq), 65535);

	/* Stop with one request published but not popped, one in flight. */
	head = vrd_add(&e.d, NULL, 0, &in, 1, NULL, false);
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT(vrd_add(&e.d, NULL, 0, &in, 1, NULL, false) >= 0);
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_stop(e.vq), 0);
	EXPECT_EQ(hvn_vq_get_base(e.vq), 0);	/* wrapped */
	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT_EQ(st.flags, 0);
	EXPECT_EQ(st.inflight, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), -EBADFD);
	/* In flight at restart is refused; completing it after stop writes nothing. */
	EXPECT_EQ(hvn_vq_start(e.vq), -EBUSY);
	EXPECT_EQ(hvn_vq_push(e.vq, (uint16_t)head, 8), 0);
	EXPECT_EQ(le16toh(e.d.used->idx), 65535);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);

	/* A new backend resumes: base from GET_VRING_BASE, used index from the ring. */
	EXPECT_EQ(hvn_vq_set_base(e.vq, 0), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT_EQ(st.used_idx, 65535);
	EXPECT_EQ(st.last_avail_idx, 1);
	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 8), 0);
	EXPECT_EQ(le16toh(e.d.used->idx), 0);
	env_teardown(&e);
}

/* The largest queue: fill all 32768 entries, pop them, give them all back. */
static void test_max_size(void)
{
	static struct hvn_vq_req reqs[256];
	static struct iovec iov[256][2];
	struct hvn_vq_done done[256];
	struct hvn_vq_addr addr;
	struct vring_driver d;
	struct hvn_mem *mem;
	struct hvn_vq *vq;
	struct gmem g;
	unsigned int i, total = 0;

	gmem_init(&g);
	EXPECT_EQ(gmem_add(&g, 0, 1 << 20, 0), 0);
	EXPECT_EQ(hvn_mem_new(&mem), 0);
	EXPECT_EQ(gmem_attach(&g, mem), 0);
	EXPECT_EQ(vrd_init(&d, &g, 32768, 0, 0), 0);
	EXPECT_EQ(hvn_vq_new(mem, &vq), 0);
	EXPECT_EQ(hvn_vq_set_size(vq, 32768), 0);
	vrd_addr(&d, false, &addr);
	EXPECT_EQ(hvn_vq_set_addr(vq, &addr), 0);
	EXPECT_EQ(hvn_vq_start(vq), 0);
	for (i = 0; i < 32768; i++) {
		struct vrd_buf b = { 0xf0000 + (i % 256), 1 };

		EXPECT(vrd_add(&d, &b, 1, NULL, 0, NULL, false) >= 0);
	}
	EXPECT_EQ(vrd_add(&d, (struct vrd_buf[]){ { 0xf0000, 1 } }, 1, NULL, 0, NULL, false),
		  -ENOSPC);
	vrd_publish(&d);
	for (i = 0; i < 256; i++) {
		reqs[i].iov = iov[i];
		reqs[i].max_iov = 2;
	}
	for (;;) {
		int n = hvn_vq_pop_batch(vq, reqs, 256), k;

		EXPECT(n >= 0);
		if (n == 0)
			break;
		for (k = 0; k < n; k++) {
			done[k].head = reqs[k].head;
			done[k].len = 0;
		}
		EXPECT_EQ(hvn_vq_push_batch(vq, done, (unsigned int)n), 0);
		total += (unsigned int)n;
	}
	EXPECT_EQ(total, 32768);
	for (i = 0; i < 32768; i++)
		EXPECT_EQ(vrd_get_used(&d, NULL, NULL, NULL), 1);
	EXPECT_EQ(d.num_free, 32768);
	hvn_vq_free(vq);
	hvn_mem_free(mem);
	vrd_free(&d);
	gmem_free(&g);
}

int main(void)
{
	RUN(test_config);
	RUN(test_simple_uva);
	RUN(test_simple_gpa);
	RUN(test_simple_indirect);
	RUN(test_direct_then_indirect);
	RUN(test_indirect_slow_paths);
	RUN(test_cross_region_buffer);
	RUN(test_zero_length);
	RUN(test_batch_and_order);
	RUN(test_push_errors);
	RUN(test_base_and_restart);
	RUN(test_max_size);
	return 0;
}
