/* deposit.c: the deposit transaction. See deposit.h. */
#include "deposit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fdclose.h"

#define ERROR_NOT_SUPPORTED FDB_ERROR_NAME_NOT_SUPPORTED
#define ERROR_BUSY FDB_ERROR_NAME_BUSY
#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED

void deposit_plan_init(DepositPlan *plan) {
        *plan = (DepositPlan) { .memfd = -1 };
        for (size_t i = 0; i < ELEMENTSOF(plan->items); i++)
                plan->items[i] = (DepositItem) { .fd = -1, .reopened_fd = -1 };
}

void deposit_plan_done(DepositPlan *plan) {
        for (size_t i = 0; i < plan->n; i++) {
                plan->items[i].reopened_fd = fdclose_kind(plan->items[i].reopened_fd, plan->items[i].kind);
                entry_free(plan->items[i].entry);
                plan->items[i].entry = NULL;
        }
        plan->memfd = safe_close(plan->memfd);
        deposit_options_done(&plan->o);
}

void deposit_plan_free(void *plan) {
        if (!plan)
                return;
        deposit_plan_done(plan);
        free(plan);
}

bool deposit_item_needs_reopen(const DepositItem *it) {
        return it->read_only && (it->flags & O_ACCMODE) == O_RDWR;
}

int deposit_plan_item(const DepositPlan *plan, DepositItem *it, sd_bus_error *error) {
        const DepositOptions *o = &plan->o;
        const char *name = it->name;
        FdKind kind;
        int fl, r;

        r = fdinfo_get_flags(it->fd, &fl);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The fd for '%s' is not usable: %s.", name,
                                         strerror(-r));
        if (fl & O_PATH)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "The fd for '%s' is an O_PATH fd, which is no proof of access; "
                                         "open the file for reading or writing instead.",
                                         name);
        r = fdinfo_classify(it->fd, &kind);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The fd for '%s' is not usable: %s.", name,
                                         strerror(-r));

        if (o->seal) {
                int seals;
                if (kind != FD_KIND_MEMFD)
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "Option 'seal' needs a memfd, but the fd for '%s' is a %s.", name,
                                                 fdkind_to_string(kind));
                seals = fcntl(it->fd, F_GET_SEALS);
                if (seals < 0 || ((seals & F_SEAL_SEAL) && !fdinfo_is_sealed(it->fd)))
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "The memfd for '%s' cannot be sealed (it was created without "
                                                 "MFD_ALLOW_SEALING, or sealing was sealed).",
                                                 name);
                if (!(seals & F_SEAL_SEAL) && (fl & O_ACCMODE) == O_RDONLY)
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "Sealing '%s' needs a writable fd to the memfd; this one is read-only.",
                                                 name);
        }

        if (it->read_only) {
                if ((fl & O_ACCMODE) == O_WRONLY)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "The fd for '%s' is write-only; keeping it read-only would grant "
                                                 "read access it never had.",
                                                 name);
                if ((fl & O_ACCMODE) == O_RDWR && !fdkind_can_reopen(kind))
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "%s cannot narrow the fd for '%s': a %s cannot be reopened "
                                                 "read-only.",
                                                 it->read_only_by_rule ? "Policy's Access=read-only"
                                                                       : "Option 'access=read-only'",
                                                 name, fdkind_to_string(kind));
        }

        it->kind = kind;
        it->flags = fl;
        return 0;
}

/* Step 2 for one item: the entry, owning the broker's duplicate of it->fd
 * or the reopening made for it (consumed). Does not seal, does not store. */
static int build_entry(DepositPlan *plan, DepositItem *it) {
        const DepositOptions *o = &plan->o;
        _cleanup_(entry_freep) Entry *e = entry_new(it->name);
        int r;

        if (!e)
                return -ENOMEM;
        if (o->description && *o->description) {
                e->description = strdup(o->description);
                if (!e->description)
                        return -ENOMEM;
        }
        if (deposit_item_needs_reopen(it)) {
                if (it->reopened_fd < 0)
                        return -EOPNOTSUPP; /* the broker reopens before committing */
                r = fdinfo_get_flags(it->reopened_fd, &e->flags);
                if (r < 0)
                        return r;
                e->fd = TAKE_FD(it->reopened_fd);
        } else {
                e->fd = fcntl(it->fd, F_DUPFD_CLOEXEC, 3);
                if (e->fd < 0)
                        return -errno;
                e->flags = it->flags;
        }
        e->kind = it->kind;
        e->owner_uid = plan->uid;
        e->persistent = o->persistent;
        e->once = o->once;
        e->memory = plan->memory;
        if (o->n_allow > 0) {
                e->allow = calloc(o->n_allow, sizeof *e->allow);
                if (!e->allow)
                        return -ENOMEM;
                for (size_t i = 0; i < o->n_allow; i++) {
                        e->allow[i] = o->allow[i];
                        e->allow[i].label = NULL;
                        e->n_allow = i + 1;
                        if (o->allow[i].label) {
                                e->allow[i].label = strdup(o->allow[i].label);
                                if (!e->allow[i].label)
                                        return -ENOMEM;
                        }
                }
        }
        it->entry = TAKE_PTR(e);
        return 0;
}

