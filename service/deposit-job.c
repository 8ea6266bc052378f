/* deposit-job.c: a Deposit, DepositMany or CreateMemory call on its way.
 *
 * deposit.c plans and commits the transaction; this module runs it for a
 * bus call: the read-only reopenings of the caller's fds on a worker (as
 * the caller), the broker's side of the commit (DepositStore: quota and
 * name checks against the registry, each entry's EntryLife allocated before
 * the point of no return, linking, undo, then entries_adopt() and
 * watchers), the state file saved once, the reply, and the waiters the new
 * entries answer. fds in the plan are borrowed from the message until the
 * commit duplicates them. */
#include "deposit-job.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker-private.h"
#include "cleanup.h"
#include "entries.h"
#include "fdclose.h"
#include "fdinfo.h"
#include "log.h"
#include "retrieve.h"
#include "waiters.h"


DepositJob *deposit_job_new(Broker *b, DepositCall call) {
        DepositJob *dj = calloc(1, sizeof *dj);
        if (!dj)
                return NULL;
        deposit_plan_init(&dj->plan);
        dj->broker = b;
        dj->call = call;
        return dj;
}

void deposit_job_free(void *p) {
        DepositJob *dj = p;
        if (!dj)
                return;
        deposit_plan_done(&dj->plan);
        if (dj->sweep) {
                fdclose_message_fds(dj->sweep);
                sd_bus_message_unref(dj->sweep);
        }
        free(dj);
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

/* The entry's EntryLife, so that entries_adopt() in finish allocates
 * nothing. */
static int deposit_store_prepare(void *userdata, Entry *e) {
        DepositJob *dj = userdata;
        return entries_life_new(dj->broker, e);
}

static void deposit_store_discard(void *userdata, Entry *e) {
        entries_life_drop(e);
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

        entries_adopt(b, e, p, dj->plan.o.timeout_usec);
        if (old)
                entries_forget(b, old, "replaced");
        log_info("%s deposited '%s' (uid %u, %s, %s%s%s)", p->unique_name, e->name, (unsigned) e->owner_uid,
                 fdkind_to_string(e->kind), fdinfo_accmode_to_string(e->flags), e->persistent ? ", persistent" : "",
                 e->once ? ", once" : "");
        watches_entry_added(&b->watches, e, entries_watcher_may_see, retrieve_append_info, b);
}

static const DepositStore broker_deposit_store = {
        .charge = deposit_store_charge,
        .prepare = deposit_store_prepare,
        .discard = deposit_store_discard,
        .add = deposit_store_add,
        .undo = deposit_store_undo,
        .finish = deposit_store_finish,
};

/* Commits dj's plan for the call m and answers it. */
int deposit_commit_reply(DepositJob *dj, sd_bus_message *m, sd_bus_error *error) {
        Broker *b = dj->broker;
        DepositPlan *plan = &dj->plan;
        int r;

        r = deposit_commit(plan, &broker_deposit_store, dj, error);
        if (r < 0)
                return r;
        if (plan->o.persistent)
                entries_save_state(b); /* once for all of them */
        if (dj->call == DEPOSIT_CALL_CREATE_MEMORY) {
                r = sd_bus_reply_method_return(m, "h", plan->memfd);
                if (r >= 0)
                        retrieve_note_fds_sent(b, m, 1);
        } else
                r = sd_bus_reply_method_return(m, NULL);
        for (size_t i = 0; i < plan->n; i++)
                waiters_serve(b, plan->items[i].name);
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
                        return retrieve_reopen_error(error, it->name, plan->uid, O_RDONLY, ops[k].result);
                it->reopened_fd = TAKE_FD(ops[k].ret_fd);
                k++;
        }
        return deposit_commit_reply(dj, m, error);
}

/* Runs a planned and authorized deposit: the read-only reopenings of the
 * caller's fds on a worker first (as the caller), then the commit. dj is
 * consumed. */
int deposit_run(Broker *b, Peer *p, sd_bus_message *m, DepositJob *dj_in, sd_bus_error *error) {
        _cleanup_(deposit_job_freep) DepositJob *dj = dj_in;
        WorkerOp ops[FDS_PER_CALL_MAX];
        const char *what;
        size_t n_ops = 0;
        int r;

        dj->plan.uid = p->uid;
        /* No second run from here on: whatever ends the job, the call's fds
         * are not read again. */
        dj->sweep = sd_bus_message_ref(m);
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
                                fdclose_kind(op.fd, it->kind);
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
int deposit_job_plan_item(Broker *b, DepositPlan *plan, DepositItem *it, sd_bus_error *error) {
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

/* CreateMemory's act, once authorized: the broker's own memfd of size
 * bytes, sealed against growing and shrinking, planned as dj's one item
 * named name, committed and answered. Nothing about the memfd is the
 * caller's to control, so even its read-only reopening is made here. */
int deposit_job_create_memory(DepositJob *dj, Peer *p, sd_bus_message *m, const char *name, uint64_t size,
                              sd_bus_error *error) {
        char memfd_name[250];
        DepositItem *it;
        int r;

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
                        return retrieve_reopen_error(error, name, p->uid, O_RDONLY, r);
        }
        dj->peer = p;
        return deposit_commit_reply(dj, m, error);
}
