/* watch.h: who asked to hear about entries coming and going (Watch/Unwatch).
 *
 * A Watcher is one connection's standing request: a few glob patterns over
 * entry names (policy_glob_match's rules), the Peer whose identity decides
 * what it may see, and where its signals go: an sd_bus plus a destination
 * (the watcher's unique name on a bus; NULL on a direct connection, where
 * the connection itself is the destination). Signals are never broadcast:
 * each goes to one watcher, and only about entries the broker's visibility
 * check lets that watcher see, so nobody learns of an entry they may not
 * see. A connection has at most one watch (Watch again replaces its
 * patterns); watches are charged to their uid as ACCT_WATCHES when an
 * accounting is set (MaxWatchesPerUser and the fair share of what is left
 * of MaxWatches), else limited to WATCHES_PER_UID_MAX per uid. The module owns its watchers and
 * the pattern strings; it borrows the Peers, which the broker tells it
 * about before they go (watches_forget_peer).
 *
 * Watchers that stop reading: on dbus-daemon, signals queued for a
 * receiver that does not read count against the broker's own connection,
 * and past the daemon's limit (127 MB on the system bus) it stops reading
 * from the broker, for everyone. So each watcher counts the signals sent to
 * it since the broker last looked; every WATCH_ASK_MARK of them the broker
 * asks dbus-daemon's org.freedesktop.DBus.Debug.Stats.GetConnectionStats
 * about it (asynchronously; one question per WATCH_ASK_MARK signals, and
 * none for a watcher that hears little). When more than WATCH_QUEUED_MAX
 * messages or WATCH_QUEUED_BYTES_MAX bytes wait in the daemon for it, its
 * watch ends: no more signals, its ACCT_WATCHES given back, one log line;
 * it is not told (it does not read). A bus without the statistics
 * (dbus-broker, which charges what waits to the receiver and is not
 * stalled) turns the looking off, logged once. On a direct connection
 * nothing waits in a daemon but in the broker's own sd-bus write queue:
 * more than WATCH_QUEUED_MAX messages there end the watch likewise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "accounting.h"
#include "peers.h"
#include "registry.h"

/* Watches one uid may hold at once without an accounting (QuotaExceeded
 * beyond); with one, MaxWatchesPerUser (default the same). */
#define WATCHES_PER_UID_MAX 16u
/* Patterns one Watch call may carry (InvalidArgs beyond). */
#define WATCH_PATTERNS_MAX 32u
/* Longest pattern, in bytes: a name, with room for bracket expressions. */
#define WATCH_PATTERN_MAX 1024u

/* Signals sent to a watcher that make the broker look how many it has not
 * read (a question costs the daemon about what one signal does). */
#define WATCH_ASK_MARK 256u
/* The most that may wait unread for one watcher, in the daemon (or, on a
 * direct connection, in the broker's write queue), before its watch ends:
 * with MaxWatchesPerUser (16) stalled watches one uid holds at most 32 MiB
 * in the daemon, a quarter of its 127 MB. */
#define WATCH_QUEUED_MAX 4096u
#define WATCH_QUEUED_BYTES_MAX (2u * 1024u * 1024u)

typedef struct Watcher Watcher;

/* What a watcher has been sent since the broker last looked. */
typedef struct WatchBacklog {
        unsigned sent;
} WatchBacklog;

/* Counts one signal sent; true when it is time to look (the caller then
 * calls watch_backlog_asked, unless a look is already under way). */
bool watch_backlog_note(WatchBacklog *b);
/* A look was started: count again from zero. */
void watch_backlog_asked(WatchBacklog *b);
/* What the look found waiting unread: true when past the budget (the watch
 * must end). */
bool watch_backlog_over(uint64_t queued_messages, uint64_t queued_bytes);

typedef struct Watches {
        Watcher *list;
        unsigned n_watchers;
        Accounting *acct;       /* borrowed, may be NULL; set after watches_init */
        bool no_stats;          /* the bus has no GetConnectionStats: never look */
        unsigned n_ended;       /* watches ended because their watcher did not read */
} Watches;

/* Whether the peer may learn that the entry exists (the broker's List
 * visibility). */
typedef bool (*watch_visible_fn)(const Peer *p, const Entry *e, void *userdata);
/* Appends the entry's info a{sv} (exactly Retrieve's) to m. */
typedef int (*watch_append_info_fn)(sd_bus_message *m, const Entry *e);

void watches_init(Watches *ws);
void watches_done(Watches *ws);

/* InvalidArgs naming pattern when it can match no entry name or is not a
 * glob we accept; 0 otherwise. */
int watch_check_pattern(const char *pattern, sd_bus_error *error);

/* Handles a Watch call m from peer p: reads (as, a{sv}), validates every
 * pattern and option (no option keys are defined yet: any is InvalidArgs),
 * checks the per-uid limit, then installs or replaces the watch of m's
 * connection. Returns 0 with nothing changed and error set on refusal,
 * 1 when the watch is in place, negative errno on failure. */
int watches_handle_watch(Watches *ws, sd_bus_message *m, Peer *p, sd_bus_error *error);

/* Ends the watch of m's connection; true if there was one. */
bool watches_remove_for(Watches *ws, sd_bus_message *m);

/* Drops every watch made by p (it left the bus or its connection closed). */
void watches_forget_peer(Watches *ws, Peer *p);

bool watches_any(const Watches *ws);

/* Sends EntryAdded about e to every watcher whose patterns match and who may
 * see it. */
void watches_entry_added(Watches *ws, const Entry *e, watch_visible_fn visible, watch_append_info_fn append_info,
                         void *userdata);

/* Sends EntryRemoved(e->name, reason) likewise; e is still whole. */
void watches_entry_removed(Watches *ws, const Entry *e, const char *reason, watch_visible_fn visible,
                           void *userdata);

/* The signal's reason for one of the broker's removal log texts: "expired",
 * "replaced", "retrieved once", "depositor's connection closed", anything
 * else "removed". */
const char *watch_reason_from_why(const char *why);
