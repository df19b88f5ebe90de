// SPDX-License-Identifier: MIT
/*
 * daemon-frontend.c - hvnotifyd, the real daemon, over its real sockets.
 *
 * The test starts daemon/hvnotifyd with three devices and two data-plane
 * workers, its stderr in a log file, and is the VMM and the guest of each
 * device in turn (support/blk_guest: memfd guest RAM, the guest's
 * virtio-blk driver, libhvnotify's vhost-user frontend):
 *
 *   blk0  a 16 MiB image file, 2 queues: the offered features and config
 *         space, every request type on both queues (direct, chained and
 *         indirect buffers, errors with their exact status), the write
 *         cache switched off and on, a queue stopped (GET_VRING_BASE) and
 *         restarted, the image checked on the host; a second frontend
 *         refused while the first is connected, and served after it left;
 *         a hostile request that breaks one queue (the error eventfd, no
 *         completion, the log) while the daemon serves everything else;
 *   blk1  a read-only image: RO offered, writes refused, the file unchanged;
 *   blk2  null, 64 MiB: reads and writes complete.
 *
 * Then SIGUSR1 (statistics with exact request counts) and SIGTERM with a
 * frontend still connected: the daemon exits 0, its log ends with the
 * per-device totals, and it closed every descriptor it opened.  The log
 * is printed at the end.
 *
 * A watchdog kills the daemon and fails the test if anything hangs; every
 * wait has a deadline.  Where io_uring is missing or forbidden the daemon
 * runs on epoll, and so does this test (tests/daemon-frontend-nouring.sh).
 * The temporary directory is under $TMPDIR (or /tmp).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "support/blk_guest.h"
#include "support/daemon.h"
#include "support/check.h"

#define IMG0_SIZE	(16u << 20)
#define IMG1_SIZE	(1u << 20)
#define NULL_SIZE	(64u << 20)
#define IMG1_SEED	9		/* the read-only image's pattern */
#define WATCHDOG_S	150
#define LOG_WAIT_MS	5000

/* Guest memory: one memfd region, a 256 KiB area per queue the test makes. */
#define MEM_SIZE	0x800000ull
#define AREA_SIZE	0x40000ull
#define AREAS		(MEM_SIZE / AREA_SIZE)
/* In an area: the rings, headers and status bytes, indirect tables, data. */
#define A_META		0x01000ull
#define A_IND		0x02000ull	/* GQ_IND_BYTES */
#define A_SCRATCH	0x08000ull	/* discard segments, hostile headers */
#define A_WR		0x10000ull	/* 96 KiB to write from */
#define A_RD		0x28000ull	/* 96 KiB to read into */

_Static_assert(A_IND + GQ_IND_BYTES <= A_SCRATCH && A_RD + 0x18000 <= AREA_SIZE,
	       "a queue's area holds its parts");

#define WR(q)		((q)->d.desc_gpa + A_WR)
#define RD(q)		((q)->d.desc_gpa + A_RD)
#define SCRATCH(q)	((q)->d.desc_gpa + A_SCRATCH)

/* What each device offers (the frontend reads them at connect). */
#define RING_F		(HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC | \
			 HVN_VU_F_PROTOCOL_FEATURES)
#define BLK_F		(VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE | VBLK_F_FLUSH | VBLK_F_CONFIG_WCE)
#define BLK0_F		(RING_F | BLK_F | VBLK_F_MQ | VBLK_F_DISCARD | VBLK_F_WRITE_ZEROES)
#define BLK1_F		(RING_F | BLK_F | VBLK_F_RO)
#define BLK2_F		(RING_F | BLK_F | VBLK_F_DISCARD | VBLK_F_WRITE_ZEROES)
#define PROTOCOL_F	(HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK | \
			 HVN_VU_PROTOCOL_F_CONFIG | HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS | \
			 HVN_VU_PROTOCOL_F_RESET_DEVICE)

#define VBLK_WZ_F_UNMAP	1u	/* VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP */

static char dir[256], img0[300], img1[300], logpath[300], sock[3][300];
static struct hvnd daemon_;
static bool log_printed;
static struct gmem g;
static unsigned int next_area;
/* Requests made on each device, all connections: the daemon's totals. */
static unsigned long requests[3];

/* ---- the daemon and its log ---- */

static void print_log(void)
{
	char line[1024];
	FILE *f;

	if (log_printed || !logpath[0] || !(f = fopen(logpath, "r")))
		return;
	log_printed = true;
	printf("-- the daemon's log (%s) --\n", logpath);
	while (fgets(line, sizeof(line), f))
		fputs(line, stdout);
	fclose(f);
	printf("-- end of the daemon's log --\n");
}

static void remove_files(void)
{
	unsigned int i;

	for (i = 0; i < 3; i++)
		unlink(sock[i]);
	unlink(img0);
	unlink(img1);
	unlink(logpath);
	rmdir(dir);
}

