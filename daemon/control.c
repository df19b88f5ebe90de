// SPDX-License-Identifier: MIT
/*
 * control.c - the control plane: libevent in the main thread.
 *
 * Each device listens on its own unix socket and serves one frontend at a
 * time; a second frontend is told no (its connection is closed at once)
 * and the device accepts again when the first one leaves.  A connection
 * carries one vhost-user backend (lib/vu_backend.c) whose queues run on the
 * workers.  When a connection ends, for whatever reason, its queues are
 * stopped first (their I/O in flight finishes), and only then are its
 * memory and descriptors released.
 *
 * Workers report back through a mailbox of our own (a list under a mutex
 * and an eventfd that libevent watches), so everything here runs in the
 * main thread and needs no lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hvnotifyd.h"

struct conn {
	struct device *dev;
	unsigned long id;
	char name[48];
	int sock;
	struct event *read_ev;
	struct hvn_vu_backend *backend;
	struct cmd *stop_cmds;		/* one per queue: stops never fail */
	bool closing;
	bool reading;			/* read_ev is armed */
};

/* What a worker tells the control thread. */
struct report {
	struct report *next;
	enum { REPORT_STOPPED, REPORT_BROKEN } type;
	struct conn *conn;
	unsigned int idx;
	int err;
	struct hvn_dev_queue_stats stats;
};

static struct event_base *base;
static struct device *devices;
static unsigned int nr_devices;
static int report_fd = -1;
static struct event *report_ev;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static struct report *reports, **reports_tail = &reports;
static bool shutting_down;
static void (*shutdown_done)(void);

const char *conn_name(const struct conn *c)
{
	return c->name;
}

struct device *conn_device(const struct conn *c)
{
	return c->dev;
}

static void maybe_finish_shutdown(void);

/* ---- reports from workers (any thread) ---- */

static void report(struct report *r)
{
	uint64_t one = 1;

	r->next = NULL;
	pthread_mutex_lock(&report_lock);
	*reports_tail = r;
	reports_tail = &r->next;
	pthread_mutex_unlock(&report_lock);
	if (write(report_fd, &one, sizeof(one)) != sizeof(one))
		log_err("control mailbox: %s", strerror(errno));
}

void control_queue_stopped(struct conn *c, unsigned int idx, const struct hvn_dev_queue_stats *st)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r) {
		/* Without it the connection would wait forever: give up. */
		log_err("out of memory reporting a stopped queue");
		abort();
	}
	r->type = REPORT_STOPPED;
	r->conn = c;
	r->idx = idx;
	r->stats = *st;
	report(r);
}

void control_queue_broken(struct conn *c, unsigned int idx, int err)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return;		/* only a log line is lost */
	r->type = REPORT_BROKEN;
	r->conn = c;
	r->idx = idx;
	r->err = err;
	report(r);
}

/* ---- connections ---- */

static void conn_read_arm(struct conn *c, bool on)
{
	if (on && !c->reading)
		event_add(c->read_ev, NULL);
	else if (!on && c->reading)
		event_del(c->read_ev);
	c->reading = on;
}

static void conn_free(struct conn *c)
{
	struct device *d = c->dev;

	conn_read_arm(c, false);
	event_free(c->read_ev);
	/* Every queue has stopped: memory and fds can go now. */
	hvn_vu_backend_free(c->backend);
	free(c->stop_cmds);
	close(c->sock);
	log_info("%s: frontend gone; %s accepts a new one", c->name, d->name);
	d->conn = NULL;
	free(c);
	if (shutting_down)
		maybe_finish_shutdown();
}

/* End the connection: stop its queues, then free it. */
static void conn_close(struct conn *c, const char *why)
{
	int pending;

	if (c->closing)
		return;
	c->closing = true;
	conn_read_arm(c, false);
	log_info("%s: closing: %s", c->name, why);
	pending = hvn_vu_backend_stop_all(c->backend);
	if (pending < 0)
		log_err("%s: stopping queues: %s", c->name, hvn_vu_backend_strerror(c->backend));
	if (pending <= 0)
		conn_free(c);
	/* else: the last REPORT_STOPPED frees it */
}

static void conn_result(struct conn *c, int r)
{
	if (r == 0)
		conn_read_arm(c, true);
	else if (r == HVN_VU_PAUSED)
		conn_read_arm(c, false);	/* until the stop is reported */
	else
		conn_close(c, hvn_vu_backend_strerror(c->backend));
}

static void on_conn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_result(c, hvn_vu_backend_handle(c->backend, c->sock));
}

static void add_totals(struct totals *t, const struct hvn_dev_queue_stats *st)
{
	atomic_fetch_add(&t->requests, st->requests);
	atomic_fetch_add(&t->completions, st->completions);
	atomic_fetch_add(&t->kicks, st->kicks);
	atomic_fetch_add(&t->calls, st->calls);
	atomic_fetch_add(&t->batches, st->batches);
}

