/* protocol.h: the one definition of fdbroker's public protocol constants.
 *
 * Names, error names and limits of SPEC §1/§5 live here and nowhere else; the
 * service, the policy engine, the clients and the tests include this file. A
 * test checks it against introspection/org.fdbroker.Broker1.xml. Plain C: no
 * library is needed to include it. */
#pragma once

#define FDB_BUS_NAME "org.fdbroker.Broker1"
#define FDB_OBJECT_PATH "/org/fdbroker/Broker1"
#define FDB_INTERFACE "org.fdbroker.Broker1"

#define FDB_ERROR_NAME_NOT_FOUND "org.fdbroker.Error.NotFound"
#define FDB_ERROR_NAME_EXISTS "org.fdbroker.Error.Exists"
#define FDB_ERROR_NAME_QUOTA_EXCEEDED "org.fdbroker.Error.QuotaExceeded"
#define FDB_ERROR_NAME_NOT_SUPPORTED "org.fdbroker.Error.NotSupported"
#define FDB_ERROR_NAME_BUSY "org.fdbroker.Error.Busy"
#define FDB_ERROR_NAME_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define FDB_ERROR_NAME_INTERACTIVE_AUTHORIZATION_REQUIRED \
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
#define FDB_ERROR_NAME_INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"

/* One call carries at most this many fds: the system bus's per-message limit. */
#define FDB_FDS_PER_CALL_MAX 16u
/* Names: 1..255 bytes of [A-Za-z0-9_.:@/-]. */
#define FDB_NAME_MAX 255u
#define FDB_DESCRIPTION_MAX 1024u
/* Retrieve's wait-usec is capped at 300 s. */
#define FDB_WAIT_USEC_MAX (300ull * 1000000ull)

/* SPEC §5: the direct socket, and how many direct connections a uid may hold. */
#define FDB_DIRECT_SOCKET_PATH "/run/fdbroker/socket"
#define FDB_DIRECT_CONNECTIONS_PER_UID_MAX 16u
