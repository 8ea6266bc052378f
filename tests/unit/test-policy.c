/* Unit tests of the admin policy engine (policy/policy.c): parsing, every
 * problem with its line, masking, ordering, globs and decisions. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "policy.h"

static Policy *parse_ok(const char *text) {
        Policy *p = NULL;
        char **problems = NULL;
        int r = policy_parse_text("test.conf", text, strlen(text), &p, &problems);
        if (r < 0 && problems)
                for (char **s = problems; *s; s++)
                        g_printerr("unexpected problem: %s\n", *s);
        g_assert_cmpint(r, ==, 0);
        g_assert_nonnull(p);
        return p;
}

/* Parses text that must fail and returns its first problem. */
static char *first_problem(const char *text) {
        Policy *p = NULL;
        char **problems = NULL, *first;
        int r = policy_parse_text("bad.conf", text, strlen(text), &p, &problems);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(p);
        g_assert_nonnull(problems);
        g_assert_nonnull(problems[0]);
        first = g_strdup(problems[0]);
        policy_problems_free(problems);
        return first;
}

static void assert_problem(const char *text, const char *expect_prefix, const char *expect_word) {
        g_autofree char *msg = first_problem(text);
        if (!g_str_has_prefix(msg, expect_prefix) || !strstr(msg, expect_word))
                g_error("problem '%s' does not start with '%s' or lacks '%s'", msg, expect_prefix, expect_word);
}

static void test_every_key(void) {
        Policy *p = parse_ok("# vendor defaults\n"
                             "[Rule camera-readers]\n"
                             "Action=retrieve              # deposit | retrieve\n"
                             "Match=camera/*\n"
                             "Subject=group:root uid:1001  # any of them\n"
                             "Result=yes\n"
                             "Access=read-only\n"
                             "\n"
                             "[Limits]\n"
                             "MaxEntries=100\n"
                             "MaxEntriesPerUser=10\n"
                             "MaxMemorySize=64M\n");
        g_assert_cmpuint(p->n_rules, ==, 1);
        g_assert_cmpstr(p->rules[0].name, ==, "camera-readers");
        g_assert_cmpuint(p->rules[0].line, ==, 2);
        g_assert_cmpuint(p->rules[0].actions, ==, 1U << POLICY_ACTION_RETRIEVE);
        g_assert_cmpstr(p->rules[0].match, ==, "camera/*");
        g_assert_cmpuint(p->rules[0].n_subjects, ==, 2);
        g_assert_cmpint(p->rules[0].result, ==, POLICY_RESULT_YES);
        g_assert_cmpint(p->rules[0].access, ==, O_RDONLY);
        g_assert_true(p->limits.has_max_entries);
        g_assert_cmpuint(p->limits.max_entries, ==, 100);
        g_assert_cmpuint(p->limits.max_entries_per_user, ==, 10);
        g_assert_cmpuint(p->limits.max_memory_size, ==, 64ULL << 20);
        policy_free(p);
}

