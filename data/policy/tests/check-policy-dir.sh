#!/bin/sh
# check-policy-dir.sh FDBROKER DIR FILE...
#
# Runs `FDBROKER --check-policy --policy-dir=DIR` and requires exit status
# 0, nothing on stderr, and each FILE (a base name) among the files it says
# it read: a policy file that the broker would reject, or would not even
# read (a name without .conf), fails here before it is installed.
set -u

fdbroker=$1
dir=$2
shift 2

out=$("$fdbroker" --check-policy --policy-dir="$dir" 2>&1 >/dev/null)
status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL: $fdbroker --check-policy --policy-dir=$dir exited $status:"
    echo "$out"
    exit 1
fi
listed=$("$fdbroker" --check-policy --policy-dir="$dir" 2>/dev/null)
echo "$listed"
for f in "$@"; do
    if ! printf '%s\n' "$listed" | grep -qxF "  $dir/$f"; then
        echo "FAIL: $f was not read from $dir"
        exit 1
    fi
done
echo "OK: $dir passes --check-policy"
