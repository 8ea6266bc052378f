#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 1 of issue 9: freeze the event loop with a lease.

Alice deposits her own file, takes a write lease on it and ignores the
break signal (SIGIO), then asks for a reopening (Retrieve reopen=true,
RetrieveMany access=read-only, Deposit access=read-only of a read-write
fd, OpenPath). An open() of a leased file waits for the lease break
(/proc/sys/fs/lease-break-time, 45 s by default; this test neither reads
nor changes it). If the broker opened on its loop, Bob's Retrieve of his
own entry would wait with it.

Asserted: Bob is answered while Alice still holds the lease; Alice gets
Busy naming the entry; once the lease is gone the broker holds no more
fds than before. Latencies are printed, never compared with a limit."""

import os
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_BUSY, memfd  # noqa: E402

OPEN_PATH_RULE = '''[Rule hostile-open-path]
Action=open-path
Match=/**
Subject=everyone
Result=yes
'''


def lease_held(path):
    """Whether /proc/locks still lists a lease (active or being broken) on
    path: the kernel removes it when the break time runs out."""
    ino = os.stat(path).st_ino
    with open('/proc/locks') as f:
        return any(' LEASE ' in ' %s ' % line and line.split()[5].endswith(':%d' % ino)
                   for line in f if len(line.split()) > 5)


def body(t):
    bus, users = harness.setup(t, need_users=True, policy_files={'50-hostile.conf': OPEN_PATH_RULE})
    alice = bus.client(users['alice'])
    bob = bus.client(users['bob'])

    t.success(bob.deposit('victim/entry', memfd('bob keeps working')), 'Bob deposits his own entry')
    path = 'leased-%d' % os.getpid()
    t.success(alice.fd_new('lf', {'type': 'file', 'path': path, 'data': 'alice owns this', 'mode': 'rw'}),
              'Alice creates her own file')
    t.success(alice.deposit('attack/leased', {'handle': 'lf'}), 'Alice deposits it (read-write)')
    full = os.path.join(bus.scratch, path)
    baseline = bus.service_fd_count()
    t.diag('service fds with both entries stored: %d' % baseline)
    t.success(alice.req('fd_lease', handle='lf', type='w'), 'Alice takes a write lease and ignores SIGIO')

    def attack(what, tag, start):
        t0 = time.monotonic()
        t.success(start(), '%s: the call is sent' % what)
        v0 = time.monotonic()
        res = bob.retrieve('victim/entry', timeout_ms=120000)
        victim = time.monotonic() - v0
        t.success(res, '%s: Bob\'s Retrieve of his own entry is answered' % what)
        t.ok(lease_held(full), '%s: ... while Alice\'s lease still stands (the kernel did not have to break it)'
             % what)
        t.diag('%s: victim latency %.1f ms' % (what, victim * 1000))
        ans = alice.wait_for(tag, timeout_ms=120000)
        t.diag('%s: attacker answered after %.1f ms: %s' % (what, (time.monotonic() - t0) * 1000,
                                                           ans.get('error') or 'an fd'))
        t.error(ans, E_BUSY, '%s: Alice is answered Busy, naming the entry' % what, [ans_name(what)])

    def ans_name(what):
        return '/' if what.startswith('OpenPath') else 'attack/leased'

    attack('Retrieve reopen=true', 'r1',
           lambda: alice.retrieve_async('r1', 'attack/leased', timeout_ms=120000, reopen=True))
    attack('Retrieve access=read-only', 'r2',
           lambda: alice.retrieve_async('r2', 'attack/leased', timeout_ms=120000, access='read-only'))

    res = alice.retrieve_many(['attack/leased'], reopen=True)
    t.error(res, E_BUSY, 'RetrieveMany reopen=true of the leased file is Busy', ['attack/leased'])
    res = alice.deposit('attack/narrowed', {'handle': 'lf'}, access='read-only')
    t.error(res, E_BUSY, 'Deposit access=read-only of the leased read-write file is Busy', ['attack/narrowed'])
    t.ok(lease_held(full), 'the lease still stands')

    # OpenPath opens with O_NONBLOCK: a lease is EWOULDBLOCK, not a wait.
    t0 = time.monotonic()
    res = alice.open_path(full)
    t.diag('OpenPath of the leased file answered after %.1f ms: %s' % ((time.monotonic() - t0) * 1000,
                                                                     res.get('error') or 'an fd'))
    t.error(res, E_BUSY, 'OpenPath of a leased file is Busy, naming the path', [full])
    t0 = time.monotonic()
    t.success(bob.retrieve('victim/entry'), 'Bob is still served after the OpenPath attempt')
    t.diag('victim latency after OpenPath: %.1f ms' % ((time.monotonic() - t0) * 1000))

    t.success(alice.req('fd_lease', handle='lf', type='none'), 'Alice releases the lease')
    t.success(alice.retrieve('attack/leased', reopen=True), 'without the lease, the reopening works')
    back = harness.poll_until(lambda: bus.service_fd_count() <= baseline, timeout=30)
    t.ok(back, 'the service holds no more fds than before the attack', {'baseline': baseline,
                                                                         'now': bus.service_fd_count()})


if __name__ == '__main__':
    harness.main(body)
