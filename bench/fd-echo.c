/* fd-echo.c: the D-Bus floor of the benchmarks.
 *
 * A bare sd-bus service on sd-event, set up the way fdbroker's main.c sets
 * up its bus, with one method that hands back the fd it was given:
 * Echo(h fd) -> (h fd). It checks nothing, logs nothing and keeps nothing,
 * so what fdbroker's Retrieve costs above it (bench/run.sh) is the broker's
 * own work: identity, options, policy, the registry, the info dictionary.
 *
 * Retrieve(s name, a{sv} options) -> (h fd, a{sv} info) is the same-shape
 * floor: it answers Retrieve's call shape with a 1-byte memfd and an info
 * dictionary of the broker's nine keys and types (fixed values, built with
 * append_basic as the broker builds its own), and looks at nothing else.
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
#include <sys/mman.h>
#include <unistd.h>

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

static int small_fd = -1;

static int append_item(sd_bus_message *reply, const char *key, char type, const void *value) {
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

static int method_retrieve(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        const char *name;
        uint64_t size = 1, created = 1700000000000000, expires = 0;
        uint32_t owner = 0;
        int sealed = 0, r;

        r = sd_bus_message_read(m, "s", &name);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{sv}");
        if (r >= 0)
                r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "h", small_fd);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0)
                r = append_item(reply, "kind", 's', "memfd");
        if (r >= 0)
                r = append_item(reply, "size", 't', &size);
        if (r >= 0)
                r = append_item(reply, "owner-uid", 'u', &owner);
        if (r >= 0)
                r = append_item(reply, "access", 's', "read-write");
        if (r >= 0)
                r = append_item(reply, "sealed", 'b', &sealed);
        if (r >= 0)
                r = append_item(reply, "lifetime", 's', "connection");
        if (r >= 0)
                r = append_item(reply, "description", 's', "");
        if (r >= 0)
                r = append_item(reply, "created-usec", 't', &created);
        if (r >= 0)
                r = append_item(reply, "expires-usec", 't', &expires);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 1;
}

static const sd_bus_vtable echo_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Echo", SD_BUS_ARGS("h", fd), SD_BUS_RESULT("h", fd), method_echo,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Retrieve", SD_BUS_ARGS("s", name, "a{sv}", options),
                                SD_BUS_RESULT("h", fd, "a{sv}", info), method_retrieve, SD_BUS_VTABLE_UNPRIVILEGED),
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

        small_fd = memfd_create("fd-echo", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (small_fd < 0 || write(small_fd, "x", 1) != 1) {
                r = -errno;
                goto out;
        }
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
