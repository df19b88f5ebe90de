// SPDX-License-Identifier: MIT
/*
 * daemon-hostile-frontend.c - a hostile vhost-user frontend breaks only its
 * own connection, in the real daemon.
 *
 * hvnotifyd serves blk0 (two queues), the device under attack, blk1,
 * another VM's disk, which a thread keeps busy with write+read I/O from
 * start to end, and blk2, where other frontends connect while blk0's
 * floods the daemon with messages.  Each case connects to blk0 afresh, gets as far into the
 * protocol as it needs (nothing, the handshake, guest memory, or a queue
 * running real I/O through the frontend API), then sends raw bytes that
 * break the protocol: wrong payload sizes, missing and extra descriptors,
 * bad memory regions, out-of-range queues and ring sizes, messages in the
 * wrong state, unknown requests, bad headers, half messages.  Messages
 * carry real eventfds and memfds, tagged so that the daemon's copies can
 * be recognised in /proc/PID/fdinfo (an eventfd's count) and
 * /proc/PID/fd and /proc/PID/maps (a memfd's name).  For each case:
 *
 *  - the daemon closes the connection (read returns 0 or ECONNRESET),
 *    or, for a message that is only incomplete, keeps waiting while the
 *    other device serves on, and closes it when the peer goes;
 *  - its log says why, in the line "blk0#N: closing: REASON";
 *  - its descriptors and memfd mappings are back to what they were before
 *    the case, and none of the tagged ones is left (the DPDK
 *    CVE-2022-0669 class: descriptors of a refused message leaked);
 *  - a well-behaved frontend is accepted next and does I/O;
 *  - the load on blk1 went on meanwhile, and the daemon runs.
 *
 * The frontend's side of the wire is lib/vu_msg.c's format (vu_proto.h);
 * the bytes are sent with a sendmsg() of our own, which can send what the
 * library's never would (more than 8 descriptors, part of a message).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "../lib/vu_proto.h"
#include "support/blk_load.h"
#include "support/check.h"
#include "support/daemon.h"
#include "../lib/guest/guest_mem.h"

#define MUST(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		exit(T_EXIT_FAIL);					\
	}								\
} while (0)

#define IMG_SIZE	(16u << 20)
#define TIMEOUT_MS	10000
#define QSIZE		16
#define STALL_MS	300		/* how long a half message is left hanging */
#define EFD_TAG		0x48560000ull	/* + case number: our eventfds' count */
#define UADDR		0x7f0000000000ull	/* the frontend's address of region 0 */

static struct hvnd daemon_;
static char sock0[128], sock2[128];
static const uint64_t features = HVN_VQ_F_VERSION_1 | HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC;
#define RING_FEATURES (HVN_VQ_F_EVENT_IDX | HVN_VQ_F_INDIRECT_DESC)

/* The well-behaved frontends' guest (VM A) and the other VM's (B). */
static struct gmem ga, gb;
static struct gq qa = { .name = "A.q0", .g = &ga, .index = 0, .num = QSIZE,
			.features = RING_FEATURES, .ring = 0, .meta = 0x4000,
			.wbuf = 0x10000, .rbuf = 0x20000 };
static struct gq qb = { .name = "B.q0", .g = &gb, .index = 0, .num = QSIZE,
			.features = RING_FEATURES, .ring = 0, .meta = 0x4000,
			.wbuf = 0x10000, .rbuf = 0x20000 };

/* ---- a case's connection, and the descriptors it sends ---- */

enum setup {
	S_NONE,		/* a bare connection */
	S_OWNER,	/* protocol features (no REPLY_ACK), SET_OWNER */
	S_OWNER_NOPROTO,/* SET_OWNER only: no protocol features */
	S_MEMORY,	/* S_OWNER and a 1 MiB region by ADD_MEM_REG */
	S_RUNNING,	/* the frontend API: memory, queue 0 running real I/O */
};

enum ending {
	CLOSED,		/* the daemon closes the connection */
	STALLS,		/* the daemon waits for the rest; the peer closes later */
	PEER_CLOSES,	/* the peer closes right after sending */
};

struct ctx {
	unsigned int n;			/* case number: tags */
	int sock;
	int fds[32];			/* ours, closed after sending */
	unsigned int nfds;
	char tag[32];			/* memfd name */
	struct hvn_vu_frontend *fe;	/* S_RUNNING */
	struct gq q;			/* S_RUNNING: its queue */
};

static int efd(struct ctx *c)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v = EFD_TAG + c->n;

	MUST(fd >= 0 && write(fd, &v, sizeof(v)) == sizeof(v), "eventfd");
	MUST(c->nfds < 32, "too many fds");
	c->fds[c->nfds++] = fd;
	return fd;
}

static int mfd(struct ctx *c, uint64_t size)
{
	int fd = memfd_create(c->tag, MFD_CLOEXEC);

	MUST(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "memfd");
	MUST(c->nfds < 32, "too many fds");
	c->fds[c->nfds++] = fd;
	return fd;
}

/* Any bytes, any descriptors (more than vu_msg_send allows), one sendmsg. */
static void raw_send(struct ctx *c, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 32)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
	/* The daemon may already have closed on an earlier message of the case. */
	MUST(n == (ssize_t)len || (n < 0 && (errno == EPIPE || errno == ECONNRESET)),
	     "sendmsg of %zu bytes: %zd (%s)", len, n, n < 0 ? strerror(errno) : "short");
}

/*
 * A message: a header saying size, then sent bytes of payload (less than
 * size for a message cut short, more never), with fds on its first byte.
 */
