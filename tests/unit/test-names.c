/* Unit tests of entry name validation (service/names.c). */
#include <glib.h>
#include <string.h>

#include "names.h"

static void test_valid(void) {
        static const char *const ok[] = { "a", "camera/frame", "a.b:c@d-e_f", "x/y/z", "A9", "a..b", ".a", "a./b" };
        for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
                const char *why = NULL;
                g_assert_true(name_is_valid(ok[i], &why));
                g_assert_null(why);
        }
}

static void test_invalid(void) {
        static const char *const bad[] = { "", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a b", "a*b",
                                            "caf\xc3\xa9", "a\\b", "a\nb", "/" };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                const char *why = NULL;
                g_assert_false(name_is_valid(bad[i], &why));
                g_assert_nonnull(why);
        }
}

static void test_length(void) {
        char name[300];
        const char *why = NULL;

        memset(name, 'x', sizeof name);
        name[255] = '\0';
        g_assert_true(name_is_valid(name, NULL));
        name[255] = 'x';
        name[256] = '\0';
        g_assert_false(name_is_valid(name, &why));
        g_assert_nonnull(strstr(why, "255"));
}

static void test_prefix(void) {
        g_assert_true(name_has_prefix("camera/a", "camera/"));
        g_assert_true(name_has_prefix("camera/a", ""));
        g_assert_false(name_has_prefix("cam", "camera"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/names/valid", test_valid);
        g_test_add_func("/names/invalid", test_invalid);
        g_test_add_func("/names/length-limit", test_length);
        g_test_add_func("/names/prefix", test_prefix);
        return g_test_run();
}
