/* fdinfo.c: fd classification, reopening and sealing. See fdinfo.h. */
#include "fdinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

static const char *const kind_names[_FD_KIND_MAX] = {
        [FD_KIND_MEMFD] = "memfd",
        [FD_KIND_REGULAR] = "regular",
        [FD_KIND_DIRECTORY] = "directory",
        [FD_KIND_FIFO] = "fifo",
        [FD_KIND_SOCKET] = "socket",
        [FD_KIND_CHAR_DEVICE] = "char-device",
        [FD_KIND_BLOCK_DEVICE] = "block-device",
        [FD_KIND_EVENTFD] = "eventfd",
        [FD_KIND_TIMERFD] = "timerfd",
        [FD_KIND_SIGNALFD] = "signalfd",
        [FD_KIND_PIDFD] = "pidfd",
        [FD_KIND_DMABUF] = "dmabuf",
        [FD_KIND_SYNC_FILE] = "sync-file",
        [FD_KIND_OTHER] = "other",
};

const char *fdkind_to_string(FdKind k) {
        return k >= 0 && k < _FD_KIND_MAX ? kind_names[k] : "other";
}

static int fd_link(int fd, char *buf, size_t size) {
        char path[64];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

static bool startswith(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

int fdinfo_classify(int fd, FdKind *ret) {
        struct stat st;
        char link[4096];
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        r = fd_link(fd, link, sizeof link);
        if (r < 0)
                return r;

        /* Anonymous inodes and special file systems name themselves in the
         * link target; the file type bits say nothing useful about them. */
        static const struct {
                const char *link;
                FdKind kind;
        } by_link[] = {
                { "anon_inode:[eventfd]", FD_KIND_EVENTFD },
                { "anon_inode:[timerfd]", FD_KIND_TIMERFD },
                { "anon_inode:[signalfd]", FD_KIND_SIGNALFD },
                { "anon_inode:[pidfd]", FD_KIND_PIDFD },
                { "pidfd:", FD_KIND_PIDFD },
                { "anon_inode:sync_file", FD_KIND_SYNC_FILE },
                { "/dmabuf:", FD_KIND_DMABUF },
                { "anon_inode:dmabuf", FD_KIND_DMABUF },
        };
        for (size_t i = 0; i < ELEMENTSOF(by_link); i++)
                if (startswith(link, by_link[i].link)) {
                        *ret = by_link[i].kind;
                        return 0;
                }

        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                *ret = startswith(link, "/memfd:") ? FD_KIND_MEMFD : FD_KIND_REGULAR;
                break;
        case S_IFDIR:
                *ret = FD_KIND_DIRECTORY;
                break;
        case S_IFIFO:
                *ret = FD_KIND_FIFO;
                break;
        case S_IFSOCK:
                *ret = FD_KIND_SOCKET;
                break;
        case S_IFCHR:
                *ret = FD_KIND_CHAR_DEVICE;
                break;
        case S_IFBLK:
                *ret = FD_KIND_BLOCK_DEVICE;
                break;
        default:
                *ret = FD_KIND_OTHER;
        }
        return 0;
}

int fdinfo_get_flags(int fd, int *ret_flags) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        *ret_flags = fl;
        return 0;
}

const char *fdinfo_accmode_to_string(int accmode) {
        switch (accmode & O_ACCMODE) {
        case O_RDONLY:
                return "read-only";
        case O_WRONLY:
                return "write-only";
        default:
                return "read-write";
        }
}

bool fdkind_can_reopen(FdKind k) {
        return k == FD_KIND_MEMFD || k == FD_KIND_REGULAR || k == FD_KIND_DIRECTORY || k == FD_KIND_FIFO ||
               k == FD_KIND_CHAR_DEVICE || k == FD_KIND_BLOCK_DEVICE;
}

int fdinfo_reopen(int fd, FdKind kind, int accmode, int *ret_fd) {
        char path[64];
        int fl, r, flags, nfd;

        if (!fdkind_can_reopen(kind))
                return -EOPNOTSUPP;
        r = fdinfo_get_flags(fd, &fl);
        if (r < 0)
                return r;

        flags = (accmode & O_ACCMODE) | O_CLOEXEC | O_NOCTTY | (fl & (O_APPEND | O_NONBLOCK));
        if (kind == FD_KIND_DIRECTORY)
                flags |= O_DIRECTORY;
        if (kind == FD_KIND_FIFO)
                flags |= O_NONBLOCK; /* a FIFO open would wait for the other end */

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        nfd = open(path, flags);
        if (nfd < 0)
                return errno == ENXIO ? -EOPNOTSUPP : -errno;

        if (kind == FD_KIND_FIFO && !(fl & O_NONBLOCK) && fcntl(nfd, F_SETFL, flags & ~O_NONBLOCK & ~O_ACCMODE) < 0) {
                r = -errno;
                safe_close(nfd);
                return r;
        }

        *ret_fd = nfd;
        return 0;
}

#define FULL_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int fdinfo_seal(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? -EOPNOTSUPP : -errno;
        if ((seals & (FULL_SEALS | F_SEAL_SEAL)) == (FULL_SEALS | F_SEAL_SEAL))
                return 0;
        if (seals & F_SEAL_SEAL)
                return -EOPNOTSUPP;
        if (fcntl(fd, F_ADD_SEALS, FULL_SEALS | F_SEAL_SEAL) < 0)
                return errno == EBUSY ? -EBUSY : errno == EPERM ? -EOPNOTSUPP : -errno;
        return 0;
}

bool fdinfo_is_sealed(int fd) {
        int seals = fcntl(fd, F_GET_SEALS);
        return seals >= 0 && (seals & FULL_SEALS) == FULL_SEALS;
}

int fdinfo_get_size(int fd, uint64_t *ret) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (uint64_t) st.st_size;
        return 0;
}

bool fdkind_has_size(FdKind k) {
        return k == FD_KIND_MEMFD || k == FD_KIND_REGULAR;
}
