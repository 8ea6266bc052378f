#!/usr/bin/python3
"""fdbroker demo: one user hands a memory buffer to another, by fd.

Run it through tools/demo.sh (as root), which builds the broker first:

    sudo tools/demo.sh

or directly, once ./build exists:

    sudo /usr/bin/python3 tools/demo.py [--build-dir build]

It starts a private system-like bus (tests/integration/harness.py) on which
the broker is bus-activated from the build tree; nothing is installed and
the machine's real system bus is not touched. Two system users are created
if missing: fdbdemo-camera and fdbdemo-viewer. Each acts in its own process,
started with that user's uid and gid, the way two unrelated programs would.

Exits non-zero if any step does not do what it says.
"""

import argparse
import fcntl
import hashlib
import json
import os
import pwd
import shlex
import subprocess
import sys
import tempfile
import time

BUS_NAME = 'org.fdbroker.Broker1'
OBJ_PATH = '/org/fdbroker/Broker1'
IFACE = 'org.fdbroker.Broker1'

CAMERA = 'fdbdemo-camera'
VIEWER = 'fdbdemo-viewer'
STRANGER = 'nobody'
FRAME = 'demo/frame'
FRAME_SIZE = 1024 * 1024


# ---------------------------------------------------------------------------
# What each user does. These run in child processes, as that user: the demo
# feeds this very file to `python3 -` on stdin, so the users need no access
# to the source tree.

def _gio():
    import gi
    gi.require_version('Gio', '2.0')
    gi.require_version('GLib', '2.0')
    from gi.repository import Gio, GLib
    return Gio, GLib


def _connect(address):
    Gio, _ = _gio()
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    return conn


def _say(text):
    print(text, flush=True)


def _result(**values):
    # One machine-readable line for the parent; it does not show it.
    print('@result ' + json.dumps(values), flush=True)


def _remote_error(err):
    Gio, _ = _gio()
    name = Gio.DBusError.get_remote_error(err)
    if not name:
        return f'local error: {err.message}'
    msg = err.message
    prefix = f'GDBus.Error:{name}: '
    if msg.startswith(prefix):
        msg = msg[len(prefix):]
    return f'{name}: {msg}'


def _seal_names(seals):
    names = [('F_SEAL_SEAL', fcntl.F_SEAL_SEAL), ('F_SEAL_SHRINK', fcntl.F_SEAL_SHRINK),
             ('F_SEAL_GROW', fcntl.F_SEAL_GROW), ('F_SEAL_WRITE', fcntl.F_SEAL_WRITE)]
    return [n for n, bit in names if seals & bit] or ['none']


def _frame_pattern():
    # A 1024x1024 8-bit grey image: diagonal stripes, so it is not all zeros.
    row = bytes(range(256)) * 4
    return b''.join(row[y % 256:] + row[:y % 256] for y in range(1024))


def role_camera(address):
    Gio, GLib = _gio()
    frame = _frame_pattern()
    assert len(frame) == FRAME_SIZE
    fd = os.memfd_create('frame', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, frame)
        digest = hashlib.sha256(frame).hexdigest()
        _say(f'made a memfd "frame" and wrote {len(frame)} bytes (a 1024x1024 grey test image)')
        _say(f'sha256 of what I wrote: {digest}')

        conn = _connect(address)
        options = {
            'allow': GLib.Variant('as', [f'user:{VIEWER}']),
            'access': GLib.Variant('s', 'read-only'),
            'seal': GLib.Variant('b', True),
            'lifetime': GLib.Variant('s', 'persistent'),
            'description': GLib.Variant('s', 'demo frame'),
        }
        fds = Gio.UnixFDList.new()
        index = fds.append(fd)
        _say(f'calling Deposit("{FRAME}", fd, {{allow: [user:{VIEWER}], access: read-only, '
             'seal: true, lifetime: persistent, description: "demo frame"}) ...')
        try:
            conn.call_with_unix_fd_list_sync(
                BUS_NAME, OBJ_PATH, IFACE, 'Deposit',
                GLib.Variant('(sha{sv})', (FRAME, index, options)),
                None, Gio.DBusCallFlags.NONE, 30000, fds, None)
        except GLib.Error as err:
            _say(f'Deposit failed: {_remote_error(err)}')
            return 1
        _say('Deposit returned: the broker now holds the frame. I exit; the entry stays '
             '(lifetime persistent).')
        _result(sha256=digest)
        return 0
    finally:
        os.close(fd)


