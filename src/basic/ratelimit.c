/* See ratelimit.h. */
#include "basic/ratelimit.h"

#include <assert.h>

bool ratelimit_below(RateLimit *rl, uint64_t now, uint64_t *ret_suppressed)
{
        assert(rl);
        assert(rl->burst > 0 && rl->interval_usec > 0);

        if (ret_suppressed)
                *ret_suppressed = 0;
        if (rl->begin_usec == 0 || now < rl->begin_usec ||
            now - rl->begin_usec >= rl->interval_usec) {
                rl->begin_usec = now ? now : 1;
                rl->num = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                if (ret_suppressed)
                        *ret_suppressed = rl->suppressed;
                rl->suppressed = 0;
                return true;
        }
        rl->suppressed++;
        return false;
}
