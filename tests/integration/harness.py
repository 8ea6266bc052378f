# SPDX-License-Identifier: LGPL-2.1-or-later
"""Integration test harness for fdbroker.

- PrivateBus: a system-like dbus-daemon in a temporary directory that
  activates the service from the build tree (context manager).
- Every Python suite runs on pytest over this (tests/integration/fixtures.py
  and each suite's conftest.py); the C and GJS client tests print TAP
  themselves (tests/client/glibcheck.py).
- ensure_test_users(): the fdbtest-* users and group (root only).
- ClientProc: a client.py subprocess acting as one user, driven by JSON
  lines (no fork of a process that holds a GDBusConnection).

Usable outside meson:
    sys.path.insert(0, 'tests/integration'); from harness import PrivateBus
"""

import grp
import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR_DEFAULT = os.path.dirname(os.path.dirname(HERE))
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable

BUS_NAME = 'org.fdbroker.Broker1'
OBJ_PATH = '/org/fdbroker/Broker1'
IFACE = 'org.fdbroker.Broker1'

E_NOT_FOUND = 'org.fdbroker.Error.NotFound'
E_EXISTS = 'org.fdbroker.Error.Exists'
E_QUOTA = 'org.fdbroker.Error.QuotaExceeded'
E_NOT_SUPPORTED = 'org.fdbroker.Error.NotSupported'
E_BUSY = 'org.fdbroker.Error.Busy'
E_ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
E_INTERACTIVE = 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired'
E_INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs'

USERS = ('fdbtest-alice', 'fdbtest-bob', 'fdbtest-carol')
GROUP_VIDEO = 'fdbtest-video'

_gi_error = None
try:
    import gi
    gi.require_version('Gio', '2.0')
    gi.require_version('GLib', '2.0')
    from gi.repository import Gio, GLib
except Exception as e:  # noqa: BLE001
    Gio = GLib = None
    _gi_error = '%s: %s' % (type(e).__name__, e)


class Skip(Exception):
    """Raised to skip a test file or a group of subtests, with a reason."""


# How test clients reach the broker (SPEC §5): 'bus', 'direct-socket' (the
# listening socket) or 'open-connection' (OpenConnection, then its socket).
# meson registers the integration files once per transport.
TRANSPORTS = ('bus', 'direct-socket', 'open-connection')


def transport():
    t = os.environ.get('FDBROKER_TEST_TRANSPORT') or 'bus'
    if t not in TRANSPORTS:
        raise ValueError('FDBROKER_TEST_TRANSPORT=%r is not one of %s' % (t, ', '.join(TRANSPORTS)))
    return t


def source_dir():
    return os.environ.get('FDBROKER_SOURCE_DIR') or SOURCE_DIR_DEFAULT


def service_binary():
    p = os.environ.get('FDBROKER_SERVICE')
    if p:
        return p
    build = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(source_dir(), 'build')
    return os.path.join(build, 'service', 'fdbroker')


def check_environment():
    """Raise Skip unless the tests can run at all."""
    if _gi_error is not None:
        raise Skip('python3 gi (Gio) not importable in %s: %s' % (sys.executable, _gi_error))
    if shutil.which('dbus-daemon') is None:
        raise Skip('dbus-daemon not installed')
    b = service_binary()
    if not os.access(b, os.X_OK):
        raise Skip('service binary %s not built' % b)


_default_service_binary = service_binary
_default_source_dir = source_dir


# ---------------------------------------------------------------------------
# Typed option dictionaries for the JSON protocol

class V:
    """An explicitly typed value: V('u', 5)."""

    def __init__(self, sig, value):
        self.sig = sig
        self.value = value


def typed(opts):
    """{'seal': True, 'allow': ['everyone'], 'x': V('u', 1)} -> {key: [sig, value]}.
    bool -> b, str -> s, int -> t, list -> as."""
    out = {}
    for k, v in (opts or {}).items():
        if isinstance(v, V):
            out[k] = [v.sig, v.value]
        elif isinstance(v, bool):
            out[k] = ['b', v]
        elif isinstance(v, str):
            out[k] = ['s', v]
        elif isinstance(v, int):
            out[k] = ['t', v]
        elif isinstance(v, (list, tuple)):
            out[k] = ['as', list(v)]
        else:
            raise TypeError('cannot type option %r=%r' % (k, v))
    return out


