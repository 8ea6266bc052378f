/* Unit tests of per-uid accounting and fair shares (service/accounting.c),
 * without a bus. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "accounting.h"
#include "policy.h"

static const char *resources_per_user_key(AcctResource res) {
        switch (res) {
        case ACCT_WORKERS:
                return "MaxWorkersPerUser";
        case ACCT_DIRECT_CONNECTIONS:
                return "MaxDirectConnectionsPerUser";
        case ACCT_WATCHES:
                return "MaxWatchesPerUser";
        default:
                return "?";
        }
}

static void test_charge_discharge(void) {
        Accounting a;

        accounting_init(&a);
        accounting_set_limit(&a, ACCT_WAITERS, 1000, 100);
        g_assert_true(accounting_is_empty(&a));
        g_assert_cmpint(accounting_charge(&a, 1000, ACCT_WAITERS, 3, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 1001, ACCT_WAITERS, 2, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 1000, ACCT_ENTRIES, 1, NULL), ==, 0);
        g_assert_cmpuint(accounting_usage(&a, 1000, ACCT_WAITERS), ==, 3);
        g_assert_cmpuint(accounting_usage(&a, 1001, ACCT_WAITERS), ==, 2);
        g_assert_cmpuint(accounting_usage(&a, 1002, ACCT_WAITERS), ==, 0);
        g_assert_cmpuint(a.used[ACCT_WAITERS], ==, 5);
        g_assert_cmpuint(a.n_holders[ACCT_WAITERS], ==, 2);
        g_assert_false(accounting_is_empty(&a));

        accounting_discharge(&a, 1000, ACCT_WAITERS, 3);
        g_assert_cmpuint(a.n_holders[ACCT_WAITERS], ==, 1);
        /* uid 1000 still holds an entry: its record stays. */
        g_assert_cmpuint(a.users.n_items, ==, 2);
        accounting_discharge(&a, 1000, ACCT_ENTRIES, 1);
        g_assert_cmpuint(a.users.n_items, ==, 1);
        /* Discharging more than held, or someone unknown, never underflows. */
        accounting_discharge(&a, 1001, ACCT_WAITERS, 7);
        accounting_discharge(&a, 4242, ACCT_WAITERS, 1);
        g_assert_cmpuint(a.used[ACCT_WAITERS], ==, 0);
        g_assert_true(accounting_is_empty(&a));
        accounting_done(&a);
}

static void test_per_user_limit(void) {
        Accounting a;
        AcctRefusal why;
        char msg[256];

        accounting_init(&a);
        accounting_set_limit(&a, ACCT_ENTRIES, ACCT_UNLIMITED, 2);
        g_assert_cmpint(accounting_charge(&a, 7, ACCT_ENTRIES, 1, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 7, ACCT_ENTRIES, 1, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 7, ACCT_ENTRIES, 1, &why), ==, -EDQUOT);
        g_assert_cmpstr(why.limit, ==, "MaxEntriesPerUser");
        g_assert_false(why.fair_share);
        g_assert_cmpuint(why.used, ==, 2);
        g_assert_cmpuint(why.allowed, ==, 2);
        accounting_format_refusal(&why, msg, sizeof msg);
        g_assert_nonnull(strstr(msg, "uid 7 holds 2 entries"));
        g_assert_nonnull(strstr(msg, "MaxEntriesPerUser allows 2"));
        /* A refused charge charged nothing. */
        g_assert_cmpuint(accounting_usage(&a, 7, ACCT_ENTRIES), ==, 2);
        /* A replace frees one as it adds one. */
        g_assert_cmpint(accounting_check(&a, 7, ACCT_ENTRIES, 1, 1, NULL), ==, 0);
        /* Root obeys the per-user limit too. */
        g_assert_cmpint(accounting_charge(&a, 0, ACCT_ENTRIES, 3, &why), ==, -EDQUOT);
        accounting_discharge(&a, 7, ACCT_ENTRIES, 2);
        g_assert_true(accounting_is_empty(&a));
        accounting_done(&a);
}

/* dbus-broker's rule: with n holders (the caller counted), a uid holding
 * share may grow to (remaining + share) / (n + 1). */
