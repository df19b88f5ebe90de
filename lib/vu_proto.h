/* SPDX-License-Identifier: MIT */
/*
 * vu_proto.h - the vhost-user wire format (QEMU's docs/interop/vhost-user.rst):
 * a 12-byte header, a payload of at most a few hundred bytes, and up to 8
 * file descriptors carried as SCM_RIGHTS on the header.  All little-endian
 * host order, as the protocol is only spoken over a local unix socket.
 */
#ifndef HVN_VU_PROTO_H
#define HVN_VU_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_SET_VRING_ENDIAN = 23,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_CREATE_CRYPTO_SESSION = 26,
	VU_CLOSE_CRYPTO_SESSION = 27,
	VU_POSTCOPY_ADVISE = 28,
	VU_POSTCOPY_LISTEN = 29,
	VU_POSTCOPY_END = 30,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_GPU_SET_SOCKET = 33,
	VU_RESET_DEVICE = 34,
	VU_VRING_KICK = 35,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
	VU_REQUEST_MAX
};

/* Header flags. */
#define VU_VERSION		0x1u
#define VU_VERSION_MASK		0x3u
#define VU_FLAG_REPLY		(1u << 2)
#define VU_FLAG_NEED_REPLY	(1u << 3)

/* Virtio feature bits the transport itself uses. */
#define VU_F_PROTOCOL_FEATURES	30	/* VHOST_USER_F_PROTOCOL_FEATURES */
#define VU_F_LOG_ALL		26	/* VHOST_F_LOG_ALL */

/* Protocol feature bits. */
#define VU_PROTOCOL_F_MQ			0
#define VU_PROTOCOL_F_LOG_SHMFD			1
#define VU_PROTOCOL_F_RARP			2
#define VU_PROTOCOL_F_REPLY_ACK			3
#define VU_PROTOCOL_F_NET_MTU			4
#define VU_PROTOCOL_F_BACKEND_REQ		5
#define VU_PROTOCOL_F_CROSS_ENDIAN		6
#define VU_PROTOCOL_F_CRYPTO_SESSION		7
#define VU_PROTOCOL_F_PAGEFAULT			8
#define VU_PROTOCOL_F_CONFIG			9
#define VU_PROTOCOL_F_BACKEND_SEND_FD		10
#define VU_PROTOCOL_F_HOST_NOTIFIER		11
#define VU_PROTOCOL_F_INFLIGHT_SHMFD		12
#define VU_PROTOCOL_F_RESET_DEVICE		13
#define VU_PROTOCOL_F_INBAND_NOTIFICATIONS	14
#define VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS	15
#define VU_PROTOCOL_F_STATUS			16

/* SET_VRING_KICK/CALL/ERR payload: queue index and a "no fd" bit. */
#define VU_VRING_IDX_MASK	0xffu
#define VU_VRING_NOFD_MASK	(1u << 8)

#define VU_MAX_FDS		8	/* fds in one message (QEMU's baseline) */
#define VU_MEM_TABLE_REGIONS	8	/* regions in one SET_MEM_TABLE */
#define VU_CONFIG_MAX		256	/* config space bytes in one message */

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;		/* payload bytes that follow */
} __attribute__((packed));

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;		/* bit 0: log the used ring */
	uint64_t desc;		/* frontend virtual addresses ... */
	uint64_t used;
	uint64_t avail;
	uint64_t log;		/* ... except this one: a guest physical address */
};

struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;		/* where the frontend mapped it */
	uint64_t mmap_offset;	/* where the region starts in the fd */
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MEM_TABLE_REGIONS];
};

struct vu_mem_single {		/* ADD_MEM_REG, REM_MEM_REG */
	uint64_t padding;
	struct vu_mem_region region;
};

struct vu_log {
	uint64_t size;
	uint64_t offset;
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VU_CONFIG_MAX];
};
#define VU_CONFIG_HDR_SIZE offsetof(struct vu_config, data)

struct vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_mem_single mem_single;
	struct vu_log log;
	struct vu_config config;
	struct vu_inflight inflight;
};

struct vu_msg {
	struct vu_hdr hdr;
	union vu_payload payload;
	int fds[VU_MAX_FDS];
	unsigned int nfds;
};

/* A message being read, possibly over several readable events. */
struct vu_reader {
	struct vu_msg msg;
	size_t have;		/* header and payload bytes received so far */
};

const char *vu_request_name(uint32_t request);
void vu_reader_init(struct vu_reader *rd);
int vu_msg_read(int sock, struct vu_reader *rd);
int vu_msg_send(int sock, const struct vu_msg *msg);
void vu_msg_close_fds(struct vu_msg *msg);
int vu_msg_check(const struct vu_msg *msg, const char **why);

#endif /* HVN_VU_PROTO_H */
