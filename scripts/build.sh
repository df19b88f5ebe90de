#!/bin/sh
# SPDX-License-Identifier: MIT
#
# build.sh - bring a checkout to a built state, doing only what is missing:
# install the Debian packages (as root), generate the build system, configure,
# compile.  Safe to run again.  Used by check.sh and demo.sh.
#
# Environment:
#   HVN_CONFIGURE_FLAGS  extra ./configure options (e.g. --enable-werror);
#                        a change of flags reconfigures
#   HVN_SKIP_DEPS=1      do not call install-deps.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "${HVN_SKIP_DEPS:-0}" != 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        scripts/install-deps.sh
    else
        echo "build.sh: not root, skipping scripts/install-deps.sh (run it as root once)"
    fi
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    ./autogen.sh
fi

flags=${HVN_CONFIGURE_FLAGS:-}
# config.status remembers the options it was made with; reconfigure when
# they differ, so a CI run with --enable-werror never reuses a laxer build.
if [ ! -f config.status ] || [ "$(./config.status --config)" != "$(printf '%s' "$flags" | sed "s/[^ ][^ ]*/'&'/g")" ]; then
    # shellcheck disable=SC2086 # the flags are words
    ./configure $flags
fi

make -j"$(nproc)"
