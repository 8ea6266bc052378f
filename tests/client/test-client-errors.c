/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-client-errors.c: the FDB_ERROR table, without a bus.
 *
 * Every FdbError value has exactly one D-Bus name, every D-Bus error of
 * SPEC §1 has a value, and a reply carrying any of those names reaches the
 * caller as FDB_ERROR with the service's bare message, whichever domain
 * GIO decoded it into first. */
#include <string.h>

#include "fdb-private.h"

static const char *const spec_errors[] = {
        "org.fdbroker.Error.NotFound",
        "org.fdbroker.Error.Exists",
        "org.fdbroker.Error.QuotaExceeded",
        "org.fdbroker.Error.NotSupported",
        "org.fdbroker.Error.Busy",
        "org.freedesktop.DBus.Error.AccessDenied",
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        "org.freedesktop.DBus.Error.InvalidArgs",
};

static void test_table_covers_enum(void) {
        GEnumClass *klass = g_type_class_ref(FDB_TYPE_ERROR);

        g_assert_cmpuint(klass->n_values, ==, _fdb_n_error_entries);
        for (guint i = 0; i < klass->n_values; i++) {
                FdbError code = (FdbError) klass->values[i].value;
                const char *name = fdb_error_to_dbus_name(code);
                FdbError back;

                if (!name)
                        g_error("%s has no D-Bus name", klass->values[i].value_name);
                g_assert_true(fdb_error_from_dbus_name(name, &back));
                g_assert_cmpint(back, ==, code);
                /* no name twice */
                for (guint j = 0; j < i; j++)
                        g_assert_cmpstr(fdb_error_to_dbus_name((FdbError) klass->values[j].value), !=, name);
        }
        g_type_class_unref(klass);
        g_assert_null(fdb_error_to_dbus_name((FdbError) 1000));
}

static void test_spec_errors_covered(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(spec_errors); i++)
                if (!fdb_error_from_dbus_name(spec_errors[i], NULL))
                        g_error("%s has no FdbError", spec_errors[i]);
        g_assert_cmpuint(G_N_ELEMENTS(spec_errors), ==, _fdb_n_error_entries);
        g_assert_false(fdb_error_from_dbus_name("org.freedesktop.DBus.Error.Failed", NULL));
}

/* What a reply with each name becomes, through GIO's own decoding. */
static void test_replies_map(void) {
        (void) fdb_error_quark();
        for (size_t i = 0; i < _fdb_n_error_entries; i++) {
                const GDBusErrorEntry *e = &_fdb_error_entries[i];
                GError *error = g_dbus_error_new_for_dbus_error(e->dbus_error_name, "Entry 'x' is wrong.");

                g_assert_true(g_dbus_error_is_remote_error(error));
                _fdb_error_from_call(&error);
                g_assert_error(error, FDB_ERROR, e->error_code);
                g_assert_cmpstr(error->message, ==, "Entry 'x' is wrong.");
                g_error_free(error);
        }
}

static void test_interactive_authorization_mapping(void) {
        GError *error = (fdb_error_quark(), g_dbus_error_new_for_dbus_error(
                "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", "polkit would ask"));
        g_autofree char *name = NULL;

        /* GIO does not map this name itself: FDB_ERROR registered it. */
        g_assert_error(error, FDB_ERROR, FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        name = g_dbus_error_get_remote_error(error);
        g_assert_cmpstr(name, ==, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired");
        _fdb_error_from_call(&error);
        g_assert_error(error, FDB_ERROR, FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        g_assert_cmpstr(error->message, ==, "polkit would ask");
        g_error_free(error);
}

/* The org.fdbroker names are ours; a GDBus service returning FDB_ERROR
 * sends them. */
static void test_registered_names(void) {
        GError *error = g_error_new_literal(FDB_ERROR, FDB_ERROR_BUSY, "mapped");
        g_autofree char *encoded = g_dbus_error_encode_gerror(error);

        g_assert_cmpstr(encoded, ==, "org.fdbroker.Error.Busy");
        g_error_free(error);
}

static void test_other_errors_untouched(void) {
        GError *remote = g_dbus_error_new_for_dbus_error("org.example.Error.Strange", "odd");
        GError *failed = g_dbus_error_new_for_dbus_error("org.freedesktop.DBus.Error.Failed", "failed");
        GError *local = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
        g_autofree char *name = NULL;

        _fdb_error_from_call(&remote);
        g_assert_error(remote, G_IO_ERROR, G_IO_ERROR_DBUS_ERROR);
        name = g_dbus_error_get_remote_error(remote);
        g_assert_cmpstr(name, ==, "org.example.Error.Strange");
        _fdb_error_from_call(&failed);
        g_assert_error(failed, G_DBUS_ERROR, G_DBUS_ERROR_FAILED);
        _fdb_error_from_call(&local);
        g_assert_error(local, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        _fdb_error_from_call(NULL);
        g_error_free(remote);
        g_error_free(failed);
        g_error_free(local);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/client/errors/table-covers-enum", test_table_covers_enum);
        g_test_add_func("/client/errors/spec-errors-covered", test_spec_errors_covered);
        g_test_add_func("/client/errors/replies-map", test_replies_map);
        g_test_add_func("/client/errors/interactive-authorization", test_interactive_authorization_mapping);
        g_test_add_func("/client/errors/registered-names", test_registered_names);
        g_test_add_func("/client/errors/other-errors-untouched", test_other_errors_untouched);
        return g_test_run();
}
