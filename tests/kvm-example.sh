#!/bin/sh
# SPDX-License-Identifier: MIT
#
# kvm-example.sh - the example VMM (examples/kvm-doorbell.c), which
# scripts/demo-kvm.sh shows, still does what it says: run in the nested-KVM
# harness, its doorbells go to the kernel, then through hvn_dispatch, with
# the counts it checks itself.  Skips and HVN_CI=1 as in kvm-nested.sh.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
prog=$top_builddir/examples/kvm-doorbell.static

if [ ! -x "$prog" ]; then
    msg="$prog not built: configure found no static libc (apt-get install libc6-dev)"
    case "${HVN_CI:-0}" in 1|yes|true) echo "FAIL: $msg (HVN_CI=1)"; exit 1 ;; esac
    echo "SKIP: $msg"
    exit 77
fi
exec bash "$top_srcdir/tests/kvm/run-nested.sh" --expect '^kvm-doorbell: ok' "$prog"
