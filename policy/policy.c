/* policy.c: parsing admin rule files and deciding with them. See policy.h.
 *
 * A small hand-written parser rather than GKeyFile: SPEC §2's own example
 * puts comments after values ("Action=retrieve   # ..."), which GKeyFile
 * would take as part of the value, and every problem must carry its line. */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "size.h"

#define POLICY_FILE_MAX (1024 * 1024)

/* The generation given to the last policy made (policy_generation()). */
static uint64_t last_generation;
#define POLICY_RULES_MAX 65536

static const char *const action_names[_POLICY_ACTION_MAX] = {
        [POLICY_ACTION_DEPOSIT] = "deposit",
        [POLICY_ACTION_RETRIEVE] = "retrieve",
        [POLICY_ACTION_REMOVE] = "remove",
        [POLICY_ACTION_LIST] = "list",
        [POLICY_ACTION_CREATE_MEMORY] = "create-memory",
        [POLICY_ACTION_OPEN_PATH] = "open-path",
        [POLICY_ACTION_MANAGE] = "manage",
};

static const char *const result_names[_POLICY_RESULT_MAX] = {
        [POLICY_RESULT_YES] = "yes",
        [POLICY_RESULT_NO] = "no",
        [POLICY_RESULT_AUTH_SELF] = "auth_self",
        [POLICY_RESULT_AUTH_SELF_KEEP] = "auth_self_keep",
        [POLICY_RESULT_AUTH_ADMIN] = "auth_admin",
        [POLICY_RESULT_AUTH_ADMIN_KEEP] = "auth_admin_keep",
};

const char *policy_action_to_string(PolicyAction a) {
        return a >= 0 && a < _POLICY_ACTION_MAX ? action_names[a] : NULL;
}

