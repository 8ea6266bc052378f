# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a handed-back fd allows: read-only, seal, reopen, O_PATH, and the
kind the broker reports for every sort of fd."""

import os

from harness import (E_ACCESS_DENIED, E_BUSY, E_EXISTS, E_NOT_FOUND,
                     E_NOT_SUPPORTED, memfd)

ALL_SEALS = ['grow', 'seal', 'shrink', 'write']


def test_a_read_only_memfd_entry_hands_out_an_o_rdonly_fd_with_the_bytes(t, bus, root):
    r = root
    res = r.deposit('ro/memfd', memfd(pattern=8192), access='read-only')
    t.success(res, 'deposit an O_RDWR memfd with access=read-only')
    sha = res['made']['sha256']
    g = r.retrieve('ro/memfd')
    f = g.get('fd', {})
    t.eq(f.get('accmode'), 'read-only', 'read-only memfd: retrieved fd is O_RDONLY (F_GETFL)')
    t.eq(f.get('mmap_write_shared'), False, 'read-only memfd: PROT_WRITE MAP_SHARED mmap fails')
    t.eq(f.get('read_sha256'), sha, 'read-only memfd: same bytes')
    t.eq(g.get('info', {}).get('access'), 'read-only', 'read-only memfd: info access read-only')


def test_the_broker_keeps_only_a_read_only_reopening_for_a_read_only_entry(t, bus, root):
    r = root
    # What the broker itself keeps: never the writable fd.
    t.success(r.fd_new('rw1', memfd(pattern=4096)), 'make an O_RDWR memfd')
    mine = r.fd_facts('rw1').get('fd', {})
    t.success(r.deposit('ro/held', {'handle': 'rw1'}, access='read-only'), 'deposit it read-only')
    t.success(r.deposit('ro/held-rw', {'handle': 'rw1'}), 'deposit it again as it is')
    held = [i for i in bus.service_fdinfo().values() if (i['dev'], i['ino']) == (mine.get('dev'), mine.get('ino'))]
    modes = sorted(i['flags'] & os.O_ACCMODE for i in held)
    t.eq(modes, sorted([os.O_RDONLY, os.O_RDWR]),
         'the broker holds an O_RDONLY fd for the read-only entry (and O_RDWR only for the other)')
    r.remove('ro/held-rw')
    held = [i for i in bus.service_fdinfo().values() if (i['dev'], i['ino']) == (mine.get('dev'), mine.get('ino'))]
    t.eq([i['flags'] & os.O_ACCMODE for i in held], [os.O_RDONLY],
         'for a read-only entry the broker keeps only a read-only reopening, never the writable fd')
    r.fd_close('rw1')


def test_a_read_only_regular_file_entry_hands_out_an_o_rdonly_fd(t, bus, root):
    r = root
    res = r.deposit('ro/file', {'type': 'file', 'path': 'ro-file', 'pattern': 5000, 'mode': 'rw'},
                    access='read-only')
    t.success(res, 'deposit an O_RDWR regular file with access=read-only')
    f = r.retrieve('ro/file').get('fd', {})
    t.eq((f.get('accmode'), f.get('mmap_write_shared'), f.get('read_sha256')),
         ('read-only', False, res['made']['sha256']),
         'read-only file: O_RDONLY, no writable shared mapping, same bytes')


def test_retrieve_access_narrows_a_fd_but_never_widens_it(t, bus, root):
    r = root
    t.success(r.deposit('ro/memfd', memfd(pattern=8192), access='read-only'), 'deposit a memfd read-only')
    res = r.deposit('ro/rt', memfd(pattern=4096))
    t.success(res, 'deposit an O_RDWR memfd as it is')
    f = r.retrieve('ro/rt', access='read-only').get('fd', {})
    t.eq((f.get('accmode'), f.get('mmap_write_shared'), f.get('read_sha256')),
         ('read-only', False, res['made']['sha256']),
         'Retrieve access=read-only: O_RDONLY, no writable shared mapping, same bytes')
    g = r.retrieve('ro/rt')
    t.eq((g.get('fd', {}).get('accmode'), g.get('fd', {}).get('mmap_write_shared'),
          g.get('info', {}).get('access')), ('read-write', True, 'read-write'),
         'a plain Retrieve of the same entry is still read-write')
    f = r.retrieve('ro/rt', access='read-write').get('fd', {})
    t.eq(f.get('accmode'), 'read-write', 'Retrieve access=read-write of a read-write entry is read-write')
    t.error(r.retrieve('ro/memfd', access='read-write'), E_ACCESS_DENIED,
            'Retrieve access=read-write of a read-only entry is AccessDenied (never widen)')


def test_a_write_only_entry_stays_write_only_and_is_never_read(t, bus, root):
    r = root
    res = r.deposit('ro/wo', {'type': 'file', 'path': 'wo-file', 'data': 'secret', 'mode': 'w'})
    t.success(res, 'deposit an O_WRONLY file')
    g = r.retrieve('ro/wo')
    t.eq((g.get('fd', {}).get('accmode'), g.get('info', {}).get('access')), ('write-only', 'write-only'),
         'write-only entry: O_WRONLY fd, info access write-only')
    t.error(r.retrieve('ro/wo', access='read-only'), E_ACCESS_DENIED,
            'Retrieve access=read-only of a write-only entry is AccessDenied naming the entry', ['ro/wo'])
    res = r.deposit('ro/wo2', {'type': 'file', 'path': 'wo-file2', 'data': 'secret', 'mode': 'w'},
                    access='read-only')
    refused_nothing_stored(t, r, res, 'ro/wo2', [E_ACCESS_DENIED, E_NOT_SUPPORTED],
                           'Deposit access=read-only of an O_WRONLY file is refused')


def test_read_only_is_not_supported_for_sockets_and_eventfds(t, bus, root):
    r = root
    for kind, spec in (('socket', {'type': 'socket'}), ('eventfd', {'type': 'eventfd'})):
        res = r.deposit('ro/' + kind, spec, access='read-only')
        refused_nothing_stored(t, r, res, 'ro/' + kind, [E_NOT_SUPPORTED],
                               'Deposit access=read-only of a %s is NotSupported' % kind)
    t.success(r.deposit('ro/sock-plain', {'type': 'socket'}), 'deposit a socket as it is')
    t.error(r.retrieve('ro/sock-plain', access='read-only'), E_NOT_SUPPORTED,
            'Retrieve access=read-only of a socket is NotSupported')


def test_fifos_directories_and_devices_may_be_deposited_read_only(t, bus, root):
    r = root
    for kind, spec, typ in (('fifo', {'type': 'fifo', 'path': 'ro-fifo'}, 'fifo'),
                            ('dir', {'type': 'dir'}, 'directory'),
                            ('devnull', {'type': 'devnull', 'mode': 'rw'}, 'char-device')):
        t.success(r.deposit('ro/' + kind, spec, access='read-only'),
                  'Deposit access=read-only of a %s' % typ)
        g = r.retrieve('ro/' + kind, read=False)
        t.eq((g.get('fd', {}).get('type'), g.get('fd', {}).get('accmode'), g.get('info', {}).get('access')),
             (typ, 'read-only', 'read-only'), 'read-only %s: O_RDONLY fd of the same type' % typ)


def test_a_sealed_memfd_entry_carries_every_seal_and_the_bytes(t, bus, root):
    r = root
    t.success(r.fd_new('s1', memfd(pattern=10000)), 'make a memfd (MFD_ALLOW_SEALING)')
    res = r.deposit('seal/a', {'handle': 's1'}, seal=True, allow=['everyone'])
    t.success(res, 'deposit it with seal')
    g = r.retrieve('seal/a')
    f = g.get('fd', {})
    t.eq(f.get('seal_names'), ALL_SEALS, 'sealed memfd: F_GET_SEALS has SHRINK|GROW|WRITE|SEAL')
    t.eq(g.get('info', {}).get('sealed'), True, 'sealed memfd: info sealed true')
    t.eq(f.get('mmap_write_shared'), False, 'sealed memfd: a writable shared mapping fails')
    t.eq(f.get('read_sha256'), r.fd_facts('s1').get('fd', {}).get('read_sha256'),
         'sealed memfd: reader sees the depositor\'s bytes')
    t.eq(r.fd_facts('s1').get('fd', {}).get('seal_names'), ALL_SEALS,
         'the depositor\'s memfd carries the seals too (same inode)')
    r.fd_close('s1')


def test_seal_is_not_supported_for_files_pipes_or_memfds_without_sealing(t, bus, root):
    r = root
    refused_nothing_stored(t, r, r.deposit('seal/file', {'type': 'file', 'path': 'seal-file', 'data': 'x'}, seal=True),
                           'seal/file', [E_NOT_SUPPORTED], 'seal on a regular file is NotSupported')
    refused_nothing_stored(t, r, r.deposit('seal/nosealing', memfd('x', sealing=False), seal=True),
                           'seal/nosealing', [E_NOT_SUPPORTED],
                           'seal on a memfd without MFD_ALLOW_SEALING is NotSupported')
    refused_nothing_stored(t, r, r.deposit('seal/pipe', {'type': 'pipe'}, seal=True),
                           'seal/pipe', [E_NOT_SUPPORTED], 'seal on a pipe is NotSupported')


def test_seal_with_a_live_writable_mapping_is_busy_and_seals_nothing(t, bus, root):
    r = root
    # A writable shared mapping alive in the depositor during the call.
    t.success(r.fd_new('s2', memfd(pattern=4096)), 'make another memfd')
    t.success(r.req('mmap_keep', handle='s2', writable=True), 'depositor keeps a writable shared mapping of it')
    n = bus.entry_count()
    res = r.deposit('seal/busy', {'handle': 's2'}, seal=True)
    t.error(res, E_BUSY, 'seal with a live writable shared mapping is Busy')
    t.eq(bus.entry_count(), n, 'Busy: EntryCount unchanged')
    t.error(r.retrieve('seal/busy'), E_NOT_FOUND, 'Busy: nothing stored')
    t.eq(r.fd_facts('s2').get('fd', {}).get('seals'), 0, 'Busy: the memfd got no seal at all')
    r.req('munmap', handle='s2')
    t.success(r.deposit('seal/busy', {'handle': 's2'}, seal=True), 'after munmap the same seal deposit works')
    r.fd_close('s2')


def test_info_sealed_says_whether_a_memfd_is_sealed_however_it_got_there(t, bus, root):
    r = root
    t.success(r.deposit('seal/pre', memfd('pre', seals=['shrink', 'grow', 'write'])),
              'deposit a memfd the depositor sealed SHRINK|GROW|WRITE itself')
    t.eq(r.retrieve('seal/pre').get('info', {}).get('sealed'), True, 'info sealed is true however the seals got there')
    t.success(r.deposit('seal/none', memfd('none')), 'deposit an unsealed memfd')
    t.eq(r.retrieve('seal/none').get('info', {}).get('sealed'), False, 'info sealed is false for an unsealed memfd')


def test_a_deposit_refused_for_another_reason_never_seals_the_memfd(t, bus, root):
    r = root
    t.success(r.deposit('seal/none', memfd('none')), 'deposit an unsealed memfd seal/none')
    # A deposit refused for another reason never seals the depositor's memfd.
    t.success(r.fd_new('s3', memfd('x')), 'make a third memfd')
    t.error(r.deposit('seal/none', {'handle': 's3'}, seal=True), E_EXISTS, 'seal deposit over an existing name is Exists')
    t.eq(r.fd_facts('s3').get('fd', {}).get('seals'), 0, 'the refused deposit did not seal the memfd')
    r.fd_close('s3')


def test_reopen_gives_a_file_description_of_its_own_and_plain_retrieve_shares_one(t, bus, root):
    r = root
    res = r.deposit('re/file', {'type': 'file', 'path': 're-file', 'data': 'abcdefghijklmnop', 'seek': 3})
    t.success(res, 'deposit a regular file whose offset is 3')
    t.success(r.retrieve('re/file', keep='A', reopen=True), 'Retrieve reopen (A)')
    t.success(r.retrieve('re/file', keep='B', reopen=True), 'Retrieve reopen (B)')
    t.eq(r.fd_facts('B').get('fd', {}).get('offset'), 0, 'a reopened fd starts at offset 0')
    r.req('fd_lseek', handle='A', offset=5)
    t.eq((r.fd_facts('A').get('fd', {}).get('offset'), r.fd_facts('B').get('fd', {}).get('offset')), (5, 0),
         'reopen: lseek in one reopened fd does not move the other')
    t.success(r.retrieve('re/file', keep='C'), 'Retrieve without reopen (C)')
    t.success(r.retrieve('re/file', keep='D'), 'Retrieve without reopen (D)')
    t.eq(r.fd_facts('C').get('fd', {}).get('offset'), 3, 'without reopen the stored offset is shared (3)')
    r.req('fd_lseek', handle='C', offset=7)
    t.eq(r.fd_facts('D').get('fd', {}).get('offset'), 7,
         'without reopen, fds share one file description (lseek moves both)')
    t.eq(r.fd_facts('A').get('fd', {}).get('read_sha256'), res['made']['sha256'], 'reopened fd reads the bytes')
    for h in 'ABCD':
        r.fd_close(h)


def test_reopened_memfds_have_their_own_offsets_and_keep_the_bytes(t, bus, root):
    r = root
    res = r.deposit('re/memfd', memfd(pattern=3000))
    t.success(r.retrieve('re/memfd', keep='M1', reopen=True), 'Retrieve reopen of a memfd (M1)')
    t.success(r.retrieve('re/memfd', keep='M2', reopen=True), 'Retrieve reopen of a memfd (M2)')
    r.req('fd_lseek', handle='M1', offset=100)
    f1, f2 = r.fd_facts('M1').get('fd', {}), r.fd_facts('M2').get('fd', {})
    t.eq((f1.get('offset'), f2.get('offset')), (100, 0), 'reopened memfds have their own offsets')
    t.eq((f2.get('accmode'), f2.get('read_sha256'), f2.get('memfd')), ('read-write', res['made']['sha256'], True),
         'reopened memfd keeps read-write and the bytes')
    r.fd_close('M1')
    r.fd_close('M2')


def test_reopen_and_read_only_keep_o_append(t, bus, root):
    r = root
    t.success(r.deposit('re/append', {'type': 'file', 'path': 're-append', 'data': 'log\n', 'append': True}),
              'deposit an O_RDWR|O_APPEND file')
    f = r.retrieve('re/append', reopen=True).get('fd', {})
    t.eq((f.get('accmode'), f.get('append')), ('read-write', True), 'reopen keeps O_APPEND and read-write')
    f = r.retrieve('re/append', reopen=True, access='read-only').get('fd', {})
    t.eq((f.get('accmode'), f.get('append')), ('read-only', True),
         'reopen with access=read-only narrows to O_RDONLY and keeps O_APPEND')
    f = r.retrieve('re/append', access='read-only').get('fd', {})
    t.eq((f.get('accmode'), f.get('append')), ('read-only', True),
         'Retrieve access=read-only of an O_APPEND file keeps O_APPEND')
    t.success(r.deposit('re/append-ro', {'type': 'file', 'path': 're-append2', 'data': 'x', 'append': True},
                        access='read-only'), 'deposit an O_RDWR|O_APPEND file with access=read-only')
    f = r.retrieve('re/append-ro').get('fd', {})
    t.eq((f.get('accmode'), f.get('append')), ('read-only', True),
         'the read-only reopening made at deposit keeps O_APPEND')
    t.success(r.deposit('re/wo-append', {'type': 'file', 'path': 're-wo', 'data': '', 'mode': 'w',
                                         'append': True}), 'deposit an O_WRONLY|O_APPEND file')
    f = r.retrieve('re/wo-append', reopen=True).get('fd', {})
    t.eq((f.get('accmode'), f.get('append')), ('write-only', True),
         'reopen of a write-only entry stays O_WRONLY and keeps O_APPEND')


def test_reopen_of_a_read_only_entry_stays_read_only(t, bus, root):
    r = root
    t.success(r.deposit('re/ro', memfd(pattern=100), access='read-only'), 'deposit a memfd read-only')
    f = r.retrieve('re/ro', reopen=True).get('fd', {})
    t.eq((f.get('accmode'), f.get('mmap_write_shared')), ('read-only', False),
         'reopen of a read-only entry stays read-only')


def test_reopen_goes_through_the_stored_fd_never_the_path(t, bus, root):
    r = root
    # Reopening goes through the stored fd, never through the file's path:
    # after the depositor swaps the path for a symlink to another file,
    # a reopening still gives the original inode.
    t.success(r.fd_new('sw', {'type': 'file', 'path': 're-swap', 'data': 'original bytes'}),
              'open a file re-swap')
    orig = r.fd_facts('sw').get('fd', {})
    t.success(r.deposit('re/swap', {'handle': 'sw'}), 'deposit it')
    r.fd_close('sw')
    p = os.path.join(bus.scratch, 're-swap')
    os.rename(p, p + '.moved')
    os.symlink('/etc/passwd', p)
    for label, opts in (('reopen', {'reopen': True}), ('access=read-only', {'access': 'read-only'})):
        f = r.retrieve('re/swap', **opts).get('fd', {})
        t.eq((f.get('ino'), f.get('read_head')), (orig.get('ino'), 'original bytes'),
             '%s after the path was swapped for a symlink gives the original file' % label)
    os.unlink(p)
    os.unlink(p + '.moved')
    f = r.retrieve('re/swap', reopen=True).get('fd', {})
    t.eq((f.get('ino'), f.get('read_head')), (orig.get('ino'), 'original bytes'),
         'reopen of a deleted file still gives the original file')


def test_reopen_of_a_pipe_socket_or_eventfd_is_not_supported(t, bus, root):
    r = root
    for kind, spec in (('pipe', {'type': 'pipe'}), ('socket', {'type': 'socket'}),
                       ('eventfd', {'type': 'eventfd'})):
        t.success(r.deposit('re/' + kind, spec), 'deposit a %s' % kind)
        t.error(r.retrieve('re/' + kind, reopen=True), E_NOT_SUPPORTED,
                'reopen of a %s is NotSupported naming the entry' % kind, ['re/' + kind])


def test_an_o_path_fd_cannot_be_deposited(t, bus, root):
    r = root
    for what, spec in (('a directory', {'type': 'opath'}),
                       ('a regular file', {'type': 'opath', 'path': '/etc/passwd'})):
        refused_nothing_stored(t, r, r.deposit('re/opath', spec), 're/opath', [E_NOT_SUPPORTED],
                               'Deposit of an O_PATH fd of %s is NotSupported' % what)


def test_the_broker_reports_the_kind_of_every_sort_of_fd(t, root):
    r = root
    cases = [
        ('memfd', memfd('m'), 'regular'),
        ('regular', {'type': 'file', 'path': 'kind-file', 'data': 'r'}, 'regular'),
        ('directory', {'type': 'dir'}, 'directory'),
        ('fifo', {'type': 'fifo', 'path': 'kind-fifo'}, 'fifo'),
        ('fifo', {'type': 'pipe'}, 'fifo'),
        ('socket', {'type': 'socket'}, 'socket'),
        ('char-device', {'type': 'devnull'}, 'char-device'),
        ('eventfd', {'type': 'eventfd'}, 'other'),
        ('pidfd', {'type': 'pidfd'}, None),
        ('timerfd', {'type': 'timerfd'}, 'other'),
        ('signalfd', {'type': 'signalfd'}, 'other'),
    ]
    blk = None
    for p in ('/dev/loop0', '/dev/zram0', '/dev/ram0'):
        try:
            os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            blk = p
            break
        except OSError:
            pass
    if blk:
        cases.append(('block-device', {'type': 'device', 'path': blk}, 'block-device'))
    for i, (kind, spec, fstype) in enumerate(cases):
        label = kind if spec['type'] == kind else '%s (%s)' % (kind, spec['type'])
        name = 'kind/%d-%s' % (i, kind)
        h = 'k%d' % i
        res = r.fd_new(h, spec)
        if not res.get('ok'):
            t.skip('kind %s' % label, 'cannot make one here: %s' % res.get('message'))
            continue
        dep = r.fd_facts(h).get('fd', {})
        t.success(r.deposit(name, {'handle': h}), 'deposit %s' % label)
        g = r.retrieve(name, read=False)
        t.eq(g.get('info', {}).get('kind'), kind, 'info kind of %s is %s' % (label, kind))
        lst = r.list(prefix='kind/').get('entries', [])
        t.eq([e['info'].get('kind') for e in lst if e['name'] == name], [kind], 'List kind of %s is %s' % (label, kind))
        f = g.get('fd', {})
        t.eq((f.get('type'), f.get('link')), (dep.get('type'), dep.get('link')),
             '%s: the retrieved fd is the same sort of file (%s)' % (label, dep.get('link')))
        if fstype:
            t.eq(f.get('type'), fstype, '%s: fstat type %s' % (label, fstype))
        r.fd_close(h)
    if not blk:
        t.skip('kind block-device', 'no block device can be opened here')
    # Made only where the machine can: a DMA heap, sw_sync in debugfs.
    for kind, spec, why in (
            ('dmabuf', {'type': 'dmabuf'}, 'no DMA-BUF exporter here (/dev/dma_heap/system)'),
            ('sync-file', {'type': 'sync-file'}, 'no sync_file source here (sw_sync in debugfs)')):
        res = r.fd_new('x-' + kind, spec)
        if not res.get('ok'):
            t.skip('kind %s' % kind, '%s: %s' % (why, res.get('message')))
            continue
        t.success(r.deposit('kind/' + kind, {'handle': 'x-' + kind}), 'deposit %s' % kind)
        t.eq(r.retrieve('kind/' + kind, read=False).get('info', {}).get('kind'), kind,
             'info kind of %s is %s' % (kind, kind))
        r.fd_close('x-' + kind)


def refused_nothing_stored(t, r, res, name, errs, what):
    ok = isinstance(res, dict) and not res.get('ok') and res.get('error') in errs
    t.ok(ok, what, {'expected one of': errs, 'got': res})
    t.error(r.retrieve(name), E_NOT_FOUND, '%s: nothing stored' % what)
