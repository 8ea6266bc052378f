# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared pieces of the policy tests (tests/policy/test_*.py).

Built on tests/integration/harness.py:

- POLKIT_BUS_CONFIG: bus config letting the test process own
  org.freedesktop.PolicyKit1 (the tests' buses come from conftest.py).
- PolkitMock: python3-dbusmock's `polkitd` template on that bus, controlled
  per test (SetAllowed, SetDelay, SimulateHang, GetMethodCalls).
- Async: a call from the test process that is answered later, for tests
  that need several calls in flight at once.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))

import harness  # noqa: E402
from harness import BUS_NAME, IFACE, OBJ_PATH, PYTHON, Skip, poll_until  # noqa: E402,F401

try:
    from gi.repository import Gio, GLib  # noqa: E402
except ImportError:  # the environment fixture skips every test in that case
    Gio = GLib = None

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
POLKIT_IFACE = 'org.freedesktop.PolicyKit1.Authority'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'

# Debian's org.freedesktop.PolicyKit1.conf lets only user polkitd own the
# name; on the test bus the mock runs as root (the test process's child).
POLKIT_BUS_CONFIG = '''
  <!-- added by tests/policy/policyutil.py: a polkit mock run by root -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
'''

def error_of(e):
    """A GLib.Error from a D-Bus call as {'ok': False, 'error', 'message'}."""
    msg = e.message or ''
    m = re.match(r'^GDBus\.Error:([^:\s]+):\s?(.*)$', msg, re.S)
    if m:
        return {'ok': False, 'error': m.group(1), 'message': m.group(2)}
    return {'ok': False, 'error': 'local:%s:%d' % (e.domain, e.code), 'message': msg}


def spin(pred, timeout=30.0):
    """Run the default main context until pred() is true or timeout passes."""
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        if not ctx.iteration(False):
            time.sleep(0.005)
    return pred()


def drain():
    """Dispatch whatever is ready, without waiting."""
    ctx = GLib.MainContext.default()
    while ctx.iteration(False):
        pass


class Async:
    """One broker call from the test process, answered later. result is None
    until the answer is in, then {'ok': True, 'fds': [...]} or an error.
    Received fds are measured with fdutil.fd_facts and closed."""

    def __init__(self, conn, method, sig, args, reply_sig=None, interactive=False,
                 timeout_ms=60000, order=None, tag=None):
        self.result = None
        self.order = order
        self.tag = tag
        flags = Gio.DBusCallFlags.NONE
        if interactive:
            flags |= Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION
        conn.call_with_unix_fd_list(
            BUS_NAME, OBJ_PATH, IFACE, method, GLib.Variant(sig, args) if sig else None,
            GLib.VariantType.new(reply_sig) if reply_sig else None, flags, timeout_ms,
            None, None, self._done, None)
        conn.flush_sync(None)

    def _done(self, conn, res, _data):
        import fdutil
        try:
            reply, out = conn.call_with_unix_fd_list_finish(res)
            fds = list(out.steal_fds()) if out is not None else []
            facts = []
            for fd in fds:
                facts.append(fdutil.fd_facts(fd, read=False))
                os.close(fd)
            self.result = {'ok': True, 'fds': facts}
        except GLib.Error as e:
            self.result = error_of(e)
        if self.order is not None:
            self.order.append(self.tag)

    @property
    def done(self):
        return self.result is not None


def open_path_async(conn, path, interactive=False, order=None, tag=None, **opts):
    return Async(conn, 'OpenPath', '(sa{sv})', (path, harness.to_gvariant_dict(opts)), '(h)',
                 interactive=interactive, order=order, tag=tag)


def call_sync(conn, method, sig, args, reply_sig=None, interactive=False, timeout_ms=60000):
    """A broker call from the test process (root) on conn; returns
    {'ok': True, 'value': unpacked, 'fds': facts} or an error dict."""
    a = Async(conn, method, sig, args, reply_sig, interactive=interactive, timeout_ms=timeout_ms)
    spin(lambda: a.done, timeout_ms / 1000 + 10)
    return a.result or {'ok': False, 'error': 'local:no-answer', 'message': 'no answer'}


def dbusmock_missing():
    """None, or why python3-dbusmock's polkitd template cannot run here."""
    try:
        import dbusmock.templates.polkitd  # noqa: F401
    except ImportError as e:
        return 'python3-dbusmock (with its polkitd template) is not importable in %s: %s' % (sys.executable, e)
    return None


class PolkitMock:
    """python3-dbusmock's polkitd template on bus (which must have been
    started with polkit_bus=True). It denies everything until set_allowed();
    it ignores subject and details, and never returns a challenge."""

    def __init__(self, bus):
        why = dbusmock_missing()
        if why:
            raise Skip(why)
        self.bus = bus
        self.log_path = os.path.join(bus.tmp, 'polkit-mock.log')
        self.out_path = os.path.join(bus.tmp, 'polkit-mock.out')
        env = dict(os.environ)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address
        self._out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen(
            [PYTHON, '-m', 'dbusmock', '--system', '--template', 'polkitd', '-l', self.log_path],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=env)
        if not poll_until(lambda: self.proc.poll() is not None or self.has_owner(), timeout=30):
            self.stop()
            raise RuntimeError('polkit mock did not take %s: %s' % (POLKIT_NAME, self.output()))
        if self.proc.poll() is not None:
            out = self.output()
            self.stop()
            raise RuntimeError('polkit mock exited: %s' % out)

    def has_owner(self):
        return self.bus._bus_call('NameHasOwner', (POLKIT_NAME,), '(s)', '(b)')[0]

    def output(self):
        try:
            with open(self.out_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def checks_logged(self):
        """How many CheckAuthorization calls reached the mock (read from its
        log file, which it writes before answering, even while it sleeps)."""
        return self.log().count('CheckAuthorization')

    def _call(self, method, sig=None, args=(), reply='()', timeout_ms=30000):
        r = self.bus.conn.call_sync(POLKIT_NAME, POLKIT_PATH, MOCK_IFACE, method,
                                    GLib.Variant(sig, tuple(args)) if sig else None,
                                    GLib.VariantType.new(reply), Gio.DBusCallFlags.NONE, timeout_ms, None)
        return r.unpack()

    def set_allowed(self, actions):
        self._call('SetAllowed', '(as)', (list(actions),))

    def allow_unknown(self, yes):
        self._call('AllowUnknown', '(b)', (yes,))

    def set_delay(self, seconds):
        self._call('SetDelay', '(d)', (float(seconds),))

    def simulate_hang(self, yes):
        self._call('SimulateHang', '(b)', (yes,))

    def release_hanging(self):
        self._call('ReleaseHangingCalls')

    def clear_calls(self):
        self._call('ClearCalls')

    def add_method(self, name, in_sig, out_sig, code, interface=POLKIT_IFACE):
        self._call('AddMethod', '(sssss)', (interface, name, in_sig, out_sig, code))

    def checks(self):
        """The arguments of every CheckAuthorization the mock got since the
        last clear_calls(): [(subject, action_id, details, flags, cancel)]."""
        rows = self._call('GetMethodCalls', '(s)', ('CheckAuthorization',), '(a(tav))')[0]
        return [tuple(args) for _ts, args in rows]

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
            self._out.close()
