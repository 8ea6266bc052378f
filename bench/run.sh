#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/run.sh [--quick] [--build-dir DIR] [--keep]: fdbroker's benchmarks
# against the floor (raw SCM_RIGHTS, a bare sd-bus fd echo) and a peer
# (s6-fdholder). Builds what it needs, sets up private buses, prints the
# table and writes bench/results/latest.{json,txt,png}. Needs root (bus
# activation as root, as on the system bus). See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${FDBROKER_BUILD_DIR:-$here/../build}
prev=
for a in "$@"; do
        [ "$prev" = --build-dir ] && build=$a
        case $a in --build-dir=*) build=${a#--build-dir=} ;; esac
        prev=$a
done
sh "$here/../tools/install-deps.sh" >/dev/null   # s6, gnuplot and the build tools
[ -f "$build/build.ninja" ] || meson setup "$build" "$here/.." >/dev/null
ninja -C "$build" service/fdbroker client/fdbrokerctl client/fdbrokerctl-full bench/bench-client bench/fd-echo >/dev/null
exec /usr/bin/python3 "$here/run.py" bench --build-dir "$build" "$@"