def to_gvariant_dict(opts):
    return {k: GLib.Variant(sig, v) for k, (sig, v) in typed(opts).items()}


def memfd(data=None, **kw):
    spec = {'type': 'memfd'}
    if data is not None:
        spec['data'] = data
    spec.update(kw)
    return spec


SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:')


# ---------------------------------------------------------------------------
# Users

def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ensure_test_users():
    """Create (idempotently) the fdbtest-* users and fdbtest-video with bob in
    it. Returns {short name: {'name', 'uid', 'gid', 'groups'}} and 'video'
    gid. Raises Skip when not root or when useradd is missing."""
    if os.geteuid() != 0:
        raise Skip('needs root to create and act as the fdbtest-* users')
    for tool in ('useradd', 'groupadd', 'usermod'):
        if shutil.which(tool) is None and not os.path.exists('/usr/sbin/' + tool):
            raise Skip('%s not found' % tool)
    try:
        grp.getgrnam(GROUP_VIDEO)
    except KeyError:
        r = _run(['groupadd', '--system', GROUP_VIDEO])
        if r.returncode != 0:
            try:
                grp.getgrnam(GROUP_VIDEO)
            except KeyError:
                raise Skip('groupadd %s failed: %s' % (GROUP_VIDEO, r.stdout.strip()))
    for u in USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            r = _run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', u])
            if r.returncode != 0:
                try:
                    pwd.getpwnam(u)
                except KeyError:
                    raise Skip('useradd %s failed: %s' % (u, r.stdout.strip()))
    if 'fdbtest-bob' not in grp.getgrnam(GROUP_VIDEO).gr_mem:
        r = _run(['usermod', '-a', '-G', GROUP_VIDEO, 'fdbtest-bob'])
        if r.returncode != 0:
            raise Skip('usermod -a -G %s fdbtest-bob failed: %s' % (GROUP_VIDEO, r.stdout.strip()))
    out = {}
    for u in USERS:
        pw = pwd.getpwnam(u)
        out[u.split('-', 1)[1]] = {'name': u, 'uid': pw.pw_uid, 'gid': pw.pw_gid,
                                   'groups': os.getgrouplist(u, pw.pw_gid)}
    out['video'] = grp.getgrnam(GROUP_VIDEO).gr_gid
    return out


# ---------------------------------------------------------------------------
# The bus

SYSTEM_POLICY = os.path.join(os.path.dirname(HERE), 'debian-system-policy.conf')


def _busconfig(tmp, policy_include, extra=''):
    return '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={tmp}/bus</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{tmp}/services</servicedir>

  <!-- Debian's system.conf default policy -->
  <include>{system_policy}</include>

  <include>{policy}</include>
{nonroot}{extra}
</busconfig>
'''.format(tmp=tmp, policy=policy_include, extra=extra, nonroot=_nonroot_policy(),
           system_policy=SYSTEM_POLICY)


def _nonroot_policy():
    """Run by a user other than root, the service (a child of this
    dbus-daemon) runs as that user too, and the real policy lets only root
    own the name: let that user own it on this test bus."""
    if os.geteuid() == 0:
        return ''
    return '''  <!-- added by the test harness: the service runs as uid {uid} here -->
  <policy user="{user}">
    <allow own="org.fdbroker.Broker1"/>
  </policy>
