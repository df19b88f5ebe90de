// SPDX-License-Identifier: MIT
/*
 * hvn-bench - a virtio-blk benchmark against any vhost-user-blk backend.
 *
 * The program is the VMM and the guest's driver at once: guest RAM is a
 * memfd shared with the backend through libhvnotify's vhost-user
 * frontend, and the driver is lib/guest's split ring with virtio-blk
 * requests on it, kicking through an eventfd and woken through another,
 * as a guest with ioeventfd and irqfd would be.  One thread drives every
 * queue, keeping --qd requests in flight on each.  In interrupt mode it
 * finds completions only when a call wakes it, and handles the call as
 * Linux's virtio-blk interrupt handler does; in poll mode it spins on the
 * used ring with interrupts off.
 *
 * What it measures, and how, is chosen so that the tool can be trusted as
 * a ruler:
 *  - the clock is read twice per pass over a queue (when completions are
 *    seen, and just before the refill is published), not per request:
 *    a request's latency runs from the publication of the avail index
 *    that carried it to the pass that reaped it;
 *  - kicks are the eventfd writes the driver's suppression rules called
 *    for; calls are counted twice: the reads of the call eventfd that
 *    woke the driver ("wake-ups", what a guest's interrupts are) and the
 *    sum of the counts those reads returned ("signals", the writes the
 *    backend made, comparable with the backend's own counters);
 *  - the backend's CPU time comes from /proc/PID/stat (all its threads);
 *    the tool's own from CLOCK_PROCESS_CPUTIME_ID and getrusage, and its
 *    "work" is the time between those two clock reads, summed: reaping,
 *    checking and refilling, without the system calls of notifications.
 *
 * --floor measures the machine instead (bench-floor.c), and --loopback
 * measures the tool itself: libhvnotify's device side completes every
 * request in the same thread, so that what is left of "work" is the
 * driver's own instructions, without a backend or a second CPU.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "config.h"
#include "../lib/guest/blk_req.h"
#include "../lib/guest/guest_mem.h"
#include "../lib/guest/vring_driver.h"
#include "bench.h"

#define PAGE			4096u
#define DEFAULT_RING		256u
#define CONNECT_WAIT_MS		5000	/* for a backend that is still starting */
#define WATCHDOG_SLACK_S	30	/* beyond --warmup + --secs */
#define LOOPBACK_BYTES		(UINT64_C(1) << 30)	/* the --loopback disk */
#define LOOPBACK_IOV		8	/* a request is 3 descriptors in one region */

enum rw { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE };
static const char *const rw_names[] = { "read", "write", "randread", "randwrite" };
enum mode { MODE_INTERRUPT, MODE_POLL };
static const char *const mode_names[] = { "interrupt", "poll" };

struct opts {
	const char *socket;
	unsigned int qd, queues, ring;
	uint32_t bs;
	enum rw rw;
	enum mode mode;
	double secs, warmup;
	bool event_idx, verify, json, floor, loopback, blocking_call;
	pid_t pid;
	int cpu, peer_cpu;
};

struct bq;

/* One request of a queue, reused for ever: its data buffer never moves. */
struct slot {
	struct bq *q;
	uint64_t data_gpa;
	uint8_t *data;
	uint64_t t_pub;		/* when the avail index that carried it was published */
	uint64_t block;		/* in units of --bs */
	uint64_t gen;		/* --verify: the pattern the last write put there */
	uint64_t seq;		/* --verify, sequential: the slot's own cursor */
	uint32_t type;
	unsigned int id;	/* among all slots of all queues */
};

struct bq {
	unsigned int index;
	struct vring_driver d;
	struct blk_queue q;
	int kick, call, err;
	bool call_blocks;	/* --blocking-call, one queue: read() is the wait */
	struct slot *slots;
	struct slot **added;	/* refilled in this pass */
	uint64_t made, done;	/* requests put in the ring, completions reaped */
	uint64_t wakeups;	/* reads of the call eventfd that the driver slept in */
	uint64_t signals;	/* the counts all reads of it returned */
	uint64_t next_block;	/* sequential cursor */
	uint64_t rng;
	uint16_t used_event_at;	/* poll mode with EVENT_IDX: where used_event points */
	/* --loopback: the device side, in this thread */
	struct hvn_vq *vq;
	struct hvn_vq_req *lb_req;
	struct iovec *lb_iov;
	struct hvn_vq_done *lb_done;
};

/* Counters at the start and at the end of the measured window. */
struct snap {
	uint64_t t;
	uint64_t done, kicks, wakeups, signals;
	struct cpu_sample self;
	struct proc_cpu backend;
	struct machine_cpu machine;
};

