/* Tests of the mig-parted v1 parser and the layout planner (src/mig/):
 * mig-parted's own example configs parse unchanged; each rule of its spec
 * (version, required fields, mig-devices when enabled / not when disabled,
 * unknown keys, profile format, device filters) is an error naming the
 * file, line and key; selection follows mig-parted (last matching entry,
 * PCI bus order, device-filter with and without subsystem); plans keep
 * matching instances, refuse unknown profiles and more slices than exist,
 * and report mode changes; JSON round trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mig/layout.h"
#include "mig/mig-parted.h"

static char error[512];

static MigFile *parse(const char *text)
{
        MigFile *f = NULL;

        assert_int_equal(mig_file_parse(text, strlen(text), "t.yaml", &f, error, sizeof(error)), 0);
        return f;
}

static void parse_fails(const char *text, const char *expect)
{
        MigFile *f = NULL;

        assert_int_equal(mig_file_parse(text, strlen(text), "t.yaml", &f, error, sizeof(error)), -EINVAL);
        assert_null(f);
        if (!strstr(error, expect))
                fail_msg("error \"%s\" does not contain \"%s\"", error, expect);
        assert_null(strchr(error, '\n'));
}

static void test_fixtures(void **state)
{
        static const char *const files[] = { "config.yaml", "config-default.yaml",
                                             "dgx-station-80gb-config.yaml" };

        for (size_t i = 0; i < 3; i++) {
                char path[512];
                _cleanup_(mig_file_freep) MigFile *f = NULL;

                snprintf(path, sizeof(path), "%s/%s", FIXTURES, files[i]);
                if (mig_file_load(path, &f, error, sizeof(error)) < 0)
                        fail_msg("%s", error);
                assert_true(f->n_configs > 0);
        }
        {
                char path[512];
                _cleanup_(mig_file_freep) MigFile *f = NULL;
                const MigConfig *c;

                snprintf(path, sizeof(path), "%s/config.yaml", FIXTURES);
                assert_int_equal(mig_file_load(path, &f, error, sizeof(error)), 0);
                c = mig_file_find(f, "all-balanced");
                assert_non_null(c);
                assert_int_equal(c->n_specs, 1);
                assert_true(c->specs[0].all_devices);
                assert_true(c->specs[0].enabled);
                assert_int_equal(c->specs[0].n_counts, 3);
                c = mig_file_find(f, "custom-config");
                assert_int_equal(c->n_specs, 5);
                assert_int_equal(c->specs[0].n_devices, 4);
                assert_false(c->specs[0].enabled);
                assert_int_equal(c->specs[1].devices[0], 4);
                assert_non_null(mig_file_find(f, "all-enabled"));
                assert_int_equal(mig_file_find(f, "all-enabled")->specs[0].n_counts, 0);
                assert_null(mig_file_find(f, "nope"));
                /* custom-config: GPU 5 gets 3 x 2g.10gb, GPU 2 is disabled. */
                assert_int_equal(mig_config_select(c, 5, 0x20B010DE, 0)->counts[0].count, 3);
                assert_false(mig_config_select(c, 2, 0x20B010DE, 0)->enabled);
        }
        {
                char path[512];
                _cleanup_(mig_file_freep) MigFile *f = NULL;
                const MigConfig *c;
                const MigSpec *s;

                snprintf(path, sizeof(path), "%s/config-default.yaml", FIXTURES);
                assert_int_equal(mig_file_load(path, &f, error, sizeof(error)), 0);
                c = mig_file_find(f, "all-1g.10gb");
                s = mig_config_select(c, 0, 0x233010DE, 0x16C110DE); /* H100 SXM5 80GB */
                assert_non_null(s);
                assert_int_equal(s->counts[0].count, 7);
                s = mig_config_select(c, 3, 0x20B010DE, 0); /* A100-40GB */
                assert_int_equal(s->counts[0].count, 4);
                assert_null(mig_config_select(c, 1, 0x1FB010DE, 0)); /* no filter matches */
        }
}

