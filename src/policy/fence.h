/* Strict mode's rules as data: which (uid, device node) pairs the kernel
 * fence lets open, and which device nodes it guards at all. Pure: the
 * daemon hands in its leases (resolved to GPU minors and MIG ids) and the
 * driver's MIG capability table, and writes the result into BPF maps. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* /dev/nvidiaN is char 195:N; 254 (nvidia-modeset) and 255 (nvidiactl)
 * are control nodes that everyone may open. */
#define POLICY_FENCE_NVIDIA_MAJOR 195u
#define POLICY_FENCE_NVIDIA_MINORS 254u
/* A MIG table entry's ci for the GPU instance's own access node. */
#define POLICY_FENCE_GI_NODE UINT32_MAX
#define POLICY_FENCE_MAX_RULES 65536

/* One leased device: a whole GPU (mig false) or a MIG instance on it. */
typedef struct PolicyFenceLeased {
        uint32_t uid;
        uint32_t gpu_minor; /* /dev/nvidia<gpu_minor> */
        bool mig;
        uint32_t gi, ci;
} PolicyFenceLeased;

/* One line of /proc/driver/nvidia-caps/mig-minors: gpu<gpu>/gi<gi>/access
 * (ci == POLICY_FENCE_GI_NODE) or gpu<gpu>/gi<gi>/ci<ci>/access → minor of
 * /dev/nvidia-caps/nvidia-cap<minor>. */
typedef struct PolicyFenceMig {
        uint32_t gpu, gi, ci;
        uint32_t minor;
} PolicyFenceMig;

typedef struct PolicyFenceDev {
        uint32_t major, minor;
} PolicyFenceDev;

typedef struct PolicyFenceRule {
        uint32_t uid, major, minor;
} PolicyFenceRule;

/* The device nodes one leased device opens: /dev/nvidia<gpu_minor>, and
 * for a MIG instance its GPU instance's and compute instance's cap nodes
 * (only when `caps_major` is known, i.e. not 0, and the table lists them).
 * Writes at most 3 into `ret` and returns how many. */
size_t policy_fence_nodes(const PolicyFenceLeased *dev, const PolicyFenceMig *mig, size_t n_mig,
                          uint32_t caps_major, PolicyFenceDev ret[static 3]);

/* Every (uid, node) the leases open, sorted by (uid, major, minor), without
 * duplicates. -E2BIG above POLICY_FENCE_MAX_RULES, -ENOMEM. */
int policy_fence_rules(const PolicyFenceLeased *devs, size_t n, const PolicyFenceMig *mig,
                       size_t n_mig, uint32_t caps_major, PolicyFenceRule **ret,
                       size_t *ret_n);

/* The guarded nodes: 195:0..253 and every MIG access cap node of the table
 * (when caps_major is known), sorted, without duplicates. -ENOMEM. */
int policy_fence_guarded(const PolicyFenceMig *mig, size_t n_mig, uint32_t caps_major,
                         PolicyFenceDev **ret, size_t *ret_n);

int policy_fence_rule_cmp(const void *a, const void *b);
int policy_fence_dev_cmp(const void *a, const void *b);
