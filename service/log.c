/* log.c: see log.h. Lines carry a sd-daemon(3) priority prefix, which
 * journald turns into the priority when the service runs under systemd. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static LogLevel max_level = LOG_LEVEL_INFO;
static int use_prefix = -1; /* only when stderr goes to the journal */

void log_set_max_level(LogLevel l) {
        max_level = l;
}

bool log_enabled(LogLevel l) {
        return l <= max_level;
}

void log_full(LogLevel l, const char *fmt, ...) {
        static const char *const prefix[] = { "<3>", "<4>", "<6>", "<7>" };
        va_list ap;

        if (!log_enabled(l))
                return;
        if (use_prefix < 0)
                use_prefix = getenv("JOURNAL_STREAM") != NULL;
        va_start(ap, fmt);
        fputs(use_prefix ? prefix[l] : "fdbroker: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}
