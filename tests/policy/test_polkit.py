# SPDX-License-Identifier: LGPL-2.1-or-later
"""polkit through python3-dbusmock's polkitd template (SPEC §2): no polkit
on the bus, allowed, denied, what the broker asks (subject, action,
details, flags), a delayed answer while other connections are served, the
per-connection limit on pending checks, manage via polkit, and a challenge
(InteractiveAuthorizationRequired) from an overridden CheckAuthorization."""

import pytest

import policyutil
from harness import (E_ACCESS_DENIED, E_INTERACTIVE, E_NOT_FOUND, E_QUOTA, Skip, memfd,
                     poll_until)
from policyutil import call_sync, drain, open_path_async, spin

FILES = {
    '10-auth.conf': '''\
# bob may retrieve auth/* entries when polkit says so.
[Rule auth-retrieve]
Action=retrieve
Match=auth/*
Subject=user:fdbtest-bob
Result=auth_admin_keep
''',
}

OPEN_PATH = 'org.fdbroker.open-path'
MANAGE = 'org.fdbroker.manage'
RETRIEVE = 'org.fdbroker.retrieve'
MAX_PENDING = 8  # POLKIT_PENDING_PER_PEER_MAX in service/polkit.h


@pytest.fixture
def bus(bus_with):
    """A fresh bus and broker reading only FILES, on which root may own
    org.freedesktop.PolicyKit1 (no polkit runs until `mock`)."""
    return bus_with(policy_files=FILES, extra_bus_config=policyutil.POLKIT_BUS_CONFIG)


@pytest.fixture
def auth(t, alice):
    """auth/1 (no allow list) and auth/2 (allowing bob), alice's."""
    t.success(alice.deposit('auth/1', memfd('one')), 'alice deposits auth/1 (no allow list)')
    t.success(alice.deposit('auth/2', memfd('two'), allow=['user:fdbtest-bob']), 'and auth/2 allowing bob')


def test_without_polkit_on_the_bus_what_needs_it_is_access_denied_saying_so(t, bus, alice, bob, auth):
    t.error(bob.open_path('/dev/null'), E_ACCESS_DENIED,
            'no polkit on the bus: OpenPath without a rule is AccessDenied saying polkit was not reachable',
            ['not reachable', 'org.fdbroker.open-path'])
    t.success(alice.deposit('mg/absent', memfd('x'), allow=['user:fdbtest-bob']), 'alice deposits mg/absent')
    t.error(bob.remove('mg/absent'), E_ACCESS_DENIED, 'Remove by a non-owner who may see it: the same',
            ['not reachable'])
    t.error(bob.retrieve('auth/2'), E_ACCESS_DENIED, 'an auth_admin_keep rule: the same', ['not reachable'])
    t.error(bob.retrieve('auth/1'), E_NOT_FOUND,
            'but where the ACL would not let bob retrieve, the refusal is NotFound')
    t.ok(not bus._bus_call('NameHasOwner', ('org.freedesktop.PolicyKit1',), '(s)', '(b)')[0],
         'nobody owned org.freedesktop.PolicyKit1 meanwhile')


def test_polkit_allowing_or_denying_decides_open_path(t, bob, mock):
    mock.set_allowed([])
    t.error(bob.open_path('/dev/null'), E_ACCESS_DENIED, 'polkit denies: AccessDenied',
            ['polkit did not authorize', OPEN_PATH])
    mock.set_allowed([OPEN_PATH])
    r = bob.open_path('/dev/null')
    t.success(r, 'SetAllowed([%s]): bob opens /dev/null' % OPEN_PATH)
    t.eq(r.get('fd', {}).get('accmode'), 'read-only', 'read-only, the default')
    r = bob.open_path('/dev/null', access='read-write')
    t.eq(r.get('fd', {}).get('accmode'), 'read-write', 'polkit puts no cap on the mode: read-write when asked')
    mock.set_allowed([MANAGE])
    t.error(bob.open_path('/dev/null'), E_ACCESS_DENIED, 'allowing another action does not allow open-path')


