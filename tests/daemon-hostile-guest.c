// SPDX-License-Identifier: MIT
/*
 * daemon-hostile-guest.c - a hostile guest breaks only its own queue, in
 * the real daemon.
 *
 * hvnotifyd runs with two workers and two virtio-blk devices on image
 * files, each with two queues: blk0 is VM A's disk, blk1 is VM B's.  The
 * test is both VMMs (the vhost-user frontend API) and both guests (rings
 * in memfd guest memory with PROT_NONE guards, support/vring_driver and
 * support/blk_req).  A second thread keeps real I/O going all along on
 * VM A's queue 1 and both of VM B's queues (one of which shares its worker
 * with the hostile queue), writing a pattern and reading it back.
 *
 * VM A's guest then crafts one malformed request after another on queue
 * 0, and for each the test checks that
 *  (a) the queue's error eventfd (SET_VRING_ERR) is signalled;
 *  (b) the request gets no completion: not even a virtio-blk request that
 *      is sound as a ring but has no room for a header or a status byte,
 *      which the device aborts (hvn_dev_req_abort(3) breaks the ring
 *      itself: nothing more is written to it);
 *  (c) guest memory is byte-identical to a snapshot taken before the kick,
 *      except for what the device may legitimately write (see
 *      check_memory());
 *  (d) the other queue of VM A and both queues of VM B keep completing
 *      I/O correctly while queue 0 is broken, and after;
 *  (e) the daemon logs that the queue broke, with the error;
 *  (f) the daemon still runs.
 * Then the queue is reset as QEMU does after a guest reset (stop it with
 * GET_VRING_BASE, start it from a fresh ring at base 0 with new eventfds)
 * and must serve again.  At the end the daemon must exit 0 on SIGTERM,
 * which it does only if every descriptor it opened is closed.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "support/blk_load.h"
#include "../lib/guest/blk_req.h"
#include "support/check.h"
#include "support/daemon.h"
#include "../lib/guest/guest_mem.h"
#include "../lib/guest/vring_driver.h"

/* Set-up that must work; silent unless it does not. */
#define MUST(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		exit(T_EXIT_FAIL);					\
	}								\
} while (0)

#define IMG_SIZE	(16u << 20)
#define TIMEOUT_MS	10000
#define QSIZE		16

/*
 * VM A's memory.  A0 belongs to queue 0, the hostile one, and nothing
 * else touches it; A1 to queue 1, which the load thread drives.  Between
 * them a hole: addresses there are outside guest memory.
 */
#define A0		0x000000ull
#define A0_SIZE		0x100000ull
#define Q0_RING		0x000000ull
#define Q0_META		0x004000ull	/* blk_req headers and status bytes */
#define Q0_DATA		0x010000ull	/* good requests' data */
#define H_HDR		0x006000ull	/* hostile requests: header ... */
#define H_STATUS	0x006010ull	/* ... status byte ... */
#define H_TABLE		0x007000ull	/* ... indirect tables ... */
#define H_TABLE2	0x007400ull
#define H_DATA		0x008000ull	/* ... and data */
#define HOLE		0x180000ull
#define A1		0x200000ull
#define A1_SIZE		0x100000ull
/* VM B's memory: one region for both queues; above 0x80000 nothing is used. */
#define B0		0x000000ull
#define B0_SIZE		0x100000ull
#define B_UNUSED	0x080000ull

#define STATUS_UNTOUCHED 0xee

static struct hvnd daemon_;
static const uint64_t want_features = HVN_VQ_F_VERSION_1 | HVN_VQ_F_INDIRECT_DESC |
				      HVN_VQ_F_EVENT_IDX | VBLK_F_FLUSH | VBLK_F_MQ |
				      VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE;

/* Guest memory is filled with this, so that a stray write of zeroes shows. */
static uint8_t filler(uint64_t gpa)
{
	return (uint8_t)(0x5a ^ (gpa >> 4) ^ (gpa >> 12));
}

static void fill_region(struct gmem *g, unsigned int i)
{
	uint64_t j;

	for (j = 0; j < g->r[i].size; j++)
		g->r[i].host[j] = filler(g->r[i].gpa + j);
}

