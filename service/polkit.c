/* polkit.c: asynchronous CheckAuthorization. See polkit.h. */
#include "polkit.h"
#include "protocol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fdclose.h"
#include "list.h"
#include "log.h"

#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED
#define CHECK_TIMEOUT_USEC (UINT64_C(25) * 1000000)
#define INTERACTIVE_TIMEOUT_USEC (UINT64_C(300) * 1000000)

typedef enum QueryState {
        QUERY_PENDING,
        QUERY_AUTHORIZED,
        QUERY_DENIED,
        QUERY_CHALLENGE,
        QUERY_UNREACHABLE,
} QueryState;

struct PolkitQuery {
        LIST_FIELDS(PolkitQuery, queries); /* the Polkit's, newest first */
        Polkit *polkit;
        Peer *peer;
        sd_bus_message *request;   /* the method call being authorized */
        peer_resume_fn handler;
        char *action_id;
        char *value;
        sd_bus_slot *slot;         /* CheckAuthorization in flight */
        QueryState state;
        char *why;                 /* for QUERY_UNREACHABLE */
        bool charged;              /* to the peer's uid, while pending */
};

static void query_discharge(PolkitQuery *q) {
        if (q->charged && q->polkit->acct)
                accounting_discharge(q->polkit->acct, q->peer->uid, ACCT_POLKIT, 1);
        q->charged = false;
}

void polkit_init(Polkit *pk, sd_bus *bus, void *userdata) {
        *pk = (Polkit) { .bus = sd_bus_ref(bus), .userdata = userdata };
}

static void query_free(PolkitQuery *q) {
        Polkit *pk = q->polkit;

        LIST_REMOVE(queries, pk->queries, q);
        query_discharge(q);
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        free(q->action_id);
        free(q->value);
        free(q->why);
        free(q);
}

void polkit_done(Polkit *pk) {
        while (pk->queries)
                query_free(pk->queries);
        pk->bus = sd_bus_unref(pk->bus);
}

void polkit_forget_peer(Polkit *pk, Peer *peer) {
        LIST_FOREACH_SAFE(queries, q, next, pk->queries)
                if (q->peer == peer) {
                        /* The call will not run: its fds must not be closed on the loop. */
                        fdclose_message_fds(q->request);
                        query_free(q);
                }
}

static PolkitQuery *query_find(Polkit *pk, sd_bus_message *m, const char *action_id, const char *value) {
        LIST_FOREACH(queries, q, pk->queries)
                if (q->request == m && strcmp(q->action_id, action_id) == 0 && strcmp(q->value, value) == 0)
                        return q;
        return NULL;
}

static bool message_has_pending(Polkit *pk, sd_bus_message *m) {
        LIST_FOREACH(queries, q, pk->queries)
                if (q->request == m && q->state == QUERY_PENDING)
                        return true;
        return false;
}

static void forget_message(Polkit *pk, sd_bus_message *m) {
        LIST_FOREACH_SAFE(queries, q, next, pk->queries)
                if (q->request == m)
                        query_free(q);
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        Polkit *pk = q->polkit;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = sd_bus_message_ref(q->request);
        const sd_bus_error *e;
        int authorized, challenge, r;

        q->slot = sd_bus_slot_unref(q->slot);
        query_discharge(q);
        e = sd_bus_message_get_error(reply);
        if (e) {
                q->state = QUERY_UNREACHABLE;
                q->why = strdup(e->message ? e->message : e->name);
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0) {
                        q->state = QUERY_UNREACHABLE;
                        q->why = strdup("polkit's answer could not be read");
                } else
                        q->state = authorized ? QUERY_AUTHORIZED : challenge ? QUERY_CHALLENGE : QUERY_DENIED;
        }
        log_debug("polkit answered %s for %s: %s", q->action_id, q->peer->unique_name,
                  q->state == QUERY_AUTHORIZED ? "yes" : "no");

        /* Run the call again; it finds the answer now. */
        resume_call(q->handler, request, pk->userdata);
        if (!message_has_pending(pk, request))
                forget_message(pk, request);
        return 0;
}

/* The subject and action id. A bus peer is its unique name. A direct
 * connection opened with OpenConnection acts as the bus name that asked
 * for it (polkit refuses once that name is gone: names are never reused).
 * A socket peer is the process behind it, by pidfd (polkit >= 124 takes a
 * "pidfd" detail; an older one answers an error, and the call is denied). */
static int append_subject(sd_bus_message *call, const Peer *peer, const char *action_id) {
        if (!peer->direct)
                return sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", peer->unique_name,
                                             action_id);
        if (peer->direct_origin)
                return sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                             peer->direct_origin, action_id);
        return sd_bus_message_append(call, "(sa{sv})s", "unix-process", 2, "pidfd", "h", peer->direct_pidfd, "uid",
                                     "i", (int32_t) peer->uid, action_id);
}

static unsigned pending_of(Polkit *pk, Peer *peer) {
        unsigned n = 0;
        LIST_FOREACH(queries, q, pk->queries)
                n += q->peer == peer && q->state == QUERY_PENDING;
        return n;
}