static void test_rules(void **state)
{
        _cleanup_(mig_file_freep) MigFile *f = parse(
                "version: v1\nmig-configs:\n  a:\n    - devices: [0, 2]\n      device-filter: \"0x20B210DE:0x147F10DE\"\n"
                "      mig-enabled: yes\n      mig-devices: {\"3g.40gb\": 2, \"1g.10gb\": 0}\n"
                "    - devices: all\n      device-filter: [\"0x233010DE\"]\n      mig-enabled: false\n");
        const MigConfig *c = mig_file_find(f, "a");

        assert_int_equal(c->specs[0].line, 4);
        assert_true(c->specs[0].filters[0].has_subsystem);
        assert_true(mig_spec_matches(&c->specs[0], 2, 0x20B210DE, 0x147F10DE));
        assert_false(mig_spec_matches(&c->specs[0], 2, 0x20B210DE, 0x1234));
        assert_false(mig_spec_matches(&c->specs[0], 1, 0x20B210DE, 0x147F10DE));
        assert_true(mig_spec_matches(&c->specs[1], 9, 0x233010DE, 0));

        parse_fails("version: v2\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\n", "t.yaml:1: version");
        parse_fails("mig-configs: {a: [{devices: all, mig-enabled: false}]}\n", "version");
        parse_fails("version: v1\nmig-configs: {}\n", "t.yaml:2: mig-configs: at least one");
        parse_fails("version: v1\nmig-configs:\n  a: []\n", "t.yaml:3: mig-configs.a");
        parse_fails("version: v1\nextra: 1\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\n",
                    "t.yaml:2: unexpected field \"extra\"");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n",
                    "t.yaml:4: mig-configs.a[0]: missing required field \"mig-devices\"");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n"
                    "      mig-devices: {\"1g.10gb\": 1}\n",
                    "t.yaml:6: mig-configs.a[0].mig-devices: MIG devices included");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n"
                    "      mig-device: {}\n", "t.yaml:6: mig-configs.a[0]: unknown key \"mig-device\"");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - mig-enabled: false\n", "missing required field \"devices\"");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: some\n      mig-enabled: false\n",
                    "t.yaml:4: mig-configs.a[0].devices");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: maybe\n",
                    "mig-enabled: must be true or false");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n"
                    "      mig-devices: {\"big\": 1}\n", "\"big\" is not a MIG profile");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n"
                    "      mig-devices: {\"1g.10gb\": -1}\n", "mig-devices.1g.10gb: must be a whole number");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n"
                    "      mig-devices: {\"1g.10gb\": 8}\n", "from 0 to 7");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: true\n"
                    "      mig-devices: {\"1g.10gb\": 0}\n", "all counts are 0");
        parse_fails("version: v1\nmig-configs:\n  a:\n    - devices: all\n      device-filter: \"GA100\"\n"
                    "      mig-enabled: false\n", "t.yaml:5: mig-configs.a[0].device-filter");
        parse_fails("version: v1\nmig-configs: [\n", ": malformed YAML");
        parse_fails("version: v1\nmig-configs:\n  a: [{devices: all, mig-enabled: false}]\n  a: [{devices: all, mig-enabled: false}]\n",
                    "t.yaml:4: mig-configs: config \"a\" appears twice");
        assert_true(mig_profile_name_valid("1g.10gb+me"));
        assert_true(mig_profile_name_valid("1c.2g.20gb"));
        assert_true(mig_profile_name_valid("1g.24gb+me.all"));
        assert_true(mig_profile_name_valid("1g.24gb-me"));
        assert_false(mig_profile_name_valid("0g.10gb"));
        assert_false(mig_profile_name_valid("1g.10"));
        assert_false(mig_profile_name_valid("1g.10gb+"));
}

/* H100 80GB as NVML reports it (ids, placements). */
static const GpuMigProfile h100[] = {
        { 0x0, 19, "1g.10gb", 1, 7, 9984, 1, 0x7F },  { 0x1, 14, "2g.20gb", 2, 3, 20096, 2, 0x15 },
        { 0x2, 9, "3g.40gb", 3, 2, 40448, 4, 0x11 },  { 0x3, 5, "4g.40gb", 4, 1, 40448, 4, 0x01 },
        { 0x4, 0, "7g.80gb", 7, 1, 80896, 8, 0x01 },  { 0x7, 20, "1g.10gb+me", 1, 1, 9984, 1, 0x7F },
        { 0x9, 15, "1g.20gb", 1, 4, 20096, 2, 0x55 },
};

static MigGpuFacts facts(const GpuMigInstance *in, size_t n, bool current)
{
        return (MigGpuFacts) { .position = 0, .uuid = "GPU-x", .name = "NVIDIA H100 80GB HBM3",
                               .pci_device_id = 0x233010DE, .capable = true, .current = current,
                               .pending = current, .profiles = h100, .n_profiles = 7,
                               .instances = in, .n_instances = n };
}

