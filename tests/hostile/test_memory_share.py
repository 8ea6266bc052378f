# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 4 of issue 9: take all the memory.

CreateMemory of the whole MaxMemorySize by one user (sparse: it costs her
nothing) must not leave the others QuotaExceeded: each uid gets a fair share
of what is left (dbus-broker's rule, service/accounting.h). And a created
memfd cannot be grown or shrunk after its size was accounted (SPEC 1:
F_SEAL_GROW|F_SEAL_SHRINK)."""

import errno
import fcntl
import os

import pytest

from harness import E_QUOTA

MiB = 1 << 20
F_GET_SEALS = getattr(fcntl, 'F_GET_SEALS', 1034)
F_SEAL_SHRINK, F_SEAL_GROW = 2, 4


def grab_all(client, prefix, limit):
    """Creates as much memory as client is allowed, in halving chunks down to
    1 MiB. Returns (bytes held, entries made, first refusal message)."""
    held, made, chunk, first = 0, 0, limit, None
    while chunk >= MiB:
        r = client.create_memory('%s/%d' % (prefix, made), chunk)
        if r.get('ok'):
            held += chunk
            made += 1
            continue
        if r.get('error') != E_QUOTA:
            raise AssertionError('CreateMemory: %r' % r)
        first = first or r.get('message')
        chunk //= 2
    return held, made, first


@pytest.fixture
def limit(t, bus):
    m = bus.get_property('MaxMemorySize')
    t.diag('MaxMemorySize is %d MiB' % (m // MiB))
    return m


def test_one_user_may_not_create_all_of_maxmemorysize_alone(t, bus, alice, limit):
    r = alice.create_memory('ms/whole', limit)
    t.error(r, E_QUOTA, 'alice may not create all of MaxMemorySize alone', ['MaxMemorySize', 'fair share'])
    t.eq(bus.entry_count(), 0, 'the refused call stored nothing')


def test_greedy_users_each_get_a_fair_share_of_what_is_left(t, alice, bob, carol, limit):
    got = {}
    for name, c in (('alice', alice), ('bob', bob), ('carol', carol)):
        held, made, why = grab_all(c, 'ms/' + name, limit)
        got[name] = held
        t.diag('%s could take %d MiB in %d memfds, then: %s' % (name, held // MiB, made, why))
    left = limit - sum(got.values())
    t.diag('left for everyone else: %d MiB of %d' % (left // MiB, limit // MiB))
    t.ok(got['alice'] <= limit // 2, 'the first user holds at most half of MaxMemorySize (%d MiB)'
         % (got['alice'] // MiB))
    t.ok(got['bob'] > 0 and got['carol'] > 0, 'the second and third users still got memory (%d and %d MiB)'
         % (got['bob'] // MiB, got['carol'] // MiB))
    t.ok(left > 0, 'three greedy users leave some for a fourth (%d MiB)' % (left // MiB))


def test_a_created_memfd_cannot_be_grown_or_shrunk_past_its_accounted_size(t, bus):
    (_,), fds = bus.call('CreateMemory', '(sta{sv})', ('ms/root-sealed', MiB, {}), '(h)')
    try:
        t.eq(len(fds), 1, 'root CreateMemory hands back one fd')
        fd = fds[0]
        seals = fcntl.fcntl(fd, F_GET_SEALS)
        t.eq(seals & (F_SEAL_GROW | F_SEAL_SHRINK), F_SEAL_GROW | F_SEAL_SHRINK,
             'the memfd is sealed against growing and shrinking')
        for size, what in ((1 << 40, 'grow it to 1 TiB'), (4096, 'shrink it')):
            try:
                os.ftruncate(fd, size)
                res = 'succeeded'
            except OSError as e:
                res = errno.errorcode.get(e.errno, str(e.errno))
            t.eq(res, 'EPERM', 'ftruncate to %s fails with EPERM' % what)
        t.eq(os.fstat(fd).st_size, MiB, 'its size is still the size accounted')
    finally:
        for f in fds:
            os.close(f)
