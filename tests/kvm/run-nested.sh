#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-nested.sh - run a static program under a real KVM, on a host without one.
#
# Boots the distribution's own kernel under QEMU TCG on an emulated AMD CPU
# with SVM (L1), loads kvm and kvm_amd there, and runs PROGRAM inside it, so
# PROGRAM gets a real /dev/kvm: real kernel code on emulated hardware.  Its
# guests (L2) are then real KVM guests.  The verdict is PROGRAM's exit status,
# read back from the serial console.
#
# Usage: run-nested.sh [OPTIONS] PROGRAM [ARGS...]
#
#   PROGRAM must be statically linked (L1 has only busybox) and should
#   line-buffer its stdout (it writes to a pipe).  Its output is printed
#   once it has finished.
#
# Options:
#   -e, --expect REGEX     pass only if PROGRAM also printed a line matching
#                          REGEX (grep -E), e.g. its own verdict line
#   -f, --file FILE        also put FILE, a static executable, in /hvn/bin in
#                          L1 (repeatable): a daemon PROGRAM talks to, say
#   -d, --daemon CMD       before PROGRAM, run the shell command CMD in the
#                          background in L1 (busybox sh, in /tmp, with
#                          /hvn/bin first in PATH); start the daemon last
#                          with "exec" so that the PID signalled is its own.
#                          Once PROGRAM has exited it gets SIGTERM and must
#                          exit 0 within 10 s, else the run fails; its output
#                          is printed after PROGRAM's, each line "daemon| "
#   -w, --wait-for PATH    with --daemon: start PROGRAM only once PATH exists
#                          in L1 (a socket the daemon creates), at most 10 s
#   -v, --verbose          also print the L1 console (init, kernel messages)
#   -k, --keep             keep the per-run directory (initramfs, serial log)
#   -b, --build-dir DIR    cache and work directory (default: see HVN_NESTED_BUILD)
#   -h, --help             this text
#
# Environment:
#   HVN_CI=1               CI mode: a missing tool, kernel or a boot failure is a
#                          failure (exit 1), never a skip (exit 77)
#   HVN_KVER               kernel version (default: what linux-image-amd64 depends
#                          on, else the newest /boot/vmlinuz-* with modules)
#   HVN_KERNEL             kernel image (default: /boot/vmlinuz-$HVN_KVER)
#   HVN_MODDIR             its modules (default: /lib/modules/$HVN_KVER)
#   HVN_BUSYBOX            static busybox (default: /bin/busybox)
#   HVN_QEMU               default: qemu-system-x86_64
#   HVN_CPU                default: EPYC,+svm (EPYC-Rome,+svm, max also work)
#   HVN_MACHINE            default: microvm (pc works too, slower to boot)
#   HVN_MEM                default: 256M
#   HVN_BOOT               pvh (default: boot the vmlinux ELF extracted from the
#                          image, skipping its decompression under TCG) | bzimage
#   HVN_KVM_AMD_PARAMS     kvm_amd module parameters, e.g. "npt=0 nested=0"
#   HVN_TSC_KHZ            tsc_early_khz= for L1 (default: host "cpu MHz"; TCG's
#                          guest TSC is the host's; 0 = do not pass it)
#   HVN_BOOT_TIMEOUT       CPU seconds QEMU may use before L1 reaches userspace
#                          (or 4 times that in wall-clock time), else the boot
#                          is killed and retried (30; a normal boot takes ~3)
#   HVN_RETRIES            boot attempts (3)
#   HVN_TIMEOUT            hard limit for one QEMU run in seconds (300)
#   HVN_NESTED_BUILD       build directory (default: $top_builddir/tests/kvm/build
#                          under make, else tests/kvm/build next to this script)
#
# Exit status: 0 PROGRAM passed, 1 it failed (or hung, or crashed L1),
# 77 this machine cannot run it (no QEMU, no kernel, L1 did not boot, no
# KVM in L1, or PROGRAM itself exited 77); with HVN_CI=1, 1 instead of 77.
set -euo pipefail

ME=run-nested
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KVM_MODULE=kvm-amd	# TCG emulates SVM but not VMX

