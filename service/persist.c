/* persist.c: the fd store and the state file. See persist.h.
 *
 * The state file is text, one entry per line:
 *
 *   E ID STORE-ID NAME OWNER-UID ONCE CREATED-USEC EXPIRES-USEC MEMORY DESCRIPTION ALLOW
 *
 * An entry whose depositor had supplementary gids is preceded by
 *
 *   G GID,GID,...
 *
 * (reopenings run with them, broker.c). A reader that does not know "G"
 * lines drops them with a warning and keeps the entry: the format stays
 * readable both ways.
 *
 * STORE-ID names the fd in the fd store (FDNAME=e<STORE-ID>); entries that
 * share one open file share it.
 *
 * Strings are %XX-escaped except [A-Za-z0-9_./@:-]; an empty string is
 * written as "="; ALLOW is a ','-joined list of canonical subjects. */
#include "persist.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kcmp.h>
#include <sys/syscall.h>

#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "fdclose.h"
#include "log.h"
#include "names.h"

#define STATE_HEADER "# fdbroker state 2"

int persist_init(Persist *ps, const char *runtime_dir) {
        *ps = (Persist) { .fdstore = getenv("NOTIFY_SOCKET") != NULL };
        if (runtime_dir && asprintf(&ps->state_path, "%s/entries.state", runtime_dir) < 0)
                return -ENOMEM;
        return 0;
}

void persist_done(Persist *ps) {
        free(ps->state_path);
        ps->state_path = NULL;
}

bool persist_enabled(const Persist *ps) {
        return ps->state_path && ps->fdstore;
}

