/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdb-client.c: FdbClient, the hand-written API over the generated
 * FdbBroker1 proxy.
 *
 * Every method has a _sync form, and an async form (GTask, GCancellable)
 * whose callback gets the FdbClient as its source object. Both share the
 * functions that build the arguments and read the reply, so they behave the
 * same.
 *
 * fd ownership, for every function here: an fd passed in is borrowed; it is
 * duplicated into the message's GUnixFDList before the function returns, so
 * the caller may close it as soon as the call has been started. An fd handed
 * back is a new one that belongs to the caller. Every fd of a reply's fd
 * list lives in that list and is closed with it: on success the caller gets
 * duplicates, on any error (a bad handle, a cancelled call, a finish that is
 * never called) nothing is left open. */
#include "fdb-private.h"
#include "protocol.h"

#include <string.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

/* The system bus's per-message fd limit; a message with more makes
 * dbus-daemon drop the sender's connection (SPEC §2), so the library never
 * sends one. */
#define FDS_PER_CALL_MAX FDB_FDS_PER_CALL_MAX

/* Added to wait-usec for the D-Bus timeout of a waiting Retrieve: GDBus's
 * default (25 s) would end a longer wait before the broker does. */
#define WAIT_MARGIN_MSEC 25000

/* On a peer-to-peer connection the client's first call is a Peer.Ping
 * without fds, answered before anything else is sent: sd-bus (the broker's
 * side) closes a connection whose fds arrive in the same read as the
 * client's BEGIN line, which a first call carrying an fd, sent right after
 * BEGIN, can do (docs/behaviour.md, "Direct connections: the first call"). */
#define PEER_INTERFACE "org.freedesktop.DBus.Peer"

#define PROXY_FLAGS                                                                                           \
        (G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS |              \
         G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START_AT_CONSTRUCTION)

/**
 * FdbClient:
 *
 * A connection to the fd broker. Make one with
 * fdb_client_new_for_bus_sync() (%G_BUS_TYPE_SYSTEM is where the broker
 * normally runs), fdb_client_new_for_address_sync() or
 * fdb_client_new_for_connection_sync(); each has an async form.
 *
 * Entries deposited with the default lifetime belong to the client's bus
 * connection: they are removed when it closes, so keep the client (and, for
 * a shared bus connection, the process) alive as long as they are needed,
 * or use fdb_deposit_options_set_persistent().
 *
 * The broker's refusals are #GError<!-- -->s of the %FDB_ERROR domain.
 */
struct _FdbClient {
        GObject parent_instance;
        FdbBroker1 *proxy;
        gboolean allow_interaction;
        guint watch_subscription;    /* EntryAdded/EntryRemoved; 0: none yet */
};

G_DEFINE_TYPE(FdbClient, fdb_client, G_TYPE_OBJECT)

enum {
        PROP_0,
        PROP_PROXY,
        PROP_CONNECTION,
        PROP_ALLOW_INTERACTION,
        N_PROPS,
};

static GParamSpec *props[N_PROPS];

enum {
        SIGNAL_ENTRY_ADDED,
        SIGNAL_ENTRY_REMOVED,
        N_SIGNALS,
};

static guint client_signals[N_SIGNALS];

static void fdb_client_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec) {
        FdbClient *c = FDB_CLIENT(object);

        switch (prop_id) {
        case PROP_PROXY:
                g_value_set_object(value, c->proxy);
                break;
        case PROP_CONNECTION:
                g_value_set_object(value, fdb_client_get_connection(c));
                break;
        case PROP_ALLOW_INTERACTION:
                g_value_set_boolean(value, c->allow_interaction);
                break;
        default:
                G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        }
}

static void fdb_client_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec) {
        FdbClient *c = FDB_CLIENT(object);

        switch (prop_id) {
        case PROP_PROXY:
                c->proxy = g_value_dup_object(value);
                break;
        case PROP_ALLOW_INTERACTION:
                fdb_client_set_allow_interaction(c, g_value_get_boolean(value));
                break;
        default:
                G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        }
}

static void fdb_client_dispose(GObject *object) {
        FdbClient *c = FDB_CLIENT(object);

        if (c->watch_subscription != 0 && c->proxy)
                g_dbus_connection_signal_unsubscribe(g_dbus_proxy_get_connection(G_DBUS_PROXY(c->proxy)),
                                                     c->watch_subscription);
        c->watch_subscription = 0;
        g_clear_object(&c->proxy);
        G_OBJECT_CLASS(fdb_client_parent_class)->dispose(object);
}

