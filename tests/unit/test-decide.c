/* Unit tests of the decision engine (policy/decide.c), without a bus.
 *
 * One table, read like SPEC §2: each row is a caller, an action, an entry
 * (or a name or path), the admin rules in force, and the answer expected,
 * written the way decision_format() prints it:
 *
 *   allow [read-only|write-only|read-write] [rule=NAME]
 *   deny rule=NAME                         AccessDenied
 *   hidden                                 NotFound
 *   polkit org.fdbroker.ACTION RESULT [refusal=not-found] [CAP] [rule=NAME]
 *   shown | not-shown                      List and Watch
 *
 * Every row runs twice: with a snapshot built against the rules (the
 * pre-matched walk) and with a stale one built before them (the walk that
 * matches subjects again, as after a reload); both must agree. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>

#include "decide.h"

#define ALICE "uid=1000 gids=1000,44"           /* in group 44 ("video") */
#define BOB "uid=1001 gids=1001"
#define CAROL "uid=1002 gids=1002 label=system_u:system_r:camera_t:s0"
#define ROOT "uid=0 gids=0"

typedef struct Case {
        const char *path;
        const char *caller;  /* uid=N [gids=N,N] [label=L] */
        const char *action;  /* a PolicyAction, or "visible", or "listed" */
        const char *target;  /* NAME [owner=N] [allow=SUBJECT,SUBJECT] (open-path: the path) */
        const char *rules;   /* policy text, NULL: none */
        const char *expect;
} Case;

/* Rules used by several rows. */
#define RULE(name, action, match, subject, result) \
        "[Rule " name "]\nAction=" action "\nMatch=" match "\nSubject=" subject "\nResult=" result "\n"
#define RULE_CAP(name, action, match, subject, result, access) \
        RULE(name, action, match, subject, result) "Access=" access "\n"

