// SPDX-License-Identifier: MIT
/*
 * vq-inflight.c - inflight tracking on the split ring (hvn_vq_set_inflight,
 * vhost-user's INFLIGHT_SHMFD): that pop and push keep the region exactly
 * as the protocol describes (flags, counters, the batch list, used_idx);
 * that a queue started on a region left by a backend that died resubmits
 * exactly the chains whose completion never reached the used ring, oldest
 * first, and resumes the available ring after them, whichever step of a
 * pop or a push the death interrupted; and, for real, that a backend
 * process killed with SIGKILL at random moments, over and over, loses no
 * completion and completes none twice.
 *
 * The region is a memfd mapped shared, as a frontend keeps it; guest
 * memory is memfds too (support/guest_mem), so a forked backend shares
 * both with the test, which plays the guest's driver.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

#define NIOV 8

/* The region's layout, written out here from vhost-user.rst, not taken
 * from the library: the test checks the library against the protocol. */
struct ifl_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct ifl {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct ifl_desc desc[];
};

static struct ifl *region_new(unsigned int desc_num)
{
	uint64_t size = hvn_vq_inflight_size(desc_num);
	int fd = memfd_create("test-inflight", MFD_CLOEXEC);
	void *p;

	EXPECT(size && fd >= 0 && ftruncate(fd, (off_t)size) == 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(p != MAP_FAILED);
	close(fd);
	return p;
}

static void region_free(struct ifl *r, unsigned int desc_num)
{
	munmap(r, hvn_vq_inflight_size(desc_num));
}

static struct iovec iovs[64][NIOV];

static void req_init(struct hvn_vq_req *req, unsigned int i)
{
	memset(req, 0, sizeof(*req));
	req->iov = iovs[i];
	req->max_iov = NIOV;
}

/* A new backend's queue on the same guest, ring and region: what a
 * backend started after one that died does.  The frontend sets the base
 * to the used index, as QEMU does when GET_VRING_BASE failed. */
static struct hvn_vq *vq_restart(struct vq_env *e, struct ifl *r, unsigned int desc_num,
				 int expect_start)
{
	struct hvn_vq_addr addr;
	struct hvn_vq *vq;

	EXPECT_EQ(hvn_vq_new(e->mem, &vq), 0);
	EXPECT_EQ(hvn_vq_set_size(vq, e->num), 0);
	EXPECT_EQ(hvn_vq_set_features(vq, e->features), 0);
	vrd_addr(&e->d, false, &addr);
	EXPECT_EQ(hvn_vq_set_addr(vq, &addr), 0);
	EXPECT_EQ(hvn_vq_set_base(vq, le16toh(e->d.used->idx)), 0);
	EXPECT_EQ(hvn_vq_set_inflight(vq, r, desc_num), 0);
	EXPECT_EQ(hvn_vq_start(vq), expect_start);
	return vq;
}

/* Add a request with an 8-byte readable id and an 8-byte writable answer. */
static int add_req(struct vq_env *e, unsigned int slot, uint64_t id)
{
	struct vrd_buf out = { env_data(2 * slot), 8 }, in = { env_data(2 * slot + 1), 8 };
	uint64_t *po = gmem_ptr(&e->g, out.gpa, 8), *pi = gmem_ptr(&e->g, in.gpa, 8);

	*po = id;
	*pi = UINT64_MAX;	/* never a valid answer */
	return vrd_add(&e->d, &out, 1, &in, 1, (void *)(uintptr_t)(slot + 1), false);
}

/* The device's work: the answer is the id, so a chain run twice gives the
 * same answer (as a block write writes the same data twice). */
static void execute(const struct hvn_vq_req *req)
{
	EXPECT(req->n_out == 1 && req->n_in == 1 && req->iov[0].iov_len == 8 &&
	       req->iov[1].iov_len == 8);
	memcpy(req->iov[1].iov_base, req->iov[0].iov_base, 8);
}

/* ------------------------------------------------------------ the size -- */

static void test_size(void)
{
	unsigned int n;

	EXPECT_EQ(hvn_vq_inflight_size(0), 0);
	EXPECT_EQ(hvn_vq_inflight_size(HVN_VQ_MAX_SIZE + 1), 0);
	EXPECT_EQ(hvn_vq_inflight_size(1), 64);
	EXPECT_EQ(hvn_vq_inflight_size(4), 128);
	EXPECT_EQ(hvn_vq_inflight_size(128), 2112);	/* QEMU's vhost-user-blk default */
	for (n = 1; n <= HVN_VQ_MAX_SIZE; n++) {
		uint64_t s = hvn_vq_inflight_size(n);

		/* libvhost-user's vu_inflight_queue_size(), and room for the header */
		EXPECT_EQ(s, (16 * (uint64_t)n + 2 + 63) / 64 * 64);
		EXPECT(s >= sizeof(struct ifl) + 16 * (uint64_t)n);
	}
}

/* ------------------------------------------------------- configuration -- */

static void test_config(void)
{
	struct ifl *r = region_new(16);
	struct vq_env e;

	env_setup(&e, 16, HVN_VQ_F_VERSION_1, ENV_NO_START);
	EXPECT_EQ(hvn_vq_set_inflight(NULL, r, 16), -EINVAL);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 0), -EINVAL);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, HVN_VQ_MAX_SIZE + 1), -EINVAL);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, (char *)r + 4, 16), -EINVAL);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, NULL, 16), -EINVAL);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, NULL, 0), 0);
	/* A ring bigger than the region tracks: refused at the start. */
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 8), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), -EINVAL);
	EXPECT_EQ(r->version, 0);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 16), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, NULL, 0), -EBUSY);
	EXPECT_EQ(hvn_vq_stop(e.vq), 0);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, NULL, 0), 0);
	env_teardown(&e);
	region_free(r, 16);
}

