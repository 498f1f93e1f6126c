/* Tests of src/limits/: the cgroupfs writer against a tree of plain
 * directories and files standing where the hierarchies would be (the real
 * kernel files are exercised by tests/integration/test_limits.py), named by
 * a mountinfo file of the test's own: discovery (v1 mounts, cpu and cpuacct
 * together, a v2 hierarchy that has or lacks each controller), the files and
 * values written for v1 and v2 (infinity as -1 / max), subtree_control of the
 * parents on v2, moving a pid, and failures: a controller mounted nowhere,
 * a file that cannot be written; each named, the others still written. And
 * the systemd property values. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "limits/limits-cgroupfs.h"
#include "limits/limits-systemd.h"

#define MIB (UINT64_C(1) << 20)

static char root[64];

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *dir, const char *name)
{
        static char buf[256];
        char path[PATH_MAX];
        FILE *f;
        size_t n;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "re");
        assert_non_null(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void mkdirs(const char *path)
{
        char tmp[PATH_MAX];

        snprintf(tmp, sizeof tmp, "%s", path);
        for (char *p = tmp + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void)mkdir(tmp, 0755);
                        *p = '/';
                }
        (void)mkdir(tmp, 0755);
}

/* A directory standing for a cgroup: its control files exist, empty. */
static void fake_cgroup(const char *dir, const char *const *files)
{
        mkdirs(dir);
        for (; *files; files++) {
                char path[PATH_MAX];

                snprintf(path, sizeof path, "%s/%s", dir, *files);
                write_text(path, "");
        }
}

static int setup(void **state)
{
        snprintf(root, sizeof root, "/tmp/test-limits-XXXXXX");
        assert_non_null(mkdtemp(root));
        return 0;
}

static int teardown(void **state)
{
        char cmd[PATH_MAX + 16];

        /* only our own mkdtemp directory */
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        assert_int_equal(strncmp(root, "/tmp/test-limits-", 17), 0);
        return system(cmd) == 0 ? 0 : -1;
}

static void mountinfo(const char *v2_controllers)
{
        char path[PATH_MAX], text[4096], unified[PATH_MAX];

        snprintf(unified, sizeof unified, "%s/unified", root);
        mkdirs(unified);
        snprintf(path, sizeof path, "%s/cgroup.controllers", unified);
        write_text(path, v2_controllers);
        snprintf(text, sizeof text,
                 "22 1 0:21 / /proc rw - proc proc rw\n"
                 "31 30 0:28 / %s/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
                 "34 30 0:31 / %s/memory rw,relatime - cgroup cgroup rw,memory\n"
                 "38 30 0:35 / %s/pids rw,relatime - cgroup cgroup rw,pids\n"
                 "39 30 0:36 / %s/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
                 "40 30 0:37 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n",
                 root, root, root, root, root);
        snprintf(path, sizeof path, "%s/mountinfo", root);
        write_text(path, text);
}

static LimitsCgroupfs *discover(void)
{
        char path[PATH_MAX], why[256] = "";
        LimitsCgroupfs *fs = NULL;

        snprintf(path, sizeof path, "%s/mountinfo", root);
        assert_int_equal(limits_cgroupfs_discover(path, "gk.slice", &fs, why, sizeof why), 0);
        return fs;
}

static PolicyUserLimits limits(uint64_t cpu, uint64_t mem, uint64_t tasks)
{
        PolicyUserLimits l = {0};

        l.limit[POLICY_LIMIT_CPU].value = cpu;
        l.limit[POLICY_LIMIT_MEMORY].value = mem;
        l.limit[POLICY_LIMIT_TASKS].value = tasks;
        return l;
}

