# SPDX-License-Identifier: LGPL-2.1-or-later
"""DepositMany and RetrieveMany: all or nothing, at most 16 names."""

import harness
from harness import (E_EXISTS, E_INVALID_ARGS, E_NOT_FOUND, E_NOT_SUPPORTED,
                     memfd)


def test_depositmany_and_retrievemany_move_several_entries_with_shared_options(t, alice, bob, carol):
    specs = [memfd(pattern=1000 + i, seed='m%d' % i) for i in range(3)]
    r = alice.deposit_many({'many/a': 0, 'many/b': 1, 'many/c': 2}, specs, allow=['user:fdbtest-bob'])
    t.success(r, 'DepositMany of three memfds for bob')
    shas = [m['sha256'] for m in r.get('made', [{}] * 3)]
    g = bob.retrieve_many(['many/a', 'many/b', 'many/c'])
    t.success(g, 'bob RetrieveMany of the three')
    fds = g.get('fds', {})
    t.eq([fds.get(n, {}).get('read_sha256') for n in ('many/a', 'many/b', 'many/c')], shas,
         'RetrieveMany hands back each entry\'s own bytes')
    t.eq(g.get('n_fds'), 3, 'RetrieveMany sends one fd per name')
    g = bob.retrieve_many(['many/a', 'many/b'], access='read-only')
    t.eq(sorted(f.get('accmode') for f in g.get('fds', {}).values()), ['read-only'] * 2,
         'RetrieveMany options apply to every fd (access=read-only)')
    t.error(carol.retrieve_many(['many/a']), E_NOT_FOUND, 'the allow option applied to every entry: carol NotFound')

    r = alice.deposit_many({'many/s1': 0, 'many/s2': 0}, [memfd('shared')])
    t.success(r, 'DepositMany may map two names to one fd index')
    g = alice.retrieve_many(['many/s1', 'many/s2'])
    f = g.get('fds', {})
    t.eq([f.get(n, {}).get('read_head') for n in ('many/s1', 'many/s2')], ['shared', 'shared'],
         'both names hand back the same file')
    r = alice.deposit_many({'many-once/o1': 0, 'many-once/o2': 1}, [memfd('o1'), memfd('o2')],
                           once=True, description='batch', **{'timeout-usec': 600000000})
    t.success(r, 'DepositMany with once, description and timeout-usec')
    lst = {e['name']: e['info'] for e in alice.list(prefix='many-once/').get('entries', [])}
    t.eq(sorted((n, i.get('description'), i.get('expires-usec', 0) > 0) for n, i in lst.items()),
         [('many-once/o1', 'batch', True), ('many-once/o2', 'batch', True)], 'the options apply to every entry')
    g = alice.retrieve_many(['many-once/o1', 'many-once/o2'])
    t.success(g, 'RetrieveMany of two once entries')
    t.eq(alice.names('many-once/'), [], 'RetrieveMany consumed both once entries')


