# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the policy files converted to pytest: the integration
suite's (tests/integration/fixtures.py). A file's rules go to its buses as
BUS_OPTIONS = {'policy_files': {...}} (the service reads only those:
--policy-dir), or through an overriding `bus` fixture built with bus_with()."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'integration'))
from fixtures import *  # noqa: E402,F401,F403
