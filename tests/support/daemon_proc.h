/* SPDX-License-Identifier: MIT */
/*
 * daemon_proc.h - the real hvnotifyd as a child process, for the integration
 * tests: start it ($top_builddir/daemon/hvnotifyd) with its standard error
 * in a log file, wait until it is ready, read what it logged, watch its
 * file descriptors through /proc, and stop it (it exits 1 if a descriptor
 * it opened were still open at exit, which the tests check too).
 *
 * Everything lives in a fresh directory under /tmp: unix socket paths are
 * short (108 bytes), and a build tree (distcheck's) may be deep.
 */
#ifndef HVN_TEST_DAEMON_PROC_H
#define HVN_TEST_DAEMON_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct dproc {
	pid_t pid;
	char dir[64];		/* the test's scratch directory */
	char log[128];		/* the daemon's stderr */
};

/*
 * Make the scratch directory (the caller puts images and sockets there)
 * and remove it at exit, stopping the daemon first if it still runs.
 */
void dproc_init(struct dproc *d, const char *name);
/* A path in the scratch directory. */
const char *dproc_path(struct dproc *d, const char *file, char *buf, size_t len);
/* An image file of size bytes (sparse) in the scratch directory. */
int dproc_image(struct dproc *d, const char *file, unsigned long long size, char *path, size_t len);

/*
 * Run the daemon with argv (NULL-terminated, without the program name) and
 * wait up to timeout_ms for its "ready" line.  Returns 0 or -errno
 * (-ETIMEDOUT, or -ECHILD if it exited).
 */
int dproc_start(struct dproc *d, const char *const *argv, int timeout_ms);
/* The daemon's process still runs. */
bool dproc_alive(struct dproc *d);
/* SIGTERM, then wait up to timeout_ms: its exit status, or -1 (killed). */
int dproc_stop(struct dproc *d, int timeout_ms);

/* How far the log goes now: a mark from which to look for new lines. */
long dproc_log_mark(struct dproc *d);
/*
 * Wait up to timeout_ms for a line after mark that contains every one of
 * the strings in needles (NULL-terminated).  Returns true and copies the
 * line to line (if not NULL).
 */
bool dproc_log_find(struct dproc *d, long mark, const char *const *needles, char *line,
		   size_t len, int timeout_ms);
/* The same, for one string. */
bool dproc_log_has(struct dproc *d, long mark, const char *needle, char *line, size_t len,
		  int timeout_ms);
/* Print the log from mark on, indented, to stdout (for a failing check). */
void dproc_log_dump(struct dproc *d, long mark);

/* ---- a process's descriptors, from /proc/PID/fd ---- */

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

/* Milliseconds on the monotonic clock. */
long long dproc_now_ms(void);

#endif /* HVN_TEST_DAEMON_PROC_H */
