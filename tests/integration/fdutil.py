# SPDX-License-Identifier: LGPL-2.1-or-later
"""Making file descriptors of every kind and measuring what a received fd allows.

Pure Python (no GLib): used by client.py, which runs as the test users, and by
the test scripts themselves. Everything here works on raw fd numbers; the
caller owns (and closes) what make_fd() returns.
"""

import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import mmap
import os
import socket
import stat

# <linux/fcntl.h>
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
SEALS_BY_NAME = {
    'seal': F_SEAL_SEAL,
    'shrink': F_SEAL_SHRINK,
    'grow': F_SEAL_GROW,
    'write': F_SEAL_WRITE,
}
O_PATH = getattr(os, 'O_PATH', 0o10000000)

_libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)


def seal_names(seals):
    if seals is None:
        return None
    return sorted(n for n, bit in SEALS_BY_NAME.items() if seals & bit)


def _data_bytes(spec):
    """The bytes a spec asks to be written: 'data' (text), 'random' (count)
    or 'pattern' (count, deterministic)."""
    if 'data' in spec:
        return spec['data'].encode('utf-8')
    if 'random' in spec:
        return os.urandom(int(spec['random']))
    if 'pattern' in spec:
        n = int(spec['pattern'])
        seed = spec.get('seed', 'fdbroker').encode()
        out = bytearray()
        counter = 0
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, 'little')).digest()
            counter += 1
        return bytes(out[:n])
    return b''


def _open_mode(mode):
    return {'r': os.O_RDONLY, 'w': os.O_WRONLY, 'rw': os.O_RDWR}[mode]


def timerfd_create():
    # CLOCK_MONOTONIC = 1, TFD_CLOEXEC = O_CLOEXEC
    fd = _libc.timerfd_create(1, os.O_CLOEXEC)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


def signalfd_create():
    # sigset_t is 1024 bits in glibc; block nothing, just ask for SIGUSR1.
    sigset = ctypes.create_string_buffer(128)
    _libc.sigemptyset(sigset)
    _libc.sigaddset(sigset, 10)  # SIGUSR1
    fd = _libc.signalfd(-1, sigset, os.O_CLOEXEC)  # SFD_CLOEXEC = O_CLOEXEC
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


def dmabuf_create(size=4096, heap='/dev/dma_heap/system'):
    """A DMA-BUF from a DMA heap (struct dma_heap_allocation_data:
    u64 len, u32 fd, u32 fd_flags, u64 heap_flags)."""
    import struct
    hfd = os.open(heap, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(struct.pack('=QIIQ', size, 0, os.O_RDWR | os.O_CLOEXEC, 0))
        fcntl.ioctl(hfd, 0xC0184800, buf)  # DMA_HEAP_IOCTL_ALLOC
        return struct.unpack('=QIIQ', bytes(buf))[1]
    finally:
        os.close(hfd)


def sync_file_create(path='/sys/kernel/debug/sync/sw_sync'):
    """A sync_file from sw_sync (struct sw_sync_create_fence_data: u32
    value, char name[32], s32 fence). The timeline fd must stay open."""
    import struct
    tl = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    buf = bytearray(struct.pack('=I32si', 1, b'fdbtest', 0))
    try:
        fcntl.ioctl(tl, 0xC0285700, buf)  # SW_SYNC_IOC_CREATE_FENCE
    except OSError:
        os.close(tl)
        raise
    return struct.unpack('=I32si', bytes(buf))[2], tl


def make_fd(spec, scratch):
    """Create the fd a spec describes. Returns (fd, facts, keep) where facts
    says what was written (sha256, size) and keep lists other fds that must
    stay open as long as fd is in use (the other end of a pipe)."""
    t = spec['type']
    facts = {}
    keep = []
    data = _data_bytes(spec)
    if data:
        facts['sha256'] = hashlib.sha256(data).hexdigest()
        facts['length'] = len(data)

    if t == 'memfd':
        flags = os.MFD_CLOEXEC
        if spec.get('sealing', True):
            flags |= os.MFD_ALLOW_SEALING
        fd = os.memfd_create(spec.get('memfd_name', 'fdbtest'), flags)
        size = int(spec.get('size', len(data)))
        os.ftruncate(fd, max(size, len(data)))
        if data:
            os.pwrite(fd, data, 0)
        if spec.get('seals'):
            bits = 0
            for n in spec['seals']:
                bits |= SEALS_BY_NAME[n]
            fcntl.fcntl(fd, F_ADD_SEALS, bits)
        if spec.get('mode', 'rw') != 'rw':
            ro = os.open('/proc/self/fd/%d' % fd, _open_mode(spec['mode']) | os.O_CLOEXEC)
            os.close(fd)
            fd = ro
        return fd, facts, keep

    if t == 'file':
        path = spec['path']
        if not os.path.isabs(path):
            path = os.path.join(scratch, path)
        if 'data' in spec or 'random' in spec or 'pattern' in spec or spec.get('create', True):
            with open(path, 'wb') as f:
                f.write(data)
        flags = _open_mode(spec.get('mode', 'rw')) | os.O_CLOEXEC
        if spec.get('append'):
            flags |= os.O_APPEND
        fd = os.open(path, flags)
        if spec.get('seek'):
            os.lseek(fd, int(spec['seek']), os.SEEK_SET)
        return fd, facts, keep

    if t == 'dir':
        path = spec.get('path', scratch)
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), facts, keep

    if t == 'fifo':
        path = os.path.join(scratch, spec.get('path', 'fifo-%d-%d' % (os.getpid(), id(spec))))
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        # O_RDWR on a FIFO never blocks on Linux.
        return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC), facts, keep

    if t == 'pipe':
        r, w = os.pipe2(os.O_CLOEXEC)
        if data:
            os.write(w, data)
        if spec.get('end', 'read') == 'read':
            keep.append(w)
            return r, facts, keep
        keep.append(r)
        return w, facts, keep

    if t == 'socket':
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fa, fb = a.detach(), b.detach()
        keep.append(fb)
        return fa, facts, keep

    if t == 'devnull':
        return os.open('/dev/null', _open_mode(spec.get('mode', 'rw')) | os.O_CLOEXEC), facts, keep

    if t == 'device':
        return os.open(spec['path'], _open_mode(spec.get('mode', 'r')) | os.O_NONBLOCK | os.O_CLOEXEC), facts, keep

    if t == 'opath':
        path = spec.get('path', scratch)
        return os.open(path, O_PATH | os.O_CLOEXEC), facts, keep

    if t == 'eventfd':
        return os.eventfd(0, os.EFD_CLOEXEC), facts, keep

    if t == 'pidfd':
        return os.pidfd_open(os.getpid()), facts, keep

    if t == 'timerfd':
        return timerfd_create(), facts, keep

    if t == 'signalfd':
        return signalfd_create(), facts, keep

    if t == 'dmabuf':
        return dmabuf_create(int(spec.get('size', 4096))), facts, keep

    if t == 'sync-file':
        fd, timeline = sync_file_create()
        keep.append(timeline)
        return fd, facts, keep

    raise ValueError('unknown fd spec type %r' % t)


