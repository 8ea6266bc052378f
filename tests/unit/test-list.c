/* test-list.c: common/list.h, the intrusive lists of service/. */
#include <glib.h>

#include "list.h"

typedef struct Item Item;
struct Item {
        int v;
        LIST_FIELDS(Item, a);   /* on two lists at once */
        LIST_FIELDS(Item, b);
};

/* The values along list a from head, as a string, checking every back
 * link on the way. */
static char *walk_a(Item *head) {
        GString *s = g_string_new(NULL);
        Item *prev = NULL;

        LIST_FOREACH(a, i, head) {
                g_assert_true(i->a_prev == prev);
                g_string_append_printf(s, "%d", i->v);
                prev = i;
        }
        return g_string_free(s, FALSE);
}

static void check_a(Item *head, const char *want) {
        g_autofree char *got = walk_a(head);
        g_assert_cmpstr(got, ==, want);
}

static void test_prepend_append(void) {
        Item it[4] = { { .v = 0 }, { .v = 1 }, { .v = 2 }, { .v = 3 } };
        LIST_HEAD(Item, head) = NULL;

        g_assert_true(LIST_IS_EMPTY(head));
        g_assert_true(LIST_APPEND(a, head, &it[1]) == &it[1]);
        check_a(head, "1");
        LIST_APPEND(a, head, &it[2]);
        LIST_PREPEND(a, head, &it[0]);
        LIST_APPEND(a, head, &it[3]);
        check_a(head, "0123");
        g_assert_true(head == &it[0]);
        g_assert_null(it[3].a_next);
}

static void test_remove(void) {
        Item it[4] = { { .v = 0 }, { .v = 1 }, { .v = 2 }, { .v = 3 } };
        LIST_HEAD(Item, head) = NULL;

        for (int i = 0; i < 4; i++)
                LIST_APPEND(a, head, &it[i]);
        LIST_REMOVE(a, head, &it[1]); /* middle */
        check_a(head, "023");
        g_assert_null(it[1].a_next);
        g_assert_null(it[1].a_prev);
        LIST_REMOVE(a, head, &it[0]); /* head */
        check_a(head, "23");
        g_assert_true(head == &it[2]);
        LIST_REMOVE(a, head, &it[3]); /* tail */
        check_a(head, "2");
        LIST_REMOVE(a, head, &it[2]); /* last */
        g_assert_null(head);
        LIST_APPEND(a, head, &it[1]); /* a removed item can go back on */
        check_a(head, "1");
}

static void test_two_lists(void) {
        Item it[3] = { { .v = 0 }, { .v = 1 }, { .v = 2 } };
        LIST_HEAD(Item, ha) = NULL;
        LIST_HEAD(Item, hb) = NULL;
        GString *s = g_string_new(NULL);

        for (int i = 0; i < 3; i++) {
                LIST_APPEND(a, ha, &it[i]);
                LIST_PREPEND(b, hb, &it[i]);
        }
        LIST_REMOVE(b, hb, &it[1]);
        check_a(ha, "012"); /* untouched by list b */
        LIST_FOREACH(b, i, hb)
                g_string_append_printf(s, "%d", i->v);
        g_assert_cmpstr(s->str, ==, "20");
        g_string_free(s, TRUE);
}

static void test_foreach_safe(void) {
        LIST_HEAD(Item, head) = NULL;
        int n = 0;

        for (int i = 0; i < 5; i++) {
                Item *x = g_new0(Item, 1);
                x->v = i;
                LIST_APPEND(a, head, x);
        }
        /* Free the odd ones while walking. */
        LIST_FOREACH_SAFE(a, i, next, head)
                if (i->v % 2) {
                        LIST_REMOVE(a, head, i);
                        g_free(i);
                }
        check_a(head, "024");
        LIST_FOREACH_SAFE(a, i, next, head) {
                LIST_REMOVE(a, head, i);
                g_free(i);
                n++;
        }
        g_assert_cmpint(n, ==, 3);
        g_assert_null(head);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/list/prepend-append", test_prepend_append);
        g_test_add_func("/list/remove", test_remove);
        g_test_add_func("/list/two-lists", test_two_lists);
        g_test_add_func("/list/foreach-safe", test_foreach_safe);
        return g_test_run();
}
