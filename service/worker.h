/* worker.h: opens on a caller's behalf, off the event loop.
 *
 * An open() whose duration a caller controls (a file under a lease being
 * broken, a FUSE or NFS server that never answers, a FIFO) must not stall
 * the loop that serves everyone. Handlers hand such opens to the pool as a
 * job of up to FDB_FDS_PER_CALL_MAX operations and return; the loop learns
 * of the result through an eventfd and calls the job's done function,
 * which answers the call. A job not done within WORKER_TIMEOUT_USEC is
 * answered Busy right then; its thread finishes (or never does) alone,
 * and closes what it opened.
 *
 * Threads: one per job in flight, started on demand and kept for reuse,
 * at most the accounting's MaxWorkers (WORKER_JOBS_MAX without one, never
 * more than WORKER_THREADS_MAX). A thread stuck in the kernel is not
 * replaced by taking from anyone else's share: every job in flight, its
 * stuck ones included until their thread comes back, is charged to the
 * caller's uid as ACCT_WORKERS (accounting.h: MaxWorkersPerUser and the
 * fair share of what is left of MaxWorkers); over it, QuotaExceeded. So a
 * hostile uid can stick at most half of the threads, and every other uid
 * still finds a thread at once. Without an accounting (tests) a uid may
 * have half of the free slots of WORKER_JOBS_MAX.
 *
 * Reopenings run with the depositor's credentials: the thread's fsuid,
 * fsgid and supplementary groups (per-thread raw syscalls), with no
 * effective capability, then restores its own. OpenPath's walk and open
 * run as the owner of each directory and of the file (openpath.h), the
 * same way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "accounting.h"
#include "fdinfo.h"

#define WORKER_JOBS_MAX 32u
#define WORKER_THREADS_MAX 256u
#define WORKER_TIMEOUT_USEC (UINT64_C(5) * 1000000)
/* fsgid for reopenings: the bus does not report the depositor's primary
 * gid, so group access comes only from the supplementary gids it does. */
#define WORKER_OVERFLOW_GID ((gid_t) 65534)

typedef struct Worker Worker;

typedef enum WorkerOpType {
        WORKER_OP_REOPEN,     /* fdinfo_reopen(fd, kind, accmode) */
        WORKER_OP_OPEN_PATH,  /* openpath_open(path, accmode, nonblock) as the owners */
        WORKER_OP_CALL,       /* call(arg, &ret_fd): tests */
} WorkerOpType;

typedef struct WorkerOp {
        WorkerOpType type;
        /* in */
        int fd;               /* REOPEN: owned by the op (a duplicate); closed on the worker */
        FdKind kind;
        int accmode;
        char *path;           /* OPEN_PATH: owned */
        bool nonblock;
        int (*call)(void *arg, int *ret_fd);
        void *arg;
        bool as_depositor;    /* switch to uid/gids below for the open */
        uid_t uid;
        gid_t *gids;          /* owned */
        size_t n_gids;
        /* out */
        int result;           /* 0 or negative errno */
        int ret_fd;           /* owned by the op until done() takes it (sets -1) */
} WorkerOp;

/* An op with nothing in it: fds -1. */
#define WORKER_OP_INIT { .fd = -1, .ret_fd = -1 }

/* Runs on the loop when the job's ops are done. Answers m (a negative
 * return or a set error is sent as the error reply); takes the ret_fds it
 * keeps by setting them to -1. ctx is freed after it returns. */
typedef int (*worker_done_fn)(sd_bus_message *m, WorkerOp *ops, size_t n_ops, void *ctx, sd_bus_error *error);

int worker_new(sd_event *event, Worker **ret);

/* Answers nothing more: jobs in flight are dropped (their threads close
 * what they open), finished ones are closed. Stuck threads keep only
 * their own share of the pool alive. Accepts NULL. */
Worker *worker_free(Worker *w);

/* Submits ops (n_ops ≤ FDB_FDS_PER_CALL_MAX, contents consumed: their fds,
 * paths and gids belong to the job) for the call m (referenced) of a caller
 * with uid caller_uid. what names the thing for the Busy message. ctx is
 * consumed (ctx_free, may be NULL, frees it), also on failure. Returns 0
 * when submitted: the handler returns 1, done answers later. Negative with
 * error set (QuotaExceeded) when the uid's share is used up. */
int worker_submit(Worker *w, sd_bus_message *m, uid_t caller_uid, const char *what, WorkerOp *ops, size_t n_ops,
                  worker_done_fn done, void *ctx, void (*ctx_free)(void *), sd_bus_error *error);

/* Charges every job to its uid in acct (borrowed; it must outlive w, or
 * be set back to NULL). Loop thread only. */
void worker_set_accounting(Worker *w, Accounting *acct);

/* Answer Busy after usec instead of WORKER_TIMEOUT_USEC (tests). */
void worker_set_timeout(Worker *w, uint64_t usec);

/* Releases what an op owns (fds, path, gids). */
void worker_op_done(WorkerOp *op);

/* No job in flight whose answer is still owed. */
bool worker_is_idle(const Worker *w);

/* Jobs in flight (answered or not) for uid, and in all. */
unsigned worker_jobs_of(const Worker *w, uid_t uid);
unsigned worker_jobs(const Worker *w);

/* Runs op on the calling thread, with the depositor's credentials when
 * op->as_depositor. Exposed for tests; the pool calls it. */
void worker_run_op(WorkerOp *op);
