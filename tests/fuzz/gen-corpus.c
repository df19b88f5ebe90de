// SPDX-License-Identifier: MIT
/*
 * gen-corpus.c - write the seed corpus of the fuzz targets, so that it is
 * reproducible: `make fuzz-corpus` runs it into tests/fuzz/corpus/.
 *
 * The split-ring seeds are real rings, filled by the guest driver half
 * (lib/guest/vring_driver.c) in memory laid out as the target expects
 * (fuzz-vq-split.h): direct and indirect chains, buffers across regions,
 * EVENT_IDX near the 16-bit wrap, a full ring, rings placed elsewhere, and
 * a few broken chains so that the error paths are covered from the start.
 *
 * The vhost-user backend's seeds (fuzz-vu-backend.h) are QEMU's sessions,
 * as hvnotifyd sees them (with memory slots and REPLY_ACK, or with a
 * memory table and without), each with a guest that puts requests in the
 * rings, and variants: messages split and glued, descriptors in excess,
 * a running queue reconfigured, memory taken away under it, a host that
 * refuses or drops queues, and garbage at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"
#include "../../lib/vu_proto.h"
#include "fuzz-vq-split.h"
#include "fuzz-vu-backend.h"

static const char *outdir;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void write_seed(const char *target, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path);
}

/* ------------------------------------------------------- fuzz-vq-split -- */

struct vseed {
	struct gmem g;
	struct vring_driver d;
	uint8_t hdr[FZ_HDR];
};

static void vs_begin(struct vseed *s, unsigned int log2, uint8_t flags, uint16_t base)
{
	uint64_t features = (flags & FZ_EVENT_IDX ? HVN_VQ_F_EVENT_IDX : 0) |
			    (flags & FZ_INDIRECT ? HVN_VQ_F_INDIRECT_DESC : 0);

	memset(s, 0, sizeof(*s));
	gmem_init(&s->g);
	if (gmem_add(&s->g, FZ_R0, FZ_R0_SIZE, 0) < 0 || gmem_add(&s->g, FZ_R1, FZ_R1_SIZE, 0) < 0 ||
	    gmem_add(&s->g, FZ_R2, FZ_R2_SIZE, FZ_R2_OFFSET) < 0)
		die("memfd");
	if (vrd_init(&s->d, &s->g, 1u << log2, 0, features))
		die("vrd_init");
	/* Indirect tables at 0x2000: room for 8 entries per head up to 64 heads. */
	if ((1u << log2) <= 64 && vrd_set_indirect_area(&s->d, 0x2000, 8))
		die("indirect area");
	if (base)
		vrd_set_indices(&s->d, base);
	s->hdr[0] = (uint8_t)log2;
	s->hdr[1] = flags;
	s->hdr[2] = (uint8_t)base;
	s->hdr[3] = (uint8_t)(base >> 8);
	s->hdr[4] = 15;		/* 16 iovecs */
	s->hdr[5] = 3;		/* 4 rounds */
	s->hdr[12] = 0x35;
	s->hdr[13] = 0x01;
}

static void vs_add(struct vseed *s, uint64_t out, uint32_t olen, uint64_t in, uint32_t ilen,
		   bool indirect)
{
	struct vrd_buf o = { out, olen }, i = { in, ilen };

	if (vrd_add(&s->d, olen ? &o : NULL, olen ? 1 : 0, ilen ? &i : NULL, ilen ? 1 : 0, NULL,
		    indirect) < 0)
		die("vrd_add");
}

static void vs_end(struct vseed *s, const char *name)
{
	static uint8_t buf[FZ_HDR + FZ_IMAGE];
	size_t len;

	vrd_publish(&s->d);
	memcpy(buf, s->hdr, FZ_HDR);
	memcpy(buf + FZ_HDR, s->g.r[0].host, FZ_R0_SIZE);
	memcpy(buf + FZ_HDR + FZ_R0_SIZE, s->g.r[1].host, FZ_R1_SIZE);
	memcpy(buf + FZ_HDR + FZ_R0_SIZE + FZ_R1_SIZE, s->g.r[2].host, FZ_R2_SIZE);
	/* The target zero-fills what is missing: keep seeds small. */
	for (len = sizeof(buf); len > FZ_HDR && buf[len - 1] == 0; len--)
		;
	write_seed("fuzz-vq-split", name, buf, len);
	vrd_free(&s->d);
	gmem_free(&s->g);
}

