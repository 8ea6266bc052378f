# SPDX-License-Identifier: LGPL-2.1-or-later
"""Persistent entries across restarts and crashes, with a fake systemd.

fake_manager.FakeManager plays systemd's part (NOTIFY_SOCKET, fd store,
LISTEN_FDS); the service runs from the build tree on a private bus whose own
activation is switched off, so only the managed broker ever owns the name
(conftest.py: `manager`, `managed_bus`). Every test has its own bus, manager
and broker.

`scenario` deposits entries of several kinds (memfd, sealed read-only memfd,
unlinked regular file, pipe, socket) from several users, with ACLs, a
timeout, `replace` and `once`, plus connection-lifetime ones; a test then
restarts (SIGTERM) or crashes (SIGKILL) the broker. After each start every
persistent entry must come back with the same bytes, the same ACL outcomes
and the same info (created-usec, expires-usec included); removed, expired,
consumed-once and connection-lifetime entries must not. A stored fd with no
metadata line and a metadata line with no fd are dropped and logged. The
state file is never readable by group or others, even with umask 0.
"""

import os
import signal
import time

import pytest

import harness
from harness import E_NOT_FOUND, poll_until
import fdcheck

HOUR_USEC = 3600 * 1000000
DESCRIPTION = "alice's 100% buffer, v2: \u2713 \u00fc\ttab\nsecond line =-"
P = {'lifetime': 'persistent'}


def now_usec():
    return time.clock_gettime_ns(time.CLOCK_REALTIME) // 1000


class Entry:
    """One entry the test deposits and follows.

    by: 'alice', 'bob', 'carol', 'carol2' (a client) or 'root' (the test
    process). make: a client.py fd spec (clients) or an fdcheck kind (root).
    ok / no: clients that must / must not be able to retrieve it.
    fragile: why systemd may drop it from its store (None: it must survive).
    """

    def __init__(self, name, by, make, opts=None, ok=(), no=(), fragile=None, data=None):
        self.name = name
        self.by = by
        self.make = make
        self.opts = dict(opts or {})
        self.ok = list(ok)
        self.no = list(no)
        self.fragile = fragile
        self.data = data          # root-made: the bytes
        self.sha = None           # sha256 of the bytes behind the fd
        self.ident = None         # (dev, ino) for pipes and sockets
        self.info = None          # List info right after deposit
        self.keep = []            # root-made: the other ends held open

    @property
    def persistent(self):
        return self.opts.get('lifetime') == 'persistent'


def dbus_error(e):
    name = harness.Gio.DBusError.get_remote_error(e)
    return name or 'local:%s' % e.message


class Root:
    """The test process's own (root) calls, on bus.conn."""

    def __init__(self, bus):
        self.bus = bus

    def deposit(self, name, fd, **opts):
        self.bus.call('Deposit', '(sha{sv})', (name, 0, harness.to_gvariant_dict(opts)), fds=[fd])

    def retrieve(self, name):
        """(info, fd) with fd owned by the caller, or (error name, None)."""
        try:
            r, fds = self.bus.call('Retrieve', '(sa{sv})', (name, {}), '(ha{sv})')
        except harness.GLib.Error as e:
            return dbus_error(e), None
        fd = fds[r[0]]
        for other in fds:
            if other != fd:
                os.close(other)
        return r[1], fd

    def retrieve_error(self, name):
        """The error a root Retrieve of name gets (None if it succeeds)."""
        info, fd = self.retrieve(name)
        if fd is not None:
            os.close(fd)
            return None
        return info

    def list(self):
        r, _ = self.bus.call('List', '(a{sv})', ({},), '(a(sa{sv}))')
        return {name: info for name, info in r[0]}

    def remove(self, name):
        self.bus.call('Remove', '(s)', (name,))


