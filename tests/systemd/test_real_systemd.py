#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbroker under a real `systemd --user` (252), through the user bus.

usermanager.UserManager starts the manager as PLATFORM.md describes (own
cgroup, private mount namespace, fake /run/systemd, XDG_RUNTIME_DIR) and
skips, with the reason, when any step is impossible. Then:

- a Type=dbus user unit made from data/user/fdbroker.service.in (ExecStart=
  the build-tree binary, output appended to a file: there is no journald)
  and an activation file with SystemdService= from
  data/user/org.fdbroker.Broker1.service.in; a call bus-activates the
  broker through systemd;
- persistent entries of several kinds are deposited (memfd, sealed read-only
  memfd, unlinked regular file, pipe, socket, a timeout, once) plus a
  connection-lifetime one; systemd's own count of stored fds must match;
- `systemctl --user restart fdbroker`, then kill -9 of the main pid
  (Restart=on-failure brings it back): every persistent entry is there each
  time with the same bytes and the same info; the connection one is gone;
- idle exit: with --exit-idle-time=1 and no entries the unit goes inactive
  by itself (status success, fd store empty), and a call activates it again;
  with an entry it stays.

Everything (manager, services, cgroups, folders) is cleaned up, also on
failure or on a signal.

Every test has a `systemd --user` of its own (conftest.py: user_manager)
with the unit installed afresh.

    run-pytest.py test_real_systemd.py the tests (meson suite 'systemd')
    test_real_systemd.py --kill-loop N the kill loop (see kill-loop.sh)
"""

import os
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
from harness import BUS_NAME, E_NOT_FOUND, IFACE, OBJ_PATH, poll_until  # noqa: E402
import fdcheck  # noqa: E402
import usermanager  # noqa: E402
from usermanager import Skip, UserManager, fdbroker_activation, fdbroker_unit  # noqa: E402,F401

UNIT = 'fdbroker.service'
HOUR_USEC = 3600 * 1000000
IDLE = 1
STAY = 5 * IDLE


class UserBus:
    """The test's (root) connection to the user bus."""

    def __init__(self, address):
        Gio = harness.Gio
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        self.conn.set_exit_on_close(False)

    def call(self, method, sig, args, reply=None, fds=(), iface=IFACE, timeout_ms=60000):
        Gio, GLib = harness.Gio, harness.GLib
        fdlist = None
        if fds:
            fdlist = Gio.UnixFDList.new()
            for fd in fds:
                fdlist.append(fd)  # duplicates
        r, out = self.conn.call_with_unix_fd_list_sync(
            BUS_NAME, OBJ_PATH, iface, method, GLib.Variant(sig, args) if sig else None,
            GLib.VariantType.new(reply) if reply else None, Gio.DBusCallFlags.NONE, timeout_ms, fdlist, None)
        return (r.unpack() if r is not None else None), (list(out.steal_fds()) if out is not None else [])

    def driver(self, method, args, sig, reply):
        GLib, Gio = harness.GLib, harness.Gio
        r = self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', method,
                                GLib.Variant(sig, args) if sig else None, GLib.VariantType.new(reply),
                                Gio.DBusCallFlags.NONE, 30000, None)
        return r.unpack()

    def owner_pid(self):
        if not self.driver('NameHasOwner', (BUS_NAME,), '(s)', '(b)')[0]:
            return None
        return self.driver('GetConnectionUnixProcessID', (BUS_NAME,), '(s)', '(u)')[0]

    def entry_count(self):
        r, _ = self.call('Get', '(ss)', (IFACE, 'EntryCount'), '(v)', iface='org.freedesktop.DBus.Properties')
        return r[0]

    def deposit(self, name, fd, opts):
        self.call('Deposit', '(sha{sv})', (name, 0, harness.to_gvariant_dict(opts)), fds=[fd])

    def retrieve(self, name):
        """(info, fd) with fd owned by the caller, or (D-Bus error name, None)."""
        try:
            r, fds = self.call('Retrieve', '(sa{sv})', (name, {}), '(ha{sv})')
        except harness.GLib.Error as e:
            return harness.Gio.DBusError.get_remote_error(e) or e.message, None
        fd = fds[r[0]]
        for other in fds:
            if other != fd:
                os.close(other)
        return r[1], fd

    def list(self):
        r, _ = self.call('List', '(a{sv})', ({},), '(a(sa{sv}))')
        return {name: info for name, info in r[0]}

    def remove(self, name):
        self.call('Remove', '(s)', (name,))

    def close(self):
        try:
            self.conn.close_sync(None)
        except Exception:  # noqa: BLE001
            pass