static void sendm(struct ctx *c, uint32_t req, uint32_t flags, uint32_t size, const void *payload,
		  size_t sent, const int *fds, unsigned int nfds)
{
	uint8_t buf[sizeof(struct vu_hdr) + sizeof(union vu_payload) + 64];
	struct vu_hdr h = { req, flags, size };

	MUST(sent <= sizeof(buf) - sizeof(h), "payload too large for the test");
	memcpy(buf, &h, sizeof(h));
	if (sent)
		memcpy(buf + sizeof(h), payload, sent);
	raw_send(c, buf, sizeof(h) + sent, fds, nfds);
}

/* A well-formed message of version 1. */
static void msg(struct ctx *c, uint32_t req, const void *payload, uint32_t size, const int *fds,
		unsigned int nfds)
{
	sendm(c, req, VU_VERSION, size, payload, size, fds, nfds);
}

static void msg_u64(struct ctx *c, uint32_t req, uint64_t v, const int *fds, unsigned int nfds)
{
	msg(c, req, &v, sizeof(v), fds, nfds);
}

static void msg_state(struct ctx *c, uint32_t req, uint32_t index, uint32_t num)
{
	struct vu_vring_state st = { index, num };

	msg(c, req, &st, sizeof(st), NULL, 0);
}

static struct vu_mem_region region(uint64_t gpa, uint64_t size, uint64_t uaddr, uint64_t offset)
{
	return (struct vu_mem_region){ gpa, size, uaddr, offset };
}

static void mem_table(struct ctx *c, const struct vu_mem_region *r, uint32_t n, uint32_t nregions,
		      const int *fds, unsigned int nfds)
{
	struct vu_mem_table t;

	memset(&t, 0, sizeof(t));
	t.nregions = nregions;
	memcpy(t.regions, r, n * sizeof(*r));
	msg(c, VU_SET_MEM_TABLE, &t, (uint32_t)(offsetof(struct vu_mem_table, regions) +
	    n * sizeof(*r)), fds, nfds);
}

static void add_mem_reg(struct ctx *c, uint32_t req, struct vu_mem_region r, const int *fds,
			unsigned int nfds)
{
	struct vu_mem_single m = { 0, r };

	msg(c, req, &m, sizeof(m), fds, nfds);
}

/* ---- the cases ---- */

#define PROTO_ALL ((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_CONFIG) | \
		   (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | \
		   (1ull << VU_PROTOCOL_F_RESET_DEVICE))

static void size_features(struct ctx *c)
{
	uint32_t v = 0;

	msg(c, VU_SET_FEATURES, &v, 4, NULL, 0);
}

static void size_vring_num(struct ctx *c)
{
	uint8_t p[12] = { 0 };

	msg(c, VU_SET_VRING_NUM, p, sizeof(p), NULL, 0);
}

static void size_vring_addr(struct ctx *c)
{
	uint8_t p[32] = { 0 };

	msg(c, VU_SET_VRING_ADDR, p, sizeof(p), NULL, 0);
}

static void size_get_features(struct ctx *c)
{
	msg_u64(c, VU_GET_FEATURES, 0, NULL, 0);
}

static void size_mem_table_empty(struct ctx *c)
{
	int fd = mfd(c, 1 << 20);
	uint64_t p = 1;		/* nregions = 1, and no region */

	msg(c, VU_SET_MEM_TABLE, &p, sizeof(p), &fd, 1);
}

static void size_mem_table_short(struct ctx *c)
{
	struct vu_mem_region r = region(0, 1 << 20, UADDR, 0);
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	mem_table(c, &r, 1, 2, fds, 2);
}

static void size_get_config(struct ctx *c)
{
	struct vu_config cfg = { .offset = 0, .size = 8 };

	msg(c, VU_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + 4, NULL, 0);
}

static void fds_kick_missing(struct ctx *c)
{
	msg_u64(c, VU_SET_VRING_KICK, 0, NULL, 0);
}

static void fds_mem_table_missing(struct ctx *c)
{
	struct vu_mem_region r[2] = { region(0, 1 << 20, UADDR, 0),
				      region(1 << 20, 1 << 20, UADDR + (1 << 20), 0) };
	int fd = mfd(c, 1 << 20);

	mem_table(c, r, 2, 2, &fd, 1);
}

static void fds_add_mem_reg_missing(struct ctx *c)
{
	add_mem_reg(c, VU_ADD_MEM_REG, region(0, 1 << 20, UADDR, 0), NULL, 0);
}

static void fds_get_features_8(struct ctx *c)
{
	int fds[8], i;

	for (i = 0; i < 8; i++)
		fds[i] = efd(c);
	msg(c, VU_GET_FEATURES, NULL, 0, fds, 8);
}

static void fds_owner_12(struct ctx *c)
{
	int fds[12], i;

	for (i = 0; i < 12; i++)
		fds[i] = i % 2 ? efd(c) : mfd(c, 4096);
	msg(c, VU_SET_OWNER, NULL, 0, fds, 12);
}

static void fds_call_2(struct ctx *c)
{
	int fds[2] = { efd(c), efd(c) };

	msg_u64(c, VU_SET_VRING_CALL, 0, fds, 2);
}

static void fds_mem_table_3(struct ctx *c)
{
	struct vu_mem_region r = region(0, 1 << 20, UADDR, 0);
	int fds[3] = { mfd(c, 1 << 20), mfd(c, 1 << 20), efd(c) };

	mem_table(c, &r, 1, 1, fds, 3);
}

static void fds_add_mem_reg_2(struct ctx *c)
{
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	add_mem_reg(c, VU_ADD_MEM_REG, region(0, 1 << 20, UADDR, 0), fds, 2);
}

