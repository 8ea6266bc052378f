# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for systemd's service manager, for one service.

FakeManager plays the part systemd plays for a Type=notify/Type=dbus
service with FileDescriptorStoreMax= and NotifyAccess=main, as systemd 252
does it (src/core/service.c):

- a NOTIFY_SOCKET datagram socket; every message is recorded with the
  sender's pid (SO_PASSCRED). Messages from any pid but the main pid are
  ignored, and fds they carry closed (NotifyAccess=main).
- READY=1, STATUS=, STOPPING=1, WATCHDOG=1 are recorded.
- FDSTORE=1 puts the message's fds in the fd store under FDNAME= ("stored"
  when missing or invalid). An fd that is the same open file as one already
  stored is not stored again (systemd's same_fd(): kcmp KCMP_FILE). Unless
  the message says FDPOLL=0, a stored fd that reports POLLHUP or POLLERR is
  dropped from the store, as systemd does.
- FDSTOREREMOVE=1 closes every stored fd named FDNAME=.
- start() runs the service with NOTIFY_SOCKET, and with the stored fds as
  fds 3.. plus LISTEN_FDS, LISTEN_PID (the exec'd pid) and LISTEN_FDNAMES;
  it waits, with a bound, for READY=1. The store outlives the process, as
  over `systemctl restart` or Restart=on-failure; clear_store() is
  `systemctl stop`.

The service is spawned with os.posix_spawn (no Python code runs between
fork and exec, so the receiver thread cannot deadlock the child); fds reach
their numbers through POSIX_SPAWN_DUP2 actions.

    mgr = FakeManager([binary, '--bus=' + address, ...], workdir, log_path)
    pid = mgr.start()
    mgr.stop(signal.SIGKILL)
    mgr.start()
    mgr.close()
"""

import array
import ctypes
import fcntl
import os
import re
import select
import signal
import socket
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
SYS_kcmp = 312  # x86_64
KCMP_FILE = 0
FDNAME_RE = re.compile(r'^[\x20-\x7e]{1,255}$')  # systemd fdname_is_valid(): printable ASCII, no ':'
SCM_MAX_FD = 253
SYNC_PREFIX = b'X-FAKE-MANAGER-SYNC='


def same_fd(a, b):
    """systemd's same_fd(): the same open file (kcmp), else same inode and
    access flags (device fds never compare equal)."""
    if a == b:
        return True
    pid = os.getpid()
    r = _libc.syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b)
    if r == 0:
        return True
    if r > 0:
        return False
    sa, sb = os.fstat(a), os.fstat(b)
    if (sa.st_mode & 0o170000) != (sb.st_mode & 0o170000):
        return False
    if (sa.st_mode & 0o170000) in (0o020000, 0o060000):
        return False
    if (sa.st_dev, sa.st_ino) != (sb.st_dev, sb.st_ino):
        return False
    return fcntl.fcntl(a, fcntl.F_GETFL) == fcntl.fcntl(b, fcntl.F_GETFL)


class Message:
    """One datagram on NOTIFY_SOCKET."""

    def __init__(self, pid, text, n_fds, accepted):
        self.pid = pid
        self.text = text
        self.n_fds = n_fds
        self.accepted = accepted
        self.fields = {}
        for line in text.split('\n'):
            if '=' in line:
                k, v = line.split('=', 1)
                self.fields[k] = v
        self.time = time.monotonic()

    def __repr__(self):
        return 'Message(pid=%d, %r, fds=%d%s)' % (self.pid, self.text, self.n_fds,
                                                   '' if self.accepted else ', ignored')


class StoredFd:
    def __init__(self, name, fd, poll):
        self.name = name
        self.fd = fd
        self.poll = poll


class FakeManager:
    def __init__(self, argv, workdir, log_path, env=None, watchdog_usec=0, umask=0o000,
                 notify=True):
        """argv: the service's command line (argv[0] an absolute path).
        workdir: where the notify socket goes. log_path: the service's
        stdout and stderr (appended). env: extra environment variables.
        watchdog_usec: set WATCHDOG_USEC/WATCHDOG_PID (0: no watchdog).
        umask: the service's umask (0 by default, so that file modes are
        the service's own choice). notify: set NOTIFY_SOCKET at all."""
        self.argv = list(argv)
        self.workdir = workdir
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.watchdog_usec = watchdog_usec
        self.umask = umask
        self.notify = notify
        self.socket_path = os.path.join(workdir, 'notify')
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.socket_path)
        self.cond = threading.Condition()
        self.store = []          # StoredFd, in arrival order
        self.messages = []       # every Message
        self.events = []         # (what, name, detail) store changes, for diagnostics
        self.main_pid = None
        self.exit_status = None  # of the last main process, once reaped
        self._sync_seen = 0
        self._sync_sent = 0
        self._ready_probe = None
        self.ready_probe_results = []
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name='fake-manager', daemon=True)
        self._thread.start()

    # -- the receiver ----------------------------------------------------------

    def _run(self):
        while not self._stopping:
            with self.cond:
                watched = {s.fd: s for s in self.store if s.poll}
            p = select.poll()
            p.register(self.sock.fileno(), select.POLLIN)
            p.register(self._wake_r, select.POLLIN)
            for fd in watched:
                p.register(fd, 0)  # POLLHUP and POLLERR are always reported
            try:
                ready = p.poll(200)
            except InterruptedError:
                continue
            for fd, ev in ready:
                if fd == self.sock.fileno():
                    self._drain()
                elif fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                elif fd in watched and ev & (select.POLLHUP | select.POLLERR):
                    with self.cond:
                        s = watched[fd]
                        if any(x is s for x in self.store):
                            self.store = [x for x in self.store if x is not s]
                            os.close(s.fd)
                            self.events.append(('hup', s.name, 'POLLHUP' if ev & select.POLLHUP else 'POLLERR'))
                            self.cond.notify_all()

    def _wake(self):
        try:
            os.write(self._wake_w, b'x')
        except BlockingIOError:
            pass

    def _drain(self):
        while True:
            try:
                msg, anc, flags, _ = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(SCM_MAX_FD * 4) + socket.CMSG_SPACE(12),
                    socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            fds, pid = [], 0
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array('i')
                    a.frombytes(data[:len(data) - len(data) % a.itemsize])
                    fds += list(a)
                elif level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(data[0:4], 'little')
            with self.cond:
                self._handle(pid, msg, fds, flags)
                self.cond.notify_all()

    def _handle(self, pid, raw, fds, flags):
        if raw.startswith(SYNC_PREFIX) and pid == os.getpid():
            self._sync_seen = int(raw[len(SYNC_PREFIX):])
            for fd in fds:
                os.close(fd)
            return
        text = raw.decode('utf-8', 'replace')
        accepted = self.main_pid is not None and pid == self.main_pid
        m = Message(pid, text, len(fds), accepted)
        self.messages.append(m)
        if flags & socket.MSG_CTRUNC:
            self.events.append(('truncated', None, repr(m)))
        if not accepted:
            self.events.append(('ignored', None, repr(m)))
            for fd in fds:
                os.close(fd)
            return
        f = m.fields
        if f.get('FDSTORE') == '1' and fds:
            name = f.get('FDNAME')
            if name is None or not FDNAME_RE.match(name) or ':' in name:
                name = 'stored'
            poll = f.get('FDPOLL') != '0'
            for fd in fds:
                if any(same_fd(s.fd, fd) for s in self.store):
                    self.events.append(('duplicate', name, 'same open file as a stored fd; not stored'))
                    os.close(fd)
                    continue
                self.store.append(StoredFd(name, fd, poll))
                self.events.append(('store', name, 'poll' if poll else 'FDPOLL=0'))
            self._wake()
        else:
            for fd in fds:
                os.close(fd)
        if f.get('FDSTOREREMOVE') == '1' and 'FDNAME' in f:
            name = f['FDNAME']
            gone = [s for s in self.store if s.name == name]
            self.store = [s for s in self.store if s.name != name]
            for s in gone:
                os.close(s.fd)
            self.events.append(('remove', name, '%d fd(s)' % len(gone)))
        if f.get('READY') == '1' and self._ready_probe is not None:
            try:
                self.ready_probe_results.append((pid, self._ready_probe()))
            except Exception as e:  # noqa: BLE001
                self.ready_probe_results.append((pid, e))

    def sync(self, timeout=30):
        """Wait until every message sent to the socket before this call has
        been handled (datagrams arrive in order)."""
        with self.cond:
            self._sync_sent += 1
            n = self._sync_sent
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            s.sendto(SYNC_PREFIX + str(n).encode(), self.socket_path)
        finally:
            s.close()
        with self.cond:
            if not self.cond.wait_for(lambda: self._sync_seen >= n, timeout):
                raise TimeoutError('the fake manager did not see its own sync message')

    # -- the service -------------------------------------------------------------

    def start(self, wait_ready=True, timeout=60, ready_probe=None):
        """Start the service with the stored fds. Waits for READY=1 from the
        new pid (unless wait_ready is false). ready_probe, if given, is
        called in the receiver thread the moment READY=1 arrives; its
        result lands in ready_probe_results. Returns the pid."""
        if self.running():
            raise RuntimeError('the service is already running (pid %d)' % self.main_pid)
        self.sync()
        with self.cond:
            stored = list(self.store)
            n = len(stored)
            # Out of the way of the target numbers 3..3+n-1 first.
            high = [fcntl.fcntl(s.fd, fcntl.F_DUPFD_CLOEXEC, max(64, 3 + n)) for s in stored]
        try:
            env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'}
            for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'SYSTEMD_LOG_LEVEL'):
                if var in os.environ:
                    env[var] = os.environ[var]
            env.update(self.extra_env)
            if self.notify:
                env['NOTIFY_SOCKET'] = self.socket_path
            exports = ['umask %03o' % self.umask]
            if n:
                env['LISTEN_FDS'] = str(n)
                env['LISTEN_FDNAMES'] = ':'.join(s.name for s in stored)
                exports.append('LISTEN_PID=$$; export LISTEN_PID')
            if self.watchdog_usec:
                env['WATCHDOG_USEC'] = str(self.watchdog_usec)
                exports.append('WATCHDOG_PID=$$; export WATCHDOG_PID')
            script = '; '.join(exports) + '; exec "$0" "$@"'
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ]
            for i, h in enumerate(high):
                actions.append((os.POSIX_SPAWN_DUP2, h, 3 + i))
            with self.cond:
                pid = os.posix_spawn('/bin/sh', ['/bin/sh', '-c', script] + self.argv, env,
                                     file_actions=actions)
                self.main_pid = pid
                self.exit_status = None
                self._ready_probe = ready_probe
        finally:
            for h in high:
                os.close(h)
        with open(self.log_path, 'a') as f:
            f.write('---- fake manager: started pid %d with %d stored fd(s)%s ----\n'
                    % (pid, n, (' ' + ':'.join(s.name for s in stored)) if n else ''))
        if wait_ready:
            self.wait_ready(timeout)
        return pid

    def messages_from(self, pid=None):
        pid = self.main_pid if pid is None else pid
        with self.cond:
            return [m for m in self.messages if m.pid == pid]

    def wait_ready(self, timeout=60):
        pid = self.main_pid
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if any(m.pid == pid and m.fields.get('READY') == '1' for m in self.messages):
                    return pid
                if self._reap():
                    raise RuntimeError('the service (pid %d) exited with status %s before READY=1; log:\n%s'
                                       % (pid, self.exit_status, self.log()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('no READY=1 from pid %d within %ss; log:\n%s' % (pid, timeout, self.log()))
                self.cond.wait(min(left, 0.1))

    def wait_message(self, pred, timeout=30, pid=None):
        """The first message from pid (default: the main pid) for which
        pred(fields) is true, waiting for it with a bound; None if none."""
        pid = self.main_pid if pid is None else pid
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if m.pid == pid and pred(m.fields):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def _reap(self):
        """Collects the main process if it has exited. True when it has."""
        if self.main_pid is None:
            return True
        if self.exit_status is not None:
            return True
        try:
            pid, status = os.waitpid(self.main_pid, os.WNOHANG)
        except ChildProcessError:
            self.exit_status = 'unknown'
            return True
        if pid == 0:
            return False
        self.exit_status = os.waitstatus_to_exitcode(status)
        return True

    def running(self):
        with self.cond:
            return self.main_pid is not None and not self._reap()

    def wait_exit(self, timeout=60):
        """Wait (bounded) for the main process to exit by itself. Returns
        its exit code (negative: killed by that signal) or None if it is
        still running. Messages it sent are handled before this returns."""
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                if self._reap():
                    break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        self.sync()
        return self.exit_status

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send sig to the main process and wait for it to exit (SIGKILL
        after timeout). The fd store is kept: this is a restart, or a
        crash. Returns the exit code (negative for a signal)."""
        with self.cond:
            if self._reap():
                return self.exit_status
            os.kill(self.main_pid, sig)
        st = self.wait_exit(timeout)
        if st is None:
            os.kill(self.main_pid, signal.SIGKILL)
            st = self.wait_exit(timeout)
            self.events.append(('stop-timeout', None, 'needed SIGKILL after %s' % sig))
        return st

    # -- the store ---------------------------------------------------------------

    def store_names(self):
        """Names of the stored fds, in order (a name repeats per fd)."""
        with self.cond:
            return [s.name for s in self.store]

    def store_fd(self, name):
        """A duplicate (owned by the caller) of the first stored fd called
        name, or None."""
        with self.cond:
            for s in self.store:
                if s.name == name:
                    return os.dup(s.fd)
        return None

    def inject(self, name, fd, poll=True):
        """Put fd (consumed) in the store as if the service had sent it."""
        with self.cond:
            self.store.append(StoredFd(name, fd, poll))
            self.events.append(('inject', name, ''))
        self._wake()

    def clear_store(self):
        """What `systemctl stop` does to the store."""
        with self.cond:
            for s in self.store:
                os.close(s.fd)
            self.store = []
            self.events.append(('clear', None, ''))

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def describe(self):
        """Store, events and messages, for a failing test's diagnostics."""
        with self.cond:
            lines = ['store: %s' % [s.name for s in self.store], 'events:']
            lines += ['  %s %s %s' % e for e in self.events]
            lines.append('messages:')
            lines += ['  %r' % m for m in self.messages if m.fields.get('WATCHDOG') != '1']
            return '\n'.join(lines)

    def close(self):
        """Kill the service if it runs, stop the receiver, close the store."""
        try:
            if self.running():
                self.stop(signal.SIGKILL, timeout=10)
        finally:
            self._stopping = True
            self._wake()
            self._thread.join(5)
            self.clear_store()
            self.sock.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass


def disable_bus_activation(bus):
    """Take the PrivateBus's activation file away, so that while the managed
    service is down a call fails (ServiceUnknown) instead of starting an
    unmanaged broker that would own the name. Returns a function that puts
    it back."""
    path = os.path.join(bus.tmp, 'services', 'org.fdbroker.Broker1.service')
    with open(path) as f:
        saved = f.read()
    os.unlink(path)
    bus._bus_call('ReloadConfig', None, None, '()')

    def restore():
        with open(path, 'w') as f:
            f.write(saved)
        bus._bus_call('ReloadConfig', None, None, '()')
    return restore


def broker_argv(binary, bus, runtime_dir=None, extra=()):
    """The service's command line for a PrivateBus: its address, an empty
    policy directory, the runtime directory."""
    argv = [binary, '--bus=' + bus.address, '--policy-dir=' + bus.policy_dir]
    if runtime_dir is not None:
        argv.append('--runtime-dir=' + runtime_dir)
    return argv + list(extra)
