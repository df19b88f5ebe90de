// SPDX-License-Identifier: MIT
/*
 * vu_frontend.c - the VMM's side of vhost-user: the messages QEMU sends to
 * a vhost-user backend, in the order it sends them, with every reply
 * checked before it is believed.
 *
 * The backend is another process and is not trusted to be correct: a reply
 * must carry exactly VERSION|REPLY, the request it answers, the size that
 * request's reply has and no file descriptors, and nothing may arrive
 * that was not asked for; anything else is -EPROTO.
 * Every wait for a reply, and every send (SO_SNDTIMEO), has a deadline.
 * Once a reply was malformed or late, the byte stream may be out of step
 * (a late reply would be taken for the answer to the next request), so the
 * connection is marked broken and refuses everything with -ENOTCONN.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hvnotify/vhost_user.h>

#include "vu_proto.h"

#define DEFAULT_TIMEOUT_MS	5000
#define MAX_QUEUES		65535	/* virtio queue indices are 16 bits */

/* The public masks and the wire bit numbers are the same protocol. */
_Static_assert(HVN_VU_F_PROTOCOL_FEATURES == UINT64_C(1) << VU_F_PROTOCOL_FEATURES, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_MQ == UINT64_C(1) << VU_PROTOCOL_F_MQ, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_REPLY_ACK == UINT64_C(1) << VU_PROTOCOL_F_REPLY_ACK, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_CONFIG == UINT64_C(1) << VU_PROTOCOL_F_CONFIG, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_RESET_DEVICE == UINT64_C(1) << VU_PROTOCOL_F_RESET_DEVICE, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS ==
	       UINT64_C(1) << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS, "bit");
_Static_assert(HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD == UINT64_C(1) << VU_PROTOCOL_F_INFLIGHT_SHMFD,
	       "bit");
_Static_assert(sizeof(struct vu_inflight) == 24, "VhostUserInflight");
_Static_assert(sizeof(struct vu_mem_region) == 32, "VhostUserMemoryRegion");
_Static_assert(sizeof(struct vu_vring_addr) == 40, "vhost_vring_addr");

/* Protocol features this file implements, so may negotiate; INFLIGHT_SHMFD
 * only when the caller asks (it must then send a region). */
#define IMPLEMENTED (HVN_VU_PROTOCOL_F_MQ | HVN_VU_PROTOCOL_F_REPLY_ACK | \
		     HVN_VU_PROTOCOL_F_CONFIG | HVN_VU_PROTOCOL_F_RESET_DEVICE | \
		     HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
#define FRONTEND_FLAGS HVN_VU_FRONTEND_F_INFLIGHT

/* A region as the backend was told it, and which file it came from. */
struct fe_region {
	struct vu_mem_region r;
	dev_t dev;
	ino_t ino;
};

struct hvn_vu_frontend {
	int sock;
	int timeout_ms;
	bool broken;		/* the stream is out of step: refuse everything */
	bool features_set;
	uint64_t features;	/* offered by the backend */
	uint64_t acked;		/* last SET_FEATURES, with PROTOCOL_FEATURES */
	uint64_t protocol_offered;
	uint64_t protocol;	/* negotiated */
	uint32_t queues;
	uint32_t max_regions;
	uint64_t extra_protocol;	/* features the caller opted into */
	unsigned int nregions;
	struct fe_region *regions;	/* [max_regions]: the backend's table */
	struct vu_reader rd;		/* the reply being read */
};

static void msg_init(struct vu_msg *m, uint32_t request, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.request = request;
	m->hdr.flags = VU_VERSION;
	m->hdr.size = size;
}

