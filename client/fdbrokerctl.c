/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdbrokerctl.c: the command-line tool of fdbroker (SPEC §4), on sd-bus.
 *
 * Installed as $libexecdir/fdbrokerctl-full: users run the libc-only front
 * (ctl-fast.c), which does `retrieve` over the direct socket itself and
 * execs this program, with the same argv, for everything else.
 *
 * Built on libsystemd's sd-bus, not on libfdbroker-client: a shell script
 * that runs `fdbrokerctl retrieve NAME -- COMMAND` in a loop pays for every
 * library the process loads, and GLib alone costs more than a whole
 * s6-fdholder-retrieve (bench/README.md). So this file talks D-Bus itself,
 * the way systemd's own *ctl tools do: one static table of verbs, one of
 * options, one connection, synchronous calls.
 *
 * Connection (SPEC §5): the direct socket when it exists and accepts us
 * (--socket, $FDBROKER_SOCKET, or /run/fdbroker/socket for the system
 * broker), otherwise the bus (--system, --user, --address, or
 * $FDBROKER_ADDRESS when none of them is given). retrieve and open are one
 * connect, one call and one exec: no introspection, no match, and on the
 * direct socket not even a Hello.
 *
 * Exit status: 0, or 1 with "fdbrokerctl: MESSAGE" on stderr; retrieve and
 * open become COMMAND (execvp), so their status is COMMAND's (127 when it
 * cannot be found, 126 when it cannot be run). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "config.h"
#include "ctl-common.h"
#include "protocol.h"
#include "size.h"

#define DEFAULT_SYSTEM_BUS_ADDRESS "unix:path=/run/dbus/system_bus_socket"

/* sd-bus.h and sd-event.h define the *_unrefp helpers for _cleanup_. */
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

/* ---- messages ----------------------------------------------------------- */

/* No setlocale(): it was an eighth of the instructions of a whole
 * `retrieve NAME -- true` (callgrind), and our messages are English
 * anyway; strerror() stays English with them, and list's sizes keep a
 * '.' whatever the locale. fail() and note() are ctl-common.c's, shared
 * with the front. */

/* ---- options ------------------------------------------------------------ */

enum {
        OPT_SYSTEM,
        OPT_USER,
        OPT_ADDRESS,
        OPT_SOCKET,
        OPT_HELP,
        OPT_VERSION,
        OPT_FD,
        OPT_FROM_PID,
        OPT_ALLOW,
        OPT_READ_ONLY,
        OPT_SEAL,
        OPT_PERSISTENT,
        OPT_ONCE,
        OPT_TIMEOUT,
        OPT_DESCRIPTION,
        OPT_REPLACE,
        OPT_REOPEN,
        OPT_WAIT,
        OPT_JSON,
        OPT_ACCESS,
        _OPT_MAX,
};

#define BIT(o) (1u << (o))
#define GLOBAL_OPTS (BIT(OPT_SYSTEM) | BIT(OPT_USER) | BIT(OPT_ADDRESS) | BIT(OPT_SOCKET) | BIT(OPT_HELP) | BIT(OPT_VERSION))
#define DEPOSIT_OPTS                                                                                            \
        (BIT(OPT_ALLOW) | BIT(OPT_READ_ONLY) | BIT(OPT_SEAL) | BIT(OPT_PERSISTENT) | BIT(OPT_ONCE) |          \
         BIT(OPT_TIMEOUT) | BIT(OPT_DESCRIPTION) | BIT(OPT_REPLACE))

typedef struct {
        const char *name; /* without the leading "--" */
        const char *value; /* the value's name, or NULL for a flag */
        const char *help;
} Option;

static const Option options[_OPT_MAX] = {
        [OPT_SYSTEM] = { "system", NULL, "the broker of the system (the default)" },
        [OPT_USER] = { "user", NULL, "the broker on your user session bus" },
        [OPT_ADDRESS] = { "address", "ADDRESS", "the broker on the bus at ADDRESS" },
        [OPT_SOCKET] = { "socket", "PATH", "the broker's direct socket at PATH (falls back to the bus)" },
        [OPT_HELP] = { "help", NULL, "show this help" },
        [OPT_VERSION] = { "version", NULL, "show the version" },
        [OPT_FD] = { "fd", "N", "deposit the open fd N instead of FILE (with --from-pid: PID's fd N)" },
        [OPT_FROM_PID] = { "from-pid", "PID", "deposit a copy of fd N of process PID (pidfd_getfd)" },
        [OPT_ALLOW] = { "allow", "SUBJECT",
                        "let SUBJECT retrieve it too: user:NAME, uid:N, group:NAME, gid:N, label:CONTEXT or "
                        "everyone (repeatable)" },
        [OPT_READ_ONLY] = { "read-only", NULL, "a read-only reopening: kept (deposit) or handed back (retrieve)" },
        [OPT_SEAL] = { "seal", NULL, "seal the memfd so that its bytes never change" },
        [OPT_PERSISTENT] = { "persistent", NULL, "keep the entry after fdbrokerctl exits, until removed or expired" },
        [OPT_ONCE] = { "once", NULL, "remove the entry after its first retrieval" },
        [OPT_TIMEOUT] = { "timeout", "SEC", "remove the entry SEC seconds from now" },
        [OPT_DESCRIPTION] = { "description", "TEXT", "describe the entry (shown by list)" },
        [OPT_REPLACE] = { "replace", NULL, "replace an entry of the same name that you own" },
        [OPT_REOPEN] = { "reopen", NULL, "a new open file description (its own offset)" },
        [OPT_WAIT] = { "wait", "SEC", "wait up to SEC seconds (at most 300) for NAME to be deposited" },
        [OPT_JSON] = { "json", NULL, "JSON output" },
        [OPT_ACCESS] = { "access", "MODE", "read-only (the default), write-only or read-write" },
};

/* Parsed command line. */
static bool arg_system, arg_user;
static const char *arg_address;
static const char *arg_socket;
static char **arg_allow;
static size_t n_allow;
static bool arg_read_only, arg_seal, arg_persistent, arg_once, arg_replace, arg_reopen, arg_json;
static const char *arg_timeout, *arg_description, *arg_wait, *arg_access, *arg_fd, *arg_from_pid;

/* ---- parsing values ----------------------------------------------------- */

/* Seconds, as a decimal number ("2", "0.5"), to microseconds. */
static int parse_seconds(const char *option, const char *s, uint64_t *ret_usec) {
        if (ctl_parse_seconds(s, ret_usec) < 0)
                return fail("%s takes a number of seconds, not '%s'.", option, s), -EINVAL;
        return 0;
}

static int parse_int(const char *s, int min, int *ret) {
        char *end = NULL;
        long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < min || v > INT_MAX)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

/* ---- connecting --------------------------------------------------------- */

typedef struct {
        sd_bus *bus;
        bool direct;
        const char *destination; /* NULL on a direct connection */
        char what[64];           /* "the system bus", for messages */
        char address[PATH_MAX + 64];
        char *broker;            /* the broker's unique name, from its first reply */
} Conn;

static void conn_done(Conn *c) {
        if (c->bus)
                c->bus = sd_bus_flush_close_unref(c->bus);
        free(c->broker);
        c->broker = NULL;
}

/* A peer-to-peer connection to the broker's direct socket (no bus daemon,
 * no Hello). Returns 0, or a negative errno when the socket is not usable
 * and the caller falls back to the bus. */
static int connect_direct(Conn *c, const char *path) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_id128_t id;
        int r;

        ctl_format_address(c->address, sizeof c->address, path);
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, c->address);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        /* Finishes the authentication, so that a socket that accepts and
         * then refuses us still leaves time to use the bus. */
        r = sd_bus_get_bus_id(bus, &id);
        if (r < 0)
                return r;
        c->bus = TAKE_PTR(bus);
        c->direct = true;
        c->destination = NULL;
        snprintf(c->what, sizeof c->what, CTL_DIRECT_WHAT);
        return 0;
}

