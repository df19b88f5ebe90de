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
#   daemon-guest.sh nouring  the daemon under tests/no-uring, a seccomp
#                            filter that makes io_uring_setup fail with EPERM
#                            as Docker's default profile does: the daemon
#                            must run on epoll, say so and why in its log,
#                            and serve the guest all the same
#   daemon-guest.sh mq nouring   both
#
# HVN_DAEMON_WRAPPER, when set, is a command put in front of the daemon's
# (split into words by the shell: "strace -f -o /tmp/trace", say); nouring
# sets it to tests/no-uring.
#
# Skips (77) without QEMU, the kernel or busybox, unless HVN_CI=1.
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=${top_builddir:-.}
build=$(cd "$build" && pwd)
daemon=$build/daemon/hvnotifyd
queues=1 workers=1 name=daemon-guest nouring=0
wrapper=${HVN_DAEMON_WRAPPER:-}
for mode in "$@"; do
    case $mode in
    mq) queues=2 workers=2 name=$name-mq ;;
    nouring)
        nouring=1 ;;
    *) echo "usage: $0 [mq] [nouring]" >&2; exit 2 ;;
    esac
done
expect=""
if [ "$nouring" = 1 ]; then
    name=$name-nouring
    wrapper="'$build/tests/no-uring'"
    expect="data-plane worker$([ "$workers" = 1 ] || echo s) on epoll (io_uring unavailable: Operation not permitted"
    if [ ! -x "$build/tests/no-uring" ]; then
        echo "FAIL: $build/tests/no-uring not built"
        exit 1
    fi
fi
out=$build/tests/$name.out

if [ ! -x "$daemon" ]; then
    echo "FAIL: $daemon not built"
    exit 1
fi
rm -rf "$out"
# The harness runs the backend with HVN_SOCK, HVN_IMG and HVN_QUEUES set.
bash "$src/tests/guest/run-guest.sh" --workload verify --queues "$queues" \
    --out "$out" --timeout 240 \
    --backend "exec $wrapper '$daemon' -v --workers $workers --device blk,path=\$HVN_IMG,socket=\$HVN_SOCK,queues=\$HVN_QUEUES"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
if [ -n "$expect" ]; then
    # The guest was served; it must also have been served on epoll, and the
    # operator told why.
    if line=$(grep -F "$expect" "$out/backend.log"); then
        echo "ok   the daemon says: $line"
    else
        echo "FAIL the daemon's log does not say \"$expect...\":"
        grep -F "data-plane worker" "$out/backend.log" | sed 's/^/     /'
        exit 1
    fi
fi
exit 0
