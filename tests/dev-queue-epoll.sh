#!/bin/sh
# SPDX-License-Identifier: MIT
# dev-queue-epoll.sh - tests/dev-queue.t on the epoll engine.
HVN_TEST_ENGINE=epoll exec "${top_builddir:-.}/tests/dev-queue.t"
