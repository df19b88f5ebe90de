#!/bin/sh
# SPDX-License-Identifier: MIT
#
# daemon-guest.sh - hvnotifyd serving a real Linux guest under QEMU (TCG):
# its disk is a vhost-user-blk device on an image file served by hvnotifyd.
# The guest writes a pattern with O_DIRECT 1M and 4k requests, reads it back
# direct and buffered and checks it; the host finds it in the image file;
# the guest powers off; hvnotifyd exits 0 on SIGTERM, and exits non-zero if
# any descriptor it opened were still open at exit.  Its counters (requests,
# kicks, calls) close the log.
#
#   daemon-guest.sh          one queue, one vCPU, one worker
#   daemon-guest.sh mq       two queues (num-queues=2), two vCPUs, two workers
#
# Skips (77) without QEMU, the kernel or busybox, unless HVN_CI=1.
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${top_builddir:-.}
daemon=$(cd "$build" && pwd)/daemon/hvnotifyd
queues=1 workers=1 name=daemon-guest
case "${1:-}" in
mq) queues=2 workers=2 name=daemon-guest-mq ;;
"") ;;
*) echo "usage: $0 [mq]" >&2; exit 2 ;;
esac
out=$build/tests/$name.out

if [ ! -x "$daemon" ]; then
    echo "FAIL: $daemon not built"
    exit 1
fi
rm -rf "$out"
# The harness runs the backend with HVN_SOCK, HVN_IMG and HVN_QUEUES set.
exec bash "$src/tests/guest/run-guest.sh" --workload verify --queues "$queues" \
    --out "$out" --timeout 240 \
    --backend "exec '$daemon' -v --workers $workers --device blk,path=\$HVN_IMG,socket=\$HVN_SOCK,queues=\$HVN_QUEUES"
