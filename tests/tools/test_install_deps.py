# SPDX-License-Identifier: LGPL-2.1-or-later
"""tools/install-deps.sh: the demo's package list and the full one, and the
bounded wait for another apt/dpkg holding the lock. apt-get and dpkg-query
are fakes on PATH that record what they were asked (conftest.py: fake_apt,
a fresh one per test): nothing is installed."""


def test_demo_installs_the_build_and_demo_packages_only(t, fake_apt):
    demo = fake_apt.run('--demo')
    t.eq(demo.returncode, 0, '--demo runs apt and succeeds')
    d = fake_apt.installed(demo)
    t.ok('meson' in d and 'python3-gi' in d and 'dbus' in d, '--demo installs the build and the demo\'s '
         'packages', sorted(d))
    t.ok('clang' not in d and 'gjs' not in d and 's6' not in d, '--demo leaves out fuzzing, GJS and '
         'benchmark packages', sorted(d))


def test_the_default_installs_the_demo_packages_and_the_test_packages(t, fake_apt):
    d = fake_apt.installed(fake_apt.run('--demo'))
    full = fake_apt.run()
    t.eq(full.returncode, 0, 'the default run (all packages) runs apt and succeeds')
    f = fake_apt.installed(full)
    t.ok(d < f and {'clang', 'gjs', 's6', 'python3-dbusmock'} <= f, 'the default installs all of that '
         'and the test packages', sorted(f - d))


def test_apt_get_itself_waits_for_the_lock_too(t, fake_apt):
    full = fake_apt.run()
    t.ok(full.apt and all('DPkg::Lock::Timeout=5' in a for a in full.apt), 'apt-get itself waits for the lock too',
         full.apt)


def test_an_unknown_option_is_refused_naming_it(t, fake_apt):
    r = fake_apt.run('--bogus')
    t.ok(r.returncode == 2 and '--bogus' in r.stderr and not r.apt, 'an unknown option is refused, '
         'naming it', r.stderr)


def test_a_lock_held_past_the_bound_makes_it_give_up_saying_what_to_do(t, fake_apt):
    p = fake_apt.holder(60)
    t.eq(p.stdout.readline().strip(), 'locked', 'a process (pid %d) holds the lock' % p.pid)
    try:
        r = fake_apt.run(timeout_s=2, packages='fdbtest-no-such-package')
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


def test_a_lock_released_in_time_is_waited_for_once_then_it_installs(t, fake_apt):
    p = fake_apt.holder(1.5)
    t.eq(p.stdout.readline().strip(), 'locked', 'a process (pid %d) holds the lock' % p.pid)
    try:
        r = fake_apt.run(timeout_s=60, packages='fdbtest-no-such-package')
    finally:
        p.wait()
    t.ok(r.returncode == 0 and r.stdout.count('waiting for another apt/dpkg') == 1
         and 'installing fdbtest-no-such-package' in r.stdout,
         'a lock released in time: it waited once, then installed', r.stdout + r.stderr)
    t.ok(any('install' in a and 'fdbtest-no-such-package' in a for a in r.apt), 'apt-get install ran',
         r.apt)
    t.diag('waited %.1f s for a lock held 1.5 s' % r.elapsed)


def test_with_no_lock_held_it_does_not_wait(t, fake_apt):
    r = fake_apt.run(packages='fdbtest-no-such-package')
    t.ok(r.returncode == 0 and 'waiting' not in r.stdout, 'no lock held: no waiting', r.stdout)