static void vq_seeds(void)
{
	struct vrd_buf out[3] = { { 0x3000, 16 }, { 0x3100, 512 }, { 0x3ff8, 16 } };
	struct vrd_buf in[2] = { { 0x3400, 1 }, { 0x9100, 64 } };
	struct vseed s;
	int i;

	vs_begin(&s, 4, 0, 0);
	vs_add(&s, 0x3000, 16, 0x3400, 1, false);
	vs_end(&s, "direct-one");

	vs_begin(&s, 4, FZ_BATCH | FZ_REVERSE | FZ_NOTIFY, 0);
	for (i = 0; i < 4; i++)		/* 3 + 5 + 3 + 5 descriptors: the whole ring */
		if (vrd_add(&s.d, out, 2 + (i & 1), in, 1 + (i & 1), NULL, false) < 0)
			die("vrd_add");
	vs_end(&s, "direct-chains-batch");

	vs_begin(&s, 3, FZ_INDIRECT | FZ_BATCH, 0);
	vs_add(&s, 0x3000, 16, 0x3400, 1, true);
	if (vrd_add(&s.d, out, 3, in, 2, NULL, true) < 0)
		die("vrd_add");
	vs_add(&s, 0x3000, 8, 0, 0, false);
	vs_end(&s, "indirect");

	/* Across R0/R1, and into R2, whose mapping is misaligned. */
	vs_begin(&s, 2, FZ_NOTIFY, 0);
	vs_add(&s, FZ_R1 - 8, 32, FZ_R2 + 0x10, 100, false);
	vs_add(&s, FZ_R2 + FZ_R2_SIZE - 4, 4, FZ_R1 + FZ_R1_SIZE - 1, 1, false);
	vs_end(&s, "cross-region");

	vs_begin(&s, 4, FZ_EVENT_IDX | FZ_NOTIFY | FZ_BATCH, 65534);
	for (i = 0; i < 6; i++)
		vs_add(&s, 0x3000 + 16 * i, 16, 0x3400 + i, 1, false);
	vs_end(&s, "event-idx-wrap");

	vs_begin(&s, 4, FZ_NOTIFY, 65535);
	for (i = 0; i < 3; i++)
		vs_add(&s, 0, 0, 0x3400 + i, 1, false);
	vs_end(&s, "flags-wrap");

	vs_begin(&s, 8, FZ_BATCH | FZ_GPA_ADDR, 0);
	for (i = 0; i < 256; i++)
		vs_add(&s, 0x3000 + i, 1, 0, 0, false);
	vs_end(&s, "full-ring-256");

	vs_begin(&s, 4, FZ_MEM_CHANGE | FZ_INDIRECT, 0);
	vs_add(&s, 0x3000, 16, FZ_R1 + 0x100, 8, true);
	vs_add(&s, FZ_R2 + 0x20, 16, 0x3400, 8, false);
	vs_end(&s, "mem-change");

	/* Rings elsewhere: in R1, with their offsets in the header. */
	{
		uint16_t d = (FZ_R1 + 0x1000) / 16, a = (FZ_R1 + 0x2000) / 2, u = (FZ_R1 + 0x3000) / 4;

		vs_begin(&s, 3, FZ_PLACE | FZ_INDIRECT, 0);
		vrd_free(&s.d);
		if (vrd_init_at(&s.d, &s.g, 8, FZ_R1 + 0x1000, FZ_R1 + 0x2000, FZ_R1 + 0x3000,
				HVN_VQ_F_INDIRECT_DESC) ||
		    vrd_set_indirect_area(&s.d, 0x2000, 8))
			die("vrd_init_at");
		vs_add(&s, 0x3000, 16, 0x3400, 1, true);
		s.hdr[6] = (uint8_t)d; s.hdr[7] = (uint8_t)(d >> 8);
		s.hdr[8] = (uint8_t)a; s.hdr[9] = (uint8_t)(a >> 8);
		s.hdr[10] = (uint8_t)u; s.hdr[11] = (uint8_t)(u >> 8);
		vs_end(&s, "placed-rings");
	}

	/* Broken on purpose: a loop, an indirect table inside a table. */
	vs_begin(&s, 4, 0, 0);
	vrd_write_desc(vrd_desc(&s.d, 0), 0x3000, 8, VRD_DESC_F_NEXT, 1);
	vrd_write_desc(vrd_desc(&s.d, 1), 0x3010, 8, VRD_DESC_F_NEXT, 0);
	vrd_put_raw(&s.d, 0);
	vs_end(&s, "loop");

	vs_begin(&s, 4, FZ_INDIRECT, 0);
	vrd_write_desc(gmem_ptr(&s.g, 0x2000, 16), 0x2100, 16, VRD_DESC_F_INDIRECT, 0);
	vrd_write_desc(vrd_desc(&s.d, 2), 0x2000, 16, VRD_DESC_F_INDIRECT, 0);
	vrd_put_raw(&s.d, 2);
	vs_end(&s, "nested-indirect");
}

