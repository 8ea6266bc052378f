#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a test program against fdbroker on a private system-like bus.

    run-with-bus.py PROGRAM [ARG...]

Starts tests/integration/harness.py's PrivateBus (which bus-activates the
service from the build tree), runs PROGRAM with FDBROKER_TEST_ADDRESS and G_DEBUG=fatal-criticals set,
passes its TAP output on and adds one subtest: no GLib CRITICAL or WARNING
on its stderr. On
failure the service's and the bus's logs go to stderr. Without what the bus
needs, the whole program is skipped (TAP "1..0 # SKIP").
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
sys.path.insert(0, HERE)


def skip(reason):
    print('1..0 # SKIP %s' % reason, flush=True)
    sys.exit(0)


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: run-with-bus.py PROGRAM [ARG...]')
    try:
        import glibcheck
        import harness
    except Exception as e:  # noqa: BLE001
        skip('cannot import tests/integration/harness.py: %s' % e)
    try:
        harness.check_environment()
    except harness.Skip as e:
        skip(str(e))

    with harness.PrivateBus(harness.service_binary(), harness.source_dir()) as bus:
        env = {'FDBROKER_TEST_ADDRESS': bus.address}
        try:
            bus.wait_direct_socket()
            env['FDBROKER_TEST_DIRECT_SOCKET'] = bus.direct_socket
        except (harness.Skip, AttributeError) as e:
            sys.stderr.write('no direct socket: %s\n' % e)
        # G_DEBUG=fatal-criticals, and a GLib warning or critical on its
        # stderr is one more failing subtest (glibcheck.run_glib_checked).
        rc = glibcheck.run_glib_checked(sys.argv[1:], env,
                                      drop_env=('DBUS_SYSTEM_BUS_ADDRESS', 'DBUS_SESSION_BUS_ADDRESS'))
        if rc != 0:
            sys.stderr.write('---- %s failed; fdbroker.log ----\n' % sys.argv[1])
            sys.stderr.write(bus.service_log())
            sys.stderr.write('\n---- dbus-daemon.log ----\n')
            sys.stderr.write(bus.daemon_log())
            sys.stderr.write('\n---- end of logs ----\n')
    sys.exit(rc)


if __name__ == '__main__':
    main()
