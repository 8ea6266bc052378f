/* options.h: reading what callers send: option dictionaries and names.
 *
 * Every a{sv} the bus API takes is parsed here, strictly: an unknown key, a
 * key given twice or a value of the wrong type is InvalidArgs naming the
 * key. Strings returned point into the message (borrowed); what a parse
 * allocates is released by the matching *_done(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "acl.h"

#define WAIT_USEC_MAX (UINT64_C(300) * 1000000)
#define DESCRIPTION_MAX 1024

typedef struct DepositOptions {
        Subject *allow;
        size_t n_allow;
        bool read_only;
        bool seal;
        bool persistent;
        uint64_t timeout_usec;
        bool once;
        bool replace;
        char *description;
} DepositOptions;

typedef struct RetrieveOptions {
        int accmode;                  /* -1: as stored */
        bool reopen;
        uint64_t wait_usec;
} RetrieveOptions;

void deposit_options_done(DepositOptions *o);

/* Deposit options (also DepositMany's and CreateMemory's). */
int options_parse_deposit(sd_bus_message *m, DepositOptions *o, sd_bus_error *error);

/* Retrieve options (also RetrieveMany's). */
int options_parse_retrieve(sd_bus_message *m, RetrieveOptions *o, sd_bus_error *error);

/* List's filter: prefix (borrowed from m; "" when not given). */
int options_parse_list_filter(sd_bus_message *m, const char **ret_prefix, sd_bus_error *error);

/* OpenPath's options: access (default read-only) and nonblock. */
int options_parse_open_path(sd_bus_message *m, int *ret_accmode, bool *ret_nonblock, sd_bus_error *error);

/* InvalidArgs saying why name is not a valid entry name, or 0. */
int options_check_name(const char *name, sd_bus_error *error);
