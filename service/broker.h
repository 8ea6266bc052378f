/* broker.h: the org.fdbroker.Broker1 bus object.
 *
 * Owns the registry of entries, the peer cache and the parked wait-usec
 * calls, and answers every method and property of SPEC §1. Handlers run
 * parse, validate, authorize, act, in that order: nothing changes before
 * the last step, and a refused call changes nothing. */
#pragma once

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

unsigned broker_entry_count(const Broker *b);

typedef struct Policy Policy;

/* Puts policy (consumed; NULL for no rules) in force, with its [Limits]
 * replacing the defaults. Entries already stored are untouched. */
void broker_set_policy(Broker *b, Policy *policy);
