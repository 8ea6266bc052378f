/* bench-client.c: the load generator of the benchmarks (bench/run.sh).
 *
 * Each subcommand measures one thing and prints one JSON object per result
 * on stdout; bench/run.py turns them into the table. A latency is taken per
 * call with CLOCK_MONOTONIC around a blocking sd_bus_call(), so it is a round
 * trip as a client sees it: client -> dbus-daemon -> service -> dbus-daemon
 * -> client. Operations named together are interleaved in one loop (in a
 * rotating order), so that the noise of a shared machine hits them alike and
 * their ratio means something.
 *
 *   bench-client latency    --address A [-n N] OP...
 *   bench-client entries    --address A --address2 B --counts C,C,... [-n N]
 *   bench-client throughput --address A --clients 1,2,8,32 [--seconds S] [--rounds R] OP...
 *   bench-client activation --address A [-n N]
 *   bench-client spawn      [-n N] LABEL CMD... [:: LABEL CMD...]...
 *   bench-client soak       --address A --ops N --user-index I --users U,U,... [--seed S] [--max-seconds T]
 *   bench-client exec-retrieve --address A NAME CMD...  (a minimal `fdbrokerctl retrieve`)
 *   bench-client status     --address A          (the broker's pid, open fds, VmRSS)
 *   bench-client clear      --address A          (removes every entry; run as root)
 *
 * Latency OPs: socketpair (raw SCM_RIGHTS round trip, no bus), echo and
 * echo-ping (fd-echo's Echo and Peer.Ping), ping (fdbroker's Peer.Ping),
 * retrieve (1-byte memfd), retrieve-1g (1 GiB memfd), retrieve-many (16),
 * deposit-remove, connect-echo and connect-retrieve (a new connection for
 * each call, as a short-lived client makes), echo-retrieve (fd-echo's
 * Retrieve-shaped floor: sa{sv} -> ha{sv}), direct-retrieve (Retrieve over
 * a direct connection from OpenConnection) and socket-retrieve (over the
 * listening socket, --direct-socket PATH). Throughput OPs: retrieve, echo,
 * echo-retrieve, direct-retrieve, socket-retrieve (each client opens its
 * own direct connection). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define BROKER "org.fdbroker.Broker1"
#define BROKER_PATH "/org/fdbroker/Broker1"
#define BROKER_IFACE "org.fdbroker.Broker1"
#define ECHO "org.fdbroker.Bench.FdEcho"
#define ECHO_PATH "/org/fdbroker/Bench/FdEcho"
#define PEER_IFACE "org.freedesktop.DBus.Peer"
#define MANY 16
#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

extern char **environ;

static const char *arg_address;
static const char *arg_address2;
static unsigned arg_n = 20000;
static unsigned arg_warmup = 500;
static double arg_seconds = 1.0;
static unsigned arg_rounds = 5;
static char *arg_clients = (char *) "1,2,8,32";
static char *arg_counts = (char *) "100,1000,10000";
static unsigned long arg_ops = 250000;
static unsigned arg_user_index;
static char *arg_users;
static unsigned arg_seed = 1;
static double arg_max_seconds = 600;
static const char *arg_direct_socket;

#define _cleanup_(f) __attribute__((cleanup(f)))

static _Noreturn void die(const char *what, int r) {
        fprintf(stderr, "bench-client: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(EXIT_FAILURE);
}

static _Noreturn void die_bus(const char *what, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e))
                fprintf(stderr, "bench-client: %s: %s: %s\n", what, e->name, e->message);
        else
                fprintf(stderr, "bench-client: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(EXIT_FAILURE);
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- statistics -------------------------------------------------------- */

typedef struct Samples {
        uint64_t *v;
        size_t n, cap;
} Samples;

static void samples_add(Samples *s, uint64_t ns) {
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 1024;
                s->v = realloc(s->v, s->cap * sizeof *s->v);
                if (!s->v)
                        die("realloc", ENOMEM);
        }
        s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Prints "median_ns":…,"p99_ns":… (sorts s). */
static void print_stats(const Samples *s) {
        double sum = 0;

        qsort(s->v, s->n, sizeof *s->v, cmp_u64);
        for (size_t i = 0; i < s->n; i++)
                sum += (double) s->v[i];
        printf("\"n\":%zu,\"median_ns\":%" PRIu64 ",\"p90_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64
               ",\"min_ns\":%" PRIu64 ",\"mean_ns\":%.0f",
               s->n, s->n ? s->v[s->n / 2] : 0, s->n ? s->v[s->n * 90 / 100] : 0,
               s->n ? s->v[s->n * 99 / 100] : 0, s->n ? s->v[0] : 0, s->n ? sum / (double) s->n : 0.0);
}

/* ---- bus helpers ------------------------------------------------------- */

static sd_bus *bus_connect(const char *address) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("connecting to the bus", r);
        return bus;
}

static int memfd_of_size(uint64_t size, bool allocate) {
        int fd = memfd_create("fdbroker-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                die("memfd_create", errno);
        if (ftruncate(fd, (off_t) size) < 0)
                die("ftruncate", errno);
        /* Real pages, not a sparse file: the broker must not care either way. */
        if (allocate && fallocate(fd, 0, 0, (off_t) size) < 0)
                die("fallocate", errno);
        return fd;
}

/* Calls method on the broker; returns the reply (or NULL and *error). */
static int call(sd_bus *bus, const char *dest, const char *path, const char *iface, const char *member,
                sd_bus_error *error, sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, dest, path, iface, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, m, 0, error, reply);
}

/* RetrieveMany(names, {}): "as" in sd_bus_message_append() wants a count
 * and the strings, not a strv. */
static int call_retrieve_many(sd_bus *bus, char **names, sd_bus_error *error, sd_bus_message **reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BROKER, BROKER_PATH, BROKER_IFACE, "RetrieveMany");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, names);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, reply);
}

