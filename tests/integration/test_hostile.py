# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile input: bad names, unknown option keys, wrong option types, bad
allow subjects, access and lifetime values. Each is InvalidArgs with a
message naming the bad thing, and changes nothing."""

import pytest

import harness
from harness import E_INVALID_ARGS, V, memfd

BAD_NAMES = [
    ('empty', ''),
    ('256 bytes', 'n' * 256),
    ('leading /', '/abs'),
    ('trailing /', 'dir/'),
    ('only /', '/'),
    ('//', 'a//b'),
    ('.', '.'),
    ('..', '..'),
    ('. component', 'a/./b'),
    ('.. component', 'a/../b'),
    ('trailing .. component', 'a/..'),
    ('space', 'a b'),
    ('*', 'cam*'),
    ('?', 'cam?'),
    ('backslash', 'a\\b'),
    ('tab', 'a\tb'),
    ('newline', 'a\nb'),
    ('comma', 'a,b'),
    ('non-ASCII', 'caméra'),
]

GOOD_NAMES = [
    ('255 bytes', 'g' * 255),
    ('every allowed character', 'Az09_.:@-/x'),
    ('... component', 'x/...'),
    ('dotted component', 'x/.hidden'),
]


DEPOSIT_CASES = [
    ('unknown key', {'no-such-option': True}, ['no-such-option']),
    ('seal as s', {'seal': 'yes'}, ['seal']),
    ('allow as s', {'allow': 'everyone'}, ['allow']),
    ('timeout-usec as u', {'timeout-usec': V('u', 5)}, ['timeout-usec']),
    ('once as s', {'once': V('s', 'true')}, ['once']),
    ('replace as i', {'replace': V('i', 1)}, ['replace']),
    ('description as as', {'description': V('as', ['x'])}, ['description']),
    ('access as b', {'access': V('b', True)}, ['access']),
    ('lifetime as u', {'lifetime': V('u', 1)}, ['lifetime']),
    ('access read-write (deposit takes only read-only)', {'access': 'read-write'}, ['access']),
    ('access READ-ONLY', {'access': 'READ-ONLY'}, ['access']),
    ('access empty', {'access': ''}, ['access']),
    ('lifetime forever', {'lifetime': 'forever'}, [('lifetime', 'forever')]),
    ('lifetime empty', {'lifetime': ''}, ['lifetime']),
    ('timeout-usec 0', {'timeout-usec': 0}, ['timeout-usec']),
    ('description of 1025 bytes', {'description': 'd' * 1025}, ['description']),
    ('allow user:nonexistent-user-xyz', {'allow': ['user:nonexistent-user-xyz']}, ['nonexistent-user-xyz']),
    ('allow group:nonexistent-group-xyz', {'allow': ['group:nonexistent-group-xyz']}, ['nonexistent-group-xyz']),
    ('allow uid:abc', {'allow': ['uid:abc']}, ['uid:abc']),
    ('allow uid:-1', {'allow': ['uid:-1']}, ['uid:-1']),
    ('allow uid:4294967296', {'allow': ['uid:4294967296']}, ['uid:4294967296']),
    ('allow gid:', {'allow': ['gid:']}, ['gid:']),
    ('allow gid:12x', {'allow': ['gid:12x']}, ['gid:12x']),
    ('allow bogus:x', {'allow': ['bogus:x']}, ['bogus:x']),
    ('allow user:', {'allow': ['user:']}, ['user:']),
    ('allow empty subject', {'allow': ['']}, [('allow', 'subject')]),
    ('allow everyone-ish', {'allow': ['everyone:x']}, ['everyone:x']),
    ('allow with one bad subject among good ones', {'allow': ['everyone', 'uid:zz']}, ['uid:zz']),
    ('allow of 65 subjects', {'allow': ['uid:%d' % i for i in range(65)]}, ['allow']),
]


def name_message_ok(msg, name):
    msg = msg.lower()
    return 'name' in msg or (name != '' and name.lower() in msg)


@pytest.fixture
def c(bus, maybe_users, t):
    """The caller (alice, or root where the test users cannot be made),
    with one entry of its own to start with."""
    c = bus.client(maybe_users['alice']) if maybe_users else bus.client()
    t.success(c.deposit('host/existing', memfd('keep me')), 'the caller has one entry to start with')
    return c


def unchanged(t, bus, c, before, what):
    t.eq(harness.state(bus, c), before, '%s: EntryCount and the caller\'s List unchanged' % what)


def expect_invalid(t, res, what, contains=None):
    t.error(res, E_INVALID_ARGS, what, contains)


@pytest.mark.parametrize('label,name', BAD_NAMES, ids=[b[0] for b in BAD_NAMES])
def test_every_call_taking_a_name_refuses_a_bad_name_and_names_it(t, bus, c, label, name):
    before = harness.state(bus, c)
    calls = [
        ('Deposit', c.deposit(name, memfd('x'))),
        ('CreateMemory', c.create_memory(name, 4096)),
        ('Retrieve', c.retrieve(name)),
        ('Remove', c.remove(name)),
        ('DepositMany', c.deposit_many({'host/ok': 0, name: 0}, [memfd('x')])),
        ('RetrieveMany', c.retrieve_many(['host/existing', name])),
    ]
    for method, res in calls:
        good = (not res.get('ok') and res.get('error') == E_INVALID_ARGS
                and name_message_ok(res.get('message') or '', name))
        t.ok(good, '%s of a name with %s (%r) is InvalidArgs naming the name' % (method, label, name[:40]),
             res)
    unchanged(t, bus, c, before, 'bad name %s' % label)


@pytest.mark.parametrize('label,name', GOOD_NAMES, ids=[g[0] for g in GOOD_NAMES])
def test_a_good_name_at_the_edge_of_the_rules_is_accepted(t, c, label, name):
    r = c.deposit(name, memfd('good'))
    t.success(r, 'a name with %s is accepted' % label)
    t.eq(c.retrieve(name).get('fd', {}).get('read_head'), 'good', 'a name with %s retrieves' % label)


@pytest.mark.parametrize('label,opts,contains', DEPOSIT_CASES, ids=[d[0] for d in DEPOSIT_CASES])
def test_deposit_refuses_a_bad_option_and_names_it(t, bus, c, label, opts, contains):
    before = harness.state(bus, c)
    expect_invalid(t, c.deposit('host/opt', memfd('x'), **opts),
                   'Deposit with %s is InvalidArgs naming it' % label, contains)
    unchanged(t, bus, c, before, 'Deposit with %s' % label)


def test_depositmany_and_creatememory_refuse_bad_options_and_edge_values_pass(t, bus, c):
    for label, opts, contains in DEPOSIT_CASES[:3]:
        before = harness.state(bus, c)
        expect_invalid(t, c.deposit_many({'host/m1': 0, 'host/m2': 0}, [memfd('x')], **opts),
                       'DepositMany with %s is InvalidArgs naming it' % label, contains)
        expect_invalid(t, c.create_memory('host/cm', 4096, **opts),
                       'CreateMemory with %s is InvalidArgs naming it' % label, contains)
        unchanged(t, bus, c, before, 'DepositMany/CreateMemory with %s' % label)
    t.success(c.deposit('host/desc-bytes', memfd('x'), description='é' * 512),
              'a description of 512 two-byte characters (1024 bytes) is accepted')
    before = harness.state(bus, c)
    expect_invalid(t, c.deposit('host/desc-bytes2', memfd('x'), description='é' * 513),
                   'a description of 513 two-byte characters (1026 bytes) is InvalidArgs: the limit is bytes',
                   ['description'])
    unchanged(t, bus, c, before, 'Deposit with a 1026-byte description')
    c.remove('host/desc-bytes')

    before = harness.state(bus, c)
    res = c.deposit('host/forever', memfd('x'), **{'timeout-usec': (1 << 64) - 1})
    if res.get('ok'):
        info = c.retrieve('host/forever').get('info', {})
        t.ok(info.get('expires-usec', 0) >= info.get('created-usec', 1),
             'timeout-usec 2^64-1: expires-usec does not wrap around', info)
        t.success(c.retrieve('host/forever'), 'timeout-usec 2^64-1: the entry does not expire at once')
        c.remove('host/forever')
    else:
        expect_invalid(t, res, 'timeout-usec 2^64-1 is refused as InvalidArgs naming it', ['timeout-usec'])
        unchanged(t, bus, c, before, 'Deposit with timeout-usec 2^64-1')

    t.success(c.deposit('host/allow-64', memfd('x'), allow=['uid:%d' % i for i in range(64)]),
              '64 allow subjects are accepted')
    t.success(c.deposit('host/empty-desc', memfd('x'), description=''), 'an empty description is accepted')
    c.remove('host/allow-64')
    c.remove('host/empty-desc')


def test_retrieve_list_and_openpath_refuse_bad_options_and_name_them(t, bus, c):
    cases = [
        ('unknown key', {'no-such-option': True}, ['no-such-option']),
        ('the Deposit-only key seal', {'seal': True}, ['seal']),
        ('reopen as s', {'reopen': 'yes'}, ['reopen']),
        ('wait-usec as u', {'wait-usec': V('u', 1)}, ['wait-usec']),
        ('access as as', {'access': V('as', ['read-only'])}, ['access']),
        ('access rw', {'access': 'rw'}, ['access']),
        ('wait-usec above 300 s', {'wait-usec': 300000001}, ['wait-usec']),
    ]
    for label, opts, contains in cases:
        before = harness.state(bus, c)
        expect_invalid(t, c.retrieve('host/existing', **opts), 'Retrieve with %s is InvalidArgs naming it' % label,
                       contains)
        expect_invalid(t, c.retrieve_many(['host/existing'], **opts),
                       'RetrieveMany with %s is InvalidArgs naming it' % label, contains)
        unchanged(t, bus, c, before, 'Retrieve with %s' % label)
    expect_invalid(t, c.list(**{'no-such-filter': 'x'}), 'List with an unknown filter key is InvalidArgs naming it',
                   ['no-such-filter'])
    expect_invalid(t, c.list(prefix=V('as', ['host/'])), 'List with prefix as as is InvalidArgs naming it', ['prefix'])
    expect_invalid(t, c.open_path('/etc/passwd', access='sideways'), 'OpenPath with a bad access is InvalidArgs',
                   ['access'])
    expect_invalid(t, c.open_path('/etc/passwd', nonblock='yes'), 'OpenPath with nonblock as s is InvalidArgs',
                   ['nonblock'])


def test_malformed_calls_are_refused_and_change_nothing(t, bus, c):
    before = harness.state(bus, c)
    r = c.raw('Deposit', '(sa{sv})', ['host/sig', {}])
    t.error(r, E_INVALID_ARGS, 'Deposit with a wrong signature is InvalidArgs')
    r = c.raw('Deposit', '(sha{sv})', ['host/nofd', 0, {}])
    t.ok(not r.get('ok'), 'Deposit naming fd index 0 with no fd attached is refused', r)
    r = c.raw('Deposit', '(sha{sv})', ['host/badidx', 3, {}], fds=[memfd('x')])
    t.ok(not r.get('ok'), 'Deposit naming fd index 3 with one fd attached is refused', r)
    r = c.raw('Retrieve', '(sa{sv}s)', ['host/existing', {}, 'extra'])
    t.error(r, E_INVALID_ARGS, 'Retrieve with an extra argument is InvalidArgs')
    unchanged(t, bus, c, before, 'malformed calls')

    before = harness.state(bus, c)
    r = c.req('deposit_many', fds_list=[['host/dup', 0], ['host/dup', 1]], fdspecs=[memfd('1'), memfd('2')],
              options={})
    expect_invalid(t, r, 'DepositMany naming one entry twice is InvalidArgs naming it', ['host/dup'])
    unchanged(t, bus, c, before, 'DepositMany naming one entry twice')

    t.success(c.deposit('host/once', memfd('once'), once=True), 'deposit host/once (once)')
    before = harness.state(bus, c)
    r = c.retrieve_many(['host/once', 'host/once'])
    if r.get('ok'):
        t.eq(r.get('n_fds'), 1, 'RetrieveMany naming a once entry twice hands it out once')
        t.error(c.retrieve('host/once'), harness.E_NOT_FOUND, 'and consumed it')
    else:
        expect_invalid(t, r, 'RetrieveMany naming an entry twice is InvalidArgs naming it', ['host/once'])
        unchanged(t, bus, c, before, 'RetrieveMany naming an entry twice')
        c.remove('host/once')
    t.eq(c.retrieve('host/existing').get('fd', {}).get('read_head'), 'keep me',
         'the caller\'s entry is untouched after all that')


def test_calls_with_empty_arrays_are_harmless(t, bus, c):
    before = harness.state(bus, c)
    r = c.deposit_many({}, [])
    t.ok(r.get('ok') or r.get('error') == E_INVALID_ARGS, 'DepositMany of nothing is a no-op or InvalidArgs', r)
    t.eq(bus.service_pid(activate=False), bus.pid0, 'the service survives DepositMany of nothing')
    unchanged(t, bus, c, before, 'DepositMany of nothing')
    r = c.retrieve_many([])
    t.ok((r.get('ok') and r.get('n_fds') == 0) or r.get('error') == E_INVALID_ARGS,
         'RetrieveMany of nothing hands back nothing, or is InvalidArgs', r)
    t.eq(bus.service_pid(activate=False), bus.pid0, 'the service survives RetrieveMany of nothing')
