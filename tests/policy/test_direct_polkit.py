# SPDX-License-Identifier: LGPL-2.1-or-later
"""polkit on direct connections (SPEC §5), through python3-dbusmock's
polkitd template: a caller on the direct socket is asked about as the
process behind it (a unix-process subject carrying its pidfd and uid, never
a bare PID); a connection from OpenConnection as the bus name that opened
it; polkit's answer decides as on the bus."""

import pytest

import policyutil
from harness import E_ACCESS_DENIED, memfd

FILES = {
    '10-auth.conf': '''\
[Rule auth-retrieve]
Action=retrieve
Match=auth/*
Subject=user:fdbtest-bob
Result=auth_admin_keep
''',
}

RETRIEVE = 'org.fdbroker.retrieve'


@pytest.fixture
def bus(bus_with):
    """A fresh bus and broker reading only FILES, with its direct socket
    up and a place for a polkit mock."""
    b = bus_with(policy_files=FILES, extra_bus_config=policyutil.POLKIT_BUS_CONFIG)
    b.wait_direct_socket()
    return b


@pytest.fixture
def alice(bus, users, t):
    """alice on the bus, with auth/1 deposited for bob."""
    a = bus.client(users['alice'], transport='bus')
    t.success(a.deposit('auth/1', memfd('one'), allow=['user:fdbtest-bob']), 'alice deposits auth/1 for bob')
    return a


def test_a_direct_socket_peer_is_asked_about_as_its_process_by_pidfd_and_uid(t, bus, users, alice, mock):
    bob = bus.client(users['bob'], transport='direct-socket')
    mock.set_allowed([])
    t.error(bob.retrieve('auth/1'), E_ACCESS_DENIED, 'direct socket: polkit denies, AccessDenied',
            ['polkit did not authorize', 'auth/1'])
    mock.set_allowed([RETRIEVE])
    mock.clear_calls()
    t.success(bob.retrieve('auth/1'), 'direct socket: polkit allows, bob retrieves auth/1')
    checks = mock.checks()
    t.eq(len(checks), 1, 'one CheckAuthorization reached polkit')
    if checks:
        kind, details = checks[0][0]
        t.eq(kind, 'unix-process', 'subject: unix-process (the process behind the socket)')
        t.eq(sorted(details), ['pidfd', 'uid'], 'identified by pidfd and uid, with no PID to race on')
        t.eq(int(details.get('uid', -1)), users['bob']['uid'], 'uid: bob\'s, as the kernel pinned it')
        t.eq((checks[0][1], checks[0][2]),
             (RETRIEVE, {'name': 'auth/1', 'fdbroker.requested-result': 'auth_admin_keep'}),
             'action and details as on the bus')
    bob.close()


def test_an_open_connection_peer_is_asked_about_as_the_bus_name_that_opened_it(t, bus, users, alice, mock):
    bob = bus.client(users['bob'], transport='open-connection')
    mock.set_allowed([RETRIEVE])
    mock.clear_calls()
    t.success(bob.retrieve('auth/1'), 'OpenConnection: polkit allows, bob retrieves auth/1')
    checks = mock.checks()
    t.eq([c[0] for c in checks], [('system-bus-name', {'name': bob.unique_name})],
         'subject: the bus name that opened the connection')
    bob.close()
