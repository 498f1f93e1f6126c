/* Taking a GPU inventory snapshot (inventory.h): one pass over every device,
 * MIG instance and process NVML reports, with processes attributed to
 * users through the /proc cache.
 *
 * NVML data never aborts a snapshot. NOT_SUPPORTED is an unknown value;
 * any other failure is counted, the first one per device is recorded, and
 * the rest of the device is still read unless the GPU is lost (then
 * every further call would fail the same way). */
#include "gpu/inventory.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/time-util.h"

static_assert(GPU_UUID_MAX == NVML_DEVICE_UUID_V2_BUFFER_SIZE, "uuid buffers");
static_assert(GPU_NAME_MAX == NVML_DEVICE_NAME_V2_BUFFER_SIZE, "name buffers");
static_assert(GPU_PCI_BUS_ID_MAX == NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE, "bus id buffers");
static_assert(GPU_VALUE_UNKNOWN == UINT64_MAX, "nvml.h reports unknown as UINT64_MAX");

/* What one device query needs to record outcomes. */
typedef struct DeviceQuery {
        GpuSnapshot *snapshot;
        GpuNvml *nvml;
        ProcCache *cache;
        GpuDevice *device;
        bool lost;
} DeviceQuery;

/* Account for the return code of the call nvml just made. Returns true on
 * success; NOT_SUPPORTED is false but no error. */
static bool check(DeviceQuery *q, nvmlReturn_t r)
{
        GpuDevice *d = q->device;

        if (r == NVML_SUCCESS)
                return true;
        if (r == NVML_ERROR_NOT_SUPPORTED)
                return false;
        q->snapshot->nvml_errors++;
        if (d->error == 0) {
                d->error = r;
                snprintf(d->error_call, sizeof(d->error_call), "%s", gpu_nvml_last_call(q->nvml));
        }
        if (r == NVML_ERROR_GPU_IS_LOST) {
                q->lost = true;
                d->healthy = false;
        }
        return false;
}

/* Like check() for calls the device cannot be healthy without. */
static bool check_vital(DeviceQuery *q, nvmlReturn_t r)
{
        if (check(q, r))
                return true;
        if (r != NVML_ERROR_NOT_SUPPORTED)
                q->device->healthy = false;
        return false;
}

/* "NVIDIA A100-SXM4-40GB MIG 3g.20gb" → "3g.20gb". */
static void profile_from_name(const char *name, char *buf, size_t len)
{
        const char *p = NULL;

        for (const char *s = strstr(name, " MIG "); s; s = strstr(s + 1, " MIG "))
                p = s + strlen(" MIG ");
        snprintf(buf, len, "%s", p && *p ? p : "unknown");
}

/* Fill the /proc side of a process. Only allocation failure is an error:
 * a process that is gone is `vanished`, one we may not read stays unknown. */
