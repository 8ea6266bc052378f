/* lifecycle.c: idle exit and the status the service manager shows.
 *
 * Driven by events, not by polling: a post source runs after every event
 * the loop dispatched (a call, a reply from the bus or polkit, a worker
 * finishing, a timer, a connection closing) and looks at the broker once.
 * A call since the last look restarts the idle timer (--exit-idle-time);
 * otherwise a busy broker turns it off and an idle one arms it if it is
 * off. Nothing but an event ends idleness and every event passes here
 * first, so when the timer fires and the broker is idle with no call
 * since, it has been quiet for a whole period. Then the broker stops taking work
 * (broker_set_exiting()), STOPPING=1 goes out, the name is released, and
 * the loop ends once the bus confirmed: calls queued in that window have
 * been refused by then (docs/behaviour.md).
 *
 * The broker does not call in here: what makes it busy is spread over
 * peers, polkit, workers, watches and direct connections, and one look
 * after each event cannot miss a change any of them makes. The look is
 * cheap (counters; with --exit-idle-with-entries a walk over the entries,
 * never made for a call). */
#include "lifecycle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "broker.h"
#include "log.h"
#include "protocol.h"

struct Lifecycle {
        sd_event *event;
        sd_bus *bus;
        Broker *broker;
        LifecycleOptions o;
        sd_event_source *post;
        sd_event_source *idle_timer;  /* on: idle since it was armed */
        uint64_t calls_seen;          /* broker_call_count() at the last look */
        bool releasing;
        char status[128];             /* last STATUS= sent */
};

static bool broker_idle(const Lifecycle *l) {
        return l->o.exit_idle_with_entries ? broker_is_idle_but_stored(l->broker) : broker_is_idle(l->broker);
}

static int on_name_released(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Lifecycle *l = userdata;

        /* Every call queued for us before the name went has been answered
         * (refused: see broker_set_exiting) by now. */
        log_info("idle: exiting; the next call starts the broker again");
        return sd_event_exit(l->event, 0);
}

static int on_idle_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Lifecycle *l = userdata;
        int r;

        /* Armed by a call, the broker may be busy now: then the event that
         * ends that arms the timer again. */
        if (l->releasing || broker_call_count(l->broker) != l->calls_seen || !broker_idle(l))
                return 0;

        /* Decide first, then give the name up: calls from now on activate a
         * new broker. Calls already queued for us are refused (they would
         * die with us: under Type=dbus systemd stops the unit when the name
         * goes, and a stop empties the fd store) and answered before
         * ReleaseName's reply. */
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Idle, exiting.");
        broker_set_exiting(l->broker);
        l->releasing = true;
        r = sd_bus_call_method_async(l->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "ReleaseName", on_name_released, l, "s", FDB_BUS_NAME);
        if (r < 0)
                return sd_event_exit(l->event, 0); /* refusing all: go now */
        return 0;
}

static void update_status(Lifecycle *l) {
        char status[sizeof l->status];

        broker_format_status(l->broker, status, sizeof status);
        if (strcmp(status, l->status) == 0)
                return;
        memcpy(l->status, status, sizeof status);
        (void) sd_notifyf(false, "STATUS=%s", status);
}

static void arm_idle_timer(Lifecycle *l) {
        int r = sd_event_source_set_time_relative(l->idle_timer, l->o.exit_idle_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->idle_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error("could not arm the idle timer: %s", strerror(-r));
}

/* One look at the broker. A call starts the quiet period anew (the timer
 * decides about idleness when it fires: no walk over the entries per
 * call); any other event arms the timer when the broker is idle and it is
 * not armed yet, and turns it off when the broker is busy. */
static void update_idle(Lifecycle *l) {
        uint64_t calls = broker_call_count(l->broker);
        int enabled = SD_EVENT_OFF;

        if (l->o.exit_idle_usec == 0 || l->releasing)
                return;
        if (calls != l->calls_seen) {
                l->calls_seen = calls;
                arm_idle_timer(l);
                return;
        }
        if (!broker_idle(l)) {
                (void) sd_event_source_set_enabled(l->idle_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_get_enabled(l->idle_timer, &enabled);
        if (enabled == SD_EVENT_OFF)
                arm_idle_timer(l);
}

static int on_post(sd_event_source *s, void *userdata) {
        Lifecycle *l = userdata;

        if (l->o.notify && !l->releasing)
                update_status(l);
        update_idle(l);
        return 0;
}

int lifecycle_new(sd_event *event, sd_bus *bus, Broker *broker, const LifecycleOptions *o, Lifecycle **ret) {
        Lifecycle *l;
        int r;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->bus = sd_bus_ref(bus);
        l->broker = broker;
        l->o = *o;
        l->calls_seen = broker_call_count(broker);

        if (o->exit_idle_usec > 0) {
                r = sd_event_add_time_relative(event, &l->idle_timer, CLOCK_MONOTONIC, o->exit_idle_usec, 0,
                                               on_idle_timeout, l);
                if (r < 0)
                        goto fail;
                /* Armed from the start: a broker nobody calls exits too. */
                r = sd_event_source_set_enabled(l->idle_timer, SD_EVENT_ONESHOT);
                if (r < 0)
                        goto fail;
        }
        if (o->exit_idle_usec > 0 || o->notify) {
                r = sd_event_add_post(event, &l->post, on_post, l);
                if (r < 0)
                        goto fail;
                if (o->notify)
                        update_status(l);
        }
        *ret = l;
        return 0;

fail:
        lifecycle_free(l);
        return r;
}

Lifecycle *lifecycle_free(Lifecycle *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->post);
        sd_event_source_disable_unref(l->idle_timer);
        sd_bus_unref(l->bus);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}
