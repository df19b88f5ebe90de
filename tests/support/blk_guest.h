/* SPDX-License-Identifier: MIT */
/*
 * blk_guest.h - a virtio-blk guest behind a vhost-user frontend, for the
 * integration tests that drive a real backend process (vu-frontend-qsd
 * against qemu-storage-daemon, daemon-frontend against hvnotifyd).
 *
 * The test is the VMM and the guest at once: a struct gq is one queue of
 * the guest's virtio-blk driver (support/blk_req on support/vring_driver)
 * with the kick, call and error eventfds a VMM would hand the backend;
 * gq_start/gq_stop are QEMU's vhost_virtqueue_start/stop on the frontend
 * API.  Data is a pattern that depends on the byte's place on the disk, so
 * that what was read back, or what the image file holds, can be checked
 * against where it should have been written.  And the backend is a child
 * process that must never outlive a failing test.
 *
 * Set-up that must work (eventfds, rings, starting a queue) exits 1 with a
 * FAIL line when it does not; what a test checks comes back as a result
 * and, where it helps, a sentence in gq.why with the exact values.
 */
#ifndef HVN_TEST_BLK_GUEST_H
#define HVN_TEST_BLK_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <hvnotify/vhost_user.h>

#include "../../lib/guest/blk_req.h"
#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"

/* Set-up that must work; silent unless it does not. */
#define MUST(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		exit(1);						\
	}								\
} while (0)

#define GQ_SIZE		64	/* ring entries */
#define GQ_IND_ENTRIES	16	/* descriptors per indirect table */
#define GQ_TIMEOUT_MS	5000	/* per request */

/* Guest memory an indirect area takes: a table per ring entry. */
#define GQ_IND_BYTES	(16ull * GQ_IND_ENTRIES * GQ_SIZE)

/* A queue of the guest: ring, driver, eventfds, and requests counted for GET_VRING_BASE. */
struct gq {
	struct vring_driver d;
	struct blk_queue q;
	int kick, call, err;
	unsigned int index;
	uint32_t made;		/* requests put in the ring since base 0 */
	char why[200];		/* what the last gq_stop/gq_write_read saw */
};

/*
 * Rings at ring, request headers at meta (blk_meta_bytes(GQ_SIZE)), indirect
 * tables at ind (GQ_IND_BYTES) or 0 for none; features: those acked.
 */
void gq_init(struct gq *q, struct gmem *g, unsigned int index, uint64_t ring, uint64_t meta,
	     uint64_t ind, uint64_t features);
/* Close the eventfds and free the driver. */
void gq_free(struct gq *q);

/* Start (or restart) the queue from the driver's current index, as QEMU does. */
void gq_start(struct hvn_vu_frontend *fe, struct gq *q);
/*
 * Stop it (GET_VRING_BASE) and take fresh eventfds for the next start, as
 * QEMU does.  Returns whether the base is the number of requests made.
 */
bool gq_stop(struct hvn_vu_frontend *fe, struct gq *q);

/* One request, start to finish: its status byte or -errno; *used: the used length. */
int gq_do(struct gq *q, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len,
	  uint32_t *used);
int gq_do_bufs(struct gq *q, uint32_t type, uint64_t sector, const struct vrd_buf *bufs,
	       unsigned int n, bool indirect, uint32_t *used);

/*
 * Write len bytes of pattern seed at sector from wr_gpa, read them back into
 * rd_gpa, and compare.  Each transfer takes segs buffers (the first one
 * short, the last one long), direct or through an indirect table.
 */
bool gq_write_read(struct gq *q, uint64_t sector, uint64_t wr_gpa, uint64_t rd_gpa, uint32_t len,
		   unsigned int seed, unsigned int segs, bool indirect);

/*
 * n writes of each bytes in flight at once with one submit: at sector,
 * sector + each / 512 ..., from consecutive buffers at gpa, pattern seed;
 * odd ones split in two buffers, every third one indirect (if the queue has
 * an indirect area).  Returns how many completed with VIRTIO_BLK_S_OK, or
 * -errno if one did not complete.
 */
int gq_write_batch(struct gq *q, uint64_t sector, uint64_t gpa, unsigned int n, uint32_t each,
		   unsigned int seed);

/* The pattern: byte at disk offset at, for seed. */
uint8_t pat(uint64_t at, unsigned int seed);
/* Fill guest memory with the pattern of disk bytes [at, at + len). */
void pat_fill(struct gmem *g, uint64_t gpa, uint32_t len, unsigned int seed, uint64_t at);
/* p[0, len) is the pattern of disk bytes [at, at + len). */
bool pat_same(const uint8_t *p, uint32_t len, unsigned int seed, uint64_t at);
/* The file holds the pattern at [off, off + len) (read with pread). */
bool file_has(const char *path, uint64_t off, uint32_t len, unsigned int seed);
/* The file holds zeroes at [off, off + len). */
bool file_zero(const char *path, uint64_t off, uint32_t len);

/* Signals pending on a non-blocking eventfd, now consumed. */
unsigned int efd_drain(int efd);
/* Wait up to timeout_ms for an eventfd signal: the count (consumed), or 0. */
unsigned int efd_wait(int efd, int timeout_ms);

/* ---- the backend process ---- */

/* HVN_CI=1 (or yes, true): CI installs every backend, so a missing one fails, not skips. */
bool in_ci(void);

bool proc_alive(pid_t pid);
/* Wait up to timeout_ms for pid to exit: true with *status, false if it still runs. */
bool proc_wait(pid_t pid, int timeout_ms, int *status);
/* Send sig, wait up to timeout_ms, then SIGKILL; reaps it and sets *pid to -1. */
void proc_stop(pid_t *pid, int sig, int timeout_ms);
/*
 * Connect to path, retrying while it does not listen yet and pid runs, for
 * up to timeout_ms: 0 and *fe, or the last -errno.
 */
int vu_connect_retry(struct hvn_vu_frontend **fe, const char *path,
		     const struct hvn_vu_frontend_opts *opts, pid_t pid, int timeout_ms);

#endif /* HVN_TEST_BLK_GUEST_H */
