# SPDX-License-Identifier: LGPL-2.1-or-later
"""Direct connections (SPEC §5): who a direct connection acts as, the
per-uid limit of 16, connection entries ending with the connection,
OpenConnection's options, polkit on a direct socket, and no fd left behind
after 1000 connections opened and closed. (The whole integration suite
also runs over direct connections: see meson.build.)"""

import os

import pytest

from harness import (E_ACCESS_DENIED, E_INVALID_ARGS, E_NOT_FOUND, E_QUOTA, memfd,
                     poll_until)

PER_UID = 16
CYCLES = 1000

POLICY = '''# written by test_direct.py
[Rule ask-for-auth]
Action=retrieve
Match=auth/*
Subject=everyone
Result=auth_admin
'''

BUS_OPTIONS = {'policy_files': {'50-direct.conf': POLICY},
               'extra_service_args': os.environ.get('FDBTEST_SERVICE_ARGS', '').split()}


@pytest.fixture
def alice(bus, users):
    """alice on the bus: these tests open direct connections themselves."""
    bus.wait_direct_socket()
    return bus.client(users['alice'], transport='bus')


@pytest.fixture
def start(bus, alice):
    """(EntryCount, service fd count) once alice is connected."""
    return bus.entry_count(), bus.service_fd_count()


def test_a_direct_connection_acts_as_the_uid_and_groups_of_its_peer(t, bus, users, alice, start):
    count0, fd_start = start
    for tr in ('direct-socket', 'open-connection'):
        a = bus.client(users['alice'], transport=tr)
        b = bus.client(users['bob'], transport=tr)
        c = bus.client(users['carol'], transport=tr)
        name = 'id/%s' % tr
        t.success(a.deposit(name, memfd('who'), allow=['group:fdbtest-video']),
                  '%s: alice deposits' % tr)
        r = bus.client(transport='bus').list(prefix='id/')
        info = {e['name']: e['info'] for e in r.get('entries', [])}.get(name, {})
        t.eq(info.get('owner-uid'), users['alice']['uid'], '%s: the entry is owned by alice\'s uid' % tr)
        g = b.retrieve(name)
        t.success(g, '%s: bob (supplementary group fdbtest-video) may retrieve it' % tr)
        t.eq(g.get('fd', {}).get('sha256') is not None or g.get('ok'), True,
             '%s: bob got an fd' % tr)
        t.error(c.retrieve(name), E_NOT_FOUND, '%s: carol (not in the group) may not' % tr, [name])
        t.eq(c.names('id/'), [], '%s: carol does not even see it in List' % tr)
        t.error(c.remove(name), E_NOT_FOUND, '%s: nor remove it' % tr)
        t.success(a.remove(name), '%s: alice removes it' % tr)
        for x in (a, b, c):
            x.close()
        t.ok(poll_until(lambda: bus.service_fd_count() == fd_start, timeout=10),
             '%s: service fd count back to %d once the three clients left' % (tr, fd_start),
             bus.service_fd_count())


def test_a_uid_may_hold_16_direct_connections(t, bus, users, alice, start):
    count0, fd_start = start
    fd0 = fd_start
    opened = []
    for i in range(PER_UID):
        r = alice.req('open_connection', keep=True)
        if not r.get('ok'):
            t.ok(False, 'OpenConnection %d of %d' % (i + 1, PER_UID), r)
            return
        opened.append(r['index'])
    t.ok(True, 'alice opens %d direct connections with OpenConnection' % PER_UID)
    t.error(alice.req('open_connection', keep=True), E_QUOTA,
            'the 17th OpenConnection is QuotaExceeded', [str(PER_UID)])
    r = alice.req('direct_socket_connect')
    t.success(r, 'a 17th connection to the direct socket is accepted at the socket level')
    extra = r.get('index')
    t.error(alice.req('direct_call', index=extra, method='List', sig='(a{sv})', args=[{}]), E_QUOTA,
            'but its first call is QuotaExceeded', ['direct connections'])
    alice.req('direct_close', index=extra)
    bob = bus.client(users['bob'], transport='bus')
    t.success(bob.req('open_connection', keep=True), 'the limit is per uid: bob may still open one')
    bob.close()
    t.success(alice.req('direct_call', index=opened[0], method='List', sig='(a{sv})', args=[{}]),
              'alice\'s first direct connection still answers')
    alice.req('direct_close', index=opened[0])
    t.ok(poll_until(lambda: alice.req('open_connection', keep=True).get('ok'), timeout=10),
         'after closing one, alice may open another')
    alice.req('direct_close')
    ok = poll_until(lambda: bus.service_fd_count() == fd0, timeout=10)
    t.ok(ok, 'service fd count back to %d after the connections closed' % fd0,
         None if ok else bus.service_fds())


