/* Benchmark of the MIG placement planner (src/policy/mig-place.c), the
 * issue's target: over 10,000 random request / release sequences on 8
 * H100s, requests granted by the planner versus an exhaustive optimum
 * (≥ 98 %), and planner time per decision (p99 < 50 µs).
 *
 * Each sequence is 120 steps; a step releases a random outstanding request
 * (30 %) or asks for one instance of a random profile (H100 80GB table,
 * `nvidia-smi mig -lgipp`; weights favour small profiles as a lab's queue
 * does). Three systems see the same sequence:
 *   - the planner: places each instance where policy_mig_place() says and
 *     destroys it when its lease ends (on-demand, the default);
 *   - first fit, the baseline measured in the same run: the lowest GPU and
 *     the lowest allowed start that is free;
 *   - the exhaustive optimum: grants a request whenever the instances it
 *     holds plus the new one fit on 8 GPUs in some arrangement (exhaustive
 *     search over every per-GPU configuration, free to re-pack everything
 *     at every step, which no placer that never moves a running instance
 *     can do).
 * The grant ratio (the target) is planner grants / optimum grants over all
 * sequences. For scale it also prints, at each placer's own decisions, how
 * often re-packing everything would have let it grant a refused request.
 * Usage: bench-mig [--sequences N] [--seed S] */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

#include "bench-util.h"
#include "policy/mig-place.h"

#define GPUS 8
#define STEPS 120
#define TARGET_GRANT_RATIO 0.98
#define TARGET_P99_USEC 50.0

static const PolicyMigProfile h100[] = {
        { "1g.10gb", 1, 0x7F, 7 }, { "2g.20gb", 2, 0x15, 3 }, { "3g.40gb", 4, 0x11, 2 },
        { "4g.40gb", 4, 0x01, 1 }, { "7g.80gb", 8, 0x01, 1 }, { "1g.10gb+me", 1, 0x7F, 1 },
        { "1g.20gb", 2, 0x55, 4 },
};
#define NP 7
static const unsigned weights[NP] = { 35, 20, 14, 7, 5, 5, 14 };

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng % n);
}

static unsigned random_profile(void)
{
        unsigned total = 0, x;

        for (unsigned i = 0; i < NP; i++)
                total += weights[i];
        x = rnd(total);
        for (unsigned i = 0; i < NP; i++) {
                if (x < weights[i])
                        return i;
                x -= weights[i];
        }
        return 0;
}

/* ---- the optimum: which count vectors fit on one GPU, then on 8 ---- */

typedef struct Vec {
        uint8_t c[NP];
} Vec;

static Vec configs[4096];
static size_t n_configs;

static void add_config(const Vec *v)
{
        for (size_t i = 0; i < n_configs; i++)
                if (memcmp(&configs[i], v, sizeof(*v)) == 0)
                        return;
        if (n_configs < sizeof(configs) / sizeof(configs[0]))
                configs[n_configs++] = *v;
}

/* Every set of instances one GPU can hold, as count vectors. */
static void enumerate(unsigned used, unsigned min_slot, Vec *v)
{
        add_config(v);
        for (unsigned slot = min_slot; slot < NP * 8; slot++) {
                unsigned p = slot / 8, s = slot % 8, m;

                if (!(h100[p].starts & (1u << s)) || v->c[p] >= h100[p].max_instances)
                        continue;
                m = ((1u << h100[p].size) - 1) << s;
                if (used & m)
                        continue;
                v->c[p]++;
                enumerate(used | m, slot + 1, v);
                v->c[p]--;
        }
}

/* Memo of the fewest GPUs a vector needs (9 = more than we have). */
#define MEMO_BITS 22
static uint64_t memo_key[1u << MEMO_BITS];
static uint8_t memo_val[1u << MEMO_BITS];

static uint64_t encode(const Vec *v)
{
        uint64_t k = 1;

        for (unsigned i = 0; i < NP; i++)
                k = k << 7 | v->c[i];
        return k;
}

