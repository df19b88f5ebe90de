/* SPDX-License-Identifier: MIT */
/*
 * hvnotify/vhost_user.h - the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst): serving a device to a frontend over a unix
 * socket (the backend side), and driving a backend from a VMM (the
 * frontend side).
 */
#ifndef HVNOTIFY_VHOST_USER_H
#define HVNOTIFY_VHOST_USER_H

#include <stdint.h>

#include <hvnotify/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backend: a device served to one frontend connection ---- */

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

struct hvn_vu_backend_config {
	const struct hvn_dev_ops *ops;		/* the device */
	void *dev;
	unsigned int num_queues;		/* offered (1 .. ops->max_queues) */
	uint64_t features_mask;			/* device features to hide; 0: none */
	const struct hvn_vu_backend_host *host;
	void *host_arg;
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
