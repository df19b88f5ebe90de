/* SPDX-License-Identifier: MIT */
/*
 * fuzz-vq-split.h - the input format of the split-ring fuzz target, shared
 * with the seed generator (gen-corpus.c).
 *
 * An input is a 16-byte header followed by a guest memory image.  Guest
 * memory is three regions, each its own memfd:
 *
 *   R0 [0x0000, 0x4000)  R1 [0x4000, 0x8000)  hole  R2 [0x9000, 0xa000)
 *
 * (R1 is adjacent to R0, so buffers can span two regions; R2 is mapped
 * from an odd file offset, so its host addresses are misaligned.)  Image
 * bytes [0, 0x8000) fill R0 and R1, [0x8000, 0x9000) fill R2; missing
 * bytes are zero.  Unless FZ_PLACE is set, the rings sit at gpa 0 the way
 * vrd_init() lays them out: desc at 0, avail after it, used at the next
 * 64-byte boundary.
 *
 * Header, little-endian:
 *   0      log2 of the queue size (mod 9: 1 .. 256)
 *   1      FZ_* flags
 *   2..3   last_avail_idx given to hvn_vq_set_base(), and the used index
 *   4      max_iov per request (mod 64, + 1)
 *   5      rounds of pop/push (mod 8, + 1)
 *   6..7   FZ_PLACE: desc at this * 16 (mod image)
 *   8..9   FZ_PLACE: avail at this * 2
 *   10..11 FZ_PLACE: used at this * 4
 *   12..15 seed for used lengths and for the driver's avail index steps
 */
#ifndef HVN_FUZZ_VQ_SPLIT_H
#define HVN_FUZZ_VQ_SPLIT_H

#define FZ_HDR		16
#define FZ_R0		0x0000u
#define FZ_R0_SIZE	0x4000u
#define FZ_R1		0x4000u
#define FZ_R1_SIZE	0x4000u
#define FZ_R2		0x9000u
#define FZ_R2_SIZE	0x1000u
#define FZ_R2_OFFSET	0x123u
#define FZ_END		0xa000u
#define FZ_IMAGE	(FZ_R0_SIZE + FZ_R1_SIZE + FZ_R2_SIZE)

#define FZ_EVENT_IDX	(1u << 0)
#define FZ_INDIRECT	(1u << 1)
#define FZ_GPA_ADDR	(1u << 2)	/* ring addresses as GPA, not frontend-virtual */
#define FZ_PLACE	(1u << 3)	/* ring addresses from the header */
#define FZ_MEM_CHANGE	(1u << 4)	/* replace the memory table while requests are in flight */
#define FZ_REVERSE	(1u << 5)	/* complete in reverse order */
#define FZ_BATCH	(1u << 6)	/* pop and push in batches */
#define FZ_NOTIFY	(1u << 7)	/* exercise the notification calls */

#endif /* HVN_FUZZ_VQ_SPLIT_H */