int policy_action_from_string(const char *s) {
        for (int i = 0; i < _POLICY_ACTION_MAX; i++)
                if (strcmp(s, action_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *policy_result_to_string(PolicyResult r) {
        return r >= 0 && r < _POLICY_RESULT_MAX ? result_names[r] : NULL;
}

int policy_result_from_string(const char *s) {
        for (int i = 0; i < _POLICY_RESULT_MAX; i++)
                if (strcmp(s, result_names[i]) == 0)
                        return i;
        return -EINVAL;
}

int policy_parse_size(const char *s, uint64_t *ret) {
        return parse_size(s, ret);
}

bool policy_glob_match(const char *pattern, const char *name) {
        size_t len = strlen(pattern);

        if (strcmp(pattern, "**") == 0)
                return true;
        /* A trailing slash-star-star: something below what the rest
         * matches. With FNM_PATHNAME the final stars match one component,
         * and FNM_LEADING_DIR lets more components follow: "a" followed
         * by it matches "a/b" and "a/b/c", never "a" (nor "a/", except
         * that no entry name or normalised path ends in a slash). No
         * allocation: a rule can never fail to match for want of memory. */
        if (len >= 3 && strcmp(pattern + len - 3, "/**") == 0)
                return fnmatch(pattern, name, FNM_PATHNAME | FNM_LEADING_DIR) == 0;
        return fnmatch(pattern, name, FNM_PATHNAME) == 0;
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct Parser {
        Policy *policy;
        char **problems;
        unsigned *problem_lines;  /* the line of each problem, to sort them */
        size_t n_problems;
        const char *path;
        unsigned line;
        int oom;
} Parser;

static void problem(Parser *ps, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(Parser *ps, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *full = NULL;
        char **v;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0 || asprintf(&full, "%s:%u: %s", ps->path, line, msg) < 0) {
                msg = full = NULL; /* undefined after a failure */
                ps->oom = 1;
                return;
        }
        /* Once each: a problem already reported for this line is not
         * repeated ("Subject=gecko gecko"). Lines mostly come in order, so
         * looking back stops at the first earlier line. */
        for (size_t i = ps->n_problems; i > 0 && ps->problem_lines[i - 1] >= line; i--)
                if (ps->problem_lines[i - 1] == line && strcmp(ps->problems[i - 1], full) == 0)
                        return;
        unsigned *lines = realloc(ps->problem_lines, (ps->n_problems + 1) * sizeof *lines);
        if (!lines) {
                ps->oom = 1;
                return;
        }
        ps->problem_lines = lines;
        lines[ps->n_problems] = line;
        v = realloc(ps->problems, (ps->n_problems + 2) * sizeof *v);
        if (!v) {
                ps->oom = 1;
                return;
        }
        v[ps->n_problems++] = TAKE_PTR(full);
        v[ps->n_problems] = NULL;
        ps->problems = v;
}

static void rule_done(PolicyRule *r) {
        free(r->name);
        free(r->file);
        free(r->match);
        acl_subjects_free(r->subjects, r->n_subjects);
}

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++)
                rule_done(&p->rules[i]);
        free(p->rules);
        if (p->files)
                for (char **f = p->files; *f; f++)
                        free(*f);
        free(p->files);
        free(p);
        return NULL;
}

void policy_problems_free(char **problems) {
        if (!problems)
                return;
        for (char **s = problems; *s; s++)
                free(*s);
        free(problems);
}

static char *strip(char *s) {
        char *e;
        while (*s == ' ' || *s == '\t' || *s == '\r')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

/* A '#' after whitespace starts a comment, as in SPEC §2's example. */
static void cut_comment(char *v) {
        for (char *p = v; *p; p++)
                if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        return;
                }
}

static bool rule_name_valid(const char *n) {
        if (!*n || strlen(n) > 255)
                return false;
        for (const char *p = n; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_.:@-", *p)))
                        return false;
        return true;
}

enum {
        KEY_ACTION = 1 << 0,
        KEY_MATCH = 1 << 1,
        KEY_SUBJECT = 1 << 2,
        KEY_RESULT = 1 << 3,
        KEY_ACCESS = 1 << 4,
        KEY_MAX_ENTRIES = 1 << 5,
        KEY_MAX_ENTRIES_PER_USER = 1 << 6,
        KEY_MAX_MEMORY_SIZE = 1 << 7,
};

typedef enum Section { SECTION_NONE, SECTION_RULE, SECTION_LIMITS, SECTION_BAD } Section;

typedef struct SectionState {
        Section kind;
        unsigned header_line;
        unsigned keys;
        uint32_t limit_keys;  /* PolicyLimitKey bits seen in this section */
        PolicyRule *rule;     /* the rule being filled, in policy->rules */
        bool rule_bad;
} SectionState;

static void finish_section(Parser *ps, SectionState *st) {
        if (st->kind == SECTION_RULE && st->rule) {
                static const struct {
                        unsigned key;
                        const char *name;
                } required[] = { { KEY_ACTION, "Action" }, { KEY_SUBJECT, "Subject" }, { KEY_RESULT, "Result" } };
                for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
                        if (!(st->keys & required[i].key))
                                problem(ps, st->header_line, "rule '%s' has no %s= line.", st->rule->name,
                                        required[i].name);
        }
        *st = (SectionState) {};
}

static int parse_subjects(Parser *ps, PolicyRule *rule, char *value) {
        size_t n = 0, cap = 0, problems_before = ps->n_problems;
        Subject *v = NULL;
        char *save = NULL;

        for (char *tok = strtok_r(value, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                Subject s;
                int r;

                if (n >= ACL_SUBJECTS_MAX) {
                        problem(ps, ps->line, "too many subjects (at most %d).", ACL_SUBJECTS_MAX);
                        break;
                }
                r = acl_subject_parse(tok, &s);
                if (r == -ENOENT) {
                        problem(ps, ps->line, "subject '%s' names no known user or group.", tok);
                        continue;
                }
                if (r == -ENOMEM) {
                        ps->oom = 1;
                        break;
                }
                if (r < 0 && r != -EINVAL) {
                        /* The user database failed: the rule would match
                         * nobody, so the policy is refused. */
                        problem(ps, ps->line, "cannot look up subject '%s': %s.", tok, strerror(-r));
                        continue;
                }
                if (r < 0) {
                        problem(ps, ps->line,
                                "'%s' is not a subject; use user:NAME, uid:N, group:NAME, gid:N, label:CONTEXT or "
                                "everyone.",
                                tok);
                        continue;
                }
                if (n == cap) {
                        Subject *nv = realloc(v, (cap = cap ? cap * 2 : 4) * sizeof *nv);
                        if (!nv) {
                                acl_subject_done(&s);
                                ps->oom = 1;
                                break;
                        }
                        v = nv;
                }
                v[n++] = s;
        }
        /* A line whose every subject was reported says nothing more. */
        if (n == 0 && !ps->oom && ps->n_problems == problems_before)
                problem(ps, ps->line, "Subject= names no subject.");
        acl_subjects_free(rule->subjects, rule->n_subjects);
        rule->subjects = v;
        rule->n_subjects = n;
        return 0;
}

/* The bit of a rule's key, or 0 for a key rules do not take. */
static unsigned rule_key_bit(const char *key) {
        if (strcmp(key, "Action") == 0)
                return KEY_ACTION;
        if (strcmp(key, "Match") == 0)
                return KEY_MATCH;
        if (strcmp(key, "Subject") == 0)
                return KEY_SUBJECT;
        if (strcmp(key, "Result") == 0)
                return KEY_RESULT;
        if (strcmp(key, "Access") == 0)
                return KEY_ACCESS;
        return 0;
}

/* Action=: space-separated actions; each unknown one is a problem. */
static void parse_rule_actions(Parser *ps, PolicyRule *rule, char *value) {
        char *save = NULL;
        unsigned n = 0;

        for (char *tok = strtok_r(value, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                int a = policy_action_from_string(tok);
                n++;
                if (a < 0)
                        problem(ps, ps->line,
                                "unknown action '%s'; use deposit, retrieve, remove, list, create-memory, "
                                "open-path or manage.",
                                tok);
                else
                        rule->actions |= 1U << a;
        }
        if (n == 0)
                problem(ps, ps->line, "Action= names no action.");
}

static void parse_rule_result(Parser *ps, PolicyRule *rule, const char *value) {
        int r = policy_result_from_string(value);

        if (r < 0)
                problem(ps, ps->line,
                        "unknown result '%s'; use yes, no, auth_self, auth_self_keep, auth_admin or "
                        "auth_admin_keep.",
                        value);
        else
                rule->result = r;
}

static void parse_rule_access(Parser *ps, PolicyRule *rule, const char *value) {
        if (strcmp(value, "read-only") == 0)
                rule->access = O_RDONLY;
        else if (strcmp(value, "write-only") == 0)
                rule->access = O_WRONLY;
        else if (strcmp(value, "read-write") == 0)
                rule->access = O_RDWR;
        else
                problem(ps, ps->line, "unknown access '%s'; use read-only, write-only or read-write.", value);
}

static void parse_rule_key(Parser *ps, SectionState *st, const char *key, char *value) {
        PolicyRule *rule = st->rule;
        unsigned bit = rule_key_bit(key);

        if (bit == 0) {
                problem(ps, ps->line, "unknown key '%s' in a rule; rules take Action, Match, Subject, Result and Access.",
                        key);
                return;
        }
        if (st->keys & bit) {
                problem(ps, ps->line, "%s= is given twice in rule '%s'.", key, rule->name);
                return;
        }
        st->keys |= bit;

        switch (bit) {
        case KEY_ACTION:
                parse_rule_actions(ps, rule, value);
                break;
        case KEY_MATCH:
                if (!*value) {
                        problem(ps, ps->line, "Match= is empty; leave it out to match every name.");
                        break;
                }
                rule->match = strdup(value);
                if (!rule->match)
                        ps->oom = 1;
                break;
        case KEY_SUBJECT:
                parse_subjects(ps, rule, value);
                break;
        case KEY_RESULT:
                parse_rule_result(ps, rule, value);
                break;
        case KEY_ACCESS:
                parse_rule_access(ps, rule, value);
                break;
        }
}

static const char *const limit_key_names[_POLICY_LIMIT_MAX] = {
        [POLICY_LIMIT_MAX_MEMORY_SIZE_PER_USER] = "MaxMemorySizePerUser",
        [POLICY_LIMIT_MAX_QUEUED_CALLS] = "MaxQueuedCalls",
        [POLICY_LIMIT_MAX_QUEUED_CALLS_PER_USER] = "MaxQueuedCallsPerUser",
        [POLICY_LIMIT_MAX_WAITS] = "MaxWaits",
        [POLICY_LIMIT_MAX_WAITS_PER_USER] = "MaxWaitsPerUser",
        [POLICY_LIMIT_MAX_AUTHORIZATIONS] = "MaxAuthorizations",
        [POLICY_LIMIT_MAX_AUTHORIZATIONS_PER_USER] = "MaxAuthorizationsPerUser",
        [POLICY_LIMIT_MAX_WORKERS] = "MaxWorkers",
        [POLICY_LIMIT_MAX_WORKERS_PER_USER] = "MaxWorkersPerUser",
        [POLICY_LIMIT_MAX_DIRECT_CONNECTIONS] = "MaxDirectConnections",
        [POLICY_LIMIT_MAX_DIRECT_CONNECTIONS_PER_USER] = "MaxDirectConnectionsPerUser",
        [POLICY_LIMIT_MAX_WATCHES] = "MaxWatches",
        [POLICY_LIMIT_MAX_WATCHES_PER_USER] = "MaxWatchesPerUser",
        [POLICY_LIMIT_MAX_UNREAD_FDS] = "MaxUnreadFds",
        [POLICY_LIMIT_MAX_UNREAD_FDS_PER_USER] = "MaxUnreadFdsPerUser",
};

const char *policy_limit_key_to_string(PolicyLimitKey k) {
        return k < _POLICY_LIMIT_MAX ? limit_key_names[k] : NULL;
}

/* The per-resource keys: a size (MaxMemorySizePerUser) or a count; unread
 * fds stay below what dbus-daemon lets a connection have in flight. */
static bool parse_limit_table_key(Parser *ps, SectionState *st, const char *key, const char *value) {
        PolicyLimits *l = &ps->policy->limits;
        unsigned k;
        uint64_t v, max = 1000000;
        bool size;
        int r;

        for (k = 0; k < _POLICY_LIMIT_MAX; k++)
                if (strcmp(key, limit_key_names[k]) == 0)
                        break;
        if (k == _POLICY_LIMIT_MAX)
                return false;
        if (st->limit_keys & (UINT32_C(1) << k)) {
                problem(ps, ps->line, "%s= is given twice in [Limits].", key);
                return true;
        }
        st->limit_keys |= UINT32_C(1) << k;

        size = k == POLICY_LIMIT_MAX_MEMORY_SIZE_PER_USER;
        if (k == POLICY_LIMIT_MAX_UNREAD_FDS || k == POLICY_LIMIT_MAX_UNREAD_FDS_PER_USER)
                max = POLICY_MAX_UNREAD_FDS_CEILING;
        r = policy_parse_size(value, &v);
        if (!size && r >= 0 && value[strspn(value, "0123456789")] != '\0')
                r = -EINVAL; /* counts take no suffix */
        if (r < 0 || v == 0 || (!size && v > max)) {
                if (size)
                        problem(ps, ps->line, "%s=%s is not valid; use a size above 0 such as 4096, 64K, 512M or 1G.",
                                key, value);
                else
                        problem(ps, ps->line, "%s=%s is not valid; use a number from 1 to %" PRIu64 "%s.", key, value,
                                max,
                                max < 1000000 ? " (dbus-daemon stops reading from a connection with 64 fds in "
                                                "flight)"
                                              : "");
                return true;
        }
        l->has |= UINT32_C(1) << k;
        l->values[k] = v;
        return true;
}

static void parse_limits_key(Parser *ps, SectionState *st, const char *key, const char *value) {
        PolicyLimits *l = &ps->policy->limits;
        uint64_t v;
        unsigned bit;
        int r;

        if (parse_limit_table_key(ps, st, key, value))
                return;
        if (strcmp(key, "MaxEntries") == 0)
                bit = KEY_MAX_ENTRIES;
        else if (strcmp(key, "MaxEntriesPerUser") == 0)
                bit = KEY_MAX_ENTRIES_PER_USER;
        else if (strcmp(key, "MaxMemorySize") == 0)
                bit = KEY_MAX_MEMORY_SIZE;
        else {
                problem(ps, ps->line,
                        "unknown key '%s' in [Limits]; it takes MaxEntries, MaxEntriesPerUser, MaxMemorySize and "
                        "the keys listed in fdbroker.policy(5).",
                        key);
                return;
        }
        if (st->keys & bit) {
                problem(ps, ps->line, "%s= is given twice in [Limits].", key);
                return;
        }
        st->keys |= bit;

        r = policy_parse_size(value, &v);
        if (bit != KEY_MAX_MEMORY_SIZE && r >= 0 && value[strspn(value, "0123456789")] != '\0')
                r = -EINVAL; /* counts take no suffix */
        if (r < 0 || v == 0 || (bit != KEY_MAX_MEMORY_SIZE && v > 1000000)) {
                problem(ps, ps->line, "%s=%s is not valid; use %s.", key, value,
                        bit == KEY_MAX_MEMORY_SIZE ? "a size above 0 such as 4096, 64K, 512M or 1G"
                                                   : "a number from 1 to 1000000");
                return;
        }
        switch (bit) {
        case KEY_MAX_ENTRIES:
                l->has_max_entries = true;
                l->max_entries = (unsigned) v;
                break;
        case KEY_MAX_ENTRIES_PER_USER:
                l->has_max_entries_per_user = true;
                l->max_entries_per_user = (unsigned) v;
                break;
        default:
                l->has_max_memory_size = true;
                l->max_memory_size = v;
        }
}

/* [Rule NAME]: a new rule, unless its name is not valid or taken, or
 * there are too many; then the section is bad. */
static void start_rule(Parser *ps, SectionState *st, const char *name) {
        Policy *p = ps->policy;
        PolicyRule *v;

        st->kind = SECTION_BAD;
        if (!rule_name_valid(name)) {
                problem(ps, ps->line, "rule name '%s' is not valid; use letters, digits and _ . : @ -.", name);
                return;
        }
        for (size_t i = 0; i < p->n_rules; i++)
                if (strcmp(p->rules[i].name, name) == 0) {
                        problem(ps, ps->line, "rule '%s' is already defined at %s:%u.", name, p->rules[i].file,
                                p->rules[i].line);
                        return;
                }
        if (p->n_rules >= POLICY_RULES_MAX) {
                problem(ps, ps->line, "too many rules (at most %d).", POLICY_RULES_MAX);
                return;
        }
        v = realloc(p->rules, (p->n_rules + 1) * sizeof *v);
        if (!v) {
                ps->oom = 1;
                return;
        }
        p->rules = v;
        v[p->n_rules] = (PolicyRule) {
                .name = strdup(name),
                .file = strdup(ps->path),
                .line = ps->line,
                .access = POLICY_ACCESS_ANY,
        };
        if (!v[p->n_rules].name || !v[p->n_rules].file) {
                rule_done(&v[p->n_rules]);
                ps->oom = 1;
                return;
        }
        st->rule = &v[p->n_rules++];
        st->kind = SECTION_RULE;
}

static void parse_header(Parser *ps, SectionState *st, char *line) {
        size_t len = strlen(line);
        char *inner;

        finish_section(ps, st);
        st->header_line = ps->line;
        if (line[len - 1] != ']') {
                problem(ps, ps->line, "section header does not end with ']'.");
                st->kind = SECTION_BAD;
                return;
        }
        line[len - 1] = '\0';
        inner = strip(line + 1);

        if (strcmp(inner, "Limits") == 0) {
                st->kind = SECTION_LIMITS;
                return;
        }
        if (strncmp(inner, "Rule", 4) == 0 && (inner[4] == ' ' || inner[4] == '\t')) {
                start_rule(ps, st, strip(inner + 5));
                return;
        }
        problem(ps, ps->line, "unknown section '[%s]'; use [Rule NAME] or [Limits].", inner);
        st->kind = SECTION_BAD;
}

/* Puts the problems of one file, from first on, in line order: a rule's
 * missing keys are found at its end, but belong to its header line. Stable,
 * so problems of one line keep the order they were found in. */
static void sort_problems(Parser *ps, size_t first) {
        if (ps->oom)
                return;
        for (size_t i = first + 1; i < ps->n_problems; i++) {
                char *msg = ps->problems[i];
                unsigned line = ps->problem_lines[i];
                size_t j = i;

                for (; j > first && ps->problem_lines[j - 1] > line; j--) {
                        ps->problems[j] = ps->problems[j - 1];
                        ps->problem_lines[j] = ps->problem_lines[j - 1];
                }
                ps->problems[j] = msg;
                ps->problem_lines[j] = line;
        }
}

/* A KEY=VALUE line, for the section it is in. */
static void parse_key_line(Parser *ps, SectionState *st, char *line) {
        char *eq = strchr(line, '=');

        if (!eq) {
                problem(ps, ps->line, "expected KEY=VALUE or a [section] header.");
                return;
        }
        *eq = '\0';
        char *key = strip(line), *value = eq + 1;
        cut_comment(value);
        value = strip(value);

        switch (st->kind) {
        case SECTION_NONE:
                problem(ps, ps->line, "'%s=' outside any section.", key);
                break;
        case SECTION_RULE:
                parse_rule_key(ps, st, key, value);
                break;
        case SECTION_LIMITS:
                parse_limits_key(ps, st, key, value);
                break;
        case SECTION_BAD:
                break; /* already reported at the header */
        }
}

static void parse_into(Parser *ps, const char *path, const char *text, size_t size) {
        SectionState st = {};
        size_t pos = 0, first_problem = ps->n_problems;

        ps->path = path;
        ps->line = 0;
        while (pos < size && !ps->oom) {
                const char *nl = memchr(text + pos, '\n', size - pos);
                size_t len = nl ? (size_t) (nl - (text + pos)) : size - pos;
                _cleanup_free_ char *buf = NULL;
                char *line;

                ps->line++;
                if (memchr(text + pos, '\0', len)) {
                        problem(ps, ps->line, "line contains a NUL byte.");
                        pos += len + 1;
                        continue;
                }
                buf = strndup(text + pos, len);
                pos += len + 1;
                if (!buf) {
                        ps->oom = 1;
                        break;
                }
                line = strip(buf);

                if (*line == '\0' || *line == '#' || *line == ';')
                        continue;
                if (*line == '[') {
                        /* The rule pointer moves when rules are reallocated:
                         * sections are finished before the next one starts. */
                        parse_header(ps, &st, line);
                        continue;
                }
                parse_key_line(ps, &st, line);
        }
        finish_section(ps, &st);
        sort_problems(ps, first_problem);
}

static int finish(Parser *ps, Policy **ret, char ***ret_problems) {
        free(ps->problem_lines);
        ps->problem_lines = NULL;
        if (ps->oom) {
                policy_problems_free(ps->problems);
                policy_free(ps->policy);
                return -ENOMEM;
        }
        if (ps->n_problems > 0) {
                *ret_problems = ps->problems;
                policy_free(ps->policy);
                return -EINVAL;
        }
        ps->policy->generation = ++last_generation;
        *ret = ps->policy;
        return 0;
}

int policy_parse_text(const char *path, const char *text, size_t size, Policy **ret, char ***ret_problems) {
        Parser ps = { .policy = calloc(1, sizeof(Policy)) };

        if (!ps.policy)
                return -ENOMEM;
        parse_into(&ps, path, text, size);
        return finish(&ps, ret, ret_problems);
}

/* ---- files ------------------------------------------------------------- */

typedef struct PolicyFile {
        char *base;
        char *path;
} PolicyFile;

static int compare_files(const void *a, const void *b) {
        return strcmp(((const PolicyFile *) a)->base, ((const PolicyFile *) b)->base);
}

static bool has_conf_suffix(const char *n) {
        size_t l = strlen(n);
        return l > 5 && strcmp(n + l - 5, ".conf") == 0 && n[0] != '.';
}

static void policy_files_free(PolicyFile *files, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(files[i].base);
                free(files[i].path);
        }
        free(files);
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Adds dir/base to files unless a file of that name is there already (an
 * earlier, higher-priority directory masks). */
static int add_file(PolicyFile **files, size_t *n, const char *dir, const char *base) {
        _cleanup_free_ char *b = NULL, *path = NULL;
        PolicyFile *v;

        for (size_t i = 0; i < *n; i++)
                if (strcmp((*files)[i].base, base) == 0)
                        return 0;
        b = strdup(base);
        if (!b || asprintf(&path, "%s/%s", dir, base) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        v = realloc(*files, (*n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        *files = v;
        v[(*n)++] = (PolicyFile) { .base = TAKE_PTR(b), .path = TAKE_PTR(path) };
        return 0;
}

/* The *.conf files of dirs, masked and sorted. Any failure, running out of
 * memory included, is an error: a policy read with files missing would
 * lack their rules, and fail open. */
static int collect_files(char *const *dirs, PolicyFile **ret, size_t *ret_n) {
        PolicyFile *files = NULL;
        size_t n = 0;
        int r = 0;

        for (char *const *d = dirs; *d && r >= 0; d++) {
                _cleanup_(closedirp) DIR *dir = opendir(*d);
                struct dirent *de;

                if (!dir) {
                        if (errno == ENOENT)
                                continue;
                        r = -errno;
                        break;
                }
                for (;;) {
                        errno = 0;
                        de = readdir(dir);
                        if (!de) {
                                if (errno != 0)
                                        r = -errno;
                                break;
                        }
                        if (!has_conf_suffix(de->d_name))
                                continue;
                        r = add_file(&files, &n, *d, de->d_name);
                        if (r < 0)
                                break;
                }
        }
        if (r < 0) {
                policy_files_free(files, n);
                return r;
        }
        if (n > 1)
                qsort(files, n, sizeof *files, compare_files);
        *ret = files;
        *ret_n = n;
        return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, cap = 4096;

        if (fd < 0)
                return -errno;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;
                if (size == cap) {
                        char *nb;
                        if (cap >= POLICY_FILE_MAX)
                                return -EFBIG;
                        nb = realloc(buf, cap *= 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                k = read(fd, buf + size, cap - size);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int policy_load(char *const *dirs, Policy **ret, char ***ret_problems) {
        Parser ps = { .policy = calloc(1, sizeof(Policy)) };
        PolicyFile *files = NULL;
        size_t n = 0;
        int r;

        if (!ps.policy)
                return -ENOMEM;
        r = collect_files(dirs, &files, &n);
        if (r < 0) {
                policy_free(ps.policy);
                return r;
        }
        ps.policy->files = calloc(n + 1, sizeof(char *));
        if (!ps.policy->files)
                ps.oom = 1;

        for (size_t i = 0; i < n && !ps.oom; i++) {
                _cleanup_free_ char *text = NULL;
                size_t size = 0;

                ps.policy->files[i] = strdup(files[i].path);
                if (!ps.policy->files[i]) {
                        ps.oom = 1;
                        break;
                }
                r = read_file(files[i].path, &text, &size);
                if (r == -ENOMEM) {
                        ps.oom = 1;
                        break;
                }
                if (r < 0) {
                        ps.path = files[i].path;
                        problem(&ps, 0, "cannot read: %s.", strerror(-r));
                        continue;
                }
                parse_into(&ps, files[i].path, text, size);
        }
        policy_files_free(files, n);
        return finish(&ps, ret, ret_problems);
}

/* ---- deciding ---------------------------------------------------------- */

void policy_decide(const Policy *p, PolicyAction action, const char *subject_name, const Identity *id,
                   PolicyDecision *ret) {
        *ret = (PolicyDecision) { .access = POLICY_ACCESS_ANY };
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++) {
                const PolicyRule *r = &p->rules[i];

                if (!(r->actions & (1U << action)))
                        continue;
                if (r->match && !policy_glob_match(r->match, subject_name))
                        continue;
                if (!acl_matches(r->subjects, r->n_subjects, id))
                        continue;
                *ret = (PolicyDecision) { .matched = true, .result = r->result, .access = r->access, .rule = r->name };
                return;
        }
}