usage() { sed -n '4,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
say() { echo "$ME: $*"; }
die() { say "error: $*" >&2; exit 1; }

ci() { case "${HVN_CI:-0}" in 1|yes|true) return 0 ;; esac; return 1; }

# "Cannot run here": a skip, except in CI where everything must be there.
cannot_run() {
    if ci; then
        say "FAIL (HVN_CI=1, so not a skip): $*"
        exit 1
    fi
    say "SKIP: $*"
    exit 77
}

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
secs() { printf '%d.%02d' $(($1 / 1000000)) $(($1 % 1000000 / 10000)); }

verbose='' keep='' expect='' build=${HVN_NESTED_BUILD:-} daemon='' wait_for=''
files=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        -e|--expect) [ $# -ge 2 ] || die "$1 needs an argument"; expect=$2; shift ;;
        --expect=*) expect=${1#*=} ;;
        -f|--file) [ $# -ge 2 ] || die "$1 needs an argument"; files+=("$2"); shift ;;
        --file=*) files+=("${1#*=}") ;;
        -d|--daemon) [ $# -ge 2 ] || die "$1 needs an argument"; daemon=$2; shift ;;
        --daemon=*) daemon=${1#*=} ;;
        -w|--wait-for) [ $# -ge 2 ] || die "$1 needs an argument"; wait_for=$2; shift ;;
        --wait-for=*) wait_for=${1#*=} ;;
        -v|--verbose) verbose=1 ;;
        -k|--keep) keep=1 ;;
        -b|--build-dir) [ $# -ge 2 ] || die "$1 needs an argument"; build=$2; shift ;;
        --build-dir=*) build=${1#*=} ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (try --help)" ;;
        *) break ;;
    esac
    shift
done
[ $# -ge 1 ] || { usage >&2; exit 1; }
prog=$1; shift

t_begin=$(now_us)

# ------------------------------------------------------------ the program --
# It, and every --file, must run in L1, which has no shared libraries.
check_static() {
    if [ ! -f "$1" ] || [ ! -x "$1" ]; then die "$1: not an executable file"; fi
    [ "$(head -c 4 "$1")" = $'\x7fELF' ] ||
        die "$1: not an ELF binary (a libtool wrapper script? link it with -all-static)"
    if command -v readelf >/dev/null && readelf -lW "$1" 2>/dev/null | grep -q 'program interpreter'; then
        die "$1: dynamically linked; L1 has no shared libraries (link it with -static)"
    fi
}
check_static "$prog"
for f in "${files[@]}"; do check_static "$f"; done
[ -z "$wait_for" ] || [ -n "$daemon" ] || die "--wait-for is for --daemon"
case "$daemon$wait_for" in *$'\n'*) die "--daemon and --wait-for must not contain newlines" ;; esac

