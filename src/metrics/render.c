/* Prometheus text rendering; see render.h.
 *
 * Samples of one metric family must follow its HELP and TYPE lines without
 * interruption, so every family is written by one loop over the devices,
 * users or sinks. Output is deterministic (snapshot, uid and configuration
 * order) so tests and diffs stay readable. */
#include "metrics/render.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/utf8.h"

#define MIB (UINT64_C(1) << 20)

void metrics_write_label_value(FILE *f, const char *s)
{
        _cleanup_free_ char *clean = NULL;

        if (!utf8_is_valid(s, strlen(s))) {
                clean = utf8_sanitize(s);
                s = clean ? clean : "";
        }
        /* Bytes that need an escape or are dropped: backslash, quote, the
         * C0 controls and DEL, and 0xC2 (the lead byte of the C1 controls). */
        static const char special[] = "\\\"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"
                                      "\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"
                                      "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f\xc2";

        /* Runs of plain bytes in one fwrite, escapes between them. */
        for (;;) {
                size_t n = strcspn(s, special);

                if (n > 0)
                        fwrite(s, 1, n, f);
                s += n;
                switch (*s) {
                case '\0':
                        return;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\x01' ... '\x09':
                case '\x0b' ... '\x1f':
                case '\x7f':
                        /* ESC, BEL, CR and the other controls (a command
                         * line is the user's) are dropped, as the CLI
                         * drops them: a label must not steer the terminal
                         * of whoever reads the scrape. */
                        break;
                case '\xc2':
                        /* C1 controls (U+0080..U+009F, CSI among them),
                         * valid UTF-8 by now: dropped too. */
                        if ((unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) {
                                s++;
                                break;
                        }
                        fputc(*s, f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                default: /* '\n' */
                        fputs("\\n", f);
                        break;
                }
                s++;
        }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- dcgm-exporter device series ---- */

/* dcgm-exporter's label set, in its order; `mi` adds the MIG instance.
 * `device` is "nvidia" and the NVML index, as dcgm-exporter writes it (not
 * the /dev minor), and the driver version is a label of every series, as
 * dcgm-exporter's default counters (DCGM_FI_DRIVER_VERSION, "label") have
 * it. */
static void device_labels(FILE *f, const MetricsInput *in, const GpuDevice *g,
                          const GpuInstance *mi)
{
        fprintf(f, "{gpu=\"%u\",UUID=\"", g->index);
        metrics_write_label_value(f, g->uuid);
        fputs("\",pci_bus_id=\"", f);
        metrics_write_label_value(f, g->pci_bus_id);
        fprintf(f, "\",device=\"nvidia%u\",modelName=\"", g->index);
        metrics_write_label_value(f, g->name);
        if (mi) {
                fputs("\",GPU_I_PROFILE=\"", f);
                metrics_write_label_value(f, mi->profile);
                fprintf(f, "\",GPU_I_ID=\"%" PRIu32, mi->gpu_instance_id);
        }
        fputs("\",Hostname=\"", f);
        metrics_write_label_value(f, in->hostname ? in->hostname : "");
        fputs("\",DCGM_FI_DRIVER_VERSION=\"", f);
        metrics_write_label_value(f, in->snapshot ? in->snapshot->driver_version : "");
        fputs("\"}", f);
}

/* A value of a GPU (mi == NULL) or of one of its MIG instances, written
 * into buf; false when unknown, and the sample is left out. */
typedef bool (*DeviceValueFunc)(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n);

static bool value_util(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->utilization_gpu < 0)
                return false;
        snprintf(buf, n, "%d", g->utilization_gpu);
        return true;
}

static bool value_mem_util(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->utilization_memory < 0)
                return false;
        snprintf(buf, n, "%d", g->utilization_memory);
        return true;
}

static bool value_fb_used(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        uint64_t used = mi ? mi->memory_used_bytes : g->memory_used_bytes;

        if (used == GPU_VALUE_UNKNOWN)
                return false;
        snprintf(buf, n, "%" PRIu64, used / MIB);
        return true;
}

static bool value_fb_free(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        uint64_t total = mi ? mi->memory_total_bytes : g->memory_total_bytes;
        uint64_t used = mi ? mi->memory_used_bytes : g->memory_used_bytes;
        uint64_t reserved = mi ? 0 : g->memory_reserved_bytes;

        if (total == GPU_VALUE_UNKNOWN || used == GPU_VALUE_UNKNOWN || used > total)
                return false;
        /* Like dcgm: free excludes what the driver reserves. */
        if (reserved == GPU_VALUE_UNKNOWN || reserved > total - used)
                reserved = 0;
        snprintf(buf, n, "%" PRIu64, (total - used - reserved) / MIB);
        return true;
}

static bool value_temp(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->temperature_c < 0)
                return false;
        snprintf(buf, n, "%d", g->temperature_c);
        return true;
}

