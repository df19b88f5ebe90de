// SPDX-License-Identifier: MIT
/*
 * daemon-access.c - who may reach the real hvnotifyd, and what it does to
 * the path it listens on.
 *
 * Sockets: mode 0600 by default, what --socket-mode and --socket-group say
 * otherwise, and a device's own mode= and group= over both.  The path: a
 * regular file or a symlink there is never replaced (the daemon refuses to
 * start and leaves it as it was), a stale socket is, a live one is not.
 * Peers: a frontend of another user (a child that becomes nobody, 65534)
 * cannot open a 0600 socket at all; through a 0666 one it reaches the
 * daemon, which closes the connection before answering the first message
 * (GET_FEATURES) and logs its pid and uid; with --allow-uid it is served.
 * Root is not special: a daemon running as nobody refuses root's frontend
 * unless --allow-uid root.
 *
 * Acting as another user needs root; without it those checks are not run
 * and the test skips (77) at the end, which CI (HVN_CI=1, as root) counts
 * as a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/check.h"
#include "support/daemon.h"

#define NOBODY 65534
#define START_MS 10000

static char dir[64];
static struct hvnd daemons[2];

static void cleanup(void)
{
	char cmd[128];
	unsigned int i;

	for (i = 0; i < 2; i++)
		if (daemons[i].pid > 0)
			hvnd_stop(&daemons[i], 5000);
	if (dir[0] && !getenv("HVN_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("could not remove %s\n", dir);
	}
}

static bool in_ci(void)
{
	const char *ci = getenv("HVN_CI");

	return ci && (!strcmp(ci, "1") || !strcmp(ci, "yes") || !strcmp(ci, "true"));
}

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static int start(struct hvnd *d, const char *logname, const char *const *args)
{
	char log[128];

	path(log, sizeof(log), logname);
	return hvnd_start(d, log, args, START_MS);
}

static void stop(struct hvnd *d)
{
	int r = hvnd_stop(d, 10000);

	CHECK(r == 0, "the daemon exits 0 at SIGTERM (%d)", r);
	if (r != 0)
		hvnd_log_dump(d, 30);
}

static bool is_socket(const char *p, mode_t *mode, gid_t *gid)
{
	struct stat st;

	if (lstat(p, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	*mode = st.st_mode & 07777;
	*gid = st.st_gid;
	return true;
}

/* Connect to sock: the fd, or -errno. */
static int connect_to(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * What one GET_FEATURES gets on a fresh connection (in the child, as the
 * user it runs as): the exit codes of ask_features().
 */
enum { ASK_REPLY = 0, ASK_CLOSED = 10, ASK_NO_CONNECT = 11, ASK_OTHER = 12 };

static int ask_features(const char *sock)
{
	uint32_t hdr[3] = { 1 /* GET_FEATURES */, 1 /* version */, 0 };
	uint8_t reply[20];
	struct pollfd pfd;
	ssize_t n, got = 0;
	int fd = connect_to(sock), r = ASK_OTHER;

	if (fd < 0)
		return ASK_NO_CONNECT;
	/* The daemon may have closed already: EPIPE is an answer too. */
	if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != sizeof(hdr)) {
		r = errno == EPIPE || errno == ECONNRESET ? ASK_CLOSED : ASK_OTHER;
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < (ssize_t)sizeof(reply)) {
		if (poll(&pfd, 1, 5000) != 1)
			goto out;	/* neither answered nor closed */
		n = read(fd, reply + got, sizeof(reply) - (size_t)got);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			r = got == 0 ? ASK_CLOSED : ASK_OTHER;
			goto out;
		}
		if (n < 0)
			goto out;
		got += n;
	}
	memcpy(hdr, reply, sizeof(hdr));
	/* GET_FEATURES, version 1 with the reply flag, an 8-byte payload. */
	if (hdr[0] == 1 && hdr[1] == (1u | 4u) && hdr[2] == 8)
		r = ASK_REPLY;
out:
	/* Hang up: the device serves the next frontend once this one is gone. */
	close(fd);
	return r;
}

/*
 * A device serves one frontend at a time and refuses the next until the
 * last one is wound up (a second daemon's probe of a live socket is one):
 * to be served, ask again while it closes on us, for up to 5 s.
 */
