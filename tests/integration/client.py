#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A bus client that acts for one test user.

The test process starts it as a subprocess with the user's uid and groups
(never by forking a process that already holds a GDBusConnection) and talks
to it over stdin/stdout, one JSON object per line each way:

    client.py ADDRESS

It connects to ADDRESS, prints {"ready": true, ...}, then answers each
request line with one result line. A request is {"op": NAME, ...}; see OPS
below. Calls answer {"ok": true, ...} or {"ok": false, "error": DBUS_ERROR,
"message": TEXT}. fds it receives are measured (fdutil.fd_facts) and closed,
unless the request says "keep": HANDLE, in which case later requests can use
the fd by that handle. Option dictionaries come typed: {"key": [SIG, VALUE]}.
The process lives as long as its stdin is open, so it also serves tests of
connection lifetime and of parked wait-usec calls ("async" + "await").

FDBTEST_TRANSPORT picks how calls reach the broker (SPEC §5): "bus" (the
default), "direct-socket" (a peer-to-peer connection to the listening
socket FDBTEST_DIRECT_SOCKET) or "open-connection" (OpenConnection on the
bus, then the returned socket). Direct connections have no destination.
"""

import json
import os
import re
import sys
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fdutil  # noqa: E402

import gi  # noqa: E402
gi.require_version('Gio', '2.0')
gi.require_version('GLib', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = 'org.fdbroker.Broker1'
OBJ_PATH = '/org/fdbroker/Broker1'
IFACE = 'org.fdbroker.Broker1'
DEFAULT_TIMEOUT_MS = 60000

_REMOTE = re.compile(r'^GDBus\.Error:([^:\s]+):\s?(.*)$', re.S)


def error_result(e):
    if isinstance(e, GLib.Error):
        m = _REMOTE.match(e.message or '')
        if m:
            return {'ok': False, 'error': m.group(1), 'message': m.group(2)}
        name = Gio.DBusError.get_remote_error(e)
        if name:
            return {'ok': False, 'error': name, 'message': e.message}
        return {'ok': False, 'error': 'local:%s:%d' % (e.domain, e.code), 'message': e.message}
    return {'ok': False, 'error': 'local:' + type(e).__name__, 'message': str(e)}


def to_variant(sig, value):
    return GLib.Variant(sig, value)


def typed_dict(d):
    """{"key": [SIG, VALUE]} -> {key: GLib.Variant}"""
    return {k: to_variant(sig, v) for k, (sig, v) in (d or {}).items()}


def variant_to_json(v):
    return v.unpack()


def info_to_json(info_variant):
    """a{sv} -> (values, types)"""
    values, types = {}, {}
    for i in range(info_variant.n_children()):
        entry = info_variant.get_child_value(i)
        key = entry.get_child_value(0).get_string()
        val = entry.get_child_value(1).get_variant()
        types[key] = val.get_type_string()
        values[key] = val.unpack()
    return values, types


def bus_connect(address):
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    conn.set_exit_on_close(False)
    return conn


def direct_handshake(conn):
    """One round trip (Peer.Ping, no fds) before anything else, as the
    library does: sd-bus on the broker's side closes a connection whose fds
    arrive in the same read as the BEGIN line (docs/behaviour.md, "Direct
    connections: the first call")."""
    conn.call_sync(None, OBJ_PATH, 'org.freedesktop.DBus.Peer', 'Ping', None, None,
                   Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, None)
    return conn


def direct_connect_socket(path):
    """A peer-to-peer connection to the broker's listening socket."""
    conn = Gio.DBusConnection.new_for_address_sync(
        'unix:path=' + path, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
    conn.set_exit_on_close(False)
    return direct_handshake(conn)


def open_connection(bus_conn, options=None):
    """OpenConnection on bus_conn; returns the socket fd (ours)."""
    reply, out = bus_conn.call_with_unix_fd_list_sync(
        BUS_NAME, OBJ_PATH, IFACE, 'OpenConnection', GLib.Variant('(a{sv})', (options or {},)),
        GLib.VariantType.new('(h)'), Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, None, None)
    fds = list(out.steal_fds()) if out is not None else []
    idx = reply.get_child_value(0).get_handle()
    fd = fds.pop(idx)
    for x in fds:
        os.close(x)
    return fd


def direct_connect_fd(fd):
    """A peer-to-peer connection over fd (consumed)."""
    sock = Gio.Socket.new_from_fd(fd)
    stream = sock.connection_factory_create_connection()
    conn = Gio.DBusConnection.new_sync(stream, None, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
    conn.set_exit_on_close(False)
    return direct_handshake(conn)


class Client:
    def __init__(self, address):
        self.address = address
        self.scratch = os.environ.get('FDBTEST_SCRATCH', '/tmp')
        self.transport = os.environ.get('FDBTEST_TRANSPORT') or 'bus'
        self.direct_socket = os.environ.get('FDBTEST_DIRECT_SOCKET')
        self.bus_conn = None
        self.dest = BUS_NAME
        self.directs = []     # extra direct connections (op_direct_open)
        self.conn = self.new_conn()
        self.unique_name = (self.conn.get_unique_name()
                            or (self.bus_conn.get_unique_name() if self.bus_conn else None))
        self.handles = {}     # name -> fd
        self.maps = {}        # name -> mmap
        self.pending = {}     # tag -> result or None
        self.ctx = GLib.MainContext.default()

    def new_conn(self):
        """A new connection of this client's transport."""
        if self.transport == 'bus':
            return bus_connect(self.address)
        self.dest = None
        if self.transport == 'direct-socket':
            return direct_connect_socket(self.direct_socket)
        if self.transport == 'open-connection':
            if self.bus_conn is None:
                self.bus_conn = bus_connect(self.address)
            return direct_connect_fd(open_connection(self.bus_conn))
        raise ValueError('unknown FDBTEST_TRANSPORT %r' % self.transport)

    # -- fds ---------------------------------------------------------------

    def fd_from(self, spec, to_close):
        """An fd for a request: {"handle": H} borrows a kept fd, anything
        else is made from the spec and closed after the call."""
        if 'handle' in spec:
            return self.handles[spec['handle']], {}
        fd, facts, keep = fdutil.make_fd(spec, self.scratch)
        to_close.append(fd)
        to_close.extend(keep)
        return fd, facts

    def take_fds(self, out_fd_list):
        if out_fd_list is None:
            return []
        return list(out_fd_list.steal_fds())

    def consume(self, fd, req, key=None):
        """Measure a received fd, then keep it under a handle or close it."""
        facts = fdutil.fd_facts(fd, read=req.get('read', True))
        keep = req.get('keep')
        if keep is not None:
            h = keep if key is None else '%s%s' % (keep, key)
            if h in self.handles:
                os.close(self.handles[h])
            self.handles[h] = fd
        else:
            os.close(fd)
        return facts

    # -- calls -------------------------------------------------------------

    def call(self, method, sig, args, fds=(), reply_sig=None, timeout_ms=DEFAULT_TIMEOUT_MS,
             iface=IFACE, flags=Gio.DBusCallFlags.NONE):
        fdlist = None
        if fds:
            fdlist = Gio.UnixFDList.new()
            for fd in fds:
                fdlist.append(fd)
        params = GLib.Variant(sig, tuple(args)) if sig else None
        rtype = GLib.VariantType.new(reply_sig) if reply_sig else None
        return self.conn.call_with_unix_fd_list_sync(
            self.dest, OBJ_PATH, iface, method, params, rtype,
            flags, timeout_ms, fdlist, None)

    def op_deposit(self, req):
        to_close = []
        try:
            fd, made = self.fd_from(req['fd'], to_close)
            index = req.get('index', 0)
            self.call('Deposit', '(sha{sv})',
                      (req['name'], index, typed_dict(req.get('options'))), fds=[fd])
            return {'ok': True, 'made': made}
        finally:
            for fd in to_close:
                os.close(fd)

    def op_deposit_many(self, req):
        to_close = []
        try:
            fds, made = [], []
            for spec in req['fdspecs']:
                fd, m = self.fd_from(spec, to_close)
                fds.append(fd)
                made.append(m)
            if 'fds_list' in req:
                # [[name, index], ...]: may repeat a name, which a dict cannot.
                b = GLib.VariantBuilder.new(GLib.VariantType.new('a{sh}'))
                for name, idx in req['fds_list']:
                    b.add_value(GLib.Variant.new_dict_entry(GLib.Variant('s', name), GLib.Variant('h', idx)))
                params = GLib.Variant.new_tuple(b.end(), GLib.Variant('a{sv}', typed_dict(req.get('options'))))
                fdlist = Gio.UnixFDList.new()
                for fd in fds:
                    fdlist.append(fd)
                self.conn.call_with_unix_fd_list_sync(self.dest, OBJ_PATH, IFACE, 'DepositMany', params, None,
                                                      Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, fdlist, None)
            else:
                self.call('DepositMany', '(a{sh}a{sv})',
                          (req['fds'], typed_dict(req.get('options'))), fds=fds)
            return {'ok': True, 'made': made}
        finally:
            for fd in to_close:
                os.close(fd)

    def _retrieve_result(self, req, result):
        reply, out = result
        fds = self.take_fds(out)
        try:
            idx = reply.get_child_value(0).get_handle()
            info, types = info_to_json(reply.get_child_value(1))
            fd = fds[idx]
            facts = self.consume(fd, req)
            fds = [x for x in fds if x != fd]
            return {'ok': True, 'info': info, 'info_types': types, 'fd': facts,
                    'n_fds': len(fds) + 1}
        finally:
            for x in fds:
                os.close(x)

    def op_retrieve(self, req):
        params = GLib.Variant('(sa{sv})', (req['name'], typed_dict(req.get('options'))))
        timeout = int(req.get('timeout_ms', DEFAULT_TIMEOUT_MS))
        tag = req.get('async')
        if tag is None:
            r = self.conn.call_with_unix_fd_list_sync(
                self.dest, OBJ_PATH, IFACE, 'Retrieve', params,
                GLib.VariantType.new('(ha{sv})'), Gio.DBusCallFlags.NONE, timeout, None, None)
            return self._retrieve_result(req, r)
        self.pending[tag] = None

        def done(conn, res, _data):
            try:
                r = conn.call_with_unix_fd_list_finish(res)
                self.pending[tag] = self._retrieve_result(req, r)
            except Exception as e:  # noqa: BLE001
                self.pending[tag] = error_result(e)
        self.conn.call_with_unix_fd_list(
            self.dest, OBJ_PATH, IFACE, 'Retrieve', params,
            GLib.VariantType.new('(ha{sv})'), Gio.DBusCallFlags.NONE, timeout, None, None,
            done, None)
        self.conn.flush_sync(None)
        return {'ok': True, 'started': tag}

    def op_poll(self, req):
        while self.ctx.iteration(False):
            pass
        r = self.pending.get(req['tag'])
        return {'ok': True, 'done': r is not None}

    def op_await(self, req):
        tag = req['tag']
        timed_out = []
        src = GLib.timeout_add(int(req.get('timeout_ms', 60000)), lambda: timed_out.append(1) or False)
        while self.pending.get(tag) is None and not timed_out:
            self.ctx.iteration(True)
        if not timed_out:
            GLib.source_remove(src)
        r = self.pending.pop(tag, None)
        if r is None:
            return {'ok': False, 'error': 'local:await-timeout', 'message': 'no answer yet'}
        return r

    def op_retrieve_many(self, req):
        reply, out = self.call('RetrieveMany', '(asa{sv})',
                               (req['names'], typed_dict(req.get('options'))),
                               reply_sig='(a{sh})')
        fds = self.take_fds(out)
        try:
            mapping = reply.get_child_value(0).unpack()
            facts = {}
            used = set()
            for name, idx in mapping.items():
                facts[name] = self.consume(fds[idx], req, key=name)
                used.add(idx)
            for i, fd in enumerate(fds):
                if i not in used:
                    os.close(fd)
            return {'ok': True, 'fds': facts, 'indexes': mapping, 'n_fds': len(fds)}
        except Exception:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise

    def op_remove(self, req):
        self.call('Remove', '(s)', (req['name'],))
        return {'ok': True}

    def op_list(self, req):
        reply, _ = self.call('List', '(a{sv})', (typed_dict(req.get('filter')),),
                             reply_sig='(a(sa{sv}))')
        arr = reply.get_child_value(0)
        entries = []
        for i in range(arr.n_children()):
            e = arr.get_child_value(i)
            info, types = info_to_json(e.get_child_value(1))
            entries.append({'name': e.get_child_value(0).get_string(), 'info': info,
                            'info_types': types})
        return {'ok': True, 'entries': entries, 'names': [e['name'] for e in entries]}

    def op_create_memory(self, req):
        reply, out = self.call('CreateMemory', '(sta{sv})',
                               (req['name'], int(req['size']), typed_dict(req.get('options'))),
                               reply_sig='(h)')
        fds = self.take_fds(out)
        idx = reply.get_child_value(0).get_handle()
        fd = fds.pop(idx)
        for x in fds:
            os.close(x)
        written = {}
        if 'write' in req:
            data = fdutil._data_bytes(req['write'])
            try:
                os.pwrite(fd, data, 0)
                import hashlib
                written = {'sha256': hashlib.sha256(data).hexdigest(), 'length': len(data)}
            except OSError as e:
                written = {'error': fdutil._errname(e)}
        facts = self.consume(fd, req)
        return {'ok': True, 'fd': facts, 'written': written}

    def op_open_path(self, req):
        reply, out = self.call('OpenPath', '(sa{sv})', (req['path'], typed_dict(req.get('options'))),
                               reply_sig='(h)')
        fds = self.take_fds(out)
        idx = reply.get_child_value(0).get_handle()
        fd = fds.pop(idx)
        for x in fds:
            os.close(x)
        return {'ok': True, 'fd': self.consume(fd, req)}

    def op_get_property(self, req):
        reply, _ = self.call('Get', '(ss)', (IFACE, req['name']), iface='org.freedesktop.DBus.Properties',
                             reply_sig='(v)')
        v = reply.get_child_value(0).get_variant()
        return {'ok': True, 'value': v.unpack(), 'type': v.get_type_string()}

    def op_get_all(self, req):
        reply, _ = self.call('GetAll', '(s)', (IFACE,), iface='org.freedesktop.DBus.Properties',
                             reply_sig='(a{sv})')
        values, types = info_to_json(reply.get_child_value(0))
        return {'ok': True, 'values': values, 'types': types}

    def op_set_property(self, req):
        sig, value = req['value']
        self.call('Set', '(ssv)', (IFACE, req['name'], GLib.Variant(sig, value)),
                  iface='org.freedesktop.DBus.Properties')
        return {'ok': True}

    def op_raw(self, req):
        to_close = []
        try:
            fds = [self.fd_from(s, to_close)[0] for s in req.get('fdspecs', [])]
            reply, out = self.call(req['method'], req['sig'], req['args'], fds=fds,
                                   iface=req.get('iface', IFACE))
            for fd in self.take_fds(out):
                os.close(fd)
            return {'ok': True, 'reply': reply.unpack() if reply is not None else None}
        finally:
            for fd in to_close:
                os.close(fd)

    def op_ping(self, req):
        self.call('Ping', None, (), iface='org.freedesktop.DBus.Peer')
        return {'ok': True}

    def op_introspect(self, req):
        reply, _ = self.call('Introspect', None, (), iface='org.freedesktop.DBus.Introspectable',
                             reply_sig='(s)')
        return {'ok': True, 'xml': reply.get_child_value(0).get_string()}

    # -- fd handles kept in this process -----------------------------------

    def op_fd_new(self, req):
        fd, made, keep = fdutil.make_fd(req['spec'], self.scratch)
        for k in keep:
            self.handles.setdefault('_peer_%s' % req['handle'], k)
        self.handles[req['handle']] = fd
        return {'ok': True, 'made': made}

    def op_fd_facts(self, req):
        return {'ok': True, 'fd': fdutil.fd_facts(self.handles[req['handle']], read=req.get('read', True))}

    def op_fd_lseek(self, req):
        off = os.lseek(self.handles[req['handle']], int(req['offset']), os.SEEK_SET)
        return {'ok': True, 'offset': off}

    def op_fd_write(self, req):
        fd = self.handles[req['handle']]
        data = fdutil._data_bytes(req)
        try:
            if 'offset' in req:
                n = os.pwrite(fd, data, int(req['offset']))
            else:
                n = os.write(fd, data)
            return {'ok': True, 'written': n}
        except OSError as e:
            return {'ok': False, 'error': 'errno:' + fdutil._errname(e), 'message': str(e)}

    def op_fd_close(self, req):
        m = self.maps.pop(req['handle'], None)
        if m is not None:
            m.close()
        fd = self.handles.pop(req['handle'], None)
        if fd is not None:
            os.close(fd)
        return {'ok': True}

    def op_mmap_keep(self, req):
        import mmap
        fd = self.handles[req['handle']]
        size = os.fstat(fd).st_size
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if req.get('writable', True) else 0)
        self.maps[req['handle']] = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)
        return {'ok': True}

    def op_munmap(self, req):
        m = self.maps.pop(req['handle'], None)
        if m is not None:
            m.close()
        return {'ok': True}

    def op_fd_count(self, req):
        return {'ok': True, 'count': len(os.listdir('/proc/self/fd'))}

    def op_whoami(self, req):
        return {'ok': True, 'uid': os.geteuid(), 'gid': os.getegid(), 'groups': os.getgroups(),
                'unique_name': self.unique_name, 'transport': self.transport}

    # -- many cycles at once, for the fd leak test ----------------------------

    def op_churn(self, req):
        """Deposit/retrieve/remove cycles with failing calls mixed in. Counts
        outcomes per step and lists those that differ from the expectation."""
        n = int(req['cycles'])
        prefix = req.get('prefix', 'churn')
        allow = req.get('allow', [])
        counts = {}
        unexpected = []

        def expect(step, expected, fn):
            try:
                fn()
                got = 'ok'
            except Exception as e:  # noqa: BLE001
                got = error_result(e)['error']
            key = '%s:%s' % (step, got)
            counts[key] = counts.get(key, 0) + 1
            if got != expected and len(unexpected) < 20:
                unexpected.append({'step': step, 'expected': expected, 'got': got})

        def dep(name, spec, opts, index=0):
            fd, _, keep = fdutil.make_fd(spec, self.scratch)
            try:
                self.call('Deposit', '(sha{sv})', (name, index, opts), fds=[fd])
            finally:
                os.close(fd)
                for k in keep:
                    os.close(k)

        def ret(name, opts):
            reply, out = self.call('Retrieve', '(sa{sv})', (name, opts), reply_sig='(ha{sv})')
            for fd in self.take_fds(out):
                os.close(fd)

        def ret_many(names, opts):
            reply, out = self.call('RetrieveMany', '(asa{sv})', (names, opts), reply_sig='(a{sh})')
            for fd in self.take_fds(out):
                os.close(fd)

        def dep_many(mapping, specs):
            fds, keeps = [], []
            for s in specs:
                fd, _, keep = fdutil.make_fd(s, self.scratch)
                fds.append(fd)
                keeps += keep
            try:
                self.call('DepositMany', '(a{sh}a{sv})', (mapping, {}), fds=fds)
            finally:
                for fd in fds + keeps:
                    os.close(fd)

        def create_mem(name, size):
            reply, out = self.call('CreateMemory', '(sta{sv})', (name, size, {}), reply_sig='(h)')
            for fd in self.take_fds(out):
                os.close(fd)

        V = GLib.Variant
        allow_v = {'allow': V('as', allow)} if allow else {}
        memfd = {'type': 'memfd', 'data': 'churn data'}
        regular = {'type': 'file', 'path': 'churn-file-%d' % os.getpid(), 'data': 'x'}
        wo_file = {'type': 'file', 'path': 'churn-wo-%d' % os.getpid(), 'data': 'y', 'mode': 'w'}
        dep('%s/wo' % prefix, wo_file, {})
        for i in range(n):
            name = '%s/%d' % (prefix, i)
            kind = i % 4
            spec = [memfd, regular, {'type': 'pipe'}, {'type': 'socket'}][kind]
            expect('deposit', 'ok', lambda: dep(name, spec, dict(allow_v)))
            ropts = [{}, {'reopen': V('b', True)}, {}, {}][kind]
            if kind == 0 and i % 8 == 0:
                ropts = {'access': V('s', 'read-only')}
            expect('retrieve', 'ok', lambda: ret(name, ropts))
            e = i % 12
            if e == 0:
                expect('deposit-bad-name', 'org.freedesktop.DBus.Error.InvalidArgs',
                       lambda: dep('%s//bad' % prefix, memfd, {}))
            elif e == 1:
                expect('retrieve-missing', 'org.fdbroker.Error.NotFound',
                       lambda: ret('%s/missing' % prefix, {}))
            elif e == 2:
                expect('deposit-exists', 'org.fdbroker.Error.Exists',
                       lambda: dep(name, memfd, {}))
            elif e == 3:
                expect('seal-regular', 'org.fdbroker.Error.NotSupported',
                       lambda: dep('%s/seal-%d' % (prefix, i), regular, {'seal': V('b', True)}))
            elif e == 4:
                expect('socket-read-only', 'org.fdbroker.Error.NotSupported',
                       lambda: dep('%s/sock-%d' % (prefix, i), {'type': 'socket'},
                                   {'access': V('s', 'read-only')}))
            elif e == 5:
                expect('deposit-many-bad', 'org.freedesktop.DBus.Error.InvalidArgs',
                       lambda: dep_many({'%s/m-%d' % (prefix, i): 0, '%s/..' % prefix: 1},
                                        [memfd, regular]))
            elif e == 6:
                expect('retrieve-many-missing', 'org.fdbroker.Error.NotFound',
                       lambda: ret_many([name, '%s/missing' % prefix], {}))
            elif e == 7:
                cm = '%s/cm-%d' % (prefix, i)
                expect('create-memory', 'ok', lambda: create_mem(cm, 4096))
                expect('remove-cm', 'ok', lambda: self.call('Remove', '(s)', (cm,)))
            elif e == 8:
                expect('unknown-option', 'org.freedesktop.DBus.Error.InvalidArgs',
                       lambda: dep('%s/opt-%d' % (prefix, i), memfd, {'no-such-option': V('b', True)}))
            elif e == 9:
                expect('opath', 'org.fdbroker.Error.NotSupported',
                       lambda: dep('%s/opath-%d' % (prefix, i), {'type': 'opath'}, {}))
            elif e == 10:
                expect('write-only-as-read-only', 'org.freedesktop.DBus.Error.AccessDenied',
                       lambda: ret('%s/wo' % prefix, {'access': V('s', 'read-only')}))
            elif e == 11:
                expect('reopen-pipe', 'org.fdbroker.Error.NotSupported' if kind in (2, 3) else 'ok',
                       lambda: ret(name, {'reopen': V('b', True)}))
            expect('remove', 'ok', lambda: self.call('Remove', '(s)', (name,)))
        expect('remove-wo', 'ok', lambda: self.call('Remove', '(s)', ('%s/wo' % prefix,)))
        return {'ok': True, 'counts': counts, 'unexpected': unexpected}

    def op_burst(self, req):
        """A new connection that fires n List calls at once, before the
        broker can have looked up who it is; counts the answers."""
        conn = self.new_conn()
        n = int(req['n'])
        answers = []

        def done(c, res, _data):
            try:
                c.call_finish(res)
                answers.append('ok')
            except GLib.Error as e:
                answers.append(error_result(e)['error'])
        for _ in range(n):
            conn.call(self.dest, OBJ_PATH, IFACE, 'List', GLib.Variant('(a{sv})', ({},)),
                      GLib.VariantType.new('(a(sa{sv}))'), Gio.DBusCallFlags.NONE, 60000, None, done, None)
        while len(answers) < n:
            self.ctx.iteration(True)
        conn.close_sync(None)
        counts = {}
        for a in answers:
            counts[a] = counts.get(a, 0) + 1
        return {'ok': True, 'counts': counts}

    # -- for tests/hostile/ -----------------------------------------------

    def op_fd_lease(self, req):
        """F_SETLEASE on a kept fd ('r', 'w' or 'none'); the lease-break
        signal (SIGIO) is ignored, as an attacker would."""
        import fcntl
        import signal
        signal.signal(signal.SIGIO, signal.SIG_IGN)
        kind = {'r': fcntl.F_RDLCK, 'w': fcntl.F_WRLCK, 'none': fcntl.F_UNLCK}[req['type']]
        fcntl.fcntl(self.handles[req['handle']], fcntl.F_SETLEASE, kind)
        return {'ok': True}

    def op_fd_pread(self, req):
        try:
            data = os.pread(self.handles[req['handle']], int(req['size']), int(req.get('offset', 0)))
        except OSError as e:
            return {'ok': False, 'error': 'errno:' + fdutil._errname(e), 'message': str(e)}
        return {'ok': True, 'hex': data.hex()}

    def op_spawn(self, req):
        """A child of this client that waits for a line on stdin, then
        execs argv (stdin stays a pipe, so argv can block reading it)."""
        import subprocess
        p = subprocess.Popen(['/bin/sh', '-c', 'read line; exec "$@"', 'sh'] + list(req['argv']),
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.children = getattr(self, 'children', {})
        self.children[req['handle']] = p
        return {'ok': True, 'pid': p.pid}

    def op_spawn_go(self, req):
        p = self.children[req['handle']]
        p.stdin.write(b'go\n')
        p.stdin.flush()
        return {'ok': True}

    def op_spawn_kill(self, req):
        p = self.children.pop(req['handle'], None)
        if p is not None:
            p.kill()
            p.wait()
            p.stdin.close()
        return {'ok': True}
    # -- direct connections beside the main one -----------------------------

    def op_open_connection(self, req):
        """OpenConnection on the bus with the given options; with "keep", a
        client connection is made on the socket and kept (op_direct_*)."""
        if self.bus_conn is None:
            self.bus_conn = bus_connect(self.address) if self.transport != 'bus' else self.conn
        fd = open_connection(self.bus_conn, typed_dict(req.get('options')))
        if not req.get('keep'):
            os.close(fd)
            return {'ok': True}
        self.directs.append(direct_connect_fd(fd))
        return {'ok': True, 'index': len(self.directs) - 1}

    def op_direct_socket_connect(self, req):
        """A kept connection to the listening socket (op_direct_*)."""
        self.directs.append(direct_connect_socket(req.get('path') or self.direct_socket))
        return {'ok': True, 'index': len(self.directs) - 1}

    def op_direct_call(self, req):
        """A call without fds on kept direct connection "index"."""
        conn = self.directs[int(req['index'])]
        reply = conn.call_sync(None, OBJ_PATH, req.get('iface', IFACE), req['method'],
                               GLib.Variant(req['sig'], tuple(req['args'])) if req.get('sig') else None,
                               None, Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, None)
        return {'ok': True, 'reply': reply.unpack() if reply is not None else None}

    def op_direct_deposit(self, req):
        """Deposit over kept direct connection "index"."""
        conn = self.directs[int(req['index'])]
        fd, made, keep = fdutil.make_fd(req['fd'], self.scratch)
        try:
            fdlist = Gio.UnixFDList.new()
            fdlist.append(fd)
            conn.call_with_unix_fd_list_sync(None, OBJ_PATH, IFACE, 'Deposit',
                                             GLib.Variant('(sha{sv})', (req['name'], 0,
                                                                        typed_dict(req.get('options')))),
                                             None, Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, fdlist, None)
        finally:
            os.close(fd)
            for k in keep:
                os.close(k)
        return {'ok': True, 'made': made}

    def op_direct_close(self, req):
        """Close kept direct connection "index" (or all of them)."""
        idx = req.get('index')
        for i, conn in enumerate(self.directs):
            if conn is not None and (idx is None or i == int(idx)):
                self.directs[i] = None
                try:
                    conn.close_sync(None)
                except GLib.Error:
                    pass  # the broker closed it first (a refused one)
        return {'ok': True}

    def op_direct_cycles(self, req):
        """Open and close n direct connections, one after the other, each
        making one call (List)."""
        n = int(req['n'])
        via = req.get('via', 'socket')
        failures = []
        if via == 'open-connection' and self.bus_conn is None:
            self.bus_conn = bus_connect(self.address) if self.transport != 'bus' else self.conn
        for i in range(n):
            try:
                if via == 'socket':
                    conn = direct_connect_socket(req.get('path') or self.direct_socket)
                else:
                    conn = direct_connect_fd(open_connection(self.bus_conn))
                conn.call_sync(None, OBJ_PATH, IFACE, 'List', GLib.Variant('(a{sv})', ({},)),
                               None, Gio.DBusCallFlags.NONE, DEFAULT_TIMEOUT_MS, None)
                conn.close_sync(None)
            except GLib.Error as e:
                if len(failures) < 10:
                    failures.append(error_result(e))
        return {'ok': True, 'failures': failures}

    def op_exit(self, req):
        raise SystemExit(0)

    # -- signals (Watch) ---------------------------------------------------

    def op_subscribe(self, req):
        """Records every EntryAdded/EntryRemoved this connection receives,
        from any sender: a broadcast signal would be seen too, so a client
        that subscribes without calling Watch shows nothing leaks."""
        if getattr(self, 'signals', None) is None:
            self.signals = []

            def on_signal(conn, sender, path, iface, member, params):
                if member == 'EntryAdded':
                    info, types = info_to_json(params.get_child_value(1))
                    self.signals.append({'member': member, 'name': params.get_child_value(0).get_string(),
                                         'info': info, 'info_types': types, 'sender': sender})
                else:
                    name, reason = params.unpack()
                    self.signals.append({'member': member, 'name': name, 'reason': reason,
                                         'sender': sender})
            self.conn.signal_subscribe(None, IFACE, None, OBJ_PATH, None, Gio.DBusSignalFlags.NONE,
                                       on_signal)
        return {'ok': True}

    def op_watch(self, req):
        self.call('Watch', '(asa{sv})', (req['patterns'], typed_dict(req.get('options'))))
        return {'ok': True}

    def op_signals(self, req):
        """The signals received so far (and cleared): waits up to
        timeout_ms for at least n of them; n=0 just drains what arrived."""
        want = int(req.get('n', 0))
        timed_out = []
        src = GLib.timeout_add(int(req.get('timeout_ms', 10000)), lambda: timed_out.append(1) or False)
        while len(self.signals) < want and not timed_out:
            self.ctx.iteration(True)
        if not timed_out:
            GLib.source_remove(src)
        while self.ctx.iteration(False):
            pass
        got, self.signals = self.signals, []
        return {'ok': True, 'signals': got}


def main():
    address = sys.argv[1]
    out = sys.stdout
    try:
        c = Client(address)
    except Exception as e:  # noqa: BLE001
        out.write(json.dumps({'ready': False, **error_result(e)}) + '\n')
        out.flush()
        return 1
    out.write(json.dumps({'ready': True, 'uid': os.geteuid(), 'groups': os.getgroups(),
                          'unique_name': c.unique_name, 'transport': c.transport}) + '\n')
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        fn = getattr(c, 'op_' + req['op'], None)
        try:
            if fn is None:
                res = {'ok': False, 'error': 'local:unknown-op', 'message': req['op']}
            else:
                res = fn(req)
        except SystemExit:
            out.write(json.dumps({'ok': True}) + '\n')
            out.flush()
            break
        except GLib.Error as e:
            res = error_result(e)
        except Exception as e:  # noqa: BLE001
            res = {'ok': False, 'error': 'local:' + type(e).__name__, 'message': str(e),
                   'traceback': traceback.format_exc()}
        out.write(json.dumps(res, default=repr) + '\n')
        out.flush()
    try:
        c.conn.close_sync(None)
    except GLib.Error:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