static void deposit_many(sd_bus *bus, const char *prefix, unsigned from, unsigned to, int fd, bool persistent) {
        char name[128];

        for (unsigned i = from; i < to; i += MANY) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                r = sd_bus_message_new_method_call(bus, &m, BROKER, BROKER_PATH, BROKER_IFACE, "DepositMany");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sh}");
                for (unsigned j = i; r >= 0 && j < to && j < i + MANY; j++) {
                        snprintf(name, sizeof name, "%s%u", prefix, j);
                        r = sd_bus_message_append(m, "{sh}", name, fd);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = persistent ? sd_bus_message_append(m, "a{sv}", 1, "lifetime", "s", "persistent")
                                       : sd_bus_message_append(m, "a{sv}", 0);
                if (r >= 0)
                        r = sd_bus_call(bus, m, 0, &error, &reply);
                if (r < 0)
                        die_bus("DepositMany", &error, r);
        }
}

static void deposit(sd_bus *bus, const char *name, int fd) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit", &error, NULL, "sha{sv}", name, fd, 0);
        if (r < 0)
                die_bus(name, &error, r);
}

static uint32_t broker_pid(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t pid;
        int r;

        r = call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                 "GetConnectionUnixProcessID", &error, &reply, "s", BROKER);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                die_bus("GetConnectionUnixProcessID", &error, r);
        return pid;
}

static long proc_status_kb(uint32_t pid, const char *field) {
        char path[64], line[256];
        size_t len = strlen(field);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%u/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, field, len) == 0 && line[len] == ':') {
                        v = strtol(line + len + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static long proc_fd_count(uint32_t pid) {
        char path[64];
        struct dirent *de;
        long n = 0;
        DIR *d;

        snprintf(path, sizeof path, "/proc/%u/fd", pid);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* ---- the raw floor: SCM_RIGHTS over a socketpair ------------------------ */

static int send_fd(int sock, int fd) {
        char byte = 'x';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } u = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Returns the received fd (owned by the caller), or negative. */
static int recv_fd(int sock) {
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } u;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        struct cmsghdr *c;
        ssize_t n;
        int fd;

        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0)
                return n == 0 ? -EPIPE : -errno;
        c = CMSG_FIRSTHDR(&mh);
        if (!c || c->cmsg_type != SCM_RIGHTS)
                return -EBADMSG;
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
}

/* A child that sends back every fd it gets, as a service would. */
static int start_fd_echo_child(pid_t *ret_pid) {
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair", errno);
        pid = fork();
        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                close(sv[0]);
                for (;;) {
                        int fd = recv_fd(sv[1]);
                        if (fd < 0)
                                _exit(0);
                        if (send_fd(sv[1], fd) < 0)
                                _exit(1);
                        close(fd);
                }
        }
        close(sv[1]);
        *ret_pid = pid;
        return sv[0];
}

/* ---- latency ----------------------------------------------------------- */

typedef enum Op {
        OP_SOCKETPAIR,
        OP_ECHO,
        OP_ECHO_PING,
        OP_PING,
        OP_RETRIEVE,
        OP_RETRIEVE_1G,
        OP_RETRIEVE_MANY,
        OP_DEPOSIT_REMOVE,
        OP_CONNECT_ECHO,
        OP_CONNECT_RETRIEVE,
        OP_ECHO_RETRIEVE,
        OP_DIRECT_RETRIEVE,
        OP_SOCKET_RETRIEVE,
        _OP_MAX,
} Op;

static const char *const op_names[_OP_MAX] = {
        [OP_SOCKETPAIR] = "socketpair",         [OP_ECHO] = "echo",
        [OP_ECHO_PING] = "echo-ping",           [OP_PING] = "ping",
        [OP_RETRIEVE] = "retrieve",             [OP_RETRIEVE_1G] = "retrieve-1g",
        [OP_RETRIEVE_MANY] = "retrieve-many",   [OP_DEPOSIT_REMOVE] = "deposit-remove",
        [OP_CONNECT_ECHO] = "connect-echo",     [OP_CONNECT_RETRIEVE] = "connect-retrieve",
        [OP_ECHO_RETRIEVE] = "echo-retrieve",   [OP_DIRECT_RETRIEVE] = "direct-retrieve",
        [OP_SOCKET_RETRIEVE] = "socket-retrieve",
};

static Op op_from_string(const char *s) {
        for (int i = 0; i < _OP_MAX; i++)
                if (strcmp(s, op_names[i]) == 0)
                        return (Op) i;
        fprintf(stderr, "bench-client: unknown operation '%s'.\n", s);
        exit(EXIT_FAILURE);
}

typedef struct Ctx {
        sd_bus *bus;
        sd_bus *direct;          /* from OpenConnection */
        sd_bus *sock_bus;        /* to the listening socket */
        int small_fd;            /* 1-byte memfd */
        int sock;                /* socketpair to the echo child */
        pid_t echo_child;
        char small_name[64], big_name[64], dr_name[64];
        char many_prefix[64];
        char *many[MANY + 1];
} Ctx;

/* A peer-to-peer client connection (no bus, no Hello) on fd (consumed). */
static sd_bus *direct_connect_fd(int fd) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0)
                r = sd_bus_set_anonymous(bus, true); /* the pair's SO_PEERCRED is the broker's */
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("a direct connection", r);
        return bus;
}

static sd_bus *open_direct(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t deadline = now_ns() + UINT64_C(10000000000);
        int fd, r;

        /* The previous round's clients have exited, but the broker may not
         * have seen all their connections close yet (16 per uid). */
        for (;;) {
                r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "OpenConnection", &error, &reply, "a{sv}", 0);
                if (r >= 0 || !sd_bus_error_has_name(&error, "org.fdbroker.Error.QuotaExceeded") ||
                    now_ns() > deadline)
                        break;
                sd_bus_error_free(&error);
                usleep(10000);
        }
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        if (r >= 0 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
                r = -errno;
        if (r < 0)
                die_bus("OpenConnection", &error, r);
        return direct_connect_fd(fd);
}

static sd_bus *socket_connect(const char *path) {
        char address[4200];
        sd_bus *bus = NULL;
        int r;

        if (!path)
                die("socket-retrieve needs --direct-socket PATH", EINVAL);
        snprintf(address, sizeof address, "unix:path=%s", path);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                die("connecting to the direct socket", r);
        return bus;
}

