# SPDX-License-Identifier: LGPL-2.1-or-later
"""The real polkitd (not the dbusmock template) deciding for the broker
(SPEC §2), once: /usr/lib/polkit-1/polkitd --no-debug on the private test
bus, in a private mount namespace where /usr/share/polkit-1/actions holds
only data/policy/org.fdbroker.policy and both rules.d directories hold only
the JavaScript rules below. So the real engine decides, reading the details
the broker sends (path, name, fdbroker.requested-result).

There is no logind here, so no subject has a session: polkit applies each
action's allow_any (auth_admin_keep for all of ours), and no authentication
agent is registered, so a challenge can never be answered.

Every test skips (the file is a meson SKIP) when polkitd cannot run here:
not root, no polkitd binary, no unshare, or no bind mount allowed. Each
test gets its own bus, broker and polkitd."""

import json
import os
import pwd
import re
import shutil
import subprocess

import pytest

import harness
import policyutil
from harness import E_ACCESS_DENIED, E_INTERACTIVE, E_NOT_FOUND, PYTHON, Skip, memfd, poll_until
from policyutil import POLKIT_IFACE, POLKIT_NAME, POLKIT_PATH, call_sync

POLKITD = '/usr/lib/polkit-1/polkitd'
ACTIONS_DIR = '/usr/share/polkit-1/actions'
RULES_DIRS = ('/etc/polkit-1/rules.d', '/usr/share/polkit-1/rules.d')

OPEN_PATH = 'org.fdbroker.open-path'
RETRIEVE = 'org.fdbroker.retrieve'

# fdbroker's own admin rules (--policy-dir): which checks reach polkit, and
# with which fdbroker.requested-result.
FILES = {
    '10-real-polkit.conf': '''\
# bob may retrieve anything after polkit's auth_self, below self/ ...
[Rule self-retrieve]
Action=retrieve
Match=self/*
Subject=user:fdbtest-bob
Result=auth_self

# ... and after auth_admin_keep everywhere else (the JS rules grant cam/*).
[Rule bob-retrieve]
Action=retrieve
Match=**
Subject=user:fdbtest-bob
Result=auth_admin_keep

# alice may open /dev/full after auth_self (without a rule OpenPath asks
# polkit with auth_admin_keep).
[Rule alice-full]
Action=open-path
Match=/dev/full
Subject=user:fdbtest-alice
Result=auth_self
''',
}

# The only polkit rules polkitd sees (in /etc/polkit-1/rules.d; the
# /usr/share one is empty). polkit.log() lines go nowhere with --no-debug.
JS_RULES = '''\
// written by tests/policy/test_real_polkit.py
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.fdbroker.") != 0)
        return polkit.Result.NOT_HANDLED;
    // The details: refuse /dev/zero to everyone, before bob's grant.
    if (action.id == "org.fdbroker.open-path" && action.lookup("path") == "/dev/zero")
        return polkit.Result.NO;
    if (action.id == "org.fdbroker.open-path" && subject.user == "fdbtest-bob")
        return polkit.Result.YES;
    if (action.id == "org.fdbroker.retrieve" && subject.user == "fdbtest-bob") {
        var name = action.lookup("name");
        if (name && name.indexOf("cam/") == 0)
            return polkit.Result.YES;
    }
    // What the admin's fdbroker rule asked for: auth_self is good enough
    // without asking (there is no agent to ask anyway).
    if (action.lookup("fdbroker.requested-result") == "auth_self")
        return polkit.Result.YES;
    return polkit.Result.NOT_HANDLED;
});
'''

# The test bus's policy: polkitd drops to user polkitd (it does so itself
# when started as root) before it takes the name; Debian's
# org.freedesktop.PolicyKit1.conf, which the test bus does not include, lets
# only that user own it. Root is allowed too, for a polkitd built to stay
# root.
BUS_CONFIG = '''
  <!-- added by tests/policy/test_real_polkit.py: the real polkitd -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
{polkitd_user}  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
'''
BUS_CONFIG_USER = '''  <policy user="{user}">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
'''

# One call METHOD(ARG, {}) with ALLOW_INTERACTIVE_AUTHORIZATION, as a test
# user (client.py cannot set that flag); prints the answer as JSON.
INTERACTIVE_CALL = r'''
import json, os, re, sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
address, method, arg, reply_sig = sys.argv[1:5]
conn = Gio.DBusConnection.new_for_address_sync(
    address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
try:
    reply, out = conn.call_with_unix_fd_list_sync(
        'org.fdbroker.Broker1', '/org/fdbroker/Broker1', 'org.fdbroker.Broker1', method,
        GLib.Variant('(sa{sv})', (arg, {})), GLib.VariantType.new(reply_sig),
        Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, 120000, None, None)
    fds = list(out.steal_fds()) if out is not None else []
    for fd in fds:
        os.close(fd)
    print(json.dumps({'ok': True, 'fds': len(fds)}))
except GLib.Error as e:
    m = re.match(r'^GDBus\.Error:([^:\s]+):\s?(.*)$', e.message or '', re.S)
    print(json.dumps({'ok': False, 'error': m.group(1) if m else 'local', 'message': e.message}))
'''


