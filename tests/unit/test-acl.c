/* Unit tests of entry ACL subjects (policy/acl.c). */
#include <errno.h>
#include <glib.h>

#include "acl.h"

static void test_parse(void) {
        Subject s;
        g_assert_cmpint(acl_subject_parse("uid:1001", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_UID);
        g_assert_cmpuint(s.uid, ==, 1001);
        g_assert_cmpint(acl_subject_parse("gid:44", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_GID);
        g_assert_cmpint(acl_subject_parse("user:root", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_UID);
        g_assert_cmpuint(s.uid, ==, 0);
        g_assert_cmpint(acl_subject_parse("group:root", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_GID);
        g_assert_cmpuint(s.gid, ==, 0);
        g_assert_cmpint(acl_subject_parse("everyone", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_EVERYONE);
        g_assert_cmpint(acl_subject_parse("label:system_u:object_r:x", &s), ==, 0);
        g_assert_cmpint(s.kind, ==, SUBJECT_LABEL);
        g_assert_cmpstr(s.label, ==, "system_u:object_r:x");
        acl_subject_done(&s);
}

static void test_parse_errors(void) {
        static const char *const bad[] = { "", "uid:", "uid:abc", "uid:-1", "uid:4294967295", "uid:1x", "gid:",
                                           "bogus:x", "user:", "group:", "label:", "Everyone", "uid: 1" };
        Subject s;
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
                g_assert_cmpint(acl_subject_parse(bad[i], &s), ==, -EINVAL);
        g_assert_cmpint(acl_subject_parse("user:no-such-user-fdbroker-test", &s), ==, -ENOENT);
        g_assert_cmpint(acl_subject_parse("group:no-such-group-fdbroker-test", &s), ==, -ENOENT);
}

static void test_match(void) {
        gid_t gids[] = { 10, 44 };
        Identity alice = { .uid = 1001, .gids = gids, .n_gids = 2, .label = "unconfined" };
        Identity bob = { .uid = 1002 };
        Subject s[3];

        g_assert_cmpint(acl_subject_parse("uid:1001", &s[0]), ==, 0);
        g_assert_cmpint(acl_subject_parse("gid:44", &s[1]), ==, 0);
        g_assert_cmpint(acl_subject_parse("label:unconfined", &s[2]), ==, 0);
        g_assert_true(acl_subject_matches(&s[0], &alice));
        g_assert_false(acl_subject_matches(&s[0], &bob));
        g_assert_true(acl_subject_matches(&s[1], &alice));
        g_assert_false(acl_subject_matches(&s[1], &bob));
        g_assert_true(acl_subject_matches(&s[2], &alice));
        g_assert_false(acl_subject_matches(&s[2], &bob)); /* no label at all */
        g_assert_false(acl_matches(s, 3, &bob));
        g_assert_true(acl_matches(s, 3, &alice));
        g_assert_false(acl_matches(NULL, 0, &alice));
        acl_subject_done(&s[2]);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/acl/parse", test_parse);
        g_test_add_func("/acl/parse-errors", test_parse_errors);
        g_test_add_func("/acl/match", test_match);
        return g_test_run();
}
