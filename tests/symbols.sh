#!/bin/sh
# SPDX-License-Identifier: MIT
#
# symbols.sh - the library's interface is what we say it is: every function
# declared in a public header is in the version script, the shared library
# exports exactly the version script's symbols (all versioned), and every
# exported symbol has its man page.
set -u
src=${top_srcdir:-.}
build=${top_builddir:-.}
so=$build/lib/.libs/libhvnotify.so
sym=$src/lib/libhvnotify.sym
fail=0

if [ ! -f "$so" ]; then
    echo "FAIL no shared library at $so (built with --disable-shared?)"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -oE '^[[:space:]]+hvn_[a-z0-9_]+;' "$sym" | tr -d ' \t;' | sort -u > "$tmp/script"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u > "$tmp/exported.raw"
sed 's/@.*//' "$tmp/exported.raw" | sort -u > "$tmp/exported"
# Prototypes: a name followed by "(" at the start of a declaration.
cat "$src"/include/hvnotify/*.h | tr '\n' ' ' | tr ';' '\n' |
    grep -oE '[ *]hvn_[a-z0-9_]+\(' | tr -d ' *(' | sort -u > "$tmp/declared"

check() {
    if [ -s "$2" ]; then
        echo "FAIL $1:"; sed 's/^/     /' "$2"; fail=1
    else
        echo "ok   $1"
    fi
}
comm -23 "$tmp/declared" "$tmp/script" > "$tmp/d"
check "every function in include/hvnotify/*.h is in libhvnotify.sym" "$tmp/d"
comm -3 "$tmp/script" "$tmp/exported" > "$tmp/d"
check "the library exports exactly the symbols of libhvnotify.sym ($(wc -l < "$tmp/script"))" "$tmp/d"
grep -v '@HVNOTIFY_' "$tmp/exported.raw" > "$tmp/d"
check "every exported symbol carries a HVNOTIFY_ version" "$tmp/d"
: > "$tmp/d"
while read -r s; do
    [ -f "$src/man/man3/$s.3" ] || echo "$s" >> "$tmp/d"
done < "$tmp/script"
check "every exported symbol has man/man3/<symbol>.3" "$tmp/d"
exit $fail
