// SPDX-License-Identifier: MIT
/*
 * fuzz-vu-backend.c - libFuzzer target for the vhost-user backend's
 * message handler (lib/vu_backend.c over lib/vu_msg.c): a frontend's byte
 * stream and descriptors, and the guest's ring traffic, from the input
 * (format in fuzz-vu-backend.h), into hvn_vu_backend_handle() over a real
 * unix socket pair.
 *
 * The host is this file, on the backend's thread: it "runs" a started
 * queue by popping and completing what its ring holds whenever the input
 * kicks it (so guest memory, the mapped ring and the memory table that
 * messages change under it are all reachable), answers stops at once the
 * way hvnotifyd's workers do later, and can refuse a start or stop a queue
 * on its own.  The backend's end of the socket is non-blocking, as the
 * daemon's is.  Descriptors are real: guest RAM is one memfd, vring
 * descriptors are eventfds.
 *
 * Besides "no crash, no sanitizer report", it checks what the backend
 * promises its host and its peer:
 *  - every descriptor and memfd mapping an input created is gone after
 *    the connection is freed (the fd count and the RAM's mappings in
 *    /proc/self are as before the input): no leak on any path;
 *  - handle() answers 0, HVN_VU_PAUSED only while a stop is pending, or
 *    a negative errno that sticks, with a reason in strerror;
 *  - a start comes for a queue that is not running, configured and
 *    started, with a live kick eventfd; a stop only for a running queue;
 *  - after stop_all and the stops, no queue runs any more;
 *  - popped requests' buffers are readable and writable (a wild pointer
 *    faults), and a broken queue's errors are the documented ones.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "../../lib/vu_proto.h"
#include "fuzz-vu-backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "fuzz-vu-backend: %s:%d: %s\n",		\
				__FILE__, __LINE__, #cond);			\
			abort();						\
		}								\
	} while (0)

#define MAX_REQS	8
#define MAX_IOV		32

static int ram_fd = -1;
static uint8_t *ram;		/* the guest's (frontend's) view of its RAM */
static bool ram_dirty;		/* written since it was last cleared */

/* ---- the device ---- */

#define DEV_F_REFUSED	(UINT64_C(1) << 3)	/* set_features refuses it */
#define DEV_F_OTHER	(UINT64_C(1) << 5)

static uint8_t config[16];

static uint64_t dev_features(void *dev)
{
	return DEV_F_REFUSED | DEV_F_OTHER | 1;
}

static int dev_set_features(void *dev, uint64_t f)
{
	return (f & DEV_F_REFUSED) ? -EINVAL : 0;
}

static int dev_get_config(void *dev, void *buf, uint32_t off, uint32_t len)
{
	CHECK(off <= sizeof(config) && len <= sizeof(config) - off);
	if (off == 13)
		return -EIO;	/* a device that cannot read its config there */
	memcpy(buf, config + off, len);
	return 0;
}

static int dev_set_config(void *dev, const void *buf, uint32_t off, uint32_t len)
{
	CHECK(off <= sizeof(config) && len <= sizeof(config) - off);
	memcpy(config + off, buf, len);
	return 0;
}

static void dev_handle(void *dev, struct hvn_dev_req *req)
{
	abort();	/* queues run here, not through dev_queue */
}

static const struct hvn_dev_ops dev_ops = {
	.name = "fuzz",
	.virtio_id = 99,
	.config_size = sizeof(config),
	.max_segments = 16,
	.max_queues = FZ_VU_MAX_QUEUES,
	.get_features = dev_features,
	.set_features = dev_set_features,
	.get_config = dev_get_config,
	.set_config = dev_set_config,
	.handle = dev_handle,
};

/* ---- the host ---- */

struct hq {
	struct hvn_vq *vq;	/* the backend's; ours between start and stopped */
	bool running, stopping;
};

static struct {
	struct hvn_vu_backend *b;
	int sock;		/* the backend's end */
	unsigned int nq;
	struct hq q[FZ_VU_MAX_QUEUES];
	uint8_t refuse_starts;
	unsigned int starts;
	int dead;		/* handle() said this error */
} h;

