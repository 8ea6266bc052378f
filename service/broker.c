/* broker.c: the org.fdbroker.Broker1 object: vtable, handlers, waits.
 *
 * Every handler first learns who calls (peers.c; it may park the call until
 * the bus answered), then parses and validates all of its input, then
 * decides whether the caller may do it, and only then acts. fds read from a
 * message are borrowed from it; the broker keeps its own F_DUPFD_CLOEXEC
 * duplicates (or narrowed reopenings), owned by the entry. */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accounting.h"
#include "acl.h"
#include "cleanup.h"
#include "config.h"
#include "decide.h"
#include "deposit.h"
#include "direct.h"
#include "fdinfo.h"
#include "log.h"
#include "names.h"
#include "options.h"
#include "peers.h"
#include "persist.h"
#include "policy.h"
#include "polkit.h"
#include "protocol.h"
#include "registry.h"
#include "openpath.h"
#include "watch.h"
#include "worker.h"

#define OBJECT_PATH FDB_OBJECT_PATH
#define INTERFACE FDB_INTERFACE

#define ERROR_NOT_FOUND FDB_ERROR_NAME_NOT_FOUND
#define ERROR_EXISTS FDB_ERROR_NAME_EXISTS
#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED
#define ERROR_NOT_SUPPORTED FDB_ERROR_NAME_NOT_SUPPORTED
#define ERROR_BUSY FDB_ERROR_NAME_BUSY

#define FDS_PER_CALL_MAX FDB_FDS_PER_CALL_MAX
#define WAITS_PER_PEER_MAX 16

struct Waiter {
        Waiter *prev, *next;          /* the broker's list, oldest first */
        Waiter *peer_prev, *peer_next;
        Broker *broker;
        Peer *peer;
        sd_bus_message *message;      /* the parked Retrieve call */
        char *name;
        int accmode;                  /* -1: as stored */
        bool reopen;
        sd_event_source *timer;
};

struct Broker {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *object;
        Registry reg;
        Accounting acct;              /* what each uid holds (accounting.h) */
        Peers peers;
        Polkit polkit;
        Policy *policy;               /* admin rules; NULL: none */
        Persist persist;
        Worker *worker;               /* opens on callers' behalf */
        Direct direct;                /* peer-to-peer connections (SPEC §5) */
        uint64_t n_calls;             /* method calls seen, for idle detection */
        unsigned fd_budget;           /* entries the open-file limit leaves room for */
        bool exiting;                 /* idle exit decided: take no new work */
        Waiter *waiters, *waiters_tail;
        Watches watches;              /* Watch calls: who hears of entries (watch.c) */
};

static uint64_t now_usec(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- authorization ----------------------------------------------------- */

/* What policy/decide.c needs to know of e, borrowed from it. */
static DecideEntry entry_view(const Entry *e) {
        return (DecideEntry) { .name = e->name, .owner_uid = e->owner_uid, .allow = e->allow, .n_allow = e->n_allow };
}

/* Carries out decision d for the caller p of m, about what (an entry name,
 * or a path for open-path). Returns 1 when allowed; 0 while polkit is asked
 * (the handler returns 1 and runs again with the answer); -ENOENT, error
 * untouched, when the caller may not learn that the entry exists (answer
 * NotFound, or wait); other negative errno with error set when refused. */
static int authorize(Broker *b, sd_bus_message *m, Peer *p, const Decision *d, const char *what,
                     peer_resume_fn handler, sd_bus_error *error) {
        const char *action = policy_action_to_string(d->action);
        char id[64];
        int r;

        switch (d->kind) {
        case DECISION_ALLOW:
                return 1;
        case DECISION_HIDDEN:
                return -ENOENT;
        case DECISION_DENY:
                log_info("%s (uid %u): rule '%s' refuses %s of '%s'", p->unique_name, (unsigned) p->uid, d->rule,
                         action, what);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Rule '%s' does not allow %s of '%s'.",
                                         d->rule, action, what);
        case DECISION_ASK_POLKIT:
                break;
        }
        snprintf(id, sizeof id, "org.fdbroker.%s", action);
        r = polkit_check(&b->polkit, m, p, id, d->action == POLICY_ACTION_OPEN_PATH ? "path" : "name", what,
                         policy_result_to_string(d->polkit_result), handler, error);
        if (r < 0 && d->refusal_hidden && sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED)) {
                /* polkit said no to a caller who could not have known the
                 * entry exists: its no must not tell. (A challenge is
                 * passed on, as it always was: the auth_* rule that asked
                 * lets this caller see the entry.) */
                sd_bus_error_free(error);
                return -ENOENT;
        }
        return r;
}

static int not_found(sd_bus_error *error, const char *name) {
        return sd_bus_error_setf(error, ERROR_NOT_FOUND, "No entry named '%s' that you may retrieve.", name);
}

/* Remove's NotFound: the same for a missing entry and a hidden one. */
static int not_found_to_remove(sd_bus_error *error, const char *name) {
        return sd_bus_error_setf(error, ERROR_NOT_FOUND, "No entry named '%s' that you may remove.", name);
}

/* ---- entries ----------------------------------------------------------- */

/* Rewrites the state file of persistent entries; a failure is logged, since
 * the entries themselves are fine until the next restart. */
static void save_state(Broker *b) {
        int r = persist_save(&b->persist, &b->reg);
        if (r < 0)
                log_error("could not save the state file: %s", strerror(-r));
}

/* Drops e, already out of the registry: off its depositor's list, out of
 * the fd store, freed. */
static bool watcher_may_see(const Peer *p, const Entry *e, void *userdata);

static void forget_entry(Broker *b, Entry *e, const char *why) {
        Peer *p = e->peer;

        watches_entry_removed(&b->watches, e, watch_reason_from_why(why), watcher_may_see, b);

        if (p) {
                if (e->peer_prev)
                        e->peer_prev->peer_next = e->peer_next;
                else
                        p->entries = e->peer_next;
                if (e->peer_next)
                        e->peer_next->peer_prev = e->peer_prev;
        }
        log_info("removed '%s' (owner uid %u): %s", e->name, (unsigned) e->owner_uid, why);
        if (e->persistent) {
                /* Metadata first: a crash in between leaves an fd without
                 * metadata, which the next start drops. */
                save_state(b);
                (void) persist_remove_fd(&b->persist, &b->reg, e);
        }
        entry_free(e);
}

static void broker_remove_entry(Broker *b, Entry *e, const char *why) {
        registry_unlink(&b->reg, e);
        forget_entry(b, e, why);
}

static int on_expire_entry(sd_event_source *s, uint64_t usec, void *userdata) {
        Entry *e = userdata;
        broker_remove_entry(e->broker, e, "expired");
        return 0;
}

/* Removes e when usec have passed (monotonic: wall-clock steps do not
 * shorten or stretch it). */
static int arm_expiry(Broker *b, Entry *e, uint64_t usec) {
        return sd_event_add_time_relative(b->event, &e->expire_source, CLOCK_MONOTONIC, usec, 0, on_expire_entry, e);
}

/* One {sv} of the info dictionary. Built with append_basic rather than a
 * format string per key: the dictionary is most of what a Retrieve costs
 * the broker (bench/README.md). */
