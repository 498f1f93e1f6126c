/* Starting the CLI's helper executables, and their common main(); see
 * helper.h. */
#include "cli/helper.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The helper beside the running executable, else in libexec_dir. */
static int helper_path(const char *helper, const char *libexec_dir, char *buf, size_t size)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;
        int k;

        if (n > 0) {
                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        k = snprintf(buf, size, "%s/%s", self, helper);
                        if (k > 0 && (size_t)k < size && access(buf, X_OK) == 0)
                                return 0;
                }
        }
        k = snprintf(buf, size, "%s/%s", libexec_dir, helper);
        return k > 0 && (size_t)k < size ? 0 : -ENAMETOOLONG;
}

int cli_helper_exec(const char *helper, const char *libexec_dir, const cli_context *ctx,
                    int argc, char *argv[])
{
        char path[PATH_MAX];
        char **args;
        size_t n = 0;

        if (helper_path(helper, libexec_dir, path, sizeof(path)) < 0) {
                fprintf(stderr, "gpukeeper: the path of %s is too long\n", helper);
                return CLI_EXIT_SOFTWARE;
        }
        args = calloc((size_t)argc + 4, sizeof(*args));
        if (!args) {
                fprintf(stderr, "gpukeeper: out of memory\n");
                return CLI_EXIT_SOFTWARE;
        }
        args[n++] = path;
        if (ctx->socket_arg) {
                args[n++] = (char *)"--socket";
                args[n++] = (char *)ctx->socket_arg;
        }
        for (int i = 0; i < argc; i++)
                args[n++] = argv[i];
        args[n] = NULL;
        /* What we wrote so far must not be written twice (or lost). */
        fflush(stdout);
        execv(path, args);
        fprintf(stderr, "gpukeeper: cannot run %s: %s\n", path, strerror(errno));
        free(args);
        return CLI_EXIT_SOFTWARE;
}

int cli_helper_main(int argc, char *argv[], const cli_helper_verb *verbs, size_t n)
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {},
        };
        cli_context ctx = {};
        int c, r;

        setlocale(LC_CTYPE, "");
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                if (c == 'h') {
                        printf("%s is a helper of gpukeeper; run 'gpukeeper help'.\n", argv[0]);
                        return cli_finish(CLI_EXIT_OK);
                }
                r = cli_common_option(&ctx, NULL, NULL, c, argv);
                if (r != CLI_CONTINUE)
                        return r;
        }
        if (optind >= argc)
                return cli_usage_error(NULL, "no command given; try 'gpukeeper status'");
        for (size_t i = 0; i < n; i++)
                if (strcmp(verbs[i].name, argv[optind]) == 0)
                        return verbs[i].main(&ctx, argc - optind, argv + optind);
        return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
}
