/* retrieve.h: handing stored fds back (Retrieve, RetrieveMany, waiters). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "options.h"
#include "registry.h"

typedef struct Broker Broker;
typedef struct Peer Peer;

/* Appends e's info dictionary (a{sv}, SPEC §1) to reply. */
int retrieve_append_info(sd_bus_message *reply, const Entry *e);

/* Replies to the Retrieve call m from p with e (authorized, with cap the
 * policy's access cap) and consumes a once entry; a reopening is answered
 * later, from a worker. Returns 1, or refuses with error set. */
int retrieve_reply(Broker *b, Peer *p, sd_bus_message *m, Entry *e, const RetrieveOptions *o, int cap,
                   sd_bus_error *error);

/* The same for RetrieveMany: all of entries (n, named names) or none. */
int retrieve_reply_many(Broker *b, Peer *p, sd_bus_message *m, char **names, Entry **entries, const int *caps,
                        size_t n, const RetrieveOptions *o, sd_bus_error *error);

/* Turns a failed reopening (r, negative errno) of name into one of SPEC
 * §1's errors. */
int retrieve_reopen_error(sd_bus_error *error, const char *name, uid_t depositor, int accmode, int r);

/* A reply carrying n fds went to the sender of m: they count as unread. */
void retrieve_note_fds_sent(Broker *b, sd_bus_message *m, unsigned n);
