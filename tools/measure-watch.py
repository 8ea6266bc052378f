#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What watching costs, measured on a private bus (as root, after a build):

    sudo N=3000 M=3000 tools/measure-watch.py [BUILD_DIR]

1. Deposit+Remove latency seen by a client with no watcher and with 16
   watchers of '**' (each hears 2 signals per cycle), interleaved in blocks
   so that the machine's noise hits both alike. N cycles in all per side.
2. A watcher that stops reading (SIGSTOP): M deposit+remove cycles of its
   own user's entries queue 2*M signals for it in dbus-daemon; meanwhile
   another user's List latency is sampled. Numbers, not assertions: the
   machine is shared. Results are in docs/behaviour.md ("Watching")."""
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(SOURCE, 'build'))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
sys.dont_write_bytecode = True
import harness  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

N = int(os.environ.get('N', '2000'))
bus = harness.PrivateBus(os.path.join(BUILD, 'service', 'fdbroker'), SOURCE,
                         policy_files={'10-limits.conf': '[Limits]\nMaxEntries=200000\nMaxEntriesPerUser=200000\n'})
bus.start()
try:
    users = harness.ensure_test_users()
    conn = bus.conn
    fd = os.memfd_create('m', os.MFD_CLOEXEC)
    os.write(fd, b'x' * 100)

    def cycle(i):
        fl = Gio.UnixFDList.new(); fl.append(fd)
        t0 = time.perf_counter_ns()
        conn.call_with_unix_fd_list_sync('org.fdbroker.Broker1', '/org/fdbroker/Broker1', 'org.fdbroker.Broker1',
                                         'Deposit', GLib.Variant('(sha{sv})', ('m/%d' % i, 0, {})), None, 0, -1, fl, None)
        conn.call_sync('org.fdbroker.Broker1', '/org/fdbroker/Broker1', 'org.fdbroker.Broker1', 'Remove',
                       GLib.Variant('(s)', ('m/%d' % i,)), None, 0, -1, None)
        return (time.perf_counter_ns() - t0) / 1000

    def block(n, base):
        return [cycle(base + i) for i in range(n)]

    for i in range(200):
        cycle(i)
    watchers = []
    for _ in range(16):
        w = bus.client()
        w.req('subscribe')
        w.req('watch', patterns=['**'], options={})
        watchers.append(w)
    # interleave blocks: without (unwatch all) / with
    no, yes = [], []
    for rnd in range(6):
        for w in watchers:
            w.raw('Unwatch', None, [])
            w.req('signals', n=0, timeout_ms=1)
        no += block(N // 6, 10000 + rnd * 1000000)
        for w in watchers:
            w.req('watch', patterns=['**'], options={})
        yes += block(N // 6, 20000 + rnd * 1000000)
        for w in watchers:
            w.req('signals', n=0, timeout_ms=1)
    q = lambda v, p: sorted(v)[int(len(v) * p)]
    print('deposit+remove (us), %d cycles each, root, python gi client:' % len(no))
    print('  0 watchers:  median %.0f p99 %.0f' % (statistics.median(no), q(no, .99)))
    print('  16 watchers: median %.0f p99 %.0f (2 signals per cycle to each)' % (statistics.median(yes), q(yes, .99)))
    for w in watchers:
        w.close()

    # A watcher (alice) that stops reading: SIGSTOP it, then alice's other
    # connection makes deposits/removes of her own entries; bob's List latency.
    stopped = bus.client(users['alice']); stopped.req('subscribe'); stopped.req('watch', patterns=['**'], options={})
    os.kill(stopped.proc.pid, signal.SIGSTOP)
    alice = bus.client(users['alice'])
    bob = bus.client(users['bob'])
    M = int(os.environ.get('M', '20000'))
    lat = []
    t0 = time.monotonic()
    for i in range(M):
        alice.deposit('a/%d' % (i % 200), harness.memfd('x'))
        alice.remove('a/%d' % (i % 200))
        if i % 500 == 0:
            s = time.perf_counter_ns(); r = bob.list(); lat.append((time.perf_counter_ns() - s) / 1000)
            assert r.get('ok'), r
    el = time.monotonic() - t0
    print('stopped watcher: %d deposit+remove by alice in %.1f s (%d signals queued for it, ~%d KB)' %
          (M, el, 2 * M, 2 * M * 250 // 1024))
    print('  bob List latency (us) during it: median %.0f max %.0f' % (statistics.median(lat), max(lat)))
    print('  broker still answers:', bob.list().get('ok'))
    log = bus.daemon_log()
    print('  dbus-daemon log lines:', [l for l in log.splitlines() if 'limit' in l.lower() or 'disconnect' in l.lower()][:5])
    os.kill(stopped.proc.pid, signal.SIGCONT)
finally:
    bus.stop()
