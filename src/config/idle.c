/* The idle section: its keys, and the check that a warning comes before the
 * release it warns about. */
#include "config/idle.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/values.h"

/* Room for "idle.release_after". */
#define IDLE_NAME_MAX 64

/* "'idle.warn_before' (3h)" when the file gave it, else "warn_before (15m, the default)". */
static void describe_idle(const ConfigCheck *check, const char *key, uint64_t usec, char *buf,
                          size_t len)
{
        char name[IDLE_NAME_MAX], v[FORMAT_DURATION_MAX];

        (void)format_duration(v, sizeof v, usec);
        snprintf(name, sizeof name, "idle.%s", key);
        if (config_check_given(check, name))
                snprintf(buf, len, "'%s' (%s)", name, v);
        else
                snprintf(buf, len, "%s (%s, the default)", key, v);
}

/* warn_before <= release_after; as for policy durations, the key given is
 * blamed (warn_before when both are). */
int config_idle_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigIdle *idle = base;
        char warn[IDLE_NAME_MAX * 2], release[IDLE_NAME_MAX * 2];

        assert(strcmp(name, "idle") == 0);

        if (idle->warn_before_usec <= idle->release_after_usec)
                return 0;

        describe_idle(check, "warn_before", idle->warn_before_usec, warn, sizeof warn);
        describe_idle(check, "release_after", idle->release_after_usec, release, sizeof release);
        if (config_check_given(check, "idle.warn_before"))
                return config_check_error(check, "idle.warn_before",
                                          "%s must not be longer than %s", warn, release);
        return config_check_error(check, "idle.release_after", "%s must not be shorter than %s",
                                  release, warn);
}

const ConfigKey config_idle_table[] = {
        CONFIG_SCALAR("release_after", config_parse_duration, ConfigIdle, release_after_usec,
                      CONFIG_IDLE_AFTER_MIN, CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("warn_before", config_parse_duration, ConfigIdle, warn_before_usec, 0,
                      CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("flag_after", config_parse_duration, ConfigIdle, flag_after_usec,
                      CONFIG_IDLE_AFTER_MIN, CONFIG_IDLE_AFTER_MAX),
        CONFIG_SCALAR("stop_idle_runs", config_parse_bool, ConfigIdle, stop_idle_runs, 0, 0),
        CONFIG_END,
};

int config_idle_init(ConfigIdle *s)
{
        *s = (ConfigIdle){
                .release_after_usec = CONFIG_DEFAULT_IDLE_RELEASE_AFTER_USEC,
                .warn_before_usec = CONFIG_DEFAULT_IDLE_WARN_BEFORE_USEC,
                .flag_after_usec = CONFIG_DEFAULT_IDLE_FLAG_AFTER_USEC,
        };
        return 0;
}

void config_idle_done(ConfigIdle *s)
{
}
