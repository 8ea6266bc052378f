/* worker.c: the open pool. See worker.h.
 *
 * The loop and the threads share a Pool under one mutex: the queue of jobs
 * waiting for a thread, the list of finished jobs for the loop to answer,
 * and the list of every job in flight (for the per-uid share). A job is
 * touched by one side at a time: queued and done jobs by whoever holds the
 * lock, a running job by its thread only, except for its state. When the
 * loop gives up on a running job (timeout, shutdown) it marks it ABANDONED
 * and forgets it; the thread then closes what it opened and frees it. The
 * Pool itself lives as long as its last thread, so a thread stuck forever
 * in the kernel never touches freed memory. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "cleanup.h"
#include "fdclose.h"
#include "log.h"
#include "openpath.h"
#include "peers.h"
#include "thread.h"
#include "protocol.h"

#define THREAD_STACK_SIZE (256u * 1024u)

typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_DONE,
        JOB_ABANDONED,
} JobState;

typedef struct Pool Pool;

typedef struct Job {
        struct Job *next;             /* queue or done list (locked) */
        struct Job *all_prev, *all_next; /* in flight (locked) */
        JobState state;               /* locked */
        uid_t uid;

        /* The loop's side: released when the job is answered or abandoned. */
        Worker *worker;
        sd_bus_message *message;
        char *what;
        worker_done_fn done;
        void *ctx;
        void (*ctx_free)(void *);
        sd_event_source *timer;

        size_t n_ops;
        WorkerOp ops[];
} Job;

struct Pool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        unsigned refs;                /* the Worker, and each thread */
        unsigned n_threads, n_idle, n_queued;
        Job *queue, *queue_tail;
        Job *done;
        Job *reaped;                  /* abandoned, finished: the loop discharges their uid */
        Job *all;
        unsigned n_all;
        int efd;
        bool shutdown;
};

struct Worker {
        sd_event *event;
        uint64_t timeout_usec;
        sd_event_source *efd_source;
        Pool *pool;
        Accounting *acct;             /* borrowed, may be NULL */
};

void worker_op_done(WorkerOp *op) {
        /* Both are the caller's file (loop or thread): fdclose.h. */
        op->fd = fdclose_kind(op->fd, op->kind);
        op->ret_fd = fdclose_caller_fd(op->ret_fd);
        free(op->path);
        op->path = NULL;
        free(op->gids);
        op->gids = NULL;
        op->n_gids = 0;
}

/* ---- credentials ------------------------------------------------------- */

typedef struct SavedCreds {
        uid_t fsuid;
        gid_t fsgid;
        gid_t *groups;
        int n_groups;
        struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
} SavedCreds;

static int caps_get(struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        return syscall(SYS_capget, &h, caps) < 0 ? -errno : 0;
}

/* Per thread: capset(2) on pid 0 changes the calling thread only. */
static int caps_set(const struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3]) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        return syscall(SYS_capset, &h, caps) < 0 ? -errno : 0;
}

/* setgroups() of glibc changes every thread of the process; the raw
 * syscall changes this one. */
static int thread_setgroups(size_t n, const gid_t *gids) {
        return syscall(SYS_setgroups, n, gids) < 0 ? -errno : 0;
}

/* Puts the thread back as it was; a thread that cannot be put back must
 * never run another job, nor the process anything with mixed credentials. */
static void creds_leave(SavedCreds *s) {
        if (caps_set(s->caps) < 0 || thread_setgroups((size_t) s->n_groups, s->groups) < 0)
                abort();
        (void) setfsuid(s->fsuid);
        (void) setfsgid(s->fsgid);
        if ((uid_t) setfsuid((uid_t) -1) != s->fsuid || (gid_t) setfsgid((gid_t) -1) != s->fsgid)
                abort();
        /* fsuid back to 0 raised the file capabilities again: restore exactly. */
        if (caps_set(s->caps) < 0)
                abort();
        free(s->groups);
        s->groups = NULL;
}

/* Takes on the depositor's file-system identity: fsuid, fsgid (the
 * overflow gid: see worker.h), supplementary groups, and no effective
 * capability (an fsuid change from one non-zero uid to another keeps
 * CAP_DAC_OVERRIDE, and from 0 it keeps CAP_SYS_PTRACE and the others).
 * -EPERM when the broker may not (no CAP_SETUID/CAP_SETGID), with nothing
 * changed. */
