/* accounting.c: per-uid charges and fair shares. See accounting.h. */
#include "accounting.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"

typedef struct AcctUser {
        HashLink link;
        uid_t uid;
        uint64_t used[_ACCT_MAX];
} AcctUser;

static const struct {
        const char *what;
        const char *total_key;
        const char *per_user_key;
        AcctLimit defaults;
} resources[_ACCT_MAX] = {
        /* MaxEntries and MaxMemorySize are also the registry's; broker.c
         * keeps both in step. */
        [ACCT_ENTRIES] = { "entries", "MaxEntries", "MaxEntriesPerUser", { 4096, 256 } },
        [ACCT_MEMORY] = { "bytes of created memory", "MaxMemorySize", "MaxMemorySizePerUser",
                          { UINT64_C(1) << 30, ACCT_UNLIMITED } },
        [ACCT_QUEUED_CALLS] = { "queued calls", "MaxQueuedCalls", "MaxQueuedCallsPerUser", { 4096, 256 } },
        [ACCT_WAITERS] = { "waiting retrievals", "MaxWaits", "MaxWaitsPerUser", { 4096, 256 } },
        [ACCT_POLKIT] = { "polkit questions", "MaxAuthorizations", "MaxAuthorizationsPerUser", { 1024, 32 } },
        /* The pool's threads (worker.h): one uid alone may have half in
         * flight, stuck ones included, as before they were accounted here. */
        [ACCT_WORKERS] = { "opens in progress", "MaxWorkers", "MaxWorkersPerUser", { 32, 16 } },
        [ACCT_DIRECT_CONNECTIONS] = { "direct connections", "MaxDirectConnections", "MaxDirectConnectionsPerUser",
                                      { 1024, 16 } },
        /* One watch per connection; a connection costs the bus daemon more
         * than a watch costs us, so the bus's own per-uid connection limit
         * (256 on the system bus) stays the tighter one. */
        [ACCT_WATCHES] = { "watches", "MaxWatches", "MaxWatchesPerUser", { 4096, 16 } },
        /* dbus-daemon stops reading from a connection that has 64 fds in
         * flight (system bus): all unread fds together stay below, with
         * room for one RetrieveMany (16) let through just under the limit. */
        [ACCT_UNREAD_FDS] = { "file descriptors sent and not yet read", "MaxUnreadFds", "MaxUnreadFdsPerUser",
                              { 40, 32 } },
};

const char *accounting_resource_to_string(AcctResource res) {
        return res < _ACCT_MAX ? resources[res].what : "resources";
}

static bool user_eq(const HashLink *l, const void *key) {
        return container_of(l, AcctUser, link)->uid == *(const uid_t *) key;
}

static AcctUser *user_get(const Accounting *a, uid_t uid) {
        HashLink *l = hashtable_find(&a->users, hash_u64(uid), user_eq, &uid);
        return l ? container_of(l, AcctUser, link) : NULL;
}

void accounting_init(Accounting *a) {
        *a = (Accounting) {};
        for (size_t i = 0; i < _ACCT_MAX; i++)
                a->limits[i] = resources[i].defaults;
}

void accounting_done(Accounting *a) {
        size_t st;
        HashLink *l;

        while ((l = hashtable_first(&a->users, &st))) {
                hashtable_remove(&a->users, l);
                free(container_of(l, AcctUser, link));
        }
        hashtable_done(&a->users);
}

void accounting_set_limit(Accounting *a, AcctResource res, uint64_t total, uint64_t per_user) {
        a->limits[res] = (AcctLimit) { .total = total, .per_user = per_user };
}

uint64_t accounting_usage(const Accounting *a, uid_t uid, AcctResource res) {
        AcctUser *u = user_get(a, uid);
        return u ? u->used[res] : 0;
}

