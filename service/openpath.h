/* openpath.h: OpenPath's checks and its open.
 *
 * The handler (broker.c) parses, authorizes and hands the open to a worker
 * (worker.h): the path is the caller's, and what lies there (a file under a
 * lease, a FUSE mount that never answers) decides how long open() takes.
 * The open itself runs with the broker's authority: that is what an
 * open-path rule or polkit's org.fdbroker.open-path grants. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

/* Absolute, at most 4095 bytes, no '.', '..', '//' or trailing '/'. */
bool openpath_is_normalised_absolute(const char *path);

/* Opens path: no symlink on the way, regular files and devices only, and
 * non-blocking (O_NONBLOCK is cleared after unless nonblock). May block in
 * a file system that does not answer: call it on a worker. Returns a new
 * O_CLOEXEC fd owned by the caller in *ret_fd, or negative errno: -ELOOP
 * for a symlink, -EMEDIUMTYPE for a file of the wrong type, -EWOULDBLOCK
 * for a lease being broken. */
int openpath_open(const char *path, int accmode, bool nonblock, int *ret_fd);

/* Turns openpath_open()'s failure r into one of SPEC §1's errors naming
 * path. Returns the negative value sd-bus handlers return. */
int openpath_set_error(sd_bus_error *error, const char *path, int accmode, int r);
