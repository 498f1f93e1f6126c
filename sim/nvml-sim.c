/* The NVML simulator: a shared library with NVML's ABI whose GPUs, MIG
 * instances and processes come from a JSON lab file ($GPUKEEPER_SIM_LAB).
 *
 * The daemon's NVML binding dlopen()s it instead of libnvidia-ml.so.1 and
 * runs unchanged, so the simulator's job is to reproduce the driver's
 * behaviour down to the quirks the binding must handle: versioned symbols
 * that exist or not (SIM_VARIANT picks the driver generation), struct sizes
 * per symbol version, the INSUFFICIENT_SIZE protocol, the nvmlMemory_v2
 * version word, MIG handles, lost GPUs and injected errors.
 *
 * NVML is a process-wide library (nvmlInit refcount, handles valid until
 * nvmlShutdown), so unlike the rest of gpukeeper this file has global state:
 * one struct guarded by one mutex. Device handles point into fixed slot
 * arrays so they stay valid across lab reloads; a slot remembers the UUID it
 * was handed out for and refuses calls once the lab no longer has that
 * device there. */
#include "nvml-sim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "lab.h"

#define SIM_VARIANT_MODERN 1
#define SIM_VARIANT_535 2
#define SIM_VARIANT_LEGACY 3

#if SIM_VARIANT == SIM_VARIANT_MODERN
#define SIM_DEFAULT_DRIVER_VERSION "550.54.15"
#elif SIM_VARIANT == SIM_VARIANT_535
/* Inside 535.43–535.85, the range whose _v3 process calls write 32-byte entries. */
#define SIM_DEFAULT_DRIVER_VERSION "535.54.03"
#elif SIM_VARIANT == SIM_VARIANT_LEGACY
#define SIM_DEFAULT_DRIVER_VERSION "418.226.00"
#else
#error "SIM_VARIANT must be SIM_VARIANT_MODERN, SIM_VARIANT_535 or SIM_VARIANT_LEGACY"
#endif

/* Every variant but the legacy one has versioned symbols and MIG. */
#define SIM_HAS_VERSIONED (SIM_VARIANT != SIM_VARIANT_LEGACY)

#define SIM_EVENT_QUEUE 64
/* nvmlEventSetWait honours its timeout only up to this, so a test never
 * blocks long; it polls the lab file meanwhile so an Xid written during the
 * wait is delivered by it. */
#define SIM_WAIT_CAP_MS 200
#define SIM_WAIT_STEP_MS 10
#define SIM_MIB (1024ull * 1024ull)
/* The device-less calls (nvmlInit, nvmlSystemGetDriverVersion,
 * nvmlDeviceGetCount, nvmlEventSetWait: a sampler tick starts with them)
 * always look at the lab file; every other entry point at most this often.
 * A tick at 64 GPUs makes over a thousand calls and used to stat() the file
 * on each; now it stats it three times, and a tick sees one lab, as a driver's state changes between
 * enumerations rather than being re-read from the world on every call. A
 * test that rewrites the lab sees the change at the next such call, or
 * after this long on any call. */
#define SIM_REFRESH_USEC 10000

/* nvml.h event type bits (nvmlEventType*); only the Xid one is ever raised. */
#define SIM_EVENT_TYPES_KNOWN 0x7Full

/* A device handle. nvmlDevice_t is an opaque pointer in nvml.h; ours points here. */
struct nvmlDevice_st {
        unsigned gpu;            /* index in the lab's "gpus" */
        unsigned mig;            /* 0: the whole GPU; n: MIG device index n-1 */
        char uuid[SIM_UUID_MAX]; /* what it was handed out for; "" if never */
};

/* GPU and compute instance handles: slots by (GPU index, instance ids),
 * remembering the GPU's UUID, so a handle outlives neither its GPU nor
 * its instance (both then read as INVALID_ARGUMENT, as after a destroy). */
struct nvmlGpuInstance_st {
        unsigned gpu, id;
        char gpu_uuid[SIM_UUID_MAX];
};

struct nvmlComputeInstance_st {
        unsigned gpu, gi, id;
        char gpu_uuid[SIM_UUID_MAX];
};

struct nvmlEventSet_st {
        struct nvmlEventSet_st *next;
        uint64_t xid_gpus; /* bit i: GPU i registered for Xid events */
        nvmlEventData_t queue[SIM_EVENT_QUEUE];
        size_t head, len;
};

static struct {
        pthread_mutex_t lock;
        unsigned refcount;
        char path[PATH_MAX];
        SimLab *lab;
        SimFileId id; /* of the file last parsed, successfully or not */
        char state_path[PATH_MAX]; /* the MIG state file (sim/README.md, "MIG management") */
        SimFileId state_id;        /* of the state file last parsed; invalid: there was none */
        struct nvmlGpuInstance_st gi_handles[SIM_MAX_GPUS][SIM_MAX_GI_ID + 1];
        struct nvmlComputeInstance_st ci_handles[SIM_MAX_GPUS][SIM_MAX_GI_ID + 1][SIM_MAX_CI_ID + 1];
        uint64_t checked_usec; /* CLOCK_MONOTONIC of the last stat() of the lab */
        uint64_t xid_delivered[SIM_MAX_GPUS];
        struct nvmlDevice_st handles[SIM_MAX_GPUS][1 + SIM_MAX_MIG];
        struct nvmlEventSet_st *sets;
} sim = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t *sim_lock(void)
{
        pthread_mutex_lock(&sim.lock);
        return &sim.lock;
}

static void sim_unlockp(pthread_mutex_t **m)
{
        if (*m)
                pthread_mutex_unlock(*m);
}

#define LOCKED _cleanup_(sim_unlockp) _unused_ pthread_mutex_t *_locked = sim_lock()

static void queue_event(struct nvmlEventSet_st *set, unsigned gpu, uint64_t xid)
{
        /* A full queue drops the new event, as a driver that is not read from would. */
        if (set->len >= SIM_EVENT_QUEUE)
                return;
        set->queue[(set->head + set->len) % SIM_EVENT_QUEUE] = (nvmlEventData_t) {
                .device = &sim.handles[gpu][0],
                .eventType = NVML_EVENT_TYPE_XID_CRITICAL_ERROR,
                .eventData = xid,
                .gpuInstanceId = NVML_INSTANCE_ID_NONE,
                .computeInstanceId = NVML_INSTANCE_ID_NONE,
        };
        set->len++;
}

/* Queue one Xid event per GPU whose "xid" became a non-zero value other
 * than the one delivered last. With `baseline`, only remember the values:
 * an Xid already in the lab when NVML starts happened before anyone listened. */
static void deliver_xids(bool baseline)
{
        for (size_t i = 0; i < sim.lab->n_gpus; i++) {
                uint64_t xid = sim.lab->gpus[i].xid;

                if (baseline) {
                        sim.xid_delivered[i] = xid;
                        continue;
                }
                if (xid == 0 || xid == sim.xid_delivered[i])
                        continue;
                sim.xid_delivered[i] = xid;
                for (struct nvmlEventSet_st *s = sim.sets; s; s = s->next)
                        if (s->xid_gpus & (1ull << i))
                                queue_event(s, (unsigned)i, xid);
        }
}

/* Re-parse the lab if the file changed since we last read it. A lab that no
 * longer parses is reported once and the previous one stays in effect.
 * Without `force`, the file is looked at only when SIM_REFRESH_USEC have
 * passed since the last look. */
static void refresh(bool force)
{
        uint64_t t = now_usec(CLOCK_MONOTONIC);
        SimFileId now, id, state_now = {}, state_id;
        char error[512];
        SimLab *lab;

        if (!force && t - sim.checked_usec < SIM_REFRESH_USEC)
                return;
        sim.checked_usec = t;
        if (sim_file_id_get(sim.path, &now) < 0)
                return;
        (void)sim_file_id_get(sim.state_path, &state_now);
        if (sim_file_id_equal(&now, &sim.id) &&
            (sim_file_id_equal(&state_now, &sim.state_id) || (!state_now.valid && !sim.state_id.valid)))
                return;
        id = now;
        if (sim_lab_load(sim.path, sim.state_path, SIM_DEFAULT_DRIVER_VERSION, &lab, &id, &state_id,
                         error, sizeof(error)) < 0) {
                fprintf(stderr, "gpukeeper-nvml-sim: keeping the previous lab: %s\n", error);
                sim.id = id;
                sim.state_id = state_now;
                return;
        }
        sim_lab_free(sim.lab);
        sim.lab = lab;
        sim.id = id;
        sim.state_id = state_id;
        deliver_xids(false);
}