/* dest NULL: a direct connection, where there are no names. */
static void retrieve_on(sd_bus *bus, const char *dest, const char *path, const char *iface, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int fd, r;

        r = call(bus, dest, path, iface, "Retrieve", &error, &reply, "sa{sv}", name, 0);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd); /* closed with the reply */
        if (r < 0)
                die_bus(name, &error, r);
}

static void retrieve_one(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int fd, r;

        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}", name, 0);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd); /* closed with the reply */
        if (r < 0)
                die_bus(name, &error, r);
}

static void run_op(Ctx *c, Op op) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int fd, r = 0;

        switch (op) {
        case OP_SOCKETPAIR:
                r = send_fd(c->sock, c->small_fd);
                if (r >= 0)
                        r = recv_fd(c->sock);
                if (r >= 0)
                        close(r);
                break;
        case OP_ECHO:
                r = call(c->bus, ECHO, ECHO_PATH, ECHO, "Echo", &error, &reply, "h", c->small_fd);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "h", &fd);
                break;
        case OP_ECHO_PING:
                r = call(c->bus, ECHO, ECHO_PATH, PEER_IFACE, "Ping", &error, &reply, NULL);
                break;
        case OP_PING:
                r = call(c->bus, BROKER, BROKER_PATH, PEER_IFACE, "Ping", &error, &reply, NULL);
                break;
        case OP_RETRIEVE:
                retrieve_one(c->bus, c->small_name);
                break;
        case OP_RETRIEVE_1G:
                retrieve_one(c->bus, c->big_name);
                break;
        case OP_ECHO_RETRIEVE:
                retrieve_on(c->bus, ECHO, ECHO_PATH, ECHO, c->small_name);
                break;
        case OP_DIRECT_RETRIEVE:
                retrieve_on(c->direct, NULL, BROKER_PATH, BROKER_IFACE, c->small_name);
                break;
        case OP_SOCKET_RETRIEVE:
                retrieve_on(c->sock_bus, NULL, BROKER_PATH, BROKER_IFACE, c->small_name);
                break;
        case OP_RETRIEVE_MANY:
                r = call_retrieve_many(c->bus, c->many, &error, &reply);
                break;
        case OP_DEPOSIT_REMOVE:
                r = call(c->bus, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit", &error, NULL, "sha{sv}",
                         c->dr_name, c->small_fd, 0);
                if (r >= 0)
                        r = call(c->bus, BROKER, BROKER_PATH, BROKER_IFACE, "Remove", &error, NULL, "s",
                                 c->dr_name);
                break;
        case OP_CONNECT_ECHO:
        case OP_CONNECT_RETRIEVE: {
                /* A new client each time: connect, Hello, one call, close.
                 * The broker also asks the bus who the new caller is. */
                sd_bus *bus = bus_connect(arg_address);
                if (op == OP_CONNECT_ECHO) {
                        r = call(bus, ECHO, ECHO_PATH, ECHO, "Echo", &error, &reply, "h", c->small_fd);
                        if (r >= 0)
                                r = sd_bus_message_read(reply, "h", &fd);
                } else
                        retrieve_one(bus, c->small_name);
                reply = sd_bus_message_unref(reply);
                sd_bus_flush_close_unref(bus);
                break;
        }
        default:
                abort();
        }
        if (r < 0)
                die_bus(op_names[op], &error, r);
}

static void setup_op(Ctx *c, Op op) {
        pid_t me = getpid();

        switch (op) {
        case OP_SOCKETPAIR:
                if (c->sock < 0)
                        c->sock = start_fd_echo_child(&c->echo_child);
                break;
        case OP_RETRIEVE:
        case OP_CONNECT_RETRIEVE:
        case OP_ECHO_RETRIEVE:
        case OP_DIRECT_RETRIEVE:
        case OP_SOCKET_RETRIEVE:
                if (op == OP_DIRECT_RETRIEVE && !c->direct)
                        c->direct = open_direct(c->bus);
                if (op == OP_SOCKET_RETRIEVE && !c->sock_bus)
                        c->sock_bus = socket_connect(arg_direct_socket);
                if (c->small_name[0])
                        break;
                snprintf(c->small_name, sizeof c->small_name, "bench/%d/small", (int) me);
                deposit(c->bus, c->small_name, c->small_fd);
                break;
        case OP_RETRIEVE_1G: {
                int big = memfd_of_size(UINT64_C(1) << 30, true);
                snprintf(c->big_name, sizeof c->big_name, "bench/%d/big", (int) me);
                deposit(c->bus, c->big_name, big);
                close(big); /* the broker holds it now */
                break;
        }
        case OP_RETRIEVE_MANY:
                snprintf(c->many_prefix, sizeof c->many_prefix, "bench/%d/many/", (int) me);
                deposit_many(c->bus, c->many_prefix, 0, MANY, c->small_fd, false);
                for (unsigned i = 0; i < MANY; i++) {
                        if (asprintf(&c->many[i], "%s%u", c->many_prefix, i) < 0)
                                die("asprintf", ENOMEM);
                }
                break;
        case OP_DEPOSIT_REMOVE:
                snprintf(c->dr_name, sizeof c->dr_name, "bench/%d/deposit-remove", (int) me);
                break;
        default:
                break;
        }
}

