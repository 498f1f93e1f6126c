/* Tests of the daemon configuration loader (src/config/) on real
 * files in a temporary directory: defaults, a full valid file, and every
 * kind of error, each checked against the exact one-line message (and so the
 * exact line, column and key). The policy section is tested for its values,
 * the group merging and config_policy_limits(); the enforcement, idle and
 * alerts sections for their values, ranges and cross-key rules, for lists of
 * values, and for never quoting a secret in a message. A private key table
 * exercises parts of the table-driven loader that gpukeeperd's own table does
 * not use: sections nested in list items, and the generic list rules. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/parse.h"
#include "config/config.h"
#include "gpukeeper/client.h"

typedef struct {
        char dir[PATH_MAX - 64];
        char file[PATH_MAX]; /* dir/gpukeeper.yaml */
} TestDir;

static int setup_dir(void **state)
{
        TestDir *t = calloc(1, sizeof *t);
        const char *tmp = getenv("TMPDIR");

        if (!t)
                return -1;
        snprintf(t->dir, sizeof t->dir, "%s/test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        snprintf(t->file, sizeof t->file, "%s/gpukeeper.yaml", t->dir);
        *state = t;
        return 0;
}

/* Remove everything the tests made: plain files, FIFOs and empty directories. */
static int teardown_dir(void **state)
{
        TestDir *t = *state;
        DIR *d = opendir(t->dir);
        struct dirent *de;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                (void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
        closedir(d);
        rmdir(t->dir);
        free(t);
        return 0;
}

static void write_bytes(const char *path, const char *data, size_t n)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
}

/* Load `yaml` through config_load(); the file is t->file. */
static int load(TestDir *t, const char *yaml, Config **ret, char **ret_error)
{
        write_bytes(t->file, yaml, strlen(yaml));
        return config_load(t->file, ret, ret_error);
}

/* Assert that `yaml` fails with -EINVAL and exactly `want` with "FILE:"
 * before each of its lines (one line per error), and that the Config
 * pointer is not touched. */
static void expect_error_bytes(TestDir *t, const char *yaml, size_t n, const char *want)
{
        Config *sentinel = (Config *)&sentinel, *c = sentinel;
        _cleanup_free_ char *err = NULL, *full = NULL;
        size_t len = 0;
        FILE *f;

        write_bytes(t->file, yaml, n);
        assert_int_equal(config_load(t->file, &c, &err), -EINVAL);
        assert_ptr_equal(c, sentinel);
        assert_non_null(err);
        f = open_memstream(&full, &len);
        assert_non_null(f);
        for (const char *p = want; p;) {
                const char *nl = strchr(p, '\n');

                fprintf(f, "%s:%.*s%s", t->file, (int)(nl ? (size_t)(nl - p) : strlen(p)), p,
                        nl ? "\n" : "");
                p = nl ? nl + 1 : NULL;
        }
        assert_int_equal(fclose(f), 0);
        assert_string_equal(err, full);
}

static void expect_error(TestDir *t, const char *yaml, const char *want)
{
        expect_error_bytes(t, yaml, strlen(yaml), want);
}

#define KNOWN                                                                                      \
        "(known keys: socket, state_dir, nvml_library, sample_interval, log_level, policy, "       \
        "enforcement, idle, alerts, env, onboarding, http, history, backend, slurm, mig, limits, sharing)"

static void assert_limits(const ConfigPolicyLimits *l, uint64_t max_gpus,
                          uint64_t default_duration_usec, uint64_t max_duration_usec)
{
        assert_int_equal(l->max_gpus, max_gpus);
        assert_int_equal(l->default_duration_usec, default_duration_usec);
        assert_int_equal(l->max_duration_usec, max_duration_usec);
}

static void assert_policy_defaults(const Config *c)
{
        assert_limits(&c->policy.limits, 0, 4 * USEC_PER_HOUR, 24 * USEC_PER_HOUR);
        assert_int_equal(c->policy.unleased_memory_limit_bytes, UINT64_C(1) << 30);
        assert_int_equal(c->policy.reconnect_grace_usec, 60 * USEC_PER_SEC);
        assert_null(c->policy.groups);
        assert_int_equal(c->policy.n_groups, 0);
}

static void assert_enforcement_idle_alerts_defaults(const Config *c)
{
        assert_int_equal(c->enforcement.mode, CONFIG_ENFORCEMENT_ENFORCE);
        assert_int_equal(c->enforcement.grace_usec, 60 * USEC_PER_SEC);
        assert_int_equal(c->enforcement.kill_timeout_usec, 10 * USEC_PER_SEC);
        assert_true(c->enforcement.root_exempt);
        assert_null(c->enforcement.exempt_users);
        assert_int_equal(c->enforcement.n_exempt_users, 0);
        assert_null(c->enforcement.exempt_executables);
        assert_int_equal(c->enforcement.n_exempt_executables, 0);

        assert_int_equal(c->idle.release_after_usec, 2 * USEC_PER_HOUR);
        assert_int_equal(c->idle.warn_before_usec, 15 * USEC_PER_MINUTE);
        assert_int_equal(c->idle.flag_after_usec, 30 * USEC_PER_MINUTE);
        assert_false(c->idle.stop_idle_runs);

        assert_int_equal(c->alerts.repeat_after_usec, USEC_PER_HOUR);
        assert_true(c->alerts.memory_fraction == 0.9);
        assert_int_equal(c->alerts.memory_for_usec, USEC_PER_MINUTE);
        assert_int_equal(c->alerts.temperature_c, 85);
        assert_int_equal(c->alerts.temperature_for_usec, USEC_PER_MINUTE);
        assert_null(c->alerts.sinks);
        assert_int_equal(c->alerts.n_sinks, 0);
}

static void assert_env_defaults(const Config *c, const char *backup_dir)
{
        assert_int_equal(c->env.backup_interval_usec, USEC_PER_DAY);
        assert_int_equal(c->env.backup_keep, 14);
        assert_string_equal(c->env.backup_dir, backup_dir);
        assert_string_equal(c->env.conda_exe, "conda");
        assert_string_equal(c->env.templates_dir, "/etc/gpukeeper/templates");
}

static void assert_onboarding_defaults(const Config *c)
{
        _cleanup_free_ char *dir = NULL;

        assert_null(c->onboarding.welcome);
        assert_string_equal(c->onboarding.shell, "/bin/bash");
        assert_int_equal(c->onboarding.kernel_gpus, 1);
        assert_null(c->onboarding.backup_dir);
        assert_int_equal(config_onboarding_backup_dir(&c->onboarding, c->state_dir, &dir), 0);
        assert_string_equal(dir, "/var/lib/gpukeeper/backups/users");
}

static void assert_defaults(const Config *c)
{
        assert_string_equal(c->socket_path, "/run/gpukeeper/gpukeeper.sock");
        assert_string_equal(c->state_dir, "/var/lib/gpukeeper");
        assert_string_equal(c->nvml_library, "libnvidia-ml.so.1");
        assert_int_equal(c->sample_interval_usec, 2 * USEC_PER_SEC);
        assert_int_equal(c->log_level, LOG_LEVEL_INFO);
        assert_policy_defaults(c);
        assert_enforcement_idle_alerts_defaults(c);
        assert_env_defaults(c, "/var/lib/gpukeeper/env-backups");
        assert_onboarding_defaults(c);
}

static void test_defaults(void **state)
{
        _cleanup_(config_freep) Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_null(c->path);
        assert_defaults(c);
        assert_string_equal(CONFIG_DEFAULT_SOCKET, GK_DEFAULT_SOCKET);
        config_free(NULL);
}

static void test_full_file(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(load(t,
                              "# gpukeeperd configuration\n"
                              "socket: /run/gk/test.sock   # trailing comment\n"
                              "state_dir: '/srv/gpu keeper/state'\n"
                              "nvml_library: \"/opt/sim/libnvml-sim.so\"\n"
                              "sample_interval: 1m30s\n"
                              "log_level: debug\n",
                              &c, &err),
                         0);
        assert_null(err);
        assert_string_equal(c->path, t->file);
        assert_string_equal(c->socket_path, "/run/gk/test.sock");
        assert_string_equal(c->state_dir, "/srv/gpu keeper/state");
        assert_string_equal(c->nvml_library, "/opt/sim/libnvml-sim.so");
        assert_int_equal(c->sample_interval_usec, 90 * USEC_PER_SEC);
        assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
}

/* The example shipped in packaging/ must load and equal the defaults; its
 * commented-out policy.groups example (the lines starting "  #  ") must load
 * once the '#' of those lines is deleted, as the file tells the reader. */
static void test_packaged_example(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL, *uncommented = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0, len = 0;
        FILE *out;
        char *line = NULL;
        int examples = 0;

        assert_int_equal(config_load(GK_SOURCE_ROOT "/packaging/gpukeeper.yaml", &c, &err), 0);
        assert_null(err);
        assert_defaults(c);
        config_free(TAKE_PTR(c));

        f = fopen(GK_SOURCE_ROOT "/packaging/gpukeeper.yaml", "re");
        assert_non_null(f);
        out = open_memstream(&uncommented, &len);
        assert_non_null(out);
        while (getline(&line, &n, f) > 0) {
                if (strncmp(line, "  #  ", 5) == 0) {
                        fprintf(out, "    %s", line + 5);
                        examples++;
                } else
                        fputs(line, out);
        }
        free(line);
        assert_int_equal(fclose(out), 0);
        assert_true(examples > 0);

        assert_int_equal(load(t, uncommented, &c, &err), 0);
        assert_int_equal(c->policy.n_groups, 2);
        assert_string_equal(c->policy.groups[0].group, "students");
        assert_limits(&c->policy.groups[0].limits, 1, 2 * USEC_PER_HOUR, 8 * USEC_PER_HOUR);
        assert_string_equal(c->policy.groups[1].group, "staff");
        assert_limits(&c->policy.groups[1].limits, 0, 4 * USEC_PER_HOUR, 7 * USEC_PER_DAY);

        /* The example sinks. */
        assert_int_equal(c->alerts.n_sinks, 3);
        assert_string_equal(c->alerts.sinks[0].name, "ops");
        assert_int_equal(c->alerts.sinks[0].type, CONFIG_SINK_WEBHOOK);
        assert_int_equal(c->alerts.sinks[0].events,
                         1u << CONFIG_ALERT_VIOLATION | 1u << CONFIG_ALERT_PROCESS_STOPPED |
                                 1u << CONFIG_ALERT_GPU_LOST | 1u << CONFIG_ALERT_XID);
        assert_string_equal(c->alerts.sinks[1].name, "lab-chat");
        assert_int_equal(c->alerts.sinks[1].type, CONFIG_SINK_DINGTALK);
        assert_string_equal(c->alerts.sinks[1].secret, "SECRET");
        assert_int_equal(c->alerts.sinks[1].events, CONFIG_ALERT_EVENTS_ALL);
        assert_string_equal(c->alerts.sinks[2].name, "mail");
        assert_int_equal(c->alerts.sinks[2].type, CONFIG_SINK_EMAIL);
        assert_true(c->alerts.sinks[2].starttls);
        assert_int_equal(c->alerts.sinks[2].n_to, 1);
        assert_string_equal(c->alerts.sinks[2].to[0], "gpu-admins@example.org");
}

static void test_flow_style_and_other_values(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;

        assert_int_equal(load(t,
                              "{socket: /a.sock, nvml_library: libnvml-sim.so,"
                              " log_level: ERROR}",
                              &c, NULL),
                         0);
        assert_string_equal(c->socket_path, "/a.sock");
        assert_string_equal(c->nvml_library, "libnvml-sim.so");
        assert_int_equal(c->log_level, LOG_LEVEL_ERROR);
        assert_string_equal(c->state_dir, "/var/lib/gpukeeper");
}

static void test_empty_files(void **state)
{
        static const char *const empties[] = {
                "", "\n\n", "# only a comment\n# and another\n", "---\n", "--- ~\n", "---\n...\n",
                "\xef\xbb\xbf", /* a UTF-8 byte order mark */
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(empties); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                assert_int_equal(load(t, empties[i], &c, &err), 0);
                assert_null(err);
                assert_string_equal(c->path, t->file);
                assert_defaults(c);
        }
}

static void test_missing_file(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;
        _cleanup_free_ char *err = NULL, *want = NULL, *path = NULL;

        assert_true(asprintf(&path, "%s/does-not-exist.yaml", t->dir) > 0);
        assert_int_equal(config_load(path, &c, &err), -ENOENT);
        assert_null(c);
        assert_true(asprintf(&want, "%s: No such file or directory", path) > 0);
        assert_string_equal(err, want);

        /* The message is optional. */
        assert_int_equal(config_load(path, &c, NULL), -ENOENT);
}

static void test_not_regular_file(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;
        _cleanup_free_ char *err = NULL, *want = NULL, *fifo = NULL;

        assert_int_equal(config_load(t->dir, &c, &err), -EINVAL);
        assert_true(asprintf(&want, "%s: not a regular file", t->dir) > 0);
        assert_string_equal(err, want);
        free(err);
        free(want);

        /* A FIFO without a writer must not block the loader. */
        assert_true(asprintf(&fifo, "%s/fifo", t->dir) > 0);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(config_load(fifo, &c, &err), -EINVAL);
        assert_true(asprintf(&want, "%s: not a regular file", fifo) > 0);
        assert_string_equal(err, want);
        assert_null(c);

        assert_int_equal(config_load("/dev/null", &c, NULL), -EINVAL);
}

static void test_size_limit(void **state)
{
        TestDir *t = *state;
        _cleanup_free_ char *big = malloc(CONFIG_FILE_MAX + 1), *err = NULL, *want = NULL;
        _cleanup_(config_freep) Config *c = NULL;

        assert_non_null(big);
        /* Exactly at the limit: a valid key, then comment lines. */
        memset(big, '#', CONFIG_FILE_MAX + 1);
        memcpy(big, "log_level: debug\n", 17);
        for (size_t i = 100; i < CONFIG_FILE_MAX; i += 100)
                big[i] = '\n';
        write_bytes(t->file, big, CONFIG_FILE_MAX);
        assert_int_equal(config_load(t->file, &c, &err), 0);
        assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);

        /* One byte more. */
        write_bytes(t->file, big, CONFIG_FILE_MAX + 1);
        config_free(TAKE_PTR(c));
        assert_int_equal(config_load(t->file, &c, &err), -EINVAL);
        assert_null(c);
        assert_true(asprintf(&want, "%s: file is too large (the limit is 1048576 bytes)",
                             t->file) > 0);
        assert_string_equal(err, want);
}

static void test_nul_bytes(void **state)
{
        static const char raw[] = "socket: /a\nstate\0_dir: /b\n";
        TestDir *t = *state;

        expect_error_bytes(t, raw, sizeof raw - 1, "2:6: the file contains a NUL byte");
        /* An escaped NUL inside a double-quoted string. */
        expect_error(t, "log_level: info\nsocket: \"/a\\0b\"\n",
                     "2:9: value of 'socket' contains a NUL character");
        expect_error(t, "\"sock\\0et\": /a\n", "1:1: unknown key 'sock\\x00et' " KNOWN);
}

static void test_unknown_keys(void **state)
{
        TestDir *t = *state;

        expect_error(t, "socket: /a\nfoo: 1\n", "2:1: unknown key 'foo' " KNOWN);
        expect_error(t, "log_level: info\n\n\n   # comment\nSocket: /a\n",
                     "5:1: unknown key 'Socket' " KNOWN);
        expect_error(t, "sample-interval: 2s\n", "1:1: unknown key 'sample-interval' " KNOWN);
        expect_error(t, "{log_level: info, bogus: 1}", "1:19: unknown key 'bogus' " KNOWN);
        expect_error(t, "\"a\\tb\": 1\n", "1:1: unknown key 'a\\x09b' " KNOWN);
        expect_error(t, "<<: {}\n", "1:1: unknown key '<<' " KNOWN);
        expect_error(t, "\"\": 1\n", "1:1: unknown key '' " KNOWN);
        /* Long names are cut to 16 bytes in the message. */
        expect_error(t,
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1\n",
                     "1:1: unknown key 'xxxxxxxxxxxxxxxx...' " KNOWN);
        /* Not a config at all (a symlink to /etc/shadow): the first line is
         * not copied into the message, only its first word. */
        expect_error(t, "root:$y$j9T$Q2hmUkZ5c2VjcmV0:20228:0:99999:7:::\n",
                     "1:1: unknown key 'root...' " KNOWN);
        expect_error(t, "a b c d: 1\n", "1:1: unknown key 'a...' " KNOWN);
        /* Complex keys. */
        expect_error(t, "? [a, b]\n: 1\n", "1:3: keys must be plain names, not a list");
        expect_error(t, "? {a: b}\n: 1\n", "1:3: keys must be plain names, not a mapping");
}