/* Entry-point prologue for calls that take no device: initialised, lab
 * current, and no error injected for `function`. */
static nvmlReturn_t begin_refresh(const char *function, bool force)
{
        if (sim.refcount == 0)
                return NVML_ERROR_UNINITIALIZED;
        refresh(force);
        return sim_errors_lookup(&sim.lab->errors, function);
}

static nvmlReturn_t begin(const char *function)
{
        return begin_refresh(function, false);
}

/* What a device handle resolves to for one call. */
typedef struct Target {
        unsigned index;
        SimGpu *gpu;
        SimInstance *instance; /* NULL for a whole-GPU handle */
        int instance_index;    /* -1 for a whole-GPU handle */
} Target;

static struct nvmlDevice_st *handle_slot(nvmlDevice_t device)
{
        uintptr_t p = (uintptr_t)device, base = (uintptr_t)&sim.handles[0][0];
        size_t n = sizeof(sim.handles) / sizeof(sim.handles[0][0]);

        if (p < base || p >= base + n * sizeof(sim.handles[0][0]) ||
            (p - base) % sizeof(sim.handles[0][0]) != 0)
                return NULL;
        return device;
}

/* Entry-point prologue for calls on a device handle. Order of checks as in
 * NVML: initialised, handle valid, GPU not lost, then injected errors (the
 * GPU's own for a whole-GPU handle, the instance's for a MIG handle, and the
 * top-level ones for every call). */
static nvmlReturn_t begin_device(const char *function, nvmlDevice_t device, Target *ret)
{
        struct nvmlDevice_st *slot;
        nvmlReturn_t r;
        Target t = { .instance_index = -1 };

        r = begin(function);
        if (r != NVML_SUCCESS)
                return r;
        slot = handle_slot(device);
        if (!slot || slot->uuid[0] == '\0')
                return NVML_ERROR_INVALID_ARGUMENT;
        if (slot->gpu >= sim.lab->n_gpus)
                return slot->mig ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_GPU_NOT_FOUND;
        t.index = slot->gpu;
        t.gpu = &sim.lab->gpus[slot->gpu];
        if (slot->mig == 0 && strcmp(slot->uuid, t.gpu->uuid) != 0)
                return NVML_ERROR_GPU_NOT_FOUND;
        if (t.gpu->lost)
                return NVML_ERROR_GPU_IS_LOST;
        if (slot->mig > 0) {
                /* A MIG handle outlives its instance only as an invalid argument,
                 * as after `nvidia-smi mig -dci` on a real driver. */
                if (slot->mig > t.gpu->n_instances ||
                    strcmp(slot->uuid, t.gpu->instances[slot->mig - 1].uuid) != 0 ||
                    strcmp(sim.handles[slot->gpu][0].uuid, t.gpu->uuid) != 0)
                        return NVML_ERROR_INVALID_ARGUMENT;
                t.instance_index = (int)slot->mig - 1;
                t.instance = &t.gpu->instances[t.instance_index];
        }
        r = sim_errors_lookup(t.instance ? &t.instance->errors : &t.gpu->errors, function);
        if (r != NVML_SUCCESS)
                return r;
        *ret = t;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
/* /proc/driver/nvidia-caps/mig-minors as the driver writes it: a static
 * table, "config 1", "monitor 2", then for each of the 32 GPU minors and
 * GPU instance ids 0..14 "gpuG/giI/access M" followed by its compute
 * instances 0..7 "gpuG/giI/ciC/access M+1+C" (9 minors per GPU instance,
 * 135 per GPU). Written where $GPUKEEPER_SIM_MIG_MINORS says, when set;
 * tests tell the daemon that path and mknod /dev/nvidia-caps nodes from it. */
#define SIM_CAPS_GPUS 32
static void write_mig_minors(void)
{
        const char *path = getenv("GPUKEEPER_SIM_MIG_MINORS");
        char tmp[PATH_MAX + 32];
        unsigned minor = 3;
        FILE *f;

        if (!path || !path[0] ||
            (size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
                return;
        f = fopen(tmp, "we");
        if (!f) {
                fprintf(stderr, "gpukeeper-nvml-sim: cannot write %s: %m\n", tmp);
                return;
        }
        fputs("config 1\nmonitor 2\n", f);
        for (unsigned g = 0; g < SIM_CAPS_GPUS; g++)
                for (unsigned gi = 0; gi <= SIM_MAX_GI_ID; gi++) {
                        fprintf(f, "gpu%u/gi%u/access %u\n", g, gi, minor++);
                        for (unsigned ci = 0; ci <= SIM_MAX_CI_ID; ci++)
                                fprintf(f, "gpu%u/gi%u/ci%u/access %u\n", g, gi, ci, minor++);
                }
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                fprintf(stderr, "gpukeeper-nvml-sim: cannot write %s: %m\n", path);
                (void)unlink(tmp);
        }
}
#endif

static nvmlReturn_t init(const char *function)
{
        LOCKED;
        char error[512];
        const char *path;
        nvmlReturn_t r;

        if (sim.refcount == 0) {
                path = getenv("GPUKEEPER_SIM_LAB");
                if (!path || !path[0] || strlen(path) >= sizeof(sim.path)) {
                        fprintf(stderr, "gpukeeper-nvml-sim: $GPUKEEPER_SIM_LAB does not name a lab file\n");
                        return NVML_ERROR_DRIVER_NOT_LOADED;
                }
                strcpy(sim.path, path);
                sim.id = (SimFileId) {};
                path = getenv("GPUKEEPER_SIM_STATE");
                if (path && path[0])
                        r = snprintf(sim.state_path, sizeof(sim.state_path), "%s", path);
                else
                        r = snprintf(sim.state_path, sizeof(sim.state_path), "%s.mig-state.json",
                                     sim.path);
                if (r < 0 || (size_t)r >= sizeof(sim.state_path)) {
                        fprintf(stderr, "gpukeeper-nvml-sim: the MIG state file path is too long\n");
                        return NVML_ERROR_DRIVER_NOT_LOADED;
                }
                if (sim_lab_load(sim.path, sim.state_path, SIM_DEFAULT_DRIVER_VERSION, &sim.lab,
                                 &sim.id, &sim.state_id, error, sizeof(error)) < 0) {
                        fprintf(stderr, "gpukeeper-nvml-sim: %s\n", error);
                        return NVML_ERROR_DRIVER_NOT_LOADED;
                }
                r = sim_errors_lookup(&sim.lab->errors, function);
                if (r != NVML_SUCCESS) {
                        sim_lab_free(TAKE_PTR(sim.lab));
                        return r;
                }
                memset(sim.xid_delivered, 0, sizeof(sim.xid_delivered));
                deliver_xids(true);
#if SIM_HAS_VERSIONED
                write_mig_minors();
#endif
        } else {
                refresh(true);
                r = sim_errors_lookup(&sim.lab->errors, function);
                if (r != NVML_SUCCESS)
                        return r;
        }
        sim.refcount++;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlInit_v2(void)
{
        return init(__func__);
}
#endif

nvmlReturn_t nvmlInit(void)
{
        return init(__func__);
}

nvmlReturn_t nvmlShutdown(void)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);

        if (r != NVML_SUCCESS)
                return r;
        if (--sim.refcount > 0)
                return NVML_SUCCESS;
        /* Handles and event sets die with the last reference, as in NVML. */
        sim_lab_free(TAKE_PTR(sim.lab));
        while (sim.sets) {
                struct nvmlEventSet_st *next = sim.sets->next;

                free(sim.sets);
                sim.sets = next;
        }
        memset(sim.handles, 0, sizeof(sim.handles));
        memset(sim.gi_handles, 0, sizeof(sim.gi_handles));
        memset(sim.ci_handles, 0, sizeof(sim.ci_handles));
        return NVML_SUCCESS;
}

/* The texts libnvidia-ml returns (pynvml and DCGM carry the same table). */
const char *nvmlErrorString(nvmlReturn_t result)
{
        switch (result) {
        case NVML_SUCCESS: return "Success";
        case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
        case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
        case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
        case NVML_ERROR_NOT_FOUND: return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
        case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
        case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
        case NVML_ERROR_TIMEOUT: return "Timeout";
        case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
        case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
        case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
        case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
        case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
        case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
        case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
        case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
        case NVML_ERROR_IN_USE: return "In use by another client";
        case NVML_ERROR_MEMORY: return "Insufficient Memory";
        case NVML_ERROR_NO_DATA: return "No data";
        case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Ran out of critical resources, other than memory";
        case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
        case NVML_ERROR_DEPRECATED: return "Deprecated";
        case NVML_ERROR_NOT_READY: return "Not ready";
        case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
        case NVML_ERROR_INVALID_STATE: return "Invalid state";
        default: return "Unknown Error";
        }
}

const char *gpukeeperSimVersion(void)
{
        return "gpukeeper-nvml-sim 1";
}

/* NVML's string protocol: the whole string plus its NUL must fit. */
static nvmlReturn_t copy_string(const char *s, char *buf, unsigned length)
{
        size_t n = strlen(s);

        if (!buf)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (n + 1 > length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(buf, s, n + 1);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
        LOCKED;
        nvmlReturn_t r = begin_refresh(__func__, true);

        return r != NVML_SUCCESS ? r : copy_string(sim.lab->driver_version, version, length);
}

static nvmlReturn_t get_count(const char *function, unsigned *count)
{
        LOCKED;
        nvmlReturn_t r = begin_refresh(function, true);

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (sim.lab->delay_ms > 0) {
                /* A driver that takes this long to answer (the lab's
                 * "delay_ms"): the caller must not freeze with it. */
                struct timespec ts = {.tv_sec = sim.lab->delay_ms / 1000,
                                      .tv_nsec = (long)(sim.lab->delay_ms % 1000) * 1000000L};

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
        *count = (unsigned)sim.lab->n_gpus;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
        return get_count(__func__, count);
}
#endif

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
        return get_count(__func__, count);
}

static nvmlReturn_t get_handle_by_index(const char *function, unsigned index,
                                        nvmlDevice_t *device)
{
        LOCKED;
        nvmlReturn_t r = begin(function);
        SimGpu *gpu;

        if (r != NVML_SUCCESS)
                return r;
        if (index >= sim.lab->n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        gpu = &sim.lab->gpus[index];
        if (gpu->lost)
                return NVML_ERROR_GPU_IS_LOST;
        r = sim_errors_lookup(&gpu->errors, function);
        if (r != NVML_SUCCESS)
                return r;
        if (!device)
                return NVML_ERROR_INVALID_ARGUMENT;
        sim.handles[index][0].gpu = index;
        sim.handles[index][0].mig = 0;
        strcpy(sim.handles[index][0].uuid, gpu->uuid);
        *device = &sim.handles[index][0];
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
        return get_handle_by_index(__func__, index, device);
}
#endif

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
        return get_handle_by_index(__func__, index, device);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        char mig_name[SIM_NAME_MAX + SIM_PROFILE_MAX + 8];

        if (r != NVML_SUCCESS)
                return r;
        if (!t.instance)
                return copy_string(t.gpu->name, name, length);
        /* What drivers report for a MIG device, e.g. "NVIDIA A100-SXM4-80GB MIG 3g.40gb". */
        snprintf(mig_name, sizeof(mig_name), "%s MIG %s", t.gpu->name, t.instance->profile);
        return copy_string(mig_name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        return copy_string(t.instance ? t.instance->uuid : t.gpu->uuid, uuid, length);
}

/* `bytes` is how much of nvmlPciInfo_t the symbol version writes: the
 * original call predates the 32-byte busId and stops after pciSubSystemId.
 * A MIG handle reports its parent's PCI location. */
static nvmlReturn_t get_pci_info(const char *function, nvmlDevice_t device, nvmlPciInfo_t *pci,
                                 size_t bytes)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(function, device, &t);
        nvmlPciInfo_t info = {};

        if (r != NVML_SUCCESS)
                return r;
        if (!pci)
                return NVML_ERROR_INVALID_ARGUMENT;
        snprintf(info.busIdLegacy, sizeof(info.busIdLegacy), "%04X:%02X:%02X.0",
                 t.gpu->pci_domain, t.gpu->pci_bus, t.gpu->pci_device);
        snprintf(info.busId, sizeof(info.busId), "%08X:%02X:%02X.0", t.gpu->pci_domain,
                 t.gpu->pci_bus, t.gpu->pci_device);
        info.domain = t.gpu->pci_domain;
        info.bus = t.gpu->pci_bus;
        info.device = t.gpu->pci_device;
        info.pciDeviceId = t.gpu->pci_device_id;
        info.pciSubSystemId = t.gpu->pci_subsystem_id;
        memcpy(pci, &info, bytes);
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        return get_pci_info(__func__, device, pci, sizeof(nvmlPciInfo_t));
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        return get_pci_info(__func__, device, pci, sizeof(nvmlPciInfo_t));
}
#endif

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        return get_pci_info(__func__, device, pci, offsetof(nvmlPciInfo_t, busId));
}

#if SIM_HAS_VERSIONED
/* The GPU's "numa_node" as a one-bit mask, the same for both scopes (a lab
 * has one node per socket) and for its MIG handles, as with PCI info. NVML
 * has no INSUFFICIENT_SIZE here: nodeSetSize is how many words are safe to
 * write, all of them are written, and a node beyond them is not reported. */
nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t device, unsigned int nodeSetSize,
                                         unsigned long *nodeSet, nvmlAffinityScope_t scope)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        const unsigned bits = 8 * sizeof(unsigned long);

        if (r != NVML_SUCCESS)
                return r;
        if (nodeSetSize == 0 || !nodeSet || scope > NVML_AFFINITY_SCOPE_SOCKET)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.gpu->numa_node < 0)
                return NVML_ERROR_NOT_SUPPORTED;
        memset(nodeSet, 0, (size_t)nodeSetSize * sizeof(*nodeSet));
        if ((unsigned)t.gpu->numa_node / bits < nodeSetSize)
                nodeSet[(unsigned)t.gpu->numa_node / bits] =
                        1ul << ((unsigned)t.gpu->numa_node % bits);
        return NVML_SUCCESS;
}
#endif

