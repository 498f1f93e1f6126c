/* Tests of the daemon configuration loader (src/daemon/config.c) on real
 * files in a temporary directory: defaults, a full valid file, and every
 * kind of error, each checked against the exact one-line message (and so the
 * exact line, column and key). The policy section is tested for its values,
 * the group merging and config_policy_limits(). A private key table
 * exercises the parts of the table-driven loader that gpukeeperd's own table
 * does not use yet: sections nested in sections and in list items, booleans,
 * and the generic list rules. */
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
#include "daemon/config.h"
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

/* Assert that `yaml` fails with -EINVAL and exactly "FILE:" + `want`, and
 * that neither the Config pointer is touched. */
static void expect_error_bytes(TestDir *t, const char *yaml, size_t n, const char *want)
{
        Config *sentinel = (Config *)&sentinel, *c = sentinel;
        _cleanup_free_ char *err = NULL, *full = NULL;

        write_bytes(t->file, yaml, n);
        assert_int_equal(config_load(t->file, &c, &err), -EINVAL);
        assert_ptr_equal(c, sentinel);
        assert_non_null(err);
        assert_true(asprintf(&full, "%s:%s", t->file, want) > 0);
        assert_string_equal(err, full);
        assert_null(strchr(err, '\n'));
}

static void expect_error(TestDir *t, const char *yaml, const char *want)
{
        expect_error_bytes(t, yaml, strlen(yaml), want);
}

#define KNOWN                                                                                      \
        "(known keys: socket, state_dir, nvml_library, sample_interval, log_level, policy)"

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

static void assert_defaults(const Config *c)
{
        assert_string_equal(c->socket_path, "/run/gpukeeper/gpukeeper.sock");
        assert_string_equal(c->state_dir, "/var/lib/gpukeeper");
        assert_string_equal(c->nvml_library, "libnvidia-ml.so.1");
        assert_int_equal(c->sample_interval_usec, 2 * USEC_PER_SEC);
        assert_int_equal(c->log_level, LOG_LEVEL_INFO);
        assert_policy_defaults(c);
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
        /* Long names are cut to 64 bytes in the message. */
        expect_error(t,
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1\n",
                     "1:1: unknown key '"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxx...' " KNOWN);
        /* Complex keys. */
        expect_error(t, "? [a, b]\n: 1\n", "1:3: keys must be plain names, not a list");
        expect_error(t, "? {a: b}\n: 1\n", "1:3: keys must be plain names, not a mapping");
}

static void test_reserved_sections(void **state)
{
        static const char *const reserved[] = {"http",   "enforcement", "idle",
                                               "alerts", "history",     "env"};
        TestDir *t = *state;

        for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
                _cleanup_free_ char *yaml = NULL, *want = NULL;

                assert_true(asprintf(&yaml, "log_level: info\n%s:\n  foo: 1\n", reserved[i]) > 0);
                assert_true(asprintf(&want,
                                     "2:1: section '%s' is not supported by this version of "
                                     "gpukeeperd",
                                     reserved[i]) > 0);
                expect_error(t, yaml, want);
        }
        /* Whatever the value looks like. */
        expect_error(t, "alerts: off\n",
                     "1:1: section 'alerts' is not supported by this version of gpukeeperd");
        expect_error(t, "alerts:\n",
                     "1:1: section 'alerts' is not supported by this version of gpukeeperd");
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
                     "1:1: unknown key 'a' " KNOWN);
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
        "or '-', at most 32 characters"

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
                     "groups)");
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
        expect_error(t, "policy:\n  groups:\n    - group: abcdefghijklmnopqrstuvwxyz0123456\n",
                     "3:14: invalid value 'abcdefghijklmnopqrstuvwxyz0123456' for "
                     "'policy.groups[0].group': " GROUP_NAME_RULE);
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
        /* A later key of the file is not read once the policy is found wrong. */
        expect_error(t, "policy:\n  max_duration: 1h\nbogus: 1\n",
                     "2:17: 'policy.max_duration' (1h) must not be shorter than default_duration "
                     "(4h, the default)");

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
        CONFIG_UNSUPPORTED("future"),
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
        expect_table_error(t, "future: {}\n",
                           "1:1: section 'future' is not supported by this version of gpukeeperd");
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
                T(test_flow_style_and_other_values),
                T(test_empty_files),
                T(test_missing_file),
                T(test_not_regular_file),
                T(test_size_limit),
                T(test_nul_bytes),
                T(test_unknown_keys),
                T(test_reserved_sections),
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
                T(test_table_nested_sections),
                T(test_table_sizes_numbers_bools),
                T(test_table_nested_errors),
                T(test_table_lists),
        };
#undef T

        return cmocka_run_group_tests_name("test-config", tests, NULL, NULL);
}
