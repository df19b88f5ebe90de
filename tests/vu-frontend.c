// SPDX-License-Identifier: MIT
/*
 * vu-frontend.c - the vhost-user frontend against a scripted backend over a
 * socketpair: the exact messages it sends (order, flags, payloads,
 * descriptors) for each negotiated feature set, and what it does with a
 * backend that lies, answers the wrong thing, hangs up, stays silent or
 * stops reading: an error (-EPROTO, -ECONNRESET, -ETIMEDOUT), never a
 * crash, a hang or a leaked descriptor.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "../lib/vu_proto.h"
#include "support/check.h"

#define F_VERSION_1	(UINT64_C(1) << 32)
#define F_LOG_ALL	(UINT64_C(1) << 26)
#define PF		HVN_VU_F_PROTOCOL_FEATURES
#define P_ALL		(HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_LOG_SHMFD |		\
			 HVN_VU_PROTOCOL_F_REPLY_ACK | HVN_VU_PROTOCOL_F_BACKEND_REQ |	\
			 HVN_VU_PROTOCOL_F_CONFIG | HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD |	\
			 HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS | HVN_VU_PROTOCOL_F_STATUS)
#define P_OURS		(HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK |		\
			 HVN_VU_PROTOCOL_F_CONFIG | HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
#define FLAGS		VU_VERSION
#define FLAGS_ACK	(VU_VERSION | VU_FLAG_NEED_REPLY)
#define BASE_ANSWER	1234u

/* Set-up that must work; silent unless it does not. */
#define MUST(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		exit(T_EXIT_FAIL);					\
	}								\
} while (0)

/* How the fake misbehaves when it sees request `on`. */
enum bad {
	GOOD,
	BAD_FLAGS,	/* reply with flags = arg */
	BAD_REQUEST,	/* reply for request arg */
	BAD_SIZE,	/* reply with payload size arg */
	HUGE_SIZE,	/* a header announcing more than any payload */
	WITH_FD,	/* a good reply, with a descriptor attached */
	HANG_UP,	/* close the socket */
	SILENT,		/* say nothing */
	PARTIAL,	/* the header only */
	VALUE,		/* a good reply carrying u64 arg */
	CFG_OFFSET,	/* GET_CONFIG echoing another offset */
	WRONG_INDEX,	/* GET_VRING_BASE for another queue */
	STRAY,		/* an extra reply to another request first */
	TWICE,		/* the reply twice, in one write */
	DEAF,		/* stop reading (and answering) from then on */
	IFL_NO_FD,	/* GET_INFLIGHT_FD: a region, without its descriptor */
	IFL_SHORT,	/* GET_INFLIGHT_FD: a file shorter than the region */
	IFL_NONE,	/* GET_INFLIGHT_FD: mmap_size 0, "no region" */
	IFL_NONE_FD,	/* GET_INFLIGHT_FD: mmap_size 0, and a descriptor */
};

struct rec {
	uint32_t request, flags, size;
	union vu_payload p;
	unsigned int nfds;
	ino_t ino;		/* of the first descriptor */
};

struct fake {
	int sock;
	pthread_t thread;
	uint64_t features, protocol, queues, slots;
	uint32_t on;		/* the request to misbehave on */
	enum bad bad;
	uint64_t arg;
	unsigned int n;
	struct rec log[256];
};

