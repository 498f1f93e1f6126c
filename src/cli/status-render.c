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
 * With a daemon that knows leases, a line under each GPU (not in MIG mode)
 * and each MIG instance says who holds it, and the queue follows the GPUs:
 *
 *   [0] NVIDIA A100-SXM4-80GB  GPU-5e2c1a3b…      34°C   61 W  37 %    6.0/80.0 GiB
 *       alice run 2h13m (lease 12)
 *          4242 alice        5.0 GiB  python train.py --epochs 10
 *   [1] NVIDIA A100-SXM4-80GB  GPU-11111111…      31°C   56 W   0 %    0.5/80.0 GiB
 *       DRAINED  IN USE WITHOUT LEASE: mallory
 *          5151 mallory      0.5 GiB  (no lease) ./miner
 *       ├─ 3g.40gb    MIG-1f0a2b3c…  gi 1 ci 0                         5.0/39.2 GiB
 *       │  bob manual, 1h left (lease 13)
 *       │     4343 bob          5.0 GiB  python infer.py
 *       └─ 1g.10gb    MIG-9f9f9f9f…  gi 9 ci 0                          0.0/9.8 GiB
 *             free
 *
 *   Queue: 1 waiting
 *   POS  USER       WANTS           WAITING  REASON
 *     1  carol      2 GPUs          12m      waiting for 2 GPUs: 1 free
 *
 * A process the daemon has opened a violation for (its owner holds no lease
 * on the device) gets a second line, under its command, that says what will
 * happen to it: "VIOLATION: stop at 12:03:04", "VIOLATION: SIGTERM sent",
 * "VIOLATION: SIGKILL sent", or "VIOLATION: observed" when the daemon only
 * records:
 *
 *          5151 mallory      0.5 GiB  (no lease) ./miner
 *                                     VIOLATION: stop at 12:03:04
 *
 * A lease found idle is marked after it: "IDLE: release warned" (a manual
 * lease about to be released) or "IDLE" (a run lease flagged).
 *
 * Fixed-width columns so that GPUs line up; only the last field of a line
 * (a command line, an error) grows on wider terminals. Unknown values (JSON
 * null) print as "-", never as 0: an idle GPU and an unreadable one must not
 * look alike. */
#include "cli/status-render.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "cli/lease-render.h"

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

static const char *fmt_gib(char *buf, size_t len, json_t *o, const char *key)
{
        double v;

        if (!cli_json_num(o, key, &v))
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

        cli_text_field(f, cli_json_int_text(buf, sizeof buf, o, key), width, CLI_ALIGN_RIGHT,
                       term->unicode);
        fputs(unit, f);
}

