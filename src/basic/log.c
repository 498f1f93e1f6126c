/* Logging to stderr with syslog priority prefixes; see log.h. */
#include "basic/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int log_max_level = LOG_LEVEL_INFO;

/* What this thread holds back (log.h). */
static _Thread_local unsigned hold_depth;
static _Thread_local size_t held_len;
static _Thread_local char held[LOG_HOLD_MAX];

/* Write what is held, as one write; what cannot be written is dropped (a
 * log has nowhere to report its own failure). */
static void write_held(void)
{
        size_t done = 0;

        while (done < held_len) {
                ssize_t n = write(STDERR_FILENO, held + done, held_len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        held_len = 0;
}

/* The "<N>" priority prefix is for journald (or a log file read by a
 * program); a person reading a terminal (gpukeeperd --check-config, a
 * daemon run by hand) gets the bare lines. Decided once. */
static bool syslog_prefix(void)
{
        static int prefix = -1;

        if (prefix < 0)
                prefix = !isatty(STDERR_FILENO);
        return prefix;
}

void log_hold(void)
{
        hold_depth++;
}

void log_release(void)
{
        if (hold_depth == 0 || --hold_depth > 0)
                return;
        write_held();
}

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_level_from_string(const char *s)
{
        static const struct {
                const char *name;
                int level;
        } table[] = {
                {"error", LOG_LEVEL_ERROR},
                {"warning", LOG_LEVEL_WARNING},
                {"info", LOG_LEVEL_INFO},
                {"debug", LOG_LEVEL_DEBUG},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(s, table[i].name) == 0)
                        return table[i].level;
        return -EINVAL;
}

int log_internal(int level, int error, const char *fmt, ...)
{
        int saved = errno;
        int e = error < 0 ? -error : error;

        if (level <= log_max_level) {
                char msg[2048], line[2048 + 256], prefix[8] = "";
                va_list ap;
                int n;

                va_start(ap, fmt);
                vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                if (syslog_prefix())
                        snprintf(prefix, sizeof prefix, "<%d>", level);
                if (e)
                        n = snprintf(line, sizeof line, "%s%s: %s\n", prefix, msg, strerror(e));
                else
                        n = snprintf(line, sizeof line, "%s%s\n", prefix, msg);
                if (n < 0)
                        n = 0;
                if ((size_t)n >= sizeof line) { /* cut: it still ends the line */
                        n = (int)sizeof line - 1;
                        line[n - 1] = '\n';
                }
                /* One path for every line: it joins what is held (which
                 * goes out first when the line does not fit), and unless it
                 * is held itself, all of it is written now. */
                if (held_len + (size_t)n > sizeof held)
                        write_held();
                memcpy(held + held_len, line, (size_t)n);
                held_len += (size_t)n;
                if (hold_depth == 0 || level <= LOG_LEVEL_WARNING)
                        write_held();
        }
        errno = saved;
        return -e;
}
