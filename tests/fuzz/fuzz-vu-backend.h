/* SPDX-License-Identifier: MIT */
/*
 * fuzz-vu-backend.h - the input format of the vhost-user backend's fuzz
 * target, shared with the seed generator (gen-corpus.c).
 *
 * An input is what a frontend (and the guest behind it) does to one
 * connection: a 4-byte header, then records to the end.  The bytes a
 * record sends are raw: headers, sizes and payloads are the fuzzer's, so
 * it can split a message over records, lie about sizes, or send garbage.
 *
 * Header:
 *   0  number of queues the device offers, - 1 (mod FZ_VU_MAX_QUEUES)
 *   1  the host refuses its k-th queue start (k mod 8) if bit k is set
 *   2  features_mask: bit 0 hides EVENT_IDX, bit 1 INDIRECT_DESC, bit 2
 *      the device's bit 5
 *   3  reserved
 *
 * Records, by op (first byte) mod 4:
 *   FZ_OP_SEND   fdspec u8, len u16, then len bytes, sent in one
 *                sendmsg() with the descriptors fdspec asks for
 *   FZ_OP_GUEST  offset u32 (mod FZ_VU_RAM_SIZE), len u16, then len bytes
 *                written into guest RAM, as the guest would
 *   FZ_OP_KICK   queue mask u8: the host's device pops, serves and
 *                completes what those queues have available
 *   FZ_OP_HOST   queue u8: the host's data plane stops that queue (mod
 *                the queue count) on its own, as a worker that failed
 *                would; with bit 7 (FZ_HOST_HANGUP) set instead, the
 *                frontend closes its end of the connection
 *
 * fdspec: bits 0-3 the descriptor count (up to 15, past the protocol's 8);
 * bits 4-7 their kind: FZ_FD_AUTO (an eventfd for SET_VRING_KICK, CALL,
 * ERR, SET_LOG_FD and SET_BACKEND_REQ_FD, a small memfd for SET_LOG_BASE
 * and SET_INFLIGHT_FD, guest RAM otherwise: judged by the request number
 * in the first 4 bytes sent), FZ_FD_EVENT, FZ_FD_RAM (the guest RAM memfd,
 * FZ_VU_RAM_SIZE bytes), FZ_FD_SMALL (a fresh 64 KiB memfd), FZ_FD_NULL
 * (/dev/null, which cannot be mapped); other kinds are FZ_FD_AUTO.
 */
#ifndef HVN_FUZZ_VU_BACKEND_H
#define HVN_FUZZ_VU_BACKEND_H

#define FZ_VU_HDR		4
#define FZ_VU_MAX_QUEUES	4
#define FZ_VU_RAM_SIZE		0x40000u	/* 256 KiB */
#define FZ_VU_SMALL_SIZE	0x10000u
#define FZ_VU_MAX_SEND		8192u		/* bytes sent per record, at most */

#define FZ_OP_SEND	0
#define FZ_OP_GUEST	1
#define FZ_OP_KICK	2
#define FZ_OP_HOST	3

#define FZ_HOST_HANGUP	0x80

#define FZ_FD_AUTO	0
#define FZ_FD_EVENT	1
#define FZ_FD_RAM	2
#define FZ_FD_SMALL	3
#define FZ_FD_NULL	4

#endif /* HVN_FUZZ_VU_BACKEND_H */
