# SPDX-License-Identifier: LGPL-2.1-or-later
"""libfdbroker-client through GObject Introspection (FdBroker-1.0), as a
PyGObject program uses it: GI_TYPELIB_PATH and LD_LIBRARY_PATH point at the
build tree (meson sets them). Each test has its own bus and broker; the
library runs in this process with G_DEBUG=fatal-criticals, and a GLib
warning or critical on its stderr fails the test (glib_clean)."""

import fcntl
import os

import pytest

try:
    import gi
    gi.require_version('FdBroker', '1.0')
    from gi.repository import FdBroker, GLib, GObject
except Exception as e:  # noqa: BLE001
    pytest.skip('FdBroker-1.0 typelib not loadable (GI_TYPELIB_PATH=%s): %s'
                % (os.environ.get('GI_TYPELIB_PATH'), e), allow_module_level=True)

pytestmark = pytest.mark.usefixtures('glib_clean')

FRAME = b'bytes from python\0and more'


def memfd(data):
    fd = os.memfd_create('gi-test', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    return fd


@pytest.fixture
def client(bus):
    return FdBroker.Client.new_for_address_sync(bus.address, None)


def deposit_frame(client):
    """gi/frame: sealed, for everyone, described."""
    opts = FdBroker.DepositOptions.new()
    opts.add_allow('everyone')
    opts.set_seal(True)
    opts.set_description('from python')
    fd = memfd(FRAME)
    try:
        return opts, client.deposit_sync('gi/frame', fd, opts, None)
    finally:
        os.close(fd)


def deposit_one_two(client):
    """gi/1 and gi/2 in one DepositMany."""
    fds = [memfd(b'one'), memfd(b'two')]
    try:
        return client.deposit_many_sync(['gi/1', 'gi/2'], fds, None, None)
    finally:
        for f in fds:
            os.close(f)


def test_client_new_for_address_sync_makes_a_client(t, client):
    t.ok(isinstance(client, FdBroker.Client), 'Client.new_for_address_sync makes a client')


def test_deposit_sync_then_retrieve_sync_round_trips_bytes_with_typed_options(t, client):
    opts, ok = deposit_frame(client)
    t.eq(list(opts.get_allow()), ['everyone'], 'DepositOptions.get_allow')
    t.ok(ok, 'deposit_sync returns True')
    ropts = FdBroker.RetrieveOptions.new()
    ropts.set_read_only(True)
    out, info = client.retrieve_sync('gi/frame', ropts, None)
    t.ok(isinstance(out, int) and out >= 0, 'retrieve_sync returns an fd and the info')
    t.eq(os.pread(out, 100, 0), FRAME, 'retrieved fd has the deposited bytes')
    t.eq(fcntl.fcntl(out, fcntl.F_GETFL) & 3, os.O_RDONLY, 'read-only retrieve gives an O_RDONLY fd')
    os.close(out)
    t.eq((info.get_name(), info.get_kind(), info.get_size(), info.get_sealed(), info.get_description(),
          info.get_owner_uid()),
         ('gi/frame', 'memfd', 26, True, 'from python', os.geteuid()), 'EntryInfo getters')
    t.eq(info.get_variant().unpack()['kind'], 'memfd', 'EntryInfo.get_variant is the a{sv}')


def test_list_sync_returns_entryinfo_objects(t, client):
    # (transfer container) GPtrArray of boxed
    assert deposit_frame(client)[1]
    entries = client.list_sync('gi/', None)
    t.eq([e.get_name() for e in entries], ['gi/frame'], 'list_sync returns EntryInfo objects')


def test_errors_arrive_in_the_fdbroker_error_domain(t, client):
    assert deposit_frame(client)[1]
    try:
        client.retrieve_sync('gi/missing', None, None)
        t.ok(False, 'retrieve of a missing name raises')
    except GLib.Error as e:
        t.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.NOT_FOUND) and 'gi/missing' in e.message,
             'missing name raises FdBroker.Error.NOT_FOUND naming it', e.message)
    fd = memfd(b'x')
    try:
        client.deposit_sync('gi/frame', fd, None, None)
        t.ok(False, 'deposit of a taken name raises')
    except GLib.Error as e:
        t.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.EXISTS), 'taken name raises EXISTS', e.message)
    os.close(fd)
    t.eq(FdBroker.error_to_dbus_name(FdBroker.Error.BUSY), 'org.fdbroker.Error.Busy', 'error_to_dbus_name')


