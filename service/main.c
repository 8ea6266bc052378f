/* main.c: the fdbroker daemon: options, bus connection, event loop.
 *
 * Thin on purpose: everything it runs lives in libfdbroker-service, which
 * the tests link too. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "cleanup.h"
#include "config.h"
#include "lifecycle.h"
#include "log.h"
#include "policy.h"
#include "protocol.h"

#define BUS_NAME FDB_BUS_NAME
#define POLICY_DIRS_MAX 16

/* In priority order: the first masks same-named files of the later ones. */
static char *arg_policy_dirs[POLICY_DIRS_MAX + 1] = { (char *) FDBROKER_ADMIN_POLICY_DIR,
                                                      (char *) FDBROKER_VENDOR_POLICY_DIR };
static bool arg_policy_dirs_given;
static const char *arg_runtime_dir;
static uint64_t arg_exit_idle_usec;
static bool arg_exit_idle_with_entries;
static const char *arg_direct_socket;

static void help(void) {
        printf("Usage: fdbroker [OPTIONS]\n\n"
               "Broker Unix file descriptors between processes over D-Bus (%s).\n\n"
               "  --bus=system|session|ADDRESS  the bus to serve (default: system)\n"
               "  --policy-dir=DIR              read rules from DIR instead of %s and %s\n"
               "                                (repeatable, highest priority first)\n"
               "  --check-policy                validate the policy files and exit\n"
               "  --runtime-dir=DIR             keep the state of persistent entries in DIR\n"
               "                                (default: $RUNTIME_DIRECTORY)\n"
               "  --exit-idle-time=SEC          exit after SEC seconds with no entries and no\n"
               "                                calls (bus activation starts us again)\n"
               "  --exit-idle-with-entries      ...even with entries, when all are persistent\n"
               "                                and in an fd store the manager preserves\n"
               "  --direct-socket=PATH          also serve direct connections on a socket at PATH\n"
               "                                (under systemd: fdbroker.socket passes one)\n"
               "  --verbose                     log every call, not just changes\n"
               "  -h, --help                    show this help\n"
               "  --version                     show the version\n",
               BUS_NAME, FDBROKER_ADMIN_POLICY_DIR, FDBROKER_VENDOR_POLICY_DIR);
}

static void raise_nofile_limit(void) {
        struct rlimit rl;

        /* Every stored entry is an open fd: take all the kernel allows us. */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("could not raise RLIMIT_NOFILE to %llu: %s", (unsigned long long) rl.rlim_max,
                            strerror(errno));
}

static int bus_open(const char *which, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (strcmp(which, "system") == 0)
                return sd_bus_open_system(ret);
        if (strcmp(which, "session") == 0)
                return sd_bus_open_user(ret);

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, which);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Says why the bus named by --bus could not be reached, in terms of what
 * sd-bus looked at, and what to do about it. */
static void log_bus_failure(const char *which, int r) {
        const char *addr, *runtime;
        bool session = strcmp(which, "session") == 0;

        if (!session && strcmp(which, "system") != 0) {
                log_error("could not connect to the bus at '%s': %s; check the address (e.g. "
                          "unix:path=/run/dbus/system_bus_socket)",
                          which, strerror(-r));
                return;
        }
        addr = getenv(session ? "DBUS_SESSION_BUS_ADDRESS" : "DBUS_SYSTEM_BUS_ADDRESS");
        if (addr && *addr) {
                log_error("could not connect to the %s bus at $%s (%s): %s; use --bus=ADDRESS for another bus",
                          which, session ? "DBUS_SESSION_BUS_ADDRESS" : "DBUS_SYSTEM_BUS_ADDRESS", addr,
                          strerror(-r));
                return;
        }
        if (!session) {
                log_error("no system bus: $DBUS_SYSTEM_BUS_ADDRESS is unset and /run/dbus/system_bus_socket %s (%s); "
                          "start dbus, or use --bus=ADDRESS",
                          r == -ENOENT ? "does not exist" : "does not answer", strerror(-r));
                return;
        }
        runtime = getenv("XDG_RUNTIME_DIR");
        if (!runtime || !*runtime)
                log_error("no session bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR are unset; "
                          "use --bus=ADDRESS");
        else
                log_error("no session bus: $DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus (%s/bus) %s "
                          "(%s); use --bus=ADDRESS",
                          runtime, r == -ENOENT ? "does not exist" : "does not answer", strerror(-r));
}

/* The direct socket fdbroker.socket passes (FileDescriptorName=direct), or
 * -1. The fds of the fd store are left to persist.c, which skips this one. */
