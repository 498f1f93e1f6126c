/* Text views of leases and of the queue, and the shell lines of `lease env`.
 * Layout of `gpukeeper lease list` on 80 columns:
 *
 *   ID  USER       KIND    AGE     EXPIRES    DEVICES
 *   12  alice      manual  2h13m   in 1h46m   [0], [1]
 *   13  bob        run     5m      -          [2] 3g.40gb
 *
 * and of the queue (in `gpukeeper queue` and below the GPUs of status):
 *
 *   POS  USER       WANTS           WAITING  REASON
 *     1  carol      2 GPUs          12m      waiting for 2 GPUs: 1 free
 *
 * The last column takes the rest of the line; every other one has a fixed
 * width so that rows line up whatever the daemon sends. */
#include "cli/lease-render.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"

#define USER_W 10    /* longer login names are cut */
#define KIND_W 6     /* "manual" */
#define AGE_W 7      /* "23h59m", "999d23h" */
#define EXPIRES_W 10 /* "in 23h59m", "expired" */
#define POS_W 3
#define WANTS_W 15 /* "2× 3g.40gb", "GPU-5e2c1a3b…" */
#define WAITING_W 8

const char *cli_json_str(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

bool cli_json_num(json_t *o, const char *key, double *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_number(v) || !isfinite(json_number_value(v)))
                return false;
        *ret = json_number_value(v);
        return true;
}

const char *cli_format_span(char *buf, size_t len, double seconds)
{
        /* Clamp before converting: a daemon's nonsense must not overflow. */
        uint64_t s = seconds > 0 ? (uint64_t)MIN(seconds, 1e15) : 0;
        uint64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;

        if (d > 0)
                snprintf(buf, len, h ? "%" PRIu64 "d%" PRIu64 "h" : "%" PRIu64 "d", d, h);
        else if (h > 0)
                snprintf(buf, len, m ? "%" PRIu64 "h%" PRIu64 "m" : "%" PRIu64 "h", h, m);
        else if (m > 0)
                snprintf(buf, len, "%" PRIu64 "m", m);
        else
                snprintf(buf, len, "%" PRIu64 "s", s);
        return buf;
}

/* Append `s` to buf (which holds `*used` bytes), cutting rather than
 * overflowing; the caller clips the whole for display anyway. */
static void append(char *buf, size_t len, size_t *used, const char *s)
{
        size_t n = strlen(s);

        if (*used + 1 >= len)
                return;
        n = MIN(n, len - 1 - *used);
        memcpy(buf + *used, s, n);
        *used += n;
        buf[*used] = '\0';
}

const char *cli_lease_devices_short(char *buf, size_t len, json_t *lease)
{
        json_t *devices = json_object_get(lease, "devices");
        size_t used = 0;

        assert(len > 0);
        buf[0] = '\0';
        for (size_t i = 0; i < json_array_size(devices); i++) {
                json_t *d = json_array_get(devices, i);
                const char *profile = cli_json_str(d, "profile"), *uuid = cli_json_str(d, "uuid");
                char one[64];
                double index;

                if (cli_json_num(d, "gpu_index", &index))
                        snprintf(one, sizeof one, profile ? "[%.0f] %.24s" : "[%.0f]", index,
                                 profile);
                else
                        snprintf(one, sizeof one, "%.12s", uuid ? uuid : "-");
                if (i > 0)
                        append(buf, len, &used, ", ");
                append(buf, len, &used, one);
        }
        double budget;

        if (cli_json_num(lease, "share_bytes", &budget)) {
                char one[48];

                snprintf(one, sizeof one, " shared %.1fG", budget / 1073741824.0);
                append(buf, len, &used, one);
        }
        return used > 0 ? buf : "-";
}

/* "in 1h46m", "expired", or "-" for a lease without an expiry (run). */
static const char *fmt_expires(char *buf, size_t len, json_t *lease, double now)
{
        char span[32];
        double at;

        if (!cli_json_num(lease, "expires_at", &at))
                return "-";
        if (at <= now)
                return "expired";
        snprintf(buf, len, "in %s", cli_format_span(span, sizeof span, at - now));
        return buf;
}

static const char *fmt_age(char *buf, size_t len, json_t *o, const char *key, double now)
{
        double at;

        if (!cli_json_num(o, key, &at))
                return "-";
        return cli_format_span(buf, len, now - at);
}

