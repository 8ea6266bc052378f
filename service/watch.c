/* watch.c: Watch/Unwatch and the unicast EntryAdded/EntryRemoved signals.
 *
 * See watch.h. Watchers are few (bounded per uid) and every change to the
 * registry walks them once: a pattern match and a visibility check per
 * watcher, no allocation unless a signal is sent. */
#include "watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "busstats.h"
#include "list.h"
#include "policy.h"
#include "protocol.h"

struct Watcher {
        LIST_FIELDS(Watcher, watchers); /* on Watches.list */
        sd_bus *bus;            /* where its signals go (a reference) */
        char *destination;      /* unique name; NULL on a direct connection */
        Peer *peer;             /* borrowed: its identity decides visibility */
        uid_t uid;              /* charged one ACCT_WATCHES (when ws->acct) */
        char **patterns;        /* NULL-terminated, owned */
        Watches *watches;       /* its owner, for the statistics' answer */
        WatchBacklog backlog;   /* signals sent since the broker last looked */
        sd_bus_slot *stats;     /* GetConnectionStats about it in flight */
};

void watches_init(Watches *ws) {
        *ws = (Watches) {};
}

static void watcher_free(Watches *ws, Watcher *w) {
        LIST_REMOVE(watchers, ws->list, w);
        ws->n_watchers--;
        if (ws->acct)
                accounting_discharge(ws->acct, w->uid, ACCT_WATCHES, 1);

        sd_bus_slot_unref(w->stats); /* cancels a question in flight */
        sd_bus_unref(w->bus);
        free(w->destination);
        strv_freep(&w->patterns);
        free(w);
}

void watches_done(Watches *ws) {
        while (ws->list)
                watcher_free(ws, ws->list);
}

bool watches_any(const Watches *ws) {
        return ws->list != NULL;
}

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_.:@-", c);
}

/* The bracket expression opening at pattern[*i], within the first body
 * bytes: it ends in this component, and holds only name characters.
 * Moves *i to its ']'. */
static int check_bracket(const char *pattern, size_t body, size_t *i, sd_bus_error *error) {
        /* Its first character may be ']' (or after '!'/'^'). */
        size_t j = *i + 1;

        if (j < body && (pattern[j] == '!' || pattern[j] == '^'))
                j++;
        if (j < body && pattern[j] == ']')
                j++;
        while (j < body && pattern[j] != ']' && pattern[j] != '/')
                j++;
        if (j >= body || pattern[j] != ']')
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Watch pattern '%s' has a '[' without its ']'.", pattern);
        for (size_t k = *i + 1; k < j; k++)
                if (!is_name_char(pattern[k]) && !strchr("!^]", pattern[k]))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Watch pattern '%s' has '%c' in a bracket expression; entry names "
                                                 "use only [A-Za-z0-9_.:@/-].",
                                                 pattern, pattern[k]);
        *i = j;
        return 0;
}

int watch_check_pattern(const char *pattern, sd_bus_error *error) {
        size_t len = strlen(pattern);
        size_t body = len;

        if (len == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Watch pattern '' is empty; '**' watches every name.");
        if (len > WATCH_PATTERN_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Watch pattern '%.64s…' is longer than %u bytes.", pattern,
                                         WATCH_PATTERN_MAX);
        if (strcmp(pattern, "**") == 0)
                return 0;
        if (len >= 3 && strcmp(pattern + len - 3, "/**") == 0)
                body = len - 3;

        /* The part before an optional trailing "/ **" must be a name made of
         * name characters and fnmatch wildcards, component by component. */
        for (size_t i = 0, start = 0; i <= body; i++) {
                char c = i < body ? pattern[i] : '/';

                if (c == '/') {
                        if (i == start)
                                return sd_bus_error_setf(
                                        error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Watch pattern '%s' has an empty component (a leading, trailing or double "
                                        "'/'); it could never match an entry name.",
                                        pattern);
                        if (memmem(pattern + start, i - start, "**", 2))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Watch pattern '%s' uses '**' inside it; '**' means "
                                                         "everything only as the whole pattern or a trailing '/**'.",
                                                         pattern);
                        start = i + 1;
                } else if (c == '[') {
                        int r = check_bracket(pattern, body, &i, error);
                        if (r < 0)
                                return r;
                } else if (!is_name_char(c) && c != '*' && c != '?') {
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Watch pattern '%s' has '%c', which is neither a name character "
                                                 "([A-Za-z0-9_.:@/-]) nor a wildcard (* ? [...]).",
                                                 pattern, c);
                }
        }
        return 0;
}