static struct hvn_vu_frontend_opts opts_ms(uint32_t ms)
{
	return (struct hvn_vu_frontend_opts){ .timeout_ms = ms };
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_raw(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	(void)!sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static void reply(struct fake *f, uint32_t request, uint32_t flags, const void *payload,
		  uint32_t size, int fd)
{
	struct {
		struct vu_hdr hdr;
		union vu_payload p;
	} __attribute__((packed)) m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = request;
	m.hdr.flags = flags;
	m.hdr.size = size;
	memcpy(&m.p, payload, size <= sizeof(m.p) ? size : sizeof(m.p));
	send_raw(f->sock, &m, sizeof(m.hdr) + (size <= sizeof(m.p) ? size : 0), fd);
}

/* What a correct backend answers; size 0 and no payload when nothing is due. */
static uint32_t answer(struct fake *f, const struct vu_msg *m, union vu_payload *p)
{
	memset(p, 0, sizeof(*p));
	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		p->u64 = f->features;
		return 8;
	case VU_GET_PROTOCOL_FEATURES:
		p->u64 = f->protocol;
		return 8;
	case VU_GET_QUEUE_NUM:
		p->u64 = f->queues;
		return 8;
	case VU_GET_MAX_MEM_SLOTS:
		p->u64 = f->slots;
		return 8;
	case VU_GET_VRING_BASE:
		p->state.index = m->payload.state.index;
		p->state.num = BASE_ANSWER;
		return 8;
	case VU_GET_INFLIGHT_FD:
		p->inflight = m->payload.inflight;
		p->inflight.mmap_size = (uint64_t)m->payload.inflight.num_queues *
					hvn_vq_inflight_size(m->payload.inflight.queue_size);
		p->inflight.mmap_offset = 0;
		return sizeof(p->inflight);
	case VU_GET_CONFIG: {
		uint32_t i;

		p->config = m->payload.config;
		for (i = 0; i < p->config.size && i < VU_CONFIG_MAX; i++)
			p->config.data[i] = (uint8_t)(p->config.offset + i);
		return m->hdr.size;
	}
	default:
		if (m->hdr.flags & VU_FLAG_NEED_REPLY)
			return 8;	/* u64 0: success */
		return 0;
	}
}

static bool has_reply(const struct vu_msg *m)
{
	switch (m->hdr.request) {
	case VU_GET_FEATURES: case VU_GET_PROTOCOL_FEATURES: case VU_GET_QUEUE_NUM:
	case VU_GET_MAX_MEM_SLOTS: case VU_GET_VRING_BASE: case VU_GET_CONFIG:
	case VU_GET_INFLIGHT_FD:
		return true;
	default:
		return (m->hdr.flags & VU_FLAG_NEED_REPLY) != 0;
	}
}

/* Handle one message; false: stop reading. */
static bool fake_handle(struct fake *f, const struct vu_msg *m)
{
	const uint32_t ok = VU_VERSION | VU_FLAG_REPLY;
	uint32_t req = m->hdr.request;
	union vu_payload p;
	uint32_t size = answer(f, m, &p);
	int efd;

	if (req == VU_GET_INFLIGHT_FD && (req != f->on || f->bad >= IFL_NO_FD)) {
		/* A region, as a backend makes it: a memfd of its size. */
		efd = memfd_create("fake-inflight", MFD_CLOEXEC);
		if (req == f->on && (f->bad == IFL_NONE || f->bad == IFL_NONE_FD))
			p.inflight.mmap_size = 0;
		if (ftruncate(efd, (off_t)(req == f->on && f->bad == IFL_SHORT ?
					   p.inflight.mmap_size / 2 : p.inflight.mmap_size)) < 0)
			p.inflight.mmap_size = 0;
		reply(f, req, ok, &p, size, (req == f->on && (f->bad == IFL_NO_FD ||
				f->bad == IFL_NONE)) ? -1 : efd);
		close(efd);
		return true;
	}
	if (req != f->on || f->bad == GOOD) {
		if (has_reply(m))
			reply(f, req, ok, &p, size, -1);
		return true;
	}
	switch (f->bad) {
	case GOOD:
		break;
	case BAD_FLAGS:
		reply(f, req, (uint32_t)f->arg, &p, size, -1);
		break;
	case BAD_REQUEST:
		reply(f, (uint32_t)f->arg, ok, &p, size, -1);
		break;
	case BAD_SIZE:
		reply(f, req, ok, &p, (uint32_t)f->arg, -1);
		break;
	case HUGE_SIZE:
		reply(f, req, ok, &p, 0x10000, -1);
		break;
	case WITH_FD:
		efd = eventfd(0, EFD_CLOEXEC);
		reply(f, req, ok, &p, size, efd);
		close(efd);
		break;
	case HANG_UP:
		shutdown(f->sock, SHUT_RDWR);
		return false;
	case SILENT:
		break;
	case PARTIAL: {
		struct vu_hdr h = { req, ok, 8 };

		send_raw(f->sock, &h, sizeof(h), -1);
		break;
	}
	case VALUE:
		p.u64 = f->arg;
		reply(f, req, ok, &p, 8, -1);
		break;
	case CFG_OFFSET:
		p.config.offset++;
		reply(f, req, ok, &p, size, -1);
		break;
	case WRONG_INDEX:
		p.state.index++;
		reply(f, req, ok, &p, size, -1);
		break;
	case STRAY:
		reply(f, VU_GET_QUEUE_NUM, ok, &p, 8, -1);
		reply(f, req, ok, &p, size, -1);
		break;
	case TWICE: {
		struct {
			struct vu_hdr hdr;
			uint64_t val;
		} __attribute__((packed)) two[2];

		/* One write, so the second is there before the frontend's next request. */
		two[0].hdr = (struct vu_hdr){ req, ok, 8 };
		memcpy(&two[0].val, &p, 8);
		two[1] = two[0];
		send_raw(f->sock, two, sizeof(two), -1);
		break;
	}
	case DEAF:
		return false;
	default:
		break;
	}
	return true;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct vu_reader rd;

	for (;;) {
		struct pollfd pfd = { .fd = f->sock, .events = POLLIN };
		struct rec *r;
		struct stat st;
		bool go_on;
		int n;

		vu_reader_init(&rd);
		while ((n = vu_msg_read(f->sock, &rd)) == 0)
			poll(&pfd, 1, -1);
		if (n < 0)
			break;	/* the frontend closed */
		if (f->n < sizeof(f->log) / sizeof(f->log[0])) {
			r = &f->log[f->n++];
			r->request = rd.msg.hdr.request;
			r->flags = rd.msg.hdr.flags;
			r->size = rd.msg.hdr.size;
			r->p = rd.msg.payload;
			r->nfds = rd.msg.nfds;
			r->ino = rd.msg.nfds && fstat(rd.msg.fds[0], &st) == 0 ? st.st_ino : 0;
		}
		go_on = fake_handle(f, &rd.msg);
		vu_msg_close_fds(&rd.msg);
		if (!go_on)
			break;
	}
	return NULL;
}

/* A fake offering features and protocol; *fd is the frontend's end. */
static void fake_start(struct fake *f, uint64_t features, uint64_t protocol, int *fd)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	f->features = features;
	f->protocol = protocol;
	f->queues = 4;
	f->slots = 16;
	MUST(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	f->sock = sv[1];
	*fd = sv[0];
	MUST(pthread_create(&f->thread, NULL, fake_main, f) == 0, "fake backend thread");
}

/* After the frontend's end is closed: the fake sees EOF and ends. */
static void fake_join(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->sock);
}

static struct hvn_vu_frontend *adopt(struct fake *f, uint64_t features, uint64_t protocol,
				     const struct hvn_vu_frontend_opts *o)
{
	struct hvn_vu_frontend *fe = NULL;
	int fd, r;

	fake_start(f, features, protocol, &fd);
	r = hvn_vu_frontend_adopt(&fe, fd, o);
	MUST(r == 0 && fe, "adopt: %d", r);
	return fe;
}

static void finish(struct fake *f, struct hvn_vu_frontend *fe)
{
	hvn_vu_frontend_close(fe);
	fake_join(f);
}

/* The fake logged request, with these flags, as message i. */
static bool logged(const struct fake *f, unsigned int i, uint32_t request, uint32_t flags)
{
	return i < f->n && f->log[i].request == request && f->log[i].flags == flags;
}