/* A UTF-8 byte-order mark at the start is accepted, and positions count
 * from after it. */
static void test_bom(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(load(t, "\xef\xbb\xbfsample_interval: 7s\n", &c, &err), 0);
        assert_int_equal(c->sample_interval_usec, 7 * USEC_PER_SEC);
        config_free(c);
        expect_error(t, "\xef\xbb\xbf" "bogus: 1\n", "1:1: unknown key 'bogus' " KNOWN);
        /* Only at the start: libyaml refuses one anywhere else. */
        expect_error(t, "log_level: info\n\xef\xbb\xbf" "x: 1\n",
                     "2:2: invalid YAML: did not find expected key (while parsing a block "
                     "mapping)");
}

static void test_history_section(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_int_equal(c->history.raw_hours, 48);
        assert_int_equal(c->history.days, 90);
        assert_int_equal(c->history.audit_days, 365);
        config_free(c);

        assert_int_equal(load(t, "history:\n  raw_hours: 720\n  days: 1\n", &c, NULL), 0);
        assert_int_equal(c->history.raw_hours, 720);
        assert_int_equal(c->history.days, 1);
        config_free(c);

        expect_error(t, "history:\n  raw_hours: 0\n",
                     "2:14: invalid value '0' for 'history.raw_hours': must be between 1 and 720");
        expect_error(t, "history:\n  audit_days: 0\n",
                     "2:15: invalid value '0' for 'history.audit_days': must be between 1 and "
                     "3650");
        assert_int_equal(load(t, "history:\n  audit_days: 30\n", &c, NULL), 0);
        assert_int_equal(c->history.audit_days, 30);
        config_free(c);
        expect_error(t, "history:\n  days: 3651\n",
                     "2:9: invalid value '3651' for 'history.days': must be between 1 and 3650");
        expect_error(t, "history:\n  weeks: 3\n",
                     "2:3: unknown key 'history.weeks' (known keys in 'history': raw_hours, days, audit_days)");
}

static void test_slurm_section(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_int_equal(c->backend, CONFIG_BACKEND_LOCAL);
        assert_false(c->slurm.all_gpus);
        assert_int_equal(c->slurm.gpu_mask, 0);
        assert_false(config_slurm_owns(&c->slurm, 0));
        assert_int_equal(c->slurm.reconcile_interval_usec, 30 * USEC_PER_SEC);
        assert_string_equal(c->slurm.squeue, "/usr/bin/squeue");
        assert_null(c->slurm.job_mapping_dir);
        config_free(c);

        assert_int_equal(load(t, "backend: slurm\nslurm:\n  gpus: 0,2-3\n"
                                 "  reconcile_interval: 5s\n  squeue: /opt/slurm/bin/squeue\n"
                                 "  job_mapping_dir: /run/gpukeeper/jobs\n", &c, NULL), 0);
        assert_int_equal(c->backend, CONFIG_BACKEND_SLURM);
        assert_int_equal(c->slurm.gpu_mask, 0xDu);
        assert_true(config_slurm_owns(&c->slurm, 2));
        assert_false(config_slurm_owns(&c->slurm, 1));
        assert_false(config_slurm_owns(&c->slurm, 64));
        assert_int_equal(c->slurm.reconcile_interval_usec, 5 * USEC_PER_SEC);
        assert_string_equal(c->slurm.squeue, "/opt/slurm/bin/squeue");
        assert_string_equal(c->slurm.job_mapping_dir, "/run/gpukeeper/jobs");
        config_free(c);

        assert_int_equal(load(t, "slurm:\n  gpus: all\n", &c, NULL), 0);
        assert_true(config_slurm_owns(&c->slurm, 63) && config_slurm_owns(&c->slurm, 200));
        config_free(c);

        expect_error(t, "backend: pbs\n",
                     "1:10: invalid value 'pbs' for 'backend': must be local or slurm");
        expect_error(t, "slurm:\n  gpus: 64\n",
                     "2:9: invalid value '64' for 'slurm.gpus': must be all, none, or NVML "
                     "indices below 64 such as 0,1 or 0-3");
        expect_error(t, "slurm:\n  gpus: 3-1\n",
                     "2:9: invalid value '3-1' for 'slurm.gpus': must be all, none, or NVML "
                     "indices below 64 such as 0,1 or 0-3");
        expect_error(t, "slurm:\n  squeue: squeue\n",
                     "2:11: invalid value 'squeue' for 'slurm.squeue': must be an absolute path (starting with '/')");
        expect_error(t, "slurm:\n  reconcile_interval: 0s\n",
                     "2:23: invalid value '0s' for 'slurm.reconcile_interval': must be between "
                     "1s and 1h");
}

/* The mig section (src/config/mig.c): per-GPU opt-in by UUID or "all". */
static void test_mig_section(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_int_equal(c->mig.n_dynamic, 0);
        assert_true(c->mig.reassert);
        assert_false(c->mig.keep_dynamic);
        assert_false(config_mig_dynamic(&c->mig, "GPU-0a1b"));
        config_free(c);

        assert_int_equal(load(t, "mig:\n  dynamic: [GPU-0a1b-22, all]\n  keep_dynamic: true\n"
                                 "  reassert: false\n", &c, NULL), 0);
        assert_int_equal(c->mig.n_dynamic, 2);
        assert_true(config_mig_dynamic(&c->mig, "GPU-ffff"));
        assert_true(c->mig.keep_dynamic);
        assert_false(c->mig.reassert);
        config_free(c);
        assert_int_equal(load(t, "mig:\n  dynamic: [GPU-0a1b-22]\n", &c, NULL), 0);
        assert_true(config_mig_dynamic(&c->mig, "GPU-0A1B-22"));
        assert_false(config_mig_dynamic(&c->mig, "GPU-0a1b-23"));
        config_free(c);

        expect_error(t, "mig:\n  dynamic: [0]\n",
                     "2:13: invalid value '0' for 'mig.dynamic[0]': must be \"all\" or a GPU UUID (GPU-…)");
        expect_error(t, "mig:\n  dynamc: []\n",
                     "2:3: unknown key 'mig.dynamc' (known keys in 'mig': dynamic, keep_dynamic, reassert)");
}

/* The onboarding section (src/config/onboarding.c): gpukeeper user add/remove. */
static void test_onboarding_section(void **state)
{
        TestDir *t = *state;
        _cleanup_free_ char *dir = NULL;
        Config *c = NULL;

        assert_int_equal(load(t, "state_dir: /srv/gk/\n"
                                 "onboarding:\n  welcome: /etc/gpukeeper/welcome.txt\n"
                                 "  shell: /usr/bin/zsh\n  kernel_gpus: 2\n", &c, NULL), 0);
        assert_string_equal(c->onboarding.welcome, "/etc/gpukeeper/welcome.txt");
        assert_string_equal(c->onboarding.shell, "/usr/bin/zsh");
        assert_int_equal(c->onboarding.kernel_gpus, 2);
        /* backup_dir follows state_dir, without a doubled '/'. */
        assert_int_equal(config_onboarding_backup_dir(&c->onboarding, c->state_dir, &dir), 0);
        assert_string_equal(dir, "/srv/gk/backups/users");
        free(TAKE_PTR(dir));
        config_free(c);
        assert_int_equal(load(t, "onboarding:\n  backup_dir: /backup/people\n", &c, NULL), 0);
        assert_int_equal(config_onboarding_backup_dir(&c->onboarding, c->state_dir, &dir), 0);
        assert_string_equal(dir, "/backup/people");
        config_free(c);

        expect_error(t, "onboarding:\n  welcome: welcome.txt\n",
                     "2:12: invalid value 'welcome.txt' for 'onboarding.welcome': must be an "
                     "absolute path (starting with '/')");
        expect_error(t, "onboarding:\n  kernel_gpus: 0\n",
                     "2:16: invalid value '0' for 'onboarding.kernel_gpus': must be between 1 "
                     "and 64");
        expect_error(t, "onboarding:\n  shel: /bin/sh\n",
                     "2:3: unknown key 'onboarding.shel' (known keys in 'onboarding': welcome, "
                     "shell, kernel_gpus, backup_dir)");
}

static void test_limits_section(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;
        const uint64_t G = UINT64_C(1) << 30;
        char buf[32];

        assert_int_equal(config_new_defaults(&c), 0);
        assert_false(c->limits.enabled);
        assert_int_equal(c->limits.backend, CONFIG_LIMITS_AUTO);
        assert_string_equal(c->limits.cgroupfs_parent, "gpukeeper.slice");
        assert_int_equal(c->limits.rules.n_groups, 0);
        config_free(c);

        /* The issue's example, flow style, and block style with infinity. */
        assert_int_equal(load(t, "limits:\n"
                                 "  default:  { cpu: 400%, memory: 64G, tasks: 4096 }\n"
                                 "  groups:   { phd: { cpu: 800%, memory: 128G } }\n"
                                 "  per_gpu:  { cpu: 800%, memory: 120G }\n", &c, NULL), 0);
        assert_true(c->limits.enabled);
        assert_int_equal(c->limits.rules.defaults.cpu_percent, 400);
        assert_int_equal(c->limits.rules.defaults.memory_bytes, 64 * G);
        assert_int_equal(c->limits.rules.defaults.tasks, 4096);
        assert_int_equal(c->limits.rules.n_groups, 1);
        assert_string_equal(c->limits.rules.groups[0].group, "phd");
        assert_int_equal(c->limits.rules.groups[0].values.cpu_percent, 800);
        assert_int_equal(c->limits.rules.groups[0].values.memory_bytes, 128 * G);
        assert_int_equal(c->limits.rules.groups[0].values.tasks, POLICY_LIMIT_UNSET);
        assert_int_equal(c->limits.rules.per_gpu.cpu_percent, 800);
        assert_int_equal(c->limits.rules.per_gpu.memory_bytes, 120 * G);
        assert_int_equal(c->limits.rules.per_gpu.tasks, POLICY_LIMIT_UNSET);
        config_free(c);

        assert_int_equal(load(t, "limits:\n"
                                 "  backend: cgroupfs\n"
                                 "  cgroupfs_parent: lab/gpukeeper.slice\n"
                                 "  groups:\n"
                                 "    staff:\n"
                                 "      memory: infinity\n"
                                 "    phd:\n"
                                 "    admins: {tasks: 10}\n", &c, NULL), 0);
        assert_true(c->limits.enabled);
        assert_int_equal(c->limits.backend, CONFIG_LIMITS_CGROUPFS);
        assert_string_equal(c->limits.cgroupfs_parent, "lab/gpukeeper.slice");
        assert_int_equal(c->limits.rules.n_groups, 3);
        assert_true(c->limits.rules.groups[0].values.memory_bytes == POLICY_LIMIT_INFINITY);
        assert_string_equal(c->limits.rules.groups[1].group, "phd");
        assert_int_equal(c->limits.rules.groups[2].values.tasks, 10);
        config_free(c);

        /* An empty section still enables limits (every value: no limit). */
        assert_int_equal(load(t, "limits:\n", &c, NULL), 0);
        assert_true(c->limits.enabled);
        config_free(c);

        /* Errors name file:line:column and the key. */
        expect_error(t, "limits:\n  groups:\n    phd:\n      memory: 12Q\n",
                     "4:15: invalid value '12Q' for 'limits.groups.phd.memory': must be a size "
                     "from 1M to 1E (512M, 64G), or infinity");
        expect_error(t, "limits:\n  default:\n    cpu: 400\n",
                     "3:10: invalid value '400' for 'limits.default.cpu': must be a percentage "
                     "of one CPU from 1% to 100000% (400% = four CPUs), or infinity");
        expect_error(t, "limits:\n  default: {tasks: 0}\n",
                     "2:20: invalid value '0' for 'limits.default.tasks': must be a number of "
                     "processes and threads from 1 to 4194304, or infinity");
        expect_error(t, "limits:\n  per_gpu: {cpu: infinity}\n",
                     "2:18: 'limits.per_gpu.cpu' must be a number: infinity per GPU would lift "
                     "the limit for anyone holding a GPU (write infinity in default or a group "
                     "instead)");
        expect_error(t, "limits:\n  groups:\n    phd: {cpu: 100%}\n    phd: {cpu: 200%}\n",
                     "4:5: duplicate entry 'limits.groups.phd'");
        expect_error(t, "limits:\n  groups:\n    phd: {cpus: 100%}\n",
                     "3:11: unknown key 'limits.groups.phd.cpus' (known keys in "
                     "'limits.groups.phd': cpu, memory, tasks)");
        expect_error(t, "limits:\n  groups:\n    'Bad Name': {cpu: 100%}\n",
                     "3:5: invalid name in 'limits.groups.Bad Name': must be a group name: a "
                     "lower-case letter or '_', then lower-case letters, digits, '_' or '-', "
                     "at most 256 characters");
        expect_error(t, "limits:\n  groups: [phd]\n",
                     "2:11: 'limits.groups' must be a mapping of names to sections, not a list");
        expect_error(t, "limits:\n  backend: docker\n",
                     "2:12: invalid value 'docker' for 'limits.backend': must be one of auto, "
                     "systemd, cgroupfs");
        expect_error(t, "limits:\n  cgroupfs_parent: ../escape\n",
                     "2:20: invalid value '../escape' for 'limits.cgroupfs_parent': must not "
                     "contain '.' or '..'");
        expect_error(t, "limits:\n  cgroupfs_parent: /sys/fs/cgroup\n",
                     "2:20: invalid value '/sys/fs/cgroup' for 'limits.cgroupfs_parent': must "
                     "be a relative path below each cgroup hierarchy's root (gpukeeper.slice), "
                     "without leading, trailing or double '/'");

        config_limits_format(POLICY_LIMIT_CPU, 400, buf, sizeof buf);
        assert_string_equal(buf, "400%");
        config_limits_format(POLICY_LIMIT_MEMORY, 64 * G, buf, sizeof buf);
        assert_string_equal(buf, "64G");
        config_limits_format(POLICY_LIMIT_MEMORY, 1536 * (UINT64_C(1) << 20), buf, sizeof buf);
        assert_string_equal(buf, "1536M");
        config_limits_format(POLICY_LIMIT_MEMORY, 1000, buf, sizeof buf);
        assert_string_equal(buf, "1000");
        config_limits_format(POLICY_LIMIT_TASKS, POLICY_LIMIT_INFINITY, buf, sizeof buf);
        assert_string_equal(buf, "infinity");
        config_limits_format(POLICY_LIMIT_TASKS, POLICY_LIMIT_UNSET, buf, sizeof buf);
        assert_string_equal(buf, "-");
}

/* The sharing section (src/config/sharing.c): GPUs by index, UUID or
 * model; reserve and grace; errors name file:line:key. */
