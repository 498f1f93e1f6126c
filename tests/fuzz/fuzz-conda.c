/* Fuzz target for what gpukeeper reads of a user's conda environments:
 * conda-meta/<name>-<version>-<build>.json records and conda-meta/history,
 * through the same code `gpukeeper env list/export` and the backup use
 * (inventory, history specs, export of all three kinds).
 *
 * Input: the record's JSON, then a line "#==history==" and the history text
 * (without that line, all of it is the record and the history is empty). The
 * files are written into one environment of a temp home made at start:
 * ~/.conda/envs/fz/conda-meta/pkg-1.0-0.json and .../history. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env/env.h"
#include "fuzz.h"

#define SEPARATOR "\n#==history==\n"

static char home[64];
static char meta[160];
static EnvUser user;

static void write_all(const char *path, const void *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t off = 0;

        CHECK(fd >= 0);
        while (off < size) {
                ssize_t n = write(fd, (const char *)data + off, size - off);

                CHECK(n > 0);
                off += (size_t)n;
        }
        close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static void cleanup(void)
{
        nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        env_user_done(&user);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        char p[256];

        snprintf(home, sizeof home, "/tmp/gk-fuzz-conda-XXXXXX");
        CHECK(mkdtemp(home));
        snprintf(p, sizeof p, "%s/.conda", home);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/.conda/envs", home);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof p, "%s/.conda/envs/fz", home);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(meta, sizeof meta, "%s/.conda/envs/fz/conda-meta", home);
        CHECK(mkdir(meta, 0755) == 0);
        CHECK(env_user_make(getuid(), getgid(), "fuzzer", home, &user) == 0);
        atexit(cleanup);
        return 0;
}

static void export_all(const EnvInfo *e)
{
        for (int mode = ENV_EXPORT_BUILDS; mode <= ENV_EXPORT_FROM_HISTORY; mode++) {
                char *buf = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&buf, &len);
                int r;

                CHECK(f);
                r = env_export(e, (EnvExportMode)mode, f);
                CHECK(r == 0 || r == -EINVAL || r == -EIO || r == -ENOMEM);
                fclose(f);
                free(buf);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data, *sep;
        size_t json_len = size, hist_len = 0;
        const char *hist = "";
        char path[300];
        char **specs = NULL, **warnings = NULL;
        size_t n_specs = 0, n_warnings = 0;
        EnvOptions opts = {.flags = ENV_LOAD_PACKAGES, .system_condarc = "/nonexistent"};
        EnvList *l = NULL;
        int r;

        sep = memmem(text, size, SEPARATOR, strlen(SEPARATOR));
        if (sep) {
                json_len = (size_t)(sep - text);
                hist = sep + strlen(SEPARATOR);
                hist_len = size - json_len - strlen(SEPARATOR);
        }

        /* The history parser alone, on the raw bytes. */
        r = env_history_specs(hist, hist_len, &specs, &n_specs, &warnings, &n_warnings);
        CHECK(r >= 0 || r == -ENOMEM);
        for (size_t i = 0; i < n_specs; i++) {
                CHECK(specs[i]);
                free(specs[i]);
        }
        free(specs);
        for (size_t i = 0; i < n_warnings; i++)
                free(warnings[i]);
        free(warnings);

        /* The whole inventory and export over the files. */
        snprintf(path, sizeof path, "%s/pkg-1.0-0.json", meta);
        write_all(path, text, json_len);
        snprintf(path, sizeof path, "%s/history", meta);
        write_all(path, hist, hist_len);
        r = env_list_user(&user, &opts, &l);
        CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                for (size_t i = 0; i < l->n_envs; i++)
                        if (!l->envs[i]->error)
                                export_all(l->envs[i]);
                env_list_free(l);
        }
        return 0;
}