int accounting_check(const Accounting *a, uid_t uid, AcctResource res, uint64_t amount, uint64_t freed,
                     AcctRefusal *ret) {
        const AcctLimit *lim = &a->limits[res];
        uint64_t held = accounting_usage(a, uid, res), share = held, used = a->used[res];
        AcctRefusal refusal = { .resource = res, .uid = uid, .used = share, .requested = amount };
        unsigned __int128 want, remaining, n;

        if (freed > share)
                freed = share;
        share -= freed;
        used -= freed;
        if (amount == 0)
                return 0;
        want = (unsigned __int128) share + amount;

        if (lim->per_user != ACCT_UNLIMITED && want > lim->per_user) {
                refusal.limit = resources[res].per_user_key;
                refusal.allowed = lim->per_user;
                goto refuse;
        }
        if (lim->total == ACCT_UNLIMITED)
                return 0;
        if ((unsigned __int128) used + amount > lim->total) {
                refusal.limit = resources[res].total_key;
                refusal.allowed = share + (lim->total > used ? lim->total - used : 0);
                goto refuse;
        }
        if (uid == 0)
                return 0;

        /* dbus-broker's rule, without the division: with n holders (this uid
         * among them), (n + 1) * want - share <= remaining. */
        remaining = lim->total - used;
        n = a->n_holders[res] + (held == 0 ? 1 : 0);
        if ((n + 1) * want - share <= remaining)
                return 0;
        refusal.limit = resources[res].total_key;
        refusal.fair_share = true;
        refusal.allowed = (uint64_t) ((remaining + share) / (n + 1));

refuse:
        if (ret)
                *ret = refusal;
        return -EDQUOT;
}

int accounting_charge_force(Accounting *a, uid_t uid, AcctResource res, uint64_t amount) {
        AcctUser *u;
        int r;

        if (amount == 0)
                return 0;
        u = user_get(a, uid);
        if (!u) {
                u = calloc(1, sizeof *u);
                if (!u)
                        return -ENOMEM;
                u->uid = uid;
                u->link.hash = hash_u64(uid);
                r = hashtable_insert(&a->users, &u->link);
                if (r < 0) {
                        free(u);
                        return r;
                }
        }
        if (u->used[res] == 0)
                a->n_holders[res]++;
        u->used[res] += amount;
        a->used[res] += amount;
        return 0;
}

int accounting_charge(Accounting *a, uid_t uid, AcctResource res, uint64_t amount, AcctRefusal *ret) {
        int r = accounting_check(a, uid, res, amount, 0, ret);
        if (r < 0)
                return r;
        return accounting_charge_force(a, uid, res, amount);
}

void accounting_discharge(Accounting *a, uid_t uid, AcctResource res, uint64_t amount) {
        AcctUser *u = user_get(a, uid);

        if (!u || amount == 0)
                return;
        if (amount > u->used[res])
                amount = u->used[res]; /* a bug elsewhere; never underflow */
        u->used[res] -= amount;
        a->used[res] -= amount;
        if (u->used[res] > 0)
                return;
        a->n_holders[res]--;
        for (size_t i = 0; i < _ACCT_MAX; i++)
                if (u->used[i] > 0)
                        return;
        hashtable_remove(&a->users, &u->link);
        free(u);
}

bool accounting_is_empty(const Accounting *a) {
        for (size_t i = 0; i < _ACCT_MAX; i++)
                if (a->used[i] != 0 || a->n_holders[i] != 0)
                        return false;
        return a->users.n_items == 0;
}

void accounting_format_refusal(const AcctRefusal *r, char *buf, size_t size) {
        const char *what = accounting_resource_to_string(r->resource);

        if (r->fair_share)
                snprintf(buf, size,
                         "uid %u holds %" PRIu64 " %s; its fair share of what is left of %s allows at most %" PRIu64
                         " now, and %" PRIu64 " more were asked for",
                         (unsigned) r->uid, r->used, what, r->limit, r->allowed, r->requested);
        else
                snprintf(buf, size, "uid %u holds %" PRIu64 " %s, %" PRIu64 " more were asked for, and %s allows %" PRIu64,
                         (unsigned) r->uid, r->used, what, r->requested, r->limit, r->allowed);
}