static int append_info_item(sd_bus_message *reply, const char *key, char type, const void *value) {
        const char sig[2] = { type, '\0' };
        int r;

        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', sig);
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, type, value);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int append_info(sd_bus_message *reply, const Entry *e) {
        uint32_t owner = (uint32_t) e->owner_uid;
        int sealed = e->kind == FD_KIND_MEMFD && fdinfo_is_sealed(e->fd);
        uint64_t size = 0;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_info_item(reply, "kind", 's', fdkind_to_string(e->kind));
        if (r >= 0 && fdkind_has_size(e->kind) && fdinfo_get_size(e->fd, &size) >= 0)
                r = append_info_item(reply, "size", 't', &size);
        if (r >= 0)
                r = append_info_item(reply, "owner-uid", 'u', &owner);
        if (r >= 0)
                r = append_info_item(reply, "access", 's', fdinfo_accmode_to_string(e->flags));
        if (r >= 0)
                r = append_info_item(reply, "sealed", 'b', &sealed);
        if (r >= 0)
                r = append_info_item(reply, "lifetime", 's', e->persistent ? "persistent" : "connection");
        if (r >= 0)
                r = append_info_item(reply, "description", 's', entry_description(e));
        if (r >= 0)
                r = append_info_item(reply, "created-usec", 't', &e->created_usec);
        if (r >= 0)
                r = append_info_item(reply, "expires-usec", 't', &e->expires_usec);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* Decides the fd handed to a retriever: never wider than the stored one,
 * nor than cap (a rule's Access=, or POLICY_ACCESS_ANY). *ret_want is -1
 * when e->fd itself is handed out (sd-bus sends a duplicate), else the
 * access mode of the reopening to make (on a worker: reopen_op()). */
static int plan_retrieved_fd(const Entry *e, const RetrieveOptions *o, int cap, int *ret_want, sd_bus_error *error) {
        int stored = e->flags & O_ACCMODE;
        int want = o->accmode >= 0 ? o->accmode : stored;

        if (cap != POLICY_ACCESS_ANY && cap != O_RDWR && want != cap) {
                if (o->accmode >= 0 || stored != O_RDWR)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Policy lets you have '%s' only %s.", e->name,
                                                 fdinfo_accmode_to_string(cap));
                want = cap; /* narrow a read-write entry to the cap */
        }

        if (want != stored && stored != O_RDWR)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Entry '%s' is %s; it cannot be handed out %s.", e->name,
                                         fdinfo_accmode_to_string(stored), fdinfo_accmode_to_string(want));

        if (o->reopen && e->kind != FD_KIND_MEMFD && e->kind != FD_KIND_REGULAR)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "Option 'reopen' works on regular files and memfds; '%s' is a %s.", e->name,
                                         fdkind_to_string(e->kind));
        if (want != stored && !fdkind_can_reopen(e->kind))
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "Entry '%s' is a %s; it cannot be reopened %s.",
                                         e->name, fdkind_to_string(e->kind), fdinfo_accmode_to_string(want));

        *ret_want = !o->reopen && want == stored ? -1 : want;
        return 0;
}

/* A worker op reopening e->fd with access want, as e's depositor. */
static int reopen_op(const Entry *e, int want, WorkerOp *ret) {
        WorkerOp op = WORKER_OP_INIT;

        op.type = WORKER_OP_REOPEN;
        op.kind = e->kind;
        op.accmode = want;
        op.as_depositor = true;
        op.uid = e->owner_uid;
        op.fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 3);
        if (op.fd < 0)
                return -errno;
        if (e->n_depositor_gids > 0) {
                op.gids = malloc(e->n_depositor_gids * sizeof(gid_t));
                if (!op.gids) {
                        safe_close(op.fd);
                        return -ENOMEM;
                }
                memcpy(op.gids, e->depositor_gids, e->n_depositor_gids * sizeof(gid_t));
                op.n_gids = e->n_depositor_gids;
        }
        *ret = op;
        return 0;
}

/* Turns a failed reopening of name into one of SPEC §1's errors. */
static int reopen_failed(sd_bus_error *error, const char *name, uid_t depositor, int accmode, int r) {
        const char *how = fdinfo_accmode_to_string(accmode);

        switch (r) {
        case -EXDEV:
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "'%s' lives on a pseudo file system (/proc, /sys, debugfs, ...) whose open "
                                         "checks who opens; the broker never reopens there on anyone's behalf.",
                                         name);
        case -EOPNOTSUPP:
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "'%s' cannot be reopened %s.", name, how);
        case -EWOULDBLOCK:
                return sd_bus_error_setf(error, ERROR_BUSY,
                                         "'%s' did not open: a lease on it is being broken; try again later.", name);
        case -EACCES:
        case -EPERM:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "The depositor of '%s' (uid %u) may not open it %s now; the broker reopens "
                                         "with the depositor's credentials only.",
                                         name, (unsigned) depositor, how);
        case -ENOTRECOVERABLE:
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "The broker cannot take on the credentials of uid %u to reopen '%s' (it "
                                         "lacks CAP_SETUID/CAP_SETGID).",
                                         (unsigned) depositor, name);
        case -EMFILE:
        case -ENFILE:
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot reopen '%s': the broker is out of file descriptors.", name);
        default:
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "'%s' could not be reopened %s: %s.", name,
                                         how, strerror(-r));
        }
}

/* What a Retrieve or RetrieveMany waiting for its reopenings remembers:
 * entries by name and id (any of them may go meanwhile), and which op
 * reopens each. */
/* A reply carrying n fds went to the sender of m: they count as unread
 * until the bus says they left it (peers.h, slow readers). */
static void note_fds_sent(Broker *b, sd_bus_message *m, unsigned n) {
        Peer *p = peers_find(&b->peers, m);
        if (p && p->ready)
                peers_note_fds_sent(&b->peers, p, n);
}

typedef struct RetrieveJob {
        Broker *broker;
        bool many;
        size_t n;
        struct {
                char *name;
                uint64_t id;
                int op;               /* index into the job's ops, -1: e->fd */
        } items[FDS_PER_CALL_MAX];
} RetrieveJob;

static void retrieve_job_free(void *p) {
        RetrieveJob *rj = p;
        if (!rj)
                return;
        for (size_t i = 0; i < rj->n; i++)
                free(rj->items[i].name);
        free(rj);
}

static void broker_remove_entry(Broker *b, Entry *e, const char *why);

static int on_retrieve_reopened(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error) {
        RetrieveJob *rj = ctx;
        Broker *b = rj->broker;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Entry *entries[FDS_PER_CALL_MAX];
        int r;

        for (size_t i = 0; i < rj->n; i++) {
                entries[i] = registry_get(&b->reg, rj->items[i].name);
                if (!entries[i] || entries[i]->id != rj->items[i].id)
                        return sd_bus_error_setf(error, ERROR_NOT_FOUND,
                                                 "Entry '%s' was removed while it was being reopened.",
                                                 rj->items[i].name);
        }
        for (size_t i = 0; i < rj->n; i++) {
                const WorkerOp *op = rj->items[i].op >= 0 ? &ops[rj->items[i].op] : NULL;
                if (op && op->result < 0)
                        return reopen_failed(error, rj->items[i].name, entries[i]->owner_uid, op->accmode,
                                             op->result);
        }

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0 && rj->many)
                r = sd_bus_message_open_container(reply, 'a', "{sh}");
        for (size_t i = 0; r >= 0 && i < rj->n; i++) {
                int fd = rj->items[i].op >= 0 ? ops[rj->items[i].op].ret_fd : entries[i]->fd;
                if (rj->many)
                        r = sd_bus_message_append(reply, "{sh}", rj->items[i].name, fd);
                else {
                        r = sd_bus_message_append(reply, "h", fd);
                        if (r >= 0)
                                r = append_info(reply, entries[i]);
                }
        }
        if (r >= 0 && rj->many)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        note_fds_sent(b, m, (unsigned) rj->n);
        for (size_t i = 0; i < rj->n; i++)
                if (entries[i]->once)
                        broker_remove_entry(b, entries[i], "retrieved once");
        return 1;
}

