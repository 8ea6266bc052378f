#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-completion.sh COMPLETION: the bash completion of fdbrokerctl parses
# and completes commands, options and option values (entry names are
# checked against a real broker in test_fdbrokerctl.py). TAP output.
set -u
source "$1" || { echo "1..0 # SKIP cannot source $1"; exit 1; }

n=0 failed=0
check() {   # check NAME EXPECTED WORD...
    local name=$1 expected=$2; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _fdbrokerctl
    local got
    got=
    ((${#COMPREPLY[@]})) && got=$(printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " ")
    n=$((n + 1))
    if [ "$got" = "$expected" ]; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"; echo "#  expected: '$expected'"; echo "#       got: '$got'"
        failed=1
    fi
}

check 'commands' 'cat create-memory ' fdbrokerctl c
check 'commands after a global option' 'remove retrieve ' fdbrokerctl --user re
check 'retrieve options' '--read-only --reopen ' fdbrokerctl retrieve name --re
check 'deposit options' '--persistent ' fdbrokerctl deposit name --pers
check 'open --access values' 'read-only read-write ' fdbrokerctl open /dev/null --access read
check '--allow subjects' 'uid: user: ' fdbrokerctl deposit n f --allow u
check 'list options' '--json ' fdbrokerctl list --j
check 'nothing for --description' '' fdbrokerctl deposit n f --description x
check 'monitor is a command' 'monitor ' fdbrokerctl mon
check 'monitor options' '--json ' fdbrokerctl monitor 'camera/*' --j
check 'deposit --from-pid' '--from-pid ' fdbrokerctl deposit n --fr
# This shell's own pid is among the completions of its pid (other pids may
# share the prefix, and on a busy machine the highest pid may be gone by
# the time the completion lists /proc, so neither is compared exactly).
COMP_WORDS=(fdbrokerctl deposit n --from-pid "$$"); COMP_CWORD=4; COMPREPLY=()
_fdbrokerctl
n=$((n + 1))
if printf '%s\n' "${COMPREPLY[@]}" | grep -qx "$$"; then
    echo "ok $n - --from-pid completes pids"
else
    echo "not ok $n - --from-pid completes pids"; echo "#  $$ not in: ${COMPREPLY[*]}"
    failed=1
fi
check '--socket is a global option' '--socket ' fdbrokerctl --so
check '--socket after a command' '--socket ' fdbrokerctl cat --so
check 'nothing for --fd' '' fdbrokerctl deposit n --from-pid 1 --fd 3
echo "1..$n"
exit $failed
