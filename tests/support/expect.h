/* SPDX-License-Identifier: MIT */
/*
 * expect.h - assertions for the test programs: print where and what, then
 * exit 1 (the Automake "fail" status).  Values are compared as integers so
 * that errno values print readably.
 */
#ifndef HVN_TEST_EXPECT_H
#define HVN_TEST_EXPECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: %s: expected %s\n",		\
				__FILE__, __LINE__, __func__, #cond);		\
			exit(1);						\
		}								\
	} while (0)

#define EXPECT_EQ(a, b)								\
	do {									\
		long long a_ = (long long)(a), b_ = (long long)(b);		\
		if (a_ != b_) {							\
			fprintf(stderr, "%s:%d: %s: %s is %lld (%s), expected %s = %lld\n", \
				__FILE__, __LINE__, __func__, #a, a_,		\
				a_ < 0 && a_ > -4096 ? strerror((int)-a_) : "-", \
				#b, b_);					\
			exit(1);						\
		}								\
	} while (0)

#define EXPECT_PTR(p)	EXPECT((p) != NULL)

#define RUN(test)								\
	do {									\
		test();								\
		printf("ok %s\n", #test);					\
		fflush(stdout);							\
	} while (0)

#endif /* HVN_TEST_EXPECT_H */
