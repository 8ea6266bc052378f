/* peers.c: the caller-identity cache. See peers.h. */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"

static bool peer_eq(const HashLink *l, const void *key) {
        return strcmp(container_of(l, Peer, link)->unique_name, key) == 0;
}

static Peer *peer_find(Peers *ps, const char *name) {
        HashLink *l = hashtable_find(&ps->by_name, hash_string(name), peer_eq, name);
        return l ? container_of(l, Peer, link) : NULL;
}

static void peer_free(Peer *p) {
        if (!p)
                return;
        sd_bus_slot_unref(p->lookup);
        for (size_t i = 0; i < p->n_queued; i++)
                sd_bus_message_unref(p->queue[i].message);
        free(p->unique_name);
        free(p->gids);
        free(p->label);
        if (p->direct)
                safe_close(p->direct_pidfd);
        free(p->direct_origin);
        sd_bus_unref(p->direct);
        free(p);
}

/* The peer left: the owner drops what hangs off it, then it goes. */
static void peer_drop(Peers *ps, Peer *p) {
        hashtable_remove(&ps->by_name, &p->link);
        if (ps->gone)
                ps->gone(p, ps->userdata);
        peer_free(p);
}

bool reply_if_failed(sd_bus_message *m, int r, sd_bus_error *error) {
        if (r >= 0 && !sd_bus_error_is_set(error))
                return false;
        if (!sd_bus_error_is_set(error))
                sd_bus_error_set_errno(error, r);
        (void) sd_bus_reply_method_error(m, error);
        return true;
}

void resume_call(peer_resume_fn handler, sd_bus_message *m, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) sd_bus_message_rewind(m, true);
        reply_if_failed(m, handler(m, userdata, &error), &error);
}

