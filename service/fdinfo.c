/* fdinfo.c: fd classification, reopening and sealing. See fdinfo.h. */
#include "fdinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

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

/* fstat() that never waits for a file system: FUSE and NFS serve
 * AT_STATX_DONT_SYNC from the attributes they cached, where a plain fstat()
 * may ask a server that never answers. The type never changes, and a size
 * as the kernel last knew it is what info promises. */
static int stat_cached(int fd, struct statx *ret) {
        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_SIZE, ret) < 0)
                return -errno;
        return 0;
}

static bool startswith(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

int fdinfo_classify(int fd, FdKind *ret) {
        struct statx st;
        char link[4096];
        int r;

        r = stat_cached(fd, &st);
        if (r < 0)
                return r;
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

        switch (st.stx_mode & S_IFMT) {
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

/* File systems whose open() decides by who opens, not only by the inode's
 * mode bits: /proc/PID/mem and friends check ptrace access of the opener,
 * /proc/kallsyms and sysfs attributes show or hide by the opener's
 * capabilities. A reopening there would be made with the broker's
 * authority, whatever credentials the thread carries for DAC. */
static const struct {
        unsigned long magic;
        const char *name;
} opener_checking_fs[] = {
        { PROC_SUPER_MAGIC, "proc" },
        { SYSFS_MAGIC, "sysfs" },
        { DEBUGFS_MAGIC, "debugfs" },
        { TRACEFS_MAGIC, "tracefs" },
        { SECURITYFS_MAGIC, "securityfs" },
        { CGROUP_SUPER_MAGIC, "cgroup" },
        { CGROUP2_SUPER_MAGIC, "cgroup2" },
        { BPF_FS_MAGIC, "bpf" },
        { 0x62656570UL, "configfs" },
        { EFIVARFS_MAGIC, "efivarfs" },
        { PSTOREFS_MAGIC, "pstore" },
        { SELINUX_MAGIC, "selinuxfs" },
        { SMACK_MAGIC, "smackfs" },
        { BINFMTFS_MAGIC, "binfmt_misc" },
        { 0x65735543UL, "fusectl" },
        { NSFS_MAGIC, "nsfs" },
};

int fdinfo_check_reopen_fs(int fd, const char **ret_fs) {
        struct statfs sfs;

        if (fstatfs(fd, &sfs) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(opener_checking_fs); i++)
                if ((unsigned long) sfs.f_type == opener_checking_fs[i].magic) {
                        if (ret_fs)
                                *ret_fs = opener_checking_fs[i].name;
                        return -EXDEV;
                }
        return 0;
}

const char *fdinfo_reopen_fs_name(int fd) {
        const char *name = "a pseudo file system";
        (void) fdinfo_check_reopen_fs(fd, &name);
        return name;
}

int fdinfo_reopen(int fd, FdKind kind, int accmode, int *ret_fd) {
        char path[64];
        int fl, r, flags, nfd;

        if (!fdkind_can_reopen(kind))
                return -EOPNOTSUPP;
        r = fdinfo_get_flags(fd, &fl);
        if (r < 0)
                return r;
        r = fdinfo_check_reopen_fs(fd, NULL);
        if (r < 0)
                return r;

        /* O_NONBLOCK always: a FIFO would wait for its other end, and a file
         * under a lease would wait for the lease break (EWOULDBLOCK instead).
         * It is cleared below unless fd had it. */
        flags = (accmode & O_ACCMODE) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (fl & O_APPEND);
        if (kind == FD_KIND_DIRECTORY)
                flags |= O_DIRECTORY;

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        nfd = open(path, flags);
        if (nfd < 0)
                return errno == ENXIO ? -EOPNOTSUPP : -errno;

        if (!(fl & O_NONBLOCK) && fcntl(nfd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
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
        struct statx st;
        int r = stat_cached(fd, &st);
        if (r < 0)
                return r;
        *ret = (uint64_t) st.stx_size;
        return 0;
}

bool fdkind_has_size(FdKind k) {
        return k == FD_KIND_MEMFD || k == FD_KIND_REGULAR;
}
