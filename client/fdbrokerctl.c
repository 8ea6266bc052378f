/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdbrokerctl.c: the command-line tool of fdbroker (SPEC §4), a user of
 * libfdbroker-client like any other program.
 *
 * Each command is a verb with its own GOptionContext (so `fdbrokerctl VERB
 * --help` works); the global bus options are accepted before or after the
 * verb. Everything after the first `--` is the COMMAND of retrieve and
 * open, never parsed here. Exit status: 0, or 1 with "fdbrokerctl: MESSAGE"
 * on stderr, where MESSAGE is the broker's error message; retrieve and open
 * become COMMAND (execvp), so its status is theirs. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include <fdbroker/fdbroker.h>

#define EXIT_EXEC_NOT_FOUND 127
#define EXIT_EXEC_FAILED 126

/* How often a holding deposit checks that its entry still exists. */
#define HOLD_POLL_MSEC 500

static gboolean fd_is_ours(int fd);

/* ---- global options ------------------------------------------------------ */

static gboolean arg_system;
static gboolean arg_user;
static char *arg_address;

static const GOptionEntry global_entries[] = {
        { "system", 0, 0, G_OPTION_ARG_NONE, &arg_system, "Talk to the broker on the system bus (the default)",
          NULL },
        { "user", 0, 0, G_OPTION_ARG_NONE, &arg_user, "Talk to the broker on the session bus", NULL },
        { "address", 0, 0, G_OPTION_ARG_STRING, &arg_address, "Talk to the broker on the bus at ADDRESS",
          "ADDRESS" },
};

static int fail(const char *format, ...) G_GNUC_PRINTF(1, 2);
static int fail(const char *format, ...) {
        va_list ap;

        fputs("fdbrokerctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_FAILURE;
}

/* Prints the error of a failed call, without GDBus's "GDBus.Error:NAME: "
 * prefix on errors the library does not map. */
static int fail_error(GError *error) {
        if (g_dbus_error_is_remote_error(error))
                g_dbus_error_strip_remote_error(error);
        return fail("%s", error->message);
}

static FdbClient *connect_client(GError **error) {
        if ((arg_system ? 1 : 0) + (arg_user ? 1 : 0) + (arg_address ? 1 : 0) > 1) {
                g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                    "--system, --user and --address exclude each other.");
                return NULL;
        }
        if (arg_address)
                return fdb_client_new_for_address_sync(arg_address, NULL, error);
        return fdb_client_new_for_bus_sync(arg_user ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, error);
}

/* ---- parsing values ------------------------------------------------------ */

/* Seconds, as a decimal number ("2", "0.5"), to microseconds. */
static gboolean parse_seconds(const char *option, const char *s, guint64 *ret_usec, GError **error) {
        char *end = NULL;
        double v;

        errno = 0;
        v = g_ascii_strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > (double) (G_MAXUINT64 / 2000000)) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "%s takes a number of seconds, not '%s'.", option, s);
                return FALSE;
        }
        *ret_usec = (guint64) (v * 1e6 + 0.5);
        return TRUE;
}

/* A size in bytes with an optional K, M, G or T suffix (powers of 1024,
 * "KiB" etc. accepted too). */
static gboolean parse_size(const char *s, guint64 *ret, GError **error) {
        static const char suffixes[] = "KMGT";
        char *end = NULL;
        guint64 v, mult = 1;

        if (!g_ascii_isdigit(s[0]))
                goto bad;
        errno = 0;
        v = g_ascii_strtoull(s, &end, 10);
        if (errno != 0)
                goto bad;
        if (*end) {
                const char *p = strchr(suffixes, g_ascii_toupper(*end));
                if (!p)
                        goto bad;
                for (int i = 0; i <= p - suffixes; i++)
                        mult *= 1024;
                end++;
                if (*end && strcmp(end, "iB") != 0)
                        goto bad;
        }
        if (v > G_MAXUINT64 / mult)
                goto bad;
        *ret = v * mult;
        return TRUE;
bad:
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "SIZE must be a number of bytes with an optional K, M, G or T suffix, not '%s'.", s);
        return FALSE;
}

