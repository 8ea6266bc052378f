# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 7 of issue 9 (part): a handle index the message does not carry.

A Deposit whose 'fd' argument names fd 5 of a message with none (or one)
was answered with sd-bus's InconsistentMessage. It is InvalidArgs naming the
argument, and it changes nothing."""

import pytest

from harness import E_INVALID_ARGS

# (what, member, signature, arguments, fds the message carries, the message names)
CASES = (
    ('Deposit, handle 5, no fds', 'Deposit', '(sha{sv})', ['bh/a', 5], [], ["'fd'", 'bh/a']),
    ('Deposit, handle 1 of one fd', 'Deposit', '(sha{sv})', ['bh/b', 1], ['memfd'], ["'fd'", 'bh/b']),
    ('Deposit, handle -1 (2^32 - 1)', 'Deposit', '(sha{sv})', ['bh/c', -1], ['memfd'], ["'fd'"]),
    ('DepositMany, second handle out of range', 'DepositMany', '(a{sh}a{sv})',
     [{'bh/d': 0, 'bh/e': 7}], ['memfd'], ["'fds'"]),
)


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_a_handle_index_the_message_does_not_carry_is_invalidargs_and_stores_nothing(t, bus, users, root, raw,
                                                                                      case):
    what, member, sig, args, fds, contains = case
    bob = raw(users['bob'])
    r = bob.req(op='call', member=member, sig=sig, args=args, opts={}, fds=fds)
    t.error(r, E_INVALID_ARGS, '%s: InvalidArgs naming the argument' % what, contains)
    t.eq(root.names('bh/'), [], 'nothing was stored')
    t.eq(bus.service_pid(activate=False), bus.pid0, 'the broker kept running')


def test_a_connection_that_sent_bad_handles_deposits_with_a_good_one_afterwards(t, bus, users, root, raw):
    bob = raw(users['bob'])
    for what, member, sig, args, fds, contains in CASES:
        r = bob.req(op='call', member=member, sig=sig, args=args, opts={}, fds=fds)
        t.error(r, E_INVALID_ARGS, '%s: InvalidArgs' % what)
    r = bob.req(op='call', member='Deposit', sig='(sha{sv})', args=['bh/ok', 0], opts={}, fds=['memfd'])
    t.success(r, 'the same connection deposits with a good handle afterwards')
    t.eq(root.names('bh/'), ['bh/ok'], 'only the good deposit was stored')
    t.eq(bus.service_pid(activate=False), bus.pid0, 'the broker kept running')