class Entry:
    def __init__(self, name, kind, data, opts, fragile=None):
        self.name = name
        self.kind = kind
        self.data = data
        self.opts = dict(opts)
        self.fragile = fragile
        self.sha = fdcheck.sha256(data)
        self.ident = None
        self.info = None
        self.keep = []

    @property
    def persistent(self):
        return self.opts.get('lifetime') == 'persistent'


P = {'lifetime': 'persistent'}


def core_entries():
    """Kinds that must survive any restart: their fds never hang up."""
    return [
        Entry('rs/memfd', 'memfd', fdcheck.pattern(100000, 'rs-memfd'), dict(P, description='a memfd, 100 kB')),
        Entry('rs/sealed', 'memfd', fdcheck.pattern(4096, 'rs-sealed'), dict(P, seal=True, access='read-only')),
        Entry('rs/file', 'file', fdcheck.pattern(20000, 'rs-file'), dict(P, allow=['everyone'])),
        Entry('rs/pipe', 'pipe', fdcheck.pattern(6000, 'rs-pipe'), dict(P)),
        Entry('rs/socket', 'socket', fdcheck.pattern(3000, 'rs-socket'), dict(P)),
    ]


def deposit(conn, e, scratch, shared=None):
    """Deposit e (root); returns None or the error. shared: an fd
    (borrowed) to deposit instead of a new one."""
    if shared is not None:
        fd, e.keep = shared, []
    else:
        fd, e.keep = fdcheck.make(e.kind, e.data, scratch)
    try:
        if fdcheck.kind_of(fd) in ('fifo', 'socket'):
            e.ident = fdcheck.identity(fd)
        conn.deposit(e.name, fd, e.opts)
        return None
    except harness.GLib.Error as err:
        return err.message
    finally:
        if shared is None:
            os.close(fd)


def look(conn, e):
    """What a root Retrieve of e shows now: {'error'} or {'info', 'sha',
    'ident'}."""
    info, fd = conn.retrieve(e.name)
    if fd is None:
        return {'error': info}
    try:
        out = {'info': info, 'sha': fdcheck.sha256(fdcheck.contents(fd))}
        if e.ident:
            out['ident'] = fdcheck.identity(fd)
        return out
    finally:
        os.close(fd)


def problems(conn, e):
    """[] if e is there with the same bytes, info and identity."""
    got = look(conn, e)
    if 'error' in got:
        return ['%s: %s' % (e.name, got['error'])]
    out = []
    if got['sha'] != e.sha:
        out.append('%s: different bytes' % e.name)
    if e.info is not None and got['info'] != e.info:
        out.append('%s: info %r, was %r' % (e.name, got['info'], e.info))
    if e.ident and got.get('ident') != e.ident:
        out.append('%s: another pipe or socket' % e.name)
    return out


def wait_active(um, old_pid, timeout=60):
    """Wait (bounded) until the unit is active with a main pid other than
    old_pid. Returns the properties, or None."""
    def ready():
        p = um.show(UNIT, 'ActiveState', 'SubState', 'MainPID', 'NRestarts', 'NFileDescriptorStore')
        if p.get('ActiveState') == 'active' and p.get('MainPID') not in (None, '0', str(old_pid)):
            return p
        return None
    return poll_until(ready, timeout, 0.05)


def wait_inactive(um, timeout=60):
    def done():
        p = um.show(UNIT, 'ActiveState', 'Result', 'MainPID', 'NFileDescriptorStore', 'ExecMainStatus')
        return p if p.get('ActiveState') in ('inactive', 'failed') else None
    return poll_until(done, timeout, 0.05)


