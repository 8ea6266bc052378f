#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbrokerctl end to end, against the broker on a private bus (SPEC §4, §5).

FDBROKERCTL names the binary, FDB_P2P_SERVER the stand-in direct socket
server of tests/client/fdb-p2p-server.c (meson sets both). Another user,
fdbtest-ctl, is created when missing (root only; skipped otherwise) to check
what list and cat show to someone who may not retrieve an entry, and that
--from-pid cannot take another user's fds.

Every command's stderr is checked, the holders' included. Tests of Watch
(monitor, holders that exit when their entry goes) skip when the broker on
the test bus does not implement Watch (introspected once); against the
stand-in direct server they always run."""
import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))

import harness  # noqa: E402

BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
CTL = os.environ.get('FDBROKERCTL') or os.path.join(BUILD, 'client', 'fdbrokerctl')
P2P_SERVER = os.environ.get('FDB_P2P_SERVER') or os.path.join(BUILD, 'tests', 'client', 'fdb-p2p-server')
COMPLETION = os.path.join(SOURCE, 'client', 'fdbrokerctl.bash-completion')
OTHER_USER = 'fdbtest-ctl'
HOLDING = 'it goes away when this command exits (Ctrl-C), or use --persistent'


def base_env(tmp):
    """Our environment (G_DEBUG, sanitizer options... stay), without the
    variables that would point fdbrokerctl elsewhere, and with a direct
    socket that does not exist, so that a /run/fdbroker/socket on the
    machine is never used."""
    e = dict(os.environ)
    for var in ('FDBROKER_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'DBUS_SESSION_BUS_ADDRESS'):
        e.pop(var, None)
    e.update({'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8', 'FDBROKER_SOCKET': os.path.join(tmp, 'no-direct-socket')})
    return e


class Ctl:
    def __init__(self, address, tmp):
        self.address = address
        self.tmp = tmp

    def _env(self, env):
        e = base_env(self.tmp)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run(self, *args, user=None, input=None, stdin=None, pass_fds=(), timeout=60, env=None, address=True):
        cmd = [CTL] + (['--address', self.address] if address else []) + list(args)
        kw = {}
        if user is not None:
            kw = {'user': user.pw_uid, 'group': user.pw_gid, 'extra_groups': []}
        if input is None and stdin is None:
            stdin = subprocess.DEVNULL
        return subprocess.run(cmd, input=input, stdin=stdin, capture_output=True, pass_fds=pass_fds,
                              timeout=timeout, env=self._env(env), cwd='/', **kw)

    def popen(self, *args, env=None, address=True):
        cmd = [CTL] + (['--address', self.address] if address else []) + list(args)
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self._env(env), cwd='/')


class Lines:
    """Reads whole lines from a pipe with a bound on the wait."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b''

    def read(self, timeout=30):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self.buf += chunk
        if b'\n' not in self.buf:
            line, self.buf = self.buf, b''
            return line.decode(errors='replace') or None
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode(errors='replace')


def eq(tap, got, expected, name, diag=None):
    return tap.ok(got == expected, name, {'expected': expected, 'got': got, 'diag': diag})


def succeeded(tap, r, name, stdout=None):
    """r exited 0 with nothing on stderr (and stdout when given)."""
    good = r.returncode == 0 and r.stderr == b'' and (stdout is None or r.stdout == stdout)
    return tap.ok(good, name, {'rc': r.returncode, 'stderr': r.stderr.decode(errors='replace'),
                               'stdout': r.stdout[:400].decode(errors='replace')})


def failed(tap, r, name, mentions, lacks=None):
    """r must have exited 1 with one line 'fdbrokerctl: ...' naming mentions
    (a string or a tuple of strings) on stderr, nothing on stdout."""
    err = r.stderr.decode(errors='replace')
    mentions = (mentions,) if isinstance(mentions, str) else mentions
    good = (r.returncode == 1 and err.startswith('fdbrokerctl: ') and err.count('\n') == 1
            and all(m in err for m in mentions) and r.stdout == b'' and not (lacks and lacks in err))
    return tap.ok(good, name, {'rc': r.returncode, 'stderr': err, 'stdout': r.stdout.decode(errors='replace'),
                               'should_mention': mentions, 'must_not_mention': lacks})


def other_user():
    """The pwd entry of fdbtest-ctl, created if needed and able to run the
    built fdbrokerctl; raises Skip."""
    pw = _other_user()
    try:
        r = subprocess.run([CTL, '--help'], capture_output=True, user=pw.pw_uid, group=pw.pw_gid,
                           extra_groups=[], cwd='/', timeout=60)
        ok = r.returncode == 0
    except PermissionError:
        ok = False
    if not ok:
        raise harness.Skip('%s cannot run %s: the build tree is not readable by other users '
                           '(a checkout in a private home directory?)' % (OTHER_USER, CTL))
    return pw