const char *cli_number_text(char *buf, size_t len, const int64_t *integer, const double *number)
{
        /* JSON integers (pids, uids, ids: thousands per status) in decimal
         * without printf; below 2^53 a double holds them exactly, so the
         * text is what "%.0f" makes of them. */
        if (integer && len >= 21 && *integer > -(INT64_C(1) << 53) &&
            *integer < (INT64_C(1) << 53)) {
                int64_t i = *integer;
                char tmp[24], *p = tmp + sizeof tmp;
                uint64_t u = i < 0 ? (uint64_t)-i : (uint64_t)i;

                *--p = '\0';
                do
                        *--p = (char)('0' + u % 10);
                while ((u /= 10) > 0);
                if (i < 0)
                        *--p = '-';
                memcpy(buf, p, (size_t)(tmp + sizeof tmp - p));
                return buf;
        }
        if (!number)
                return "-";
        snprintf(buf, len, "%.0f", *number);
        return buf;
}

const char *cli_json_int_text(char *buf, size_t len, json_t *o, const char *key)
{
        json_t *j = json_object_get(o, key);
        int64_t i = json_is_integer(j) ? json_integer_value(j) : 0;
        double v;
        bool num = cli_json_num(o, key, &v);

        return cli_number_text(buf, len, json_is_integer(j) ? &i : NULL, num ? &v : NULL);
}

/* The last column a line may use: one short of the terminal's width, as in
 * status-render.c, so no line relies on how the terminal wraps. */
