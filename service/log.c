/* log.c: see log.h. Lines carry a sd-daemon(3) priority prefix, which
 * journald turns into the priority when the service runs under systemd. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
        char line[2048];
        va_list ap;
        int n, k;

        if (!log_enabled(l))
                return;
        if (use_prefix < 0)
                use_prefix = getenv("JOURNAL_STREAM") != NULL;

        /* One write per line: stderr is unbuffered, and under journald
         * every write is a wake-up. */
        n = snprintf(line, sizeof line, "%s", use_prefix ? prefix[l] : "fdbroker: ");
        va_start(ap, fmt);
        k = vsnprintf(line + n, sizeof line - (size_t) n - 1, fmt, ap);
        va_end(ap);
        if (k < 0)
                return;
        n += k;
        if ((size_t) n > sizeof line - 2)
                n = sizeof line - 2; /* truncated */
        line[n++] = '\n';
        (void) !write(STDERR_FILENO, line, (size_t) n);
}
