#!/bin/sh
# Usage: verify-unit.sh UNIT-FILE [EXECUTABLE]
#
# Runs `systemd-analyze verify` on a unit file, offline: it parses the file
# like systemd would and checks that ExecStart= names an executable, without
# asking a running manager anything. With --recursive-errors=no it looks at
# this unit only (not at dbus.socket, which Type=dbus pulls in), and then any
# warning about the unit -- unknown key, bad value, missing binary -- makes it
# exit non-zero. Documentation= uses file: links, so --man=no loses nothing.
#
# verify checks that ExecStart= exists, and the generated unit points into
# $libexecdir, where nothing is installed yet. Given EXECUTABLE (the fdbroker
# just built), the check runs on a copy of the unit, under the same file name,
# whose ExecStart= runs EXECUTABLE instead; nothing else is changed.
#
# Exits 77 (skip) when systemd-analyze is not installed.
set -u

usage="usage: verify-unit.sh UNIT-FILE [EXECUTABLE]"
unit=${1:?$usage}
exe=${2:-}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not found; cannot verify $unit"
    exit 77
fi

[ -r "$unit" ] || { echo "FAIL: cannot read $unit"; exit 1; }

if [ -n "$exe" ]; then
    [ -x "$exe" ] || { echo "FAIL: $exe is not an executable"; exit 1; }
    case $exe in
        /*) ;;
        *) exe=$(pwd)/$exe ;;
    esac
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fdbroker-verify.XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    grep -q '^ExecStart=' "$unit" || { echo "FAIL: $unit has no ExecStart="; exit 1; }
    # ExecStart=[prefixes]/path args... -> ExecStart=[prefixes]EXECUTABLE args...
    sed "s|^\(ExecStart=[-@:+!]*\)[^ ]*|\1$exe|" "$unit" > "$tmp/$(basename "$unit")"
    echo "Verifying a copy of $unit with: $(grep '^ExecStart=' "$tmp/$(basename "$unit")")"
    unit=$tmp/$(basename "$unit")
fi

out=$(systemd-analyze verify --man=no --recursive-errors=no "$unit" 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out"

if [ "$rc" -ne 0 ]; then
    echo "FAIL: systemd-analyze verify $unit exited with $rc"
    exit 1
fi
# Belt and braces: systemd versions differ in which warnings change the exit
# status, so any line about our unit counts as a failure.
name=$(basename "$unit")
if printf '%s\n' "$out" | grep -F -e "$unit" -e "$name" >/dev/null; then
    echo "FAIL: systemd-analyze verify printed warnings about $name"
    exit 1
fi
echo "OK: $unit"