def read_state(path):
    """{name: store id} of the lines of the state file (format 2:
    'E ID STORE-ID NAME ...'), or None without one."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    out = {}
    for line in text.splitlines():
        p = line.split(' ')
        if len(p) >= 4 and p[0] == 'E':
            out[p[3]] = p[2]
    return out


class Broker:
    """A broker under a fake manager (with a runtime directory and a 2 s
    watchdog) on the test's bus, and the restart every test uses."""

    def __init__(self, t, bus, mgr):
        self.t = t
        self.bus = bus
        self.mgr = mgr
        self.root = Root(bus)
        self.state_path = mgr.state_path

    def probe(self):
        return {'owned': self.bus.service_running(), 'count': self.bus.entry_count()}

    def ready_state(self, pid):
        """What probe() saw when pid sent READY=1 (a call that failed
        there, e.g. because nobody owned the name, is {'error': ...})."""
        r = dict(self.mgr.ready_probe_results).get(pid)
        return r if isinstance(r, dict) else {'error': repr(r)}

    def start(self):
        return self.mgr.start(ready_probe=self.probe)

    def state(self):
        return read_state(self.state_path) or {}

    def restart(self, phase, sig, expected, before_start=None):
        """Stop with sig, start again; expected: entries at least restored."""
        t, mgr = self.t, self.mgr
        old = mgr.main_pid
        st = mgr.stop(sig)
        if sig == signal.SIGTERM:
            t.eq(st, 0, '%s: SIGTERM: the broker exits with status 0' % phase)
            t.ok(mgr.wait_message(lambda f: f.get('STOPPING') == '1', timeout=0, pid=old) is not None,
                 '%s: STOPPING=1 before exiting' % phase)
        else:
            t.eq(st, -sig, '%s: the broker died of signal %d' % (phase, sig))
        if before_start:
            before_start()
        pid = self.start()
        at_ready = self.ready_state(pid)
        t.ok(at_ready.get('owned') is True, '%s: at READY=1 the name is owned' % phase, at_ready)
        t.ok(at_ready.get('count', -1) >= expected,
             '%s: at READY=1 the restored entries are already there (EntryCount >= %d)' % (phase, expected),
             at_ready)
        t.eq(sum(1 for m in mgr.messages_from(pid) if m.fields.get('READY') == '1'), 1,
             '%s: READY=1 is sent once' % phase)
        return pid

    def notifications_from_main_pid(self):
        ignored = [m for m in self.mgr.messages if not m.accepted]
        self.t.eq(ignored, [], 'every notification came from the main pid (NotifyAccess=main)')


