/* main.c: the fdbroker daemon: parse the command line, build the broker,
 * run the loop.
 *
 * Thin on purpose: everything it runs lives in libfdbroker-service, which
 * the tests link too: the command line is args.c, the policy directories
 * and --check-policy policy-dirs.c, the bus connection bus-connect.c, the
 * direct socket direct.c. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "args.h"
#include "broker.h"
#include "bus-connect.h"
#include "cleanup.h"
#include "config.h"
#include "lifecycle.h"
#include "log.h"
#include "policy-dirs.h"
#include "protocol.h"

static Args arg;

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

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Broker *broker = userdata;
        Policy *p = NULL;

        log_info("received SIGHUP, reloading the policy");
        if (policy_dirs_load(arg.policy_dirs, false, &p) < 0) {
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

/* The event loop, with SIGTERM, SIGINT and SIGHUP blocked for it and the
 * first two ending it (SIGHUP's handler needs the broker: run() adds it). */
static int event_new(sd_event **ret) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        sigset_t mask;
        int r;

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
        *ret = TAKE_PTR(event);
        return 0;
}

/* A broken policy is not served with: refuse to start. */
static int load_policy(Policy **ret) {
        int r;

        policy_dirs_warn_missing(arg.policy_dirs, arg.policy_dirs_given);
        r = policy_dirs_load(arg.policy_dirs, false, ret);
        if (r < 0)
                return log_error("refusing to start with a broken policy; check it with --check-policy"), r;
        return 0;
}

/* The persistent entries of the last run, from the fd store and the state
 * file in the runtime directory. */
static int restore_entries(Broker *broker) {
        int r;

        r = broker_restore(broker, arg.runtime_dir ?: getenv("RUNTIME_DIRECTORY"));
        if (r < 0)
                return log_error("could not restore persistent entries: %s", strerror(-r)), r;
        if (r > 0)
                log_info("restored %d persistent entries", r);
        return 0;
}

static int run(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(broker_freep) Broker *broker = NULL;
        _cleanup_(lifecycle_freep) Lifecycle *lifecycle = NULL; /* before broker: it borrows it */
        _cleanup_(policy_freep) Policy *policy = NULL;
        int r;

        raise_nofile_limit();

        r = load_policy(&policy);
        if (r < 0)
                return r;

        r = event_new(&event);
        if (r < 0)
                return r;

        r = bus_connect(arg.bus, event, &bus);
        if (r < 0)
                return r;

        r = broker_new(event, bus, &broker);
        if (r < 0)
                return log_error("could not set up the broker object: %s", strerror(-r)), r;
        broker_set_policy(broker, TAKE_PTR(policy));
        (void) sd_event_add_signal(event, NULL, SIGHUP, on_sighup, broker);

        /* Before broker_restore(), which takes every other passed fd. */
        r = broker_listen_direct(broker, arg.direct_socket);
        if (r < 0)
                return r;

        /* Entries come back before the name is owned: no call can see a
         * half-restored broker. */
        r = restore_entries(broker);
        if (r < 0)
                return r;

        r = lifecycle_new(event, bus, broker,
                          &(LifecycleOptions) { .exit_idle_usec = arg.exit_idle_usec,
                                                .exit_idle_with_entries = arg.exit_idle_with_entries,
                                                .notify = getenv("NOTIFY_SOCKET") != NULL },
                          &lifecycle);
        if (r < 0)
                return log_error("could not set up idle exit and status: %s", strerror(-r)), r;
        (void) sd_event_set_watchdog(event, true);

        r = sd_bus_request_name(bus, FDB_BUS_NAME, 0);
        if (r < 0)
                return log_error("could not own %s: %s", FDB_BUS_NAME, strerror(-r)), r;

        log_info("serving %s %s on the %s bus", FDB_BUS_NAME, FDBROKER_VERSION, arg.bus);
        (void) sd_notify(false, "READY=1");

        r = sd_event_loop(event);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        r = args_parse(argc, argv, &arg);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;

        if (arg.check_policy)
                return policy_dirs_check(arg.policy_dirs, arg.policy_dirs_given) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = run(); /* negative errno, or the event loop's exit code */
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
