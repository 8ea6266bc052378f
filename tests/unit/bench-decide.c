/* bench-decide: what a decision costs with a snapshot, and without one.
 *
 *   meson test -C build --benchmark bench-decide -v      (or run it: N rules as argv[1])
 *
 * Builds a policy of N retrieve rules for other uids plus one for the
 * caller, then times policy_snapshot_new() and decide_retrieve() with a
 * snapshot of that policy (the walk over the caller's own rules) and with a
 * stale one (every rule's glob and subjects, as the broker did before
 * snapshots, and does after a reload until the peer's next call). Prints
 * nanoseconds; asserts only that both walks agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"

static double now_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

static int run(int n_rules) {
        size_t cap = (size_t) n_rules * 128 + 256, len = 0;
        char *text = malloc(cap), **problems = NULL;
        gid_t gids[] = { 1001, 44 };
        Identity id = { .uid = 1001, .gids = gids, .n_gids = 2 };
        DecideEntry e = { .name = "cam/1", .owner_uid = 1000 };
        PolicySnapshot *fresh = NULL, *stale = NULL;
        Policy *p = NULL;
        const int loops = 100000;
        volatile int sink = 0;
        double t0, t_snap, t_fresh, t_stale;

        if (!text)
                return 1;
        for (int i = 0; i < n_rules; i++)
                len += (size_t) snprintf(text + len, cap - len,
                                         "[Rule r%d]\nAction=retrieve\nMatch=other%d/*\nSubject=uid:%d\n"
                                         "Result=yes\n",
                                         i, i, 2000 + i);
        len += (size_t) snprintf(text + len, cap - len,
                                 "[Rule mine]\nAction=retrieve\nMatch=cam/*\nSubject=uid:1001\nResult=yes\n");
        if (policy_parse_text("bench.conf", text, len, &p, &problems) < 0) {
                fprintf(stderr, "bench-decide: the generated policy does not parse\n");
                return 1;
        }
        free(text);

        t0 = now_ns();
        for (int i = 0; i < 1000; i++) {
                if (policy_snapshot_new(p, &id, &fresh) < 0)
                        return 1;
                fresh = policy_snapshot_free(fresh);
        }
        t_snap = (now_ns() - t0) / 1000;
        if (policy_snapshot_new(p, &id, &fresh) < 0 || policy_snapshot_new(NULL, &id, &stale) < 0)
                return 1;
        if (decide_retrieve(p, fresh, &e).kind != DECISION_ALLOW ||
            decide_retrieve(p, stale, &e).kind != DECISION_ALLOW) {
                fprintf(stderr, "bench-decide: the walks disagree\n");
                return 1;
        }
        t0 = now_ns();
        for (int i = 0; i < loops; i++)
                sink += decide_retrieve(p, fresh, &e).kind;
        t_fresh = (now_ns() - t0) / loops;
        t0 = now_ns();
        for (int i = 0; i < loops / 10; i++)
                sink += decide_retrieve(p, stale, &e).kind;
        t_stale = (now_ns() - t0) / (loops / 10);
        if (sink != loops * 11 / 10 * DECISION_ALLOW) /* every answer was allow */
                return 1;
        printf("%6d rules: snapshot built in %8.0f ns (keeps %zu); decide_retrieve %6.0f ns with it, %8.0f ns "
               "walking every rule\n",
               n_rules + 1, t_snap, fresh->n_rules, t_fresh, t_stale);
        policy_snapshot_free(fresh);
        policy_snapshot_free(stale);
        policy_free(p);
        return 0;
}

int main(int argc, char *argv[]) {
        static const int sizes[] = { 0, 10, 100, 1000, 10000 };

        if (argc > 1)
                return run(atoi(argv[1]));
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                if (run(sizes[i]) != 0)
                        return 1;
        return 0;
}
