# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 1 of issue 9: freeze the event loop with a lease.

Alice deposits her own file, takes a write lease on it and ignores the
break signal (SIGIO), then asks for a reopening (Retrieve reopen=true,
RetrieveMany access=read-only, Deposit access=read-only of a read-write
fd, OpenPath). An open() of a leased file waits for the lease break
(/proc/sys/fs/lease-break-time, 45 s by default; this test neither reads
nor changes it). If the broker opened on its loop, Bob's Retrieve of his
own entry would wait with it.

Asserted: Bob is answered while Alice still holds the lease; Alice gets
Busy naming the entry; once the lease is gone the broker holds no more
fds than before. Latencies are printed, never compared with a limit."""

import os
import time
from types import SimpleNamespace

import pytest

import harness
from harness import E_BUSY, memfd
from hostileutil import OPEN_PATH_RULE, timed

BUS_OPTIONS = {'policy_files': {'50-hostile.conf': OPEN_PATH_RULE}}


def lease_held(path):
    """Whether /proc/locks still lists a lease (active or being broken) on
    path: the kernel removes it when the break time runs out."""
    ino = os.stat(path).st_ino
    with open('/proc/locks') as f:
        return any(' LEASE ' in ' %s ' % line and line.split()[5].endswith(':%d' % ino)
                   for line in f if len(line.split()) > 5)


@pytest.fixture
def leased(t, bus, alice, bob):
    """Bob's own entry victim/entry; Alice's own file deposited read-write as
    attack/leased, with a write lease she holds and whose break she ignores.
    .baseline: the service's fd count with both entries stored."""
    t.success(bob.deposit('victim/entry', memfd('bob keeps working')), 'Bob deposits his own entry')
    path = 'leased-%d' % os.getpid()
    t.success(alice.fd_new('lf', {'type': 'file', 'path': path, 'data': 'alice owns this', 'mode': 'rw'}),
              'Alice creates her own file')
    t.success(alice.deposit('attack/leased', {'handle': 'lf'}), 'Alice deposits it (read-write)')
    baseline = bus.service_fd_count()
    t.diag('service fds with both entries stored: %d' % baseline)
    t.success(alice.req('fd_lease', handle='lf', type='w'), 'Alice takes a write lease and ignores SIGIO')
    return SimpleNamespace(path=os.path.join(bus.scratch, path), baseline=baseline)


def lease_gone_and_nothing_left(t, bus, alice, leased):
    """Alice lets the lease go: the reopening works and the broker holds
    no more fds than before the attack."""
    t.success(alice.req('fd_lease', handle='lf', type='none'), 'Alice releases the lease')
    t.success(alice.retrieve('attack/leased', reopen=True), 'without the lease, the reopening works')
    back = harness.poll_until(lambda: bus.service_fd_count() <= leased.baseline, timeout=30)
    t.ok(back, 'the service holds no more fds than before the attack', {'baseline': leased.baseline,
                                                                         'now': bus.service_fd_count()})


ATTACKS = {
    'Retrieve reopen=true': {'reopen': True},
    'Retrieve access=read-only': {'access': 'read-only'},
}


@pytest.mark.parametrize('what', list(ATTACKS))
def test_a_leased_file_does_not_stop_other_callers_being_answered(t, bus, alice, bob, leased, what):
    t0 = time.monotonic()
    t.success(alice.retrieve_async('r', 'attack/leased', timeout_ms=120000, **ATTACKS[what]),
              '%s: the call is sent' % what)
    res, victim_ms = timed(bob.retrieve, 'victim/entry', timeout_ms=120000)
    t.success(res, '%s: Bob\'s Retrieve of his own entry is answered' % what)
    t.ok(lease_held(leased.path), '%s: ... while Alice\'s lease still stands (the kernel did not have to break it)'
         % what)
    t.diag('%s: victim latency %.1f ms' % (what, victim_ms))
    ans = alice.wait_for('r', timeout_ms=120000)
    t.diag('%s: attacker answered after %.1f ms: %s' % (what, (time.monotonic() - t0) * 1000,
                                                       ans.get('error') or 'an fd'))
    t.error(ans, E_BUSY, '%s: Alice is answered Busy, naming the entry' % what, ['attack/leased'])
    lease_gone_and_nothing_left(t, bus, alice, leased)


def test_retrievemany_reopening_a_leased_file_is_busy(t, bus, alice, leased):
    res = alice.retrieve_many(['attack/leased'], reopen=True)
    t.error(res, E_BUSY, 'RetrieveMany reopen=true of the leased file is Busy', ['attack/leased'])
    t.ok(lease_held(leased.path), 'the lease still stands')
    lease_gone_and_nothing_left(t, bus, alice, leased)


def test_a_deposit_narrowing_a_leased_file_is_busy_and_stores_nothing(t, bus, alice, leased):
    res = alice.deposit('attack/narrowed', {'handle': 'lf'}, access='read-only')
    t.error(res, E_BUSY, 'Deposit access=read-only of the leased read-write file is Busy', ['attack/narrowed'])
    t.ok(lease_held(leased.path), 'the lease still stands')
    t.eq(alice.names('attack/'), ['attack/leased'], 'attack/narrowed was not stored')
    lease_gone_and_nothing_left(t, bus, alice, leased)


def test_openpath_of_a_leased_file_is_busy_at_once_and_others_are_still_served(t, bus, alice, bob, leased):
    # OpenPath opens with O_NONBLOCK: a lease is EWOULDBLOCK, not a wait.
    res, ms = timed(alice.open_path, leased.path)
    t.diag('OpenPath of the leased file answered after %.1f ms: %s' % (ms, res.get('error') or 'an fd'))
    t.error(res, E_BUSY, 'OpenPath of a leased file is Busy, naming the path', [leased.path])
    res, ms = timed(bob.retrieve, 'victim/entry')
    t.success(res, 'Bob is still served after the OpenPath attempt')
    t.diag('victim latency after OpenPath: %.1f ms' % ms)
    t.ok(lease_held(leased.path), 'the lease still stands')
    lease_gone_and_nothing_left(t, bus, alice, leased)
