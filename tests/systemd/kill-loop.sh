#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# kill -9 the broker under a real systemd --user manager, CYCLES times (100
# by default), and after each automatic restart (Restart=on-failure) check
# that every persistent entry (memfd, sealed memfd, unlinked regular file,
# pipe, socket) is still there with the same bytes and info. Not part of
# `meson test`: run it by hand, as root, after building:
#
#   tests/systemd/kill-loop.sh [CYCLES]
#
# FDBROKER_SERVICE picks the binary (default: build/service/fdbroker).
# The last line is the summary:
#   kill-loop: N cycles, E entries (...), C entry checks, L losses, R automatic restarts counted by systemd
# Exit status: 0 when every cycle came back with no loss, 77 when the real
# systemd set-up is impossible here (the reason is printed), 1 otherwise.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
: "${FDBROKER_SOURCE_DIR:=$src}"
: "${FDBROKER_SERVICE:=$src/build/service/fdbroker}"
export FDBROKER_SOURCE_DIR FDBROKER_SERVICE PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$here/test_real_systemd.py" --kill-loop "${1:-100}"
