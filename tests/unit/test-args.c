/* Unit tests of service/args.c: the daemon's command line. */
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <stdarg.h>
#include <string.h>

#include "args.h"
#include "config.h"

/* Parses a NULL-terminated list of arguments after "fdbroker", with
 * getopt reset for a fresh parse. */
static int parse(Args *ret, ...) {
        char *argv[64] = { (char *) "fdbroker" };
        int argc = 1;
        va_list ap;

        va_start(ap, ret);
        for (const char *s; (s = va_arg(ap, const char *)) && argc < 63;)
                argv[argc++] = (char *) s;
        va_end(ap);
        optind = 0;
        return args_parse(argc, argv, ret);
}

static void test_defaults(void) {
        Args a;

        g_assert_cmpint(parse(&a, NULL), ==, 1);
        g_assert_cmpstr(a.bus, ==, "system");
        g_assert_cmpstr(a.policy_dirs[0], ==, FDBROKER_ADMIN_POLICY_DIR);
        g_assert_cmpstr(a.policy_dirs[1], ==, FDBROKER_VENDOR_POLICY_DIR);
        g_assert_null(a.policy_dirs[2]);
        g_assert_false(a.policy_dirs_given);
        g_assert_false(a.check_policy);
        g_assert_null(a.runtime_dir);
        g_assert_cmpuint(a.exit_idle_usec, ==, 0);
        g_assert_false(a.exit_idle_with_entries);
        g_assert_null(a.direct_socket);
}

static void test_every_option(void) {
        Args a;

        g_assert_cmpint(parse(&a, "--bus=session", "--check-policy", "--runtime-dir", "/run/x",
                              "--exit-idle-time=1.5", "--exit-idle-with-entries", "--direct-socket=/run/s", NULL),
                        ==, 1);
        g_assert_cmpstr(a.bus, ==, "session");
        g_assert_true(a.check_policy);
        g_assert_cmpstr(a.runtime_dir, ==, "/run/x");
        g_assert_cmpuint(a.exit_idle_usec, ==, 1500000);
        g_assert_true(a.exit_idle_with_entries);
        g_assert_cmpstr(a.direct_socket, ==, "/run/s");
}

/* Given directories replace both defaults, in the order given. */
static void test_policy_dirs_replace_defaults(void) {
        Args a;

        g_assert_cmpint(parse(&a, "--policy-dir=/a", "--policy-dir", "/b", NULL), ==, 1);
        g_assert_true(a.policy_dirs_given);
        g_assert_cmpstr(a.policy_dirs[0], ==, "/a");
        g_assert_cmpstr(a.policy_dirs[1], ==, "/b");
        g_assert_null(a.policy_dirs[2]);
}

static void test_policy_dirs_at_most_16(void) {
        const char *d = "--policy-dir=/d";
        Args a = { .bus = "untouched" };

        g_assert_cmpint(parse(&a, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, NULL), ==, 1);
        g_assert_cmpstr(a.policy_dirs[15], ==, "/d");
        g_assert_null(a.policy_dirs[16]);

        a.bus = "untouched";
        if (g_test_subprocess()) {
                g_assert_cmpint(parse(&a, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, NULL), ==, -E2BIG);
                g_assert_cmpstr(a.bus, ==, "untouched");
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("fdbroker: at most 16 --policy-dir options.\n");
}

typedef struct Refusal {
        const char *arg;
        const char *message;
} Refusal;

static const Refusal refusals[] = {
        { "--exit-idle-time=abc", "fdbroker: --exit-idle-time takes seconds, not 'abc'.\n" },
        { "--exit-idle-time=-1", "fdbroker: --exit-idle-time takes seconds, not '-1'.\n" },
        { "--exit-idle-time=1e9", "fdbroker: --exit-idle-time takes seconds, not '1e9'.\n" },
        { "--direct-socket=run/s", "fdbroker: --direct-socket takes an absolute path, not 'run/s'.\n" },
        { "extra", "fdbroker: unexpected argument 'extra'; see --help.\n" },
        { "--no-such-option", "*unrecognized option*" },
};

/* Each refused with its message on stderr, nothing returned. */
static void test_refusals(gconstpointer data) {
        const Refusal *t = data;
        Args a = { .bus = "untouched" };

        if (g_test_subprocess()) {
                g_assert_cmpint(parse(&a, t->arg, NULL), <, 0);
                g_assert_cmpstr(a.bus, ==, "untouched");
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr(t->message);
}

static void test_help_and_version_end_the_parse(void) {
        Args a = { .bus = "untouched" };

        if (g_test_subprocess()) {
                g_assert_cmpint(parse(&a, "--help", NULL), ==, 0);
                g_assert_cmpint(parse(&a, "--version", NULL), ==, 0);
                g_assert_cmpstr(a.bus, ==, "untouched");
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stdout("Usage: fdbroker [OPTIONS]*--check-policy*fdbroker " FDBROKER_VERSION "\n");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/args/defaults", test_defaults);
        g_test_add_func("/args/every-option", test_every_option);
        g_test_add_func("/args/policy-dirs-replace-defaults", test_policy_dirs_replace_defaults);
        g_test_add_func("/args/policy-dirs-at-most-16", test_policy_dirs_at_most_16);
        for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
                g_autofree char *path = g_strdup_printf("/args/refused/%zu", i);
                g_test_add_data_func(path, &refusals[i], test_refusals);
        }
        g_test_add_func("/args/help-and-version-end-the-parse", test_help_and_version_end_the_parse);
        return g_test_run();
}