/* ---- deposit options (deposit, create-memory) ---------------------------- */

static char **arg_allow;
static gboolean arg_read_only;
static gboolean arg_seal;
static gboolean arg_persistent;
static gboolean arg_once;
static char *arg_timeout;
static char *arg_description;
static gboolean arg_replace;
static int arg_fd = -1;
static gboolean arg_reopen;
static char *arg_wait;
static gboolean arg_json;
static char *arg_access;

#define DEPOSIT_OPTION_ENTRIES                                                                                \
        { "allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &arg_allow,                                               \
          "Let SUBJECT retrieve it too: user:NAME, uid:N, group:NAME, gid:N, label:CONTEXT or everyone "      \
          "(repeatable)",                                                                                     \
          "SUBJECT" },                                                                                        \
        { "read-only", 0, 0, G_OPTION_ARG_NONE, &arg_read_only, "Have the broker keep a read-only reopening",   \
          NULL },                                                                                             \
        { "seal", 0, 0, G_OPTION_ARG_NONE, &arg_seal, "Seal the memfd so that its bytes never change", NULL },  \
        { "persistent", 0, 0, G_OPTION_ARG_NONE, &arg_persistent,                                             \
          "Keep the entry after fdbrokerctl exits, until removed or expired", NULL },                         \
        { "once", 0, 0, G_OPTION_ARG_NONE, &arg_once, "Remove the entry after its first retrieval", NULL },     \
        { "timeout", 0, 0, G_OPTION_ARG_STRING, &arg_timeout, "Remove the entry SEC seconds from now", "SEC" }, \
        { "description", 0, 0, G_OPTION_ARG_STRING, &arg_description, "Describe the entry (shown by list)",    \
          "TEXT" },                                                                                           \
        { "replace", 0, 0, G_OPTION_ARG_NONE, &arg_replace, "Replace an entry of the same name you own", NULL }

static FdbDepositOptions *deposit_options_from_args(GError **error) {
        g_autoptr(FdbDepositOptions) o = fdb_deposit_options_new();
        guint64 usec = 0;

        if (arg_timeout) {
                if (!parse_seconds("--timeout", arg_timeout, &usec, error))
                        return NULL;
                if (usec == 0) {
                        g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                            "--timeout must be more than 0 seconds.");
                        return NULL;
                }
        }
        fdb_deposit_options_set_allow(o, (const char *const *) arg_allow);
        fdb_deposit_options_set_read_only(o, arg_read_only);
        fdb_deposit_options_set_seal(o, arg_seal);
        fdb_deposit_options_set_persistent(o, arg_persistent);
        fdb_deposit_options_set_once(o, arg_once);
        fdb_deposit_options_set_timeout_usec(o, usec);
        fdb_deposit_options_set_description(o, arg_description);
        fdb_deposit_options_set_replace(o, arg_replace);
        return g_steal_pointer(&o);
}

/* ---- holding a connection-lifetime entry -------------------------------- */

typedef struct {
        FdbClient *client;
        const char *name;
        GMainLoop *loop;
} Hold;

static gboolean on_hold_signal(gpointer user_data) {
        Hold *h = user_data;
        g_main_loop_quit(h->loop);
        return G_SOURCE_CONTINUE;
}

static gboolean entry_exists(FdbClient *client, const char *name) {
        g_autoptr(GPtrArray) entries = NULL;

        entries = fdb_client_list_sync(client, name, NULL, NULL);
        if (!entries)
                return FALSE;
        for (guint i = 0; i < entries->len; i++)
                if (g_str_equal(fdb_entry_info_get_name(entries->pdata[i]), name))
                        return TRUE;
        return FALSE;
}