def test_deposit_many_sync_then_retrieve_many_sync_returns_the_fds_in_the_order_asked(t, client):
    t.ok(deposit_one_two(client), 'deposit_many_sync')
    got = client.retrieve_many_sync(['gi/2', 'gi/1'], None, None)
    t.eq([os.pread(f, 10, 0) for f in got], [b'two', b'one'], 'retrieve_many_sync returns fds in order')
    for f in got:
        os.close(f)


def test_create_memory_sync_returns_the_memfd(t, client):
    mem = client.create_memory_sync('gi/mem', 4096, None, None)
    t.eq(os.fstat(mem).st_size, 4096, 'create_memory_sync returns the memfd')
    os.close(mem)


def test_retrieve_and_retrieve_finish_work_as_an_async_pair(t, client):
    assert deposit_one_two(client)
    loop = GLib.MainLoop()
    result = {}

    def done(source, res):
        try:
            result['value'] = source.retrieve_finish(res)
        except GLib.Error as e:
            result['error'] = e
        loop.quit()

    client.retrieve('gi/1', None, None, done)
    timeout = GLib.timeout_add_seconds(30, loop.quit)
    loop.run()
    GLib.source_remove(timeout)
    ok = 'value' in result and os.pread(result['value'][0], 10, 0) == b'one'
    t.ok(ok, 'retrieve / retrieve_finish async pair', result)
    if 'value' in result:
        os.close(result['value'][0])


def test_the_typelib_knows_the_entry_added_and_entry_removed_signals(t):
    t.ok(GObject.signal_lookup('entry-added', FdBroker.Client) != 0
         and GObject.signal_lookup('entry-removed', FdBroker.Client) != 0,
         'the typelib knows the entry-added and entry-removed signals')


def test_a_watcher_hears_what_its_patterns_match_added_and_removed_and_nothing_else(t, bus, client):
    watcher = FdBroker.Client.new_for_address_sync(bus.address, None)
    heard = []
    watcher.connect('entry-added', lambda c, name, info: heard.append(
        ('added', name, info.get_description(), info.get_size())))
    watcher.connect('entry-removed', lambda c, name, reason: heard.append(('removed', name, reason)))
    t.ok(watcher.watch_sync(['gi/w/*'], None), 'watch_sync([gi/w/*]) returns True')
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
    t.eq(heard, [('added', 'gi/w/x', 'watched', 5), ('removed', 'gi/w/x', 'removed')],
         'the watcher hears gi/w/x added (with its info) and removed, and nothing of gi/unwatched')


def test_watch_sync_of_a_bad_pattern_raises_invalid_args_and_unwatch_sync_returns_true(t, bus):
    watcher = FdBroker.Client.new_for_address_sync(bus.address, None)
    assert watcher.watch_sync(['gi/w/*'], None)
    try:
        watcher.watch_sync(['gi//bad'], None)
        t.ok(False, 'watch_sync of a bad pattern raises')
    except GLib.Error as e:
        t.ok(e.matches(FdBroker.error_quark(), FdBroker.Error.INVALID_ARGS) and 'gi//bad' in e.message,
             'a bad pattern raises INVALID_ARGS naming it', e.message)
    t.ok(watcher.unwatch_sync(None), 'unwatch_sync returns True')


# direct connections (SPEC §5): the listening socket and OpenConnection
@pytest.mark.parametrize('how', ['new_direct_sync', 'open_connection_sync'])
def test_a_direct_client_retrieves_over_a_peer_to_peer_connection(t, bus, client, how):
    assert deposit_one_two(client)
    bus.wait_direct_socket()
    if how == 'new_direct_sync':
        d = FdBroker.Client.new_direct_sync(bus.direct_socket, None)
    else:
        d = client.open_connection_sync(None)
    t.ok(isinstance(d, FdBroker.Client) and d.get_connection().get_unique_name() is None,
         'Client.%s makes a client on a peer-to-peer connection' % how)
    out, info = d.retrieve_sync('gi/1', None, None)
    t.eq((os.pread(out, 10, 0), info.get_owner_uid()), (b'one', os.geteuid()),
         'retrieve_sync over %s' % how)
    os.close(out)
    d.get_connection().close_sync(None)


def test_remove_sync_removes_every_kind_of_entry(t, client):
    assert deposit_frame(client)[1]
    assert deposit_one_two(client)
    os.close(client.create_memory_sync('gi/mem', 4096, None, None))
    for name in ('gi/frame', 'gi/1', 'gi/2', 'gi/mem'):
        client.remove_sync(name, None)
    t.eq(list(client.list_sync('gi/', None)), [], 'remove_sync removed everything')