static int broken(struct hvn_vu_frontend *fe, int err)
{
	fe->broken = true;
	return err;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Nothing may be waiting to be read before a request: a backend speaks
 * only when asked, so bytes here are a reply nobody asked for (a duplicate,
 * or one to a message that wanted none), which must not be taken for the
 * answer to this request.
 */
static int fe_check_quiet(struct hvn_vu_frontend *fe)
{
	struct pollfd pfd = { .fd = fe->sock, .events = POLLIN };
	char c;
	ssize_t n;

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	n = recv(fe->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return broken(fe, n == 0 ? -ECONNRESET : n > 0 ? -EPROTO : -errno);
}

static int fe_send(struct hvn_vu_frontend *fe, const struct vu_msg *m)
{
	int r;

	if (fe->broken)
		return -ENOTCONN;
	r = fe_check_quiet(fe);
	if (r)
		return r;
	r = vu_msg_send(fe->sock, m);
	if (r == 0)
		return 0;
	/*
	 * Part of the message may have gone: the stream is out of step
	 * whatever the error.  EAGAIN is SO_SNDTIMEO expiring on a backend
	 * that stopped reading.
	 */
	if (r == -EAGAIN)
		r = -ETIMEDOUT;
	else if (r == -EPIPE)
		r = -ECONNRESET;
	return broken(fe, r);
}

/*
 * Wait for the reply to request and check its header.  *reply points into
 * fe->rd and is valid until the next request.  A reply may carry at most
 * max_fds descriptors; the caller takes them out of (*reply)->fds.
 */
static int fe_recv_fds(struct hvn_vu_frontend *fe, uint32_t request, const struct vu_msg **reply,
		       unsigned int max_fds)
{
	int64_t deadline = now_ms() + fe->timeout_ms;
	struct vu_msg *m = &fe->rd.msg;
	int r;

	vu_reader_init(&fe->rd);
	for (;;) {
		struct pollfd pfd = { .fd = fe->sock, .events = POLLIN };
		int64_t left;

		r = vu_msg_read(fe->sock, &fe->rd);
		if (r == 1)
			break;
		if (r < 0)
			return broken(fe, r == -EMSGSIZE ? -EPROTO : r);
		left = deadline - now_ms();
		if (left <= 0)
			return broken(fe, -ETIMEDOUT);
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return broken(fe, -errno);
	}
	/* Never keep a descriptor we did not expect. */
	if (m->nfds > max_fds) {
		vu_msg_close_fds(m);
		return broken(fe, -EPROTO);
	}
	/* QEMU's rule too: exactly version 1 and REPLY, nothing else. */
	if (m->hdr.flags != (VU_VERSION | VU_FLAG_REPLY) || m->hdr.request != request) {
		vu_msg_close_fds(m);
		return broken(fe, -EPROTO);
	}
	*reply = m;
	return 0;
}

/* Almost every reply carries no descriptor. */
static int fe_recv(struct hvn_vu_frontend *fe, uint32_t request, const struct vu_msg **reply)
{
	return fe_recv_fds(fe, request, reply, 0);
}

/* A request with a reply of its own, of exactly size bytes. */
static int fe_call(struct hvn_vu_frontend *fe, const struct vu_msg *m, uint32_t size,
		   const struct vu_msg **reply)
{
	int r = fe_send(fe, m);

	if (r == 0)
		r = fe_recv(fe, m->hdr.request, reply);
	if (r == 0 && (*reply)->hdr.size != size)
		r = broken(fe, -EPROTO);
	return r;
}

static int fe_get_u64(struct hvn_vu_frontend *fe, uint32_t request, uint64_t *val)
{
	const struct vu_msg *reply;
	struct vu_msg m;
	int r;

	msg_init(&m, request, 0);
	r = fe_call(fe, &m, sizeof(uint64_t), &reply);
	if (r == 0)
		*val = reply->payload.u64;
	return r;
}

/*
 * A request without a reply of its own.  With REPLY_ACK, ask for the
 * acknowledgement, so the backend's refusal comes back here (-EIO) and the
 * caller knows the request took effect before going on.
 */
static int fe_request(struct hvn_vu_frontend *fe, struct vu_msg *m)
{
	const struct vu_msg *reply;
	int r;

	if (!(fe->protocol & HVN_VU_PROTOCOL_F_REPLY_ACK))
		return fe_send(fe, m);
	m->hdr.flags |= VU_FLAG_NEED_REPLY;
	r = fe_call(fe, m, sizeof(uint64_t), &reply);
	if (r)
		return r;
	return reply->payload.u64 ? -EIO : 0;
}

/*
 * Without REPLY_ACK, a request that every backend answers proves that the
 * ones before it were processed (a backend handles messages in order):
 * QEMU's enforce_reply() uses GET_FEATURES the same way.
 */
static int fe_sync(struct hvn_vu_frontend *fe)
{
	uint64_t dummy;

	if (fe->protocol & HVN_VU_PROTOCOL_F_REPLY_ACK)
		return 0;
	return fe_get_u64(fe, VU_GET_FEATURES, &dummy);
}

static int check_fd(int fd, bool optional)
{
	if (fd < 0)
		return optional && fd == -1 ? 0 : -EBADF;
	/* Refuse it before sending: sendmsg() failing half way would break the stream. */
	return fcntl(fd, F_GETFD) < 0 ? -EBADF : 0;
}

/* The handshake QEMU does at realize: features, protocol features, ownership. */
static int fe_handshake(struct hvn_vu_frontend *fe, uint64_t disable)
{
	struct vu_msg m;
	uint64_t val;
	int r;

	r = fe_get_u64(fe, VU_GET_FEATURES, &fe->features);
	if (r)
		return r;
	if (fe->features & HVN_VU_F_PROTOCOL_FEATURES) {
		uint64_t p;

		r = fe_get_u64(fe, VU_GET_PROTOCOL_FEATURES, &fe->protocol_offered);
		if (r)
			return r;
		p = fe->protocol_offered & (IMPLEMENTED | fe->extra_protocol) & ~disable;
		/*
		 * Memory slots only with acknowledgements: the caller may
		 * unmap a removed region once we return, so we must know the
		 * backend has let go of it; and libvhost-user (QEMU 7.2)
		 * answers REM_MEM_REG even when no answer was asked for,
		 * which without REPLY_ACK would put the stream out of step.
		 */
		if (!(p & HVN_VU_PROTOCOL_F_REPLY_ACK))
			p &= ~HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
		msg_init(&m, VU_SET_PROTOCOL_FEATURES, sizeof(uint64_t));
		m.payload.u64 = p;
		/* Not acknowledged: REPLY_ACK is being negotiated by this very message. */
		r = fe_send(fe, &m);
		if (r)
			return r;
		fe->protocol = p;
	}
	if (fe->protocol & HVN_VU_PROTOCOL_F_MQ) {
		r = fe_get_u64(fe, VU_GET_QUEUE_NUM, &val);
		if (r)
			return r;
		if (val == 0 || val > MAX_QUEUES)
			return broken(fe, -EPROTO);
		fe->queues = (uint32_t)val;
	}
	fe->max_regions = VU_MEM_TABLE_REGIONS;
	if (fe->protocol & HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) {
		r = fe_get_u64(fe, VU_GET_MAX_MEM_SLOTS, &val);
		if (r)
			return r;
		if (val == 0)
			return broken(fe, -EPROTO);
		/* Beyond what our own table holds, more slots are no use. */
		if (val > HVN_MEM_MAX_REGIONS)
			val = HVN_MEM_MAX_REGIONS;
		if (val > fe->max_regions)
			fe->max_regions = (uint32_t)val;
	}
	fe->regions = calloc(fe->max_regions, sizeof(*fe->regions));
	if (!fe->regions)
		return -ENOMEM;
	msg_init(&m, VU_SET_OWNER, 0);
	return fe_request(fe, &m);
}

static int check_opts(const struct hvn_vu_frontend_opts *opts)
{
	if (!opts)
		return 0;
	if ((opts->flags & ~FRONTEND_FLAGS) || opts->reserved[0] || opts->reserved[1] ||
	    opts->timeout_ms > INT32_MAX)
		return -EINVAL;
	return 0;
}

static int fe_new(struct hvn_vu_frontend **fep, int fd, const struct hvn_vu_frontend_opts *opts)
{
	struct hvn_vu_frontend *fe;
	struct timeval tv;
	int r;

	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->sock = fd;
	fe->timeout_ms = opts && opts->timeout_ms ? (int)opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	if (opts && (opts->flags & HVN_VU_FRONTEND_F_INFLIGHT))
		fe->extra_protocol |= HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD;
	/*
	 * Sends block (a backend must read what it is sent), but not for
	 * ever: a backend that stops reading fills the socket buffer.
	 */
	tv.tv_sec = fe->timeout_ms / 1000;
	tv.tv_usec = (fe->timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		r = -errno;
		goto fail;
	}
	r = fe_handshake(fe, opts ? opts->protocol_disable : 0);
	if (r)
		goto fail;
	*fep = fe;
	return 0;
fail:
	free(fe->regions);
	free(fe);
	return r;
}

int hvn_vu_frontend_connect(struct hvn_vu_frontend **fep, const char *path,
			    const struct hvn_vu_frontend_opts *opts)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd, r;

	if (!fep || !path)
		return -EINVAL;
	r = check_opts(opts);
	if (r)
		return r;
	len = strlen(path);
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);

	/*
	 * Non-blocking only for connect(): a full listen backlog is -EAGAIN
	 * for the caller to retry, not a sleep without a deadline.
	 */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r == -EWOULDBLOCK ? -EAGAIN : r;
	}
	r = fe_new(fep, fd, opts);
	if (r)
		close(fd);
	return r;
}