def role_viewer(address):
    import mmap
    Gio, GLib = _gio()
    conn = _connect(address)
    _say(f'calling Retrieve("{FRAME}", {{}}) ...')
    try:
        reply, out = conn.call_with_unix_fd_list_sync(
            BUS_NAME, OBJ_PATH, IFACE, 'Retrieve',
            GLib.Variant('(sa{sv})', (FRAME, {})),
            GLib.VariantType('(ha{sv})'), Gio.DBusCallFlags.NONE, 30000, None, None)
    except GLib.Error as err:
        _say(f'Retrieve failed: {_remote_error(err)}')
        return 1
    fds = out.steal_fds() if out is not None else []
    index, info = reply.unpack()
    fd = fds[index]
    for other in fds:
        if other != fd:
            os.close(other)
    try:
        shown = ', '.join(f'{k}={info[k]!r}' for k in
                          ('kind', 'size', 'owner-uid', 'access', 'sealed', 'lifetime', 'description')
                          if k in info)
        _say(f'got fd {fd}; the broker says: {shown}')

        size = os.fstat(fd).st_size
        with mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as view:
            digest = hashlib.sha256(view).hexdigest()
        _say(f'mapped its {size} bytes read-only; sha256: {digest}')

        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        mode = {os.O_RDONLY: 'O_RDONLY', os.O_WRONLY: 'O_WRONLY',
                os.O_RDWR: 'O_RDWR'}.get(flags & os.O_ACCMODE, '?')
        _say(f'fcntl(F_GETFL) says {mode}: this fd cannot write')
        try:
            os.pwrite(fd, b'x', 0)
            write_refused = False
            _say('  ... but pwrite() on it succeeded!')
        except OSError as err:
            write_refused = True
            _say(f'  pwrite() on it: {os.strerror(err.errno)}')

        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        _say(f'fcntl(F_GET_SEALS) says: {" ".join(_seal_names(seals))}')
        _say('  so nobody, the camera included, can change or resize these bytes any more')
        try:
            with mmap.mmap(fd, size, flags=mmap.MAP_SHARED,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE):
                pass
            _say('  a writable shared mapping: allowed!')
            map_refused = False
        except OSError as err:
            map_refused = True
            _say(f'  a writable shared mapping of it: {os.strerror(err.errno)}')
        _result(sha256=digest, mode=mode, seals=seals,
                write_refused=write_refused, map_refused=map_refused)
        return 0
    finally:
        os.close(fd)


def role_stranger(address):
    Gio, GLib = _gio()
    conn = _connect(address)
    _say(f'calling Retrieve("{FRAME}", {{}}) ...')
    outcome = {}
    try:
        conn.call_with_unix_fd_list_sync(
            BUS_NAME, OBJ_PATH, IFACE, 'Retrieve',
            GLib.Variant('(sa{sv})', (FRAME, {})),
            GLib.VariantType('(ha{sv})'), Gio.DBusCallFlags.NONE, 30000, None, None)
        _say('  got the frame: that should not happen!')
        outcome['retrieve'] = 'ok'
    except GLib.Error as err:
        _say(f'  refused: {_remote_error(err)}')
        outcome['retrieve'] = Gio.DBusError.get_remote_error(err)
    reply = conn.call_sync(BUS_NAME, OBJ_PATH, IFACE, 'List', GLib.Variant('(a{sv})', ({},)),
                           GLib.VariantType('(a(sa{sv}))'), Gio.DBusCallFlags.NONE, 30000, None)
    names = [name for name, _ in reply.unpack()[0]]
    _say(f'calling List({{}}): {names}')
    outcome['list'] = names
    _result(**outcome)
    return 0


ROLES = {'camera': role_camera, 'viewer': role_viewer, 'stranger': role_stranger}


# ---------------------------------------------------------------------------
# The demo itself, as root.

