/* Fuzz target for the configuration loader: every section (the root table
 * reaches them all), the YAML walker, the row parsers and the checks.
 *
 * Invariants: a file is either loaded (and then freed) or refused with one
 * line of error that quotes nothing of the input past the loader's bounds
 * (at most 64 bytes of a value, 16 of an unknown key, 4 bytes per escaped
 * byte) — the error must stay short whatever the file holds. */
#include <string.h>

#include "config/config.h"
#include "config/loader.h"
#include "fuzz-memfile.h"

/* The longest message: a path, a position, a key name and a quoted value,
 * the list of known keys of the largest table, and a problem phrase. */
#define ERROR_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *path = fuzz_memfile(data, size);
        Config *c = NULL;
        char *error = NULL;
        int r;

        r = config_load(path, &c, &error);
        if (r >= 0) {
                CHECK(c);
                CHECK(c->socket_path && c->state_dir);
                config_free(c);
                free(error);
                return 0;
        }
        CHECK(!c);
        if (r == -ENOMEM)
                return 0;
        CHECK(error);
        /* One line per error, at most CONFIG_MAX_ERRORS of them, none empty,
         * no final newline; each line bounded. */
        {
                size_t lines = 1;
                const char *line = error;

                CHECK(*error && error[strlen(error) - 1] != '\n');
                for (const char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
                        CHECK(nl > line && (size_t)(nl - line) < ERROR_MAX);
                        lines++;
                }
                CHECK(strlen(line) < ERROR_MAX);
                CHECK(lines <= CONFIG_MAX_ERRORS);
        }
        free(error);
        return 0;
}