int hvn_vu_frontend_adopt(struct hvn_vu_frontend **fep, int fd,
			  const struct hvn_vu_frontend_opts *opts)
{
	int val, fl, r;
	socklen_t len = sizeof(val);

	if (!fep)
		return -EINVAL;
	r = check_opts(opts);
	if (r)
		return r;
	if (check_fd(fd, false))
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) < 0)
		return -errno;
	if (val != AF_UNIX)
		return -EINVAL;
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) < 0)
		return -errno;
	if (val != SOCK_STREAM)
		return -EINVAL;
	/* SO_SNDTIMEO bounds blocking sends only: a non-blocking socket would fail at once. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		return -errno;
	return fe_new(fep, fd, opts);
}

void hvn_vu_frontend_close(struct hvn_vu_frontend *fe)
{
	if (!fe)
		return;
	/* The backend sees EOF: vhost-user's only way to say goodbye. */
	close(fe->sock);
	free(fe->regions);
	free(fe);
}

int hvn_vu_frontend_fd(const struct hvn_vu_frontend *fe)
{
	return fe ? fe->sock : -EINVAL;
}

int hvn_vu_frontend_info(const struct hvn_vu_frontend *fe, struct hvn_vu_frontend_info *info)
{
	if (!fe || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->features = fe->features;
	info->protocol_offered = fe->protocol_offered;
	info->protocol_features = fe->protocol;
	info->queues = fe->queues;
	info->max_mem_regions = fe->max_regions;
	return 0;
}

int hvn_vu_frontend_set_features(struct hvn_vu_frontend *fe, uint64_t features)
{
	struct vu_msg m;
	int r;

	if (!fe || (features & ~fe->features))
		return -EINVAL;
	/* Dirty logging (migration) needs SET_LOG_BASE, which we do not implement. */
	if (features & (UINT64_C(1) << VU_F_LOG_ALL))
		return -EOPNOTSUPP;
	/*
	 * Acked whenever offered: protocol features were negotiated at
	 * connect, and the ring enable protocol that start/stop_queue use
	 * depends on it.
	 */
	features |= fe->features & HVN_VU_F_PROTOCOL_FEATURES;
	msg_init(&m, VU_SET_FEATURES, sizeof(uint64_t));
	m.payload.u64 = features;
	r = fe_request(fe, &m);
	if (r)
		return r;
	fe->acked = features;
	fe->features_set = true;
	return 0;
}

static int check_config(const struct hvn_vu_frontend *fe, uint32_t offset, const void *buf,
			uint32_t len)
{
	if (!fe || !buf || len == 0 || len > VU_CONFIG_MAX || offset > UINT32_MAX - len)
		return -EINVAL;
	if (!(fe->protocol & HVN_VU_PROTOCOL_F_CONFIG))
		return -EOPNOTSUPP;
	return 0;
}

int hvn_vu_frontend_get_config(struct hvn_vu_frontend *fe, uint32_t offset, void *buf,
			       uint32_t len)
{
	const struct vu_msg *reply;
	struct vu_msg m;
	int r = check_config(fe, offset, buf, len);

	if (r)
		return r;
	msg_init(&m, VU_GET_CONFIG, (uint32_t)VU_CONFIG_HDR_SIZE + len);
	m.payload.config.offset = offset;
	m.payload.config.size = len;
	r = fe_send(fe, &m);
	if (r == 0)
		r = fe_recv(fe, VU_GET_CONFIG, &reply);
	if (r)
		return r;
	/* An empty reply is how libvhost-user reports that it could not read the config. */
	if (reply->hdr.size == 0)
		return -EIO;
	if (reply->hdr.size != VU_CONFIG_HDR_SIZE + len || reply->payload.config.size != len ||
	    reply->payload.config.offset != offset)
		return broken(fe, -EPROTO);
	memcpy(buf, reply->payload.config.data, len);
	return 0;
}

int hvn_vu_frontend_set_config(struct hvn_vu_frontend *fe, uint32_t offset, const void *buf,
			       uint32_t len)
{
	struct vu_msg m;
	int r = check_config(fe, offset, buf, len);

	if (r)
		return r;
	msg_init(&m, VU_SET_CONFIG, (uint32_t)VU_CONFIG_HDR_SIZE + len);
	m.payload.config.offset = offset;
	m.payload.config.size = len;
	m.payload.config.flags = 0;	/* VHOST_SET_CONFIG_TYPE_FRONTEND: not a migration */
	memcpy(m.payload.config.data, buf, len);
	return fe_request(fe, &m);
}

static int region_from(const struct hvn_mem_region *in, struct fe_region *out)
{
	struct stat st;

	if (in->size == 0 || in->flags || in->gpa + in->size < in->gpa ||
	    in->uaddr + in->size < in->uaddr || in->mmap_offset + in->size < in->mmap_offset)
		return -EINVAL;
	if (check_fd(in->fd, false) || fstat(in->fd, &st) < 0)
		return -EBADF;
	memset(out, 0, sizeof(*out));
	out->r.gpa = in->gpa;
	out->r.size = in->size;
	out->r.uaddr = in->uaddr;
	out->r.mmap_offset = in->mmap_offset;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	return 0;
}

/* Same range from the same file: what the backend has mapped is still right. */
static bool region_same(const struct fe_region *a, const struct fe_region *b)
{
	return a->r.gpa == b->r.gpa && a->r.size == b->r.size && a->r.uaddr == b->r.uaddr &&
	       a->r.mmap_offset == b->r.mmap_offset && a->dev == b->dev && a->ino == b->ino;
}

static int find_region(const struct fe_region *table, unsigned int n, const struct fe_region *r)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (region_same(&table[i], r))
			return (int)i;
	return -1;
}

