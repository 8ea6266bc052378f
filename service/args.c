/* args.c: the daemon's command line (args.h). */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "protocol.h"

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
               FDB_BUS_NAME, FDBROKER_ADMIN_POLICY_DIR, FDBROKER_VENDOR_POLICY_DIR);
}

static int parse_policy_dir(Args *a, size_t *n_dirs, char *dir) {
        if (!a->policy_dirs_given) {
                a->policy_dirs_given = true;
                a->policy_dirs[0] = a->policy_dirs[1] = NULL;
        }
        if (*n_dirs >= POLICY_DIRS_MAX) {
                fprintf(stderr, "fdbroker: at most %d --policy-dir options.\n", POLICY_DIRS_MAX);
                return -E2BIG;
        }
        a->policy_dirs[(*n_dirs)++] = dir;
        return 0;
}

static int parse_exit_idle_time(const char *s, uint64_t *ret) {
        char *end;
        double sec = strtod(s, &end);

        if (*end != '\0' || !(sec >= 0) || sec > 86400 * 365) {
                fprintf(stderr, "fdbroker: --exit-idle-time takes seconds, not '%s'.\n", s);
                return -EINVAL;
        }
        *ret = (uint64_t) (sec * 1e6);
        return 0;
}

static int parse_direct_socket(const char *path, const char **ret) {
        if (path[0] != '/') {
                fprintf(stderr, "fdbroker: --direct-socket takes an absolute path, not '%s'.\n", path);
                return -EINVAL;
        }
        *ret = path;
        return 0;
}

enum {
        ARG_BUS = 0x100,
        ARG_VERSION,
        ARG_VERBOSE,
        ARG_POLICY_DIR,
        ARG_CHECK_POLICY,
        ARG_RUNTIME_DIR,
        ARG_EXIT_IDLE,
        ARG_EXIT_IDLE_WITH_ENTRIES,
        ARG_DIRECT_SOCKET,
};

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

int args_parse(int argc, char *argv[], Args *ret) {
        Args a = { .bus = "system",
                   .policy_dirs = { (char *) FDBROKER_ADMIN_POLICY_DIR, (char *) FDBROKER_VENDOR_POLICY_DIR } };
        size_t n_dirs = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("fdbroker %s\n", FDBROKER_VERSION);
                        return 0;
                case ARG_BUS:
                        a.bus = optarg;
                        break;
                case ARG_VERBOSE:
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case ARG_POLICY_DIR:
                        r = parse_policy_dir(&a, &n_dirs, optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_CHECK_POLICY:
                        a.check_policy = true;
                        break;
                case ARG_RUNTIME_DIR:
                        a.runtime_dir = optarg;
                        break;
                case ARG_DIRECT_SOCKET:
                        r = parse_direct_socket(optarg, &a.direct_socket);
                        if (r < 0)
                                return r;
                        break;
                case ARG_EXIT_IDLE:
                        r = parse_exit_idle_time(optarg, &a.exit_idle_usec);
                        if (r < 0)
                                return r;
                        break;
                case ARG_EXIT_IDLE_WITH_ENTRIES:
                        a.exit_idle_with_entries = true;
                        break;
                default: /* getopt_long() said what was wrong */
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "fdbroker: unexpected argument '%s'; see --help.\n", argv[optind]);
                return -EINVAL;
        }
        *ret = a;
        return 1;
}