def test_the_broker_asks_polkit_about_the_caller_action_details_and_flags(t, bus, bob, mock, auth):
    mock.set_allowed([OPEN_PATH])
    conn = bus.connect()
    mock.clear_calls()
    r = call_sync(conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)')
    t.success(r, 'root\'s OpenPath (no rule) is authorized by polkit')
    checks = mock.checks()
    t.eq(len(checks), 1, 'one CheckAuthorization reached polkit')
    if checks:
        subject, action, details, flags, _cancel = checks[0]
        t.eq(subject, ('system-bus-name', {'name': conn.get_unique_name()}),
             'subject: system-bus-name of the calling connection')
        t.eq(action, OPEN_PATH, 'action org.fdbroker.open-path')
        t.eq(details, {'path': '/dev/null', 'fdbroker.requested-result': 'auth_admin_keep'},
             'details: path and the requested result (the default auth_admin_keep)')
        t.eq(flags, 0, 'flags 0: the call did not allow interactive authorization')
    mock.clear_calls()
    r = call_sync(conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)', interactive=True)
    t.success(r, 'the same call allowing interactive authorization')
    checks = mock.checks()
    t.eq([c[3] for c in checks], [1], 'flags 1 (AllowUserInteraction) when the call allows it')
    conn.close_sync(None)

    mock.set_allowed([RETRIEVE])
    mock.clear_calls()
    t.success(bob.retrieve('auth/1'), 'rule auth-retrieve + polkit: bob retrieves auth/1, which the ACL denies')
    checks = mock.checks()
    t.eq([(c[0], c[1], c[2]) for c in checks],
         [(('system-bus-name', {'name': bob.unique_name}), RETRIEVE,
           {'name': 'auth/1', 'fdbroker.requested-result': 'auth_admin_keep'})],
         'asked: bob\'s bus name, org.fdbroker.retrieve, name auth/1 and the rule\'s result')


def test_an_auth_admin_keep_retrieve_rule_asks_polkit_only_for_the_users_it_names(t, bob, carol, mock, auth):
    mock.set_allowed([RETRIEVE])
    mock.clear_calls()
    t.error(carol.retrieve('auth/1'), E_NOT_FOUND, 'the rule does not name carol: NotFound')
    t.eq(mock.checks(), [], 'and polkit was not asked')
    mock.set_allowed([])
    t.error(bob.retrieve('auth/1'), E_NOT_FOUND, 'polkit denies, the ACL does not allow bob: NotFound')
    t.error(bob.retrieve('auth/2'), E_ACCESS_DENIED, 'polkit denies, the ACL allows bob: AccessDenied',
            ['polkit did not authorize', 'auth/2'])


def test_polkit_decides_manage_only_for_callers_who_may_see_the_entry(t, alice, bob, carol, mock):
    t.success(alice.deposit('mg/1', memfd('1'), allow=['user:fdbtest-bob']), 'alice deposits mg/1 for bob')
    t.success(alice.deposit('mg/2', memfd('2')), 'and mg/2 for nobody')
    mock.set_allowed([])
    t.error(bob.remove('mg/1'), E_ACCESS_DENIED, 'polkit denies manage: bob may not remove mg/1',
            ['polkit did not authorize', MANAGE])
    t.ok('mg/1' in alice.names('mg/'), 'mg/1 is still there')
    mock.set_allowed([MANAGE])
    t.success(bob.remove('mg/1'), 'polkit allows %s: bob (not the owner) removes mg/1' % MANAGE)
    t.ok('mg/1' not in alice.names('mg/'), 'mg/1 is gone')
    mock.clear_calls()
    t.error(carol.remove('mg/2'), E_NOT_FOUND, 'carol, who may not see mg/2, gets NotFound')
    t.eq(mock.checks(), [], 'without polkit being asked (it would reveal that mg/2 exists)')
    t.success(alice.remove('mg/2'), 'the owner removes her own entry')
    t.eq(mock.checks(), [], 'without polkit either')


