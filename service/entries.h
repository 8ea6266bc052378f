/* entries.h: the life of a stored entry around the registry: expiry,
 * connection lifetime, persistence order, removal with a reason. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

typedef struct Broker Broker;
typedef struct Peer Peer;

/* Rewrites the state file of persistent entries; a failure is logged. */
void entries_save_state(Broker *b);

/* Stamps e, just stored for p, arms its expiry and ties it to p's
 * connection (or to the fd store when persistent). */
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