/* ------------------------------------------------- exact bookkeeping -- */

static void test_bookkeeping(void)
{
	struct ifl *r = region_new(16);
	struct hvn_vq_req req[8];
	struct hvn_vq_done done[2];
	struct hvn_vq_state st;
	uint16_t h[6];
	struct vq_env e;
	unsigned int i;

	env_setup(&e, 16, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX, ENV_NO_START);
	memset(r, 0xee, sizeof(*r) + 16 * sizeof(r->desc[0]));
	r->version = 0;		/* "never used": the start must clear the rest */
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 16), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	EXPECT_EQ(r->version, 1);
	EXPECT_EQ(r->desc_num, 16);
	EXPECT_EQ(r->used_idx, 0);
	EXPECT_EQ(r->last_batch_head, 0);
	EXPECT_EQ(r->features, e.features);
	for (i = 0; i < 16; i++)
		EXPECT(r->desc[i].inflight == 0 && r->desc[i].counter == 0 && r->desc[i].next == 0);
	EXPECT_EQ(hvn_vq_get_state(e.vq, &st), 0);
	EXPECT(st.flags & HVN_VQ_STATE_INFLIGHT);
	EXPECT(!(st.flags & HVN_VQ_STATE_RECOVERED));
	EXPECT_EQ(st.resubmit, 0);

	/* Pop four: each flagged, counters in pop order. */
	for (i = 0; i < 4; i++)
		EXPECT(add_req(&e, i, 100 + i) >= 0);
	vrd_publish(&e.d);
	for (i = 0; i < 8; i++)
		req_init(&req[i], i);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, req, 8), 4);
	for (i = 0; i < 4; i++) {
		h[i] = req[i].head;
		EXPECT_EQ(r->desc[h[i]].inflight, 1);
		EXPECT_EQ(r->desc[h[i]].counter, i + 1);
	}
	EXPECT_EQ(r->used_idx, 0);

	/* Complete the third alone: unflagged, used_idx follows the ring. */
	EXPECT_EQ(hvn_vq_push(e.vq, h[2], 8), 0);
	EXPECT_EQ(r->desc[h[2]].inflight, 0);
	EXPECT_EQ(r->last_batch_head, h[2]);
	EXPECT_EQ(r->used_idx, 1);
	EXPECT_EQ(r->desc[h[0]].inflight + r->desc[h[1]].inflight + r->desc[h[3]].inflight, 3);

	/* A batch of two: the batch list runs from its last head back. */
	done[0] = (struct hvn_vq_done){ .head = h[0], .len = 8 };
	done[1] = (struct hvn_vq_done){ .head = h[3], .len = 8 };
	EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 2), 0);
	EXPECT_EQ(r->last_batch_head, h[3]);
	EXPECT_EQ(r->desc[h[3]].next, h[0]);
	EXPECT_EQ(r->desc[h[0]].next, h[2]);	/* into the previous batch: never walked */
	EXPECT_EQ(r->desc[h[0]].inflight + r->desc[h[3]].inflight, 0);
	EXPECT_EQ(r->desc[h[1]].inflight, 1);
	EXPECT_EQ(r->used_idx, 3);
	EXPECT_EQ(le16toh(e.d.used->idx), 3);

	/* A head that is not in flight ends the batch where it stands. */
	done[0] = (struct hvn_vq_done){ .head = h[1], .len = 8 };
	done[1] = (struct hvn_vq_done){ .head = h[2], .len = 8 };
	EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 2), -EINVAL);
	EXPECT_EQ(r->desc[h[1]].inflight, 0);
	EXPECT_EQ(r->used_idx, 4);
	EXPECT_EQ(r->last_batch_head, h[1]);

	/* Counters go on from the last pop. */
	for (i = 0; i < 2; i++)
		EXPECT(add_req(&e, 4 + i, 200 + i) >= 0);
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, req, 8), 2);
	EXPECT_EQ(r->desc[req[0].head].counter, 5);
	EXPECT_EQ(r->desc[req[1].head].counter, 6);

	/* Stopped, a push only releases: neither the ring nor the region
	 * hears of it, and the chain counts as in flight for the next start. */
	EXPECT_EQ(hvn_vq_stop(e.vq), 0);
	EXPECT_EQ(hvn_vq_push(e.vq, req[0].head, 8), 0);
	EXPECT_EQ(r->desc[req[0].head].inflight, 1);
	EXPECT_EQ(r->used_idx, 4);
	EXPECT_EQ(hvn_vq_push(e.vq, req[1].head, 8), 0);
	env_teardown(&e);
	region_free(r, 16);
}

