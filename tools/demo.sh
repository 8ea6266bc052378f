#!/bin/sh
# Quick start, command 1: build fdbroker and watch it hand an fd from one
# user to another.
#
#   sudo tools/demo.sh
#
# Installs the dependencies (Debian 12, as root), configures ./build if
# needed, compiles, and runs tools/demo.py with Debian's python3 (the one
# that has python3-gi). Nothing is installed system-wide: the broker runs
# from the build tree on a private bus that the demo starts and stops.
set -eu

cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (sudo $0): it creates two demo users and acts as them" >&2
    exit 1
fi

sh tools/install-deps.sh --demo

echo "demo: building fdbroker in ./build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { [ -f build/build.ninja ] || meson setup build; } >"$log" 2>&1 ||
   ! meson compile -C build >>"$log" 2>&1; then
    cat "$log" >&2
    echo "demo: the build failed (output above)" >&2
    exit 1
fi

/usr/bin/python3 tools/demo.py --build-dir build "$@"
