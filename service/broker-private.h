/* broker-private.h: the Broker object as its concept modules see it.
 *
 * broker.c is the bus object; entries.c, retrieve.c, waiters.c and
 * deposit-job.c each own one concept of what it does, and share the one
 * struct Broker that ties registry, peers, polkit, workers and persistence
 * together (as systemd's units see Manager). Nothing outside service/
 * includes this. */
#pragma once

#include <time.h>

#include "accounting.h"
#include "broker.h"
#include "decide.h"
#include "direct.h"
#include "list.h"
#include "peers.h"
#include "persist.h"
#include "polkit.h"
#include "protocol.h"
#include "registry.h"
#include "watch.h"
#include "worker.h"

#define ERROR_NOT_FOUND FDB_ERROR_NAME_NOT_FOUND
#define ERROR_EXISTS FDB_ERROR_NAME_EXISTS
#define ERROR_QUOTA FDB_ERROR_NAME_QUOTA_EXCEEDED
#define ERROR_NOT_SUPPORTED FDB_ERROR_NAME_NOT_SUPPORTED
#define ERROR_BUSY FDB_ERROR_NAME_BUSY

#define FDS_PER_CALL_MAX FDB_FDS_PER_CALL_MAX

struct Broker {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *object;
        sd_bus_slot *fdclose_filter;  /* fdclose_bus_filter() on the bus */
        bool fdclose_attached;        /* this broker attached fdclose to its event */
        Registry reg;
        Accounting acct;              /* what each uid holds (accounting.h) */
        Peers peers;
        Polkit polkit;
        Policy *policy;               /* admin rules; NULL: none */
        Persist persist;
        Worker *worker;               /* opens on callers' behalf */
        Direct direct;                /* peer-to-peer connections (SPEC §5) */
        uint64_t n_calls;             /* method calls seen, for idle detection */
        unsigned fd_budget;           /* entries the open-file limit leaves room for */
        bool exiting;                 /* idle exit decided: take no new work */
        LIST_HEAD(Waiter, waiters);   /* parked wait-usec calls, oldest first (waiters.c) */
        unsigned n_waiters;
        Watches watches;              /* Watch calls: who hears of entries (watch.c) */
};

static inline uint64_t now_usec(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* What policy/decide.c needs to know of e, borrowed from it. */
static inline DecideEntry entry_view(const Entry *e) {
        return (DecideEntry) { .name = e->name, .owner_uid = e->owner_uid, .allow = e->allow, .n_allow = e->n_allow };
}
