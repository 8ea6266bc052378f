# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 6 of issue 9: partial effects of a refused deposit.

A refused Deposit, DepositMany or CreateMemory changes nothing: no entry
stored, no old entry replaced, and no memfd sealed that a check made
before sealing could have refused. The one effect no check can rule out
beforehand is documented in service/deposit.h: Linux cannot tell whether
F_SEAL_WRITE would fail on a writable shared mapping without sealing, so
a mapping found on the k-th memfd leaves the k-1 before it sealed (as the
caller asked) and the k-th and those after it untouched. The rollback of
the commit itself (a store failing after others succeeded) is tested by
tests/unit/test-deposit.c, which injects the failure."""

import os

from harness import E_BUSY, E_EXISTS, E_NOT_FOUND, E_NOT_SUPPORTED, memfd


def seals(c, handle):
    return (c.fd_facts(handle).get('fd') or {}).get('seals')


def fresh(t, alice, *handles):
    for h in handles:
        t.success(alice.fd_new(h, memfd('data of ' + h)), 'Alice makes memfd %s' % h)


def nothing_stored(t, alice, names, what):
    for n in names:
        t.error(alice.retrieve(n), E_NOT_FOUND, '%s: %s was not stored' % (what, n))


def keep_entry(t, alice):
    t.success(alice.deposit('pe/keep', memfd('the old one')), 'Alice deposits pe/keep')


def test_an_unsealable_memfd_in_a_sealing_depositmany_leaves_every_memfd_unsealed(t, alice):
    # A memfd that cannot be sealed at all is found by the plan: none sealed.
    fresh(t, alice, 'a1', 'a3')
    t.success(alice.fd_new('a2', memfd('no sealing', sealing=False)), 'a2 is a memfd without MFD_ALLOW_SEALING')
    res = alice.deposit_many({'pe/a1': 0, 'pe/a2': 1, 'pe/a3': 2},
                             [{'handle': 'a1'}, {'handle': 'a2'}, {'handle': 'a3'}], seal=True)
    t.error(res, E_NOT_SUPPORTED, 'DepositMany seal with an unsealable 2nd memfd is NotSupported', ['pe/a2'])
    t.eq([seals(alice, h) for h in ('a1', 'a2', 'a3')], [0, 1, 0],
         'no memfd of the refused call was sealed (a2 carries only the F_SEAL_SEAL it was made with)')
    nothing_stored(t, alice, ['pe/a1', 'pe/a2', 'pe/a3'], 'unsealable')


def test_a_mapped_first_memfd_in_a_sealing_depositmany_leaves_every_memfd_unsealed(t, alice):
    fresh(t, alice, 'b1', 'b2')
    t.success(alice.req('mmap_keep', handle='b1'), 'Alice maps b1 writable and shared')
    res = alice.deposit_many({'pe/b1': 0, 'pe/b2': 1}, [{'handle': 'b1'}, {'handle': 'b2'}], seal=True)
    t.error(res, E_BUSY, 'DepositMany seal with a mapped 1st memfd is Busy, naming it', ['pe/b1', 'unmap'])
    t.eq([seals(alice, h) for h in ('b1', 'b2')], [0, 0], 'neither memfd was sealed')
    nothing_stored(t, alice, ['pe/b1', 'pe/b2'], 'mapped 1st')


def test_a_mapped_second_memfd_leaves_it_and_those_after_it_unsealed_saying_what_was_sealed(t, alice):
    # The 1st is sealed (no test short of sealing exists), the 2nd and 3rd
    # are not; the message says so, and nothing is stored.
    fresh(t, alice, 'c1', 'c2', 'c3')
    t.success(alice.req('mmap_keep', handle='c2'), 'Alice maps c2 writable and shared')
    res = alice.deposit_many({'pe/c1': 0, 'pe/c2': 1, 'pe/c3': 2},
                             [{'handle': 'c1'}, {'handle': 'c2'}, {'handle': 'c3'}], seal=True)
    t.error(res, E_BUSY, 'DepositMany seal with a mapped 2nd memfd is Busy, naming it and what was sealed',
            ['pe/c2', 'before it were sealed'])
    got = [seals(alice, h) for h in ('c2', 'c3')]
    t.eq(got, [0, 0], 'the mapped memfd and the one after it were not sealed')
    t.diag('seals of c1 (listed before the mapped one): %r' % seals(alice, 'c1'))
    nothing_stored(t, alice, ['pe/c1', 'pe/c2', 'pe/c3'], 'mapped 2nd')


def test_a_replace_whose_seal_fails_keeps_the_old_entry(t, alice):
    keep_entry(t, alice)
    fresh(t, alice, 'd1')
    t.success(alice.req('mmap_keep', handle='d1'), 'and maps a new memfd writable')
    t.error(alice.deposit('pe/keep', {'handle': 'd1'}, replace=True, seal=True), E_BUSY,
            'replace with a seal that fails is Busy')
    got = alice.retrieve('pe/keep')
    t.eq((got.get('fd') or {}).get('read_head'), 'the old one', 'the old entry is still there, unchanged')


def test_a_replace_whose_reopening_would_wait_keeps_the_old_entry(t, bus, alice):
    keep_entry(t, alice)
    path = os.path.join(bus.scratch, 'rw-%d' % os.getpid())
    t.success(alice.fd_new('rw', {'type': 'file', 'path': path, 'data': 'new', 'mode': 'rw'}),
              'Alice opens her own file read-write')
    t.success(alice.req('fd_lease', handle='rw', type='w'), 'and leases it')
    res = alice.deposit('pe/keep', {'handle': 'rw'}, replace=True, access='read-only')
    t.error(res, E_BUSY, 'replace with access=read-only of a leased file is Busy (the reopening would wait)',
            ['pe/keep'])
    got = alice.retrieve('pe/keep')
    t.eq((got.get('fd') or {}).get('read_head'), 'the old one', 'the old entry is still there')
    alice.req('fd_lease', handle='rw', type='none')
    t.success(alice.deposit('pe/keep', {'handle': 'rw'}, replace=True, access='read-only'),
              'without the lease the same replace works')
    got = alice.retrieve('pe/keep')
    t.eq(((got.get('fd') or {}).get('read_head'), (got.get('info') or {}).get('access')), ('new', 'read-only'),
         'and the new, read-only entry replaced the old one')


def test_a_depositmany_naming_an_existing_entry_is_exists_and_stores_nothing(t, alice):
    keep_entry(t, alice)
    t.error(alice.deposit_many({'pe/x1': 0, 'pe/keep': 1}, [memfd('x1'), memfd('x2')]), E_EXISTS,
            'DepositMany naming an existing entry without replace is Exists')
    nothing_stored(t, alice, ['pe/x1'], 'Exists')
    got = alice.retrieve('pe/keep')
    t.eq((got.get('fd') or {}).get('read_head'), 'the old one', 'pe/keep is unchanged')
