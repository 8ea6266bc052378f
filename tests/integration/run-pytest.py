#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs one pytest file for meson (protocol exitcode).

Exit status: 0 passed (some tests may skip, their reasons are printed),
1 something failed, 77 (meson SKIP) when no test ran: all skipped, none
collected (pytest's 5), or no pytest in this python3 (Debian:
python3-pytest, from tools/install-deps.sh)."""

import os
import signal
import sys

sys.dont_write_bytecode = True

try:
    import pytest
except ImportError as e:
    print('SKIP: pytest not importable in %s (apt-get install python3-pytest): %s' % (sys.executable, e))
    sys.exit(77)


class Outcomes:
    def __init__(self):
        self.ran = 0
        self.skipped = 0

    def pytest_runtest_logreport(self, report):
        if report.when == 'call' and not report.skipped:
            self.ran += 1
        elif report.skipped:
            self.skipped += 1


def main(argv):
    os.environ.setdefault('PYTHONDONTWRITEBYTECODE', '1')
    here = os.path.dirname(os.path.abspath(__file__))
    # meson's timeout sends SIGTERM: interrupt pytest the way Ctrl-C does,
    # so fixtures still stop their buses, brokers and polkitds.
    def on_term(*_):
        raise KeyboardInterrupt('SIGTERM')
    signal.signal(signal.SIGTERM, on_term)
    counter = Outcomes()
    # -v: one line per behaviour in the meson log; -rs: every skip's reason;
    # no cache in the source tree.
    files = [a.split('::')[0] for a in argv if not a.startswith('-')]
    rootdir = os.path.dirname(os.path.abspath(files[0])) if files else here
    args = ['-v', '-rfEs', '-p', 'no:cacheprovider', '--rootdir', rootdir] + argv
    rc = pytest.main(args, plugins=[counter])
    if rc == 5:
        print('SKIP: no tests collected')
        return 77
    if rc == 0 and counter.ran == 0 and counter.skipped > 0:
        print('SKIP: every test skipped (reasons above)')
        return 77
    return int(rc)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
