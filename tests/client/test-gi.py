#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""libfdbroker-client through GObject Introspection (FdBroker-1.0), as a
PyGObject program uses it: GI_TYPELIB_PATH and LD_LIBRARY_PATH point at the
build tree (meson sets them)."""
import fcntl
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))

import harness  # noqa: E402

try:
    import gi
    gi.require_version('FdBroker', '1.0')
    from gi.repository import FdBroker, GLib, GObject
except Exception as e:  # noqa: BLE001
    harness.skip_all('FdBroker-1.0 typelib not loadable (GI_TYPELIB_PATH=%s): %s'
                     % (os.environ.get('GI_TYPELIB_PATH'), e))


def memfd(data):
    fd = os.memfd_create('gi-test', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    return fd


def body(tap):
    bus, _ = harness.setup(tap)
    client = FdBroker.Client.new_for_address_sync(bus.address, None)
    tap.ok(isinstance(client, FdBroker.Client), 'Client.new_for_address_sync makes a client')

    # deposit + retrieve bytes, with typed options
    opts = FdBroker.DepositOptions.new()
    opts.add_allow('everyone')
    opts.set_seal(True)
    opts.set_description('from python')
    tap.eq(list(opts.get_allow()), ['everyone'], 'DepositOptions.get_allow')
    fd = memfd(b'bytes from python\0and more')
    tap.ok(client.deposit_sync('gi/frame', fd, opts, None), 'deposit_sync returns True')
    os.close(fd)

    ropts = FdBroker.RetrieveOptions.new()
    ropts.set_read_only(True)
    out, info = client.retrieve_sync('gi/frame', ropts, None)
    tap.ok(isinstance(out, int) and out >= 0, 'retrieve_sync returns an fd and the info')
    tap.eq(os.pread(out, 100, 0), b'bytes from python\0and more', 'retrieved fd has the deposited bytes')
    tap.eq(fcntl.fcntl(out, fcntl.F_GETFL) & 3, os.O_RDONLY, 'read-only retrieve gives an O_RDONLY fd')
    os.close(out)
    tap.eq((info.get_name(), info.get_kind(), info.get_size(), info.get_sealed(), info.get_description(),
            info.get_owner_uid()),
           ('gi/frame', 'memfd', 26, True, 'from python', os.geteuid()), 'EntryInfo getters')
    tap.eq(info.get_variant().unpack()['kind'], 'memfd', 'EntryInfo.get_variant is the a{sv}')

    # list: (transfer container) GPtrArray of boxed
    entries = client.list_sync('gi/', None)
    tap.eq([e.get_name() for e in entries], ['gi/frame'], 'list_sync returns EntryInfo objects')

    # errors arrive in the FDB_ERROR domain
    try:
        client.retrieve_sync('gi/missing', None, None)
        tap.ok(False, 'retrieve of a missing name raises')
    except GLib.Error as e:
        tap.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.NOT_FOUND) and 'gi/missing' in e.message,
               'missing name raises FdBroker.Error.NOT_FOUND naming it', e.message)
    fd = memfd(b'x')
    try:
        client.deposit_sync('gi/frame', fd, None, None)
        tap.ok(False, 'deposit of a taken name raises')
    except GLib.Error as e:
        tap.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.EXISTS), 'taken name raises EXISTS', e.message)
    os.close(fd)
    tap.eq(FdBroker.error_to_dbus_name(FdBroker.Error.BUSY), 'org.fdbroker.Error.Busy', 'error_to_dbus_name')

    # many, create-memory
    fds = [memfd(b'one'), memfd(b'two')]
    tap.ok(client.deposit_many_sync(['gi/1', 'gi/2'], fds, None, None), 'deposit_many_sync')
    for f in fds:
        os.close(f)
    got = client.retrieve_many_sync(['gi/2', 'gi/1'], None, None)
    tap.eq([os.pread(f, 10, 0) for f in got], [b'two', b'one'], 'retrieve_many_sync returns fds in order')
    for f in got:
        os.close(f)
    mem = client.create_memory_sync('gi/mem', 4096, None, None)
    tap.eq(os.fstat(mem).st_size, 4096, 'create_memory_sync returns the memfd')
    os.close(mem)

    # async pair, as Python sees it
    loop = GLib.MainLoop()
    result = {}

    def done(source, res):
        try:
            result['value'] = source.retrieve_finish(res)
        except GLib.Error as e:
            result['error'] = e
        loop.quit()

    client.retrieve('gi/1', None, None, done)
    GLib.timeout_add_seconds(30, loop.quit)
    loop.run()
    ok = 'value' in result and os.pread(result['value'][0], 10, 0) == b'one'
    tap.ok(ok, 'retrieve / retrieve_finish async pair', result)
    if 'value' in result:
        os.close(result['value'][0])

    # watching: entry-added / entry-removed through the typelib
    tap.ok(GObject.signal_lookup('entry-added', FdBroker.Client) != 0
           and GObject.signal_lookup('entry-removed', FdBroker.Client) != 0,
           'the typelib knows the entry-added and entry-removed signals')
    watcher = FdBroker.Client.new_for_address_sync(bus.address, None)
    heard = []
    watcher.connect('entry-added', lambda c, name, info: heard.append(
        ('added', name, info.get_description(), info.get_size())))
    watcher.connect('entry-removed', lambda c, name, reason: heard.append(('removed', name, reason)))
    tap.ok(watcher.watch_sync(['gi/w/*'], None), 'watch_sync([gi/w/*]) returns True')
    wopts = FdBroker.DepositOptions.new()
    wopts.set_description('watched')
    fd = memfd(b'12345')
    client.deposit_sync('gi/w/x', fd, wopts, None)
    client.deposit_sync('gi/unwatched', fd, None, None)
    os.close(fd)
    client.remove_sync('gi/w/x', None)
    client.remove_sync('gi/unwatched', None)
    ctx = GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + 30 * 1000000
    while len(heard) < 2 and GLib.get_monotonic_time() < deadline:
        ctx.iteration(True) if ctx.pending() else GLib.usleep(10000)
    watcher.list_sync('none/', None)  # a round trip: anything else sent is queued now
    while ctx.iteration(False):
        pass
    tap.eq(heard, [('added', 'gi/w/x', 'watched', 5), ('removed', 'gi/w/x', 'removed')],
           'the watcher hears gi/w/x added (with its info) and removed, and nothing of gi/unwatched')
    try:
        watcher.watch_sync(['gi//bad'], None)
        tap.ok(False, 'watch_sync of a bad pattern raises')
    except GLib.Error as e:
        tap.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.INVALID_ARGS) and 'gi//bad' in e.message,
               'a bad pattern raises INVALID_ARGS naming it', e.message)
    tap.ok(watcher.unwatch_sync(None), 'unwatch_sync returns True')
    # direct connections (SPEC §5): the listening socket and OpenConnection
    bus.wait_direct_socket()
    for how, direct in (('new_direct_sync', lambda: FdBroker.Client.new_direct_sync(bus.direct_socket, None)),
                        ('open_connection_sync', lambda: client.open_connection_sync(None))):
        d = direct()
        tap.ok(isinstance(d, FdBroker.Client) and d.get_connection().get_unique_name() is None,
               'Client.%s makes a client on a peer-to-peer connection' % how)
        out, info = d.retrieve_sync('gi/1', None, None)
        tap.eq((os.pread(out, 10, 0), info.get_owner_uid()), (b'one', os.geteuid()),
               'retrieve_sync over %s' % how)
        os.close(out)
        d.get_connection().close_sync(None)

    for name in ('gi/frame', 'gi/1', 'gi/2', 'gi/mem'):
        client.remove_sync(name, None)
    tap.eq(list(client.list_sync('gi/', None)), [], 'remove_sync removed everything')


if __name__ == '__main__':
    if os.environ.get('FDBROKER_GI_CHILD') != '1':
        # Run the checks in a child with G_DEBUG=fatal-criticals, and check
        # its stderr: a GLib warning or critical is a failure too.
        sys.exit(harness.run_glib_checked([sys.executable, os.path.abspath(__file__)],
                                          {'FDBROKER_GI_CHILD': '1'}))
    harness.main(body)
