# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the client suite's pytest files: the integration suite's
(tests/integration/fixtures.py: `bus`, `bus_with`, `t`, `environment`...),
plus:

- `tmp`: a private directory (mode 0755, so that another user's
  fdbrokerctl can read files in it; its path short enough for unix socket
  names), removed after the test;
- `glib_clean`: fails the test (at teardown) when anything it ran in this
  process wrote a GLib CRITICAL or WARNING to stderr (G_DEBUG=fatal-criticals
  turns criticals into aborts already; warnings only show there)."""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'integration'))
from fixtures import *  # noqa: E402,F401,F403

import harness  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix='fdbclient-test-')
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def glib_clean(capfd):
    """Checks this process's stderr (fd 2, where GLib logs) over the test
    (pytest still shows what was captured in a failing test's report)."""
    yield
    _, err = capfd.readouterr()
    problems = harness.glib_stderr_problems(err)
    assert not problems, 'stderr has a GLib CRITICAL or WARNING (G_DEBUG=fatal-criticals):\n' + '\n'.join(problems)
