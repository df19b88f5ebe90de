// SPDX-License-Identifier: MIT
/*
 * vu_msg.c - reading, checking and writing vhost-user messages.
 *
 * The peer is not trusted.  A message is read into a fixed-size buffer, the
 * header first so that nothing is read past the message it announces; its
 * file descriptors are collected as they arrive and closed on every error
 * path, so a malformed message never leaks one (the DPDK CVE-2022-0669
 * class).  vu_msg_check() then applies the per-request rules on payload size
 * and descriptor count before anything interprets the payload.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vu_proto.h"

static const char *const request_names[VU_REQUEST_MAX] = {
	[VU_GET_FEATURES] = "GET_FEATURES",
	[VU_SET_FEATURES] = "SET_FEATURES",
	[VU_SET_OWNER] = "SET_OWNER",
	[VU_RESET_OWNER] = "RESET_OWNER",
	[VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VU_SET_LOG_BASE] = "SET_LOG_BASE",
	[VU_SET_LOG_FD] = "SET_LOG_FD",
	[VU_SET_VRING_NUM] = "SET_VRING_NUM",
	[VU_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VU_SET_VRING_BASE] = "SET_VRING_BASE",
	[VU_GET_VRING_BASE] = "GET_VRING_BASE",
	[VU_SET_VRING_KICK] = "SET_VRING_KICK",
	[VU_SET_VRING_CALL] = "SET_VRING_CALL",
	[VU_SET_VRING_ERR] = "SET_VRING_ERR",
	[VU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VU_SEND_RARP] = "SEND_RARP",
	[VU_NET_SET_MTU] = "NET_SET_MTU",
	[VU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
	[VU_IOTLB_MSG] = "IOTLB_MSG",
	[VU_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
	[VU_GET_CONFIG] = "GET_CONFIG",
	[VU_SET_CONFIG] = "SET_CONFIG",
	[VU_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
	[VU_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
	[VU_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	[VU_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	[VU_POSTCOPY_END] = "POSTCOPY_END",
	[VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	[VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	[VU_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
	[VU_RESET_DEVICE] = "RESET_DEVICE",
	[VU_VRING_KICK] = "VRING_KICK",
	[VU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
	[VU_ADD_MEM_REG] = "ADD_MEM_REG",
	[VU_REM_MEM_REG] = "REM_MEM_REG",
	[VU_SET_STATUS] = "SET_STATUS",
	[VU_GET_STATUS] = "GET_STATUS",
};

const char *vu_request_name(uint32_t request)
{
	if (request < VU_REQUEST_MAX && request_names[request])
		return request_names[request];
	return "UNKNOWN";
}

void vu_msg_close_fds(struct vu_msg *msg)
{
	unsigned int i;

	for (i = 0; i < msg->nfds; i++)
		close(msg->fds[i]);
	msg->nfds = 0;
}

/*
 * One recvmsg() of at most len bytes into buf, collecting any descriptors
 * that come with them.  Returns the byte count, -EAGAIN, -ECONNRESET on EOF,
 * -EMSGSIZE for descriptors over the limit, or another negative errno.
 */
static ssize_t recv_some(int sock, void *buf, size_t len, struct vu_msg *msg)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { buf, len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int too_many = 0;

	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, count;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (msg->nfds < VU_MAX_FDS) {
				msg->fds[msg->nfds++] = fd;
			} else {
				close(fd);
				too_many = 1;
			}
		}
	}
	/* MSG_CTRUNC: the kernel dropped descriptors that did not fit. */
	if (too_many || (mh.msg_flags & MSG_CTRUNC))
		return -EMSGSIZE;
	return n == 0 ? -ECONNRESET : n;
}

void vu_reader_init(struct vu_reader *rd)
{
	memset(rd, 0, sizeof(*rd));
}

