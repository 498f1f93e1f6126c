/* `gpukeeper top`: a full-screen, read-only view of the daemon's status,
 * fetched again every interval: GPUs and MIG instances with memory and
 * utilisation bars, holder and expiry; the processes with user, command and
 * GPU memory, use without a lease marked "!" (and in red where the terminal
 * has colour); the queue. It only ever calls the `status` operation, so it
 * can act on nothing.
 *
 * The screen is one title line, a scrolling body and one line of keys. Every
 * line is laid out to end one column short of the terminal's width (at least
 * 79 columns, so 80x24 over ssh shows everything but long command lines);
 * narrower terminals cut lines. All text from the daemon goes through
 * cli/text.h's filter before it reaches the terminal. */
#include <curses.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "cli/cli.h"
#include "cli/lease-render.h"
#include "cli/top.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

#define INTERVAL_MIN 0.1
#define INTERVAL_MAX 3600.0
#define FILTER_MAX 64 /* login names are at most 32 bytes */

/* The layout of a device line: index, name, memory bar and numbers,
 * utilisation bar and percent, holder, expiry: 79 columns in all
 * (build_lines() prints the heading from the same widths). */
#define DEV_W 6
#define NAME_W 14
#define BAR_W 8
#define MEMTXT_W 10
#define UBAR_W 6
#define UTIL_W 5
#define HOLDER_W 12
#define EXPIRES_W 8
/* Process lines: mark, pid, user, device, memory, then the command. */
#define PID_W 7
#define USER_W 12
#define PDEV_W 6
#define PMEM_W 8
#define LAYOUT_W (CLI_TERM_MIN_COLUMNS - 1)

typedef enum sort_key {
        SORT_MEMORY,
        SORT_PID,
        SORT_USER,
} sort_key;

static const char *const sort_names[] = {
    [SORT_MEMORY] = "memory",
    [SORT_PID] = "pid",
    [SORT_USER] = "user",
};

/* Colour pairs, when the terminal has colour and $NO_COLOR is not set. */
enum {
        PAIR_ALERT = 1,
        PAIR_WARN,
};

/* One body line: its text (already filtered) and curses attributes. */
typedef struct top_line {
        char *text;
        attr_t attr;
} top_line;

typedef struct top_state {
        const cli_context *ctx;
        gk_client *client;
        json_t *status;  /* the latest status result, NULL before the first */
        char error[640]; /* why the last refresh failed, "" when it did not */
        double interval; /* seconds between refreshes */
        sort_key sort;
        char filter[FILTER_MAX + 1]; /* show only this user's processes and queue, "" for all */
        bool editing;                /* the filter is being typed on the key line */
        char edit[FILTER_MAX + 1];
        size_t scroll; /* first body line shown */
        bool color;
        bool unicode;
        top_line *lines;
        size_t n_lines;
} top_state;

void cli_top_usage(FILE *f)
{
        fputs("Usage: gpukeeper top [--interval SECONDS] [--user USER] [--socket PATH]\n"
              "\n"
              "A live, full-screen view of this server's GPUs and MIG instances (memory and\n"
              "utilisation bars, holder, expiry), their processes (user, command, GPU memory;\n"
              "use without a lease marked \"!\") and the queue, refreshed every interval.\n"
              "Read-only: it shows, it never acts.\n"
              "\n"
              "Keys:\n"
              "  m, p, u        sort processes by GPU memory, pid or user\n"
              "  /              show one user's processes and queue entries (empty: all)\n"
              "  arrows, PgUp, PgDn, Home, End  scroll\n"
              "  q              quit\n"
              "\n"
              "Options:\n"
              "  --interval SECONDS  refresh every SECONDS (default 2)\n"
              "  --user USER         start filtered to USER\n"
              "  --socket PATH       talk to the daemon at PATH\n"
              "  -h, --help          show this help\n"
              "\n"
              "Colour only on a terminal that has it, never with $NO_COLOR set.\n",
              f);
}

static double now_realtime(void)
{
        return (double)now_usec(CLOCK_REALTIME) / USEC_PER_SEC;
}