def install(um, binary, exit_idle_time=None, dropins=None):
    log = os.path.join(um.workdir, 'fdbroker.log')
    um.install_unit(UNIT, fdbroker_unit(harness.source_dir(), binary, log, exit_idle_time))
    for name, text in (dropins or {}).items():
        um.install_dropin(UNIT, name, text)
    um.install_activation(BUS_NAME, fdbroker_activation(harness.source_dir(), binary))
    um.daemon_reload()
    return log


def reload_bus(conn):
    conn.driver('ReloadConfig', None, None, '()')


def service_log(um):
    try:
        with open(os.path.join(um.workdir, 'fdbroker.log'), errors='replace') as f:
            return f.read()
    except (OSError, TypeError):
        return '(no service log)'


# ---------------------------------------------------------------------------------
# The tests: each on a user manager of its own (conftest.py: user_manager)

class Unit:
    """fdbroker.service installed on the test's user manager, and the test's
    (root) connection to the user bus."""

    def __init__(self, um, exit_idle_time=None):
        self.um = um
        self.binary = harness.service_binary()
        install(um, self.binary, exit_idle_time=exit_idle_time)
        self.conn = UserBus(um.bus_address)
        reload_bus(self.conn)
        self.scratch = os.path.join(um.workdir, 'scratch')
        os.makedirs(self.scratch)
        self.rdir = os.path.join(um.runtime_dir, 'fdbroker')
        self.state = os.path.join(self.rdir, 'entries.state')

    def main_pid(self):
        return int(self.um.show(UNIT, 'MainPID')['MainPID'])

    def close(self):
        self.conn.close()


class Deposited:
    """The entries every restart test follows, deposited by root on a
    freshly activated broker (checked here: a failed deposit fails the
    test), and check(): what must hold after every start."""

    def __init__(self, t, unit):
        self.t = t
        self.unit = unit
        self.um = unit.um
        self.conn = unit.conn
        self.entries = core_entries() + [
            Entry('rs/timeout', 'memfd', b'six hours', dict(P, **{'timeout-usec': 6 * HOUR_USEC})),
            Entry('rs/pipe-hup', 'pipe-hup', fdcheck.pattern(2000, 'rs-pipe-hup'), dict(P),
                  fragile='a pipe whose writer is gone (POLLHUP in the fd store)'),
            Entry('rs/socket-hup', 'socket-hup', fdcheck.pattern(1000, 'rs-socket-hup'), dict(P),
                  fragile='a socket whose peer is gone (POLLHUP in the fd store)'),
            Entry('rs/shared-1', 'memfd', fdcheck.pattern(1500, 'rs-shared'), dict(P),
                  fragile='the same open file as rs/shared-2'),
            Entry('rs/shared-2', 'memfd', fdcheck.pattern(1500, 'rs-shared'), dict(P),
                  fragile='the same open file as rs/shared-1'),
        ]
        self.once = Entry('rs/once', 'memfd', b'handed off once', dict(P, once=True))
        self.conn_entry = Entry('rs/connection', 'memfd', b'connection lifetime', {})
        self.live = list(self.entries)

    def deposit_all(self):
        t = self.t
        shared, _ = fdcheck.make('memfd', self.entries[-1].data)
        try:
            for e in self.entries + [self.once, self.conn_entry]:
                err = deposit(self.conn, e, self.unit.scratch, shared if e.name.startswith('rs/shared-') else None)
                t.ok(err is None, 'root deposits %s (%s%s)'
                     % (e.name, e.kind, ', persistent' if e.persistent else ''), err)
        finally:
            os.close(shared)
        listing = self.conn.list()
        for e in self.entries + [self.once, self.conn_entry]:
            e.info = listing.get(e.name)

    def close(self):
        for e in self.entries + [self.once, self.conn_entry]:
            for fd in e.keep:
                os.close(fd)
            e.keep = []

    def check(self, phase):
        t, conn, once, live = self.t, self.conn, self.once, self.live
        listing = conn.list()
        fragile = {e.name for e in live if e.fragile}
        t.eq(sorted(n for n in listing if n not in fragile),
             sorted([e.name for e in live if not e.fragile] + [once.name]),
             '%s: exactly the persistent entries are listed' % phase)
        for e in list(live):
            if e.fragile and not t.ok(e.name in listing, '%s: %s is still there (%s)' % (phase, e.name, e.fragile)):
                live.remove(e)  # reported once
                continue
            got = look(conn, e)
            if not t.ok('error' not in got, '%s: %s (%s) is retrieved' % (phase, e.name, e.kind), got):
                continue
            t.eq(got['sha'], e.sha, '%s: %s has the same bytes' % (phase, e.name))
            t.eq(got['info'], e.info, '%s: %s has the same info (created-usec, expires-usec, ...)' % (phase, e.name))
            if e.ident:
                t.eq(got.get('ident'), e.ident, '%s: %s is the same pipe or socket' % (phase, e.name))
        t.eq(listing.get(once.name), once.info, '%s: the once entry is listed, unchanged' % phase)
        t.ok(self.conn_entry.name not in listing, '%s: the connection-lifetime entry is gone' % phase)
        p = self.um.show(UNIT, 'NFileDescriptorStore')
        shared = len([e for e in live if e.name.startswith('rs/shared-')])
        t.eq(p.get('NFileDescriptorStore'), str(len([e for e in live if e.persistent]) + 1 - (shared == 2)),
             '%s: systemd holds one stored fd per persistent open file' % phase)
        st = os.stat(self.unit.state)
        t.eq(st.st_mode & 0o077, 0, '%s: the state file is not readable by group or others' % phase)

    def restart(self, what='systemctl --user restart: active again with a new main pid'):
        old = self.unit.main_pid()
        self.um.systemctl('restart', UNIT)
        p = wait_active(self.um, old)
        self.t.ok(p is not None, what, p)
        return p


