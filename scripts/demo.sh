#!/bin/sh
# SPDX-License-Identifier: MIT
#
# demo.sh - hvnotifyd serving the disk of a real Linux guest, on a fresh
# Debian 12 machine: installs what is missing (as root), builds what is not
# built, makes a 256 MiB image in a temporary directory, starts hvnotifyd on
# it, boots Debian's kernel under QEMU (TCG: no /dev/kvm needed) with that
# disk as a vhost-user-blk device, lets the guest write, read back and verify
# data, then stops everything and shows what the guest did and what the
# daemon counted.  Safe to run again; about half a minute.
#
#   scripts/demo.sh [-q QUEUES]     default: 1 queue (2: two vCPUs, two workers)
#
# scripts/demo-kvm.sh shows the library's doorbells on a real KVM instead.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

queues=1
while [ $# -gt 0 ]; do
    case $1 in
    -q) queues=${2:?-q needs a number}; shift 2 ;;
    -h|--help) sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

scripts/build.sh
dir=$(mktemp -d /tmp/hvnotify-demo.XXXXXX)
truncate -s 256M "$dir/disk.img"
echo
echo "demo.sh: hvnotifyd serves $dir/disk.img (256 MiB, $queues queue(s)) to a Linux guest under QEMU"
echo

status=0
bash tests/guest/run-guest.sh --workload verify --queues "$queues" --out "$dir" \
    --image "$dir/disk.img" \
    --backend "exec '$top/daemon/hvnotifyd' --workers $queues --device blk,path=\$HVN_IMG,socket=\$HVN_SOCK,queues=\$HVN_QUEUES" \
    > "$dir/demo.log" 2>&1 || status=$?

grep -E 'HG: (PASS|FAIL)|RESULT|hvnotifyd: (total|error)' "$dir/demo.log" | sed 's/^ *//'
echo
stats=$(sed -n 's/.*HG: STATS verify //p' "$dir/demo.log" | tail -n 1)
total=$(sed -n 's/.*hvnotifyd: total [^:]*: //p' "$dir/demo.log" | tail -n 1)
if [ "$status" = 0 ] && [ -n "$stats" ]; then
    echo "What the guest did:   $(echo "$stats" | awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "wrote %s MiB, read %s MiB, verified %s MiB; read %s MiB/s (1M O_DIRECT)", v["written_mib"], v["read_mib"], v["verified_mib"], v["read_MiBps"] }')"
    echo "What hvnotifyd counted: $total"
    echo "(every kick is a guest doorbell that reached the daemon's io_uring; every call is an interrupt it raised)"
    echo
    echo "demo.sh: PASS; the guest powered off, hvnotifyd exited 0 with every descriptor closed"
else
    echo "demo.sh: FAILED (exit $status); the whole log: $dir/demo.log"
fi
echo "demo.sh: logs in $dir (demo.log, serial.log, backend.log)"
exit "$status"