static void fdb_client_class_init(FdbClientClass *klass) {
        GObjectClass *object_class = G_OBJECT_CLASS(klass);

        object_class->get_property = fdb_client_get_property;
        object_class->set_property = fdb_client_set_property;
        object_class->dispose = fdb_client_dispose;

        /**
         * FdbClient:proxy:
         *
         * The generated proxy the client calls through.
         */
        props[PROP_PROXY] = g_param_spec_object("proxy", "Proxy", "The org.fdbroker.Broker1 proxy",
                                                FDB_TYPE_BROKER1,
                                                G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
        /**
         * FdbClient:connection:
         *
         * The bus connection the client uses.
         */
        props[PROP_CONNECTION] = g_param_spec_object("connection", "Connection", "The bus connection",
                                                     G_TYPE_DBUS_CONNECTION,
                                                     G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
        /**
         * FdbClient:allow-interaction:
         *
         * Whether calls carry %G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
         * letting polkit ask the user (through an authentication agent)
         * instead of answering %FDB_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED.
         */
        props[PROP_ALLOW_INTERACTION] = g_param_spec_boolean(
                "allow-interaction", "Allow interaction", "Whether polkit may ask the user", FALSE,
                G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
        g_object_class_install_properties(object_class, N_PROPS, props);

        /**
         * FdbClient::entry-added:
         * @client: the #FdbClient
         * @name: the entry's name
         * @info: the entry, as fdb_client_retrieve_sync() would describe it
         *
         * An entry matching the client's watch (fdb_client_watch_sync()) was
         * deposited. The broker tells only watchers that may see the entry.
         */
        client_signals[SIGNAL_ENTRY_ADDED] =
                g_signal_new("entry-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                             G_TYPE_NONE, 2, G_TYPE_STRING, FDB_TYPE_ENTRY_INFO);
        /**
         * FdbClient::entry-removed:
         * @client: the #FdbClient
         * @name: the entry's name
         * @reason: `removed`, `expired`, `retrieved-once`,
         *   `connection-closed` or `replaced`
         *
         * An entry matching the client's watch went away.
         */
        client_signals[SIGNAL_ENTRY_REMOVED] =
                g_signal_new("entry-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                             G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);

        /* Registers the FDB_ERROR names before the first reply is decoded. */
        (void) fdb_error_quark();
}

static void fdb_client_init(FdbClient *c) {
}

/* ---- making a client ---------------------------------------------------- */

static FdbClient *client_new(FdbBroker1 *proxy) {
        return g_object_new(FDB_TYPE_CLIENT, "proxy", proxy, NULL);
}

/* A peer-to-peer connection (straight to the broker) has no bus and no
 * names; a message bus connection has a unique name. */
static const char *bus_name_for(GDBusConnection *connection) {
        return g_dbus_connection_get_unique_name(connection) ? FDB_BUS_NAME : NULL;
}

/**
 * fdb_client_new_for_connection_sync: (constructor)
 * @connection: a #GDBusConnection to a message bus where the broker runs (or
 *   is activatable), or a peer-to-peer connection to the broker itself
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a client that calls the broker over @connection, which it keeps a
 * reference to.
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_connection_sync(GDBusConnection *connection, GCancellable *cancellable,
                                              GError **error) {
        g_autoptr(FdbBroker1) proxy = NULL;

        g_return_val_if_fail(G_IS_DBUS_CONNECTION(connection), NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!bus_name_for(connection)) {
                g_autoptr(GVariant) pong = g_dbus_connection_call_sync(connection, NULL, FDB_OBJECT_PATH, PEER_INTERFACE,
                                                                       "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                                                                       -1, cancellable, error);
                if (!pong) {
                        _fdb_error_from_call(error);
                        return NULL;
                }
        }
        proxy = fdb_broker1_proxy_new_sync(connection, PROXY_FLAGS, bus_name_for(connection), FDB_OBJECT_PATH,
                                           cancellable, error);
        if (!proxy)
                return NULL;
        return client_new(proxy);
}

/**
 * fdb_client_new_for_bus_sync: (constructor)
 * @bus_type: %G_BUS_TYPE_SYSTEM (where the broker normally runs) or
 *   %G_BUS_TYPE_SESSION
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a client on the process's shared connection to @bus_type (see
 * g_bus_get_sync()).
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_bus_sync(GBusType bus_type, GCancellable *cancellable, GError **error) {
        g_autoptr(GDBusConnection) connection = NULL;

        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        connection = g_bus_get_sync(bus_type, cancellable, error);
        if (!connection)
                return NULL;
        return fdb_client_new_for_connection_sync(connection, cancellable, error);
}

/**
 * fdb_client_new_for_address_sync: (constructor)
 * @address: a D-Bus address of a message bus, such as
 *   `unix:path=/run/dbus/system_bus_socket`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a client on a new, private connection to the bus at @address. The
 * connection is closed when the client is finalized, which removes the
 * entries it deposited with the default lifetime.
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_address_sync(const char *address, GCancellable *cancellable, GError **error) {
        g_autoptr(GDBusConnection) connection = NULL;

        g_return_val_if_fail(address != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        connection = g_dbus_connection_new_for_address_sync(
                address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, cancellable, error);
        if (!connection)
                return NULL;
        return fdb_client_new_for_connection_sync(connection, cancellable, error);
}

static void new_got_proxy(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(FdbBroker1) proxy = NULL;
        GError *error = NULL;

        proxy = fdb_broker1_proxy_new_finish(result, &error);
        if (!proxy) {
                g_task_return_error(task, error);
                return;
        }
        g_task_return_pointer(task, client_new(proxy), g_object_unref);
}

static void new_got_pong(GObject *source, GAsyncResult *result, gpointer user_data) {
        GTask *task = user_data;
        GDBusConnection *connection = G_DBUS_CONNECTION(source);
        g_autoptr(GVariant) pong = NULL;
        GError *error = NULL;

        pong = g_dbus_connection_call_finish(connection, result, &error);
        if (!pong) {
                _fdb_error_from_call(&error);
                g_task_return_error(task, error);
                g_object_unref(task);
                return;
        }
        fdb_broker1_proxy_new(connection, PROXY_FLAGS, NULL, FDB_OBJECT_PATH, g_task_get_cancellable(task),
                              new_got_proxy, task);
}

static void new_make_proxy(GTask *task, GDBusConnection *connection) {
        if (!bus_name_for(connection)) {
                /* Peer to peer: one round trip first (see PEER_INTERFACE). */
                g_dbus_connection_call(connection, NULL, FDB_OBJECT_PATH, PEER_INTERFACE, "Ping", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, g_task_get_cancellable(task), new_got_pong, task);
                return;
        }
        fdb_broker1_proxy_new(connection, PROXY_FLAGS, bus_name_for(connection), FDB_OBJECT_PATH,
                              g_task_get_cancellable(task), new_got_proxy, task);
}

/**
 * fdb_client_new_for_connection:
 * @connection: a #GDBusConnection, as for fdb_client_new_for_connection_sync()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the client is ready
 * @user_data: data for @callback
 *
 * Starts making a client over @connection; finish with
 * fdb_client_new_for_connection_finish().
 */
void fdb_client_new_for_connection(GDBusConnection *connection, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data) {
        GTask *task;

        g_return_if_fail(G_IS_DBUS_CONNECTION(connection));

        task = g_task_new(NULL, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_new_for_connection);
        new_make_proxy(task, connection);
}

static FdbClient *new_finish(GAsyncResult *result, gpointer tag, GError **error) {
        g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
        g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tag, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);
        return g_task_propagate_pointer(G_TASK(result), error);
}

/**
 * fdb_client_new_for_connection_finish:
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_connection_finish(GAsyncResult *result, GError **error) {
        return new_finish(result, fdb_client_new_for_connection, error);
}

static void new_got_bus(GObject *source, GAsyncResult *result, gpointer user_data) {
        GTask *task = user_data;
        g_autoptr(GDBusConnection) connection = NULL;
        GError *error = NULL;

        if (g_task_get_source_tag(task) == fdb_client_new_for_bus)
                connection = g_bus_get_finish(result, &error);
        else
                connection = g_dbus_connection_new_for_address_finish(result, &error);
        if (!connection) {
                g_task_return_error(task, error);
                g_object_unref(task);
                return;
        }
        new_make_proxy(task, connection);
}

/**
 * fdb_client_new_for_bus:
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the client is ready
 * @user_data: data for @callback
 *
 * Starts making a client on the shared connection to @bus_type; finish
 * with fdb_client_new_for_bus_finish().
 */
void fdb_client_new_for_bus(GBusType bus_type, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data) {
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_new_for_bus);
        g_bus_get(bus_type, cancellable, new_got_bus, task);
}

/**
 * fdb_client_new_for_bus_finish:
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_bus_finish(GAsyncResult *result, GError **error) {
        return new_finish(result, fdb_client_new_for_bus, error);
}

/**
 * fdb_client_new_for_address:
 * @address: a D-Bus address of a message bus
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the client is ready
 * @user_data: data for @callback
 *
 * Starts making a client on a new, private connection to @address; finish
 * with fdb_client_new_for_address_finish().
 */
void fdb_client_new_for_address(const char *address, GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data) {
        GTask *task;

        g_return_if_fail(address != NULL);

        task = g_task_new(NULL, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_new_for_address);
        g_dbus_connection_new_for_address(
                address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, cancellable, new_got_bus, task);
}

/**
 * fdb_client_new_for_address_finish:
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_for_address_finish(GAsyncResult *result, GError **error) {
        return new_finish(result, fdb_client_new_for_address, error);
}

/* ---- direct connections (SPEC §5) --------------------------------------- */

/* The D-Bus address of the direct socket at path (NULL: the system one). */
static char *direct_address(const char *path) {
        g_autofree char *escaped = g_dbus_address_escape_value(path ? path : FDB_DIRECT_SOCKET_PATH);
        return g_strconcat("unix:path=", escaped, NULL);
}

/* A peer-to-peer connection: no message bus, so no Hello and no names. */
#define DIRECT_FLAGS G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT

/**
 * fdb_client_new_direct_sync: (constructor)
 * @path: (type filename) (nullable): the broker's direct socket, %NULL for
 *   `/run/fdbroker/socket`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a client on a new peer-to-peer connection to the broker's direct
 * socket: the same methods, policy and errors as over the bus, without a
 * bus daemon in between. The broker knows the caller by what the kernel
 * recorded when the socket was connected (uid, groups, security label,
 * pidfd). Entries deposited with the default lifetime end when this
 * client's connection closes (when the client is finalized). A uid holds
 * at most 16 direct connections: the first call on one more fails with
 * %FDB_ERROR_QUOTA_EXCEEDED.
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_direct_sync(const char *path, GCancellable *cancellable, GError **error) {
        g_autoptr(GDBusConnection) connection = NULL;
        g_autofree char *address = direct_address(path);

        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        connection = g_dbus_connection_new_for_address_sync(address, DIRECT_FLAGS, NULL, cancellable, error);
        if (!connection)
                return NULL;
        return fdb_client_new_for_connection_sync(connection, cancellable, error);
}

/**
 * fdb_client_new_direct:
 * @path: (type filename) (nullable): the direct socket, as for
 *   fdb_client_new_direct_sync()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the client is ready
 * @user_data: data for @callback
 *
 * Starts making a client on a new peer-to-peer connection to the direct
 * socket; finish with fdb_client_new_direct_finish().
 */
void fdb_client_new_direct(const char *path, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data) {
        g_autofree char *address = direct_address(path);
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);

        g_task_set_source_tag(task, fdb_client_new_direct);
        g_dbus_connection_new_for_address(address, DIRECT_FLAGS, NULL, cancellable, new_got_bus, task);
}

