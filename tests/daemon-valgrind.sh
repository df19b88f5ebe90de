#!/bin/sh
# SPDX-License-Identifier: MIT
#
# daemon-valgrind.sh - the daemon's whole life under valgrind's memcheck:
# start, the lifecycle of tests/daemon-lifecycle.t (connect, I/O, stop and
# restart a queue, disconnect, reconnect, hang up with a queue running,
# SIGTERM with a frontend connected), exit.  Any memcheck error (an
# invalid access, a use of uninitialised memory, a definite or indirect
# leak) makes valgrind exit 99; the test wants exit 0 and "ERROR SUMMARY:
# 0 errors".
#
# The data plane is the real one, io_uring.  Valgrind up to 3.20 (Debian 12
# has 3.19) holds its one big lock across io_uring_enter, so the daemon's
# workers sleep in short slices under valgrind (daemon/worker.c); the
# daemon logs nothing different and does the same work, more slowly.  A
# daemon that also has an epoll engine (--engine=epoll) goes through the
# same lifecycle a second time on it.
#
# Skips (77) without valgrind, unless HVN_CI=1 (CI installs it).
# HVN_KEEP=1 keeps the work directory (valgrind's and the daemon's logs).
set -u

fail() { echo "FAIL $*"; exit 1; }

: "${top_builddir:?run from make check (top_builddir)}"
case ${HVN_CI:-} in 1|yes|true) ci=1 ;; *) ci=0 ;; esac

if ! command -v valgrind >/dev/null 2>&1; then
    [ $ci = 1 ] && fail "valgrind not found (HVN_CI=1; scripts/install-deps.sh installs it)"
    echo "SKIP valgrind not found (apt-get install valgrind)"
    exit 77
fi
echo "valgrind: $(valgrind --version)"

dir=$(mktemp -d /tmp/hvn-vg-XXXXXX) || fail "mktemp"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    if [ "${HVN_KEEP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# run_one [DAEMON OPTION]...: one daemon under valgrind, one lifecycle.
run_one() {
    echo "== the daemon under valgrind, options: -v --workers 2 $*"
    rm -f "$dir"/*
    img=$dir/disk.img
    sock=$dir/blk.sock
    truncate -s 4M "$img" || fail "a 4 MiB image"

    # libtool's execute mode runs the real binary (not the wrapper script) with
    # the build tree's library, and execs: $! is valgrind's pid, which is the
    # daemon's.  Two workers: more threads, more to check.
    "$top_builddir/libtool" --mode=execute valgrind \
        --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect --error-exitcode=99 \
        --log-file="$dir/valgrind.log" \
        "$top_builddir/daemon/hvnotifyd" -v --workers 2 "$@" \
        --device "blk,path=$img,socket=$sock" >"$dir/daemon.log" 2>&1 &
    pid=$!

    # Valgrind takes seconds to start the daemon.
    i=0
    until grep -q ' ready (pid ' "$dir/daemon.log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
            sed 's/^/    /' "$dir/daemon.log" "$dir/valgrind.log" 2>/dev/null
            fail "the daemon under valgrind is not ready after $((i / 10)) s"
        fi
        sleep 0.1
    done
    echo "ok   the daemon runs under valgrind (pid $pid)"

    "$top_builddir/tests/daemon-lifecycle.t" --socket "$sock" --pid "$pid"
    drive=$?

    # The lifecycle ends with SIGTERM: wait for the exit, bounded.
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 1200 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        rc=timeout
    else
        wait "$pid"
        rc=$?
    fi
    pid=""

    echo "---- daemon ----"
    sed 's/^/    /' "$dir/daemon.log"
    echo "---- valgrind ----"
    sed 's/^/    /' "$dir/valgrind.log"

    st=0
    if [ $drive = 0 ]; then echo "ok   the lifecycle passed"; else echo "FAIL the lifecycle (exit $drive)"; st=1; fi
    case $rc in
    0) echo "ok   the daemon exited 0 under valgrind: no memcheck error, no definite or indirect leak" ;;
    99) echo "FAIL memcheck found errors (valgrind exit 99; see above)"; st=1 ;;
    *) echo "FAIL the daemon under valgrind exited $rc"; st=1 ;;
    esac
    if ! grep -q 'ERROR SUMMARY: 0 errors' "$dir/valgrind.log"; then
        echo "FAIL valgrind's error summary is not 0 errors"
        st=1
    fi
    if grep -q 'descriptors\{0,1\} still open at exit' "$dir/daemon.log"; then
        echo "FAIL the daemon left descriptors open"
        st=1
    fi
    return $st
}

# Each data-plane engine the daemon has: io_uring always; the epoll engine
# when this daemon has one (--engine=epoll, which --help then accepts).
status=0
run_one || status=1
if "$top_builddir/daemon/hvnotifyd" --engine=epoll --help >/dev/null 2>&1; then
    run_one --engine=epoll || status=1
else
    echo "(this daemon has no --engine=epoll: io_uring only)"
fi
exit $status
