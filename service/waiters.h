/* waiters.h: Retrieve calls parked with wait-usec. */
#pragma once

#include <systemd/sd-bus.h>

#include "options.h"

typedef struct Broker Broker;
typedef struct Peer Peer;
typedef struct Waiter Waiter;

/* Parks the Retrieve call m from p for name until o->wait_usec passed.
 * Returns 1 (answered later) or refuses (QuotaExceeded) with error set. */
int waiters_park(Broker *b, Peer *p, sd_bus_message *m, const char *name, const RetrieveOptions *o,
                 sd_bus_error *error);

/* An entry named name appeared: answers who waited for it and may have it. */
void waiters_serve(Broker *b, const char *name);

/* Drops w without answering it. */
void waiter_free(Waiter *w);

/* Drops p's parked calls. */
void waiters_forget_peer(Peer *p);
