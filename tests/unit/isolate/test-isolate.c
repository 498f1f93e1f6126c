/* Strict mode's pieces: the mig-minors and /proc/devices parsers, the pure
 * rules (policy/fence.c), and the fence itself against the real kernel:
 * a cgroup of this test's own under the cgroup2 mount, a private bpffs,
 * mknod'd nodes, child processes under test uids. The kernel part is
 * skipped (said so) where the test is not root or cgroup2 is missing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "isolate/devnodes.h"
#include "isolate/fence.h"
#include "isolate/lease-cgroup.h"
#include "policy/fence.h"

#define CGROUP2_ROOT "/sys/fs/cgroup/unified"

static void test_mig_minors_parse(void **state)
{
        const char *text = "config 1\nmonitor 2\ngpu0/gi1/access 12\ngpu0/gi1/ci0/access 13\n"
                           "gpu1/gi2/access 140\r\ngpu1/gi2/ci7/access 148";
        PolicyFenceMig *m = NULL;
        size_t n = 0;
        unsigned line = 0;

        assert_int_equal(isolate_mig_minors_parse(text, &m, &n, &line), 0);
        assert_int_equal(n, 4);
        assert_int_equal(m[0].gpu, 0);
        assert_int_equal(m[0].gi, 1);
        assert_int_equal(m[0].ci, POLICY_FENCE_GI_NODE);
        assert_int_equal(m[0].minor, 12);
        assert_int_equal(m[1].ci, 0);
        assert_int_equal(m[1].minor, 13);
        assert_int_equal(m[2].minor, 140);
        assert_int_equal(m[3].gpu, 1);
        assert_int_equal(m[3].ci, 7);
        assert_int_equal(m[3].minor, 148);
        free(m);

        assert_int_equal(isolate_mig_minors_parse("config 1\ngpu0/gi1/acces 3\n", &m, &n, &line),
                         -EINVAL);
        assert_int_equal(line, 2);
        assert_int_equal(isolate_mig_minors_parse("gpu0/gi1/access 3 4\n", &m, &n, &line),
                         -EINVAL);
        assert_int_equal(isolate_mig_minors_parse("gpu0/gi/access 3\n", &m, &n, &line), -EINVAL);
        assert_int_equal(isolate_mig_minors_parse("gpu0/gi1/access -3\n", &m, &n, &line),
                         -EINVAL);
        assert_int_equal(isolate_mig_minors_parse("", &m, &n, &line), 0);
        assert_int_equal(n, 0);
        free(m);
}

static void test_char_major(void **state)
{
        char path[] = "/tmp/gk-isolate-devices-XXXXXX";
        int fd = mkstemp(path);
        const char *text = "Character devices:\n  1 mem\n195 nvidia\n237 nvidia-caps\n"
                           "Block devices:\n 238 nvidia-caps-blk\n";
        uint32_t major = 0;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        assert_int_equal(isolate_char_major(path, "nvidia-caps", &major), 0);
        assert_int_equal(major, 237);
        assert_int_equal(isolate_char_major(path, "nvidia", &major), 0);
        assert_int_equal(major, 195);
        assert_int_equal(isolate_char_major(path, "nvidia-caps-blk", &major), -ENOENT);
        assert_int_equal(isolate_char_major(path, "nvidia-uvm", &major), -ENOENT);
        unlink(path);
        assert_int_equal(isolate_char_major(path, "nvidia", &major), -ENOENT);
}

static void test_rules(void **state)
{
        const PolicyFenceMig mig[] = {
                {0, 1, POLICY_FENCE_GI_NODE, 12}, {0, 1, 0, 13}, {0, 2, POLICY_FENCE_GI_NODE, 21},
                {0, 2, 0, 22},
        };
        const PolicyFenceLeased leased[] = {
                {.uid = 1001, .gpu_minor = 1},
                {.uid = 1001, .gpu_minor = 0, .mig = true, .gi = 1, .ci = 0},
                {.uid = 1001, .gpu_minor = 1}, /* duplicate */
                {.uid = 1002, .gpu_minor = 0, .mig = true, .gi = 2, .ci = 0},
                {.uid = 1003, .gpu_minor = 300}, /* not a GPU node: nothing */
        };
        PolicyFenceRule *rules = NULL;
        PolicyFenceDev *devs = NULL;
        size_t n = 0;

        assert_int_equal(policy_fence_rules(leased, ELEMENTSOF(leased), mig, ELEMENTSOF(mig), 237,
                                            &rules, &n),
                         0);
        assert_int_equal(n, 7);
        /* Sorted by uid, major, minor. */
        assert_true(rules[0].uid == 1001 && rules[0].major == 195 && rules[0].minor == 0);
        assert_true(rules[1].uid == 1001 && rules[1].major == 195 && rules[1].minor == 1);
        assert_true(rules[2].uid == 1001 && rules[2].major == 237 && rules[2].minor == 12);
        assert_true(rules[3].uid == 1001 && rules[3].major == 237 && rules[3].minor == 13);
        assert_true(rules[4].uid == 1002 && rules[4].major == 195 && rules[4].minor == 0);
        assert_true(rules[5].uid == 1002 && rules[5].major == 237 && rules[5].minor == 21);
        assert_true(rules[6].uid == 1002 && rules[6].major == 237 && rules[6].minor == 22);
        free(rules);

        /* Without the caps major a MIG lease opens only its GPU's node. */
        assert_int_equal(policy_fence_rules(leased, 2, mig, ELEMENTSOF(mig), 0, &rules, &n), 0);
        assert_int_equal(n, 2);
        free(rules);

        assert_int_equal(policy_fence_guarded(mig, ELEMENTSOF(mig), 237, &devs, &n), 0);
        assert_int_equal(n, 254 + 4);
        assert_true(devs[0].major == 195 && devs[0].minor == 0);
        assert_true(devs[253].major == 195 && devs[253].minor == 253);
        assert_true(devs[254].major == 237 && devs[254].minor == 12);
        free(devs);
        assert_int_equal(policy_fence_guarded(mig, ELEMENTSOF(mig), 0, &devs, &n), 0);
        assert_int_equal(n, 254);
        free(devs);
}