/* ------------------------------------------- deaths, step by step -- */

/*
 * Where a backend can die, as the state it leaves: each is made by
 * running the real pop and push, then taking back the stores that come
 * after the point of death in program order (vq_split.c lists them).
 */
enum death {
	AFTER_POPS,		/* six popped, two completed, nothing else */
	BEFORE_PUBLISH,		/* batch list written, used->idx not yet */
	AFTER_PUBLISH,		/* used->idx published, no flag cleared */
	HALF_CLEARED,		/* one of the batch's two flags cleared */
	BEFORE_USED_IDX,	/* flags cleared, used_idx not yet */
	AFTER_PUSH,		/* the push finished */
	MID_POP,		/* the last pop wrote its counter, not its flag */
};

static const char *const death_names[] = {
	"after the pops", "before publishing a batch", "after publishing, no flag cleared",
	"after clearing half the batch's flags", "before recording used_idx",
	"after a whole push", "between a pop's counter and its flag",
};

static void test_death(enum death where)
{
	struct ifl *r = region_new(16);
	struct hvn_vq_req req[16];
	struct hvn_vq_done done[2];
	struct hvn_vq_state st;
	struct hvn_vq *vq;
	struct vq_env e;
	uint16_t h[6], old_idx, expect_heads[8], seen[16] = { 0 };
	unsigned int i, n_expect = 0, outstanding, reaped = 0;

	env_setup(&e, 16, HVN_VQ_F_VERSION_1, ENV_NO_START);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 16), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	for (i = 0; i < 6; i++)
		EXPECT(add_req(&e, i, 1000 + i) >= 0);
	vrd_publish(&e.d);
	for (i = 0; i < 16; i++)
		req_init(&req[i], i);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, req, 6), 6);
	for (i = 0; i < 6; i++) {
		h[i] = req[i].head;
		execute(&req[i]);
	}
	/* Two complete in a first batch, out of order. */
	done[0] = (struct hvn_vq_done){ .head = h[1], .len = 8 };
	done[1] = (struct hvn_vq_done){ .head = h[0], .len = 8 };
	EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 2), 0);

	/* The batch the death interrupts: h[3] and h[2]. */
	old_idx = le16toh(e.d.used->idx);
	if (where != AFTER_POPS && where != MID_POP) {
		done[0] = (struct hvn_vq_done){ .head = h[3], .len = 8 };
		done[1] = (struct hvn_vq_done){ .head = h[2], .len = 8 };
		EXPECT_EQ(hvn_vq_push_batch(e.vq, done, 2), 0);
	}
	switch (where) {
	case BEFORE_PUBLISH:
		e.d.used->idx = htole16(old_idx);
		/* fall through */
	case AFTER_PUBLISH:
		r->desc[h[2]].inflight = 1;
		/* fall through */
	case HALF_CLEARED:
		r->desc[h[3]].inflight = 1;
		/* fall through */
	case BEFORE_USED_IDX:
		r->used_idx = old_idx;
		break;
	case MID_POP:
		r->desc[h[5]].inflight = 0;
		break;
	default:
		break;
	}
	/* The backend is gone: its queue is dropped without another word. */
	hvn_vq_free(e.vq);
	e.vq = NULL;

	/* What must come back: every chain whose completion is not in the
	 * used ring, in pop order; a chain whose pop did not finish is not
	 * resubmitted but popped again as new. */
	if (where == AFTER_POPS || where == BEFORE_PUBLISH || where == MID_POP) {
		expect_heads[n_expect++] = h[2];
		expect_heads[n_expect++] = h[3];
	}
	expect_heads[n_expect++] = h[4];
	if (where != MID_POP)
		expect_heads[n_expect++] = h[5];

	vq = vq_restart(&e, r, 16, 0);
	EXPECT_EQ(hvn_vq_get_state(vq, &st), 0);
	EXPECT(st.flags & HVN_VQ_STATE_RECOVERED);
	EXPECT_EQ(st.resubmit, n_expect);
	EXPECT_EQ(st.used_idx, le16toh(e.d.used->idx));
	EXPECT_EQ(st.last_avail_idx, (uint16_t)(st.used_idx + n_expect));
	EXPECT_EQ(r->used_idx, st.used_idx);	/* the region agrees with the ring now */

	/* Two new requests behind the ones in flight. */
	EXPECT(add_req(&e, 6, 1006) >= 0);
	EXPECT(add_req(&e, 7, 1007) >= 0);
	vrd_publish(&e.d);
	/* In flight: the six popped but those completed, and the two new. */
	outstanding = 6 - (n_expect + (where == MID_POP) == 4 ? 2 : 4) + 2;
	for (i = 0; i < 16; i++)
		req_init(&req[i], i);
	/* One at a time: the resubmitted first, oldest first, then the rest. */
	for (i = 0; i < n_expect; i++) {
		EXPECT_EQ(hvn_vq_pop(vq, &req[i]), 1);
		EXPECT_EQ(req[i].head, expect_heads[i]);
		EXPECT_EQ(r->desc[req[i].head].inflight, 1);
	}
	EXPECT_EQ(hvn_vq_get_state(vq, &st), 0);
	EXPECT_EQ(st.resubmit, 0);
	EXPECT_EQ(hvn_vq_pop_batch(vq, &req[n_expect], 16 - n_expect),
		  (int)(outstanding - n_expect));
	if (where == MID_POP)
		EXPECT_EQ(req[n_expect].head, h[5]);	/* popped again, as new */
	for (i = 0; i < outstanding; i++)
		execute(&req[i]);
	for (i = 0; i < outstanding; i++)	/* newest first */
		EXPECT_EQ(hvn_vq_push(vq, req[outstanding - 1 - i].head, 8), 0);
	EXPECT_EQ(hvn_vq_pop(vq, &req[0]), 0);

	/* The driver: every request exactly once, with its own answer. */
	for (;;) {
		uint16_t head;
		uint32_t len;
		void *tok;
		int got = vrd_get_used(&e.d, &head, &len, &tok);
		unsigned int slot;

		if (got == 0)
			break;
		EXPECT_EQ(got, 1);	/* -EIO: a head completed that was not in flight */
		slot = (unsigned int)(uintptr_t)tok - 1;
		EXPECT_EQ(*(uint64_t *)gmem_ptr(&e.g, env_data(2 * slot + 1), 8), 1000 + slot);
		EXPECT_EQ(seen[slot]++, 0);
		reaped++;
	}
	EXPECT_EQ(reaped, 8);
	for (i = 0; i < 8; i++)
		EXPECT_EQ(seen[i], 1);
	for (i = 0; i < 16; i++)
		EXPECT_EQ(r->desc[i].inflight, 0);
	printf("ok   death %s: %u resubmitted, 8 of 8 completed once\n", death_names[where], n_expect);
	hvn_vq_free(vq);
	env_teardown(&e);
	region_free(r, 16);
}