def test_depositmany_stores_all_or_nothing(t, bus, alice):
    before = harness.state(bus, alice, 'aon/')
    r = alice.deposit_many({'aon/a': 0, 'aon/b': 1, 'aon//bad': 2}, [memfd('a'), memfd('b'), memfd('c')])
    t.error(r, E_INVALID_ARGS, 'DepositMany with one bad name is InvalidArgs naming it', [('aon//bad', 'name')])
    t.eq(harness.state(bus, alice, 'aon/'), before, 'DepositMany with one bad name stored none')

    t.success(alice.deposit('aon/taken', memfd('old')), 'alice deposits aon/taken')
    before = harness.state(bus, alice, 'aon/')
    r = alice.deposit_many({'aon/a': 0, 'aon/taken': 1, 'aon/z': 2}, [memfd('a'), memfd('new'), memfd('z')])
    t.error(r, E_EXISTS, 'DepositMany with one existing name is Exists naming it', ['aon/taken'])
    t.eq(harness.state(bus, alice, 'aon/'), before, 'DepositMany with one existing name stored none')
    t.eq(alice.retrieve('aon/taken').get('fd', {}).get('read_head'), 'old', 'the existing entry is untouched')

    t.success(alice.fd_new('m', memfd('seal me')), 'make a memfd')
    before = harness.state(bus, alice, 'aon/')
    r = alice.deposit_many({'aon/m': 0, 'aon/f': 1},
                           [{'handle': 'm'}, {'type': 'file', 'path': 'aon-file', 'data': 'f'}], seal=True)
    t.error(r, E_NOT_SUPPORTED, 'DepositMany with seal and a regular file is NotSupported')
    t.eq(harness.state(bus, alice, 'aon/'), before, 'the refused DepositMany stored none')
    t.eq(alice.fd_facts('m').get('fd', {}).get('seals'), 0, 'and did not seal the memfd it carried')
    alice.fd_close('m')

    before = harness.state(bus, alice, 'aon/')
    r = alice.raw('DepositMany', '(a{sh}a{sv})', [{'aon/idx': 5}, {}], fds=[memfd('i')])
    t.ok(not r.get('ok'), 'DepositMany with an fd index beyond the message\'s fds is refused', r)
    t.eq(harness.state(bus, alice, 'aon/'), before, 'and stores nothing')


def test_many_calls_take_at_most_16_names(t, bus, alice, bob):
    names = {'sixteen/%02d' % i: i for i in range(16)}
    specs = [memfd(pattern=64, seed='s%d' % i) for i in range(16)]
    r = alice.deposit_many(names, specs, allow=['user:fdbtest-bob'])
    t.success(r, 'DepositMany of 16 names with 16 fds')
    shas = {n: r.get('made', [{}] * 16)[i].get('sha256') for n, i in names.items()}
    g = bob.retrieve_many(sorted(names))
    t.eq({n: f.get('read_sha256') for n, f in g.get('fds', {}).items()}, shas,
         'RetrieveMany of 16 names hands back 16 fds with their bytes')

    before = harness.state(bus, alice, 'seventeen/')
    r = alice.deposit_many({'seventeen/%02d' % i: 0 for i in range(17)}, [memfd('x')])
    t.error(r, E_INVALID_ARGS, 'DepositMany of 17 names (one fd) is InvalidArgs')
    t.eq(harness.state(bus, alice, 'seventeen/'), before, 'and stores none')
    r = bob.retrieve_many(sorted(names) + ['sixteen/missing'])
    t.error(r, E_INVALID_ARGS, 'RetrieveMany of 17 names is InvalidArgs')


def test_retrievemany_hands_back_all_or_nothing_and_consumes_nothing_on_failure(t, alice, bob, carol):
    t.success(alice.deposit('rm/once', memfd('once'), once=True, allow=['user:fdbtest-bob']),
              'alice deposits rm/once (once, for bob)')
    t.success(alice.deposit('rm/plain', memfd('plain'), allow=['user:fdbtest-bob']), 'alice deposits rm/plain')
    t.success(carol.deposit('rm/carol', memfd('carol')), 'carol deposits rm/carol (owner only)')
    r = bob.retrieve_many(['rm/once', 'rm/plain', 'rm/missing'])
    t.error(r, E_NOT_FOUND, 'RetrieveMany with one missing name is NotFound naming it', ['rm/missing'])
    r = bob.retrieve_many(['rm/once', 'rm/carol'])
    t.error(r, E_NOT_FOUND, 'RetrieveMany with one entry the caller may not retrieve is NotFound')
    r = bob.retrieve_many(['rm/once', 'rm//bad'])
    t.error(r, E_INVALID_ARGS, 'RetrieveMany with one bad name is InvalidArgs')
    r = bob.retrieve_many(['rm/once', 'rm/missing'], **{'wait-usec': 100000})
    t.error(r, E_NOT_FOUND, 'RetrieveMany with wait-usec and a missing name is NotFound')
    r = bob.retrieve('rm/once')
    t.ok(r.get('ok') and r['fd'].get('read_head') == 'once', 'the failed RetrieveMany calls consumed no once entry', r)
