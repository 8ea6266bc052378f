/* broker.h: the org.fdbroker.Broker1 bus object.
 *
 * Owns the registry of entries, the peer cache and the parked wait-usec
 * calls, and answers every method and property of SPEC §1, through one
 * module per concept (broker-private.h lists them). Handlers run
 * parse, validate, authorize, act, in that order: nothing changes before
 * the last step, and a refused call changes nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct Broker Broker;

/* Registers the object on bus (both referenced). The name is not requested
 * here: main does that once everything is in place. */
int broker_new(sd_event *event, sd_bus *bus, Broker **ret);

Broker *broker_free(Broker *b);

static inline void broker_freep(Broker **b) {
        broker_free(*b);
}

typedef struct Policy Policy;

/* Puts policy (consumed; NULL for no rules) in force, with its [Limits]
 * replacing the defaults. Entries already stored are untouched. */
void broker_set_policy(Broker *b, Policy *policy);

/* Turns on persistence with the state file in runtime_dir (NULL: none) and
 * restores the entries passed back by the service manager. Call before the
 * name is requested. Returns the number restored. */
int broker_restore(Broker *b, const char *runtime_dir);

/* Serves direct connections (SPEC §5) on the socket systemd passed, else
 * on one made at path, else (path NULL) not at all: direct_serve_socket().
 * Call before broker_restore(), which takes every other passed fd. */
int broker_listen_direct(Broker *b, const char *path);

/* No entries, no parked calls, no questions out, no direct connections:
 * safe to exit. */
bool broker_is_idle(const Broker *b);
/* Like broker_is_idle(), but persistent entries (with no expiry) that wait
 * in the service manager's fd store do not count: for a manager that keeps
 * the store while the service is stopped (FileDescriptorStorePreserve=). */
bool broker_is_idle_but_stored(const Broker *b);

/* From now on every method call is refused (NoReply, "call again"): the
 * broker is about to exit, and work taken now would die with it. */
void broker_set_exiting(Broker *b);

void broker_format_status(const Broker *b, char *buf, size_t size);

/* How many method calls have come in: unchanged means nobody called. */
uint64_t broker_call_count(const Broker *b);
