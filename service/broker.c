/* broker.c: the org.fdbroker.Broker1 object: vtable, handlers, waits.
 *
 * Every handler first learns who calls (peers.c; it may park the call until
 * the bus answered), then parses and validates all of its input, then
 * decides whether the caller may do it, and only then acts. fds read from a
 * message are borrowed from it; the broker keeps its own F_DUPFD_CLOEXEC
 * duplicates (or narrowed reopenings), owned by the entry. */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "cleanup.h"
#include "config.h"
#include "direct.h"
#include "fdinfo.h"
#include "log.h"
#include "names.h"
#include "options.h"
#include "peers.h"
#include "persist.h"
#include "policy.h"
#include "polkit.h"
#include "protocol.h"
#include "registry.h"

#define OBJECT_PATH FDB_OBJECT_PATH
#define INTERFACE FDB_INTERFACE

#define ERROR_NOT_FOUND FDB_ERROR_NAME_NOT_FOUND
#define ERROR_EXISTS FDB_ERROR_NAME_EXISTS
#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED
#define ERROR_NOT_SUPPORTED FDB_ERROR_NAME_NOT_SUPPORTED
#define ERROR_BUSY FDB_ERROR_NAME_BUSY

#define FDS_PER_CALL_MAX FDB_FDS_PER_CALL_MAX
#define WAITS_PER_PEER_MAX 16

struct Waiter {
        Waiter *prev, *next;          /* the broker's list, oldest first */
        Waiter *peer_prev, *peer_next;
        Broker *broker;
        Peer *peer;
        sd_bus_message *message;      /* the parked Retrieve call */
        char *name;
        int accmode;                  /* -1: as stored */
        bool reopen;
        sd_event_source *timer;
};

struct Broker {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *object;
        Registry reg;
        Peers peers;
        Polkit polkit;
        Policy *policy;               /* admin rules; NULL: none */
        Persist persist;
        Direct direct;                /* peer-to-peer connections (SPEC §5) */
        uint64_t n_calls;             /* method calls seen, for idle detection */
        unsigned fd_budget;           /* entries the open-file limit leaves room for */
        bool exiting;                 /* idle exit decided: take no new work */
        Waiter *waiters, *waiters_tail;
};

static uint64_t now_usec(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- who may see what -------------------------------------------------- */

/* The entry ACL: owner, root, and the subjects in `allow`. */
static bool acl_allows(const Peer *p, const Entry *e) {
        Identity id;

        if (p->uid == 0 || p->uid == e->owner_uid)
                return true;
        id = peer_identity(p);
        return acl_matches(e->allow, e->n_allow, &id);
}

static PolicyDecision decide(const Broker *b, const Peer *p, PolicyAction action, const char *what) {
        Identity id = peer_identity(p);
        PolicyDecision d;
        policy_decide(b->policy, action, what, &id, &d);
        return d;
}

/* Whether p may retrieve e without asking anyone: a rule saying yes, or no
 * rule and the ACL. *ret_cap gets the deciding rule's access cap. */
static bool may_retrieve_now(const Broker *b, const Peer *p, const Entry *e, int *ret_cap) {
        PolicyDecision d = decide(b, p, POLICY_ACTION_RETRIEVE, e->name);
        *ret_cap = d.access;
        if (d.matched)
                return d.result == POLICY_RESULT_YES;
        return acl_allows(p, e);
}

/* Whether p may learn that e exists: it owns it, or may retrieve it now or
 * after authentication. */
static bool may_see(const Broker *b, const Peer *p, const Entry *e) {
        PolicyDecision d;

        if (p->uid == 0 || p->uid == e->owner_uid)
                return true;
        d = decide(b, p, POLICY_ACTION_RETRIEVE, e->name);
        if (d.matched)
                return d.result != POLICY_RESULT_NO;
        return acl_allows(p, e);
}

/* ---- authorization ----------------------------------------------------- */

#define AUTH_NO_RULE 2

static int ask_polkit(Broker *b, sd_bus_message *m, Peer *p, PolicyAction action, const char *what,
                      const char *requested, peer_resume_fn handler, sd_bus_error *error) {
        char id[64];

        snprintf(id, sizeof id, "org.fdbroker.%s", policy_action_to_string(action));
        return polkit_check(&b->polkit, m, p, id, action == POLICY_ACTION_OPEN_PATH ? "path" : "name", what,
                            requested, handler, error);
}

/* Asks the admin rules, and polkit where a rule says auth_*, whether p may
 * perform action on what (an entry name or a path). Returns 1 when a rule
 * allows it (*ret_cap gets its access cap), AUTH_NO_RULE when no rule
 * matched (the caller applies the default), 0 while polkit is asked (the
 * handler returns 1 and runs again with the answer), negative with error
 * set when refused. */
static int authorize(Broker *b, sd_bus_message *m, Peer *p, PolicyAction action, const char *what,
                     peer_resume_fn handler, int *ret_cap, sd_bus_error *error) {
        PolicyDecision d = decide(b, p, action, what);

        if (ret_cap)
                *ret_cap = d.access;
        if (!d.matched)
                return AUTH_NO_RULE;
        if (d.result == POLICY_RESULT_YES)
                return 1;
        if (d.result == POLICY_RESULT_NO) {
                log_info("%s (uid %u): rule '%s' refuses %s of '%s'", p->unique_name, (unsigned) p->uid, d.rule,
                         policy_action_to_string(action), what);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Rule '%s' does not allow %s of '%s'.",
                                         d.rule, policy_action_to_string(action), what);
        }
        return ask_polkit(b, m, p, action, what, policy_result_to_string(d.result), handler, error);
}

static int not_found(sd_bus_error *error, const char *name) {
        return sd_bus_error_setf(error, ERROR_NOT_FOUND, "No entry named '%s' that you may retrieve.", name);
}

/* ---- entries ----------------------------------------------------------- */

/* Rewrites the state file of persistent entries; a failure is logged, since
 * the entries themselves are fine until the next restart. */
