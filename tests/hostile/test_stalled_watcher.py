# SPDX-License-Identifier: LGPL-2.1-or-later
"""A watcher that stops reading must not stall the broker.

Bob, on a bare socket, calls Watch(['**']) and never reads again. Alice
deposits and removes an entry everyone may see, FLOOD_CYCLES times (two
signals per cycle for every watcher). On dbus-daemon the signals waiting in
the daemon for bob count against the broker's own connection; past the
daemon's limit it would stop reading from the broker and stall everyone.
The broker looks (GetConnectionStats) every 256 signals and ends bob's
watch once more than 4096 signals or 2 MiB wait for him (service/watch.h).

Asserted: the broker logged that it ended bob's watch; after that, a new
entry adds nothing to what waits for bob in the daemon (his watch is gone);
far fewer signals wait for him than were generated; carol's List was
answered throughout the flood, while bob was connected and not reading
(latencies printed, not asserted); dave, carol's other connection, watching
'**' and reading, heard every signal and kept his watch.

On dbus-broker (no statistics; it charges what waits for bob to bob) the
broker does not look: carol and the reading watcher must still be served.
With FDBROKER_TEST_TRANSPORT=direct-socket bob watches on a direct
connection: what his socket does not take waits in the broker's sd-bus
write queue, and past 4096 messages there his watch ends likewise.

Each is a test of its own: dbus-daemon and dbus-broker in the plain run
(the dbus-broker variant of this file skips), the broker as user fdbroker
on dbus-daemon in the service-user run, direct in the direct-socket run."""

import os
import threading
import time

import pytest

from harness import memfd
from hostileutil import both_buses_in_one_run, daemon_stats, fmt, on_bus_transport, on_direct_socket

FLOOD_CYCLES = 4000        # 8000 signals per watcher of '**'
# A direct connection's socket takes far more before anything waits in the
# broker: sd-bus asks for an 8 MiB send buffer (SO_SNDBUFFORCE as root, up
# to net.core.wmem_max otherwise), and the kernel charges each signal
# about a kilobyte of it.
FLOOD_CYCLES_DIRECT = 16000
WATCH_QUEUED_MAX = 4096    # service/watch.h
WATCH_ASK_MARK = 256       # service/watch.h
LIST_TIMEOUT_MS = 10000

SERVICE_USER = os.environ.get('FDBROKER_TEST_SERVICE_USER')


def flood(alice, n, result):
    """alice deposits and removes an entry everyone may see, n times."""
    done = 0
    t0 = time.monotonic()
    try:
        for i in range(n):
            name = 'sw/flood-%d' % i
            r = alice.deposit(name, memfd('x'), allow=['everyone'])
            if not r.get('ok'):
                result['failure'] = 'Deposit %s: %r' % (name, r)
                break
            r = alice.remove(name)
            if not r.get('ok'):
                result['failure'] = 'Remove %s: %r' % (name, r)
                break
            done += 1
    finally:
        result['cycles'] = done
        result['seconds'] = time.monotonic() - t0


