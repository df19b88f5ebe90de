/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - the real hvnotifyd for tests: start it ($top_builddir's
 * binary, through its libtool wrapper, which execs it in place so the pid
 * is the daemon's), wait until it says it is ready, read its log, watch its
 * descriptors through /proc, stop it; and a frontend session on it, the
 * VMM and the guest at once (the frontend API, memfd guest memory,
 * virtio-blk requests on a split ring).
 *
 * A test may keep its daemon's files in a scratch directory under /tmp
 * (hvnd_scratch()): unix socket paths are short (108 bytes), and a build
 * tree (distcheck's) may be deep.
 */
#ifndef HVN_TEST_DAEMON_H
#define HVN_TEST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hvnotify/vhost_user.h>

#include "../../lib/guest/blk_req.h"
#include "../../lib/guest/guest_mem.h"
#include "../../lib/guest/vring_driver.h"

struct hvnd {
	pid_t pid;		/* 0: not running */
	char log[256];		/* its stdout and stderr */
	char dir[64];		/* the scratch directory, if any */
};

/* Milliseconds on the monotonic clock. */
long long hvnd_now_ms(void);

/*
 * Make a scratch directory /tmp/hvn-NAME-XXXXXX for d (the caller puts
 * images and sockets there, the log goes there), removed at exit with the
 * daemon killed first if it still runs (HVN_KEEP=1 keeps it).  One per
 * test program; exits the program if it cannot.
 */
void hvnd_scratch(struct hvnd *d, const char *name);
/* A path in the scratch directory. */
const char *hvnd_path(const struct hvnd *d, const char *file, char *buf, size_t len);
/* An image file of size bytes (sparse) in the scratch directory: 0 or -errno. */
int hvnd_image(const struct hvnd *d, const char *file, unsigned long long size, char *path,
	       size_t len);

/*
 * The daemon binary of the build tree, or NULL if top_builddir is unset;
 * $HVND_BINARY instead if set (a wrapper that execs the daemon, e.g. to run
 * it as another user).
 */
const char *hvnd_binary(void);

/*
 * Run the daemon with args (NULL-terminated, without argv[0]), output to
 * log (NULL: the scratch directory's hvnotifyd.log); wait up to timeout_ms
 * for "ready" in the log.  Returns 0 when ready, or, if the daemon exited
 * first, its exit status (> 0), with d->pid 0; -ETIMEDOUT if neither.  The
 * daemon dies with the test (PR_SET_PDEATHSIG).
 */
int hvnd_start(struct hvnd *d, const char *log, const char *const *args, int timeout_ms);
/* The daemon still runs (a daemon that exited is reaped, and says so). */
bool hvnd_running(struct hvnd *d);
/* Wait for its exit: its exit status, 128 + signal if killed; -ETIMEDOUT
 * (then it is killed). */
int hvnd_wait(struct hvnd *d, int timeout_ms);
/* SIGTERM, then hvnd_wait(). */
int hvnd_stop(struct hvnd *d, int timeout_ms);
/* The whole log as one string (malloc'd; "" if there is none yet), or NULL. */
char *hvnd_log_text(const struct hvnd *d);
/* Times needle occurs in the log. */
unsigned int hvnd_log_count(const struct hvnd *d, const char *needle);
/* Wait until the log holds needle at least n times: true, or false on timeout. */
bool hvnd_log_wait(const struct hvnd *d, const char *needle, unsigned int n, int timeout_ms);
/* Print the log's last lines, for a failing test's log. */
void hvnd_log_dump(const struct hvnd *d, unsigned int lines);
/* How far the log goes now: a mark from which to look for new lines. */
long hvnd_log_mark(const struct hvnd *d);
/*
 * Wait up to timeout_ms for a complete line after mark that contains every
 * one of needles (NULL-terminated).  Returns true and copies the line to
 * line (if not NULL).
 */
bool hvnd_log_find(const struct hvnd *d, long mark, const char *const *needles, char *line,
		   size_t len, int timeout_ms);
/* The same, for one string. */
bool hvnd_log_has(const struct hvnd *d, long mark, const char *needle, char *line, size_t len,
		  int timeout_ms);
/* Print the log from mark on, indented, to stdout. */
void hvnd_log_dump_from(const struct hvnd *d, long mark);

/* Entries of /proc/PID/fd, or -1. */
int proc_fd_count(pid_t pid);

/* A process's descriptors, from /proc/PID/fd, and its memfd mappings. */
struct fd_census {
	int total;		/* open descriptors */
	int eventfds;		/* anon_inode:[eventfd] */
	int memfds;		/* /memfd:... */
	int tagged;		/* memfds whose name contains the tag, eventfds whose count is it */
	int maps;		/* /proc/PID/maps lines of memfd mappings */
	int maps_tagged;	/* of those, of memfds whose name contains the tag */
};

/*
 * Count pid's descriptors and its memfd mappings (a mapping keeps its file
 * alive without a descriptor); tag, if not NULL, is a memfd name fragment
 * to look for, and tag_count an eventfd counter value to look for (0:
 * none): an eventfd is only identifiable by what it holds
 * (/proc/PID/fdinfo).  Returns 0 or -errno.
 */
int fd_census(pid_t pid, const char *tag, unsigned long long tag_count, struct fd_census *c);
/* A "Key:  N kB" field of /proc/PID/status in kB, or -1. */
long proc_status_kb(pid_t pid, const char *key);
/* Lines of /proc/PID/maps (mappings), or -1. */
long proc_map_count(pid_t pid);

/* Per request of a session (connect, messages, I/O); default 5000. */
extern int hvnd_timeout_ms;

/* Guest memory of a session: one region, rings and data inside. */
#define SESS_MEM_SIZE	0x100000ull
#define SESS_RING	0x000000ull
#define SESS_META	0x004000ull
#define SESS_DATA	0x010000ull
#define SESS_QSIZE	64

/* A frontend with queue 0 of a virtio-blk device, as a VMM and guest. */
struct hvnd_session {
	struct hvn_vu_frontend *fe;
	struct gmem *g;
	struct vring_driver d;
	struct blk_queue q;
	int kick, call, err;
	uint32_t made;		/* requests put in the ring since it was laid out */
	bool ring, running;
	uint64_t features;
};

/*
 * Connect to sock, negotiate (VERSION_1 and FLUSH), share every region of
 * g.  Retries for up to timeout_ms while the device is busy with a
 * previous frontend (the daemon closes a second one at once).  Returns 0 or
 * -errno; *refused counts the refusals, if not NULL.
 */
int sess_open(struct hvnd_session *s, struct gmem *g, const char *sock, int timeout_ms,
	      unsigned int *refused);
/* Lay out a fresh ring (once per session) and start queue 0 from s->made. */
int sess_start(struct hvnd_session *s);
/* One request on queue 0: its status byte or -errno. */
int sess_io(struct hvnd_session *s, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len);
/* Stop queue 0: 0 if GET_VRING_BASE says every request was seen, -errno otherwise. */
int sess_stop(struct hvnd_session *s);
/* Close the connection and free the ring and eventfds. */
void sess_close(struct hvnd_session *s);

#endif /* HVN_TEST_DAEMON_H */
