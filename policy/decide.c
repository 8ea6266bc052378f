/* decide.c: the decision engine. See decide.h.
 *
 * Each decide_*() is one short function over three helpers: find_rule()
 * (the first rule of an action whose glob and subject match), acl_allows()
 * (owner, root, the entry ACL) and from_rule() (what a rule's Result= means
 * for a caller who may or may not know the entry exists). */
#include "decide.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static const char *const kind_names[] = {
        [DECISION_ALLOW] = "allow",
        [DECISION_DENY] = "deny",
        [DECISION_HIDDEN] = "hidden",
        [DECISION_ASK_POLKIT] = "ask-polkit",
};

const char *decision_kind_to_string(DecisionKind k) {
        return k >= 0 && (size_t) k < ELEMENTSOF(kind_names) ? kind_names[k] : NULL;
}

/* ---- snapshots --------------------------------------------------------- */

Identity policy_snapshot_identity(const PolicySnapshot *s) {
        return (Identity) { .uid = s->uid, .gids = s->gids, .n_gids = s->n_gids, .label = s->label };
}

/* The indexes of p's rules whose Subject= matches id, in rule order. */
static int match_rules(const Policy *p, const Identity *id, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ uint32_t *v = NULL;
        size_t n = 0;

        if (p && p->n_rules > 0) {
                /* n_rules is at most POLICY_RULES_MAX: no overflow. */
                v = malloc(p->n_rules * sizeof *v);
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < p->n_rules; i++)
                        if (acl_matches(p->rules[i].subjects, p->rules[i].n_subjects, id))
                                v[n++] = (uint32_t) i;
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

PolicySnapshot *policy_snapshot_free(PolicySnapshot *s) {
        if (!s)
                return NULL;
        free(s->gids);
        free(s->label);
        free(s->rules);
        free(s);
        return NULL;
}

int policy_snapshot_new(const Policy *p, const Identity *id, PolicySnapshot **ret) {
        _cleanup_(policy_snapshot_freep) PolicySnapshot *s = calloc(1, sizeof *s);
        Identity own;
        int r;

        if (!s)
                return -ENOMEM;
        s->uid = id->uid;
        s->is_root = id->uid == 0;
        if (id->n_gids > 0) {
                s->gids = calloc(id->n_gids, sizeof *s->gids);
                if (!s->gids)
                        return -ENOMEM;
                memcpy(s->gids, id->gids, id->n_gids * sizeof *s->gids);
                s->n_gids = id->n_gids;
        }
        if (id->label) {
                s->label = strdup(id->label);
                if (!s->label)
                        return -ENOMEM;
        }
        own = policy_snapshot_identity(s);
        r = match_rules(p, &own, &s->rules, &s->n_rules);
        if (r < 0)
                return r;
        s->generation = policy_generation(p);
        *ret = TAKE_PTR(s);
        return 0;
}

int policy_snapshot_refresh(PolicySnapshot *s, const Policy *p) {
        Identity id = policy_snapshot_identity(s);
        uint32_t *v;
        size_t n;
        int r;

        if (s->generation == policy_generation(p))
                return 0;
        r = match_rules(p, &id, &v, &n);
        if (r < 0)
                return r;
        free(s->rules);
        s->rules = v;
        s->n_rules = n;
        s->generation = policy_generation(p);
        return 0;
}

/* ---- deciding ---------------------------------------------------------- */

static bool rule_fits(const PolicyRule *r, PolicyAction action, const char *name) {
        return (r->actions & (1U << action)) && (!r->match || policy_glob_match(r->match, name));
}

/* The first rule of p for action on name whose subject matches s. With a
 * snapshot of p only its pre-matched rules are walked; with a stale one
 * (p was reloaded since) every rule, matching subjects again. */
static const PolicyRule *find_rule(const Policy *p, const PolicySnapshot *s, PolicyAction action,
                                   const char *name) {
        if (!p)
                return NULL;
        if (s->generation == p->generation) {
                for (size_t i = 0; i < s->n_rules; i++)
                        if (rule_fits(&p->rules[s->rules[i]], action, name))
                                return &p->rules[s->rules[i]];
                return NULL;
        }

        Identity id = policy_snapshot_identity(s);
        for (size_t i = 0; i < p->n_rules; i++)
                if (rule_fits(&p->rules[i], action, name) &&
                    acl_matches(p->rules[i].subjects, p->rules[i].n_subjects, &id))
                        return &p->rules[i];
        return NULL;
}

/* SPEC §2's entry ACL: the owner, root and the subjects in `allow`. */
static bool acl_allows(const PolicySnapshot *s, const DecideEntry *e) {
        Identity id;

        if (s->is_root || s->uid == e->owner_uid)
                return true;
        id = policy_snapshot_identity(s);
        return acl_matches(e->allow, e->n_allow, &id);
}

static Decision allow(PolicyAction action, int access, const char *rule) {
        return (Decision) { .kind = DECISION_ALLOW, .action = action, .access = access, .rule = rule };
}

static Decision hidden(PolicyAction action) {
        return (Decision) { .kind = DECISION_HIDDEN, .action = action, .access = POLICY_ACCESS_ANY };
}

static Decision ask_polkit(PolicyAction action, PolicyResult result, int access, bool refusal_hidden,
                           const char *rule) {
        return (Decision) { .kind = DECISION_ASK_POLKIT,
                            .action = action,
                            .access = access,
                            .rule = rule,
                            .polkit_result = result,
                            .refusal_hidden = refusal_hidden };
}

/* What rule r decides for action. known: the caller may learn that the
 * entry exists, so a refusal may say AccessDenied rather than NotFound. */
static Decision from_rule(const PolicyRule *r, PolicyAction action, bool known) {
        switch (r->result) {
        case POLICY_RESULT_YES:
                return allow(action, r->access, r->name);
        case POLICY_RESULT_NO:
                if (!known)
                        return hidden(action);
                return (Decision) { .kind = DECISION_DENY, .action = action, .access = POLICY_ACCESS_ANY,
                                    .rule = r->name };
        default:
                return ask_polkit(action, r->result, r->access, !known, r->name);
        }
}

Decision decide_retrieve(const Policy *p, const PolicySnapshot *s, const DecideEntry *e) {
        const PolicyRule *r = find_rule(p, s, POLICY_ACTION_RETRIEVE, e->name);
        bool acl = acl_allows(s, e);

        if (r)
                return from_rule(r, POLICY_ACTION_RETRIEVE, acl);
        return acl ? allow(POLICY_ACTION_RETRIEVE, POLICY_ACCESS_ANY, NULL) : hidden(POLICY_ACTION_RETRIEVE);
}

bool decide_visible(const Policy *p, const PolicySnapshot *s, const DecideEntry *e) {
        const PolicyRule *r;

        if (s->is_root || s->uid == e->owner_uid)
                return true;
        r = find_rule(p, s, POLICY_ACTION_RETRIEVE, e->name);
        if (r)
                return r->result != POLICY_RESULT_NO;
        return acl_allows(s, e);
}

bool decide_listed(const Policy *p, const PolicySnapshot *s, const DecideEntry *e) {
        const PolicyRule *r = find_rule(p, s, POLICY_ACTION_LIST, e->name);

        if (r && r->result != POLICY_RESULT_YES)
                return false;
        return decide_visible(p, s, e);
}

Decision decide_remove(const Policy *p, const PolicySnapshot *s, const DecideEntry *e) {
        bool visible = decide_visible(p, s, e);
        const PolicyRule *r;

        r = find_rule(p, s, POLICY_ACTION_REMOVE, e->name);
        if (r)
                return from_rule(r, POLICY_ACTION_REMOVE, visible);
        if (s->is_root || s->uid == e->owner_uid)
                return allow(POLICY_ACTION_REMOVE, POLICY_ACCESS_ANY, NULL);
        r = find_rule(p, s, POLICY_ACTION_MANAGE, e->name);
        if (r)
                return from_rule(r, POLICY_ACTION_MANAGE, visible);
        if (!visible)
                return hidden(POLICY_ACTION_REMOVE);
        return ask_polkit(POLICY_ACTION_MANAGE, POLICY_RESULT_AUTH_ADMIN_KEEP, POLICY_ACCESS_ANY, false, NULL);
}

Decision decide_action(const Policy *p, const PolicySnapshot *s, PolicyAction action, const char *name) {
        const PolicyRule *r;

        if (action == POLICY_ACTION_RETRIEVE || action == POLICY_ACTION_REMOVE)
                return hidden(action); /* no entry: nothing to retrieve or remove */
        r = find_rule(p, s, action, name);
        if (r)
                return from_rule(r, action, true);
        if (action == POLICY_ACTION_OPEN_PATH || action == POLICY_ACTION_MANAGE)
                return ask_polkit(action, POLICY_RESULT_AUTH_ADMIN_KEEP, POLICY_ACCESS_ANY, false, NULL);
        return allow(action, POLICY_ACCESS_ANY, NULL); /* deposit, create-memory, list */
}