@pytest.fixture
def unit(user_manager):
    """The unit without idle exit on a fresh user manager."""
    u = Unit(user_manager)
    yield u
    u.close()


@pytest.fixture
def idle_unit(user_manager):
    """The unit with --exit-idle-time=IDLE on a fresh user manager."""
    u = Unit(user_manager, exit_idle_time=IDLE)
    yield u
    u.close()


@pytest.fixture
def deposited(t, unit):
    d = Deposited(t, unit)
    try:
        d.deposit_all()
        yield d
    finally:
        d.close()


def test_a_call_on_the_user_bus_activates_the_broker_as_its_unit(t, unit, user_manager):
    um, conn = user_manager, unit.conn
    try:
        t.eq(conn.entry_count(), 0, 'a call on the user bus is answered (EntryCount 0)')
    except harness.GLib.Error as e:
        t.ok(False, 'a call on the user bus is answered', e.message)
        return
    p = um.show(UNIT, 'ActiveState', 'MainPID', 'ControlGroup', 'NFileDescriptorStore')
    t.eq(p.get('ActiveState'), 'active', 'the broker was bus-activated as %s' % UNIT)
    t.eq(str(conn.owner_pid()), p.get('MainPID'), 'the name\'s owner is the unit\'s main pid (SystemdService=)')
    t.ok(p.get('ControlGroup', '').endswith('/app.slice/' + UNIT), 'it runs in the unit\'s cgroup', p)
    rdir = unit.rdir
    t.ok(os.path.isdir(rdir) and os.stat(rdir).st_mode & 0o777 == 0o700,
         'RuntimeDirectory=fdbroker exists with mode 0700')


def test_systemd_holds_one_stored_fd_per_persistent_open_file(t, deposited, user_manager):
    # rs/shared-1 and rs/shared-2 are one open file: one stored fd.
    n_persistent = len(deposited.entries) + 1 - 1
    p = user_manager.show(UNIT, 'NFileDescriptorStore')
    t.eq(p.get('NFileDescriptorStore'), str(n_persistent),
         'systemd holds one stored fd per persistent open file (NFileDescriptorStore)')
    state = deposited.unit.state
    t.ok(os.path.exists(state) and os.stat(state).st_mode & 0o077 == 0,
         'the state file exists and is not readable by group or others')