/* --- the kernel part ------------------------------------------------------ */

typedef struct KernelFixture {
        char cgroup[200];
        char bpffs[64];
        char pin_dir[128];
        char nodes[64];
} KernelFixture;

static int kernel_setup(void **state)
{
        KernelFixture *k = calloc(1, sizeof *k);
        char dev[128];

        if (geteuid() != 0 || access(CGROUP2_ROOT "/cgroup.procs", W_OK) < 0) {
                free(k);
                *state = NULL;
                return 0;
        }
        snprintf(k->cgroup, sizeof k->cgroup, CGROUP2_ROOT "/gk-unit-isolate-%d", (int)getpid());
        assert_int_equal(mkdir(k->cgroup, 0755), 0);
        snprintf(k->bpffs, sizeof k->bpffs, "/tmp/gk-unit-bpffs-%d", (int)getpid());
        assert_int_equal(mkdir(k->bpffs, 0700), 0);
        assert_int_equal(mount("bpf", k->bpffs, "bpf", 0, "mode=0700"), 0);
        snprintf(k->pin_dir, sizeof k->pin_dir, "%s/gpukeeper", k->bpffs);
        snprintf(k->nodes, sizeof k->nodes, "/tmp/gk-unit-nodes-%d", (int)getpid());
        assert_int_equal(mkdir(k->nodes, 0755), 0);
        assert_int_equal(chmod(k->nodes, 0755), 0); /* whatever the umask */
        for (unsigned m = 0; m < 2; m++) {
                snprintf(dev, sizeof dev, "%s/nvidia%u", k->nodes, m);
                assert_int_equal(mknod(dev, S_IFCHR | 0666, makedev(195, m)), 0);
                assert_int_equal(chmod(dev, 0666), 0);
        }
        snprintf(dev, sizeof dev, "%s/nvidiactl", k->nodes);
        assert_int_equal(mknod(dev, S_IFCHR | 0666, makedev(195, 255)), 0);
        assert_int_equal(chmod(dev, 0666), 0);
        *state = k;
        return 0;
}

static bool keep_none(int64_t id, void *userdata)
{
        return false;
}

