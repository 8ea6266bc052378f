/* fd-echo.c: the D-Bus floor of the benchmarks.
 *
 * A bare sd-bus service on sd-event, set up the way fdbroker's main.c sets
 * up its bus, with one method that hands back the fd it was given:
 * Echo(h fd) -> (h fd). It checks nothing, logs nothing and keeps nothing,
 * so what fdbroker's Retrieve costs above it (bench/run.sh) is the broker's
 * own work: identity, options, policy, the registry, the info dictionary.
 *
 *   fd-echo --bus=ADDRESS [--name=NAME]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define OBJECT_PATH "/org/fdbroker/Bench/FdEcho"
#define INTERFACE "org.fdbroker.Bench.FdEcho"

static int method_echo(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int fd, r;

        /* The fd is the message's; sd-bus sends its own duplicate back. */
        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "h", fd);
}

static const sd_bus_vtable echo_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Echo", SD_BUS_ARGS("h", fd), SD_BUS_RESULT("h", fd), method_echo,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int run(const char *address, const char *name) {
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        sigset_t mask;
        int r;

        r = sd_event_default(&event);
        if (r < 0)
                goto out;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);

        /* As main.c's bus_open() does for an address. */
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        /* Go with the bus: a benchmark's private bus is torn down under us. */
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, OBJECT_PATH, INTERFACE, echo_vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, name, 0);
        if (r < 0)
                goto out;
        r = sd_event_loop(event);
out:
        if (r < 0)
                fprintf(stderr, "fd-echo: %s\n", strerror(-r));
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        return r;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "bus", required_argument, NULL, 'b' },
                { "name", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *address = NULL, *name = INTERFACE;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'b':
                        address = optarg;
                        break;
                case 'n':
                        name = optarg;
                        break;
                case 'h':
                        printf("Usage: fd-echo --bus=ADDRESS [--name=NAME]\n"
                               "Serve %s.Echo(h) -> h on %s (the D-Bus floor of bench/run.sh).\n",
                               INTERFACE, OBJECT_PATH);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (!address) {
                fprintf(stderr, "fd-echo: --bus=ADDRESS is required.\n");
                return EXIT_FAILURE;
        }
        return run(address, name) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