/*
 * Read what the socket has of the next message, without blocking, so that
 * a frontend that stops half way through a message holds up nobody but
 * itself.  The header is read first and alone, so that nothing past the
 * message it announces is consumed.
 *
 * Returns 1 when rd->msg holds a complete message (the caller then owns its
 * descriptors and calls vu_reader_init() before the next one), 0 when more
 * bytes are needed, or a negative errno with every descriptor of the
 * partial message closed: -ECONNRESET when the peer closed the connection,
 * -EPROTO for a bad header, -EMSGSIZE for a payload or descriptor count over
 * the protocol's limits.
 */
int vu_msg_read(int sock, struct vu_reader *rd)
{
	struct vu_msg *msg = &rd->msg;
	const size_t hdr_size = sizeof(msg->hdr);

	for (;;) {
		size_t want;
		ssize_t n;

		if (rd->have < hdr_size) {
			want = hdr_size - rd->have;
			n = recv_some(sock, (char *)&msg->hdr + rd->have, want, msg);
		} else {
			want = hdr_size + msg->hdr.size - rd->have;
			if (want == 0)
				break;
			n = recv_some(sock, (char *)&msg->payload + (rd->have - hdr_size), want, msg);
		}
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			goto fail;
		rd->have += (size_t)n;
		if (rd->have == hdr_size) {
			if ((msg->hdr.flags & VU_VERSION_MASK) != VU_VERSION) {
				n = -EPROTO;
				goto fail;
			}
			if (msg->hdr.size > sizeof(msg->payload)) {
				n = -EMSGSIZE;
				goto fail;
			}
		}
		if (rd->have == hdr_size + msg->hdr.size)
			break;
		continue;
fail:
		vu_msg_close_fds(msg);
		return (int)n;
	}
	/* Bytes past hdr.size are never interpreted, but keep them defined. */
	memset((char *)&msg->payload + msg->hdr.size, 0, sizeof(msg->payload) - msg->hdr.size);
	return 1;
}

