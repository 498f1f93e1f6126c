/* Tests of violation detection (src/policy/violations.c).
 *
 * Table tests on a hand-built snapshot pin down each rule: whole GPUs, MIG
 * instances (a lease on one instance does not cover its sibling, nor the
 * parent GPU, nor does a GPU lease cover an instance), processes on a MIG
 * GPU's parent, vanished processes, root / uid / executable exemptions
 * (the executable callback only asked about would-be violations), and
 * multi-GPU processes. A seeded random test compares the sorted-lookup
 * implementation with a direct re-statement of the rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/violations.h"

#define ALICE 1001
#define BOB 1002
#define CAROL 1003
#define MIB (UINT64_C(1) << 20)

typedef struct Lab {
        GpuSnapshot snap;
        GpuDevice gpus[8];
        GpuInstance inst[8][4];
        GpuProcess procs[8][64];
        char commands[8][64][32];
} Lab;

static Lab *lab_new(void)
{
        Lab *l = calloc(1, sizeof(*l));

        assert_non_null(l);
        l->snap.nvml_available = true;
        l->snap.gpus = l->gpus;
        return l;
}

static size_t lab_gpu(Lab *l, const char *uuid, unsigned n_instances)
{
        size_t g = l->snap.n_gpus++;
        GpuDevice *d = &l->gpus[g];

        assert_true(g < 8 && n_instances <= 4);
        d->index = (unsigned)g;
        snprintf(d->uuid, sizeof(d->uuid), "%s", uuid);
        d->healthy = true;
        d->mig_enabled = n_instances > 0;
        d->instances = l->inst[g];
        d->n_instances = n_instances;
        d->processes = l->procs[g];
        for (unsigned i = 0; i < n_instances; i++)
                snprintf(l->inst[g][i].uuid, sizeof(l->inst[g][i].uuid), "MIG-%s-%u", uuid + 4, i);
        return g;
}

static GpuProcess *lab_proc(Lab *l, size_t g, uint32_t pid, uid_t uid, int instance)
{
        GpuDevice *d = &l->gpus[g];
        size_t i = d->n_processes++;
        GpuProcess *p = &l->procs[g][i];

        assert_true(i < 64);
        snprintf(l->commands[g][i], sizeof(l->commands[g][i]), "python train%u.py", pid);
        *p = (GpuProcess){.pid = pid,
                          .memory_used_bytes = (uint64_t)pid * MIB,
                          .instance = instance,
                          .uid = uid,
                          .start_time = 1000 + pid,
                          .command = l->commands[g][i]};
        return p;
}

static size_t find(const Lab *l, PolicyViolation **ret, const PolicyHeld *held, size_t n_held,
                   const PolicyExempt *ex)
{
        size_t n = 99;

        assert_int_equal(policy_find_violations(&l->snap, held, n_held, ex, ret, &n), 0);
        assert_true(n == 0 ? *ret == NULL : *ret != NULL);
        return n;
}

static void test_empty(void **state)
{
        Lab *l = lab_new();
        PolicyViolation *v = (PolicyViolation *)1;

        assert_int_equal(find(l, &v, NULL, 0, NULL), 0);
        lab_gpu(l, "GPU-a", 0);
        assert_int_equal(find(l, &v, NULL, 0, NULL), 0);
        free(l);
}

static void test_whole_gpu(void **state)
{
        Lab *l = lab_new();
        PolicyHeld held[] = {{ALICE, "GPU-a"}, {BOB, "GPU-b"}};
        PolicyViolation *v;
        size_t a = lab_gpu(l, "GPU-a", 0), b = lab_gpu(l, "GPU-b", 0);

        lab_proc(l, a, 100, ALICE, -1);
        lab_proc(l, a, 101, BOB, -1); /* bob on alice's GPU */
        lab_proc(l, b, 102, BOB, -1);
        lab_proc(l, b, 103, CAROL, -1); /* carol holds nothing */

        assert_int_equal(find(l, &v, held, 2, NULL), 2);
        assert_int_equal(v[0].pid, 101);
        assert_int_equal(v[0].uid, BOB);
        assert_int_equal(v[0].start_time, 1101);
        assert_string_equal(v[0].device_uuid, "GPU-a");
        assert_string_equal(v[0].gpu_uuid, "GPU-a");
        assert_int_equal(v[0].gpu_index, 0);
        assert_int_equal(v[0].instance, -1);
        assert_int_equal(v[0].memory_used_bytes, 101 * MIB);
        assert_string_equal(v[0].command, "python train101.py");
        /* Borrowed from the snapshot, not copied. */
        assert_ptr_equal(v[0].command, l->commands[a][1]);
        assert_ptr_equal(v[0].device_uuid, l->gpus[a].uuid);
        assert_int_equal(v[1].pid, 103);
        assert_string_equal(v[1].device_uuid, "GPU-b");
        assert_int_equal(v[1].gpu_index, 1);
        free(v);

        /* Without any lease every process is a violation. */
        assert_int_equal(find(l, &v, NULL, 0, NULL), 4);
        free(v);
        free(l);
}