def test_persistent_entries_come_back_after_systemctl_restart(t, deposited):
    deposited.restart()
    deposited.check('after systemctl restart')


def test_persistent_entries_come_back_after_kill_9_by_restart_on_failure(t, deposited, user_manager):
    um = user_manager
    old = deposited.unit.main_pid()
    restarts = int(um.show(UNIT, 'NRestarts')['NRestarts'])
    os.kill(old, signal.SIGKILL)
    p = wait_active(um, old)
    t.ok(p is not None, 'kill -9 of the main pid: Restart=on-failure brings it back (bounded wait)', p)
    t.eq(int((p or {}).get('NRestarts', -1)), restarts + 1, 'systemd counted one automatic restart')
    deposited.check('after kill -9')


def test_a_once_entry_is_handed_off_once_and_does_not_come_back_after_a_restart(t, deposited):
    d = deposited
    conn, once, entries = d.conn, d.once, d.entries
    d.restart()
    got = look(conn, once)
    t.eq(got.get('sha'), once.sha, 'the once entry is handed off with the same bytes')
    t.eq(look(conn, once).get('error'), E_NOT_FOUND, 'and only once')
    d.restart('restarted once more')
    t.eq(look(conn, once).get('error'), E_NOT_FOUND, 'the consumed once entry does not come back')
    t.eq(look(conn, entries[0]).get('sha'), entries[0].sha, 'the others are still there')
    for e in entries:
        try:
            conn.remove(e.name)
        except harness.GLib.Error:
            pass
    t.eq(conn.list(), {}, 'all entries removed')


def test_with_no_entries_the_unit_goes_inactive_by_itself_and_a_call_activates_it_again(t, idle_unit,
                                                                                       user_manager):
    um, conn = user_manager, idle_unit.conn
    um.systemctl('restart', UNIT)
    old = idle_unit.main_pid()
    p = wait_inactive(um)
    t.ok(p is not None, 'with --exit-idle-time=%d and no entries the unit goes inactive by itself (bounded wait)'
         % IDLE, p)
    p = p or {}
    t.eq((p.get('Result'), p.get('ExecMainStatus')), ('success', '0'), 'the broker exited with status 0')
    t.eq(p.get('NFileDescriptorStore'), '0', 'the fd store is empty')
    t.eq(conn.entry_count(), 0, 'a call afterwards is answered')
    p = wait_active(um, old)
    t.ok(p is not None, 'by a broker that the bus activated through systemd again', p)
    pid = int((p or {}).get('MainPID', 0))
    t.eq(conn.owner_pid(), pid, 'the new main pid owns the name')