static const Case cases[] = {
        /* ---- deposit / create-memory: allowed unless a rule says otherwise */
        { "/decide/deposit/no-rule-allowed", BOB, "deposit", "x", NULL, "allow" },
        { "/decide/deposit/rule-no-denied", BOB, "deposit", "res/a", RULE("res", "deposit", "res/**", "everyone", "no"),
          "deny rule=res" },
        { "/decide/deposit/rule-no-binds-root", ROOT, "deposit", "res/a",
          RULE("res", "deposit", "res/**", "everyone", "no"), "deny rule=res" },
        { "/decide/deposit/rule-other-name-no-match", BOB, "deposit", "free/a",
          RULE("res", "deposit", "res/**", "everyone", "no"), "allow" },
        { "/decide/deposit/rule-other-subject-no-match", BOB, "deposit", "res/a",
          RULE("res", "deposit", "res/**", "uid:1000", "no"), "allow" },
        { "/decide/deposit/first-match-wins-owner-of-prefix", ALICE, "deposit", "res/a",
          RULE("res-alice", "deposit", "res/**", "uid:1000", "yes")
            RULE("res-others", "deposit", "res/**", "everyone", "no"),
          "allow rule=res-alice" },
        { "/decide/deposit/first-match-wins-others", BOB, "deposit", "res/a",
          RULE("res-alice", "deposit", "res/**", "uid:1000", "yes")
            RULE("res-others", "deposit", "res/**", "everyone", "no"),
          "deny rule=res-others" },
        { "/decide/deposit/rule-cap-read-only", BOB, "deposit", "keepro/a",
          RULE_CAP("ro", "deposit", "keepro/*", "everyone", "yes", "read-only"), "allow read-only rule=ro" },
        { "/decide/deposit/rule-auth-self-asks-polkit", BOB, "deposit", "a",
          RULE("ask", "deposit", "**", "everyone", "auth_self"), "polkit org.fdbroker.deposit auth_self rule=ask" },
        { "/decide/deposit/create-memory-rule-not-deposit", BOB, "deposit", "m",
          RULE("cm", "create-memory", "**", "everyone", "no"), "allow" },
        { "/decide/create-memory/no-rule-allowed", BOB, "create-memory", "m", NULL, "allow" },
        { "/decide/create-memory/rule-no-denied", BOB, "create-memory", "m",
          RULE("cm", "create-memory", "**", "everyone", "no"), "deny rule=cm" },
        { "/decide/create-memory/rule-for-both-actions", BOB, "create-memory", "res/m",
          RULE("res", "deposit create-memory", "res/**", "gid:1001", "auth_admin"),
          "polkit org.fdbroker.create-memory auth_admin rule=res" },

        /* ---- retrieve: the entry ACL, unless a rule decides first */
        { "/decide/retrieve/owner-allowed", ALICE, "retrieve", "e owner=1000", NULL, "allow" },
        { "/decide/retrieve/root-allowed", ROOT, "retrieve", "e owner=1000", NULL, "allow" },
        { "/decide/retrieve/stranger-hidden", BOB, "retrieve", "e owner=1000", NULL, "hidden" },
        { "/decide/retrieve/acl-uid-allowed", BOB, "retrieve", "e owner=1000 allow=uid:1001", NULL, "allow" },
        { "/decide/retrieve/acl-other-uid-hidden", BOB, "retrieve", "e owner=1000 allow=uid:1002", NULL, "hidden" },
        { "/decide/retrieve/acl-group-member-allowed", ALICE, "retrieve", "e owner=1001 allow=gid:44", NULL, "allow" },
        { "/decide/retrieve/acl-group-non-member-hidden", CAROL, "retrieve", "e owner=1001 allow=gid:44", NULL,
          "hidden" },
        { "/decide/retrieve/acl-label-allowed", CAROL, "retrieve",
          "e owner=1000 allow=label:system_u:system_r:camera_t:s0", NULL, "allow" },
        { "/decide/retrieve/acl-other-label-hidden", CAROL, "retrieve", "e owner=1000 allow=label:other_t", NULL,
          "hidden" },
        { "/decide/retrieve/acl-label-unlabelled-caller-hidden", BOB, "retrieve",
          "e owner=1000 allow=label:system_u:system_r:camera_t:s0", NULL, "hidden" },
        { "/decide/retrieve/acl-everyone-allowed", BOB, "retrieve", "e owner=1000 allow=everyone", NULL, "allow" },
        { "/decide/retrieve/acl-any-subject-of-several", BOB, "retrieve", "e owner=1000 allow=uid:7,gid:1001", NULL,
          "allow" },
        { "/decide/retrieve/rule-yes-grants-stranger", BOB, "retrieve", "cam/1 owner=1000",
          RULE("cam", "retrieve", "cam/*", "uid:1001", "yes"), "allow rule=cam" },
        { "/decide/retrieve/rule-by-group", ALICE, "retrieve", "vid/1 owner=1001",
          RULE("vid", "retrieve", "vid/*", "gid:44", "yes"), "allow rule=vid" },
        { "/decide/retrieve/rule-by-label", CAROL, "retrieve", "cam/1 owner=1000",
          RULE("lab", "retrieve", "cam/*", "label:system_u:system_r:camera_t:s0", "yes"), "allow rule=lab" },
        { "/decide/retrieve/rule-glob-one-component", BOB, "retrieve", "cam/x/1 owner=1000",
          RULE("cam", "retrieve", "cam/*", "uid:1001", "yes"), "hidden" },
        { "/decide/retrieve/rule-glob-double-star-below", BOB, "retrieve", "cam/x/1 owner=1000",
          RULE("cam", "retrieve", "cam/**", "uid:1001", "yes"), "allow rule=cam" },
        { "/decide/retrieve/rule-cap-read-only", BOB, "retrieve", "ro/1 owner=1000",
          RULE_CAP("ro", "retrieve", "ro/*", "everyone", "yes", "read-only"), "allow read-only rule=ro" },
        { "/decide/retrieve/rule-cap-applies-to-owner", ALICE, "retrieve", "ro/1 owner=1000",
          RULE_CAP("ro", "retrieve", "ro/*", "everyone", "yes", "read-only"), "allow read-only rule=ro" },
        { "/decide/retrieve/rule-cap-write-only", BOB, "retrieve", "wo/1 owner=1000",
          RULE_CAP("wo", "retrieve", "wo/*", "everyone", "yes", "write-only"), "allow write-only rule=wo" },
        { "/decide/retrieve/rule-no-denies-acl-subject", BOB, "retrieve", "deny/1 owner=1000 allow=uid:1001",
          RULE("deny", "retrieve", "deny/*", "uid:1001 uid:1002", "no"), "deny rule=deny" },
        { "/decide/retrieve/rule-no-hides-from-stranger", CAROL, "retrieve", "deny/1 owner=1000 allow=uid:1001",
          RULE("deny", "retrieve", "deny/*", "uid:1001 uid:1002", "no"), "hidden" },
        { "/decide/retrieve/rule-no-denies-owner", ALICE, "retrieve", "deny/1 owner=1000",
          RULE("deny", "retrieve", "deny/*", "everyone", "no"), "deny rule=deny" },
        { "/decide/retrieve/rule-no-denies-root", ROOT, "retrieve", "deny/1 owner=1000",
          RULE("deny", "retrieve", "deny/*", "everyone", "no"), "deny rule=deny" },
        { "/decide/retrieve/rule-beats-acl-everyone", BOB, "retrieve", "deny/1 owner=1000 allow=everyone",
          RULE("deny", "retrieve", "deny/*", "uid:1001", "no"), "deny rule=deny" },
        { "/decide/retrieve/rule-not-naming-caller-leaves-acl", ALICE, "retrieve", "deny/1 owner=1000",
          RULE("deny", "retrieve", "deny/*", "uid:1001 uid:1002", "no"), "allow" },
        { "/decide/retrieve/rule-auth-stranger-refusal-hidden", BOB, "retrieve", "auth/1 owner=1000",
          RULE("auth", "retrieve", "auth/*", "uid:1001", "auth_admin_keep"),
          "polkit org.fdbroker.retrieve auth_admin_keep refusal=not-found rule=auth" },
        { "/decide/retrieve/rule-auth-acl-subject-refusal-denied", BOB, "retrieve", "auth/2 owner=1000 allow=uid:1001",
          RULE("auth", "retrieve", "auth/*", "uid:1001", "auth_admin_keep"),
          "polkit org.fdbroker.retrieve auth_admin_keep rule=auth" },
        { "/decide/retrieve/rule-auth-self-keep", BOB, "retrieve", "auth/1 owner=1001",
          RULE("auth", "retrieve", "auth/*", "everyone", "auth_self_keep"),
          "polkit org.fdbroker.retrieve auth_self_keep rule=auth" },
        { "/decide/retrieve/rule-auth-cap-applies-after-polkit", BOB, "retrieve", "auth/1 owner=1000 allow=uid:1001",
          RULE_CAP("auth", "retrieve", "auth/*", "everyone", "auth_self", "read-only"),
          "polkit org.fdbroker.retrieve auth_self read-only rule=auth" },
        { "/decide/retrieve/first-match-wins", BOB, "retrieve", "cam/1 owner=1000",
          RULE("no-first", "retrieve", "cam/*", "everyone", "no")
            RULE("yes-later", "retrieve", "cam/*", "uid:1001", "yes"),
          "hidden" },
        { "/decide/retrieve/first-match-skips-other-subjects", BOB, "retrieve", "cam/1 owner=1000",
          RULE("carol-no", "retrieve", "cam/*", "uid:1002", "no")
            RULE("bob-yes", "retrieve", "cam/*", "uid:1001", "yes"),
          "allow rule=bob-yes" },
        { "/decide/retrieve/rule-of-other-action-ignored", BOB, "retrieve", "cam/1 owner=1000",
          RULE("list", "list deposit remove", "cam/*", "everyone", "yes"), "hidden" },
        { "/decide/retrieve/rule-without-match-matches-all", BOB, "retrieve", "any/thing owner=1000",
          "[Rule all]\nAction=retrieve\nSubject=everyone\nResult=yes\n", "allow rule=all" },

        /* ---- remove: remove rule, owner/root, manage rule, polkit's manage */
        { "/decide/remove/owner-allowed", ALICE, "remove", "e owner=1000", NULL, "allow" },
        { "/decide/remove/root-allowed", ROOT, "remove", "e owner=1000", NULL, "allow" },
        { "/decide/remove/stranger-hidden-no-polkit", BOB, "remove", "e owner=1000", NULL, "hidden" },
        { "/decide/remove/acl-subject-asks-manage", BOB, "remove", "e owner=1000 allow=uid:1001", NULL,
          "polkit org.fdbroker.manage auth_admin_keep" },
        { "/decide/remove/visible-by-rule-asks-manage", BOB, "remove", "auth/1 owner=1000",
          RULE("auth", "retrieve", "auth/*", "uid:1001", "auth_self"), "polkit org.fdbroker.manage auth_admin_keep" },
        { "/decide/remove/remove-rule-no-denies-owner", ALICE, "remove", "locked/1 owner=1000",
          RULE("locked", "remove", "locked/*", "everyone", "no"), "deny rule=locked" },
        { "/decide/remove/remove-rule-no-hides-from-stranger", BOB, "remove", "locked/1 owner=1000",
          RULE("locked", "remove", "locked/*", "everyone", "no"), "hidden" },
        { "/decide/remove/remove-rule-yes-grants-stranger", BOB, "remove", "e owner=1000",
          RULE("rm", "remove", "**", "uid:1001", "yes"), "allow rule=rm" },
        { "/decide/remove/remove-rule-auth", BOB, "remove", "e owner=1000 allow=uid:1001",
          RULE("rm", "remove", "**", "uid:1001", "auth_self"), "polkit org.fdbroker.remove auth_self rule=rm" },
        { "/decide/remove/remove-rule-auth-stranger-refusal-hidden", BOB, "remove", "e owner=1000",
          RULE("rm", "remove", "**", "uid:1001", "auth_self"),
          "polkit org.fdbroker.remove auth_self refusal=not-found rule=rm" },
        { "/decide/remove/by-manage-rule", CAROL, "remove", "shared/1 owner=1000",
          RULE("carol-manages", "manage", "shared/*", "uid:1002", "yes"), "allow rule=carol-manages" },
        { "/decide/remove/manage-rule-no-denies-visible", BOB, "remove", "e owner=1000 allow=uid:1001",
          RULE("nomanage", "manage", "**", "everyone", "no"), "deny rule=nomanage" },
        { "/decide/remove/manage-rule-no-hides-invisible", BOB, "remove", "e owner=1000",
          RULE("nomanage", "manage", "**", "everyone", "no"), "hidden" },
        { "/decide/remove/manage-rule-auth", BOB, "remove", "e owner=1000 allow=uid:1001",
          RULE("m", "manage", "**", "everyone", "auth_admin"), "polkit org.fdbroker.manage auth_admin rule=m" },
        { "/decide/remove/owner-before-manage-rule", ALICE, "remove", "e owner=1000",
          RULE("nomanage", "manage", "**", "everyone", "no"), "allow" },
        { "/decide/remove/remove-rule-before-manage-rule", CAROL, "remove", "shared/1 owner=1000",
          RULE("locked", "remove", "shared/*", "everyone", "no") RULE("m", "manage", "shared/*", "uid:1002", "yes"),
          "hidden" },

        /* ---- open-path: a rule, else polkit (auth_admin_keep) */
        { "/decide/open-path/no-rule-asks-polkit", BOB, "open-path", "/dev/null", NULL,
          "polkit org.fdbroker.open-path auth_admin_keep" },
        { "/decide/open-path/root-asks-polkit-too", ROOT, "open-path", "/dev/null", NULL,
          "polkit org.fdbroker.open-path auth_admin_keep" },
        { "/decide/open-path/rule-yes-with-cap", ALICE, "open-path", "/dev/video0",
          RULE_CAP("video", "open-path", "/dev/video*", "gid:44", "yes", "read-write"), "allow read-write rule=video" },
        { "/decide/open-path/rule-other-path", ALICE, "open-path", "/dev/sda",
          RULE("video", "open-path", "/dev/video*", "gid:44", "yes"), "polkit org.fdbroker.open-path auth_admin_keep" },
        { "/decide/open-path/rule-no-denied", ALICE, "open-path", "/etc/shadow",
          RULE("shadow", "open-path", "/etc/shadow", "everyone", "no"), "deny rule=shadow" },
        { "/decide/open-path/rule-auth-cap-applies-after-polkit", BOB, "open-path", "/dev/video0",
          RULE_CAP("video", "open-path", "/dev/video*", "everyone", "auth_admin", "read-only"),
          "polkit org.fdbroker.open-path auth_admin read-only rule=video" },
        { "/decide/open-path/rule-auth-self", BOB, "open-path", "/dev/ttyS0",
          RULE("tty", "open-path", "/dev/tty*", "everyone", "auth_self"),
          "polkit org.fdbroker.open-path auth_self rule=tty" },

        /* ---- manage (on its own) and list as actions on a name */
        { "/decide/manage/no-rule-asks-polkit", BOB, "manage", "e", NULL,
          "polkit org.fdbroker.manage auth_admin_keep" },
        { "/decide/manage/rule-yes", BOB, "manage", "e", RULE("m", "manage", "**", "uid:1001", "yes"), "allow rule=m" },
        { "/decide/list/call-no-rule-allowed", BOB, "list", "e", NULL, "allow" },
        { "/decide/retrieve/no-entry-hidden", ROOT, "retrieve-name", "e",
          RULE("all", "retrieve", "**", "everyone", "yes"), "hidden" },

        /* ---- who sees an entry in List and Watch */
        { "/decide/list/owner-shown", ALICE, "listed", "e owner=1000", NULL, "shown" },
        { "/decide/list/root-shown", ROOT, "listed", "e owner=1000", NULL, "shown" },
        { "/decide/list/stranger-not-shown", BOB, "listed", "e owner=1000", NULL, "not-shown" },
        { "/decide/list/acl-subject-shown", BOB, "listed", "e owner=1000 allow=uid:1001", NULL, "shown" },
        { "/decide/list/acl-everyone-shown", BOB, "listed", "e owner=1000 allow=everyone", NULL, "shown" },
        { "/decide/list/list-rule-no-hides-from-owner", ALICE, "listed", "secret/1 owner=1000",
          RULE("hide", "list", "secret/*", "everyone", "no"), "not-shown" },
        { "/decide/list/list-rule-auth-hides", BOB, "listed", "secret/1 owner=1000 allow=uid:1001",
          RULE("hide", "list", "secret/*", "everyone", "auth_admin"), "not-shown" },
        { "/decide/list/list-rule-yes-grants-nothing", BOB, "listed", "e owner=1000",
          RULE("show", "list", "**", "everyone", "yes"), "not-shown" },
        { "/decide/list/retrieve-rule-yes-shows", BOB, "listed", "cam/1 owner=1000",
          RULE("cam", "retrieve", "cam/*", "uid:1001", "yes"), "shown" },
        { "/decide/list/retrieve-rule-auth-shows", BOB, "listed", "auth/1 owner=1000",
          RULE("auth", "retrieve", "auth/*", "uid:1001", "auth_admin_keep"), "shown" },
        { "/decide/list/retrieve-rule-no-hides-acl-subject", BOB, "listed", "deny/1 owner=1000 allow=uid:1001",
          RULE("deny", "retrieve", "deny/*", "uid:1001", "no"), "not-shown" },
        { "/decide/list/retrieve-rule-no-owner-still-shown", ALICE, "listed", "deny/1 owner=1000",
          RULE("deny", "retrieve", "deny/*", "everyone", "no"), "shown" },
        { "/decide/visible/stranger-with-rule-auth", BOB, "visible", "auth/1 owner=1000",
          RULE("auth", "retrieve", "auth/*", "uid:1001", "auth_self"), "shown" },
        { "/decide/visible/stranger", BOB, "visible", "e owner=1000", NULL, "not-shown" },
};