static void test_sharing_section(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_int_equal(c->sharing.n_gpus, 0);
        assert_int_equal(c->sharing.reserve_bytes, UINT64_C(1) << 30);
        assert_int_equal(c->sharing.grace_usec, 10 * USEC_PER_SEC);
        assert_false(config_sharing_gpu(&c->sharing, 0, "GPU-0a1b", "NVIDIA L40S"));
        config_free(c);

        assert_int_equal(load(t, "sharing:\n  gpus: [1, GPU-0a1b-22]\n  models: [\"nvidia l40s\"]\n"
                                 "  reserve: 2G\n  grace: 3s\n", &c, NULL), 0);
        assert_int_equal(c->sharing.n_gpus, 2);
        assert_int_equal(c->sharing.reserve_bytes, UINT64_C(2) << 30);
        assert_int_equal(c->sharing.grace_usec, 3 * USEC_PER_SEC);
        assert_true(config_sharing_gpu(&c->sharing, 1, "GPU-ffff", "NVIDIA A100"));
        assert_true(config_sharing_gpu(&c->sharing, 5, "GPU-0A1B-22", NULL));
        assert_true(config_sharing_gpu(&c->sharing, 7, "GPU-9", "NVIDIA L40S"));
        assert_false(config_sharing_gpu(&c->sharing, 0, "GPU-9", "NVIDIA A100-SXM4-80GB"));
        assert_false(config_sharing_gpu(&c->sharing, 10, NULL, NULL));
        config_free(c);
        assert_int_equal(load(t, "sharing:\n  gpus: [all]\n", &c, NULL), 0);
        assert_true(config_sharing_gpu(&c->sharing, 3, "", ""));
        config_free(c);

        expect_error(t, "sharing:\n  gpus: [MIG-1]\n",
                     "2:10: invalid value 'MIG-1' for 'sharing.gpus[0]': must be \"all\", an NVML "
                     "index (0, 1, ...) or a GPU UUID (GPU-…)");
        expect_error(t, "sharing:\n  reserve: lots\n",
                     "2:12: invalid value 'lots' for 'sharing.reserve': not a size (write bytes or a "
                     "number with K, M, G, T, P or E: 512M, 10G)");
        expect_error(t, "sharing:\n  grace: 2h\n",
                     "2:10: invalid value '2h' for 'sharing.grace': must be between 0s and 1h");
        expect_error(t, "sharing:\n  gpu: [0]\n",
                     "2:3: unknown key 'sharing.gpu' (known keys in 'sharing': gpus, models, "
                     "reserve, grace)");
}

static void test_duplicate_keys(void **state)
{
        TestDir *t = *state;

        expect_error(t, "log_level: info\nsocket: /a\nlog_level: debug\n",
                     "3:1: duplicate key 'log_level' (first given on line 1)");
        expect_error(t, "socket: /a\nsocket: /a\n",
                     "2:1: duplicate key 'socket' (first given on line 1)");
        expect_error(t, "{socket: /a, state_dir: /b, \"socket\": /c}",
                     "1:29: duplicate key 'socket' (first given on line 1)");
}

static void test_wrong_types(void **state)
{
        TestDir *t = *state;

        expect_error(t, "socket:\n  - /a\n", "2:3: 'socket' must be a single value, not a list");
        expect_error(t, "state_dir: [/a]\n",
                     "1:12: 'state_dir' must be a single value, not a list");
        expect_error(t, "log_level: info\nsample_interval: {seconds: 2}\n",
                     "2:18: 'sample_interval' must be a single value, not a mapping");
        expect_error(t, "log_level:\n  level: debug\n",
                     "2:3: 'log_level' must be a single value, not a mapping");
}

static void test_null_values(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;

        expect_error(t, "socket:\n", "1:8: value required for 'socket'");
        expect_error(t, "log_level: info\nstate_dir:   # later\nsocket: /a\n",
                     "2:11: value required for 'state_dir'");
        expect_error(t, "sample_interval: ~\n", "1:18: value required for 'sample_interval'");
        expect_error(t, "log_level: null\n", "1:12: value required for 'log_level'");
        expect_error(t, "log_level: NULL\n", "1:12: value required for 'log_level'");
        /* Quoted, "null" is a string (here: an invalid log level). */
        expect_error(t, "log_level: \"null\"\n",
                     "1:12: invalid value 'null' for 'log_level': must be one of error, "
                     "warning, info, debug");
        /* A quoted empty string is a value, but not a valid path. */
        expect_error(t, "state_dir: ''\n",
                     "1:12: invalid value '' for 'state_dir': must not be empty");
        /* Null as the whole document is an empty file. */
        assert_int_equal(load(t, "~\n", &c, NULL), 0);
        assert_defaults(c);
}

static void test_invalid_values(void **state)
{
        TestDir *t = *state;
        char long_socket[160];

        expect_error(t, "state_dir: var/lib/gpukeeper\n",
                     "1:12: invalid value 'var/lib/gpukeeper' for 'state_dir': must be an "
                     "absolute path (starting with '/')");
        expect_error(t, "socket: gpukeeper.sock\n",
                     "1:9: invalid value 'gpukeeper.sock' for 'socket': must be an absolute "
                     "path (starting with '/')");
        expect_error(t, "state_dir: \"/var/lib/\\tgk\"\n",
                     "1:12: invalid value '/var/lib/\\x09gk' for 'state_dir': must not contain "
                     "control characters");
        expect_error(t, "nvml_library: lib/libnvidia-ml.so.1\n",
                     "1:15: invalid value 'lib/libnvidia-ml.so.1' for 'nvml_library': must be "
                     "a library file name (found the way dlopen() searches) or an absolute path");
        expect_error(t, "nvml_library: ./libnvml.so\n",
                     "1:15: invalid value './libnvml.so' for 'nvml_library': must be a library "
                     "file name (found the way dlopen() searches) or an absolute path");
        expect_error(t, "nvml_library: \"\"\n",
                     "1:15: invalid value '' for 'nvml_library': must not be empty");
        expect_error(t, "log_level: verbose\n",
                     "1:12: invalid value 'verbose' for 'log_level': must be one of error, "
                     "warning, info, debug");
        expect_error(t, "log_level: 7\n",
                     "1:12: invalid value '7' for 'log_level': must be one of error, warning, "
                     "info, debug");

        /* sun_path holds 108 bytes including the NUL. */
        memset(long_socket, 0, sizeof long_socket);
        memcpy(long_socket, "socket: /", 9);
        memset(long_socket + 9, 's', 106);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, long_socket, &c, NULL), 0);
                assert_int_equal(strlen(c->socket_path), 107);
        }
        long_socket[9 + 106] = 's';
        /* The value is quoted back cut to 64 bytes. */
        expect_error(t, long_socket,
                     "1:9: invalid value "
                     "'/sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss...' for "
                     "'socket': is too long (at most 107 bytes)");
}

static void test_durations(void **state)
{
        static const struct {
                const char *value;
                uint64_t usec;
        } good[] = {
                {"100ms", 100 * USEC_PER_MSEC}, {"2s", 2 * USEC_PER_SEC},
                {"1s500ms", 1500 * USEC_PER_MSEC}, {"5m", 5 * USEC_PER_MINUTE},
                {"59m59s", USEC_PER_HOUR - USEC_PER_SEC}, {"1h", USEC_PER_HOUR},
                {"60m", USEC_PER_HOUR}, {"\"30s\"", 30 * USEC_PER_SEC},
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *yaml = NULL;

                assert_true(asprintf(&yaml, "sample_interval: %s\n", good[i].value) > 0);
                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_int_equal(c->sample_interval_usec, good[i].usec);
        }

        expect_error(t, "sample_interval: 30\n",
                     "1:18: invalid value '30' for 'sample_interval': a unit is required (for "
                     "example 30s, 5m or 2h)");
        expect_error(t, "sample_interval: 2 s\n",
                     "1:18: invalid value '2 s' for 'sample_interval': not a duration (write a "
                     "number and a unit, d h m s ms us, largest first: 30s, 5m, 1h30m)");
        expect_error(t, "sample_interval: 30m1h\n",
                     "1:18: invalid value '30m1h' for 'sample_interval': not a duration (write "
                     "a number and a unit, d h m s ms us, largest first: 30s, 5m, 1h30m)");
        expect_error(t, "sample_interval: -2s\n",
                     "1:18: invalid value '-2s' for 'sample_interval': not a duration (write a "
                     "number and a unit, d h m s ms us, largest first: 30s, 5m, 1h30m)");
        expect_error(t, "sample_interval: 99ms\n",
                     "1:18: invalid value '99ms' for 'sample_interval': must be between 100ms "
                     "and 1h");
        expect_error(t, "sample_interval: 0s\n",
                     "1:18: invalid value '0s' for 'sample_interval': must be between 100ms "
                     "and 1h");
        expect_error(t, "sample_interval: 1h1us\n",
                     "1:18: invalid value '1h1us' for 'sample_interval': must be between 100ms "
                     "and 1h");
        expect_error(t, "sample_interval: 1d\n",
                     "1:18: invalid value '1d' for 'sample_interval': must be between 100ms "
                     "and 1h");
        expect_error(t, "sample_interval: 99999999999999999999s\n",
                     "1:18: invalid value '99999999999999999999s' for 'sample_interval': too "
                     "large");
}

static void test_yaml_syntax_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "{log_level: info,\nsocket: /a\n",
                     "3:1: invalid YAML: did not find expected ',' or '}' (while parsing a flow "
                     "mapping)");
        expect_error(t, "socket: /a: b\n",
                     "1:11: invalid YAML: mapping values are not allowed in this context");
        expect_error(t, "log_level: info\n\tsocket: /a\n",
                     "2:1: invalid YAML: found a tab character that violates indentation "
                     "(while scanning a plain scalar)");
        expect_error(t, "socket: \"/a\n",
                     "2:1: invalid YAML: found unexpected end of stream (while scanning a "
                     "quoted scalar)");
        /* Mis-indented: "/a socket" would be a valid path, then comes a ':'. */
        expect_error(t, "state_dir: /a\n  socket: /b\n",
                     "2:9: invalid YAML: mapping values are not allowed in this context");
        /* Not UTF-8: libyaml gives only a byte offset, turned into a position. */
        expect_error(t, "log_level: info\nsocket: /\xff\n",
                     "2:10: invalid YAML: invalid leading UTF-8 octet");
        expect_error(t, "log_level: info\nsocket: /\x01\n",
                     "2:10: invalid YAML: control characters are not allowed");
}

static void test_top_level_not_mapping(void **state)
{
        TestDir *t = *state;

        expect_error(t, "- socket\n- /a\n",
                     "1:1: the top level must be a mapping of keys, not a list");
        expect_error(t, "# comment\nsocket /a\n",
                     "2:1: the top level must be a mapping of keys, not a single value");
        expect_error(t, "[]\n", "1:1: the top level must be a mapping of keys, not a list");
}

static void test_multiple_documents(void **state)
{
        TestDir *t = *state;

        expect_error(t, "socket: /a\n---\nsocket: /b\n",
                     "2:1: more than one YAML document; the file must hold exactly one");
        expect_error(t, "---\nsocket: /a\n...\n---\n",
                     "4:1: more than one YAML document; the file must hold exactly one");
}

static void test_anchors_aliases_tags(void **state)
{
        TestDir *t = *state;

        expect_error(t, "socket: &s /a\nstate_dir: *s\n",
                     "1:9: 'socket': anchors (&s) are not allowed");
        expect_error(t, "log_level: info\nstate_dir: *s\n",
                     "2:12: 'state_dir': aliases (*s) are not allowed");
        expect_error(t, "&top\nsocket: /a\n", "1:1: anchors (&top) are not allowed");
        expect_error(t, "&k socket: /a\n", "1:1: anchors (&k) are not allowed");
        /* Billion laughs is stopped at the first anchor. */
        expect_error(t,
                     "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                     "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
                     "1:1: unknown key 'a' " KNOWN "\n1:4: anchors (&a) are not allowed");
        expect_error(t,
                     "log_level: &a [\"lol\",\"lol\",\"lol\"]\n"
                     "socket: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n",
                     "1:12: 'log_level': anchors (&a) are not allowed");
        expect_error(t, "socket: !!str /a\n",
                     "1:9: 'socket': tags (tag:yaml.org,2002:str) are not allowed");
        expect_error(t, "--- !config\nsocket: /a\n", "1:5: tags (!config) are not allowed");
}

static void test_error_optional(void **state)
{
        TestDir *t = *state;
        Config *c = NULL;

        assert_int_equal(load(t, "foo: 1\n", &c, NULL), -EINVAL);
        assert_null(c);
}

/* ---- The policy section ------------------------------------------------- */

#define GROUP_KNOWN "group, max_gpus, default_duration, max_duration"
#define GROUP_NAME_RULE                                                                            \
        "must be a group name: a lower-case letter or '_', then lower-case letters, digits, '_' " \
        "or '-', at most 256 characters"

static void test_policy_full(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        const ConfigPolicyGroup *g;

        /* The groups come first: they inherit policy-level keys written after them. */
        assert_int_equal(load(t,
                              "policy:\n"
                              "  groups:\n"
                              "    - group: students\n"
                              "      max_gpus: 1\n"
                              "      default_duration: 2h\n"
                              "      max_duration: 8h\n"
                              "    - group: staff\n"
                              "      max_duration: 2d\n"
                              "    - {group: guests, max_gpus: 0}\n"
                              "    - group: _svc-batch_2\n"
                              "  max_gpus: 4\n"
                              "  default_duration: 3h\n"
                              "  max_duration: 1d\n"
                              "  unleased_memory_limit: 512M\n"
                              "  reconnect_grace: 2m\n"
                              "log_level: debug\n",
                              &c, &err),
                         0);
        assert_null(err);
        assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
        assert_limits(&c->policy.limits, 4, 3 * USEC_PER_HOUR, USEC_PER_DAY);
        assert_int_equal(c->policy.unleased_memory_limit_bytes, UINT64_C(512) << 20);
        assert_int_equal(c->policy.reconnect_grace_usec, 2 * USEC_PER_MINUTE);
        assert_int_equal(c->policy.n_groups, 4);
        g = c->policy.groups;
        assert_string_equal(g[0].group, "students");
        assert_limits(&g[0].limits, 1, 2 * USEC_PER_HOUR, 8 * USEC_PER_HOUR);
        assert_string_equal(g[1].group, "staff");
        assert_limits(&g[1].limits, 4, 3 * USEC_PER_HOUR, 2 * USEC_PER_DAY);
        /* 0 written in the group is "no limit" there, not "unset". */
        assert_string_equal(g[2].group, "guests");
        assert_limits(&g[2].limits, 0, 3 * USEC_PER_HOUR, USEC_PER_DAY);
        assert_string_equal(g[3].group, "_svc-batch_2");
        assert_limits(&g[3].limits, 4, 3 * USEC_PER_HOUR, USEC_PER_DAY);
}

static void test_policy_ranges(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        /* Every bound itself is allowed, and a group name of exactly 32 bytes. */
        assert_int_equal(load(t,
                              "policy:\n"
                              "  max_gpus: 1024\n"
                              "  default_duration: 1m\n"
                              "  max_duration: 365d\n"
                              "  unleased_memory_limit: 0\n"
                              "  reconnect_grace: 1s\n"
                              "  groups:\n"
                              "    - group: abcdefghijklmnopqrstuvwxyz012345\n"
                              "      default_duration: 365d\n"
                              "      max_gpus: 0\n"
                              "    - group: b\n"
                              "      max_duration: 1m\n",
                              &c, &err),
                         0);
        assert_null(err);
        assert_limits(&c->policy.limits, 1024, USEC_PER_MINUTE, 365 * USEC_PER_DAY);
        assert_int_equal(c->policy.unleased_memory_limit_bytes, 0);
        assert_int_equal(c->policy.reconnect_grace_usec, USEC_PER_SEC);
        assert_int_equal(c->policy.n_groups, 2);
        assert_limits(&c->policy.groups[0].limits, 0, 365 * USEC_PER_DAY, 365 * USEC_PER_DAY);
        assert_limits(&c->policy.groups[1].limits, 1024, USEC_PER_MINUTE, USEC_PER_MINUTE);
        config_free(TAKE_PTR(c));

        assert_int_equal(load(t, "policy:\n  reconnect_grace: 1h\n  max_duration: 4h\n", &c, &err),
                         0);
        assert_int_equal(c->policy.reconnect_grace_usec, USEC_PER_HOUR);
        assert_limits(&c->policy.limits, 0, 4 * USEC_PER_HOUR, 4 * USEC_PER_HOUR);
}

static void test_policy_empty_forms(void **state)
{
        static const char *const empties[] = {
                "policy:\n",
                "policy: {}\n",
                "policy:\n  # max_gpus: 4\n",
                "policy:\n  groups:\n",
                "policy:\n  groups: []\n",
                "policy:\n  groups: ~\n",
                "{policy: {groups: []}}\n",
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(empties); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                assert_int_equal(load(t, empties[i], &c, &err), 0);
                assert_null(err);
                assert_defaults(c);
        }
}

