#!/bin/sh
# Quick start, command 2: build fdbroker and run every test suite.
#
#   sudo tools/test.sh
#
# Installs the build and test dependencies (Debian 12, as root), configures
# ./build if needed, compiles, and runs `meson test` (all suites). Exits with
# meson test's status. Tests that need root (other users, private buses with
# a root-owned name) skip when run as another user.
set -eu

cd "$(dirname "$0")/.."

sh tools/install-deps.sh

if [ ! -f build/build.ninja ]; then
    meson setup build
fi
meson compile -C build

set +e
meson test -C build --print-errorlogs "$@"
exit $?