static void save_state(Broker *b) {
        int r = persist_save(&b->persist, &b->reg);
        if (r < 0)
                log_error("could not save the state file: %s", strerror(-r));
}

static void broker_remove_entry(Broker *b, Entry *e, const char *why) {
        Peer *p = e->peer;

        if (p) {
                if (e->peer_prev)
                        e->peer_prev->peer_next = e->peer_next;
                else
                        p->entries = e->peer_next;
                if (e->peer_next)
                        e->peer_next->peer_prev = e->peer_prev;
        }
        log_info("removed '%s' (owner uid %u): %s", e->name, (unsigned) e->owner_uid, why);
        registry_unlink(&b->reg, e);
        if (e->persistent) {
                /* Metadata first: a crash in between leaves an fd without
                 * metadata, which the next start drops. */
                save_state(b);
                (void) persist_remove_fd(&b->persist, &b->reg, e);
        }
        entry_free(e);
}

static int on_expire_entry(sd_event_source *s, uint64_t usec, void *userdata) {
        Entry *e = userdata;
        broker_remove_entry(e->broker, e, "expired");
        return 0;
}

/* Removes e when usec have passed (monotonic: wall-clock steps do not
 * shorten or stretch it). */
static int arm_expiry(Broker *b, Entry *e, uint64_t usec) {
        return sd_event_add_time_relative(b->event, &e->expire_source, CLOCK_MONOTONIC, usec, 0, on_expire_entry, e);
}

/* One {sv} of the info dictionary. Built with append_basic rather than a
 * format string per key: the dictionary is most of what a Retrieve costs
 * the broker (bench/README.md). */
static int append_info_item(sd_bus_message *reply, const char *key, char type, const void *value) {
        const char sig[2] = { type, '\0' };
        int r;

        r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, 's', key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', sig);
        if (r >= 0)
                r = sd_bus_message_append_basic(reply, type, value);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int append_info(sd_bus_message *reply, const Entry *e) {
        uint32_t owner = (uint32_t) e->owner_uid;
        int sealed = e->kind == FD_KIND_MEMFD && fdinfo_is_sealed(e->fd);
        uint64_t size = 0;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_info_item(reply, "kind", 's', fdkind_to_string(e->kind));
        if (r >= 0 && fdkind_has_size(e->kind) && fdinfo_get_size(e->fd, &size) >= 0)
                r = append_info_item(reply, "size", 't', &size);
        if (r >= 0)
                r = append_info_item(reply, "owner-uid", 'u', &owner);
        if (r >= 0)
                r = append_info_item(reply, "access", 's', fdinfo_accmode_to_string(e->flags));
        if (r >= 0)
                r = append_info_item(reply, "sealed", 'b', &sealed);
        if (r >= 0)
                r = append_info_item(reply, "lifetime", 's', e->persistent ? "persistent" : "connection");
        if (r >= 0)
                r = append_info_item(reply, "description", 's', entry_description(e));
        if (r >= 0)
                r = append_info_item(reply, "created-usec", 't', &e->created_usec);
        if (r >= 0)
                r = append_info_item(reply, "expires-usec", 't', &e->expires_usec);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

/* Checks what a deposit of fd (borrowed) would store, without storing it:
 * the access mode and kind, whether it can be sealed or narrowed. */
static int check_deposit_fd(int fd, const char *name, const DepositOptions *o, FdKind *ret_kind, int *ret_flags,
                            sd_bus_error *error) {
        FdKind kind;
        int fl, r;

        r = fdinfo_get_flags(fd, &fl);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The fd for '%s' is not usable: %s.", name,
                                         strerror(-r));
        if (fl & O_PATH)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "The fd for '%s' is an O_PATH fd, which is no proof of access; "
                                         "open the file for reading or writing instead.",
                                         name);
        r = fdinfo_classify(fd, &kind);
        if (r < 0)
                return r;

        if (o->seal) {
                int seals;
                if (kind != FD_KIND_MEMFD)
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "Option 'seal' needs a memfd, but the fd for '%s' is a %s.", name,
                                                 fdkind_to_string(kind));
                seals = fcntl(fd, F_GET_SEALS);
                if (seals < 0 || ((seals & F_SEAL_SEAL) && !fdinfo_is_sealed(fd)))
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "The memfd for '%s' cannot be sealed (it was created without "
                                                 "MFD_ALLOW_SEALING, or sealing was sealed).",
                                                 name);
                if (!(seals & F_SEAL_SEAL) && (fl & O_ACCMODE) == O_RDONLY)
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "Sealing '%s' needs a writable fd to the memfd; this one is read-only.",
                                                 name);
        }

        if (o->read_only) {
                if ((fl & O_ACCMODE) == O_WRONLY)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "The fd for '%s' is write-only; keeping it read-only would grant "
                                                 "read access it never had.",
                                                 name);
                if ((fl & O_ACCMODE) == O_RDWR && !fdkind_can_reopen(kind))
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                 "Option 'access=read-only' cannot narrow the fd for '%s': a %s "
                                                 "cannot be reopened read-only.",
                                                 name, fdkind_to_string(kind));
        }

        *ret_kind = kind;
        *ret_flags = fl;
        return 0;
}

/* Builds the entry for fd (borrowed): the broker's own duplicate or
 * read-only reopening. Does not seal and does not store. */
static int make_entry(const char *name, int fd, FdKind kind, int fl, uid_t owner, const DepositOptions *o,
                      Entry **ret) {
        _cleanup_(entry_freep) Entry *e = entry_new(name);
        int r;

        if (!e)
                return -ENOMEM;
        if (o->description && *o->description) {
                e->description = strdup(o->description);
                if (!e->description)
                        return -ENOMEM;
        }

        if (o->read_only && (fl & O_ACCMODE) == O_RDWR) {
                r = fdinfo_reopen(fd, kind, O_RDONLY, &e->fd);
                if (r < 0)
                        return r;
                r = fdinfo_get_flags(e->fd, &e->flags);
                if (r < 0)
                        return r;
        } else {
                e->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (e->fd < 0)
                        return -errno;
                e->flags = fl;
        }

        e->kind = kind;
        e->owner_uid = owner;
        e->persistent = o->persistent;
        e->once = o->once;
        if (o->n_allow > 0) {
                e->allow = calloc(o->n_allow, sizeof *e->allow);
                if (!e->allow)
                        return -ENOMEM;
                for (size_t i = 0; i < o->n_allow; i++) {
                        e->allow[i] = o->allow[i];
                        if (o->allow[i].label) {
                                e->allow[i].label = strdup(o->allow[i].label);
                                if (!e->allow[i].label) {
                                        e->n_allow = i;
                                        return -ENOMEM;
                                }
                        }
                }
                e->n_allow = o->n_allow;
        }
        *ret = TAKE_PTR(e);
        return 0;
}

