#!/bin/sh
# Usage: verify-socket.sh SOCKET-UNIT SERVICE-UNIT EXECUTABLE
#
# `systemd-analyze verify` of fdbroker.socket, offline, with the service it
# names (Service=) beside it, its ExecStart= pointing at the EXECUTABLE just
# built (as verify-unit.sh does). Checks too that the socket is passed under
# the name the service looks for ("direct") and that anyone may connect.
# Exits 77 (skip) when systemd-analyze is not installed.
set -u
usage="usage: verify-socket.sh SOCKET-UNIT SERVICE-UNIT EXECUTABLE"
sock=${1:?$usage}
svc=${2:?$usage}
exe=${3:?$usage}

grep -qx 'FileDescriptorName=direct' "$sock" || { echo "FAIL: $sock does not name its socket 'direct'"; exit 1; }
grep -qx 'SocketMode=0666' "$sock" || { echo "FAIL: $sock is not SocketMode=0666"; exit 1; }
grep -qx 'ListenStream=/run/fdbroker/socket' "$sock" || { echo "FAIL: $sock does not listen on /run/fdbroker/socket"; exit 1; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not found; cannot verify $sock"
    exit 77
fi
case $exe in
    /*) ;;
    *) exe=$(pwd)/$exe ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fdbroker-verify.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$sock" "$tmp/fdbroker.socket"
sed "s|^\(ExecStart=[-@:+!]*\)[^ ]*|\1$exe|" "$svc" > "$tmp/fdbroker.service"
out=$(cd "$tmp" && systemd-analyze verify --recursive-errors=no --man=no fdbroker.socket 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify fdbroker.socket:"
    echo "$out"
    exit 1
fi
echo "OK: $sock"