static int take_activated_direct_socket(void) {
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
static int make_direct_socket(const char *path) {
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

/* Serves direct connections on the socket systemd passed, else on one made
 * at --direct-socket, else not at all. Errors are logged. */
static int serve_direct(Broker *broker) {
        int fd = take_activated_direct_socket(), r;
        const char *where = "the socket passed by systemd";

        if (fd < 0 && arg_direct_socket) {
                fd = make_direct_socket(arg_direct_socket);
                if (fd < 0)
                        return log_error("could not listen on %s: %s", arg_direct_socket, strerror(-fd)), fd;
                where = arg_direct_socket;
        }
        if (fd < 0)
                return 0;
        r = broker_listen_direct(broker, fd);
        if (r < 0)
                return log_error("could not serve direct connections: %s", strerror(-r)), r;
        log_info("serving direct connections on %s", where);
        return 0;
}

/* Loads the policy; problems are printed, one "FILE:LINE: message" each,
 * bare for --check-policy and as log lines for the daemon. */
static int load_policy(Policy **ret, bool bare) {
        char **problems = NULL;
        int r = policy_load(arg_policy_dirs, ret, &problems);
        if (r == -EINVAL) {
                for (char **p = problems; p && *p; p++)
                        if (bare)
                                fprintf(stderr, "%s\n", *p);
                        else
                                log_error("%s", *p);
                policy_problems_free(problems);
        } else if (r < 0)
                log_error("could not read the policy: %s", strerror(-r));
        return r;
}

/* How many of the files read came from dir. */
static size_t files_from(const Policy *p, const char *dir) {
        size_t n = 0, len = strlen(dir);

        for (char **f = p->files; f && *f; f++)
                if (strncmp(*f, dir, len) == 0 && (*f)[len] == '/' && !strchr(*f + len + 1, '/'))
                        n++;
        return n;
}

/* --check-policy: says which directories were read (and which did not
 * exist), then the rules and files, or the problems. A directory named with
 * --policy-dir must exist: a typo there would otherwise check nothing and
 * say OK. The default directories need not exist. */
static int check_policy(void) {
        _cleanup_(policy_freep) Policy *p = NULL;
        bool missing[POLICY_DIRS_MAX];
        size_t n_files = 0;
        int r;

        for (size_t i = 0; arg_policy_dirs[i]; i++) {
                struct stat st;

                missing[i] = stat(arg_policy_dirs[i], &st) < 0;
                if (missing[i] && errno != ENOENT) {
                        fprintf(stderr, "fdbroker: cannot read policy directory %s: %s\n", arg_policy_dirs[i],
                                strerror(errno));
                        return -errno;
                }
                if (!missing[i] && !S_ISDIR(st.st_mode)) {
                        fprintf(stderr, "fdbroker: --policy-dir=%s is not a directory.\n", arg_policy_dirs[i]);
                        return -ENOTDIR;
                }
                if (missing[i] && arg_policy_dirs_given) {
                        fprintf(stderr, "fdbroker: FAIL: --policy-dir=%s does not exist; check the path.\n",
                                arg_policy_dirs[i]);
                        return -ENOENT;
                }
        }

        r = load_policy(&p, true);
        if (r < 0)
                return r;
        for (char **f = p->files; f && *f; f++)
                n_files++;

        printf("Policy directories, highest priority first:\n");
        for (size_t i = 0; arg_policy_dirs[i]; i++)
                if (missing[i])
                        printf("  %s: does not exist (nothing to read there)\n", arg_policy_dirs[i]);
                else
                        printf("  %s: %zu file(s) read\n", arg_policy_dirs[i], files_from(p, arg_policy_dirs[i]));
        if (n_files == 0)
                printf("%zu rule(s): no *.conf files in these directories: OK\n", p->n_rules);
        else
                printf("%zu rule(s) in %zu file(s): OK\n", p->n_rules, n_files);
        for (char **f = p->files; f && *f; f++)
                printf("  %s\n", *f);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Broker *broker = userdata;
        Policy *p = NULL;

        log_info("received SIGHUP, reloading the policy");
        if (load_policy(&p, false) < 0) {
                log_error("the new policy is broken; keeping the old one");
                return 0;
        }
        log_info("policy reloaded: %zu rule(s)", p->n_rules);
        broker_set_policy(broker, p);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("received %s, exiting", strsignal((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int run(const char *bus_arg) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(broker_freep) Broker *broker = NULL;
        _cleanup_(lifecycle_freep) Lifecycle *lifecycle = NULL; /* before broker: it borrows it */
        Policy *policy = NULL;
        sigset_t mask;
        int r;

        raise_nofile_limit();

        /* A directory named on the command line that is not there is most
         * likely a typo: say so (the default directories need not exist). */
        for (size_t i = 0; arg_policy_dirs_given && arg_policy_dirs[i]; i++)
                if (access(arg_policy_dirs[i], F_OK) < 0)
                        log_warning("policy directory %s does not exist: no rules from it", arg_policy_dirs[i]);

        /* A broken policy is not served with: refuse to start. */
        r = load_policy(&policy, false);
        if (r < 0) {
                log_error("refusing to start with a broken policy; check it with --check-policy");
                return r;
        }

        r = sd_event_default(&event);
        if (r < 0)
                return log_error("could not create the event loop: %s", strerror(-r)), r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);

        r = bus_open(bus_arg, &bus);
        if (r < 0)
                return log_bus_failure(bus_arg, r), r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* Without the bus nobody can reach the entries: exit (failing, so
         * systemd restarts us with the fd store) rather than hold them. */
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return r;

        r = broker_new(event, bus, &broker);
        if (r < 0) {
                policy_free(policy);
                return log_error("could not set up the broker object: %s", strerror(-r)), r;
        }
        broker_set_policy(broker, policy);
        (void) sd_event_add_signal(event, NULL, SIGHUP, on_sighup, broker);

        /* Before broker_restore(), which takes every other passed fd. */
        r = serve_direct(broker);
        if (r < 0)
                return r;

        /* Entries come back before the name is owned: no call can see a
         * half-restored broker. */
        if (!arg_runtime_dir)
                arg_runtime_dir = getenv("RUNTIME_DIRECTORY");
        r = broker_restore(broker, arg_runtime_dir);
        if (r < 0)
                return log_error("could not restore persistent entries: %s", strerror(-r)), r;
        if (r > 0)
                log_info("restored %d persistent entries", r);

        r = lifecycle_new(event, bus, broker,
                          &(LifecycleOptions) { .exit_idle_usec = arg_exit_idle_usec,
                                                .exit_idle_with_entries = arg_exit_idle_with_entries,
                                                .notify = getenv("NOTIFY_SOCKET") != NULL },
                          &lifecycle);
        if (r < 0)
                return log_error("could not set up idle exit and status: %s", strerror(-r)), r;
        (void) sd_event_set_watchdog(event, true);

        r = sd_bus_request_name(bus, BUS_NAME, 0);
        if (r < 0)
                return log_error("could not own %s: %s", BUS_NAME, strerror(-r)), r;

        log_info("serving %s %s on the %s bus", BUS_NAME, FDBROKER_VERSION, bus_arg);
        (void) sd_notify(false, "READY=1");

        r = sd_event_loop(event);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}

int main(int argc, char *argv[]) {
        enum { ARG_BUS = 0x100, ARG_VERSION, ARG_VERBOSE, ARG_POLICY_DIR, ARG_CHECK_POLICY, ARG_RUNTIME_DIR,
               ARG_EXIT_IDLE, ARG_EXIT_IDLE_WITH_ENTRIES, ARG_DIRECT_SOCKET };
        static const struct option options[] = {
                { "bus", required_argument, NULL, ARG_BUS },
                { "verbose", no_argument, NULL, ARG_VERBOSE },
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "check-policy", no_argument, NULL, ARG_CHECK_POLICY },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "exit-idle-time", required_argument, NULL, ARG_EXIT_IDLE },
                { "exit-idle-with-entries", no_argument, NULL, ARG_EXIT_IDLE_WITH_ENTRIES },
                { "direct-socket", required_argument, NULL, ARG_DIRECT_SOCKET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *bus_arg = "system";
        bool arg_check = false;
        size_t n_dirs = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("fdbroker %s\n", FDBROKER_VERSION);
                        return EXIT_SUCCESS;
                case ARG_BUS:
                        bus_arg = optarg;
                        break;
                case ARG_VERBOSE:
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case ARG_POLICY_DIR:
                        if (!arg_policy_dirs_given) {
                                arg_policy_dirs_given = true;
                                arg_policy_dirs[0] = arg_policy_dirs[1] = NULL;
                        }
                        if (n_dirs >= POLICY_DIRS_MAX) {
                                fprintf(stderr, "fdbroker: at most %d --policy-dir options.\n", POLICY_DIRS_MAX);
                                return EXIT_FAILURE;
                        }
                        arg_policy_dirs[n_dirs++] = optarg;
                        break;
                case ARG_CHECK_POLICY:
                        arg_check = true;
                        break;
                case ARG_RUNTIME_DIR:
                        arg_runtime_dir = optarg;
                        break;
                case ARG_DIRECT_SOCKET:
                        if (optarg[0] != '/') {
                                fprintf(stderr, "fdbroker: --direct-socket takes an absolute path, not '%s'.\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        arg_direct_socket = optarg;
                        break;
                case ARG_EXIT_IDLE: {
                        char *end;
                        double sec = strtod(optarg, &end);
                        if (*end != '\0' || !(sec >= 0) || sec > 86400 * 365) {
                                fprintf(stderr, "fdbroker: --exit-idle-time takes seconds, not '%s'.\n", optarg);
                                return EXIT_FAILURE;
                        }
                        arg_exit_idle_usec = (uint64_t) (sec * 1e6);
                        break;
                }
                case ARG_EXIT_IDLE_WITH_ENTRIES:
                        arg_exit_idle_with_entries = true;
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                fprintf(stderr, "fdbroker: unexpected argument '%s'; see --help.\n", argv[optind]);
                return EXIT_FAILURE;
        }

        if (arg_check)
                return check_policy() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = run(bus_arg); /* negative errno, or the event loop's exit code */
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
