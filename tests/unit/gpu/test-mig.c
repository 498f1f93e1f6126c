/* Tests of the MIG management binding (src/gpu/nvml-mig.c) against the
 * NVML simulator: the profile table with its placements read through the
 * V call, creating a GPU instance with its compute instance at a placement,
 * listing and destroying it, the pending MIG mode, NOT_SUPPORTED without
 * MIG, and the error codes of bad and taken placements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu/nvml-mig.h"

static char dir[] = "/tmp/gk-test-mig-XXXXXX", lab[64], state_file[80], lock_file[96];

static void write_file(const char *path, const char *text)
{
        char tmp[128];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, path), 0);
}

static const GpuMigProfile *by_name(const GpuMigProfile *p, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(p[i].name, name) == 0)
                        return &p[i];
        return NULL;
}

static void test_binding(void **state)
{
        _cleanup_(gpu_nvml_closep) GpuNvml *n = NULL;
        GpuMigProfile p[GPU_MIG_MAX_PROFILES];
        GpuMigInstance in[GPU_MIG_MAX_INSTANCES];
        nvmlDevice_t h100, plain;
        const GpuMigProfile *g3, *g1;
        size_t np = 0, ni = 9;
        unsigned gi = 99;
        bool cur = false, pend = false, reset = false;
        char err[256];

        write_file(lab, "{ \"gpus\": [\n"
                        " { \"name\": \"NVIDIA H100 80GB HBM3\", \"uuid\": \"GPU-11111111-0000-4000-8000-000000000000\",\n"
                        "   \"pci_bus_id\": \"00000000:18:00.0\", \"memory_total_mib\": 81559, \"mig\": { \"enabled\": true } },\n"
                        " { \"name\": \"NVIDIA A100-SXM4-80GB\", \"uuid\": \"GPU-22222222-0000-4000-8000-000000000000\",\n"
                        "   \"pci_bus_id\": \"00000000:19:00.0\", \"memory_total_mib\": 81920 } ] }\n");
        assert_int_equal(gpu_nvml_open(SIM_MODERN, &n, err, sizeof(err)), 0);
        assert_int_equal(gpu_nvml_device_handle(n, 0, &h100), NVML_SUCCESS);
        assert_int_equal(gpu_nvml_device_handle(n, 1, &plain), NVML_SUCCESS);

        assert_int_equal(gpu_mig_profiles(n, h100, p, GPU_MIG_MAX_PROFILES, &np), NVML_SUCCESS);
        assert_int_equal(np, 7);
        g3 = by_name(p, np, "3g.40gb");
        g1 = by_name(p, np, "1g.10gb");
        assert_non_null(g3);
        assert_non_null(g1);
        assert_non_null(by_name(p, np, "1g.10gb+me"));
        assert_non_null(by_name(p, np, "1g.20gb"));
        assert_int_equal(g3->id, 9);
        assert_int_equal(g3->size, 4);
        assert_int_equal(g3->starts, 0x11);
        assert_int_equal(g3->max_instances, 2);
        assert_int_equal(g1->starts, 0x7F);
        assert_int_equal(gpu_mig_profiles(n, plain, p, GPU_MIG_MAX_PROFILES, &np), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(gpu_mig_profiles(n, h100, p, GPU_MIG_MAX_PROFILES, &np), NVML_SUCCESS);
        g3 = by_name(p, np, "3g.40gb");
        g1 = by_name(p, np, "1g.10gb");

        assert_int_equal(gpu_mig_instances(n, h100, p, np, in, GPU_MIG_MAX_INSTANCES, &ni), NVML_SUCCESS);
        assert_int_equal(ni, 0);
        assert_int_equal(gpu_mig_create(n, h100, g3, 4, &gi), NVML_SUCCESS);
        assert_int_equal(gpu_mig_create(n, h100, g3, 4, &gi), NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_string_equal(gpu_nvml_last_call(n), "nvmlDeviceCreateGpuInstanceWithPlacement");
        assert_int_equal(gpu_mig_create(n, h100, g3, 2, &gi), NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(gpu_mig_create(n, h100, g1, 0, &gi), NVML_SUCCESS);
        assert_int_equal(gpu_mig_instances(n, h100, p, np, in, GPU_MIG_MAX_INSTANCES, &ni), NVML_SUCCESS);
        assert_int_equal(ni, 2);
        for (size_t i = 0; i < ni; i++) {
                assert_int_equal(in[i].ci_id, 0);
                if (in[i].profile_id == 9) {
                        assert_int_equal(in[i].start, 4);
                        assert_int_equal(in[i].size, 4);
                } else {
                        assert_int_equal(in[i].profile_id, 19);
                        assert_int_equal(in[i].start, 0);
                        assert_int_equal(in[i].gi_id, gi);
                }
        }
        assert_int_equal(gpu_mig_destroy(n, h100, gi), NVML_SUCCESS);
        assert_int_equal(gpu_mig_destroy(n, h100, gi), NVML_ERROR_NOT_FOUND);
        assert_int_equal(gpu_mig_instances(n, h100, p, np, in, GPU_MIG_MAX_INSTANCES, &ni), NVML_SUCCESS);
        assert_int_equal(ni, 1);
        assert_int_equal(gpu_mig_destroy(n, h100, in[0].gi_id), NVML_SUCCESS);

        assert_int_equal(gpu_mig_mode(n, h100, &cur, &pend), NVML_SUCCESS);
        assert_true(cur && pend);
        assert_int_equal(gpu_mig_set_mode(n, h100, false, &reset), NVML_SUCCESS);
        assert_true(reset);
        assert_int_equal(gpu_mig_mode(n, h100, &cur, &pend), NVML_SUCCESS);
        assert_true(cur);
        assert_false(pend);
        assert_int_equal(gpu_mig_set_mode(n, plain, true, &reset), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(gpu_mig_mode(n, plain, &cur, &pend), NVML_ERROR_NOT_SUPPORTED);
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
                cmocka_unit_test(test_binding),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
