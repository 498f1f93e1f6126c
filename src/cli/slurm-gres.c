/* `gpukeeper slurm gres` (see slurm-gres.h): NVML's devices, their minors
 * and MIG instances, written as gres.conf by src/slurm/gres.c, or compared
 * with the installed one. */
#include "cli/slurm-gres.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/proc.h"
#include "gpu/inventory.h"
#include "gpu/nvml.h"
#include "slurm/slurm.h"

/* The whole of a small file (slurm_read_file), or NULL with errno set. */
static char *read_text(const char *path)
{
        char *text = NULL;
        int r = slurm_read_file(path, &text);

        if (r < 0) {
                errno = -r;
                return NULL;
        }
        return text;
}

static bool gpu_selected(const char *sel, unsigned index)
{
        unsigned idx[SLURM_MAX_DEVICES];
        int n;

        if (!sel || strcmp(sel, "all") == 0)
                return true;
        n = slurm_parse_index_list(sel, idx, ELEMENTSOF(idx));
        for (int i = 0; i < n; i++)
                if (idx[i] == index)
                        return true;
        return false;
}

/* Print lines of `a` missing from `b` as "-", of `b` missing from `a` as
 * "+" (gres.conf lines are independent records; their order matters only
 * for SLURM_JOB_GPUS, so a moved line is shown too). Returns whether they
 * differ. */
static bool diff_lines(const char *installed, const char *wanted, const char *path)
{
        bool differ = strcmp(installed, wanted) != 0;

        if (!differ)
                return false;
        printf("--- %s\n+++ gpukeeper slurm gres\n", path);
        for (int side = 0; side < 2; side++) {
                const char *from = side ? wanted : installed, *other = side ? installed : wanted;

                for (const char *l = from; l && *l;) {
                        const char *eol = strchr(l, '\n');
                        size_t len = eol ? (size_t)(eol - l) : strlen(l);
                        bool found = false;

                        for (const char *m = other; m && *m && !found;) {
                                const char *e2 = strchr(m, '\n');
                                size_t l2 = e2 ? (size_t)(e2 - m) : strlen(m);

                                found = l2 == len && memcmp(l, m, len) == 0;
                                m = e2 ? e2 + 1 : NULL;
                        }
                        if (!found && len && l[0] != '#')
                                printf("%c%.*s\n", side ? '+' : '-', (int)len, l);
                        l = eol ? eol + 1 : NULL;
                }
        }
        return true;
}

