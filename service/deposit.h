/* deposit.h: Deposit, DepositMany and CreateMemory as one transaction.
 *
 * A deposit is planned, then committed. The plan reads every fd (kind,
 * access mode, can it be sealed or narrowed) and changes nothing; the
 * read-only reopenings it needs are made on a worker (worker.h) by the
 * broker before the commit. The commit then, in this order:
 *
 *   1. checks again what may have changed meanwhile (names free or the
 *      caller's own to replace, quotas: the one place entries are
 *      charged, DepositStore.charge);
 *   2. builds every entry (the broker's duplicates or reopenings) and has
 *      the store prepare each (DepositStore.prepare: the broker allocates
 *      its lifetime record, entries.c's EntryLife, here): may fail (out of
 *      fds, out of memory) with nothing changed;
 *   3. seals the memfds that asked for it, in order;
 *   4. stores every entry, each replacing its old one; a failure at the
 *      Nth store puts the N-1 before it back out and the old entries back
 *      in (DepositStore.undo), so nothing is left half-done;
 *   5. finishes: old entries go for good, the new ones are linked to the
 *      depositor and persisted (DepositStore.finish; cannot fail: what it
 *      links was allocated in 2).
 *
 * Sealing (3) is the one step whose effect cannot be taken back: Linux has
 * no way to remove a seal, nor to learn whether F_SEAL_WRITE would fail
 * (EBUSY: a writable shared mapping, in any process) short of adding it.
 * Every other check comes before it and nothing after it can fail but an
 * allocation. So a DepositMany refused for any reason other than a live
 * writable mapping leaves every memfd unsealed; refused for a mapping on
 * its k-th memfd, the memfds before it (which the caller asked to seal)
 * stay sealed, the k-th and those after it are untouched, and the message
 * says so. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "fdinfo.h"
#include "options.h"
#include "protocol.h"
#include "registry.h"

typedef struct DepositItem {
        const char *name;       /* borrowed (from the message) */
        int fd;                 /* borrowed (from the message, or the plan's memfd) */
        FdKind kind;
        int flags;              /* F_GETFL of fd */
        bool read_only;         /* the option, or a rule's cap */
        bool read_only_by_rule; /* ... the cap alone: errors say "Policy's Access=read-only" */
        int reopened_fd;        /* owned: the read-only reopening when one is needed; -1 */
        Entry *old;             /* the entry it replaces (commit) */
        Entry *entry;           /* owned until stored (commit) */
} DepositItem;

typedef struct DepositPlan {
        DepositOptions o;       /* owned: moved from the handler */
        uid_t uid;
        size_t n;
        DepositItem items[FDB_FDS_PER_CALL_MAX];
        uint64_t memory;        /* CreateMemory: bytes charged */
        int memfd;              /* CreateMemory: owned, -1 */
} DepositPlan;

/* What the commit asks of the registry's owner (the broker; a test). */
typedef struct DepositStore {
        /* Step 1: Exists, quota. Sets each item's old. Errors set error. */
        int (*charge)(void *userdata, DepositPlan *plan, sd_bus_error *error);
        /* Step 2 (optional): allocates what finish will need for e, kept
         * through e->owner_data. A negative errno refuses the deposit. */
        int (*prepare)(void *userdata, Entry *e);
        /* Optional: drops what prepare made for e (also after a failed
         * prepare, or none), before a refused deposit frees e. */
        void (*discard)(void *userdata, Entry *e);
        /* Step 4: puts e in, old (may be NULL) out but kept. */
        int (*add)(void *userdata, Entry *e, Entry *old);
        /* Undoes add: e out (the caller frees it), old back in. */
        void (*undo)(void *userdata, Entry *e, Entry *old);
        /* Step 5, once everything is in: old is gone for good, e is set up. */
        void (*finish)(void *userdata, Entry *e, Entry *old);
} DepositStore;

void deposit_plan_init(DepositPlan *plan);
void deposit_plan_done(DepositPlan *plan);
/* For worker contexts: frees a malloc'ed plan. */
void deposit_plan_free(void *plan);

/* Checks what depositing it->fd with plan->o (and it->read_only) would
 * store, without storing: sets kind and flags. Errors name it->name. */
int deposit_plan_item(const DepositPlan *plan, DepositItem *it, sd_bus_error *error);

/* True when the item is kept read-only through a reopening of a
 * read-write fd (made on a worker, or for CreateMemory's own memfd here). */
bool deposit_item_needs_reopen(const DepositItem *it);

/* Runs steps 1..5. 0 when everything is stored, negative with error set
 * (and nothing stored) otherwise. The items' entries are consumed either
 * way; reopened fds are consumed on success. */
int deposit_commit(DepositPlan *plan, const DepositStore *store, void *userdata, sd_bus_error *error);
