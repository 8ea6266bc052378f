# SPDX-License-Identifier: LGPL-2.1-or-later
"""OpenPath under open-path rules: the granted mode and the Access= cap,
symlinks anywhere on the path refused, relative and unnormalised paths
refused, FIFOs, directories and sockets refused without blocking, missing
files NotFound. OpenPath opens as the owner of each directory and of the
file (docs/behaviour.md, "OpenPath opens as the owner"): another user's
private file opens, a 0400 file does not open read-write. No polkit runs on
this bus. With FDBROKER_TEST_SERVICE_USER=fdbroker (meson test
policy-openpath-service-user) the broker runs as the unit runs it: user
fdbroker with CAP_SETUID and CAP_SETGID only."""

import os
import pwd
import shutil
import socket
import tempfile

import pytest

from harness import E_ACCESS_DENIED, E_INVALID_ARGS, E_NOT_FOUND, E_NOT_SUPPORTED, poll_until

FILES = {
    '10-open.conf': '''\
[Rule devnull-read-only]
Action=open-path
Match=/dev/null
Subject=user:fdbtest-alice
Result=yes
Access=read-only

[Rule devzero]
Action=open-path
Match=/dev/zero
Subject=user:fdbtest-alice
Result=yes

[Rule devfull-no]
Action=open-path
Match=/dev/full
Subject=everyone
Result=no

# Everything below the test's directory: a refusal there is the path's own.
[Rule paths]
Action=open-path
Match={tmp}/paths/**
Subject=user:fdbtest-alice
Result=yes
''',
}


@pytest.fixture
def tree(users):
    """TOP/paths: a file only root may open, sub/file, symlinks (to the
    file, to sub, out to /etc/shadow), a FIFO and a socket; bobs/ (bob's,
    0700) with bob's 0600 diary; root's 0400 ro and bob's 0400 ro-bob;
    shut/ (root's, 0600: its owner may not search it) with a 0644 file.
    Returns TOP."""
    top = tempfile.mkdtemp(prefix='fdbtest-openpath-')
    os.chmod(top, 0o755)
    paths = os.path.join(top, 'paths')
    sub = os.path.join(paths, 'sub')
    os.makedirs(sub)
    os.chmod(paths, 0o755)
    os.chmod(sub, 0o755)
    bob = users['bob']
    bobs = os.path.join(paths, 'bobs')
    os.mkdir(bobs, 0o700)
    with open(os.path.join(bobs, 'diary'), 'w') as f:
        f.write("bob's diary")
    os.chmod(os.path.join(bobs, 'diary'), 0o600)
    os.chown(os.path.join(bobs, 'diary'), bob['uid'], bob['gid'])
    os.chown(bobs, bob['uid'], bob['gid'])
    os.chmod(bobs, 0o700)
    for name, uid, gid in (('ro', 0, 0), ('ro-bob', bob['uid'], bob['gid'])):
        with open(os.path.join(paths, name), 'w') as f:
            f.write('read me only')
        os.chown(os.path.join(paths, name), uid, gid)
        os.chmod(os.path.join(paths, name), 0o400)
    shut = os.path.join(paths, 'shut')
    os.mkdir(shut)
    with open(os.path.join(shut, 'inside'), 'w') as f:
        f.write('inside')
    os.chmod(os.path.join(shut, 'inside'), 0o644)
    os.chmod(shut, 0o600)
    with open(os.path.join(paths, 'real'), 'w') as f:
        f.write('the real file')
    with open(os.path.join(sub, 'file'), 'w') as f:
        f.write('in sub')
    os.chmod(os.path.join(paths, 'real'), 0o600)  # only root (the broker) may open it
    os.symlink('real', os.path.join(paths, 'link'))
    os.symlink('sub', os.path.join(paths, 'dirlink'))
    os.symlink('/etc/shadow', os.path.join(paths, 'escape'))
    os.mkfifo(os.path.join(paths, 'fifo'))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(paths, 'sock'))
    yield top
    sock.close()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def paths(tree):
    return os.path.join(tree, 'paths')


