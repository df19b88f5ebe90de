// SPDX-License-Identifier: MIT
/*
 * vu-msg.c - the vhost-user message reader and checker over a real unix
 * socket pair: messages split across writes, descriptors kept with their
 * message, and every malformed message refused with no descriptor left
 * open (counted in /proc/self/fd).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/vu_proto.h"
#include "support/check.h"

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

/* Send raw bytes with optional descriptors, as a hostile peer would. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	REQUIRE(sendmsg(sock, &mh, 0) == (ssize_t)len, "sendmsg %zu bytes, %d fds", len, nfds);
}

static int read_one(int sock, struct vu_reader *rd)
{
	vu_reader_init(rd);
	return vu_msg_read(sock, rd);
}

static void test_roundtrip(int a, int b)
{
	struct vu_reader rd;
	struct vu_msg m;
	const char *why;
	int efd = eventfd(0, EFD_CLOEXEC), r;

	memset(&m, 0, sizeof(m));
	m.hdr.request = VU_SET_VRING_KICK;
	m.hdr.flags = VU_VERSION;
	m.hdr.size = sizeof(uint64_t);
	m.payload.u64 = 1;
	m.fds[0] = efd;
	m.nfds = 1;
	CHECK(vu_msg_send(a, &m) == 0, "send SET_VRING_KICK with an eventfd");
	r = read_one(b, &rd);
	CHECK(r == 1 && rd.msg.hdr.request == VU_SET_VRING_KICK && rd.msg.payload.u64 == 1 &&
	      rd.msg.nfds == 1, "read it back: request, payload and one fd (r=%d)", r);
	CHECK(vu_msg_check(&rd.msg, &why) == 0, "SET_VRING_KICK with its fd is well-formed");
	if (rd.msg.nfds == 1) {
		uint64_t one = 1, v = 0;

		CHECK(write(rd.msg.fds[0], &one, 8) == 8 && read(efd, &v, 8) == 8 && v == 1,
		      "the received fd is the same eventfd");
	}
	vu_msg_close_fds(&rd.msg);
	close(efd);

	/* A header and payload dribbled in byte by byte. */
	memset(&m, 0, sizeof(m));
	m.hdr.request = VU_SET_VRING_ADDR;
	m.hdr.flags = VU_VERSION;
	m.hdr.size = sizeof(struct vu_vring_addr);
	m.payload.addr.index = 3;
	m.payload.addr.desc = 0x7f0000001000ull;
	{
		const char *h = (const char *)&m.hdr, *p = (const char *)&m.payload;
		size_t i;
		int partial = 1;

		vu_reader_init(&rd);
		for (i = 0; i < sizeof(m.hdr); i++) {
			send_raw(a, h + i, 1, NULL, 0);
			r = vu_msg_read(b, &rd);
			partial &= r == 0;
		}
		for (i = 0; i + 1 < m.hdr.size; i++) {
			send_raw(a, p + i, 1, NULL, 0);
			partial &= vu_msg_read(b, &rd) == 0;
		}
		CHECK(partial, "a message sent byte by byte is incomplete until its last byte");
		send_raw(a, p + i, 1, NULL, 0);
		r = vu_msg_read(b, &rd);
		CHECK(r == 1 && rd.msg.payload.addr.index == 3 &&
		      rd.msg.payload.addr.desc == 0x7f0000001000ull, "and complete with it");
	}

	/* Two messages in one write: the first read stops at its boundary. */
	{
		char two[2 * sizeof(struct vu_hdr) + 8];
		struct vu_hdr h1 = { VU_GET_FEATURES, VU_VERSION, 0 };
		struct vu_hdr h2 = { VU_SET_FEATURES, VU_VERSION, 8 };
		uint64_t f = 0x140000000ull;

		memcpy(two, &h1, sizeof(h1));
		memcpy(two + sizeof(h1), &h2, sizeof(h2));
		memcpy(two + 2 * sizeof(h1), &f, 8);
		send_raw(a, two, sizeof(two), NULL, 0);
		CHECK(read_one(b, &rd) == 1 && rd.msg.hdr.request == VU_GET_FEATURES,
		      "first of two back-to-back messages");
		CHECK(read_one(b, &rd) == 1 && rd.msg.hdr.request == VU_SET_FEATURES &&
		      rd.msg.payload.u64 == f, "second of two back-to-back messages");
	}
}