static int mem_by_table(struct hvn_vu_frontend *fe, const struct fe_region *want,
			const struct hvn_mem_region *regions, unsigned int count)
{
	struct vu_msg m;
	unsigned int i;
	int r;

	if (count == 0)
		return -EINVAL;	/* SET_MEM_TABLE cannot say "no memory" */
	if (count > VU_MEM_TABLE_REGIONS)
		return -E2BIG;
	msg_init(&m, VU_SET_MEM_TABLE,
		 (uint32_t)(offsetof(struct vu_mem_table, regions) + count * sizeof(struct vu_mem_region)));
	m.payload.mem.nregions = count;
	for (i = 0; i < count; i++) {
		m.payload.mem.regions[i] = want[i].r;
		m.fds[i] = regions[i].fd;
	}
	m.nfds = count;
	r = fe_request(fe, &m);
	if (r == 0)
		r = fe_sync(fe);
	if (r)
		return r;
	memcpy(fe->regions, want, count * sizeof(*want));
	fe->nregions = count;
	return 0;
}

/*
 * Make the backend's table equal to want, one region at a time, as QEMU
 * does with CONFIGURE_MEM_SLOTS: regions that stay are not touched (the
 * backend keeps mapping them while the guest runs), removals go first so
 * that their slots are free for the additions.  On an error the record
 * holds what the backend acknowledged, so a retry converges.
 */
