/* deposit-job.h: a Deposit, DepositMany or CreateMemory call on its way
 * through deposit.c's plan and commit. */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "deposit.h"

typedef struct Broker Broker;
typedef struct Peer Peer;

typedef enum DepositCall {
        DEPOSIT_CALL_ONE,
        DEPOSIT_CALL_MANY,
        DEPOSIT_CALL_CREATE_MEMORY,
} DepositCall;

/* A deposit on its way: the plan, and who committed it. Heap-allocated so
 * that it can wait for a worker's reopenings. */
typedef struct DepositJob {
        DepositPlan plan;
        Broker *broker;
        Peer *peer;                   /* NULL while waiting for a worker */
        DepositCall call;
        sd_bus_message *sweep;        /* the call, once it runs for the last time:
                                       * its fds are swept when the job ends
                                       * (fdclose_message_fds()) */
} DepositJob;

DepositJob *deposit_job_new(Broker *b, DepositCall call);
void deposit_job_free(void *dj);

static inline void deposit_job_freep(DepositJob **dj) {
        deposit_job_free(*dj);
}

/* deposit_plan_item(), and the check that needs the bus: a socket to the
 * bus itself is refused (NotSupported). */
int deposit_job_plan_item(Broker *b, DepositPlan *plan, DepositItem *it, sd_bus_error *error);

/* Runs a planned and authorized deposit of p's call m: reopenings on a
 * worker first, then the commit and the reply. dj is consumed. Returns 1
 * when answered later, else as deposit_commit_reply(). */
int deposit_run(Broker *b, Peer *p, sd_bus_message *m, DepositJob *dj, sd_bus_error *error);

/* Commits dj's plan for the call m and answers it. */
int deposit_commit_reply(DepositJob *dj, sd_bus_message *m, sd_bus_error *error);

/* CreateMemory's act, once authorized (see deposit-job.c). */
int deposit_job_create_memory(DepositJob *dj, Peer *p, sd_bus_message *m, const char *name, uint64_t size,
                              sd_bus_error *error);
