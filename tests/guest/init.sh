#!/bin/sh
# SPDX-License-Identifier: MIT
#
# init.sh - /init of the guest that tests/guest/run-guest.sh boots (busybox sh).
#
# It loads the virtio modules, finds the vhost-user-blk disk (/dev/vda) and
# runs the workloads named on the kernel command line, in order:
#
#   hg.workload=verify   write a known pattern with O_DIRECT 1M and 4k requests,
#                        read it back with direct and buffered I/O, sha256 compare
#   hg.workload=bench    read-only rates at 4k, 64k and 1M, O_DIRECT
#   hg.workload=soak     write-and-verify loop for hg.soak_secs seconds or
#                        hg.soak_rounds rounds, whichever ends first; fails on
#                        any I/O error or wrong data (for crash-restart tests)
#   hg.workload=rng      read hg.rng_bytes bytes from /dev/hwrng (virtio-rng)
#   (several: hg.workload=verify,rng)
#
# With hg.writers=N the disk workloads run N processes, process c pinned to
# CPU c: blk-mq picks the hardware queue from the submitting CPU, so with one
# queue per vCPU every queue carries requests.  hg.queues=N is the number of
# queues the device must show in /sys/block/vda/mq.
#
# Every line meant for the host starts with "HG: " (PASS, FAIL, INFO, TIME,
# STATS, BENCH, SOAK), and the last one is "HG-RESULT: PASS" or
# "HG-RESULT: FAIL".  Then the VM powers off.
#
# Disk layout (MiB; P = pattern size, W = writers, S = soak chunk), which the
# host checks again in the image file afterwards:
#   writer c, verify:  [1 + 2Pc, +P) written with 1M requests
#                      [1 + 2Pc + P, +P) written with 4k requests
#   writer c, soak:    [1 + 2PW + Sc, +S) pattern A in odd rounds, B in even
#   bench reads        [Bc, +B) with B = hg.bench_mib
export PATH=/bin
# PID 1 starts with nothing mounted; the configuration is in /proc/cmdline
[ -r /proc/cmdline ] || mount -t proc proc /proc

