/* SPDX-License-Identifier: MIT */
/*
 * engine.h - which engine a loop test runs on, so that one test program
 * checks both engines behind <hvnotify/loop.h>:
 *
 *   HVN_TEST_ENGINE=uring|epoll|auto   the engine asked for (default uring:
 *                                      a test of io_uring must not pass on
 *                                      epoll because io_uring went away)
 *   HVN_TEST_EXPECT=ENGINE[:ERRNO]     what auto must pick, and for epoll
 *                                      why io_uring could not run (EPERM,
 *                                      EACCES, ENOSYS or EOPNOTSUPP)
 *
 * make check runs the programs on io_uring, on epoll (tests/loop-epoll.sh
 * and the like), and in auto mode under a seccomp filter that forbids
 * io_uring (tests/loop-nouring.sh and the like, through tests/no-uring).
 */
#ifndef HVN_TEST_ENGINE_H
#define HVN_TEST_ENGINE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hvnotify/loop.h>

#include "check.h"

static const struct {
	const char *name;
	int err;
} t_errnos[] = {
	{ "EPERM", EPERM }, { "EACCES", EACCES }, { "ENOSYS", ENOSYS }, { "EOPNOTSUPP", EOPNOTSUPP },
};

static inline const char *t_engine_name(int engine)
{
	switch (engine) {
	case HVN_LOOP_AUTO: return "auto";
	case HVN_LOOP_URING: return "uring";
	case HVN_LOOP_EPOLL: return "epoll";
	}
	return "?";
}

/* "uring", "epoll" or "auto" at the start of s, ended by end; -1 if not. */
static inline int t_engine_parse(const char *s, const char **end)
{
	static const char *const names[] = { "auto", "uring", "epoll" };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		size_t n = strlen(names[i]);

		if (!strncmp(s, names[i], n)) {
			*end = s + n;
			return (int)i;	/* HVN_LOOP_AUTO, _URING, _EPOLL */
		}
	}
	return -1;
}

/*
 * The test's loop, on the engine of HVN_TEST_ENGINE.  Exits 77 (skip) when
 * io_uring was asked for and is not there, 1 when anything else fails or
 * auto did not pick what HVN_TEST_EXPECT says.
 */
static inline struct hvn_loop *t_loop_new(unsigned int entries)
{
	const char *want = getenv("HVN_TEST_ENGINE"), *expect = getenv("HVN_TEST_EXPECT");
	const char *end = "";
	struct hvn_loop *loop;
	int engine = HVN_LOOP_URING, got, why = 0, r;

	if (want && *want) {
		engine = t_engine_parse(want, &end);
		REQUIRE(engine >= 0 && !*end, "HVN_TEST_ENGINE=%s: uring, epoll or auto", want);
	}
	r = hvn_loop_new_engine((enum hvn_loop_engine)engine, entries, &loop);
	if (engine == HVN_LOOP_URING && (r == -EPERM || r == -ENOSYS)) {
		printf("io_uring unavailable here (%s): nothing to test\n", strerror(-r));
		exit(T_EXIT_SKIP);
	}
	REQUIRE(r == 0, "a loop on %s (r=%d)", t_engine_name(engine), r);
	got = hvn_loop_get_engine(loop, &why);
	printf("info engine %s, asked for %s%s%s\n", t_engine_name(got), t_engine_name(engine),
	       why ? ", io_uring: " : "", why ? strerror(-why) : "");
	CHECK(engine == HVN_LOOP_AUTO ? (got == HVN_LOOP_URING || got == HVN_LOOP_EPOLL) : got == engine,
	      "hvn_loop_get_engine says %s", t_engine_name(got));
	CHECK(got == HVN_LOOP_EPOLL || why == 0, "no fallback reason on io_uring (%d)", why);
	if (expect && *expect) {
		int e = t_engine_parse(expect, &end), err = 0;
		unsigned int i;

		REQUIRE(e > 0 && (!*end || *end == ':'), "HVN_TEST_EXPECT=%s: uring or epoll[:ERRNO]",
			expect);
		if (*end == ':') {
			for (i = 0; i < sizeof(t_errnos) / sizeof(t_errnos[0]); i++)
				if (!strcmp(end + 1, t_errnos[i].name))
					err = t_errnos[i].err;
			REQUIRE(err, "HVN_TEST_EXPECT=%s: an errno name the fallback takes", expect);
		}
		REQUIRE(got == e, "the loop runs on %s, as expected", t_engine_name(e));
		if (err)
			REQUIRE(why == -err, "auto fell back because io_uring said %s (%d)", end + 1, why);
	}
	return loop;
}

#endif /* HVN_TEST_ENGINE_H */
