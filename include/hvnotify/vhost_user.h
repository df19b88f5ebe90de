/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/vhost_user.h - the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst): a VMM (the frontend) hands a virtio
 * device's rings and the guest memory under them to a backend process
 * over a unix socket.
 *
 * This header has two parts: the frontend, for VMMs that link libhvnotify
 * (and for our benchmark and integration tests), and the backend, used by
 * hvnotifyd and by in-process hosting.
 */
#ifndef HVNOTIFY_VHOST_USER_H
#define HVNOTIFY_VHOST_USER_H

#include <stdint.h>

#include <hvnotify/dev.h>
#include <hvnotify/mem.h>
#include <hvnotify/vq.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------ protocol constants -- */

/* The virtio feature bit by which a backend says it speaks protocol features. */
#define HVN_VU_F_PROTOCOL_FEATURES	(UINT64_C(1) << 30)

/* Protocol features (GET/SET_PROTOCOL_FEATURES), as masks. */
#define HVN_VU_PROTOCOL_F_MQ			(UINT64_C(1) << 0)
#define HVN_VU_PROTOCOL_F_LOG_SHMFD		(UINT64_C(1) << 1)
#define HVN_VU_PROTOCOL_F_REPLY_ACK		(UINT64_C(1) << 3)
#define HVN_VU_PROTOCOL_F_BACKEND_REQ		(UINT64_C(1) << 5)
#define HVN_VU_PROTOCOL_F_CONFIG		(UINT64_C(1) << 9)
#define HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD	(UINT64_C(1) << 12)
#define HVN_VU_PROTOCOL_F_RESET_DEVICE		(UINT64_C(1) << 13)
#define HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS	(UINT64_C(1) << 15)
#define HVN_VU_PROTOCOL_F_STATUS		(UINT64_C(1) << 16)

/* ==================================================== frontend (VMM) == */
/*
 * struct hvn_vu_frontend is one connection to a backend, driven the way
 * QEMU drives it: connect (which negotiates protocol features and takes
 * ownership), read the config space, set the virtio features the guest
 * acked, share guest memory, start queues, stop them (GET_VRING_BASE) and
 * start them again, close.
 *
 * Every call is synchronous and bounded: it returns when the backend has
 * answered (or acknowledged, where REPLY_ACK is negotiated, which the
 * library always asks for), or with -ETIMEDOUT.  Every reply is checked
 * before it is used; a backend that sends anything else than the reply
 * expected, or sends nothing, gets an error, never a crash or a hang.
 * After a timeout or a malformed reply the stream can no longer be trusted
 * to be in step: every later call fails with -ENOTCONN, and the VMM closes
 * the frontend and reconnects.
 *
 * Ownership.  The frontend owns its socket and nothing else.  File
 * descriptors given to it (memory regions, eventfds) stay the caller's: a
 * copy goes to the backend with the message, and the caller may close its
 * own once the call returns.  Guest memory stays mapped by the caller.
 *
 * Threads.  One thread at a time per frontend; nothing here locks.
 */
struct hvn_vu_frontend;

/*
 * hvn_vu_frontend_opts.flags.  HVN_VU_FRONTEND_F_INFLIGHT negotiates
 * INFLIGHT_SHMFD when the backend offers it; the caller must then give the
 * backend a region (get_inflight once, set_inflight before starting queues
 * on every connection), as libvhost-user backends refuse to start a queue
 * without one.
 */
#define HVN_VU_FRONTEND_F_INFLIGHT	(1u << 0)

/* Options for hvn_vu_frontend_connect/adopt; NULL or all-zero: defaults. */
struct hvn_vu_frontend_opts {
	uint32_t timeout_ms;		/* per request; 0: 5000 */
	uint32_t flags;			/* HVN_VU_FRONTEND_F_* */
	uint64_t protocol_disable;	/* HVN_VU_PROTOCOL_F_* never to negotiate */
	uint64_t reserved[2];		/* must be 0 */
};

/* What the connection negotiated (hvn_vu_frontend_info). */
struct hvn_vu_frontend_info {
	uint64_t features;		/* virtio features the backend offers */
	uint64_t protocol_offered;	/* protocol features it offers, 0 without them */
	uint64_t protocol_features;	/* negotiated: offered, implemented, not disabled */
	uint32_t queues;		/* GET_QUEUE_NUM; 0 (unknown) without MQ */
	uint32_t max_mem_regions;	/* regions a table may hold */
	uint64_t reserved[4];
};

/* hvn_vu_frontend_set_mem_table flags: which messages to use (default: the best negotiated). */
#define HVN_VU_MEM_USE_TABLE	(1u << 0)	/* SET_MEM_TABLE, even with CONFIGURE_MEM_SLOTS */
#define HVN_VU_MEM_USE_SLOTS	(1u << 1)	/* ADD_MEM_REG/REM_MEM_REG only */

/* One queue for hvn_vu_frontend_start_queue. */
struct hvn_vu_frontend_vring {
	uint32_t num;			/* ring size */
	uint32_t base;			/* where the backend starts (last_avail_idx) */
	struct hvn_vq_addr addr;	/* frontend virtual addresses; flags must be 0 */
	int32_t kick_fd;		/* guest -> backend eventfd; -1: none (backend polls) */
	int32_t call_fd;		/* backend -> guest eventfd; -1: none */
	int32_t err_fd;			/* backend's error eventfd; -1: none */
	uint32_t flags;			/* must be 0 */
};