/**
 * fdb_client_new_direct_finish:
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_new_direct_finish(GAsyncResult *result, GError **error) {
        return new_finish(result, fdb_client_new_direct, error);
}

static int take_fd(GUnixFDList *list, gint32 handle, const char *what, GError **error);
static GDBusCallFlags call_flags(FdbClient *c);

/**
 * fdb_client_open_connection_sync:
 * @client: an #FdbClient on the bus
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the broker, over @client's connection, for a direct connection of
 * its own (OpenConnection), and makes a new client on it. Calls on the new
 * client skip the bus daemon and act with the identity the bus vouched for
 * at this call, for as long as the connection lives; entries it deposits
 * with the default lifetime end when it closes (when the new client is
 * finalized), whatever happens to @client. A uid holds at most 16 direct
 * connections (%FDB_ERROR_QUOTA_EXCEEDED).
 *
 * Returns: (transfer full): a new #FdbClient, or %NULL with @error set
 */
FdbClient *fdb_client_open_connection_sync(FdbClient *client, GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) socket_v = NULL;
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GSocketConnection) stream = NULL;
        g_autoptr(GDBusConnection) connection = NULL;
        int fd;

        g_return_val_if_fail(FDB_IS_CLIENT(client), NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!fdb_broker1_call_open_connection_sync(client->proxy, g_variant_new("a{sv}", NULL), call_flags(client),
                                                   -1, NULL, &socket_v, &out_list, cancellable, error)) {
                _fdb_error_from_call(error);
                return NULL;
        }
        fd = take_fd(out_list, g_variant_get_handle(socket_v), "OpenConnection", error);
        if (fd < 0)
                return NULL;
        socket = g_socket_new_from_fd(fd, error);
        if (!socket) {
                (void) close(fd);
                return NULL;
        }
        stream = g_socket_connection_factory_create_connection(socket);
        connection = g_dbus_connection_new_sync(G_IO_STREAM(stream), NULL, DIRECT_FLAGS, NULL, cancellable, error);
        if (!connection)
                return NULL;
        return fdb_client_new_for_connection_sync(connection, cancellable, error);
}

/**
 * fdb_client_get_connection:
 * @client: an #FdbClient
 *
 * Returns: (transfer none): the bus connection
 */
GDBusConnection *fdb_client_get_connection(FdbClient *client) {
        g_return_val_if_fail(FDB_IS_CLIENT(client), NULL);
        return g_dbus_proxy_get_connection(G_DBUS_PROXY(client->proxy));
}

/**
 * fdb_client_get_proxy:
 * @client: an #FdbClient
 *
 * The generated proxy, for what #FdbClient does not wrap (such as the
 * broker's properties, through org.freedesktop.DBus.Properties). It does
 * not cache properties.
 *
 * Returns: (transfer none): the proxy
 */
FdbBroker1 *fdb_client_get_proxy(FdbClient *client) {
        g_return_val_if_fail(FDB_IS_CLIENT(client), NULL);
        return client->proxy;
}

/**
 * fdb_client_set_allow_interaction:
 * @client: an #FdbClient
 * @allow_interaction: whether polkit may ask the user
 *
 * Sets #FdbClient:allow-interaction.
 */
void fdb_client_set_allow_interaction(FdbClient *client, gboolean allow_interaction) {
        g_return_if_fail(FDB_IS_CLIENT(client));
        allow_interaction = !!allow_interaction;
        if (client->allow_interaction == allow_interaction)
                return;
        client->allow_interaction = allow_interaction;
        g_object_notify_by_pspec(G_OBJECT(client), props[PROP_ALLOW_INTERACTION]);
}

/**
 * fdb_client_get_allow_interaction:
 * @client: an #FdbClient
 *
 * Returns: whether calls let polkit ask the user
 */
gboolean fdb_client_get_allow_interaction(FdbClient *client) {
        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        return client->allow_interaction;
}

/* ---- helpers shared by the calls ---------------------------------------- */

static GDBusCallFlags call_flags(FdbClient *c) {
        return c->allow_interaction ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION : G_DBUS_CALL_FLAGS_NONE;
}

static int retrieve_timeout_msec(FdbRetrieveOptions *options) {
        guint64 wait_msec = options ? fdb_retrieve_options_get_wait_usec(options) / 1000 : 0;

        if (wait_msec == 0)
                return -1;
        return (int) MIN(wait_msec + WAIT_MARGIN_MSEC, (guint64) G_MAXINT);
}