/* ---- reading the table ----------------------------------------------- */

static void parse_ids(const char *text, GArray *into) {
        g_auto(GStrv) parts = g_strsplit(text, ",", -1);
        for (char **s = parts; *s; s++) {
                guint64 v;
                g_assert_true(g_ascii_string_to_unsigned(*s, 10, 0, G_MAXUINT32 - 1, &v, NULL));
                gid_t g = (gid_t) v;
                g_array_append_val(into, g);
        }
}

typedef struct Caller {
        uid_t uid;
        GArray *gids;
        char *label;
} Caller;

static void caller_parse(const char *text, Caller *c) {
        g_auto(GStrv) words = g_strsplit(text, " ", -1);

        *c = (Caller) { .gids = g_array_new(FALSE, FALSE, sizeof(gid_t)) };
        for (char **w = words; *w; w++) {
                if (g_str_has_prefix(*w, "uid=")) {
                        guint64 v;
                        g_assert_true(g_ascii_string_to_unsigned(*w + 4, 10, 0, G_MAXUINT32 - 1, &v, NULL));
                        c->uid = (uid_t) v;
                } else if (g_str_has_prefix(*w, "gids="))
                        parse_ids(*w + 5, c->gids);
                else if (g_str_has_prefix(*w, "label="))
                        c->label = g_strdup(*w + 6);
                else
                        g_error("bad caller word '%s'", *w);
        }
}

