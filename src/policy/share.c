/* Shared leases' placement and budget timeline (see share.h). */
#include "policy/share.h"

uint64_t policy_share_free(const PolicyDevice *d, uint64_t extra)
{
        uint64_t promised = d->shared_budget_bytes + extra;

        if (promised < extra || promised >= d->share_capacity_bytes)
                return 0;
        return d->share_capacity_bytes - promised;
}

bool policy_share_best_fit(const PolicyDevice *devs, const size_t *cand, size_t n_cand,
                           const uint64_t *extra, uint64_t want, size_t *ret)
{
        bool found = false;
        uint64_t best_left = 0;
        size_t best = 0;

        for (size_t k = 0; k < n_cand; k++) {
                size_t i = cand[k];
                uint64_t free_bytes = policy_share_free(&devs[i], extra ? extra[i] : 0), left;

                if (want == 0 || free_bytes < want)
                        continue;
                left = free_bytes - want;
                if (found) {
                        if (left > best_left)
                                continue;
                        if (left == best_left) {
                                uint64_t a = devs[i].last_released_usec,
                                         b = devs[best].last_released_usec;

                                if (a > b || (a == b && i > best))
                                        continue;
                        }
                }
                found = true;
                best = i;
                best_left = left;
        }
        if (found)
                *ret = best;
        return found;
}

unsigned policy_budget_step(PolicyBudgetState *s, uint64_t used, uint64_t budget, uint64_t now,
                            uint64_t grace, uint64_t kill_timeout, bool enforce)
{
        unsigned actions = 0;

        if (used <= budget) {
                if (s->over) {
                        *s = (PolicyBudgetState){};
                        return POLICY_BUDGET_CLEARED;
                }
                return 0;
        }
        if (!s->over) {
                *s = (PolicyBudgetState){.over = true, .over_since = now};
                actions |= POLICY_BUDGET_NOTICE;
        }
        if (!enforce)
                return actions;
        if (!s->term_at) {
                if (now >= s->over_since + grace) {
                        s->term_at = now ? now : 1;
                        actions |= POLICY_BUDGET_SIGTERM;
                }
                return actions;
        }
        if (!s->kill_at && now >= s->term_at + kill_timeout) {
                s->kill_at = now ? now : 1;
                actions |= POLICY_BUDGET_SIGKILL;
        }
        return actions;
}

void policy_share_attribute(PolicyShareSlice *slices, size_t n, const GpuProcess *procs,
                            size_t n_procs)
{
        for (size_t i = 0; i < n; i++) {
                slices[i].used_bytes = 0;
                slices[i].busy = false;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t total = 0, budgets = 0, given = 0;
                size_t last = i, count = 0;
                bool busy = false, first = true;

                /* Each user once, at its first slice. */
                for (size_t j = 0; j < i && first; j++)
                        first = slices[j].uid != slices[i].uid;
                if (!first)
                        continue;
                for (size_t k = 0; k < n_procs; k++) {
                        const GpuProcess *p = &procs[k];

                        if ((p->vanished && !p->owner_from_earlier) || p->uid != slices[i].uid)
                                continue;
                        busy = true;
                        if (p->memory_used_bytes != GPU_VALUE_UNKNOWN)
                                total += p->memory_used_bytes;
                }
                for (size_t j = i; j < n; j++)
                        if (slices[j].uid == slices[i].uid) {
                                budgets += slices[j].budget_bytes;
                                last = j;
                                count++;
                        }
                for (size_t j = i; j < n; j++) {
                        uint64_t part;

                        if (slices[j].uid != slices[i].uid)
                                continue;
                        if (j == last)
                                part = total - given;
                        else if (budgets > 0)
                                part = (uint64_t)((unsigned __int128)total *
                                                  slices[j].budget_bytes / budgets);
                        else
                                part = total / count;
                        slices[j].used_bytes = part;
                        slices[j].busy = busy;
                        given += part;
                }
        }
}
