# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbrokerctl's libc-only front (client/ctl-fast.c, issue 12).

FDBROKERCTL is the front, FDBROKERCTL_FULL the sd-bus tool it execs for
everything else, FDB_P2P_SERVER the sd-bus stand-in for the direct socket
(meson sets all three). Checks that:
- the front does not link libsystemd (the point of it);
- `retrieve` goes over the direct socket without the full tool (a copy of
  the front alone in a directory, where no fdbrokerctl-full is to be found,
  still retrieves), and sd-bus accepts its hand-marshalled call;
- its Retrieve call is a valid D-Bus message with the right header and body
  (parsed by GIO's GDBusMessage, an independent unmarshaller);
- everything else, and a socket that is absent or refuses us, reaches the
  full tool (its messages);
- an error reply prints what the full tool prints, byte for byte;
- hostile replies from a fake server (wrong signature, too many fds, fd
  index out of range, wrong serial, truncated, huge lengths, bad strings,
  another byte order) are refused with exit 1 and one line, COMMAND never
  runs, and fds that came with a dropped message do not reach COMMAND.
Each test has a directory of its own (`tmp`) and its own servers."""

import os
import select
import shutil
import socket
import struct
import subprocess
import threading

import harness
import pytest

SOURCE = harness.source_dir()
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
CTL = os.environ.get('FDBROKERCTL') or os.path.join(BUILD, 'client', 'fdbrokerctl')
FULL = os.environ.get('FDBROKERCTL_FULL') or os.path.join(BUILD, 'client', 'fdbrokerctl-full')
P2P_SERVER = os.environ.get('FDB_P2P_SERVER') or os.path.join(BUILD, 'tests', 'client', 'fdb-p2p-server')
NO_BUS = 'unix:path=/nonexistent/fdbtest-no-bus'


def env(tmp, **extra):
    e = dict(os.environ)
    for var in ('FDBROKER_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'DBUS_SESSION_BUS_ADDRESS', 'FDBROKER_SOCKET'):
        e.pop(var, None)
    e.update({'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8'})
    e.update(extra)
    return e


def run(ctl, args, tmp, timeout=60, **kw):
    kw.setdefault('stdin', subprocess.DEVNULL)
    return subprocess.run([ctl] + list(args), capture_output=True, timeout=timeout, env=env(tmp), cwd='/', **kw)


def one_line_failure(t, r, name, mentions=()):
    err = r.stderr.decode(errors='replace')
    good = (r.returncode == 1 and err.startswith('fdbrokerctl: ') and err.count('\n') == 1 and r.stdout == b''
            and all(m in err for m in mentions))
    return t.ok(good, name, {'rc': r.returncode, 'stderr': err, 'stdout': r.stdout.decode(errors='replace'),
                               'should_mention': list(mentions)})


# ---- D-Bus messages by hand, for the fake server ---------------------------------

def pad(b, n):
    return b + b'\0' * ((n - len(b) % n) % n)


def field(buf, code, sig, value):
    """Appends a header field to buf (offsets relative to the message: the
    fields start at 16, which is 8-aligned)."""
    buf = pad(buf, 8) + bytes([code, len(sig)]) + sig.encode() + b'\0'
    if sig in ('s', 'o'):
        v = value.encode() if isinstance(value, str) else value
        buf = pad(buf, 4) + struct.pack('<I', len(v)) + v + b'\0'
    elif sig == 'g':
        buf += bytes([len(value)]) + value.encode() + b'\0'
    elif sig == 'u':
        buf = pad(buf, 4) + struct.pack('<I', value)
    return buf


def message(mtype, fields, body, serial=7, endian=b'l', body_len=None, fields_len=None, raw=b''):
    """raw: bytes appended to the header fields as they are."""
    f = b''
    for code, sig, value in fields:
        f = field(f, code, sig, value)
    f = pad(f, 8) + raw if raw else f
    head = endian + bytes([mtype, 0, 1]) + struct.pack('<III', len(body) if body_len is None else body_len, serial,
                                                       len(f) if fields_len is None else fields_len)
    return pad(head + f, 8) + body


def retrieve_reply(n_fds=1, index=0, reply_serial=1, sig='ha{sv}', **kw):
    fields = [(5, 'u', reply_serial), (8, 'g', sig)]
    if n_fds is not None:
        fields.append((9, 'u', n_fds))
    return message(2, fields, struct.pack('<II', index, 0), **kw)


def error_reply(name, text, reply_serial=1):
    t = text.encode() if isinstance(text, str) else text
    return message(3, [(4, 's', name), (5, 'u', reply_serial), (8, 'g', 's')], struct.pack('<I', len(t)) + t + b'\0')


class FakeServer:
    """Accepts one connection on path, authenticates it like sd-bus, reads
    one call (kept in .call) and answers with what respond(conn) sends."""

    def __init__(self, path, respond, auth=b'OK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n'):
        self.path = path
        self.respond = respond
        self.auth = auth
        self.call = None
        self.auths = []  # what each connection sent before BEGIN, and BEGIN
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read(self, conn, data, n):
        while len(data) < n:
            chunk = conn.recv(65536)
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self):
        """Every connection until close(): a client that falls back to the
        full tool connects again."""
        self.sock.settimeout(60)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._serve_one(conn)

    def _serve_one(self, conn):
        conn.settimeout(60)
        try:
            data = b''
            while b'BEGIN\r\n' not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, data = data.split(b'BEGIN\r\n', 1)
            self.auths.append(head + b'BEGIN\r\n')
            # sd-bus (the full tool) sends AUTH EXTERNAL without an initial
            # response and then an empty DATA: a server asks for it first.
            asks = self.auth.startswith(b'OK') and head.startswith(b'\0AUTH EXTERNAL\r\n')
            conn.sendall((b'DATA\r\n' if asks else b'') + self.auth)
            if not self.auth.startswith(b'OK'):
                return
            data = self._read(conn, data, 16)
            body_len, _, fields_len = struct.unpack('<III', data[4:16])
            size = (16 + fields_len + 7) // 8 * 8 + body_len
            self.call = self._read(conn, data, size)[:size]
            self.respond(conn)
            # Until the client goes, so that its reads do not end early.
            while conn.recv(4096):
                pass
        except (OSError, EOFError):
            pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.sock.close()
        self.thread.join(60)


def pipe_with(data):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def send_with_fds(conn, data, fds):
    socket.send_fds(conn, [data], fds)
    for fd in fds:
        os.close(fd)


# ---- the tests ------------------------------------------------------------------

@pytest.fixture(autouse=True)
def built(environment):
    """As the TAP version: where the harness cannot run (no gi, no
    dbus-daemon, no service), nothing runs; nor without both tools."""
    for exe in (CTL, FULL):
        if not os.access(exe, os.X_OK):
            pytest.skip('%s not built' % exe)


def lone_copy(tmp):
    """The front alone in a directory: it can find no fdbrokerctl-full next
    to it, and the installed one does not exist in a build tree."""
    d = os.path.join(tmp, 'lone')
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'fdbrokerctl')
    shutil.copy(CTL, path)
    return path


def full_path():
    """$libexecdir/fdbrokerctl-full from config.h, to know whether it exists."""
    try:
        with open(os.path.join(BUILD, 'config.h')) as f:
            for line in f:
                if 'FDBROKERCTL_FULL_PATH' in line:
                    return line.split('"')[1]
    except OSError:
        pass
    return None


@pytest.fixture
def p2p(tmp):
    """(a lone copy of the front, the socket, the server's log) with
    fdb-p2p-server serving p2p:x ("fast\n") on the socket."""
    if not os.access(P2P_SERVER, os.X_OK):
        pytest.skip('%s not built' % P2P_SERVER)
    installed = full_path()
    if installed is None or os.path.exists(installed):
        pytest.skip('an installed fdbrokerctl-full (%s) would serve a lone copy of the front' % installed)
    lone = lone_copy(tmp)
    sock = os.path.join(tmp, 'p2p.sock')
    log = os.path.join(tmp, 'p2p.log')
    data = os.path.join(tmp, 'p2p.txt')
    with open(data, 'w') as f:
        f.write('fast\n')
    server = subprocess.Popen([P2P_SERVER, sock, log, 'p2p:x', data], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        if server.stdout.readline().strip() != b'ready':
            pytest.skip('fdb-p2p-server did not start')
        yield lone, sock, log
    finally:
        server.terminate()
        server.wait(20)
        server.stdout.close()


@pytest.fixture
def gio():
    try:
        import gi
        gi.require_version('Gio', '2.0')
        from gi.repository import Gio
    except (ImportError, ValueError) as e:
        pytest.skip('python3-gi not available: %s' % e)
    return Gio


def test_the_front_links_libc_alone(t):
    readelf = shutil.which('readelf')
    if not readelf:
        pytest.skip('readelf not installed (binutils)')
    r = subprocess.run([readelf, '-d', CTL], capture_output=True, text=True)
    needed = [line.split('[')[1].rstrip(']') for line in r.stdout.splitlines() if '(NEEDED)' in line]
    # A sanitizer build adds its runtimes (and what they pull in); those are
    # the build's, not the front's: libc aside, nothing else may appear.
    sanitizer = ('libasan.so', 'libubsan.so', 'libstdc++.so', 'libm.so', 'libgcc_s.so')
    t.ok(needed and any(n.startswith('libc.so') for n in needed)
         and all(n.startswith(('libc.so',) + sanitizer) for n in needed),
         'the front links libc alone (no libsystemd to load and relocate)', {'needed': needed})


def test_a_lone_front_retrieves_over_the_direct_socket_with_one_call_per_command(t, p2p, tmp):
    lone, sock, log = p2p
    r = run(lone, ['--socket', sock, 'retrieve', 'p2p:x', '--', 'sh', '-c',
                   'cat <&3; echo "$LISTEN_FDS $LISTEN_FDNAMES $LISTEN_PID $$"'], tmp)
    out = r.stdout.decode(errors='replace').split('\n')
    pids = out[1].split()[2:] if len(out) > 1 else []
    t.ok(r.returncode == 0 and r.stderr == b'' and out[0] == 'fast' and out[1].startswith('1 p2p_x ')
         and len(pids) == 2 and pids[0] == pids[1],
         'retrieve with no fdbrokerctl-full to be found: fd 3, LISTEN_FDS=1, LISTEN_FDNAMES with _ for :, '
         'LISTEN_PID is COMMAND', {'rc': r.returncode, 'stdout': out, 'stderr': r.stderr})
    r = run(lone, ['--socket', sock, 'retrieve', 'p2p:x', '--read-only', '--reopen', '--wait=1.5', '--',
                   'cat', '/dev/fd/3'], tmp)
    t.eq((r.returncode, r.stdout, r.stderr), (0, b'fast\n', b''),
         'sd-bus accepts the hand-marshalled call with every option (s, b and t variants)')
    with open(log) as f:
        t.eq(f.read().splitlines(), ['call Retrieve', 'call Retrieve'],
             'the server saw one Retrieve per command and nothing else')


def test_an_error_reply_exits_1_with_the_full_tools_message(t, p2p, tmp):
    lone, sock, _ = p2p
    r = run(lone, ['--socket', sock, 'retrieve', 'p2p:nope', '--', 'true'], tmp)
    r_full = run(FULL, ['--socket', sock, 'retrieve', 'p2p:nope', '--', 'true'], tmp)
    t.ok(r.returncode == 1 and (r.returncode, r.stdout, r.stderr) ==
         (r_full.returncode, r_full.stdout, r_full.stderr),
         'an error reply: exit 1 and the same message as the full tool',
         {'front': [r.returncode, r.stderr], 'full': [r_full.returncode, r_full.stderr]})


def test_a_command_that_cannot_be_found_exits_127_with_the_full_tools_message(t, p2p, tmp):
    lone, sock, _ = p2p
    r = run(lone, ['--socket', sock, 'retrieve', 'p2p:x', '--', os.path.join(tmp, 'no-such-command')], tmp)
    r_full = run(FULL, ['--socket', sock, 'retrieve', 'p2p:x', '--', os.path.join(tmp, 'no-such-command')], tmp)
    t.ok(r.returncode == 127 and (r.returncode, r.stderr) == (r_full.returncode, r_full.stderr),
         'a COMMAND that cannot be found: 127 and the full tool\'s message',
         {'front': [r.returncode, r.stderr], 'full': [r_full.returncode, r_full.stderr]})


# Everything else is the full tool's: the lone copy cannot run it.
NOT_FAST = [
    ('list', ['--socket', 'SOCK', 'list']),
    ('cat', ['--socket', 'SOCK', 'cat', 'p2p:x']),
    ('help', ['--help']),
    ('unknown-option', ['--socket', 'SOCK', 'retrieve', 'p2p:x', '--bogus', '--', 'true']),
    ('wait-301', ['--socket', 'SOCK', 'retrieve', 'p2p:x', '--wait', '301', '--', 'true']),
    ('system-and-user', ['--system', '--user', '--socket', 'SOCK', 'retrieve', 'p2p:x', '--', 'true']),
]


@pytest.mark.parametrize('args', [a for _, a in NOT_FAST], ids=[i for i, _ in NOT_FAST])
def test_anything_but_a_plain_retrieve_runs_the_full_tool(t, p2p, tmp, args):
    lone, sock, _ = p2p
    args = [sock if a == 'SOCK' else a for a in args]
    r = run(lone, args, tmp)
    one_line_failure(t, r, 'not the fast path, so the full tool runs: %s' % ' '.join(args[-4:]),
                     ['cannot run', 'fdbrokerctl-full'])


@pytest.mark.parametrize('which', ['front', 'lone'])
def test_with_no_direct_socket_the_full_tool_takes_over(t, tmp, which):
    absent = os.path.join(tmp, 'absent.sock')
    ctl, name = (CTL, 'the front') if which == 'front' else (lone_copy(tmp), 'a lone front')
    r = run(ctl, ['--socket', absent, '--address', NO_BUS, 'retrieve', 'x', '--', 'true'], tmp)
    expect = ['cannot connect to the bus', NO_BUS] if ctl == CTL else ['cannot run', 'fdbrokerctl-full']
    one_line_failure(t, r, '%s with no direct socket: the full tool takes over' % name, expect)


def test_a_socket_that_rejects_the_authentication_gets_no_call_and_the_full_tool_takes_over(t, tmp):
    # Nothing was asked, the full tool takes over (and is refused too, then
    # tries the bus).
    sock = os.path.join(tmp, 'refusing.sock')
    server = FakeServer(sock, lambda c: None, auth=b'REJECTED EXTERNAL\r\n')
    try:
        r = run(CTL, ['--socket', sock, '--address', NO_BUS, 'retrieve', 'x', '--', 'true'], tmp)
        one_line_failure(t, r, 'a socket that rejects the authentication: the full tool takes over',
                         ['cannot connect to the bus', NO_BUS])
        auths = server.auths
        t.ok(server.call is None and len(auths) == 2 and auths[0].startswith(b'\0AUTH EXTERNAL 3') and
             auths[1].startswith(b'\0AUTH EXTERNAL\r\nDATA'),
             'no call was sent to a socket that rejected us; the full tool tried it again (sd-bus\'s AUTH)',
             {'auths': auths})
    finally:
        server.close()


def test_the_retrieve_call_is_a_valid_dbus_message_with_every_option(t, tmp, gio):
    sock = os.path.join(tmp, 'marshal.sock')
    data = pipe_with(b'x')
    s = FakeServer(sock, lambda c: send_with_fds(c, retrieve_reply(), [data]))
    try:
        r = run(CTL, ['--socket', sock, 'retrieve', 'm/n:1', '--read-only', '--reopen', '--wait', '2.5', '--',
                      'true'], tmp)
        t.eq((r.returncode, r.stderr), (0, b''), 'a reply from the fake server is accepted')
        uid = str(os.geteuid()).encode().hex().encode()
        t.eq(s.auths[0] if s.auths else None, b'\0AUTH EXTERNAL ' + uid + b'\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n',
             'authentication: EXTERNAL with the uid, unix fds, BEGIN')
        m = gio.DBusMessage.new_from_blob(s.call or b'\0' * 16, gio.DBusCapabilityFlags.UNIX_FD_PASSING)
        got = (m.get_message_type(), m.get_path(), m.get_interface(), m.get_member(), m.get_signature(),
               m.get_destination(), m.get_serial(), m.get_body().unpack() if m.get_body() else None)
        t.eq(got, (gio.DBusMessageType.METHOD_CALL, '/org/fdbroker/Broker1', 'org.fdbroker.Broker1', 'Retrieve',
                   'sa{sv}', None, 1, ('m/n:1', {'access': 'read-only', 'reopen': True, 'wait-usec': 2500000})),
             'the call, as GIO unmarshals it: path, interface, member, signature, body with every option')
    finally:
        s.close()


def test_without_options_the_call_carries_an_empty_dict(t, tmp, gio):
    sock = os.path.join(tmp, 'marshal.sock')
    s = FakeServer(sock, lambda c: send_with_fds(c, retrieve_reply(), [pipe_with(b'x')]))
    try:
        run(CTL, ['--socket', sock, 'retrieve', 'n', '--', 'true'], tmp)
        m = gio.DBusMessage.new_from_blob(s.call or b'\0' * 16, gio.DBusCapabilityFlags.UNIX_FD_PASSING)
        t.eq(m.get_body().unpack() if m.get_body() else None, ('n', {}), 'without options: an empty a{sv}')
    finally:
        s.close()


def hostile_cases():
    """(name, respond(conn), words of the message)"""
    bad = ['not understood']
    return [
        ('a reply with signature "s" and no fd',
         lambda c: c.sendall(message(2, [(5, 'u', 1), (8, 'g', 's')], struct.pack('<I', 2) + b'hi\0')), bad),
        ('a reply with signature "h" alone',
         lambda c: send_with_fds(c, retrieve_reply(sig='h'), [pipe_with(b'x')]), bad),
        ('a reply that declares one fd and sends none', lambda c: c.sendall(retrieve_reply()), bad),
        ('a reply that sends an fd and declares none',
         lambda c: send_with_fds(c, retrieve_reply(n_fds=None), [pipe_with(b'x')]), bad),
        ('a reply with two fds', lambda c: send_with_fds(c, retrieve_reply(n_fds=2), [pipe_with(b'x'), pipe_with(b'y')]),
         bad),
        ('a reply with 20 fds (more than a call may carry)',
         lambda c: send_with_fds(c, retrieve_reply(n_fds=20), [pipe_with(b'x') for _ in range(20)]), bad),
        ('a reply whose fd index is out of range',
         lambda c: send_with_fds(c, retrieve_reply(index=5), [pipe_with(b'x')]), bad),
        ('a reply to another serial', lambda c: send_with_fds(c, retrieve_reply(reply_serial=9), [pipe_with(b'x')]),
         bad),
        ('a reply in the other byte order',
         lambda c: send_with_fds(c, retrieve_reply(endian=b'B'), [pipe_with(b'x')]), bad),
        ('a body length of 4 GiB', lambda c: c.sendall(retrieve_reply(body_len=0xffffffff)), bad),
        ('a header field length of 4 GiB', lambda c: c.sendall(retrieve_reply(fields_len=0xfffffff0)), bad),
        ('a header field whose string length runs past the header',
         lambda c: c.sendall(message(3, [(5, 'u', 1)], b'', raw=bytes([4, 1]) + b's\0' + struct.pack('<I', 1000) +
                                     b'org.x.E\0')), bad),
        ('an error name with a NUL inside',
         lambda c: c.sendall(message(3, [(4, 's', b'org.x\0E'), (5, 'u', 1)], b'')), bad),
        ('an error without a name', lambda c: c.sendall(message(3, [(5, 'u', 1)], b'')), bad),
        ('a header field of a container type',
         lambda c: c.sendall(message(2, [(5, 'u', 1)], b'', raw=bytes([12, 2]) + b'ai\0\0' + struct.pack('<I', 0))),
         bad),
        ('a reply cut in the middle, then the connection closed',
         lambda c: (c.sendall(retrieve_reply()[:20]), c.shutdown(socket.SHUT_RDWR)), ['lost the connection']),
        ('the connection closed after the authentication', lambda c: c.shutdown(socket.SHUT_RDWR),
         ['lost the connection']),
    ]


HOSTILE = hostile_cases()


@pytest.mark.parametrize('name, respond, words', HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_reply_is_refused_in_one_line_and_command_does_not_run(t, tmp, name, respond, words):
    sock = os.path.join(tmp, 'hostile.sock')
    marker = os.path.join(tmp, 'command-ran')
    s = FakeServer(sock, respond)
    try:
        r = run(CTL, ['--socket', sock, '--address', NO_BUS, 'retrieve', 'x', '--', 'touch', marker], tmp)
    finally:
        s.close()
    ran = os.path.exists(marker)
    one_line_failure(t, r, 'refused: %s' % name, words)
    t.ok(not ran and s.call is not None, '... and COMMAND did not run (the call was sent)')


ERROR_WORDS = [('org.freedesktop.DBus.Error.UnknownMethod', 'Unknown method Retrieve'),
               ('org.freedesktop.DBus.Error.ServiceUnknown', 'no such service'),
               ('org.fdbroker.Error.QuotaExceeded', 'uid 0 already holds 16 direct connections')]


@pytest.mark.parametrize('name, text', ERROR_WORDS, ids=[n.rsplit('.', 1)[1] for n, _ in ERROR_WORDS])
def test_an_error_the_full_tool_words_itself_reads_the_same_from_the_front(t, tmp, name, text):
    sock = os.path.join(tmp, 'errors.sock')
    got = []
    for ctl in (CTL, FULL):
        s = FakeServer(sock, lambda c: c.sendall(error_reply(name, text)))
        try:
            r = run(ctl, ['--socket', sock, 'retrieve', 'x', '--', 'true'], tmp)
        finally:
            s.close()
        got.append((r.returncode, r.stdout, r.stderr.decode(errors='replace')))
    t.ok(got[0] == got[1] and got[0][0] == 1 and text in got[0][2],
         '%s: the same status and message as the full tool' % name.rsplit('.', 1)[1],
         {'front': got[0], 'full': got[1]})


def test_the_fds_of_a_signal_before_the_reply_are_closed_before_command_runs(t, tmp):
    """A signal with fds before the reply: dropped, and its fds (the write
    end of a pipe we watch) are closed before COMMAND runs."""
    sock = os.path.join(tmp, 'signal.sock')
    probe_r, probe_w = os.pipe()

    def respond(c):
        sig = message(4, [(1, 'o', '/x'), (2, 's', 'org.x'), (3, 's', 'S'), (8, 'g', 'h'), (9, 'u', 1)],
                      struct.pack('<I', 0))
        send_with_fds(c, sig, [os.dup(probe_w)])
        send_with_fds(c, retrieve_reply(), [pipe_with(b'reply\n')])
    s = FakeServer(sock, respond)
    p = None
    try:
        p = subprocess.Popen([CTL, '--socket', sock, 'retrieve', 'x', '--', 'sh', '-c', 'cat <&3; read x'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(tmp),
                             cwd='/')
        line = p.stdout.readline()
        os.close(probe_w)
        probe_w = -1
        # Every copy of the write end is closed while COMMAND still runs.
        ready = select.select([probe_r], [], [], 30)[0]
        eof = bool(ready) and os.read(probe_r, 1) == b''
        alive = p.poll() is None
        t.ok(line == b'reply\n' and eof and alive,
             'a signal before the reply is skipped; its fd is not held while COMMAND runs',
             {'line': line, 'eof': eof, 'command_alive': alive})
        p.stdin.write(b'\n')
        p.stdin.close()
        t.eq(p.wait(30), 0, 'COMMAND\'s status is the exit status')
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        if p:
            p.stdout.close()
            p.stderr.close()
        if probe_w >= 0:
            os.close(probe_w)
        os.close(probe_r)
        s.close()
