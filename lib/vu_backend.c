// SPDX-License-Identifier: MIT
/*
 * vu_backend.c - the vhost-user backend state machine: one device, one
 * frontend connection.
 *
 * Messages are read one at a time (vu_msg.c) and each is checked before it
 * is used; the first bad one ends the connection with a reason, and every
 * descriptor it carried is closed.  Queues run elsewhere (the host's data
 * plane); the rules that keep the two apart:
 *
 *  - A queue runs when it has a size, ring addresses, a kick eventfd,
 *    guest memory and (once VHOST_USER_F_PROTOCOL_FEATURES is acked) has
 *    been enabled.  After every message the backend compares what should
 *    run with what runs, and starts or stops queues.
 *  - A running queue is never reconfigured in place: a message that would
 *    change it (its addresses, fds, size, base, the features, a reset)
 *    first stops it.  Stopping is asynchronous, as the queue's I/O in
 *    flight must finish; meanwhile the backend reads nothing more from the
 *    frontend (HVN_VU_PAUSED) and carries on with the waiting message once
 *    the host reports the stop.
 *  - GET_VRING_BASE answers only after the queue stopped, with the index
 *    the ring stopped at, and drops the queue's kick and call eventfds, as
 *    the frontend sends new ones before it starts the queue again.
 *  - With INFLIGHT_SHMFD (HVN_VU_BACKEND_F_INFLIGHT), GET_INFLIGHT_FD makes
 *    a zeroed, sealed memfd for the frontend to keep, and SET_INFLIGHT_FD
 *    maps the region the frontend hands back (on every connection, before
 *    the queues start); each queue then tracks its requests in its part
 *    of it, and one started on a part that was in use (we are a new
 *    process after one that died) resubmits what was in flight and
 *    resumes the ring from the region, not from SET_VRING_BASE: a
 *    frontend that lost its backend cannot know the index, and QEMU sends
 *    the used index then.
 */
#define _GNU_SOURCE	/* memfd_create, F_ADD_SEALS */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvnotify/vhost_user.h"
#include "vu_proto.h"

#define RING_FEATURES (HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC)
#define F_PROTOCOL (UINT64_C(1) << VU_F_PROTOCOL_FEATURES)
#define PROTOCOL_OFFERED ((UINT64_C(1) << VU_PROTOCOL_F_MQ) | \
			  (UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK) | \
			  (UINT64_C(1) << VU_PROTOCOL_F_CONFIG) | \
			  (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | \
			  (UINT64_C(1) << VU_PROTOCOL_F_RESET_DEVICE))
/* Memory slots offered with CONFIGURE_MEM_SLOTS: what the region table holds. */
#define MAX_MEM_SLOTS HVN_MEM_MAX_REGIONS

enum queue_state { Q_IDLE, Q_RUNNING, Q_STOPPING };

struct vu_queue {
	struct hvn_vq *vq;		/* created at the first message for it */
	uint32_t num;			/* 0: not set */
	uint16_t base;
	bool addr_set;
	bool enabled;
	struct hvn_vq_addr addr;
	int kick_fd, call_fd, err_fd;
	enum queue_state state;
};

struct hvn_vu_backend {
	struct hvn_vu_backend_config cfg;
	struct hvn_mem *mem;
	unsigned int nregions;
	uint64_t offered;		/* virtio features */
	uint64_t acked;
	uint64_t protocol_offered;	/* PROTOCOL_OFFERED, less CONFIG without a config space */
	uint64_t protocol;		/* acked protocol features */
	/* The inflight region of SET_INFLIGHT_FD; ifl_map NULL: none. */
	void *ifl_map;
	size_t ifl_map_len;
	unsigned char *ifl_base;	/* queue 0's part, within ifl_map */
	uint64_t ifl_queue_bytes;	/* each queue's part */
	unsigned int ifl_queues, ifl_queue_size;
	bool owner;			/* SET_OWNER came */
	struct vu_queue *queues;
	struct vu_reader rd;
	bool msg_waiting;		/* rd.msg is complete, waiting for stops */
	unsigned int stops_pending;
	int dead;			/* the connection must end with this error */
	char why[200];
};

static int fail(struct hvn_vu_backend *b, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct hvn_vu_backend *b, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
	return err;
}

