/* Slurm integration without Slurm's libraries: what a node's gres.conf says,
 * what a prolog's environment means, Slurm's command output, and the
 * dcgm-exporter HPC job-mapping directory.
 *
 * Everything here works on plain structs and text and does not log; the
 * daemon (daemon/slurm-ops.c) and the CLI (cli/slurm.c) do the I/O around it.
 *
 * One ordering ties gres.conf to the prolog: Slurm numbers a node's GPUs
 * (SLURM_JOB_GPUS, "global" gres indices) in the order of the gres.conf
 * records. slurm_devices_order() puts devices in the order
 * slurm_gres_render() writes them (by /dev/nvidia minor, then MIG GPU and
 * compute instance id), so index i of a job is device i of that order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define SLURM_MAX_DEVICES 1024   /* gres records of one node */
#define SLURM_MAX_JOB_GPUS 256   /* indices in SLURM_JOB_GPUS */
#define SLURM_TYPE_MAX 64
#define SLURM_PATH_MAX 256
#define SLURM_MAX_CPUS 4096      /* CPU numbers in a Cores= list */
#define SLURM_JOB_ID_MAX UINT64_C(0xFFFFFFFF) /* Slurm's job ids are uint32 */
#define SLURM_JOBMAP_MAX_IDS 64 /* job ids in one job-mapping file */

/* One GPU or MIG instance as gres.conf and the prolog see it. */
typedef struct SlurmDevice {
        const char *uuid;   /* GPU-… or MIG-… (borrowed) */
        const char *parent_uuid; /* the GPU's uuid (== uuid for a whole GPU) */
        const char *model;  /* NVML name of the (parent) GPU, "NVIDIA A100-SXM4-80GB" */
        const char *profile; /* MIG profile "3g.40gb", NULL for a whole GPU */
        unsigned nvml_index; /* the GPU's NVML index */
        int minor;           /* /dev/nvidia<minor> of the (parent) GPU; -1 unknown */
        int gi, ci;          /* MIG GPU / compute instance ids; -1 for a whole GPU */
        int cap_gi, cap_ci;  /* nvidia-caps minors of the instance's access files; -1 unknown */
        const unsigned long *cpus; /* NVML CPU affinity bitmask, NULL when unknown */
        size_t n_cpu_words;
} SlurmDevice;

/* Append GPU `g`'s devices as Slurm schedules them (the GPU, or its MIG
 * instances when MIG is on) to out[*n..max), advancing *n: uuids, model,
 * profile, index, minor and instance ids from the snapshot; no nvidia-caps
 * minors (-1) and no CPU mask yet (the gres writer adds those). The one
 * place the daemon (slurm-ops.c) and `gpukeeper slurm gres` turn a
 * snapshot's GPU into gres devices. */
typedef struct GpuDevice GpuDevice;
void slurm_devices_add_gpu(const GpuDevice *g, SlurmDevice *out, size_t *n, size_t max);

/* Sort devices into gres order (see the top of this file). */
void slurm_devices_order(SlurmDevice *devs, size_t n);

/* gres.conf `Type=` for a device: the model lowercased without its
 * "NVIDIA " prefix, spaces as '_' (`a100-sxm4-80gb`); for MIG the model's
 * type, '_' and the profile (`a100-sxm4-80gb_3g.40gb`), as Slurm's NVML
 * autodetection names them. Returns 0 or -ENAMETOOLONG. */
int slurm_gres_type(const SlurmDevice *dev, char *buf, size_t len);

/* CPU list "0-15,32-47" of a bitmask; "" when empty. Returns 0 or -ENAMETOOLONG. */
int slurm_cpu_list(const unsigned long *set, size_t n_words, char *buf, size_t len);

/* Write gres.conf for `devs` (already in gres order) to `f`: AutoDetect=off,
 * then one `Name=gpu Type=… File=<dev_dir>/nvidia<minor>` line per whole GPU
 * and one `Name=gpu Type=… MultipleFiles=<dev_dir>/nvidia<minor>,
 * <dev_dir>/nvidia-caps/nvidia-cap<gi>,…cap<ci>` per MIG instance, with
 * `Cores=` where the CPU affinity is known. -EINVAL when a device's minor
 * (or a MIG instance's caps minors) is unknown: Slurm would fence the wrong
 * device. Returns 0 or -errno. */
int slurm_gres_render(FILE *f, const SlurmDevice *devs, size_t n, const char *dev_dir);

/* gres.conf and nvidia-caps' mig-minors are small: a bigger one is refused. */
#define SLURM_FILE_MAX (1u << 20)