# ------------------------------------------------------------ configuration --
WORKLOADS=verify QUEUES=1 WRITERS=1 BENCH_MIB=16 BENCH_REPS=1
SOAK_SECS=60 SOAK_ROUNDS=0 SOAK_EVERY=2 RNG_BYTES=4096 RNG_EXPECT=virtio_rng
for a in $(cat /proc/cmdline); do
    case "$a" in
    hg.workload=*)    WORKLOADS=${a#*=} ;;
    hg.queues=*)      QUEUES=${a#*=} ;;
    hg.writers=*)     WRITERS=${a#*=} ;;
    hg.bench_mib=*)   BENCH_MIB=${a#*=} ;;
    hg.bench_reps=*)  BENCH_REPS=${a#*=} ;;
    hg.soak_secs=*)   SOAK_SECS=${a#*=} ;;
    hg.soak_rounds=*) SOAK_ROUNDS=${a#*=} ;;
    hg.soak_every=*)  SOAK_EVERY=${a#*=} ;;
    hg.rng_bytes=*)   RNG_BYTES=${a#*=} ;;
    esac
done
[ "$SOAK_SECS" -gt 0 ] || [ "$SOAK_ROUNDS" -gt 0 ] || SOAK_SECS=60   # never endless
# PATTERN_MIB PATTERN_SHA256 SOAK_MIB SOAK_A_SHA256 SOAK_B_SHA256 BASE_MIB,
# written by run-guest.sh together with /pattern.bin, /soak-a.bin, /soak-b.bin
. /hg.conf
P=$PATTERN_MIB S=$SOAK_MIB W=$WRITERS
STATS=/tmp/hg.stats

up() { read -r u _ </proc/uptime; echo "$u"; }
# fdiv A B: A/B with two decimals (0 when B is 0)
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
pass() { echo "HG: PASS $*"; }
fail() { echo "HG: FAIL $*"; echo fail >>/tmp/hg.failed; }
info() { echo "HG: INFO $*"; }
stat_add() { echo "$1 $2" >>"$STATS"; }   # stat_add written|read|verified BYTES

# sha_of DESC DD-ARGS...: sha256 of what dd reads; dd's own failure is a FAIL
# (and yields "dd-error"), so that an I/O error is never taken for a mismatch.
sha_of() {
    local desc=$1 s
    shift
    if s=$(set -o pipefail; dd "$@" 2>/tmp/dd.err.$$ | sha256sum); then
        echo "${s%% *}"
    else
        fail "$desc: dd $*: $(tr '\n' ' ' </tmp/dd.err.$$)" >&2   # stdout is the caller's $()
        echo dd-error
    fi
}

# ddw DESC DD-ARGS...: a write; FAIL with dd's message if it fails.
ddw() {
    local desc=$1
    shift
    dd "$@" 2>/tmp/dd.err.$$ && return 0
    fail "$desc: dd $*: $(tr '\n' ' ' </tmp/dd.err.$$)"
    return 1
}

# expect DESC GOT WANT BYTES: compare two sha256 sums
expect() {
    if [ "$2" = "$3" ]; then
        stat_add verified "$4"
        return 0
    fi
    [ "$2" = dd-error ] || fail "$1: sha256 $2, expected $3"
    return 1
}

# ------------------------------------------------ workers (one per writer) --
# Run as "sh /init --worker NAME C" (pinned with taskset -c C), so that each
# one is a process of its own that can be placed on a CPU before its first I/O.
region1() { echo $((BASE_MIB + 2 * P * $1)); }   # MiB, 1M-written copy
region2() { echo $((BASE_MIB + 2 * P * $1 + P)); }   # MiB, 4k-written copy

worker_verify_write() {
    local c=$1 r1 r2
    r1=$(region1 "$c") r2=$(region2 "$c")
    ddw "w$c write 1M O_DIRECT" if=/pattern.bin of=/dev/vda bs=1M seek="$r1" \
        oflag=direct conv=notrunc,fsync || return 1
    stat_add written $((P * 1048576))
    ddw "w$c write 4k O_DIRECT" if=/pattern.bin of=/dev/vda bs=4k seek=$((r2 * 256)) \
        oflag=direct conv=notrunc,fsync || return 1
    stat_add written $((P * 1048576))
}

# worker_verify_read C BS REGION FLAG: read one copy back and compare
worker_verify_read() {
    local c=$1 bs=$2 mib=$3 flag=$4 n desc got
    case $bs in 1M) n=1 ;; 4k) n=256 ;; *) n=16 ;; esac
    desc="w$c read ${mib}MiB+${P}MiB bs=$bs ${flag:-buffered}"
    got=$(sha_of "$desc" if=/dev/vda bs="$bs" skip=$((mib * n)) count=$((P * n)) $flag)
    stat_add read $((P * 1048576))
    expect "$desc" "$got" "$PATTERN_SHA256" $((P * 1048576))
}

worker_verify_read_1m()  { worker_verify_read "$1" 1M "$(region1 "$1")" iflag=direct; }
worker_verify_read_4k()  { worker_verify_read "$1" 4k "$(region2 "$1")" iflag=direct; }
worker_verify_read_buf() {
    worker_verify_read "$1" 1M "$(region1 "$1")" "" || return 1
    worker_verify_read "$1" 64k "$(region2 "$1")" ""
}

# the read rate without the hashing: a writer's 2P MiB, 1M O_DIRECT, 4 times
worker_verify_read_rate() {
    local c=$1 i=0
    while [ $i -lt 4 ]; do
        ddw "w$c read 1M O_DIRECT" if=/dev/vda of=/dev/null bs=1M skip="$(region1 "$c")" \
            count=$((2 * P)) iflag=direct || return 1
        stat_add read $((2 * P * 1048576))
        i=$((i + 1))
    done
}

worker_bench() {
    local c=$1 bs=$2 n got
    case $bs in 4k) n=256 ;; 64k) n=16 ;; 1M) n=1 ;; *) fail "bench: bad block size $bs"; return 1 ;; esac
    ddw "w$c bench read bs=$bs" if=/dev/vda of=/dev/null bs="$bs" \
        skip=$((BENCH_MIB * c * n)) count=$((BENCH_MIB * n)) iflag=direct || return 1
    # a short read would make a fine rate: count the records
    got=$(sed -n 's/^\([0-9]*\)+[0-9]* records in.*/\1/p' /tmp/dd.err.$$)
    [ "$got" = $((BENCH_MIB * n)) ] || { fail "w$c bench bs=$bs: read $got of $((BENCH_MIB * n)) blocks"; return 1; }
}