def polkitd_user():
    """The user polkitd becomes (Debian: polkitd), or None."""
    for name in ('polkitd', 'polkit'):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    return None


def preflight():
    """Raise Skip unless polkitd can run here the way this file runs it."""
    if os.geteuid() != 0:
        raise Skip('needs root (test users, mount namespace, polkitd)')
    if not os.access(POLKITD, os.X_OK):
        raise Skip('%s not installed (Debian package polkitd)' % POLKITD)
    if shutil.which('unshare') is None or shutil.which('mount') is None:
        raise Skip('unshare or mount (util-linux) not found')
    for d in (ACTIONS_DIR,) + RULES_DIRS:
        if not os.path.isdir(d):
            raise Skip('%s does not exist, so nothing can be bind-mounted over it' % d)
    if polkitd_user() is None:
        raise Skip('no polkitd user, which polkitd switches to')
    # A bind mount in a private mount namespace, gone with the process.
    r = subprocess.run(['unshare', '-m', '--propagation', 'private', 'mount', '--bind', ACTIONS_DIR, ACTIONS_DIR],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    if r.returncode != 0:
        raise Skip('cannot bind-mount in a private mount namespace (unshare -m): %s' % r.stdout.strip())


class RealPolkit:
    """polkitd --no-debug on bus, in a private mount namespace where the
    actions and rules directories are ours (under BUS_TMP/polkit). The
    process started is polkitd itself (unshare and sh exec it), so its
    mounts go with it; stop() kills it."""

    def __init__(self, bus, source_dir):
        self.bus = bus
        self.proc = None
        self.root = os.path.join(bus.tmp, 'polkit')
        self.dirs = {'actions': os.path.join(self.root, 'actions'),
                     'rules-etc': os.path.join(self.root, 'rules-etc'),
                     'rules-usr': os.path.join(self.root, 'rules-usr')}
        for d in [self.root] + list(self.dirs.values()):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)  # polkitd reads them as user polkitd
        shutil.copy(os.path.join(source_dir, 'data', 'policy', 'org.fdbroker.policy'), self.dirs['actions'])
        with open(os.path.join(self.dirs['rules-etc'], '50-fdbroker-test.rules'), 'w') as f:
            f.write(JS_RULES)
        for d in self.dirs.values():
            for name in os.listdir(d):
                os.chmod(os.path.join(d, name), 0o644)
        self.out_path = os.path.join(bus.tmp, 'polkitd.out')

    def start(self):
        script = ('mount --bind "$1/actions" %s && mount --bind "$1/rules-etc" %s && '
                  'mount --bind "$1/rules-usr" %s && exec %s --no-debug'
                  % (ACTIONS_DIR, RULES_DIRS[0], RULES_DIRS[1], POLKITD))
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8',
               'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address}
        self._out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen(['unshare', '-m', '--propagation', 'private', 'sh', '-ec', script, 'sh',
                                      self.root],
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env, cwd='/')
        if not poll_until(lambda: self.proc.poll() is not None or self.has_owner(), timeout=30):
            raise RuntimeError('polkitd did not take %s within 30 s; output: %s' % (POLKIT_NAME, self.output()))
        if self.proc.poll() is not None:
            raise RuntimeError('polkitd exited with %s before taking %s; output: %s (--no-debug keeps it '
                               'quiet: run it without to see why)'
                               % (self.proc.returncode, POLKIT_NAME, self.output()))

    def has_owner(self):
        return self.bus._bus_call('NameHasOwner', (POLKIT_NAME,), '(s)', '(b)')[0]

    def owner_pid(self):
        return self.bus._bus_call('GetConnectionUnixProcessID', (POLKIT_NAME,), '(s)', '(u)')[0]

    def output(self):
        try:
            with open(self.out_path, errors='replace') as f:
                return f.read().strip() or '(nothing)'
        except OSError:
            return '(no output file)'

    def call(self, method, sig, args, reply, timeout_ms=30000):
        """A call to polkitd's Authority from the test process (root)."""
        r = self.bus.conn.call_sync(POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE, method,
                                    policyutil.GLib.Variant(sig, tuple(args)) if sig else None,
                                    policyutil.GLib.VariantType.new(reply),
                                    policyutil.Gio.DBusCallFlags.NONE, timeout_ms, None)
        return r.unpack()

    def check(self, unique_name, action, details, flags=0):
        """CheckAuthorization as the broker asks it: (authorized, challenge, details)."""
        return self.call('CheckAuthorization', '((sa{sv})sa{ss}us)',
                         (('system-bus-name', {'name': policyutil.GLib.Variant('s', unique_name)}),
                          action, details, flags, ''), '((bba{ss}))')[0]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def interactive_call(bus, user, method, arg, reply_sig):
    """method(arg, {}) called by user with ALLOW_INTERACTIVE_AUTHORIZATION."""
    script = os.path.join(bus.tmp, 'interactive-call.py')
    if not os.path.exists(script):
        with open(script, 'w') as f:
            f.write(INTERACTIVE_CALL)
        os.chmod(script, 0o644)
    r = subprocess.run([PYTHON, script, bus.address, method, arg, reply_sig],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=150, cwd='/',
                       env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/', 'LANG': 'C.UTF-8'},
                       user=user['uid'], group=user['gid'], extra_groups=user['groups'])
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {'ok': False, 'error': 'local:helper', 'message': r.stdout + r.stderr}


