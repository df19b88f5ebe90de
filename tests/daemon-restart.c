// SPDX-License-Identifier: MIT
/*
 * daemon-restart.c - killed mid-write, nothing lost, over the wire: the
 * test is a VMM and its guest (the frontend API, and support/blk_req on
 * support/vring_driver), and hvnotifyd serves the disk, a file.  The test
 * keeps 32 requests of 512 KiB in flight, and kills hvnotifyd with SIGKILL
 * when the inflight region (which the test keeps, as QEMU does) shows
 * requests in flight; then it starts a new hvnotifyd on the same socket and
 * image, connects again as QEMU does after a backend died (the same region
 * with SET_INFLIGHT_FD, the ring base set to the used index), and goes on.
 * Twice: once while it writes every 512 KiB slot of the disk with its own
 * pattern, once while it reads them all back.
 *
 * It checks that each request completes exactly once (the driver refuses a
 * completion for a head not in flight), with status OK and, for reads, the
 * slot's data; that the new hvnotifyd resubmits exactly the requests the
 * region says the dead one had popped and not completed (worked out here
 * from the protocol's description, not from the library), and says which;
 * that the ring's base at the end counts every request; that the image
 * file holds every slot's pattern; and that the last hvnotifyd exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "../lib/guest/blk_req.h"
#include "support/check.h"
#include "support/daemon.h"
#include "../lib/guest/guest_mem.h"
#include "../lib/guest/vring_driver.h"

#define MUST(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		exit(T_EXIT_FAIL);					\
	}								\
} while (0)

#define QSIZE		128
#define SLOT		(512u << 10)	/* bytes per request */
#define NSLOTS		96		/* the disk: 48 MiB */
#define NBUF		32		/* requests in flight at most */
#define IMG_SIZE	((uint64_t)NSLOTS * SLOT)

/* Guest memory: one region; ring, request metadata, then data buffers. */
#define RING_GPA	0x0ull
#define META_GPA	0x10000ull
#define DATA_GPA	0x100000ull
#define MEM_SIZE	(DATA_GPA + (uint64_t)NBUF * SLOT)

static char out[512], img[600], sock[600], logpath[700];
static struct hvnd daemon_;
static int incarnation;

/* ---- the daemon ---- */

static void stop_daemon(int sig)
{
	if (daemon_.pid <= 0)
		return;
	kill(daemon_.pid, sig);
	hvnd_wait(&daemon_, 10000);
}

static void cleanup(void)
{
	stop_daemon(SIGKILL);
}

static void start_daemon(void)
{
	char dev[1400];
	const char *args[] = { "-v", "--device", dev, NULL };
	int r;

	incarnation++;
	snprintf(logpath, sizeof(logpath), "%s/hvnotifyd-%d.log", out, incarnation);
	snprintf(dev, sizeof(dev), "blk,path=%s,socket=%s", img, sock);
	r = hvnd_start(&daemon_, logpath, args, 10000);
	MUST(r == 0, "hvnotifyd #%d starts (%d; see %s)", incarnation, r, logpath);
	printf("hvnotifyd #%d: pid %d, log %s\n", incarnation, (int)daemon_.pid, logpath);
}

static struct hvn_vu_frontend *connect_daemon(void)
{
	struct hvn_vu_frontend_opts opts = { .flags = HVN_VU_FRONTEND_F_INFLIGHT };
	struct hvn_vu_frontend *fe = NULL;
	int i, r = -ENOENT;

	for (i = 0; i < 1000; i++) {
		MUST(hvnd_running(&daemon_), "hvnotifyd #%d exited early (see %s)",
		     incarnation, logpath);
		r = hvn_vu_frontend_connect(&fe, sock, &opts);
		if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
			break;
		usleep(10000);
	}
	REQUIRE(r == 0, "connect to hvnotifyd #%d: %s", incarnation, strerror(-r));
	return fe;
}

/* The first line of the current daemon's log that holds what, waiting up to 5 s. */
static bool log_line(const char *what, char *line, size_t len)
{
	return hvnd_log_has(&daemon_, 0, what, line, len, 5000);
}

static unsigned int log_count(const char *what)
{
	return hvnd_log_count(&daemon_, what);
}

/* ---- the guest and its VMM ---- */

static struct gmem g;
static struct vring_driver d;
static struct blk_queue bq;
static int kick, call, err;
static struct hvn_vu_inflight inflight;
static uint8_t *region;		/* the VMM's mapping of the inflight region */
static uint64_t features;

struct buf {
	bool busy;
	uint32_t type;
	unsigned int slot;
};
static struct buf bufs[NBUF];
static unsigned int completions[2][NSLOTS];	/* per phase, per slot */
static uint32_t requests;			/* made, in all */

