// SPDX-License-Identifier: MIT
/*
 * mem-replace.c - removing or replacing guest memory while requests are in
 * flight.  The scheme under test (lib/vq_split.c, lib/mem_internal.h): a
 * popped request holds the memory snapshot it was translated with, so its
 * buffers stay mapped until it is pushed, and are unmapped then; a queue
 * moves its rings to the new snapshot at its next pop, push or
 * hvn_vq_update_mem().  "Mapped" is asked of the kernel, not of the library.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

static struct iovec iovs[8][8];

static void req_init(struct hvn_vq_req *req, unsigned int i)
{
	memset(req, 0, sizeof(*req));
	req->iov = iovs[i];
	req->max_iov = 8;
}

/* Asked of the kernel (/proc/self/maps), not of the library. */
static int mapped(const void *p)
{
	return host_mapped(p);
}

static int add_req(struct vq_env *e, uint64_t out_gpa, uint64_t in_gpa)
{
	struct vrd_buf out = { out_gpa, 16 }, in = { in_gpa, 8 };
	int head = vrd_add(&e->d, &out, 1, &in, 1, NULL, false);

	EXPECT(head >= 0);
	vrd_publish(&e->d);
	return head;
}

static void remove_region(struct vq_env *e, unsigned int i)
{
	struct hvn_mem_region r;

	gmem_region(&e->g, i, &r);
	EXPECT_EQ(hvn_mem_remove_region(e->mem, &r), 0);
}

/* Pop, remove the region under the request, check it stays, push, check it went. */
static void test_remove_in_flight(void)
{
	struct hvn_vq_req req, req2;
	struct vq_env e;
	uint8_t *in;

	env_setup(&e, 16, 0, 0);
	env_fill(&e, ENV_R1 + 0x100, 16, 3);
	add_req(&e, ENV_R1 + 0x100, ENV_R1 + 0x200);
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	in = req.iov[1].iov_base;
	EXPECT(in == hvn_mem_gpa_to_ptr(e.mem, ENV_R1 + 0x200, 8));

	remove_region(&e, 1);
	EXPECT(hvn_mem_gpa_to_ptr(e.mem, ENV_R1 + 0x200, 8) == NULL);
	/* The queue has moved to the new table; the request has not. */
	req_init(&req2, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req2), 0);
	EXPECT(mapped(in));
	EXPECT(env_iov_equals(&e, req.iov, 1, ENV_R1 + 0x100, 16));
	/* Still the guest's memory: a write shows in the guest's view. */
	memset(in, 0x77, 8);
	EXPECT_EQ(*(uint8_t *)gmem_ptr(&e.g, ENV_R1 + 0x207, 1), 0x77);

	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 8), 0);
	EXPECT(!mapped(in));
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);

	/* New requests use the new table, where R1 is gone. */
	add_req(&e, ENV_R1 + 0x100, ENV_R1 + 0x200);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req2), -EFAULT);
	env_teardown(&e);
}

/* SET_MEM_TABLE with a different fd for the same guest range. */
static void test_replace_in_flight(void)
{
	struct hvn_mem_region rs[3];
	struct hvn_vq_req old, new;
	uint8_t *old_in, *new_in;
	struct vq_env e;
	struct gmem g2;

	env_setup(&e, 16, 0, 0);
	gmem_init(&g2);
	EXPECT_EQ(gmem_add(&g2, ENV_R1, ENV_R1_SIZE, 0x1000), 0);
	memset(gmem_ptr(&g2, ENV_R1, ENV_R1_SIZE), 0xbb, ENV_R1_SIZE);
	memset(gmem_ptr(&e.g, ENV_R1, ENV_R1_SIZE), 0xaa, ENV_R1_SIZE);

	add_req(&e, ENV_R1 + 0x100, ENV_R1 + 0x200);
	req_init(&old, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &old), 1);
	old_in = old.iov[1].iov_base;

	gmem_region(&e.g, 0, &rs[0]);
	gmem_region(&g2, 0, &rs[1]);
	gmem_region(&e.g, 2, &rs[2]);
	EXPECT_EQ(hvn_mem_set_table(e.mem, rs, 3), 0);

	add_req(&e, ENV_R1 + 0x100, ENV_R1 + 0x200);
	req_init(&new, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &new), 1);
	new_in = new.iov[1].iov_base;
	EXPECT(new_in != old_in);
	/* Same guest address, different memory: each request sees its own. */
	EXPECT_EQ(*(uint8_t *)old.iov[0].iov_base, 0xaa);
	EXPECT_EQ(*(uint8_t *)new.iov[0].iov_base, 0xbb);
	EXPECT(mapped(old_in) && mapped(new_in));

	EXPECT_EQ(hvn_vq_push(e.vq, old.head, 8), 0);
	EXPECT(!mapped(old_in));
	EXPECT(mapped(new_in));
	EXPECT_EQ(hvn_vq_push(e.vq, new.head, 8), 0);
	EXPECT(mapped(new_in));
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	env_teardown(&e);
	gmem_free(&g2);
}

