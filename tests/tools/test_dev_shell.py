# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/dev-shell -c COMMAND: the private bus answers, the environment is
what it says it set, another user can use the bus, the exit status is the
shell's, and nothing is left running or on disk after it. Every test runs
dev-shell afresh (`dev_shell`: its own bus and broker)."""

import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')

DEV_SHELL = os.path.join(SOURCE, 'tools', 'dev-shell')
GDBUS = ('gdbus call --address "$FDBROKER_ADDRESS" --dest org.fdbroker.Broker1 '
         '--object-path /org/fdbroker/Broker1 --method org.fdbroker.Broker1.')

SCRIPT = '''
set -e
%(gdbus)sList {}
%(gdbus)sDeposit dev/note 'handle 0' "{'lifetime': <'persistent'>}" < /etc/hostname
%(gdbus)sList "{'prefix': <'dev/'>}" | grep -o "'dev/note'"
runuser -u fdbtest-alice -- %(gdbus)sList {}
echo "python3=$(command -v python3)"
echo "fdbrokerctl=$(command -v fdbrokerctl)"
echo "FDBROKER_ADDRESS=$FDBROKER_ADDRESS"
echo "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"
echo "GI_TYPELIB_PATH=$GI_TYPELIB_PATH"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
''' % {'gdbus': GDBUS}


@pytest.fixture
def dev_shell(as_root):
    """dev_shell(COMMAND): tools/dev-shell -c COMMAND, finished
    (returncode, stdout, stderr, and vals: its stdout's NAME=value lines)."""
    if not os.access(os.path.join(BUILD, 'service', 'fdbroker'), os.X_OK):
        pytest.skip('the service is not built in %s' % BUILD)
    env = {'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'SHELL': '/bin/sh', 'LANG': 'C.UTF-8', 'HOME': '/root'}

    def run(command):
        r = subprocess.run([DEV_SHELL, '--build-dir', BUILD, '-c', command], env=env, capture_output=True,
                           text=True, timeout=120)
        r.vals = dict(line.split('=', 1) for line in r.stdout.splitlines() if re.match(r'^[A-Za-z_0-9]+=', line))
        return r
    return run


def test_the_command_runs_on_a_private_bus_that_answers_root_and_other_users(t, dev_shell):
    r = dev_shell(SCRIPT)
    out, err = r.stdout, r.stderr
    t.eq(r.returncode, 0, 'dev-shell -c SCRIPT exits with the script\'s status (0)')
    t.ok(out.startswith('(@a(sa{sv}) [],)\n'), 'List on the private bus answers (no entries yet)', out + err)
    t.ok("'dev/note'" in out, 'an fd deposited with gdbus \'handle 0\' is listed', out)
    t.ok(out.count('(@a(sa{sv}) [],)') == 2, 'fdbtest-alice reaches the same bus (and sees nothing of root\'s)',
         out)


def test_the_shell_gets_the_build_tree_environment_and_is_told_what_was_set(t, dev_shell):
    r = dev_shell(SCRIPT)
    vals, err = r.vals, r.stderr
    t.eq(vals.get('python3'), '/usr/bin/python3', 'Debian\'s python3 comes first on PATH')
    t.eq(vals.get('fdbrokerctl'), os.path.join(os.path.abspath(BUILD), 'client', 'fdbrokerctl'),
         'fdbrokerctl is the build tree\'s')
    addr = vals.get('FDBROKER_ADDRESS', '')
    t.ok(addr.startswith('unix:path=') and vals.get('DBUS_SYSTEM_BUS_ADDRESS') == addr,
         'FDBROKER_ADDRESS and DBUS_SYSTEM_BUS_ADDRESS are the private bus', vals)
    client = os.path.join(os.path.abspath(BUILD), 'client')
    t.ok(vals.get('GI_TYPELIB_PATH', '').split(':')[0] == client
         and vals.get('LD_LIBRARY_PATH', '').split(':')[0] == client,
         'the build tree\'s library and typelib come first', vals)
    for var in ('FDBROKER_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'LD_LIBRARY_PATH', 'GI_TYPELIB_PATH', 'PATH'):
        t.ok(('dev-shell: set %s=' % var) in err, 'it prints what it set: %s' % var, err)
    t.ok('runuser -u fdbtest-alice' in err, 'it says how to act as a test user', err)


def test_after_the_shell_exits_nothing_of_the_bus_is_left_running_or_on_disk(t, dev_shell):
    r = dev_shell(SCRIPT)
    addr = r.vals.get('FDBROKER_ADDRESS', '')
    m = re.match(r'unix:path=([^,]+)', addr)
    sock = m.group(1) if m else None
    t.ok(sock and not os.path.exists(os.path.dirname(sock)),
         'after the shell exits, the bus\'s directory (socket, logs) is gone', sock)
    ps = subprocess.run(['ps', '-eo', 'args'], capture_output=True, text=True).stdout
    t.ok(sock and os.path.dirname(sock) not in ps, 'and no dbus-daemon or broker of it is left running')


def test_the_exit_status_is_the_shells(t, dev_shell):
    r = dev_shell('exit 3')
    t.eq(r.returncode, 3, 'the exit status is the shell\'s (exit 3)')
