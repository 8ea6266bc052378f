/* fdcount.h: how many fds this test process has open (/proc/self/fd, with
 * the directory's own fd and . and ..: compare counts, not values). */
#pragma once

#include <dirent.h>
#include <glib.h>

static inline unsigned count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        g_assert_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}
