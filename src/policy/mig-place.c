/* The MIG placement planner (see mig-place.h for the rules). Everything is
 * small and bounded: at most 8 memory slices, 8 instances (256 subsets of
 * destroyable ones) and 16 profiles per GPU, so the exhaustive search costs
 * a few microseconds per GPU. */
#include "policy/mig-place.h"

#include <errno.h>
#include <string.h>

#define ALL_SLICES ((1u << POLICY_MIG_SLICES) - 1)

static unsigned span(unsigned start, unsigned size)
{
        return ((1u << size) - 1) << start;
}

static int check_gpu(const PolicyMigGpu *g)
{
        unsigned used = 0;

        if ((g->n_profiles > 0 && !g->profiles) || (g->n_instances > 0 && !g->instances) ||
            g->n_profiles > POLICY_MIG_MAX_PROFILES || g->n_instances > POLICY_MIG_MAX_INSTANCES)
                return -EINVAL;
        for (size_t i = 0; i < g->n_profiles; i++) {
                const PolicyMigProfile *p = &g->profiles[i];

                if (p->size == 0 || p->size > POLICY_MIG_SLICES || (p->starts & ~ALL_SLICES) ||
                    memchr(p->name, '\0', sizeof(p->name)) == NULL)
                        return -EINVAL;
                for (unsigned s = 0; s < POLICY_MIG_SLICES; s++)
                        if ((p->starts & (1u << s)) && s + p->size > POLICY_MIG_SLICES)
                                return -EINVAL;
        }
        for (size_t i = 0; i < g->n_instances; i++) {
                const PolicyMigInstance *in = &g->instances[i];
                unsigned m;

                if (in->profile >= g->n_profiles || in->start >= POLICY_MIG_SLICES ||
                    !(g->profiles[in->profile].starts & (1u << in->start)))
                        return -EINVAL;
                m = span(in->start, g->profiles[in->profile].size);
                if (used & m)
                        return -EINVAL;
                used |= m;
        }
        return 0;
}

unsigned policy_mig_free_mask(const PolicyMigGpu *gpu)
{
        unsigned used = 0;

        for (size_t i = 0; i < gpu->n_instances; i++)
                used |= span(gpu->instances[i].start, gpu->profiles[gpu->instances[i].profile].size);
        return ALL_SLICES & ~used;
}

unsigned policy_mig_largest_fit(const PolicyMigProfile *profiles, size_t n_profiles, unsigned free,
                                const unsigned *counts)
{
        unsigned best = 0;

        for (size_t p = 0; p < n_profiles; p++) {
                if (profiles[p].size <= best || counts[p] >= profiles[p].max_instances)
                        continue;
                for (unsigned s = 0; s < POLICY_MIG_SLICES; s++)
                        if ((profiles[p].starts & (1u << s)) &&
                            (span(s, profiles[p].size) & ~free) == 0) {
                                best = profiles[p].size;
                                break;
                        }
        }
        return best;
}

/* Possible placements over all profiles in `free`: how much choice is left. */
static unsigned placements_left(const PolicyMigProfile *profiles, size_t n_profiles, unsigned free,
                                const unsigned *counts)
{
        unsigned n = 0;

        for (size_t p = 0; p < n_profiles; p++) {
                if (counts[p] >= profiles[p].max_instances)
                        continue;
                for (unsigned s = 0; s < POLICY_MIG_SLICES; s++)
                        n += (profiles[p].starts & (1u << s)) &&
                             (span(s, profiles[p].size) & ~free) == 0;
        }
        return n;
}

static unsigned popcount(unsigned x)
{
        return (unsigned)__builtin_popcount(x);
}

/* A candidate's rank: smaller is better, compared field by field. */
typedef struct Rank {
        unsigned destroyed;
        unsigned largest_drop;
        unsigned free_before;
        unsigned neg_left; /* 1000 - placements left on its GPU afterwards */
        size_t gpu;
        unsigned start;
} Rank;

static int rank_cmp(const Rank *a, const Rank *b)
{
#define CMP(f)                                                                                     \
        if (a->f != b->f)                                                                          \
                return a->f < b->f ? -1 : 1;
        CMP(destroyed);
        CMP(neg_left);
        CMP(largest_drop);
        CMP(free_before);
        CMP(gpu);
        CMP(start);
#undef CMP
        return 0;
}