/* ------------------------------------------------------------ fuzz-mem -- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Regions in fuzz-mem's encoding: gpa and uaddr in 64-byte units. */
static size_t mem_region(uint8_t *p, uint16_t gpa64, uint16_t size, uint16_t uva64, uint16_t off)
{
	put16(p, gpa64);
	put16(p + 2, (uint16_t)(size - 1));
	put16(p + 4, uva64);
	put16(p + 6, off);
	return 8;
}

static size_t mem_query(uint8_t *p, uint32_t a, uint16_t len)
{
	p[0] = (uint8_t)a;
	p[1] = (uint8_t)(a >> 8);
	p[2] = (uint8_t)(a >> 16);
	p[3] = (uint8_t)(a >> 24);
	put16(p + 4, len);
	return 6;
}

static void mem_seeds(void)
{
	uint8_t b[256];
	size_t n;

	/* Three abutting regions in one table; queries across them. */
	n = 0;
	b[n++] = 1;
	b[n++] = 3;
	n += mem_region(b + n, 0, 0x1000, 0x100, 0);
	n += mem_region(b + n, 0x40, 0x1000, 0x200, 0x1003);
	n += mem_region(b + n, 0x80, 0x800, 0x40, 0x5000);
	b[n++] = 0;
	n += mem_query(b + n, 0xff0, 0x20);
	n += mem_query(b + n, 0xff0, 0x1020);
	n += mem_query(b + n, 0x2000, 0x801);
	n += mem_query(b + n, 0x17ff, 1);
	n += mem_query(b + n, 0x80000010, 0x20);
	write_seed("fuzz-mem", "table-abutting", b, n);

	/* Added one by one: an overlap, one past the file, then removals. */
	n = 0;
	b[n++] = 0;
	b[n++] = 4;
	n += mem_region(b + n, 0x10, 0x800, 0x10, 0x10);
	n += mem_region(b + n, 0x1f, 0x100, 0x300, 0);		/* overlaps the first */
	n += mem_region(b + n, 0x30, 0x400, 0x30, 0xffff);	/* past the file's end */
	n += mem_region(b + n, 0x100, 0x3000, 0x100, 0x4000);
	b[n++] = 2;
	b[n++] = 0;
	b[n++] = 0x85;
	n += mem_query(b + n, 0x4000, 0x3000);
	n += mem_query(b + n, 0x400, 0x800);
	write_seed("fuzz-mem", "add-remove", b, n);

	/* The frontend's addresses in a different order than the guest's. */
	n = 0;
	b[n++] = 1;
	b[n++] = 2;
	n += mem_region(b + n, 0x200, 0x2000, 0x0, 0x800);
	n += mem_region(b + n, 0x0, 0x2000, 0x200, 0x3000);
	b[n++] = 0;
	n += mem_query(b + n, 0x1ffc, 8);
	n += mem_query(b + n, 0x8000, 0x2000);
	n += mem_query(b + n, 0x9ffe, 3);
	write_seed("fuzz-mem", "uva-swapped", b, n);
}

/* ----------------------------------------------------- fuzz-vu-backend -- */