static void cleanup(void)
{
	/* SIGTERM first: the log then says what the daemon was doing. */
	if (daemon_.pid > 0)
		hvnd_stop(&daemon_, 3000);
	if (!dir[0])
		return;
	print_log();
	remove_files();
}

/* Something hangs: kill the daemon, say so, show its log and go
 * (async-signal-safe calls only). */
static void on_watchdog(int sig)
{
	static const char msg[] = "FAIL watchdog: the test ran too long; daemon killed; its log:\n";
	char buf[4096];
	ssize_t n;
	int fd;

	(void)sig;
	if (daemon_.pid > 0)
		kill(daemon_.pid, SIGKILL);
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(T_EXIT_FAIL);
	fd = open(logpath, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			break;
	remove_files();
	_exit(T_EXIT_FAIL);
}

static char *log_text(void)
{
	return hvnd_log_text(&daemon_);
}

static bool log_has(const char *what)
{
	return hvnd_log_count(&daemon_, what) > 0;
}

/* The daemon writes its log asynchronously to what we do: wait for a line. */
static bool log_wait(const char *what, int timeout_ms)
{
	return hvnd_log_wait(&daemon_, what, 1, timeout_ms);
}

static void start_daemon(void)
{
	char d0[700], d1[700], d2[700];
	const char *args[] = { "-v", "--workers", "2", "--device", d0, "--device", d1,
			       "--device", d2, NULL };
	int i, r;

	REQUIRE(hvnd_binary(), "top_builddir is set (run from make check)");
	snprintf(d0, sizeof(d0), "blk,path=%s,socket=%s,queues=2", img0, sock[0]);
	snprintf(d1, sizeof(d1), "blk,path=%s,socket=%s,readonly", img1, sock[1]);
	snprintf(d2, sizeof(d2), "blk,null,size=64M,socket=%s", sock[2]);
	/* Its sockets exist once it says it is ready. */
	r = hvnd_start(&daemon_, logpath, args, 10000);
	REQUIRE(r == 0, "hvnotifyd (%s) says it is ready (%d), log in %s", hvnd_binary(), r, logpath);
	printf("started %s (pid %d)\n", hvnd_binary(), (int)daemon_.pid);
	/* tests/daemon-frontend-nouring.sh runs us with io_uring forbidden:
	 * the daemon must then say it runs on epoll, and why. */
	if (getenv("HVN_EXPECT_EPOLL"))
		CHECK(log_has("hvnotifyd: 2 data-plane workers on epoll (io_uring unavailable: "),
		      "2 workers on epoll, io_uring being forbidden");
	else
		CHECK(log_has("hvnotifyd: 2 data-plane workers on io_uring"), "2 workers on io_uring");
	for (i = 0; i < 3; i++) {
		struct stat st;

		CHECK(lstat(sock[i], &st) == 0 && S_ISSOCK(st.st_mode) &&
		      (st.st_mode & 0777) == 0600, "blk%d listens on %s, mode %03o", i, sock[i],
		      (unsigned int)(st.st_mode & 0777));
	}
}

static struct hvn_vu_frontend *connect_dev(unsigned int dev)
{
	struct hvn_vu_frontend *fe;
	int r = vu_connect_retry(&fe, sock[dev], NULL, daemon_.pid, 5000);

	REQUIRE(r == 0, "blk%u: connected: %s", dev, strerror(-r));
	return fe;
}

/* ---- the guest ---- */

/* A queue in a fresh area of guest memory, with an indirect area. */
static void q_init(struct gq *q, unsigned int index, uint64_t features)
{
	uint64_t a = AREA_SIZE * next_area++;

	MUST(next_area <= AREAS, "guest memory for %u queues", next_area);
	gq_init(q, &g, index, a, a + A_META, a + A_IND, features);
}

/* The connection is done with the queue: count its requests for the totals. */
static void q_free(struct gq *q, unsigned int dev)
{
	requests[dev] += q->made;
	gq_free(q);
}

static void setup(struct hvn_vu_frontend *fe, unsigned int dev, uint64_t features)
{
	struct hvn_mem_region reg;
	int r;

	r = hvn_vu_frontend_set_features(fe, features);
	REQUIRE(r == 0, "blk%u: SET_FEATURES %#llx: %d", dev, (unsigned long long)features, r);
	gmem_region(&g, 0, &reg);
	r = hvn_vu_frontend_set_mem_table(fe, &reg, 1, 0);
	REQUIRE(r == 0, "blk%u: guest memory shared (ADD_MEM_REG): %d", dev, r);
}

static void write_read(struct gq *q, uint64_t sector, uint32_t len, unsigned int seed,
		       unsigned int segs, bool indirect)
{
	CHECK(gq_write_read(q, sector, WR(q), RD(q), len, seed, segs, indirect),
	      "q%u: %u bytes at sector %llu in %u %s buffer%s written and read back: %s",
	      q->index, len, (unsigned long long)sector, segs, indirect ? "indirect" : "direct",
	      segs == 1 ? "" : "s", q->why);
}

static void stop(struct hvn_vu_frontend *fe, struct gq *q)
{
	CHECK(gq_stop(fe, q), "q%u stopped: %s", q->index, q->why);
}

static bool all_zero(const uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* DISCARD or WRITE_ZEROES of one segment: its status byte. */
static int dwz(struct gq *q, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags,
	       uint32_t *used)
{
	struct {
		uint64_t sector;
		uint32_t num_sectors;
		uint32_t flags;
	} *seg = gmem_ptr(&g, SCRATCH(q), 16);

	seg->sector = htole64(sector);
	seg->num_sectors = htole32(num);
	seg->flags = htole32(flags);
	return gq_do(q, type, 0, SCRATCH(q), 16, used);
}

/* Read len bytes at sector: are they zeroes? */
static bool reads_zero(struct gq *q, uint64_t sector, uint32_t len)
{
	uint8_t *p = gmem_ptr(&g, RD(q), len);
	uint32_t used = 0;
	int st;

	memset(p, 0xa5, len);
	st = gq_do(q, VBLK_T_IN, sector, RD(q), len, &used);
	return st == VBLK_S_OK && used == len + 1 && all_zero(p, len);
}

static void check_get_id(struct gq *q, const char *want)
{
	char id[VBLK_ID_BYTES], expect[VBLK_ID_BYTES];
	uint8_t *p = gmem_ptr(&g, RD(q), VBLK_ID_BYTES);
	uint32_t used = 0;
	int st;

	memset(p, 0xa5, VBLK_ID_BYTES);
	st = gq_do(q, VBLK_T_GET_ID, 0, RD(q), VBLK_ID_BYTES, &used);
	memcpy(id, p, sizeof(id));
	memset(expect, 0, sizeof(expect));
	memcpy(expect, want, strlen(want));
	CHECK(st == VBLK_S_OK && used == VBLK_ID_BYTES + 1 && !memcmp(id, expect, sizeof(id)),
	      "q%u: GET_ID: status %d, used %u, \"%.20s\" NUL-padded to 20 bytes", q->index, st,
	      used, id);
}

/* A request that must fail: its exact status and used length (the status byte). */
static void expect_status(struct gq *q, const char *what, int st, uint32_t used, int want)
{
	CHECK(st == want && used == 1, "q%u: %s: status %d (want %d), used %u", q->index, what, st,
	      want, used);
}

/* ---- 2. blk0, one frontend, both queues ---- */

static void check_blk0_offer(struct hvn_vu_frontend *fe)
{
	struct hvn_vu_frontend_info info;
	struct vblk_config cfg;
	int r;

	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "blk0: info");
	CHECK(info.features == BLK0_F, "blk0 offers VERSION_1 EVENT_IDX INDIRECT_DESC FLUSH MQ "
	      "DISCARD WRITE_ZEROES CONFIG_WCE SEG_MAX BLK_SIZE PROTOCOL_FEATURES: %#llx (want %#llx)",
	      (unsigned long long)info.features, (unsigned long long)BLK0_F);
	/* INFLIGHT_SHMFD is offered for a disk, but this frontend does not ask
	 * for it (hvn_vu_frontend_connect negotiates it only when told to). */
	CHECK(info.protocol_offered == (PROTOCOL_F | HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD) &&
	      info.protocol_features == PROTOCOL_F,
	      "protocol features MQ REPLY_ACK CONFIG CONFIGURE_MEM_SLOTS RESET_DEVICE and "
	      "INFLIGHT_SHMFD offered (%#llx); all but INFLIGHT_SHMFD negotiated (%#llx)",
	      (unsigned long long)info.protocol_offered, (unsigned long long)info.protocol_features);
	CHECK(info.queues == 2, "GET_QUEUE_NUM: %u", info.queues);
	CHECK(info.max_mem_regions == HVN_MEM_MAX_REGIONS, "GET_MAX_MEM_SLOTS: %u (what a region "
	      "table holds)", info.max_mem_regions);

	memset(&cfg, 0xee, sizeof(cfg));
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	REQUIRE(r == 0, "GET_CONFIG of %zu bytes: %d", sizeof(cfg), r);
	CHECK(le64toh(cfg.capacity) == IMG0_SIZE / 512, "config capacity %llu = image size / 512",
	      (unsigned long long)le64toh(cfg.capacity));
	CHECK(le16toh(cfg.num_queues) == 2, "config num_queues %u", le16toh(cfg.num_queues));
	CHECK(le32toh(cfg.seg_max) == 126, "config seg_max %u", le32toh(cfg.seg_max));
	CHECK(le32toh(cfg.blk_size) == 512, "config blk_size %u", le32toh(cfg.blk_size));
	CHECK(cfg.writeback == 1, "config writeback %u: the cache starts in writeback",
	      cfg.writeback);
	CHECK(le32toh(cfg.max_discard_sectors) == 1u << 22 && le32toh(cfg.max_discard_seg) == 1 &&
	      le32toh(cfg.discard_sector_alignment) == 1 &&
	      le32toh(cfg.max_write_zeroes_sectors) == 1u << 22 &&
	      le32toh(cfg.max_write_zeroes_seg) == 1 && cfg.write_zeroes_may_unmap == 1,
	      "config discard: %u sectors, %u seg, alignment %u; write zeroes: %u sectors, %u seg, "
	      "may unmap %u", le32toh(cfg.max_discard_sectors), le32toh(cfg.max_discard_seg),
	      le32toh(cfg.discard_sector_alignment), le32toh(cfg.max_write_zeroes_sectors),
	      le32toh(cfg.max_write_zeroes_seg), cfg.write_zeroes_may_unmap);
}

/*
 * Every request type on one queue of blk0, from sector s on (s .. s + 256
 * is this queue's).  Leaves pattern seed at [s, s + 8) in 4 KiB, seed + 1
 * at [s + 16, s + 40), seed + 2 at [s + 48, s + 64), and zeroes at
 * [s + 64, s + 160).
 */
static void blk0_requests(struct gq *q, uint64_t s, unsigned int seed)
{
	const uint64_t cap = IMG0_SIZE / 512;
	uint32_t used = 0;
	int st;

	write_read(q, s, 0x1000, seed, 1, false);
	write_read(q, s + 16, 0x3000, seed + 1, 5, false);
	write_read(q, s + 48, 0x2000, seed + 2, 4, true);
	st = gq_do(q, VBLK_T_FLUSH, 0, 0, 0, &used);
	CHECK(st == VBLK_S_OK && used == 1, "q%u: FLUSH: status %d, used %u", q->index, st, used);
	check_get_id(q, "disk0.img");

	/* Data first, so that zeroes read back are the request's doing. */
	write_read(q, s + 64, 0x4000, seed + 3, 1, false);
	st = dwz(q, VBLK_T_DISCARD, s + 64, 32, 0, &used);
	CHECK(st == VBLK_S_OK && used == 1, "q%u: DISCARD of 32 sectors: status %d, used %u",
	      q->index, st, used);
	CHECK(reads_zero(q, s + 64, 0x4000), "q%u: the discarded sectors read back as zeroes",
	      q->index);
	write_read(q, s + 96, 0x4000, seed + 4, 1, false);
	st = dwz(q, VBLK_T_WRITE_ZEROES, s + 96, 32, 0, &used);
	CHECK(st == VBLK_S_OK && used == 1, "q%u: WRITE_ZEROES of 32 sectors: status %d, used %u",
	      q->index, st, used);
	CHECK(reads_zero(q, s + 96, 0x4000), "q%u: the zeroed sectors read back as zeroes",
	      q->index);
	write_read(q, s + 128, 0x4000, seed + 5, 1, false);
	st = dwz(q, VBLK_T_WRITE_ZEROES, s + 128, 32, VBLK_WZ_F_UNMAP, &used);
	CHECK(st == VBLK_S_OK && used == 1, "q%u: WRITE_ZEROES with UNMAP: status %d, used %u",
	      q->index, st, used);
	CHECK(reads_zero(q, s + 128, 0x4000), "q%u: and they read back as zeroes", q->index);

	st = gq_do(q, VBLK_T_IN, cap, RD(q), 512, &used);
	expect_status(q, "IN of the sector after the last", st, used, VBLK_S_IOERR);
	st = gq_do(q, VBLK_T_IN, cap - 1, RD(q), 1024, &used);
	expect_status(q, "IN across the end of the disk", st, used, VBLK_S_IOERR);
	pat_fill(&g, WR(q), 512, seed, cap * 512);
	st = gq_do(q, VBLK_T_OUT, cap, WR(q), 512, &used);
	expect_status(q, "OUT past the end of the disk", st, used, VBLK_S_IOERR);
	st = dwz(q, VBLK_T_DISCARD, cap - 8, 16, 0, &used);
	expect_status(q, "DISCARD across the end of the disk", st, used, VBLK_S_IOERR);
	st = gq_do(q, VBLK_T_IN, s, RD(q), 100, &used);
	expect_status(q, "IN of 100 bytes (not whole sectors)", st, used, VBLK_S_IOERR);
	st = gq_do(q, VBLK_T_OUT, s, WR(q), 1000, &used);
	expect_status(q, "OUT of 1000 bytes (not whole sectors)", st, used, VBLK_S_IOERR);
	st = gq_do(q, 99, s, 0, 0, &used);
	expect_status(q, "type 99 (unknown)", st, used, VBLK_S_UNSUPP);
	st = dwz(q, VBLK_T_DISCARD, s + 64, 8, VBLK_WZ_F_UNMAP, &used);
	expect_status(q, "DISCARD with a flag only WRITE_ZEROES has", st, used, VBLK_S_UNSUPP);
}

/* What blk0_requests() left on the disk, as the host sees the image file. */
static bool blk0_image_holds(uint64_t s, unsigned int seed)
{
	return file_has(img0, s * 512, 0x1000, seed) &&
	       file_has(img0, (s + 16) * 512, 0x3000, seed + 1) &&
	       file_has(img0, (s + 48) * 512, 0x2000, seed + 2) &&
	       file_zero(img0, (s + 64) * 512, 96 * 512);
}

static void set_writeback(struct hvn_vu_frontend *fe, uint8_t wce)
{
	struct vblk_config cfg;
	int r;

	r = hvn_vu_frontend_set_config(fe, VBLK_CONFIG_WRITEBACK, &wce, 1);
	CHECK(r == 0, "SET_CONFIG writeback=%u: %d", wce, r);
	memset(&cfg, 0xee, sizeof(cfg));
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	CHECK(r == 0 && cfg.writeback == wce, "GET_CONFIG: writeback %u", cfg.writeback);
}

/* Returns the first frontend, still connected, with queue 1 still running. */
static struct hvn_vu_frontend *test_blk0(struct gq *q0, struct gq *q1)
{
	struct hvn_vu_frontend *fe;
	uint32_t used = 0;
	int r;

	printf("-- blk0: a file, 2 queues --\n");
	fe = connect_dev(0);
	check_blk0_offer(fe);
	setup(fe, 0, BLK0_F & ~HVN_VU_F_PROTOCOL_FEATURES);
	q_init(q0, 0, BLK0_F);
	q_init(q1, 1, BLK0_F);
	gq_start(fe, q0);
	gq_start(fe, q1);

	blk0_requests(q0, 0, 10);
	blk0_requests(q1, 4096, 20);
	CHECK(blk0_image_holds(0, 10) && blk0_image_holds(4096, 20),
	      "the image file holds what both queues wrote, and zeroes where they discarded");

	/* 8 writes in flight at once (direct, split, indirect), one kick. */
	r = gq_write_batch(q0, 1024, WR(q0), 8, 0x2000, 30);
	CHECK(r == 8, "q0: 8 writes in flight completed OK (%d)", r);
	CHECK(file_has(img0, 1024 * 512, 8 * 0x2000, 30), "the image file holds the 8 writes");

	/* 3 MiB of zeroes over data at both ends (where the file system cannot
	 * zero a range, the daemon writes them, a MiB at a time). */
	write_read(q0, 10000, 0x1000, 35, 1, false);
	write_read(q0, 16136, 0x1000, 36, 1, false);
	r = dwz(q0, VBLK_T_WRITE_ZEROES, 10000, 6144, 0, &used);
	CHECK(r == VBLK_S_OK && used == 1, "q0: WRITE_ZEROES of 3 MiB: status %d, used %u", r, used);
	CHECK(file_zero(img0, 10000 * 512, 6144 * 512), "the image file holds 3 MiB of zeroes there");

	/* Writethrough: every write is synced before it completes. */
	set_writeback(fe, 0);
	write_read(q0, 2048, 0x2000, 31, 2, false);
	write_read(q1, 6144, 0x2000, 32, 3, true);
	set_writeback(fe, 1);
	CHECK(file_has(img0, 2048 * 512, 0x2000, 31) && file_has(img0, 6144 * 512, 0x2000, 32),
	      "the image holds the writethrough writes");

	/* QEMU's vhost_dev_stop and start: from where the daemon stopped, new eventfds. */
	stop(fe, q0);
	gq_start(fe, q0);
	write_read(q0, 3072, 0x8000, 33, 8, true);
	write_read(q0, 3200, 0x10000, 34, 1, false);
	CHECK(file_has(img0, 3072 * 512, 0x8000, 33) && file_has(img0, 3200 * 512, 0x10000, 34),
	      "the image holds the writes made after the restart");
	return fe;
}

/* ---- 3. one frontend at a time ---- */

static void test_second_frontend(struct hvn_vu_frontend *fe, struct gq *q0, struct gq *q1)
{
	struct hvn_vu_frontend *fe2 = NULL;
	char want[200];
	uint8_t wce = 0xee;
	struct gq q;
	int r;

	printf("-- blk0: a second frontend --\n");
	r = hvn_vu_frontend_connect(&fe2, sock[0], NULL);
	CHECK(r == -ECONNRESET && !fe2, "a second frontend is refused while the first is "
	      "connected: the daemon closes it (%s)", strerror(-r));
	snprintf(want, sizeof(want), "hvnotifyd: warning: blk0: refusing a frontend (pid %d, uid %u):"
		 " already serving one\n", (int)getpid(), (unsigned int)getuid());
	CHECK(log_wait(want, LOG_WAIT_MS), "the log says: %.*s", (int)strlen(want) - 1, want);
	write_read(q1, 5000, 0x1000, 40, 1, false);
	/* Left in writethrough: the next connection must not inherit it. */
	set_writeback(fe, 0);

	/* The first one goes away with its queues running, as a VMM that dies. */
	hvn_vu_frontend_close(fe);
	q_free(q0, 0);
	q_free(q1, 0);
	CHECK(log_wait("hvnotifyd: blk0#1: frontend gone; blk0 accepts a new one\n", LOG_WAIT_MS),
	      "the daemon stops the first frontend's queues and accepts again");

	fe = connect_dev(0);
	setup(fe, 0, BLK0_F & ~HVN_VU_F_PROTOCOL_FEATURES);
	r = hvn_vu_frontend_get_config(fe, VBLK_CONFIG_WRITEBACK, &wce, 1);
	CHECK(r == 0 && wce == 1, "the new connection starts in writeback again: %u", wce);
	q_init(&q, 1, BLK0_F);
	gq_start(fe, &q);
	memset(gmem_ptr(&g, RD(&q), 0x10000), 0, 0x10000);
	r = gq_do(&q, VBLK_T_IN, 3200, RD(&q), 0x10000, NULL);
	CHECK(r == VBLK_S_OK && pat_same(gmem_ptr(&g, RD(&q), 0x10000), 0x10000, 34, 3200 * 512),
	      "the new frontend reads what the first one wrote: status %d", r);
	r = gq_do(&q, VBLK_T_IN, 5000, RD(&q), 0x1000, NULL);
	CHECK(r == VBLK_S_OK && pat_same(gmem_ptr(&g, RD(&q), 0x1000), 0x1000, 40, 5000 * 512),
	      "including its last write: status %d", r);
	write_read(&q, 7000, 0x1000, 41, 1, false);
	stop(fe, &q);
	hvn_vu_frontend_close(fe);
	q_free(&q, 0);
	CHECK(log_wait("hvnotifyd: blk0#2: frontend gone; blk0 accepts a new one\n", LOG_WAIT_MS),
	      "the second connection ends too");
}

/* ---- 4. blk1, read-only ---- */

static void test_readonly(void)
{
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe;
	struct vblk_config cfg;
	uint32_t used = 0;
	struct gq q;
	int r, st;

	printf("-- blk1: a read-only image --\n");
	fe = connect_dev(1);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "blk1: info");
	CHECK(info.features == BLK1_F, "blk1 offers RO and neither DISCARD nor WRITE_ZEROES: "
	      "%#llx (want %#llx)", (unsigned long long)info.features,
	      (unsigned long long)BLK1_F);
	CHECK(info.queues == 1, "GET_QUEUE_NUM: %u", info.queues);
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	CHECK(r == 0 && le64toh(cfg.capacity) == IMG1_SIZE / 512 && le16toh(cfg.num_queues) == 1,
	      "GET_CONFIG: capacity %llu, num_queues %u", (unsigned long long)le64toh(cfg.capacity),
	      le16toh(cfg.num_queues));
	setup(fe, 1, BLK1_F & ~HVN_VU_F_PROTOCOL_FEATURES);
	q_init(&q, 0, BLK1_F);
	gq_start(fe, &q);

	memset(gmem_ptr(&g, RD(&q), 0x4000), 0, 0x4000);
	st = gq_do(&q, VBLK_T_IN, 8, RD(&q), 0x4000, &used);
	CHECK(st == VBLK_S_OK && used == 0x4001 &&
	      pat_same(gmem_ptr(&g, RD(&q), 0x4000), 0x4000, IMG1_SEED, 8 * 512),
	      "reads what the image holds: status %d, used %u", st, used);
	pat_fill(&g, WR(&q), 0x1000, 1, 0);
	st = gq_do(&q, VBLK_T_OUT, 0, WR(&q), 0x1000, &used);
	expect_status(&q, "OUT to a read-only disk", st, used, VBLK_S_IOERR);
	st = dwz(&q, VBLK_T_DISCARD, 0, 8, 0, &used);
	expect_status(&q, "DISCARD on a read-only disk", st, used, VBLK_S_IOERR);
	st = dwz(&q, VBLK_T_WRITE_ZEROES, 0, 8, 0, &used);
	expect_status(&q, "WRITE_ZEROES on a read-only disk", st, used, VBLK_S_IOERR);
	st = gq_do(&q, VBLK_T_FLUSH, 0, 0, 0, &used);
	CHECK(st == VBLK_S_OK && used == 1, "FLUSH: status %d, used %u", st, used);
	check_get_id(&q, "disk1.img");
	stop(fe, &q);
	hvn_vu_frontend_close(fe);
	q_free(&q, 1);
	CHECK(file_has(img1, 0, IMG1_SIZE, IMG1_SEED), "the read-only image is unchanged");
}