/* --user without an address: $DBUS_SESSION_BUS_ADDRESS, or
 * $XDG_RUNTIME_DIR/bus when it exists. Fills c->what and c->address;
 * non-zero after saying why there is none. */
static int choose_user_bus(Conn *c) {
        const char *runtime = ctl_nonempty_env("XDG_RUNTIME_DIR"), *session;
        char path[PATH_MAX];

        snprintf(c->what, sizeof c->what, "your user session bus");
        session = ctl_nonempty_env("DBUS_SESSION_BUS_ADDRESS");
        if (session) {
                snprintf(c->address, sizeof c->address, "%s", session);
                return 0;
        }
        if (!runtime)
                return fail("there is no user session bus: $DBUS_SESSION_BUS_ADDRESS and "
                            "$XDG_RUNTIME_DIR are not set (not logged in?). Use --system or "
                            "--address.");
        snprintf(path, sizeof path, "%s/bus", runtime);
        if (access(path, F_OK) < 0)
                return fail("there is no user session bus: $DBUS_SESSION_BUS_ADDRESS is not set "
                            "and %s does not exist. Use --system or --address.",
                            path);
        ctl_format_address(c->address, sizeof c->address, path);
        return 0;
}

/* Which bus, in c->what and c->address: the given address, the user's or
 * the system's. Non-zero after saying why there is none. */
static int choose_bus(Conn *c, const char *address) {
        if (address) {
                snprintf(c->what, sizeof c->what, "the bus");
                snprintf(c->address, sizeof c->address, "%s", address);
                return 0;
        }
        if (arg_user)
                return choose_user_bus(c);
        snprintf(c->what, sizeof c->what, "the system bus");
        snprintf(c->address, sizeof c->address, "%s",
                 ctl_nonempty_env("DBUS_SYSTEM_BUS_ADDRESS") ?: DEFAULT_SYSTEM_BUS_ADDRESS);
        return 0;
}

/* Connects to the bus at c->address. Non-zero after saying why not, with
 * a hint that depends on how the bus was chosen. */
static int connect_bus(Conn *c, const char *address) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, c->address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                if (address)
                        return fail("cannot connect to %s at %s%s (%s).", c->what, c->address,
                                    arg_address ? "" : " ($FDBROKER_ADDRESS)", strerror(-r));
                if (arg_user)
                        return fail("cannot connect to %s at %s (%s). Use --system or --address.", c->what,
                                    c->address, strerror(-r));
                return fail("cannot connect to %s at %s (%s): is dbus running? Use --address or --user.", c->what,
                            c->address, strerror(-r));
        }
        c->bus = TAKE_PTR(bus);
        c->direct = false;
        c->destination = FDB_BUS_NAME;
        return 0;
}

static int connect_broker(Conn *c) {
        const char *address, *socket_path;
        int r;

        if (arg_system + arg_user + !!arg_address > 1)
                return fail("--system, --user and --address exclude each other.");

        address = ctl_bus_address(arg_address, arg_system, arg_user);
        socket_path = ctl_socket_path(arg_socket, address, arg_user);
        /* A socket that does not exist or refuses us: the bus serves. */
        if (!(socket_path && access(socket_path, F_OK) >= 0 && connect_direct(c, socket_path) >= 0)) {
                r = choose_bus(c, address);
                if (r != 0)
                        return r;
                r = connect_bus(c, address);
                if (r != 0)
                        return r;
        }

        /* polkit may ask the user only where there is one to ask. */
        (void) sd_bus_set_allow_interactive_authorization(c->bus, isatty(STDIN_FILENO) > 0);
        return 0;
}

/* ---- calls -------------------------------------------------------------- */

/* Before the first call that carries fds on a direct connection: one round
 * trip, since the broker's sd-bus closes a connection whose fds arrive in
 * the same read as our BEGIN line (docs/behaviour.md, "Direct connections:
 * the first call"). Its answer does not matter, only that one came. */
static void direct_settle(Conn *c) {
        if (c->direct)
                (void) sd_bus_call_method(c->bus, NULL, FDB_OBJECT_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
                                          NULL, "");
}

static int new_call(Conn *c, const char *member, sd_bus_message **ret) {
        int r = sd_bus_message_new_method_call(c->bus, ret, c->destination, FDB_OBJECT_PATH, FDB_INTERFACE, member);
        if (r < 0)
                return fail("cannot make a %s call: %s", member, strerror(-r)), r;
        return 0;
}

/* Sends m and waits up to timeout for the reply. On a D-Bus error, returns
 * its errno with *error set; on a broken connection, prints why and returns
 * -ENOTCONN with *error unset. */
static int call(Conn *c, sd_bus_message *m, uint64_t timeout, sd_bus_message **ret_reply, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call(c->bus, m, timeout, error, &reply);
        if (r < 0) {
                if (sd_bus_error_is_set(error) && strncmp(error->name, "System.Error.", 13) != 0)
                        return r;
                sd_bus_error_free(error);
                if (r == -ETIMEDOUT)
                        fail("the broker did not answer %s in time (on %s at %s).", sd_bus_message_get_member(m),
                             c->what, c->address);
                else
                        fail("lost the connection to %s at %s (%s).", c->what, c->address, strerror(-r));
                return -ENOTCONN;
        }
        if (!c->broker && sd_bus_message_get_sender(reply))
                c->broker = strdup(sd_bus_message_get_sender(reply));
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return 0;
}

/* Prints a failed call's error (already printed when not a D-Bus error). */
static int report(Conn *c, const sd_bus_error *error) {
        if (!sd_bus_error_is_set(error))
                return EXIT_FAILURE;
        return ctl_report_error(error->name, error->message, c->what, c->address);
}

static int append_option_string(sd_bus_message *m, const char *key, const char *value) {
        return sd_bus_message_append(m, "{sv}", key, "s", value);
}

static int append_option_bool(sd_bus_message *m, const char *key, bool value) {
        return sd_bus_message_append(m, "{sv}", key, "b", (int) value);
}

static int append_option_u64(sd_bus_message *m, const char *key, uint64_t value) {
        return sd_bus_message_append(m, "{sv}", key, "t", value);
}

/* Deposit options (SPEC §1) from the command line, as a whole a{sv}. */
static int append_deposit_options(sd_bus_message *m, uint64_t timeout_usec) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (n_allow > 0) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "allow");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, arg_allow);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        if (arg_read_only && (r = append_option_string(m, "access", "read-only")) < 0)
                return r;
        if (arg_seal && (r = append_option_bool(m, "seal", true)) < 0)
                return r;
        if (arg_persistent && (r = append_option_string(m, "lifetime", "persistent")) < 0)
                return r;
        if (timeout_usec > 0 && (r = append_option_u64(m, "timeout-usec", timeout_usec)) < 0)
                return r;
        if (arg_once && (r = append_option_bool(m, "once", true)) < 0)
                return r;
        if (arg_replace && (r = append_option_bool(m, "replace", true)) < 0)
                return r;
        if (arg_description && (r = append_option_string(m, "description", arg_description)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int deposit_timeout(uint64_t *ret_usec) {
        *ret_usec = 0;
        if (!arg_timeout)
                return 0;
        if (parse_seconds("--timeout", arg_timeout, ret_usec) < 0)
                return -EINVAL;
        if (*ret_usec == 0)
                return fail("--timeout must be more than 0 seconds."), -EINVAL;
        return 0;
}

/* Exists and NotFound in the CLI's words: the broker speaks of its call's
 * options ("replace=true") and of retrieving. */
static int report_deposit(Conn *c, const sd_bus_error *error, const char *name) {
        if (sd_bus_error_has_name(error, FDB_ERROR_NAME_EXISTS) && !arg_replace &&
            !strstr(error->message ?: "", "someone else"))
                return fail("'%s' exists; use --replace to replace your entry.", name);
        return report(c, error);
}

/* ---- info dictionaries (Retrieve's info, List's entries, EntryAdded) ---- */

typedef struct {
        char *kind, *access, *lifetime, *description;
        uint64_t size, created_usec, expires_usec;
        uint32_t owner_uid;
        bool has_size, sealed;
        char *json; /* ", \"key\": value" for every key, in the broker's order */
} Info;

static void info_done(Info *i) {
        free(i->kind);
        free(i->access);
        free(i->lifetime);
        free(i->description);
        free(i->json);
        *i = (Info) {};
}

static void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                default:
                        if (*p < 0x20)
                                fprintf(f, "\\u%04x", *p);
                        else
                                fputc(*p, f);
                }
        fputc('"', f);
}