static double now_monotonic(void)
{
        return (double)now_usec(CLOCK_MONOTONIC) / USEC_PER_SEC;
}

static void lines_clear(top_state *s)
{
        for (size_t i = 0; i < s->n_lines; i++)
                free(s->lines[i].text);
        free(s->lines);
        s->lines = NULL;
        s->n_lines = 0;
}

/* Append the text written to a memstream as a body line. On allocation
 * failure the line is dropped: the view shows less, it does not stop. */
static void line_add(top_state *s, char *text, attr_t attr)
{
        top_line *l;

        if (!text)
                return;
        l = reallocarray(s->lines, s->n_lines + 1, sizeof *s->lines);
        if (!l) {
                free(text);
                return;
        }
        s->lines = l;
        s->lines[s->n_lines++] = (top_line){.text = text, .attr = attr};
}

/* A memstream to lay one line out in; line_end() hands it to line_add(). */
typedef struct line_buf {
        FILE *f;
        char *buf;
        size_t len;
} line_buf;

static bool line_begin(line_buf *b)
{
        *b = (line_buf){};
        b->f = open_memstream(&b->buf, &b->len);
        return b->f != NULL;
}

static void line_end(top_state *s, line_buf *b, attr_t attr)
{
        if (fclose(b->f) != 0) {
                free(b->buf);
                return;
        }
        line_add(s, b->buf, attr);
}

static attr_t alert_attr(const top_state *s)
{
        return s->color ? (attr_t)(COLOR_PAIR(PAIR_ALERT) | A_BOLD) : (attr_t)(A_BOLD | A_REVERSE);
}

static attr_t warn_attr(const top_state *s)
{
        return s->color ? (attr_t)COLOR_PAIR(PAIR_WARN) : (attr_t)A_BOLD;
}

/* "[#####     ]": `fraction` of `width` cells filled; "[   -   ]"-like
 * blanks when unknown (fraction < 0). */
static void print_bar(FILE *f, double fraction, size_t width)
{
        size_t filled = 0;

        if (fraction >= 0) {
                if (fraction > 1)
                        fraction = 1;
                filled = (size_t)(fraction * (double)width + 0.5);
        }
        fputc('[', f);
        for (size_t i = 0; i < width; i++)
                fputc(i < filled ? '#' : (fraction < 0 ? '-' : ' '), f);
        fputc(']', f);
}

/* Memory bar and "used/totalG" for an object with memory_*_bytes. */
static void print_memory(FILE *f, json_t *o, bool unicode)
{
        double used, total;
        char text[64];
        bool have_used = cli_json_num(o, "memory_used_bytes", &used),
             have_total = cli_json_num(o, "memory_total_bytes", &total);

        print_bar(f, have_used && have_total && total > 0 ? used / total : -1, BAR_W);
        if (have_used && have_total)
                snprintf(text, sizeof text, "%.1f/%.0fG", used / GIB, total / GIB);
        else if (have_total)
                snprintf(text, sizeof text, "-/%.0fG", total / GIB);
        else
                snprintf(text, sizeof text, "-");
        fputc(' ', f);
        cli_text_field(f, text, MEMTXT_W, CLI_ALIGN_RIGHT, unicode);
}

static void print_util(FILE *f, json_t *o, bool unicode)
{
        double u;
        char text[16] = "-";
        bool have = cli_json_num(o, "utilization_gpu", &u);

        print_bar(f, have ? u / 100.0 : -1, UBAR_W);
        if (have)
                snprintf(text, sizeof text, "%.0f%%", u);
        cli_text_field(f, text, UTIL_W, CLI_ALIGN_RIGHT, unicode);
}

/* Whether process `p` uses its device without its owner holding the lease:
 * an explicit leased=false (an exited process holds nothing), or an open
 * violation. */
static bool process_unleased(json_t *p)
{
        json_t *v = json_object_get(p, "violation");

        if (json_is_object(v) && !cli_json_str(v, "outcome"))
                return true;
        return json_is_false(json_object_get(p, "leased")) &&
               !json_is_true(json_object_get(p, "vanished"));
}

