#!/bin/sh
# SPDX-License-Identifier: MIT
#
# daemon-frontend-nouring.sh - the daemon's integration test again, with
# io_uring forbidden by a seccomp filter (as Docker's default profile does):
# the daemon must fall back to its epoll engine, say so, and behave the same.
build=${top_builddir:-.}
HVN_EXPECT_EPOLL=1
export HVN_EXPECT_EPOLL
exec "$build/tests/no-uring" "$build/tests/daemon-frontend.t"
