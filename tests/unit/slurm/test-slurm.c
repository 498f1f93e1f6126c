/* Tests of src/slurm: gres.conf lines for whole GPUs and MIG instances
 * (minors, caps nodes, Type=, Cores=), the gres order the prolog relies on,
 * refusals that would fence the wrong device, Slurm's index lists, job ids,
 * squeue output, mig-minors, and the job-mapping directory on a real
 * temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "slurm/slurm.h"

static char *render(SlurmDevice *devs, size_t n, int *ret)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        assert_non_null(f);
        slurm_devices_order(devs, n);
        *ret = slurm_gres_render(f, devs, n, "/dev");
        fclose(f);
        return text;
}

static const char *body(const char *text)
{
        const char *p = strstr(text, "AutoDetect=off\n");

        assert_non_null(p);
        return p;
}

static void test_gres_whole_and_mig(void **state)
{
        unsigned long cpus[2] = {0xFFFFul | (0xFul << 32), 0x1ul};
        SlurmDevice devs[] = {
                /* NVML index 0 has minor 3: minors, not indices, go to File=. */
                {.uuid = "GPU-b", .model = "NVIDIA H100 80GB HBM3", .nvml_index = 0, .minor = 3,
                 .gi = -1, .ci = -1, .cap_gi = -1, .cap_ci = -1},
                {.uuid = "MIG-2", .model = "NVIDIA A100-SXM4-80GB", .profile = "3g.40gb",
                 .nvml_index = 1, .minor = 1, .gi = 2, .ci = 0, .cap_gi = 30, .cap_ci = 31,
                 .cpus = cpus, .n_cpu_words = 2},
                {.uuid = "MIG-1", .model = "NVIDIA A100-SXM4-80GB", .profile = "3g.40gb",
                 .nvml_index = 1, .minor = 1, .gi = 1, .ci = 0, .cap_gi = 21, .cap_ci = 22,
                 .cpus = cpus, .n_cpu_words = 2},
        };
        int r;
        char *text = render(devs, 3, &r);

        assert_int_equal(r, 0);
        assert_string_equal(
                body(text),
                "AutoDetect=off\n"
                "Name=gpu Type=a100-sxm4-80gb_3g.40gb MultipleFiles=/dev/nvidia1,"
                "/dev/nvidia-caps/nvidia-cap21,/dev/nvidia-caps/nvidia-cap22 Cores=0-15,32-35,64\n"
                "Name=gpu Type=a100-sxm4-80gb_3g.40gb MultipleFiles=/dev/nvidia1,"
                "/dev/nvidia-caps/nvidia-cap30,/dev/nvidia-caps/nvidia-cap31 Cores=0-15,32-35,64\n"
                "Name=gpu Type=h100_80gb_hbm3 File=/dev/nvidia3\n");
        /* The prolog's order is the file's. */
        assert_string_equal(devs[0].uuid, "MIG-1");
        assert_string_equal(devs[1].uuid, "MIG-2");
        assert_string_equal(devs[2].uuid, "GPU-b");
        free(text);
}

static void test_gres_refuses_unknown_minors(void **state)
{
        SlurmDevice no_minor = {.uuid = "GPU-a", .model = "X", .minor = -1, .gi = -1, .ci = -1};
        SlurmDevice no_caps = {.uuid = "MIG-a", .model = "X", .profile = "1g.10gb", .minor = 0,
                               .gi = 1, .ci = 0, .cap_gi = -1, .cap_ci = 5};
        int r;

        free(render(&no_minor, 1, &r));
        assert_int_equal(r, -EINVAL);
        free(render(&no_caps, 1, &r));
        assert_int_equal(r, -EINVAL);
}

static void test_gres_type_and_cpus(void **state)
{
        char buf[64];
        unsigned long set[1] = {0};
        SlurmDevice d = {.model = "Tesla V100, PCIe:16GB"};

        assert_int_equal(slurm_gres_type(&d, buf, sizeof buf), 0);
        assert_string_equal(buf, "tesla_v100__pcie_16gb");
        d.model = "";
        assert_int_equal(slurm_gres_type(&d, buf, sizeof buf), 0);
        assert_string_equal(buf, "gpu");
        d.model = "NVIDIA A100-SXM4-80GB";
        assert_int_equal(slurm_gres_type(&d, buf, 5), -ENAMETOOLONG);

        assert_int_equal(slurm_cpu_list(set, 1, buf, sizeof buf), 0);
        assert_string_equal(buf, "");
        set[0] = 0x5ul | (1ul << 63);
        assert_int_equal(slurm_cpu_list(set, 1, buf, sizeof buf), 0);
        assert_string_equal(buf, "0,2,63");
        assert_int_equal(slurm_cpu_list(set, 1, buf, 3), -ENAMETOOLONG);
}

