# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fds of the kinds the systemd tests keep across broker restarts, and
reading their bytes back without consuming them.

Pure Python (no GLib), shared by the fake-manager tests, the real systemd
test and the kill loop. Every function says whether it borrows or returns
(new, owned by the caller) fds.

Reading without consuming, per kind:
- memfd, regular file: pread from offset 0 (the shared offset is untouched);
- pipe: tee(2) into a private pipe, which duplicates the buffered bytes
  without taking them out of the pipe;
- stream socket: recv(MSG_PEEK).
"""

import ctypes
import fcntl
import hashlib
import os
import socket
import stat
import struct
import termios

_libc = ctypes.CDLL(None, use_errno=True)
_libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
_libc.tee.restype = ctypes.c_ssize_t
SPLICE_F_NONBLOCK = 0x02

# What the tests deposit is small enough for one pipe buffer (64 KiB) and
# one socket buffer, so a single tee or peek sees all of it.
PIPE_MAX = 16384


def pattern(n, seed):
    """n deterministic bytes derived from seed (str)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed.encode() + counter.to_bytes(8, 'little')).digest()
        counter += 1
    return bytes(out[:n])


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fionread(fd):
    """Bytes waiting in a pipe or socket (borrowed fd)."""
    return struct.unpack('i', fcntl.ioctl(fd, termios.FIONREAD, b'\0' * 4))[0]


def peek_pipe(fd, limit=PIPE_MAX):
    """The bytes buffered in the pipe fd (borrowed, a read end), left in it."""
    r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        n = _libc.tee(fd, w, limit, SPLICE_F_NONBLOCK)
        if n < 0:
            e = ctypes.get_errno()
            if e == 11:  # EAGAIN: empty
                return b''
            raise OSError(e, 'tee: ' + os.strerror(e))
        return os.read(r, n) if n else b''
    finally:
        os.close(r)
        os.close(w)


def peek_socket(fd, limit=PIPE_MAX):
    """The bytes waiting on the stream socket fd (borrowed), left in it."""
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.recv(limit, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b''
    finally:
        s.close()


def read_regular(fd):
    """All bytes of a regular file or memfd (borrowed), by pread from 0."""
    size = os.fstat(fd).st_size
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def kind_of(fd):
    """'regular' (memfds too), 'fifo', 'socket' or 'other' (borrowed fd)."""
    m = os.fstat(fd).st_mode
    if stat.S_ISREG(m):
        return 'regular'
    if stat.S_ISFIFO(m):
        return 'fifo'
    if stat.S_ISSOCK(m):
        return 'socket'
    return 'other'


def contents(fd):
    """The bytes behind fd (borrowed), read without consuming them."""
    k = kind_of(fd)
    if k == 'regular':
        return read_regular(fd)
    if k == 'fifo':
        return peek_pipe(fd)
    if k == 'socket':
        return peek_socket(fd)
    raise ValueError('cannot read an fd of kind %s' % k)


def identity(fd):
    """(st_dev, st_ino) of fd (borrowed): the same pipe or socket has the
    same pair in every process that holds it."""
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def make(kind, data, scratch=None):
    """A new fd of kind holding data. Returns (fd, keep): fd is the one to
    deposit; keep lists the other ends that the caller must hold open as long
    as the entry should stay unhung (a pipe's write end, a socket's peer).
    Both are owned by the caller.

    kinds: memfd (sealable), file (a regular file in scratch, already
    unlinked, so only the fd can reach its bytes), pipe, pipe-hup (the
    write end is closed: the pipe reports POLLHUP), socket, socket-hup (the
    peer is closed: the socket reports POLLHUP)."""
    if kind == 'memfd':
        fd = os.memfd_create('fdbroker-test', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.write(fd, data)
        return fd, []
    if kind == 'file':
        path = os.path.join(scratch, 'file-%d-%s' % (os.getpid(), sha256(data)[:12]))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.unlink(path)
        os.write(fd, data)
        return fd, []
    if kind in ('pipe', 'pipe-hup'):
        if len(data) > PIPE_MAX:
            raise ValueError('pipe data above %d bytes' % PIPE_MAX)
        r, w = os.pipe2(os.O_CLOEXEC)
        os.write(w, data)
        if kind == 'pipe-hup':
            os.close(w)
            return r, []
        return r, [w]
    if kind in ('socket', 'socket-hup'):
        if len(data) > PIPE_MAX:
            raise ValueError('socket data above %d bytes' % PIPE_MAX)
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        b.sendall(data)
        fa = a.detach()
        if kind == 'socket-hup':
            b.close()
            return fa, []
        return fa, [b.detach()]
    raise ValueError('unknown kind %r' % kind)