static void handle_report(struct report *r)
{
	struct conn *c = r->conn;
	int res;

	if (r->type == REPORT_BROKEN) {
		log_warn("%s queue %u: the guest broke the queue: %s; the error eventfd was signalled",
			 c->name, r->idx, strerror(-r->err));
		return;
	}
	add_totals(&c->dev->totals, &r->stats);
	log_debug("%s queue %u stopped after %llu requests", c->name, r->idx,
		  (unsigned long long)r->stats.requests);
	res = hvn_vu_backend_queue_stopped(c->backend, r->idx, c->closing ? -1 : c->sock);
	if (c->closing) {
		if (res != HVN_VU_PAUSED)	/* the last stop: whatever it said */
			conn_free(c);
		return;
	}
	conn_result(c, res);
}

static void on_reports(evutil_socket_t fd, short what, void *arg)
{
	struct report *list;
	uint64_t v;

	if (read(report_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("control mailbox: %s", strerror(errno));
	pthread_mutex_lock(&report_lock);
	list = reports;
	reports = NULL;
	reports_tail = &reports;
	pthread_mutex_unlock(&report_lock);
	while (list) {
		struct report *next = list->next;

		handle_report(list);
		free(list);
		list = next;
	}
}

/* ---- the backend's host: queues go to the workers ---- */

static int host_queue_start(void *arg, unsigned int idx, const struct hvn_dev_queue_config *cfg)
{
	struct conn *c = arg;

	return worker_queue_start(worker_for(c->dev->index, idx), c, idx, cfg);
}

static int host_queue_stop(void *arg, unsigned int idx)
{
	struct conn *c = arg;

	return worker_queue_stop(worker_for(c->dev->index, idx), c, idx, c->stop_cmds);
}

static const struct hvn_vu_backend_host host_ops = {
	.queue_start = host_queue_start,
	.queue_stop = host_queue_stop,
};

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	struct hvn_vu_backend_config bc;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int sock, r;

	sock = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (sock < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_err("%s: accept: %s", d->name, strerror(errno));
		return;
	}
	/* The kernel's record of the peer at connect(): it cannot lie. */
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		log_warn("%s: refusing a frontend whose credentials are unknown: %s", d->name,
			 strerror(errno));
		close(sock);
		return;
	}
	if (!access_uid_allowed(cred.uid)) {
		log_warn("%s: refusing a frontend (pid %d, uid %u, gid %u): uid %u is not allowed "
			 "(see --allow-uid)", d->name, (int)cred.pid, (unsigned int)cred.uid,
			 (unsigned int)cred.gid, (unsigned int)cred.uid);
		close(sock);
		return;
	}
	if (d->conn || shutting_down) {
		log_warn("%s: refusing a frontend (pid %d, uid %u): %s", d->name, (int)cred.pid,
			 (unsigned int)cred.uid,
			 shutting_down ? "shutting down" : "already serving one");
		close(sock);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(sock);
		return;
	}
	c->dev = d;
	c->sock = sock;
	c->id = ++d->connections;
	snprintf(c->name, sizeof(c->name), "%s#%lu", d->name, c->id);
	memset(&bc, 0, sizeof(bc));
	bc.ops = d->ops;
	bc.dev = d->dev;
	bc.num_queues = d->num_queues;
	bc.host = &host_ops;
	bc.host_arg = c;
	/*
	 * Requests in flight survive our death: QEMU keeps the region they
	 * are recorded in, and the next hvnotifyd resubmits them.  That may
	 * run a request twice, which is harmless for a disk: a read reads
	 * the same blocks again, a write writes the same data to the same
	 * blocks again, and the guest has issued nothing newer to those
	 * blocks meanwhile, since it has not seen this request complete.
	 */
	if (d->type == DEVICE_BLK)
		bc.flags |= HVN_VU_BACKEND_F_INFLIGHT;
	r = hvn_vu_backend_new(&bc, &c->backend);
	c->read_ev = event_new(base, sock, EV_READ | EV_PERSIST, on_conn_readable, c);
	c->stop_cmds = worker_stop_cmds_new(d->num_queues);
	if (r < 0 || !c->read_ev || !c->stop_cmds) {
		log_err("%s: cannot serve a frontend: %s", d->name, strerror(r < 0 ? -r : ENOMEM));
		if (c->read_ev)
			event_free(c->read_ev);
		hvn_vu_backend_free(c->backend);
		free(c->stop_cmds);
		close(sock);
		free(c);
		return;
	}
	d->conn = c;
	log_info("%s: frontend connected on %s (pid %d, uid %u, gid %u)", c->name, d->socket_path,
		 (int)cred.pid, (unsigned int)cred.uid, (unsigned int)cred.gid);
	conn_read_arm(c, true);
}

/* ---- listening sockets ---- */

/*
 * Bind path, replacing only a stale socket: never a file that is not a
 * socket, never a socket someone still listens on.
 */
