#!/bin/sh
# SPDX-License-Identifier: MIT
# dev-queue-nouring.sh - tests/dev-queue.t in auto mode under a seccomp
# filter that forbids io_uring (tests/no-uring): it must run on epoll.
build=${top_builddir:-.}
HVN_TEST_ENGINE=auto HVN_TEST_EXPECT=epoll:EPERM exec "$build/tests/no-uring" "$build/tests/dev-queue.t"