static int str_set(char **p, const char *s) {
        free(*p);
        *p = strdup(s);
        return *p ? 0 : -ENOMEM;
}

/* An "s" value: kind, access, lifetime and description are kept. */
static int info_read_string(sd_bus_message *m, const char *key, Info *i, FILE *f) {
        const char *s;
        int r;

        r = sd_bus_message_read_basic(m, 's', &s);
        if (r < 0)
                return r;
        json_string(f, s);
        if (strcmp(key, "kind") == 0)
                return str_set(&i->kind, s);
        if (strcmp(key, "access") == 0)
                return str_set(&i->access, s);
        if (strcmp(key, "lifetime") == 0)
                return str_set(&i->lifetime, s);
        if (strcmp(key, "description") == 0)
                return str_set(&i->description, s);
        return 0;
}

/* A "b" value: sealed is kept. */
static int info_read_bool(sd_bus_message *m, const char *key, Info *i, FILE *f) {
        int b, r;

        r = sd_bus_message_read_basic(m, 'b', &b);
        if (r < 0)
                return r;
        fputs(b ? "true" : "false", f);
        if (strcmp(key, "sealed") == 0)
                i->sealed = b;
        return 0;
}

/* A "t" value: size, created-usec and expires-usec are kept. */
static int info_read_u64(sd_bus_message *m, const char *key, Info *i, FILE *f) {
        uint64_t t;
        int r;

        r = sd_bus_message_read_basic(m, 't', &t);
        if (r < 0)
                return r;
        fprintf(f, "%" PRIu64, t);
        if (strcmp(key, "size") == 0)
                i->size = t, i->has_size = true;
        else if (strcmp(key, "created-usec") == 0)
                i->created_usec = t;
        else if (strcmp(key, "expires-usec") == 0)
                i->expires_usec = t;
        return 0;
}

/* A "u" value: owner-uid is kept. */
static int info_read_u32(sd_bus_message *m, const char *key, Info *i, FILE *f) {
        uint32_t u;
        int r;

        r = sd_bus_message_read_basic(m, 'u', &u);
        if (r < 0)
                return r;
        fprintf(f, "%" PRIu32, u);
        if (strcmp(key, "owner-uid") == 0)
                i->owner_uid = u;
        return 0;
}

/* An "x" or "i" value: shown only. */
static int info_read_signed(sd_bus_message *m, const char *contents, FILE *f) {
        int64_t x = 0;
        int32_t v32 = 0;
        int r;

        r = contents[0] == 'x' ? sd_bus_message_read_basic(m, 'x', &x) : sd_bus_message_read_basic(m, 'i', &v32);
        if (r < 0)
                return r;
        fprintf(f, "%" PRId64, contents[0] == 'x' ? x : (int64_t) v32);
        return 0;
}

/* An "as" value: shown only, as a JSON list. */
static int info_read_strv(sd_bus_message *m, FILE *f) {
        const char *s;
        bool first = true;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        fputc('[', f);
        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                fputs(first ? "" : ", ", f);
                json_string(f, s);
                first = false;
        }
        if (r < 0)
                return r;
        fputc(']', f);
        return sd_bus_message_exit_container(m);
}

/* Reads one {sv} value of key into i and as JSON to f; the variant is
 * entered already (contents is its signature). Types the broker does not
 * send today are skipped and shown as null. */
static int info_read_value(sd_bus_message *m, const char *key, const char *contents, Info *i, FILE *f) {
        if (strcmp(contents, "s") == 0)
                return info_read_string(m, key, i, f);
        if (strcmp(contents, "b") == 0)
                return info_read_bool(m, key, i, f);
        if (strcmp(contents, "t") == 0)
                return info_read_u64(m, key, i, f);
        if (strcmp(contents, "u") == 0)
                return info_read_u32(m, key, i, f);
        if (strcmp(contents, "x") == 0 || strcmp(contents, "i") == 0)
                return info_read_signed(m, contents, f);
        if (strcmp(contents, "as") == 0)
                return info_read_strv(m, f);
        fputs("null", f);
        return sd_bus_message_skip(m, contents);
}

/* Reads an a{sv} info dictionary into ret (owner_uid is UINT32_MAX when
 * the broker did not say). */
static int info_read(sd_bus_message *m, Info *ret) {
        _cleanup_free_ char *json = NULL;
        size_t json_size = 0;
        Info i = { .owner_uid = UINT32_MAX };
        int r;

        _cleanup_(fclosep) FILE *f = open_memstream(&json, &json_size);
        if (!f)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                goto out;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                char type;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        goto out;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        goto out;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        goto out;
                fputs(", ", f);
                json_string(f, key);
                fputs(": ", f);
                r = info_read_value(m, key, contents, &i, f);
                if (r < 0)
                        goto out;
                r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto out;
        }
        if (r < 0)
                goto out;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto out;
        if (fflush(f) != 0) {
                r = -ENOMEM;
                goto out;
        }
        fclose(TAKE_PTR(f));
        i.json = TAKE_PTR(json);
        *ret = i;
        return 0;
out:
        info_done(&i);
        return r;
}

static char *user_name(uint32_t uid) {
        struct passwd *pw = uid == UINT32_MAX ? NULL : getpwuid(uid);
        return pw ? strdup(pw->pw_name) : NULL;
}

/* One JSON object: name, extra ("event" etc., already formatted), the info
 * keys, and owner (the user name, or null). */
static void print_json_object(FILE *f, const char *prefix, const char *name, const Info *i) {
        _cleanup_free_ char *owner = user_name(i->owner_uid);

        fputc('{', f);
        if (prefix)
                fputs(prefix, f);
        fputs("\"name\": ", f);
        json_string(f, name);
        fputs(i->json ?: "", f);
        fputs(", \"owner\": ", f);
        if (owner)
                json_string(f, owner);
        else
                fputs("null", f);
        fputc('}', f);
}

/* ---- writing ------------------------------------------------------------ */

/* A reader that went away (`fdbrokerctl cat NAME | head -c1`) is not an
 * error to report: the commands that write to stdout ignore SIGPIPE and end
 * quietly on EPIPE. */
static int write_all(int fd, const char *buf, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLOUT };
                                (void) poll(&p, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                buf += k;
                n -= (size_t) k;
        }
        return 0;
}

static int finish_stdout(void) {
        if (fflush(stdout) == 0)
                return EXIT_SUCCESS;
        if (errno == EPIPE)
                return EXIT_SUCCESS;
        return fail("cannot write to standard output: %s", strerror(errno));
}

/* ---- watching ----------------------------------------------------------- */

/* Signals from the broker only: on the bus, the sender is the unique name
 * its replies came from (anyone may send us a signal); on a direct
 * connection there is nobody else. */
static bool from_broker(Conn *c, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);

        if (c->direct)
                return true;
        return sender && c->broker && strcmp(sender, c->broker) == 0;
}

