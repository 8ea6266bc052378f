/* thread.h: starting the service's helper threads (worker.c's openers,
 * fdclose.c's closers) one way. */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

/* Starts fn(arg) on a new detached thread with a stack of stack_size bytes
 * and every signal blocked: signals stay with the loop's thread (sd-event's
 * signal sources). 0, or a negative errno with no thread started. */
static inline int thread_spawn_detached(size_t stack_size, void *(*fn)(void *), void *arg) {
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_t t;
        int r;

        r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void) pthread_attr_setstacksize(&attr, stack_size);
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&t, &attr, fn, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        return -r;
}