static void test_hostile(int a, int b)
{
	struct vu_reader rd;
	struct vu_hdr h;
	int fds[10], i, before, r;

	for (i = 0; i < 10; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	before = open_fds();

	h = (struct vu_hdr){ VU_SET_OWNER, 0x2, 0 };
	send_raw(a, &h, sizeof(h), NULL, 0);
	CHECK(read_one(b, &rd) == -EPROTO, "version 2 in the header -> EPROTO");

	h = (struct vu_hdr){ VU_SET_FEATURES, VU_VERSION, 1u << 20 };
	send_raw(a, &h, sizeof(h), fds, 2);
	r = read_one(b, &rd);
	CHECK(r == -EMSGSIZE, "payload of 1 MiB announced -> EMSGSIZE (r=%d)", r);
	CHECK(open_fds() == before, "and its two fds are closed");

	h = (struct vu_hdr){ VU_SET_MEM_TABLE, VU_VERSION, 0 };
	send_raw(a, &h, sizeof(h), fds, 10);
	r = read_one(b, &rd);
	CHECK(r == -EMSGSIZE, "10 fds on one message -> EMSGSIZE (r=%d)", r);
	CHECK(open_fds() == before, "and none of them stays open here");

	/* Half a message, then the peer goes away. */
	h = (struct vu_hdr){ VU_SET_FEATURES, VU_VERSION, 8 };
	send_raw(a, &h, sizeof(h), fds, 1);
	vu_reader_init(&rd);
	CHECK(vu_msg_read(b, &rd) == 0, "header of a message whose payload never comes");
	close(a);
	CHECK(vu_msg_read(b, &rd) == -ECONNRESET, "EOF in the middle -> ECONNRESET");
	CHECK(open_fds() == before - 1, "and the fd it carried is closed (only our end of the pair went)");
	for (i = 0; i < 10; i++)
		close(fds[i]);
}

static void expect_check(uint32_t request, uint32_t size, unsigned int nfds, uint64_t u64,
			 int want, const char *what)
{
	struct vu_msg m;
	const char *why;
	unsigned int i;
	int r;

	memset(&m, 0, sizeof(m));
	m.hdr.request = request;
	m.hdr.flags = VU_VERSION;
	m.hdr.size = size;
	m.payload.u64 = u64;
	for (i = 0; i < nfds; i++)
		m.fds[i] = 100 + (int)i;	/* never used: check only counts them */
	m.nfds = nfds;
	r = vu_msg_check(&m, &why);
	CHECK(r == want, "%s %s (r=%d%s%s)", vu_request_name(request), what, r,
	      why ? ", " : "", why ? why : "");
}

static void test_check_rules(void)
{
	const uint32_t region = sizeof(struct vu_mem_region);
	const uint32_t table_hdr = offsetof(struct vu_mem_table, regions);

	expect_check(VU_GET_FEATURES, 0, 0, 0, 0, "with no payload is fine");
	expect_check(VU_GET_FEATURES, 8, 0, 0, -EINVAL, "with a payload -> EINVAL");
	expect_check(VU_SET_FEATURES, 4, 0, 0, -EINVAL, "with 4 bytes -> EINVAL");
	expect_check(VU_SET_FEATURES, 8, 1, 0, -EINVAL, "with an fd -> EINVAL");
	expect_check(VU_SET_VRING_CALL, 8, 1, 0, 0, "for queue 0 with an fd is fine");
	expect_check(VU_SET_VRING_CALL, 8, 0, 0, -EINVAL, "without the fd it announces -> EINVAL");
	expect_check(VU_SET_VRING_CALL, 8, 0, VU_VRING_NOFD_MASK, 0, "with the no-fd bit and no fd is fine");
	expect_check(VU_SET_VRING_CALL, 8, 1, VU_VRING_NOFD_MASK, -EINVAL, "no-fd bit but an fd -> EINVAL");
	expect_check(VU_SET_VRING_KICK, 8, 1, 1u << 12, -EINVAL, "reserved index bits -> EINVAL");
	expect_check(VU_SET_MEM_TABLE, table_hdr + region, 1, 1, 0, "1 region, 1 fd is fine");
	expect_check(VU_SET_MEM_TABLE, table_hdr + region, 2, 1, -EINVAL, "1 region, 2 fds -> EINVAL");
	expect_check(VU_SET_MEM_TABLE, table_hdr + region, 1, 2, -EINVAL,
		     "2 regions announced in room for 1 -> EINVAL");
	expect_check(VU_SET_MEM_TABLE, table_hdr + region, 0, 0, -EINVAL, "0 regions -> EINVAL");
	expect_check(VU_SET_MEM_TABLE, sizeof(struct vu_mem_table), 8, 9, -EINVAL, "9 regions -> EINVAL");
	expect_check(VU_ADD_MEM_REG, sizeof(struct vu_mem_single), 0, 0, -EINVAL, "without its fd -> EINVAL");
	expect_check(VU_REM_MEM_REG, sizeof(struct vu_mem_single), 1, 0, 0, "with an fd (as QEMU sends) is fine");
	expect_check(VU_REM_MEM_REG, sizeof(struct vu_mem_single), 2, 0, -EINVAL, "with 2 fds -> EINVAL");
	expect_check(VU_GET_CONFIG, VU_CONFIG_HDR_SIZE + 57, 0, (uint64_t)57 << 32, 0,
		     "of 57 bytes with size 12+57 is fine");
	expect_check(VU_GET_CONFIG, VU_CONFIG_HDR_SIZE + 57, 0, (uint64_t)56 << 32, -EINVAL,
		     "whose inner size disagrees with hdr.size -> EINVAL");
	expect_check(VU_SET_INFLIGHT_FD, sizeof(struct vu_inflight), 0, 0, -EINVAL, "without its fd -> EINVAL");
	expect_check(VU_SEND_RARP, 8, 0, 0, -EOPNOTSUPP, "(a net request) -> EOPNOTSUPP");
	expect_check(VU_REQUEST_MAX + 7, 0, 0, 0, -EOPNOTSUPP, "unknown number -> EOPNOTSUPP");
}

int main(void)
{
	int sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	test_roundtrip(sv[0], sv[1]);
	test_hostile(sv[0], sv[1]);
	close(sv[1]);
	test_check_rules();
	return t_done("vu-msg");
}
