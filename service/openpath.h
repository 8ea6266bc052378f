/* openpath.h: OpenPath's checks and its open.
 *
 * The handler (broker.c) parses, authorizes and hands the open to a worker
 * (worker.h): the path is the caller's, and what lies there (a file under a
 * lease, a FUSE mount that never answers) decides how long open() takes.
 * What an open-path rule or polkit's org.fdbroker.open-path grants is an
 * open AS THE OWNER of the file: each directory on the way is searched as
 * its owner, and the file is opened as its owner (fsuid/fsgid, no
 * supplementary groups, no effective capability), so the broker needs
 * CAP_SETUID/CAP_SETGID and no CAP_DAC_OVERRIDE. What the owner's
 * permission bits do not allow (a 0400 file for writing, a 0000 one) is
 * refused. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

/* Absolute, at most 4095 bytes, no '.', '..', '//' or trailing '/'. */
bool openpath_is_normalised_absolute(const char *path);

/* Makes the calling thread's file-system identity uid/gid (fsuid, fsgid),
 * with no supplementary groups and no effective capability; called before
 * each step of the walk and before the open. 0 or negative errno. The
 * caller of openpath_open() puts the thread's own identity back after. */
typedef int (*openpath_become_fn)(void *userdata, uid_t uid, gid_t gid);

/* Opens path: walked from '/' one component at a time (openat O_PATH,
 * O_NOFOLLOW), each directory searched as its owner through become; a
 * symlink anywhere is refused. The last component, looked at through its
 * O_PATH fd (regular files and devices only), is reopened through
 * /proc/self/fd as its owner: the very inode the walk found. Non-blocking
 * (O_NONBLOCK is cleared after unless nonblock). become NULL: every step as
 * the thread is (a broker without CAP_SETUID/CAP_SETGID, on a user bus).
 * May block in a file system that does not answer: call it on a worker.
 * Returns a new O_CLOEXEC fd owned by the caller in *ret_fd, or negative
 * errno: -ELOOP for a symlink, -EMEDIUMTYPE for a file of the wrong type,
 * -EACCES where an owner's permission bits refuse, -EWOULDBLOCK for a lease
 * being broken. */
int openpath_open(const char *path, int accmode, bool nonblock, openpath_become_fn become, void *userdata,
                  int *ret_fd);

/* Turns openpath_open()'s failure r into one of SPEC §1's errors naming
 * path. Returns the negative value sd-bus handlers return. */
int openpath_set_error(sd_bus_error *error, const char *path, int accmode, int r);
