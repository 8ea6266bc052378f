#!/bin/sh
# Usage: check-security.sh UNIT-FILE THRESHOLD
#
# Scores a unit's sandboxing offline with `systemd-analyze security` and
# fails when its exposure is above THRESHOLD (0.0 best, 10.0 worst). Prints
# the score either way. Skips (77) without systemd-analyze.
set -u
unit=${1:?usage: check-security.sh UNIT-FILE THRESHOLD}
threshold=${2:?usage: check-security.sh UNIT-FILE THRESHOLD}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not found; cannot score $unit"
    exit 77
fi
# systemd 252 takes the threshold in tenths (15 means 1.5).
tenths=$(awk -v t="$threshold" 'BEGIN { printf "%d", t * 10 + 0.5 }')
out=$(systemd-analyze security --offline=yes --threshold="$tenths" "$unit" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '✗|Overall exposure' || true
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
    echo "FAIL: no exposure score in systemd-analyze's output"
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: exposure $score is above the threshold $threshold"
    exit 1
fi
echo "OK: exposure $score <= $threshold"