static void test_handshake(void)
{
	struct hvn_vu_frontend_opts o = {
		.protocol_disable = HVN_VU_PROTOCOL_F_REPLY_ACK | HVN_VU_PROTOCOL_F_MQ,
	};
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe;
	struct fake f;

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, NULL);
	CHECK(hvn_vu_frontend_info(fe, &info) == 0 && info.features == (F_VERSION_1 | PF) &&
	      info.protocol_offered == P_ALL && info.protocol_features == P_OURS &&
	      info.queues == 4 && info.max_mem_regions == 16,
	      "handshake: protocol %#llx of %#llx, %u queues, %u regions",
	      (unsigned long long)info.protocol_features, (unsigned long long)info.protocol_offered,
	      info.queues, info.max_mem_regions);
	CHECK(hvn_vu_frontend_fd(fe) >= 0, "the socket is there to poll for hang-ups");
	finish(&f, fe);
	CHECK(f.n == 6 && logged(&f, 0, VU_GET_FEATURES, FLAGS) &&
	      logged(&f, 1, VU_GET_PROTOCOL_FEATURES, FLAGS) &&
	      logged(&f, 2, VU_SET_PROTOCOL_FEATURES, FLAGS) && f.log[2].p.u64 == P_OURS &&
	      logged(&f, 3, VU_GET_QUEUE_NUM, FLAGS) &&
	      logged(&f, 4, VU_GET_MAX_MEM_SLOTS, FLAGS) && logged(&f, 5, VU_SET_OWNER, FLAGS_ACK),
	      "QEMU's realize sequence, SET_OWNER acknowledged (%u messages)", f.n);

	/* Without memory slots, or without REPLY_ACK (and so without slots). */
	fe = adopt(&f, F_VERSION_1 | PF, P_ALL & ~HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS, NULL);
	CHECK(hvn_vu_frontend_info(fe, &info) == 0 && info.max_mem_regions == 8,
	      "no CONFIGURE_MEM_SLOTS: SET_MEM_TABLE's 8 regions");
	finish(&f, fe);
	CHECK(f.n == 5 && logged(&f, 4, VU_SET_OWNER, FLAGS_ACK), "no GET_MAX_MEM_SLOTS");

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, &o);
	CHECK(hvn_vu_frontend_info(fe, &info) == 0 &&
	      info.protocol_features == HVN_VU_PROTOCOL_F_CONFIG && info.queues == 0,
	      "REPLY_ACK and MQ disabled: slots go too (%#llx)",
	      (unsigned long long)info.protocol_features);
	finish(&f, fe);
	CHECK(f.n == 4 && logged(&f, 2, VU_SET_PROTOCOL_FEATURES, FLAGS) &&
	      f.log[2].p.u64 == HVN_VU_PROTOCOL_F_CONFIG && logged(&f, 3, VU_SET_OWNER, FLAGS),
	      "no GET_QUEUE_NUM, nothing acknowledged");
}

/* A backend without protocol features: the oldest vhost-user. */
static void test_minimal_backend(void)
{
	struct hvn_vu_frontend_vring vr = { .num = 8, .kick_fd = -1, .call_fd = -1, .err_fd = -1 };
	struct hvn_mem_region reg = { .gpa = 0, .size = 4096, .uaddr = 0x10000 };
	struct hvn_vu_frontend_info info;
	struct hvn_vu_frontend *fe;
	struct fake f;
	uint8_t buf[4];
	uint32_t base = 0;
	unsigned int i;

	reg.fd = memfd_create("r", MFD_CLOEXEC);
	fe = adopt(&f, F_VERSION_1, 0, NULL);
	CHECK(hvn_vu_frontend_info(fe, &info) == 0 && info.protocol_features == 0 &&
	      info.protocol_offered == 0 && info.queues == 0 && info.max_mem_regions == 8,
	      "no protocol features");
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 4) == -EOPNOTSUPP, "no GET_CONFIG");
	CHECK(hvn_vu_frontend_set_config(fe, 0, buf, 4) == -EOPNOTSUPP, "no SET_CONFIG");
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EINVAL, "no queue before SET_FEATURES");
	CHECK(hvn_vu_frontend_set_features(fe, F_VERSION_1) == 0, "SET_FEATURES");
	CHECK(hvn_vu_frontend_set_mem_table(fe, &reg, 1, HVN_VU_MEM_USE_SLOTS) == -EOPNOTSUPP,
	      "no memory slots");
	CHECK(hvn_vu_frontend_set_mem_table(fe, &reg, 1, 0) == 0, "SET_MEM_TABLE");
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == 0, "start queue");
	CHECK(hvn_vu_frontend_stop_queue(fe, 0, &base) == 0 && base == BASE_ANSWER,
	      "stop queue: base %u", base);
	CHECK(hvn_vu_frontend_reset(fe) == 0, "reset");
	finish(&f, fe);
	i = 2;
	CHECK(logged(&f, 0, VU_GET_FEATURES, FLAGS) && logged(&f, 1, VU_SET_OWNER, FLAGS),
	      "handshake: GET_FEATURES, SET_OWNER");
	CHECK(logged(&f, i, VU_SET_FEATURES, FLAGS) && f.log[i].p.u64 == F_VERSION_1,
	      "SET_FEATURES without PROTOCOL_FEATURES");
	i++;
	CHECK(logged(&f, i, VU_SET_MEM_TABLE, FLAGS) && f.log[i].nfds == 1 &&
	      f.log[i].p.mem.nregions == 1 && f.log[i].p.mem.regions[0].uaddr == 0x10000 &&
	      logged(&f, i + 1, VU_GET_FEATURES, FLAGS),
	      "SET_MEM_TABLE, then GET_FEATURES so that it is known to be done");
	i += 2;
	CHECK(logged(&f, i, VU_SET_VRING_NUM, FLAGS) && logged(&f, i + 1, VU_SET_VRING_BASE, FLAGS) &&
	      logged(&f, i + 2, VU_SET_VRING_ADDR, FLAGS) &&
	      logged(&f, i + 3, VU_SET_VRING_CALL, FLAGS) &&
	      logged(&f, i + 4, VU_SET_VRING_ERR, FLAGS) &&
	      logged(&f, i + 5, VU_SET_VRING_KICK, FLAGS) &&
	      logged(&f, i + 6, VU_GET_VRING_BASE, FLAGS),
	      "rings start enabled without PROTOCOL_FEATURES: no SET_VRING_ENABLE");
	i += 7;
	CHECK(logged(&f, i, VU_RESET_OWNER, FLAGS) && logged(&f, i + 1, VU_GET_FEATURES, FLAGS) &&
	      f.n == i + 2, "RESET_OWNER, synchronised (%u messages)", f.n);
	close(reg.fd);
}

