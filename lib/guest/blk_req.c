// SPDX-License-Identifier: MIT
/*
 * blk_req.c - virtio-blk requests on a vring_driver (see blk_req.h).
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk_req.h"

_Static_assert(sizeof(struct vblk_config) == 60, "struct virtio_blk_config");
_Static_assert(__builtin_offsetof(struct vblk_config, writeback) == VBLK_CONFIG_WRITEBACK,
	       "writeback offset");
_Static_assert(__builtin_offsetof(struct vblk_config, num_queues) == 34, "num_queues offset");

struct vblk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

#define STATUS_OFF	16	/* in a request's metadata slot, after the header */
#define STATUS_NONE	0xff

int blk_queue_init(struct blk_queue *q, struct vring_driver *d, uint64_t meta_gpa, int kick_fd,
		   int call_fd)
{
	memset(q, 0, sizeof(*q));
	if (!gmem_ptr(d->mem, meta_gpa, blk_meta_bytes(d->num)))
		return -EFAULT;
	q->d = d;
	q->meta_gpa = meta_gpa;
	q->kick_fd = kick_fd;
	q->call_fd = call_fd;
	return 0;
}

static bool data_is_out(uint32_t type)
{
	return type != VBLK_T_IN && type != VBLK_T_GET_ID;
}

int blk_add(struct blk_queue *q, uint32_t type, uint64_t sector, const struct vrd_buf *data,
	    unsigned int n_data, void *token, bool indirect)
{
	struct vrd_buf out[BLK_MAX_DATA + 1], in[BLK_MAX_DATA + 1];
	unsigned int n_out = 0, n_in = 0, i;
	/* The head vrd_add() will take: the request's metadata slot. */
	uint16_t head = q->d->free_head;
	uint64_t slot = q->meta_gpa + (uint64_t)BLK_META_BYTES * head;
	struct vblk_hdr *hdr;
	uint8_t *status;
	int r;

	if (n_data > BLK_MAX_DATA || (type == VBLK_T_FLUSH && n_data))
		return -EINVAL;
	if (q->d->num_free == 0)
		return -ENOSPC;
	hdr = gmem_ptr(q->d->mem, slot, sizeof(*hdr));
	status = gmem_ptr(q->d->mem, slot + STATUS_OFF, 1);
	if (!hdr || !status)
		return -EFAULT;
	hdr->type = htole32(type);
	hdr->reserved = 0;
	hdr->sector = htole64(sector);
	/* So that a completion whose status the device never wrote shows. */
	*status = STATUS_NONE;

	out[n_out++] = (struct vrd_buf){ slot, sizeof(*hdr) };
	for (i = 0; i < n_data; i++) {
		if (data_is_out(type))
			out[n_out++] = data[i];
		else
			in[n_in++] = data[i];
	}
	in[n_in++] = (struct vrd_buf){ slot + STATUS_OFF, 1 };
	r = vrd_add(q->d, out, n_out, in, n_in, token, indirect);
	if (r >= 0 && r != head)
		return -EIO;	/* vring_driver changed how it allocates heads */
	return r;
}

int blk_submit(struct blk_queue *q)
{
	static const uint64_t one = 1;

	vrd_publish(q->d);
	if (!vrd_kick_needed(q->d) || q->kick_fd < 0)
		return 0;
	if (write(q->kick_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	q->kicks++;
	return 1;
}

int blk_reap(struct blk_queue *q, struct blk_done *done)
{
	uint16_t head;
	uint32_t len;
	void *token;
	int r = vrd_get_used(q->d, &head, &len, &token);
	const uint8_t *status;

	if (r <= 0)
		return r;
	status = gmem_ptr(q->d->mem, q->meta_gpa + (uint64_t)BLK_META_BYTES * head + STATUS_OFF, 1);
	done->head = head;
	done->len = len;
	done->token = token;
	/* Read after vrd_get_used()'s acquire of used->idx, which orders it. */
	done->status = __atomic_load_n(status, __ATOMIC_RELAXED);
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int blk_wait(struct blk_queue *q, struct blk_done *done, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = q->call_fd, .events = POLLIN };
		int64_t left;
		uint64_t cnt;
		int r = blk_reap(q, done);

		if (r)
			return r;
		/*
		 * Ask for an interrupt, then look again: a completion that
		 * landed before the request was visible sends no signal.
		 */
		if (vrd_enable_interrupts(q->d))
			continue;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (q->call_fd < 0) {
			sched_yield();
			continue;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && read(q->call_fd, &cnt, sizeof(cnt)) == sizeof(cnt))
			q->calls++;
	}
}

int blk_do(struct blk_queue *q, uint32_t type, uint64_t sector, const struct vrd_buf *data,
	   unsigned int n_data, bool indirect, uint32_t *len, int timeout_ms)
{
	struct blk_done done;
	int head, r;

	head = blk_add(q, type, sector, data, n_data, NULL, indirect);
	if (head < 0)
		return head;
	r = blk_submit(q);
	if (r < 0)
		return r;
	r = blk_wait(q, &done, timeout_ms);
	if (r < 0)
		return r;
	if (done.head != head)
		return -EIO;
	if (len)
		*len = done.len;
	return done.status;
}
