/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(FDBROKER_INSIDE) && !defined(FDBROKER_COMPILATION)
#error "Only <fdbroker/fdbroker.h> can be included directly."
#endif

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * FdbAccess:
 * @FDB_ACCESS_READ_ONLY: open for reading (`O_RDONLY`).
 * @FDB_ACCESS_WRITE_ONLY: open for writing (`O_WRONLY`).
 * @FDB_ACCESS_READ_WRITE: open for both (`O_RDWR`).
 *
 * The access mode fdb_client_open_path() asks for.
 */
typedef enum {
        FDB_ACCESS_READ_ONLY,
        FDB_ACCESS_WRITE_ONLY,
        FDB_ACCESS_READ_WRITE,
} FdbAccess;

#define FDB_TYPE_DEPOSIT_OPTIONS (fdb_deposit_options_get_type())
#define FDB_TYPE_RETRIEVE_OPTIONS (fdb_retrieve_options_get_type())

typedef struct _FdbDepositOptions FdbDepositOptions;
typedef struct _FdbRetrieveOptions FdbRetrieveOptions;

GType fdb_deposit_options_get_type(void) G_GNUC_CONST;

FdbDepositOptions *fdb_deposit_options_new(void);
FdbDepositOptions *fdb_deposit_options_ref(FdbDepositOptions *options);
void fdb_deposit_options_unref(FdbDepositOptions *options);

void fdb_deposit_options_set_allow(FdbDepositOptions *options, const char *const *subjects);
void fdb_deposit_options_add_allow(FdbDepositOptions *options, const char *subject);
const char *const *fdb_deposit_options_get_allow(FdbDepositOptions *options);
void fdb_deposit_options_set_read_only(FdbDepositOptions *options, gboolean read_only);
gboolean fdb_deposit_options_get_read_only(FdbDepositOptions *options);
void fdb_deposit_options_set_seal(FdbDepositOptions *options, gboolean seal);
gboolean fdb_deposit_options_get_seal(FdbDepositOptions *options);
void fdb_deposit_options_set_persistent(FdbDepositOptions *options, gboolean persistent);
gboolean fdb_deposit_options_get_persistent(FdbDepositOptions *options);
void fdb_deposit_options_set_once(FdbDepositOptions *options, gboolean once);
gboolean fdb_deposit_options_get_once(FdbDepositOptions *options);
void fdb_deposit_options_set_replace(FdbDepositOptions *options, gboolean replace);
gboolean fdb_deposit_options_get_replace(FdbDepositOptions *options);
void fdb_deposit_options_set_timeout_usec(FdbDepositOptions *options, guint64 timeout_usec);
guint64 fdb_deposit_options_get_timeout_usec(FdbDepositOptions *options);
void fdb_deposit_options_set_description(FdbDepositOptions *options, const char *description);
const char *fdb_deposit_options_get_description(FdbDepositOptions *options);
GVariant *fdb_deposit_options_to_variant(FdbDepositOptions *options);

GType fdb_retrieve_options_get_type(void) G_GNUC_CONST;

FdbRetrieveOptions *fdb_retrieve_options_new(void);
FdbRetrieveOptions *fdb_retrieve_options_ref(FdbRetrieveOptions *options);
void fdb_retrieve_options_unref(FdbRetrieveOptions *options);

void fdb_retrieve_options_set_read_only(FdbRetrieveOptions *options, gboolean read_only);
gboolean fdb_retrieve_options_get_read_only(FdbRetrieveOptions *options);
void fdb_retrieve_options_set_reopen(FdbRetrieveOptions *options, gboolean reopen);
gboolean fdb_retrieve_options_get_reopen(FdbRetrieveOptions *options);
void fdb_retrieve_options_set_wait_usec(FdbRetrieveOptions *options, guint64 wait_usec);
guint64 fdb_retrieve_options_get_wait_usec(FdbRetrieveOptions *options);
GVariant *fdb_retrieve_options_to_variant(FdbRetrieveOptions *options);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FdbDepositOptions, fdb_deposit_options_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FdbRetrieveOptions, fdb_retrieve_options_unref)

G_END_DECLS