static void test_errors_with_lines(void) {
        assert_problem("[Rule a]\nAction=retrieve\nSubject=everyone\nResult=yes\nColour=red\n", "bad.conf:5:",
                       "unknown key 'Colour'");
        assert_problem("[Rule a]\nAction=fly\nSubject=everyone\nResult=yes\n", "bad.conf:2:", "unknown action 'fly'");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\nResult=maybe\n", "bad.conf:4:",
                       "unknown result 'maybe'");
        assert_problem("[Rule a]\nAction=list\nSubject=robot:x\nResult=no\n", "bad.conf:3:", "'robot:x'");
        assert_problem("\n\n[Rule a]\nAction=list\nSubject=user:no-such-user-fdbroker\nResult=no\n", "bad.conf:5:",
                       "no known user");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\nResult=no\n[Rule a]\nAction=list\nSubject=everyone\n"
                       "Result=no\n",
                       "bad.conf:5:", "already defined at bad.conf:1");
        assert_problem("[Limits]\nMaxEntries=lots\n", "bad.conf:2:", "MaxEntries=lots");
        assert_problem("[Limits]\nMaxEntries=0\n", "bad.conf:2:", "MaxEntries=0");
        assert_problem("[Limits]\nMaxMemorySize=1Q\n", "bad.conf:2:", "MaxMemorySize=1Q");
        assert_problem("[Limits]\nMaxEntriesPerUser=5K\n", "bad.conf:2:", "MaxEntriesPerUser");
        assert_problem("[Rule a]\nAction=list\nResult=no\n", "bad.conf:1:", "no Subject=");
        assert_problem("[Rule a]\nSubject=everyone\nResult=no\n", "bad.conf:1:", "no Action=");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\n", "bad.conf:1:", "no Result=");
        assert_problem("[Rule a]\nAction=list\nAction=list\nSubject=everyone\nResult=no\n", "bad.conf:3:",
                       "given twice");
        assert_problem("Action=list\n", "bad.conf:1:", "outside any section");
        assert_problem("[Rules a]\n", "bad.conf:1:", "unknown section");
        assert_problem("[Rule a\n", "bad.conf:1:", "does not end");
        assert_problem("[Rule a b]\n", "bad.conf:1:", "not valid");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\nResult=no\njunk\n", "bad.conf:5:", "KEY=VALUE");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\nResult=no\nAccess=everything\n", "bad.conf:5:",
                       "unknown access");
        assert_problem("[Rule a]\nAction=list\nSubject=everyone\nResult=no\nMatch=\n", "bad.conf:5:", "Match= is empty");
}

static void test_nul_byte(void) {
        static const char text[] = "[Limits]\nMaxEntries=1\0 0\n";
        Policy *p = NULL;
        char **problems = NULL;
        g_assert_cmpint(policy_parse_text("nul.conf", text, sizeof text - 1, &p, &problems), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(problems[0], "nul.conf:2:"));
        policy_problems_free(problems);
}

static void test_all_problems_reported(void) {
        Policy *p = NULL;
        char **problems = NULL;
        const char *text = "[Rule a]\nAction=fly\nSubject=everyone\nResult=maybe\n";
        g_assert_cmpint(policy_parse_text("x.conf", text, strlen(text), &p, &problems), ==, -EINVAL);
        g_assert_cmpuint(g_strv_length(problems), ==, 2);
        policy_problems_free(problems);
}

static void test_globs(void) {
        g_assert_true(policy_glob_match("camera/*", "camera/front"));
        g_assert_false(policy_glob_match("camera/*", "camera/front/raw"));
        g_assert_false(policy_glob_match("camera/*", "camera"));
        g_assert_true(policy_glob_match("camera/**", "camera/front"));
        g_assert_true(policy_glob_match("camera/**", "camera/front/raw"));
        g_assert_false(policy_glob_match("camera/**", "camera"));
        g_assert_false(policy_glob_match("camera/**", "cameras/x"));
        g_assert_true(policy_glob_match("**", "anything/at/all"));
        g_assert_true(policy_glob_match("/dev/dri/**", "/dev/dri/card0"));
        g_assert_true(policy_glob_match("/dev/video[0-9]", "/dev/video3"));
        g_assert_false(policy_glob_match("/dev/*", "/dev/dri/card0"));
        g_assert_true(policy_glob_match("*/frame", "cam/frame"));
        g_assert_true(policy_glob_match("app-*/**", "app-x/a/b"));
}

