# SPDX-License-Identifier: LGPL-2.1-or-later
"""No fd leaks on policy refusals: after some hundreds of calls refused by
rules or by an unreachable polkit (many of them carrying fds), the
service's fd count is back to its baseline and nothing was stored."""

import pytest

from harness import E_ACCESS_DENIED, E_NOT_FOUND, memfd, poll_until

ROUNDS = 50

FILES = {
    '10-refuse.conf': '''\
[Rule reserve]
Action=deposit create-memory
Match=res/**
Subject=everyone
Result=no

[Rule deny-retrieve]
Action=retrieve
Match=deny/*
Subject=user:fdbtest-bob
Result=no

[Rule lock]
Action=remove
Match=locked/*
Subject=everyone
Result=no

[Rule no-full]
Action=open-path
Match=/dev/full
Subject=everyone
Result=no

[Rule ask]
Action=retrieve
Match=ask/*
Subject=user:fdbtest-bob
Result=auth_admin
''',
}


@pytest.fixture
def bus(bus_with):
    """A fresh bus and broker reading only FILES."""
    return bus_with(policy_files=FILES)


def test_hundreds_of_refused_calls_leave_no_fd_and_store_nothing(t, bus, alice, bob, carol):
    for name in ('deny/1', 'locked/1', 'ask/1'):
        r = alice.deposit(name, memfd(name), allow=['user:fdbtest-bob'])
        if not r.get('ok'):
            t.ok(False, 'alice deposits %s' % name, r)

    sixteen = {'res/many/%02d' % i: i for i in range(16)}
    calls = [
        ('deposit memfd', E_ACCESS_DENIED, lambda i: bob.deposit('res/%d' % i, memfd('x'))),
        ('deposit file', E_ACCESS_DENIED,
         lambda i: bob.deposit('res/f%d' % i, {'type': 'file', 'path': 'fdcount-file', 'data': 'f'})),
        ('deposit pipe', E_ACCESS_DENIED, lambda i: bob.deposit('res/p%d' % i, {'type': 'pipe'})),
        ('DepositMany 16', E_ACCESS_DENIED, lambda i: bob.deposit_many(sixteen, [memfd('m')] * 16)),
        ('CreateMemory', E_ACCESS_DENIED, lambda i: bob.create_memory('res/c%d' % i, 4096)),
        ('retrieve', E_ACCESS_DENIED, lambda i: bob.retrieve('deny/1')),
        ('retrieve reopen', E_ACCESS_DENIED, lambda i: bob.retrieve('deny/1', reopen=True)),
        ('remove', E_ACCESS_DENIED, lambda i: alice.remove('locked/1')),
        ('open-path rule', E_ACCESS_DENIED, lambda i: bob.open_path('/dev/full')),
        ('open-path polkit', E_ACCESS_DENIED, lambda i: bob.open_path('/dev/zero')),
        ('retrieve polkit', E_ACCESS_DENIED, lambda i: bob.retrieve('ask/1')),
        ('remove polkit', E_ACCESS_DENIED, lambda i: bob.remove('locked/1')),
        ('remove unseen', E_NOT_FOUND, lambda i: carol.remove('deny/1')),
    ]

    def run_round(i, outcomes):
        for name, expected, fn in calls:
            r = fn(i)
            key = '%s: %s' % (name, r.get('error') if not r.get('ok') else 'ok')
            outcomes[key] = outcomes.get(key, 0) + 1
            if r.get('ok') or r.get('error') != expected:
                outcomes.setdefault('unexpected', []).append((name, r))

    warm = {}
    run_round(-1, warm)
    t.eq(warm.get('unexpected'), None, 'every kind of refusal answers as expected once (warm-up)')
    count0 = bus.entry_count()
    baseline = bus.service_fd_count()
    t.diag('service fd baseline: %d' % baseline)

    def refusals():
        outcomes = {}
        for i in range(ROUNDS):
            run_round(i, outcomes)
        n = ROUNDS * len(calls)
        unexpected = outcomes.pop('unexpected', [])
        t.eq(unexpected[:3], [], '%d refused calls (%d fds sent with them) all refused as expected'
             % (n, ROUNDS * (1 + 1 + 1 + 16)))
        t.diag('outcomes: %r' % outcomes)
        t.eq(bus.entry_count(), count0, 'nothing was stored')
        ok = poll_until(lambda: bus.service_fd_count() == baseline, timeout=10)
        t.ok(ok, 'the service\'s fd count is back to its baseline %d' % baseline,
             None if ok else {'count': bus.service_fd_count(), 'fds': bus.service_fds()})
    refusals()

