/* SPDX-License-Identifier: MIT */
/*
 * check.h - the few helpers every test program shares.  A test is a small
 * program that exits 0 (pass), 1 (fail) or 77 (skip, only for hardware the
 * machine lacks); it prints one line per check so that a failing log says
 * exactly what broke.
 */
#ifndef HVN_TEST_CHECK_H
#define HVN_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

static int t_checks, t_failures;

#define CHECK(cond, ...) do {						\
	t_checks++;							\
	if (cond) {							\
		printf("ok   ");					\
	} else {							\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		t_failures++;						\
	}								\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

/* Stop at once: the rest of the test depends on this. */
#define REQUIRE(cond, ...) do {						\
	int t_failed_before = t_failures;				\
	CHECK(cond, __VA_ARGS__);					\
	if (t_failures != t_failed_before)				\
		exit(T_EXIT_FAIL);					\
} while (0)

static inline int t_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, t_checks, t_failures);
	return t_failures ? T_EXIT_FAIL : T_EXIT_PASS;
}

#endif /* HVN_TEST_CHECK_H */
