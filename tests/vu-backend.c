// SPDX-License-Identifier: MIT
/*
 * vu-backend.c - the vhost-user backend state machine over a real unix
 * socket, driven message by message as a frontend would (and as a hostile
 * one would), with real guest memory (memfds), a real split ring on the
 * guest side, and the queues run by the library on a real io_uring loop.
 *
 * The host here is the test itself: it runs the queues in this thread and
 * reports their stops back, as hvnotifyd's workers do from theirs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "../lib/vu_proto.h"
#include "support/check.h"
#include "../lib/guest/guest_mem.h"
#include "../lib/guest/vring_driver.h"

#define NQ 2
#define RING 16
#define DEV_FEATURE (UINT64_C(1) << 5)

/* ---- the device: fills the writable part with its head's number ---- */

static uint8_t config_space[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void fill_handle(void *dev, struct hvn_dev_req *req)
{
	uint32_t n = 0, i;

	for (i = req->vq.n_out; i < req->vq.n_out + req->vq.n_in; i++) {
		memset(req->vq.iov[i].iov_base, 0xa0 + (req->vq.head & 0xf), req->vq.iov[i].iov_len);
		n += (uint32_t)req->vq.iov[i].iov_len;
	}
	hvn_dev_req_done(req, n);
}

static uint64_t fill_features(void *dev)
{
	return DEV_FEATURE;
}

static int fill_get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	memcpy(buf, config_space + off, len);
	return 0;
}

static int fill_set_config(void *dev, const void *buf, uint32_t off, uint32_t len)
{
	memcpy(config_space + off, buf, len);
	return 0;
}

static const struct hvn_dev_ops fill_ops = {
	.name = "fill",
	.virtio_id = 99,
	.config_size = sizeof(config_space),
	.max_segments = 4,
	.max_queues = NQ,
	.get_features = fill_features,
	.get_config = fill_get_config,
	.set_config = fill_set_config,
	.handle = fill_handle,
};

/* ---- the host: queues on a loop in this thread ---- */

static struct hvn_loop *loop;
static struct hvn_dev_queue *running[NQ];
static int stopped[NQ], starts, stops;

static int host_start(void *arg, unsigned int idx, const struct hvn_dev_queue_config *cfg)
{
	starts++;
	return hvn_dev_queue_start(loop, cfg, &running[idx]);
}

static void on_stopped(struct hvn_dev_queue *q, void *arg)
{
	unsigned int idx = hvn_dev_queue_index(q);

	hvn_dev_queue_free(q);
	running[idx] = NULL;
	stopped[idx] = 1;
}

static int host_stop(void *arg, unsigned int idx)
{
	stops++;
	return hvn_dev_queue_stop(running[idx], on_stopped, NULL);
}

static const struct hvn_vu_backend_host host = { host_start, host_stop };

/* ---- the connection ---- */

struct conn {
	struct hvn_vu_backend *b;
	int fe, be;		/* frontend's end, backend's end */
	int last;		/* what the backend said last */
};

static void conn_open_flags(struct conn *c, uint32_t flags)
{
	struct hvn_vu_backend_config cfg = {
		.ops = &fill_ops, .num_queues = NQ, .host = &host, .flags = flags,
	};
	int sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	c->fe = sv[0];
	c->be = sv[1];
	REQUIRE(hvn_vu_backend_new(&cfg, &c->b) == 0, "backend");
	c->last = 0;
}

static void conn_open(struct conn *c)
{
	conn_open_flags(c, 0);
}

/* Run the backend until it waits for the frontend again (stops reported). */
static int pump(struct conn *c)
{
	int r = hvn_vu_backend_handle(c->b, c->be), rounds;

	for (rounds = 0; r == HVN_VU_PAUSED && rounds < 200; rounds++) {
		unsigned int i;

		hvn_loop_run(loop, 10);
		for (i = 0; i < NQ; i++) {
			if (stopped[i]) {
				stopped[i] = 0;
				r = hvn_vu_backend_queue_stopped(c->b, i, c->be);
			}
		}
	}
	c->last = r;
	return r;
}