static int build_failed(sd_bus_error *error, const DepositPlan *plan, const char *name, int r) {
        const char *nothing = plan->n > 1 ? "; nothing was deposited" : "";

        if (r == -EMFILE || r == -ENFILE)
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot store '%s': the broker is out of file descriptors%s.",
                                         name, nothing);
        if (r == -ENOMEM)
                return r;
        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "Cannot store '%s': %s%s.", name, strerror(-r), nothing);
}

/* Step 2: every item's entry, nothing visible yet, with what the store
 * needs to adopt them at 5 without allocating. */
static int build_entries(DepositPlan *plan, const DepositStore *store, void *userdata, sd_bus_error *error) {
        int r;

        for (size_t i = 0; i < plan->n; i++) {
                r = build_entry(plan, &plan->items[i]);
                if (r >= 0 && store->prepare)
                        r = store->prepare(userdata, plan->items[i].entry);
                if (r < 0)
                        return build_failed(error, plan, plan->items[i].name, r);
        }
        return 0;
}

/* Step 3: seals, when asked; the last step a caller's objects can refuse
 * (deposit.h). */
static int seal_items(const DepositPlan *plan, sd_bus_error *error) {
        int r;

        if (!plan->o.seal)
                return 0;
        for (size_t i = 0; i < plan->n; i++) {
                const DepositItem *it = &plan->items[i];
                r = fdinfo_seal(it->fd);
                if (r == -EBUSY)
                        r = sd_bus_error_setf(
                                error, ERROR_BUSY,
                                "Cannot seal '%s': writable shared mappings of it exist; unmap them first. "
                                "Nothing was deposited%s.",
                                it->name,
                                i > 0 ? "; the memfds listed before it were sealed, as asked (a seal cannot "
                                        "be undone)"
                                      : "");
                else if (r < 0)
                        r = sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                              "Cannot seal '%s': %s; nothing was deposited.", it->name,
                                              strerror(-r));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Step 4: store each entry, replacing its old one. *added counts those
 * stored, for the rollback to undo. */
static int add_entries(DepositPlan *plan, const DepositStore *store, void *userdata, size_t *added,
                       sd_bus_error *error) {
        int r;

        for (; *added < plan->n; (*added)++) {
                DepositItem *it = &plan->items[*added];
                r = store->add(userdata, it->entry, it->old);
                if (r < 0)
                        return build_failed(error, plan, it->name, r);
        }
        return 0;
}

/* Step 5: hand the entries over; nothing can fail any more. */
static void finish_entries(DepositPlan *plan, const DepositStore *store, void *userdata) {
        for (size_t i = 0; i < plan->n; i++) {
                DepositItem *it = &plan->items[i];
                store->finish(userdata, TAKE_PTR(it->entry), it->old);
                it->old = NULL;
        }
}

/* Undoes the first added stores, newest first, and frees every built entry. */
static void rollback(DepositPlan *plan, const DepositStore *store, void *userdata, size_t added) {
        while (added > 0) {
                DepositItem *it = &plan->items[--added];
                store->undo(userdata, it->entry, it->old);
        }
        for (size_t i = 0; i < plan->n; i++) {
                if (plan->items[i].entry && store->discard)
                        store->discard(userdata, plan->items[i].entry);
                entry_free(plan->items[i].entry);
                plan->items[i].entry = NULL;
                plan->items[i].old = NULL;
        }
}

int deposit_commit(DepositPlan *plan, const DepositStore *store, void *userdata, sd_bus_error *error) {
        size_t added = 0;
        int r;

        /* 1. What may have changed since the plan. ACCOUNTING: this is the
         * one place where a deposit is charged to its uid. */
        r = store->charge(userdata, plan, error);
        if (r >= 0)
                r = build_entries(plan, store, userdata, error);
        if (r >= 0)
                r = seal_items(plan, error);
        if (r >= 0)
                r = add_entries(plan, store, userdata, &added, error);
        if (r < 0) {
                rollback(plan, store, userdata, added);
                return r;
        }
        finish_entries(plan, store, userdata);
        return 0;
}
