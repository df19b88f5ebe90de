#!/bin/sh
# SPDX-License-Identifier: MIT
#
# demo-kvm.sh - libhvnotify's doorbells on a real KVM, on any x86 Debian 12
# machine, /dev/kvm or not: installs what is missing (as root), builds what
# is not built, then runs the example VMM (examples/kvm-doorbell.c) inside the
# nested-KVM harness: Debian's kernel under QEMU with an emulated AMD SVM CPU,
# kvm_amd loaded, the VMM and its tiny guest on top.  Safe to run again.
#
#   scripts/demo-kvm.sh [-v]     -v: show the L1 console too (kernel, init)
#
# Environment: see scripts/build.sh and tests/kvm/run-nested.sh --help.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

case "${1:-}" in
    -h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

scripts/build.sh
# The example has to be static: the L1 guest has no shared libraries.
if ! make -s examples/kvm-doorbell.static; then
    echo "demo-kvm.sh: could not link examples/kvm-doorbell.static; it needs a static libc" >&2
    echo "demo-kvm.sh: (configure says \"static tests: no\"?  apt-get install libc6-dev)" >&2
    exit 1
fi

echo "demo-kvm.sh: booting a kernel with KVM under QEMU and running examples/kvm-doorbell there"
echo "demo-kvm.sh: (with /dev/kvm on this machine, examples/kvm-doorbell also runs directly)"
echo
exec bash tests/kvm/run-nested.sh "$@" examples/kvm-doorbell.static
