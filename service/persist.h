/* persist.h: persistent entries across broker restarts.
 *
 * The fds live in systemd's fd store: each persistent entry's fd is pushed
 * with FDSTORE=1 under FDNAME=e<id> (an id, never the entry name: names may
 * hold ':'), and removed with FDSTOREREMOVE=1. The metadata (name, owner,
 * ACL, once, description, created, expiry) lives in a state file in the
 * runtime directory, rewritten atomically (write, then rename) on every
 * change. On start the service gets the fds back as LISTEN_FDS with their
 * names, reads the state file, and restores the entries that have both; an
 * fd without metadata or metadata without an fd is dropped and logged,
 * never guessed.
 *
 * Ordering keeps a crash harmless: a new entry's fd is stored before its
 * metadata is written, and a removed entry's metadata goes before its fd,
 * so a crash in between leaves at most an fd without metadata, which the
 * next start drops. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "registry.h"

typedef struct Persist {
        char *state_path;       /* NULL: no runtime directory, nothing saved */
        bool fdstore;           /* a service manager listens (NOTIFY_SOCKET) */
} Persist;

/* runtime_dir: the directory for the state file (from --runtime-dir or
 * $RUNTIME_DIRECTORY), or NULL to keep persistent entries in memory only. */
int persist_init(Persist *ps, const char *runtime_dir);
void persist_done(Persist *ps);

/* True when persistent entries survive a restart. */
bool persist_enabled(const Persist *ps);

/* Hands e's fd (borrowed) to the fd store, and sets e->store_id. The store
 * keeps one copy of an open file: when another persistent entry of reg
 * holds the same open file, e shares its store name instead. */
int persist_store_fd(const Persist *ps, const Registry *reg, Entry *e);

/* Takes e's fd out of the fd store, unless another persistent entry of reg
 * (e itself no longer in it) shares the store name. */
int persist_remove_fd(const Persist *ps, const Registry *reg, const Entry *e);

/* Rewrites the state file with every persistent entry of reg. */
int persist_save(const Persist *ps, const Registry *reg);

/* Restores persistent entries from the fds passed at start (consumed: each
 * is either owned by a restored entry or closed) and the state file. Calls
 * restored(e, userdata) for each entry, which takes ownership of it.
 * Returns the number of entries restored; problems are logged. */
int persist_restore(const Persist *ps, const Registry *reg, void (*restored)(Entry *e, void *userdata),
                    void *userdata);
