/* polkit.h: asking polkit, without blocking, whether a caller may act.
 *
 * polkit_check() is called from a method handler. The first time it sends
 * CheckAuthorization asynchronously, with the caller's unique bus name as
 * the subject, and returns 0: the handler returns 1 and the call stays
 * unanswered. When polkit answers, the handler runs again from the start
 * with the same message (so it must be safe to run twice: nothing changes
 * before authorization), and this time polkit_check() returns the answer.
 * Answers stay attached to the message until the handler finishes without
 * asking anything new, so a handler that checks several things in a row
 * asks polkit once for each. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "accounting.h"
#include "peers.h"

#define POLKIT_PENDING_PER_PEER_MAX 8

typedef struct PolkitQuery PolkitQuery;

typedef struct Polkit {
        sd_bus *bus;
        PolkitQuery *queries;
        void *userdata;          /* handed to resumed handlers */
        Accounting *acct;        /* questions out are charged here (ACCT_POLKIT); NULL: not */
} Polkit;

void polkit_init(Polkit *pk, sd_bus *bus, void *userdata);
void polkit_done(Polkit *pk);

/* Asks whether the sender of m may perform action_id (a polkit action such
 * as "org.fdbroker.open-path") with the detail key=value. Returns 1 when
 * authorized; 0 when the question is out and handler will run m again;
 * negative with error set when not (AccessDenied,
 * InteractiveAuthorizationRequired, QuotaExceeded when the peer has too many
 * questions out). */
int polkit_check(Polkit *pk, sd_bus_message *m, Peer *peer, const char *action_id, const char *key,
                 const char *value, const char *requested, peer_resume_fn handler, sd_bus_error *error);

/* Forgets every question of a peer that left. */
void polkit_forget_peer(Polkit *pk, Peer *peer);