struct vb {
	uint8_t buf[32768];
	size_t n;
};

static void vb_put(struct vb *v, const void *p, size_t len)
{
	if (v->n + len > sizeof(v->buf)) {
		fprintf(stderr, "gen-corpus: vu-backend seed too large\n");
		exit(1);
	}
	memcpy(v->buf + v->n, p, len);
	v->n += len;
}

static void vb_u8(struct vb *v, uint8_t x) { vb_put(v, &x, 1); }
static void vb_u16(struct vb *v, uint16_t x) { uint8_t b[2] = { (uint8_t)x, (uint8_t)(x >> 8) }; vb_put(v, b, 2); }
static void vb_u32(struct vb *v, uint32_t x) { vb_u16(v, (uint16_t)x); vb_u16(v, (uint16_t)(x >> 16)); }

static void vb_begin(struct vb *v, uint8_t queues, uint8_t refuse_starts, uint8_t mask)
{
	v->n = 0;
	vb_u8(v, (uint8_t)(queues - 1));
	vb_u8(v, refuse_starts);
	vb_u8(v, mask);
	vb_u8(v, 0);
}

/* Raw bytes in one sendmsg, with fdspec's descriptors. */
static void vb_send(struct vb *v, uint8_t fdspec, const void *bytes, uint16_t len)
{
	vb_u8(v, FZ_OP_SEND);
	vb_u8(v, fdspec);
	vb_u16(v, len);
	vb_put(v, bytes, len);
}

/* A whole message in one record. */
static void vb_msg(struct vb *v, uint8_t fdspec, uint32_t req, uint32_t flags, const void *payload,
		   uint32_t size)
{
	uint8_t b[sizeof(struct vu_hdr) + sizeof(union vu_payload)];
	struct vu_hdr h = { req, VU_VERSION | flags, size };

	memcpy(b, &h, sizeof(h));
	if (size)
		memcpy(b + sizeof(h), payload, size);
	vb_send(v, fdspec, b, (uint16_t)(sizeof(h) + size));
}

static void vb_none(struct vb *v, uint32_t req, uint32_t flags)
{
	vb_msg(v, 0, req, flags, NULL, 0);
}

static void vb_u64msg(struct vb *v, uint8_t fdspec, uint32_t req, uint32_t flags, uint64_t x)
{
	vb_msg(v, fdspec, req, flags, &x, sizeof(x));
}

static void vb_state(struct vb *v, uint32_t req, uint32_t flags, uint32_t idx, uint32_t num)
{
	struct vu_vring_state st = { idx, num };

	vb_msg(v, 0, req, flags, &st, sizeof(st));
}

static void vb_guest(struct vb *v, uint32_t off, const void *bytes, uint16_t len)
{
	vb_u8(v, FZ_OP_GUEST);
	vb_u32(v, off);
	vb_u16(v, len);
	vb_put(v, bytes, len);
}

static void vb_kick(struct vb *v, uint8_t mask)
{
	vb_u8(v, FZ_OP_KICK);
	vb_u8(v, mask);
}

static void vb_host_stop(struct vb *v, uint8_t q)
{
	vb_u8(v, FZ_OP_HOST);
	vb_u8(v, q);
}

static void vb_end(struct vb *v, const char *name)
{
	write_seed("fuzz-vu-backend", name, v->buf, v->n);
}

#define VB_UADDR	0x7f0000000000ull	/* the frontend's address of RAM offset 0 */
#define VB_NUM		16
#define VB_RING(q)	(0x1000u * (q))		/* desc; avail at +0x100, used at +0x200 */
#define VB_ACK		VU_FLAG_NEED_REPLY
#define VB_PROTO	((1u << VU_PROTOCOL_F_MQ) | (1u << VU_PROTOCOL_F_REPLY_ACK) | \
			 (1u << VU_PROTOCOL_F_CONFIG) | (1u << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | \
			 (1u << VU_PROTOCOL_F_RESET_DEVICE))
#define VB_FEATURES	(HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC | \
			 (UINT64_C(1) << VU_F_PROTOCOL_FEATURES) | 1)