worker_soak() {
    local c=$1 seek t0 t tlast rs re dt maxdt=0 r=0 ok=1 pat sha got
    seek=$((BASE_MIB + 2 * P * W + S * c))
    t0=$(up) tlast=$t0
    while :; do
        r=$((r + 1))
        # Alternate two patterns: a write the backend lost (say across a
        # restart) leaves the other one there, and the read-back sees it.
        if [ $((r % 2)) = 1 ]; then pat=a sha=$SOAK_A_SHA256; else pat=b sha=$SOAK_B_SHA256; fi
        rs=$(up)
        ddw "w$c soak round $r write" if=/soak-$pat.bin of=/dev/vda bs=64k \
            seek=$((seek * 16)) oflag=direct conv=notrunc,fsync || { ok=0; break; }
        got=$(sha_of "w$c soak round $r read" if=/dev/vda bs=64k skip=$((seek * 16)) \
            count=$((S * 16)) iflag=direct)
        expect "w$c soak round $r read-back (pattern $pat)" "$got" "$sha" $((S * 1048576)) || { ok=0; break; }
        re=$(up)
        dt=$(fsub "$rs" "$re")
        maxdt=$(awk -v a="$maxdt" -v b="$dt" 'BEGIN { print (b > a) ? b : a }')
        t=$(fsub "$t0" "$re")
        if [ "$(awk -v a="$tlast" -v b="$re" -v e="$SOAK_EVERY" 'BEGIN { print (b - a >= e) }')" = 1 ]; then
            echo "HG: SOAK w$c t=${t}s rounds=$r mib=$((2 * r * S)) last_round_s=$dt max_round_s=$maxdt"
            tlast=$re
        fi
        [ "$SOAK_ROUNDS" -gt 0 ] && [ "$r" -ge "$SOAK_ROUNDS" ] && break
        [ "$(awk -v t="$t" -v s="$SOAK_SECS" 'BEGIN { print (s > 0 && t >= s) }')" = 1 ] && break
    done
    if [ $ok = 0 ]; then
        echo "HG: SOAK-DONE w$c result=FAIL rounds=$r"
        return 1
    fi
    # the host checks that the image holds this pattern at this offset
    echo "HG: SOAK-DONE w$c result=PASS rounds=$r secs=$(fsub "$t0" "$(up)") max_round_s=$maxdt pattern=$pat offset_mib=$seek"
}

if [ "${1:-}" = --worker ]; then
    shift
    name=$1
    shift
    "worker_$name" "$@"
    exit $?
fi

# ------------------------------------------------------------------ PID 1 --
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /tmp
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
: >"$STATS"

T_INIT=$(up)
echo   # end the firmware's "Booting from ROM.." line
echo "HG: INIT uptime_s=$T_INIT kernel=$(uname -r) cpus=$(nproc) workloads=$WORKLOADS"

finish() {
    local bad
    # An I/O error the workloads did not notice themselves (say in writeback)
    bad=$(dmesg | grep -iE 'I/O error|blk_update_request|critical (medium|target) error')
    [ -n "$bad" ] && fail "kernel reported errors: $(echo "$bad" | tail -3 | tr '\n' ' ')"
    if [ -e /tmp/hg.failed ]; then echo "HG-RESULT: FAIL"; else echo "HG-RESULT: PASS"; fi
    echo "HG: END uptime_s=$(up)"
    sync
    poweroff -f
    # poweroff should not return; if it does, make the kernel end the VM
    echo o >/proc/sysrq-trigger
    sleep 10
    exit 1   # PID 1 exits: panic, panic=-1 reboots, QEMU -no-reboot quits
}

# --------------------------------------------------------------- modules --
t0=$(up)
for m in $(cat /lib/modules/load.order); do
    insmod "/lib/modules/$m.ko" || fail "insmod $m"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do usleep 50000; i=$((i + 1)); done
t1=$(up)
if [ ! -b /dev/vda ]; then
    fail "no /dev/vda $(fsub "$t0" "$t1")s after loading the modules"
    ls /sys/bus/virtio/devices/ /sys/block/ 2>&1
    finish
fi
pass "found /dev/vda (modules+probe $(fsub "$t0" "$t1")s)"

SECTORS=$(cat /sys/block/vda/size)
NQ=$(ls /sys/block/vda/mq | wc -l)
VDEV=$(basename "$(readlink /sys/block/vda/device)")
info "vda bytes=$((SECTORS * 512)) mq_queues=$NQ" \
     "lbs=$(cat /sys/block/vda/queue/logical_block_size)" \
     "max_segments=$(cat /sys/block/vda/queue/max_segments)" \
     "cache=$(cat /sys/block/vda/queue/write_cache 2>/dev/null)" \
     "features=$(cat /sys/bus/virtio/devices/"$VDEV"/features)"