/* Puts a duplicate of fd (borrowed) into list; returns its index, or -1
 * with error set. */
static int append_fd(GUnixFDList *list, int fd, const char *name, GError **error) {
        g_autoptr(GError) local = NULL;
        int idx;

        if (fd < 0) {
                g_set_error(error, FDB_ERROR, FDB_ERROR_INVALID_ARGS, "Invalid fd %d for '%s'.", fd, name);
                return -1;
        }
        idx = g_unix_fd_list_append(list, fd, &local);
        if (idx < 0)
                g_set_error(error, FDB_ERROR, FDB_ERROR_INVALID_ARGS, "Cannot pass fd %d for '%s': %s", fd, name,
                            local->message);
        return idx;
}

/* Returns a new fd (owned by the caller) for the handle of a reply; list
 * (borrowed) keeps its own fds. -1 with error set when the reply refers to
 * an fd it does not carry. */
static int take_fd(GUnixFDList *list, gint32 handle, const char *what, GError **error) {
        if (!list || handle < 0 || handle >= g_unix_fd_list_get_length(list)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "The broker's reply for '%s' refers to an fd it did not send.", what);
                return -1;
        }
        return g_unix_fd_list_get(list, handle, error);
}

static void close_fd_ptr(gpointer p) {
        int *fd = p;
        if (*fd >= 0)
                (void) close(*fd);
        g_free(fd);
}

/* Returns fd (consumed) from a task: the task owns it until finish is
 * called, and closes it when finish never is or the call was cancelled. */
static void task_return_fd(GTask *task, int fd) {
        int *p = g_new(int, 1);
        *p = fd;
        g_task_return_pointer(task, p, close_fd_ptr);
}

static int task_propagate_fd(GTask *task, GError **error) {
        int *p, fd;

        p = g_task_propagate_pointer(task, error);
        if (!p)
                return -1;
        fd = *p;
        g_free(p);
        return fd;
}

static void task_return_call_error(GTask *task, GError *error) {
        _fdb_error_from_call(&error);
        g_task_return_error(task, error);
}

#define CHECK_FINISH(client, result, tag, fail)                                                               \
        G_STMT_START {                                                                                        \
                g_return_val_if_fail(FDB_IS_CLIENT(client), fail);                                            \
                g_return_val_if_fail(g_task_is_valid(result, client), fail);                                  \
                g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == (tag), fail);                   \
                g_return_val_if_fail(error == NULL || *error == NULL, fail);                                  \
        }                                                                                                     \
        G_STMT_END

/* ---- Deposit ------------------------------------------------------------ */

/**
 * fdb_client_deposit_sync:
 * @client: an #FdbClient
 * @name: the entry name: 1-255 bytes of `[A-Za-z0-9_.:@/-]`, `/`-separated
 * @fd: the fd to store; borrowed (the broker keeps its own copy)
 * @options: (nullable): how to store it, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Stores @fd under @name; the caller becomes the entry's owner.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_deposit_sync(FdbClient *client, const char *name, int fd, FdbDepositOptions *options,
                                 GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) opts = NULL;
        int idx;

        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        g_return_val_if_fail(name != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        idx = append_fd(list, fd, name, error);
        if (idx < 0)
                return FALSE;
        opts = fdb_deposit_options_to_variant(options);
        if (!fdb_broker1_call_deposit_sync(client->proxy, name, g_variant_new_handle(idx), opts, call_flags(client), -1,
                                           list, &out_list, cancellable, error)) {
                _fdb_error_from_call(error);
                return FALSE;
        }
        return TRUE;
}

static void deposit_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        GError *error = NULL;

        if (!fdb_broker1_call_deposit_finish(FDB_BROKER1(source), &out_list, result, &error))
                task_return_call_error(task, error);
        else
                g_task_return_boolean(task, TRUE);
}

/**
 * fdb_client_deposit:
 * @client: an #FdbClient
 * @name: the entry name
 * @fd: the fd to store; borrowed, and duplicated before this returns
 * @options: (nullable): how to store it, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_deposit_sync(); finish with
 * fdb_client_deposit_finish().
 */
void fdb_client_deposit(FdbClient *client, const char *name, int fd, FdbDepositOptions *options,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GTask) task = NULL;
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        g_autoptr(GVariant) opts = NULL;
        GError *error = NULL;
        int idx;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(name != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_deposit);

        idx = append_fd(list, fd, name, &error);
        if (idx < 0) {
                g_task_return_error(task, error);
                return;
        }
        opts = fdb_deposit_options_to_variant(options);
        fdb_broker1_call_deposit(client->proxy, name, g_variant_new_handle(idx), opts, call_flags(client), -1, list,
                                 cancellable, deposit_done, g_steal_pointer(&task));
}

/**
 * fdb_client_deposit_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_deposit_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_deposit, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- DepositMany -------------------------------------------------------- */

/* Builds the a{sh} argument and its fd list (fds borrowed). */
static gboolean deposit_many_args(const char *const *names, const int *fds, gsize n_fds, GUnixFDList **ret_list,
                                  GVariant **ret_fds, GError **error) {
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        GVariantBuilder b;
        gsize n_names = names ? g_strv_length((char **) names) : 0;

        if (n_names != n_fds) {
                g_set_error(error, FDB_ERROR, FDB_ERROR_INVALID_ARGS,
                            "DepositMany got %" G_GSIZE_FORMAT " names but %" G_GSIZE_FORMAT " fds.", n_names, n_fds);
                return FALSE;
        }
        if (n_fds > FDS_PER_CALL_MAX) {
                g_set_error(error, FDB_ERROR, FDB_ERROR_INVALID_ARGS,
                            "DepositMany takes at most %d entries, not %" G_GSIZE_FORMAT ".", FDS_PER_CALL_MAX,
                            n_fds);
                return FALSE;
        }

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sh}"));
        for (gsize i = 0; i < n_fds; i++) {
                int idx = append_fd(list, fds[i], names[i], error);
                if (idx < 0) {
                        g_variant_builder_clear(&b);
                        return FALSE;
                }
                g_variant_builder_add(&b, "{sh}", names[i], idx);
        }
        *ret_fds = g_variant_ref_sink(g_variant_builder_end(&b));
        *ret_list = g_steal_pointer(&list);
        return TRUE;
}

