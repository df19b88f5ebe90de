#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-guest.sh - boot a real Linux guest whose disk is a vhost-user-blk device,
# run workloads in it, and check the data in the guest and on the host.
#
# The guest is Debian's own kernel with a busybox initramfs, under QEMU TCG
# (no /dev/kvm needed).  Its disk is a vhost-user-blk-pci device served over
# a unix socket by a backend: qemu-storage-daemon by default, or the command
# given with --backend (hvnotifyd).  The guest prints "HG:" lines on the
# serial console; this script echoes them, re-checks the data in the image
# file, stops what it started, and prints one verdict line.
#
# Usage: run-guest.sh [OPTIONS]
#
# Guest:
#   -w, --workload LIST      comma-separated, run in order (default: verify)
#                              verify  write a pattern (O_DIRECT 1M and 4k),
#                                      read it back (direct and buffered), sha256
#                              bench   O_DIRECT read rates at 4k, 64k, 1M
#                              soak    write-and-verify loop (--soak-secs/-rounds)
#                              rng     read /dev/hwrng (needs --rng-socket)
#   -q, --queues N           num-queues of the vhost-user-blk device (1)
#   -s, --smp N              vCPUs (default: --queues); the disk workloads run
#                            one writer per vCPU, pinned, so each queue is used
#   -m, --mem MIB            guest RAM, shared memfd (512)
#       --soak-secs N        soak for N seconds (60; 0: no time limit)
#       --soak-rounds N      ... or for N rounds per writer, whichever ends
#                            first (0: no limit; the QEMU limit -T stays)
#       --bench-mib N        MiB each reader reads per block size (16)
#       --bench-reps N       bench repetitions (1)
#       --rng-bytes N        bytes the rng workload reads (4096)
#       --pattern-mib N      size of the verify pattern (8)
#       --append STR         extra kernel command line
#
# Backend and devices:
#   -B, --backend CMD        backend command, run with bash -c in the output
#                            directory with these variables exported:
#                              HVN_SOCK      vhost-user-blk socket to listen on
#                              HVN_IMG       image file to serve (raw)
#                              HVN_QUEUES    number of queues
#                              HVN_RNG_SOCK  vhost-user-rng socket (or empty)
#                              HVN_OUT       output directory
#                            Make it one command (bash then execs it) or start
#                            it with "exec", so that the PID the harness
#                            signals is the backend.  Default: qemu-storage-
#                            daemon exporting HVN_IMG on HVN_SOCK.
#       --socket PATH        vhost-user-blk socket (default: OUT/blk.sock)
#       --image PATH         image file (default: OUT/disk.img, made afresh);
#                            an existing file is used as it is
#       --image-mib N        size of a new image (64, or what the workloads need)
#       --keep-backend       start and stop no backend: one is already listening
#                            on --socket (or will be within the start timeout)
#                            and the caller manages it (crash-restart tests)
#       --backend-stop-signal SIG
#                            sent to the backend after the guest powered off
#                            (TERM); it must then exit with status 0 within
#                            --backend-exit-timeout, else the run fails
#       --backend-exit-any   report the backend's exit status, do not judge it
#       --rng-socket PATH    add a vhost-user-rng-pci device on PATH (the
#                            backend serves it, see HVN_RNG_SOCK); adds the
#                            rng workload
#       --rng-builtin        add QEMU's own virtio-rng-pci instead: tests the
#                            guest side of the rng workload only
#       --reconnect          chardev reconnect=1: QEMU waits for a backend that
#                            went away and reconnects (crash-restart tests)
#       --no-host-check      do not re-check the image file on the host
#       --strace             trace the backend we start (strace -p, once its
#                            socket is up) into OUT/backend.strace, and decode
#                            the vhost-user messages into OUT/vhost-user.txt
#
# Run:
#   -o, --out DIR            logs and the image (default: mktemp -d)
#   -b, --build-dir DIR      initramfs cache (default: $HVN_GUEST_BUILD, else
#                            $top_builddir/tests/guest/build under make, else
#                            ./tests/guest/build in the current build tree)
#   -T, --timeout SECS       hard limit for QEMU (300, plus --soak-secs)
#       --boot-timeout SECS  the guest must reach /init within this (120)
#       --backend-start-timeout SECS   the socket must appear within this (10)
#       --backend-exit-timeout SECS    the backend must exit within this (10)
#   -v, --verbose            echo the whole serial console, not only HG: lines
#   -h, --help               this text
#
# Environment: HVN_KVER (default: the kernel linux-image-amd64 depends on, else
# the newest /boot/vmlinuz-* with modules), HVN_KERNEL, HVN_MODDIR,
# HVN_BUSYBOX (/bin/busybox, must be static), HVN_QEMU (qemu-system-x86_64),
# HVN_QSD (qemu-storage-daemon), HVN_ACCEL (tcg), HVN_CPU (max),
# HVN_BOOT (auto: pvh when the kernel has CONFIG_PVH, else bzimage; pvh boots
# the vmlinux inside the bzImage, about 4 s faster under TCG), HVN_GUEST_BUILD,
# HVN_CI.
#
# Output: the guest's "HG: ..." lines as they come, stamped with the seconds
# since QEMU started; "run-guest: ..." lines on the run (command lines, backend
# exit, host check, timings); last, one "run-guest: RESULT: PASS|FAIL ..." line.
# Logs in OUT: summary.txt, serial.log (host-stamped), qemu.log, backend.log.
#
# Exit status: 0 pass, 1 fail (guest FAIL, no verdict, timeout, host check,
# backend exit), 2 bad usage, 77 this machine lacks QEMU, the kernel, busybox
# or cpio (with HVN_CI=1: 1, since CI installs them).
set -uo pipefail
shopt -s extglob

