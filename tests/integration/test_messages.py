# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the service says to a person: no bus to connect to (naming the bus,
the variables it looked at and what to do), Remove of a missing name,
Exists for the caller's own name (the D-Bus option and fdbrokerctl's)."""

import os
import subprocess
import tempfile

import pytest

import harness
from harness import E_EXISTS, E_NOT_FOUND, memfd


def run_service(args, env):
    base = {'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'}
    base.update(env)
    return subprocess.run([harness.service_binary()] + args, env=base, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def empty():
    d = tempfile.mkdtemp(prefix='fdbtest-nobus-')
    yield d
    os.rmdir(d)


def test_session_bus_with_neither_variable_says_which_were_unset(t, environment, empty):
    r = run_service(['--bus=session', '--policy-dir=' + empty], {})
    t.ok(r.returncode != 0 and 'no session bus' in r.stderr
         and '$DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR are unset' in r.stderr
         and '--bus=ADDRESS' in r.stderr and 'No medium' not in r.stderr,
         '--bus=session with neither variable: says which were unset and to use --bus=ADDRESS', r.stderr)


def test_session_bus_with_no_socket_in_xdg_runtime_dir_names_the_path(t, environment, empty):
    r = run_service(['--bus=session', '--policy-dir=' + empty], {'XDG_RUNTIME_DIR': empty})
    t.ok(r.returncode != 0 and '$DBUS_SESSION_BUS_ADDRESS is unset' in r.stderr
         and '%s/bus' % empty in r.stderr and 'does not exist' in r.stderr and '--bus=ADDRESS' in r.stderr,
         '--bus=session with $XDG_RUNTIME_DIR but no socket there: names the path', r.stderr)


def test_a_dead_system_bus_address_is_named_with_its_variable(t, environment, empty):
    r = run_service(['--bus=system', '--policy-dir=' + empty],
                    {'DBUS_SYSTEM_BUS_ADDRESS': 'unix:path=%s/none' % empty})
    t.ok(r.returncode != 0 and 'system bus' in r.stderr and '$DBUS_SYSTEM_BUS_ADDRESS' in r.stderr
         and '%s/none' % empty in r.stderr,
         '--bus=system with a dead $DBUS_SYSTEM_BUS_ADDRESS: names the variable and its value', r.stderr)


def test_a_bus_address_that_does_not_answer_is_named(t, environment, empty):
    r = run_service(['--bus=unix:path=%s/none' % empty, '--policy-dir=' + empty], {})
    t.ok(r.returncode != 0 and "bus at 'unix:path=%s/none'" % empty in r.stderr,
         '--bus=ADDRESS that does not answer: names the address', r.stderr)


def test_a_missing_policy_dir_is_warned_about(t, environment, empty):
    r = run_service(['--bus=unix:path=%s/none' % empty, '--policy-dir=%s/typo' % empty], {})
    t.ok('policy directory %s/typo does not exist' % empty in r.stderr,
         'a --policy-dir that does not exist is warned about', r.stderr)


def test_remove_of_a_missing_name_and_exists_say_what_to_do(t, root):
    r = root.remove('msg/missing')
    t.error(r, E_NOT_FOUND, 'Remove of a missing name says NotFound ... that you may remove',
            ['msg/missing', 'that you may remove'])
    t.success(root.deposit('msg/taken', memfd('1')), 'deposit msg/taken')
    r = root.deposit('msg/taken', memfd('2'))
    t.error(r, E_EXISTS, 'Exists names the D-Bus option and fdbrokerctl\'s',
            ['msg/taken', 'replace=true', 'fdbrokerctl: --replace'])
    r = root.create_memory('msg/taken', 4096)
    t.error(r, E_EXISTS, 'CreateMemory\'s Exists says the same', ['msg/taken', 'replace=true', '--replace'])
    t.success(root.remove('msg/taken'), 'remove msg/taken')


def test_someone_elses_entry_reads_like_a_missing_one_and_exists_does_not_suggest_replace(t, root, alice):
    t.success(root.deposit('msg/taken', memfd('1')), 'root deposits msg/taken')
    r = alice.remove('msg/taken')
    t.error(r, E_NOT_FOUND, 'Remove of a hidden entry reads like a missing one',
            ['msg/taken', 'that you may remove'])
    r = alice.deposit('msg/taken', memfd('3'))
    t.error(r, E_EXISTS, 'Exists for someone else\'s name does not suggest replace',
            ['belongs to someone else'])