static int mem_by_slots(struct hvn_vu_frontend *fe, const struct fe_region *want,
			const struct hvn_mem_region *regions, unsigned int count)
{
	struct vu_msg m;
	unsigned int i;
	int r;

	if (count > fe->max_regions)
		return -ENOSPC;
	for (i = fe->nregions; i-- > 0;) {
		if (find_region(want, count, &fe->regions[i]) >= 0)
			continue;
		msg_init(&m, VU_REM_MEM_REG, sizeof(struct vu_mem_single));
		m.payload.mem_single.region = fe->regions[i].r;
		r = fe_request(fe, &m);
		if (r)
			return r;
		fe->regions[i] = fe->regions[--fe->nregions];
	}
	for (i = 0; i < count; i++) {
		if (find_region(fe->regions, fe->nregions, &want[i]) >= 0)
			continue;	/* kept, or listed twice */
		if (fe->nregions == fe->max_regions)
			return -ENOSPC;
		msg_init(&m, VU_ADD_MEM_REG, sizeof(struct vu_mem_single));
		m.payload.mem_single.region = want[i].r;
		m.fds[0] = regions[i].fd;
		m.nfds = 1;
		r = fe_request(fe, &m);
		if (r)
			return r;
		fe->regions[fe->nregions++] = want[i];
	}
	return 0;
}