/* Hands the reopenings of entries (want[i] ≥ 0) to a worker; the call is
 * answered when they are done (on_retrieve_reopened). Returns 1. */
static int retrieve_async(Broker *b, Peer *p, sd_bus_message *m, bool many, Entry **entries, const int *want,
                          size_t n, sd_bus_error *error) {
        WorkerOp ops[FDS_PER_CALL_MAX];
        RetrieveJob *rj;
        size_t n_ops = 0;
        int r;

        rj = calloc(1, sizeof *rj);
        if (!rj)
                return -ENOMEM;
        rj->broker = b;
        rj->many = many;
        for (size_t i = 0; i < n; i++) {
                rj->items[i].name = strdup(entries[i]->name);
                if (!rj->items[i].name) {
                        r = -ENOMEM;
                        goto fail;
                }
                rj->n = i + 1;
                rj->items[i].id = entries[i]->id;
                rj->items[i].op = -1;
                if (want[i] < 0)
                        continue;
                r = reopen_op(entries[i], want[i], &ops[n_ops]);
                if (r < 0)
                        goto fail;
                rj->items[i].op = (int) n_ops++;
        }
        r = worker_submit(b->worker, m, p->uid, entries[0]->name, ops, n_ops, on_retrieve_reopened, rj,
                          retrieve_job_free, error);
        return r < 0 ? r : 1;

fail:
        for (size_t i = 0; i < n_ops; i++)
                worker_op_done(&ops[i]);
        retrieve_job_free(rj);
        return r;
}

/* Replies to a Retrieve call m with e and consumes a once entry; a
 * reopening is answered later, from a worker. */
static int reply_retrieve(Broker *b, Peer *p, sd_bus_message *m, Entry *e, const RetrieveOptions *o, int cap,
                          sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int want, r;

        r = plan_retrieved_fd(e, o, cap, &want, error);
        if (r < 0)
                return r;
        if (want >= 0)
                return retrieve_async(b, p, m, false, &e, &want, 1, error);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "h", e->fd);
        if (r < 0)
                return r;
        r = append_info(reply, e);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        peers_note_fds_sent(&b->peers, p, 1);
        log_debug("%s (uid %u) retrieved '%s'", p->unique_name, (unsigned) p->uid, e->name);
        if (e->once)
                broker_remove_entry(b, e, "retrieved once");
        return 1;
}

/* ---- waiting ----------------------------------------------------------- */

static void waiter_free(Waiter *w) {
        Broker *b = w->broker;

        if (w->prev)
                w->prev->next = w->next;
        else
                b->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                b->waiters_tail = w->prev;

        if (w->peer_prev)
                w->peer_prev->peer_next = w->peer_next;
        else
                w->peer->waiters = w->peer_next;
        if (w->peer_next)
                w->peer_next->peer_prev = w->peer_prev;
        w->peer->n_waiters--;
        accounting_discharge(&b->acct, w->peer->uid, ACCT_WAITERS, 1);

        sd_event_source_disable_unref(w->timer);
        sd_bus_message_unref(w->message);
        free(w->name);
        free(w);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        sd_bus_error_setf(&error, ERROR_NOT_FOUND, "No entry named '%s' that you may retrieve appeared in time.",
                          w->name);
        (void) sd_bus_reply_method_error(w->message, &error);
        waiter_free(w);
        return 0;
}

static int park_retrieve(Broker *b, Peer *p, sd_bus_message *m, const char *name, const RetrieveOptions *o,
                         sd_bus_error *error) {
        AcctRefusal why;
        char text[256];
        Waiter *w;
        int r;

        if (p->n_waiters >= WAITS_PER_PEER_MAX)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "This connection already waits for %d entries; cannot wait for '%s' too.",
                                         WAITS_PER_PEER_MAX, name);
        r = accounting_check(&b->acct, p->uid, ACCT_WAITERS, 1, 0, &why);
        if (r < 0) {
                accounting_format_refusal(&why, text, sizeof text);
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot wait for '%s': %s.", name, text);
        }
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->name = strdup(name);
        if (!w->name) {
                free(w);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(b->event, &w->timer, CLOCK_MONOTONIC, o->wait_usec, 0, on_wait_timeout, w);
        if (r >= 0)
                r = accounting_charge_force(&b->acct, p->uid, ACCT_WAITERS, 1);
        if (r < 0) {
                sd_event_source_disable_unref(w->timer);
                free(w->name);
                free(w);
                return r;
        }
        w->broker = b;
        w->peer = p;
        w->message = sd_bus_message_ref(m);
        w->accmode = o->accmode;
        w->reopen = o->reopen;

        w->prev = b->waiters_tail;
        if (b->waiters_tail)
                b->waiters_tail->next = w;
        else
                b->waiters = w;
        b->waiters_tail = w;

        w->peer_next = p->waiters;
        if (p->waiters)
                p->waiters->peer_prev = w;
        p->waiters = w;
        p->n_waiters++;
        log_debug("%s (uid %u) waits for '%s'", p->unique_name, (unsigned) p->uid, name);
        return 1;
}

/* A new entry appeared: answer who waited for it and may have it. */
static void serve_waiters(Broker *b, const char *name) {
        Waiter *w, *next;

        for (w = b->waiters; w; w = next) {
                next = w->next;
                Entry *e;

                if (strcmp(w->name, name) != 0)
                        continue;
                e = registry_get(&b->reg, name);
                if (!e)
                        return; /* a once entry went to an earlier waiter */
                /* Waiters are served only what needs no question to polkit:
                 * the others keep waiting, and time out. */
                DecideEntry view = entry_view(e);
                Decision d = decide_retrieve(b->policy, w->peer->snapshot, &view);
                if (d.kind != DECISION_ALLOW)
                        continue;

                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                RetrieveOptions o = { .accmode = w->accmode, .reopen = w->reopen };
                bool once = e->once;
                bool failed = reply_if_failed(
                        w->message, reply_retrieve(b, w->peer, w->message, e, &o, d.access, &error), &error);
                /* next may be freed only by waiter_free(w); re-read after. */
                next = w->next;
                waiter_free(w);
                if (once && !failed)
                        return;
        }
}

/* ---- the caller -------------------------------------------------------- */

/* Gets the calling peer; 0 means the call was parked until the bus tells us
 * who it is, and the handler must return 1 (the call is answered later). */
static int get_caller(Broker *b, sd_bus_message *m, peer_resume_fn handler, Peer **ret, sd_bus_error *error) {
        int r;

        b->n_calls++;
        if (b->exiting)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NO_REPLY,
                                         "fdbroker is exiting after being idle; call again to start it anew.");
        r = peers_get_caller(&b->peers, m, handler, ret);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, ERROR_QUOTA, "%s", b->peers.why);
        if (r <= 0)
                return r;
        /* Every peer whose identity is known has its policy snapshot; one
         * without would be decided for by nobody: refuse rather than guess. */
        if (!(*ret)->snapshot)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "The broker has no policy snapshot of this connection's identity.");
        /* After a reload: a failure leaves a stale snapshot, which decides
         * right, only slower. */
        (void) policy_snapshot_refresh((*ret)->snapshot, b->policy);
        return 1;
}

