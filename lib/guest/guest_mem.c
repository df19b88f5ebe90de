// SPDX-License-Identifier: MIT
/*
 * guest_mem.c - memfd-backed guest RAM for tests (see guest_mem.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_mem.h"

void gmem_init(struct gmem *g)
{
	memset(g, 0, sizeof(*g));
}

int gmem_add(struct gmem *g, uint64_t gpa, uint64_t size, uint64_t mmap_offset)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct gmem_region *r;
	uint64_t delta = mmap_offset & (page - 1);
	size_t map_len = (delta + size + page - 1) & ~(page - 1);
	void *p;
	int fd;

	if (g->count == GMEM_MAX_REGIONS || size == 0)
		return -EINVAL;
	fd = memfd_create("hvn-test-guest", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(mmap_offset + size)) < 0)
		goto fail;
	r = &g->r[g->count];
	r->resv_len = map_len + 2 * page;
	r->resv = mmap(NULL, r->resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->resv == MAP_FAILED)
		goto fail;
	p = mmap((char *)r->resv + page, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, (off_t)(mmap_offset - delta));
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap(r->resv, r->resv_len);
		close(fd);
		return err;
	}
	r->gpa = gpa;
	r->size = size;
	r->mmap_offset = mmap_offset;
	r->fd = fd;
	r->host = (uint8_t *)p + delta;
	return (int)g->count++;
fail:
	{
		int err = -errno;

		close(fd);
		return err;
	}
}

void gmem_free(struct gmem *g)
{
	unsigned int i;

	for (i = 0; i < g->count; i++) {
		munmap(g->r[i].resv, g->r[i].resv_len);
		close(g->r[i].fd);
	}
	g->count = 0;
}

static const struct gmem_region *find(const struct gmem *g, uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < g->count; i++)
		if (gpa - g->r[i].gpa < g->r[i].size)
			return &g->r[i];
	return NULL;
}

void *gmem_ptr(const struct gmem *g, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = find(g, gpa);

	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

uint64_t gmem_uva(const struct gmem *g, uint64_t gpa)
{
	const struct gmem_region *r = find(g, gpa);

	return r ? (uint64_t)(uintptr_t)(r->host + (gpa - r->gpa)) : 0;
}

void gmem_region(const struct gmem *g, unsigned int i, struct hvn_mem_region *out)
{
	memset(out, 0, sizeof(*out));
	out->gpa = g->r[i].gpa;
	out->size = g->r[i].size;
	out->uaddr = (uint64_t)(uintptr_t)g->r[i].host;
	out->mmap_offset = g->r[i].mmap_offset;
	out->fd = g->r[i].fd;
}

int gmem_attach(const struct gmem *g, struct hvn_mem *mem)
{
	struct hvn_mem_region regions[GMEM_MAX_REGIONS];
	unsigned int i;

	for (i = 0; i < g->count; i++)
		gmem_region(g, i, &regions[i]);
	return hvn_mem_set_table(mem, regions, g->count);
}

size_t gmem_total(const struct gmem *g)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < g->count; i++)
		n += g->r[i].size;
	return n;
}

void gmem_snapshot(const struct gmem *g, uint8_t *buf)
{
	unsigned int i;

	for (i = 0; i < g->count; i++) {
		memcpy(buf, g->r[i].host, g->r[i].size);
		buf += g->r[i].size;
	}
}

long gmem_diff(const struct gmem *g, const uint8_t *buf)
{
	long off = 0;
	unsigned int i;
	size_t j;

	for (i = 0; i < g->count; i++) {
		for (j = 0; j < g->r[i].size; j++)
			if (g->r[i].host[j] != buf[j])
				return off + (long)j;
		buf += g->r[i].size;
		off += (long)g->r[i].size;
	}
	return -1;
}

int host_mapping(const void *p, char perms[5])
{
	uintptr_t addr = (uintptr_t)p;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && addr >= lo && addr < hi) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

int host_mapped(const void *p)
{
	char perms[5];

	return host_mapping(p, perms) && perms[0] == 'r';
}