int hvn_vu_frontend_set_mem_table(struct hvn_vu_frontend *fe,
				  const struct hvn_mem_region *regions, unsigned int count,
				  unsigned int flags)
{
	const unsigned int known = HVN_VU_MEM_USE_TABLE | HVN_VU_MEM_USE_SLOTS;
	bool slots = fe && (fe->protocol & HVN_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	struct fe_region *want;
	unsigned int i;
	int r;

	if (!fe || (count && !regions) || (flags & ~known) || flags == known ||
	    count > HVN_MEM_MAX_REGIONS)
		return -EINVAL;
	if ((flags & HVN_VU_MEM_USE_SLOTS) && !slots)
		return -EOPNOTSUPP;
	if (flags & HVN_VU_MEM_USE_TABLE)
		slots = false;
	want = calloc(count ? count : 1, sizeof(*want));
	if (!want)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		r = region_from(&regions[i], &want[i]);
		if (r)
			goto out;
	}
	r = slots ? mem_by_slots(fe, want, regions, count) : mem_by_table(fe, want, regions, count);
out:
	free(want);
	return r;
}

static int check_index(const struct hvn_vu_frontend *fe, unsigned int index)
{
	if (!fe || index > VU_VRING_IDX_MASK)
		return -EINVAL;
	if (fe->queues && index >= fe->queues)
		return -EINVAL;
	return 0;
}

static int send_vring_fd(struct hvn_vu_frontend *fe, uint32_t request, unsigned int index, int fd)
{
	struct vu_msg m;

	msg_init(&m, request, sizeof(uint64_t));
	m.payload.u64 = index;
	if (fd < 0) {
		m.payload.u64 |= VU_VRING_NOFD_MASK;
	} else {
		m.fds[0] = fd;
		m.nfds = 1;
	}
	return fe_request(fe, &m);
}