static unsigned min_gpus(const Vec *v)
{
        uint64_t key = encode(v), h = (key * 0x9E3779B97F4A7C15ull) >> (64 - MEMO_BITS);
        unsigned best = 9, big = NP;
        Vec rest;
        bool empty = true;

        for (unsigned i = 0; i < NP; i++)
                empty &= v->c[i] == 0;
        if (empty)
                return 0;
        while (memo_key[h] != 0) {
                if (memo_key[h] == key)
                        return memo_val[h];
                h = (h + 1) & ((1u << MEMO_BITS) - 1);
        }
        /* Some GPU holds one of the largest profiles present: try those configs. */
        for (unsigned i = 0; i < NP; i++)
                if (v->c[i] && (big == NP || h100[i].size > h100[big].size))
                        big = i;
        for (size_t k = 0; k < n_configs && best > 1; k++) {
                unsigned n;

                if (configs[k].c[big] == 0)
                        continue;
                for (unsigned i = 0; i < NP; i++)
                        rest.c[i] = v->c[i] > configs[k].c[i] ? (uint8_t)(v->c[i] - configs[k].c[i]) : 0;
                n = 1 + min_gpus(&rest);
                if (n < best)
                        best = n;
        }
        memo_key[h] = key;
        memo_val[h] = (uint8_t)best;
        return best;
}

/* ---- the placers ---- */

typedef struct Held {
        int gpu; /* -1: not granted */
        size_t slot;
} Held;

typedef struct Machine {
        PolicyMigInstance in[GPUS][POLICY_MIG_MAX_INSTANCES];
        uint32_t owner[GPUS][POLICY_MIG_MAX_INSTANCES]; /* request number */
        size_t n[GPUS];
} Machine;

static void views(Machine *m, PolicyMigGpu *g)
{
        for (size_t i = 0; i < GPUS; i++)
                g[i] = (PolicyMigGpu) { .profiles = h100, .n_profiles = NP, .instances = m->in[i],
                                        .n_instances = m->n[i], .eligible = true };
}

static bool first_fit(Machine *m, unsigned p, PolicyMigPlan *ret)
{
        for (size_t g = 0; g < GPUS; g++) {
                PolicyMigGpu v = { .profiles = h100, .n_profiles = NP, .instances = m->in[g],
                                   .n_instances = m->n[g], .eligible = true };
                unsigned free = policy_mig_free_mask(&v), count = 0;

                for (size_t i = 0; i < m->n[g]; i++)
                        count += m->in[g][i].profile == p;
                if (count >= h100[p].max_instances)
                        continue;
                for (unsigned s = 0; s < 8; s++) {
                        unsigned mk = ((1u << h100[p].size) - 1) << s;

                        if ((h100[p].starts & (1u << s)) && (mk & ~free) == 0) {
                                *ret = (PolicyMigPlan) { .gpu = g, .profile = p, .start = s };
                                return true;
                        }
                }
        }
        return false;
}

static void place(Machine *m, const PolicyMigPlan *plan, uint32_t owner)
{
        size_t g = plan->gpu;

        m->in[g][m->n[g]] = (PolicyMigInstance) { plan->profile, plan->start, false };
        m->owner[g][m->n[g]] = owner;
        m->n[g]++;
}

static bool optimum_fits(const Machine *m, unsigned p)
{
        Vec v = {};

        for (size_t g = 0; g < GPUS; g++)
                for (size_t i = 0; i < m->n[g]; i++)
                        v.c[m->in[g][i].profile]++;
        v.c[p]++;
        return min_gpus(&v) <= GPUS;
}

