#!/usr/bin/python3
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
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_BUSY, E_EXISTS, E_NOT_FOUND, E_NOT_SUPPORTED, memfd  # noqa: E402


def seals(c, handle):
    return (c.fd_facts(handle).get('fd') or {}).get('seals')


def body(t):
    bus, users = harness.setup(t, need_users=True)
    alice = bus.client(users['alice'])

    def fresh(*handles):
        for h in handles:
            alice.fd_close(h)
            t.success(alice.fd_new(h, memfd('data of ' + h)), 'Alice makes memfd %s' % h)

    def nothing_stored(names, what):
        for n in names:
            t.error(alice.retrieve(n), E_NOT_FOUND, '%s: %s was not stored' % (what, n))

    # A memfd that cannot be sealed at all is found by the plan: none sealed.
    fresh('a1', 'a3')
    alice.fd_close('a2')
    t.success(alice.fd_new('a2', memfd('no sealing', sealing=False)), 'a2 is a memfd without MFD_ALLOW_SEALING')
    res = alice.deposit_many({'pe/a1': 0, 'pe/a2': 1, 'pe/a3': 2},
                             [{'handle': 'a1'}, {'handle': 'a2'}, {'handle': 'a3'}], seal=True)
    t.error(res, E_NOT_SUPPORTED, 'DepositMany seal with an unsealable 2nd memfd is NotSupported', ['pe/a2'])
    t.eq([seals(alice, h) for h in ('a1', 'a2', 'a3')], [0, 1, 0],
         'no memfd of the refused call was sealed (a2 carries only the F_SEAL_SEAL it was made with)')
    nothing_stored(['pe/a1', 'pe/a2', 'pe/a3'], 'unsealable')

    # A writable shared mapping on the 1st memfd: nothing sealed.
    fresh('b1', 'b2')
    t.success(alice.req('mmap_keep', handle='b1'), 'Alice maps b1 writable and shared')
    res = alice.deposit_many({'pe/b1': 0, 'pe/b2': 1}, [{'handle': 'b1'}, {'handle': 'b2'}], seal=True)
    t.error(res, E_BUSY, 'DepositMany seal with a mapped 1st memfd is Busy, naming it', ['pe/b1', 'unmap'])
    t.eq([seals(alice, h) for h in ('b1', 'b2')], [0, 0], 'neither memfd was sealed')
    nothing_stored(['pe/b1', 'pe/b2'], 'mapped 1st')
    alice.req('munmap', handle='b1')

    # A writable shared mapping on the 2nd memfd: the 1st is sealed (no
    # test short of sealing exists), the 2nd and 3rd are not; the message
    # says so, and nothing is stored.
    fresh('c1', 'c2', 'c3')
    t.success(alice.req('mmap_keep', handle='c2'), 'Alice maps c2 writable and shared')
    res = alice.deposit_many({'pe/c1': 0, 'pe/c2': 1, 'pe/c3': 2},
                             [{'handle': 'c1'}, {'handle': 'c2'}, {'handle': 'c3'}], seal=True)
    t.error(res, E_BUSY, 'DepositMany seal with a mapped 2nd memfd is Busy, naming it and what was sealed',
            ['pe/c2', 'before it were sealed'])
    got = [seals(alice, h) for h in ('c2', 'c3')]
    t.eq(got, [0, 0], 'the mapped memfd and the one after it were not sealed')
    t.diag('seals of c1 (listed before the mapped one): %r' % seals(alice, 'c1'))
    nothing_stored(['pe/c1', 'pe/c2', 'pe/c3'], 'mapped 2nd')
    alice.req('munmap', handle='c2')

    # replace: the old entry stays when the new deposit is refused.
    t.success(alice.deposit('pe/keep', memfd('the old one')), 'Alice deposits pe/keep')
    fresh('d1')
    t.success(alice.req('mmap_keep', handle='d1'), 'and maps a new memfd writable')
    t.error(alice.deposit('pe/keep', {'handle': 'd1'}, replace=True, seal=True), E_BUSY,
            'replace with a seal that fails is Busy')
    got = alice.retrieve('pe/keep')
    t.eq((got.get('fd') or {}).get('read_head'), 'the old one', 'the old entry is still there, unchanged')
    alice.req('munmap', handle='d1')

    # replace whose reopening fails on the worker: the old entry stays.
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

    # Exists is checked again at commit: a name taken meanwhile is refused.
    t.error(alice.deposit_many({'pe/x1': 0, 'pe/keep': 1}, [memfd('x1'), memfd('x2')]), E_EXISTS,
            'DepositMany naming an existing entry without replace is Exists')
    nothing_stored(['pe/x1'], 'Exists')


if __name__ == '__main__':
    harness.main(body)
