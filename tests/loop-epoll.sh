#!/bin/sh
# SPDX-License-Identifier: MIT
# loop-epoll.sh - tests/loop.t on the epoll engine.
HVN_TEST_ENGINE=epoll exec "${top_builddir:-.}/tests/loop.t"