int policy_mig_place(const PolicyMigGpu *gpus, size_t n_gpus, const char *name,
                     PolicyMigPlan *ret)
{
        Rank best = {};
        PolicyMigPlan plan = {};
        bool found = false;

        if ((n_gpus > 0 && !gpus) || !name || !ret || n_gpus > POLICY_MIG_MAX_GPUS)
                return -EINVAL;
        for (size_t g = 0; g < n_gpus; g++)
                if (check_gpu(&gpus[g]) < 0)
                        return -EINVAL;

        for (size_t g = 0; g < n_gpus; g++) {
                const PolicyMigGpu *gpu = &gpus[g];
                unsigned destroyable = 0, counts[POLICY_MIG_MAX_PROFILES] = {};
                int p = -1;

                if (!gpu->eligible)
                        continue;
                for (size_t i = 0; i < gpu->n_profiles; i++)
                        if (strcmp(gpu->profiles[i].name, name) == 0) {
                                p = (int)i;
                                break;
                        }
                if (p < 0)
                        continue;
                for (size_t i = 0; i < gpu->n_instances; i++)
                        if (gpu->instances[i].destroyable)
                                destroyable |= 1u << i;

                /* Every subset of the destroyable instances, the empty one first. */
                for (unsigned sub = 0; sub <= destroyable; sub++) {
                        unsigned free_mask = ALL_SLICES, c[POLICY_MIG_MAX_PROFILES] = {};
                        const PolicyMigProfile *pr = &gpu->profiles[p];

                        if ((sub & ~destroyable) != 0)
                                continue;
                        if (found && (unsigned)popcount(sub) > best.destroyed)
                                continue;
                        for (size_t i = 0; i < gpu->n_instances; i++) {
                                if (sub & (1u << i))
                                        continue;
                                free_mask &= ~span(gpu->instances[i].start,
                                                   gpu->profiles[gpu->instances[i].profile].size);
                                c[gpu->instances[i].profile]++;
                        }
                        if (c[p] >= pr->max_instances)
                                continue;
                        memcpy(counts, c, sizeof(counts));
                        unsigned before = policy_mig_largest_fit(gpu->profiles, gpu->n_profiles,
                                                                 free_mask, counts);
                        for (unsigned s = 0; s < POLICY_MIG_SLICES; s++) {
                                unsigned m = span(s, pr->size), after, left;
                                Rank r;

                                if (!(pr->starts & (1u << s)) || (m & ~free_mask))
                                        continue;
                                counts[p]++;
                                after = policy_mig_largest_fit(gpu->profiles, gpu->n_profiles,
                                                               free_mask & ~m, counts);
                                left = placements_left(gpu->profiles, gpu->n_profiles,
                                                       free_mask & ~m, counts);
                                counts[p]--;
                                r = (Rank) { .destroyed = (unsigned)popcount(sub),
                                             .largest_drop = before - after,
                                             .free_before = (unsigned)popcount(free_mask),
                                             .neg_left = 1000 - left,
                                             .gpu = g,
                                             .start = s };
                                if (found && rank_cmp(&r, &best) >= 0)
                                        continue;
                                found = true;
                                best = r;
                                plan = (PolicyMigPlan) { .gpu = g, .profile = (unsigned)p, .start = s };
                                for (size_t i = 0; i < gpu->n_instances; i++)
                                        if (sub & (1u << i))
                                                plan.destroy[plan.n_destroy++] = i;
                        }
                }
        }
        if (!found)
                return 0;
        *ret = plan;
        return 1;
}

/* Every arrangement, depth first; the one that leaves the most placements
 * free (the planner's first rule) wins, so a layout carved now keeps the
 * most room for what is kept or added later. */
typedef struct PackSearch {
        const PolicyMigGpu *gpu;
        const unsigned *order, *add;
        size_t n;
        unsigned starts[POLICY_MIG_MAX_INSTANCES];
        unsigned best[POLICY_MIG_MAX_INSTANCES];
        int best_left; /* -1: none found yet */
} PackSearch;

static void pack(PackSearch *ps, size_t k, unsigned free_mask, unsigned *counts)
{
        const PolicyMigGpu *gpu = ps->gpu;
        unsigned p, prev_start = 0;

        if (k == ps->n) {
                int left = (int)placements_left(gpu->profiles, gpu->n_profiles, free_mask, counts);

                if (left > ps->best_left) {
                        ps->best_left = left;
                        memcpy(ps->best, ps->starts, sizeof(ps->best));
                }
                return;
        }
        p = ps->add[ps->order[k]];
        /* Identical profiles in a row take increasing starts: no permutations. */
        if (k > 0 && ps->add[ps->order[k - 1]] == p)
                prev_start = ps->starts[ps->order[k - 1]] + 1;
        if (counts[p] >= gpu->profiles[p].max_instances)
                return;
        for (unsigned s = prev_start; s < POLICY_MIG_SLICES; s++) {
                unsigned m = span(s, gpu->profiles[p].size);

                if (!(gpu->profiles[p].starts & (1u << s)) || (m & ~free_mask))
                        continue;
                ps->starts[ps->order[k]] = s;
                counts[p]++;
                pack(ps, k + 1, free_mask & ~m, counts);
                counts[p]--;
        }
}

int policy_mig_pack(const PolicyMigGpu *gpu, const unsigned *add, size_t n_add,
                    unsigned *ret_starts)
{
        unsigned order[POLICY_MIG_MAX_INSTANCES], starts[POLICY_MIG_MAX_INSTANCES] = {};
        unsigned counts[POLICY_MIG_MAX_PROFILES] = {};

        if (!gpu || (n_add > 0 && (!add || !ret_starts)) || check_gpu(gpu) < 0 ||
            gpu->n_instances + n_add > POLICY_MIG_MAX_INSTANCES)
                return -EINVAL;
        for (size_t i = 0; i < n_add; i++) {
                if (add[i] >= gpu->n_profiles)
                        return -EINVAL;
                order[i] = (unsigned)i;
        }
        for (size_t i = 0; i < gpu->n_instances; i++)
                counts[gpu->instances[i].profile]++;
        /* Largest first (then by profile, so equal ones are adjacent). */
        for (size_t i = 1; i < n_add; i++)
                for (size_t j = i; j > 0; j--) {
                        unsigned a = add[order[j - 1]], b = add[order[j]];

                        if (gpu->profiles[a].size > gpu->profiles[b].size ||
                            (gpu->profiles[a].size == gpu->profiles[b].size && a <= b))
                                break;
                        unsigned t = order[j];
                        order[j] = order[j - 1];
                        order[j - 1] = t;
                }
        PackSearch ps = { .gpu = gpu, .order = order, .add = add, .n = n_add, .best_left = -1 };

        (void)starts;
        pack(&ps, 0, policy_mig_free_mask(gpu), counts);
        if (ps.best_left < 0)
                return 0;
        memcpy(ret_starts, ps.best, n_add * sizeof(unsigned));
        return 1;
}