def test_other_calls_are_answered_while_polkit_delays_its_answer(t, bus, alice, mock):
    mock.set_allowed([OPEN_PATH])
    mock.set_delay(3)
    try:
        n0 = mock.checks_logged()
        slow_conn, other_conn = bus.connect(), bus.connect()
        order = []
        slow = open_path_async(slow_conn, '/dev/null', order=order, tag='open-path')
        t.ok(poll_until(lambda: mock.checks_logged() > n0, timeout=20),
             'the CheckAuthorization reached polkit, which sleeps 3 s before answering')
        t.success(alice.deposit('d/1', memfd('meanwhile')), 'meanwhile alice deposits (another connection)')
        t.success(alice.retrieve('d/1'), 'and retrieves')
        other = policyutil.Async(other_conn, 'List', '(a{sv})', ({},), '(a(sa{sv}))', order=order, tag='list')
        spin(lambda: other.done, 20)
        t.success(other.result, 'and root\'s List on a second connection is answered')
        drain()
        t.ok(not slow.done, 'while the OpenPath waiting for polkit is still unanswered', slow.result)
        spin(lambda: slow.done, 30)
        t.success(slow.result, 'then the OpenPath is answered (allowed)')
        t.eq(order, ['list', 'open-path'], 'the other call\'s reply came back before the delayed one')
        slow_conn.close_sync(None)
        other_conn.close_sync(None)
    finally:
        mock.set_delay(0)


def test_a_connection_may_have_8_polkit_checks_pending(t, bus, mock):
    mock.set_allowed([OPEN_PATH])
    n0 = mock.checks_logged()
    mock.simulate_hang(True)
    conn, conn2 = bus.connect(), bus.connect()
    try:
        calls = [open_path_async(conn, '/dev/null') for _ in range(MAX_PENDING + 1)]
        spin(lambda: any(c.done for c in calls), 20)
        done = [c.result for c in calls if c.done]
        t.eq([d.get('error') for d in done], [E_QUOTA],
             'of %d OpenPath calls held by polkit on one connection, one is QuotaExceeded at once'
             % (MAX_PENDING + 1))
        t.ok(calls[-1].done, 'the last one sent', [c.done for c in calls])
        if done:
            t.error(done[0], E_QUOTA, 'its message says how many answers it waits for', [str(MAX_PENDING)])
        other = open_path_async(conn2, '/dev/null')
        t.ok(poll_until(lambda: mock.checks_logged() >= n0 + MAX_PENDING + 1, timeout=20),
             'another connection\'s check still goes out to polkit (the limit is per connection)',
             mock.checks_logged() - n0)
        drain()
        t.ok(not other.done, 'and waits like the others', other.result)
    finally:
        mock.simulate_hang(False)
        mock.release_hanging()
    spin(lambda: all(c.done for c in calls) and other.done, 30)
    t.eq([c.result.get('ok') if c.result else None for c in calls[:MAX_PENDING]], [True] * MAX_PENDING,
         'released: the %d held calls are answered and allowed' % MAX_PENDING)
    t.success(other.result, 'and so is the other connection\'s')
    t.success(call_sync(conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)'),
              'the first connection may ask again afterwards')
    conn.close_sync(None)
    conn2.close_sync(None)


def test_a_polkit_challenge_is_interactive_authorization_required_or_access_denied(t, bus, mock):
    t.skip('InteractiveAuthorizationRequired from the polkitd template',
           'python3-dbusmock\'s polkitd template never returns a challenge (is_challenged is always false); '
           'the next subtests override its CheckAuthorization instead')
    mock.add_method('CheckAuthorization', '(sa{sv})sa{ss}us', '(bba{ss})', 'ret = (False, True, {})')
    conn = bus.connect()
    r = call_sync(conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)')
    if r.get('error') == E_ACCESS_DENIED and 'did not authorize' in r.get('message', ''):
        raise Skip('could not make the mock return a challenge (AddMethod did not replace the template\'s)')
    t.error(r, E_INTERACTIVE, 'a challenge for a call without interaction: InteractiveAuthorizationRequired',
            ['interactive', '/dev/null'])
    r = call_sync(conn, 'OpenPath', '(sa{sv})', ('/dev/null', {}), '(h)', interactive=True)
    t.error(r, E_ACCESS_DENIED,
            'a challenge although interaction was allowed (no agent answered): AccessDenied')
    conn.close_sync(None)
