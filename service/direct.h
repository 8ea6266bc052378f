/* direct.h: peer-to-peer connections that skip the bus daemon (SPEC §5).
 *
 * The broker serves the very same object on connections of its own: one
 * end of a socket pair handed out by OpenConnection, or a connection
 * accepted on the listening socket (/run/fdbroker/socket, passed by
 * systemd or named by --direct-socket). Each connection gets one Peer
 * (peers.c) whose identity is pinned when the connection is made: the
 * bus's answer for the OpenConnection caller, or what the kernel recorded
 * at connect() (SO_PEERCRED, SO_PEERGROUPS, SO_PEERSEC, SO_PEERPIDFD) for
 * an accepted one. Nothing is read from /proc and the bus driver is never
 * asked. The module owns the connections and the listening socket; when a
 * connection closes its Peer is dropped through the same "gone" path a bus
 * peer leaving takes, which ends its connection-lifetime entries. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "peers.h"

/* Without an accounting (peers->acct NULL): all uids together; each uid
 * has FDB_DIRECT_CONNECTIONS_PER_UID_MAX. With one, each served connection
 * is charged to its uid as ACCT_DIRECT_CONNECTIONS (MaxDirectConnections,
 * MaxDirectConnectionsPerUser and the fair share of what is left). */
#define DIRECT_CONNECTIONS_MAX 1024u
/* Over-quota connections on the listening socket kept open just long
 * enough to answer their first call with QuotaExceeded. */
#define DIRECT_REFUSED_MAX 16u

typedef struct DirectConnection DirectConnection;

/* Registers the broker's object on a new connection; returns <0 on failure. */
typedef int (*direct_attach_fn)(sd_bus *conn, void *userdata);

typedef struct Direct {
        sd_event *event;
        Peers *peers;
        direct_attach_fn attach;
        void *userdata;
        sd_id128_t server_id;
        sd_event_source *listener;    /* owns the listening socket's fd */
        DirectConnection *connections;
        unsigned n_connections;       /* served, with a Peer */
        unsigned n_refused;           /* over quota, answering one error */
        unsigned long long next_id;
        char refusal[256];            /* why the last connection was refused */
} Direct;

void direct_init(Direct *d, sd_event *event, Peers *peers, direct_attach_fn attach, void *userdata);

/* Closes every connection (dropping their peers) and the listener. */
void direct_done(Direct *d);

/* Serves connections accepted on fd, a listening AF_UNIX stream socket
 * (consumed, also on failure). */
int direct_listen(Direct *d, int fd);

/* Serves connections on the listening socket fdbroker.socket passes
 * (FileDescriptorName=direct), else on one bound at path (mode 0666: who
 * may connect is decided per call by policy; a stale socket there is
 * replaced), else (path NULL) on none. Must run before the fd store's fds
 * are taken (persist.c skips this one). Says where, or why not, in the log. */
int direct_serve_socket(Direct *d, const char *path);

/* Opens a socket pair and serves one end as a connection acting as caller
 * (its identity is copied; the unique bus name it came from, if any, is
 * what polkit is asked about). *ret_fd gets the other end (O_CLOEXEC),
 * owned by the caller. -EDQUOT: the uid holds its share of connections
 * (d->refusal says which limit), -EUSERS: all connections are taken (no
 * accounting only). */
int direct_open_pair(Direct *d, const Peer *caller, int *ret_fd);

/* Direct connections uid holds now. */
unsigned direct_count_uid(const Direct *d, uid_t uid);

/* OpenConnection's options: none so far; any key is InvalidArgs. */
int direct_parse_options(sd_bus_message *m, sd_bus_error *error);
