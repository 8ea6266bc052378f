#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 7 of issue 9 (part): a handle index the message does not carry.

A Deposit whose 'fd' argument names fd 5 of a message with none (or one)
was answered with sd-bus's InconsistentMessage. It is InvalidArgs naming the
argument, and it changes nothing."""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_INVALID_ARGS  # noqa: E402
from rawbus import RawClient  # noqa: E402


def body(t):
    bus, users = harness.setup(t, need_users=True)
    root = bus.client()
    pid0 = bus.service_pid()
    bob = RawClient(bus, users['bob'])
    try:
        cases = (
            ('Deposit, handle 5, no fds', 'Deposit', '(sha{sv})', ['bh/a', 5], [], ["'fd'", 'bh/a']),
            ('Deposit, handle 1 of one fd', 'Deposit', '(sha{sv})', ['bh/b', 1], ['memfd'], ["'fd'", 'bh/b']),
            ('Deposit, handle -1 (2^32 - 1)', 'Deposit', '(sha{sv})', ['bh/c', -1], ['memfd'], ["'fd'"]),
            ('DepositMany, second handle out of range', 'DepositMany', '(a{sh}a{sv})',
             [{'bh/d': 0, 'bh/e': 7}], ['memfd'], ["'fds'"]),
        )
        for what, member, sig, args, fds, contains in cases:
            r = bob.req(op='call', member=member, sig=sig, args=args, opts={}, fds=fds)
            t.error(r, E_INVALID_ARGS, '%s: InvalidArgs naming the argument' % what, contains)
        t.eq(root.names('bh/'), [], 'nothing was stored')
        r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['bh/ok', 0], opts={}, fds=['memfd'])
        t.success(r, 'the same connection deposits with a good handle afterwards')
    finally:
        bob.close()
    t.eq(bus.service_pid(activate=False), pid0, 'the broker kept running')


if __name__ == '__main__':
    harness.main(body)