static gboolean on_hold_poll(gpointer user_data) {
        Hold *h = user_data;

        if (!entry_exists(h->client, h->name)) {
                g_main_loop_quit(h->loop);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

/* An entry of lifetime "connection" lives as long as our bus connection:
 * stay until it is gone (retrieved --once, removed, expired) or we are
 * told to stop, which removes it. */
static int hold_entry(FdbClient *client, const char *name) {
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        Hold h = { .client = client, .name = name, .loop = loop };
        guint sources[4];

        if (isatty(STDERR_FILENO))
                fprintf(stderr,
                        "fdbrokerctl: holding '%s' until interrupted (it goes away with this process; "
                        "--persistent keeps it).\n",
                        name);
        sources[0] = g_unix_signal_add(SIGINT, on_hold_signal, &h);
        sources[1] = g_unix_signal_add(SIGTERM, on_hold_signal, &h);
        sources[2] = g_unix_signal_add(SIGHUP, on_hold_signal, &h);
        sources[3] = g_timeout_add(HOLD_POLL_MSEC, on_hold_poll, &h);
        g_main_loop_run(loop);
        for (size_t i = 0; i < G_N_ELEMENTS(sources); i++)
                g_clear_handle_id(&sources[i], g_source_remove);
        return EXIT_SUCCESS;
}

/* ---- running COMMAND with an fd ----------------------------------------- */

/* Makes fd (consumed) fd 3 of COMMAND and becomes COMMAND, the way systemd
 * passes sockets: LISTEN_FDS=1, LISTEN_PID=our pid (execvp keeps it) and
 * LISTEN_FDNAMES=fdname. Returns only on failure. */
static int exec_with_fd(FdbClient *client, int fd, const char *fdname, char **command) {
        g_autofree char *pid = NULL;
        g_autofree char *name = g_strdup(fdname);
        int e;

        /* ':' separates names in LISTEN_FDNAMES. */
        g_strdelimit(name, ":", '_');

        /* Our bus connection's socket is close-on-exec; close it cleanly. */
        (void) g_dbus_connection_close_sync(fdb_client_get_connection(client), NULL, NULL);

        if (fd != 3) {
                if (dup2(fd, 3) < 0)
                        return fail("cannot make the fd of '%s' fd 3: %s", fdname, g_strerror(errno));
                (void) close(fd);
        } else if (fcntl(3, F_SETFD, 0) < 0)
                return fail("cannot pass the fd of '%s' on: %s", fdname, g_strerror(errno));

        pid = g_strdup_printf("%d", (int) getpid());
        if (!g_setenv("LISTEN_FDS", "1", TRUE) || !g_setenv("LISTEN_PID", pid, TRUE) ||
            !g_setenv("LISTEN_FDNAMES", name, TRUE))
                return fail("cannot set the environment: %s", g_strerror(errno));

        execvp(command[0], command);
        e = errno;
        fail("cannot run '%s': %s", command[0], g_strerror(e));
        return e == ENOENT ? EXIT_EXEC_NOT_FOUND : EXIT_EXEC_FAILED;
}

/* ---- verbs --------------------------------------------------------------- */

typedef struct {
        const char *name;
        const char *parameters;
        const char *summary;
        const char *description;
        const GOptionEntry *entries;
        size_t n_entries;
        int min_args, max_args;       /* positional arguments after the verb */
        gboolean takes_command;       /* requires -- COMMAND [ARG...] */
        int (*run)(FdbClient *client, char **args, char **command);
} Verb;

static int verb_deposit(FdbClient *client, char **args, char **command) {
        g_autoptr(FdbDepositOptions) o = NULL;
        g_autoptr(GError) error = NULL;
        const char *name = args[0];
        int fd, r;

        if ((args[1] != NULL) == (arg_fd >= 0))
                return fail("deposit takes either FILE or --fd N, and one of them.");
        o = deposit_options_from_args(&error);
        if (!o)
                return fail("%s", error->message);

        if (args[1]) {
                fd = open(args[1], O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return fail("cannot open '%s': %s", args[1], g_strerror(errno));
        } else {
                if (fd_is_ours(arg_fd) || fcntl(arg_fd, F_GETFD) < 0)
                        return fail("--fd %d: %s", arg_fd, g_strerror(EBADF));
                fd = arg_fd;
        }

        r = fdb_client_deposit_sync(client, name, fd, o, NULL, &error);
        if (args[1])
                (void) close(fd);
        if (!r)
                return fail_error(error);
        if (arg_persistent)
                return EXIT_SUCCESS;
        return hold_entry(client, name);
}

static int verb_create_memory(FdbClient *client, char **args, char **command) {
        g_autoptr(FdbDepositOptions) o = NULL;
        g_autoptr(GError) error = NULL;
        guint64 size;
        int fd;

        if (!parse_size(args[1], &size, &error))
                return fail("%s", error->message);
        o = deposit_options_from_args(&error);
        if (!o)
                return fail("%s", error->message);

        fd = fdb_client_create_memory_sync(client, args[0], size, o, NULL, &error);
        if (fd < 0)
                return fail_error(error);
        /* The entry holds the memory; its owner retrieves it to fill it. */
        (void) close(fd);
        if (arg_persistent)
                return EXIT_SUCCESS;
        return hold_entry(client, args[0]);
}

static int verb_retrieve(FdbClient *client, char **args, char **command) {
        g_autoptr(FdbRetrieveOptions) o = fdb_retrieve_options_new();
        g_autoptr(GError) error = NULL;
        guint64 wait = 0;
        int fd;

        if (arg_wait && !parse_seconds("--wait", arg_wait, &wait, &error))
                return fail("%s", error->message);
        fdb_retrieve_options_set_read_only(o, arg_read_only);
        fdb_retrieve_options_set_reopen(o, arg_reopen);
        fdb_retrieve_options_set_wait_usec(o, wait);

        fd = fdb_client_retrieve_sync(client, args[0], o, NULL, NULL, &error);
        if (fd < 0)
                return fail_error(error);
        return exec_with_fd(client, fd, args[0], command);
}

static gboolean write_all(int fd, const char *buf, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return FALSE;
                }
                buf += k;
                n -= (size_t) k;
        }
        return TRUE;
}

/* Copies fd (borrowed) to stdout. Files and memfds are read with pread from
 * offset 0, so the shared file offset of the entry does not matter and is
 * not moved; anything else (pipes, sockets, devices) is read as a stream. */
static int copy_out(int fd, gboolean seekable, const char *name) {
        static char buf[128 * 1024];
        off_t off = 0;

        for (;;) {
                ssize_t n = seekable ? pread(fd, buf, sizeof buf, off) : read(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLIN };
                                (void) poll(&p, 1, -1);
                                continue;
                        }
                        return fail("cannot read '%s': %s", name, g_strerror(errno));
                }
                if (n == 0)
                        return EXIT_SUCCESS;
                if (!write_all(STDOUT_FILENO, buf, (size_t) n))
                        return fail("cannot write to standard output: %s", g_strerror(errno));
                off += n;
        }
}