ME=run-guest
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE_MIB=1        # the guest's disk layout starts here (see init.sh)
CACHE_FORMAT=1    # bump when the initramfs layout changes

usage() { sed -n '4,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die_usage() { echo "$ME: $*" >&2; echo "$ME: try --help" >&2; exit 2; }
ci() { case "${HVN_CI:-0}" in 1|yes|true) return 0 ;; esac; return 1; }

# "This machine cannot run it": a skip, except in CI, which installs it all.
cannot_run() {
    if ci; then
        echo "$ME: FAIL (HVN_CI=1, so not a skip): $*"
        exit 1
    fi
    echo "$ME: SKIP: $*"
    exit 77
}

# ------------------------------------------------------------------ options --
WORKLOADS=verify QUEUES=1 SMP="" MEM=512
SOAK_SECS=60 SOAK_ROUNDS=0 BENCH_MIB=16 BENCH_REPS=1 RNG_BYTES=4096 PATTERN_MIB=8
SOAK_MIB=1 APPEND_EXTRA=""
BACKEND_CMD="" SOCK="" IMG="" IMG_MIB="" KEEP_BACKEND=0 STOP_SIG=TERM EXIT_ANY=0
RNG_SOCK="" RNG_BUILTIN=0 RECONNECT=0 HOST_CHECK=1 STRACE=0
OUT="" BUILD="${HVN_GUEST_BUILD:-}" T_QEMU="" T_BOOT=120 T_BSTART=10 T_BEXIT=10 VERBOSE=0

while [ $# -gt 0 ]; do
    opt=$1 val="" inline=0
    case $opt in
    --*=*) val=${opt#*=} opt=${opt%%=*} inline=1 ;;
    esac
    case $opt in
    -w|--workload|--workloads|-q|--queues|-s|--smp|-m|--mem|--soak-secs|--soak-rounds|\
    --bench-mib|--bench-reps|--rng-bytes|--pattern-mib|--append|-B|--backend|--socket|\
    --image|--image-mib|--backend-stop-signal|--rng-socket|-o|--out|-b|--build-dir|\
    -T|--timeout|--boot-timeout|--backend-start-timeout|--backend-exit-timeout)
        if [ $inline = 0 ]; then
            [ $# -ge 2 ] || die_usage "$opt needs a value"
            val=$2
            shift
        fi ;;
    *) [ $inline = 0 ] || die_usage "$opt takes no value" ;;
    esac
    case $opt in
    -w|--workload|--workloads) WORKLOADS=$val ;;
    -q|--queues) QUEUES=$val ;;
    -s|--smp) SMP=$val ;;
    -m|--mem) MEM=$val ;;
    --soak-secs) SOAK_SECS=$val ;;
    --soak-rounds) SOAK_ROUNDS=$val ;;
    --bench-mib) BENCH_MIB=$val ;;
    --bench-reps) BENCH_REPS=$val ;;
    --rng-bytes) RNG_BYTES=$val ;;
    --pattern-mib) PATTERN_MIB=$val ;;
    --append) APPEND_EXTRA=$val ;;
    -B|--backend) BACKEND_CMD=$val ;;
    --socket) SOCK=$val ;;
    --image) IMG=$val ;;
    --image-mib) IMG_MIB=$val ;;
    --keep-backend) KEEP_BACKEND=1 ;;
    --backend-stop-signal) STOP_SIG=${val#SIG} ;;
    --backend-exit-any) EXIT_ANY=1 ;;
    --rng-socket) RNG_SOCK=$val ;;
    --rng-builtin) RNG_BUILTIN=1 ;;
    --reconnect) RECONNECT=1 ;;
    --no-host-check) HOST_CHECK=0 ;;
    --strace) STRACE=1 ;;
    -o|--out) OUT=$val ;;
    -b|--build-dir) BUILD=$val ;;
    -T|--timeout) T_QEMU=$val ;;
    --boot-timeout) T_BOOT=$val ;;
    --backend-start-timeout) T_BSTART=$val ;;
    --backend-exit-timeout) T_BEXIT=$val ;;
    -v|--verbose) VERBOSE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown option '$opt'" ;;
    esac
    shift
done

SMP=${SMP:-$QUEUES}
for v in QUEUES SMP MEM SOAK_SECS SOAK_ROUNDS BENCH_MIB BENCH_REPS RNG_BYTES PATTERN_MIB \
         T_BOOT T_BSTART T_BEXIT ${IMG_MIB:+IMG_MIB} ${T_QEMU:+T_QEMU}; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die_usage "$v must be a number, not '${!v}'"
done
[ "$QUEUES" -ge 1 ] && [ "$SMP" -ge 1 ] && [ "$PATTERN_MIB" -ge 1 ] || die_usage "--queues, --smp and --pattern-mib must be at least 1"
kill -l "$STOP_SIG" >/dev/null 2>&1 || die_usage "unknown signal '$STOP_SIG'"
[ "$STOP_SIG" = KILL ] && EXIT_ANY=1   # a killed process has no status to judge
if [ "$KEEP_BACKEND" = 1 ] && [ -n "$BACKEND_CMD" ]; then
    die_usage "--keep-backend means the caller runs the backend: no --backend then"
