/* entries.h: the life of a stored entry around the registry: expiry,
 * connection lifetime, persistence order, removal with a reason. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

typedef struct Broker Broker;
typedef struct Peer Peer;

/* What ties a stored entry to the bus, kept out of the registry's Entry:
 * the broker (for the expiry timer's callback), the depositor whose
 * connection ends it and its place on that Peer's entries list, and the
 * expiry timer. One per entry, found through Entry.owner_data; opaque
 * outside entries.c. */
typedef struct EntryLife EntryLife;

/* Allocates e's EntryLife (e->owner_data) for b, attaching nothing yet:
 * called where a deposit builds its entries (before its point of no
 * return, so entries_adopt() need not allocate) and when an entry is
 * restored. 0 or -ENOMEM (e is then untouched). */
int entries_life_new(Broker *b, Entry *e);

/* Frees e's EntryLife, if any: off its peer's list, timer gone. Also the
 * registry's drop_owner_data. */
void entries_life_drop(Entry *e);

/* Rewrites the state file of persistent entries; a failure is logged. */
void entries_save_state(Broker *b);

/* Stamps e, just stored for p, arms its expiry and ties it to p's
 * connection (or to the fd store when persistent). e has its EntryLife
 * (entries_life_new()): nothing here allocates but the timer, whose
 * failure is logged. */
void entries_adopt(Broker *b, Entry *e, Peer *p, uint64_t timeout_usec);

/* Drops e, already out of the registry, telling watchers why. */
void entries_forget(Broker *b, Entry *e, const char *why);

/* Takes e out of the registry and drops it, telling watchers why. */
void entries_remove(Broker *b, Entry *e, const char *why);

/* Removes p's connection-lifetime entries. */
void entries_forget_peer(Broker *b, Peer *p);

/* persist_restore()'s callback (userdata: the Broker): e is consumed. */
void entries_on_restored(Entry *e, void *userdata);

/* May p see e in List and in signals? Never asks polkit. */
bool entries_may_list(const Broker *b, const Peer *p, const Entry *e);
bool entries_watcher_may_see(const Peer *p, const Entry *e, void *userdata);

/* Could the broker exit now and get every entry back from the fd store? */
bool entries_all_stored(const Broker *b);