/* Remembers the thread's credentials for creds_leave(). */
static int creds_save(SavedCreds *s) {
        int n, r;

        *s = (SavedCreds) {};
        r = caps_get(s->caps);
        if (r < 0)
                return r;
        n = getgroups(0, NULL);
        if (n < 0)
                return -errno;
        s->groups = calloc((size_t) n + 1, sizeof(gid_t));
        if (!s->groups)
                return -ENOMEM;
        n = getgroups(n, s->groups);
        if (n < 0) {
                r = -errno;
                free(s->groups);
                s->groups = NULL;
                return r;
        }
        s->n_groups = n;
        s->fsuid = (uid_t) setfsuid((uid_t) -1);
        s->fsgid = (gid_t) setfsgid((gid_t) -1);
        return 0;
}

/* The saved capabilities with nothing effective. */
static void caps_none_effective(const SavedCreds *s, struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3]) {
        memcpy(none, s->caps, sizeof s->caps);
        for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
                none[i].effective = 0;
}

static bool caps_has_effective(const SavedCreds *s, unsigned cap) {
        return s->caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

static int creds_enter(const WorkerOp *op, SavedCreds *s) {
        struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
        int r;

        r = creds_save(s);
        if (r < 0)
                return r;

        r = thread_setgroups(op->n_gids, op->gids);
        if (r < 0) {
                free(s->groups);
                return r == -EPERM ? -EPERM : r;
        }
        (void) setfsgid(WORKER_OVERFLOW_GID);
        (void) setfsuid(op->uid);
        if ((gid_t) setfsgid((gid_t) -1) != WORKER_OVERFLOW_GID || (uid_t) setfsuid((uid_t) -1) != op->uid) {
                creds_leave(s);
                return -EPERM;
        }
        caps_none_effective(s, none);
        r = caps_set(none);
        if (r < 0) {
                creds_leave(s);
                return r;
        }
        return 0;
}

typedef struct OwnerCreds {
        SavedCreds saved;
        bool taken;                   /* uid/gid below are the thread's now */
        uid_t uid;
        gid_t gid;
} OwnerCreds;

/* openpath_become_fn for OpenPath (openpath.h): each step of its walk takes
 * the owner's fsuid and fsgid with nothing effective. The saved capabilities
 * come back first, for CAP_SETUID/CAP_SETGID: setfsuid() checks the
 * effective set, which the previous step emptied. A step whose owner is the
 * previous one's changes nothing (each change costs four credential
 * commits; most paths are root's all the way). */
static int become_owner(void *userdata, uid_t uid, gid_t gid) {
        struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
        OwnerCreds *o = userdata;
        SavedCreds *s = &o->saved;
        int r;

        if (o->taken && o->uid == uid && o->gid == gid)
                return 0;
        o->taken = false;
        r = caps_set(s->caps);
        if (r < 0)
                return r;
        (void) setfsgid(gid);
        (void) setfsuid(uid);
        /* From fsuid 0 to another uid the kernel drops CAP_DAC_OVERRIDE and
         * the other file capabilities from the effective set, from another
         * uid to 0 it raises them, between two others it keeps them:
         * whatever it did, nothing is effective for the open. */
        caps_none_effective(s, none);
        r = caps_set(none);
        if (r < 0)
                return r;
        if ((gid_t) setfsgid((gid_t) -1) != gid || (uid_t) setfsuid((uid_t) -1) != uid)
                return -EPERM;
        o->taken = true;
        o->uid = uid;
        o->gid = gid;
        return 0;
}

/* OpenPath as the owner of each directory and of the file (openpath.h),
 * then the thread's own credentials back. Without CAP_SETUID/CAP_SETGID
 * (an unprivileged broker on a user bus) it opens as the broker: there is
 * no other authority to use. */
static int run_open_path(WorkerOp *op) {
        OwnerCreds o = {};
        int r;

        r = creds_save(&o.saved);
        if (r < 0)
                return r;
        if (!caps_has_effective(&o.saved, CAP_SETUID) || !caps_has_effective(&o.saved, CAP_SETGID)) {
                free(o.saved.groups);
                return openpath_open(op->path, op->accmode, op->nonblock, NULL, NULL, &op->ret_fd);
        }
        r = thread_setgroups(0, NULL);
        if (r >= 0)
                r = openpath_open(op->path, op->accmode, op->nonblock, become_owner, &o, &op->ret_fd);
        creds_leave(&o.saved);
        return r;
}

static int run_op_plain(WorkerOp *op) {
        switch (op->type) {
        case WORKER_OP_REOPEN:
                return fdinfo_reopen(op->fd, op->kind, op->accmode, &op->ret_fd);
        case WORKER_OP_OPEN_PATH:
                return run_open_path(op);
        case WORKER_OP_CALL:
                return op->call(op->arg, &op->ret_fd);
        }
        return -EINVAL;
}

void worker_run_op(WorkerOp *op) {
        SavedCreds saved;
        int r;

        op->ret_fd = -1;
        if (op->as_depositor && !(op->uid == geteuid() && geteuid() != 0)) {
                /* Same uid as an unprivileged broker (a user bus): nothing
                 * to switch, and no privilege to switch with. */
                r = creds_enter(op, &saved);
                if (r < 0) {
                        op->result = r == -EPERM ? -ENOTRECOVERABLE : r;
                        return;
                }
                op->result = run_op_plain(op);
                creds_leave(&saved);
        } else
                op->result = run_op_plain(op);
        if (op->result < 0)
                op->ret_fd = safe_close(op->ret_fd);
}

/* ---- threads ----------------------------------------------------------- */

static void job_free_ops(Job *j) {
        for (size_t i = 0; i < j->n_ops; i++)
                worker_op_done(&j->ops[i]);
}

/* Locked. */
static void all_remove(Pool *p, Job *j) {
        if (j->all_prev)
                j->all_prev->all_next = j->all_next;
        else
                p->all = j->all_next;
        if (j->all_next)
                j->all_next->all_prev = j->all_prev;
        j->all_prev = j->all_next = NULL;
        p->n_all--;
}

static void pool_unref_locked(Pool *p) {
        bool last = --p->refs == 0;

        pthread_mutex_unlock(&p->lock);
        if (!last)
                return;
        safe_close(p->efd);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

static void *thread_main(void *userdata) {
        Pool *p = userdata;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                Job *j;

                while (!p->queue && !p->shutdown) {
                        p->n_idle++;
                        pthread_cond_wait(&p->wake, &p->lock);
                        p->n_idle--;
                }
                if (!p->queue)
                        break;
                j = p->queue;
                p->queue = j->next;
                if (!p->queue)
                        p->queue_tail = NULL;
                j->next = NULL;
                p->n_queued--;
                j->state = JOB_RUNNING;
                pthread_mutex_unlock(&p->lock);

                for (size_t i = 0; i < j->n_ops; i++) {
                        worker_run_op(&j->ops[i]);
                        /* Closing may wait for a FUSE flush too: on a closer
                         * (fdclose.h), so this thread is not held either. */
                        j->ops[i].fd = fdclose_kind(j->ops[i].fd, j->ops[i].kind);
                }

                pthread_mutex_lock(&p->lock);
                if (j->state == JOB_ABANDONED) {
                        all_remove(p, j);
                        pthread_mutex_unlock(&p->lock);
                        job_free_ops(j);
                        pthread_mutex_lock(&p->lock);
                        if (p->shutdown) {
                                free(j);
                                continue;
                        }
                        /* Its slot is free again: the loop gives it back
                         * to the uid's account. */
                        j->next = p->reaped;
                        p->reaped = j;
                        (void) eventfd_write(p->efd, 1);
                        continue;
                }
                j->state = JOB_DONE;
                j->next = p->done;
                p->done = j;
                (void) eventfd_write(p->efd, 1);
        }
        p->n_threads--;
        pool_unref_locked(p);
        return NULL;
}

/* Locked. */
static int spawn_thread(Pool *p) {
        int r = thread_spawn_detached(THREAD_STACK_SIZE, thread_main, p);
        if (r < 0)
                return r;
        p->n_threads++;
        p->refs++;
        return 0;
}

/* ---- the loop's side --------------------------------------------------- */

static void job_release_loop_side(Job *j) {
        j->timer = sd_event_source_disable_unref(j->timer);
        j->message = sd_bus_message_unref(j->message);
        if (j->ctx_free)
                j->ctx_free(j->ctx);
        j->ctx = NULL;
        free(j->what);
        j->what = NULL;
}

static void job_answer(Job *j) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (j->worker->acct)
                accounting_discharge(j->worker->acct, j->uid, ACCT_WORKERS, 1);
        j->timer = sd_event_source_disable_unref(j->timer);
        r = j->done(j->message, j->ops, j->n_ops, j->ctx, &error);
        reply_if_failed(j->message, r, &error);
        job_release_loop_side(j);
        job_free_ops(j);
        free(j);
}