static void print_header(FILE *f, json_t *status, size_t n_gpus, const cli_term *term)
{
        const char *host = cli_json_str(status, "hostname"),
                   *driver = cli_json_str(status, "driver_version");
        bool nvml = json_is_true(json_object_get(status, "nvml_available"));
        size_t used;
        char count[32], clock[16] = "";
        double sampled;

        if (cli_json_num(status, "sampled_at", &sampled) && isfinite(sampled)) {
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

/* A process with its sort keys, read from the JSON once per process rather
 * than in every comparison (n log n object lookups at 4,096 processes). */
typedef struct process_key {
        json_t *p;
        double memory; /* -1: unknown */
        double pid;
        size_t index; /* position in the reply: ties keep the reply's order */
} process_key;

/* Processes by GPU memory, largest first; unknown memory last; then by pid
 * so the order is stable between runs. */
static int process_compare(const void *a, const void *b)
{
        const process_key *ka = a, *kb = b;

        if (ka->memory != kb->memory)
                return ka->memory > kb->memory ? -1 : 1;
        if (ka->pid != kb->pid)
                return ka->pid < kb->pid ? -1 : 1;
        return ka->index < kb->index ? -1 : ka->index > kb->index;
}

/* Whether process `p` runs on a device its owner holds no lease on. Only an
 * explicit false counts: a daemon without leases sends no "leased" at all,
 * and an exited process holds nothing any more. */
static bool process_unleased(json_t *p)
{
        return json_is_false(json_object_get(p, "leased")) &&
               !json_is_true(json_object_get(p, "vanished"));
}

/* The mark of a process with an open violation ("VIOLATION: stop at
 * 12:03:04"), or NULL when it has none. */
static const char *violation_mark(char *buf, size_t len, json_t *p)
{
        json_t *v = json_object_get(p, "violation");
        char clock[16] = "-";
        double t;

        if (!json_is_object(v) || cli_json_str(v, "outcome"))
                return NULL;
        if (cli_json_num(v, "sigkill_at", &t))
                return "VIOLATION: SIGKILL sent";
        if (cli_json_num(v, "sigterm_at", &t))
                return "VIOLATION: SIGTERM sent";
        if (!cli_json_num(v, "stop_at", &t))
                return "VIOLATION: observed";
        if (isfinite(t) && t >= 0) {
                time_t when = (time_t)t;
                struct tm tm;

                if (localtime_r(&when, &tm))
                        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
        }
        snprintf(buf, len, "VIOLATION: stop at %s", clock);
        return buf;
}

/* One process line, after `prefix` (which takes `prefix_w` columns). */
static void print_process(FILE *f, json_t *p, const char *prefix, size_t prefix_w,
                          const cli_term *term)
{
        const char *user = cli_json_str(p, "user"), *command = cli_json_str(p, "command");
        bool vanished = json_is_true(json_object_get(p, "vanished")) ||
                        json_is_true(json_object_get(p, "exited"));
        bool zombie = json_is_true(json_object_get(p, "zombie"));
        char pid[32], uid[32], mem[32], what[64], mark_buf[64];
        const char *mark = vanished ? NULL : violation_mark(mark_buf, sizeof mark_buf, p);
        size_t fields_w = PID_W + 1 + USER_W + 1 + PMEM_W + 2, used = prefix_w + fields_w;

        fputs(prefix, f);
        cli_text_field(f, cli_json_int_text(pid, sizeof pid, p, "pid"), PID_W, CLI_ALIGN_RIGHT,
                       term->unicode);
        fputc(' ', f);
        /* No passwd entry (or the process is gone): the uid is all there is. */
        if (!user)
                user = cli_json_int_text(uid, sizeof uid, p, "uid");
        cli_text_field(f, user, USER_W, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', f);
        snprintf(what, sizeof what, "%s GiB", fmt_gib(mem, sizeof mem, p, "memory_used_bytes"));
        cli_text_field(f, what, PMEM_W, CLI_ALIGN_RIGHT, term->unicode);
        fputs("  ", f);
        if (vanished) {
                /* Exited but still holding memory: gone (owner as last
                 * seen), or a zombie its parent has not reaped. */
                cli_text_style(f, term, CLI_STYLE_DIM);
                fputs(zombie ? "(zombie)" : "(exited)", f);
                used += 8;
                if (command && used + 1 < term->columns) {
                        fputc(' ', f);
                        cli_text_clip(f, command, term->columns - used - 1, term->unicode);
                }
                cli_text_style(f, term, CLI_STYLE_RESET);
        } else if (mark || process_unleased(p)) {
                /* Its owner holds no lease here: the status line above says
                 * so for the device, this says which process it is. */
                cli_text_style(f, term, CLI_STYLE_RED);
                fputs("(no lease)", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                used += 10;
                if (used + 1 < term->columns) {
                        fputc(' ', f);
                        cli_text_clip(f, command ? command : "-", term->columns - used - 1,
                                      term->unicode);
                }
        } else {
                cli_text_clip(f, command ? command : "-", term->columns - used, term->unicode);
        }
        fputc('\n', f);
        if (!mark)
                return;
        /* What the daemon will do about it, under the command: the command
         * line keeps its room, and the mark is never cut. */
        fputs(prefix, f);
        cli_text_spaces(f, fields_w);
        cli_text_style(f, term, CLI_STYLE_RED);
        fputs(mark, f);
        cli_text_style(f, term, CLI_STYLE_RESET);
        fputc('\n', f);
}

/* The processes in `procs` (sorted) that belong to MIG instance `uuid`, or
 * with uuid NULL those that belong to none of `instances`. */
static bool process_in(json_t *p, const char *uuid, json_t *instances)
{
        const char *in = cli_json_str(p, "instance_uuid");

        if (uuid)
                return in && strcmp(in, uuid) == 0;
        if (!in)
                return true;
        for (size_t i = 0; i < json_array_size(instances); i++) {
                const char *u = cli_json_str(json_array_get(instances, i), "uuid");

                if (u && strcmp(u, in) == 0)
                        return false;
        }
        return true;
}

/* Append "name" to the comma-separated `list` unless it is there already. */
static void add_user(char *list, size_t len, const char *name)
{
        size_t n = strlen(name), used = strlen(list);

        for (const char *p = list; (p = strstr(p, name)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
                        return;
        snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

/* One part of a holder line, after two spaces unless it is the first or
 * `glued` (it continues the part before); cut to `max_w` columns and to what
 * is left of the line. */
static void holder_part(FILE *f, const cli_term *term, const char *sgr, const char *s, size_t max_w,
                        bool glued, size_t *used, bool *first)
{
        size_t room;

        if (!*first && !glued) {
                fputs("  ", f);
                *used += 2;
        }
        *first = false;
        room = MIN(term->columns > *used ? term->columns - *used : 0, max_w);
        if (sgr)
                cli_text_style(f, term, sgr);
        *used += cli_text_clip(f, s, room, term->unicode);
        if (sgr)
                cli_text_style(f, term, CLI_STYLE_RESET);
}

/* The line under a GPU or MIG instance that says who holds it: "DRAINED",
 * the lease ("alice run 2h13m (lease 12)", "bob manual, 1h left (lease
 * 13)"), "IN USE WITHOUT LEASE: carol" when processes run there without
 * their owner holding a lease on it, or "free" (when `show_free`) if none of
 * these. `inst_uuid` and `instances` pick the device's processes as
 * process_in() does. Nothing at all from a daemon that knows no leases. */
static void print_holder(FILE *f, json_t *dev, json_t **procs, size_t n_procs,
                         const char *inst_uuid, json_t *instances, const char *prefix,
                         size_t prefix_w, bool show_free, const cli_term *term, double now)
{
        json_t *lease = json_object_get(dev, "lease");
        bool drained = json_is_true(json_object_get(dev, "drained")), first = true, knows_leases;
        char users[160] = "", text[256];
        size_t used = prefix_w;

        for (size_t i = 0; i < n_procs; i++)
                if (process_in(procs[i], inst_uuid, instances) && process_unleased(procs[i])) {
                        const char *u = cli_json_str(procs[i], "user");
                        char uid[32];

                        add_user(users, sizeof users,
                                 u ? u : cli_json_int_text(uid, sizeof uid, procs[i], "uid"));
                }
        json_t *shared = json_object_get(json_object_get(dev, "shared"), "leases");
        size_t shared_n = json_is_array(shared) ? json_array_size(shared) : 0;

        knows_leases = lease || json_object_get(dev, "drained");
        if (!json_is_object(lease) && !drained && !users[0] && !(show_free && knows_leases) &&
            !shared_n)
                return;

        /* Shared leases: one line each, who holds which budget and how much
         * of it is used. */
        for (size_t i = 0; i < shared_n; i++) {
                json_t *sl = json_array_get(shared, i);
                const char *user = cli_json_str(sl, "user");
                char uid[32], id[32];
                double budget = 0, use = 0;
                bool first_part = true;
                size_t used_w = prefix_w;

                (void)cli_json_num(sl, "share_bytes", &budget);
                (void)cli_json_num(sl, "memory_used_bytes", &use);
                fputs(prefix, f);
                holder_part(f, term, CLI_STYLE_BOLD,
                            user ? user : cli_json_int_text(uid, sizeof uid, sl, "uid"),
                            USER_W + 6, false, &used_w, &first_part);
                snprintf(text, sizeof text, " shared %.1f/%.1f GiB (lease %s)",
                         use / 1073741824.0, budget / 1073741824.0,
                         cli_json_int_text(id, sizeof id, sl, "id"));
                holder_part(f, term, NULL, text, SIZE_MAX, true, &used_w, &first_part);
                if (json_is_true(json_object_get(sl, "over_budget")))
                        holder_part(f, term, CLI_STYLE_RED, "OVER BUDGET", SIZE_MAX, false,
                                    &used_w, &first_part);
                fputc('\n', f);
        }
        if (shared_n && !drained && !users[0])
                return;

        fputs(prefix, f);
        if (drained)
                holder_part(f, term, CLI_STYLE_YELLOW, "DRAINED", SIZE_MAX, false, &used, &first);
        if (json_is_object(lease) && !shared_n) {
                const char *user = cli_json_str(lease, "user"), *kind = cli_json_str(lease, "kind");
                char uid[32], id[32], span[32], exp[48] = "";
                double since, expires;

                if (cli_json_num(lease, "expires_at", &expires))
                        snprintf(exp, sizeof exp, expires > now ? ", %s left" : ", expired",
                                 cli_format_span(span, sizeof span, expires - now));
                else if (cli_json_num(lease, "since", &since))
                        snprintf(exp, sizeof exp, " %s",
                                 cli_format_span(span, sizeof span, now - since));
                /* A long login name must not push the rest off the line. */
                holder_part(f, term, CLI_STYLE_BOLD,
                            user ? user : cli_json_int_text(uid, sizeof uid, lease, "uid"),
                            USER_W + 6, false, &used, &first);
                double job;

                if (cli_json_num(lease, "slurm_job_id", &job))
                        snprintf(text, sizeof text, " slurm job %.0f%s (lease %s)", job, exp,
                                 cli_json_int_text(id, sizeof id, lease, "id"));
                else
                        snprintf(text, sizeof text, " %.16s%s (lease %s)", kind ? kind : "-",
                                 exp, cli_json_int_text(id, sizeof id, lease, "id"));
                holder_part(f, term, CLI_STYLE_BOLD, text, SIZE_MAX, true, &used, &first);
                if (json_is_true(json_object_get(lease, "idle_warned")))
                        holder_part(f, term, CLI_STYLE_YELLOW, "IDLE: release warned", SIZE_MAX,
                                    false, &used, &first);
                else if (json_is_true(json_object_get(lease, "idle_flagged")))
                        holder_part(f, term, CLI_STYLE_YELLOW, "IDLE", SIZE_MAX, false, &used,
                                    &first);
        }
        if (users[0]) {
                snprintf(text, sizeof text, "IN USE WITHOUT LEASE: %s", users);
                holder_part(f, term, CLI_STYLE_RED, text, SIZE_MAX, false, &used, &first);
        }
        if (first)
                holder_part(f, term, NULL, "free", SIZE_MAX, false, &used, &first);
        fputc('\n', f);
}

static void print_instance(FILE *f, json_t *inst, bool last, json_t **procs, size_t n_procs,
                           const cli_term *term, double now)
{
        const char *branch = last ? "       " : (term->unicode ? "    │  " : "    |  ");
        const char *profile = cli_json_str(inst, "profile"), *uuid = cli_json_str(inst, "uuid");
        char gi[32], ci[32], ids[80];
        size_t used = TREE_W + PROFILE_W + 1 + UUID_W + 2 + IDS_W;

        fputs(term->unicode ? (last ? "    └─ " : "    ├─ ") : (last ? "    `- " : "    |- "), f);
        cli_text_field(f, profile ? profile : "-", PROFILE_W, CLI_ALIGN_LEFT, term->unicode);
        fputc(' ', f);
        cli_text_field(f, uuid ? uuid : "-", UUID_W, CLI_ALIGN_LEFT, term->unicode);
        fputs("  ", f);
        snprintf(ids, sizeof ids, "gi %s ci %s",
                 cli_json_int_text(gi, sizeof gi, inst, "gpu_instance_id"),
                 cli_json_int_text(ci, sizeof ci, inst, "compute_instance_id"));
        cli_text_field(f, ids, IDS_W, CLI_ALIGN_LEFT, term->unicode);
        cli_text_spaces(f, LINE_END - MEM_W - used);
        print_memory(f, inst, term);
        fputc('\n', f);

        if (!uuid)
                return;
        print_holder(f, inst, procs, n_procs, uuid, NULL, branch, TREE_W, true, term, now);
        for (size_t i = 0; i < n_procs; i++)
                if (process_in(procs[i], uuid, NULL))
                        print_process(f, procs[i], branch, TREE_W, term);
}

static int print_gpu(FILE *f, json_t *gpu, size_t index_w, const cli_term *term, double now)
{
        json_t *instances = json_object_get(gpu, "instances"),
               *processes = json_object_get(gpu, "processes");
        const char *name = cli_json_str(gpu, "name"), *uuid = cli_json_str(gpu, "uuid"),
                   *error = cli_json_str(gpu, "error");
        bool healthy = json_is_true(json_object_get(gpu, "healthy")),
             mig = json_is_true(json_object_get(gpu, "mig_enabled"));
        size_t name_w = LINE_END - index_w - GPU_FIXED_W, n_procs = json_array_size(processes),
               n_inst = json_array_size(instances), i;
        _cleanup_free_ json_t **procs = NULL;
        _cleanup_free_ process_key *keys = NULL;
        char idx[40], buf[32];

        procs = calloc(MAX(n_procs, (size_t)1), sizeof *procs);
        keys = calloc(MAX(n_procs, (size_t)1), sizeof *keys);
        if (!procs || !keys)
                return -ENOMEM;
        for (i = 0; i < n_procs; i++) {
                keys[i] = (process_key){.p = json_array_get(processes, i), .memory = -1, .index = i};
                cli_json_num(keys[i].p, "memory_used_bytes", &keys[i].memory);
                cli_json_num(keys[i].p, "pid", &keys[i].pid);
        }
        qsort(keys, n_procs, sizeof *keys, process_compare);
        for (i = 0; i < n_procs; i++)
                procs[i] = keys[i].p;

        if (!healthy)
                cli_text_style(f, term, CLI_STYLE_RED);
        snprintf(idx, sizeof idx, "[%s]", cli_json_int_text(buf, sizeof buf, gpu, "index"));
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

        /* The MIG layout's room (issue 13): free memory slices of 8, and
         * instances the daemon made on demand. */
        if (healthy && mig && json_is_object(json_object_get(gpu, "mig"))) {
                json_t *m = json_object_get(gpu, "mig"), *fs = json_object_get(m, "free_slices");
                long long od = json_integer_value(json_object_get(m, "on_demand"));

                if (json_is_integer(fs))
                        fprintf(f, "    MIG: %lld/8 memory slices free%s", json_integer_value(fs),
                                json_is_true(json_object_get(m, "dynamic")) ? ", instances made on demand" : "");
                if (json_is_integer(fs) && od > 0)
                        fprintf(f, " (%lld now)", od);
                if (json_is_integer(fs))
                        fputc('\n', f);
        }

        /* A GPU in MIG mode is leased by instance: its own line says only
         * what concerns the whole GPU (drained, processes outside any
         * instance). A lost GPU is not "free" whatever its lease says. */
        print_holder(f, gpu, procs, n_procs, NULL, instances, "    ", 4, healthy && !mig, term,
                     now);
        for (i = 0; i < n_procs; i++)
                if (process_in(procs[i], NULL, instances))
                        print_process(f, procs[i], "    ", 4, term);
        for (i = 0; i < n_inst; i++)
                print_instance(f, json_array_get(instances, i), i + 1 == n_inst, procs, n_procs,
                               term, now);
        return 0;
}

/* Strict mode's kernel fence, one line; nothing in other modes. */
static void print_fence(FILE *f, json_t *fence, const cli_term *term)
{
        const char *mode = cli_json_str(fence, "mode"), *error = cli_json_str(fence, "error");
        double denied = 0;

        if (!mode || strcmp(mode, "strict") != 0)
                return;
        (void)cli_json_num(fence, "denied_total", &denied);
        fputc('\n', f);
        if (json_is_true(json_object_get(fence, "active"))) {
                fprintf(f, "Fence: active (strict mode): only leased GPUs open; %.0f refused "
                           "open%s.\n",
                        denied, denied == 1 ? "" : "s");
                return;
        }
        cli_text_style(f, term, CLI_STYLE_RED);
        fprintf(f, "Fence: NOT active (strict mode)%s", error ? ": " : "");
        if (error)
                cli_text_clip(f, error, 200, false);
        cli_text_style(f, term, CLI_STYLE_RESET);
        fputc('\n', f);
}

int cli_status_render(json_t *status, FILE *f, const cli_term *full_term, double now)
{
        cli_term narrowed = *full_term, *term = &narrowed;
        json_t *gpus = json_object_get(status, "gpus");
        const char *message = cli_json_str(status, "message");
        size_t index_w = 3, n_queued, i;
        int r;

        if (!json_is_object(status))
                return -EBADMSG;
        /* The fixed columns need 80; below that the arithmetic would wrap. */
        narrowed.columns = MAX(full_term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1;

        /* Room for the widest "[N]" so that names line up past GPU 9. */
        for (i = 0; i < json_array_size(gpus); i++) {
                json_t *gpu = json_array_get(gpus, i);
                char buf[32], idx[40];

                snprintf(idx, sizeof idx, "[%s]", cli_json_int_text(buf, sizeof buf, gpu, "index"));
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
                r = print_gpu(f, json_array_get(gpus, i), index_w, term, now);
                if (r < 0)
                        return r;
        }
        n_queued = json_array_size(json_object_get(status, "queue"));
        if (n_queued > 0) {
                fputc('\n', f);
                cli_text_style(f, term, CLI_STYLE_BOLD);
                fprintf(f, "Queue: %zu waiting", n_queued);
                cli_text_style(f, term, CLI_STYLE_RESET);
                fputc('\n', f);
                /* The full width: it narrows by itself as this view does. */
                cli_queue_render(json_object_get(status, "queue"), f, full_term, now, 0);
        }
        print_fence(f, json_object_get(status, "fence"), term);
        return 0;
}
