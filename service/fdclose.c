/* fdclose.c: the closer of caller fds. See fdclose.h.
 *
 * One process-wide pool, made on first use (entry_free() and the workers
 * have no Broker at hand): a queue of fds under a mutex, and detached
 * threads that take one fd at a time and close it. Threads are added on
 * demand and never exit, so a thread stuck in close() costs its stack and
 * nothing else; the pool is never freed. A queued item is either an fd
 * to close or a placeholder to dup3() over a message's fd number. */
#include "fdclose.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "protocol.h"
#include "thread.h"

#define CLOSER_STACK_SIZE (64u * 1024u)

typedef struct Item {
        int fd;                 /* closed, or (into >= 0) the placeholder, borrowed */
        int into;               /* -1, or the slot to put the placeholder in */
} Item;

typedef struct Closers {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_cond_t idle;    /* signalled when a close is over */
        Item *queue;            /* a ring of queue_size slots */
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
                Item it;

                while (c->n_queued == 0) {
                        c->n_idle++;
                        pthread_cond_wait(&c->wake, &c->lock);
                        c->n_idle--;
                }
                it = c->queue[c->head];
                c->head = (c->head + 1) % c->queue_size;
                c->n_queued--;
                c->n_busy++;
                int (*f)(int) = c->close_fn ? c->close_fn : close;
                pthread_mutex_unlock(&c->lock);

                /* May wait forever; only this thread does. dup3() installs
                 * the placeholder first, then flushes what was there. */
                if (it.into >= 0)
                        (void) dup3(it.fd, it.into, O_CLOEXEC);
                else
                        (void) f(it.fd);

                pthread_mutex_lock(&c->lock);
                c->n_busy--;
                pthread_cond_broadcast(&c->idle);
        }
        return NULL;
}

/* Locked. A new closer thread (thread.h: detached, every signal blocked). */
static int closers_add_thread(Closers *c) {
        int r = thread_spawn_detached(CLOSER_STACK_SIZE, closer_main, c);
        if (r < 0)
                return r;
        c->n_threads++;
        return 0;
}