# -------------------------------------------------------- what we need --
QEMU=${HVN_QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || cannot_run "$QEMU not found (apt-get install qemu-system-x86)"
for tool in cpio timeout; do
    command -v $tool >/dev/null || cannot_run "$tool not found"
done
BUSYBOX=${HVN_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || cannot_run "$BUSYBOX not found (apt-get install busybox-static)"
if command -v readelf >/dev/null && readelf -lW "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
    cannot_run "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi

# The kernel linux-image-amd64 stands for: its only linux-image-* dependency.
find_kver() {
    local v dep
    dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null || true)
    v=$(printf '%s\n' "$dep" | tr ',|' '\n' | sed -n 's/^ *linux-image-\([^ ]*\).*/\1/p' | head -n1)
    if [ -n "$v" ] && [ -e "/boot/vmlinuz-$v" ]; then echo "$v"; return; fi
    # Not Debian, or no metapackage: the newest kernel that has its modules.
    for v in $(for k in /boot/vmlinuz-*; do [ -e "$k" ] && echo "${k#/boot/vmlinuz-}"; done | sort -rV); do
        if [ -e "/lib/modules/$v/modules.dep" ]; then echo "$v"; return; fi
    done
}
KVER=${HVN_KVER:-$(find_kver)}
[ -n "$KVER" ] || cannot_run "no kernel found in /boot (apt-get install linux-image-amd64)"
KERNEL=${HVN_KERNEL:-/boot/vmlinuz-$KVER}
MODDIR=${HVN_MODDIR:-/lib/modules/$KVER}
[ -r "$KERNEL" ] || cannot_run "kernel image $KERNEL not readable"
[ -r "$MODDIR/modules.dep" ] || cannot_run "$MODDIR/modules.dep not found"

CPU=${HVN_CPU:-EPYC,+svm}
MACHINE=${HVN_MACHINE:-microvm}
MEM=${HVN_MEM:-256M}
BOOT=${HVN_BOOT:-pvh}
BOOT_TIMEOUT=${HVN_BOOT_TIMEOUT:-30}
RETRIES=${HVN_RETRIES:-3}
TIMEOUT=${HVN_TIMEOUT:-300}
TSC_KHZ=${HVN_TSC_KHZ:-$(awk -F': *' '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)}

if [ -z "$build" ]; then
    if [ -n "${top_builddir:-}" ]; then build=$top_builddir/tests/kvm/build
    else build=$HERE/build; fi
fi
if ! mkdir -p "$build" 2>/dev/null || [ ! -w "$build" ]; then
    die "build directory $build is not writable (use --build-dir)"
fi
build=$(cd "$build" && pwd)
work=$(mktemp -d "$build/run.XXXXXX")
qpid=''
# shellcheck disable=SC2317 # trap handlers
cleanup() {
    if [ -n "$keep" ]; then say "kept $work"; else rm -rf "$work"; fi
}
# timeout(1) runs QEMU in a process group of its own, so a ^C on the
# terminal does not reach it: pass it on, or QEMU runs until HVN_TIMEOUT.
# shellcheck disable=SC2317
on_signal() {
    [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# ------------------------------------------------- cached: the vmlinux --
# PVH boot of the uncompressed ELF skips ~2.5 s of in-guest decompression
# under TCG.  The compressed payload's place is in the bzImage header
# (boot protocol >= 2.08: setup_sects at 0x1f1, payload_offset at 0x248,
# payload_length at 0x24c); QEMU needs the ELF note XEN_ELFNOTE_PHYS32_ENTRY.
le32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
extract_vmlinux() {
    local img=$1 out=$2 setup off len start magic
    [ "$(od -An -c -j $((0x202)) -N4 "$img" | tr -d ' ')" = HdrS ] || return 1
    setup=$(od -An -tu1 -j $((0x1f1)) -N1 "$img" | tr -d ' ')
    [ "$setup" -ne 0 ] || setup=4
    off=$(le32 "$img" $((0x248)))
    len=$(le32 "$img" $((0x24c)))
    start=$(( (setup + 1) * 512 + off ))
    magic=$(od -An -tx1 -j "$start" -N6 "$img" | tr -d ' ')
    case "$magic" in
        fd377a585a00*) dec=(xz -dc --single-stream) ;;
        28b52ffd*)     dec=(zstd -dcq) ;;
        1f8b*)         dec=(gzip -dc) ;;
        *) say "note: unknown kernel compression (magic $magic)"; return 1 ;;
    esac
    command -v "${dec[0]}" >/dev/null || { say "note: ${dec[0]} not found"; return 1; }
    # The payload ends with the decompressed size (4 bytes), which some
    # decompressors call trailing garbage: judge by the output, not the status.
    head -c $((start + len)) "$img" | tail -c +$((start + 1)) | "${dec[@]}" > "$out" 2>/dev/null || true
    [ "$(head -c 4 "$out")" = $'\x7fELF' ] || return 1
    command -v readelf >/dev/null || return 1
    readelf -nW "$out" 2>/dev/null | grep -q '(0x00000012)'
}
bootimg=$KERNEL
if [ "$BOOT" = pvh ]; then
    vmlinux=$build/vmlinux-$KVER
    if [ ! -s "$vmlinux" ] || [ "$vmlinux" -ot "$KERNEL" ]; then
        # Concurrent runs share the cache: each writes its own file, then renames.
        if extract_vmlinux "$KERNEL" "$work/vmlinux"; then
            mv -f "$work/vmlinux" "$vmlinux"
        else
            say "note: no PVH vmlinux extracted from $KERNEL, booting the bzImage (slower)"
            rm -f "$work/vmlinux"
        fi
    fi
    [ -s "$vmlinux" ] && bootimg=$vmlinux
fi

# --------------------------------------- cached: busybox and the modules --
# kvm-amd and everything it needs, dependencies first.  modules.dep lists
# each module's whole closure, but not in an order we want to rely on, so
# walk it.
declare -A seen=()
order=()
deps_of() { awk -v m="$1" 'BEGIN { FS = ": *" } $1 == m { print $2; exit }' "$MODDIR/modules.dep"; }
visit() {
    local m=$1 d
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    for d in $(deps_of "$m"); do visit "$d"; done
    order+=("$m")
}
kvm_path=$(awk -v n="$KVM_MODULE" 'BEGIN { FS = ":" }
    { f = $1; sub(/.*\//, "", f); sub(/\.(xz|zst|gz)$/, "", f) }
    f == n ".ko" { print $1; exit }' "$MODDIR/modules.dep")
[ -n "$kvm_path" ] || cannot_run "$KVM_MODULE not in $MODDIR/modules.dep (kernel without KVM?)"
visit "$kvm_path"

base=$build/base-$KVER.cpio
key="kver=$KVER moddir=$MODDIR busybox=$(stat -c %s.%Y "$BUSYBOX") moddep=$(stat -c %Y "$MODDIR/modules.dep") mods=${order[*]} format=1"
if [ ! -s "$base" ] || [ "$(cat "$base.key" 2>/dev/null)" != "$key" ]; then
    root=$work/base
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,hvn,lib/modules}
    cp "$BUSYBOX" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    : > "$root/lib/modules/load-order"
    for m in "${order[@]}"; do
        ko=$(basename "$m"); ko=${ko%.xz}; ko=${ko%.zst}; ko=${ko%.gz}
        case "$m" in
            *.xz)  xz -dc "$MODDIR/$m" ;;
            *.zst) zstd -dcq "$MODDIR/$m" ;;
            *.gz)  gzip -dc "$MODDIR/$m" ;;
            *)     cat "$MODDIR/$m" ;;
        esac > "$root/lib/modules/$ko" || cannot_run "cannot decompress $MODDIR/$m"
        echo "$ko" >> "$root/lib/modules/load-order"
    done
    # Uncompressed: QEMU loads it in no time, while gunzip under TCG is slow.
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/base.cpio"
    mv -f "$work/base.cpio" "$base"
    printf '%s\n' "$key" > "$base.key"
    rm -rf "$root"