static int send_vring_state(struct hvn_vu_frontend *fe, uint32_t request, unsigned int index,
			    uint32_t num)
{
	struct vu_msg m;

	msg_init(&m, request, sizeof(struct vu_vring_state));
	m.payload.state.index = index;
	m.payload.state.num = num;
	return fe_request(fe, &m);
}

int hvn_vu_frontend_start_queue(struct hvn_vu_frontend *fe, unsigned int index,
				const struct hvn_vu_frontend_vring *vr)
{
	struct vu_msg m;
	int r = check_index(fe, index);

	if (r)
		return r;
	if (!vr || vr->flags || vr->addr.flags || vr->addr.reserved || vr->num == 0 ||
	    vr->num > HVN_VQ_MAX_SIZE || !fe->features_set)
		return -EINVAL;
	if (check_fd(vr->kick_fd, true) || check_fd(vr->call_fd, true) ||
	    check_fd(vr->err_fd, true))
		return -EBADF;

	r = send_vring_state(fe, VU_SET_VRING_NUM, index, vr->num);
	if (r == 0)
		r = send_vring_state(fe, VU_SET_VRING_BASE, index, vr->base);
	if (r == 0) {
		msg_init(&m, VU_SET_VRING_ADDR, sizeof(struct vu_vring_addr));
		m.payload.addr.index = index;
		m.payload.addr.desc = vr->addr.desc;
		m.payload.addr.used = vr->addr.used;
		m.payload.addr.avail = vr->addr.avail;
		m.payload.addr.log = vr->addr.log;
		r = fe_request(fe, &m);
	}
	/*
	 * The call and error fds before the kick fd: a backend may start
	 * processing as soon as it has a kick fd (libvhost-user does), and a
	 * completion without a call fd would be an interrupt lost.
	 */
	if (r == 0)
		r = send_vring_fd(fe, VU_SET_VRING_CALL, index, vr->call_fd);
	if (r == 0)
		r = send_vring_fd(fe, VU_SET_VRING_ERR, index, vr->err_fd);
	if (r == 0)
		r = send_vring_fd(fe, VU_SET_VRING_KICK, index, vr->kick_fd);
	/* With PROTOCOL_FEATURES acked rings start disabled; without, enabled. */
	if (r == 0 && (fe->acked & HVN_VU_F_PROTOCOL_FEATURES))
		r = send_vring_state(fe, VU_SET_VRING_ENABLE, index, 1);
	return r;
}

int hvn_vu_frontend_stop_queue(struct hvn_vu_frontend *fe, unsigned int index, uint32_t *base)
{
	const struct vu_msg *reply;
	struct vu_msg m;
	int r = check_index(fe, index);

	if (r)
		return r;
	if (fe->acked & HVN_VU_F_PROTOCOL_FEATURES) {
		r = send_vring_state(fe, VU_SET_VRING_ENABLE, index, 0);
		if (r)
			return r;
	}
	/* GET_VRING_BASE is what stops the ring; its answer is where to restart. */
	msg_init(&m, VU_GET_VRING_BASE, sizeof(struct vu_vring_state));
	m.payload.state.index = index;
	r = fe_call(fe, &m, sizeof(struct vu_vring_state), &reply);
	if (r)
		return r;
	if (reply->payload.state.index != index)
		return broken(fe, -EPROTO);
	if (base)
		*base = reply->payload.state.num;
	return 0;
}

int hvn_vu_frontend_set_vring_call(struct hvn_vu_frontend *fe, unsigned int index, int fd)
{
	int r = check_index(fe, index);

	if (r)
		return r;
	if (check_fd(fd, true))
		return -EBADF;
	return send_vring_fd(fe, VU_SET_VRING_CALL, index, fd);
}