/* Stores e (consumed), replacing old (same name, same owner) if not NULL.
 * A persistent entry's fd goes to the fd store; the caller saves the state
 * file once after storing everything of its call (save_state). */
static int store_entry(Broker *b, Peer *p, Entry *e, Entry *old, const DepositOptions *o) {
        int r;

        e->broker = b;
        e->created_usec = now_usec(CLOCK_REALTIME);
        if (o->timeout_usec > 0) {
                e->expires_usec = e->created_usec + o->timeout_usec;
                r = arm_expiry(b, e, o->timeout_usec);
                if (r < 0) {
                        entry_free(e);
                        return r;
                }
        }
        if (old)
                broker_remove_entry(b, old, "replaced");
        r = registry_add(&b->reg, e);
        if (r < 0) {
                entry_free(e);
                return r;
        }
        if (!e->persistent) {
                e->peer = p;
                e->peer_next = p->entries;
                if (p->entries)
                        p->entries->peer_prev = e;
                p->entries = e;
        } else {
                /* The fd first, the state file after (save_state): a crash
                 * in between leaves an fd without metadata, which the next
                 * start drops. */
                r = persist_store_fd(&b->persist, &b->reg, e);
                if (r < 0)
                        log_error("'%s' will not survive a restart: %s", e->name, strerror(-r));
        }
        log_info("%s deposited '%s' (uid %u, %s, %s%s%s)", p->unique_name, e->name, (unsigned) e->owner_uid,
                 fdkind_to_string(e->kind), fdinfo_accmode_to_string(e->flags),
                 e->persistent ? ", persistent" : "", e->once ? ", once" : "");
        return 0;
}

/* Makes the fd handed to a retriever: never wider than the stored one, nor
 * than cap (a rule's Access=, or POLICY_ACCESS_ANY). On success *ret_fd is
 * either -1 (hand out e->fd itself; sd-bus sends a duplicate) or a new fd
 * owned by the caller. */
static int make_retrieved_fd(const Entry *e, const RetrieveOptions *o, int cap, int *ret_fd, sd_bus_error *error) {
        int stored = e->flags & O_ACCMODE;
        int want = o->accmode >= 0 ? o->accmode : stored;
        int r;

        if (cap != POLICY_ACCESS_ANY && cap != O_RDWR && want != cap) {
                if (o->accmode >= 0 || stored != O_RDWR)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Policy lets you have '%s' only %s.", e->name,
                                                 fdinfo_accmode_to_string(cap));
                want = cap; /* narrow a read-write entry to the cap */
        }

        if (want != stored && stored != O_RDWR)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Entry '%s' is %s; it cannot be handed out %s.", e->name,
                                         fdinfo_accmode_to_string(stored), fdinfo_accmode_to_string(want));

        if (o->reopen && e->kind != FD_KIND_MEMFD && e->kind != FD_KIND_REGULAR)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "Option 'reopen' works on regular files and memfds; '%s' is a %s.", e->name,
                                         fdkind_to_string(e->kind));

        if (!o->reopen && want == stored) {
                *ret_fd = -1;
                return 0;
        }

        r = fdinfo_reopen(e->fd, e->kind, want, ret_fd);
        if (r == -EOPNOTSUPP)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "Entry '%s' is a %s; it cannot be reopened %s.",
                                         e->name, fdkind_to_string(e->kind), fdinfo_accmode_to_string(want));
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Could not reopen '%s': %s.", e->name,
                                         strerror(-r));
        return 0;
}

/* Replies to a Retrieve call m with e and consumes a once entry. */
static int reply_retrieve(Broker *b, Peer *p, sd_bus_message *m, Entry *e, const RetrieveOptions *o, int cap,
                          sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = make_retrieved_fd(e, o, cap, &fd, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "h", fd >= 0 ? fd : e->fd);
        if (r < 0)
                return r;
        r = append_info(reply, e);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        log_debug("%s (uid %u) retrieved '%s'", p->unique_name, (unsigned) p->uid, e->name);
        if (e->once)
                broker_remove_entry(b, e, "retrieved once");
        return 1;
}

/* ---- waiting ----------------------------------------------------------- */

