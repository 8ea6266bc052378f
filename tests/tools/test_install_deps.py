#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/install-deps.sh: the demo's package list and the full one, and the
bounded wait for another apt/dpkg holding the lock. apt-get and dpkg-query
are fakes on PATH that record what they were asked: nothing is installed."""

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
import harness  # noqa: E402

SCRIPT = os.path.join(SOURCE, 'tools', 'install-deps.sh')

FAKE_APT = '''#!/bin/sh
echo "$*" >> "%(log)s"
'''
# Every package "not installed", so the script always wants to install.
FAKE_DPKG_QUERY = '''#!/bin/sh
echo "un "
'''


def body(t):
    if os.geteuid() != 0:
        raise harness.Skip('install-deps.sh installs only as root; run the tests as root')
    tmp = tempfile.mkdtemp(prefix='fdbtest-install-deps-')
    try:
        bindir = os.path.join(tmp, 'bin')
        os.mkdir(bindir)
        log = os.path.join(tmp, 'apt.log')
        for name, text in (('apt-get', FAKE_APT % {'log': log}), ('dpkg-query', FAKE_DPKG_QUERY)):
            with open(os.path.join(bindir, name), 'w') as f:
                f.write(text)
            os.chmod(os.path.join(bindir, name), 0o755)
        lock = os.path.join(tmp, 'lock-frontend')
        open(lock, 'w').close()

        def run(*args, timeout_s=5, packages=None):
            if os.path.exists(log):
                os.unlink(log)
            env = {'PATH': bindir + ':/usr/bin:/bin:/usr/sbin:/sbin', 'FDB_APT_LOCKS': lock,
                   'FDB_APT_LOCK_TIMEOUT': str(timeout_s), 'LANG': 'C.UTF-8'}
            if packages:
                env['FDB_INSTALL_DEPS_PACKAGES'] = packages
            start = time.monotonic()
            r = subprocess.run(['sh', SCRIPT] + list(args), env=env, capture_output=True, text=True, timeout=120)
            r.elapsed = time.monotonic() - start
            r.apt = open(log).read().splitlines() if os.path.exists(log) else []
            return r

        def installed(r):
            lines = [a for a in r.apt if ' install ' in ' ' + a + ' ']
            return set(lines[0].split()) if lines else set()

        def lists():
            demo = run('--demo')
            full = run()
            t.eq((demo.returncode, full.returncode), (0, 0), '--demo and the default run apt and succeed')
            d, f = installed(demo), installed(full)
            t.ok('meson' in d and 'python3-gi' in d and 'dbus' in d, '--demo installs the build and the demo\'s '
                 'packages', sorted(d))
            t.ok('clang' not in d and 'gjs' not in d and 's6' not in d, '--demo leaves out fuzzing, GJS and '
                 'benchmark packages', sorted(d))
            t.ok(d < f and {'clang', 'gjs', 's6', 'python3-dbusmock'} <= f, 'the default installs all of that '
                 'and the test packages', sorted(f - d))
            t.ok(all('DPkg::Lock::Timeout=5' in a for a in full.apt), 'apt-get itself waits for the lock too',
                 full.apt)
            r = run('--bogus')
            t.ok(r.returncode == 2 and '--bogus' in r.stderr and not r.apt, 'an unknown option is refused, '
                 'naming it', r.stderr)
        t.run('package lists', lists)

        def holder(seconds):
            """A child process holding a POSIX lock on the fake lock file."""
            code = ('import fcntl, os, sys, time\n'
                    'f = open(sys.argv[1], "w"); fcntl.lockf(f, fcntl.LOCK_EX)\n'
                    'print("locked", flush=True); time.sleep(float(sys.argv[2]))\n')
            p = subprocess.Popen([sys.executable, '-c', code, lock, str(seconds)], stdout=subprocess.PIPE, text=True)
            t.eq(p.stdout.readline().strip(), 'locked', 'a process (pid %d) holds the lock' % p.pid)
            return p

        def times_out():
            p = holder(60)
            try:
                r = run(timeout_s=2, packages='fdbtest-no-such-package')
            finally:
                p.kill()
                p.wait()
            waits = [line for line in r.stdout.splitlines() if 'waiting for another apt/dpkg' in line]
            t.ok(len(waits) == 1, 'it says once that it waits', r.stdout)
            t.ok(waits and ('pid %d: python' % p.pid) in waits[0], 'naming the holder\'s pid and name', waits)
            t.ok(r.returncode == 1 and 'still holds the package lock after 2 s' in r.stderr and 'run' in r.stderr,
                 'after the bound: exit 1, saying what to do', r.stderr)
            t.eq(r.apt, [], 'apt-get never ran')
            t.diag('gave up after %.1f s (bound 2 s)' % r.elapsed)
        t.run('lock held too long', times_out)

        def released():
            p = holder(1.5)
            try:
                r = run(timeout_s=60, packages='fdbtest-no-such-package')
            finally:
                p.wait()
            t.ok(r.returncode == 0 and r.stdout.count('waiting for another apt/dpkg') == 1
                 and 'installing fdbtest-no-such-package' in r.stdout,
                 'a lock released in time: it waited once, then installed', r.stdout + r.stderr)
            t.ok(any('install' in a and 'fdbtest-no-such-package' in a for a in r.apt), 'apt-get install ran',
                 r.apt)
            r = run(packages='fdbtest-no-such-package')
            t.ok(r.returncode == 0 and 'waiting' not in r.stdout, 'no lock held: no waiting', r.stdout)
        t.run('lock released', released)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    t = harness.Tap()
    try:
        body(t)
    except harness.Skip as e:
        if t.n == 0:
            harness.skip_all(str(e))
        t.skip('rest', str(e))
    sys.exit(t.done())


if __name__ == '__main__':
    main()
