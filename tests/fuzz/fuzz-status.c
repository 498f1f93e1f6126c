/* Fuzz target for the text view of `gpukeeper status` (issue 16, tenth
 * pass): the input is a status result. The view as the reply arrives
 * (cli_status_stream_*, which reads each GPU's processes straight from the
 * text: read_processes() in src/cli/status-render.c) is fed it in pieces of
 * three sizes, as the client library feeds it, and must
 *  - take only text that is valid JSON (json_scan_document() of the part it
 *    took), and
 *  - print what the view of the whole reply (cli_status_render_text(),
 *    the index's path) prints, whenever both take it and it holds no key
 *    twice (the stream keeps the first "gpu_count" before "gpus" where
 *    jansson keeps the last: the daemon writes neither twice).
 * The terminal (width, UTF-8, colour) comes from the input's length. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/json-scan.h"
#include "tests/unit/cli/status-stream-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const size_t pieces[] = {SIZE_MAX, 61, 7};
        const cli_term terms[] = {
            {.unicode = true, .columns = 80},
            {.color = true, .unicode = false, .columns = 132},
            {.unicode = true, .columns = 400},
        };
        const cli_term *term = &terms[size % 3];
        const char *text = (const char *)data;
        const double now = 1712345678.0;

        for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
                char *got = NULL, *want = NULL;
                size_t used = 0, want_len = 0;
                json_t *tree;
                FILE *f;
                int r = status_stream_render(text, size, pieces[i], term, now, &got, &used);

                CHECK(r != -EPROTO);
                if (r == -ENOMEM)
                        abort();
                if (r < 0) {
                        free(got);
                        continue;
                }
                CHECK(used <= size);
                CHECK(json_scan_document(text, used, JSON_SCAN_DEPTH_MAX, NULL, NULL));
                tree = json_loadb(text, used, JSON_REJECT_DUPLICATES, NULL);
                if (tree) {
                        f = open_memstream(&want, &want_len);
                        CHECK(f);
                        if (cli_status_render_text(text, used, f, term, now) == 0) {
                                CHECK(fclose(f) == 0);
                                if (strcmp(got, want) != 0)
                                        fprintf(stderr, "stream:\n%s\nwhole:\n%s\n", got, want);
                                CHECK(strcmp(got, want) == 0);
                        } else
                                CHECK(fclose(f) == 0);
                        json_decref(tree);
                }
                free(want);
                free(got);
        }
        return 0;
}
