#!/bin/bash
# SPDX-License-Identifier: MIT
#
# daemon-guest-restart.sh - killed mid-write, nothing lost: a real Linux
# guest under QEMU (TCG) runs a write-and-verify loop (the harness's soak
# workload) on a vhost-user-blk disk served by hvnotifyd; the test kills
# hvnotifyd with SIGKILL in the middle of it, with requests in flight, and
# starts a new one on the same socket and image a moment later.  QEMU
# (-chardev socket,...,reconnect=1) keeps the guest running, reconnects and
# hands the new hvnotifyd the inflight region it kept; the new hvnotifyd
# resubmits what was in flight.  The guest must see no I/O error, its soak
# must read back every round intact, the image must hold its last round,
# and the second hvnotifyd must exit 0 on SIGTERM.
#
# The moment of the kill: at about KILL_AT seconds into the soak, the test
# stops hvnotifyd (SIGSTOP), reads its inflight region from outside
# (tests/inflight-peek, /proc/PID/mem) and kills it if a request is in
# flight, else lets it go on (SIGCONT) and looks again a few ms later.  So
# every kill lands on requests in flight; the restarted daemon must resume
# from the region and resubmit them (at most as many as the region showed),
# and logs what they are.  The guest issues one request at a time, and
# what is in flight when it is caught is a write or a flush (a read from
# the page cache is over in microseconds): the test kills again, while the
# soak has time left, until a write was among them, and says if none was.
# (tests/daemon-restart.t is where writes in flight are certain: there,
# every request is one.)
#
# The log shows the guest's progress lines and the test's own events on
# one clock (seconds since the test started), then every daemon's log.
# Skips (77) without QEMU, the kernel or busybox, or when this process may
# not read another's memory (not root, ptrace restricted), unless HVN_CI=1.
#
# HVN_RESTART_STRACE=1: trace each restarted hvnotifyd (strace -p, right
# after it listens; QEMU retries once a second, so it connects after that)
# and decode what QEMU sends it on reconnection into OUT/vhost-user-N.txt.
# make check runs it with $(SHELL), which may not be bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -uo pipefail
src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
build=$(cd "${top_builddir:-.}" && pwd)
daemon=$build/daemon/hvnotifyd
peek=$build/tests/inflight-peek
out=$build/tests/daemon-guest-restart.out
SOAK_SECS=${HVN_RESTART_SOAK_SECS:-60}
KILL_AT=${HVN_RESTART_KILL_AT:-8}
DOWN=1.5            # seconds without a backend
MAX_KILLS=${HVN_RESTART_MAX_KILLS:-6}   # kill cycles until a write was in flight
MIN_KILLS=${HVN_RESTART_MIN_KILLS:-1}

for f in "$daemon" "$peek"; do
    [ -x "$f" ] || { echo "FAIL: $f not built"; exit 1; }
