# SPDX-License-Identifier: LGPL-2.1-or-later
"""No fd leaks: the service's fd count comes back to its baseline after
thousands of calls, failing ones included, and after clients holding
connection entries and parked calls go away."""

import pytest

import harness
from harness import memfd, poll_until

CYCLES = 2000


@pytest.fixture
def baseline(t, bus, alice, bob):
    """Warms up every path once, so that lazily opened fds (timers,
    caches) are part of the baseline; returns (service fd count,
    EntryCount) after that."""
    r = alice.req('churn', cycles=24, prefix='warm', allow=['user:fdbtest-bob'])
    t.ok(r.get('ok') and not r.get('unexpected'), 'warm-up cycles behave as expected', r)
    bob.retrieve('warm/none', **{'wait-usec': 10000})
    alice.deposit('warm/timeout', memfd('x'), **{'timeout-usec': 10000})
    poll_until(lambda: not alice.retrieve('warm/timeout').get('ok'), timeout=10)
    n = bus.service_fd_count()
    t.diag('service fd baseline: %d' % n)
    return n, bus.entry_count()


def fds_back(t, bus, baseline, what):
    ok = poll_until(lambda: bus.service_fd_count() == baseline, timeout=10)
    if not ok:
        fds = bus.service_fds()
        t.ok(False, '%s: service fd count back to %d' % (what, baseline),
             {'count': len(fds), 'fds': fds})
    else:
        t.ok(True, '%s: service fd count back to %d' % (what, baseline))


def test_thousands_of_calls_failing_ones_included_leave_no_fd_behind(t, bus, alice, baseline):
    baseline, count0 = baseline
    r = alice.req('churn', cycles=CYCLES, prefix='churn', allow=['user:fdbtest-bob'], timeout=600)
    t.success(r, '%d deposit/retrieve/remove cycles ran' % CYCLES)
    t.eq(r.get('unexpected'), [], 'every call in the cycles answered as expected')
    counts = r.get('counts', {})
    t.diag('outcomes: %r' % counts)
    for step in ('deposit-bad-name:org.freedesktop.DBus.Error.InvalidArgs',
                 'retrieve-missing:org.fdbroker.Error.NotFound',
                 'deposit-exists:org.fdbroker.Error.Exists',
                 'seal-regular:org.fdbroker.Error.NotSupported',
                 'deposit-many-bad:org.freedesktop.DBus.Error.InvalidArgs',
                 'retrieve-many-missing:org.fdbroker.Error.NotFound',
                 'write-only-as-read-only:org.freedesktop.DBus.Error.AccessDenied'):
        t.ok(counts.get(step, 0) >= CYCLES // 12 - 1, 'the cycles included %s' % step, counts)
    t.eq(bus.entry_count(), count0, 'EntryCount back after the cycles')
    fds_back(t, bus, baseline, 'after %d cycles with errors' % CYCLES)


def test_depositmany_and_retrievemany_rounds_leave_no_fd_behind(t, bus, alice, bob, baseline):
    baseline, count0 = baseline
    for round_ in range(40):
        names = {'many/%02d' % i: i for i in range(16)}
        r = alice.deposit_many(names, [memfd('m%d' % i) for i in range(16)], allow=['user:fdbtest-bob'])
        if not r.get('ok'):
            t.ok(False, 'DepositMany round %d' % round_, r)
            return
        g = bob.retrieve_many(sorted(names), read=False)
        if not g.get('ok') or g.get('n_fds') != 16:
            t.ok(False, 'RetrieveMany round %d' % round_, g)
            return
        for n in names:
            alice.remove(n)
    t.ok(True, '40 rounds of DepositMany/RetrieveMany of 16')
    fds_back(t, bus, baseline, 'after DepositMany/RetrieveMany rounds')


def test_consumed_and_expired_entries_leave_no_fd_behind(t, bus, alice, bob, baseline):
    baseline, count0 = baseline
    for i in range(50):
        alice.deposit('once/%d' % i, memfd('o'), once=True, allow=['user:fdbtest-bob'])
        bob.retrieve('once/%d' % i, read=False)
    for i in range(50):
        alice.deposit('to/%d' % i, {'type': 'socket'}, **{'timeout-usec': 50000})
    t.ok(poll_until(lambda: bus.entry_count() == count0, timeout=30),
         'once entries consumed and timed-out entries expired')
    fds_back(t, bus, baseline, 'after once and expired entries')


def test_clients_going_away_with_entries_and_parked_calls_leave_no_fd_behind(t, bus, users, baseline):
    baseline, count0 = baseline
    clients = [bus.client(users['alice']), bus.client(users['alice']), bus.client(users['bob'])]
    for k, c in enumerate(clients):
        for i in range(20):
            spec = [memfd('c'), {'type': 'socket'}, {'type': 'pipe'}, {'type': 'eventfd'}][i % 4]
            r = c.deposit('conn%d/%d' % (k, i), spec)
            if not r.get('ok'):
                t.ok(False, 'client %d deposit %d' % (k, i), r)
        c.retrieve_async('w', 'conn%d/waited' % k, **{'wait-usec': 60000000})
    t.ok(bus.service_fd_count() >= baseline + 60, 'the service holds the 60 deposited fds',
         bus.service_fd_count())
    clients[0].close()
    clients[1].kill()
    clients[2].close()
    t.ok(poll_until(lambda: bus.entry_count() == count0, timeout=30),
         'connection entries removed after clients went away', bus.entry_count())
    fds_back(t, bus, baseline, 'after clients with connection entries and parked calls went away')


def test_a_burst_of_calls_from_a_new_connection_is_answered_and_leaves_no_fd(t, bus, bob, baseline):
    baseline, count0 = baseline
    # dbus-daemon allows 128 pending replies per connection (max_replies_per_connection).
    r = bob.req('burst', n=120)
    counts = r.get('counts', {})
    t.ok(r.get('ok') and set(counts) <= {'ok', harness.E_QUOTA} and counts.get('ok', 0) >= 64,
         'a new connection firing 120 calls at once gets answers or QuotaExceeded (at most 64 queue)', r)
    t.diag('burst answers: %r' % counts)
    fds_back(t, bus, baseline, 'after a burst of calls from a new connection')
