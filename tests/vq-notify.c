// SPDX-License-Identifier: MIT
/*
 * vq-notify.c - notification suppression in both directions: the
 * driver's kick decision against the device's NO_NOTIFY flag or
 * avail_event, the device's interrupt decision against the driver's
 * NO_INTERRUPT flag or used_event, the re-check that catches a request
 * landing while notifications were off, and 16-bit wrap-around of every
 * index with EVENT_IDX.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <hvnotify/vq.h>

#include "support/expect.h"
#include "support/vq_env.h"

static struct iovec iov[8];
static struct hvn_vq_req req = { .iov = iov, .max_iov = 8 };

/* The driver adds one request and publishes it; returns its kick decision. */
static bool add_one(struct vq_env *e)
{
	struct vrd_buf b = { env_data(0), 8 };

	EXPECT(vrd_add(&e->d, NULL, 0, &b, 1, NULL, false) >= 0);
	vrd_publish(&e->d);
	return vrd_kick_needed(&e->d);
}

/* The device pops one request and pushes it back. */
static void serve_one(struct vq_env *e)
{
	EXPECT_EQ(hvn_vq_pop(e->vq, &req), 1);
	EXPECT_EQ(hvn_vq_push(e->vq, req.head, 8), 0);
}

static uint16_t avail_event(struct vq_env *e)
{
	return le16toh(*e->d.avail_event);
}

static void test_kick_flags(void)
{
	struct vq_env e;

	env_setup(&e, 8, 0, 0);
	/* Started: the device asks for kicks. */
	EXPECT_EQ(le16toh(e.d.used->flags), 0);
	EXPECT(add_one(&e));
	EXPECT(add_one(&e));
	/* Processing: the driver is told not to kick. */
	EXPECT_EQ(hvn_vq_disable_notify(e.vq), 0);
	EXPECT_EQ(le16toh(e.d.used->flags), VRD_USED_F_NO_NOTIFY);
	EXPECT(!add_one(&e));
	serve_one(&e);
	serve_one(&e);
	serve_one(&e);
	/* Nothing came in meanwhile: enable says "sleep". */
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(le16toh(e.d.used->flags), 0);
	EXPECT(add_one(&e));
	/* Without EVENT_IDX avail_event is never written. */
	EXPECT_EQ(avail_event(&e), 0);
	env_teardown(&e);
}

static void test_kick_event_idx(void)
{
	struct vq_env e;

	env_setup(&e, 8, HVN_VQ_F_EVENT_IDX, 0);
	/* Started: "kick me when you publish past entry 0". */
	EXPECT_EQ(avail_event(&e), 0);
	EXPECT(add_one(&e));		/* 0 -> 1 crosses 0 */
	EXPECT(!add_one(&e));		/* 1 -> 2 does not */
	/* Disabling writes nothing: avail_event just stays behind. */
	EXPECT_EQ(hvn_vq_disable_notify(e.vq), 0);
	EXPECT_EQ(le16toh(e.d.used->flags), 0);
	EXPECT(!add_one(&e));
	serve_one(&e);
	serve_one(&e);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(avail_event(&e), 3);
	EXPECT(add_one(&e));		/* 3 -> 4 crosses 3 */
	/* A batch of two published at once still crosses it once. */
	serve_one(&e);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(avail_event(&e), 4);
	{
		struct vrd_buf b = { env_data(0), 8 };

		EXPECT(vrd_add(&e.d, NULL, 0, &b, 1, NULL, false) >= 0);
		EXPECT(vrd_add(&e.d, NULL, 0, &b, 1, NULL, false) >= 0);
		vrd_publish(&e.d);
		EXPECT(vrd_kick_needed(&e.d));
	}
	env_teardown(&e);
}

/*
 * The lost-wakeup window: the driver publishes while the device has
 * notifications off, so it does not kick; the device's enable must find
 * the request itself.
 */
static void gap(uint64_t features)
{
	struct vq_env e;

	env_setup(&e, 8, features, 0);
	EXPECT(add_one(&e));
	EXPECT_EQ(hvn_vq_disable_notify(e.vq), 0);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 0);	/* ring looks empty ... */
	EXPECT(!add_one(&e));			/* ... a request lands, no kick ... */
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 1);	/* ... and enable catches it */
	serve_one(&e);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT(add_one(&e));
	env_teardown(&e);
}

