/* cleanup.h (common/: service, policy, client, tests): scope-bound ownership for fds and heap objects.
 *
 * _cleanup_(f) runs f(&var) when var leaves scope. TAKE_FD and TAKE_PTR hand
 * ownership on by returning the value and resetting the variable, so the
 * cleanup that follows does nothing. Every destructor here accepts "nothing"
 * (-1, NULL). */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>


#define _cleanup_(f) __attribute__((cleanup(f)))

/* Closes fd if it is valid, keeps errno, returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void strv_freep(char ***p) {
        if (*p)
                for (char **s = *p; *s; s++)
                        free(*s);
        free(*p);
}

#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_free_ _cleanup_(freep)

#define TAKE_FD(fd)                     \
        ({                              \
                int _fd_ = (fd);        \
                (fd) = -1;              \
                _fd_;                   \
        })

#define TAKE_PTR(p)                             \
        ({                                      \
                __typeof__(p) _p_ = (p);        \
                (p) = NULL;                     \
                _p_;                            \
        })

#define _fallthrough_ __attribute__((fallthrough))

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
