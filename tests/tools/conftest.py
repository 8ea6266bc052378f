# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for tests/tools: the integration suite's `t` (soft checks, one
"ok"/"not ok" line each: tests/integration/fixtures.py) and the tools'
own.

- `as_root`: skips, saying why, unless the tests run as root.
- `fake_apt`: tools/install-deps.sh run against fake apt-get and
  dpkg-query on PATH (they record what they were asked; nothing is
  installed) and a fake package lock, in a folder of the test's own that
  is removed after it. fake_apt.run(*args, timeout_s=, packages=) runs the
  script; fake_apt.holder(seconds) starts a process holding the lock (it is
  killed after the test if still running).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
from fixtures import *  # noqa: E402,F401,F403

import pytest  # noqa: E402

INSTALL_DEPS = os.path.join(SOURCE, 'tools', 'install-deps.sh')

FAKE_APT = '''#!/bin/sh
echo "$*" >> "%(log)s"
'''
# Every package "not installed", so the script always wants to install.
FAKE_DPKG_QUERY = '''#!/bin/sh
echo "un "
'''


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip('needs root (uid %d): the tool acts as root' % os.geteuid())


class FakeApt:
    def __init__(self, tmp):
        self.bindir = os.path.join(tmp, 'bin')
        os.mkdir(self.bindir)
        self.log = os.path.join(tmp, 'apt.log')
        for name, text in (('apt-get', FAKE_APT % {'log': self.log}), ('dpkg-query', FAKE_DPKG_QUERY)):
            with open(os.path.join(self.bindir, name), 'w') as f:
                f.write(text)
            os.chmod(os.path.join(self.bindir, name), 0o755)
        self.lock = os.path.join(tmp, 'lock-frontend')
        open(self.lock, 'w').close()
        self.holders = []

    def run(self, *args, timeout_s=5, packages=None):
        """install-deps.sh ARGS: r.returncode, r.stdout, r.stderr, r.apt
        (the fake apt-get's command lines), r.elapsed (seconds)."""
        if os.path.exists(self.log):
            os.unlink(self.log)
        env = {'PATH': self.bindir + ':/usr/bin:/bin:/usr/sbin:/sbin', 'FDB_APT_LOCKS': self.lock,
               'FDB_APT_LOCK_TIMEOUT': str(timeout_s), 'LANG': 'C.UTF-8'}
        if packages:
            env['FDB_INSTALL_DEPS_PACKAGES'] = packages
        start = time.monotonic()
        r = subprocess.run(['sh', INSTALL_DEPS] + list(args), env=env, capture_output=True, text=True, timeout=120)
        r.elapsed = time.monotonic() - start
        r.apt = open(self.log).read().splitlines() if os.path.exists(self.log) else []
        return r

    @staticmethod
    def installed(r):
        """The packages of the first `apt-get install` line of r."""
        lines = [a for a in r.apt if ' install ' in ' ' + a + ' ']
        return set(lines[0].split()) if lines else set()

    def holder(self, seconds):
        """A child process holding a POSIX lock on the fake lock file; its
        first line is 'locked' once it holds it."""
        code = ('import fcntl, os, sys, time\n'
                'f = open(sys.argv[1], "w"); fcntl.lockf(f, fcntl.LOCK_EX)\n'
                'print("locked", flush=True); time.sleep(float(sys.argv[2]))\n')
        p = subprocess.Popen([sys.executable, '-c', code, self.lock, str(seconds)], stdout=subprocess.PIPE, text=True)
        self.holders.append(p)
        return p

    def close(self):
        for p in self.holders:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()


@pytest.fixture
def fake_apt(as_root):
    tmp = tempfile.mkdtemp(prefix='fdbtest-install-deps-')
    try:
        f = FakeApt(tmp)
        yield f
        f.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
