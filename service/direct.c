/* direct.c: peer-to-peer connections and the listening socket. See direct.h. */
#include "direct.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "list.h"
#include "log.h"
#include "protocol.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED
#define PEER_GROUPS_MAX 65536u
#define PEER_LABEL_MAX 4096u

struct DirectConnection {
        LIST_FIELDS(DirectConnection, connections); /* on Direct.connections */
        Direct *direct;
        sd_bus *bus;
        sd_bus_slot *disconnected;    /* the local Disconnected signal */
        sd_bus_slot *refuse;          /* refused ones: the filter answering */
        sd_event_source *reaper;      /* frees it outside sd-bus's dispatch */
        sd_event_source *auth_watch;  /* until authenticated: see on_post */
        Peer *peer;                   /* NULL while refused */
        uid_t uid;
        bool charged;                 /* one ACCT_DIRECT_CONNECTIONS of uid */
        char refusal[256];            /* refused ones: why */
};

void direct_init(Direct *d, sd_event *event, Peers *peers, direct_attach_fn attach, void *userdata) {
        *d = (Direct) { .event = sd_event_ref(event), .peers = peers, .attach = attach, .userdata = userdata };
        /* A server's id only shows in the auth handshake: random is fine. */
        if (sd_id128_randomize(&d->server_id) < 0)
                d->server_id = SD_ID128_MAKE(6f,64,62,72,6f,6b,65,72,2d,64,69,72,65,63,74,21);
}

static void connection_free(DirectConnection *c) {
        Direct *d;

        if (!c)
                return;
        d = c->direct;
        LIST_REMOVE(connections, d->connections, c);
        if (c->peer) {
                log_debug("%s (uid %u): direct connection closed", c->peer->unique_name, (unsigned) c->uid);
                /* Ends its connection entries, waits and polkit questions. */
                peers_drop_direct(d->peers, c->peer);
                d->n_connections--;
                if (c->charged && d->peers->acct)
                        accounting_discharge(d->peers->acct, c->uid, ACCT_DIRECT_CONNECTIONS, 1);
        } else
                d->n_refused--;
        sd_event_source_disable_unref(c->reaper);
        sd_event_source_disable_unref(c->auth_watch);
        sd_bus_slot_unref(c->disconnected);
        sd_bus_slot_unref(c->refuse);
        /* No flush: a peer that stopped reading must not block us. */
        sd_bus_close_unref(c->bus);
        free(c);
}

void direct_done(Direct *d) {
        while (d->connections)
                connection_free(d->connections);
        d->listener = sd_event_source_disable_unref(d->listener);
        d->event = sd_event_unref(d->event);
}

static int on_reap(sd_event_source *s, void *userdata) {
        connection_free(userdata);
        return 0;
}

/* Frees c soon, from the event loop: not from inside its own bus's
 * dispatch, which still holds pointers into it. */
static void connection_reap(DirectConnection *c) {
        if (c->reaper)
                return;
        if (sd_event_add_defer(c->direct->event, &c->reaper, on_reap, c) < 0) {
                /* Out of memory: close now, free at exit. */
                sd_bus_close(c->bus);
                return;
        }
        (void) sd_event_source_set_priority(c->reaper, SD_EVENT_PRIORITY_IDLE);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        connection_reap(userdata);
        return 0;
}

