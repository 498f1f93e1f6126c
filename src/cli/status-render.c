/* The text view of `gpukeeper status`. Layout, for an 80-column terminal:
 *
 *   gpu-node-01  driver 550.54.15  8 GPUs  SIMULATED                  19:34:38
 *   [0] NVIDIA A100-SXM4-80GB  GPU-5e2c1a3b…      34°C   61 W  37 %    6.0/80.0 GiB
 *          4242 alice        5.0 GiB  python train.py --epochs 10
 *   [2] NVIDIA A100-SXM4-80GB  GPU-22222222… MIG  40°C   90 W   - %   12.0/80.0 GiB
 *       ├─ 3g.40gb    MIG-1f0a2b3c…  gi 1 ci 0                         5.0/39.2 GiB
 *       │     4343 bob          5.0 GiB  python infer.py
 *       └─ 1g.10gb    MIG-9f9f9f9f…  gi 9 ci 0                          1.0/9.8 GiB
 *             4444 carol        1.0 GiB  jupyter-kernel
 *   [3] NVIDIA A100-SXM4-80GB  GPU-33333333…  UNHEALTHY
 *       nvmlDeviceGetMemoryInfo_v2: GPU is lost
 *
 * Fixed-width columns so that GPUs line up; only the last field of a line
 * (a command line, an error) grows on wider terminals. Unknown values (JSON
 * null) print as "-", never as 0: an idle GPU and an unreadable one must not
 * look alike. */
#include "cli/status-render.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Lines stop one column short of the terminal's width, so that none relies
 * on how the terminal wraps after its last column. On 80 columns that puts
 * the right-aligned memory column's end at 79. */
#define LINE_END (CLI_TERM_MIN_COLUMNS - 1)

#define UUID_W 13    /* "GPU-5e2c1a3b…": enough to tell GPUs apart */
#define MIG_W 3      /* "MIG" or blank */
#define TEMP_W 3     /* digits, then "°C" */
#define POWER_W 4    /* digits, then " W" (1000 W parts exist) */
#define UTIL_W 3     /* digits, then " %" */
#define MEM_W 15     /* "141.0/141.0 GiB" */
#define TREE_W 7     /* "    ├─ " */
#define PROFILE_W 10 /* "1g.10gb+me", "1c.3g.40gb" */
#define IDS_W 12     /* "gi 14 ci 0" */
#define PID_W 7      /* pid_max is at most 4194304 */
#define USER_W 10    /* longer login names are cut */
#define PMEM_W 9     /* "141.0 GiB" */

/* Everything on a GPU line except the index and the name. */
#define GPU_FIXED_W                                                                                \
        (1 + 2 + UUID_W + 1 + MIG_W + 1 + TEMP_W + 2 + 1 + POWER_W + 2 + 1 + UTIL_W + 2 + 1 + MEM_W)

/* A string member, or NULL when absent, not a string or empty: an empty
 * name (a lost GPU's, say) is as unknown as a missing one. */
static const char *get_str(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool get_num(json_t *o, const char *key, double *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_number(v))
                return false;
        *ret = json_number_value(v);
        return true;
}

/* `key` of `o` rounded to a whole number, or "-" when unknown. */
static const char *fmt_num(char *buf, size_t len, json_t *o, const char *key)
{
        double v;

        if (!get_num(o, key, &v))
                return "-";
        snprintf(buf, len, "%.0f", v);
        return buf;
}

static const char *fmt_gib(char *buf, size_t len, json_t *o, const char *key)
{
        double v;

        if (!get_num(o, key, &v))
                return "-";
        snprintf(buf, len, "%.1f", v / GIB);
        return buf;
}

/* "used/total GiB" right-aligned in MEM_W columns. */
static void print_memory(FILE *f, json_t *o, const cli_term *term)
{
        char used[32], total[32], both[80];

        snprintf(both, sizeof both, "%s/%s GiB", fmt_gib(used, sizeof used, o, "memory_used_bytes"),
                 fmt_gib(total, sizeof total, o, "memory_total_bytes"));
        cli_text_field(f, both, MEM_W, CLI_ALIGN_RIGHT, term->unicode);
}

/* A number right-aligned in `width` columns followed by its unit. */
static void print_quantity(FILE *f, json_t *o, const char *key, size_t width, const char *unit,
                           const cli_term *term)
{
        char buf[32];

        cli_text_field(f, fmt_num(buf, sizeof buf, o, key), width, CLI_ALIGN_RIGHT, term->unicode);
        fputs(unit, f);
}