fi
[ "$KEEP_BACKEND" = 1 ] && [ -z "$SOCK" ] && die_usage "--keep-backend needs --socket PATH of the running backend"
[ -n "$RNG_SOCK" ] && [ "$RNG_BUILTIN" = 1 ] && die_usage "--rng-socket or --rng-builtin, not both"
[ "$STRACE" = 1 ] && [ "$KEEP_BACKEND" = 1 ] && die_usage "--strace traces the backend the harness starts: not with --keep-backend"
HAVE_RNG=0
{ [ -n "$RNG_SOCK" ] || [ "$RNG_BUILTIN" = 1 ]; } && HAVE_RNG=1
WL=""
for w in ${WORKLOADS//,/ }; do
    case $w in
    verify|bench|soak) ;;
    rng) [ $HAVE_RNG = 1 ] || die_usage "the rng workload needs --rng-socket (or --rng-builtin)" ;;
    *) die_usage "unknown workload '$w'" ;;
    esac
    WL="$WL,$w"
done
[ $HAVE_RNG = 1 ] && [[ "$WL," != *,rng,* ]] && WL="$WL,rng"
WORKLOADS=${WL#,}
[ -n "$WORKLOADS" ] || die_usage "no workload"
has_wl() { [[ ",$WORKLOADS," == *",$1,"* ]]; }
if [ -z "$T_QEMU" ]; then
    T_QEMU=300
    has_wl soak && T_QEMU=$((T_QEMU + SOAK_SECS))
fi

# What the disk layout needs (MiB), as init.sh lays it out
NEED_MIB=$((BASE_MIB + 2 * PATTERN_MIB * SMP + SOAK_MIB * SMP + 1))
has_wl bench && [ $((BENCH_MIB * SMP)) -gt $NEED_MIB ] && NEED_MIB=$((BENCH_MIB * SMP))
if [ -n "$IMG_MIB" ]; then
    [ "$IMG_MIB" -ge "$NEED_MIB" ] || die_usage "--image-mib $IMG_MIB is too small: the workloads need $NEED_MIB"
else
    IMG_MIB=$(( NEED_MIB > 64 ? NEED_MIB : 64 ))
fi

# ------------------------------------------------------------ environment --
default_kver() {
    local v dep k
    # The kernel the linux-image-amd64 metapackage pulled in ...
    dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null)
    v=$(sed -n 's/^linux-image-\([^ ,|]*\).*/\1/p' <<<"$dep")
    if [ -n "$v" ] && [ -e "/boot/vmlinuz-$v" ] && [ -d "/lib/modules/$v" ]; then
        echo "$v"
        return
    fi
    # ... else the newest one that has its modules
    for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -rV); do
        v=${k#/boot/vmlinuz-}
        [ -d "/lib/modules/$v" ] && { echo "$v"; return; }
    done
}
KVER=${HVN_KVER:-$(default_kver)}
KERNEL=${HVN_KERNEL:-/boot/vmlinuz-$KVER}
MODDIR=${HVN_MODDIR:-/lib/modules/$KVER}
BUSYBOX=${HVN_BUSYBOX:-/bin/busybox}
QEMU=${HVN_QEMU:-qemu-system-x86_64}
QSD=${HVN_QSD:-qemu-storage-daemon}
ACCEL=${HVN_ACCEL:-tcg}
CPU=${HVN_CPU:-max}

command -v "$QEMU" >/dev/null || cannot_run "no $QEMU (apt-get install qemu-system-x86)"
if [ -z "$BACKEND_CMD" ] && [ "$KEEP_BACKEND" = 0 ]; then
    command -v "$QSD" >/dev/null || cannot_run "no $QSD (apt-get install qemu-utils)"
fi
[ -n "$KVER" ] || cannot_run "no kernel in /boot with modules in /lib/modules (apt-get install linux-image-amd64)"
[ -r "$KERNEL" ] || cannot_run "cannot read the kernel $KERNEL"
[ -r "$MODDIR/modules.dep" ] || cannot_run "no $MODDIR/modules.dep"
[ -x "$BUSYBOX" ] || cannot_run "no $BUSYBOX (apt-get install busybox-static)"
if command -v ldd >/dev/null &&
   ! [[ $(LC_ALL=C ldd "$BUSYBOX" 2>&1) =~ not\ a\ dynamic|statically\ linked ]]; then
    cannot_run "$BUSYBOX is dynamically linked; the guest has no libc (apt-get install busybox-static)"
fi
[ "$STRACE" = 1 ] && { command -v strace >/dev/null || cannot_run "no strace (apt-get install strace)"; }
for t in cpio timeout sha256sum awk; do
    command -v $t >/dev/null || cannot_run "no $t"
done
[ "$RNG_BUILTIN" = 1 ] || [ -z "$RNG_SOCK" ] ||
    "$QEMU" -device help 2>/dev/null | grep -q '"vhost-user-rng-pci"' ||
    cannot_run "$QEMU has no vhost-user-rng-pci device"

# ---------------------------------------------------------- output, logging --
if [ -z "$OUT" ]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/hvn-guest.XXXXXX") || exit 1
fi
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt SERIAL=$OUT/serial.log
: >"$SUMMARY"
rm -f "$OUT/guest.booted"
: >"$SERIAL"