/* Whether one of `gpu`'s processes runs on `instance_uuid` (NULL: on the
 * whole GPU) without a lease. */
static bool device_unleased_use(json_t *gpu, const char *instance_uuid)
{
        json_t *procs = json_object_get(gpu, "processes"), *p;
        size_t i;

        json_array_foreach(procs, i, p)
        {
                const char *inst = cli_json_str(p, "instance_uuid");

                if (instance_uuid && (!inst || strcmp(inst, instance_uuid) != 0))
                        continue;
                if (process_unleased(p))
                        return true;
        }
        return false;
}

/* Holder and expiry columns of a device (a GPU or a MIG instance). */
static attr_t print_holder(top_state *s, FILE *f, json_t *dev, bool unleased, double now)
{
        json_t *lease = json_object_get(dev, "lease");
        json_t *shared = json_object_get(json_object_get(dev, "shared"), "leases");
        const char *holder = "-", *expires = "";
        char span[32], n_shared[32];
        double at;
        attr_t attr = A_NORMAL;

        if (json_array_size(shared) > 0) {
                /* Shared leases: one line each below (add_gpu). */
                snprintf(n_shared, sizeof n_shared, "shared (%zu)", json_array_size(shared));
                holder = n_shared;
        } else if (json_is_object(lease)) {
                holder = cli_json_str(lease, "user") ?: "?";
                if (cli_json_num(lease, "expires_at", &at))
                        expires = cli_format_span(span, sizeof span, at - now);
                else
                        expires = "run";
        } else if (json_is_true(json_object_get(dev, "drained"))) {
                holder = "drained";
                attr = warn_attr(s);
        }
        if (unleased) {
                if (!json_is_object(lease))
                        holder = "UNLEASED";
                attr = alert_attr(s);
        }
        cli_text_field(f, holder, HOLDER_W, CLI_ALIGN_LEFT, s->unicode);
        fputc(' ', f);
        cli_text_clip(f, expires, EXPIRES_W, s->unicode);
        return attr;
}

/* A heading line from (title, width, alignment) columns, the last one
 * taking what is left. */
static void add_heading(top_state *s, const cli_column *columns, size_t n)
{
        line_buf b;

        if (!line_begin(&b))
                return;
        for (size_t i = 0; i < n; i++) {
                if (i + 1 == n)
                        fputs(columns[i].title, b.f);
                else
                        cli_text_field(b.f, columns[i].title, columns[i].width, columns[i].align,
                                       false);
                cli_text_spaces(b.f, columns[i].gap);
        }
        line_end(s, &b, A_BOLD | A_UNDERLINE);
}

