/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(FDBROKER_INSIDE) && !defined(FDBROKER_COMPILATION)
#error "Only <fdbroker/fdbroker.h> can be included directly."
#endif

#include <glib-object.h>

G_BEGIN_DECLS

#define FDB_TYPE_ENTRY_INFO (fdb_entry_info_get_type())

typedef struct _FdbEntryInfo FdbEntryInfo;

GType fdb_entry_info_get_type(void) G_GNUC_CONST;

FdbEntryInfo *fdb_entry_info_new(const char *name, GVariant *info);
FdbEntryInfo *fdb_entry_info_ref(FdbEntryInfo *info);
void fdb_entry_info_unref(FdbEntryInfo *info);

const char *fdb_entry_info_get_name(FdbEntryInfo *info);
const char *fdb_entry_info_get_kind(FdbEntryInfo *info);
gboolean fdb_entry_info_has_size(FdbEntryInfo *info);
guint64 fdb_entry_info_get_size(FdbEntryInfo *info);
guint32 fdb_entry_info_get_owner_uid(FdbEntryInfo *info);
const char *fdb_entry_info_get_access(FdbEntryInfo *info);
gboolean fdb_entry_info_get_sealed(FdbEntryInfo *info);
const char *fdb_entry_info_get_lifetime(FdbEntryInfo *info);
gboolean fdb_entry_info_get_persistent(FdbEntryInfo *info);
const char *fdb_entry_info_get_description(FdbEntryInfo *info);
guint64 fdb_entry_info_get_created_usec(FdbEntryInfo *info);
guint64 fdb_entry_info_get_expires_usec(FdbEntryInfo *info);
GVariant *fdb_entry_info_get_variant(FdbEntryInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FdbEntryInfo, fdb_entry_info_unref)

G_END_DECLS