static uint8_t pat(uint64_t byte, unsigned int slot)
{
	return (uint8_t)(slot * 41u + byte * 7u + (byte >> 12) * 3u + 1u);
}

static void fill(uint8_t *p, unsigned int slot)
{
	uint32_t i;

	for (i = 0; i < SLOT; i++)
		p[i] = pat(i, slot);
}

static bool same(const uint8_t *p, unsigned int slot)
{
	uint32_t i;

	for (i = 0; i < SLOT; i++)
		if (p[i] != pat(i, slot))
			return false;
	return true;
}

static void setup_session(struct hvn_vu_frontend *fe, bool first)
{
	struct hvn_vu_frontend_vring vr = {
		.num = QSIZE, .kick_fd = kick, .call_fd = call, .err_fd = err,
	};
	struct hvn_vu_frontend_info info;
	struct hvn_mem_region reg;
	int r;

	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
	REQUIRE(info.protocol_features & HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD,
		"hvnotifyd #%d offers INFLIGHT_SHMFD, and it was negotiated", incarnation);
	if (first)
		features = info.features & (HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX);
	r = hvn_vu_frontend_set_features(fe, features);
	REQUIRE(r == 0, "SET_FEATURES: %d", r);
	gmem_region(&g, 0, &reg);
	r = hvn_vu_frontend_set_mem_table(fe, &reg, 1, 0);
	REQUIRE(r == 0, "guest memory: %d", r);
	if (first) {
		/* QEMU asks once, at the first start, and keeps the region. */
		r = hvn_vu_frontend_get_inflight(fe, 1, QSIZE, &inflight);
		REQUIRE(r == 0 && inflight.mmap_size >= hvn_vq_inflight_size(QSIZE),
			"GET_INFLIGHT_FD: %d, %llu bytes", r, (unsigned long long)inflight.mmap_size);
		region = mmap(NULL, inflight.mmap_size, PROT_READ, MAP_SHARED, inflight.fd,
			      (off_t)inflight.mmap_offset);
		REQUIRE(region != MAP_FAILED, "the VMM maps the region");
	}
	/* ... and hands it to every backend, before the rings. */
	r = hvn_vu_frontend_set_inflight(fe, &inflight);
	REQUIRE(r == 0, "SET_INFLIGHT_FD: %d", r);
	/* After a crash, QEMU cannot ask where the ring stopped: it starts
	 * the new backend at the used index. */
	vr.base = le16toh(__atomic_load_n(&d.used->idx, __ATOMIC_ACQUIRE));
	vrd_addr(&d, false, &vr.addr);
	vr.addr.flags = 0;
	r = hvn_vu_frontend_start_queue(fe, 0, &vr);
	REQUIRE(r == 0, "start queue 0 at base %u: %d", vr.base, r);
}

/* Region layout (vhost-user.rst): header, then 16 bytes per descriptor. */
#define R_VERSION(r)	(*(const uint16_t *)((r) + 8))
#define R_LAST_BATCH(r)	(*(const uint16_t *)((r) + 12))
#define R_USED_IDX(r)	(*(const uint16_t *)((r) + 14))
#define R_FLAG(r, i)	(*(const uint8_t *)((r) + 16 + 16 * (i)))
#define R_NEXT(r, i)	(*(const uint16_t *)((r) + 16 + 16 * (i) + 6))

static unsigned int region_flags(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < QSIZE; i++)
		n += __atomic_load_n(&R_FLAG(region, i), __ATOMIC_RELAXED);
	return n;
}

/*
 * What a backend must resubmit, from the region a dead one left, by the
 * protocol: the heads flagged, but not the last batch's if the used ring
 * moved past used_idx (published, flags not yet cleared).
 */
static unsigned int region_in_flight(void)
{
	uint16_t used = le16toh(d.used->idx), done = (uint16_t)(used - R_USED_IDX(region));
	unsigned int n = region_flags(), h = R_LAST_BATCH(region), i;

	for (i = 0; i < done; i++) {
		n -= R_FLAG(region, h);
		h = R_NEXT(region, h);
	}
	return n;
}

/* Submit what fits; returns the number of slots now submitted. */
static unsigned int submit(uint32_t type, unsigned int next)
{
	unsigned int b;

	for (b = 0; b < NBUF && next < NSLOTS; b++) {
		struct vrd_buf data = { DATA_GPA + (uint64_t)b * SLOT, SLOT };
		uint8_t *p = gmem_ptr(&g, data.gpa, SLOT);

		if (bufs[b].busy)
			continue;
		if (type == VBLK_T_OUT)
			fill(p, next);
		else
			memset(p, 0xa5, SLOT);
		MUST(blk_add(&bq, type, (uint64_t)next * SLOT / VBLK_SECTOR_SIZE, &data, 1,
			     (void *)(uintptr_t)(b + 1), false) >= 0, "add slot %u", next);
		requests++;
		bufs[b] = (struct buf){ true, type, next };
		next++;
	}
	MUST(blk_submit(&bq) >= 0, "kick");
	return next;
}