static void test_gap_flags(void) { gap(0); }
static void test_gap_event_idx(void) { gap(HVN_VQ_F_EVENT_IDX); }

static void test_interrupt_flags(void)
{
	struct vq_env e;

	env_setup(&e, 8, 0, 0);
	EXPECT(add_one(&e));
	EXPECT(add_one(&e));
	EXPECT(add_one(&e));
	/* Nothing pushed yet: nothing to signal. */
	EXPECT(!vrd_enable_interrupts(&e.d));
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);	/* nothing new since */
	/* The driver polls: NO_INTERRUPT suppresses. */
	vrd_disable_interrupts(&e.d);
	EXPECT_EQ(le16toh(e.d.avail->flags), VRD_AVAIL_F_NO_INTERRUPT);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	/* Re-enabling finds what arrived meanwhile. */
	EXPECT(vrd_enable_interrupts(&e.d));
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT(!vrd_enable_interrupts(&e.d));
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
	env_teardown(&e);
}

static void test_interrupt_event_idx(void)
{
	struct vq_env e;
	int i;

	env_setup(&e, 8, HVN_VQ_F_EVENT_IDX, 0);
	for (i = 0; i < 5; i++)
		add_one(&e);
	/* used_event = 0: interrupt when the used index passes 0. */
	EXPECT(!vrd_enable_interrupts(&e.d));
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);	/* 0 -> 1 */
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);	/* 1 -> 2: guest not yet caught up */
	/* NO_INTERRUPT means nothing with EVENT_IDX: used_event rules. */
	e.d.avail->flags = htole16(VRD_AVAIL_F_NO_INTERRUPT);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT(!vrd_enable_interrupts(&e.d));		/* used_event = 2 */
	serve_one(&e);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);	/* 2 -> 4 crosses 2 */
	/* used_event ahead of the used index: no interrupt until it is reached. */
	*e.d.used_event = htole16(6);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);	/* 4 -> 5 */
	add_one(&e);
	add_one(&e);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);	/* 5 -> 6 */
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);	/* 6 -> 7 crosses 6 */
	env_teardown(&e);
}

/*
 * Every index wraps at 65535 -> 0.  The kick side: start both rings at
 * 65534 and follow avail_event across the wrap, checking that entries are
 * taken from the right ring slots.
 */
static void test_wrap_avail_event(void)
{
	uint16_t heads[4];
	struct vq_env e;

	env_setup(&e, 4, HVN_VQ_F_EVENT_IDX, ENV_NO_START);
	vrd_set_indices(&e.d, 65534);
	EXPECT_EQ(hvn_vq_set_base(e.vq, 65534), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	EXPECT_EQ(avail_event(&e), 65534);

	EXPECT(add_one(&e));				/* 65534 -> 65535 crosses 65534 */
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	heads[0] = req.head;
	EXPECT_EQ(le16toh(e.d.avail->ring[2]), heads[0]);	/* slot 65534 & 3 */
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(avail_event(&e), 65535);
	EXPECT(add_one(&e));				/* 65535 -> 0 crosses 65535 */
	EXPECT(!add_one(&e));				/* 0 -> 1 does not */
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	heads[1] = req.head;
	EXPECT_EQ(le16toh(e.d.avail->ring[3]), heads[1]);	/* slot 65535 & 3 */
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	heads[2] = req.head;
	EXPECT_EQ(le16toh(e.d.avail->ring[0]), heads[2]);	/* slot 0 */
	EXPECT_EQ(hvn_vq_get_base(e.vq), 1);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 0);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), 0);
	EXPECT_EQ(avail_event(&e), 1);
	EXPECT(add_one(&e));				/* 1 -> 2 crosses 1 */
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	heads[3] = req.head;
	EXPECT(heads[0] != heads[1] && heads[1] != heads[2] && heads[2] != heads[3]);
	env_teardown(&e);
}