static void test_index_lists(void **state)
{
        unsigned idx[8];

        assert_int_equal(slurm_parse_index_list("", idx, 8), 0);
        assert_int_equal(slurm_parse_index_list("3", idx, 8), 1);
        assert_int_equal(idx[0], 3);
        assert_int_equal(slurm_parse_index_list("0,2-4,7", idx, 8), 5);
        assert_int_equal(idx[1], 2);
        assert_int_equal(idx[3], 4);
        assert_int_equal(idx[4], 7);
        assert_int_equal(slurm_parse_index_list("0-7,8", idx, 8), -E2BIG);
        static const char *const bad[] = {"1,1", "3-1", "a", "1,", ",1", "1-", "-1", "1 2",
                                          "99999", "1,2-2-3", NULL};
        for (size_t i = 0; bad[i]; i++) {
                int r = slurm_parse_index_list(bad[i], idx, 8);

                if (strcmp(bad[i], "1,") == 0)
                        assert_int_equal(r, 1); /* a trailing comma, as Slurm writes none */
                else
                        assert_true(r < 0);
        }
}

static void test_job_ids_and_squeue(void **state)
{
        uint64_t id, jobs[4];

        assert_int_equal(slurm_parse_job_id("42", &id), 0);
        assert_int_equal(id, 42);
        assert_int_equal(slurm_parse_job_id("4294967295", &id), 0);
        assert_int_equal(slurm_parse_job_id("4294967296", &id), -EINVAL);
        assert_int_equal(slurm_parse_job_id("0", &id), -EINVAL);
        assert_int_equal(slurm_parse_job_id("-1", &id), -EINVAL);
        assert_int_equal(slurm_parse_job_id("12a", &id), -EINVAL);
        assert_int_equal(slurm_parse_job_id(NULL, &id), -EINVAL);

        assert_int_equal(slurm_parse_squeue("", jobs, 4), 0);
        assert_int_equal(slurm_parse_squeue("  7\n12\n\n 3 \n", jobs, 4), 3);
        assert_int_equal(jobs[0], 7);
        assert_int_equal(jobs[2], 3);
        assert_int_equal(slurm_parse_squeue("1\n2\n3\n4\n5\n", jobs, 4), -E2BIG);
        assert_int_equal(slurm_parse_squeue("JOBID\n1\n", jobs, 4), -EINVAL);
}

static void test_mig_minors(void **state)
{
        const char *text = "config 1\nmonitor 2\ngpu0/gi1/access 21\ngpu0/gi1/ci0/access 22\n"
                           "gpu10/gi1/access 99\ngpu1/gi2/ci0/access 40";
        int m = -1;

        assert_int_equal(slurm_mig_minor(text, 0, 1, -1, &m), 0);
        assert_int_equal(m, 21);
        assert_int_equal(slurm_mig_minor(text, 0, 1, 0, &m), 0);
        assert_int_equal(m, 22);
        assert_int_equal(slurm_mig_minor(text, 1, 2, 0, &m), 0);
        assert_int_equal(m, 40);
        assert_int_equal(slurm_mig_minor(text, 1, 1, -1, &m), -ENOENT);
        assert_int_equal(slurm_mig_minor("gpu0/gi1/access x\n", 0, 1, -1, &m), -EINVAL);
}

static void test_job_of_process(void **state)
{
        static const char env[] = "HOME=/home/a\0SLURM_JOB_IDX=9\0SLURM_JOB_ID=77\0PATH=/bin";
        static const char bad[] = "SLURM_JOB_ID=7x";

        assert_int_equal(slurm_job_of_process(NULL, NULL, 0), 0);
        assert_int_equal(slurm_job_of_process("0::/system.slice/vm_slurmstepd.scope/job_42/"
                                              "step_0/user/task_0\n", NULL, 0), 42);
        assert_int_equal(slurm_job_of_process("4:memory:/slurm/uid_1000/job_9\n", env,
                                              sizeof env), 9);
        assert_int_equal(slurm_job_of_process("0::/user.slice/job_x\n", env, sizeof env), 77);
        assert_int_equal(slurm_job_of_process("0::/user.slice\n", env, sizeof env - 20), 0);
        assert_int_equal(slurm_job_of_process(NULL, bad, sizeof bad - 1), 0);
}

