# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 9: no uid takes more than its share of the worker pool, of the
direct connections or of the watches (service/accounting.c charges each to
the caller's uid: [Limits] Max*PerUser, and dbus-broker's fair share of what
is left of Max*).

Small totals are set with [Limits] so that the fair share is what binds:
one user alone may take at most half of a pool. For each resource Alice
takes all she can; asserted: she is refused with QuotaExceeded naming the
limit, holds at most half, and Bob is still served while she holds it.
The worker pool is filled with opens a FUSE stub never answers
(tests/hostile/fusestub.py): a job answered Busy still holds its slot until
the kernel lets its thread go, and counts against Alice alone."""

import os

import harness
from harness import E_BUSY, E_QUOTA
from hostileutil import timed

MAX_WORKERS = 8
MAX_DIRECT = 20
MAX_WATCHES = 6

LIMITS = '''[Limits]
MaxWorkers=%d
MaxDirectConnections=%d
MaxWatches=%d
''' % (MAX_WORKERS, MAX_DIRECT, MAX_WATCHES)

BUS_OPTIONS = {'policy_files': {'50-limits.conf': LIMITS}}


def test_one_user_holds_at_most_half_of_the_watches_and_others_still_watch(t, alice, bob):
    """Watch is one per connection: Alice watches on her own connection and
    on direct connections (the socket) until refused."""
    got, refusal = 0, None
    res = alice.req('watch', patterns=['**'])
    if res.get('ok'):
        got += 1
    else:
        refusal = res
    while refusal is None and got <= MAX_WATCHES:
        c = alice.req('direct_socket_connect')
        if not c.get('ok'):
            refusal = c
            break
        res = alice.req('direct_call', index=c['index'], method='Watch', sig='(asa{sv})', args=[['**'], {}])
        if res.get('ok'):
            got += 1
        else:
            refusal = res
    t.diag('Alice holds %d watches of MaxWatches=%d, then: %s' % (got, MAX_WATCHES, (refusal or {}).get('message')))
    t.error(refusal, E_QUOTA, 'Alice is refused a watch past her share, naming the limit', ['MaxWatches'])
    t.ok(1 <= got <= MAX_WATCHES // 2, 'Alice holds at most half of MaxWatches (%d)' % got)
    bob.req('subscribe')
    t.success(bob.req('watch', patterns=['victim/*']), 'Bob still gets a watch while Alice holds hers')
    t.success(bob.deposit('victim/watched', harness.memfd('x')), 'and Bob deposits')
    sig = bob.req('signals', n=1, timeout_ms=30000)
    names = [s.get('name') for s in sig.get('signals', [])] if sig.get('ok') else sig
    t.ok('victim/watched' in names, 'Bob\'s watch works: he hears of his entry', {'signals': sig})
    # Closing her direct connections and Unwatch give the watches back
    # (with Bob holding one, one is all her share of 6 allows).
    alice.req('direct_close')
    t.success(alice.raw('Unwatch', '()', []), 'Alice unwatches on her own connection')
    # The broker frees closed connections from its loop, soon after.
    c = alice.req('direct_socket_connect')
    last = [c]

    def watch_again():
        last[0] = alice.req('direct_call', index=c.get('index', 0), method='Watch', sig='(asa{sv})',
                            args=[['**'], {}]) if c.get('ok') else c
        return last[0].get('ok')
    harness.poll_until(watch_again, timeout=30)
    t.success(last[0], 'once Alice closed her direct connections she may watch again')


def test_one_user_holds_at_most_half_of_the_direct_connections_and_others_still_connect(t, alice, bob):
    """Alice opens direct connections on the socket until refused."""
    got, refusal = 0, None
    while got <= MAX_DIRECT:
        c = alice.req('direct_socket_connect')
        if not c.get('ok'):
            refusal = c
            break
        res = alice.req('direct_call', index=c['index'], method='List', sig='(a{sv})', args=[{}])
        if not res.get('ok'):
            refusal = res
            break
        got += 1
    mine = 1 if harness.transport() == 'direct-socket' else 0  # her client connection is one too
    t.diag('Alice holds %d direct connections (+%d) of MaxDirectConnections=%d, then: %s'
           % (got, mine, MAX_DIRECT, (refusal or {}).get('message')))
    t.error(refusal, E_QUOTA, 'Alice is refused a direct connection past her share, naming the limit',
            ['MaxDirectConnections'])
    t.ok(got >= 1 and got + mine <= MAX_DIRECT // 2, 'Alice holds at most half of MaxDirectConnections')
    c = bob.req('direct_socket_connect')
    res = bob.req('direct_call', index=c['index'], method='List', sig='(a{sv})', args=[{}]) if c.get('ok') else c
    t.success(res, 'Bob still gets a direct connection (socket) and is answered on it')
    res = alice.req('open_connection', keep=True)
    t.error(res, E_QUOTA, 'OpenConnection by Alice is refused too, naming the limit', ['MaxDirectConnections'])
    bob.req('direct_close')
    last = [None]

    def bob_opens():
        last[0] = bob.req('open_connection', keep=True)
        return last[0].get('ok')
    harness.poll_until(bob_opens, timeout=30)  # closed connections go soon after, from the loop
    t.success(last[0], 'and Bob gets one from OpenConnection when he closed his first (his share of what '
              'Alice left is one)')
    alice.req('direct_close')
    ok = harness.poll_until(lambda: alice.req('direct_cycles', n=1).get('failures') == [], timeout=30)
    t.ok(ok, 'once Alice closed hers she is served again')


def test_one_user_holds_at_most_half_of_the_worker_pool_and_others_reopenings_are_served(t, bus, alice, bob,
                                                                                         fuse_stub):
    t.success(alice.fd_new('ff', {'type': 'file', 'path': fuse_stub.path(), 'create': False, 'mode': 'r'}),
              'Alice opens the file on the FUSE stub')
    t.success(alice.deposit('attack/fuse', {'handle': 'ff'}), 'and deposits it')
    t.success(bob.deposit('victim/file', {'type': 'file', 'path': 'sr-bob-%d' % os.getpid(),
                                          'data': 'bob keeps working'}),
              'Bob deposits a file of his own')
    baseline = bus.service_fd_count()
    fuse_stub.hold_opens = True
    stuck, refusal = 0, None
    while stuck <= MAX_WORKERS:
        tag = 'r%d' % stuck
        alice.retrieve_async(tag, 'attack/fuse', timeout_ms=120000, reopen=True)
        harness.poll_until(lambda: fuse_stub.held_count() > stuck or alice.poll(tag), timeout=60)
        if fuse_stub.held_count() > stuck:
            stuck += 1
            continue
        refusal = alice.wait_for(tag)
        break
    t.diag('Alice has %d opens stuck of MaxWorkers=%d, then: %s'
           % (stuck, MAX_WORKERS, (refusal or {}).get('message')))
    t.error(refusal, E_QUOTA, 'Alice is refused another open past her share, naming the limit', ['MaxWorkers'])
    t.ok(1 <= stuck <= MAX_WORKERS // 2, 'Alice holds at most half of the pool (%d)' % stuck)
    res, ms = timed(bob.retrieve, 'victim/file', reopen=True, timeout_ms=120000)
    t.diag('victim reopening answered after %.1f ms' % ms)
    t.success(res, 'Bob\'s reopening (on the pool) is served while Alice\'s opens are stuck')
    t.ok(not alice.poll('r0'), '... before Alice is answered')
    ans = alice.wait_for('r0', timeout_ms=120000)
    t.error(ans, E_BUSY, 'Alice\'s stuck open is answered Busy', ['attack/fuse'])
    for i in range(1, stuck):
        alice.wait_for('r%d' % i, timeout_ms=120000)
    t.ok(fuse_stub.held_count() >= stuck, 'the broker\'s opens are still held by the stub')
    res = alice.retrieve('attack/fuse', reopen=True, timeout_ms=120000)
    t.error(res, E_QUOTA, 'answered Busy, her stuck opens still count against her', ['MaxWorkers'])
    t.success(bob.retrieve('victim/file', reopen=True), 'and Bob is still served')
    fuse_stub.release()
    back = harness.poll_until(lambda: bus.service_fd_count() <= baseline, timeout=30)
    t.ok(back, 'once the stub lets go the service holds no more fds than before',
         {'baseline': baseline, 'now': bus.service_fd_count()})
    res = harness.poll_until(lambda: alice.retrieve('attack/fuse', reopen=True).get('ok'), timeout=30)
    t.ok(res, 'and Alice\'s slots came back: her reopening works again')
