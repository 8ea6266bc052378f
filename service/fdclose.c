/* fdclose.c: the closer of caller fds. See fdclose.h.
 *
 * One process-wide pool, made on first use (entry_free() and the workers
 * have no Broker at hand): a queue of fds under a mutex, and detached
 * threads that take one fd at a time and close it. Threads are added on
 * demand and never exit, so a thread stuck in close() costs its stack and
 * nothing else; the pool is never freed. */
#include "fdclose.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define CLOSER_STACK_SIZE (64u * 1024u)

typedef struct Closers {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_cond_t idle;    /* signalled when a close is over */
        int *queue;             /* a ring of queue_size slots */
        size_t queue_size, head, n_queued;
        unsigned n_threads, n_idle, n_busy;
        unsigned long long deferred, inline_closed;
        int (*close_fn)(int fd);
} Closers;

static Closers closers = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER,
};

bool fdclose_is_quick(int fd, FdKind kind) {
        int domain;
        socklen_t l = sizeof domain;

        switch (kind) {
        case FD_KIND_MEMFD:
                /* Only shmem and hugetlbfs files carry seals: the name in
                 * /proc/self/fd alone could be a FUSE file's path. */
                return fcntl(fd, F_GET_SEALS) >= 0;
        case FD_KIND_FIFO:
        case FD_KIND_EVENTFD:
        case FD_KIND_TIMERFD:
        case FD_KIND_SIGNALFD:
        case FD_KIND_PIDFD:
                return true;
        case FD_KIND_SOCKET:
                /* The last close of a TCP socket with SO_LINGER waits; an
                 * AF_UNIX socket's never does. */
                return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) >= 0 && domain == AF_UNIX;
        default:
                /* Regular files and directories (FUSE flush, NFS write-back),
                 * devices (tty drain), dma-bufs and the unknown. */
                return false;
        }
}

static void *closer_main(void *userdata) {
        Closers *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                int fd;

                while (c->n_queued == 0) {
                        c->n_idle++;
                        pthread_cond_wait(&c->wake, &c->lock);
                        c->n_idle--;
                }
                fd = c->queue[c->head];
                c->head = (c->head + 1) % c->queue_size;
                c->n_queued--;
                c->n_busy++;
                int (*f)(int) = c->close_fn ? c->close_fn : close;
                pthread_mutex_unlock(&c->lock);

                (void) f(fd); /* may wait forever; only this thread does */

                pthread_mutex_lock(&c->lock);
                c->n_busy--;
                pthread_cond_broadcast(&c->idle);
        }
        return NULL;
}

/* Locked. A new detached closer thread, every signal blocked (the loop's
 * signalfd takes them). */
static int closers_add_thread(Closers *c) {
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_t t;
        int r;

        r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        (void) pthread_attr_setstacksize(&attr, CLOSER_STACK_SIZE);
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&t, &attr, closer_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        c->n_threads++;
        return 0;
}

/* Locked. Room for one more fd in the ring. */
static int closers_grow(Closers *c) {
        size_t n = c->queue_size ? c->queue_size * 2 : 64;
        int *q;

        if (c->n_queued < c->queue_size)
                return 0;
        q = malloc(n * sizeof *q);
        if (!q)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_queued; i++)
                q[i] = c->queue[(c->head + i) % c->queue_size];
        free(c->queue);
        c->queue = q;
        c->queue_size = n;
        c->head = 0;
        return 0;
}

/* Queues fd (consumed) for a closer. */
static void closers_defer(Closers *c, int fd) {
        int r;

        pthread_mutex_lock(&c->lock);
        r = closers_grow(c);
        if (r >= 0 && c->n_idle <= c->n_queued && c->n_threads < FDCLOSE_THREADS_MAX)
                /* Nobody free to take it: one more thread. Failing that, the
                 * ones there are take it when they can. */
                (void) closers_add_thread(c);
        if (r < 0 || c->n_threads == 0) {
                /* No memory for the queue, or no thread at all: closing here
                 * may wait, but leaking the fd would be worse. */
                c->inline_closed++;
                pthread_mutex_unlock(&c->lock);
                safe_close(fd);
                return;
        }
        c->queue[(c->head + c->n_queued) % c->queue_size] = fd;
        c->n_queued++;
        c->deferred++;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
}

int fdclose_kind(int fd, FdKind kind) {
        if (fd < 0)
                return -1;
        if (fdclose_is_quick(fd, kind)) {
                pthread_mutex_lock(&closers.lock);
                closers.inline_closed++;
                pthread_mutex_unlock(&closers.lock);
                return safe_close(fd);
        }
        closers_defer(&closers, fd);
        return -1;
}

int fdclose_caller_fd(int fd) {
        FdKind kind;

        if (fd < 0)
                return -1;
        if (fdinfo_classify(fd, &kind) < 0)
                kind = FD_KIND_OTHER;
        return fdclose_kind(fd, kind);
}

void fdclose_get_stats(FdCloseStats *ret) {
        pthread_mutex_lock(&closers.lock);
        *ret = (FdCloseStats) {
                .threads = closers.n_threads,
                .busy = closers.n_busy,
                .queued = (unsigned) closers.n_queued,
                .deferred = closers.deferred,
                .inline_closed = closers.inline_closed,
        };
        pthread_mutex_unlock(&closers.lock);
}

bool fdclose_wait_idle(unsigned timeout_ms) {
        struct timespec deadline;
        bool idle;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&closers.lock);
        while (closers.n_queued > 0 || closers.n_busy > 0)
                if (pthread_cond_timedwait(&closers.idle, &closers.lock, &deadline) != 0)
                        break;
        idle = closers.n_queued == 0 && closers.n_busy == 0;
        pthread_mutex_unlock(&closers.lock);
        return idle;
}

void fdclose_set_close_function(int (*f)(int fd)) {
        pthread_mutex_lock(&closers.lock);
        closers.close_fn = f;
        pthread_mutex_unlock(&closers.lock);
}
