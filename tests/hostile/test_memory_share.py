#!/usr/bin/python3
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
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_QUOTA  # noqa: E402

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


def body(t):
    bus, users = harness.setup(t, need_users=True)
    alice, bob, carol = (bus.client(users[u]) for u in ('alice', 'bob', 'carol'))
    limit = bus.get_property('MaxMemorySize')
    t.diag('MaxMemorySize is %d MiB' % (limit // MiB))

    def whole():
        r = alice.create_memory('ms/whole', limit)
        t.error(r, E_QUOTA, 'alice may not create all of MaxMemorySize alone', ['MaxMemorySize', 'fair share'])
        t.eq(bus.entry_count(), 0, 'the refused call stored nothing')
    t.run('one user, the whole limit', whole)

    def shares():
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
    t.run('fair shares', shares)

    def sealed_size():
        (_,), fds = bus.call('CreateMemory', '(sta{sv})', ('ms/root-sealed', MiB, {}), '(h)')
        t.eq(len(fds), 1, 'root CreateMemory hands back one fd')
        fd = fds[0]
        try:
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
    t.run('size sealed', sealed_size)


if __name__ == '__main__':
    harness.main(body)
