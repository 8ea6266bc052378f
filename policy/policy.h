/* policy.h: admin rules (SPEC §2), parsed and decided, with no bus in them.
 *
 * A Policy is read from `*.conf` files in a list of directories given in
 * priority order: a file in an earlier directory masks the file of the same
 * name in later ones (as /etc masks /usr/share for systemd drop-ins). The
 * surviving files are read in file-name order and their rules in file order;
 * the first rule that matches an action, a name and a subject decides.
 * [Limits] keys override the defaults, a later file overriding an earlier
 * one.
 *
 * Problems are collected, not logged: each is "FILE:LINE: message", and a
 * policy with any problem is not returned. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"

typedef enum PolicyAction {
        POLICY_ACTION_DEPOSIT,
        POLICY_ACTION_RETRIEVE,
        POLICY_ACTION_REMOVE,
        POLICY_ACTION_LIST,
        POLICY_ACTION_CREATE_MEMORY,
        POLICY_ACTION_OPEN_PATH,
        POLICY_ACTION_MANAGE,
        _POLICY_ACTION_MAX,
} PolicyAction;

typedef enum PolicyResult {
        POLICY_RESULT_YES,
        POLICY_RESULT_NO,
        POLICY_RESULT_AUTH_SELF,
        POLICY_RESULT_AUTH_SELF_KEEP,
        POLICY_RESULT_AUTH_ADMIN,
        POLICY_RESULT_AUTH_ADMIN_KEEP,
        _POLICY_RESULT_MAX,
} PolicyResult;

/* Access caps: -1 means none; otherwise O_RDONLY, O_WRONLY or O_RDWR. */
#define POLICY_ACCESS_ANY (-1)

typedef struct PolicyRule {
        char *name;
        char *file;             /* full path of the file it came from */
        unsigned line;          /* line of its [Rule NAME] header */
        unsigned actions;       /* bit mask of 1 << PolicyAction */
        char *match;            /* glob; NULL matches everything */
        Subject *subjects;
        size_t n_subjects;
        PolicyResult result;
        int access;             /* cap, or POLICY_ACCESS_ANY */
} PolicyRule;

/* [Limits] keys beyond the first three: each shared resource has a total
 * and a per-user key (see man/fdbroker.policy.5). */
typedef enum PolicyLimitKey {
        POLICY_LIMIT_MAX_MEMORY_SIZE_PER_USER,
        POLICY_LIMIT_MAX_QUEUED_CALLS,
        POLICY_LIMIT_MAX_QUEUED_CALLS_PER_USER,
        POLICY_LIMIT_MAX_WAITS,
        POLICY_LIMIT_MAX_WAITS_PER_USER,
        POLICY_LIMIT_MAX_AUTHORIZATIONS,
        POLICY_LIMIT_MAX_AUTHORIZATIONS_PER_USER,
        POLICY_LIMIT_MAX_WORKERS,
        POLICY_LIMIT_MAX_WORKERS_PER_USER,
        POLICY_LIMIT_MAX_DIRECT_CONNECTIONS,
        POLICY_LIMIT_MAX_DIRECT_CONNECTIONS_PER_USER,
        POLICY_LIMIT_MAX_WATCHES,
        POLICY_LIMIT_MAX_WATCHES_PER_USER,
        POLICY_LIMIT_MAX_UNREAD_FDS,
        POLICY_LIMIT_MAX_UNREAD_FDS_PER_USER,
        _POLICY_LIMIT_MAX,
} PolicyLimitKey;

/* dbus-daemon stops reading from a connection with 64 fds in flight (system
 * bus): MaxUnreadFds stays below that, with room for one RetrieveMany. */
#define POLICY_MAX_UNREAD_FDS_CEILING 48

typedef struct PolicyLimits {
        bool has_max_entries, has_max_entries_per_user, has_max_memory_size;
        unsigned max_entries;
        unsigned max_entries_per_user;
        uint64_t max_memory_size;
        uint32_t has;                      /* bit (1 << PolicyLimitKey) */
        uint64_t values[_POLICY_LIMIT_MAX];
} PolicyLimits;

/* "MaxWaitsPerUser"…, NULL when out of range. */
const char *policy_limit_key_to_string(PolicyLimitKey k);

/* The value of k when a file set it: true with *ret set. */
static inline bool policy_limit_get(const PolicyLimits *l, PolicyLimitKey k, uint64_t *ret) {
        if (!(l->has & (UINT32_C(1) << k)))
                return false;
        *ret = l->values[k];
        return true;
}

typedef struct Policy {
        PolicyRule *rules;
        size_t n_rules;
        PolicyLimits limits;
        char **files;           /* the files read, in order (NULL-terminated) */
        uint64_t generation;    /* unique to this policy in this process, never 0 */
} Policy;

typedef struct PolicyDecision {
        bool matched;           /* false: no rule matched, use the default */
        PolicyResult result;
        int access;             /* the rule's cap, or POLICY_ACCESS_ANY */
        const char *rule;       /* the deciding rule's name, borrowed */
} PolicyDecision;

/* Reads the policy from dirs (priority order, NULL-terminated; missing
 * directories are fine). On success returns 0 and *ret (owned by the caller).
 * On problems returns -EINVAL and *ret_problems gets a NULL-terminated array
 * of "FILE:LINE: message" strings (owned by the caller); other negative
 * errno for failures that are not the files' fault. */
int policy_load(char *const *dirs, Policy **ret, char ***ret_problems);

/* Parses one file's text as if read from path (for tests and the fuzzer). */
int policy_parse_text(const char *path, const char *text, size_t size, Policy **ret, char ***ret_problems);

Policy *policy_free(Policy *p);

/* p's generation; 0 for NULL (no policy). Snapshots (decide.h) keep it to
 * know which policy their precomputed rule list belongs to. */
static inline uint64_t policy_generation(const Policy *p) {
        return p ? p->generation : 0;
}

static inline void policy_freep(Policy **p) {
        policy_free(*p);
}

void policy_problems_free(char **problems);

/* The first rule for action whose Match fits subject_name (an entry name or
 * a path) and whose Subject fits id: which rule matches, nothing more. What
 * a caller may do (owner, root, ACLs, defaults, visibility, polkit) is
 * decided by decide.h, which the service uses. */
void policy_decide(const Policy *p, PolicyAction action, const char *subject_name, const Identity *id,
                   PolicyDecision *ret);

/* fnmatch(3) with FNM_PATHNAME, where a trailing "/ **" (no space) matches
 * everything below, and "**" alone matches everything. */
bool policy_glob_match(const char *pattern, const char *name);

const char *policy_action_to_string(PolicyAction a);
int policy_action_from_string(const char *s);
const char *policy_result_to_string(PolicyResult r);
int policy_result_from_string(const char *s);

/* parse_size() of common/size.h, the grammar fdbrokerctl's SIZE shares:
 * "1G", "512M", "4096", "64K", "2TiB" (powers of 1024). */
int policy_parse_size(const char *s, uint64_t *ret);
