// SPDX-License-Identifier: MIT
/*
 * fuzz-mem.c - libFuzzer target for the guest memory table: region tables
 * and removals built from the input, then translations of input ranges.
 * A plain model of the table (a list, searched linearly) predicts every
 * return value, and every translated byte is checked against the backing
 * file: the file holds a pattern that depends on the file offset, so a
 * pointer to the wrong place shows.
 *
 * Input: byte 0 mode (bit 0: one hvn_mem_set_table instead of adds),
 * byte 1 region count (mod 9), 8 bytes per region (gpa, size, uaddr, file
 * offset; 16 bits each), one byte of removal count, one byte per removal,
 * then 6-byte queries (32-bit address, 16-bit length) to the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <hvnotify/mem.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_SIZE	0x12000u
#define MAX_REGIONS	8
#define UVA_BASE	0x7e0000000000ull
#define SPAN		0x12000u	/* queries cover [0, SPAN) of both spaces */

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "fuzz-mem: %s:%d: %s\n", __FILE__,	\
				__LINE__, #cond);				\
			abort();						\
		}								\
	} while (0)

static int fd = -1;
static uint8_t *file;	/* our own view of the backing file */

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)((off * 0x9e3779b1u) >> 24);
}

static void setup(void)
{
	uint32_t i;

	fd = memfd_create("hvn-fuzz-mem", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, FILE_SIZE) == 0);
	file = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(file != MAP_FAILED);
	for (i = 0; i < FILE_SIZE; i++)
		file[i] = pattern(i);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static bool collides(const struct hvn_mem_region *m, unsigned int n,
		     const struct hvn_mem_region *r)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (overlaps(m[i].gpa, m[i].size, r->gpa, r->size) ||
		    overlaps(m[i].uaddr, m[i].size, r->uaddr, r->size))
			return true;
	return false;
}

/* The library's bytes for region r at offset off, len bytes, are the file's. */
static void check_bytes(const uint8_t *p, const struct hvn_mem_region *r, uint64_t off,
			uint64_t len)
{
	uint64_t k = len < 16 ? len : 16;

	CHECK(memcmp(p, file + r->mmap_offset + off, k) == 0);
	CHECK(memcmp(p + len - k, file + r->mmap_offset + off + len - k, k) == 0);
}

static const struct hvn_mem_region *model_find(const struct hvn_mem_region *m, unsigned int n,
					       uint64_t a, bool uva)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t start = uva ? m[i].uaddr : m[i].gpa;

		if (a >= start && a - start < m[i].size)
			return &m[i];
	}
	return NULL;
}