static int add_watch_matches(Conn *c, sd_bus_message_handler_t added, sd_bus_message_handler_t removed,
                             void *userdata) {
        int r = 0;

        if (added)
                r = sd_bus_match_signal(c->bus, NULL, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, "EntryAdded", added,
                                        userdata);
        if (r >= 0 && removed)
                r = sd_bus_match_signal(c->bus, NULL, NULL, FDB_OBJECT_PATH, FDB_INTERFACE, "EntryRemoved", removed,
                                        userdata);
        return r;
}

/* Watch(patterns, {}). Returns 0, or -EOPNOTSUPP when the broker has no
 * Watch (an older broker), or another failure with *error set. */
static int call_watch(Conn *c, char **patterns, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_call(c, "Watch", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, patterns);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return fail("cannot make a Watch call: %s", strerror(-r)), r;
        r = call(c, m, CALL_TIMEOUT_USEC, NULL, error);
        if (r < 0 && (sd_bus_error_has_name(error, "org.freedesktop.DBus.Error.UnknownMethod") ||
                      sd_bus_error_has_name(error, "org.freedesktop.DBus.Error.UnknownInterface")))
                return -EOPNOTSUPP;
        return r;
}

/* The exit code of an event loop whose broker left the bus. */
#define EXIT_BROKER_GONE 3

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Conn *c = userdata;
        const char *name, *old_owner, *new_owner;

        if (!sd_bus_message_get_sender(m) || strcmp(sd_bus_message_get_sender(m), "org.freedesktop.DBus") != 0 ||
            sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (strcmp(name, FDB_BUS_NAME) != 0 || !c->broker || strcmp(old_owner, c->broker) != 0)
                return 0;
        return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), EXIT_BROKER_GONE);
}

/* On the bus, the broker may exit (and a new one be activated later): its
 * watches and connection entries go with it. A direct connection just
 * closes. */
static int watch_broker(Conn *c) {
        if (c->direct)
                return 0;
        return sd_bus_add_match(c->bus, NULL,
                                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" FDB_BUS_NAME "'",
                                on_owner_changed, c);
}

static int on_signal_exit(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* An event loop with the bus attached, that ends with 0 on SIGINT, SIGTERM
 * and SIGHUP, and with EXIT_FAILURE when the connection goes. */
static int event_loop_new(Conn *c, sd_event **ret) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        r = sd_event_new(&e);
        if (r < 0)
                return r;
        r = sd_event_add_signal(e, NULL, SIGINT, on_signal_exit, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGTERM, on_signal_exit, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGHUP, on_signal_exit, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(c->bus, 1);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

/* ---- holding a connection-lifetime entry ------------------------------- */

typedef struct {
        Conn *conn;
        const char *name;
        uint64_t deposit_cookie; /* the broker's serial of the Deposit reply; 0 before it */
        char reason[64];
} Hold;

static int on_hold_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Hold *h = userdata;
        const char *name, *reason;
        uint64_t cookie = 0;

        if (!from_broker(h->conn, m) || h->deposit_cookie == 0)
                return 0;
        /* A signal the broker sent before its Deposit reply is about an
         * entry of that name before ours (one we replaced). */
        if (sd_bus_message_get_cookie(m, &cookie) >= 0 && cookie < h->deposit_cookie)
                return 0;
        if (sd_bus_message_read(m, "ss", &name, &reason) < 0 || strcmp(name, h->name) != 0)
                return 0;
        snprintf(h->reason, sizeof h->reason, "%s", reason);
        return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), 0);
}

/* Sets up the watch for our own name before the deposit, so that no
 * EntryRemoved can come before we listen. Returns whether it is in place
 * (an older broker has no Watch: then we hold until a signal). */
static bool hold_prepare(Hold *h) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *patterns[] = { (char *) h->name, NULL };

        if (add_watch_matches(h->conn, NULL, on_hold_removed, h) < 0 || watch_broker(h->conn) < 0)
                return false;
        return call_watch(h->conn, patterns, &error) >= 0;
}

/* An entry of lifetime "connection" lives as long as our connection: stay
 * until it is gone (retrieved --once, removed, expired, replaced) or we
 * are told to stop (SIGINT, SIGTERM, SIGHUP), which removes it. */
static int hold_entry(Hold *h, bool watching) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        int r, code = 0;

        note("holding %s; it goes away when this command exits (Ctrl-C), or use --persistent", h->name);
        if (!watching)
                note("the broker does not announce removals (no Watch): holding until interrupted");
        r = event_loop_new(h->conn, &e);
        if (r < 0)
                return fail("cannot wait for events: %s", strerror(-r));
        r = sd_event_loop(e);
        if (r < 0)
                return fail("cannot wait for events: %s", strerror(-r));
        code = r;
        if (code == EXIT_BROKER_GONE)
                return fail("the broker left %s; '%s' is gone with it.", h->conn->what, h->name);
        if (code != 0)
                return fail("lost the connection to %s; '%s' is gone with it.", h->conn->what, h->name);
        if (h->reason[0])
                note("%s is gone (%s)", h->name, h->reason);
        return EXIT_SUCCESS;
}

/* ---- verbs -------------------------------------------------------------- */

typedef struct {
        const char *name;
        const char *parameters;
        const char *summary;
        unsigned options; /* bits of OPT_* besides the global ones */
        int min_args, max_args;
        bool takes_command; /* requires -- COMMAND [ARG...] */
        int (*run)(Conn *c, char **args, char **command);
} Verb;

/* Says why pidfd_getfd() of PID's fd n failed with errno e. */
static int fail_pidfd_getfd(int pid, int n, int e) {
        struct stat st;
        char proc[64];

        snprintf(proc, sizeof proc, "/proc/%d", pid);
        if (e == EPERM && stat(proc, &st) >= 0 && st.st_uid != geteuid())
                return fail("--from-pid %d: not permitted: the process belongs to another user; "
                            "you need CAP_SYS_PTRACE.",
                            pid);
        if (e == EPERM)
                return fail("--from-pid %d: not permitted to take its fds (ptrace access mode "
                            "check: see /proc/sys/kernel/yama/ptrace_scope, or you need "
                            "CAP_SYS_PTRACE).",
                            pid);
        if (e == EBADF)
                return fail("--from-pid %d: the process has no fd %d.", pid, n);
        if (e == ESRCH)
                return fail("--from-pid %d: the process is gone.", pid);
        if (e == ENOSYS)
                return fail("--from-pid needs Linux 5.6 or later (pidfd_getfd).");
        return fail("--from-pid %d --fd %d: %s", pid, n, strerror(e));
}

/* --from-pid PID --fd N: a copy of PID's fd N (pidfd_getfd). Returns a
 * new fd (O_CLOEXEC) that the caller owns. */
static int deposit_fd_from_pid(char **args, int *ret_fd) {
        int pid, pidfd, fd, n;

        if (args[1] || !arg_fd)
                return fail("--from-pid PID needs --fd N (the fd of PID) and no FILE.");
        if (parse_int(arg_from_pid, 1, &pid) < 0)
                return fail("--from-pid takes a process id, not '%s'.", arg_from_pid);
        if (parse_int(arg_fd, 0, &n) < 0)
                return fail("--fd takes an fd number, not '%s'.", arg_fd);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                if (errno == ESRCH)
                        return fail("--from-pid %d: no such process.", pid);
                if (errno == ENOSYS)
                        return fail("--from-pid needs Linux 5.6 or later (pidfd_open, pidfd_getfd).");
                return fail("--from-pid %d: %s", pid, strerror(errno));
        }
        fd = (int) syscall(SYS_pidfd_getfd, pidfd, n, 0);
        if (fd < 0) {
                int e = errno;

                (void) close(pidfd);
                return fail_pidfd_getfd(pid, n, e);
        }
        (void) close(pidfd);
        *ret_fd = fd; /* pidfd_getfd sets O_CLOEXEC */
        return 0;
}

