/* peers.c: the caller-identity cache. See peers.h. */
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/sockios.h>

#include "busstats.h"
#include "cleanup.h"
#include "fdclose.h"
#include "log.h"
#include "protocol.h"

static bool peer_eq(const HashLink *l, const void *key) {
        return strcmp(container_of(l, Peer, link)->unique_name, key) == 0;
}

static Peer *peer_find(Peers *ps, const char *name) {
        HashLink *l = hashtable_find(&ps->by_name, hash_string(name), peer_eq, name);
        return l ? container_of(l, Peer, link) : NULL;
}

static void discharge_queued(Peer *p, size_t n) {
        if (p->peers->acct)
                accounting_discharge(p->peers->acct, p->queue_uid, ACCT_QUEUED_CALLS, n);
}

static void peer_free(Peer *p) {
        if (!p)
                return;
        sd_bus_slot_unref(p->lookup);
        sd_bus_slot_unref(p->stats);
        sd_event_source_disable_unref(p->retry);
        for (size_t i = 0; i < p->n_queued; i++) {
                /* A queued call that will not run (its caller left before its
                 * credentials came): its fds must not be closed on the loop. */
                fdclose_message_fds(p->queue[i].message);
                sd_bus_message_unref(p->queue[i].message);
        }
        discharge_queued(p, p->n_queued);
        if (p->peers->acct && p->ready && !p->direct)
                accounting_discharge(p->peers->acct, p->uid, ACCT_UNREAD_FDS, p->unread_fds);
        safe_close(p->pidfd);
        free(p->unique_name);
        free(p->gids);
        free(p->label);
        policy_snapshot_free(p->snapshot);
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

/* UnixGroupIDs: the variant's "au", copied into p->gids. */
static int read_credential_gids(Peer *p, sd_bus_message *reply) {
        const void *v;
        size_t sz;
        int r;

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
        return sd_bus_message_exit_container(reply);
}

/* ProcessFD: dbus 1.16 and dbus-broker send one. The fd is the reply's;
 * we keep our own O_CLOEXEC duplicate in p->pidfd. */
static int read_credential_pidfd(Peer *p, sd_bus_message *reply) {
        int fd, r;

        r = sd_bus_message_read(reply, "v", "h", &fd);
        if (r < 0)
                return r;
        safe_close(p->pidfd);
        p->pidfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (p->pidfd < 0)
                return -errno;
        return 0;
}

/* LinuxSecurityLabel: the variant's "ay", as a string in p->label. */
static int read_credential_label(Peer *p, sd_bus_message *reply) {
        const void *v;
        size_t sz;
        int r;

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
        return sd_bus_message_exit_container(reply);
}

/* Reads the variant of one credential named key into p; skips a key we do
 * not use. Sets *have_uid when the key is the uid. */
static int read_credential(Peer *p, sd_bus_message *reply, const char *key, bool *have_uid) {
        int r;

        if (strcmp(key, "UnixUserID") == 0) {
                uint32_t u;
                r = sd_bus_message_read(reply, "v", "u", &u);
                if (r < 0)
                        return r;
                p->uid = u;
                *have_uid = true;
                return 0;
        }
        if (strcmp(key, "UnixGroupIDs") == 0)
                return read_credential_gids(p, reply);
        if (strcmp(key, "ProcessFD") == 0)
                return read_credential_pidfd(p, reply);
        if (strcmp(key, "ProcessID") == 0) {
                uint32_t pid;
                r = sd_bus_message_read(reply, "v", "u", &pid);
                if (r < 0)
                        return r;
                if (p->pid == 0)
                        p->pid = (pid_t) pid;
                return 0;
        }
        if (strcmp(key, "LinuxSecurityLabel") == 0)
                return read_credential_label(p, reply);
        return sd_bus_message_skip(reply, "v");
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
                r = read_credential(p, reply, key, &have_uid);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return have_uid ? 0 : -ENODATA;
}

/* The pid a pidfd refers to, from /proc/self/fdinfo: for log lines only
 * (a pid can be reused; the pidfd cannot). 0 when unknown. */
static pid_t pidfd_to_pid(int pidfd) {
        char path[64], line[128];
        long pid = 0;
        FILE *f;

        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "Pid: %ld", &pid) == 1)
                        break;
        fclose(f);
        return pid > 0 ? (pid_t) pid : 0;
}