static void test_policy_flow_style(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;

        assert_int_equal(load(t,
                              "policy: {max_gpus: 2, groups: [{group: a, max_gpus: 1},"
                              " {group: b, default_duration: 30m}]}\n",
                              &c, NULL),
                         0);
        assert_int_equal(c->policy.n_groups, 2);
        assert_string_equal(c->policy.groups[0].group, "a");
        assert_limits(&c->policy.groups[0].limits, 1, 4 * USEC_PER_HOUR, USEC_PER_DAY);
        assert_string_equal(c->policy.groups[1].group, "b");
        assert_limits(&c->policy.groups[1].limits, 2, 30 * USEC_PER_MINUTE, USEC_PER_DAY);
}

static void test_policy_max_groups(void **state)
{
        TestDir *t = *state;
        _cleanup_free_ char *yaml = NULL, *more = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&yaml, &len);

        assert_non_null(f);
        fputs("policy:\n  groups:\n", f);
        for (int i = 0; i < CONFIG_POLICY_MAX_GROUPS; i++)
                fprintf(f, "    - group: g%d\n", i);
        assert_int_equal(fclose(f), 0);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_int_equal(c->policy.n_groups, 64);
                assert_string_equal(c->policy.groups[63].group, "g63");
        }

        /* The 65th item is refused where it starts (line 2 + 65). */
        assert_true(asprintf(&more, "%s    - group: g64\n", yaml) > 0);
        expect_error(t, more, "67:7: too many items in 'policy.groups' (at most 64)");
}

static void test_policy_limits_selection(void **state)
{
        static const char *const students_and_staff[] = {"users", "staff", "students"};
        static const char *const staff_only[] = {"users", "staff"};
        static const char *const unlisted[] = {"users", "wheel", "Staff"};
        static const char *const with_null[] = {NULL, "staff"};
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL, *d = NULL;

        assert_int_equal(load(t,
                              "policy:\n"
                              "  max_gpus: 4\n"
                              "  groups:\n"
                              "    - group: students\n"
                              "      max_gpus: 1\n"
                              "    - group: staff\n"
                              "      max_gpus: 8\n",
                              &c, NULL),
                         0);

        /* File order decides, not the order of the user's groups. */
        assert_ptr_equal(config_policy_limits(c, students_and_staff, 3),
                         &c->policy.groups[0].limits);
        assert_int_equal(config_policy_limits(c, students_and_staff, 3)->max_gpus, 1);
        assert_ptr_equal(config_policy_limits(c, staff_only, 2), &c->policy.groups[1].limits);
        assert_int_equal(config_policy_limits(c, staff_only, 2)->max_gpus, 8);
        assert_ptr_equal(config_policy_limits(c, with_null, 2), &c->policy.groups[1].limits);
        /* Only the first n names count. */
        assert_ptr_equal(config_policy_limits(c, staff_only, 1), &c->policy.limits);
        /* No match, or no groups at all: the policy-level values. */
        assert_ptr_equal(config_policy_limits(c, unlisted, 3), &c->policy.limits);
        assert_int_equal(config_policy_limits(c, unlisted, 3)->max_gpus, 4);
        assert_ptr_equal(config_policy_limits(c, NULL, 0), &c->policy.limits);

        assert_int_equal(config_new_defaults(&d), 0);
        assert_ptr_equal(config_policy_limits(d, staff_only, 2), &d->policy.limits);
        assert_limits(config_policy_limits(d, staff_only, 2), 0, 4 * USEC_PER_HOUR,
                      24 * USEC_PER_HOUR);
}

static void test_policy_structure_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "policy: 5\n",
                     "1:9: 'policy' must be a section (a mapping of keys), not a single value");
        expect_error(t, "policy:\n  maxgpus: 4\n",
                     "2:3: unknown key 'policy.maxgpus' (known keys in 'policy': max_gpus, "
                     "default_duration, max_duration, unleased_memory_limit, reconnect_grace, "
                     "groups, expiry_warning)");
        expect_error(t, "policy:\n  max_gpus: 4\n  max_gpus: 2\n",
                     "3:3: duplicate key 'policy.max_gpus' (first given on line 2)");
        expect_error(t, "policy:\n  max_gpus: [1]\n",
                     "2:13: 'policy.max_gpus' must be a single value, not a list");
        expect_error(t, "policy:\n  groups: students\n",
                     "2:11: 'policy.groups' must be a list (of mappings), not a single value");
        expect_error(t, "policy:\n  groups:\n    group: students\n",
                     "3:5: 'policy.groups' must be a list (of mappings), not a mapping");
        expect_error(t, "policy:\n  groups:\n    - group: a\n  groups: []\n",
                     "4:3: duplicate key 'policy.groups' (first given on line 2)");

        /* Items. */
        expect_error(t, "policy:\n  groups:\n    - students\n",
                     "3:7: 'policy.groups[0]' must be a mapping of keys, not a single value");
        expect_error(t, "policy:\n  groups:\n    - group: a\n    -\n    - group: b\n",
                     "4:6: 'policy.groups[1]' must be a mapping of keys, not a single value");
        expect_error(t, "policy:\n  groups:\n    - group: a\n    - [b]\n",
                     "4:7: 'policy.groups[1]' must be a mapping of keys, not a list");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      maxgpus: 1\n",
                     "4:7: unknown key 'policy.groups[0].maxgpus' (known keys in "
                     "'policy.groups[0]': " GROUP_KNOWN ")");
        expect_error(t, "policy:\n  groups:\n    - group: a\n    - group: b\n      bogus: 1\n",
                     "5:7: unknown key 'policy.groups[1].bogus' (known keys in "
                     "'policy.groups[1]': " GROUP_KNOWN ")");
        expect_error(t, "policy:\n  groups:\n    - {group: a, reconnect_grace: 1m}\n",
                     "3:18: unknown key 'policy.groups[0].reconnect_grace' (known keys in "
                     "'policy.groups[0]': " GROUP_KNOWN ")");
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n    - group: b\n      max_gpus: 1\n"
                     "      max_gpus: 2\n",
                     "6:7: duplicate key 'policy.groups[1].max_gpus' (first given on line 5)");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      group: b\n",
                     "4:7: duplicate key 'policy.groups[0].group' (first given on line 3)");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      max_gpus:\n",
                     "4:16: value required for 'policy.groups[0].max_gpus'");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      max_duration: {h: 1}\n",
                     "4:21: 'policy.groups[0].max_duration' must be a single value, not a "
                     "mapping");

        /* The required group: reported where the item starts. */
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n    - max_gpus: 1\n"
                     "      max_duration: 2h\n",
                     "4:7: missing required key 'policy.groups[1].group'");
        expect_error(t, "policy:\n  groups:\n    - {}\n",
                     "3:7: missing required key 'policy.groups[0].group'");
        expect_error(t, "policy: {groups: [{group: a}, {max_gpus: 1}]}\n",
                     "1:31: missing required key 'policy.groups[1].group'");

        /* Anchors, aliases and tags stay forbidden inside lists. */
        expect_error(t, "policy:\n  groups:\n    - &g {group: a}\n",
                     "3:7: 'policy.groups': anchors (&g) are not allowed");
        expect_error(t, "policy:\n  groups:\n    - group: &n a\n    - group: *n\n",
                     "3:14: 'policy.groups[0].group': anchors (&n) are not allowed");
        expect_error(t, "policy:\n  groups: !!seq []\n",
                     "2:11: 'policy.groups': tags (tag:yaml.org,2002:seq) are not allowed");
}

static void test_policy_value_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "policy:\n  max_gpus: 1025\n",
                     "2:13: invalid value '1025' for 'policy.max_gpus': must be between 0 and "
                     "1024");
        expect_error(t, "policy:\n  max_gpus: -1\n",
                     "2:13: invalid value '-1' for 'policy.max_gpus': not a non-negative whole "
                     "number");
        expect_error(t, "policy:\n  default_duration: 59s\n",
                     "2:21: invalid value '59s' for 'policy.default_duration': must be between "
                     "1m and 365d");
        expect_error(t, "policy:\n  max_duration: 366d\n",
                     "2:17: invalid value '366d' for 'policy.max_duration': must be between 1m "
                     "and 365d");
        expect_error(t, "policy:\n  max_duration: 24\n",
                     "2:17: invalid value '24' for 'policy.max_duration': a unit is required "
                     "(for example 30s, 5m or 2h)");
        expect_error(t, "policy:\n  reconnect_grace: 0s\n",
                     "2:20: invalid value '0s' for 'policy.reconnect_grace': must be between 1s "
                     "and 1h");
        expect_error(t, "policy:\n  reconnect_grace: 1h1s\n",
                     "2:20: invalid value '1h1s' for 'policy.reconnect_grace': must be between "
                     "1s and 1h");
        expect_error(t, "policy:\n  unleased_memory_limit: 1g\n",
                     "2:26: invalid value '1g' for 'policy.unleased_memory_limit': not a size "
                     "(write bytes or a number with K, M, G, T, P or E: 512M, 10G)");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      max_gpus: 2000\n",
                     "4:17: invalid value '2000' for 'policy.groups[0].max_gpus': must be "
                     "between 0 and 1024");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      default_duration: 30s\n",
                     "4:25: invalid value '30s' for 'policy.groups[0].default_duration': must be "
                     "between 1m and 365d");

        /* Group names. */
        expect_error(t, "policy:\n  groups:\n    - group: Students\n",
                     "3:14: invalid value 'Students' for 'policy.groups[0].group': "
                     GROUP_NAME_RULE);
        expect_error(t, "policy:\n  groups:\n    - group: 1lab\n",
                     "3:14: invalid value '1lab' for 'policy.groups[0].group': " GROUP_NAME_RULE);
        expect_error(t, "policy:\n  groups:\n    - group: -lab\n",
                     "3:14: invalid value '-lab' for 'policy.groups[0].group': " GROUP_NAME_RULE);
        expect_error(t, "policy:\n  groups:\n    - group: \"lab users\"\n",
                     "3:14: invalid value 'lab users' for 'policy.groups[0].group': "
                     GROUP_NAME_RULE);
        expect_error(t, "policy:\n  groups:\n    - group: machine$\n",
                     "3:14: invalid value 'machine$' for 'policy.groups[0].group': "
                     GROUP_NAME_RULE);
        expect_error(t, "policy:\n  groups:\n    - group: ''\n",
                     "3:14: invalid value '' for 'policy.groups[0].group': " GROUP_NAME_RULE);
        /* Longer than groupadd's 32 (directories serve such names), up to
         * 256 bytes; one more is refused. */
        {
                char yaml[400], name[258];
                Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                memset(name, 'g', 256);
                name[256] = '\0';
                snprintf(yaml, sizeof yaml, "policy:\n  groups:\n    - group: %s\n", name);
                assert_int_equal(load(t, yaml, &c, &err), 0);
                assert_string_equal(c->policy.groups[0].group, name);
                config_free(c);
                strcat(name, "g");
                snprintf(yaml, sizeof yaml, "policy:\n  groups:\n    - group: %s\n", name);
                c = NULL;
                assert_int_equal(load(t, yaml, &c, &err), -EINVAL);
                assert_non_null(strstr(err, GROUP_NAME_RULE));
        }
        expect_error(t, "policy:\n  groups:\n    - group: a\n    - group: ~\n",
                     "4:14: value required for 'policy.groups[1].group'");
}

static void test_policy_check_errors(void **state)
{
        TestDir *t = *state;

        /* Duplicate groups: the later one is blamed. */
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n    - group: b\n    - group: a\n",
                     "5:14: duplicate group 'a' in 'policy.groups[2]' (first given in "
                     "'policy.groups[0]')");

        /* default_duration > max_duration at the policy level. */
        expect_error(t, "policy:\n  default_duration: 8h\n  max_duration: 4h\n",
                     "2:21: 'policy.default_duration' (8h) must not be longer than "
                     "'policy.max_duration' (4h)");
        expect_error(t, "policy:\n  max_duration: 4h\n  default_duration: 8h\n",
                     "3:21: 'policy.default_duration' (8h) must not be longer than "
                     "'policy.max_duration' (4h)");
        expect_error(t, "policy:\n  max_duration: 1h\n",
                     "2:17: 'policy.max_duration' (1h) must not be shorter than default_duration "
                     "(4h, the default)");
        expect_error(t, "policy:\n  default_duration: 2d\n",
                     "2:21: 'policy.default_duration' (2d) must not be longer than max_duration "
                     "(1d, the default)");

        /* ... and in a group, after merging. */
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n      default_duration: 8h\n"
                     "      max_duration: 2h\n",
                     "4:25: 'policy.groups[0].default_duration' (8h) must not be longer than "
                     "'policy.groups[0].max_duration' (2h)");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      max_duration: 1h\n",
                     "4:21: 'policy.groups[0].max_duration' (1h) must not be shorter than "
                     "default_duration (4h, the default)");
        expect_error(t, "policy:\n  groups:\n    - group: a\n      default_duration: 1d6h\n",
                     "4:25: 'policy.groups[0].default_duration' (1d6h) must not be longer than "
                     "max_duration (1d, the default)");
        /* Inherited from policy-level keys written after the groups. */
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n    - group: b\n      max_duration: 1h\n"
                     "  default_duration: 2h\n  max_duration: 3h\n",
                     "5:21: 'policy.groups[1].max_duration' (1h) must not be shorter than "
                     "default_duration (2h, from 'policy.default_duration')");
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n      default_duration: 10h\n"
                     "  max_duration: 8h\n",
                     "4:25: 'policy.groups[0].default_duration' (10h) must not be longer than "
                     "max_duration (8h, from 'policy.max_duration')");
        /* The policy level is checked before the groups. */
        expect_error(t,
                     "policy:\n  groups:\n    - group: a\n      max_duration: 1m\n"
                     "  max_duration: 1h\n",
                     "5:17: 'policy.max_duration' (1h) must not be shorter than default_duration "
                     "(4h, the default)");
        /* Every error is reported, in file order (issue 17, item 15). */
        expect_error(t, "policy:\n  max_duration: 1h\nbogus: 1\n",
                     "2:17: 'policy.max_duration' (1h) must not be shorter than default_duration "
                     "(4h, the default)\n3:1: unknown key 'bogus' " KNOWN);
        expect_error(t,
                     "log_level: loud\npolicy:\n  max_gpus: x\n  bogus: 1\n"
                     "  groups:\n    - group: Bad!\n    - max_gpus: 1\nsocket: /a\nsocket: /b\n",
                     "1:12: invalid value 'loud' for 'log_level': must be one of error, warning, "
                     "info, debug\n"
                     "3:13: invalid value 'x' for 'policy.max_gpus': not a non-negative whole "
                     "number\n"
                     "4:3: unknown key 'policy.bogus' (known keys in 'policy': max_gpus, "
                     "default_duration, max_duration, unleased_memory_limit, reconnect_grace, "
                     "groups, expiry_warning)\n"
                     "6:14: invalid value 'Bad!' for 'policy.groups[0].group': " GROUP_NAME_RULE
                     "\n7:7: missing required key 'policy.groups[1].group'\n"
                     "9:1: duplicate key 'socket' (first given on line 8)");

        /* What a group leaves unset, even when the policy level sets it later, is fine. */
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t,
                                      "policy:\n  groups:\n    - group: a\n      max_duration: 2h\n"
                                      "  default_duration: 1h\n  max_duration: 1h\n",
                                      &c, NULL),
                                 0);
                assert_limits(&c->policy.groups[0].limits, 0, USEC_PER_HOUR, 2 * USEC_PER_HOUR);
        }
}

/* ---- The enforcement, idle and alerts sections --------------------------- */

#define EV(e) (UINT32_C(1) << CONFIG_ALERT_##e)