'''.format(uid=os.geteuid(), user=pwd.getpwuid(os.geteuid()).pw_name)


_FALLBACK_POLICY = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Temporary stand-in for data/org.fdbroker.Broker1.conf, written by the
     test harness because the source tree has none yet. -->
<busconfig>
  <policy user="root">
    <allow own="org.fdbroker.Broker1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.fdbroker.Broker1"
           send_interface="org.fdbroker.Broker1"/>
    <allow send_destination="org.fdbroker.Broker1"
           send_interface="org.freedesktop.DBus.Peer"/>
    <allow send_destination="org.fdbroker.Broker1"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.fdbroker.Broker1"
           send_interface="org.freedesktop.DBus.Properties"
           send_member="Get"/>
    <allow send_destination="org.fdbroker.Broker1"
           send_interface="org.freedesktop.DBus.Properties"
           send_member="GetAll"/>
  </policy>
</busconfig>
'''


# fdbroker.service's User= and capabilities (data/fdbroker.service.in).
SERVICE_CAPS = ('setuid', 'setgid')


def ensure_service_user(name):
    """The system user the service runs as (created when missing, as
    fdbroker.sysusers would). Needs root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise Skip('running the service as %s needs root' % name)
    r = _run(['useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent',
              '--shell', '/usr/sbin/nologin', name])
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise Skip('could not create system user %s: %s' % (name, r.stdout.strip()))


def service_user_wrapper(name):
    """setpriv arguments that run a command as the unit does: uid and gid
    name, its groups, CAP_SETUID CAP_SETGID ambient (and
    nothing else in the bounding set), no new privileges."""
    caps = ','.join('+' + c for c in SERVICE_CAPS)
    return ['setpriv', '--reuid=' + name, '--regid=' + name, '--init-groups',
            '--inh-caps=-all,' + caps, '--ambient-caps=-all,' + caps,
            '--bounding-set=-all,' + caps, '--no-new-privs']


def _pid_alive(pid):
    """True while pid exists and is not a zombie (the service is a child of
    dbus-daemon's, so we cannot wait for it)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rindex(')') + 2:].split()[0]
    return state not in ('Z', 'X')


def _kill_and_wait(pid, timeout=5.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 'none'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return 'term'
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.02)
    return 'kill'


