/* Fuzz target for the mig-parted v1 parser (src/mig/mig-parted.c) and
 * what the daemon does with a parsed config: every config is turned into
 * the JSON the CLI sends, parsed back as the daemon does (which must accept
 * whatever the parser accepted), and planned against an H100 as NVML
 * reports it. Invariants are checked with abort(); errors must be one line
 * naming the file.
 *
 * Built like fuzz-proto: with clang -fsanitize=fuzzer (GK_FUZZ_LIBFUZZER)
 * libFuzzer drives it; otherwise main() runs every file named on the
 * command line or found in a directory named there, which is how the seed
 * corpus (tests/fuzz/corpus-mig-parted: mig-parted's own example configs
 * and broken variants) runs as a regular test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "mig/layout.h"
#include "mig/mig-parted.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x);  \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

static const GpuMigProfile h100[] = {
        { 0x0, 19, "1g.10gb", 1, 7, 9984, 1, 0x7F },  { 0x1, 14, "2g.20gb", 2, 3, 20096, 2, 0x15 },
        { 0x2, 9, "3g.40gb", 3, 2, 40448, 4, 0x11 },  { 0x3, 5, "4g.40gb", 4, 1, 40448, 4, 0x01 },
        { 0x4, 0, "7g.80gb", 7, 1, 80896, 8, 0x01 },  { 0x7, 20, "1g.10gb+me", 1, 1, 9984, 1, 0x7F },
        { 0x9, 15, "1g.20gb", 1, 4, 20096, 2, 0x55 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        MigFile *f = NULL;
        char error[512];
        int r;

        r = mig_file_parse((const char *)data, size, "fuzz.yaml", &f, error, sizeof(error));
        if (r < 0) {
                CHECK(f == NULL);
                CHECK(r == -EINVAL || r == -EFBIG || r == -ENOMEM);
                CHECK(strncmp(error, "fuzz.yaml", 9) == 0 && !strchr(error, '\n'));
                return 0;
        }
        CHECK(f && f->n_configs >= 1 && f->n_configs <= MIG_MAX_CONFIGS);
        for (size_t i = 0; i < f->n_configs; i++) {
                const MigConfig *c = &f->configs[i];
                GpuMigInstance have[] = { { 1, 9, 4, 4, 0 }, { 7, 19, 0, 1, 0 } };
                MigGpuFacts g = { .position = 0, .uuid = "GPU-fuzz", .name = "NVIDIA H100 80GB HBM3",
                                  .pci_device_id = 0x233010DE, .capable = true, .current = true,
                                  .pending = true, .profiles = h100, .n_profiles = 7,
                                  .instances = have, .n_instances = 2 };
                MigGpuPlan plan;
                MigConfig back;
                json_t *j;

                CHECK(c->n_specs >= 1 && c->n_specs <= MIG_MAX_SPECS);
                CHECK(mig_file_find(f, c->name) == c);
                for (size_t s = 0; s < c->n_specs; s++) {
                        CHECK(!c->specs[s].enabled ? c->specs[s].n_counts == 0 : true);
                        for (size_t k = 0; k < c->specs[s].n_counts; k++)
                                CHECK(mig_profile_name_valid(c->specs[s].counts[k].profile) &&
                                      c->specs[s].counts[k].count <= MIG_MAX_COUNT);
                }
                j = mig_config_to_json(c);
                CHECK(j);
                CHECK(mig_config_from_json(j, &back, error, sizeof(error)) == 0);
                CHECK(back.n_specs == c->n_specs);
                free(back.specs);
                json_decref(j);
                if (mig_plan_gpu(c, &g, &plan, error, sizeof(error)) == 0) {
                        unsigned used = 0;

                        CHECK(plan.n_keep + plan.n_create <= 7);
                        for (size_t k = 0; k < plan.n_create; k++) {
                                unsigned m = ((1u << plan.create[k].profile->size) - 1) << plan.create[k].start;

                                CHECK(plan.create[k].profile->starts & (1u << plan.create[k].start));
                                CHECK(!(used & m));
                                used |= m;
                        }
                } else
                        CHECK(error[0] && !strchr(error, '\n'));
        }
        mig_file_free(f);
        return 0;
}

#ifndef GK_FUZZ_LIBFUZZER

/* Inputs larger than this are not seeds; refuse rather than guess. */
#define SEED_MAX (1024u * 1024u)

static int run_file(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t len = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || (size_t)st.st_size > SEED_MAX)
                return -EINVAL;
        buf = malloc(MAX((size_t)st.st_size, 1u));
        if (!buf)
                return -ENOMEM;
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EIO;
                len += (size_t)n;
        }
        LLVMFuzzerTestOneInput(buf, len);
        return 0;
}

static int run_path(const char *path, unsigned *n_run)
{
        struct dirent **entries;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode)) {
                r = run_file(path);
                if (r >= 0)
                        (*n_run)++;
                return r;
        }

        n = scandir(path, &entries, NULL, alphasort);
        if (n < 0)
                return negative_errno();
        for (int i = 0; i < n; i++) {
                char sub[4096];
                if (r >= 0 && entries[i]->d_name[0] != '.' &&
                    snprintf(sub, sizeof sub, "%s/%s", path, entries[i]->d_name) <
                        (int)sizeof sub) {
                        r = run_file(sub);
                        if (r < 0)
                                fprintf(stderr, "%s: %s\n", sub, strerror(-r));
                        else
                                (*n_run)++;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char *argv[])
{
        unsigned n_run = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
                return 64;
        }
        for (int i = 1; i < argc; i++) {
                int r = run_path(argv[i], &n_run);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        return 1;
                }
        }
        if (n_run == 0) {
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        printf("%u inputs run\n", n_run);
        return 0;
}

#endif