static void test_deaths(void)
{
	enum death d;

	for (d = AFTER_POPS; d <= MID_POP; d++)
		test_death(d);
}

/* ------------------------------------------ a stop, and bad regions -- */

static void test_stop_with_resubmits(void)
{
	struct ifl *r = region_new(16);
	struct hvn_vq_req req[4];
	struct hvn_vq_state st;
	struct hvn_vq *vq;
	struct vq_env e;
	unsigned int i;

	env_setup(&e, 16, HVN_VQ_F_VERSION_1, ENV_NO_START);
	EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 16), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	for (i = 0; i < 3; i++)
		EXPECT(add_req(&e, i, 10 + i) >= 0);
	vrd_publish(&e.d);
	for (i = 0; i < 4; i++)
		req_init(&req[i], i);
	EXPECT_EQ(hvn_vq_pop_batch(e.vq, req, 4), 3);
	hvn_vq_free(e.vq);
	e.vq = NULL;

	vq = vq_restart(&e, r, 16, 0);
	EXPECT_EQ(hvn_vq_pop(vq, &req[0]), 1);
	/* Stopped with two still to hand out: the index counts all three as
	 * taken, and the next start on the region hands out all three again
	 * (the one popped never completed either). */
	EXPECT_EQ(hvn_vq_stop(vq), 0);
	EXPECT_EQ(hvn_vq_get_base(vq), 3);
	EXPECT_EQ(hvn_vq_get_state(vq, &st), 0);
	EXPECT_EQ(st.resubmit, 0);
	EXPECT_EQ(hvn_vq_push(vq, req[0].head, 8), 0);	/* only released */
	EXPECT_EQ(hvn_vq_set_base(vq, 3), 0);
	EXPECT_EQ(hvn_vq_start(vq), 0);
	EXPECT_EQ(hvn_vq_get_state(vq, &st), 0);
	EXPECT_EQ(st.resubmit, 3);
	EXPECT_EQ(st.last_avail_idx, 3);

	/* A hostile driver offers one of them again: that breaks the queue. */
	vrd_put_raw(&e.d, req[0].head);
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop_batch(vq, req, 4), 3);
	EXPECT_EQ(hvn_vq_pop(vq, &req[3]), -EALREADY);
	hvn_vq_free(vq);
	env_teardown(&e);
	region_free(r, 16);
}

