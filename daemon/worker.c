// SPDX-License-Identifier: MIT
/*
 * worker.c - the data plane: threads that each run one loop (io_uring, or
 * epoll where io_uring is forbidden) and the queues given to them.
 *
 * The control thread never touches a running queue.  It posts commands
 * (start, stop, print statistics, quit) to the worker's mailbox: a list
 * under a mutex and an eventfd the worker's loop polls.  Queue objects are
 * created and freed in the worker; the control thread learns that a queue
 * stopped through control_queue_stopped(), which it receives in its own
 * thread.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hvnotifyd.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

enum cmd_type { CMD_START, CMD_STOP, CMD_STATS, CMD_QUIT };

struct cmd {
	struct cmd *next;
	enum cmd_type type;
	struct conn *conn;
	unsigned int idx;
	bool preallocated;		/* the caller's storage: not freed here */
	struct hvn_dev_queue_config cfg;
};

/* A queue this worker runs. */
struct running {
	struct running *next;
	struct worker *w;
	struct conn *conn;
	unsigned int idx;
	struct hvn_dev_queue *q;
};

struct worker {
	unsigned int id;
	uint64_t poll_ns;		/* the polling window now; 0: do not poll */
	pthread_t thread;
	struct hvn_loop *loop;
	int mailbox_fd;
	struct hvn_loop_op mailbox_op;
	pthread_mutex_t lock;
	struct cmd *head, **tail;	/* FIFO: a stop never overtakes its start */
	struct running *running;
	bool quit;
	enum hvn_loop_engine engine;	/* asked for, then the one it runs on */
	int uring_err;			/* why auto mode is not on io_uring */
	int setup_result;		/* hvn_loop_new_engine()'s answer, for workers_start() */
	pthread_mutex_t setup_lock;
	pthread_cond_t setup_cond;
	bool setup_done;
};

static struct worker *workers;
static unsigned int nr_workers;
static uint64_t poll_max_ns;

/*
 * Adaptive polling, QEMU's poll-max-ns idea.  After each wait for events,
 * the worker looks at how long it slept: had the window been that long,
 * polling would have caught the event without the guest kicking and
 * without our wake-up, so the window grows towards poll_max_ns; a sleep
 * longer than poll_max_ns means polling would not have paid, and the
 * window shrinks to nothing.
 */
#define POLL_NS_INITIAL 4000
#define POLL_GROW 2
#define POLL_SHRINK 2

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned int workers_count(void)
{
	return nr_workers;
}

struct worker *worker_for(unsigned int device_index, unsigned int queue)
{
	return &workers[(device_index + queue) % nr_workers];
}

