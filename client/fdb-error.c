/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-error.c: the FDB_ERROR domain and its D-Bus error names.
 *
 * GIO already maps org.freedesktop.DBus.Error.AccessDenied and InvalidArgs
 * to G_DBUS_ERROR, and a D-Bus name can belong to one domain only, so
 * registering the table cannot make every reply arrive as FDB_ERROR by
 * itself (and g_dbus_error_register_error_domain() warns on each name that
 * is taken). The table is registered name by name, taken names skipped, and
 * _fdb_error_from_call() translates every reply by name: callers see
 * FDB_ERROR for all of SPEC §1 whatever GIO registered first. */
#include "fdb-private.h"

#include <string.h>

#include "protocol.h"

const GDBusErrorEntry _fdb_error_entries[] = {
        { FDB_ERROR_NOT_FOUND, FDB_ERROR_NAME_NOT_FOUND },
        { FDB_ERROR_EXISTS, FDB_ERROR_NAME_EXISTS },
        { FDB_ERROR_QUOTA_EXCEEDED, FDB_ERROR_NAME_QUOTA_EXCEEDED },
        { FDB_ERROR_NOT_SUPPORTED, FDB_ERROR_NAME_NOT_SUPPORTED },
        { FDB_ERROR_BUSY, FDB_ERROR_NAME_BUSY },
        { FDB_ERROR_ACCESS_DENIED, FDB_ERROR_NAME_ACCESS_DENIED },
        { FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, FDB_ERROR_NAME_INTERACTIVE_AUTHORIZATION_REQUIRED },
        { FDB_ERROR_INVALID_ARGS, FDB_ERROR_NAME_INVALID_ARGS },
};
const gsize _fdb_n_error_entries = G_N_ELEMENTS(_fdb_error_entries);

/**
 * fdb_error_quark:
 *
 * The #GQuark of %FDB_ERROR ("fdb-error-quark"). The first call associates
 * the org.fdbroker.Error.* names (and InteractiveAuthorizationRequired,
 * which GIO does not map) with it, so that g_dbus_error_get_remote_error()
 * and GDBus services that return %FDB_ERROR use the right names.
 *
 * Returns: the error domain
 */
GQuark fdb_error_quark(void) {
        static gsize quark = 0;

        if (g_once_init_enter(&quark)) {
                GQuark q = g_quark_from_static_string("fdb-error-quark");

                /* GIO's own names first, so that ours never take them. */
                (void) g_dbus_error_quark();
                for (gsize i = 0; i < _fdb_n_error_entries; i++)
                        (void) g_dbus_error_register_error(q, _fdb_error_entries[i].error_code,
                                                           _fdb_error_entries[i].dbus_error_name);
                g_once_init_leave(&quark, q);
        }
        return (GQuark) quark;
}

/**
 * fdb_error_to_dbus_name:
 * @code: an #FdbError
 *
 * The D-Bus error name the broker uses for @code.
 *
 * Returns: (nullable): the name, or %NULL when @code is not an #FdbError
 */
const char *fdb_error_to_dbus_name(FdbError code) {
        for (gsize i = 0; i < _fdb_n_error_entries; i++)
                if (_fdb_error_entries[i].error_code == (gint) code)
                        return _fdb_error_entries[i].dbus_error_name;
        return NULL;
}

/**
 * fdb_error_from_dbus_name:
 * @dbus_name: a D-Bus error name
 * @out_code: (out) (optional): the #FdbError for @dbus_name
 *
 * Looks up the #FdbError of a D-Bus error name of the bus API.
 *
 * Returns: %TRUE if @dbus_name is one of the broker's errors
 */
gboolean fdb_error_from_dbus_name(const char *dbus_name, FdbError *out_code) {
        g_return_val_if_fail(dbus_name != NULL, FALSE);

        for (gsize i = 0; i < _fdb_n_error_entries; i++)
                if (strcmp(_fdb_error_entries[i].dbus_error_name, dbus_name) == 0) {
                        if (out_code)
                                *out_code = (FdbError) _fdb_error_entries[i].error_code;
                        return TRUE;
                }
        return FALSE;
}

void _fdb_error_from_call(GError **error) {
        g_autofree char *name = NULL;
        FdbError code;

        if (!error || !*error || !g_dbus_error_is_remote_error(*error))
                return;
        name = g_dbus_error_get_remote_error(*error);
        if (!name || !fdb_error_from_dbus_name(name, &code))
                return;
        g_dbus_error_strip_remote_error(*error);
        (*error)->domain = FDB_ERROR;
        (*error)->code = code;
}
