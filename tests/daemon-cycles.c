// SPDX-License-Identifier: MIT
/*
 * daemon-cycles.c - 1000 frontends, one after the other, leave the real
 * hvnotifyd as they found it: not one descriptor more, and no memory
 * growth that a leak per connection would cause.
 *
 * Each cycle is a whole connection as a VMM makes it: connect (the
 * protocol handshake), SET_FEATURES, share guest memory (a memfd the
 * daemon maps), start queue 0 (three eventfds the daemon keeps, a queue on
 * the worker), and close.  Every 10th cycle writes and reads back 4 KiB
 * through the ring (io_uring I/O on the disk image); every 3rd stops the
 * queue before it closes (GET_VRING_BASE), the others hang up with the
 * queue running, so the daemon's own stop-on-disconnect path runs too.
 *
 * Measures, from /proc/PID of the daemon, once it is idle (no frontend):
 * at start, after a warm-up of 100 cycles, and after 1000:
 *   - open descriptors (/proc/PID/fd): must be the same all three times.
 *     A connection holds the socket, a memfd and its eventfds, so one
 *     leaked descriptor per cycle would be 900 more; any growth fails.
 *   - anonymous resident memory (RssAnon) and the number of mappings:
 *     the warm-up lets malloc's arenas (the main thread's and the worker's)
 *     and libevent's tables reach their working size; after it, memory
 *     that is freed is reused, so the next 900 cycles must add less than
 *     MEM_BOUND_KB (measured: 0 kB).  The bound is 64 KiB over 900 cycles,
 *     73 bytes a cycle: a leaked connection object (the smallest thing a
 *     connection allocates, about 250 bytes with malloc's overhead) grows
 *     it by some 220 kB, and a queue, a memory table or a request table by
 *     more; page-granular noise stays under it.  Byte-exact leaks are for
 *     valgrind (daemon-valgrind.sh) and LeakSanitizer (--enable-sanitizers).  A leaked guest-memory mapping
 *     would add a mapping per cycle: the mappings must not grow.
 * The daemon must then exit 0 at SIGTERM (it also checks at exit that
 * every descriptor it opened is closed).
 *
 * In a sanitizer build (HVN_SANITIZERS=1 from make check), ASan's allocator
 * keeps freed memory in quarantine (256 MB) to catch uses after free, which
 * is growth by design: the daemon here runs without it.  Even so, ASan's
 * own bookkeeping (shadow pages, stack depot) adds some 90 kB over 900
 * cycles, so there the bound is 1 MiB: a connection allocates some 350 kB
 * (its request table mostly), and LeakSanitizer checks the exit anyway.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/check.h"
#include "support/daemon.h"

#define CYCLES		1000
#define WARMUP		100
#define IO_EVERY	10
#define STOP_EVERY	3
#define MEM_BOUND_KB	64
#define MEM_BOUND_SAN_KB 1024
#define IMG_SIZE	(1u << 20)
#define SETTLE_MS	5000

static char dir[64], img[96], sock[96], logpath[96];
static struct hvnd daemon_;

static void cleanup(void)
{
	if (daemon_.pid > 0)
		hvnd_stop(&daemon_, 5000);
	if (!dir[0] || getenv("HVN_KEEP"))
		return;
	unlink(sock);
	unlink(img);
	unlink(logpath);
	rmdir(dir);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sample {
	int fds;
	long rss_kb, anon_kb, maps;
};

/*
 * The daemon winds a connection up after the frontend has hung up (its
 * queue stops on the worker first), so wait for the descriptors to come
 * back to want (or, with want < 0, to stop changing), then sample.
 */
static struct sample sample(int want)
{
	struct sample s;
	int i, last = -1, same = 0;

	for (i = 0; i < SETTLE_MS / 5; i++) {
		s.fds = proc_fd_count(daemon_.pid);
		if (want >= 0 ? s.fds == want : (s.fds == last && ++same == 20))
			break;
		if (s.fds != last)
			same = 0;
		last = s.fds;
		usleep(5000);
	}
	s.rss_kb = proc_status_kb(daemon_.pid, "VmRSS");
	s.anon_kb = proc_status_kb(daemon_.pid, "RssAnon");
	s.maps = proc_map_count(daemon_.pid);
	return s;
}

static void print_sample(const char *when, const struct sample *s)
{
	printf("%-22s %3d fds, VmRSS %6ld kB, RssAnon %6ld kB, %4ld mappings\n", when, s->fds,
	       s->rss_kb, s->anon_kb, s->maps);
}

static unsigned char pat(unsigned int cycle, unsigned int i)
{
	return (unsigned char)(cycle * 31u + i * 7u + 1u);
}

