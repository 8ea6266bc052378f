#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 3 of issue 9: read what only root may read through a reopening.

The broker runs as full root here (the harness starts it so). A reopening
(Retrieve reopen=true or a narrowing access, Deposit access=read-only)
must be made with the depositor's authority, never the broker's, and never
on a pseudo file system whose open() checks the opener:

- /proc/CHILD/mem of Alice's own child, deposited, then the child execs a
  setuid-root program: a root reopening would hand Alice its memory;
- /proc/kallsyms: Alice's own fd shows zeros, a root reopening addresses;
- a file Alice could read when she deposited it and no longer can;
- and what must keep working: a file Bob reads through a supplementary
  group is reopened for him (the bus-reported gids travel with the entry).
"""

import grp
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import E_ACCESS_DENIED, E_NOT_SUPPORTED  # noqa: E402

ELF_MAGIC = '7f454c46'


def euid_of(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('Uid:'):
                    return int(line.split()[2])
    except OSError:
        return None
    return None


def first_mapping(pid):
    with open('/proc/%d/maps' % pid) as f:
        line = f.readline()
    return int(line.split('-')[0], 16), line.strip()


def body(t):
    bus, users = harness.setup(t, need_users=True)
    alice = bus.client(users['alice'])
    bob = bus.client(users['bob'])
    d = tempfile.mkdtemp(prefix='fdb-hostile-')
    os.chmod(d, 0o755)
    try:
        run(t, bus, users, alice, bob, d)
    finally:
        alice.req('spawn_kill', handle='child')
        shutil.rmtree(d, ignore_errors=True)


def proc_mem(t, bus, users, alice, d):
    suid = os.path.join(d, 'suid-sleep')
    shutil.copy('/usr/bin/sleep', suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    child = alice.req('spawn', handle='child', argv=[suid, '1000'])
    t.success(child, 'Alice starts a child of her own')
    pid = child['pid']
    t.success(alice.fd_new('memrw', {'type': 'file', 'path': '/proc/%d/mem' % pid, 'create': False, 'mode': 'rw'}),
              'Alice opens /proc/CHILD/mem of her own child read-write')
    t.error(alice.deposit('attack/memrw', {'handle': 'memrw'}, access='read-only'), E_NOT_SUPPORTED,
            'Deposit access=read-only of it (a reopening at deposit) is NotSupported, naming the entry',
            ['attack/memrw'])
    t.error(alice.retrieve('attack/memrw'), harness.E_NOT_FOUND, 'and stores nothing')
    t.success(alice.fd_new('mem', {'type': 'file', 'path': '/proc/%d/mem' % pid, 'create': False, 'mode': 'r'}),
              'Alice opens /proc/CHILD/mem of her own child')
    t.success(alice.deposit('attack/mem', {'handle': 'mem'}), 'and deposits it')
    t.success(alice.req('spawn_go', handle='child'), 'the child execs a setuid-root program')
    became_root = harness.poll_until(lambda: euid_of(pid) == 0, timeout=30)
    if not became_root:
        raise harness.Skip('the setuid copy of sleep did not run as root (nosuid mount?)')
    addr, line = first_mapping(pid)
    t.diag('setuid process %d, first mapping %s' % (pid, line))

    res = alice.retrieve('attack/mem', reopen=True, keep='gotmem', read=False)
    if res.get('ok'):
        peek = alice.req('fd_pread', handle='gotmem', size=16, offset=addr)
        t.diag('BEFORE-FIX: Alice read the setuid process at %#x: %r' % (addr, peek))
    t.error(res, E_NOT_SUPPORTED, 'Retrieve reopen=true of /proc/CHILD/mem is NotSupported, naming the entry',
            ['attack/mem'])
    res = alice.retrieve('attack/mem', access='read-only', reopen=True, keep='gotmem2', read=False)
    t.error(res, E_NOT_SUPPORTED, 'so is reopen with access=read-only', ['attack/mem'])
    res = alice.retrieve('attack/mem', keep='own', read=False)
    t.success(res, 'without reopen Alice gets back the fd she deposited')
    if res.get('ok'):
        peek = alice.req('fd_pread', handle='own', size=16, offset=addr)
        t.diag('Alice\'s own fd after the exec: %r' % peek)
        t.ok(not (peek.get('ok') and peek['hex'].startswith(ELF_MAGIC)),
             'her own fd does not show the setuid program (it follows the old mm)', peek)
    alice.req('spawn_kill', handle='child')


def kallsyms(t, alice):
    if not os.path.exists('/proc/kallsyms'):
        raise harness.Skip('no /proc/kallsyms')
    t.success(alice.fd_new('ks', {'type': 'file', 'path': '/proc/kallsyms', 'create': False, 'mode': 'r'}),
              'Alice opens /proc/kallsyms')
    own = alice.req('fd_pread', handle='ks', size=64, offset=0)
    t.diag('Alice\'s view: %r' % bytes.fromhex(own.get('hex', '')).split(b'\n')[0])
    t.success(alice.deposit('attack/kallsyms', {'handle': 'ks'}), 'and deposits it')
    res = alice.retrieve('attack/kallsyms', reopen=True, keep='ks2', read=False)
    if res.get('ok'):
        peek = alice.req('fd_pread', handle='ks2', size=64, offset=0)
        t.diag('BEFORE-FIX: the reopening shows %r' % bytes.fromhex(peek.get('hex', '')).split(b'\n')[0])
    t.error(res, E_NOT_SUPPORTED, 'Retrieve reopen=true of /proc/kallsyms is NotSupported, naming the entry',
            ['attack/kallsyms'])


def lost_access(t, alice, d):
    secret = os.path.join(d, 'secret')
    with open(secret, 'w') as f:
        f.write('only root after the chmod')
    os.chmod(secret, 0o644)
    t.success(alice.fd_new('sec', {'type': 'file', 'path': secret, 'create': False, 'mode': 'r'}),
              'Alice opens a root file she may read')
    t.success(alice.deposit('attack/secret', {'handle': 'sec'}), 'and deposits it')
    os.chmod(secret, 0o600)
    res = alice.retrieve('attack/secret', reopen=True)
    if res.get('ok'):
        t.diag('BEFORE-FIX: Alice got a fresh root-only fd: %r' % res.get('fd'))
    t.error(res, E_ACCESS_DENIED, 'after a chmod 600, Retrieve reopen=true is AccessDenied, naming the entry',
            ['attack/secret'])
    t.success(alice.retrieve('attack/secret'), 'without reopen she still gets the fd she deposited')


def group_access(t, bob, alice, users, d):
    shared = os.path.join(d, 'video-only')
    with open(shared, 'w') as f:
        f.write('for the video group')
    os.chown(shared, 0, users['video'])
    os.chmod(shared, 0o640)
    t.success(bob.fd_new('vid', {'type': 'file', 'path': shared, 'create': False, 'mode': 'r'}),
              'Bob opens a file he reads through his supplementary group %s' % grp.getgrgid(users['video']).gr_name)
    t.success(bob.deposit('bob/video', {'handle': 'vid'}, allow=['user:%s' % users['alice']['name']]),
              'and deposits it for Alice too')
    res = bob.retrieve('bob/video', reopen=True)
    t.success(res, 'Bob\'s reopening works: his supplementary gids travel with the entry')
    t.eq((res.get('fd') or {}).get('accmode'), 'read-only', 'and is read-only as deposited')
    t.success(alice.retrieve('bob/video', reopen=True),
              'Alice\'s reopening of Bob\'s entry is made with Bob\'s authority, not hers')


def run(t, bus, users, alice, bob, d):
    t.run('proc mem', proc_mem, t, bus, users, alice, d)
    t.run('kallsyms', kallsyms, t, alice)
    t.run('lost access', lost_access, t, alice, d)
    t.run('group access', group_access, t, bob, alice, users, d)


if __name__ == '__main__':
    harness.main(body)