static int gres_main(int argc, char *argv[])
{
        enum { ARG_CHECK = CLI_ARG_VERB_FIRST, ARG_GPUS, ARG_DEV_DIR, ARG_NVML };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"check", optional_argument, NULL, ARG_CHECK},
                {"gpus", required_argument, NULL, ARG_GPUS},
                {"dev-dir", required_argument, NULL, ARG_DEV_DIR},
                {"nvml-library", required_argument, NULL, ARG_NVML},
                {},
        };
        const char *check = NULL, *gpus = NULL, *dev_dir = "/dev",
                   *library = "libnvidia-ml.so.1";
        _cleanup_(proc_cache_freep) ProcCache *cache = NULL;
        _cleanup_free_ SlurmDevice *devs = NULL;
        _cleanup_free_ unsigned long *cpus = NULL;
        _cleanup_free_ char *mig_minors = NULL, *text = NULL, *installed = NULL;
        const size_t words = SLURM_MAX_CPUS / (8 * sizeof(unsigned long));
        GpuSnapshot *snap = NULL;
        GpuNvml *nvml = NULL;
        char errbuf[256];
        size_t n = 0, text_len = 0;
        FILE *f;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
                switch (c) {
                case 'h':
                        cli_slurm_usage(stdout);
                        return cli_finish(CLI_EXIT_OK);
                case ARG_CHECK:
                        check = optarg ? optarg : SLURM_DEFAULT_GRES_CONF;
                        break;
                case ARG_GPUS: {
                        unsigned tmp[SLURM_MAX_DEVICES];

                        if (strcmp(optarg, "all") != 0 &&
                            slurm_parse_index_list(optarg, tmp, ELEMENTSOF(tmp)) <= 0)
                                return cli_usage_error("slurm gres",
                                                       "--gpus takes all or NVML indices such "
                                                       "as 0,1 or 0-3, not '%s'", optarg);
                        gpus = optarg;
                        break;
                }
                case ARG_DEV_DIR:
                        if (optarg[0] != '/')
                                return cli_usage_error("slurm gres",
                                                       "--dev-dir takes an absolute path");
                        dev_dir = optarg;
                        break;
                case ARG_NVML:
                        library = optarg;
                        break;
                default:
                        return cli_option_error("slurm gres", c, argv);
                }
        }
        if (optind < argc)
                return cli_usage_error("slurm gres", "unexpected argument '%s'", argv[optind]);

        r = gpu_nvml_open(library, &nvml, errbuf, sizeof errbuf);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: slurm gres: cannot load NVML (%s): %s\n", library,
                        errbuf);
                return CLI_EXIT_UNREACHABLE;
        }
        r = proc_cache_new("/proc", &cache);
        if (r >= 0)
                r = gpu_snapshot_take(nvml, cache, &snap);
        if (r < 0 || !snap->nvml_available) {
                fprintf(stderr, "gpukeeper: slurm gres: cannot read the GPUs: %s\n",
                        r < 0 ? strerror(-r) : snap->message);
                gpu_snapshot_free(snap);
                gpu_nvml_close(nvml);
                return CLI_EXIT_UNREACHABLE;
        }
        mig_minors = read_text(SLURM_MIG_MINORS);
        devs = calloc(SLURM_MAX_DEVICES, sizeof *devs);
        cpus = calloc(snap->n_gpus ? snap->n_gpus * words : 1, sizeof *cpus);
        if (!devs || !cpus) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < snap->n_gpus; i++) {
                const GpuDevice *g = &snap->gpus[i];
                unsigned long *set = &cpus[i * words];
                bool have_cpus = false;
                nvmlDevice_t h;
                size_t first;

                if (!g->uuid[0] || !gpu_selected(gpus, g->index))
                        continue;
                if (gpu_nvml_device_handle(nvml, g->index, &h) == NVML_SUCCESS &&
                    gpu_nvml_device_cpu_affinity(nvml, h, set, words) == NVML_SUCCESS)
                        have_cpus = true;
                first = n;
                slurm_devices_add_gpu(g, devs, &n, SLURM_MAX_DEVICES);
                /* What the daemon's list has not: the CPU mask, and a MIG
                 * instance's nvidia-caps minors. */
                for (size_t k = first; k < n; k++) {
                        SlurmDevice *dv = &devs[k];

                        dv->cpus = have_cpus ? set : NULL;
                        dv->n_cpu_words = words;
                        if (dv->gi >= 0 && mig_minors && g->minor >= 0) {
                                (void)slurm_mig_minor(mig_minors, (unsigned)g->minor,
                                                      (unsigned)dv->gi, -1, &dv->cap_gi);
                                (void)slurm_mig_minor(mig_minors, (unsigned)g->minor,
                                                      (unsigned)dv->gi, dv->ci, &dv->cap_ci);
                        }
                }
        }
        slurm_devices_order(devs, n);
        f = open_memstream(&text, &text_len);
        if (!f) {
                r = -errno;
                goto out;
        }
        r = slurm_gres_render(f, devs, n, dev_dir);
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r == -EINVAL) {
                fprintf(stderr, "gpukeeper: slurm gres: a device's /dev/nvidia minor or a MIG "
                                "instance's nvidia-caps minors (%s) are unknown; refusing to "
                                "write a gres.conf that would fence the wrong device\n",
                        SLURM_MIG_MINORS);
                r = CLI_EXIT_SOFTWARE;
                goto done;
        }
        if (r < 0)
                goto out;
        if (!check) {
                fputs(text, stdout);
                r = CLI_EXIT_OK;
                goto done;
        }
        installed = read_text(check);
        if (!installed) {
                fprintf(stderr, "gpukeeper: slurm gres: cannot read %s: %m\n", check);
                r = CLI_EXIT_IO;
                goto done;
        }
        r = diff_lines(installed, text, check) ? 1 : CLI_EXIT_OK;
        if (r == CLI_EXIT_OK)
                printf("%s matches this node's GPUs.\n", check);
        goto done;
out:
        fprintf(stderr, "gpukeeper: slurm gres: %s\n", strerror(-r));
        r = CLI_EXIT_SOFTWARE;
done:
        gpu_snapshot_free(snap);
        gpu_nvml_close(nvml);
        return cli_finish(r);
}

int cli_slurm_gres_main(cli_context *ctx, int argc, char *argv[])
{
        int i = 1;

        /* `slurm`, the options `gpukeeper slurm` took before the verb, `gres`. */
        while (i < argc && strcmp(argv[i], "gres") != 0)
                i++;
        if (i >= argc)
                return cli_usage_error("slurm", "this helper runs only 'gpukeeper slurm gres'");
        return gres_main(argc - i, argv + i);
}