static void test_fair_share(void) {
        Accounting a;
        AcctRefusal why;
        char msg[256];

        accounting_init(&a);
        accounting_set_limit(&a, ACCT_MEMORY, 1000, ACCT_UNLIMITED);

        /* Alone, a uid may take half of the pool and not a byte more. */
        g_assert_cmpint(accounting_check(&a, 1000, ACCT_MEMORY, 501, 0, &why), ==, -EDQUOT);
        g_assert_true(why.fair_share);
        g_assert_cmpstr(why.limit, ==, "MaxMemorySize");
        g_assert_cmpuint(why.allowed, ==, 500);
        accounting_format_refusal(&why, msg, sizeof msg);
        g_assert_nonnull(strstr(msg, "fair share of what is left of MaxMemorySize allows at most 500"));
        g_assert_cmpint(accounting_charge(&a, 1000, ACCT_MEMORY, 500, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 1000, ACCT_MEMORY, 1, &why), ==, -EDQUOT);

        /* The next uid finds 500 left, and may take a third of 500 + 0... */
        g_assert_cmpint(accounting_check(&a, 1001, ACCT_MEMORY, 167, 0, &why), ==, -EDQUOT);
        g_assert_cmpuint(why.allowed, ==, 166);
        g_assert_cmpint(accounting_charge(&a, 1001, ACCT_MEMORY, 166, NULL), ==, 0);
        /* ...and a third one still finds something. */
        g_assert_cmpint(accounting_charge(&a, 1002, ACCT_MEMORY, 60, NULL), ==, 0);
        g_assert_cmpuint(a.n_holders[ACCT_MEMORY], ==, 3);

        /* However many uids come, the pool is never exhausted by them. */
        for (uid_t u = 2000; u < 2100; u++)
                while (accounting_charge(&a, u, ACCT_MEMORY, 1, NULL) == 0)
                        ;
        g_assert_cmpuint(a.used[ACCT_MEMORY], <, 1000);

        /* Root is held to the total only: it may take what is left. */
        uint64_t left = 1000 - a.used[ACCT_MEMORY];
        g_assert_cmpint(accounting_charge(&a, 0, ACCT_MEMORY, left + 1, &why), ==, -EDQUOT);
        g_assert_false(why.fair_share);
        g_assert_cmpint(accounting_charge(&a, 0, ACCT_MEMORY, left, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 1000, ACCT_MEMORY, 1, NULL), ==, -EDQUOT);

        /* Give everything back: nothing is left anywhere. */
        accounting_discharge(&a, 0, ACCT_MEMORY, left);
        accounting_discharge(&a, 1000, ACCT_MEMORY, 500);
        accounting_discharge(&a, 1001, ACCT_MEMORY, 166);
        accounting_discharge(&a, 1002, ACCT_MEMORY, 60);
        for (uid_t u = 2000; u < 2100; u++)
                accounting_discharge(&a, u, ACCT_MEMORY, accounting_usage(&a, u, ACCT_MEMORY));
        g_assert_cmpuint(a.used[ACCT_MEMORY], ==, 0);
        g_assert_true(accounting_is_empty(&a));
        accounting_done(&a);
}

/* Growing by a replace: the freed amount counts as given back first. */
static void test_fair_share_replace(void) {
        Accounting a;

        accounting_init(&a);
        accounting_set_limit(&a, ACCT_MEMORY, 1000, ACCT_UNLIMITED);
        g_assert_cmpint(accounting_charge(&a, 5, ACCT_MEMORY, 400, NULL), ==, 0);
        g_assert_cmpint(accounting_check(&a, 5, ACCT_MEMORY, 500, 400, NULL), ==, 0);
        g_assert_cmpint(accounting_check(&a, 5, ACCT_MEMORY, 501, 400, NULL), ==, -EDQUOT);
        g_assert_cmpint(accounting_check(&a, 5, ACCT_MEMORY, 101, 0, NULL), ==, -EDQUOT);
        accounting_discharge(&a, 5, ACCT_MEMORY, 400);
        g_assert_true(accounting_is_empty(&a));
        accounting_done(&a);
}

