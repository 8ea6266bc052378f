# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the hostile suite (issue 9): the integration suite's
(tests/integration/fixtures.py: `t`, `bus`, `bus_with`, `users`, `root`,
`alice`, `bob`, `carol`), plus what only attacks need, each undone after its
test:

- `raw`: raw(user) starts an attacker on a bare socket (rawbus.RawClient,
  run as that user) on the test's bus, closed after it;
- `fuse_stub`: a mounted tests/hostile/fusestub.py file system, released,
  unmounted and removed after the test (skips when it cannot be mounted);
- `shared_dir`: a temporary directory every test user may enter;
- `bus_on`: bus_on(kind) a fresh bus and broker on 'dbus-daemon' or
  'dbus-broker', for the two files that run both in one variant.

The variant a file runs in (meson: plain, dbus-broker, direct-socket,
service-user) reaches the harness through the environment; `variant()`
names it for skips. Shared helpers are in hostileutil.py."""

import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
sys.path.insert(0, HERE)
from fixtures import *  # noqa: E402,F401,F403

import pytest  # noqa: E402


@pytest.fixture
def raw(request):
    """raw(user, direct=False, bus=None): an attacker that marshals its own
    messages and reads only when told (rawbus.py), as user (a `users`
    entry), on bus (default: the test's `bus`) or (direct) the broker's own
    socket. Closed after the test (closing one earlier, as a test that makes
    the attacker leave does, is fine)."""
    from rawbus import RawClient
    made = []

    def make(user, direct=False, bus=None):
        if bus is None:
            bus = request.getfixturevalue('bus')
        c = RawClient(bus, user, direct=direct)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.fixture
def fuse_stub():
    """A fusestub.FuseStub mounted on a fresh directory (needs root and
    /dev/fuse, else the test skips saying which)."""
    if os.geteuid() != 0:
        pytest.skip('needs root to mount the FUSE stub')
    if not os.path.exists('/dev/fuse'):
        pytest.skip('no /dev/fuse')
    import fusestub
    mnt = tempfile.mkdtemp(prefix='fdb-fuse-')
    os.chmod(mnt, 0o755)
    stub = fusestub.FuseStub(mnt)
    try:
        stub.start()
    except OSError as e:
        shutil.rmtree(mnt, ignore_errors=True)
        pytest.skip('cannot mount a FUSE file system here: %s' % e)
    yield stub
    stub.release()
    stub.stop()
    os.rmdir(mnt)


@pytest.fixture
def shared_dir():
    """A temporary directory (mode 0755, owned by root) removed after the
    test: pytest's tmp_path is not reachable by the test users."""
    d = tempfile.mkdtemp(prefix='fdb-hostile-')
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def bus_on(monkeypatch, bus_with):
    """bus_on(kind): a fresh bus of that kind ('dbus-daemon' or
    'dbus-broker') with a fresh broker. PrivateBus reads its kind from
    FDBROKER_TEST_BUS whenever it needs it (stop() too): monkeypatch is set
    up before bus_with, so it is undone only after that bus stopped."""
    def make(kind):
        monkeypatch.setenv('FDBROKER_TEST_BUS', kind)
        return bus_with()
    return make


def pytest_configure(config):
    # A helper thread that dies (the FUSE stub's server) fails its test
    # instead of leaving a warning in the summary.
    config.addinivalue_line('filterwarnings', 'error::pytest.PytestUnhandledThreadExceptionWarning')
