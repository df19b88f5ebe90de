#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install-deps.sh - install everything hvnotify needs to build and to run its
# whole test suite on Debian 12 (bookworm).  Run as root.  Idempotent: packages
# already present are left alone, and a second run does no network I/O unless
# something is missing.
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --build    build dependencies only
set -eu

BUILD_PKGS="build-essential autoconf automake libtool pkg-config
            liburing-dev libevent-dev"
# The tests boot Debian's own kernel under QEMU (TCG): once as a plain guest
# for vhost-user, once with an emulated SVM CPU to get a real KVM (nested).
# The kernel image's modules (kvm, kvm_amd, virtio_blk ...) go into an
# initramfs with a static busybox.  clang builds the libFuzzer targets;
# valgrind and strace are used by the hygiene tests.
TEST_PKGS="qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio
           xz-utils zstd gzip binutils clang libclang-rt-dev valgrind strace
           procps python3"

pkgs=$BUILD_PKGS
case "${1:-}" in
    --build) ;;
    "") pkgs="$BUILD_PKGS $TEST_PKGS" ;;
    -h|--help) sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: must run as root (apt-get install)" >&2
    exit 1
fi

missing=""
for p in $pkgs; do
    # "install ok installed" is the only state that means the package is usable.
    s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$s" = "install ok installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "install-deps.sh: all dependencies present"
    exit 0
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is wanted
apt-get install -y -q --no-install-recommends $missing
