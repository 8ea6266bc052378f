# SPDX-License-Identifier: LGPL-2.1-or-later
"""Watch/Unwatch and the unicast EntryAdded/EntryRemoved signals: patterns,
visibility across users, every removal reason, replacing and ending a
watch, hostile arguments and the per-uid limit.

Negative checks ("carol hears nothing") use a barrier: the watcher pings the
broker after the event, and the broker sends its signals before it answers
the call that caused them, so anything meant for the watcher has arrived
before the ping's reply."""

import pytest

import harness
from harness import E_INVALID_ARGS, E_QUOTA, memfd, V

INFO_TYPES = {
    'kind': 's', 'size': 't', 'owner-uid': 'u', 'access': 's', 'sealed': 'b',
    'lifetime': 's', 'description': 's', 'created-usec': 't', 'expires-usec': 't',
}


def watch(cl, patterns, **options):
    return cl.req('watch', patterns=patterns, options=harness.typed(options))


def unwatch(cl):
    return cl.raw('Unwatch', None, [])


def signals(cl, n=0, timeout_ms=10000):
    """What cl heard: at least n signals (waiting up to timeout_ms), or, with
    n=0, everything sent to it before a round trip to the broker."""
    if n == 0:
        r = cl.req('ping')
        if not r.get('ok'):
            raise harness.ClientError('ping: %r' % r)
    r = cl.req('signals', n=n, timeout_ms=timeout_ms)
    if not r.get('ok'):
        raise harness.ClientError('signals: %r' % r)
    return [(s['member'], s['name'], s.get('reason')) if s['member'] == 'EntryRemoved'
            else (s['member'], s['name']) for s in r['signals']], r['signals']


# Every client of these tests listens for the broker's signals.
@pytest.fixture
def alice(alice):
    alice.req('subscribe')
    return alice


@pytest.fixture
def bob(bob):
    bob.req('subscribe')
    return bob


@pytest.fixture
def carol(carol):
    carol.req('subscribe')
    return carol


@pytest.fixture
def root(root):
    root.req('subscribe')
    return root


def test_watch_refuses_bad_patterns_and_options_changing_nothing(t, bus, alice, root):
    before = harness.state(bus, root)
    for pats, what in (([], 'at least one pattern'),
                       (['a//b'], 'a//b'),
                       (['/a'], '/a'),
                       (['a/'], 'a/'),
                       (['a/**/b'], 'a/**/b'),
                       (['cam/[ab'], 'cam/[ab'),
                       (['x y'], 'x y'),
                       (['ok/*', 'bad\\*'], 'bad\\*'),
                       ([''], "''"),
                       (['a' * 2000], 'longer than'),
                       (['p%d' % i for i in range(33)], 'at most 32')):
        t.error(watch(alice, pats), E_INVALID_ARGS, 'Watch(%r) is InvalidArgs naming it'
                % (pats if len(repr(pats)) < 60 else repr(pats)[:40] + '…'), [what])
    t.error(watch(alice, ['**'], **{'no-such-option': V('b', True)}), E_INVALID_ARGS,
            'an unknown Watch option key is InvalidArgs naming it', ['no-such-option'])
    t.success(watch(alice, ['**']), 'Watch with an empty option dictionary works')
    t.success(unwatch(alice), 'Unwatch ends it')
    t.eq(harness.state(bus, root), before, 'refused Watch calls changed no entries')
    t.success(unwatch(alice), 'Unwatch without a watch is not an error')


def test_a_watcher_hears_only_about_entries_it_may_see(t, bus, alice, bob, carol, root):
    t.success(watch(alice, ['cam/*']), 'alice watches cam/*')
    t.success(watch(carol, ['**']), 'carol watches everything')
    # bob subscribes to the signals but has no watch: a broadcast would
    # reach him.
    r = alice.deposit('cam/front', memfd('front'), allow=['user:fdbtest-bob'])
    t.success(r, 'alice deposits cam/front for bob')
    got, raw = signals(alice, 1)
    t.eq(got, [('EntryAdded', 'cam/front')], 'alice hears EntryAdded cam/front')
    ret = alice.retrieve('cam/front')
    if raw:
        t.eq(raw[0]['info_types'], INFO_TYPES, 'EntryAdded info has every key of Retrieve\'s, same types')
        t.eq(raw[0]['info'], ret.get('info'), 'EntryAdded info equals what Retrieve returns')
        if harness.transport() == 'bus':
            t.ok(raw[0]['sender'].startswith(':'), 'the signal comes from the broker\'s unique name',
                 raw[0]['sender'])
        else:
            t.ok(raw[0]['sender'] is None, 'on a direct connection the signal has no sender',
                 raw[0]['sender'])
    t.eq(signals(carol)[0], [], 'carol (may not retrieve it) hears nothing of cam/front')
    t.eq(signals(bob)[0], [], 'bob (allowed, but no watch) hears nothing: the signal was not broadcast')

    t.success(watch(bob, ['cam/*']), 'bob watches cam/*')
    t.success(alice.deposit('cam/back', memfd('back'), allow=['user:fdbtest-bob']),
              'alice deposits cam/back for bob')
    t.eq(signals(bob, 1)[0], [('EntryAdded', 'cam/back')], 'bob, allowed and watching, hears it')
    t.eq(signals(carol)[0], [], 'carol still hears nothing')
    t.eq(signals(alice, 1)[0], [('EntryAdded', 'cam/back')], 'alice hears her own deposit')

    t.success(alice.deposit('cam/all', memfd('all'), allow=['everyone']), 'alice deposits cam/all for everyone')
    t.eq(signals(carol, 1)[0], [('EntryAdded', 'cam/all')], 'carol hears an entry she may retrieve')
    t.success(alice.deposit('other/x', memfd('x')), 'alice deposits other/x')
    t.eq(signals(alice)[0], [('EntryAdded', 'cam/all')], 'alice hears cam/all but not other/x (no match)')
    t.eq(signals(bob)[0], [('EntryAdded', 'cam/all')], 'bob hears cam/all')
    t.success(root.remove('cam/front'), 'root removes cam/front')
    t.eq(signals(alice, 1)[0], [('EntryRemoved', 'cam/front', 'removed')], 'alice hears it removed')
    t.eq(signals(bob, 1)[0], [('EntryRemoved', 'cam/front', 'removed')], 'bob hears it removed')
    t.eq(signals(carol)[0], [], 'carol hears nothing of its removal either')
    for name in ('cam/back', 'cam/all', 'other/x'):
        alice.remove(name)
    for cl in (alice, bob, carol):
        signals(cl)
    for cl in (alice, bob, carol):
        t.success(unwatch(cl), '%s unwatches' % cl.label)