/* ---- methods ----------------------------------------------------------- */

/* ---- deposits (the transaction is deposit.c's) ------------------------- */

typedef enum DepositCall {
        DEPOSIT_CALL_ONE,
        DEPOSIT_CALL_MANY,
        DEPOSIT_CALL_CREATE_MEMORY,
} DepositCall;

/* A deposit on its way: the plan, and who committed it. Heap-allocated so
 * that it can wait for a worker's reopenings. */
typedef struct DepositJob {
        DepositPlan plan;
        Broker *broker;
        Peer *peer;                   /* NULL while waiting for a worker */
        DepositCall call;
} DepositJob;

static DepositJob *deposit_job_new(Broker *b, DepositCall call) {
        DepositJob *dj = calloc(1, sizeof *dj);
        if (!dj)
                return NULL;
        deposit_plan_init(&dj->plan);
        dj->broker = b;
        dj->call = call;
        return dj;
}

static void deposit_job_free(void *p) {
        DepositJob *dj = p;
        if (!dj)
                return;
        deposit_plan_done(&dj->plan);
        free(dj);
}

static inline void deposit_job_freep(DepositJob **dj) {
        deposit_job_free(*dj);
}

static int deposit_store_charge(void *userdata, DepositPlan *plan, sd_bus_error *error) {
        DepositJob *dj = userdata;
        Broker *b = dj->broker;
        unsigned n_old = 0;
        uint64_t memory_freed = 0;
        const char *which;
        int r;

        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                Entry *old = registry_get(&b->reg, it->name);

                if (old && !(plan->o.replace && old->owner_uid == plan->uid)) {
                        if (dj->call == DEPOSIT_CALL_MANY)
                                return sd_bus_error_setf(error, ERROR_EXISTS,
                                                         "An entry named '%s' exists; nothing was deposited.",
                                                         it->name);
                        return sd_bus_error_setf(
                                error, ERROR_EXISTS,
                                old->owner_uid == plan->uid
                                        ? "An entry named '%s' exists; to replace it, pass the option "
                                          "replace=true (fdbrokerctl: --replace)."
                                        : "An entry named '%s' exists and belongs to someone else.",
                                it->name);
                }
                it->old = old;
                n_old += !!old;
                memory_freed += old ? old->memory : 0;
        }

        /* The quota the registry keeps; per-uid accounting hooks in here. */
        r = registry_check_quota(&b->reg, plan->uid, (unsigned) plan->n, n_old, plan->memory,
                                 plan->memory > 0 ? memory_freed : 0, &which);
        if (r >= 0)
                return 0;
        if (dj->call == DEPOSIT_CALL_MANY)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot deposit %zu entries: the %s limit would be passed; nothing was "
                                         "deposited.",
                                         plan->n, which);
        if (dj->call == DEPOSIT_CALL_CREATE_MEMORY)
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot create '%s' of %" PRIu64 " bytes: over %s.",
                                         plan->items[0].name, plan->memory, which);
        return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot deposit '%s': the %s limit is reached.",
                                 plan->items[0].name, which);
}

static int deposit_store_add(void *userdata, Entry *e, Entry *old) {
        DepositJob *dj = userdata;
        Broker *b = dj->broker;
        int r;

        r = entry_set_depositor_gids(e, dj->peer->gids, dj->peer->n_gids);
        if (r < 0)
                return r;
        if (old)
                registry_unlink(&b->reg, old);
        r = registry_add(&b->reg, e);
        if (r < 0 && old)
                (void) registry_add(&b->reg, old); /* its slot was just freed */
        return r;
}

static void deposit_store_undo(void *userdata, Entry *e, Entry *old) {
        DepositJob *dj = userdata;
        registry_unlink(&dj->broker->reg, e);
        if (old)
                (void) registry_add(&dj->broker->reg, old);
}

static void deposit_store_finish(void *userdata, Entry *e, Entry *old) {
        DepositJob *dj = userdata;
        Broker *b = dj->broker;
        Peer *p = dj->peer;
        int r;

        e->broker = b;
        e->created_usec = now_usec(CLOCK_REALTIME);
        if (dj->plan.o.timeout_usec > 0) {
                e->expires_usec = e->created_usec + dj->plan.o.timeout_usec;
                r = arm_expiry(b, e, dj->plan.o.timeout_usec);
                if (r < 0)
                        log_error("no expiry timer for '%s': %s", e->name, strerror(-r));
        }
        if (!e->persistent) {
                e->peer = p;
                e->peer_next = p->entries;
                if (p->entries)
                        p->entries->peer_prev = e;
                p->entries = e;
        } else {
                /* The fd first, the state file after (the caller saves it
                 * once): a crash in between leaves an fd without metadata,
                 * which the next start drops. */
                r = persist_store_fd(&b->persist, &b->reg, e);
                if (r < 0)
                        log_error("'%s' will not survive a restart: %s", e->name, strerror(-r));
        }
        if (old)
                forget_entry(b, old, "replaced");
        log_info("%s deposited '%s' (uid %u, %s, %s%s%s)", p->unique_name, e->name, (unsigned) e->owner_uid,
                 fdkind_to_string(e->kind), fdinfo_accmode_to_string(e->flags), e->persistent ? ", persistent" : "",
                 e->once ? ", once" : "");
        watches_entry_added(&b->watches, e, watcher_may_see, append_info, b);
}

static const DepositStore broker_deposit_store = {
        .charge = deposit_store_charge,
        .add = deposit_store_add,
        .undo = deposit_store_undo,
        .finish = deposit_store_finish,
};

/* Commits dj's plan for the call m and answers it. */
static int deposit_commit_reply(DepositJob *dj, sd_bus_message *m, sd_bus_error *error) {
        Broker *b = dj->broker;
        DepositPlan *plan = &dj->plan;
        int r;

        r = deposit_commit(plan, &broker_deposit_store, dj, error);
        if (r < 0)
                return r;
        if (plan->o.persistent)
                save_state(b); /* once for all of them */
        if (dj->call == DEPOSIT_CALL_CREATE_MEMORY) {
                r = sd_bus_reply_method_return(m, "h", plan->memfd);
                if (r >= 0)
                        note_fds_sent(b, m, 1);
        } else
                r = sd_bus_reply_method_return(m, NULL);
        for (size_t i = 0; i < plan->n; i++)
                serve_waiters(b, plan->items[i].name);
        return r;
}

static int on_deposit_reopened(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error) {
        DepositJob *dj = ctx;
        DepositPlan *plan = &dj->plan;
        size_t k = 0;

        /* The depositor may have left meanwhile: its connection entries
         * would go with it, so nothing is stored. */
        dj->peer = peers_find(&dj->broker->peers, m);
        if (!dj->peer || !dj->peer->ready)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NO_REPLY, "The depositor left; nothing was deposited.");
        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                if (!deposit_item_needs_reopen(it))
                        continue;
                if (ops[k].result < 0)
                        return reopen_failed(error, it->name, plan->uid, O_RDONLY, ops[k].result);
                it->reopened_fd = TAKE_FD(ops[k].ret_fd);
                k++;
        }
        return deposit_commit_reply(dj, m, error);
}

/* Runs a planned and authorized deposit: the read-only reopenings of the
 * caller's fds on a worker first (as the caller), then the commit. dj is
 * consumed. */
