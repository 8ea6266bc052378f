#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a test program against fdbroker on a private system-like bus.

    run-with-bus.py PROGRAM [ARG...]

Starts tests/integration/harness.py's PrivateBus (which bus-activates the
service from the build tree), runs PROGRAM with FDBROKER_TEST_ADDRESS set,
and exits with PROGRAM's status; its TAP output goes straight to ours. On
failure the service's and the bus's logs go to stderr. Without what the bus
needs, the whole program is skipped (TAP "1..0 # SKIP").
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))


def skip(reason):
    print('1..0 # SKIP %s' % reason, flush=True)
    sys.exit(0)


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: run-with-bus.py PROGRAM [ARG...]')
    try:
        import harness
    except Exception as e:  # noqa: BLE001
        skip('cannot import tests/integration/harness.py: %s' % e)
    try:
        harness.check_environment()
    except harness.Skip as e:
        skip(str(e))

    with harness.PrivateBus(harness.service_binary(), harness.source_dir()) as bus:
        env = dict(os.environ, FDBROKER_TEST_ADDRESS=bus.address)
        try:
            bus.wait_direct_socket()
            env['FDBROKER_TEST_DIRECT_SOCKET'] = bus.direct_socket
        except (harness.Skip, AttributeError) as e:
            sys.stderr.write('no direct socket: %s\n' % e)
        env.pop('DBUS_SYSTEM_BUS_ADDRESS', None)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        r = subprocess.run(sys.argv[1:], env=env)
        if r.returncode != 0:
            sys.stderr.write('---- %s exited with %d; fdbroker.log ----\n' % (sys.argv[1], r.returncode))
            sys.stderr.write(bus.service_log())
            sys.stderr.write('\n---- dbus-daemon.log ----\n')
            sys.stderr.write(bus.daemon_log())
            sys.stderr.write('\n---- end of logs ----\n')
    sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)


if __name__ == '__main__':
    main()