/* The answer an earlier CheckAuthorization gave for this call: 1 authorized,
 * 0 still pending (the reply resumes the call), or the error to return. */
static int answer_known(const PolkitQuery *q, const Peer *peer, bool interactive, const char *action_id,
                        const char *value, sd_bus_error *error) {
        switch (q->state) {
        case QUERY_PENDING:
                break;
        case QUERY_AUTHORIZED:
                return 1;
        case QUERY_CHALLENGE:
                if (!interactive)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                 "%s for '%s' needs authentication; call again allowing "
                                                 "interactive authorization.",
                                                 action_id, value);
                _fallthrough_;
        case QUERY_DENIED:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "polkit did not authorize %s for '%s'.",
                                         action_id, value);
        case QUERY_UNREACHABLE:
                if (peer->direct && !peer->direct_origin)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "%s for '%s' needs polkit's authorization, and polkit "
                                                 "could not check the process behind this direct "
                                                 "connection (%s); use the system bus for calls that "
                                                 "need authorization.",
                                                 action_id, value, q->why ? q->why : "no answer");
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s for '%s' needs polkit's authorization, and polkit was not "
                                         "reachable (%s).",
                                         action_id, value, q->why ? q->why : "no answer");
        }
        return 0;
}

/* The refusals before polkit is asked at all: no pidfd to name a socket
 * peer by, this connection's pending answers, the uid's polkit quota.
 * Returns 0 when polkit may be asked, else the error. */
static int check_may_ask(Polkit *pk, Peer *peer, const char *action_id, const char *value, sd_bus_error *error) {
        int r;

        /* A socket peer is asked about by pidfd; without one, a PID would
         * be a race: refuse (SPEC §5). */
        if (peer->direct && !peer->direct_origin && peer->direct_pidfd < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s for '%s' needs polkit's authorization, which cannot be asked without a "
                                         "PID race on this direct connection (the kernel gave no pidfd); use the "
                                         "system bus for calls that need authorization.",
                                         action_id, value);

        if (pending_of(pk, peer) >= POLKIT_PENDING_PER_PEER_MAX)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "This connection already waits for %d polkit answers; try again later.",
                                         POLKIT_PENDING_PER_PEER_MAX);

        if (pk->acct) {
                AcctRefusal why;
                char text[256];

                r = accounting_check(pk->acct, peer->uid, ACCT_POLKIT, 1, 0, &why);
                if (r < 0) {
                        accounting_format_refusal(&why, text, sizeof text);
                        return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot ask polkit about %s for '%s': %s.",
                                                 action_id, value, text);
                }
        }
        return 0;
}

/* A new pending query for call m, listed in pk and charged to the peer's
 * uid. Takes a reference on m. */
static int query_new(Polkit *pk, sd_bus_message *m, Peer *peer, const char *action_id, const char *value,
                     peer_resume_fn handler, PolkitQuery **ret) {
        PolkitQuery *q;
        int r;

        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->polkit = pk;
        q->peer = peer;
        q->handler = handler;
        q->request = sd_bus_message_ref(m);
        q->action_id = strdup(action_id);
        q->value = strdup(value);
        LIST_PREPEND(queries, pk->queries, q);
        if (!q->action_id || !q->value) {
                query_free(q);
                return -ENOMEM;
        }
        if (pk->acct) {
                r = accounting_charge_force(pk->acct, peer->uid, ACCT_POLKIT, 1);
                if (r < 0) {
                        query_free(q);
                        return r;
                }
                q->charged = true;
        }
        *ret = q;
        return 0;
}

/* Sends q's CheckAuthorization; its reply lands in on_check_reply. */
static int query_send(PolkitQuery *q, const char *key, const char *requested, bool interactive) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        Polkit *pk = q->polkit;
        int r;

        r = sd_bus_message_new_method_call(pk->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = append_subject(call, q->peer, q->action_id);
        if (r >= 0)
                r = sd_bus_message_append(call, "a{ss}us", 2, key, q->value, "fdbroker.requested-result", requested,
                                          (uint32_t) (interactive ? 1 : 0), "");
        if (r >= 0)
                r = sd_bus_call_async(pk->bus, &q->slot, call, on_check_reply, q,
                                      interactive ? INTERACTIVE_TIMEOUT_USEC : CHECK_TIMEOUT_USEC);
        return r;
}

int polkit_check(Polkit *pk, sd_bus_message *m, Peer *peer, const char *action_id, const char *key,
                 const char *value, const char *requested, peer_resume_fn handler, sd_bus_error *error) {
        bool interactive = sd_bus_message_get_allow_interactive_authorization(m) > 0;
        PolkitQuery *q;
        int r;

        q = query_find(pk, m, action_id, value);
        if (q)
                return answer_known(q, peer, interactive, action_id, value, error);

        r = check_may_ask(pk, peer, action_id, value, error);
        if (r < 0)
                return r;

        r = query_new(pk, m, peer, action_id, value, handler, &q);
        if (r < 0)
                return r;
        r = query_send(q, key, requested, interactive);
        if (r < 0) {
                query_free(q);
                return r;
        }
        return 0;
}