static void test_bad_regions(void)
{
	static const char *const what[] = {
		"version 2", "desc_num not the one given", "a flag of 2",
		"a head in flight beyond the ring", "a last batch longer than the ring",
		"a batch list that leaves the ring",
	};
	unsigned int k;

	for (k = 0; k < sizeof(what) / sizeof(what[0]); k++) {
		struct ifl *r = region_new(32);
		struct vq_env e;

		env_setup(&e, 16, HVN_VQ_F_VERSION_1, ENV_NO_START);
		r->version = 1;
		r->desc_num = 32;
		switch (k) {
		case 0: r->version = 2; break;
		case 1: r->desc_num = 16; break;
		case 2: r->desc[3].inflight = 2; break;
		case 3: r->desc[20].inflight = 1; break;
		case 4: r->used_idx = (uint16_t)(0 - 17); break;
		case 5: r->used_idx = (uint16_t)(0 - 2); r->last_batch_head = 3;
			r->desc[3].next = 25; break;
		}
		EXPECT_EQ(hvn_vq_set_inflight(e.vq, r, 32), 0);
		EXPECT_EQ(hvn_vq_start(e.vq), -EBADMSG);
		printf("ok   a region with %s: refused at the start\n", what[k]);
		env_teardown(&e);
		region_free(r, 32);
	}
}