int vu_msg_send(int sock, const struct vu_msg *msg)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov[2] = {
		{ (void *)&msg->hdr, sizeof(msg->hdr) },
		{ (void *)&msg->payload, msg->hdr.size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = msg->hdr.size ? 2 : 1 };
	size_t total = sizeof(msg->hdr) + msg->hdr.size, sent = 0;

	if (msg->hdr.size > sizeof(msg->payload) || msg->nfds > VU_MAX_FDS)
		return -EINVAL;
	if (msg->nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * msg->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * msg->nfds);
		memcpy(CMSG_DATA(c), msg->fds, sizeof(int) * msg->nfds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sent += (size_t)n;
		/* The descriptors went with the first bytes; send the rest. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

enum fd_rule { FDS_NONE, FDS_ONE, FDS_VRING, FDS_REGIONS, FDS_ZERO_OR_ONE };

struct request_rule {
	uint8_t known;
	uint8_t fds;
	uint16_t min_size, max_size;
};

#define NONE(fds) { 1, fds, 0, 0 }
#define EXACT(type, fds) { 1, fds, sizeof(type), sizeof(type) }
#define RANGE(min, max, fds) { 1, fds, min, max }
static const struct request_rule rules[VU_REQUEST_MAX] = {
	[VU_GET_FEATURES] = NONE(FDS_NONE),
	[VU_SET_FEATURES] = EXACT(uint64_t, FDS_NONE),
	[VU_SET_OWNER] = NONE(FDS_NONE),
	[VU_RESET_OWNER] = NONE(FDS_NONE),
	[VU_SET_MEM_TABLE] = RANGE(offsetof(struct vu_mem_table, regions) + sizeof(struct vu_mem_region),
				   sizeof(struct vu_mem_table), FDS_REGIONS),
	[VU_SET_LOG_BASE] = EXACT(struct vu_log, FDS_ONE),
	[VU_SET_LOG_FD] = NONE(FDS_ONE),
	[VU_SET_VRING_NUM] = EXACT(struct vu_vring_state, FDS_NONE),
	[VU_SET_VRING_ADDR] = EXACT(struct vu_vring_addr, FDS_NONE),
	[VU_SET_VRING_BASE] = EXACT(struct vu_vring_state, FDS_NONE),
	[VU_GET_VRING_BASE] = EXACT(struct vu_vring_state, FDS_NONE),
	[VU_SET_VRING_KICK] = EXACT(uint64_t, FDS_VRING),
	[VU_SET_VRING_CALL] = EXACT(uint64_t, FDS_VRING),
	[VU_SET_VRING_ERR] = EXACT(uint64_t, FDS_VRING),
	[VU_GET_PROTOCOL_FEATURES] = NONE(FDS_NONE),
	[VU_SET_PROTOCOL_FEATURES] = EXACT(uint64_t, FDS_NONE),
	[VU_GET_QUEUE_NUM] = NONE(FDS_NONE),
	[VU_SET_VRING_ENABLE] = EXACT(struct vu_vring_state, FDS_NONE),
	[VU_SET_BACKEND_REQ_FD] = NONE(FDS_ONE),
	[VU_GET_CONFIG] = RANGE(VU_CONFIG_HDR_SIZE, sizeof(struct vu_config), FDS_NONE),
	[VU_SET_CONFIG] = RANGE(VU_CONFIG_HDR_SIZE, sizeof(struct vu_config), FDS_NONE),
	[VU_GET_INFLIGHT_FD] = EXACT(struct vu_inflight, FDS_NONE),
	[VU_SET_INFLIGHT_FD] = EXACT(struct vu_inflight, FDS_ONE),
	[VU_RESET_DEVICE] = NONE(FDS_NONE),
	[VU_GET_MAX_MEM_SLOTS] = NONE(FDS_NONE),
	[VU_ADD_MEM_REG] = EXACT(struct vu_mem_single, FDS_ONE),
	/* QEMU sends the region's fd with REM_MEM_REG too; others do not. */
	[VU_REM_MEM_REG] = EXACT(struct vu_mem_single, FDS_ZERO_OR_ONE),
	[VU_SET_STATUS] = EXACT(uint64_t, FDS_NONE),
	[VU_GET_STATUS] = NONE(FDS_NONE),
};

/*
 * Is the message well-formed for its request?  Returns 0, -EOPNOTSUPP for a
 * request we do not know or implement, or -EINVAL with *why saying what is
 * wrong.  The payload is only read where its size has been checked.
 */
int vu_msg_check(const struct vu_msg *msg, const char **why)
{
	const struct request_rule *rule;
	uint32_t size = msg->hdr.size;
	unsigned int want_fds = 0;

	*why = NULL;
	if (msg->hdr.request >= VU_REQUEST_MAX || !rules[msg->hdr.request].known) {
		*why = "unsupported request";
		return -EOPNOTSUPP;
	}
	rule = &rules[msg->hdr.request];
	if (size < rule->min_size || size > rule->max_size) {
		*why = "payload size";
		return -EINVAL;
	}

	switch (rule->fds) {
	case FDS_NONE:
		want_fds = 0;
		break;
	case FDS_ONE:
		want_fds = 1;
		break;
	case FDS_ZERO_OR_ONE:
		want_fds = msg->nfds <= 1 ? msg->nfds : 1;
		break;
	case FDS_VRING:
		want_fds = (msg->payload.u64 & VU_VRING_NOFD_MASK) ? 0 : 1;
		if (msg->payload.u64 & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK)) {
			*why = "reserved bits in the vring index";
			return -EINVAL;
		}
		break;
	case FDS_REGIONS: {
		uint32_t n = msg->payload.mem.nregions;

		if (n == 0 || n > VU_MEM_TABLE_REGIONS ||
		    size < offsetof(struct vu_mem_table, regions) + n * sizeof(struct vu_mem_region)) {
			*why = "region count";
			return -EINVAL;
		}
		want_fds = n;
		break;
	}
	}
	if (msg->nfds != want_fds) {
		*why = "number of file descriptors";
		return -EINVAL;
	}
	if ((msg->hdr.request == VU_GET_CONFIG || msg->hdr.request == VU_SET_CONFIG) &&
	    (msg->payload.config.size > VU_CONFIG_MAX ||
	     size != VU_CONFIG_HDR_SIZE + msg->payload.config.size)) {
		*why = "config size";
		return -EINVAL;
	}
	return 0;
}