class Scenario(Broker):
    """The entries every restart test follows, deposited on a fresh broker,
    and check(): what must hold after every start."""

    def __init__(self, t, bus, mgr, users, clients):
        super().__init__(t, bus, mgr)
        self.users = users
        self.clients = clients
        C = users['carol']
        video = users['video']
        self.entries = [
            Entry('p/alice/memfd', 'alice', {'type': 'memfd', 'pattern': 200000, 'seed': 'alice-memfd'},
                  dict(P, allow=['user:fdbtest-bob'], description=DESCRIPTION), ok=['bob', 'alice'], no=['carol']),
            Entry('p/alice/sealed', 'alice', {'type': 'memfd', 'pattern': 4096, 'seed': 'alice-sealed'},
                  dict(P, allow=['group:fdbtest-video'], seal=True, access='read-only'), ok=['bob'], no=['carol']),
            Entry('p/bob/file', 'bob', {'type': 'file', 'path': 'bob-file', 'pattern': 10000, 'seed': 'bob-file'},
                  dict(P, allow=['uid:%d' % C['uid']]), ok=['carol'], no=['alice']),
            Entry('p/alice/timeout', 'alice', {'type': 'memfd', 'pattern': 3000, 'seed': 'alice-timeout'},
                  dict(P, allow=['gid:%d' % video], **{'timeout-usec': 6 * HOUR_USEC}), ok=['bob'], no=['carol']),
            Entry('p/carol/orphan', 'carol2', {'type': 'memfd', 'pattern': 777, 'seed': 'carol-orphan'},
                  dict(P, allow=['everyone']), ok=['alice', 'bob'], no=[]),
            Entry('p/root/pipe', 'root', 'pipe', dict(P, allow=['user:fdbtest-carol']), ok=['carol'], no=['alice'],
                  data=fdcheck.pattern(5000, 'root-pipe')),
            Entry('p/root/socket', 'root', 'socket', dict(P, allow=['user:fdbtest-alice', 'user:fdbtest-bob']),
                  ok=['alice', 'bob'], no=['carol'], data=fdcheck.pattern(3000, 'root-socket')),
            # systemd drops a stored fd that reports POLLHUP unless FDPOLL=0 was sent.
            Entry('p/root/pipe-hup', 'root', 'pipe-hup', dict(P, allow=['user:fdbtest-bob']), ok=['bob'],
                  no=['alice'], data=fdcheck.pattern(2000, 'root-pipe-hup'),
                  fragile='a pipe whose writer is gone (POLLHUP in the fd store)'),
            Entry('p/root/socket-hup', 'root', 'socket-hup', dict(P, allow=['user:fdbtest-bob']), ok=['bob'],
                  no=['carol'], data=fdcheck.pattern(1000, 'root-socket-hup'),
                  fragile='a socket whose peer is gone (POLLHUP in the fd store)'),
            # systemd stores one fd per open file: a second one is "already included".
            Entry('p/root/shared-1', 'root', 'shared', dict(P), data=fdcheck.pattern(1500, 'root-shared'),
                  fragile='the same open file as p/root/shared-2'),
            Entry('p/root/shared-2', 'root', 'shared', dict(P), data=fdcheck.pattern(1500, 'root-shared'),
                  fragile='the same open file as p/root/shared-1'),
        ]
        self.once = Entry('p/bob/once', 'bob', {'type': 'memfd', 'pattern': 999, 'seed': 'bob-once'},
                          dict(P, allow=['user:fdbtest-alice'], once=True))
        self.replaced = Entry('p/alice/replaced', 'alice', {'type': 'memfd', 'pattern': 1234, 'seed': 'replaced-v2'},
                              dict(P, replace=True, allow=['user:fdbtest-carol']), ok=['carol'], no=['bob'])
        self.conn = [Entry('c/alice', 'alice', {'type': 'memfd', 'data': 'connection lifetime'}, {}),
                     Entry('c/root', 'root', 'memfd', {}, data=b'root connection lifetime')]
        self.by_name = {e.name: e for e in self.entries + [self.once, self.replaced] + self.conn}
        self.survivors = self.entries + [self.replaced, self.once]
        self.live = list(self.survivors)
        self.lost = []
        self.shared_fd = None
        self.listing = {}

    # -- deposit ---------------------------------------------------------------

    def deposit(self, e):
        t = self.t
        if e.by == 'root':
            if e.make == 'shared':
                if self.shared_fd is None:
                    self.shared_fd, _ = fdcheck.make('memfd', e.data)
                fd, keep = self.shared_fd, []
            else:
                fd, keep = fdcheck.make(e.make, e.data, self.bus.scratch)
            try:
                self.root.deposit(e.name, fd, **e.opts)
                ok = True
            except harness.GLib.Error as err:
                ok = dbus_error(err)
            e.sha = fdcheck.sha256(e.data)
            if fdcheck.kind_of(fd) in ('fifo', 'socket'):
                e.ident = fdcheck.identity(fd)
            if e.make != 'shared':
                os.close(fd)
            e.keep = keep
            return t.ok(ok is True, 'root deposits %s' % e.name, ok)
        r = self.clients[e.by].deposit(e.name, e.make, **e.opts)
        e.sha = (r.get('made') or {}).get('sha256')
        return t.success(r, '%s deposits %s' % (e.by, e.name))

    def deposit_all(self):
        for e in self.entries:
            self.deposit(e)
        os.unlink(os.path.join(self.bus.scratch, 'bob-file'))  # only the fd holds the bytes now
        # replace: the first version's fd must leave the store, the second stay.
        v1 = Entry(self.replaced.name, 'alice', {'type': 'memfd', 'pattern': 99, 'seed': 'replaced-v1'},
                   dict(P, allow=['user:fdbtest-bob']))
        self.deposit(v1)
        self.deposit(self.replaced)
        self.deposit(self.once)
        for e in self.conn:
            self.deposit(e)
        if self.shared_fd is not None:
            os.close(self.shared_fd)
            self.shared_fd = None
        # carol2 goes away: its persistent entry stays.
        self.clients.pop('carol2').kill()
        self.listing = self.root.list()
        for e in self.survivors + self.conn:
            e.info = self.listing.get(e.name)

    def close(self):
        if self.shared_fd is not None:
            os.close(self.shared_fd)
        for e in self.entries + self.conn:
            for fd in e.keep:
                os.close(fd)
            e.keep = []

    # -- the checks after every start -----------------------------------------

    def core_count(self):
        return len([e for e in self.live if not e.fragile])

    def check(self, phase, live, gone):
        """live: entries that must be there; gone: names that must not."""
        t, root, clients, mgr = self.t, self.root, self.clients, self.mgr
        listing = root.list()
        core = [e for e in live if not e.fragile]
        fragile_names = {e.name for e in live if e.fragile}
        t.eq(sorted(n for n in listing if n not in fragile_names), sorted(e.name for e in core),
             '%s: root lists exactly the surviving entries' % phase)
        t.eq(self.bus.entry_count(), len(listing), '%s: EntryCount matches List' % phase)
        for e in live:
            label = '%s: %s' % (phase, e.name)
            if e.fragile:
                if not t.ok(e.name in listing, '%s is still there (%s)' % (label, e.fragile)):
                    self.lost.append(e)  # reported once, not again after every restart
                    continue
            t.eq(listing.get(e.name), e.info, '%s has the same info (created-usec, expires-usec, ACL owner, '
                 'access, sealed, size, description)' % label)
            if e is not self.once:
                info, fd = root.retrieve(e.name)
                if t.ok(fd is not None, '%s: root retrieves it' % label, info):
                    try:
                        t.eq(fdcheck.sha256(fdcheck.contents(fd)), e.sha, '%s: the same bytes' % label)
                        if e.ident:
                            t.eq(fdcheck.identity(fd), e.ident, '%s: the same pipe or socket (inode)' % label)
                        t.eq(info, e.info, '%s: Retrieve info equals the original' % label)
                    finally:
                        os.close(fd)
            for who in e.ok:
                r = clients[who].retrieve(e.name)
                if not t.success(r, '%s: %s (allowed) retrieves it' % (label, who)):
                    continue
                f = r.get('fd', {})
                if f.get('type') == 'regular':
                    t.eq(f.get('read_sha256'), e.sha, '%s: %s reads the same bytes' % (label, who))
                else:
                    t.eq((f.get('dev'), f.get('ino')), e.ident, '%s: %s gets the same %s' % (label, who, f.get('type')))
            for who in e.no:
                t.error(clients[who].retrieve(e.name), E_NOT_FOUND, '%s: %s (not allowed) gets NotFound' % (label, who))
        for name in gone:
            t.eq(root.retrieve_error(name), E_NOT_FOUND, '%s: %s is gone (NotFound for root)' % (phase, name))
        for e in self.lost:
            if e in live:
                live.remove(e)
        mgr.sync()
        ids = read_state(self.state_path)
        t.eq(sorted((ids or {}).keys()), sorted(e.name for e in live if e.persistent and e.name in listing),
             '%s: the state file lists exactly the persistent entries' % phase)
        # Entries sharing one open file share its stored fd.
        t.eq(sorted(mgr.store_names()), sorted(set('e' + i for i in (ids or {}).values())),
             '%s: the fd store holds exactly one fd per open file of the state file (FDNAME=e<store id>)'
             % phase)
        st = os.stat(self.state_path)
        t.eq(st.st_mode & 0o077, 0, '%s: the state file is not readable by group or others (mode %o, umask 0)'
             % (phase, st.st_mode & 0o7777))
        t.ok(not os.path.exists(self.state_path + '.tmp'), '%s: no temporary state file left behind' % phase)


