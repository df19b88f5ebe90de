#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check.sh - the whole test suite, from a fresh Debian 12 machine or an
# existing build: dependencies, build system, build, then `make check`.
# The real-KVM tests boot Debian's kernel under QEMU (a minute or two).
# Safe to run again; the Automake logs are in tests/*.log.
#
# Environment: see scripts/build.sh (HVN_CONFIGURE_FLAGS, HVN_SKIP_DEPS), and
#   HVN_CI=1   a test that cannot set up what CI installed fails, never skips
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/build.sh
make -j"$(nproc)" check