/* The fd to deposit: FILE opened read-only, our fd N, or PID's fd N.
 * Returns a new fd (O_CLOEXEC) that the caller owns. */
static int deposit_source_fd(char **args, int *ret_fd) {
        int fd, n;

        if (arg_from_pid)
                return deposit_fd_from_pid(args, ret_fd);
        if (!!args[1] == !!arg_fd)
                return fail("deposit takes either FILE or --fd N, and one of them.");
        if (args[1]) {
                fd = open(args[1], O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return fail("cannot open '%s': %s", args[1], strerror(errno));
                *ret_fd = fd;
                return 0;
        }
        if (parse_int(arg_fd, 0, &n) < 0)
                return fail("--fd takes an fd number, not '%s'.", arg_fd);
        /* Validated and taken in main() before anything was opened: see
         * take_fd_arg(). */
        return -EBADF;
}

/* --fd N without --from-pid names one of our fds: take a copy of it before
 * anything is opened, so that it cannot be confused with one of ours. */
static int arg_fd_copy = -1;

static int take_fd_arg(void) {
        int n;

        if (!arg_fd || arg_from_pid)
                return 0;
        if (parse_int(arg_fd, 0, &n) < 0)
                return fail("--fd takes an fd number, not '%s'.", arg_fd), -EINVAL;
        arg_fd_copy = fcntl(n, F_DUPFD_CLOEXEC, 3);
        if (arg_fd_copy < 0)
                return fail("--fd %d: %s", n, strerror(errno)), -EBADF;
        return 0;
}

/* Deposit(name, fd, options) (fd borrowed), then hold the entry unless it
 * is persistent. */
static int deposit_and_hold(Conn *c, const char *name, int fd, uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        Hold h = { .conn = c, .name = name };
        bool watching = false;
        int r;

        if (!arg_persistent)
                watching = hold_prepare(&h);
        direct_settle(c);
        r = new_call(c, "Deposit", &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = sd_bus_message_append(m, "sh", name, fd);
        if (r >= 0)
                r = append_deposit_options(m, timeout_usec);
        if (r < 0)
                return fail("cannot make a Deposit call: %s", strerror(-r));
        r = call(c, m, CALL_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return report_deposit(c, &error, name);
        if (arg_persistent)
                return EXIT_SUCCESS;
        if (sd_bus_message_get_cookie(reply, &h.deposit_cookie) < 0 || h.deposit_cookie == 0)
                h.deposit_cookie = 1;
        return hold_entry(&h, watching);
}

static int verb_deposit(Conn *c, char **args, char **command) {
        _cleanup_close_ int fd = -1;
        uint64_t timeout_usec;

        if (deposit_timeout(&timeout_usec) < 0)
                return EXIT_FAILURE;
        if (arg_fd_copy >= 0 && !arg_from_pid && !args[1])
                fd = TAKE_FD(arg_fd_copy);
        else if (deposit_source_fd(args, &fd) != 0)
                return EXIT_FAILURE;
        return deposit_and_hold(c, args[0], fd, timeout_usec);
}

/* create-memory --seal: the broker would seal a zero-filled buffer that
 * nobody could ever fill. So the bytes come from stdin first, into a memfd
 * of our own, which is then deposited sealed (its memory is ours, as with
 * any memfd a caller deposits). */
static int create_sealed_from_stdin(Conn *c, const char *name, uint64_t size, uint64_t timeout_usec) {
        _cleanup_close_ int fd = -1;
        static char buf[64 * 1024];
        uint64_t off = 0;

        if (isatty(STDIN_FILENO) > 0)
                return fail("create-memory --seal seals the memory at once, so its bytes must come from standard "
                            "input (not a terminal): fdbrokerctl create-memory %s SIZE --seal < FILE",
                            name);
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return fail("cannot create memory for '%s': %s", name, strerror(errno));
        if (size > (uint64_t) INT64_MAX || ftruncate(fd, (off_t) size) < 0)
                return fail("cannot make '%s' %" PRIu64 " bytes: %s", name, size, strerror(errno ?: EFBIG));
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return fail("cannot read standard input: %s", strerror(errno));
                }
                if (n == 0)
                        break;
                if ((uint64_t) n > size - off)
                        return fail("standard input holds more than the %" PRIu64 " bytes of '%s'.", size, name);
                if (pwrite(fd, buf, (size_t) n, (off_t) off) != n)
                        return fail("cannot fill '%s': %s", name, strerror(errno));
                off += (uint64_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
                return fail("cannot seal '%s': %s", name, strerror(errno));
        return deposit_and_hold(c, name, fd, timeout_usec);
}

static int verb_create_memory(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        Hold h = { .conn = c, .name = args[0] };
        uint64_t size, timeout_usec;
        bool watching = false;
        int r;

        if (parse_size(args[1], &size) < 0)
                return fail("SIZE must be a number of bytes with an optional K, M, G or T suffix, not '%s'.",
                            args[1]);
        if (deposit_timeout(&timeout_usec) < 0)
                return EXIT_FAILURE;
        if (arg_seal)
                return create_sealed_from_stdin(c, args[0], size, timeout_usec);

        if (!arg_persistent)
                watching = hold_prepare(&h);
        r = new_call(c, "CreateMemory", &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = sd_bus_message_append(m, "st", args[0], size);
        if (r >= 0)
                r = append_deposit_options(m, timeout_usec);
        if (r < 0)
                return fail("cannot make a CreateMemory call: %s", strerror(-r));
        r = call(c, m, CALL_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return report_deposit(c, &error, args[0]);
        /* The entry holds the memory; its owner retrieves it to fill it.
         * The reply's fd is the message's, closed with it. */
        if (arg_persistent)
                return EXIT_SUCCESS;
        if (sd_bus_message_get_cookie(reply, &h.deposit_cookie) < 0 || h.deposit_cookie == 0)
                h.deposit_cookie = 1;
        reply = sd_bus_message_unref(reply);
        return hold_entry(&h, watching);
}

/* Retrieve(name, options): *ret_fd is the reply's (borrowed from *ret_reply). */
static int call_retrieve(Conn *c, const char *name, bool read_only, bool reopen, uint64_t wait_usec,
                         sd_bus_message **ret_reply, int *ret_fd, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r, fd;

        r = new_call(c, "Retrieve", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && read_only)
                r = append_option_string(m, "access", "read-only");
        if (r >= 0 && reopen)
                r = append_option_bool(m, "reopen", true);
        if (r >= 0 && wait_usec > 0)
                r = append_option_u64(m, "wait-usec", wait_usec);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return fail("cannot make a Retrieve call: %s", strerror(-r)), r;
        r = call(c, m, CALL_TIMEOUT_USEC + wait_usec, &reply, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return fail("the broker's answer to Retrieve is not understood: %s", strerror(-r)), -EBADMSG;
        *ret_fd = fd;
        *ret_reply = TAKE_PTR(reply);
        return 0;
}

static int verb_retrieve(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t wait_usec = 0;
        int fd, r;

        if (arg_wait) {
                if (parse_seconds("--wait", arg_wait, &wait_usec) < 0)
                        return EXIT_FAILURE;
                if (wait_usec > FDB_WAIT_USEC_MAX)
                        return fail("--wait is at most %llu seconds, not %s.", FDB_WAIT_USEC_MAX / 1000000ULL,
                                    arg_wait);
        }
        r = call_retrieve(c, args[0], arg_read_only, arg_reopen, wait_usec, &reply, &fd, &error);
        if (r < 0)
                return report(c, &error);
        return ctl_exec_with_fd(fd, args[0], command);
}

/* Copies fd (borrowed) to stdout. Files and memfds are read with pread from
 * offset 0, so the shared file offset of the entry does not matter and is
 * not moved; anything else (pipes, sockets, devices) is read as a stream. */
static int copy_out(int fd, bool seekable, const char *name) {
        static char buf[128 * 1024];
        off_t off = 0;

        for (;;) {
                ssize_t n = seekable ? pread(fd, buf, sizeof buf, off) : read(fd, buf, sizeof buf);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLIN };
                                (void) poll(&p, 1, -1);
                                continue;
                        }
                        return fail("cannot read '%s': %s", name, strerror(errno));
                }
                if (n == 0)
                        return EXIT_SUCCESS;
                r = write_all(STDOUT_FILENO, buf, (size_t) n);
                if (r == -EPIPE)
                        return EXIT_SUCCESS;
                if (r < 0)
                        return fail("cannot write to standard output: %s", strerror(-r));
                off += n;
        }
}

static int verb_cat(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(info_done) Info info = {};
        int fd, r;

        r = call_retrieve(c, args[0], false, false, 0, &reply, &fd, &error);
        if (r < 0)
                return report(c, &error);
        r = info_read(reply, &info);
        if (r < 0)
                return fail("the broker's answer to Retrieve is not understood: %s", strerror(-r));
        return copy_out(fd,
                        info.kind && (strcmp(info.kind, "memfd") == 0 || strcmp(info.kind, "regular") == 0),
                        args[0]);
}

/* Sizes as GLib's g_format_size(IEC) printed them: "300 bytes", "1.0 MiB". */
static void format_size(char *buf, size_t size, uint64_t v) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double d = (double) v;
        size_t u = 0;

        if (v < 1024) {
                snprintf(buf, size, "%" PRIu64 " %s", v, v == 1 ? "byte" : "bytes");
                return;
        }
        d /= 1024;
        while (d >= 1024 && u + 1 < ELEMENTSOF(units)) {
                d /= 1024;
                u++;
        }
        snprintf(buf, size, "%.1f %s", d, units[u]);
}

enum { COL_NAME, COL_KIND, COL_SIZE, COL_OWNER, COL_ACCESS, COL_LIFETIME, COL_EXPIRES, N_COLS };

typedef struct {
        char *name;
        Info info;
} Entry;

static int print_table(const Entry *entries, size_t n) {
        static const char *const headers[N_COLS] = { "NAME", "KIND", "SIZE", "OWNER", "ACCESS", "LIFETIME", "EXPIRES" };
        size_t width[N_COLS];
        char *(*cells)[N_COLS] = calloc(n + 1, sizeof *cells);

        if (!cells)
                return -ENOMEM;
        for (int col = 0; col < N_COLS; col++)
                cells[0][col] = strdup(headers[col]);
        for (size_t i = 0; i < n; i++) {
                const Info *in = &entries[i].info;
                char buf[128], *owner = user_name(in->owner_uid);

                cells[i + 1][COL_NAME] = strdup(entries[i].name);
                cells[i + 1][COL_KIND] = strdup(in->kind ?: "-");
                if (in->has_size)
                        format_size(buf, sizeof buf, in->size);
                else
                        snprintf(buf, sizeof buf, "-");
                cells[i + 1][COL_SIZE] = strdup(buf);
                if (!owner) {
                        snprintf(buf, sizeof buf, "%" PRIu32, in->owner_uid);
                        owner = strdup(buf);
                }
                cells[i + 1][COL_OWNER] = owner;
                snprintf(buf, sizeof buf, "%s%s", in->access ?: "-", in->sealed ? ",sealed" : "");
                cells[i + 1][COL_ACCESS] = strdup(buf);
                cells[i + 1][COL_LIFETIME] = strdup(in->lifetime ?: "-");
                if (in->expires_usec == 0)
                        snprintf(buf, sizeof buf, "never");
                else {
                        time_t t = (time_t) (in->expires_usec / 1000000);
                        struct tm tm;
                        if (!localtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                                snprintf(buf, sizeof buf, "?");
                }
                cells[i + 1][COL_EXPIRES] = strdup(buf);
        }
        for (int col = 0; col < N_COLS; col++) {
                width[col] = 0;
                for (size_t i = 0; i <= n; i++)
                        if (cells[i][col] && strlen(cells[i][col]) > width[col])
                                width[col] = strlen(cells[i][col]);
        }
        for (size_t i = 0; i <= n; i++)
                for (int col = 0; col < N_COLS; col++) {
                        const char *s = cells[i][col] ?: "?";
                        if (col == N_COLS - 1)
                                printf("%s\n", s);
                        else
                                printf("%-*s  ", (int) width[col], s);
                }
        for (size_t i = 0; i <= n; i++)
                for (int col = 0; col < N_COLS; col++)
                        free(cells[i][col]);
        free(cells);
        return 0;
}

/* Reads List's answer into an array of entries. The array, with every
 * entry read so far, is handed back on failure too: the caller frees it
 * (list_free). */
static int list_read(sd_bus_message *reply, Entry **ret, size_t *ret_n) {
        Entry *entries = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(sa{sv})");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sa{sv}")) > 0) {
                const char *name;
                Entry *p;

                r = sd_bus_message_read_basic(reply, 's', &name);
                if (r < 0)
                        break;
                p = realloc(entries, (n + 1) * sizeof *entries);
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                entries = p;
                entries[n] = (Entry) { .name = strdup(name) };
                r = info_read(reply, &entries[n].info);
                n++;
                if (r < 0)
                        break;
                r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        *ret = entries;
        *ret_n = n;
        return r;
}

/* The entries as JSON (--json) or a table. Returns the exit status. */
static int list_print(const Entry *entries, size_t n) {
        if (arg_json) {
                fputs("[", stdout);
                for (size_t i = 0; i < n; i++) {
                        fputs(i ? ",\n  " : "\n  ", stdout);
                        print_json_object(stdout, NULL, entries[i].name ?: "", &entries[i].info);
                }
                fputs(n ? "\n]\n" : "]\n", stdout);
                return finish_stdout();
        }
        if (print_table(entries, n) < 0)
                return fail("out of memory");
        return finish_stdout();
}

static void list_free(Entry *entries, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(entries[i].name);
                info_done(&entries[i].info);
        }
        free(entries);
}

