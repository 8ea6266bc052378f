# SPDX-License-Identifier: LGPL-2.1-or-later
"""docs/client.md tells the truth: every code block marked
<!-- tested: FILE --> is compiled (C, with the very `pkg-config --cflags
--libs fdbroker-client` the page shows, against the build tree's
uninstalled .pc) and run against the broker on a private bus (a fresh one
per test), which DBUS_SYSTEM_BUS_ADDRESS points the examples'
G_BUS_TYPE_SYSTEM at. No example may print a GLib CRITICAL or WARNING
(G_DEBUG=fatal-criticals)."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import harness
import pytest

SOURCE = harness.source_dir()
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
DOC = os.path.join(SOURCE, 'docs', 'client.md')

# As the TAP version: nothing runs where the harness cannot.
pytestmark = pytest.mark.usefixtures('environment')


def blocks():
    with open(DOC) as f:
        text = f.read()
    return dict(re.findall(r'<!-- tested: (\S+) -->\n```\w*\n(.*?)```', text, re.S))


def can_build():
    for tool in ('cc', 'pkg-config'):
        if not shutil.which(tool):
            pytest.skip('%s not installed' % tool)
    if not os.path.exists(os.path.join(BUILD, 'client', 'FdBroker-1.0.typelib')):
        pytest.skip('FdBroker-1.0.typelib not built (gobject-introspection missing)')


@pytest.fixture(scope='module')
def examples():
    """A directory with every tested block written out and the C ones
    compiled: (dir, {prog: compiler result}). Built once for the file: it
    holds no broker state."""
    can_build()
    tmp = tempfile.mkdtemp(prefix='fdbroker-docs-')
    try:
        for name, code in blocks().items():
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(code)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, 'meson-uninstalled'))
        sanitize = os.environ.get('FDBROKER_SANITIZE', 'none')
        cflags = '' if sanitize == 'none' else '-fsanitize=' + sanitize
        built = {}
        for prog in ('share-frame', 'view-frame'):
            built[prog] = subprocess.run(
                'cc %s -Wall -Wextra -Werror -o %s %s.c $(pkg-config --cflags --libs fdbroker-client)'
                % (cflags, prog, prog), shell=True, cwd=tmp, env=env, capture_output=True, text=True)
        yield tmp, built
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Runner:
    """Runs an example against the test's bus, collecting GLib problems
    from its stderr."""

    def __init__(self, bus, cwd):
        self.cwd = cwd
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address,
                   LD_LIBRARY_PATH=os.path.join(BUILD, 'client'),
                   GI_TYPELIB_PATH=os.path.join(BUILD, 'client'),
                   PATH=os.path.join(BUILD, 'client') + ':/usr/bin:/bin')
        self.env = harness.glib_env(env)  # G_DEBUG=fatal-criticals
        self.glib_problems = []

    def __call__(self, *cmd):
        r = subprocess.run(list(cmd), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60)
        self.glib_problems.extend('%s: %s' % (' '.join(cmd), line)
                                  for line in harness.glib_stderr_problems(r.stderr))
        return r

    def check_glib(self, t):
        t.eq(self.glib_problems, [], 'no example printed a GLib CRITICAL or WARNING (G_DEBUG=fatal-criticals)')


@pytest.fixture
def run(bus, examples):
    return Runner(bus, examples[0])


def test_client_md_has_its_tested_blocks(t):
    t.eq(sorted(blocks()), ['fdbrokerctl.sh', 'share-frame.c', 'share.py', 'view-frame.c', 'watch.py'],
         'docs/client.md has its tested blocks')


@pytest.mark.parametrize('prog', ['share-frame', 'view-frame'])
def test_the_c_example_compiles_with_the_pkg_config_line_the_page_shows(t, examples, prog):
    r = examples[1][prog]
    t.ok(r.returncode == 0, '%s.c compiles with pkg-config --cflags --libs fdbroker-client' % prog,
         r.stdout + r.stderr)


def test_view_frame_handles_not_found_then_shows_what_share_frame_deposited(t, examples, run):
    assert all(r.returncode == 0 for r in examples[1].values()), 'the C examples did not compile'
    r = run('./view-frame')
    t.ok(r.returncode == 1 and 'no frame yet' in r.stderr and 'camera/frame' in r.stderr,
         'view-frame before share-frame: NotFound, handled as the page shows', r)
    r = run('./share-frame')
    t.ok(r.returncode == 0, 'share-frame deposits the frame', r)
    r = run('./view-frame')
    t.eq(r.stdout, '1048576 bytes from uid %d, sealed: 1, first pixel: 128\n' % os.geteuid(),
         'view-frame prints what the page says')
    run.check_glib(t)


def test_share_py_prints_what_the_page_says(t, run):
    r = run('/usr/bin/python3', 'share.py')
    t.eq(r.stdout, "memfd 18 b'hello from Python\\n'\n"
                   "not there: No entry named 'demo/missing' that you may retrieve.\n",
         'share.py prints what the page says')
    run.check_glib(t)


def test_watch_py_prints_what_the_page_says(t, run):
    r = run('/usr/bin/python3', 'watch.py')
    t.eq(r.stdout, 'added pictures/cat memfd 5\nremoved pictures/cat removed\n',
         'watch.py prints what the page says')
    run.check_glib(t)


def test_fdbrokerctl_sh_prints_what_the_page_says(t, run):
    r = run('sh', '-e', 'fdbrokerctl.sh')
    out = r.stdout
    t.ok(out.startswith('settings=1\nconfig/app on fd 3: settings=1\n['), 'fdbrokerctl.sh: cat and retrieve',
         out + r.stderr)
    try:
        listed = json.loads(out[out.index('['):out.rindex(']') + 1])
    except ValueError:
        listed = None
    t.ok(listed and listed[0]['name'] == 'config/app' and listed[0]['description'] == 'app settings'
         and listed[0]['size'] == 11, 'fdbrokerctl.sh: list --json', out)
    t.ok(out.endswith('exit status 1\n') and
         "fdbrokerctl: No entry named 'config/app' that you may retrieve." in r.stderr,
         'fdbrokerctl.sh: cat after remove fails as shown', r)
    run.check_glib(t)
