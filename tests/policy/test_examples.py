# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shipped policy files do what their comments say, through the real
bus: the service reads docs/examples/policy.d (60-camera.conf) ahead of
data/policy/policy.d (the vendor file), as /etc ahead of /usr/share."""

import grp
import os

import harness
from harness import E_ACCESS_DENIED, E_NOT_FOUND, Skip, memfd


def test_the_shipped_camera_example_and_vendor_policy_do_what_they_say(t, users, bus_with):
    src = harness.source_dir()
    example = os.path.join(src, 'docs', 'examples', 'policy.d')
    vendor = os.path.join(src, 'data', 'policy', 'policy.d')
    for d in (example, vendor):
        if not os.path.isdir(d):
            raise Skip('%s not in this tree' % d)
    try:
        video = grp.getgrnam('video').gr_gid
    except KeyError:
        raise Skip('no group "video" on this machine (60-camera.conf names it)')
    bus = bus_with(extra_service_args=['--policy-dir=' + example, '--policy-dir=' + vendor])

    alice = bus.client(users['alice'])
    bob_video = bus.client(users['bob'], groups=[video])
    carol = bus.client(users['carol'])
    root = bus.client()

    t.eq(bus.get_property('MaxEntriesPerUser'), 64, '[Limits] MaxEntriesPerUser=64 applies')
    t.eq(bus.get_property('MaxEntries'), 4096, 'the vendor file changes no limit')
    t.error(alice.deposit('camera/front', memfd('fake frame')), E_ACCESS_DENIED,
            'camera-reserved: alice may not deposit under camera/', ['camera-reserved'])
    t.success(root.deposit('camera/front', memfd('frame 1')), 'camera-producer: root deposits camera/front')
    r = bob_video.retrieve('camera/front')
    t.success(r, 'camera-readers: a member of video retrieves it')
    t.eq(r.get('fd', {}).get('accmode'), 'read-only', 'read-only')
    t.error(carol.retrieve('camera/front'), E_NOT_FOUND,
            'camera-others: anyone else needs polkit; none here, and carol is not in the ACL: NotFound')
    t.success(alice.deposit('other/x', memfd('x')), 'outside camera/ nothing changes: alice deposits other/x')
    t.error(carol.open_path('/dev/null'), E_ACCESS_DENIED, 'OpenPath outside /dev/video* still needs polkit',
            ['not reachable'])