CONNECTION_ENTRIES = ['c/alice', 'c/root']


@pytest.fixture
def bus(managed_bus):
    """The clients (alice, bob, carol) talk to the managed broker."""
    return managed_bus


@pytest.fixture
def broker(t, bus, manager):
    """A fresh broker under a fresh fake manager, started (b.pid)."""
    b = Broker(t, bus, manager(watchdog_usec=2000000))
    b.pid = b.start()
    return b


@pytest.fixture
def scenario(t, bus, manager, users, alice, bob, carol):
    """A fresh broker under a fresh fake manager holding every kind of
    entry (deposited and checked here: a failed deposit fails the test)."""
    clients = {'alice': alice, 'bob': bob, 'carol': carol, 'carol2': bus.client(users['carol'])}
    s = Scenario(t, bus, manager(watchdog_usec=2000000), users, clients)
    s.pid = s.start()
    try:
        s.deposit_all()
        yield s
    finally:
        s.close()


# ---------------------------------------------------------------------------

def test_at_ready_the_broker_owns_its_name_and_it_sends_watchdog_pings(t, broker):
    t.ok(broker.pid > 0, 'the broker starts under the fake manager and sends READY=1')
    t.eq(broker.ready_state(broker.pid), {'owned': True, 'count': 0},
         'at READY=1 the name is owned (fresh start: no entries)')
    w = broker.mgr.wait_message(lambda f: f.get('WATCHDOG') == '1', timeout=30)
    t.ok(w is not None, 'WATCHDOG=1 arrives with WATCHDOG_USEC=2s (sd_event_set_watchdog)', broker.mgr.describe())