int hvn_vu_frontend_connect(struct hvn_vu_frontend **fep, const char *path,
			    const struct hvn_vu_frontend_opts *opts);
int hvn_vu_frontend_adopt(struct hvn_vu_frontend **fep, int fd,
			  const struct hvn_vu_frontend_opts *opts);
void hvn_vu_frontend_close(struct hvn_vu_frontend *fe);
int hvn_vu_frontend_fd(const struct hvn_vu_frontend *fe);
int hvn_vu_frontend_info(const struct hvn_vu_frontend *fe, struct hvn_vu_frontend_info *info);

int hvn_vu_frontend_set_features(struct hvn_vu_frontend *fe, uint64_t features);
int hvn_vu_frontend_get_config(struct hvn_vu_frontend *fe, uint32_t offset, void *buf,
			       uint32_t len);
int hvn_vu_frontend_set_config(struct hvn_vu_frontend *fe, uint32_t offset, const void *buf,
			       uint32_t len);
int hvn_vu_frontend_set_mem_table(struct hvn_vu_frontend *fe,
				  const struct hvn_mem_region *regions, unsigned int count,
				  unsigned int flags);

int hvn_vu_frontend_start_queue(struct hvn_vu_frontend *fe, unsigned int index,
				const struct hvn_vu_frontend_vring *vring);
int hvn_vu_frontend_stop_queue(struct hvn_vu_frontend *fe, unsigned int index,
			       uint32_t *base);
int hvn_vu_frontend_set_vring_call(struct hvn_vu_frontend *fe, unsigned int index, int fd);
int hvn_vu_frontend_reset(struct hvn_vu_frontend *fe);

/*
 * The inflight region (INFLIGHT_SHMFD): the backend makes it
 * (get_inflight), the VMM keeps it, and hands it to every backend it
 * connects to before starting queues (set_inflight), so that a backend
 * started after one that died can resubmit what was in flight.
 */
struct hvn_vu_inflight {
	int32_t fd;			/* the region; get_inflight: the caller's to close */
	uint32_t reserved0;		/* must be 0 */
	uint64_t mmap_size;		/* bytes of the region */
	uint64_t mmap_offset;		/* where it starts in fd */
	uint16_t num_queues;		/* queues it tracks */
	uint16_t queue_size;		/* entries per queue (the largest ring) */
	uint32_t reserved1;		/* must be 0 */
};

int hvn_vu_frontend_get_inflight(struct hvn_vu_frontend *fe, unsigned int num_queues,
				 unsigned int queue_size, struct hvn_vu_inflight *inflight);
int hvn_vu_frontend_set_inflight(struct hvn_vu_frontend *fe,
				 const struct hvn_vu_inflight *inflight);

/* ================================================== end of frontend == */

/* =========================================== backend (device server) == */
/* A device served to one frontend connection (hvnotifyd, in-process hosts). */

struct hvn_vu_backend;

/*
 * The data plane the backend hands running queues to.  The backend runs in
 * one thread (the control plane); the queues may run in others.  Both calls
 * are asynchronous: the host answers a stop by calling
 * hvn_vu_backend_queue_stopped() from the backend's thread.
 */
struct hvn_vu_backend_host {
	/* Run queue idx as cfg says (its vq is configured and started). */
	int (*queue_start)(void *arg, unsigned int idx, const struct hvn_dev_queue_config *cfg);
	/* Stop running queue idx; in-flight requests finish first. */
	int (*queue_stop)(void *arg, unsigned int idx);
};

/*
 * hvn_vu_backend_config.flags.  HVN_VU_BACKEND_F_INFLIGHT offers
 * INFLIGHT_SHMFD: the frontend keeps a region in which the queues record
 * the requests in flight (hvn_vq_set_inflight), and a backend started
 * after this one died resubmits those to the device.  A request may then
 * run twice: only for devices whose requests are idempotent (block reads
 * and writes are).
 */
#define HVN_VU_BACKEND_F_INFLIGHT	(1u << 0)

struct hvn_vu_backend_config {
	const struct hvn_dev_ops *ops;		/* the device */
	void *dev;
	unsigned int num_queues;		/* offered (1 .. ops->max_queues) */
	uint64_t features_mask;			/* features to hide (not VERSION_1); 0: none */
	const struct hvn_vu_backend_host *host;
	void *host_arg;
	uint32_t flags;				/* HVN_VU_BACKEND_F_* */
	uint32_t reserved;			/* must be 0 */
};

/* hvn_vu_backend_handle() and _queue_stopped(): stop reading, a stop is pending. */
#define HVN_VU_PAUSED 1

int hvn_vu_backend_new(const struct hvn_vu_backend_config *cfg, struct hvn_vu_backend **bp);
void hvn_vu_backend_free(struct hvn_vu_backend *b);
int hvn_vu_backend_handle(struct hvn_vu_backend *b, int sock);
int hvn_vu_backend_queue_stopped(struct hvn_vu_backend *b, unsigned int idx, int sock);
int hvn_vu_backend_stop_all(struct hvn_vu_backend *b);
const char *hvn_vu_backend_strerror(const struct hvn_vu_backend *b);

#ifdef __cplusplus
}
#endif

#endif /* HVNOTIFY_VHOST_USER_H */