def attack(t, bus, users, raw, kind, direct):
    cycles = FLOOD_CYCLES_DIRECT if direct else FLOOD_CYCLES
    alice = bus.client(users['alice'])
    carol = bus.client(users['carol'])
    dave = bus.client(users['carol'])  # the reading watcher: carol's other connection
    t.success(dave.req('subscribe'), '[%s] the reading watcher subscribes to the signals' % kind)
    t.success(dave.req('watch', patterns=['**'], options={}), '[%s] the reading watcher watches **' % kind)

    bob = raw(users['bob'], direct=direct, bus=bus)
    r = bob.req(op='call', member='Watch', sig='(asa{sv})', args=[['**']], opts={})
    t.ok(r.get('ok'), '[%s] bob (raw socket, reads nothing from now on) watches **' % kind, r)
    bob_name = 'a direct connection' if direct else bob.unique_name

    result = {}
    th = threading.Thread(target=flood, args=(alice, cycles, result))
    th.start()
    lat, failures, during = [], [], 0
    while th.is_alive():
        t0 = time.monotonic()
        r = carol.list()
        ms = (time.monotonic() - t0) * 1000
        if r.get('ok'):
            lat.append(ms)
            during += th.is_alive() and bob.alive()
        else:
            failures.append(r)
        time.sleep(0.05)
    th.join()
    t.diag('[%s] alice ran %d deposit+remove cycles in %.1f s (%d signals per watcher of **)%s'
           % (kind, result['cycles'], result['seconds'], 2 * result['cycles'],
              ', stopped: ' + result['failure'] if 'failure' in result else ''))
    t.eq(result['cycles'], cycles, '[%s] every deposit and remove of the flood was answered' % kind)
    t.diag('[%s] carol\'s List during the flood: %s' % (kind, fmt(lat)))
    t.ok(not failures and during > 0,
         '[%s] carol\'s List was answered throughout, %d times while bob was connected and not reading'
         % (kind, during), failures[:3])
    t.ok(bob.alive(), '[%s] bob was still connected' % kind)

    want = 2 * cycles
    got = dave.req('signals', n=want, timeout_ms=60000, timeout=120)
    sigs = got.get('signals', [])
    t.eq(len(sigs), want, '[%s] the reading watcher heard every one of the %d signals' % (kind, want))
    t.ok(all(s['name'].startswith('sw/flood-') for s in sigs), '[%s] ... all about the flood' % kind)

    log = bus.service_log()
    ended = [line for line in log.splitlines() if 'ending the watch of' in line]
    for line in ended[:3]:
        t.diag('[%s] broker: %s' % (kind, line.strip()))
    # On a direct connection there is no unique name: the uid tells them apart.
    dave_tag = '%s (uid %d)' % (dave.unique_name or 'a direct connection', users['carol']['uid'])
    bob_tag = '%s (uid %d)' % (bob_name, users['bob']['uid'])
    t.ok(not any(dave_tag in line for line in ended),
         '[%s] the reading watcher\'s watch was not ended' % kind)

    if kind == 'dbus-broker':
        t.diag('[dbus-broker] no statistics: the broker does not look (%s); dbus-broker queues what '
               'waits for bob on his own account' % ('ended a watch' if ended else 'ended none'))
        off = [line for line in log.splitlines() if 'not checking whether watchers read' in line]
        for line in off:
            t.diag('[dbus-broker] broker: %s' % line.strip())
        t.ok(len(off) == 1, '[dbus-broker] the broker logged once that it does not look (%d lines)' % len(off))
    else:
        t.ok(any(bob_tag in line for line in ended), '[%s] the broker logged ending bob\'s watch' % kind)
        t.eq(len(ended), 1, '[%s] ... once, and no other watch' % kind)

    on_daemon = kind in ('dbus-daemon', 'service-user')
    if on_daemon:
        st = daemon_stats(bus, bob.unique_name)
    t.success(alice.deposit('sw/after', memfd('y'), allow=['everyone']),
              '[%s] alice deposits one more entry' % kind)
    t.ok(len(dave.req('signals', n=1, timeout_ms=10000).get('signals', [])) == 1,
         '[%s] the reading watcher still hears of it' % kind)
    if on_daemon:
        t.diag('[%s] waiting in the daemon for bob after the flood: %d messages, %d bytes (of %d signals '
               'generated for him)' % (kind, st.get('OutgoingMessages', -1), st.get('OutgoingBytes', -1), want))
        t.ok(0 <= st.get('OutgoingMessages', -1) <= WATCH_QUEUED_MAX + 4 * WATCH_ASK_MARK < want,
             '[%s] far fewer signals wait for bob than were generated (at most %d)'
             % (kind, WATCH_QUEUED_MAX + 4 * WATCH_ASK_MARK))
        st2 = daemon_stats(bus, bob.unique_name)  # after sw/after
        t.eq(st2.get('OutgoingMessages'), st.get('OutgoingMessages'),
             '[%s] nothing more was sent to bob: his watch ended' % kind)
    bob.close()
    r = carol.list()
    t.ok(r.get('ok'), '[%s] carol is still answered after bob left' % kind, r)
    t.eq(bus.service_pid(activate=False), bus.pid0, '[%s] the broker kept running' % kind)


# kind: the bus, and who the broker runs as. The service-user run floods
# the broker as user fdbroker on dbus-daemon only; the plain run covers
# dbus-daemon and dbus-broker as root.
KINDS = {'dbus-daemon': 'dbus-daemon', 'dbus-broker': 'dbus-broker', 'service-user': 'dbus-daemon'}


@pytest.mark.parametrize('kind', list(KINDS))
@on_bus_transport('stalled watchers')
@both_buses_in_one_run('hostile-stalled_watcher')
def test_a_watcher_that_stops_reading_does_not_stall_the_broker_and_loses_its_watch(t, users, bus_on, raw, kind):
    if kind == 'service-user' and not SERVICE_USER:
        pytest.skip('the broker as user fdbroker: runs with FDBROKER_TEST_SERVICE_USER (hostile-service-user)')
    if kind != 'service-user' and SERVICE_USER:
        pytest.skip('this run (FDBROKER_TEST_SERVICE_USER=%s) floods the broker on dbus-daemon only' % SERVICE_USER)
    attack(t, bus_on(KINDS[kind]), users, raw, kind, False)


@on_direct_socket('a stalled watcher')
def test_a_direct_watcher_that_stops_reading_does_not_stall_the_broker_and_loses_its_watch(t, bus, users, raw):
    attack(t, bus, users, raw, 'direct', True)
