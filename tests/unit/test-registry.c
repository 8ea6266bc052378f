/* Unit tests of the entry registry and its limits (service/registry.c). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

static Entry *entry(const char *name, uid_t uid) {
        Entry *e = entry_new(name);
        e->owner_uid = uid;
        e->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return e;
}

static void test_add_get_unlink(void) {
        Registry reg;
        Entry *e;

        registry_init(&reg);
        g_assert_cmpint(registry_add(&reg, entry("a", 1)), ==, 0);
        g_assert_cmpint(registry_add(&reg, entry("b", 1)), ==, 0);
        e = entry("a", 2);
        g_assert_cmpint(registry_add(&reg, e), ==, -EEXIST);
        entry_free(e);
        g_assert_cmpuint(reg.n_entries, ==, 2);
        g_assert_cmpuint(registry_count_user(&reg, 1), ==, 2);
        e = registry_get(&reg, "a");
        g_assert_nonnull(e);
        g_assert_cmpuint(e->owner_uid, ==, 1);
        registry_unlink(&reg, e);
        entry_free(e);
        g_assert_null(registry_get(&reg, "a"));
        g_assert_cmpuint(registry_count_user(&reg, 1), ==, 1);
        registry_done(&reg);
}

static void test_many(void) {
        Registry reg;
        Entry **all;
        size_t n;
        char name[32];

        registry_init(&reg);
        for (int i = 0; i < 5000; i++) {
                snprintf(name, sizeof name, "e/%d", i);
                g_assert_cmpint(registry_add(&reg, entry(name, (uid_t) (i % 7))), ==, 0);
        }
        for (int i = 0; i < 5000; i += 997) {
                snprintf(name, sizeof name, "e/%d", i);
                g_assert_nonnull(registry_get(&reg, name));
        }
        g_assert_cmpint(registry_all(&reg, &all, &n), ==, 0);
        g_assert_cmpuint(n, ==, 5000);
        free(all);
        registry_done(&reg);
}

static void test_quota(void) {
        Registry reg;
        const char *which = NULL;

        registry_init(&reg);
        reg.max_entries = 3;
        reg.max_entries_per_user = 2;
        reg.max_memory = 100;
        g_assert_cmpint(registry_add(&reg, entry("a", 1)), ==, 0);
        g_assert_cmpint(registry_add(&reg, entry("b", 1)), ==, 0);
        g_assert_cmpint(registry_check_quota(&reg, 1, 1, 0, 0, 0, &which), ==, -EDQUOT);
        g_assert_cmpstr(which, ==, "MaxEntriesPerUser");
        g_assert_cmpint(registry_check_quota(&reg, 1, 1, 1, 0, 0, &which), ==, 0); /* replace */
        g_assert_cmpint(registry_check_quota(&reg, 2, 1, 0, 0, 0, &which), ==, 0);
        g_assert_cmpint(registry_add(&reg, entry("c", 2)), ==, 0);
        g_assert_cmpint(registry_check_quota(&reg, 3, 1, 0, 0, 0, &which), ==, -EDQUOT);
        g_assert_cmpstr(which, ==, "MaxEntries");
        g_assert_cmpint(registry_check_quota(&reg, 2, 0, 0, 101, 0, &which), ==, -EDQUOT);
        g_assert_cmpstr(which, ==, "MaxMemorySize");
        g_assert_cmpint(registry_check_quota(&reg, 2, 0, 0, 100, 0, &which), ==, 0);
        registry_done(&reg);
}

static void test_shrinks(void) {
        Registry reg;
        char name[32];
        size_t peak;

        registry_init(&reg);
        for (int i = 0; i < 4096; i++) {
                snprintf(name, sizeof name, "s/%d", i);
                g_assert_cmpint(registry_add(&reg, entry(name, 1)), ==, 0);
        }
        peak = reg.by_name.n_buckets;
        g_assert_cmpuint(peak, >=, 4096);
        for (int i = 0; i < 4090; i++) {
                snprintf(name, sizeof name, "s/%d", i);
                Entry *e = registry_get(&reg, name);
                g_assert_nonnull(e);
                registry_unlink(&reg, e);
                entry_free(e);
        }
        g_assert_cmpuint(reg.by_name.n_buckets, <=, 32);
        for (int i = 4090; i < 4096; i++) {
                snprintf(name, sizeof name, "s/%d", i);
                g_assert_nonnull(registry_get(&reg, name)); /* still found after shrinking */
        }
        registry_done(&reg);
}

/* The registry never frees owner_data itself: registry_done() hands each
 * entry's back to drop_owner_data, and entries without one are not passed. */
static unsigned dropped;

static void drop(Entry *e) {
        g_assert_nonnull(e->owner_data);
        g_assert_cmpint(*(int *) e->owner_data, ==, 42);
        free(e->owner_data);
        e->owner_data = NULL;
        dropped++;
}

static void test_owner_data(void) {
        Registry reg;
        Entry *e;

        registry_init(&reg);
        reg.drop_owner_data = drop;
        dropped = 0;
        for (int i = 0; i < 3; i++) {
                char name[8];
                int *data = malloc(sizeof *data);
                g_assert_nonnull(data);
                *data = 42;
                snprintf(name, sizeof name, "o%d", i);
                e = entry(name, 1);
                e->owner_data = data;
                g_assert_cmpint(registry_add(&reg, e), ==, 0);
        }
        g_assert_cmpint(registry_add(&reg, entry("plain", 1)), ==, 0);
        registry_done(&reg);
        g_assert_cmpuint(dropped, ==, 3);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/registry/add-get-unlink", test_add_get_unlink);
        g_test_add_func("/registry/many-entries", test_many);
        g_test_add_func("/registry/quota", test_quota);
        g_test_add_func("/registry/table-shrinks", test_shrinks);
        g_test_add_func("/registry/owner-data-handed-back", test_owner_data);
        return g_test_run();
}
