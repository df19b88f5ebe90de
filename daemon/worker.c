// SPDX-License-Identifier: MIT
/*
 * worker.c - the data plane: threads that each run one io_uring loop and
 * the queues given to them.
 *
 * The control thread never touches a running queue.  It posts commands
 * (start, stop, print statistics, quit) to the worker's mailbox: a list
 * under a mutex and an eventfd the worker's loop polls.  Queue objects are
 * created and freed in the worker; the control thread learns that a queue
 * stopped through control_queue_stopped(), which it receives in its own
 * thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hvnotifyd.h"

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
	pthread_t thread;
	struct hvn_loop *loop;
	int mailbox_fd;
	struct hvn_loop_op mailbox_op;
	pthread_mutex_t lock;
	struct cmd *head, **tail;	/* FIFO: a stop never overtakes its start */
	struct running *running;
	bool quit;
	int setup_result;		/* hvn_loop_new()'s answer, for workers_start() */
	pthread_mutex_t setup_lock;
	pthread_cond_t setup_cond;
	bool setup_done;
};

static struct worker *workers;
static unsigned int nr_workers;

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
			/* They go to the device first, inside hvn_dev_queue_start(). */
			if (c->cfg.ops == &blk_ops)
				blk_log_next(c->cfg.dev, c->idx, st.resubmit);
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
		c->cfg.arg = r;
		err = hvn_dev_queue_start(w->loop, &c->cfg, &r->q);
		/* Every resubmitted request went to the device in there. */
		if (c->cfg.ops == &blk_ops)
			blk_log_next(c->cfg.dev, c->idx, 0);
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

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int r;

	/* The ring is made here: a single-issuer ring belongs to the thread
	 * that creates it. */
	r = hvn_loop_new(1024, &w->loop);
	if (r == 0) {
		w->mailbox_op.cb = on_mailbox;
		r = hvn_loop_poll(w->loop, &w->mailbox_op, w->mailbox_fd, POLLIN, 1);
	}
	setup_done(w, r);
	if (r < 0)
		return NULL;
	while (!w->quit || w->running) {
		r = hvn_loop_run(w->loop, -1);
		if (r < 0 && r != -EINTR) {
			log_err("worker %u: io_uring: %s", w->id, strerror(-r));
			break;
		}
	}
	hvn_loop_free(w->loop);
	return NULL;
}

int workers_start(unsigned int count)
{
	unsigned int i;

	workers = calloc(count, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		struct worker *w = &workers[i];
		int r;

		w->id = i;
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
			log_err("worker %u: cannot set up io_uring: %s", i, strerror(-w->setup_result));
			return w->setup_result;
		}
	}
	log_info("%u data-plane worker%s on io_uring", count, count == 1 ? "" : "s");
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
