/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-options.c: typed deposit and retrieve options, turned into the a{sv}
 * of the bus API. Only what differs from the broker's defaults goes on the
 * wire, so an options object with nothing set is the empty dictionary. */
#include "fdb-private.h"

struct _FdbDepositOptions {
        gatomicrefcount ref;
        GStrv allow;
        gboolean read_only;
        gboolean seal;
        gboolean persistent;
        gboolean once;
        gboolean replace;
        guint64 timeout_usec;
        char *description;
};

struct _FdbRetrieveOptions {
        gatomicrefcount ref;
        gboolean read_only;
        gboolean reopen;
        guint64 wait_usec;
};

G_DEFINE_BOXED_TYPE(FdbDepositOptions, fdb_deposit_options, fdb_deposit_options_ref, fdb_deposit_options_unref)
G_DEFINE_BOXED_TYPE(FdbRetrieveOptions, fdb_retrieve_options, fdb_retrieve_options_ref, fdb_retrieve_options_unref)

/**
 * FdbDepositOptions:
 *
 * How fdb_client_deposit(), fdb_client_deposit_many() and
 * fdb_client_create_memory() store an entry: who besides the owner may
 * retrieve it, whether the broker keeps it read-only or sealed, and how long
 * it lives. A new object holds the broker's defaults: owner only, access as
 * passed, not sealed, removed when the depositor's bus connection goes away.
 * Reference counted; not thread-safe while being modified.
 */

/**
 * fdb_deposit_options_new: (constructor)
 *
 * Returns: (transfer full): new options with the broker's defaults
 */
FdbDepositOptions *fdb_deposit_options_new(void) {
        FdbDepositOptions *o = g_new0(FdbDepositOptions, 1);
        g_atomic_ref_count_init(&o->ref);
        o->allow = g_new0(char *, 1);
        return o;
}

/**
 * fdb_deposit_options_ref:
 * @options: an #FdbDepositOptions
 *
 * Returns: (transfer full): @options
 */
FdbDepositOptions *fdb_deposit_options_ref(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, NULL);
        g_atomic_ref_count_inc(&options->ref);
        return options;
}

/**
 * fdb_deposit_options_unref:
 * @options: (transfer full) (nullable): an #FdbDepositOptions
 */
void fdb_deposit_options_unref(FdbDepositOptions *options) {
        if (!options || !g_atomic_ref_count_dec(&options->ref))
                return;
        g_strfreev(options->allow);
        g_free(options->description);
        g_free(options);
}

/**
 * fdb_deposit_options_set_allow:
 * @options: an #FdbDepositOptions
 * @subjects: (array zero-terminated=1) (nullable): who may retrieve the entry
 *   besides its owner: `user:NAME`, `uid:N`, `group:NAME`, `gid:N`,
 *   `label:CONTEXT` or `everyone`; %NULL or empty for the owner only
 *
 * Replaces the list of subjects. The broker checks them: an unknown user or
 * group is %FDB_ERROR_INVALID_ARGS.
 */
void fdb_deposit_options_set_allow(FdbDepositOptions *options, const char *const *subjects) {
        g_return_if_fail(options != NULL);
        g_strfreev(options->allow);
        options->allow = subjects ? g_strdupv((char **) subjects) : g_new0(char *, 1);
}

/**
 * fdb_deposit_options_add_allow:
 * @options: an #FdbDepositOptions
 * @subject: one more subject, as for fdb_deposit_options_set_allow()
 */
void fdb_deposit_options_add_allow(FdbDepositOptions *options, const char *subject) {
        guint n;

        g_return_if_fail(options != NULL);
        g_return_if_fail(subject != NULL);
        n = g_strv_length(options->allow);
        options->allow = g_renew(char *, options->allow, n + 2);
        options->allow[n] = g_strdup(subject);
        options->allow[n + 1] = NULL;
}