static int verb_list(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        Entry *entries = NULL;
        size_t n = 0;
        int r, ret;

        r = new_call(c, "List", &m);
        if (r < 0)
                return EXIT_FAILURE;
        if (args[0])
                r = sd_bus_message_append(m, "a{sv}", 1, "prefix", "s", args[0]);
        else
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return fail("cannot make a List call: %s", strerror(-r));
        r = call(c, m, CALL_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return report(c, &error);

        r = list_read(reply, &entries, &n);
        if (r < 0)
                ret = fail("the broker's answer to List is not understood: %s", strerror(-r));
        else
                ret = list_print(entries, n);
        list_free(entries, n);
        return ret;
}

static int verb_remove(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_call(c, "Remove", &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = sd_bus_message_append(m, "s", args[0]);
        if (r < 0)
                return fail("cannot make a Remove call: %s", strerror(-r));
        r = call(c, m, CALL_TIMEOUT_USEC, NULL, &error);
        if (r < 0) {
                /* The broker says the same for missing and hidden entries,
                 * in Retrieve's words. */
                if (sd_bus_error_has_name(&error, FDB_ERROR_NAME_NOT_FOUND))
                        return fail("no entry '%s' that you may remove.", args[0]);
                return report(c, &error);
        }
        return EXIT_SUCCESS;
}

static int verb_open(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *access_mode = arg_access ?: "read-only", *base;
        int fd, r;

        if (strcmp(access_mode, "read-only") != 0 && strcmp(access_mode, "write-only") != 0 &&
            strcmp(access_mode, "read-write") != 0)
                return fail("--access takes read-only, write-only or read-write, not '%s'.", access_mode);
        r = new_call(c, "OpenPath", &m);
        if (r < 0)
                return EXIT_FAILURE;
        r = sd_bus_message_append(m, "sa{sv}", args[0], 1, "access", "s", access_mode);
        if (r < 0)
                return fail("cannot make an OpenPath call: %s", strerror(-r));
        r = call(c, m, CALL_TIMEOUT_USEC, &reply, &error);
        if (r < 0)
                return report(c, &error);
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return fail("the broker's answer to OpenPath is not understood: %s", strerror(-r));
        base = strrchr(args[0], '/');
        base = base && base[1] ? base + 1 : args[0];
        return ctl_exec_with_fd(fd, base, command);
}

/* ---- monitor ------------------------------------------------------------ */

static int on_monitor_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(info_done) Info info = {};
        Conn *c = userdata;
        const char *name;

        if (!from_broker(c, m) || sd_bus_message_read_basic(m, 's', &name) < 0 || info_read(m, &info) < 0)
                return 0;
        if (arg_json)
                print_json_object(stdout, "\"event\": \"added\", ", name, &info);
        else {
                _cleanup_free_ char *owner = user_name(info.owner_uid);
                printf("+ %s kind=%s owner=", name, info.kind ?: "?");
                if (owner)
                        fputs(owner, stdout);
                else
                        printf("%" PRIu32, info.owner_uid);
                if (info.has_size)
                        printf(" size=%" PRIu64, info.size);
                if (info.lifetime)
                        printf(" lifetime=%s", info.lifetime);
        }
        putchar('\n');
        if (fflush(stdout) != 0)
                return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), errno == EPIPE ? 0 : 2);
        return 0;
}

