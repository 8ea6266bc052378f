# SPDX-License-Identifier: LGPL-2.1-or-later
"""fdbroker --check-policy (SPEC §3): one "FILE:LINE: message" per problem
on stderr, in line order and once each, and exit 1; exit 0 for good files,
saying which directories were read (and which did not exist) and which
files; a directory named with --policy-dir that does not exist is a
failure; --policy-dir is repeatable, highest priority first, and a file
masks the same-named one of a later directory. Runs the binary directly: no
bus, no root needed."""

import os
import shutil
import subprocess
import tempfile

import pytest

import harness

BROKEN = '''\
# line 1: a comment
Action=retrieve
[Rule fine]
Action=retrieve
Subject=everyone
Result=yes

[Rule bad]
Action=retrieve fetch
Match=
Subject=gecko
Result=maybe
Access=all
Colour=blue
Result=yes

[Rule incomplete]
Match=x/*

[Limits]
MaxEntries=10K
MaxEntriesPerUser=2000000
MaxMemorySize=0
Bogus=1

[Rule bad name!]
[Rules x]
[Rule unterminated
just text
'''

# (line, words the message must contain), in the order they are printed.
BROKEN_EXPECTED = [
    (2, "'Action=' outside any section"),
    (9, "unknown action 'fetch'"),
    (10, 'Match= is empty'),
    (11, "'gecko' is not a subject"),
    (12, "unknown result 'maybe'"),
    (13, "unknown access 'all'"),
    (14, "unknown key 'Colour'"),
    (15, 'Result= is given twice'),
    (17, "rule 'incomplete' has no Action="),
    (17, "rule 'incomplete' has no Subject="),
    (17, "rule 'incomplete' has no Result="),
    (21, 'MaxEntries=10K is not valid'),
    (22, 'MaxEntriesPerUser=2000000 is not valid'),
    (23, 'MaxMemorySize=0 is not valid'),
    (24, "unknown key 'Bogus' in [Limits]"),
    (26, "rule name 'bad name!' is not valid"),
    (27, "unknown section '[Rules x]'"),
    (28, "section header does not end with ']'"),
    (29, 'expected KEY=VALUE'),
]

GOOD = '''\
# Camera frames for the video group, read-only.
[Rule camera-readers]
Action=retrieve              # comments after values are allowed
Match=camera/*
Subject=group:root uid:0 everyone
Result=yes
Access=read-only

[Rule reserve]
Action=deposit create-memory
Match=camera/**
Subject=uid:0
Result=auth_admin_keep

[Limits]
MaxEntries=4096
MaxEntriesPerUser=256
MaxMemorySize=1G
'''

GOOD2 = '''\
[Rule devices]
Action=open-path
Match=/dev/video*
Subject=user:root
Result=auth_self_keep
Access=read-write
'''


def check(binary, *dirs):
    r = subprocess.run([binary, '--check-policy'] + ['--policy-dir=' + d for d in dirs],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr.splitlines()


def write(d, name, text, mode='w'):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), mode) as f:
        f.write(text)
    return os.path.join(d, name)


@pytest.fixture(scope='module')
def binary():
    b = harness.service_binary()
    if not os.access(b, os.X_OK):
        pytest.skip('service binary %s not built' % b)
    return b


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix='fdbroker-check-policy-')
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_broken_file_gives_one_file_line_message_per_problem_in_order(t, binary, tmp):
    d = os.path.join(tmp, 'broken')
    path = write(d, '10-broken.conf', BROKEN)
    rc, out, err = check(binary, d)
    t.eq(rc, 1, 'a broken file: exit status 1')
    want = ['%s:%d:' % (path, line) for line, _ in BROKEN_EXPECTED]
    got = [e.split(' ', 1)[0] for e in err]
    t.eq(got, want, 'one line per problem, each starting with the exact FILE:LINE: (%d problems)' % len(want))
    for (line, words), e in zip(BROKEN_EXPECTED, err):
        if not t.ok(words in e, 'line %d: %s' % (line, words), e):
            break
    t.ok(all(e.startswith(path + ':') and ': ' in e[len(path):] for e in err), 'every line is FILE:LINE: message')
    t.eq(out, '', 'nothing on stdout')


