#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/soak.sh [--ops N] [--max-seconds S] [--build-dir DIR] [--keep]:
# N (default 1 000 000) mixed operations, errors included, from four users
# (fdbbench-1..4, created if missing) against one broker on a private bus,
# for at most S seconds (default 600). Passes when the broker is the same
# process at the end, holds no entry and has exactly the open fds it had at
# the start; reports its VmRSS growth. Not part of any test suite.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${FDBROKER_BUILD_DIR:-$here/../build}
prev=
for a in "$@"; do
        [ "$prev" = --build-dir ] && build=$a
        case $a in --build-dir=*) build=${a#--build-dir=} ;; esac
        prev=$a
done
[ -f "$build/build.ninja" ] || meson setup "$build" "$here/.." >/dev/null
ninja -C "$build" service/fdbroker bench/bench-client >/dev/null
exec /usr/bin/python3 "$here/run.py" soak --build-dir "$build" "$@"