static int cmd_latency(char **ops_s, int n_ops) {
        Ctx c = { .sock = -1 };
        Op ops[_OP_MAX];
        Samples s[_OP_MAX] = {};
        bool need_bus = false;

        if (n_ops <= 0 || n_ops > _OP_MAX)
                die("latency: name 1 to 10 operations", EINVAL);
        for (int i = 0; i < n_ops; i++) {
                ops[i] = op_from_string(ops_s[i]);
                need_bus = need_bus || ops[i] != OP_SOCKETPAIR;
        }
        c.small_fd = memfd_of_size(1, true);
        if (need_bus)
                c.bus = bus_connect(arg_address);
        for (int i = 0; i < n_ops; i++)
                setup_op(&c, ops[i]);

        /* Round k runs the operations starting at k % n_ops: each gets every
         * position in the order equally often. */
        for (unsigned k = 0; k < arg_warmup + arg_n; k++)
                for (int j = 0; j < n_ops; j++) {
                        int i = (int) ((k + (unsigned) j) % (unsigned) n_ops);
                        uint64_t t0 = now_ns();
                        run_op(&c, ops[i]);
                        uint64_t t1 = now_ns();
                        if (k >= arg_warmup)
                                samples_add(&s[i], t1 - t0);
                }

        for (int i = 0; i < n_ops; i++) {
                printf("{\"bench\":\"latency\",\"op\":\"%s\",", op_names[ops[i]]);
                print_stats(&s[i]);
                printf("}\n");
        }
        if (c.sock >= 0) {
                close(c.sock);
                waitpid(c.echo_child, NULL, 0);
        }
        sd_bus_flush_close_unref(c.direct);
        sd_bus_flush_close_unref(c.sock_bus);
        sd_bus_flush_close_unref(c.bus);
        return 0;
}

/* ---- entry count ------------------------------------------------------- */

static int cmd_entries(void) {
        const unsigned base = 10;
        sd_bus *a, *b;
        unsigned counts[16], n_counts = 0, have = base;
        char name[128], prefix[64];
        uint32_t pid_b;
        long rss0, fds0;
        int fd;

        for (char *s = arg_counts; s && *s && n_counts < 16;) {
                counts[n_counts++] = (unsigned) strtoul(s, &s, 10);
                if (*s == ',')
                        s++;
        }
        if (!arg_address2)
                die("entries: --address2 is required", EINVAL);

        a = bus_connect(arg_address);
        b = bus_connect(arg_address2);
        fd = memfd_of_size(1, true);
        snprintf(prefix, sizeof prefix, "bench/%d/e/", (int) getpid());
        deposit_many(a, prefix, 0, base, fd, false);
        deposit_many(b, prefix, 0, base, fd, false);
        pid_b = broker_pid(b);

        srand(arg_seed);
        /* The first stage has base entries on both buses: the ratio it
         * shows is the noise floor of the comparison itself. */
        for (unsigned stage = 0; stage <= n_counts; stage++) {
                unsigned want = stage == 0 ? base : counts[stage - 1];
                Samples sa = {}, sb = {};
                uint64_t t0 = now_ns();

                if (want > have) {
                        deposit_many(b, prefix, have, want, fd, false);
                        have = want;
                }
                uint64_t fill_ns = now_ns() - t0;
                if (stage == 0) {
                        /* Warm both brokers before the RSS baseline. */
                        for (unsigned k = 0; k < arg_warmup; k++) {
                                snprintf(name, sizeof name, "%s%u", prefix, (unsigned) rand() % base);
                                retrieve_one(b, name);
                        }
                        rss0 = proc_status_kb(pid_b, "VmRSS");
                        fds0 = proc_fd_count(pid_b);
                }
                for (unsigned k = 0; k < arg_warmup + arg_n; k++)
                        for (int j = 0; j < 2; j++) {
                                bool large = ((k + (unsigned) j) & 1) != 0;
                                unsigned i = (unsigned) rand() % (large ? have : base);
                                snprintf(name, sizeof name, "%s%u", prefix, i);
                                uint64_t s0 = now_ns();
                                retrieve_one(large ? b : a, name);
                                uint64_t s1 = now_ns();
                                if (k >= arg_warmup)
                                        samples_add(large ? &sb : &sa, s1 - s0);
                        }
                long rss = proc_status_kb(pid_b, "VmRSS");
                printf("{\"bench\":\"entries\",\"count\":%u,\"base_count\":%u,\"fill_ms\":%.1f,"
                       "\"rss_kb\":%ld,\"rss0_kb\":%ld,\"fds\":%ld,\"fds0\":%ld,\"base\":{",
                       have, base, (double) fill_ns / 1e6, rss, rss0, proc_fd_count(pid_b), fds0);
                print_stats(&sa);
                printf("},\"large\":{");
                print_stats(&sb);
                printf("}}\n");
                fflush(stdout);
                free(sa.v);
                free(sb.v);
        }
        /* Crossover: the twin buses are not quite alike (where the
         * scheduler puts their processes, what they ran before), so the
         * largest count is measured again with the roles swapped: A holds
         * the entries, B the base ones. The geometric mean of the two
         * ratios cancels the buses' own difference. */
        if (have > base) {
                Samples sa = {}, sb = {};
                uint32_t pid_a = broker_pid(a);
                long rss_a0 = proc_status_kb(pid_a, "VmRSS");
                uint64_t deadline;

                deposit_many(a, prefix, base, have, fd, false);
                long rss_a1 = proc_status_kb(pid_a, "VmRSS");
                /* B's entries go with the connection that made them. */
                sd_bus_flush_close_unref(b);
                b = bus_connect(arg_address2);
                deadline = now_ns() + UINT64_C(60000000000);
                for (;;) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        uint32_t count = 0;
                        int r = sd_bus_get_property_trivial(b, BROKER, BROKER_PATH, BROKER_IFACE, "EntryCount",
                                                            &error, 'u', &count);
                        if (r < 0)
                                die_bus("EntryCount", &error, r);
                        if (count == 0)
                                break;
                        if (now_ns() > deadline)
                                die("the twin broker kept its entries", ETIMEDOUT);
                        usleep(10000);
                }
                deposit_many(b, prefix, 0, base, fd, false);
                for (unsigned k = 0; k < arg_warmup + arg_n; k++)
                        for (int j = 0; j < 2; j++) {
                                bool large_a = ((k + (unsigned) j) & 1) != 0;
                                unsigned i = (unsigned) rand() % (large_a ? have : base);
                                snprintf(name, sizeof name, "%s%u", prefix, i);
                                uint64_t s0 = now_ns();
                                retrieve_one(large_a ? a : b, name);
                                uint64_t s1 = now_ns();
                                if (k >= arg_warmup)
                                        samples_add(large_a ? &sa : &sb, s1 - s0);
                        }
                printf("{\"bench\":\"entries-crossover\",\"count\":%u,\"base_count\":%u,\"rss_kb\":%ld,"
                       "\"rss0_kb\":%ld,\"base\":{",
                       have, base, rss_a1, rss_a0);
                print_stats(&sb);
                printf("},\"large\":{");
                print_stats(&sa);
                printf("}}\n");
                free(sa.v);
                free(sb.v);
        }

        close(fd);
        sd_bus_flush_close_unref(a);
        sd_bus_flush_close_unref(b);
        return 0;
}