static void waiter_free(Waiter *w) {
        Broker *b = w->broker;

        if (w->prev)
                w->prev->next = w->next;
        else
                b->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                b->waiters_tail = w->prev;

        if (w->peer_prev)
                w->peer_prev->peer_next = w->peer_next;
        else
                w->peer->waiters = w->peer_next;
        if (w->peer_next)
                w->peer_next->peer_prev = w->peer_prev;
        w->peer->n_waiters--;

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

static int park_retrieve(Broker *b, Peer *p, sd_bus_message *m, const char *name, const RetrieveOptions *o,
                         sd_bus_error *error) {
        Waiter *w;
        int r;

        if (p->n_waiters >= WAITS_PER_PEER_MAX)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "This connection already waits for %d entries; cannot wait for '%s' too.",
                                         WAITS_PER_PEER_MAX, name);
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->name = strdup(name);
        if (!w->name) {
                free(w);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(b->event, &w->timer, CLOCK_MONOTONIC, o->wait_usec, 0, on_wait_timeout, w);
        if (r < 0) {
                free(w->name);
                free(w);
                return r;
        }
        w->broker = b;
        w->peer = p;
        w->message = sd_bus_message_ref(m);
        w->accmode = o->accmode;
        w->reopen = o->reopen;

        w->prev = b->waiters_tail;
        if (b->waiters_tail)
                b->waiters_tail->next = w;
        else
                b->waiters = w;
        b->waiters_tail = w;

        w->peer_next = p->waiters;
        if (p->waiters)
                p->waiters->peer_prev = w;
        p->waiters = w;
        p->n_waiters++;
        log_debug("%s (uid %u) waits for '%s'", p->unique_name, (unsigned) p->uid, name);
        return 1;
}

/* A new entry appeared: answer who waited for it and may have it. */
static void serve_waiters(Broker *b, const char *name) {
        Waiter *w, *next;

        for (w = b->waiters; w; w = next) {
                next = w->next;
                Entry *e;

                if (strcmp(w->name, name) != 0)
                        continue;
                e = registry_get(&b->reg, name);
                if (!e)
                        return; /* a once entry went to an earlier waiter */
                /* Waiters are served only what needs no question to polkit:
                 * the others keep waiting, and time out. */
                int cap;
                if (!may_retrieve_now(b, w->peer, e, &cap))
                        continue;

                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                RetrieveOptions o = { .accmode = w->accmode, .reopen = w->reopen };
                bool once = e->once;
                bool failed = reply_if_failed(w->message, reply_retrieve(b, w->peer, w->message, e, &o, cap, &error),
                                              &error);
                /* next may be freed only by waiter_free(w); re-read after. */
                next = w->next;
                waiter_free(w);
                if (once && !failed)
                        return;
        }
}

/* ---- the caller -------------------------------------------------------- */

/* Gets the calling peer; 0 means the call was parked until the bus tells us
 * who it is, and the handler must return 1 (the call is answered later). */
static int get_caller(Broker *b, sd_bus_message *m, peer_resume_fn handler, Peer **ret, sd_bus_error *error) {
        int r;

        b->n_calls++;
        if (b->exiting)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NO_REPLY,
                                         "fdbroker is exiting after being idle; call again to start it anew.");
        r = peers_get_caller(&b->peers, m, handler, ret);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Too many calls from this connection while its credentials are looked up.");
        return r;
}

/* ---- methods ----------------------------------------------------------- */

/* Out of fds is a limit reached, not a failure of the broker. name: the
 * entry, or NULL for all of a DepositMany. */
static int store_failed(sd_bus_error *error, const char *name, int r) {
        char what[NAME_MAX_LEN + 3];

        snprintf(what, sizeof what, name ? "'%s'" : "the entries", name);
        if (r == -EMFILE || r == -ENFILE)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot store %s: the broker is out of file descriptors.", what);
        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Could not store %s: %s.", what, strerror(-r));
}

/* Deposit-like calls share their authorization: a deposit rule (or a
 * create-memory one) may refuse, ask polkit, or cap the stored access to
 * read-only. No rule: allowed. */
static int authorize_deposit(Broker *b, sd_bus_message *m, Peer *p, PolicyAction action, const char *name,
                             peer_resume_fn handler, bool *read_only, sd_bus_error *error) {
        int cap, r;

        r = authorize(b, m, p, action, name, handler, &cap, error);
        if (r <= 0)
                return r;
        if (cap == O_RDONLY)
                *read_only = true;
        return 1;
}

static int method_deposit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_options_done) DepositOptions o = {};
        Entry *old, *e = NULL;
        const char *name, *which;
        bool read_only;
        FdKind kind;
        Peer *p;
        int fd, fl, r;

        r = get_caller(b, m, method_deposit, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        /* Parse and validate. The fd is the message's; we duplicate it. */
        r = sd_bus_message_read(m, "sh", &name, &fd);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;
        r = check_deposit_fd(fd, name, &o, &kind, &fl, error);
        if (r < 0)
                return r;

        /* Authorize: the rules, then the name must be free or the caller's
         * own to replace, and the quotas must allow it. */
        read_only = o.read_only;
        r = authorize_deposit(b, m, p, POLICY_ACTION_DEPOSIT, name, method_deposit, &o.read_only, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (o.read_only != read_only) {
                r = check_deposit_fd(fd, name, &o, &kind, &fl, error);
                if (r < 0)
                        return r;
        }
        old = registry_get(&b->reg, name);
        if (old && !(o.replace && old->owner_uid == p->uid))
                return sd_bus_error_setf(error, ERROR_EXISTS,
                                         old->owner_uid == p->uid
                                                 ? "An entry named '%s' exists; pass replace=true to replace it."
                                                 : "An entry named '%s' exists and belongs to someone else.",
                                         name);
        r = registry_check_quota(&b->reg, p->uid, 1, old ? 1 : 0, 0, 0, &which);
        if (r < 0)
                return sd_bus_error_setf(error, ERROR_QUOTA, "Cannot deposit '%s': the %s limit is reached.", name,
                                         which);

        /* Act. Sealing changes the depositor's memfd, so it comes last. */
        r = make_entry(name, fd, kind, fl, p->uid, &o, &e);
        if (r < 0)
                return store_failed(error, name, r);
        if (o.seal) {
                r = fdinfo_seal(fd);
                if (r < 0) {
                        entry_free(e);
                        if (r == -EBUSY)
                                return sd_bus_error_setf(error, ERROR_BUSY,
                                                         "Cannot seal '%s': writable shared mappings of it exist; "
                                                         "unmap them first.",
                                                         name);
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "Cannot seal '%s': %s.", name,
                                                 strerror(-r));
                }
        }
        r = store_entry(b, p, e, old, &o);
        if (r < 0)
                return r;
        if (o.persistent)
                save_state(b);
        r = sd_bus_reply_method_return(m, NULL);
        serve_waiters(b, name);
        return r;
}

typedef struct Deposited {
        const char *name;
        int fd;         /* borrowed from the message */
        FdKind kind;
        int flags;
        bool read_only;
        Entry *old;
        Entry *entry;
} Deposited;

