// SPDX-License-Identifier: MIT
/*
 * daemon-lifecycle.c - the whole life of the real hvnotifyd, as a VMM and
 * its guest live it: connect, I/O through the ring (write, read back,
 * flush, GET_ID), stop the queue and start it again where it stopped,
 * disconnect; reconnect, I/O, hang up with the queue running (the daemon
 * stops it); reconnect, and SIGTERM while that frontend is connected and
 * its queue runs: the daemon closes the connection and exits 0.
 *
 * Alone (make check) it starts the daemon itself, so the sanitizers of an
 * --enable-sanitizers build watch the same lifecycle.  With
 *   --socket PATH --pid PID
 * it drives a daemon that someone else started, the PID being the daemon's
 * process (tests/daemon-valgrind.sh runs it under valgrind), with patient
 * timeouts, and leaves waiting for the daemon's exit to the caller.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/check.h"
#include "support/daemon.h"

#define IMG_SIZE (4u << 20)

static char dir[64], img[96], sockbuf[96], logpath[96];
static struct hvnd daemon_;
static int timeout_ms = 5000;

static void cleanup(void)
{
	if (daemon_.pid > 0)
		hvnd_stop(&daemon_, 5000);
	if (!dir[0] || getenv("HVN_KEEP"))
		return;
	unlink(sockbuf);
	unlink(img);
	unlink(logpath);
	rmdir(dir);
}

static void fill(struct gmem *g, uint64_t gpa, uint32_t len, unsigned int seed)
{
	uint8_t *p = gmem_ptr(g, gpa, len);
	uint32_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 13u + i * 5u + (i >> 9));
}

/* Write len bytes at sector, read them back elsewhere, compare. */
static void write_read(struct hvnd_session *s, uint64_t sector, uint32_t len, unsigned int seed,
		       const char *when)
{
	uint8_t *wr = gmem_ptr(s->g, SESS_DATA, len), *rd = gmem_ptr(s->g, SESS_DATA + len, len);
	int r;

	fill(s->g, SESS_DATA, len, seed);
	memset(rd, 0, len);
	r = sess_io(s, VBLK_T_OUT, sector, SESS_DATA, len);
	CHECK(r == VBLK_S_OK, "%s: write %u bytes at sector %llu (%d)", when, len,
	      (unsigned long long)sector, r);
	r = sess_io(s, VBLK_T_IN, sector, SESS_DATA + len, len);
	CHECK(r == VBLK_S_OK && !memcmp(wr, rd, len), "%s: read them back (%d)", when, r);
}

static struct hvnd_session *open_session(struct hvnd_session *s, struct gmem *g,
					 const char *sock, const char *what)
{
	unsigned int refused = 0;
	int r = sess_open(s, g, sock, timeout_ms, &refused);

	REQUIRE(r == 0, "%s: connect, negotiate, share memory (%d; %u refused)", what, r, refused);
	r = sess_start(s);
	REQUIRE(r == 0, "%s: start queue 0 (%d)", what, r);
	return s;
}

/* The daemon hangs up on us (at shutdown): true if it did within timeout_ms. */
static bool hung_up(struct hvnd_session *s)
{
	struct pollfd pfd = { .fd = hvn_vu_frontend_fd(s->fe), .events = POLLIN };
	char c;

	return poll(&pfd, 1, timeout_ms) == 1 && read(pfd.fd, &c, 1) == 0;
}

static void lifecycle(const char *sock, pid_t pid)
{
	struct hvnd_session s;
	struct gmem g;
	int r;

	gmem_init(&g);
	REQUIRE(gmem_add(&g, 0, SESS_MEM_SIZE, 0) == 0, "1 MiB of guest memory");

	printf("-- first frontend --\n");
	open_session(&s, &g, sock, "first");
	write_read(&s, 0, 4096, 1, "first");
	write_read(&s, 64, 3 * 4096, 2, "first");
	r = sess_io(&s, VBLK_T_FLUSH, 0, 0, 0);
	CHECK(r == VBLK_S_OK, "first: flush (%d)", r);
	memset(gmem_ptr(&g, SESS_DATA, VBLK_ID_BYTES), 0, VBLK_ID_BYTES);
	r = sess_io(&s, VBLK_T_GET_ID, 0, SESS_DATA, VBLK_ID_BYTES);
	CHECK(r == VBLK_S_OK && *(char *)gmem_ptr(&g, SESS_DATA, 1), "first: GET_ID \"%.20s\" (%d)",
	      (char *)gmem_ptr(&g, SESS_DATA, VBLK_ID_BYTES), r);
	r = sess_stop(&s);
	CHECK(r == 0, "first: stop queue 0; GET_VRING_BASE counts every request (%d)", r);
	r = sess_start(&s);
	CHECK(r == 0, "first: start it again where it stopped (%d)", r);
	write_read(&s, 128, 4096, 3, "first, restarted");
	r = sess_stop(&s);
	CHECK(r == 0, "first: stop again (%d)", r);
	sess_close(&s);

	printf("-- second frontend: hangs up with its queue running --\n");
	open_session(&s, &g, sock, "second");
	write_read(&s, 256, 8192, 4, "second");
	sess_close(&s);

	printf("-- third frontend: connected at SIGTERM --\n");
	open_session(&s, &g, sock, "third");
	write_read(&s, 0, 4096, 5, "third");
	REQUIRE(kill(pid, SIGTERM) == 0, "SIGTERM to the daemon (pid %d)", (int)pid);
	CHECK(hung_up(&s), "the daemon closes the connection at shutdown");
	sess_close(&s);
	gmem_free(&g);
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	const char *args[] = { "-v", "-d", NULL, NULL };
	char spec[256];
	pid_t pid = 0;
	int i, fd, r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--socket"))
			sock = argv[i + 1];
		else if (!strcmp(argv[i], "--pid"))
			pid = (pid_t)atoi(argv[i + 1]);
	}
	if (i != argc || (!!sock != !!pid)) {
		fprintf(stderr, "usage: %s [--socket PATH --pid PID]\n", argv[0]);
		return T_EXIT_FAIL;
	}
	if (sock) {
		/* valgrind's daemon is some fifty times slower. */
		timeout_ms = 60000;
		hvnd_timeout_ms = timeout_ms;
		lifecycle(sock, pid);
		return t_done("daemon-lifecycle");
	}

	REQUIRE(hvnd_binary(), "top_builddir is set (run from make check)");
	snprintf(dir, sizeof(dir), "/tmp/hvn-life-XXXXXX");
	REQUIRE(mkdtemp(dir), "mkdtemp");
	atexit(cleanup);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(sockbuf, sizeof(sockbuf), "%s/blk.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemon.log", dir);
	fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, IMG_SIZE) == 0, "a 4 MiB image");
	close(fd);
	snprintf(spec, sizeof(spec), "blk,path=%s,socket=%s", img, sockbuf);
	args[2] = spec;
	r = hvnd_start(&daemon_, logpath, args, 10000);
	REQUIRE(r == 0, "the daemon starts (%d)", r);

	lifecycle(sockbuf, daemon_.pid);
	r = hvnd_wait(&daemon_, 10000);
	CHECK(r == 0, "the daemon exits 0 (%d)", r);
	CHECK(hvnd_log_count(&daemon_, "every descriptor we opened is closed"),
	      "it closed every descriptor it opened");
	if (t_failures)
		hvnd_log_dump(&daemon_, 40);
	return t_done("daemon-lifecycle");
}
