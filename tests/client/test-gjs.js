// SPDX-License-Identifier: LGPL-2.1-or-later
// libfdbroker-client from GJS, through the FdBroker-1.0 typelib: deposit,
// retrieve (the bytes must match) and a watch signal. Run by run-with-bus.py,
// which sets FDBROKER_TEST_ADDRESS, G_DEBUG=fatal-criticals and checks that
// stderr has no GLib warning. Prints TAP.
imports.gi.versions.FdBroker = '1.0';
const { FdBroker, Gio, GLib } = imports.gi;
const System = imports.system;

let n = 0, failed = 0;
function ok(cond, what, diag) {
    n++;
    print(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
    if (!cond) {
        failed++;
        if (diag !== undefined)
            print(`# ${diag}`);
    }
}

const address = GLib.getenv('FDBROKER_TEST_ADDRESS');
if (!address) {
    print('1..0 # SKIP FDBROKER_TEST_ADDRESS is not set: run through run-with-bus.py');
    System.exit(0);
}

const bytes = new TextEncoder().encode('pixels from gjs\n');
const client = FdBroker.Client.new_for_address_sync(address, null);
const watcher = FdBroker.Client.new_for_address_sync(address, null);
ok(client instanceof FdBroker.Client, 'Client.new_for_address_sync from GJS');

const heard = [];
watcher.connect('entry-added', (c, name, info) => heard.push(`added ${name} ${info.get_size()}`));
watcher.connect('entry-removed', (c, name, reason) => heard.push(`removed ${name} ${reason}`));
ok(watcher.watch_sync(['gjs/*'], null), 'watch_sync([gjs/*])');

// A file to hand over: GLib makes it and gives us its fd.
const [fd, path] = GLib.file_open_tmp('fdbroker-gjs-XXXXXX');
GLib.unlink(path);
const out = new Gio.UnixOutputStream({ fd, close_fd: false });
out.write_all(bytes, null);
const opts = FdBroker.DepositOptions.new();
opts.set_description('from gjs');
ok(client.deposit_sync('gjs/frame', fd, opts, null), 'deposit_sync of a file');
out.close(null);
GLib.close(fd);

// reopen: our own file offset, at 0, so the bytes read from the start.
const ropts = FdBroker.RetrieveOptions.new();
ropts.set_reopen(true);
const [got, info] = client.retrieve_sync('gjs/frame', ropts, null);
ok(got >= 0 && info.get_description() === 'from gjs' && info.get_size() === bytes.length,
    'retrieve_sync returns an fd and the entry info', `fd ${got}, size ${info.get_size()}`);
const input = new Gio.UnixInputStream({ fd: got, close_fd: true });
const read = input.read_bytes(4096, null).toArray();
input.close(null);
ok(read.length === bytes.length && read.every((b, i) => b === bytes[i]), 'the retrieved fd holds the deposited bytes',
    new TextDecoder().decode(read));

client.remove_sync('gjs/frame', null);
const loop = new GLib.MainLoop(null, false);
const timeout = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 30, () => { loop.quit(); return GLib.SOURCE_REMOVE; });
const poll = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 10, () => {
    if (heard.length >= 2) {
        loop.quit();
        return GLib.SOURCE_REMOVE;
    }
    return GLib.SOURCE_CONTINUE;
});
loop.run();
GLib.source_remove(timeout);
if (heard.length < 2)
    GLib.source_remove(poll);
ok(heard.join('; ') === `added gjs/frame ${bytes.length}; removed gjs/frame removed`,
    'the watcher heard entry-added (with the size) and entry-removed', heard.join('; '));
ok(watcher.unwatch_sync(null), 'unwatch_sync');

print(`1..${n}`);
System.exit(failed ? 1 : 0);
