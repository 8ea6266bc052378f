/* args.h: the daemon's command line (fdbroker --help).
 *
 * Not to be confused with options.h, which parses the a{sv} option
 * dictionaries callers send over the bus. Every string in Args points into
 * argv or is a compiled-in default: nothing here is allocated. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "policy-dirs.h"

typedef struct Args {
        const char *bus;           /* "system", "session" or an address */
        /* In priority order, NULL-terminated: the first masks same-named
         * files of the later ones. The default directories unless given. */
        char *policy_dirs[POLICY_DIRS_MAX + 1];
        bool policy_dirs_given;    /* --policy-dir was given (then they must exist) */
        bool check_policy;         /* --check-policy: check and exit */
        const char *runtime_dir;   /* NULL: $RUNTIME_DIRECTORY */
        uint64_t exit_idle_usec;   /* 0: never */
        bool exit_idle_with_entries;
        const char *direct_socket; /* absolute path, or NULL */
} Args;

/* Parses argv into *ret (--verbose raises the log level at once). Returns
 * 1 to run, 0 when done (--help, --version: printed), <0 on a usage error
 * (said on stderr). *ret is set only when 1 is returned. */
int args_parse(int argc, char *argv[], Args *ret);