static void caller_done(Caller *c) {
        g_array_unref(c->gids);
        g_free(c->label);
}

static Identity caller_identity(const Caller *c) {
        return (Identity) { .uid = c->uid, .gids = (const gid_t *) c->gids->data, .n_gids = c->gids->len,
                            .label = c->label };
}

typedef struct Target {
        char *name;
        uid_t owner;
        Subject *allow;
        size_t n_allow;
} Target;

static void target_parse(const char *text, Target *t) {
        g_auto(GStrv) words = g_strsplit(text, " ", -1);

        *t = (Target) { .name = g_strdup(words[0]) };
        for (char **w = words + 1; *w; w++) {
                if (g_str_has_prefix(*w, "owner=")) {
                        guint64 v;
                        g_assert_true(g_ascii_string_to_unsigned(*w + 6, 10, 0, G_MAXUINT32 - 1, &v, NULL));
                        t->owner = (uid_t) v;
                } else if (g_str_has_prefix(*w, "allow=")) {
                        g_auto(GStrv) subjects = g_strsplit(*w + 6, ",", -1);
                        t->n_allow = g_strv_length(subjects);
                        t->allow = g_new0(Subject, t->n_allow);
                        for (size_t i = 0; i < t->n_allow; i++)
                                g_assert_cmpint(acl_subject_parse(subjects[i], &t->allow[i]), ==, 0);
                } else
                        g_error("bad target word '%s'", *w);
        }
}