static int on_efd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        Pool *p = w->pool;
        eventfd_t v;
        Job *done, *reaped, *rev = NULL;

        (void) eventfd_read(p->efd, &v);
        pthread_mutex_lock(&p->lock);
        done = p->done;
        p->done = NULL;
        reaped = p->reaped;
        p->reaped = NULL;
        for (Job *j = done; j; j = j->next)
                all_remove(p, j);
        pthread_mutex_unlock(&p->lock);

        while (reaped) {
                Job *next = reaped->next;
                if (w->acct)
                        accounting_discharge(w->acct, reaped->uid, ACCT_WORKERS, 1);
                free(reaped);
                reaped = next;
        }

        /* The list is newest first; answer in the order they finished. */
        while (done) {
                Job *next = done->next;
                done->next = rev;
                rev = done;
                done = next;
        }
        while (rev) {
                Job *next = rev->next;
                job_answer(rev);
                rev = next;
        }
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Pool *p = j->worker->pool;
        bool queued = false;

        pthread_mutex_lock(&p->lock);
        if (j->state == JOB_DONE) {
                /* Finished just now: on_efd answers it. */
                pthread_mutex_unlock(&p->lock);
                return 0;
        }
        if (j->state == JOB_QUEUED) {
                Job **pp = &p->queue;
                while (*pp != j)
                        pp = &(*pp)->next;
                *pp = j->next;
                p->queue_tail = NULL;
                for (Job *q = p->queue; q; q = q->next)
                        p->queue_tail = q;
                p->n_queued--;
                all_remove(p, j);
                queued = true;
        } else
                j->state = JOB_ABANDONED;
        pthread_mutex_unlock(&p->lock);

        log_warning("open of '%s' for uid %u did not finish within %.1f s; answered Busy", j->what,
                    (unsigned) j->uid, j->worker->timeout_usec / 1e6);
        (void) sd_bus_reply_method_errorf(j->message, FDB_ERROR_NAME_BUSY,
                                          "'%s' did not open within %.1f s: a lease being broken, or a file system "
                                          "that does not answer; try again later.",
                                          j->what, j->worker->timeout_usec / 1e6);
        if (queued && j->worker->acct)
                accounting_discharge(j->worker->acct, j->uid, ACCT_WORKERS, 1);
        job_release_loop_side(j);
        if (queued) {
                job_free_ops(j);
                free(j);
        }
        /* else: the thread owns it now. */
        return 0;
}

