#!/usr/bin/python3
"""Load the bus policy into a real dbus-daemon and check what it allows.

Usage: check-bus-policy.py POLICY.conf

dbus-daemon is the final judge of a bus policy file: it refuses to start on
an unknown element or attribute, which xmllint with a DTD can only guess at.
This starts a private system-like bus (Debian's default system policy, then
our file), lets root own org.fdbroker.Broker1 with a stand-in that answers
every call with an empty reply, and then, as user nobody, checks that:

  - the broker interface, Peer, Introspectable, and Properties.Get/GetAll
    reach the stand-in;
  - Properties.Set and any other interface are refused by the bus;
  - nobody may not own the name.

Needs root (to own the name and to become nobody); exits 77 otherwise.
"""

import os
import pwd
import subprocess
import sys
import tempfile
import time

NAME = 'org.fdbroker.Broker1'
PATH = '/org/fdbroker/Broker1'

# The parts of Debian's /usr/share/dbus-1/system.conf that decide who may
# talk to whom (tests/debian-system-policy.conf), then our file.
SYSTEM_POLICY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             'tests', 'debian-system-policy.conf')
BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <include>{system_policy}</include>
  <include>{policy}</include>
</busconfig>
'''

# (interface, member, allowed?) as seen by an unprivileged caller.
CALLS = [
    (NAME, 'List', True),
    (NAME, 'Deposit', True),
    ('org.freedesktop.DBus.Peer', 'Ping', True),
    ('org.freedesktop.DBus.Introspectable', 'Introspect', True),
    ('org.freedesktop.DBus.Properties', 'Get', True),
    ('org.freedesktop.DBus.Properties', 'GetAll', True),
    ('org.freedesktop.DBus.Properties', 'Set', False),
    ('org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', False),
    ('org.example.NotOurs', 'Anything', False),
]


def stand_in(address):
    """Own NAME and answer every method call with an empty reply."""
    from gi.repository import Gio, GLib

    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)

    def on_message(connection, message, incoming):
        if incoming and message.get_message_type() == Gio.DBusMessageType.METHOD_CALL \
                and message.get_interface() != 'org.freedesktop.DBus' \
                and message.get_sender() != 'org.freedesktop.DBus':
            connection.send_message(message.new_method_reply(),
                                    Gio.DBusSendMessageFlags.NONE)
            return None
        return message

    conn.add_filter(on_message)
    reply = conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                           'org.freedesktop.DBus', 'RequestName',
                           GLib.Variant('(su)', (NAME, 4)),  # DO_NOT_QUEUE
                           GLib.VariantType('(u)'),
                           Gio.DBusCallFlags.NONE, 5000, None)
    if reply.unpack()[0] != 1:
        print(f'FAIL: root could not become primary owner of {NAME} '
              f'(RequestName answered {reply.unpack()[0]})', flush=True)
        sys.exit(1)
    print('ready', flush=True)
    GLib.MainLoop().run()


def caller(address):
    """As an unprivileged user: try each call, and try to own NAME."""
    from gi.repository import Gio, GLib

    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    failed = False

    def denied(err):
        return Gio.DBusError.get_remote_error(err) == \
            'org.freedesktop.DBus.Error.AccessDenied'

    for iface, member, allowed in CALLS:
        try:
            conn.call_sync(NAME, PATH, iface, member, None, None,
                           Gio.DBusCallFlags.NO_AUTO_START, 5000, None)
            got = 'allowed'
        except GLib.Error as err:
            got = 'denied' if denied(err) else f'error {err.message}'
        want = 'allowed' if allowed else 'denied'
        ok = got == want
        failed |= not ok
        print(f'{"ok  " if ok else "FAIL"} {iface}.{member}: {got} (want {want})')

    try:
        conn.call_sync('org.freedesktop.DBus', '/org/freedesktop/DBus',
                       'org.freedesktop.DBus', 'RequestName',
                       GLib.Variant('(su)', (NAME, 4)), GLib.VariantType('(u)'),
                       Gio.DBusCallFlags.NONE, 5000, None)
        got = 'allowed'
    except GLib.Error as err:
        got = 'denied' if denied(err) else f'error {err.message}'
    ok = got == 'denied'
    failed |= not ok
    print(f'{"ok  " if ok else "FAIL"} RequestName {NAME} as non-root: {got} (want denied)')
    sys.exit(1 if failed else 0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ('--stand-in', '--caller'):
        (stand_in if sys.argv[1] == '--stand-in' else caller)(sys.argv[2])
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    policy = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print('SKIP: needs root, to own the name and to act as user nobody')
        sys.exit(77)
    try:
        import gi  # noqa: F401
    except ImportError:
        print(f'SKIP: {sys.executable} has no gi (install python3-gi)')
        sys.exit(77)
    nobody = pwd.getpwnam('nobody')

    with tempfile.TemporaryDirectory(prefix='fdbroker-policy-') as tmp:
        os.chmod(tmp, 0o755)
        socket = os.path.join(tmp, 'bus')
        conf = os.path.join(tmp, 'bus.conf')
        with open(conf, 'w') as f:
            f.write(BUS_CONFIG.format(socket=socket, policy=policy, system_policy=SYSTEM_POLICY))

        daemon = subprocess.Popen(
            ['dbus-daemon', f'--config-file={conf}', '--nofork', '--nopidfile',
             '--print-address=1'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        owner = None
        try:
            address = daemon.stdout.readline().strip()
            if not address:
                daemon.wait(timeout=10)
                print(f'FAIL: dbus-daemon refused the configuration with {policy}:')
                print(daemon.stderr.read())
                sys.exit(1)
            print(f'ok   dbus-daemon loaded {policy}')

            owner = subprocess.Popen([sys.executable, __file__, '--stand-in', address],
                                     stdout=subprocess.PIPE, text=True)
            line = owner.stdout.readline().strip()
            if line != 'ready':
                print(line)
                print(f'FAIL: the stand-in could not own {NAME} as root')
                sys.exit(1)
            print(f'ok   root owns {NAME}')

            # The script goes in on stdin: nobody may not be able to read
            # the source tree (a checkout under /root, say).
            with open(__file__, 'rb') as source:
                rc = subprocess.run([sys.executable, '-', '--caller', address],
                                    stdin=source, user=nobody.pw_uid, group=nobody.pw_gid,
                                    extra_groups=[], cwd='/', timeout=60).returncode
            sys.exit(rc)
        finally:
            for proc in (owner, daemon):
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()


if __name__ == '__main__':
    main()