static void test_mig(void **state)
{
        Lab *l = lab_new();
        size_t m = lab_gpu(l, "GPU-m", 3);
        PolicyHeld held[] = {{ALICE, "MIG-m-0"}, {BOB, "MIG-m-1"}};
        PolicyViolation *v;

        lab_proc(l, m, 200, ALICE, 0);  /* her instance */
        lab_proc(l, m, 201, ALICE, 1);  /* bob's instance */
        lab_proc(l, m, 202, ALICE, 2);  /* nobody's instance */
        lab_proc(l, m, 203, ALICE, -1); /* the parent, no instance */
        lab_proc(l, m, 204, BOB, 1);

        assert_int_equal(find(l, &v, held, 2, NULL), 3);
        assert_int_equal(v[0].pid, 201);
        assert_string_equal(v[0].device_uuid, "MIG-m-1");
        assert_string_equal(v[0].gpu_uuid, "GPU-m");
        assert_int_equal(v[0].instance, 1);
        assert_int_equal(v[1].pid, 202);
        assert_string_equal(v[1].device_uuid, "MIG-m-2");
        assert_int_equal(v[1].instance, 2);
        assert_int_equal(v[2].pid, 203);
        assert_string_equal(v[2].device_uuid, "GPU-m");
        assert_int_equal(v[2].instance, -1);
        free(v);
        free(l);
}

static void test_gpu_lease_does_not_cover_instance(void **state)
{
        Lab *l = lab_new();
        size_t m = lab_gpu(l, "GPU-m", 2);
        PolicyHeld held[] = {{ALICE, "GPU-m"}};
        PolicyViolation *v;

        lab_proc(l, m, 300, ALICE, 0);
        lab_proc(l, m, 301, ALICE, -1);
        assert_int_equal(find(l, &v, held, 1, NULL), 1);
        assert_int_equal(v[0].pid, 300);
        assert_string_equal(v[0].device_uuid, "MIG-m-0");
        free(v);
        free(l);
}

static void test_out_of_range_instance_names_gpu(void **state)
{
        Lab *l = lab_new();
        size_t m = lab_gpu(l, "GPU-m", 1);
        PolicyViolation *v;

        lab_proc(l, m, 310, ALICE, 7);
        assert_int_equal(find(l, &v, NULL, 0, NULL), 1);
        assert_string_equal(v[0].device_uuid, "GPU-m");
        assert_int_equal(v[0].instance, -1);
        free(v);
        free(l);
}

static void test_vanished(void **state)
{
        Lab *l = lab_new();
        size_t a = lab_gpu(l, "GPU-a", 0);
        GpuProcess *p;
        PolicyViolation *v;

        p = lab_proc(l, a, 400, BOB, -1);
        p->vanished = true;
        p->uid = (uid_t)-1;
        p->start_time = 0;
        p->command = NULL;
        assert_int_equal(find(l, &v, NULL, 0, NULL), 0);
        free(l);
}

