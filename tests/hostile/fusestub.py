# SPDX-License-Identifier: LGPL-2.1-or-later
"""A FUSE file system that can stop answering open(), spoken over /dev/fuse
directly (no libfuse, no python binding: neither is in Debian's base).

One regular file, /file, readable and writable by everyone (allow_other).
While `hold_opens` is set, FUSE_OPEN requests are read and never answered:
an open() of the file, by anyone, waits as on a server that hangs; the
same for FUSE_GETATTR (fstat) with `hold_getattr`.
release() answers the held ones (with an error) so the openers return.
Needs root (mount(2) of type fuse) and /dev/fuse."""

import ctypes
import ctypes.util
import errno
import os
import struct
import threading

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR = 1, 2, 3
FUSE_OPEN, FUSE_READ, FUSE_WRITE, FUSE_STATFS, FUSE_RELEASE = 14, 15, 16, 17, 18
FUSE_FLUSH, FUSE_INIT, FUSE_INTERRUPT, FUSE_DESTROY, FUSE_BATCH_FORGET = 25, 26, 36, 38, 42
NO_REPLY = (FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT)

IN_HEADER = struct.Struct('=IIQQIIII')      # len opcode unique nodeid uid gid pid padding
OUT_HEADER = struct.Struct('=IiQ')          # len error unique
ATTR = struct.Struct('=QQQQQQIIIIIIIIII')   # ino size blocks a/m/ctime nsecs mode nlink uid gid rdev blksize flags

DATA = b'served by a FUSE stub\n'


def _attr(ino, mode, size):
    return ATTR.pack(ino, size, 1, 0, 0, 0, 0, 0, 0, mode, 1, 0, 0, 0, 4096, 0)


class FuseStub:
    def __init__(self, mountpoint):
        self.mountpoint = mountpoint
        self.hold_opens = False
        self.hold_getattr = False
        self.hold_flush = False
        self.held = []          # unique ids of unanswered FUSE_OPENs
        self.opens_seen = 0
        self.flushes_seen = 0
        self.lock = threading.Lock()
        self.fd = None
        self.thread = None

    def start(self):
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        self.fd = os.open('/dev/fuse', os.O_RDWR | os.O_CLOEXEC)
        opts = 'fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other' % self.fd
        MS_NOSUID, MS_NODEV = 2, 4
        if libc.mount(b'fdbstub', self.mountpoint.encode(), b'fuse', MS_NOSUID | MS_NODEV, opts.encode()) != 0:
            e = ctypes.get_errno()
            os.close(self.fd)
            self.fd = None
            raise OSError(e, 'mount fuse: ' + os.strerror(e))
        self.libc = libc
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def path(self):
        return os.path.join(self.mountpoint, 'file')

    def _reply(self, unique, error=0, payload=b''):
        with self.lock:  # the serving thread closes the device under it
            if self.fd is None:
                return
            try:
                os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) + payload)
            except OSError:
                pass  # the request was interrupted, or the mount is gone

    def _serve(self):
        """Answers requests until the kernel ends the connection, then
        closes the device: it owns the fd from start() on, so that no read
        or answer can land on a reused fd number after stop()."""
        try:
            self._serve_requests()
        finally:
            with self.lock:
                fd, self.fd = self.fd, None
            if fd is not None:
                os.close(fd)

    def _serve_requests(self):
        while True:
            fd = self.fd
            if fd is None:
                return
            try:
                buf = os.read(fd, 1 << 20)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.ENOENT, errno.EAGAIN):
                    continue
                return  # ENODEV: unmounted
            if len(buf) < IN_HEADER.size:
                continue
            _, op, unique, node, _, _, _, _ = IN_HEADER.unpack_from(buf)
            body = buf[IN_HEADER.size:]
            if op in NO_REPLY:
                continue
            if op == FUSE_INIT:
                major, minor = struct.unpack_from('=II', body)
                out = struct.pack('=IIIIHHIIHHII', 7, min(minor, 31), 0, 0, 16, 12, 1 << 16, 1, 0, 0, 0, 0)
                self._reply(unique, 0, out + b'\0' * 24)
            elif op == FUSE_LOOKUP:
                name = body.split(b'\0', 1)[0]
                if node == 1 and name == b'file':
                    out = struct.pack('=QQQQII', 2, 0, 0, 0, 0, 0) + _attr(2, 0o100666, len(DATA))
                    self._reply(unique, 0, out)
                else:
                    self._reply(unique, errno.ENOENT)
            elif op == FUSE_GETATTR:
                with self.lock:
                    if self.hold_getattr:
                        self.held.append(unique)
                        continue
                attr = _attr(1, 0o40755, 0) if node == 1 else _attr(2, 0o100666, len(DATA))
                self._reply(unique, 0, struct.pack('=QII', 0, 0, 0) + attr)
            elif op == FUSE_OPEN:
                with self.lock:
                    self.opens_seen += 1
                    if self.hold_opens:
                        self.held.append(unique)
                        continue
                self._reply(unique, 0, struct.pack('=QII', 1, 0, 0))
            elif op == FUSE_READ:
                _, off, size = struct.unpack_from('=QQI', body)
                self._reply(unique, 0, DATA[off:off + size])
            elif op == FUSE_STATFS:
                self._reply(unique, 0, struct.pack('=QQQQQIIII', 1, 1, 1, 1, 1, 4096, 255, 4096, 0) + b'\0' * 24)
            elif op == FUSE_FLUSH:
                with self.lock:
                    self.flushes_seen += 1
                    if self.hold_flush:
                        self.held.append(unique)
                        continue
                self._reply(unique, 0)
            elif op == FUSE_RELEASE:
                self._reply(unique, 0)
            elif op == FUSE_DESTROY:
                self._reply(unique, 0)
                return
            else:
                self._reply(unique, errno.ENOSYS)

    def held_count(self):
        with self.lock:
            return len(self.held)

    def release(self):
        """Answer every held open with EIO, and stop holding."""
        with self.lock:
            self.hold_opens = False
            self.hold_getattr = False
            self.hold_flush = False
            held, self.held = self.held, []
        for unique in held:
            self._reply(unique, errno.EIO)

    def stop(self):
        """Answers what is held and detaches the mount. The connection (and
        the serving thread, which then closes the device) ends when the last
        file open on it is closed: at once, or when the broker holding one
        stops."""
        self.release()
        if self.thread is not None and not getattr(self, 'detached', False):
            self.detached = True
            self.libc.umount2(self.mountpoint.encode(), 2)  # MNT_DETACH
