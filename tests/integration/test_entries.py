# SPDX-License-Identifier: LGPL-2.1-or-later
"""Deposit and Retrieve between users: allow subjects, once, replace,
description, timeout, lifetime, info keys and List."""

import time

import pytest

import harness
from harness import (E_EXISTS, E_INVALID_ARGS, E_NOT_FOUND, E_NOT_SUPPORTED,
                     memfd, poll_until)

INFO_TYPES = {
    'kind': 's', 'size': 't', 'owner-uid': 'u', 'access': 's', 'sealed': 'b',
    'lifetime': 's', 'description': 's', 'created-usec': 't', 'expires-usec': 't',
}


def now_usec():
    return time.clock_gettime_ns(time.CLOCK_REALTIME) // 1000



def test_a_memfd_deposited_for_bob_reaches_bob_with_its_bytes_and_info(t, users, alice, bob, carol, root):
    before = now_usec()
    r = alice.deposit('acl/user', memfd(random=1 << 20), allow=['user:fdbtest-bob'])
    after = now_usec()
    t.success(r, 'alice deposits a 1 MiB memfd for user:fdbtest-bob')
    sha = r['made']['sha256']
    r = bob.retrieve('acl/user')
    t.success(r, 'bob retrieves acl/user')
    f = r.get('fd', {})
    t.eq(f.get('read_sha256'), sha, 'bob reads the same bytes (sha256 via pread)')
    t.eq(f.get('mmap_read_sha256'), sha, 'bob maps the same bytes (sha256 via mmap)')
    t.ok(f.get('memfd') and f.get('size') == 1 << 20, 'bob\'s fd is a memfd of 1 MiB', f)
    info, types = r.get('info', {}), r.get('info_types', {})
    t.eq(types, INFO_TYPES, 'info of a memfd has every key with its type')
    t.eq((info.get('kind'), info.get('size'), info.get('owner-uid'), info.get('access'),
          info.get('sealed'), info.get('lifetime'), info.get('description'),
          info.get('expires-usec')),
         ('memfd', 1 << 20, users['alice']['uid'], 'read-write', False, 'connection', '', 0),
         'info: kind memfd, size, owner alice, read-write, unsealed, connection, no description, never expires')
    c = info.get('created-usec', 0)
    t.ok(before - 1000000 <= c <= after + 1000000, 'info created-usec is the deposit time (CLOCK_REALTIME)',
         {'before': before, 'created': c, 'after': after})
    r = carol.retrieve('acl/user')
    t.error(r, E_NOT_FOUND, 'carol (not allowed) gets NotFound naming the entry', ['acl/user'])
    hidden_msg = (r.get('message') or '').replace('acl/user', 'NAME')
    r = carol.retrieve('acl/never-deposited')
    t.error(r, E_NOT_FOUND, 'Retrieve of a missing entry is NotFound naming the entry',
            ['acl/never-deposited'])
    t.eq(hidden_msg, (r.get('message') or '').replace('acl/never-deposited', 'NAME'),
         'NotFound for a hidden entry reads like the one for a missing entry')
    t.success(root.retrieve('acl/user'), 'root retrieves alice\'s entry')
    t.success(alice.retrieve('acl/user'), 'the owner retrieves her own entry')


def test_without_allow_only_the_owner_and_root_may_retrieve(t, alice, bob, root):
    t.success(alice.deposit('acl/private', memfd('private')), 'alice deposits acl/private (no allow)')
    t.error(bob.retrieve('acl/private'), E_NOT_FOUND, 'by default only the owner: bob gets NotFound')
    t.success(root.retrieve('acl/private'), 'root may retrieve an owner-only entry')


SUBJECTS = [
    # (entry, allow subject, may retrieve, gets NotFound)
    ('acl/uid', 'uid:{bob}', ['bob'], ['carol']),
    ('acl/group', 'group:fdbtest-video', ['bob', 'alice'], ['carol']),
    ('acl/gid', 'gid:{video}', ['bob'], ['carol']),
    ('acl/everyone', 'everyone', ['bob', 'carol'], []),
    ('acl/label', 'label:fdbtest_no_such_label_t', [], ['bob', 'carol']),
]