def test_problems_across_files_are_reported_per_file_in_line_order(t, binary, tmp):
    d = os.path.join(tmp, 'across')
    a = write(d, '10-a.conf', GOOD)
    b = write(d, '20-b.conf', '[Rule camera-readers]\nAction=list\nSubject=everyone\nResult=no\n'
              '\n[Rule nul]\nAction=list\x00\nSubject=everyone\nResult=no\n')
    c = os.path.join(d, '30-dir.conf')
    os.mkdir(c)
    rc, out, err = check(binary, d)
    t.eq(rc, 1, 'problems in other files: exit status 1')
    t.eq(err, ["%s:1: rule 'camera-readers' is already defined at %s:2." % (b, a),
               "%s:6: rule 'nul' has no Action= line." % b,
               '%s:7: line contains a NUL byte.' % b,
               '%s:0: cannot read: Is a directory.' % c],
         'a rule name defined twice points at the first definition; a NUL byte and an unreadable '
         '"file" are reported too (the latter at line 0); each file\'s problems in line order')


def test_an_unknown_user_name_is_one_problem(t, binary, tmp):
    d = os.path.join(tmp, 'user')
    p = write(d, '10-user.conf', '[Rule r]\nAction=retrieve\nSubject=user:fdbtest-no-such-user\nResult=yes\n')
    rc, _, err = check(binary, d)
    t.eq((rc, err), (1, ["%s:3: subject 'user:fdbtest-no-such-user' names no known user or group." % p]),
         'an unknown user name is a problem (names resolve when the policy is read), reported once')
    p = write(d, '10-user.conf', '[Rule r]\nAction=retrieve\nSubject=gecko gecko\nResult=yes\n')
    rc, _, err = check(binary, d)
    t.ok(rc == 1 and len(err) == 1, 'the same bad subject twice on a line is one problem', err)


def test_good_files_exit_0_listing_the_directory_rules_and_files_read(t, binary, tmp):
    d = os.path.join(tmp, 'good')
    a = write(d, '10-a.conf', GOOD)
    b = write(d, '20-b.conf', GOOD2)
    write(d, 'README', 'not a policy file [')
    write(d, '15-x.conf.bak', 'broken [')
    write(d, '.15-hidden.conf', 'broken [')
    rc, out, err = check(binary, d)
    t.eq(rc, 0, 'good files: exit status 0')
    t.eq(err, [], 'nothing on stderr')
    t.eq(out.splitlines(), ['Policy directories, highest priority first:',
                            '  %s: 2 file(s) read' % d,
                            '3 rule(s) in 2 file(s): OK', '  ' + a, '  ' + b],
         'stdout names the directory, counts the rules and lists the files read, in order; '
         'other names are ignored')


def test_an_empty_directory_is_ok_and_a_missing_or_non_directory_fails(t, binary, tmp):
    d = os.path.join(tmp, 'empty')
    os.makedirs(d)
    rc, out, err = check(binary, d)
    t.eq((rc, err), (0, []), 'an empty directory: exit status 0')
    t.eq(out.splitlines(), ['Policy directories, highest priority first:', '  %s: 0 file(s) read' % d,
                            '0 rule(s): no *.conf files in these directories: OK'],
         'an empty directory: says it read it and found no files', )
    missing = os.path.join(tmp, 'does-not-exist')
    rc, out, err = check(binary, d, missing)
    t.eq(rc, 1, 'a --policy-dir that does not exist: exit status 1')
    t.eq(err, ['fdbroker: FAIL: --policy-dir=%s does not exist; check the path.' % missing],
         'and one line saying so, naming it')
    t.eq(out, '', 'nothing on stdout: no "OK"')
    f = write(tmp, 'a-file', 'x')
    rc, _, err = check(binary, f)
    t.ok(rc == 1 and err and 'not a directory' in err[0], 'a --policy-dir that is a file: exit 1, saying so', err)


def test_a_file_masks_the_same_named_one_of_a_later_directory(t, binary, tmp):
    hi = os.path.join(tmp, 'etc')
    lo = os.path.join(tmp, 'usr')
    good_hi = write(hi, '50-vendor.conf', GOOD2)
    bad_lo = write(lo, '50-vendor.conf', BROKEN)
    other = write(lo, '60-other.conf', GOOD)
    rc, out, err = check(binary, hi, lo)
    t.eq((rc, err), (0, []), 'a good file in the first directory masks a broken one of the same name in the second')
    t.eq(out.splitlines(), ['Policy directories, highest priority first:',
                            '  %s: 1 file(s) read' % hi, '  %s: 1 file(s) read' % lo,
                            '3 rule(s) in 2 file(s): OK', '  ' + good_hi, '  ' + other],
         'both directories listed in priority order; the files read: the masking one and the other')
    rc, out, err = check(binary, lo, hi)
    t.eq(rc, 1, 'directories the other way round: the broken file masks the good one, exit status 1')
    t.ok(err and all(e.startswith(bad_lo + ':') for e in err), 'and the problems are the broken file\'s',
         err[:3])
