/* Text built with stdio in memory; see memstream.h. */
#include "basic/memstream.h"

#include <errno.h>
#include <stdlib.h>

int memstream_open(MemStream *m)
{
        *m = (MemStream){};
        m->f = open_memstream(&m->buf, &m->len);
        return m->f ? 0 : -ENOMEM;
}

int memstream_finish(MemStream *m, int r, char **ret, size_t *ret_len)
{
        if (r >= 0 && ferror(m->f))
                r = -ENOMEM;
        if (fclose(m->f) != 0 && r >= 0)
                r = -ENOMEM;
        m->f = NULL;
        if (r < 0) {
                free(m->buf);
                *m = (MemStream){};
                return r;
        }
        *ret = m->buf;
        if (ret_len)
                *ret_len = m->len;
        *m = (MemStream){};
        return 0;
}