/**
 * fdb_deposit_options_get_allow:
 * @options: an #FdbDepositOptions
 *
 * Returns: (transfer none) (array zero-terminated=1): the subjects, never %NULL
 */
const char *const *fdb_deposit_options_get_allow(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, NULL);
        return (const char *const *) options->allow;
}

/**
 * fdb_deposit_options_set_read_only:
 * @options: an #FdbDepositOptions
 * @read_only: whether the broker keeps only a read-only reopening of the fd
 *
 * Option `access=read-only`. Sockets and anonymous-inode fds cannot be
 * reopened (%FDB_ERROR_NOT_SUPPORTED).
 */
void fdb_deposit_options_set_read_only(FdbDepositOptions *options, gboolean read_only) {
        g_return_if_fail(options != NULL);
        options->read_only = !!read_only;
}

/**
 * fdb_deposit_options_get_read_only:
 * @options: an #FdbDepositOptions
 *
 * Returns: whether `access=read-only` is set
 */
gboolean fdb_deposit_options_get_read_only(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->read_only;
}

/**
 * fdb_deposit_options_set_seal:
 * @options: an #FdbDepositOptions
 * @seal: whether to seal the memfd against any change
 *
 * Option `seal`: memfds only; adds `F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|
 * F_SEAL_SEAL`, so that readers see bytes that can never change. Sealing a
 * memfd with writable shared mappings is %FDB_ERROR_BUSY; anything else
 * than a memfd is %FDB_ERROR_NOT_SUPPORTED.
 */
void fdb_deposit_options_set_seal(FdbDepositOptions *options, gboolean seal) {
        g_return_if_fail(options != NULL);
        options->seal = !!seal;
}

/**
 * fdb_deposit_options_get_seal:
 * @options: an #FdbDepositOptions
 *
 * Returns: whether `seal` is set
 */
gboolean fdb_deposit_options_get_seal(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->seal;
}

/**
 * fdb_deposit_options_set_persistent:
 * @options: an #FdbDepositOptions
 * @persistent: %TRUE to keep the entry until it is removed or expires,
 *   %FALSE to remove it when the depositor's bus connection goes away
 *
 * Option `lifetime`: `persistent` or `connection` (the default).
 */
void fdb_deposit_options_set_persistent(FdbDepositOptions *options, gboolean persistent) {
        g_return_if_fail(options != NULL);
        options->persistent = !!persistent;
}

/**
 * fdb_deposit_options_get_persistent:
 * @options: an #FdbDepositOptions
 *
 * Returns: whether `lifetime=persistent` is set
 */
gboolean fdb_deposit_options_get_persistent(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->persistent;
}

/**
 * fdb_deposit_options_set_once:
 * @options: an #FdbDepositOptions
 * @once: whether the entry is removed after its first successful retrieval
 *
 * Option `once`: a hand-off.
 */
void fdb_deposit_options_set_once(FdbDepositOptions *options, gboolean once) {
        g_return_if_fail(options != NULL);
        options->once = !!once;
}

/**
 * fdb_deposit_options_get_once:
 * @options: an #FdbDepositOptions
 *
 * Returns: whether `once` is set
 */
gboolean fdb_deposit_options_get_once(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->once;
}

/**
 * fdb_deposit_options_set_replace:
 * @options: an #FdbDepositOptions
 * @replace: whether to replace an entry of the same name the caller owns
 *
 * Option `replace`. An entry of someone else is never replaced
 * (%FDB_ERROR_EXISTS).
 */
void fdb_deposit_options_set_replace(FdbDepositOptions *options, gboolean replace) {
        g_return_if_fail(options != NULL);
        options->replace = !!replace;
}

/**
 * fdb_deposit_options_get_replace:
 * @options: an #FdbDepositOptions
 *
 * Returns: whether `replace` is set
 */
gboolean fdb_deposit_options_get_replace(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->replace;
}