/* Takes the queue out and runs each call again. A call that still cannot
 * run queues itself anew (behind none of the old ones: order is kept). */
static void peer_flush(Peers *ps, Peer *p) {
        size_t n = p->n_queued;
        QueuedCall q[PEER_QUEUE_MAX];

        if (n == 0)
                return;
        memcpy(q, p->queue, n * sizeof q[0]);
        p->n_queued = 0;
        discharge_queued(p, n);
        for (size_t i = 0; i < n; i++) {
                resume_call(q[i].handler, q[i].message, ps->userdata);
                sd_bus_message_unref(q[i].message);
        }
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
        Identity id = peer_identity(p);
        r = policy_snapshot_new(ps->policy ? *ps->policy : NULL, &id, &p->snapshot);
        if (r < 0) {
                log_warning("no policy snapshot for %s: %s", p->unique_name, strerror(-r));
                peer_drop(ps, p);
                return 0;
        }
        p->ready = true;
        if (p->pidfd >= 0) {
                pid_t pid = pidfd_to_pid(p->pidfd);
                if (pid > 0)
                        p->pid = pid;
        }
        log_debug("%s is uid %u, pid %d (%s)", p->unique_name, (unsigned) p->uid, (int) p->pid,
                  p->pidfd >= 0 ? "from its pidfd" : "as the bus said; no pidfd");

        /* Run what waited. The queue is swapped out first, since a handler
         * can drop the peer (never today, but cheap to be safe against). */
        peer_flush(ps, p);
        return 0;
}

/* ---- slow readers ------------------------------------------------------ */

static int peer_ask_stats(Peers *ps, Peer *p);
static void peer_retry_later(Peers *ps, Peer *p);

/* Some fds were read or delivered, or we stopped counting: run the calls
 * that waited for room, this peer's and those of others whose uid or the
 * global budget was short. */
static void peers_flush_waiting(Peers *ps) {
        size_t st, n = 0;
        Peer **v;

        if (ps->acct && ps->acct->used[ACCT_QUEUED_CALLS] == 0)
                return; /* nobody waits: the common case, kept O(1) */
        v = calloc(ps->by_name.n_items + 1, sizeof *v);
        if (!v)
                return;
        for (HashLink *l = hashtable_first(&ps->by_name, &st); l; l = hashtable_next(&ps->by_name, l, &st)) {
                Peer *p = container_of(l, Peer, link);
                if (p->ready && p->n_queued > 0)
                        v[n++] = p;
        }
        /* A resumed call cannot drop a peer (peers go only on the bus's
         * word), so the collected pointers stay valid. */
        for (size_t i = 0; i < n; i++)
                peer_flush(ps, v[i]);
        free(v);
}

/* Sets p's unread count to n (never raising it), giving back the rest. */
static void peer_set_unread(Peers *ps, Peer *p, unsigned n) {
        if (n >= p->unread_fds)
                return;
        if (ps->acct && !p->direct)
                accounting_discharge(ps->acct, p->uid, ACCT_UNREAD_FDS, p->unread_fds - n);
        p->unread_fds = n;
        if (p->unread_at_stats > n)
                p->unread_at_stats = n;
}

/* The bus cannot tell us who reads (or need not: dbus-broker charges
 * queued messages to their receiver): stop counting, refuse nobody. */
static void peers_stop_counting(Peers *ps, const char *why) {
        size_t st;

        if (ps->unlimited)
                return;
        ps->unlimited = true;
        log_info("not limiting fds sent to callers that do not read them: %s", why);
        for (HashLink *l = hashtable_first(&ps->by_name, &st); l; l = hashtable_next(&ps->by_name, l, &st))
                peer_set_unread(ps, container_of(l, Peer, link), 0);
        peers_flush_waiting(ps);
}

static void stats_unavailable(Peers *ps, const sd_bus_error *e) {
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                log_warning("the bus policy does not let fdbroker read GetConnectionStats (%s); install its bus "
                            "policy file, or a caller that never reads its replies can stall dbus-daemon's "
                            "delivery of the broker's messages",
                            e->message ? e->message : e->name);
        peers_stop_counting(ps, e->message ? e->message : e->name);
}