/* ------------------------------------------ SIGKILL, for real -- */

#define KILL_RING	64
#define KILLS		300

/* What each backend process says about its start, shared with the test. */
struct report {
	uint32_t started, resubmitted;
	uint32_t iters;		/* rounds of the backend's loop */
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rnd_state;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rnd_state >> 33);
}

/* The backend: pops, runs and completes in random order and batches,
 * until it is killed. */
static void __attribute__((noreturn)) backend(struct vq_env *e, struct ifl *r, struct report *rep)
{
	static struct hvn_vq_req held[KILL_RING];
	static struct iovec iov[KILL_RING][NIOV];
	struct hvn_vq_done done[KILL_RING];
	struct hvn_vq_state st;
	struct hvn_vq *vq;
	unsigned int nheld = 0, i;
	int64_t last;

	/* It spins until killed: if the test dies first, so does it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	rnd_state = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	/* Each request keeps its own iovec array as the held list is
	 * shuffled: pop fills everything else. */
	for (i = 0; i < KILL_RING; i++) {
		held[i].iov = iov[i];
		held[i].max_iov = NIOV;
	}
	vq = vq_restart(e, r, KILL_RING, 0);
	EXPECT_EQ(hvn_vq_get_state(vq, &st), 0);
	rep->resubmitted = st.resubmit;
	__atomic_store_n(&rep->started, 1, __ATOMIC_RELEASE);
	for (last = now_us();; __atomic_store_n(&rep->iters, rep->iters + 1, __ATOMIC_RELAXED)) {
		unsigned int want = 1 + rnd() % 8, n;
		int got;

		if (want > KILL_RING - nheld)
			want = KILL_RING - nheld;
		got = want ? hvn_vq_pop_batch(vq, &held[nheld], want) : 0;
		EXPECT(got >= 0);
		for (i = 0; i < (unsigned int)got; i++)
			execute(&held[nheld + i]);
		nheld += (unsigned int)got;
		/*
		 * Like a device slower than its guest: it completes as new
		 * work comes in, or when the guest waits for it (everything
		 * it can have in flight is here, or nothing came for 20 ms),
		 * a random few at a time, in random order, as one batch.  So
		 * it mostly holds requests when it dies.
		 */
		if (got > 0 || nheld == KILL_RING / 2 || now_us() - last > 20000)
			last = now_us();
		else
			continue;
		n = nheld ? rnd() % (nheld + 1) : 0;
		for (i = 0; i < n; i++) {
			unsigned int k = rnd() % nheld;
			struct hvn_vq_req t = held[k];

			done[i] = (struct hvn_vq_done){ .head = t.head, .len = 8 };
			held[k] = held[nheld - 1];
			held[nheld - 1] = t;
			nheld--;
		}
		if (n)
			EXPECT_EQ(hvn_vq_push_batch(vq, done, n), 0);
	}
}

