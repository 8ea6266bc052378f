/* broker.c: the org.fdbroker.Broker1 bus object: vtable, handlers, properties.
 *
 * Every handler first learns who calls (peers.c; it may park the call until
 * the bus answered), then parses and validates all of its input, then
 * decides whether the caller may do it (policy/decide.c, polkit.c), and
 * only then acts through the module that owns the concept: deposit-job.c
 * (Deposit, DepositMany, CreateMemory), retrieve.c (Retrieve, RetrieveMany),
 * waiters.c (wait-usec), entries.c (removal, List visibility), openpath.c,
 * watch.c, direct.c. Also here: setting the broker up and down, and what
 * lifecycle.c asks of it (idle, status). fds read from a message are
 * borrowed from it; the broker keeps its own F_DUPFD_CLOEXEC duplicates (or
 * narrowed reopenings), owned by the entry. */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "acl.h"
#include "broker-private.h"
#include "cleanup.h"
#include "config.h"
#include "deposit-job.h"
#include "entries.h"
#include "fdclose.h"
#include "fdinfo.h"
#include "log.h"
#include "names.h"
#include "openpath.h"
#include "options.h"
#include "policy.h"
#include "retrieve.h"
#include "waiters.h"

#define OBJECT_PATH FDB_OBJECT_PATH
#define INTERFACE FDB_INTERFACE

/* ---- authorization ----------------------------------------------------- */

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

/* Authorizes every item of plan before anything is stored; questions to
 * polkit go out together and the call (handler) runs again when all are
 * in. A rule capping an item's access to read-only plans it again. Returns
 * 1 when all are allowed, 0 while polkit is asked, or refuses. */
static int authorize_deposit_items(Broker *b, sd_bus_message *m, Peer *p, DepositPlan *plan, peer_resume_fn handler,
                                   sd_bus_error *error) {
        bool pending = false;
        int r;

        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                bool read_only = it->read_only;

                r = authorize_deposit(b, m, p, POLICY_ACTION_DEPOSIT, it->name, handler, &it->read_only, error);
                if (r < 0)
                        return r;
                pending = pending || r == 0;
                if (r > 0 && it->read_only != read_only) {
                        it->read_only_by_rule = true;
                        r = deposit_job_plan_item(b, plan, it, error);
                        if (r < 0)
                                return r;
                }
        }
        return !pending;
}

/* Validates and plans plan's items, as read. */
static int plan_deposit_items(Broker *b, DepositPlan *plan, sd_bus_error *error) {
        int r;

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
                r = deposit_job_plan_item(b, plan, it, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads Deposit's (s name, h fd, a{sv} options) into plan. The fd is the
 * message's, borrowed. */
static int read_deposit(sd_bus_message *m, DepositPlan *plan, sd_bus_error *error) {
        const char *name;
        int fd, r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "h", &fd);
        if (r == -EBADMSG)
                return bad_handle(error, "fd", name);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &plan->o, error);
        if (r < 0)
                return r;
        plan->items[0].name = name;
        plan->items[0].fd = fd;
        plan->n = 1;
        return 0;
}

/* Reads DepositMany's (a{sh} fds, a{sv} options) into plan. The fds are
 * the message's, borrowed. */
static int read_deposit_many(sd_bus_message *m, DepositPlan *plan, sd_bus_error *error) {
        int r;

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
        return 0;
}

/* Deposit and DepositMany: read, plan, authorize, run (deposit-job.c). */
static int deposit_call_run(sd_bus_message *m, Broker *b, DepositCall call, peer_resume_fn handler,
                            sd_bus_error *error) {
        _cleanup_(deposit_job_freep) DepositJob *dj = NULL;
        Peer *p;
        int r;

        r = get_caller(b, m, handler, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        dj = deposit_job_new(b, call);
        if (!dj)
                return -ENOMEM;

        r = call == DEPOSIT_CALL_MANY ? read_deposit_many(m, &dj->plan, error) : read_deposit(m, &dj->plan, error);
        if (r < 0)
                return r;
        r = plan_deposit_items(b, &dj->plan, error);
        if (r < 0)
                return r;
        r = authorize_deposit_items(b, m, p, &dj->plan, handler, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return deposit_run(b, p, m, TAKE_PTR(dj), error);
}

/* A refusal is the call's last run: nothing reads the message's fds
 * again, so those whose close may wait are taken from sd-bus's close
 * (fdclose.h). A call waiting for credentials or polkit runs again; one
 * that got as far as deposit_run() is swept when its job ends. */
static int deposit_call(sd_bus_message *m, Broker *b, DepositCall call, peer_resume_fn handler,
                        sd_bus_error *error) {
        int r = deposit_call_run(m, b, call, handler, error);
        if (r < 0)
                fdclose_message_fds(m);
        return r;
}

static int method_deposit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return deposit_call(m, userdata, DEPOSIT_CALL_ONE, method_deposit, error);
}

static int method_deposit_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return deposit_call(m, userdata, DEPOSIT_CALL_MANY, method_deposit_many, error);
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
                        return waiters_park(b, p, m, name, &o, error);
                return not_found(error, name);
        }
        if (r <= 0)
                return r < 0 ? r : 1;
        return retrieve_reply(b, p, m, e, &o, cap, error);
}