/* An idle queue lets go of removed memory at hvn_vq_update_mem() or its next pop. */
static void test_idle_queue(void)
{
	struct hvn_vq_req req;
	struct vq_env e;
	uint8_t *r1, *r2;

	env_setup(&e, 16, 0, 0);
	r1 = hvn_mem_gpa_to_ptr(e.mem, ENV_R1, 1);
	r2 = hvn_mem_gpa_to_ptr(e.mem, ENV_R2, 1);
	remove_region(&e, 1);
	EXPECT(mapped(r1));		/* the queue still holds the old table */
	EXPECT_EQ(hvn_vq_update_mem(e.vq), 0);
	EXPECT(!mapped(r1));

	remove_region(&e, 2);
	EXPECT(mapped(r2));
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 0);
	EXPECT(!mapped(r2));
	env_teardown(&e);
}

/* The rings' own region goes away: the queue breaks with -EFAULT, safely. */
static void test_ring_region_removed(void)
{
	struct hvn_vq_req req, req2;
	struct vq_env e;
	uint8_t *rings;

	env_setup(&e, 16, 0, 0);
	rings = hvn_mem_gpa_to_ptr(e.mem, ENV_R0, 1);
	add_req(&e, env_data(0), env_data(1));
	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	remove_region(&e, 0);
	req_init(&req2, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req2), -EFAULT);
	EXPECT_EQ(hvn_vq_error(e.vq), -EFAULT);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	/* The in-flight request still holds R0 (its buffers are there). */
	EXPECT(mapped(rings));
	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 8), 0);
	EXPECT(!mapped(rings));
	EXPECT_EQ(le16toh(e.d.used->idx), 0);	/* nothing written to a broken ring */
	env_teardown(&e);

	/* Noticed by enable_notify too, before it touches the rings. */
	env_setup(&e, 16, HVN_VQ_F_EVENT_IDX, 0);
	remove_region(&e, 0);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), -EFAULT);
	EXPECT_EQ(hvn_vq_error(e.vq), -EFAULT);
	env_teardown(&e);
}

/* The frontend re-sends its table with new fds for the same memory. */
static void test_ring_region_remapped(void)
{
	struct hvn_mem_region rs[3];
	struct hvn_vq_req req;
	struct vq_env e;
	uint8_t *old_rings, *new_rings;
	int fds[3], i;

	env_setup(&e, 16, HVN_VQ_F_EVENT_IDX, 0);
	old_rings = hvn_mem_gpa_to_ptr(e.mem, ENV_R0, 1);
	add_req(&e, env_data(0), env_data(1));
	for (i = 0; i < 3; i++) {
		gmem_region(&e.g, (unsigned int)i, &rs[i]);
		fds[i] = dup(rs[i].fd);
		EXPECT(fds[i] >= 0);
		rs[i].fd = fds[i];
	}
	EXPECT_EQ(hvn_mem_set_table(e.mem, rs, 3), 0);
	for (i = 0; i < 3; i++)
		close(fds[i]);
	new_rings = hvn_mem_gpa_to_ptr(e.mem, ENV_R0, 1);
	EXPECT(new_rings != old_rings);

	req_init(&req, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);	/* moves to the new mapping */
	EXPECT(!mapped(old_rings));
	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 3), 0);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(le16toh(*e.d.avail_event), 1);	/* written through the new mapping */
	{
		uint32_t len;

		EXPECT_EQ(vrd_get_used(&e.d, NULL, &len, NULL), 1);
		EXPECT_EQ(len, 3);
	}
	env_teardown(&e);
}

