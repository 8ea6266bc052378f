/* peers.h: who is calling, as the bus vouches for it.
 *
 * One Peer per unique bus name that has called us. On its first call the
 * broker asks the bus driver's GetConnectionCredentials (asynchronously) for
 * the uid, supplementary gids and security label fixed when the peer
 * connected, and queues that peer's calls until the answer is in. The peer,
 * with its cache, goes when the bus says the name has gone; unique names are
 * never reused, so a cached answer is never someone else's. Nothing here
 * reads /proc. A Peer also anchors what dies with the connection: its
 * connection-lifetime entries and its pending waits (see broker.c). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "acl.h"
#include "hashtable.h"
#include "registry.h"

#define PEER_QUEUE_MAX 64

typedef struct Waiter Waiter;
typedef struct Peers Peers;

/* A method handler to run again once the caller's identity is known. */
typedef int (*peer_resume_fn)(sd_bus_message *m, void *userdata, sd_bus_error *error);

typedef struct QueuedCall {
        sd_bus_message *message;  /* a reference we hold */
        peer_resume_fn handler;
} QueuedCall;

typedef struct Peer {
        HashLink link;
        Peers *peers;
        char *unique_name;

        bool ready;               /* identity below is known */
        uid_t uid;
        gid_t *gids;
        size_t n_gids;
        char *label;

        sd_bus_slot *lookup;      /* GetConnectionCredentials in flight */
        QueuedCall queue[PEER_QUEUE_MAX];
        size_t n_queued;

        Entry *entries;           /* connection-lifetime entries it deposited */
        Waiter *waiters;          /* its parked wait-usec retrievals */
        unsigned n_waiters;

        /* A direct (peer-to-peer) connection's peer (direct.c): its
         * identity was pinned when it was made, never asked of the bus.
         * unique_name is then "direct:N", for logs only. */
        sd_bus *direct;           /* the connection; NULL for bus peers */
        int direct_pidfd;         /* SO_PEERPIDFD of a socket peer, or -1 */
        char *direct_origin;      /* OpenConnection: the caller's unique bus name */
} Peer;

/* Answers m the way sd-bus answers a method handler that returned r and
 * set error: an error reply when r is negative or error is set, nothing
 * otherwise. Returns true when it sent an error. For calls answered
 * outside sd-bus's own dispatch (resumed, parked). */
bool reply_if_failed(sd_bus_message *m, int r, sd_bus_error *error);

/* Runs handler on m again from the start, answering failures as above. */
void resume_call(peer_resume_fn handler, sd_bus_message *m, void *userdata);

/* Called when a peer leaves the bus, before it is freed: the owner drops
 * the entries and waiters hanging off it. */
typedef void (*peer_gone_fn)(Peer *p, void *userdata);

struct Peers {
        sd_bus *bus;
        HashTable by_name;
        HashTable by_bus;          /* direct peers, keyed by their sd_bus */
        sd_bus_slot *match;
        peer_gone_fn gone;
        void *userdata;            /* passed to gone and to resumed handlers */
};

/* Sets up the cache on bus and subscribes to disconnections. */
int peers_init(Peers *ps, sd_bus *bus, peer_gone_fn gone, void *userdata);
void peers_done(Peers *ps);

/* Finds the calling peer of m. Returns 1 with *ret set when its identity is
 * known. Returns 0 when the call was queued (m referenced) and handler will
 * be run with m once the identity is known: the handler must then return 1
 * itself. Negative errno on failure (-EBUSY: too many queued calls). */
int peers_get_caller(Peers *ps, sd_bus_message *m, peer_resume_fn handler, Peer **ret);

Identity peer_identity(const Peer *p);

/* A peer on the direct connection conn (referenced), with an identity
 * pinned already: uid, gids and label are copied, pidfd (-1: none) is
 * consumed, origin (NULL: none) is the unique bus name that asked for the
 * connection. The peer is ready at once and never queues calls. */
int peers_add_direct(Peers *ps, sd_bus *conn, const char *name, uid_t uid, const gid_t *gids, size_t n_gids,
                     const char *label, int pidfd, const char *origin, Peer **ret);

/* The peer of direct connection conn, or NULL. */
Peer *peers_find_direct(Peers *ps, sd_bus *conn);

/* The direct connection closed: the owner drops what hangs off p (the same
 * "gone" callback as a bus peer leaving), then p is freed. */
void peers_drop_direct(Peers *ps, Peer *p);

/* False while some peer's calls wait for its credentials. */
bool peers_all_ready(const Peers *ps);