def _other_user():
    if os.geteuid() != 0:
        raise harness.Skip('needs root to create and act as %s' % OTHER_USER)
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        pass
    useradd = shutil.which('useradd') or '/usr/sbin/useradd'
    r = subprocess.run([useradd, '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER_USER],
                       capture_output=True, text=True)
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        raise harness.Skip('useradd %s failed: %s' % (OTHER_USER, r.stderr.strip()))


def wait_exit(p, timeout):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def stop(p):
    """Ends a holder or monitor that is still running; returns its stderr."""
    if p.poll() is None:
        p.kill()
    p.wait()
    out = p.stderr.read().decode(errors='replace')
    p.stdout.close()
    p.stderr.close()
    return out


def broker_has_watch(bus):
    xml, _ = bus.call('Introspect', None, (), '(s)', iface='org.freedesktop.DBus.Introspectable')
    return '<method name="Watch">' in xml[0]


class Env:
    """What the test groups share."""

    def __init__(self, tap, bus, tmp):
        self.tap = tap
        self.bus = bus
        self.tmp = tmp
        self.ctl = Ctl(bus.address, tmp)
        self.payload = bytes(range(256)) * 1200 + b'end'   # 300 KiB with NULs: several read loops
        self.path = os.path.join(tmp, 'payload.bin')
        with open(self.path, 'wb') as f:
            f.write(self.payload)
        os.chmod(self.path, 0o644)
        self.watch = broker_has_watch(bus)
        self.no_watch = 'the broker on the test bus does not implement Watch (introspected)'
        try:
            self.user = other_user()
            self.user_skip = None
        except harness.Skip as e:
            self.user = None
            self.user_skip = str(e)


def body(tap):
    if not os.access(CTL, os.X_OK):
        raise harness.Skip('%s not built' % CTL)
    bus, _ = harness.setup(tap)
    tmp = tempfile.mkdtemp(prefix='fdbrokerctl-test-')
    os.chmod(tmp, 0o755)
    try:
        t = Env(tap, bus, tmp)
        for name, fn in GROUPS:
            tap.run(name, fn, t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- deposit, cat, retrieve -------------------------------------------------

def test_basics(t):
    tap, ctl, path, payload = t.tap, t.ctl, t.path, t.payload
    r = ctl.run('deposit', 'ctl/file', path, '--persistent', '--description', 'test file')
    tap.eq((r.returncode, r.stdout, r.stderr), (0, b'', b''), 'deposit FILE --persistent exits 0 silently')
    r = ctl.run('cat', 'ctl/file')
    succeeded(tap, r, 'cat writes the deposited bytes', payload)
    r = ctl.run('cat', 'ctl/file')
    succeeded(tap, r, 'cat again: the entry offset did not move (pread)', payload)

    script = ('echo "fds=$LISTEN_FDS names=$LISTEN_FDNAMES pid=$LISTEN_PID self=$$"; '
              'cat <&3 | md5sum; exit 7')
    r = ctl.run('retrieve', 'ctl/file', '--', 'sh', '-c', script)
    out = r.stdout.decode()
    lines = out.splitlines()
    env_line = lines[0] if lines else ''
    fields = dict(kv.split('=', 1) for kv in env_line.split())
    tap.eq((fields.get('fds'), fields.get('names')), ('1', 'ctl/file'),
           'retrieve: COMMAND sees LISTEN_FDS=1 and LISTEN_FDNAMES=NAME')
    tap.ok(fields.get('pid') and fields.get('pid') == fields.get('self'),
           'retrieve: LISTEN_PID is the pid of COMMAND (exec, not fork)', out)
    tap.ok(len(lines) > 1 and lines[1].startswith(hashlib.md5(payload).hexdigest()),
           'retrieve: the bytes are on fd 3', out)
    tap.eq((r.returncode, r.stderr), (7, b''), "retrieve: fdbrokerctl's exit status is COMMAND's, stderr empty")

    r = ctl.run('retrieve', 'ctl/file', '--', 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "')
    tap.eq(r.stdout.decode().split(), ['0', '1', '2', '3', '4'],
           'retrieve: COMMAND gets fds 0-3 only (ls itself opens 4): no bus socket leaks')

    fd3 = ctl.run('retrieve', 'ctl/file', '--read-only', '--reopen', '--',
                  'sh', '-c', 'ls -l /proc/self/fd/3 >/dev/null && readlink /proc/self/fd/3')
    tap.ok(fd3.returncode == 0 and fd3.stdout.decode().strip() == path and fd3.stderr == b'',
           'retrieve --read-only --reopen hands the file itself on fd 3', fd3)

    r = ctl.run('deposit', 'ctl/a:b', path, '--persistent')
    succeeded(tap, r, 'deposit of a name with a colon')
    r = ctl.run('retrieve', 'ctl/a:b', '--', 'sh', '-c', 'echo "$LISTEN_FDNAMES"')
    tap.eq(r.stdout.decode().strip(), 'ctl/a_b', "retrieve: ':' in NAME becomes '_' in LISTEN_FDNAMES")
    succeeded(tap, ctl.run('remove', 'ctl/a:b'), 'remove exits 0 silently')

    r = ctl.run('retrieve', 'ctl/file', '--', 'no-such-command-fdbtest')
    tap.ok(r.returncode == 127 and b'no-such-command-fdbtest' in r.stderr,
           'retrieve: a COMMAND that does not exist exits 127', r)
    failed(tap, ctl.run('retrieve', 'ctl/file'), 'retrieve without -- COMMAND exits 1', 'COMMAND')

    # --replace of one's own entry
    other = os.path.join(t.tmp, 'other.txt')
    with open(other, 'w') as f:
        f.write('replaced\n')
    os.chmod(other, 0o644)
    succeeded(tap, ctl.run('deposit', 'ctl/repl', path, '--persistent'), 'deposit ctl/repl')
    succeeded(tap, ctl.run('deposit', 'ctl/repl', other, '--persistent', '--replace'),
              'deposit --replace of your own entry')
    succeeded(tap, ctl.run('cat', 'ctl/repl'), 'cat shows the replacing file', b'replaced\n')
    ctl.run('remove', 'ctl/repl')


# ---- error messages ---------------------------------------------------------

def test_errors(t):
    tap, ctl, path, tmp = t.tap, t.ctl, t.path, t.tmp
    failed(tap, ctl.run('cat', 'ctl/missing'), 'cat of a missing entry: exit 1, entry named', "'ctl/missing'")
    failed(tap, ctl.run('retrieve', 'ctl/missing', '--', 'true'), 'retrieve of a missing entry: exit 1',
           "'ctl/missing'")
    failed(tap, ctl.run('deposit', 'ctl/file', path),
           'deposit of a taken name: the CLI says to use --replace, not the bus option',
           "'ctl/file' exists; use --replace to replace your entry", lacks='replace=true')
    failed(tap, ctl.run('create-memory', 'ctl/file', '4K'), 'create-memory of a taken name: same message',
           "'ctl/file' exists; use --replace", lacks='replace=true')
    failed(tap, ctl.run('deposit', 'ctl/../x', path, '--persistent'), 'deposit of a bad name: exit 1', 'ctl/../x')
    failed(tap, ctl.run('deposit', 'ctl/sealfile', path, '--seal', '--persistent'),
           'deposit --seal of a file: exit 1 (NotSupported)', 'ctl/sealfile')
    failed(tap, ctl.run('deposit', 'ctl/x', os.path.join(tmp, 'nope')), 'deposit of a missing FILE: exit 1', 'nope')
    failed(tap, ctl.run('remove', 'ctl/missing'), 'remove of a missing entry says what remove needs',
           "no entry 'ctl/missing' that you may remove", lacks='retrieve')
    failed(tap, ctl.run('open', '/etc/hostname', '--', 'true'), 'open without a granting policy: exit 1',
           '/etc/hostname')
    failed(tap, ctl.run('open', '/etc/hostname', '--access', 'sideways', '--', 'true'), 'open --access checks MODE',
           'sideways')
    failed(tap, ctl.run('create-memory', 'ctl/m', '12X'), 'create-memory with a bad SIZE: exit 1', '12X')
    failed(tap, ctl.run('deposit', 'ctl/t', path, '--timeout', 'soon'), '--timeout checks SEC', 'soon')
    failed(tap, ctl.run('retrieve', 'ctl/t', '--wait', '301', '--', 'true'), '--wait is at most 300 s', '--wait')
    failed(tap, ctl.run('frobnicate'), 'an unknown command: exit 1', 'frobnicate')
    failed(tap, ctl.run('list', '--user'), '--address and --user exclude each other', '--user')
    failed(tap, ctl.run('--bogus', address=False), 'fdbrokerctl --bogus: unknown option, see --help',
           'unknown option --bogus; see fdbrokerctl --help')
    failed(tap, ctl.run('list', '--bogus'), 'list --bogus: unknown option, see list --help',
           ('unknown option --bogus', 'fdbrokerctl list --help'))
    failed(tap, ctl.run('list', '--seal'), 'an option of another command is refused', '--seal')
    failed(tap, ctl.run('deposit', 'ctl/v', '--timeout'), 'an option without its value', '--timeout')

    r = ctl.run('retrieve', 'ctl/never', '--wait', '0.2', '--', 'true')
    failed(tap, r, 'retrieve --wait of a name that never comes: exit 1 when the broker gives up', "'ctl/never'")

    # No bus at all, and the default one.
    r = ctl.run('list', address=False, env={'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=/nonexistent/fdbtest'})
    failed(tap, r, 'no system bus: names the bus, the address, the reason and what to do',
           ('system bus', 'unix:path=/nonexistent/fdbtest', 'No such file or directory', 'is dbus running?',
            'Use --address or --user'))
    if os.path.exists('/run/dbus/system_bus_socket'):
        tap.skip('no system bus at the default address', '/run/dbus/system_bus_socket exists on this machine')
    else:
        failed(tap, ctl.run('list', address=False), 'no system bus at the default address: named',
               ('unix:path=/run/dbus/system_bus_socket', 'is dbus running?'))
    r = ctl.run('--user', 'list', address=False,
                env={'DBUS_SESSION_BUS_ADDRESS': None, 'XDG_RUNTIME_DIR': None, 'DISPLAY': ':99'})
    failed(tap, r, '--user without a session: says there is no user session bus (no X11 autolaunch)',
           ('no user session bus', '$DBUS_SESSION_BUS_ADDRESS', '$XDG_RUNTIME_DIR'), lacks='X11')
    r = ctl.run('--user', 'list', address=False, env={'DBUS_SESSION_BUS_ADDRESS': None, 'XDG_RUNTIME_DIR': tmp})
    failed(tap, r, '--user with $XDG_RUNTIME_DIR but no bus there: names the socket',
           ('no user session bus', os.path.join(tmp, 'bus')))
    r = ctl.run('list', address=False, env={'FDBROKER_ADDRESS': 'unix:path=/nonexistent/fdbaddr'})
    failed(tap, r, 'a broken $FDBROKER_ADDRESS is named as such', ('/nonexistent/fdbaddr', '$FDBROKER_ADDRESS'))

    # $FDBROKER_ADDRESS is the bus when no bus option is given; --system wins.
    r = ctl.run('list', 'ctl/file', address=False, env={'FDBROKER_ADDRESS': t.bus.address})
    tap.ok(r.returncode == 0 and b'ctl/file' in r.stdout and r.stderr == b'', 'list on $FDBROKER_ADDRESS', r)
    r = ctl.run('--system', 'list', address=False,
                env={'FDBROKER_ADDRESS': t.bus.address, 'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=/nonexistent/sys'})
    failed(tap, r, '--system ignores $FDBROKER_ADDRESS', ('system bus', '/nonexistent/sys'))


# ---- --fd N, global options after the verb, cat | head ---------------------

def test_fd_and_pipes(t):
    tap, ctl, path, payload = t.tap, t.ctl, t.path, t.payload
    rfd, wfd = os.pipe()
    os.write(wfd, b'through a pipe\n')
    os.close(wfd)
    r = ctl.run('deposit', 'ctl/pipe', '--fd', str(rfd), '--persistent', pass_fds=(rfd,))
    os.close(rfd)
    succeeded(tap, r, 'deposit --fd N')
    r = subprocess.run([CTL, 'cat', 'ctl/pipe', '--address', t.bus.address], capture_output=True,
                       env=base_env(t.tmp))
    tap.eq((r.stdout, r.stderr), (b'through a pipe\n', b''),
           'cat of a pipe reads it to the end; --address after the verb')
    failed(tap, ctl.run('deposit', 'ctl/both', path, '--fd', '0'), 'deposit takes FILE or --fd, not both', '--fd')
    failed(tap, ctl.run('deposit', 'ctl/nofd', '--fd', '3', '--persistent'), 'deposit --fd of a closed fd 3: exit 1',
           '--fd 3')
    failed(tap, ctl.run('deposit', 'ctl/nofd', '--fd', '9', '--persistent'), 'deposit --fd of a closed fd 9: exit 1',
           '--fd 9')
    failed(tap, ctl.run('deposit', 'ctl/nofd', '--fd', 'x', '--persistent'), 'deposit --fd checks N', "'x'")

    # A reader that goes away is no error: `fdbrokerctl cat NAME | head -c1`.
    p = subprocess.Popen([CTL, '--address', t.bus.address, 'cat', 'ctl/file'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=base_env(t.tmp))
    first = p.stdout.read(1)
    p.stdout.close()
    rc = wait_exit(p, 30)
    err = p.stderr.read()
    p.stderr.close()
    tap.ok(first == payload[:1] and rc == 0 and err == b'',
           'cat whose reader closes early (head -c1): exit 0, nothing on stderr', {'rc': rc, 'stderr': err})
    r = subprocess.run(['sh', '-c', '"$0" --address "$1" cat ctl/file | head -c1 | od -An -tu1', CTL,
                        t.bus.address], capture_output=True, env=base_env(t.tmp))
    tap.eq((r.stdout.split(), r.stderr), ([b'0'], b''), 'cat NAME | head -c1 in a shell: quiet')
    p = subprocess.Popen([CTL, '--address', t.bus.address, 'list', '--json'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=base_env(t.tmp))
    p.stdout.close()
    rc = wait_exit(p, 30)
    err = p.stderr.read()
    p.stderr.close()
    tap.ok(rc == 0 and err == b'', 'list into a closed pipe: exit 0, quiet', {'rc': rc, 'stderr': err})


# ---- create-memory ------------------------------------------------------------

def test_create_memory(t):
    tap, ctl = t.tap, t.ctl
    r = ctl.run('create-memory', 'ctl/mem', '1M', '--persistent', '--description', 'scratch')
    tap.eq((r.returncode, r.stdout, r.stderr), (0, b'', b''), 'create-memory NAME 1M --persistent prints nothing')
    r = ctl.run('retrieve', 'ctl/mem', '--', 'sh', '-c', 'printf filled >&3')
    succeeded(tap, r, 'retrieve -- COMMAND writes into the memory')
    r = ctl.run('cat', 'ctl/mem')
    tap.ok(len(r.stdout) == 1 << 20 and r.stdout.startswith(b'filled') and r.stdout[6:] == bytes((1 << 20) - 6),
           'create-memory: 1 MiB of zeros, filled through retrieve', {'len': len(r.stdout)})
    for size, n in (('4096', 4096), ('4K', 4096), ('2KiB', 2048), ('1k', 1024)):
        r = ctl.run('create-memory', 'ctl/size', size, '--persistent')
        j = ctl.run('list', 'ctl/size', '--json')
        got = [e.get('size') for e in json.loads(j.stdout or b'[]')]
        tap.ok(r.returncode == 0 and r.stderr == b'' and got == [n], 'create-memory SIZE %s is %d bytes' % (size, n),
               {'rc': r.returncode, 'stderr': r.stderr, 'sizes': got})
        ctl.run('remove', 'ctl/size')

    # --seal: the bytes come from stdin first, then nobody can change them.
    data = b'sealed bytes\n'
    r = ctl.run('create-memory', 'ctl/sealed', '4K', '--seal', '--persistent', input=data)
    succeeded(tap, r, 'create-memory --seal < data')
    r = ctl.run('cat', 'ctl/sealed')
    tap.ok(r.stdout == data + bytes(4096 - len(data)), 'create-memory --seal: the bytes of stdin, then zeros',
           {'len': len(r.stdout), 'head': r.stdout[:20]})
    j = ctl.run('list', 'ctl/sealed', '--json')
    e = (json.loads(j.stdout or b'[]') or [{}])[0]
    tap.eq((e.get('kind'), e.get('sealed'), e.get('size')), ('memfd', True, 4096), 'create-memory --seal: sealed memfd')
    r = ctl.run('retrieve', 'ctl/sealed', '--', 'sh', '-c', 'printf x >&3')
    tap.ok(r.returncode != 0, 'create-memory --seal: a write through a retrieved fd fails', r)
    ctl.run('remove', 'ctl/sealed')
    failed(tap, ctl.run('create-memory', 'ctl/sealed2', '4', '--seal', '--persistent', input=b'12345'),
           'create-memory --seal: more bytes on stdin than SIZE is refused', ('more than', '4 bytes'))
    master, slave = os.openpty()
    try:
        r = ctl.run('create-memory', 'ctl/sealed3', '4K', '--seal', '--persistent', stdin=slave)
    finally:
        os.close(master)
        os.close(slave)
    failed(tap, r, 'create-memory --seal with a terminal on stdin is refused, saying why',
           ('standard input', '--seal'))
    r = ctl.run('list', 'ctl/sealed', '--json')
    tap.eq(json.loads(r.stdout or b'null'), [], 'the refused --seal calls left no entry')


# ---- list -----------------------------------------------------------------

def test_list(t):
    tap, ctl, payload = t.tap, t.ctl, t.payload
    r = ctl.run('list', 'ctl/', '--json')
    try:
        entries = json.loads(r.stdout)
    except ValueError as e:
        entries = None
        tap.ok(False, 'list --json parses', '%s: %r' % (e, r.stdout[:400]))
    tap.eq(r.stderr, b'', 'list --json: nothing on stderr')
    if entries is not None:
        by_name = {e['name']: e for e in entries}
        tap.eq(sorted(by_name), ['ctl/file', 'ctl/mem', 'ctl/pipe'], 'list PREFIX --json: the entries, as JSON')
        f = by_name.get('ctl/file', {})
        tap.eq((f.get('kind'), f.get('size'), f.get('owner-uid'), f.get('owner'), f.get('access'),
                f.get('lifetime'), f.get('description'), f.get('expires-usec'), f.get('sealed')),
               ('regular', len(payload), 0, 'root', 'read-only', 'persistent', 'test file', 0, False),
               'list --json: an object per entry with the info keys')
        tap.ok(isinstance(f.get('created-usec'), int) and f['created-usec'] > 1e15, 'list --json: created-usec',
               f)
        tap.eq(by_name.get('ctl/mem', {}).get('size'), 1 << 20, 'list --json: memfd size')
        tap.ok('size' not in by_name.get('ctl/pipe', {'size': 1}), 'list --json: no size for a pipe')
    r = ctl.run('list', 'ctl/nothing-here/', '--json')
    tap.eq((r.stdout, r.stderr), (b'[]\n', b''), 'list --json of nothing: []')

    r = ctl.run('list')
    rows = r.stdout.decode().splitlines()
    tap.ok(r.returncode == 0 and r.stderr == b'' and rows and rows[0].split()[:7] ==
           ['NAME', 'KIND', 'SIZE', 'OWNER', 'ACCESS', 'LIFETIME', 'EXPIRES'],
           'list: a table with a header', r.stdout.decode())
    row = next((x for x in rows if x.startswith('ctl/mem ')), '')
    tap.ok(row.split()[:4] == ['ctl/mem', 'memfd', '1.0', 'MiB'] and 'root' in row and 'persistent' in row
           and 'never' in row, 'list: a row per entry', row)
    k = rows[0].index('KIND') if rows else 0
    tap.ok(k > 0 and all(x[k - 2:k] == '  ' and x[k] != ' ' for x in rows),
           'list: the columns line up', r.stdout.decode())
    r = ctl.run('deposit', 'ctl/expiring', t.path, '--persistent', '--timeout', '3600')
    r = ctl.run('list', 'ctl/expiring')
    row = r.stdout.decode().splitlines()[-1] if r.stdout else ''
    exp = time.strftime('%Y-%m-%d', time.localtime(time.time() + 3600))
    tap.ok(exp in row and 'never' not in row, 'list: EXPIRES shows the local time of expiry', row)
    ctl.run('remove', 'ctl/expiring')


# ---- another user ---------------------------------------------------------

def test_other_user(t):
    tap, ctl, path, payload = t.tap, t.ctl, t.path, t.payload
    if t.user is None:
        raise harness.Skip(t.user_skip)
    user = t.user
    r = ctl.run('deposit', 'ctl/shared', path, '--persistent', '--allow', 'user:' + OTHER_USER)
    succeeded(tap, r, 'deposit --allow user:%s' % OTHER_USER)
    r = ctl.run('list', 'ctl/', '--json', user=user)
    try:
        names = [e['name'] for e in json.loads(r.stdout)]
    except ValueError:
        names = r
    tap.eq(names, ['ctl/shared'], 'list --json as %s shows only what it may retrieve' % OTHER_USER)
    r = ctl.run('cat', 'ctl/shared', user=user)
    succeeded(tap, r, 'cat as %s of an entry allowed to it' % OTHER_USER, payload)
    failed(tap, ctl.run('cat', 'ctl/file', user=user), 'cat as %s of a private entry: NotFound' % OTHER_USER,
           "'ctl/file'")
    failed(tap, ctl.run('remove', 'ctl/shared', user=user), 'remove as %s of root\'s entry: exit 1' % OTHER_USER,
           "'ctl/shared'")
    failed(tap, ctl.run('deposit', 'ctl/shared', path, '--persistent', user=user),
           'deposit as %s over root\'s entry: exists, and not theirs' % OTHER_USER, "'ctl/shared'",
           lacks='replace=true')
    r = ctl.run('list', user=user)
    tap.ok(b'ctl/file' not in r.stdout and b'ctl/shared' in r.stdout, 'list table as %s hides' % OTHER_USER,
           r.stdout.decode())
    ctl.run('remove', 'ctl/shared')


# ---- deposit --from-pid -------------------------------------------------------

def pidfd_getfd_blocked(pid, fd):
    """Why this machine refuses pidfd_getfd() on our own child that allows
    any tracer, or None. A container's seccomp filter (systemd-nspawn's)
    answers EPERM for it: then --from-pid cannot work here at all."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(434, pid, 0)  # pidfd_open
    if pidfd < 0:
        return 'pidfd_open() refused here: %s' % os.strerror(ctypes.get_errno())
    try:
        got = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        if got < 0:
            return ('pidfd_getfd() of our own child refused here (%s): a seccomp filter, as in a '
                    'systemd-nspawn container' % os.strerror(ctypes.get_errno()))
        os.close(got)
        return None
    finally:
        os.close(pidfd)


def test_from_pid(t):
    tap, ctl, path, payload = t.tap, t.ctl, t.path, t.payload
    fd = os.open(path, os.O_RDONLY)
    # The target lets any process of its user take its fds
    # (PR_SET_PTRACER_ANY): with Yama's ptrace_scope=1 and no CAP_SYS_PTRACE
    # (a container's root), only a process's ancestors may otherwise, and
    # fdbrokerctl is not the target's parent here.
    target = subprocess.Popen(
        ['/usr/bin/python3', '-c',
         'import ctypes, sys, time\n'
         'ctypes.CDLL(None).prctl(0x59616d61, ctypes.c_ulong(2**64 - 1), 0, 0, 0)\n'
         'sys.stdout.write("ready\\n"); sys.stdout.flush(); time.sleep(600)\n'],
        pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    target.stdout.readline()
    os.close(fd)
    try:
        blocked = pidfd_getfd_blocked(target.pid, fd)
        if blocked:
            for what in ('deposit --from-pid PID --fd N of a process of the same user',
                         'deposit --from-pid: the entry holds the bytes of that process\'s fd',
                         'deposit --from-pid of an fd the process does not have'):
                tap.skip(what, blocked)
        else:
            r = ctl.run('deposit', 'ctl/frompid', '--from-pid', str(target.pid), '--fd', str(fd), '--persistent')
            succeeded(tap, r, 'deposit --from-pid PID --fd N of a process of the same user')
            r = ctl.run('cat', 'ctl/frompid')
            succeeded(tap, r, 'deposit --from-pid: the entry holds the bytes of that process\'s fd', payload)
            ctl.run('remove', 'ctl/frompid')
            failed(tap, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(target.pid), '--fd', '987',
                                '--persistent'),
                   'deposit --from-pid of an fd the process does not have', ('%d' % target.pid, 'no fd 987'))
        failed(tap, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(target.pid), '--persistent'),
               'deposit --from-pid without --fd', '--fd')
        failed(tap, ctl.run('deposit', 'ctl/frompid', path, '--from-pid', str(target.pid), '--fd', '0'),
               'deposit --from-pid with a FILE', '--from-pid')
        failed(tap, ctl.run('deposit', 'ctl/frompid', '--from-pid', 'me', '--fd', '0'),
               'deposit --from-pid checks PID', "'me'")
        if t.user is None:
            tap.skip('deposit --from-pid of another user\'s process', t.user_skip)
        else:
            r = ctl.run('deposit', 'ctl/frompid', '--from-pid', str(target.pid), '--fd', str(fd), '--persistent',
                        user=t.user)
            failed(tap, r, 'deposit --from-pid of a process of another user: refused with the reason',
                   ('%d' % target.pid, 'belongs to another user', 'CAP_SYS_PTRACE'))
            r = ctl.run('list', 'ctl/frompid', '--json')
            tap.eq(json.loads(r.stdout or b'null'), [], 'the refused --from-pid deposited nothing')
    finally:
        target.kill()
        target.wait()
    gone = subprocess.Popen(['true'])
    gone.wait()
    failed(tap, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(gone.pid), '--fd', '0', '--persistent'),
           'deposit --from-pid of a process that does not exist', ('%d' % gone.pid, 'no such process'))


# ---- holding connection-lifetime entries --------------------------------------

def holder_said(tap, err, name, what):
    tap.ok(err.startswith('fdbrokerctl: holding %s; %s\n' % (name, HOLDING)),
           '%s: says on stderr that it holds %s' % (what, name), err)


def test_holding(t):
    tap, ctl, path = t.tap, t.ctl, t.path
    holder = ctl.popen('deposit', 'ctl/held', path)
    r = ctl.run('retrieve', 'ctl/held', '--wait', '20', '--', 'sh', '-c', 'head -c 3 <&3 | od -An -tu1')
    tap.eq(r.stdout.split(), [b'0', b'1', b'2'], 'deposit without --persistent: the entry is there while held')
    tap.eq(holder.poll(), None, 'deposit without --persistent keeps running')
    holder.send_signal(signal.SIGTERM)
    rc = wait_exit(holder, 20)
    err = stop(holder)
    eq(tap, rc, 0, 'the holding deposit exits 0 on SIGTERM', err)
    holder_said(tap, err, 'ctl/held', 'deposit')
    tap.eq(err.count('\n'), 1 if t.watch else 2, 'the holder printed nothing else (or the no-Watch note)')
    ok = harness.poll_until(lambda: ctl.run('cat', 'ctl/held').returncode == 1, timeout=10)
    tap.ok(ok, 'the entry goes away with the holding deposit')

    holder = ctl.popen('create-memory', 'ctl/heldmem', '4K')
    line = Lines(holder.stderr).read(30)
    tap.eq(line, 'fdbrokerctl: holding ctl/heldmem; ' + HOLDING, 'create-memory without --persistent: holds, says so')
    r = ctl.run('list', 'ctl/heldmem', '--json')
    tap.eq([e['name'] for e in json.loads(r.stdout or b'[]')], ['ctl/heldmem'], 'the held memory is listed')
    holder.send_signal(signal.SIGINT)
    rc = wait_exit(holder, 20)
    stop(holder)
    tap.eq(rc, 0, 'the holding create-memory exits 0 on SIGINT')

    if not t.watch:
        for what in ('hand-off (--once)', 'remove', 'expiry (--timeout)'):
            tap.skip('a holder exits 0 by itself after its entry\'s %s' % what, t.no_watch)
        return

    holder = ctl.popen('deposit', 'ctl/handoff', path, '--once')
    r = ctl.run('retrieve', 'ctl/handoff', '--wait', '20', '--', 'true')
    tap.eq(r.returncode, 0, 'retrieve --wait of a --once hand-off')
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.eq(rc, 0, 'the holding deposit --once exits 0 by itself after the hand-off')
    holder_said(tap, err, 'ctl/handoff', 'deposit --once')
    tap.ok('ctl/handoff is gone (retrieved-once)' in err, 'the holder says why it ends', err)

    holder = ctl.popen('deposit', 'ctl/removed', path)
    Lines(holder.stderr).read(30)
    succeeded(tap, ctl.run('remove', 'ctl/removed'), 'remove of a held entry')
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.ok(rc == 0 and 'ctl/removed is gone (removed)' in err, 'the holder exits 0 once its entry is removed',
           {'rc': rc, 'stderr': err})

    holder = ctl.popen('create-memory', 'ctl/expiring', '4K', '--timeout', '0.5')
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.ok(rc == 0 and 'ctl/expiring is gone (expired)' in err,
           'create-memory --timeout without --persistent exits 0 when the entry expires', {'rc': rc, 'stderr': err})


# ---- monitor (Watch) ------------------------------------------------------------

def test_monitor(t):
    tap, ctl, path = t.tap, t.ctl, t.path
    if not t.watch:
        raise harness.Skip(t.no_watch)
    mon = ctl.popen('monitor', 'ctl/mon/*')
    err = Lines(mon.stderr)
    out = Lines(mon.stdout)
    tap.eq(err.read(30), 'fdbrokerctl: watching ctl/mon/*; Ctrl-C to stop', 'monitor says when it watches')
    succeeded(tap, ctl.run('deposit', 'ctl/unwatched', path, '--persistent'), 'deposit of a name not watched')
    succeeded(tap, ctl.run('deposit', 'ctl/mon/a', path, '--persistent'), 'deposit of a watched name')
    line = out.read(30) or ''
    tap.ok(line.startswith('+ ctl/mon/a kind=regular owner=root'), 'monitor: + NAME kind=... owner=...', line)
    succeeded(tap, ctl.run('remove', 'ctl/mon/a'), 'remove of a watched name')
    tap.eq(out.read(30), '- ctl/mon/a removed', 'monitor: - NAME reason (and nothing about ctl/unwatched)')
    mon.send_signal(signal.SIGINT)
    rc = wait_exit(mon, 20)
    rest = stop(mon)
    tap.eq((rc, rest), (0, ''), 'monitor exits 0 on SIGINT, nothing more on stderr')
    ctl.run('remove', 'ctl/unwatched')

    mon = ctl.popen('monitor', 'ctl/monj/**', '--json')
    Lines(mon.stderr).read(30)
    out = Lines(mon.stdout)
    ctl.run('create-memory', 'ctl/monj/x/y', '4K', '--persistent')
    ctl.run('remove', 'ctl/monj/x/y')
    events = []
    for _ in range(2):
        line = out.read(30)
        try:
            events.append(json.loads(line))
        except (TypeError, ValueError):
            events.append(line)
    stop(mon)
    added = events[0] if isinstance(events[0], dict) else {}
    tap.eq((added.get('event'), added.get('name'), added.get('kind'), added.get('size'), added.get('owner')),
           ('added', 'ctl/monj/x/y', 'memfd', 4096, 'root'), 'monitor --json: an added object per line')
    tap.eq(events[1], {'event': 'removed', 'name': 'ctl/monj/x/y', 'reason': 'removed'},
           'monitor --json: a removed object per line')


# ---- direct connections (SPEC §5), against the stand-in server -----------------

def test_direct(t):
    tap, ctl, tmp = t.tap, t.ctl, t.tmp
    if not os.access(P2P_SERVER, os.X_OK):
        raise harness.Skip('%s not built' % P2P_SERVER)
    sock = os.path.join(tmp, 'direct.sock')
    log = os.path.join(tmp, 'direct.log')
    data = os.path.join(tmp, 'direct.txt')
    with open(data, 'w') as f:
        f.write('over the direct socket\n')
    server = subprocess.Popen([P2P_SERVER, sock, log, 'p2p/x', data], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
    try:
        if Lines(server.stdout).read(30) != 'ready':
            raise harness.Skip('fdb-p2p-server did not start')
        run_direct(t, tap, ctl, sock, log)
    finally:
        server.terminate()
        server.wait(20)
        server.stdout.close()


def run_direct(t, tap, ctl, sock, log):
    def logged():
        try:
            with open(log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        open(log, 'w').close()
        return lines

    r = ctl.run('--socket', sock, 'retrieve', 'p2p/x', '--', 'sh', '-c', 'cat <&3; echo "$LISTEN_FDNAMES"')
    tap.eq((r.returncode, r.stdout, r.stderr), (0, b'over the direct socket\np2p/x\n', b''),
           'retrieve --socket PATH beside --address: the fd comes over the direct socket')
    tap.eq(logged(), ['call Retrieve'],
           'retrieve -- COMMAND on the direct socket: one call, no Hello, no introspection, no match')
    r = ctl.run('cat', 'p2p/x', env={'FDBROKER_SOCKET': sock})
    succeeded(tap, r, '$FDBROKER_SOCKET beside --address: cat over the direct socket', b'over the direct socket\n')
    logged()
    r = ctl.run('list', '--json', env={'FDBROKER_SOCKET': sock})
    tap.eq([e.get('name') for e in json.loads(r.stdout or b'[]')], ['p2p/x'], 'list over the direct socket')
    failed(tap, ctl.run('cat', 'p2p/nope', env={'FDBROKER_SOCKET': sock}),
           'an error over the direct socket: exit 1, the message', "'p2p/nope'")
    logged()

    # Fallbacks: no socket there, or a socket nobody listens on.
    r = ctl.run('--socket', os.path.join(t.tmp, 'absent.sock'), 'cat', 'ctl/file')
    succeeded(tap, r, '--socket that does not exist: the bus serves', t.payload)
    stale = os.path.join(t.tmp, 'stale.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    r = ctl.run('--socket', stale, 'cat', 'ctl/file')
    succeeded(tap, r, '--socket that refuses the connection: the bus serves', t.payload)

    # Signals arrive on a direct connection without any match on a bus.
    mon = ctl.popen('monitor', env={'FDBROKER_SOCKET': sock})
    Lines(mon.stderr).read(30)
    out = Lines(mon.stdout)
    lines = [out.read(30), out.read(30)]
    mon.send_signal(signal.SIGTERM)
    rc = wait_exit(mon, 20)
    err = stop(mon)
    tap.eq(lines, ['+ p2p/x kind=regular owner=root size=23 lifetime=persistent', '- p2p/gone expired'],
           'monitor over the direct socket: the broker\'s EntryAdded and EntryRemoved')
    tap.eq((rc, err), (0, ''), 'monitor exits 0 on SIGTERM')
    tap.eq(logged(), ['call Watch'], 'monitor on the direct socket: one Watch call, no AddMatch')
    mon = ctl.popen('monitor', 'p2p/**', '--json', env={'FDBROKER_SOCKET': sock})
    out = Lines(mon.stdout)
    lines = [out.read(30), out.read(30)]
    stop(mon)
    try:
        objs = [json.loads(x) for x in lines]
    except (TypeError, ValueError):
        objs = lines
    tap.eq(objs, [{'event': 'added', 'name': 'p2p/x', 'kind': 'regular', 'size': 23, 'owner-uid': 0,
                   'lifetime': 'persistent', 'owner': 'root'},
                  {'event': 'removed', 'name': 'p2p/gone', 'reason': 'expired'}],
           'monitor --json over the direct socket: every info key, in the broker\'s order, and owner')

    # Holders: the entry's end is announced by EntryRemoved for its name.
    logged()
    holder = ctl.popen('deposit', 'p2p/once/a', t.path, env={'FDBROKER_SOCKET': sock})
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.eq(rc, 0, 'a holder on the direct socket exits 0 when its entry is retrieved --once')
    tap.eq(err, 'fdbrokerctl: holding p2p/once/a; %s\nfdbrokerctl: p2p/once/a is gone (retrieved-once)\n' % HOLDING,
           'the holder says it holds, then why it ends')
    tap.eq(logged(), ['call Watch', 'call Deposit'], 'the holder watches its name before the deposit')
    holder = ctl.popen('deposit', 'p2p/replace/a', t.path, env={'FDBROKER_SOCKET': sock})
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.ok(rc == 0 and 'is gone (removed)' in err and 'replaced' not in err,
           'a holder ignores an EntryRemoved the broker sent before its Deposit reply (the entry it replaced)',
           {'rc': rc, 'stderr': err})


# ---- direct connections to the broker itself -------------------------------------

def test_broker_direct(t):
    """The broker's own direct socket (--direct-socket, SPEC §5), on a bus of
    its own; skipped while the broker does not have it."""
    tap, tmp = t.tap, t.tmp
    r = subprocess.run([harness.service_binary(), '--help'], capture_output=True, text=True, timeout=60)
    if '--direct-socket' not in r.stdout + r.stderr:
        raise harness.Skip('the broker has no --direct-socket option (SPEC §5 not implemented in this build)')
    sock = os.path.join(tmp, 'broker-direct.sock')
    bus = harness.PrivateBus(harness.service_binary(), harness.source_dir(),
                             extra_service_args=['--direct-socket=' + sock])
    bus.start()
    try:
        bus.service_pid()  # activates it
        if not harness.poll_until(lambda: os.path.exists(sock), timeout=30):
            tap.ok(False, 'the broker creates its direct socket', bus.service_log())
            return
        ctl = Ctl(bus.address, tmp)
        nobus = {'FDBROKER_SOCKET': sock}
        succeeded(tap, ctl.run('deposit', 'ctl/direct', t.path, '--persistent'), 'deposit on the bus')
        # No bus at all beside the socket: whatever works went over the socket.
        direct = Ctl('unix:path=/nonexistent/fdbtest-no-bus', tmp)
        r = direct.run('retrieve', 'ctl/direct', '--', 'sh', '-c', 'cat <&3 | md5sum', env=nobus)
        tap.ok(r.returncode == 0 and r.stderr == b'' and
               r.stdout.decode().startswith(hashlib.md5(t.payload).hexdigest()),
               'retrieve -- COMMAND over the broker\'s direct socket, with no bus to fall back to', r)
        succeeded(tap, direct.run('cat', 'ctl/direct', env=nobus), 'cat over the direct socket', t.payload)
        failed(tap, direct.run('remove', 'ctl/missing', env=nobus), 'remove over the direct socket: the CLI message',
               "no entry 'ctl/missing' that you may remove")
        holder = direct.popen('deposit', 'ctl/direct-held', t.path, env=nobus)
        line = Lines(holder.stderr).read(30)
        tap.eq(line, 'fdbrokerctl: holding ctl/direct-held; ' + HOLDING, 'a holder over the direct socket says so')
        r = ctl.run('list', 'ctl/direct-held', '--json')
        tap.eq([e.get('lifetime') for e in json.loads(r.stdout or b'[]')], ['connection'],
               'the held entry is seen on the bus, with lifetime connection')
        if broker_has_watch(bus):
            succeeded(tap, ctl.run('remove', 'ctl/direct-held'), 'remove of the entry held over the direct socket')
            rc = wait_exit(holder, 20)
            err = stop(holder)
            tap.ok(rc == 0 and 'ctl/direct-held is gone (removed)' in err,
                   'the holder on the direct socket learns of the removal (EntryRemoved without a bus)',
                   {'rc': rc, 'stderr': err})
        else:
            holder.send_signal(signal.SIGTERM)
            tap.eq(wait_exit(holder, 20), 0, 'the holder on the direct socket exits 0 on SIGTERM')
            stop(holder)
            ok = harness.poll_until(lambda: ctl.run('cat', 'ctl/direct-held').returncode == 1, timeout=10)
            tap.ok(ok, 'its entry ends with its direct connection')
        ctl.run('remove', 'ctl/direct')
    finally:
        bus.stop()


# ---- help, version, completion --------------------------------------------------

def test_help(t):
    tap, ctl = t.tap, t.ctl
    r = ctl.run('--help', address=False)
    tap.ok(r.returncode == 0 and r.stderr == b'' and all(v in r.stdout.decode() for v in (
        'deposit', 'retrieve', 'cat', 'list', 'remove', 'create-memory', 'open', 'monitor', '--socket',
        'FDBROKER_ADDRESS', 'FDBROKER_SOCKET')), 'fdbrokerctl --help lists every command, bus option and variable')
    for verb, option in (('deposit', '--allow'), ('deposit', '--from-pid'), ('retrieve', '--wait'),
                         ('list', '--json'), ('create-memory', '--seal'), ('open', '--access'), ('cat', '--address'),
                         ('remove', '--system'), ('monitor', '--json'), ('cat', '--socket')):
        r = ctl.run(verb, '--help', address=False)
        tap.ok(r.returncode == 0 and option in r.stdout.decode() and r.stderr == b'',
               'fdbrokerctl %s --help shows %s' % (verb, option))
    r = ctl.run('--version', address=False)
    tap.ok(r.returncode == 0 and r.stdout.startswith(b'fdbrokerctl ') and r.stderr == b'', 'fdbrokerctl --version')

    if shutil.which('bash'):
        ctl.run('deposit', 'ctl/complete-me', t.path, '--persistent')
        script = ('source %s; COMP_WORDS=(fdbrokerctl --address %s cat ctl/comp); COMP_CWORD=4; '
                  '_fdbrokerctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (COMPLETION, t.bus.address))
        e = base_env(t.tmp)
        e['PATH'] = os.path.dirname(CTL) + ':/usr/bin:/bin'
        r = subprocess.run(['bash', '-c', script], capture_output=True, text=True, env=e)
        tap.eq(r.stdout.split(), ['ctl/complete-me'], 'bash completion offers entry names from the broker')
        ctl.run('remove', 'ctl/complete-me')
    else:
        tap.skip('bash completion against the broker', 'bash not installed')


def test_cleanup(t):
    tap, ctl = t.tap, t.ctl
    r = ctl.run('remove', 'ctl/file')
    tap.eq((r.returncode, r.stderr), (0, b''), 'remove exits 0')
    failed(tap, ctl.run('cat', 'ctl/file'), 'cat after remove: exit 1', "'ctl/file'")
    for name in ('ctl/mem', 'ctl/pipe'):
        ctl.run('remove', name)
    r = ctl.run('list', 'ctl/', '--json')
    tap.eq(json.loads(r.stdout or b'null'), [], 'no entry left behind')


def test_broker_gone(t):
    """Last: the broker exits under a holder and a monitor."""
    tap, ctl = t.tap, t.ctl
    holder = ctl.popen('deposit', 'ctl/orphan', t.path)
    Lines(holder.stderr).read(30)
    mon = ctl.popen('monitor') if t.watch else None
    if mon:
        Lines(mon.stderr).read(30)
    t.bus.stop_service()
    rc = wait_exit(holder, 20)
    err = stop(holder)
    tap.ok(rc == 1 and err.endswith("fdbrokerctl: the broker left the bus; 'ctl/orphan' is gone with it.\n"),
           'a holder whose broker exits ends with status 1, saying the entry is gone', {'rc': rc, 'stderr': err})
    if mon is None:
        tap.skip('a monitor whose broker exits ends with status 1', t.no_watch)
        return
    rc = wait_exit(mon, 20)
    err = stop(mon)
    tap.ok(rc == 1 and 'the broker left the bus' in err, 'a monitor whose broker exits ends with status 1, saying so',
           {'rc': rc, 'stderr': err})


GROUPS = [
    ('basics', test_basics),
    ('errors', test_errors),
    ('fd and pipes', test_fd_and_pipes),
    ('create-memory', test_create_memory),
    ('list', test_list),
    ('another user', test_other_user),
    ('from-pid', test_from_pid),
    ('holding', test_holding),
    ('monitor', test_monitor),
    ('direct', test_direct),
    ('broker direct', test_broker_direct),
    ('help', test_help),
    ('cleanup', test_cleanup),
    ('broker gone', test_broker_gone),
]

harness.main(body)