/* The GPU's "cpu_affinity" as a bitmask, also for its MIG handles. Like
 * NVML, cpuSetSize words are written and CPUs beyond them are not reported. */
nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize,
                                      unsigned long *cpuSet)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (cpuSetSize == 0 || !cpuSet)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!t.gpu->has_cpu_affinity)
                return NVML_ERROR_NOT_SUPPORTED;
        for (unsigned i = 0; i < cpuSetSize; i++)
                cpuSet[i] = i < sizeof t.gpu->cpu_affinity / sizeof t.gpu->cpu_affinity[0] ? t.gpu->cpu_affinity[i] : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!minor)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* MIG devices are reached through /dev/nvidia-caps, not a minor of their own. */
        if (t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        *minor = t.gpu->minor;
        return NVML_SUCCESS;
}

/* Memory of the handle in bytes. `used` excludes reserved memory (the
 * nvmlMemory_v2_t meaning); it defaults to what the processes use. */
static void memory_of(const Target *t, uint64_t *ret_total, uint64_t *ret_reserved,
                      uint64_t *ret_used)
{
        uint64_t used = 0;

        if (t->instance ? t->instance->has_memory_used : t->gpu->has_memory_used)
                used = t->instance ? t->instance->memory_used_mib : t->gpu->memory_used_mib;
        else
                for (size_t i = 0; i < t->gpu->n_processes; i++) {
                        const SimProcess *p = &t->gpu->processes[i];

                        if (p->used_known && (!t->instance || p->instance == t->instance_index))
                                used += p->used_mib;
                }
        *ret_total = (t->instance ? t->instance->memory_total_mib : t->gpu->memory_total_mib) * SIM_MIB;
        *ret_reserved = (t->instance ? 0 : t->gpu->memory_reserved_mib) * SIM_MIB;
        *ret_used = used * SIM_MIB;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        uint64_t total, reserved, used;

        if (r != NVML_SUCCESS)
                return r;
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        memory_of(&t, &total, &reserved, &used);
        /* The v1 struct has no reserved field: reserved memory counts as used. */
        memory->total = total;
        memory->used = used + reserved;
        memory->free = memory->used < total ? total - memory->used : 0;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        uint64_t total, reserved, used;

        if (r != NVML_SUCCESS)
                return r;
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (memory->version != nvmlMemory_v2)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        memory_of(&t, &total, &reserved, &used);
        memory->total = total;
        memory->reserved = reserved;
        memory->used = used;
        memory->free = used + reserved < total ? total - used - reserved : 0;
        return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!utilization)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* Neither MIG devices nor their MIG-mode parent report utilisation. */
        if (t.instance || t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        utilization->gpu = t.gpu->utilization_gpu;
        utilization->memory = t.gpu->utilization_memory;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!temp || sensor != NVML_TEMPERATURE_GPU)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        *temp = t.gpu->temperature_c;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!power)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        *power = t.gpu->power_mw;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!energy)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        *energy = t.gpu->energy_mj;
        return NVML_SUCCESS;
}