static void test_v1(void **state)
{
        static const char *const cpu_files[] = {"cpu.cfs_period_us", "cpu.cfs_quota_us",
                                                "cgroup.procs", NULL};
        static const char *const mem_files[] = {"memory.limit_in_bytes", "cgroup.procs", NULL};
        static const char *const pid_files[] = {"pids.max", "cgroup.procs", NULL};
        char cpu[PATH_MAX], mem[PATH_MAX], pids[PATH_MAX], why[1024], desc[128];
        LimitsCgroupfs *fs;
        PolicyUserLimits l = limits(400, 64 * MIB, 4096);

        mountinfo(""); /* a hybrid machine: the unified hierarchy has no controller */
        fs = discover();
        limits_cgroupfs_describe(fs, desc, sizeof desc);
        assert_string_equal(desc, "v1 cpu,memory,pids");
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_CPU, 1001, cpu, sizeof cpu), 0);
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_MEMORY, 1001, mem, sizeof mem),
                         0);
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_TASKS, 1001, pids, sizeof pids),
                         0);
        assert_non_null(strstr(cpu, "/cpu,cpuacct/gk.slice/user-1001.slice"));
        fake_cgroup(cpu, cpu_files);
        fake_cgroup(mem, mem_files);
        fake_cgroup(pids, pid_files);

        assert_int_equal(limits_cgroupfs_apply(fs, 1001, &l, why, sizeof why), 0);
        assert_string_equal(why, "");
        /* an existing cgroup keeps its period (the kernel's default, 100000,
         * written by us only with a cgroup we make or after a failed write) */
        assert_string_equal(read_text(cpu, "cpu.cfs_period_us"), "");
        assert_string_equal(read_text(cpu, "cpu.cfs_quota_us"), "400000");
        assert_string_equal(read_text(mem, "memory.limit_in_bytes"), "67108864");
        assert_string_equal(read_text(pids, "pids.max"), "4096");

        l = limits(POLICY_LIMIT_INFINITY, POLICY_LIMIT_INFINITY, POLICY_LIMIT_INFINITY);
        assert_int_equal(limits_cgroupfs_apply(fs, 1001, &l, why, sizeof why), 0);
        assert_string_equal(read_text(cpu, "cpu.cfs_quota_us"), "-1");
        assert_string_equal(read_text(mem, "memory.limit_in_bytes"), "-1");
        assert_string_equal(read_text(pids, "pids.max"), "max");

        /* v1 hierarchies all get the pid; v2 is not one of them here */
        assert_int_equal(limits_cgroupfs_attach(fs, 1001, 4242, false, why, sizeof why), 0);
        assert_string_equal(read_text(cpu, "cgroup.procs"), "4242");
        assert_string_equal(read_text(mem, "cgroup.procs"), "4242");
        assert_string_equal(read_text(pids, "cgroup.procs"), "4242");
        limits_cgroupfs_free(fs);
}

static void test_v2(void **state)
{
        static const char *const parent_files[] = {"cgroup.subtree_control", NULL};
        static const char *const user_files[] = {"cpu.max", "memory.max", "pids.max",
                                                 "cgroup.procs", NULL};
        char parent[PATH_MAX], user[PATH_MAX], why[1024], desc[128];
        PolicyUserLimits l = limits(150, 96 * MIB, 20);
        LimitsCgroupfs *fs;

        mountinfo("cpuset cpu io memory pids\n");
        fs = discover();
        limits_cgroupfs_describe(fs, desc, sizeof desc);
        assert_string_equal(desc, "v2 cpu,memory,pids");
        snprintf(parent, sizeof parent, "%s/unified/gk.slice", root);
        snprintf(user, sizeof user, "%s/user-7.slice", parent);
        fake_cgroup(parent, parent_files);

        /* No user cgroup yet: made, its parent's controllers enabled (the
         * last one written stays in this plain file); its files would be the
         * kernel's, absent here, so the writes fail and say so. */
        assert_int_equal(limits_cgroupfs_apply(fs, 7, &l, why, sizeof why), -ENOENT);
        assert_non_null(strstr(why, "cpu: cannot write '150000 100000' to "));
        assert_string_equal(read_text(parent, "cgroup.subtree_control"), "+pids");
        /* Once there, the values are written without touching the parent. */
        write_text(strcat(strcpy(why, parent), "/cgroup.subtree_control"), "");
        fake_cgroup(user, user_files);
        assert_int_equal(limits_cgroupfs_apply(fs, 7, &l, why, sizeof why), 0);
        assert_string_equal(read_text(user, "cpu.max"), "150000 100000");
        assert_string_equal(read_text(user, "memory.max"), "100663296");
        assert_string_equal(read_text(user, "pids.max"), "20");
        assert_string_equal(read_text(parent, "cgroup.subtree_control"), "");
        l = limits(POLICY_LIMIT_INFINITY, POLICY_LIMIT_INFINITY, 5);
        assert_int_equal(limits_cgroupfs_apply(fs, 7, &l, why, sizeof why), 0);
        assert_string_equal(read_text(user, "cpu.max"), "max");
        assert_string_equal(read_text(user, "memory.max"), "max");

        /* a process has one v2 cgroup: moved only when asked */
        write_text(strcat(strcpy(why, user), "/cgroup.procs"), "");
        assert_int_equal(limits_cgroupfs_attach(fs, 7, 99, false, why, sizeof why), 0);
        assert_string_equal(read_text(user, "cgroup.procs"), "");
        assert_int_equal(limits_cgroupfs_attach(fs, 7, 99, true, why, sizeof why), 0);
        assert_string_equal(read_text(user, "cgroup.procs"), "99");
        limits_cgroupfs_free(fs);
}