@pytest.fixture
def sub(paths):
    return os.path.join(paths, 'sub')


@pytest.fixture
def bus(bus_with, tree):
    """A fresh bus and broker whose service reads only FILES ({tmp}: the tree)."""
    return bus_with(policy_files={k: v.replace('{tmp}', tree) for k, v in FILES.items()})


def test_an_access_cap_holds_and_nonblock_is_honoured_for_dev_null(t, alice, bob):
    r = alice.open_path('/dev/null')
    t.success(r, 'rule devnull-read-only lets alice open /dev/null')
    fd = r.get('fd', {})
    t.eq(fd.get('accmode'), 'read-only', 'F_GETFL of the fd she gets says read-only')
    t.eq(fd.get('type'), 'char-device', 'it is the character device')
    t.eq(fd.get('nonblock'), False, 'without nonblock the fd is blocking')
    t.ok(fd.get('cloexec'), 'and close-on-exec')
    t.error(alice.open_path('/dev/null', access='read-write'), E_ACCESS_DENIED,
            'read-write is above the rule\'s Access=read-only: AccessDenied', ['/dev/null', 'read-only'])
    t.error(alice.open_path('/dev/null', access='write-only'), E_ACCESS_DENIED, 'so is write-only')
    t.eq(alice.open_path('/dev/null', nonblock=True).get('fd', {}).get('nonblock'), True,
         'nonblock=true hands back an O_NONBLOCK fd')
    t.error(bob.open_path('/dev/null'), E_ACCESS_DENIED,
            'no rule names bob: polkit decides, and there is none on this bus', ['not reachable'])
    t.error(alice.open_path('/dev/full'), E_ACCESS_DENIED, 'rule devfull-no refuses /dev/full',
            ['devfull-no'])


def test_the_fd_has_exactly_the_granted_mode(t, alice):
    for mode in ('read-only', 'write-only', 'read-write'):
        r = alice.open_path('/dev/zero', access=mode)
        t.eq(r.get('fd', {}).get('accmode'), mode, 'rule devzero (no cap): access=%s opens %s' % (mode, mode))


def test_granted_files_open_and_symlinks_and_other_types_are_refused(t, alice, paths, sub):
    r = alice.open_path(os.path.join(paths, 'real'))
    t.success(r, 'the rule grants %s/real (root\'s, mode 0600: opened as its owner)' % paths)
    t.eq(r.get('fd', {}).get('read_head'), 'the real file', 'and alice reads it')
    t.success(alice.open_path(os.path.join(sub, 'file')), 'and sub/file')
    t.error(alice.open_path(os.path.join(paths, 'link')), E_INVALID_ARGS,
            'a symlink to a granted file is refused', ['symbolic link'])
    t.error(alice.open_path(os.path.join(paths, 'dirlink', 'file')), E_INVALID_ARGS,
            'a symlinked directory in the middle of the path is refused', ['symbolic link'])
    t.error(alice.open_path(os.path.join(paths, 'escape')), E_INVALID_ARGS,
            'a symlink out of the granted tree (to /etc/shadow) is refused', ['symbolic link'])
    t.error(alice.open_path(os.path.join(paths, 'missing')), E_NOT_FOUND, 'a missing file is NotFound')
    t.error(alice.open_path(sub), E_NOT_SUPPORTED, 'a directory is NotSupported')
    t.error(alice.open_path(os.path.join(paths, 'sock')), E_NOT_SUPPORTED, 'a socket file is NotSupported')


def test_a_fifo_is_refused_without_blocking_the_broker(t, alice, bob, paths):
    # Opening a FIFO read-only without a writer would block: a broker
    # that did so would answer nothing and this call would time out.
    fifo_path = os.path.join(paths, 'fifo')
    t.error(alice.open_path(fifo_path), E_NOT_SUPPORTED, 'a FIFO (no writer) is NotSupported',
            ['not a regular file or a device'])
    t.error(alice.open_path(fifo_path, access='write-only'), E_NOT_SUPPORTED, 'write-only too')
    t.success(bob.req('ping'), 'the service answers another caller right after')


