#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A measurement, not a test (docs/behaviour.md, "Closing callers' fds"):
does a bus daemon stall while its own close() of an fd it passed on waits
for a FUSE server's FLUSH?

    sudo /usr/bin/python3 tests/hostile/flush_bus_daemons.py [dbus-daemon|dbus-broker]

On a private bus (harness.PrivateBus; the broker is not involved), peer A
sends peer B a signal carrying an fd on tests/hostile/fusestub.py's file
while the stub holds every FLUSH; peer C asks the bus GetId before B reads
the message and after. Prints whether the daemon's close reached the stub
and C's latencies (10 s without an answer: stalled). Needs root and
/dev/fuse."""

import gc
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness  # noqa: E402
import fusestub  # noqa: E402
from rawbus import RawBus  # noqa: E402
from gi.repository import Gio, GLib  # noqa: E402

DBUS = ('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus')


def get_id(c, kind, when):
    t0 = time.monotonic()
    try:
        c.call(*DBUS, 'GetId', timeout=10)
        print('%s: GetId %s: %.1f ms' % (kind, when, (time.monotonic() - t0) * 1000))
    except TimeoutError:
        print('%s: GetId %s: no answer in 10 s (the bus is stalled)' % (kind, when))


def main(kind):
    os.environ['FDBROKER_TEST_BUS'] = kind
    bus = harness.PrivateBus(harness.service_binary(), harness.source_dir())
    bus.start()
    mnt = tempfile.mkdtemp(prefix='fdb-fuse-')
    os.chmod(mnt, 0o755)
    stub = fusestub.FuseStub(mnt)
    stub.start()
    try:
        a, b, c = RawBus(bus.address), RawBus(bus.address), RawBus(bus.address)
        get_id(c, kind, 'before')
        fd = os.open(stub.path(), os.O_RDONLY | os.O_CLOEXEC)
        m = Gio.DBusMessage.new_signal('/x', 'x.y', 'Z')
        m.set_destination(b.unique_name)
        m.set_body(GLib.Variant('(h)', (0,)))
        fl = Gio.UnixFDList.new()
        fl.append(fd)
        m.set_unix_fd_list(fl)
        a.serial += 1
        m.set_serial(a.serial)
        blob = m.to_blob(Gio.DBusCapabilityFlags.UNIX_FD_PASSING)
        del m, fl
        gc.collect()  # GLib's copy closed before FLUSH is held
        stub.hold_flush = True
        a.send(blob, [fd])
        reached = harness.poll_until(lambda: stub.held_count() >= 1, timeout=5)
        print('%s: the daemon\'s close reached the stub before delivery: %s' % (kind, reached))
        get_id(c, kind, 'while B has not read the fd')
        got = b.next_message(3)
        while got is not None and got.get_member() != 'Z':
            got = b.next_message(3)
        print('%s: B received the fd: %s' % (kind, got is not None and len(b.fds) == 1))
        reached = harness.poll_until(lambda: stub.held_count() >= 1, timeout=5)
        print('%s: the daemon\'s close reached the stub after delivery: %s' % (kind, reached))
        get_id(c, kind, 'after delivery, FLUSH held')
        stub.release()
        get_id(c, kind, 'after the stub answers')
        os.close(fd)
    finally:
        stub.stop()
        bus.stop()
        os.rmdir(mnt)


if __name__ == '__main__':
    if os.geteuid() != 0 or not os.path.exists('/dev/fuse'):
        sys.exit('needs root and /dev/fuse')
    for k in sys.argv[1:] or ['dbus-daemon', 'dbus-broker']:
        main(k)