/**
 * fdb_deposit_options_set_timeout_usec:
 * @options: an #FdbDepositOptions
 * @timeout_usec: remove the entry this many microseconds after the deposit;
 *   0 for never
 *
 * Option `timeout-usec`.
 */
void fdb_deposit_options_set_timeout_usec(FdbDepositOptions *options, guint64 timeout_usec) {
        g_return_if_fail(options != NULL);
        options->timeout_usec = timeout_usec;
}

/**
 * fdb_deposit_options_get_timeout_usec:
 * @options: an #FdbDepositOptions
 *
 * Returns: the timeout in microseconds, 0 for none
 */
guint64 fdb_deposit_options_get_timeout_usec(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, 0);
        return options->timeout_usec;
}

/**
 * fdb_deposit_options_set_description:
 * @options: an #FdbDepositOptions
 * @description: (nullable): free text shown by List, up to 1024 bytes
 *
 * Option `description`.
 */
void fdb_deposit_options_set_description(FdbDepositOptions *options, const char *description) {
        g_return_if_fail(options != NULL);
        g_free(options->description);
        options->description = g_strdup(description);
}

/**
 * fdb_deposit_options_get_description:
 * @options: an #FdbDepositOptions
 *
 * Returns: (nullable): the description, %NULL when not set
 */
const char *fdb_deposit_options_get_description(FdbDepositOptions *options) {
        g_return_val_if_fail(options != NULL, NULL);
        return options->description;
}

/**
 * fdb_deposit_options_to_variant:
 * @options: (nullable): an #FdbDepositOptions, or %NULL for the defaults
 *
 * The `a{sv}` options argument of Deposit, DepositMany and CreateMemory,
 * for callers of the generated #FdbBroker1 proxy.
 *
 * Returns: (transfer full): a new `a{sv}` #GVariant (not floating)
 */
GVariant *fdb_deposit_options_to_variant(FdbDepositOptions *options) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        if (options) {
                if (options->allow[0])
                        g_variant_builder_add(&b, "{sv}", "allow",
                                              g_variant_new_strv((const char *const *) options->allow, -1));
                if (options->read_only)
                        g_variant_builder_add(&b, "{sv}", "access", g_variant_new_string("read-only"));
                if (options->seal)
                        g_variant_builder_add(&b, "{sv}", "seal", g_variant_new_boolean(TRUE));
                if (options->persistent)
                        g_variant_builder_add(&b, "{sv}", "lifetime", g_variant_new_string("persistent"));
                if (options->timeout_usec > 0)
                        g_variant_builder_add(&b, "{sv}", "timeout-usec", g_variant_new_uint64(options->timeout_usec));
                if (options->once)
                        g_variant_builder_add(&b, "{sv}", "once", g_variant_new_boolean(TRUE));
                if (options->replace)
                        g_variant_builder_add(&b, "{sv}", "replace", g_variant_new_boolean(TRUE));
                if (options->description)
                        g_variant_builder_add(&b, "{sv}", "description", g_variant_new_string(options->description));
        }
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/**
 * FdbRetrieveOptions:
 *
 * How fdb_client_retrieve() and fdb_client_retrieve_many() hand an entry
 * back: as stored (the default), read-only, as a new open file description,
 * and whether to wait for the name to appear.
 */

/**
 * fdb_retrieve_options_new: (constructor)
 *
 * Returns: (transfer full): new options: the fd as stored, no waiting
 */
FdbRetrieveOptions *fdb_retrieve_options_new(void) {
        FdbRetrieveOptions *o = g_new0(FdbRetrieveOptions, 1);
        g_atomic_ref_count_init(&o->ref);
        return o;
}

/**
 * fdb_retrieve_options_ref:
 * @options: an #FdbRetrieveOptions
 *
 * Returns: (transfer full): @options
 */
FdbRetrieveOptions *fdb_retrieve_options_ref(FdbRetrieveOptions *options) {
        g_return_val_if_fail(options != NULL, NULL);
        g_atomic_ref_count_inc(&options->ref);
        return options;
}