# Times are $EPOCHREALTIME values (seconds, always six decimals, with the
# locale's decimal point); no forks, since the console reader stamps every line.
now() { echo "$EPOCHREALTIME"; }
el() {   # el T0 T1: seconds from T0 to T1, two decimals
    local d=$(( 10#${2//[.,]/} - 10#${1//[.,]/} ))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}
secs_since() { local d=$(( 10#${EPOCHREALTIME//[.,]/} - 10#${1//[.,]/} )); echo $((d / 1000000)); }
T_START=$(now)
say() { echo "$ME: $*" | tee -a "$SUMMARY"; }

# running PID: alive and not a zombie (kill -0 is true for our unreaped children)
running() {
    local st
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# What this script started, by PID; the EXIT trap stops what still runs.
BPID="" QPID="" RPID="" SPID="" SOCKDIR="" FIFO="" IMG_OURS=0 VERDICT=FAIL
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$QPID" ] && running "$QPID"; then kill -TERM "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; fi
    if [ -n "$BPID" ] && running "$BPID"; then
        say "stopping the backend (pid $BPID) on the way out"
        kill -TERM "$BPID" 2>/dev/null
        for _ in $(seq 50); do running "$BPID" || break; sleep 0.1; done
        { running "$BPID" && kill -KILL "$BPID"; wait "$BPID"; } 2>/dev/null
    fi
    if [ -n "$SPID" ] && running "$SPID"; then kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
    if [ -n "$RPID" ] && running "$RPID"; then kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; fi
    [ -n "$FIFO" ] && rm -f "$FIFO"
    [ -n "$SOCKDIR" ] && rm -rf "$SOCKDIR"
    # a passing run's image is of no more use; a failing one's is evidence
    [ "$IMG_OURS" = 1 ] && [ "$VERDICT" = PASS ] && rm -f "$IMG"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

# ---------------------------------------------------------------- initramfs --
# modname PATH: module name of a modules.dep path, in REPLY (no fork: it runs
# for every line of modules.dep)
modname() { local b=${1##*/}; b=${b%%.ko*}; REPLY=${b//-/_}; }

declare -A DEP_OF=() PATH_OF=() BUILTIN=() SEEN=()
MOD_ORDER=() MOD_BUILTIN=()
resolve_modules() {
    local line rel deps d m
    while IFS= read -r line; do
        rel=${line%%:*} deps=${line#*:}
        DEP_OF[$rel]=$deps
        modname "$rel"
        PATH_OF[$REPLY]=$rel
    done <"$MODDIR/modules.dep"
    if [ -r "$MODDIR/modules.builtin" ]; then
        while IFS= read -r line; do modname "$line"; BUILTIN[$REPLY]=1; done <"$MODDIR/modules.builtin"
    fi
    # depth first, dependencies before their users: the guest loads in this order
    add_mod() {
        local r=$1 d
        [ -n "${SEEN[$r]:-}" ] && return
        SEEN[$r]=1
        for d in ${DEP_OF[$r]}; do add_mod "$d"; done
        MOD_ORDER+=("$r")
    }
    for m in virtio_pci virtio_blk virtio_rng; do
        if [ -n "${PATH_OF[$m]:-}" ]; then
            add_mod "${PATH_OF[$m]}"
        elif [ -n "${BUILTIN[$m]:-}" ]; then
            MOD_BUILTIN+=("$m")
        elif [ $m = virtio_rng ]; then
            say "warning: kernel $KVER has no virtio_rng; the rng workload will fail"
        else
            cannot_run "kernel $KVER has no $m module and does not build it in"
        fi
    done
    unset -f add_mod
}

# pattern TAG MIB: deterministic data, 64-byte records that carry their own
# offset, so that a block written or read at the wrong place shows
pattern() {
    awk -v tag="$1" -v n=$(($2 * 16384)) 'BEGIN {
        for (i = 0; i < n; i++)
            printf "hvn-guest %s off=%012d abcdefghijklmnopqrstuvwxyz01234567\n", tag, i * 64 }'
}

INITRD="" CONF=""
build_initramfs() {
    local manifest key root tmp rel name f t0
    t0=$(now)
    resolve_modules
    manifest="format=$CACHE_FORMAT kver=$KVER moddir=$MODDIR pattern=$PATTERN_MIB soak=$SOAK_MIB"
    manifest+=$'\n'"init $(sha256sum <"$HERE/init.sh")"
    manifest+=$'\n'"harness $(sha256sum <"${BASH_SOURCE[0]}")"
    manifest+=$'\n'"busybox $BUSYBOX $(stat -Lc '%s %Y' "$BUSYBOX")"
    for rel in "${MOD_ORDER[@]}"; do
        manifest+=$'\n'"$rel $(stat -Lc '%s %Y' "$MODDIR/$rel")"
    done
    key=$(sha256sum <<<"$manifest" | cut -c1-16)
    INITRD=$BUILD/initramfs-$key.cpio CONF=$BUILD/initramfs-$key.conf
    if [ -s "$INITRD" ] && [ -s "$CONF" ]; then
        say "initramfs: $INITRD (cached)"
        return 0
    fi
    mkdir -p "$BUILD" || return 1
    tmp=$(mktemp -d "$BUILD/tmp.XXXXXX") || return 1
    root=$tmp/root
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules} || return 1
    cp "$BUSYBOX" "$root/bin/busybox" || return 1
    for f in $("$BUSYBOX" --list); do
        [ "$f" = busybox ] || ln -s busybox "$root/bin/$f"
    done
    ln -s bin "$root/sbin"
    mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null   # root only; devtmpfs has it too
    : >"$root/lib/modules/load.order"
    for rel in "${MOD_ORDER[@]}"; do
        modname "$rel"
        name=$REPLY
        case $rel in
        *.ko.xz)  xz -dc "$MODDIR/$rel" ;;
        *.ko.zst) zstd -qdc "$MODDIR/$rel" ;;
        *.ko.gz)  gzip -dc "$MODDIR/$rel" ;;
        *.ko)     cat "$MODDIR/$rel" ;;
        *)        false ;;
        esac >"$root/lib/modules/$name.ko" || { say "cannot unpack $MODDIR/$rel"; return 1; }
        echo "$name" >>"$root/lib/modules/load.order"
    done
    pattern P "$PATTERN_MIB" >"$root/pattern.bin"
    pattern A "$SOAK_MIB" >"$root/soak-a.bin"
    pattern B "$SOAK_MIB" >"$root/soak-b.bin"
    [ "$(stat -c %s "$root/pattern.bin")" = $((PATTERN_MIB * 1048576)) ] || { say "pattern has the wrong size"; return 1; }
    {
        echo "PATTERN_MIB=$PATTERN_MIB"
        echo "PATTERN_SHA256=$(sha256sum <"$root/pattern.bin" | cut -d' ' -f1)"
        echo "SOAK_MIB=$SOAK_MIB"
        echo "SOAK_A_SHA256=$(sha256sum <"$root/soak-a.bin" | cut -d' ' -f1)"
        echo "SOAK_B_SHA256=$(sha256sum <"$root/soak-b.bin" | cut -d' ' -f1)"
        echo "BASE_MIB=$BASE_MIB"
        echo "MODULES='$(tr '\n' ' ' <"$root/lib/modules/load.order")'"
    } >"$root/hg.conf"
    cp "$HERE/init.sh" "$root/init" && chmod 755 "$root/init" || return 1
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/initramfs.cpio" || return 1
    # rename is atomic: a concurrent run sees the whole file or none (conf first)
    mv "$root/hg.conf" "$CONF" && mv "$tmp/initramfs.cpio" "$INITRD" || return 1
    rm -rf "$tmp"
    say "initramfs: $INITRD ($(du -k "$INITRD" | cut -f1) KiB, built in $(el "$t0" "$(now)")s)"
}

if [ -z "$BUILD" ]; then
    BUILD=${top_builddir:-.}/tests/guest/build
fi
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd) || { say "cannot create the build directory $BUILD"; exit 1; }
T0=$(now)
build_initramfs || { say "FAIL: initramfs build failed"; exit 1; }
T_INITRD=$(el "$T0" "$(now)")
# shellcheck source=/dev/null
. "$CONF"   # PATTERN_SHA256 SOAK_A_SHA256 SOAK_B_SHA256 MODULES

# PVH boot: QEMU loads the uncompressed vmlinux ELF from inside the bzImage
# and enters it at its PVH entry point, so the guest skips decompressing its
# own kernel, which takes about 4 s under TCG.  Cached in BUILD.
extract_vmlinux() {   # extract_vmlinux BZIMAGE OUT
    local tmp spec magic off
    tmp=$(mktemp "$2.XXXXXX") || return 1
    for spec in 'xz -dc --single-stream|\xfd7zXZ\x00' 'zstd -dcq|\x28\xb5\x2f\xfd' 'gzip -dc|\x1f\x8b\x08'; do
        magic=${spec#*|}
        command -v "${spec%% *}" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "$magic" "$1" 2>/dev/null | head -n 3 | cut -d: -f1); do
            # trailing data after the stream is normal; judge by the output
            tail -c +$((off + 1)) "$1" | ${spec%|*} >"$tmp" 2>/dev/null
            if [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                mv "$tmp" "$2"
                return
            fi
        done
    done
    rm -f "$tmp"
    return 1
}
BOOT=${HVN_BOOT:-auto} BOOT_KERNEL=$KERNEL
case $BOOT in
auto|pvh)
    kconfig=$(dirname "$KERNEL")/config-$KVER
    if [ "$BOOT" = pvh ] || grep -qx 'CONFIG_PVH=y' "$kconfig" 2>/dev/null; then
        vmlinux=$BUILD/vmlinux-$(stat -Lc '%n %s %Y' "$KERNEL" | sha256sum | cut -c1-16)
        T0=$(now)
        if [ -s "$vmlinux" ] || extract_vmlinux "$KERNEL" "$vmlinux"; then
            BOOT=pvh BOOT_KERNEL=$vmlinux
            say "pvh boot: $vmlinux ($(el "$T0" "$(now)")s)"
        elif [ "$BOOT" = pvh ]; then
            say "FAIL: HVN_BOOT=pvh, but no vmlinux could be extracted from $KERNEL"
            exit 1
        fi
    fi
    [ "$BOOT" = pvh ] || BOOT=bzimage ;;
bzimage) ;;
*) die_usage "HVN_BOOT must be auto, pvh or bzimage, not '$BOOT'" ;;
esac
say "kernel $KERNEL ($BOOT boot), modules: ${MODULES}${MOD_BUILTIN[*]:+(built in: ${MOD_BUILTIN[*]})}"