static void kill_and_restart(struct hvn_vu_frontend **fep, const char *phase)
{
	unsigned int outstanding = 0, flagged, expect, n, b;
	char line[512];
	int status;

	kill(daemon_.pid, SIGKILL);
	MUST(waitpid(daemon_.pid, &status, 0) == daemon_.pid && WIFSIGNALED(status) &&
	     WTERMSIG(status) == SIGKILL, "hvnotifyd #%d killed", incarnation);
	daemon_.pid = 0;
	/* The VMM sees its backend's socket close. */
	hvn_vu_frontend_close(*fep);
	for (b = 0; b < NBUF; b++)
		outstanding += bufs[b].busy;
	flagged = region_flags();
	expect = region_in_flight();
	printf("SIGKILL hvnotifyd #%d while %s: %u requests outstanding in the guest, %u flagged "
	       "in the region, %u of them popped and not completed; used index %u, region's %u\n",
	       incarnation, phase, outstanding, flagged, expect, le16toh(d.used->idx),
	       R_USED_IDX(region));
	CHECK(expect >= 1, "%s: the kill found requests in flight (%u)", phase, expect);

	usleep(300000);
	start_daemon();
	*fep = connect_daemon();
	setup_session(*fep, false);
	CHECK(log_line("resuming from the inflight region", line, sizeof(line)),
	      "hvnotifyd #%d resumed queue 0 from the inflight region: %.*s", incarnation,
	      (int)strcspn(line, "\n"), line);
	n = (unsigned int)atoi(strstr(line, "to resubmit") ? strrchr(line, ':') + 1 : "0");
	CHECK(n == expect, "and resubmits exactly the %u requests the region holds (%u)", expect, n);
	for (b = 0; b < 500 && log_count("resubmitted head") < n; b++)
		usleep(10000);
	CHECK(log_count(strcmp(phase, "writing") ? ": read (type 0)" : ": write (type 1)") == n,
	      "it says each is a %s", strcmp(phase, "writing") ? "read" : "write");
}

/*
 * Passes over the disk, until the daemon was killed in the middle of one
 * (a pass in which no look caught enough in flight is done again: writing
 * the same data or reading it again changes nothing).
 */
static void run_phase(struct hvn_vu_frontend **fep, uint32_t type, const char *name)
{
	unsigned int next = 0, done = 0, target = 8, phase = type == VBLK_T_IN, idle = 0;
	unsigned int bad_status = 0, looks = 0, seed = (unsigned int)getpid() + phase;
	unsigned int passes = 0, total = 0;
	bool killed = false;

again:
	passes++;
	next = done = 0;
	while (done < NSLOTS) {
		struct blk_done dn;
		int r;

		next = submit(type, next);
		/*
		 * Kill in the middle of the pass, with requests in flight:
		 * several, or any at all late in it.  Stopped (SIGSTOP), the
		 * daemon's region holds still and says exactly what it has
		 * in flight (reads from the page cache take it a millisecond
		 * or two for a batch, too short to catch by watching); if too
		 * little, it goes on (SIGCONT) and is looked at again a random
		 * moment later, until the batch just kicked is done.
		 */
		while (!killed && done >= NSLOTS / 4) {
			int status;

			if (done >= NSLOTS / 2)
				target = 1;
			usleep(rand_r(&seed) % 300);
			kill(daemon_.pid, SIGSTOP);
			MUST(waitpid(daemon_.pid, &status, WUNTRACED) == daemon_.pid && WIFSTOPPED(status),
			     "hvnotifyd #%d stopped", incarnation);
			looks++;
			if (region_flags() >= target) {
				printf("%s: %u look(s) at the stopped hvnotifyd #%d\n", name, looks,
				       incarnation);
				kill_and_restart(fep, name);
				killed = true;
				break;
			}
			kill(daemon_.pid, SIGCONT);
			if (le16toh(__atomic_load_n(&d.used->idx, __ATOMIC_ACQUIRE)) == d.avail_idx)
				break;	/* all done: look again after the next kick */
		}
		r = blk_wait(&bq, &dn, 2);
		if (r == -ETIMEDOUT) {
			MUST(++idle < 5000, "%s: no completion for 10 s (%u of %u done)", name, done,
			     NSLOTS);
			continue;
		}
		idle = 0;
		/* Every completion there is, so that the next submission
		 * refills every buffer and the daemon has a batch to do. */
		for (; r == 1; r = blk_reap(&bq, &dn)) {
			unsigned int b = (unsigned int)(uintptr_t)dn.token - 1;
			struct buf *x = &bufs[b];

			MUST(b < NBUF && x->busy && x->type == type, "%s: token %u", name, b);
			if (dn.status != VBLK_S_OK)
				printf("%s slot %u: status %u\n", name, x->slot, dn.status);
			bad_status += dn.status != VBLK_S_OK;
			if (type == VBLK_T_IN)
				MUST(same(gmem_ptr(&g, DATA_GPA + (uint64_t)b * SLOT, SLOT), x->slot),
				     "read slot %u: its pattern", x->slot);
			completions[phase][x->slot]++;
			x->busy = false;
			done++;
			total++;
		}
		/* -EIO: the used ring names a head that is not in flight. */
		MUST(r == 0, "%s: a completion for a request not in flight (%d)", name, r);
	}
	if (!killed) {
		MUST(passes < 20, "%s: in %u passes no look at the daemon found a request in "
		     "flight", name, passes);
		goto again;
	}
	for (next = 0, done = 0; next < NSLOTS; next++)
		done += completions[phase][next] == passes;
	CHECK(done == NSLOTS && total == passes * NSLOTS,
	      "%s: in %u pass(es), each slot's request completed exactly once per pass "
	      "(%u of %u slots, %u completions)", name, passes, done, NSLOTS, total);
	CHECK(bad_status == 0, "%s: every request with status OK%s", name,
	      type == VBLK_T_IN ? ", and every read with its slot's pattern" : "");
}