/**
 * fdb_client_deposit_many_sync:
 * @client: an #FdbClient
 * @names: (array zero-terminated=1): the entry names
 * @fds: (array length=n_fds): one fd per name, in the same order; borrowed
 * @n_fds: the number of fds, which must be the number of names (at most 16)
 * @options: (nullable): how to store them, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Stores several entries at once: either all or none.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_deposit_many_sync(FdbClient *client, const char *const *names, const int *fds, gsize n_fds,
                                      FdbDepositOptions *options, GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) list = NULL;
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) fds_v = NULL;
        g_autoptr(GVariant) opts = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        g_return_val_if_fail(fds != NULL || n_fds == 0, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!deposit_many_args(names, fds, n_fds, &list, &fds_v, error))
                return FALSE;
        opts = fdb_deposit_options_to_variant(options);
        if (!fdb_broker1_call_deposit_many_sync(client->proxy, fds_v, opts, call_flags(client), -1, list, &out_list,
                                                cancellable, error)) {
                _fdb_error_from_call(error);
                return FALSE;
        }
        return TRUE;
}

static void deposit_many_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        GError *error = NULL;

        if (!fdb_broker1_call_deposit_many_finish(FDB_BROKER1(source), &out_list, result, &error))
                task_return_call_error(task, error);
        else
                g_task_return_boolean(task, TRUE);
}

/**
 * fdb_client_deposit_many:
 * @client: an #FdbClient
 * @names: (array zero-terminated=1): the entry names
 * @fds: (array length=n_fds): one fd per name; borrowed, and duplicated
 *   before this returns
 * @n_fds: the number of fds
 * @options: (nullable): how to store them, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_deposit_many_sync(); finish with
 * fdb_client_deposit_many_finish().
 */
void fdb_client_deposit_many(FdbClient *client, const char *const *names, const int *fds, gsize n_fds,
                             FdbDepositOptions *options, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data) {
        g_autoptr(GTask) task = NULL;
        g_autoptr(GUnixFDList) list = NULL;
        g_autoptr(GVariant) fds_v = NULL;
        g_autoptr(GVariant) opts = NULL;
        GError *error = NULL;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(fds != NULL || n_fds == 0);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_deposit_many);
        if (!deposit_many_args(names, fds, n_fds, &list, &fds_v, &error)) {
                g_task_return_error(task, error);
                return;
        }
        opts = fdb_deposit_options_to_variant(options);
        fdb_broker1_call_deposit_many(client->proxy, fds_v, opts, call_flags(client), -1, list, cancellable,
                                      deposit_many_done, g_steal_pointer(&task));
}

/**
 * fdb_client_deposit_many_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_deposit_many_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_deposit_many, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- Retrieve ----------------------------------------------------------- */

typedef struct {
        int fd;
        FdbEntryInfo *info;
} RetrieveResult;

static void retrieve_result_free(RetrieveResult *r) {
        if (r->fd >= 0)
                (void) close(r->fd);
        if (r->info)
                fdb_entry_info_unref(r->info);
        g_free(r);
}

/* Reads a Retrieve reply; out_list is borrowed. Returns a new fd. */
static int retrieve_reply(const char *name, GVariant *fd_v, GVariant *info_v, GUnixFDList *out_list,
                          FdbEntryInfo **ret_info, GError **error) {
        int fd = take_fd(out_list, g_variant_get_handle(fd_v), name, error);
        if (fd < 0)
                return -1;
        if (ret_info)
                *ret_info = fdb_entry_info_new(name, info_v);
        return fd;
}

/**
 * fdb_client_retrieve_sync:
 * @client: an #FdbClient
 * @name: the entry name
 * @options: (nullable): how to hand it back, %NULL for the fd as stored
 * @out_info: (out) (optional) (transfer full): the entry's description
 * @cancellable: (nullable): a #GCancellable; cancelling also ends a wait
 * @error: return location for a #GError
 *
 * Gets a copy of the fd stored under @name. An entry the caller may not
 * retrieve is %FDB_ERROR_NOT_FOUND, as a missing one.
 *
 * Returns: a new fd that belongs to the caller (close it), or -1 with
 *   @error set
 */
int fdb_client_retrieve_sync(FdbClient *client, const char *name, FdbRetrieveOptions *options,
                             FdbEntryInfo **out_info, GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) opts = NULL;
        g_autoptr(GVariant) fd_v = NULL;
        g_autoptr(GVariant) info_v = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), -1);
        g_return_val_if_fail(name != NULL, -1);
        g_return_val_if_fail(error == NULL || *error == NULL, -1);

        opts = fdb_retrieve_options_to_variant(options);
        if (!fdb_broker1_call_retrieve_sync(client->proxy, name, opts, call_flags(client),
                                            retrieve_timeout_msec(options), NULL, &fd_v, &info_v, &out_list,
                                            cancellable, error)) {
                _fdb_error_from_call(error);
                return -1;
        }
        return retrieve_reply(name, fd_v, info_v, out_list, out_info, error);
}

static void retrieve_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) fd_v = NULL;
        g_autoptr(GVariant) info_v = NULL;
        GError *error = NULL;
        RetrieveResult *r;

        if (!fdb_broker1_call_retrieve_finish(FDB_BROKER1(source), &fd_v, &info_v, &out_list, result, &error)) {
                task_return_call_error(task, error);
                return;
        }
        r = g_new0(RetrieveResult, 1);
        r->fd = retrieve_reply(g_task_get_task_data(task), fd_v, info_v, out_list, &r->info, &error);
        if (r->fd < 0) {
                retrieve_result_free(r);
                g_task_return_error(task, error);
                return;
        }
        g_task_return_pointer(task, r, (GDestroyNotify) retrieve_result_free);
}

/**
 * fdb_client_retrieve:
 * @client: an #FdbClient
 * @name: the entry name
 * @options: (nullable): how to hand it back, %NULL for the fd as stored
 * @cancellable: (nullable): a #GCancellable; cancelling also ends a wait
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_retrieve_sync(); finish with
 * fdb_client_retrieve_finish(). If the finish function is not called, or
 * the call is cancelled after the broker answered, the fd is closed.
 */
void fdb_client_retrieve(FdbClient *client, const char *name, FdbRetrieveOptions *options,
                         GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) opts = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(name != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_retrieve);
        g_task_set_task_data(task, g_strdup(name), g_free);
        opts = fdb_retrieve_options_to_variant(options);
        fdb_broker1_call_retrieve(client->proxy, name, opts, call_flags(client), retrieve_timeout_msec(options), NULL,
                                  cancellable, retrieve_done, task);
}

/**
 * fdb_client_retrieve_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @out_info: (out) (optional) (transfer full): the entry's description
 * @error: return location for a #GError
 *
 * Returns: a new fd that belongs to the caller, or -1 with @error set
 */
int fdb_client_retrieve_finish(FdbClient *client, GAsyncResult *result, FdbEntryInfo **out_info, GError **error) {
        RetrieveResult *r;
        int fd;

        CHECK_FINISH(client, result, fdb_client_retrieve, -1);
        r = g_task_propagate_pointer(G_TASK(result), error);
        if (!r)
                return -1;
        fd = r->fd;
        r->fd = -1;
        if (out_info)
                *out_info = g_steal_pointer(&r->info);
        retrieve_result_free(r);
        return fd;
}

