/* entries.c: the life of a stored entry, from the broker's side.
 *
 * The registry (registry.c) holds entries as data; this module owns what
 * happens around them: the expiry timer, the depositor's list of its
 * connection-lifetime entries, the order of fd store and state file so a
 * crash leaves nothing inconsistent, removal with a reason (told to
 * watchers), restoring at start, and who may see an entry in List or a
 * signal. */
#include "entries.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-private.h"
#include "cleanup.h"
#include "fdinfo.h"
#include "log.h"
#include "retrieve.h"

struct EntryLife {
        Entry *entry;           /* whose life this is (owner_data points back) */
        Broker *broker;         /* that stores it, for the expiry timer */
        Peer *peer;             /* connection-lifetime entries: the depositor */
        LIST_FIELDS(EntryLife, peer);
        sd_event_source *expiry;
};

int entries_life_new(Broker *b, Entry *e) {
        EntryLife *l;

        assert(!e->owner_data);
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->entry = e;
        l->broker = b;
        e->owner_data = l;
        return 0;
}

void entries_life_drop(Entry *e) {
        EntryLife *l = e->owner_data;

        if (!l)
                return;
        if (l->peer)
                LIST_REMOVE(peer, l->peer->entries, l);
        sd_event_source_disable_unref(l->expiry);
        free(l);
        e->owner_data = NULL;
}

/* Rewrites the state file of persistent entries; a failure is logged, since
 * the entries themselves are fine until the next restart. */
void entries_save_state(Broker *b) {
        int r = persist_save(&b->persist, &b->reg);
        if (r < 0)
                log_error("could not save the state file: %s", strerror(-r));
}

/* Drops e, already out of the registry: off its depositor's list, out of
 * the fd store, freed. */
void entries_forget(Broker *b, Entry *e, const char *why) {
        watches_entry_removed(&b->watches, e, watch_reason_from_why(why), entries_watcher_may_see, b);

        entries_life_drop(e);
        log_info("removed '%s' (owner uid %u): %s", e->name, (unsigned) e->owner_uid, why);
        if (e->persistent) {
                /* Metadata first: a crash in between leaves an fd without
                 * metadata, which the next start drops. */
                entries_save_state(b);
                (void) persist_remove_fd(&b->persist, &b->reg, e);
        }
        entry_free(e);
}

void entries_remove(Broker *b, Entry *e, const char *why) {
        registry_unlink(&b->reg, e);
        entries_forget(b, e, why);
}

static int on_expire_entry(sd_event_source *s, uint64_t usec, void *userdata) {
        EntryLife *l = userdata;
        entries_remove(l->broker, l->entry, "expired");
        return 0;
}

/* Removes e when usec have passed (monotonic: wall-clock steps do not
 * shorten or stretch it). */
static int arm_expiry(Broker *b, Entry *e, uint64_t usec) {
        EntryLife *l = e->owner_data;
        return sd_event_add_time_relative(b->event, &l->expiry, CLOCK_MONOTONIC, usec, 0, on_expire_entry, l);
}

/* e was just stored for p (deposit.c's commit): stamp it, arm its expiry
 * after timeout_usec (0: none), and tie it to what ends it: p's connection,
 * or the fd store for a persistent one. */
void entries_adopt(Broker *b, Entry *e, Peer *p, uint64_t timeout_usec) {
        EntryLife *l = e->owner_data;
        int r;

        assert(l && l->broker == b);
        e->created_usec = now_usec(CLOCK_REALTIME);
        if (timeout_usec > 0) {
                e->expires_usec = e->created_usec + timeout_usec;
                r = arm_expiry(b, e, timeout_usec);
                if (r < 0)
                        log_error("no expiry timer for '%s': %s", e->name, strerror(-r));
        }
        if (!e->persistent) {
                l->peer = p;
                LIST_PREPEND(peer, p->entries, l);
        } else {
                /* The fd first, the state file after (the caller saves it
                 * once): a crash in between leaves an fd without metadata,
                 * which the next start drops. */
                r = persist_store_fd(&b->persist, &b->reg, e);
                if (r < 0)
                        log_error("'%s' will not survive a restart: %s", e->name, strerror(-r));
        }
}

/* p's connection closed: its connection-lifetime entries go with it. */
void entries_forget_peer(Broker *b, Peer *p) {
        while (p->entries)
                entries_remove(b, p->entries->entry, "depositor's connection closed");
}

/* List never asks polkit (decide_listed()). */
bool entries_may_list(const Broker *b, const Peer *p, const Entry *e) {
        DecideEntry view = entry_view(e);
        return decide_listed(b->policy, p->snapshot, &view);
}

/* Watchers hear of what List would show them. */
bool entries_watcher_may_see(const Peer *p, const Entry *e, void *userdata) {
        return entries_may_list(userdata, p, e);
}

void entries_on_restored(Entry *e, void *userdata) {
        Broker *b = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        /* Its life first: without it, no timer, so it is not restored. */
        r = entries_life_new(b, e);
        if (r < 0) {
                log_error("could not restore '%s': %s", e->name, strerror(-r));
                entry_free(e);
                return;
        }
        if (e->expires_usec > 0) {
                r = arm_expiry(b, e, e->expires_usec > now ? e->expires_usec - now : 1);
                if (r < 0)
                        log_error("no expiry timer for '%s': %s", e->name, strerror(-r));
        }
        r = registry_add(&b->reg, e);
        if (r < 0) {
                log_error("could not restore '%s': %s", e->name, strerror(-r));
                entries_life_drop(e);
                entry_free(e);
                return;
        }
        log_info("restored '%s' (uid %u, %s)", e->name, (unsigned) e->owner_uid, fdkind_to_string(e->kind));
}

/* Every entry is persistent, without expiry (an expiry timer would not run
 * while the broker is gone), and the fd store keeps them. */
bool entries_all_stored(const Broker *b) {
        _cleanup_free_ Entry **all = NULL;
        size_t n;

        if (!persist_enabled(&b->persist))
                return false;
        if (registry_all(&b->reg, &all, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!all[i]->persistent || all[i]->expires_usec != 0)
                        return false;
        return true;
}