static int attribute_process(ProcCache *cache, GpuProcess *p)
{
        const ProcInfo *info;
        int r;

        p->uid = (uid_t)-1;
        p->start_time = 0;
        p->command = NULL;
        r = proc_cache_lookup(cache, (pid_t)p->pid, &info);
        if (r == -ESRCH) {
                ProcInfo z = {};

                /* A zombie still names its owner and its parent can free
                 * its memory by reaping it; anything else is gone. */
                if (proc_cache_read_uncached(cache, (pid_t)p->pid, &z) == 0 && z.state == 'Z') {
                        p->zombie = true;
                        p->uid = z.uid;
                        p->start_time = z.start_time;
                        p->command = TAKE_PTR(z.command);
                        proc_info_done(&z);
                        return 0;
                }
                if (z.command)
                        proc_info_done(&z);
                p->vanished = true;
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        p->uid = info->uid;
        p->start_time = info->start_time;
        p->zombie = info->state == 'Z';
        p->command = strdup(info->command);
        return p->command ? 0 : -ENOMEM;
}

/* Processes on `handle` (the GPU, or one of its MIG devices when `inst` is
 * non-NULL, in which case they belong to instance number `instance`). */
static int take_processes(DeviceQuery *q, nvmlDevice_t handle, int instance,
                          const GpuInstance *inst)
{
        GpuDevice *d = q->device;
        const GpuNvmlProcess *list;
        bool truncated = false;
        size_t n, room;
        GpuProcess *p;

        if (!check(q, gpu_nvml_device_processes(q->nvml, handle, &list, &n, &truncated))) {
                d->processes_incomplete = true;
                return 0;
        }
        /* Per handle nvml.c bounds the list; across MIG instances we do. */
        room = GPU_MAX_PROCESSES_PER_DEVICE - d->n_processes;
        if (truncated || n > room)
                d->processes_incomplete = true;
        n = MIN(n, room);
        if (n == 0)
                return 0;
        p = reallocarray(d->processes, d->n_processes + n, sizeof(*p));
        if (!p)
                return -ENOMEM;
        d->processes = p;

        for (size_t i = 0; i < n; i++) {
                GpuProcess *gp = &d->processes[d->n_processes];
                int r;

                *gp = (GpuProcess){
                        .pid = list[i].pid,
                        .memory_used_bytes = list[i].memory_used_bytes,
                        .instance = instance,
                        .gpu_instance_id = list[i].gpu_instance_id,
                        .compute_instance_id = list[i].compute_instance_id,
                };
                /* A process found through a MIG handle runs in that
                 * instance, whatever ids the driver's struct carried. */
                if (inst) {
                        gp->gpu_instance_id = inst->gpu_instance_id;
                        gp->compute_instance_id = inst->compute_instance_id;
                }
                r = attribute_process(q->cache, gp);
                d->n_processes++;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* MIG devices in slots 0..max-1 of a MIG-enabled GPU; NOT_FOUND is an
 * empty slot. An instance whose UUID cannot be read cannot be leased or
 * reported, so it is left out (the error is recorded). */
static int take_instances(DeviceQuery *q, nvmlDevice_t dev)
{
        GpuDevice *d = q->device;
        unsigned max;
        int r;

        if (!check(q, gpu_nvml_device_max_mig_count(q->nvml, dev, &max)))
                return 0;
        max = MIN(max, (unsigned)GPU_MAX_INSTANCES_PER_DEVICE);
        if (max == 0)
                return 0;
        d->instances = calloc(max, sizeof(*d->instances));
        if (!d->instances)
                return -ENOMEM;

        for (unsigned slot = 0; slot < max && !q->lost; slot++) {
                GpuInstance *inst = &d->instances[d->n_instances];
                char name[GPU_NAME_MAX];
                GpuNvmlMemory mem;
                nvmlDevice_t mig;
                unsigned gi, ci;
                nvmlReturn_t rr;

                rr = gpu_nvml_device_mig_handle(q->nvml, dev, slot, &mig);
                if (rr == NVML_ERROR_NOT_FOUND || !check(q, rr))
                        continue;
                if (!check(q, gpu_nvml_device_uuid(q->nvml, mig, inst->uuid, sizeof(inst->uuid))))
                        continue;

                if (!check(q, gpu_nvml_device_name(q->nvml, mig, name, sizeof(name))))
                        name[0] = '\0';
                profile_from_name(name, inst->profile, sizeof(inst->profile));

                inst->gpu_instance_id = NVML_INSTANCE_ID_NONE;
                inst->compute_instance_id = NVML_INSTANCE_ID_NONE;
                if (check(q, gpu_nvml_device_instance_ids(q->nvml, mig, &gi, &ci))) {
                        inst->gpu_instance_id = gi;
                        inst->compute_instance_id = ci;
                }

                inst->numa_node = d->numa_node;
                inst->memory_total_bytes = GPU_VALUE_UNKNOWN;
                inst->memory_used_bytes = GPU_VALUE_UNKNOWN;
                if (check(q, gpu_nvml_device_memory(q->nvml, mig, &mem))) {
                        inst->memory_total_bytes = mem.total;
                        inst->memory_used_bytes = mem.used;
                }

                d->n_instances++;
                r = take_processes(q, mig, (int)(d->n_instances - 1), inst);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Everything about the device at `index`. Returns 0 or -ENOMEM; NVML
 * failures end up in the device and the snapshot's counter. */
static int take_device(DeviceQuery *q, unsigned index)
{
        GpuDevice *d = q->device;
        GpuNvml *nvml = q->nvml;
        GpuNvmlIdentity id;
        GpuNvmlMemory mem;
        nvmlUtilization_t util;
        unsigned long long energy;
        unsigned u;
        nvmlDevice_t dev;
        bool have_handle;

        *d = (GpuDevice){
                .index = index,
                .minor = -1,
                .numa_node = -1,
                .memory_total_bytes = GPU_VALUE_UNKNOWN,
                .memory_used_bytes = GPU_VALUE_UNKNOWN,
                .memory_reserved_bytes = GPU_VALUE_UNKNOWN,
                .utilization_gpu = -1,
                .utilization_memory = -1,
                .temperature_c = -1,
                .power_mw = -1,
                .energy_mj = GPU_VALUE_UNKNOWN,
                .clock_sm_mhz = -1,
                .clock_mem_mhz = -1,
                .healthy = true,
        };

        /* A GPU we cannot even get a handle for (lost) is still reported,
         * under the identity it had when we last saw it. */
        have_handle = check_vital(q, gpu_nvml_device_handle(nvml, index, &dev));
        if (have_handle)
                check_vital(q, gpu_nvml_device_identity(nvml, index, dev, &id));
        else {
                d->healthy = false;
                gpu_nvml_remembered_identity(nvml, index, &id);
        }
        memcpy(d->uuid, id.uuid, sizeof(d->uuid));
        memcpy(d->name, id.name, sizeof(d->name));
        memcpy(d->pci_bus_id, id.pci_bus_id, sizeof(d->pci_bus_id));
        d->numa_node = id.numa_node;
        d->has_cpus = id.has_cpus;
        memcpy(d->cpus, id.cpus, sizeof d->cpus);
        d->last_xid = gpu_nvml_last_xid(nvml, d->uuid);
        if (!have_handle || q->lost)
                return 0;

        if (check(q, gpu_nvml_device_minor(nvml, dev, &u)) && u <= INT32_MAX)
                d->minor = (int)u;
        if (q->lost)
                return 0;

        if (check_vital(q, gpu_nvml_device_memory(nvml, dev, &mem))) {
                d->memory_total_bytes = mem.total;
                d->memory_used_bytes = mem.used;
                d->memory_reserved_bytes = mem.reserved;
        }
        if (q->lost)
                return 0;

        /* Unknown MIG mode: not grantable, neither whole nor by instance. */
        check_vital(q, gpu_nvml_device_mig_enabled(nvml, dev, &d->mig_enabled));
        if (q->lost)
                return 0;

        /* NVML has no utilisation for a MIG-enabled GPU nor its instances. */
        if (!d->mig_enabled && check(q, gpu_nvml_device_utilization(nvml, dev, &util))) {
                d->utilization_gpu = (int)MIN(util.gpu, 100u);
                d->utilization_memory = (int)MIN(util.memory, 100u);
        }
        if (check(q, gpu_nvml_device_temperature(nvml, dev, &u)))
                d->temperature_c = (int)MIN(u, (unsigned)INT32_MAX);
        if (check(q, gpu_nvml_device_power(nvml, dev, &u)))
                d->power_mw = u;
        if (check(q, gpu_nvml_device_energy(nvml, dev, &energy)))
                d->energy_mj = energy;
        if (check(q, gpu_nvml_device_clock(nvml, dev, NVML_CLOCK_SM, &u)) && u <= INT32_MAX)
                d->clock_sm_mhz = (int)u;
        if (check(q, gpu_nvml_device_clock(nvml, dev, NVML_CLOCK_MEM, &u)) && u <= INT32_MAX)
                d->clock_mem_mhz = (int)u;
        if (q->lost)
                return 0;
        /* GPM: NO_DATA on a device's first tick is expected, not an error. */
        if (d->uuid[0]) {
                nvmlReturn_t r = gpu_nvml_device_gpm(nvml, index, d->uuid, dev, &d->gpm);

                d->has_gpm = r == NVML_SUCCESS;
                if (r != NVML_ERROR_NO_DATA)
                        (void)check(q, r);
        }
        if (q->lost)
                return 0;

        /* On a MIG-enabled GPU the parent's process list is an aggregate
         * that needs privileges; each MIG device tells its own. */
        if (d->mig_enabled)
                return take_instances(q, dev);
        return take_processes(q, dev, -1, NULL);
}

static void device_done(GpuDevice *d)
{
        for (size_t i = 0; i < d->n_processes; i++)
                free(d->processes[i].command);
        free(d->processes);
        free(d->instances);
}

void gpu_snapshot_free(GpuSnapshot *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_gpus; i++)
                device_done(&s->gpus[i]);
        free(s->gpus);
        free(s);
}

/* Read every device into s. Returns 0 or -ENOMEM. */
static int take_devices(GpuSnapshot *s, GpuNvml *nvml, ProcCache *cache)
{
        nvmlReturn_t r;
        unsigned count;

        r = gpu_nvml_driver_version(nvml, s->driver_version, sizeof(s->driver_version));
        if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
                s->nvml_errors++;

        r = gpu_nvml_device_count(nvml, &count);
        if (r != NVML_SUCCESS) {
                s->nvml_errors++;
                snprintf(s->message, sizeof(s->message), "%s: %s (%d)", gpu_nvml_last_call(nvml),
                         gpu_nvml_error_string(nvml, r), r);
                return 0;
        }
        count = MIN(count, (unsigned)GPU_MAX_DEVICES);

        gpu_nvml_drain_events(nvml);

        if (count == 0)
                return 0;
        s->gpus = calloc(count, sizeof(*s->gpus));
        if (!s->gpus)
                return -ENOMEM;
        for (unsigned i = 0; i < count; i++) {
                DeviceQuery q = {
                        .snapshot = s,
                        .nvml = nvml,
                        .cache = cache,
                        .device = &s->gpus[i],
                };
                int k = take_device(&q, i);

                s->n_gpus++;
                if (k < 0)
                        return k;
        }
        return 0;
}

int gpu_snapshot_take(GpuNvml *nvml, ProcCache *cache, GpuSnapshot **ret)
{
        _cleanup_(gpu_snapshot_freep) GpuSnapshot *s = NULL;
        uint64_t start;
        int r;

        assert(cache);
        assert(ret);

        start = now_usec(CLOCK_MONOTONIC);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->taken_usec = now_usec(CLOCK_REALTIME);

        if (!nvml) {
                snprintf(s->message, sizeof(s->message), "NVML is not loaded");
        } else {
                s->nvml_available = true;
                s->simulated = gpu_nvml_is_simulated(nvml);
                proc_cache_begin_tick(cache);
                r = take_devices(s, nvml, cache);
                proc_cache_end_tick(cache);
                if (r < 0)
                        return r;
        }

        s->tick_usec = now_usec(CLOCK_MONOTONIC) - start;
        *ret = TAKE_PTR(s);
        return 0;
}

const GpuDevice *gpu_snapshot_find_device(const GpuSnapshot *s, const char *uuid)
{
        if (!s || !uuid)
                return NULL;
        for (size_t i = 0; i < s->n_gpus; i++)
                if (strcmp(s->gpus[i].uuid, uuid) == 0)
                        return &s->gpus[i];
        return NULL;
}

int gpu_snapshot_carry_owners(GpuSnapshot *now, const GpuSnapshot *prev)
{
        assert(now);
        if (!prev)
                return 0;
        for (size_t i = 0; i < now->n_gpus; i++) {
                GpuDevice *g = &now->gpus[i];
                const GpuDevice *before = NULL;

                for (size_t k = 0; k < g->n_processes; k++) {
                        GpuProcess *p = &g->processes[k];

                        if (!p->vanished)
                                continue;
                        if (!before)
                                before = gpu_snapshot_find_device(prev, g->uuid);
                        if (!before)
                                break;
                        for (size_t j = 0; j < before->n_processes; j++) {
                                const GpuProcess *q = &before->processes[j];

                                if (q->pid != p->pid || (q->vanished && !q->owner_from_earlier))
                                        continue;
                                free(p->command);
                                p->command = q->command ? strdup(q->command) : NULL;
                                if (q->command && !p->command)
                                        return -ENOMEM;
                                p->uid = q->uid;
                                p->start_time = q->start_time;
                                p->owner_from_earlier = true;
                                break;
                        }
                }
        }
        return 0;
}