@pytest.mark.parametrize('name,subject,yes,no', SUBJECTS, ids=[s[0].split('/')[1] for s in SUBJECTS])
def test_an_allow_subject_grants_exactly_the_callers_it_names(t, request, users, alice, name, subject, yes, no):
    subj = subject.format(bob=users['bob']['uid'], video=users['video'])
    r = alice.deposit(name, memfd('subject ' + subj), allow=[subj])
    t.success(r, 'alice deposits %s allowing %s' % (name, subj))
    for who in yes:
        r = request.getfixturevalue(who).retrieve(name)
        t.ok(r.get('ok') and r['fd'].get('read_head') == 'subject ' + subj,
             '%s: %s may retrieve and reads the bytes' % (subj, who), r)
    for who in no:
        t.error(request.getfixturevalue(who).retrieve(name), E_NOT_FOUND, '%s: %s gets NotFound' % (subj, who))


def test_any_one_of_two_subjects_grants(t, users, alice, bob, carol):
    r = alice.deposit('acl/two', memfd('two'), allow=['user:fdbtest-carol', 'uid:%d' % users['bob']['uid']])
    t.success(r, 'alice deposits acl/two allowing user:fdbtest-carol and uid:bob')
    t.success(bob.retrieve('acl/two'), 'any one subject matches: bob')
    t.success(carol.retrieve('acl/two'), 'any one subject matches: carol')


def test_groups_come_from_the_connection_not_the_group_database(t, bus, users, alice):
    # bob's process without fdbtest-video among its groups: the bus reports
    # the connection's groups, and the group database must not be consulted.
    B = users['bob']
    t.success(alice.deposit('acl/group', memfd('g'), allow=['group:fdbtest-video']),
              'alice deposits acl/group allowing group:fdbtest-video')
    t.success(alice.deposit('acl/uid', memfd('u'), allow=['uid:%d' % B['uid']]),
              'alice deposits acl/uid allowing uid:bob')
    bob_nogroup = bus.client(B, groups=[B['gid']])
    try:
        t.error(bob_nogroup.retrieve('acl/group'), E_NOT_FOUND,
                'group:fdbtest-video is not granted to a bob process not in that group')
        t.success(bob_nogroup.retrieve('acl/uid'), 'the same process is granted uid:bob')
    finally:
        bob_nogroup.close()


def test_a_once_entry_is_consumed_by_its_first_successful_retrieve(t, alice, bob, carol):
    t.success(alice.deposit('once/a', memfd('hand-off'), once=True, allow=['user:fdbtest-bob']),
              'alice deposits once/a with once')
    t.error(carol.retrieve('once/a'), E_NOT_FOUND, 'once: carol (not allowed) gets NotFound')
    r = bob.retrieve('once/a')
    t.ok(r.get('ok') and r['fd'].get('read_head') == 'hand-off',
         'once: a failed retrieval did not consume it; bob gets it', r)
    t.error(bob.retrieve('once/a'), E_NOT_FOUND, 'once: a second Retrieve is NotFound')
    t.error(alice.retrieve('once/a'), E_NOT_FOUND, 'once: gone for the owner too')
    t.eq(alice.names('once/'), [], 'once: gone from List')

    t.success(alice.deposit('once/sock', {'type': 'socket'}, once=True, allow=['user:fdbtest-bob']),
              'alice deposits a socket with once')
    t.error(bob.retrieve('once/sock', access='read-only'), E_NOT_SUPPORTED,
            'once: read-only Retrieve of a socket is NotSupported')
    t.success(bob.retrieve('once/sock'), 'once: the refused Retrieve did not consume it')
    t.error(bob.retrieve('once/sock'), E_NOT_FOUND, 'once: then it is gone')