/* dbus-daemon's GetConnectionStats: OutgoingFDs is what still waits in the
 * daemon for that peer, which is what counts against the broker's own
 * connection. What left the daemon sits in the peer's socket buffer (or was
 * read) and no longer stalls anyone. */
static int on_stats_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        Peers *ps = p->peers;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        unsigned after = p->unread_fds - p->unread_at_stats, before;
        static const char *const keys[] = { "OutgoingFDs" };
        uint32_t outgoing;

        p->stats = sd_bus_slot_unref(p->stats);
        if (e) {
                /* The peer left meanwhile (NameHasNoOwner), or the bus has
                 * no statistics after all. */
                if (busstats_unavailable(e))
                        stats_unavailable(ps, e);
                return 0;
        }

        /* A malformed answer shows as a missing key. */
        (void) busstats_read(reply, keys, &outgoing, 1);
        if (outgoing == UINT32_MAX) {
                peers_stop_counting(ps, "the bus's GetConnectionStats has no OutgoingFDs");
                return 0;
        }
        log_debug("%s: %u fds of the %u sent before still wait in the bus", p->unique_name, (unsigned) outgoing,
                  p->unread_at_stats);
        before = p->unread_fds;
        peer_set_unread(ps, p, (outgoing < p->unread_at_stats ? outgoing : p->unread_at_stats) + after);
        p->unread_at_stats = 0;
        if (p->unread_fds < before) {
                p->retry_usec = 0;
                peers_flush_waiting(ps);
        } else if (p->n_queued > 0)
                peer_retry_later(ps, p); /* stuck: ask again later, not in a loop */
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Peer *p = userdata;

        p->retry = sd_event_source_disable_unref(p->retry);
        (void) peer_ask_stats(p->peers, p);
        return 0;
}

/* The fds of a peer with calls waiting are still stuck in the bus: look
 * again after 10 ms, doubling up to 1 s, rather than at its every call. */
static void peer_retry_later(Peers *ps, Peer *p) {
        sd_event *e = sd_bus_get_event(ps->bus);

        if (p->retry || !e)
                return;
        p->retry_usec = p->retry_usec == 0 ? 10000 : p->retry_usec >= 500000 ? 1000000 : p->retry_usec * 2;
        (void) sd_event_add_time_relative(e, &p->retry, CLOCK_MONOTONIC, p->retry_usec, 0, on_retry, p);
}

/* Direct connections: no daemon holds anything, but what the peer does not
 * read stays in flight in its socket, and the kernel charges fds in flight
 * to the sender's user: past RLIMIT_NOFILE of them, every sendmsg() with
 * fds fails (ETOOMANYREFS) unless the sender has CAP_SYS_RESOURCE, which
 * user fdbroker has not. So a direct peer may have PEER_UNREAD_FDS_MAX fds
 * sent since we last saw its connection drained: nothing in sd-bus's write
 * queue and nothing in the socket (SIOCOUTQ: bytes the receiver has not
 * read yet, which the kernel counts and no client can fake). A peer that
 * reads drains at once; one that does not has its calls that return fds
 * held, then refused, as on the bus. */
static bool direct_drained(Peer *p) {
        uint64_t n_write = 0;
        int fd = sd_bus_get_fd(p->direct), outq = 0;

        if (fd < 0)
                return true; /* closed: nothing more goes out */
        if (sd_bus_get_n_queued_write(p->direct, &n_write) < 0 || n_write > 0)
                return false;
        if (ioctl(fd, SIOCOUTQ, &outq) < 0)
                return true; /* cannot tell: do not hold a reading peer forever */
        return outq == 0;
}

static bool direct_has_fd_room(Peers *ps, Peer *p) {
        if (p->unread_fds < PEER_UNREAD_FDS_MAX)
                return true;
        if (direct_drained(p)) {
                p->unread_fds = 0;
                return true;
        }
        snprintf(ps->why, sizeof ps->why,
                 "%u file descriptors sent on this direct connection are still unread (at most %u); read your "
                 "replies",
                 p->unread_fds, PEER_UNREAD_FDS_MAX);
        return false;
}