static int method_deposit_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_options_done) DepositOptions o = {};
        Deposited d[FDS_PER_CALL_MAX] = {};
        size_t n = 0;
        unsigned n_old = 0;
        bool pending = false;
        const char *which;
        Peer *p;
        int r;

        r = get_caller(b, m, method_deposit_many, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_enter_container(m, 'a', "{sh}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;
                int fd;

                r = sd_bus_message_read(m, "{sh}", &name, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (n >= FDS_PER_CALL_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "DepositMany takes at most %d entries.", FDS_PER_CALL_MAX);
                d[n++] = (Deposited) { .name = name, .fd = fd };
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &o, error);
        if (r < 0)
                return r;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "DepositMany needs at least one entry.");

        for (size_t i = 0; i < n; i++) {
                r = options_check_name(d[i].name, error);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(d[i].name, d[j].name) == 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Entry '%s' is named twice.", d[i].name);
                r = check_deposit_fd(d[i].fd, d[i].name, &o, &d[i].kind, &d[i].flags, error);
                if (r < 0)
                        return r;
        }

        /* Every name is authorized before anything is stored; questions to
         * polkit go out together and the call runs again when all are in. */
        for (size_t i = 0; i < n; i++) {
                d[i].read_only = o.read_only;
                r = authorize_deposit(b, m, p, POLICY_ACTION_DEPOSIT, d[i].name, method_deposit_many,
                                      &d[i].read_only, error);
                if (r < 0)
                        return r;
                pending = pending || r == 0;
        }
        if (pending)
                return 1;
        for (size_t i = 0; i < n; i++) {
                DepositOptions oi = o;
                oi.read_only = d[i].read_only;
                r = check_deposit_fd(d[i].fd, d[i].name, &oi, &d[i].kind, &d[i].flags, error);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                Entry *old = registry_get(&b->reg, d[i].name);
                if (old && !(o.replace && old->owner_uid == p->uid))
                        return sd_bus_error_setf(error, ERROR_EXISTS,
                                                 "An entry named '%s' exists; nothing was deposited.", d[i].name);
                d[i].old = old;
                n_old += !!old;
        }
        r = registry_check_quota(&b->reg, p->uid, n, n_old, 0, 0, &which);
        if (r < 0)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot deposit %zu entries: the %s limit would be passed; nothing was "
                                         "deposited.",
                                         n, which);

        for (size_t i = 0; i < n; i++) {
                DepositOptions oi = o;
                oi.read_only = d[i].read_only;
                r = make_entry(d[i].name, d[i].fd, d[i].kind, d[i].flags, p->uid, &oi, &d[i].entry);
                if (r < 0)
                        goto fail;
        }
        if (o.seal)
                for (size_t i = 0; i < n; i++) {
                        r = fdinfo_seal(d[i].fd);
                        if (r < 0) {
                                for (size_t j = 0; j < n; j++)
                                        entry_free(d[j].entry);
                                if (r == -EBUSY)
                                        return sd_bus_error_setf(
                                                error, ERROR_BUSY,
                                                "Cannot seal '%s': writable shared mappings of it exist; nothing was "
                                                "deposited (memfds listed before it were sealed).",
                                                d[i].name);
                                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                                         "Cannot seal '%s': %s; nothing was deposited.", d[i].name,
                                                         strerror(-r));
                        }
                }
        for (size_t i = 0; i < n; i++) {
                r = store_entry(b, p, TAKE_PTR(d[i].entry), d[i].old, &o);
                if (r < 0)
                        log_error("could not store '%s' after all checks passed: %s", d[i].name, strerror(-r));
        }
        if (o.persistent)
                save_state(b); /* once for all of them */
        r = sd_bus_reply_method_return(m, NULL);
        for (size_t i = 0; i < n; i++)
                serve_waiters(b, d[i].name);
        return r;

fail:
        for (size_t j = 0; j < n; j++)
                entry_free(d[j].entry);
        return store_failed(error, NULL, r);
}

/* Authorizes retrieving name. Returns 1 with *ret_entry and *ret_cap when
 * allowed, 0 while polkit is asked, AUTH_NO_RULE when the entry is not there
 * for this caller (missing, or invisible to it: the caller may wait), or
 * negative with error set. */
static int authorize_retrieve(Broker *b, sd_bus_message *m, Peer *p, const char *name, peer_resume_fn handler,
                              Entry **ret_entry, int *ret_cap, sd_bus_error *error) {
        Entry *e = registry_get(&b->reg, name);
        int r;

        if (!e)
                return AUTH_NO_RULE;
        r = authorize(b, m, p, POLICY_ACTION_RETRIEVE, name, handler, ret_cap, error);
        if (r == AUTH_NO_RULE) {
                if (!acl_allows(p, e))
                        return AUTH_NO_RULE;
                r = 1;
        } else if (r < 0 && sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) && !acl_allows(p, e)) {
                /* Refused, and the caller could not have known it exists. */
                sd_bus_error_free(error);
                return AUTH_NO_RULE;
        }
        if (r > 0)
                *ret_entry = e;
        return r;
}