static void test_features(void)
{
	struct hvn_vu_frontend *fe;
	struct fake f;

	fe = adopt(&f, F_VERSION_1 | PF | F_LOG_ALL | 2, P_ALL, NULL);
	CHECK(hvn_vu_frontend_set_features(fe, F_VERSION_1 | 4) == -EINVAL,
	      "acking a feature not offered: -EINVAL");
	CHECK(hvn_vu_frontend_set_features(fe, F_VERSION_1 | F_LOG_ALL) == -EOPNOTSUPP,
	      "LOG_ALL (no dirty logging here): -EOPNOTSUPP");
	CHECK(hvn_vu_frontend_set_features(fe, F_VERSION_1 | 2) == 0, "SET_FEATURES");
	finish(&f, fe);
	CHECK(f.n == 7 && logged(&f, 6, VU_SET_FEATURES, FLAGS_ACK) &&
	      f.log[6].p.u64 == (F_VERSION_1 | 2 | PF),
	      "one SET_FEATURES, with PROTOCOL_FEATURES added, acknowledged");
}

static struct hvn_mem_region region(uint64_t gpa, int fd)
{
	return (struct hvn_mem_region){ .gpa = gpa, .size = 0x1000, .uaddr = 0x7f0000000000 + gpa,
					.mmap_offset = gpa, .fd = fd };
}

static ino_t ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void test_mem(void)
{
	int fa = memfd_create("a", MFD_CLOEXEC), fb = memfd_create("b", MFD_CLOEXEC);
	int fb2 = memfd_create("b2", MFD_CLOEXEC), fc = memfd_create("c", MFD_CLOEXEC);
	struct hvn_mem_region t[20], a = region(0, fa), b = region(0x10000, fb);
	struct hvn_mem_region b2 = region(0x10000, fb2), c = region(0x20000, fc);
	struct hvn_vu_frontend *fe;
	struct fake f;
	unsigned int i;
	int r;

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, NULL);	/* 6 messages, 16 slots */
	t[0] = a;
	t[1] = b;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 2, 0) == 0, "table {a, b}");
	t[0] = b;
	t[1] = c;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 2, 0) == 0, "table {b, c}");
	t[0] = b2;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 2, 0) == 0, "table {b', c}: b from another file");
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 2, 0) == 0, "the same table again");
	f.on = VU_ADD_MEM_REG;
	f.bad = VALUE;
	f.arg = 1;
	t[2] = a;
	r = hvn_vu_frontend_set_mem_table(fe, t, 3, 0);
	CHECK(r == -EIO, "ADD_MEM_REG refused by the backend: %d", r);
	f.bad = GOOD;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 3, 0) == 0, "retried: {b', c, a}");
	CHECK(hvn_vu_frontend_set_mem_table(fe, &c, 1, HVN_VU_MEM_USE_TABLE) == 0,
	      "SET_MEM_TABLE forced: {c}");
	CHECK(hvn_vu_frontend_set_mem_table(fe, NULL, 0, 0) == 0, "no memory at all");
	for (i = 0; i < 17; i++)
		t[i] = region(0x10000ull * i, fa);
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 17, 0) == -ENOSPC, "17 regions for 16 slots");
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 9, HVN_VU_MEM_USE_TABLE) == -E2BIG,
	      "9 regions in SET_MEM_TABLE");
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 0, HVN_VU_MEM_USE_TABLE) == -EINVAL,
	      "an empty SET_MEM_TABLE");
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 1, HVN_VU_MEM_USE_TABLE |
					    HVN_VU_MEM_USE_SLOTS) == -EINVAL, "both flags");
	t[0].fd = -1;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 1, 0) == -EBADF, "fd -1");
	t[0].fd = 1000;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 1, 0) == -EBADF, "an fd that is not open");
	t[0].fd = fa;
	t[0].size = 0;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 1, 0) == -EINVAL, "size 0");
	t[0].size = 2;
	t[0].gpa = UINT64_MAX;
	CHECK(hvn_vu_frontend_set_mem_table(fe, t, 1, 0) == -EINVAL, "a range that wraps");
	finish(&f, fe);

	i = 6;
	CHECK(logged(&f, i, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i].nfds == 1 &&
	      f.log[i].ino == ino(fa) && f.log[i].p.mem_single.region.gpa == 0 &&
	      logged(&f, i + 1, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i + 1].ino == ino(fb) &&
	      f.log[i + 1].p.mem_single.region.gpa == 0x10000 &&
	      f.log[i + 1].p.mem_single.region.uaddr == 0x7f0000010000 &&
	      f.log[i + 1].p.mem_single.region.mmap_offset == 0x10000 &&
	      f.log[i + 1].p.mem_single.region.size == 0x1000,
	      "{a, b}: ADD_MEM_REG a, ADD_MEM_REG b, each with its fd");
	i += 2;
	CHECK(logged(&f, i, VU_REM_MEM_REG, FLAGS_ACK) && f.log[i].nfds == 0 &&
	      f.log[i].p.mem_single.region.gpa == 0 &&
	      logged(&f, i + 1, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i + 1].ino == ino(fc),
	      "{b, c}: REM_MEM_REG a first, then ADD_MEM_REG c; b untouched");
	i += 2;
	CHECK(logged(&f, i, VU_REM_MEM_REG, FLAGS_ACK) && f.log[i].p.mem_single.region.gpa == 0x10000 &&
	      logged(&f, i + 1, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i + 1].ino == ino(fb2),
	      "{b', c}: the same range from another file is removed and added");
	i += 2;
	CHECK(logged(&f, i, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i].ino == ino(fa) &&
	      logged(&f, i + 1, VU_ADD_MEM_REG, FLAGS_ACK) && f.log[i + 1].ino == ino(fa),
	      "the same table sends nothing; a refused ADD_MEM_REG is sent again");
	i += 2;
	CHECK(logged(&f, i, VU_SET_MEM_TABLE, FLAGS_ACK) && f.log[i].nfds == 1 &&
	      f.log[i].ino == ino(fc) && f.log[i].p.mem.nregions == 1 &&
	      f.log[i].size == 8 + 32, "SET_MEM_TABLE {c}: one region, one fd, no GET_FEATURES");
	i++;
	CHECK(logged(&f, i, VU_REM_MEM_REG, FLAGS_ACK) && f.log[i].p.mem_single.region.gpa == 0x20000,
	      "no memory: REM_MEM_REG c");
	CHECK(f.n == i + 1, "nothing sent for refused tables (%u messages)", f.n);
	close(fa);
	close(fb);
	close(fb2);
	close(fc);
}