static void test_enforcement_idle_alerts_full(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        const ConfigAlertSink *s;

        assert_int_equal(load(t,
                              "enforcement:\n"
                              "  mode: observe\n"
                              "  grace: 2m\n"
                              "  kill_timeout: 30s\n"
                              "  root_exempt: false\n"
                              "  exempt:\n"
                              "    users: [nvidia-persistenced, 998, svc.Render_1, \"0\"]\n"
                              "    executables:\n"
                              "      - /usr/lib/xorg/Xorg\n"
                              "      - /opt/x.y/bin/..z\n"
                              "idle:\n"
                              "  release_after: 3h\n"
                              "  warn_before: 3h\n"
                              "  flag_after: 45m\n"
                              "  stop_idle_runs: yes\n"
                              "alerts:\n"
                              "  repeat_after: 30m\n"
                              "  memory_fraction: 0.95\n"
                              "  memory_for: 0s\n"
                              "  temperature_c: 90\n"
                              "  temperature_for: 2m\n"
                              "  sinks:\n"
                              "    - name: ops\n"
                              "      type: webhook\n"
                              "      url: http://127.0.0.1:8080/hook\n"
                              "      events: [violation, gpu_lost]\n"
                              "      timeout: 5s\n"
                              "    - name: ding_1\n"
                              "      type: dingtalk\n"
                              "      url: HTTPS://oapi.dingtalk.com/robot/send?access_token=abc\n"
                              "      secret: SECabc\n"
                              "    - {name: chat, type: slack, url: 'https://hooks.slack.com/x'}\n"
                              "    - name: mail\n"
                              "      type: email\n"
                              "      smtp_url: smtp://127.0.0.1:2525\n"
                              "      starttls: true\n"
                              "      username: u\n"
                              "      password: p w\n"
                              "      from: gpukeeper@host\n"
                              "      to: [admin@lab, ops@lab.example.org]\n"
                              "      events: [daemon, process_stopped, nvml_error, xid, memory,\n"
                              "               temperature, idle_warning, idle_reclaim,\n"
                              "               idle_flag, exited_memory, expiry_warning]\n"
                              "    - name: mail2\n"
                              "      type: email\n"
                              "      smtp_url: smtps://mail.example.org\n"
                              "      from: a@b\n"
                              "      to:\n"
                              "        - c@d\n",
                              &c, &err),
                         0);
        assert_null(err);

        assert_int_equal(c->enforcement.mode, CONFIG_ENFORCEMENT_OBSERVE);
        assert_int_equal(c->enforcement.grace_usec, 2 * USEC_PER_MINUTE);
        assert_int_equal(c->enforcement.kill_timeout_usec, 30 * USEC_PER_SEC);
        assert_false(c->enforcement.root_exempt);
        assert_int_equal(c->enforcement.n_exempt_users, 4);
        assert_string_equal(c->enforcement.exempt_users[0], "nvidia-persistenced");
        assert_string_equal(c->enforcement.exempt_users[1], "998");
        assert_string_equal(c->enforcement.exempt_users[2], "svc.Render_1");
        assert_string_equal(c->enforcement.exempt_users[3], "0");
        assert_int_equal(c->enforcement.n_exempt_executables, 2);
        assert_string_equal(c->enforcement.exempt_executables[0], "/usr/lib/xorg/Xorg");
        assert_string_equal(c->enforcement.exempt_executables[1], "/opt/x.y/bin/..z");

        assert_int_equal(c->idle.release_after_usec, 3 * USEC_PER_HOUR);
        assert_int_equal(c->idle.warn_before_usec, 3 * USEC_PER_HOUR);
        assert_int_equal(c->idle.flag_after_usec, 45 * USEC_PER_MINUTE);
        assert_true(c->idle.stop_idle_runs);

        assert_int_equal(c->alerts.repeat_after_usec, 30 * USEC_PER_MINUTE);
        assert_true(c->alerts.memory_fraction == 0.95);
        assert_int_equal(c->alerts.memory_for_usec, 0);
        assert_int_equal(c->alerts.temperature_c, 90);
        assert_int_equal(c->alerts.temperature_for_usec, 2 * USEC_PER_MINUTE);
        assert_int_equal(c->alerts.n_sinks, 5);

        s = &c->alerts.sinks[0];
        assert_string_equal(s->name, "ops");
        assert_int_equal(s->type, CONFIG_SINK_WEBHOOK);
        assert_string_equal(s->url, "http://127.0.0.1:8080/hook");
        assert_null(s->secret);
        assert_int_equal(s->events, EV(VIOLATION) | EV(GPU_LOST));
        assert_int_equal(s->timeout_usec, 5 * USEC_PER_SEC);
        assert_null(s->smtp_url);
        assert_null(s->from);
        assert_null(s->to);
        assert_int_equal(s->n_to, 0);

        s = &c->alerts.sinks[1];
        assert_string_equal(s->name, "ding_1");
        assert_int_equal(s->type, CONFIG_SINK_DINGTALK);
        assert_string_equal(s->url, "HTTPS://oapi.dingtalk.com/robot/send?access_token=abc");
        assert_string_equal(s->secret, "SECabc");
        /* Defaults filled in for what an item leaves out. */
        assert_int_equal(s->events, CONFIG_ALERT_EVENTS_ALL);
        assert_int_equal(s->timeout_usec, 10 * USEC_PER_SEC);

        s = &c->alerts.sinks[2];
        assert_string_equal(s->name, "chat");
        assert_int_equal(s->type, CONFIG_SINK_SLACK);
        assert_string_equal(s->url, "https://hooks.slack.com/x");

        s = &c->alerts.sinks[3];
        assert_string_equal(s->name, "mail");
        assert_int_equal(s->type, CONFIG_SINK_EMAIL);
        assert_null(s->url);
        assert_string_equal(s->smtp_url, "smtp://127.0.0.1:2525");
        assert_true(s->starttls);
        assert_string_equal(s->username, "u");
        assert_string_equal(s->password, "p w");
        assert_string_equal(s->from, "gpukeeper@host");
        assert_int_equal(s->n_to, 2);
        assert_string_equal(s->to[0], "admin@lab");
        assert_string_equal(s->to[1], "ops@lab.example.org");
        /* Every event but the two of the first sink. */
        assert_int_equal(s->events, CONFIG_ALERT_EVENTS_ALL & ~(EV(VIOLATION) | EV(GPU_LOST)));

        s = &c->alerts.sinks[4];
        assert_false(s->starttls);
        assert_null(s->username);
        assert_null(s->password);
        assert_int_equal(s->n_to, 1);
        assert_string_equal(s->to[0], "c@d");
}

static void test_enforcement_idle_alerts_ranges(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        /* Every bound itself is allowed. */
        assert_int_equal(load(t,
                              "enforcement: {grace: 1s, kill_timeout: 1h}\n"
                              "idle: {release_after: 1s, warn_before: 0s, flag_after: 30d}\n"
                              "alerts:\n"
                              "  repeat_after: 30d\n"
                              "  memory_fraction: 0.01\n"
                              "  memory_for: 1d\n"
                              "  temperature_c: 30\n"
                              "  temperature_for: 0s\n"
                              "  sinks: [{name: abcdefghijklmnopqrstuvwxyz-_0123, type: slack,"
                              " url: 'http://h', timeout: 5m}]\n",
                              &c, &err),
                         0);
        assert_null(err);
        assert_int_equal(c->enforcement.grace_usec, USEC_PER_SEC);
        assert_int_equal(c->enforcement.kill_timeout_usec, USEC_PER_HOUR);
        assert_int_equal(c->idle.release_after_usec, USEC_PER_SEC);
        assert_int_equal(c->idle.warn_before_usec, 0);
        assert_int_equal(c->idle.flag_after_usec, 30 * USEC_PER_DAY);
        assert_int_equal(c->alerts.repeat_after_usec, 30 * USEC_PER_DAY);
        assert_true(c->alerts.memory_fraction == 0.01);
        assert_int_equal(c->alerts.memory_for_usec, USEC_PER_DAY);
        assert_int_equal(c->alerts.temperature_c, 30);
        assert_int_equal(c->alerts.temperature_for_usec, 0);
        assert_int_equal(c->alerts.sinks[0].timeout_usec, 5 * USEC_PER_MINUTE);
        config_free(TAKE_PTR(c));

        assert_int_equal(load(t,
                              "enforcement: {grace: 1d, kill_timeout: 1s}\n"
                              "idle: {release_after: 30d, flag_after: 1s}\n"
                              "alerts: {repeat_after: 1s, memory_fraction: 1, temperature_c: 120,"
                              " temperature_for: 1d, sinks: [{name: a, type: webhook,"
                              " url: 'https://h', timeout: 1s}]}\n",
                              &c, &err),
                         0);
        assert_int_equal(c->enforcement.grace_usec, USEC_PER_DAY);
        assert_int_equal(c->idle.release_after_usec, 30 * USEC_PER_DAY);
        assert_int_equal(c->idle.warn_before_usec, 15 * USEC_PER_MINUTE);
        assert_true(c->alerts.memory_fraction == 1.0);
        assert_int_equal(c->alerts.temperature_c, 120);
        assert_int_equal(c->alerts.sinks[0].timeout_usec, USEC_PER_SEC);
}

static void test_empty_sections_and_lists(void **state)
{
        static const char *const empties[] = {
                "enforcement:\n",
                "enforcement:\n  exempt:\n",
                "enforcement:\n  exempt:\n    users:\n    executables: []\n",
                "enforcement: {exempt: {users: ~}}\n",
                "idle: {}\n",
                "alerts:\n  sinks:\n",
                "alerts:\n  sinks: []\n",
                "idle:\n  # release_after: 2h\nalerts: {}\n",
                "env:\n",
                "env: {}\n",
                "env:\n  # backup_keep: 14\n",
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(empties); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                assert_int_equal(load(t, empties[i], &c, &err), 0);
                assert_null(err);
                assert_defaults(c);
        }
}

static void test_memory_fraction_values(void **state)
{
        static const struct {
                const char *value;
                double v;
        } good[] = {
                {"1", 1.0},          {"1.0", 1.0},   {"0.5", 0.5},
                {"0.123456789", 0.123456789}, {"00.90", 0.9}, {"\"0.75\"", 0.75},
                {"0.10000000000000", 0.1},
        };
        static const char *const malformed[] = {
                "-0.5", "+0.5", ".5", "1.", "0,5", "5e-1", "0x1p-1", "nan", "inf", "0.5 ",
                "0..5", "1.2.3", "half",
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *yaml = NULL;

                assert_true(asprintf(&yaml, "alerts:\n  memory_fraction: %s\n", good[i].value) > 0);
                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_true(c->alerts.memory_fraction == good[i].v);
        }
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                _cleanup_free_ char *yaml = NULL, *want = NULL;

                assert_true(asprintf(&yaml, "alerts:\n  memory_fraction: '%s'\n", malformed[i]) >
                            0);
                assert_true(asprintf(&want,
                                     "2:20: invalid value '%s' for 'alerts.memory_fraction': not "
                                     "a number (write digits with an optional fraction: 0.9, 1)",
                                     malformed[i]) > 0);
                expect_error(t, yaml, want);
        }
        expect_error(t, "alerts:\n  memory_fraction: 0.009\n",
                     "2:20: invalid value '0.009' for 'alerts.memory_fraction': must be between "
                     "0.01 and 1");
        expect_error(t, "alerts:\n  memory_fraction: 0\n",
                     "2:20: invalid value '0' for 'alerts.memory_fraction': must be between 0.01 "
                     "and 1");
        expect_error(t, "alerts:\n  memory_fraction: 1.0000001\n",
                     "2:20: invalid value '1.0000001' for 'alerts.memory_fraction': must be "
                     "between 0.01 and 1");
        expect_error(t, "alerts:\n  memory_fraction: 90\n",
                     "2:20: invalid value '90' for 'alerts.memory_fraction': must be between 0.01 "
                     "and 1");
        expect_error(t, "alerts:\n  memory_fraction: 0.1000000000000000\n",
                     "2:20: invalid value '0.1000000000000000' for 'alerts.memory_fraction': too "
                     "many digits (at most 15)");
}

static void test_enforcement_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "enforcement:\n  mode: kill\n",
                     "2:9: invalid value 'kill' for 'enforcement.mode': must be observe, "
                     "enforce or strict");
        expect_error(t, "enforcement:\n  mode: Enforce\n",
                     "2:9: invalid value 'Enforce' for 'enforcement.mode': must be observe, "
                     "enforce or strict");
        expect_error(t, "enforcement:\n  grace: 0s\n",
                     "2:10: invalid value '0s' for 'enforcement.grace': must be between 1s and "
                     "1d");
        expect_error(t, "enforcement:\n  grace: 1d1s\n",
                     "2:10: invalid value '1d1s' for 'enforcement.grace': must be between 1s and "
                     "1d");
        expect_error(t, "enforcement:\n  kill_timeout: 61m\n",
                     "2:17: invalid value '61m' for 'enforcement.kill_timeout': must be between "
                     "1s and 1h");
        expect_error(t, "enforcement:\n  kill_timeout: 10\n",
                     "2:17: invalid value '10' for 'enforcement.kill_timeout': a unit is "
                     "required (for example 30s, 5m or 2h)");
        expect_error(t, "enforcement:\n  root_exempt: sometimes\n",
                     "2:16: invalid value 'sometimes' for 'enforcement.root_exempt': must be "
                     "true or false (or yes/no, on/off, 1/0)");
        expect_error(t, "enforcement:\n  exempt: [root]\n",
                     "2:11: 'enforcement.exempt' must be a section (a mapping of keys), not a "
                     "list");
        expect_error(t, "enforcement:\n  exempt:\n    groups: [video]\n",
                     "3:5: unknown key 'enforcement.exempt.groups' (known keys in "
                     "'enforcement.exempt': users, executables)");
        expect_error(t, "enforcement:\n  root: true\n",
                     "2:3: unknown key 'enforcement.root' (known keys in 'enforcement': mode, "
                     "grace, kill_timeout, root_exempt, exempt, fence_cgroup, fence_pin_dir, mig_minors, "
                     "proc_devices)");

        /* Lists of values. */
        expect_error(t, "enforcement:\n  exempt:\n    users: root\n",
                     "3:12: 'enforcement.exempt.users' must be a list (of values), not a single "
                     "value");
        expect_error(t, "enforcement:\n  exempt:\n    users: {root: 1}\n",
                     "3:12: 'enforcement.exempt.users' must be a list (of values), not a "
                     "mapping");
        expect_error(t, "enforcement:\n  exempt:\n    users: [root, [a]]\n",
                     "3:19: 'enforcement.exempt.users[1]' must be a single value, not a list");
        expect_error(t, "enforcement:\n  exempt:\n    users:\n      - root\n      - {a: b}\n",
                     "5:9: 'enforcement.exempt.users[1]' must be a single value, not a mapping");
        expect_error(t, "enforcement:\n  exempt:\n    users:\n      - root\n      -\n",
                     "5:8: value required for 'enforcement.exempt.users[1]'");
        expect_error(t, "enforcement:\n  exempt:\n    users: [\"a\\0b\"]\n",
                     "3:13: value of 'enforcement.exempt.users[0]' contains a NUL character");
        expect_error(t, "enforcement:\n  exempt:\n    users: [&u root]\n",
                     "3:13: 'enforcement.exempt.users': anchors (&u) are not allowed");
        expect_error(t, "enforcement:\n  exempt:\n    users: [root]\n    users: [nobody]\n",
                     "4:5: duplicate key 'enforcement.exempt.users' (first given on line 3)");

        /* Users. */
        expect_error(t, "enforcement:\n  exempt:\n    users: [root, -x]\n",
                     "3:19: invalid value '-x' for 'enforcement.exempt.users[1]': must be a user "
                     "name (letters, digits, '.', '_' or '-', not starting with '-' or '.', at "
                     "most 32 characters) or a numeric uid");
        expect_error(t, "enforcement:\n  exempt:\n    users: [\"a b\"]\n",
                     "3:13: invalid value 'a b' for 'enforcement.exempt.users[0]': must be a "
                     "user name (letters, digits, '.', '_' or '-', not starting with '-' or '.', "
                     "at most 32 characters) or a numeric uid");
        expect_error(t, "enforcement:\n  exempt:\n    users: ['']\n",
                     "3:13: invalid value '' for 'enforcement.exempt.users[0]': must be a user "
                     "name (letters, digits, '.', '_' or '-', not starting with '-' or '.', at "
                     "most 32 characters) or a numeric uid");
        expect_error(t, "enforcement:\n  exempt:\n    users: [abcdefghijklmnopqrstuvwxyz0123456]\n",
                     "3:13: invalid value 'abcdefghijklmnopqrstuvwxyz0123456' for "
                     "'enforcement.exempt.users[0]': must be a user name (letters, digits, '.', "
                     "'_' or '-', not starting with '-' or '.', at most 32 characters) or a "
                     "numeric uid");
        expect_error(t, "enforcement:\n  exempt:\n    users: [4294967295]\n",
                     "3:13: invalid value '4294967295' for 'enforcement.exempt.users[0]': not a "
                     "uid (at most 4294967294)");
        expect_error(t, "enforcement:\n  exempt:\n    users: [99999999999999999999999]\n",
                     "3:13: invalid value '99999999999999999999999' for "
                     "'enforcement.exempt.users[0]': not a uid (at most 4294967294)");
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t,
                                      "enforcement:\n  exempt:\n    users: [4294967294, "
                                      "abcdefghijklmnopqrstuvwxyz012345]\n",
                                      &c, NULL),
                                 0);
                assert_int_equal(c->enforcement.n_exempt_users, 2);
        }

        /* Executables. */
        expect_error(t, "enforcement:\n  exempt:\n    executables: [Xorg]\n",
                     "3:19: invalid value 'Xorg' for 'enforcement.exempt.executables[0]': must "
                     "be an absolute path (starting with '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/usr/bin/]\n",
                     "3:19: invalid value '/usr/bin/' for 'enforcement.exempt.executables[0]': "
                     "must be a normalized absolute path (no empty, '.' or '..' components, no "
                     "trailing '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/a, /usr//bin/x]\n",
                     "3:23: invalid value '/usr//bin/x' for "
                     "'enforcement.exempt.executables[1]': must be a normalized absolute path "
                     "(no empty, '.' or '..' components, no trailing '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/usr/./x]\n",
                     "3:19: invalid value '/usr/./x' for 'enforcement.exempt.executables[0]': "
                     "must be a normalized absolute path (no empty, '.' or '..' components, no "
                     "trailing '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/usr/../x]\n",
                     "3:19: invalid value '/usr/../x' for 'enforcement.exempt.executables[0]': "
                     "must be a normalized absolute path (no empty, '.' or '..' components, no "
                     "trailing '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/x/..]\n",
                     "3:19: invalid value '/x/..' for 'enforcement.exempt.executables[0]': must "
                     "be a normalized absolute path (no empty, '.' or '..' components, no "
                     "trailing '/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [/]\n",
                     "3:19: invalid value '/' for 'enforcement.exempt.executables[0]': must be "
                     "a normalized absolute path (no empty, '.' or '..' components, no trailing "
                     "'/')");
        expect_error(t, "enforcement:\n  exempt:\n    executables: [\"/a\\tb\"]\n",
                     "3:19: invalid value '/a\\x09b' for 'enforcement.exempt.executables[0]': "
                     "must not contain control characters");
}

