/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-client-bus.c: libfdbroker-client against the real broker on a private
 * bus (run-with-bus.py starts it and sets FDBROKER_TEST_ADDRESS).
 *
 * Every call is exercised in its sync and async form, every broker error is
 * produced and checked to arrive as its FDB_ERROR code with a message naming
 * the entry, cancellation ends a waiting Retrieve, and 1000 calls with
 * errors mixed in leave the process with the fds it had. Only the public
 * API is used: this program links the shared library like any application. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <dirent.h>

#include <fdbroker/fdbroker.h>

static const char *address;
static FdbClient *client;

/* ---- helpers -------------------------------------------------------------- */

static int make_memfd(const char *data) {
        int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        g_assert_cmpint(fd, >=, 0);
        if (data)
                g_assert_cmpint(write(fd, data, strlen(data)), ==, (ssize_t) strlen(data));
        return fd;
}

/* The bytes of fd from offset 0, as a string. */
static char *read_fd(int fd) {
        char buf[4096];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        g_assert_cmpint(n, >=, 0);
        buf[n] = 0;
        return g_strdup(buf);
}

static guint count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        guint n = 0;

        g_assert_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the DIR's own fd */
}

static void on_result(GObject *source, GAsyncResult *result, gpointer user_data) {
        GAsyncResult **slot = user_data;
        *slot = g_object_ref(result);
}

static GAsyncResult *await_result(GAsyncResult **slot) {
        while (!*slot)
                g_main_context_iteration(NULL, TRUE);
        return *slot;
}

static gboolean exists(const char *name) {
        g_autoptr(GPtrArray) entries = fdb_client_list_sync(client, name, NULL, NULL);
        g_assert_nonnull(entries);
        for (guint i = 0; i < entries->len; i++)
                if (g_str_equal(fdb_entry_info_get_name(entries->pdata[i]), name))
                        return TRUE;
        return FALSE;
}

static void remove_quietly(const char *name) {
        (void) fdb_client_remove_sync(client, name, NULL, NULL);
}

/* The error must be code of FDB_ERROR, and name the entry. */
static void assert_fdb_error(GError *error, FdbError code, const char *mentions) {
        g_assert_nonnull(error);
        if (error->domain != FDB_ERROR || error->code != (int) code)
                g_error("expected %s, got %s %d: %s", fdb_error_to_dbus_name(code), g_quark_to_string(error->domain),
                        error->code, error->message);
        g_assert_false(g_str_has_prefix(error->message, "GDBus.Error:"));
        if (mentions && !strstr(error->message, mentions))
                g_error("message '%s' does not name '%s'", error->message, mentions);
}

/* ---- connecting ------------------------------------------------------------ */

static void test_connect_sync(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) c = fdb_client_new_for_address_sync(address, NULL, &error);
        g_autoptr(FdbClient) c2 = NULL;
        g_autoptr(GPtrArray) entries = NULL;

        g_assert_no_error(error);
        g_assert_true(FDB_IS_CLIENT(c));
        g_assert_true(G_IS_DBUS_CONNECTION(fdb_client_get_connection(c)));
        g_assert_true(FDB_IS_BROKER1(fdb_client_get_proxy(c)));
        entries = fdb_client_list_sync(c, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(entries);

        c2 = fdb_client_new_for_connection_sync(fdb_client_get_connection(c), NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fdb_client_get_connection(c2) == fdb_client_get_connection(c));

        g_assert_false(fdb_client_get_allow_interaction(c));
        fdb_client_set_allow_interaction(c, TRUE);
        g_assert_true(fdb_client_get_allow_interaction(c));
}

static void test_connect_async(void) {
        g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) c = NULL, c2 = NULL;

        fdb_client_new_for_address(address, NULL, on_result, &r1);
        c = fdb_client_new_for_address_finish(await_result(&r1), &error);
        g_assert_no_error(error);
        g_assert_true(FDB_IS_CLIENT(c));

        fdb_client_new_for_connection(fdb_client_get_connection(c), NULL, on_result, &r2);
        c2 = fdb_client_new_for_connection_finish(await_result(&r2), &error);
        g_assert_no_error(error);
        g_assert_true(FDB_IS_CLIENT(c2));
}

static void test_connect_bad_address(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) c = fdb_client_new_for_address_sync("unix:path=/nonexistent/bus", NULL, &error);

        g_assert_null(c);
        g_assert_nonnull(error);
}

/* A client on its own connection owns its connection-lifetime entries:
 * finalizing it closes the connection, and the broker removes them. */
static void test_connection_lifetime(void) {
        g_autoptr(GError) error = NULL;
        FdbClient *c = fdb_client_new_for_address_sync(address, NULL, &error);
        int fd = make_memfd("short-lived");
        gint64 deadline;

        g_assert_no_error(error);
        g_assert_true(fdb_client_deposit_sync(c, "life/conn", fd, NULL, NULL, &error));
        g_assert_no_error(error);
        close(fd);
        g_assert_true(exists("life/conn"));
        g_object_unref(c);

        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (exists("life/conn") && g_get_monotonic_time() < deadline)
                g_usleep(20000);
        g_assert_false(exists("life/conn"));
}

/* ---- deposit, retrieve ----------------------------------------------------- */

static void check_info(FdbEntryInfo *info, const char *name, const char *description, guint64 size) {
        g_assert_cmpstr(fdb_entry_info_get_name(info), ==, name);
        g_assert_cmpstr(fdb_entry_info_get_kind(info), ==, "memfd");
        g_assert_true(fdb_entry_info_has_size(info));
        g_assert_cmpuint(fdb_entry_info_get_size(info), ==, size);
        g_assert_cmpuint(fdb_entry_info_get_owner_uid(info), ==, geteuid());
        g_assert_cmpstr(fdb_entry_info_get_access(info), ==, "read-write");
        g_assert_cmpstr(fdb_entry_info_get_lifetime(info), ==, "connection");
        g_assert_false(fdb_entry_info_get_persistent(info));
        g_assert_cmpstr(fdb_entry_info_get_description(info), ==, description);
        g_assert_cmpuint(fdb_entry_info_get_created_usec(info), >, 0);
        g_assert_cmpuint(fdb_entry_info_get_expires_usec(info), ==, 0);
        g_assert_true(g_variant_is_of_type(fdb_entry_info_get_variant(info), G_VARIANT_TYPE_VARDICT));
}

