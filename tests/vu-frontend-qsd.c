// SPDX-License-Identifier: MIT
/*
 * vu-frontend-qsd.c - libhvnotify's vhost-user frontend against a real
 * backend: qemu-storage-daemon's vhost-user-blk export (libvhost-user).
 *
 * The test is the VMM and the guest at once: guest RAM is memfds
 * (lib/guest/guest_mem), the guest's virtio-blk driver is lib/guest/blk_req on
 * lib/guest/vring_driver, its queues and eventfds are support/blk_guest, and
 * the frontend API connects them to qsd as QEMU would: negotiate, read the
 * config space, share memory, start queues, do real I/O through kick and
 * call eventfds, stop a queue (GET_VRING_BASE must count every request),
 * restart it from there, use the second queue, add and remove a memory
 * region, and check on the host that the image file holds what the guest
 * wrote.
 *
 * One qsd serves two exports: exp0, a raw file with two queues (memory
 * slots, REPLY_ACK), and exp1, null-co with one queue, which the test also
 * drives without REPLY_ACK (so with SET_MEM_TABLE).  Skips (77) without
 * qemu-storage-daemon, unless HVN_CI=1.  HVN_QSD names another binary.
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
#include <sys/wait.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "support/blk_guest.h"
#include "support/check.h"

#define IMG_SIZE	(16u << 20)

/* Guest memory.  R0: rings, indirect tables, request metadata, data. */
#define R0		0x000000ull
#define R0_SIZE		0x100000ull
#define RING(i)		(R0 + 0x1000ull * (i))		/* up to 4 rings */
#define IND0		0x004000ull			/* GQ_IND_BYTES */
#define META(i)		(0x008000ull + 0x1000ull * (i))
#define DATA		0x010000ull
/* R1: added and removed while the device runs, from a file offset. */
#define R1		0x100000ull
#define R1_SIZE		0x040000ull
#define R1_OFFSET	0x010000ull

static char dir[64], img[96], sock0[96], sock1[96];
static pid_t qsd = -1;

static void cleanup(void)
{
	proc_stop(&qsd, SIGTERM, 5000);
	if (!dir[0])
		return;
	unlink(sock0);
	unlink(sock1);
	unlink(img);
	rmdir(dir);
}

static const char *find_qsd(void)
{
	static char buf[4096];
	const char *env = getenv("HVN_QSD"), *path = getenv("PATH");

	if (env && *env) {
		/* Asked for by name: not finding it is an error, not a skip. */
		REQUIRE(access(env, X_OK) == 0, "HVN_QSD=%s is executable", env);
		return env;
	}
	while (path && *path) {
		size_t n = strcspn(path, ":");

		if (n && snprintf(buf, sizeof(buf), "%.*s/qemu-storage-daemon", (int)n, path) <
				 (int)sizeof(buf) && access(buf, X_OK) == 0)
			return buf;
		path += n + (path[n] == ':');
	}
	return NULL;
}

static void start_qsd(const char *bin)
{
	char bd0[256], ex0[256], bd1[256], ex1[256];

	snprintf(bd0, sizeof(bd0), "driver=file,node-name=disk,filename=%s", img);
	snprintf(ex0, sizeof(ex0), "type=vhost-user-blk,id=exp0,node-name=disk,addr.type=unix,"
		 "addr.path=%s,writable=on,num-queues=2", sock0);
	snprintf(bd1, sizeof(bd1), "driver=null-co,node-name=null,size=%u,read-zeroes=on",
		 IMG_SIZE);
	snprintf(ex1, sizeof(ex1), "type=vhost-user-blk,id=exp1,node-name=null,addr.type=unix,"
		 "addr.path=%s,writable=on,num-queues=1", sock1);
	qsd = fork();
	if (qsd == 0) {
		execl(bin, bin, "--blockdev", bd0, "--export", ex0, "--blockdev", bd1,
		      "--export", ex1, (char *)NULL);
		perror(bin);
		_exit(127);
	}
	REQUIRE(qsd > 0, "fork");
	printf("started %s (pid %d)\n", bin, (int)qsd);
}

/* qsd creates its sockets some time after it starts: retry until it listens. */
static struct hvn_vu_frontend *connect_qsd(const char *path, const struct hvn_vu_frontend_opts *o)
{
	struct hvn_vu_frontend *fe;
	int r = vu_connect_retry(&fe, path, o, qsd, 10000);