static int listen_on(struct device *d)
{
	struct sockaddr_un addr;
	struct stat st;
	mode_t old_mask;
	char perms[48];
	int fd, r;

	if (d->has_group)
		snprintf(perms, sizeof(perms), "mode %04o, group %u", (unsigned int)d->socket_mode,
			 (unsigned int)d->socket_gid);
	else
		snprintf(perms, sizeof(perms), "mode %04o", (unsigned int)d->socket_mode);
	if (strlen(d->socket_path) >= sizeof(addr.sun_path)) {
		log_err("%s: socket path too long (%zu bytes, at most %zu): %s", d->name,
			strlen(d->socket_path), sizeof(addr.sun_path) - 1, d->socket_path);
		return -ENAMETOOLONG;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strcpy(addr.sun_path, d->socket_path);

	if (lstat(d->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s: %s exists and is not a socket; not replacing it", d->name,
				d->socket_path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(fd);
			log_err("%s: %s is in use by another process", d->name, d->socket_path);
			return -EADDRINUSE;
		}
		if (fd >= 0)
			close(fd);
		unlink(d->socket_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Created 0600: only our own user may connect (the kernel checks
	 * write permission on the socket file at connect).  The group and a
	 * wider mode come after, while nobody can connect yet (no listen()),
	 * so the socket is never open wider than asked, not even for a
	 * moment, and never to the wrong group. */
	old_mask = umask(0177);
	r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (r < 0) {
		r = -errno;
		log_err("%s: cannot listen on %s: %s", d->name, d->socket_path, strerror(errno));
		close(fd);
		return r;
	}
	/* By path, as a socket's fd has no inode to fchown: lchown and
	 * AT_SYMLINK_NOFOLLOW, so that a socket swapped for a symlink in a
	 * shared directory never makes us chown or chmod its target. */
	if ((d->has_group && lchown(d->socket_path, (uid_t)-1, d->socket_gid) < 0) ||
	    (d->socket_mode != 0600 &&
	     fchmodat(AT_FDCWD, d->socket_path, d->socket_mode, AT_SYMLINK_NOFOLLOW) < 0) ||
	    listen(fd, 4) < 0) {
		r = -errno;
		log_err("%s: cannot give %s %s: %s", d->name, d->socket_path, perms,
			strerror(errno));
		close(fd);
		unlink(d->socket_path);
		return r;
	}
	d->listen_fd = fd;
	d->listen_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, d);
	if (!d->listen_ev || event_add(d->listen_ev, NULL) < 0)
		return -ENOMEM;
	log_info("%s: serving %s on %s (%s, %u queue%s)", d->name, d->spec, d->socket_path,
		 perms, d->num_queues, d->num_queues == 1 ? "" : "s");
	return 0;
}

static void stop_listening(struct device *d)
{
	if (d->listen_ev) {
		event_free(d->listen_ev);
		d->listen_ev = NULL;
	}
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
		unlink(d->socket_path);
	}
}

int control_start(struct event_base *b, struct device *devs, unsigned int count)
{
	unsigned int i;
	int r;

	base = b;
	devices = devs;
	nr_devices = count;
	report_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (report_fd < 0)
		return -errno;
	report_ev = event_new(base, report_fd, EV_READ | EV_PERSIST, on_reports, NULL);
	if (!report_ev || event_add(report_ev, NULL) < 0)
		return -ENOMEM;
	for (i = 0; i < count; i++)
		devs[i].listen_fd = -1;
	for (i = 0; i < count; i++) {
		r = listen_on(&devs[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void maybe_finish_shutdown(void)
{
	unsigned int i;
	void (*done)(void) = shutdown_done;

	for (i = 0; i < nr_devices; i++)
		if (devices[i].conn)
			return;
	if (!done)
		return;
	shutdown_done = NULL;
	done();
}

/* Stop accepting, end every connection (their I/O finishes), then done(). */
void control_shutdown(void (*done)(void))
{
	unsigned int i;

	if (shutting_down)
		return;
	shutting_down = true;
	shutdown_done = done;
	for (i = 0; i < nr_devices; i++)
		stop_listening(&devices[i]);
	for (i = 0; i < nr_devices; i++)
		if (devices[i].conn)
			conn_close(devices[i].conn, "shutting down");
	maybe_finish_shutdown();
}

static void print_totals(const char *what, const struct device *d)
{
	log_info("%s %s: %lu connection%s, %llu requests, %llu kicks, %llu calls, %llu batches",
		 what, d->name, d->connections, d->connections == 1 ? "" : "s",
		 (unsigned long long)atomic_load(&d->totals.requests),
		 (unsigned long long)atomic_load(&d->totals.kicks),
		 (unsigned long long)atomic_load(&d->totals.calls),
		 (unsigned long long)atomic_load(&d->totals.batches));
}

/* Totals of stopped queues here; running queues print from their worker. */
void control_print_stats(void)
{
	unsigned int i;

	for (i = 0; i < nr_devices; i++)
		print_totals("stats", &devices[i]);
	workers_print_stats();
}

void control_free(void)
{
	unsigned int i;

	for (i = 0; i < nr_devices; i++) {
		stop_listening(&devices[i]);
		print_totals("total", &devices[i]);
	}
	if (report_ev)
		event_free(report_ev);
	report_ev = NULL;
	if (report_fd >= 0)
		close(report_fd);
	report_fd = -1;
}
