/* registry.h: the stored entries, by name, and the limits on them.
 *
 * The registry owns every Entry in it and each entry owns its fd (always
 * O_CLOEXEC). It counts entries in all and per owner uid, and the memory
 * CreateMemory made, and refuses what would pass a limit. It knows nothing
 * of the bus: an Entry is plain data, without sd-bus or sd-event types and
 * without Broker or Peer pointers. What ties an entry to the bus (its
 * expiry timer, its depositor's list, the broker for the timer's callback)
 * is entries.c's EntryLife, which it allocates before a deposit's point of
 * no return and finds from the entry through owner_data.
 *
 * Why an opaque pointer in the Entry and not a side hash keyed by Entry*:
 * the lookup is O(1) without hashing, and attaching it never allocates (a
 * hash insert may grow its table), so a deposit's commit stays infallible.
 * It is void * so the registry cannot use it: it only hands it back to
 * Registry.drop_owner_data when it frees every entry (registry_done). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "accounting.h"
#include "acl.h"
#include "fdinfo.h"
#include "hashtable.h"

#define DEFAULT_MAX_ENTRIES 4096U
#define DEFAULT_MAX_ENTRIES_PER_USER 256U
#define DEFAULT_MAX_MEMORY_SIZE (UINT64_C(1) << 30)

typedef struct Entry {
        HashLink link;
        uint64_t id;
        int fd;                 /* owned, O_CLOEXEC */
        FdKind kind;
        int flags;              /* F_GETFL of fd when stored */
        uid_t owner_uid;        /* also the depositor: reopenings run as it */
        gid_t *depositor_gids;  /* supplementary gids the bus reported for
                                 * the depositor; reopenings carry them */
        size_t n_depositor_gids;
        bool persistent;
        bool once;
        char *description;      /* NULL when empty: most entries have none */
        Subject *allow;
        size_t n_allow;
        uint64_t created_usec;  /* CLOCK_REALTIME */
        uint64_t expires_usec;  /* CLOCK_REALTIME, 0 = never */
        uint64_t memory;        /* bytes charged to MaxMemorySize */
        uint64_t store_id;      /* fd store name e<store_id>; entries sharing
                                 * one open file share it (persist.c) */
        void *owner_data;       /* the owner's (entries.c: its EntryLife), NULL
                                 * until adopted; never read here, and not
                                 * freed by entry_free() */
        char name[];            /* stored inline: one allocation per entry */
} Entry;

typedef struct Registry {
        HashTable by_name;
        HashTable users;        /* UserCount by uid */
        unsigned n_entries;
        uint64_t memory;
        uint64_t next_id;

        unsigned max_entries;
        unsigned max_entries_per_user;
        uint64_t max_memory;

        /* When set (the broker's), entries and created memory are charged
         * to their owner's uid there too, and quotas are its fair shares. */
        Accounting *acct;

        /* When set, registry_done() hands it every entry with owner_data
         * before freeing the entry. */
        void (*drop_owner_data)(Entry *e);
} Registry;

/* A new entry named name (copied), owning nothing yet (fd = -1). */
Entry *entry_new(const char *name);

/* NGROUPS_MAX of Linux. */
#define ENTRY_GIDS_MAX 65536u

/* Copies the depositor's supplementary gids into e. */
int entry_set_depositor_gids(Entry *e, const gid_t *gids, size_t n);

/* The description, "" when there is none. */
static inline const char *entry_description(const Entry *e) {
        return e->description ? e->description : "";
}

/* Closes the fd and frees everything; the entry must not be in a registry.
 * Accepts NULL. */
void entry_free(Entry *e);

static inline void entry_freep(Entry **e) {
        entry_free(*e);
}

void registry_init(Registry *reg);

/* Frees every entry (dropping owner_data through drop_owner_data). */
void registry_done(Registry *reg);

Entry *registry_get(const Registry *reg, const char *name);

unsigned registry_count_user(const Registry *reg, uid_t uid);

/* Would adding n_new entries for uid, and memory bytes, pass a limit?
 * n_freed entries of the same uid and memory_freed bytes go away in the
 * same step (replace). Returns 0 or -EDQUOT, with *ret_which naming the
 * limit ("MaxEntries", "MaxEntriesPerUser" or "MaxMemorySize"; with an
 * Accounting, the limit followed by what the uid holds and may hold, valid
 * until the next call). */
int registry_check_quota(const Registry *reg, uid_t uid, unsigned n_new, unsigned n_freed,
                         uint64_t memory, uint64_t memory_freed, const char **ret_which);

/* Inserts e (consumed on success: the registry owns it). -EEXIST when the
 * name is taken, -ENOMEM. Quotas are the caller's to check first. */
int registry_add(Registry *reg, Entry *e);

/* Unlinks e from the registry without freeing it. */
void registry_unlink(Registry *reg, Entry *e);

/* Every entry, in no order: ret gets a malloc'ed array of n borrowed
 * pointers. */
int registry_all(const Registry *reg, Entry ***ret, size_t *ret_n);
