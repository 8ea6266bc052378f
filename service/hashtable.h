/* hashtable.h: a small intrusive chained hash table.
 *
 * Items embed a HashLink; the table never allocates per item, which keeps the
 * broker's memory per stored entry low. The table owns only its bucket
 * array: items belong to whoever inserted them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HashLink {
        struct HashLink *next;
        uint64_t hash;
} HashLink;

typedef struct HashTable {
        HashLink **buckets;
        size_t n_buckets; /* a power of two, or 0 before the first insert */
        size_t n_items;
} HashTable;

typedef bool (*hash_eq_fn)(const HashLink *item, const void *key);

uint64_t hash_string(const char *s);
uint64_t hash_u64(uint64_t v);

HashLink *hashtable_find(const HashTable *t, uint64_t hash, hash_eq_fn eq, const void *key);

/* Links item (with item->hash set). Fails (-ENOMEM) only when the very first
 * bucket array cannot be allocated; a failed later growth just leaves the
 * table fuller. */
int hashtable_insert(HashTable *t, HashLink *item);

void hashtable_remove(HashTable *t, HashLink *item);

/* Frees the bucket array; items are untouched. */
void hashtable_done(HashTable *t);

/* Iteration: for (HashLink *l = hashtable_first(t, &i); l; l = hashtable_next(t, l, &i)).
 * Nothing may be removed while iterating (removal may shrink the table):
 * collect first, then remove. */
HashLink *hashtable_first(const HashTable *t, size_t *state);
HashLink *hashtable_next(const HashTable *t, const HashLink *l, size_t *state);

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))