static void test_sigkill(void)
{
	struct ifl *r = region_new(KILL_RING);
	struct report *rep;
	struct vq_env e;
	uint64_t next_id = 1, *want;	/* per slot: the id in flight, 0 if free */
	unsigned int kills = 0, with_inflight = 0, mid_push = 0, resubmitted = 0;
	unsigned long completed = 0;
	int64_t deadline;
	pid_t pid;
	int status;

	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EXPECT(rep != MAP_FAILED);
	want = calloc(KILL_RING, sizeof(*want));
	EXPECT(want);
	env_setup(&e, KILL_RING, HVN_VQ_F_VERSION_1, ENV_NO_START);
	hvn_vq_free(e.vq);	/* the backends make their own */
	e.vq = NULL;
	rnd_state = 42;

	for (;;) {
		uint32_t target;

		/* What the last backend left: a batch published but not yet
		 * recorded in the region is the case the start must repair. */
		if (r->version && r->used_idx != le16toh(e.d.used->idx))
			mid_push++;
		__atomic_store_n(&rep->started, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&rep->iters, 0, __ATOMIC_RELAXED);
		fflush(stdout);
		pid = fork();
		EXPECT(pid >= 0);
		if (pid == 0)
			backend(&e, r, rep);
		while (!__atomic_load_n(&rep->started, __ATOMIC_ACQUIRE))
			EXPECT(waitpid(pid, &status, WNOHANG) == 0);
		resubmitted += rep->resubmitted;
		with_inflight += rep->resubmitted > 0;

		/* The guest keeps the ring full and checks each completion
		 * until the backend has gone round its loop a random number
		 * of times (its progress, not the clock: on a loaded machine
		 * the two processes run in turns), then the backend dies.
		 * The last one gets five seconds to finish everything. */
		target = rnd() % 3000;
		deadline = now_us() + 5000000;
		while (kills < KILLS ? __atomic_load_n(&rep->iters, __ATOMIC_RELAXED) < target :
				       now_us() < deadline) {
			uint16_t head;
			uint32_t len;
			void *tok;
			int got;

			while (kills < KILLS && e.d.num_free >= 2) {
				unsigned int slot;

				for (slot = 0; want[slot]; slot++)
					;
				want[slot] = next_id;
				EXPECT(add_req(&e, slot, next_id++) >= 0);
				vrd_publish(&e.d);
			}
			got = vrd_get_used(&e.d, &head, &len, &tok);
			if (got == 0) {
				if (kills >= KILLS && e.d.num_free == KILL_RING)
					break;	/* all done */
				continue;
			}
			/* -EIO: the used ring names a head that is not in
			 * flight: a completion given twice. */
			EXPECT_EQ(got, 1);
			{
				unsigned int slot = (unsigned int)(uintptr_t)tok - 1;

				EXPECT(want[slot]);
				EXPECT_EQ(*(uint64_t *)gmem_ptr(&e.g, env_data(2 * slot + 1), 8),
					  want[slot]);
				want[slot] = 0;
				completed++;
			}
		}
		kill(pid, SIGKILL);
		EXPECT_EQ(waitpid(pid, &status, 0), pid);
		EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		if (kills == KILLS)
			break;
		kills++;
	}
	/* None lost: every request came back, after the last backend had
	 * five seconds to finish. */
	EXPECT_EQ(e.d.num_free, KILL_RING);
	EXPECT_EQ(completed, next_id - 1);
	printf("ok   %u SIGKILLs of a backend at random moments: %lu requests completed once each; "
	       "%u restarts resubmitted %u in all; %u deaths in the middle of a push\n",
	       kills, completed, with_inflight, resubmitted, mid_push);
	/* The point is the restarts that had something to resubmit. */
	EXPECT(with_inflight >= 20);
	env_teardown(&e);
	region_free(r, KILL_RING);
	free(want);
	munmap(rep, sizeof(*rep));
}

int main(void)
{
	RUN(test_size);
	RUN(test_config);
	RUN(test_bookkeeping);
	RUN(test_deaths);
	RUN(test_stop_with_resubmits);
	RUN(test_bad_regions);
	RUN(test_sigkill);
	return 0;
}