def test_relative_and_unnormalised_paths_are_refused(t, alice, paths, sub):
    for p in ('dev/null', '', '/dev/../dev/null', '/dev/./null', '/dev//null', '/dev/null/', '//dev/null',
              os.path.join(sub, '..', 'real'), os.path.join(paths, '.', 'real')):
        t.error(alice.open_path(p), E_INVALID_ARGS, 'path %r is refused as not absolute and normalised' % p,
                ['absolute and normalised'])


def _service_status(bus):
    with open('/proc/%d/status' % bus.service_pid()) as f:
        return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)


def test_opens_as_the_owner(t, bus, alice, paths, users):
    """What the owner could open opens (another user's private file in that
    user's private directory, root's 0600 file, a device); what the owner's
    permission bits refuse is refused, as it would have opened with
    CAP_DAC_OVERRIDE: a 0400 file read-write or write-only, a file in a
    directory its owner may not search. Every refusal names the path and
    the mode, and leaves the broker's fd count where it was."""
    st = _service_status(bus)
    want = os.environ.get('FDBROKER_TEST_SERVICE_USER')
    cap_eff = int(st['CapEff'], 16)
    t.diag('the broker runs as uid %s, CapEff %s' % (st['Uid'].split()[1], st['CapEff']))
    if want:
        t.eq(int(st['Uid'].split()[1]), pwd.getpwnam(want).pw_uid, 'the broker runs as %s, as the unit runs it' % want)
        t.eq(cap_eff, (1 << 6) | (1 << 7), 'with CAP_SETGID and CAP_SETUID only (no CAP_DAC_OVERRIDE)')
    baseline = bus.service_fd_count()

    r = alice.open_path(os.path.join(paths, 'bobs', 'diary'), access='read-write')
    t.success(r, "bob's 0600 diary in bob's 0700 directory opens read-write for alice (rule paths)")
    t.eq(r.get('fd', {}).get('read_head'), "bob's diary", 'and she reads it')
    t.eq(r.get('fd', {}).get('accmode'), 'read-write', 'read-write')
    r = alice.open_path(os.path.join(paths, 'real'), access='read-write')
    t.success(r, "root's 0600 file opens read-write")
    t.success(alice.open_path('/dev/zero', access='read-write'), 'a device node (/dev/zero, root 0666) opens')
    t.success(alice.open_path(os.path.join(paths, 'ro')), "root's 0400 file opens read-only")
    t.success(alice.open_path(os.path.join(paths, 'ro-bob')), "bob's 0400 file opens read-only")
    for name in ('ro', 'ro-bob'):
        path = os.path.join(paths, name)
        t.error(alice.open_path(path, access='read-write'), E_ACCESS_DENIED,
                '%s (0400) asked read-write is refused: its owner may not write it' % name,
                [path, 'read-write', 'owner'])
        t.error(alice.open_path(path, access='write-only'), E_ACCESS_DENIED,
                '%s (0400) asked write-only is refused' % name, [path, 'write-only'])
    inside = os.path.join(paths, 'shut', 'inside')
    t.error(alice.open_path(inside), E_ACCESS_DENIED,
            "a 0644 file in root's 0600 directory (its owner may not search it) is refused",
            [inside, 'read-only', 'directory'])
    t.error(alice.open_path(os.path.join(paths, 'link')), E_INVALID_ARGS, 'a symlink is still refused',
            ['symbolic link'])
    t.error(alice.open_path(os.path.join(paths, 'dirlink', 'file')), E_INVALID_ARGS,
            'and so is a symlinked directory on the way', ['symbolic link'])
    ok = poll_until(lambda: bus.service_fd_count() == baseline, timeout=10)
    t.ok(ok, "the broker's fd count is back to %d after the opens and the refusals" % baseline,
         None if ok else {'count': bus.service_fd_count(), 'fds': bus.service_fds()})