const char *hvn_vu_backend_strerror(const struct hvn_vu_backend *b)
{
	return b && b->why[0] ? b->why : "no error";
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int hvn_vu_backend_new(const struct hvn_vu_backend_config *cfg, struct hvn_vu_backend **bp)
{
	struct hvn_vu_backend *b;
	unsigned int i;
	uint64_t dev_features = 0;
	int r;

	if (!bp)
		return -EINVAL;
	*bp = NULL;
	if (!cfg || !cfg->ops || !cfg->host || !cfg->host->queue_start || !cfg->host->queue_stop ||
	    cfg->num_queues == 0 || cfg->num_queues > VU_VRING_IDX_MASK + 1 ||
	    (cfg->ops->max_queues && cfg->num_queues > cfg->ops->max_queues) ||
	    (cfg->flags & ~HVN_VU_BACKEND_F_INFLIGHT) || cfg->reserved)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cfg = *cfg;
	b->queues = calloc(cfg->num_queues, sizeof(*b->queues));
	r = b->queues ? hvn_mem_new(&b->mem) : -ENOMEM;
	if (r < 0) {
		free(b->queues);
		free(b);
		return r;
	}
	for (i = 0; i < cfg->num_queues; i++) {
		struct vu_queue *q = &b->queues[i];

		q->kick_fd = q->call_fd = q->err_fd = -1;
	}
	if (cfg->ops->get_features)
		dev_features = cfg->ops->get_features(cfg->dev) & ~cfg->features_mask;
	/* The transport's bits are ours to offer, not the device's; the mask
	 * may hide any but the two the protocol cannot do without. */
	b->offered = (dev_features & ~(RING_FEATURES | F_PROTOCOL)) |
		     (RING_FEATURES & ~(cfg->features_mask & ~HVN_VQ_F_VERSION_1)) | F_PROTOCOL;
	/* A device without a config space (virtio-rng) has nothing for
	 * GET_CONFIG to read: offering the feature would only have QEMU warn
	 * that its device model does not use it. */
	b->protocol_offered = PROTOCOL_OFFERED;
	if (!cfg->ops->config_size)
		b->protocol_offered &= ~(UINT64_C(1) << VU_PROTOCOL_F_CONFIG);
	if (cfg->flags & HVN_VU_BACKEND_F_INFLIGHT)
		b->protocol_offered |= UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD;
	vu_reader_init(&b->rd);
	*bp = b;
	return 0;
}

/* Forget the inflight region; the queues are stopped. */
static void inflight_unmap(struct hvn_vu_backend *b)
{
	unsigned int i;

	if (!b->ifl_map)
		return;
	for (i = 0; i < b->cfg.num_queues; i++)
		if (b->queues[i].vq)
			hvn_vq_set_inflight(b->queues[i].vq, NULL, 0);
	munmap(b->ifl_map, b->ifl_map_len);
	b->ifl_map = NULL;
	b->ifl_base = NULL;
}

void hvn_vu_backend_free(struct hvn_vu_backend *b)
{
	unsigned int i;

	if (!b)
		return;
	for (i = 0; i < b->cfg.num_queues; i++) {
		struct vu_queue *q = &b->queues[i];

		hvn_vq_free(q->vq);
		q->vq = NULL;
		close_fd(&q->kick_fd);
		close_fd(&q->call_fd);
		close_fd(&q->err_fd);
	}
	inflight_unmap(b);
	vu_msg_close_fds(&b->rd.msg);	/* a waiting or partial message's */
	hvn_mem_free(b->mem);
	free(b->queues);
	free(b);
}

/* ---- queues ---- */

static bool queue_ready(const struct hvn_vu_backend *b, const struct vu_queue *q)
{
	/* Without PROTOCOL_FEATURES a ring is enabled from the start. */
	bool enabled = q->enabled || !(b->acked & F_PROTOCOL);

	return q->num && q->addr_set && q->kick_fd >= 0 && b->nregions && enabled;
}

static int queue_start(struct hvn_vu_backend *b, unsigned int idx)
{
	struct vu_queue *q = &b->queues[idx];
	struct hvn_dev_queue_config qc;
	int r;

	r = hvn_vq_set_size(q->vq, q->num);
	if (r == 0)
		r = hvn_vq_set_features(q->vq, b->acked);
	if (r == 0)
		r = hvn_vq_set_addr(q->vq, &q->addr);
	if (r == 0)
		r = hvn_vq_set_base(q->vq, q->base);
	if (r < 0)
		return fail(b, r, "queue %u: bad ring parameters: %s", idx, strerror(-r));
	/* A queue the region does not cover runs untracked. */
	if (b->ifl_map && idx < b->ifl_queues) {
		if (q->num > b->ifl_queue_size)
			return fail(b, -EINVAL, "queue %u: a ring of %u entries, but the inflight "
				    "region tracks %u", idx, q->num, b->ifl_queue_size);
		r = hvn_vq_set_inflight(q->vq, b->ifl_base + idx * b->ifl_queue_bytes,
					b->ifl_queue_size);
	} else {
		r = hvn_vq_set_inflight(q->vq, NULL, 0);
	}
	if (r < 0)
		return fail(b, r, "queue %u: inflight region: %s", idx, strerror(-r));
	r = hvn_vq_start(q->vq);
	if (r == -EBADMSG)
		return fail(b, r, "queue %u: the inflight region holds what no backend writes", idx);
	if (r < 0)
		return fail(b, r, "queue %u: rings not in guest memory: %s", idx, strerror(-r));

	memset(&qc, 0, sizeof(qc));
	qc.ops = b->cfg.ops;
	qc.dev = b->cfg.dev;
	qc.vq = q->vq;
	qc.index = idx;
	qc.kick_fd = q->kick_fd;
	qc.call_fd = q->call_fd;
	qc.err_fd = q->err_fd;
	r = b->cfg.host->queue_start(b->cfg.host_arg, idx, &qc);
	if (r < 0) {
		hvn_vq_stop(q->vq);
		return fail(b, r, "queue %u: the data plane refused it: %s", idx, strerror(-r));
	}
	q->state = Q_RUNNING;
	return 0;
}

static int queue_stop(struct hvn_vu_backend *b, unsigned int idx)
{
	struct vu_queue *q = &b->queues[idx];
	int r;

	if (q->state != Q_RUNNING)
		return 0;
	r = b->cfg.host->queue_stop(b->cfg.host_arg, idx);
	if (r < 0)
		return fail(b, r, "queue %u: the data plane cannot stop it: %s", idx, strerror(-r));
	q->state = Q_STOPPING;
	b->stops_pending++;
	return HVN_VU_PAUSED;
}

/* Start what should run, stop what should not. */
static int reconcile(struct hvn_vu_backend *b)
{
	unsigned int i;
	int paused = 0;

	for (i = 0; i < b->cfg.num_queues; i++) {
		struct vu_queue *q = &b->queues[i];
		bool ready = queue_ready(b, q);
		int r = 0;

		if (ready && q->state == Q_IDLE)
			r = queue_start(b, i);
		else if (!ready && q->state == Q_RUNNING)
			r = queue_stop(b, i);
		if (r < 0)
			return r;
		paused |= r == HVN_VU_PAUSED || q->state == Q_STOPPING;
	}
	return paused ? HVN_VU_PAUSED : 0;
}

/*
 * Stop every running queue (the connection is ending).  Returns the number
 * of stops still to be reported; a queue the host could not stop is left
 * out (and recorded in strerror), as waiting for it would never end.
 */
int hvn_vu_backend_stop_all(struct hvn_vu_backend *b)
{
	unsigned int i;

	if (!b)
		return -EINVAL;
	for (i = 0; i < b->cfg.num_queues; i++)
		queue_stop(b, i);
	return (int)b->stops_pending;
}

/* Forget a queue's configuration (GET_VRING_BASE keeps it, resets do not). */
static void queue_reset(struct vu_queue *q)
{
	close_fd(&q->kick_fd);
	close_fd(&q->call_fd);
	close_fd(&q->err_fd);
	q->num = 0;
	q->base = 0;
	q->addr_set = false;
	q->enabled = false;
}

/* ---- messages ---- */

static int reply_fds(struct hvn_vu_backend *b, int sock, const struct vu_msg *req,
		     const void *payload, uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_msg m;
	int r;

	memset(&m.hdr, 0, sizeof(m.hdr));
	m.hdr.request = req->hdr.request;
	m.hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	m.hdr.size = size;
	memcpy(&m.payload, payload, size);
	m.nfds = nfds;
	if (nfds)
		memcpy(m.fds, fds, nfds * sizeof(*fds));
	r = vu_msg_send(sock, &m);
	if (r < 0)
		return fail(b, r, "reply to %s: %s", vu_request_name(req->hdr.request), strerror(-r));
	return 0;
}

static int reply(struct hvn_vu_backend *b, int sock, const struct vu_msg *req,
		 const void *payload, uint32_t size)
{
	return reply_fds(b, sock, req, payload, size, NULL, 0);
}

static int reply_u64(struct hvn_vu_backend *b, int sock, const struct vu_msg *req, uint64_t v)
{
	return reply(b, sock, req, &v, sizeof(v));
}

/* The queue a message names, or NULL after recording why not. */
static struct vu_queue *msg_queue(struct hvn_vu_backend *b, const struct vu_msg *m, uint32_t idx,
				  int *err)
{
	struct vu_queue *q;

	if (idx >= b->cfg.num_queues) {
		*err = fail(b, -ERANGE, "%s: queue %u, but the device has %u",
			    vu_request_name(m->hdr.request), idx, b->cfg.num_queues);
		return NULL;
	}
	q = &b->queues[idx];
	if (!q->vq) {
		int r = hvn_vq_new(b->mem, &q->vq);

		if (r < 0) {
			*err = fail(b, r, "queue %u: %s", idx, strerror(-r));
			return NULL;
		}
	}
	return q;
}

/*
 * Is the message about one queue, and which?  The index is the peer's
 * 32-bit value, unchecked (msg_queue checks it): it must not pass through
 * an int, where 0x80000000 and up would turn into "about no queue".
 */
static bool msg_queue_index(const struct vu_msg *m, uint32_t *idx)
{
	switch (m->hdr.request) {
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ADDR:
		*idx = m->payload.state.index;	/* same place in vu_vring_addr */
		return true;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		*idx = (uint32_t)(m->payload.u64 & VU_VRING_IDX_MASK);
		return true;
	}
	return false;
}

/*
 * Must a queue stop before this message can be applied?  Returns
 * HVN_VU_PAUSED if a stop is now pending, 0 if the message can go ahead.
 */
static int stop_before(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	uint32_t idx = 0;
	bool about_queue = msg_queue_index(m, &idx);
	unsigned int i;
	int r = 0;

	switch (m->hdr.request) {
	case VU_SET_FEATURES:
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
	case VU_SET_INFLIGHT_FD:	/* the queues point into the region */
		for (i = 0; i < b->cfg.num_queues && r >= 0; i++)
			if (b->queues[i].state == Q_RUNNING)
				r = queue_stop(b, i);
		break;
	default:
		if (about_queue && idx < b->cfg.num_queues && b->queues[idx].state == Q_RUNNING)
			r = queue_stop(b, idx);
	}
	if (r < 0)
		return r;
	return b->stops_pending ? HVN_VU_PAUSED : 0;
}

static void region_from_msg(const struct vu_mem_region *in, int fd, struct hvn_mem_region *out)
{
	memset(out, 0, sizeof(*out));
	out->gpa = in->gpa;
	out->size = in->size;
	out->uaddr = in->uaddr;
	out->mmap_offset = in->mmap_offset;
	out->fd = fd;
}

static int set_mem_table(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	struct hvn_mem_region regions[VU_MEM_TABLE_REGIONS];
	uint32_t i, n = m->payload.mem.nregions;
	int r;

	for (i = 0; i < n; i++)
		region_from_msg(&m->payload.mem.regions[i], m->fds[i], &regions[i]);
	r = hvn_mem_set_table(b->mem, regions, n);
	if (r < 0)
		return fail(b, r, "SET_MEM_TABLE: %u regions refused: %s", n, strerror(-r));
	b->nregions = n;
	return 0;
}

static int add_mem_reg(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	struct hvn_mem_region region;
	int r;

	if (b->nregions >= MAX_MEM_SLOTS)
		return fail(b, -ENOSPC, "ADD_MEM_REG: all %d memory slots are in use", MAX_MEM_SLOTS);
	region_from_msg(&m->payload.mem_single.region, m->fds[0], &region);
	r = hvn_mem_add_region(b->mem, &region);
	if (r < 0)
		return fail(b, r, "ADD_MEM_REG gpa 0x%llx size 0x%llx: %s",
			    (unsigned long long)region.gpa, (unsigned long long)region.size,
			    strerror(-r));
	b->nregions++;
	return 0;
}

static int rem_mem_reg(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	struct hvn_mem_region region;
	int r;

	region_from_msg(&m->payload.mem_single.region, -1, &region);
	r = hvn_mem_remove_region(b->mem, &region);
	if (r < 0)
		return fail(b, r, "REM_MEM_REG gpa 0x%llx: %s", (unsigned long long)region.gpa,
			    strerror(-r));
	b->nregions--;
	return 0;
}

static int get_config(struct hvn_vu_backend *b, int sock, const struct vu_msg *m)
{
	struct vu_config c;
	uint32_t off = m->payload.config.offset, len = m->payload.config.size;
	int r;

	if (!b->cfg.ops->get_config || off > b->cfg.ops->config_size ||
	    len > b->cfg.ops->config_size - off)
		return fail(b, -EINVAL, "GET_CONFIG: %u bytes at %u of a %u-byte config space",
			    len, off, b->cfg.ops->config_size);
	memset(&c, 0, sizeof(c));
	c.offset = off;
	c.size = len;
	c.flags = m->payload.config.flags;
	r = b->cfg.ops->get_config(b->cfg.dev, c.data, off, len);
	if (r < 0)
		return fail(b, r, "GET_CONFIG: the device refused: %s", strerror(-r));
	return reply(b, sock, m, &c, (uint32_t)VU_CONFIG_HDR_SIZE + len);
}

static int set_config(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	uint32_t off = m->payload.config.offset, len = m->payload.config.size;
	int r;

	if (!b->cfg.ops->set_config || off > b->cfg.ops->config_size ||
	    len > b->cfg.ops->config_size - off)
		return fail(b, -EINVAL, "SET_CONFIG: %u bytes at %u not writable", len, off);
	r = b->cfg.ops->set_config(b->cfg.dev, m->payload.config.data, off, len);
	if (r < 0)
		return fail(b, r, "SET_CONFIG: the device refused: %s", strerror(-r));
	return 0;
}

static int set_features(struct hvn_vu_backend *b, uint64_t f)
{
	int r;

	if (f & ~b->offered)
		return fail(b, -EINVAL, "SET_FEATURES 0x%llx: bits 0x%llx were not offered",
			    (unsigned long long)f, (unsigned long long)(f & ~b->offered));
	/* The rings are read as virtio 1.x (little-endian, modern layout). */
	if (!(f & HVN_VQ_F_VERSION_1))
		return fail(b, -EINVAL, "SET_FEATURES 0x%llx: legacy drivers (no VERSION_1) are not supported",
			    (unsigned long long)f);
	if (b->cfg.ops->set_features) {
		r = b->cfg.ops->set_features(b->cfg.dev, f);
		if (r < 0)
			return fail(b, r, "SET_FEATURES 0x%llx: the device refused: %s",
				    (unsigned long long)f, strerror(-r));
	}
	b->acked = f;
	return 0;
}

/*
 * Is fd an eventfd?  The data plane polls a kick descriptor without
 * reading it and writes 8-byte counts to a call or error descriptor, which
 * only an eventfd takes as a signal: a regular file or /dev/null polls
 * readable for ever, and a queue spins its worker on it at full speed; a
 * pipe that nobody reads would hold the writes in the kernel.  The
 * kernel's own vhost takes nothing but eventfds either.  Only /proc tells
 * an eventfd from other anonymous inodes (timerfd, epoll ...).
 */
static bool is_eventfd(int fd)
{
	char path[32], target[32];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n >= 0) {
		target[n] = '\0';
		return strcmp(target, "anon_inode:[eventfd]") == 0;
	}
	/* No /proc: refuse at least what is certainly not an anonymous inode. */
	return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
	       !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISFIFO(st.st_mode) &&
	       !S_ISSOCK(st.st_mode) && !S_ISLNK(st.st_mode);
}