/* QEMU's realize and its first SET_FEATURES (flags: VB_ACK or 0). */
static void vb_handshake(struct vb *v, uint64_t proto, uint32_t flags, uint64_t features)
{
	struct vu_config c = { .offset = 0, .size = 16 };

	vb_none(v, VU_GET_FEATURES, 0);
	vb_none(v, VU_GET_PROTOCOL_FEATURES, 0);
	vb_u64msg(v, 0, VU_SET_PROTOCOL_FEATURES, 0, proto);
	vb_none(v, VU_GET_QUEUE_NUM, 0);
	vb_none(v, VU_GET_MAX_MEM_SLOTS, 0);
	vb_none(v, VU_SET_OWNER, flags);
	if (proto & (1u << VU_PROTOCOL_F_CONFIG))
		vb_msg(v, 0, VU_GET_CONFIG, 0, &c, VU_CONFIG_HDR_SIZE + 16);
	vb_u64msg(v, 0, VU_SET_FEATURES, flags, features);
}

static void vb_add_region(struct vb *v, uint32_t req, uint64_t gpa, uint64_t size, uint64_t off)
{
	struct vu_mem_single m = { 0, { gpa, size, VB_UADDR + off, off } };

	vb_msg(v, req == VU_REM_MEM_REG ? 0 : 0x21, req, VB_ACK, &m, sizeof(m));
}

/* A queue as QEMU starts it: num, base, addresses, call, err, kick, enable. */
static void vb_start(struct vb *v, uint32_t q, uint32_t base, uint32_t flags, bool enable)
{
	struct vu_vring_addr a = {
		.index = q, .desc = VB_UADDR + VB_RING(q), .avail = VB_UADDR + VB_RING(q) + 0x100,
		.used = VB_UADDR + VB_RING(q) + 0x200,
	};

	vb_state(v, VU_SET_VRING_NUM, flags, q, VB_NUM);
	vb_state(v, VU_SET_VRING_BASE, flags, q, base);
	vb_msg(v, 0, VU_SET_VRING_ADDR, flags, &a, sizeof(a));
	vb_u64msg(v, 0x01, VU_SET_VRING_CALL, flags, q);
	vb_u64msg(v, 0x01, VU_SET_VRING_ERR, flags, q);
	vb_u64msg(v, 0x01, VU_SET_VRING_KICK, flags, q);
	if (enable)
		vb_state(v, VU_SET_VRING_ENABLE, flags, q, 1);
}

static void vb_stop(struct vb *v, uint32_t q, uint32_t flags, bool disable)
{
	if (disable)
		vb_state(v, VU_SET_VRING_ENABLE, flags, q, 0);
	vb_state(v, VU_GET_VRING_BASE, 0, q, 0);
}

/*
 * The guest's requests on queue q: a direct chain of three (header,
 * writable data, status) and an indirect one, from avail index idx.
 */
static void vb_requests(struct vb *v, uint32_t q, uint16_t idx)
{
	struct vq_desc_le { uint64_t addr; uint32_t len; uint16_t flags, next; } d[4] = {
		{ 0x10000 + 0x100 * q, 16, VRD_DESC_F_NEXT, 1 },
		{ 0x11000 + 0x1000 * q, 512, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2 },
		{ 0x10010 + 0x100 * q, 1, VRD_DESC_F_WRITE, 0 },
		{ 0x8000 + 0x100 * q, 48, VRD_DESC_F_INDIRECT, 0 },
	}, t[3] = {
		{ 0x10020 + 0x100 * q, 16, VRD_DESC_F_NEXT, 1 },
		{ 0x18000, 4096, VRD_DESC_F_WRITE | VRD_DESC_F_NEXT, 2 },
		{ 0x10030 + 0x100 * q, 1, VRD_DESC_F_WRITE, 0 },
	};
	uint16_t avail[2] = { 0, 3 }, new_idx = (uint16_t)(idx + 2);

	vb_guest(v, VB_RING(q), d, sizeof(d));
	vb_guest(v, 0x8000 + 0x100 * q, t, sizeof(t));
	vb_guest(v, VB_RING(q) + 0x100 + 4 + 2 * (idx % VB_NUM), &avail[0], 2);
	vb_guest(v, VB_RING(q) + 0x100 + 4 + 2 * ((idx + 1) % VB_NUM), &avail[1], 2);
	vb_guest(v, VB_RING(q) + 0x100 + 2, &new_idx, 2);
}