static int method_retrieve(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        RetrieveOptions o;
        const char *name;
        Entry *e = NULL;
        Peer *p;
        int cap, r;

        r = get_caller(b, m, method_retrieve, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_parse_retrieve(m, &o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;

        r = authorize_retrieve(b, m, p, name, method_retrieve, &e, &cap, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (r == AUTH_NO_RULE) {
                if (o.wait_usec > 0)
                        return park_retrieve(b, p, m, name, &o, error);
                return not_found(error, name);
        }
        return reply_retrieve(b, p, m, e, &o, cap, error);
}

static int method_retrieve_many(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Entry *entries[FDS_PER_CALL_MAX];
        int fds[FDS_PER_CALL_MAX], caps[FDS_PER_CALL_MAX];
        bool pending = false;
        RetrieveOptions o;
        size_t n = 0;
        Peer *p;
        int r;

        r = get_caller(b, m, method_retrieve_many, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read_strv(m, &names);
        if (r < 0)
                return r;
        r = options_parse_retrieve(m, &o, error);
        if (r < 0)
                return r;
        while (names && names[n]) /* an empty array reads as NULL */
                n++;
        if (n == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "RetrieveMany needs at least one name.");
        if (n > FDS_PER_CALL_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "RetrieveMany takes at most %d names, not %zu.", FDS_PER_CALL_MAX, n);
        for (size_t i = 0; i < n; i++) {
                r = options_check_name(names[i], error);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(names[i], names[j]) == 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Entry '%s' is named twice.",
                                                         names[i]);
        }
        for (size_t i = 0; i < n; i++) {
                entries[i] = NULL;
                r = authorize_retrieve(b, m, p, names[i], method_retrieve_many, &entries[i], &caps[i], error);
                if (r < 0)
                        return r;
                if (r == AUTH_NO_RULE)
                        return sd_bus_error_setf(error, ERROR_NOT_FOUND,
                                                 "No entry named '%s' that you may retrieve; nothing was retrieved.",
                                                 names[i]);
                pending = pending || r == 0;
        }
        if (pending)
                return 1;

        for (size_t i = 0; i < n; i++)
                fds[i] = -1;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sh}");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = make_retrieved_fd(entries[i], &o, caps[i], &fds[i], error);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "{sh}", names[i], fds[i] >= 0 ? fds[i] : entries[i]->fd);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (entries[i]->once)
                        broker_remove_entry(b, entries[i], "retrieved once");
        return 1;
}

static int method_remove(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        const char *name;
        bool visible;
        Entry *e;
        Peer *p;
        int r;

        r = get_caller(b, m, method_remove, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;

        e = registry_get(&b->reg, name);
        if (!e)
                return not_found(error, name);
        visible = may_see(b, p, e);

        /* A remove rule decides first; then the owner and root may; then a
         * manage rule, or polkit's org.fdbroker.manage. Callers who may not
         * see the entry never reach polkit: it would tell them it exists. */
        r = authorize(b, m, p, POLICY_ACTION_REMOVE, name, method_remove, NULL, error);
        if (r == AUTH_NO_RULE && (p->uid == 0 || p->uid == e->owner_uid))
                r = 1;
        else if (r == AUTH_NO_RULE) {
                r = authorize(b, m, p, POLICY_ACTION_MANAGE, name, method_remove, NULL, error);
                if (r == AUTH_NO_RULE) {
                        if (!visible)
                                return not_found(error, name);
                        r = ask_polkit(b, m, p, POLICY_ACTION_MANAGE, name, "auth_admin_keep", method_remove, error);
                }
        }
        if (r < 0 && !visible) {
                sd_bus_error_free(error);
                return not_found(error, name);
        }
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        char why[128];
        snprintf(why, sizeof why, "removed by %s (uid %u)", p->unique_name, (unsigned) p->uid);
        broker_remove_entry(b, e, why);
        return sd_bus_reply_method_return(m, NULL);
}

static int compare_entries(const void *a, const void *b) {
        return strcmp((*(Entry *const *) a)->name, (*(Entry *const *) b)->name);
}

/* List never asks polkit: a list rule other than yes hides the entries it
 * matches. */
static bool may_list(const Broker *b, const Peer *p, const Entry *e) {
        PolicyDecision d = decide(b, p, POLICY_ACTION_LIST, e->name);
        if (d.matched && d.result != POLICY_RESULT_YES)
                return false;
        return may_see(b, p, e);
}

static int method_list(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Entry **all = NULL;
        const char *prefix = "";
        size_t n = 0, k = 0;
        Peer *p;
        int r;

        r = get_caller(b, m, method_list, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = options_parse_list_filter(m, &prefix, error);
        if (r < 0)
                return r;

        r = registry_all(&b->reg, &all, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (name_has_prefix(all[i]->name, prefix) && may_list(b, p, all[i]))
                        all[k++] = all[i];
        qsort(all, k, sizeof *all, compare_entries);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sa{sv})");
        for (size_t i = 0; r >= 0 && i < k; i++) {
                r = sd_bus_message_open_container(reply, 'r', "sa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", all[i]->name);
                if (r >= 0)
                        r = append_info(reply, all[i]);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_create_memory(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_(deposit_options_done) DepositOptions o = {};
        _cleanup_close_ int mfd = -1;
        char memfd_name[250];
        Entry *old, *e = NULL;
        const char *name, *which;
        uint64_t size;
        Peer *p;
        int r;

        r = get_caller(b, m, method_create_memory, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "st", &name, &size);
        if (r < 0)
                return r;
        r = options_parse_deposit(m, &o, error);
        if (r < 0)
                return r;
        r = options_check_name(name, error);
        if (r < 0)
                return r;
        if (size == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Size of '%s' must be at least 1 byte.",
                                         name);
        if (size > b->reg.max_memory)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Size %" PRIu64 " of '%s' is above MaxMemorySize (%" PRIu64 " bytes).", size,
                                         name, b->reg.max_memory);

        r = authorize_deposit(b, m, p, POLICY_ACTION_CREATE_MEMORY, name, method_create_memory, &o.read_only, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        old = registry_get(&b->reg, name);
        if (old && !(o.replace && old->owner_uid == p->uid))
                return sd_bus_error_setf(error, ERROR_EXISTS, "An entry named '%s' exists.", name);
        r = registry_check_quota(&b->reg, p->uid, 1, old ? 1 : 0, size, old ? old->memory : 0, &which);
        if (r < 0)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot create '%s' of %" PRIu64 " bytes: the %s limit is reached.", name,
                                         size, which);

        snprintf(memfd_name, sizeof memfd_name, "fdbroker:%s", name);
        mfd = memfd_create(memfd_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return sd_bus_error_set_errnof(error, errno, "Could not create memory for '%s': %m.", name);
        if (ftruncate(mfd, (off_t) size) < 0)
                return sd_bus_error_set_errnof(error, errno, "Could not size memory for '%s': %m.", name);

        r = make_entry(name, mfd, FD_KIND_MEMFD, O_RDWR, p->uid, &o, &e);
        if (r < 0)
                return store_failed(error, name, r);
        e->memory = size;
        if (o.seal) {
                r = fdinfo_seal(mfd);
                if (r < 0) {
                        entry_free(e);
                        return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED, "Cannot seal '%s': %s.", name,
                                                 strerror(-r));
                }
        }
        r = store_entry(b, p, e, old, &o);
        if (r < 0)
                return r;
        if (o.persistent)
                save_state(b);
        r = sd_bus_reply_method_return(m, "h", mfd);
        serve_waiters(b, name);
        return r;
}

static bool path_is_normalised_absolute(const char *path) {
        if (path[0] != '/' || strlen(path) > 4095)
                return false;
        if (path[1] == '\0')
                return true;
        for (const char *p = path; *p;) {
                size_t n;
                p++; /* skip '/' */
                n = strcspn(p, "/");
                if (n == 0)
                        return false; /* "//" or a trailing '/' */
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
        }
        return true;
}

/* Opens path for the caller: no symlink on the way, regular files and
 * devices only, and nothing that could block the broker (the open is
 * non-blocking; O_NONBLOCK is cleared after unless asked for). Returns a
 * new fd owned by the caller, or negative errno (-EMEDIUMTYPE for a file of
 * the wrong type). */
static int open_path(const char *path, int accmode, bool nonblock, int *ret_fd) {
        struct open_how how = {
                .flags = (uint64_t) (accmode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW),
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int fd = -1;
        struct stat st;

        /* A FIFO would be opened (and would not block, thanks to O_NONBLOCK)
         * before we could see what it is; look first, through O_PATH. */
        struct open_how probe = { .flags = O_PATH | O_CLOEXEC | O_NOFOLLOW, .resolve = how.resolve };
        fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &probe, sizeof probe);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP; /* O_PATH|O_NOFOLLOW hands back the link itself */
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
                return -EMEDIUMTYPE;
        fd = safe_close(fd);

        fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
                return -EMEDIUMTYPE; /* swapped between the two opens */
        if (!nonblock && fcntl(fd, F_SETFL, 0) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int method_open_path(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_close_ int fd = -1;
        const char *path;
        bool nonblock = false;
        int accmode = O_RDONLY, cap, r;
        Peer *p;

        r = get_caller(b, m, method_open_path, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_read(m, "s", &path);
        if (r < 0)
                return r;
        r = options_parse_open_path(m, &accmode, &nonblock, error);
        if (r < 0)
                return r;
        if (!path_is_normalised_absolute(path))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Path '%s' must be absolute and normalised (no '.', '..', '//' or trailing "
                                         "'/').",
                                         path);

        /* An open-path rule decides; without one, polkit does. */
        r = authorize(b, m, p, POLICY_ACTION_OPEN_PATH, path, method_open_path, &cap, error);
        if (r == AUTH_NO_RULE)
                r = ask_polkit(b, m, p, POLICY_ACTION_OPEN_PATH, path, "auth_admin_keep", method_open_path, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (cap != POLICY_ACCESS_ANY && cap != O_RDWR && cap != accmode)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Policy lets you open '%s' only %s, not %s.", path,
                                         fdinfo_accmode_to_string(cap), fdinfo_accmode_to_string(accmode));

        r = open_path(path, accmode, nonblock, &fd);
        if (r == -ELOOP)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' is or passes through a symbolic link, which OpenPath never follows.",
                                         path);
        if (r == -EMEDIUMTYPE)
                return sd_bus_error_setf(error, ERROR_NOT_SUPPORTED,
                                         "'%s' is not a regular file or a device; OpenPath opens only those.", path);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, ERROR_NOT_FOUND, "'%s' does not exist.", path);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Could not open '%s': %s.", path, strerror(-r));

        log_info("%s (uid %u) opened '%s' %s", p->unique_name, (unsigned) p->uid, path,
                 fdinfo_accmode_to_string(accmode));
        return sd_bus_reply_method_return(m, "h", fd);
}

static int method_open_connection(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        _cleanup_close_ int fd = -1;
        Peer *p;
        int r;

        r = get_caller(b, m, method_open_connection, &p, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = direct_parse_options(m, error);
        if (r < 0)
                return r;

        r = direct_open_pair(&b->direct, p, &fd);
        if (r == -EDQUOT)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "uid %u already holds %u direct connections; close one first.",
                                         (unsigned) p->uid, FDB_DIRECT_CONNECTIONS_PER_UID_MAX);
        if (r == -EUSERS)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "fdbroker serves %u direct connections, its limit; use the bus.",
                                         DIRECT_CONNECTIONS_MAX);
        if (r == -EMFILE || r == -ENFILE)
                return sd_bus_error_setf(error, ERROR_QUOTA,
                                         "Cannot open a direct connection: the broker is out of file descriptors.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Could not open a direct connection: %s.", strerror(-r));
        return sd_bus_reply_method_return(m, "h", fd);
}

/* ---- properties -------------------------------------------------------- */

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", FDBROKER_VERSION);
}

static int property_get_entry_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Broker *b = userdata;
        return sd_bus_message_append(reply, "u", b->reg.n_entries);
}

static const sd_bus_vtable broker_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("EntryCount", "u", property_get_entry_count, 0, 0),
        SD_BUS_PROPERTY("MaxEntries", "u", NULL, offsetof(Broker, reg.max_entries), 0),
        SD_BUS_PROPERTY("MaxEntriesPerUser", "u", NULL, offsetof(Broker, reg.max_entries_per_user), 0),
        SD_BUS_PROPERTY("MaxMemorySize", "t", NULL, offsetof(Broker, reg.max_memory), 0),
        SD_BUS_METHOD_WITH_ARGS("Deposit", SD_BUS_ARGS("s", name, "h", fd, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_deposit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DepositMany", SD_BUS_ARGS("a{sh}", fds, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_deposit_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Retrieve", SD_BUS_ARGS("s", name, "a{sv}", options),
                                SD_BUS_RESULT("h", fd, "a{sv}", info), method_retrieve, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RetrieveMany", SD_BUS_ARGS("as", names, "a{sv}", options),
                                SD_BUS_RESULT("a{sh}", fds), method_retrieve_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("List", SD_BUS_ARGS("a{sv}", filter), SD_BUS_RESULT("a(sa{sv})", entries),
                                method_list, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateMemory", SD_BUS_ARGS("s", name, "t", size, "a{sv}", options),
                                SD_BUS_RESULT("h", fd), method_create_memory, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenPath", SD_BUS_ARGS("s", path, "a{sv}", options), SD_BUS_RESULT("h", fd),
                                method_open_path, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenConnection", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("h", socket),
                                method_open_connection, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- life cycle -------------------------------------------------------- */

/* fds kept free for what is not an entry: the bus, the event loop, fds
 * arriving in messages (up to 16 each, and calls queue while credentials
 * are looked up), reopenings and files being read. */
#define FD_RESERVE 1024U

static unsigned fd_budget(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT_MAX)
                return UINT_MAX;
        return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned) rl.rlim_cur - FD_RESERVE : (unsigned) rl.rlim_cur / 2;
}

static unsigned broker_count_waiters(const Broker *b) {
        unsigned n = 0;
        for (const Waiter *w = b->waiters; w; w = w->next)
                n++;
        return n;
}

static void on_peer_gone(Peer *p, void *userdata) {
        Broker *b = userdata;

        polkit_forget_peer(&b->polkit, p);
        while (p->waiters)
                waiter_free(p->waiters);
        while (p->entries)
                broker_remove_entry(b, p->entries, "depositor's connection closed");
}

/* The same object, on a direct connection: handlers find their caller by
 * the connection (peers_get_caller), and replies go back on it. */
static int broker_attach_connection(sd_bus *conn, void *userdata) {
        Broker *b = userdata;
        return sd_bus_add_object_vtable(conn, NULL, OBJECT_PATH, INTERFACE, broker_vtable, b);
}

int broker_listen_direct(Broker *b, int fd) {
        return direct_listen(&b->direct, fd);
}

int broker_new(sd_event *event, sd_bus *bus, Broker **ret) {
        _cleanup_(broker_freep) Broker *b = calloc(1, sizeof(Broker));
        int r;

        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(event);
        b->bus = sd_bus_ref(bus);
        registry_init(&b->reg);
        b->fd_budget = fd_budget();
        polkit_init(&b->polkit, bus, b);
        r = peers_init(&b->peers, bus, on_peer_gone, b);
        if (r < 0)
                return r;
        direct_init(&b->direct, event, &b->peers, broker_attach_connection, b);
        r = sd_bus_add_object_vtable(bus, &b->object, OBJECT_PATH, INTERFACE, broker_vtable, b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        if (b->direct.event)
                direct_done(&b->direct); /* its peers first: they point at its connections */
        peers_done(&b->peers); /* drops waiters, polkit questions, connection entries */
        polkit_done(&b->polkit);
        registry_done(&b->reg);
        policy_free(b->policy);
        persist_done(&b->persist);
        sd_bus_slot_unref(b->object);
        sd_bus_unref(b->bus);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

void broker_set_policy(Broker *b, Policy *policy) {
        const PolicyLimits none = {};
        const PolicyLimits *l = policy ? &policy->limits : &none;

        policy_free(b->policy);
        b->policy = policy;
        /* Lowered limits refuse new entries; existing ones stay. */
        b->reg.max_entries = l->has_max_entries ? l->max_entries : DEFAULT_MAX_ENTRIES;
        if (b->reg.max_entries > b->fd_budget) {
                /* Every entry is an open fd. Running out of fds would make
                 * sd-bus drop our connection when the next fd arrives, and
                 * every entry with it: refuse deposits before that. */
                log_warning("MaxEntries=%u is more than the open-file limit allows; using %u",
                            b->reg.max_entries, b->fd_budget);
                b->reg.max_entries = b->fd_budget;
        }
        b->reg.max_entries_per_user = l->has_max_entries_per_user ? l->max_entries_per_user
                                                                   : DEFAULT_MAX_ENTRIES_PER_USER;
        b->reg.max_memory = l->has_max_memory_size ? l->max_memory_size : DEFAULT_MAX_MEMORY_SIZE;
}

static void on_restored(Entry *e, void *userdata) {
        Broker *b = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        e->broker = b;
        if (e->expires_usec > 0) {
                r = arm_expiry(b, e, e->expires_usec > now ? e->expires_usec - now : 1);
                if (r < 0)
                        log_error("no expiry timer for '%s': %s", e->name, strerror(-r));
        }
        r = registry_add(&b->reg, e);
        if (r < 0) {
                log_error("could not restore '%s': %s", e->name, strerror(-r));
                entry_free(e);
                return;
        }
        log_info("restored '%s' (uid %u, %s)", e->name, (unsigned) e->owner_uid, fdkind_to_string(e->kind));
}

int broker_restore(Broker *b, const char *runtime_dir) {
        int n, r;

        r = persist_init(&b->persist, runtime_dir);
        if (r < 0)
                return r;
        n = persist_restore(&b->persist, &b->reg, on_restored, b);
        if (n < 0)
                return n;
        save_state(b); /* so it lists exactly what was restored */
        if (!persist_enabled(&b->persist))
                log_info("persistent entries last as long as this process (%s)",
                         runtime_dir ? "no service manager fd store" : "no runtime directory");
        return n;
}

bool broker_is_idle(const Broker *b) {
        return b->reg.n_entries == 0 && !b->waiters && !b->polkit.queries && peers_all_ready(&b->peers) &&
               b->direct.n_connections == 0 && b->direct.n_refused == 0;
}

void broker_format_status(const Broker *b, char *buf, size_t size) {
        snprintf(buf, size, "Serving %u entries (%u waiting calls).", b->reg.n_entries, broker_count_waiters(b));
}

uint64_t broker_call_count(const Broker *b) {
        return b->n_calls;
}

void broker_set_exiting(Broker *b) {
        b->exiting = true;
}