/* The region's geometry, as GET_ and SET_INFLIGHT_FD give it; 0 if impossible. */
static uint64_t inflight_bytes(struct hvn_vu_backend *b, const struct vu_inflight *in)
{
	uint64_t per = hvn_vq_inflight_size(in->queue_size);

	if (in->num_queues == 0 || in->num_queues > b->cfg.num_queues || !per)
		return 0;
	return per * in->num_queues;
}

static int get_inflight_fd(struct hvn_vu_backend *b, int sock, const struct vu_msg *m)
{
	struct vu_inflight out = m->payload.inflight;
	uint64_t size = inflight_bytes(b, &out);
	int fd, r;

	if (!size)
		return fail(b, -EINVAL, "GET_INFLIGHT_FD: %u queues of %u entries (the device has "
			    "%u queues, a ring at most %u entries)", out.num_queues, out.queue_size,
			    b->cfg.num_queues, HVN_VQ_MAX_SIZE);
	/*
	 * Zeroed, so "never used" (version 0).  Sealed against resizing:
	 * whoever holds it (the frontend keeps it) cannot shrink it under a
	 * backend that maps it, which would die of SIGBUS.
	 */
	fd = memfd_create("hvnotify-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (ftruncate(fd, (off_t)size) < 0 ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)) {
		close(fd);
		fd = -1;
	}
	out.mmap_offset = 0;
	if (fd < 0) {
		/* mmap_size 0 is how the protocol says "no region": the
		 * frontend goes on without (QEMU does). */
		out.mmap_size = 0;
		return reply(b, sock, m, &out, sizeof(out));
	}
	out.mmap_size = size;
	r = reply_fds(b, sock, m, &out, sizeof(out), &fd, 1);
	close(fd);	/* the frontend has its copy */
	return r;
}