/* Locked. Room for one more fd in the ring. */
static int closers_grow(Closers *c) {
        size_t n = c->queue_size ? c->queue_size * 2 : 64;
        Item *q;

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

/* Queues it for a closer. A close that cannot be queued is made here; a
 * swap that cannot, is not made (-ENOMEM: sd-bus closes inline). */
static int closers_queue(Closers *c, Item it) {
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
                if (it.into < 0)
                        c->inline_closed++;
                pthread_mutex_unlock(&c->lock);
                if (it.into < 0)
                        safe_close(it.fd);
                return -ENOMEM;
        }
        c->queue[(c->head + c->n_queued) % c->queue_size] = it;
        c->n_queued++;
        c->deferred++;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        return 0;
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
        (void) closers_queue(&closers, (Item) { .fd = fd, .into = -1 });
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

/* ---- fds in incoming messages ------------------------------------------ */

typedef struct Swap {
        struct Swap *next;
        sd_bus_message *message;      /* referenced until the slot is seen swapped */
        int slot;
        sd_bus *outgoing;             /* a sent message's bus, until its write queue
                                       * is empty: then the swap is queued */
} Swap;

/* The loop's only. */
static struct {
        sd_event *event;
        sd_event_source *timer;
        int placeholder;
        dev_t dev;
        ino_t ino;
        Swap *pending;
        unsigned n_pending;
        uint64_t interval_usec;
} swaps = { .placeholder = -1 };

#define CHECK_FIRST_USEC 1000u
#define CHECK_MAX_USEC (100u * 1000u)

static bool slot_swapped(int slot) {
        struct stat st;
        return fstat(slot, &st) >= 0 && st.st_dev == swaps.dev && st.st_ino == swaps.ino;
}

static bool queue_swap(Swap *w) {
        return closers_queue(&closers, (Item) { .fd = swaps.placeholder, .into = w->slot }) >= 0;
}

/* A sent message is out once its bus has written everything: the kernel
 * then holds its own references to the files in flight. */
static bool written(sd_bus *bus) {
        uint64_t n;
        /* An error is a closed bus: what it had queued is never sent. */
        return sd_bus_get_n_queued_write(bus, &n) < 0 || n == 0;
}

static int on_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Swap **pp = &swaps.pending;

        while (*pp) {
                Swap *w = *pp;
                if (w->outgoing) {
                        if (written(w->outgoing) && queue_swap(w))
                                w->outgoing = sd_bus_unref(w->outgoing);
                        pp = &w->next;
                        continue;
                }
                if (!slot_swapped(w->slot)) {
                        pp = &w->next;
                        continue;
                }
                *pp = w->next;
                swaps.n_pending--;
                sd_bus_message_unref(w->message); /* sd-bus may close the slot now: a placeholder */
                free(w);
        }
        if (!swaps.pending)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        /* A closer may be slow to start, or all of them stuck: look less
         * often, never spin. */
        swaps.interval_usec = swaps.interval_usec * 2 > CHECK_MAX_USEC ? CHECK_MAX_USEC : swaps.interval_usec * 2;
        (void) sd_event_source_set_time_relative(s, swaps.interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int fdclose_attach_event(sd_event *event) {
        struct stat st;
        int r;

        if (swaps.event)
                return -EBUSY;
        if (swaps.placeholder < 0) {
                /* Made once: a closer may still use it after a detach. */
                int fd = memfd_create("fdbroker-placeholder", MFD_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        safe_close(fd);
                        return r;
                }
                swaps.placeholder = fd;
                swaps.dev = st.st_dev;
                swaps.ino = st.st_ino;
        }
        r = sd_event_add_time_relative(event, &swaps.timer, CLOCK_MONOTONIC, CHECK_FIRST_USEC, 0, on_check, NULL);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(swaps.timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(swaps.timer, "fdclose-check");
        swaps.event = sd_event_ref(event);
        return 0;
}

void fdclose_detach_event(void) {
        if (!swaps.event)
                return;
        if (swaps.timer)
                (void) on_check(swaps.timer, 0, NULL); /* the ones done by now */
        swaps.timer = sd_event_source_disable_unref(swaps.timer);
        swaps.event = sd_event_unref(swaps.event);
        /* The placeholder stays: a closer may still be about to use it. */
}

unsigned fdclose_swaps_pending(void) {
        return swaps.n_pending;
}

/* Swaps the placeholder into slot (one of m's fds); for a sent message,
 * once it is written. */
static void swap_slot(sd_bus_message *m, int slot, bool sent) {
        FdKind kind;
        Swap *w;

        for (w = swaps.pending; w; w = w->next)
                if (w->message == m && w->slot == slot)
                        return; /* the same fd twice */
        if (fdinfo_classify(slot, &kind) < 0)
                kind = FD_KIND_OTHER;
        if (fdclose_is_quick(slot, kind))
                return;
        w = calloc(1, sizeof *w);
        if (!w)
                return;
        w->message = sd_bus_message_ref(m);
        w->slot = slot;
        if (sent && !written(sd_bus_message_get_bus(m)))
                w->outgoing = sd_bus_ref(sd_bus_message_get_bus(m));
        else if (!queue_swap(w)) {
                sd_bus_message_unref(m);
                free(w);
                return;
        }
        w->next = swaps.pending;
        swaps.pending = w;
        if (swaps.n_pending++ == 0) {
                swaps.interval_usec = CHECK_FIRST_USEC;
                (void) sd_event_source_set_time_relative(swaps.timer, swaps.interval_usec);
                (void) sd_event_source_set_enabled(swaps.timer, SD_EVENT_ONESHOT);
        }
}

static bool signature_may_hold_fds(const char *s) {
        return s && (strchr(s, 'h') || strchr(s, 'v'));
}

/* Walks the values at m's read position to the end of the container. */
static int walk_fds(sd_bus_message *m, bool sent, unsigned depth) {
        int r;

        if (depth > 64)
                return -EBADMSG;
        for (;;) {
                const char *contents;
                char type;

                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r <= 0)
                        return r;
                if (type == 'h') {
                        int fd;
                        r = sd_bus_message_read_basic(m, 'h', &fd);
                        if (r < 0)
                                return r;
                        swap_slot(m, fd, sent);
                } else if (strchr("avre", type) && (type == 'v' || signature_may_hold_fds(contents))) {
                        r = sd_bus_message_enter_container(m, type, contents);
                        if (r < 0)
                                return r;
                        r = walk_fds(m, sent, depth + 1);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                } else {
                        char sig[256];

                        /* A whole value that cannot hold an fd. */
                        if (type == 'a')
                                r = snprintf(sig, sizeof sig, "a%s", contents);
                        else if (type == 'r')
                                r = snprintf(sig, sizeof sig, "(%s)", contents);
                        else if (type == 'e')
                                r = snprintf(sig, sizeof sig, "{%s}", contents);
                        else
                                r = snprintf(sig, sizeof sig, "%c", type);
                        if (r < 0 || (size_t) r >= sizeof sig)
                                return -EBADMSG;
                        r = sd_bus_message_skip(m, sig);
                        if (r < 0)
                                return r;
                }
        }
}

static void message_fds(sd_bus_message *m, bool sent) {
        if (!swaps.event || !m || !signature_may_hold_fds(sd_bus_message_get_signature(m, true)))
                return;
        if (sd_bus_message_rewind(m, true) < 0)
                return;
        (void) walk_fds(m, sent, 0);
        (void) sd_bus_message_rewind(m, true);
}

void fdclose_message_fds(sd_bus_message *m) {
        message_fds(m, false);
}

int fdclose_send(sd_bus_message *m) {
        int r = sd_bus_send(NULL, m, NULL);
        if (r >= 0)
                message_fds(m, true);
        return r;
}

int fdclose_bus_filter(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        static const struct {
                const char *member, *signature;
        } readers[] = {
                { "Deposit", "sha{sv}" },
                { "DepositMany", "a{sh}a{sv}" },
        };
        const char *iface, *member, *path, *sig;
        uint8_t type;

        if (sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
                return 0;
        sig = sd_bus_message_get_signature(m, true);
        if (!signature_may_hold_fds(sig))
                return 0;
        iface = sd_bus_message_get_interface(m);
        member = sd_bus_message_get_member(m);
        path = sd_bus_message_get_path(m);
        for (size_t i = 0; i < ELEMENTSOF(readers); i++)
                if (member && strcmp(member, readers[i].member) == 0 && strcmp(sig, readers[i].signature) == 0 &&
                    path && strcmp(path, FDB_OBJECT_PATH) == 0 && (!iface || strcmp(iface, FDB_INTERFACE) == 0))
                        return 0; /* its handler reads them, then calls fdclose_message_fds() */
        fdclose_message_fds(m);
        return 0;
}