static char *read_at(int dfd, const char *name)
{
        static char buf[256];
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        ssize_t k;

        if (fd < 0)
                return NULL;
        k = read(fd, buf, sizeof buf - 1);
        close(fd);
        assert_true(k >= 0);
        buf[k] = '\0';
        return buf;
}

static void test_jobmap(void **state)
{
        char dir[] = "/tmp/test-slurm-XXXXXX";
        SlurmJobmapEntry e[2] = {
                {.name = "0", .ids = {"17", "gk-3"}, .n_ids = 2},
                {.name = "1.2", .ids = {"18"}, .n_ids = 1},
        };
        int dfd, fd;

        assert_non_null(mkdtemp(dir));
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        /* Someone else's file is left alone; a stale device file goes. */
        fd = openat(dfd, "README", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        fd = openat(dfd, "5", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);

        assert_int_equal(slurm_jobmap_write(dfd, e, 2), 0);
        assert_string_equal(read_at(dfd, "0"), "17\ngk-3\n");
        assert_string_equal(read_at(dfd, "1.2"), "18\n");
        assert_null(read_at(dfd, "5"));
        assert_non_null(read_at(dfd, "README"));

        assert_int_equal(slurm_jobmap_write(dfd, e + 1, 1), 0);
        assert_null(read_at(dfd, "0"));
        assert_string_equal(read_at(dfd, "1.2"), "18\n");
        assert_int_equal(slurm_jobmap_write(dfd, NULL, 0), 0);
        assert_null(read_at(dfd, "1.2"));

        unlinkat(dfd, "README", 0);
        close(dfd);
        assert_int_equal(rmdir(dir), 0);
}

/* gres.conf as slurmd numbers it: File= brackets are one unit per file,
 * MultipleFiles= one unit per line, other nodes' and other gres's lines
 * skipped, comments ignored. */
static void test_gresconf_parse(void **state)
{
        static const char text[] =
                "# written by hand\n"
                "AutoDetect=off\n"
                "Name=gpu Type=a100 File=/dev/nvidia[0-1] Cores=0-7  # two GPUs\n"
                "NodeName=other[1-3] Name=gpu File=/dev/nvidia5\n"
                "NodeName=gpu[01-04],login Name=gpu Type=a100_3g.40gb "
                "MultipleFiles=/dev/nvidia2,/dev/nvidia-caps/nvidia-cap[30,31]\n"
                "\n"
                "Name=mps Count=100 File=/dev/nvidia0\n"
                "name=GPU file=/dev/nvidia3\n";
        SlurmGresRecord recs[8];
        unsigned line = 0;
        int n = slurm_gresconf_parse(text, "gpu02", recs, 8, &line);

        assert_int_equal(n, 4);
        assert_int_equal(recs[0].n_files, 1);
        assert_string_equal(recs[0].files[0], "/dev/nvidia0");
        assert_string_equal(recs[1].files[0], "/dev/nvidia1");
        assert_int_equal(recs[1].line, 3);
        assert_int_equal(recs[2].n_files, 3);
        assert_string_equal(recs[2].files[0], "/dev/nvidia2");
        assert_string_equal(recs[2].files[1], "/dev/nvidia-caps/nvidia-cap30");
        assert_string_equal(recs[2].files[2], "/dev/nvidia-caps/nvidia-cap31");
        assert_int_equal(recs[2].line, 5);
        assert_string_equal(recs[3].files[0], "/dev/nvidia3");
        /* Another node: the NodeName= line for gpu[01-04] is not ours. */
        assert_int_equal(slurm_gresconf_parse(text, "gpu05", recs, 8, NULL), 3);
        assert_int_equal(slurm_gresconf_parse(text, "other2", recs, 8, NULL), 4);
        assert_string_equal(recs[2].files[0], "/dev/nvidia5");
        /* Limits and refusals. */
        assert_int_equal(slurm_gresconf_parse(text, "gpu02", recs, 2, NULL), -E2BIG);
        assert_int_equal(slurm_gresconf_parse("AutoDetect=nvml\nName=gpu File=/dev/nvidia0\n",
                                              "n", recs, 8, NULL), -EOPNOTSUPP);
        assert_int_equal(slurm_gresconf_parse("Name=gpu Count=2\n", "n", recs, 8, NULL),
                         -ENODEV);
        assert_int_equal(slurm_gresconf_parse("AutoDetect=off\nName=gpu File=/dev/nvidia[1-0]\n",
                                              "n", recs, 8, &line), -EINVAL);
        assert_int_equal(line, 2);
        assert_int_equal(slurm_gresconf_parse("Name=gpu File=/dev/a MultipleFiles=/dev/b\n", "n",
                                              recs, 8, &line), -EINVAL);
        assert_int_equal(slurm_gresconf_parse("Name=gpu garbage\n", "n", recs, 8, &line),
                         -EINVAL);
        assert_int_equal(slurm_gresconf_parse("Name=gpu File=/dev/nvidia[0-9999]\n", "n", recs,
                                              8, NULL), -E2BIG);
        assert_int_equal(slurm_gresconf_parse("", "n", recs, 8, NULL), 0);
}

/* A unit's files to the device: minors of /dev/nvidiaN, MIG instances
 * through mig-minors. */
static void test_gres_record_target(void **state)
{
        static const char minors[] = "config 1\nmonitor 2\n"
                                     "gpu2/gi1/access 21\ngpu2/gi1/ci0/access 22\n"
                                     "gpu2/gi2/access 30\ngpu2/gi2/ci0/access 31\n";
        SlurmGresRecord rec = {.n_files = 1, .files = {"/dev/nvidia7"}};
        SlurmGresTarget t;

        assert_int_equal(slurm_gres_record_target(&rec, NULL, &t), 0);
        assert_int_equal(t.minor, 7);
        assert_int_equal(t.gi, -1);
        assert_int_equal(t.ci, -1);
        rec = (SlurmGresRecord){.n_files = 3, .files = {"/dev/nvidia2",
                                "/dev/nvidia-caps/nvidia-cap30", "/dev/nvidia-caps/nvidia-cap31"}};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), 0);
        assert_int_equal(t.minor, 2);
        assert_int_equal(t.gi, 2);
        assert_int_equal(t.ci, 0);
        /* The GPU instance's access file alone. */
        rec.n_files = 2;
        snprintf(rec.files[1], sizeof rec.files[1], "/dev/nvidia-caps/nvidia-cap21");
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), 0);
        assert_int_equal(t.gi, 1);
        assert_int_equal(t.ci, 0);
        /* Unknown caps minor, no mig-minors, two instances, two GPUs, not a GPU file. */
        snprintf(rec.files[1], sizeof rec.files[1], "/dev/nvidia-caps/nvidia-cap99");
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -ENOENT);
        assert_int_equal(slurm_gres_record_target(&rec, NULL, &t), -ENOENT);
        rec = (SlurmGresRecord){.n_files = 3, .files = {"/dev/nvidia2",
                                "/dev/nvidia-caps/nvidia-cap22", "/dev/nvidia-caps/nvidia-cap31"}};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -EINVAL);
        rec = (SlurmGresRecord){.n_files = 2, .files = {"/dev/nvidia2", "/dev/nvidia3"}};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -EINVAL);
        rec = (SlurmGresRecord){.n_files = 2, .files = {"/dev/nvidia3",
                                "/dev/nvidia-caps/nvidia-cap22"}};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -EINVAL);
        rec = (SlurmGresRecord){.n_files = 1, .files = {"/dev/dri/card0"}};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -EINVAL);
        rec = (SlurmGresRecord){.n_files = 0};
        assert_int_equal(slurm_gres_record_target(&rec, minors, &t), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gres_whole_and_mig),
                cmocka_unit_test(test_gres_refuses_unknown_minors),
                cmocka_unit_test(test_gres_type_and_cpus),
                cmocka_unit_test(test_index_lists),
                cmocka_unit_test(test_job_ids_and_squeue),
                cmocka_unit_test(test_mig_minors),
                cmocka_unit_test(test_jobmap),
                cmocka_unit_test(test_job_of_process),
                cmocka_unit_test(test_gresconf_parse),
                cmocka_unit_test(test_gres_record_target),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