/* ---- throughput -------------------------------------------------------- */

/* One client process: connect, warm up (the broker learns who we are),
 * say ready, wait for the start time, call in a closed loop until the end,
 * report the count. */
static _Noreturn void throughput_child(Op op, unsigned index, const char *name, int small_fd, int ready_w,
                                       int go_r, int result_w) {
        sd_bus *bus;
        Ctx c = { .small_fd = small_fd, .sock = -1 };
        uint64_t times[2], n = 0;

        /* A uid holds at most 16 direct connections: clients 17 and up of a
         * direct run are nobody (the entry allows everyone). */
        if ((op == OP_DIRECT_RETRIEVE || op == OP_SOCKET_RETRIEVE) && index >= 16 &&
            (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
                die("dropping to nobody for client 17+", errno);
        c.bus = bus = bus_connect(arg_address);

        snprintf(c.small_name, sizeof c.small_name, "%s", name);
        if (op == OP_DIRECT_RETRIEVE)
                c.direct = open_direct(bus);
        if (op == OP_SOCKET_RETRIEVE)
                c.sock_bus = socket_connect(arg_direct_socket);
        run_op(&c, op);
        if (write(ready_w, "r", 1) != 1)
                _exit(1);
        if (read(go_r, times, sizeof times) != sizeof times)
                _exit(1);
        while (now_ns() < times[0])
                ;
        while (now_ns() < times[1]) {
                run_op(&c, op);
                n++;
        }
        if (write(result_w, &n, sizeof n) != sizeof n)
                _exit(1);
        _exit(0);
}

static double throughput_round(Op op, const char *name, int small_fd, unsigned clients) {
        int ready[2], go[2], result[2];
        pid_t pids[256];
        uint64_t total = 0, times[2];
        char byte;

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(result, O_CLOEXEC) < 0)
                die("pipe", errno);
        fflush(stdout);
        for (unsigned i = 0; i < clients; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        die("fork", errno);
                if (pids[i] == 0)
                        throughput_child(op, i, name, small_fd, ready[1], go[0], result[1]);
        }
        /* Only the clients write: a client that dies is EOF, not a hang. */
        close(ready[1]);
        close(result[1]);
        ready[1] = result[1] = -1;
        for (unsigned i = 0; i < clients; i++)
                if (read(ready[0], &byte, 1) != 1) {
                        for (unsigned j = 0; j < clients; j++)
                                kill(pids[j], SIGKILL);
                        die("a client died before the start", EPIPE);
                }
        times[0] = now_ns() + 20000000; /* 20 ms for everyone to wake up */
        times[1] = times[0] + (uint64_t) (arg_seconds * 1e9);
        for (unsigned i = 0; i < clients; i++)
                if (write(go[1], times, sizeof times) != sizeof times)
                        die("write", errno);
        for (unsigned i = 0; i < clients; i++) {
                uint64_t n;
                if (read(result[0], &n, sizeof n) != sizeof n)
                        die("a client died during the run", EPIPE);
                total += n;
        }
        for (unsigned i = 0; i < clients; i++)
                waitpid(pids[i], NULL, 0);
        close(ready[0]), close(go[0]), close(go[1]), close(result[0]);
        return (double) total / arg_seconds;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int cmd_throughput(char **ops_s, int n_ops) {
        unsigned clients[16], n_clients = 0;
        Op ops[4];
        char name[64];
        sd_bus *bus;
        int fd;

        for (char *s = arg_clients; s && *s && n_clients < 16;) {
                clients[n_clients++] = (unsigned) strtoul(s, &s, 10);
                if (*s == ',')
                        s++;
        }
        if (n_ops <= 0 || n_ops > 4)
                die("throughput: name 1 to 4 operations", EINVAL);
        for (int i = 0; i < n_ops; i++)
                ops[i] = op_from_string(ops_s[i]);

        fd = memfd_of_size(1, true);
        bus = bus_connect(arg_address);
        snprintf(name, sizeof name, "bench/%d/throughput", (int) getpid());
        { /* lives as long as this connection; everyone: see throughput_child */
                sd_bus_error error = SD_BUS_ERROR_NULL;
                int r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit", &error, NULL, "sha{sv}", name, fd,
                             1, "allow", "as", 1, "everyone");
                if (r < 0)
                        die_bus(name, &error, r);
        }

        for (unsigned ci = 0; ci < n_clients; ci++) {
                double *v[4];
                for (int i = 0; i < n_ops; i++)
                        v[i] = calloc(arg_rounds, sizeof(double));
                /* Rounds alternate which operation goes first. */
                for (unsigned r = 0; r < arg_rounds; r++)
                        for (int j = 0; j < n_ops; j++) {
                                int i = (int) ((r + (unsigned) j) % (unsigned) n_ops);
                                v[i][r] = throughput_round(ops[i], name, fd, clients[ci]);
                        }
                for (int i = 0; i < n_ops; i++) {
                        printf("{\"bench\":\"throughput\",\"op\":\"%s\",\"clients\":%u,\"seconds\":%.2f,\"rounds\":[",
                               op_names[ops[i]], clients[ci], arg_seconds);
                        for (unsigned r = 0; r < arg_rounds; r++)
                                printf("%s%.0f", r ? "," : "", v[i][r]);
                        qsort(v[i], arg_rounds, sizeof(double), cmp_double);
                        printf("],\"median_ops\":%.0f}\n", v[i][arg_rounds / 2]);
                        free(v[i]);
                }
                fflush(stdout);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* ---- cold activation --------------------------------------------------- */

static bool name_has_owner(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int has = 0, r;

        r = call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                 &error, &reply, "s", name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &has);
        if (r < 0)
                die_bus("NameHasOwner", &error, r);
        return has;
}

/* True while pid runs: it exists and is not a zombie (dbus-daemon reaps
 * its children when it gets round to it, and a pid can be reused). */
static bool pid_running(uint32_t pid) {
        char path[64], buf[512], *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%u/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void stop_broker(sd_bus *bus) {
        uint32_t pid = broker_pid(bus);
        uint64_t deadline = now_ns() + UINT64_C(10000000000);

        if (kill((pid_t) pid, SIGTERM) < 0)
                die("kill", errno);
        /* Wait until it has exited and the name is free. */
        while (pid_running(pid) || name_has_owner(bus, BROKER)) {
                if (now_ns() > deadline)
                        die("the broker did not stop", ETIMEDOUT);
                usleep(1000);
        }
}

static int cmd_activation(void) {
        sd_bus *bus = bus_connect(arg_address);
        Samples s = {};

        if (name_has_owner(bus, BROKER))
                stop_broker(bus);
        for (unsigned k = 0; k < arg_n; k++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_ns();
                /* The first real call: a Retrieve the broker answers itself
                 * (NotFound), after activation and the credentials lookup. */
                int r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}",
                             "bench/activation/none", 0);
                uint64_t t1 = now_ns();
                if (r >= 0 || !sd_bus_error_has_name(&error, "org.fdbroker.Error.NotFound"))
                        die_bus("activation: expected NotFound", &error, r);
                sd_bus_error_free(&error);
                samples_add(&s, t1 - t0);
                stop_broker(bus);
        }
        printf("{\"bench\":\"activation\",");
        print_stats(&s);
        printf("}\n");
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* ---- whole processes --------------------------------------------------- */

static int cmd_spawn(int argc, char **argv) {
        char **cmds[8];
        const char *labels[8];
        Samples s[8] = {};
        int n = 0;
        posix_spawn_file_actions_t fa;

        /* LABEL CMD... [:: LABEL CMD...]... */
        for (int i = 0, start = 0; i <= argc; i++)
                if (i == argc || strcmp(argv[i], "::") == 0) {
                        if (i - start < 2 || n >= 8)
                                die("spawn: LABEL CMD... [:: LABEL CMD...] (up to 8)", EINVAL);
                        labels[n] = argv[start];
                        cmds[n++] = argv + start + 1;
                        if (i < argc)
                                argv[i] = NULL;
                        start = i + 1;
                }

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        for (unsigned k = 0; k < arg_warmup + arg_n; k++)
                for (int j = 0; j < n; j++) {
                        int i = (int) ((k + (unsigned) j) % (unsigned) n);
                        pid_t pid;
                        int status, r;
                        uint64_t t0 = now_ns();
                        r = posix_spawnp(&pid, cmds[i][0], &fa, NULL, cmds[i], environ);
                        if (r != 0)
                                die(cmds[i][0], r);
                        if (waitpid(pid, &status, 0) < 0)
                                die("waitpid", errno);
                        uint64_t t1 = now_ns();
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                                fprintf(stderr, "bench-client: '%s' failed (status 0x%x)\n", labels[i], status);
                                exit(EXIT_FAILURE);
                        }
                        if (k >= arg_warmup)
                                samples_add(&s[i], t1 - t0);
                }
        for (int i = 0; i < n; i++) {
                printf("{\"bench\":\"spawn\",\"op\":\"%s\",", labels[i]);
                print_stats(&s[i]);
                printf("}\n");
        }
        return 0;
}

/* ---- a minimal client -------------------------------------------------- */

/* What `fdbrokerctl retrieve NAME -- COMMAND` does, with sd-bus and nothing
 * else: connect, Retrieve, put the fd at 3 with LISTEN_FDS=1, exec. It shows
 * what a whole-process retrieval costs without GLib (bench/README.md). */
static int cmd_exec_retrieve(int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char pid[32];
        sd_bus *bus;
        int fd, r;

        if (argc < 2)
                die("exec-retrieve: NAME COMMAND...", EINVAL);
        bus = bus_connect(arg_address);
        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}", argv[0], 0);
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                die_bus(argv[0], &error, r);
        if (dup2(fd, 3) < 0) /* dup2 clears O_CLOEXEC on 3 */
                die("dup2", errno);
        snprintf(pid, sizeof pid, "%d", (int) getpid());
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDNAMES", argv[0], 1);
        execvp(argv[1], argv + 1);
        die(argv[1], errno);
}

