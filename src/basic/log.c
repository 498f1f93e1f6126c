/* Logging to stderr with syslog priority prefixes; see log.h. */
#include "basic/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int log_max_level = LOG_LEVEL_INFO;

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
                char msg[2048];
                va_list ap;

                va_start(ap, fmt);
                vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                if (e)
                        fprintf(stderr, "<%d>%s: %s\n", level, msg, strerror(e));
                else
                        fprintf(stderr, "<%d>%s\n", level, msg);
        }
        errno = saved;
        return -e;
}