static int ask_served(const char *sock)
{
	int i, r = ASK_OTHER;

	for (i = 0; i < 500; i++) {
		r = ask_features(sock);
		if (r != ASK_CLOSED)
			break;
		usleep(10000);
	}
	return r;
}

/* Fork, become uid/gid (no supplementary groups), ask: the child's exit code. */
static int ask_as(uid_t uid, gid_t gid, const char *sock, pid_t *child)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(ASK_OTHER + 1);
		_exit(ask_features(sock));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	if (child)
		*child = pid;
	return WEXITSTATUS(status);
}

static void test_modes(gid_t group)
{
	char sock0[96], sock1[96], spec0[160], spec1[192], grp[16];
	const char *args0[] = { "-d", spec0, NULL };
	const char *args1[] = { "--socket-mode", "0660", "--socket-group", grp, "-d", spec0,
				"-d", spec1, NULL };
	mode_t mode;
	gid_t gid;
	int r;

	printf("-- modes and groups --\n");
	path(sock0, sizeof(sock0), "m0.sock");
	path(sock1, sizeof(sock1), "m1.sock");
	snprintf(spec0, sizeof(spec0), "blk,null,size=1M,socket=%s", sock0);
	r = start(&daemons[0], "modes0.log", args0);
	REQUIRE(r == 0, "the daemon starts with one device (%d)", r);
	CHECK(is_socket(sock0, &mode, &gid) && mode == 0600 && gid == getegid(),
	      "the socket is created mode 0600, our group (%04o, gid %u)", (unsigned int)mode,
	      (unsigned int)gid);
	stop(&daemons[0]);
	CHECK(access(sock0, F_OK) < 0 && errno == ENOENT, "the socket is removed at exit");

	/* A device's own keys win over the options, given before or after. */
	snprintf(grp, sizeof(grp), "%u", (unsigned int)group);
	snprintf(spec1, sizeof(spec1), "blk,null,size=1M,socket=%s,mode=0604,group=%u", sock1,
		 (unsigned int)getegid());
	r = start(&daemons[0], "modes1.log", args1);
	REQUIRE(r == 0, "the daemon starts with --socket-mode 0660 --socket-group %s (%d)", grp,
		r);
	CHECK(is_socket(sock0, &mode, &gid) && mode == 0660 && gid == group,
	      "--socket-mode 0660 --socket-group %u: %04o, gid %u", (unsigned int)group,
	      (unsigned int)mode, (unsigned int)gid);
	CHECK(is_socket(sock1, &mode, &gid) && mode == 0604 && gid == getegid(),
	      "mode=0604,group=%u of the device win: %04o, gid %u", (unsigned int)getegid(),
	      (unsigned int)mode, (unsigned int)gid);
	stop(&daemons[0]);
}

