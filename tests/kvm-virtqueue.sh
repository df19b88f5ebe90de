#!/bin/sh
# SPDX-License-Identifier: MIT
#
# kvm-virtqueue.sh - the whole path on a real KVM, three times: the example
# VMM (examples/kvm-virtqueue.c) runs in the nested-KVM harness
# (tests/kvm/run-nested.sh), its guest writes 8 sectors and reads them back
# through a split virtqueue, and checks every used entry, status and byte.
#
#   1. in-process: the library's virtio-blk on the VMM's own io_uring loop;
#      the doorbell an I/O port (KVM ioeventfd), the interrupt an irqfd
#   2. vhost-user: the same device in hvnotifyd, started in L1 before the
#      VMM (run-nested.sh --daemon), the VMM its frontend; the daemon must
#      exit 0 on SIGTERM, and the VMM checks the daemon's disk file
#   3. Hyper-V: as 1, with HvSignalEvent as the doorbell (KVM_HYPERV_EVENTFD)
#
# Each run passes only if the VMM prints its ok line: every request
# verified by the guest and no doorbell exit to the VMM.  Skips (77) where
# the harness cannot run, or without a static libc to build the programs;
# with HVN_CI=1 those fail instead.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
vmm=$top_builddir/examples/kvm-virtqueue.static
daemon=$top_builddir/daemon/hvnotifyd.static
nested=$top_srcdir/tests/kvm/run-nested.sh
expect='^kvm-virtqueue: ok, 16 requests verified by the guest, 0 doorbell exits'

for p in "$vmm" "$daemon"; do
    if [ ! -x "$p" ]; then
        msg="$p not built: configure found no static libc (apt-get install libc6-dev)"
        case "${HVN_CI:-0}" in 1|yes|true) echo "FAIL: $msg (HVN_CI=1)"; exit 1 ;; esac
        echo "SKIP: $msg"
        exit 77
    fi
done

# 0 pass, 77 skip (the first skip ends the test: the next would too),
# anything else fails the test but the other runs still go.
status=0
run() {
    name=$1
    shift
    echo "=== $name"
    bash "$nested" --expect "$expect" "$@"
    rc=$?
    case $rc in
        0) echo "ok   $name" ;;
        77) echo "SKIP $name"; exit 77 ;;
        *) echo "FAIL $name (exit $rc)"; status=1 ;;
    esac
}

run "in-process device, I/O port doorbell" "$vmm" --doorbell pio
run "device in hvnotifyd over vhost-user, I/O port doorbell" \
    --file "$daemon" --wait-for /tmp/vq.sock \
    --daemon 'dd if=/dev/zero of=/tmp/vq.img bs=64k count=1 2>/dev/null && exec hvnotifyd.static -v --device blk,path=/tmp/vq.img,socket=/tmp/vq.sock' \
    "$vmm" --doorbell pio --vhost-user /tmp/vq.sock --image /tmp/vq.img
run "in-process device, Hyper-V SIGNAL_EVENT doorbell" "$vmm" --doorbell hyperv
exit $status
