// SPDX-License-Identifier: MIT
/*
 * access.c - who may be a frontend: the modes, groups and user ids of the
 * options, and the check of each connection's peer.
 *
 * Two locks guard a device.  The socket file's mode and group decide which
 * users the kernel lets connect at all; then the peer's credentials, which
 * the kernel records at connect (SO_PEERCRED) and the peer cannot forge,
 * decide whether the daemon serves it.  A frontend maps guest memory into
 * the daemon and makes it read and write the device's backing file, so the
 * second lock is closed by default to everyone but the daemon's own user:
 * a socket made wider by mistake (or by a directory or group shared for
 * another reason) opens no device to other users.  Root is not let in
 * either unless the daemon runs as root or --allow-uid names it: nothing
 * here needs to trust a VMM merely for running as root.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvnotifyd.h"

#define MAX_ALLOWED_UIDS 64

static uid_t allowed[MAX_ALLOWED_UIDS];
static unsigned int nr_allowed;

/* A decimal id that fits its type: "1000", not "1e3", "-1" or "". */
static int parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	/* (uid_t)-1 and (gid_t)-1 mean "no change" to chown(): never an id. */
	if (errno || *end || *out >= UINT32_MAX)
		return -EINVAL;
	return 0;
}

int access_parse_mode(const char *s, mode_t *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '7')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	/* Permission bits only: setuid, setgid and sticky mean nothing on a
	 * socket and are more likely a typo than a wish. */
	if (errno || *end || v > 0777)
		return -EINVAL;
	*out = (mode_t)v;
	return 0;
}

int access_parse_gid(const char *s, gid_t *out)
{
	struct group *gr;
	unsigned long v;

	if (parse_id(s, &v) == 0) {
		*out = (gid_t)v;
		return 0;
	}
	gr = getgrnam(s);
	if (!gr)
		return -ENOENT;
	*out = gr->gr_gid;
	return 0;
}

int access_parse_uid(const char *s, uid_t *out)
{
	struct passwd *pw;
	unsigned long v;

	if (parse_id(s, &v) == 0) {
		*out = (uid_t)v;
		return 0;
	}
	pw = getpwnam(s);
	if (!pw)
		return -ENOENT;
	*out = pw->pw_uid;
	return 0;
}

int access_allow_uid(uid_t uid)
{
	unsigned int i;

	for (i = 0; i < nr_allowed; i++)
		if (allowed[i] == uid)
			return 0;
	if (nr_allowed == MAX_ALLOWED_UIDS)
		return -ENOSPC;
	allowed[nr_allowed++] = uid;
	return 0;
}

bool access_uid_allowed(uid_t uid)
{
	unsigned int i;

	if (uid == geteuid())
		return true;
	for (i = 0; i < nr_allowed; i++)
		if (allowed[i] == uid)
			return true;
	return false;
}

/* One line at start-up, so that a refusal later is no surprise. */
void access_log_policy(void)
{
	char list[512];
	size_t len;
	unsigned int i, n = 1;

	len = (size_t)snprintf(list, sizeof(list), "%u (the daemon's)", (unsigned int)geteuid());
	for (i = 0; i < nr_allowed && len < sizeof(list); i++) {
		if (allowed[i] == geteuid())
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len, ", %u",
					(unsigned int)allowed[i]);
		n++;
	}
	log_info("frontends served from user id%s %s", n == 1 ? "" : "s", list);
}