/* ---- status and clear -------------------------------------------------- */

static int cmd_status(void) {
        sd_bus *bus = bus_connect(arg_address);
        uint32_t pid = broker_pid(bus);
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t entries = 0;
        int r;

        r = sd_bus_get_property_trivial(bus, BROKER, BROKER_PATH, BROKER_IFACE, "EntryCount", &error, 'u',
                                        &entries);
        if (r < 0)
                die_bus("EntryCount", &error, r);
        printf("{\"pid\":%u,\"fds\":%ld,\"rss_kb\":%ld,\"entries\":%u}\n", pid, proc_fd_count(pid),
               proc_status_kb(pid, "VmRSS"), entries);
        sd_bus_flush_close_unref(bus);
        return 0;
}

static int cmd_clear(void) {
        sd_bus *bus = bus_connect(arg_address);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name;
        unsigned n = 0;
        char **names = NULL;
        size_t n_names = 0;
        int r;

        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "List", &error, &reply, "a{sv}", 0);
        if (r < 0)
                die_bus("List", &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "(sa{sv})");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sa{sv}")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_skip(reply, "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                names = realloc(names, (n_names + 1) * sizeof *names);
                names[n_names++] = strdup(name);
        }
        if (r < 0)
                die("reading List", r);
        for (size_t i = 0; i < n_names; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                /* Entries can expire or go with their connection meanwhile. */
                if (call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Remove", &e, NULL, "s", names[i]) >= 0)
                        n++;
                sd_bus_error_free(&e);
                free(names[i]);
        }
        free(names);
        printf("{\"removed\":%u,\"listed\":%zu}\n", n, n_names);
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* ---- soak -------------------------------------------------------------- */

/* Outcomes by D-Bus error name ("ok" for success). */
typedef struct Tally {
        char names[32][80];
        unsigned long counts[32];
        unsigned n;
} Tally;

static void tally(Tally *t, int r, const sd_bus_error *e) {
        char buf[80];
        const char *key = buf;

        if (r >= 0)
                key = "ok";
        else if (e && sd_bus_error_is_set(e))
                key = e->name;
        else
                snprintf(buf, sizeof buf, "errno:%s", strerror(-r));
        for (unsigned i = 0; i < t->n; i++)
                if (strcmp(t->names[i], key) == 0) {
                        t->counts[i]++;
                        return;
                }
        if (t->n < 32) {
                snprintf(t->names[t->n], sizeof t->names[0], "%s", key);
                t->counts[t->n++] = 1;
        }
}

static unsigned rnd(unsigned n) {
        return (unsigned) rand() % n;
}

static int soak_deposit(sd_bus *bus, const char *name, int fd, sd_bus_error *error, char **users, unsigned n_users) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        unsigned pick = rnd(100);
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit");
        if (r >= 0)
                r = sd_bus_message_append(m, "sh", name, fd);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && pick < 30)
                r = sd_bus_message_append(m, "{sv}", "allow", "as", 1, "everyone");
        else if (r >= 0 && pick < 40) {
                char subject[64];
                snprintf(subject, sizeof subject, "user:%s", users[rnd(n_users)]);
                r = sd_bus_message_append(m, "{sv}", "allow", "as", 1, subject);
        }
        if (r >= 0 && rnd(10) == 0)
                r = sd_bus_message_append(m, "{sv}", "once", "b", 1);
        if (r >= 0 && rnd(20) == 0)
                r = sd_bus_message_append(m, "{sv}", "timeout-usec", "t", (uint64_t) (1000 + rnd(50000)));
        if (r >= 0 && rnd(20) == 0)
                r = sd_bus_message_append(m, "{sv}", "lifetime", "s", "persistent");
        if (r >= 0 && rnd(5) == 0)
                r = sd_bus_message_append(m, "{sv}", "replace", "b", 1);
        if (r >= 0 && rnd(10) == 0)
                r = sd_bus_message_append(m, "{sv}", "access", "s", "read-only");
        if (r >= 0 && rnd(10) == 0)
                r = sd_bus_message_append(m, "{sv}", "description", "s", "soak test entry");
        if (r >= 0 && rnd(50) == 0)
                r = sd_bus_message_append(m, "{sv}", "seal", "b", 1); /* Busy or fine: memfd */
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, NULL);
}

