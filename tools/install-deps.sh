#!/bin/sh
# Install what fdbroker needs to build, test and demo on Debian 12.
#
# Run as root. Idempotent: when every package is already installed it does
# not touch apt at all, so reruns take a fraction of a second. Quiet: it
# prints one line, or apt's output if apt fails.
set -eu

# What each package is for:
#   meson ninja-build pkg-config gcc libc6-dev   the build
#   libsystemd-dev                               sd-bus (the service)
#   libglib2.0-dev libglib2.0-bin                GIO and gdbus-codegen (the client), gdbus
#   gobject-introspection libgirepository1.0-dev the client's FdBroker-1.0 typelib
#   libdbus-1-dev                                the D-Bus DTDs the data tests validate against
#   dbus                                         dbus-daemon for the private test bus
#   dbus-user-session                            the user bus of the real systemd --user tests
#   python3-gi python3-dbusmock                  integration tests, demo (Debian's /usr/bin/python3)
#   libxml2-utils                                xmllint
#   systemd                                      systemd-analyze verify, busctl
#   passwd util-linux                            useradd, setpriv, unshare for tests as other users
#   man-db groff-base                            man and groff, to check the man pages
#   polkitd                                      policyconfig-1.dtd, to validate the polkit actions
#   clang libclang-rt-dev                        the fuzzers (libFuzzer and sanitizer runtimes)
#   s6 gnuplot-nox                               bench/: the s6-fdholder peer, and the plots
PACKAGES="
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
libdbus-1-dev
dbus
dbus-user-session
python3-gi
python3-dbusmock
libxml2-utils
systemd
passwd
util-linux
man-db
groff-base
polkitd
clang
libclang-rt-dev
s6
gnuplot-nox
"
# CI and tests only (issue 10; not needed for the demo):
#   dbus-broker                  the other bus implementation: once installed
#                                it is the default system and user bus of
#                                systemd (tests/systemd gives its launcher
#                                the journal socket it needs)
#   debootstrap systemd-container  tests/system: booted Debian 12 and 13
#   debhelper dpkg-dev fakeroot lintian  building and checking debian/
#   git                          tests/system copies the tracked files
PACKAGES="$PACKAGES
dbus-broker
debootstrap
systemd-container
debhelper
dpkg-dev
fakeroot
lintian
git
"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case $status in
        ii*) ;;
        *) missing="$missing $pkg" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-deps: all $(echo $PACKAGES | wc -w) packages already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run as root (sudo $0) to install them" >&2
    exit 1
fi

echo "install-deps: installing$missing"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >"$log" 2>&1 ||
   ! apt-get install -y -q --no-install-recommends $missing >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed" >&2
    exit 1
fi
echo "install-deps: done"