def test_every_kind_of_entry_is_stored_as_given_and_counted_in_status(t, scenario):
    s = scenario
    listing = s.listing
    t.ok(all(e.info for e in s.survivors + s.conn), 'root lists every entry it deposited or may see',
         sorted(listing))
    t.eq({k: v for k, v in (s.by_name['p/alice/memfd'].info or {}).items() if k in ('description', 'owner-uid')},
         {'description': DESCRIPTION, 'owner-uid': s.users['alice']['uid']},
         'the description with spaces, %, tab, newline and UTF-8 is stored as given')
    t.ok((s.by_name['p/alice/timeout'].info or {}).get('expires-usec', 0) > now_usec(),
         'p/alice/timeout has an expiry in the future', s.by_name['p/alice/timeout'].info)
    t.eq((s.by_name['p/alice/sealed'].info or {}).get('sealed'), True, 'p/alice/sealed is sealed')
    status = s.mgr.wait_message(lambda f: f.get('STATUS', '').startswith('Serving %d entries' % len(listing)),
                                timeout=30)
    t.ok(status is not None, 'STATUS= reports the %d entries (bounded wait)' % len(listing), s.mgr.describe())
    s.check('before any restart', s.live + s.conn, [])


def test_a_removed_persistent_entry_leaves_the_state_file_and_the_store_for_good(t, broker, carol):
    mgr = broker.mgr
    r = carol.deposit('p/carol/removed', {'type': 'memfd', 'data': 'removed'}, **P)
    t.success(r, 'carol deposits p/carol/removed (persistent)')
    ids = broker.state()
    t.ok('p/carol/removed' in ids, 'p/carol/removed is in the state file', ids)
    mgr.sync()
    t.ok('e' + ids.get('p/carol/removed', '?') in mgr.store_names(), 'and its fd in the store', mgr.describe())
    t.success(carol.remove('p/carol/removed'), 'carol removes p/carol/removed')
    mgr.sync()
    t.ok('p/carol/removed' not in broker.state(), 'the removed entry leaves the state file')
    t.ok('e' + ids.get('p/carol/removed', '?') not in mgr.store_names(),
         'the removed entry\'s fd leaves the store (FDSTOREREMOVE=1)', mgr.describe())
    t.eq(broker.root.retrieve_error('p/carol/removed'), E_NOT_FOUND,
         'before any restart: p/carol/removed is gone (NotFound for root)')
    broker.restart('SIGTERM restart', signal.SIGTERM, 0)
    t.eq(broker.root.retrieve_error('p/carol/removed'), E_NOT_FOUND,
         'after SIGTERM restart: p/carol/removed is gone (NotFound for root)')


