/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-common.c: what fdbrokerctl's two programs share (ctl-common.h). */
#include "ctl-common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"

static void vsay(const char *format, va_list ap) __attribute__((format(printf, 1, 0)));
static void vsay(const char *format, va_list ap) {
        fputs("fdbrokerctl: ", stderr);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
}

int fail(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsay(format, ap);
        va_end(ap);
        return EXIT_FAILURE;
}

void note(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsay(format, ap);
        va_end(ap);
}

int ctl_parse_seconds(const char *s, uint64_t *ret_usec) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > (double) (UINT64_MAX / 2000000))
                return -EINVAL;
        *ret_usec = (uint64_t) (v * 1e6 + 0.5);
        return 0;
}

const char *ctl_nonempty_env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

const char *ctl_bus_address(const char *arg_address, bool arg_system, bool arg_user) {
        if (!arg_address && !arg_system && !arg_user)
                return ctl_nonempty_env("FDBROKER_ADDRESS");
        return arg_address;
}

const char *ctl_socket_path(const char *arg_socket, const char *address, bool arg_user) {
        if (arg_socket)
                return arg_socket;
        if (ctl_nonempty_env("FDBROKER_SOCKET"))
                return ctl_nonempty_env("FDBROKER_SOCKET");
        if (!address && !arg_user)
                return FDB_DIRECT_SOCKET_PATH;
        return NULL;
}

void ctl_format_address(char *buf, size_t size, const char *path) {
        size_t n = (size_t) snprintf(buf, size, "unix:path=");

        for (; *path && n + 4 < size; path++) {
                unsigned char ch = (unsigned char) *path;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    strchr("-_/.\\*", ch))
                        buf[n++] = (char) ch;
                else
                        n += (size_t) snprintf(buf + n, size - n, "%%%02x", ch);
        }
        buf[n] = '\0';
}

int ctl_report_error(const char *name, const char *message, const char *what, const char *address) {
        const char *text = message ? message : name;

        if (strcmp(name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
            strcmp(name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0)
                return fail("fdbroker (%s) is not running on %s at %s and cannot be started: %s", FDB_BUS_NAME,
                            what, address, text);
        if (strcmp(name, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
            strcmp(name, "org.freedesktop.DBus.Error.UnknownInterface") == 0)
                return fail("the broker on %s does not know this call (an older fdbroker?): %s", what, text);
        return fail("%s", text);
}

int ctl_exec_with_fd(int fd, const char *fdname, char **command) {
        char pid[32], name[FDB_NAME_MAX + 1];
        int e;

        snprintf(name, sizeof name, "%s", fdname);
        for (char *p = name; *p; p++)
                if (*p == ':')
                        *p = '_';

        if (fd != 3) {
                if (dup2(fd, 3) < 0)
                        return fail("cannot make the fd of '%s' fd 3: %s", fdname, strerror(errno));
        } else if (fcntl(3, F_SETFD, 0) < 0)
                return fail("cannot pass the fd of '%s' on: %s", fdname, strerror(errno));

        snprintf(pid, sizeof pid, "%d", (int) getpid());
        if (setenv("LISTEN_FDS", "1", 1) < 0 || setenv("LISTEN_PID", pid, 1) < 0 ||
            setenv("LISTEN_FDNAMES", name, 1) < 0)
                return fail("cannot set the environment: %s", strerror(errno));

        execvp(command[0], command);
        e = errno;
        fail("cannot run '%s': %s", command[0], strerror(e));
        return e == ENOENT ? EXIT_EXEC_NOT_FOUND : EXIT_EXEC_FAILED;
}

void ctl_fill_std_fds(void) {
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                        int n = open("/dev/null", O_RDWR);
                        if (n > 2)
                                (void) close(n);
                }
}