fi

# ------------------------------------------------- per run: init + program --
# The kernel unpacks concatenated cpio archives in order, so the per-run part
# is a second archive after the cached one.
# PROGRAM keeps its name (argv[0]; busybox, for one, depends on it).
root=$work/run
name=$(basename "$prog")
mkdir -p "$root/hvn/bin"
cp "$HERE/init" "$root/init"
chmod 755 "$root/init"
cp "$prog" "$root/hvn/bin/$name"
chmod 755 "$root/hvn/bin/$name"
for f in "${files[@]}"; do
    cp "$f" "$root/hvn/bin/$(basename "$f")"
    chmod 755 "$root/hvn/bin/$(basename "$f")"
done
[ -z "$daemon" ] || printf '%s\n' "$daemon" > "$root/hvn/daemon"
[ -z "$wait_for" ] || printf '%s\n' "$wait_for" > "$root/hvn/wait-for"
printf '%s\n' "/hvn/bin/$name" > "$root/hvn/argv"
for a in "$@"; do
    case "$a" in *$'\n'*) die "arguments must not contain newlines" ;; esac
    printf '%s\n' "$a" >> "$root/hvn/argv"
done
printf '%s\n' "${HVN_KVM_AMD_PARAMS:-}" > "$root/hvn/kvm-amd.params"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/run.cpio"
cat "$base" "$work/run.cpio" > "$work/initramfs.cpio"
t_built=$(now_us)

