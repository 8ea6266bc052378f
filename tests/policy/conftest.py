# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the policy files converted to pytest: the integration
suite's (tests/integration/fixtures.py). A file's rules go to its buses as
BUS_OPTIONS = {'policy_files': {...}} (the service reads only those:
--policy-dir), or through an overriding `bus` fixture built with bus_with().
`mock` is a polkit mock on the test's bus."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'integration'))
from fixtures import *  # noqa: E402,F401,F403

import pytest  # noqa: E402


@pytest.fixture
def mock(bus):
    """python3-dbusmock's polkitd template on the test's bus (which must
    let root own org.freedesktop.PolicyKit1: policyutil.POLKIT_BUS_CONFIG);
    stopped before the bus."""
    import policyutil
    why = policyutil.dbusmock_missing()
    if why:
        pytest.skip(why)
    m = policyutil.PolkitMock(bus)
    yield m
    m.stop()