static int cmd_soak(void) {
        char *users[8];
        unsigned n_users = 0;
        sd_bus *bus;
        Tally t = {};
        int mfd, pipefd[2], opathfd;
        char name[128], other[128];
        uint64_t t0 = now_ns(), deadline;
        unsigned long done = 0;

        for (char *s = arg_users ? strdup(arg_users) : NULL, *tok; s && (tok = strsep(&s, ","));)
                if (*tok && n_users < 8)
                        users[n_users++] = tok;
        if (n_users == 0)
                die("soak: --users is required", EINVAL);
        srand(arg_seed * 7919u + arg_user_index);
        deadline = t0 + (uint64_t) (arg_max_seconds * 1e9);

        bus = bus_connect(arg_address);
        mfd = memfd_of_size(4096, false);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                die("pipe2", errno);
        opathfd = open("/", O_PATH | O_CLOEXEC);

        for (done = 0; done < arg_ops && now_ns() < deadline; done++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                unsigned op = rnd(1000);
                int r;

                snprintf(name, sizeof name, "soak/u%u/%u", arg_user_index, rnd(400));
                snprintf(other, sizeof other, "soak/u%u/%u", rnd(n_users), rnd(400));

                if (op < 250) /* deposit: Exists and QuotaExceeded come up */
                        r = soak_deposit(bus, name, rnd(4) == 0 ? pipefd[0] : mfd, &error, users, n_users);
                else if (op < 450) /* retrieve own */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}",
                                 name, rnd(4) == 0 ? 1 : 0, "reopen", "b", 1);
                else if (op < 550) /* someone else's: allowed, or NotFound */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}",
                                 other, rnd(4) == 0 ? 1 : 0, "access", "s", "read-only");
                else if (op < 570) /* waits that time out, or get served */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply, "sa{sv}",
                                 other, 1, "wait-usec", "t", (uint64_t) (500 + rnd(3000)));
                else if (op < 720) /* remove own, or another's */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Remove", &error, NULL, "s",
                                 rnd(5) == 0 ? other : name);
                else if (op < 770) { /* all or nothing */
                        char *names[MANY + 1] = {};
                        unsigned k = 1 + rnd(MANY);
                        for (unsigned i = 0; i < k; i++)
                                if (asprintf(&names[i], "soak/u%u/%u", arg_user_index, i * 25 + rnd(25)) < 0)
                                        die("asprintf", ENOMEM);
                        r = call_retrieve_many(bus, names, &error, &reply);
                        for (unsigned i = 0; i < k; i++)
                                free(names[i]);
                } else if (op < 820) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        unsigned k = 1 + rnd(MANY), base = rnd(400);
                        r = sd_bus_message_new_method_call(bus, &m, BROKER, BROKER_PATH, BROKER_IFACE,
                                                           "DepositMany");
                        if (r >= 0)
                                r = sd_bus_message_open_container(m, 'a', "{sh}");
                        for (unsigned i = 0; r >= 0 && i < k; i++) {
                                snprintf(name, sizeof name, "soak/u%u/%u", arg_user_index, (base + i) % 400);
                                r = sd_bus_message_append(m, "{sh}", name, mfd);
                        }
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                        if (r >= 0)
                                r = sd_bus_message_append(m, "a{sv}", 1, "allow", "as", 1, "everyone");
                        if (r >= 0)
                                r = sd_bus_call(bus, m, 0, &error, NULL);
                } else if (op < 840) {
                        char prefix[64];
                        snprintf(prefix, sizeof prefix, "soak/u%u/", rnd(n_users));
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "List", &error, &reply, "a{sv}", 1,
                                 "prefix", "s", prefix);
                } else if (op < 870) /* size 0 is InvalidArgs */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "CreateMemory", &error, &reply, "sta{sv}",
                                 name, (uint64_t) (rnd(10) == 0 ? 0 : 4096), 0);
                else if (op < 900) { /* bad names and options */
                        static const char *const bad[] = { "", "/x", "x/", "a//b", "a/../b", "sp ace", "." };
                        if (rnd(2))
                                r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply,
                                         "sa{sv}", bad[rnd(ELEMENTS(bad))], 0);
                        else
                                r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Retrieve", &error, &reply,
                                         "sa{sv}", name, 1, rnd(2) ? "no-such-option" : "wait-usec", "s", "x");
                } else if (op < 920) /* O_PATH: NotSupported */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit", &error, NULL, "sha{sv}", name,
                                 opathfd, 0);
                else if (op < 940) /* seal on a pipe: NotSupported */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "Deposit", &error, NULL, "sha{sv}", name,
                                 pipefd[1], 1, "seal", "b", 1);
                else if (op < 960) /* OpenPath: no rule, no polkit on this bus */
                        r = call(bus, BROKER, BROKER_PATH, BROKER_IFACE, "OpenPath", &error, &reply, "sa{sv}",
                                 "/etc/hostname", 0);
                else if (op < 998)
                        r = call(bus, BROKER, BROKER_PATH, PEER_IFACE, "Ping", &error, NULL, NULL);
                else {
                        /* Go away and come back: the connection's entries go. */
                        sd_bus_flush_close_unref(bus);
                        bus = bus_connect(arg_address);
                        r = 0;
                }
                tally(&t, r, &error);
                sd_bus_error_free(&error);
        }

        printf("{\"bench\":\"soak\",\"user_index\":%u,\"ops\":%lu,\"seconds\":%.1f,\"outcomes\":{", arg_user_index,
               done, (double) (now_ns() - t0) / 1e9);
        for (unsigned i = 0; i < t.n; i++)
                printf("%s\"%s\":%lu", i ? "," : "", t.names[i], t.counts[i]);
        printf("}}\n");
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* ---- main -------------------------------------------------------------- */