/*
 * Several generations in flight at once: each mapping goes exactly when
 * the last request of the last snapshot holding it is pushed.
 */
static void test_generations(void)
{
	struct hvn_mem_region rx, ry;
	struct hvn_vq_req a, b, c;
	uint8_t *x, *y;
	struct vq_env e;
	struct gmem gx;

	env_setup(&e, 16, 0, 0);
	gmem_init(&gx);
	EXPECT_EQ(gmem_add(&gx, 0x100000, 0x1000, 0), 0);
	EXPECT_EQ(gmem_add(&gx, 0x200000, 0x1000, 0), 1);
	gmem_region(&gx, 0, &rx);
	gmem_region(&gx, 1, &ry);

	add_req(&e, env_data(0), env_data(1));
	req_init(&a, 0);
	EXPECT_EQ(hvn_vq_pop(e.vq, &a), 1);		/* table 1: R0-R2 */

	EXPECT_EQ(hvn_mem_add_region(e.mem, &rx), 0);	/* table 2: + X */
	add_req(&e, 0x100000, 0x100010);
	req_init(&b, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &b), 1);
	x = b.iov[0].iov_base;

	EXPECT_EQ(hvn_mem_add_region(e.mem, &ry), 0);	/* table 3: + Y */
	add_req(&e, 0x100020, 0x200000);
	req_init(&c, 2);
	EXPECT_EQ(hvn_vq_pop(e.vq, &c), 1);
	y = c.iov[1].iov_base;
	EXPECT(c.iov[0].iov_base == x + 0x20);		/* X is shared, mapped once */

	EXPECT_EQ(hvn_mem_remove_region(e.mem, &rx), 0);	/* table 4 */
	EXPECT_EQ(hvn_mem_remove_region(e.mem, &ry), 0);	/* table 5 */
	EXPECT_EQ(hvn_vq_update_mem(e.vq), 0);
	EXPECT(mapped(x) && mapped(y));

	EXPECT_EQ(hvn_vq_push(e.vq, b.head, 0), 0);	/* table 2 goes; 3 still has X */
	EXPECT(mapped(x) && mapped(y));
	EXPECT_EQ(hvn_vq_push(e.vq, c.head, 0), 0);	/* table 3 goes: X and Y */
	EXPECT(!mapped(x) && !mapped(y));
	EXPECT_EQ(hvn_vq_push(e.vq, a.head, 0), 0);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	env_teardown(&e);
	gmem_free(&gx);
}

/* Freeing a queue with requests in flight on old tables releases them. */
static void test_free_in_flight(void)
{
	struct hvn_vq_req a, b;
	struct vq_env e;
	uint8_t *r1;

	env_setup(&e, 16, 0, 0);
	add_req(&e, ENV_R1, ENV_R1 + 0x10);
	add_req(&e, env_data(0), env_data(1));
	req_init(&a, 0);
	req_init(&b, 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &a), 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &b), 1);
	r1 = a.iov[0].iov_base;
	remove_region(&e, 1);
	EXPECT_EQ(hvn_vq_update_mem(e.vq), 0);
	EXPECT(mapped(r1));
	hvn_vq_free(e.vq);
	EXPECT(!mapped(r1));
	e.vq = NULL;
	env_teardown(&e);
}

/*
 * A control thread replaces the table over and over (new mappings for
 * every region, rings included) while the data thread keeps 8 requests in
 * flight and writes into each one's buffer just before pushing it.  If any
 * mapping went away too early, the write would fault.
 */
struct churn {
	struct hvn_mem *mem;
	struct hvn_mem_region tables[2][2];
	atomic_int stop;
	atomic_ulong changes;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		EXPECT_EQ(hvn_mem_set_table(c->mem, c->tables[atomic_load(&c->changes) & 1], 2), 0);
		atomic_fetch_add(&c->changes, 1);
	}
	return NULL;
}

