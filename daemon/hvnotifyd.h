/* SPDX-License-Identifier: MIT */
/*
 * hvnotifyd.h - the daemon's parts and how they meet.
 *
 * main.c      options, start-up, signals, shutdown
 * control.c   the control plane (libevent, main thread): one listening
 *             socket per device, one frontend connection at a time, the
 *             vhost-user backend of that connection
 * worker.c    data-plane threads, one io_uring loop each, running queues
 * dev_blk.c   the virtio-blk device (file, block device or null)
 * log.c       messages to stderr
 *
 * Threads talk through small command mailboxes (an eventfd and a list), so
 * a queue is only ever touched by the worker that runs it.
 */
#ifndef HVNOTIFYD_H
#define HVNOTIFYD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hvnotify/dev.h>
#include <hvnotify/vhost_user.h>

/* ---- log.c ---- */
enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern int log_verbosity;
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* ---- dev_blk.c ---- */
struct blk_options {
	const char *path;		/* NULL: the null backing */
	uint64_t null_size;		/* bytes, for the null backing */
	bool readonly;
	bool direct;			/* O_DIRECT */
	const char *serial;		/* GET_ID answer; NULL: derived from the path */
};
struct blk_dev;
extern const struct hvn_dev_ops blk_ops;
int blk_open(const struct blk_options *opt, unsigned int num_queues, struct blk_dev **out,
	     char *why, size_t why_len);
void blk_close(struct blk_dev *blk);
void blk_log_next(struct blk_dev *blk, unsigned int queue, unsigned int count);
uint64_t blk_capacity_bytes(const struct blk_dev *blk);

/* ---- devices, as configured ---- */
struct totals {
	atomic_uint_fast64_t requests, completions, kicks, calls, batches;
};

struct device {
	char name[32];			/* "blk0" ... for logs */
	char *spec;			/* the --device argument */
	char *socket_path;
	unsigned int num_queues;
	struct blk_options blk;
	const struct hvn_dev_ops *ops;
	void *dev;			/* ops' instance */
	unsigned int index;		/* among devices: spreads queues over workers */

	/* control.c */
	int listen_fd;
	struct event *listen_ev;
	struct conn *conn;		/* the one frontend, or NULL */
	unsigned long connections;	/* accepted so far */
	struct totals totals;		/* of queues that have stopped */
};

int device_parse(struct device *d, const char *spec, char *why, size_t why_len);
int device_open(struct device *d, char *why, size_t why_len);
void device_close(struct device *d);

/* ---- worker.c ---- */
struct worker;
struct conn;
int workers_start(unsigned int count);
void workers_stop(void);
unsigned int workers_count(void);
struct worker *worker_for(unsigned int device_index, unsigned int queue);
int worker_queue_start(struct worker *w, struct conn *c, unsigned int idx,
		       const struct hvn_dev_queue_config *cfg);
struct cmd;
struct cmd *worker_stop_cmds_new(unsigned int count);
int worker_queue_stop(struct worker *w, struct conn *c, unsigned int idx, struct cmd *stop_cmds);
void workers_print_stats(void);

/* ---- control.c: what workers report back ---- */
void control_queue_stopped(struct conn *c, unsigned int idx, const struct hvn_dev_queue_stats *st);
void control_queue_broken(struct conn *c, unsigned int idx, int err);
const char *conn_name(const struct conn *c);
struct device *conn_device(const struct conn *c);

struct event_base;
int control_start(struct event_base *base, struct device *devices, unsigned int count);
void control_shutdown(void (*done)(void));
void control_print_stats(void);
void control_free(void);

#endif /* HVNOTIFYD_H */
