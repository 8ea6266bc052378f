/* fdinfo.h: what an fd is and what it may do.
 *
 * Classifies an fd into the kinds of SPEC §1, reads its access mode, makes
 * narrowed reopenings through /proc/self/fd, and seals memfds. Every function
 * here borrows the fd it is given; an fd it returns is new, O_CLOEXEC, and
 * belongs to the caller. Nothing here touches the bus. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum FdKind {
        FD_KIND_MEMFD,
        FD_KIND_REGULAR,
        FD_KIND_DIRECTORY,
        FD_KIND_FIFO,
        FD_KIND_SOCKET,
        FD_KIND_CHAR_DEVICE,
        FD_KIND_BLOCK_DEVICE,
        FD_KIND_EVENTFD,
        FD_KIND_TIMERFD,
        FD_KIND_SIGNALFD,
        FD_KIND_PIDFD,
        FD_KIND_DMABUF,
        FD_KIND_SYNC_FILE,
        FD_KIND_OTHER,
        _FD_KIND_MAX,
} FdKind;

const char *fdkind_to_string(FdKind k);

/* Classifies fd (borrowed) from cached attributes (statx
 * AT_STATX_DONT_SYNC: never waits for a FUSE or NFS server) and the
 * /proc/self/fd link. */
int fdinfo_classify(int fd, FdKind *ret);

/* The fd's F_GETFL flags (borrowed fd). */
int fdinfo_get_flags(int fd, int *ret_flags);

const char *fdinfo_accmode_to_string(int accmode);

/* True when a kind's fds can be reopened through /proc/self/fd. */
bool fdkind_can_reopen(FdKind k);

/* -EXDEV (and *ret_fs, a static name) when fd (borrowed) lives on a
 * pseudo file system whose open() checks the opener rather than the inode
 * (proc, sysfs, debugfs, tracefs, securityfs, cgroup, bpf, configfs,
 * efivarfs, pstore, selinuxfs, smackfs, ...): nothing there may be
 * reopened on a caller's behalf. 0 otherwise. fstatfs() may wait for a
 * FUSE or NFS server: call it off the event loop (worker.h). */
int fdinfo_check_reopen_fs(int fd, const char **ret_fs);

/* The name fdinfo_check_reopen_fs() gives, for messages. */
const char *fdinfo_reopen_fs_name(int fd);

/* Opens a new file description for the file behind fd (borrowed), with
 * access mode accmode (O_RDONLY, O_WRONLY or O_RDWR), keeping O_APPEND and
 * O_NONBLOCK as fd has them. The caller checks that accmode does not widen
 * fd's own mode. Returns -EOPNOTSUPP for kinds that cannot be reopened,
 * -EXDEV on a pseudo file system (fdinfo_check_reopen_fs()), -EWOULDBLOCK
 * when a lease is being broken (the open is non-blocking). The open runs
 * with the calling thread's credentials and may block on a file system that
 * does not answer: call it on a worker (worker.h), never on the loop. On
 * success *ret_fd is a new O_CLOEXEC fd owned by the caller. */
int fdinfo_reopen(int fd, FdKind kind, int accmode, int *ret_fd);

/* Seals a memfd (borrowed) with SHRINK|GROW|WRITE|SEAL. -EOPNOTSUPP when it
 * cannot be sealed (not a memfd, or MFD_ALLOW_SEALING missing), -EBUSY when
 * writable shared mappings exist. Already fully sealed is success. */
int fdinfo_seal(int fd);

/* True when the memfd carries at least SHRINK|GROW|WRITE. */
bool fdinfo_is_sealed(int fd);

/* st_size of fd (borrowed). */
int fdinfo_get_size(int fd, uint64_t *ret);

/* True for kinds whose info reports a size. */
bool fdkind_has_size(FdKind k);