def test_an_expired_persistent_entry_leaves_the_state_file_and_the_store_for_good(t, broker, alice, bob):
    mgr = broker.mgr
    before = len(mgr.messages)
    r = alice.deposit('p/alice/short', {'type': 'memfd', 'data': 'short'},
                      **dict(P, allow=['everyone'], **{'timeout-usec': 1500000}))
    t.success(r, 'alice deposits p/alice/short (persistent, timeout-usec 1.5 s)')
    mgr.sync()
    stored = [m.fields.get('FDNAME') for m in mgr.messages[before:] if m.fields.get('FDSTORE') == '1']
    t.ok(len(stored) == 1, 'its fd went to the store', mgr.describe())
    gone = poll_until(lambda: bob.retrieve('p/alice/short').get('error') == E_NOT_FOUND, 30)
    t.ok(gone, 'p/alice/short expires (bounded wait)')
    mgr.sync()
    t.ok('p/alice/short' not in broker.state(), 'the expired entry leaves the state file')
    t.ok(stored and any(m.fields.get('FDSTOREREMOVE') == '1' and m.fields.get('FDNAME') == stored[0]
                        for m in mgr.messages[before:]),
         'FDSTOREREMOVE=1 for the expired entry\'s fd', mgr.describe())
    t.ok(stored and stored[0] not in mgr.store_names(), 'the expired entry\'s fd leaves the store',
         mgr.describe())
    t.eq(broker.root.retrieve_error('p/alice/short'), E_NOT_FOUND,
         'before any restart: p/alice/short is gone (NotFound for root)')
    broker.restart('SIGTERM restart', signal.SIGTERM, 0)
    t.eq(broker.root.retrieve_error('p/alice/short'), E_NOT_FOUND,
         'after SIGTERM restart: p/alice/short is gone (NotFound for root)')


def test_persistent_entries_come_back_after_a_sigterm_restart_and_connection_ones_do_not(t, scenario):
    s = scenario
    s.restart('SIGTERM restart', signal.SIGTERM, s.core_count())
    s.check('after SIGTERM restart', s.live, CONNECTION_ENTRIES)
    t.error(s.clients['alice'].retrieve('c/alice'), E_NOT_FOUND,
            'after SIGTERM restart: alice\'s connection entry is gone though alice is still connected')
    s.notifications_from_main_pid()


def test_persistent_entries_come_back_after_a_sigkill_crash(t, scenario):
    s = scenario
    s.restart('SIGKILL crash', signal.SIGKILL, s.core_count())
    s.check('after SIGKILL crash', s.live, CONNECTION_ENTRIES)
    s.notifications_from_main_pid()


def test_an_entry_that_expired_while_the_broker_was_down_is_gone_at_once(t, scenario):
    s = scenario
    down = Entry('p/bob/expires-while-down', 'bob', {'type': 'memfd', 'data': 'expires while down'},
                 dict(P, allow=['user:fdbtest-alice'], **{'timeout-usec': 5000000}))
    s.deposit(down)
    down_expiry = now_usec() + 5000000  # at the latest

    def while_down():
        t.ok(down.name in s.state(), 'while the broker is down, %s (5 s timeout) is in the state file' % down.name)
        # Sleep past the entry's expiry while no broker runs.
        left = (down_expiry - now_usec()) / 1e6
        if left > 0:
            time.sleep(left + 0.5)

    s.restart('SIGKILL crash', signal.SIGKILL, s.core_count(), before_start=while_down)
    t.eq(s.root.retrieve_error(down.name), E_NOT_FOUND,
         'after SIGKILL crash: the entry that expired while the broker was down is gone at once')
    s.check('after SIGKILL crash', s.live, CONNECTION_ENTRIES + [down.name])