static void test_queue(void)
{
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int err = eventfd(0, EFD_CLOEXEC);
	struct hvn_vu_frontend_vring vr = {
		.num = 256, .base = 7, .kick_fd = kick, .call_fd = call, .err_fd = err,
		.addr = { .desc = 0x1000, .avail = 0x2000, .used = 0x3000, .log = 0x4000 },
	};
	struct hvn_vu_frontend *fe;
	struct fake f;
	uint32_t base = 0;
	unsigned int i;
	int r;

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, NULL);
	CHECK(hvn_vu_frontend_set_features(fe, F_VERSION_1) == 0, "SET_FEATURES");
	CHECK(hvn_vu_frontend_start_queue(fe, 1, &vr) == 0, "start queue 1");
	CHECK(hvn_vu_frontend_stop_queue(fe, 1, &base) == 0 && base == BASE_ANSWER,
	      "stop queue 1: base %u", base);
	CHECK(fcntl(kick, F_GETFD) >= 0 && fcntl(call, F_GETFD) >= 0 && fcntl(err, F_GETFD) >= 0,
	      "the caller's eventfds are still the caller's");
	CHECK(hvn_vu_frontend_set_vring_call(fe, 3, -1) == 0, "SET_VRING_CALL without fd");
	CHECK(hvn_vu_frontend_set_vring_call(fe, 4, call) == -EINVAL, "queue 4 of 4: -EINVAL");
	CHECK(hvn_vu_frontend_stop_queue(fe, 4, NULL) == -EINVAL, "stop queue 4 of 4: -EINVAL");
	vr.kick_fd = 1000;
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EBADF, "a kick fd that is not open");
	vr.kick_fd = -2;
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EBADF, "a kick fd of -2");
	vr.kick_fd = kick;
	vr.addr.flags = HVN_VQ_ADDR_GPA;
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EINVAL, "guest-physical ring addresses");
	vr.addr.flags = 0;
	vr.num = 0;
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EINVAL, "ring size 0");
	vr.num = 65536;
	CHECK(hvn_vu_frontend_start_queue(fe, 0, &vr) == -EINVAL, "ring size 65536");
	vr.num = 8;
	vr.kick_fd = -1;
	r = hvn_vu_frontend_start_queue(fe, 0, &vr);
	CHECK(r == 0, "start queue 0 without a kick fd: %d", r);
	finish(&f, fe);

	i = 7;
	CHECK(logged(&f, i, VU_SET_VRING_NUM, FLAGS_ACK) && f.log[i].p.state.index == 1 &&
	      f.log[i].p.state.num == 256, "SET_VRING_NUM 1, 256");
	CHECK(logged(&f, i + 1, VU_SET_VRING_BASE, FLAGS_ACK) && f.log[i + 1].p.state.index == 1 &&
	      f.log[i + 1].p.state.num == 7, "SET_VRING_BASE 1, 7");
	CHECK(logged(&f, i + 2, VU_SET_VRING_ADDR, FLAGS_ACK) && f.log[i + 2].p.addr.index == 1 &&
	      f.log[i + 2].p.addr.flags == 0 && f.log[i + 2].p.addr.desc == 0x1000 &&
	      f.log[i + 2].p.addr.avail == 0x2000 && f.log[i + 2].p.addr.used == 0x3000 &&
	      f.log[i + 2].p.addr.log == 0x4000, "SET_VRING_ADDR");
	CHECK(logged(&f, i + 3, VU_SET_VRING_CALL, FLAGS_ACK) && f.log[i + 3].p.u64 == 1 &&
	      f.log[i + 3].nfds == 1 && f.log[i + 3].ino == ino(call) &&
	      logged(&f, i + 4, VU_SET_VRING_ERR, FLAGS_ACK) && f.log[i + 4].ino == ino(err) &&
	      logged(&f, i + 5, VU_SET_VRING_KICK, FLAGS_ACK) && f.log[i + 5].ino == ino(kick),
	      "call and error fds before the kick fd");
	CHECK(logged(&f, i + 6, VU_SET_VRING_ENABLE, FLAGS_ACK) && f.log[i + 6].p.state.num == 1,
	      "SET_VRING_ENABLE 1 last");
	i += 7;
	CHECK(logged(&f, i, VU_SET_VRING_ENABLE, FLAGS_ACK) && f.log[i].p.state.num == 0 &&
	      logged(&f, i + 1, VU_GET_VRING_BASE, FLAGS) && f.log[i + 1].p.state.index == 1,
	      "stop: SET_VRING_ENABLE 0, then GET_VRING_BASE");
	i += 2;
	CHECK(logged(&f, i, VU_SET_VRING_CALL, FLAGS_ACK) &&
	      f.log[i].p.u64 == (3 | VU_VRING_NOFD_MASK) && f.log[i].nfds == 0,
	      "SET_VRING_CALL 3 with the no-fd bit");
	i++;
	CHECK(logged(&f, i + 5, VU_SET_VRING_KICK, FLAGS_ACK) &&
	      f.log[i + 5].p.u64 == VU_VRING_NOFD_MASK && f.log[i + 5].nfds == 0 &&
	      f.n == i + 7, "refused starts sent nothing; no kick fd: the no-fd bit");
	close(kick);
	close(call);
	close(err);
}

