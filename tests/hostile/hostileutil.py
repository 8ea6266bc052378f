# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers several hostile test files share (fixtures are in conftest.py)."""

import os
import statistics
import time

import pytest

import harness
from harness import GLib

# A rule letting everyone OpenPath anything: the attacks that open through
# OpenPath need one (BUS_OPTIONS = {'policy_files': {...}}).
OPEN_PATH_RULE = '''[Rule hostile-open-path]
Action=open-path
Match=/**
Subject=everyone
Result=yes
'''


def fmt(lat):
    """Latencies in ms, for a diagnostic line (never compared with a limit)."""
    if not lat:
        return 'no answer'
    return 'median %.1f ms, max %.1f ms over %d calls' % (statistics.median(lat), max(lat), len(lat))


def timed(fn, *args, **kw):
    """(fn's result, how long it took in ms)."""
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, (time.monotonic() - t0) * 1000


def daemon_stats(bus, unique_name):
    """dbus-daemon's GetConnectionStats of a connection: what waits in the
    daemon for it (OutgoingMessages, OutgoingBytes, OutgoingFDs)."""
    return bus.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                              'org.freedesktop.DBus.Debug.Stats', 'GetConnectionStats',
                              GLib.Variant('(s)', (unique_name,)), None, 0, 10000, None).unpack()[0]


def variant():
    """The meson variant this run is: which bus, transport, service user."""
    parts = [os.environ.get('FDBROKER_TEST_BUS') or 'dbus-daemon', harness.transport()]
    if os.environ.get('FDBROKER_TEST_SERVICE_USER'):
        parts.append('service user ' + os.environ['FDBROKER_TEST_SERVICE_USER'])
    return ', '.join(parts)


# Marks for the files that choose their buses themselves (slow_reader,
# stalled_watcher): decided before any bus starts.

def on_bus_transport(what):
    """The test runs only with the clients on the bus."""
    return pytest.mark.skipif(harness.transport() != 'bus',
                              reason='%s over the bus: this run\'s clients use %s (its direct test covers it)'
                              % (what, harness.transport()))


def on_direct_socket(what):
    """The test runs only with FDBROKER_TEST_TRANSPORT=direct-socket."""
    return pytest.mark.skipif(harness.transport() != 'direct-socket',
                              reason='%s on direct connections runs with FDBROKER_TEST_TRANSPORT=direct-socket '
                              '(this run: %s)' % (what, variant()))


def both_buses_in_one_run(file):
    """The test chooses dbus-daemon or dbus-broker itself: the dbus-broker
    variant (FDBROKER_TEST_BUS) has nothing to add."""
    return pytest.mark.skipif(bool(os.environ.get('FDBROKER_TEST_BUS')),
                              reason='%s runs both dbus-daemon and dbus-broker already' % file)