static size_t line_end(const cli_term *term)
{
        return MAX(term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1;
}

int cli_lease_list_render(json_t *leases, bool all, FILE *f, const cli_term *term, double now)
{
        size_t id_w = 2, n = json_array_size(leases), fixed, end = line_end(term);
        char buf[32];

        if (!json_is_array(leases))
                return -EBADMSG;
        if (n == 0) {
                fputs(all ? "No leases.\n" : "You hold no leases.\n", f);
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                id_w = MAX(id_w, MIN(strlen(cli_json_int_text(buf, sizeof buf,
                                                              json_array_get(leases, i), "id")),
                                     (size_t)12));
        fixed = id_w + 2 + USER_W + 1 + KIND_W + 2 + AGE_W + 1 + EXPIRES_W + 1;

        cli_text_heading(f, term,
                         (const cli_column[]){
                             {"ID", id_w, CLI_ALIGN_LEFT, 2},
                             {"USER", USER_W, CLI_ALIGN_LEFT, 1},
                             {"KIND", KIND_W, CLI_ALIGN_LEFT, 2},
                             {"AGE", AGE_W, CLI_ALIGN_LEFT, 1},
                             {"EXPIRES", EXPIRES_W, CLI_ALIGN_LEFT, 1},
                         },
                         5, "DEVICES");

        for (size_t i = 0; i < n; i++) {
                json_t *l = json_array_get(leases, i);
                const char *user = cli_json_str(l, "user"), *kind = cli_json_str(l, "kind");
                char id[32], uid[32], age[32], exp[32], devices[1024];

                cli_text_field(f, cli_json_int_text(id, sizeof id, l, "id"), id_w, CLI_ALIGN_LEFT,
                               term->unicode);
                fputs("  ", f);
                /* No passwd entry: the uid is all there is. */
                cli_text_field(f, user ? user : cli_json_int_text(uid, sizeof uid, l, "uid"),
                               USER_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_field(f, kind ? kind : "-", KIND_W, CLI_ALIGN_LEFT, term->unicode);
                fputs("  ", f);
                cli_text_field(f, fmt_age(age, sizeof age, l, "created_at", now), AGE_W,
                               CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_field(f, fmt_expires(exp, sizeof exp, l, now), EXPIRES_W, CLI_ALIGN_LEFT,
                               term->unicode);
                fputc(' ', f);
                cli_text_clip(f, cli_lease_devices_short(devices, sizeof devices, l),
                              end > fixed ? end - fixed : 1, term->unicode);
                fputc('\n', f);
        }
        return 0;
}

int cli_lease_render(json_t *lease, FILE *f, const cli_term *term, double now)
{
        json_t *devices = json_object_get(lease, "devices");
        const char *kind = cli_json_str(lease, "kind");
        size_t n = json_array_size(devices);
        char id[32], span[32], when[64] = "";
        double at;

        if (!json_is_object(lease))
                return -EBADMSG;

        fprintf(f, "lease %s", cli_json_int_text(id, sizeof id, lease, "id"));
        fputs(" (", f);
        cli_text_clip(f, kind ? kind : "-", 16, term->unicode);
        fprintf(f, "): %zu device%s", n, n == 1 ? "" : "s");
        if (cli_json_num(lease, "share_bytes", &at))
                fprintf(f, ", shared: a budget of %.1f GiB", at / 1073741824.0);
        if (cli_json_num(lease, "expires_at", &at)) {
                time_t t = (time_t)MAX(MIN(at, 1e12), 0.0);
                struct tm tm;

                if (localtime_r(&t, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
                fprintf(f, ", expires %s (%s%s)", when[0] ? when : "-", at > now ? "in " : "",
                        at > now ? cli_format_span(span, sizeof span, at - now) : "expired");
        }
        fputc('\n', f);

        for (size_t i = 0; i < n; i++) {
                json_t *d = json_array_get(devices, i);
                const char *profile = cli_json_str(d, "profile"), *uuid = cli_json_str(d, "uuid");
                char idx[40], buf[32];

                snprintf(idx, sizeof idx, "[%s]",
                         cli_json_int_text(buf, sizeof buf, d, "gpu_index"));
                fputs("  ", f);
                cli_text_field(f, idx, 5, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_field(f, profile ? profile : "", 10, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_clip(f, uuid ? uuid : "-", line_end(term) - 19, term->unicode);
                fputc('\n', f);
        }
        return 0;
}

size_t cli_queue_render(json_t *queue, FILE *f, const cli_term *term, double now, size_t indent)
{
        size_t n = json_array_size(queue), end = line_end(term),
               fixed = indent + POS_W + 2 + USER_W + 1 + WANTS_W + 1 + WAITING_W + 1;

        if (n == 0)
                return 0;

        cli_text_spaces(f, indent);
        cli_text_heading(f, term,
                         (const cli_column[]){
                             {"POS", POS_W, CLI_ALIGN_RIGHT, 2},
                             {"USER", USER_W, CLI_ALIGN_LEFT, 1},
                             {"WANTS", WANTS_W, CLI_ALIGN_LEFT, 1},
                             {"WAITING", WAITING_W, CLI_ALIGN_LEFT, 1},
                         },
                         4, "REASON");

        for (size_t i = 0; i < n; i++) {
                json_t *q = json_array_get(queue, i);
                const char *user = cli_json_str(q, "user"), *wants = cli_json_str(q, "wants"),
                           *reason = cli_json_str(q, "reason");
                char pos[32], uid[32], age[32];

                cli_text_spaces(f, indent);
                cli_text_field(f, cli_json_int_text(pos, sizeof pos, q, "position"), POS_W,
                               CLI_ALIGN_RIGHT, term->unicode);
                fputs("  ", f);
                cli_text_field(f, user ? user : cli_json_int_text(uid, sizeof uid, q, "uid"),
                               USER_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_field(f, wants ? wants : "-", WANTS_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                cli_text_field(f, fmt_age(age, sizeof age, q, "since", now), WAITING_W,
                               CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                /* Cut to a terminal's width only: piped into grep or a file,
                 * the reason is what one searches for (issue 17). */
                if (term->tty)
                        cli_text_clip(f, reason ? reason : "-", end > fixed ? end - fixed : 1,
                                      term->unicode);
                else
                        cli_text_clip(f, reason ? reason : "-", SIZE_MAX / 2, term->unicode);
                fputc('\n', f);
        }
        return n;
}

void cli_sh_quote(FILE *f, const char *s)
{
        fputc('\'', f);
        for (; *s; s++) {
                if (*s == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*s, f);
        }
        fputc('\'', f);
}

/* A name the shell takes as a variable: [A-Za-z_][A-Za-z0-9_]*. */
static bool sh_name_ok(const char *s)
{
        if (!*s || (*s >= '0' && *s <= '9') || strlen(s) > 128)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

int cli_env_render(json_t *env, FILE *f)
{
        const char *name;
        json_t *value;

        if (!json_is_object(env) || json_object_size(env) == 0)
                return -EBADMSG;
        /* Check everything before printing anything: half an environment is
         * worse than none. */
        json_object_foreach(env, name, value) if (!sh_name_ok(name) || !json_is_string(value) ||
                                                  strlen(json_string_value(value)) !=
                                                      json_string_length(value)) return -EBADMSG;
        json_object_foreach(env, name, value)
        {
                fprintf(f, "export %s=", name);
                cli_sh_quote(f, json_string_value(value));
                fputc('\n', f);
        }
        return 0;
}