static void add_gpu(top_state *s, json_t *gpu, double now)
{
        json_t *instances = json_object_get(gpu, "instances"), *inst;
        bool mig = json_is_true(json_object_get(gpu, "mig_enabled"));
        char idx[32], label[80];
        const char *name;
        line_buf b;
        attr_t attr;
        size_t i;

        cli_json_int_text(idx, sizeof idx, gpu, "index");
        if (!line_begin(&b))
                return;
        cli_text_field(b.f, idx, DEV_W, CLI_ALIGN_LEFT, s->unicode);
        name = cli_json_str(gpu, "name") ?: "?";
        if (strncmp(name, "NVIDIA ", 7) == 0)
                name += 7;
        cli_text_field(b.f, name, NAME_W, CLI_ALIGN_LEFT, s->unicode);
        fputc(' ', b.f);
        print_memory(b.f, gpu, s->unicode);
        fputc(' ', b.f);
        print_util(b.f, gpu, s->unicode);
        fputc(' ', b.f);
        if (!json_is_true(json_object_get(gpu, "healthy"))) {
                fputs("UNHEALTHY", b.f);
                attr = alert_attr(s);
        } else if (mig) {
                fputs("MIG", b.f);
                attr = A_BOLD;
        } else {
                attr = print_holder(s, b.f, gpu, device_unleased_use(gpu, NULL), now);
        }
        line_end(s, &b, attr);

        /* A shared GPU: each lease's use of its budget, as a bar. */
        json_array_foreach(json_object_get(json_object_get(gpu, "shared"), "leases"), i, inst)
        {
                json_t *mem;
                double budget = 0, use = 0;
                char id[32];

                (void)cli_json_num(inst, "share_bytes", &budget);
                (void)cli_json_num(inst, "memory_used_bytes", &use);
                mem = json_pack("{s:f, s:f}", "memory_total_bytes", budget, "memory_used_bytes",
                                use);
                if (!mem || !line_begin(&b)) {
                        json_decref(mem);
                        return;
                }
                snprintf(label, sizeof label, " %s", idx);
                cli_text_field(b.f, label, DEV_W, CLI_ALIGN_LEFT, s->unicode);
                cli_text_field(b.f, cli_json_str(inst, "user") ?: "?", NAME_W, CLI_ALIGN_LEFT,
                               s->unicode);
                fputc(' ', b.f);
                print_memory(b.f, mem, s->unicode);
                json_decref(mem);
                fputc(' ', b.f);
                print_util(b.f, inst, s->unicode); /* no utilisation per lease: "-" */
                fputc(' ', b.f);
                snprintf(label, sizeof label, "lease %s",
                         cli_json_int_text(id, sizeof id, inst, "id"));
                cli_text_field(b.f, label, HOLDER_W, CLI_ALIGN_LEFT, s->unicode);
                fputc(' ', b.f);
                attr = A_NORMAL;
                if (json_is_true(json_object_get(inst, "over_budget"))) {
                        cli_text_clip(b.f, "OVER", EXPIRES_W, s->unicode);
                        attr = alert_attr(s);
                }
                line_end(s, &b, attr);
        }

        json_array_foreach(instances, i, inst)
        {
                char gi[32];

                snprintf(label, sizeof label, " %s/%s", idx,
                         cli_json_int_text(gi, sizeof gi, inst, "gpu_instance_id"));
                if (!line_begin(&b))
                        return;
                cli_text_field(b.f, label, DEV_W, CLI_ALIGN_LEFT, s->unicode);
                cli_text_field(b.f, cli_json_str(inst, "profile") ?: "?", NAME_W, CLI_ALIGN_LEFT,
                               s->unicode);
                fputc(' ', b.f);
                print_memory(b.f, inst, s->unicode);
                fputc(' ', b.f);
                print_util(b.f, inst, s->unicode);
                fputc(' ', b.f);
                attr = print_holder(
                    s, b.f, inst, device_unleased_use(gpu, cli_json_str(inst, "uuid") ?: ""), now);
                line_end(s, &b, attr);
        }
}

/* A process with where it runs, for sorting. */
typedef struct top_proc {
        json_t *p;
        char dev[80];
} top_proc;

static int compare_memory(const top_proc *a, const top_proc *b)
{
        double ma = -1, mb = -1;

        cli_json_num(a->p, "memory_used_bytes", &ma);
        cli_json_num(b->p, "memory_used_bytes", &mb);
        return ma > mb ? -1 : ma < mb;
}

static int compare_pid(const top_proc *a, const top_proc *b)
{
        double pa = 0, pb = 0;

        cli_json_num(a->p, "pid", &pa);
        cli_json_num(b->p, "pid", &pb);
        return pa < pb ? -1 : pa > pb;
}

static int compare_user(const top_proc *a, const top_proc *b)
{
        return strcmp(cli_json_str(a->p, "user") ?: "", cli_json_str(b->p, "user") ?: "");
}

/* qsort_r comparator: the chosen key first, then memory and pid so the
 * order is stable between refreshes. */
static int compare_procs(const void *x, const void *y, void *userdata)
{
        const top_proc *a = x, *b = y;
        sort_key key = *(const sort_key *)userdata;
        int r = 0;

        if (key == SORT_PID)
                return compare_pid(a, b);
        if (key == SORT_USER)
                r = compare_user(a, b);
        if (r == 0)
                r = compare_memory(a, b);
        return r != 0 ? r : compare_pid(a, b);
}