static void query(struct hvn_mem *mem, const struct hvn_mem_region *m, unsigned int n,
		  uint64_t gpa, uint64_t len)
{
	struct iovec iov[MAX_REGIONS + 1], want[MAX_REGIONS + 1];
	const struct hvn_mem_region *piece[MAX_REGIONS + 1];
	uint64_t a = gpa, left = len;
	int count = 0, ret, i;
	bool fault = false;
	void *p;

	/* The model: walk region by region. */
	while (left) {
		const struct hvn_mem_region *r = model_find(m, n, a, false);
		uint64_t chunk;

		if (!r) {
			fault = true;
			break;
		}
		chunk = r->gpa + r->size - a < left ? r->gpa + r->size - a : left;
		piece[count] = r;
		want[count].iov_base = (void *)(uintptr_t)(a - r->gpa);	/* offset */
		want[count].iov_len = chunk;
		count++;
		a += chunk;
		left -= chunk;
	}
	ret = hvn_mem_gpa_to_iov(mem, gpa, len, iov, MAX_REGIONS + 1);
	if (len && len - 1 > UINT64_MAX - gpa) {
		CHECK(ret == -EOVERFLOW);	/* wraps: refused before any lookup */
	} else if (fault) {
		CHECK(ret == -EFAULT);
	} else {
		CHECK(ret == count);
		for (i = 0; i < count; i++) {
			CHECK(iov[i].iov_len == want[i].iov_len);
			check_bytes(iov[i].iov_base, piece[i],
				    (uint64_t)(uintptr_t)want[i].iov_base, iov[i].iov_len);
		}
		if (count > 1)
			CHECK(hvn_mem_gpa_to_iov(mem, gpa, len, iov, (unsigned int)count - 1) ==
			      -ENOBUFS);
	}
	p = hvn_mem_gpa_to_ptr(mem, gpa, len);
	if (len && !fault && count == 1) {
		CHECK(p == iov[0].iov_base);
	} else if (len) {
		CHECK(p == NULL);
	}

	/* The same range in the frontend's addresses: one region or nothing. */
	{
		const struct hvn_mem_region *r = model_find(m, n, UVA_BASE + gpa, true);
		uint64_t off = r ? UVA_BASE + gpa - r->uaddr : 0;

		p = hvn_mem_uva_to_ptr(mem, UVA_BASE + gpa, len);
		if (r && len <= r->size - off) {
			CHECK(p != NULL);
			if (len)
				check_bytes(p, r, off, len);
		} else {
			CHECK(p == NULL);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvn_mem_region in[MAX_REGIONS], model[MAX_REGIONS];
	unsigned int n_in, n = 0, i, removals;
	struct hvn_mem *mem;
	const uint8_t *p = data, *end = data + size;
	bool any_collision = false, any_short = false;
	int ret;

	if (fd < 0)
		setup();
	if (size < 2)
		return 0;
	n_in = p[1] % (MAX_REGIONS + 1);
	p += 2;
	if ((size_t)(end - p) < 8u * n_in)
		return 0;
	for (i = 0; i < n_in; i++, p += 8) {
		memset(&in[i], 0, sizeof(in[i]));
		/* 64-byte granules over a small span, so ranges collide and abut. */
		in[i].gpa = (le16(p) % (SPAN / 64)) * 64u;
		in[i].size = le16(p + 2) % 0x4000 + 1;
		in[i].uaddr = UVA_BASE + (le16(p + 4) % (SPAN / 64)) * 64u;
		in[i].mmap_offset = le16(p + 6) % FILE_SIZE;
		in[i].fd = fd;
	}
	CHECK(hvn_mem_new(&mem) == 0);

	if (data[0] & 1) {
		/* One table: all of it or none of it. */
		for (i = 0; i < n_in; i++) {
			any_collision |= collides(in, i, &in[i]);
			any_short |= in[i].mmap_offset + in[i].size > FILE_SIZE;
		}
		ret = hvn_mem_set_table(mem, in, n_in);
		if (any_collision) {
			CHECK(ret == -EEXIST);
		} else if (any_short) {
			CHECK(ret == -EINVAL);
		} else {
			CHECK(ret == 0);
			memcpy(model, in, sizeof(in[0]) * n_in);
			n = n_in;
		}
	} else {
		for (i = 0; i < n_in; i++) {
			ret = hvn_mem_add_region(mem, &in[i]);
			if (collides(model, n, &in[i])) {
				CHECK(ret == -EEXIST);
			} else if (in[i].mmap_offset + in[i].size > FILE_SIZE) {
				CHECK(ret == -EINVAL);
			} else {
				CHECK(ret == 0);
				model[n++] = in[i];
			}
		}
	}

	removals = p < end ? *p++ % 4 : 0;
	for (i = 0; i < removals && p < end; i++, p++) {
		struct hvn_mem_region r;
		unsigned int k;

		if (n == 0 || (*p & 0x80)) {
			/* A region that is not there (sizes never exceed 0x4000). */
			memset(&r, 0, sizeof(r));
			r.gpa = (*p & 0x7f) * 64u;
			r.size = 0x5000;
			r.uaddr = UVA_BASE;
			CHECK(hvn_mem_remove_region(mem, &r) == -ENOENT);
			continue;
		}
		k = *p % n;
		r = model[k];
		r.fd = 999;		/* ignored by removal */
		r.mmap_offset = 0;
		CHECK(hvn_mem_remove_region(mem, &r) == 0);
		model[k] = model[--n];
	}

	while (end - p >= 6) {
		uint32_t a = ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			      (uint32_t)p[3] << 24);
		uint64_t gpa = a & 0x80000000u ? UINT64_MAX - (a & 0xff) : a % SPAN;

		query(mem, model, n, gpa, le16(p + 4));
		p += 6;
	}
	hvn_mem_free(mem);
	return 0;
}
