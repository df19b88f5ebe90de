#!/bin/sh
# SPDX-License-Identifier: MIT
# daemon-guest-nouring.sh - daemon-guest.sh with the daemon where io_uring
# is forbidden (a seccomp filter): it serves the guest on epoll.
exec sh "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/daemon-guest.sh" nouring
