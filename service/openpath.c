/* openpath.c: OpenPath's path checks and open. See openpath.h. */
#include "openpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "cleanup.h"
#include "fdinfo.h"
#include "protocol.h"

bool openpath_is_normalised_absolute(const char *path) {
        if (path[0] != '/' || strlen(path) > 4095)
                return false;
        if (path[1] == '\0')
                return true;
        for (const char *p = path; *p;) {
                size_t n;
                p++; /* skip '/' */
                n = strcspn(p, "/");
                if (n == 0)
                        return false; /* "//" or a trailing '/' */
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
        }
        return true;
}

static bool type_ok(mode_t mode) {
        return S_ISREG(mode) || S_ISCHR(mode) || S_ISBLK(mode);
}

/* openat2(path, flags, RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) for an
 * absolute, normalised path. Where openat2 answers ENOSYS -- systemd's
 * RestrictSUIDSGID= (fdbroker.service) returns that because seccomp cannot
 * look into struct open_how, and kernels before 5.6 lack it -- the same walk
 * by hand: openat(O_PATH|O_DIRECTORY|O_NOFOLLOW) per directory, O_NOFOLLOW
 * on the last component; a symlink anywhere is ELOOP, as with openat2.
 * Returns the fd (owned by the caller) or negative errno. */
static int open_no_symlinks(const char *path, int flags) {
        struct open_how how = {
                .flags = (uint64_t) flags,
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int dir = -1;
        const char *p, *slash;
        struct stat st;
        int fd;

        fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS)
                return -errno;
        if (path[0] != '/')
                return -EINVAL;
        dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return -errno;
        for (p = path + 1; (slash = strchr(p, '/')); p = slash + 1) {
                char comp[NAME_MAX + 1];
                size_t n = (size_t) (slash - p);
                int next;

                if (n == 0 || n > NAME_MAX)
                        return n == 0 ? -EINVAL : -ENAMETOOLONG;
                memcpy(comp, p, n);
                comp[n] = '\0';
                next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0) {
                        int r = -errno;
                        if (fstatat(dir, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                                return -ELOOP;
                        return r;
                }
                safe_close(dir);
                dir = next;
        }
        fd = openat(dir, p, flags | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

int openpath_open(const char *path, int accmode, bool nonblock, int *ret_fd) {
        const int flags = accmode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int fl;

        /* A FIFO would be opened (and would not block, thanks to O_NONBLOCK)
         * before we could see what it is; look first, through O_PATH. */
        fd = open_no_symlinks(path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP; /* O_PATH|O_NOFOLLOW hands back the link itself */
        if (!type_ok(st.st_mode))
                return -EMEDIUMTYPE;
        fd = safe_close(fd);

        fd = open_no_symlinks(path, flags);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!type_ok(st.st_mode))
                return -EMEDIUMTYPE; /* swapped between the two opens */
        if (!nonblock) {
                fl = fcntl(fd, F_GETFL);
                if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                        return -errno;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int openpath_set_error(sd_bus_error *error, const char *path, int accmode, int r) {
        switch (r) {
        case -ELOOP:
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' is or passes through a symbolic link, which OpenPath never follows.",
                                         path);
        case -EMEDIUMTYPE:
                return sd_bus_error_setf(error, FDB_ERROR_NAME_NOT_SUPPORTED,
                                         "'%s' is not a regular file or a device; OpenPath opens only those.", path);
        case -ENOENT:
        case -ENOTDIR:
                return sd_bus_error_setf(error, FDB_ERROR_NAME_NOT_FOUND, "'%s' does not exist.", path);
        case -EWOULDBLOCK:
                return sd_bus_error_setf(error, FDB_ERROR_NAME_BUSY,
                                         "'%s' did not open: a lease on it is being broken; try again later.", path);
        case -EACCES:
        case -EPERM:
        case -EROFS:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "'%s' cannot be opened %s: %s.", path,
                                         fdinfo_accmode_to_string(accmode), strerror(-r));
        case -EMFILE:
        case -ENFILE:
                return sd_bus_error_setf(error, FDB_ERROR_NAME_QUOTA_EXCEEDED,
                                         "Cannot open '%s': the broker is out of file descriptors.", path);
        default:
                return sd_bus_error_setf(error, FDB_ERROR_NAME_NOT_SUPPORTED, "Could not open '%s': %s.", path,
                                         strerror(-r));
        }
}
