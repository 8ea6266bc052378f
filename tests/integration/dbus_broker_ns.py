# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a private dbus-broker, for harness.py's FDBROKER_TEST_BUS=dbus-broker.

Usage (inside `unshare -m --propagation private`):
    dbus_broker_ns.py SOCKET LOG CONFIG

dbus-broker-launch logs to the journal and exits without its socket: a tmpfs
over /run/systemd (private to this mount namespace) gets a datagram socket at
journal/socket, drained into LOG by a child. Then systemd-socket-activate
listens on SOCKET and starts the launcher on the first connection
(PLATFORM.md, "dbus-broker")."""

import os
import socket
import sys


def main():
    sock, log_path, config = sys.argv[1:4]
    os.makedirs('/run/systemd', exist_ok=True)
    if os.system('mount -t tmpfs tmpfs /run/systemd') != 0:
        sys.exit('cannot mount a tmpfs over /run/systemd')
    os.makedirs('/run/systemd/journal')
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind('/run/systemd/journal/socket')
    if os.fork() == 0:
        with open(log_path, 'ab', buffering=0) as log:
            while True:
                try:
                    log.write(j.recv(65536).replace(b'\n', b' ') + b'\n')
                except OSError:
                    break
        os._exit(0)
    j.close()
    os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = 'unix:path=' + sock
    os.execvp('systemd-socket-activate',
              ['systemd-socket-activate', '-l', sock, '-E', 'DBUS_SYSTEM_BUS_ADDRESS',
               'dbus-broker-launch', '--scope', 'system', '--config-file', config])


if __name__ == '__main__':
    main()
