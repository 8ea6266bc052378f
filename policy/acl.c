/* acl.c: parsing and matching of entry ACL subjects. See acl.h. */
#include "acl.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_id(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v >= UINT32_MAX) /* (uid_t) -1 is not an id */
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

int acl_subject_parse(const char *text, Subject *ret) {
        Subject s = {};
        const char *v;
        unsigned id;
        int r;

        if (strcmp(text, "everyone") == 0)
                s.kind = SUBJECT_EVERYONE;
        else if ((v = startswith(text, "uid:"))) {
                r = parse_id(v, &id);
                if (r < 0)
                        return r;
                s.kind = SUBJECT_UID;
                s.uid = id;
        } else if ((v = startswith(text, "gid:"))) {
                r = parse_id(v, &id);
                if (r < 0)
                        return r;
                s.kind = SUBJECT_GID;
                s.gid = id;
        } else if ((v = startswith(text, "user:"))) {
                struct passwd pw, *res = NULL;
                char buf[4096];

                if (*v == '\0')
                        return -EINVAL;
                r = getpwnam_r(v, &pw, buf, sizeof buf, &res);
                if (r != 0)
                        return r == ERANGE ? -EINVAL : -r;
                if (!res)
                        return -ENOENT;
                s.kind = SUBJECT_UID;
                s.uid = res->pw_uid;
        } else if ((v = startswith(text, "group:"))) {
                struct group gr, *res = NULL;
                char buf[16384];

                if (*v == '\0')
                        return -EINVAL;
                r = getgrnam_r(v, &gr, buf, sizeof buf, &res);
                if (r != 0)
                        return r == ERANGE ? -EINVAL : -r;
                if (!res)
                        return -ENOENT;
                s.kind = SUBJECT_GID;
                s.gid = res->gr_gid;
        } else if ((v = startswith(text, "label:"))) {
                if (*v == '\0')
                        return -EINVAL;
                s.kind = SUBJECT_LABEL;
                s.label = strdup(v);
                if (!s.label)
                        return -ENOMEM;
        } else
                return -EINVAL;

        *ret = s;
        return 0;
}

char *acl_subject_format(const Subject *s) {
        char *t = NULL;
        int r = -1;

        switch (s->kind) {
        case SUBJECT_EVERYONE:
                return strdup("everyone");
        case SUBJECT_UID:
                r = asprintf(&t, "uid:%u", (unsigned) s->uid);
                break;
        case SUBJECT_GID:
                r = asprintf(&t, "gid:%u", (unsigned) s->gid);
                break;
        case SUBJECT_LABEL:
                r = asprintf(&t, "label:%s", s->label);
                break;
        }
        return r < 0 ? NULL : t;
}

void acl_subject_done(Subject *s) {
        if (!s)
                return;
        free(s->label);
        s->label = NULL;
}

void acl_subjects_free(Subject *s, size_t n) {
        if (!s)
                return;
        for (size_t i = 0; i < n; i++)
                acl_subject_done(&s[i]);
        free(s);
}

bool acl_subject_matches(const Subject *s, const Identity *id) {
        switch (s->kind) {
        case SUBJECT_EVERYONE:
                return true;
        case SUBJECT_UID:
                return s->uid == id->uid;
        case SUBJECT_GID:
                for (size_t i = 0; i < id->n_gids; i++)
                        if (id->gids[i] == s->gid)
                                return true;
                return false;
        case SUBJECT_LABEL:
                return id->label && strcmp(id->label, s->label) == 0;
        }
        return false;
}

bool acl_matches(const Subject *subjects, size_t n, const Identity *id) {
        for (size_t i = 0; i < n; i++)
                if (acl_subject_matches(&subjects[i], id))
                        return true;
        return false;
}