static void test_plan(void **state)
{
        _cleanup_(mig_file_freep) MigFile *f = parse(
                "version: v1\nmig-configs:\n"
                "  bal: [{devices: all, mig-enabled: true, mig-devices: {\"1g.10gb\": 2, \"2g.20gb\": 1, \"3g.40gb\": 1}}]\n"
                "  off: [{devices: all, mig-enabled: false}]\n"
                "  old: [{devices: all, mig-enabled: true, mig-devices: {\"1g.5gb\": 7}}]\n"
                "  many: [{devices: all, mig-enabled: true, mig-devices: {\"3g.40gb\": 2, \"2g.20gb\": 1}}]\n"
                "  ci: [{devices: all, mig-enabled: true, mig-devices: {\"1c.3g.40gb\": 1}}]\n"
                "  other: [{devices: [3], mig-enabled: true, mig-devices: {}}]\n");
        GpuMigInstance have[] = { { 5, 9, 4, 4, 0 }, { 7, 19, 0, 1, 0 }, { 8, 19, 1, 1, 0 },
                                  { 9, 15, 2, 2, 0 } };
        MigGpuFacts g = facts(have, 4, true);
        MigGpuPlan p;

        assert_int_equal(mig_plan_gpu(mig_file_find(f, "bal"), &g, &p, error, sizeof(error)), 0);
        assert_true(p.selected);
        assert_false(p.matches);
        assert_int_equal(p.n_keep, 3); /* the 3g and both 1g keep their UUIDs */
        assert_int_equal(p.n_destroy, 1);
        assert_int_equal(p.destroy[0], 9);
        assert_int_equal(p.n_create, 1);
        assert_string_equal(p.create[0].profile->name, "2g.20gb");
        assert_int_equal(p.create[0].start, 2);

        /* Already there: matches. */
        GpuMigInstance done[] = { { 5, 9, 4, 4, 0 }, { 7, 19, 0, 1, 0 }, { 8, 19, 1, 1, 0 },
                                  { 9, 14, 2, 2, 0 } };
        g = facts(done, 4, true);
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "bal"), &g, &p, error, sizeof(error)), 0);
        assert_true(p.matches);

        assert_int_equal(mig_plan_gpu(mig_file_find(f, "off"), &g, &p, error, sizeof(error)), 0);
        assert_true(p.mode_change);
        assert_false(p.matches);
        /* NVML will not disable MIG while GPU instances exist: they go first. */
        assert_int_equal(p.n_destroy, 4);
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "other"), &g, &p, error, sizeof(error)), 0);
        assert_false(p.selected);

        assert_int_equal(mig_plan_gpu(mig_file_find(f, "old"), &g, &p, error, sizeof(error)), -EINVAL);
        assert_non_null(strstr(error, "has no MIG profile 1g.5gb; it has 1g.10gb"));
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "many"), &g, &p, error, sizeof(error)), -EINVAL);
        assert_non_null(strstr(error, "do not fit"));
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "ci"), &g, &p, error, sizeof(error)), -EINVAL);
        assert_non_null(strstr(error, "compute-instance profiles"));

        /* A disabled GPU asked for MIG: a mode change; instances come after the reset. */
        g = facts(NULL, 0, false);
        assert_int_equal(mig_plan_gpu(mig_file_find(f, "bal"), &g, &p, error, sizeof(error)), 0);
        assert_true(p.mode_change);
        assert_int_equal(p.n_create, 0);
}

static void test_json_and_export(void **state)
{
        _cleanup_(mig_file_freep) MigFile *f = parse(
                "version: v1\nmig-configs:\n  a:\n    - devices: [1]\n      device-filter: [\"0x20B210DE:0x147F10DE\"]\n"
                "      mig-enabled: true\n      mig-devices: {\"3g.40gb\": 2}\n");
        json_t *j = mig_config_to_json(mig_file_find(f, "a"));
        MigConfig back;
        GpuMigInstance have[] = { { 1, 9, 0, 4, 0 }, { 2, 9, 4, 4, 0 } };
        MigGpuFacts g = facts(have, 2, true);
        char *text;

        assert_non_null(j);
        assert_int_equal(mig_config_from_json(j, &back, error, sizeof(error)), 0);
        assert_string_equal(back.name, "a");
        assert_int_equal(back.n_specs, 1);
        assert_int_equal(back.specs[0].devices[0], 1);
        assert_int_equal(back.specs[0].filters[0].subsystem, 0x147F10DE);
        assert_int_equal(back.specs[0].counts[0].count, 2);
        free(back.specs);
        json_object_set_new(json_array_get(json_object_get(j, "specs"), 0), "bogus", json_true());
        assert_int_equal(mig_config_from_json(j, &back, error, sizeof(error)), -EINVAL);
        json_decref(j);

        text = mig_export(&g, 1, "current");
        assert_non_null(text);
        assert_non_null(strstr(text, "\"3g.40gb\": 2"));
        {
                _cleanup_(mig_file_freep) MigFile *again = parse(text);
                MigGpuPlan p;

                assert_int_equal(mig_plan_gpu(mig_file_find(again, "current"), &g, &p, error, sizeof(error)), 0);
                assert_true(p.matches);
        }
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fixtures),
                cmocka_unit_test(test_rules),
                cmocka_unit_test(test_plan),
                cmocka_unit_test(test_json_and_export),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