/* ---- hostile requests on VM A's queue 0 ---- */

static struct gmem ga, gb;
#define RING_FEATURES (HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC)
static struct gq q0 = { .name = "A.q0", .g = &ga, .index = 0, .num = QSIZE,
			.features = RING_FEATURES, .ring = Q0_RING, .meta = Q0_META,
			.wbuf = Q0_DATA, .rbuf = Q0_DATA + 0x4000 };
static struct gq a1 = { .name = "A.q1", .g = &ga, .index = 1, .num = QSIZE,
			.features = RING_FEATURES, .ring = A1, .meta = A1 + 0x4000,
			.wbuf = A1 + 0x10000, .rbuf = A1 + 0x20000, .sector = 8192 };
static struct gq b0 = { .name = "B.q0", .g = &gb, .index = 0, .num = QSIZE,
			.features = RING_FEATURES, .ring = B0, .meta = B0 + 0x4000,
			.wbuf = B0 + 0x10000, .rbuf = B0 + 0x20000, .sector = 0 };
static struct gq b1 = { .name = "B.q1", .g = &gb, .index = 1, .num = QSIZE,
			.features = RING_FEATURES, .ring = B0 + 0x40000, .meta = B0 + 0x44000,
			.wbuf = B0 + 0x50000, .rbuf = B0 + 0x60000, .sector = 8192 };
static struct gq *const load_queues[] = { &a1, &b0, &b1 };
#define NLOAD 3

#define D(i)	vrd_desc(&q0.d, (i))
#define T(gpa, i) ((struct vrd_desc *)gmem_ptr(&ga, (gpa) + 16ull * (i), 16))

enum kind {
	RING,		/* the ring is malformed: popping breaks the queue */
	IN_FLIGHT,	/* a good request, made available twice */
	BLK_ABORT,	/* a sound ring, but no virtio-blk layout: aborted */
};

struct gcase {
	const char *name;
	int err;
	enum kind kind;
	void (*craft)(void);
};

/* A virtio-blk IN header: a device that went on would write into the data. */
static void put_header(uint32_t type, uint64_t sector)
{
	struct { uint32_t type, reserved; uint64_t sector; } h = {
		htole32(type), 0, htole64(sector),
	};

	memcpy(gmem_ptr(&ga, H_HDR, 16), &h, 16);
	*(uint8_t *)gmem_ptr(&ga, H_STATUS, 1) = STATUS_UNTOUCHED;
}

static void c_loop(void)
{
	put_header(VBLK_T_IN, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_DATA, 512, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 1);
	vrd_put_raw(&q0.d, 0);
}

static void c_next_out_of_range(void)
{
	put_header(VBLK_T_IN, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, QSIZE);
	vrd_put_raw(&q0.d, 0);
}

static void c_head_out_of_range(void)
{
	vrd_put_raw(&q0.d, 0xffff);
}

