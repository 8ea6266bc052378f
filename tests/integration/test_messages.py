#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the service says to a person: no bus to connect to (naming the bus,
the variables it looked at and what to do), Remove of a missing name,
Exists for the caller's own name (the D-Bus option and fdbrokerctl's)."""

import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import E_EXISTS, E_NOT_FOUND, memfd  # noqa: E402


def run_service(args, env):
    base = {'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'}
    base.update(env)
    return subprocess.run([harness.service_binary()] + args, env=base, capture_output=True, text=True,
                          timeout=60)


def body(t):
    empty = tempfile.mkdtemp(prefix='fdbtest-nobus-')
    try:
        def no_bus():
            r = run_service(['--bus=session', '--policy-dir=' + empty], {})
            t.ok(r.returncode != 0 and 'no session bus' in r.stderr
                 and '$DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR are unset' in r.stderr
                 and '--bus=ADDRESS' in r.stderr and 'No medium' not in r.stderr,
                 '--bus=session with neither variable: says which were unset and to use --bus=ADDRESS', r.stderr)
            r = run_service(['--bus=session', '--policy-dir=' + empty], {'XDG_RUNTIME_DIR': empty})
            t.ok(r.returncode != 0 and '$DBUS_SESSION_BUS_ADDRESS is unset' in r.stderr
                 and '%s/bus' % empty in r.stderr and 'does not exist' in r.stderr and '--bus=ADDRESS' in r.stderr,
                 '--bus=session with $XDG_RUNTIME_DIR but no socket there: names the path', r.stderr)
            r = run_service(['--bus=system', '--policy-dir=' + empty],
                            {'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=%s/none' % empty})
            t.ok(r.returncode != 0 and 'system bus' in r.stderr and '$DBUS_SYSTEM_BUS_ADDRESS' in r.stderr
                 and '%s/none' % empty in r.stderr,
                 '--bus=system with a dead $DBUS_SYSTEM_BUS_ADDRESS: names the variable and its value', r.stderr)
            r = run_service(['--bus=unix:path=%s/none' % empty, '--policy-dir=' + empty], {})
            t.ok(r.returncode != 0 and "bus at 'unix:path=%s/none'" % empty in r.stderr,
                 '--bus=ADDRESS that does not answer: names the address', r.stderr)
            r = run_service(['--bus=unix:path=%s/none' % empty, '--policy-dir=%s/typo' % empty], {})
            t.ok('policy directory %s/typo does not exist' % empty in r.stderr,
                 'a --policy-dir that does not exist is warned about', r.stderr)
        t.run('no bus', no_bus)
    finally:
        os.rmdir(empty)

    bus, users = harness.setup(t)
    root = bus.client()

    def calls():
        r = root.remove('msg/missing')
        t.error(r, E_NOT_FOUND, 'Remove of a missing name says NotFound ... that you may remove',
                ['msg/missing', 'that you may remove'])
        t.success(root.deposit('msg/taken', memfd('1')), 'deposit msg/taken')
        r = root.deposit('msg/taken', memfd('2'))
        t.error(r, E_EXISTS, 'Exists names the D-Bus option and fdbrokerctl\'s',
                ['msg/taken', 'replace=true', 'fdbrokerctl: --replace'])
        r = root.create_memory('msg/taken', 4096)
        t.error(r, E_EXISTS, 'CreateMemory\'s Exists says the same', ['msg/taken', 'replace=true', '--replace'])
        if users:
            alice = bus.client(users['alice'])
            r = alice.remove('msg/taken')
            t.error(r, E_NOT_FOUND, 'Remove of a hidden entry reads like a missing one',
                    ['msg/taken', 'that you may remove'])
            r = alice.deposit('msg/taken', memfd('3'))
            t.error(r, E_EXISTS, 'Exists for someone else\'s name does not suggest replace',
                    ['belongs to someone else'])
        else:
            t.skip('hidden entry', bus.user_skip)
        t.success(root.remove('msg/taken'), 'remove msg/taken')
    t.run('calls', calls)


if __name__ == '__main__':
    harness.main(body)
