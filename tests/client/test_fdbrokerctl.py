# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbrokerctl end to end, against the broker on a private bus (SPEC §4, §5):
one behaviour per test, each on its own bus and broker (`bus`), in its own
directory (`tmp`).

FDBROKERCTL names the binary, FDB_P2P_SERVER the stand-in direct socket
server of tests/client/fdb-p2p-server.c (meson sets both). Another user,
fdbtest-ctl, is created when missing (root only; skipped otherwise) to check
what list and cat show to someone who may not retrieve an entry, and that
--from-pid cannot take another user's fds.

Every command's stderr is checked, the holders' included. Tests of Watch
(monitor, holders that exit when their entry goes) skip when the broker on
the test bus does not implement Watch (introspected); against the stand-in
direct server they always run."""

import ctypes
import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import time

import harness
import pytest

SOURCE = harness.source_dir()
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
CTL = os.environ.get('FDBROKERCTL') or os.path.join(BUILD, 'client', 'fdbrokerctl')
P2P_SERVER = os.environ.get('FDB_P2P_SERVER') or os.path.join(BUILD, 'tests', 'client', 'fdb-p2p-server')
COMPLETION = os.path.join(SOURCE, 'client', 'fdbrokerctl.bash-completion')
OTHER_USER = 'fdbtest-ctl'
HOLDING = 'it goes away when this command exits (Ctrl-C), or use --persistent'
NO_WATCH = 'the broker on the test bus does not implement Watch (introspected)'
PAYLOAD = bytes(range(256)) * 1200 + b'end'   # 300 KiB with NULs: several read loops


# ---- running fdbrokerctl ----------------------------------------------------

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
    """fdbrokerctl with --address ADDRESS first (unless address=False, or
    no address)."""

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

    def _cmd(self, args, address):
        return [CTL] + (['--address', self.address] if address and self.address else []) + list(args)

    def run(self, *args, user=None, input=None, stdin=None, pass_fds=(), timeout=60, env=None, address=True):
        kw = {}
        if user is not None:
            kw = {'user': user.pw_uid, 'group': user.pw_gid, 'extra_groups': []}
        if input is None and stdin is None:
            stdin = subprocess.DEVNULL
        return subprocess.run(self._cmd(args, address), input=input, stdin=stdin, capture_output=True,
                              pass_fds=pass_fds, timeout=timeout, env=self._env(env), cwd='/', **kw)

    def popen(self, *args, env=None, address=True):
        return subprocess.Popen(self._cmd(args, address), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self._env(env), cwd='/')


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


def eq(t, got, expected, name, diag=None):
    return t.ok(got == expected, name, {'expected': expected, 'got': got, 'diag': diag})


def succeeded(t, r, name, stdout=None):
    """r exited 0 with nothing on stderr (and stdout when given)."""
    good = r.returncode == 0 and r.stderr == b'' and (stdout is None or r.stdout == stdout)
    return t.ok(good, name, {'rc': r.returncode, 'stderr': r.stderr.decode(errors='replace'),
                             'stdout': r.stdout[:400].decode(errors='replace')})


def failed(t, r, name, mentions, lacks=None):
    """r must have exited 1 with one line 'fdbrokerctl: ...' naming mentions
    (a string or a tuple of strings) on stderr, nothing on stdout."""
    err = r.stderr.decode(errors='replace')
    mentions = (mentions,) if isinstance(mentions, str) else mentions
    good = (r.returncode == 1 and err.startswith('fdbrokerctl: ') and err.count('\n') == 1
            and all(m in err for m in mentions) and r.stdout == b'' and not (lacks and lacks in err))
    return t.ok(good, name, {'rc': r.returncode, 'stderr': err, 'stdout': r.stdout.decode(errors='replace'),
                             'should_mention': mentions, 'must_not_mention': lacks})


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


def holder_said(t, err, name, what):
    t.ok(err.startswith('fdbrokerctl: holding %s; %s\n' % (name, HOLDING)),
         '%s: says on stderr that it holds %s' % (what, name), err)


def listed(r):
    """The parsed stdout of list --json (null when empty)."""
    return json.loads(r.stdout or b'null')


# ---- the other user -----------------------------------------------------------

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


# ---- fixtures -------------------------------------------------------------------

@pytest.fixture(autouse=True)
def built(environment):
    """As the TAP version: nothing runs where the harness cannot, nor
    without the binary."""
    if not os.access(CTL, os.X_OK):
        pytest.skip('%s not built' % CTL)


@pytest.fixture
def ctl(bus, tmp):
    """fdbrokerctl on the test's bus."""
    return Ctl(bus.address, tmp)


@pytest.fixture
def cli(tmp):
    """fdbrokerctl with no bus given (for --help, --version)."""
    return Ctl(None, tmp)


@pytest.fixture
def path(tmp):
    """A 300 KiB file of PAYLOAD, readable by everyone."""
    p = os.path.join(tmp, 'payload.bin')
    with open(p, 'wb') as f:
        f.write(PAYLOAD)
    os.chmod(p, 0o644)
    return p


@pytest.fixture
def ctl_file(ctl, path):
    """ctl/file: PAYLOAD deposited by root, persistent, 'test file'."""
    r = ctl.run('deposit', 'ctl/file', path, '--persistent', '--description', 'test file')
    assert (r.returncode, r.stderr) == (0, b''), r
    return 'ctl/file'


@pytest.fixture
def ctl_mem(ctl):
    """ctl/mem: 1 MiB of memory, persistent, 'scratch'."""
    r = ctl.run('create-memory', 'ctl/mem', '1M', '--persistent', '--description', 'scratch')
    assert (r.returncode, r.stderr) == (0, b''), r
    return 'ctl/mem'


@pytest.fixture
def ctl_pipe(ctl):
    """ctl/pipe: the read end of a pipe holding 'through a pipe\\n'."""
    rfd, wfd = os.pipe()
    os.write(wfd, b'through a pipe\n')
    os.close(wfd)
    try:
        r = ctl.run('deposit', 'ctl/pipe', '--fd', str(rfd), '--persistent', pass_fds=(rfd,))
    finally:
        os.close(rfd)
    return r


@pytest.fixture
def watch(bus):
    """Whether the broker on the test bus implements Watch."""
    return broker_has_watch(bus)


@pytest.fixture
def needs_watch(watch):
    if not watch:
        pytest.skip(NO_WATCH)


@pytest.fixture(scope='session')
def maybe_ctl_user():
    """(fdbtest-ctl's pwd entry or None, why not)."""
    try:
        return other_user(), None
    except harness.Skip as e:
        return None, str(e)


