#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbrokerctl end to end, against the broker on a private bus (SPEC §4).

FDBROKERCTL names the binary (meson sets it). Another user, fdbtest-ctl, is
created when missing (root only; skipped otherwise) to check what list and
cat show to someone who may not retrieve an entry."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))

import harness  # noqa: E402

CTL = os.environ.get('FDBROKERCTL') or os.path.join(
    os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build'), 'client', 'fdbrokerctl')
COMPLETION = os.path.join(SOURCE, 'client', 'fdbrokerctl.bash-completion')
OTHER_USER = 'fdbtest-ctl'


class Ctl:
    def __init__(self, address):
        self.address = address

    def run(self, *args, user=None, input=None, pass_fds=(), timeout=60, env=None, address=True):
        cmd = [CTL] + (['--address', self.address] if address else []) + list(args)
        kw = {}
        if user is not None:
            kw = {'user': user.pw_uid, 'group': user.pw_gid, 'extra_groups': []}
        e = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'HOME': '/'}
        if env:
            e.update(env)
        return subprocess.run(cmd, input=input, capture_output=True, pass_fds=pass_fds, timeout=timeout,
                              env=e, cwd='/', **kw)

    def popen(self, *args):
        return subprocess.Popen([CTL, '--address', self.address] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'})


def eq(tap, got, expected, name, diag=None):
    return tap.ok(got == expected, name, {'expected': expected, 'got': got, 'diag': diag})


def failed(tap, r, name, mentions):
    """r must have exited 1 with 'fdbrokerctl: ...' naming mentions on stderr."""
    err = r.stderr.decode(errors='replace')
    return tap.ok(r.returncode == 1 and err.startswith('fdbrokerctl: ') and mentions in err and r.stdout == b'',
                  name, {'rc': r.returncode, 'stderr': err, 'stdout': r.stdout.decode(errors='replace')})


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


def body(tap):
    if not os.access(CTL, os.X_OK):
        raise harness.Skip('%s not built' % CTL)
    bus, _ = harness.setup(tap)
    ctl = Ctl(bus.address)
    tmp = tempfile.mkdtemp(prefix='fdbrokerctl-test-')
    os.chmod(tmp, 0o755)
    try:
        run_tests(tap, bus, ctl, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_tests(tap, bus, ctl, tmp):
    payload = bytes(range(256)) * 1200 + b'end'   # 300 KiB with NULs: several read loops
    path = os.path.join(tmp, 'payload.bin')
    with open(path, 'wb') as f:
        f.write(payload)

    # ---- deposit FILE, cat -------------------------------------------------
    r = ctl.run('deposit', 'ctl/file', path, '--persistent', '--description', 'test file')
    tap.eq((r.returncode, r.stdout, r.stderr), (0, b'', b''), 'deposit FILE --persistent exits 0 silently')
    r = ctl.run('cat', 'ctl/file')
    tap.ok(r.returncode == 0 and r.stdout == payload, 'cat writes the deposited bytes',
           {'rc': r.returncode, 'len': len(r.stdout), 'stderr': r.stderr})
    r = ctl.run('cat', 'ctl/file')
    tap.ok(r.returncode == 0 and r.stdout == payload, 'cat again: the entry offset did not move (pread)')

    # ---- retrieve -- COMMAND -----------------------------------------------
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
    import hashlib
    tap.ok(len(lines) > 1 and lines[1].startswith(hashlib.md5(payload).hexdigest()),
           'retrieve: the bytes are on fd 3', out)
    tap.eq(r.returncode, 7, "retrieve: fdbrokerctl's exit status is COMMAND's")

    fd3 = ctl.run('retrieve', 'ctl/file', '--read-only', '--reopen', '--',
                  'sh', '-c', 'ls -l /proc/self/fd/3 >/dev/null && readlink /proc/self/fd/3')
    tap.ok(fd3.returncode == 0 and fd3.stdout.decode().strip() == path,
           'retrieve --read-only --reopen hands the file itself on fd 3', fd3)

    r = ctl.run('deposit', 'ctl/a:b', path, '--persistent')
    r = ctl.run('retrieve', 'ctl/a:b', '--', 'sh', '-c', 'echo "$LISTEN_FDNAMES"')
    tap.eq(r.stdout.decode().strip(), 'ctl/a_b', "retrieve: ':' in NAME becomes '_' in LISTEN_FDNAMES")
    ctl.run('remove', 'ctl/a:b')

    r = ctl.run('retrieve', 'ctl/file', '--', 'no-such-command-fdbtest')
    tap.ok(r.returncode == 127 and b'no-such-command-fdbtest' in r.stderr,
           'retrieve: a COMMAND that does not exist exits 127', r)
    r = ctl.run('retrieve', 'ctl/file')
    failed(tap, r, 'retrieve without -- COMMAND exits 1', 'COMMAND')

    # ---- errors name the entry ---------------------------------------------
    failed(tap, ctl.run('cat', 'ctl/missing'), 'cat of a missing entry: exit 1, entry named', "'ctl/missing'")
    failed(tap, ctl.run('retrieve', 'ctl/missing', '--', 'true'), 'retrieve of a missing entry: exit 1',
           "'ctl/missing'")
    failed(tap, ctl.run('deposit', 'ctl/file', path), 'deposit of a taken name: exit 1, entry named', "'ctl/file'")
    failed(tap, ctl.run('deposit', 'ctl/../x', path, '--persistent'), 'deposit of a bad name: exit 1', 'ctl/../x')
    failed(tap, ctl.run('deposit', 'ctl/sealfile', path, '--seal', '--persistent'),
           'deposit --seal of a file: exit 1 (NotSupported)', 'ctl/sealfile')
    failed(tap, ctl.run('deposit', 'ctl/x', os.path.join(tmp, 'nope')), 'deposit of a missing FILE: exit 1', 'nope')
    failed(tap, ctl.run('remove', 'ctl/missing'), 'remove of a missing entry: exit 1', "'ctl/missing'")
    failed(tap, ctl.run('open', '/etc/hostname', '--', 'true'), 'open without a granting policy: exit 1',
           '/etc/hostname')
    failed(tap, ctl.run('open', '/etc/hostname', '--access', 'sideways', '--', 'true'), 'open --access checks MODE',
           'sideways')
    failed(tap, ctl.run('create-memory', 'ctl/m', '12X'), 'create-memory with a bad SIZE: exit 1', '12X')
    failed(tap, ctl.run('deposit', 'ctl/t', path, '--timeout', 'soon'), '--timeout checks SEC', 'soon')
    failed(tap, ctl.run('frobnicate'), 'an unknown command: exit 1', 'frobnicate')
    failed(tap, ctl.run('list', '--user'), '--address and --user exclude each other', '--user')
    failed(tap, ctl.run('list', address=False, env={'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=/nonexistent/fdbtest'}),
           'no bus: exit 1 with the reason', '')

    # ---- --fd N, global options before and after the verb --------------------
    rfd, wfd = os.pipe()
    os.write(wfd, b'through a pipe\n')
    os.close(wfd)
    r = ctl.run('deposit', 'ctl/pipe', '--fd', str(rfd), '--persistent', pass_fds=(rfd,))
    os.close(rfd)
    eq(tap, r.returncode, 0, 'deposit --fd N', r)
    r = subprocess.run([CTL, 'cat', 'ctl/pipe', '--address', bus.address], capture_output=True)
    tap.eq(r.stdout, b'through a pipe\n', 'cat of a pipe reads it to the end; --address after the verb')
    failed(tap, ctl.run('deposit', 'ctl/both', path, '--fd', '0'), 'deposit takes FILE or --fd, not both', '--fd')
    failed(tap, ctl.run('deposit', 'ctl/nofd', '--fd', '3', '--persistent'), 'deposit --fd of a closed fd 3: exit 1',
           '--fd 3')
    failed(tap, ctl.run('deposit', 'ctl/nofd', '--fd', '9', '--persistent'), 'deposit --fd of a closed fd 9: exit 1',
           '--fd 9')

    # ---- create-memory ------------------------------------------------------
    r = ctl.run('create-memory', 'ctl/mem', '1M', '--persistent', '--description', 'scratch')
    tap.eq((r.returncode, r.stdout), (0, b''), 'create-memory NAME 1M --persistent prints nothing')
    r = ctl.run('retrieve', 'ctl/mem', '--', 'sh', '-c', 'printf filled >&3')
    r = ctl.run('cat', 'ctl/mem')
    tap.ok(len(r.stdout) == 1 << 20 and r.stdout.startswith(b'filled') and r.stdout[6:] == bytes((1 << 20) - 6),
           'create-memory: 1 MiB of zeros, filled through retrieve', {'len': len(r.stdout)})

    # ---- list ---------------------------------------------------------------
    r = ctl.run('list', 'ctl/', '--json')
    try:
        entries = json.loads(r.stdout)
    except ValueError as e:
        entries = None
        tap.ok(False, 'list --json parses', '%s: %r' % (e, r.stdout[:400]))
    if entries is not None:
        by_name = {e['name']: e for e in entries}
        tap.eq(sorted(by_name), ['ctl/file', 'ctl/mem', 'ctl/pipe'], 'list PREFIX --json: the entries, as JSON')
        f = by_name.get('ctl/file', {})
        tap.eq((f.get('kind'), f.get('size'), f.get('owner-uid'), f.get('owner'), f.get('access'),
                f.get('lifetime'), f.get('description'), f.get('expires-usec')),
               ('regular', len(payload), 0, 'root', 'read-only', 'persistent', 'test file', 0),
               'list --json: an object per entry with the info keys')
        tap.eq(by_name.get('ctl/mem', {}).get('size'), 1 << 20, 'list --json: memfd size')
        tap.ok('size' not in by_name.get('ctl/pipe', {'size': 1}), 'list --json: no size for a pipe')

    r = ctl.run('list')
    rows = r.stdout.decode().splitlines()
    tap.ok(r.returncode == 0 and rows and rows[0].split()[:7] ==
           ['NAME', 'KIND', 'SIZE', 'OWNER', 'ACCESS', 'LIFETIME', 'EXPIRES'],
           'list: a table with a header', r.stdout.decode())
    row = next((x for x in rows if x.startswith('ctl/mem ')), '')
    tap.ok(row.split()[:2] == ['ctl/mem', 'memfd'] and 'root' in row and 'persistent' in row and 'never' in row,
           'list: a row per entry', row)

    # ---- another user -------------------------------------------------------
    try:
        user = other_user()
    except harness.Skip as e:
        tap.skip('list and cat as another user', str(e))
        user = None
    if user is not None:
        r = ctl.run('deposit', 'ctl/shared', path, '--persistent', '--allow', 'user:' + OTHER_USER)
        eq(tap, r.returncode, 0, 'deposit --allow user:%s' % OTHER_USER, r)
        r = ctl.run('list', 'ctl/', '--json', user=user)
        try:
            names = [e['name'] for e in json.loads(r.stdout)]
        except ValueError:
            names = r
        tap.eq(names, ['ctl/shared'], 'list --json as %s shows only what it may retrieve' % OTHER_USER)
        r = ctl.run('cat', 'ctl/shared', user=user)
        tap.ok(r.returncode == 0 and r.stdout == payload, 'cat as %s of an entry allowed to it' % OTHER_USER)
        failed(tap, ctl.run('cat', 'ctl/file', user=user), 'cat as %s of a private entry: NotFound' % OTHER_USER,
               "'ctl/file'")
        failed(tap, ctl.run('remove', 'ctl/shared', user=user), 'remove as %s of root\'s entry: exit 1' % OTHER_USER,
               "'ctl/shared'")
        r = ctl.run('list', user=user)
        tap.ok(b'ctl/file' not in r.stdout and b'ctl/shared' in r.stdout, 'list table as %s hides' % OTHER_USER,
               r.stdout.decode())
        ctl.run('remove', 'ctl/shared')

    # ---- holding connection-lifetime entries --------------------------------
    holder = ctl.popen('deposit', 'ctl/held', path)
    r = ctl.run('retrieve', 'ctl/held', '--wait', '20', '--', 'sh', '-c', 'head -c 3 <&3 | od -An -tu1')
    tap.eq(r.stdout.split(), [b'0', b'1', b'2'], 'deposit without --persistent: the entry is there while held')
    tap.eq(holder.poll(), None, 'deposit without --persistent keeps running')
    holder.send_signal(signal.SIGTERM)
    rc = wait_exit(holder, 20)
    eq(tap, rc, 0, 'the holding deposit exits 0 on SIGTERM', holder.stderr.read() if rc is not None else None)
    ok = harness.poll_until(lambda: ctl.run('cat', 'ctl/held').returncode == 1, timeout=10)
    tap.ok(ok, 'the entry goes away with the holding deposit')

    holder = ctl.popen('deposit', 'ctl/handoff', path, '--once')
    r = ctl.run('retrieve', 'ctl/handoff', '--wait', '20', '--', 'true')
    tap.eq(r.returncode, 0, 'retrieve --wait of a --once hand-off')
    rc = wait_exit(holder, 20)
    tap.eq(rc, 0, 'the holding deposit --once exits by itself after the hand-off')
    if rc is None:
        holder.kill()
        holder.wait()

    holder = ctl.popen('create-memory', 'ctl/heldmem', '4K', '--timeout', '0.5')
    rc = wait_exit(holder, 20)
    tap.eq(rc, 0, 'create-memory --timeout without --persistent exits when the entry expires')
    if rc is None:
        holder.kill()
        holder.wait()

    # ---- remove -------------------------------------------------------------
    r = ctl.run('remove', 'ctl/file')
    tap.eq((r.returncode, r.stderr), (0, b''), 'remove exits 0')
    failed(tap, ctl.run('cat', 'ctl/file'), 'cat after remove: exit 1', "'ctl/file'")

    # ---- help ---------------------------------------------------------------
    r = ctl.run('--help', address=False)
    tap.ok(r.returncode == 0 and all(v in r.stdout.decode() for v in
                                     ('deposit', 'retrieve', 'cat', 'list', 'remove', 'create-memory', 'open')),
           'fdbrokerctl --help lists every command')
    for verb, option in (('deposit', '--allow'), ('retrieve', '--wait'), ('list', '--json'),
                         ('create-memory', '--seal'), ('open', '--access'), ('cat', '--address'),
                         ('remove', '--system')):
        r = ctl.run(verb, '--help', address=False)
        tap.ok(r.returncode == 0 and option in r.stdout.decode(), 'fdbrokerctl %s --help shows %s' % (verb, option))
    r = ctl.run('--version', address=False)
    tap.ok(r.returncode == 0 and r.stdout.startswith(b'fdbrokerctl '), 'fdbrokerctl --version')

    # ---- bash completion against the real broker ----------------------------
    if shutil.which('bash'):
        ctl.run('deposit', 'ctl/complete-me', path, '--persistent')
        script = ('source %s; COMP_WORDS=(fdbrokerctl --address %s cat ctl/comp); COMP_CWORD=4; '
                  '_fdbrokerctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (COMPLETION, bus.address))
        r = subprocess.run(['bash', '-c', script], capture_output=True, text=True,
                           env={'PATH': os.path.dirname(CTL) + ':/usr/bin:/bin'})
        tap.eq(r.stdout.split(), ['ctl/complete-me'], 'bash completion offers entry names from the broker')
        ctl.run('remove', 'ctl/complete-me')
    else:
        tap.skip('bash completion against the broker', 'bash not installed')

    for name in ('ctl/mem', 'ctl/pipe'):
        ctl.run('remove', name)


harness.main(body)