def test_connection_entries_end_with_the_direct_connection(t, bus, alice, start):
    count0, fd_start = start
    for via in ('open-connection', 'socket'):
        r = (alice.req('open_connection', keep=True) if via == 'open-connection'
             else alice.req('direct_socket_connect'))
        idx = r.get('index')
        t.success(alice.req('direct_deposit', index=idx, name='end/%s' % via, fd=memfd('e')),
                  '%s: deposit over a direct connection' % via)
        t.success(alice.deposit('end/bus-%s' % via, memfd('b')), '%s: and one over the bus' % via)
        t.eq(bus.entry_count(), count0 + 2, '%s: both stored' % via)
        # An entry holding the direct connection's own socket must not keep it alive.
        alice.req('direct_close', index=idx)
        t.ok(poll_until(lambda: bus.entry_count() == count0 + 1, timeout=30),
             '%s: the entry deposited over it ends when the direct connection closes' % via,
             bus.entry_count())
        t.eq(alice.names('end/'), ['end/bus-%s' % via],
             '%s: the one deposited over the bus (same process) stays' % via)
        alice.remove('end/bus-%s' % via)


def test_openconnection_refuses_bad_options_leaving_no_fd(t, bus, alice):
    fd0 = bus.service_fd_count()
    t.error(alice.req('open_connection', options={'frobnicate': ['b', True]}), E_INVALID_ARGS,
            'OpenConnection with an unknown option is InvalidArgs naming it', ['frobnicate'])
    t.error(alice.raw('OpenConnection', '(s)', ['x']), E_INVALID_ARGS,
            'OpenConnection with the wrong signature is InvalidArgs')
    t.eq(bus.service_fd_count(), fd0, 'refused OpenConnection calls leave no fd in the service')
    t.success(alice.req('open_connection', options={}), 'OpenConnection with no options succeeds')


def test_an_auth_admin_rule_on_a_direct_socket_is_access_denied(t, bus, users, alice):
    t.success(alice.deposit('auth/x', memfd('p'), allow=['everyone']), 'alice deposits auth/x')
    bob = bus.client(users['bob'], transport='direct-socket')
    t.error(bob.retrieve('auth/x'), E_ACCESS_DENIED,
            'an auth_admin rule on a direct socket, with no polkit to ask, is AccessDenied '
            'saying to use the system bus', ['system bus'])
    bob.close()
    t.eq(alice.names('auth/'), ['auth/x'], 'the refused call changed nothing')
    alice.remove('auth/x')


def test_1000_direct_connects_and_disconnects_leave_no_fd(t, bus, alice):
    # Warm up once, so lazily made state is in the baseline.
    alice.req('direct_cycles', n=4, via='socket')
    alice.req('direct_cycles', n=4, via='open-connection')
    fd0 = bus.service_fd_count()
    for via in ('socket', 'open-connection'):
        r = alice.req('direct_cycles', n=CYCLES, via=via, timeout=900)
        t.ok(r.get('ok') and not r.get('failures'),
             '%d direct connections via %s opened, used and closed' % (CYCLES, via), r)
    ok = poll_until(lambda: bus.service_fd_count() == fd0, timeout=30)
    t.ok(ok, 'service fd count back to %d after %d connects/disconnects' % (fd0, 2 * CYCLES),
         None if ok else bus.service_fds())