int worker_new(sd_event *event, Worker **ret) {
        _cleanup_free_ Worker *w = calloc(1, sizeof *w);
        Pool *p;
        int r;

        if (!w)
                return -ENOMEM;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                r = -errno;
                free(p);
                return r;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        p->refs = 1;
        w->pool = p;
        r = sd_event_add_io(event, &w->efd_source, p->efd, EPOLLIN, on_efd, w);
        if (r < 0) {
                pthread_mutex_lock(&p->lock);
                pool_unref_locked(p);
                return r;
        }
        w->event = sd_event_ref(event);
        w->timeout_usec = WORKER_TIMEOUT_USEC;
        *ret = TAKE_PTR(w);
        return 0;
}

void worker_set_accounting(Worker *w, Accounting *acct) {
        w->acct = acct;
}

void worker_set_timeout(Worker *w, uint64_t usec) {
        w->timeout_usec = usec;
}

Worker *worker_free(Worker *w) {
        Pool *p;
        Job *drop = NULL;

        if (!w)
                return NULL;
        p = w->pool;
        pthread_mutex_lock(&p->lock);
        /* Queued and finished jobs are the loop's to free; running ones are
         * left to their threads. */
        for (Job *j = p->all, *next; j; j = next) {
                next = j->all_next;
                if (j->state == JOB_RUNNING) {
                        j->state = JOB_ABANDONED;
                        job_release_loop_side(j);
                } else if (j->state == JOB_QUEUED || j->state == JOB_DONE) {
                        all_remove(p, j);
                        j->next = drop;
                        drop = j;
                }
        }
        while (p->reaped) {
                Job *next = p->reaped->next;
                free(p->reaped);
                p->reaped = next;
        }
        p->queue = p->queue_tail = NULL;
        p->done = NULL;
        p->n_queued = 0;
        p->shutdown = true;
        pthread_cond_broadcast(&p->wake);
        pool_unref_locked(p);

        while (drop) {
                Job *next = drop->next;
                job_release_loop_side(drop);
                job_free_ops(drop);
                free(drop);
                drop = next;
        }
        sd_event_source_disable_unref(w->efd_source);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

/* Locked. */
static unsigned jobs_of_locked(const Pool *p, uid_t uid) {
        unsigned n = 0;
        for (const Job *j = p->all; j; j = j->all_next)
                n += j->uid == uid;
        return n;
}

unsigned worker_jobs_of(const Worker *w, uid_t uid) {
        unsigned n;
        pthread_mutex_lock(&w->pool->lock);
        n = jobs_of_locked(w->pool, uid);
        pthread_mutex_unlock(&w->pool->lock);
        return n;
}

unsigned worker_jobs(const Worker *w) {
        unsigned n;
        pthread_mutex_lock(&w->pool->lock);
        n = w->pool->n_all;
        pthread_mutex_unlock(&w->pool->lock);
        return n;
}

bool worker_is_idle(const Worker *w) {
        bool idle = true;
        pthread_mutex_lock(&w->pool->lock);
        for (const Job *j = w->pool->all; j; j = j->all_next)
                idle = idle && j->state == JOB_ABANDONED;
        pthread_mutex_unlock(&w->pool->lock);
        return idle;
}

/* Frees a job that never reached the queue: its loop side (ctx, what, timer,
 * message) and its ops' fds. */
static void job_discard(Job *j) {
        job_release_loop_side(j);
        job_free_ops(j);
        free(j);
}

/* A new job owning ops (left WORKER_OP_INIT in the caller's array) and ctx.
 * On -ENOMEM both have been released already. */
static int job_new(Worker *w, uid_t caller_uid, const char *what, WorkerOp *ops, size_t n_ops, worker_done_fn done,
                   void *ctx, void (*ctx_free)(void *), Job **ret) {
        Job *j;

        j = calloc(1, sizeof *j + n_ops * sizeof(WorkerOp));
        if (!j) {
                for (size_t i = 0; i < n_ops; i++)
                        worker_op_done(&ops[i]);
                if (ctx_free)
                        ctx_free(ctx);
                return -ENOMEM;
        }
        j->n_ops = n_ops;
        for (size_t i = 0; i < n_ops; i++) {
                j->ops[i] = ops[i];
                j->ops[i].ret_fd = -1;
                ops[i] = (WorkerOp) WORKER_OP_INIT;
        }
        j->worker = w;
        j->uid = caller_uid;
        j->done = done;
        j->ctx = ctx;
        j->ctx_free = ctx_free;
        j->what = strdup(what);
        if (!j->what) {
                job_discard(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* Charges the caller one ACCT_WORKERS slot and lowers *max_threads to what the
 * accounting's total allows. Counted on the loop: a job is charged here and
 * given back when answered, or when the thread of an abandoned one returns
 * (on_efd). Returns 1 if charged, 0 without accounting. */
static int job_charge(Worker *w, uid_t caller_uid, const char *what, unsigned *max_threads, sd_bus_error *error) {
        AcctRefusal why;
        char text[256];
        uint64_t t;
        int r;

        if (!w->acct)
                return 0;
        r = accounting_charge(w->acct, caller_uid, ACCT_WORKERS, 1, &why);
        if (r == -EDQUOT) {
                accounting_format_refusal(&why, text, sizeof text);
                return sd_bus_error_setf(error, FDB_ERROR_NAME_QUOTA_EXCEEDED,
                                         "Cannot open '%s' now: %s; try again later.", what, text);
        }
        if (r < 0)
                return r;
        t = w->acct->limits[ACCT_WORKERS].total;
        *max_threads = t == 0 || t > WORKER_THREADS_MAX ? WORKER_THREADS_MAX : (unsigned) t;
        return 1;
}

/* Locked. Without accounting, how many jobs one uid may hold: half of the
 * slots still free, and one while any is. */
static unsigned share_locked(const Pool *p) {
        unsigned share = (WORKER_JOBS_MAX - p->n_all) / 2;

        if (share < 1)
                share = p->n_all < WORKER_JOBS_MAX ? 1 : 0;
        return share;
}

/* Locked. Starts a thread when no idle one is left for the queue and the
 * limit allows; fails only when the pool is left without any thread. */
static int ensure_thread_locked(Pool *p, unsigned max_threads) {
        int r;

        if (p->n_idle <= p->n_queued && p->n_threads < max_threads) {
                r = spawn_thread(p);
                if (r < 0 && p->n_threads == 0)
                        return r;
        }
        return 0;
}

/* Locked. Puts j on the list of all jobs and at the tail of the queue, and
 * wakes a thread for it. */
static void job_queue_locked(Pool *p, Job *j, sd_bus_message *m) {
        j->message = sd_bus_message_ref(m);
        j->state = JOB_QUEUED;
        j->all_next = p->all;
        if (p->all)
                p->all->all_prev = j;
        p->all = j;
        p->n_all++;
        if (p->queue_tail)
                p->queue_tail->next = j;
        else
                p->queue = j;
        p->queue_tail = j;
        p->n_queued++;
        pthread_cond_signal(&p->wake);
}

int worker_submit(Worker *w, sd_bus_message *m, uid_t caller_uid, const char *what, WorkerOp *ops, size_t n_ops,
                  worker_done_fn done, void *ctx, void (*ctx_free)(void *), sd_bus_error *error) {
        Pool *p = w->pool;
        unsigned mine, all, max_threads = WORKER_JOBS_MAX;
        bool charged = false;
        Job *j;
        int r;

        r = job_new(w, caller_uid, what, ops, n_ops, done, ctx, ctx_free, &j);
        if (r < 0)
                return r;
        r = job_charge(w, caller_uid, what, &max_threads, error);
        if (r < 0)
                goto fail;
        charged = r > 0;

        pthread_mutex_lock(&p->lock);
        mine = jobs_of_locked(p, caller_uid);
        if (!w->acct && mine >= share_locked(p)) {
                all = p->n_all;
                pthread_mutex_unlock(&p->lock);
                r = sd_bus_error_setf(error, FDB_ERROR_NAME_QUOTA_EXCEEDED,
                                      "Cannot open '%s' now: uid %u has %u opens in progress (of %u in all), its "
                                      "share of the broker's %u; try again later.",
                                      what, (unsigned) caller_uid, mine, all, WORKER_JOBS_MAX);
                goto fail;
        }
        r = ensure_thread_locked(p, max_threads);
        if (r < 0) {
                pthread_mutex_unlock(&p->lock);
                log_error("cannot start a worker thread: %s", strerror(-r));
                r = sd_bus_error_setf(error, FDB_ERROR_NAME_BUSY,
                                      "Cannot open '%s' now: the broker could not start a thread; try "
                                      "again later.",
                                      what);
                goto fail;
        }
        r = sd_event_add_time_relative(w->event, &j->timer, CLOCK_MONOTONIC, w->timeout_usec, 0, on_timeout, j);
        if (r < 0) {
                pthread_mutex_unlock(&p->lock);
                goto fail;
        }
        job_queue_locked(p, j, m);
        pthread_mutex_unlock(&p->lock);
        return 0;

fail:
        if (charged)
                accounting_discharge(w->acct, caller_uid, ACCT_WORKERS, 1);
        job_discard(j);
        return r;
}
