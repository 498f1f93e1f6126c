/* `gpukeeper kernel install NAME|PATH [--gpus N] [--user USER]`: a Jupyter
 * kernel for a conda environment that leases its GPUs through `gpukeeper
 * run`, so each notebook kernel holds its own lease while it runs (see
 * src/env/kernel.h for the kernelspec). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/parse.h"
#include "cli/env.h"
#include "cli/text.h"
#include "env/kernel.h"

enum {
        ARG_GPUS = CLI_ARG_VERB_FIRST,
        ARG_USER,
};

void cli_kernel_usage(FILE *f)
{
        fputs("Usage: gpukeeper kernel install NAME|PATH [--gpus N] [--user USER]\n"
              "\n"
              "Install a Jupyter kernel for the conda environment NAME (or at PATH) that runs\n"
              "its python under 'gpukeeper run --gpus N': each notebook kernel waits for and\n"
              "holds its own lease of N GPUs, with CUDA_VISIBLE_DEVICES set before python\n"
              "starts, and releases it when the kernel stops. The kernelspec goes to\n"
              "$JUPYTER_DATA_DIR/kernels/gpukeeper-NAME (default ~/.local/share/jupyter).\n"
              "The environment needs ipykernel.\n"
              "\n"
              "Options:\n"
              "  --gpus N       GPUs per kernel (default 1)\n"
              "  --user USER    install it for USER, from USER's environments (root only)\n"
              "  -h, --help     show this help\n",
              f);
}

/* The Jupyter data directory of `user`: for the caller themselves what
 * Jupyter would use ($JUPYTER_DATA_DIR, $XDG_DATA_HOME/jupyter,
 * $HOME/.local/share/jupyter); for someone else the default below their
 * passwd home. */
static int jupyter_data_dir(const EnvUser *user, char **ret)
{
        const char *v;

        if (user->uid == geteuid()) {
                v = getenv("JUPYTER_DATA_DIR");
                if (v && v[0] == '/')
                        return (*ret = strdup(v)) ? 0 : -ENOMEM;
                v = getenv("XDG_DATA_HOME");
                if (v && v[0] == '/')
                        return asprintf(ret, "%s/jupyter", v) < 0 ? -ENOMEM : 0;
                v = getenv("HOME");
                if (v && v[0] == '/')
                        return asprintf(ret, "%s/.local/share/jupyter", v) < 0 ? -ENOMEM : 0;
        }
        return asprintf(ret, "%s/.local/share/jupyter", user->home) < 0 ? -ENOMEM : 0;
}

static bool has_package(const EnvInfo *e, const char *name)
{
        for (size_t i = 0; i < e->n_packages; i++)
                if (strcmp(e->packages[i].name, name) == 0)
                        return true;
        return false;
}

int cli_kernel_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"gpus", required_argument, NULL, ARG_GPUS},
            {"user", required_argument, NULL, ARG_USER},
            {},
        };
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        _cleanup_free_ char *data_dir = NULL, *path = NULL;
        const char *user_arg = NULL;
        EnvUser user = {};
        EnvOptions o = {};
        uint64_t gpus = 1;
        int c, r;

        if (argc < 2)
                return cli_usage_error("kernel", "no kernel command given: install");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_kernel_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        if (strcmp(argv[1], "install") != 0)
                return cli_usage_error("kernel", "unknown kernel command '%s'", argv[1]);
        argc--, argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_GPUS:
                        if (parse_uint64(optarg, &gpus) < 0 || gpus == 0 ||
                            gpus > ENV_KERNEL_MAX_GPUS)
                                return cli_usage_error("kernel install",
                                                       "--gpus takes a number from 1 to %u, not "
                                                       "'%s'",
                                                       ENV_KERNEL_MAX_GPUS, optarg);
                        break;
                case ARG_USER:
                        user_arg = optarg;
                        break;
                default:
                        r = cli_common_option(ctx, "kernel install", cli_kernel_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error("kernel install",
                                       "which environment? give its name or path");
        if (argc - optind > 1)
                return cli_usage_error("kernel install", "unexpected argument '%s'",
                                       argv[optind + 1]);

        r = cli_env_target_user("kernel install", user_arg, &user);
        if (r != CLI_EXIT_OK)
                return r;
        o.flags = ENV_LOAD_PACKAGES | cli_env_flags(&user);
        r = env_find(&user, argv[optind], &o, &e);
        if (r < 0 || e->error) {
                if (r == -ENOENT)
                        fprintf(stderr,
                                "gpukeeper: %s has no conda environment '%s' (see 'gpukeeper env "
                                "list')\n",
                                user.name, argv[optind]);
                else if (r < 0)
                        fprintf(stderr, "gpukeeper: cannot read the environments of %s: %s\n",
                                user.name, strerror(-r));
                else {
                        fputs("gpukeeper: ", stderr);
                        cli_text_clip(stderr, e->path, 4096, false);
                        fputs(": ", stderr);
                        cli_text_clip(stderr, e->error, 4096, false);
                        fputc('\n', stderr);
                }
                env_user_done(&user);
                return r < 0 ? cli_env_exit_for_errno(r) : CLI_EXIT_NOT_FOUND;
        }
        r = jupyter_data_dir(&user, &data_dir);
        if (r < 0) {
                env_user_done(&user);
                return CLI_EXIT_SOFTWARE;
        }
        r = env_kernel_install(user.uid, user.gid, data_dir, e->name, e->path, (unsigned)gpus,
                               &path);
        env_user_done(&user);
        if (r == -EINVAL)
                return cli_usage_error("kernel install", "'%s' cannot name a Jupyter kernel",
                                       e->name);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot write the kernel into %s: %s\n", data_dir,
                        strerror(-r));
                return cli_env_exit_for_errno(r);
        }
        fputs("Installed ", stdout);
        cli_text_clip(stdout, path, 4096, false);
        printf("\nEach kernel leases %u GPU%s through 'gpukeeper run' while it runs.\n",
               (unsigned)gpus, gpus == 1 ? "" : "s");
        if (!has_package(e, "ipykernel")) {
                fputs("gpukeeper: note: the environment has no ipykernel yet; install it with: "
                      "conda install -p ",
                      stderr);
                cli_text_clip(stderr, e->path, 4096, false);
                fputs(" ipykernel\n", stderr);
        }
        return cli_finish(CLI_EXIT_OK);
}
