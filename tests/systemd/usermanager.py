# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real `systemd --user` manager, without systemd as PID 1.

Follows /work/shared/PLATFORM.md ("A real systemd manager without systemd as
PID 1") exactly:

1. A fresh cgroup of our own is created under both /sys/fs/cgroup/systemd/
   and /sys/fs/cgroup/unified/, and the launching shell moves itself into
   both *before* anything else; it checks /proc/$$/cgroup and refuses
   (exit 77) unless it is in exactly those cgroups. systemd is never
   started from the root cgroup: it would move every process of the
   machine, PID 1 included, into its own scope. Anything that cannot be
   created or entered makes the caller skip, never fall back.
2. It enters a private mount namespace (`unshare -m --propagation private`)
   and bind-mounts an empty folder holding `system/` over /run/systemd, so
   that sd_booted() is true in there and nowhere else. The folder also holds
   `journal/socket`, a datagram socket this process drains into
   manager.log: dbus-broker's launcher (the user bus once the dbus-broker
   package is installed) exits without one.
3. It execs /lib/systemd/systemd --user with XDG_RUNTIME_DIR (and HOME and
   the XDG config/data dirs) in a private temporary folder. The user bus
   comes up by socket activation at $XDG_RUNTIME_DIR/bus (package
   dbus-user-session).

systemctl runs inside the namespace: `nsenter -t PID -m -r -w systemctl --user`.
The test talks to the bus directly (the socket lives outside /run/systemd).

close() (also on an exception, SIGTERM or SIGINT) stops the manager, kills
whatever is left in our cgroups by pid, removes the cgroups and the folder.
Should the test process itself be killed first (meson's timeout sends
SIGTERM to the process group and SIGKILL half a second later), a janitor
started in a session of its own sees its stdin close and does the same.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SYSTEMD = '/lib/systemd/systemd'
CGROUP_V1 = '/sys/fs/cgroup/systemd'
CGROUP_V2 = '/sys/fs/cgroup/unified'
DBUS_USER_SOCKET = '/usr/lib/systemd/user/dbus.socket'


class Skip(Exception):
    """The set-up is impossible here; the reason says why."""


_LAUNCHER = r'''
set -u
cg_v1=$1 cg_v2=$2 cg_name=$3 fakerun=$4
echo $$ > "$cg_v1/cgroup.procs" || { echo "cannot enter $cg_v1" >&2; exit 77; }
echo $$ > "$cg_v2/cgroup.procs" || { echo "cannot enter $cg_v2" >&2; exit 77; }
# Never start systemd from the root cgroup (or anyone else's).
for want in "[0-9]*:name=systemd:/$cg_name" "0::/$cg_name"; do
    grep -qx "$want" /proc/$$/cgroup || { echo "not in $want:" >&2; cat /proc/$$/cgroup >&2; exit 77; }
done
exec unshare -m --propagation private /bin/sh -c '
    mount --bind "$1" /run/systemd || { echo "cannot bind-mount $1 over /run/systemd" >&2; exit 77; }
    exec @SYSTEMD@ --user' sh "$fakerun"
'''.replace('@SYSTEMD@', SYSTEMD)


def _which(name):
    return shutil.which(name, path='/usr/sbin:/usr/bin:/sbin:/bin')


def _cgroup_pids(cgroups):
    pids = set()
    for root in cgroups:
        for d, _, files in os.walk(root):
            if 'cgroup.procs' in files:
                try:
                    with open(os.path.join(d, 'cgroup.procs')) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
    return pids


def sweep(cgroups, timeout=30):
    """SIGKILL every process in our cgroups (all started by our manager),
    then remove the cgroups, deepest first. Returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _cgroup_pids(cgroups)
        if not pids or time.monotonic() > deadline:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    left = []
    for root in cgroups:
        for d, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count('/')):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        if os.path.exists(root):
            left.append(root)
    return left


def _janitor(argv):
    """usermanager.py --janitor WORKDIR CGROUP...: wait for stdin to close;
    unless told 'done' first, sweep the cgroups and remove WORKDIR."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    workdir, cgroups = argv[0], argv[1:]
    done = False
    for line in sys.stdin:
        if line.strip() == 'done':
            done = True
    if not done:
        sweep(cgroups)
        if not os.environ.get('FDBROKER_KEEP_TMP'):
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