static int verb_cat(FdbClient *client, char **args, char **command) {
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        const char *kind;
        int fd, r;

        fd = fdb_client_retrieve_sync(client, args[0], NULL, &info, NULL, &error);
        if (fd < 0)
                return fail_error(error);
        kind = fdb_entry_info_get_kind(info);
        r = copy_out(fd, g_str_equal(kind, "memfd") || g_str_equal(kind, "regular"), args[0]);
        (void) close(fd);
        return r;
}

static void json_string(GString *out, const char *s) {
        g_string_append_c(out, '"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                switch (*p) {
                case '"':
                        g_string_append(out, "\\\"");
                        break;
                case '\\':
                        g_string_append(out, "\\\\");
                        break;
                case '\n':
                        g_string_append(out, "\\n");
                        break;
                case '\t':
                        g_string_append(out, "\\t");
                        break;
                case '\r':
                        g_string_append(out, "\\r");
                        break;
                default:
                        if (*p < 0x20)
                                g_string_append_printf(out, "\\u%04x", *p);
                        else
                                g_string_append_c(out, (char) *p);
                }
        g_string_append_c(out, '"');
}

static void json_value(GString *out, GVariant *v) {
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
                json_string(out, g_variant_get_string(v, NULL));
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
                g_string_append(out, g_variant_get_boolean(v) ? "true" : "false");
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
                g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(v));
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                g_string_append_printf(out, "%" G_GUINT32_FORMAT, g_variant_get_uint32(v));
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
                g_string_append_printf(out, "%" G_GINT32_FORMAT, g_variant_get_int32(v));
        else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY)) {
                g_autofree const char **strv = g_variant_get_strv(v, NULL);
                g_string_append_c(out, '[');
                for (size_t i = 0; strv[i]; i++) {
                        if (i > 0)
                                g_string_append(out, ", ");
                        json_string(out, strv[i]);
                }
                g_string_append_c(out, ']');
        } else {
                g_autofree char *s = g_variant_print(v, FALSE);
                json_string(out, s);
        }
}

