# SPDX-License-Identifier: LGPL-2.1-or-later
"""--exit-idle-time: the broker exits by itself when it holds nothing.

Every test has its own private bus that activates the service with
--exit-idle-time=1 (`bus` here is conftest.py's quiet_bus: the broker may
exit and come back). With no entries the process exits by itself (bounded
wait) and gives the name up, and the next call bus-activates a new one.
While it holds an entry (connection-lifetime or persistent) or a parked
wait-usec call it does not exit. Under the fake manager, a broker that
restored persistent entries does not exit either, and once they are removed
it exits with status 0 after STOPPING=1, leaving the fd store empty.

Waits are bounded; no test asserts how long anything took. "Does not exit"
is checked over several idle periods (and, for a parked call, for as long
as the call is parked).
"""

import os
import signal
import time

import pytest

import harness
from harness import E_NOT_FOUND, _pid_alive, poll_until
import fdcheck

IDLE = 1.0            # --exit-idle-time
STAY = 5 * IDLE       # "does not exit" is watched this long

BUS_OPTIONS = {'extra_service_args': ['--exit-idle-time=%g' % IDLE]}


@pytest.fixture
def bus(quiet_bus):
    return quiet_bus


def gone(bus, pid):
    """Wait (bounded) for pid to exit and the name to be free."""
    return poll_until(lambda: not _pid_alive(pid) and not bus.service_running(), 60)


def stays(t, bus, pid, what):
    """pid keeps running (and owning the name) for STAY seconds."""
    deadline = time.monotonic() + STAY
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return t.ok(False, 'with %s the broker does not exit' % what, 'pid %d exited' % pid)
        time.sleep(0.1)
    return t.ok(_pid_alive(pid) and bus.service_pid(activate=False) == pid,
                'with %s the broker does not exit (watched for %g idle periods)' % (what, STAY / IDLE))


def test_with_no_entries_the_broker_exits_and_the_next_call_activates_a_new_one(t, bus):
    pid1 = bus.service_pid()
    t.ok(pid1 and _pid_alive(pid1), 'the bus activates the broker')
    t.ok(gone(bus, pid1), 'with no entries it exits by itself and gives up the name (bounded wait)')
    t.ok('idle: exiting' in bus.service_log(), 'it logs why it exits')
    t.eq(bus.entry_count(), 0, 'a call afterwards is answered (EntryCount 0)')
    pid2 = bus.service_pid(activate=False)
    t.ok(pid2 and pid2 != pid1 and _pid_alive(pid2), 'by a new, bus-activated broker', (pid1, pid2))
    t.ok(gone(bus, pid2), 'which exits by itself too')


def test_calls_more_often_than_once_a_period_keep_the_broker_running(t, bus, alice):
    # Every method call starts the quiet period anew (lifecycle.c): a
    # broker called more often than once a period never exits. Whether
    # the calls really came that often is measured, not assumed.
    pid = bus.service_pid()
    gaps, last = [], None
    deadline = time.monotonic() + STAY
    while time.monotonic() < deadline:
        alice.names('idle/')  # List: a method call, which changes nothing
        now = time.monotonic()
        if last is not None:
            gaps.append(now - last)
        last = now
        time.sleep(IDLE / 5)
    t.diag('longest gap between calls: %.3f s (idle period %g s)' % (max(gaps), IDLE))
    if max(gaps) < IDLE * 0.8:
        t.ok(_pid_alive(pid) and bus.service_pid(activate=False) == pid,
             'called more often than once a period for %g periods, the broker does not exit' % (STAY / IDLE))
    else:
        t.skip('called more often than once a period, the broker does not exit',
               'the machine is too loaded: calls were %.3f s apart' % max(gaps))
    t.ok(gone(bus, pid), 'once the calls stop it exits by itself')


def test_a_connection_lifetime_entry_keeps_the_broker_running_until_removed(t, bus, alice):
    r = alice.deposit('idle/conn', harness.memfd('held'))
    t.success(r, 'alice deposits a connection-lifetime entry (activating the broker)')
    pid = bus.service_pid(activate=False)
    t.ok(pid, 'the broker runs', pid)
    stays(t, bus, pid, 'one connection-lifetime entry')
    t.success(alice.remove('idle/conn'), 'alice removes it')
    t.ok(gone(bus, pid), 'then it exits by itself')


def test_a_persistent_entry_keeps_the_broker_running_until_removed(t, bus, alice, bob):
    r = alice.deposit('idle/persistent', harness.memfd('held'), lifetime='persistent')
    t.success(r, 'alice deposits a persistent entry (no fd store: kept in memory)')
    pid = bus.service_pid(activate=False)
    stays(t, bus, pid, 'one persistent entry')
    r = bob.retrieve('idle/persistent')
    t.error(r, E_NOT_FOUND, 'the entry is still there, owner-only (bob gets NotFound)')
    r = alice.retrieve('idle/persistent')
    t.ok(r.get('ok') and (r.get('fd') or {}).get('read_head') == 'held', 'alice gets it back', r)
    t.success(alice.remove('idle/persistent'), 'alice removes it')
    t.ok(gone(bus, pid), 'then it exits by itself')


def test_a_parked_call_keeps_the_broker_running_while_it_is_parked(t, bus, bob):
    r = bob.retrieve_async('w', 'idle/later', **{'wait-usec': int(STAY * 1000000)})
    t.success(r, 'bob parks a Retrieve with wait-usec (activating the broker)')
    pid = poll_until(lambda: bus.service_pid(activate=False), 30)
    died_while_parked = False
    while True:
        alive = _pid_alive(pid)
        if bob.poll('w'):
            break
        if not alive:
            died_while_parked = True
            break
        time.sleep(0.1)
    t.ok(not died_while_parked, 'while a call is parked the broker does not exit', pid)
    t.error(bob.wait_for('w'), E_NOT_FOUND, 'the parked call ends with NotFound')
    t.ok(gone(bus, pid), 'then it exits by itself')


def test_a_broker_holding_restored_entries_stays_until_they_are_removed_then_exits_cleanly(t, bus, alice, manager):
    mgr = manager(extra=['--exit-idle-time=%g' % IDLE])
    mgr.start()
    fd, _ = fdcheck.make('memfd', b'restored entry')
    bus.call('Deposit', '(sha{sv})',
             ('idle/restored', 0, harness.to_gvariant_dict({'lifetime': 'persistent', 'allow': ['everyone']})),
             fds=[fd])
    os.close(fd)
    mgr.stop(signal.SIGKILL)
    pid = mgr.start()
    t.eq(len(mgr.store_names()), 1, 'the restarted broker got its entry back from the store')
    if not t.eq(mgr.wait_exit(STAY), None, 'holding a restored entry the broker does not exit (watched '
                'for %g idle periods)' % (STAY / IDLE)):
        return
    t.success(alice.retrieve('idle/restored'), 'alice retrieves the restored entry')
    bus.call('Remove', '(s)', ('idle/restored',))
    st = mgr.wait_exit(60)
    t.eq(st, 0, 'once it is removed the broker exits by itself with status 0 (bounded wait)')
    t.ok(mgr.wait_message(lambda f: f.get('STOPPING') == '1', timeout=0, pid=pid) is not None,
         'after STOPPING=1')
    t.eq(mgr.store_names(), [], 'and the fd store is empty (FDSTOREREMOVE=1 for the removed entry)')