static bool process_listed(const Target *t, const SimProcess *p, unsigned type)
{
        return (p->types & type) && (!t->instance || p->instance == t->instance_index);
}

/* The running-process protocol shared by every version of the compute and
 * graphics calls. `entry_size` is what the symbol writes per process: 16
 * (v1), 24 (v2/v3) or 32 (the nvmlProcessDetail_v1_t of buggy 535 drivers),
 * whatever the caller's array was sized for. A MIG-mode parent lists every
 * instance's processes; a MIG handle only its own. */
static nvmlReturn_t get_processes(const char *function, nvmlDevice_t device, unsigned *count,
                                  void *infos, unsigned type, size_t entry_size)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(function, device, &t);
        unsigned needed = 0, k = 0;

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (size_t i = 0; i < t.gpu->n_processes; i++)
                if (process_listed(&t, &t.gpu->processes[i], type))
                        needed++;
        if (*count < needed) {
                *count = needed;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        if (needed > 0 && !infos)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (size_t i = 0; i < t.gpu->n_processes; i++) {
                const SimProcess *p = &t.gpu->processes[i];
                nvmlProcessDetail_v1_t e = {};

                if (!process_listed(&t, p, type))
                        continue;
                e.pid = p->pid;
                e.usedGpuMemory = p->used_known ? p->used_mib * SIM_MIB : NVML_VALUE_NOT_AVAILABLE;
                if (p->instance >= 0) {
                        e.gpuInstanceId = t.gpu->instances[p->instance].gi;
                        e.computeInstanceId = t.gpu->instances[p->instance].ci;
                } else {
                        e.gpuInstanceId = NVML_INSTANCE_ID_NONE;
                        e.computeInstanceId = NVML_INSTANCE_ID_NONE;
                }
                memcpy((unsigned char *)infos + (size_t)k * entry_size, &e, entry_size);
                k++;
        }
        *count = needed;
        return NVML_SUCCESS;
}

#if SIM_VARIANT == SIM_VARIANT_535
#define SIM_V3_ENTRY_SIZE sizeof(nvmlProcessDetail_v1_t)
#else
#define SIM_V3_ENTRY_SIZE sizeof(nvmlProcessInfo_v2_t)
#endif

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_COMPUTE, SIM_V3_ENTRY_SIZE);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *count,
                                                     void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_COMPUTE,
                             sizeof(nvmlProcessInfo_v2_t));
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                      void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_GRAPHICS, SIM_V3_ENTRY_SIZE);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned int *count,
                                                      void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_GRAPHICS,
                             sizeof(nvmlProcessInfo_v2_t));
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *count,
                                                  void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_COMPUTE,
                             sizeof(nvmlProcessInfo_v1_t));
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned int *count,
                                                   void *infos)
{
        return get_processes(__func__, device, count, infos, SIM_PROCESS_GRAPHICS,
                             sizeof(nvmlProcessInfo_v1_t));
}

/* One sample per process on a whole GPU, stamped now. Like NVML: NOT_FOUND
 * when there is no sample newer than `last_seen`, INSUFFICIENT_SIZE (with
 * the needed count) for a NULL or short buffer, NOT_SUPPORTED in MIG mode. */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *count, unsigned long long last_seen)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        unsigned long long now;
        unsigned needed;

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        now = now_usec(CLOCK_REALTIME);
        needed = now > last_seen ? (unsigned)t.gpu->n_processes : 0;
        if (needed == 0)
                return NVML_ERROR_NOT_FOUND;
        if (!utilization || *count < needed) {
                *count = needed;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        for (unsigned i = 0; i < needed; i++)
                utilization[i] = (nvmlProcessUtilizationSample_t) {
                        .pid = t.gpu->processes[i].pid,
                        .timeStamp = now,
                        .smUtil = t.gpu->processes[i].sm_util,
                        .memUtil = t.gpu->processes[i].mem_util,
                };
        *count = needed;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current,
                                  unsigned int *pending)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!current || !pending)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* A GPU without a "mig" object models a pre-Ampere or consumer GPU. */
        if (t.instance || !t.gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *current = t.gpu->mig_enabled ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        *pending = t.gpu->mig_pending ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        return NVML_SUCCESS;
}

/* nvml.h: "Returns zero if MIG is not supported or enabled"; NOT_SUPPORTED
 * for GPUs that cannot do MIG at all. */
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || !t.gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *count = t.gpu->mig_enabled ? SIM_MAX_MIG : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *mig)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        struct nvmlDevice_st *slot;

        if (r != NVML_SUCCESS)
                return r;
        if (!mig || t.instance || !t.gpu->mig_enabled || index >= SIM_MAX_MIG)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (index >= t.gpu->n_instances)
                return NVML_ERROR_NOT_FOUND;
        slot = &sim.handles[t.index][1 + index];
        slot->gpu = t.index;
        slot->mig = 1 + index;
        strcpy(slot->uuid, t.gpu->instances[index].uuid);
        *mig = slot;
        return NVML_SUCCESS;
}

static nvmlReturn_t get_instance_id(const char *function, nvmlDevice_t device, unsigned *id,
                                    bool compute)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(function, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!id)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        *id = compute ? t.instance->ci : t.instance->gi;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
        return get_instance_id(__func__, device, id, false);
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
        return get_instance_id(__func__, device, id, true);
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *device)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, mig, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!device || !t.instance)
                return NVML_ERROR_INVALID_ARGUMENT;
        *device = &sim.handles[t.index][0];
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!is_mig)
                return NVML_ERROR_INVALID_ARGUMENT;
        *is_mig = t.instance != NULL;
        return NVML_SUCCESS;
}

/* NVML_GPU_INSTANCE_PROFILE_COUNT in nvml.h: valid profile indexes are below it. */
#define SIM_GPU_INSTANCE_PROFILE_COUNT 0x11u

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int profile,
                                                 nvmlGpuInstanceProfileInfo_t *info)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        const SimMigProfile *p;

        if (r != NVML_SUCCESS)
                return r;
        if (!info || profile >= SIM_GPU_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || !t.gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        p = sim_mig_profile_by_index(t.gpu->family, profile);
        if (!p)
                return NVML_ERROR_NOT_SUPPORTED;
        *info = (nvmlGpuInstanceProfileInfo_t) {
                .id = p->id,
                .isP2pSupported = 0,
                .sliceCount = p->slices,
                .instanceCount = p->instances,
                .multiprocessorCount = p->multiprocessors,
                .copyEngineCount = p->copy_engines,
                .decoderCount = p->decoders,
                .encoderCount = p->encoders,
                .jpegCount = p->jpegs,
                .ofaCount = p->ofas,
                .memorySizeMB = p->memory_mib,
        };
        return NVML_SUCCESS;
}

/* ---- MIG management (nvml.h "Multi Instance GPU Management") ----
 *
 * Changes are made to the in-memory lab and written to the MIG state file
 * (sim/README.md) under an flock() on "<state>.lock", after re-reading the
 * lab and the state, so every process using the simulator (the daemon, the
 * CLI, tests) sees one MIG state and two writers cannot lose each other's
 * changes. Error codes follow nvml.h's documentation of each call. */

/* NVML_COMPUTE_INSTANCE_PROFILE_COUNT of the nvml.h whose GPU profile count is 0x11. */
#define SIM_COMPUTE_INSTANCE_PROFILE_COUNT 0x8u

static const unsigned sim_ci_slices[] = { 1, 2, 3, 4, 7 }; /* CI profile index 0x0..0x4 */

static void state_unlockp(int *fd)
{
        if (*fd >= 0)
                close(*fd); /* releases the flock */
}

/* Serialise MIG changes across processes. Returns the lock fd or -1 (then
 * the change is made anyway: a test directory without write access fails
 * later, at the write, with a clear code). */
