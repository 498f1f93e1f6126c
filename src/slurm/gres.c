/* gres.conf from the node's inventory, and the ordering the prolog shares
 * with it (see slurm.h). Facts: Slurm wants the real /dev/nvidiaN minors,
 * not NVML indices; a MIG instance is `MultipleFiles=` of the parent's
 * device node and its GPU- and compute-instance nvidia-caps nodes (File= and
 * MultipleFiles= exclude each other), with the caps minors from
 * /proc/driver/nvidia-caps/mig-minors. */
#include "slurm/slurm.h"

#include "gpu/inventory.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/macro.h"

static int device_cmp(const void *a, const void *b)
{
        const SlurmDevice *x = a, *y = b;

        if (x->minor != y->minor)
                return x->minor < y->minor ? -1 : 1;
        if (x->gi != y->gi)
                return x->gi < y->gi ? -1 : 1;
        if (x->ci != y->ci)
                return x->ci < y->ci ? -1 : 1;
        return strcmp(x->uuid, y->uuid);
}

void slurm_devices_order(SlurmDevice *devs, size_t n)
{
        if (n > 1)
                qsort(devs, n, sizeof *devs, device_cmp);
}

int slurm_gres_type(const SlurmDevice *dev, char *buf, size_t len)
{
        const char *m = dev->model ? dev->model : "gpu";
        size_t o = 0;

        if (strncasecmp(m, "NVIDIA ", 7) == 0)
                m += 7;
        for (; *m; m++) {
                char c = *m;

                /* gres.conf separates with ',' ':' and whitespace: keep none. */
                if (isspace((unsigned char)c) || c == ',' || c == ':' || c == '=')
                        c = '_';
                if (o + 1 >= len)
                        return -ENAMETOOLONG;
                buf[o++] = (char)tolower((unsigned char)c);
        }
        if (o == 0) {
                if (len < 4)
                        return -ENAMETOOLONG;
                memcpy(buf, "gpu", 3);
                o = 3;
        }
        if (dev->profile && dev->profile[0]) {
                int k = snprintf(buf + o, len - o, "_%s", dev->profile);

                if (k < 0 || (size_t)k >= len - o)
                        return -ENAMETOOLONG;
                for (size_t i = o; buf[i]; i++)
                        if (buf[i] == ',' || buf[i] == ':' || isspace((unsigned char)buf[i]))
                                buf[i] = '_';
                return 0;
        }
        buf[o] = '\0';
        return 0;
}

int slurm_cpu_list(const unsigned long *set, size_t n_words, char *buf, size_t len)
{
        const size_t bits = 8 * sizeof(unsigned long);
        size_t total = n_words * bits, o = 0;

        if (len == 0)
                return -ENAMETOOLONG;
        buf[0] = '\0';
        if (total > SLURM_MAX_CPUS)
                total = SLURM_MAX_CPUS;
        for (size_t c = 0; c < total;) {
                size_t end;
                int k;

                if (!(set[c / bits] & (1ul << (c % bits)))) {
                        c++;
                        continue;
                }
                end = c;
                while (end + 1 < total && (set[(end + 1) / bits] & (1ul << ((end + 1) % bits))))
                        end++;
                if (end == c)
                        k = snprintf(buf + o, len - o, "%s%zu", o ? "," : "", c);
                else
                        k = snprintf(buf + o, len - o, "%s%zu-%zu", o ? "," : "", c, end);
                if (k < 0 || (size_t)k >= len - o)
                        return -ENAMETOOLONG;
                o += (size_t)k;
                c = end + 1;
        }
        return 0;
}

int slurm_gres_render(FILE *f, const SlurmDevice *devs, size_t n, const char *dev_dir)
{
        char type[SLURM_TYPE_MAX], cores[2048];
        int r;

        if (n > SLURM_MAX_DEVICES)
                return -E2BIG;
        for (size_t i = 0; i < n; i++) {
                const SlurmDevice *d = &devs[i];

                if (d->minor < 0)
                        return -EINVAL;
                if (d->gi >= 0 && (d->cap_gi < 0 || d->cap_ci < 0))
                        return -EINVAL;
        }
        fprintf(f, "# gres.conf written by `gpukeeper slurm gres` from NVML: one line per GPU\n"
                   "# or MIG instance, in the order gpukeeper maps SLURM_JOB_GPUS back.\n"
                   "AutoDetect=off\n");
        for (size_t i = 0; i < n; i++) {
                const SlurmDevice *d = &devs[i];

                r = slurm_gres_type(d, type, sizeof type);
                if (r < 0)
                        return r;
                cores[0] = '\0';
                if (d->cpus && d->n_cpu_words) {
                        r = slurm_cpu_list(d->cpus, d->n_cpu_words, cores, sizeof cores);
                        if (r < 0)
                                return r;
                }
                if (d->gi < 0)
                        fprintf(f, "Name=gpu Type=%s File=%s/nvidia%d", type, dev_dir, d->minor);
                else
                        fprintf(f,
                                "Name=gpu Type=%s MultipleFiles=%s/nvidia%d,"
                                "%s/nvidia-caps/nvidia-cap%d,%s/nvidia-caps/nvidia-cap%d",
                                type, dev_dir, d->minor, dev_dir, d->cap_gi, dev_dir, d->cap_ci);
                if (cores[0])
                        fprintf(f, " Cores=%s", cores);
                fprintf(f, "\n");
        }
        return ferror(f) ? -EIO : 0;
}

int slurm_mig_minor(const char *text, unsigned gpu_minor, unsigned gi, int ci, int *ret)
{
        char want[64];
        size_t wl;

        if (ci < 0)
                snprintf(want, sizeof want, "gpu%u/gi%u/access ", gpu_minor, gi);
        else
                snprintf(want, sizeof want, "gpu%u/gi%u/ci%d/access ", gpu_minor, gi, ci);
        wl = strlen(want);
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');

                if (strncmp(line, want, wl) == 0) {
                        char *end;
                        long v = strtol(line + wl, &end, 10);

                        if (end == line + wl || v < 0 || v > 1 << 20 ||
                            (*end != '\n' && *end != '\0'))
                                return -EINVAL;
                        *ret = (int)v;
                        return 0;
                }
                line = eol ? eol + 1 : NULL;
        }
        return -ENOENT;
}

int slurm_read_file(const char *path, char **ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return -errno;
        return read_full_fd(fd, SLURM_FILE_MAX, ret, NULL);
}

void slurm_devices_add_gpu(const GpuDevice *g, SlurmDevice *out, size_t *n, size_t max)
{
        if (!g->mig_enabled) {
                if (*n < max)
                        out[(*n)++] = (SlurmDevice){
                                .uuid = g->uuid, .parent_uuid = g->uuid,
                                .model = g->name, .nvml_index = g->index,
                                .minor = g->minor, .gi = -1, .ci = -1,
                                .cap_gi = -1, .cap_ci = -1,
                        };
                return;
        }
        for (size_t k = 0; k < g->n_instances && *n < max; k++)
                out[(*n)++] = (SlurmDevice){
                        .uuid = g->instances[k].uuid, .parent_uuid = g->uuid,
                        .model = g->name, .profile = g->instances[k].profile,
                        .nvml_index = g->index, .minor = g->minor,
                        .gi = (int)g->instances[k].gpu_instance_id,
                        .ci = (int)g->instances[k].compute_instance_id,
                        .cap_gi = -1, .cap_ci = -1,
                };
}