static bool documented(int err)
{
	switch (err) {
	case -ERANGE: case -ELOOP: case -E2BIG: case -EMLINK: case -EINVAL:
	case -EOPNOTSUPP: case -EMSGSIZE: case -EFAULT: case -EOVERFLOW:
	case -EBADMSG: case -EPROTO: case -EALREADY:
		return true;
	}
	return false;
}

/* What a device does: pop what is available, touch it, complete it. */
static void serve(unsigned int idx)
{
	static struct iovec iov[MAX_REQS][MAX_IOV];
	struct hvn_vq_req reqs[MAX_REQS];
	struct hvn_vq_done done[MAX_REQS];
	struct hvn_vq *vq = h.q[idx].vq;
	int n, i, r;

	if (!h.q[idx].running || h.q[idx].stopping)
		return;
	ram_dirty = true;	/* the used ring, notification words, buffers */
	for (i = 0; i < MAX_REQS; i++) {
		reqs[i].iov = iov[i];
		reqs[i].max_iov = MAX_IOV;
	}
	hvn_vq_disable_notify(vq);
	n = hvn_vq_pop_batch(vq, reqs, MAX_REQS);
	if (n < 0) {
		CHECK(n == -ENOBUFS || documented(n));
		return;
	}
	for (i = 0; i < n; i++) {
		uint32_t j, written = 0;

		for (j = 0; j < reqs[i].n_out + reqs[i].n_in; j++) {
			volatile uint8_t *p = reqs[i].iov[j].iov_base;
			size_t len = reqs[i].iov[j].iov_len;

			CHECK(len > 0);
			(void)p[0];
			(void)p[len - 1];
			if (j >= reqs[i].n_out) {
				memset((void *)p, 0xd0 + i, len < 16 ? len : 16);
				written += (uint32_t)(len < 16 ? len : 16);
			}
		}
		/* Complete in reverse: out of order, as devices may. */
		done[n - 1 - i].head = reqs[i].head;
		done[n - 1 - i].len = written;
		done[n - 1 - i].reserved = 0;
	}
	if (n > 0)
		CHECK(hvn_vq_push_batch(vq, done, (unsigned int)n) == 0);
	r = hvn_vq_should_notify(vq);
	CHECK(r == 0 || r == 1);
	r = hvn_vq_enable_notify(vq);
	CHECK(r == 0 || r == 1 || documented(r));
}

static int host_start(void *arg, unsigned int idx, const struct hvn_dev_queue_config *cfg)
{
	struct hvn_vq_state st;
	unsigned int k = h.starts++ % 8;

	CHECK(idx < h.nq && cfg->index == idx && !h.q[idx].running && !h.q[idx].stopping);
	CHECK(cfg->ops == &dev_ops && cfg->vq);
	CHECK(cfg->kick_fd >= 0 && fcntl(cfg->kick_fd, F_GETFD) >= 0);
	CHECK(cfg->call_fd < 0 || fcntl(cfg->call_fd, F_GETFD) >= 0);
	CHECK(cfg->err_fd < 0 || fcntl(cfg->err_fd, F_GETFD) >= 0);
	CHECK(hvn_vq_get_state(cfg->vq, &st) == 0 && (st.flags & HVN_VQ_STATE_STARTED) &&
	      st.inflight == 0 && st.error == 0);
	if (h.refuse_starts & (1u << k))
		return -ENOMEM;	/* hvnotifyd's worker_queue_start can fail so */
	ram_dirty = true;	/* hvn_vq_start wrote the ring's notification word */
	h.q[idx].vq = cfg->vq;
	h.q[idx].running = true;
	/* A queue looks at its ring once when it starts (dev_queue does). */
	serve(idx);
	return 0;
}

static int host_stop(void *arg, unsigned int idx)
{
	CHECK(idx < h.nq && h.q[idx].running && !h.q[idx].stopping);
	h.q[idx].stopping = true;
	return 0;
}

static const struct hvn_vu_backend_host host_ops = { host_start, host_stop };

static bool any_stopping(unsigned int *idx)
{
	unsigned int i;

	for (i = 0; i < h.nq; i++)
		if (h.q[i].stopping) {
			*idx = i;
			return true;
		}
	return false;
}

static void stop_queue(unsigned int idx)
{
	CHECK(hvn_vq_stop(h.q[idx].vq) == 0);
	h.q[idx].running = false;
	h.q[idx].stopping = false;
	h.q[idx].vq = NULL;
}