static void test_config(void)
{
	struct hvn_vu_frontend *fe;
	uint8_t buf[300];
	struct fake f;
	unsigned int i;
	bool ok = true;
	int r;

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, NULL);
	r = hvn_vu_frontend_get_config(fe, 4, buf, 8);
	for (i = 0; i < 8; i++)
		ok &= buf[i] == 4 + i;
	CHECK(r == 0 && ok, "GET_CONFIG 8 bytes at 4: %d", r);
	buf[0] = 0x42;
	CHECK(hvn_vu_frontend_set_config(fe, 32, buf, 1) == 0, "SET_CONFIG 1 byte at 32");
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 0) == -EINVAL, "0 bytes");
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 257) == -EINVAL, "257 bytes");
	CHECK(hvn_vu_frontend_get_config(fe, UINT32_MAX, buf, 2) == -EINVAL, "offset wraps");
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 256) == 0, "256 bytes");
	finish(&f, fe);
	CHECK(logged(&f, 6, VU_GET_CONFIG, FLAGS) && f.log[6].size == 12 + 8 &&
	      f.log[6].p.config.offset == 4 && f.log[6].p.config.size == 8 &&
	      f.log[6].p.config.flags == 0, "GET_CONFIG {4, 8, 0} + 8 bytes");
	CHECK(logged(&f, 7, VU_SET_CONFIG, FLAGS_ACK) && f.log[7].size == 13 &&
	      f.log[7].p.config.offset == 32 && f.log[7].p.config.data[0] == 0x42,
	      "SET_CONFIG {32, 1, 0} 0x42, acknowledged");
	CHECK(f.n == 9, "refused requests sent nothing (%u messages)", f.n);
}

/* Adopt against a fake that misbehaves on `on`; returns adopt's result. */
static int adopt_bad(uint32_t on, enum bad bad, uint64_t arg, uint32_t ms, int64_t *took)
{
	struct hvn_vu_frontend_opts o = opts_ms(ms);
	struct hvn_vu_frontend *fe = NULL;
	struct fake f;
	int64_t t0;
	int fd, r;

	fake_start(&f, F_VERSION_1 | PF, P_ALL, &fd);
	f.on = on;
	f.bad = bad;
	f.arg = arg;
	t0 = now_ms();
	r = hvn_vu_frontend_adopt(&fe, fd, &o);
	if (took)
		*took = now_ms() - t0;
	if (r == 0) {
		hvn_vu_frontend_close(fe);
	} else {
		MUST(fcntl(fd, F_GETFD) >= 0, "the fd is still the caller's after a failed adopt");
		close(fd);
	}
	fake_join(&f);
	return r;
}

/* A failed adopt leaves the fd open, to the caller (checked in adopt_bad). */
static void test_bad_replies(void)
{
	int64_t took;
	int r;

	r = adopt_bad(VU_GET_FEATURES, BAD_FLAGS, VU_VERSION, 1000, NULL);
	CHECK(r == -EPROTO, "reply without the REPLY flag: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_FLAGS, VU_VERSION | VU_FLAG_REPLY | VU_FLAG_NEED_REPLY,
		      1000, NULL);
	CHECK(r == -EPROTO, "reply with NEED_REPLY too: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_FLAGS, 2 | VU_FLAG_REPLY, 1000, NULL);
	CHECK(r == -EPROTO, "reply of protocol version 2: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_REQUEST, VU_SET_FEATURES, 1000, NULL);
	CHECK(r == -EPROTO, "reply to another request: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_SIZE, 4, 1000, NULL);
	CHECK(r == -EPROTO, "u64 reply of 4 bytes: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_SIZE, 16, 1000, NULL);
	CHECK(r == -EPROTO, "u64 reply of 16 bytes: %d", r);
	r = adopt_bad(VU_GET_FEATURES, BAD_SIZE, 0, 1000, NULL);
	CHECK(r == -EPROTO, "u64 reply of 0 bytes: %d", r);
	r = adopt_bad(VU_GET_FEATURES, HUGE_SIZE, 0, 1000, NULL);
	CHECK(r == -EPROTO, "reply announcing 64 KiB: %d", r);
	r = adopt_bad(VU_GET_FEATURES, WITH_FD, 0, 1000, NULL);
	CHECK(r == -EPROTO, "reply carrying a descriptor: %d", r);
	r = adopt_bad(VU_GET_FEATURES, STRAY, 0, 1000, NULL);
	CHECK(r == -EPROTO, "an unasked reply before the answer: %d", r);
	r = adopt_bad(VU_GET_FEATURES, HANG_UP, 0, 1000, NULL);
	CHECK(r == -ECONNRESET, "backend hangs up: %d", r);
	r = adopt_bad(VU_GET_FEATURES, SILENT, 0, 300, &took);
	CHECK(r == -ETIMEDOUT && took >= 290 && took < 2000,
	      "silent backend: %d after %lld ms (timeout 300)", r, (long long)took);
	r = adopt_bad(VU_GET_PROTOCOL_FEATURES, PARTIAL, 0, 300, &took);
	CHECK(r == -ETIMEDOUT && took >= 290 && took < 2000,
	      "header without its payload: %d after %lld ms", r, (long long)took);
	r = adopt_bad(VU_GET_QUEUE_NUM, VALUE, 0, 1000, NULL);
	CHECK(r == -EPROTO, "GET_QUEUE_NUM 0: %d", r);
	r = adopt_bad(VU_GET_QUEUE_NUM, VALUE, 1u << 20, 1000, NULL);
	CHECK(r == -EPROTO, "GET_QUEUE_NUM 2^20: %d", r);
	r = adopt_bad(VU_GET_MAX_MEM_SLOTS, VALUE, 0, 1000, NULL);
	CHECK(r == -EPROTO, "GET_MAX_MEM_SLOTS 0: %d", r);
	r = adopt_bad(VU_SET_OWNER, VALUE, 1, 1000, NULL);
	CHECK(r == -EIO, "SET_OWNER refused (REPLY_ACK 1): %d", r);
	r = adopt_bad(VU_SET_OWNER, BAD_SIZE, 4, 1000, NULL);
	CHECK(r == -EPROTO, "an acknowledgement of 4 bytes: %d", r);
}

/* A connected frontend meeting a bad reply to request on. */
static struct hvn_vu_frontend *bad_later(struct fake *f, uint32_t on, enum bad bad, uint64_t arg)
{
	struct hvn_vu_frontend_opts o = opts_ms(300);
	struct hvn_vu_frontend *fe = adopt(f, F_VERSION_1 | PF, P_ALL, &o);

	f->on = on;
	f->bad = bad;
	f->arg = arg;
	return fe;
}

static void test_bad_later(void)
{
	struct hvn_vu_frontend *fe;
	uint8_t buf[16];
	uint32_t base;
	struct fake f;
	int r;

	fe = bad_later(&f, VU_SET_FEATURES, VALUE, 1);
	r = hvn_vu_frontend_set_features(fe, F_VERSION_1);
	CHECK(r == -EIO, "SET_FEATURES refused: %d", r);
	f.bad = GOOD;
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 16) == 0, "and the connection goes on");
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_CONFIG, BAD_SIZE, 0);
	r = hvn_vu_frontend_get_config(fe, 0, buf, 16);
	CHECK(r == -EIO, "GET_CONFIG answered with nothing (libvhost-user's error): %d", r);
	f.bad = GOOD;
	CHECK(hvn_vu_frontend_get_config(fe, 0, buf, 16) == 0, "and the connection goes on");
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_CONFIG, BAD_SIZE, 12 + 8);
	r = hvn_vu_frontend_get_config(fe, 0, buf, 16);
	CHECK(r == -EPROTO, "GET_CONFIG answered with 8 bytes for 16: %d", r);
	f.bad = GOOD;
	r = hvn_vu_frontend_get_config(fe, 0, buf, 16);
	CHECK(r == -ENOTCONN, "then the connection is refused: %d", r);
	r = hvn_vu_frontend_set_features(fe, F_VERSION_1);
	CHECK(r == -ENOTCONN, "for every request: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_CONFIG, CFG_OFFSET, 0);
	r = hvn_vu_frontend_get_config(fe, 0, buf, 16);
	CHECK(r == -EPROTO, "GET_CONFIG answered for another offset: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_VRING_BASE, WRONG_INDEX, 0);
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == -EPROTO, "GET_VRING_BASE answered for another queue: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_VRING_BASE, SILENT, 0);
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == -ETIMEDOUT, "GET_VRING_BASE never answered: %d", r);
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == -ENOTCONN, "a late answer is never taken for the next one: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_VRING_BASE, TWICE, 0);
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == 0 && base == BASE_ANSWER, "GET_VRING_BASE answered twice: the first is taken");
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == -EPROTO, "the second is never taken for the next answer: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_SET_FEATURES, TWICE, 0);
	r = hvn_vu_frontend_set_features(fe, F_VERSION_1);
	CHECK(r == 0, "an acknowledgement twice: the first is taken");
	r = hvn_vu_frontend_set_vring_call(fe, 0, -1);
	CHECK(r == -EPROTO, "the second breaks the connection: %d", r);
	finish(&f, fe);

	fe = bad_later(&f, VU_GET_VRING_BASE, HANG_UP, 0);
	r = hvn_vu_frontend_stop_queue(fe, 0, &base);
	CHECK(r == -ECONNRESET, "backend gone during a stop: %d", r);
	finish(&f, fe);
}

