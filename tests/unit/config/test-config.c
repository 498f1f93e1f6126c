/* Tests of the daemon configuration loader (src/daemon/config.c) on real
 * files in a temporary directory: defaults, a full valid file, and every
 * kind of error, each checked against the exact one-line message (and so the
 * exact line, column and key). A private key table exercises the parts of
 * the table-driven loader that gpukeeperd's own table does not use yet:
 * nested sections, sizes, integers and booleans. */
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

#define KNOWN "(known keys: socket, state_dir, nvml_library, sample_interval, log_level)"

static void assert_defaults(const Config *c)
{
        assert_string_equal(c->socket_path, "/run/gpukeeper/gpukeeper.sock");
        assert_string_equal(c->state_dir, "/var/lib/gpukeeper");
        assert_string_equal(c->nvml_library, "libnvidia-ml.so.1");
        assert_int_equal(c->sample_interval_usec, 2 * USEC_PER_SEC);
        assert_int_equal(c->log_level, LOG_LEVEL_INFO);
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

/* The example shipped in packaging/ must load and equal the defaults. */
static void test_packaged_example(void **state)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(config_load(GK_SOURCE_ROOT "/packaging/gpukeeper.yaml", &c, &err), 0);
        assert_null(err);
        assert_defaults(c);
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
        static const char *const reserved[] = {"http",   "policy",  "enforcement", "idle",
                                               "alerts", "history", "env"};
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

/* ---- The generic loader with a private table ---------------------------- */

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
} TestConf;

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
        free(conf.store.dir);
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
                           "store)");
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
                T(test_table_nested_sections),
                T(test_table_sizes_numbers_bools),
                T(test_table_nested_errors),
        };
#undef T

        return cmocka_run_group_tests_name("test-config", tests, NULL, NULL);
}