class PrivateBus:
    """A private system-like bus that activates fdbroker on demand.

        with PrivateBus(service_binary, source_dir) as bus:
            conn = bus.connect()
    """

    def __init__(self, service_binary=None, source_dir=None, workdir=None, extra_service_args=(),
                 policy_files=None, hermetic_policy=True, extra_bus_config='', service_nofile=None):
        if Gio is None:
            raise Skip('python3 gi not available: %s' % _gi_error)
        self.service_binary = os.path.abspath(service_binary or _default_service_binary())
        self.source_dir = os.path.abspath(source_dir or _default_source_dir())
        self.extra_service_args = list(extra_service_args)
        self.service_nofile = service_nofile  # RLIMIT_NOFILE (soft and hard) for the service
        self._own_tmp = workdir is None
        self.tmp = tempfile.mkdtemp(prefix='fdbroker-test-') if workdir is None else os.path.abspath(workdir)
        os.makedirs(self.tmp, exist_ok=True)
        # Other test users connect to TMP/bus and use TMP/scratch.
        os.chmod(self.tmp, 0o755)
        self.log_path = os.path.join(self.tmp, 'fdbroker.log')
        # The service always listens here too (--direct-socket), so tests of
        # direct connections run whatever the clients' transport.
        self.direct_socket = os.path.join(self.tmp, 'direct')
        # FDBROKER_TEST_SERVICE_USER=fdbroker: the service runs as that user
        # with fdbroker.service's two capabilities (service_user_wrapper).
        self.service_user = os.environ.get('FDBROKER_TEST_SERVICE_USER') or None
        if self.service_user:
            self.direct_socket = os.path.join(self.tmp, 'run', 'direct')
        self.transport = transport()
        self.daemon_log_path = os.path.join(self.tmp, 'dbus-daemon.log')
        self.scratch = os.path.join(self.tmp, 'scratch')
        self.address = None
        self.daemon = None
        self._conn = None
        self._clients = []
        self.policy_file = None
        # The service reads admin rules from --policy-dir; by default it gets
        # an empty directory of its own (plus policy_files), so that rules
        # installed on the machine do not change what the tests see.
        self.policy_dir = os.path.join(self.tmp, 'policy.d')
        self.policy_files = dict(policy_files or {})
        self.hermetic_policy = hermetic_policy
        # Extra busconfig XML (e.g. <policy> elements letting a polkit mock
        # own org.freedesktop.PolicyKit1), placed after the bus policy.
        self.extra_bus_config = extra_bus_config

    # -- setup -------------------------------------------------------------

    def _write_files(self):
        services = os.path.join(self.tmp, 'services')
        os.makedirs(services, exist_ok=True)
        os.makedirs(self.scratch, exist_ok=True)
        os.chmod(self.scratch, 0o1777)
        real = os.path.join(self.source_dir, 'data', 'org.fdbroker.Broker1.conf')
        if os.path.exists(real):
            self.policy_file = real
        else:
            self.policy_file = os.path.join(self.tmp, 'org.fdbroker.Broker1.conf')
            with open(self.policy_file, 'w') as f:
                f.write(_FALLBACK_POLICY)
        self.config_path = os.path.join(self.tmp, 'bus.conf')
        with open(self.config_path, 'w') as f:
            f.write(_busconfig(self.tmp, self.policy_file, self.extra_bus_config))
        os.makedirs(self.policy_dir, exist_ok=True)
        for fname, text in self.policy_files.items():
            with open(os.path.join(self.policy_dir, fname), 'w') as f:
                f.write(text)
        if self.service_user:
            pw = ensure_service_user(self.service_user)
            run = os.path.dirname(self.direct_socket)
            os.makedirs(run, exist_ok=True)
            os.chown(run, pw.pw_uid, pw.pw_gid)
            os.chown(self.policy_dir, pw.pw_uid, pw.pw_gid)
        self.write_service_wrapper()
        with open(os.path.join(services, BUS_NAME + '.service'), 'w') as f:
            f.write('[D-BUS Service]\nName=%s\nUser=root\nExec=%s\n'
                    % (BUS_NAME, os.path.join(self.tmp, 'run-fdbroker')))

    def write_service_wrapper(self, extra_service_args=None):
        """(Re)write TMP/run-fdbroker; takes effect at the next activation."""
        if extra_service_args is not None:
            self.extra_service_args = list(extra_service_args)
        lines = ['#!/bin/sh', '# generated by tests/integration/harness.py']
        for var in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'G_DEBUG',
                    'G_MESSAGES_DEBUG', 'SYSTEMD_LOG_LEVEL'):
            if var in os.environ:
                lines.append('export %s=%s' % (var, shlex.quote(os.environ[var])))
        if self.service_nofile is not None:
            lines.append('ulimit -n %d' % self.service_nofile)
        cmd = [self.service_binary, '--bus=system']
        if (self.hermetic_policy and self._service_has_option('--policy-dir')
                and not any(a.startswith('--policy-dir') for a in self.extra_service_args)):
            cmd.append('--policy-dir=' + self.policy_dir)
        if (self._service_has_option('--direct-socket')
                and not any(a.startswith('--direct-socket') for a in self.extra_service_args)):
            cmd.append('--direct-socket=' + self.direct_socket)
        cmd += self.extra_service_args
        if self.service_user:
            cmd = service_user_wrapper(self.service_user) + cmd
        lines.append('exec %s >>%s 2>&1' % (' '.join(shlex.quote(c) for c in cmd),
                                            shlex.quote(self.log_path)))
        wrapper = os.path.join(self.tmp, 'run-fdbroker')
        with open(wrapper, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(wrapper, 0o755)

    def _service_has_option(self, opt):
        if not hasattr(self, '_help_text'):
            try:
                r = subprocess.run([self.service_binary, '--help'], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=30)
                self._help_text = r.stdout
            except (OSError, subprocess.SubprocessError):
                self._help_text = ''
        return opt in self._help_text

    def start(self):
        if self.bus_kind == 'dbus-broker':
            return self._start_dbus_broker()
        self._write_files()
        env = dict(os.environ)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        env.pop('DBUS_SYSTEM_BUS_ADDRESS', None)
        self._daemon_log = open(self.daemon_log_path, 'ab')
        self.daemon = subprocess.Popen(
            ['dbus-daemon', '--config-file=' + self.config_path, '--nofork', '--nopidfile',
             '--print-address=1'],
            stdout=subprocess.PIPE, stderr=self._daemon_log, stdin=subprocess.DEVNULL, env=env)
        r, _, _ = select.select([self.daemon.stdout], [], [], 30)
        line = self.daemon.stdout.readline().decode().strip() if r else ''
        if not line:
            self.stop()
            raise RuntimeError('dbus-daemon did not print its address; log:\n' + self.daemon_log())
        self.address = line
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- connections -------------------------------------------------------

    def connect(self):
        """A new Gio.DBusConnection to the bus, as the calling process."""
        conn = Gio.DBusConnection.new_for_address_sync(
            self.address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        conn.set_exit_on_close(False)
        return conn

    @property
    def conn(self):
        """The test process's own (root) connection, made on first use."""
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def _bus_call(self, method, args, sig, reply):
        r = self.conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                                method, GLib.Variant(sig, args) if sig else None,
                                GLib.VariantType.new(reply), Gio.DBusCallFlags.NONE, 30000, None)
        return r.unpack()

    def service_running(self):
        return self._bus_call('NameHasOwner', (BUS_NAME,), '(s)', '(b)')[0]

    def service_pid(self, activate=True):
        if not self.service_running():
            if not activate:
                return None
            if self.bus_kind == 'dbus-broker':
                self._start_service_by_hand()
            else:
                self._bus_call('StartServiceByName', (BUS_NAME, 0), '(su)', '(u)')
        return self._bus_call('GetConnectionUnixProcessID', (BUS_NAME,), '(s)', '(u)')[0]

    def service_fd_count(self):
        return len(os.listdir('/proc/%d/fd' % self.service_pid()))

    def service_fds(self):
        """{fd: readlink} of the service's open fds, for diagnostics."""
        pid = self.service_pid()
        out = {}
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                out[int(fd)] = os.readlink('/proc/%d/fd/%s' % (pid, fd))
            except OSError:
                pass
        return out

    def service_fdinfo(self):
        """{fd: {'link', 'flags', 'dev', 'ino'}} for every fd the service
        holds (flags from /proc/PID/fdinfo, dev/ino of the open file)."""
        pid = self.service_pid()
        out = {}
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
                st = os.stat('/proc/%d/fd/%s' % (pid, fd))
                with open('/proc/%d/fdinfo/%s' % (pid, fd)) as f:
                    flags = int(re.search(r'^flags:\s*([0-7]+)', f.read(), re.M).group(1), 8)
            except (OSError, AttributeError):
                continue
            out[int(fd)] = {'link': link, 'flags': flags, 'dev': st.st_dev, 'ino': st.st_ino}
        return out

    def service_limits(self):
        """/proc/PID/limits as {name: (soft, hard)}."""
        out = {}
        with open('/proc/%d/limits' % self.service_pid()) as f:
            for line in f.readlines()[1:]:
                m = re.match(r'^(.*?)\s{2,}(\S+)\s+(\S+)', line)
                if m:
                    out[m.group(1).strip()] = (m.group(2), m.group(3))
        return out

    def stop_service(self):
        """SIGTERM the service, SIGKILL it if it does not go. Returns
        'none' (not running), 'term' or 'kill' (what it took)."""
        pid = self.service_pid(activate=False) if self.daemon and self.daemon.poll() is None else None
        if not pid:
            return 'none'
        how = _kill_and_wait(pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.service_running():
            time.sleep(0.02)
        return how

    def restart_service(self, extra_service_args=None):
        """Stop the service and activate it again (with new arguments, if
        given). Returns the new pid."""
        self.stop_service()
        if extra_service_args is not None:
            self.write_service_wrapper(extra_service_args)
        return self.service_pid()

    def call(self, method, sig, args, reply=None, iface=IFACE, fds=(), timeout_ms=30000):
        """A call from the test process (root). Returns (unpacked reply, out fds)."""
        fdlist = None
        if fds:
            fdlist = Gio.UnixFDList.new()
            for fd in fds:
                fdlist.append(fd)
        r, out = self.conn.call_with_unix_fd_list_sync(
            BUS_NAME, OBJ_PATH, iface, method, GLib.Variant(sig, args) if sig else None,
            GLib.VariantType.new(reply) if reply else None, Gio.DBusCallFlags.NONE,
            timeout_ms, fdlist, None)
        outfds = list(out.steal_fds()) if out is not None else []
        return (r.unpack() if r is not None else None), outfds

    def get_property(self, name):
        r, _ = self.call('Get', '(ss)', (IFACE, name), '(v)', iface='org.freedesktop.DBus.Properties')
        return r[0]

    def entry_count(self):
        return self.get_property('EntryCount')

    def client_script(self):
        return _copy_client_scripts(self.tmp)

    def wait_direct_socket(self):
        """Activates the service and waits for its listening socket."""
        self.service_pid()
        if not poll_until(lambda: os.path.exists(self.direct_socket), timeout=30):
            raise Skip('the service does not listen on %s (no --direct-socket?)' % self.direct_socket)

    def client(self, user=None, groups=None, transport=None):
        """A client.py subprocess; transport defaults to the file's."""
        c = ClientProc(self, user=user, groups=groups, transport=transport)
        self._clients.append(c)
        return c

    # -- logs and teardown ---------------------------------------------------

    def service_log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return '(no service log at %s)' % self.log_path

    def daemon_log(self):
        try:
            with open(self.daemon_log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    # -- dbus-broker (FDBROKER_TEST_BUS=dbus-broker) -------------------------

    @property
    def bus_kind(self):
        """'dbus-daemon' (default) or 'dbus-broker': FDBROKER_TEST_BUS, or
        bus_kind set before start()."""
        return getattr(self, '_bus_kind', None) or os.environ.get('FDBROKER_TEST_BUS') or 'dbus-daemon'

    @bus_kind.setter
    def bus_kind(self, value):
        self._bus_kind = value

    def _start_dbus_broker(self):
        """A private dbus-broker in a mount namespace of its own
        (dbus_broker_ns.py). It cannot activate services without systemd:
        the service is started by hand (service_pid())."""
        if os.geteuid() != 0:
            raise Skip('a private dbus-broker needs root (a mount namespace for its journal socket)')
        for tool in ('dbus-broker-launch', 'systemd-socket-activate', 'unshare'):
            if shutil.which(tool) is None:
                raise Skip('%s not installed (tools/install-deps.sh installs dbus-broker)' % tool)
        self._write_files()
        sock = os.path.join(self.tmp, 'bus')
        self.address = 'unix:path=' + sock
        env = dict(os.environ)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        self._daemon_log = open(self.daemon_log_path, 'ab')
        self.daemon = subprocess.Popen(
            ['unshare', '-m', '--propagation', 'private', PYTHON, os.path.join(HERE, 'dbus_broker_ns.py'),
             sock, self.daemon_log_path, self.config_path],
            stdout=subprocess.PIPE, stderr=self._daemon_log, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                log = self.daemon_log()
                self.stop(cleanup=False)
                raise Skip('a private dbus-broker did not start here; log:\n' + log)
            time.sleep(0.02)
        os.chmod(sock, 0o666)  # created 0644: other users connect too
        return self

    def _start_service_by_hand(self):
        env = dict(os.environ)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = self.address
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        self._service_proc = subprocess.Popen([os.path.join(self.tmp, 'run-fdbroker')], env=env,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.service_running():
            if self._service_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('fdbroker did not take its name on dbus-broker; log:\n' + self.service_log())
            time.sleep(0.02)

    def _stop_dbus_broker(self):
        proc = getattr(self, '_service_proc', None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.daemon.poll() is None:
            # The launcher, the broker and the journal drainer: one session.
            try:
                os.killpg(self.daemon.pid, signal.SIGTERM)
                self.daemon.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.daemon.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.daemon.poll() is None:
            self.daemon.wait()

    def stop(self, cleanup=True):
        """Stop clients, the service and the bus; with cleanup, also remove
        the temporary directory (logs included)."""
        for c in self._clients:
            c.close()
        self._clients = []
        if self.daemon is not None and self.daemon.poll() is None:
            try:
                self.stop_service()
            except Exception:  # noqa: BLE001
                pass
        if self._conn is not None:
            try:
                self._conn.close_sync(None)
            except Exception:  # noqa: BLE001
                pass
            self._conn = None
        if self.daemon is not None and self.bus_kind == 'dbus-broker':
            self._stop_dbus_broker()
        if self.daemon is not None:
            if self.daemon.poll() is None:
                self.daemon.terminate()
                try:
                    self.daemon.wait(5)
                except subprocess.TimeoutExpired:
                    self.daemon.kill()
                    self.daemon.wait()
            self.daemon.stdout.close()
            self.daemon = None
            self._daemon_log.close()
        if cleanup:
            self.cleanup()

    def cleanup(self):
        if self._own_tmp and not os.environ.get('FDBROKER_KEEP_TMP'):
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Clients acting as other users

class ClientError(Exception):
    pass


def _copy_client_scripts(tmp):
    """Copies client.py and fdutil.py where every test user can read them:
    the checkout may sit in a directory they cannot enter (/root)."""
    d = os.path.join(tmp, 'clientlib')
    if not os.path.isdir(d):
        os.makedirs(d)
        os.chmod(d, 0o755)
        for name in ('client.py', 'fdutil.py'):
            shutil.copy(os.path.join(HERE, name), os.path.join(d, name))
            os.chmod(os.path.join(d, name), 0o644)
    return os.path.join(d, 'client.py')


class ClientProc:
    """client.py as a subprocess, as `user` (a dict from ensure_test_users()
    or None for the test process's own uid). Each method sends one request
    and returns the decoded answer."""

    def __init__(self, bus, user=None, groups=None, transport=None):
        self.bus = bus
        self.user = user
        self.transport = transport or bus.transport
        kw = {}
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'FDBTEST_SCRATCH': bus.scratch,
               'HOME': '/', 'LANG': 'C.UTF-8', 'FDBTEST_TRANSPORT': self.transport,
               'FDBTEST_DIRECT_SOCKET': bus.direct_socket}
        if self.transport == 'direct-socket':
            bus.wait_direct_socket()
        for var in ('ASAN_OPTIONS', 'G_DEBUG'):
            if var in os.environ:
                env[var] = os.environ[var]
        if user is not None:
            kw = {'user': user['uid'], 'group': user['gid'],
                  'extra_groups': user['groups'] if groups is None else groups}
        self.label = user['name'] if user else 'uid%d' % os.geteuid()
        self.stderr_path = os.path.join(bus.tmp, 'client-%s-%d.log' % (self.label, id(self)))
        self._stderr = open(self.stderr_path, 'wb')
        os.chmod(self.stderr_path, 0o666)
        self.proc = subprocess.Popen([PYTHON, bus.client_script(), bus.address],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, cwd='/', **kw)
        hello = self._read(60)
        if not hello.get('ready'):
            raise ClientError('client %s could not connect: %r' % (self.label, hello))
        self.uid = hello['uid']
        self.unique_name = hello['unique_name']

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise ClientError('client %s: no answer within %ss' % (self.label, timeout))
        line = self.proc.stdout.readline()
        if not line:
            with open(self.stderr_path, errors='replace') as f:
                err = f.read()
            raise ClientError('client %s exited: %s' % (self.label, err))
        return json.loads(line)

    def req(self, op, timeout=120, **kw):
        kw['op'] = op
        self.proc.stdin.write((json.dumps(kw) + '\n').encode())
        self.proc.stdin.flush()
        return self._read(timeout)

    # convenience wrappers
    def deposit(self, name, fd, **opts):
        return self.req('deposit', name=name, fd=fd, options=typed(opts))

    def deposit_many(self, fds, fdspecs, **opts):
        return self.req('deposit_many', fds=fds, fdspecs=fdspecs, options=typed(opts))

    def retrieve(self, name, keep=None, read=True, timeout_ms=60000, **opts):
        return self.req('retrieve', name=name, options=typed(opts), keep=keep, read=read,
                        timeout_ms=timeout_ms)

    def retrieve_async(self, tag, name, timeout_ms=60000, **opts):
        return self.req('retrieve', name=name, options=typed(opts), timeout_ms=timeout_ms,
                        **{'async': tag})

    def wait_for(self, tag, timeout_ms=60000):
        return self.req('await', tag=tag, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 30)

    def poll(self, tag):
        return self.req('poll', tag=tag)['done']

    def retrieve_many(self, names, keep=None, read=True, **opts):
        return self.req('retrieve_many', names=names, options=typed(opts), keep=keep, read=read)

    def remove(self, name):
        return self.req('remove', name=name)

    def list(self, **flt):
        return self.req('list', filter=typed(flt))

    def names(self, prefix=None):
        r = self.list(**({'prefix': prefix} if prefix is not None else {}))
        if not r.get('ok'):
            raise ClientError('List failed: %r' % r)
        return r['names']

    def create_memory(self, name, size, write=None, keep=None, **opts):
        kw = {'name': name, 'size': size, 'options': typed(opts), 'keep': keep}
        if write is not None:
            kw['write'] = write
        return self.req('create_memory', **kw)

    def open_path(self, path, **opts):
        return self.req('open_path', path=path, options=typed(opts))

    def raw(self, method, sig, args, iface=IFACE, fds=()):
        """Any call; args must be JSON-able for GLib.Variant(sig, args)."""
        return self.req('raw', method=method, sig=sig, args=list(args), iface=iface, fdspecs=list(fds))

    def entry_count(self):
        r = self.req('get_property', name='EntryCount')
        if not r.get('ok'):
            raise ClientError('EntryCount: %r' % r)
        return r['value']

    def fd_new(self, handle, spec):
        return self.req('fd_new', handle=handle, spec=spec)

    def fd_facts(self, handle):
        return self.req('fd_facts', handle=handle)

    def fd_close(self, handle):
        return self.req('fd_close', handle=handle)

    def close(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        except Exception:  # noqa: BLE001
            try:
                self.proc.kill()
                self.proc.wait()
            except Exception:  # noqa: BLE001
                pass
        try:
            self.proc.stdout.close()
        except Exception:  # noqa: BLE001
            pass
        self._stderr.close()
        self.proc = None

    def kill(self):
        """Disconnect abruptly (SIGKILL), as a crashing client would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()


def poll_until(fn, timeout=30.0, interval=0.05):
    """Call fn until it returns a true value or timeout passes; returns the
    last value. Used to wait for asynchronous effects with a bound, never to
    assert how long they took."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def state(bus, client, prefix=None):
    """(EntryCount, client's List names): compared before and after a
    refused call, which must change nothing."""
    return (bus.entry_count(), client.names(prefix))


# ---------------------------------------------------------------------------
# GLib programs: no warnings, no criticals

GLIB_BAD_WORDS = ('CRITICAL', 'WARNING')


def glib_stderr_problems(text):
    """The lines of a GLib program's stderr that hold a GLib critical or
    warning ("GLib-GIO-CRITICAL **", "(process:1): FdBroker-WARNING **")."""
    return [line for line in (text or '').splitlines() if any(w in line for w in GLIB_BAD_WORDS)]


def glib_env(env=None):
    """env (default: ours) with G_DEBUG=fatal-criticals added."""
    env = dict(os.environ if env is None else env)
    flags = [f for f in env.get('G_DEBUG', '').split(',') if f]
    if 'fatal-criticals' not in flags:
        flags.append('fatal-criticals')
    env['G_DEBUG'] = ','.join(flags)
    return env