def test_replace_swaps_only_the_callers_own_entry(t, bus, users, alice, bob):
    t.success(alice.deposit('rep/a', memfd('one'), allow=['user:fdbtest-bob']), 'alice deposits rep/a')
    n = bus.entry_count()
    t.error(alice.deposit('rep/a', memfd('two')), E_EXISTS,
            'a second Deposit without replace is Exists naming the entry', ['rep/a'])
    t.eq(bob.retrieve('rep/a').get('fd', {}).get('read_head'), 'one', 'the refused deposit left the old bytes')
    r = alice.deposit('rep/a', memfd('two'), replace=True, allow=['user:fdbtest-bob'])
    t.success(r, 'alice replaces her own rep/a')
    t.eq(bob.retrieve('rep/a').get('fd', {}).get('read_head'), 'two', 'after replace bob reads the new bytes')
    t.eq(bus.entry_count(), n, 'replace does not change EntryCount')
    t.error(bob.deposit('rep/a', memfd('bob'), replace=True), E_EXISTS,
            'replace of someone else\'s entry is Exists')
    t.error(bob.deposit('rep/a', memfd('bob')), E_EXISTS, 'Deposit over someone else\'s entry is Exists')
    t.error(alice.deposit('rep/a', {'type': 'file', 'path': 'rep-file', 'data': 'three'},
                          replace=True, seal=True), E_NOT_SUPPORTED,
            'a replace that fails (seal on a regular file) is refused')
    r = bob.retrieve('rep/a')
    t.ok(r.get('ok') and r['fd'].get('read_head') == 'two' and r['info'].get('owner-uid') == users['alice']['uid'],
         'a failed or refused replace leaves the old entry', r)
    t.success(alice.deposit('rep/new', memfd('fresh'), replace=True), 'replace of a name that does not exist deposits it')


def test_a_description_of_up_to_1024_bytes_comes_back(t, bus, alice):
    text = 'camera 0, NV12 1920x1080 — ünïcödé'
    t.success(alice.deposit('desc/a', memfd('d'), description=text), 'deposit with a description')
    r = alice.retrieve('desc/a')
    t.eq(r.get('info', {}).get('description'), text, 'description comes back in Retrieve info')
    lst = alice.list(prefix='desc/')
    t.eq([e['info'].get('description') for e in lst.get('entries', [])], [text],
         'description comes back in List')
    long_ok = 'd' * 1024
    t.success(alice.deposit('desc/1024', memfd('d'), description=long_ok), 'a 1024-byte description is accepted')
    t.eq(alice.retrieve('desc/1024').get('info', {}).get('description'), long_ok, '1024-byte description round trip')
    n = harness.state(bus, alice, 'desc/')
    t.error(alice.deposit('desc/1025', memfd('d'), description='d' * 1025), E_INVALID_ARGS,
            'a 1025-byte description is InvalidArgs naming the option', ['description'])
    t.eq(harness.state(bus, alice, 'desc/'), n, 'the refused deposit stored nothing')


def test_an_entry_expires_after_its_timeout(t, bus, alice):
    r = alice.deposit('to/long', memfd('t'), **{'timeout-usec': 60 * 1000000})
    t.success(r, 'deposit with timeout-usec 60 s')
    info = alice.retrieve('to/long').get('info', {})
    delta = info.get('expires-usec', 0) - info.get('created-usec', 0)
    t.ok(abs(delta - 60 * 1000000) <= 10000, 'expires-usec is created-usec + timeout-usec',
         {'info': info, 'delta': delta})
    n = bus.entry_count()
    t.success(alice.deposit('to/short', memfd('t'), **{'timeout-usec': 200000}),
              'deposit with timeout-usec 200 ms')
    gone = poll_until(lambda: not alice.retrieve('to/short').get('ok'), timeout=30)
    t.ok(gone, 'the entry is gone after its timeout')
    r = alice.retrieve('to/short')
    t.error(r, E_NOT_FOUND, 'an expired entry is NotFound')
    t.eq(bus.entry_count(), n, 'EntryCount drops when an entry expires')
    t.success(alice.retrieve('to/long'), 'an entry with a long timeout is still there')


