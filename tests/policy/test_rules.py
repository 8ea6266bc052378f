# SPDX-License-Identifier: LGPL-2.1-or-later
"""Admin rules through the real bus (SPEC §2): retrieve grants by uid and by
group, a retrieve rule saying no, Access=read-only on retrieve and deposit
rules, a reserved name prefix, list, remove and manage rules."""

import pytest

from harness import E_ACCESS_DENIED, E_NOT_FOUND, E_NOT_SUPPORTED, memfd

RULES = {
    '10-retrieve.conf': '''\
# Grants on top of the entry ACLs; the first matching rule decides.
[Rule cam-carol]
Action=retrieve
Match=cam/*
Subject=uid:{carol}            # by uid
Result=yes

[Rule vid-video]
Action=retrieve
Match=vid/*
Subject=group:fdbtest-video   # bob is in it
Result=yes

[Rule ro-everyone]
Action=retrieve
Match=ro/*
Subject=everyone
Result=yes
Access=read-only

[Rule deny-bob-carol]
Action=retrieve
Match=deny/*
Subject=user:fdbtest-bob user:fdbtest-carol
Result=no
''',
    '20-deposit.conf': '''\
# res/ belongs to alice: the first rule lets her, the second refuses all
# others (root included).
[Rule res-alice]
Action=deposit create-memory
Match=res/**
Subject=user:fdbtest-alice
Result=yes

[Rule res-others]
Action=deposit create-memory
Match=res/**
Subject=everyone
Result=no

[Rule keep-read-only]
Action=deposit
Match=keepro/*
Subject=everyone
Result=yes
Access=read-only
''',
    '30-list-remove-manage.conf': '''\
[Rule hide-secret]
Action=list
Match=secret/*
Subject=everyone
Result=no

[Rule locked]
Action=remove
Match=locked/*
Subject=everyone
Result=no

[Rule carol-manages-shared]
Action=manage
Match=shared/*
Subject=user:fdbtest-carol
Result=yes
''',
}


@pytest.fixture
def bus(bus_with, users):
    """A fresh bus and broker whose service reads only RULES."""
    return bus_with(policy_files={k: v.replace('{carol}', str(users['carol']['uid']))
                                  for k, v in RULES.items()})


def test_the_bus_reports_the_supplementary_groups_the_rules_rely_on(t, users, bob, carol):
    t.ok(users['video'] in bob.req('whoami')['groups'], 'bob\'s client carries group fdbtest-video')
    t.ok(users['video'] not in carol.req('whoami')['groups'], 'carol\'s does not')


def test_a_retrieve_rule_grants_by_uid_one_component_deep(t, alice, bob, carol):
    r = alice.deposit('cam/1', memfd('camera frame'))
    t.success(r, 'alice deposits cam/1 with no allow list')
    got = carol.retrieve('cam/1')
    t.success(got, 'rule cam-carol (uid:N) lets carol retrieve cam/1')
    t.eq(got.get('fd', {}).get('read_sha256'), r.get('made', {}).get('sha256'), 'carol reads alice\'s bytes')
    t.ok('cam/1' in carol.names('cam/'), 'carol\'s List shows cam/1')
    t.error(bob.retrieve('cam/1'), E_NOT_FOUND, 'bob (not named by the rule, not in the ACL) gets NotFound')
    t.ok('cam/1' not in bob.names('cam/'), 'bob\'s List does not show cam/1')
    t.error(carol.retrieve('cam/x/1'), E_NOT_FOUND, 'cam/* does not reach below one component (FNM_PATHNAME)')


def test_a_retrieve_rule_grants_by_group_as_the_bus_reports_it(t, bus, users, alice, bob, carol):
    t.success(alice.deposit('vid/1', memfd('video frame')), 'alice deposits vid/1 with no allow list')
    t.success(bob.retrieve('vid/1'), 'rule vid-video (group:NAME) lets bob (in fdbtest-video) retrieve')
    t.error(carol.retrieve('vid/1'), E_NOT_FOUND, 'carol (not in the group) gets NotFound')
    bob_nogroup = bus.client(users['bob'], groups=[])
    t.error(bob_nogroup.retrieve('vid/1'), E_NOT_FOUND,
            'bob connected without the supplementary group gets NotFound: the bus\'s gids decide')
    bob_nogroup.close()


def test_access_read_only_on_a_retrieve_rule_caps_every_retrieval(t, alice, bob):
    t.success(alice.deposit('ro/1', memfd('read me')), 'alice deposits a read-write memfd as ro/1')
    got = bob.retrieve('ro/1')
    t.success(got, 'rule ro-everyone lets bob retrieve ro/1')
    t.eq(got.get('fd', {}).get('accmode'), 'read-only', 'the fd bob gets is read-only (Access=read-only)')
    t.error(bob.retrieve('ro/1', access='read-write'), E_ACCESS_DENIED,
            'asking for read-write under the cap is AccessDenied', ['ro/1', 'read-only'])
    t.success(bob.retrieve('ro/1', access='read-only'), 'asking for read-only explicitly is fine')
    own = alice.retrieve('ro/1')
    t.eq(own.get('fd', {}).get('accmode'), 'read-only',
         'the rule matches everyone, the owner too: alice also gets it read-only')