static bool user_shown(const top_state *s, json_t *o)
{
        const char *user = cli_json_str(o, "user");

        return s->filter[0] == '\0' || (user && strcmp(user, s->filter) == 0);
}

/* "0" for a whole GPU, "1/2" for MIG instance gi 2 of GPU 1. */
static void process_device(char *buf, size_t len, json_t *gpu, json_t *p)
{
        const char *inst_uuid = cli_json_str(p, "instance_uuid");
        json_t *inst;
        char idx[32];
        size_t i;

        cli_json_int_text(idx, sizeof idx, gpu, "index");
        snprintf(buf, len, "%s", idx);
        if (!inst_uuid)
                return;
        json_array_foreach(json_object_get(gpu, "instances"), i, inst)
        {
                char gi[32];

                if (strcmp(cli_json_str(inst, "uuid") ?: "", inst_uuid) == 0) {
                        snprintf(buf, len, "%s/%s", idx,
                                 cli_json_int_text(gi, sizeof gi, inst, "gpu_instance_id"));
                        return;
                }
        }
}

static void add_processes(top_state *s, json_t *gpus, size_t width)
{
        _cleanup_free_ top_proc *procs = NULL;
        size_t n = 0, cap = 0, i, j;
        json_t *gpu, *p;
        line_buf b;

        json_array_foreach(gpus, i, gpu)
        {
                json_array_foreach(json_object_get(gpu, "processes"), j, p)
                {
                        if (!json_is_object(p) || !user_shown(s, p))
                                continue;
                        if (n == cap) {
                                top_proc *np;

                                cap = cap ? cap * 2 : 32;
                                np = reallocarray(procs, cap, sizeof *procs);
                                if (!np)
                                        goto render;
                                procs = np;
                        }
                        procs[n].p = p;
                        process_device(procs[n].dev, sizeof procs[n].dev, gpu, p);
                        n++;
                }
        }
render:
        if (n > 0)
                qsort_r(procs, n, sizeof *procs, compare_procs, &s->sort);

        add_heading(s,
                    (const cli_column[]){
                        {"", 2, CLI_ALIGN_LEFT, 0},
                        {"PID", PID_W, CLI_ALIGN_LEFT, 1},
                        {"USER", USER_W, CLI_ALIGN_LEFT, 1},
                        {"GPU", PDEV_W, CLI_ALIGN_LEFT, 0},
                        {"MEMORY", PMEM_W, CLI_ALIGN_RIGHT, 1},
                        {"COMMAND", 0, CLI_ALIGN_LEFT, 0},
                    },
                    6);
        if (n == 0) {
                if (line_begin(&b)) {
                        fputs(s->filter[0] ? "  (no processes of this user)" : "  (no processes)",
                              b.f);
                        line_end(s, &b, A_DIM);
                }
                return;
        }
        for (i = 0; i < n; i++) {
                bool unleased = process_unleased(procs[i].p);
                char pid[32], mem[32] = "-";
                double m;

                if (!line_begin(&b))
                        return;
                fputs(unleased ? "! " : "  ", b.f);
                cli_text_field(b.f, cli_json_int_text(pid, sizeof pid, procs[i].p, "pid"), PID_W,
                               CLI_ALIGN_LEFT, s->unicode);
                fputc(' ', b.f);
                cli_text_field(b.f, cli_json_str(procs[i].p, "user") ?: "?", USER_W, CLI_ALIGN_LEFT,
                               s->unicode);
                fputc(' ', b.f);
                cli_text_field(b.f, procs[i].dev, PDEV_W, CLI_ALIGN_LEFT, s->unicode);
                if (cli_json_num(procs[i].p, "memory_used_bytes", &m))
                        snprintf(mem, sizeof mem, "%.1fG", m / GIB);
                cli_text_field(b.f, mem, PMEM_W, CLI_ALIGN_RIGHT, s->unicode);
                fputc(' ', b.f);
                cli_text_clip(b.f, cli_json_str(procs[i].p, "command") ?: "-",
                              width - (2 + PID_W + 1 + USER_W + 1 + PDEV_W + PMEM_W + 1),
                              s->unicode);
                line_end(s, &b, unleased ? alert_attr(s) : A_NORMAL);
        }
}