/* ---- 5. blk2, null: left connected for the end ---- */

static struct hvn_vu_frontend *test_null(struct gq *q)
{
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe;
	struct vblk_config cfg;
	uint32_t used = 0;
	int r, st;

	printf("-- blk2: null, 64 MiB --\n");
	fe = connect_dev(2);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "blk2: info");
	CHECK(info.features == BLK2_F, "blk2 offers %#llx (want %#llx)",
	      (unsigned long long)info.features, (unsigned long long)BLK2_F);
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	CHECK(r == 0 && le64toh(cfg.capacity) == NULL_SIZE / 512, "GET_CONFIG: capacity %llu",
	      (unsigned long long)le64toh(cfg.capacity));
	setup(fe, 2, BLK2_F & ~HVN_VU_F_PROTOCOL_FEATURES);
	q_init(q, 0, BLK2_F);
	gq_start(fe, q);
	st = gq_do(q, VBLK_T_IN, 0, RD(q), 0x10000, &used);
	CHECK(st == VBLK_S_OK && used == 0x10001, "IN of 64 KiB: status %d, used %u", st, used);
	st = gq_do(q, VBLK_T_IN, NULL_SIZE / 512 - 8, RD(q), 0x1000, &used);
	CHECK(st == VBLK_S_OK && used == 0x1001, "IN of the last 4 KiB: status %d, used %u", st,
	      used);
	pat_fill(&g, WR(q), 0x10000, 1, 0);
	st = gq_do(q, VBLK_T_OUT, 0, WR(q), 0x10000, &used);
	CHECK(st == VBLK_S_OK && used == 1, "OUT of 64 KiB: status %d, used %u", st, used);
	st = gq_do(q, VBLK_T_FLUSH, 0, 0, 0, &used);
	CHECK(st == VBLK_S_OK && used == 1, "FLUSH: status %d, used %u", st, used);
	st = gq_do(q, VBLK_T_IN, NULL_SIZE / 512, RD(q), 512, &used);
	expect_status(q, "IN past the end", st, used, VBLK_S_IOERR);
	check_get_id(q, "null");
	return fe;
}