	REQUIRE(r == 0, "connect to %s: %s", path, strerror(-r));
	return fe;
}

/* Write len bytes of pattern seed at sector from gpa, read them back into rd_gpa. */
static void write_read(struct gq *q, uint64_t sector, uint64_t wr_gpa, uint64_t rd_gpa,
		       uint32_t len, unsigned int seed)
{
	CHECK(gq_write_read(q, sector, wr_gpa, rd_gpa, len, seed, 1, false),
	      "q%u wrote %u bytes at sector %llu from %#llx, read them back into %#llx: %s",
	      q->index, len, (unsigned long long)sector, (unsigned long long)wr_gpa,
	      (unsigned long long)rd_gpa, q->why);
}

static void stop(struct hvn_vu_frontend *fe, struct gq *q)
{
	CHECK(gq_stop(fe, q), "queue %u stopped: %s", q->index, q->why);
}

/* The first export: the whole life of a device, with memory slots and REPLY_ACK. */
static void test_file_export(struct gmem *g)
{
	const uint64_t want = HVN_VQ_F_VERSION_1 | VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE |
			      VBLK_F_FLUSH | VBLK_F_CONFIG_WCE | VBLK_F_MQ |
			      HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC;
	struct hvn_mem_region reg[2];
	struct hvn_vu_frontend_info info;
	struct vblk_config cfg;
	struct hvn_vu_frontend *fe;
	struct gq q0, q1, q2;
	uint8_t wce, id[VBLK_ID_BYTES];
	unsigned int i;
	uint64_t features;
	uint32_t used;
	int r, st;

	printf("-- exp0: raw file, 2 queues --\n");
	fe = connect_qsd(sock0, NULL);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
	printf("features %#llx, protocol offered %#llx, negotiated %#llx, queues %u, "
	       "memory regions %u\n", (unsigned long long)info.features,
	       (unsigned long long)info.protocol_offered,
	       (unsigned long long)info.protocol_features, info.queues, info.max_mem_regions);
	CHECK((info.features & (HVN_VQ_F_VERSION_1 | HVN_VU_F_PROTOCOL_FEATURES | VBLK_F_MQ)) ==
	      (HVN_VQ_F_VERSION_1 | HVN_VU_F_PROTOCOL_FEATURES | VBLK_F_MQ),
	      "qsd offers VERSION_1, PROTOCOL_FEATURES, MQ");
	CHECK(info.protocol_features == (info.protocol_offered &
	      (HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK | HVN_VU_PROTOCOL_F_CONFIG |
	       HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS | HVN_VU_PROTOCOL_F_RESET_DEVICE)),
	      "negotiated exactly what both implement");
	CHECK((info.protocol_features & (HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK |
	       HVN_VU_PROTOCOL_F_CONFIG | HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) ==
	      (HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK | HVN_VU_PROTOCOL_F_CONFIG |
	       HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
	      "MQ, REPLY_ACK, CONFIG and CONFIGURE_MEM_SLOTS negotiated");
	CHECK(info.queues == 2, "GET_QUEUE_NUM: %u queues", info.queues);
	CHECK(info.max_mem_regions >= 8, "GET_MAX_MEM_SLOTS: %u", info.max_mem_regions);

	/* Config space, as QEMU reads it once at realize. */
	memset(&cfg, 0xee, sizeof(cfg));
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	REQUIRE(r == 0, "GET_CONFIG %zu bytes: %d", sizeof(cfg), r);
	CHECK(cfg.capacity == IMG_SIZE / VBLK_SECTOR_SIZE, "capacity %llu sectors = image size",
	      (unsigned long long)cfg.capacity);
	CHECK(cfg.num_queues == 2, "config num_queues %u", cfg.num_queues);
	CHECK(cfg.blk_size == VBLK_SECTOR_SIZE, "config blk_size %u", cfg.blk_size);
	r = hvn_vu_frontend_get_config(fe, VBLK_CONFIG_WRITEBACK, &wce, 1);
	CHECK(r == 0 && wce == cfg.writeback, "GET_CONFIG of one byte at an offset: %d", r);

	features = want & info.features;
	CHECK(features == want, "qsd offers every feature the test acks");
	r = hvn_vu_frontend_set_features(fe, features);
	REQUIRE(r == 0, "SET_FEATURES %#llx: %d", (unsigned long long)features, r);

	/* The writeback field is the one a driver may write (CONFIG_WCE). */
	wce = !cfg.writeback;
	r = hvn_vu_frontend_set_config(fe, VBLK_CONFIG_WRITEBACK, &wce, 1);
	CHECK(r == 0, "SET_CONFIG writeback=%u: %d", wce, r);
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	CHECK(r == 0 && cfg.writeback == wce, "GET_CONFIG reads writeback=%u back", cfg.writeback);

	gmem_region(g, 0, &reg[0]);
	r = hvn_vu_frontend_set_mem_table(fe, reg, 1, 0);
	REQUIRE(r == 0, "guest memory R0 (ADD_MEM_REG): %d", r);

	gq_init(&q0, g, 0, RING(0), META(0), IND0, features);
	gq_start(fe, &q0);
	/* libvhost-user signals a new call fd at once; count only what follows. */
	efd_drain(q0.call);

	/* 8 writes in flight at once, one kick: direct, split data, indirect. */
	r = gq_write_batch(&q0, 0, DATA, 8, 0x1000, 1);
	CHECK(r == 8, "8 writes in flight completed with VIRTIO_BLK_S_OK (%d)", r);
	CHECK(q0.q.kicks == 1, "one kick for 8 requests (%lu)", q0.q.kicks);
	/* Waited for, or still pending if the completions were quicker than the wait. */
	i = (unsigned int)q0.q.calls + efd_drain(q0.call);
	CHECK(i >= 1, "completions signalled on the call eventfd (%u)", i);
	/* Read all 32 KiB back in one request. */
	memset(gmem_ptr(g, DATA + 0x10000, 0x8000), 0, 0x8000);
	st = gq_do(&q0, VBLK_T_IN, 0, DATA + 0x10000, 0x8000, &used);
	CHECK(st == VBLK_S_OK && used == 0x8001, "IN 32 KiB: status %d, used len %u", st, used);
	CHECK(pat_same(gmem_ptr(g, DATA + 0x10000, 0x8000), 0x8000, 1, 0), "read back the 8 writes");

	st = gq_do(&q0, VBLK_T_FLUSH, 0, 0, 0, NULL);
	CHECK(st == VBLK_S_OK, "FLUSH: status %d", st);
	memset(id, 0, sizeof(id));
	memset(gmem_ptr(g, DATA + 0x20000, VBLK_ID_BYTES), 0, VBLK_ID_BYTES);
	st = gq_do(&q0, VBLK_T_GET_ID, 0, DATA + 0x20000, VBLK_ID_BYTES, &used);
	memcpy(id, gmem_ptr(g, DATA + 0x20000, VBLK_ID_BYTES), VBLK_ID_BYTES);
	CHECK(st == VBLK_S_OK && id[0], "GET_ID: status %d, id \"%.20s\"", st, (char *)id);
	CHECK(file_has(img, 0, 0x8000, 1), "the image file on the host holds the 8 writes");

	/* Stop, and restart where the backend stopped (QEMU's vhost_dev_stop/start). */
	stop(fe, &q0);
	gq_start(fe, &q0);
	write_read(&q0, 100, DATA + 0x30000, DATA + 0x31000, 0x1000, 2);
	CHECK(file_has(img, 100 * 512, 0x1000, 2), "image holds the write made after the restart");
	stop(fe, &q0);

	/* The second queue, on its own ring. */
	gq_init(&q1, g, 1, RING(1), META(1), 0, features);
	gq_start(fe, &q1);
	write_read(&q1, 200, DATA + 0x40000, DATA + 0x42000, 0x2000, 3);
	CHECK(file_has(img, 200 * 512, 0x2000, 3), "image holds queue 1's write");
	stop(fe, &q1);

	/* Hot-plug: add R1 (ADD_MEM_REG), do I/O from it, remove it (REM_MEM_REG). */
	gmem_region(g, 1, &reg[1]);
	r = hvn_vu_frontend_set_mem_table(fe, reg, 2, 0);
	REQUIRE(r == 0, "add R1 at %#llx (ADD_MEM_REG): %d", (unsigned long long)R1, r);
	gq_start(fe, &q0);
	write_read(&q0, 300, R1 + 0x1000, R1 + 0x20000, 0x4000, 4);
	CHECK(file_has(img, 300 * 512, 0x4000, 4), "image holds the write from R1");
	r = hvn_vu_frontend_set_mem_table(fe, reg, 1, 0);
	CHECK(r == 0, "remove R1 (REM_MEM_REG): %d", r);
	write_read(&q0, 400, DATA + 0x50000, DATA + 0x51000, 0x1000, 5);
	stop(fe, &q0);

	/* Queue 1 again, after the memory changes. */
	gq_start(fe, &q1);
	write_read(&q1, 500, DATA + 0x52000, DATA + 0x53000, 0x1000, 6);
	stop(fe, &q1);

	/* A reset (RESET_OWNER here: qsd lacks RESET_DEVICE), then a fresh start from 0. */
	r = hvn_vu_frontend_reset(fe);
	CHECK(r == 0, "reset: %d", r);
	r = hvn_vu_frontend_start_queue(fe, 0, &(struct hvn_vu_frontend_vring){ .num = GQ_SIZE,
					.kick_fd = -1, .call_fd = -1, .err_fd = -1 });
	CHECK(r == -EINVAL, "no queue before SET_FEATURES after a reset: %d", r);
	REQUIRE(hvn_vu_frontend_set_features(fe, features) == 0, "SET_FEATURES after reset");
	gq_init(&q2, g, 0, RING(2), META(2), 0, features);
	gq_start(fe, &q2);
	write_read(&q2, 600, DATA + 0x54000, DATA + 0x55000, 0x1000, 7);
	stop(fe, &q2);

	CHECK(file_has(img, 0, 0x8000, 1) && file_has(img, 100 * 512, 0x1000, 2) &&
	      file_has(img, 200 * 512, 0x2000, 3) && file_has(img, 300 * 512, 0x4000, 4) &&
	      file_has(img, 400 * 512, 0x1000, 5) && file_has(img, 500 * 512, 0x1000, 6) &&
	      file_has(img, 600 * 512, 0x1000, 7), "the image file holds every write");
	hvn_vu_frontend_close(fe);
	gq_free(&q0);
	gq_free(&q1);
	gq_free(&q2);
}

/*
 * The second export without REPLY_ACK, so without memory slots: the
 * library falls back to SET_MEM_TABLE (synchronised by a GET_FEATURES
 * round trip) and rings that do not acknowledge.  Then, reconnected with
 * everything, a table forced over slots, and a slot added to it.
 */
static void test_null_export(struct gmem *g)
{
	const struct hvn_vu_frontend_opts no_ack = {
		.protocol_disable = HVN_VU_PROTOCOL_F_REPLY_ACK,
	};
	const uint64_t features = HVN_VQ_F_VERSION_1 | VBLK_F_FLUSH;
	struct hvn_mem_region reg[2];
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe;
	struct vblk_config cfg;
	struct gq q;
	uint8_t *p;
	uint32_t used;
	int r, st;

	printf("-- exp1: null-co, without REPLY_ACK --\n");
	fe = connect_qsd(sock1, &no_ack);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
	CHECK(!(info.protocol_features & (HVN_VU_PROTOCOL_F_REPLY_ACK |
	      HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) && info.max_mem_regions == 8,
	      "no REPLY_ACK, hence no memory slots: protocol %#llx, %u regions",
	      (unsigned long long)info.protocol_features, info.max_mem_regions);
	CHECK(info.queues == 1, "GET_QUEUE_NUM: %u", info.queues);
	r = hvn_vu_frontend_get_config(fe, 0, &cfg, sizeof(cfg));
	CHECK(r == 0 && cfg.capacity == IMG_SIZE / VBLK_SECTOR_SIZE, "GET_CONFIG: capacity %llu",
	      (unsigned long long)cfg.capacity);
	REQUIRE(hvn_vu_frontend_set_features(fe, features) == 0, "SET_FEATURES");
	gmem_region(g, 0, &reg[0]);
	gmem_region(g, 1, &reg[1]);
	r = hvn_vu_frontend_set_mem_table(fe, reg, 2, HVN_VU_MEM_USE_SLOTS);
	CHECK(r == -EOPNOTSUPP, "ADD_MEM_REG refused without CONFIGURE_MEM_SLOTS: %d", r);
	r = hvn_vu_frontend_set_mem_table(fe, reg, 2, 0);
	REQUIRE(r == 0, "SET_MEM_TABLE with R0 and R1: %d", r);

	gq_init(&q, g, 0, RING(3), META(3), 0, features);
	gq_start(fe, &q);
	p = gmem_ptr(g, R1 + 0x8000, 0x2000);
	memset(p, 0x5a, 0x2000);
	st = gq_do(&q, VBLK_T_IN, 64, R1 + 0x8000, 0x2000, &used);
	CHECK(st == VBLK_S_OK && used == 0x2001 && p[0] == 0 && p[0x1fff] == 0 &&
	      !memcmp(p, p + 1, 0x1fff), "null-co reads zeroes into R1: status %d", st);
	pat_fill(g, DATA + 0x60000, 0x1000, 8, 0);
	st = gq_do(&q, VBLK_T_OUT, 8, DATA + 0x60000, 0x1000, NULL);
	CHECK(st == VBLK_S_OK, "null-co write: status %d", st);
	st = gq_do(&q, VBLK_T_FLUSH, 0, 0, 0, NULL);
	CHECK(st == VBLK_S_OK, "null-co FLUSH: status %d", st);
	stop(fe, &q);
	gq_start(fe, &q);
	st = gq_do(&q, VBLK_T_IN, 0, DATA + 0x61000, 0x1000, NULL);
	CHECK(st == VBLK_S_OK, "read after restart without REPLY_ACK: status %d", st);
	stop(fe, &q);
	hvn_vu_frontend_close(fe);

	printf("-- exp1 again: SET_MEM_TABLE forced, then a slot added --\n");
	fe = connect_qsd(sock1, NULL);
	REQUIRE(hvn_vu_frontend_set_features(fe, features) == 0, "SET_FEATURES");
	r = hvn_vu_frontend_set_mem_table(fe, reg, 1, HVN_VU_MEM_USE_TABLE);
	REQUIRE(r == 0, "SET_MEM_TABLE forced over memory slots: %d", r);
	r = hvn_vu_frontend_set_mem_table(fe, reg, 2, 0);
	REQUIRE(r == 0, "then R1 by ADD_MEM_REG: %d", r);
	/* The ring restarts where the last connection left it: the backend kept nothing. */
	gq_start(fe, &q);
	memset(p, 0x5a, 0x1000);
	st = gq_do(&q, VBLK_T_IN, 0, R1 + 0x8000, 0x1000, NULL);
	CHECK(st == VBLK_S_OK && p[0] == 0 && p[0xfff] == 0, "read into the added slot: %d", st);
	stop(fe, &q);
	hvn_vu_frontend_close(fe);
	gq_free(&q);
}

int main(void)
{
	const char *bin;
	struct gmem g;
	int fd, status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bin = find_qsd();
	if (!bin) {
		if (in_ci()) {
			printf("FAIL qemu-storage-daemon not found (HVN_CI=1)\n");
			return T_EXIT_FAIL;
		}
		printf("SKIP qemu-storage-daemon not found (apt-get install qemu-system-x86)\n");
		return T_EXIT_SKIP;
	}
	/* Unix socket paths are short: /tmp, not a deep build tree. */
	snprintf(dir, sizeof(dir), "/tmp/hvn-vufe-XXXXXX");
	REQUIRE(mkdtemp(dir), "mkdtemp");
	atexit(cleanup);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(sock0, sizeof(sock0), "%s/exp0.sock", dir);
	snprintf(sock1, sizeof(sock1), "%s/exp1.sock", dir);
	fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, IMG_SIZE) == 0, "image %s", img);
	close(fd);
	signal(SIGPIPE, SIG_IGN);
	start_qsd(bin);

	gmem_init(&g);
	REQUIRE(gmem_add(&g, R0, R0_SIZE, 0) == 0, "guest memory R0");
	REQUIRE(gmem_add(&g, R1, R1_SIZE, R1_OFFSET) == 1, "guest memory R1");

	test_file_export(&g);
	test_null_export(&g);

	CHECK(proc_alive(qsd), "qemu-storage-daemon still running");
	kill(qsd, SIGTERM);
	status = -1;
	if (proc_wait(qsd, 10000, &status))
		qsd = -1;	/* else cleanup() kills it */
	CHECK(qsd == -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "qemu-storage-daemon exits 0 on SIGTERM (status %#x)", status);
	gmem_free(&g);
	return t_done("vu-frontend-qsd");
}