static bool value_power(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->power_mw < 0)
                return false;
        snprintf(buf, n, "%.3f", (double)g->power_mw / 1000.0);
        return true;
}

static bool value_energy(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->energy_mj == GPU_VALUE_UNKNOWN)
                return false;
        snprintf(buf, n, "%" PRIu64, g->energy_mj);
        return true;
}

static bool value_xid(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        snprintf(buf, n, "%" PRIu64, g->last_xid);
        return true;
}

static bool value_sm_clock(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->clock_sm_mhz < 0)
                return false;
        snprintf(buf, n, "%d", g->clock_sm_mhz);
        return true;
}

static bool value_mem_clock(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        if (g->clock_mem_mhz < 0)
                return false;
        snprintf(buf, n, "%d", g->clock_mem_mhz);
        return true;
}

/* Profiling series come from GPM (Hopper and later): absent, never 0,
 * where the device has none. */
static bool value_ratio(bool known, double v, char *buf, size_t n)
{
        if (!known || v < 0.0)
                return false;
        snprintf(buf, n, "%.6f", v);
        return true;
}

static bool value_gr_active(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        return value_ratio(g->has_gpm, g->gpm.graphics_active, buf, n);
}

static bool value_sm_active(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        return value_ratio(g->has_gpm, g->gpm.sm_active, buf, n);
}

static bool value_sm_occupancy(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        return value_ratio(g->has_gpm, g->gpm.sm_occupancy, buf, n);
}

static bool value_tensor_active(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        return value_ratio(g->has_gpm, g->gpm.tensor_active, buf, n);
}

static bool value_dram_active(const GpuDevice *g, const GpuInstance *mi, char *buf, size_t n)
{
        return value_ratio(g->has_gpm, g->gpm.dram_active, buf, n);
}

static const struct {
        const char *name;
        const char *type;
        const char *help;  /* dcgm-exporter's own HELP texts */
        bool per_instance; /* on a MIG-enabled GPU, one sample per MIG instance */
        DeviceValueFunc value;
} device_families[] = {
    {"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", false, value_util},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", false, value_mem_util},
    {"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", true, value_fb_used},
    {"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", true, value_fb_free},
    {"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", false, value_temp},
    {"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", false, value_power},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", false, value_energy},
    {"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", false,
     value_xid},
    {"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", false, value_sm_clock},
    {"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", false,
     value_mem_clock},
    {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
     false, value_gr_active},
    {"DCGM_FI_PROF_SM_ACTIVE", "gauge",
     "The ratio of cycles an SM has at least 1 warp assigned.", false, value_sm_active},
    {"DCGM_FI_PROF_SM_OCCUPANCY", "gauge",
     "The ratio of number of warps resident on an SM.", false, value_sm_occupancy},
    {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge",
     "Ratio of cycles the tensor (HMMA) pipe is active.", false, value_tensor_active},
    {"DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
     "Ratio of cycles the device memory interface is active sending or receiving data.", false,
     value_dram_active},
};

static void render_devices(FILE *f, const MetricsInput *in)
{
        const GpuSnapshot *s = in->snapshot;
        char value[64];

        if (!s)
                return;
        for (size_t k = 0; k < ELEMENTSOF(device_families); k++) {
                family(f, device_families[k].name, device_families[k].type,
                       device_families[k].help);
                for (size_t i = 0; i < s->n_gpus; i++) {
                        const GpuDevice *g = &s->gpus[i];

                        /* Memory of a MIG-enabled GPU is reported per instance
                         * only, so sums over the series do not count it twice. */
                        if (device_families[k].per_instance && g->mig_enabled) {
                                for (size_t j = 0; j < g->n_instances; j++) {
                                        const GpuInstance *mi = &g->instances[j];

                                        if (!device_families[k].value(g, mi, value, sizeof value))
                                                continue;
                                        fputs(device_families[k].name, f);
                                        device_labels(f, in, g, mi);
                                        fprintf(f, " %s\n", value);
                                }
                                continue;
                        }
                        if (!device_families[k].value(g, NULL, value, sizeof value))
                                continue;
                        fputs(device_families[k].name, f);
                        device_labels(f, in, g, NULL);
                        fprintf(f, " %s\n", value);
                }
        }
}