static void target_done(Target *t) {
        for (size_t i = 0; i < t->n_allow; i++)
                acl_subject_done(&t->allow[i]);
        g_free(t->allow);
        g_free(t->name);
}

static Policy *rules_parse(const char *text) {
        Policy *p = NULL;
        char **problems = NULL;
        int r;

        if (!text)
                return NULL;
        r = policy_parse_text("table.conf", text, strlen(text), &p, &problems);
        if (r < 0 && problems)
                for (char **s = problems; *s; s++)
                        g_printerr("problem in the row's rules: %s\n", *s);
        g_assert_cmpint(r, ==, 0);
        return p;
}

static const char *access_name(int access) {
        switch (access) {
        case O_RDONLY:
                return "read-only";
        case O_WRONLY:
                return "write-only";
        case O_RDWR:
                return "read-write";
        default:
                return NULL;
        }
}

/* A Decision the way the table writes it. */
static char *decision_format(const Decision *d) {
        GString *s = g_string_new(decision_kind_to_string(d->kind));

        if (d->kind == DECISION_ASK_POLKIT) {
                g_string_printf(s, "polkit org.fdbroker.%s %s", policy_action_to_string(d->action),
                                policy_result_to_string(d->polkit_result));
                if (d->refusal_hidden)
                        g_string_append(s, " refusal=not-found");
        }
        if ((d->kind == DECISION_ALLOW || d->kind == DECISION_ASK_POLKIT) && access_name(d->access))
                g_string_append_printf(s, " %s", access_name(d->access));
        if (d->kind == DECISION_DENY || d->kind == DECISION_HIDDEN)
                g_assert_cmpint(d->access, ==, POLICY_ACCESS_ANY);
        if (d->kind == DECISION_HIDDEN)
                g_assert_null(d->rule); /* nothing about the entry, not even the rule, goes out */
        if (d->rule)
                g_string_append_printf(s, " rule=%s", d->rule);
        return g_string_free(s, FALSE);
}