static int deposit_run(Broker *b, Peer *p, sd_bus_message *m, DepositJob *dj_in, sd_bus_error *error) {
        _cleanup_(deposit_job_freep) DepositJob *dj = dj_in;
        WorkerOp ops[FDS_PER_CALL_MAX];
        const char *what;
        size_t n_ops = 0;
        int r;

        dj->plan.uid = p->uid;
        for (size_t i = 0; i < dj->plan.n; i++) {
                DepositItem *it = &dj->plan.items[i];
                WorkerOp op = WORKER_OP_INIT;

                if (!deposit_item_needs_reopen(it))
                        continue;
                op.type = WORKER_OP_REOPEN;
                op.kind = it->kind;
                op.accmode = O_RDONLY;
                op.as_depositor = true;
                op.uid = p->uid;
                op.fd = fcntl(it->fd, F_DUPFD_CLOEXEC, 3);
                if (op.fd < 0) {
                        r = -errno;
                        goto fail;
                }
                if (p->n_gids > 0) {
                        op.gids = malloc(p->n_gids * sizeof(gid_t));
                        if (!op.gids) {
                                safe_close(op.fd);
                                r = -ENOMEM;
                                goto fail;
                        }
                        memcpy(op.gids, p->gids, p->n_gids * sizeof(gid_t));
                        op.n_gids = p->n_gids;
                }
                ops[n_ops++] = op;
        }
        if (n_ops == 0) {
                dj->peer = p;
                return deposit_commit_reply(dj, m, error);
        }
        what = dj->plan.items[0].name;
        r = worker_submit(b->worker, m, p->uid, what, ops, n_ops, on_deposit_reopened, TAKE_PTR(dj),
                          deposit_job_free, error);
        return r < 0 ? r : 1;

fail:
        for (size_t i = 0; i < n_ops; i++)
                worker_op_done(&ops[i]);
        return r == -EMFILE || r == -ENFILE
                       ? sd_bus_error_setf(error, ERROR_QUOTA,
                                           "Cannot deposit '%s': the broker is out of file descriptors.",
                                           dj->plan.items[0].name)
                       : r;
}

/* deposit_plan_item(), and one check that needs the bus: a socket leading
 * to the bus the broker is on would keep its owner's bus connection open,
 * and the bus would never say it ended (nor end its connection entries). */
static int plan_deposit_item(Broker *b, DepositPlan *plan, DepositItem *it, sd_bus_error *error) {
        int r = deposit_plan_item(plan, it, error);
        if (r < 0)
                return r;
        if (it->kind == FD_KIND_SOCKET && peers_fd_is_bus_connection(&b->peers, it->fd))
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "The fd for '%s' is a connection to the bus itself; kept by the broker, it "
                                         "would keep that connection and its connection entries alive forever.",
                                         it->name);
        return 0;
}

/* A handle index past the fds the message carries: sd-bus says -EBADMSG,
 * which it would answer as InconsistentMessage. The argument is what is
 * wrong; say which. name: the entry, when known. */
static int bad_handle(sd_bus_error *error, const char *arg, const char *name) {
        if (name)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Argument '%s' for '%s' is not the index of a file descriptor this message "
                                         "carries.",
                                         arg, name);
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                 "Argument '%s' holds a handle that is not the index of a file descriptor this "
                                 "message carries.",
                                 arg);
}

/* Deposit-like calls share their authorization: a deposit rule (or a
 * create-memory one) may refuse, ask polkit, or cap the stored access to
 * read-only. No rule: allowed. */
static int authorize_deposit(Broker *b, sd_bus_message *m, Peer *p, PolicyAction action, const char *name,
                             peer_resume_fn handler, bool *read_only, sd_bus_error *error) {
        Decision d = decide_action(b->policy, p->snapshot, action, name);
        int r;

        r = authorize(b, m, p, &d, name, handler, error);
        if (r <= 0)
                return r;
        if (d.access == O_RDONLY)
                *read_only = true;
        return 1;
}

static int method_deposit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_job_freep) DepositJob *dj = NULL;
        DepositItem *it;
        const char *name;
        bool read_only;
        Peer *p;
        int fd, r;

        r = get_caller(b, m, method_deposit, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        dj = deposit_job_new(b, DEPOSIT_CALL_ONE);
        if (!dj)
                return -ENOMEM;

        /* Parse and plan. The fd is the message's, borrowed. */
        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "h", &fd);
        if (r == -EBADMSG)
                return bad_handle(error, "fd", name);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &dj->plan.o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;
        it = &dj->plan.items[dj->plan.n++];
        it->name = name;
        it->fd = fd;
        it->read_only = dj->plan.o.read_only;
        r = plan_deposit_item(b, &dj->plan, it, error);
        if (r < 0)
                return r;

        /* Authorize; a rule capping the access to read-only plans again. */
        read_only = it->read_only;
        r = authorize_deposit(b, m, p, POLICY_ACTION_DEPOSIT, name, method_deposit, &it->read_only, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (it->read_only != read_only) {
                it->read_only_by_rule = true;
                r = plan_deposit_item(b, &dj->plan, it, error);
                if (r < 0)
                        return r;
        }
        return deposit_run(b, p, m, TAKE_PTR(dj), error);
}

static int method_deposit_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_job_freep) DepositJob *dj = NULL;
        DepositPlan *plan;
        bool pending = false;
        Peer *p;
        int r;

        r = get_caller(b, m, method_deposit_many, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        dj = deposit_job_new(b, DEPOSIT_CALL_MANY);
        if (!dj)
                return -ENOMEM;
        plan = &dj->plan;

        r = sd_bus_message_enter_container(m, 'a', "{sh}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;
                int fd;

                r = sd_bus_message_read(m, "{sh}", &name, &fd);
                if (r == -EBADMSG)
                        return bad_handle(error, "fds", NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (plan->n >= FDS_PER_CALL_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "DepositMany takes at most %d entries.", FDS_PER_CALL_MAX);
                plan->items[plan->n].name = name;
                plan->items[plan->n].fd = fd;
                plan->n++;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &plan->o, error);
        if (r < 0)
                return r;
        if (plan->n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "DepositMany needs at least one entry.");

        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                r = options_check_name(it->name, error);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(it->name, plan->items[j].name) == 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Entry '%s' is named twice.", it->name);
                it->read_only = plan->o.read_only;
                r = plan_deposit_item(b, plan, it, error);
                if (r < 0)
                        return r;
        }

        /* Every name is authorized before anything is stored; questions to
         * polkit go out together and the call runs again when all are in. */
        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                bool read_only = it->read_only;
                r = authorize_deposit(b, m, p, POLICY_ACTION_DEPOSIT, it->name, method_deposit_many, &it->read_only,
                                      error);
                if (r < 0)
                        return r;
                pending = pending || r == 0;
                if (r > 0 && it->read_only != read_only) {
                        it->read_only_by_rule = true;
                        r = plan_deposit_item(b, plan, it, error);
                        if (r < 0)
                                return r;
                }
        }
        if (pending)
                return 1;
        return deposit_run(b, p, m, TAKE_PTR(dj), error);
}

/* Authorizes retrieving name: authorize()'s answers, and with 1 the entry
 * and the access cap. -ENOENT also when there is no such entry. */