# ------------------------------------------------------------------ boot --
append="console=ttyS0 quiet panic=-1 mitigations=off"
# TCG sometimes fails TSC calibration (no HPET or PM timer on microvm) and
# L1 then spins in calibrate_delay(); telling it the frequency avoids that.
[ -n "$TSC_KHZ" ] && [ "$TSC_KHZ" != 0 ] && append="$append tsc_early_khz=$TSC_KHZ"
log=$work/serial.log
qemu=("$QEMU" -accel tcg -machine "$MACHINE" -cpu "$CPU" -smp 1 -m "$MEM"
      -display none -nodefaults -no-user-config -no-reboot
      -serial "file:$log" -monitor none
      -kernel "$bootimg" -initrd "$work/initramfs.cpio" -append "$append")
[ -z "$verbose" ] || say "qemu: ${qemu[*]}"

marker() { grep -a -m1 -o "HVN-L1 $1.*" "$log" 2>/dev/null | tr -d '\r' || true; }

# CPU seconds QEMU (timeout's child) has used; empty if unknown.
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
qemu_cpu_s() {
    local child
    child=$(cat "/proc/$qpid/task/$qpid/children" 2>/dev/null || pgrep -P "$qpid" 2>/dev/null || true)
    child=${child%% *}
    [ -n "$child" ] || return 0
    # utime and stime are fields 14 and 15; the name in field 2 may hold spaces.
    sed 's/.*) //' "/proc/$child/stat" 2>/dev/null |
        awk -v t="$clk_tck" '{ printf "%d", ($12 + $13) / t }'
}
# The hang the watchdog is for (L1 spinning in calibrate_delay()) burns
# CPU, while a loaded machine only stretches the wall-clock time: judge by
# CPU time, with a generous wall-clock limit for a guest stuck idle.
boot_stuck() {
    local cpu
    cpu=$(qemu_cpu_s)
    [ -n "$cpu" ] && [ "$cpu" -gt "$BOOT_TIMEOUT" ] && return 0
    [ "$1" -gt $((4 * BOOT_TIMEOUT * 1000000)) ]
}
uptime_of() { sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$1"; }

rm -f "$build/serial-$name".attempt*.log
attempt=0
while :; do
    attempt=$((attempt + 1))
    : > "$log"
    h_boot='' h_mods='' h_exit='' watchdog=''
    t_q0=$(now_us)
    timeout -k 5 "$TIMEOUT" "${qemu[@]}" </dev/null >"$work/qemu.out" 2>&1 &
    qpid=$!
    polls=0
    while kill -0 "$qpid" 2>/dev/null; do
        sleep 0.1
        polls=$((polls + 1))
        el=$(( $(now_us) - t_q0 ))
        if [ -z "$h_boot" ]; then
            if grep -aq 'HVN-L1 boot' "$log"; then
                h_boot=$el
            elif [ $((polls % 10)) = 0 ] && boot_stuck "$el"; then
                say "boot watchdog: no L1 userspace after $(secs "$el") s, qemu CPU $(qemu_cpu_s) s" \
                    "(attempt $attempt of $RETRIES)"
                watchdog=1
                kill "$qpid" 2>/dev/null || true
                break
            fi
            continue
        fi
        [ -n "$h_mods" ] || ! grep -aq 'HVN-L1 modules' "$log" || h_mods=$el
        [ -n "$h_exit" ] || ! grep -aq 'HVN-L1 exit' "$log" || h_exit=$el
    done
    qrc=0
    wait "$qpid" || qrc=$?
    qpid=''
    t_q1=$(now_us)
    [ -n "$h_boot" ] || ! grep -aq 'HVN-L1 boot' "$log" || h_boot=$((t_q1 - t_q0))
    [ -n "$h_exit" ] || ! grep -aq 'HVN-L1 exit' "$log" || h_exit=$((t_q1 - t_q0))
    # Only a boot that never reached userspace is retried: once PROGRAM has
    # run, its result stands.
    if [ -z "$h_boot" ] && [ "$attempt" -lt "$RETRIES" ]; then
        [ -n "$watchdog" ] || say "L1 did not boot (qemu exit $qrc), attempt $attempt of $RETRIES"
        cp "$log" "$build/serial-$name.attempt$attempt.log" 2>/dev/null || true
        continue
    fi
    break
done
t_end=$(now_us)
cp "$log" "$build/serial-$name.log" 2>/dev/null || true

# ---------------------------------------------------------------- report --
show_console() {
    say "---- L1 console (last 60 lines) ----"
    tr -d '\r' < "$log" | tail -n 60 | sed 's/^/| /'
    if [ -s "$work/qemu.out" ]; then
        say "---- qemu ----"
        sed 's/^/| /' "$work/qemu.out"
    fi
    say "qemu: ${qemu[*]}"
    say "serial log: $build/serial-$name.log"
}

if [ -n "$verbose" ]; then
    tr -d '\r' < "$log" | grep -av 'HVN-OUT ' | sed 's/^/| /'
fi
# PROGRAM's own lines, without the prefix init added.
grep -a -o 'HVN-OUT .*' "$log" | tr -d '\r' | sed 's/^HVN-OUT //' > "$work/output" || true
cat "$work/output"
grep -a -o 'HVN-DAEMON .*' "$log" | tr -d '\r' | sed 's/^HVN-DAEMON /daemon| /' || true

m_boot=$(marker boot) m_mods=$(marker modules) m_start=$(marker start) m_exit=$(marker exit)
m_daemon=$(marker 'daemon rc')
rc=$(sed -n 's/^HVN-L1 exit rc=\([0-9]*\).*/\1/p' <<<"$m_exit")
timing="prepare $(secs $((t_built - t_begin))) s"
[ -z "$h_boot" ] || timing="$timing, L1 userspace at $(secs "$h_boot") s (L1 uptime $(uptime_of "$m_boot") s)"
[ -z "$h_mods" ] || timing="$timing, $KVM_MODULE loaded at $(secs "$h_mods") s"
if [ -n "$m_start" ] && [ -n "$m_exit" ]; then
    timing="$timing, program $(awk -v a="$(uptime_of "$m_start")" -v b="$(uptime_of "$m_exit")" \
        'BEGIN { printf "%.2f", b - a }') s"
fi
timing="$timing, qemu $(secs $((t_q1 - t_q0))) s, total $(secs $((t_end - t_begin))) s"
[ "$attempt" -eq 1 ] || timing="$timing, boot attempts $attempt"
say "kernel $KVER, -cpu $CPU, -machine $MACHINE${HVN_KVM_AMD_PARAMS:+, kvm_amd $HVN_KVM_AMD_PARAMS}; $(sed 's/^HVN-L1 modules uptime=[0-9.]* *//' <<<"$m_mods")"
say "timing: $timing"

if [ -z "$h_boot" ]; then
    show_console
    cannot_run "L1 did not reach userspace in $attempt attempts (qemu exit $qrc)"
fi
if grep -aq 'HVN-L1 kvm=missing' "$log"; then
    show_console
    cannot_run "no /dev/kvm in L1 (does -cpu $CPU have svm? see the dmesg lines above)"
fi
if [ -z "$rc" ]; then
    show_console
    case "$qrc" in
        124|137) say "FAIL: hard timeout (${TIMEOUT}s) before PROGRAM finished" ;;
        *) say "FAIL: no exit status from PROGRAM on the console (L1 crashed? qemu exit $qrc)" ;;
    esac
    exit 1
fi
if [ -n "$daemon" ]; then
    say "${m_daemon#HVN-L1 }"
    case "$m_daemon" in
        "HVN-L1 daemon rc=0"*) ;;
        *) [ "$rc" = 77 ] || { say "FAIL: the daemon did not exit 0 after SIGTERM"; exit 1; } ;;
    esac
fi
case "$rc" in
    0) if [ -n "$expect" ] && ! grep -Eq -- "$expect" "$work/output"; then
           say "FAIL: PROGRAM exited 0 but printed no line matching '$expect'"
           exit 1
       fi
       say "PASS"; exit 0 ;;
    77) cannot_run "PROGRAM exited 77 (skip) inside L1" ;;
    *) [ -z "$verbose" ] && grep -aq 'HVN-L1 dmesg' "$log" &&
           grep -a -o 'HVN-L1 dmesg.*' "$log" | tr -d '\r' | sed 's/^/| /'
       say "FAIL: PROGRAM exited $rc"; exit 1 ;;
esac