static void test_deposit_retrieve_sync(void) {
        g_autoptr(FdbDepositOptions) o = fdb_deposit_options_new();
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bytes = NULL;
        int fd = make_memfd("hello, sync"), out;

        fdb_deposit_options_set_description(o, "sync test");
        g_assert_true(fdb_client_deposit_sync(client, "sync/a", fd, o, NULL, &error));
        g_assert_no_error(error);
        /* The fd was borrowed: still ours, still open. */
        g_assert_cmpint(fcntl(fd, F_GETFD), >=, 0);
        close(fd);

        out = fdb_client_retrieve_sync(client, "sync/a", NULL, &info, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(out, >=, 0);
        g_assert_cmpint(fcntl(out, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
        bytes = read_fd(out);
        g_assert_cmpstr(bytes, ==, "hello, sync");
        check_info(info, "sync/a", "sync test", strlen("hello, sync"));
        close(out);

        /* out_info is optional */
        out = fdb_client_retrieve_sync(client, "sync/a", NULL, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(out, >=, 0);
        close(out);

        g_assert_true(fdb_client_remove_sync(client, "sync/a", NULL, &error));
        g_assert_no_error(error);
}

static void test_deposit_retrieve_async(void) {
        g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL, r3 = NULL;
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bytes = NULL;
        int fd = make_memfd("hello, async"), out;

        fdb_client_deposit(client, "async/a", fd, NULL, NULL, on_result, &r1);
        /* Duplicated before fdb_client_deposit() returned: closing is fine. */
        close(fd);
        g_assert_true(fdb_client_deposit_finish(client, await_result(&r1), &error));
        g_assert_no_error(error);

        fdb_client_retrieve(client, "async/a", NULL, NULL, on_result, &r2);
        out = fdb_client_retrieve_finish(client, await_result(&r2), &info, &error);
        g_assert_no_error(error);
        g_assert_cmpint(out, >=, 0);
        bytes = read_fd(out);
        g_assert_cmpstr(bytes, ==, "hello, async");
        check_info(info, "async/a", "", strlen("hello, async"));
        close(out);

        fdb_client_remove(client, "async/a", NULL, on_result, &r3);
        g_assert_true(fdb_client_remove_finish(client, await_result(&r3), &error));
        g_assert_no_error(error);
        g_assert_false(exists("async/a"));
}

static void test_remove(void) {
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        int fd = make_memfd("x");

        g_assert_true(fdb_client_deposit_sync(client, "remove/a", fd, NULL, NULL, &error));
        close(fd);
        g_assert_true(exists("remove/a"));
        g_assert_true(fdb_client_remove_sync(client, "remove/a", NULL, &error));
        g_assert_no_error(error);
        g_assert_false(exists("remove/a"));

        g_assert_false(fdb_client_remove_sync(client, "remove/a", NULL, &error));
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "remove/a");
        g_clear_error(&error);

        fdb_client_remove(client, "remove/a", NULL, on_result, &r);
        g_assert_false(fdb_client_remove_finish(client, await_result(&r), &error));
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "remove/a");
}

/* ---- many ------------------------------------------------------------------ */

static const char *const many_names[] = { "many/b", "many/a", "many/c", NULL };

static void check_many(int *fds, gsize n) {
        g_assert_nonnull(fds);
        g_assert_cmpuint(n, ==, 3);
        for (gsize i = 0; i < n; i++) {
                g_autofree char *bytes = read_fd(fds[i]);
                /* in the order of the names asked for, not of the reply */
                g_assert_cmpstr(bytes, ==, many_names[i]);
                close(fds[i]);
        }
        g_free(fds);
}

static void test_many_sync(void) {
        g_autoptr(GError) error = NULL;
        int fds[3];
        int *out;
        gsize n = 0;

        for (int i = 0; i < 3; i++)
                fds[i] = make_memfd(many_names[i]);
        g_assert_true(fdb_client_deposit_many_sync(client, many_names, fds, 3, NULL, NULL, &error));
        g_assert_no_error(error);
        for (int i = 0; i < 3; i++)
                close(fds[i]);

        out = fdb_client_retrieve_many_sync(client, many_names, NULL, &n, NULL, &error);
        g_assert_no_error(error);
        check_many(out, n);

        /* all or nothing: one missing name, no fds */
        const char *const some_missing[] = { "many/a", "many/missing", NULL };
        out = fdb_client_retrieve_many_sync(client, some_missing, NULL, &n, NULL, &error);
        g_assert_null(out);
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "many/missing");
        g_clear_error(&error);

        /* all or nothing: one name taken, nothing stored */
        const char *const again[] = { "many/new", "many/a", NULL };
        fds[0] = make_memfd("new");
        fds[1] = make_memfd("a");
        g_assert_false(fdb_client_deposit_many_sync(client, again, fds, 2, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_EXISTS, "many/a");
        g_clear_error(&error);
        close(fds[0]);
        close(fds[1]);
        g_assert_false(exists("many/new"));

        for (int i = 0; i < 3; i++)
                remove_quietly(many_names[i]);
}

static void test_many_async(void) {
        g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL;
        g_autoptr(GError) error = NULL;
        int fds[3];
        int *out;
        gsize n = 0;

        for (int i = 0; i < 3; i++)
                fds[i] = make_memfd(many_names[i]);
        fdb_client_deposit_many(client, many_names, fds, 3, NULL, NULL, on_result, &r1);
        for (int i = 0; i < 3; i++)
                close(fds[i]);
        g_assert_true(fdb_client_deposit_many_finish(client, await_result(&r1), &error));
        g_assert_no_error(error);

        fdb_client_retrieve_many(client, many_names, NULL, NULL, on_result, &r2);
        out = fdb_client_retrieve_many_finish(client, await_result(&r2), &n, &error);
        g_assert_no_error(error);
        check_many(out, n);

        for (int i = 0; i < 3; i++)
                remove_quietly(many_names[i]);
}

/* The library refuses what would make dbus-daemon drop the connection, and
 * mismatched arrays, before sending anything. */
static void test_many_local_checks(void) {
        g_autoptr(GError) error = NULL;
        const char *names[18];
        int fds[17];

        for (int i = 0; i < 17; i++) {
                g_autofree char *name = g_strdup_printf("many/x%d", i);
                names[i] = g_intern_string(name);
                fds[i] = make_memfd("x");
        }
        names[17] = NULL;
        g_assert_false(fdb_client_deposit_many_sync(client, names, fds, 17, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "16");
        g_clear_error(&error);

        names[2] = NULL;
        g_assert_false(fdb_client_deposit_many_sync(client, names, fds, 3, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "names");
        g_clear_error(&error);
        for (int i = 0; i < 17; i++)
                close(fds[i]);

        /* the connection still works */
        g_assert_false(exists("many/x0"));
}

/* ---- list ------------------------------------------------------------------ */

static void test_list(void) {
        static const char *const names[] = { "list/b", "list/a", "list/c/d", "listx" };
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GPtrArray) all = NULL, some = NULL;
        g_autoptr(GError) error = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                int fd = make_memfd(names[i]);
                g_assert_true(fdb_client_deposit_sync(client, names[i], fd, NULL, NULL, &error));
                g_assert_no_error(error);
                close(fd);
        }

        all = fdb_client_list_sync(client, "list/", NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(all->len, ==, 3);
        g_assert_cmpstr(fdb_entry_info_get_name(all->pdata[0]), ==, "list/a");
        g_assert_cmpstr(fdb_entry_info_get_name(all->pdata[1]), ==, "list/b");
        g_assert_cmpstr(fdb_entry_info_get_name(all->pdata[2]), ==, "list/c/d");
        g_assert_cmpuint(fdb_entry_info_get_size(all->pdata[0]), ==, strlen("list/a"));

        fdb_client_list(client, "list", NULL, on_result, &r);
        some = fdb_client_list_finish(client, await_result(&r), &error);
        g_assert_no_error(error);
        g_assert_cmpuint(some->len, ==, 4);
        g_assert_cmpstr(fdb_entry_info_get_name(some->pdata[3]), ==, "listx");

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                remove_quietly(names[i]);
}

/* ---- create-memory ----------------------------------------------------------- */

static void check_memory(int fd, const char *name) {
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bytes = NULL;
        int out;

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(lseek(fd, 0, SEEK_END), ==, 8192);
        g_assert_cmpint(fcntl(fd, F_GETFL) & O_ACCMODE, ==, O_RDWR);
        g_assert_cmpint(pwrite(fd, "filled", 6, 0), ==, 6);

        out = fdb_client_retrieve_sync(client, name, NULL, &info, NULL, &error);
        g_assert_no_error(error);
        bytes = read_fd(out);
        g_assert_cmpstr(bytes, ==, "filled");
        g_assert_cmpstr(fdb_entry_info_get_kind(info), ==, "memfd");
        g_assert_cmpuint(fdb_entry_info_get_size(info), ==, 8192);
        close(out);
        close(fd);
        remove_quietly(name);
}

static void test_create_memory(void) {
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        int fd;

        fd = fdb_client_create_memory_sync(client, "mem/sync", 8192, NULL, NULL, &error);
        g_assert_no_error(error);
        check_memory(fd, "mem/sync");

        fdb_client_create_memory(client, "mem/async", 8192, NULL, NULL, on_result, &r);
        fd = fdb_client_create_memory_finish(client, await_result(&r), &error);
        g_assert_no_error(error);
        check_memory(fd, "mem/async");

        fd = fdb_client_create_memory_sync(client, "mem/zero", 0, NULL, NULL, &error);
        g_assert_cmpint(fd, ==, -1);
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "mem/zero");
}

/* ---- open-path ---------------------------------------------------------------- */

static void test_open_path(void) {
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        int fd;

        /* No policy grants open-path on the test bus, and there is no polkit. */
        fd = fdb_client_open_path_sync(client, "/etc/hostname", FDB_ACCESS_READ_ONLY, FALSE, NULL, &error);
        g_assert_cmpint(fd, ==, -1);
        assert_fdb_error(error, FDB_ERROR_ACCESS_DENIED, "/etc/hostname");
        g_clear_error(&error);

        fdb_client_open_path(client, "/etc/hostname", FDB_ACCESS_READ_WRITE, TRUE, NULL, on_result, &r);
        fd = fdb_client_open_path_finish(client, await_result(&r), &error);
        g_assert_cmpint(fd, ==, -1);
        assert_fdb_error(error, FDB_ERROR_ACCESS_DENIED, "/etc/hostname");
        g_clear_error(&error);

        fd = fdb_client_open_path_sync(client, "etc/../hostname", FDB_ACCESS_READ_ONLY, FALSE, NULL, &error);
        g_assert_cmpint(fd, ==, -1);
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "etc/../hostname");
}

/* ---- options ----------------------------------------------------------------- */

static void test_options_objects(void) {
        g_autoptr(FdbDepositOptions) d = fdb_deposit_options_new();
        g_autoptr(FdbRetrieveOptions) r = fdb_retrieve_options_new();
        g_autoptr(GVariant) empty = fdb_deposit_options_to_variant(NULL);
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GVariant) rv = NULL;
        const char *s;
        guint64 t;
        gboolean b;

        g_assert_cmpuint(g_variant_n_children(empty), ==, 0);
        g_assert_cmpuint(g_strv_length((char **) fdb_deposit_options_get_allow(d)), ==, 0);

        fdb_deposit_options_add_allow(d, "everyone");
        fdb_deposit_options_add_allow(d, "uid:1");
        fdb_deposit_options_set_read_only(d, TRUE);
        fdb_deposit_options_set_seal(d, TRUE);
        fdb_deposit_options_set_persistent(d, TRUE);
        fdb_deposit_options_set_once(d, TRUE);
        fdb_deposit_options_set_replace(d, TRUE);
        fdb_deposit_options_set_timeout_usec(d, 5);
        fdb_deposit_options_set_description(d, "d");
        v = fdb_deposit_options_to_variant(d);
        g_assert_cmpuint(g_variant_n_children(v), ==, 8);
        g_assert_true(g_variant_lookup(v, "access", "&s", &s) && g_str_equal(s, "read-only"));
        g_assert_true(g_variant_lookup(v, "lifetime", "&s", &s) && g_str_equal(s, "persistent"));
        g_assert_true(g_variant_lookup(v, "timeout-usec", "t", &t) && t == 5);
        g_assert_true(g_variant_lookup(v, "seal", "b", &b) && b);
        g_assert_cmpuint(g_strv_length((char **) fdb_deposit_options_get_allow(d)), ==, 2);

        fdb_retrieve_options_set_read_only(r, TRUE);
        fdb_retrieve_options_set_reopen(r, TRUE);
        fdb_retrieve_options_set_wait_usec(r, 7);
        rv = fdb_retrieve_options_to_variant(r);
        g_assert_cmpuint(g_variant_n_children(rv), ==, 3);
        g_assert_true(g_variant_lookup(rv, "wait-usec", "t", &t) && t == 7);
}

