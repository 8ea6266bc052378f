/* peers.h: who is calling, as the bus vouches for it.
 *
 * One Peer per unique bus name that has called us. On its first call the
 * broker asks the bus driver's GetConnectionCredentials (asynchronously) for
 * the uid, supplementary gids and security label fixed when the peer
 * connected, and queues that peer's calls until the answer is in. The peer,
 * with its cache, goes when the bus says the name has gone; unique names are
 * never reused, so a cached answer is never someone else's. Nothing here
 * reads /proc (but the pid of a pidfd, for log lines only). A Peer also
 * anchors what dies with the connection: its connection-lifetime entries and
 * its pending waits (see broker.c).
 *
 * Slow readers: on dbus-daemon, fds in replies waiting in the daemon for
 * a peer count against the broker's own connection (64 in flight on the
 * system bus), and past that the daemon stops reading from the broker, for
 * everyone. So each Peer counts the fds sent to it that may still wait
 * there (charged to its uid as ACCT_UNREAD_FDS), and past PEER_ASK_MARK
 * asks dbus-daemon's org.freedesktop.DBus.Debug.Stats.GetConnectionStats:
 * its OutgoingFDs is exactly what still waits in the daemon for that peer;
 * fds that left it sit in the peer's socket buffer (or were read) and stall
 * no one. A call that would send fds past the peer's budget
 * (PEER_UNREAD_FDS_MAX, and its uid's fair share of MaxUnreadFds) waits in
 * the peer's queue until they are discharged; when the queue is full it is
 * refused with QuotaExceeded. A client that never reads fills its socket
 * buffer, and then at most its budget waits in the daemon.
 *
 * Not Peer.Ping: a client blocked in sd_bus_call() or libdbus's
 * send_with_reply_and_block() reads but answers no ping until it
 * dispatches, and a hostile one can answer a ping it never read (the daemon
 * lets through a reply to the pending call's serial, which is guessable).
 * A bus without the statistics (dbus-broker, which charges what waits for
 * a receiver to that receiver and is not stalled by slow readers; or a
 * dbus-daemon whose policy refuses the call) turns the counting off, and
 * the broker logs why.
 *
 * Direct connections have no daemon, but fds sent and not read are in
 * flight in the peer's socket, charged by the kernel to the broker's user
 * (past its RLIMIT_NOFILE, no fd can be sent to anyone without
 * CAP_SYS_RESOURCE). A direct peer may have PEER_UNREAD_FDS_MAX fds sent
 * since its connection was last seen drained (sd-bus write queue empty and
 * SIOCOUTQ 0); past that its fd-returning calls wait, then are refused, as
 * above. Not charged to MaxUnreadFds. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "accounting.h"
#include "acl.h"
#include "decide.h"
#include "hashtable.h"
#include "protocol.h"
#include "registry.h"

#define PEER_QUEUE_MAX 64
/* Unread fds that make the broker ask the bus about a peer (more than one
 * RetrieveMany's worth: the daemon's answer costs it about what a call
 * does), and the most a peer may have (two RetrieveMany). */
#define PEER_ASK_MARK (FDB_FDS_PER_CALL_MAX + 1)
#define PEER_UNREAD_FDS_MAX (2 * FDB_FDS_PER_CALL_MAX)
/* Calls queued before the bus said who sent them are charged to this uid,
 * which no process has. */
#define PEER_UID_UNKNOWN ((uid_t) -1)

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
        int pidfd;                /* ProcessFD where the bus gives one (owned, O_CLOEXEC), or -1 */
        pid_t pid;                /* for log lines only, never for decisions; 0: unknown */
        PolicySnapshot *snapshot; /* built from the above when it arrived; the only input to decisions */

        sd_bus_slot *lookup;      /* GetConnectionCredentials in flight */
        QueuedCall queue[PEER_QUEUE_MAX];
        size_t n_queued;
        uid_t queue_uid;          /* whom the queued calls are charged to */

        unsigned unread_fds;      /* fds sent that it may not have read */
        unsigned unread_at_stats; /* of those, sent before the statistics asked for */
        sd_bus_slot *stats;       /* GetConnectionStats about it in flight */
        sd_event_source *retry;   /* to ask again while its fds stay stuck */
        uint64_t retry_usec;

        struct EntryLife *entries; /* connection-lifetime entries it deposited
                                    * (entries.c's records; ->entry each) */
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
        Accounting *acct;          /* queued calls and unread fds are charged here; NULL: not */
        bool unlimited;            /* the bus cannot tell who reads, or need not: no limit */
        sd_bus_slot *probe;        /* does the bus have GetConnectionStats? */
        char why[512];             /* why peers_get_caller() last said -EBUSY */
        Policy *const *policy;     /* the owner's policy pointer: snapshots are built against it */
};

/* Sets up the cache on bus and subscribes to disconnections. */
int peers_init(Peers *ps, sd_bus *bus, peer_gone_fn gone, void *userdata);
void peers_done(Peers *ps);

/* Finds the calling peer of m. Returns 1 with *ret set when its identity is
 * known (and, for a call that hands back fds, the peer has room for them).
 * Returns 0 when the call was queued (m referenced) and handler will be run
 * with m once the identity is known or the peer has read its earlier
 * replies: the handler must then return 1 itself. Negative errno on failure
 * (-EBUSY: too many queued calls, with ps->why saying which limit). */
int peers_get_caller(Peers *ps, sd_bus_message *m, peer_resume_fn handler, Peer **ret);

/* Whether fd (borrowed) is a socket connected to the same bus as the
 * broker: the peer address of an AF_UNIX stream socket equals that of the
 * broker's own bus connection (the bus's listening socket). Keeping such an
 * fd would keep someone's bus connection open inside the broker, and with
 * it every connection entry and name of that connection. */
bool peers_fd_is_bus_connection(const Peers *ps, int fd);

/* Records that a reply carrying n fds was sent to p: they count as unread
 * until the bus says they left it. */
void peers_note_fds_sent(Peers *ps, Peer *p, unsigned n);

Identity peer_identity(const Peer *p);

/* The peer that sent m if it is still there (on the bus, or its direct
 * connection still open), else NULL; for calls answered later (worker.h). */
Peer *peers_find(Peers *ps, sd_bus_message *m);
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