static void test_total_limit(void) {
        Accounting a;
        AcctRefusal why;

        accounting_init(&a);
        accounting_set_limit(&a, ACCT_POLKIT, 10, 20);
        g_assert_cmpint(accounting_charge_force(&a, 0, ACCT_POLKIT, 8), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 0, ACCT_POLKIT, 3, &why), ==, -EDQUOT);
        g_assert_cmpstr(why.limit, ==, "MaxAuthorizations");
        g_assert_cmpuint(why.allowed, ==, 10);
        g_assert_cmpint(accounting_charge(&a, 0, ACCT_POLKIT, 2, NULL), ==, 0);
        /* A forced charge (fds already sent) may pass the limits... */
        g_assert_cmpint(accounting_charge_force(&a, 3, ACCT_POLKIT, 5), ==, 0);
        g_assert_cmpuint(a.used[ACCT_POLKIT], ==, 15);
        /* ...and then everything new is refused until it comes back. */
        g_assert_cmpint(accounting_charge(&a, 4, ACCT_POLKIT, 1, NULL), ==, -EDQUOT);
        accounting_discharge(&a, 3, ACCT_POLKIT, 5);
        accounting_discharge(&a, 0, ACCT_POLKIT, 10);
        g_assert_true(accounting_is_empty(&a));
        /* Huge requests do not overflow into acceptance. */
        accounting_set_limit(&a, ACCT_MEMORY, UINT64_MAX - 1, ACCT_UNLIMITED);
        g_assert_cmpint(accounting_charge(&a, 9, ACCT_MEMORY, UINT64_MAX - 2, NULL), ==, -EDQUOT);
        g_assert_cmpint(accounting_charge(&a, 9, ACCT_MEMORY, UINT64_MAX / 4, NULL), ==, 0);
        g_assert_cmpint(accounting_charge(&a, 10, ACCT_MEMORY, UINT64_MAX / 2, NULL), ==, -EDQUOT);
        accounting_discharge(&a, 9, ACCT_MEMORY, UINT64_MAX / 4);
        g_assert_true(accounting_is_empty(&a));
        accounting_done(&a);
}

static void test_names(void) {
        for (int i = 0; i < _ACCT_MAX; i++)
                g_assert_nonnull(accounting_resource_to_string(i));
        g_assert_cmpstr(accounting_resource_to_string(ACCT_ENTRIES), ==, "entries");
}

/* The [Limits] keys that set these limits (policy/policy.c). */
static char *limits_problem(const char *text) {
        Policy *p = NULL;
        char **problems = NULL, *first;
        int r = policy_parse_text("limits.conf", text, strlen(text), &p, &problems);
        if (r == 0) {
                policy_free(p);
                return NULL;
        }
        g_assert_nonnull(problems);
        first = g_strdup(problems[0]);
        policy_problems_free(problems);
        return first;
}