/* ---- 6. a hostile request ---- */

static void test_hostile(struct gq *nq)
{
	struct hvn_vu_frontend *fe;
	struct vrd_buf hdr;
	struct gq q0, q1;
	uint32_t *h;
	char want[200];
	uint32_t used = 0;
	int r, st;

	printf("-- blk0: a request without a status byte --\n");
	fe = connect_dev(0);
	setup(fe, 0, BLK0_F & ~HVN_VU_F_PROTOCOL_FEATURES);
	q_init(&q0, 0, BLK0_F);
	q_init(&q1, 1, BLK0_F);
	gq_start(fe, &q0);
	gq_start(fe, &q1);
	write_read(&q1, 8000, 0x1000, 50, 1, false);

	/* A 16-byte header (IN, sector 0) and nothing the device may write,
	 * as q0's first request: no call of an earlier one can be on its way. */
	h = gmem_ptr(&g, SCRATCH(&q0), 16);
	h[0] = htole32(VBLK_T_IN);
	h[1] = 0;
	h[2] = h[3] = 0;
	hdr.gpa = SCRATCH(&q0);
	hdr.len = 16;
	r = vrd_add(&q0.d, &hdr, 1, NULL, 0, NULL, false);
	MUST(r >= 0, "add the hostile chain: %d", r);
	q0.made++;
	MUST(blk_submit(&q0.q) >= 0, "kick");
	r = (int)efd_wait(q0.err, LOG_WAIT_MS);
	CHECK(r == 1, "the queue's error eventfd is signalled (%d)", r);
	r = (int)efd_wait(q0.call, 500);
	CHECK(r == 0 && vrd_get_used(&q0.d, NULL, NULL, NULL) == 0,
	      "no completion arrives (call signals %d, used index %u)", r,
	      le16toh(__atomic_load_n(&q0.d.used->idx, __ATOMIC_ACQUIRE)));
	snprintf(want, sizeof(want), "hvnotifyd: warning: blk0#3 queue 0: the guest broke the queue:"
		 " %s; the error eventfd was signalled\n", strerror(EBADMSG));
	CHECK(log_wait(want, LOG_WAIT_MS), "the log says: %.*s", (int)strlen(want) - 1, want);

	/* Everything else goes on. */
	write_read(&q1, 8100, 0x2000, 51, 2, true);
	st = gq_do(nq, VBLK_T_IN, 64, RD(nq), 0x1000, &used);
	CHECK(st == VBLK_S_OK && used == 0x1001, "blk2 still serves: status %d, used %u", st, used);
	CHECK(hvnd_running(&daemon_), "the daemon still runs");

	/* The broken queue stops like any other, and a restart mends it. */
	stop(fe, &q0);
	gq_start(fe, &q0);
	write_read(&q0, 8200, 0x1000, 52, 1, false);
	CHECK(file_has(img0, 8000 * 512, 0x1000, 50) && file_has(img0, 8100 * 512, 0x2000, 51) &&
	      file_has(img0, 8200 * 512, 0x1000, 52), "the image holds this connection's writes");
	hvn_vu_frontend_close(fe);
	q_free(&q0, 0);
	q_free(&q1, 0);
	CHECK(log_wait("hvnotifyd: blk0#3: frontend gone; blk0 accepts a new one\n", LOG_WAIT_MS),
	      "the third connection ends");
}