/* True when fds a and b are the same open file description. */
static bool same_open_file(int a, int b) {
        pid_t pid = getpid();
        return syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

/* A persistent entry of reg, other than e, whose store name is id. */
static const Entry *find_store_sharer(const Registry *reg, const Entry *e, uint64_t id) {
        _cleanup_free_ Entry **all = NULL;
        size_t n;

        if (registry_all(reg, &all, &n) < 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (all[i] != e && all[i]->persistent && all[i]->store_id == id)
                        return all[i];
        return NULL;
}

int persist_store_fd(const Persist *ps, const Registry *reg, Entry *e) {
        _cleanup_free_ Entry **all = NULL;
        char msg[96];
        size_t n;
        int r;

        e->store_id = e->id;
        if (!persist_enabled(ps))
                return 0;

        /* systemd keeps one copy of an open file and ignores a second
         * FDSTORE of it: share the name of the entry that stored it. */
        r = registry_all(reg, &all, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (all[i] != e && all[i]->persistent && all[i]->store_id != 0 && same_open_file(all[i]->fd, e->fd)) {
                        e->store_id = all[i]->store_id;
                        return 0;
                }

        /* FDPOLL=0: a pipe whose writer closed, or a socket whose peer did,
         * is still an entry; systemd must not drop it on POLLHUP. */
        snprintf(msg, sizeof msg, "FDSTORE=1\nFDPOLL=0\nFDNAME=e%" PRIu64, e->store_id);
        return sd_pid_notify_with_fds(0, false, msg, &e->fd, 1);
}

int persist_remove_fd(const Persist *ps, const Registry *reg, const Entry *e) {
        if (!persist_enabled(ps) || e->store_id == 0)
                return 0;
        if (find_store_sharer(reg, e, e->store_id))
                return 0;
        return sd_notifyf(false, "FDSTOREREMOVE=1\nFDNAME=e%" PRIu64, e->store_id);
}

static bool plain_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_./@:-", c);
}

static void write_escaped(FILE *f, const char *s) {
        if (!*s) {
                fputc('=', f);
                return;
        }
        for (; *s; s++)
                if (plain_char(*s))
                        fputc(*s, f);
                else
                        fprintf(f, "%%%02X", (unsigned char) *s);
}

static int unescape(const char *s, char **ret) {
        char *out, *o;

        if (strcmp(s, "=") == 0)
                return (*ret = strdup("")) ? 0 : -ENOMEM;
        out = o = malloc(strlen(s) + 1);
        if (!out)
                return -ENOMEM;
        for (; *s; s++) {
                if (*s == '%') {
                        unsigned v;
                        if (sscanf(s + 1, "%2x", &v) != 1 || v == 0 || !s[1] || !s[2]) {
                                free(out);
                                return -EINVAL;
                        }
                        *o++ = (char) v;
                        s += 2;
                } else
                        *o++ = *s;
        }
        *o = '\0';
        *ret = out;
        return 0;
}

static int write_entry(FILE *f, const Entry *e) {
        for (size_t i = 0; i < e->n_depositor_gids; i++)
                fprintf(f, "%s%u", i == 0 ? "G " : ",", (unsigned) e->depositor_gids[i]);
        if (e->n_depositor_gids > 0)
                fputc('\n', f);
        fprintf(f, "E %" PRIu64 " %" PRIu64 " ", e->id, e->store_id);
        write_escaped(f, e->name);
        fprintf(f, " %u %d %" PRIu64 " %" PRIu64 " %" PRIu64 " ", (unsigned) e->owner_uid, e->once ? 1 : 0,
                e->created_usec, e->expires_usec, e->memory);
        write_escaped(f, entry_description(e));
        fputc(' ', f);
        if (e->n_allow == 0)
                fputc('-', f);
        for (size_t i = 0; i < e->n_allow; i++) {
                _cleanup_free_ char *t = acl_subject_format(&e->allow[i]);
                if (!t)
                        return -ENOMEM;
                if (i > 0)
                        fputc(',', f);
                write_escaped(f, t); /* ',' is escaped inside */
        }
        fputc('\n', f);
        return 0;
}

int persist_save(const Persist *ps, const Registry *reg) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_free_ Entry **all = NULL;
        size_t n;
        FILE *f;
        int fd, r;

        if (!persist_enabled(ps))
                return 0;
        r = registry_all(reg, &all, &n);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s.tmp", ps->state_path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                close(fd);
                unlink(tmp);
                return r;
        }
        fputs(STATE_HEADER "\n", f);
        for (size_t i = 0; i < n && r >= 0; i++)
                if (all[i]->persistent)
                        r = write_entry(f, all[i]);
        if (fflush(f) != 0 && r >= 0)
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, ps->state_path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

typedef struct PassedFd {
        uint64_t id;
        int fd;
        bool used;
} PassedFd;

static int parse_allow(const char *field, Entry *e) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;
        size_t n = 1;

        if (strcmp(field, "-") == 0)
                return 0;
        for (const char *p = field; *p; p++)
                n += *p == ',';
        if (n > ACL_SUBJECTS_MAX)
                return -EINVAL;
        e->allow = calloc(n, sizeof *e->allow);
        copy = strdup(field);
        if (!e->allow || !copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                _cleanup_free_ char *t = NULL;
                int r = unescape(tok, &t);
                if (r < 0)
                        return r;
                r = acl_subject_parse(t, &e->allow[e->n_allow]);
                if (r < 0)
                        return r;
                e->n_allow++;
        }
        return 0;
}

/* Parses a "G ..." line's gids into a new array. */
static int parse_gids(const char *line, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *gids = NULL;
        size_t n = 1;
        const char *p = line + 2;

        for (const char *c = p; *c; c++)
                n += *c == ',';
        if (n > ENTRY_GIDS_MAX)
                return -EINVAL;
        gids = calloc(n, sizeof(gid_t));
        if (!gids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char *end;
                unsigned long v;

                errno = 0;
                v = strtoul(p, &end, 10);
                if (errno != 0 || end == p || v >= UINT32_MAX || (*end != ',' && *end != '\n' && *end != '\0'))
                        return -EINVAL;
                gids[i] = (gid_t) v;
                p = *end == ',' ? end + 1 : end;
        }
        *ret = TAKE_PTR(gids);
        *ret_n = n;
        return 0;
}