static void test_concurrent_replace(void)
{
	enum { DEPTH = 8, ROUNDS = 20000, CHANGES = 1000 };
	struct hvn_vq_req reqs[DEPTH];
	struct hvn_vq_addr addr;
	struct vring_driver d;
	struct gmem g, gb;
	struct hvn_vq *vq;
	struct churn c;
	pthread_t t;
	unsigned int i, popped = 0, pushed = 0;

	gmem_init(&g);
	gmem_init(&gb);
	EXPECT_EQ(gmem_add(&g, 0, 0x10000, 0), 0);		/* rings */
	EXPECT_EQ(gmem_add(&g, 0x10000, 0x1000, 0), 1);	/* X, first file */
	EXPECT_EQ(gmem_add(&gb, 0x10000, 0x1000, 0), 0);	/* X, second file */
	memset(&c, 0, sizeof(c));
	EXPECT_EQ(hvn_mem_new(&c.mem), 0);
	gmem_region(&g, 0, &c.tables[0][0]);
	gmem_region(&g, 1, &c.tables[0][1]);
	gmem_region(&g, 0, &c.tables[1][0]);
	gmem_region(&gb, 0, &c.tables[1][1]);
	/* The second table gives X's uaddr as the first file's: same frontend. */
	c.tables[1][1].uaddr = c.tables[0][1].uaddr;
	EXPECT_EQ(hvn_mem_set_table(c.mem, c.tables[0], 2), 0);

	EXPECT_EQ(vrd_init(&d, &g, 16, 0, 0), 0);
	EXPECT_EQ(hvn_vq_new(c.mem, &vq), 0);
	EXPECT_EQ(hvn_vq_set_size(vq, 16), 0);
	vrd_addr(&d, false, &addr);
	EXPECT_EQ(hvn_vq_set_addr(vq, &addr), 0);
	EXPECT_EQ(hvn_vq_start(vq), 0);
	for (i = 0; i < DEPTH; i++)
		req_init(&reqs[i], i);

	EXPECT_EQ(pthread_create(&t, NULL, churn_thread, &c), 0);
	/* At least ROUNDS requests, and at least CHANGES tables under them. */
	while (pushed < ROUNDS || popped != pushed || atomic_load(&c.changes) < CHANGES) {
		bool more = pushed < ROUNDS || atomic_load(&c.changes) < CHANGES;

		if (popped - pushed < DEPTH && more) {
			struct vrd_buf in = { 0x10000 + 64 * (popped % DEPTH), 64 };

			EXPECT(vrd_add(&d, NULL, 0, &in, 1, NULL, false) >= 0);
			vrd_publish(&d);
			EXPECT_EQ(hvn_vq_pop(vq, &reqs[popped % DEPTH]), 1);
			popped++;
		} else {
			struct hvn_vq_req *r = &reqs[pushed % DEPTH];

			EXPECT_EQ(r->n_in, 1);
			memset(r->iov[0].iov_base, (int)pushed, r->iov[0].iov_len);
			EXPECT_EQ(hvn_vq_push(vq, r->head, 64), 0);
			EXPECT_EQ(vrd_get_used(&d, NULL, NULL, NULL), 1);
			pushed++;
		}
	}
	atomic_store(&c.stop, 1);
	EXPECT_EQ(pthread_join(t, NULL), 0);
	EXPECT_EQ(hvn_vq_error(vq), 0);
	printf("  %u requests, %lu table changes\n", pushed, atomic_load(&c.changes));
	EXPECT(atomic_load(&c.changes) >= CHANGES);

	hvn_vq_free(vq);
	hvn_mem_free(c.mem);
	vrd_free(&d);
	gmem_free(&g);
	gmem_free(&gb);
}

int main(void)
{
	RUN(test_remove_in_flight);
	RUN(test_replace_in_flight);
	RUN(test_idle_queue);
	RUN(test_ring_region_removed);
	RUN(test_ring_region_remapped);
	RUN(test_generations);
	RUN(test_free_in_flight);
	RUN(test_concurrent_replace);
	return 0;
}