static int on_refused_call(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DirectConnection *c = userdata;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;
        /* Peer.Ping is what clients send first on a direct connection, to
         * finish the handshake before any fd goes out (docs/behaviour.md,
         * "Direct connections: the first call"): sd-bus answers it, and the
         * refusal comes with the first call to the broker. */
        if (sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Peer", NULL))
                return 0;
        (void) sd_bus_reply_method_errorf(m, ERROR_QUOTA,
                                          "fdbroker refused this direct connection: %s; close one, or use the "
                                          "system bus.",
                                          c->refusal);
        connection_reap(c);
        return 1;
}

/* sd-bus (252) reads the client's first message together with its BEGIN
 * line, keeps those bytes once authenticated, and waits for the socket to
 * become readable again before parsing them: a client that sends one call
 * and waits would wait forever (1 connection in 100 here). Runs after every
 * loop iteration until the handshake is done, then once processes what
 * came with it. */
static int on_post(sd_event_source *s, void *userdata) {
        DirectConnection *c = userdata;

        if (sd_bus_is_ready(c->bus) <= 0)
                return 0;
        /* At most 64 calls per turn, so others are served too; what is
         * left is taken on the next turn. */
        for (unsigned i = 0; i < 64; i++)
                if (sd_bus_process(c->bus, NULL) <= 0)
                        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

/* Serves fd (consumed) as a D-Bus server connection. */
static int connection_new(Direct *d, int fd, uid_t uid, DirectConnection **ret) {
        _cleanup_close_ int sfd = fd;
        DirectConnection *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->direct = d;
        c->uid = uid;
        r = sd_bus_new(&c->bus);
        if (r < 0)
                goto fail;
        r = sd_bus_set_fd(c->bus, sfd, sfd);
        if (r < 0)
                goto fail;
        TAKE_FD(sfd); /* the bus closes it from now on */
        r = sd_bus_set_server(c->bus, 1, d->server_id);
        if (r >= 0)
                /* Identity never comes from the handshake: a socket pair's
                 * SO_PEERCRED names the broker, so EXTERNAL fails for any
                 * other uid; ANONYMOUS lets those clients in. */
                r = sd_bus_set_anonymous(c->bus, 1);
        if (r >= 0)
                r = sd_bus_negotiate_fds(c->bus, 1);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, &c->disconnected, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_event_add_post(d->event, &c->auth_watch, on_post, c);
        if (r < 0)
                goto fail;

        LIST_PREPEND(connections, d->connections, c);
        d->n_refused++; /* until it gets its peer */
        *ret = c;
        return 0;

fail:
        sd_event_source_disable_unref(c->auth_watch);
        sd_bus_slot_unref(c->disconnected);
        sd_bus_close_unref(c->bus);
        free(c);
        return r;
}

/* Gives c its peer and the broker's object. */
static int connection_serve(DirectConnection *c, uid_t uid, const gid_t *gids, size_t n_gids, const char *label,
                            int pidfd, const char *origin) {
        Direct *d = c->direct;
        char name[64];
        int r;

        snprintf(name, sizeof name, "direct:%llu", ++d->next_id);
        if (d->peers->acct) {
                r = accounting_charge_force(d->peers->acct, uid, ACCT_DIRECT_CONNECTIONS, 1);
                if (r < 0) {
                        safe_close(pidfd);
                        return r;
                }
        }
        r = peers_add_direct(d->peers, c->bus, name, uid, gids, n_gids, label, pidfd, origin, &c->peer);
        if (r < 0) {
                if (d->peers->acct)
                        accounting_discharge(d->peers->acct, uid, ACCT_DIRECT_CONNECTIONS, 1);
                return r;
        }
        c->charged = d->peers->acct != NULL;
        d->n_refused--;
        d->n_connections++;
        return d->attach(c->bus, d->userdata);
}

unsigned direct_count_uid(const Direct *d, uid_t uid) {
        unsigned n = 0;
        LIST_FOREACH(connections, c, d->connections)
                n += c->peer && c->uid == uid;
        return n;
}

/* Whether uid may have one more connection; d->refusal says why not. */
static int check_quota(Direct *d, uid_t uid) {
        AcctRefusal why;

        if (d->peers->acct) {
                if (accounting_check(d->peers->acct, uid, ACCT_DIRECT_CONNECTIONS, 1, 0, &why) < 0) {
                        accounting_format_refusal(&why, d->refusal, sizeof d->refusal);
                        return -EDQUOT;
                }
                return 0;
        }
        if (direct_count_uid(d, uid) >= FDB_DIRECT_CONNECTIONS_PER_UID_MAX) {
                snprintf(d->refusal, sizeof d->refusal, "uid %u already holds %u direct connections", (unsigned) uid,
                         FDB_DIRECT_CONNECTIONS_PER_UID_MAX);
                return -EDQUOT;
        }
        if (d->n_connections >= DIRECT_CONNECTIONS_MAX) {
                snprintf(d->refusal, sizeof d->refusal, "fdbroker serves %u direct connections, its limit",
                         DIRECT_CONNECTIONS_MAX);
                return -EUSERS;
        }
        return 0;
}

int direct_open_pair(Direct *d, const Peer *caller, int *ret_fd) {
        _cleanup_close_ int ours = -1, theirs = -1, pidfd = -1;
        DirectConnection *c;
        int pair[2], r;

        r = check_quota(d, caller->uid);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;
        ours = pair[0];
        theirs = pair[1];
        /* The client's end blocks, as a connect()ed socket would. */
        if (fcntl(theirs, F_SETFL, fcntl(theirs, F_GETFL) & ~O_NONBLOCK) < 0)
                return -errno;

        /* Opened over a direct socket connection: the new one is the same
         * process's, and polkit is asked about it the same way. */
        if (caller->direct && caller->direct_pidfd >= 0) {
                pidfd = fcntl(caller->direct_pidfd, F_DUPFD_CLOEXEC, 3);
                if (pidfd < 0)
                        return -errno;
        }
        r = connection_new(d, TAKE_FD(ours), caller->uid, &c);
        if (r < 0)
                return r;
        r = connection_serve(c, caller->uid, caller->gids, caller->n_gids, caller->label, TAKE_FD(pidfd),
                             caller->direct ? caller->direct_origin : caller->unique_name);
        if (r < 0) {
                connection_free(c);
                return r;
        }
        log_info("%s (uid %u) opened direct connection %s", caller->unique_name, (unsigned) caller->uid,
                 c->peer->unique_name);
        *ret_fd = TAKE_FD(theirs);
        return 0;
}

/* getsockopt() of a variable-sized option into a buffer grown as needed;
 * *ret gets malloc()ed memory and its size. */
static int getsockopt_alloc(int fd, int opt, size_t initial, size_t max, void **ret, socklen_t *ret_len) {
        size_t size = initial;

        for (;;) {
                _cleanup_free_ void *buf = malloc(size);
                socklen_t len = (socklen_t) size;

                if (!buf)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, opt, buf, &len) >= 0) {
                        *ret = TAKE_PTR(buf);
                        *ret_len = len;
                        return 0;
                }
                if (errno != ERANGE || len <= size || len > max)
                        return -errno;
                size = len;
        }
}