static void test_paths(void)
{
	static const char precious[] = "not a socket: must survive\n";
	char file[96], link[96], stale[96], spec[160], buf[64];
	const char *args[] = { "-d", spec, NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t mode;
	gid_t gid;
	ssize_t n;
	int fd, r;

	printf("-- what is at the path --\n");
	path(file, sizeof(file), "file.sock");
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0 && write(fd, precious, strlen(precious)) == (ssize_t)strlen(precious),
		"a regular file at %s", file);
	close(fd);
	snprintf(spec, sizeof(spec), "blk,null,size=1M,socket=%s", file);
	r = start(&daemons[0], "file.log", args);
	CHECK(r == 1, "the daemon refuses to start on a regular file (exit %d)", r);
	CHECK(hvnd_log_count(&daemons[0], "exists and is not a socket; not replacing it"),
	      "it says why");
	fd = open(file, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	      n == (ssize_t)strlen(precious) && !memcmp(buf, precious, (size_t)n),
	      "the file is still there, as it was");
	if (fd >= 0)
		close(fd);

	/* A symlink, even to a socket, is not a socket of ours to replace. */
	path(link, sizeof(link), "link.sock");
	REQUIRE(symlink(file, link) == 0, "a symlink at %s", link);
	snprintf(spec, sizeof(spec), "blk,null,size=1M,socket=%s", link);
	r = start(&daemons[0], "link.log", args);
	CHECK(r == 1, "the daemon refuses to start on a symlink (exit %d)", r);
	CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && stat(file, &st) == 0 &&
	      S_ISREG(st.st_mode) && st.st_size == (off_t)strlen(precious),
	      "the symlink and its target are as they were");

	/* A stale socket: bound, then its listener gone (a killed daemon's). */
	path(stale, sizeof(stale), "stale.sock");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0,
		"a socket listening at %s", stale);
	close(fd);
	CHECK(connect_to(stale) == -ECONNREFUSED, "nobody listens on it any more");
	snprintf(spec, sizeof(spec), "blk,null,size=1M,socket=%s", stale);
	r = start(&daemons[0], "stale.log", args);
	CHECK(r == 0, "the daemon starts on a stale socket (%d)", r);
	CHECK(is_socket(stale, &mode, &gid) && mode == 0600, "and replaces it (mode %04o)",
	      (unsigned int)mode);
	CHECK(ask_served(stale) == ASK_REPLY, "a frontend gets an answer there");

	/* A live socket: the first daemon's.  A second one must not steal it. */
	r = start(&daemons[1], "live.log", args);
	CHECK(r == 1, "a second daemon on the live socket refuses to start (exit %d)", r);
	CHECK(hvnd_log_count(&daemons[1], "is in use by another process"), "it says why");
	CHECK(ask_served(stale) == ASK_REPLY, "the first daemon still serves on its socket");
	stop(&daemons[0]);
}

/* Frontends of other users, to a daemon running as root. */
static void test_peers(void)
{
	char sock[96], spec[160], refused[192];
	const char *closed_args[] = { "-d", spec, NULL };
	const char *open_args[] = { "--socket-mode", "0666", "-d", spec, NULL };
	const char *allow_num[] = { "--socket-mode", "0666", "--allow-uid", "65534", "-d", spec,
				    NULL };
	const char *allow_name[] = { "--socket-mode", "0666", "--allow-uid", "nobody", "-d", spec,
				     NULL };
	pid_t child = 0;
	int r;

	printf("-- frontends of another user --\n");
	path(sock, sizeof(sock), "peer.sock");
	snprintf(spec, sizeof(spec), "blk,null,size=1M,socket=%s", sock);

	r = start(&daemons[0], "peer0.log", closed_args);
	REQUIRE(r == 0, "the daemon starts (%d)", r);
	r = ask_as(NOBODY, NOBODY, sock, NULL);
	CHECK(r == ASK_NO_CONNECT, "nobody cannot even connect to a 0600 socket (%d)", r);
	CHECK(ask_served(sock) == ASK_REPLY, "the daemon's own user is served");
	stop(&daemons[0]);

	r = start(&daemons[0], "peer1.log", open_args);
	REQUIRE(r == 0, "the daemon starts with --socket-mode 0666 (%d)", r);
	r = ask_as(NOBODY, NOBODY, sock, &child);
	CHECK(r == ASK_CLOSED, "nobody connects, and the daemon closes the connection without "
	      "an answer to GET_FEATURES (%d)", r);
	snprintf(refused, sizeof(refused), "refusing a frontend (pid %d, uid 65534, gid 65534)",
		 (int)child);
	CHECK(hvnd_log_wait(&daemons[0], refused, 1, 5000), "the log says: %s", refused);
	CHECK(hvnd_log_count(&daemons[0], "uid 65534 is not allowed"), "and why");
	CHECK(hvnd_log_count(&daemons[0], "frontend connected") == 0,
	      "no connection was served");
	CHECK(ask_served(sock) == ASK_REPLY, "the daemon's own user is still served");
	stop(&daemons[0]);

	r = start(&daemons[0], "peer2.log", allow_num);
	REQUIRE(r == 0, "the daemon starts with --allow-uid 65534 (%d)", r);
	r = ask_as(NOBODY, NOBODY, sock, &child);
	CHECK(r == ASK_REPLY, "nobody gets its answer to GET_FEATURES (%d)", r);
	snprintf(refused, sizeof(refused), "frontend connected on %s (pid %d, uid 65534", sock,
		 (int)child);
	CHECK(hvnd_log_wait(&daemons[0], refused, 1, 5000), "the log says: %s", refused);
	CHECK(ask_served(sock) == ASK_REPLY, "the daemon's own user is served too");
	stop(&daemons[0]);

	r = start(&daemons[0], "peer3.log", allow_name);
	REQUIRE(r == 0, "the daemon starts with --allow-uid nobody (%d)", r);
	r = ask_as(NOBODY, NOBODY, sock, NULL);
	CHECK(r == ASK_REPLY, "a user given by name is served (%d)", r);
	stop(&daemons[0]);
}

