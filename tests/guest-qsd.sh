#!/bin/sh
# SPDX-License-Identifier: MIT
#
# guest-qsd.sh - the real-guest harness end to end, against a backend we did
# not write: qemu-storage-daemon serves a vhost-user-blk disk with one queue
# to a Linux guest under QEMU (TCG); the guest writes a pattern with O_DIRECT
# 1M and 4k requests and reads it back direct and buffered; the host finds it
# in the image file; qemu-storage-daemon exits 0 on SIGTERM.  The hvnotifyd
# tests run the same harness with --backend.  Skips (77) without QEMU, the
# kernel or busybox, unless HVN_CI=1.  Logs: tests/guest-qsd.out/.
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${top_builddir:-.}
out=$build/tests/guest-qsd.out

if ! command -v bash >/dev/null; then
    [ "${HVN_CI:-0}" = 1 ] && { echo "FAIL: no bash"; exit 1; }
    echo "SKIP: no bash"
    exit 77
fi
rm -rf "$out"
exec bash "$src/tests/guest/run-guest.sh" --workload verify --queues 1 \
    --out "$out" --timeout 240
