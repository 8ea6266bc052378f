#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 2 of issue 9: starve everyone by not reading.

Bob, on a bare socket, sends 1000 Retrieve calls for an entry he may have
and never reads a reply. On dbus-daemon the fds waiting for him count
against the broker's own connection (64 in flight on the system bus); past
that the daemon stops reading from the broker and every other caller times
out. Carol, meanwhile, retrieves her own entry: she must be answered while
Bob is still connected and still not reading. Her latencies are printed,
not asserted. Runs on dbus-daemon and, where installed, on dbus-broker.

With FDBROKER_TEST_TRANSPORT=direct-socket there is no bus daemon to stall:
bob floods a direct connection to the broker instead, and carol (on a
direct connection too) must still be answered, the broker must not pile up
fds for him, and must hold none once he left."""

import json
import os
import pwd
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import memfd  # noqa: E402
from harness import GLib  # noqa: E402
from rawbus import RawClient  # noqa: E402

FLOOD = 1000
VICTIM_CALLS = 20
VICTIM_TIMEOUT_MS = 10000
PEER_UNREAD_FDS_MAX = 32  # service/peers.h
DIRECT_CONNECTIONS = 16   # MaxDirectConnectionsPerUser
DIRECT_FLOOD = 1500       # per connection: 24000 in all, past the harness's 20000 open files


def victim_round(client, name, n):
    """n Retrieve calls in a row; stops at the first failure. Returns
    (answered, latencies in ms, first failure)."""
    lat = []
    for _ in range(n):
        t0 = time.monotonic()
        r = client.retrieve(name, timeout_ms=VICTIM_TIMEOUT_MS)
        ms = (time.monotonic() - t0) * 1000
        if not r.get('ok'):
            return len(lat), lat, '%s after %.0f ms' % (r.get('error'), ms)
        lat.append(ms)
    return len(lat), lat, None


def fmt(lat):
    if not lat:
        return 'no answer'
    return 'median %.1f ms, max %.1f ms over %d calls' % (statistics.median(lat), max(lat), len(lat))


def check_service_user(t, bus, kind):
    """Who the broker runs as; with FDBROKER_TEST_SERVICE_USER, asserted to
    be that user, as under fdbroker.service (not root)."""
    with open('/proc/%d/status' % bus.service_pid()) as f:
        status = dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)
    uid = int(status['Uid'].split()[1])
    t.diag('[%s] the broker runs as uid %d, CapEff %s' % (kind, uid, status.get('CapEff')))
    want = os.environ.get('FDBROKER_TEST_SERVICE_USER')
    if want:
        t.eq(uid, pwd.getpwnam(want).pw_uid, '[%s] the broker runs as %s, not root' % (kind, want))


def attack(t, kind, users):
    bus = harness.PrivateBus(harness.service_binary(), harness.source_dir())
    bus.bus_kind = kind
    t.bus = bus
    try:
        bus.start()
    except harness.Skip as e:
        t.skip('slow reader on %s' % kind, str(e))
        t.bus = None
        return
    root = bus.client()
    carol = bus.client(users['carol'])
    pid0 = bus.service_pid()
    check_service_user(t, bus, kind)
    t.success(root.deposit('sr/public', memfd('everyone may have it'), allow=['everyone']),
              '[%s] root deposits sr/public for everyone' % kind)
    t.success(carol.deposit('sr/carol', memfd('carol\'s')), '[%s] carol deposits sr/carol' % kind)
    n, lat, _ = victim_round(carol, 'sr/carol', 5)
    t.diag('[%s] carol before the attack: %s' % (kind, fmt(lat)))

    bob = RawClient(bus, users['bob'])
    try:
        flood = bob.req(op='flood', name='sr/public', count=FLOOD)
        t.diag('[%s] bob (raw socket, reads nothing) sent %s of %d Retrieve calls in %.0f ms%s'
               % (kind, flood.get('sent'), FLOOD, flood.get('usec', 0) / 1000,
                  ' (stopped: %s)' % flood['stopped'] if 'stopped' in flood else ''))
        time.sleep(0.5)  # let the broker work through them

        n, lat, failure = victim_round(carol, 'sr/carol', VICTIM_CALLS)
        t.diag('[%s] carol during the attack: %s' % (kind, fmt(lat)))
        t.ok(n == VICTIM_CALLS, '[%s] carol is answered while bob floods without reading (%d of %d%s)'
             % (kind, n, VICTIM_CALLS, ', then ' + failure if failure else ''))
        t.ok(bob.alive(), '[%s] bob was still connected and still not reading meanwhile' % kind)

        if kind == 'dbus-daemon':
            # What stalls dbus-daemon: fds that wait in it for bob.
            stats = bus.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                       'org.freedesktop.DBus.Debug.Stats', 'GetConnectionStats',
                                       GLib.Variant('(s)', (bob.unique_name,)), None, 0, 10000, None).unpack()[0]
            t.diag('[dbus-daemon] waiting in the daemon for bob: %d messages, %d bytes, %d fds'
                   % (stats.get('OutgoingMessages', -1), stats.get('OutgoingBytes', -1), stats.get('OutgoingFDs', -1)))
            t.ok(0 <= stats.get('OutgoingFDs', -1) <= PEER_UNREAD_FDS_MAX,
                 '[dbus-daemon] at most %d fds wait in the daemon for bob (%s)'
                 % (PEER_UNREAD_FDS_MAX, stats.get('OutgoingFDs')))

        got = bob.req(op='drain', seconds=2.0)
        t.diag('[%s] what waited for bob, in the daemon and in his socket: %s' % (kind, json.dumps(got, sort_keys=True)))
        if kind == 'dbus-daemon':
            t.ok(got.get('fds', 1 << 30) < FLOOD // 2,
                 '[%s] bob could not make the broker send him an fd per call (%s of %d)'
                 % (kind, got.get('fds'), FLOOD))
        else:
            # dbus-broker has no GetConnectionStats: the broker stops
            # counting there (dbus-broker charges queued fds to bob).
            t.diag('[dbus-broker] bob was sent %s fds; dbus-broker queues them on his account' % got.get('fds'))
        if kind == 'dbus-daemon':
            t.ok(got.get('errors', {}).get(harness.E_QUOTA, 0) > 0,
                 '[%s] the rest of his calls were refused QuotaExceeded' % kind, got)
    finally:
        bob.close()

    n, lat, failure = victim_round(carol, 'sr/carol', 5)
    t.ok(n == 5, '[%s] carol is still answered after bob left (%s)' % (kind, failure or fmt(lat)))
    t.eq(bus.service_pid(activate=False), pid0, '[%s] the broker kept running' % kind)
    bus.stop(cleanup=False)
    if t.failed:
        t.print_logs()
    bus.cleanup()
    t.bus = None


def attack_direct(t, users):
    """The same flood on direct connections (SPEC 5): no bus daemon holds
    anything; what bob does not read stays in flight in his sockets, and the
    kernel charges fds in flight to the sender's user. Past RLIMIT_NOFILE of
    them a broker without CAP_SYS_RESOURCE (user fdbroker) could send no fd
    to anyone (ETOOMANYREFS): bob opens all the direct connections he may
    and floods each with more Retrieve calls than that limit in all."""
    bus, _ = harness.setup(t, need_users=True)
    root = bus.client(transport='bus')
    carol = bus.client(users['carol'])
    pid0 = bus.service_pid()
    check_service_user(t, bus, 'direct')
    nofile = bus.service_limits().get('Max open files', ('?', '?'))
    t.success(root.deposit('sr/public', memfd('everyone may have it'), allow=['everyone']),
              '[direct] root deposits sr/public for everyone')
    t.success(carol.deposit('sr/carol', memfd('carol\'s')), '[direct] carol deposits sr/carol')
    n, lat, _ = victim_round(carol, 'sr/carol', 5)
    t.diag('[direct] carol before the attack: %s' % fmt(lat))
    fds0 = bus.service_fd_count()

    bobs = []
    try:
        for _ in range(DIRECT_CONNECTIONS):
            bobs.append(RawClient(bus, users['bob'], direct=True))
        sent = 0
        for bob in bobs:
            sent += bob.req(op='flood', name='sr/public', count=DIRECT_FLOOD).get('sent', 0)
        t.diag('[direct] bob (%d raw direct connections, reads nothing) sent %d Retrieve calls; the broker\'s '
               'open-file limit is %s' % (len(bobs), sent, nofile[0]))
        time.sleep(0.5)
        fds1 = bus.service_fd_count()
        t.diag('[direct] the broker holds %d fds (%d before the attack)' % (fds1, fds0))
        n, lat, failure = victim_round(carol, 'sr/carol', VICTIM_CALLS)
        t.diag('[direct] carol during the attack: %s' % fmt(lat))
        t.ok(n == VICTIM_CALLS, '[direct] carol is answered while bob floods without reading (%d of %d%s)'
             % (n, VICTIM_CALLS, ', then ' + failure if failure else ''))
        t.ok(all(b.alive() for b in bobs), '[direct] bob was still connected and still not reading meanwhile')
        got = bobs[0].req(op='drain', seconds=2.0)
        t.diag('[direct] what waited for bob on one connection: %s' % json.dumps(got, sort_keys=True))
        t.ok(got.get('fds', 1 << 30) < DIRECT_FLOOD // 2,
             '[direct] bob could not make the broker send him an fd per call (%s of %d)'
             % (got.get('fds'), DIRECT_FLOOD))
        t.ok(got.get('errors', {}).get(harness.E_QUOTA, 0) > 0,
             '[direct] the rest of his calls were refused QuotaExceeded', got)
    finally:
        for bob in bobs:
            bob.close()
    n, lat, failure = victim_round(carol, 'sr/carol', 5)
    t.ok(n == 5, '[direct] carol is still answered after bob left (%s)' % (failure or fmt(lat)))
    t.ok(harness.poll_until(lambda: bus.service_fd_count() <= fds0, timeout=30),
         '[direct] once bob left the broker holds no more fds than before')
    t.eq(bus.service_pid(activate=False), pid0, '[direct] the broker kept running')


def body(t):
    users = harness.ensure_test_users()
    if harness.transport() != 'bus':
        if harness.transport() != 'direct-socket':
            raise harness.Skip('slow readers over %s: see the direct-socket run' % harness.transport())
        attack_direct(t, users)
        return
    if os.environ.get('FDBROKER_TEST_BUS'):
        harness.skip_all('hostile-slow_reader runs both dbus-daemon and dbus-broker already')
    for kind in ('dbus-daemon', 'dbus-broker'):
        attack(t, kind, users)


if __name__ == '__main__':
    harness.main(body)