def host_mounts_of(path):
    """Lines of this (the host's) mount table that mention path."""
    with open('/proc/self/mountinfo') as f:
        return [line.strip() for line in f if path in line]


@pytest.fixture(scope='session')
def can_run_polkitd():
    try:
        preflight()
    except Skip as e:
        pytest.skip(str(e))


@pytest.fixture
def bus(can_run_polkitd, bus_with):
    """A fresh bus and broker reading only FILES, on which polkitd's user
    may own org.freedesktop.PolicyKit1."""
    user = polkitd_user()
    config = BUS_CONFIG.format(polkitd_user=BUS_CONFIG_USER.format(user=user) if user != 'root' else '')
    return bus_with(policy_files=FILES, extra_bus_config=config)


@pytest.fixture
def pk(bus):
    """The real polkitd on the test's bus. After the test: it is gone, and
    no mount of its directories shows outside its namespace."""
    p = RealPolkit(bus, harness.source_dir())
    try:
        p.start()
        yield p
    finally:
        pid = p.proc.pid if p.proc else None
        p.stop()
    if pid is not None:
        assert not os.path.exists('/proc/%d' % pid), 'polkitd (pid %d) is gone' % pid
        assert host_mounts_of(p.root) == [], 'no mount of the test\'s polkit directories outside its namespace'


def test_the_real_polkitd_runs_in_its_own_namespace_with_only_our_actions(t, pk):
    pid = pk.owner_pid()
    t.eq(pid, pk.proc.pid, 'polkitd owns %s on the test bus' % POLKIT_NAME)
    with open('/proc/%d/status' % pid) as f:
        uid = int(re.search(r'^Uid:\s+(\d+)', f.read(), re.M).group(1))
    t.diag('polkitd runs as uid %d (%s)' % (uid, pwd.getpwuid(uid).pw_name))
    t.ok(os.readlink('/proc/%d/ns/mnt' % pid) != os.readlink('/proc/self/ns/mnt'),
         'in a mount namespace of its own')
    actions = sorted(a[0] for a in pk.call('EnumerateActions', '(s)', ('',), '(a(ssssssuuua{ss}))')[0])
    with open(os.path.join(pk.dirs['actions'], 'org.fdbroker.policy')) as f:
        ours = sorted(re.findall(r'<action id="([^"]+)"', f.read()))
    t.eq(actions, ours, 'it knows exactly the actions of data/policy/org.fdbroker.policy')
    t.ok(not os.path.samefile(ACTIONS_DIR, pk.dirs['actions']),
         'while this process still sees the machine\'s own %s' % ACTIONS_DIR)


def test_real_polkit_answers_a_challenge_a_grant_or_a_denial(t, alice, bob, pk):
    # Asked directly (root may check any subject): with no session
    # (no logind) polkitd takes allow_any, auth_admin_keep, and answers
    # is_authorized=false, is_challenge=true -- a challenge, not a
    # denial -- whether or not interaction is allowed: with no agent
    # registered it returns the challenge at once instead of starting
    # an authentication. A JS rule's NO is is_challenge=false.
    details = {'path': '/dev/null', 'fdbroker.requested-result': 'auth_admin_keep'}
    a = pk.check(alice.unique_name, OPEN_PATH, details)
    t.eq(a[:2], (False, True), 'alice, /dev/null, no interaction: a challenge (not authorized, is_challenge)')
    t.diag('  details: %r' % (a[2],))
    a = pk.check(alice.unique_name, OPEN_PATH, details, flags=1)
    t.eq(a[:2], (False, True), 'the same allowing interaction (no agent): still a challenge, answered at once')
    a = pk.check(bob.unique_name, OPEN_PATH, details)
    t.eq(a[:2], (True, False), 'bob, /dev/null: authorized by the JS rule')
    a = pk.check(bob.unique_name, OPEN_PATH, dict(details, path='/dev/zero'))
    t.eq(a[:2], (False, False), 'bob, /dev/zero: the JS rule\'s NO, a plain denial')


