/* Tests of mig_apply_plan (src/mig/apply.c) against the NVML simulator: a
 * plan made from what NVML reports is carried out, the GPU then matches
 * it, matching instances survive a second plan, and a failing step is one
 * line naming the GPU, the step and the NVML function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mig/apply.h"
#include "mig/layout.h"

static char dir[] = "/tmp/gk-test-mig-apply-XXXXXX", lab[64], state_file[80], lock_file[96];
static char error[512];

typedef struct Facts {
        GpuMigProfile p[GPU_MIG_MAX_PROFILES];
        GpuMigInstance in[GPU_MIG_MAX_INSTANCES];
        MigGpuFacts f;
} Facts;

static void read_facts(GpuNvml *n, Facts *x)
{
        nvmlDevice_t dev;
        size_t np = 0, ni = 0;
        bool cur = false, pend = false;

        assert_int_equal(gpu_nvml_device_handle(n, 0, &dev), NVML_SUCCESS);
        assert_int_equal(gpu_mig_mode(n, dev, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(gpu_mig_profiles(n, dev, x->p, GPU_MIG_MAX_PROFILES, &np), NVML_SUCCESS);
        assert_int_equal(gpu_mig_instances(n, dev, x->p, np, x->in, GPU_MIG_MAX_INSTANCES, &ni),
                         NVML_SUCCESS);
        x->f = (MigGpuFacts) { .position = 0, .uuid = "GPU-1", .name = "NVIDIA H100 80GB HBM3",
                               .pci_device_id = 0x233010DE, .capable = true, .current = cur,
                               .pending = pend, .profiles = x->p, .n_profiles = np,
                               .instances = x->in, .n_instances = ni };
}

static MigFile *parse(const char *text)
{
        MigFile *f = NULL;

        assert_int_equal(mig_file_parse(text, strlen(text), "t.yaml", &f, error, sizeof(error)), 0);
        return f;
}

static void test_apply(void **state)
{
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        _cleanup_(mig_file_freep) MigFile *f = parse(
                "version: v1\nmig-configs:\n"
                "  one: [{devices: all, mig-enabled: true, mig-devices: {\"3g.40gb\": 1}}]\n"
                "  bal: [{devices: all, mig-enabled: true, mig-devices: {\"3g.40gb\": 1, \"2g.20gb\": 1, \"1g.10gb\": 2}}]\n"
                "  full: [{devices: all, mig-enabled: true, mig-devices: {\"7g.80gb\": 1}}]\n");
        Facts x;
        MigGpuPlan p;
        MigApplied done;
        unsigned kept_gi;
        FILE *fl = fopen(lab, "we");

        assert_non_null(fl);
        fputs("{ \"gpus\": [ { \"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": \"GPU-44440000-0000-4000-8000-000000000000\","
              " \"pci_bus_id\": \"00000000:18:00.0\", \"memory_total_mib\": 81559, \"mig\": { \"enabled\": true } } ] }\n", fl);
        assert_int_equal(fclose(fl), 0);
        assert_int_equal(gpu_nvml_open(SIM_MODERN, &n, error, sizeof(error)), 0);

        read_facts(n, &x);
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "one"), &x.f, &p, error, sizeof(error)), 0);
        assert_int_equal(mig_apply_plan(n, 0, "GPU 0", &p, &done, error, sizeof(error)), 0);
        assert_int_equal(done.created, 1);
        read_facts(n, &x);
        assert_int_equal(x.f.n_instances, 1);
        assert_int_equal(x.in[0].start, 4); /* leaves 4g.40gb possible at 0 */
        kept_gi = x.in[0].gi_id;
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "one"), &x.f, &p, error, sizeof(error)), 0);
        assert_true(p.matches);

        assert_int_equal(mig_plan_gpu(mig_file_find(f, "bal"), &x.f, &p, error, sizeof(error)), 0);
        assert_int_equal(p.n_keep, 1);
        assert_int_equal(mig_apply_plan(n, 0, "GPU 0", &p, &done, error, sizeof(error)), 0);
        assert_int_equal(done.created, 3);
        assert_int_equal(done.destroyed, 0);
        read_facts(n, &x);
        assert_int_equal(x.f.n_instances, 4);
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "bal"), &x.f, &p, error, sizeof(error)), 0);
        assert_true(p.matches);
        assert_int_equal(p.keep[0] == kept_gi || p.keep[1] == kept_gi || p.keep[2] == kept_gi ||
                                 p.keep[3] == kept_gi,
                         1);

        /* A step that fails: creating where another instance sits. */
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "full"), &x.f, &p, error, sizeof(error)), 0);
        p.n_destroy = 0; /* as if a stale plan */
        assert_int_equal(mig_apply_plan(n, 0, "GPU 0 (GPU-4444)", &p, &done, error, sizeof(error)), -EIO);
        assert_string_equal(error, "GPU 0 (GPU-4444): creating 7g.80gb at memory slice 0: "
                                   "nvmlDeviceCreateGpuInstanceWithPlacement: Ran out of critical "
                                   "resources, other than memory (23)");
}

static int setup(void **state)
{
        if (!mkdtemp(dir))
                return -1;
        snprintf(lab, sizeof(lab), "%s/lab.json", dir);
        snprintf(state_file, sizeof(state_file), "%s/state.json", dir);
        snprintf(lock_file, sizeof(lock_file), "%s.lock", state_file);
        setenv("GPUKEEPER_SIM_LAB", lab, 1);
        setenv("GPUKEEPER_SIM_STATE", state_file, 1);
        return 0;
}

static int teardown(void **state)
{
        unlink(lab);
        unlink(state_file);
        unlink(lock_file);
        return rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_apply),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
