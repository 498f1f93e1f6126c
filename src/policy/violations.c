/* Violation detection: which GPU processes run on a device their owner has
 * not leased. Rules in violations.h. Runs every sampler tick with
 * enforcement on, so the lease lookup is a binary search over a sorted copy
 * of the held devices rather than a scan per process. */
#include "policy/violations.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

static int held_compare(const void *a, const void *b)
{
        const PolicyHeld *x = a, *y = b;

        if (x->uid != y->uid)
                return x->uid < y->uid ? -1 : 1;
        return strcmp(x->uuid, y->uuid);
}

static bool holds(const PolicyHeld *sorted, size_t n, uid_t uid, const char *uuid)
{
        PolicyHeld key = {.uid = uid, .uuid = uuid};

        return n > 0 && bsearch(&key, sorted, n, sizeof(*sorted), held_compare);
}

static bool is_exempt(const PolicyExempt *exempt, const GpuProcess *p)
{
        const char *exe;

        if (!exempt)
                return false;
        if (exempt->root_exempt && p->uid == 0)
                return true;
        for (size_t i = 0; i < exempt->n_uids; i++)
                if (exempt->uids[i] == p->uid)
                        return true;
        if (exempt->n_executables == 0)
                return false;

        assert(exempt->exe);
        exe = exempt->exe(exempt->userdata, p->pid, p->start_time);
        if (!exe)
                return false;
        for (size_t i = 0; i < exempt->n_executables; i++)
                if (strcmp(exempt->executables[i], exe) == 0)
                        return true;
        return false;
}

int policy_find_violations(const GpuSnapshot *snap, const PolicyHeld *held, size_t n_held,
                           const PolicyExempt *exempt, PolicyViolation **ret, size_t *ret_n)
{
        _cleanup_free_ PolicyHeld *sorted = NULL;
        _cleanup_free_ PolicyViolation *out = NULL;
        size_t n_out = 0, n_procs = 0;

        assert(snap);
        assert(held || n_held == 0);
        assert(ret);
        assert(ret_n);

        if (n_held > 0) {
                sorted = malloc(n_held * sizeof(*sorted));
                if (!sorted)
                        return -ENOMEM;
                for (size_t i = 0; i < n_held; i++) {
                        assert(held[i].uuid);
                        sorted[i] = held[i];
                }
                qsort(sorted, n_held, sizeof(*sorted), held_compare);
        }

        /* At most one violation per listed process: size for the worst case
         * once instead of growing. */
        for (size_t g = 0; g < snap->n_gpus; g++)
                n_procs += snap->gpus[g].n_processes;
        if (n_procs > 0) {
                out = calloc(n_procs, sizeof(*out));
                if (!out)
                        return -ENOMEM;
        }

        for (size_t g = 0; g < snap->n_gpus; g++) {
                const GpuDevice *d = &snap->gpus[g];

                for (size_t i = 0; i < d->n_processes; i++) {
                        const GpuProcess *p = &d->processes[i];
                        const char *device = d->uuid;
                        int instance = -1;

                        if (p->vanished)
                                continue;
                        /* The inventory never produces an out-of-range index;
                         * should it, the GPU is the only device we can name. */
                        if (p->instance >= 0 && (size_t)p->instance < d->n_instances) {
                                instance = p->instance;
                                device = d->instances[instance].uuid;
                        }
                        if (holds(sorted, n_held, p->uid, device))
                                continue;
                        if (is_exempt(exempt, p))
                                continue;

                        out[n_out++] = (PolicyViolation){
                            .pid = p->pid,
                            .start_time = p->start_time,
                            .uid = p->uid,
                            .device_uuid = device,
                            .gpu_uuid = d->uuid,
                            .gpu_index = d->index,
                            .instance = instance,
                            .memory_used_bytes = p->memory_used_bytes,
                            .command = p->command,
                        };
                }
        }

        if (n_out == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        *ret = TAKE_PTR(out);
        *ret_n = n_out;
        return 0;
}