# -------------------------------------------------------------- the backend --
if [ -z "$SOCK" ]; then
    SOCK=$OUT/blk.sock
    if [ ${#SOCK} -gt 100 ]; then   # sun_path holds 108 bytes
        SOCKDIR=$(mktemp -d /tmp/hvn-sock.XXXXXX) || exit 1
        SOCK=$SOCKDIR/blk.sock
    fi
fi
[ ${#SOCK} -le 107 ] || die_usage "socket path too long for a unix socket: $SOCK"
if [ -z "$IMG" ]; then
    IMG=$OUT/disk.img
    rm -f "$IMG"
    IMG_OURS=1   # removed again after a passing run
fi
if [ ! -e "$IMG" ] && [ "$KEEP_BACKEND" = 0 ]; then
    truncate -s "${IMG_MIB}M" "$IMG" || exit 1
elif [ -f "$IMG" ] && [ "$(stat -c %s "$IMG")" -lt $((NEED_MIB * 1048576)) ]; then
    die_usage "$IMG is smaller than the $NEED_MIB MiB the workloads need"
fi
if [ "$KEEP_BACKEND" = 1 ] && [ ! -e "$IMG" ]; then
    [ "$HOST_CHECK" = 1 ] && say "no image at $IMG: skipping the host check"
    HOST_CHECK=0
fi

# wait_sockets DEADLINE-SECS PATH...: until every PATH is a socket; fails when
# the backend we started exits first
wait_sockets() {
    local t=$1 p i=0
    shift
    while :; do
        for p in "$@"; do [ -S "$p" ] || break; done
        [ -S "$p" ] && return 0
        [ -n "$BPID" ] && ! running "$BPID" && return 1
        [ $i -ge $((t * 20)) ] && return 1
        sleep 0.05
        i=$((i + 1))
    done
}

SOCKS=("$SOCK")
[ -n "$RNG_SOCK" ] && SOCKS+=("$RNG_SOCK")
T0=$(now)
if [ "$KEEP_BACKEND" = 1 ]; then
    say "backend: run by the caller on $SOCK${RNG_SOCK:+ and $RNG_SOCK}"
else
    # A stale socket file would pass for a listening backend: remove the ones
    # the backend we start is to create (the rng socket is someone else's
    # when qemu-storage-daemon serves the disk).
    [ -S "$SOCK" ] && rm -f "$SOCK"
    [ -n "$BACKEND_CMD" ] && [ -n "$RNG_SOCK" ] && [ -S "$RNG_SOCK" ] && rm -f "$RNG_SOCK"
    if [ -n "$BACKEND_CMD" ]; then
        BCMD=(bash -c "$BACKEND_CMD")
    else
        # ',' separates QEMU option fields; a literal one is written ',,'
        BCMD=("$QSD" --blockdev "driver=file,node-name=disk0,filename=${IMG//,/,,}"
              --export "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=${SOCK//,/,,},writable=on,num-queues=$QUEUES")
        if [ -n "$RNG_SOCK" ]; then
            say "note: qemu-storage-daemon serves no rng; something else must listen on $RNG_SOCK"
        fi
    fi
    say "backend: ${BCMD[*]}"
    (
        export HVN_SOCK=$SOCK HVN_IMG=$IMG HVN_QUEUES=$QUEUES HVN_RNG_SOCK=$RNG_SOCK HVN_OUT=$OUT
        cd "$OUT" && exec "${BCMD[@]}"
    ) </dev/null >"$OUT/backend.log" 2>&1 &
    BPID=$!
fi
if ! wait_sockets "$T_BSTART" "${SOCKS[@]}"; then
    if [ -n "$BPID" ] && ! running "$BPID"; then
        wait "$BPID"
        say "FAIL: the backend exited with status $? before creating ${SOCKS[*]}; backend.log:"
    else
        say "FAIL: no socket at ${SOCKS[*]} after ${T_BSTART}s; backend.log:"
    fi
    [ -f "$OUT/backend.log" ] && tail -n 20 "$OUT/backend.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    exit 1
fi
T_BREADY=$(el "$T0" "$(now)")
say "backend listening on ${SOCKS[*]} after ${T_BREADY}s${BPID:+ (pid $BPID)}"

# strace attaches to the backend's PID (all threads) rather than starting
# it: the stop signal then reaches the backend itself and its exit status
# stays its own.  QEMU has not connected yet, so no message is missed.
if [ "$STRACE" = 1 ]; then
    strace -f -tt -yy -xx -s 65536 -o "$OUT/backend.strace" -p "$BPID" \
        -e trace=recvmsg,sendmsg,recvfrom,sendto,read,write,readv,writev,close \
        2>"$OUT/strace.log" &
    SPID=$!
    for _ in $(seq 100); do
        grep -q attached "$OUT/strace.log" 2>/dev/null && break
        running "$SPID" || break
        sleep 0.05
    done
    grep -q attached "$OUT/strace.log" 2>/dev/null || { say "FAIL: strace could not attach:"; cat "$OUT/strace.log"; exit 1; }
    say "strace (pid $SPID) attached to the backend: $OUT/backend.strace"
fi

# --------------------------------------------------------------------- QEMU --
APPEND="console=ttyS0 panic=-1 hg.workload=$WORKLOADS hg.queues=$QUEUES hg.writers=$SMP"
APPEND+=" hg.soak_secs=$SOAK_SECS hg.soak_rounds=$SOAK_ROUNDS hg.bench_mib=$BENCH_MIB"
APPEND+=" hg.bench_reps=$BENCH_REPS hg.rng_bytes=$RNG_BYTES"
[ "$VERBOSE" = 1 ] || APPEND+=" quiet"
[ -n "$APPEND_EXTRA" ] && APPEND+=" $APPEND_EXTRA"
RC=""
[ "$RECONNECT" = 1 ] && RC=,reconnect=1
QCMD=("$QEMU" -accel "$ACCEL" -machine q35,memory-backend=mem -cpu "$CPU" -smp "$SMP" -m "${MEM}M"
      -object "memory-backend-memfd,id=mem,size=${MEM}M,share=on"
      -chardev "socket,id=blk0,path=${SOCK//,/,,}$RC"
      -device "vhost-user-blk-pci,chardev=blk0,num-queues=$QUEUES")
if [ -n "$RNG_SOCK" ]; then
    QCMD+=(-chardev "socket,id=rng0,path=${RNG_SOCK//,/,,}$RC" -device vhost-user-rng-pci,chardev=rng0)
elif [ "$RNG_BUILTIN" = 1 ]; then
    QCMD+=(-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0)
fi
QCMD+=(-kernel "$BOOT_KERNEL" -initrd "$INITRD" -append "$APPEND"
       -nographic -nodefaults -serial stdio -monitor none -nic none -no-reboot)
say "qemu: ${QCMD[*]}"

# The serial console goes through a FIFO to a reader that stamps each line
# with the host's seconds since QEMU started, echoes HG: lines (all with -v),
# and marks the guest as booted when /init speaks.
FIFO=$OUT/serial.fifo
rm -f "$FIFO" && mkfifo "$FIFO" || exit 1
T_Q0=$(now)
(
    trap '' INT
    while IFS= read -r line; do
        line=${line%$'\r'}
        line=${line//$'\e'[\[]*([0-9;?])[A-Za-z]/}   # SeaBIOS's terminal codes
        line=${line//$'\e'c/}
        printf -v stamped '%7.2f %s' "$(el "$T_Q0" "$(now)")" "$line"
        echo "$stamped" >>"$SERIAL"
        case $line in
        *"HG: INIT"*) : >"$OUT/guest.booted" ;;
        esac
        case $line in
        *HG:*|*HG-RESULT:*) echo "  $stamped" ;;
        *) [ "$VERBOSE" = 1 ] && echo "  $stamped" ;;
        esac
    done <"$FIFO"
) &
RPID=$!
timeout -k 5 "$T_QEMU" "${QCMD[@]}" </dev/null >"$FIFO" 2>"$OUT/qemu.log" &
QPID=$!   # timeout(1), which relays signals to QEMU and enforces the hard limit
BOOT_HUNG=0
# stderr off while QEMU runs: bash announces a child killed by a signal
# ("Aborted ...") whenever it reaps it; the status is reported below instead
{
    while running "$QPID"; do
        if [ $BOOT_HUNG = 0 ] && [ ! -e "$OUT/guest.booted" ] &&
           [ "$(secs_since "$T_Q0")" -ge "$T_BOOT" ]; then
            say "FAIL: the guest did not reach /init within ${T_BOOT}s; stopping QEMU"
            BOOT_HUNG=1
            kill -TERM "$QPID"
        fi
        sleep 0.2
    done
    wait "$QPID"
    QRC=$?
} 2>/dev/null
QPID=""
T_QEND=$(now)
wait "$RPID" 2>/dev/null
RPID=""
rm -f "$FIFO"
FIFO=""
case $QRC in
0) say "qemu exited (status 0) after $(el "$T_Q0" "$T_QEND")s" ;;
124) say "FAIL: qemu killed after the ${T_QEMU}s timeout" ;;
1[3-9][0-9]) say "FAIL: qemu exit status $QRC (SIG$(kill -l $((QRC - 128)) 2>/dev/null))" ;;
*) say "FAIL: qemu exit status $QRC" ;;
esac
if [ -s "$OUT/qemu.log" ]; then
    say "qemu.log:"
    tail -n 20 "$OUT/qemu.log" | sed 's/^/    /' | tee -a "$SUMMARY"
