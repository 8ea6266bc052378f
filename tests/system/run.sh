#!/bin/bash
# tests/system/run.sh: fdbroker on real, booted Debian systems.
#
#   sudo tests/system/run.sh [TARGET...]
#
# TARGETs (default: all three):
#   bookworm             Debian 12, systemd 252, dbus-daemon as the system bus
#   trixie               Debian 13, systemd 257, dbus-daemon as the system bus
#   trixie-dbus-broker   Debian 13 with dbus-broker installed: it is the
#                        system bus after boot
#
# For each target it
#   1. debootstraps the suite (minbase + systemd, dbus, polkitd, python3-gi),
#      cached under $FDBROKER_SYSTEM_CACHE (/var/cache/fdbroker-system),
#      keyed by suite and package list; a second cache adds the build
#      dependencies of debian/control;
#   2. builds the packages inside a copy of the build root (non-booted
#      systemd-nspawn, dpkg-buildpackage -us -uc -b), once per suite, from
#      the files git tracks in this checkout; checks them with lintian, and
#      builds once more with -Dwerror=true (warning-free with that suite's
#      gcc and g-ir-scanner);
#   3. boots a fresh copy of the runtime root under systemd-nspawn with
#      systemd as PID 1, installs the packages there (apt-get install of the
#      .debs, nothing else), and runs tests/system/checks.py inside against
#      the real system bus, polkitd and journald.
#
# Results: one line per check in $FDBROKER_SYSTEM_OUT/testlog.json
# (build-system/ in this checkout), in the shape of meson's testlog.json, so
# .ci/run counts them; a summary per target (passed, failed, time) on
# stdout. Exits 0 when everything passed, 77 when this machine cannot run
# it (printed why), 1 otherwise.
#
# Needs root, debootstrap, systemd-container (systemd-nspawn), network to the
# Debian mirror ($FDBROKER_SYSTEM_MIRROR, default http://deb.debian.org/debian;
# apt's proxy setting on this host, if any, is passed on).
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=${FDBROKER_SYSTEM_OUT:-$src/build-system}
cache=${FDBROKER_SYSTEM_CACHE:-/var/cache/fdbroker-system}
work=${FDBROKER_SYSTEM_WORK:-/var/tmp/fdbroker-system}
mirror=${FDBROKER_SYSTEM_MIRROR:-http://deb.debian.org/debian}
testlog=$out/testlog.json

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(bookworm trixie trixie-dbus-broker)

# Bump when the way roots are made changes: old caches are then rebuilt.
ROOT_RECIPE=1
BASE_PACKAGES="systemd,systemd-sysv,dbus,libpam-systemd,polkitd,passwd,procps,util-linux,python3,python3-gi,gir1.2-glib-2.0"
BUILD_EXTRA="build-essential fakeroot dpkg-dev"

mkdir -p "$out"
: > "$testlog"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[system %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# One meson-like testlog line.
record() { # NAME RESULT DURATION
    /usr/bin/python3 -c 'import json, sys
print(json.dumps({"name": sys.argv[1], "result": sys.argv[2], "duration": float(sys.argv[3]),
                  "suite": ["system"], "is_parallel": False}))' "$1" "$2" "$3" >> "$testlog"
}

skip_all() {
    echo "SKIP: tests/system: $*"
    for t in "${targets[@]}"; do record "system/$t" SKIP 0; done
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (debootstrap, systemd-nspawn)"
command -v debootstrap >/dev/null || skip_all "debootstrap not installed (apt-get install debootstrap)"
command -v systemd-nspawn >/dev/null || skip_all "systemd-nspawn not installed (apt-get install systemd-container)"
command -v git >/dev/null || skip_all "git not installed"
[ -e /sys/fs/cgroup/cgroup.controllers ] || [ -d /sys/fs/cgroup/systemd ] ||
    skip_all "no cgroup file system: systemd-nspawn --boot cannot run here"

proxy=$(apt-config shell P Acquire::http::Proxy 2>/dev/null | sed -n "s/^P='\(.*\)'$/\1/p")
if [ -n "$proxy" ]; then
    export http_proxy=$proxy
    say "using apt's proxy $proxy"
fi

mkdir -p "$cache" "$work"
# Packages are built once per run and suite, never taken from an earlier run.
rm -rf "$work"/debs-* "$work"/build-* "$work"/run-*
nspawn() { # ROOT ARGS... : a non-booted container, like a chroot with apt
    local root=$1
    shift
    systemd-nspawn -q -D "$root" --register=no --keep-unit --as-pid2 \
        --setenv=DEBIAN_FRONTEND=noninteractive ${proxy:+--setenv=http_proxy=$proxy} "$@"
}

# The runtime root of SUITE: prints its path. Cached.
runtime_root() {
    local suite=$1 key root t0
    key=$(printf '%s\n' "$ROOT_RECIPE" "$suite" "$BASE_PACKAGES" "$mirror" | sha256sum | cut -c1-12)
    root=$cache/$suite-runtime-$key
    if [ ! -e "$root/.fdbroker-ready" ]; then
        t0=$(now)
        say "debootstrap $suite (runtime) into $root" >&2
        rm -rf "$root.tmp" "$cache/$suite-runtime-"*
        if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$suite" "$root.tmp" "$mirror" \
                > "$work/debootstrap-$suite.log" 2>&1; then
            tail -20 "$work/debootstrap-$suite.log" >&2
            return 1
        fi
        # dbus-broker is installed only in the dbus-broker run: fetch it now.
        nspawn "$root.tmp" apt-get install -y -q --download-only dbus-broker >> "$work/debootstrap-$suite.log" 2>&1 || true
        touch "$root.tmp/.fdbroker-ready"
        mv "$root.tmp" "$root"
        say "debootstrap $suite (runtime): $(since "$t0") s" >&2
    else
        say "debootstrap $suite (runtime): cached, $root" >&2
    fi
    echo "$root"
}

# The build root of SUITE: the runtime root plus debian/control's
# Build-Depends. Cached, keyed by those too.
build_root() {
    local suite=$1 runtime=$2 key root t0 bdeps
    bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$src/debian/control")
    key=$(printf '%s\n' "$runtime" "$bdeps" "$BUILD_EXTRA" | sha256sum | cut -c1-12)
    root=$cache/$suite-build-$key
    if [ ! -e "$root/.fdbroker-ready" ]; then
        t0=$(now)
        say "build root $suite: $runtime + build dependencies" >&2
        rm -rf "$root.tmp" "$cache/$suite-build-"*
        cp -a "$runtime" "$root.tmp" || return 1
        rm -f "$root.tmp/.fdbroker-ready"
        mkdir -p "$root.tmp/root/deps/debian"
        cp "$src/debian/control" "$root.tmp/root/deps/debian/"
        if ! nspawn "$root.tmp" sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $BUILD_EXTRA && apt-get build-dep -y -q --no-install-recommends /root/deps" \
                > "$work/build-root-$suite.log" 2>&1; then
            tail -20 "$work/build-root-$suite.log" >&2
            return 1
        fi
        touch "$root.tmp/.fdbroker-ready"
        mv "$root.tmp" "$root"
        say "build root $suite: $(since "$t0") s" >&2
    else
        say "build root $suite: cached, $root" >&2
    fi
    echo "$root"
}

# Builds the packages for SUITE into $work/debs-SUITE (once per run).
build_debs() {
    local suite=$1 broot=$2 copy=$work/build-$suite t0 t1
    [ -e "$work/debs-$suite/.done" ] && return 0
    t0=$(now)
    rm -rf "$copy" "$work/debs-$suite"
    cp -a "$broot" "$copy" || return 1
    mkdir -p "$copy/root/fdbroker"
    git -C "$src" ls-files -z | (cd "$src" && tar --null -T - -cf -) | tar -C "$copy/root/fdbroker" -xf - || return 1
    if ! nspawn "$copy" sh -c 'cd /root/fdbroker && dpkg-buildpackage -us -uc -b' \
            > "$work/build-$suite.log" 2>&1; then
        tail -30 "$work/build-$suite.log"
        return 1
    fi
    mkdir -p "$work/debs-$suite"
    cp "$copy"/root/*.deb "$work/debs-$suite/" || return 1
    # And warning-free with this suite's compiler and g-ir-scanner, as CI
    # builds (-Dwerror=true makes both fatal).
    t1=$(now)
    if nspawn "$copy" sh -c 'cd /root/fdbroker && meson setup /root/werror -Dwerror=true && meson compile -C /root/werror' \
            > "$work/werror-$suite.log" 2>&1; then
        record "system/$suite/build -Dwerror=true" OK "$(since "$t1")"
        say "meson -Dwerror=true build in $suite: clean, $(since "$t1") s"
    else
        tail -30 "$work/werror-$suite.log"
        record "system/$suite/build -Dwerror=true" FAIL "$(since "$t1")"
        say "meson -Dwerror=true build in $suite: FAILED"
    fi
    touch "$work/debs-$suite/.done"
    rm -rf "$copy"
    say "dpkg-buildpackage in $suite: $(since "$t0") s ($(ls "$work/debs-$suite" | grep -c '\.deb$') packages)"
}

# lintian (this host's) on the packages built for SUITE: errors and
# warnings fail; each override in debian/*.lintian-overrides says why.
lint_debs() {
    local suite=$1 t0 rc=0
    t0=$(now)
    if ! command -v lintian >/dev/null; then
        echo "SKIP: lintian not installed (apt-get install lintian)"
        record "system/$suite/lintian" SKIP 0
        return 0
    fi
    lintian --fail-on error,warning "$work/debs-$suite"/*.deb 2>&1 | grep -v 'running with root privileges' |
        sed "s/^/[lintian $suite] /"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        record "system/$suite/lintian" OK "$(since "$t0")"
        say "lintian $suite: clean, $(since "$t0") s"
    else
        record "system/$suite/lintian" FAIL "$(since "$t0")"
        say "lintian $suite: FAILED (exit $rc)"
    fi
    return 0
}

# The container's PID 1 as the host sees it: a descendant of systemd-nspawn
# (pid $1) that is pid 1 in its own pid namespace and runs systemd.
container_init() {
    local p kids=$1 next
    for _ in 1 2 3; do
        next=
        for p in $kids; do
            if awk '/^NSpid:/ { exit !(NF == 3 && $3 == 1) }' "/proc/$p/status" 2>/dev/null &&
               case $(readlink "/proc/$p/exe") in */systemd) true ;; *) false ;; esac; then
                echo "$p"
                return 0
            fi
            next="$next $(ps -o pid= --ppid "$p" 2>/dev/null)"
        done
        kids=$next
    done
    return 1
}

# Boots a fresh copy of the runtime root and runs the checks. Prints TAP
# to $work/checks-TARGET.tap.
boot_and_check() {
    local target=$1 suite=$2 bus=$3 runtime=$4 run=$work/run-$target t0 pid init state rc=0
    t0=$(now)
    rm -rf "$run"
    cp -a "$runtime" "$run" || return 1
    mkdir -p "$run/root/debs"
    cp "$work/debs-$suite"/*.deb "$run/root/debs/"
    # Where every user may run it (the checks act as alice, bob, carol).
    install -D -m 0755 "$here/checks.py" "$run/usr/local/lib/fdbroker-system-test/checks.py"
    if [ "$bus" = dbus-broker ]; then
        # As an admin would: install it, and after the next boot it is the bus.
        nspawn "$run" apt-get install -y -q --no-download dbus-broker > "$work/dbus-broker-$target.log" 2>&1 ||
            nspawn "$run" sh -c 'apt-get update -q && apt-get install -y -q dbus-broker' >> "$work/dbus-broker-$target.log" 2>&1 ||
            { tail "$work/dbus-broker-$target.log"; return 1; }
    fi
    say "$target: fresh root ready in $(since "$t0") s"

    t0=$(now)
    systemd-nspawn -q -D "$run" --boot --register=no --keep-unit --console=pipe \
        --machine="fdb-$target" > "$work/boot-$target.log" 2>&1 &
    pid=$!
    init=
    for _ in $(seq 300); do
        init=$(container_init "$pid")
        [ -n "$init" ] && nsenter -t "$init" -a true 2>/dev/null && break
        init=
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$init" ]; then
        echo "$target: systemd-nspawn --boot did not start:"
        tail -20 "$work/boot-$target.log"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    inside() { nsenter -t "$init" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
    # Until the manager answers at all, then until it is up (bounded).
    for _ in $(seq 300); do
        state=$(inside systemctl is-system-running 2>&1) && break
        case $state in *"connect to bus"*|*"No such file"*|*offline*|"") sleep 0.2 ;; *) break ;; esac
    done
    state=$(timeout 180 nsenter -t "$init" -a systemctl is-system-running --wait 2>&1)
    say "$target: booted ($state) in $(since "$t0") s"
    if [ "$state" != running ]; then
        inside systemctl --failed --no-legend --plain | sed "s/^/[$target] failed unit: /"
    fi
    inside sh -c 'echo "system bus: $(readlink /proc/$(systemctl show -P MainPID dbus.service)/exe)"; systemctl --version | head -1' | sed "s/^/[$target] /"

    t0=$(now)
    FDB_BUS=$bus
    inside env FDBROKER_SYSTEM_BUS="$bus" ${FDBROKER_SYSTEM_ONLY:+FDBROKER_SYSTEM_ONLY="$FDBROKER_SYSTEM_ONLY"} \
        /usr/bin/python3 /usr/local/lib/fdbroker-system-test/checks.py /root/debs > "$work/checks-$target.tap" 2>&1 || rc=$?
    sed "s/^/[$target] /" "$work/checks-$target.tap"
    say "$target: checks took $(since "$t0") s"

    inside systemctl poweroff --no-block >/dev/null 2>&1 || kill "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; echo "$target: had to kill systemd-nspawn"; }
    wait "$pid" 2>/dev/null
    [ -n "${FDBROKER_SYSTEM_KEEP:-}" ] || rm -rf "$run"
    return 0
}

# TAP of one target into testlog lines; prints "passed failed".
tap_to_testlog() { # TARGET TAPFILE
    /usr/bin/python3 - "$1" "$2" "$testlog" <<'EOF'
import json, re, sys
target, tap, testlog = sys.argv[1:]
passed = failed = skipped = 0
seen = set()
planned = None
with open(tap) as f, open(testlog, 'a') as log:
    for line in f:
        m = re.match(r'^1\.\.(\d+)', line)
        if m:
            planned = int(m.group(1))
        m = re.match(r'^(ok|not ok) (\d+) - (.*?)(?: # (SKIP.*|time=([0-9.]+)s))?$', line.rstrip('\n'))
        if not m:
            continue
        seen.add(int(m.group(2)))
        if m.group(4) and m.group(4).startswith('SKIP'):
            result = 'SKIP'; skipped += 1
        elif m.group(1) == 'ok':
            result = 'OK'; passed += 1
        else:
            result = 'FAIL'; failed += 1
        log.write(json.dumps({'name': 'system/%s/%s' % (target, m.group(3)), 'result': result,
                              'duration': float(m.group(5) or 0), 'suite': ['system'],
                              'is_parallel': False}) + '\n')
    # A check that never reported (the run died) is a failure.
    missing = (planned or 1) - len(seen)
    for i in range(max(missing, 0)):
        log.write(json.dumps({'name': 'system/%s/unreported-%d' % (target, i), 'result': 'ERROR',
                              'duration': 0, 'suite': ['system']}) + '\n')
        failed += 1
print(passed, failed, skipped)
EOF
}

total_failed=0
summary=()
declare -A roots=() broots=()
for target in "${targets[@]}"; do
    case $target in
        bookworm) suite=bookworm bus=dbus-daemon ;;
        trixie) suite=trixie bus=dbus-daemon ;;
        trixie-dbus-broker) suite=trixie bus=dbus-broker ;;
        *) echo "tests/system/run.sh: unknown target '$target'"; exit 2 ;;
    esac
    t_target=$(now)
    say "==== $target: Debian $suite, $bus as the system bus ===="
    ok=1
    if [ -z "${roots[$suite]:-}" ]; then
        t0=$(now)
        roots[$suite]=$(runtime_root "$suite") && broots[$suite]=$(build_root "$suite" "${roots[$suite]}") || ok=0
        [ $ok -eq 1 ] || roots[$suite]=
    fi
    if [ $ok -eq 1 ]; then
        t0=$(now)
        if [ ! -e "$work/debs-$suite/.done" ]; then
            if build_debs "$suite" "${broots[$suite]}"; then
                lint_debs "$suite"
            else
                ok=0
            fi
        fi
    fi
    [ $ok -eq 1 ] && { boot_and_check "$target" "$suite" "$bus" "${roots[$suite]}" || ok=0; }
    if [ $ok -eq 1 ]; then
        record "system/$target/setup (debootstrap, build, boot)" OK "$(since "$t_target")"
        read -r p f s <<<"$(tap_to_testlog "$target" "$work/checks-$target.tap")"
        p=$((p + 1))
    else
        record "system/$target/setup (debootstrap, build, boot)" FAIL "$(since "$t_target")"
        p=0 f=1 s=0
    fi
    total_failed=$((total_failed + f))
    summary+=("system $target (Debian $suite, $bus): $p passed, $f failed, $s skipped, $(since "$t_target") s")
    say "${summary[-1]}"
done

echo
printf '%s\n' "${summary[@]}"
[ "$total_failed" -eq 0 ] || exit 1
exit 0
