#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerate the build system from a git checkout (tarballs ship it built).
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
exec autoreconf --force --install --warnings=all