static void test_root_and_uid_exemptions(void **state)
{
        Lab *l = lab_new();
        size_t a = lab_gpu(l, "GPU-a", 0);
        uid_t uids[] = {998, CAROL};
        PolicyExempt ex = {.root_exempt = true, .uids = uids, .n_uids = 2};
        PolicyViolation *v;

        lab_proc(l, a, 500, 0, -1);
        lab_proc(l, a, 501, CAROL, -1);
        lab_proc(l, a, 502, BOB, -1);

        assert_int_equal(find(l, &v, NULL, 0, &ex), 1);
        assert_int_equal(v[0].pid, 502);
        free(v);

        ex.root_exempt = false;
        assert_int_equal(find(l, &v, NULL, 0, &ex), 2);
        assert_int_equal(v[0].pid, 500);
        assert_int_equal(v[1].pid, 502);
        free(v);

        /* No exemptions at all: not even root. */
        assert_int_equal(find(l, &v, NULL, 0, NULL), 3);
        free(v);
        free(l);
}

typedef struct ExeTable {
        uint32_t pid[8];
        uint64_t start_time[8];
        const char *exe[8];
        size_t n;
        uint32_t asked[16];
        size_t n_asked;
} ExeTable;

static const char *exe_lookup(void *userdata, uint32_t pid, uint64_t start_time)
{
        ExeTable *t = userdata;

        assert_true(t->n_asked < 16);
        t->asked[t->n_asked++] = pid;
        for (size_t i = 0; i < t->n; i++)
                if (t->pid[i] == pid && t->start_time[i] == start_time)
                        return t->exe[i];
        return NULL;
}

static void test_executable_exemption(void **state)
{
        Lab *l = lab_new();
        size_t a = lab_gpu(l, "GPU-a", 0);
        const char *exes[] = {"/usr/bin/nvidia-persistenced", "/usr/lib/xorg/Xorg"};
        ExeTable t = {
            .pid = {600, 601, 602},
            .start_time = {1600, 1601, 9999 /* a recycled pid: no match */},
            .exe = {"/usr/lib/xorg/Xorg", "/usr/bin/python3", "/usr/lib/xorg/Xorg"},
            .n = 3,
        };
        PolicyExempt ex = {
            .executables = exes, .n_executables = 2, .exe = exe_lookup, .userdata = &t};
        PolicyHeld held[] = {{ALICE, "GPU-a"}};
        PolicyViolation *v;

        lab_proc(l, a, 600, BOB, -1);   /* Xorg: exempt */
        lab_proc(l, a, 601, BOB, -1);   /* python: violation */
        lab_proc(l, a, 602, BOB, -1);   /* exe unknown for this start time */
        lab_proc(l, a, 603, BOB, -1);   /* exe unknown */
        lab_proc(l, a, 604, ALICE, -1); /* leased: never asked about */

        assert_int_equal(find(l, &v, held, 1, &ex), 3);
        assert_int_equal(v[0].pid, 601);
        assert_int_equal(v[1].pid, 602);
        assert_int_equal(v[2].pid, 603);
        free(v);
        assert_int_equal(t.n_asked, 4);
        for (size_t i = 0; i < t.n_asked; i++)
                assert_int_not_equal(t.asked[i], 604);

        /* Without listed executables the callback is never called. */
        t.n_asked = 0;
        ex.n_executables = 0;
        assert_int_equal(find(l, &v, held, 1, &ex), 4);
        free(v);
        assert_int_equal(t.n_asked, 0);
        free(l);
}

