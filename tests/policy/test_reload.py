# SPDX-License-Identifier: LGPL-2.1-or-later
"""Policy life cycle (SPEC §2, §3): SIGHUP reloads; a broken reload keeps
serving the old rules and logs why; a good one changes behaviour at once;
a broken policy at start keeps the service from starting (bus activation
fails and the log says why)."""

import os
import signal

import pytest

from harness import E_NOT_FOUND, GLib, memfd, poll_until

A_RULES = '''\
[Rule bob-reads-a]
Action=retrieve
Match=a/*
Subject=user:fdbtest-bob
Result=yes

[Limits]
MaxEntries=10
'''

B_RULES = '''\
[Rule bob-reads-b]
Action=retrieve
Match=b/*
Subject=user:fdbtest-bob
Result=yes

[Limits]
MaxEntries=20
'''

BROKEN = B_RULES + '''
[Rule half]
Action=retrieve
'''


@pytest.fixture
def bus(bus_with):
    """A fresh bus and broker reading only A_RULES (as 10-main.conf)."""
    return bus_with(policy_files={'10-main.conf': A_RULES})


@pytest.fixture
def main_conf(bus):
    return os.path.join(bus.policy_dir, '10-main.conf')


def test_sighup_reloads_a_good_policy_and_keeps_the_old_one_when_broken(t, bus, alice, bob, main_conf):
    pid = bus.service_pid()

    def log_count(text):
        return bus.service_log().count(text)

    def hup(expect, what):
        n = log_count(expect)
        os.kill(pid, signal.SIGHUP)
        return t.ok(poll_until(lambda: log_count(expect) > n, timeout=20),
                    'after SIGHUP the log says "%s" (%s)' % (expect, what))

    t.success(alice.deposit('a/1', memfd('a')), 'alice deposits a/1')
    t.success(alice.deposit('b/1', memfd('b')), 'and b/1 (neither allows bob)')
    t.success(bob.retrieve('a/1'), 'rule bob-reads-a: bob retrieves a/1')
    t.error(bob.retrieve('b/1'), E_NOT_FOUND, 'but not b/1')
    t.eq(bus.get_property('MaxEntries'), 10, 'MaxEntries is 10')

    with open(main_conf, 'w') as f:
        f.write(BROKEN)
    if hup('keeping the old one', 'a broken file'):
        log = bus.service_log()
        t.ok('%s:%d: rule \'half\' has no Subject= line.' % (main_conf, BROKEN.count('\n') - 1) in log,
             'the log names the problem with FILE:LINE', log[-600:])
    t.success(bob.retrieve('a/1'), 'the old rules still serve: bob still retrieves a/1')
    t.error(bob.retrieve('b/1'), E_NOT_FOUND, 'and still not b/1')
    t.eq(bus.get_property('MaxEntries'), 10, 'MaxEntries still 10')

    with open(main_conf, 'w') as f:
        f.write(B_RULES)
    hup('policy reloaded: 1 rule(s)', 'a good file')
    t.success(bob.retrieve('b/1'), 'the new rule: bob retrieves b/1')
    t.error(bob.retrieve('a/1'), E_NOT_FOUND, 'and no longer a/1')
    t.eq(bus.get_property('MaxEntries'), 20, 'MaxEntries is 20')

    os.unlink(main_conf)
    hup('policy reloaded: 0 rule(s)', 'no files')
    t.error(bob.retrieve('b/1'), E_NOT_FOUND, 'no rules: only the ACL, bob gets NotFound for b/1')
    t.eq(bus.get_property('MaxEntries'), 4096, 'MaxEntries back to the built-in 4096')
    t.eq(bus.service_pid(activate=False), pid, 'the same process served throughout')
    t.eq(bus.entry_count(), 2, 'and kept its entries')


def test_a_broken_policy_at_start_keeps_the_service_from_starting(t, bus, main_conf):
    bus.same_pid = False
    bus.stop_service()
    t.ok(not bus.service_running(), 'service stopped')
    with open(main_conf, 'w') as f:
        f.write(BROKEN)
    log0 = len(bus.service_log())
    try:
        bus.entry_count()
        err = None
    except GLib.Error as e:
        err = e.message
    t.ok(err is not None, 'a call to the broker fails: activation did not bring it up', err)
    t.ok(err is not None and 'org.freedesktop.DBus.Error.Spawn' in err,
         'with a Spawn error from the bus', err)
    t.ok(not bus.service_running(), 'and the name has no owner')
    log = bus.service_log()[log0:]
    t.ok('refusing to start with a broken policy' in log, 'the log says it refused to start', log)
    t.ok("%s:%d: rule 'half' has no Subject= line." % (main_conf, BROKEN.count('\n') - 1) in log,
         'and names the problem with FILE:LINE', log)
    with open(main_conf, 'w') as f:
        f.write(A_RULES)
    t.eq(bus.get_property('MaxEntries'), 10, 'with the file fixed, the next call activates it with the new policy')