done
rm -rf "$out"
mkdir -p "$out" || exit 1
img=$out/disk.img
sock=$out/blk.sock
sockdir=""
if [ ${#sock} -gt 100 ]; then   # sun_path holds 108 bytes
    sockdir=$(mktemp -d /tmp/hvn-sock.XXXXXX) || exit 1
    sock=$sockdir/blk.sock
fi
truncate -s 64M "$img" || exit 1

T0=$EPOCHREALTIME
stamp() {   # seconds since T0, two decimals
    local d=$(( 10#${EPOCHREALTIME//[.,]/} - 10#${T0//[.,]/} ))
    printf '%4d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}
say() { echo "$(stamp) restart-test: $*" | tee -a "$out/test.log"; }

dpid="" gpid="" spid="" incarnation=0
cleanup() {
    # the harness stops its QEMU on SIGTERM
    [ -n "$gpid" ] && { kill "$gpid"; wait "$gpid"; } 2>/dev/null
    [ -n "$dpid" ] && { kill -CONT "$dpid"; kill -KILL "$dpid"; wait "$dpid"; } 2>/dev/null
    [ -n "$spid" ] && wait "$spid" 2>/dev/null
    rm -f "$out/guest.fifo"
    [ -n "$sockdir" ] && rm -rf "$sockdir"
}
trap cleanup EXIT

start_daemon() {
    incarnation=$((incarnation + 1))
    "$daemon" -v --device "blk,path=$img,socket=$sock" \
        </dev/null >"$out/hvnotifyd-$incarnation.log" 2>&1 &
    dpid=$!
    for _ in $(seq 200); do
        grep -q 'ready (pid' "$out/hvnotifyd-$incarnation.log" 2>/dev/null && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.05
    done
    if ! grep -q 'ready (pid' "$out/hvnotifyd-$incarnation.log"; then
        say "FAIL: hvnotifyd #$incarnation did not start:"
        sed 's/^/    /' "$out/hvnotifyd-$incarnation.log"
        exit 1
    fi
    say "hvnotifyd #$incarnation (pid $dpid) listening on $sock"
    if [ "${HVN_RESTART_STRACE:-0}" = 1 ] && [ $incarnation -gt 1 ]; then
        strace -f -tt -yy -xx -s 65536 -o "$out/hvnotifyd-$incarnation.strace" -p "$dpid" \
            -e trace=recvmsg,sendmsg,recvfrom,sendto,read,write,readv,writev,close \
            2>"$out/strace-$incarnation.log" &
        for _ in $(seq 100); do
            grep -q attached "$out/strace-$incarnation.log" 2>/dev/null && break
            sleep 0.02
        done
        say "strace attached to hvnotifyd #$incarnation: $out/hvnotifyd-$incarnation.strace"
    fi
}

# Wait up to $2 seconds for a line matching $1 in file $3; prints it.
wait_line() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        grep -a -m1 -e "$1" "$3" 2>/dev/null && return 0
        [ -n "$gpid" ] && ! kill -0 "$gpid" 2>/dev/null && break
        sleep 0.05
    done
    return 1
}

# The guest's soak is over (or the harness is gone): no more kills.
soak_over() {
    grep -aq 'HG: SOAK-DONE' "$serial" 2>/dev/null || ! kill -0 "$gpid" 2>/dev/null
}

# Stop the daemon and kill it when its region shows requests in flight;
# give up (status 1, the daemon left running) when the soak ends first or
# after 20 s of looking.
kill_in_flight() {
    local tries=0 n r peekout t0=$SECONDS
    while :; do
        if soak_over || [ $((SECONDS - t0)) -ge 20 ]; then
            kill -0 "$dpid" 2>/dev/null && say "no request caught in flight in $tries look(s)" \
                "($((SECONDS - t0))s$(soak_over && echo ', the soak is over')): no kill"
            return 1
        fi
        tries=$((tries + 1))
        kill -STOP "$dpid"
        peekout=$("$peek" "$dpid" 2>&1)
        r=$?
        n=$(sed -n 's/^in_flight=//p' <<<"$peekout")
        if [ $r = 77 ]; then
            kill -CONT "$dpid"
            case ${HVN_CI:-0} in
            1|yes|true) say "FAIL (HVN_CI=1, so not a skip): $peekout"; exit 1 ;;
            esac
            say "SKIP: $peekout"
            exit 77
        elif [ $r != 0 ]; then
            say "FAIL: inflight-peek: $peekout"
            exit 1
        elif [ "${n:-0}" -gt 0 ]; then
            break
        fi
        kill -CONT "$dpid"
        sleep 0.0$((RANDOM % 5 + 1))
    done
    kill -KILL "$dpid"
    kill -CONT "$dpid" 2>/dev/null
    peeked=$n
    say "SIGKILL hvnotifyd #$incarnation (pid $dpid) after $tries look(s), with its inflight region saying:"
    sed 's/^/    /' <<<"$peekout" | tee -a "$out/test.log"
    wait "$dpid" 2>/dev/null
    say "hvnotifyd #$incarnation is gone (status $?)"
    dpid=""
}

# -------------------------------------------------------------------- run --
say "image $img, socket $sock; soak ${SOAK_SECS}s, kill at about ${KILL_AT}s into it"
start_daemon
# The harness runs the guest; its output goes through our clock.
mkfifo "$out/guest.fifo" || exit 1
while IFS= read -r line; do echo "$(stamp) $line"; done <"$out/guest.fifo" |
    tee -a "$out/test.log" &
spid=$!
bash "$src/tests/guest/run-guest.sh" --keep-backend --socket "$sock" --image "$img" \
    --reconnect --workload soak --soak-secs "$SOAK_SECS" --append hg.soak_every=1 \
    --out "$out/guest" --timeout 400 >"$out/guest.fifo" 2>&1 &
gpid=$!
serial=$out/guest/serial.log

if ! wait_line 'HG: INFO soak:' 200 "$serial" >/dev/null; then
    wait "$gpid"
    rc=$?
    gpid=""
    wait "$spid"
    spid=""
    # the harness said why (a skip included)
    [ $rc = 77 ] && exit 77
    say "FAIL: the guest never started its soak"
    exit 1
fi
say "the guest's soak started; killing hvnotifyd in about ${KILL_AT}s"
sleep "$KILL_AT"

# How far the soak is, in whole seconds (its last progress line).
soak_t() {
    local t
    t=$(sed -n 's/.*HG: SOAK w0 t=\([0-9]*\).*/\1/p' "$serial" | tail -n 1)
    echo "${t:-0}"
}

kills=0 resubmitted=0 writes=0 flow_ok=1 over=0
while :; do
    kill_in_flight || break
    kills=$((kills + 1))
    sleep "$DOWN"
    start_daemon
    log=$out/hvnotifyd-$incarnation.log
    if ! wait_line 'frontend connected' 15 "$log" >/dev/null; then
        say "FAIL: QEMU did not reconnect to hvnotifyd #$incarnation within 15s"
        flow_ok=0
        break
    fi
    say "QEMU reconnected to hvnotifyd #$incarnation"
    if ! line=$(wait_line 'resuming from the inflight region' 15 "$log"); then
        say "FAIL: hvnotifyd #$incarnation did not resume queue 0 from the inflight region"
        flow_ok=0
        break
    fi
    say "hvnotifyd #$incarnation: ${line#hvnotifyd: }"
    n=$(sed -n 's/.*: \([0-9]*\) requests\{0,1\} in flight to resubmit.*/\1/p' <<<"$line")
    n=${n:-0}
    # Exactly what the region flagged, or less by a batch that was
    # published but not yet unflagged when the daemon stopped.
    [ "$n" -gt "$peeked" ] && over=1
    resubmitted=$((resubmitted + n))
    # The device logs each resubmitted request as it gets it.
    for _ in $(seq 20); do
        [ "$(grep -ac 'resubmitted head' "$log")" -ge "$n" ] && break
        sleep 0.1
    done
    grep -a 'resubmitted head' "$log" | sed "s/^hvnotifyd: /$(stamp) restart-test:     /" |
        tee -a "$out/test.log"
    writes=$((writes + $(grep -ac 'resubmitted head [0-9]*: write ' "$log")))
    [ $writes -gt 0 ] && [ $kills -ge "$MIN_KILLS" ] && break
    [ $kills -ge "$MAX_KILLS" ] && break
    # Another cycle needs time: looking, a kill, 1.5 s down, the reconnection.
    if soak_over || [ $(( $(soak_t) + 12 )) -gt "$SOAK_SECS" ]; then
        say "the soak is nearly over: no more kills"
        break
    fi
    say "no write was in flight at that kill: once more"
    sleep 1
done

wait "$gpid"
grc=$?
gpid=""
wait "$spid"
spid=""
say "the harness finished (status $grc)"

# The second daemon must still run, and exit cleanly (every fd closed).
drc=1
if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
    kill -TERM "$dpid"
    for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.05; done
    wait "$dpid"
    drc=$?
    dpid=""
fi

# ---------------------------------------------------------------- verdict --
ok=1
check() {   # check CONDITION-STATUS TEXT
    if [ "$1" = 0 ]; then say "ok   $2"; else say "FAIL $2"; ok=0; fi
}
kill_t=$(awk '/restart-test: SIGKILL/ { print $1; exit }' "$out/test.log")
up_t=$(awk '/restart-test: QEMU reconnected/ { t = $1 } END { print t }' "$out/test.log")
before=$(awk -v k="${kill_t:-0}" '/HG: SOAK w0 / && $1 < k { n++ } END { print n + 0 }' "$out/test.log")
after=$(awk -v u="${up_t:-1e9}" '/HG: SOAK w0 / && $1 > u { n++ } END { print n + 0 }' "$out/test.log")
check $(( flow_ok ? 0 : 1 )) "after each of $kills kill(s) QEMU reconnected and the new hvnotifyd resumed from the inflight region"
check $(( kills > 0 ? 0 : 1 )) "hvnotifyd was killed in the middle of the soak ($kills time(s))"
check $(( resubmitted > 0 && !over ? 0 : 1 )) "every kill found requests in flight; the restarted daemons resubmitted $resubmitted, none more than the region showed"
if [ $writes -gt 0 ]; then
    say "     of them $writes write(s): the data of a write the dead daemon held came through"
else
    say "note: no write happened to be in flight at the $kills kill(s), only flushes (tests/daemon-restart.t covers writes)"
fi
check $(( before > 0 && after > 0 ? 0 : 1 )) "the soak's progress spans the kill and the restart: $before progress line(s) before the kill at ${kill_t:-?}s, $after after the reconnection at ${up_t:-?}s"
grep -aq 'HG: SOAK-DONE w0 result=PASS' "$serial"
check $? "the guest's soak read back every round intact ($(sed -n 's/.*HG: SOAK-DONE w0 result=PASS \(rounds=[0-9]*\).*/\1/p' "$serial"))"
! grep -aiE 'I/O error|blk_update_request|buffer I/O' "$serial" >/dev/null
check $? "no I/O error in the guest's console"
check "$grc" "the harness: guest PASS, image check PASS (run-guest.sh status $grc)"
check "$drc" "hvnotifyd #$incarnation exited 0 on SIGTERM, every descriptor closed"

if [ "${HVN_RESTART_STRACE:-0}" = 1 ]; then
    sleep 0.5   # each strace ends with its daemon
    for ((i = 2; i <= incarnation; i++)); do
        t=$out/hvnotifyd-$i.strace
        [ -s "$t" ] || continue
        python3 "$src/tests/guest/vhost-user-decode.py" "$t" >"$out/vhost-user-$i.txt" 2>&1
        say "what QEMU sent hvnotifyd #$i on reconnection ($out/vhost-user-$i.txt):"
        grep -E ' F->B |^# ' "$out/vhost-user-$i.txt" | sed 's/^/    /' | tee -a "$out/test.log"
    done
fi
say "QEMU's log:"
sed 's/^/    /' "$out/guest/qemu.log" | tee -a "$out/test.log"
for ((i = 1; i <= incarnation; i++)); do
    say "hvnotifyd #$i's log (the lines that tell the story):"
    grep -vE 'queue [0-9]+ (runs on worker|stopped after)' "$out/hvnotifyd-$i.log" |
        sed 's/^/    /' | tee -a "$out/test.log"
done
if [ $ok = 1 ]; then
    say "RESULT: PASS (logs: $out)"
    rm -f "$img"
    exit 0
fi
say "RESULT: FAIL (logs: $out)"
exit 1