/* ---- RetrieveMany ------------------------------------------------------- */

typedef struct {
        int *fds;
        gsize n;
} FdArray;

static void fd_array_free(FdArray *a) {
        for (gsize i = 0; i < a->n; i++)
                if (a->fds[i] >= 0)
                        (void) close(a->fds[i]);
        g_free(a->fds);
        g_free(a);
}

/* Reads a RetrieveMany reply into fds ordered as names; out_list is
 * borrowed. Returns NULL with error set (and nothing open) on failure. */
static FdArray *retrieve_many_reply(const char *const *names, GVariant *fds_v, GUnixFDList *out_list,
                                    GError **error) {
        FdArray *a = g_new0(FdArray, 1);
        gsize n = g_strv_length((char **) names);

        a->fds = g_new(int, MAX(n, 1));
        for (gsize i = 0; i < n; i++) {
                gint32 handle;
                if (!g_variant_lookup(fds_v, names[i], "h", &handle)) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "The broker's reply has no fd for '%s'.", names[i]);
                        fd_array_free(a);
                        return NULL;
                }
                a->fds[i] = take_fd(out_list, handle, names[i], error);
                if (a->fds[i] < 0) {
                        fd_array_free(a);
                        return NULL;
                }
                a->n = i + 1;
        }
        return a;
}

static int *fd_array_steal(FdArray *a, gsize *out_n_fds) {
        int *fds = g_steal_pointer(&a->fds);
        if (out_n_fds)
                *out_n_fds = a->n;
        g_free(a);
        return fds;
}

/**
 * fdb_client_retrieve_many_sync:
 * @client: an #FdbClient
 * @names: (array zero-terminated=1): the entry names, at most 16
 * @options: (nullable): how to hand them back, %NULL for the fds as stored
 * @out_n_fds: (out) (optional): the number of fds returned, that of @names
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Gets copies of several entries at once: either all or none. It does not
 * wait for missing names.
 *
 * Returns: (array length=out_n_fds) (transfer full): new fds, in the order
 *   of @names, that belong to the caller (close them, g_free() the array),
 *   or %NULL with @error set
 */
int *fdb_client_retrieve_many_sync(FdbClient *client, const char *const *names, FdbRetrieveOptions *options,
                                   gsize *out_n_fds, GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) opts = NULL;
        g_autoptr(GVariant) fds_v = NULL;
        FdArray *a;

        g_return_val_if_fail(FDB_IS_CLIENT(client), NULL);
        g_return_val_if_fail(names != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        opts = fdb_retrieve_options_to_variant(options);
        if (!fdb_broker1_call_retrieve_many_sync(client->proxy, names, opts, call_flags(client), -1, NULL, &fds_v,
                                                 &out_list, cancellable, error)) {
                _fdb_error_from_call(error);
                return NULL;
        }
        a = retrieve_many_reply(names, fds_v, out_list, error);
        if (!a)
                return NULL;
        return fd_array_steal(a, out_n_fds);
}

static void retrieve_many_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) fds_v = NULL;
        GError *error = NULL;
        FdArray *a;

        if (!fdb_broker1_call_retrieve_many_finish(FDB_BROKER1(source), &fds_v, &out_list, result, &error)) {
                task_return_call_error(task, error);
                return;
        }
        a = retrieve_many_reply(g_task_get_task_data(task), fds_v, out_list, &error);
        if (!a) {
                g_task_return_error(task, error);
                return;
        }
        g_task_return_pointer(task, a, (GDestroyNotify) fd_array_free);
}

/**
 * fdb_client_retrieve_many:
 * @client: an #FdbClient
 * @names: (array zero-terminated=1): the entry names, at most 16
 * @options: (nullable): how to hand them back, %NULL for the fds as stored
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_retrieve_many_sync(); finish with
 * fdb_client_retrieve_many_finish().
 */
void fdb_client_retrieve_many(FdbClient *client, const char *const *names, FdbRetrieveOptions *options,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) opts = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(names != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_retrieve_many);
        g_task_set_task_data(task, g_strdupv((char **) names), (GDestroyNotify) g_strfreev);
        opts = fdb_retrieve_options_to_variant(options);
        fdb_broker1_call_retrieve_many(client->proxy, names, opts, call_flags(client), -1, NULL, cancellable,
                                       retrieve_many_done, task);
}

/**
 * fdb_client_retrieve_many_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @out_n_fds: (out) (optional): the number of fds returned
 * @error: return location for a #GError
 *
 * Returns: (array length=out_n_fds) (transfer full): new fds in the order of
 *   the names, or %NULL with @error set
 */
int *fdb_client_retrieve_many_finish(FdbClient *client, GAsyncResult *result, gsize *out_n_fds, GError **error) {
        FdArray *a;

        CHECK_FINISH(client, result, fdb_client_retrieve_many, NULL);
        a = g_task_propagate_pointer(G_TASK(result), error);
        if (!a)
                return NULL;
        return fd_array_steal(a, out_n_fds);
}

/* ---- Remove ------------------------------------------------------------- */

/**
 * fdb_client_remove_sync:
 * @client: an #FdbClient
 * @name: the entry name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Removes an entry: allowed to its owner, root, and callers that policy
 * grants `manage`.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_remove_sync(FdbClient *client, const char *name, GCancellable *cancellable, GError **error) {
        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        g_return_val_if_fail(name != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!fdb_broker1_call_remove_sync(client->proxy, name, call_flags(client), -1, cancellable, error)) {
                _fdb_error_from_call(error);
                return FALSE;
        }
        return TRUE;
}

static void remove_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        GError *error = NULL;

        if (!fdb_broker1_call_remove_finish(FDB_BROKER1(source), result, &error))
                task_return_call_error(task, error);
        else
                g_task_return_boolean(task, TRUE);
}

/**
 * fdb_client_remove:
 * @client: an #FdbClient
 * @name: the entry name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_remove_sync(); finish with
 * fdb_client_remove_finish().
 */
void fdb_client_remove(FdbClient *client, const char *name, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data) {
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(name != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_remove);
        fdb_broker1_call_remove(client->proxy, name, call_flags(client), -1, cancellable, remove_done, task);
}

/**
 * fdb_client_remove_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_remove_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_remove, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- List --------------------------------------------------------------- */

static GVariant *list_filter(const char *prefix) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        if (prefix && *prefix)
                g_variant_builder_add(&b, "{sv}", "prefix", g_variant_new_string(prefix));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static GPtrArray *list_reply(GVariant *entries) {
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) fdb_entry_info_unref);
        GVariantIter iter;
        const char *name;
        GVariant *info;

        g_variant_iter_init(&iter, entries);
        while (g_variant_iter_next(&iter, "(&s@a{sv})", &name, &info)) {
                g_ptr_array_add(a, fdb_entry_info_new(name, info));
                g_variant_unref(info);
        }
        return a;
}

