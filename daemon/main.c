// SPDX-License-Identifier: MIT
/*
 * main.c - hvnotifyd: serves virtio devices to VMMs over vhost-user, with
 * an io_uring data plane (epoll where io_uring is forbidden).  Options,
 * start-up, signals and a clean exit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "hvnotifyd.h"

#define MAX_DEVICES 64
#define MAX_WORKERS 256

/* Long options without a short form. */
enum { OPT_SOCKET_MODE = 256, OPT_SOCKET_GROUP, OPT_ALLOW_UID };

static struct event_base *base;
static struct device devices[MAX_DEVICES];
static unsigned int nr_devices;

#define DEFAULT_POLL_MAX_NS 32000

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: hvnotifyd [OPTION]... --device SPEC [--device SPEC]...\n"
		"Serve virtio devices to virtual machine monitors over vhost-user.\n"
		"\n"
		"  -d, --device SPEC   a device to serve (repeatable); SPEC is one of\n"
		"        blk,path=FILE,socket=PATH[,readonly][,direct][,queues=N][,serial=ID]\n"
		"        blk,null,size=BYTES,socket=PATH[,queues=N]\n"
		"                      a virtio-blk disk on a file or block device (direct:\n"
		"                      O_DIRECT), or on nothing (null: completes at once, for\n"
		"                      benchmarks); BYTES may end in K, M, G or T\n"
		"        rng,socket=PATH\n"
		"                      a virtio-rng entropy device fed by getrandom(2)\n"
"                      every SPEC may also take mode=MODE and group=GROUP for\n"
"                      its socket\n"
				"  -w, --workers N     data-plane threads, each with its own loop (default 1)\n"
		"      --engine ENGINE the workers' engine: uring, epoll, or auto (the default:\n"
		"                      io_uring, and epoll where io_uring is forbidden or missing)\n"
		"      --poll-max-ns N after work, poll the rings for up to N ns before sleeping,\n"
		"                      adapting the window to the load (default %d; 0: never)\n"
"      --socket-mode MODE    octal mode of the sockets (default 0600)\n"
"      --socket-group GROUP  group (name or number) the sockets are given to\n"
"      --allow-uid USER      also serve frontends of this user (name or number;\n"
"                      repeatable); by default only the daemon's own user\n"
		"  -v, --verbose       debug messages too\n"
		"  -q, --quiet         errors and warnings only\n"
		"  -h, --help          this help\n"
		"  -V, --version       the version\n"
		"\n"
		"Each device listens on its own unix socket (created mode 0600) and serves\n"
		"one frontend at a time, of an allowed user (SO_PEERCRED), e.g. QEMU:\n"
		"  -chardev socket,id=c0,path=PATH -device vhost-user-blk-pci,chardev=c0\n"
		"  -chardev socket,id=c1,path=PATH -device vhost-user-rng-pci,chardev=c1\n"
		"SIGINT or SIGTERM: finish the I/O in flight and exit; SIGUSR1: statistics.\n"
		"See hvnotifyd(8).\n", DEFAULT_POLL_MAX_NS);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg);
static void on_stats_signal(evutil_socket_t sig, short what, void *arg);

static void shutdown_complete(void)
{
	event_base_loopbreak(base);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	static int count;

	if (++count > 1) {
		log_warn("%s again: exiting without waiting for I/O in flight", strsignal((int)sig));
		exit(1);
	}
	log_info("%s: stopping (finishing the I/O in flight)", strsignal((int)sig));
	control_shutdown(shutdown_complete);
}

static void on_stats_signal(evutil_socket_t sig, short what, void *arg)
{
	control_print_stats();
}

/*
 * Every descriptor we opened must be closed at exit.  Descriptors we
 * inherited (a shell's, a service manager's) are not ours: note them first.
 */
#define FD_LIST_MAX 64
static int inherited[FD_LIST_MAX];
static int nr_inherited;

static int list_descriptors(int *out, int max)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;	/* no /proc: nothing to check with */
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(dir))
			continue;
		if (n < max)
			out[n] = fd;
		n++;
	}
	closedir(dir);
	return n;
}