@pytest.fixture
def ctl_user(maybe_ctl_user):
    user, why = maybe_ctl_user
    if user is None:
        pytest.skip(why)
    return user


# ---- deposit, cat, retrieve -------------------------------------------------

def test_deposit_persistent_then_cat_writes_the_bytes_every_time(t, ctl, path):
    r = ctl.run('deposit', 'ctl/file', path, '--persistent', '--description', 'test file')
    t.eq((r.returncode, r.stdout, r.stderr), (0, b'', b''), 'deposit FILE --persistent exits 0 silently')
    r = ctl.run('cat', 'ctl/file')
    succeeded(t, r, 'cat writes the deposited bytes', PAYLOAD)
    r = ctl.run('cat', 'ctl/file')
    succeeded(t, r, 'cat again: the entry offset did not move (pread)', PAYLOAD)


def test_retrieve_execs_command_with_the_fd_as_socket_activation(t, ctl, ctl_file):
    script = ('echo "fds=$LISTEN_FDS names=$LISTEN_FDNAMES pid=$LISTEN_PID self=$$"; '
              'cat <&3 | md5sum; exit 7')
    r = ctl.run('retrieve', 'ctl/file', '--', 'sh', '-c', script)
    out = r.stdout.decode()
    lines = out.splitlines()
    env_line = lines[0] if lines else ''
    fields = dict(kv.split('=', 1) for kv in env_line.split())
    t.eq((fields.get('fds'), fields.get('names')), ('1', 'ctl/file'),
         'retrieve: COMMAND sees LISTEN_FDS=1 and LISTEN_FDNAMES=NAME')
    t.ok(fields.get('pid') and fields.get('pid') == fields.get('self'),
         'retrieve: LISTEN_PID is the pid of COMMAND (exec, not fork)', out)
    t.ok(len(lines) > 1 and lines[1].startswith(hashlib.md5(PAYLOAD).hexdigest()),
         'retrieve: the bytes are on fd 3', out)
    t.eq((r.returncode, r.stderr), (7, b''), "retrieve: fdbrokerctl's exit status is COMMAND's, stderr empty")


def test_retrieve_gives_command_fds_0_to_3_only(t, ctl, ctl_file):
    r = ctl.run('retrieve', 'ctl/file', '--', 'sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "')
    t.eq(r.stdout.decode().split(), ['0', '1', '2', '3', '4'],
         'retrieve: COMMAND gets fds 0-3 only (ls itself opens 4): no bus socket leaks')


def test_retrieve_read_only_reopen_hands_the_file_itself_on_fd_3(t, ctl, ctl_file, path):
    fd3 = ctl.run('retrieve', 'ctl/file', '--read-only', '--reopen', '--',
                  'sh', '-c', 'ls -l /proc/self/fd/3 >/dev/null && readlink /proc/self/fd/3')
    t.ok(fd3.returncode == 0 and fd3.stdout.decode().strip() == path and fd3.stderr == b'',
         'retrieve --read-only --reopen hands the file itself on fd 3', fd3)


def test_a_colon_in_the_name_becomes_an_underscore_in_listen_fdnames(t, ctl, path):
    r = ctl.run('deposit', 'ctl/a:b', path, '--persistent')
    succeeded(t, r, 'deposit of a name with a colon')
    r = ctl.run('retrieve', 'ctl/a:b', '--', 'sh', '-c', 'echo "$LISTEN_FDNAMES"')
    t.eq(r.stdout.decode().strip(), 'ctl/a_b', "retrieve: ':' in NAME becomes '_' in LISTEN_FDNAMES")
    succeeded(t, ctl.run('remove', 'ctl/a:b'), 'remove exits 0 silently')


def test_retrieve_needs_a_command_that_exists(t, ctl, ctl_file):
    r = ctl.run('retrieve', 'ctl/file', '--', 'no-such-command-fdbtest')
    t.ok(r.returncode == 127 and b'no-such-command-fdbtest' in r.stderr,
         'retrieve: a COMMAND that does not exist exits 127', r)
    failed(t, ctl.run('retrieve', 'ctl/file'), 'retrieve without -- COMMAND exits 1', 'COMMAND')


def test_deposit_replace_replaces_your_own_entry(t, ctl, path, tmp):
    other = os.path.join(tmp, 'other.txt')
    with open(other, 'w') as f:
        f.write('replaced\n')
    os.chmod(other, 0o644)
    succeeded(t, ctl.run('deposit', 'ctl/repl', path, '--persistent'), 'deposit ctl/repl')
    succeeded(t, ctl.run('deposit', 'ctl/repl', other, '--persistent', '--replace'),
              'deposit --replace of your own entry')
    succeeded(t, ctl.run('cat', 'ctl/repl'), 'cat shows the replacing file', b'replaced\n')


# ---- error messages ---------------------------------------------------------

def test_commands_on_a_missing_entry_fail_naming_it(t, ctl):
    failed(t, ctl.run('cat', 'ctl/missing'), 'cat of a missing entry: exit 1, entry named', "'ctl/missing'")
    failed(t, ctl.run('retrieve', 'ctl/missing', '--', 'true'), 'retrieve of a missing entry: exit 1',
           "'ctl/missing'")
    failed(t, ctl.run('remove', 'ctl/missing'), 'remove of a missing entry says what remove needs',
           "no entry 'ctl/missing' that you may remove", lacks='retrieve')


def test_a_taken_name_says_to_use_replace_not_the_bus_option(t, ctl, ctl_file, path):
    failed(t, ctl.run('deposit', 'ctl/file', path),
           'deposit of a taken name: the CLI says to use --replace, not the bus option',
           "'ctl/file' exists; use --replace to replace your entry", lacks='replace=true')
    failed(t, ctl.run('create-memory', 'ctl/file', '4K'), 'create-memory of a taken name: same message',
           "'ctl/file' exists; use --replace", lacks='replace=true')


def test_deposit_refuses_a_bad_name_a_missing_file_and_seal_of_a_file(t, ctl, path, tmp):
    failed(t, ctl.run('deposit', 'ctl/../x', path, '--persistent'), 'deposit of a bad name: exit 1', 'ctl/../x')
    failed(t, ctl.run('deposit', 'ctl/sealfile', path, '--seal', '--persistent'),
           'deposit --seal of a file: exit 1 (NotSupported)', 'ctl/sealfile')
    failed(t, ctl.run('deposit', 'ctl/x', os.path.join(tmp, 'nope')), 'deposit of a missing FILE: exit 1', 'nope')


