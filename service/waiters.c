/* waiters.c: Retrieve calls parked with wait-usec until their entry appears.
 *
 * A parked call is charged to its uid (MaxWaits) and limited per
 * connection; it sits on the broker's list, oldest first, and on its peer's.
 * It ends answered when a deposit brings an entry it may have without
 * asking polkit, with NotFound when its time is up, or silently when its
 * peer goes. The parked message is referenced, nothing else. */
#include "waiters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-private.h"
#include "cleanup.h"
#include "log.h"
#include "retrieve.h"

#define WAITS_PER_PEER_MAX 16

struct Waiter {
        LIST_FIELDS(Waiter, waiters); /* the broker's list, oldest first */
        LIST_FIELDS(Waiter, peer);    /* its peer's */
        Broker *broker;
        Peer *peer;
        sd_bus_message *message;      /* the parked Retrieve call */
        char *name;
        int accmode;                  /* -1: as stored */
        bool reopen;
        sd_event_source *timer;
};

void waiter_free(Waiter *w) {
        Broker *b = w->broker;

        LIST_REMOVE(waiters, b->waiters, w);
        LIST_REMOVE(peer, w->peer->waiters, w);
        w->peer->n_waiters--;
        accounting_discharge(&b->acct, w->peer->uid, ACCT_WAITERS, 1);
        b->n_waiters--;

        sd_event_source_disable_unref(w->timer);
        sd_bus_message_unref(w->message);
        free(w->name);
        free(w);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        sd_bus_error_setf(&error, ERROR_NOT_FOUND, "No entry named '%s' that you may retrieve appeared in time.",
                          w->name);
        (void) sd_bus_reply_method_error(w->message, &error);
        waiter_free(w);
        return 0;
}

int waiters_park(Broker *b, Peer *p, sd_bus_message *m, const char *name, const RetrieveOptions *o,
                 sd_bus_error *error) {
        AcctRefusal why;
        char text[256];
        Waiter *w;
        int r;

        if (p->n_waiters >= WAITS_PER_PEER_MAX)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "This connection already waits for %d entries; cannot wait for '%s' too.",
                                         WAITS_PER_PEER_MAX, name);
        r = accounting_check(&b->acct, p->uid, ACCT_WAITERS, 1, 0, &why);
        if (r < 0) {
                accounting_format_refusal(&why, text, sizeof text);
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot wait for '%s': %s.", name, text);
        }
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->name = strdup(name);
        if (!w->name) {
                free(w);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(b->event, &w->timer, CLOCK_MONOTONIC, o->wait_usec, 0, on_wait_timeout, w);
        if (r >= 0)
                r = accounting_charge_force(&b->acct, p->uid, ACCT_WAITERS, 1);
        if (r < 0) {
                sd_event_source_disable_unref(w->timer);
                free(w->name);
                free(w);
                return r;
        }
        w->broker = b;
        w->peer = p;
        w->message = sd_bus_message_ref(m);
        w->accmode = o->accmode;
        w->reopen = o->reopen;

        LIST_APPEND(waiters, b->waiters, w);
        LIST_PREPEND(peer, p->waiters, w);
        p->n_waiters++;
        b->n_waiters++;
        log_debug("%s (uid %u) waits for '%s'", p->unique_name, (unsigned) p->uid, name);
        return 1;
}

/* A new entry appeared: answer who waited for it and may have it. */
void waiters_serve(Broker *b, const char *name) {
        Waiter *w, *next;

        for (w = b->waiters; w; w = next) {
                next = w->waiters_next;
                Entry *e;

                if (strcmp(w->name, name) != 0)
                        continue;
                e = registry_get(&b->reg, name);
                if (!e)
                        return; /* a once entry went to an earlier waiter */
                /* Waiters are served only what needs no question to polkit:
                 * the others keep waiting, and time out. */
                DecideEntry view = entry_view(e);
                Decision d = decide_retrieve(b->policy, w->peer->snapshot, &view);
                if (d.kind != DECISION_ALLOW)
                        continue;

                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                RetrieveOptions o = { .accmode = w->accmode, .reopen = w->reopen };
                bool once = e->once;
                bool failed = reply_if_failed(
                        w->message, retrieve_reply(b, w->peer, w->message, e, &o, d.access, &error), &error);
                /* next may be freed only by waiter_free(w); re-read after. */
                next = w->waiters_next;
                waiter_free(w);
                if (once && !failed)
                        return;
        }
}

/* p's connection closed: its parked calls end unanswered. */
void waiters_forget_peer(Peer *p) {
        while (p->waiters)
                waiter_free(p->waiters);
}
