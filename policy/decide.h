/* decide.h: the one place that decides who may do what (SPEC §2).
 *
 * Every authorization question the broker asks ends here: owner and root,
 * entry ACLs (acl.h), admin rules (policy.h; first match wins, rules beat
 * ACLs), visibility for List and Watch, and the defaults when no rule
 * matches. The answer is a Decision: allow (with the rule's access cap),
 * deny, hidden (answer NotFound: the caller may not learn the entry exists)
 * or ask polkit (which action, which requested result, and how to answer
 * polkit's no). Pure functions: no bus, no I/O, no logging.
 *
 * The caller is described by a PolicySnapshot, built once per peer when its
 * credentials arrive (bus peer or direct connection alike: only uid, gids
 * and label go in), holding what can be worked out in advance: whether it
 * is root, and which rules' Subject= lines match it, so that a decision is
 * a walk over those rules checking only action and glob. A snapshot
 * remembers the generation of the policy it was built against; asked with
 * another policy (after a reload) it still answers correctly, by matching
 * subjects again, until policy_snapshot_refresh() rebuilds it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "acl.h"
#include "policy.h"

typedef struct PolicySnapshot {
        uid_t uid;
        gid_t *gids;              /* supplementary gids, owned */
        size_t n_gids;
        char *label;              /* security label or NULL, owned */
        bool is_root;

        uint64_t generation;      /* of the policy the rule list below indexes */
        uint32_t *rules;          /* indexes of the rules whose Subject= matches, ascending */
        size_t n_rules;
} PolicySnapshot;

/* Builds the snapshot of a caller identified by id (copied) against policy p
 * (NULL: no rules). Returns 0, or -ENOMEM; *ret untouched on failure. */
int policy_snapshot_new(const Policy *p, const Identity *id, PolicySnapshot **ret);

/* Rebuilds s's rule list when p is not the policy it was built against
 * (policy_generation() differs). Returns 0 (also when nothing was to do),
 * or -ENOMEM, leaving s as it was (still correct, only slower). */
int policy_snapshot_refresh(PolicySnapshot *s, const Policy *p);

PolicySnapshot *policy_snapshot_free(PolicySnapshot *s);

static inline void policy_snapshot_freep(PolicySnapshot **s) {
        policy_snapshot_free(*s);
}

/* The identity a snapshot stands for, borrowing its gids and label. */
Identity policy_snapshot_identity(const PolicySnapshot *s);

/* What the decision needs to know of an entry; everything borrowed. */
typedef struct DecideEntry {
        const char *name;
        uid_t owner_uid;
        const Subject *allow;     /* the entry ACL */
        size_t n_allow;
} DecideEntry;

typedef enum DecisionKind {
        DECISION_ALLOW,
        DECISION_DENY,            /* AccessDenied: the caller may know the entry exists */
        DECISION_HIDDEN,          /* NotFound: the caller may not learn it exists */
        DECISION_ASK_POLKIT,
} DecisionKind;

typedef struct Decision {
        DecisionKind kind;
        PolicyAction action;      /* the action whose rule or default decided: for remove, remove or
                                   * manage; ASK_POLKIT asks for org.fdbroker.<action> */
        int access;               /* ALLOW, and ASK_POLKIT once polkit says yes: the rule's cap, or
                                   * POLICY_ACCESS_ANY */
        const char *rule;         /* the deciding rule's name (borrowed from the policy); NULL: a default
                                   * (always NULL for HIDDEN) */
        PolicyResult polkit_result; /* ASK_POLKIT: the requested auth_* result */
        bool refusal_hidden;      /* ASK_POLKIT: polkit's no is answered NotFound, not AccessDenied */
} Decision;

/* Retrieve of e: a rule (yes, no or auth_*), else the entry ACL (owner,
 * root, `allow`). A refusal is DENY only for callers the ACL lets in, who
 * know the entry exists; HIDDEN for everyone else. */
Decision decide_retrieve(const Policy *p, const PolicySnapshot *s, const DecideEntry *e);

/* Remove of e: a remove rule; else the owner and root; else a manage rule;
 * else polkit's org.fdbroker.manage (auth_admin_keep), but callers who may
 * not see e get HIDDEN without polkit being asked (a prompt would tell them
 * it exists). */
Decision decide_remove(const Policy *p, const PolicySnapshot *s, const DecideEntry *e);

/* An action that is not about an existing entry, on name (an entry name,
 * or a path for open-path): a rule of that action, else SPEC §2's default:
 * deposit, create-memory and list are allowed, open-path and manage go to
 * polkit (auth_admin_keep). Retrieve and remove of a name with no entry are
 * HIDDEN. A rule's `no` is DENY: the name is the caller's own choice. */
Decision decide_action(const Policy *p, const PolicySnapshot *s, PolicyAction action, const char *name);

/* Whether the caller may learn that e exists: it owns it, is root, the ACL
 * names it, or a retrieve rule other than `no` matches it. */
bool decide_visible(const Policy *p, const PolicySnapshot *s, const DecideEntry *e);

/* Whether List (and Watch) show e to the caller: a list rule other than yes
 * hides it, otherwise decide_visible(). Never asks polkit. */
bool decide_listed(const Policy *p, const PolicySnapshot *s, const DecideEntry *e);

const char *decision_kind_to_string(DecisionKind k);