static int post(struct worker *w, struct cmd *c)
{
	uint64_t one = 1;

	c->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->tail = c;
	w->tail = &c->next;
	pthread_mutex_unlock(&w->lock);
	/* The write comes after the unlock: the worker that wakes up for it
	 * takes the lock and finds the command.  The command is queued
	 * whatever the write says (it can only fail with a counter at its
	 * maximum, which means a wake-up is pending anyway). */
	if (write(w->mailbox_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		log_err("worker %u mailbox: %s", w->id, strerror(errno));
	return 0;
}

static int post_new(struct worker *w, enum cmd_type type, struct conn *conn, unsigned int idx,
		    const struct hvn_dev_queue_config *cfg)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->type = type;
	c->conn = conn;
	c->idx = idx;
	if (cfg)
		c->cfg = *cfg;
	return post(w, c);
}

int worker_queue_start(struct worker *w, struct conn *c, unsigned int idx,
		       const struct hvn_dev_queue_config *cfg)
{
	return post_new(w, CMD_START, c, idx, cfg);
}

/*
 * Stops cannot fail for want of memory: a connection keeps one command per
 * queue for them (a queue has at most one stop in flight), because a queue
 * whose stop was lost would run on after its connection is freed.
 */
struct cmd *worker_stop_cmds_new(unsigned int count)
{
	struct cmd *cmds = calloc(count, sizeof(*cmds));
	unsigned int i;

	for (i = 0; cmds && i < count; i++)
		cmds[i].preallocated = true;
	return cmds;
}

int worker_queue_stop(struct worker *w, struct conn *c, unsigned int idx, struct cmd *stop_cmds)
{
	struct cmd *storage = &stop_cmds[idx];

	storage->type = CMD_STOP;
	storage->conn = c;
	storage->idx = idx;
	return post(w, storage);
}

void workers_print_stats(void)
{
	unsigned int i;

	for (i = 0; i < nr_workers; i++)
		post_new(&workers[i], CMD_STATS, NULL, 0, NULL);
}

static void on_broken(struct hvn_dev_queue *q, int err, void *arg)
{
	struct running *r = arg;

	control_queue_broken(r->conn, r->idx, err);
}

/*
 * A request the daemon before us left in flight goes to the device again:
 * say what it is, as it is what a crash put at risk.  For virtio-blk the
 * header tells (a resubmitted write is written again, with the same data).
 */
static void on_resubmitted(struct hvn_dev_queue *q, const struct hvn_dev_req *req, void *arg)
{
	static const char *const names[] = {
		[VIRTIO_BLK_T_IN] = "read", [VIRTIO_BLK_T_OUT] = "write",
		[VIRTIO_BLK_T_FLUSH] = "flush", [VIRTIO_BLK_T_GET_ID] = "get-id",
		[VIRTIO_BLK_T_DISCARD] = "discard", [VIRTIO_BLK_T_WRITE_ZEROES] = "write-zeroes",
	};
	struct running *r = arg;
	const struct hvn_vq_req *vr = &req->vq;
	struct virtio_blk_outhdr hdr;
	size_t got = 0;
	unsigned int i;
	uint32_t type;

	if (conn_device(r->conn)->type != DEVICE_BLK) {
		log_info("%s queue %u: resubmitted head %u", conn_name(r->conn), r->idx, vr->head);
		return;
	}
	for (i = 0; i < vr->n_out && got < sizeof(hdr); i++) {
		size_t l = vr->iov[i].iov_len < sizeof(hdr) - got ? vr->iov[i].iov_len : sizeof(hdr) - got;

		memcpy((char *)&hdr + got, vr->iov[i].iov_base, l);
		got += l;
	}
	if (got < sizeof(hdr)) {
		log_info("blk: queue %u: resubmitted head %u: no header", r->idx, vr->head);
		return;
	}
	type = le32toh(hdr.type);
	log_info("blk: queue %u: resubmitted head %u: %s (type %u) of %llu bytes at sector %llu",
		 r->idx, vr->head,
		 type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "request",
		 type, (unsigned long long)(type == VIRTIO_BLK_T_IN ?
					    (vr->in_len ? vr->in_len - 1 : 0) :
					    vr->out_len - sizeof(hdr)),
		 (unsigned long long)le64toh(hdr.sector));
}

static void on_stopped(struct hvn_dev_queue *q, void *arg)
{
	struct running *r = arg, **pp;
	struct hvn_dev_queue_stats st;

	hvn_dev_queue_stats(q, &st);
	for (pp = &r->w->running; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	hvn_dev_queue_free(q);
	control_queue_stopped(r->conn, r->idx, &st);
	free(r);
}

static struct running *find(struct worker *w, struct conn *c, unsigned int idx)
{
	struct running *r;

	for (r = w->running; r; r = r->next)
		if (r->conn == c && r->idx == idx)
			return r;
	return NULL;
}

static void print_queue(struct worker *w, struct running *r)
{
	struct hvn_dev_queue_stats st;

	hvn_dev_queue_stats(r->q, &st);
	log_info("%s queue %u (worker %u): %llu requests, %llu kicks, %llu calls, %llu batches, "
		 "%u in flight%s", conn_name(r->conn), r->idx, w->id,
		 (unsigned long long)st.requests, (unsigned long long)st.kicks,
		 (unsigned long long)st.calls, (unsigned long long)st.batches, st.inflight,
		 st.error ? ", broken" : "");
}

static void run_command(struct worker *w, struct cmd *c)
{
	struct running *r;
	int err;

	switch (c->type) {
	case CMD_START: {
		struct hvn_vq_state st;

		/* A restart after a backend that died: say what it left. */
		if (hvn_vq_get_state(c->cfg.vq, &st) == 0 && (st.flags & HVN_VQ_STATE_RECOVERED)) {
			log_info("%s queue %u: resuming from the inflight region at available "
				 "index %u, used index %u: %u request%s in flight to resubmit",
				 conn_name(c->conn), c->idx, st.last_avail_idx, st.used_idx,
				 st.resubmit, st.resubmit == 1 ? "" : "s");
			/* They go to the device first, inside hvn_dev_queue_start(),
			 * each through on_resubmitted(). */
		}
		r = calloc(1, sizeof(*r));
		if (!r) {
			err = -ENOMEM;
			goto start_failed;
		}
		r->w = w;
		r->conn = c->conn;
		r->idx = c->idx;
		c->cfg.broken = on_broken;
		c->cfg.resubmitted = on_resubmitted;
		c->cfg.arg = r;
		err = hvn_dev_queue_start(w->loop, &c->cfg, &r->q);
		if (err < 0) {
			free(r);
			goto start_failed;
		}
		r->next = w->running;
		w->running = r;
		log_debug("%s queue %u runs on worker %u", conn_name(c->conn), c->idx, w->id);
		return;
start_failed:
		/* Report it as a queue that broke and stopped at once, so the
		 * control plane's bookkeeping stays the same. */
		log_err("%s queue %u: cannot start on worker %u: %s", conn_name(c->conn), c->idx,
			w->id, strerror(-err));
		control_queue_broken(c->conn, c->idx, err);
		{
			struct hvn_dev_queue_stats qst;

			memset(&qst, 0, sizeof(qst));
			qst.error = err;
			control_queue_stopped(c->conn, c->idx, &qst);
		}
		return;
	}
	case CMD_STOP:
		r = find(w, c->conn, c->idx);
		if (r) {
			err = hvn_dev_queue_stop(r->q, on_stopped, r);
			if (err < 0)
				log_err("%s queue %u: stop: %s", conn_name(c->conn), c->idx, strerror(-err));
		}
		return;
	case CMD_STATS:
		for (r = w->running; r; r = r->next)
			print_queue(w, r);
		return;
	case CMD_QUIT:
		w->quit = true;
		return;
	}
}

static void on_mailbox(struct hvn_loop_op *op, int32_t res, uint32_t flags)
{
	struct worker *w = (struct worker *)((char *)op - offsetof(struct worker, mailbox_op));
	struct cmd *list;
	uint64_t v;

	/* Clear the eventfd before taking the list: a command posted after
	 * the read wakes us again, one posted before it is in the list. */
	if (read(w->mailbox_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("worker %u: mailbox: %s", w->id, strerror(errno));
	pthread_mutex_lock(&w->lock);
	list = w->head;
	w->head = NULL;
	w->tail = &w->head;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct cmd *next = list->next;
		bool preallocated = list->preallocated;

		run_command(w, list);
		if (!preallocated)
			free(list);
		list = next;
	}
	if (!(flags & HVN_LOOP_MORE) && !w->quit)
		hvn_loop_poll(w->loop, &w->mailbox_op, w->mailbox_fd, POLLIN, 1);
}

static void setup_done(struct worker *w, int result)
{
	pthread_mutex_lock(&w->setup_lock);
	w->setup_result = result;
	w->setup_done = true;
	pthread_cond_signal(&w->setup_cond);
	pthread_mutex_unlock(&w->setup_lock);
}

static void set_polling(struct worker *w, int on)
{
	struct running *r;

	for (r = w->running; r; r = r->next)
		hvn_dev_queue_set_polling(r->q, on);
}

/* Poll every queue until window passes without work; 1 if any came. */
static int poll_rings(struct worker *w, uint64_t window)
{
	uint64_t last = now_ns();
	int found = 0;

	set_polling(w, 1);
	while (!w->quit) {
		struct running *r;
		int n = hvn_loop_run(w->loop, 0);
		uint64_t t;

		if (n < 0)
			n = 0;
		for (r = w->running; r; r = r->next)
			n += hvn_dev_queue_poll(r->q) > 0;
		t = now_ns();
		if (n > 0) {
			found = 1;
			last = t;
		} else if (t - last >= window) {
			break;
		}
	}
	/* Kicks again, and one more look: see hvn_dev_queue_set_polling. */
	set_polling(w, 0);
	return found;
}

static void adapt_window(struct worker *w, uint64_t slept)
{
	if (slept <= w->poll_ns)
		return;
	if (slept > poll_max_ns)
		w->poll_ns = w->poll_ns / POLL_SHRINK < POLL_NS_INITIAL ? 0 : w->poll_ns / POLL_SHRINK;
	else if (w->poll_ns < poll_max_ns)
		w->poll_ns = w->poll_ns ? w->poll_ns * POLL_GROW : POLL_NS_INITIAL;
	if (w->poll_ns > poll_max_ns)
		w->poll_ns = poll_max_ns;
}

/*
 * How long a worker sleeps in the kernel at a time: for ever, but under
 * valgrind.  Valgrind runs one thread at a time and lets the others run
 * only while a thread sleeps in a system call it knows may block, and up
 * to 3.20 it did not know it of io_uring_enter (KDE bug 463859, fixed in
 * 3.21; Debian 12 has 3.19): a worker asleep there would stop every other
 * thread, the control plane included, for good.  So under valgrind a
 * worker sleeps in slices and yields between them (sched_yield is one that
 * valgrind knows), which costs latency, not correctness: the daemon runs
 * the very same io_uring data plane as without valgrind.
 */
static int worker_sleep_ms(void)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return 5;
#endif
	return -1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int sleep_ms = worker_sleep_ms();
	int r;

	/* The loop is made here: a single-issuer ring belongs to the thread
	 * that creates it. */
	r = hvn_loop_new_engine(w->engine, 1024, &w->loop);
	if (r == 0) {
		w->engine = (enum hvn_loop_engine)hvn_loop_get_engine(w->loop, &w->uring_err);
		w->mailbox_op.cb = on_mailbox;
		r = hvn_loop_poll(w->loop, &w->mailbox_op, w->mailbox_fd, POLLIN, 1);
	}
	setup_done(w, r);
	if (r < 0)
		return NULL;
	while (!w->quit || w->running) {
		uint64_t t0;

		if (w->poll_ns && w->running) {
			poll_rings(w, w->poll_ns);
			/* The mailbox runs while we poll: a quit that came
			 * then, after the last queue stopped, must not be
			 * followed by a sleep that nothing will end. */
			if (w->quit && !w->running)
				break;
		}
		t0 = now_ns();
		r = hvn_loop_run(w->loop, sleep_ms);
		if (r < 0 && r != -EINTR) {
			log_err("worker %u: the loop failed: %s", w->id, strerror(-r));
			break;
		}
		if (poll_max_ns)
			adapt_window(w, now_ns() - t0);
		if (sleep_ms >= 0)
			sched_yield();
	}
	hvn_loop_free(w->loop);
	return NULL;
}

/* Why io_uring cannot run here, from the error its setup gave. */
static const char *uring_why(int err)
{
	switch (-err) {
	case EPERM:
		return "a seccomp filter or kernel.io_uring_disabled forbids it";
	case EACCES:
		return "the security policy forbids it";
	case ENOSYS:
		return "this kernel has none, or one older than Linux 5.13";
	case EOPNOTSUPP:
		return "this kernel or sandbox does not support it";
	}
	return NULL;
}

/* "Operation not permitted: a seccomp filter ... forbids it" */
static void describe(char *buf, size_t len, int err)
{
	const char *why = uring_why(err);

	snprintf(buf, len, "%s%s%s", strerror(-err), why ? ": " : "", why ? why : "");
}

/* One line for all: operators want to know which engine runs, and why. */
static void log_engines(unsigned int count)
{
	unsigned int i, on_uring = 0;
	int uring_err = 0;
	char why[160];

	for (i = 0; i < count; i++) {
		if (workers[i].engine == HVN_LOOP_URING)
			on_uring++;
		else if (workers[i].uring_err)
			uring_err = workers[i].uring_err;
	}
	if (uring_err)
		describe(why, sizeof(why), uring_err);
	else
		snprintf(why, sizeof(why), "--engine=epoll");
	if (on_uring == count)
		log_info("%u data-plane worker%s on io_uring", count, count == 1 ? "" : "s");
	else if (on_uring == 0)
		log_info("%u data-plane worker%s on epoll (%s%s)", count, count == 1 ? "" : "s",
			 uring_err ? "io_uring unavailable: " : "", why);
	else	/* io_uring came and went while the workers started */
		log_info("%u data-plane workers: %u on io_uring, %u on epoll (io_uring unavailable: %s)",
			 count, on_uring, count - on_uring, why);
}

int workers_start(unsigned int count, enum hvn_loop_engine engine, uint64_t max_poll_ns)
{
	unsigned int i;

	poll_max_ns = max_poll_ns;
	workers = calloc(count, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		struct worker *w = &workers[i];
		int r;

		w->id = i;
		w->engine = engine;
		w->tail = &w->head;
		pthread_mutex_init(&w->lock, NULL);
		pthread_mutex_init(&w->setup_lock, NULL);
		pthread_cond_init(&w->setup_cond, NULL);
		w->mailbox_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->mailbox_fd < 0)
			return -errno;
		r = pthread_create(&w->thread, NULL, worker_main, w);
		if (r)
			return -r;
		nr_workers = i + 1;
		pthread_mutex_lock(&w->setup_lock);
		while (!w->setup_done)
			pthread_cond_wait(&w->setup_cond, &w->setup_lock);
		pthread_mutex_unlock(&w->setup_lock);
		if (w->setup_result < 0) {
			char why[160];

			describe(why, sizeof(why), w->setup_result);
			if (engine == HVN_LOOP_URING && uring_why(w->setup_result))
				log_err("worker %u: --engine=uring, but io_uring cannot run: %s "
					"(--engine=auto would run on epoll)", i, why);
			else
				log_err("worker %u: cannot set up its %s loop: %s", i,
					engine == HVN_LOOP_EPOLL ? "epoll" : "data-plane", why);
			return w->setup_result;
		}
	}
	log_engines(count);
	if (poll_max_ns)
		log_info("adaptive polling: up to %llu ns after work (--poll-max-ns)",
			 (unsigned long long)poll_max_ns);
	return 0;
}

/* After every queue has stopped. */
void workers_stop(void)
{
	unsigned int i;

	for (i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];

		if (w->setup_done && w->setup_result == 0)
			post_new(w, CMD_QUIT, NULL, 0, NULL);
		pthread_join(w->thread, NULL);
		close(w->mailbox_fd);
		pthread_mutex_destroy(&w->lock);
		pthread_mutex_destroy(&w->setup_lock);
		pthread_cond_destroy(&w->setup_cond);
	}
	free(workers);
	workers = NULL;
	nr_workers = 0;
}
