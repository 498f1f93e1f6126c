/* Process-wide logging: one line per message on stderr (journald adds the
 * timestamp under systemd). The level is the only global state, set from
 * parsed arguments. Library code does not log; callers log once with context.
 *
 * A thread may hold its info and debug lines back (log_hold) while it
 * answers a request, so the write to stderr (a file or journald's socket:
 * 4-5 us here, docs/benchmarks.md) comes after the reply instead of inside
 * its round trip. Held lines keep their order: a warning or an error writes
 * what is held, then itself, at once, and so does a line that would not fit
 * the thread's buffer (LOG_HOLD_MAX bytes). */
#pragma once

#include <stdarg.h>

#include "basic/macro.h"

enum { LOG_LEVEL_ERROR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

void log_set_max_level(int level);

/* Parse "error", "warning", "info" or "debug"; returns the level or -EINVAL. */
int log_level_from_string(const char *s);

/* Print at `level` with a syslog-style "<N>" prefix that journald understands
 * (none when stderr is a terminal: a person reads it).
 * Returns -abs(error) when error != 0 so callers can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* Hold this thread's info and debug lines until the outermost log_release(),
 * which writes them with one write. Holds nest. */
#define LOG_HOLD_MAX 8192
void log_hold(void);
void log_release(void);

#define log_error(...) log_internal(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_LEVEL_ERROR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_LEVEL_WARNING, (e), __VA_ARGS__)