fi

# ------------------------------------------------------ stop the backend --
# After the guest powered off: the backend must still be running (a server
# outlives its client), then exit cleanly on the stop signal within a limit.
BACKEND_OK=1 T_BEXIT_TOOK=""
if [ -n "$BPID" ]; then
    if ! running "$BPID"; then
        wait "$BPID"
        brc=$?
        say "FAIL: the backend exited by itself during the run (status $brc)"
        BACKEND_OK=0
    else
        T0=$(now)
        kill -"$STOP_SIG" "$BPID"
        while running "$BPID" && [ "$(secs_since "$T0")" -lt "$T_BEXIT" ]; do
            sleep 0.02
        done
        if running "$BPID"; then
            say "FAIL: the backend did not exit within ${T_BEXIT}s of SIG$STOP_SIG; killing it"
            { kill -KILL "$BPID"; wait "$BPID"; } 2>/dev/null   # no "Killed" job notice
            BACKEND_OK=0
        else
            wait "$BPID"
            brc=$?
            T_BEXIT_TOOK=$(el "$T0" "$(now)")
            how="status $brc"
            [ $brc -gt 128 ] && how="$how, killed by SIG$(kill -l $((brc - 128)) 2>/dev/null)"
            if [ "$EXIT_ANY" = 1 ] || [ $brc = 0 ]; then
                say "backend exited ($how) ${T_BEXIT_TOOK}s after SIG$STOP_SIG"
            else
                say "FAIL: backend exited ($how) ${T_BEXIT_TOOK}s after SIG$STOP_SIG; expected status 0"
                BACKEND_OK=0
            fi
        fi
    fi
    BPID=""
    if [ -n "$SPID" ]; then   # it ends with its tracee
        for _ in $(seq 100); do running "$SPID" || break; sleep 0.05; done
        running "$SPID" && kill "$SPID"
        wait "$SPID" 2>/dev/null
        SPID=""
        if command -v python3 >/dev/null &&
           python3 "$HERE/vhost-user-decode.py" "$OUT/backend.strace" >"$OUT/vhost-user.txt" 2>&1; then
            say "vhost-user messages: $OUT/vhost-user.txt ($(grep -c ' F->B ' "$OUT/vhost-user.txt") from QEMU)"
            grep '^# ' "$OUT/vhost-user.txt" | grep -v "backend's own" | sed 's/^/    /' | tee -a "$SUMMARY"
        else
            say "could not decode $OUT/backend.strace (see $OUT/vhost-user.txt)"
        fi
    fi
    if [ -s "$OUT/backend.log" ]; then
        say "backend.log (last lines):"
        tail -n 10 "$OUT/backend.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    fi
