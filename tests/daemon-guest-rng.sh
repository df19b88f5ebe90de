#!/bin/sh
# SPDX-License-Identifier: MIT
#
# daemon-guest-rng.sh - hvnotifyd's virtio-rng device feeding a real Linux
# guest under QEMU (TCG): hvnotifyd serves two devices, the guest's disk
# (blk, which the harness always gives the guest) and an entropy device
# (rng) that QEMU presents as vhost-user-rng-pci.  The guest's virtio_rng
# driver registers with hw_random, and the guest reads /dev/hwrng; it
# checks that it got every byte it asked for and that they are not all the
# same (all a guest can check of random bytes).  Then the host checks what
# the guest cannot: hvnotifyd exits 0 on SIGTERM with no descriptor left
# open, and its totals show the rng device served that connection's
# requests.
#
# Skips (77) without QEMU (or its vhost-user-rng-pci), the kernel or
# busybox, unless HVN_CI=1.  Logs: tests/daemon-guest-rng.out/.
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${top_builddir:-.}
daemon=$(cd "$build" && pwd)/daemon/hvnotifyd
out=$(cd "$build" && pwd)/tests/daemon-guest-rng.out
bytes=32768

if [ ! -x "$daemon" ]; then
    echo "FAIL: $daemon not built"
    exit 1
fi
rm -rf "$out"
mkdir -p "$out"
bash "$src/tests/guest/run-guest.sh" --workload rng --rng-bytes $bytes \
    --rng-socket "$out/rng.sock" --out "$out" --timeout 240 \
    --backend "exec '$daemon' -v --device blk,path=\$HVN_IMG,socket=\$HVN_SOCK --device rng,socket=\$HVN_RNG_SOCK"
rc=$?
[ $rc = 0 ] || exit $rc

# "total rng1: 1 connection, N requests, ..." is the daemon's last word on
# the device; the guest's /dev/hwrng reads cannot have come from elsewhere.
line=$(grep -o 'total rng1: .*' "$out/backend.log")
echo "hvnotifyd: $line"
n=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) requests.*/\1/p')
if [ -z "$n" ] || [ "$n" -lt 1 ]; then
    echo "FAIL: hvnotifyd's rng device served no request (backend.log: $out/backend.log)"
    exit 1
fi
echo "ok   hvnotifyd's rng device served $n requests for the guest's $bytes bytes"
exit 0
