# SPDX-License-Identifier: LGPL-2.1-or-later
"""Per-user entry limit (MaxEntriesPerUser = 256)."""

import pytest

import harness
from harness import E_QUOTA, memfd, poll_until


LIMITS = '''# written by test_quota.py
[Limits]
MaxEntries=24
MaxEntriesPerUser=12
MaxMemorySize=1M
'''

MANY = '''[Limits]
MaxEntries=100000
MaxEntriesPerUser=100000
'''


def test_a_user_may_own_256_entries_and_no_more(t, bus, users, alice, bob):
    def batch(first, n):
        return alice.deposit_many({'q/%03d' % i: 0 for i in range(first, first + n)}, [memfd('q')])

    t.eq(bus.get_property('MaxEntriesPerUser'), 256, 'MaxEntriesPerUser is 256')
    count0 = bus.entry_count()
    errs = [batch(16 * b, 16) for b in range(15)]
    t.ok(all(r.get('ok') for r in errs), 'alice deposits 240 entries in 15 DepositMany batches of 16',
         [r for r in errs if not r.get('ok')][:2])
    t.success(batch(240, 10), 'alice deposits 10 more (250)')
    t.error(batch(250, 16), E_QUOTA, 'a DepositMany of 16 that would pass 256 is QuotaExceeded')
    t.eq(len(alice.names('q/')), 250, 'the refused batch stored none of its 16 entries')
    t.success(batch(250, 6), 'alice deposits 6 more: 256 entries')
    t.eq(len(alice.names('q/')), 256, 'alice owns 256 entries')
    t.error(alice.deposit('q/257', memfd('x')), E_QUOTA, 'the 257th Deposit is QuotaExceeded')
    t.error(alice.create_memory('q/257', 4096), E_QUOTA, 'CreateMemory at the limit is QuotaExceeded')
    t.error(batch(256, 1), E_QUOTA, 'DepositMany of one at the limit is QuotaExceeded')
    t.eq(bus.entry_count(), count0 + 256, 'EntryCount counts 256 entries')
    t.success(bob.deposit('q/bob', memfd('b')), 'the limit is per user: bob may still deposit')
    t.success(alice.remove('q/000'), 'alice removes one entry')
    t.success(alice.deposit('q/257', memfd('x')), 'then her next Deposit succeeds')
    t.error(alice.deposit('q/258', memfd('x')), E_QUOTA, 'and the one after is QuotaExceeded again')
    alice.close()
    t.ok(poll_until(lambda: bus.entry_count() == count0 + 1, timeout=30),
         'alice\'s 256 connection entries go when she disconnects', bus.entry_count())
    a2 = bus.client(users['alice'])
    t.success(a2.deposit('q/again', memfd('x')), 'after that alice may deposit again')


def test_limits_lowered_by_a_policy_file_hold_per_user_fair_share_and_in_all(t, users, bus_with):
    # The global limit (4096) would take 16 users of 256 entries: lower the
    # limits with a [Limits] policy file (SPEC 2).
    bus2 = bus_with(policy_files={'50-limits.conf': LIMITS})
    if not bus2._service_has_option('--policy-dir'):
        pytest.skip('the service has no --policy-dir to lower the limits with')
    alice, bob = bus2.client(users['alice']), bus2.client(users['bob'])
    got = {k: bus2.get_property(k) for k in ('MaxEntries', 'MaxEntriesPerUser', 'MaxMemorySize')}
    t.eq(got, {'MaxEntries': 24, 'MaxEntriesPerUser': 12, 'MaxMemorySize': 1 << 20},
         'properties show the limits of a [Limits] policy file')
    r = alice.deposit_many({'l/a%02d' % i: 0 for i in range(12)}, [memfd('a')])
    t.success(r, 'alice deposits 12 entries (her limit)')
    t.error(alice.deposit('l/a12', memfd('a')), E_QUOTA, 'alice\'s 13th is QuotaExceeded (per user)',
            ['MaxEntriesPerUser'])
    # Fair share (dbus-broker's rule): bob, the second user, may take
    # grow to (remaining + share) / 3 of the 12 left: 4 entries.
    r = bob.deposit_many({'l/b%02d' % i: 0 for i in range(4)}, [memfd('b')])
    t.success(r, 'bob deposits 4 entries, his fair share of the 12 left')
    t.error(bob.deposit('l/b04', memfd('b')), E_QUOTA, 'bob\'s 5th is QuotaExceeded (fair share)',
            ['fair share', 'MaxEntries'])
    root = bus2.client()
    r = root.deposit_many({'l/r%02d' % i: 0 for i in range(8)}, [memfd('r')])
    t.success(r, 'root (held to the totals only) deposits the 8 left: 24 in all')
    t.eq(bus2.entry_count(), 24, 'EntryCount is 24')
    t.error(root.deposit('l/r08', memfd('r')), E_QUOTA, 'the 25th entry is QuotaExceeded (global MaxEntries)')
    t.error(bob.create_memory('l/b08', 4096), E_QUOTA, 'CreateMemory past MaxEntries is QuotaExceeded')
    t.eq(bus2.entry_count(), 24, 'refused deposits stored nothing')
    t.success(alice.remove('l/a00'), 'alice removes one entry')
    t.success(root.create_memory('l/mem', 1 << 20), 'root creates 1 MiB of memory (MaxMemorySize 1M)')
    t.error(bob.create_memory('l/mem2', (1 << 20) + 1), harness.E_INVALID_ARGS,
            'CreateMemory of more than MaxMemorySize is InvalidArgs')


def test_maxentries_is_capped_to_what_the_open_file_limit_can_hold(t, bus_with):
    # Every entry is an open fd: a MaxEntries the open-file limit cannot
    # hold is capped, so the broker refuses deposits (QuotaExceeded) before
    # it runs out of fds, which would make sd-bus drop its bus connection
    # and every entry with it.
    bus3 = bus_with(policy_files={'50-many.conf': MANY}, service_nofile=1100)
    root = bus3.client()
    budget = bus3.get_property('MaxEntries')
    t.eq(budget, 550, 'MaxEntries=100000 with 1100 fds allowed is capped to 550 (half, below 2048)')
    pid = bus3.service_pid()
    stored = 0
    for batch in range(0, budget, 16):
        n = min(16, budget - batch)
        r = root.deposit_many({'fd/%04d' % (batch + i): 0 for i in range(n)}, [memfd('x')])
        if not r.get('ok'):
            t.ok(False, 'deposit batch at %d' % batch, r)
            return
        stored += n
    t.eq(bus3.entry_count(), 550, 'root deposits 550 entries, all the budget')
    t.error(root.deposit('fd/one-more', memfd('x')), E_QUOTA, 'the 551st is QuotaExceeded, not a lost bus',
            ['MaxEntries'])
    t.eq(bus3.service_pid(activate=False), pid, 'the same broker still serves')
    info = root.retrieve('fd/0549')
    t.success(info, 'and every entry is still retrievable')
    t.ok('more than the open-file limit allows' in bus3.service_log(), 'the cap is logged')