/* One connection, start to end.  Returns false after printing why. */
static bool cycle(struct gmem *g, unsigned int n, unsigned int *refused)
{
	struct hvnd_session s;
	unsigned char *wr = gmem_ptr(g, SESS_DATA, 4096), *rd = gmem_ptr(g, SESS_DATA + 4096, 4096);
	uint64_t sector = (n / IO_EVERY) % (IMG_SIZE / 4096) * 8;
	unsigned int i;
	int r;

	r = sess_open(&s, g, sock, 5000, refused);
	if (r < 0) {
		printf("FAIL cycle %u: connect and negotiate: %s\n", n, strerror(-r));
		return false;
	}
	r = sess_start(&s);
	if (r < 0) {
		printf("FAIL cycle %u: start queue 0: %s\n", n, strerror(-r));
		goto fail;
	}
	if (n % IO_EVERY == 0) {
		for (i = 0; i < 4096; i++)
			wr[i] = pat(n, i);
		memset(rd, 0, 4096);
		r = sess_io(&s, VBLK_T_OUT, sector, SESS_DATA, 4096);
		if (r == VBLK_S_OK)
			r = sess_io(&s, VBLK_T_IN, sector, SESS_DATA + 4096, 4096);
		if (r != VBLK_S_OK || memcmp(wr, rd, 4096)) {
			printf("FAIL cycle %u: write and read back 4 KiB at sector %llu: %d\n", n,
			       (unsigned long long)sector, r);
			goto fail;
		}
	}
	if (n % STOP_EVERY == 0) {
		r = sess_stop(&s);
		if (r < 0) {
			printf("FAIL cycle %u: stop queue 0: %s\n", n, strerror(-r));
			goto fail;
		}
	}
	sess_close(&s);
	return true;
fail:
	sess_close(&s);
	return false;
}

int main(void)
{
	const char *args[] = { "-d", NULL, NULL };
	struct sample s0, s1 = { 0 }, s2;
	unsigned int n, refused = 0, io = 0;
	char spec[256];
	struct gmem g;
	double t0, t1;
	int fd, r, bound = MEM_BOUND_KB;
	bool san;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	REQUIRE(hvnd_binary(), "top_builddir is set (run from make check)");
	snprintf(dir, sizeof(dir), "/tmp/hvn-cycles-XXXXXX");
	REQUIRE(mkdtemp(dir), "mkdtemp");
	atexit(cleanup);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(sock, sizeof(sock), "%s/blk.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/daemon.log", dir);
	fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, IMG_SIZE) == 0, "a 1 MiB image");
	close(fd);

	snprintf(spec, sizeof(spec), "blk,path=%s,socket=%s", img, sock);
	args[1] = spec;
	san = getenv("HVN_SANITIZERS") && !strcmp(getenv("HVN_SANITIZERS"), "1");
	if (san) {
		const char *old = getenv("ASAN_OPTIONS");
		char opts[1024];

		snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:"
			 "thread_local_quarantine_size_kb=0", old ? old : "", old ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
		bound = MEM_BOUND_SAN_KB;
		printf("sanitizer build: ASan without quarantine, memory bound %d kB\n", bound);
	}
	r = hvnd_start(&daemon_, logpath, args, 10000);
	REQUIRE(r == 0, "the daemon starts (%d)", r);
	gmem_init(&g);
	REQUIRE(gmem_add(&g, 0, SESS_MEM_SIZE, 0) == 0, "1 MiB of guest memory");

	s0 = sample(-1);
	print_sample("at start:", &s0);
	t0 = now_s();
	for (n = 0; n < CYCLES; n++) {
		if (n == WARMUP) {
			s1 = sample(s0.fds);
			print_sample("after 100 cycles:", &s1);
		}
		if (!cycle(&g, n, &refused))
			break;
		io += n % IO_EVERY == 0;
	}
	t1 = now_s();
	CHECK(n == CYCLES, "%u of %u cycles (connect, negotiate, share memory, start a queue, "
	      "close), %u with I/O, in %.2f s; %u connects were refused while the device "
	      "wound up the previous frontend", n, CYCLES, io, t1 - t0, refused);
	s2 = sample(s0.fds);
	print_sample("after 1000 cycles:", &s2);
	CHECK(s0.fds > 0 && s1.fds == s0.fds && s2.fds == s0.fds,
	      "no descriptor growth: %d at start, %d after %u cycles, %d after %u", s0.fds, s1.fds,
	      WARMUP, s2.fds, n);
	CHECK(s1.anon_kb > 0 && s2.anon_kb - s1.anon_kb < bound,
	      "anonymous memory grew by %ld kB over the last %u cycles (bound %d kB; %ld kB "
	      "during the warm-up)", s2.anon_kb - s1.anon_kb, n - WARMUP, bound,
	      s1.anon_kb - s0.anon_kb);
	/* ASan's allocator maps a region per size class as it first needs it. */
	CHECK(s1.maps > 0 && s2.maps <= s1.maps + (san ? 8 : 0), "no mapping growth: %ld after %u "
	      "cycles, %ld after %u", s1.maps, WARMUP, s2.maps, n);
	printf("VmRSS: %+ld kB over the last %u cycles\n", s2.rss_kb - s1.rss_kb, n - WARMUP);

	r = hvnd_stop(&daemon_, 10000);
	CHECK(r == 0, "the daemon exits 0 at SIGTERM, every descriptor it opened closed (%d)", r);
	if (t_failures)
		hvnd_log_dump(&daemon_, 30);
	gmem_free(&g);
	return t_done("daemon-cycles");
}
