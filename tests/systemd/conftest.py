# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for tests/systemd: the integration suite's (t, users, bus,
alice, ...: tests/integration/fixtures.py) and the service managers.

- `quiet_bus`: a fresh private bus whose broker is left alone: not activated
  by the fixture, free to exit and come back (idle exit, restarts), so no
  same-pid check at its end. A module's BUS_OPTIONS apply.
- `managed_bus`: a quiet_bus with its own activation switched off, so that
  only a broker started by a (fake) manager ever owns the name.
- `manager`: manager(runtime=True, extra=(), **FakeManager keywords) makes
  a fake_manager.FakeManager for the test's managed_bus (its own folder;
  runtime=True: with a runtime directory, mode 0755 so that the state file
  must protect itself); every one is closed after the test, its store,
  events and messages printed when the test failed.
- `user_manager`: a real `systemd --user` (usermanager.UserManager) of the
  test's own, skipping with the reason where that is impossible; stopped
  and cleaned up after the test, its logs printed when the test failed.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
from fixtures import *  # noqa: E402,F401,F403
from fixtures import _start_bus  # noqa: E402

import pytest  # noqa: E402

import harness  # noqa: E402
import usermanager  # noqa: E402
from fake_manager import FakeManager, broker_argv, disable_bus_activation  # noqa: E402


def _failed(request):
    return any(getattr(request.node, 'rep_' + w, None) is not None and getattr(request.node, 'rep_' + w).failed
               for w in ('setup', 'call'))


@pytest.fixture
def quiet_bus(request, environment):
    b = _start_bus(request)
    b.same_pid = False
    return b


@pytest.fixture
def managed_bus(quiet_bus):
    disable_bus_activation(quiet_bus)
    return quiet_bus


@pytest.fixture
def manager(request, managed_bus):
    made = []

    def make(runtime=True, extra=(), **kw):
        d = os.path.join(managed_bus.tmp, 'manager-%d' % len(made))
        os.makedirs(d)
        rd = None
        if runtime:
            rd = os.path.join(d, 'runtime')
            os.makedirs(rd)
            os.chmod(rd, 0o755)  # the state file must protect itself
        m = FakeManager(broker_argv(harness.service_binary(), managed_bus, rd, extra), d, managed_bus.log_path,
                        **kw)
        m.runtime_dir = rd
        m.state_path = os.path.join(rd, 'entries.state') if rd else None
        made.append(m)
        return m
    yield make
    failed = _failed(request)
    for m in made:
        if failed:
            sys.stderr.write('---- fake manager (%s) ----\n%s\n' % (m.workdir, m.describe()))
        m.close()


@pytest.fixture
def user_manager(request, environment):
    um = usermanager.UserManager()
    try:
        try:
            um.start()
        except usermanager.Skip as e:
            pytest.skip(str(e))
        yield um
    finally:
        if _failed(request) and um.workdir:
            try:
                with open(os.path.join(um.workdir, 'fdbroker.log'), errors='replace') as f:
                    log = f.read()
            except OSError:
                log = '(no service log)'
            sys.stderr.write('---- fdbroker.log ----\n%s\n---- systemd --user log ----\n%s\n'
                             % (log, um.manager_log()))
            if um.pid:
                try:
                    sys.stderr.write(um.systemctl('status', 'fdbroker.service', check=False).stdout + '\n')
                except Exception:  # noqa: BLE001
                    pass
        um.close()
