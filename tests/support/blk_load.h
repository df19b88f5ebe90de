/* SPDX-License-Identifier: MIT */
/*
 * blk_load.h - a guest's virtio-blk queue behind a vhost-user frontend,
 * and a steady load of real I/O on a few such queues from a thread of its
 * own: the "other VMs" of the daemon's hostile tests, which must keep
 * being served, correctly, whatever one guest or frontend does.
 *
 * Each load round writes 4 KiB of a pattern to the queue's own sectors,
 * reads it back into another buffer and compares; the counters say how
 * many rounds passed and failed.  One thread drives every load queue, and
 * nothing else may touch their rings while it runs.
 */
#ifndef HVN_TEST_BLK_LOAD_H
#define HVN_TEST_BLK_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hvnotify/vhost_user.h>

#include "../../lib/guest/blk_req.h"
#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"

struct gq {
	/* Set by the caller. */
	const char *name;
	struct gmem *g;
	unsigned int index;		/* the queue's number in its device */
	unsigned int num;		/* ring size */
	uint64_t features;		/* ring features the driver uses (EVENT_IDX, INDIRECT) */
	uint64_t ring, meta;		/* guest addresses: rings, blk_meta_bytes(num) */
	uint64_t wbuf, rbuf;		/* data buffers, 8 KiB each at most */
	uint64_t sector;		/* the first of the 264 sectors it writes under load */
	/* The queue's. */
	struct vring_driver d;
	struct blk_queue q;
	int kick, call, err;
	atomic_ulong ok, bad;		/* load rounds */
	char why[256];			/* the first failure */
};

/*
 * A fresh ring (zeroed, as a reset guest's), fresh eventfds, and start at
 * base 0 through fe.  Returns 0 or the frontend's -errno.
 */
int gq_start(struct hvn_vu_frontend *fe, struct gq *q);
/* GET_VRING_BASE through fe, then gq_drop() (the backend dropped its copies). */
int gq_stop(struct hvn_vu_frontend *fe, struct gq *q, uint32_t *base);
/* Close the queue's eventfds and forget its ring (its connection is gone). */
void gq_drop(struct gq *q);
/* Write len bytes of pattern seed at sector, read them back, compare: 0 or -1 and why. */
int gq_write_read(struct gq *q, uint64_t sector, uint32_t len, unsigned int seed, char *why,
		  size_t why_len);

/* Run the load on n started queues until load_stop(); 0 or -errno. */
int load_start(struct gq *const *queues, unsigned int n);
/*
 * Every load queue passes at least rounds more rounds within timeout_ms.
 * On failure, prints where each one stands.
 */
bool load_progresses(unsigned long rounds, int timeout_ms);
/* Stop the thread; the queues are the caller's again. */
void load_stop(void);

#endif /* HVN_TEST_BLK_LOAD_H */