static char *decide_row(const Case *c, const Policy *p, const PolicySnapshot *s, const Target *t) {
        DecideEntry e = { .name = t->name, .owner_uid = t->owner, .allow = t->allow, .n_allow = t->n_allow };
        Decision d;

        if (strcmp(c->action, "retrieve") == 0)
                d = decide_retrieve(p, s, &e);
        else if (strcmp(c->action, "remove") == 0)
                d = decide_remove(p, s, &e);
        else if (strcmp(c->action, "listed") == 0)
                return g_strdup(decide_listed(p, s, &e) ? "shown" : "not-shown");
        else if (strcmp(c->action, "visible") == 0)
                return g_strdup(decide_visible(p, s, &e) ? "shown" : "not-shown");
        else if (strcmp(c->action, "retrieve-name") == 0)
                d = decide_action(p, s, POLICY_ACTION_RETRIEVE, t->name);
        else {
                int a = policy_action_from_string(c->action);
                g_assert_cmpint(a, >=, 0);
                d = decide_action(p, s, (PolicyAction) a, t->name);
        }
        return decision_format(&d);
}

static void run_case(const void *data) {
        const Case *c = data;
        Caller caller;
        Target target;
        Policy *p = rules_parse(c->rules);
        PolicySnapshot *fresh = NULL, *stale = NULL;

        caller_parse(c->caller, &caller);
        target_parse(c->target, &target);
        Identity id = caller_identity(&caller);
        g_assert_cmpint(policy_snapshot_new(p, &id, &fresh), ==, 0);
        g_assert_cmpint(policy_snapshot_new(NULL, &id, &stale), ==, 0);

        g_autofree char *got = decide_row(c, p, fresh, &target);
        g_autofree char *got_stale = decide_row(c, p, stale, &target);
        g_assert_cmpstr(got, ==, c->expect);
        g_assert_cmpstr(got_stale, ==, c->expect);

        /* Refreshed against the rules, the stale one takes the fast walk. */
        g_assert_cmpint(policy_snapshot_refresh(stale, p), ==, 0);
        g_assert_cmpuint(stale->generation, ==, policy_generation(p));
        g_autofree char *got_refreshed = decide_row(c, p, stale, &target);
        g_assert_cmpstr(got_refreshed, ==, c->expect);

        policy_snapshot_free(fresh);
        policy_snapshot_free(stale);
        policy_free(p);
        target_done(&target);
        caller_done(&caller);
}

