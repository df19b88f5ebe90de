#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-verify.sh - hvn-bench --verify against hvnotifyd with a file
# backend: every block the benchmark writes is read back and checked, every
# request must complete with VIRTIO_BLK_S_OK and GET_VRING_BASE must count
# every request, in interrupt and poll mode, with and without EVENT_IDX,
# and once with two queues; and --loopback, which needs no backend.  Then the daemon's own totals (on SIGTERM) must
# equal what the benchmark says it sent and received.
#
# Correctness only: nothing here depends on how fast anything is.
set -u
build=${top_builddir:-.}
bench=$(cd "$build" && pwd)/tools/hvn-bench
daemon=$(cd "$build" && pwd)/daemon/hvnotifyd
secs=${HVN_BENCH_VERIFY_SECS:-0.4}
fail=0

for p in "$bench" "$daemon"; do
    if [ ! -x "$p" ]; then
        echo "FAIL: $p not built"
        exit 1
    fi
done
# Unix socket paths are short: /tmp, not a deep build tree.
dir=$(mktemp -d /tmp/hvn-bench-verify.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# 8 MiB: small enough that random blocks are overwritten many times over.
truncate -s 8M "$dir/disk.img" || exit 1
"$daemon" --device "blk,path=$dir/disk.img,socket=$dir/blk.sock,queues=2" \
    2> "$dir/daemon.log" &
pid=$!

requests=0 kicks=0 signals=0
run() {   # description, then hvn-bench options
    what=$1
    shift
    if out=$("$bench" --socket "$dir/blk.sock" --verify --json --secs "$secs" --warmup 0.1 "$@" \
             2> "$dir/bench.err"); then
        n=$(printf '%s\n' "$out" | sed -E 's/.*"totals": \{"requests": ([0-9]+).*/\1/')
        k=$(printf '%s\n' "$out" | sed -E 's/.*"totals": \{[^}]*"kicks": ([0-9]+).*/\1/')
        s=$(printf '%s\n' "$out" | sed -E 's/.*"totals": \{[^}]*"signals": ([0-9]+).*/\1/')
        requests=$((requests + n)) kicks=$((kicks + k)) signals=$((signals + s))
        echo "ok   $what: $n requests, every write read back and checked"
    else
        echo "FAIL $what: $(cat "$dir/bench.err")"
        fail=1
    fi
}

run "interrupt, qd 8, random" --mode interrupt --qd 8 --rw randwrite
run "interrupt, EVENT_IDX, qd 8, random" --mode interrupt --event-idx --qd 8 --rw randwrite
run "poll, qd 8, sequential" --mode poll --qd 8 --rw write
run "poll, EVENT_IDX, qd 8, random" --mode poll --event-idx --qd 8 --rw randread
run "interrupt, qd 1, 64 KiB" --mode interrupt --qd 1 --bs 64K
run "interrupt, blocking call eventfd, qd 4" --mode interrupt --blocking-call --qd 4 \
    --rw randwrite
run "interrupt, EVENT_IDX, 2 queues x qd 4" --mode interrupt --event-idx --queues 2 --qd 4 \
    --rw randwrite
run "poll, 2 queues x qd 4" --mode poll --queues 2 --qd 4 --rw randwrite

# --loopback: the driver against libhvnotify's device side in one thread
# (how hvn-compare measures the tool's own cost) must complete cleanly too.
if "$bench" --loopback --qd 8 --secs 0.2 --warmup 0 > "$dir/loopback.out" 2>&1; then
    echo "ok   --loopback: $(grep "^  IOPS" "$dir/loopback.out" | sed "s/^ *//")"
else
    echo "FAIL --loopback: $(cat "$dir/loopback.out")"
    fail=1
fi

# The daemon must still be there, exit 0, and have counted what we did.
if ! kill "$pid" 2>/dev/null; then
    echo "FAIL hvnotifyd died: $(tail -n 5 "$dir/daemon.log")"
    pid=
    exit 1
fi
wait "$pid"
status=$?
pid=
if [ $status -ne 0 ]; then
    echo "FAIL hvnotifyd exited $status: $(tail -n 5 "$dir/daemon.log")"
    fail=1
fi
line=$(grep ' total blk0: ' "$dir/daemon.log")
d_req=$(printf '%s\n' "$line" | sed -E 's/.* ([0-9]+) requests,.*/\1/')
d_kicks=$(printf '%s\n' "$line" | sed -E 's/.* ([0-9]+) kicks,.*/\1/')
d_calls=$(printf '%s\n' "$line" | sed -E 's/.* ([0-9]+) calls,.*/\1/')
if [ "$d_req" = "$requests" ] && [ "$d_calls" = "$signals" ] && [ "$d_kicks" -le "$kicks" ]; then
    echo "ok   hvnotifyd counted $d_req requests and $d_calls calls, as the benchmark did," \
         "and $d_kicks of its $kicks kicks"
else
    echo "FAIL hvnotifyd counted $d_req requests, $d_calls calls, $d_kicks kicks;" \
         "the benchmark $requests requests, $signals signals, $kicks kicks"
    fail=1
fi
exit $fail
