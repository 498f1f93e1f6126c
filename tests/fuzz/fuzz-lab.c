/* Fuzz target for the NVML simulator's lab parser (sim/lab.c): any JSON a
 * test or a demo may write. A lab is loaded or refused with a one-line
 * reason; nothing else. */
#include <errno.h>
#include <string.h>

#include "fuzz-memfile.h"
#include "sim/lab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *path = fuzz_memfile(data, size);
        char error[512] = "";
        SimLab *lab = NULL;
        SimFileId id, state_id;
        int r;

        r = sim_lab_load(path, NULL, "550.54.15", &lab, &id, &state_id, error, sizeof error);
        if (r >= 0) {
                CHECK(lab);
                sim_lab_free(lab);
                return 0;
        }
        CHECK(!lab);
        CHECK(r == -ENOMEM || error[0] != '\0');
        CHECK(!strchr(error, '\n'));
        return 0;
}