/* ---- the snapshot itself --------------------------------------------- */

static void test_snapshot_copies_identity(void) {
        gid_t gids[] = { 5, 44 };
        char label[] = "lbl";
        Identity id = { .uid = 1000, .gids = gids, .n_gids = 2, .label = label };
        PolicySnapshot *s = NULL;

        g_assert_cmpint(policy_snapshot_new(NULL, &id, &s), ==, 0);
        gids[1] = 99; /* the caller's buffers may change or go */
        label[0] = 'X';
        Identity back = policy_snapshot_identity(s);
        g_assert_cmpuint(back.uid, ==, 1000);
        g_assert_cmpuint(back.n_gids, ==, 2);
        g_assert_cmpuint(back.gids[1], ==, 44);
        g_assert_cmpstr(back.label, ==, "lbl");
        g_assert_false(s->is_root);
        g_assert_cmpuint(s->generation, ==, 0);
        g_assert_cmpuint(s->n_rules, ==, 0);
        policy_snapshot_free(s);

        Identity root = { .uid = 0 };
        g_assert_cmpint(policy_snapshot_new(NULL, &root, &s), ==, 0);
        g_assert_true(s->is_root);
        g_assert_null(s->label);
        g_assert_null(s->gids);
        policy_snapshot_free(s);
        g_assert_null(policy_snapshot_free(NULL));
}

