# SPDX-License-Identifier: LGPL-2.1-or-later
"""A D-Bus client on a bare socket, for attacks no library would make.

Messages are marshalled by Gio.DBusMessage (to_blob / new_from_blob); the
socket, the SASL handshake and what is read when are ours. As a program
(run as the attacking user) it takes commands on stdin, one JSON per line,
and answers one JSON line each:

    {"op": "flood", "name": N, "count": C}   send C Retrieve(N) calls, read nothing
    {"op": "drain"}                          read what is there now: counts
    {"op": "call", ...}                      one call, its answer read (see op_call)
    EOF                                      exit (closing the connection)
"""

import array
import json
import os
import select
import socket
import subprocess
import sys
import time

import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = 'org.fdbroker.Broker1'
OBJ_PATH = '/org/fdbroker/Broker1'
IFACE = 'org.fdbroker.Broker1'
CAPS = Gio.DBusCapabilityFlags.UNIX_FD_PASSING
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable


class RawBus:
    """direct: address is the broker's own socket (SPEC 5): no Hello, no
    destination on calls."""

    def __init__(self, address, direct=False):
        assert address.startswith('unix:path=')
        self.direct = direct
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address[len('unix:path='):].split(',')[0])
        self.serial = 0
        self.buf = b''
        self.fds = []           # fds received and not yet closed
        self.n_fds = 0          # fds received in all
        self._auth()
        if direct:
            self.unique_name = None
            return
        reply = self.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello')
        self.unique_name = reply.get_body().unpack()[0]

    def _auth(self):
        self.sock.sendall(b'\0AUTH EXTERNAL ' + str(os.geteuid()).encode().hex().encode() + b'\r\n')
        if not self._line().startswith(b'OK'):
            raise RuntimeError('EXTERNAL authentication refused')
        self.sock.sendall(b'NEGOTIATE_UNIX_FD\r\n')
        if not self._line().startswith(b'AGREE_UNIX_FD'):
            raise RuntimeError('the bus does not pass fds')
        self.sock.sendall(b'BEGIN\r\n')

    def _line(self):
        while b'\r\n' not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise RuntimeError('bus closed the connection during authentication')
            self.buf += d
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def message(self, dest, path, iface, member, sig=None, args=None):
        m = Gio.DBusMessage.new_method_call(None if self.direct else dest, path, iface, member)
        if sig:
            m.set_body(GLib.Variant(sig, args))
        self.serial += 1
        m.set_serial(self.serial)
        return m.to_blob(CAPS)

    def send(self, blob, fds=(), timeout=None):
        self.sock.settimeout(timeout)
        try:
            if fds:
                self.sock.sendmsg([blob], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
            else:
                self.sock.sendall(blob)
        finally:
            self.sock.settimeout(None)

    def _recv_some(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        data, anc, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(253 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array('i')
                got.frombytes(payload[:len(payload) - len(payload) % 4])
                self.fds.extend(got)
                self.n_fds += len(got)
        if not data:
            raise EOFError('the bus closed the connection')
        self.buf += data
        return True

    def next_message(self, timeout):
        """The next whole message, or None when none came within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 16:
                need = Gio.DBusMessage.bytes_needed(self.buf[:16])
                if len(self.buf) >= need:
                    blob, self.buf = self.buf[:need], self.buf[need:]
                    return Gio.DBusMessage.new_from_blob(blob, CAPS)
            left = deadline - time.monotonic()
            if left <= 0 or not self._recv_some(left):
                return None

    def call(self, dest, path, iface, member, sig=None, args=None, fds=(), timeout=30):
        blob = self.message(dest, path, iface, member, sig, args)
        serial = self.serial
        self.send(blob, fds)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.next_message(deadline - time.monotonic())
            if m is None:
                break
            if m.get_reply_serial() == serial:
                return m
        raise TimeoutError('no reply to %s' % member)

    def close_fds(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def op_flood(bus, req):
    blobs = [bus.message(BUS_NAME, OBJ_PATH, IFACE, 'Retrieve', '(sa{sv})', (req['name'], {}))
             for _ in range(req['count'])]
    sent = 0
    t0 = time.monotonic()
    try:
        for b in blobs:
            bus.send(b, timeout=10)
            sent += 1
    except (socket.timeout, OSError) as e:
        return {'sent': sent, 'stopped': str(e), 'usec': int((time.monotonic() - t0) * 1e6)}
    return {'sent': sent, 'usec': int((time.monotonic() - t0) * 1e6)}


def op_drain(bus, req):
    """Reads for `seconds` (default 1): what had been waiting for us."""
    counts = {'returns': 0, 'errors': {}, 'calls_to_us': {}, 'fds': 0}
    before = bus.n_fds
    deadline = time.monotonic() + req.get('seconds', 1.0)
    while True:
        m = bus.next_message(max(0.0, deadline - time.monotonic()))
        if m is None:
            break
        t = m.get_message_type()
        if t == Gio.DBusMessageType.METHOD_RETURN:
            counts['returns'] += 1
        elif t == Gio.DBusMessageType.ERROR:
            counts['errors'][m.get_error_name()] = counts['errors'].get(m.get_error_name(), 0) + 1
        elif t == Gio.DBusMessageType.METHOD_CALL:
            k = '%s.%s' % (m.get_interface(), m.get_member())
            counts['calls_to_us'][k] = counts['calls_to_us'].get(k, 0) + 1
    counts['fds'] = bus.n_fds - before
    bus.close_fds()
    return counts


def op_call(bus, req):
    """One call to the broker: req['member'], req['sig'], req['args'] (JSON,
    handles as numbers; req['opts'] appended as an a{sv}), the fds listed in req['fds'] ('memfd' makes one,
    'bus' is this very connection's socket) sent with it. The answer: ok or
    the error."""
    fds, made = [], []
    for what in req.get('fds', []):
        if what == 'bus':
            fds.append(bus.sock.fileno())
        else:
            fd = os.memfd_create('rawbus', os.MFD_CLOEXEC)
            os.write(fd, b'rawbus')
            fds.append(fd)
            made.append(fd)
    m = Gio.DBusMessage.new_method_call(None if bus.direct else BUS_NAME, OBJ_PATH, IFACE, req['member'])
    args = list(req['args'])
    if 'opts' in req:  # a trailing a{sv}: {key: [signature, value]}
        args.append({k: GLib.Variant(v[0], v[1]) for k, v in req['opts'].items()})
    m.set_body(GLib.Variant(req['sig'], tuple(args)))
    if fds:
        fdlist = Gio.UnixFDList.new()
        for fd in fds:
            fdlist.append(fd)  # a duplicate, closed with the list
        m.set_unix_fd_list(fdlist)
    bus.serial += 1
    m.set_serial(bus.serial)
    serial = bus.serial
    try:
        bus.send(m.to_blob(CAPS), fds)
    finally:
        for fd in made:
            os.close(fd)
    deadline = time.monotonic() + req.get('timeout', 30)
    while time.monotonic() < deadline:
        r = bus.next_message(deadline - time.monotonic())
        if r is None:
            break
        if r.get_reply_serial() == serial:
            bus.close_fds()
            if r.get_message_type() == Gio.DBusMessageType.ERROR:
                body = r.get_body()
                return {'ok': False, 'error': r.get_error_name(),
                        'message': body.unpack()[0] if body is not None else ''}
            return {'ok': True}
    return {'ok': False, 'error': 'timeout'}


def _readable_copy(bus):
    """This file, copied where every test user can read it: the checkout may
    sit in a directory they cannot enter (/root), as the client scripts do
    (harness._copy_client_scripts)."""
    d = os.path.join(bus.tmp, 'rawlib')
    path = os.path.join(d, 'rawbus.py')
    if not os.path.exists(path):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        with open(os.path.abspath(__file__), 'rb') as src, open(path + '.new', 'wb') as dst:
            dst.write(src.read())
        os.chmod(path + '.new', 0o644)
        os.rename(path + '.new', path)
    return path


class RawClient:
    """This file run as a program by user (a dict of harness.ensure_test_users()),
    driven by JSON lines: for tests."""

    def __init__(self, bus, user, direct=False):
        """direct: connect to bus.direct_socket instead of the bus."""
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/', 'LANG': 'C.UTF-8'}
        args = ['unix:path=' + bus.direct_socket, 'direct'] if direct else [bus.address]
        self.proc = subprocess.Popen([PYTHON, _readable_copy(bus)] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd='/',
                                     user=user['uid'], group=user['gid'], extra_groups=user['groups'])
        hello = self._read(60)
        if not hello.get('ready'):
            raise RuntimeError('raw client could not connect: %r' % hello)
        self.unique_name = hello['unique_name']

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise RuntimeError('raw client: no answer within %ss' % timeout)
        return json.loads(self.proc.stdout.readline() or b'{"exited": true}')

    def req(self, timeout=120, **kw):
        self.proc.stdin.write((json.dumps(kw) + '\n').encode())
        self.proc.stdin.flush()
        return self._read(timeout)

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def main():
    bus = RawBus(sys.argv[1], direct=sys.argv[2:] == ['direct'])
    print(json.dumps({'ready': True, 'unique_name': bus.unique_name, 'uid': os.geteuid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            out = {'flood': op_flood, 'drain': op_drain, 'call': op_call}[req['op']](bus, req)
        except Exception as e:  # noqa: BLE001
            out = {'exception': '%s: %s' % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
