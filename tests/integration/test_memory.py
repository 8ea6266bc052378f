# SPDX-License-Identifier: LGPL-2.1-or-later
"""CreateMemory (and MaxMemorySize), Remove, OpenPath."""

import harness
from harness import (E_ACCESS_DENIED, E_EXISTS, E_INVALID_ARGS, E_NOT_FOUND,
                     E_QUOTA, memfd)

GiB = 1 << 30
MiB = 1 << 20


def test_creatememory_makes_a_shared_size_sealed_memfd_entry(t, bus, users, alice, bob, carol):
    r = alice.create_memory('mem/a', 65536, write={'pattern': 65536}, allow=['user:fdbtest-bob'],
                            description='frame')
    t.success(r, 'alice CreateMemory mem/a, 64 KiB, for bob')
    f = r.get('fd', {})
    t.eq((f.get('memfd'), f.get('size'), f.get('accmode')), (True, 65536, 'read-write'),
         'CreateMemory hands back a read-write memfd of the size')
    t.eq(f.get('seals'), 4 | 2, 'the memfd is sealed against growing and shrinking (F_SEAL_GROW|F_SEAL_SHRINK, '
         'SPEC 1), and not F_SEAL_SEAL: it may be sealed further')
    t.ok('sha256' in r.get('written', {}), 'alice writes into it', r.get('written'))
    g = bob.retrieve('mem/a')
    t.eq(g.get('fd', {}).get('read_sha256'), r.get('written', {}).get('sha256'),
         'bob sees the bytes alice wrote through the CreateMemory fd')
    i = g.get('info', {})
    t.eq((i.get('kind'), i.get('size'), i.get('owner-uid'), i.get('description')),
         ('memfd', 65536, users['alice']['uid'], 'frame'), 'info: memfd, size, owner alice, description')
    t.error(carol.retrieve('mem/a'), E_NOT_FOUND, 'CreateMemory applies allow: carol NotFound')
    t.error(alice.create_memory('mem/a', 4096), E_EXISTS, 'CreateMemory of an existing name is Exists', ['mem/a'])

    before = harness.state(bus, alice, 'mem/')
    for size, what in ((0, 'size 0'), (1 << 63, 'size 2^63'), (GiB + 1, 'size MaxMemorySize+1')):
        t.error(alice.create_memory('mem/bad', size), E_INVALID_ARGS,
                'CreateMemory with %s is InvalidArgs naming the size' % what, ['size'])
    t.eq(harness.state(bus, alice, 'mem/'), before, 'refused CreateMemory calls store nothing')


def test_creatememory_is_held_to_maxmemorysize_in_all(t, bus, users, alice, bob, root):
    # root is held to MaxMemorySize in all (users get fair shares of
    # what is left; tests/hostile/test_memory_share.py).
    r = root.create_memory('big/1', GiB - MiB)
    t.success(r, 'root CreateMemory of 1 GiB - 1 MiB')
    before = harness.state(bus, root, 'big/')
    t.error(root.create_memory('big/2', 2 * MiB), E_QUOTA,
            'CreateMemory past MaxMemorySize in all is QuotaExceeded')
    t.error(bob.create_memory('big/2', 2 * MiB), E_QUOTA, 'the memory limit is global: bob QuotaExceeded too')
    t.eq(harness.state(bus, root, 'big/'), before, 'refused CreateMemory stored nothing')
    t.success(alice.create_memory('big/small', MiB // 8), 'what is left below the limit can still be created')
    t.success(root.remove('big/1'), 'remove big/1')
    t.success(alice.create_memory('big/2', 2 * MiB), 'after Remove the memory is available again')
    t.success(alice.deposit('big/own-memfd', memfd(size=2 * GiB)),
              'a caller\'s own 2 GiB memfd is not counted against MaxMemorySize')
    for n in ('big/small', 'big/2', 'big/own-memfd'):
        alice.remove(n)


def test_remove_is_for_the_owner_and_root_only(t, bus, alice, bob, carol, root):
    for n in ('rm/1', 'rm/2', 'rm/3'):
        t.success(alice.deposit(n, memfd(n), allow=['user:fdbtest-bob']), 'alice deposits %s for bob' % n)
    t.success(alice.remove('rm/1'), 'the owner removes her entry')
    t.error(bob.retrieve('rm/1'), E_NOT_FOUND, 'a removed entry is NotFound')
    t.success(root.remove('rm/2'), 'root removes alice\'s entry')
    t.error(alice.retrieve('rm/2'), E_NOT_FOUND, 'the entry root removed is gone')
    n = bus.entry_count()
    t.error(bob.remove('rm/3'), E_ACCESS_DENIED,
            'Remove by a user who may retrieve but does not own it is AccessDenied')
    t.error(carol.remove('rm/3'), E_NOT_FOUND,
            'Remove by a user who may not see it is NotFound naming the entry', ['rm/3'])
    t.eq(bus.entry_count(), n, 'refused Remove calls change nothing')
    t.success(bob.retrieve('rm/3'), 'rm/3 is still there')
    t.error(alice.remove('rm/never'), E_NOT_FOUND, 'Remove of a missing entry is NotFound naming it', ['rm/never'])
    t.success(alice.remove('rm/3'), 'the owner removes rm/3')


def test_openpath_without_policy_is_refused_and_checks_its_arguments(t, alice, root):
    for who, c in (('alice', alice), ('root', root)):
        r = c.open_path('/etc/passwd')
        t.error(r, E_ACCESS_DENIED, 'OpenPath by %s is AccessDenied with no policy, saying so' % who,
                [('policy', 'polkit')])
    t.error(alice.open_path('etc/passwd'), E_INVALID_ARGS, 'OpenPath of a relative path is InvalidArgs')
    t.error(alice.open_path('/etc/../etc/passwd'), E_INVALID_ARGS, 'OpenPath of a path with .. is InvalidArgs')
    t.error(alice.open_path('/etc/passwd', bogus=True), E_INVALID_ARGS,
            'OpenPath with an unknown option is InvalidArgs naming it', ['bogus'])
