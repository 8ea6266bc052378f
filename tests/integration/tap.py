# SPDX-License-Identifier: LGPL-2.1-or-later
"""The TAP runner of the suites still written as one body(t) per file
(tests/policy, systemd, hostile, client, tools): Tap, main(body),
skip_all, run_glib_checked. Moved out of harness.py, which re-exports
them; tests/integration runs on pytest instead (conftest.py)."""

import json
import re
import subprocess
import sys
import traceback

from harness import SANITIZER_MARKERS, Skip, check_environment, glib_env, glib_stderr_problems


class Tap:
    """Subtests as TAP lines. done() prints the plan, prints the service's
    and the bus's logs to stderr when anything failed, and exits."""

    def __init__(self):
        self.n = 0
        self.failed = []
        self.bus = None
        sys.stdout.reconfigure(line_buffering=True)

    def _line(self, s):
        sys.stdout.write(s + '\n')
        sys.stdout.flush()

    def diag(self, text):
        for line in str(text).splitlines() or ['']:
            self._line('# ' + line)

    def ok(self, cond, name, diag=None):
        self.n += 1
        name = name.replace('#', '\\#')
        if cond:
            self._line('ok %d - %s' % (self.n, name))
        else:
            self._line('not ok %d - %s' % (self.n, name))
            self.failed.append(name)
            if diag is not None:
                if not isinstance(diag, str):
                    diag = json.dumps(diag, indent=1, default=repr, sort_keys=True)
                self.diag(diag)
        return bool(cond)

    def eq(self, got, expected, name):
        return self.ok(got == expected, name, 'expected: %r\n     got: %r' % (expected, got))

    def skip(self, name, reason):
        self.n += 1
        self._line('ok %d - %s # SKIP %s' % (self.n, name.replace('#', '\\#'), reason))

    def error(self, res, errname, name, contains=None):
        """res is a client result; it must be the D-Bus error errname, and
        its message must contain each of contains (case-insensitive)."""
        good = isinstance(res, dict) and not res.get('ok') and res.get('error') == errname
        msg = (res or {}).get('message') or ''
        def has(c):
            if isinstance(c, (tuple, list)):
                return any(x.lower() in msg.lower() for x in c)
            return c.lower() in msg.lower()
        missing = [c for c in (contains or []) if not has(c)]
        return self.ok(good and not missing, name,
                       {'expected_error': errname, 'message_should_contain': contains or [],
                        'got': res})

    def success(self, res, name):
        return self.ok(isinstance(res, dict) and res.get('ok'), name, {'got': res})

    def run(self, name, fn, *args):
        """Run a group of subtests; an exception there is one failing subtest
        (or a skip, for Skip)."""
        try:
            fn(*args)
        except Skip as e:
            self.skip(name, str(e))
        except Exception:  # noqa: BLE001
            self.ok(False, '%s: raised' % name, traceback.format_exc())

    def print_logs(self):
        if self.bus is None:
            return
        sys.stderr.write('---- fdbroker.log (%s) ----\n' % self.bus.log_path)
        sys.stderr.write(self.bus.service_log())
        sys.stderr.write('\n---- dbus-daemon.log ----\n')
        sys.stderr.write(self.bus.daemon_log())
        sys.stderr.write('\n---- end of logs ----\n')
        sys.stderr.flush()

    def done(self):
        self._line('1..%d' % self.n)
        if self.failed:
            self.print_logs()
            sys.stderr.write('%d of %d subtests failed:\n' % (len(self.failed), self.n))
            for f in self.failed:
                sys.stderr.write('  %s\n' % f)
            return 1
        return 0


def skip_all(reason):
    print('1..0 # SKIP %s' % reason, flush=True)
    sys.exit(0)


def check_sanitizer_reports(tap):
    """A sanitizer build of the service reports into its log, where no
    client sees it: fail the file when a report is there."""
    log = tap.bus.service_log()
    found = [m for m in SANITIZER_MARKERS if m in log]
    tap.ok(not found, 'the service log has no sanitizer report',
           {'found': found} if found else None)


def main(body):
    """Entry point for a test file: body(tap) runs the subtests. Environment
    problems skip the whole file; an exception is a failing subtest and
    prints the logs."""
    try:
        check_environment()
    except Skip as e:
        skip_all(str(e))
    tap = Tap()
    try:
        body(tap)
    except Skip as e:
        if tap.n == 0:
            skip_all(str(e))
        tap.skip('rest of the file', str(e))
    except Exception:  # noqa: BLE001
        tap.ok(False, 'test file raised', traceback.format_exc())
    finally:
        if tap.bus is not None:
            try:
                # Stopped first (a sanitizer's exit report lands in the
                # log), removed only after done() printed the logs.
                tap.bus.stop(cleanup=False)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            check_sanitizer_reports(tap)
    rc = tap.done()
    if tap.bus is not None:
        tap.bus.cleanup()
    sys.exit(rc)



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