def test_open_is_refused_without_a_granting_policy_and_checks_its_mode(t, ctl):
    failed(t, ctl.run('open', '/etc/hostname', '--', 'true'), 'open without a granting policy: exit 1',
           '/etc/hostname')
    failed(t, ctl.run('open', '/etc/hostname', '--access', 'sideways', '--', 'true'), 'open --access checks MODE',
           'sideways')


def test_option_values_are_checked_naming_the_option(t, ctl, path):
    failed(t, ctl.run('create-memory', 'ctl/m', '12X'), 'create-memory with a bad SIZE: exit 1', '12X')
    failed(t, ctl.run('deposit', 'ctl/t', path, '--timeout', 'soon'), '--timeout checks SEC', 'soon')
    failed(t, ctl.run('retrieve', 'ctl/t', '--wait', '301', '--', 'true'), '--wait is at most 300 s', '--wait')
    failed(t, ctl.run('deposit', 'ctl/v', '--timeout'), 'an option without its value', '--timeout')


def test_unknown_commands_and_options_are_refused_pointing_at_help(t, ctl):
    failed(t, ctl.run('frobnicate'), 'an unknown command: exit 1', 'frobnicate')
    failed(t, ctl.run('list', '--user'), '--address and --user exclude each other', '--user')
    failed(t, ctl.run('--bogus', address=False), 'fdbrokerctl --bogus: unknown option, see --help',
           'unknown option --bogus; see fdbrokerctl --help')
    failed(t, ctl.run('list', '--bogus'), 'list --bogus: unknown option, see list --help',
           ('unknown option --bogus', 'fdbrokerctl list --help'))
    failed(t, ctl.run('list', '--seal'), 'an option of another command is refused', '--seal')


def test_retrieve_wait_of_a_name_that_never_comes_fails_when_the_broker_gives_up(t, ctl):
    r = ctl.run('retrieve', 'ctl/never', '--wait', '0.2', '--', 'true')
    failed(t, r, 'retrieve --wait of a name that never comes: exit 1 when the broker gives up', "'ctl/never'")


def test_a_bus_that_is_not_there_is_named_with_what_to_do(t, ctl, tmp):
    r = ctl.run('list', address=False, env={'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=/nonexistent/fdbtest'})
    failed(t, r, 'no system bus: names the bus, the address, the reason and what to do',
           ('system bus', 'unix:path=/nonexistent/fdbtest', 'No such file or directory', 'is dbus running?',
            'Use --address or --user'))
    r = ctl.run('--user', 'list', address=False,
                env={'DBUS_SESSION_BUS_ADDRESS': None, 'XDG_RUNTIME_DIR': None, 'DISPLAY': ':99'})
    failed(t, r, '--user without a session: says there is no user session bus (no X11 autolaunch)',
           ('no user session bus', '$DBUS_SESSION_BUS_ADDRESS', '$XDG_RUNTIME_DIR'), lacks='X11')
    r = ctl.run('--user', 'list', address=False, env={'DBUS_SESSION_BUS_ADDRESS': None, 'XDG_RUNTIME_DIR': tmp})
    failed(t, r, '--user with $XDG_RUNTIME_DIR but no bus there: names the socket',
           ('no user session bus', os.path.join(tmp, 'bus')))
    r = ctl.run('list', address=False, env={'FDBROKER_ADDRESS': 'unix:path=/nonexistent/fdbaddr'})
    failed(t, r, 'a broken $FDBROKER_ADDRESS is named as such', ('/nonexistent/fdbaddr', '$FDBROKER_ADDRESS'))


def test_no_system_bus_at_the_default_address_is_named(t, ctl):
    if os.path.exists('/run/dbus/system_bus_socket'):
        pytest.skip('/run/dbus/system_bus_socket exists on this machine')
    failed(t, ctl.run('list', address=False), 'no system bus at the default address: named',
           ('unix:path=/run/dbus/system_bus_socket', 'is dbus running?'))


def test_fdbroker_address_is_the_bus_when_no_bus_option_is_given_and_system_wins(t, bus, ctl, ctl_file):
    r = ctl.run('list', 'ctl/file', address=False, env={'FDBROKER_ADDRESS': bus.address})
    t.ok(r.returncode == 0 and b'ctl/file' in r.stdout and r.stderr == b'', 'list on $FDBROKER_ADDRESS', r)
    r = ctl.run('--system', 'list', address=False,
                env={'FDBROKER_ADDRESS': bus.address, 'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=/nonexistent/sys'})
    failed(t, r, '--system ignores $FDBROKER_ADDRESS', ('system bus', '/nonexistent/sys'))


# ---- --fd N, global options after the verb, cat | head ---------------------

def test_deposit_fd_n_deposits_a_pipe_that_cat_reads_to_the_end(t, bus, ctl_pipe, tmp):
    succeeded(t, ctl_pipe, 'deposit --fd N')
    r = subprocess.run([CTL, 'cat', 'ctl/pipe', '--address', bus.address], capture_output=True,
                       env=base_env(tmp))
    t.eq((r.stdout, r.stderr), (b'through a pipe\n', b''),
         'cat of a pipe reads it to the end; --address after the verb')


def test_deposit_fd_is_checked(t, ctl, path):
    failed(t, ctl.run('deposit', 'ctl/both', path, '--fd', '0'), 'deposit takes FILE or --fd, not both', '--fd')
    failed(t, ctl.run('deposit', 'ctl/nofd', '--fd', '3', '--persistent'), 'deposit --fd of a closed fd 3: exit 1',
           '--fd 3')
    failed(t, ctl.run('deposit', 'ctl/nofd', '--fd', '9', '--persistent'), 'deposit --fd of a closed fd 9: exit 1',
           '--fd 9')
    failed(t, ctl.run('deposit', 'ctl/nofd', '--fd', 'x', '--persistent'), 'deposit --fd checks N', "'x'")


