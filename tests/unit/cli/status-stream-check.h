/* `gpukeeper status`'s text view fed as the client library feeds it
 * (cli_status_stream_*), shared by the unit test (test-cli-status.c) and
 * the fuzz target (tests/fuzz/fuzz-status.c), which compare it with the
 * view of the whole reply (cli_status_render_text()). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/status-render.h"
#include "cli/text.h"

/* text[0..len) rendered by the streaming view fed in pieces of `chunk`
 * bytes: what was not taken comes again, followed by the next bytes. The
 * view's return (0, or a negative errno) and its output, malloc'd and
 * NUL-terminated, in *ret_out; *ret_used the bytes of text the result took
 * (what follows the result is the client library's to check). -EPROTO when
 * the view broke the feeding contract, -ENOMEM when the harness ran out. */
static int status_stream_render(const char *text, size_t len, size_t chunk, const cli_term *term,
                                double now, char **ret_out, size_t *ret_used)
{
        size_t have = 0, pos = 0, fed = 0, out_len = 0, used = 0;
        char *buf = malloc(len + 1);
        FILE *f = open_memstream(ret_out, &out_len);
        void *ss = NULL;
        int r;

        *ret_used = 0;
        if (!buf || !f || cli_status_stream_new(f, term, now, &ss) < 0) {
                if (f)
                        fclose(f);
                free(buf);
                return -ENOMEM;
        }
        for (;;) {
                size_t k = chunk < len - fed ? chunk : len - fed, taken = 0;

                memcpy(buf + have, text + fed, k);
                have += k;
                fed += k;
                r = cli_status_stream_feed(ss, buf + pos, have - pos, fed == len, &taken);
                if (r < 0)
                        break;
                if (taken > have - pos) {
                        r = -EPROTO;
                        break;
                }
                pos += taken;
                used += taken;
                if (r > 0) {
                        r = cli_status_stream_finish(ss);
                        break;
                }
                if (fed == len) {
                        r = -EPROTO; /* more asked for after the last byte */
                        break;
                }
                memmove(buf, buf + pos, have - pos);
                have -= pos;
                pos = 0;
        }
        cli_status_stream_free(ss);
        if (fclose(f) != 0 && r == 0)
                r = -ENOMEM;
        free(buf);
        *ret_used = used;
        return r;
}