static void help(void) {
        printf("Usage: bench-client COMMAND [OPTIONS] [ARGS]\n"
               "Load generator of bench/run.sh; see the top of bench/bench-client.c.\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_ADDRESS = 0x100, ARG_ADDRESS2, ARG_WARMUP, ARG_SECONDS, ARG_ROUNDS, ARG_CLIENTS, ARG_COUNTS,
               ARG_OPS, ARG_USER_INDEX, ARG_USERS, ARG_SEED, ARG_MAX_SECONDS, ARG_DIRECT_SOCKET };
        static const struct option options[] = {
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "address2", required_argument, NULL, ARG_ADDRESS2 },
                { "warmup", required_argument, NULL, ARG_WARMUP },
                { "seconds", required_argument, NULL, ARG_SECONDS },
                { "rounds", required_argument, NULL, ARG_ROUNDS },
                { "clients", required_argument, NULL, ARG_CLIENTS },
                { "counts", required_argument, NULL, ARG_COUNTS },
                { "ops", required_argument, NULL, ARG_OPS },
                { "user-index", required_argument, NULL, ARG_USER_INDEX },
                { "users", required_argument, NULL, ARG_USERS },
                { "seed", required_argument, NULL, ARG_SEED },
                { "max-seconds", required_argument, NULL, ARG_MAX_SECONDS },
                { "direct-socket", required_argument, NULL, ARG_DIRECT_SOCKET },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *cmd;
        int c;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                help();
                return argc < 2 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        cmd = argv[1];
        argv++, argc--;
        /* The commands of spawn and exec-retrieve carry options of their own. */
        while ((c = getopt_long(argc, argv,
                                strcmp(cmd, "spawn") == 0 || strcmp(cmd, "exec-retrieve") == 0 ? "+hn:" : "hn:",
                                options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        arg_n = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_ADDRESS:
                        arg_address = optarg;
                        break;
                case ARG_ADDRESS2:
                        arg_address2 = optarg;
                        break;
                case ARG_WARMUP:
                        arg_warmup = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_SECONDS:
                        arg_seconds = strtod(optarg, NULL);
                        break;
                case ARG_ROUNDS:
                        arg_rounds = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_CLIENTS:
                        arg_clients = optarg;
                        break;
                case ARG_COUNTS:
                        arg_counts = optarg;
                        break;
                case ARG_OPS:
                        arg_ops = strtoul(optarg, NULL, 10);
                        break;
                case ARG_USER_INDEX:
                        arg_user_index = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_USERS:
                        arg_users = optarg;
                        break;
                case ARG_SEED:
                        arg_seed = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_MAX_SECONDS:
                        arg_max_seconds = strtod(optarg, NULL);
                        break;
                case ARG_DIRECT_SOCKET:
                        arg_direct_socket = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (arg_rounds == 0 || arg_n == 0)
                die("-n and --rounds must be at least 1", EINVAL);
        if (strcmp(cmd, "spawn") != 0 && !arg_address)
                die("--address is required", EINVAL);

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(cmd, "latency") == 0)
                return cmd_latency(argv + optind, argc - optind);
        if (strcmp(cmd, "entries") == 0)
                return cmd_entries();
        if (strcmp(cmd, "throughput") == 0)
                return cmd_throughput(argv + optind, argc - optind);
        if (strcmp(cmd, "activation") == 0)
                return cmd_activation();
        if (strcmp(cmd, "spawn") == 0)
                return cmd_spawn(argc - optind, argv + optind);
        if (strcmp(cmd, "soak") == 0)
                return cmd_soak();
        if (strcmp(cmd, "exec-retrieve") == 0)
                return cmd_exec_retrieve(argc - optind, argv + optind);
        if (strcmp(cmd, "status") == 0)
                return cmd_status();
        if (strcmp(cmd, "clear") == 0)
                return cmd_clear();
        fprintf(stderr, "bench-client: unknown command '%s'; see --help.\n", cmd);
        return EXIT_FAILURE;
}