/*
 * A backend that stops reading: sends fill the socket, then time out.  The
 * timeout also bounds the fake's answers during the handshake, which on a
 * loaded machine (make -j, other jobs) took longer than 200 ms: 1 s.
 */
static void test_deaf_backend(void)
{
	struct hvn_vu_frontend_opts o = {
		.timeout_ms = 1000, .protocol_disable = HVN_VU_PROTOCOL_F_REPLY_ACK,
	};
	struct hvn_vu_frontend *fe;
	struct fake f;
	int64_t t0 = now_ms();
	int i, r = 0;

	fe = adopt(&f, F_VERSION_1 | PF, P_ALL, &o);
	f.on = VU_SET_VRING_CALL;
	f.bad = DEAF;
	for (i = 0; i < 1000000 && r == 0; i++)
		r = hvn_vu_frontend_set_vring_call(fe, 0, -1);
	CHECK(r == -ETIMEDOUT, "unread messages: -ETIMEDOUT after %d sends, %lld ms (%d)", i,
	      (long long)(now_ms() - t0), r);
	CHECK(hvn_vu_frontend_set_vring_call(fe, 0, -1) == -ENOTCONN, "then -ENOTCONN");
	finish(&f, fe);
}

/* INFLIGHT_SHMFD: asked for, sent as QEMU sends it, replies checked. */
static void test_inflight(void)
{
	struct hvn_vu_frontend_opts o = { .flags = HVN_VU_FRONTEND_F_INFLIGHT };
	struct hvn_vu_frontend_info info;
	struct hvn_vu_inflight inf = { .fd = -1 }, bad;
	struct hvn_vu_frontend *fe;
	struct stat st, st2;
	struct fake f;
	int before = open_fds(), r;
	static const struct {
		enum bad bad;
		int expect;
		bool stays;
		const char *what;
	} lies[] = {
		{ IFL_NO_FD, -EPROTO, false, "a region without its descriptor" },
		{ IFL_NONE_FD, -EPROTO, false, "no region, with a descriptor" },
		{ IFL_SHORT, -EPROTO, true, "a file shorter than the region" },
		{ IFL_NONE, -EOPNOTSUPP, true, "no region (mmap_size 0)" },
	};
	unsigned int k;

	/* Offered, but not asked for: never negotiated (a libvhost-user
	 * backend would then refuse to start queues without a region). */
	fe = adopt(&f, PF | F_VERSION_1, P_ALL, NULL);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
	CHECK(!(info.protocol_features & HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD),
	      "INFLIGHT_SHMFD offered but not asked for: not negotiated");
	CHECK(hvn_vu_frontend_get_inflight(fe, 1, 128, &inf) == -EOPNOTSUPP,
	      "get_inflight without it -> EOPNOTSUPP");
	finish(&f, fe);

	fe = adopt(&f, PF | F_VERSION_1, P_ALL, &o);
	REQUIRE(hvn_vu_frontend_info(fe, &info) == 0, "info");
	CHECK(info.protocol_features & HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD,
	      "asked for: INFLIGHT_SHMFD negotiated");
	CHECK(hvn_vu_frontend_get_inflight(fe, 0, 128, &inf) == -EINVAL &&
	      hvn_vu_frontend_get_inflight(fe, 2, 0, &inf) == -EINVAL &&
	      hvn_vu_frontend_get_inflight(fe, 2, 70000, &inf) == -EINVAL &&
	      hvn_vu_frontend_get_inflight(fe, 2, 64, NULL) == -EINVAL, "get_inflight: bad arguments");
	f.n = 0;
	r = hvn_vu_frontend_get_inflight(fe, 2, 64, &inf);
	CHECK(r == 0 && inf.fd >= 0 && inf.mmap_size == 2 * hvn_vq_inflight_size(64) &&
	      inf.mmap_offset == 0 && inf.num_queues == 2 && inf.queue_size == 64,
	      "GET_INFLIGHT_FD 2 queues of 64: %llu bytes, fd %d (%d)",
	      (unsigned long long)inf.mmap_size, inf.fd, r);
	CHECK(logged(&f, 0, VU_GET_INFLIGHT_FD, FLAGS) && f.log[0].size == 24 &&
	      f.log[0].p.inflight.num_queues == 2 && f.log[0].p.inflight.queue_size == 64 &&
	      f.log[0].nfds == 0, "sent as QEMU sends it: no NEED_REPLY, 24 bytes, no descriptor");
	REQUIRE(inf.fd >= 0 && fstat(inf.fd, &st) == 0, "the region's fd");
	bad = inf;
	bad.reserved0 = 1;
	CHECK(hvn_vu_frontend_set_inflight(fe, &bad) == -EINVAL, "set_inflight: reserved field");
	bad = inf;
	bad.fd = 1000;
	CHECK(hvn_vu_frontend_set_inflight(fe, &bad) == -EBADF, "set_inflight: bad fd");
	f.n = 0;
	CHECK(hvn_vu_frontend_set_inflight(fe, &inf) == 0, "SET_INFLIGHT_FD");
	CHECK(logged(&f, 0, VU_SET_INFLIGHT_FD, FLAGS_ACK) && f.log[0].nfds == 1 &&
	      f.log[0].ino == st.st_ino && f.log[0].p.inflight.mmap_size == inf.mmap_size &&
	      f.log[0].p.inflight.num_queues == 2 && f.log[0].p.inflight.queue_size == 64,
	      "sent with the region's descriptor (a copy: the caller keeps its own)");
	CHECK(fstat(inf.fd, &st2) == 0, "the caller's fd is still open");
	finish(&f, fe);

	for (k = 0; k < sizeof(lies) / sizeof(lies[0]); k++) {
		struct hvn_vu_inflight got = { .fd = -1 };

		fe = adopt(&f, PF | F_VERSION_1, P_ALL, &o);
		f.on = VU_GET_INFLIGHT_FD;
		f.bad = lies[k].bad;
		r = hvn_vu_frontend_get_inflight(fe, 1, 128, &got);
		CHECK(r == lies[k].expect && got.fd == -1, "a backend that answers %s -> %d (%d)",
		      lies[k].what, lies[k].expect, r);
		f.bad = GOOD;
		r = hvn_vu_frontend_set_features(fe, F_VERSION_1);
		CHECK(lies[k].stays ? r == 0 : r == -ENOTCONN, "  and the connection %s (%d)",
		      lies[k].stays ? "stays usable" : "is broken", r);
		finish(&f, fe);
	}
	close(inf.fd);
	CHECK(open_fds() == before, "no descriptor left open");
}