if [ "$NQ" = "$QUEUES" ]; then
    pass "vda has $NQ queue(s) in /sys/block/vda/mq, as configured"
else
    fail "vda has $NQ queue(s) in /sys/block/vda/mq, expected $QUEUES"
fi
if [ "$(nproc)" -lt "$W" ]; then
    fail "hg.writers=$W but only $(nproc) CPUs"
    W=$(nproc)
fi
PIN=""
if [ "$W" -gt 1 ]; then
    if command -v taskset >/dev/null; then PIN=taskset; else info "no taskset: writers are not pinned"; fi
fi

# par NAME ARGS...: "worker_NAME C ARGS..." for every writer C, in parallel,
# writer C on CPU C.  A worker that fails without saying so (a shell error)
# still fails the run.
par() {
    local name=$1 c=0 pids="" p st rc=0
    shift
    while [ $c -lt "$W" ]; do
        if [ -n "$PIN" ]; then
            taskset -c "$c" sh /init --worker "$name" "$c" "$@" &
        else
            sh /init --worker "$name" "$c" "$@" &
        fi
        pids="$pids $!"
        c=$((c + 1))
    done
    c=0
    for p in $pids; do
        wait "$p"
        st=$?
        if [ $st != 0 ]; then
            [ -e /tmp/hg.failed ] || fail "writer $c: $name exited with status $st"
            rc=1
        fi
        c=$((c + 1))
    done
    return $rc
}

# timed LABEL BYTES BS NAME ARGS...: par NAME ARGS..., then a TIME line
timed() {
    local label=$1 bytes=$2 bs=$3 ta tb rc secs
    shift 3
    ta=$(up)
    par "$@"
    rc=$?
    tb=$(up)
    secs=$(fsub "$ta" "$tb")
    echo "HG: TIME $label writers=$W mib=$((bytes / 1048576)) secs=$secs" \
         "MiBps=$(fdiv $((bytes / 1048576)) "$secs")${bs:+ iops=$(fdiv $((bytes / bs)) "$secs" | cut -d. -f1)}"
    LAST_SECS=$secs
    return $rc
}

stat_sum() { awk -v k="$1" '$1 == k { s += $2 } END { printf "%d", s / 1048576 }' "$STATS"; }

# Per-queue counters of vda: how often each blk-mq hardware context ran
# (debugfs), and the interrupts on each request virtqueue's MSI-X vector.
# An interrupt on vector req.N means the backend put used buffers on
# virtqueue N and signalled its call eventfd: that queue carried requests.
hctx_runs() {
    local h out=""
    for h in /sys/kernel/debug/block/vda/hctx*; do
        [ -r "$h/run" ] && out="$out ${h##*/}=$(cat "$h/run")"
    done
    echo "${out# }"
}
vq_irqs() {
    awk -v d="$VDEV-req." 'index($NF, d) == 1 {
        s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; else break
        printf "%s%s=%d", sep, substr($NF, length(d) + 1), s; sep = " " }' /proc/interrupts
}

check_queues() {   # with a writer per queue, every queue must carry requests
    local q irqs idle="" n=0
    irqs=$(vq_irqs)
    info "per-queue: hctx runs $(hctx_runs); interrupts per request vq $irqs"
    [ "$NQ" -gt 1 ] && [ "$W" -ge "$NQ" ] || return 0
    for q in $irqs; do
        n=$((n + 1))
        case $q in *=0) idle="$idle ${q%=*}" ;; esac
    done
    if [ "$n" != "$NQ" ]; then
        fail "found $n request vq interrupt vectors for $NQ queues ($irqs)"
    elif [ -n "$idle" ]; then
        fail "request vq(s)$idle had no completions ($irqs)"
    else
        pass "all $NQ request vqs had completions (interrupts $irqs)"
    fi
}

# ------------------------------------------------------------- workloads --
need_mib() {   # need_mib MIB WHAT: the disk must be large enough
    if [ $((SECTORS / 2048)) -lt "$1" ]; then
        fail "$2 needs ${1} MiB, vda has $((SECTORS / 2048)) MiB"
        return 1
    fi
}

