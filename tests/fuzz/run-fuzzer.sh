#!/bin/sh
# Build the policy parser's libFuzzer target with clang and run it.
#
#   tests/fuzz/run-fuzzer.sh [SECONDS]     (default 60)
#
# Configures ./build-fuzz (CC=clang, -Dfuzz=true) if needed, builds only
# the fuzzer, and runs it for SECONDS (-max_total_time) on a working corpus
# build-fuzz/fuzz-corpus/policy seeded from tests/fuzz/corpus/policy (the
# seed corpus in the tree is never written to). Prints the number of
# executions. A crash leaves its input in build-fuzz/fuzz-artifacts/ and
# makes the script exit non-zero: that is a parser bug, reproduce it with
#   build-fuzz/tests/fuzz/fuzz-policy build-fuzz/fuzz-artifacts/crash-...
# Needs clang and libclang-rt-dev (the libFuzzer and ASan runtimes).
set -eu

cd "$(dirname "$0")/../.."

secs=${1:-60}
case $secs in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

if ! command -v clang >/dev/null 2>&1; then
    echo "run-fuzzer: clang not found (apt-get install clang libclang-rt-dev)" >&2
    exit 1
fi

if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true >build-fuzz.setup.log 2>&1 || {
        cat build-fuzz.setup.log >&2; rm -f build-fuzz.setup.log; exit 1; }
    rm -f build-fuzz.setup.log
else
    meson configure build-fuzz -Dfuzz=true >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz-policy

corpus=build-fuzz/fuzz-corpus/policy
artifacts=build-fuzz/fuzz-artifacts/
mkdir -p "$corpus" "$artifacts"
cp tests/fuzz/corpus/policy/* "$corpus/"

log=build-fuzz/fuzz-policy.log
status=0
build-fuzz/tests/fuzz/fuzz-policy \
    -max_total_time="$secs" \
    -max_len=4096 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -dict=tests/fuzz/policy.dict \
    -artifact_prefix="$artifacts" \
    "$corpus" >"$log" 2>&1 || status=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
grep -E '^(Done [0-9]+ runs|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" || true
echo "run-fuzzer: ${execs:-unknown} executions in ${secs} s, exit status $status (log: $log)"
if [ "$status" -ne 0 ]; then
    echo "run-fuzzer: the fuzzer stopped on a failure; see $log and $artifacts" >&2
fi
exit "$status"