static int state_lock(void)
{
        char path[PATH_MAX + 8];
        int fd;

        if ((size_t)snprintf(path, sizeof(path), "%s.lock", sim.state_path) >= sizeof(path))
                return -1;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

#define STATE_LOCKED _cleanup_(state_unlockp) _unused_ int _state_lock = state_lock()

/* Make a change to `gpu` durable and visible to other processes. */
static nvmlReturn_t commit(SimGpu *gpu, unsigned index)
{
        char error[256];

        gpu->mig_from_state = true;
        if (sim_gpu_resolve_processes(gpu, index, error, sizeof(error)) < 0)
                return NVML_ERROR_UNKNOWN;
        if (sim_state_write(sim.state_path, sim.lab, &sim.state_id) < 0) {
                fprintf(stderr, "gpukeeper-nvml-sim: cannot write the MIG state file %s\n",
                        sim.state_path);
                return NVML_ERROR_UNKNOWN;
        }
        return NVML_SUCCESS;
}

static void new_mig_uuid(char *buf, size_t len)
{
        uint8_t b[16] = {};

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
                uint64_t t = now_usec(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);

                memcpy(b, &t, sizeof(t));
                memcpy(b + 8, &sim.lab, sizeof(sim.lab) < 8 ? sizeof(sim.lab) : 8);
        }
        b[6] = (uint8_t)((b[6] & 0x0F) | 0x50);
        b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
        snprintf(buf, len,
                 "MIG-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
}

static SimGpuInstance *find_gi(SimGpu *gpu, unsigned id)
{
        for (size_t i = 0; i < gpu->n_gis; i++)
                if (gpu->gis[i].id == id)
                        return &gpu->gis[i];
        return NULL;
}

/* Resolve a GPU instance handle: initialised, handle ours and still
 * pointing at a GPU with the same UUID, GPU not lost, injected errors of
 * that GPU, MIG on and the instance still there. */
static nvmlReturn_t begin_gi(const char *function, nvmlGpuInstance_t handle, Target *ret_t,
                             SimGpuInstance **ret_gi)
{
        uintptr_t p = (uintptr_t)handle, base = (uintptr_t)&sim.gi_handles[0][0];
        size_t n = sizeof(sim.gi_handles) / sizeof(sim.gi_handles[0][0]);
        nvmlReturn_t r = begin(function);
        SimGpu *gpu;

        if (r != NVML_SUCCESS)
                return r;
        if (p < base || p >= base + n * sizeof(sim.gi_handles[0][0]) ||
            (p - base) % sizeof(sim.gi_handles[0][0]) != 0 || handle->gpu_uuid[0] == '\0' ||
            handle->gpu >= sim.lab->n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        gpu = &sim.lab->gpus[handle->gpu];
        if (strcmp(gpu->uuid, handle->gpu_uuid) != 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (gpu->lost)
                return NVML_ERROR_GPU_IS_LOST;
        r = sim_errors_lookup(&gpu->errors, function);
        if (r != NVML_SUCCESS)
                return r;
        if (!gpu->mig_enabled || !find_gi(gpu, handle->id))
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret_t = (Target) { .index = handle->gpu, .gpu = gpu, .instance_index = -1 };
        *ret_gi = find_gi(gpu, handle->id);
        return NVML_SUCCESS;
}

static nvmlGpuInstance_t gi_handle(unsigned gpu_index, const SimGpu *gpu, unsigned id)
{
        struct nvmlGpuInstance_st *h = &sim.gi_handles[gpu_index][id];

        h->gpu = gpu_index;
        h->id = id;
        snprintf(h->gpu_uuid, sizeof(h->gpu_uuid), "%s", gpu->uuid);
        return h;
}

static nvmlComputeInstance_t ci_handle(unsigned gpu_index, const SimGpu *gpu, unsigned gi,
                                       unsigned ci)
{
        struct nvmlComputeInstance_st *h = &sim.ci_handles[gpu_index][gi][ci];

        h->gpu = gpu_index;
        h->gi = gi;
        h->id = ci;
        snprintf(h->gpu_uuid, sizeof(h->gpu_uuid), "%s", gpu->uuid);
        return h;
}

static int find_ci(const SimGpu *gpu, unsigned gi, unsigned ci)
{
        for (size_t i = 0; i < gpu->n_instances; i++)
                if (gpu->instances[i].gi == gi && gpu->instances[i].ci == ci)
                        return (int)i;
        return -1;
}

/* A whole-GPU handle of a MIG-capable GPU, for the calls that need one. */
static nvmlReturn_t begin_mig_device(const char *function, nvmlDevice_t device, Target *t)
{
        nvmlReturn_t r = begin_device(function, device, t);

        if (r != NVML_SUCCESS)
                return r;
        if (t->instance || !t->gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        return NVML_SUCCESS;
}

/* The mode takes effect at the next GPU reset (sim/sim-reset.py; a real
 * driver resets the GPU itself only when nothing holds it open, and the
 * process asking holds NVML open), so a change leaves it pending and says
 * so in activationStatus, as nvidia-smi's "pending enable state ... In use
 * by another client". Disabling with GPU instances left is IN_USE. */
nvmlReturn_t nvmlDeviceSetMigMode(nvmlDevice_t device, unsigned int mode,
                                  nvmlReturn_t *activationStatus)
{
        LOCKED;
        STATE_LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!activationStatus || mode > NVML_DEVICE_MIG_ENABLE)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (mode == NVML_DEVICE_MIG_DISABLE && t.gpu->n_gis > 0)
                return NVML_ERROR_IN_USE;
        t.gpu->mig_pending = mode == NVML_DEVICE_MIG_ENABLE;
        r = commit(t.gpu, t.index);
        if (r != NVML_SUCCESS)
                return r;
        *activationStatus = t.gpu->mig_pending == t.gpu->mig_enabled ? NVML_SUCCESS : NVML_ERROR_IN_USE;
        return NVML_SUCCESS;
}

static void fill_profile_v1(const SimMigProfile *p, nvmlGpuInstanceProfileInfo_t *info)
{
        *info = (nvmlGpuInstanceProfileInfo_t) {
                .id = p->id,
                .isP2pSupported = 0,
                .sliceCount = p->slices,
                .instanceCount = p->instances,
                .multiprocessorCount = p->multiprocessors,
                .copyEngineCount = p->copy_engines,
                .decoderCount = p->decoders,
                .encoderCount = p->encoders,
                .jpegCount = p->jpegs,
                .ofaCount = p->ofas,
                .memorySizeMB = p->memory_mib,
        };
}

/* The V call: nvmlGpuInstanceProfileInfo_v2_t (version word checked) with
 * the profile's name as nvidia-smi prints it ("MIG 1g.10gb"). */
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned int profile,
                                                  nvmlGpuInstanceProfileInfo_v2_t *info)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        nvmlGpuInstanceProfileInfo_t v1;
        const SimMigProfile *p;

        if (r != NVML_SUCCESS)
                return r;
        if (!info || info->version != nvmlGpuInstanceProfileInfo_v2 ||
            profile >= SIM_GPU_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || !t.gpu->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        p = sim_mig_profile_by_index(t.gpu->family, profile);
        if (!p)
                return NVML_ERROR_NOT_SUPPORTED;
        fill_profile_v1(p, &v1);
        *info = (nvmlGpuInstanceProfileInfo_v2_t) {
                .version = nvmlGpuInstanceProfileInfo_v2,
                .id = v1.id,
                .isP2pSupported = v1.isP2pSupported,
                .sliceCount = v1.sliceCount,
                .instanceCount = v1.instanceCount,
                .multiprocessorCount = v1.multiprocessorCount,
                .copyEngineCount = v1.copyEngineCount,
                .decoderCount = v1.decoderCount,
                .encoderCount = v1.encoderCount,
                .jpegCount = v1.jpegCount,
                .ofaCount = v1.ofaCount,
                .memorySizeMB = v1.memorySizeMB,
        };
        snprintf(info->name, sizeof(info->name), "MIG %s", p->name);
        return NVML_SUCCESS;
}

/* "regardless of whether MIG is enabled or not" (nvml.h); NULL placements
 * asks for the count; a non-NULL array must hold them all. */
nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(nvmlDevice_t device,
                                                           unsigned int profileId,
                                                           nvmlGpuInstancePlacement_t *placements,
                                                           unsigned int *count)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(__func__, device, &t);
        const SimMigProfile *p;
        unsigned n = 0;

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        p = sim_mig_profile_by_id(t.gpu->family, profileId);
        if (!p)
                return NVML_ERROR_NOT_SUPPORTED;
        for (unsigned s = 0; s < SIM_MEMORY_SLICES; s++)
                if (p->starts & (1u << s)) {
                        if (placements)
                                placements[n] = (nvmlGpuInstancePlacement_t) { s, p->mem_slices };
                        n++;
                }
        *count = n;
        return NVML_SUCCESS;
}

/* The lowest allowed start of `p` whose slices are free, or -1. */
static int first_free_placement(const SimGpu *gpu, const SimMigProfile *p)
{
        for (unsigned s = 0; s < SIM_MEMORY_SLICES; s++)
                if ((p->starts & (1u << s)) && sim_gpu_placement_free(gpu, s, p->mem_slices))
                        return (int)s;
        return -1;
}

static unsigned count_of_profile(const SimGpu *gpu, const SimMigProfile *p)
{
        unsigned n = 0;

        for (size_t i = 0; i < gpu->n_gis; i++)
                n += gpu->gis[i].profile == p;
        return n;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device, unsigned int profileId,
                                                       unsigned int *count)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(__func__, device, &t);
        const SimMigProfile *p;
        SimGpu probe;
        unsigned n = 0;
        int s;

        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        p = sim_mig_profile_by_id(t.gpu->family, profileId);
        if (!p || !t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        /* How many more fit, placed lowest-first the way Create places them. */
        probe = *t.gpu;
        while (probe.n_gis < SIM_MAX_MIG && count_of_profile(&probe, p) < p->instances &&
               (s = first_free_placement(&probe, p)) >= 0) {
                probe.gis[probe.n_gis++] = (SimGpuInstance) { .profile = p, .start = (unsigned)s,
                                                              .size = p->mem_slices };
                n++;
        }
        *count = n;
        return NVML_SUCCESS;
}

/* The lowest free GPU instance id: 0 is the whole-GPU (7-slice) instance's. */
static int new_gi_id(const SimGpu *gpu, const SimMigProfile *p)
{
        for (unsigned id = p->profile_index == NVML_GPU_INSTANCE_PROFILE_7_SLICE ? 0 : 1;
             id <= SIM_MAX_GI_ID; id++) {
                bool used = false;

                for (size_t i = 0; i < gpu->n_gis; i++)
                        used |= gpu->gis[i].id == id;
                if (!used)
                        return (int)id;
        }
        return -1;
}

static nvmlReturn_t create_gi(const char *function, nvmlDevice_t device, unsigned profileId,
                              const nvmlGpuInstancePlacement_t *placement,
                              nvmlGpuInstance_t *gpuInstance)
{
        LOCKED;
        STATE_LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(function, device, &t);
        const SimMigProfile *p;
        SimGpuInstance *g;
        int start, id;

        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstance)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        p = sim_mig_profile_by_id(t.gpu->family, profileId);
        if (!p)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (placement) {
                /* Not one of the profile's placements: a bad argument; one
                 * that is taken: the resources are not there. */
                if (placement->start >= SIM_MEMORY_SLICES || placement->size != p->mem_slices ||
                    !(p->starts & (1u << placement->start)))
                        return NVML_ERROR_INVALID_ARGUMENT;
                start = sim_gpu_placement_free(t.gpu, placement->start, p->mem_slices)
                                ? (int)placement->start
                                : -1;
        } else
                start = first_free_placement(t.gpu, p);
        id = new_gi_id(t.gpu, p);
        if (start < 0 || id < 0 || t.gpu->n_gis >= SIM_MAX_MIG ||
            count_of_profile(t.gpu, p) >= p->instances)
                return NVML_ERROR_INSUFFICIENT_RESOURCES;
        g = &t.gpu->gis[t.gpu->n_gis++];
        *g = (SimGpuInstance) { .id = (unsigned)id, .profile = p, .start = (unsigned)start,
                                .size = p->mem_slices };
        snprintf(g->profile_name, sizeof(g->profile_name), "%s", p->name);
        r = commit(t.gpu, t.index);
        if (r != NVML_SUCCESS)
                return r;
        *gpuInstance = gi_handle(t.index, t.gpu, (unsigned)id);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceCreateGpuInstance(nvmlDevice_t device, unsigned int profileId,
                                         nvmlGpuInstance_t *gpuInstance)
{
        return create_gi(__func__, device, profileId, NULL, gpuInstance);
}

nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(nvmlDevice_t device, unsigned int profileId,
                                                      const nvmlGpuInstancePlacement_t *placement,
                                                      nvmlGpuInstance_t *gpuInstance)
{
        if (!placement) {
                LOCKED;
                nvmlReturn_t r = begin(__func__);

                return r != NVML_SUCCESS ? r : NVML_ERROR_INVALID_ARGUMENT;
        }
        return create_gi(__func__, device, profileId, placement, gpuInstance);
}

/* IN_USE while compute instances exist (nvml.h: "processes ... or compute
 * instances are active on the GPU instance"). */
nvmlReturn_t nvmlGpuInstanceDestroy(nvmlGpuInstance_t gpuInstance)
{
        LOCKED;
        STATE_LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);
        size_t k;

        if (r != NVML_SUCCESS)
                return r;
        for (size_t i = 0; i < t.gpu->n_instances; i++)
                if (t.gpu->instances[i].gi == g->id)
                        return NVML_ERROR_IN_USE;
        k = (size_t)(g - t.gpu->gis);
        memmove(&t.gpu->gis[k], &t.gpu->gis[k + 1], (t.gpu->n_gis - k - 1) * sizeof(*g));
        t.gpu->n_gis--;
        for (size_t i = 0; i < t.gpu->n_instances; i++)
                if (t.gpu->instances[i].gpu_instance > (int)k)
                        t.gpu->instances[i].gpu_instance--;
        return commit(t.gpu, t.index);
}

