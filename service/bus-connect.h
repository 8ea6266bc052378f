/* bus-connect.h: the daemon's connection to the bus it serves (--bus).
 *
 * Part of the daemon's start-up, like main.c: when the bus cannot be
 * reached it logs why, in terms of what sd-bus looked at ($DBUS_*_ADDRESS,
 * the default socket), and what to do about it. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* Connects to which ("system", "session" or a D-Bus address) with fd
 * passing, attached to event. Losing the connection later exits the loop:
 * without the bus nobody can reach the entries, so the daemon exits
 * (failing, so systemd restarts it with the fd store) rather than hold
 * them. *ret is owned by the caller; failures are logged. */
int bus_connect(const char *which, sd_event *event, sd_bus **ret);
