#!/bin/sh
# SPDX-License-Identifier: MIT
#
# kvm-nested.sh - libhvnotify against a real KVM on any x86 machine:
# tests/kvm/kvm-doorbells.static runs inside the nested-KVM harness
# (tests/kvm/run-nested.sh: Debian's kernel under QEMU TCG with an emulated
# SVM CPU, kvm_amd loaded).  It passes only if the program exits 0 and
# printed its PASS verdict.  make check exports top_srcdir and top_builddir.
#
# Skips (77) where the harness cannot run: no QEMU or kernel image, no
# static libc to build the program.  With HVN_CI=1 those fail instead.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
prog=$top_builddir/tests/kvm/kvm-doorbells.static

if [ ! -x "$prog" ]; then
    msg="$prog not built: configure found no static libc (apt-get install libc6-dev)"
    case "${HVN_CI:-0}" in 1|yes|true) echo "FAIL: $msg (HVN_CI=1)"; exit 1 ;; esac
    echo "SKIP: $msg"
    exit 77
fi
exec bash "$top_srcdir/tests/kvm/run-nested.sh" --expect '^HVN-KVM RESULT: PASS' \
    "$prog" --require-hyperv