/* The watch of the connection m came on: same bus, same sender (a direct
 * connection has no sender, and is its own bus). */
static Watcher *find_watcher(Watches *ws, sd_bus_message *m) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        const char *sender = sd_bus_message_get_sender(m);

        LIST_FOREACH(watchers, w, ws->list)
                if (w->bus == bus && ((!sender && !w->destination) ||
                                      (sender && w->destination && strcmp(sender, w->destination) == 0)))
                        return w;
        return NULL;
}

static int check_watch_options(sd_bus_message *m, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'e', "sv");
        if (r < 0)
                return r;
        if (r > 0) {
                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown Watch option '%s'; Watch takes no options yet.", key);
        }
        return sd_bus_message_exit_container(m);
}

/* Reads Watch's arguments: the patterns (1 to WATCH_PATTERNS_MAX, each
 * checked) and the options, which must be empty. */
static int read_watch_patterns(sd_bus_message *m, char ***ret, sd_bus_error *error) {
        _cleanup_(strv_freep) char **patterns = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_read_strv(m, &patterns);
        if (r < 0)
                return r;
        r = check_watch_options(m, error);
        if (r < 0)
                return r;
        while (patterns && patterns[n]) /* an empty array reads as NULL */
                n++;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Watch needs at least one pattern; '**' watches every name.");
        if (n > WATCH_PATTERNS_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Watch takes at most %u patterns, not %zu.", WATCH_PATTERNS_MAX, n);
        for (size_t i = 0; i < n; i++) {
                r = watch_check_pattern(patterns[i], error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(patterns);
        return 0;
}

/* Whether p's uid may have one more watcher (old, the caller's existing
 * one, is not counted: watching again costs nothing). */
static int check_watch_quota(Watches *ws, const Watcher *old, const Peer *p, sd_bus_error *error) {
        unsigned n_uid = 0;

        LIST_FOREACH(watchers, i, ws->list)
                if (i != old && i->peer->uid == p->uid)
                        n_uid++;
        if (ws->acct && !old) {
                AcctRefusal why;
                char text[256];

                if (accounting_check(ws->acct, p->uid, ACCT_WATCHES, 1, 0, &why) < 0) {
                        accounting_format_refusal(&why, text, sizeof text);
                        return sd_bus_error_setf(error, FDB_ERROR_NAME_QUOTA_EXCEEDED,
                                                 "Cannot watch: %s; call Unwatch on another connection, or close "
                                                 "it.",
                                                 text);
                }
        }
        if (!ws->acct && n_uid >= WATCHES_PER_UID_MAX)
                return sd_bus_error_setf(error, FDB_ERROR_NAME_QUOTA_EXCEEDED,
                                         "uid %u already has %u watches on other connections, the limit; "
                                         "call Unwatch on one, or close it.",
                                         (unsigned) p->uid, n_uid);
        return 0;
}

/* A new watcher for m's connection, charged to p's uid. Consumes *patterns
 * on success only. */
static int watcher_add(Watches *ws, sd_bus_message *m, Peer *p, char ***patterns) {
        _cleanup_free_ char *destination = NULL;
        const char *sender = sd_bus_message_get_sender(m);
        Watcher *w;

        if (sender) {
                destination = strdup(sender);
                if (!destination)
                        return -ENOMEM;
        }
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        if (ws->acct && accounting_charge_force(ws->acct, p->uid, ACCT_WATCHES, 1) < 0) {
                free(w);
                return -ENOMEM;
        }
        w->uid = p->uid;
        w->bus = sd_bus_ref(sd_bus_message_get_bus(m));
        w->destination = TAKE_PTR(destination);
        w->peer = p;
        w->patterns = TAKE_PTR(*patterns);
        w->watches = ws;
        LIST_PREPEND(watchers, ws->list, w);
        ws->n_watchers++;
        return 1;
}

int watches_handle_watch(Watches *ws, sd_bus_message *m, Peer *p, sd_bus_error *error) {
        _cleanup_(strv_freep) char **patterns = NULL;
        Watcher *old;
        int r;

        r = read_watch_patterns(m, &patterns, error);
        if (r < 0)
                return r;

        old = find_watcher(ws, m);
        r = check_watch_quota(ws, old, p, error);
        if (r < 0)
                return r;

        if (old) {
                /* Watch again: the new patterns replace the old ones. */
                strv_freep(&old->patterns);
                old->patterns = TAKE_PTR(patterns);
                return 1;
        }
        return watcher_add(ws, m, p, &patterns);
}

bool watches_remove_for(Watches *ws, sd_bus_message *m) {
        Watcher *w = find_watcher(ws, m);

        if (!w)
                return false;
        watcher_free(ws, w);
        return true;
}

void watches_forget_peer(Watches *ws, Peer *p) {
        LIST_FOREACH_SAFE(watchers, w, next, ws->list)
                if (w->peer == p)
                        watcher_free(ws, w);
}

static bool watcher_wants(const Watcher *w, const Entry *e, watch_visible_fn visible, void *userdata) {
        bool match = false;

        for (char **pat = w->patterns; *pat && !match; pat++)
                match = policy_glob_match(*pat, e->name);
        return match && visible(w->peer, e, userdata);
}

static int new_signal(const Watcher *w, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = sd_bus_message_new_signal(w->bus, &s, FDB_OBJECT_PATH, FDB_INTERFACE, member);
        if (r < 0)
                return r;
        if (w->destination) {
                r = sd_bus_message_set_destination(s, w->destination);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- watchers that do not read ---------------------------------------- */

bool watch_backlog_note(WatchBacklog *b) {
        if (b->sent < UINT32_MAX)
                b->sent++;
        return b->sent >= WATCH_ASK_MARK;
}

void watch_backlog_asked(WatchBacklog *b) {
        b->sent = 0;
}

bool watch_backlog_over(uint64_t queued_messages, uint64_t queued_bytes) {
        return queued_messages > WATCH_QUEUED_MAX || queued_bytes > WATCH_QUEUED_BYTES_MAX;
}

static const char *watcher_name(const Watcher *w) {
        return w->destination ? w->destination : "a direct connection";
}

/* Ends w's watch: it has left so much unread that more would put others at
 * risk. Not told: it does not read. */
static void watcher_end(Watches *ws, Watcher *w, uint64_t messages, uint64_t bytes, const char *where) {
        log_warning("ending the watch of %s (uid %u): %" PRIu64 " messages (%" PRIu64 " bytes) wait unread for it "
                    "in %s, more than %u messages or %u bytes; it does not read its signals",
                    watcher_name(w), (unsigned) w->uid, messages, bytes, where, WATCH_QUEUED_MAX,
                    WATCH_QUEUED_BYTES_MAX);
        ws->n_ended++;
        watcher_free(ws, w);
}

/* dbus-daemon's GetConnectionStats about a watcher: OutgoingMessages and
 * OutgoingBytes are what waits in the daemon for it, which the daemon
 * charges to the broker's connection. */
static int on_watch_stats(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Watcher *w = userdata;
        Watches *ws = w->watches;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        static const char *const keys[] = { "OutgoingMessages", "OutgoingBytes" };
        uint32_t values[2];

        w->stats = sd_bus_slot_unref(w->stats);
        if (e) {
                /* The watcher left meanwhile (NameHasNoOwner), or the bus
                 * has no statistics for us after all. */
                if (!ws->no_stats && busstats_unavailable(e)) {
                        ws->no_stats = true;
                        log_info("not checking whether watchers read their signals: the bus's "
                                 "GetConnectionStats failed (%s)",
                                 e->message ? e->message : e->name);
                }
                return 0;
        }

        /* A malformed answer shows as a missing key. */
        (void) busstats_read(reply, keys, values, 2);
        uint32_t messages = values[0], bytes = values[1];
        if (messages == UINT32_MAX || bytes == UINT32_MAX) {
                if (!ws->no_stats)
                        log_info("not checking whether watchers read their signals: the bus's "
                                 "GetConnectionStats has no OutgoingMessages/OutgoingBytes");
                ws->no_stats = true;
                return 0;
        }
        log_debug("%s: %u messages (%u bytes) wait in the bus for it", watcher_name(w), (unsigned) messages,
                  (unsigned) bytes);
        if (watch_backlog_over(messages, bytes))
                watcher_end(ws, w, messages, bytes, "the bus");
        return 0;
}

/* One more signal went to w: every WATCH_ASK_MARK, look how much of what
 * it was sent it has not read. Returns true when w's watch ended (w is
 * freed). */
static bool watcher_sent(Watches *ws, Watcher *w) {
        uint64_t queued = 0;

        if (!watch_backlog_note(&w->backlog))
                return false;
        if (!w->destination) {
                /* Direct: no daemon, but what the socket does not take
                 * waits in the broker's own memory. */
                watch_backlog_asked(&w->backlog);
                if (sd_bus_get_n_queued_write(w->bus, &queued) >= 0 && watch_backlog_over(queued, 0)) {
                        watcher_end(ws, w, queued, 0, "the broker's write queue");
                        return true;
                }
                return false;
        }
        if (ws->no_stats || w->stats)
                return false;
        if (sd_bus_call_method_async(w->bus, &w->stats, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", on_watch_stats, w,
                                     "s", w->destination) >= 0)
                watch_backlog_asked(&w->backlog);
        return false;
}

/* Sends member about e to every watcher that wants it: the name, then what
 * append_info adds (EntryAdded's info), or reason (EntryRemoved). */
static void tell_watchers(Watches *ws, const Entry *e, const char *member, const char *what,
                          watch_append_info_fn append_info, const char *reason, watch_visible_fn visible,
                          void *userdata) {
        LIST_FOREACH_SAFE(watchers, w, next, ws->list) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
                int r;

                if (!watcher_wants(w, e, visible, userdata))
                        continue;
                r = new_signal(w, member, &s);
                if (r >= 0)
                        r = sd_bus_message_append_basic(s, 's', e->name);
                if (r >= 0)
                        r = append_info ? append_info(s, e) : sd_bus_message_append_basic(s, 's', reason);
                if (r >= 0)
                        r = sd_bus_send(NULL, s, NULL);
                if (r < 0)
                        log_warning("could not tell %s that '%s' was %s: %s",
                                    w->destination ? w->destination : "a direct connection", e->name, what,
                                    strerror(-r));
                else
                        (void) watcher_sent(ws, w);
        }
}

void watches_entry_added(Watches *ws, const Entry *e, watch_visible_fn visible, watch_append_info_fn append_info,
                         void *userdata) {
        tell_watchers(ws, e, "EntryAdded", "added", append_info, NULL, visible, userdata);
}

void watches_entry_removed(Watches *ws, const Entry *e, const char *reason, watch_visible_fn visible,
                           void *userdata) {
        tell_watchers(ws, e, "EntryRemoved", "removed", NULL, reason, visible, userdata);
}

const char *watch_reason_from_why(const char *why) {
        if (strcmp(why, "expired") == 0)
                return "expired";
        if (strcmp(why, "replaced") == 0)
                return "replaced";
        if (strcmp(why, "retrieved once") == 0)
                return "retrieved-once";
        if (strstr(why, "connection closed"))
                return "connection-closed";
        return "removed";
}
