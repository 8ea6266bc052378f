# SPDX-License-Identifier: LGPL-2.1-or-later
"""[Limits] from the policy: the properties show them and the broker
enforces them with QuotaExceeded (MaxEntries, MaxEntriesPerUser,
MaxMemorySize through CreateMemory), users getting fair shares of the
global ones. A later file overrides an earlier
one's key."""

import pytest

from harness import E_INVALID_ARGS, E_QUOTA, memfd

FILES = {
    '10-limits.conf': '''\
[Limits]
MaxEntries=100          # overridden by 20-limits.conf
MaxEntriesPerUser=3
''',
    '20-limits.conf': '''\
# A later file overrides the keys it names.
[Limits]
MaxEntries=16
MaxMemorySize=64K
''',
}


@pytest.fixture
def bus(bus_with):
    """A fresh bus and broker reading only FILES."""
    return bus_with(policy_files=FILES)


def test_the_properties_show_the_limits_a_later_file_overriding_an_earlier(t, bus, carol):
    t.eq(bus.get_property('MaxEntries'), 16, 'MaxEntries is 16 (20-limits.conf overrides 10-limits.conf)')
    t.eq(bus.get_property('MaxEntriesPerUser'), 3, 'MaxEntriesPerUser is 3')
    t.eq(bus.get_property('MaxMemorySize'), 65536, 'MaxMemorySize is 64K = 65536')
    r = carol.req('get_all')
    t.eq({k: r.get('values', {}).get(k) for k in ('MaxEntries', 'MaxEntriesPerUser', 'MaxMemorySize')},
         {'MaxEntries': 16, 'MaxEntriesPerUser': 3, 'MaxMemorySize': 65536},
         'an unprivileged GetAll sees the same limits')


def test_creatememory_is_held_to_fair_shares_of_maxmemorysize(t, alice, bob, root):
    # A user alone gets half of the pool (fair share, accounting.h);
    # root is held to the total only.
    t.success(alice.create_memory('m/1', 32768), 'CreateMemory of 32 KiB, alice\'s fair half of 64 KiB')
    t.error(alice.create_memory('m/2', 40960), E_QUOTA, 'another 40 KiB would pass MaxMemorySize: QuotaExceeded',
            ['MaxMemorySize', 'm/2'])
    t.error(alice.create_memory('m/big', 65537), E_INVALID_ARGS,
            'a single size above MaxMemorySize is InvalidArgs', ['MaxMemorySize'])
    t.success(root.create_memory('m/r', 32768), 'the remaining 32 KiB fit exactly (root)')
    t.error(bob.create_memory('m/3', 1), E_QUOTA, 'the memory limit is global: bob\'s 1 byte is refused too',
            ['MaxMemorySize'])
    t.success(alice.deposit('m/deposited', memfd('x' * 100000)),
              'a memfd deposited by a caller is not counted against MaxMemorySize')
    t.success(alice.remove('m/1'), 'alice removes m/1')
    t.success(bob.create_memory('m/3', 8192), 'which frees memory for bob')


def test_a_user_may_own_maxentriesperuser_entries(t, alice):
    t.success(alice.deposit('m/deposited', memfd('x' * 100000)), 'alice\'s first entry')
    t.success(alice.deposit('e/a0', memfd('a')), 'alice\'s second entry')
    t.success(alice.deposit('e/a1', memfd('a')), 'alice\'s third entry')
    t.error(alice.deposit('e/a2', memfd('a')), E_QUOTA, 'her fourth is QuotaExceeded (MaxEntriesPerUser=3)',
            ['MaxEntriesPerUser'])
    t.error(alice.deposit_many({'e/a2': 0}, [memfd('a')]), E_QUOTA, 'DepositMany too')


def test_maxentries_is_shared_fairly_among_the_uids_holding_entries(t, bus, alice, bob, carol, root):
    t.success(alice.deposit('m/deposited', memfd('x' * 100000)), 'alice deposits m/deposited')
    t.success(alice.deposit('e/a0', memfd('a')), 'and e/a0')
    t.success(alice.deposit('e/a1', memfd('a')), 'and e/a1')
    t.success(root.create_memory('m/r', 32768), 'root creates m/r')
    t.success(bob.create_memory('m/3', 8192), 'bob creates m/3')
    # 5 entries now: alice 3, root 1 (m/r), bob 1 (m/3). carol, the
    # fourth uid, may grow to (remaining + share) / 5 of MaxEntries=16:
    # 2 entries (with MaxEntries=100 she would reach her 3 per user).
    t.eq(bus.entry_count(), 5, 'five entries stored')
    t.success(carol.deposit('e/c1', memfd('c')), 'carol\'s first')
    t.success(carol.deposit('e/c2', memfd('c')), 'carol\'s second')
    t.error(carol.deposit('e/c3', memfd('c')), E_QUOTA,
            'carol\'s third passes her fair share of what MaxEntries=16 leaves', ['MaxEntries', 'fair share'])
    t.error(carol.deposit_many({'e/c3': 0, 'e/c4': 1}, [memfd('c'), memfd('c')]), E_QUOTA,
            'so does her DepositMany')
    t.eq(bus.entry_count(), 7, 'still seven entries')
    t.success(alice.remove('e/a1'), 'alice removes one')
    t.success(alice.remove('e/a0'), 'and another')
    t.success(alice.remove('m/deposited'), 'and her last: one uid fewer shares what is left')
    t.success(carol.deposit('e/c3', memfd('c')), 'then carol may deposit')