def test_entryremoved_says_why_for_every_way_an_entry_ends(t, bus, users, alice, bob):
    t.success(watch(alice, ['r/**']), 'alice watches r/**')
    alice.deposit('r/a/removed', memfd('1'))
    alice.remove('r/a/removed')
    alice.deposit('r/expired', memfd('2'), **{'timeout-usec': V('t', 100000)})
    got = signals(alice, 4, timeout_ms=30000)[0]
    t.eq(got, [('EntryAdded', 'r/a/removed'), ('EntryRemoved', 'r/a/removed', 'removed'),
               ('EntryAdded', 'r/expired'), ('EntryRemoved', 'r/expired', 'expired')],
         'Remove gives reason removed, a timeout gives expired (r/** matches below r/)')

    alice.deposit('r/once', memfd('3'), once=True, allow=['user:fdbtest-bob'])
    t.success(bob.retrieve('r/once'), 'bob retrieves the once entry')
    t.eq(signals(alice, 2)[0], [('EntryAdded', 'r/once'), ('EntryRemoved', 'r/once', 'retrieved-once')],
         'a once entry retrieved gives retrieved-once')

    alice.deposit('r/rep', memfd('old'))
    alice.deposit('r/rep', memfd('new'), replace=True)
    t.eq(signals(alice, 3)[0], [('EntryAdded', 'r/rep'), ('EntryRemoved', 'r/rep', 'replaced'),
                                ('EntryAdded', 'r/rep')],
         'replace=true gives EntryRemoved replaced, then EntryAdded')
    alice.remove('r/rep')
    signals(alice)

    dave = bus.client(users['alice'])
    t.success(dave.deposit('r/conn', memfd('4')), 'another connection of alice deposits r/conn')
    dave.close()
    t.eq(signals(alice, 2, timeout_ms=30000)[0],
         [('EntryAdded', 'r/conn'), ('EntryRemoved', 'r/conn', 'connection-closed')],
         'its connection closing gives connection-closed')
    t.success(unwatch(alice), 'alice unwatches')


def test_a_new_watch_replaces_the_old_and_unwatch_ends_it(t, alice):
    t.success(watch(alice, ['a/*']), 'alice watches a/*')
    t.success(watch(alice, ['b/*']), 'alice watches b/* instead')
    alice.deposit('a/x', memfd('a'))
    alice.deposit('b/x', memfd('b'))
    t.eq(signals(alice)[0], [('EntryAdded', 'b/x')], 'a second Watch replaces the patterns')
    t.error(watch(alice, ['bad//pattern']), E_INVALID_ARGS, 'a bad Watch is refused')
    alice.deposit('b/y', memfd('b'))
    t.eq(signals(alice)[0], [('EntryAdded', 'b/y')], '... and leaves the watch as it was')
    t.success(unwatch(alice), 'Unwatch')
    alice.deposit('b/z', memfd('b'))
    t.eq(signals(alice)[0], [], 'after Unwatch, nothing')
    for n in ('a/x', 'b/x', 'b/y', 'b/z'):
        alice.remove(n)


def test_watches_are_limited_per_uid(t, bus, users, bob, carol):
    extra = []
    try:
        refused = None
        # 17 connections of one uid: over the bus, since a uid may hold
        # only 16 direct connections (that limit is test_direct's).
        for i in range(17):
            cl = bus.client(users['carol'], transport='bus')
            cl.req('subscribe')
            extra.append(cl)
            r = watch(cl, ['q/*'])
            if not r.get('ok'):
                refused = (i, r)
                break
        t.ok(refused is not None and refused[0] == 16, 'carol holds 16 watches; the 17th is refused',
             refused)
        if refused:
            t.error(refused[1], E_QUOTA, 'the 17th is QuotaExceeded, saying what to do', ['Unwatch'])
        t.success(watch(bob, ['q/*']), 'bob\'s watch is not charged to carol')
        unwatch(bob)
        extra[0].close()  # leaving the bus ends its watch
        r = harness.poll_until(lambda: watch(extra[-1], ['q/*']).get('ok'), timeout=30)
        t.ok(r, 'once one of carol\'s watchers left the bus, her next Watch is accepted')
        carol.deposit('q/1', memfd('q'))
        got = signals(extra[-1])[0]
        t.eq(got, [('EntryAdded', 'q/1')], 'and it hears carol\'s deposit')
        carol.remove('q/1')
    finally:
        for cl in extra:
            cl.close()
