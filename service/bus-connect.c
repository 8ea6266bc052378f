/* bus-connect.c: the daemon's connection to the bus it serves (bus-connect.h). */
#include "bus-connect.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"

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

int bus_connect(const char *which, sd_event *event, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = bus_open(which, &bus);
        if (r < 0)
                return log_bus_failure(which, r), r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}
