/* openpath.c: OpenPath's path checks and open. See openpath.h. */
#include "openpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Before a step of the walk (or the last open): the thread takes the
 * identity of the owner of what fd refers to, when it can. */
static int become_owner_of(int fd, openpath_become_fn become, void *userdata, struct stat *ret_st) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (ret_st)
                *ret_st = st;
        return become ? become(userdata, st.st_uid, st.st_gid) : 0;
}

/* Walks the absolute, normalised path from '/' one component at a time,
 * searching each directory as its owner: openat(O_PATH|O_NOFOLLOW), with
 * O_DIRECTORY but for the last component. A symlink anywhere is ELOOP.
 * Returns the O_PATH fd of the last component (owned by the caller; for "/"
 * the root itself) or negative errno. openat2's RESOLVE_NO_SYMLINKS would
 * resolve the whole path as one identity, and systemd's RestrictSUIDSGID=
 * makes it ENOSYS anyway (seccomp cannot look into struct open_how). */
static int walk_as_owners(const char *path, openpath_become_fn become, void *userdata) {
        _cleanup_close_ int dir = -1;
        const char *p, *slash;
        struct stat st;
        int fd, r;

        if (path[0] != '/')
                return -EINVAL;
        dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return -errno;
        for (p = path + 1;; p = slash + 1) {
                char comp[NAME_MAX + 1];
                bool last;
                size_t n;

                slash = strchr(p, '/');
                last = !slash;
                n = last ? strlen(p) : (size_t) (slash - p);
                if (n == 0) {
                        if (!last)
                                return -EINVAL;
                        return TAKE_FD(dir); /* "/" */
                }
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, n);
                comp[n] = '\0';

                r = become_owner_of(dir, become, userdata, NULL);
                if (r < 0)
                        return r;
                fd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
                if (fd < 0) {
                        r = -errno;
                        if (!last && fstatat(dir, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                                return -ELOOP;
                        return r;
                }
                if (last)
                        return fd;
                safe_close(dir);
                dir = fd;
        }
}

int openpath_open(const char *path, int accmode, bool nonblock, openpath_become_fn become, void *userdata,
                  int *ret_fd) {
        const int flags = accmode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        _cleanup_close_ int opath = -1, fd = -1;
        struct stat st, got;
        char proc[64];
        int fl, r;

        /* A FIFO would be opened (and would not block, thanks to O_NONBLOCK)
         * before we could see what it is; look first, through O_PATH. */
        opath = walk_as_owners(path, become, userdata);
        if (opath < 0)
                return opath;
        r = become_owner_of(opath, become, userdata, &st);
        if (r < 0)
                return r;
        if (S_ISLNK(st.st_mode))
                return -ELOOP; /* O_PATH|O_NOFOLLOW hands back the link itself */
        if (!type_ok(st.st_mode))
                return -EMEDIUMTYPE;

        /* The very inode the walk found, opened as its owner: no second
         * lookup of path that a rename could redirect. */
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", opath);
        fd = open(proc, flags);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &got) < 0)
                return -errno;
        if (got.st_dev != st.st_dev || got.st_ino != st.st_ino || !type_ok(got.st_mode))
                return -EMEDIUMTYPE; /* cannot happen: /proc/self/fd/N is opath's inode */
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
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "'%s' cannot be opened %s: OpenPath opens as the owner of the file, and "
                                         "searches each directory on the way as its owner; their owners' permission "
                                         "bits do not allow it.",
                                         path, fdinfo_accmode_to_string(accmode));
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