static void test_snapshot_prefilters_rules(void) {
        Policy *p = rules_parse(RULE("a", "retrieve", "**", "uid:1001", "yes")
          RULE("b", "deposit", "**", "everyone", "no")
                                        RULE("c", "list", "**", "gid:44", "no")
                                                RULE("d", "remove", "**", "label:system_u:system_r:camera_t:s0", "no"));
        Caller alice, bob, carol;
        PolicySnapshot *sa = NULL, *sb = NULL, *sc = NULL;

        caller_parse(ALICE, &alice);
        caller_parse(BOB, &bob);
        caller_parse(CAROL, &carol);
        Identity ia = caller_identity(&alice), ib = caller_identity(&bob), ic = caller_identity(&carol);
        g_assert_cmpint(policy_snapshot_new(p, &ia, &sa), ==, 0);
        g_assert_cmpint(policy_snapshot_new(p, &ib, &sb), ==, 0);
        g_assert_cmpint(policy_snapshot_new(p, &ic, &sc), ==, 0);
        /* Each keeps only the rules whose Subject= names it, in order. */
        g_assert_cmpuint(sa->n_rules, ==, 2);
        g_assert_cmpuint(sa->rules[0], ==, 1);
        g_assert_cmpuint(sa->rules[1], ==, 2);
        g_assert_cmpuint(sb->n_rules, ==, 2);
        g_assert_cmpuint(sb->rules[0], ==, 0);
        g_assert_cmpuint(sb->rules[1], ==, 1);
        g_assert_cmpuint(sc->n_rules, ==, 2);
        g_assert_cmpuint(sc->rules[0], ==, 1);
        g_assert_cmpuint(sc->rules[1], ==, 3);
        g_assert_cmpuint(sa->generation, ==, policy_generation(p));
        g_assert_cmpuint(sa->generation, !=, 0);

        policy_snapshot_free(sa);
        policy_snapshot_free(sb);
        policy_snapshot_free(sc);
        caller_done(&alice);
        caller_done(&bob);
        caller_done(&carol);
        policy_free(p);
}

/* A reload (SIGHUP) makes a new policy: a snapshot of the old one still
 * answers by the new rules, and refresh moves it over. */
static void test_snapshot_after_reload(void) {
        Policy *old = rules_parse(RULE("yes", "retrieve", "**", "uid:1001", "yes"));
        Policy *new = rules_parse(RULE("no", "retrieve", "**", "uid:1001", "no"));
        DecideEntry e = { .name = "x", .owner_uid = 1000 };
        Identity bob = { .uid = 1001 };
        PolicySnapshot *s = NULL;
        Decision d;

        g_assert_cmpuint(policy_generation(old), !=, policy_generation(new));
        g_assert_cmpint(policy_snapshot_new(old, &bob, &s), ==, 0);
        d = decide_retrieve(old, s, &e);
        g_assert_cmpint(d.kind, ==, DECISION_ALLOW);
        policy_free(old); /* the snapshot holds no pointer into it */

        d = decide_retrieve(new, s, &e);
        g_assert_cmpint(d.kind, ==, DECISION_HIDDEN);
        g_assert_cmpint(policy_snapshot_refresh(s, new), ==, 0);
        g_assert_cmpuint(s->generation, ==, policy_generation(new));
        d = decide_retrieve(new, s, &e);
        g_assert_cmpint(d.kind, ==, DECISION_HIDDEN);

        /* Back to no policy at all: the defaults. */
        g_assert_cmpint(policy_snapshot_refresh(s, NULL), ==, 0);
        g_assert_cmpuint(s->n_rules, ==, 0);
        d = decide_retrieve(NULL, s, &e);
        g_assert_cmpint(d.kind, ==, DECISION_HIDDEN);
        e.owner_uid = 1001;
        d = decide_retrieve(NULL, s, &e);
        g_assert_cmpint(d.kind, ==, DECISION_ALLOW);

        policy_snapshot_free(s);
        policy_free(new);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                g_test_add_data_func(cases[i].path, &cases[i], run_case);
        g_test_add_func("/decide/snapshot/copies-identity", test_snapshot_copies_identity);
        g_test_add_func("/decide/snapshot/prefilters-rules", test_snapshot_prefilters_rules);
        g_test_add_func("/decide/snapshot/after-reload", test_snapshot_after_reload);
        return g_test_run();
}
