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
from types import SimpleNamespace

import pytest

import harness
from harness import E_ACCESS_DENIED, E_NOT_FOUND, E_NOT_SUPPORTED

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


@pytest.fixture
def child(t, alice, shared_dir):
    """A child of Alice's own, waiting to exec a setuid-root copy of sleep
    (alice.req('spawn_go', handle='child')); killed after the test."""
    suid = os.path.join(shared_dir, 'suid-sleep')
    shutil.copy('/usr/bin/sleep', suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    c = alice.req('spawn', handle='child', argv=[suid, '1000'])
    t.success(c, 'Alice starts a child of her own')
    yield c.get('pid')
    alice.req('spawn_kill', handle='child')


@pytest.fixture
def setuid_mem(t, alice, child):
    """Alice's child's /proc/CHILD/mem deposited as attack/mem, then the
    child execs the setuid program. .addr: its first mapping."""
    pid = child
    t.success(alice.fd_new('mem', {'type': 'file', 'path': '/proc/%d/mem' % pid, 'create': False, 'mode': 'r'}),
              'Alice opens /proc/CHILD/mem of her own child')
    t.success(alice.deposit('attack/mem', {'handle': 'mem'}), 'and deposits it')
    t.success(alice.req('spawn_go', handle='child'), 'the child execs a setuid-root program')
    if not harness.poll_until(lambda: euid_of(pid) == 0, timeout=30):
        pytest.skip('the setuid copy of sleep did not run as root (nosuid mount?)')
    addr, line = first_mapping(pid)
    t.diag('setuid process %d, first mapping %s' % (pid, line))
    return SimpleNamespace(pid=pid, addr=addr)


def test_a_narrowing_deposit_of_proc_pid_mem_is_notsupported_and_stores_nothing(t, alice, child):
    t.success(alice.fd_new('memrw', {'type': 'file', 'path': '/proc/%d/mem' % child, 'create': False,
                                     'mode': 'rw'}),
              'Alice opens /proc/CHILD/mem of her own child read-write')
    t.error(alice.deposit('attack/memrw', {'handle': 'memrw'}, access='read-only'), E_NOT_SUPPORTED,
            'Deposit access=read-only of it (a reopening at deposit) is NotSupported, naming the entry',
            ['attack/memrw'])
    t.error(alice.retrieve('attack/memrw'), E_NOT_FOUND, 'and stores nothing')


def test_reopening_proc_pid_mem_after_a_setuid_exec_is_notsupported(t, alice, setuid_mem):
    res = alice.retrieve('attack/mem', reopen=True, keep='gotmem', read=False)
    if res.get('ok'):
        peek = alice.req('fd_pread', handle='gotmem', size=16, offset=setuid_mem.addr)
        t.diag('BEFORE-FIX: Alice read the setuid process at %#x: %r' % (setuid_mem.addr, peek))
    t.error(res, E_NOT_SUPPORTED, 'Retrieve reopen=true of /proc/CHILD/mem is NotSupported, naming the entry',
            ['attack/mem'])
    res = alice.retrieve('attack/mem', access='read-only', reopen=True, keep='gotmem2', read=False)
    t.error(res, E_NOT_SUPPORTED, 'so is reopen with access=read-only', ['attack/mem'])


def test_the_deposited_proc_pid_mem_fd_does_not_show_the_setuid_program(t, alice, setuid_mem):
    res = alice.retrieve('attack/mem', keep='own', read=False)
    t.success(res, 'without reopen Alice gets back the fd she deposited')
    if res.get('ok'):
        peek = alice.req('fd_pread', handle='own', size=16, offset=setuid_mem.addr)
        t.diag('Alice\'s own fd after the exec: %r' % peek)
        t.ok(not (peek.get('ok') and peek['hex'].startswith(ELF_MAGIC)),
             'her own fd does not show the setuid program (it follows the old mm)', peek)


def test_reopening_proc_kallsyms_is_notsupported(t, alice):
    if not os.path.exists('/proc/kallsyms'):
        pytest.skip('no /proc/kallsyms')
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


def test_a_reopening_of_a_file_the_depositor_may_no_longer_read_is_access_denied(t, alice, shared_dir):
    secret = os.path.join(shared_dir, 'secret')
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


@pytest.fixture
def video_entry(t, users, bob, shared_dir):
    """bob/video: a root file of group fdbtest-video (0640) Bob reads
    through that supplementary group, deposited by him for Alice too."""
    shared = os.path.join(shared_dir, 'video-only')
    with open(shared, 'w') as f:
        f.write('for the video group')
    os.chown(shared, 0, users['video'])
    os.chmod(shared, 0o640)
    t.success(bob.fd_new('vid', {'type': 'file', 'path': shared, 'create': False, 'mode': 'r'}),
              'Bob opens a file he reads through his supplementary group %s' % grp.getgrgid(users['video']).gr_name)
    t.success(bob.deposit('bob/video', {'handle': 'vid'}, allow=['user:%s' % users['alice']['name']]),
              'and deposits it for Alice too')
    return 'bob/video'


def test_a_reopening_is_made_with_the_depositors_supplementary_groups(t, bob, video_entry):
    res = bob.retrieve(video_entry, reopen=True)
    t.success(res, 'Bob\'s reopening works: his supplementary gids travel with the entry')
    t.eq((res.get('fd') or {}).get('accmode'), 'read-only', 'and is read-only as deposited')


def test_a_reopening_for_another_caller_is_made_with_the_depositors_authority(t, alice, video_entry):
    t.success(alice.retrieve(video_entry, reopen=True),
              'Alice\'s reopening of Bob\'s entry is made with Bob\'s authority, not hers')