static void test_first_match_wins(void) {
        gid_t gids[] = { 44 };
        Identity alice = { .uid = 1001 }, bob = { .uid = 1002, .gids = gids, .n_gids = 1 };
        PolicyDecision d;
        Policy *p = parse_ok("[Rule deny-secret]\nAction=retrieve\nMatch=secret/**\nSubject=everyone\nResult=no\n"
                             "[Rule video]\nAction=retrieve list\nMatch=**\nSubject=gid:44\nResult=yes\n"
                             "Access=read-only\n"
                             "[Rule alice]\nAction=retrieve\nSubject=uid:1001\nResult=auth_admin_keep\n");

        policy_decide(p, POLICY_ACTION_RETRIEVE, "secret/a", &bob, &d);
        g_assert_true(d.matched);
        g_assert_cmpint(d.result, ==, POLICY_RESULT_NO);
        g_assert_cmpstr(d.rule, ==, "deny-secret");

        policy_decide(p, POLICY_ACTION_RETRIEVE, "cam/a", &bob, &d);
        g_assert_cmpint(d.result, ==, POLICY_RESULT_YES);
        g_assert_cmpint(d.access, ==, O_RDONLY);
        policy_decide(p, POLICY_ACTION_LIST, "cam/a", &bob, &d);
        g_assert_cmpstr(d.rule, ==, "video");

        policy_decide(p, POLICY_ACTION_RETRIEVE, "cam/a", &alice, &d);
        g_assert_cmpint(d.result, ==, POLICY_RESULT_AUTH_ADMIN_KEEP);
        g_assert_cmpint(d.access, ==, POLICY_ACCESS_ANY);

        policy_decide(p, POLICY_ACTION_DEPOSIT, "cam/a", &alice, &d);
        g_assert_false(d.matched);
        policy_decide(NULL, POLICY_ACTION_DEPOSIT, "cam/a", &alice, &d);
        g_assert_false(d.matched);
        policy_free(p);
}

static void test_subject_kinds(void) {
        gid_t gids[] = { 0 };
        Identity root_grp = { .uid = 5000, .gids = gids, .n_gids = 1 }, labelled = { .uid = 6000, .label = "lbl_t" };
        Identity nobody_id = { .uid = 7000 };
        PolicyDecision d;
        Policy *p = parse_ok("[Rule u]\nAction=deposit\nSubject=user:root uid:4000\nResult=yes\n"
                             "[Rule g]\nAction=deposit\nSubject=group:root\nResult=auth_self\n"
                             "[Rule l]\nAction=deposit\nSubject=label:lbl_t\nResult=auth_self_keep\n"
                             "[Rule e]\nAction=deposit\nSubject=everyone\nResult=auth_admin\n");
        Identity root_id = { .uid = 0 }, uid4000 = { .uid = 4000 };

        policy_decide(p, POLICY_ACTION_DEPOSIT, "x", &root_id, &d);
        g_assert_cmpstr(d.rule, ==, "u");
        policy_decide(p, POLICY_ACTION_DEPOSIT, "x", &uid4000, &d);
        g_assert_cmpstr(d.rule, ==, "u");
        policy_decide(p, POLICY_ACTION_DEPOSIT, "x", &root_grp, &d);
        g_assert_cmpstr(d.rule, ==, "g");
        g_assert_cmpint(d.result, ==, POLICY_RESULT_AUTH_SELF);
        policy_decide(p, POLICY_ACTION_DEPOSIT, "x", &labelled, &d);
        g_assert_cmpstr(d.rule, ==, "l");
        g_assert_cmpint(d.result, ==, POLICY_RESULT_AUTH_SELF_KEEP);
        policy_decide(p, POLICY_ACTION_DEPOSIT, "x", &nobody_id, &d);
        g_assert_cmpstr(d.rule, ==, "e");
        g_assert_cmpint(d.result, ==, POLICY_RESULT_AUTH_ADMIN);
        policy_free(p);
}

