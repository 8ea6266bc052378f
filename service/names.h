/* names.h: validation of entry names (SPEC §1 "Names").
 *
 * A name is 1-255 bytes of [A-Za-z0-9_.:@/-]; '/' separates components; no
 * component is empty, "." or "..". The check explains itself so the bus
 * handler can tell the caller what to fix. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 255

/* Returns true for a valid name. Otherwise false, with *ret_why (if not NULL)
 * pointing at a static sentence saying what is wrong. */
bool name_is_valid(const char *name, const char **ret_why);

/* True when name starts with prefix (an empty prefix matches everything). */
bool name_has_prefix(const char *name, const char *prefix);