static char *user_name(guint32 uid) {
        struct passwd *pw = uid == G_MAXUINT32 ? NULL : getpwuid(uid);
        return pw ? g_strdup(pw->pw_name) : NULL;
}

/* An array of objects: "name", then every key of the info dictionary as the
 * broker sent it (kind, size, owner-uid, access, ...), and "owner", the
 * owner's user name or null. */
static void print_json(GPtrArray *entries) {
        g_autoptr(GString) out = g_string_new("[");

        for (guint i = 0; i < entries->len; i++) {
                FdbEntryInfo *e = entries->pdata[i];
                g_autofree char *owner = user_name(fdb_entry_info_get_owner_uid(e));
                GVariantIter iter;
                const char *key;
                GVariant *value;

                g_string_append(out, i ? ",\n  {" : "\n  {");
                g_string_append(out, "\"name\": ");
                json_string(out, fdb_entry_info_get_name(e));
                g_variant_iter_init(&iter, fdb_entry_info_get_variant(e));
                while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                        g_string_append(out, ", ");
                        json_string(out, key);
                        g_string_append(out, ": ");
                        json_value(out, value);
                        g_variant_unref(value);
                }
                g_string_append(out, ", \"owner\": ");
                if (owner)
                        json_string(out, owner);
                else
                        g_string_append(out, "null");
                g_string_append_c(out, '}');
        }
        g_string_append(out, entries->len ? "\n]\n" : "]\n");
        fputs(out->str, stdout);
}

/* Columns are counted in characters: g_format_size() puts a no-break space
 * (two bytes) between number and unit. */
static size_t display_width(const char *s) {
        return g_utf8_validate(s, -1, NULL) ? (size_t) g_utf8_strlen(s, -1) : strlen(s);
}

enum { COL_NAME, COL_KIND, COL_SIZE, COL_OWNER, COL_ACCESS, COL_LIFETIME, COL_EXPIRES, N_COLS };