static int on_monitor_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Conn *c = userdata;
        const char *name, *reason;

        if (!from_broker(c, m) || sd_bus_message_read(m, "ss", &name, &reason) < 0)
                return 0;
        if (arg_json) {
                fputs("{\"event\": \"removed\", \"name\": ", stdout);
                json_string(stdout, name);
                fputs(", \"reason\": ", stdout);
                json_string(stdout, reason);
                fputs("}\n", stdout);
        } else
                printf("- %s %s\n", name, reason);
        if (fflush(stdout) != 0)
                return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), errno == EPIPE ? 0 : 2);
        return 0;
}

static int verb_monitor(Conn *c, char **args, char **command) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char *all[] = { (char *) "**", NULL };
        char **patterns = args[0] ? args : all;
        int r;

        r = add_watch_matches(c, on_monitor_added, on_monitor_removed, c);
        if (r >= 0)
                r = watch_broker(c);
        if (r < 0)
                return fail("cannot listen for the broker's signals: %s", strerror(-r));
        r = call_watch(c, patterns, &error);
        if (r == -EOPNOTSUPP)
                return fail("the broker on %s does not support Watch (an older fdbroker?): cannot monitor.",
                            c->what);
        if (r < 0)
                return report(c, &error);
        fputs("fdbrokerctl: watching", stderr);
        for (char **p = patterns; *p; p++)
                fprintf(stderr, " %s", *p);
        fputs("; Ctrl-C to stop\n", stderr);
        r = event_loop_new(c, &e);
        if (r < 0)
                return fail("cannot wait for events: %s", strerror(-r));
        r = sd_event_loop(e);
        if (r < 0)
                return fail("cannot wait for events: %s", strerror(-r));
        if (r == 2)
                return fail("cannot write to standard output: %s", strerror(errno));
        if (r == EXIT_BROKER_GONE)
                return fail("the broker left %s: its watch ended with it.", c->what);
        if (r != 0)
                return fail("lost the connection to %s at %s.", c->what, c->address);
        return EXIT_SUCCESS;
}

/* ---- the table of verbs ------------------------------------------------- */