static int set_inflight_fd(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	const struct vu_inflight *in = &m->payload.inflight;
	uint64_t need = inflight_bytes(b, in), page = (uint64_t)sysconf(_SC_PAGESIZE), delta;
	struct stat st;
	void *p;

	if (!need)
		return fail(b, -EINVAL, "SET_INFLIGHT_FD: %u queues of %u entries (the device has "
			    "%u queues, a ring at most %u entries)", in->num_queues, in->queue_size,
			    b->cfg.num_queues, HVN_VQ_MAX_SIZE);
	if (in->mmap_size < need || (in->mmap_offset & 7) ||
	    in->mmap_offset > UINT64_MAX - need)
		return fail(b, -EINVAL, "SET_INFLIGHT_FD: %llu bytes at offset %llu for %u queues "
			    "of %u entries, which need %llu (8-byte aligned)",
			    (unsigned long long)in->mmap_size, (unsigned long long)in->mmap_offset,
			    in->num_queues, in->queue_size, (unsigned long long)need);
	/* A shared mapping past the end of its file raises SIGBUS. */
	if (fstat(m->fds[0], &st) < 0)
		return fail(b, -errno, "SET_INFLIGHT_FD: %s", strerror(errno));
	if (S_ISREG(st.st_mode) && in->mmap_offset + need > (uint64_t)st.st_size)
		return fail(b, -EINVAL, "SET_INFLIGHT_FD: the file has %lld bytes, the region ends at %llu",
			    (long long)st.st_size, (unsigned long long)(in->mmap_offset + need));
	delta = in->mmap_offset % page;
	p = mmap(NULL, (size_t)(need + delta), PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[0],
		 (off_t)(in->mmap_offset - delta));
	if (p == MAP_FAILED)
		return fail(b, -errno, "SET_INFLIGHT_FD: mmap: %s", strerror(errno));
	inflight_unmap(b);
	b->ifl_map = p;
	b->ifl_map_len = (size_t)(need + delta);
	b->ifl_base = (unsigned char *)p + delta;
	b->ifl_queue_bytes = hvn_vq_inflight_size(in->queue_size);
	b->ifl_queues = in->num_queues;
	b->ifl_queue_size = in->queue_size;
	return 0;	/* the message's fd is closed: the mapping keeps the file */
}

