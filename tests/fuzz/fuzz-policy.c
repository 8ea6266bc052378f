/* fuzz-policy.c: libFuzzer target for the admin rule parser (policy.c).
 *
 * Feeds arbitrary bytes to policy_parse_text() as the text of one file and
 * checks what the parser promises: either a policy and no problems, or
 * problems and no policy, each problem "FILE:LINE: message" with a line
 * inside the text. A parsed policy is then asked a few decisions, so that
 * the globs and subjects it kept are used: policy_decide() for the rule it
 * picks, and the decision engine (decide.c) for every question the broker
 * asks, checking what it promises (a snapshot built against the rules and a
 * stale one agree; the owner and root are never told an entry is hidden;
 * what List shows is visible; a hidden answer names no rule). Everything is
 * freed (ASan's leak check catches what is not). Built with -fsanitize=fuzzer,address
 * when meson is configured with clang and -Dfuzz=true; fuzz-driver.c runs
 * the same function over the seed corpus in every build. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
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

static bool decision_eq(const Decision *a, const Decision *b) {
        return a->kind == b->kind && a->action == b->action && a->access == b->access &&
               a->rule == b->rule && (a->kind != DECISION_ASK_POLKIT ||
                                      (a->polkit_result == b->polkit_result && a->refusal_hidden == b->refusal_hidden));
}

static void check_decision(const Decision *d, const char *what) {
        if (d->kind < DECISION_ALLOW || d->kind > DECISION_ASK_POLKIT)
                fail("a decision of no known kind", what);
        if (d->access != POLICY_ACCESS_ANY && d->access != O_RDONLY && d->access != O_WRONLY && d->access != O_RDWR)
                fail("a decision with an access cap that is no access mode", what);
        if (d->kind == DECISION_HIDDEN && d->rule)
                fail("a hidden answer names a rule", what);
        if (d->kind == DECISION_DENY && !d->rule)
                fail("a denial by no rule", what);
        if (d->kind == DECISION_ASK_POLKIT &&
            (d->polkit_result < POLICY_RESULT_AUTH_SELF || d->polkit_result >= _POLICY_RESULT_MAX))
                fail("polkit asked for a result that is no auth_*", what);
}

/* The engine's questions for one caller about one name, with a snapshot
 * fresh from p and one built before it (as after a reload). */
static void exercise_engine(const Policy *p, const Identity *id, const char *name) {
        static const Subject acl[] = { { .kind = SUBJECT_GID, .gid = 44 }, { .kind = SUBJECT_UID, .uid = 65534 } };
        PolicySnapshot *fresh = NULL, *stale = NULL;
        const uid_t owners[] = { id->uid, 1000, 4242 };

        if (policy_snapshot_new(p, id, &fresh) < 0 || policy_snapshot_new(NULL, id, &stale) < 0)
                goto out; /* out of memory is not a finding */
        for (size_t o = 0; o < sizeof owners / sizeof owners[0]; o++)
                for (size_t n_acl = 0; n_acl <= 2; n_acl += 2) {
                        DecideEntry e = { .name = name, .owner_uid = owners[o], .allow = acl, .n_allow = n_acl };
                        Decision a = decide_retrieve(p, fresh, &e), b = decide_retrieve(p, stale, &e);
                        bool mine = id->uid == 0 || id->uid == owners[o];

                        check_decision(&a, name);
                        if (!decision_eq(&a, &b))
                                fail("a stale snapshot decides retrieve otherwise", name);
                        if (mine && (a.kind == DECISION_HIDDEN || a.refusal_hidden))
                                fail("the owner or root is told their entry is hidden", name);
                        a = decide_remove(p, fresh, &e);
                        b = decide_remove(p, stale, &e);
                        check_decision(&a, name);
                        if (!decision_eq(&a, &b))
                                fail("a stale snapshot decides remove otherwise", name);
                        if (mine && (a.kind == DECISION_HIDDEN || a.refusal_hidden))
                                fail("the owner or root is told their entry is hidden from removal", name);
                        if (decide_listed(p, fresh, &e) && !decide_visible(p, fresh, &e))
                                fail("List shows an entry its caller may not see", name);
                        if (decide_visible(p, fresh, &e) != decide_visible(p, stale, &e) ||
                            decide_listed(p, fresh, &e) != decide_listed(p, stale, &e))
                                fail("a stale snapshot sees otherwise", name);
                }
        for (int a = 0; a < _POLICY_ACTION_MAX; a++) {
                Decision x = decide_action(p, fresh, (PolicyAction) a, name);
                Decision y = decide_action(p, stale, (PolicyAction) a, name);
                check_decision(&x, name);
                if (!decision_eq(&x, &y))
                        fail("a stale snapshot decides an action otherwise", name);
        }
        if (policy_snapshot_refresh(stale, p) == 0 && stale->n_rules != fresh->n_rules)
                fail("a refreshed snapshot keeps other rules than a fresh one", name);
out:
        policy_snapshot_free(fresh);
        policy_snapshot_free(stale);
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
        for (size_t n = 0; n < sizeof names / sizeof names[0]; n++)
                for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
                        exercise_engine(p, &ids[k], names[n]);
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