def test_a_retrieve_rule_saying_no_overrides_the_acl(t, alice, bob, carol):
    t.success(alice.deposit('deny/1', memfd('no'), allow=['user:fdbtest-bob']),
              'alice deposits deny/1 allowing bob')
    t.error(bob.retrieve('deny/1'), E_ACCESS_DENIED,
            'rule deny-bob-carol refuses bob, whom the ACL allows: AccessDenied naming the rule',
            ['deny-bob-carol', 'deny/1'])
    t.error(carol.retrieve('deny/1'), E_NOT_FOUND,
            'the same rule refuses carol, whom the ACL does not allow: NotFound (she learns nothing)')
    t.success(alice.retrieve('deny/1'), 'the rule does not name alice: her ACL rights stand')
    t.error(bob.retrieve_many(['deny/1']), E_ACCESS_DENIED, 'RetrieveMany is refused the same way')


def test_deposit_rules_reserve_a_name_prefix_for_one_user(t, bus, alice, bob):
    count0 = bus.entry_count()
    t.error(bob.deposit('res/x', memfd('squat')), E_ACCESS_DENIED,
            'bob may not deposit under res/ (rule res-others)', ['res-others', 'res/x'])
    t.error(bob.create_memory('res/y', 4096), E_ACCESS_DENIED, 'nor create memory there')
    t.error(bob.deposit_many({'res/a': 0, 'free/a': 1}, [memfd('a'), memfd('b')]), E_ACCESS_DENIED,
            'a DepositMany with one reserved name is refused whole')
    t.error(bob.deposit('res/deep/er', memfd('squat')), E_ACCESS_DENIED, 'res/** covers deeper names too')
    root = bus.client()
    t.error(root.deposit('res/root', memfd('r')), E_ACCESS_DENIED, 'everyone includes root')
    t.eq(bus.entry_count(), count0, 'the refused calls stored nothing')
    t.ok('free/a' not in bob.names('free/'), 'not even the unreserved name of the refused DepositMany')
    t.success(alice.deposit('res/x', memfd('mine')), 'alice, named by res-alice, deposits res/x')
    t.success(alice.create_memory('res/deep/y', 4096), 'and creates memory at res/deep/y')
    t.success(bob.deposit('free/b', memfd('b')), 'bob deposits outside res/ (no rule: allowed)')
    root.close()


def test_access_read_only_on_a_deposit_rule_keeps_entries_read_only(t, alice, bob):
    t.success(alice.deposit('keepro/1', memfd('kept read-only'), allow=['user:fdbtest-bob']),
              'alice deposits a read-write memfd under keepro/')
    got = bob.retrieve('keepro/1')
    t.eq(got.get('info', {}).get('access'), 'read-only', 'the broker keeps it read-only (info access)')
    t.eq(got.get('fd', {}).get('accmode'), 'read-only', 'and hands it out read-only')
    t.error(bob.retrieve('keepro/1', access='read-write'), E_ACCESS_DENIED,
            'read-write cannot be had back from the stored read-only fd')
    t.error(alice.deposit('keepro/wo', {'type': 'file', 'path': 'keepro-wo', 'data': 'w', 'mode': 'w'}),
            E_ACCESS_DENIED, 'a write-only fd under keepro/ is refused (read-only would widen it)')
    t.error(alice.deposit('keepro/sock', {'type': 'socket'}), E_NOT_SUPPORTED,
            'a socket under keepro/ is NotSupported (cannot be narrowed to read-only)')


def test_a_list_rule_hides_entries_from_list_only(t, alice, bob):
    t.success(alice.deposit('secret/1', memfd('s'), allow=['everyone']), 'alice deposits secret/1 for everyone')
    t.success(alice.deposit('open/1', memfd('o'), allow=['everyone']), 'and open/1 for everyone')
    t.success(bob.retrieve('secret/1'), 'bob may retrieve secret/1 (list rules do not touch retrieve)')
    bn = bob.names()
    t.ok('secret/1' not in bn and 'open/1' in bn, 'bob\'s List hides secret/1 but shows open/1', bn)
    an = alice.names()
    t.ok('secret/1' not in an, 'rule hide-secret names everyone: even the owner\'s List hides it', an)


def test_a_remove_rule_stops_even_the_owner_and_root(t, bus, alice):
    t.success(alice.deposit('locked/1', memfd('l')), 'alice deposits locked/1')
    t.error(alice.remove('locked/1'), E_ACCESS_DENIED, 'rule locked stops even the owner removing it',
            ['locked'])
    root = bus.client()
    t.error(root.remove('locked/1'), E_ACCESS_DENIED, 'and root')
    root.close()
    t.ok('locked/1' in alice.names('locked/'), 'locked/1 is still there')


def test_a_manage_rule_lets_another_user_remove(t, bus, alice, bob, carol):
    t.success(alice.deposit('shared/1', memfd('1')), 'alice deposits shared/1 (no allow list)')
    t.success(alice.deposit('shared/2', memfd('2')), 'and shared/2')
    t.success(carol.remove('shared/1'), 'rule carol-manages-shared lets carol remove alice\'s shared/1')
    t.ok('shared/1' not in alice.names('shared/'), 'shared/1 is gone')
    t.error(bob.remove('shared/2'), E_NOT_FOUND,
            'bob (no manage rule, cannot see shared/2) gets NotFound, not a polkit question')
    t.ok('shared/2' in alice.names('shared/'), 'shared/2 is still there')
    t.success(alice.deposit('shared/3', memfd('3'), allow=['user:fdbtest-bob']), 'alice deposits shared/3 for bob')
    t.error(bob.remove('shared/3'), E_ACCESS_DENIED,
            'bob may see shared/3, so manage goes to polkit; none on this bus: AccessDenied saying so',
            ['not reachable'])
