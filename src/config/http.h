/* The http section of gpukeeper.yaml(5): where /metrics and the dashboard
 * are served, and the token that guards them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "basic/parse.h"
#include "config/loader.h"

/* http section: where /metrics is served (dcgm-exporter's port by default). */
#define CONFIG_DEFAULT_HTTP_LISTEN "127.0.0.1:9400"
#define CONFIG_HTTP_TOKEN_MAX 256 /* bytes of http.token */

/* http.listen: the text as written and the address it names. */
typedef struct ConfigListen {
        char *text;                   /* "127.0.0.1:9400", "[::1]:9400" */
        struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set */
        socklen_t addr_len;
        bool loopback;                /* 127.0.0.0/8 or ::1 */
} ConfigListen;

/* The http section. token is a secret: never log it. */
typedef struct ConfigHttp {
        ConfigListen listen;
        char *token;              /* NULL: no Authorization required (loopback only) */
        bool per_process_metrics; /* per-process series on /metrics (label churn) */
        bool api_commands;        /* command lines in /api/status even without a token */
} ConfigHttp;

/* The section's keys, relative to a ConfigHttp (the root table in config.c
 * reads it into Config.http). */
extern const ConfigKey config_http_table[];
/* The section's ConfigChecker: rules that tie its keys together. */
int config_http_check(ConfigCheck *check, void *base, const char *name);
/* Fill in the built-in defaults. Returns 0 or -ENOMEM. */
int config_http_init(ConfigHttp *s);
/* Free what the section holds (not `s` itself). */
void config_http_done(ConfigHttp *s);
