/* names.c: entry name validation. See names.h. */
#include "names.h"

#include <string.h>

static bool char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("_.:@/-", c);
}

bool name_is_valid(const char *name, const char **ret_why) {
        const char *why = NULL;
        size_t len = strlen(name);

        if (len == 0)
                why = "it is empty";
        else if (len > NAME_MAX_LEN)
                why = "it is longer than 255 bytes";
        else if (name[0] == '/' || name[len - 1] == '/')
                why = "it starts or ends with '/'";
        else {
                for (size_t i = 0; i < len; i++)
                        if (!char_ok(name[i])) {
                                why = "only letters, digits and _ . : @ / - are allowed";
                                break;
                        }
                if (!why) {
                        /* Walk the '/'-separated components. */
                        const char *p = name;
                        for (;;) {
                                size_t n = strcspn(p, "/");
                                if (n == 0) {
                                        why = "it has an empty component ('//')";
                                        break;
                                }
                                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                                        why = "it has a '.' or '..' component";
                                        break;
                                }
                                if (p[n] == '\0')
                                        break;
                                p += n + 1;
                        }
                }
        }

        if (why && ret_why)
                *ret_why = why;
        return !why;
}

bool name_has_prefix(const char *name, const char *prefix) {
        return strncmp(name, prefix, strlen(prefix)) == 0;
}