static int check_descriptors(void)
{
	int now[FD_LIST_MAX], n, i, j, leaked = 0;
	char list[256] = "";

	n = list_descriptors(now, FD_LIST_MAX);
	if (n < 0 || nr_inherited < 0)
		return 0;
	for (i = 0; i < n && i < FD_LIST_MAX; i++) {
		for (j = 0; j < nr_inherited && j < FD_LIST_MAX; j++)
			if (inherited[j] == now[i])
				break;
		if (j < nr_inherited && j < FD_LIST_MAX)
			continue;
		leaked++;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), " %d", now[i]);
	}
	if (leaked)
		log_err("%d descriptor%s still open at exit:%s", leaked, leaked == 1 ? "" : "s", list);
	else
		log_debug("exit: every descriptor we opened is closed");
	return leaked;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "poll-max-ns", required_argument, NULL, 'P' },
		{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
		{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
		{ "allow-uid", required_argument, NULL, OPT_ALLOW_UID },
		{ "engine", required_argument, NULL, 'E' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct event *sig_int = NULL, *sig_term = NULL, *sig_usr1 = NULL;
	unsigned long workers = 1;
	unsigned long long poll_max = DEFAULT_POLL_MAX_NS;
	mode_t socket_mode = 0600;
	gid_t socket_gid = 0;
	bool have_group = false;
	uid_t uid;
	enum hvn_loop_engine engine = HVN_LOOP_AUTO;
	char why[256];
	unsigned int i;
	int opt, r, status = 1;

	nr_inherited = list_descriptors(inherited, FD_LIST_MAX);
	while ((opt = getopt_long(argc, argv, "d:w:vqhV", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'd':
			if (nr_devices == MAX_DEVICES) {
				fprintf(stderr, "hvnotifyd: at most %d devices\n", MAX_DEVICES);
				return 2;
			}
			if (device_parse(&devices[nr_devices], optarg, why, sizeof(why)) < 0) {
				fprintf(stderr, "hvnotifyd: --device %s: %s\n", optarg, why);
				return 2;
			}
			devices[nr_devices].index = nr_devices;
			nr_devices++;
			break;
		case 'w':
			errno = 0;
			workers = strtoul(optarg, &end, 10);
			if (errno || *end || workers == 0 || workers > MAX_WORKERS) {
				fprintf(stderr, "hvnotifyd: --workers %s: a number from 1 to %d\n", optarg,
					MAX_WORKERS);
				return 2;
			}
			break;
		case 'P':
			errno = 0;
			poll_max = strtoull(optarg, &end, 10);
			if (errno || *end || poll_max > 1000000000ull) {
				fprintf(stderr, "hvnotifyd: --poll-max-ns %s: nanoseconds, at most 1000000000\n",
					optarg);
				return 2;
			}
			break;
		case OPT_SOCKET_MODE:
			if (access_parse_mode(optarg, &socket_mode) < 0) {
				fprintf(stderr, "hvnotifyd: --socket-mode %s: an octal mode from 0 to "
					"0777, e.g. 0660\n", optarg);
				return 2;
			}
			break;
		case OPT_SOCKET_GROUP:
			if (access_parse_gid(optarg, &socket_gid) < 0) {
				fprintf(stderr, "hvnotifyd: --socket-group %s: no such group\n", optarg);
				return 2;
			}
			have_group = true;
			break;
		case OPT_ALLOW_UID:
			if (access_parse_uid(optarg, &uid) < 0) {
				fprintf(stderr, "hvnotifyd: --allow-uid %s: no such user\n", optarg);
				return 2;
			}
			if (access_allow_uid(uid) < 0) {
				fprintf(stderr, "hvnotifyd: --allow-uid: too many users\n");
				return 2;
			}
			break;
		case 'E':
			if (!strcmp(optarg, "auto")) {
				engine = HVN_LOOP_AUTO;
			} else if (!strcmp(optarg, "uring") || !strcmp(optarg, "io_uring")) {
				engine = HVN_LOOP_URING;
			} else if (!strcmp(optarg, "epoll")) {
				engine = HVN_LOOP_EPOLL;
			} else {
				fprintf(stderr, "hvnotifyd: --engine %s: uring, epoll or auto\n", optarg);
				return 2;
			}
			break;
		case 'v':
			if (log_verbosity < LOG_DEBUG)
				log_verbosity++;
			break;
		case 'q':
			log_verbosity = LOG_WARN;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hvnotifyd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hvnotifyd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (nr_devices == 0) {
		fprintf(stderr, "hvnotifyd: no device to serve: give at least one --device\n");
		usage(stderr);
		return 2;
	}
	for (i = 0; i < nr_devices; i++) {
		unsigned int j;

		/* A device's own mode= and group= win, whatever the order. */
		if (!devices[i].has_mode)
			devices[i].socket_mode = socket_mode;
		if (!devices[i].has_group && have_group) {
			devices[i].socket_gid = socket_gid;
			devices[i].has_group = true;
		}

		for (j = 0; j < i; j++)
			if (!strcmp(devices[i].socket_path, devices[j].socket_path)) {
				fprintf(stderr, "hvnotifyd: two devices on one socket: %s\n",
					devices[i].socket_path);
				return 2;
			}
	}

	/* A frontend that disappears must not kill us on the next write. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nr_devices; i++) {
		if (device_open(&devices[i], why, sizeof(why)) < 0) {
			log_err("%s: %s", devices[i].name, why);
			goto out_devices;
		}
	}
	r = workers_start((unsigned int)workers, engine, poll_max);
	if (r < 0)
		goto out_workers;
	base = event_base_new();
	if (!base) {
		log_err("cannot create the event loop");
		goto out_workers;
	}
	sig_int = evsignal_new(base, SIGINT, on_stop_signal, NULL);
	sig_term = evsignal_new(base, SIGTERM, on_stop_signal, NULL);
	sig_usr1 = evsignal_new(base, SIGUSR1, on_stats_signal, NULL);
	if (!sig_int || !sig_term || !sig_usr1 || evsignal_add(sig_int, NULL) < 0 ||
	    evsignal_add(sig_term, NULL) < 0 || evsignal_add(sig_usr1, NULL) < 0) {
		log_err("cannot watch signals");
		goto out_control;
	}
	access_log_policy();
	if (control_start(base, devices, nr_devices) < 0)
		goto out_control;
	log_info("hvnotifyd %s ready (pid %d)", PACKAGE_VERSION, (int)getpid());

	if (event_base_dispatch(base) < 0)
		log_err("the event loop failed");
	else
		status = 0;

out_control:
	control_free();
	if (sig_int)
		event_free(sig_int);
	if (sig_term)
		event_free(sig_term);
	if (sig_usr1)
		event_free(sig_usr1);
	if (base)
		event_base_free(base);
out_workers:
	workers_stop();
out_devices:
	for (i = 0; i < nr_devices; i++)
		device_close(&devices[i]);
	libevent_global_shutdown();
	if (check_descriptors())
		status = 1;
	log_info("exit %d", status);
	return status;
}