/* Keep the message's one descriptor (or none) as *slot. */
static void take_fd(struct vu_msg *m, int *slot)
{
	close_fd(slot);
	if (m->nfds == 1) {
		*slot = m->fds[0];
		m->nfds = 0;
	}
}

/* Apply one checked message.  Returns 0, HVN_VU_PAUSED, or -errno. */
static int apply(struct hvn_vu_backend *b, int sock, struct vu_msg *m)
{
	struct vu_queue *q = NULL;
	uint32_t req = m->hdr.request, idx = 0;
	int r = 0;

	if (msg_queue_index(m, &idx)) {
		q = msg_queue(b, m, idx, &r);
		if (!q)
			return r;
	}
	if ((req == VU_SET_VRING_KICK || req == VU_SET_VRING_CALL || req == VU_SET_VRING_ERR) &&
	    m->nfds == 1 && !is_eventfd(m->fds[0]))
		return fail(b, -EINVAL, "%s: queue %u: the descriptor is not an eventfd",
			    vu_request_name(req), idx);

	switch (req) {
	case VU_GET_FEATURES:
		return reply_u64(b, sock, m, b->offered);
	case VU_SET_FEATURES:
		return set_features(b, m->payload.u64);
	case VU_GET_PROTOCOL_FEATURES:
		return reply_u64(b, sock, m, b->protocol_offered);
	case VU_SET_PROTOCOL_FEATURES:
		if (m->payload.u64 & ~b->protocol_offered)
			return fail(b, -EINVAL, "SET_PROTOCOL_FEATURES: 0x%llx were not offered",
				    (unsigned long long)(m->payload.u64 & ~b->protocol_offered));
		b->protocol = m->payload.u64;
		return 0;
	case VU_SET_OWNER:
		b->owner = true;
		return 0;
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE: {
		unsigned int i;

		for (i = 0; i < b->cfg.num_queues; i++)
			queue_reset(&b->queues[i]);
		b->acked = 0;
		/* What was in flight died with the reset; a frontend that
		 * tracks requests sends a new region before it starts again. */
		inflight_unmap(b);
		return 0;
	}
	case VU_GET_QUEUE_NUM:
		return reply_u64(b, sock, m, b->cfg.num_queues);
	case VU_GET_MAX_MEM_SLOTS:
		return reply_u64(b, sock, m, MAX_MEM_SLOTS);
	case VU_SET_MEM_TABLE:
		return set_mem_table(b, m);
	case VU_ADD_MEM_REG:
		return add_mem_reg(b, m);
	case VU_REM_MEM_REG:
		return rem_mem_reg(b, m);
	case VU_GET_CONFIG:
		return get_config(b, sock, m);
	case VU_SET_CONFIG:
		return set_config(b, m);
	case VU_GET_INFLIGHT_FD:
		return get_inflight_fd(b, sock, m);
	case VU_SET_INFLIGHT_FD:
		return set_inflight_fd(b, m);
	case VU_SET_VRING_NUM: {
		uint32_t num = m->payload.state.num;

		if (num == 0 || num > HVN_VQ_MAX_SIZE || (num & (num - 1)))
			return fail(b, -EINVAL, "SET_VRING_NUM: queue %u size %u is not a power of two <= %u",
				    idx, num, HVN_VQ_MAX_SIZE);
		q->num = num;
		return 0;
	}
	case VU_SET_VRING_BASE:
		if (m->payload.state.num > UINT16_MAX)
			return fail(b, -EINVAL, "SET_VRING_BASE: queue %u base %u", idx, m->payload.state.num);
		q->base = (uint16_t)m->payload.state.num;
		return 0;
	case VU_GET_VRING_BASE: {
		/* The queue is stopped (stop_before): base is where its ring
		 * stopped, or what SET_VRING_BASE said if it has not run since. */
		struct vu_vring_state st = { idx, q->base };

		/* The frontend owns the ring now; it sends new eventfds with
		 * the next start. */
		close_fd(&q->kick_fd);
		close_fd(&q->call_fd);
		return reply(b, sock, m, &st, sizeof(st));
	}
	case VU_SET_VRING_ADDR: {
		const struct vu_vring_addr *a = &m->payload.addr;

		if (a->flags & ~UINT32_C(1))
			return fail(b, -EINVAL, "SET_VRING_ADDR: queue %u flags 0x%x", idx, a->flags);
		memset(&q->addr, 0, sizeof(q->addr));
		q->addr.desc = a->desc;
		q->addr.avail = a->avail;
		q->addr.used = a->used;
		q->addr.log = a->log;
		q->addr.flags = (a->flags & 1) ? HVN_VQ_ADDR_LOG : 0;
		q->addr_set = true;
		return 0;
	}
	case VU_SET_VRING_KICK:
		if (m->payload.u64 & VU_VRING_NOFD_MASK)
			return fail(b, -EOPNOTSUPP, "SET_VRING_KICK: queue %u without a kick fd (polling) is not supported", idx);
		take_fd(m, &q->kick_fd);
		return 0;
	case VU_SET_VRING_CALL:
		take_fd(m, &q->call_fd);
		return 0;
	case VU_SET_VRING_ERR:
		take_fd(m, &q->err_fd);
		return 0;
	case VU_SET_VRING_ENABLE:
		if (m->payload.state.index >= b->cfg.num_queues)
			return fail(b, -ERANGE, "SET_VRING_ENABLE: queue %u, but the device has %u",
				    m->payload.state.index, b->cfg.num_queues);
		if (m->payload.state.num > 1)
			return fail(b, -EINVAL, "SET_VRING_ENABLE: queue %u, value %u",
				    m->payload.state.index, m->payload.state.num);
		b->queues[m->payload.state.index].enabled = m->payload.state.num;
		return 0;
	}
	return fail(b, -EOPNOTSUPP, "%s is not supported by this backend", vu_request_name(req));
}

