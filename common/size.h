/* size.h (common/: policy, fdbrokerctl, tests): the one grammar for sizes.
 *
 * A size is a decimal number of bytes with an optional binary suffix:
 * K, M, G or T (powers of 1024, either case), optionally followed by "iB":
 * "4096", "64K", "512m", "1G", "2TiB". No sign, no spaces, no fractions, no
 * decimal (1000-based) units: "1GB" is an error rather than a guess. Used by
 * the policy's MaxMemorySize= and by fdbrokerctl's SIZE argument, so both
 * read the same strings the same way. Header-only plain C. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parses s. Returns 0 and *ret; -EINVAL when s is not a size; -ERANGE when
 * it is one that does not fit in 64 bits. *ret is untouched on failure. */
static inline int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "KMGT";
        unsigned long long v;
        uint64_t mult = 1;
        const char *p;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        if (*end != '\0') {
                char c = *end >= 'a' && *end <= 'z' ? (char) (*end - 'a' + 'A') : *end;

                p = c ? strchr(suffixes, c) : NULL;
                if (!p)
                        return -EINVAL;
                for (const char *q = suffixes; q <= p; q++)
                        mult *= 1024;
                end++;
                if (*end != '\0' && strcmp(end, "iB") != 0)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = (uint64_t) v * mult;
        return 0;
}
