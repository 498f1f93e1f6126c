/* The corpus runner every fuzz target links when it is not built for
 * libFuzzer: it runs LLVMFuzzerTestOneInput() over every file named on the
 * command line or found in a directory named there (the seed corpus in
 * tests/fuzz/corpus-*, which is how each target runs as an ordinary unit
 * test with any compiler, sanitizers or not). A target may define
 * LLVMFuzzerInitialize(), called first as libFuzzer would. */
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
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

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

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
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