/* SO_PEERSEC as a string, or NULL when there is no LSM with labels (as on the
 * bus) or the label is empty. Fails only when out of memory. */
static int peer_read_label(int cfd, char **ret) {
        _cleanup_free_ void *label = NULL;
        socklen_t label_len = 0;
        char *l;

        if (getsockopt_alloc(cfd, SO_PEERSEC, 256, PEER_LABEL_MAX, &label, &label_len) < 0) {
                /* No LSM with labels: no label, as on the bus. */
                *ret = NULL;
                return 0;
        }
        /* The label may or may not carry its NUL: make it a string. */
        l = realloc(label, (size_t) label_len + 1);
        if (!l)
                return -ENOMEM;
        label = NULL;
        l[label_len] = '\0';
        if (label_len == 0)
                l = (free(l), NULL);
        *ret = l;
        return 0;
}

/* SO_PEERPIDFD made O_CLOEXEC, or -1 on an older kernel: polkit cannot be
 * asked on this connection then. */
static int peer_read_pidfd(int cfd, int *ret) {
        _cleanup_close_ int pidfd = -1;
        socklen_t len = sizeof(int);

        if (getsockopt(cfd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
                pidfd = -1;
        else if (pidfd >= 0 && fcntl(pidfd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        *ret = TAKE_FD(pidfd);
        return 0;
}

/* Who is at the other end of cfd: what the kernel pinned at connect(), never
 * /proc. A failure means the connection is dropped; the ones worth a line
 * are logged here. Outputs are set only on success. */
static int peer_read_credentials(int cfd, struct ucred *ret_uc, void **ret_groups, socklen_t *ret_groups_len,
                                 char **ret_label, int *ret_pidfd) {
        _cleanup_free_ void *groups = NULL;
        _cleanup_free_ char *label = NULL;
        socklen_t groups_len = 0, len;
        struct ucred uc;
        int r;

        len = sizeof uc;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof uc) {
                log_warning("direct connection without peer credentials: %s", strerror(errno));
                return -EPERM;
        }
        r = getsockopt_alloc(cfd, SO_PEERGROUPS, 64 * sizeof(gid_t), PEER_GROUPS_MAX * sizeof(gid_t), &groups,
                             &groups_len);
        if (r < 0 && r != -ENOPROTOOPT) {
                log_warning("direct connection of uid %u: no supplementary groups (%s); refused", (unsigned) uc.uid,
                            strerror(-r));
                return r;
        }
        r = peer_read_label(cfd, &label);
        if (r < 0)
                return r;
        r = peer_read_pidfd(cfd, ret_pidfd);
        if (r < 0)
                return r;
        *ret_uc = uc;
        *ret_groups = TAKE_PTR(groups);
        *ret_groups_len = groups_len;
        *ret_label = TAKE_PTR(label);
        return 0;
}

/* Over quota on a connection already made: answered once with
 * QuotaExceeded, then closed. */
static void connection_refuse(Direct *d, DirectConnection *c, uid_t uid) {
        int r;

        snprintf(c->refusal, sizeof c->refusal, "%s", d->refusal);
        r = sd_bus_add_filter(c->bus, &c->refuse, on_refused_call, c);
        if (r < 0)
                connection_reap(c);
        log_info("uid %u: direct connection refused: it holds %u already", (unsigned) uid, direct_count_uid(d, uid));
}

/* Admission of an accepted connection: closed at once while too many refused
 * ones are pending, refused over quota, served otherwise. Takes cfd and
 * pidfd. */
static void connection_admit(Direct *d, int cfd_in, const struct ucred *uc, const gid_t *groups, size_t n_groups,
                             const char *label, int pidfd_in) {
        _cleanup_close_ int cfd = cfd_in, pidfd = pidfd_in;
        DirectConnection *c;
        int r;

        r = check_quota(d, uc->uid);
        if (r < 0 && d->n_refused >= DIRECT_REFUSED_MAX) {
                log_info("uid %u: direct connection closed at once: over quota", (unsigned) uc->uid);
                return;
        }
        r = connection_new(d, TAKE_FD(cfd), uc->uid, &c);
        if (r < 0) {
                log_warning("could not serve a direct connection of uid %u: %s", (unsigned) uc->uid, strerror(-r));
                return;
        }
        if (check_quota(d, uc->uid) < 0) {
                connection_refuse(d, c, uc->uid);
                return;
        }
        r = connection_serve(c, uc->uid, groups, n_groups, label, TAKE_FD(pidfd), NULL);
        if (r < 0) {
                log_warning("could not serve a direct connection of uid %u: %s", (unsigned) uc->uid, strerror(-r));
                connection_free(c);
                return;
        }
        log_debug("%s: uid %u (pid %d) connected to the direct socket", c->peer->unique_name, (unsigned) uc->uid,
                  (int) uc->pid);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Direct *d = userdata;
        _cleanup_close_ int cfd = -1, pidfd = -1;
        _cleanup_free_ void *groups = NULL;
        _cleanup_free_ char *label = NULL;
        socklen_t groups_len = 0;
        struct ucred uc;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning("could not accept a direct connection: %s", strerror(errno));
                return 0;
        }
        if (peer_read_credentials(cfd, &uc, &groups, &groups_len, &label, &pidfd) < 0)
                return 0;
        connection_admit(d, TAKE_FD(cfd), &uc, groups, groups_len / sizeof(gid_t), label, TAKE_FD(pidfd));
        return 0;
}

int direct_listen(Direct *d, int fd) {
        _cleanup_close_ int lfd = fd;
        int r;

        if (fcntl(lfd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;
        r = sd_event_add_io(d->event, &d->listener, lfd, EPOLLIN, on_accept, d);
        if (r < 0)
                return r;
        r = sd_event_source_set_io_fd_own(d->listener, true);
        if (r < 0) {
                d->listener = sd_event_source_disable_unref(d->listener);
                return r;
        }
        TAKE_FD(lfd);
        return 0;
}

int direct_parse_options(sd_bus_message *m, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown option '%s'; OpenConnection takes no options.", key);
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* The direct socket fdbroker.socket passes (FileDescriptorName=direct), or
 * -1. The fds of the fd store are left to persist.c, which skips this one. */
static int take_activated_socket(void) {
        char **names = NULL;
        int n, fd = -1;

        n = sd_listen_fds_with_names(false, &names);
        for (int i = 0; i < n; i++)
                if (names && names[i] && strcmp(names[i], "direct") == 0 &&
                    sd_is_socket_unix(SD_LISTEN_FDS_START + i, SOCK_STREAM, 1, NULL, 0) > 0)
                        fd = SD_LISTEN_FDS_START + i;
        strv_freep(&names);
        return fd;
}

/* Binds a listening socket at path, mode 0666: who may connect is decided
 * per call by policy, as on the bus. A stale socket there is replaced. */
static int make_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        if (chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int direct_serve_socket(Direct *d, const char *path) {
        const char *where = "the socket passed by systemd";
        int fd = take_activated_socket(), r;

        if (fd < 0 && path) {
                fd = make_socket(path);
                if (fd < 0)
                        return log_error("could not listen on %s: %s", path, strerror(-fd)), fd;
                where = path;
        }
        if (fd < 0)
                return 0;
        r = direct_listen(d, fd);
        if (r < 0)
                return log_error("could not serve direct connections: %s", strerror(-r)), r;
        log_info("serving direct connections on %s", where);
        return 0;
}
