/* fdclose.h: closing a caller's fd without letting its file stall the loop.
 *
 * close(2) is not always quick: every close of an fd-table entry calls the
 * file's ->flush, which on FUSE asks the file system's server (FUSE_FLUSH)
 * and waits for the answer, killable only by a fatal signal; NFS writes
 * back dirty pages, a tty may wait up to closing_wait for its output to
 * drain, and the last close of a TCP socket with SO_LINGER waits for its
 * unsent data. A caller decides all of these, so the broker closes a
 * caller's fd inline only when its kind says the close cannot wait (memfd,
 * pipe or FIFO, eventfd, timerfd, signalfd, pidfd, AF_UNIX socket), and
 * hands every other one to a closer thread.
 *
 * The closers are a small pool shared by the process: a thread is added
 * when an fd is queued and no thread is idle, up to FDCLOSE_THREADS_MAX.
 * A thread stuck forever in one close holds only itself: the next fds go
 * to the others. With every thread stuck, fds wait in the queue (still
 * open, counted among the broker's fds) until a thread comes free; the loop
 * never waits. fdclose_kind() and fdclose_caller_fd() consume the fd they
 * are given and may be called from any thread; nothing here blocks on the
 * file. The message functions below are the loop's only. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "fdinfo.h"

#define FDCLOSE_THREADS_MAX 8u

/* True when closing fd (borrowed), of kind kind, cannot wait for anyone:
 * decided without any call that reaches the file's server. */
bool fdclose_is_quick(int fd, FdKind kind);

/* Closes fd (consumed) of the cached kind kind: inline when quick, else on
 * a closer thread. Returns -1, for "fd = fdclose_kind(fd, kind)". */
int fdclose_kind(int fd, FdKind kind);

/* fdclose_kind() for an fd whose kind is not cached: classified from
 * cached attributes only (fdinfo_classify()); an fd that cannot be
 * classified goes to a closer. */
int fdclose_caller_fd(int fd);

typedef struct FdCloseStats {
        unsigned threads;       /* closer threads started (they never exit) */
        unsigned busy;          /* threads inside a close() right now */
        unsigned queued;        /* fds waiting for a thread */
        unsigned long long deferred; /* fds handed to the closers, in all */
        unsigned long long inline_closed; /* fds closed inline, in all */
} FdCloseStats;

void fdclose_get_stats(FdCloseStats *ret);

/* ---- fds in incoming messages ------------------------------------------
 *
 * sd-bus closes a message's fds when the message is freed, on the loop,
 * and has no call to take them away. So for each 'h' of a message whose
 * close may wait, a closer thread dup3()s a placeholder (a memfd of ours)
 * over the message's fd number: the kernel installs the placeholder in
 * the slot before it flushes the old file, so the thread may wait there,
 * but sd-bus then closes only the placeholder. The message stays
 * referenced until the loop has seen the placeholder in every such slot
 * (fstat, from a timer), so the number cannot be freed and reused while
 * the thread is about to write over it. fds a message carries beyond its
 * 'h' arguments cannot be reached this way. */

/* Makes the placeholder and the check timer on event. Without it the
 * functions below do nothing (sd-bus closes inline, as before). */
int fdclose_attach_event(sd_event *event);

/* Drops the timer; swaps still unchecked keep their message (and its fd)
 * to exit. */
void fdclose_detach_event(void);

/* Every 'h' in m (borrowed; anywhere: in variants and arrays too) whose
 * close may wait gets the placeholder swapped in. Call it once nothing
 * will read m's fds any more: a handler's final answer. */
void fdclose_message_fds(sd_bus_message *m);

/* sd_bus_send(NULL, m, NULL), then the same for the copies sd-bus made of
 * the fds appended to m (a Retrieve's entry, an OpenPath's file): each is
 * swapped once m is written out (the bus's write queue empty, checked from
 * the timer), since sd-bus would close them on the loop when it frees m. */
int fdclose_send(sd_bus_message *m);

/* An sd-bus filter (sd_bus_add_filter, userdata unused): method calls that
 * no handler reads fds from (all but Deposit and DepositMany with their
 * own signatures on the broker's object, which call
 * fdclose_message_fds() when answered) have their fds swapped at once. */
int fdclose_bus_filter(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Swaps requested and not yet seen done, for tests. */
unsigned fdclose_swaps_pending(void);

/* Waits up to timeout_ms for every queued and running close to be over
 * (for tests and diagnostics, never on the loop). True when they are. */
bool fdclose_wait_idle(unsigned timeout_ms);

/* For tests: the function the closer threads close with (NULL: close(2)). */
void fdclose_set_close_function(int (*f)(int fd));