/* The caller's array must hold the profile's instanceCount handles. */
nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profileId,
                                       nvmlGpuInstance_t *gpuInstances, unsigned int *count)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(__func__, device, &t);
        const SimMigProfile *p;
        unsigned n = 0;

        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstances || !count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        p = sim_mig_profile_by_id(t.gpu->family, profileId);
        if (!p)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (size_t i = 0; i < t.gpu->n_gis; i++)
                if (t.gpu->gis[i].profile == p)
                        gpuInstances[n++] = gi_handle(t.index, t.gpu, t.gpu->gis[i].id);
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id,
                                          nvmlGpuInstance_t *gpuInstance)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_mig_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstance || id > SIM_MAX_GI_ID)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!t.gpu->mig_enabled)
                return NVML_ERROR_NOT_SUPPORTED;
        if (!find_gi(t.gpu, id))
                return NVML_ERROR_NOT_FOUND;
        *gpuInstance = gi_handle(t.index, t.gpu, id);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gpuInstance, nvmlGpuInstanceInfo_t *info)
{
        LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);

        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        *info = (nvmlGpuInstanceInfo_t) {
                .device = &sim.handles[t.index][0],
                .id = g->id,
                .profileId = g->profile ? g->profile->id : 0xFFFFFFFFu,
                .placement = { g->start, g->size },
        };
        /* The parent handle is valid from here on, as if fetched by index. */
        sim.handles[t.index][0].gpu = t.index;
        sim.handles[t.index][0].mig = 0;
        snprintf(sim.handles[t.index][0].uuid, sizeof(sim.handles[t.index][0].uuid), "%s", t.gpu->uuid);
        return NVML_SUCCESS;
}

/* Compute instance profiles of a GPU instance of S compute slices: those of
 * 1, 2, 3, 4 and 7 slices that fit, floor(S / slices) of each. */
