// SPDX-License-Identifier: MIT
/*
 * no-uring.c - run a command where io_uring is forbidden, as it is under
 * Docker's default seccomp profile or kernel.io_uring_disabled=2.
 *
 *   no-uring [-e EPERM|ENOSYS|EACCES|EOPNOTSUPP] COMMAND [ARG]...
 *
 * Installs a seccomp filter that makes io_uring_setup(2), io_uring_enter(2)
 * and io_uring_register(2) fail with the errno given (EPERM by default),
 * lets every other system call through, and execs COMMAND.  The filter is
 * inherited by every process COMMAND forks and execs: a test program run
 * under it, and a daemon that program starts, both lose io_uring.
 *
 * Exit status: that of COMMAND; 77 if this machine cannot install the
 * filter (not x86-64, no seccomp), 2 on bad usage, 1 if the filter did not
 * forbid io_uring_setup(2) or COMMAND cannot be run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: no-uring [-e EPERM|ENOSYS|EACCES|EOPNOTSUPP] COMMAND [ARG]...\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int err;
	} errnos[] = {
		{ "EPERM", EPERM }, { "ENOSYS", ENOSYS }, { "EACCES", EACCES },
		{ "EOPNOTSUPP", EOPNOTSUPP },
	};
	int err = EPERM, first = 1;
	unsigned int i;

	if (argc > 2 && !strcmp(argv[1], "-e")) {
		err = 0;
		for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (!strcmp(argv[2], errnos[i].name))
				err = errnos[i].err;
		if (!err)
			return usage();
		first = 3;
	}
	if (first >= argc || argv[first][0] == '-')
		return usage();

#if defined(__x86_64__)
	{
		struct sock_filter filter[] = {
			/* Another architecture's system calls (a 32-bit
			 * program exec'ed below) have other numbers: let
			 * them through rather than misread them. */
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			/* x32 calls share the arch and set a bit in the
			 * number; io_uring's numbers are the same in both. */
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)__X32_SYSCALL_BIT),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
		};
		struct sock_fprog prog = {
			.len = sizeof(filter) / sizeof(filter[0]),
			.filter = filter,
		};
		struct io_uring_params p;
		long r;

		/* Without CAP_SYS_ADMIN, a filter needs no_new_privs: the
		 * command cannot gain privileges (set-user-ID) either. */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
			fprintf(stderr, "no-uring: SKIP: cannot install a seccomp filter: %s\n",
				strerror(errno));
			return 77;
		}
		/* The filter must work, or the tests run under it prove
		 * nothing. */
		memset(&p, 0, sizeof(p));
		r = syscall(__NR_io_uring_setup, 1, &p);
		if (r >= 0 || errno != err) {
			fprintf(stderr, "no-uring: io_uring_setup still %s under the filter\n",
				r >= 0 ? "works" : strerror(errno));
			return 1;
		}
	}
#else
	fprintf(stderr, "no-uring: SKIP: the filter is written for x86-64 only\n");
	return 77;
#endif
	execvp(argv[first], argv + first);
	fprintf(stderr, "no-uring: %s: %s\n", argv[first], strerror(errno));
	return 1;
}
