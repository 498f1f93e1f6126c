/* Strict mode's rules; see fence.h. */
#include "policy/fence.h"

#include <errno.h>
#include <stdlib.h>

int policy_fence_rule_cmp(const void *a, const void *b)
{
        const PolicyFenceRule *x = a, *y = b;

        if (x->uid != y->uid)
                return x->uid < y->uid ? -1 : 1;
        if (x->major != y->major)
                return x->major < y->major ? -1 : 1;
        if (x->minor != y->minor)
                return x->minor < y->minor ? -1 : 1;
        return 0;
}

int policy_fence_dev_cmp(const void *a, const void *b)
{
        const PolicyFenceDev *x = a, *y = b;

        if (x->major != y->major)
                return x->major < y->major ? -1 : 1;
        if (x->minor != y->minor)
                return x->minor < y->minor ? -1 : 1;
        return 0;
}

static bool mig_minor(const PolicyFenceMig *mig, size_t n_mig, uint32_t gpu, uint32_t gi,
                      uint32_t ci, uint32_t *ret)
{
        for (size_t i = 0; i < n_mig; i++)
                if (mig[i].gpu == gpu && mig[i].gi == gi && mig[i].ci == ci) {
                        *ret = mig[i].minor;
                        return true;
                }
        return false;
}

size_t policy_fence_nodes(const PolicyFenceLeased *dev, const PolicyFenceMig *mig, size_t n_mig,
                          uint32_t caps_major, PolicyFenceDev ret[static 3])
{
        size_t n = 0;
        uint32_t minor;

        if (dev->gpu_minor < POLICY_FENCE_NVIDIA_MINORS)
                ret[n++] = (PolicyFenceDev){POLICY_FENCE_NVIDIA_MAJOR, dev->gpu_minor};
        if (!dev->mig || caps_major == 0)
                return n;
        if (mig_minor(mig, n_mig, dev->gpu_minor, dev->gi, POLICY_FENCE_GI_NODE, &minor))
                ret[n++] = (PolicyFenceDev){caps_major, minor};
        if (mig_minor(mig, n_mig, dev->gpu_minor, dev->gi, dev->ci, &minor))
                ret[n++] = (PolicyFenceDev){caps_major, minor};
        return n;
}

int policy_fence_rules(const PolicyFenceLeased *devs, size_t n, const PolicyFenceMig *mig,
                       size_t n_mig, uint32_t caps_major, PolicyFenceRule **ret,
                       size_t *ret_n)
{
        PolicyFenceRule *rules;
        size_t used = 0, kept = 0;

        if (n > POLICY_FENCE_MAX_RULES / 3)
                return -E2BIG;
        rules = calloc(n * 3 + 1, sizeof *rules);
        if (!rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                PolicyFenceDev nodes[3];
                size_t k = policy_fence_nodes(&devs[i], mig, n_mig, caps_major, nodes);

                for (size_t j = 0; j < k; j++)
                        rules[used++] =
                            (PolicyFenceRule){devs[i].uid, nodes[j].major, nodes[j].minor};
        }
        qsort(rules, used, sizeof *rules, policy_fence_rule_cmp);
        for (size_t i = 0; i < used; i++)
                if (kept == 0 || policy_fence_rule_cmp(&rules[kept - 1], &rules[i]) != 0)
                        rules[kept++] = rules[i];
        *ret = rules;
        *ret_n = kept;
        return 0;
}

int policy_fence_guarded(const PolicyFenceMig *mig, size_t n_mig, uint32_t caps_major,
                         PolicyFenceDev **ret, size_t *ret_n)
{
        size_t n = POLICY_FENCE_NVIDIA_MINORS, kept = 0;
        PolicyFenceDev *devs;

        devs = calloc(n + (caps_major ? n_mig : 0) + 1, sizeof *devs);
        if (!devs)
                return -ENOMEM;
        for (uint32_t m = 0; m < POLICY_FENCE_NVIDIA_MINORS; m++)
                devs[m] = (PolicyFenceDev){POLICY_FENCE_NVIDIA_MAJOR, m};
        if (caps_major)
                for (size_t i = 0; i < n_mig; i++)
                        devs[n++] = (PolicyFenceDev){caps_major, mig[i].minor};
        qsort(devs, n, sizeof *devs, policy_fence_dev_cmp);
        for (size_t i = 0; i < n; i++)
                if (kept == 0 || policy_fence_dev_cmp(&devs[kept - 1], &devs[i]) != 0)
                        devs[kept++] = devs[i];
        *ret = devs;
        *ret_n = kept;
        return 0;
}