/* Reads and validates RetrieveMany's (as names, a{sv} options): 1 to 16
 * distinct valid names. */
static int read_retrieve_many(sd_bus_message *m, char ***ret_names, size_t *ret_n, RetrieveOptions *o,
                              sd_bus_error *error) {
        _cleanup_(strv_freep) char **names = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_message_read_strv(m, &names);
        if (r < 0)
                return r;
        r = options_parse_retrieve(m, o, error);
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
        *ret_names = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

static int method_retrieve_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(strv_freep) char **names = NULL;
        Entry *entries[FDS_PER_CALL_MAX];
        int caps[FDS_PER_CALL_MAX];
        bool pending = false;
        RetrieveOptions o;
        size_t n = 0;
        Peer *p;
        int r;

        r = get_caller(b, m, method_retrieve_many, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = read_retrieve_many(m, &names, &n, &o, error);
        if (r < 0)
                return r;
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

        return retrieve_reply_many(b, p, m, names, entries, caps, n, &o, error);
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
        entries_remove(b, e, why);
        return sd_bus_reply_method_return(m, NULL);
}

static int compare_entries(const void *a, const void *b) {
        return strcmp((*(Entry *const *) a)->name, (*(Entry *const *) b)->name);
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
                if (name_has_prefix(all[i]->name, prefix) && entries_may_list(b, p, all[i]))
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
                        r = retrieve_append_info(reply, all[i]);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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

        return deposit_job_create_memory(dj, p, m, name, size, error);
}

/* OpenPath's open ran on a worker. */
static int on_path_opened(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        if (ops[0].result < 0)
                return openpath_set_error(error, ops[0].path, ops[0].accmode, ops[0].result);
        log_info("%s opened '%s' %s", sd_bus_message_get_sender(m) ?: "?", ops[0].path,
                 fdinfo_accmode_to_string(ops[0].accmode));
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "h", ops[0].ret_fd);
        if (r >= 0)
                r = fdclose_send(reply); /* sd-bus's copy of the caller's file: fdclose.h */
        if (r >= 0)
                retrieve_note_fds_sent(ctx, m, 1);
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

static void on_peer_gone(Peer *p, void *userdata) {
        Broker *b = userdata;

        polkit_forget_peer(&b->polkit, p);
        watches_forget_peer(&b->watches, p); /* before its entries: it is gone */
        waiters_forget_peer(p);
        entries_forget_peer(b, p);
}

/* The same object, on a direct connection: handlers find their caller by
 * the connection (peers_get_caller), and replies go back on it. */
static int broker_attach_connection(sd_bus *conn, void *userdata) {
        Broker *b = userdata;
        int r = sd_bus_add_filter(conn, NULL, fdclose_bus_filter, NULL);
        if (r < 0)
                return r;
        return sd_bus_add_object_vtable(conn, NULL, OBJECT_PATH, INTERFACE, broker_vtable, b);
}

int broker_listen_direct(Broker *b, const char *path) {
        return direct_serve_socket(&b->direct, path);
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
        b->reg.drop_owner_data = entries_life_drop; /* entries.c's EntryLife */
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
        /* fds of incoming calls whose close may wait: fdclose.h. */
        r = fdclose_attach_event(event);
        if (r < 0 && r != -EBUSY)
                return r;
        b->fdclose_attached = r >= 0;
        r = sd_bus_add_filter(bus, &b->fdclose_filter, fdclose_bus_filter, NULL);
        if (r < 0)
                return r;
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
        sd_bus_slot_unref(b->fdclose_filter);
        if (b->fdclose_attached)
                fdclose_detach_event();
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

int broker_restore(Broker *b, const char *runtime_dir) {
        int n, r;

        r = persist_init(&b->persist, runtime_dir);
        if (r < 0)
                return r;
        n = persist_restore(&b->persist, &b->reg, entries_on_restored, b);
        if (n < 0)
                return n;
        entries_save_state(b); /* so it lists exactly what was restored */
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
        if (b->reg.n_entries == 0)
                return broker_is_idle(b);
        if (b->waiters || b->polkit.queries || !peers_all_ready(&b->peers) || watches_any(&b->watches) ||
            (b->worker && !worker_is_idle(b->worker)) || b->direct.n_connections > 0 || b->direct.n_refused > 0)
                return false;
        return entries_all_stored(b);
}
void broker_format_status(const Broker *b, char *buf, size_t size) {
        snprintf(buf, size, "Serving %u entries (%u waiting calls).", b->reg.n_entries, b->n_waiters);
}

uint64_t broker_call_count(const Broker *b) {
        return b->n_calls;
}

void broker_set_exiting(Broker *b) {
        b->exiting = true;
}