def test_open_path_through_real_polkit_grant_challenge_and_denial(t, bus, users, alice, bob, carol, pk):
    r = bob.open_path('/dev/null')
    t.success(r, 'bob opens /dev/null: the JS rule says YES for him')
    t.eq(r.get('fd', {}).get('accmode'), 'read-only', 'read-only, the default')
    t.eq(r.get('fd', {}).get('link'), '/dev/null', 'and it is /dev/null')
    # No rule for alice: polkit applies allow_any (auth_admin_keep), a
    # challenge; the call did not allow interaction.
    t.error(alice.open_path('/dev/null'), E_INTERACTIVE,
            'alice (no JS rule, auth_admin_keep, no agent): InteractiveAuthorizationRequired',
            ['needs authentication', OPEN_PATH, '/dev/null'])
    # With interaction allowed, polkit has no agent to ask and returns the
    # challenge unanswered: the broker says AccessDenied.
    t.error(interactive_call(bus, users['alice'], 'OpenPath', '/dev/null', '(h)'),
            E_ACCESS_DENIED, 'the same allowing interaction (no agent): AccessDenied',
            ['polkit did not authorize', OPEN_PATH])
    t.error(bob.open_path('/dev/zero'), E_ACCESS_DENIED,
            'bob, /dev/zero: the JS rule reads action.lookup("path") and says NO: AccessDenied',
            ['polkit did not authorize', OPEN_PATH, '/dev/zero'])
    t.error(carol.open_path('/dev/zero'), E_ACCESS_DENIED,
            'carol, /dev/zero: a NO is AccessDenied, never a challenge', ['polkit did not authorize'])
    r = call_sync(bus.conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)')
    t.success(r, 'root (the test process): polkit authorizes uid 0 without any rule')


def test_the_js_rule_sees_the_requested_result_fdbroker_sends(t, alice, bob, carol, pk):
    r = alice.open_path('/dev/full')
    t.success(r, 'alice opens /dev/full: her fdbroker rule asks auth_self, which the JS rule reads '
              '(fdbroker.requested-result) and grants')
    t.eq(r.get('fd', {}).get('link'), '/dev/full', 'and it is /dev/full')
    t.error(carol.open_path('/dev/full'), E_INTERACTIVE,
            'carol, without that rule (requested auth_admin_keep): InteractiveAuthorizationRequired')
    t.success(alice.deposit('self/x', memfd('self')), 'alice deposits self/x (no allow list)')
    r = bob.retrieve('self/x')
    t.success(r, 'bob retrieves self/x: rule self-retrieve asks auth_self, the JS rule grants it')
    t.eq(r.get('fd', {}).get('read_head'), 'self', 'with alice\'s bytes')


def test_retrieve_through_a_rule_and_real_polkit(t, bus, users, alice, bob, carol, pk):
    t.success(alice.deposit('cam/x', memfd('camera')), 'alice deposits cam/x without allowing bob')
    t.success(alice.deposit('other/x', memfd('other')), 'and other/x')
    r = bob.retrieve('cam/x')
    t.success(r, 'bob retrieves cam/x: rule bob-retrieve (auth_admin_keep) + the JS rule on '
              'action.lookup("name")')
    t.eq(r.get('fd', {}).get('read_head'), 'camera', 'with alice\'s bytes')
    # other/x: the JS rule does not decide, polkit's default is a
    # challenge. The rule asks auth_admin_keep, so bob is one who may
    # retrieve it after authentication (and sees it in List):
    # InteractiveAuthorizationRequired, not NotFound.
    t.error(bob.retrieve('other/x'), E_INTERACTIVE,
            'bob retrieves other/x: no JS grant, a challenge without interaction: '
            'InteractiveAuthorizationRequired', [RETRIEVE, 'other/x'])
    t.ok('other/x' in bob.names('other/'), 'bob may see other/x in List (he may get it after authentication)')
    # Allowing interaction: polkit's unanswered challenge is a refusal;
    # the ACL does not name bob, so the refusal is NotFound
    # (docs/behaviour.md, Policy).
    t.error(interactive_call(bus, users['bob'], 'Retrieve', 'other/x', '(ha{sv})'),
            E_NOT_FOUND, 'the same allowing interaction (no agent): NotFound, the ACL does not name bob')
    t.error(carol.retrieve('cam/x'), E_NOT_FOUND, 'carol (no rule, not in the ACL): NotFound for cam/x')
    t.success(alice.retrieve('other/x'), 'alice still retrieves her own other/x')