static int send_msg(struct conn *c, uint32_t req, uint32_t flags, const void *payload,
		    uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VU_VERSION | flags;
	m.hdr.size = size;
	if (size)
		memcpy(&m.payload, payload, size);
	if (nfds)
		memcpy(m.fds, fds, nfds * sizeof(int));
	m.nfds = nfds;
	REQUIRE(vu_msg_send(c->fe, &m) == 0, "send %s", vu_request_name(req));
	return pump(c);
}

/* A reply the frontend reads, checked to be one. */
static int get_reply(struct conn *c, uint32_t req, void *payload, uint32_t size)
{
	struct vu_reader rd;
	int r;

	vu_reader_init(&rd);
	r = vu_msg_read(c->fe, &rd);
	if (r != 1 || rd.msg.hdr.request != req || rd.msg.hdr.flags != (VU_VERSION | VU_FLAG_REPLY) ||
	    rd.msg.hdr.size != size)
		return -1;
	memcpy(payload, &rd.msg.payload, size);
	return 0;
}

static uint64_t ask_u64(struct conn *c, uint32_t req)
{
	uint64_t v = 0;

	send_msg(c, req, 0, NULL, 0, NULL, 0);
	if (get_reply(c, req, &v, sizeof(v)) < 0)
		return UINT64_MAX;
	return v;
}

static int send_u64(struct conn *c, uint32_t req, uint64_t v, const int *fds, unsigned int nfds)
{
	return send_msg(c, req, 0, &v, sizeof(v), fds, nfds);
}

static int send_state(struct conn *c, uint32_t req, uint32_t idx, uint32_t num)
{
	struct vu_vring_state st = { idx, num };

	return send_msg(c, req, 0, &st, sizeof(st), NULL, 0);
}

