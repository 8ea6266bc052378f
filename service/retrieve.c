/* retrieve.c: handing stored fds back: Retrieve, RetrieveMany and served waiters.
 *
 * Plans the fd a retriever gets (never wider than stored, nor than the
 * policy's cap; a reopening when narrower or asked for), runs reopenings on
 * a worker as the depositor, encodes the reply with its info dictionary,
 * counts the fds sent as unread by the peer, and consumes a once entry
 * after its reply is out. fds handed to sd-bus are borrowed: it sends
 * duplicates. */
#include "retrieve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-private.h"
#include "cleanup.h"
#include "entries.h"
#include "fdclose.h"
#include "fdinfo.h"
#include "log.h"
#include "policy.h"

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

int retrieve_append_info(sd_bus_message *reply, const Entry *e) {
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
                        fdclose_kind(op.fd, e->kind);
                        return -ENOMEM;
                }
                memcpy(op.gids, e->depositor_gids, e->n_depositor_gids * sizeof(gid_t));
                op.n_gids = e->n_depositor_gids;
        }
        *ret = op;
        return 0;
}

/* Turns a failed reopening of name into one of SPEC §1's errors. */
int retrieve_reopen_error(sd_bus_error *error, const char *name, uid_t depositor, int accmode, int r) {
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

/* A reply carrying n fds went to the sender of m: they count as unread
 * until the bus says they left it (peers.h, slow readers). */
void retrieve_note_fds_sent(Broker *b, sd_bus_message *m, unsigned n) {
        Peer *p = peers_find(&b->peers, m);
        if (p && p->ready)
                peers_note_fds_sent(&b->peers, p, n);
}

/* What a Retrieve or RetrieveMany waiting for its reopenings remembers:
 * entries by name and id (any of them may go meanwhile), and which op
 * reopens each. */
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
                        return retrieve_reopen_error(error, rj->items[i].name, entries[i]->owner_uid, op->accmode,
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
                                r = retrieve_append_info(reply, entries[i]);
                }
        }
        if (r >= 0 && rj->many)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = fdclose_send(reply) /* its copies of the fds: fdclose.h */;
        if (r < 0)
                return r;
        retrieve_note_fds_sent(b, m, (unsigned) rj->n);
        for (size_t i = 0; i < rj->n; i++)
                if (entries[i]->once)
                        entries_remove(b, entries[i], "retrieved once");
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
int retrieve_reply(Broker *b, Peer *p, sd_bus_message *m, Entry *e, const RetrieveOptions *o, int cap,
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
        r = retrieve_append_info(reply, e);
        if (r < 0)
                return r;
        r = fdclose_send(reply) /* its copies of the fds: fdclose.h */;
        if (r < 0)
                return r;
        peers_note_fds_sent(&b->peers, p, 1);
        log_debug("%s (uid %u) retrieved '%s'", p->unique_name, (unsigned) p->uid, e->name);
        if (e->once)
                entries_remove(b, e, "retrieved once");
        return 1;
}

/* Replies to a RetrieveMany call m with entries (authorized, caps[i] each)
 * under names; with a reopening among them the reply comes from a worker.
 * Once entries go after the reply is out. Returns 1 or refuses all. */
int retrieve_reply_many(Broker *b, Peer *p, sd_bus_message *m, char **names, Entry **entries, const int *caps,
                        size_t n, const RetrieveOptions *o, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int want[FDS_PER_CALL_MAX];
        bool any_reopen = false;
        int r;

        for (size_t i = 0; i < n; i++) {
                r = plan_retrieved_fd(entries[i], o, caps[i], &want[i], error);
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
        r = fdclose_send(reply) /* its copies of the fds: fdclose.h */;
        if (r < 0)
                return r;
        peers_note_fds_sent(&b->peers, p, (unsigned) n);
        for (size_t i = 0; i < n; i++)
                if (entries[i]->once)
                        entries_remove(b, entries[i], "retrieved once");
        return 1;
}