/* The interrupt side: used_event and the used index across the wrap. */
static void test_wrap_used_event(void)
{
	struct vq_env e;
	uint16_t head;

	env_setup(&e, 4, HVN_VQ_F_EVENT_IDX, ENV_NO_START);
	vrd_set_indices(&e.d, 65533);
	EXPECT_EQ(hvn_vq_set_base(e.vq, 65533), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);

	add_one(&e);
	serve_one(&e);					/* used 65533 -> 65534 */
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT(!vrd_enable_interrupts(&e.d));		/* used_event = 65534 */
	add_one(&e);
	serve_one(&e);					/* 65534 -> 65535 */
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT(!vrd_enable_interrupts(&e.d));		/* used_event = 65535 */
	EXPECT_EQ(le16toh(*e.d.used_event), 65535);

	add_one(&e);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	head = req.head;
	EXPECT_EQ(hvn_vq_push(e.vq, head, 5), 0);	/* 65535 -> 0 */
	EXPECT_EQ(le16toh(e.d.used->idx), 0);
	EXPECT_EQ(le32toh(e.d.used->ring[3].id), head);	/* slot 65535 & 3 */
	EXPECT_EQ(le32toh(e.d.used->ring[3].len), 5);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);	/* crosses 65535 */
	/* The driver has not caught up: 0 -> 1 does not cross 65535. */
	add_one(&e);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), 1);
	EXPECT_EQ(hvn_vq_push(e.vq, req.head, 6), 0);
	EXPECT_EQ(le32toh(e.d.used->ring[0].id), req.head);	/* slot 0 */
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	/* Nor does a batch of two, 1 -> 3. */
	add_one(&e);
	add_one(&e);
	{
		struct hvn_vq_req r2[2] = { { .iov = iov, .max_iov = 4 },
					    { .iov = iov + 4, .max_iov = 4 } };
		struct hvn_vq_done d[2];

		EXPECT_EQ(hvn_vq_pop_batch(e.vq, r2, 2), 2);
		d[0] = (struct hvn_vq_done){ .head = r2[0].head, .len = 7 };
		d[1] = (struct hvn_vq_done){ .head = r2[1].head, .len = 8 };
		EXPECT_EQ(hvn_vq_push_batch(e.vq, d, 2), 0);
	}
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 0);
	EXPECT(!vrd_enable_interrupts(&e.d));		/* used_event = 3 */
	add_one(&e);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);	/* 3 -> 4 */
	env_teardown(&e);
}

/* The same wrap without EVENT_IDX: indices and slots, flags only. */
static void test_wrap_flags(void)
{
	struct vq_env e;
	int i;

	env_setup(&e, 2, 0, ENV_NO_START);
	vrd_set_indices(&e.d, 65535);
	EXPECT_EQ(hvn_vq_set_base(e.vq, 65535), 0);
	EXPECT_EQ(hvn_vq_start(e.vq), 0);
	for (i = 0; i < 6; i++) {
		EXPECT(add_one(&e));
		serve_one(&e);
		EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
		EXPECT_EQ(vrd_get_used(&e.d, NULL, NULL, NULL), 1);
	}
	EXPECT_EQ(hvn_vq_get_base(e.vq), 5);
	EXPECT_EQ(le16toh(e.d.used->idx), 5);
	env_teardown(&e);
}

/* After a restart the device cannot know what the driver saw: it signals. */
static void test_first_notify_after_start(void)
{
	struct vq_env e;

	env_setup(&e, 4, HVN_VQ_F_EVENT_IDX, 0);
	add_one(&e);
	*e.d.used_event = htole16(100);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 1);
	add_one(&e);
	serve_one(&e);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	env_teardown(&e);
}

/* A broken queue asks for nothing and signals nothing. */
static void test_broken_is_quiet(void)
{
	struct vq_env e;

	env_setup(&e, 4, 0, 0);
	add_one(&e);
	serve_one(&e);
	vrd_put_raw(&e.d, 4);	/* head out of range */
	vrd_publish(&e.d);
	EXPECT_EQ(hvn_vq_pop(e.vq, &req), -ERANGE);
	EXPECT_EQ(hvn_vq_should_notify(e.vq), 0);
	EXPECT_EQ(hvn_vq_enable_notify(e.vq), -ERANGE);
	EXPECT_EQ(hvn_vq_disable_notify(e.vq), -ERANGE);
	env_teardown(&e);
}

int main(void)
{
	RUN(test_kick_flags);
	RUN(test_kick_event_idx);
	RUN(test_gap_flags);
	RUN(test_gap_event_idx);
	RUN(test_interrupt_flags);
	RUN(test_interrupt_event_idx);
	RUN(test_wrap_avail_event);
	RUN(test_wrap_used_event);
	RUN(test_wrap_flags);
	RUN(test_first_notify_after_start);
	RUN(test_broken_is_quiet);
	return 0;
}