/**
 * fdb_retrieve_options_unref:
 * @options: (transfer full) (nullable): an #FdbRetrieveOptions
 */
void fdb_retrieve_options_unref(FdbRetrieveOptions *options) {
        if (!options || !g_atomic_ref_count_dec(&options->ref))
                return;
        g_free(options);
}

/**
 * fdb_retrieve_options_set_read_only:
 * @options: an #FdbRetrieveOptions
 * @read_only: whether to get a read-only reopening of the fd
 *
 * Option `access=read-only`. An entry stored write-only cannot be read
 * (%FDB_ERROR_ACCESS_DENIED); sockets and anonymous-inode fds cannot be
 * reopened (%FDB_ERROR_NOT_SUPPORTED).
 */
void fdb_retrieve_options_set_read_only(FdbRetrieveOptions *options, gboolean read_only) {
        g_return_if_fail(options != NULL);
        options->read_only = !!read_only;
}

/**
 * fdb_retrieve_options_get_read_only:
 * @options: an #FdbRetrieveOptions
 *
 * Returns: whether `access=read-only` is set
 */
gboolean fdb_retrieve_options_get_read_only(FdbRetrieveOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->read_only;
}

/**
 * fdb_retrieve_options_set_reopen:
 * @options: an #FdbRetrieveOptions
 * @reopen: whether to get a new open file description (its own offset)
 *   rather than a duplicate of the stored one
 *
 * Option `reopen`: regular files and memfds only.
 */
void fdb_retrieve_options_set_reopen(FdbRetrieveOptions *options, gboolean reopen) {
        g_return_if_fail(options != NULL);
        options->reopen = !!reopen;
}

/**
 * fdb_retrieve_options_get_reopen:
 * @options: an #FdbRetrieveOptions
 *
 * Returns: whether `reopen` is set
 */
gboolean fdb_retrieve_options_get_reopen(FdbRetrieveOptions *options) {
        g_return_val_if_fail(options != NULL, FALSE);
        return options->reopen;
}

/**
 * fdb_retrieve_options_set_wait_usec:
 * @options: an #FdbRetrieveOptions
 * @wait_usec: how long to wait for a missing name to be deposited, at most
 *   300 s; 0 for not at all
 *
 * Option `wait-usec`. The call's D-Bus timeout grows to match. Cancel a
 * wait with the call's #GCancellable.
 */
void fdb_retrieve_options_set_wait_usec(FdbRetrieveOptions *options, guint64 wait_usec) {
        g_return_if_fail(options != NULL);
        options->wait_usec = wait_usec;
}

/**
 * fdb_retrieve_options_get_wait_usec:
 * @options: an #FdbRetrieveOptions
 *
 * Returns: the wait in microseconds, 0 for none
 */
guint64 fdb_retrieve_options_get_wait_usec(FdbRetrieveOptions *options) {
        g_return_val_if_fail(options != NULL, 0);
        return options->wait_usec;
}

/**
 * fdb_retrieve_options_to_variant:
 * @options: (nullable): an #FdbRetrieveOptions, or %NULL for the defaults
 *
 * The `a{sv}` options argument of Retrieve and RetrieveMany, for callers of
 * the generated #FdbBroker1 proxy.
 *
 * Returns: (transfer full): a new `a{sv}` #GVariant (not floating)
 */
GVariant *fdb_retrieve_options_to_variant(FdbRetrieveOptions *options) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        if (options) {
                if (options->read_only)
                        g_variant_builder_add(&b, "{sv}", "access", g_variant_new_string("read-only"));
                if (options->reopen)
                        g_variant_builder_add(&b, "{sv}", "reopen", g_variant_new_boolean(TRUE));
                if (options->wait_usec > 0)
                        g_variant_builder_add(&b, "{sv}", "wait-usec", g_variant_new_uint64(options->wait_usec));
        }
        return g_variant_ref_sink(g_variant_builder_end(&b));
}
