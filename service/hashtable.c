/* hashtable.c: see hashtable.h. */
#include "hashtable.h"

#include <errno.h>
#include <stdlib.h>

uint64_t hash_string(const char *s) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 1099511628211ULL;
        }
        return h;
}

uint64_t hash_u64(uint64_t v) {
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdULL;
        v ^= v >> 33;
        v *= 0xc4ceb9fe1a85ec53ULL;
        v ^= v >> 33;
        return v;
}

HashLink *hashtable_find(const HashTable *t, uint64_t hash, hash_eq_fn eq, const void *key) {
        if (t->n_buckets == 0)
                return NULL;
        for (HashLink *l = t->buckets[hash & (t->n_buckets - 1)]; l; l = l->next)
                if (l->hash == hash && eq(l, key))
                        return l;
        return NULL;
}

/* Moves every item into a new array of n buckets (a power of two). */
static int resize(HashTable *t, size_t n) {
        HashLink **b = calloc(n, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_buckets; i++)
                for (HashLink *l = t->buckets[i], *next; l; l = next) {
                        next = l->next;
                        l->next = b[l->hash & (n - 1)];
                        b[l->hash & (n - 1)] = l;
                }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
        return 0;
}

int hashtable_insert(HashTable *t, HashLink *item) {
        int r = 0;
        if (t->n_items >= t->n_buckets) {
                r = resize(t, t->n_buckets ? t->n_buckets * 2 : 16);
                if (r < 0 && t->n_buckets == 0)
                        return r;
        }
        HashLink **b = &t->buckets[item->hash & (t->n_buckets - 1)];
        item->next = *b;
        *b = item;
        t->n_items++;
        return 0;
}

void hashtable_remove(HashTable *t, HashLink *item) {
        if (t->n_buckets == 0)
                return;
        for (HashLink **p = &t->buckets[item->hash & (t->n_buckets - 1)]; *p; p = &(*p)->next)
                if (*p == item) {
                        *p = item->next;
                        item->next = NULL;
                        t->n_items--;
                        /* Give memory back once a quarter full: 100 000
                         * entries that came and went would otherwise keep
                         * 1 MiB of buckets. A failed shrink changes nothing. */
                        if (t->n_buckets > 16 && t->n_items < t->n_buckets / 4)
                                (void) resize(t, t->n_buckets / 2);
                        return;
                }
}

void hashtable_done(HashTable *t) {
        free(t->buckets);
        *t = (HashTable) {};
}

static HashLink *scan(const HashTable *t, size_t from, size_t *state) {
        for (size_t i = from; i < t->n_buckets; i++)
                if (t->buckets[i]) {
                        *state = i;
                        return t->buckets[i];
                }
        *state = t->n_buckets;
        return NULL;
}

HashLink *hashtable_first(const HashTable *t, size_t *state) {
        return scan(t, 0, state);
}

HashLink *hashtable_next(const HashTable *t, const HashLink *l, size_t *state) {
        if (l->next)
                return l->next;
        return scan(t, *state + 1, state);
}