static void print_header(FILE *f, json_t *status, size_t n_gpus, const cli_term *term)
{
        const char *host = get_str(status, "hostname"), *driver = get_str(status, "driver_version");
        bool nvml = json_is_true(json_object_get(status, "nvml_available"));
        size_t used;
        char count[32], clock[16] = "";
        double sampled;

        if (get_num(status, "sampled_at", &sampled) && isfinite(sampled)) {
                time_t t = (time_t)sampled;
                struct tm tm;

                if (localtime_r(&t, &tm))
                        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
        }

        cli_text_style(f, term, CLI_STYLE_BOLD);
        used = cli_text_clip(f, host ? host : "-", 24, term->unicode);
        cli_text_style(f, term, CLI_STYLE_RESET);
        if (driver) {
                fputs("  driver ", f);
                used += 9 + cli_text_clip(f, driver, 14, term->unicode);
        }
        if (nvml) {
                snprintf(count, sizeof count, "  %zu GPU%s", n_gpus, n_gpus == 1 ? "" : "s");
                used += cli_text_clip(f, count, 12, term->unicode);
        }
        if (json_is_true(json_object_get(status, "simulated"))) {
                fputs("  ", f);
                cli_text_style(f, term, CLI_STYLE_YELLOW);
                fputs("SIMULATED", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                used += 2 + 9;
        }
        if (clock[0]) {
                size_t w = strlen(clock);

                cli_text_spaces(f, used + 2 + w <= LINE_END ? LINE_END - used - w : 2);
                fputs(clock, f);
        }
        fputc('\n', f);
}

/* Processes by GPU memory, largest first; unknown memory last; then by pid
 * so the order is stable between runs. */
static int process_compare(const void *a, const void *b)
{
        json_t *pa = *(json_t *const *)a, *pb = *(json_t *const *)b;
        double ma = -1, mb = -1, ia = 0, ib = 0;

        get_num(pa, "memory_used_bytes", &ma);
        get_num(pb, "memory_used_bytes", &mb);
        if (ma != mb)
                return ma > mb ? -1 : 1;
        get_num(pa, "pid", &ia);
        get_num(pb, "pid", &ib);
        return ia < ib ? -1 : ia > ib;
}

/* One process line, after `prefix` (which takes `prefix_w` columns). */
static void print_process(FILE *f, json_t *p, const char *prefix, size_t prefix_w,
                          const cli_term *term)
{
        const char *user = get_str(p, "user"), *command = get_str(p, "command");
        bool vanished = json_is_true(json_object_get(p, "vanished"));
        char pid[32], uid[32], mem[32], what[64];
        size_t used = prefix_w + PID_W + 1 + USER_W + 1 + PMEM_W + 2;

        fputs(prefix, f);
        cli_text_field(f, fmt_num(pid, sizeof pid, p, "pid"), PID_W, CLI_ALIGN_RIGHT,
                       term->unicode);
        fputc(' ', f);
        /* No passwd entry (or the process is gone): the uid is all there is. */
        if (!user)
                user = fmt_num(uid, sizeof uid, p, "uid");
        cli_text_field(f, user, USER_W, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', f);
        snprintf(what, sizeof what, "%s GiB", fmt_gib(mem, sizeof mem, p, "memory_used_bytes"));
        cli_text_field(f, what, PMEM_W, CLI_ALIGN_RIGHT, term->unicode);
        fputs("  ", f);
        if (vanished) {
                cli_text_style(f, term, CLI_STYLE_DIM);
                fputs("(exited)", f);
                used += 8;
                if (command && used + 1 < term->columns) {
                        fputc(' ', f);
                        cli_text_clip(f, command, term->columns - used - 1, term->unicode);
                }
                cli_text_style(f, term, CLI_STYLE_RESET);
        } else {
                cli_text_clip(f, command ? command : "-", term->columns - used, term->unicode);
        }
        fputc('\n', f);
}

/* The processes in `procs` (sorted) that belong to MIG instance `uuid`, or
 * with uuid NULL those that belong to none of `instances`. */
static bool process_in(json_t *p, const char *uuid, json_t *instances)
{
        const char *in = get_str(p, "instance_uuid");

        if (uuid)
                return in && strcmp(in, uuid) == 0;
        if (!in)
                return true;
        for (size_t i = 0; i < json_array_size(instances); i++) {
                const char *u = get_str(json_array_get(instances, i), "uuid");

                if (u && strcmp(u, in) == 0)
                        return false;
        }
        return true;
}

static void print_instance(FILE *f, json_t *inst, bool last, json_t **procs, size_t n_procs,
                           const cli_term *term)
{
        const char *profile = get_str(inst, "profile"), *uuid = get_str(inst, "uuid");
        char gi[32], ci[32], ids[80];
        size_t used = TREE_W + PROFILE_W + 1 + UUID_W + 2 + IDS_W;

        fputs(term->unicode ? (last ? "    └─ " : "    ├─ ") : (last ? "    `- " : "    |- "), f);
        cli_text_field(f, profile ? profile : "-", PROFILE_W, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', f);
        cli_text_field(f, uuid ? uuid : "-", UUID_W, CLI_ALIGN_LEFT, term->unicode);
        fputs("  ", f);
        snprintf(ids, sizeof ids, "gi %s ci %s", fmt_num(gi, sizeof gi, inst, "gpu_instance_id"),
                 fmt_num(ci, sizeof ci, inst, "compute_instance_id"));
        cli_text_field(f, ids, IDS_W, CLI_ALIGN_LEFT, term->unicode);
        cli_text_spaces(f, LINE_END - MEM_W - used);
        print_memory(f, inst, term);
        fputc('\n', f);

        if (!uuid)
                return;
        for (size_t i = 0; i < n_procs; i++)
                if (process_in(procs[i], uuid, NULL))
                        print_process(f, procs[i],
                                      last ? "       " : (term->unicode ? "    │  " : "    |  "),
                                      TREE_W, term);
}

static int print_gpu(FILE *f, json_t *gpu, size_t index_w, const cli_term *term)
{
        json_t *instances = json_object_get(gpu, "instances"),
               *processes = json_object_get(gpu, "processes");
        const char *name = get_str(gpu, "name"), *uuid = get_str(gpu, "uuid"),
                   *error = get_str(gpu, "error");
        bool healthy = json_is_true(json_object_get(gpu, "healthy")),
             mig = json_is_true(json_object_get(gpu, "mig_enabled"));
        size_t name_w = LINE_END - index_w - GPU_FIXED_W, n_procs = json_array_size(processes),
               n_inst = json_array_size(instances), i;
        _cleanup_free_ json_t **procs = NULL;
        char idx[32], buf[32];

        procs = calloc(MAX(n_procs, (size_t)1), sizeof *procs);
        if (!procs)
                return -ENOMEM;
        for (i = 0; i < n_procs; i++)
                procs[i] = json_array_get(processes, i);
        qsort(procs, n_procs, sizeof *procs, process_compare);

        if (!healthy)
                cli_text_style(f, term, CLI_STYLE_RED);
        snprintf(idx, sizeof idx, "[%s]", fmt_num(buf, sizeof buf, gpu, "index"));
        cli_text_field(f, idx, index_w, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', f);
        cli_text_field(f, name ? name : "-", name_w, CLI_ALIGN_LEFT, term->unicode);
        fputs("  ", f);
        cli_text_field(f, uuid ? uuid : "-", UUID_W, CLI_ALIGN_LEFT, term->unicode);
        if (!healthy) {
                /* The reason goes on its own line: it is what the admin needs
                 * ("...: GPU is lost"), so it must not be cut short. */
                fputs("  UNHEALTHY", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                fputc('\n', f);
                cli_text_wrap(f, term, CLI_STYLE_RED, error ? error : "no reason given", 4);
        } else {
                fputc(' ', f);
                cli_text_field(f, mig ? "MIG" : "", MIG_W, CLI_ALIGN_LEFT, term->unicode);
                fputc(' ', f);
                print_quantity(f, gpu, "temperature_c", TEMP_W, term->unicode ? "°C" : " C", term);
                fputc(' ', f);
                print_quantity(f, gpu, "power_w", POWER_W, " W", term);
                fputc(' ', f);
                print_quantity(f, gpu, "utilization_gpu", UTIL_W, " %", term);
                fputc(' ', f);
                print_memory(f, gpu, term);
                fputc('\n', f);
                /* Healthy, but one reading failed: say which. */
                if (error)
                        cli_text_wrap(f, term, CLI_STYLE_YELLOW, error, 4);
        }

        for (i = 0; i < n_procs; i++)
                if (process_in(procs[i], NULL, instances))
                        print_process(f, procs[i], "    ", 4, term);
        for (i = 0; i < n_inst; i++)
                print_instance(f, json_array_get(instances, i), i + 1 == n_inst, procs, n_procs,
                               term);
        return 0;
}

int cli_status_render(json_t *status, FILE *f, const cli_term *full_term)
{
        cli_term narrowed = *full_term, *term = &narrowed;
        json_t *gpus = json_object_get(status, "gpus");
        const char *message = get_str(status, "message");
        size_t index_w = 3, i;
        int r;

        if (!json_is_object(status))
                return -EBADMSG;
        /* The fixed columns need 80; below that the arithmetic would wrap. */
        narrowed.columns = MAX(full_term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1;

        /* Room for the widest "[N]" so that names line up past GPU 9. */
        for (i = 0; i < json_array_size(gpus); i++) {
                json_t *gpu = json_array_get(gpus, i);
                char buf[32], idx[40];

                snprintf(idx, sizeof idx, "[%s]", fmt_num(buf, sizeof buf, gpu, "index"));
                index_w = MAX(index_w, MIN(strlen(idx), (size_t)6));
        }

        print_header(f, status, json_array_size(gpus), term);

        if (!json_is_true(json_object_get(status, "nvml_available"))) {
                cli_text_wrap(f, term, CLI_STYLE_RED,
                              message ? message : "NVML is not available on this host.", 0);
                return 0;
        }
        if (message)
                cli_text_wrap(f, term, CLI_STYLE_YELLOW, message, 0);
        if (json_array_size(gpus) == 0) {
                fputs("No GPUs found.\n", f);
                return 0;
        }
        for (i = 0; i < json_array_size(gpus); i++) {
                r = print_gpu(f, json_array_get(gpus, i), index_w, term);
                if (r < 0)
                        return r;
        }
        return 0;
}