def _kind_of_mode(mode):
    if stat.S_ISREG(mode):
        return 'regular'
    if stat.S_ISDIR(mode):
        return 'directory'
    if stat.S_ISFIFO(mode):
        return 'fifo'
    if stat.S_ISSOCK(mode):
        return 'socket'
    if stat.S_ISCHR(mode):
        return 'char-device'
    if stat.S_ISBLK(mode):
        return 'block-device'
    return 'other'


def _errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__


def fd_facts(fd, read=True, max_read=64 << 20):
    """What a process holding fd can see and do, measured without changing
    the file: type, access mode, O_APPEND, offset, seals, content hashes via
    pread and via a read-only shared mapping, and whether a writable shared
    mapping can be made (it is unmapped again at once)."""
    f = {}
    st = os.fstat(fd)
    f['type'] = _kind_of_mode(st.st_mode)
    f['ino'] = st.st_ino
    f['dev'] = st.st_dev
    f['size'] = st.st_size
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    f['flags'] = fl
    f['accmode'] = {os.O_RDONLY: 'read-only', os.O_WRONLY: 'write-only',
                    os.O_RDWR: 'read-write'}.get(fl & os.O_ACCMODE, 'other')
    f['append'] = bool(fl & os.O_APPEND)
    f['o_path'] = bool(fl & O_PATH)
    f['nonblock'] = bool(fl & os.O_NONBLOCK)
    f['cloexec'] = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    try:
        f['offset'] = os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        f['offset'] = None
    try:
        f['seals'] = fcntl.fcntl(fd, F_GET_SEALS)
    except OSError:
        f['seals'] = None
    f['seal_names'] = seal_names(f['seals'])
    try:
        link = os.readlink('/proc/self/fd/%d' % fd)
    except OSError:
        link = None
    f['link'] = link
    f['memfd'] = bool(link and link.startswith('/memfd:'))

    if not read or f['type'] != 'regular' or f['o_path']:
        return f
    size = st.st_size
    if f['accmode'] in ('read-only', 'read-write') and size <= max_read:
        try:
            data = os.pread(fd, size, 0)
            f['read_sha256'] = hashlib.sha256(data).hexdigest()
            f['read_length'] = len(data)
            f['read_head'] = data[:64].decode('latin-1')
        except OSError as e:
            f['read_error'] = _errname(e)
    if size > 0 and size <= max_read:
        try:
            m = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            try:
                f['mmap_read_sha256'] = hashlib.sha256(m[:]).hexdigest()
            finally:
                m.close()
        except OSError as e:
            f['mmap_read_error'] = _errname(e)
    if size > 0:
        try:
            m = mmap.mmap(fd, min(size, 4096), flags=mmap.MAP_SHARED,
                          prot=mmap.PROT_READ | mmap.PROT_WRITE)
            m.close()
            f['mmap_write_shared'] = True
        except OSError as e:
            f['mmap_write_shared'] = False
            f['mmap_write_error'] = _errname(e)
    return f