/* ---- 7. signals ---- */

/* How the daemon starts a device's totals: "stats blk0: 3 connections, 97 requests, ". */
static void totals(char *buf, size_t len, const char *what, unsigned int dev)
{
	unsigned int conns = dev == 0 ? 3 : 1;

	snprintf(buf, len, "hvnotifyd: %s blk%u: %u connection%s, %lu requests, ", what, dev, conns,
		 conns == 1 ? "" : "s", requests[dev]);
}

static void test_signals(struct hvn_vu_frontend *nfe, struct gq *nq)
{
	char line[200], *text, *tail;
	struct vblk_config cfg;
	unsigned int i;
	int r;

	printf("-- SIGUSR1, then SIGTERM with blk2 connected --\n");
	REQUIRE(kill(daemon_.pid, SIGUSR1) == 0, "SIGUSR1");
	for (i = 0; i < 3; i++) {
		totals(line, sizeof(line), "stats", i);
		CHECK(log_wait(line, LOG_WAIT_MS), "stats of stopped queues: %s", line);
	}
	/* blk2's queue 0 runs on worker (2 + 0) % 2. */
	snprintf(line, sizeof(line), "hvnotifyd: blk2#1 queue 0 (worker 0): %u requests, ", nq->made);
	CHECK(log_wait(line, LOG_WAIT_MS), "stats of the running queue: %s", line);

	/* SIGTERM, and its exit status (killed after 5 s: -ETIMEDOUT). */
	r = hvnd_stop(&daemon_, 5000);
	CHECK(r == 0, "the daemon exits 0 within 5 s of SIGTERM (%d)", r);
	requests[2] += nq->made;
	r = hvn_vu_frontend_get_config(nfe, 0, &cfg, sizeof(cfg));
	CHECK(r == -ECONNRESET, "blk2's frontend sees the connection closed: %s", strerror(-r));
	hvn_vu_frontend_close(nfe);
	gq_free(nq);

	text = log_text();
	CHECK(strstr(text, "hvnotifyd: blk2#1: closing: shutting down\n") != NULL,
	      "the daemon closed blk2's connection itself");
	CHECK(!strstr(text, "still open at exit"), "no descriptor still open at exit");
	CHECK(strstr(text, "hvnotifyd: debug: exit: every descriptor we opened is closed\n") != NULL,
	      "every descriptor it opened is closed");
	/* The log ends: totals of each device, the descriptor check, the status. */
	tail = strstr(text, "hvnotifyd: total blk0: ");
	for (i = 0; i < 3 && tail; i++) {
		totals(line, sizeof(line), "total", i);
		CHECK(!strncmp(tail, line, strlen(line)), "totals: %s", line);
		tail = strchr(tail, '\n');
		tail = tail ? tail + 1 : NULL;
	}
	CHECK(tail && !strcmp(tail, "hvnotifyd: debug: exit: every descriptor we opened is closed\n"
			      "hvnotifyd: exit 0\n"),
	      "the log ends with the totals of blk0, blk1, blk2, then \"exit 0\"");
	free(text);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	struct hvn_vu_frontend *fe, *nfe;
	struct gq q0, q1, nq;
	unsigned int i;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/hvn-dfe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	REQUIRE(mkdtemp(dir), "temporary directory %s", dir);
	atexit(cleanup);
	snprintf(img0, sizeof(img0), "%s/disk0.img", dir);
	snprintf(img1, sizeof(img1), "%s/disk1.img", dir);
	snprintf(logpath, sizeof(logpath), "%s/hvnotifyd.log", dir);
	for (i = 0; i < 3; i++)
		snprintf(sock[i], sizeof(sock[i]), "%s/blk%u.sock", dir, i);
	REQUIRE(strlen(sock[0]) < 100, "socket paths fit a sockaddr_un: %s", sock[0]);

	fd = open(img0, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, IMG0_SIZE) == 0, "image %s", img0);
	close(fd);
	{
		uint8_t *buf = malloc(IMG1_SIZE);

		MUST(buf, "memory");
		for (i = 0; i < IMG1_SIZE; i++)
			buf[i] = pat(i, IMG1_SEED);
		fd = open(img1, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
		REQUIRE(fd >= 0 && write(fd, buf, IMG1_SIZE) == IMG1_SIZE, "image %s", img1);
		close(fd);
		free(buf);
	}
	gmem_init(&g);
	REQUIRE(gmem_add(&g, 0, MEM_SIZE, 0) == 0, "guest memory");

	signal(SIGALRM, on_watchdog);
	alarm(WATCHDOG_S);
	start_daemon();

	fe = test_blk0(&q0, &q1);
	test_second_frontend(fe, &q0, &q1);
	test_readonly();
	nfe = test_null(&nq);
	test_hostile(&nq);
	test_signals(nfe, &nq);

	alarm(0);
	gmem_free(&g);
	print_log();
	return t_done("daemon-frontend");
}