fi

# ------------------------------------------------------------ the verdict --
GUEST_RESULT=$(grep -a 'HG-RESULT:' "$SERIAL" 2>/dev/null | tail -n 1 | sed 's/.*HG-RESULT: //')
NFAIL=$(grep -ac 'HG: FAIL' "$SERIAL" 2>/dev/null)
if [ -z "$GUEST_RESULT" ]; then
    say "FAIL: no HG-RESULT line from the guest; last lines of serial.log:"
    tail -n 25 "$SERIAL" 2>/dev/null | sed 's/^/    /' | tee -a "$SUMMARY"
fi

# Host check: what the guest says it wrote must be in the image file.
HOST_OK=1 HOST_MIB=0
region_is() {   # region_is OFFSET-MIB MIB SHA256 WHAT
    local got
    got=$(dd if="$IMG" bs=1M skip="$1" count="$2" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$3" ]; then
        HOST_MIB=$((HOST_MIB + $2))
    else
        say "FAIL host: $4 at ${1} MiB of $IMG: sha256 $got, expected $3"
        HOST_OK=0
    fi
}
if [ "$HOST_CHECK" = 1 ] && [ "$GUEST_RESULT" = PASS ]; then
    if has_wl verify; then
        for ((c = 0; c < SMP; c++)); do
            region_is $((BASE_MIB + 2 * PATTERN_MIB * c)) "$PATTERN_MIB" "$PATTERN_SHA256" "writer $c's 1M copy"
            region_is $((BASE_MIB + 2 * PATTERN_MIB * c + PATTERN_MIB)) "$PATTERN_MIB" "$PATTERN_SHA256" "writer $c's 4k copy"
        done
    fi
    if has_wl soak; then
        nsoak=0
        while read -r w pat off; do
            case $pat in a) sha=$SOAK_A_SHA256 ;; b) sha=$SOAK_B_SHA256 ;; *) sha=none ;; esac
            region_is "$off" "$SOAK_MIB" "$sha" "soak $w's last round (pattern $pat)"
            nsoak=$((nsoak + 1))
        done < <(sed -n 's/.*HG: SOAK-DONE \(w[0-9]*\) result=PASS .*pattern=\([ab]\) offset_mib=\([0-9]*\).*/\1 \2 \3/p' "$SERIAL")
        [ $nsoak = "$SMP" ] || { say "FAIL host: $nsoak soak writer(s) reported, expected $SMP"; HOST_OK=0; }
    fi
    [ $HOST_OK = 1 ] && say "PASS host: $HOST_MIB MiB the guest wrote are in $IMG, sha256 intact"
