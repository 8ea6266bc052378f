#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Retrieve with wait-usec: parked calls answered by a deposit, timeouts,
the 300 s cap, the per-connection limit of parked calls, waiters that may
not retrieve, once entries and waiters that disconnect."""

import harness
from harness import E_INVALID_ARGS, E_NOT_FOUND, E_QUOTA, V, memfd

SEC = 1000000


def barrier(client):
    """Return once the broker has handled every call this client made
    before: List queues behind them on the same connection."""
    r = client.list(prefix='barrier/')
    if not r.get('ok'):
        raise harness.ClientError('barrier List failed: %r' % r)


def test_a_deposit_answers_a_parked_retrieve(t, users, alice, bob):
    t.success(bob.retrieve_async('w1', 'wait/a', **{'wait-usec': 30 * SEC}), 'bob starts Retrieve wait/a, wait-usec 30 s')
    barrier(bob)
    t.eq(bob.poll('w1'), False, 'bob\'s call is parked while wait/a does not exist')
    res = alice.deposit('wait/a', memfd(pattern=50000), allow=['user:fdbtest-bob'])
    t.success(res, 'alice deposits wait/a for bob')
    r = bob.wait_for('w1')
    t.ok(r.get('ok') and r['fd'].get('read_sha256') == res['made']['sha256'],
         'the deposit answers bob\'s parked call with the fd (same bytes)', r)
    t.eq(r.get('info', {}).get('owner-uid'), users['alice']['uid'], 'the answer carries the entry\'s info')


def test_a_wait_that_runs_out_is_not_found(t, alice, bob):
    r = bob.retrieve('wait/none', **{'wait-usec': 200000})
    t.error(r, E_NOT_FOUND, 'a wait that runs out is NotFound naming the entry', ['wait/none'])
    t.error(bob.retrieve('wait/none', **{'wait-usec': 0}), E_NOT_FOUND, 'wait-usec 0 does not wait: NotFound')
    t.success(alice.deposit('wait/exists', memfd('e'), allow=['everyone']), 'alice deposits wait/exists')
    t.success(bob.retrieve('wait/exists', **{'wait-usec': 60 * SEC}), 'wait-usec on an existing entry answers at once')


def test_wait_usec_above_300_s_or_of_another_type_is_refused(t, bus, bob):
    n = bus.entry_count()
    t.error(bob.retrieve('wait/x', **{'wait-usec': 300 * SEC + 1}), E_INVALID_ARGS,
            'wait-usec above 300 s is InvalidArgs naming the option', ['wait-usec'])
    t.error(bob.retrieve('wait/x', **{'wait-usec': V('u', 5)}), E_INVALID_ARGS,
            'wait-usec of type u is InvalidArgs naming the option', ['wait-usec'])
    t.eq(bus.entry_count(), n, 'refused waits change nothing')


def test_wait_usec_of_exactly_300_s_parks_the_call(t, alice, bob):
    t.success(bob.retrieve_async('x1', 'wait/max', **{'wait-usec': 300 * SEC}), 'bob waits with wait-usec 300 s')
    barrier(bob)
    t.eq(bob.poll('x1'), False, 'wait-usec of exactly 300 s is accepted and parks the call')
    t.success(alice.deposit('wait/max', memfd('m'), allow=['user:fdbtest-bob']), 'alice deposits wait/max')
    t.success(bob.wait_for('x1'), 'the 300 s wait is answered by the deposit')


def test_a_waiter_that_may_not_retrieve_keeps_waiting(t, alice, bob, carol):
    t.success(carol.retrieve_async('c1', 'wait/c', **{'wait-usec': 1500000}), 'carol waits for wait/c (1.5 s)')
    barrier(carol)
    t.success(alice.deposit('wait/c', memfd('for bob'), allow=['user:fdbtest-bob']),
              'alice deposits wait/c for bob only')
    r = carol.wait_for('c1')
    t.error(r, E_NOT_FOUND, 'a waiter that may not retrieve the entry keeps waiting, then NotFound')
    t.success(bob.retrieve('wait/c'), 'bob may retrieve wait/c')


def test_every_allowed_waiter_gets_the_entry(t, alice, bob, carol):
    t.success(bob.retrieve_async('m1', 'wait/multi', **{'wait-usec': 30 * SEC}), 'bob waits for wait/multi')
    t.success(carol.retrieve_async('m2', 'wait/multi', **{'wait-usec': 30 * SEC}), 'carol waits for wait/multi')
    barrier(bob)
    barrier(carol)
    res = alice.deposit('wait/multi', memfd(pattern=123), allow=['everyone'])
    t.success(res, 'alice deposits wait/multi for everyone')
    for who, c, tag in (('bob', bob, 'm1'), ('carol', carol, 'm2')):
        r = c.wait_for(tag)
        t.ok(r.get('ok') and r['fd'].get('read_sha256') == res['made']['sha256'],
             'every allowed waiter gets the entry: %s' % who, r)


def test_a_once_entry_goes_to_the_first_waiter_only(t, bus, users, alice, bob):
    bob2 = bus.client(users['bob'])
    t.success(bob.retrieve_async('o1', 'wait/once', **{'wait-usec': 30 * SEC}), 'bob (1st) waits for wait/once')
    barrier(bob)
    t.success(bob2.retrieve_async('o2', 'wait/once', **{'wait-usec': 1500000}),
              'bob (2nd connection) waits for wait/once (1.5 s)')
    barrier(bob2)
    res = alice.deposit('wait/once', memfd('once'), once=True, allow=['user:fdbtest-bob'])
    t.success(res, 'alice deposits wait/once with once')
    r1 = bob.wait_for('o1')
    t.ok(r1.get('ok') and r1['fd'].get('read_head') == 'once', 'a once entry goes to the first waiter', r1)
    t.error(bob2.wait_for('o2'), E_NOT_FOUND, 'the second waiter does not get the once entry: NotFound')
    t.error(alice.retrieve('wait/once'), E_NOT_FOUND, 'the once entry was consumed')


def test_a_connection_may_park_16_calls_and_no_more(t, bus, users, alice, bob):
    bob3 = bus.client(users['bob'])
    for i in range(16):
        r = bob3.retrieve_async('q%d' % i, 'wait/q', **{'wait-usec': 60 * SEC})
        if not r.get('ok'):
            t.ok(False, 'start parked call %d' % i, r)
    r = bob3.retrieve_async('q16', 'wait/q', **{'wait-usec': 60 * SEC})
    r = bob3.wait_for('q16', timeout_ms=30000)
    t.error(r, E_QUOTA, 'a 17th parked wait-usec call on one connection is QuotaExceeded')
    pending = [bob3.poll('q%d' % i) for i in range(16)]
    t.eq(pending, [False] * 16, 'the first 16 calls are still parked')
    r = bob.retrieve('wait/q-other', **{'wait-usec': 100000})
    t.error(r, E_NOT_FOUND, 'the limit is per connection: bob\'s other connection may still wait')
    res = alice.deposit('wait/q', memfd('q'), allow=['user:fdbtest-bob'])
    t.success(res, 'alice deposits wait/q')
    got = [bob3.wait_for('q%d' % i) for i in range(16)]
    t.ok(all(g.get('ok') and g['fd'].get('read_head') == 'q' for g in got),
         'the deposit answers all 16 parked calls', [g for g in got if not g.get('ok')])
    t.error(bob3.retrieve('wait/q-after', **{'wait-usec': 100000}), E_NOT_FOUND,
            'answered calls free their slots: the connection may wait again')


def test_a_waiter_that_went_away_does_not_consume_a_once_entry(t, bus, users, alice, bob):
    bob4 = bus.client(users['bob'])
    t.success(bob4.retrieve_async('g1', 'wait/gone', **{'wait-usec': 60 * SEC}), 'a bob client waits for wait/gone')
    barrier(bob4)
    bob4.kill()
    t.success(alice.deposit('wait/gone', memfd('g'), once=True, allow=['user:fdbtest-bob']),
              'alice deposits wait/gone (once) after the waiter was killed')
    r = bob.retrieve('wait/gone')
    t.ok(r.get('ok') and r['fd'].get('read_head') == 'g',
         'a waiter that went away does not consume the once entry', r)