/* ---- gpukeeper's own series ---- */

static void write_user(FILE *f, const MetricsInput *in, uid_t uid)
{
        const char *name = in->user_name ? in->user_name(in->userdata, uid) : NULL;

        if (name)
                metrics_write_label_value(f, name);
        else
                fprintf(f, "%u", (unsigned)uid);
}

static const StoredLease *lease_of(const MetricsInput *in, const char *uuid)
{
        for (size_t i = 0; i < in->n_leases; i++)
                for (size_t j = 0; j < in->leases[i]->n_devices; j++)
                        if (strcmp(in->leases[i]->devices[j].uuid, uuid) == 0)
                                return in->leases[i];
        return NULL;
}

static void device_leased_sample(FILE *f, const MetricsInput *in, const GpuDevice *g,
                                 const char *uuid)
{
        const StoredLease *l = lease_of(in, uuid);

        fputs("gpukeeper_device_leased{uuid=\"", f);
        metrics_write_label_value(f, uuid);
        fprintf(f, "\",gpu=\"%u\",holder=\"", g->index);
        if (l)
                write_user(f, in, l->uid);
        fprintf(f, "\",kind=\"%s\"} %d\n", l ? lease_kind_to_string(l->kind) : "", l ? 1 : 0);
}

/* Slurm jobs running on this node's GPUs (leases of kind slurm): one series
 * per job, so a federated Prometheus can tell jobs apart across nodes. */
static void render_slurm_jobs(FILE *f, const MetricsInput *in)
{
        family(f, "gpukeeper_slurm_job_devices", "gauge",
               "Devices held by a Slurm job on this node (its lease of kind slurm).");
        for (size_t i = 0; i < in->n_leases; i++) {
                const StoredLease *l = in->leases[i];

                if (l->kind != LEASE_SLURM)
                        continue;
                fputs("gpukeeper_slurm_job_devices{user=\"", f);
                write_user(f, in, l->uid);
                fprintf(f, "\",job=\"%" PRIu64 "\"} %zu\n", l->slurm_job_id, l->n_devices);
        }
}

/* Issue 10 item 14: a GPU with more processes than gpukeeper lists. */
static void render_processes_incomplete(FILE *f, const MetricsInput *in)
{
        family(f, "gpukeeper_gpu_processes_incomplete", "gauge",
               "1 when the GPU's process list is cut short (more than 4096 processes, or "
               "unreadable): the GPU is not granted meanwhile.");
        for (size_t i = 0; in->snapshot && i < in->snapshot->n_gpus; i++) {
                const GpuDevice *g = &in->snapshot->gpus[i];

                fputs("gpukeeper_gpu_processes_incomplete{uuid=\"", f);
                metrics_write_label_value(f, g->uuid);
                fprintf(f, "\",gpu=\"%u\"} %d\n", g->index, g->processes_incomplete ? 1 : 0);
        }
}

/* One lease-able device per whole GPU not in MIG mode and per MIG instance. */
static void render_device_leases(FILE *f, const MetricsInput *in)
{
        family(f, "gpukeeper_device_leased", "gauge",
               "1 when the device (a whole GPU or a MIG instance) is leased, else 0; holder is "
               "the lease's user.");
        if (!in->snapshot)
                return;
        for (size_t i = 0; i < in->snapshot->n_gpus; i++) {
                const GpuDevice *g = &in->snapshot->gpus[i];

                if (!g->mig_enabled) {
                        device_leased_sample(f, in, g, g->uuid);
                        continue;
                }
                for (size_t j = 0; j < g->n_instances; j++)
                        device_leased_sample(f, in, g, g->instances[j].uuid);
        }
}

typedef struct UserRow {
        uid_t uid;
        uint64_t devices;
        uint64_t memory_bytes;
        uint64_t leased_usec;
        uint64_t idle_usec;
} UserRow;