/* What handle() (or queue_stopped()) said: answer stops until it reads again. */
static void result(int r, int sock)
{
	unsigned int idx, rounds = 0;

	while (r == HVN_VU_PAUSED) {
		/* PAUSED promises a pending stop: without one it would wait forever. */
		CHECK(any_stopping(&idx));
		CHECK(++rounds <= 2 * FZ_VU_MAX_QUEUES + 2);
		stop_queue(idx);
		r = hvn_vu_backend_queue_stopped(h.b, idx, sock);
	}
	if (r < 0) {
		const char *why = hvn_vu_backend_strerror(h.b);

		CHECK(why && why[0] && strcmp(why, "no error"));
		if (sock >= 0) {
			h.dead = r;
			/* It sticks: the connection is over. */
			CHECK(hvn_vu_backend_handle(h.b, sock) == r);
		}
	} else {
		CHECK(r == 0);
	}
}

/*
 * handle() acts on a bounded number of messages per call and then returns
 * 0 with the socket still readable (fairness between connections): call
 * it again, as a level-triggered poll would, until it has read everything
 * (a partial message it keeps is read already).
 */
static void handle_all(void)
{
	int unread = 0, calls = 0;

	do {
		result(hvn_vu_backend_handle(h.b, h.sock), h.sock);
		if (h.dead)
			return;
		CHECK(ioctl(h.sock, FIONREAD, &unread) == 0);
		CHECK(++calls <= (int)FZ_VU_MAX_SEND);
	} while (unread > 0);
}

/* ---- descriptors, and the input's housekeeping ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d);
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

/* Mappings of guest RAM in this process: ours, plus the backend's. */
static int count_ram_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	CHECK(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:fz-vu-ram") != NULL;
	fclose(f);
	return n;
}

static int fd_of_kind(unsigned int kind, const uint8_t *bytes, size_t len, bool *ours)
{
	int fd;

	if (kind == FZ_FD_AUTO) {
		uint32_t req = 0;

		memcpy(&req, bytes, len < 4 ? len : 4);
		switch (req) {
		case VU_SET_VRING_KICK: case VU_SET_VRING_CALL: case VU_SET_VRING_ERR:
		case VU_SET_LOG_FD: case VU_SET_BACKEND_REQ_FD:
			kind = FZ_FD_EVENT;
			break;
		case VU_SET_LOG_BASE: case VU_SET_INFLIGHT_FD:
			kind = FZ_FD_SMALL;
			break;
		default:
			kind = FZ_FD_RAM;
		}
	}
	*ours = true;
	switch (kind) {
	case FZ_FD_EVENT:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		break;
	case FZ_FD_SMALL:
		fd = memfd_create("fz-vu-small", MFD_CLOEXEC);
		if (fd >= 0)
			CHECK(ftruncate(fd, FZ_VU_SMALL_SIZE) == 0);
		break;
	case FZ_FD_NULL:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		break;
	default:
		*ours = false;
		fd = ram_fd;
	}
	CHECK(fd >= 0);
	return fd;
}

/* Send bytes with the descriptors fdspec asks for; false if the socket is full. */
static bool send_record(int sock, uint8_t fdspec, const uint8_t *bytes, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 15)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { (void *)bytes, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int nfds = fdspec & 15, kind = fdspec >> 4, i;
	int fds[15];
	bool ours[15];
	ssize_t n;

	/* A stream carries descriptors only with data. */
	if (len == 0)
		return true;
	for (i = 0; i < nfds; i++)
		fds[i] = fd_of_kind(kind, bytes, len, &ours[i]);
	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	/* The backend has its own copies now (if any went): close ours. */
	for (i = 0; i < nfds; i++)
		if (ours[i])
			close(fds[i]);
	return n == (ssize_t)len;
}