static void add_queue(top_state *s, json_t *queue, double now, size_t width)
{
        _cleanup_(json_decrefp) json_t *shown = json_array();
        FILE *f;
        char *buf = NULL;
        size_t len = 0, i;
        json_t *q;

        if (!shown)
                return;
        json_array_foreach(queue, i, q) if (json_is_object(q) && user_shown(s, q))
            json_array_append(shown, q);
        add_heading(s, (const cli_column[]){{"QUEUE", 0, CLI_ALIGN_LEFT, 0}}, 1);
        if (json_array_size(shown) == 0) {
                line_add(
                    s,
                    strdup(s->filter[0] ? "  (none waiting of this user)" : "  (nobody waiting)"),
                    A_DIM);
                return;
        }
        /* The same table as `gpukeeper queue`, one body line per line. */
        f = open_memstream(&buf, &len);
        if (!f)
                return;
        cli_queue_render(shown, f, &(cli_term){.unicode = s->unicode, .columns = width + 1, .tty = true}, now,
                         2);
        if (fclose(f) != 0) {
                free(buf);
                return;
        }
        for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                line_add(s, strdup(line), A_NORMAL);
        }
        free(buf);
}

/* Lay the body out from the latest status. */
static void build_lines(top_state *s, size_t width)
{
        json_t *gpus, *gpu;
        double now = now_realtime();
        line_buf b;
        size_t i;

        lines_clear(s);
        if (!s->status)
                return;
        if (!json_is_true(json_object_get(s->status, "nvml_available")) &&
            json_object_get(s->status, "nvml_available") && line_begin(&b)) {
                fputs("NVML not available: ", b.f);
                cli_text_clip(b.f, cli_json_str(s->status, "message") ?: "-", width - 20,
                              s->unicode);
                line_end(s, &b, alert_attr(s));
        }
        add_heading(s,
                    (const cli_column[]){
                        {"GPU", DEV_W, CLI_ALIGN_LEFT, 0},
                        {"NAME", NAME_W, CLI_ALIGN_LEFT, 1},
                        {"MEMORY", BAR_W + 2 + 1 + MEMTXT_W, CLI_ALIGN_LEFT, 1},
                        {"UTIL", UBAR_W + 2 + UTIL_W, CLI_ALIGN_LEFT, 1},
                        {"HOLDER", HOLDER_W, CLI_ALIGN_LEFT, 1},
                        {"EXPIRES", 0, CLI_ALIGN_LEFT, 0},
                    },
                    6);
        gpus = json_object_get(s->status, "gpus");
        json_array_foreach(gpus, i, gpu) if (json_is_object(gpu)) add_gpu(s, gpu, now);
        line_add(s, strdup(""), A_NORMAL);
        add_processes(s, gpus, width);
        line_add(s, strdup(""), A_NORMAL);
        add_queue(s, json_object_get(s->status, "queue"), now, width);
}

/* Write `text` at row `y`, cut to the screen's width less one column. */
static void put_line(const top_state *s, int y, const char *text, attr_t attr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;

        move(y, 0);
        clrtoeol();
        if (COLS < 2)
                return;
        f = open_memstream(&buf, &len);
        if (!f)
                return;
        cli_text_clip(f, text, (size_t)COLS - 1, s->unicode);
        if (fclose(f) != 0)
                return;
        attrset(attr);
        addstr(buf);
        attrset(A_NORMAL);
}

static size_t body_rows(void)
{
        return LINES > 2 ? (size_t)(LINES - 2) : 0;
}