static int user_row_cmp(const void *a, const void *b)
{
        const UserRow *x = a, *y = b;

        return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* One row per user with an active lease or a GPU process: rows are collected
 * unsorted, sorted by uid and merged, O(n log n) in leases plus processes. */
static int collect_users(const MetricsInput *in, UserRow **ret, size_t *ret_n)
{
        _cleanup_free_ UserRow *rows = NULL;
        size_t n = in->n_leases, k = 0, m = 0;

        if (in->snapshot)
                for (size_t i = 0; i < in->snapshot->n_gpus; i++)
                        n += in->snapshot->gpus[i].n_processes;
        rows = calloc(MAX(n, (size_t)1), sizeof *rows);
        if (!rows)
                return -ENOMEM;

        /* These counters cover the active leases only: they go down when a
         * lease ends, which rate() reads as a counter reset. Totals that
         * include released leases come from the usage history (/api/usage,
         * gpukeeper report). */
        for (size_t i = 0; i < in->n_leases; i++) {
                const StoredLease *l = in->leases[i];
                uint64_t held = in->now_usec > l->created_usec ? in->now_usec - l->created_usec : 0;

                rows[k++] = (UserRow){
                    .uid = l->uid,
                    .devices = l->n_devices,
                    .leased_usec = held * l->n_devices,
                    .idle_usec = l->idle_device_usec,
                };
        }
        if (in->snapshot)
                for (size_t i = 0; i < in->snapshot->n_gpus; i++) {
                        const GpuDevice *g = &in->snapshot->gpus[i];

                        for (size_t j = 0; j < g->n_processes; j++) {
                                const GpuProcess *p = &g->processes[j];

                                if (p->vanished || p->memory_used_bytes == GPU_VALUE_UNKNOWN)
                                        continue;
                                rows[k++] =
                                    (UserRow){.uid = p->uid, .memory_bytes = p->memory_used_bytes};
                        }
                }

        qsort(rows, k, sizeof *rows, user_row_cmp);
        for (size_t i = 0; i < k; i++) {
                if (m > 0 && rows[m - 1].uid == rows[i].uid) {
                        rows[m - 1].devices += rows[i].devices;
                        rows[m - 1].memory_bytes += rows[i].memory_bytes;
                        rows[m - 1].leased_usec += rows[i].leased_usec;
                        rows[m - 1].idle_usec += rows[i].idle_usec;
                        continue;
                }
                rows[m++] = rows[i];
        }
        *ret = TAKE_PTR(rows);
        *ret_n = m;
        return 0;
}

/* One per-user family; `field` is the offset of a uint64_t in UserRow, and
 * `usec` says it holds microseconds, written as seconds. */
static void user_family(FILE *f, const MetricsInput *in, const UserRow *rows, size_t n,
                        const char *name, const char *type, const char *help, size_t field,
                        bool usec)
{
        family(f, name, type, help);
        for (size_t i = 0; i < n; i++) {
                uint64_t v;

                memcpy(&v, (const char *)&rows[i] + field, sizeof v);
                fprintf(f, "%s{user=\"", name);
                write_user(f, in, rows[i].uid);
                if (usec)
                        fprintf(f, "\"} %.6f\n", (double)v / 1e6);
                else
                        fprintf(f, "\"} %" PRIu64 "\n", v);
        }
}

static int render_users(FILE *f, const MetricsInput *in)
{
        _cleanup_free_ UserRow *rows = NULL;
        size_t n = 0;
        int r;

        r = collect_users(in, &rows, &n);
        if (r < 0)
                return r;
        user_family(f, in, rows, n, "gpukeeper_user_leased_devices", "gauge",
                    "Devices (whole GPUs and MIG instances) the user holds in active leases.",
                    offsetof(UserRow, devices), false);
        user_family(f, in, rows, n, "gpukeeper_user_gpu_memory_used_bytes", "gauge",
                    "GPU memory used by the user's processes, leased or not.",
                    offsetof(UserRow, memory_bytes), false);
        user_family(f, in, rows, n, "gpukeeper_user_leased_device_seconds_total", "counter",
                    "Device-seconds held by the user's active leases.",
                    offsetof(UserRow, leased_usec), true);
        user_family(f, in, rows, n, "gpukeeper_user_idle_leased_device_seconds_total", "counter",
                    "Device-seconds of the user's active leases spent idle.",
                    offsetof(UserRow, idle_usec), true);
        return 0;
}

static void render_processes(FILE *f, const MetricsInput *in)
{
        if (!in->per_process)
                return;
        family(f, "gpukeeper_process_gpu_memory_used_bytes", "gauge",
               "GPU memory used by one process on one device (uuid: the GPU or MIG instance).");
        if (!in->snapshot)
                return;
        for (size_t i = 0; i < in->snapshot->n_gpus; i++) {
                const GpuDevice *g = &in->snapshot->gpus[i];

                for (size_t j = 0; j < g->n_processes; j++) {
                        const GpuProcess *p = &g->processes[j];
                        const char *uuid = g->uuid;

                        if (p->vanished || p->memory_used_bytes == GPU_VALUE_UNKNOWN)
                                continue;
                        if (p->instance >= 0 && (size_t)p->instance < g->n_instances)
                                uuid = g->instances[p->instance].uuid;
                        fprintf(f,
                                "gpukeeper_process_gpu_memory_used_bytes{pid=\"%" PRIu32
                                "\",user=\"",
                                p->pid);
                        write_user(f, in, p->uid);
                        fputs("\",command=\"", f);
                        metrics_write_label_value(f, p->command ? p->command : "");
                        fprintf(f, "\",gpu=\"%u\",uuid=\"", g->index);
                        metrics_write_label_value(f, uuid);
                        fprintf(f, "\"} %" PRIu64 "\n", p->memory_used_bytes);
                }
        }
}

/* Shared leases (issue 14): each one's memory budget and what the
 * processes of its holder on its GPU use now (NVML's per-process memory, as
 * enforcement counts it). Nothing when no shared lease is active. */
static void render_shared_leases(FILE *f, const MetricsInput *in)
{
        static const char *const names[] = {"gpukeeper_lease_memory_budget_bytes",
                                            "gpukeeper_lease_memory_used_bytes"};
        static const char *const helps[] = {
                "Memory budget of a shared lease (--share).",
                "GPU memory the processes of a shared lease's holder use on its GPU."};
        bool any = false;

        for (size_t i = 0; i < in->n_leases; i++)
                any = any || (in->leases[i]->share_bytes && in->leases[i]->n_devices == 1);
        if (!any)
                return;
        for (size_t k = 0; k < 2; k++) {
                family(f, names[k], "gauge", helps[k]);
                for (size_t i = 0; i < in->n_leases; i++) {
                        const StoredLease *l = in->leases[i];
                        uint64_t v = l->share_bytes;

                        if (!l->share_bytes || l->n_devices != 1)
                                continue;
                        if (k == 1) {
                                v = 0;
                                for (size_t g = 0; in->snapshot && g < in->snapshot->n_gpus; g++) {
                                        const GpuDevice *dev = &in->snapshot->gpus[g];

                                        if (strcmp(dev->uuid, l->devices[0].uuid) != 0)
                                                continue;
                                        for (size_t j = 0; j < dev->n_processes; j++) {
                                                const GpuProcess *p = &dev->processes[j];

                                                if ((!p->vanished || p->owner_from_earlier) &&
                                                    p->uid == l->uid &&
                                                    p->memory_used_bytes != GPU_VALUE_UNKNOWN)
                                                        v += p->memory_used_bytes;
                                        }
                                }
                        }
                        fprintf(f, "%s{lease=\"%" PRId64 "\",user=\"", names[k], l->id);
                        write_user(f, in, l->uid);
                        fputs("\",uuid=\"", f);
                        metrics_write_label_value(f, l->devices[0].uuid);
                        fprintf(f, "\"} %" PRIu64 "\n", v);
                }
        }
}

static void render_counters(FILE *f, const MetricsInput *in)
{
        family(f, "gpukeeper_leases_active", "gauge", "Active leases.");
        fprintf(f, "gpukeeper_leases_active %zu\n", in->n_leases);
        family(f, "gpukeeper_queue_length", "gauge", "Lease requests waiting in the queue.");
        fprintf(f, "gpukeeper_queue_length %zu\n", in->queue_length);
        family(f, "gpukeeper_violations_total", "counter",
               "Processes found on devices their owner did not lease, since the daemon started.");
        fprintf(f, "gpukeeper_violations_total %" PRIu64 "\n", in->violations_total);
        family(f, "gpukeeper_signals_sent_total", "counter",
               "SIGTERM and SIGKILL sent to violating processes, since the daemon started.");
        fprintf(f, "gpukeeper_signals_sent_total %" PRIu64 "\n", in->signals_sent_total);
        family(f, "gpukeeper_log_messages_suppressed_total", "counter",
               "Repeated warnings left out of the log by its rate limits, since the daemon "
               "started.");
        fprintf(f, "gpukeeper_log_messages_suppressed_total %" PRIu64 "\n",
                in->log_suppressed_total);
        family(f, "gpukeeper_socket_connections_refused_total", "counter",
               "Connections to the daemon's socket refused as busy (caps per person and in "
               "total), since the daemon started.");
        fprintf(f, "gpukeeper_socket_connections_refused_total %" PRIu64 "\n",
                in->connections_refused_total);
        family(f, "gpukeeper_audit_refusals_suppressed_total", "counter",
               "Repeated refusals of one peer counted into the audit row of their burst "
               "instead of a row each, since the daemon started.");
        fprintf(f, "gpukeeper_audit_refusals_suppressed_total %" PRIu64 "\n",
                in->audit_suppressed_total);
        family(f, "gpukeeper_status_replies_cached_total", "counter",
               "Status replies sent from the daemon's status cache (nothing had changed), "
               "since the daemon started.");
        fprintf(f, "gpukeeper_status_replies_cached_total %" PRIu64 "\n",
                in->status_cached_total);
        family(f, "gpukeeper_status_replies_built_total", "counter",
               "Status replies built afresh on the socket (the cache's misses), since the "
               "daemon started.");
        fprintf(f, "gpukeeper_status_replies_built_total %" PRIu64 "\n", in->status_built_total);
        family(f, "gpukeeper_store_checkpoints_total", "counter",
               "WAL checkpoints of the state database since the daemon started, by who ran "
               "them: its checkpoint thread, or a commit that found the WAL at its hard limit "
               "(the request behind that commit waited for it).");
        fprintf(f, "gpukeeper_store_checkpoints_total{by=\"thread\"} %" PRIu64 "\n",
                in->checkpoints_thread_total);
        fprintf(f, "gpukeeper_store_checkpoints_total{by=\"commit\"} %" PRIu64 "\n",
                in->checkpoints_commit_total);

        family(f, "gpukeeper_alerts_sent_total", "counter", "Alert messages delivered, per sink.");
        for (size_t i = 0; i < in->n_sinks; i++) {
                fputs("gpukeeper_alerts_sent_total{sink=\"", f);
                metrics_write_label_value(f, in->sinks[i].name ? in->sinks[i].name : "");
                fprintf(f, "\"} %" PRIu64 "\n", in->sinks[i].sent);
        }
        family(f, "gpukeeper_alerts_failed_total", "counter",
               "Alert messages given up after their last attempt, per sink.");
        for (size_t i = 0; i < in->n_sinks; i++) {
                fputs("gpukeeper_alerts_failed_total{sink=\"", f);
                metrics_write_label_value(f, in->sinks[i].name ? in->sinks[i].name : "");
                fprintf(f, "\"} %" PRIu64 "\n", in->sinks[i].failed);
        }

        if (in->snapshot) {
                family(f, "gpukeeper_sampler_duration_seconds", "gauge",
                       "How long the last sampler tick took.");
                fprintf(f, "gpukeeper_sampler_duration_seconds %.6f\n",
                        (double)in->snapshot->tick_usec / 1e6);
                family(f, "gpukeeper_nvml_errors", "gauge",
                       "Failed NVML calls in the last sampler tick.");
                fprintf(f, "gpukeeper_nvml_errors %u\n", in->snapshot->nvml_errors);
        }
        family(f, "gpukeeper_build_info", "gauge", "Always 1; version is gpukeeper's version.");
        fputs("gpukeeper_build_info{version=\"", f);
        metrics_write_label_value(f, in->version ? in->version : "");
        fputs("\"} 1\n", f);
}

/* Strict mode's fence (absent in other modes). */
static void render_fence(FILE *f, const MetricsInput *in)
{
        if (in->fence_state == 0)
                return;
        family(f, "gpukeeper_fence_active", "gauge",
               "1 when strict mode's kernel fence is attached and matches the leases.");
        fprintf(f, "gpukeeper_fence_active %d\n", in->fence_state == 1);
        family(f, "gpukeeper_fence_denied_opens_total", "counter",
               "Opens of GPU device nodes the kernel fence refused, per user and node "
               "(kept across daemon restarts).");
        for (size_t i = 0; i < in->n_fence_denied; i++) {
                fputs("gpukeeper_fence_denied_opens_total{user=\"", f);
                write_user(f, in, in->fence_denied[i].uid);
                fputs("\",device=\"", f);
                metrics_write_label_value(f, in->fence_denied[i].device);
                fprintf(f, "\"} %" PRIu64 "\n", in->fence_denied[i].count);
        }
}

/* MIG-mode GPUs' free slices and on-demand instances (issue 13). */
static void render_mig(FILE *f, const MetricsInput *in)
{
        if (in->n_mig == 0)
                return;
        family(f, "gpukeeper_mig_free_slices", "gauge",
               "Memory slices (of 8) of a MIG-mode GPU no instance occupies.");
        for (size_t i = 0; i < in->n_mig; i++) {
                fprintf(f, "gpukeeper_mig_free_slices{gpu=\"%u\",UUID=\"", in->mig[i].index);
                metrics_write_label_value(f, in->mig[i].uuid);
                fprintf(f, "\"} %d\n", in->mig[i].free_slices);
        }
        family(f, "gpukeeper_mig_on_demand_instances", "gauge",
               "MIG instances gpukeeperd created on demand (mig.dynamic) that exist now.");
        for (size_t i = 0; i < in->n_mig; i++) {
                fprintf(f, "gpukeeper_mig_on_demand_instances{gpu=\"%u\",UUID=\"", in->mig[i].index);
                metrics_write_label_value(f, in->mig[i].uuid);
                fprintf(f, "\"} %d\n", in->mig[i].on_demand);
        }
}

/* The FILE the renderers write to appends to a MetricsBuffer. */
static ssize_t buffer_write(void *cookie, const char *data, size_t n)
{
        MetricsBuffer *b = cookie;

        if (b->allocated - b->len <= n) {
                size_t m = MAX(b->allocated, (size_t)65536);
                char *p;

                while (m - b->len <= n) {
                        if (m > SIZE_MAX / 2)
                                return -1;
                        m *= 2;
                }
                p = realloc(b->data, m);
                if (!p)
                        return -1; /* the stream's error flag is set */
                b->data = p;
                b->allocated = m;
        }
        memcpy(b->data + b->len, data, n);
        b->len += n;
        b->data[b->len] = '\0';
        return (ssize_t)n;
}

int metrics_render_buffer(const MetricsInput *in, MetricsBuffer *b)
{
        FILE *f;
        int r;

        assert(b);
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
        f = fopencookie(b, "w", (cookie_io_functions_t){ .write = buffer_write });
        if (!f)
                return -ENOMEM;
        /* One thread owns the stream: no lock per fputs/fwrite/fprintf. */
        __fsetlocking(f, FSETLOCKING_BYCALLER);
        render_devices(f, in);
        render_device_leases(f, in);
        render_processes_incomplete(f, in);
        render_slurm_jobs(f, in);
        render_counters(f, in);
        render_shared_leases(f, in);
        render_mig(f, in);
        render_fence(f, in);
        r = render_users(f, in);
        render_processes(f, in);
        if (ferror(f) && r >= 0)
                r = -ENOMEM;
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        /* Even an empty exposition is a text. */
        if (r >= 0 && !b->data && buffer_write(b, "", 0) < 0)
                r = -ENOMEM;
        if (r < 0)
                b->len = 0;
        return r;
}

void metrics_buffer_done(MetricsBuffer *b)
{
        free(b->data);
        *b = (MetricsBuffer){ 0 };
}

int metrics_render(const MetricsInput *in, char **ret, size_t *ret_len)
{
        MetricsBuffer b = { 0 };
        int r;

        r = metrics_render_buffer(in, &b);
        if (r < 0) {
                metrics_buffer_done(&b);
                return r;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}