def test_with_one_entry_the_unit_stays_active_until_it_is_removed(t, idle_unit, user_manager):
    um, conn = user_manager, idle_unit.conn
    fd, _ = fdcheck.make('memfd', b'one entry')
    try:
        conn.deposit('rs/idle', fd, dict(P))  # activates the broker
    finally:
        os.close(fd)
    pid = conn.owner_pid()
    deadline = time.monotonic() + STAY
    stayed = True
    while time.monotonic() < deadline:
        if um.show(UNIT, 'ActiveState', 'MainPID') != {'ActiveState': 'active', 'MainPID': str(pid)}:
            stayed = False
            break
        time.sleep(0.2)
    if not t.ok(stayed, 'with one entry it stays active (watched for %d idle periods)' % (STAY // IDLE)):
        return
    conn.remove('rs/idle')
    t.ok(wait_inactive(um) is not None, 'once the entry is removed it goes inactive by itself')


# ---------------------------------------------------------------------------------
# The kill loop

def kill_loop(um, cycles):
    binary = harness.service_binary()
    # Without this the 6th restart within 10 s hits systemd's start limit and
    # the unit fails (and its fd store is emptied): that is systemd working,
    # not what the loop measures.
    install(um, binary, dropins={'50-kill-loop.conf': '[Unit]\nStartLimitIntervalSec=0\n'})
    conn = UserBus(um.bus_address)
    reload_bus(conn)
    scratch = os.path.join(um.workdir, 'scratch')
    os.makedirs(scratch)
    conn.entry_count()
    entries = core_entries()
    for e in entries:
        err = deposit(conn, e, scratch)
        if err:
            raise RuntimeError('deposit of %s failed: %s' % (e.name, err))
    listing = conn.list()
    for e in entries:
        e.info = listing[e.name]
    lost = {}
    checked = 0
    losses = 0
    resurrected = 0
    done = 0
    first = int(um.show(UNIT, 'NRestarts')['NRestarts'])
    previous = None
    for i in range(cycles):
        # Changes acknowledged just before the crash: a deposit must survive
        # it, a removal must stay done.
        churn = Entry('rs/churn/%d' % (i + 1), 'memfd', fdcheck.pattern(777, 'churn-%d' % i), dict(P))
        err = deposit(conn, churn, scratch)
        if err:
            raise RuntimeError('deposit of %s failed: %s' % (churn.name, err))
        churn.info = conn.list()[churn.name]
        if previous:
            conn.remove(previous.name)
        old = int(um.show(UNIT, 'MainPID')['MainPID'])
        os.kill(old, signal.SIGKILL)
        if wait_active(um, old) is None:
            print('cycle %d: the unit did not come back within the bound: %s'
                  % (i + 1, um.show(UNIT, 'ActiveState', 'SubState', 'Result')), flush=True)
            break
        done += 1
        for e in entries + [churn]:
            if e.name in lost:
                continue
            checked += 1
            bad = problems(conn, e)
            if bad:
                losses += 1
                lost[e.name] = i + 1
                print('cycle %d: %s' % (i + 1, '; '.join(bad)), flush=True)
        if previous:
            got = look(conn, previous)
            if 'error' not in got:
                resurrected += 1
                print('cycle %d: %s was removed before the kill but came back' % (i + 1, previous.name), flush=True)
                conn.remove(previous.name)
        previous = churn
        if (i + 1) % 10 == 0:
            print('%d cycles done' % (i + 1), flush=True)
    restarts = int(um.show(UNIT, 'NRestarts')['NRestarts']) - first
    kinds = ', '.join('%s (%s)' % (e.name, e.kind) for e in entries)
    print('kill-loop: %d cycles, %d entries (%s) plus one deposited and one removed right before each kill, '
          '%d entry checks, %d losses, %d removed entries back, %d automatic restarts counted by systemd'
          % (done, len(entries), kinds, checked, losses, resurrected, restarts), flush=True)
    for e in entries:
        for fd in e.keep:
            os.close(fd)
    conn.close()
    return 0 if done == cycles and losses == 0 and resurrected == 0 else 1


# ---------------------------------------------------------------------------------

def main(argv):
    """--kill-loop N: the kill loop; anything else runs this file's tests
    through run-pytest.py."""
    if len(argv) < 2 or argv[1] != '--kill-loop':
        runner = os.path.join(os.path.dirname(HERE), 'integration', 'run-pytest.py')
        os.execv(sys.executable, [sys.executable, runner, os.path.abspath(__file__)] + argv[1:])
    usermanager.install_signal_cleanup()
    loop = int(argv[2]) if len(argv) > 2 else 100
    try:
        harness.check_environment()
    except harness.Skip as e:
        print('SKIP: %s' % e, flush=True)
        return 77
    um = UserManager()
    rc = 1
    try:
        try:
            um.start()
        except Skip as e:
            print('SKIP: %s' % e, flush=True)
            rc = 77
            return rc
        rc = kill_loop(um, loop)
    finally:
        if rc not in (0, 77) and um.workdir:
            sys.stderr.write('---- fdbroker.log ----\n%s\n---- systemd --user log ----\n%s\n'
                             % (service_log(um), um.manager_log()))
            if um.pid:
                try:
                    sys.stderr.write(um.systemctl('status', UNIT, check=False).stdout + '\n')
                except Exception:  # noqa: BLE001
                    pass
        um.close()
    return rc


if __name__ == '__main__':
    sys.exit(main(sys.argv))