/* Ring descriptors that are not eventfds: a file polls readable for ever. */
static void fds_kick_memfd(struct ctx *c)
{
	int fd = mfd(c, 4096);

	msg_u64(c, VU_SET_VRING_KICK, 0, &fd, 1);
}

static void fds_call_pipe(struct ctx *c)
{
	int p[2];

	MUST(pipe2(p, O_CLOEXEC) == 0 && c->nfds + 2 <= 32, "pipe");
	c->fds[c->nfds++] = p[0];
	c->fds[c->nfds++] = p[1];
	msg_u64(c, VU_SET_VRING_CALL, 1, &p[1], 1);
}

static void fds_err_null(struct ctx *c)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	MUST(fd >= 0 && c->nfds < 32, "/dev/null");
	c->fds[c->nfds++] = fd;
	msg_u64(c, VU_SET_VRING_ERR, 0, &fd, 1);
}

static void fds_on_owner(struct ctx *c)
{
	int fd = efd(c);

	msg(c, VU_SET_OWNER, NULL, 0, &fd, 1);
}

static void fds_on_vring_num(struct ctx *c)
{
	int fd = mfd(c, 4096);
	struct vu_vring_state st = { 0, QSIZE };

	msg(c, VU_SET_VRING_NUM, &st, sizeof(st), &fd, 1);
}

static void mem_overlap_gpa(struct ctx *c)
{
	struct vu_mem_region r[2] = { region(0, 1 << 20, UADDR, 0),
				      region(0x80000, 1 << 20, UADDR + (4 << 20), 0) };
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	mem_table(c, r, 2, 2, fds, 2);
}

static void mem_overlap_uaddr(struct ctx *c)
{
	struct vu_mem_region r[2] = { region(0, 1 << 20, UADDR, 0),
				      region(4 << 20, 1 << 20, UADDR + 0x1000, 0) };
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	mem_table(c, r, 2, 2, fds, 2);
}

static void mem_add_overlapping(struct ctx *c)
{
	int fd = mfd(c, 1 << 20);

	add_mem_reg(c, VU_ADD_MEM_REG, region(0xff000, 1 << 20, UADDR + (8 << 20), 0), &fd, 1);
}

