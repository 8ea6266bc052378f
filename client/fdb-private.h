/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-private.h: what the library's modules share and the unit tests see;
 * nothing here is exported from libfdbroker-client.so. */
#pragma once

#include <gio/gio.h>

#include "fdbroker/fdbroker.h"

/* The D-Bus names of FdbError, indexed by code (fdb-error.c). */
extern const GDBusErrorEntry _fdb_error_entries[];
extern const gsize _fdb_n_error_entries;

/* Turns an error from a bus call into what FdbClient promises: a broker
 * error of SPEC §1 becomes FDB_ERROR with the service's bare message; any
 * other error is left as it is. */
void _fdb_error_from_call(GError **error);
