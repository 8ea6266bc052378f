/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(FDBROKER_INSIDE) && !defined(FDBROKER_COMPILATION)
#error "Only <fdbroker/fdbroker.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/**
 * FDB_ERROR:
 *
 * The error domain of the broker's refusals. Every D-Bus error of the
 * fdbroker bus API comes back from #FdbClient calls in this domain, with
 * the service's message (which names the entry or option that was wrong).
 *
 * Errors that are not the broker's answer stay in their own domains:
 * %G_IO_ERROR_CANCELLED for a cancelled call, %G_IO_ERROR_CLOSED or
 * %G_DBUS_ERROR codes when the bus or the service is not there, and
 * %G_DBUS_ERROR_FAILED for an internal failure of the service.
 */
#define FDB_ERROR (fdb_error_quark())

/**
 * FdbError:
 * @FDB_ERROR_NOT_FOUND: `org.fdbroker.Error.NotFound`: no such entry, or one
 *   the caller may not see.
 * @FDB_ERROR_EXISTS: `org.fdbroker.Error.Exists`: the name is taken.
 * @FDB_ERROR_QUOTA_EXCEEDED: `org.fdbroker.Error.QuotaExceeded`: a per-user or
 *   global limit was reached.
 * @FDB_ERROR_NOT_SUPPORTED: `org.fdbroker.Error.NotSupported`: the operation
 *   does not fit the fd's kind.
 * @FDB_ERROR_BUSY: `org.fdbroker.Error.Busy`: sealing failed because writable
 *   mappings exist.
 * @FDB_ERROR_ACCESS_DENIED: `org.freedesktop.DBus.Error.AccessDenied`: policy
 *   said no.
 * @FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED:
 *   `org.freedesktop.DBus.Error.InteractiveAuthorizationRequired`: polkit
 *   would ask, and the call did not allow interaction (see
 *   fdb_client_set_allow_interaction()).
 * @FDB_ERROR_INVALID_ARGS: `org.freedesktop.DBus.Error.InvalidArgs`: bad
 *   name, path, size or option; also used for arguments the library itself
 *   rejects before calling.
 *
 * The broker's errors, one per D-Bus error name of the bus API.
 */
typedef enum {
        FDB_ERROR_NOT_FOUND,
        FDB_ERROR_EXISTS,
        FDB_ERROR_QUOTA_EXCEEDED,
        FDB_ERROR_NOT_SUPPORTED,
        FDB_ERROR_BUSY,
        FDB_ERROR_ACCESS_DENIED,
        FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
        FDB_ERROR_INVALID_ARGS,
} FdbError;

GQuark fdb_error_quark(void);

const char *fdb_error_to_dbus_name(FdbError code);
gboolean fdb_error_from_dbus_name(const char *dbus_name, FdbError *out_code);

G_END_DECLS