static void test_policy_limits(void) {
        const char *ok = "[Limits]\nMaxMemorySizePerUser=64M\nMaxWaits=100\nMaxWaitsPerUser=10\n"
                         "MaxQueuedCallsPerUser=32\nMaxAuthorizations=50\nMaxUnreadFds=48\n"
                         "MaxUnreadFdsPerUser=8\nMaxWatchesPerUser=3\n";
        Policy *p = NULL;
        char **problems = NULL;
        uint64_t v = 0;

        g_assert_cmpint(policy_parse_text("limits.conf", ok, strlen(ok), &p, &problems), ==, 0);
        g_assert_true(policy_limit_get(&p->limits, POLICY_LIMIT_MAX_MEMORY_SIZE_PER_USER, &v));
        g_assert_cmpuint(v, ==, 64ULL << 20);
        g_assert_true(policy_limit_get(&p->limits, POLICY_LIMIT_MAX_WAITS_PER_USER, &v));
        g_assert_cmpuint(v, ==, 10);
        g_assert_true(policy_limit_get(&p->limits, POLICY_LIMIT_MAX_UNREAD_FDS_PER_USER, &v));
        g_assert_cmpuint(v, ==, 8);
        g_assert_false(policy_limit_get(&p->limits, POLICY_LIMIT_MAX_WORKERS, &v));
        for (int k = 0; k < _POLICY_LIMIT_MAX; k++)
                g_assert_nonnull(policy_limit_key_to_string(k));
        policy_free(p);

        struct {
                const char *text, *expect;
        } bad[] = {
                { "[Limits]\nMaxWaits=0\n", "limits.conf:2: MaxWaits=0 is not valid" },
                { "[Limits]\nMaxWaitsPerUser=1K\n", "limits.conf:2: MaxWaitsPerUser=1K is not valid" },
                { "[Limits]\nMaxUnreadFds=64\n", "limits.conf:2: MaxUnreadFds=64 is not valid; use a number from 1 to 48" },
                { "[Limits]\nMaxMemorySizePerUser=lots\n", "limits.conf:2: MaxMemorySizePerUser=lots is not valid" },
                { "[Limits]\nMaxWatches=1\nMaxWatches=2\n", "limits.conf:3: MaxWatches= is given twice" },
                { "[Limits]\nMaxWaitz=1\n", "limits.conf:2: unknown key 'MaxWaitz'" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *msg = limits_problem(bad[i].text);
                g_assert_nonnull(msg);
                if (!g_str_has_prefix(msg, bad[i].expect))
                        g_error("problem '%s' does not start with '%s'", msg, bad[i].expect);
        }
}

/* Worker slots, direct connections and watches are charged like the rest:
 * their defaults are the limits the modules used to keep themselves, and one
 * uid filling what it may still leaves room for the next, at every size. */
static void test_shared_resources(void) {
        static const struct {
                AcctResource res;
                uint64_t total, per_user;
                const char *total_key;
        } cases[] = {
                { ACCT_WORKERS, 32, 16, "MaxWorkers" },
                { ACCT_DIRECT_CONNECTIONS, 1024, 16, "MaxDirectConnections" },
                { ACCT_WATCHES, 4096, 16, "MaxWatches" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                AcctResource res = cases[i].res;
                Accounting a;
                AcctRefusal why;
                uint64_t n = 0, other = 0;

                accounting_init(&a);
                g_assert_cmpuint(a.limits[res].total, ==, cases[i].total);
                g_assert_cmpuint(a.limits[res].per_user, ==, cases[i].per_user);

                /* Per-user limit first at the defaults. */
                while (accounting_charge(&a, 1000, res, 1, &why) == 0)
                        n++;
                g_assert_cmpuint(n, ==, cases[i].per_user);
                g_assert_cmpstr(why.limit, ==, resources_per_user_key(res));

                /* A small pool: the fair share binds, and another uid is
                 * still served after the first took all it could. */
                accounting_discharge(&a, 1000, res, n);
                g_assert_true(accounting_is_empty(&a));
                accounting_set_limit(&a, res, 12, ACCT_UNLIMITED);
                for (n = 0; accounting_charge(&a, 1000, res, 1, &why) == 0; n++)
                        ;
                g_assert_true(why.fair_share);
                g_assert_cmpstr(why.limit, ==, cases[i].total_key);
                g_assert_cmpuint(n, ==, 6); /* half of the pool */
                for (other = 0; accounting_charge(&a, 1001, res, 1, &why) == 0; other++)
                        ;
                g_test_message("%s: uid 1000 took %" G_GUINT64_FORMAT " of 12, uid 1001 then %" G_GUINT64_FORMAT,
                               accounting_resource_to_string(res), n, other);
                g_assert_cmpuint(other, >=, 2);
                /* A third uid still finds one. */
                g_assert_cmpint(accounting_charge(&a, 1002, res, 1, NULL), ==, 0);
                /* Root is not held to the fair share, only to the pool. */
                while (accounting_charge(&a, 0, res, 1, &why) == 0)
                        ;
                g_assert_false(why.fair_share);
                g_assert_cmpuint(a.used[res], ==, 12);
                accounting_discharge(&a, 0, res, accounting_usage(&a, 0, res));
                accounting_discharge(&a, 1000, res, n);
                accounting_discharge(&a, 1001, res, other);
                accounting_discharge(&a, 1002, res, 1);
                g_assert_true(accounting_is_empty(&a));
                accounting_done(&a);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/accounting/charge-discharge", test_charge_discharge);
        g_test_add_func("/accounting/per-user-limit", test_per_user_limit);
        g_test_add_func("/accounting/fair-share", test_fair_share);
        g_test_add_func("/accounting/fair-share-replace", test_fair_share_replace);
        g_test_add_func("/accounting/total-limit", test_total_limit);
        g_test_add_func("/accounting/names", test_names);
        g_test_add_func("/accounting/policy-limits", test_policy_limits);
        g_test_add_func("/accounting/shared-resources", test_shared_resources);
        return g_test_run();
}
