/* The history section: how many hours of raw samples and how many days of
 * one-minute rows are kept. */
#include "config/history.h"

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

const ConfigKey config_history_table[] = {
        CONFIG_SCALAR("raw_hours", config_parse_uint64, ConfigHistory, raw_hours, 1,
                      CONFIG_HISTORY_RAW_HOURS_MAX),
        CONFIG_SCALAR("days", config_parse_uint64, ConfigHistory, days, 1,
                      CONFIG_HISTORY_DAYS_MAX),
        CONFIG_SCALAR("audit_days", config_parse_uint64, ConfigHistory, audit_days, 1,
                      CONFIG_HISTORY_DAYS_MAX),
        CONFIG_END,
};

int config_history_init(ConfigHistory *s)
{
        *s = (ConfigHistory){
                .raw_hours = CONFIG_DEFAULT_HISTORY_RAW_HOURS,
                .days = CONFIG_DEFAULT_HISTORY_DAYS,
                .audit_days = CONFIG_DEFAULT_HISTORY_AUDIT_DAYS,
        };
        return 0;
}

void config_history_done(ConfigHistory *s)
{
}
