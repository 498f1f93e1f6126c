/* The http section: the listen address (an IP address and a port, never a
 * host name), the token (a secret) and the per-process metrics switch. */
#include "config/http.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "basic/macro.h"
#include "basic/parse.h"
#include "config/values.h"

/* "HOST:PORT" with HOST an IPv4 address or a bracketed IPv6 address and
 * PORT 1..65535. Host names are refused: the daemon binds before any
 * resolver is worth trusting, and an address says exactly what is exposed. */
static int listen_from_string(const char *value, ConfigListen *ret)
{
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_text;
        ConfigListen l = {0};
        uint64_t port;
        size_t n;

        if (value[0] == '[') {
                const char *close = strchr(value, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t)(close - value - 1);
                port_text = close + 2;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, value + 1, n);
                host[n] = '\0';
        } else {
                const char *colon = strrchr(value, ':');

                if (!colon || strchr(value, ':') != colon)
                        return -EINVAL;
                n = (size_t)(colon - value);
                port_text = colon + 1;
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, value, n);
                host[n] = '\0';
        }
        if (port_text[0] == '\0' || port_text[strspn(port_text, "0123456789")] != '\0' ||
            parse_uint64(port_text, &port) < 0 || port < 1 || port > 65535)
                return -EINVAL;

        if (value[0] == '[') {
                struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&l.addr;

                if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
                        return -EINVAL;
                sa->sin6_family = AF_INET6;
                sa->sin6_port = htons((uint16_t)port);
                l.addr_len = sizeof *sa;
                l.loopback = IN6_IS_ADDR_LOOPBACK(&sa->sin6_addr);
        } else {
                struct sockaddr_in *sa = (struct sockaddr_in *)&l.addr;

                if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
                        return -EINVAL;
                sa->sin_family = AF_INET;
                sa->sin_port = htons((uint16_t)port);
                l.addr_len = sizeof *sa;
                l.loopback = (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
        }
        l.text = strdup(value);
        if (!l.text)
                return -ENOMEM;
        *ret = l;
        return 0;
}

static int parse_listen(const ConfigKey *key, const char *value, void *field, char *problem,
                        size_t problem_len)
{
        ConfigListen *l = field, next;
        int r = listen_from_string(value, &next);

        if (r == -EINVAL) {
                snprintf(problem, problem_len,
                         "must be an IPv4 address or a bracketed IPv6 address, a colon and a "
                         "port (for example 127.0.0.1:9400 or [::1]:9400)");
                return r;
        }
        if (r < 0)
                return r;
        free(l->text);
        *l = next;
        return 0;
}

/* The token travels in an Authorization header: visible ASCII only, so it
 * can be written there verbatim and compared byte for byte. */
static int parse_token(const ConfigKey *key, const char *value, void *field, char *problem,
                       size_t problem_len)
{
        if (value[0] == '\0') {
                snprintf(problem, problem_len, "must not be empty");
                return -EINVAL;
        }
        if (strlen(value) > CONFIG_HTTP_TOKEN_MAX) {
                snprintf(problem, problem_len, "is too long (at most %d bytes)",
                         CONFIG_HTTP_TOKEN_MAX);
                return -EINVAL;
        }
        for (const char *p = value; *p; p++)
                if (*p < 0x21 || *p > 0x7e) {
                        snprintf(problem, problem_len,
                                 "must be printable ASCII without spaces");
                        return -EINVAL;
                }
        return config_store_string(value, field);
}

/* Anything but loopback is reachable by others: it needs a token. */
int config_http_check(ConfigCheck *check, void *base, const char *name)
{
        const ConfigHttp *h = base;

        assert(strcmp(name, "http") == 0);

        if (!h->listen.loopback && !h->token)
                return config_check_error(check, "http.listen",
                                          "'http.listen' (%s) is not a loopback address: set "
                                          "'http.token' too, or listen on 127.0.0.1",
                                          h->listen.text);
        return 0;
}

const ConfigKey config_http_table[] = {
        CONFIG_SCALAR("listen", parse_listen, ConfigHttp, listen, 0, 0),
        CONFIG_SCALAR_SECRET("token", parse_token, ConfigHttp, token),
        CONFIG_SCALAR("per_process_metrics", config_parse_bool, ConfigHttp,
                      per_process_metrics, 0, 0),
        CONFIG_SCALAR("api_commands", config_parse_bool, ConfigHttp, api_commands, 0, 0),
        CONFIG_END,
};

int config_http_init(ConfigHttp *s)
{
        *s = (ConfigHttp){0};
        return listen_from_string(CONFIG_DEFAULT_HTTP_LISTEN, &s->listen);
}

void config_http_done(ConfigHttp *s)
{
        free(s->listen.text);
        free(s->token);
}