/* The whole of such a file (gres.conf, mig-minors), NUL-terminated, in
 * *ret (malloc'd). Returns 0, or -errno of open() or read_full_fd()
 * (basic/fileio.h): -EFBIG above SLURM_FILE_MAX, -EINVAL when not a
 * regular file. The one reader of both for the prolog and `slurm gres`. */
int slurm_read_file(const char *path, char **ret);

/* The nvidia-caps minor of `gpu%u/gi%u/access` (ci < 0) or
 * `gpu%u/gi%u/ci%u/access` in the text of
 * /proc/driver/nvidia-caps/mig-minors. -ENOENT when absent. */
int slurm_mig_minor(const char *text, unsigned gpu_minor, unsigned gi, int ci, int *ret);

/* Parse a Slurm index list "0,2-3" (SLURM_JOB_GPUS) into `ret` (at most
 * `max`, each below SLURM_MAX_DEVICES, no duplicates). -EINVAL on anything
 * else; "" is an empty list. Returns the count or -errno. */
int slurm_parse_index_list(const char *text, unsigned *ret, size_t max);

/* A job id (1 .. SLURM_JOB_ID_MAX) in decimal. Returns 0 or -EINVAL. */
int slurm_parse_job_id(const char *text, uint64_t *ret);

/* Job ids in `squeue --noheader --format=%A` output (one a line; array
 * and het-job ids have their own numeric job id there). Returns the count
 * (at most `max`) or -EINVAL when a line is not a job id, -E2BIG beyond max. */
int slurm_parse_squeue(const char *text, uint64_t *ret, size_t max);

/* The Slurm job a process belongs to, from its /proc/<pid>/cgroup text
 * (a `job_<id>` path component: Slurm's cgroup plugins) or, failing that,
 * its /proc/<pid>/environ (SLURM_JOB_ID, NUL-separated; proctrack/linuxproc
 * and pgid keep no cgroup). Either text may be NULL. Returns the job id, or
 * 0 when the process is in no job. */
uint64_t slurm_job_of_process(const char *cgroup, const char *environ_data, size_t environ_len);

/* dcgm-exporter's HPC job mapping: one file per device named `<gpu index>`
 * or `<gpu index>.<gi>`, holding the job ids on it, one a line. */
typedef struct SlurmJobmapEntry {
        char name[24];  /* "0" or "1.2" */
        char ids[SLURM_JOBMAP_MAX_IDS][24]; /* Slurm job ids, or "gk-<lease id>" */
        size_t n_ids;
} SlurmJobmapEntry;

/* Make the directory `dirfd` hold exactly `entries`: files whose content
 * changed are replaced atomically (temporary file, then rename), files of
 * devices no longer held are removed; other files are left alone. Returns
 * 0 or the first -errno. */
int slurm_jobmap_write(int dirfd, const SlurmJobmapEntry *entries, size_t n);

/* ---- reading gres.conf (gresconf.c) -------------------------------------- */

#define SLURM_GRES_FILES_MAX 8 /* files of one MultipleFiles= record */

/* One gpu gres unit of a node: the device files gres.conf gives it. */
typedef struct SlurmGresRecord {
        char files[SLURM_GRES_FILES_MAX][SLURM_PATH_MAX];
        size_t n_files;
        unsigned line; /* where gres.conf names it */
} SlurmGresRecord;

/* The `Name=gpu` units of gres.conf `text` that apply to node `node`
 * (lines without NodeName=, or whose NodeName= hostlist names it), in the
 * order slurmd numbers them (the file's): one per file of `File=` (brackets
 * expanded: /dev/nvidia[0-3] is four), one per `MultipleFiles=` line.
 * Returns the count (at most `max`), -EOPNOTSUPP when AutoDetect= is on
 * (the driver orders the units, not the file), -ENODEV for a gpu line with
 * no files, -E2BIG beyond `max`, -EINVAL with *ret_line (may be NULL) set
 * on a line that is not gres.conf. */
int slurm_gresconf_parse(const char *text, const char *node, SlurmGresRecord *ret, size_t max,
                         unsigned *ret_line);

/* The device a gres unit is. */
typedef struct SlurmGresTarget {
        int minor;  /* /dev/nvidia<minor> of the GPU */
        int gi, ci; /* the MIG instance; -1 for the whole GPU */
} SlurmGresTarget;

/* Which device `rec`'s files are: /dev/nvidia<N> alone is GPU minor N;
 * nvidia-caps files (nvidia-cap<M>) are looked up in `mig_minors` (the text
 * of /proc/driver/nvidia-caps/mig-minors, may be NULL) to a GPU minor, GPU
 * instance and compute instance. Returns 0, -ENOENT when a caps minor is
 * not in mig_minors, -EINVAL when the files are not one device's. */
int slurm_gres_record_target(const SlurmGresRecord *rec, const char *mig_minors,
                             SlurmGresTarget *ret);
