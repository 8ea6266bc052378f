/* fuzz-policy-driver.c: the policy fuzz target over files, without libFuzzer.
 *
 * Each argument is a file or a directory of files (not recursive). Every
 * input is one TAP test: it runs through LLVMFuzzerTestOneInput() (whose
 * broken invariants abort, which meson reports as a failure), and inputs
 * named valid-* or invalid-* must also parse without or with problems. This
 * is how the seed corpus runs in every build, gcc included; with
 * -Db_sanitize=address it also catches leaks. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_tests, n_failed;

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_size) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL;
        size_t size = 0, cap = 0;

        if (!f)
                return -errno;
        for (;;) {
                size_t k;
                if (size == cap) {
                        uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                k = fread(buf + size, 1, cap - size, f);
                size += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        *ret = buf;
        *ret_size = size;
        return 0;
}

/* What the file's name says it should parse to: 0, -EINVAL, or 1 (no
 * expectation). */
static int expected_result(const char *path) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strncmp(base, "valid-", 6) == 0)
                return 0;
        if (strncmp(base, "invalid-", 8) == 0)
                return -EINVAL;
        return 1;
}

static void run_file(const char *path) {
        int expected = expected_result(path);
        Policy *p = NULL;
        char **problems = NULL;
        uint8_t *buf = NULL;
        size_t size = 0;
        int r;

        r = read_all(path, &buf, &size);
        if (r < 0) {
                printf("not ok %u - %s: %s\n", ++n_tests, path, strerror(-r));
                n_failed++;
                return;
        }
        (void) LLVMFuzzerTestOneInput(buf, size);

        r = policy_parse_text(path, (const char *) buf, size, &p, &problems);
        free(buf);
        if (expected != 1 && r != expected) {
                printf("not ok %u - %s: parses to %d, expected %d\n", ++n_tests, path, r, expected);
                for (char **s = problems; s && *s; s++)
                        printf("# %s\n", *s);
                n_failed++;
        } else
                printf("ok %u - %s (%zu bytes, %s)\n", ++n_tests, path, size,
                       r == 0 ? "parses" : r == -EINVAL ? "has problems" : "error");
        policy_free(p);
        policy_problems_free(problems);
        fflush(stdout);
}

static void run_path(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;

        if (!d) {
                run_file(path);
                return;
        }
        while ((de = readdir(d))) {
                char **nv;
                if (de->d_name[0] == '.')
                        continue;
                nv = realloc(names, (n + 1) * sizeof *nv);
                if (!nv)
                        break;
                names = nv;
                if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0)
                        break;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof *names, compare_names);
        for (size_t i = 0; i < n; i++) {
                run_file(names[i]);
                free(names[i]);
        }
        free(names);
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                run_path(argv[i]);
        printf("1..%u\n", n_tests);
        return n_tests == 0 || n_failed > 0 ? 1 : 0;
}