/* The frontend reads what the backend answered, so that its sends never block. */
static void drain(int sock)
{
	char buf[4096];

	while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void setup(void)
{
	ram_fd = memfd_create("fz-vu-ram", MFD_CLOEXEC);
	CHECK(ram_fd >= 0 && ftruncate(ram_fd, FZ_VU_RAM_SIZE) == 0);
	ram = mmap(NULL, FZ_VU_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	CHECK(ram != MAP_FAILED);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvn_vu_backend_config cfg;
	int fds_before, maps_before, sv[2], pending;
	size_t at = FZ_VU_HDR;
	unsigned int i, idx;

	if (ram_fd < 0)
		setup();
	if (size < FZ_VU_HDR)
		return 0;
	fds_before = count_fds();
	maps_before = count_ram_maps();
	if (ram_dirty)
		memset(ram, 0, FZ_VU_RAM_SIZE);
	ram_dirty = false;
	memset(config, 0, sizeof(config));
	memset(&h, 0, sizeof(h));
	h.nq = data[0] % FZ_VU_MAX_QUEUES + 1;
	h.refuse_starts = data[1];

	/* The daemon's connections are non-blocking on its side (accept4). */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	h.sock = sv[1];
	memset(&cfg, 0, sizeof(cfg));
	cfg.ops = &dev_ops;
	cfg.num_queues = h.nq;
	cfg.features_mask = (data[2] & 1 ? HVN_VQ_F_EVENT_IDX : 0) |
			    (data[2] & 2 ? HVN_VQ_F_INDIRECT_DESC : 0) |
			    (data[2] & 4 ? DEV_F_OTHER : 0);
	cfg.host = &host_ops;
	CHECK(hvn_vu_backend_new(&cfg, &h.b) == 0);

	while (at < size && !h.dead) {
		uint8_t op = data[at++];

		switch (op % 4) {
		case FZ_OP_SEND: {
			uint8_t fdspec;
			size_t len;

			if (size - at < 3)
				goto out;
			fdspec = data[at];
			len = le16(data + at + 1) % (FZ_VU_MAX_SEND + 1);
			at += 3;
			if (len > size - at)
				len = size - at;
			if (!send_record(sv[0], fdspec, data + at, len))
				goto out;	/* the socket is full: the frontend gives up */
			at += len;
			handle_all();
			drain(sv[0]);
			break;
		}
		case FZ_OP_GUEST: {
			uint32_t off;
			size_t len;

			if (size - at < 6)
				goto out;
			off = le32(data + at) % FZ_VU_RAM_SIZE;
			len = le16(data + at + 4);
			at += 6;
			if (len > size - at)
				len = size - at;
			if (len > FZ_VU_RAM_SIZE - off)
				len = FZ_VU_RAM_SIZE - off;
			memcpy(ram + off, data + at, len);
			ram_dirty = true;
			at += len;
			break;
		}
		case FZ_OP_KICK:
			if (at >= size)
				goto out;
			for (i = 0; i < h.nq; i++)
				if (data[at] & (1u << i))
					serve(i);
			at++;
			break;
		case FZ_OP_HOST:
			if (at >= size)
				goto out;
			if (data[at] & FZ_HOST_HANGUP) {
				/* The frontend goes, perhaps half way through a
				 * message: what the backend holds of it goes too. */
				at++;
				shutdown(sv[0], SHUT_WR);
				handle_all();
				CHECK(h.dead);
				break;
			}
			idx = data[at++] % h.nq;
			if (h.q[idx].running && !h.q[idx].stopping) {
				int r;

				stop_queue(idx);
				r = hvn_vu_backend_queue_stopped(h.b, idx, h.sock);
				/* Nobody asked for that stop: the connection is done for. */
				CHECK(r < 0 || r == HVN_VU_PAUSED);
				result(r, h.sock);
				drain(sv[0]);
			}
			break;
		}
	}
out:
	/* The connection ends, as hvnotifyd ends it: stop every queue first. */
	pending = hvn_vu_backend_stop_all(h.b);
	CHECK(pending >= 0);
	while (pending > 0) {
		int r;

		CHECK(any_stopping(&idx));
		stop_queue(idx);
		r = hvn_vu_backend_queue_stopped(h.b, idx, -1);
		CHECK(r == HVN_VU_PAUSED || r == 0 || r < 0);
		pending--;
	}
	for (i = 0; i < h.nq; i++)
		CHECK(!h.q[i].running && !h.q[i].stopping);
	hvn_vu_backend_free(h.b);
	close(sv[0]);
	close(sv[1]);
	/* Every descriptor the input sent or made, every mapping of guest RAM. */
	CHECK(count_fds() == fds_before);
	CHECK(count_ram_maps() == maps_before);
	return 0;
}
