# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 5 of issue 9: pin connection entries forever.

Bob deposits his own bus socket. Were the broker to keep it, Bob's
connection would stay open inside the broker after Bob exits: the bus would
never say his name has gone, and his connection entries would never end.
The broker refuses a socket connected to the bus (NotSupported, naming the
entry), so a connection entry ends when its depositor's connection ends
(SPEC 2), even when he tried to deposit that very connection."""

from harness import E_NOT_SUPPORTED, poll_until


def deposit_entry_and_own_connection(t, bob):
    r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['pin/entry', 0], opts={}, fds=['memfd'])
    t.success(r, 'bob deposits pin/entry (lifetime connection)')
    r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['pin/socket', 0], opts={}, fds=['bus'])
    t.error(r, E_NOT_SUPPORTED, 'depositing his own bus connection is NotSupported, naming the entry',
            ['pin/socket', 'bus'])


def test_a_caller_may_not_deposit_his_own_bus_connection(t, users, root, raw):
    bob = raw(users['bob'])
    deposit_entry_and_own_connection(t, bob)
    r = bob.req(op='call', member='Deposit', sig='(sha{sv})',
                args=['pin/socket-p', 0], opts={'lifetime': ['s', 'persistent']}, fds=['bus'])
    t.error(r, E_NOT_SUPPORTED, 'also as a persistent entry', ['pin/socket-p'])
    t.eq(sorted(root.names('pin/')), ['pin/entry'], 'only pin/entry is stored')


def test_a_connection_entry_ends_when_its_depositor_leaves_after_trying_to_pin_his_connection(t, users, root,
                                                                                             raw):
    bob = raw(users['bob'])
    deposit_entry_and_own_connection(t, bob)
    bob.close()
    gone = poll_until(lambda: root.names('pin/') == [], timeout=10)
    t.ok(gone, 'bob exits: his connection entry ends (%s)' % root.names('pin/'))


def test_a_depositmany_holding_the_bus_connection_is_refused_whole(t, users, root, raw):
    # The bus socket is a dup in another process of carol's (rawbus.py):
    # the broker looks at where the socket leads, not at its number.
    carol = raw(users['carol'])
    r = carol.req(op='call', member='DepositMany', sig='(a{sh}a{sv})',
                  args=[{'pin/c1': 0, 'pin/c2': 1}], opts={}, fds=['memfd', 'bus'])
    t.error(r, E_NOT_SUPPORTED, 'a DepositMany holding the bus connection is refused whole', ['pin/c2'])
    t.eq(root.names('pin/'), [], 'and stores nothing')


def test_a_socket_that_does_not_lead_to_the_bus_is_still_accepted(t, root):
    t.success(root.deposit('pin/pair', {'type': 'socket'}), 'a socketpair end is still accepted')
    t.success(root.remove('pin/pair'), 'and removed')