static void test_args(void)
{
	struct hvn_vu_frontend_opts o = { .flags = HVN_VU_FRONTEND_F_INFLIGHT << 1 };
	struct hvn_vu_frontend *fe = NULL;
	char path[200];
	int fd, sv[2];

	CHECK(hvn_vu_frontend_connect(NULL, "/x", NULL) == -EINVAL, "connect: no fep");
	CHECK(hvn_vu_frontend_connect(&fe, "", NULL) == -EINVAL, "connect: empty path");
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	CHECK(hvn_vu_frontend_connect(&fe, path, NULL) == -ENAMETOOLONG, "connect: long path");
	CHECK(hvn_vu_frontend_connect(&fe, "/nonexistent/hvn.sock", NULL) == -ENOENT,
	      "connect: no such socket");
	CHECK(hvn_vu_frontend_connect(&fe, "/x", &o) == -EINVAL, "connect: unknown flags");
	CHECK(hvn_vu_frontend_adopt(&fe, -1, NULL) == -EBADF, "adopt: fd -1");
	fd = eventfd(0, EFD_CLOEXEC);
	CHECK(hvn_vu_frontend_adopt(&fe, fd, NULL) == -ENOTSOCK, "adopt: not a socket");
	close(fd);
	REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0, "datagram pair");
	CHECK(hvn_vu_frontend_adopt(&fe, sv[0], NULL) == -EINVAL, "adopt: not a stream");
	close(sv[0]);
	close(sv[1]);
	CHECK(fe == NULL, "nothing made");
	hvn_vu_frontend_close(NULL);
	CHECK(hvn_vu_frontend_fd(NULL) == -EINVAL, "fd(NULL)");
}

int main(void)
{
	int before = open_fds();

	setvbuf(stdout, NULL, _IOLBF, 0);
	test_inflight();
	test_args();
	test_handshake();
	test_minimal_backend();
	test_features();
	test_mem();
	test_queue();
	test_config();
	test_bad_replies();
	test_bad_later();
	test_deaf_backend();
	CHECK(open_fds() == before, "no descriptor leaked (%d open, %d before)", open_fds(), before);
	return t_done("vu-frontend");
}
