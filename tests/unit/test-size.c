/* Unit tests of common/size.h: the size grammar shared by the policy's
 * MaxMemorySize= and fdbrokerctl's SIZE. */
#include <errno.h>
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"
#include "size.h"

typedef struct SizeCase {
        const char *text;
        int r;
        uint64_t value;
} SizeCase;

static const SizeCase cases[] = {
        { "0", 0, 0 },
        { "1", 0, 1 },
        { "4096", 0, 4096 },
        { "64K", 0, 64 << 10 },
        { "64k", 0, 64 << 10 },
        { "512M", 0, UINT64_C(512) << 20 },
        { "1G", 0, UINT64_C(1) << 30 },
        { "1g", 0, UINT64_C(1) << 30 },
        { "2T", 0, UINT64_C(2) << 40 },
        { "1KiB", 0, 1024 },
        { "3MiB", 0, UINT64_C(3) << 20 },
        { "1GiB", 0, UINT64_C(1) << 30 },
        { "16777215T", 0, UINT64_C(16777215) << 40 },
        { "18446744073709551615", 0, UINT64_MAX },
        /* not sizes */
        { "", -EINVAL, 0 },
        { " 1", -EINVAL, 0 },
        { "+1", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { "1 K", -EINVAL, 0 },
        { "1GB", -EINVAL, 0 },
        { "1Gi", -EINVAL, 0 },
        { "1GiBs", -EINVAL, 0 },
        { "1iB", -EINVAL, 0 },
        { "1P", -EINVAL, 0 },
        { "1.5G", -EINVAL, 0 },
        { "0x10", -EINVAL, 0 },
        { "K", -EINVAL, 0 },
        { "1KK", -EINVAL, 0 },
        /* sizes that do not fit */
        { "18446744073709551616", -ERANGE, 0 },
        { "99999999999999999999", -ERANGE, 0 },
        { "16777216T", -ERANGE, 0 },
        { "17179869184G", -ERANGE, 0 },
};

static void test_cases(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                uint64_t v = 12345;
                int r = parse_size(cases[i].text, &v);
                if (r != cases[i].r)
                        g_error("parse_size(\"%s\") returned %d, not %d", cases[i].text, r, cases[i].r);
                /* Failure leaves the output alone. */
                g_assert_cmpuint(v, ==, r == 0 ? cases[i].value : 12345);
        }
        g_assert_cmpint(parse_size(NULL, &(uint64_t) { 0 }), ==, -EINVAL);
}

static Policy *parse_limits(const char *text, int expect) {
        Policy *p = NULL;
        char **problems = NULL;
        int r = policy_parse_text("limits.conf", text, strlen(text), &p, &problems);

        g_assert_cmpint(r, ==, expect);
        if (problems)
                g_assert_true(strstr(problems[0], "limits.conf:2:"));
        policy_problems_free(problems);
        return p;
}

/* The policy reads MaxMemorySize= with the same grammar, and counts still
 * take no suffix in any case. */
static void test_policy_uses_it(void) {
        Policy *p;

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                uint64_t a = 1, b = 2;
                g_assert_cmpint(policy_parse_size(cases[i].text, &a), ==, parse_size(cases[i].text, &b));
                if (cases[i].r == 0)
                        g_assert_cmpuint(a, ==, b);
        }
        p = parse_limits("[Limits]\nMaxMemorySize=2GiB\n", 0);
        g_assert_cmpuint(p->limits.max_memory_size, ==, UINT64_C(2) << 30);
        policy_free(p);
        p = parse_limits("[Limits]\nMaxMemorySize=64k\n", 0);
        g_assert_cmpuint(p->limits.max_memory_size, ==, 65536);
        policy_free(p);
        g_assert_null(parse_limits("[Limits]\nMaxEntries=10k\n", -EINVAL));
        g_assert_null(parse_limits("[Limits]\nMaxEntriesPerUser=1KiB\n", -EINVAL));
        g_assert_null(parse_limits("[Limits]\nMaxMemorySize=1GB\n", -EINVAL));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/size/grammar", test_cases);
        g_test_add_func("/size/policy-uses-it", test_policy_uses_it);
        return g_test_run();
}