/**
 * fdb_client_list_sync:
 * @client: an #FdbClient
 * @prefix: (nullable): only names that start with this, %NULL or "" for all
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Lists the entries the caller owns or may retrieve, sorted by name.
 *
 * Returns: (transfer container) (element-type FdbEntryInfo): the entries;
 *   g_ptr_array_unref() frees them. %NULL with @error set on failure.
 */
GPtrArray *fdb_client_list_sync(FdbClient *client, const char *prefix, GCancellable *cancellable,
                                GError **error) {
        g_autoptr(GVariant) filter = NULL;
        g_autoptr(GVariant) entries = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        filter = list_filter(prefix);
        if (!fdb_broker1_call_list_sync(client->proxy, filter, call_flags(client), -1, &entries, cancellable, error)) {
                _fdb_error_from_call(error);
                return NULL;
        }
        return list_reply(entries);
}

static void list_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GVariant) entries = NULL;
        GError *error = NULL;

        if (!fdb_broker1_call_list_finish(FDB_BROKER1(source), &entries, result, &error))
                task_return_call_error(task, error);
        else
                g_task_return_pointer(task, list_reply(entries), (GDestroyNotify) g_ptr_array_unref);
}

/**
 * fdb_client_list:
 * @client: an #FdbClient
 * @prefix: (nullable): only names that start with this, %NULL or "" for all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_list_sync(); finish with
 * fdb_client_list_finish().
 */
void fdb_client_list(FdbClient *client, const char *prefix, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) filter = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_list);
        filter = list_filter(prefix);
        fdb_broker1_call_list(client->proxy, filter, call_flags(client), -1, cancellable, list_done, task);
}

/**
 * fdb_client_list_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type FdbEntryInfo): the entries,
 *   or %NULL with @error set
 */
GPtrArray *fdb_client_list_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_list, NULL);
        return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- CreateMemory ------------------------------------------------------- */

/**
 * fdb_client_create_memory_sync:
 * @client: an #FdbClient
 * @name: the entry name
 * @size: the size in bytes, at least 1 and at most the broker's
 *   MaxMemorySize
 * @options: (nullable): how to store it, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Has the broker create a memfd of @size bytes, deposit it under @name
 * (owned by the caller) and hand back its writable fd. The memory counts
 * against the broker's MaxMemorySize, not the caller's.
 *
 * Returns: the writable memfd, which belongs to the caller, or -1 with
 *   @error set
 */
int fdb_client_create_memory_sync(FdbClient *client, const char *name, guint64 size, FdbDepositOptions *options,
                                  GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) opts = NULL;
        g_autoptr(GVariant) fd_v = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), -1);
        g_return_val_if_fail(name != NULL, -1);
        g_return_val_if_fail(error == NULL || *error == NULL, -1);

        opts = fdb_deposit_options_to_variant(options);
        if (!fdb_broker1_call_create_memory_sync(client->proxy, name, size, opts, call_flags(client), -1, NULL, &fd_v,
                                                 &out_list, cancellable, error)) {
                _fdb_error_from_call(error);
                return -1;
        }
        return take_fd(out_list, g_variant_get_handle(fd_v), name, error);
}

static void single_fd_done(GTask *task, gboolean ok, GVariant *fd_v, GUnixFDList *out_list, GError *error) {
        int fd;

        if (!ok) {
                task_return_call_error(task, error);
                return;
        }
        fd = take_fd(out_list, g_variant_get_handle(fd_v), g_task_get_task_data(task), &error);
        if (fd < 0)
                g_task_return_error(task, error);
        else
                task_return_fd(task, fd);
}

static void create_memory_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) fd_v = NULL;
        GError *error = NULL;
        gboolean ok;

        ok = fdb_broker1_call_create_memory_finish(FDB_BROKER1(source), &fd_v, &out_list, result, &error);
        single_fd_done(task, ok, fd_v, out_list, error);
}

/**
 * fdb_client_create_memory:
 * @client: an #FdbClient
 * @name: the entry name
 * @size: the size in bytes
 * @options: (nullable): how to store it, %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_create_memory_sync(); finish with
 * fdb_client_create_memory_finish().
 */
void fdb_client_create_memory(FdbClient *client, const char *name, guint64 size, FdbDepositOptions *options,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) opts = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(name != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_create_memory);
        g_task_set_task_data(task, g_strdup(name), g_free);
        opts = fdb_deposit_options_to_variant(options);
        fdb_broker1_call_create_memory(client->proxy, name, size, opts, call_flags(client), -1, NULL, cancellable,
                                       create_memory_done, task);
}

/**
 * fdb_client_create_memory_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: the writable memfd, which belongs to the caller, or -1 with
 *   @error set
 */
int fdb_client_create_memory_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_create_memory, -1);
        return task_propagate_fd(G_TASK(result), error);
}

/* ---- OpenPath ----------------------------------------------------------- */

static GVariant *open_path_options(FdbAccess access, gboolean nonblock) {
        static const char *const modes[] = {
                [FDB_ACCESS_READ_ONLY] = "read-only",
                [FDB_ACCESS_WRITE_ONLY] = "write-only",
                [FDB_ACCESS_READ_WRITE] = "read-write",
        };
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "access",
                              g_variant_new_string((guint) access < G_N_ELEMENTS(modes) ? modes[access] : "invalid"));
        if (nonblock)
                g_variant_builder_add(&b, "{sv}", "nonblock", g_variant_new_boolean(TRUE));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/**
 * fdb_client_open_path_sync:
 * @client: an #FdbClient
 * @path: (type filename): an absolute, normalised path
 * @access: the access mode to open it with
 * @nonblock: whether to open it with `O_NONBLOCK`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Has the broker open @path on the caller's behalf, with its own
 * privileges, where policy allows it. Symlinks are never followed.
 *
 * Returns: the opened fd, which belongs to the caller, or -1 with @error set
 */
int fdb_client_open_path_sync(FdbClient *client, const char *path, FdbAccess access, gboolean nonblock,
                              GCancellable *cancellable, GError **error) {
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) opts = NULL;
        g_autoptr(GVariant) fd_v = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), -1);
        g_return_val_if_fail(path != NULL, -1);
        g_return_val_if_fail(error == NULL || *error == NULL, -1);

        opts = open_path_options(access, nonblock);
        if (!fdb_broker1_call_open_path_sync(client->proxy, path, opts, call_flags(client), -1, NULL, &fd_v, &out_list,
                                             cancellable, error)) {
                _fdb_error_from_call(error);
                return -1;
        }
        return take_fd(out_list, g_variant_get_handle(fd_v), path, error);
}

static void open_path_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        g_autoptr(GUnixFDList) out_list = NULL;
        g_autoptr(GVariant) fd_v = NULL;
        GError *error = NULL;
        gboolean ok;

        ok = fdb_broker1_call_open_path_finish(FDB_BROKER1(source), &fd_v, &out_list, result, &error);
        single_fd_done(task, ok, fd_v, out_list, error);
}