/* Parses one "E ..." line into a new entry without an fd. */
static int parse_line(char *line, Entry **ret) {
        _cleanup_(entry_freep) Entry *e = NULL;
        _cleanup_free_ char *name = NULL, *description = NULL;
        char *field[11], *save = NULL;
        size_t n = 0;
        unsigned owner;
        uint64_t id, store_id;
        int once, r;

        for (char *tok = strtok_r(line, " \n", &save); tok && n < 11; tok = strtok_r(NULL, " \n", &save))
                field[n++] = tok;
        if (n != 11 || strcmp(field[0], "E") != 0)
                return -EINVAL;
        if (sscanf(field[1], "%" SCNu64, &id) != 1 || id == 0 || sscanf(field[2], "%" SCNu64, &store_id) != 1 ||
            store_id == 0)
                return -EINVAL;
        /* Shift: the remaining fields start at field[2]. */
        for (size_t i = 2; i < 10; i++)
                field[i] = field[i + 1];
        r = unescape(field[2], &name);
        if (r < 0)
                return r;
        if (!name_is_valid(name, NULL))
                return -EINVAL;
        e = entry_new(name);
        if (!e)
                return -ENOMEM;
        e->id = id;
        e->store_id = store_id;
        if (sscanf(field[3], "%u", &owner) != 1 || sscanf(field[4], "%d", &once) != 1 ||
            sscanf(field[5], "%" SCNu64, &e->created_usec) != 1 || sscanf(field[6], "%" SCNu64, &e->expires_usec) != 1 ||
            sscanf(field[7], "%" SCNu64, &e->memory) != 1)
                return -EINVAL;
        e->owner_uid = owner;
        e->once = once != 0;
        e->persistent = true;
        r = unescape(field[8], &description);
        if (r < 0)
                return r;
        if (*description)
                e->description = TAKE_PTR(description);
        r = parse_allow(field[9], e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

typedef void (*RestoredFn)(Entry *e, void *userdata);

/* Looks at one fd systemd passed at start. One of ours (FDNAME=e<STORE-ID>)
 * is appended to passed; the direct socket is main.c's and left alone; any
 * other is closed and dropped from the fd store. Consumes fd unless it is
 * the direct socket. */
static void take_passed_fd(const Persist *ps, Registry *reg, const char *nm, int fd, PassedFd *passed,
                           size_t *n_passed) {
        uint64_t id;
        char tail;

        if (nm && strcmp(nm, "direct") == 0)
                return; /* the direct socket (fdbroker.socket): main.c took it */
        if (!nm || sscanf(nm, "e%" SCNu64 "%c", &id, &tail) != 1) {
                log_warning("dropping a passed fd named '%s': not one of ours", nm ? nm : "(none)");
                fdclose_caller_fd(fd);
                if (nm && persist_enabled(ps))
                        (void) sd_notifyf(false, "FDSTOREREMOVE=1\nFDNAME=%s", nm);
                return;
        }
        passed[(*n_passed)++] = (PassedFd) { .id = id, .fd = fd };
        if (id >= reg->next_id)
                reg->next_id = id + 1; /* never reuse a name still in the store */
}

/* Takes every fd systemd passed at start into a new array of ours
 * (take_passed_fd). On failure every passed fd is closed. */
static int take_passed_fds(const Persist *ps, Registry *reg, PassedFd **ret, size_t *ret_n) {
        _cleanup_free_ PassedFd *passed = NULL;
        char **names = NULL;
        size_t n_passed = 0;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0) {
                log_warning("could not take the fds passed at start: %s", strerror(-n));
                n = 0;
        }
        if (n > 0) {
                passed = calloc((size_t) n, sizeof *passed);
                if (!passed) {
                        for (int i = 0; i < n; i++)
                                fdclose_caller_fd(SD_LISTEN_FDS_START + i);
                        strv_freep(&names);
                        return -ENOMEM;
                }
        }
        for (int i = 0; i < n; i++)
                take_passed_fd(ps, reg, names ? names[i] : NULL, SD_LISTEN_FDS_START + i, passed, &n_passed);
        strv_freep(&names);

        *ret = TAKE_PTR(passed);
        *ret_n = n_passed;
        return 0;
}

/* The state file, or NULL when there is none (or it cannot be read: said). */
static FILE *open_state_file(const Persist *ps) {
        FILE *f = NULL;

        if (ps->state_path)
                f = fopen(ps->state_path, "re");
        if (!f && ps->state_path && errno != ENOENT)
                log_warning("could not read %s: %s", ps->state_path, strerror(errno));
        return f;
}

/* A "G" line: its gids replace any an earlier "G" line left for the next
 * entry; unreadable ones leave none. */
static void take_gids_line(const Persist *ps, unsigned lineno, const char *line, gid_t **gids, size_t *n_gids) {
        free(*gids);
        *gids = NULL;
        *n_gids = 0;
        if (parse_gids(line, gids, n_gids) < 0)
                log_warning("%s:%u: unreadable gids, the next entry reopens without them", ps->state_path, lineno);
}

/* Gives e its own O_CLOEXEC duplicate of the stored fd its store id names
 * (entries sharing an open file share its stored fd) and marks that stored
 * fd used. Borrows the passed fds. e->fd stays -1 when none matches. */
static void attach_stored_fd(Entry *e, PassedFd *passed, size_t n_passed) {
        for (size_t i = 0; i < n_passed; i++)
                if (passed[i].id == e->store_id) {
                        e->fd = fcntl(passed[i].fd, F_DUPFD_CLOEXEC, 3);
                        passed[i].used = true;
                        break;
                }
}

/* Rebuilds one parsed entry around its stored fd and hands it to restored().
 * Consumes e (dropped with a warning when it cannot be restored). Returns 1
 * when restored, 0 when dropped. */
static int restore_entry(Registry *reg, Entry *e, PassedFd *passed, size_t n_passed, RestoredFn restored,
                         void *userdata) {
        attach_stored_fd(e, passed, n_passed);
        if (e->fd < 0) {
                log_warning("entry '%s' has no fd in the fd store; dropped", e->name);
                entry_free(e);
                return 0;
        }
        if (fdinfo_get_flags(e->fd, &e->flags) < 0 || fdinfo_classify(e->fd, &e->kind) < 0 ||
            registry_get(reg, e->name)) {
                log_warning("entry '%s' could not be restored; dropped", e->name);
                entry_free(e);
                return 0;
        }
        if (e->id >= reg->next_id)
                reg->next_id = e->id + 1;
        restored(e, userdata);
        return 1;
}

/* Reads the state file f (may be NULL) line by line and restores each entry
 * it describes. Returns how many were restored. */
static int restore_entries(const Persist *ps, Registry *reg, FILE *f, PassedFd *passed, size_t n_passed,
                           RestoredFn restored, void *userdata) {
        char *line = NULL;
        gid_t *gids = NULL; /* from a "G" line, for the next entry */
        size_t n_gids = 0;
        size_t cap = 0;
        unsigned lineno = 0;
        int restored_count = 0;

        while (f && getline(&line, &cap, f) > 0) {
                Entry *e = NULL;

                lineno++;
                if (line[0] == '#' || line[0] == '\n')
                        continue;
                if (line[0] == 'G' && line[1] == ' ') {
                        take_gids_line(ps, lineno, line, &gids, &n_gids);
                        continue;
                }
                if (parse_line(line, &e) < 0) {
                        log_warning("%s:%u: unreadable entry, dropped", ps->state_path, lineno);
                        free(gids);
                        gids = NULL;
                        n_gids = 0;
                        continue;
                }
                e->depositor_gids = TAKE_PTR(gids);
                e->n_depositor_gids = n_gids;
                n_gids = 0;
                restored_count += restore_entry(reg, e, passed, n_passed, restored, userdata);
        }
        free(line);
        free(gids);
        return restored_count;
}

/* Closes every stored fd; those no entry used are also dropped from the fd
 * store. Consumes the passed fds. */
static void release_passed_fds(const Persist *ps, const PassedFd *passed, size_t n_passed) {
        for (size_t i = 0; i < n_passed; i++) {
                if (!passed[i].used) {
                        log_warning("dropping stored fd e%" PRIu64 ": no entry describes it", passed[i].id);
                        if (persist_enabled(ps))
                                (void) sd_notifyf(false, "FDSTOREREMOVE=1\nFDNAME=e%" PRIu64, passed[i].id);
                }
                fdclose_caller_fd(passed[i].fd);
        }
}

int persist_restore(const Persist *ps, const Registry *reg_const, void (*restored)(Entry *e, void *userdata),
                    void *userdata) {
        Registry *reg = (Registry *) reg_const;
        _cleanup_free_ PassedFd *passed = NULL;
        size_t n_passed = 0;
        FILE *f;
        int r, restored_count;

        r = take_passed_fds(ps, reg, &passed, &n_passed);
        if (r < 0)
                return r;
        f = open_state_file(ps);
        restored_count = restore_entries(ps, reg, f, passed, n_passed, restored, userdata);
        if (f)
                fclose(f);
        release_passed_fds(ps, passed, n_passed);
        return restored_count;
}
