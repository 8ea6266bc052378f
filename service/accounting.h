/* accounting.h: what each uid holds of the broker's shared resources.
 *
 * Every resource a caller can make the broker hold (entries, created memory,
 * queued and parked calls, polkit questions, worker slots, direct
 * connections, watches, fds sent but not yet read) is charged to the
 * caller's uid here, and refused past two limits:
 *
 *   - a per-uid maximum (the [Limits] *PerUser keys), and
 *   - a fair share of what is left of the global maximum, as dbus-broker's
 *     src/util/user.c computes it: with n uids holding some of the resource
 *     (the caller counted, whether it holds any yet or not), a uid that
 *     holds `share` may grow to at most (remaining + share) / (n + 1), where
 *     remaining is the global maximum minus everything charged. One uid
 *     alone may take half of the pool, two at most a third each of what
 *     the other left, and so on: whoever comes next always finds something.
 *
 * uid 0 is subject to the per-uid and global maxima but not to the fair
 * share: root is the administrator, whose services must not be refused
 * because users crowd the broker.
 *
 * The module knows nothing of the bus: it counts. Every successful charge
 * must be matched by one discharge of the same amount; after all of them
 * every count is 0 and no per-uid record is left (accounting_is_empty). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hashtable.h"

typedef enum AcctResource {
        ACCT_ENTRIES,            /* stored entries */
        ACCT_MEMORY,             /* bytes of CreateMemory memfds */
        ACCT_QUEUED_CALLS,       /* calls queued by peers.c (credentials lookup, unread fds) */
        ACCT_WAITERS,            /* parked wait-usec retrievals */
        ACCT_POLKIT,             /* CheckAuthorization questions out */
        ACCT_WORKERS,            /* worker-pool slots (blocking opens off the loop) */
        ACCT_DIRECT_CONNECTIONS, /* peer-to-peer connections (SPEC §5) */
        ACCT_WATCHES,            /* Watch() subscriptions */
        ACCT_UNREAD_FDS,         /* fds sent in replies the peer has not shown it read */
        _ACCT_MAX,
} AcctResource;

#define ACCT_UNLIMITED UINT64_MAX

typedef struct AcctLimit {
        uint64_t total;          /* all uids together; ACCT_UNLIMITED: none */
        uint64_t per_user;       /* one uid; ACCT_UNLIMITED: none */
} AcctLimit;

typedef struct Accounting {
        HashTable users;                 /* AcctUser by uid, while it holds anything */
        uint64_t used[_ACCT_MAX];        /* all uids together */
        unsigned n_holders[_ACCT_MAX];   /* uids holding some of each */
        AcctLimit limits[_ACCT_MAX];
} Accounting;

/* Why a charge was refused: which limit, what the uid holds, and how far it
 * may go under that limit right now. */
typedef struct AcctRefusal {
        AcctResource resource;
        uid_t uid;
        const char *limit;       /* "MaxEntriesPerUser", "MaxMemorySize"… */
        bool fair_share;         /* the fair share of `limit` refused it */
        uint64_t used;           /* what uid holds */
        uint64_t allowed;        /* the most uid may hold now under limit */
        uint64_t requested;
} AcctRefusal;

/* Sets every limit to its default (see accounting.c). */
void accounting_init(Accounting *a);
/* Frees the per-uid records (there should be none left). */
void accounting_done(Accounting *a);

void accounting_set_limit(Accounting *a, AcctResource res, uint64_t total, uint64_t per_user);

/* Would uid be allowed to hold `amount` more of res, `freed` of what it
 * holds going away in the same step (a replaced entry)? 0, or -EDQUOT with
 * *ret (when not NULL) saying why. Changes nothing. */
int accounting_check(const Accounting *a, uid_t uid, AcctResource res, uint64_t amount, uint64_t freed,
                     AcctRefusal *ret);

/* accounting_check, then charges amount to uid on success. */
int accounting_charge(Accounting *a, uid_t uid, AcctResource res, uint64_t amount, AcctRefusal *ret);

/* Charges without checking: for what is already held when it is learnt
 * (fds already sent, entries restored at start). -ENOMEM only. */
int accounting_charge_force(Accounting *a, uid_t uid, AcctResource res, uint64_t amount);

/* Gives back amount of res charged to uid (clamped to what it holds). */
void accounting_discharge(Accounting *a, uid_t uid, AcctResource res, uint64_t amount);

uint64_t accounting_usage(const Accounting *a, uid_t uid, AcctResource res);

/* Nothing charged to anyone. */
bool accounting_is_empty(const Accounting *a);

/* "entries", "created memory bytes"…: what a resource counts, for messages. */
const char *accounting_resource_to_string(AcctResource res);

/* One sentence for a QuotaExceeded message, e.g. "uid 1000 holds 256
 * entries and MaxEntriesPerUser is 256". Always NUL-terminated. */
void accounting_format_refusal(const AcctRefusal *r, char *buf, size_t size);
