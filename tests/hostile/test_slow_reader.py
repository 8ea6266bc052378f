# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 2 of issue 9: starve everyone by not reading.

Bob, on a bare socket, sends 1000 Retrieve calls for an entry he may have
and never reads a reply. On dbus-daemon the fds waiting for him count
against the broker's own connection (64 in flight on the system bus); past
that the daemon stops reading from the broker and every other caller times
out. Carol, meanwhile, retrieves her own entry: she must be answered while
Bob is still connected and still not reading. Her latencies are printed,
not asserted. Runs on dbus-daemon and, where installed, on dbus-broker
(each a test of its own: the dbus-broker variant of this file skips).

With FDBROKER_TEST_TRANSPORT=direct-socket there is no bus daemon to stall:
bob floods direct connections to the broker instead, and carol (on a
direct connection too) must still be answered, the broker must not pile up
fds for him, and must hold none once he left."""

import json
import os
import pwd
import time

import pytest

import harness
from harness import E_QUOTA, memfd
from hostileutil import both_buses_in_one_run, daemon_stats, fmt, on_bus_transport, on_direct_socket

FLOOD = 1000
VICTIM_CALLS = 20
VICTIM_TIMEOUT_MS = 10000
PEER_UNREAD_FDS_MAX = 32  # service/peers.h
DIRECT_CONNECTIONS = 16   # MaxDirectConnectionsPerUser
DIRECT_FLOOD = 1500       # per connection: 24000 in all, past the harness's 20000 open files

bus_transport = on_bus_transport('slow readers')
both_buses = both_buses_in_one_run('hostile-slow_reader')
direct = on_direct_socket('the slow reader')


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


def before_the_attack(t, bus, users, kind):
    """sr/public for everyone (root's, on the bus), carol's own sr/carol,
    and carol's latencies before the attack. Returns carol's client."""
    root = bus.client(transport='bus')
    carol = bus.client(users['carol'])
    check_service_user(t, bus, kind)
    t.success(root.deposit('sr/public', memfd('everyone may have it'), allow=['everyone']),
              '[%s] root deposits sr/public for everyone' % kind)
    t.success(carol.deposit('sr/carol', memfd('carol\'s')), '[%s] carol deposits sr/carol' % kind)
    n, lat, _ = victim_round(carol, 'sr/carol', 5)
    t.diag('[%s] carol before the attack: %s' % (kind, fmt(lat)))
    return carol


def flood(t, bob, kind, count):
    f = bob.req(op='flood', name='sr/public', count=count)
    t.diag('[%s] bob (raw socket, reads nothing) sent %s of %d Retrieve calls in %.0f ms%s'
           % (kind, f.get('sent'), count, f.get('usec', 0) / 1000,
              ' (stopped: %s)' % f['stopped'] if 'stopped' in f else ''))
    time.sleep(0.5)  # let the broker work through them


def after_bob_left(t, bus, carol, kind):
    n, lat, failure = victim_round(carol, 'sr/carol', 5)
    t.ok(n == 5, '[%s] carol is still answered after bob left (%s)' % (kind, failure or fmt(lat)))
    t.eq(bus.service_pid(activate=False), bus.pid0, '[%s] the broker kept running' % kind)


@pytest.mark.parametrize('kind', ['dbus-daemon', 'dbus-broker'])
@bus_transport
@both_buses
def test_a_caller_that_never_reads_does_not_stop_others_being_answered(t, users, bus_on, raw, kind):
    bus = bus_on(kind)
    carol = before_the_attack(t, bus, users, kind)
    bob = raw(users['bob'], bus=bus)
    flood(t, bob, kind, FLOOD)
    n, lat, failure = victim_round(carol, 'sr/carol', VICTIM_CALLS)
    t.diag('[%s] carol during the attack: %s' % (kind, fmt(lat)))
    t.ok(n == VICTIM_CALLS, '[%s] carol is answered while bob floods without reading (%d of %d%s)'
         % (kind, n, VICTIM_CALLS, ', then ' + failure if failure else ''))
    t.ok(bob.alive(), '[%s] bob was still connected and still not reading meanwhile' % kind)
    got = bob.req(op='drain', seconds=2.0)
    t.diag('[%s] what waited for bob, in the bus and in his socket: %s' % (kind, json.dumps(got, sort_keys=True)))
    if kind == 'dbus-broker':
        # dbus-broker has no GetConnectionStats: the broker stops counting
        # there (dbus-broker charges queued fds to bob).
        t.diag('[dbus-broker] bob was sent %s fds; dbus-broker queues them on his account' % got.get('fds'))
    bob.close()
    after_bob_left(t, bus, carol, kind)


@bus_transport
@both_buses
def test_on_dbus_daemon_the_broker_stops_sending_fds_to_a_caller_that_does_not_read(t, users, bus_on, raw):
    kind = 'dbus-daemon'
    bus = bus_on(kind)
    carol = before_the_attack(t, bus, users, kind)
    bob = raw(users['bob'], bus=bus)
    flood(t, bob, kind, FLOOD)
    # What stalls dbus-daemon: fds that wait in it for bob.
    stats = daemon_stats(bus, bob.unique_name)
    t.diag('[dbus-daemon] waiting in the daemon for bob: %d messages, %d bytes, %d fds'
           % (stats.get('OutgoingMessages', -1), stats.get('OutgoingBytes', -1), stats.get('OutgoingFDs', -1)))
    t.ok(0 <= stats.get('OutgoingFDs', -1) <= PEER_UNREAD_FDS_MAX,
         '[dbus-daemon] at most %d fds wait in the daemon for bob (%s)'
         % (PEER_UNREAD_FDS_MAX, stats.get('OutgoingFDs')))
    t.ok(bob.alive(), '[%s] bob was still connected and still not reading meanwhile' % kind)
    got = bob.req(op='drain', seconds=2.0)
    t.diag('[%s] what waited for bob, in the daemon and in his socket: %s'
           % (kind, json.dumps(got, sort_keys=True)))
    t.ok(got.get('fds', 1 << 30) < FLOOD // 2,
         '[%s] bob could not make the broker send him an fd per call (%s of %d)' % (kind, got.get('fds'), FLOOD))
    t.ok(got.get('errors', {}).get(E_QUOTA, 0) > 0,
         '[%s] the rest of his calls were refused QuotaExceeded' % kind, got)
    bob.close()
    after_bob_left(t, bus, carol, kind)


def direct_flood(t, bus, users, raw):
    """Bob opens all the direct connections he may and floods each with
    Retrieve calls, reading nothing. Returns his connections."""
    nofile = bus.service_limits().get('Max open files', ('?', '?'))
    bobs = [raw(users['bob'], direct=True) for _ in range(DIRECT_CONNECTIONS)]
    sent = sum(b.req(op='flood', name='sr/public', count=DIRECT_FLOOD).get('sent', 0) for b in bobs)
    t.diag('[direct] bob (%d raw direct connections, reads nothing) sent %d Retrieve calls; the broker\'s '
           'open-file limit is %s' % (len(bobs), sent, nofile[0]))
    time.sleep(0.5)
    return bobs


# The same flood on direct connections (SPEC 5): no bus daemon holds
# anything; what bob does not read stays in flight in his sockets, and the
# kernel charges fds in flight to the sender's user. Past RLIMIT_NOFILE of
# them a broker without CAP_SYS_RESOURCE (user fdbroker) could send no fd to
# anyone (ETOOMANYREFS): bob opens all the direct connections he may and
# floods each with more Retrieve calls than that limit in all.

@direct
def test_a_direct_caller_that_never_reads_does_not_stop_others_being_answered(t, bus, users, raw):
    carol = before_the_attack(t, bus, users, 'direct')
    fds0 = bus.service_fd_count()
    bobs = direct_flood(t, bus, users, raw)
    t.diag('[direct] the broker holds %d fds (%d before the attack)' % (bus.service_fd_count(), fds0))
    n, lat, failure = victim_round(carol, 'sr/carol', VICTIM_CALLS)
    t.diag('[direct] carol during the attack: %s' % fmt(lat))
    t.ok(n == VICTIM_CALLS, '[direct] carol is answered while bob floods without reading (%d of %d%s)'
         % (n, VICTIM_CALLS, ', then ' + failure if failure else ''))
    t.ok(all(b.alive() for b in bobs), '[direct] bob was still connected and still not reading meanwhile')
    for b in bobs:
        b.close()
    after_bob_left(t, bus, carol, 'direct')


@direct
def test_the_broker_does_not_pile_up_fds_for_a_direct_caller_that_does_not_read(t, bus, users, raw):
    carol = before_the_attack(t, bus, users, 'direct')
    fds0 = bus.service_fd_count()
    bobs = direct_flood(t, bus, users, raw)
    t.diag('[direct] the broker holds %d fds (%d before the attack)' % (bus.service_fd_count(), fds0))
    t.ok(all(b.alive() for b in bobs), '[direct] bob was still connected and still not reading meanwhile')
    got = bobs[0].req(op='drain', seconds=2.0)
    t.diag('[direct] what waited for bob on one connection: %s' % json.dumps(got, sort_keys=True))
    t.ok(got.get('fds', 1 << 30) < DIRECT_FLOOD // 2,
         '[direct] bob could not make the broker send him an fd per call (%s of %d)'
         % (got.get('fds'), DIRECT_FLOOD))
    t.ok(got.get('errors', {}).get(E_QUOTA, 0) > 0,
         '[direct] the rest of his calls were refused QuotaExceeded', got)
    for b in bobs:
        b.close()
    t.ok(harness.poll_until(lambda: bus.service_fd_count() <= fds0, timeout=30),
         '[direct] once bob left the broker holds no more fds than before')
    after_bob_left(t, bus, carol, 'direct')
