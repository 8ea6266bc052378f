/* lifecycle.h: when the daemon exits by itself, and what it tells the
 * service manager (STATUS=, STOPPING=1). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct Broker Broker;
typedef struct Lifecycle Lifecycle;

typedef struct LifecycleOptions {
        uint64_t exit_idle_usec;      /* 0: never exit when idle */
        bool exit_idle_with_entries;  /* ...also holding only fd-stored entries */
        bool notify;                  /* a service manager listens: send STATUS= */
} LifecycleOptions;

/* Watches broker (borrowed; it must outlive the Lifecycle) on event: after
 * every event dispatched it updates STATUS= when it changed and, once the
 * broker has been idle with no call for exit_idle_usec, releases the name
 * and ends the loop. */
int lifecycle_new(sd_event *event, sd_bus *bus, Broker *broker, const LifecycleOptions *o, Lifecycle **ret);

Lifecycle *lifecycle_free(Lifecycle *l);

static inline void lifecycle_freep(Lifecycle **l) {
        lifecycle_free(*l);
}