class UserManager:
    def __init__(self, prefix='fdbroker-systemd-'):
        self.workdir = None
        self.runtime_dir = None
        self.log_path = None
        self._log = None
        self._janitor = None
        self.cgroup = None
        self.pid = None
        self.proc = None
        self._prefix = prefix
        self._made_cgroups = []
        self._journal = None

    # -- set-up ------------------------------------------------------------------

    def check(self):
        """Raise Skip with the reason if the set-up cannot work here."""
        if os.geteuid() != 0:
            raise Skip('needs root (cgroups, mount namespace)')
        if not os.access(SYSTEMD, os.X_OK):
            raise Skip('%s not found (package systemd)' % SYSTEMD)
        if not os.path.exists(DBUS_USER_SOCKET):
            raise Skip('%s not found: the user bus needs the package dbus-user-session' % DBUS_USER_SOCKET)
        for tool in ('unshare', 'nsenter', 'mount'):
            if not _which(tool):
                raise Skip('%s not found (package util-linux / mount)' % tool)
        with open('/proc/self/mounts') as f:
            mounts = [line.split() for line in f]
        by_dir = {m[1]: m for m in mounts if len(m) > 3}
        v1, v2 = by_dir.get(CGROUP_V1), by_dir.get(CGROUP_V2)
        if not v1 or v1[2] != 'cgroup' or 'name=systemd' not in v1[3]:
            raise Skip('%s is not a name=systemd cgroup v1 hierarchy (this recipe needs the hybrid layout)'
                       % CGROUP_V1)
        if not v2 or v2[2] != 'cgroup2':
            raise Skip('%s is not a cgroup2 mount (this recipe needs the hybrid layout)' % CGROUP_V2)
        if not os.path.isdir('/run/systemd'):
            raise Skip('/run/systemd does not exist, so nothing can be bind-mounted over it')
        if os.path.isdir('/run/systemd/system'):
            raise Skip('/run/systemd/system exists: systemd already runs this machine; this recipe is for '
                       'machines without it')
        r = subprocess.run(['unshare', '-m', '--propagation', 'private', 'true'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        if r.returncode != 0:
            raise Skip('cannot enter a private mount namespace (unshare -m --propagation private): %s'
                       % r.stdout.strip())

    def start(self, timeout=60):
        """Start the manager; wait (bounded) until it runs and the user bus
        socket exists. Raises Skip when a step is impossible."""
        self.check()
        self.workdir = tempfile.mkdtemp(prefix=self._prefix)
        os.chmod(self.workdir, 0o755)
        self.runtime_dir = os.path.join(self.workdir, 'xdg')
        os.mkdir(self.runtime_dir, 0o700)
        self.home = os.path.join(self.workdir, 'home')
        os.makedirs(os.path.join(self.home, '.config'))
        os.makedirs(os.path.join(self.home, '.local', 'share'))
        fakerun = os.path.join(self.workdir, 'fakerun')
        os.makedirs(os.path.join(fakerun, 'system'))
        self.log_path = os.path.join(self.workdir, 'manager.log')
        self._start_journal(os.path.join(fakerun, 'journal'))

        self.cgroup = os.path.basename(self.workdir)
        for root in (CGROUP_V1, CGROUP_V2):
            path = os.path.join(root, self.cgroup)
            try:
                os.mkdir(path)
            except OSError as e:
                raise Skip('cannot create the cgroup %s: %s' % (path, e))
            self._made_cgroups.append(path)
        self._janitor = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--janitor', self.workdir] + self._made_cgroups,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd='/',
            start_new_session=True)

        env = {
            'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG': 'C.UTF-8',
            'HOME': self.home,
            'XDG_CONFIG_HOME': os.path.join(self.home, '.config'),
            'XDG_DATA_HOME': os.path.join(self.home, '.local', 'share'),
            'XDG_RUNTIME_DIR': self.runtime_dir,
        }
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            ['/bin/sh', '-c', _LAUNCHER, 'launcher', self._made_cgroups[0], self._made_cgroups[1], self.cgroup,
             fakerun],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env, cwd='/')
        self.pid = self.proc.pid  # the same process execs unshare, sh, then systemd

        deadline = time.monotonic() + timeout
        private = os.path.join(self.runtime_dir, 'systemd', 'private')
        while True:
            rc = self.proc.poll()
            if rc is not None:
                log = self.manager_log()
                if rc == 77:
                    raise Skip('the launcher could not set up the cgroup or mount namespace: %s'
                               % log.strip().replace('\n', ' | '))
                raise RuntimeError('systemd --user exited with %d; log:\n%s' % (rc, log))
            if os.path.exists(private) and os.path.exists(self.bus_path):
                state = self.systemctl('is-system-running', check=False).stdout.strip()
                if state in ('running', 'degraded'):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError('systemd --user did not come up within %ss; log:\n%s'
                                   % (timeout, self.manager_log()))
            time.sleep(0.1)
        with open('/proc/%d/cgroup' % self.pid) as f:
            cg = f.read()
        if '/%s/' % self.cgroup not in cg:
            raise RuntimeError('the manager is not in its own cgroup:\n' + cg)
        return self

    def _start_journal(self, directory):
        """A stand-in for journald's socket in the fake /run/systemd.

        With the dbus-broker package installed, dbus-broker is the user bus
        too (/etc/systemd/user/dbus.service), and its launcher exits at
        start without /run/systemd/journal/socket. Whichever bus is the
        default here runs, with its log (and the manager's) appended to
        manager.log: a thread drains the datagrams so no writer blocks."""
        os.makedirs(directory)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(os.path.join(directory, 'socket'))
        os.chmod(os.path.join(directory, 'socket'), 0o666)
        self._journal = sock
        log_path = self.log_path

        def drain():
            with open(log_path, 'ab') as log:
                while True:
                    try:
                        data = sock.recv(1 << 17)
                    except OSError:
                        return
                    if not data:
                        return
                    for field in data.split(b'\n'):
                        if field.startswith(b'MESSAGE='):
                            log.write(b'journal: ' + field[8:] + b'\n')
                            log.flush()

        threading.Thread(target=drain, daemon=True).start()

    @property
    def bus_path(self):
        return os.path.join(self.runtime_dir, 'bus')

    @property
    def bus_address(self):
        return 'unix:path=' + self.bus_path

    def manager_log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    # -- control -----------------------------------------------------------------

    def systemctl(self, *args, check=True, timeout=120):
        """`systemctl --user ARGS` inside the manager's mount namespace."""
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'XDG_RUNTIME_DIR': self.runtime_dir,
               'SYSTEMD_PAGER': '', 'SYSTEMD_COLORS': '0'}
        # -r -w: take the manager's root and cwd too; setns() into a mount
        # namespace resets them to the namespace's root, which escapes a chroot.
        r = subprocess.run(['nsenter', '-t', str(self.pid), '-m', '-r', '-w', 'systemctl', '--user', '--no-pager']
                           + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError('systemctl --user %s: exit %d: %s' % (' '.join(args), r.returncode, r.stderr.strip()))
        return r

    def show(self, unit, *props):
        """{prop: value} from `systemctl --user show UNIT -p ...`."""
        r = self.systemctl('show', unit, *['-p' + p for p in props])
        out = {}
        for line in r.stdout.splitlines():
            if '=' in line:
                k, v = line.split('=', 1)
                out[k] = v
        return out

    def install_unit(self, name, text):
        d = os.path.join(self.runtime_dir, 'systemd', 'user')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), 'w') as f:
            f.write(text)

    def install_dropin(self, unit, name, text):
        d = os.path.join(self.runtime_dir, 'systemd', 'user', unit + '.d')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), 'w') as f:
            f.write(text)

    def install_activation(self, bus_name, text):
        d = os.path.join(self.runtime_dir, 'dbus-1', 'services')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, bus_name + '.service'), 'w') as f:
            f.write(text)

    def daemon_reload(self):
        self.systemctl('daemon-reload')

    # -- teardown ----------------------------------------------------------------

    def close(self):
        """Stop everything this manager started and remove what we made.
        Safe to call more than once and after a failed start."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)  # the manager stops its units and exits
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Anything left in our cgroups was started by our manager.
        left = sweep(self._made_cgroups) if self._made_cgroups else []
        self._made_cgroups = list(left)
        if getattr(self, '_log', None):
            self._log.close()
            self._log = None
        if self._journal is not None:
            try:
                self._journal.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._journal.close()
            self._journal = None
        if self.workdir and not os.environ.get('FDBROKER_KEEP_TMP'):
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.proc = None
        if self._janitor is not None:
            try:
                self._janitor.communicate(b'' if left else b'done\n', timeout=60)
            except subprocess.TimeoutExpired:
                pass
            self._janitor = None
        if left:
            raise RuntimeError('could not remove the cgroups %s' % left)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


def install_signal_cleanup():
    """Turn SIGTERM/SIGINT/SIGHUP (meson's timeout, ^C) into SystemExit, so
    that `finally:` blocks clean up."""
    def handler(sig, frame):
        raise SystemExit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


# -- the fdbroker user unit from the source tree ------------------------------------

def fdbroker_unit(source_dir, binary, log_path, exit_idle_time=None):
    """data/user/fdbroker.service.in with ExecStart= pointing at binary, the
    service's output appended to log_path (there is no journald), and
    optionally another --exit-idle-time."""
    with open(os.path.join(source_dir, 'data', 'user', 'fdbroker.service.in')) as f:
        text = f.read()
    text = text.replace('@libexecdir@/fdbroker', binary)
    if exit_idle_time is not None:
        text, n = re.subn(r'--exit-idle-time=\S+', '--exit-idle-time=%s' % exit_idle_time, text)
        if n == 0:
            raise RuntimeError('the user unit has no --exit-idle-time= to change')
    lines = text.splitlines()
    i = lines.index('[Service]')
    extra = ['StandardOutput=append:' + log_path, 'StandardError=append:' + log_path]
    if _is_sanitizer_build(binary):
        # LeakSanitizer stops the world with ptrace at exit, which the
        # unit's SystemCallFilter= forbids: the broker would hang in
        # "deactivating". ASan and UBSan stay on; the other suites check
        # for leaks.
        extra.append('Environment="ASAN_OPTIONS=%s"' % _asan_options_without_leaks())
    lines[i + 1:i + 1] = extra
    return '\n'.join(lines) + '\n'


def _is_sanitizer_build(binary):
    try:
        out = subprocess.run(['ldd', binary], capture_output=True, text=True).stdout
    except OSError:
        return False
    return 'libasan' in out


def _asan_options_without_leaks():
    opts = [o for o in os.environ.get('ASAN_OPTIONS', '').split(':') if o and not o.startswith('detect_leaks=')]
    return ':'.join(opts + ['detect_leaks=0'])


def fdbroker_activation(source_dir, binary):
    """data/user/org.fdbroker.Broker1.service.in with Exec= pointing at binary."""
    with open(os.path.join(source_dir, 'data', 'user', 'org.fdbroker.Broker1.service.in')) as f:
        return f.read().replace('@libexecdir@/fdbroker', binary)


if __name__ == '__main__' and len(sys.argv) > 2 and sys.argv[1] == '--janitor':
    sys.exit(_janitor(sys.argv[2:]))
