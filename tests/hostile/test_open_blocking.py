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

import time

import pytest

import fusestub
import harness
from harness import E_BUSY, memfd
from hostileutil import OPEN_PATH_RULE, timed

BUS_OPTIONS = {'policy_files': {'50-hostile.conf': OPEN_PATH_RULE}}


@pytest.fixture
def baseline(t, bus, alice, bob, fuse_stub):
    """Bob's own victim/entry, Alice's file on the stub deposited as
    attack/fuse; returns the service's fd count then."""
    t.success(bob.deposit('victim/entry', memfd('bob keeps working')), 'Bob deposits his own entry')
    t.success(alice.fd_new('ff', {'type': 'file', 'path': fuse_stub.path(), 'create': False, 'mode': 'r'}),
              'Alice opens the file on the FUSE stub')
    t.success(alice.deposit('attack/fuse', {'handle': 'ff'}), 'and deposits it')
    return bus.service_fd_count()


def server_lets_go(t, bus, fuse_stub, baseline):
    fuse_stub.release()
    back = harness.poll_until(lambda: bus.service_fd_count() <= baseline, timeout=30)
    t.ok(back, 'once the stub lets go, the service holds no more fds than before', {
        'baseline': baseline, 'now': bus.service_fd_count()})


def test_list_is_answered_without_asking_a_server_that_holds_every_getattr(t, alice, fuse_stub, baseline):
    # The loop reads an entry's size from the cache (statx DONT_SYNC): a
    # server that does not answer GETATTR cannot stall List or Retrieve.
    fuse_stub.hold_getattr = True
    res = alice.list()
    t.success(res, 'List (info with size) is answered while the stub holds every GETATTR')
    t.ok(fuse_stub.held_count() == 0, '... without asking the server', {'held': fuse_stub.held_count()})


def test_an_open_the_server_never_answers_does_not_stop_other_callers_being_answered(t, bus, alice, bob,
                                                                                      fuse_stub, baseline):
    fuse_stub.hold_opens = True
    t0 = time.monotonic()
    t.success(alice.retrieve_async('r1', 'attack/fuse', timeout_ms=120000, reopen=True),
              'Alice asks for a reopening; the stub holds the open')
    t.ok(harness.poll_until(lambda: fuse_stub.held_count() >= 1, timeout=60), 'the broker\'s open reached the stub')
    res, victim_ms = timed(bob.retrieve, 'victim/entry', timeout_ms=120000)
    t.success(res, 'Bob\'s Retrieve is answered')
    t.diag('victim latency while the broker\'s open is held: %.1f ms' % victim_ms)
    t.ok(not alice.poll('r1'), '... before Alice is answered')
    ans = alice.wait_for('r1', timeout_ms=120000)
    t.diag('attacker answered after %.1f ms: %s' % ((time.monotonic() - t0) * 1000, ans.get('error') or 'an fd'))
    t.error(ans, E_BUSY, 'Alice is answered Busy, naming the entry', ['attack/fuse', 'did not open'])
    t.ok(fuse_stub.held_count() >= 1, 'the broker\'s open was still held by the stub when Alice was answered')
    t.success(bob.retrieve('victim/entry'), 'Bob is served after the timeout too')
    server_lets_go(t, bus, fuse_stub, baseline)
    res = alice.retrieve('attack/fuse', reopen=True)
    t.success(res, 'a reopening works again when the server answers')
    t.eq((res.get('fd') or {}).get('read_head'), fusestub.DATA.decode(), 'and reads the file')


def test_openpath_of_a_file_whose_open_never_returns_is_busy(t, bus, alice, bob, fuse_stub, baseline):
    fuse_stub.hold_opens = True
    res, ms = timed(alice.open_path, fuse_stub.path())
    t.diag('OpenPath of the stub file answered after %.1f ms: %s' % (ms, res.get('error') or 'an fd'))
    t.error(res, E_BUSY, 'OpenPath of a file whose open never returns is Busy, naming the path', [fuse_stub.path()])
    t.ok(fuse_stub.held_count() >= 1, 'the broker\'s open was still held by the stub when Alice was answered')
    res, victim_ms = timed(bob.retrieve, 'victim/entry')
    t.success(res, 'Bob is served while the stub still holds the open')
    t.diag('victim latency after the OpenPath: %.1f ms' % victim_ms)
    server_lets_go(t, bus, fuse_stub, baseline)
    res = alice.open_path(fuse_stub.path())
    t.success(res, 'OpenPath works again when the server answers')
