/* policy-dirs.h: the daemon reading its policy directories.
 *
 * policy/ parses and decides and never prints; this is the daemon's side of
 * it: the policy loaded at start and on SIGHUP with its problems logged,
 * and the report of fdbroker --check-policy. Like main.c it speaks: the
 * load logs, the check prints to stdout and stderr. */
#pragma once

#include <stdbool.h>

#include "policy.h"

/* How many --policy-dir options the daemon takes. */
#define POLICY_DIRS_MAX 16

/* Loads the policy from dirs (priority order, NULL-terminated) into *ret.
 * Problems are said one "FILE:LINE: message" each: bare on stderr when
 * bare (--check-policy), else as log lines. Returns policy_load()'s
 * result: -EINVAL for problems in the files. */
int policy_dirs_load(char *const *dirs, bool bare, Policy **ret);

/* Warns of each of dirs that does not exist: named on the command line
 * (given), it is most likely a typo. The default directories need not
 * exist: nothing is said when !given. */
void policy_dirs_warn_missing(char *const *dirs, bool given);

/* fdbroker --check-policy: says which of dirs (at most POLICY_DIRS_MAX) were
 * read and which did not exist, then the rules and files, or the problems.
 * A directory given on the command line must exist: a typo there would
 * otherwise check nothing and say OK. Returns 0 when the policy is valid. */
int policy_dirs_check(char *const *dirs, bool given);