static nvmlReturn_t ci_profile_info(const SimGpuInstance *g, unsigned profile, unsigned eng,
                                    nvmlComputeInstanceProfileInfo_t *info)
{
        unsigned s;

        if (profile >= SIM_COMPUTE_INSTANCE_PROFILE_COUNT ||
            eng >= NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->profile || profile >= ELEMENTSOF(sim_ci_slices) ||
            sim_ci_slices[profile] > g->profile->slices)
                return NVML_ERROR_NOT_SUPPORTED;
        s = sim_ci_slices[profile];
        *info = (nvmlComputeInstanceProfileInfo_t) {
                .id = profile,
                .sliceCount = s,
                .instanceCount = g->profile->slices / s,
                .multiprocessorCount = g->profile->multiprocessors * s / g->profile->slices,
                .sharedCopyEngineCount = g->profile->copy_engines,
                .sharedDecoderCount = g->profile->decoders,
                .sharedEncoderCount = g->profile->encoders,
                .sharedJpegCount = g->profile->jpegs,
                .sharedOfaCount = g->profile->ofas,
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(nvmlGpuInstance_t gpuInstance,
                                                          unsigned int profile,
                                                          unsigned int engProfile,
                                                          nvmlComputeInstanceProfileInfo_t *info)
{
        LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);

        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        return ci_profile_info(g, profile, engProfile, info);
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfoV(nvmlGpuInstance_t gpuInstance,
                                                           unsigned int profile,
                                                           unsigned int engProfile,
                                                           nvmlComputeInstanceProfileInfo_v2_t *info)
{
        LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);
        nvmlComputeInstanceProfileInfo_t v1;

        if (r != NVML_SUCCESS)
                return r;
        if (!info || info->version != nvmlComputeInstanceProfileInfo_v2)
                return NVML_ERROR_INVALID_ARGUMENT;
        r = ci_profile_info(g, profile, engProfile, &v1);
        if (r != NVML_SUCCESS)
                return r;
        *info = (nvmlComputeInstanceProfileInfo_v2_t) {
                .version = nvmlComputeInstanceProfileInfo_v2,
                .id = v1.id,
                .sliceCount = v1.sliceCount,
                .instanceCount = v1.instanceCount,
                .multiprocessorCount = v1.multiprocessorCount,
                .sharedCopyEngineCount = v1.sharedCopyEngineCount,
                .sharedDecoderCount = v1.sharedDecoderCount,
                .sharedEncoderCount = v1.sharedEncoderCount,
                .sharedJpegCount = v1.sharedJpegCount,
                .sharedOfaCount = v1.sharedOfaCount,
        };
        if (v1.sliceCount == g->profile->slices)
                snprintf(info->name, sizeof(info->name), "MIG %s", g->profile->name);
        else
                snprintf(info->name, sizeof(info->name), "MIG %uc.%s", v1.sliceCount, g->profile->name);
        return NVML_SUCCESS;
}

/* A new compute instance takes the first free run of compute slices
 * aligned to its size, and the lowest free id. */
nvmlReturn_t nvmlGpuInstanceCreateComputeInstance(nvmlGpuInstance_t gpuInstance,
                                                  unsigned int profileId,
                                                  nvmlComputeInstance_t *computeInstance)
{
        LOCKED;
        STATE_LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);
        nvmlComputeInstanceProfileInfo_t info;
        unsigned used = 0, s, start = UINT_MAX, id = UINT_MAX;
        SimInstance *in;

        if (r != NVML_SUCCESS)
                return r;
        if (!computeInstance)
                return NVML_ERROR_INVALID_ARGUMENT;
        r = ci_profile_info(g, profileId, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &info);
        if (r != NVML_SUCCESS)
                return r;
        s = info.sliceCount;
        for (size_t i = 0; i < t.gpu->n_instances; i++)
                if (t.gpu->instances[i].gi == g->id)
                        used |= ((1u << t.gpu->instances[i].ci_slices) - 1) << t.gpu->instances[i].ci_start;
        for (unsigned st = 0; st + s <= g->profile->slices && start == UINT_MAX; st += s)
                if (!(used & (((1u << s) - 1) << st)))
                        start = st;
        for (unsigned c = 0; c <= SIM_MAX_CI_ID && id == UINT_MAX; c++)
                if (find_ci(t.gpu, g->id, c) < 0)
                        id = c;
        if (start == UINT_MAX || id == UINT_MAX || t.gpu->n_instances >= SIM_MAX_MIG)
                return NVML_ERROR_INSUFFICIENT_RESOURCES;
        in = &t.gpu->instances[t.gpu->n_instances++];
        *in = (SimInstance) { .gi = g->id, .ci = id, .gpu_instance = (int)(g - t.gpu->gis),
                              .ci_profile = profileId, .ci_start = start, .ci_slices = s,
                              .memory_total_mib = g->profile->memory_mib };
        if (s == g->profile->slices)
                snprintf(in->profile, sizeof(in->profile), "%s", g->profile->name);
        else
                snprintf(in->profile, sizeof(in->profile), "%uc.%s", s, g->profile->name);
        new_mig_uuid(in->uuid, sizeof(in->uuid));
        r = commit(t.gpu, t.index);
        if (r != NVML_SUCCESS)
                return r;
        *computeInstance = ci_handle(t.index, t.gpu, g->id, id);
        return NVML_SUCCESS;
}

static nvmlReturn_t begin_ci(const char *function, nvmlComputeInstance_t handle, Target *ret_t,
                             int *ret_index)
{
        uintptr_t p = (uintptr_t)handle, base = (uintptr_t)&sim.ci_handles[0][0][0];
        size_t n = sizeof(sim.ci_handles) / sizeof(sim.ci_handles[0][0][0]);
        nvmlReturn_t r = begin(function);
        SimGpu *gpu;
        int k;

        if (r != NVML_SUCCESS)
                return r;
        if (p < base || p >= base + n * sizeof(sim.ci_handles[0][0][0]) ||
            (p - base) % sizeof(sim.ci_handles[0][0][0]) != 0 || handle->gpu_uuid[0] == '\0' ||
            handle->gpu >= sim.lab->n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        gpu = &sim.lab->gpus[handle->gpu];
        if (strcmp(gpu->uuid, handle->gpu_uuid) != 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (gpu->lost)
                return NVML_ERROR_GPU_IS_LOST;
        r = sim_errors_lookup(&gpu->errors, function);
        if (r != NVML_SUCCESS)
                return r;
        k = find_ci(gpu, handle->gi, handle->id);
        if (!gpu->mig_enabled || k < 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret_t = (Target) { .index = handle->gpu, .gpu = gpu, .instance_index = k,
                            .instance = &gpu->instances[k] };
        *ret_index = k;
        return NVML_SUCCESS;
}

/* IN_USE while a process of the lab runs in it. */
nvmlReturn_t nvmlComputeInstanceDestroy(nvmlComputeInstance_t computeInstance)
{
        LOCKED;
        STATE_LOCKED;
        Target t;
        int k;
        nvmlReturn_t r = begin_ci(__func__, computeInstance, &t, &k);

        if (r != NVML_SUCCESS)
                return r;
        for (size_t i = 0; i < t.gpu->n_processes; i++)
                if (t.gpu->processes[i].instance == k)
                        return NVML_ERROR_IN_USE;
        memmove(&t.gpu->instances[k], &t.gpu->instances[k + 1],
                (t.gpu->n_instances - (size_t)k - 1) * sizeof(SimInstance));
        t.gpu->n_instances--;
        return commit(t.gpu, t.index);
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstances(nvmlGpuInstance_t gpuInstance,
                                                unsigned int profileId,
                                                nvmlComputeInstance_t *computeInstances,
                                                unsigned int *count)
{
        LOCKED;
        Target t;
        SimGpuInstance *g;
        nvmlReturn_t r = begin_gi(__func__, gpuInstance, &t, &g);
        nvmlComputeInstanceProfileInfo_t info;
        unsigned n = 0;

        if (r != NVML_SUCCESS)
                return r;
        if (!computeInstances || !count)
                return NVML_ERROR_INVALID_ARGUMENT;
        r = ci_profile_info(g, profileId, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &info);
        if (r != NVML_SUCCESS)
                return r;
        for (size_t i = 0; i < t.gpu->n_instances; i++)
                if (t.gpu->instances[i].gi == g->id && t.gpu->instances[i].ci_profile == profileId)
                        computeInstances[n++] = ci_handle(t.index, t.gpu, g->id, t.gpu->instances[i].ci);
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t computeInstance,
                                           nvmlComputeInstanceInfo_t *info)
{
        LOCKED;
        Target t;
        int k;
        nvmlReturn_t r = begin_ci(__func__, computeInstance, &t, &k);
        const SimInstance *in;

        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        in = &t.gpu->instances[k];
        *info = (nvmlComputeInstanceInfo_t) {
                .device = &sim.handles[t.index][0],
                .gpuInstance = gi_handle(t.index, t.gpu, in->gi),
                .id = in->ci,
                .profileId = in->ci_profile,
                .placement = { in->ci_start, in->ci_slices },
        };
        sim.handles[t.index][0].gpu = t.index;
        sim.handles[t.index][0].mig = 0;
        snprintf(sim.handles[t.index][0].uuid, sizeof(sim.handles[t.index][0].uuid), "%s", t.gpu->uuid);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetConfComputeMemSizeInfo(nvmlDevice_t device, void *info)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        return r != NVML_SUCCESS ? r : NVML_ERROR_NOT_SUPPORTED;
}
#endif

#if SIM_VARIANT == SIM_VARIANT_MODERN
nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(nvmlDevice_t device, void *list)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        return r != NVML_SUCCESS ? r : NVML_ERROR_NOT_SUPPORTED;
}
#endif

static struct nvmlEventSet_st **find_set(nvmlEventSet_t set)
{
        for (struct nvmlEventSet_st **s = &sim.sets; *s; s = &(*s)->next)
                if (*s == set)
                        return s;
        return NULL;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);
        struct nvmlEventSet_st *s;

        if (r != NVML_SUCCESS)
                return r;
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        s = calloc(1, sizeof(*s));
        if (!s)
                return NVML_ERROR_MEMORY;
        s->next = sim.sets;
        sim.sets = s;
        *set = s;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);
        struct nvmlEventSet_st **s;

        if (r != NVML_SUCCESS)
                return r;
        s = find_set(set);
        if (!s)
                return NVML_ERROR_INVALID_ARGUMENT;
        *s = set->next;
        free(set);
        return NVML_SUCCESS;
}

/* Any nvml.h event type may be registered; only Xid events ever arrive.
 * MIG handles cannot be registered (events belong to the physical GPU). */
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long event_types,
                                      nvmlEventSet_t set)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!find_set(set))
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || (event_types & ~SIM_EVENT_TYPES_KNOWN))
                return NVML_ERROR_NOT_SUPPORTED;
        if (event_types & NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
                set->xid_gpus |= 1ull << t.index;
        return NVML_SUCCESS;
}