struct bench {
	struct opts o;
	struct hvn_vu_frontend *fe;
	struct hvn_mem *mem;		/* --loopback: the device's view of guest memory */
	struct gmem g;
	struct bq *q;
	uint64_t blocks;		/* capacity in --bs blocks */
	uint64_t features;
	uint64_t gen;			/* --verify: patterns written so far */
	bool measuring, stopping;
	uint64_t deadline;		/* next phase change */
	uint64_t busy_ns, passes;	/* measured window only */
	uint64_t len_mismatch;		/* used lengths that are not what virtio-blk says */
	uint64_t spins;
	struct snap s0, s1;
	struct hist hist;
	double clock_ns;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "hvn-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void on_watchdog(int sig)
{
	static const char msg[] = "hvn-bench: the backend stopped answering (watchdog)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(1);
}

/* ------------------------------------------------------------ options -- */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: hvn-bench --socket PATH [OPTION]...\n"
		"       hvn-bench --floor [--cpu N] [--peer-cpu N] [--secs S] [--json]\n"
		"       hvn-bench --loopback [OPTION]...\n"
		"Drive a vhost-user-blk backend as a VMM and its guest's virtio-blk driver\n"
		"would, and report IOPS, latency, notifications and CPU per request.\n"
		"\n"
		"  -s, --socket PATH   the backend's vhost-user socket\n"
		"  -q, --qd N          requests in flight per queue (default 1)\n"
		"  -b, --bs BYTES      request size, a multiple of 512; K and M suffixes\n"
		"                      (default 4K)\n"
		"  -r, --rw KIND       read, write, randread or randwrite (default read)\n"
		"  -Q, --queues N      queues, all driven by one thread (default 1)\n"
		"  -t, --secs S        measured time in seconds (default 5)\n"
		"  -w, --warmup S      unmeasured time before it (default 1)\n"
		"  -m, --mode MODE     interrupt: reap only when a call comes (sleep on the\n"
		"                      call eventfd), as a guest's interrupt handler;\n"
		"                      poll: spin on the used ring, interrupts off\n"
		"                      (default interrupt)\n"
		"  -e, --event-idx     negotiate VIRTIO_RING_F_EVENT_IDX\n"
		"  -v, --verify        write a pattern and read it back, checking every\n"
		"                      block (for a backend with real storage); --rw says\n"
		"                      only whether blocks are chosen in order or at random\n"
		"  -p, --pid PID       the backend's process, for its CPU time per request\n"
		"  -c, --cpu N         pin the benchmark to CPU N\n"
		"      --ring N        ring size, a power of two (default 256, or more for\n"
		"                      --qd above 85: three descriptors per request)\n"
		"      --blocking-call give the backend call eventfds without O_NONBLOCK (a\n"
		"                      VMM may; QEMU's are non-blocking, and hvnotifyd sets\n"
		"                      the flag), and with one queue\n"
		"                      in interrupt mode sleep in read() instead of poll()\n"
		"  -j, --json          one JSON object on stdout instead of text\n"
		"  -f, --floor         measure the machine instead: eventfd and shared-memory\n"
		"                      spin ping-pong round trips between --cpu (default 0)\n"
		"                      and --peer-cpu (default 1), --secs each (default 2)\n"
		"      --peer-cpu N    the other thread's CPU for --floor\n"
		"  -l, --loopback      measure this tool: no backend, libhvnotify's device side\n"
		"                      completes each request in this thread (poll mode)\n"
		"  -h, --help          this help\n"
		"  -V, --version       the version\n"
		"\n"
		"Exit status: 0 done, 1 failure (including a --verify mismatch or a request\n"
		"that did not complete with VIRTIO_BLK_S_OK), 2 usage.  See hvn-bench(1).\n");
}

static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hvn-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hvn-bench --help'.\n");
	exit(2);
}

static unsigned long parse_num(const char *opt, const char *s, unsigned long min,
			       unsigned long max, bool suffixes)
{
	unsigned long v, mult = 1;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (suffixes && *end) {
		switch (*end) {
		case 'k': case 'K': mult = 1024; end++; break;
		case 'm': case 'M': mult = 1024 * 1024; end++; break;
		}
	}
	if (errno || end == s || *end || s[0] == '-' || v > max / mult || v * mult < min)
		bad_usage("%s %s: a number from %lu to %lu", opt, s, min, max);
	return v * mult;
}

static double parse_secs(const char *opt, const char *s, double min)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > 86400)
		bad_usage("%s %s: seconds, at least %g", opt, s, min);
	return v;
}

static int parse_choice(const char *opt, const char *s, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	bad_usage("%s %s: not a choice here", opt, s);
}