static void test_exempt_list_limit(void **state)
{
        TestDir *t = *state;
        _cleanup_free_ char *yaml = NULL, *more = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&yaml, &len);

        assert_non_null(f);
        fputs("enforcement:\n  exempt:\n    executables:\n", f);
        for (int i = 0; i < CONFIG_EXEMPT_MAX; i++)
                fprintf(f, "      - /bin/x%d\n", i);
        assert_int_equal(fclose(f), 0);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_int_equal(c->enforcement.n_exempt_executables, 256);
                assert_string_equal(c->enforcement.exempt_executables[255], "/bin/x255");
        }
        /* The 257th item is refused where it starts (line 3 + 257). */
        assert_true(asprintf(&more, "%s      - /bin/y\n", yaml) > 0);
        expect_error(t, more,
                     "260:9: too many items in 'enforcement.exempt.executables' (at most 256)");
}

static void test_idle_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "idle:\n  release_after: 0s\n",
                     "2:18: invalid value '0s' for 'idle.release_after': must be between 1s and "
                     "30d");
        expect_error(t, "idle:\n  release_after: 31d\n",
                     "2:18: invalid value '31d' for 'idle.release_after': must be between 1s and "
                     "30d");
        expect_error(t, "idle:\n  flag_after: 0s\n",
                     "2:15: invalid value '0s' for 'idle.flag_after': must be between 1s and "
                     "30d");
        expect_error(t, "idle:\n  warn_before: 31d\n",
                     "2:16: invalid value '31d' for 'idle.warn_before': must be between 0s and "
                     "30d");
        expect_error(t, "idle:\n  stop_idle_runs: maybe\n",
                     "2:19: invalid value 'maybe' for 'idle.stop_idle_runs': must be true or "
                     "false (or yes/no, on/off, 1/0)");
        expect_error(t, "idle:\n  warn: 1m\n",
                     "2:3: unknown key 'idle.warn' (known keys in 'idle': release_after, "
                     "warn_before, flag_after, stop_idle_runs)");
        expect_error(t, "idle: 2h\n",
                     "1:7: 'idle' must be a section (a mapping of keys), not a single value");

        /* warn_before <= release_after: the key given is blamed. */
        expect_error(t, "idle:\n  warn_before: 3h\n",
                     "2:16: 'idle.warn_before' (3h) must not be longer than release_after (2h, "
                     "the default)");
        expect_error(t, "idle:\n  release_after: 10m\n",
                     "2:18: 'idle.release_after' (10m) must not be shorter than warn_before "
                     "(15m, the default)");
        expect_error(t, "idle:\n  release_after: 1h\n  warn_before: 1h1s\n",
                     "3:16: 'idle.warn_before' (1h1s) must not be longer than "
                     "'idle.release_after' (1h)");
        expect_error(t, "idle:\n  warn_before: 2h\n  release_after: 1h\n",
                     "2:16: 'idle.warn_before' (2h) must not be longer than "
                     "'idle.release_after' (1h)");
}

#define SINK_KNOWN                                                                                 \
        "name, type, url, secret, events, timeout, smtp_url, starttls, username, password, "      \
        "from, to"
#define EVENT_NAMES                                                                                \
        "daemon, violation, process_stopped, gpu_lost, nvml_error, xid, memory, temperature, "    \
        "idle_warning, idle_reclaim, idle_flag, exited_memory, expiry_warning"

static void test_alerts_errors(void **state)
{
        TestDir *t = *state;

        expect_error(t, "alerts:\n  repeat_after: 0s\n",
                     "2:17: invalid value '0s' for 'alerts.repeat_after': must be between 1s and "
                     "30d");
        expect_error(t, "alerts:\n  memory_for: 1d1s\n",
                     "2:15: invalid value '1d1s' for 'alerts.memory_for': must be between 0s and "
                     "1d");
        expect_error(t, "alerts:\n  temperature_for: 2d\n",
                     "2:20: invalid value '2d' for 'alerts.temperature_for': must be between 0s "
                     "and 1d");
        expect_error(t, "alerts:\n  temperature_c: 29\n",
                     "2:18: invalid value '29' for 'alerts.temperature_c': must be between 30 "
                     "and 120");
        expect_error(t, "alerts:\n  temperature_c: 121\n",
                     "2:18: invalid value '121' for 'alerts.temperature_c': must be between 30 "
                     "and 120");
        expect_error(t, "alerts:\n  temperature_c: 85.5\n",
                     "2:18: invalid value '85.5' for 'alerts.temperature_c': not a non-negative "
                     "whole number");
        expect_error(t, "alerts:\n  temperature_c: 99999999999999999999\n",
                     "2:18: invalid value '99999999999999999999' for 'alerts.temperature_c': too "
                     "large");
        expect_error(t, "alerts:\n  sinks:\n    name: ops\n",
                     "3:5: 'alerts.sinks' must be a list (of mappings), not a mapping");
        expect_error(t, "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                        "      url: http://h\n      retries: 3\n",
                     "6:7: unknown key 'alerts.sinks[0].retries' (known keys in "
                     "'alerts.sinks[0]': " SINK_KNOWN ")");

        /* Required in every sink. */
        expect_error(t, "alerts:\n  sinks:\n    - type: webhook\n      url: http://h\n",
                     "3:7: missing required key 'alerts.sinks[0].name'");
        expect_error(t, "alerts:\n  sinks:\n    - name: ops\n      url: http://h\n",
                     "3:7: missing required key 'alerts.sinks[0].type'");

        /* Names and types. */
        expect_error(t, "alerts:\n  sinks:\n    - name: Ops\n      type: webhook\n",
                     "3:13: invalid value 'Ops' for 'alerts.sinks[0].name': must be 1 to 32 "
                     "lower-case letters, digits, '_' or '-'");
        expect_error(t, "alerts:\n  sinks:\n    - name: ''\n      type: webhook\n",
                     "3:13: invalid value '' for 'alerts.sinks[0].name': must be 1 to 32 "
                     "lower-case letters, digits, '_' or '-'");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: abcdefghijklmnopqrstuvwxyz0123456\n",
                     "3:13: invalid value 'abcdefghijklmnopqrstuvwxyz0123456' for "
                     "'alerts.sinks[0].name': must be 1 to 32 lower-case letters, digits, '_' "
                     "or '-'\n3:7: missing required key 'alerts.sinks[0].type'");
        expect_error(t, "alerts:\n  sinks:\n    - name: ops\n      type: teams\n",
                     "4:13: invalid value 'teams' for 'alerts.sinks[0].type': must be one of "
                     "webhook, dingtalk, slack, email");
        expect_error(t,
                     "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'http://h'}\n"
                     "    - {name: b, type: slack, url: 'http://h'}\n"
                     "    - {name: a, type: webhook, url: 'http://h'}\n",
                     "5:14: duplicate sink name 'a' in 'alerts.sinks[2]' (first given in "
                     "'alerts.sinks[0]')");

        /* Events. */
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      events: [violation, gpu-lost]\n",
                     "6:27: invalid value 'gpu-lost' for 'alerts.sinks[0].events[1]': must be "
                     "one of " EVENT_NAMES);
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      events: [xid, memory, xid]\n",
                     "6:29: invalid value 'xid' for 'alerts.sinks[0].events[2]': listed more "
                     "than once");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      events: violation\n",
                     "6:15: 'alerts.sinks[0].events' must be a list (of values), not a single "
                     "value");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      events: []\n",
                     "6:15: 'alerts.sinks[0].events' names no event (leave it out for all "
                     "events)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      events:\n",
                     "6:14: 'alerts.sinks[0].events' names no event (leave it out for all "
                     "events)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      timeout: 6m\n",
                     "6:16: invalid value '6m' for 'alerts.sinks[0].timeout': must be between 1s "
                     "and 5m");

        /* Keys by type. */
        expect_error(t, "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n",
                     "3:7: missing key 'alerts.sinks[0].url' (required for sinks of type "
                     "webhook)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'http://h'}\n"
                     "    - name: mail\n      type: email\n      from: a@b\n      to: [c@d]\n",
                     "4:7: missing key 'alerts.sinks[1].smtp_url' (required for sinks of type "
                     "email)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      to: [c@d]\n",
                     "3:7: missing key 'alerts.sinks[0].from' (required for sinks of type "
                     "email)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      from: a@b\n",
                     "3:7: missing key 'alerts.sinks[0].to' (required for sinks of type "
                     "email)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      from: a@b\n      to: []\n",
                     "7:11: 'alerts.sinks[0].to' must list at least one address");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http://h\n      secret: abc\n",
                     "6:15: 'alerts.sinks[0].secret' is not used by sinks of type webhook");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: slack\n"
                     "      url: http://h\n      to: [a@b]\n",
                     "6:11: 'alerts.sinks[0].to' is not used by sinks of type slack");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: dingtalk\n"
                     "      starttls: false\n",
                     "5:17: 'alerts.sinks[0].starttls' is not used by sinks of type dingtalk");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      url: http://h\n      smtp_url: smtp://h\n      from: a@b\n"
                     "      to: [c@d]\n",
                     "5:12: 'alerts.sinks[0].url' is not used by sinks of type email");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      from: a@b\n      to: [c@d]\n"
                     "      username: u\n",
                     "8:17: 'alerts.sinks[0].username' requires 'alerts.sinks[0].password'");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      from: a@b\n      to: [c@d]\n"
                     "      password: p\n",
                     "8:17: 'alerts.sinks[0].password' requires 'alerts.sinks[0].username'");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: SMTPS://h\n      from: a@b\n      to: [c@d]\n"
                     "      starttls: yes\n",
                     "8:17: 'alerts.sinks[0].starttls' applies to smtp:// URLs only (smtps:// "
                     "uses TLS from the start)");

        /* URLs are secrets: never quoted. */
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: ftp://h/x\n",
                     "5:12: invalid value for 'alerts.sinks[0].url': must be a URL starting with "
                     "http:// or https:// and a host");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: http:///x\n",
                     "5:12: invalid value for 'alerts.sinks[0].url': must be a URL starting with "
                     "http:// or https:// and a host");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: ops\n      type: webhook\n"
                     "      url: 'http://h/a b'\n",
                     "5:12: invalid value for 'alerts.sinks[0].url': must not contain spaces or "
                     "control characters");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: http://h\n",
                     "5:17: invalid value for 'alerts.sinks[0].smtp_url': must be a URL starting "
                     "with smtp:// or smtps:// and a host");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://u:p@h/x\n",
                     "5:17: invalid value for 'alerts.sinks[0].smtp_url': must not contain a "
                     "user name or password (use the keys username and password)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: d\n      type: dingtalk\n"
                     "      url: https://h\n      secret: ''\n",
                     "6:15: invalid value for 'alerts.sinks[0].secret': must not be empty");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      password: \"a\\r\\nb\"\n",
                     "5:17: invalid value for 'alerts.sinks[0].password': must not contain "
                     "control characters");
        /* The user name is no secret. */
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      username: \"a\\nb\"\n",
                     "5:17: invalid value 'a\\x0ab' for 'alerts.sinks[0].username': must not "
                     "contain control characters");

        /* Addresses. */
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      from: gpukeeper\n",
                     "5:13: invalid value 'gpukeeper' for 'alerts.sinks[0].from': must be an "
                     "email address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: [a@b, 'Admin <admin@lab>']\n",
                     "5:17: invalid value 'Admin <admin@lab>' for 'alerts.sinks[0].to[1]': must "
                     "be an email address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: [\"a@b\\r\\nBcc: x@y\"]\n",
                     "5:12: invalid value 'a@b\\x0d\\x0aBcc: x@y' for 'alerts.sinks[0].to[0]': "
                     "must be an email address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: [a@b@c]\n",
                     "5:12: invalid value 'a@b@c' for 'alerts.sinks[0].to[0]': must be an email "
                     "address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: ['@b']\n",
                     "5:12: invalid value '@b' for 'alerts.sinks[0].to[0]': must be an email "
                     "address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: ['a@']\n",
                     "5:12: invalid value 'a@' for 'alerts.sinks[0].to[0]': must be an email "
                     "address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      to: ['a,b@c']\n",
                     "5:12: invalid value 'a,b@c' for 'alerts.sinks[0].to[0]': must be an email "
                     "address (user@host, without a display name)");
}

