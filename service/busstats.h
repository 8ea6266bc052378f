/* busstats.h: dbus-daemon's org.freedesktop.DBus.Debug.Stats.GetConnectionStats.
 *
 * The broker asks it how much still waits in the daemon for one connection
 * (fds for a caller that does not read its replies, peers.c; signals for a
 * watcher that does not read them, watch.c): what waits there counts
 * against the broker's own connection. One place reads the answer and says
 * which errors mean the bus has no statistics for us. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

/* Whether e (an error answer) means asking again is pointless: no Stats
 * interface (dbus-broker), or the bus policy refuses it. Other errors (the
 * connection left meanwhile) concern that one connection only. */
bool busstats_unavailable(const sd_bus_error *e);

/* Reads the u values of keys[0..n-1] from reply's a{sv} into values[];
 * a key the reply lacks leaves UINT32_MAX. Returns 0, or negative errno on
 * a malformed reply. */
int busstats_read(sd_bus_message *reply, const char *const keys[], uint32_t values[], size_t n);