static void release(Machine *m, uint32_t owner)
{
        for (size_t g = 0; g < GPUS; g++)
                for (size_t i = 0; i < m->n[g]; i++)
                        if (m->owner[g][i] == owner) {
                                m->in[g][i] = m->in[g][m->n[g] - 1];
                                m->owner[g][i] = m->owner[g][m->n[g] - 1];
                                m->n[g]--;
                                return;
                        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        unsigned long sequences = 10000, seed = 1;
        unsigned long granted_plan = 0, granted_ff = 0, granted_opt = 0, requests = 0;
        unsigned long could_plan = 0, could_ff = 0;
        double *times, *times_ff;
        size_t n_times = 0;
        int c;

        while ((c = getopt(argc, argv, "n:s:")) != -1)
                switch (c) {
                case 'n':
                        sequences = strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        seed = strtoul(optarg, NULL, 10);
                        break;
                default:
                        fprintf(stderr, "usage: bench-mig [-n SEQUENCES] [-s SEED]\n");
                        return BENCH_EXIT_ERROR;
                }
        if (sequences == 0)
                return BENCH_EXIT_ERROR;
        {
                Vec v = {};
                enumerate(0, 0, &v);
        }
        times = calloc(sequences * STEPS, sizeof(double));
        times_ff = calloc(sequences * STEPS, sizeof(double));
        if (!times || !times_ff)
                return BENCH_EXIT_ERROR;

        printf("== bench-mig: %lu sequences x %d steps on %d H100 80GB (%zu one-GPU configurations)\n",
               sequences, STEPS, GPUS, n_configs);
        for (unsigned long q = 0; q < sequences; q++) {
                Machine plan_m = {}, ff_m = {};
                Vec opt = {};
                unsigned profile_of[STEPS];
                bool opt_held[STEPS] = {}, outstanding[STEPS] = {};
                uint32_t n_req = 0;

                rng = (seed + q) * 0x9E3779B97F4A7C15ull + 7;
                for (unsigned step = 0; step < STEPS; step++) {
                        bool any = false;

                        for (uint32_t r = 0; r < n_req; r++)
                                any |= outstanding[r];
                        if (any && rnd(10) < 3) {
                                uint32_t r;

                                do
                                        r = rnd(n_req);
                                while (!outstanding[r]);
                                outstanding[r] = false;
                                release(&plan_m, r);
                                release(&ff_m, r);
                                if (opt_held[r]) {
                                        opt.c[profile_of[r]]--;
                                        opt_held[r] = false;
                                }
                                continue;
                        }
                        unsigned p = random_profile();
                        PolicyMigGpu g[GPUS];
                        PolicyMigPlan plan;
                        uint64_t t0, t1;
                        int r;

                        profile_of[n_req] = p;
                        outstanding[n_req] = true;
                        requests++;

                        could_plan += optimum_fits(&plan_m, p);
                        could_ff += optimum_fits(&ff_m, p);
                        views(&plan_m, g);
                        t0 = bench_now_nsec();
                        r = policy_mig_place(g, GPUS, h100[p].name, &plan);
                        t1 = bench_now_nsec();
                        times[n_times] = (double)(t1 - t0) / 1000.0;
                        if (r < 0) {
                                fprintf(stderr, "bench-mig: policy_mig_place: %s\n", strerror(-r));
                                return BENCH_EXIT_ERROR;
                        }
                        if (r == 1) {
                                place(&plan_m, &plan, n_req);
                                granted_plan++;
                        }
                        t0 = bench_now_nsec();
                        r = first_fit(&ff_m, p, &plan);
                        t1 = bench_now_nsec();
                        times_ff[n_times++] = (double)(t1 - t0) / 1000.0;
                        if (r) {
                                place(&ff_m, &plan, n_req);
                                granted_ff++;
                        }
                        opt.c[p]++;
                        if (min_gpus(&opt) <= GPUS) {
                                opt_held[n_req] = true;
                                granted_opt++;
                        } else
                                opt.c[p]--;
                        n_req++;
                }
        }

        qsort(times, n_times, sizeof(double), cmp_double);
        qsort(times_ff, n_times, sizeof(double), cmp_double);
        double p99 = times[(size_t)((double)(n_times - 1) * 0.99)];
        double p99_ff = times_ff[(size_t)((double)(n_times - 1) * 0.99)];
        double ratio = (double)granted_plan / (double)granted_opt;
        double ratio_ff = (double)granted_ff / (double)granted_opt;
        bool pass;

        printf("requests:                 %lu\n", requests);
        printf("granted, exhaustive optimum: %lu\n", granted_opt);
        printf("granted, planner:            %lu (%.2f %% of the optimum)\n", granted_plan, 100.0 * ratio);
        printf("granted, first fit:          %lu (%.2f %% of the optimum; baseline, same run)\n",
               granted_ff, 100.0 * ratio_ff);
        printf("re-packing everything at each decision would grant: planner %lu, first fit %lu\n",
               could_plan, could_ff);
        printf("planner time per decision: p50 %.2f us, p99 %.2f us, max %.2f us\n",
               times[n_times / 2], p99, times[n_times - 1]);
        printf("first fit time per decision: p50 %.2f us, p99 %.2f us (ratio planner/first fit p99 %.1f)\n",
               times_ff[n_times / 2], p99_ff, p99 / (p99_ff > 0 ? p99_ff : 1e-9));
        bench_print_verdict("planner grants >= 98 % of the optimum", ratio >= TARGET_GRANT_RATIO);
        bench_print_verdict("planner p99 < 50 us per decision", p99 < TARGET_P99_USEC);
        pass = ratio >= TARGET_GRANT_RATIO && p99 < TARGET_P99_USEC;
        free(times);
        free(times_ff);
        return bench_print_result(pass);
}
