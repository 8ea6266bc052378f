/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(FDBROKER_INSIDE) && !defined(FDBROKER_COMPILATION)
#error "Only <fdbroker/fdbroker.h> can be included directly."
#endif

#include <gio/gio.h>

#include <fdbroker/fdb-broker1-generated.h>
#include <fdbroker/fdb-entry-info.h>
#include <fdbroker/fdb-options.h>

G_BEGIN_DECLS

#define FDB_TYPE_CLIENT (fdb_client_get_type())
G_DECLARE_FINAL_TYPE(FdbClient, fdb_client, FDB, CLIENT, GObject)

/* Making a client */

FdbClient *fdb_client_new_for_bus_sync(GBusType bus_type, GCancellable *cancellable, GError **error);
void fdb_client_new_for_bus(GBusType bus_type, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data);
FdbClient *fdb_client_new_for_bus_finish(GAsyncResult *result, GError **error);

FdbClient *fdb_client_new_for_address_sync(const char *address, GCancellable *cancellable, GError **error);
void fdb_client_new_for_address(const char *address, GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
FdbClient *fdb_client_new_for_address_finish(GAsyncResult *result, GError **error);

FdbClient *fdb_client_new_for_connection_sync(GDBusConnection *connection, GCancellable *cancellable,
                                              GError **error);
void fdb_client_new_for_connection(GDBusConnection *connection, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
FdbClient *fdb_client_new_for_connection_finish(GAsyncResult *result, GError **error);

FdbClient *fdb_client_new_direct_sync(const char *path, GCancellable *cancellable, GError **error);
void fdb_client_new_direct(const char *path, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
FdbClient *fdb_client_new_direct_finish(GAsyncResult *result, GError **error);

FdbClient *fdb_client_open_connection_sync(FdbClient *client, GCancellable *cancellable, GError **error);

GDBusConnection *fdb_client_get_connection(FdbClient *client);
FdbBroker1 *fdb_client_get_proxy(FdbClient *client);
void fdb_client_set_allow_interaction(FdbClient *client, gboolean allow_interaction);
gboolean fdb_client_get_allow_interaction(FdbClient *client);

/* Deposit */

gboolean fdb_client_deposit_sync(FdbClient *client, const char *name, int fd, FdbDepositOptions *options,
                                 GCancellable *cancellable, GError **error);
void fdb_client_deposit(FdbClient *client, const char *name, int fd, FdbDepositOptions *options,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
gboolean fdb_client_deposit_finish(FdbClient *client, GAsyncResult *result, GError **error);

gboolean fdb_client_deposit_many_sync(FdbClient *client, const char *const *names, const int *fds, gsize n_fds,
                                      FdbDepositOptions *options, GCancellable *cancellable, GError **error);
void fdb_client_deposit_many(FdbClient *client, const char *const *names, const int *fds, gsize n_fds,
                             FdbDepositOptions *options, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
gboolean fdb_client_deposit_many_finish(FdbClient *client, GAsyncResult *result, GError **error);

/* Retrieve */

int fdb_client_retrieve_sync(FdbClient *client, const char *name, FdbRetrieveOptions *options,
                             FdbEntryInfo **out_info, GCancellable *cancellable, GError **error);
void fdb_client_retrieve(FdbClient *client, const char *name, FdbRetrieveOptions *options,
                         GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
int fdb_client_retrieve_finish(FdbClient *client, GAsyncResult *result, FdbEntryInfo **out_info, GError **error);

int *fdb_client_retrieve_many_sync(FdbClient *client, const char *const *names, FdbRetrieveOptions *options,
                                   gsize *out_n_fds, GCancellable *cancellable, GError **error);
void fdb_client_retrieve_many(FdbClient *client, const char *const *names, FdbRetrieveOptions *options,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
int *fdb_client_retrieve_many_finish(FdbClient *client, GAsyncResult *result, gsize *out_n_fds, GError **error);

/* Remove, List */

gboolean fdb_client_remove_sync(FdbClient *client, const char *name, GCancellable *cancellable, GError **error);
void fdb_client_remove(FdbClient *client, const char *name, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data);
gboolean fdb_client_remove_finish(FdbClient *client, GAsyncResult *result, GError **error);

GPtrArray *fdb_client_list_sync(FdbClient *client, const char *prefix, GCancellable *cancellable,
                                GError **error);
void fdb_client_list(FdbClient *client, const char *prefix, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *fdb_client_list_finish(FdbClient *client, GAsyncResult *result, GError **error);

/* CreateMemory, OpenPath */

int fdb_client_create_memory_sync(FdbClient *client, const char *name, guint64 size, FdbDepositOptions *options,
                                  GCancellable *cancellable, GError **error);
void fdb_client_create_memory(FdbClient *client, const char *name, guint64 size, FdbDepositOptions *options,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
int fdb_client_create_memory_finish(FdbClient *client, GAsyncResult *result, GError **error);

int fdb_client_open_path_sync(FdbClient *client, const char *path, FdbAccess access, gboolean nonblock,
                              GCancellable *cancellable, GError **error);
void fdb_client_open_path(FdbClient *client, const char *path, FdbAccess access, gboolean nonblock,
                          GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
int fdb_client_open_path_finish(FdbClient *client, GAsyncResult *result, GError **error);

/* Watch: the entry-added and entry-removed signals */
gboolean fdb_client_watch_sync(FdbClient *client, const char *const *patterns, GCancellable *cancellable,
                               GError **error);
void fdb_client_watch(FdbClient *client, const char *const *patterns, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data);
gboolean fdb_client_watch_finish(FdbClient *client, GAsyncResult *result, GError **error);

gboolean fdb_client_unwatch_sync(FdbClient *client, GCancellable *cancellable, GError **error);
void fdb_client_unwatch(FdbClient *client, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
gboolean fdb_client_unwatch_finish(FdbClient *client, GAsyncResult *result, GError **error);

G_END_DECLS