def test_orphan_stored_fds_and_unreadable_state_lines_are_dropped_and_logged(t, scenario):
    s = scenario
    mgr = s.mgr

    def garbage():
        orphan, _ = fdcheck.make('memfd', b'orphan fd, no metadata')
        mgr.inject('e999', orphan)
        foreign, _ = fdcheck.make('memfd', b'not ours')
        mgr.inject('bogus', foreign)
        with open(s.state_path, 'a') as f:
            f.write('E 998 998 ghost/no-fd 0 0 %d 0 0 = -\n' % now_usec())
            f.write('E this line is not an entry\n')

    s.restart('SIGKILL crash', signal.SIGKILL, s.core_count(), before_start=garbage)
    s.check('after SIGKILL crash', s.live, CONNECTION_ENTRIES + ['ghost/no-fd'])
    log = mgr.log()
    t.ok("entry 'ghost/no-fd' has no fd in the fd store; dropped" in log,
         'a metadata line with no fd is dropped and logged')
    t.ok('dropping stored fd e999: no entry describes it' in log, 'a stored fd with no metadata line is dropped '
         'and logged')
    t.ok("dropping a passed fd named 'bogus'" in log, 'a stored fd with a name not of ours is dropped and logged')
    t.ok('unreadable entry, dropped' in log, 'an unreadable state-file line is dropped and logged')
    names = mgr.store_names()
    t.ok('e999' not in names and 'bogus' not in names, 'both orphan fds leave the store (FDSTOREREMOVE=1)', names)
    with open(s.state_path) as f:
        text = f.read()
    t.ok('ghost/no-fd' not in text and 'not an entry' not in text, 'the state file is rewritten without them',
         text)


def test_restored_entries_survive_the_next_restarts_and_crashes_too(t, scenario):
    s = scenario
    for phase, sig in (('SIGTERM restart', signal.SIGTERM), ('SIGKILL crash', signal.SIGKILL),
                       ('second SIGTERM restart', signal.SIGTERM), ('second SIGKILL crash', signal.SIGKILL)):
        s.restart(phase, sig, s.core_count())
        s.check('after ' + phase, s.live, CONNECTION_ENTRIES)
    s.notifications_from_main_pid()


def test_a_once_entry_is_handed_off_once_after_restarts_and_then_stays_gone(t, scenario):
    s = scenario
    once = s.once
    gone = list(CONNECTION_ENTRIES)
    s.restart('SIGTERM restart', signal.SIGTERM, s.core_count())
    s.restart('SIGKILL crash', signal.SIGKILL, s.core_count())
    s.restart('second SIGTERM restart', signal.SIGTERM, s.core_count())
    s.check('after second SIGTERM restart', s.live, gone)
    r = s.clients['alice'].retrieve(once.name)
    t.success(r, 'alice retrieves the once entry after three restarts')
    t.eq((r.get('fd') or {}).get('read_sha256'), once.sha, 'the once entry has the same bytes')
    t.error(s.clients['alice'].retrieve(once.name), E_NOT_FOUND, 'the once entry is still once: the second '
            'retrieval is NotFound')
    s.live.remove(once)
    gone.append(once.name)
    s.mgr.sync()
    t.ok(once.name not in s.state(), 'the consumed once entry leaves the state file')
    s.restart('second SIGKILL crash', signal.SIGKILL, s.core_count())
    s.check('after second SIGKILL crash', s.live, gone)


def test_without_a_runtime_directory_persistent_entries_last_as_long_as_the_process(t, bus, manager):
    root = Root(bus)
    m = manager(runtime=False)
    m.start()
    fd, _ = fdcheck.make('memfd', b'kept in memory only')
    root.deposit('p/no-runtime-dir', fd, **P)
    os.close(fd)
    m.sync()
    t.eq([x for x in m.messages if x.fields.get('FDSTORE') == '1'], [],
         'NOTIFY_SOCKET but no runtime directory: no fd goes to the store')
    t.ok('no runtime directory' in m.log(), 'the broker logs that entries last as long as the process')
    m.stop(signal.SIGTERM)
    m.start()
    t.eq(root.retrieve_error('p/no-runtime-dir'), E_NOT_FOUND,
         'without a runtime directory a persistent entry does not survive a restart')


def test_without_notify_socket_no_state_file_is_written_and_nothing_sent(t, bus, manager):
    root = Root(bus)
    m = manager(notify=False)
    m.start(wait_ready=False)
    t.ok(poll_until(bus.service_running, 30), 'without NOTIFY_SOCKET the broker still comes up')
    fd, _ = fdcheck.make('memfd', b'no fd store')
    root.deposit('p/no-notify', fd, **P)
    os.close(fd)
    t.eq(os.listdir(m.runtime_dir), [], 'without NOTIFY_SOCKET no state file is written')
    t.ok('no service manager fd store' in m.log(), 'the broker logs that there is no fd store')
    t.eq(m.messages, [], 'and nothing is sent to a manager')