static void test_alert_list_limits(void **state)
{
        TestDir *t = *state;
        _cleanup_free_ char *sinks = NULL, *to = NULL, *yaml = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&sinks, &len);
        assert_non_null(f);
        fputs("alerts:\n  sinks:\n", f);
        for (int i = 0; i < CONFIG_ALERT_MAX_SINKS; i++)
                fprintf(f, "    - {name: s%d, type: slack, url: 'http://h'}\n", i);
        assert_int_equal(fclose(f), 0);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, sinks, &c, NULL), 0);
                assert_int_equal(c->alerts.n_sinks, 32);
        }
        assert_true(asprintf(&yaml, "%s    - {name: x, type: slack, url: 'http://h'}\n", sinks) >
                    0);
        expect_error(t, yaml, "35:7: too many items in 'alerts.sinks' (at most 32)");
        free(TAKE_PTR(yaml));

        f = open_memstream(&to, &len);
        assert_non_null(f);
        fputs("alerts:\n  sinks:\n    - name: m\n      type: email\n      smtp_url: smtp://h\n"
              "      from: a@b\n      to:\n",
              f);
        for (int i = 0; i < CONFIG_ALERT_MAX_RECIPIENTS; i++)
                fprintf(f, "        - r%d@lab\n", i);
        assert_int_equal(fclose(f), 0);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, to, &c, NULL), 0);
                assert_int_equal(c->alerts.sinks[0].n_to, 32);
                assert_string_equal(c->alerts.sinks[0].to[31], "r31@lab");
        }
        assert_true(asprintf(&yaml, "%s        - x@lab\n", to) > 0);
        expect_error(t, yaml, "40:11: too many items in 'alerts.sinks[0].to' (at most 32)");
        free(TAKE_PTR(yaml));

        /* Every event listed once is fine; the list cannot be longer. */
        assert_true(asprintf(&yaml,
                             "alerts:\n  sinks:\n    - name: a\n      type: slack\n"
                             "      url: http://h\n      events: [" EVENT_NAMES "]\n") > 0);
        {
                _cleanup_(config_freep) Config *c = NULL;

                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_int_equal(c->alerts.sinks[0].events, CONFIG_ALERT_EVENTS_ALL);
        }
        free(TAKE_PTR(yaml));
        assert_true(asprintf(&yaml,
                             "alerts:\n  sinks:\n    - name: a\n      type: slack\n"
                             "      url: http://h\n      events: [" EVENT_NAMES ", xid]\n") > 0);
        expect_error(t, yaml, "6:170: too many items in 'alerts.sinks[0].events' (at most 13)");
}

/* A secret written in a sink must not appear in any message, whatever is
 * wrong with it or around it. */
static void test_secrets_never_in_errors(void **state)
{
        static const char *const files[] = {
                /* Invalid secret values. */
                "alerts:\n  sinks:\n    - {name: a, type: webhook, url: 'ftp://SECRET-TOKEN'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: webhook, url: 'https://h/SECRET-TOKEN x'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: webhook, url: \"https://h/SECRET-TOKEN\\t\"}\n",
                "alerts:\n  sinks:\n    - {name: a, type: dingtalk, url: 'https://h',"
                " secret: \"SECRET-TOKEN\\n\"}\n",
                "alerts:\n  sinks:\n    - {name: a, type: email, smtp_url: 'smtp://u:SECRET-TOKEN@h'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: email, smtp_url: 'imap://SECRET-TOKEN'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: email, password: \"SECRET-TOKEN\\r\"}\n",
                /* Valid secret values, something else wrong. */
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'https://h/SECRET-TOKEN',"
                " to: [a@b]}\n",
                "alerts:\n  sinks:\n    - {name: a, type: webhook, url: 'https://h/SECRET-TOKEN',"
                " secret: SECRET-TOKEN}\n",
                "alerts:\n  sinks:\n    - {name: a, type: email, smtp_url: 'smtp://h',"
                " password: SECRET-TOKEN, from: a@b, to: [c@d]}\n",
                "alerts:\n  sinks:\n    - {name: a, type: email, url: 'https://SECRET-TOKEN'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'https://h/SECRET-TOKEN'}\n"
                "    - {name: a, type: slack, url: 'https://h/SECRET-TOKEN'}\n",
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: [SECRET-TOKEN]}\n",
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: &x SECRET-TOKEN}\n",
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'SECRET-TOKEN\n",
                "alerts:\n  sinks:\n    - {name: a, type: slack, url: 'https://h/SECRET-TOKEN'}"
                "\n  bogus: 1\n",
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                assert_int_equal(load(t, files[i], &c, &err), -EINVAL);
                assert_null(c);
                assert_non_null(err);
                if (strstr(err, "SECRET") || strstr(err, "TOKEN"))
                        fail_msg("secret in message for file %zu: %s", i, err);
        }
}

static void test_alert_event_names(void **state)
{
        static const char *const names[] = {
                "daemon",      "violation",    "process_stopped", "gpu_lost",
                "nvml_error",  "xid",          "memory",          "temperature",
                "idle_warning", "idle_reclaim", "idle_flag",       "exited_memory",
                "expiry_warning",
        };
        TestDir *t = *state;

        assert_int_equal(ELEMENTSOF(names), _CONFIG_ALERT_MAX);
        assert_int_equal(CONFIG_ALERT_EVENTS_ALL, 0x1fff);
        for (int e = 0; e < _CONFIG_ALERT_MAX; e++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *yaml = NULL;

                assert_string_equal(config_alert_event_to_string((ConfigAlertEvent)e), names[e]);
                assert_int_equal(config_alert_event_from_string(names[e]), e);

                /* Each name in a filter sets exactly its bit. */
                assert_true(asprintf(&yaml,
                                     "alerts:\n  sinks:\n    - {name: a, type: slack, "
                                     "url: 'http://h', events: [%s]}\n",
                                     names[e]) > 0);
                assert_int_equal(load(t, yaml, &c, NULL), 0);
                assert_int_equal(c->alerts.sinks[0].events, UINT32_C(1) << e);
        }
        assert_null(config_alert_event_to_string(_CONFIG_ALERT_MAX));
        assert_null(config_alert_event_to_string((ConfigAlertEvent)-1));
        assert_int_equal(config_alert_event_from_string("Violation"), -EINVAL);
        assert_int_equal(config_alert_event_from_string(""), -EINVAL);
        assert_int_equal(config_alert_event_from_string("violation "), -EINVAL);

        assert_string_equal(config_alert_sink_type_to_string(CONFIG_SINK_WEBHOOK), "webhook");
        assert_string_equal(config_alert_sink_type_to_string(CONFIG_SINK_DINGTALK), "dingtalk");
        assert_string_equal(config_alert_sink_type_to_string(CONFIG_SINK_SLACK), "slack");
        assert_string_equal(config_alert_sink_type_to_string(CONFIG_SINK_EMAIL), "email");
        assert_null(config_alert_sink_type_to_string(_CONFIG_SINK_TYPE_MAX));
}

/* Everything read before an error is freed (run under valgrind or ASan). */
/* ---- The env section ---- */

static void test_env_full(void **state)
{
        TestDir *t = *state;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(load(t,
                              "env:\n"
                              "  backup_schedule: hourly\n"
                              "  backup_keep: 100\n"
                              "  backup_dir: /srv/backups/envs\n"
                              "  conda_exe: /opt/conda/bin/micromamba\n"
                              "  templates_dir: '/srv/gk templates'\n",
                              &c, &err),
                         0);
        assert_null(err);
        assert_int_equal(c->env.backup_interval_usec, USEC_PER_HOUR);
        assert_int_equal(c->env.backup_keep, 100);
        assert_string_equal(c->env.backup_dir, "/srv/backups/envs");
        assert_string_equal(c->env.conda_exe, "/opt/conda/bin/micromamba");
        assert_string_equal(c->env.templates_dir, "/srv/gk templates");
        assert_string_equal(c->state_dir, "/var/lib/gpukeeper");
        assert_int_equal(c->env.trash_retention_usec, 30 * USEC_PER_DAY);
        config_free(TAKE_PTR(c));

        /* trash_retention: a duration, or off (never emptied). */
        assert_int_equal(load(t, "env:\n  trash_retention: 7d\n", &c, &err), 0);
        assert_int_equal(c->env.trash_retention_usec, 7 * USEC_PER_DAY);
        config_free(TAKE_PTR(c));
        assert_int_equal(load(t, "env:\n  trash_retention: \"off\"\n", &c, &err), 0);
        assert_int_equal(c->env.trash_retention_usec, 0);
        config_free(TAKE_PTR(c));
        assert_int_equal(load(t, "env: {trash_retention: off}\n", &c, &err), 0);
        assert_int_equal(c->env.trash_retention_usec, 0);
        config_free(TAKE_PTR(c));

        /* Flow style, a bare command name, the ends of backup_keep's range. */
        assert_int_equal(load(t, "env: {conda_exe: mamba, backup_keep: 1}\n", &c, &err), 0);
        assert_string_equal(c->env.conda_exe, "mamba");
        assert_int_equal(c->env.backup_keep, 1);
        assert_int_equal(c->env.backup_interval_usec, USEC_PER_DAY);
        config_free(TAKE_PTR(c));
        assert_int_equal(load(t, "env: {backup_keep: 10000}\n", &c, &err), 0);
        assert_int_equal(c->env.backup_keep, 10000);
}

/* backup_dir follows state_dir unless given, whichever key comes first. */
static void test_env_backup_dir_default(void **state)
{
        static const struct {
                const char *yaml;
                const char *backup_dir;
        } cases[] = {
                {"", "/var/lib/gpukeeper/env-backups"},
                {"env:\n", "/var/lib/gpukeeper/env-backups"},
                {"state_dir: /srv/gk\n", "/srv/gk/env-backups"},
                {"state_dir: /srv/gk\nenv:\n  backup_keep: 3\n", "/srv/gk/env-backups"},
                {"env:\n  backup_keep: 3\nstate_dir: /srv/gk\n", "/srv/gk/env-backups"},
                {"state_dir: /srv/gk/\n", "/srv/gk/env-backups"},
                {"state_dir: /\n", "/env-backups"},
                {"state_dir: /srv/gk\nenv:\n  backup_dir: /b\n", "/b"},
                {"env:\n  backup_dir: /b\nstate_dir: /srv/gk\n", "/b"},
                {"env:\n  backup_dir: /var/lib/gpukeeper/env-backups\nstate_dir: /x\n",
                 "/var/lib/gpukeeper/env-backups"},
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                assert_int_equal(load(t, cases[i].yaml, &c, &err), 0);
                assert_null(err);
                assert_string_equal(c->env.backup_dir, cases[i].backup_dir);
        }
        assert_string_equal(CONFIG_DEFAULT_ENV_BACKUP_DIR, "/var/lib/gpukeeper/env-backups");
}

static void test_env_schedule(void **state)
{
        static const struct {
                const char *value;
                uint64_t usec;
        } good[] = {
                {"hourly", USEC_PER_HOUR},
                {"daily", USEC_PER_DAY},
                {"weekly", 7 * USEC_PER_DAY},
                {"off", 0},
                {"'off'", 0},
                {"\"daily\"", USEC_PER_DAY},
                {"1m", USEC_PER_MINUTE},
                {"60s", USEC_PER_MINUTE},
                {"12h", 12 * USEC_PER_HOUR},
                {"1h30m", 90 * USEC_PER_MINUTE},
                {"3d", 3 * USEC_PER_DAY},
                {"30d", 30 * USEC_PER_DAY},
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *yaml = NULL, *err = NULL;

                assert_true(asprintf(&yaml, "env:\n  backup_schedule: %s\n", good[i].value) > 0);
                assert_int_equal(load(t, yaml, &c, &err), 0);
                assert_null(err);
                assert_int_equal(c->env.backup_interval_usec, good[i].usec);
        }
}

#define ENV_KNOWN "(known keys in 'env': backup_schedule, backup_keep, backup_dir, conda_exe, " \
                  "templates_dir, trash_retention)"
#define SCHEDULE_WORDS "must be hourly, daily, weekly, off, or a duration (for example 12h)"

static void test_env_errors(void **state)
{
        TestDir *t = *state;

        /* backup_schedule */
        expect_error(t, "env:\n  backup_schedule: Daily\n",
                     "2:20: invalid value 'Daily' for 'env.backup_schedule': " SCHEDULE_WORDS);
        expect_error(t, "env:\n  backup_schedule: monthly\n",
                     "2:20: invalid value 'monthly' for 'env.backup_schedule': "
                     SCHEDULE_WORDS);
        expect_error(t, "env:\n  backup_schedule: ''\n",
                     "2:20: invalid value '' for 'env.backup_schedule': " SCHEDULE_WORDS);
        expect_error(t, "env:\n  backup_schedule: 1 d\n",
                     "2:20: invalid value '1 d' for 'env.backup_schedule': " SCHEDULE_WORDS);
        expect_error(t, "env:\n  backup_schedule: 24\n",
                     "2:20: invalid value '24' for 'env.backup_schedule': a unit is required "
                     "(for example 30s, 5m or 2h)");
        expect_error(t, "env:\n  backup_schedule: 59s\n",
                     "2:20: invalid value '59s' for 'env.backup_schedule': must be between 1m "
                     "and 30d");
        expect_error(t, "env:\n  backup_schedule: 0s\n",
                     "2:20: invalid value '0s' for 'env.backup_schedule': must be between 1m "
                     "and 30d");
        expect_error(t, "env:\n  backup_schedule: 30d1us\n",
                     "2:20: invalid value '30d1us' for 'env.backup_schedule': must be between "
                     "1m and 30d");
        expect_error(t, "env:\n  backup_schedule: 99999999999999999999d\n",
                     "2:20: invalid value '99999999999999999999d' for 'env.backup_schedule': "
                     "too large");
        expect_error(t, "env:\n  backup_schedule:\n",
                     "2:19: value required for 'env.backup_schedule'");
        expect_error(t, "env:\n  backup_schedule: [daily]\n",
                     "2:20: 'env.backup_schedule' must be a single value, not a list");

        /* backup_keep */
        expect_error(t, "env:\n  backup_keep: 0\n",
                     "2:16: invalid value '0' for 'env.backup_keep': must be between 1 and "
                     "10000");
        expect_error(t, "env:\n  backup_keep: 10001\n",
                     "2:16: invalid value '10001' for 'env.backup_keep': must be between 1 "
                     "and 10000");
        expect_error(t, "env:\n  backup_keep: -1\n",
                     "2:16: invalid value '-1' for 'env.backup_keep': not a non-negative "
                     "whole number");
        expect_error(t, "env:\n  backup_keep: 14d\n",
                     "2:16: invalid value '14d' for 'env.backup_keep': not a non-negative "
                     "whole number");
        expect_error(t, "env:\n  backup_keep: 99999999999999999999\n",
                     "2:16: invalid value '99999999999999999999' for 'env.backup_keep': too "
                     "large");

        /* backup_dir, templates_dir */
        expect_error(t, "env:\n  backup_dir: backups\n",
                     "2:15: invalid value 'backups' for 'env.backup_dir': must be an absolute "
                     "path (starting with '/')");
        expect_error(t, "env:\n  backup_dir: ''\n",
                     "2:15: invalid value '' for 'env.backup_dir': must not be empty");
        expect_error(t, "env:\n  backup_dir: \"/b\\nc\"\n",
                     "2:15: invalid value '/b\\x0ac' for 'env.backup_dir': must not contain "
                     "control characters");
        expect_error(t, "env:\n  templates_dir: ./templates\n",
                     "2:18: invalid value './templates' for 'env.templates_dir': must be an "
                     "absolute path (starting with '/')");

        /* trash_retention (issue 17 item 7) */
        expect_error(t, "env:\n  trash_retention: 59m\n",
                     "2:20: invalid value '59m' for 'env.trash_retention': must be between 1h "
                     "and 3650d");
        expect_error(t, "env:\n  trash_retention: 3651d\n",
                     "2:20: invalid value '3651d' for 'env.trash_retention': must be between 1h "
                     "and 3650d");
        expect_error(t, "env:\n  trash_retention: 30\n",
                     "2:20: invalid value '30' for 'env.trash_retention': a unit is required "
                     "(for example 30s, 5m or 2h)");
        expect_error(t, "env:\n  trash_retention: never\n",
                     "2:20: invalid value 'never' for 'env.trash_retention': must be off or a "
                     "duration (for example 30d)");

        /* conda_exe */
        expect_error(t, "env:\n  conda_exe: bin/conda\n",
                     "2:14: invalid value 'bin/conda' for 'env.conda_exe': must be a command "
                     "name (looked up in PATH) or an absolute path");
        expect_error(t, "env:\n  conda_exe: ..\n",
                     "2:14: invalid value '..' for 'env.conda_exe': must be a command name "
                     "(looked up in PATH) or an absolute path");
        expect_error(t, "env:\n  conda_exe: ''\n",
                     "2:14: invalid value '' for 'env.conda_exe': must not be empty");
        expect_error(t, "env:\n  conda_exe: \"conda\\t\"\n",
                     "2:14: invalid value 'conda\\x09' for 'env.conda_exe': must not contain "
                     "control characters");

        /* The section itself. */
        expect_error(t, "env:\n  backup_schedul: daily\n",
                     "2:3: unknown key 'env.backup_schedul' " ENV_KNOWN);
        expect_error(t, "env:\n  backup_keep: 3\n  backup_keep: 4\n",
                     "3:3: duplicate key 'env.backup_keep' (first given on line 2)");
        expect_error(t, "env: daily\n",
                     "1:6: 'env' must be a section (a mapping of keys), not a single value");
        expect_error(t, "env: [a]\n",
                     "1:6: 'env' must be a section (a mapping of keys), not a list");
        expect_error(t, "env: {}\nenv: {}\n", "2:1: duplicate key 'env' (first given on line 1)");
}

