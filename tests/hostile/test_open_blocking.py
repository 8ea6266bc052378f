#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attack 1 of issue 9, with an open() that really waits: a FUSE server
that never answers FUSE_OPEN (tests/hostile/fusestub.py, spoken over
/dev/fuse directly). A lease is answered at once thanks to O_NONBLOCK;
this is the case only the worker pool and its 5 s timer handle.

Alice deposits a file on the stub; then the stub stops answering opens and
Alice asks for a reopening (Retrieve reopen=true) and an OpenPath of it.
Asserted: Bob is served while the broker's open is held by the server and
before Alice is answered; Alice gets Busy; once the server lets go the
broker holds no more fds than before, and reopenings work again. Latencies
are printed, never compared with a limit."""

import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import E_BUSY, memfd  # noqa: E402
import fusestub  # noqa: E402

OPEN_PATH_RULE = '''[Rule hostile-open-path]
Action=open-path
Match=/**
Subject=everyone
Result=yes
'''


def body(t):
    if os.geteuid() != 0:
        raise harness.Skip('needs root to mount the FUSE stub')
    if not os.path.exists('/dev/fuse'):
        raise harness.Skip('no /dev/fuse')
    bus, users = harness.setup(t, need_users=True, policy_files={'50-hostile.conf': OPEN_PATH_RULE})
    mnt = tempfile.mkdtemp(prefix='fdb-fuse-')
    os.chmod(mnt, 0o755)
    stub = fusestub.FuseStub(mnt)
    try:
        stub.start()
    except OSError as e:
        shutil.rmtree(mnt, ignore_errors=True)
        raise harness.Skip('cannot mount a FUSE file system here: %s' % e)
    alice = bus.client(users['alice'])
    bob = bus.client(users['bob'])
    try:
        run(t, bus, stub, alice, bob)
    finally:
        alice.close()
        bob.close()
        stub.stop()
        os.rmdir(mnt)


def run(t, bus, stub, alice, bob):
    t.success(bob.deposit('victim/entry', memfd('bob keeps working')), 'Bob deposits his own entry')
    t.success(alice.fd_new('ff', {'type': 'file', 'path': stub.path(), 'create': False, 'mode': 'r'}),
              'Alice opens the file on the FUSE stub')
    t.success(alice.deposit('attack/fuse', {'handle': 'ff'}), 'and deposits it')
    baseline = bus.service_fd_count()

    # The loop reads an entry's size from the cache (statx DONT_SYNC): a
    # server that does not answer GETATTR cannot stall List or Retrieve.
    stub.hold_getattr = True
    res = alice.list()
    t.success(res, 'List (info with size) is answered while the stub holds every GETATTR')
    t.ok(stub.held_count() == 0, '... without asking the server', {'held': stub.held_count()})
    stub.release()

    stub.hold_opens = True

    t0 = time.monotonic()
    t.success(alice.retrieve_async('r1', 'attack/fuse', timeout_ms=120000, reopen=True),
              'Alice asks for a reopening; the stub holds the open')
    t.ok(harness.poll_until(lambda: stub.held_count() >= 1, timeout=60), 'the broker\'s open reached the stub')
    v0 = time.monotonic()
    res = bob.retrieve('victim/entry', timeout_ms=120000)
    victim = time.monotonic() - v0
    t.success(res, 'Bob\'s Retrieve is answered')
    t.diag('victim latency while the broker\'s open is held: %.1f ms' % (victim * 1000))
    t.ok(not alice.poll('r1'), '... before Alice is answered')
    ans = alice.wait_for('r1', timeout_ms=120000)
    t.diag('attacker answered after %.1f ms: %s' % ((time.monotonic() - t0) * 1000, ans.get('error') or 'an fd'))
    t.error(ans, E_BUSY, 'Alice is answered Busy, naming the entry', ['attack/fuse', 'did not open'])
    t.ok(stub.held_count() >= 1, 'the broker\'s open was still held by the stub when Alice was answered')
    t.success(bob.retrieve('victim/entry'), 'Bob is served after the timeout too')

    t0 = time.monotonic()
    res = alice.open_path(stub.path())
    t.diag('OpenPath of the stub file answered after %.1f ms: %s' % ((time.monotonic() - t0) * 1000,
                                                                   res.get('error') or 'an fd'))
    t.error(res, E_BUSY, 'OpenPath of a file whose open never returns is Busy, naming the path', [stub.path()])

    stub.release()
    back = harness.poll_until(lambda: bus.service_fd_count() <= baseline, timeout=30)
    t.ok(back, 'once the stub lets go, the service holds no more fds than before', {
        'baseline': baseline, 'now': bus.service_fd_count()})
    res = alice.retrieve('attack/fuse', reopen=True)
    t.success(res, 'a reopening works again when the server answers')
    t.eq((res.get('fd') or {}).get('read_head'), fusestub.DATA.decode(), 'and reads the file')


if __name__ == '__main__':
    harness.main(body)
