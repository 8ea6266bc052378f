#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""common/protocol.h against the files that state the protocol elsewhere.

Usage: check-protocol.py SOURCE_DIR

protocol.h is the C side's one definition of the bus name, object path,
interface, error names and limits. This checks, so that nothing can drift:

  - introspection/org.fdbroker.Broker1.xml: the node is FDB_OBJECT_PATH, the
    one interface of our own is FDB_INTERFACE, the error names its
    documentation lists are exactly the FDB_ERROR_NAME_* values, and the
    limits it states (names of 1-255 bytes, at most 16 fds) are
    FDB_NAME_MAX and FDB_FDS_PER_CALL_MAX;
  - the bus policy and the activation file own and activate FDB_BUS_NAME;
  - the python test harness uses the same names.

TAP output; exit 1 when something differs.
"""

import os
import re
import sys
import xml.etree.ElementTree as ET

STANDARD_INTERFACES = {'org.freedesktop.DBus.Peer', 'org.freedesktop.DBus.Introspectable',
                       'org.freedesktop.DBus.Properties'}


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def eq(self, got, want, what):
        self.n += 1
        if got == want:
            print('ok %d - %s' % (self.n, what))
        else:
            self.failed += 1
            print('not ok %d - %s' % (self.n, what))
            print('#   got:  %r' % (got,))
            print('#   want: %r' % (want,))


def read_defines(path):
    """#define NAME "string" or NAME 16u, continuation lines joined."""
    with open(path, encoding='utf-8') as f:
        text = f.read().replace('\\\n', ' ')
    defines = {}
    for m in re.finditer(r'^#define\s+(FDB_\w+)\s+(.+?)\s*$', text, re.M):
        value = m.group(2).strip()
        s = re.fullmatch(r'"([^"]*)"', value)
        if s:
            defines[m.group(1)] = s.group(1)
            continue
        n = re.fullmatch(r'\(?\s*(\d+)[uUlL]*\s*\)?', value)
        if n:
            defines[m.group(1)] = int(n.group(1))
    return defines


def main():
    src = sys.argv[1]
    t = Tap()
    d = read_defines(os.path.join(src, 'common', 'protocol.h'))
    errors = {v for k, v in d.items() if k.startswith('FDB_ERROR_NAME_')}
    t.eq(len(errors), len([k for k in d if k.startswith('FDB_ERROR_NAME_')]),
         'protocol.h: every FDB_ERROR_NAME_* is a different name')
    t.eq(d.get('FDB_BUS_NAME'), d.get('FDB_INTERFACE'),
         'protocol.h: the bus name is the interface name (SPEC section 1)')

    xml_path = os.path.join(src, 'introspection', 'org.fdbroker.Broker1.xml')
    with open(xml_path, encoding='utf-8') as f:
        xml_text = f.read()
    root = ET.fromstring(re.sub(r'<!DOCTYPE[^>]*>', '', xml_text, count=1))
    t.eq(root.get('name'), d.get('FDB_OBJECT_PATH'), 'XML: the node is FDB_OBJECT_PATH')
    ours = [i.get('name') for i in root.findall('interface') if i.get('name') not in STANDARD_INTERFACES]
    t.eq(ours, [d.get('FDB_INTERFACE')], 'XML: the one interface of our own is FDB_INTERFACE')

    m = re.search(r'Errors:(.*?)-->', xml_text, re.S)
    listed = set(re.findall(r'[A-Za-z][\w]*(?:\.[A-Za-z]\w*)+', m.group(1))) if m else set()
    t.eq(sorted(listed), sorted(errors), 'XML: the errors it documents are exactly the FDB_ERROR_NAME_* values')
    named = set(re.findall(r'org\.(?:fdbroker|freedesktop\.DBus)\.Error\.\w+', xml_text))
    t.eq(sorted(named - errors), [], 'XML: no error name anywhere in it that protocol.h lacks')

    m = re.search(r'Entry names are 1-(\d+) bytes', xml_text)
    t.eq(int(m.group(1)) if m else None, d.get('FDB_NAME_MAX'), 'XML: names of at most FDB_NAME_MAX bytes')
    limits = {int(x) for x in re.findall(r'at most (\d+)\.', xml_text)}
    t.eq(limits, {d.get('FDB_FDS_PER_CALL_MAX')}, 'XML: DepositMany/RetrieveMany take at most FDB_FDS_PER_CALL_MAX')

    with open(os.path.join(src, 'data', 'org.fdbroker.Broker1.conf'), encoding='utf-8') as f:
        conf = f.read()
    t.eq(sorted(set(re.findall(r'own="([^"]+)"', conf))), [d.get('FDB_BUS_NAME')],
         'bus policy: the name owned is FDB_BUS_NAME')
    # Besides its own name, the broker (root, or user fdbroker under the
    # unit) may ask the bus driver for GetConnectionStats (slow readers,
    # docs/behaviour.md).
    t.eq(sorted(set(re.findall(r'send_destination="([^"]+)"', conf)) - {'org.freedesktop.DBus'}),
         [d.get('FDB_BUS_NAME')], 'bus policy: calls go to FDB_BUS_NAME')
    t.eq(sorted(set(re.findall(r'send_destination="org.freedesktop.DBus"\s+send_interface="([^"]+)"\s+send_member="([^"]+)"',
                               conf))), [('org.freedesktop.DBus.Debug.Stats', 'GetConnectionStats')],
         'bus policy: of the bus driver, only GetConnectionStats')
    with open(os.path.join(src, 'data', 'org.fdbroker.Broker1.service.in'), encoding='utf-8') as f:
        activation = f.read()
    t.eq(re.findall(r'^Name=(.*)$', activation, re.M), [d.get('FDB_BUS_NAME')],
         'activation file: Name= is FDB_BUS_NAME')

    with open(os.path.join(src, 'tests', 'integration', 'harness.py'), encoding='utf-8') as f:
        harness = f.read()
    consts = dict(re.findall(r"^(BUS_NAME|OBJ_PATH|IFACE|E_\w+) = '([^']*)'", harness, re.M))
    t.eq(consts.get('BUS_NAME'), d.get('FDB_BUS_NAME'), 'harness.py: BUS_NAME')
    t.eq(consts.get('OBJ_PATH'), d.get('FDB_OBJECT_PATH'), 'harness.py: OBJ_PATH')
    t.eq(consts.get('IFACE'), d.get('FDB_INTERFACE'), 'harness.py: IFACE')
    t.eq(sorted(v for k, v in consts.items() if k.startswith('E_')), sorted(errors),
         'harness.py: its E_* are exactly the protocol\'s error names')

    print('1..%d' % t.n)
    return 1 if t.failed else 0


if __name__ == '__main__':
    sys.exit(main())