static int peer_ask_stats(Peers *ps, Peer *p) {
        int r;

        if (p->direct) {
                /* No daemon to ask: look at the socket. */
                if (direct_drained(p)) {
                        p->unread_fds = 0;
                        p->retry_usec = 0;
                        peer_flush(ps, p);
                } else if (p->n_queued > 0)
                        peer_retry_later(ps, p);
                return 0;
        }

        if (p->stats || p->retry || ps->unlimited)
                return 0;
        r = sd_bus_call_method_async(ps->bus, &p->stats, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", on_stats_reply, p,
                                     "s", p->unique_name);
        if (r < 0)
                return r;
        p->unread_at_stats = p->unread_fds;
        return 0;
}

void peers_note_fds_sent(Peers *ps, Peer *p, unsigned n) {
        /* A direct connection has no bus daemon holding its fds, and its own
         * budget (direct_has_fd_room), not charged to its uid's share of
         * MaxUnreadFds, which is about the bus daemon's limit. */
        if (p->direct) {
                p->unread_fds += n;
                return;
        }
        if (n == 0 || ps->unlimited)
                return;
        /* Sent already: charged even past the budget (one RetrieveMany may
         * pass it by up to 15). */
        if (ps->acct && accounting_charge_force(ps->acct, p->uid, ACCT_UNREAD_FDS, n) < 0)
                return;
        p->unread_fds += n;
        /* Asked early, the answer is usually in before the budget is
         * reached: a reading caller never waits. */
        if (p->unread_fds >= PEER_ASK_MARK)
                (void) peer_ask_stats(ps, p);
}

bool peers_fd_is_bus_connection(const Peers *ps, int fd) {
        struct sockaddr_un ours = {}, theirs = {};
        socklen_t lo = sizeof ours, lt = sizeof theirs;
        int bus_fd, type = 0;
        socklen_t tl = sizeof type;

        bus_fd = sd_bus_get_fd(ps->bus);
        if (bus_fd < 0 || getpeername(bus_fd, (struct sockaddr *) &ours, &lo) < 0 || ours.sun_family != AF_UNIX)
                return false;
        /* An unnamed peer (a socketpair) has nothing to compare. */
        if (lo <= offsetof(struct sockaddr_un, sun_path))
                return false;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)
                return false;
        if (getpeername(fd, (struct sockaddr *) &theirs, &lt) < 0 || theirs.sun_family != AF_UNIX)
                return false;
        return lt == lo && memcmp(ours.sun_path, theirs.sun_path, lo - offsetof(struct sockaddr_un, sun_path)) == 0;
}

/* Calls whose reply carries fds. */
static bool call_sends_fds(sd_bus_message *m) {
        const char *member = sd_bus_message_get_member(m);
        const char *iface = sd_bus_message_get_interface(m);

        if (!member || !iface || strcmp(iface, FDB_INTERFACE) != 0)
                return false;
        return strcmp(member, "Retrieve") == 0 || strcmp(member, "RetrieveMany") == 0 ||
               strcmp(member, "CreateMemory") == 0 || strcmp(member, "OpenPath") == 0;
}

/* Whether p may be sent another fd now; if not, ps->why says why. */
static bool peer_has_fd_room(Peers *ps, Peer *p) {
        AcctRefusal why;
        char text[256];

        if (ps->unlimited)
                return true;
        if (p->unread_fds >= PEER_UNREAD_FDS_MAX) {
                snprintf(ps->why, sizeof ps->why,
                         "%u file descriptors sent to this connection are still unread (at most %u); read your "
                         "replies",
                         p->unread_fds, PEER_UNREAD_FDS_MAX);
                return false;
        }
        if (ps->acct && accounting_check(ps->acct, p->uid, ACCT_UNREAD_FDS, 1, 0, &why) < 0) {
                accounting_format_refusal(&why, text, sizeof text);
                snprintf(ps->why, sizeof ps->why,
                         "%u file descriptors sent to this connection are still unread, and %s", p->unread_fds, text);
                return false;
        }
        return true;
}

/* Asks the bus about every peer that holds unread fds: called when a call
 * has to wait for room, which may be another peer's to give back. */