static int kernel_teardown(void **state)
{
        KernelFixture *k = *state;
        char path[400], why[512];

        if (!k)
                return 0;
        (void)fence_remove(k->cgroup, k->pin_dir, why, sizeof why);
        snprintf(path, sizeof path, "%s/" ISOLATE_LEASE_CGROUPS_DIR, k->cgroup);
        (void)isolate_lease_cgroups_sweep(path, keep_none, NULL);
        (void)rmdir(path);
        assert_int_equal(rmdir(k->cgroup), 0);
        (void)umount2(k->bpffs, MNT_DETACH);
        (void)rmdir(k->bpffs);
        for (unsigned m = 0; m < 3; m++) {
                snprintf(path, sizeof path, m < 2 ? "%s/nvidia%u" : "%s/nvidiactl", k->nodes, m);
                (void)unlink(path);
        }
        (void)rmdir(k->nodes);
        free(k);
        return 0;
}

/* Open `node` from a child that joins `cgroup` and becomes `uid`: 0 when
 * the open succeeded, else its errno (ENXIO: allowed, no driver behind;
 * EPERM: the fence refused). */
static int open_as(const char *cgroup, uid_t uid, const char *nodes, const char *node)
{
        char path[512];
        int status;
        pid_t pid;

        snprintf(path, sizeof path, "%s/%s", nodes, node);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char procs[300], buf[32];
                int fd, n;

                snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup);
                fd = open(procs, O_WRONLY | O_CLOEXEC);
                n = snprintf(buf, sizeof buf, "%d", (int)getpid());
                if (fd < 0 || write(fd, buf, (size_t)n) != n)
                        _exit(200);
                close(fd);
                if (uid && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(201);
                fd = open(path, O_RDWR | O_CLOEXEC);
                _exit(fd >= 0 ? 0 : errno);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void sync_rules(Fence *f, const PolicyFenceLeased *leased, size_t n)
{
        PolicyFenceRule *rules = NULL;
        PolicyFenceDev *devs = NULL;
        size_t n_rules = 0, n_devs = 0;

        assert_int_equal(policy_fence_guarded(NULL, 0, 0, &devs, &n_devs), 0);
        assert_int_equal(fence_sync_guarded(f, devs, n_devs), 0);
        assert_int_equal(policy_fence_rules(leased, n, NULL, 0, 0, &rules, &n_rules), 0);
        assert_int_equal(fence_sync_allow(f, rules, n_rules), 0);
        free(rules);
        free(devs);
}

typedef struct DeniedSum {
        uint32_t uid;
        uint64_t count;
} DeniedSum;

static int add_denied(const PolicyFenceRule *who, uint64_t count, void *userdata)
{
        DeniedSum *s = userdata;

        if (who->uid == s->uid)
                s->count += count;
        return 0;
}

static void test_fence_kernel(void **state)
{
        KernelFixture *k = *state;
        const PolicyFenceLeased alice_gpu1 = {.uid = 60101, .gpu_minor = 1};
        const uint32_t exempt[] = {60103};
        DeniedSum denied = {.uid = 60102};
        char why[512], lease_parent[300], *lease_path = NULL;
        bool taken_over = true;
        Fence *f = NULL;

        if (!k) {
                print_message("SKIPPED: not root or no writable cgroup2 at " CGROUP2_ROOT "\n");
                skip();
        }
        assert_int_equal(fence_probe_uid_helper(why, sizeof why), 1);
        assert_int_equal(fence_open(k->cgroup, k->pin_dir, &f, &taken_over, why, sizeof why), 0);
        assert_false(taken_over);
        sync_rules(f, &alice_gpu1, 1);
        assert_int_equal(fence_sync_exempt(f, exempt, 1), 0);
        assert_int_equal(fence_attach(f, why, sizeof why), 0);

        /* alice (60101) holds GPU 1, bob (60102) nothing. */
        assert_int_equal(open_as(k->cgroup, 60101, k->nodes, "nvidia1"), ENXIO);
        assert_int_equal(open_as(k->cgroup, 60102, k->nodes, "nvidia1"), EPERM);
        assert_int_equal(open_as(k->cgroup, 60101, k->nodes, "nvidia0"), EPERM);
        /* Control nodes, root and exempt users are never refused. */
        assert_int_equal(open_as(k->cgroup, 60102, k->nodes, "nvidiactl"), ENXIO);
        assert_int_equal(open_as(k->cgroup, 0, k->nodes, "nvidia0"), ENXIO);
        assert_int_equal(open_as(k->cgroup, 60103, k->nodes, "nvidia0"), ENXIO);
        assert_int_equal(fence_denied_foreach(f, add_denied, &denied), 0);
        assert_int_equal(denied.count, 1);

        /* Released: closed again. */
        assert_int_equal(fence_allow(f, &(PolicyFenceRule){60101, 195, 1}, false), 0);
        assert_int_equal(open_as(k->cgroup, 60101, k->nodes, "nvidia1"), EPERM);
        assert_int_equal(fence_allow(f, &(PolicyFenceRule){60101, 195, 1}, true), 0);

        /* A new instance takes the pinned fence over: nothing changes. */
        fence_close(f);
        f = NULL;
        assert_int_equal(open_as(k->cgroup, 60102, k->nodes, "nvidia1"), EPERM);
        assert_int_equal(fence_open(k->cgroup, k->pin_dir, &f, &taken_over, why, sizeof why), 0);
        assert_true(taken_over);
        assert_int_equal(fence_attach(f, why, sizeof why), 0);
        assert_int_equal(open_as(k->cgroup, 60101, k->nodes, "nvidia1"), ENXIO);

        /* A lease cgroup that holds only GPU 0: alice, although the host
         * fence lets her open GPU 1 too, opens only GPU 0 inside it. */
        sync_rules(f, (const PolicyFenceLeased[]){alice_gpu1, {.uid = 60101, .gpu_minor = 0}}, 2);
        snprintf(lease_parent, sizeof lease_parent, "%s/" ISOLATE_LEASE_CGROUPS_DIR, k->cgroup);
        assert_int_equal(isolate_lease_cgroup_create(ISOLATE_CGROUP_CGROUPFS, lease_parent, 7,
                                                     getpid(), fence_guarded_fd(f),
                                                     (const PolicyFenceDev[]){{195, 0}}, 1,
                                                     &lease_path, why, sizeof why),
                         0);
        /* (this test process was moved in; children join explicitly anyway) */
        assert_int_equal(open_as(lease_path, 60101, k->nodes, "nvidia0"), ENXIO);
        assert_int_equal(open_as(lease_path, 60101, k->nodes, "nvidia1"), EPERM);
        assert_int_equal(open_as(k->cgroup, 60101, k->nodes, "nvidia1"), ENXIO);
        /* Move ourselves back out, then the lease cgroup can go. */
        {
                char procs[300], buf[32];
                int fd, n;

                snprintf(procs, sizeof procs, "%s/cgroup.procs", k->cgroup);
                fd = open(procs, O_WRONLY | O_CLOEXEC);
                n = snprintf(buf, sizeof buf, "%d", (int)getpid());
                assert_true(fd >= 0 && write(fd, buf, (size_t)n) == n);
                close(fd);
        }
        assert_int_equal(isolate_lease_cgroup_remove(lease_parent, 7), 0);
        free(lease_path);

        /* Leaving strict mode removes it. */
        fence_close(f);
        assert_true(fence_is_pinned(k->pin_dir));
        assert_int_equal(fence_remove(k->cgroup, k->pin_dir, why, sizeof why), 1);
        assert_false(fence_is_pinned(k->pin_dir));
        assert_int_equal(open_as(k->cgroup, 60102, k->nodes, "nvidia1"), ENXIO);
        /* Our own process must leave the test cgroup before teardown. */
        {
                char buf[32];
                int fd = open(CGROUP2_ROOT "/cgroup.procs", O_WRONLY | O_CLOEXEC), n;

                n = snprintf(buf, sizeof buf, "%d", (int)getpid());
                assert_true(fd >= 0);
                (void)!write(fd, buf, (size_t)n);
                close(fd);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mig_minors_parse),
                cmocka_unit_test(test_char_major),
                cmocka_unit_test(test_rules),
                cmocka_unit_test_setup_teardown(test_fence_kernel, kernel_setup, kernel_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