static void vu_seeds(void)
{
	struct vb *v = malloc(sizeof(*v));
	struct vu_config c = { .offset = 8, .size = 4, .data = { 1, 2, 3, 4 } };
	uint8_t b[256];

	if (!v)
		die("malloc");

	/* QEMU with memory slots and REPLY_ACK, two queues, the life of a device. */
	vb_begin(v, 2, 0, 0);
	vb_handshake(v, VB_PROTO, VB_ACK, VB_FEATURES);
	vb_add_region(v, VU_ADD_MEM_REG, 0, FZ_VU_RAM_SIZE / 2, 0);
	vb_add_region(v, VU_ADD_MEM_REG, FZ_VU_RAM_SIZE, FZ_VU_RAM_SIZE / 2, FZ_VU_RAM_SIZE / 2);
	vb_start(v, 0, 0, VB_ACK, true);
	vb_requests(v, 0, 0);
	vb_kick(v, 1);
	vb_start(v, 1, 0, VB_ACK, true);
	vb_requests(v, 1, 0);
	vb_kick(v, 3);
	vb_msg(v, 0, VU_SET_CONFIG, VB_ACK, &c, VU_CONFIG_HDR_SIZE + 4);
	vb_stop(v, 0, VB_ACK, true);
	vb_start(v, 0, 2, VB_ACK, true);
	vb_requests(v, 0, 2);
	vb_kick(v, 1);
	vb_stop(v, 0, VB_ACK, true);
	vb_stop(v, 1, VB_ACK, true);
	vb_none(v, VU_RESET_DEVICE, VB_ACK);
	vb_u64msg(v, 0, VU_SET_FEATURES, VB_ACK, VB_FEATURES);
	vb_start(v, 0, 0, VB_ACK, true);
	vb_add_region(v, VU_REM_MEM_REG, FZ_VU_RAM_SIZE, FZ_VU_RAM_SIZE / 2, FZ_VU_RAM_SIZE / 2);
	vb_kick(v, 1);
	vb_end(v, "qemu-slots");

	/* QEMU without protocol features: SET_MEM_TABLE, rings enabled at once. */
	vb_begin(v, 1, 0, 0);
	vb_none(v, VU_GET_FEATURES, 0);
	vb_none(v, VU_SET_OWNER, 0);
	vb_u64msg(v, 0, VU_SET_FEATURES, 0, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX);
	{
		struct vu_mem_table t = { .nregions = 2, .regions = {
			{ 0, FZ_VU_RAM_SIZE / 2, VB_UADDR, 0 },
			{ 0x40000000, FZ_VU_RAM_SIZE / 4, VB_UADDR + 0x40000000, FZ_VU_RAM_SIZE / 2 },
		} };

		vb_msg(v, 0x02, VU_SET_MEM_TABLE, 0, &t, 8 + 2 * sizeof(struct vu_mem_region));
	}
	vb_start(v, 0, 0, 0, false);
	vb_requests(v, 0, 0);
	vb_kick(v, 1);
	vb_stop(v, 0, 0, false);
	vb_none(v, VU_RESET_OWNER, 0);
	vb_end(v, "qemu-table");

	/* Messages split over records and glued together; fds on the payload. */
	vb_begin(v, 1, 0, 0);
	{
		struct vu_hdr h[2] = { { VU_GET_FEATURES, VU_VERSION, 0 },
				       { VU_SET_OWNER, VU_VERSION, 0 } };
		struct { struct vu_hdr h; uint64_t idx; } __attribute__((packed)) kick = {
			{ VU_SET_VRING_CALL, VU_VERSION, 8 }, 0 };

		vb_send(v, 0, h, 5);
		vb_send(v, 0, (uint8_t *)h + 5, sizeof(h) - 5);
		vb_send(v, 0, &kick, 14);
		vb_send(v, 0x11, (uint8_t *)&kick + 14, sizeof(kick) - 14);
	}
	vb_end(v, "split-glued");

	/* Descriptors in excess and of the wrong kind, then a half header. */
	vb_begin(v, 2, 0, 0);
	vb_none(v, VU_SET_OWNER, 0);
	vb_msg(v, 0x1f, VU_GET_FEATURES, 0, NULL, 0);
	vb_end(v, "fds-15");
	vb_begin(v, 2, 0, 0);
	vb_handshake(v, VB_PROTO, 0, VB_FEATURES);
	{
		struct vu_mem_single m = { 0, { 0, 4096, VB_UADDR, 0 } };

		vb_msg(v, 0x41, VU_ADD_MEM_REG, 0, &m, sizeof(m));	/* /dev/null */
	}
	vb_send(v, 0x13, "\x05\0\0\0\x01", 5);
	vb_end(v, "fd-kinds");

	/* A running queue reconfigured: the message waits for its stop. */
	vb_begin(v, 2, 0, 0);
	vb_handshake(v, VB_PROTO, VB_ACK, VB_FEATURES);
	vb_add_region(v, VU_ADD_MEM_REG, 0, FZ_VU_RAM_SIZE, 0);
	vb_start(v, 0, 0, VB_ACK, true);
	vb_requests(v, 0, 0);
	vb_start(v, 0, 5, VB_ACK, false);	/* every message stops it first */
	vb_kick(v, 1);
	vb_u64msg(v, 0, VU_SET_FEATURES, VB_ACK, VB_FEATURES & ~HVN_VQ_F_EVENT_IDX);
	vb_state(v, VU_SET_VRING_ENABLE, VB_ACK, 0, 1);
	vb_kick(v, 1);
	vb_end(v, "running-reconfigured");

	/* The host refuses the first start, then drops a queue on its own. */
	vb_begin(v, 2, 0x01, 0x07);
	vb_handshake(v, VB_PROTO, VB_ACK, HVN_VQ_F_VERSION_1 | (UINT64_C(1) << VU_F_PROTOCOL_FEATURES));
	vb_add_region(v, VU_ADD_MEM_REG, 0, FZ_VU_RAM_SIZE, 0);
	vb_start(v, 1, 0, VB_ACK, true);
	vb_end(v, "host-refuses");
	vb_begin(v, 2, 0, 0);
	vb_handshake(v, VB_PROTO, VB_ACK, VB_FEATURES);
	vb_add_region(v, VU_ADD_MEM_REG, 0, FZ_VU_RAM_SIZE, 0);
	vb_start(v, 0, 0, VB_ACK, true);
	vb_start(v, 1, 0, VB_ACK, true);
	vb_state(v, VU_SET_VRING_ENABLE, VB_ACK, 1, 0);
	vb_host_stop(v, 0);
	vb_none(v, VU_GET_FEATURES, 0);
	vb_end(v, "host-drops");

	/* A burst of messages in one sendmsg, then the frontend leaves half
	 * way through a message that carries descriptors. */
	vb_begin(v, 1, 0, 0);
	{
		uint8_t burst[40 * sizeof(struct vu_hdr)];
		struct vu_hdr own = { VU_SET_OWNER, VU_VERSION, 0 };
		struct vu_hdr call = { VU_SET_VRING_CALL, VU_VERSION, 8 };
		unsigned int i;

		for (i = 0; i < 40; i++)
			memcpy(burst + i * sizeof(own), &own, sizeof(own));
		vb_send(v, 0, burst, sizeof(burst));
		vb_send(v, 0x12, &call, sizeof(call));
		vb_host_stop(v, FZ_HOST_HANGUP);
	}
	vb_end(v, "burst-hangup");

	/* Rings outside guest memory; then garbage. */
	vb_begin(v, 1, 0, 0);
	vb_handshake(v, VB_PROTO, 0, VB_FEATURES);
	vb_add_region(v, VU_ADD_MEM_REG, 0x100000, 0x1000, FZ_VU_RAM_SIZE - 0x1000);
	vb_start(v, 0, 0, 0, true);
	memset(b, 0xa5, sizeof(b));
	vb_send(v, 0, b, sizeof(b));
	vb_end(v, "rings-outside");
	free(v);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	vq_seeds();
	mem_seeds();
	vu_seeds();
	return 0;
}