int hvn_vu_frontend_reset(struct hvn_vu_frontend *fe)
{
	struct vu_msg m;
	int r;

	if (!fe)
		return -EINVAL;
	/* RESET_OWNER is deprecated, but it is what QEMU sends without RESET_DEVICE. */
	msg_init(&m, (fe->protocol & HVN_VU_PROTOCOL_F_RESET_DEVICE) ? VU_RESET_DEVICE
								      : VU_RESET_OWNER, 0);
	r = fe_request(fe, &m);
	if (r == 0)
		r = fe_sync(fe);
	if (r == 0)
		fe->features_set = false;	/* the device starts over: features first */
	return r;
}

int hvn_vu_frontend_get_inflight(struct hvn_vu_frontend *fe, unsigned int num_queues,
				 unsigned int queue_size, struct hvn_vu_inflight *inflight)
{
	const struct vu_msg *reply;
	struct vu_msg m;
	struct stat st;
	int fd, r;

	if (!fe || !inflight || num_queues == 0 || num_queues > UINT16_MAX || queue_size == 0 ||
	    queue_size > UINT16_MAX)
		return -EINVAL;
	if (!(fe->protocol & HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD))
		return -EOPNOTSUPP;
	msg_init(&m, VU_GET_INFLIGHT_FD, sizeof(struct vu_inflight));
	m.payload.inflight.num_queues = (uint16_t)num_queues;
	m.payload.inflight.queue_size = (uint16_t)queue_size;
	r = fe_send(fe, &m);
	if (r == 0)
		r = fe_recv_fds(fe, VU_GET_INFLIGHT_FD, &reply, 1);
	if (r)
		return r;
	m = *reply;	/* its fds are ours now: fe->rd is reused */
	/* A region comes with its fd, "none" (mmap_size 0) without. */
	if (m.hdr.size != sizeof(struct vu_inflight) ||
	    m.nfds != (m.payload.inflight.mmap_size ? 1u : 0u)) {
		vu_msg_close_fds(&m);
		return broken(fe, -EPROTO);
	}
	if (!m.payload.inflight.mmap_size)
		return -EOPNOTSUPP;	/* the backend could not make one */
	fd = m.fds[0];
	/* The VMM will map it: a file shorter than the region would be SIGBUS. */
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) &&
	    (m.payload.inflight.mmap_offset > UINT64_MAX - m.payload.inflight.mmap_size ||
	     m.payload.inflight.mmap_offset + m.payload.inflight.mmap_size > (uint64_t)st.st_size))) {
		close(fd);
		return -EPROTO;
	}
	memset(inflight, 0, sizeof(*inflight));
	inflight->fd = fd;
	inflight->mmap_size = m.payload.inflight.mmap_size;
	inflight->mmap_offset = m.payload.inflight.mmap_offset;
	inflight->num_queues = (uint16_t)num_queues;
	inflight->queue_size = (uint16_t)queue_size;
	return 0;
}

int hvn_vu_frontend_set_inflight(struct hvn_vu_frontend *fe, const struct hvn_vu_inflight *inflight)
{
	struct vu_msg m;

	if (!fe || !inflight || inflight->reserved0 || inflight->reserved1 ||
	    inflight->mmap_size == 0 || inflight->num_queues == 0 || inflight->queue_size == 0)
		return -EINVAL;
	if (check_fd(inflight->fd, false))
		return -EBADF;
	if (!(fe->protocol & HVN_VU_PROTOCOL_F_INFLIGHT_SHMFD))
		return -EOPNOTSUPP;
	msg_init(&m, VU_SET_INFLIGHT_FD, sizeof(struct vu_inflight));
	m.payload.inflight.mmap_size = inflight->mmap_size;
	m.payload.inflight.mmap_offset = inflight->mmap_offset;
	m.payload.inflight.num_queues = inflight->num_queues;
	m.payload.inflight.queue_size = inflight->queue_size;
	m.fds[0] = inflight->fd;
	m.nfds = 1;
	return fe_request(fe, &m);
}