static int authorize_retrieve(Broker *b, sd_bus_message *m, Peer *p, const char *name, peer_resume_fn handler,
                              Entry **ret_entry, int *ret_cap, sd_bus_error *error) {
        Entry *e = registry_get(&b->reg, name);
        DecideEntry view;
        Decision d;
        int r;

        if (!e)
                return -ENOENT;
        view = entry_view(e);
        d = decide_retrieve(b->policy, p->snapshot, &view);
        r = authorize(b, m, p, &d, name, handler, error);
        if (r > 0) {
                *ret_entry = e;
                *ret_cap = d.access;
        }
        return r;
}

static int method_retrieve(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        RetrieveOptions o;
        const char *name;
        Entry *e = NULL;
        Peer *p;
        int cap, r;

        r = get_caller(b, m, method_retrieve, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_parse_retrieve(m, &o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;

        r = authorize_retrieve(b, m, p, name, method_retrieve, &e, &cap, error);
        if (r == -ENOENT) {
                if (o.wait_usec > 0)
                        return park_retrieve(b, p, m, name, &o, error);
                return not_found(error, name);
        }
        if (r <= 0)
                return r < 0 ? r : 1;
        return reply_retrieve(b, p, m, e, &o, cap, error);
}

static int method_retrieve_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Entry *entries[FDS_PER_CALL_MAX];
        int want[FDS_PER_CALL_MAX], caps[FDS_PER_CALL_MAX];
        bool pending = false, any_reopen = false;
        RetrieveOptions o;
        size_t n = 0;
        Peer *p;
        int r;

        r = get_caller(b, m, method_retrieve_many, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read_strv(m, &names);
        if (r < 0)
                return r;
        r = options_parse_retrieve(m, &o, error);
        if (r < 0)
                return r;
        while (names && names[n]) /* an empty array reads as NULL */
                n++;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "RetrieveMany needs at least one name.");
        if (n > FDS_PER_CALL_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "RetrieveMany takes at most %d names, not %zu.", FDS_PER_CALL_MAX, n);
        for (size_t i = 0; i < n; i++) {
                r = options_check_name(names[i], error);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(names[i], names[j]) == 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Entry '%s' is named twice.",
                                                         names[i]);
        }
        for (size_t i = 0; i < n; i++) {
                entries[i] = NULL;
                r = authorize_retrieve(b, m, p, names[i], method_retrieve_many, &entries[i], &caps[i], error);
                if (r == -ENOENT)
                        return sd_bus_error_setf(error, ERROR_NOT_FOUND,
                                                 "No entry named '%s' that you may retrieve; nothing was retrieved.",
                                                 names[i]);
                if (r < 0)
                        return r;
                pending = pending || r == 0;
        }
        if (pending)
                return 1;

        for (size_t i = 0; i < n; i++) {
                r = plan_retrieved_fd(entries[i], &o, caps[i], &want[i], error);
                if (r < 0)
                        return r;
                any_reopen = any_reopen || want[i] >= 0;
        }
        if (any_reopen)
                return retrieve_async(b, p, m, true, entries, want, n, error);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sh}");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "{sh}", names[i], entries[i]->fd);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        peers_note_fds_sent(&b->peers, p, (unsigned) n);
        for (size_t i = 0; i < n; i++)
                if (entries[i]->once)
                        broker_remove_entry(b, entries[i], "retrieved once");
        return 1;
}

