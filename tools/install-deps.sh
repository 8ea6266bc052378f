#!/bin/sh
# Install what fdbroker needs on Debian 12.
#
#   tools/install-deps.sh          everything: build, demo, tests, fuzzing, benchmarks
#   tools/install-deps.sh --demo   only what tools/demo.sh needs (build and demo)
#
# Run as root. Idempotent: when every package is already installed it does
# not touch apt at all, so reruns take a fraction of a second. Quiet: it
# prints one line, or apt's output if apt fails. When another apt or dpkg
# (unattended-upgrades, often, just after boot) holds the lock, it says so
# once and waits for it, up to 10 minutes, then gives up saying why.
set -eu

# What the demo needs: the build and the demo's own steps. One package a
# line; what each is for:
#   meson ninja-build pkg-config gcc libc6-dev   the build
#   libsystemd-dev                               sd-bus (the service)
#   libglib2.0-dev libglib2.0-bin                GIO and gdbus-codegen (the client), gdbus
#   gobject-introspection libgirepository1.0-dev the client's FdBroker-1.0 typelib
#   dbus                                         dbus-daemon for the private bus
#   python3-gi                                   the demo and tests (Debian's /usr/bin/python3)
#   systemd                                      busctl (a demo step), systemd-analyze verify
#   passwd util-linux                            useradd, setpriv: acting as other users
DEMO_PACKAGES="
meson
ninja-build
pkg-config
gcc
libc6-dev
libsystemd-dev
libglib2.0-dev
libglib2.0-bin
gobject-introspection
libgirepository1.0-dev
dbus
python3-gi
systemd
passwd
util-linux
"

# What the tests, the fuzzers and the benchmarks need on top:
#   libdbus-1-dev                                the D-Bus DTDs the data tests validate against
#   dbus-user-session                            the user bus of the real systemd --user tests
#   python3-dbusmock                             a polkitd on the private bus
#   libxml2-utils                                xmllint
#   man-db groff-base                            man and groff, to check the man pages
#   polkitd                                      policyconfig-1.dtd, to validate the polkit actions
#   clang libclang-rt-dev                        the fuzzers (libFuzzer and sanitizer runtimes)
#   gjs                                          the GJS test of the FdBroker-1.0 typelib
#   s6 gnuplot-nox                               bench/: the s6-fdholder peer, and the plots
#   dbus-broker                                  tests on the other bus (FDBROKER_TEST_BUS=dbus-broker)
TEST_PACKAGES="
libdbus-1-dev
dbus-user-session
python3-dbusmock
libxml2-utils
man-db
groff-base
polkitd
clang
libclang-rt-dev
gjs
s6
gnuplot-nox
dbus-broker
"
# Also for CI and tests only (not needed for the demo):
#   debootstrap systemd-container  tests/system: booted Debian 12 and 13
#   debhelper dpkg-dev fakeroot lintian  building and checking debian/
#   git                          tests/system copies the tracked files
# (dbus-broker, above, becomes the default system and user bus of systemd
# once installed; tests/systemd gives its launcher the journal socket it needs.)
TEST_PACKAGES="$TEST_PACKAGES
debootstrap
systemd-container
debhelper
dpkg-dev
fakeroot
lintian
git
"
# python3-pytest: tests/integration runs its files with pytest (PyPI is not
# reachable here; Debian's package is the one the tests use).
TEST_PACKAGES="$TEST_PACKAGES
python3-pytest
"

# The locks apt and dpkg take, and how long to wait for them (seconds).
# Both may be set in the environment (the tests do).
APT_LOCKS=${FDB_APT_LOCKS:-"/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock"}
LOCK_TIMEOUT=${FDB_APT_LOCK_TIMEOUT:-600}

case "${1:-}" in
    --demo) PACKAGES=$DEMO_PACKAGES; what="the demo's" ;;
    "") PACKAGES="$DEMO_PACKAGES $TEST_PACKAGES"; what="all" ;;
    -h|--help)
        sed -n '2,11s/^# \{0,1\}//p' "$0"
        exit 0 ;;
    *)
        echo "install-deps: unknown option '$1'; use --demo, or nothing for everything" >&2
        exit 2 ;;
esac
# For tests: the package list to check instead of ours.
PACKAGES=${FDB_INSTALL_DEPS_PACKAGES:-$PACKAGES}

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case $status in
        ii*) ;;
        *) missing="$missing $pkg" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-deps: $what $(echo $PACKAGES | wc -w) packages already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run as root (sudo $0${1:+ $1}) to install them" >&2
    exit 1
fi

# Prints "PID NAME" of a process holding one of the apt/dpkg locks, or
# nothing. /proc/locks lists held POSIX locks with the holder's pid and the
# file's device:inode.
lock_holder() {
    for lock in $APT_LOCKS; do
        [ -e "$lock" ] || continue
        ino=$(stat -c %i "$lock" 2>/dev/null) || continue
        pid=$(awk -v ino="$ino" '{ n = split($6, f, ":"); if (f[n] == ino && $5 > 0) { print $5; exit } }' \
              /proc/locks 2>/dev/null)
        if [ -n "$pid" ] && [ "$pid" != "$$" ]; then
            name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "gone")
            echo "$pid $name"
            return 0
        fi
    done
    return 0
}

# Waits (bounded) until no other apt/dpkg holds a lock; says so once.
wait_for_apt() {
    waited=0
    said=""
    while holder=$(lock_holder) && [ -n "$holder" ]; do
        if [ -z "$said" ]; then
            echo "install-deps: waiting for another apt/dpkg (pid ${holder%% *}: ${holder#* }) to finish" \
                 "(up to $((LOCK_TIMEOUT / 60)) min $((LOCK_TIMEOUT % 60)) s)…"
            said=1
        fi
        if [ "$waited" -ge "$LOCK_TIMEOUT" ]; then
            echo "install-deps: another apt/dpkg (pid ${holder%% *}: ${holder#* }) still holds the package" \
                 "lock after ${LOCK_TIMEOUT} s; let it finish (or stop it) and run $0 again" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    return 0
}

wait_for_apt || exit 1

echo "install-deps: installing$missing"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# The lock may still be taken between our check and apt's: apt waits too.
apt_opts="-q -o DPkg::Lock::Timeout=$LOCK_TIMEOUT"
if ! apt-get $apt_opts update >"$log" 2>&1 ||
   ! apt-get $apt_opts install -y --no-install-recommends $missing >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed (its output is above)" >&2
    exit 1
fi
echo "install-deps: done"
