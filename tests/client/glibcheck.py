# SPDX-License-Identifier: LGPL-2.1-or-later
"""run_glib_checked(): runs a TAP-printing GLib test program (the C and GJS
client tests, which g_test makes print TAP) with G_DEBUG=fatal-criticals,
passes its TAP on and adds one subtest: no GLib CRITICAL or WARNING on its
stderr. Used by run-glib-checked.py (no bus) and run-with-bus.py (a private
bus from tests/integration/harness.py)."""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
from harness import glib_env, glib_stderr_problems  # noqa: E402


def run_glib_checked(cmd, extra_env=None, drop_env=()):
    """Runs a TAP-printing GLib program (a test file re-executing itself)
    with G_DEBUG=fatal-criticals, passes its TAP lines on, and adds one
    subtest: its stderr has no GLib CRITICAL or WARNING. Returns the exit
    status to use."""
    env = glib_env()
    env.update(extra_env or {})
    for var in drop_env:
        env.pop(var, None)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    n = 0
    plan_skip = None
    for line in p.stdout.splitlines():
        m = re.match(r'^1\.\.(\d+)(.*)$', line)
        if m:
            if int(m.group(1)) == 0:
                plan_skip = line
            continue
        if re.match(r'^(not )?ok \d+', line):
            n += 1
            line = re.sub(r'^((?:not )?ok) \d+', r'\g<1> %d' % n, line)
        print(line, flush=True)
    sys.stderr.write(p.stderr)
    if plan_skip is not None and n == 0:
        print(plan_skip, flush=True)
        return 0
    bad = glib_stderr_problems(p.stderr)
    n += 1
    if bad:
        print('not ok %d - stderr has no GLib CRITICAL or WARNING (G_DEBUG=fatal-criticals)' % n)
        for line in bad:
            print('# ' + line)
    else:
        print('ok %d - stderr has no GLib CRITICAL or WARNING (G_DEBUG=fatal-criticals)' % n)
    if p.returncode < 0:
        n += 1
        print('not ok %d - the program was killed by signal %d (a fatal critical aborts)' % (n, -p.returncode))
    print('1..%d' % n, flush=True)
    return 1 if (bad or p.returncode != 0) else 0
