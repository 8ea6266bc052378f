#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""docs/client.md tells the truth: every code block marked
<!-- tested: FILE --> is compiled (C, with the very `pkg-config --cflags
--libs fdbroker-client` the page shows, against the build tree's
uninstalled .pc) and run against the broker on a private bus, which
DBUS_SYSTEM_BUS_ADDRESS points the examples' G_BUS_TYPE_SYSTEM at."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))

import harness  # noqa: E402

DOC = os.path.join(SOURCE, 'docs', 'client.md')


def blocks():
    text = open(DOC).read()
    return dict(re.findall(r'<!-- tested: (\S+) -->\n```\w*\n(.*?)```', text, re.S))


def body(tap):
    found = blocks()
    tap.eq(sorted(found), ['fdbrokerctl.sh', 'share-frame.c', 'share.py', 'view-frame.c', 'watch.py'],
           'docs/client.md has its tested blocks')
    for tool in ('cc', 'pkg-config'):
        if not shutil.which(tool):
            raise harness.Skip('%s not installed' % tool)
    if not os.path.exists(os.path.join(BUILD, 'client', 'FdBroker-1.0.typelib')):
        raise harness.Skip('FdBroker-1.0.typelib not built (gobject-introspection missing)')

    tmp = tempfile.mkdtemp(prefix='fdbroker-docs-')
    try:
        for name, code in found.items():
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(code)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, 'meson-uninstalled'))
        sanitize = os.environ.get('FDBROKER_SANITIZE', 'none')
        cflags = '' if sanitize == 'none' else '-fsanitize=' + sanitize
        for prog in ('share-frame', 'view-frame'):
            r = subprocess.run('cc %s -Wall -Wextra -Werror -o %s %s.c $(pkg-config --cflags --libs fdbroker-client)'
                               % (cflags, prog, prog), shell=True, cwd=tmp, env=env, capture_output=True, text=True)
            tap.ok(r.returncode == 0, '%s.c compiles with pkg-config --cflags --libs fdbroker-client' % prog,
                   r.stdout + r.stderr)

        bus, _ = harness.setup(tap)
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address,
                   LD_LIBRARY_PATH=os.path.join(BUILD, 'client'),
                   GI_TYPELIB_PATH=os.path.join(BUILD, 'client'),
                   PATH=os.path.join(BUILD, 'client') + ':/usr/bin:/bin')

        env = harness.glib_env(env)  # G_DEBUG=fatal-criticals
        glib_problems = []

        def run(*cmd):
            r = subprocess.run(list(cmd), cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
            glib_problems.extend('%s: %s' % (' '.join(cmd), line) for line in harness.glib_stderr_problems(r.stderr))
            return r

        r = run('./view-frame')
        tap.ok(r.returncode == 1 and 'no frame yet' in r.stderr and 'camera/frame' in r.stderr,
               'view-frame before share-frame: NotFound, handled as the page shows', r)
        r = run('./share-frame')
        tap.ok(r.returncode == 0, 'share-frame deposits the frame', r)
        r = run('./view-frame')
        tap.eq(r.stdout, '1048576 bytes from uid %d, sealed: 1, first pixel: 128\n' % os.geteuid(),
               'view-frame prints what the page says')

        r = run('/usr/bin/python3', 'share.py')
        tap.eq(r.stdout, "memfd 18 b'hello from Python\\n'\n"
                         "not there: No entry named 'demo/missing' that you may retrieve.\n",
               'share.py prints what the page says')

        r = run('/usr/bin/python3', 'watch.py')
        tap.eq(r.stdout, 'added pictures/cat memfd 5\nremoved pictures/cat removed\n',
               'watch.py prints what the page says')

        r = run('sh', '-e', 'fdbrokerctl.sh')
        out = r.stdout
        tap.ok(out.startswith('settings=1\nconfig/app on fd 3: settings=1\n['), 'fdbrokerctl.sh: cat and retrieve',
               out + r.stderr)
        try:
            listed = json.loads(out[out.index('['):out.rindex(']') + 1])
        except ValueError:
            listed = None
        tap.ok(listed and listed[0]['name'] == 'config/app' and listed[0]['description'] == 'app settings'
               and listed[0]['size'] == 11, 'fdbrokerctl.sh: list --json', out)
        tap.ok(out.endswith('exit status 1\n') and
               "fdbrokerctl: No entry named 'config/app' that you may retrieve." in r.stderr,
               'fdbrokerctl.sh: cat after remove fails as shown', r)
        tap.eq(glib_problems, [], 'no example printed a GLib CRITICAL or WARNING (G_DEBUG=fatal-criticals)')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


harness.main(body)