/* A read whose data buffer is at addr (len bytes): the device would write there. */
static void read_into(uint64_t addr, uint32_t len)
{
	put_header(VBLK_T_IN, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), addr, len, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_buffer_in_hole(void) { read_into(HOLE, 512); }
static void c_buffer_beyond_memory(void) { read_into(0x10000000ull, 512); }
static void c_buffer_off_region_end(void) { read_into(A0 + A0_SIZE - 0x100, 0x200); }
static void c_addr_len_overflow(void) { read_into(UINT64_MAX - 0xff, 0x1000); }

/* An indirect table at gpa: header, data (writable), status. */
static void good_table(uint64_t gpa)
{
	vrd_write_desc(T(gpa, 0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(T(gpa, 1), H_DATA, 512, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(T(gpa, 2), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
}

static void c_indirect_in_indirect(void)
{
	put_header(VBLK_T_IN, 0);
	good_table(H_TABLE2);
	vrd_write_desc(T(H_TABLE, 0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(T(H_TABLE, 1), H_TABLE2, 48, VRD_DESC_F_INDIRECT, 0);
	vrd_write_desc(D(0), H_TABLE, 32, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_indirect_with_next(void)
{
	put_header(VBLK_T_IN, 0);
	good_table(H_TABLE);
	vrd_write_desc(D(0), H_TABLE, 48, VRD_DESC_F_INDIRECT | VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_indirect_ragged(void)
{
	put_header(VBLK_T_IN, 0);
	good_table(H_TABLE);
	vrd_write_desc(D(0), H_TABLE, 40, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_indirect_in_hole(void)
{
	vrd_write_desc(D(0), HOLE, 48, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&q0.d, 0);
}

/* An indirect table of QSIZE + 1 descriptors, every one of them sound. */
static void c_chain_too_long(void)
{
	uint16_t i;

	put_header(VBLK_T_IN, 0);
	vrd_write_desc(T(H_TABLE, 0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	for (i = 1; i < QSIZE; i++)
		vrd_write_desc(T(H_TABLE, i), H_DATA + 512ull * (i - 1), 512,
			       VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, i + 1);
	vrd_write_desc(T(H_TABLE, QSIZE), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_write_desc(D(0), H_TABLE, 16 * (QSIZE + 1), VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_avail_jump(void)
{
	c_next_out_of_range();	/* what the entry says does not matter */
	q0.d.avail_idx = (uint16_t)(q0.d.avail_idx + QSIZE);	/* + 1 from the put */
}

/* A good write, made available twice before the device is done with it. */
static void c_head_in_flight(void)
{
	uint8_t *p = gmem_ptr(&ga, H_DATA, 512);

	memset(p, 0x77, 512);
	put_header(VBLK_T_OUT, 2048);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_DATA, 512, VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&q0.d, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_readable_after_writable(void)
{
	put_header(VBLK_T_OUT, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_STATUS, 1, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_DATA, 512, 0, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_blk_header_writable(void)
{
	put_header(VBLK_T_IN, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_DATA, 512, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_blk_status_readable(void)
{
	put_header(VBLK_T_OUT, 0);
	vrd_write_desc(D(0), H_HDR, 16, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_DATA, 512, VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, 0, 0);
	vrd_put_raw(&q0.d, 0);
}

static void c_blk_short_header(void)
{
	put_header(VBLK_T_IN, 0);
	vrd_write_desc(D(0), H_HDR, 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(D(1), H_DATA, 512, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2);
	vrd_write_desc(D(2), H_STATUS, 1, VRD_DESC_F_WRITE, 0);
	vrd_put_raw(&q0.d, 0);
}

static const struct gcase cases[] = {
	{ "descriptor loop (writable)", -ELOOP, RING, c_loop },
	{ "next index out of range", -ERANGE, RING, c_next_out_of_range },
	{ "head index 0xffff", -ERANGE, RING, c_head_out_of_range },
	{ "buffer in the hole between regions", -EFAULT, RING, c_buffer_in_hole },
	{ "buffer beyond guest memory", -EFAULT, RING, c_buffer_beyond_memory },
	{ "buffer running off its region", -EFAULT, RING, c_buffer_off_region_end },
	{ "addr + len overflows", -EOVERFLOW, RING, c_addr_len_overflow },
	{ "indirect inside indirect", -EMLINK, RING, c_indirect_in_indirect },
	{ "indirect with NEXT", -EINVAL, RING, c_indirect_with_next },
	{ "indirect table of 40 bytes", -EMSGSIZE, RING, c_indirect_ragged },
	{ "indirect table outside guest memory", -EFAULT, RING, c_indirect_in_hole },
	{ "chain longer than the queue", -E2BIG, RING, c_chain_too_long },
	{ "avail index jumps by the queue size + 1", -EPROTO, RING, c_avail_jump },
	{ "head in flight made available again", -EALREADY, IN_FLIGHT, c_head_in_flight },
	{ "readable descriptor after a writable one", -EBADMSG, RING, c_readable_after_writable },
	{ "blk: header in a device-writable descriptor", -EBADMSG, BLK_ABORT, c_blk_header_writable },
	{ "blk: status byte readable, nothing writable", -EBADMSG, BLK_ABORT, c_blk_status_readable },
	{ "blk: header of 8 bytes", -EBADMSG, BLK_ABORT, c_blk_short_header },
};

/* ---- the checks ---- */

struct range {
	uint64_t gpa, len;
};

/*
 * (c): region A0 (queue 0's ring, its requests and everything else of VM A
 * but queue 1's region) against the snapshot, skipping exactly the bytes
 * the device may write while it breaks:
 *  - the ring's notification words, used->flags and avail_event: the
 *    device rewrites them whenever it enables or disables kicks, which it
 *    does around every round of popping, before any chain is looked at;
 *  - per case, in extra: the hostile request's own status byte where the
 *    request itself was good (IN_FLIGHT: its first copy is served).
 * Nothing else: not the request's data buffers, not its header, not the
 * descriptors, not the rest of the used ring.  Queue 1's region A1 and VM
 * B's memory change all the time (the load); they are checked by the load
 * itself and, for VM B, by the unused tail at the end.
 */
static long check_memory(const uint8_t *snap, const struct range *extra, unsigned int n_extra)
{
	const struct gmem_region *r = &ga.r[0];
	uint64_t used = q0.d.used_gpa;
	struct range skip[8] = {
		{ used, 2 },			/* used->flags */
		{ used + 4 + 8 * QSIZE, 2 },	/* avail_event */
	};
	unsigned int ns = 2, i;
	uint64_t j;

	for (i = 0; i < n_extra && ns < 8; i++)
		skip[ns++] = extra[i];
	for (j = 0; j < r->size; j++) {
		uint64_t gpa = r->gpa + j;

		if (r->host[j] == snap[j])
			continue;
		for (i = 0; i < ns; i++)
			if (gpa - skip[i].gpa < skip[i].len)
				break;
		if (i == ns)
			return (long)gpa;
	}
	return -1;
}

static void run_case(struct hvn_vu_frontend *fe, const struct gcase *c, uint8_t *snap)
{
	char line[512], needle[160];
	struct range extra[3];
	unsigned int n_extra = 0;
	uint16_t used_before, used_now;
	struct pollfd pfd;
	uint64_t v = 0, one = 1;
	uint32_t base = 0xdead, want_base;
	long mark, diff;
	int r;

	printf("-- %s --\n", c->name);
	/* The queue works before the guest turns hostile (and, from the
	 * second case on, after the reset that followed the previous one). */
	r = gq_write_read(&q0, 64, 4096, 1, line, sizeof(line));
	CHECK(r == 0, "A.q0 serves a write and a read %s%s", r ? ": " : "", r ? line : "");

	used_before = le16toh(__atomic_load_n(&q0.d.used->idx, __ATOMIC_ACQUIRE));
	/* The daemon may act before any kick: a worker that polls its rings
	 * finds the request as soon as it is published.  So the log mark
	 * comes first, and the snapshot is taken before the publish, then
	 * given the published available ring (the guest's own writes): what
	 * differs afterwards was written by the daemon.  Only A0: the load
	 * thread writes A1 all the while. */
	mark = hvnd_log_mark(&daemon_);
	c->craft();
	memcpy(snap, ga.r[0].host, ga.r[0].size);
	vrd_publish(&q0.d);
	{
		uint64_t avail_off = q0.d.avail_gpa - ga.r[0].gpa;
		size_t avail_len = 4 + 2 * (size_t)QSIZE + 2;	/* flags, idx, ring, used_event */

		memcpy(snap + avail_off, ga.r[0].host + avail_off, avail_len);
	}
	MUST(write(q0.kick, &one, sizeof(one)) == sizeof(one), "kick");

	/* (a) */
	pfd = (struct pollfd){ .fd = q0.err, .events = POLLIN };
	r = poll(&pfd, 1, TIMEOUT_MS);
	CHECK(r == 1 && read(q0.err, &v, sizeof(v)) == sizeof(v) && v >= 1,
	      "(a) the error eventfd was signalled");
	/* (e): blk0#1 is VM A's connection, the first to blk0. */
	snprintf(needle, sizeof(needle), "blk0#1 queue 0: the guest broke the queue: %s",
		 strerror(-c->err));
	CHECK(hvnd_log_has(&daemon_, mark, needle, line, sizeof(line), TIMEOUT_MS),
	      "(e) logged: %s", needle);
	/* (d), during: the broken queue is still in the daemon, unreset. */
	CHECK(load_progresses(2, 2 * TIMEOUT_MS), "(d) A.q1, B.q0 and B.q1 complete I/O while A.q0 is broken");

	/* The reset's first half: GET_VRING_BASE returns once the queue has
	 * stopped in its worker, I/O finished; nothing writes after it. */
	r = gq_stop(fe, &q0, &base);
	want_base = used_before + (c->kind == RING ? 0 : 1);
	CHECK(r == 0 && base == want_base, "the frontend stops the broken queue: "
	      "GET_VRING_BASE %u (want %u): %d", base, want_base, r);

	/* (b) */
	used_now = le16toh(__atomic_load_n(&q0.d.used->idx, __ATOMIC_ACQUIRE));
	CHECK(used_now == used_before, "(b) no completion (used index %u, was %u)",
	      used_now, used_before);
	if (c->kind == IN_FLIGHT)
		extra[n_extra++] = (struct range){ H_STATUS, 1 };
	/* (c) */
	diff = check_memory(snap, extra, n_extra);
	CHECK(diff < 0, "(c) guest memory as before but for the device's own words%s",
	      diff < 0 ? "" : " (first difference below)");
	if (diff >= 0)
		printf("    gpa %#lx: %#x, was %#x\n", diff, ga.r[0].host[diff], snap[diff]);
	/* (f) */
	CHECK(hvnd_running(&daemon_), "(f) the daemon runs");
	if (t_failures)
		hvnd_log_dump_from(&daemon_, mark);

	/* The reset's second half: a fresh ring at base 0, new eventfds. */
	fill_region(&ga, 0);
	r = gq_start(fe, &q0);
	REQUIRE(r == 0, "reset: A.q0 starts again from a fresh ring at base 0: %d", r);
}

/* ---- the two VMs ---- */

static struct hvn_vu_frontend *connect_vm(const char *sock, struct gmem *g)
{
	struct hvn_mem_region reg[2];
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe = NULL;
	unsigned int i;
	int r;

	r = hvn_vu_frontend_connect(&fe, sock, NULL);
	REQUIRE(r == 0, "connect to %s: %d", sock, r);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0 && info.queues == 2, "2 queues offered");
	REQUIRE((info.features & want_features) == want_features, "the features the test needs");
	REQUIRE(hvn_vu_frontend_set_features(fe, want_features) == 0, "SET_FEATURES");
	for (i = 0; i < g->count; i++)
		gmem_region(g, i, &reg[i]);
	REQUIRE(hvn_vu_frontend_set_mem_table(fe, reg, g->count, 0) == 0, "guest memory");
	return fe;
}

int main(void)
{
	struct hvn_vu_frontend *fe_a, *fe_b;
	char img0[128], img1[128], sock0[128], sock1[128], s0[320], s1[320], line[512];
	uint8_t *snap;
	unsigned int i;
	uint32_t base;
	uint64_t v;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	hvnd_scratch(&daemon_, "hostile-guest");
	MUST(hvnd_image(&daemon_, "a.img", IMG_SIZE, img0, sizeof(img0)) == 0, "image a");
	MUST(hvnd_image(&daemon_, "b.img", IMG_SIZE, img1, sizeof(img1)) == 0, "image b");
	hvnd_path(&daemon_, "a.sock", sock0, sizeof(sock0));
	hvnd_path(&daemon_, "b.sock", sock1, sizeof(sock1));
	snprintf(s0, sizeof(s0), "blk,path=%s,socket=%s,queues=2", img0, sock0);
	snprintf(s1, sizeof(s1), "blk,path=%s,socket=%s,queues=2", img1, sock1);
	{
		const char *argv[] = { "-v", "--workers", "2", "--device", s0, "--device", s1, NULL };

		r = hvnd_start(&daemon_, NULL, argv, TIMEOUT_MS);
		if (r != 0)
			hvnd_log_dump_from(&daemon_, 0);
		REQUIRE(r == 0, "hvnotifyd starts with two devices of two queues, two workers: %d", r);
	}

	gmem_init(&ga);
	gmem_init(&gb);
	MUST(gmem_add(&ga, A0, A0_SIZE, 0) == 0 && gmem_add(&ga, A1, A1_SIZE, 0x1000) == 1,
	     "VM A's memory");
	MUST(gmem_add(&gb, B0, B0_SIZE, 0) == 0, "VM B's memory");
	fill_region(&ga, 0);
	fill_region(&ga, 1);
	fill_region(&gb, 0);
	snap = malloc(A0_SIZE);
	MUST(snap, "snapshot buffer");

	fe_a = connect_vm(sock0, &ga);
	fe_b = connect_vm(sock1, &gb);
	/* Queues: blk0 q0 on worker 0, blk0 q1 and blk1 q0 on worker 1, blk1
	 * q1 on worker 0 with the hostile queue (worker = device + queue). */
	REQUIRE(gq_start(fe_a, &q0) == 0 && gq_start(fe_a, &a1) == 0 &&
		gq_start(fe_b, &b0) == 0 && gq_start(fe_b, &b1) == 0, "four queues start");
	MUST(load_start(load_queues, NLOAD) == 0, "load thread");
	CHECK(load_progresses(3, 2 * TIMEOUT_MS), "the load runs on A.q1, B.q0 and B.q1");

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(fe_a, &cases[i], snap);

	printf("-- after every case --\n");
	r = gq_write_read(&q0, 128, 8192, 9, line, sizeof(line));
	CHECK(r == 0, "A.q0 serves again after the last reset%s%s", r ? ": " : "", r ? line : "");
	CHECK(load_progresses(3, 2 * TIMEOUT_MS), "(d) and the load still runs");
	load_stop();
	for (i = 0; i < NLOAD; i++) {
		const struct gq *q = load_queues[i];

		CHECK(atomic_load(&q->bad) == 0, "%s: %lu write+read rounds, all correct%s%s",
		      q->name, (unsigned long)atomic_load(&q->ok), q->why[0] ? ": " : "", q->why);
		CHECK(read(q->err, &v, sizeof(v)) < 0 && errno == EAGAIN,
		      "%s: its error eventfd was never signalled", q->name);
	}
	{
		const uint8_t *p = gmem_ptr(&gb, B_UNUSED, B0_SIZE - B_UNUSED);
		uint64_t j;

		for (j = 0; j < B0_SIZE - B_UNUSED; j++)
			if (p[j] != filler(B_UNUSED + j))
				break;
		CHECK(j == B0_SIZE - B_UNUSED, "VM B's memory outside its queues is untouched");
	}
	{
		const char *b_broke[] = { "blk1#1 queue", "broke", NULL };
		const char *a_broke[] = { "blk0#1 queue 1", "broke", NULL };

		CHECK(!hvnd_log_find(&daemon_, 0, b_broke, NULL, 0, 0), "no queue of VM B broke");
		CHECK(!hvnd_log_find(&daemon_, 0, a_broke, NULL, 0, 0), "VM A's queue 1 never broke");
	}
	line[0] = '\0';
	CHECK(!hvnd_log_has(&daemon_, 0, "closing", line, sizeof(line), 0),
	      "no connection was closed by the daemon%s%s", line[0] ? ": " : "", line);

	r = gq_stop(fe_a, &q0, &base);
	CHECK(r == 0, "stop A.q0: %d", r);
	CHECK(gq_stop(fe_a, &a1, &base) == 0 && gq_stop(fe_b, &b0, &base) == 0 &&
	      gq_stop(fe_b, &b1, &base) == 0, "stop the load queues");
	hvn_vu_frontend_close(fe_a);
	hvn_vu_frontend_close(fe_b);
	CHECK(hvnd_running(&daemon_), "the daemon runs at the end");
	r = hvnd_stop(&daemon_, TIMEOUT_MS);
	CHECK(r == 0, "hvnotifyd exits 0 on SIGTERM, every descriptor it opened closed (%d)", r);
	if (t_failures)
		hvnd_log_dump_from(&daemon_, 0);
	free(snap);
	gmem_free(&ga);
	gmem_free(&gb);
	return t_done("daemon-hostile-guest");
}