def test_connection_entries_end_with_the_depositor_persistent_ones_stay(t, bus, users, alice, bob, root):
    A = users['alice']
    a2 = bus.client(A)
    t.success(a2.deposit('lt/conn', memfd('c'), allow=['everyone']), 'deposit with the default lifetime')
    t.success(a2.deposit('lt/conn2', {'type': 'socket'}, lifetime='connection'), 'deposit with lifetime connection')
    t.success(a2.deposit('lt/pers', memfd('p'), lifetime='persistent', allow=['everyone']),
              'deposit with lifetime persistent')
    t.eq(alice.retrieve('lt/conn').get('info', {}).get('lifetime'), 'connection', 'info lifetime connection')
    t.eq(alice.retrieve('lt/pers').get('info', {}).get('lifetime'), 'persistent', 'info lifetime persistent')
    t.eq(root.names('lt/'), ['lt/conn', 'lt/conn2', 'lt/pers'], 'root lists the three lt/ entries')
    a2.close()
    gone = poll_until(lambda: root.names('lt/') == ['lt/pers'], timeout=30)
    t.ok(gone, 'connection entries are removed when the depositor disconnects', root.names('lt/'))
    t.error(bob.retrieve('lt/conn'), E_NOT_FOUND, 'a removed connection entry is NotFound')
    r = bob.retrieve('lt/pers')
    t.ok(r.get('ok') and r['fd'].get('read_head') == 'p' and r['info'].get('owner-uid') == A['uid'],
         'the persistent entry outlives its depositor\'s connection', r)
    t.success(alice.remove('lt/pers'), 'alice (same uid, new connection) removes the persistent entry')

    a3 = bus.client(A)
    t.success(a3.deposit('lt/killed', memfd('k')), 'a client deposits lt/killed')
    a3.kill()
    t.ok(poll_until(lambda: root.names('lt/') == [], timeout=30),
         'connection entries are removed when the depositor is killed', root.names('lt/'))


def test_list_shows_each_caller_what_it_owns_or_may_retrieve(t, users, alice, bob, carol, root):
    A, B = users['alice'], users['bob']
    t.success(alice.deposit('acl/user', memfd('u'), allow=['user:fdbtest-bob']), 'alice deposits acl/user for bob')
    t.success(alice.deposit('ls/a1', memfd('a1')), 'alice deposits ls/a1 (owner only)')
    t.success(alice.deposit('ls/a2', {'type': 'file', 'path': 'ls-a2', 'data': 'a2'},
                            allow=['user:fdbtest-bob']), 'alice deposits ls/a2 (regular file, for bob)')
    t.success(bob.deposit('ls/b1', {'type': 'socket'}), 'bob deposits ls/b1 (owner only)')
    t.success(root.deposit('ls/r1', {'type': 'pipe'}, allow=['everyone']), 'root deposits ls/r1 (everyone)')
    t.eq(alice.names('ls/'), ['ls/a1', 'ls/a2', 'ls/r1'], 'alice lists her own and retrievable entries, sorted')
    t.eq(bob.names('ls/'), ['ls/a2', 'ls/b1', 'ls/r1'], 'bob lists his own and retrievable entries, sorted')
    t.eq(carol.names('ls/'), ['ls/r1'], 'carol lists only what she may retrieve')
    t.eq(root.names('ls/'), ['ls/a1', 'ls/a2', 'ls/b1', 'ls/r1'], 'root lists all entries')
    t.eq(alice.names('nomatch/'), [], 'a prefix that matches nothing lists nothing')
    everything = alice.names()
    t.ok(set(['ls/a1', 'ls/a2', 'ls/r1', 'acl/user']) <= set(everything) and 'ls/b1' not in everything,
         'List without a filter lists every visible entry', everything)
    r = bob.list(prefix='ls/')
    by = {e['name']: e for e in r.get('entries', [])}
    e = by.get('ls/a2', {})
    t.eq(e.get('info_types'), INFO_TYPES, 'List info of a regular file has every key with its type')
    t.eq((e.get('info', {}).get('kind'), e.get('info', {}).get('size'), e.get('info', {}).get('owner-uid')),
         ('regular', 2, A['uid']), 'List info of ls/a2: regular, size 2, owner alice')
    e = by.get('ls/b1', {})
    types = e.get('info_types', {})
    t.eq({k: v for k, v in types.items() if k != 'size'}, {k: v for k, v in INFO_TYPES.items() if k != 'size'},
         'List info of a socket has every key (size aside) with its type')
    t.eq((e.get('info', {}).get('kind'), e.get('info', {}).get('owner-uid')), ('socket', B['uid']),
         'List info of ls/b1: socket, owner bob')
    e = by.get('ls/r1', {})
    t.eq((e.get('info', {}).get('kind'), e.get('info', {}).get('owner-uid')), ('fifo', 0),
         'List info of ls/r1: fifo (a pipe), owner root')
