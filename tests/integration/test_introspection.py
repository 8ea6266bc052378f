# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runtime introspection against introspection/org.fdbroker.Broker1.xml,
the standard interfaces, Peer.Ping and the properties."""

import os
import re
import xml.etree.ElementTree as ET

import pytest

import harness
from harness import IFACE, memfd


def parse_node(xml_text):
    """{interface: {'methods': {name: [(arg, type, dir)], ...}, 'properties':
    {name: (type, access)}, 'signals': {...}, 'annotations': {member: {...}}}}"""
    root = ET.fromstring(xml_text)
    out = {}
    for iface in root.findall('interface'):
        d = {'methods': {}, 'properties': {}, 'signals': {}, 'annotations': {}}
        for m in iface.findall('method'):
            d['methods'][m.get('name')] = [(a.get('name'), a.get('type'), a.get('direction', 'in'))
                                           for a in m.findall('arg')]
            d['annotations']['method ' + m.get('name')] = annotations(m)
        for s in iface.findall('signal'):
            d['signals'][s.get('name')] = [(a.get('name'), a.get('type')) for a in s.findall('arg')]
        for p in iface.findall('property'):
            d['properties'][p.get('name')] = (p.get('type'), p.get('access'))
            d['annotations']['property ' + p.get('name')] = annotations(p)
        out[iface.get('name')] = d
    return out


def annotations(el):
    # GDBus codegen hints (org.gtk.GDBus.*) exist only for the generated client.
    return {a.get('name'): a.get('value') for a in el.findall('annotation')
            if not a.get('name').startswith('org.gtk.GDBus.')}


def sig_text(args):
    return '(' + ', '.join('%s %s %s' % (d, t, n) for n, t, d in args) + ')'


LIMITS = {
    'MaxEntries': ('u', 4096),
    'MaxEntriesPerUser': ('u', 256),
    'MaxMemorySize': ('t', 1073741824),
}


@pytest.fixture
def alice(bus, maybe_users):
    """alice, or None where the test users cannot be made (those checks skip)."""
    return bus.client(maybe_users['alice']) if maybe_users else None


def unprivileged(t, alice, what):
    if alice is None:
        t.skip(what, harness.user_skip)
    return alice is not None


def runtime(t, root):
    r = root.req('introspect')
    t.success(r, 'Introspectable.Introspect of /org/fdbroker/Broker1 answers')
    return parse_node(r['xml']) if r.get('ok') else {}


def test_runtime_introspection_matches_the_interface_xml(t, root):
    xml_path = os.path.join(harness.source_dir(), 'introspection', 'org.fdbroker.Broker1.xml')
    with open(xml_path) as f:
        expected = parse_node(f.read())[IFACE]
    got = runtime(t, root).get(IFACE)
    t.ok(got is not None, 'runtime introspection has interface %s' % IFACE)
    got = got or {'methods': {}, 'properties': {}, 'signals': {}, 'annotations': {}}
    for name, args in expected['methods'].items():
        t.eq(sig_text(got['methods'].get(name, [])) if name in got['methods'] else None,
             sig_text(args), 'method %s: arg names, types and directions match the XML' % name)
    t.eq(sorted(got['methods']), sorted(expected['methods']), 'no methods beyond the XML\'s')
    for name, (typ, access) in expected['properties'].items():
        t.eq(got['properties'].get(name), (typ, access),
             'property %s: type %s, access %s' % (name, typ, access))
    t.eq(sorted(got['properties']), sorted(expected['properties']), 'no properties beyond the XML\'s')
    t.eq(got['signals'], expected['signals'], 'signals match the XML')
    for member, ann in expected['annotations'].items():
        t.eq(got['annotations'].get(member), ann, '%s: annotations match the XML' % member)


def test_the_standard_interfaces_are_introspected(t, root):
    rt = runtime(t, root)
    for iface, members in (('org.freedesktop.DBus.Peer', ['Ping', 'GetMachineId']),
                           ('org.freedesktop.DBus.Introspectable', ['Introspect']),
                           ('org.freedesktop.DBus.Properties', ['Get', 'GetAll', 'Set'])):
        d = rt.get(iface)
        t.ok(d is not None and all(m in d['methods'] for m in members),
             'runtime introspection has %s (%s)' % (iface, ', '.join(members)),
             {'interface': d})


def test_ping_and_introspect_answer_root_and_unprivileged_users(t, root, alice):
    t.success(root.req('ping'), 'Peer.Ping answers root')
    if unprivileged(t, alice, 'Peer.Ping and Introspect answer an unprivileged user'):
        t.success(alice.req('ping'), 'Peer.Ping answers an unprivileged user')
        t.success(alice.req('introspect'), 'Introspect answers an unprivileged user')


def test_the_properties_give_the_limits_and_the_project_version(t, root, alice):
    with open(os.path.join(harness.source_dir(), 'meson.build')) as f:
        m = re.search(r"version:\s*'([^']+)'", f.read())
    project_version = m.group(1) if m else None
    for name, (typ, value) in LIMITS.items():
        r = root.req('get_property', name=name)
        t.eq((r.get('type'), r.get('value')), (typ, value), 'Get %s is %s %d' % (name, typ, value))
    r = root.req('get_property', name='Version')
    t.eq((r.get('type'), r.get('value')), ('s', project_version),
         'Get Version is the project version (%s)' % project_version)
    r = root.req('get_property', name='EntryCount')
    t.eq(r.get('type'), 'u', 'Get EntryCount has type u')
    r = root.req('get_all')
    t.eq(r.get('types'), {'Version': 's', 'EntryCount': 'u', 'MaxEntries': 'u',
                          'MaxEntriesPerUser': 'u', 'MaxMemorySize': 't'},
         'GetAll returns the five properties with their types')
    t.eq({k: r.get('values', {}).get(k) for k in LIMITS}, {k: v for k, (_, v) in LIMITS.items()},
         'GetAll values of the limits match Get')
    if unprivileged(t, alice, 'GetAll answers an unprivileged user'):
        r = alice.req('get_all')
        t.eq(sorted(r.get('values', {})), sorted(['Version', 'EntryCount', 'MaxEntries',
                                                  'MaxEntriesPerUser', 'MaxMemorySize']),
             'GetAll answers an unprivileged user')
    r = root.req('get_property', name='NoSuchProperty')
    t.ok(not r.get('ok'), 'Get of an unknown property is an error', r)


def test_entrycount_follows_deposits_and_removals_of_every_user(t, bus, root, alice):
    count0 = root.req('get_property', name='EntryCount').get('value')
    r = root.deposit('prop/root', memfd('x'))
    t.success(r, 'root deposits prop/root')
    t.eq(bus.entry_count(), count0 + 1, 'EntryCount grows by one with a deposit')
    if unprivileged(t, alice, 'EntryCount counts all users\' entries'):
        t.success(alice.deposit('prop/alice', memfd('y')), 'alice deposits prop/alice')
        t.eq(alice.entry_count(), count0 + 2,
             'EntryCount counts all users\' entries, as alice sees it too')
        t.success(alice.remove('prop/alice'), 'alice removes prop/alice')
    t.success(root.remove('prop/root'), 'root removes prop/root')
    t.eq(bus.entry_count(), count0, 'EntryCount is back after removals')


def test_properties_set_is_refused_and_changes_nothing(t, root, alice):
    # Refused by the bus policy or by the service.
    r = root.req('set_property', name='EntryCount', value=['u', 77])
    t.ok(not r.get('ok'), 'Properties.Set of EntryCount is refused to root', r)
    r = root.req('set_property', name='MaxEntries', value=['u', 1])
    t.ok(not r.get('ok'), 'Properties.Set of MaxEntries is refused to root', r)
    t.eq(root.req('get_property', name='MaxEntries').get('value'), 4096, 'MaxEntries unchanged after Set')
    if unprivileged(t, alice, 'Properties.Set by an unprivileged user'):
        r = alice.req('set_property', name='MaxEntriesPerUser', value=['u', 100000])
        if harness.transport() == 'bus':
            t.error(r, harness.E_ACCESS_DENIED, 'Properties.Set is AccessDenied to an unprivileged user')
        else:
            # No bus policy in between: the service itself refuses.
            t.error(r, 'org.freedesktop.DBus.Error.PropertyReadOnly',
                    'Properties.Set over a direct connection is PropertyReadOnly', ['MaxEntriesPerUser'])
        t.eq(root.req('get_property', name='MaxEntriesPerUser').get('value'), 256,
             'MaxEntriesPerUser unchanged after Set')


def test_the_service_raises_its_fd_limit_and_keeps_every_fd_cloexec(t, bus, root):
    lim = bus.service_limits().get('Max open files')
    t.ok(lim is not None and lim[0] == lim[1], 'the service raised RLIMIT_NOFILE soft limit to the hard limit', lim)
    info = bus.service_fdinfo()
    no_cloexec = {fd: i for fd, i in info.items() if fd > 2 and not i['flags'] & os.O_CLOEXEC}
    t.eq(no_cloexec, {}, 'every fd the service holds (above 2) is O_CLOEXEC')


def test_the_service_exits_on_sigterm_and_the_next_call_activates_it_again(t, bus, root):
    bus.same_pid = False
    pid0 = bus.pid0
    how = bus.stop_service()
    t.eq(how, 'term', 'the service exits on SIGTERM')
    t.ok(not bus.service_running(), 'its name is released')
    pid1 = bus.service_pid()
    t.ok(pid1 and pid1 != pid0, 'the next call activates a new service process', {'old': pid0, 'new': pid1})
    if harness.transport() == 'bus':
        t.success(root.req('ping'), 'Peer.Ping answers the new process')
        t.eq(root.req('get_property', name='MaxEntries').get('value'), 4096, 'the new process answers Get')
    else:
        t.skip('Peer.Ping answers the new process',
               'bus only: a direct connection ends with the process that served it')