/* Run the daemon itself as nobody: then root is just another user. */
static void test_root_peer(void)
{
	char sock[96], spec[160], script[96], log[128];
	const char *refuse_args[] = { "-d", spec, NULL };
	const char *allow_args[] = { "--allow-uid", "root", "-d", spec, NULL };
	FILE *f;
	int r;

	printf("-- root, to a daemon of another user --\n");
	path(sock, sizeof(sock), "root.sock");
	snprintf(spec, sizeof(spec), "blk,null,size=1M,socket=%s,mode=0666", sock);
	/* The daemon's user creates its socket in the directory. */
	REQUIRE(chown(dir, NOBODY, NOBODY) == 0, "give %s to nobody", dir);
	/* The build tree's daemon, run as nobody: setpriv (util-linux) execs
	 * it, and so does its libtool wrapper, so the pid stays the daemon's. */
	path(script, sizeof(script), "as-nobody.sh");
	f = fopen(script, "we");
	REQUIRE(f, "write %s", script);
	fprintf(f, "#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --clear-groups '%s' \"$@\"\n",
		NOBODY, NOBODY, hvnd_binary());
	fclose(f);
	REQUIRE(chmod(script, 0755) == 0, "chmod %s", script);
	setenv("HVND_BINARY", script, 1);

	path(log, sizeof(log), "root0.log");
	r = hvnd_start(&daemons[0], log, refuse_args, START_MS);
	if (r != 0)
		hvnd_log_dump(&daemons[0], 10);
	REQUIRE(r == 0, "the daemon starts as nobody (%d)", r);
	CHECK(hvnd_log_count(&daemons[0], "frontends served from user id 65534 (the daemon's)"),
	      "it serves its own user only");
	r = ask_features(sock);
	CHECK(r == ASK_CLOSED, "root's frontend is refused (%d)", r);
	CHECK(hvnd_log_wait(&daemons[0], "uid 0 is not allowed", 1, 5000), "the log names uid 0");
	stop(&daemons[0]);

	path(log, sizeof(log), "root1.log");
	r = hvnd_start(&daemons[0], log, allow_args, START_MS);
	REQUIRE(r == 0, "the daemon starts as nobody with --allow-uid root (%d)", r);
	r = ask_served(sock);
	CHECK(r == ASK_REPLY, "root's frontend is served (%d)", r);
	stop(&daemons[0]);

	unsetenv("HVND_BINARY");
	REQUIRE(chown(dir, 0, 0) == 0, "give %s back to root", dir);
}

int main(void)
{
	struct group *gr;
	gid_t group;
	bool root = geteuid() == 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	REQUIRE(hvnd_binary(), "top_builddir is set (run from make check)");
	/* Socket paths are short: /tmp, not a deep build tree. */
	snprintf(dir, sizeof(dir), "/tmp/hvn-access-XXXXXX");
	REQUIRE(mkdtemp(dir), "mkdtemp");
	atexit(cleanup);
	/* Others may search it (not list it): the sockets' modes decide. */
	REQUIRE(chmod(dir, 0711) == 0, "chmod 0711 %s", dir);

	/* A group that exists and is not ours, when we may give sockets to it. */
	gr = getgrnam("nogroup");
	group = gr ? gr->gr_gid : NOBODY;
	if (!root)
		group = getegid();
	test_modes(group);
	test_paths();
	if (root) {
		test_peers();
		test_root_peer();
	} else {
		printf("not root: the checks that act as another user are not run\n");
		if (t_failures)
			return t_done("daemon-access");
		if (in_ci()) {
			printf("FAIL not root under HVN_CI=1\n");
			return T_EXIT_FAIL;
		}
		t_done("daemon-access");
		return T_EXIT_SKIP;
	}
	return t_done("daemon-access");
}