static const Verb verbs[] = {
        { "deposit", "NAME (FILE | --fd N | --from-pid PID --fd N)",
          "Store FILE (opened read-only), your fd N, or fd N of process PID under NAME. Without --persistent, "
          "fdbrokerctl holds the entry: it stays running and exits once the entry is gone (retrieved with "
          "--once, removed, expired) or on Ctrl-C, SIGTERM or SIGHUP, which removes it.",
          BIT(OPT_FD) | BIT(OPT_FROM_PID) | DEPOSIT_OPTS, 1, 2, false, verb_deposit },
        { "retrieve", "NAME [--read-only] [--reopen] [--wait SEC] -- COMMAND [ARG...]",
          "Run COMMAND with the fd of NAME as fd 3 (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=NAME, with ':' as "
          "'_'). fdbrokerctl becomes COMMAND, so its exit status is COMMAND's.",
          BIT(OPT_READ_ONLY) | BIT(OPT_REOPEN) | BIT(OPT_WAIT), 1, 1, true, verb_retrieve },
        { "cat", "NAME",
          "Write the bytes of the fd of NAME to standard output: files and memfds from offset 0 without moving "
          "the entry's offset, pipes, sockets and devices until end of file.",
          0, 1, 1, false, verb_cat },
        { "list", "[PREFIX] [--json]",
          "List the entries you own or may retrieve. --json prints an array of objects with the keys name, "
          "kind, size, owner-uid, access, sealed, lifetime, description, created-usec, expires-usec and owner.",
          BIT(OPT_JSON), 0, 1, false, verb_list },
        { "remove", "NAME", "Remove the entry NAME.", 0, 1, 1, false, verb_remove },
        { "create-memory", "NAME SIZE [DEPOSIT-OPTION...]",
          "Have the broker create a zero-filled memfd of SIZE bytes (K, M, G, T suffixes) stored under NAME; "
          "retrieve it to fill it. With --seal, the bytes come from standard input first (a file or a pipe, "
          "not a terminal), into a memfd of fdbrokerctl's that is deposited sealed. Held as deposit holds.",
          DEPOSIT_OPTS, 2, 2, false, verb_create_memory },
        { "open", "PATH [--access MODE] -- COMMAND [ARG...]",
          "Have the broker open PATH where policy allows it, and run COMMAND with it as fd 3 "
          "(LISTEN_FDNAMES is the last component of PATH).",
          BIT(OPT_ACCESS), 1, 1, true, verb_open },
        { "monitor", "[PATTERN...] [--json]",
          "Print a line when an entry you may see is added (+ NAME kind=... owner=...) or removed (- NAME "
          "REASON), until interrupted. PATTERNs are globs as in the policy (default: **). --json prints one "
          "object per line, with \"event\": \"added\" or \"removed\".",
          BIT(OPT_JSON), 0, INT_MAX, false, verb_monitor },
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void print_options(unsigned mask) {
        for (int o = 0; o < _OPT_MAX; o++) {
                char left[64];
                if (!(mask & BIT(o)))
                        continue;
                snprintf(left, sizeof left, "--%s%s%s", options[o].name, options[o].value ? " " : "",
                         options[o].value ?: "");
                printf("  %-22s %s\n", left, options[o].help);
        }
}

/* Prints text wrapped at 79 columns (it has no newlines of its own). */
static void print_wrapped(const char *text) {
        size_t col = 0;

        while (*text) {
                size_t n = strcspn(text, " ");
                if (col > 0 && col + 1 + n > 79) {
                        putchar('\n');
                        col = 0;
                } else if (col > 0) {
                        putchar(' ');
                        col++;
                }
                fwrite(text, 1, n, stdout);
                col += n;
                text += n;
                text += strspn(text, " ");
        }
        putchar('\n');
}

static void print_help(const Verb *v) {
        if (v) {
                printf("Usage: fdbrokerctl [BUS] %s %s\n\n", v->name, v->parameters);
                print_wrapped(v->summary);
                if (v->options) {
                        printf("\nOptions:\n");
                        print_options(v->options);
                }
                printf("\nBUS options:\n");
                print_options(GLOBAL_OPTS & ~(BIT(OPT_HELP) | BIT(OPT_VERSION)));
                printf("\nSee fdbrokerctl(1).\n");
                return;
        }
        printf("Usage: fdbrokerctl [BUS] COMMAND [OPTION...]\n\n"
               "Share file descriptors through the fdbroker service.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-14s %s\n", verbs[i].name, verbs[i].parameters);
        printf("\nDeposit options (deposit, create-memory):\n");
        print_options(DEPOSIT_OPTS);
        printf("\nBUS options:\n");
        print_options(GLOBAL_OPTS);
        printf("\nEnvironment: FDBROKER_ADDRESS (a bus address, when no BUS option is given), FDBROKER_SOCKET\n"
               "(the direct socket). 'fdbrokerctl COMMAND --help' shows a command's options; see fdbrokerctl(1).\n");
}

/* A word that is not an option: first the command's name, then its
 * arguments, into positional (of size slots). -1 after saying why. */
static int take_word(char *word, const Verb **verb, char **positional, size_t size, size_t *n_positional) {
        if (!*verb) {
                *verb = find_verb(word);
                if (!*verb)
                        return fail("unknown command '%s'; see fdbrokerctl --help.", word), -1;
        } else if (*n_positional + 1 >= size)
                return fail("too many arguments; see fdbrokerctl %s --help.", (*verb)->name), -1;
        else
                positional[(*n_positional)++] = word;
        return 0;
}

/* The option argv[*i] names, among the global ones and verb's, and its
 * value: after '=', or the next word (then *i moves past it). -1 after
 * saying why. */
static int read_option(int argc, char **argv, int *i, const Verb *verb, int *ret_o, const char **ret_value) {
        const char *a = argv[*i], *value = NULL, *eq;
        char optname[64];
        unsigned allowed = GLOBAL_OPTS | (verb ? verb->options : 0);
        int o;

        eq = strchr(a, '=');
        snprintf(optname, sizeof optname, "%.*s", (int) (eq ? (size_t) (eq - a) : strlen(a)), a);
        for (o = 0; o < _OPT_MAX; o++)
                if (optname[0] == '-' && optname[1] == '-' && strcmp(optname + 2, options[o].name) == 0 &&
                    (allowed & BIT(o)))
                        break;
        if (o == _OPT_MAX) {
                if (verb)
                        return fail("unknown option %s for %s; see fdbrokerctl %s --help.", optname, verb->name,
                                    verb->name),
                               -1;
                return fail("unknown option %s; see fdbrokerctl --help.", optname), -1;
        }
        if (options[o].value) {
                if (eq)
                        value = eq + 1;
                else if (*i + 1 < argc)
                        value = argv[++*i];
                else
                        return fail("--%s needs a value (%s).", options[o].name, options[o].value), -1;
        } else if (eq)
                return fail("--%s takes no value.", options[o].name), -1;
        *ret_o = o;
        *ret_value = value;
        return 0;
}

/* Sets the arg_* variable of option o (value: NULL for a flag); --help
 * sets *help. --version is parse_argv's: it ends the parsing. */
static void apply_option(int o, const char *value, bool *help) {
        switch (o) {
        case OPT_SYSTEM:
                arg_system = true;
                break;
        case OPT_USER:
                arg_user = true;
                break;
        case OPT_ADDRESS:
                arg_address = value;
                break;
        case OPT_SOCKET:
                arg_socket = value;
                break;
        case OPT_HELP:
                *help = true;
                break;
        case OPT_FD:
                arg_fd = value;
                break;
        case OPT_FROM_PID:
                arg_from_pid = value;
                break;
        case OPT_ALLOW:
                arg_allow[n_allow++] = (char *) value;
                break;
        case OPT_READ_ONLY:
                arg_read_only = true;
                break;
        case OPT_SEAL:
                arg_seal = true;
                break;
        case OPT_PERSISTENT:
                arg_persistent = true;
                break;
        case OPT_ONCE:
                arg_once = true;
                break;
        case OPT_TIMEOUT:
                arg_timeout = value;
                break;
        case OPT_DESCRIPTION:
                arg_description = value;
                break;
        case OPT_REPLACE:
                arg_replace = true;
                break;
        case OPT_REOPEN:
                arg_reopen = true;
                break;
        case OPT_WAIT:
                arg_wait = value;
                break;
        case OPT_JSON:
                arg_json = true;
                break;
        case OPT_ACCESS:
                arg_access = value;
                break;
        }
}

/* The command line as a whole: a command, as many arguments as it takes,
 * a COMMAND after '--' exactly when it takes one. -1 after saying why. */
static int check_verb_args(const Verb *verb, size_t n_positional, char **command) {
        if (!verb)
                return fail("missing command; see fdbrokerctl --help."), -1;
        if ((int) n_positional < verb->min_args || (int) n_positional > verb->max_args)
                return fail("usage: fdbrokerctl %s %s (see fdbrokerctl %s --help)", verb->name, verb->parameters,
                            verb->name),
                       -1;
        if (verb->takes_command && (!command || !command[0]))
                return fail("%s needs a COMMAND after '--'.", verb->name), -1;
        if (!verb->takes_command && command)
                return fail("%s takes no COMMAND.", verb->name), -1;
        return 0;
}

/* Parses argv into the arg_* variables. Returns the verb, NULL after
 * --help/--version (*ret_status 0) or on an error (*ret_status 1). */
static const Verb *parse_argv(int argc, char **argv, char ***ret_args, char ***ret_command, int *ret_status) {
        static char *positional[64];
        const Verb *verb = NULL;
        size_t n_positional = 0;
        bool help = false;

        *ret_status = EXIT_FAILURE;
        *ret_command = NULL;
        arg_allow = calloc((size_t) argc + 1, sizeof(char *));
        if (!arg_allow)
                return fail("out of memory"), NULL;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *value;
                int o;

                if (strcmp(a, "--") == 0) {
                        if (!verb)
                                return fail("missing command before '--'; see fdbrokerctl --help."), NULL;
                        *ret_command = &argv[i + 1];
                        break;
                }
                if (a[0] != '-' || a[1] == '\0') {
                        if (take_word(argv[i], &verb, positional, ELEMENTSOF(positional), &n_positional) < 0)
                                return NULL;
                        continue;
                }
                if (strcmp(a, "-h") == 0) {
                        help = true;
                        continue;
                }
                if (read_option(argc, argv, &i, verb, &o, &value) < 0)
                        return NULL;
                if (o == OPT_VERSION) {
                        printf("fdbrokerctl %s\n", FDBROKER_VERSION);
                        *ret_status = finish_stdout();
                        return NULL;
                }
                apply_option(o, value, &help);
        }
        if (help) {
                print_help(verb);
                *ret_status = finish_stdout();
                return NULL;
        }
        if (check_verb_args(verb, n_positional, *ret_command) < 0)
                return NULL;
        positional[n_positional] = NULL;
        *ret_args = positional;
        *ret_status = EXIT_SUCCESS;
        return verb;
}

int main(int argc, char *argv[]) {
        Conn c = {};
        const Verb *verb;
        char **args = NULL, **command = NULL;
        int status;

        ctl_fill_std_fds();
        verb = parse_argv(argc, argv, &args, &command, &status);
        if (!verb)
                goto out;
        if (take_fd_arg() < 0) {
                status = EXIT_FAILURE;
                goto out;
        }
        /* Commands that write to stdout end quietly when the reader goes
         * away; the others keep SIGPIPE for COMMAND. */
        if (verb->run == verb_cat || verb->run == verb_list || verb->run == verb_monitor)
                (void) signal(SIGPIPE, SIG_IGN);
        if (connect_broker(&c) != 0) {
                status = EXIT_FAILURE;
                goto out;
        }
        status = verb->run(&c, args, command);
out:
        conn_done(&c);
        arg_fd_copy = safe_close(arg_fd_copy);
        free(arg_allow);
        return status;
}