static void mem_offset_past_end(struct ctx *c)
{
	struct vu_mem_region r = region(0, 1 << 20, UADDR, 2 << 20);
	int fd = mfd(c, 1 << 20);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void mem_add_offset_past_end(struct ctx *c)
{
	int fd = mfd(c, 1 << 20);

	add_mem_reg(c, VU_ADD_MEM_REG, region(0, 0x1000, UADDR, UINT64_C(1) << 40), &fd, 1);
}

static void mem_size_zero(struct ctx *c)
{
	struct vu_mem_region r = region(0, 0, UADDR, 0);
	int fd = mfd(c, 1 << 20);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void mem_file_too_small(struct ctx *c)
{
	struct vu_mem_region r = region(0, 1 << 20, UADDR, 0);
	int fd = mfd(c, 64 << 10);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void mem_gpa_wraps(struct ctx *c)
{
	struct vu_mem_region r = region(UINT64_MAX - 0xfff, 1 << 20, UADDR, 0);
	int fd = mfd(c, 1 << 20);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void mem_not_memory(struct ctx *c)
{
	struct vu_mem_region r = region(0, 4096, UADDR, 0);
	int fd = efd(c);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void mem_remove_unknown(struct ctx *c)
{
	int fd = mfd(c, 1 << 20);

	add_mem_reg(c, VU_REM_MEM_REG, region(64 << 20, 1 << 20, UADDR + (64 << 20), 0), &fd, 1);
}

static void queue_num_range(struct ctx *c)
{
	msg_state(c, VU_SET_VRING_NUM, 2, QSIZE);
}

static void queue_kick_range(struct ctx *c)
{
	int fd = efd(c);

	msg_u64(c, VU_SET_VRING_KICK, 200, &fd, 1);
}

static void queue_call_reserved(struct ctx *c)
{
	int fd = efd(c);

	msg_u64(c, VU_SET_VRING_CALL, 0x10000, &fd, 1);
}

static void queue_enable_range(struct ctx *c)
{
	msg_state(c, VU_SET_VRING_ENABLE, 300, 1);
}

static void queue_base_range(struct ctx *c)
{
	msg_state(c, VU_GET_VRING_BASE, 7, 0);
}

/* Indices that do not fit an int: not "about no queue". */
static void queue_base_huge(struct ctx *c)
{
	msg_state(c, VU_SET_VRING_BASE, 0x80000000u, 0);
}

static void queue_addr_huge(struct ctx *c)
{
	struct vu_vring_addr a = { .index = UINT32_MAX, .desc = UADDR, .used = UADDR + 0x1000,
				   .avail = UADDR + 0x800 };

	msg(c, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

static void ring_size_0(struct ctx *c) { msg_state(c, VU_SET_VRING_NUM, 0, 0); }
static void ring_size_3(struct ctx *c) { msg_state(c, VU_SET_VRING_NUM, 1, 3); }
static void ring_size_65536(struct ctx *c) { msg_state(c, VU_SET_VRING_NUM, 0, 65536); }

static void state_addr_before_owner(struct ctx *c)
{
	struct vu_vring_addr a = { .index = 0, .desc = UADDR, .used = UADDR + 0x1000,
				   .avail = UADDR + 0x800 };

	msg(c, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

static void state_mem_before_owner(struct ctx *c)
{
	struct vu_mem_region r = region(0, 1 << 20, UADDR, 0);
	int fd = mfd(c, 1 << 20);

	mem_table(c, &r, 1, 1, &fd, 1);
}

static void state_add_mem_reg_noproto(struct ctx *c)
{
	int fd = mfd(c, 1 << 20);

	add_mem_reg(c, VU_ADD_MEM_REG, region(0, 1 << 20, UADDR, 0), &fd, 1);
}

static void state_config_noproto(struct ctx *c)
{
	struct vu_config cfg = { .offset = 0, .size = 8 };

	msg(c, VU_GET_CONFIG, &cfg, VU_CONFIG_HDR_SIZE + 8, NULL, 0);
}

static void state_protocol_not_offered(struct ctx *c)
{
	msg_u64(c, VU_SET_PROTOCOL_FEATURES, UINT64_C(1) << 62, NULL, 0);
}

static void unknown_99(struct ctx *c) { msg(c, 99, NULL, 0, NULL, 0); }
static void unknown_0(struct ctx *c) { msg(c, 0, NULL, 0, NULL, 0); }

static void unknown_max(struct ctx *c)
{
	int fd = efd(c);

	msg_u64(c, UINT32_MAX, 0, &fd, 1);
}

static void unknown_rarp(struct ctx *c)
{
	msg_u64(c, VU_SEND_RARP, 0, NULL, 0);
}

static void header_version_0(struct ctx *c)
{
	int fd = efd(c);

	sendm(c, VU_GET_FEATURES, 0, 0, NULL, 0, &fd, 1);
}

static void header_version_2(struct ctx *c)
{
	sendm(c, VU_GET_FEATURES, 2 | VU_FLAG_REPLY, 0, NULL, 0, NULL, 0);
}

static void header_size_4096(struct ctx *c)
{
	uint8_t p[64] = { 0 };
	int fd = mfd(c, 4096);

	sendm(c, VU_SET_MEM_TABLE, VU_VERSION, 4096, p, sizeof(p), &fd, 1);
}

static void header_size_max(struct ctx *c)
{
	sendm(c, VU_SET_FEATURES, VU_VERSION, UINT32_MAX, NULL, 0, NULL, 0);
}

static void half_header(struct ctx *c)
{
	struct vu_hdr h = { VU_GET_FEATURES, VU_VERSION, 0 };

	raw_send(c, &h, 6, NULL, 0);
}

static void half_payload_with_fd(struct ctx *c)
{
	int fd = efd(c);

	/* SET_VRING_CALL announces 8 bytes; 3 come, with the eventfd. */
	sendm(c, VU_SET_VRING_CALL, VU_VERSION, 8, "\0\0\0", 3, &fd, 1);
}

static void gone_mid_header(struct ctx *c)
{
	struct vu_hdr h = { VU_SET_VRING_KICK, VU_VERSION, 8 };
	int fds[3] = { efd(c), efd(c), mfd(c, 4096) };

	raw_send(c, &h, 4, fds, 3);
}

static void gone_mid_payload(struct ctx *c)
{
	struct vu_mem_region r[2] = { region(0, 1 << 20, UADDR, 0),
				      region(1 << 20, 1 << 20, UADDR + (1 << 20), 0) };
	struct vu_mem_table t = { .nregions = 2 };
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	memcpy(t.regions, r, sizeof(r));
	sendm(c, VU_SET_MEM_TABLE, VU_VERSION, offsetof(struct vu_mem_table, regions) + sizeof(r),
	      &t, 40, fds, 2);
}

static void running_call_3(struct ctx *c)
{
	int fds[3] = { efd(c), efd(c), efd(c) };

	msg_u64(c, VU_SET_VRING_CALL, 0, fds, 3);
}

static void running_mem_overlap(struct ctx *c)
{
	struct vu_mem_region r[2] = { region(0, 1 << 20, UADDR, 0),
				      region(0x1000, 1 << 20, UADDR + (4 << 20), 0) };
	int fds[2] = { mfd(c, 1 << 20), mfd(c, 1 << 20) };

	mem_table(c, r, 2, 2, fds, 2);
}

/* The queue must stop before its size changes; then the size is refused. */
static void running_ring_size(struct ctx *c)
{
	msg_state(c, VU_SET_VRING_NUM, 0, 3);
}

static void running_goes(struct ctx *c)
{
	(void)c;
}

struct fcase {
	const char *name;
	enum setup setup;
	void (*send)(struct ctx *c);
	enum ending ending;
	const char *why;	/* in the daemon's "closing: " line */
};

#define NFDS "number of file descriptors"
#define GONE "the frontend closed the connection"

static const struct fcase cases[] = {
	{ "SET_FEATURES with a 4-byte payload", S_OWNER, size_features, CLOSED, "payload size" },
	{ "SET_VRING_NUM with 12 bytes", S_OWNER, size_vring_num, CLOSED, "payload size" },
	{ "SET_VRING_ADDR with 32 bytes", S_OWNER, size_vring_addr, CLOSED, "payload size" },
	{ "GET_FEATURES with a payload", S_NONE, size_get_features, CLOSED, "payload size" },
	{ "SET_MEM_TABLE without room for a region", S_OWNER, size_mem_table_empty, CLOSED, "payload size" },
	{ "SET_MEM_TABLE of 2 regions with room for 1", S_OWNER, size_mem_table_short, CLOSED, "region count" },
	{ "GET_CONFIG whose size disagrees with the payload", S_OWNER, size_get_config, CLOSED, "config size" },
	{ "SET_VRING_KICK without its eventfd", S_OWNER, fds_kick_missing, CLOSED, NFDS },
	{ "SET_MEM_TABLE of 2 regions with 1 memfd", S_OWNER, fds_mem_table_missing, CLOSED, NFDS },
	{ "ADD_MEM_REG without its memfd", S_OWNER, fds_add_mem_reg_missing, CLOSED, NFDS },
	{ "GET_FEATURES with 8 eventfds", S_NONE, fds_get_features_8, CLOSED, NFDS },
	{ "SET_OWNER with 12 descriptors (over the 8 allowed)", S_NONE, fds_owner_12, CLOSED, "Message too long" },
	{ "SET_VRING_CALL with 2 eventfds", S_OWNER, fds_call_2, CLOSED, NFDS },
	{ "SET_MEM_TABLE of 1 region with 3 descriptors", S_OWNER, fds_mem_table_3, CLOSED, NFDS },
	{ "ADD_MEM_REG with 2 memfds", S_OWNER, fds_add_mem_reg_2, CLOSED, NFDS },
	{ "SET_VRING_KICK with a memfd, not an eventfd", S_OWNER, fds_kick_memfd, CLOSED,
	  "the descriptor is not an eventfd" },
	{ "SET_VRING_CALL with a pipe", S_OWNER, fds_call_pipe, CLOSED, "the descriptor is not an eventfd" },
	{ "SET_VRING_ERR with /dev/null", S_OWNER, fds_err_null, CLOSED, "the descriptor is not an eventfd" },
	{ "SET_OWNER carrying an eventfd", S_NONE, fds_on_owner, CLOSED, NFDS },
	{ "SET_VRING_NUM carrying a memfd", S_OWNER, fds_on_vring_num, CLOSED, NFDS },
	{ "overlapping regions (guest addresses)", S_OWNER, mem_overlap_gpa, CLOSED, "File exists" },
	{ "overlapping regions (frontend addresses)", S_OWNER, mem_overlap_uaddr, CLOSED, "File exists" },
	{ "ADD_MEM_REG overlapping a region", S_MEMORY, mem_add_overlapping, CLOSED, "File exists" },
	{ "mmap offset past the end of the file", S_OWNER, mem_offset_past_end, CLOSED, "Invalid argument" },
	{ "ADD_MEM_REG at an mmap offset of 1 TiB", S_OWNER, mem_add_offset_past_end, CLOSED, "Invalid argument" },
	{ "region of size 0", S_OWNER, mem_size_zero, CLOSED, "Invalid argument" },
	{ "region larger than its file", S_OWNER, mem_file_too_small, CLOSED, "Invalid argument" },
	{ "region whose guest addresses wrap", S_OWNER, mem_gpa_wraps, CLOSED, "Invalid argument" },
	{ "region on an eventfd", S_OWNER, mem_not_memory, CLOSED, "No such device" },
	{ "REM_MEM_REG of a region never added", S_MEMORY, mem_remove_unknown, CLOSED, "No such file or directory" },
	{ "SET_VRING_NUM for queue 2 of 2", S_OWNER, queue_num_range, CLOSED, "queue 2, but the device has 2" },
	{ "SET_VRING_KICK for queue 200, with its eventfd", S_OWNER, queue_kick_range, CLOSED, "queue 200, but" },
	{ "SET_VRING_CALL with reserved index bits", S_OWNER, queue_call_reserved, CLOSED, "reserved bits" },
	{ "SET_VRING_ENABLE for queue 300", S_OWNER, queue_enable_range, CLOSED, "queue 300, but" },
	{ "GET_VRING_BASE for queue 7", S_OWNER, queue_base_range, CLOSED, "queue 7, but" },
	{ "SET_VRING_BASE for queue 0x80000000", S_OWNER, queue_base_huge, CLOSED,
	  "queue 2147483648, but" },
	{ "SET_VRING_ADDR for queue 0xffffffff", S_OWNER, queue_addr_huge, CLOSED,
	  "queue 4294967295, but" },
	{ "ring size 0", S_OWNER, ring_size_0, CLOSED, "size 0 is not a power of two" },
	{ "ring size 3", S_OWNER, ring_size_3, CLOSED, "size 3 is not a power of two" },
	{ "ring size 65536", S_OWNER, ring_size_65536, CLOSED, "size 65536 is not a power of two" },
	{ "SET_VRING_ADDR before SET_OWNER", S_NONE, state_addr_before_owner, CLOSED, "before SET_OWNER" },
	{ "SET_MEM_TABLE before SET_OWNER", S_NONE, state_mem_before_owner, CLOSED, "before SET_OWNER" },
	{ "ADD_MEM_REG without CONFIGURE_MEM_SLOTS", S_OWNER_NOPROTO, state_add_mem_reg_noproto, CLOSED,
	  "before the CONFIGURE_MEM_SLOTS protocol feature" },
	{ "GET_CONFIG without the CONFIG protocol feature", S_OWNER_NOPROTO, state_config_noproto, CLOSED,
	  "before the CONFIG protocol feature" },
	{ "SET_PROTOCOL_FEATURES with a bit never offered", S_NONE, state_protocol_not_offered, CLOSED,
	  "were not offered" },
	{ "request 99", S_OWNER, unknown_99, CLOSED, "unsupported request" },
	{ "request 0", S_NONE, unknown_0, CLOSED, "unsupported request" },
	{ "request 0xffffffff with an eventfd", S_NONE, unknown_max, CLOSED, "unsupported request" },
	{ "SEND_RARP (a net device's request)", S_OWNER, unknown_rarp, CLOSED, "unsupported request" },
	{ "header of version 0, with an eventfd", S_NONE, header_version_0, CLOSED, "Protocol error" },
	{ "header of version 2", S_OWNER, header_version_2, CLOSED, "Protocol error" },
	{ "payload size 4096 (over the maximum), with a memfd", S_OWNER, header_size_4096, CLOSED,
	  "Message too long" },
	{ "payload size 0xffffffff", S_NONE, header_size_max, CLOSED, "Message too long" },
	{ "half a header, then nothing", S_OWNER, half_header, STALLS, GONE },
	{ "half a payload with an eventfd, then nothing", S_MEMORY, half_payload_with_fd, STALLS, GONE },
	{ "closes half way through a header, with 3 descriptors", S_NONE, gone_mid_header, PEER_CLOSES, GONE },
	{ "closes half way through a payload, with 2 memfds", S_OWNER, gone_mid_payload, PEER_CLOSES, GONE },
	{ "SET_VRING_CALL with 3 eventfds while a queue runs", S_RUNNING, running_call_3, CLOSED, NFDS },
	{ "overlapping memory table while a queue runs", S_RUNNING, running_mem_overlap, CLOSED, "File exists" },
	{ "ring size 3 for the running queue (stop, then refuse)", S_RUNNING, running_ring_size, CLOSED,
	  "size 3 is not a power of two" },
	{ "goes away while a queue runs", S_RUNNING, running_goes, PEER_CLOSES, GONE },
};

/* ---- running a case ---- */

static int connect_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	MUST(fd >= 0 && strlen(sock0) < sizeof(sa.sun_path), "socket");
	memcpy(sa.sun_path, sock0, strlen(sock0) + 1);
	MUST(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock0,
	     strerror(errno));
	return fd;
}

/* The well-behaved frontend's session, as QEMU's up to the first I/O. */
static struct hvn_vu_frontend *frontend(struct gq *q, char *why, size_t why_len)
{
	struct hvn_mem_region r;
	struct hvn_vu_frontend *fe = NULL;
	int err;

	err = hvn_vu_frontend_connect(&fe, sock0, NULL);
	if (err == 0)
		err = hvn_vu_frontend_set_features(fe, features);
	if (err == 0) {
		gmem_region(&ga, 0, &r);
		err = hvn_vu_frontend_set_mem_table(fe, &r, 1, 0);
	}
	if (err == 0)
		err = gq_start(fe, q);
	if (err) {
		snprintf(why, why_len, "session: %s", strerror(-err));
		hvn_vu_frontend_close(fe);
		return NULL;
	}
	if (gq_write_read(q, 8, 4096, 3, why, why_len) < 0) {
		uint32_t base;

		gq_stop(fe, q, &base);
		hvn_vu_frontend_close(fe);
		return NULL;
	}
	return fe;
}

static void setup(struct ctx *c, enum setup s)
{
	char why[256];

	switch (s) {
	case S_NONE:
		c->sock = connect_raw();
		return;
	case S_OWNER:
	case S_MEMORY:
		c->sock = connect_raw();
		msg_u64(c, VU_SET_PROTOCOL_FEATURES, PROTO_ALL, NULL, 0);
		msg(c, VU_SET_OWNER, NULL, 0, NULL, 0);
		if (s == S_MEMORY) {
			int fd = mfd(c, 1 << 20);

			add_mem_reg(c, VU_ADD_MEM_REG, region(0, 1 << 20, UADDR, 0), &fd, 1);
		}
		return;
	case S_OWNER_NOPROTO:
		c->sock = connect_raw();
		msg(c, VU_SET_OWNER, NULL, 0, NULL, 0);
		return;
	case S_RUNNING: {
		uint64_t v = EFD_TAG + c->n;

		c->q = qa;
		why[0] = '\0';
		c->fe = frontend(&c->q, why, sizeof(why));
		REQUIRE(c->fe, "a frontend runs a queue before turning hostile%s%s",
			why[0] ? ": " : "", why);
		c->sock = hvn_vu_frontend_fd(c->fe);
		/* The daemon never reads a kick eventfd (it polls it): what we
		 * write stays, and tags the daemon's copy for the census. */
		MUST(write(c->q.kick, &v, sizeof(v)) == sizeof(v), "tag the kick eventfd");
		return;
	}
	}
}

/* Wait for the daemon to close: 1 closed, 0 still open after ms. */
static int wait_closed(int sock, int ms)
{
	long long deadline = hvnd_now_ms() + ms;
	char buf[512];

	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN | POLLRDHUP };
		long long left = deadline - hvnd_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return 0;
		n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		/* Replies to the set-up's requests: read on. */
	}
}

static bool census_back(const struct fd_census *base, const char *tag, unsigned long long efd_tag,
			struct fd_census *now)
{
	long long deadline = hvnd_now_ms() + TIMEOUT_MS;

	do {
		if (fd_census(daemon_.pid, tag, efd_tag, now) == 0 && now->total == base->total &&
		    now->eventfds == base->eventfds && now->memfds == base->memfds &&
		    now->maps == base->maps && now->tagged == 0 && now->maps_tagged == 0)
			return true;
		usleep(5000);
	} while (hvnd_now_ms() < deadline);
	return false;
}

static void run_case(unsigned int n, const struct fcase *fc, const struct fd_census *base)
{
	struct ctx c;
	struct fd_census now;
	char line[512], why[256];
	int failed_before = t_failures, closed;
	long mark, case_mark;
	unsigned int i;

	printf("-- %u: %s --\n", n, fc->name);
	memset(&c, 0, sizeof(c));
	c.n = n;
	c.sock = -1;
	snprintf(c.tag, sizeof(c.tag), "hvn-hostile-%u-", n);
	mark = case_mark = hvnd_log_mark(&daemon_);

	setup(&c, fc->setup);
	fc->send(&c);
	/* Our copies: what is left open in the daemon now is its own. */
	for (i = 0; i < c.nfds; i++)
		close(c.fds[i]);

	switch (fc->ending) {
	case CLOSED:
		closed = wait_closed(c.sock, TIMEOUT_MS);
		CHECK(closed, "the daemon closed the connection");
		break;
	case STALLS:
		closed = wait_closed(c.sock, STALL_MS);
		CHECK(!closed, "the daemon waits for the rest of the message (%d ms)", STALL_MS);
		CHECK(load_progresses(2, TIMEOUT_MS), "meanwhile the other VM's disk serves I/O");
		break;
	case PEER_CLOSES:
		break;
	}
	if (c.fe) {
		hvn_vu_frontend_close(c.fe);	/* closes c.sock */
		gq_drop(&c.q);
	} else {
		close(c.sock);
	}

	{
		const char *needles[] = { "blk0#", ": closing: ", fc->why, NULL };
		bool found = hvnd_log_find(&daemon_, mark, needles, line, sizeof(line), TIMEOUT_MS);

		CHECK(found, "logged: %s", found ? strstr(line, "closing: ") : fc->why);
	}
	CHECK(hvnd_log_has(&daemon_, mark, "accepts a new one", NULL, 0, TIMEOUT_MS),
	      "the connection is freed");
	CHECK(census_back(base, c.tag, EFD_TAG + n, &now),
	      "every descriptor it carried is closed: %d fds (%d eventfds, %d memfds), %d memfd "
	      "mappings, %d of ours, %d of ours mapped", now.total, now.eventfds, now.memfds,
	      now.maps, now.tagged, now.maps_tagged);

	/* The device takes a new, well-behaved frontend, which does I/O. */
	{
		struct gq q = qa;
		struct hvn_vu_frontend *fe;
		uint32_t b;

		why[0] = '\0';
		mark = hvnd_log_mark(&daemon_);
		fe = frontend(&q, why, sizeof(why));
		CHECK(fe != NULL, "a new frontend is accepted and does I/O%s%s", why[0] ? ": " : "",
		      why);
		if (fe) {
			gq_stop(fe, &q, &b);
			hvn_vu_frontend_close(fe);
		}
		CHECK(hvnd_log_has(&daemon_, mark, "accepts a new one", NULL, 0, TIMEOUT_MS) &&
		      census_back(base, NULL, 0, &now), "and leaves nothing behind either");
	}
	CHECK(load_progresses(1, TIMEOUT_MS) && hvnd_running(&daemon_),
	      "the other VM's disk serves on; the daemon runs");
	if (t_failures != failed_before)
		hvnd_log_dump_from(&daemon_, case_mark);
}

/* Only one frontend at a time: a second one is refused, the first goes on. */
static void test_second_frontend(const struct fd_census *base)
{
	struct hvn_vu_frontend *fe;
	struct gq q = qa;
	struct fd_census now;
	char why[256] = "";
	long mark = hvnd_log_mark(&daemon_);
	struct ctx c = { .n = 999 };
	uint32_t b;

	printf("-- a second frontend while one is served --\n");
	fe = frontend(&q, why, sizeof(why));
	REQUIRE(fe, "the first frontend does I/O%s%s", why[0] ? ": " : "", why);
	c.sock = connect_raw();
	fds_get_features_8(&c);
	for (unsigned int i = 0; i < c.nfds; i++)
		close(c.fds[i]);
	CHECK(wait_closed(c.sock, TIMEOUT_MS), "the second is closed at once");
	close(c.sock);
	CHECK(hvnd_log_has(&daemon_, mark, "refusing a frontend", NULL, 0, TIMEOUT_MS),
	      "and the daemon says it refused it");
	CHECK(gq_write_read(&q, 16, 8192, 4, why, sizeof(why)) == 0, "the first does I/O on%s%s",
	      why[0] ? ": " : "", why);
	CHECK(gq_stop(fe, &q, &b) == 0, "and stops its queue");
	hvn_vu_frontend_close(fe);
	CHECK(hvnd_log_has(&daemon_, mark, "accepts a new one", NULL, 0, TIMEOUT_MS) &&
	      census_back(base, "hvn-hostile-999-", EFD_TAG + 999, &now),
	      "every descriptor is closed again");
}

/* ---- a frontend that never stops sending ---- */

static atomic_int flood_stop;
static atomic_ulong flood_bytes;

static void *flood_main(void *arg)
{
	static uint8_t buf[12 * 4096];
	int sock = *(int *)arg;
	size_t i;

	/* SET_OWNER after SET_OWNER: each one valid, none answered. */
	for (i = 0; i < sizeof(buf); i += sizeof(struct vu_hdr)) {
		struct vu_hdr h = { VU_SET_OWNER, VU_VERSION, 0 };

		memcpy(buf + i, &h, sizeof(h));
	}
	while (!atomic_load(&flood_stop)) {
		ssize_t n = send(sock, buf, sizeof(buf), MSG_NOSIGNAL);

		if (n <= 0)
			break;
		atomic_fetch_add(&flood_bytes, (unsigned long)n);
	}
	return NULL;
}

/*
 * One thread serves every device's vhost-user connection.  A frontend
 * that keeps its socket full must not keep it from the others: while one
 * floods blk0, a QEMU-like handshake on blk2 completes well within a
 * short per-request deadline, every time.
 */
static void test_flood(const struct fd_census *base)
{
	const struct hvn_vu_frontend_opts quick = { .timeout_ms = 2000 };
	struct fd_census now;
	struct ctx c = { .n = 998 };
	pthread_t t;
	long mark = hvnd_log_mark(&daemon_);
	long long worst = 0;
	int i, ok = 0;

	printf("-- a frontend that floods the daemon with messages --\n");
	c.sock = connect_raw();
	atomic_store(&flood_stop, 0);
	MUST(pthread_create(&t, NULL, flood_main, &c.sock) == 0, "flood thread");
	usleep(200000);
	for (i = 0; i < 8; i++) {
		struct hvn_vu_frontend *fe = NULL;
		long long t0 = hvnd_now_ms(), dt;
		int r = hvn_vu_frontend_connect(&fe, sock2, &quick);

		dt = hvnd_now_ms() - t0;
		worst = dt > worst ? dt : worst;
		ok += r == 0;
		if (r == 0)
			hvn_vu_frontend_close(fe);
		else
			printf("    handshake %d on blk2: %s after %lld ms\n", i, strerror(-r), dt);
		usleep(20000);
	}
	CHECK(ok == 8 && atomic_load(&flood_bytes) > 0, "meanwhile 8 of 8 handshakes on blk2 "
	      "completed within 2 s each (%d; the slowest took %lld ms; %lu bytes flooded)", ok,
	      worst, (unsigned long)atomic_load(&flood_bytes));
	CHECK(load_progresses(2, TIMEOUT_MS), "and the load on blk1 went on");
	atomic_store(&flood_stop, 1);
	shutdown(c.sock, SHUT_WR);	/* wakes a send blocked on a full socket */
	pthread_join(t, NULL);
	close(c.sock);
	CHECK(hvnd_log_has(&daemon_, mark, "blk0#", NULL, 0, TIMEOUT_MS) &&
	      hvnd_log_has(&daemon_, mark, "accepts a new one", NULL, 0, 3 * TIMEOUT_MS) &&
	      census_back(base, NULL, 0, &now), "once it goes, its connection is freed");
}

int main(void)
{
	char img0[128], img1[128], sock1[128], s0[320], s1[320], s2[320], why[256] = "";
	struct hvn_vu_frontend *fe_b;
	struct hvn_mem_region r;
	struct fd_census base;
	struct gq *const load[] = { &qb };
	unsigned int i;
	uint32_t b;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	hvnd_scratch(&daemon_, "hostile-fe");
	MUST(hvnd_image(&daemon_, "a.img", IMG_SIZE, img0, sizeof(img0)) == 0, "image a");
	MUST(hvnd_image(&daemon_, "b.img", IMG_SIZE, img1, sizeof(img1)) == 0, "image b");
	hvnd_path(&daemon_, "a.sock", sock0, sizeof(sock0));
	hvnd_path(&daemon_, "b.sock", sock1, sizeof(sock1));
	snprintf(s0, sizeof(s0), "blk,path=%s,socket=%s,queues=2", img0, sock0);
	snprintf(s1, sizeof(s1), "blk,path=%s,socket=%s", img1, sock1);
	hvnd_path(&daemon_, "c.sock", sock2, sizeof(sock2));
	snprintf(s2, sizeof(s2), "blk,null,size=1M,socket=%s", sock2);
	{
		const char *argv[] = { "-v", "--workers", "2", "--device", s0, "--device", s1,
				       "--device", s2, NULL };

		err = hvnd_start(&daemon_, NULL, argv, TIMEOUT_MS);
		if (err != 0)
			hvnd_log_dump_from(&daemon_, 0);
		REQUIRE(err == 0, "hvnotifyd starts with three devices: %d", err);
	}
	gmem_init(&ga);
	gmem_init(&gb);
	MUST(gmem_add(&ga, 0, 1 << 20, 0) == 0 && gmem_add(&gb, 0, 1 << 20, 0) == 0, "guest memory");

	/* The other VM, busy from start to end. */
	err = hvn_vu_frontend_connect(&fe_b, sock1, NULL);
	REQUIRE(err == 0, "VM B's frontend connects: %d", err);
	gmem_region(&gb, 0, &r);
	REQUIRE(hvn_vu_frontend_set_features(fe_b, features) == 0 &&
		hvn_vu_frontend_set_mem_table(fe_b, &r, 1, 0) == 0 && gq_start(fe_b, &qb) == 0,
		"VM B's queue starts");
	MUST(load_start(load, 1) == 0, "load");
	CHECK(load_progresses(3, TIMEOUT_MS), "VM B does I/O");

	/* What the daemon holds with VM B connected and blk0 idle. */
	REQUIRE(fd_census(daemon_.pid, NULL, 0, &base) == 0, "the daemon's descriptors: %d "
		"(%d eventfds, %d memfds), %d memfd mappings", base.total, base.eventfds,
		base.memfds, base.maps);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(i + 1, &cases[i], &base);
	test_second_frontend(&base);
	test_flood(&base);

	printf("-- the end --\n");
	CHECK(load_progresses(2, TIMEOUT_MS), "VM B still does I/O");
	load_stop();
	CHECK(atomic_load(&qb.bad) == 0, "VM B: %lu write+read rounds, all correct%s%s",
	      (unsigned long)atomic_load(&qb.ok), qb.why[0] ? ": " : "", qb.why);
	{
		uint64_t v;

		CHECK(read(qb.err, &v, sizeof(v)) < 0 && errno == EAGAIN,
		      "VM B's queue never broke");
	}
	{
		const char *needles[] = { "blk1#", "closing", NULL };

		CHECK(!hvnd_log_find(&daemon_, 0, needles, why, sizeof(why), 0),
		      "VM B's connection was never closed%s%s", why[0] ? ": " : "", why);
	}
	CHECK(gq_stop(fe_b, &qb, &b) == 0, "VM B stops its queue");
	hvn_vu_frontend_close(fe_b);
	err = hvnd_stop(&daemon_, TIMEOUT_MS);
	CHECK(err == 0, "hvnotifyd exits 0 on SIGTERM, every descriptor it opened closed (%d)", err);
	if (t_failures)
		hvnd_log_dump_from(&daemon_, 0);
	gmem_free(&ga);
	gmem_free(&gb);
	return t_done("daemon-hostile-frontend");
}
