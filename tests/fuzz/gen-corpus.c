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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"
#include "fuzz-vq-split.h"

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

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	vq_seeds();
	mem_seeds();
	return 0;
}