wl_verify() {
    local tv0 tv1 wr rd vf rate
    need_mib $((BASE_MIB + 2 * P * W)) verify || return
    [ "$(sha256sum /pattern.bin | cut -d' ' -f1)" = "$PATTERN_SHA256" ] || fail "initramfs pattern corrupt"
    : >"$STATS"
    tv0=$(up)
    timed verify.write-1M+4k-direct $((2 * W * P * 1048576)) "" verify_write || return
    timed verify.read-1M-direct $((W * P * 1048576)) 1048576 verify_read_1m
    timed verify.read-4k-direct $((W * P * 1048576)) 4096 verify_read_4k
    echo 3 >/proc/sys/vm/drop_caches
    timed verify.read-buffered $((2 * W * P * 1048576)) 65536 verify_read_buf
    timed verify.read-rate-1M-direct $((8 * W * P * 1048576)) 1048576 verify_read_rate
    rate=$(fdiv $((8 * W * P)) "$LAST_SECS")
    tv1=$(up)
    wr=$(stat_sum written) rd=$(stat_sum read) vf=$(stat_sum verified)
    echo "HG: STATS verify written_mib=$wr read_mib=$rd verified_mib=$vf" \
         "read_MiBps=$rate (1M O_DIRECT) secs=$(fsub "$tv0" "$tv1")"
    if [ "$vf" = $((4 * W * P)) ]; then
        pass "verify: wrote $wr MiB (1M and 4k O_DIRECT), verified $vf MiB read back (direct and buffered) by sha256"
    else
        fail "verify: $vf MiB read back matched, expected $((4 * W * P))"
    fi
}

wl_bench() {
    local rep=1 bs n
    need_mib $((BENCH_MIB * W)) bench || return
    while [ $rep -le "$BENCH_REPS" ]; do
        for bs in 4k 64k 1M; do
            case $bs in 4k) n=4096 ;; 64k) n=65536 ;; 1M) n=1048576 ;; esac
            timed "bench.rep$rep.read-$bs-direct" $((W * BENCH_MIB * 1048576)) $n bench "$bs" |
                sed 's/^HG: TIME/HG: BENCH/'
        done
        rep=$((rep + 1))
    done
    [ -e /tmp/hg.failed ] || pass "bench: $BENCH_REPS rep(s) of 4k/64k/1M O_DIRECT reads"
}

wl_soak() {
    local t0
    need_mib $((BASE_MIB + 2 * P * W + S * W)) soak || return
    info "soak: $W writer(s), ${S} MiB per round, until ${SOAK_SECS}s or $SOAK_ROUNDS rounds (0 = no limit)"
    t0=$(up)
    if par soak; then
        pass "soak: $W writer(s) for $(fsub "$t0" "$(up)")s, every round read back intact"
    else
        fail "soak: a writer failed"
    fi
}

wl_rng() {
    local i=0 cur got distinct t0 t1
    while :; do
        cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
        case "$cur" in "$RNG_EXPECT"*) break ;; esac
        [ $i -ge 100 ] && break
        usleep 50000
        i=$((i + 1))
    done
    info "rng: rng_current=$cur available=$(cat /sys/class/misc/hw_random/rng_available 2>/dev/null)"
    case "$cur" in
    "$RNG_EXPECT"*) ;;
    *) fail "rng: no $RNG_EXPECT device registered with hw_random"; return ;;
    esac
    t0=$(up)
    # short reads are normal for /dev/hwrng; head loops until it has them all
    timeout 60 head -c "$RNG_BYTES" /dev/hwrng >/tmp/rng.bin || fail "rng: reading /dev/hwrng failed or timed out"
    t1=$(up)
    got=$(wc -c </tmp/rng.bin)
    distinct=$(od -An -v -tu1 /tmp/rng.bin | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
    echo "HG: TIME rng bytes=$got secs=$(fsub "$t0" "$t1") distinct_byte_values=$distinct"
    if [ "$got" != "$RNG_BYTES" ]; then
        fail "rng: got $got of $RNG_BYTES bytes from /dev/hwrng"
    elif [ "$distinct" -le 1 ]; then
        if [ "$(od -An -tu1 -N1 /tmp/rng.bin | tr -d ' ')" = 0 ]; then
            fail "rng: all $got bytes are zero"
        else
            fail "rng: all $got bytes are equal"
        fi
    else
        pass "rng: read $got bytes from /dev/hwrng ($cur), $distinct distinct byte values"
    fi
}

for wl in $(echo "$WORKLOADS" | tr ',' ' '); do
    t0=$(up)
    case $wl in
    verify|bench|soak|rng) "wl_$wl" ;;
    *) fail "unknown workload '$wl'"; continue ;;
    esac
    echo "HG: TIME workload=$wl secs=$(fsub "$t0" "$(up)")"
    case $wl in verify|bench|soak) check_queues ;; esac
done
finish