static void test_option_read_only_reopen(void) {
        g_autoptr(FdbRetrieveOptions) ro = fdb_retrieve_options_new();
        g_autoptr(FdbRetrieveOptions) reopen = fdb_retrieve_options_new();
        g_autoptr(FdbDepositOptions) d = fdb_deposit_options_new();
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        int fd = make_memfd("0123456789"), a, b;

        fdb_retrieve_options_set_read_only(ro, TRUE);
        fdb_retrieve_options_set_reopen(reopen, TRUE);
        g_assert_true(fdb_client_deposit_sync(client, "opt/rw", fd, NULL, NULL, &error));
        g_assert_no_error(error);

        a = fdb_client_retrieve_sync(client, "opt/rw", ro, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(fcntl(a, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        close(a);

        /* reopen: an offset of its own */
        lseek(fd, 2, SEEK_SET);
        a = fdb_client_retrieve_sync(client, "opt/rw", reopen, NULL, NULL, &error);
        g_assert_no_error(error);
        b = fdb_client_retrieve_sync(client, "opt/rw", NULL, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(lseek(a, 0, SEEK_CUR), ==, 0);
        g_assert_cmpint(lseek(b, 0, SEEK_CUR), ==, 2);
        close(a);
        close(b);

        /* deposit read-only: the broker keeps a read-only reopening */
        fdb_deposit_options_set_read_only(d, TRUE);
        fdb_deposit_options_set_persistent(d, TRUE);
        g_assert_true(fdb_client_deposit_sync(client, "opt/ro", fd, d, NULL, &error));
        g_assert_no_error(error);
        a = fdb_client_retrieve_sync(client, "opt/ro", NULL, &info, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(fcntl(a, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        g_assert_cmpstr(fdb_entry_info_get_access(info), ==, "read-only");
        g_assert_cmpstr(fdb_entry_info_get_lifetime(info), ==, "persistent");
        g_assert_true(fdb_entry_info_get_persistent(info));
        close(a);
        close(fd);
        remove_quietly("opt/rw");
        remove_quietly("opt/ro");
}

static void test_option_seal_once_replace_timeout(void) {
        g_autoptr(FdbDepositOptions) seal = fdb_deposit_options_new();
        g_autoptr(FdbDepositOptions) once = fdb_deposit_options_new();
        g_autoptr(FdbDepositOptions) replace = fdb_deposit_options_new();
        g_autoptr(FdbDepositOptions) timeout = fdb_deposit_options_new();
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bytes = NULL;
        int fd = make_memfd("sealed"), out;
        gint64 deadline;

        fdb_deposit_options_set_seal(seal, TRUE);
        g_assert_true(fdb_client_deposit_sync(client, "opt/sealed", fd, seal, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), ==,
                        F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
        out = fdb_client_retrieve_sync(client, "opt/sealed", NULL, &info, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fdb_entry_info_get_sealed(info));
        close(out);
        close(fd);

        fdb_deposit_options_set_once(once, TRUE);
        fd = make_memfd("once");
        g_assert_true(fdb_client_deposit_sync(client, "opt/once", fd, once, NULL, &error));
        close(fd);
        out = fdb_client_retrieve_sync(client, "opt/once", NULL, NULL, NULL, &error);
        g_assert_no_error(error);
        close(out);
        out = fdb_client_retrieve_sync(client, "opt/once", NULL, NULL, NULL, &error);
        g_assert_cmpint(out, ==, -1);
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "opt/once");
        g_clear_error(&error);

        fdb_deposit_options_set_replace(replace, TRUE);
        fd = make_memfd("second");
        g_assert_true(fdb_client_deposit_sync(client, "opt/sealed", fd, replace, NULL, &error));
        g_assert_no_error(error);
        close(fd);
        out = fdb_client_retrieve_sync(client, "opt/sealed", NULL, NULL, NULL, &error);
        bytes = read_fd(out);
        g_assert_cmpstr(bytes, ==, "second");
        close(out);
        remove_quietly("opt/sealed");

        fdb_deposit_options_set_timeout_usec(timeout, 200000);
        fd = make_memfd("brief");
        g_assert_true(fdb_client_deposit_sync(client, "opt/brief", fd, timeout, NULL, &error));
        g_assert_no_error(error);
        close(fd);
        g_clear_pointer(&info, fdb_entry_info_unref);
        out = fdb_client_retrieve_sync(client, "opt/brief", NULL, &info, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(fdb_entry_info_get_expires_usec(info), >, fdb_entry_info_get_created_usec(info));
        close(out);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (exists("opt/brief") && g_get_monotonic_time() < deadline)
                g_usleep(20000);
        g_assert_false(exists("opt/brief"));
}

/* ---- waiting and cancelling ------------------------------------------------- */

static gboolean deposit_later(gpointer user_data) {
        int fd = make_memfd("late");
        g_autoptr(GError) error = NULL;

        g_assert_true(fdb_client_deposit_sync(client, user_data, fd, NULL, NULL, &error));
        g_assert_no_error(error);
        close(fd);
        return G_SOURCE_REMOVE;
}

static void test_wait_async(void) {
        g_autoptr(FdbRetrieveOptions) o = fdb_retrieve_options_new();
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *bytes = NULL;
        int out;

        fdb_retrieve_options_set_wait_usec(o, 30 * G_USEC_PER_SEC);
        fdb_client_retrieve(client, "wait/late", o, NULL, on_result, &r);
        g_timeout_add(200, deposit_later, (gpointer) "wait/late");
        out = fdb_client_retrieve_finish(client, await_result(&r), NULL, &error);
        g_assert_no_error(error);
        bytes = read_fd(out);
        g_assert_cmpstr(bytes, ==, "late");
        close(out);
        remove_quietly("wait/late");
}

static gboolean cancel_later(gpointer user_data) {
        g_cancellable_cancel(user_data);
        return G_SOURCE_REMOVE;
}

static void test_cancel_async(void) {
        g_autoptr(FdbRetrieveOptions) o = fdb_retrieve_options_new();
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        gint64 start = g_get_monotonic_time();
        int out;

        fdb_retrieve_options_set_wait_usec(o, 5 * G_USEC_PER_SEC);
        fdb_client_retrieve(client, "wait/never-async", o, cancellable, on_result, &r);
        g_timeout_add(100, cancel_later, cancellable);
        out = fdb_client_retrieve_finish(client, await_result(&r), NULL, &error);
        g_assert_cmpint(out, ==, -1);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        /* ended by the cancellable, not by the broker's wait */
        g_assert_cmpint(g_get_monotonic_time() - start, <, 4 * G_USEC_PER_SEC);
}

static gpointer cancel_thread(gpointer user_data) {
        g_usleep(100000);
        g_cancellable_cancel(user_data);
        return NULL;
}

static void test_cancel_sync(void) {
        g_autoptr(FdbRetrieveOptions) o = fdb_retrieve_options_new();
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(GError) error = NULL;
        gint64 start = g_get_monotonic_time();
        GThread *t;
        int out;

        fdb_retrieve_options_set_wait_usec(o, 5 * G_USEC_PER_SEC);
        t = g_thread_new("cancel", cancel_thread, cancellable);
        out = fdb_client_retrieve_sync(client, "wait/never-sync", o, NULL, cancellable, &error);
        g_thread_join(t);
        g_assert_cmpint(out, ==, -1);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(g_get_monotonic_time() - start, <, 4 * G_USEC_PER_SEC);
}

/* A wait the broker ends: NotFound, after the wait. */
static void test_wait_times_out(void) {
        g_autoptr(FdbRetrieveOptions) o = fdb_retrieve_options_new();
        g_autoptr(GError) error = NULL;
        gint64 start = g_get_monotonic_time();
        int out;

        fdb_retrieve_options_set_wait_usec(o, 300000);
        out = fdb_client_retrieve_sync(client, "wait/timeout", o, NULL, NULL, &error);
        g_assert_cmpint(out, ==, -1);
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "wait/timeout");
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 250000);
}

/* ---- every error ------------------------------------------------------------ */

static void test_error_not_found(void) {
        g_autoptr(GError) error = NULL;
        int out = fdb_client_retrieve_sync(client, "err/missing", NULL, NULL, NULL, &error);

        g_assert_cmpint(out, ==, -1);
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "err/missing");
}

static void test_error_exists(void) {
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        int fd = make_memfd("x");

        g_assert_true(fdb_client_deposit_sync(client, "err/taken", fd, NULL, NULL, &error));
        g_assert_false(fdb_client_deposit_sync(client, "err/taken", fd, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_EXISTS, "err/taken");
        g_clear_error(&error);

        fdb_client_deposit(client, "err/taken", fd, NULL, NULL, on_result, &r);
        g_assert_false(fdb_client_deposit_finish(client, await_result(&r), &error));
        assert_fdb_error(error, FDB_ERROR_EXISTS, "err/taken");
        close(fd);
        remove_quietly("err/taken");
}

static void test_error_quota(void) {
        g_autoptr(GError) error = NULL;
        /* Memfds are sparse: 700 MiB twice costs nothing, but exceeds the
         * broker's 1 GiB MaxMemorySize. */
        int a = fdb_client_create_memory_sync(client, "err/big1", 700 << 20, NULL, NULL, &error), b;

        g_assert_no_error(error);
        b = fdb_client_create_memory_sync(client, "err/big2", 700 << 20, NULL, NULL, &error);
        g_assert_cmpint(b, ==, -1);
        assert_fdb_error(error, FDB_ERROR_QUOTA_EXCEEDED, "err/big2");
        close(a);
        remove_quietly("err/big1");
        g_assert_false(exists("err/big2"));
}

static void test_error_not_supported(void) {
        g_autoptr(FdbDepositOptions) seal = fdb_deposit_options_new();
        g_autoptr(GError) error = NULL;
        int p[2];

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        fdb_deposit_options_set_seal(seal, TRUE);
        g_assert_false(fdb_client_deposit_sync(client, "err/pipe", p[0], seal, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_NOT_SUPPORTED, "err/pipe");
        close(p[0]);
        close(p[1]);
        g_assert_false(exists("err/pipe"));
}

static void test_error_busy(void) {
        g_autoptr(FdbDepositOptions) seal = fdb_deposit_options_new();
        g_autoptr(GError) error = NULL;
        int fd = make_memfd(NULL);
        void *map;

        g_assert_cmpint(ftruncate(fd, 4096), ==, 0);
        map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        g_assert_true(map != MAP_FAILED);
        fdb_deposit_options_set_seal(seal, TRUE);
        g_assert_false(fdb_client_deposit_sync(client, "err/mapped", fd, seal, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_BUSY, "err/mapped");
        munmap(map, 4096);
        close(fd);
        g_assert_false(exists("err/mapped"));
}

static void test_error_access_denied(void) {
        g_autoptr(FdbRetrieveOptions) ro = fdb_retrieve_options_new();
        g_autoptr(GError) error = NULL;
        int p[2], out;

        /* read-only of an entry stored write-only would grant read access */
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_true(fdb_client_deposit_sync(client, "err/wronly", p[1], NULL, NULL, &error));
        g_assert_no_error(error);
        fdb_retrieve_options_set_read_only(ro, TRUE);
        out = fdb_client_retrieve_sync(client, "err/wronly", ro, NULL, NULL, &error);
        g_assert_cmpint(out, ==, -1);
        assert_fdb_error(error, FDB_ERROR_ACCESS_DENIED, "err/wronly");
        close(p[0]);
        close(p[1]);
        remove_quietly("err/wronly");
}

static void test_error_invalid_args(void) {
        g_autoptr(GError) error = NULL;
        int fd = make_memfd("x"), out;

        g_assert_false(fdb_client_deposit_sync(client, "err/../x", fd, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "err/../x");
        g_clear_error(&error);

        out = fdb_client_retrieve_sync(client, "/leading", NULL, NULL, NULL, &error);
        g_assert_cmpint(out, ==, -1);
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "/leading");
        g_clear_error(&error);

        /* caught by the library: no such fd */
        g_assert_false(fdb_client_deposit_sync(client, "err/badfd", 1000000, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "err/badfd");
        g_clear_error(&error);
        g_assert_false(fdb_client_deposit_sync(client, "err/negfd", -1, NULL, NULL, &error));
        assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "err/negfd");
        close(fd);
}

/* ---- no fd leaks ------------------------------------------------------------- */

static const char *const leak_names[] = { "leak/a", "leak/b", NULL };
static const char *const leak_missing[] = { "leak/a", "leak/none", NULL };

/* Eleven calls, four of them failing, two with fds in the failed call. */
static guint leak_round(void) {
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL, e6 = NULL, e7 = NULL;
        g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL;
        g_autoptr(GPtrArray) list = NULL;
        int fds[2] = { make_memfd("a"), make_memfd("b") };
        int *many;
        gsize n;
        int out;

        g_assert_true(fdb_client_deposit_many_sync(client, leak_names, fds, 2, NULL, NULL, &e1));
        /* Exists: an error reply to a call that carried an fd */
        g_assert_false(fdb_client_deposit_sync(client, "leak/a", fds[0], NULL, NULL, &e2));
        close(fds[0]);
        close(fds[1]);
        out = fdb_client_retrieve_sync(client, "leak/a", NULL, NULL, NULL, &e3);
        g_assert_cmpint(out, >=, 0);
        close(out);
        /* NotFound, sync and async */
        g_assert_cmpint(fdb_client_retrieve_sync(client, "leak/none", NULL, NULL, NULL, &e4), ==, -1);
        fdb_client_retrieve(client, "leak/none", NULL, NULL, on_result, &r1);
        g_assert_cmpint(fdb_client_retrieve_finish(client, await_result(&r1), NULL, &e5), ==, -1);
        /* RetrieveMany: one fine, one all-or-nothing failure */
        many = fdb_client_retrieve_many_sync(client, leak_names, NULL, &n, NULL, &e6);
        g_assert_nonnull(many);
        for (gsize i = 0; i < n; i++)
                close(many[i]);
        g_free(many);
        g_assert_null(fdb_client_retrieve_many_sync(client, leak_missing, NULL, &n, NULL, &e7));
        /* an async retrieve whose fd is never collected: the task closes it */
        fdb_client_retrieve(client, "leak/b", NULL, NULL, on_result, &r2);
        await_result(&r2);
        list = fdb_client_list_sync(client, "leak/", NULL, NULL);
        g_assert_cmpuint(list->len, ==, 2);
        g_assert_true(fdb_client_remove_sync(client, "leak/a", NULL, NULL));
        g_assert_true(fdb_client_remove_sync(client, "leak/b", NULL, NULL));
        return 11;
}

static char *describe_fds(void) {
        g_autoptr(GString) s = g_string_new(NULL);
        g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = g_strconcat("/proc/self/fd/", n, NULL);
                g_autofree char *target = g_file_read_link(p, NULL);
                g_string_append_printf(s, " %s=%s", n, target ? target : "?");
        }
        return g_string_free(g_steal_pointer(&s), FALSE);
}

/* A sync GDBus call runs in a main context of its own, whose wakeup
 * eventfd goes away when GDBus's worker thread drops its last reference,
 * a moment after the call returned. So the count is read until it reaches
 * target (or, for G_MAXUINT, for its lowest over a short while); a leaked
 * fd stays and still fails the test. */
static guint settled_fd_count(guint target) {
        gint64 deadline = g_get_monotonic_time() + (target == G_MAXUINT ? 300000 : 5 * G_USEC_PER_SEC);
        guint n = G_MAXUINT;

        do {
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                n = MIN(n, count_fds());
                if (n <= target && target != G_MAXUINT)
                        break;
                g_usleep(10000);
        } while (g_get_monotonic_time() < deadline);
        return n;
}

static void test_no_fd_leak(void) {
        g_autofree char *fds_before = NULL, *fds_after = NULL;
        guint before, after, calls = 0;

        /* A few rounds first: GLib and GDBus open some fds once, on first
         * use (worker wakeups, the thread pool), and keep them. */
        for (int i = 0; i < 3; i++)
                leak_round();
        before = settled_fd_count(G_MAXUINT);
        fds_before = describe_fds();

        while (calls < 1000)
                calls += leak_round();
        after = settled_fd_count(before);
        fds_after = describe_fds();
        g_test_message("%u calls; fds before %u, after %u", calls, before, after);
        if (after != before)
                g_test_message("before:%s\nafter:%s", fds_before, fds_after);
        g_assert_cmpuint(after, ==, before);
}

/* ---- watching ----------------------------------------------------------------- */

typedef struct Heard {
        GPtrArray *events;      /* "added NAME DESCRIPTION SIZE" or "removed NAME REASON" */
} Heard;

static void on_entry_added(FdbClient *c, const char *name, FdbEntryInfo *info, gpointer user_data) {
        Heard *h = user_data;

        g_assert_cmpstr(name, ==, fdb_entry_info_get_name(info));
        g_ptr_array_add(h->events, g_strdup_printf("added %s %s %" G_GUINT64_FORMAT, name,
                                                   fdb_entry_info_get_description(info),
                                                   fdb_entry_info_get_size(info)));
}

static void on_entry_removed(FdbClient *c, const char *name, const char *reason, gpointer user_data) {
        Heard *h = user_data;

        g_ptr_array_add(h->events, g_strdup_printf("removed %s %s", name, reason));
}

/* Everything heard so far: the broker sends a watcher's signals before it
 * answers any later call, so after a round trip on the watcher's connection
 * they are queued for this main context. */
static char *heard(FdbClient *watcher, Heard *h) {
        g_autoptr(GError) error = NULL;
        g_autofree char *joined = NULL;

        g_assert_nonnull(fdb_client_list_sync(watcher, "none/", NULL, &error));
        g_assert_no_error(error);
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_ptr_array_add(h->events, NULL);
        joined = g_strjoinv("; ", (char **) h->events->pdata);
        g_ptr_array_set_size(h->events, 0);
        return g_steal_pointer(&joined);
}

static void deposit_described(const char *name, const char *description) {
        g_autoptr(FdbDepositOptions) o = fdb_deposit_options_new();
        g_autoptr(GError) error = NULL;
        int fd = make_memfd("watched");

        fdb_deposit_options_set_description(o, description);
        g_assert_true(fdb_client_deposit_sync(client, name, fd, o, NULL, &error));
        g_assert_no_error(error);
        close(fd);
}

static void test_watch_sync(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) w = fdb_client_new_for_address_sync(address, NULL, &error);
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);
        Heard h = { events };
        const char *const patterns[] = { "watch/*", "other/deep/**", NULL };
        g_autofree char *got1 = NULL, *got2 = NULL, *got3 = NULL;

        g_assert_no_error(error);
        g_signal_connect(w, "entry-added", G_CALLBACK(on_entry_added), &h);
        g_signal_connect(w, "entry-removed", G_CALLBACK(on_entry_removed), &h);
        g_assert_true(fdb_client_watch_sync(w, patterns, NULL, &error));
        g_assert_no_error(error);

        deposit_described("watch/a", "first");
        deposit_described("watch/no/match", "deeper than *");
        deposit_described("other/deep/x/y", "below");
        g_assert_true(fdb_client_remove_sync(client, "watch/a", NULL, &error));
        got1 = heard(w, &h);
        g_assert_cmpstr(got1, ==, "added watch/a first 7; added other/deep/x/y below 7; removed watch/a removed");

        g_assert_true(fdb_client_unwatch_sync(w, NULL, &error));
        g_assert_no_error(error);
        deposit_described("watch/b", "after unwatch");
        got2 = heard(w, &h);
        g_assert_cmpstr(got2, ==, "");

        /* Unwatch without a watch is fine; a bad pattern is InvalidArgs
         * naming it and leaves no watch behind. */
        g_assert_true(fdb_client_unwatch_sync(w, NULL, &error));
        g_assert_no_error(error);
        {
                const char *const bad[] = { "watch/*", "bad//pattern", NULL };
                g_assert_false(fdb_client_watch_sync(w, bad, NULL, &error));
                assert_fdb_error(error, FDB_ERROR_INVALID_ARGS, "bad//pattern");
                g_clear_error(&error);
        }
        remove_quietly("watch/b");
        got3 = heard(w, &h);
        g_assert_cmpstr(got3, ==, "");
        remove_quietly("watch/no/match");
        remove_quietly("other/deep/x/y");
}

static void test_watch_async(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) w = fdb_client_new_for_address_sync(address, NULL, &error);
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL;
        Heard h = { events };
        const char *const patterns[] = { "**", NULL };
        g_autofree char *got = NULL;
        g_autoptr(FdbDepositOptions) once = fdb_deposit_options_new();
        int fd, out;

        g_assert_no_error(error);
        g_signal_connect(w, "entry-added", G_CALLBACK(on_entry_added), &h);
        g_signal_connect(w, "entry-removed", G_CALLBACK(on_entry_removed), &h);
        fdb_client_watch(w, patterns, NULL, on_result, &r1);
        g_assert_true(fdb_client_watch_finish(w, await_result(&r1), &error));
        g_assert_no_error(error);

        fdb_deposit_options_set_once(once, TRUE);
        fd = make_memfd("hand-off");
        g_assert_true(fdb_client_deposit_sync(client, "watch/once", fd, once, NULL, &error));
        close(fd);
        out = fdb_client_retrieve_sync(client, "watch/once", NULL, NULL, NULL, &error);
        g_assert_no_error(error);
        close(out);
        got = heard(w, &h);
        g_assert_cmpstr(got, ==, "added watch/once  8; removed watch/once retrieved-once");

        fdb_client_unwatch(w, NULL, on_result, &r2);
        g_assert_true(fdb_client_unwatch_finish(w, await_result(&r2), &error));
        g_assert_no_error(error);
}

/* ---- direct connections (SPEC §5) ------------------------------------------- */

static const char *direct_socket;

/* c deposits, the bus client sees the entry owned by us, and it ends when c
 * (its own direct connection) is finalized. */
static void check_direct_client(FdbClient *c, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbEntryInfo) info = NULL;
        g_autofree char *got = NULL;
        gint64 deadline;
        int fd = make_memfd("over a direct connection"), out;

        g_assert_null(g_dbus_connection_get_unique_name(fdb_client_get_connection(c)));
        g_assert_true(fdb_client_deposit_sync(c, name, fd, NULL, NULL, &error));
        g_assert_no_error(error);
        close(fd);
        out = fdb_client_retrieve_sync(client, name, NULL, &info, NULL, &error);
        g_assert_no_error(error);
        got = read_fd(out);
        close(out);
        g_assert_cmpstr(got, ==, "over a direct connection");
        g_assert_cmpuint(fdb_entry_info_get_owner_uid(info), ==, geteuid());
        g_assert_false(fdb_client_retrieve_sync(c, "direct/missing", NULL, NULL, NULL, &error) >= 0);
        assert_fdb_error(error, FDB_ERROR_NOT_FOUND, "direct/missing");
        g_object_unref(c);

        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (exists(name) && g_get_monotonic_time() < deadline)
                g_usleep(20000);
        g_assert_false(exists(name));
}

static void test_direct_socket_sync(void) {
        g_autoptr(GError) error = NULL;
        FdbClient *c;

        if (!direct_socket) {
                g_test_skip("FDBROKER_TEST_DIRECT_SOCKET is not set");
                return;
        }
        c = fdb_client_new_direct_sync(direct_socket, NULL, &error);
        g_assert_no_error(error);
        check_direct_client(c, "direct/sync");
}

static void test_direct_socket_async(void) {
        g_autoptr(GAsyncResult) r = NULL;
        g_autoptr(GError) error = NULL;
        FdbClient *c;

        if (!direct_socket) {
                g_test_skip("FDBROKER_TEST_DIRECT_SOCKET is not set");
                return;
        }
        fdb_client_new_direct(direct_socket, NULL, on_result, &r);
        c = fdb_client_new_direct_finish(await_result(&r), &error);
        g_assert_no_error(error);
        check_direct_client(c, "direct/async");
}

static void test_direct_bad_path(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(FdbClient) c = fdb_client_new_direct_sync("/nonexistent/fdbroker-socket", NULL, &error);

        g_assert_null(c);
        g_assert_nonnull(error);
}

static void test_open_connection(void) {
        g_autoptr(GError) error = NULL;
        FdbClient *c = fdb_client_open_connection_sync(client, NULL, &error);

        g_assert_no_error(error);
        g_assert_true(FDB_IS_CLIENT(c));
        check_direct_client(c, "direct/open-connection");
}

static void test_open_connection_quota(void) {
        g_autoptr(GError) error = NULL;
        FdbClient *cs[16];
        FdbClient *extra;

        for (guint i = 0; i < G_N_ELEMENTS(cs); i++) {
                cs[i] = fdb_client_open_connection_sync(client, NULL, &error);
                g_assert_no_error(error);
        }
        extra = fdb_client_open_connection_sync(client, NULL, &error);
        g_assert_null(extra);
        assert_fdb_error(error, FDB_ERROR_QUOTA_EXCEEDED, "16");
        for (guint i = 0; i < G_N_ELEMENTS(cs); i++)
                g_object_unref(cs[i]);
}

int main(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        int r;

        g_test_init(&argc, &argv, NULL);
        address = g_getenv("FDBROKER_TEST_ADDRESS");
        if (!address) {
                g_test_skip("FDBROKER_TEST_ADDRESS is not set: run through run-with-bus.py");
                return g_test_run();
        }
        client = fdb_client_new_for_address_sync(address, NULL, &error);
        g_assert_no_error(error);

        g_test_add_func("/client/connect/sync", test_connect_sync);
        g_test_add_func("/client/connect/async", test_connect_async);
        g_test_add_func("/client/connect/bad-address", test_connect_bad_address);
        g_test_add_func("/client/connect/connection-lifetime", test_connection_lifetime);
        g_test_add_func("/client/deposit-retrieve/sync", test_deposit_retrieve_sync);
        g_test_add_func("/client/deposit-retrieve/async", test_deposit_retrieve_async);
        g_test_add_func("/client/remove", test_remove);
        g_test_add_func("/client/many/sync", test_many_sync);
        g_test_add_func("/client/many/async", test_many_async);
        g_test_add_func("/client/many/local-checks", test_many_local_checks);
        g_test_add_func("/client/list", test_list);
        g_test_add_func("/client/create-memory", test_create_memory);
        g_test_add_func("/client/open-path", test_open_path);
        g_test_add_func("/client/options/objects", test_options_objects);
        g_test_add_func("/client/options/read-only-reopen", test_option_read_only_reopen);
        g_test_add_func("/client/options/seal-once-replace-timeout", test_option_seal_once_replace_timeout);
        g_test_add_func("/client/wait/async", test_wait_async);
        g_test_add_func("/client/wait/times-out", test_wait_times_out);
        g_test_add_func("/client/cancel/async", test_cancel_async);
        g_test_add_func("/client/cancel/sync", test_cancel_sync);
        g_test_add_func("/client/error/not-found", test_error_not_found);
        g_test_add_func("/client/error/exists", test_error_exists);
        g_test_add_func("/client/error/quota-exceeded", test_error_quota);
        g_test_add_func("/client/error/not-supported", test_error_not_supported);
        g_test_add_func("/client/error/busy", test_error_busy);
        g_test_add_func("/client/error/access-denied", test_error_access_denied);
        g_test_add_func("/client/error/invalid-args", test_error_invalid_args);
        g_test_add_func("/client/no-fd-leak", test_no_fd_leak);
        g_test_add_func("/client/watch/sync", test_watch_sync);
        g_test_add_func("/client/watch/async", test_watch_async);
        direct_socket = g_getenv("FDBROKER_TEST_DIRECT_SOCKET");
        g_test_add_func("/client/direct/socket-sync", test_direct_socket_sync);
        g_test_add_func("/client/direct/socket-async", test_direct_socket_async);
        g_test_add_func("/client/direct/bad-path", test_direct_bad_path);
        g_test_add_func("/client/direct/open-connection", test_open_connection);
        g_test_add_func("/client/direct/open-connection-quota", test_open_connection_quota);

        r = g_test_run();
        g_object_unref(client);
        return r;
}