/**
 * fdb_client_open_path:
 * @client: an #FdbClient
 * @path: (type filename): an absolute, normalised path
 * @access: the access mode to open it with
 * @nonblock: whether to open it with `O_NONBLOCK`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_open_path_sync(); finish with
 * fdb_client_open_path_finish().
 */
void fdb_client_open_path(FdbClient *client, const char *path, FdbAccess access, gboolean nonblock,
                          GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) opts = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(path != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_open_path);
        g_task_set_task_data(task, g_strdup(path), g_free);
        opts = open_path_options(access, nonblock);
        fdb_broker1_call_open_path(client->proxy, path, opts, call_flags(client), -1, NULL, cancellable,
                                   open_path_done, task);
}

/**
 * fdb_client_open_path_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: the opened fd, which belongs to the caller, or -1 with @error set
 */
int fdb_client_open_path_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_open_path, -1);
        return task_propagate_fd(G_TASK(result), error);
}

/* ---- Watch -------------------------------------------------------------- */

/* The broker sends EntryAdded/EntryRemoved to watchers alone; GDBus hands
 * them to this subscription in the thread-default main context of the
 * first watch call, and stops before dispose returns. */
static void on_watch_signal(GDBusConnection *connection, const char *sender, const char *path,
                            const char *interface, const char *member, GVariant *parameters, gpointer user_data) {
        FdbClient *client = user_data;

        if (g_strcmp0(member, "EntryAdded") == 0 && g_variant_is_of_type(parameters, G_VARIANT_TYPE("(sa{sv})"))) {
                g_autoptr(GVariant) info_v = NULL;
                g_autoptr(FdbEntryInfo) info = NULL;
                const char *name;

                g_variant_get(parameters, "(&s@a{sv})", &name, &info_v);
                info = fdb_entry_info_new(name, info_v);
                g_signal_emit(client, client_signals[SIGNAL_ENTRY_ADDED], 0, name, info);
        } else if (g_strcmp0(member, "EntryRemoved") == 0 && g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ss)"))) {
                const char *name, *reason;

                g_variant_get(parameters, "(&s&s)", &name, &reason);
                g_signal_emit(client, client_signals[SIGNAL_ENTRY_REMOVED], 0, name, reason);
        }
}

/* Subscribes before the Watch call goes out, so no signal is missed. */
static void watch_subscribe(FdbClient *client) {
        GDBusConnection *connection;

        if (client->watch_subscription != 0)
                return;
        connection = g_dbus_proxy_get_connection(G_DBUS_PROXY(client->proxy));
        client->watch_subscription = g_dbus_connection_signal_subscribe(
                connection, g_dbus_proxy_get_name(G_DBUS_PROXY(client->proxy)), FDB_INTERFACE, NULL,
                FDB_OBJECT_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_watch_signal, client, NULL);
}

static GVariant *watch_options(void) {
        return g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
}

/**
 * fdb_client_watch_sync:
 * @client: an #FdbClient
 * @patterns: (array zero-terminated=1): globs over entry names, 1 to 32:
 *   `*` stays within one `/`-separated component, a trailing `/` `**`
 *   matches everything below, `**` alone matches every name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Asks the broker for #FdbClient::entry-added and #FdbClient::entry-removed
 * about the entries matching @patterns that this client may see (those
 * fdb_client_list_sync() would show). The signals are emitted in the
 * thread-default main context of the first watch call. Watching again
 * replaces the patterns; the watch ends with fdb_client_unwatch_sync() or
 * when the connection closes. A user may hold 16 watches at once
 * (%FDB_ERROR_QUOTA_EXCEEDED).
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_watch_sync(FdbClient *client, const char *const *patterns, GCancellable *cancellable,
                               GError **error) {
        g_autoptr(GVariant) options = NULL;

        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        g_return_val_if_fail(patterns != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        watch_subscribe(client);
        options = watch_options();
        if (!fdb_broker1_call_watch_sync(client->proxy, patterns, options, call_flags(client), -1, cancellable,
                                         error)) {
                _fdb_error_from_call(error);
                return FALSE;
        }
        return TRUE;
}

static void boolean_call_done(GTask *task, gboolean ok, GError *error) {
        if (!ok)
                task_return_call_error(task, error);
        else
                g_task_return_boolean(task, TRUE);
}

static void watch_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        GError *error = NULL;
        gboolean ok = fdb_broker1_call_watch_finish(FDB_BROKER1(source), result, &error);

        boolean_call_done(task, ok, error);
}

/**
 * fdb_client_watch:
 * @client: an #FdbClient
 * @patterns: (array zero-terminated=1): globs over entry names, as for
 *   fdb_client_watch_sync()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_watch_sync(); finish with
 * fdb_client_watch_finish().
 */
void fdb_client_watch(FdbClient *client, const char *const *patterns, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data) {
        g_autoptr(GVariant) options = NULL;
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));
        g_return_if_fail(patterns != NULL);

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_watch);
        watch_subscribe(client);
        options = watch_options();
        fdb_broker1_call_watch(client->proxy, patterns, options, call_flags(client), -1, cancellable, watch_done,
                               task);
}

/**
 * fdb_client_watch_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_watch_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_watch, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * fdb_client_unwatch_sync:
 * @client: an #FdbClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Ends the client's watch; without one it does nothing. Signals the broker
 * sent before it answered may still be emitted.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_unwatch_sync(FdbClient *client, GCancellable *cancellable, GError **error) {
        g_return_val_if_fail(FDB_IS_CLIENT(client), FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!fdb_broker1_call_unwatch_sync(client->proxy, call_flags(client), -1, cancellable, error)) {
                _fdb_error_from_call(error);
                return FALSE;
        }
        return TRUE;
}

static void unwatch_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GTask) task = user_data;
        GError *error = NULL;
        gboolean ok = fdb_broker1_call_unwatch_finish(FDB_BROKER1(source), result, &error);

        boolean_call_done(task, ok, error);
}

/**
 * fdb_client_unwatch:
 * @client: an #FdbClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the broker answered
 * @user_data: data for @callback
 *
 * The async form of fdb_client_unwatch_sync(); finish with
 * fdb_client_unwatch_finish().
 */
void fdb_client_unwatch(FdbClient *client, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data) {
        GTask *task;

        g_return_if_fail(FDB_IS_CLIENT(client));

        task = g_task_new(client, cancellable, callback, user_data);
        g_task_set_source_tag(task, fdb_client_unwatch);
        fdb_broker1_call_unwatch(client->proxy, call_flags(client), -1, cancellable, unwatch_done, task);
}

/**
 * fdb_client_unwatch_finish:
 * @client: an #FdbClient
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean fdb_client_unwatch_finish(FdbClient *client, GAsyncResult *result, GError **error) {
        CHECK_FINISH(client, result, fdb_client_unwatch, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}
