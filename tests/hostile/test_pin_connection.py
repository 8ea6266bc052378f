#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 5 of issue 9: pin connection entries forever.

Bob deposits his own bus socket. Were the broker to keep it, Bob's
connection would stay open inside the broker after Bob exits: the bus would
never say his name has gone, and his connection entries would never end.
The broker refuses a socket connected to the bus (NotSupported, naming the
entry), so a connection entry ends when its depositor's connection ends
(SPEC 2), even when he tried to deposit that very connection."""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_NOT_SUPPORTED, memfd, poll_until  # noqa: E402
from rawbus import RawClient  # noqa: E402


def body(t):
    bus, users = harness.setup(t, need_users=True)
    root = bus.client()

    def pin():
        bob = RawClient(bus, users['bob'])
        try:
            r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['pin/entry', 0], opts={}, fds=['memfd'])
            t.success(r, 'bob deposits pin/entry (lifetime connection)')
            r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['pin/socket', 0], opts={}, fds=['bus'])
            t.error(r, E_NOT_SUPPORTED, 'depositing his own bus connection is NotSupported, naming the entry',
                    ['pin/socket', 'bus'])
            r = bob.req(op='call', member='Deposit', sig='(sha{sv})',
                        args=['pin/socket-p', 0], opts={'lifetime': ['s', 'persistent']}, fds=['bus'])
            t.error(r, E_NOT_SUPPORTED, 'also as a persistent entry', ['pin/socket-p'])
            t.eq(sorted(root.names('pin/')), ['pin/entry'], 'only pin/entry is stored')
        finally:
            bob.close()
        gone = poll_until(lambda: root.names('pin/') == [], timeout=10)
        t.ok(gone, 'bob exits: his connection entry ends (%s)' % root.names('pin/'))

        # The same through a dup of the socket in another process of his:
        # the broker looks at where the socket leads, not at its number.
        carol = RawClient(bus, users['carol'])
        try:
            r = carol.req(op='call', member='DepositMany', sig='(a{sh}a{sv})',
                          args=[{'pin/c1': 0, 'pin/c2': 1}], opts={}, fds=['memfd', 'bus'])
            t.error(r, E_NOT_SUPPORTED, 'a DepositMany holding the bus connection is refused whole', ['pin/c2'])
            t.eq(root.names('pin/'), [], 'and stores nothing')
        finally:
            carol.close()
    t.run('own bus connection', pin)

    def other_sockets():
        # Sockets that do not lead to the bus are still fine.
        t.success(root.deposit('pin/pair', {'type': 'socket'}), 'a socketpair end is still accepted')
        t.success(root.remove('pin/pair'), 'and removed')
    t.run('other sockets', other_sockets)


if __name__ == '__main__':
    harness.main(body)