static void draw(top_state *s)
{
        size_t width = COLS - 1 > LAYOUT_W ? (size_t)COLS - 1 : LAYOUT_W, rows = body_rows(), max;
        char title[512], keys[256], clock[16] = "";
        const char *host = s->status ? cli_json_str(s->status, "hostname") : NULL;
        time_t t = time(NULL);
        struct tm tm;

        if (width > CLI_TERM_MAX_COLUMNS)
                width = CLI_TERM_MAX_COLUMNS;
        build_lines(s, width);
        max = s->n_lines > rows ? s->n_lines - rows : 0;
        if (s->scroll > max)
                s->scroll = max;

        erase();
        if (localtime_r(&t, &tm))
                strftime(clock, sizeof clock, "%H:%M:%S", &tm);
        snprintf(title, sizeof title, "gpukeeper top  %s  %s  every %gs  sort: %s%s%s", host ?: "",
                 clock, s->interval, sort_names[s->sort], s->filter[0] ? "  user: " : "",
                 s->filter);
        put_line(s, 0, title, A_REVERSE | A_BOLD);

        for (size_t i = 0; i < rows && s->scroll + i < s->n_lines; i++)
                put_line(s, (int)i + 1, s->lines[s->scroll + i].text, s->lines[s->scroll + i].attr);

        if (s->editing) {
                snprintf(keys, sizeof keys,
                         "filter by user (Enter: apply, empty: all, Esc: cancel): %s", s->edit);
                put_line(s, LINES - 1, keys, A_BOLD);
                curs_set(1);
        } else if (s->error[0]) {
                put_line(s, LINES - 1, s->error, alert_attr(s));
                curs_set(0);
        } else {
                snprintf(keys, sizeof keys,
                         "q quit  m/p/u sort  / user  arrows PgUp PgDn scroll  %zu-%zu/%zu",
                         s->n_lines ? s->scroll + 1 : 0,
                         s->scroll + rows < s->n_lines ? s->scroll + rows : s->n_lines, s->n_lines);
                put_line(s, LINES - 1, keys, A_REVERSE);
                curs_set(0);
        }
        refresh();
}

/* Fetch the status again. A failure keeps the last status on screen, says
 * why on the key line and connects afresh next time, so the view survives a
 * daemon restart. */
static void fetch(top_state *s)
{
        gk_call_error error = {};
        json_t *result = NULL;
        int r;

        if (!s->client) {
                r = gk_client_connect(gk_socket_path(s->ctx->socket_arg), &s->client);
                if (r < 0) {
                        snprintf(s->error, sizeof s->error, "cannot reach gpukeeperd: %s; retrying",
                                 strerror(-r));
                        return;
                }
        }
        r = gk_client_call(s->client, "status", NULL, &result, &error);
        if (r == 0) {
                json_decref(s->status);
                s->status = result;
                s->error[0] = '\0';
                return;
        }
        if (r > 0) {
                error.message[sizeof error.message - 1] = '\0';
                snprintf(s->error, sizeof s->error, "status: %s",
                         error.message[0] ? error.message : gk_error_name(r));
        } else
                snprintf(s->error, sizeof s->error, "lost gpukeeperd: %s; retrying", strerror(-r));
        gk_client_free(s->client);
        s->client = NULL;
}

/* Handle one key while the filter is typed. */
static void edit_key(top_state *s, int ch)
{
        size_t len = strlen(s->edit);

        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
                memcpy(s->filter, s->edit, sizeof s->filter);
                s->editing = false;
                s->scroll = 0;
        } else if (ch == 27) {
                s->editing = false;
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
                if (len > 0)
                        s->edit[len - 1] = '\0';
        } else if (ch > ' ' && ch < 127 && len < FILTER_MAX) {
                /* Login names are printable ASCII without spaces. */
                s->edit[len] = (char)ch;
                s->edit[len + 1] = '\0';
        }
}