enum { OPT_RING = 256, OPT_PEER_CPU, OPT_BLOCKING_CALL };

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "qd", required_argument, NULL, 'q' },
		{ "bs", required_argument, NULL, 'b' },
		{ "rw", required_argument, NULL, 'r' },
		{ "queues", required_argument, NULL, 'Q' },
		{ "secs", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "mode", required_argument, NULL, 'm' },
		{ "event-idx", no_argument, NULL, 'e' },
		{ "verify", no_argument, NULL, 'v' },
		{ "pid", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "ring", required_argument, NULL, OPT_RING },
		{ "json", no_argument, NULL, 'j' },
		{ "floor", no_argument, NULL, 'f' },
		{ "peer-cpu", required_argument, NULL, OPT_PEER_CPU },
		{ "loopback", no_argument, NULL, 'l' },
		{ "blocking-call", no_argument, NULL, OPT_BLOCKING_CALL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool secs_given = false, mode_given = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->qd = 1;
	o->queues = 1;
	o->bs = 4096;
	o->rw = RW_READ;
	o->mode = MODE_INTERRUPT;
	o->secs = 5;
	o->warmup = 1;
	o->cpu = -1;
	o->peer_cpu = -1;
	while ((opt = getopt_long(argc, argv, "s:q:b:r:Q:t:w:m:evp:c:jflhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o->socket = optarg; break;
		case 'q': o->qd = (unsigned int)parse_num("--qd", optarg, 1, 16384, false); break;
		case 'b': o->bs = (uint32_t)parse_num("--bs", optarg, 512, 16u << 20, true); break;
		case 'r': o->rw = (enum rw)parse_choice("--rw", optarg, rw_names, 4); break;
		case 'Q': o->queues = (unsigned int)parse_num("--queues", optarg, 1, 64, false); break;
		case 't': o->secs = parse_secs("--secs", optarg, 0.01); secs_given = true; break;
		case 'w': o->warmup = parse_secs("--warmup", optarg, 0); break;
		case 'm':
			o->mode = (enum mode)parse_choice("--mode", optarg, mode_names, 2);
			mode_given = true;
			break;
		case 'e': o->event_idx = true; break;
		case 'v': o->verify = true; break;
		case 'p': o->pid = (pid_t)parse_num("--pid", optarg, 1, 0x7fffffff, false); break;
		case 'c': o->cpu = (int)parse_num("--cpu", optarg, 0, 4095, false); break;
		case OPT_RING: o->ring = (unsigned int)parse_num("--ring", optarg, 2, 32768, false); break;
		case 'j': o->json = true; break;
		case 'f': o->floor = true; break;
		case 'l': o->loopback = true; break;
		case OPT_BLOCKING_CALL: o->blocking_call = true; break;
		case OPT_PEER_CPU:
			o->peer_cpu = (int)parse_num("--peer-cpu", optarg, 0, 4095, false);
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("hvn-bench %s\n", PACKAGE_VERSION); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (o->floor) {
		if (!secs_given)
			o->secs = 2;
		if (o->cpu < 0)
			o->cpu = 0;
		if (o->peer_cpu < 0)
			o->peer_cpu = 1;
		return;
	}
	if (o->loopback) {
		/* Nothing to sleep for: the device runs when the driver looks. */
		if (mode_given && o->mode != MODE_POLL)
			bad_usage("--loopback: poll mode only");
		o->mode = MODE_POLL;
		if (o->socket || o->verify || o->pid)
			bad_usage("--loopback: no --socket, --verify or --pid (there is no backend)");
		o->socket = "loopback";
	} else if (!o->socket) {
		bad_usage("no backend: give --socket PATH");
	}
	if (o->bs % VBLK_SECTOR_SIZE)
		bad_usage("--bs %u: not a multiple of 512", o->bs);
	if (o->ring) {
		if (o->ring & (o->ring - 1))
			bad_usage("--ring %u: not a power of two", o->ring);
		if (o->ring < 3 * o->qd)
			bad_usage("--ring %u: too small for --qd %u (3 descriptors per request)",
				  o->ring, o->qd);
	} else {
		o->ring = DEFAULT_RING;
		while (o->ring < 3 * o->qd)
			o->ring *= 2;
		if (o->ring > 32768)
			bad_usage("--qd %u: more than a ring can hold", o->qd);
	}
}

/* ------------------------------------------------------------ set-up -- */

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static int make_eventfd(bool blocking)
{
	int fd = eventfd(0, EFD_CLOEXEC | (blocking ? 0 : EFD_NONBLOCK));

	if (fd < 0)
		die("eventfd: %s", strerror(errno));
	return fd;
}

static void connect_backend(struct bench *b)
{
	uint64_t until = now_ns() + (uint64_t)CONNECT_WAIT_MS * 1000000u;
	int r;

	for (;;) {
		r = hvn_vu_frontend_connect(&b->fe, b->o.socket, NULL);
		if (r == 0)
			return;
		/* A backend that is starting has no socket yet, or does not listen yet. */
		if ((r != -ENOENT && r != -ECONNREFUSED) || now_ns() > until)
			die("%s: %s", b->o.socket, strerror(-r));
		usleep(10000);
	}
}

/* Connect and negotiate: the disk's capacity in bytes. */
static uint64_t negotiate(struct bench *b)
{
	const struct opts *o = &b->o;
	struct hvn_vu_frontend_info info;
	uint64_t capacity = 0;
	int r;

	connect_backend(b);
	r = hvn_vu_frontend_info(b->fe, &info);
	if (r < 0)
		die("info: %s", strerror(-r));
	if (!(info.features & HVN_VQ_F_VERSION_1))
		die("the backend does not offer VIRTIO_F_VERSION_1");
	b->features = HVN_VQ_F_VERSION_1 | (info.features & VBLK_F_FLUSH);
	if (o->event_idx) {
		if (!(info.features & HVN_VQ_F_EVENT_IDX))
			die("--event-idx: the backend does not offer VIRTIO_RING_F_EVENT_IDX");
		b->features |= HVN_VQ_F_EVENT_IDX;
	}
	if (o->queues > 1) {
		if (!(info.features & VBLK_F_MQ) || (info.queues && info.queues < o->queues))
			die("--queues %u: the backend offers %u queue%s", o->queues,
			    (info.features & VBLK_F_MQ) ? info.queues : 1,
			    (info.features & VBLK_F_MQ) ? "s" : " (no VIRTIO_BLK_F_MQ)");
		b->features |= VBLK_F_MQ;
	}
	r = hvn_vu_frontend_get_config(b->fe, 0, &capacity, sizeof(capacity));
	if (r < 0)
		die("GET_CONFIG (capacity): %s", strerror(-r));
	r = hvn_vu_frontend_set_features(b->fe, b->features);
	if (r < 0)
		die("SET_FEATURES %#llx: %s", (unsigned long long)b->features, strerror(-r));
	return le64toh(capacity) * VBLK_SECTOR_SIZE;
}

/* --loopback: the device side of queue q on our own view of guest memory. */
static void loopback_queue(struct bench *b, struct bq *q)
{
	struct hvn_vq_addr addr;
	unsigned int i;
	int r;

	q->lb_req = calloc(b->o.qd, sizeof(*q->lb_req));
	q->lb_iov = calloc((size_t)b->o.qd * LOOPBACK_IOV, sizeof(*q->lb_iov));
	q->lb_done = calloc(b->o.qd, sizeof(*q->lb_done));
	if (!q->lb_req || !q->lb_iov || !q->lb_done)
		die("out of memory");
	for (i = 0; i < b->o.qd; i++) {
		q->lb_req[i].iov = &q->lb_iov[i * LOOPBACK_IOV];
		q->lb_req[i].max_iov = LOOPBACK_IOV;
	}
	vrd_addr(&q->d, false, &addr);
	addr.flags = 0;
	if ((r = hvn_vq_new(b->mem, &q->vq)) < 0 || (r = hvn_vq_set_size(q->vq, b->o.ring)) < 0 ||
	    (r = hvn_vq_set_features(q->vq, b->features)) < 0 ||
	    (r = hvn_vq_set_addr(q->vq, &addr)) < 0 || (r = hvn_vq_start(q->vq)) < 0)
		die("loopback queue %u: %s", q->index, strerror(-r));
}

/*
 * --loopback: complete everything the driver made available, as a null
 * device would (status OK, nothing moved), before the driver looks.
 */
static void loopback_device(struct bench *b, struct bq *q)
{
	int n = hvn_vq_pop_batch(q->vq, q->lb_req, b->o.qd), i;

	if (n < 0)
		die("loopback queue %u: the ring broke: %s", q->index, strerror(-n));
	for (i = 0; i < n; i++) {
		const struct hvn_vq_req *r = &q->lb_req[i];
		const struct iovec *st = &r->iov[r->n_out + r->n_in - 1];

		((uint8_t *)st->iov_base)[st->iov_len - 1] = VBLK_S_OK;
		q->lb_done[i].head = r->head;
		q->lb_done[i].len = (uint32_t)r->in_len;
	}
	if (n > 0 && hvn_vq_push_batch(q->vq, q->lb_done, (unsigned int)n) < 0)
		die("loopback queue %u: push failed", q->index);
}

/* Negotiate (or not, with --loopback), share memory, start the queues. */
static void setup(struct bench *b)
{
	const struct opts *o = &b->o;
	struct hvn_mem_region region;
	uint64_t capacity, size = 0, ring_bytes, meta_bytes, data_stride;
	unsigned int i, j;
	int r;

	if (o->loopback) {
		b->features = HVN_VQ_F_VERSION_1 | (o->event_idx ? HVN_VQ_F_EVENT_IDX : 0);
		capacity = LOOPBACK_BYTES;
	} else {
		capacity = negotiate(b);
	}
	b->blocks = capacity / o->bs;
	if (b->blocks == 0)
		die("the disk (%llu bytes) is smaller than --bs %u", (unsigned long long)capacity,
		    o->bs);
	if (o->verify && b->blocks < (uint64_t)o->qd * o->queues)
		die("--verify: the disk holds %llu blocks of %u bytes, fewer than the %u requests "
		    "in flight", (unsigned long long)b->blocks, o->bs, o->qd * o->queues);

	/* Guest memory: per queue its ring, the requests' headers and status
	 * bytes, and a data buffer per request, each page-aligned. */
	ring_bytes = align_up(vrd_ring_bytes(o->ring), PAGE);
	meta_bytes = align_up(blk_meta_bytes(o->ring), PAGE);
	data_stride = align_up(o->bs, PAGE);
	size = o->queues * (ring_bytes + meta_bytes + o->qd * data_stride);
	gmem_init(&b->g);
	r = gmem_add(&b->g, 0, size, 0);
	if (r < 0)
		die("guest memory (%llu bytes): %s", (unsigned long long)size, strerror(-r));
	if (o->loopback) {
		if ((r = hvn_mem_new(&b->mem)) < 0 || (r = gmem_attach(&b->g, b->mem)) < 0)
			die("loopback memory: %s", strerror(-r));
	} else {
		gmem_region(&b->g, 0, &region);
		r = hvn_vu_frontend_set_mem_table(b->fe, &region, 1, 0);
		if (r < 0)
			die("guest memory table: %s", strerror(-r));
	}

	b->q = calloc(o->queues, sizeof(*b->q));
	if (!b->q)
		die("out of memory");
	for (i = 0; i < o->queues; i++) {
		struct bq *q = &b->q[i];
		uint64_t base = i * (ring_bytes + meta_bytes + o->qd * data_stride);
		struct hvn_vu_frontend_vring vr;

		q->index = i;
		q->rng = 0x9e3779b97f4a7c15ull * (i + 1);
		q->next_block = b->blocks / o->queues * i;
		/* One queue sleeps in read(); several need poll() first. */
		/* Non-blocking, as QEMU's event notifiers are: the flag is the
		 * open file's, so the backend's writes see it too (see
		 * --blocking-call). */
		q->call_blocks = o->blocking_call && o->mode == MODE_INTERRUPT && o->queues == 1;
		q->kick = make_eventfd(false);
		q->call = make_eventfd(o->blocking_call);
		q->err = make_eventfd(false);
		r = vrd_init(&q->d, &b->g, o->ring, base, b->features & HVN_VQ_F_EVENT_IDX);
		if (r < 0)
			die("ring %u: %s", i, strerror(-r));
		/* --loopback: the kick decision is made, but nobody is kicked. */
		r = blk_queue_init(&q->q, &q->d, base + ring_bytes, o->loopback ? -1 : q->kick,
				   q->call);
		if (r < 0)
			die("queue %u: %s", i, strerror(-r));
		q->slots = calloc(o->qd, sizeof(*q->slots));
		q->added = calloc(o->qd, sizeof(*q->added));
		if (!q->slots || !q->added)
			die("out of memory");
		for (j = 0; j < o->qd; j++) {
			struct slot *s = &q->slots[j];

			s->q = q;
			s->id = i * o->qd + j;
			s->data_gpa = base + ring_bytes + meta_bytes + j * data_stride;
			s->data = gmem_ptr(&b->g, s->data_gpa, o->bs);
		}
		if (o->loopback) {
			loopback_queue(b, q);
			continue;
		}
		memset(&vr, 0, sizeof(vr));
		vr.num = o->ring;
		vr.base = 0;
		vrd_addr(&q->d, false, &vr.addr);
		vr.kick_fd = q->kick;
		vr.call_fd = q->call;
		vr.err_fd = q->err;
		r = hvn_vu_frontend_start_queue(b->fe, i, &vr);
		if (r < 0)
			die("start queue %u: %s", i, strerror(-r));
	}
}

/* --------------------------------------------------------- requests -- */

static uint64_t rnd(struct bq *q)
{
	/* xorshift64*: cheap, and good enough to spread offsets. */
	q->rng ^= q->rng >> 12;
	q->rng ^= q->rng << 25;
	q->rng ^= q->rng >> 27;
	return q->rng * 0x2545f4914f6cdd1dull;
}

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A block's pattern names the block and the write, so that data from
 * another block, or from an older write of the same one, shows. */
static uint64_t pattern_word(uint64_t block, uint64_t gen, uint64_t i)
{
	return mix(block * 0x9e3779b97f4a7c15ull ^ mix(gen) ^ (i << 1));
}

static void fill_pattern(uint8_t *p, uint32_t len, uint64_t block, uint64_t gen)
{
	uint32_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t w = htole64(pattern_word(block, gen, i));

		memcpy(p + 8 * i, &w, 8);
	}
}

static void check_pattern(const struct bench *b, const struct slot *s)
{
	uint32_t i;

	for (i = 0; i < b->o.bs / 8; i++) {
		uint64_t want = htole64(pattern_word(s->block, s->gen, i)), got;

		memcpy(&got, s->data + 8 * i, 8);
		if (got != want)
			die("VERIFY FAILED: queue %u, block %llu (byte %llu of the disk): read back "
			    "%#018llx at byte %u of the block, wrote %#018llx (write #%llu)",
			    s->q->index, (unsigned long long)s->block,
			    (unsigned long long)(s->block * b->o.bs + 8ull * i),
			    (unsigned long long)le64toh(got), 8 * i,
			    (unsigned long long)le64toh(want), (unsigned long long)s->gen);
	}
}

/* The next request of a slot, added to its ring (not published). */
static void start(struct bench *b, struct slot *s)
{
	struct bq *q = s->q;
	const struct opts *o = &b->o;
	bool random = o->rw == RW_RANDREAD || o->rw == RW_RANDWRITE;
	struct vrd_buf buf = { s->data_gpa, o->bs };
	int r;

	if (o->verify) {
		/* Write a block, read it back, then the next block.  Each slot
		 * has its own blocks (block % slots == id), so no two requests
		 * in flight ever touch the same one. */
		uint64_t share = (uint64_t)o->qd * o->queues, per = b->blocks / share;

		if (s->type == VBLK_T_OUT && s->gen) {
			s->type = VBLK_T_IN;
			memset(s->data, 0xa5, o->bs);	/* nothing stale can pass */
		} else {
			uint64_t k = random ? rnd(q) % per : s->seq++ % per;

			s->type = VBLK_T_OUT;
			s->block = k * share + s->id;
			s->gen = ++b->gen;
			fill_pattern(s->data, o->bs, s->block, s->gen);
		}
	} else {
		s->type = (o->rw == RW_READ || o->rw == RW_RANDREAD) ? VBLK_T_IN : VBLK_T_OUT;
		if (random) {
			s->block = rnd(q) % b->blocks;
		} else {
			s->block = q->next_block++;
			if (q->next_block >= b->blocks)
				q->next_block = 0;
		}
	}
	r = blk_add(&q->q, s->type, s->block * (o->bs / VBLK_SECTOR_SIZE), &buf, 1, s, false);
	if (r < 0)
		die("queue %u: adding a request: %s", q->index, strerror(-r));
	q->made++;
}

static void complete(struct bench *b, struct slot *s, const struct blk_done *d, uint64_t t)
{
	uint32_t want_len = s->type == VBLK_T_IN ? b->o.bs + 1 : 1;

	if (d->status != VBLK_S_OK)
		die("queue %u: %s of %u bytes at block %llu: status %u%s", s->q->index,
		    s->type == VBLK_T_IN ? "read" : "write", b->o.bs,
		    (unsigned long long)s->block, d->status,
		    d->status == 0xff ? " (the backend never wrote the status byte)" : "");
	/* The used length is what the device wrote: data and status for a
	 * read, the status alone for a write.  A driver that believes a
	 * shorter read gets less data than it asked for. */
	if (d->len != want_len) {
		if (b->o.verify || (s->type == VBLK_T_IN && d->len < want_len))
			die("queue %u: %s at block %llu: used length %u, expected %u", s->q->index,
			    s->type == VBLK_T_IN ? "read" : "write", (unsigned long long)s->block,
			    d->len, want_len);
		b->len_mismatch++;
	}
	if (b->measuring)
		hist_add(&b->hist, t - s->t_pub);
	if (b->o.verify && s->type == VBLK_T_IN)
		check_pattern(b, s);
}

/* ------------------------------------------------------------- loop -- */

static uint64_t read_call(struct bq *q)
{
	uint64_t v = 0;
	ssize_t n = read(q->call, &v, sizeof(v));

	if (n == sizeof(v)) {
		q->signals += v;
		return v;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("queue %u: reading the call eventfd: %s", q->index, strerror(errno));
	return 0;
}

/* Take what is pending on the call eventfd without sleeping. */
static void drain_call(struct bq *q)
{
	struct pollfd p = { .fd = q->call, .events = POLLIN };

	if (poll(&p, 1, 0) == 1)
		read_call(q);
}

static void snapshot(struct bench *b, struct snap *s, uint64_t t)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->t = t;
	for (i = 0; i < b->o.queues; i++) {
		struct bq *q = &b->q[i];

		/* In poll mode nobody reads the call eventfd: count what the
		 * backend sent anyway.  In interrupt mode a signal taken here
		 * would be an interrupt lost: wait_interrupt() counts them. */
		if (b->o.mode == MODE_POLL)
			drain_call(q);
		s->done += q->done;
		s->kicks += q->q.kicks;
		s->wakeups += q->wakeups;
		s->signals += q->signals;
	}
	cpu_sample_self(&s->self);
	proc_cpu_sample(b->o.pid, &s->backend);
	machine_cpu_sample(&s->machine);
}

static void check_time(struct bench *b, uint64_t t)
{
	if (t < b->deadline)
		return;
	if (!b->measuring && !b->stopping) {
		snapshot(b, &b->s0, t);
		b->measuring = true;
		b->deadline = t + (uint64_t)(b->o.secs * 1e9);
	} else if (b->measuring) {
		snapshot(b, &b->s1, t);
		b->measuring = false;
		b->stopping = true;
		b->deadline = UINT64_MAX;
	}
}

/* Keep used_event half a ring of indices ahead: the backend never crosses it. */
static void park_used_event(struct bq *q)
{
	q->used_event_at = (uint16_t)(q->d.last_used + 0x8000);
	__atomic_store_n(q->d.used_event, htole16(q->used_event_at), __ATOMIC_RELAXED);
}

/*
 * Reap every completion that is there, checking each, and add a new
 * request in each freed place (not published yet): completions reaped.
 * *n counts the requests added since the last publish().
 */
static unsigned int reap(struct bench *b, struct bq *q, uint64_t t_reap, unsigned int *n)
{
	unsigned int got = 0;
	struct blk_done d;
	int r;

	while ((r = blk_reap(&q->q, &d)) == 1) {
		struct slot *s = d.token;

		got++;
		q->done++;
		complete(b, s, &d, t_reap);
		if (!b->stopping) {
			start(b, s);
			q->added[(*n)++] = s;
		}
	}
	if (r < 0)
		die("queue %u: the backend used a head that is not in flight", q->index);
	return got;
}

/* Publish the n requests added (one store of avail->idx), kick if asked. */
static void publish(struct bench *b, struct bq *q, unsigned int n, uint64_t t_reap)
{
	uint64_t t_pub = now_ns();
	unsigned int i;
	int r;

	if (n) {
		for (i = 0; i < n; i++)
			q->added[i]->t_pub = t_pub;
		r = blk_submit(&q->q);
		if (r < 0)
			die("queue %u: kick: %s", q->index, strerror(-r));
	}
	if (b->measuring) {
		b->busy_ns += t_pub - t_reap;
		b->passes++;
	}
	check_time(b, t_pub);
}

/* Poll mode: one look at q's used ring; completions seen. */
static unsigned int pass(struct bench *b, struct bq *q)
{
	unsigned int got, n = 0;
	uint64_t t_reap;

	/* Outside the work interval: only the driver's time is measured. */
	if (b->o.loopback)
		loopback_device(b, q);
	/* Look before reading the clock: most passes of a polling driver
	 * find nothing.  The acquire pairs with the backend's release of
	 * used->idx, as in vrd_get_used(). */
	if (le16toh(__atomic_load_n(&q->d.used->idx, __ATOMIC_ACQUIRE)) == q->d.last_used)
		return 0;
	t_reap = now_ns();
	got = reap(b, q, t_reap, &n);
	if (b->o.event_idx && (uint16_t)(q->d.last_used - q->used_event_at + 0x8000) >= 0x4000)
		park_used_event(q);
	publish(b, q, n, t_reap);
	return got;
}

/*
 * Interrupt mode, after a call woke the driver for q: what Linux's
 * virtblk_done() does.  Interrupts off, reap everything, interrupts on
 * again with a re-check of the ring (a completion published before the
 * request for an interrupt was visible sends none), and again while the
 * re-check finds more.  Then, as the guest's submitting side does once
 * the completions are handed back, the refill is published, with
 * interrupts on: a backend that completes it before the driver sleeps
 * again interrupts it again, as it would a guest.
 */
static void irq_handler(struct bench *b, struct bq *q)
{
	unsigned int n = 0;
	uint64_t t_reap = now_ns();

	do {
		vrd_disable_interrupts(&q->d);
		reap(b, q, t_reap, &n);
	} while (vrd_enable_interrupts(&q->d));
	publish(b, q, n, t_reap);
}

/* Interrupt mode: sleep until a call comes, then handle it. */
static void wait_interrupt(struct bench *b)
{
	struct pollfd pfd[64];
	unsigned int i, nq = b->o.queues;

	if (b->q[0].call_blocks) {
		if (read_call(&b->q[0])) {
			b->q[0].wakeups++;
			irq_handler(b, &b->q[0]);
			return;
		}
		/* Nothing, and no sleep: the backend made the eventfd
		 * non-blocking (the flag is the file's, which it shares, and
		 * hvnotifyd sets it), so wait in poll() from now on. */
		if (fcntl(b->q[0].call, F_GETFL) & O_NONBLOCK)
			b->q[0].call_blocks = false;
		return;
	}
	for (i = 0; i < nq; i++) {
		pfd[i].fd = b->q[i].call;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if (poll(pfd, nq, -1) < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	for (i = 0; i < nq; i++) {
		if ((pfd[i].revents & POLLIN) && read_call(&b->q[i])) {
			b->q[i].wakeups++;
			irq_handler(b, &b->q[i]);
		}
	}
}

static uint64_t inflight(const struct bench *b)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < b->o.queues; i++)
		n += b->q[i].made - b->q[i].done;
	return n;
}

static void run(struct bench *b)
{
	unsigned int i, j;
	uint64_t t;
	int err;

	for (i = 0; i < b->o.queues; i++) {
		struct bq *q = &b->q[i];

		/* Interrupt mode: on from the start, as a guest's driver has
		 * them whenever it is not in its handler.  Poll mode: off for
		 * good (with EVENT_IDX, used_event far ahead). */
		if (b->o.mode == MODE_POLL) {
			vrd_disable_interrupts(&q->d);
			if (b->o.event_idx)
				park_used_event(q);
		}
		/* libvhost-user signals a call fd as soon as it gets it. */
		drain_call(q);
	}
	t = now_ns();
	b->deadline = t + (uint64_t)(b->o.warmup * 1e9);
	for (i = 0; i < b->o.queues; i++) {
		struct bq *q = &b->q[i];

		for (j = 0; j < b->o.qd; j++)
			start(b, &q->slots[j]);
		t = now_ns();
		for (j = 0; j < b->o.qd; j++)
			q->slots[j].t_pub = t;
		err = blk_submit(&q->q);
		if (err < 0)
			die("queue %u: kick: %s", i, strerror(-err));
	}
	check_time(b, t);

	if (b->o.mode == MODE_INTERRUPT) {
		/* Completions are found only when a call says so. */
		while (!b->stopping || inflight(b))
			wait_interrupt(b);
		return;
	}
	for (;;) {
		unsigned int got = 0;

		for (i = 0; i < b->o.queues; i++)
			got += pass(b, &b->q[i]);
		if (got)
			continue;
		if (b->stopping && !inflight(b))
			break;
		cpu_relax();
		if (!(++b->spins & 255))
			check_time(b, now_ns());
	}
}

/* Stop every queue (GET_VRING_BASE) and check that it counted every request. */
static void teardown(struct bench *b)
{
	unsigned int i;

	for (i = 0; i < b->o.queues && !b->o.loopback; i++) {
		struct bq *q = &b->q[i];
		struct pollfd p = { .fd = q->err, .events = POLLIN };
		uint32_t base = 0;
		int r;

		if (poll(&p, 1, 0) == 1)
			die("queue %u: the backend signalled the error eventfd", i);
		r = hvn_vu_frontend_stop_queue(b->fe, i, &base);
		if (r < 0)
			die("stop queue %u: %s", i, strerror(-r));
		if (base != (uint16_t)q->made)
			die("queue %u: GET_VRING_BASE says %u, the driver made %llu requests (%u mod "
			    "65536)", i, base, (unsigned long long)q->made, (uint16_t)q->made);
		drain_call(q);
	}
	if (b->fe)
		hvn_vu_frontend_close(b->fe);
	for (i = 0; i < b->o.queues; i++) {
		struct bq *q = &b->q[i];

		close(q->kick);
		close(q->call);
		close(q->err);
		vrd_free(&q->d);
		free(q->slots);
		free(q->added);
		hvn_vq_free(q->vq);
		free(q->lb_req);
		free(q->lb_iov);
		free(q->lb_done);
	}
	hvn_mem_free(b->mem);
	gmem_free(&b->g);
}

/* ----------------------------------------------------------- report -- */

struct results {
	double secs, iops;
	uint64_t requests;
	double lat_mean_us, lat_p50_us, lat_p99_us, lat_max_us;
	double kicks, wakeups, signals;		/* per request */
	double backend_us, backend_sched_us;	/* per request; NAN: unknown */
	double self_us, self_user_us, self_sys_us, work_us;
	double per_pass, little;
	double other_cpus, steal_cpus;		/* CPUs' worth, averaged over the window */
	uint64_t total_requests, total_kicks, total_wakeups, total_signals;
};

static void compute(struct bench *b, struct results *r)
{
	const struct snap *a = &b->s0, *z = &b->s1;
	double n;
	unsigned int i;

	memset(r, 0, sizeof(*r));
	r->secs = (double)(z->t - a->t) / 1e9;
	r->requests = z->done - a->done;
	n = r->requests ? (double)r->requests : NAN;
	r->iops = (double)r->requests / r->secs;
	r->lat_mean_us = b->hist.count ? (double)b->hist.sum / (double)b->hist.count / 1e3 : NAN;
	r->lat_p50_us = (double)hist_quantile(&b->hist, 0.50) / 1e3;
	r->lat_p99_us = (double)hist_quantile(&b->hist, 0.99) / 1e3;
	r->lat_max_us = b->hist.count ? (double)b->hist.max / 1e3 : NAN;
	r->kicks = (double)(z->kicks - a->kicks) / n;
	r->wakeups = (double)(z->wakeups - a->wakeups) / n;
	r->signals = (double)(z->signals - a->signals) / n;
	r->backend_us = (a->backend.stat_ns >= 0 && z->backend.stat_ns >= 0) ?
			(double)(z->backend.stat_ns - a->backend.stat_ns) / 1e3 / n : NAN;
	r->backend_sched_us = (a->backend.sched_ns >= 0 && z->backend.sched_ns >= 0) ?
			      (double)(z->backend.sched_ns - a->backend.sched_ns) / 1e3 / n : NAN;
	r->self_us = (double)(z->self.process - a->self.process) / 1e3 / n;
	r->self_user_us = (double)(z->self.user - a->self.user) / 1e3 / n;
	r->self_sys_us = (double)(z->self.sys - a->self.sys) / 1e3 / n;
	r->work_us = (double)b->busy_ns / 1e3 / n;
	r->per_pass = b->passes ? (double)r->requests / (double)b->passes : NAN;
	/* Whatever ran besides us and the backend (with --pid; else besides
	 * us), and what the hypervisor took: the noise of this measurement. */
	if (a->machine.busy_ns >= 0 && z->machine.busy_ns >= 0) {
		double other = (double)(z->machine.busy_ns - a->machine.busy_ns) -
			       (double)(z->self.process - a->self.process);

		if (a->backend.stat_ns >= 0 && z->backend.stat_ns >= 0)
			other -= (double)(z->backend.stat_ns - a->backend.stat_ns);
		r->other_cpus = other / 1e9 / r->secs;
		r->steal_cpus = (double)(z->machine.steal_ns - a->machine.steal_ns) / 1e9 / r->secs;
	} else {
		r->other_cpus = r->steal_cpus = NAN;
	}
	/* Little's law: requests in flight = throughput x time in flight. */
	r->little = r->iops * r->lat_mean_us / 1e6 / ((double)b->o.qd * b->o.queues);
	for (i = 0; i < b->o.queues; i++) {
		r->total_requests += b->q[i].made;
		r->total_kicks += b->q[i].q.kicks;
		r->total_wakeups += b->q[i].wakeups;
		r->total_signals += b->q[i].signals;
	}
}

static void json_num(FILE *f, const char *name, double v, bool comma)
{
	if (isnan(v))
		fprintf(f, "\"%s\": null%s", name, comma ? ", " : "");
	else
		fprintf(f, "\"%s\": %.6g%s", name, v, comma ? ", " : "");
}

static void report_json(const struct bench *b, const struct results *r)
{
	const struct opts *o = &b->o;

	printf("{\"tool\": \"hvn-bench\", \"version\": \"%s\", \"socket\": ", PACKAGE_VERSION);
	json_string(stdout, o->socket);
	printf(", \"rw\": \"%s\", \"bs\": %u, \"qd\": %u, \"queues\": %u, \"ring\": %u, "
	       "\"mode\": \"%s\", \"event_idx\": %s, \"verify\": %s, \"blocking_call\": %s, "
	       "\"cpu\": %d, \"pid\": %d, \"warmup\": %g, ", rw_names[o->rw], o->bs, o->qd,
	       o->queues, o->ring, mode_names[o->mode], o->event_idx ? "true" : "false",
	       o->verify ? "true" : "false", o->blocking_call ? "true" : "false", o->cpu, (int)o->pid,
	       o->warmup);
	json_num(stdout, "secs", r->secs, true);
	printf("\"requests\": %llu, ", (unsigned long long)r->requests);
	json_num(stdout, "iops", r->iops, true);
	json_num(stdout, "lat_mean_us", r->lat_mean_us, true);
	json_num(stdout, "lat_p50_us", r->lat_p50_us, true);
	json_num(stdout, "lat_p99_us", r->lat_p99_us, true);
	json_num(stdout, "lat_max_us", r->lat_max_us, true);
	json_num(stdout, "kicks_per_req", r->kicks, true);
	json_num(stdout, "calls_per_req", r->wakeups, true);
	json_num(stdout, "signals_per_req", r->signals, true);
	json_num(stdout, "backend_cpu_us_per_req", r->backend_us, true);
	json_num(stdout, "backend_sched_us_per_req", r->backend_sched_us, true);
	json_num(stdout, "bench_cpu_us_per_req", r->self_us, true);
	json_num(stdout, "bench_user_us_per_req", r->self_user_us, true);
	json_num(stdout, "bench_sys_us_per_req", r->self_sys_us, true);
	json_num(stdout, "bench_work_us_per_req", r->work_us, true);
	json_num(stdout, "reqs_per_pass", r->per_pass, true);
	json_num(stdout, "little", r->little, true);
	json_num(stdout, "clock_ns", b->clock_ns, true);
	json_num(stdout, "other_cpus", r->other_cpus, true);
	json_num(stdout, "steal_cpus", r->steal_cpus, true);
	printf("\"used_len_mismatch\": %llu, ", (unsigned long long)b->len_mismatch);
	printf("\"totals\": {\"requests\": %llu, \"kicks\": %llu, \"calls\": %llu, "
	       "\"signals\": %llu}}\n", (unsigned long long)r->total_requests,
	       (unsigned long long)r->total_kicks, (unsigned long long)r->total_wakeups,
	       (unsigned long long)r->total_signals);
}

static void report_text(const struct bench *b, const struct results *r)
{
	const struct opts *o = &b->o;

	printf("hvn-bench %s: %s %u B, qd %u x %u queue%s, %s, event-idx %s%s, %.2f s\n",
	       o->socket, rw_names[o->rw], o->bs, o->qd, o->queues, o->queues == 1 ? "" : "s",
	       mode_names[o->mode], o->event_idx ? "on" : "off", o->verify ? ", verified" : "",
	       r->secs);
	printf("  IOPS        %.0f (%llu requests)\n", r->iops, (unsigned long long)r->requests);
	printf("  latency     mean %.2f us, p50 %.2f us, p99 %.2f us, max %.1f us\n",
	       r->lat_mean_us, r->lat_p50_us, r->lat_p99_us, r->lat_max_us);
	printf("  per request %.4f kicks, %.4f calls (wake-ups), %.4f signals; %.1f per pass\n",
	       r->kicks, r->wakeups, r->signals, r->per_pass);
	if (o->pid)
		printf("  backend CPU %.3f us/request (pid %d; schedstat %.3f)\n", r->backend_us,
		       (int)o->pid, r->backend_sched_us);
	printf("  bench CPU   %.3f us/request (user %.3f, sys %.3f; work %.3f)\n", r->self_us,
	       r->self_user_us, r->self_sys_us, r->work_us);
	printf("  check       Little's law: IOPS x mean latency / in flight = %.3f\n", r->little);
	printf("  noise       other processes %.2f CPUs, steal %.2f CPUs (10 ms ticks)\n",
	       r->other_cpus, r->steal_cpus);
	if (b->len_mismatch)
		printf("  warning     %llu writes completed with a used length other than 1\n",
		       (unsigned long long)b->len_mismatch);
}

/* ------------------------------------------------------------ floor -- */

static int floor_main(const struct opts *o)
{
	struct floor_result f;
	char why[256];
	int r;

	r = floor_measure(o->cpu, o->peer_cpu, o->secs, &f, why, sizeof(why));
	if (r < 0)
		die("--floor: %s", why);
	if (o->json) {
		printf("{\"tool\": \"hvn-bench\", \"version\": \"%s\", \"floor\": true, "
		       "\"cpu\": %d, \"peer_cpu\": %d, \"secs\": %g, ", PACKAGE_VERSION, o->cpu,
		       o->peer_cpu, o->secs);
		json_num(stdout, "eventfd_rtt_us", f.eventfd_rtt_ns / 1e3, true);
		json_num(stdout, "eventfd_rtt_p50_us", f.eventfd_p50_ns / 1e3, true);
		printf("\"eventfd_round_trips\": %llu, ", (unsigned long long)f.eventfd_iters);
		json_num(stdout, "spin_rtt_us", f.spin_rtt_ns / 1e3, true);
		json_num(stdout, "spin_rtt_p50_us", f.spin_p50_ns / 1e3, true);
		printf("\"spin_round_trips\": %llu}\n", (unsigned long long)f.spin_iters);
	} else {
		printf("floors between CPU %d and CPU %d, %g s each:\n", o->cpu, o->peer_cpu, o->secs);
		printf("  eventfd ping-pong round trip     %.3f us, median of batches %.3f us "
		       "(%llu round trips)\n", f.eventfd_rtt_ns / 1e3, f.eventfd_p50_ns / 1e3,
		       (unsigned long long)f.eventfd_iters);
		printf("  shared-memory spin round trip    %.3f us, median of batches %.3f us "
		       "(%llu round trips)\n", f.spin_rtt_ns / 1e3, f.spin_p50_ns / 1e3,
		       (unsigned long long)f.spin_iters);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	struct results r;
	int err;

	parse_args(argc, argv, &b->o);
	if (b->o.floor)
		return floor_main(&b->o);
	signal(SIGPIPE, SIG_IGN);
	if (b->o.cpu >= 0 && (err = pin_thread(b->o.cpu)) < 0)
		die("--cpu %d: %s", b->o.cpu, strerror(-err));
	b->clock_ns = clock_cost_ns();
	hist_reset(&b->hist);
	setup(b);
	/* A backend that stops answering would leave us asleep in read(). */
	signal(SIGALRM, on_watchdog);
	alarm((unsigned int)(b->o.warmup + b->o.secs) + WATCHDOG_SLACK_S);
	run(b);
	alarm(0);
	teardown(b);
	compute(b, &r);
	if (b->o.json)
		report_json(b, &r);
	else
		report_text(b, &r);
	return 0;
}