def test_a_reader_that_goes_away_is_no_error(t, bus, ctl_file, tmp):
    # `fdbrokerctl cat NAME | head -c1`.
    p = subprocess.Popen([CTL, '--address', bus.address, 'cat', 'ctl/file'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=base_env(tmp))
    first = p.stdout.read(1)
    p.stdout.close()
    rc = wait_exit(p, 30)
    err = p.stderr.read()
    p.stderr.close()
    t.ok(first == PAYLOAD[:1] and rc == 0 and err == b'',
         'cat whose reader closes early (head -c1): exit 0, nothing on stderr', {'rc': rc, 'stderr': err})
    r = subprocess.run(['sh', '-c', '"$0" --address "$1" cat ctl/file | head -c1 | od -An -tu1', CTL,
                        bus.address], capture_output=True, env=base_env(tmp))
    t.eq((r.stdout.split(), r.stderr), ([b'0'], b''), 'cat NAME | head -c1 in a shell: quiet')
    p = subprocess.Popen([CTL, '--address', bus.address, 'list', '--json'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=base_env(tmp))
    p.stdout.close()
    rc = wait_exit(p, 30)
    err = p.stderr.read()
    p.stderr.close()
    t.ok(rc == 0 and err == b'', 'list into a closed pipe: exit 0, quiet', {'rc': rc, 'stderr': err})


# ---- create-memory ------------------------------------------------------------

def test_create_memory_makes_zeros_that_retrieve_can_fill(t, ctl):
    r = ctl.run('create-memory', 'ctl/mem', '1M', '--persistent', '--description', 'scratch')
    t.eq((r.returncode, r.stdout, r.stderr), (0, b'', b''), 'create-memory NAME 1M --persistent prints nothing')
    r = ctl.run('retrieve', 'ctl/mem', '--', 'sh', '-c', 'printf filled >&3')
    succeeded(t, r, 'retrieve -- COMMAND writes into the memory')
    r = ctl.run('cat', 'ctl/mem')
    t.ok(len(r.stdout) == 1 << 20 and r.stdout.startswith(b'filled') and r.stdout[6:] == bytes((1 << 20) - 6),
         'create-memory: 1 MiB of zeros, filled through retrieve', {'len': len(r.stdout)})


@pytest.mark.parametrize('size, n', [('4096', 4096), ('4K', 4096), ('2KiB', 2048), ('1k', 1024)])
def test_create_memory_size_takes_a_unit(t, ctl, size, n):
    r = ctl.run('create-memory', 'ctl/size', size, '--persistent')
    j = ctl.run('list', 'ctl/size', '--json')
    got = [e.get('size') for e in json.loads(j.stdout or b'[]')]
    t.ok(r.returncode == 0 and r.stderr == b'' and got == [n], 'create-memory SIZE %s is %d bytes' % (size, n),
         {'rc': r.returncode, 'stderr': r.stderr, 'sizes': got})


def test_create_memory_seal_takes_the_bytes_of_stdin_then_nobody_can_change_them(t, ctl):
    data = b'sealed bytes\n'
    r = ctl.run('create-memory', 'ctl/sealed', '4K', '--seal', '--persistent', input=data)
    succeeded(t, r, 'create-memory --seal < data')
    r = ctl.run('cat', 'ctl/sealed')
    t.ok(r.stdout == data + bytes(4096 - len(data)), 'create-memory --seal: the bytes of stdin, then zeros',
         {'len': len(r.stdout), 'head': r.stdout[:20]})
    j = ctl.run('list', 'ctl/sealed', '--json')
    e = (json.loads(j.stdout or b'[]') or [{}])[0]
    t.eq((e.get('kind'), e.get('sealed'), e.get('size')), ('memfd', True, 4096), 'create-memory --seal: sealed memfd')
    r = ctl.run('retrieve', 'ctl/sealed', '--', 'sh', '-c', 'printf x >&3')
    t.ok(r.returncode != 0, 'create-memory --seal: a write through a retrieved fd fails', r)


def test_create_memory_seal_refuses_too_many_bytes_and_a_terminal_leaving_no_entry(t, ctl):
    failed(t, ctl.run('create-memory', 'ctl/sealed2', '4', '--seal', '--persistent', input=b'12345'),
           'create-memory --seal: more bytes on stdin than SIZE is refused', ('more than', '4 bytes'))
    master, slave = os.openpty()
    try:
        r = ctl.run('create-memory', 'ctl/sealed3', '4K', '--seal', '--persistent', stdin=slave)
    finally:
        os.close(master)
        os.close(slave)
    failed(t, r, 'create-memory --seal with a terminal on stdin is refused, saying why',
           ('standard input', '--seal'))
    # (The TAP version listed ctl/sealed, which it had removed: the prefix
    # covers both refused names.)
    r = ctl.run('list', 'ctl/sealed', '--json')
    t.eq(listed(r), [], 'the refused --seal calls left no entry')


# ---- list -----------------------------------------------------------------

def test_list_json_shows_an_object_per_entry_with_the_info_keys(t, ctl, ctl_file, ctl_mem, ctl_pipe):
    assert ctl_pipe.returncode == 0, ctl_pipe
    r = ctl.run('list', 'ctl/', '--json')
    try:
        entries = json.loads(r.stdout)
    except ValueError as e:
        entries = None
        t.ok(False, 'list --json parses', '%s: %r' % (e, r.stdout[:400]))
    t.eq(r.stderr, b'', 'list --json: nothing on stderr')
    if entries is not None:
        by_name = {e['name']: e for e in entries}
        t.eq(sorted(by_name), ['ctl/file', 'ctl/mem', 'ctl/pipe'], 'list PREFIX --json: the entries, as JSON')
        f = by_name.get('ctl/file', {})
        t.eq((f.get('kind'), f.get('size'), f.get('owner-uid'), f.get('owner'), f.get('access'),
              f.get('lifetime'), f.get('description'), f.get('expires-usec'), f.get('sealed')),
             ('regular', len(PAYLOAD), 0, 'root', 'read-only', 'persistent', 'test file', 0, False),
             'list --json: an object per entry with the info keys')
        t.ok(isinstance(f.get('created-usec'), int) and f['created-usec'] > 1e15, 'list --json: created-usec', f)
        t.eq(by_name.get('ctl/mem', {}).get('size'), 1 << 20, 'list --json: memfd size')
        t.ok('size' not in by_name.get('ctl/pipe', {'size': 1}), 'list --json: no size for a pipe')


def test_list_json_of_nothing_is_an_empty_array(t, ctl, ctl_file):
    r = ctl.run('list', 'ctl/nothing-here/', '--json')
    t.eq((r.stdout, r.stderr), (b'[]\n', b''), 'list --json of nothing: []')


def test_list_prints_a_table_whose_columns_line_up(t, ctl, ctl_file, ctl_mem, ctl_pipe):
    assert ctl_pipe.returncode == 0, ctl_pipe
    r = ctl.run('list')
    rows = r.stdout.decode().splitlines()
    t.ok(r.returncode == 0 and r.stderr == b'' and rows and rows[0].split()[:7] ==
         ['NAME', 'KIND', 'SIZE', 'OWNER', 'ACCESS', 'LIFETIME', 'EXPIRES'],
         'list: a table with a header', r.stdout.decode())
    row = next((x for x in rows if x.startswith('ctl/mem ')), '')
    t.ok(row.split()[:4] == ['ctl/mem', 'memfd', '1.0', 'MiB'] and 'root' in row and 'persistent' in row
         and 'never' in row, 'list: a row per entry', row)
    k = rows[0].index('KIND') if rows else 0
    t.ok(k > 0 and all(x[k - 2:k] == '  ' and x[k] != ' ' for x in rows),
         'list: the columns line up', r.stdout.decode())


def test_list_expires_shows_the_local_time_of_expiry(t, ctl, path):
    ctl.run('deposit', 'ctl/expiring', path, '--persistent', '--timeout', '3600')
    r = ctl.run('list', 'ctl/expiring')
    row = r.stdout.decode().splitlines()[-1] if r.stdout else ''
    exp = time.strftime('%Y-%m-%d', time.localtime(time.time() + 3600))
    t.ok(exp in row and 'never' not in row, 'list: EXPIRES shows the local time of expiry', row)


# ---- another user ---------------------------------------------------------

def test_another_user_lists_and_cats_only_what_it_may_retrieve(t, ctl, ctl_file, path, ctl_user):
    r = ctl.run('deposit', 'ctl/shared', path, '--persistent', '--allow', 'user:' + OTHER_USER)
    succeeded(t, r, 'deposit --allow user:%s' % OTHER_USER)
    r = ctl.run('list', 'ctl/', '--json', user=ctl_user)
    try:
        names = [e['name'] for e in json.loads(r.stdout)]
    except ValueError:
        names = r
    t.eq(names, ['ctl/shared'], 'list --json as %s shows only what it may retrieve' % OTHER_USER)
    r = ctl.run('cat', 'ctl/shared', user=ctl_user)
    succeeded(t, r, 'cat as %s of an entry allowed to it' % OTHER_USER, PAYLOAD)
    failed(t, ctl.run('cat', 'ctl/file', user=ctl_user), 'cat as %s of a private entry: NotFound' % OTHER_USER,
           "'ctl/file'")
    r = ctl.run('list', user=ctl_user)
    t.ok(b'ctl/file' not in r.stdout and b'ctl/shared' in r.stdout, 'list table as %s hides' % OTHER_USER,
         r.stdout.decode())


def test_another_user_may_not_remove_or_deposit_over_roots_entry(t, ctl, path, ctl_user):
    assert ctl.run('deposit', 'ctl/shared', path, '--persistent', '--allow', 'user:' + OTHER_USER).returncode == 0
    failed(t, ctl.run('remove', 'ctl/shared', user=ctl_user), 'remove as %s of root\'s entry: exit 1' % OTHER_USER,
           "'ctl/shared'")
    failed(t, ctl.run('deposit', 'ctl/shared', path, '--persistent', user=ctl_user),
           'deposit as %s over root\'s entry: exists, and not theirs' % OTHER_USER, "'ctl/shared'",
           lacks='replace=true')


# ---- deposit --from-pid -------------------------------------------------------

def pidfd_getfd_blocked(pid, fd):
    """Why this machine refuses pidfd_getfd() on our own child that allows
    any tracer, or None. A container's seccomp filter (systemd-nspawn's)
    answers EPERM for it: then --from-pid cannot work here at all."""
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


@pytest.fixture
def target(path):
    """(pid, fd): a process of ours holding PAYLOAD's file open on fd. It
    lets any process of its user take its fds (PR_SET_PTRACER_ANY): with
    Yama's ptrace_scope=1 and no CAP_SYS_PTRACE (a container's root), only
    a process's ancestors may otherwise, and fdbrokerctl is not the
    target's parent here."""
    fd = os.open(path, os.O_RDONLY)
    p = subprocess.Popen(
        ['/usr/bin/python3', '-c',
         'import ctypes, sys, time\n'
         'ctypes.CDLL(None).prctl(0x59616d61, ctypes.c_ulong(2**64 - 1), 0, 0, 0)\n'
         'sys.stdout.write("ready\\n"); sys.stdout.flush(); time.sleep(600)\n'],
        pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    p.stdout.readline()
    os.close(fd)
    try:
        yield p.pid, fd
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def test_deposit_from_pid_takes_an_fd_of_a_process_of_the_same_user(t, ctl, target):
    pid, fd = target
    blocked = pidfd_getfd_blocked(pid, fd)
    if blocked:
        pytest.skip(blocked)
    r = ctl.run('deposit', 'ctl/frompid', '--from-pid', str(pid), '--fd', str(fd), '--persistent')
    succeeded(t, r, 'deposit --from-pid PID --fd N of a process of the same user')
    r = ctl.run('cat', 'ctl/frompid')
    succeeded(t, r, 'deposit --from-pid: the entry holds the bytes of that process\'s fd', PAYLOAD)
    ctl.run('remove', 'ctl/frompid')
    failed(t, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(pid), '--fd', '987', '--persistent'),
           'deposit --from-pid of an fd the process does not have', ('%d' % pid, 'no fd 987'))


def test_deposit_from_pid_checks_its_arguments(t, ctl, path, target):
    pid, _ = target
    failed(t, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(pid), '--persistent'),
           'deposit --from-pid without --fd', '--fd')
    failed(t, ctl.run('deposit', 'ctl/frompid', path, '--from-pid', str(pid), '--fd', '0'),
           'deposit --from-pid with a FILE', '--from-pid')
    failed(t, ctl.run('deposit', 'ctl/frompid', '--from-pid', 'me', '--fd', '0'),
           'deposit --from-pid checks PID', "'me'")


def test_deposit_from_pid_of_another_users_process_is_refused_with_the_reason(t, ctl, target, maybe_ctl_user):
    user, why = maybe_ctl_user
    if user is None:
        pytest.skip(why)
    pid, fd = target
    r = ctl.run('deposit', 'ctl/frompid', '--from-pid', str(pid), '--fd', str(fd), '--persistent', user=user)
    failed(t, r, 'deposit --from-pid of a process of another user: refused with the reason',
           ('%d' % pid, 'belongs to another user', 'CAP_SYS_PTRACE'))
    r = ctl.run('list', 'ctl/frompid', '--json')
    t.eq(listed(r), [], 'the refused --from-pid deposited nothing')


def test_deposit_from_pid_of_a_process_that_does_not_exist_names_it(t, ctl):
    gone = subprocess.Popen(['true'])
    gone.wait()
    failed(t, ctl.run('deposit', 'ctl/frompid', '--from-pid', str(gone.pid), '--fd', '0', '--persistent'),
           'deposit --from-pid of a process that does not exist', ('%d' % gone.pid, 'no such process'))


# ---- holding connection-lifetime entries --------------------------------------

def test_deposit_without_persistent_holds_the_entry_until_sigterm(t, ctl, path, watch):
    holder = ctl.popen('deposit', 'ctl/held', path)
    try:
        r = ctl.run('retrieve', 'ctl/held', '--wait', '20', '--', 'sh', '-c', 'head -c 3 <&3 | od -An -tu1')
        t.eq(r.stdout.split(), [b'0', b'1', b'2'], 'deposit without --persistent: the entry is there while held')
        t.eq(holder.poll(), None, 'deposit without --persistent keeps running')
        holder.send_signal(signal.SIGTERM)
        rc = wait_exit(holder, 20)
    finally:
        err = stop(holder)
    eq(t, rc, 0, 'the holding deposit exits 0 on SIGTERM', err)
    holder_said(t, err, 'ctl/held', 'deposit')
    t.eq(err.count('\n'), 1 if watch else 2, 'the holder printed nothing else (or the no-Watch note)')
    ok = harness.poll_until(lambda: ctl.run('cat', 'ctl/held').returncode == 1, timeout=10)
    t.ok(ok, 'the entry goes away with the holding deposit')


def test_create_memory_without_persistent_holds_the_entry_until_sigint(t, ctl):
    holder = ctl.popen('create-memory', 'ctl/heldmem', '4K')
    try:
        line = Lines(holder.stderr).read(30)
        t.eq(line, 'fdbrokerctl: holding ctl/heldmem; ' + HOLDING,
             'create-memory without --persistent: holds, says so')
        r = ctl.run('list', 'ctl/heldmem', '--json')
        t.eq([e['name'] for e in json.loads(r.stdout or b'[]')], ['ctl/heldmem'], 'the held memory is listed')
        holder.send_signal(signal.SIGINT)
        rc = wait_exit(holder, 20)
    finally:
        stop(holder)
    t.eq(rc, 0, 'the holding create-memory exits 0 on SIGINT')


def test_a_once_holder_exits_0_by_itself_after_the_hand_off(t, ctl, path, needs_watch):
    holder = ctl.popen('deposit', 'ctl/handoff', path, '--once')
    try:
        r = ctl.run('retrieve', 'ctl/handoff', '--wait', '20', '--', 'true')
        t.eq(r.returncode, 0, 'retrieve --wait of a --once hand-off')
        rc = wait_exit(holder, 20)
    finally:
        err = stop(holder)
    t.eq(rc, 0, 'the holding deposit --once exits 0 by itself after the hand-off')
    holder_said(t, err, 'ctl/handoff', 'deposit --once')
    t.ok('ctl/handoff is gone (retrieved-once)' in err, 'the holder says why it ends', err)


def test_a_holder_exits_0_once_its_entry_is_removed(t, ctl, path, needs_watch):
    holder = ctl.popen('deposit', 'ctl/removed', path)
    try:
        Lines(holder.stderr).read(30)
        succeeded(t, ctl.run('remove', 'ctl/removed'), 'remove of a held entry')
        rc = wait_exit(holder, 20)
    finally:
        err = stop(holder)
    t.ok(rc == 0 and 'ctl/removed is gone (removed)' in err, 'the holder exits 0 once its entry is removed',
         {'rc': rc, 'stderr': err})


def test_a_holder_exits_0_when_its_entry_expires(t, ctl, needs_watch):
    holder = ctl.popen('create-memory', 'ctl/expiring', '4K', '--timeout', '0.5')
    try:
        rc = wait_exit(holder, 20)
    finally:
        err = stop(holder)
    t.ok(rc == 0 and 'ctl/expiring is gone (expired)' in err,
         'create-memory --timeout without --persistent exits 0 when the entry expires', {'rc': rc, 'stderr': err})


# ---- monitor (Watch) ------------------------------------------------------------

def test_monitor_prints_what_its_pattern_matches_added_and_removed(t, ctl, path, needs_watch):
    mon = ctl.popen('monitor', 'ctl/mon/*')
    try:
        err = Lines(mon.stderr)
        out = Lines(mon.stdout)
        t.eq(err.read(30), 'fdbrokerctl: watching ctl/mon/*; Ctrl-C to stop', 'monitor says when it watches')
        succeeded(t, ctl.run('deposit', 'ctl/unwatched', path, '--persistent'), 'deposit of a name not watched')
        succeeded(t, ctl.run('deposit', 'ctl/mon/a', path, '--persistent'), 'deposit of a watched name')
        line = out.read(30) or ''
        t.ok(line.startswith('+ ctl/mon/a kind=regular owner=root'), 'monitor: + NAME kind=... owner=...', line)
        succeeded(t, ctl.run('remove', 'ctl/mon/a'), 'remove of a watched name')
        t.eq(out.read(30), '- ctl/mon/a removed', 'monitor: - NAME reason (and nothing about ctl/unwatched)')
        mon.send_signal(signal.SIGINT)
        rc = wait_exit(mon, 20)
    finally:
        rest = stop(mon)
    t.eq((rc, rest), (0, ''), 'monitor exits 0 on SIGINT, nothing more on stderr')


def test_monitor_json_prints_an_object_per_event(t, ctl, needs_watch):
    mon = ctl.popen('monitor', 'ctl/monj/**', '--json')
    try:
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
    finally:
        stop(mon)
    added = events[0] if isinstance(events[0], dict) else {}
    t.eq((added.get('event'), added.get('name'), added.get('kind'), added.get('size'), added.get('owner')),
         ('added', 'ctl/monj/x/y', 'memfd', 4096, 'root'), 'monitor --json: an added object per line')
    t.eq(events[1], {'event': 'removed', 'name': 'ctl/monj/x/y', 'reason': 'removed'},
         'monitor --json: a removed object per line')


# ---- direct connections (SPEC §5), against the stand-in server -----------------

class P2P:
    """fdb-p2p-server on SOCK, serving p2p/x ('over the direct socket\\n');
    logged() is what clients sent since the last call."""

    def __init__(self, sock, log):
        self.sock = sock
        self.log = log

    def logged(self):
        try:
            with open(self.log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        open(self.log, 'w').close()
        return lines


@pytest.fixture
def p2p(tmp):
    if not os.access(P2P_SERVER, os.X_OK):
        pytest.skip('%s not built' % P2P_SERVER)
    sock = os.path.join(tmp, 'direct.sock')
    log = os.path.join(tmp, 'direct.log')
    data = os.path.join(tmp, 'direct.txt')
    with open(data, 'w') as f:
        f.write('over the direct socket\n')
    server = subprocess.Popen([P2P_SERVER, sock, log, 'p2p/x', data], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
    try:
        if Lines(server.stdout).read(30) != 'ready':
            pytest.skip('fdb-p2p-server did not start')
        yield P2P(sock, log)
    finally:
        server.terminate()
        server.wait(20)
        server.stdout.close()


def test_retrieve_cat_and_list_go_over_a_direct_socket_beside_the_bus(t, ctl, p2p):
    sock = p2p.sock
    r = ctl.run('--socket', sock, 'retrieve', 'p2p/x', '--', 'sh', '-c', 'cat <&3; echo "$LISTEN_FDNAMES"')
    t.eq((r.returncode, r.stdout, r.stderr), (0, b'over the direct socket\np2p/x\n', b''),
         'retrieve --socket PATH beside --address: the fd comes over the direct socket')
    t.eq(p2p.logged(), ['call Retrieve'],
         'retrieve -- COMMAND on the direct socket: one call, no Hello, no introspection, no match')
    r = ctl.run('cat', 'p2p/x', env={'FDBROKER_SOCKET': sock})
    succeeded(t, r, '$FDBROKER_SOCKET beside --address: cat over the direct socket', b'over the direct socket\n')
    r = ctl.run('list', '--json', env={'FDBROKER_SOCKET': sock})
    t.eq([e.get('name') for e in json.loads(r.stdout or b'[]')], ['p2p/x'], 'list over the direct socket')
    failed(t, ctl.run('cat', 'p2p/nope', env={'FDBROKER_SOCKET': sock}),
           'an error over the direct socket: exit 1, the message', "'p2p/nope'")


def test_a_direct_socket_absent_or_refusing_leaves_the_bus_to_serve(t, ctl, ctl_file, tmp):
    r = ctl.run('--socket', os.path.join(tmp, 'absent.sock'), 'cat', 'ctl/file')
    succeeded(t, r, '--socket that does not exist: the bus serves', PAYLOAD)
    stale = os.path.join(tmp, 'stale.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    r = ctl.run('--socket', stale, 'cat', 'ctl/file')
    succeeded(t, r, '--socket that refuses the connection: the bus serves', PAYLOAD)


def test_monitor_on_a_direct_socket_gets_the_signals_without_a_match(t, ctl, p2p):
    # Signals arrive on a direct connection without any match on a bus.
    nobus = {'FDBROKER_SOCKET': p2p.sock}
    mon = ctl.popen('monitor', env=nobus)
    try:
        Lines(mon.stderr).read(30)
        out = Lines(mon.stdout)
        lines = [out.read(30), out.read(30)]
        mon.send_signal(signal.SIGTERM)
        rc = wait_exit(mon, 20)
    finally:
        err = stop(mon)
    t.eq(lines, ['+ p2p/x kind=regular owner=root size=23 lifetime=persistent', '- p2p/gone expired'],
         'monitor over the direct socket: the broker\'s EntryAdded and EntryRemoved')
    t.eq((rc, err), (0, ''), 'monitor exits 0 on SIGTERM')
    t.eq(p2p.logged(), ['call Watch'], 'monitor on the direct socket: one Watch call, no AddMatch')
    mon = ctl.popen('monitor', 'p2p/**', '--json', env=nobus)
    try:
        out = Lines(mon.stdout)
        lines = [out.read(30), out.read(30)]
    finally:
        stop(mon)
    try:
        objs = [json.loads(x) for x in lines]
    except (TypeError, ValueError):
        objs = lines
    t.eq(objs, [{'event': 'added', 'name': 'p2p/x', 'kind': 'regular', 'size': 23, 'owner-uid': 0,
                 'lifetime': 'persistent', 'owner': 'root'},
                {'event': 'removed', 'name': 'p2p/gone', 'reason': 'expired'}],
         'monitor --json over the direct socket: every info key, in the broker\'s order, and owner')


def test_a_holder_on_a_direct_socket_ends_with_the_entryremoved_for_its_name(t, ctl, path, p2p):
    nobus = {'FDBROKER_SOCKET': p2p.sock}
    holder = ctl.popen('deposit', 'p2p/once/a', path, env=nobus)
    rc = wait_exit(holder, 20)
    err = stop(holder)
    t.eq(rc, 0, 'a holder on the direct socket exits 0 when its entry is retrieved --once')
    t.eq(err, 'fdbrokerctl: holding p2p/once/a; %s\nfdbrokerctl: p2p/once/a is gone (retrieved-once)\n' % HOLDING,
         'the holder says it holds, then why it ends')
    # Ping: one round trip before a call carrying fds on a direct connection
    # (docs/behaviour.md, "Direct connections: the first call").
    t.eq(p2p.logged(), ['call Watch', 'call Ping', 'call Deposit'],
         'the holder watches its name before the deposit, which follows a Ping')
    holder = ctl.popen('deposit', 'p2p/replace/a', path, env=nobus)
    rc = wait_exit(holder, 20)
    err = stop(holder)
    t.ok(rc == 0 and 'is gone (removed)' in err and 'replaced' not in err,
         'a holder ignores an EntryRemoved the broker sent before its Deposit reply (the entry it replaced)',
         {'rc': rc, 'stderr': err})


# ---- direct connections to the broker itself -------------------------------------

@pytest.fixture
def broker_socket(bus):
    """The broker's own direct socket (--direct-socket, SPEC §5; the harness
    gives every broker one); skipped while the broker does not have it."""
    r = subprocess.run([harness.service_binary(), '--help'], capture_output=True, text=True, timeout=60)
    if '--direct-socket' not in r.stdout + r.stderr:
        pytest.skip('the broker has no --direct-socket option (SPEC §5 not implemented in this build)')
    assert harness.poll_until(lambda: os.path.exists(bus.direct_socket), timeout=30), \
        'the broker creates its direct socket\n' + bus.service_log()
    return bus.direct_socket


def test_the_cli_works_over_the_brokers_direct_socket_with_no_bus_to_fall_back_to(t, ctl, path, tmp,
                                                                                  broker_socket):
    nobus = {'FDBROKER_SOCKET': broker_socket}
    succeeded(t, ctl.run('deposit', 'ctl/direct', path, '--persistent'), 'deposit on the bus')
    # No bus at all beside the socket: whatever works went over the socket.
    direct = Ctl('unix:path=/nonexistent/fdbtest-no-bus', tmp)
    r = direct.run('retrieve', 'ctl/direct', '--', 'sh', '-c', 'cat <&3 | md5sum', env=nobus)
    t.ok(r.returncode == 0 and r.stderr == b'' and
         r.stdout.decode().startswith(hashlib.md5(PAYLOAD).hexdigest()),
         'retrieve -- COMMAND over the broker\'s direct socket, with no bus to fall back to', r)
    succeeded(t, direct.run('cat', 'ctl/direct', env=nobus), 'cat over the direct socket', PAYLOAD)
    failed(t, direct.run('remove', 'ctl/missing', env=nobus), 'remove over the direct socket: the CLI message',
           "no entry 'ctl/missing' that you may remove")


def test_a_holder_over_the_brokers_direct_socket_holds_a_connection_entry(t, bus, ctl, path, tmp, watch,
                                                                         broker_socket):
    nobus = {'FDBROKER_SOCKET': broker_socket}
    direct = Ctl('unix:path=/nonexistent/fdbtest-no-bus', tmp)
    holder = direct.popen('deposit', 'ctl/direct-held', path, env=nobus)
    stopped = False
    try:
        line = Lines(holder.stderr).read(30)
        t.eq(line, 'fdbrokerctl: holding ctl/direct-held; ' + HOLDING, 'a holder over the direct socket says so')
        r = ctl.run('list', 'ctl/direct-held', '--json')
        t.eq([e.get('lifetime') for e in json.loads(r.stdout or b'[]')], ['connection'],
             'the held entry is seen on the bus, with lifetime connection')
        if watch:
            succeeded(t, ctl.run('remove', 'ctl/direct-held'), 'remove of the entry held over the direct socket')
            rc = wait_exit(holder, 20)
            err = stop(holder)
            stopped = True
            t.ok(rc == 0 and 'ctl/direct-held is gone (removed)' in err,
                 'the holder on the direct socket learns of the removal (EntryRemoved without a bus)',
                 {'rc': rc, 'stderr': err})
        else:
            holder.send_signal(signal.SIGTERM)
            t.eq(wait_exit(holder, 20), 0, 'the holder on the direct socket exits 0 on SIGTERM')
            stop(holder)
            stopped = True
            ok = harness.poll_until(lambda: ctl.run('cat', 'ctl/direct-held').returncode == 1, timeout=10)
            t.ok(ok, 'its entry ends with its direct connection')
    finally:
        if not stopped:
            stop(holder)


# ---- help, version, completion --------------------------------------------------

def test_help_lists_every_command_bus_option_and_variable(t, cli):
    r = cli.run('--help')
    t.ok(r.returncode == 0 and r.stderr == b'' and all(v in r.stdout.decode() for v in (
        'deposit', 'retrieve', 'cat', 'list', 'remove', 'create-memory', 'open', 'monitor', '--socket',
        'FDBROKER_ADDRESS', 'FDBROKER_SOCKET')), 'fdbrokerctl --help lists every command, bus option and variable')


@pytest.mark.parametrize('verb, option', [
    ('deposit', '--allow'), ('deposit', '--from-pid'), ('retrieve', '--wait'), ('list', '--json'),
    ('create-memory', '--seal'), ('open', '--access'), ('cat', '--address'), ('remove', '--system'),
    ('monitor', '--json'), ('cat', '--socket')])
def test_command_help_shows_its_options(t, cli, verb, option):
    r = cli.run(verb, '--help')
    t.ok(r.returncode == 0 and option in r.stdout.decode() and r.stderr == b'',
         'fdbrokerctl %s --help shows %s' % (verb, option))


def test_version_prints_the_name_and_version(t, cli):
    r = cli.run('--version')
    t.ok(r.returncode == 0 and r.stdout.startswith(b'fdbrokerctl ') and r.stderr == b'', 'fdbrokerctl --version')


def test_bash_completion_offers_entry_names_from_the_broker(t, bus, ctl, path, tmp):
    if not shutil.which('bash'):
        pytest.skip('bash not installed')
    ctl.run('deposit', 'ctl/complete-me', path, '--persistent')
    script = ('source %s; COMP_WORDS=(fdbrokerctl --address %s cat ctl/comp); COMP_CWORD=4; '
              '_fdbrokerctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (COMPLETION, bus.address))
    e = base_env(tmp)
    e['PATH'] = os.path.dirname(CTL) + ':/usr/bin:/bin'
    r = subprocess.run(['bash', '-c', script], capture_output=True, text=True, env=e)
    t.eq(r.stdout.split(), ['ctl/complete-me'], 'bash completion offers entry names from the broker')


# ---- remove, and the broker going away ----------------------------------------------

def test_remove_ends_the_entry_and_leaves_nothing_behind(t, ctl, ctl_file, ctl_mem, ctl_pipe):
    assert ctl_pipe.returncode == 0, ctl_pipe
    r = ctl.run('remove', 'ctl/file')
    t.eq((r.returncode, r.stderr), (0, b''), 'remove exits 0')
    failed(t, ctl.run('cat', 'ctl/file'), 'cat after remove: exit 1', "'ctl/file'")
    for name in ('ctl/mem', 'ctl/pipe'):
        ctl.run('remove', name)
    r = ctl.run('list', 'ctl/', '--json')
    t.eq(listed(r), [], 'no entry left behind')


def test_a_holder_whose_broker_exits_ends_with_status_1_saying_the_entry_is_gone(t, bus, ctl, path):
    bus.same_pid = False  # the test stops the broker
    holder = ctl.popen('deposit', 'ctl/orphan', path)
    try:
        Lines(holder.stderr).read(30)
        bus.stop_service()
        rc = wait_exit(holder, 20)
    finally:
        err = stop(holder)
    t.ok(rc == 1 and err.endswith("fdbrokerctl: the broker left the bus; 'ctl/orphan' is gone with it.\n"),
         'a holder whose broker exits ends with status 1, saying the entry is gone', {'rc': rc, 'stderr': err})


def test_a_monitor_whose_broker_exits_ends_with_status_1_saying_so(t, bus, ctl, needs_watch):
    bus.same_pid = False  # the test stops the broker
    mon = ctl.popen('monitor')
    try:
        Lines(mon.stderr).read(30)
        bus.stop_service()
        rc = wait_exit(mon, 20)
    finally:
        err = stop(mon)
    t.ok(rc == 1 and 'the broker left the bus' in err, 'a monitor whose broker exits ends with status 1, saying so',
         {'rc': rc, 'stderr': err})