static void print_table(GPtrArray *entries) {
        static const char *const headers[N_COLS] = { "NAME", "KIND", "SIZE", "OWNER", "ACCESS", "LIFETIME", "EXPIRES" };
        g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);
        size_t width[N_COLS];

        for (int c = 0; c < N_COLS; c++) {
                width[c] = strlen(headers[c]);
                g_ptr_array_add(cells, g_strdup(headers[c]));
        }
        for (guint i = 0; i < entries->len; i++) {
                FdbEntryInfo *e = entries->pdata[i];
                guint32 uid = fdb_entry_info_get_owner_uid(e);
                guint64 expires = fdb_entry_info_get_expires_usec(e);
                char *owner = user_name(uid);
                char *row[N_COLS];

                row[COL_NAME] = g_strdup(fdb_entry_info_get_name(e));
                row[COL_KIND] = g_strdup(fdb_entry_info_get_kind(e));
                row[COL_SIZE] = fdb_entry_info_has_size(e)
                                        ? g_format_size_full(fdb_entry_info_get_size(e), G_FORMAT_SIZE_IEC_UNITS)
                                        : g_strdup("-");
                row[COL_OWNER] = owner ? owner : g_strdup_printf("%" G_GUINT32_FORMAT, uid);
                row[COL_ACCESS] = g_strdup_printf("%s%s", fdb_entry_info_get_access(e),
                                                  fdb_entry_info_get_sealed(e) ? ",sealed" : "");
                row[COL_LIFETIME] = g_strdup(fdb_entry_info_get_lifetime(e));
                if (expires == 0)
                        row[COL_EXPIRES] = g_strdup("never");
                else {
                        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local((gint64) (expires / G_USEC_PER_SEC));
                        row[COL_EXPIRES] = t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
                }
                for (int c = 0; c < N_COLS; c++) {
                        width[c] = MAX(width[c], display_width(row[c]));
                        g_ptr_array_add(cells, row[c]);
                }
        }
        for (guint i = 0; i < cells->len; i++) {
                const char *cell = cells->pdata[i];
                int c = (int) (i % N_COLS);
                if (c == N_COLS - 1)
                        printf("%s\n", cell);
                else
                        printf("%s%*s", cell, (int) (width[c] - display_width(cell) + 2), "");
        }
}

static int verb_list(FdbClient *client, char **args, char **command) {
        g_autoptr(GPtrArray) entries = NULL;
        g_autoptr(GError) error = NULL;

        entries = fdb_client_list_sync(client, args[0], NULL, &error);
        if (!entries)
                return fail_error(error);
        if (arg_json)
                print_json(entries);
        else
                print_table(entries);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : fail("cannot write to standard output: %s", g_strerror(errno));
}

static int verb_remove(FdbClient *client, char **args, char **command) {
        g_autoptr(GError) error = NULL;

        if (!fdb_client_remove_sync(client, args[0], NULL, &error))
                return fail_error(error);
        return EXIT_SUCCESS;
}

static int verb_open(FdbClient *client, char **args, char **command) {
        g_autoptr(GError) error = NULL;
        g_autofree char *base = NULL;
        FdbAccess access;
        int fd;

        if (!arg_access || g_str_equal(arg_access, "read-only"))
                access = FDB_ACCESS_READ_ONLY;
        else if (g_str_equal(arg_access, "write-only"))
                access = FDB_ACCESS_WRITE_ONLY;
        else if (g_str_equal(arg_access, "read-write"))
                access = FDB_ACCESS_READ_WRITE;
        else
                return fail("--access takes read-only, write-only or read-write, not '%s'.", arg_access);

        fd = fdb_client_open_path_sync(client, args[0], access, FALSE, NULL, &error);
        if (fd < 0)
                return fail_error(error);
        base = g_path_get_basename(args[0]);
        return exec_with_fd(client, fd, base, command);
}

static const GOptionEntry deposit_entries[] = {
        { "fd", 0, 0, G_OPTION_ARG_INT, &arg_fd, "Deposit the open fd N instead of a FILE", "N" },
        DEPOSIT_OPTION_ENTRIES,
};

static const GOptionEntry create_memory_entries[] = {
        DEPOSIT_OPTION_ENTRIES,
};