static void test_partial_load_frees(void **state)
{
        TestDir *t = *state;

        expect_error(t,
                     "enforcement:\n  exempt:\n    users: [a, b]\n    executables: [/x, y]\n",
                     "4:23: invalid value 'y' for 'enforcement.exempt.executables[1]': must be "
                     "an absolute path (starting with '/')");
        expect_error(t,
                     "alerts:\n  sinks:\n    - name: mail\n      type: email\n"
                     "      smtp_url: smtp://h\n      username: u\n      password: p\n"
                     "      from: a@b\n      to: [c@d, e]\n",
                     "9:17: invalid value 'e' for 'alerts.sinks[0].to[1]': must be an email "
                     "address (user@host, without a display name)");
        expect_error(t,
                     "alerts:\n  sinks:\n    - {name: d, type: dingtalk, url: 'https://h',"
                     " secret: s}\n    - {name: d, type: slack, url: 'https://h'}\n",
                     "4:14: duplicate sink name 'd' in 'alerts.sinks[1]' (first given in "
                     "'alerts.sinks[0]')");
}

/* ---- The generic loader with a private table ---------------------------- */

typedef struct {
        char *path;
        uint64_t size;
        struct {
                bool read_only;
        } options;
} TestMount;

typedef struct {
        uint64_t cache_size;
        uint64_t workers;
        bool verbose;
        struct {
                char *dir;
                uint64_t quota;
                struct {
                        uint64_t timeout_usec;
                } retry;
        } store;
        TestMount *mounts;
        size_t n_mounts;
} TestConf;

static void test_conf_done(TestConf *conf)
{
        free(conf->store.dir);
        for (size_t i = 0; i < conf->n_mounts; i++)
                free(conf->mounts[i].path);
        free(conf->mounts);
        *conf = (TestConf){0};
}

/* Offsets relative to one TestMount, also in its nested section. */
static const ConfigKey test_mount_options_table[] = {
        CONFIG_SCALAR("read_only", config_parse_bool, TestMount, options.read_only, 0, 0),
        CONFIG_END,
};

static const ConfigKey test_mount_table[] = {
        CONFIG_SCALAR_REQUIRED("path", config_parse_absolute_path, TestMount, path, 0, 0),
        CONFIG_SCALAR("size", config_parse_size, TestMount, size, 0, 0),
        CONFIG_SECTION("options", test_mount_options_table),
        CONFIG_END,
};

static const ConfigKey test_retry_table[] = {
        CONFIG_SCALAR("timeout", config_parse_duration, TestConf, store.retry.timeout_usec, 0, 0),
        CONFIG_END,
};

static const ConfigKey test_store_table[] = {
        CONFIG_SCALAR("dir", config_parse_absolute_path, TestConf, store.dir, 0, 0),
        CONFIG_SCALAR("quota", config_parse_size, TestConf, store.quota, UINT64_C(1) << 20,
                      UINT64_C(1) << 40),
        CONFIG_SECTION("retry", test_retry_table),
        CONFIG_END,
};

static const ConfigKey test_table[] = {
        CONFIG_SCALAR("cache_size", config_parse_size, TestConf, cache_size, 0, 0),
        CONFIG_SCALAR("workers", config_parse_uint64, TestConf, workers, 1, 64),
        CONFIG_SCALAR("verbose", config_parse_bool, TestConf, verbose, 0, 0),
        CONFIG_SECTION("store", test_store_table),
        CONFIG_LIST("mounts", test_mount_table, TestConf, mounts, n_mounts, TestMount, 3),
        CONFIG_END,
};

static int parse_test(TestDir *t, const char *yaml, TestConf *conf, char **err)
{
        write_bytes(t->file, yaml, strlen(yaml));
        return config_parse_yaml(t->file, test_table, conf, err);
}

static void expect_table_error(TestDir *t, const char *yaml, const char *want)
{
        TestConf conf = {0};
        _cleanup_free_ char *err = NULL, *full = NULL;

        assert_int_equal(parse_test(t, yaml, &conf, &err), -EINVAL);
        test_conf_done(&conf);
        assert_non_null(err);
        assert_true(asprintf(&full, "%s:%s", t->file, want) > 0);
        assert_string_equal(err, full);
}

static void test_table_nested_sections(void **state)
{
        TestDir *t = *state;
        TestConf conf = {.store.dir = strdup("/default")};

        assert_non_null(conf.store.dir);
        assert_int_equal(parse_test(t,
                                    "cache_size: 512MiB\n"
                                    "workers: 8\n"
                                    "verbose: yes\n"
                                    "store:\n"
                                    "  dir: /srv/store\n"
                                    "  quota: 10G\n"
                                    "  retry:\n"
                                    "    timeout: 1m30s\n",
                                    &conf, NULL),
                         0);
        assert_int_equal(conf.cache_size, UINT64_C(512) << 20);
        assert_int_equal(conf.workers, 8);
        assert_true(conf.verbose);
        assert_string_equal(conf.store.dir, "/srv/store");
        assert_int_equal(conf.store.quota, UINT64_C(10) << 30);
        assert_int_equal(conf.store.retry.timeout_usec, 90 * USEC_PER_SEC);

        /* Keys left out keep their values; an empty section is allowed. */
        conf.verbose = false;
        assert_int_equal(parse_test(t, "store:\n  # nothing yet\nworkers: 2\n", &conf, NULL), 0);
        assert_string_equal(conf.store.dir, "/srv/store");
        assert_int_equal(conf.workers, 2);
        assert_int_equal(parse_test(t, "store: {}\n", &conf, NULL), 0);
        assert_int_equal(parse_test(t, "store: {retry: {timeout: 5s}}\n", &conf, NULL), 0);
        assert_int_equal(conf.store.retry.timeout_usec, 5 * USEC_PER_SEC);
        free(conf.store.dir);
}

static void test_table_sizes_numbers_bools(void **state)
{
        static const struct {
                const char *value;
                uint64_t bytes;
        } sizes[] = {
                {"0", 0},
                {"1024", 1024},
                {"4K", 4096},
                {"512M", UINT64_C(512) << 20},
                {"10G", UINT64_C(10) << 30},
                {"10GB", UINT64_C(10) << 30},
                {"1T", UINT64_C(1) << 40},
        };
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                _cleanup_free_ char *yaml = NULL;
                TestConf conf = {0};

                assert_true(asprintf(&yaml, "cache_size: %s\n", sizes[i].value) > 0);
                assert_int_equal(parse_test(t, yaml, &conf, NULL), 0);
                assert_int_equal(conf.cache_size, sizes[i].bytes);
        }

        expect_table_error(t, "cache_size: 10g\n",
                           "1:13: invalid value '10g' for 'cache_size': not a size (write bytes "
                           "or a number with K, M, G, T, P or E: 512M, 10G)");
        expect_table_error(t, "cache_size: 16E\n",
                           "1:13: invalid value '16E' for 'cache_size': too large");
        expect_table_error(t, "store:\n  quota: 1023K\n",
                           "2:10: invalid value '1023K' for 'store.quota': must be between "
                           "1048576 and 1099511627776 bytes");
        expect_table_error(t, "store:\n  quota: 1025G\n",
                           "2:10: invalid value '1025G' for 'store.quota': must be between "
                           "1048576 and 1099511627776 bytes");
        expect_table_error(t, "workers: 0\n",
                           "1:10: invalid value '0' for 'workers': must be between 1 and 64");
        expect_table_error(t, "workers: 65\n",
                           "1:10: invalid value '65' for 'workers': must be between 1 and 64");
        expect_table_error(t, "workers: -1\n",
                           "1:10: invalid value '-1' for 'workers': not a non-negative whole "
                           "number");
        expect_table_error(t, "workers: 99999999999999999999\n",
                           "1:10: invalid value '99999999999999999999' for 'workers': too large");
        expect_table_error(t, "verbose: maybe\n",
                           "1:10: invalid value 'maybe' for 'verbose': must be true or false (or "
                           "yes/no, on/off, 1/0)");
        {
                TestConf conf = {0};

                assert_int_equal(parse_test(t, "verbose: On\n", &conf, NULL), 0);
                assert_true(conf.verbose);
        }
}

static void test_table_nested_errors(void **state)
{
        TestDir *t = *state;

        expect_table_error(t, "store:\n  dir: /a\n  bogus: 1\n",
                           "3:3: unknown key 'store.bogus' (known keys in 'store': dir, quota, "
                           "retry)");
        expect_table_error(t, "store:\n  retry:\n    timeout: 1s\n    tries: 3\n",
                           "4:5: unknown key 'store.retry.tries' (known keys in 'store.retry': "
                           "timeout)");
        expect_table_error(t, "store:\n  dir: /a\n  dir: /b\n",
                           "3:3: duplicate key 'store.dir' (first given on line 2)");
        expect_table_error(t, "store:\n  dir: /a\nstore:\n  dir: /b\n",
                           "3:1: duplicate key 'store' (first given on line 1)");
        /* The same name in different sections is not a duplicate. */
        {
                TestConf conf = {0};

                assert_int_equal(parse_test(t, "store: {retry: {timeout: 1s}}\n", &conf, NULL), 0);
        }
        expect_table_error(t, "store: /srv\n",
                           "1:8: 'store' must be a section (a mapping of keys), not a single "
                           "value");
        expect_table_error(t, "store:\n  - dir: /a\n",
                           "2:3: 'store' must be a section (a mapping of keys), not a list");
        expect_table_error(t, "store:\n  retry: 3\n",
                           "2:10: 'store.retry' must be a section (a mapping of keys), not a "
                           "single value");
        expect_table_error(t, "store:\n  dir: [/a]\n",
                           "2:8: 'store.dir' must be a single value, not a list");
        expect_table_error(t, "store:\n  dir:\n",
                           "2:7: value required for 'store.dir'");
        expect_table_error(t, "store:\n  retry:\n    timeout: 10\n",
                           "3:14: invalid value '10' for 'store.retry.timeout': a unit is "
                           "required (for example 30s, 5m or 2h)");
        expect_table_error(t, "store:\n  dir: &d /a\n",
                           "2:8: 'store.dir': anchors (&d) are not allowed");
        expect_table_error(t, "bogus: 1\n",
                           "1:1: unknown key 'bogus' (known keys: cache_size, workers, verbose, "
                           "store, mounts)");
}

static void test_table_lists(void **state)
{
        TestDir *t = *state;
        TestConf conf = {0};

        assert_int_equal(parse_test(t,
                                    "mounts:\n"
                                    "  - path: /a\n"
                                    "    size: 1K\n"
                                    "    options:\n"
                                    "      read_only: yes\n"
                                    "  - {path: /b}\n"
                                    "workers: 2\n",
                                    &conf, NULL),
                         0);
        assert_int_equal(conf.n_mounts, 2);
        assert_string_equal(conf.mounts[0].path, "/a");
        assert_int_equal(conf.mounts[0].size, 1024);
        assert_true(conf.mounts[0].options.read_only);
        /* Items are zeroed before they are read. */
        assert_string_equal(conf.mounts[1].path, "/b");
        assert_int_equal(conf.mounts[1].size, 0);
        assert_false(conf.mounts[1].options.read_only);
        test_conf_done(&conf);

        /* Exactly max_items. */
        assert_int_equal(parse_test(t, "mounts: [{path: /a}, {path: /b}, {path: /c}]\n", &conf,
                                    NULL),
                         0);
        assert_int_equal(conf.n_mounts, 3);
        test_conf_done(&conf);

        expect_table_error(t, "mounts: [{path: /a}, {path: /b}, {path: /c}, {path: /d}]\n",
                           "1:46: too many items in 'mounts' (at most 3)");
        expect_table_error(t, "mounts: [{path: /a}, {path: /b}, {path: /c}, 4]\n",
                           "1:46: too many items in 'mounts' (at most 3)");
        expect_table_error(t,
                           "mounts:\n  - path: /a\n  - path: /b\n    options:\n"
                           "      read_only: yes\n      bogus: 1\n",
                           "6:7: unknown key 'mounts[1].options.bogus' (known keys in "
                           "'mounts[1].options': read_only)");
        expect_table_error(t, "mounts:\n  - path: /a\n  - path: /b\n    options: []\n",
                           "4:14: 'mounts[1].options' must be a section (a mapping of keys), not "
                           "a list");
        expect_table_error(t, "mounts:\n  - path: a\n",
                           "2:11: invalid value 'a' for 'mounts[0].path': must be an absolute "
                           "path (starting with '/')");
        expect_table_error(t, "mounts:\n  - size: 1K\n",
                           "2:5: missing required key 'mounts[0].path'");
        expect_table_error(t, "mounts:\n  - options: {read_only: no}\n",
                           "2:5: missing required key 'mounts[0].path'");
        expect_table_error(t, "mounts: {path: /a}\n",
                           "1:9: 'mounts' must be a list (of mappings), not a mapping");
        expect_table_error(t, "mounts:\n  - path: /a\nmounts:\n  - path: /b\n",
                           "3:1: duplicate key 'mounts' (first given on line 1)");
        expect_table_error(t, "mounts:\n  - - path: /a\n",
                           "2:5: 'mounts[0]' must be a mapping of keys, not a list");
        expect_table_error(t, "mounts: [*m]\n", "1:10: 'mounts': aliases (*m) are not allowed");

        /* What was read before a failure stays in the target, so its owner frees it. */
        assert_int_equal(parse_test(t, "mounts:\n  - path: /a\n  - path: /b\n    bogus: 1\n",
                                    &conf, NULL),
                         -EINVAL);
        assert_int_equal(conf.n_mounts, 2);
        assert_string_equal(conf.mounts[0].path, "/a");
        assert_string_equal(conf.mounts[1].path, "/b");
        test_conf_done(&conf);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                T(test_full_file),
                T(test_packaged_example),
                T(test_onboarding_section),
                T(test_flow_style_and_other_values),
                T(test_empty_files),
                T(test_missing_file),
                T(test_not_regular_file),
                T(test_size_limit),
                T(test_nul_bytes),
                T(test_unknown_keys),
                T(test_bom),
                T(test_history_section),
                T(test_slurm_section),
                T(test_mig_section),
                T(test_limits_section),
                T(test_sharing_section),
                T(test_duplicate_keys),
                T(test_wrong_types),
                T(test_null_values),
                T(test_invalid_values),
                T(test_durations),
                T(test_yaml_syntax_errors),
                T(test_top_level_not_mapping),
                T(test_multiple_documents),
                T(test_anchors_aliases_tags),
                T(test_error_optional),
                T(test_policy_full),
                T(test_policy_ranges),
                T(test_policy_empty_forms),
                T(test_policy_flow_style),
                T(test_policy_max_groups),
                T(test_policy_limits_selection),
                T(test_policy_structure_errors),
                T(test_policy_value_errors),
                T(test_policy_check_errors),
                T(test_enforcement_idle_alerts_full),
                T(test_enforcement_idle_alerts_ranges),
                T(test_empty_sections_and_lists),
                T(test_memory_fraction_values),
                T(test_enforcement_errors),
                T(test_exempt_list_limit),
                T(test_idle_errors),
                T(test_alerts_errors),
                T(test_alert_list_limits),
                T(test_secrets_never_in_errors),
                T(test_alert_event_names),
                T(test_env_full),
                T(test_env_backup_dir_default),
                T(test_env_schedule),
                T(test_env_errors),
                T(test_partial_load_frees),
                T(test_table_nested_sections),
                T(test_table_sizes_numbers_bools),
                T(test_table_nested_errors),
                T(test_table_lists),
        };
#undef T

        return cmocka_run_group_tests_name("test-config", tests, NULL, NULL);
}