class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, bus, workdir):
        self.bus = bus
        self.workdir = workdir
        self.step_no = 0
        self.failures = []

    # -- output --------------------------------------------------------------

    def step(self, title):
        self.step_no += 1
        print(f'\n== {self.step_no}. {title}', flush=True)

    def say(self, text):
        print(f'   {text}', flush=True)

    def check(self, ok, what):
        if ok:
            self.say(f'ok: {what}')
        else:
            self.say(f'FAILED: {what}')
            self.failures.append(what)
        return ok

    def check_glib_output(self, output, who):
        """GLib programs run with G_DEBUG=fatal-criticals; a warning they
        print is a problem of the demo too."""
        bad = [line for line in output.decode(errors='replace').splitlines()
               if 'CRITICAL' in line or 'WARNING' in line]
        if bad:
            self.check(False, f'{who} printed a GLib warning: {bad[0]}')

    # -- acting as a user ----------------------------------------------------

    def run_as(self, user, role):
        """Run ROLE in a fresh python3 as USER; relay what it says; return
        its @result dict."""
        pw = pwd.getpwnam(user)
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/', 'LANG': 'C.UTF-8',
               'USER': user, 'LOGNAME': user, 'G_DEBUG': 'fatal-criticals'}
        with open(os.path.abspath(__file__), 'rb') as source:
            proc = subprocess.run(
                [sys.executable, '-', '--role', role, '--address', self.bus.address],
                stdin=source, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], env=env, cwd='/',
                timeout=120)
        result = None
        for line in proc.stdout.decode(errors='replace').splitlines():
            if line.startswith('@result '):
                result = json.loads(line[len('@result '):])
            else:
                print(f'   {user:>15} | {line}', flush=True)
        self.check_glib_output(proc.stdout, f'the {role} ({user})')
        if proc.returncode != 0 or result is None:
            raise DemoFailed(f'the {role} ({user}) did not finish its part '
                             f'(exit status {proc.returncode})')
        return result

    # -- shell commands --------------------------------------------------------

    def shell(self, shown, argv, stdin_path=None, expect_failure=False):
        """Print SHOWN as the user would type it on a real system, run ARGV
        (the same command pointed at the private bus), print its output."""
        print(f'\n   $ {shown}', flush=True)
        stdin = open(stdin_path, 'rb') if stdin_path else subprocess.DEVNULL
        try:
            proc = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60,
                                  env=dict(os.environ, G_DEBUG='fatal-criticals'))
        finally:
            if stdin_path:
                stdin.close()
        out = proc.stdout.decode(errors='replace').rstrip('\n')
        for line in out.splitlines() or ['(no output)']:
            print(f'     {line}', flush=True)
        self.check_glib_output(proc.stdout, f'`{argv[0]}`')
        failed = proc.returncode != 0
        if failed != expect_failure:
            what = 'failed' if failed else 'succeeded'
            self.check(False, f'`{shown}` {what} (exit status {proc.returncode})')
        return out

    def gdbus(self, method, args, stdin_path=None, redirect=''):
        shown = ('gdbus call --system --dest ' + BUS_NAME + ' --object-path ' + OBJ_PATH +
                 ' --method ' + IFACE + '.' + method + ' ' + ' '.join(shell_quote(a) for a in args))
        if redirect:
            shown += ' ' + redirect
        argv = ['gdbus', 'call', '--address', self.bus.address, '--dest', BUS_NAME,
                '--object-path', OBJ_PATH, '--method', f'{IFACE}.{method}', *args]
        return self.shell(shown, argv, stdin_path=stdin_path)

    def busctl(self, args, expect_failure=False):
        shown = 'busctl --system ' + ' '.join(shell_quote(a) for a in args)
        argv = ['busctl', f'--address={self.bus.address}', *args]
        return self.shell(shown, argv, expect_failure=expect_failure)

    def list_names(self):
        """The entry names root sees, via gdbus (quietly)."""
        proc = subprocess.run(
            ['gdbus', 'call', '--address', self.bus.address, '--dest', BUS_NAME,
             '--object-path', OBJ_PATH, '--method', f'{IFACE}.List', '{}'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if proc.returncode != 0:
            raise DemoFailed('List failed: ' + proc.stderr.decode(errors='replace'))
        return proc.stdout.decode()

    # -- the story ---------------------------------------------------------------

    def run(self):
        self.step('A private bus, with the broker on it')
        self.say('The demo started its own dbus-daemon, configured like the system bus and')
        self.say('with fdbroker\'s bus policy (data/org.fdbroker.Broker1.conf). The broker')
        self.say('is not running yet: the bus starts it from the build tree the first time')
        self.say('someone calls it (bus activation).')
        self.say(f'bus address: {self.bus.address}')

        self.step(f'The camera ({CAMERA}) deposits a frame')
        self.say('The camera fills a memfd (an anonymous file in memory) with a 1 MiB')
        self.say('picture and hands the fd to the broker under the name "demo/frame".')
        self.say(f'It lets {VIEWER} retrieve it, asks the broker to keep only a read-only')
        self.say('copy of the fd, to seal the memfd so its bytes can never change, and to')
        self.say('keep the entry after the camera has gone.')
        camera = self.run_as(CAMERA, 'camera')
        try:
            self.say(f'the broker is running now, as pid {self.bus.service_pid()}')
        except Exception as err:  # noqa: BLE001 - informational only
            self.say(f'(could not ask the bus for the broker\'s pid: {err})')

        self.step(f'The viewer ({VIEWER}) retrieves it')
        self.say('The viewer asks for "demo/frame" and gets its own fd for the same memory:')
        self.say('no byte was copied on the way, whatever the size of the buffer.')
        viewer = self.run_as(VIEWER, 'viewer')
        self.check(viewer['sha256'] == camera['sha256'],
                   'the viewer maps exactly the bytes the camera wrote (same sha256)')
        self.check(viewer['mode'] == 'O_RDONLY', 'the viewer\'s fd is read-only (F_GETFL)')
        self.check(viewer['write_refused'] and viewer['map_refused'],
                   'the viewer can neither write the fd nor map it writable')
        wanted = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
        self.check(viewer['seals'] & wanted == wanted,
                   'the memfd is sealed (SHRINK, GROW, WRITE, SEAL)')

        self.step(f'Anyone else ({STRANGER}) gets nothing')
        self.say(f'{STRANGER} is not in the entry\'s allow list. The broker answers as if the')
        self.say('entry did not exist: you cannot even learn its name.')
        stranger = self.run_as(STRANGER, 'stranger')
        self.check(stranger['retrieve'] == 'org.fdbroker.Error.NotFound',
                   f'{STRANGER} gets NotFound')
        self.check(FRAME not in stranger['list'], f'{STRANGER}\'s List does not show {FRAME}')

        self.step('The same from a shell: gdbus')
        self.say('gdbus passes an fd as \'handle N\': \'handle 0\' is its standard input.')
        self.say('On a real system you would type the commands as shown (--system); here')
        self.say('they run for real, with --address pointing at the private bus instead.')
        note = os.path.join(self.workdir, 'note.txt')
        with open(note, 'w') as f:
            f.write('hello from a file, handed over by fd\n')
        os.chmod(note, 0o644)

        self.gdbus('Deposit', ['demo/note', 'handle 0', '{}'], stdin_path=note,
                   redirect='< note.txt')
        self.say('With no options the entry lives as long as the depositor\'s bus connection:')
        self.say('gdbus has exited, so the broker has already dropped it.')
        deadline = time.monotonic() + 5
        while "'demo/note'" in self.list_names() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.check("'demo/note'" not in self.list_names(),
                   'demo/note went away with gdbus\'s connection')

        self.gdbus('Deposit', ['demo/note', 'handle 0', "{'lifetime': <'persistent'>}"],
                   stdin_path=note, redirect='< note.txt')
        self.say('This one stays. Retrieve prints only the index of the fd in the reply')
        self.say('(gdbus cannot do anything else with it), and what the broker knows:')
        out = self.gdbus('Retrieve', ['demo/note', '{}'])
        self.check(out.startswith('(handle 0,'), 'Retrieve answered with an fd')
        out = self.gdbus('List', ["{'prefix': <'demo/'>}"])
        self.check("'demo/frame'" in out and "'demo/note'" in out,
                   'List shows demo/frame and demo/note')

        self.step('The same from a shell: busctl')
        self.say('busctl (systemd 252) introspects, reads properties, lists and removes.')
        self.say('It cannot pass fds: for an \'h\' argument it answers "UNIX file descriptor')
        self.say('not supported as type.", and a returned fd is printed as a useless number.')
        self.busctl(['introspect', BUS_NAME, OBJ_PATH, IFACE])
        out = self.busctl(['get-property', BUS_NAME, OBJ_PATH, IFACE,
                           'Version', 'EntryCount', 'MaxEntries'])
        self.check(out.startswith('s "'), 'busctl reads the Version property')
        out = self.busctl(['call', BUS_NAME, OBJ_PATH, IFACE, 'List', 'a{sv}', '0'])
        self.check('demo/frame' in out, 'busctl List shows demo/frame')
        self.busctl(['call', BUS_NAME, OBJ_PATH, IFACE, 'Remove', 's', 'demo/note'])
        self.check("'demo/note'" not in self.list_names(), 'Remove took demo/note away')
        self.busctl(['call', BUS_NAME, OBJ_PATH, IFACE, 'Deposit', 'sha{sv}', 'demo/x', '0', '0'],
                    expect_failure=True)
        self.say('(that failure is busctl\'s, not the broker\'s: use gdbus or a program to pass fds)')


def shell_quote(arg):
    """Quote ARG for a shell the way a person would: GVariant text such as
    {'lifetime': <'persistent'>} reads better in double quotes."""
    if "'" in arg and not any(c in arg for c in '"$`\\!'):
        return '"' + arg + '"'
    return shlex.quote(arg)


def ensure_user(name):
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    subprocess.run(['useradd', '--system', '--no-create-home', '--user-group',
                    '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
                    '--comment', 'fdbroker demo user', name], check=True)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--build-dir', default='build',
                        help='the meson build directory (default: ./build)')
    parser.add_argument('--role', choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument('--address', help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role:
        return ROLES[args.role](args.address)

    if os.geteuid() != 0:
        print('demo.py: run as root: it creates two demo users and acts as them', file=sys.stderr)
        return 1

    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    service_binary = os.path.join(os.path.abspath(args.build_dir), 'service', 'fdbroker')
    if not os.access(service_binary, os.X_OK):
        print(f'demo.py: {service_binary} not found: build first (tools/demo.sh does)',
              file=sys.stderr)
        return 1
    sys.path.insert(0, os.path.join(source_dir, 'tests', 'integration'))
    from harness import PrivateBus

    print('fdbroker demo: a file descriptor handed from one user to another by the broker.')
    for user in (CAMERA, VIEWER):
        if ensure_user(user):
            print(f'(created system user {user})')

    with tempfile.TemporaryDirectory(prefix='fdbroker-demo-') as workdir:
        os.chmod(workdir, 0o755)
        with PrivateBus(service_binary, source_dir) as bus:
            demo = Demo(bus, workdir)
            try:
                demo.run()
            except DemoFailed as err:
                print(f'\n   FAILED: {err}')
                demo.failures.append(str(err))
            except BaseException:
                print_logs(bus)
                raise
            if demo.failures:
                # The logs live in the bus's work directory: show them before
                # leaving the with block, which deletes it.
                print_logs(bus)

    if demo.failures:
        n = len(demo.failures)
        print(f'\nThe demo FAILED ({n} problem{"s" if n != 1 else ""}):')
        for what in demo.failures:
            print(f'  - {what}')
        return 1
    print('\nDone: the viewer saw the camera\'s frame, read-only and sealed, and nobody else')
    print('did. The private bus and the broker have been stopped; the demo users stay')
    print(f'(remove them with: userdel {CAMERA}; userdel {VIEWER}).')
    return 0


def print_logs(bus):
    for title, read in (('fdbroker', getattr(bus, 'service_log', None)),
                        ('dbus-daemon', getattr(bus, 'daemon_log', None))):
        if read is None:
            continue
        try:
            text = read()
        except Exception as err:  # noqa: BLE001 - best effort, we are failing already
            text = f'(could not read it: {err})'
        print(f'\n--- {title} log ---')
        print(text.rstrip() or '(empty)')
    print('--- end of logs ---')


if __name__ == '__main__':
    sys.exit(main())