static void write_file(const char *dir, const char *name, const char *text) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void test_dirs_masking_and_order(void) {
        g_autofree char *root = g_dir_make_tmp("policy-XXXXXX", NULL);
        g_autofree char *admin = g_build_filename(root, "etc", NULL);
        g_autofree char *vendor = g_build_filename(root, "usr", NULL);
        char *dirs[] = { admin, vendor, NULL };
        Identity id = { .uid = 1234 };
        PolicyDecision d;
        Policy *p = NULL;
        char **problems = NULL;

        g_assert_cmpint(g_mkdir(admin, 0755), ==, 0);
        g_assert_cmpint(g_mkdir(vendor, 0755), ==, 0);
        /* The vendor's 50 is masked by the admin's 50; 10 sorts first. */
        write_file(vendor, "50-base.conf", "[Rule vendor50]\nAction=deposit\nSubject=everyone\nResult=no\n");
        write_file(admin, "50-base.conf", "[Rule admin50]\nAction=deposit\nSubject=everyone\nResult=yes\n"
                                          "[Limits]\nMaxEntries=7\n");
        write_file(vendor, "10-first.conf", "[Rule vendor10]\nAction=deposit\nMatch=early/*\nSubject=everyone\n"
                                            "Result=no\n[Limits]\nMaxEntries=3\nMaxEntriesPerUser=2\n");
        write_file(vendor, "README", "not a conf file [");
        write_file(admin, "90-broken.conf.disabled", "garbage");

        g_assert_cmpint(policy_load(dirs, &p, &problems), ==, 0);
        g_assert_cmpuint(p->n_rules, ==, 2);
        g_assert_cmpstr(p->rules[0].name, ==, "vendor10");
        g_assert_cmpstr(p->rules[1].name, ==, "admin50");
        g_assert_cmpuint(p->limits.max_entries, ==, 7); /* later file wins */
        g_assert_cmpuint(p->limits.max_entries_per_user, ==, 2);
        policy_decide(p, POLICY_ACTION_DEPOSIT, "early/x", &id, &d);
        g_assert_cmpstr(d.rule, ==, "vendor10");
        policy_decide(p, POLICY_ACTION_DEPOSIT, "late/x", &id, &d);
        g_assert_cmpstr(d.rule, ==, "admin50");
        policy_free(p);

        /* A broken file is reported with its full path and line. */
        write_file(admin, "60-bad.conf", "[Rule x]\nAction=retrieve\nSubject=everyone\nResult=perhaps\n");
        p = NULL;
        g_assert_cmpint(policy_load(dirs, &p, &problems), ==, -EINVAL);
        g_assert_null(p);
        g_autofree char *expect = g_strdup_printf("%s/60-bad.conf:4:", admin);
        g_assert_true(g_str_has_prefix(problems[0], expect));
        policy_problems_free(problems);

        /* Missing directories are fine. */
        char *none[] = { "/nonexistent/fdbroker/policy.d", NULL };
        g_assert_cmpint(policy_load(none, &p, &problems), ==, 0);
        g_assert_cmpuint(p->n_rules, ==, 0);
        policy_free(p);

        /* Leave nothing behind in $TMPDIR. */
        const char *const made[] = { "etc/50-base.conf", "etc/60-bad.conf", "etc/90-broken.conf.disabled",
                                     "usr/10-first.conf", "usr/50-base.conf", "usr/README", "etc", "usr" };
        for (size_t i = 0; i < G_N_ELEMENTS(made); i++) {
                g_autofree char *path = g_build_filename(root, made[i], NULL);
                g_assert_cmpint(g_remove(path), ==, 0);
        }
        g_assert_cmpint(g_rmdir(root), ==, 0);
}

static void test_sizes(void) {
        uint64_t v;
        g_assert_cmpint(policy_parse_size("1G", &v), ==, 0);
        g_assert_cmpuint(v, ==, 1ULL << 30);
        g_assert_cmpint(policy_parse_size("64K", &v), ==, 0);
        g_assert_cmpuint(v, ==, 65536);
        g_assert_cmpint(policy_parse_size("4096", &v), ==, 0);
        g_assert_cmpuint(v, ==, 4096);
        g_assert_cmpint(policy_parse_size("2T", &v), ==, 0);
        g_assert_cmpint(policy_parse_size("1GB", &v), ==, -EINVAL);
        g_assert_cmpint(policy_parse_size("-1", &v), ==, -EINVAL);
        g_assert_cmpint(policy_parse_size("99999999999999999999", &v), ==, -ERANGE);
        g_assert_cmpint(policy_parse_size("17179869184G", &v), ==, -ERANGE);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/policy/every-key", test_every_key);
        g_test_add_func("/policy/errors-with-line-numbers", test_errors_with_lines);
        g_test_add_func("/policy/nul-byte", test_nul_byte);
        g_test_add_func("/policy/all-problems-reported", test_all_problems_reported);
        g_test_add_func("/policy/globs", test_globs);
        g_test_add_func("/policy/first-match-wins", test_first_match_wins);
        g_test_add_func("/policy/subject-kinds", test_subject_kinds);
        g_test_add_func("/policy/dirs-masking-and-order", test_dirs_masking_and_order);
        g_test_add_func("/policy/sizes", test_sizes);
        return g_test_run();
}
