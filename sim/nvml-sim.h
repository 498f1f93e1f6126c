/* Prototypes of the NVML entry points the simulator defines, with the ABI
 * types of src/gpu/nvml-abi.h. Which of them a given library variant
 * actually exports is decided in nvml-sim.c by SIM_VARIANT; declaring all of
 * them here lets the compiler check every definition against one prototype,
 * and the static asserts below check each prototype against the function
 * pointer type the daemon's binding casts its dlsym() result to. */
#pragma once

#include "gpu/nvml-abi.h"

#define SIM_EXPORT __attribute__((visibility("default")))

SIM_EXPORT nvmlReturn_t nvmlInit_v2(void);
SIM_EXPORT nvmlReturn_t nvmlInit(void);
SIM_EXPORT nvmlReturn_t nvmlShutdown(void);
SIM_EXPORT const char *nvmlErrorString(nvmlReturn_t result);
SIM_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize,
                                                 unsigned long *cpuSet);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t device, unsigned int nodeSetSize,
                                                    unsigned long *nodeSet,
                                                    nvmlAffinityScope_t scope);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                      nvmlUtilization_t *utilization);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor,
                                                 unsigned int *temp);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                            unsigned long long *energy);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                             unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                                 unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                                 unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                              unsigned int *count, void *infos);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                        nvmlProcessUtilizationSample_t *utilization,
                                                        unsigned int *count,
                                                        unsigned long long last_seen);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current,
                                             unsigned int *pending);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device,
                                                            unsigned int index,
                                                            nvmlDevice_t *mig);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig,
                                                                     nvmlDevice_t *device);
SIM_EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device,
                                                            unsigned int profile,
                                                            nvmlGpuInstanceProfileInfo_t *info);
SIM_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
SIM_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
SIM_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device,
                                                 unsigned long long event_types,
                                                 nvmlEventSet_t set);
SIM_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                            unsigned int timeout_ms);
SIM_EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data,
                                         unsigned int timeout_ms);
/* Both only exist so the binding can tell driver generations apart by which
 * symbols resolve; the simulated GPUs have no confidential computing. */
SIM_EXPORT nvmlReturn_t nvmlDeviceGetConfComputeMemSizeInfo(nvmlDevice_t device, void *info);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetRunningProcessDetailList(nvmlDevice_t device, void *list);

/* MIG management (sim/README.md, "MIG management"). */
SIM_EXPORT nvmlReturn_t nvmlDeviceSetMigMode(nvmlDevice_t device, unsigned int mode,
                                             nvmlReturn_t *activationStatus);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned int profile,
                                                             nvmlGpuInstanceProfileInfo_v2_t *info);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(
        nvmlDevice_t device, unsigned int profileId, nvmlGpuInstancePlacement_t *placements,
        unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device,
                                                                  unsigned int profileId,
                                                                  unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceCreateGpuInstance(nvmlDevice_t device, unsigned int profileId,
                                                    nvmlGpuInstance_t *gpuInstance);
SIM_EXPORT nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(
        nvmlDevice_t device, unsigned int profileId, const nvmlGpuInstancePlacement_t *placement,
        nvmlGpuInstance_t *gpuInstance);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceDestroy(nvmlGpuInstance_t gpuInstance);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profileId,
                                                  nvmlGpuInstance_t *gpuInstances,
                                                  unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id,
                                                     nvmlGpuInstance_t *gpuInstance);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gpuInstance,
                                               nvmlGpuInstanceInfo_t *info);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(
        nvmlGpuInstance_t gpuInstance, unsigned int profile, unsigned int engProfile,
        nvmlComputeInstanceProfileInfo_t *info);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfoV(
        nvmlGpuInstance_t gpuInstance, unsigned int profile, unsigned int engProfile,
        nvmlComputeInstanceProfileInfo_v2_t *info);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceCreateComputeInstance(nvmlGpuInstance_t gpuInstance,
                                                             unsigned int profileId,
                                                             nvmlComputeInstance_t *computeInstance);
SIM_EXPORT nvmlReturn_t nvmlComputeInstanceDestroy(nvmlComputeInstance_t computeInstance);
SIM_EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstances(nvmlGpuInstance_t gpuInstance,
                                                           unsigned int profileId,
                                                           nvmlComputeInstance_t *computeInstances,
                                                           unsigned int *count);
SIM_EXPORT nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t computeInstance,
                                                      nvmlComputeInstanceInfo_t *info);

/* The marker no real NVML has: "gpukeeper-nvml-sim 1". */
SIM_EXPORT const char *gpukeeperSimVersion(void);

#define SIM_ASSERT_ABI(fn, type)                                                                   \
        static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " ABI")