static void test_failures_are_named(void **state)
{
        static const char *const cpu_files[] = {"cpu.cfs_period_us", "cpu.cfs_quota_us", NULL};
        char path[PATH_MAX], cpu[PATH_MAX], mem[PATH_MAX], why[1024];
        PolicyUserLimits l = limits(100, 8 * MIB, 10);
        LimitsCgroupfs *fs;

        /* no pids mount at all */
        mountinfo("");
        snprintf(path, sizeof path, "%s/mountinfo", root);
        write_text(path, "");
        {
                char text[1024];

                snprintf(text, sizeof text,
                         "31 30 0:28 / %s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                         "34 30 0:31 / %s/memory rw - cgroup cgroup rw,memory\n",
                         root, root);
                write_text(path, text);
        }
        fs = discover();
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_TASKS, 1, path, sizeof path),
                         -ENODEV);
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_CPU, 1, cpu, sizeof cpu), 0);
        assert_int_equal(limits_cgroupfs_user_dir(fs, POLICY_LIMIT_MEMORY, 1, mem, sizeof mem), 0);
        fake_cgroup(cpu, cpu_files);
        /* memory.limit_in_bytes is a directory: the write fails (EISDIR) */
        snprintf(path, sizeof path, "%s/memory.limit_in_bytes", mem);
        mkdirs(path);

        assert_int_equal(limits_cgroupfs_apply(fs, 1, &l, why, sizeof why), -EISDIR);
        assert_non_null(strstr(why, "memory: cannot write '8388608' to "));
        assert_non_null(strstr(why, "; tasks: no cgroup hierarchy has the pids controller "
                                    "mounted"));
        assert_null(strstr(why, "cpu:"));
        /* what could be written was */
        assert_string_equal(read_text(cpu, "cpu.cfs_quota_us"), "100000");
        limits_cgroupfs_free(fs);

        snprintf(path, sizeof path, "%s/no-such-mountinfo", root);
        assert_int_equal(limits_cgroupfs_discover(path, "x", &fs, why, sizeof why), -ENOENT);
        assert_non_null(strstr(why, "cannot read"));
}

static void test_systemd_values(void **state)
{
        char unit[64];

        limits_systemd_unit(1001, unit, sizeof unit);
        assert_string_equal(unit, "user-1001.slice");
        /* CPUQuotaPerSecUSec: 400% = 4 s per second */
        assert_int_equal(limits_systemd_value(POLICY_LIMIT_CPU, 400), 4000000);
        assert_true(limits_systemd_value(POLICY_LIMIT_CPU, POLICY_LIMIT_INFINITY) == UINT64_MAX);
        assert_int_equal(limits_systemd_value(POLICY_LIMIT_MEMORY, 64 * MIB), 64 * MIB);
        assert_true(limits_systemd_value(POLICY_LIMIT_MEMORY, POLICY_LIMIT_INFINITY) ==
                    UINT64_MAX);
        assert_int_equal(limits_systemd_value(POLICY_LIMIT_TASKS, 4096), 4096);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_v2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failures_are_named, setup, teardown),
                cmocka_unit_test(test_systemd_values),
        };

        return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