static bool image_ok(void)
{
	uint8_t *buf = malloc(SLOT);
	int fd = open(img, O_RDONLY | O_CLOEXEC);
	unsigned int s;
	bool ok = buf && fd >= 0;

	for (s = 0; ok && s < NSLOTS; s++)
		ok = pread(fd, buf, SLOT, (off_t)s * SLOT) == SLOT && same(buf, s);
	if (fd >= 0)
		close(fd);
	free(buf);
	return ok;
}

int main(void)
{
	const char *build = getenv("top_builddir");
	struct hvn_vu_frontend *fe;
	uint32_t base = 0;
	int fd, status;

	snprintf(out, sizeof(out), "%s/tests/daemon-restart.out", build ? build : ".");
	snprintf(img, sizeof(img), "%s/disk.img", out);
	REQUIRE(hvnd_binary() && access(hvnd_binary(), X_OK) == 0, "hvnotifyd is built");
	mkdir(out, 0755);
	snprintf(sock, sizeof(sock), "%s/blk.sock", out);
	if (strlen(sock) > 100)		/* sun_path holds 108 bytes */
		snprintf(sock, sizeof(sock), "/tmp/hvn-restart-%d.sock", (int)getpid());
	unlink(sock);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0 && ftruncate(fd, (off_t)IMG_SIZE) == 0, "image %s", img);
	close(fd);
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);

	gmem_init(&g);
	REQUIRE(gmem_add(&g, 0, MEM_SIZE, 0) >= 0, "guest memory");
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	REQUIRE(kick >= 0 && call >= 0 && err >= 0, "eventfds");

	start_daemon();
	fe = connect_daemon();
	{
		struct hvn_vu_frontend_info info;

		REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
		REQUIRE(vrd_init(&d, &g, QSIZE, RING_GPA, info.features & HVN_VQ_F_EVENT_IDX) == 0,
			"ring");
	}
	REQUIRE(blk_queue_init(&bq, &d, META_GPA, kick, call) == 0, "blk queue");
	setup_session(fe, true);

	run_phase(&fe, VBLK_T_OUT, "writing");
	run_phase(&fe, VBLK_T_IN, "reading");

	REQUIRE(hvn_vu_frontend_stop_queue(fe, 0, &base) == 0, "GET_VRING_BASE");
	CHECK(base == requests, "the ring stopped at %u: every request popped once (%u)",
	      requests, base);
	CHECK(image_ok(), "the image holds every slot's pattern");
	hvn_vu_frontend_close(fe);
	kill(daemon_.pid, SIGTERM);
	CHECK(waitpid(daemon_.pid, &status, 0) == daemon_.pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0,
	      "hvnotifyd #%d exits 0 on SIGTERM, every descriptor closed", incarnation);
	daemon_.pid = 0;
	munmap(region, inflight.mmap_size);
	close(inflight.fd);
	if (!t_failures) {
		unlink(img);
		unlink(sock);
	}
	return t_done("daemon-restart");
}
