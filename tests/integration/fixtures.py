# SPDX-License-Identifier: LGPL-2.1-or-later
"""pytest fixtures over harness.py, for tests/integration and tests/policy
(each conftest.py imports everything from here).

Every test gets a fresh private bus and a fresh broker (`bus`), so no test
sees another's entries, waiters, connections or limits. Clients act as the
test users (`alice`, `bob`, `carol`) or as root (`root`); each is a
client.py subprocess made for that test and closed after it.

`t` is a soft-assertion recorder: t.ok/eq/success/error print one
"ok - ..." / "not ok - ..." line per behaviour checked and the test fails at
its end if any did not hold (every check runs, as the TAP files did). A
failing test prints the service's and the bus's logs.

A module may set BUS_OPTIONS = {...} (PrivateBus keyword arguments, e.g.
policy_files) for the buses of its tests.
"""

import json
import os
import sys

import pytest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Skip  # noqa: E402

__all__ = ['pytest_pyfunc_call', 'pytest_runtest_makereport', 'pytest_terminal_summary',
           't', 'environment', 'users', 'maybe_users', 'bus', 'bus_with', 'root', 'alice', 'bob', 'carol']


PARTIAL_SKIPS = []


class Checks:
    """What Tap did, for one test: soft checks, each printed as it runs."""

    def __init__(self, nodeid=''):
        self.nodeid = nodeid
        self.n = 0
        self.failed = []
        self.skipped = []

    def _line(self, s):
        sys.stdout.write(s + '\n')

    def diag(self, text):
        for line in str(text).splitlines() or ['']:
            self._line('# ' + line)

    def ok(self, cond, name, diag=None):
        self.n += 1
        if cond:
            self._line('ok %d - %s' % (self.n, name))
        else:
            self._line('not ok %d - %s' % (self.n, name))
            if diag is not None:
                if not isinstance(diag, str):
                    diag = json.dumps(diag, indent=1, default=repr, sort_keys=True)
                self.diag(diag)
            self.failed.append(name)
        return bool(cond)

    def eq(self, got, expected, name):
        return self.ok(got == expected, name, 'expected: %r\n     got: %r' % (expected, got))

    def skip(self, name, reason):
        """A part of a test that cannot run here (the rest still does)."""
        self._line('skip - %s: %s' % (name, reason))
        self.skipped.append('%s: %s' % (name, reason))
        PARTIAL_SKIPS.append('%s: %s: %s' % (self.nodeid, name, reason))

    def error(self, res, errname, name, contains=None):
        """res must be the D-Bus error errname, its message containing each
        of contains (a tuple: any one of; case-insensitive)."""
        good = isinstance(res, dict) and not res.get('ok') and res.get('error') == errname
        msg = ((res or {}).get('message') or '').lower()
        missing = [c for c in (contains or [])
                   if not (any(x.lower() in msg for x in c) if isinstance(c, (tuple, list))
                           else c.lower() in msg)]
        return self.ok(good and not missing, name,
                       {'expected_error': errname, 'message_should_contain': contains or [],
                        'got': res})

    def success(self, res, name):
        return self.ok(isinstance(res, dict) and res.get('ok'), name, {'got': res})

    def verdict(self):
        if self.failed:
            raise AssertionError('%d of %d checks failed:\n  %s'
                                 % (len(self.failed), self.n, '\n  '.join(self.failed)))
        if self.n == 0 and self.skipped:
            pytest.skip('; '.join(self.skipped))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Runs the test, then fails it if any of its soft checks failed."""
    args = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
    try:
        pyfuncitem.obj(**args)
    except Skip as e:
        pytest.skip(str(e))
    checks = pyfuncitem.funcargs.get('t')
    if checks is not None:
        checks.verdict()
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


def pytest_terminal_summary(terminalreporter):
    """Parts of passing tests that could not run here, with the reason."""
    if PARTIAL_SKIPS:
        terminalreporter.section('parts skipped inside tests')
        for line in PARTIAL_SKIPS:
            terminalreporter.line('SKIP ' + line)


@pytest.fixture
def t(request):
    return Checks(request.node.nodeid)


@pytest.fixture(scope='session')
def environment():
    try:
        harness.check_environment()
    except Skip as e:
        pytest.skip(str(e))


@pytest.fixture(scope='session')
def users():
    """{'alice'|'bob'|'carol': {'name','uid','gid','groups'}, 'video': gid}."""
    try:
        return harness.ensure_test_users()
    except Skip as e:
        pytest.skip(str(e))


@pytest.fixture(scope='session')
def maybe_users():
    """users, or None (with the reason in harness.user_skip) when the test
    users cannot be made here."""
    try:
        return harness.ensure_test_users()
    except Skip as e:
        harness.user_skip = str(e)
        return None


def _print_logs(bus):
    sys.stderr.write('---- fdbroker.log (%s) ----\n%s\n---- dbus-daemon.log ----\n%s\n---- end of logs ----\n'
                     % (bus.log_path, bus.service_log(), bus.daemon_log()))


def _start_bus(request, **kw):
    """A started PrivateBus with the module's BUS_OPTIONS (overridden by
    kw); stopped, checked for sanitizer reports and removed after the
    test. bus.same_pid (default True): the test fails unless the first
    service process it activated is still the one running at its end."""
    opts = dict(getattr(request.module, 'BUS_OPTIONS', {}))
    opts.update(kw)
    try:
        bus = harness.PrivateBus(harness.service_binary(), harness.source_dir(), **opts)
        bus.start()
    except Skip as e:
        pytest.skip(str(e))
    bus.same_pid = True

    def finish():
        problems = []
        pid0 = getattr(bus, 'pid0', None)
        if bus.same_pid and pid0 is not None:
            pid = bus.service_pid(activate=False)
            if pid != pid0:
                problems.append('the service did not stay up: pid %r at the start, %r at the end' % (pid0, pid))
        bus.stop(cleanup=False)
        log = bus.service_log()
        found = [m for m in harness.SANITIZER_MARKERS if m in log]
        if found:
            problems.append('the service log has a sanitizer report: %s' % found)
        failed = any(getattr(request.node, 'rep_' + w, None) is not None
                     and getattr(request.node, 'rep_' + w).failed for w in ('setup', 'call'))
        if failed or problems:
            _print_logs(bus)
        bus.cleanup()
        assert not problems, '; '.join(problems)
    request.addfinalizer(finish)
    return bus


@pytest.fixture
def bus(request, environment):
    """A fresh private bus with a fresh broker, activated (bus.pid0)."""
    b = _start_bus(request)
    try:
        b.pid0 = b.service_pid()
    except Skip as e:
        pytest.skip(str(e))
    return b


@pytest.fixture
def bus_with(request, environment):
    """bus_with(**PrivateBus keywords): one more fresh bus and broker for a
    test that needs other options (policy files, limits) than its module's."""
    def make(**kw):
        b = _start_bus(request, **kw)
        b.pid0 = b.service_pid()
        return b
    return make


def _client(bus, who):
    try:
        return bus.client(who)
    except Skip as e:
        pytest.skip(str(e))


@pytest.fixture
def root(bus):
    """A client as the test process's own uid (root)."""
    return _client(bus, None)


@pytest.fixture
def alice(bus, users):
    return _client(bus, users['alice'])


@pytest.fixture
def bob(bus, users):
    """bob is in fdbtest-video."""
    return _client(bus, users['bob'])


@pytest.fixture
def carol(bus, users):
    return _client(bus, users['carol'])
