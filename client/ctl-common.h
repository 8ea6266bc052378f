/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-common.h: what fdbrokerctl's two programs share, libc only.
 *
 * fdbrokerctl (ctl-fast.c, linked against libc alone) runs `retrieve` over
 * the direct socket itself and execs fdbrokerctl-full (fdbrokerctl.c, on
 * sd-bus) for everything else. A user must not be able to tell which of
 * them ran, so what both say and do is written once, here: the messages
 * and exit codes, the choice of direct socket, the address named in
 * messages, the words for a failed call, and handing the fd to COMMAND.
 * Nothing here may need libsystemd. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* COMMAND could not be found / run (as the shell says). */
#define EXIT_EXEC_NOT_FOUND 127
#define EXIT_EXEC_FAILED 126

/* sd-bus's own default; calls that wait get their wait on top of it. */
#define CALL_TIMEOUT_USEC (25ULL * 1000000ULL)

/* What messages call the direct socket (SPEC §5). */
#define CTL_DIRECT_WHAT "the broker's direct socket"

/* "fdbrokerctl: MESSAGE" on stderr; fail() returns EXIT_FAILURE. */
int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
void note(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Seconds, as a decimal number ("2", "0.5"), to microseconds; -EINVAL
 * (nothing said) for anything else, negative, or out of range. */
int ctl_parse_seconds(const char *s, uint64_t *ret_usec);

/* $name, or NULL when unset or empty. */
const char *ctl_nonempty_env(const char *name);

/* The bus address to use: --address, else (with none of --system, --user
 * either) $FDBROKER_ADDRESS; NULL for the default bus. */
const char *ctl_bus_address(const char *arg_address, bool arg_system, bool arg_user);

/* The direct socket to try first: --socket, else $FDBROKER_SOCKET, else
 * the system broker's (unless a bus address, from ctl_bus_address(), or
 * --user says otherwise); NULL: the bus only. */
const char *ctl_socket_path(const char *arg_socket, const char *address, bool arg_user);

/* "unix:path=PATH" with D-Bus address escaping (everything but
 * [-_/.\*a-zA-Z0-9] as %XX), truncated to size. */
void ctl_format_address(char *buf, size_t size, const char *path);

/* Says why a call failed, from its D-Bus error name and message (NULL:
 * the name is said), on what (CTL_DIRECT_WHAT, "the system bus"...) at
 * address. Returns EXIT_FAILURE. */
int ctl_report_error(const char *name, const char *message, const char *what, const char *address);

/* Makes fd (borrowed; keep it O_CLOEXEC) fd 3 of COMMAND and becomes
 * COMMAND, the way systemd passes sockets: LISTEN_FDS=1, LISTEN_PID=our
 * pid (execvp keeps it) and LISTEN_FDNAMES=fdname, with ':' (the separator
 * of names there) as '_'. Returns only on failure, with the exit status:
 * EXIT_EXEC_NOT_FOUND, EXIT_EXEC_FAILED or EXIT_FAILURE. */
int ctl_exec_with_fd(int fd, const char *fdname, char **command);

/* Fds 0-2 that are closed get /dev/null, so that nothing opened later
 * lands there: writing "stdout" into a bus socket would be a protocol
 * error. */
void ctl_fill_std_fds(void);