static const GOptionEntry retrieve_entries[] = {
        { "read-only", 0, 0, G_OPTION_ARG_NONE, &arg_read_only, "Get a read-only reopening", NULL },
        { "reopen", 0, 0, G_OPTION_ARG_NONE, &arg_reopen, "Get a new open file description (own offset)", NULL },
        { "wait", 0, 0, G_OPTION_ARG_STRING, &arg_wait, "Wait up to SEC seconds for NAME to appear", "SEC" },
};

static const GOptionEntry list_entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &arg_json, "Print a JSON array of objects", NULL },
};

static const GOptionEntry open_entries[] = {
        { "access", 0, 0, G_OPTION_ARG_STRING, &arg_access,
          "read-only (the default), write-only or read-write", "MODE" },
};

#define LIFETIME_NOTE                                                                                         \
        "Without --persistent the entry lives as long as fdbrokerctl's bus connection: fdbrokerctl stays "   \
        "running and holding it, and exits once the entry is gone (retrieved with --once, removed, "          \
        "expired) or on SIGINT, SIGTERM or SIGHUP, which removes it."

static const Verb verbs[] = {
        { "deposit", "NAME (FILE | --fd N)", "Store FILE (opened read-only) or fd N under NAME.",
          LIFETIME_NOTE, deposit_entries, G_N_ELEMENTS(deposit_entries), 1, 2, FALSE, verb_deposit },
        { "retrieve", "NAME -- COMMAND [ARG…]",
          "Run COMMAND with the fd of NAME as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=NAME).",
          "fdbrokerctl becomes COMMAND (execvp), so its exit status is COMMAND's. A ':' in NAME is "
          "passed as '_' in LISTEN_FDNAMES, where ':' separates names.",
          retrieve_entries, G_N_ELEMENTS(retrieve_entries), 1, 1, TRUE, verb_retrieve },
        { "cat", "NAME", "Write the bytes of the fd of NAME to standard output.",
          "Files and memfds are read from offset 0 without moving the entry's file offset; pipes, "
          "sockets and devices are read until end of file.",
          NULL, 0, 1, 1, FALSE, verb_cat },
        { "list", "[PREFIX]", "List the entries you own or may retrieve.",
          "--json prints an array of objects with the keys name, kind, size, owner-uid, owner, access, "
          "sealed, lifetime, description, created-usec and expires-usec.",
          list_entries, G_N_ELEMENTS(list_entries), 0, 1, FALSE, verb_list },
        { "remove", "NAME", "Remove the entry NAME.", NULL, NULL, 0, 1, 1, FALSE, verb_remove },
        { "create-memory", "NAME SIZE",
          "Have the broker create a memfd of SIZE bytes (K, M, G, T suffixes) stored under NAME.",
          "The memory starts zeroed; its owner retrieves it to fill it. " LIFETIME_NOTE,
          create_memory_entries, G_N_ELEMENTS(create_memory_entries), 2, 2, FALSE, verb_create_memory },
        { "open", "PATH -- COMMAND [ARG…]",
          "Have the broker open PATH where policy allows it, and run COMMAND with it as fd 3.",
          "LISTEN_FDNAMES is the last component of PATH.", open_entries, G_N_ELEMENTS(open_entries), 1, 1,
          TRUE, verb_open },
};