static void conn_close(struct conn *c)
{
	int pending = hvn_vu_backend_stop_all(c->b), rounds;
	unsigned int i;

	for (rounds = 0; pending > 0 && rounds < 200; rounds++) {
		hvn_loop_run(loop, 10);
		for (i = 0; i < NQ; i++)
			if (stopped[i]) {
				stopped[i] = 0;
				pending = hvn_vu_backend_queue_stopped(c->b, i, -1);
			}
	}
	hvn_vu_backend_free(c->b);
	close(c->fe);
	close(c->be);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* ---- the guest ---- */

static struct gmem g;
static struct vring_driver drv[NQ];
static int kick[NQ], call[NQ];

static void add_regions(struct conn *c)
{
	unsigned int i;

	for (i = 0; i < g.count; i++) {
		struct vu_mem_single ms;
		struct hvn_mem_region r;
		uint64_t ack = 7;

		gmem_region(&g, i, &r);
		memset(&ms, 0, sizeof(ms));
		ms.region.gpa = r.gpa;
		ms.region.size = r.size;
		ms.region.uaddr = r.uaddr;
		ms.region.mmap_offset = r.mmap_offset;
		send_msg(c, VU_ADD_MEM_REG, VU_FLAG_NEED_REPLY, &ms, sizeof(ms), &r.fd, 1);
		CHECK(c->last == 0 && get_reply(c, VU_ADD_MEM_REG, &ack, 8) == 0 && ack == 0,
		      "ADD_MEM_REG region %u acked with 0", i);
	}
}

static void setup_queue(struct conn *c, unsigned int q, uint16_t base)
{
	struct hvn_vq_addr a;
	struct vu_vring_addr va;

	send_state(c, VU_SET_VRING_NUM, q, RING);
	send_state(c, VU_SET_VRING_BASE, q, base);
	vrd_addr(&drv[q], false, &a);
	memset(&va, 0, sizeof(va));
	va.index = q;
	va.desc = a.desc;
	va.avail = a.avail;
	va.used = a.used;
	send_msg(c, VU_SET_VRING_ADDR, 0, &va, sizeof(va), NULL, 0);
	send_u64(c, VU_SET_VRING_CALL, q, &call[q], 1);
	send_u64(c, VU_SET_VRING_KICK, q, &kick[q], 1);
}

/* n requests on queue q: the device fills each 64-byte buffer. */
static int do_io(unsigned int q, int n)
{
	uint64_t one = 1;
	int i, got = 0, good = 0, rounds;

	for (i = 0; i < n; i++) {
		struct vrd_buf in = { 0x20000 + q * 0x8000 + (uint64_t)i * 64, 64 };

		if (vrd_add(&drv[q], NULL, 0, &in, 1, (void *)(uintptr_t)(i + 1), false) < 0)
			return -1;
	}
	vrd_publish(&drv[q]);
	if (vrd_kick_needed(&drv[q]) && write(kick[q], &one, 8) != 8)
		return -1;
	for (rounds = 0; rounds < 200 && got < n; rounds++) {
		uint16_t head;
		uint32_t len;
		void *tok;

		hvn_loop_run(loop, 10);
		while (vrd_get_used(&drv[q], &head, &len, &tok) == 1) {
			uint8_t *p = gmem_ptr(&g, 0x20000 + q * 0x8000 + ((uintptr_t)tok - 1) * 64, 64);

			got++;
			good += len == 64 && p[0] == 0xa0 + (head & 0xf) && p[63] == p[0];
		}
	}
	return good;
}

static void test_session(void)
{
	struct conn c;
	uint64_t v, base_fds = (uint64_t)open_fds();
	struct vu_vring_state st;
	struct vu_config cfg;
	unsigned int q;
	int r;

	conn_open(&c);
	v = ask_u64(&c, VU_GET_FEATURES);
	CHECK((v & HVN_VQ_F_VERSION_1) && (v & HVN_VQ_F_EVENT_IDX) && (v & HVN_VQ_F_INDIRECT_DESC) &&
	      (v & (UINT64_C(1) << VU_F_PROTOCOL_FEATURES)) && (v & DEV_FEATURE),
	      "GET_FEATURES offers VERSION_1, EVENT_IDX, INDIRECT, PROTOCOL_FEATURES and the device's (0x%llx)",
	      (unsigned long long)v);
	v = ask_u64(&c, VU_GET_PROTOCOL_FEATURES);
	CHECK(v & (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS), "protocol features offered 0x%llx",
	      (unsigned long long)v);
	send_u64(&c, VU_SET_PROTOCOL_FEATURES, v, NULL, 0);
	CHECK(c.last == 0, "SET_PROTOCOL_FEATURES accepted");
	CHECK(ask_u64(&c, VU_GET_QUEUE_NUM) == NQ, "GET_QUEUE_NUM = %d", NQ);
	CHECK(ask_u64(&c, VU_GET_MAX_MEM_SLOTS) == HVN_MEM_MAX_REGIONS, "GET_MAX_MEM_SLOTS = %d", HVN_MEM_MAX_REGIONS);
	send_msg(&c, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	send_u64(&c, VU_SET_FEATURES, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX |
		 (UINT64_C(1) << VU_F_PROTOCOL_FEATURES), NULL, 0);
	CHECK(c.last == 0, "SET_OWNER, SET_FEATURES accepted");

	memset(&cfg, 0, sizeof(cfg));
	cfg.offset = 2;
	cfg.size = 4;
	send_msg(&c, VU_GET_CONFIG, 0, &cfg, VU_CONFIG_HDR_SIZE + 4, NULL, 0);
	CHECK(get_reply(&c, VU_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + 4) == 0 && cfg.data[0] == 3 &&
	      cfg.data[3] == 6, "GET_CONFIG 4 bytes at 2 -> 3..6");
	cfg.data[0] = 0x33;
	cfg.size = 1;
	send_msg(&c, VU_SET_CONFIG, 0, &cfg, VU_CONFIG_HDR_SIZE + 1, NULL, 0);
	CHECK(c.last == 0 && config_space[2] == 0x33, "SET_CONFIG wrote the device's config space");

	add_regions(&c);
	CHECK((uint64_t)open_fds() == base_fds + 2, "memory fds the backend received are closed once mapped "
	      "(only the socket pair is new)");

	for (q = 0; q < NQ; q++) {
		setup_queue(&c, q, 0);
		CHECK(running[q] == NULL, "queue %u configured but not enabled: not running", q);
		send_state(&c, VU_SET_VRING_ENABLE, q, 1);
		CHECK(c.last == 0 && running[q] != NULL, "queue %u enabled: running", q);
		r = do_io(q, 5);
		CHECK(r == 5, "queue %u served 5 requests through the ring (%d)", q, r);
	}

	/* Stop queue 0 the way QEMU does, and read where it stopped. */
	send_state(&c, VU_SET_VRING_ENABLE, 0, 0);
	CHECK(c.last == 0 && running[0] == NULL, "ENABLE 0 stopped queue 0 before the next message");
	send_state(&c, VU_GET_VRING_BASE, 0, 0);
	CHECK(get_reply(&c, VU_GET_VRING_BASE, &st, sizeof(st)) == 0 && st.index == 0 && st.num == 5,
	      "GET_VRING_BASE 0 -> 5 (the requests served)");
	CHECK(do_io(0, 1) == 0, "a stopped queue serves nothing");

	/* Restart from the saved base with fresh fds, as after a guest reset
	 * the frontend starts the device again. */
	setup_queue(&c, 0, 6);
	send_state(&c, VU_SET_VRING_ENABLE, 0, 1);
	r = do_io(0, 3);
	CHECK(running[0] && r >= 3, "restarted at 6: the request left waiting and 3 new ones served (%d)", r);

	/* A new call fd while running: the queue is stopped, changed, restarted. */
	starts = stops = 0;
	close(call[1]);
	call[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	send_u64(&c, VU_SET_VRING_CALL, 1, &call[1], 1);
	CHECK(c.last == 0 && stops == 1 && starts == 1 && running[1], "SET_VRING_CALL on a running queue: "
	      "stopped and restarted (%d stops, %d starts)", stops, starts);
	vrd_enable_interrupts(&drv[1]);
	CHECK(do_io(1, 2) == 2, "and it serves with the new fd");
	{
		uint64_t n = 0;

		hvn_loop_run(loop, 0);
		CHECK(read(call[1], &n, 8) == 8 && n >= 1, "the new call fd was signalled");
	}
	conn_close(&c);
	CHECK((uint64_t)open_fds() == base_fds, "after the connection, every descriptor the backend held is closed");
}

/* One bad message on a fresh connection: it must fail, say why, leak nothing. */
static void expect_refused(const char *what, uint32_t req, const void *payload, uint32_t size,
			   const int *fds, unsigned int nfds, int setup)
{
	struct conn c;
	int before = open_fds(), r;

	conn_open(&c);
	if (setup >= 1) {
		send_u64(&c, VU_SET_PROTOCOL_FEATURES,
			 (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
			 (UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK) |
			 (UINT64_C(1) << VU_PROTOCOL_F_CONFIG), NULL, 0);
		send_msg(&c, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	}
	if (setup >= 2)
		add_regions(&c);
	r = send_msg(&c, req, 0, payload, size, fds, nfds);
	CHECK(r < 0, "%s -> refused (%d): %s", what, r, hvn_vu_backend_strerror(c.b));
	conn_close(&c);
	CHECK(open_fds() == before, "  and no descriptor left open");
}

static void test_hostile(void)
{
	uint64_t u = 0;
	struct vu_vring_state st;
	struct vu_vring_addr va;
	struct vu_mem_single ms;
	struct vu_config cfg;
	struct hvn_mem_region r0;
	int e[3];

	for (int i = 0; i < 3; i++)
		e[i] = eventfd(0, EFD_CLOEXEC);
	expect_refused("SET_FEATURES with 4 bytes", VU_SET_FEATURES, &u, 4, NULL, 0, 1);
	expect_refused("GET_FEATURES carrying 3 fds", VU_GET_FEATURES, NULL, 0, e, 3, 0);
	u = UINT64_C(1) << 62 | HVN_VQ_F_VERSION_1;
	expect_refused("SET_FEATURES with bits not offered", VU_SET_FEATURES, &u, 8, NULL, 0, 1);
	u = 0;
	expect_refused("SET_FEATURES without VERSION_1", VU_SET_FEATURES, &u, 8, NULL, 0, 1);
	st = (struct vu_vring_state){ 7, 16 };
	expect_refused("SET_VRING_NUM for queue 7 of 2", VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0, 1);
	st = (struct vu_vring_state){ 0x80000000u, 0 };
	expect_refused("SET_VRING_BASE for queue 0x80000000", VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0, 1);
	st = (struct vu_vring_state){ UINT32_MAX, 16 };
	expect_refused("SET_VRING_NUM for queue 0xffffffff", VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0, 1);
	st = (struct vu_vring_state){ 0, 100 };
	expect_refused("SET_VRING_NUM 100 (not a power of two)", VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0, 1);
	st = (struct vu_vring_state){ 0, 65536 };
	expect_refused("SET_VRING_NUM 65536 (huge ring)", VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0, 1);
	memset(&va, 0, sizeof(va));
	expect_refused("SET_VRING_ADDR before SET_OWNER", VU_SET_VRING_ADDR, &va, sizeof(va), NULL, 0, 0);
	u = 0;
	expect_refused("SET_VRING_KICK without its fd", VU_SET_VRING_KICK, &u, 8, NULL, 0, 1);
	u = VU_VRING_NOFD_MASK;
	expect_refused("SET_VRING_KICK in polling mode", VU_SET_VRING_KICK, &u, 8, NULL, 0, 1);
	u = 1;
	expect_refused("SET_VRING_CALL with two fds", VU_SET_VRING_CALL, &u, 8, e, 2, 1);
	{
		int f = memfd_create("not-an-eventfd", MFD_CLOEXEC);

		u = 0;
		expect_refused("SET_VRING_KICK with a memfd", VU_SET_VRING_KICK, &u, 8, &f, 1, 1);
		close(f);
	}
	expect_refused("request 99", 99, NULL, 0, NULL, 0, 1);
	expect_refused("SEND_RARP (not ours)", VU_SEND_RARP, &u, 8, NULL, 0, 1);
	memset(&cfg, 0, sizeof(cfg));
	cfg.offset = 4;
	cfg.size = 8;
	expect_refused("GET_CONFIG past the config space", VU_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + 8,
		       NULL, 0, 1);

	gmem_region(&g, 0, &r0);
	memset(&ms, 0, sizeof(ms));
	ms.region.gpa = r0.gpa;
	ms.region.size = r0.size;
	ms.region.uaddr = r0.uaddr;
	ms.region.mmap_offset = UINT64_C(1) << 40;
	expect_refused("ADD_MEM_REG with an mmap offset past the end of the file", VU_ADD_MEM_REG, &ms,
		       sizeof(ms), &r0.fd, 1, 1);
	ms.region.mmap_offset = 0;
	ms.region.gpa = r0.gpa + 0x1000;
	ms.region.uaddr = r0.uaddr + 0x100000000ull;
	expect_refused("ADD_MEM_REG overlapping a region", VU_ADD_MEM_REG, &ms, sizeof(ms), &r0.fd, 1, 2);
	ms.region.gpa = 0x7000000000ull;
	expect_refused("REM_MEM_REG of a region never added", VU_REM_MEM_REG, &ms, sizeof(ms), NULL, 0, 2);
	for (int i = 0; i < 3; i++)
		close(e[i]);
}

/* ---- inflight regions (INFLIGHT_SHMFD) ---- */

/* GET_INFLIGHT_FD: the reply and its one descriptor. */
static int get_inflight(struct conn *c, uint16_t nq, uint16_t qsize, struct vu_inflight *out)
{
	struct vu_inflight in = { .num_queues = nq, .queue_size = qsize };
	struct vu_reader rd;

	send_msg(c, VU_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	vu_reader_init(&rd);
	if (vu_msg_read(c->fe, &rd) != 1 || rd.msg.hdr.request != VU_GET_INFLIGHT_FD ||
	    rd.msg.hdr.size != sizeof(*out) || rd.msg.nfds != 1) {
		vu_msg_close_fds(&rd.msg);
		return -1;
	}
	memcpy(out, &rd.msg.payload, sizeof(*out));
	return rd.msg.fds[0];
}

/* Mappings of the backend's region in this process (the test's own too). */
static int region_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:hvnotify-inflight") != NULL;
	if (f)
		fclose(f);
	return n;
}

static void negotiate_inflight(struct conn *c)
{
	send_u64(c, VU_SET_PROTOCOL_FEATURES, (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
		 (UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK) |
		 (UINT64_C(1) << VU_PROTOCOL_F_RESET_DEVICE) |
		 (UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD), NULL, 0);
	send_msg(c, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	send_u64(c, VU_SET_FEATURES, HVN_VQ_F_VERSION_1 | (UINT64_C(1) << VU_F_PROTOCOL_FEATURES),
		 NULL, 0);
}

static void test_inflight(void)
{
	uint64_t per = hvn_vq_inflight_size(RING), v;
	struct vu_inflight inf, bad;
	struct conn c;
	int before = open_fds(), fd, r;
	struct stat st;
	uint8_t *reg;

	/* Fresh rings: the earlier tests left theirs somewhere in the middle. */
	for (r = 0; r < NQ; r++) {
		vrd_free(&drv[r]);
		REQUIRE(vrd_init(&drv[r], &g, RING, 0x4000 * r, HVN_VQ_F_VERSION_1) == 0, "ring %d", r);
	}
	/* Offered only when the host says its device may run a request twice. */
	conn_open(&c);
	v = ask_u64(&c, VU_GET_PROTOCOL_FEATURES);
	CHECK(!(v & (UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD)),
	      "without HVN_VU_BACKEND_F_INFLIGHT, INFLIGHT_SHMFD is not offered (0x%llx)",
	      (unsigned long long)v);
	send_u64(&c, VU_SET_PROTOCOL_FEATURES, UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD, NULL, 0);
	CHECK(c.last < 0, "and cannot be negotiated: %s", hvn_vu_backend_strerror(c.b));
	conn_close(&c);

	conn_open_flags(&c, HVN_VU_BACKEND_F_INFLIGHT);
	v = ask_u64(&c, VU_GET_PROTOCOL_FEATURES);
	CHECK(v & (UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD), "with it, INFLIGHT_SHMFD is offered");
	negotiate_inflight(&c);
	CHECK(c.last == 0, "and negotiated");
	fd = get_inflight(&c, NQ, RING, &inf);
	CHECK(fd >= 0 && inf.mmap_size == NQ * per && inf.mmap_offset == 0 && inf.num_queues == NQ &&
	      inf.queue_size == RING, "GET_INFLIGHT_FD %d queues of %d: %llu bytes at 0, with an fd",
	      NQ, RING, (unsigned long long)inf.mmap_size);
	REQUIRE(fd >= 0 && fstat(fd, &st) == 0, "the region's fd");
	CHECK((uint64_t)st.st_size == NQ * per, "the file is the region's size (%lld)", (long long)st.st_size);
	CHECK((fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
	      (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "and sealed: nobody can shrink it under a backend");
	reg = mmap(NULL, NQ * per, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(reg != MAP_FAILED, "the frontend maps it");
	CHECK(reg[8] == 0 && reg[8 + per] == 0, "never used: version 0 in both queues' parts");

	send_msg(&c, VU_SET_INFLIGHT_FD, 0, &inf, sizeof(inf), &fd, 1);
	CHECK(c.last == 0 && region_maps() == 2, "SET_INFLIGHT_FD accepted: the backend maps the region");
	add_regions(&c);
	setup_queue(&c, 0, 0);
	send_state(&c, VU_SET_VRING_ENABLE, 0, 1);
	CHECK(c.last == 0 && running[0], "queue 0 runs");
	CHECK(*(uint16_t *)(reg + 8) == 1 && *(uint16_t *)(reg + 10) == RING,
	      "its part of the region is in use: version 1, %d entries", RING);
	CHECK(*(uint16_t *)(reg + per + 8) == 0, "queue 1's part is untouched");
	r = do_io(0, 5);
	CHECK(r == 5 && *(uint16_t *)(reg + 14) == le16toh(drv[0].used->idx),
	      "5 requests served; the region's used_idx follows the ring (%u)", *(uint16_t *)(reg + 14));
	for (r = 0, v = 0; r < RING; r++)
		v += reg[16 + 16 * r];
	CHECK(v == 0, "and nothing is flagged in flight");
	/* A new region while the queue runs: it stops first, then moves. */
	send_msg(&c, VU_SET_INFLIGHT_FD, 0, &inf, sizeof(inf), &fd, 1);
	CHECK(c.last == 0 && running[0], "SET_INFLIGHT_FD again: the queue stopped, took it, runs again");
	/* A reset forgets the region: a frontend sends a new one first. */
	send_msg(&c, VU_RESET_DEVICE, 0, NULL, 0, NULL, 0);
	CHECK(c.last == 0 && running[0] == NULL && region_maps() == 1,
	      "RESET_DEVICE stops the queue and unmaps the region");
	conn_close(&c);
	munmap(reg, NQ * per);

	/* A ring bigger than the region tracks cannot start. */
	conn_open_flags(&c, HVN_VU_BACKEND_F_INFLIGHT);
	negotiate_inflight(&c);
	bad = inf;
	bad.queue_size = RING / 2;
	bad.mmap_size = NQ * hvn_vq_inflight_size(RING / 2);
	send_msg(&c, VU_SET_INFLIGHT_FD, 0, &bad, sizeof(bad), &fd, 1);
	add_regions(&c);
	setup_queue(&c, 0, 0);
	send_state(&c, VU_SET_VRING_ENABLE, 0, 1);
	CHECK(c.last < 0 && !running[0], "a ring of %d with a region for %d: refused (%s)", RING,
	      RING / 2, hvn_vu_backend_strerror(c.b));
	conn_close(&c);
	close(fd);
	CHECK(open_fds() == before, "every descriptor and mapping of the region was let go");
}

static void test_inflight_refused(void)
{
	struct vu_inflight inf = { .num_queues = NQ, .queue_size = RING };
	int shortf = memfd_create("short", MFD_CLOEXEC), before;

	REQUIRE(shortf >= 0 && ftruncate(shortf, 100) == 0, "a 100-byte memfd");
	before = open_fds();
	expect_refused("GET_INFLIGHT_FD without INFLIGHT_SHMFD", VU_GET_INFLIGHT_FD, &inf, sizeof(inf),
		       NULL, 0, 1);
	inf.mmap_size = NQ * hvn_vq_inflight_size(RING);
	expect_refused("SET_INFLIGHT_FD without INFLIGHT_SHMFD", VU_SET_INFLIGHT_FD, &inf, sizeof(inf),
		       &shortf, 1, 1);
	CHECK(open_fds() == before, "the fds that came with them are closed");
	{
		struct conn c;
		struct vu_inflight b;
		struct {
			const char *what;
			uint16_t nq, qs;
			uint64_t size, off;
		} cases[] = {
			{ "GET 0 queues", 0, RING, 0, 0 },
			{ "GET 3 queues of a 2-queue device", 3, RING, 0, 0 },
			{ "GET rings of 0 entries", NQ, 0, 0, 0 },
			{ "GET rings of 40000 entries", NQ, 40000, 0, 0 },
			{ "SET a region smaller than its queues need", NQ, RING, 100, 0 },
			{ "SET a region past the end of its file", NQ, RING, 2 * 320, 0 },
			{ "SET a region at an odd offset", NQ, RING, 2 * 320, 3 },
		};
		unsigned int k;

		for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			int fds_before = open_fds();

			conn_open_flags(&c, HVN_VU_BACKEND_F_INFLIGHT);
			negotiate_inflight(&c);
			b = (struct vu_inflight){ .mmap_size = cases[k].size, .mmap_offset = cases[k].off,
						  .num_queues = cases[k].nq, .queue_size = cases[k].qs };
			if (cases[k].what[0] == 'G')
				send_msg(&c, VU_GET_INFLIGHT_FD, 0, &b, sizeof(b), NULL, 0);
			else
				send_msg(&c, VU_SET_INFLIGHT_FD, 0, &b, sizeof(b), &shortf, 1);
			CHECK(c.last < 0, "%s: refused (%s)", cases[k].what, hvn_vu_backend_strerror(c.b));
			conn_close(&c);
			CHECK(open_fds() == fds_before, "  and no descriptor left open");
		}
	}
	close(shortf);
}

/* Ring addresses outside guest memory: the queue cannot start. */
static void test_bad_rings(void)
{
	struct conn c;
	struct vu_vring_addr va;
	int before = open_fds();

	conn_open(&c);
	send_u64(&c, VU_SET_PROTOCOL_FEATURES, (UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
		 (UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK), NULL, 0);
	send_msg(&c, VU_SET_OWNER, 0, NULL, 0, NULL, 0);
	send_u64(&c, VU_SET_FEATURES, HVN_VQ_F_VERSION_1 | (UINT64_C(1) << VU_F_PROTOCOL_FEATURES), NULL, 0);
	add_regions(&c);
	send_state(&c, VU_SET_VRING_NUM, 0, RING);
	memset(&va, 0, sizeof(va));
	va.desc = 0x1000;	/* not a frontend address of any region */
	va.avail = 0x2000;
	va.used = 0x3000;
	send_msg(&c, VU_SET_VRING_ADDR, 0, &va, sizeof(va), NULL, 0);
	send_u64(&c, VU_SET_VRING_KICK, 0, &kick[0], 1);
	send_state(&c, VU_SET_VRING_ENABLE, 0, 1);
	CHECK(c.last < 0 && running[0] == NULL, "rings outside guest memory: refused at enable (%s)",
	      hvn_vu_backend_strerror(c.b));
	conn_close(&c);
	CHECK(open_fds() == before, "  and no descriptor left open");
}

/* A device without a config space (virtio-rng): no CONFIG protocol feature. */
static void test_no_config(void)
{
	static const struct hvn_dev_ops ops = {
		.name = "noconfig", .virtio_id = 4, .max_queues = 1, .handle = fill_handle,
	};
	struct hvn_vu_backend_config cfg = { .ops = &ops, .num_queues = 1, .host = &host };
	struct conn c;
	uint64_t v;
	int sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	c.fe = sv[0];
	c.be = sv[1];
	c.last = 0;
	REQUIRE(hvn_vu_backend_new(&cfg, &c.b) == 0, "backend of a device with no config space");
	v = ask_u64(&c, VU_GET_PROTOCOL_FEATURES);
	CHECK(v == 0xa009, "no config space: protocol features 0x%llx, without CONFIG (want 0xa009)",
	      (unsigned long long)v);
	send_u64(&c, VU_SET_PROTOCOL_FEATURES, v | (UINT64_C(1) << VU_PROTOCOL_F_CONFIG), NULL, 0);
	CHECK(c.last < 0, "  and acking CONFIG anyway is refused (%s)", hvn_vu_backend_strerror(c.b));
	conn_close(&c);
}

int main(void)
{
	unsigned int q;

	REQUIRE(hvn_loop_new(64, &loop) == 0, "loop");
	gmem_init(&g);
	REQUIRE(gmem_add(&g, 0, 0x40000, 0) >= 0 && gmem_add(&g, 0x100000, 0x10000, 0x2345) >= 0,
		"guest memory: two memfd regions");
	for (q = 0; q < NQ; q++) {
		REQUIRE(vrd_init(&drv[q], &g, RING, 0x4000 * q, HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX) == 0,
			"ring %u", q);
		kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	}
	test_session();
	test_hostile();
	test_bad_rings();
	test_no_config();
	test_inflight();
	test_inflight_refused();
	for (q = 0; q < NQ; q++) {
		close(kick[q]);
		close(call[q]);
		vrd_free(&drv[q]);
	}
	gmem_free(&g);
	hvn_loop_free(loop);
	return t_done("vu-backend");
}