/* Requests that answer with their own payload whatever the flags say. */
static bool has_own_reply(uint32_t req)
{
	return req == VU_GET_FEATURES || req == VU_GET_PROTOCOL_FEATURES ||
	       req == VU_GET_QUEUE_NUM || req == VU_GET_MAX_MEM_SLOTS ||
	       req == VU_GET_VRING_BASE || req == VU_GET_CONFIG || req == VU_GET_INFLIGHT_FD;
}

/* Is the message allowed now?  0, or -EPROTO with the reason recorded. */
static int check_state(struct hvn_vu_backend *b, const struct vu_msg *m)
{
	uint32_t req = m->hdr.request;
	const char *need = NULL;

	switch (req) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_GET_MAX_MEM_SLOTS:
	case VU_SET_OWNER:
		return 0;	/* the handshake, before ownership */
	}
	if (!b->owner)
		need = "SET_OWNER";
	else if ((req == VU_GET_CONFIG || req == VU_SET_CONFIG) &&
		 !(b->protocol & (UINT64_C(1) << VU_PROTOCOL_F_CONFIG)))
		need = "the CONFIG protocol feature";
	else if ((req == VU_ADD_MEM_REG || req == VU_REM_MEM_REG) &&
		 !(b->protocol & (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		need = "the CONFIGURE_MEM_SLOTS protocol feature";
	else if (req == VU_RESET_DEVICE &&
		 !(b->protocol & (UINT64_C(1) << VU_PROTOCOL_F_RESET_DEVICE)))
		need = "the RESET_DEVICE protocol feature";
	else if ((req == VU_GET_INFLIGHT_FD || req == VU_SET_INFLIGHT_FD) &&
		 !(b->protocol & (UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD)))
		need = "the INFLIGHT_SHMFD protocol feature";
	if (need)
		return fail(b, -EPROTO, "%s before %s", vu_request_name(req), need);
	return 0;
}

static int process(struct hvn_vu_backend *b, int sock, struct vu_msg *m)
{
	const char *why;
	bool ack;
	int r;

	r = vu_msg_check(m, &why);
	if (r < 0)
		return fail(b, r, "%s (request %u, %u bytes, %u fds): %s",
			    vu_request_name(m->hdr.request), m->hdr.request, m->hdr.size, m->nfds, why);
	r = check_state(b, m);
	if (r < 0)
		return r;
	r = stop_before(b, m);
	if (r != 0)
		return r;
	ack = (m->hdr.flags & VU_FLAG_NEED_REPLY) &&
	      (b->protocol & (UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK)) &&
	      !has_own_reply(m->hdr.request);
	r = apply(b, sock, m);
	/* REPLY_ACK: the frontend waits for a status; give it, even a bad one. */
	if (ack) {
		int s = reply_u64(b, sock, m, r < 0 ? 1 : 0);

		if (r == 0)
			r = s;
	}
	return r;
}

/*
 * Messages acted on per call, at most.  One thread serves many connections
 * (hvnotifyd's control thread serves every device's), and a frontend that
 * keeps its socket full must not keep that thread from the others: after
 * this many the call returns 0 with the socket still readable, and a
 * level-triggered poll comes back to it once the others had their turn.
 */
#define MSGS_PER_CALL 16

int hvn_vu_backend_handle(struct hvn_vu_backend *b, int sock)
{
	unsigned int handled;

	if (!b || sock < 0)
		return -EINVAL;
	for (handled = 0;; handled++) {
		int r;

		if (b->stops_pending)
			return HVN_VU_PAUSED;
		if (b->dead)
			return b->dead;
		if (!b->msg_waiting) {
			if (handled == MSGS_PER_CALL)
				return 0;
			r = vu_msg_read(sock, &b->rd);
			if (r == 0)
				return 0;
			if (r < 0) {
				b->dead = r == -ECONNRESET ?
					fail(b, r, "the frontend closed the connection") :
					fail(b, r, "reading a message: %s", strerror(-r));
				return r;
			}
			b->msg_waiting = true;
		}
		r = process(b, sock, &b->rd.msg);
		if (r == HVN_VU_PAUSED)
			return r;	/* the message waits for the stop */
		vu_msg_close_fds(&b->rd.msg);
		vu_reader_init(&b->rd);
		b->msg_waiting = false;
		if (r == 0)
			r = reconcile(b);
		/* An error ends the connection: later calls say so again
		 * instead of reading on from a frontend that broke the rules. */
		if (r < 0)
			b->dead = r;
		if (r != 0)
			return r;
	}
}

int hvn_vu_backend_queue_stopped(struct hvn_vu_backend *b, unsigned int idx, int sock)
{
	struct vu_queue *q;

	if (!b || idx >= b->cfg.num_queues)
		return -EINVAL;
	q = &b->queues[idx];
	if (q->state == Q_IDLE)
		return -EINVAL;
	if (q->state == Q_RUNNING) {
		/* Nobody asked: the data plane could not run it.  Starting it
		 * again would fail the same way: the connection is done for,
		 * once the stops already asked for have come in. */
		q->state = Q_IDLE;
		b->dead = fail(b, -EIO, "queue %u stopped on its own", idx);
		return b->stops_pending ? HVN_VU_PAUSED : b->dead;
	}
	q->state = Q_IDLE;
	q->base = hvn_vq_get_base(q->vq);
	b->stops_pending--;
	/* Disconnecting (sock < 0): nothing more to read or answer. */
	if (b->stops_pending || sock < 0)
		return b->stops_pending ? HVN_VU_PAUSED : 0;
	return hvn_vu_backend_handle(b, sock);
}
