/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-entry-info.c: one entry as Retrieve and List describe it, with typed
 * getters over the info dictionary. A key that is missing or of the wrong
 * type reads as its documented default, never as a warning: a newer broker
 * may add or change keys. */
#include "fdb-private.h"

struct _FdbEntryInfo {
        gatomicrefcount ref;
        char *name;
        GVariant *info;         /* a{sv} */
        char *kind;
        gboolean has_size;
        guint64 size;
        guint32 owner_uid;
        char *access;
        gboolean sealed;
        char *lifetime;
        char *description;
        guint64 created_usec;
        guint64 expires_usec;
};

G_DEFINE_BOXED_TYPE(FdbEntryInfo, fdb_entry_info, fdb_entry_info_ref, fdb_entry_info_unref)

/**
 * FdbEntryInfo:
 *
 * What the broker says about an entry: the `info` of Retrieve and the
 * entries of List. Immutable and reference counted.
 */

static char *lookup_string(GVariant *d, const char *key, const char *fallback) {
        const char *s;
        if (g_variant_lookup(d, key, "&s", &s))
                return g_strdup(s);
        return g_strdup(fallback);
}

/**
 * fdb_entry_info_new: (constructor)
 * @name: the entry name
 * @info: an `a{sv}` info dictionary; floating references are sunk
 *
 * Returns: (transfer full): a new #FdbEntryInfo
 */
FdbEntryInfo *fdb_entry_info_new(const char *name, GVariant *info) {
        FdbEntryInfo *e;

        g_return_val_if_fail(name != NULL, NULL);
        g_return_val_if_fail(info != NULL, NULL);
        g_return_val_if_fail(g_variant_is_of_type(info, G_VARIANT_TYPE_VARDICT), NULL);

        e = g_new0(FdbEntryInfo, 1);
        g_atomic_ref_count_init(&e->ref);
        e->name = g_strdup(name);
        e->info = g_variant_ref_sink(info);
        e->kind = lookup_string(info, "kind", "other");
        e->has_size = g_variant_lookup(info, "size", "t", &e->size);
        if (!g_variant_lookup(info, "owner-uid", "u", &e->owner_uid))
                e->owner_uid = G_MAXUINT32;
        e->access = lookup_string(info, "access", "");
        if (!g_variant_lookup(info, "sealed", "b", &e->sealed))
                e->sealed = FALSE;
        e->lifetime = lookup_string(info, "lifetime", "connection");
        e->description = lookup_string(info, "description", "");
        if (!g_variant_lookup(info, "created-usec", "t", &e->created_usec))
                e->created_usec = 0;
        if (!g_variant_lookup(info, "expires-usec", "t", &e->expires_usec))
                e->expires_usec = 0;
        return e;
}

/**
 * fdb_entry_info_ref:
 * @info: an #FdbEntryInfo
 *
 * Returns: (transfer full): @info
 */
FdbEntryInfo *fdb_entry_info_ref(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        g_atomic_ref_count_inc(&info->ref);
        return info;
}

/**
 * fdb_entry_info_unref:
 * @info: (transfer full) (nullable): an #FdbEntryInfo
 */
void fdb_entry_info_unref(FdbEntryInfo *info) {
        if (!info || !g_atomic_ref_count_dec(&info->ref))
                return;
        g_free(info->name);
        g_variant_unref(info->info);
        g_free(info->kind);
        g_free(info->access);
        g_free(info->lifetime);
        g_free(info->description);
        g_free(info);
}

/**
 * fdb_entry_info_get_name:
 * @info: an #FdbEntryInfo
 *
 * Returns: the entry name
 */
const char *fdb_entry_info_get_name(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->name;
}

/**
 * fdb_entry_info_get_kind:
 * @info: an #FdbEntryInfo
 *
 * Returns: what the fd is: `memfd`, `regular`, `directory`, `fifo`,
 *   `socket`, `char-device`, `block-device`, `eventfd`, `timerfd`,
 *   `signalfd`, `pidfd`, `dmabuf`, `sync-file` or `other`
 */
const char *fdb_entry_info_get_kind(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->kind;
}

/**
 * fdb_entry_info_has_size:
 * @info: an #FdbEntryInfo
 *
 * Returns: whether the broker reported a size (regular files and memfds)
 */
gboolean fdb_entry_info_has_size(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, FALSE);
        return info->has_size;
}

/**
 * fdb_entry_info_get_size:
 * @info: an #FdbEntryInfo
 *
 * Returns: the size in bytes, 0 when fdb_entry_info_has_size() is %FALSE
 */
guint64 fdb_entry_info_get_size(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, 0);
        return info->size;
}

/**
 * fdb_entry_info_get_owner_uid:
 * @info: an #FdbEntryInfo
 *
 * Returns: the owner's uid, %G_MAXUINT32 if not reported
 */
guint32 fdb_entry_info_get_owner_uid(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, G_MAXUINT32);
        return info->owner_uid;
}

/**
 * fdb_entry_info_get_access:
 * @info: an #FdbEntryInfo
 *
 * Returns: the stored fd's access mode: `read-only`, `write-only` or
 *   `read-write`
 */
const char *fdb_entry_info_get_access(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->access;
}

/**
 * fdb_entry_info_get_sealed:
 * @info: an #FdbEntryInfo
 *
 * Returns: whether the memfd's bytes can no longer change
 */
gboolean fdb_entry_info_get_sealed(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, FALSE);
        return info->sealed;
}

/**
 * fdb_entry_info_get_lifetime:
 * @info: an #FdbEntryInfo
 *
 * Returns: `connection` or `persistent`
 */
const char *fdb_entry_info_get_lifetime(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->lifetime;
}

/**
 * fdb_entry_info_get_persistent:
 * @info: an #FdbEntryInfo
 *
 * Returns: whether the lifetime is `persistent`
 */
gboolean fdb_entry_info_get_persistent(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, FALSE);
        return g_str_equal(info->lifetime, "persistent");
}

/**
 * fdb_entry_info_get_description:
 * @info: an #FdbEntryInfo
 *
 * Returns: the depositor's description, "" when none
 */
const char *fdb_entry_info_get_description(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->description;
}

/**
 * fdb_entry_info_get_created_usec:
 * @info: an #FdbEntryInfo
 *
 * Returns: when the entry was deposited, in microseconds of CLOCK_REALTIME
 *   (as g_get_real_time())
 */
guint64 fdb_entry_info_get_created_usec(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, 0);
        return info->created_usec;
}

/**
 * fdb_entry_info_get_expires_usec:
 * @info: an #FdbEntryInfo
 *
 * Returns: when the entry expires, in microseconds of CLOCK_REALTIME; 0 for
 *   never
 */
guint64 fdb_entry_info_get_expires_usec(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, 0);
        return info->expires_usec;
}

/**
 * fdb_entry_info_get_variant:
 * @info: an #FdbEntryInfo
 *
 * The info dictionary as the broker sent it, including keys this version of
 * the library does not know.
 *
 * Returns: (transfer none): the `a{sv}` dictionary
 */
GVariant *fdb_entry_info_get_variant(FdbEntryInfo *info) {
        g_return_val_if_fail(info != NULL, NULL);
        return info->info;
}