static int method_remove(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        const char *name;
        DecideEntry view;
        Decision d;
        Entry *e;
        Peer *p;
        int r;

        r = get_caller(b, m, method_remove, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;

        e = registry_get(&b->reg, name);
        if (!e)
                return not_found_to_remove(error, name);
        view = entry_view(e);
        d = decide_remove(b->policy, p->snapshot, &view);
        r = authorize(b, m, p, &d, name, method_remove, error);
        if (r == -ENOENT)
                return not_found_to_remove(error, name);
        if (r <= 0)
                return r < 0 ? r : 1;

        char why[128];
        snprintf(why, sizeof why, "removed by %s (uid %u)", p->unique_name, (unsigned) p->uid);
        broker_remove_entry(b, e, why);
        return sd_bus_reply_method_return(m, NULL);
}

static int compare_entries(const void *a, const void *b) {
        return strcmp((*(Entry *const *) a)->name, (*(Entry *const *) b)->name);
}

/* List never asks polkit (decide_listed()). */
static bool may_list(const Broker *b, const Peer *p, const Entry *e) {
        DecideEntry view = entry_view(e);
        return decide_listed(b->policy, p->snapshot, &view);
}

static int method_list(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Entry **all = NULL;
        const char *prefix = "";
        size_t n = 0, k = 0;
        Peer *p;
        int r;

        r = get_caller(b, m, method_list, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = options_parse_list_filter(m, &prefix, error);
        if (r < 0)
                return r;

        r = registry_all(&b->reg, &all, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (name_has_prefix(all[i]->name, prefix) && may_list(b, p, all[i]))
                        all[k++] = all[i];
        qsort(all, k, sizeof *all, compare_entries);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sa{sv})");
        for (size_t i = 0; r >= 0 && i < k; i++) {
                r = sd_bus_message_open_container(reply, 'r', "sa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", all[i]->name);
                if (r >= 0)
                        r = append_info(reply, all[i]);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* Watchers hear of what List would show them. */
static bool watcher_may_see(const Peer *p, const Entry *e, void *userdata) {
        return may_list(userdata, p, e);
}

static int method_watch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        Peer *p;
        int r;

        r = get_caller(b, m, method_watch, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = watches_handle_watch(&b->watches, m, p, error);
        if (r <= 0)
                return r;
        log_debug("%s (uid %u) watches entries", p->unique_name, (unsigned) p->uid);
        return sd_bus_reply_method_return(m, NULL);
}

/* Unwatch without a watch is not an error: the caller wanted none, and has
 * none. */
static int method_unwatch(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        Peer *p;
        int r;

        r = get_caller(b, m, method_unwatch, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        (void) watches_remove_for(&b->watches, m);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_create_memory(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_job_freep) DepositJob *dj = NULL;
        char memfd_name[250];
        DepositItem *it;
        const char *name;
        uint64_t size;
        Peer *p;
        int r;

        r = get_caller(b, m, method_create_memory, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        dj = deposit_job_new(b, DEPOSIT_CALL_CREATE_MEMORY);
        if (!dj)
                return -ENOMEM;

        r = sd_bus_message_read(m, "st", &name, &size);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &dj->plan.o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;
        if (size == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Size of '%s' must be at least 1 byte.",
                                         name);
        if (size > b->reg.max_memory)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Size %" PRIu64 " of '%s' is above MaxMemorySize (%" PRIu64 " bytes).", size,
                                         name, b->reg.max_memory);

        r = authorize_deposit(b, m, p, POLICY_ACTION_CREATE_MEMORY, name, method_create_memory,
                              &dj->plan.o.read_only, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        /* The broker's own memfd: nothing about it is the caller's to
         * control, so even its read-only reopening is made here. */
        snprintf(memfd_name, sizeof memfd_name, "fdbroker:%s", name);
        dj->plan.memfd = memfd_create(memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (dj->plan.memfd < 0)
                return sd_bus_error_set_errnof(error, errno, "Could not create memory for '%s': %m.", name);
        if (ftruncate(dj->plan.memfd, (off_t) size) < 0)
                return sd_bus_error_set_errnof(error, errno, "Could not size memory for '%s': %m.", name);
        /* SPEC §1: the size accounted is the size held. Sealed before the
         * fd leaves the broker, so nobody can ftruncate it past its charge. */
        if (fcntl(dj->plan.memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
                return sd_bus_error_set_errnof(error, errno, "Could not seal the size of '%s': %m.", name);
        dj->plan.memory = size;
        dj->plan.uid = p->uid;
        it = &dj->plan.items[dj->plan.n++];
        it->name = name;
        it->fd = dj->plan.memfd;
        it->read_only = dj->plan.o.read_only;
        r = deposit_plan_item(&dj->plan, it, error);
        if (r < 0)
                return r;
        if (deposit_item_needs_reopen(it)) {
                r = fdinfo_reopen(it->fd, it->kind, O_RDONLY, &it->reopened_fd);
                if (r < 0)
                        return reopen_failed(error, name, p->uid, O_RDONLY, r);
        }
        dj->peer = p;
        return deposit_commit_reply(dj, m, error);
}

/* OpenPath's open ran on a worker. */
static int on_path_opened(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error) {
        int r;

        if (ops[0].result < 0)
                return openpath_set_error(error, ops[0].path, ops[0].accmode, ops[0].result);
        log_info("%s opened '%s' %s", sd_bus_message_get_sender(m) ?: "?", ops[0].path,
                 fdinfo_accmode_to_string(ops[0].accmode));
        r = sd_bus_reply_method_return(m, "h", ops[0].ret_fd);
        if (r >= 0)
                note_fds_sent(ctx, m, 1);
        return r;
}

static int method_open_path(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        const char *path;
        bool nonblock = false;
        int accmode = O_RDONLY, cap, r;
        Decision d;
        Peer *p;

        r = get_caller(b, m, method_open_path, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &path);
        if (r < 0)
                return r;
        r = options_parse_open_path(m, &accmode, &nonblock, error);
        if (r < 0)
                return r;
        if (!openpath_is_normalised_absolute(path))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Path '%s' must be absolute and normalised (no '.', '..', '//' or trailing "
                                         "'/').",
                                         path);

        /* An open-path rule decides; without one, polkit does. */
        d = decide_action(b->policy, p->snapshot, POLICY_ACTION_OPEN_PATH, path);
        r = authorize(b, m, p, &d, path, method_open_path, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        cap = d.access;
        if (cap != POLICY_ACCESS_ANY && cap != O_RDWR && cap != accmode)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Policy lets you open '%s' only %s, not %s.", path,
                                         fdinfo_accmode_to_string(cap), fdinfo_accmode_to_string(accmode));

        WorkerOp op = WORKER_OP_INIT;
        op.type = WORKER_OP_OPEN_PATH;
        op.accmode = accmode;
        op.nonblock = nonblock;
        op.path = strdup(path);
        if (!op.path)
                return -ENOMEM;
        r = worker_submit(b->worker, m, p->uid, path, &op, 1, on_path_opened, b, NULL, error);
        return r < 0 ? r : 1;
}

static int method_open_connection(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_close_ int fd = -1;
        Peer *p;
        int r;

        r = get_caller(b, m, method_open_connection, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = direct_parse_options(m, error);
        if (r < 0)
                return r;

        r = direct_open_pair(&b->direct, p, &fd);
        if (r == -EDQUOT)
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot open a direct connection: %s; close one first.",
                                         b->direct.refusal);
        if (r == -EUSERS)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "fdbroker serves %u direct connections, its limit; use the bus.",
                                         DIRECT_CONNECTIONS_MAX);
        if (r == -EMFILE || r == -ENFILE)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot open a direct connection: the broker is out of file descriptors.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Could not open a direct connection: %s.", strerror(-r));
        return sd_bus_reply_method_return(m, "h", fd);
}

/* ---- properties -------------------------------------------------------- */

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", FDBROKER_VERSION);
}

static int property_get_entry_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        return sd_bus_message_append(reply, "u", b->reg.n_entries);
}

static const sd_bus_vtable broker_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("EntryCount", "u", property_get_entry_count, 0, 0),
        SD_BUS_PROPERTY("MaxEntries", "u", NULL, offsetof(Broker, reg.max_entries), 0),
        SD_BUS_PROPERTY("MaxEntriesPerUser", "u", NULL, offsetof(Broker, reg.max_entries_per_user), 0),
        SD_BUS_PROPERTY("MaxMemorySize", "t", NULL, offsetof(Broker, reg.max_memory), 0),
        SD_BUS_METHOD_WITH_ARGS("Deposit", SD_BUS_ARGS("s", name, "h", fd, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_deposit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DepositMany", SD_BUS_ARGS("a{sh}", fds, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_deposit_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Retrieve", SD_BUS_ARGS("s", name, "a{sv}", options),
                                SD_BUS_RESULT("h", fd, "a{sv}", info), method_retrieve, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RetrieveMany", SD_BUS_ARGS("as", names, "a{sv}", options),
                                SD_BUS_RESULT("a{sh}", fds), method_retrieve_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("List", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(sa{sv})", entries),
                                method_list, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateMemory", SD_BUS_ARGS("s", name, "t", size, "a{sv}", options),
                                SD_BUS_RESULT("h", fd), method_create_memory, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenPath", SD_BUS_ARGS("s", path, "a{sv}", options), SD_BUS_RESULT("h", fd),
                                method_open_path, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Watch", SD_BUS_ARGS("as", patterns, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_watch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unwatch", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_unwatch,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("EntryAdded", SD_BUS_ARGS("s", name, "a{sv}", info), 0),
        SD_BUS_SIGNAL_WITH_ARGS("EntryRemoved", SD_BUS_ARGS("s", name, "s", reason), 0),
        SD_BUS_METHOD_WITH_ARGS("OpenConnection", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("h", socket),
                                method_open_connection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- life cycle -------------------------------------------------------- */

/* fds kept free for what is not an entry: the bus, the event loop, fds
 * arriving in messages (up to 16 each, and calls queue while credentials
 * are looked up), reopenings and files being read. */
#define FD_RESERVE 1024U

static unsigned fd_budget(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT_MAX)
                return UINT_MAX;
        return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned) rl.rlim_cur - FD_RESERVE : (unsigned) rl.rlim_cur / 2;
}

static unsigned broker_count_waiters(const Broker *b) {
        unsigned n = 0;
        for (const Waiter *w = b->waiters; w; w = w->next)
                n++;
        return n;
}

static void on_peer_gone(Peer *p, void *userdata) {
        Broker *b = userdata;

        polkit_forget_peer(&b->polkit, p);
        watches_forget_peer(&b->watches, p); /* before its entries: it is gone */
        while (p->waiters)
                waiter_free(p->waiters);
        while (p->entries)
                broker_remove_entry(b, p->entries, "depositor's connection closed");
}

/* The same object, on a direct connection: handlers find their caller by
 * the connection (peers_get_caller), and replies go back on it. */
static int broker_attach_connection(sd_bus *conn, void *userdata) {
        Broker *b = userdata;
        return sd_bus_add_object_vtable(conn, NULL, OBJECT_PATH, INTERFACE, broker_vtable, b);
}

int broker_listen_direct(Broker *b, int fd) {
        return direct_listen(&b->direct, fd);
}

int broker_new(sd_event *event, sd_bus *bus, Broker **ret) {
        _cleanup_(broker_freep) Broker *b = calloc(1, sizeof(Broker));
        int r;

        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(event);
        b->bus = sd_bus_ref(bus);
        accounting_init(&b->acct);
        registry_init(&b->reg);
        b->reg.acct = &b->acct;
        watches_init(&b->watches);
        b->watches.acct = &b->acct;
        b->fd_budget = fd_budget();
        r = worker_new(event, &b->worker);
        if (r < 0)
                return r;
        worker_set_accounting(b->worker, &b->acct);
        polkit_init(&b->polkit, bus, b);
        b->polkit.acct = &b->acct;
        r = peers_init(&b->peers, bus, on_peer_gone, b);
        if (r < 0)
                return r;
        b->peers.acct = &b->acct;
        b->peers.policy = &b->policy; /* peers build their snapshots against it */
        direct_init(&b->direct, event, &b->peers, broker_attach_connection, b);
        r = sd_bus_add_object_vtable(bus, &b->object, OBJECT_PATH, INTERFACE, broker_vtable, b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        b->worker = worker_free(b->worker); /* unanswered opens first: they name entries */
        if (b->direct.event)
                direct_done(&b->direct); /* its peers first: they point at its connections */
        peers_done(&b->peers); /* drops waiters, polkit questions, connection entries */
        polkit_done(&b->polkit);
        watches_done(&b->watches); /* before the registry: nobody to tell */
        registry_done(&b->reg);
        accounting_done(&b->acct);
        policy_free(b->policy);
        persist_done(&b->persist);
        sd_bus_slot_unref(b->object);
        sd_bus_unref(b->bus);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

/* The accounting's limits: the registry's three, and the [Limits] keys of
 * every other resource over the defaults of accounting.c. */
static void set_accounting_limits(Broker *b, const PolicyLimits *l) {
        static const struct {
                AcctResource res;
                PolicyLimitKey total, per_user;
        } keys[] = {
                { ACCT_QUEUED_CALLS, POLICY_LIMIT_MAX_QUEUED_CALLS, POLICY_LIMIT_MAX_QUEUED_CALLS_PER_USER },
                { ACCT_WAITERS, POLICY_LIMIT_MAX_WAITS, POLICY_LIMIT_MAX_WAITS_PER_USER },
                { ACCT_POLKIT, POLICY_LIMIT_MAX_AUTHORIZATIONS, POLICY_LIMIT_MAX_AUTHORIZATIONS_PER_USER },
                { ACCT_WORKERS, POLICY_LIMIT_MAX_WORKERS, POLICY_LIMIT_MAX_WORKERS_PER_USER },
                { ACCT_DIRECT_CONNECTIONS, POLICY_LIMIT_MAX_DIRECT_CONNECTIONS,
                  POLICY_LIMIT_MAX_DIRECT_CONNECTIONS_PER_USER },
                { ACCT_WATCHES, POLICY_LIMIT_MAX_WATCHES, POLICY_LIMIT_MAX_WATCHES_PER_USER },
                { ACCT_UNREAD_FDS, POLICY_LIMIT_MAX_UNREAD_FDS, POLICY_LIMIT_MAX_UNREAD_FDS_PER_USER },
        };
        Accounting defaults;
        uint64_t per_user = ACCT_UNLIMITED;

        accounting_init(&defaults);
        accounting_set_limit(&b->acct, ACCT_ENTRIES, b->reg.max_entries, b->reg.max_entries_per_user);
        (void) policy_limit_get(l, POLICY_LIMIT_MAX_MEMORY_SIZE_PER_USER, &per_user);
        accounting_set_limit(&b->acct, ACCT_MEMORY, b->reg.max_memory, per_user);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                AcctLimit v = defaults.limits[keys[i].res];
                (void) policy_limit_get(l, keys[i].total, &v.total);
                (void) policy_limit_get(l, keys[i].per_user, &v.per_user);
                accounting_set_limit(&b->acct, keys[i].res, v.total, v.per_user);
        }
        accounting_done(&defaults);
}

void broker_set_policy(Broker *b, Policy *policy) {
        const PolicyLimits none = {};
        const PolicyLimits *l = policy ? &policy->limits : &none;

        policy_free(b->policy);
        b->policy = policy;
        /* Lowered limits refuse new entries; existing ones stay. */
        b->reg.max_entries = l->has_max_entries ? l->max_entries : DEFAULT_MAX_ENTRIES;
        if (b->reg.max_entries > b->fd_budget) {
                /* Every entry is an open fd. Running out of fds would make
                 * sd-bus drop our connection when the next fd arrives, and
                 * every entry with it: refuse deposits before that. */
                log_warning("MaxEntries=%u is more than the open-file limit allows; using %u",
                            b->reg.max_entries, b->fd_budget);
                b->reg.max_entries = b->fd_budget;
        }
        b->reg.max_entries_per_user = l->has_max_entries_per_user ? l->max_entries_per_user
                                                                   : DEFAULT_MAX_ENTRIES_PER_USER;
        b->reg.max_memory = l->has_max_memory_size ? l->max_memory_size : DEFAULT_MAX_MEMORY_SIZE;
        set_accounting_limits(b, l);
}

static void on_restored(Entry *e, void *userdata) {
        Broker *b = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        e->broker = b;
        if (e->expires_usec > 0) {
                r = arm_expiry(b, e, e->expires_usec > now ? e->expires_usec - now : 1);
                if (r < 0)
                        log_error("no expiry timer for '%s': %s", e->name, strerror(-r));
        }
        r = registry_add(&b->reg, e);
        if (r < 0) {
                log_error("could not restore '%s': %s", e->name, strerror(-r));
                entry_free(e);
                return;
        }
        log_info("restored '%s' (uid %u, %s)", e->name, (unsigned) e->owner_uid, fdkind_to_string(e->kind));
}

int broker_restore(Broker *b, const char *runtime_dir) {
        int n, r;

        r = persist_init(&b->persist, runtime_dir);
        if (r < 0)
                return r;
        n = persist_restore(&b->persist, &b->reg, on_restored, b);
        if (n < 0)
                return n;
        save_state(b); /* so it lists exactly what was restored */
        if (!persist_enabled(&b->persist))
                log_info("persistent entries last as long as this process (%s)",
                         runtime_dir ? "no service manager fd store" : "no runtime directory");
        return n;
}

bool broker_is_idle(const Broker *b) {
        return b->reg.n_entries == 0 && !b->waiters && !b->polkit.queries && peers_all_ready(&b->peers) &&
               (!b->worker || worker_is_idle(b->worker)) && !watches_any(&b->watches) &&
               b->direct.n_connections == 0 && b->direct.n_refused == 0;
}

bool broker_is_idle_but_stored(const Broker *b) {
        _cleanup_free_ Entry **all = NULL;
        size_t n;

        if (b->reg.n_entries == 0)
                return broker_is_idle(b);
        if (b->waiters || b->polkit.queries || !peers_all_ready(&b->peers) || !persist_enabled(&b->persist) ||
            watches_any(&b->watches) || (b->worker && !worker_is_idle(b->worker)) ||
            b->direct.n_connections > 0 || b->direct.n_refused > 0)
                return false;
        if (registry_all(&b->reg, &all, &n) < 0)
                return false;
        /* An expiry timer would not run while we are gone. */
        for (size_t i = 0; i < n; i++)
                if (!all[i]->persistent || all[i]->expires_usec != 0)
                        return false;
        return true;
}

void broker_format_status(const Broker *b, char *buf, size_t size) {
        snprintf(buf, size, "Serving %u entries (%u waiting calls).", b->reg.n_entries, broker_count_waiters(b));
}

uint64_t broker_call_count(const Broker *b) {
        return b->n_calls;
}

void broker_set_exiting(Broker *b) {
        b->exiting = true;
}