static void peers_ask_holders(Peers *ps) {
        size_t st;

        for (HashLink *l = hashtable_first(&ps->by_name, &st); l; l = hashtable_next(&ps->by_name, l, &st)) {
                Peer *p = container_of(l, Peer, link);
                if (p->ready && p->unread_fds > 0)
                        (void) peer_ask_stats(ps, p);
        }
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

/* Whether the bus has the statistics at all, asked once at start about our
 * own connection: dbus-broker has none, and need not be told. */
static int on_stats_probe(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peers *ps = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        ps->probe = sd_bus_slot_unref(ps->probe);
        if (e)
                stats_unavailable(ps, e);
        return 0;
}

int peers_init(Peers *ps, sd_bus *bus, peer_gone_fn gone, void *userdata) {
        const char *me = NULL;
        int r;

        *ps = (Peers) { .bus = sd_bus_ref(bus), .gone = gone, .userdata = userdata };

        if (sd_bus_get_unique_name(bus, &me) >= 0 && me) {
                r = sd_bus_call_method_async(bus, &ps->probe, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats",
                                             on_stats_probe, ps, "s", me);
                if (r < 0)
                        return r;
        }

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
        ps->probe = sd_bus_slot_unref(ps->probe);
        while ((l = hashtable_first(&ps->by_bus, &st)))
                peers_drop_direct(ps, container_of(l, Peer, link));
        hashtable_done(&ps->by_bus);
        ps->match = sd_bus_slot_unref(ps->match);
        ps->bus = sd_bus_unref(ps->bus);
}

/* A call on a direct connection: its peer is the connection (it has no
 * sender). Returns 1 when the call may run now, 0 when it must wait in the
 * peer's queue, the peer in *ret either way. */
static int direct_admit(Peers *ps, sd_bus_message *m, Peer **ret) {
        Peer *p = peers_find_direct(ps, sd_bus_message_get_bus(m));

        if (!p)
                return -EPROTO;
        *ret = p;
        if (!call_sends_fds(m) || (p->n_queued == 0 && direct_has_fd_room(ps, p)))
                return 1;
        if (p->n_queued > 0)
                snprintf(ps->why, sizeof ps->why, "%u file descriptors sent on this direct connection are still unread",
                         p->unread_fds);
        /* Looked at again after 10 ms, doubling up to 1 s. */
        peer_retry_later(ps, p);
        return 0;
}

/* Whether a call of p, whose credentials are known, may run now. Calls
 * that hand back fds wait while the peer has too many unread, in order.
 * Others run now (replies need not come in order): held, a Deposit would
 * hold the 16 fds it carries. When it must wait, the bus is asked for the
 * fds that would make room. */
static bool bus_peer_may_run(Peers *ps, Peer *p, sd_bus_message *m) {
        if (!call_sends_fds(m) || (p->n_queued == 0 && peer_has_fd_room(ps, p)))
                return true;
        if (p->n_queued == 0)
                peers_ask_holders(ps);
        else {
                (void) peer_ask_stats(ps, p);
                snprintf(ps->why, sizeof ps->why, "%u file descriptors sent to this connection are still unread",
                         p->unread_fds);
        }
        return false;
}

/* A peer called name, not ready, in no table; NULL when out of memory. */
static Peer *peer_alloc(Peers *ps, const char *name) {
        Peer *p = calloc(1, sizeof *p);

        if (!p)
                return NULL;
        p->peers = ps;
        p->pidfd = -1;
        p->queue_uid = PEER_UID_UNKNOWN;
        p->unique_name = strdup(name);
        if (!p->unique_name) {
                free(p);
                return NULL;
        }
        return p;
}

/* A new peer for sender, in the table, with its credentials asked of the
 * bus (on_credentials makes it ready). */
static int peer_new(Peers *ps, const char *sender, Peer **ret) {
        Peer *p;
        int r;

        p = peer_alloc(ps, sender);
        if (!p)
                return -ENOMEM;
        r = sd_bus_call_method_async(ps->bus, &p->lookup, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionCredentials", on_credentials, p, "s",
                                     sender);
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
        *ret = p;
        return 0;
}

/* A call from the bus: as direct_admit(), for the sender's peer, made
 * (waiting for its credentials) if it is new. */
static int bus_admit(Peers *ps, sd_bus_message *m, Peer **ret) {
        const char *sender = sd_bus_message_get_sender(m);
        Peer *p;

        if (!sender)
                return -EPROTO;
        p = peer_find(ps, sender);
        if (!p)
                return peer_new(ps, sender, ret);
        *ret = p;
        return p->ready && bus_peer_may_run(ps, p, m) ? 1 : 0;
}

/* Charges a call about to wait to the uid of p (all queued calls of a peer
 * are charged to one uid: the queue is empty whenever the peer becomes
 * ready). -EBUSY, ps->why saying why, when the uid holds its share. */
static int peer_charge_queued(Peers *ps, Peer *p) {
        AcctRefusal why;
        char text[256];
        uid_t uid = p->ready ? p->uid : PEER_UID_UNKNOWN;

        if (!ps->acct)
                return 0;
        if (accounting_charge(ps->acct, uid, ACCT_QUEUED_CALLS, 1, &why) < 0) {
                accounting_format_refusal(&why, text, sizeof text);
                snprintf(ps->why, sizeof ps->why, "Cannot queue this call: %s%s.", text,
                         uid == PEER_UID_UNKNOWN ? " (calls from connections the bus has not identified yet)" : "");
                return -EBUSY;
        }
        p->queue_uid = uid;
        return 0;
}

/* Queues m, to be resumed with handler. -EBUSY, ps->why saying why, when
 * p has PEER_QUEUE_MAX calls waiting or its uid its share of them. */
static int peer_queue_call(Peers *ps, Peer *p, sd_bus_message *m, peer_resume_fn handler) {
        int r;

        if (p->n_queued >= PEER_QUEUE_MAX) {
                if (!p->ready)
                        snprintf(ps->why, sizeof ps->why,
                                 "Too many calls from this connection (%u) while its credentials are looked up.",
                                 PEER_QUEUE_MAX);
                else {
                        size_t l = strlen(ps->why);
                        snprintf(ps->why + l, sizeof ps->why - l, "; %u calls of this connection wait already.",
                                 PEER_QUEUE_MAX);
                }
                return -EBUSY;
        }
        r = peer_charge_queued(ps, p);
        if (r < 0)
                return r;
        p->queue[p->n_queued++] = (QueuedCall) { .message = sd_bus_message_ref(m), .handler = handler };
        return 0;
}

int peers_get_caller(Peers *ps, sd_bus_message *m, peer_resume_fn handler, Peer **ret) {
        Peer *p;
        int r;

        if (sd_bus_message_get_bus(m) != ps->bus)
                r = direct_admit(ps, m, &p);
        else
                r = bus_admit(ps, m, &p);
        if (r < 0)
                return r;
        if (r > 0) {
                *ret = p;
                return 1;
        }
        return peer_queue_call(ps, p, m, handler);
}

Identity peer_identity(const Peer *p) {
        return (Identity) { .uid = p->uid, .gids = p->gids, .n_gids = p->n_gids, .label = p->label };
}

bool peers_all_ready(const Peers *ps) {
        size_t st;
        for (HashLink *l = hashtable_first(&ps->by_name, &st); l; l = hashtable_next(&ps->by_name, l, &st))
                if (!container_of(l, Peer, link)->ready || container_of(l, Peer, link)->n_queued > 0)
                        return false;
        return true;
}

Peer *peers_find(Peers *ps, sd_bus_message *m) {
        const char *sender;

        if (sd_bus_message_get_bus(m) != ps->bus)
                return peers_find_direct(ps, sd_bus_message_get_bus(m));
        sender = sd_bus_message_get_sender(m);
        return sender ? peer_find(ps, sender) : NULL;
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

        p = peer_alloc(ps, name);
        if (!p)
                return -ENOMEM;
        p->direct = sd_bus_ref(conn);
        p->direct_pidfd = TAKE_FD(pfd);
        p->uid = uid;
        if (n_gids > 0) {
                p->gids = malloc(n_gids * sizeof *gids);
                if (p->gids) {
                        memcpy(p->gids, gids, n_gids * sizeof *gids);
                        p->n_gids = n_gids;
                }
        }
        p->label = label ? strdup(label) : NULL;
        p->direct_origin = origin ? strdup(origin) : NULL;
        if ((n_gids > 0 && !p->gids) || (label && !p->label) || (origin && !p->direct_origin)) {
                peer_free(p);
                return -ENOMEM;
        }
        /* The same decision engine as a bus peer, from the identity the
         * kernel or the bus pinned (decide.h). */
        Identity id = peer_identity(p);
        r = policy_snapshot_new(ps->policy ? *ps->policy : NULL, &id, &p->snapshot);
        if (r < 0) {
                peer_free(p);
                return r;
        }
        p->ready = true;
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
