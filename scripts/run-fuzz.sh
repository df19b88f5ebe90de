#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-fuzz.sh - build the libFuzzer targets if needed and run each one for a
# bounded time, starting from the committed seed corpus.  Prints each
# target's execution count (libFuzzer's final "Done N runs in S second(s)")
# and exits non-zero if any target crashes, leaks, hangs or fails a check.
#
#   scripts/run-fuzz.sh [SECONDS]     seconds per target (default 60)
#
# Run it from a configured build directory (the source tree for in-tree
# builds); an unconfigured source tree is configured first.  Inputs that
# fail are kept in a directory whose name is printed; new corpus entries
# go to a scratch directory, never into the committed corpus.
set -eu

secs=${1:-60}
case "$secs" in
    ''|*[!0-9]*) echo "run-fuzz.sh: SECONDS must be a number, not '$secs'" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
targets="fuzz-vq-split fuzz-mem fuzz-vu-backend"

if [ ! -f Makefile ]; then
    if [ "$(pwd)" != "$top" ]; then
        echo "run-fuzz.sh: run me from a configured build directory" >&2
        exit 2
    fi
    [ -x ./configure ] || ./autogen.sh
    ./configure
fi
make fuzz

work=$(mktemp -d "${TMPDIR:-/tmp}/hvn-fuzz.XXXXXX")
failed=""
for t in $targets; do
    mkdir -p "$work/$t"
    echo "== $t: ${secs}s"
    status=0
    "./tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/$t-" \
        "$work/$t" "$top/tests/fuzz/corpus/$t" >"$work/$t.log" 2>&1 || status=$?
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$work/$t.log" | tail -n 1 || true)
    if [ "$status" -ne 0 ] || [ -z "$done_line" ]; then
        echo "$t: FAILED (exit status $status); last lines of its log:"
        tail -n 40 "$work/$t.log" | sed 's/^/    /'
        failed="$failed $t"
    else
        echo "$t: $done_line"
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
            "$work/$t.log" | sed 's/^/    /'
    fi
done

if [ -n "$failed" ]; then
    echo "run-fuzz.sh: failed:$failed; logs and crashing inputs in $work" >&2
    exit 1
fi
rm -rf "$work"
echo "run-fuzz.sh: all targets ran ${secs}s without a crash"