fi

# Summary: what the guest did, and how long it took
hg() { awk -v p="$1" 'index($0, p) { print $1; exit }' "$SERIAL"; }   # host time of a line
T_INIT_HOST=$(hg 'HG: INIT')
T_INIT_GUEST=$(sed -n 's/.*HG: INIT uptime_s=\([0-9.]*\).*/\1/p' "$SERIAL" | head -n 1)
T_VDA=$(hg 'HG: PASS found /dev/vda')
WL_TIMES=$(sed -n 's/.*HG: TIME workload=\([a-z]*\) secs=\([0-9.]*\).*/\1 \2s/p' "$SERIAL" | paste -sd ,)
say "guest: $(grep -ac 'HG: PASS' "$SERIAL") PASS, ${NFAIL:-0} FAIL; $(grep -a 'HG: STATS' "$SERIAL" | sed 's/^ *[0-9.]* HG: STATS //' | paste -sd ';')"
say "timing: initramfs ${T_INITRD}s, backend ready ${T_BREADY}s, boot (QEMU start to /init)" \
    "${T_INIT_HOST:-?}s (guest uptime ${T_INIT_GUEST:-?}s), /dev/vda at ${T_VDA:-?}s," \
    "workloads: ${WL_TIMES:-none}; QEMU ${ACCEL} wall $(el "$T_Q0" "$T_QEND")s${T_BEXIT_TOOK:+, backend exit ${T_BEXIT_TOOK}s}," \
    "total $(el "$T_START" "$(now)")s"

why=""
[ "$GUEST_RESULT" = PASS ] || why+=", guest ${GUEST_RESULT:-gave no verdict}"
[ "${NFAIL:-0}" = 0 ] || why+=", $NFAIL guest FAIL line(s)"
[ "$QRC" = 0 ] || why+=", qemu status $QRC"
[ $BOOT_HUNG = 0 ] || why+=", boot timeout"
[ $HOST_OK = 1 ] || why+=", host check"
[ $BACKEND_OK = 1 ] || why+=", backend exit"
if [ -z "$why" ]; then VERDICT=PASS; else VERDICT=FAIL; fi
say "RESULT: $VERDICT (workloads=$WORKLOADS queues=$QUEUES smp=$SMP${why:+; failed:${why#,}}) logs: $OUT"
[ $VERDICT = PASS ]