SIM_ASSERT_ABI(nvmlInit_v2, nvmlInit_fn);
SIM_ASSERT_ABI(nvmlInit, nvmlInit_fn);
SIM_ASSERT_ABI(nvmlShutdown, nvmlShutdown_fn);
SIM_ASSERT_ABI(nvmlErrorString, nvmlErrorString_fn);
SIM_ASSERT_ABI(nvmlSystemGetDriverVersion, nvmlSystemGetDriverVersion_fn);
SIM_ASSERT_ABI(nvmlDeviceGetCount_v2, nvmlDeviceGetCount_fn);
SIM_ASSERT_ABI(nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetHandleByIndex_fn);
SIM_ASSERT_ABI(nvmlDeviceGetName, nvmlDeviceGetString_fn);
SIM_ASSERT_ABI(nvmlDeviceGetUUID, nvmlDeviceGetString_fn);
SIM_ASSERT_ABI(nvmlDeviceGetPciInfo_v3, nvmlDeviceGetPciInfo_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMinorNumber, nvmlDeviceGetUInt_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMemoryAffinity, nvmlDeviceGetMemoryAffinity_fn);
SIM_ASSERT_ABI(nvmlDeviceGetPowerUsage, nvmlDeviceGetUInt_fn);
SIM_ASSERT_ABI(nvmlDeviceGetTotalEnergyConsumption, nvmlDeviceGetULL_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMemoryInfo, nvmlDeviceGetMemoryInfo_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetMemoryInfo_v2_fn);
SIM_ASSERT_ABI(nvmlDeviceGetUtilizationRates, nvmlDeviceGetUtilizationRates_fn);
SIM_ASSERT_ABI(nvmlDeviceGetTemperature, nvmlDeviceGetTemperature_fn);
SIM_ASSERT_ABI(nvmlDeviceGetComputeRunningProcesses_v3, nvmlDeviceGetProcesses_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGraphicsRunningProcesses, nvmlDeviceGetProcesses_fn);
SIM_ASSERT_ABI(nvmlDeviceGetProcessUtilization, nvmlDeviceGetProcessUtilization_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMigMode, nvmlDeviceGetMigMode_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetUInt_fn);
SIM_ASSERT_ABI(nvmlDeviceGetMigDeviceHandleByIndex, nvmlDeviceGetMigDeviceHandleByIndex_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstanceId, nvmlDeviceGetUInt_fn);
SIM_ASSERT_ABI(nvmlDeviceIsMigDeviceHandle, nvmlDeviceGetUInt_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstanceProfileInfo, nvmlDeviceGetGpuInstanceProfileInfo_fn);
SIM_ASSERT_ABI(nvmlEventSetCreate, nvmlEventSetCreate_fn);
SIM_ASSERT_ABI(nvmlEventSetFree, nvmlEventSetFree_fn);
SIM_ASSERT_ABI(nvmlDeviceRegisterEvents, nvmlDeviceRegisterEvents_fn);
SIM_ASSERT_ABI(nvmlEventSetWait_v2, nvmlEventSetWait_fn);
SIM_ASSERT_ABI(nvmlEventSetWait, nvmlEventSetWait_fn);
SIM_ASSERT_ABI(nvmlDeviceSetMigMode, nvmlDeviceSetMigMode_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstanceProfileInfoV, nvmlDeviceGetGpuInstanceProfileInfoV_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstancePossiblePlacements_v2,
               nvmlDeviceGetGpuInstancePossiblePlacements_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstanceRemainingCapacity, nvmlDeviceGetGpuInstanceRemainingCapacity_fn);
SIM_ASSERT_ABI(nvmlDeviceCreateGpuInstance, nvmlDeviceCreateGpuInstance_fn);
SIM_ASSERT_ABI(nvmlDeviceCreateGpuInstanceWithPlacement, nvmlDeviceCreateGpuInstanceWithPlacement_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceDestroy, nvmlGpuInstanceDestroy_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstances, nvmlDeviceGetGpuInstances_fn);
SIM_ASSERT_ABI(nvmlDeviceGetGpuInstanceById, nvmlDeviceGetGpuInstanceById_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceGetInfo, nvmlGpuInstanceGetInfo_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceGetComputeInstanceProfileInfo,
               nvmlGpuInstanceGetComputeInstanceProfileInfo_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceGetComputeInstanceProfileInfoV,
               nvmlGpuInstanceGetComputeInstanceProfileInfoV_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceCreateComputeInstance, nvmlGpuInstanceCreateComputeInstance_fn);
SIM_ASSERT_ABI(nvmlComputeInstanceDestroy, nvmlComputeInstanceDestroy_fn);
SIM_ASSERT_ABI(nvmlGpuInstanceGetComputeInstances, nvmlGpuInstanceGetComputeInstances_fn);
SIM_ASSERT_ABI(nvmlComputeInstanceGetInfo_v2, nvmlComputeInstanceGetInfo_fn);

/* Clocks and GPM (issue 17). */
SIM_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                               unsigned int *clock);
SIM_EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t device,
                                                  nvmlGpmSupport_t *support);
SIM_EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *sample);
SIM_EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t sample);
SIM_EXPORT nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t device, nvmlGpmSample_t sample);
SIM_EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *metrics_get);
SIM_ASSERT_ABI(nvmlDeviceGetClockInfo, nvmlDeviceGetClockInfo_fn);
SIM_ASSERT_ABI(nvmlGpmQueryDeviceSupport, nvmlGpmQueryDeviceSupport_fn);
SIM_ASSERT_ABI(nvmlGpmSampleAlloc, nvmlGpmSampleAlloc_fn);
SIM_ASSERT_ABI(nvmlGpmSampleFree, nvmlGpmSampleFree_fn);
SIM_ASSERT_ABI(nvmlGpmSampleGet, nvmlGpmSampleGet_fn);
SIM_ASSERT_ABI(nvmlGpmMetricsGet, nvmlGpmMetricsGet_fn);
