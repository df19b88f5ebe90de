// SPDX-License-Identifier: MIT
/*
 * inflight-peek.c - what a running hvnotifyd has in flight, read from the
 * outside: the vhost-user inflight region it maps (the memfd it made for
 * GET_INFLIGHT_FD, named "hvnotify-inflight"), through /proc/PID/mem.
 * For the crash-restart tests, which stop the daemon (SIGSTOP), look, and
 * kill it only when requests are in flight, so that the restart has
 * something to resubmit; no knob in the daemon itself.
 *
 *   inflight-peek PID
 *
 * Prints each queue's part of the region (version, used_idx, the heads
 * whose flag is set, in counter order) and last a line "in_flight=N", N
 * the flags set in all queues.  A flag may still be set for a head whose
 * completion was just published (the daemon clears flags right after it
 * publishes a batch), so N is at most one batch more than the requests
 * really in flight; the restarted daemon's count is exact.  Exit status:
 * 0, 1 on error, 77 when this process may not read the daemon's memory
 * (not root, and ptrace restricted to ancestors).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hvnotify/vq.h>

/* The split-ring layout of vhost-user's inflight region (lib/vq_internal.h). */
struct ifl_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct ifl_head {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
};

static int by_counter(const void *a, const void *b)
{
	const struct ifl_desc *const *x = a, *const *y = b;

	return (*x)->counter < (*y)->counter ? -1 : (*x)->counter > (*y)->counter;
}

int main(int argc, char **argv)
{
	char path[64], line[512];
	unsigned long start = 0, end = 0;
	unsigned long long off;
	unsigned char *buf;
	size_t len, pos;
	FILE *maps;
	int fd, q = 0, total = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: inflight-peek PID\n");
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	maps = fopen(path, "r");
	if (!maps) {
		fprintf(stderr, "inflight-peek: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), maps)) {
		if (!strstr(line, "/memfd:hvnotify-inflight"))
			continue;
		if (sscanf(line, "%lx-%lx %*s %llx", &start, &end, &off) == 3)
			break;
		start = end = 0;
	}
	fclose(maps);
	if (!end) {
		printf("inflight-peek: pid %s maps no inflight region\nin_flight=0\n", argv[1]);
		return 0;
	}
	/* QEMU hands back the region at offset 0, so it starts the mapping. */
	if (off) {
		fprintf(stderr, "inflight-peek: region mapped from file offset %llu\n", off);
		return 1;
	}
	len = end - start;
	buf = malloc(len);
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		printf("inflight-peek: may not read %s: %s\n", path, strerror(errno));
		return 77;
	}
	if (!buf || fd < 0 || pread(fd, buf, len, (off_t)start) != (ssize_t)len) {
		fprintf(stderr, "inflight-peek: reading %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	printf("inflight-peek: pid %s, region at %#lx, %zu bytes\n", argv[1], start, len);
	for (pos = 0; pos + sizeof(struct ifl_head) <= len; q++) {
		const struct ifl_head *h = (const void *)(buf + pos);
		const struct ifl_desc **set;
		uint64_t size = hvn_vq_inflight_size(h->desc_num);
		unsigned int i, n = 0;

		if (!size || pos + size > len)
			break;
		set = calloc(h->desc_num, sizeof(*set));
		for (i = 0; set && i < h->desc_num; i++) {
			const struct ifl_desc *d = (const void *)(buf + pos + sizeof(*h) + 16 * i);

			if (d->inflight)
				set[n++] = d;
		}
		printf("queue %d: version %u, %u entries, used_idx %u, last batch head %u: %u in flight",
		       q, h->version, h->desc_num, h->used_idx, h->last_batch_head, n);
		qsort(set, n, sizeof(*set), by_counter);
		for (i = 0; i < n; i++)
			printf("%s head %u (counter %" PRIu64 ")", i ? "," : ":",
			       (unsigned int)((const unsigned char *)set[i] - (buf + pos + sizeof(*h))) / 16,
			       set[i]->counter);
		printf("\n");
		total += (int)n;
		free(set);
		pos += size;
	}
	printf("in_flight=%d\n", total);
	free(buf);
	return 0;
}