/* Handle one key; returns false when it is time to quit. */
static bool key(top_state *s, int ch)
{
        size_t rows = body_rows(), page = rows > 1 ? rows - 1 : 1;

        if (s->editing) {
                edit_key(s, ch);
                return true;
        }
        switch (ch) {
        case 'q':
        case 'Q':
                return false;
        case 'm':
                s->sort = SORT_MEMORY;
                break;
        case 'p':
                s->sort = SORT_PID;
                break;
        case 'u':
                s->sort = SORT_USER;
                break;
        case '/':
                s->editing = true;
                memcpy(s->edit, s->filter, sizeof s->edit);
                break;
        case KEY_UP:
                if (s->scroll > 0)
                        s->scroll--;
                break;
        case KEY_DOWN:
                s->scroll++; /* draw() clamps */
                break;
        case KEY_PPAGE:
                s->scroll = s->scroll > page ? s->scroll - page : 0;
                break;
        case KEY_NPAGE:
                s->scroll += page;
                break;
        case KEY_HOME:
                s->scroll = 0;
                break;
        case KEY_END:
                s->scroll = SIZE_MAX / 2;
                break;
        default:
                break;
        }
        return true;
}

static int parse_interval(const char *arg, double *ret)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0' || !isfinite(v) || v < INTERVAL_MIN ||
            v > INTERVAL_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void setup_colors(top_state *s)
{
        const char *no_color = getenv("NO_COLOR");

        s->color = false;
        if ((no_color && no_color[0]) || !has_colors() || start_color() != OK)
                return;
        use_default_colors();
        init_pair(PAIR_ALERT, COLOR_RED, -1);
        init_pair(PAIR_WARN, COLOR_YELLOW, -1);
        s->color = true;
}

/* The curses session: draw, wait for a key or the next refresh, repeat. */
static int run_screen(top_state *s)
{
        double next = now_monotonic() + s->interval;
        cli_term term;

        cli_term_detect(stdout, &term);
        s->unicode = term.unicode;
        if (!initscr())
                return CLI_EXIT_SOFTWARE;
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        set_escdelay(25);
        setup_colors(s);
        curs_set(0);

        draw(s);
        for (;;) {
                double left = next - now_monotonic();
                int ch;

                if (left <= 0) {
                        fetch(s);
                        next = now_monotonic() + s->interval;
                        draw(s);
                        continue;
                }
                timeout((int)(left * 1000) + 1);
                ch = getch();
                if (ch == ERR)
                        continue;
                if (ch != KEY_RESIZE && !key(s, ch))
                        break;
                draw(s);
        }
        endwin();
        return CLI_EXIT_OK;
}

int cli_top_main(cli_context *ctx, int argc, char *argv[])
{
        enum { ARG_INTERVAL = CLI_ARG_VERB_FIRST, ARG_USER };
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"interval", required_argument, NULL, ARG_INTERVAL},
            {"user", required_argument, NULL, ARG_USER},
            {},
        };
        top_state s = {.ctx = ctx, .interval = 2.0, .sort = SORT_MEMORY};
        int c, r;

        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_INTERVAL:
                        if (parse_interval(optarg, &s.interval) < 0)
                                return cli_usage_error("top",
                                                       "--interval takes seconds from %g to %g, "
                                                       "not '%s'",
                                                       INTERVAL_MIN, INTERVAL_MAX, optarg);
                        break;
                case ARG_USER:
                        if (strlen(optarg) == 0 || strlen(optarg) > FILTER_MAX)
                                return cli_usage_error("top",
                                                       "--user takes a user name of 1 to %d "
                                                       "characters",
                                                       FILTER_MAX);
                        memcpy(s.filter, optarg, strlen(optarg) + 1);
                        break;
                default:
                        r = cli_common_option(ctx, "top", cli_top_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind < argc)
                return cli_usage_error("top", "unexpected argument '%s'", argv[optind]);
        if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
                return cli_usage_error("top", "needs a terminal; for scripts use 'gpukeeper status "
                                              "--json'");

        /* The first status before the screen takes over, so that a daemon that
         * cannot be reached is reported as every other subcommand does. */
        r = cli_connect(ctx, &s.client);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_call(ctx, s.client, "status", NULL, &s.status);
        if (r == CLI_EXIT_OK)
                r = run_screen(&s);
        lines_clear(&s);
        json_decref(s.status);
        gk_client_free(s.client);
        return r;
}
