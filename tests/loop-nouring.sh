#!/bin/sh
# SPDX-License-Identifier: MIT
#
# loop-nouring.sh - tests/loop.t in auto mode where io_uring is forbidden
# (tests/no-uring: a seccomp filter), once with EPERM as Docker's default
# profile and kernel.io_uring_disabled answer, once with ENOSYS as an old
# kernel or gVisor does: the loop must fall back to epoll, say why, and
# pass.
build=${top_builddir:-.}
for err in EPERM ENOSYS; do
    echo "== io_uring_setup fails with $err"
    HVN_TEST_ENGINE=auto HVN_TEST_EXPECT=epoll:$err \
        "$build/tests/no-uring" -e $err "$build/tests/loop.t" || exit $?
done
