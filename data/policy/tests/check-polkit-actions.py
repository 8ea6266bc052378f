#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks data/policy/org.fdbroker.policy beyond its DTD: the seven actions
SPEC §2 names are all there (and nothing else), each with a description, a
message and all three defaults set to a valid polkit result; open-path and
manage default to auth_admin_keep as SPEC §2 says. TAP output."""

import sys
import xml.etree.ElementTree as ET

ACTIONS = ['deposit', 'retrieve', 'remove', 'list', 'create-memory', 'open-path', 'manage']
RESULTS = {'no', 'yes', 'auth_self', 'auth_self_keep', 'auth_admin', 'auth_admin_keep'}
DEFAULTS = ('allow_any', 'allow_inactive', 'allow_active')

n = 0
failed = 0


def ok(cond, name, diag=None):
    global n, failed
    n += 1
    print('%s %d - %s' % ('ok' if cond else 'not ok', n, name))
    if not cond:
        failed += 1
        if diag is not None:
            print('# %s' % diag)


def main(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        ok(False, '%s is well-formed XML' % path, e)
        return
    ok(root.tag == 'policyconfig', 'the root element is policyconfig', root.tag)
    actions = {a.get('id'): a for a in root.findall('action')}
    ids = ['org.fdbroker.' + a for a in ACTIONS]
    ok(sorted(actions) == sorted(ids), 'exactly the seven org.fdbroker.* actions', sorted(actions))
    for aid in ids:
        a = actions.get(aid)
        if a is None:
            ok(False, '%s is declared' % aid)
            continue
        desc = [d.text for d in a.findall('description') if d.get('{http://www.w3.org/XML/1998/namespace}lang') is None]
        msg = [m.text for m in a.findall('message') if m.get('{http://www.w3.org/XML/1998/namespace}lang') is None]
        ok(len(desc) == 1 and desc[0] and desc[0].strip(), '%s has a description' % aid, desc)
        ok(len(msg) == 1 and msg[0] and msg[0].strip(), '%s has a message' % aid, msg)
        d = a.find('defaults')
        vals = {k: (d.findtext(k) or '').strip() if d is not None else None for k in DEFAULTS}
        ok(all(v in RESULTS for v in vals.values()), '%s sets allow_any, allow_inactive and allow_active' % aid,
           vals)
        if aid in ('org.fdbroker.open-path', 'org.fdbroker.manage'):
            ok(set(vals.values()) == {'auth_admin_keep'}, '%s defaults to auth_admin_keep (SPEC §2)' % aid, vals)
        ok('yes' not in vals.values(), '%s never allows without asking by default' % aid, vals)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: check-polkit-actions.py FILE')
    main(sys.argv[1])
    print('1..%d' % n)
    sys.exit(1 if failed else 0)