static void print_help(FILE *f) {
        fprintf(f,
                "Usage: fdbrokerctl [--system | --user | --address ADDRESS] COMMAND [OPTION…]\n\n"
                "Share file descriptors through the fdbroker service.\n\nCommands:\n");
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                fprintf(f, "  %-14s %s\n", verbs[i].name, verbs[i].parameters);
        fprintf(f,
                "\nOptions:\n"
                "  --system           the broker on the system bus (default)\n"
                "  --user             the broker on the session bus\n"
                "  --address ADDRESS  the broker on the bus at ADDRESS\n"
                "  -h, --help         show this help\n"
                "  --version          show the version\n\n"
                "'fdbrokerctl COMMAND --help' shows a command's options; see fdbrokerctl(1).\n");
}

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                if (g_str_equal(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* Fds 0-3 that were not open when we started and now hold /dev/null. */
static unsigned reserved_fds;

/* Takes fds 0-3 if they are free, so that nothing we open lands there:
 * fd 3 is where COMMAND gets its fd, and it must not be our bus socket. */
static void reserve_low_fds(void) {
        for (;;) {
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return;
                if (fd > 3) {
                        (void) close(fd);
                        return;
                }
                reserved_fds |= 1u << fd;
        }
}

static gboolean fd_is_ours(int fd) {
        return fd >= 0 && fd <= 3 && (reserved_fds & (1u << fd));
}

int main(int argc, char *argv[]) {
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(GPtrArray) parse_argv = g_ptr_array_new();
        g_autoptr(GArray) entries = g_array_new(TRUE, TRUE, sizeof(GOptionEntry));
        g_autoptr(FdbClient) client = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *parameters = NULL;
        g_auto(GStrv) positional = NULL;
        char **command = NULL;
        char **args;
        const Verb *verb = NULL;
        int i, parse_argc, n_args;

        setlocale(LC_ALL, "");
        g_set_prgname("fdbrokerctl");
        reserve_low_fds();

        /* Global options may come before the verb: move them after it. */
        g_ptr_array_add(parse_argv, argv[0]);
        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (g_str_equal(a, "-h") || g_str_equal(a, "--help")) {
                        print_help(stdout);
                        return EXIT_SUCCESS;
                }
                if (g_str_equal(a, "--version")) {
                        printf("fdbrokerctl %s\n", FDB_VERSION_STRING);
                        return EXIT_SUCCESS;
                }
                if (a[0] != '-')
                        break;
                if (g_str_equal(a, "--"))
                        return fail("missing command; see --help.");
                g_ptr_array_add(parse_argv, argv[i]);
                if (g_str_equal(a, "--address") && i + 1 < argc)
                        g_ptr_array_add(parse_argv, argv[++i]);
        }
        if (i >= argc)
                return fail("missing command; see --help.");
        verb = find_verb(argv[i]);
        if (!verb)
                return fail("unknown command '%s'; see --help.", argv[i]);
        for (i++; i < argc; i++) {
                if (g_str_equal(argv[i], "--")) {
                        command = &argv[i + 1];
                        break;
                }
                g_ptr_array_add(parse_argv, argv[i]);
        }
        g_ptr_array_add(parse_argv, NULL);

        if (verb->n_entries > 0)
                g_array_append_vals(entries, verb->entries, (guint) verb->n_entries);
        g_array_append_vals(entries, global_entries, G_N_ELEMENTS(global_entries));
        parameters = g_strdup_printf("%s %s", verb->name, verb->parameters);
        context = g_option_context_new(parameters);
        g_option_context_set_summary(context, verb->summary);
        if (verb->description)
                g_option_context_set_description(context, verb->description);
        g_option_context_add_main_entries(context, (const GOptionEntry *) (void *) entries->data, NULL);

        parse_argc = (int) parse_argv->len - 1;
        args = (char **) parse_argv->pdata;
        if (!g_option_context_parse(context, &parse_argc, &args, &error))
                return fail("%s", error->message);
        n_args = parse_argc - 1;
        positional = g_new0(char *, n_args + 1);
        for (i = 0; i < n_args; i++)
                positional[i] = g_strdup(args[i + 1]);
        if (n_args < verb->min_args || n_args > verb->max_args)
                return fail("usage: fdbrokerctl %s %s (see fdbrokerctl %s --help)", verb->name, verb->parameters,
                            verb->name);
        if (verb->takes_command && (!command || !command[0]))
                return fail("%s needs a COMMAND after '--'.", verb->name);
        if (!verb->takes_command && command)
                return fail("%s takes no COMMAND.", verb->name);

        client = connect_client(&error);
        if (!client)
                return fail_error(error);
        return verb->run(client, positional, command);
}