static int parse_credentials(Peer *p, sd_bus_message *reply) {
        bool have_uid = false;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;

                if (strcmp(key, "UnixUserID") == 0) {
                        uint32_t u;
                        r = sd_bus_message_read(reply, "v", "u", &u);
                        if (r < 0)
                                return r;
                        p->uid = u;
                        have_uid = true;
                } else if (strcmp(key, "UnixGroupIDs") == 0) {
                        const void *v;
                        size_t sz;
                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read_array(reply, 'u', &v, &sz);
                        if (r < 0)
                                return r;
                        free(p->gids);
                        p->gids = sz > 0 ? malloc(sz) : NULL;
                        if (sz > 0 && !p->gids)
                                return -ENOMEM;
                        if (sz > 0)
                                memcpy(p->gids, v, sz);
                        p->n_gids = sz / sizeof(uint32_t);
                        r = sd_bus_message_exit_container(reply);
                        if (r < 0)
                                return r;
                } else if (strcmp(key, "LinuxSecurityLabel") == 0) {
                        const void *v;
                        size_t sz;
                        r = sd_bus_message_enter_container(reply, 'v', "ay");
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read_array(reply, 'y', &v, &sz);
                        if (r < 0)
                                return r;
                        free(p->label);
                        /* The label arrives with its trailing NUL, or not. */
                        p->label = strndup(v, sz);
                        if (!p->label)
                                return -ENOMEM;
                        r = sd_bus_message_exit_container(reply);
                        if (r < 0)
                                return r;
                } else {
                        r = sd_bus_message_skip(reply, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return have_uid ? 0 : -ENODATA;
}

static int on_credentials(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        Peers *ps = p->peers;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r;

        p->lookup = sd_bus_slot_unref(p->lookup);

        if (e) {
                log_debug("could not look up the credentials of %s: %s", p->unique_name, e->message);
                /* Most likely it left already; its calls cannot be answered. */
                peer_drop(ps, p);
                return 0;
        }
        r = parse_credentials(p, reply);
        if (r < 0) {
                log_warning("bus gave no usable credentials for %s: %s", p->unique_name, strerror(-r));
                peer_drop(ps, p);
                return 0;
        }
        p->ready = true;

        /* Run what waited. A handler may queue nothing now: the peer is
         * ready. The queue is swapped out first, since a handler can drop
         * the peer (never today, but cheap to be safe against). */
        size_t n = p->n_queued;
        QueuedCall q[PEER_QUEUE_MAX];
        memcpy(q, p->queue, n * sizeof q[0]);
        p->n_queued = 0;
        for (size_t i = 0; i < n; i++) {
                resume_call(q[i].handler, q[i].message, ps->userdata);
                sd_bus_message_unref(q[i].message);
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Peers *ps = userdata;
        const char *name, *old_owner, *new_owner;
        Peer *p;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || new_owner[0] != '\0')
                return 0;
        p = peer_find(ps, name);
        if (p)
                peer_drop(ps, p);
        return 0;
}

int peers_init(Peers *ps, sd_bus *bus, peer_gone_fn gone, void *userdata) {
        *ps = (Peers) { .bus = sd_bus_ref(bus), .gone = gone, .userdata = userdata };

        /* One match for every peer, installed before we own our name, so no
         * caller can leave unseen. arg2='' selects disconnections only. */
        return sd_bus_add_match(bus, &ps->match,
                                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''",
                                on_name_owner_changed, ps);
}

void peers_done(Peers *ps) {
        size_t st;
        HashLink *l;

        /* peer_drop() removes from the table, which may shrink it: start
         * over each time rather than walk a table that changes. */
        while ((l = hashtable_first(&ps->by_name, &st)))
                peer_drop(ps, container_of(l, Peer, link));
        hashtable_done(&ps->by_name);
        while ((l = hashtable_first(&ps->by_bus, &st)))
                peers_drop_direct(ps, container_of(l, Peer, link));
        hashtable_done(&ps->by_bus);
        ps->match = sd_bus_slot_unref(ps->match);
        ps->bus = sd_bus_unref(ps->bus);
}

int peers_get_caller(Peers *ps, sd_bus_message *m, peer_resume_fn handler, Peer **ret) {
        const char *sender = sd_bus_message_get_sender(m);
        Peer *p;
        int r;

        /* A direct connection has no sender: its peer is the connection. */
        if (sd_bus_message_get_bus(m) != ps->bus) {
                p = peers_find_direct(ps, sd_bus_message_get_bus(m));
                if (!p)
                        return -EPROTO;
                *ret = p;
                return 1;
        }
        if (!sender)
                return -EPROTO;

        p = peer_find(ps, sender);
        if (p && p->ready) {
                *ret = p;
                return 1;
        }

        if (!p) {
                p = calloc(1, sizeof *p);
                if (!p)
                        return -ENOMEM;
                p->peers = ps;
                p->unique_name = strdup(sender);
                if (!p->unique_name) {
                        free(p);
                        return -ENOMEM;
                }
                r = sd_bus_call_method_async(ps->bus, &p->lookup, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "GetConnectionCredentials", on_credentials, p,
                                             "s", sender);
                if (r < 0) {
                        peer_free(p);
                        return r;
                }
                p->link.hash = hash_string(sender);
                r = hashtable_insert(&ps->by_name, &p->link);
                if (r < 0) {
                        peer_free(p);
                        return r;
                }
        }

        if (p->n_queued >= PEER_QUEUE_MAX)
                return -EBUSY;
        p->queue[p->n_queued++] = (QueuedCall) { .message = sd_bus_message_ref(m), .handler = handler };
        return 0;
}

Identity peer_identity(const Peer *p) {
        return (Identity) { .uid = p->uid, .gids = p->gids, .n_gids = p->n_gids, .label = p->label };
}

bool peers_all_ready(const Peers *ps) {
        size_t st;
        for (HashLink *l = hashtable_first(&ps->by_name, &st); l; l = hashtable_next(&ps->by_name, l, &st))
                if (!container_of(l, Peer, link)->ready)
                        return false;
        return true;
}

/* ---- direct connections -------------------------------------------------- */

static bool peer_conn_eq(const HashLink *l, const void *key) {
        return container_of(l, Peer, link)->direct == key;
}

Peer *peers_find_direct(Peers *ps, sd_bus *conn) {
        HashLink *l = hashtable_find(&ps->by_bus, hash_u64((uint64_t) (uintptr_t) conn), peer_conn_eq, conn);
        return l ? container_of(l, Peer, link) : NULL;
}

int peers_add_direct(Peers *ps, sd_bus *conn, const char *name, uid_t uid, const gid_t *gids, size_t n_gids,
                     const char *label, int pidfd, const char *origin, Peer **ret) {
        _cleanup_close_ int pfd = pidfd;
        Peer *p;
        int r;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->peers = ps;
        p->direct = sd_bus_ref(conn);
        p->direct_pidfd = TAKE_FD(pfd);
        p->ready = true;
        p->uid = uid;
        p->unique_name = strdup(name);
        if (n_gids > 0) {
                p->gids = malloc(n_gids * sizeof *gids);
                if (p->gids) {
                        memcpy(p->gids, gids, n_gids * sizeof *gids);
                        p->n_gids = n_gids;
                }
        }
        p->label = label ? strdup(label) : NULL;
        p->direct_origin = origin ? strdup(origin) : NULL;
        if (!p->unique_name || (n_gids > 0 && !p->gids) || (label && !p->label) || (origin && !p->direct_origin)) {
                peer_free(p);
                return -ENOMEM;
        }
        p->link.hash = hash_u64((uint64_t) (uintptr_t) conn);
        r = hashtable_insert(&ps->by_bus, &p->link);
        if (r < 0) {
                peer_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void peers_drop_direct(Peers *ps, Peer *p) {
        if (!p)
                return;
        hashtable_remove(&ps->by_bus, &p->link);
        if (ps->gone)
                ps->gone(p, ps->userdata);
        peer_free(p);
}
