/* log.h: the daemon's one voice, on stderr.
 *
 * Library modules never log; the bus object and main do, once per event,
 * naming the caller and the entry. */
#pragma once

#include <stdbool.h>

typedef enum LogLevel {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
} LogLevel;

void log_set_max_level(LogLevel l);
bool log_enabled(LogLevel l);

void log_full(LogLevel l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_LEVEL_DEBUG, __VA_ARGS__)
