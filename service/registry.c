/* registry.c: see registry.h. */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fdclose.h"

typedef struct UserCount {
        HashLink link;
        uid_t uid;
        unsigned n;
} UserCount;

Entry *entry_new(const char *name) {
        size_t l = strlen(name);
        Entry *e = calloc(1, sizeof *e + l + 1);
        if (!e)
                return NULL;
        memcpy(e->name, name, l + 1);
        e->fd = -1;
        e->kind = FD_KIND_OTHER; /* until known: closed as if it could wait */
        return e;
}

void entry_free(Entry *e) {
        if (!e)
                return;
        /* The caller's file: its close may wait for a FUSE or NFS server. */
        fdclose_kind(e->fd, e->kind);
        free(e->description);
        free(e->depositor_gids);
        acl_subjects_free(e->allow, e->n_allow);
        free(e);
}

int entry_set_depositor_gids(Entry *e, const gid_t *gids, size_t n) {
        gid_t *copy = NULL;

        if (n > ENTRY_GIDS_MAX)
                return -E2BIG;
        if (n > 0) {
                copy = malloc(n * sizeof(gid_t));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, gids, n * sizeof(gid_t));
        }
        free(e->depositor_gids);
        e->depositor_gids = copy;
        e->n_depositor_gids = n;
        return 0;
}

void registry_init(Registry *reg) {
        *reg = (Registry) {
                .next_id = 1,
                .max_entries = DEFAULT_MAX_ENTRIES,
                .max_entries_per_user = DEFAULT_MAX_ENTRIES_PER_USER,
                .max_memory = DEFAULT_MAX_MEMORY_SIZE,
        };
}

void registry_done(Registry *reg) {
        size_t st;
        HashLink *l, *next;

        for (l = hashtable_first(&reg->by_name, &st); l; l = next) {
                Entry *e = container_of(l, Entry, link);
                next = hashtable_next(&reg->by_name, l, &st);
                if (e->owner_data && reg->drop_owner_data)
                        reg->drop_owner_data(e);
                entry_free(e);
        }
        for (l = hashtable_first(&reg->users, &st); l; l = next) {
                next = hashtable_next(&reg->users, l, &st);
                free(container_of(l, UserCount, link));
        }
        hashtable_done(&reg->by_name);
        hashtable_done(&reg->users);
}

static bool entry_eq(const HashLink *l, const void *key) {
        return strcmp(container_of(l, Entry, link)->name, key) == 0;
}

static bool user_eq(const HashLink *l, const void *key) {
        return container_of(l, UserCount, link)->uid == *(const uid_t *) key;
}

Entry *registry_get(const Registry *reg, const char *name) {
        HashLink *l = hashtable_find(&reg->by_name, hash_string(name), entry_eq, name);
        return l ? container_of(l, Entry, link) : NULL;
}

static UserCount *user_get(const Registry *reg, uid_t uid) {
        HashLink *l = hashtable_find(&reg->users, hash_u64(uid), user_eq, &uid);
        return l ? container_of(l, UserCount, link) : NULL;
}

unsigned registry_count_user(const Registry *reg, uid_t uid) {
        UserCount *u = user_get(reg, uid);
        return u ? u->n : 0;
}

/* The limit and the numbers behind it: "MaxEntriesPerUser (uid 1000 holds
 * 256 entries, …)". One buffer: the service answers one call at a time. */
static const char *explain(const AcctRefusal *why) {
        static char buf[320];
        char detail[256];

        accounting_format_refusal(why, detail, sizeof detail);
        snprintf(buf, sizeof buf, "%s (%s)", why->limit, detail);
        return buf;
}

int registry_check_quota(const Registry *reg, uid_t uid, unsigned n_new, unsigned n_freed,
                         uint64_t memory, uint64_t memory_freed, const char **ret_which) {
        if (reg->acct) {
                AcctRefusal why;
                int r;

                r = accounting_check(reg->acct, uid, ACCT_ENTRIES, n_new, n_freed, &why);
                if (r >= 0)
                        r = accounting_check(reg->acct, uid, ACCT_MEMORY, memory, memory_freed, &why);
                if (r < 0)
                        *ret_which = explain(&why);
                return r;
        }
        uint64_t total = (uint64_t) reg->n_entries + n_new - n_freed;
        uint64_t user = (uint64_t) registry_count_user(reg, uid) + n_new - n_freed;
        uint64_t mem = reg->memory - memory_freed;

        if (n_new > n_freed && total > reg->max_entries) {
                *ret_which = "MaxEntries";
                return -EDQUOT;
        }
        if (n_new > n_freed && user > reg->max_entries_per_user) {
                *ret_which = "MaxEntriesPerUser";
                return -EDQUOT;
        }
        if (memory > 0 && (memory > reg->max_memory || mem > reg->max_memory - memory)) {
                *ret_which = "MaxMemorySize";
                return -EDQUOT;
        }
        return 0;
}

int registry_add(Registry *reg, Entry *e) {
        UserCount *u;
        int r;

        if (registry_get(reg, e->name))
                return -EEXIST;

        u = user_get(reg, e->owner_uid);
        if (!u) {
                u = calloc(1, sizeof *u);
                if (!u)
                        return -ENOMEM;
                u->uid = e->owner_uid;
                u->link.hash = hash_u64(e->owner_uid);
                r = hashtable_insert(&reg->users, &u->link);
                if (r < 0) {
                        free(u);
                        return r;
                }
        }

        e->link.hash = hash_string(e->name);
        r = hashtable_insert(&reg->by_name, &e->link);
        if (r < 0) {
                if (u->n == 0) {
                        hashtable_remove(&reg->users, &u->link);
                        free(u);
                }
                return r;
        }

        if (reg->acct) {
                /* Charged even past the limits: restored entries are held
                 * already, and new ones were checked. */
                r = accounting_charge_force(reg->acct, e->owner_uid, ACCT_ENTRIES, 1);
                if (r >= 0)
                        r = accounting_charge_force(reg->acct, e->owner_uid, ACCT_MEMORY, e->memory);
                if (r < 0) {
                        accounting_discharge(reg->acct, e->owner_uid, ACCT_ENTRIES, 1);
                        hashtable_remove(&reg->by_name, &e->link);
                        if (u->n == 0) {
                                hashtable_remove(&reg->users, &u->link);
                                free(u);
                        }
                        return r;
                }
        }
        if (e->id == 0)
                e->id = reg->next_id++;
        u->n++;
        reg->n_entries++;
        reg->memory += e->memory;
        return 0;
}

void registry_unlink(Registry *reg, Entry *e) {
        UserCount *u = user_get(reg, e->owner_uid);

        hashtable_remove(&reg->by_name, &e->link);
        reg->n_entries--;
        reg->memory -= e->memory;
        if (reg->acct) {
                accounting_discharge(reg->acct, e->owner_uid, ACCT_ENTRIES, 1);
                accounting_discharge(reg->acct, e->owner_uid, ACCT_MEMORY, e->memory);
        }
        if (u && --u->n == 0) {
                hashtable_remove(&reg->users, &u->link);
                free(u);
        }
}

int registry_all(const Registry *reg, Entry ***ret, size_t *ret_n) {
        size_t n = 0, st;
        Entry **v = malloc((reg->n_entries + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        for (HashLink *l = hashtable_first(&reg->by_name, &st); l; l = hashtable_next(&reg->by_name, l, &st))
                v[n++] = container_of(l, Entry, link);
        *ret = v;
        *ret_n = n;
        return 0;
}
