/* acl.h: entry access-control lists, with no bus in them.
 *
 * An ACL is the list of subjects an entry's depositor named in the `allow`
 * option (SPEC §1). Subjects are parsed once, at deposit time: user and group
 * names are resolved to ids then, so a later rename cannot widen an entry.
 * Matching takes an Identity the caller of this library built from what the
 * bus vouched for; nothing here looks at /proc. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The most subjects one `allow` list may hold. */
#define ACL_SUBJECTS_MAX 64

typedef enum SubjectKind {
        SUBJECT_UID,
        SUBJECT_GID,
        SUBJECT_LABEL,
        SUBJECT_EVERYONE,
} SubjectKind;

typedef struct Subject {
        SubjectKind kind;
        uid_t uid;          /* SUBJECT_UID */
        gid_t gid;          /* SUBJECT_GID */
        char *label;        /* SUBJECT_LABEL, owned */
} Subject;

typedef struct Identity {
        uid_t uid;
        const gid_t *gids;  /* supplementary gids, borrowed */
        size_t n_gids;
        const char *label;  /* security label or NULL, borrowed */
} Identity;

/* Parses one subject string: user:NAME, uid:N, group:NAME, gid:N,
 * label:CONTEXT or everyone. Returns 0, or -EINVAL for a malformed subject,
 * -ENOENT for an unknown user or group name, -ENOMEM. ret is untouched on
 * failure. */
int acl_subject_parse(const char *text, Subject *ret);

void acl_subject_done(Subject *s);

/* The canonical text of a subject, which acl_subject_parse() reads back to
 * the same subject: uid:N, gid:N, label:CONTEXT or everyone. Returns a new
 * string or NULL on OOM. */
char *acl_subject_format(const Subject *s);

/* Frees an array of n subjects (and the array). Accepts NULL. */
void acl_subjects_free(Subject *s, size_t n);

bool acl_subject_matches(const Subject *s, const Identity *id);

/* True when any of the n subjects matches id. */
bool acl_matches(const Subject *subjects, size_t n, const Identity *id);