/* `bytes`: the unversioned call predates the gpuInstanceId/computeInstanceId
 * fields of nvmlEventData_t and writes only device, eventType, eventData. */
static nvmlReturn_t event_set_wait(const char *function, nvmlEventSet_t set,
                                   nvmlEventData_t *data, unsigned timeout_ms, size_t bytes)
{
        unsigned waited = 0, limit = MIN(timeout_ms, (unsigned)SIM_WAIT_CAP_MS);
        nvmlReturn_t r;

        for (;;) {
                pthread_mutex_lock(&sim.lock);
                /* Device-less: the lab is looked at on every try, so an
                 * Xid written before or during the wait is delivered. */
                r = begin_refresh(function, true);
                if (r == NVML_SUCCESS && (!find_set(set) || !data))
                        r = NVML_ERROR_INVALID_ARGUMENT;
                if (r == NVML_SUCCESS && set->len > 0) {
                        memcpy(data, &set->queue[set->head], bytes);
                        set->head = (set->head + 1) % SIM_EVENT_QUEUE;
                        set->len--;
                        pthread_mutex_unlock(&sim.lock);
                        return NVML_SUCCESS;
                }
                pthread_mutex_unlock(&sim.lock);
                if (r != NVML_SUCCESS)
                        return r;
                if (waited >= limit)
                        return NVML_ERROR_TIMEOUT;

                unsigned step = MIN((unsigned)SIM_WAIT_STEP_MS, limit - waited);
                nanosleep(&(struct timespec) { .tv_nsec = (long)step * 1000000L }, NULL);
                waited += step;
        }
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                 unsigned int timeout_ms)
{
        return event_set_wait(__func__, set, data, timeout_ms, sizeof(nvmlEventData_t));
}
#endif

nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
        return event_set_wait(__func__, set, data, timeout_ms,
                              offsetof(nvmlEventData_t, gpuInstanceId));
}

/* ---- Clocks and GPM (issue 17) -----------------------------------------
 * nvmlDeviceGetClockInfo answers the lab's clock_sm_mhz / clock_mem_mhz
 * (graphics is the SM clock, as on compute GPUs); NOT_SUPPORTED where the
 * lab leaves a clock out, and on MIG handles. GPM exists on GPUs whose lab
 * entry has a "gpm" object (Hopper and later): a sample records which GPU
 * and the lab's values then; nvmlGpmMetricsGet averages two samples of one
 * GPU, as a rate over the interval between them would be. */
#define SIM_GPM_SAMPLE_MAGIC 0x67706d73u /* "gpms" */
/* CUDA 13's NVML_GPM_METRIC_MAX: the most entries a caller's array may have. */
#define SIM_GPM_METRIC_MAX 333u

struct nvmlGpmSample_st {
        unsigned magic;
        bool taken;
        char uuid[SIM_UUID_MAX];
        double values[SIM_GPM_METRICS];
};

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);
        unsigned v;

        if (r != NVML_SUCCESS)
                return r;
        if (!clock || type > NVML_CLOCK_VIDEO)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance)
                return NVML_ERROR_NOT_SUPPORTED;
        v = type == NVML_CLOCK_MEM ? t.gpu->clock_mem_mhz
            : type == NVML_CLOCK_VIDEO ? 0
                                       : t.gpu->clock_sm_mhz;
        if (v == 0)
                return NVML_ERROR_NOT_SUPPORTED;
        *clock = v;
        return NVML_SUCCESS;
}

#if SIM_HAS_VERSIONED
nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t device, nvmlGpmSupport_t *support)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!support)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (support->version != NVML_GPM_SUPPORT_VERSION)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        support->isSupportedDevice = !t.instance && t.gpu->has_gpm;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *sample)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);
        struct nvmlGpmSample_st *s;

        if (r != NVML_SUCCESS)
                return r;
        if (!sample)
                return NVML_ERROR_INVALID_ARGUMENT;
        s = calloc(1, sizeof *s);
        if (!s)
                return NVML_ERROR_MEMORY;
        s->magic = SIM_GPM_SAMPLE_MAGIC;
        *sample = s;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t sample)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);

        if (r != NVML_SUCCESS)
                return r;
        if (!sample || sample->magic != SIM_GPM_SAMPLE_MAGIC)
                return NVML_ERROR_INVALID_ARGUMENT;
        sample->magic = 0;
        free(sample);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t device, nvmlGpmSample_t sample)
{
        LOCKED;
        Target t;
        nvmlReturn_t r = begin_device(__func__, device, &t);

        if (r != NVML_SUCCESS)
                return r;
        if (!sample || sample->magic != SIM_GPM_SAMPLE_MAGIC)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t.instance || !t.gpu->has_gpm)
                return NVML_ERROR_NOT_SUPPORTED;
        snprintf(sample->uuid, sizeof sample->uuid, "%s", t.gpu->uuid);
        memcpy(sample->values, t.gpu->gpm, sizeof sample->values);
        sample->taken = true;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *mg)
{
        LOCKED;
        nvmlReturn_t r = begin(__func__);
        const struct nvmlGpmSample_st *a, *b;

        if (r != NVML_SUCCESS)
                return r;
        if (!mg)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (mg->version != NVML_GPM_METRICS_GET_VERSION)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        a = mg->sample1;
        b = mg->sample2;
        if (mg->numMetrics == 0 || mg->numMetrics > SIM_GPM_METRIC_MAX || !a || !b ||
            a->magic != SIM_GPM_SAMPLE_MAGIC || b->magic != SIM_GPM_SAMPLE_MAGIC || !a->taken ||
            !b->taken || strcmp(a->uuid, b->uuid) != 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* Only numMetrics entries are touched: the caller's array may be
         * shorter than NVML_GPM_METRIC_MAX. */
        for (unsigned i = 0; i < mg->numMetrics; i++) {
                nvmlGpmMetric_t *m = &mg->metrics[i];
                size_t k;

                for (k = 0; k < SIM_GPM_METRICS && sim_gpm_metrics[k].id != m->metricId; k++)
                        ;
                if (k == SIM_GPM_METRICS) {
                        m->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
                        m->value = 0;
                        m->metricInfo.shortName = m->metricInfo.longName = m->metricInfo.unit = NULL;
                        continue;
                }
                m->nvmlReturn = NVML_SUCCESS;
                m->value = (a->values[k] + b->values[k]) / 2.0;
                m->metricInfo.shortName = (char *)sim_gpm_metrics[k].short_name;
                m->metricInfo.longName = (char *)sim_gpm_metrics[k].long_name;
                m->metricInfo.unit = (char *)sim_gpm_metrics[k].unit;
        }
        return NVML_SUCCESS;
}
#endif /* SIM_HAS_VERSIONED */
