/* fuzz-policy.c: libFuzzer target for the admin rule parser (policy.c).
 *
 * Feeds arbitrary bytes to policy_parse_text() as the text of one file and
 * checks what the parser promises: either a policy and no problems, or
 * problems and no policy, each problem "FILE:LINE: message" with a line
 * inside the text. A parsed policy is then asked a few decisions, so that
 * the globs and subjects it kept are used, and everything is freed (ASan's
 * leak check catches what is not). Built with -fsanitize=fuzzer,address
 * when meson is configured with clang and -Dfuzz=true; fuzz-driver.c runs
 * the same function over the seed corpus in every build. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define FUZZ_PATH "fuzz.conf"
#define FUZZ_INPUT_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail) {
        fprintf(stderr, "fuzz-policy: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
        abort();
}

static unsigned count_lines(const uint8_t *data, size_t size) {
        unsigned n = size > 0 ? 1 : 0;
        for (size_t i = 0; i + 1 < size; i++)
                n += data[i] == '\n';
        return n;
}

static void check_problem(const char *problem, unsigned max_line) {
        const char *p = problem;
        unsigned long line;
        char *end;

        if (strncmp(p, FUZZ_PATH ":", strlen(FUZZ_PATH ":")) != 0)
                fail("a problem does not start with the file name", problem);
        p += strlen(FUZZ_PATH ":");
        if (*p < '0' || *p > '9')
                fail("a problem has no line number", problem);
        line = strtoul(p, &end, 10);
        if (line == 0 || line > max_line)
                fail("a problem's line is outside the text", problem);
        if (end[0] != ':' || end[1] != ' ' || end[2] == '\0')
                fail("a problem is not FILE:LINE: message", problem);
}

static void exercise(const Policy *p) {
        static const gid_t gids[] = { 0, 44, 1000 };
        const Identity ids[] = {
                { .uid = 0 },
                { .uid = 1000, .gids = gids, .n_gids = 3, .label = "system_u:system_r:camera_t:s0" },
                { .uid = 65534 },
        };
        const char *names[] = { "camera/front", "camera/a/b", "/dev/video0", "x" };
        PolicyDecision d;

        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];
                if (!r->name || !r->file || (r->n_subjects > 0 && !r->subjects))
                        fail("a rule is missing its name, file or subjects", r->name);
                if (r->match)
                        (void) policy_glob_match(r->match, r->match);
        }
        for (int a = 0; a < _POLICY_ACTION_MAX; a++)
                for (size_t n = 0; n < sizeof names / sizeof names[0]; n++)
                        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
                                policy_decide(p, (PolicyAction) a, names[n], &ids[k], &d);
                                if (d.matched && (!d.rule || d.result < 0 || d.result >= _POLICY_RESULT_MAX))
                                        fail("a decision names no rule or no valid result", names[n]);
                        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Policy *p = NULL;
        char **problems = NULL;
        int r;

        /* The loader reads at most 1 MiB per file; past 64 KiB the fuzzer
         * only spends time on longer copies of the same lines. */
        if (size > FUZZ_INPUT_MAX)
                return 0;

        r = policy_parse_text(FUZZ_PATH, (const char *) data, size, &p, &problems);
        if (r == 0) {
                if (!p || problems)
                        fail("success without a policy, or with problems", NULL);
                exercise(p);
                policy_free(p);
        } else if (r == -EINVAL) {
                unsigned max_line = count_lines(data, size);
                if (p || !problems || !problems[0])
                        fail("-EINVAL with a policy, or without problems", NULL);
                for (char **s = problems; *s; s++)
                        check_problem(*s, max_line);
                policy_problems_free(problems);
        } else if (r != -ENOMEM)
                fail("unexpected return value", strerror(-r));
        return 0;
}
