/* See subid.h. */
#include "basic/subid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/parse.h"

static int parse_field_u32(const char *s, size_t len, uint32_t *ret)
{
        char buf[16];
        uint64_t v;

        if (len == 0 || len >= sizeof buf)
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (parse_uint64(buf, &v) < 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

int subid_parse(const char *text, size_t len, SubidRange **ret, size_t *ret_n)
{
        SubidRange *ranges = NULL;
        size_t n = 0, cap = 0;
        const char *p = text, *end = text + len;

        while (p < end && n < SUBID_MAX_RANGES) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                const char *line = p, *c1, *c2;
                size_t llen;
                SubidRange r = {};

                if (!eol)
                        eol = end;
                llen = (size_t)(eol - line);
                p = eol < end ? eol + 1 : end;
                if (llen == 0 || line[0] == '#')
                        continue;
                c1 = memchr(line, ':', llen);
                if (!c1 || c1 == line || (size_t)(c1 - line) >= sizeof r.owner)
                        continue;
                c2 = memchr(c1 + 1, ':', (size_t)(eol - c1 - 1));
                if (!c2)
                        continue;
                if (parse_field_u32(c1 + 1, (size_t)(c2 - c1 - 1), &r.start) < 0 ||
                    parse_field_u32(c2 + 1, (size_t)(eol - c2 - 1), &r.count) < 0 ||
                    r.count == 0 || (uint64_t)r.start + r.count > (UINT64_C(1) << 32))
                        continue;
                memcpy(r.owner, line, (size_t)(c1 - line));
                r.owner[c1 - line] = '\0';
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        SubidRange *m = realloc(ranges, ncap * sizeof *m);

                        if (!m) {
                                free(ranges);
                                return -ENOMEM;
                        }
                        ranges = m;
                        cap = ncap;
                }
                ranges[n++] = r;
        }
        *ret = ranges;
        *ret_n = n;
        return 0;
}

ssize_t subid_find(const SubidRange *ranges, size_t n, uint32_t id)
{
        for (size_t i = 0; i < n; i++)
                if (id >= ranges[i].start && (uint64_t)id < (uint64_t)ranges[i].start + ranges[i].count)
                        return (ssize_t)i;
        return -1;
}

int subid_owner_uid(const SubidRange *range, SubidLookupFunc lookup, void *userdata,
                    uint32_t *ret_uid)
{
        uint64_t v;

        if (parse_uint64(range->owner, &v) == 0) {
                if (v >= UINT32_MAX) /* (uid_t)-1 is no one */
                        return -EINVAL;
                *ret_uid = (uint32_t)v;
                return 0;
        }
        if (!lookup)
                return -EINVAL;
        return lookup(range->owner, ret_uid, userdata);
}

uint64_t subid_person(const SubidRange *ranges, size_t n, uint32_t uid, SubidLookupFunc lookup,
                      void *userdata)
{
        ssize_t i = subid_find(ranges, n, uid);
        uint32_t owner;

        if (i < 0)
                return uid;
        if (subid_owner_uid(&ranges[i], lookup, userdata, &owner) == 0)
                return owner;
        return (UINT64_C(1) << 32) | (uint64_t)i;
}