static void test_process_on_two_gpus(void **state)
{
        Lab *l = lab_new();
        size_t a = lab_gpu(l, "GPU-a", 0), b = lab_gpu(l, "GPU-b", 0);
        PolicyHeld held[] = {{BOB, "GPU-a"}};
        PolicyViolation *v;

        lab_proc(l, a, 700, BOB, -1);
        lab_proc(l, b, 700, BOB, -1);
        assert_int_equal(find(l, &v, held, 1, NULL), 1);
        assert_string_equal(v[0].device_uuid, "GPU-b");
        free(v);

        assert_int_equal(find(l, &v, NULL, 0, NULL), 2);
        assert_int_equal(v[0].pid, 700);
        assert_int_equal(v[1].pid, 700);
        assert_string_equal(v[0].device_uuid, "GPU-a");
        assert_string_equal(v[1].device_uuid, "GPU-b");
        free(v);
        free(l);
}

/* The rule restated without sorting or searching. */
static bool naive_violates(const GpuDevice *d, const GpuProcess *p, const PolicyHeld *held,
                           size_t n)
{
        const char *dev = p->instance >= 0 ? d->instances[p->instance].uuid : d->uuid;

        if (p->vanished)
                return false;
        for (size_t i = 0; i < n; i++)
                if (held[i].uid == p->uid && strcmp(held[i].uuid, dev) == 0)
                        return false;
        return true;
}

static void test_random_against_naive(void **state)
{
        static const char *devices[] = {"GPU-g0",   "GPU-g1",   "GPU-g2", "GPU-g3",   "MIG-g3-0",
                                        "MIG-g3-1", "MIG-g3-2", "GPU-g4", "MIG-g4-0", "MIG-g4-1"};
        unsigned seed = 12345;

        for (int round = 0; round < 500; round++) {
                Lab *l = lab_new();
                PolicyHeld held[64];
                size_t n_held = (size_t)(rand_r(&seed) % 64), k = 0, n;
                PolicyViolation *v;

                lab_gpu(l, "GPU-g0", 0);
                lab_gpu(l, "GPU-g1", 0);
                lab_gpu(l, "GPU-g2", 0);
                lab_gpu(l, "GPU-g3", 3);
                lab_gpu(l, "GPU-g4", 2);
                for (size_t i = 0; i < n_held; i++)
                        held[i] =
                            (PolicyHeld){.uid = 1000 + (uid_t)(rand_r(&seed) % 6),
                                         .uuid = devices[rand_r(&seed) % ELEMENTSOF(devices)]};
                for (size_t g = 0; g < 5; g++) {
                        unsigned np = (unsigned)(rand_r(&seed) % 20);

                        for (unsigned i = 0; i < np; i++) {
                                int inst =
                                    l->gpus[g].n_instances > 0
                                        ? (int)(rand_r(&seed) % (l->gpus[g].n_instances + 1)) - 1
                                        : -1;
                                GpuProcess *p = lab_proc(l, g, (uint32_t)(g * 100 + i + 2),
                                                         1000 + (uid_t)(rand_r(&seed) % 6), inst);

                                p->vanished = rand_r(&seed) % 10 == 0;
                        }
                }

                n = find(l, &v, held, n_held, NULL);
                for (size_t g = 0; g < 5; g++)
                        for (size_t i = 0; i < l->gpus[g].n_processes; i++) {
                                const GpuProcess *p = &l->gpus[g].processes[i];

                                if (!naive_violates(&l->gpus[g], p, held, n_held))
                                        continue;
                                assert_true(k < n);
                                assert_int_equal(v[k].pid, p->pid);
                                assert_ptr_equal(v[k].gpu_uuid, l->gpus[g].uuid);
                                k++;
                        }
                assert_int_equal(k, n);
                free(v);
                free(l);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_whole_gpu),
            cmocka_unit_test(test_mig),
            cmocka_unit_test(test_gpu_lease_does_not_cover_instance),
            cmocka_unit_test(test_out_of_range_instance_names_gpu),
            cmocka_unit_test(test_vanished),
            cmocka_unit_test(test_root_and_uid_exemptions),
            cmocka_unit_test(test_executable_exemption),
            cmocka_unit_test(test_process_on_two_gpus),
            cmocka_unit_test(test_random_against_naive),
        };

        return cmocka_run_group_tests_name("violations", tests, NULL, NULL);
}
