/* Unit tests of the conda environment library (src/env/) against homes built
 * in a temp dir in conda's real on-disk layout: conda-meta records named
 * name-version-build.json with channel URLs, files and paths_data; history
 * files with several blocks in all three spec syntaxes, including removals;
 * site-packages with dist-info / egg-info of pip packages; files hard-linked
 * from a package cache. The fake home belongs to the current uid; the
 * setuid paths are exercised by the integration tests with real users. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <yaml.h>

#include "basic/time-util.h"
#include "env/env.h"
#include "env/env-internal.h"
#include "env/kernel.h"

#define DAY_USEC (86400 * USEC_PER_SEC)

typedef struct Fixture {
        char root[64]; /* temp dir: root/home is the fake home */
        char home[128];
        EnvUser user;
        EnvOptions opts;
        char condarc[192]; /* a "system" .condarc that does not exist */
} Fixture;

/* ---- building files ---- */

static void mkdir_p(const char *fmt, ...)
{
        char path[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(path, sizeof path, fmt, ap);
        va_end(ap);
        for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                mkdir(path, 0755);
                *p = '/';
        }
        mkdir(path, 0755);
}

static void write_file(const char *path, const char *data)
{
        char dir[1024];
        char *slash;
        FILE *f;

        snprintf(dir, sizeof dir, "%s", path);
        slash = strrchr(dir, '/');
        *slash = '\0';
        mkdir_p("%s", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(data, f);
        assert_int_equal(fclose(f), 0);
}

static void write_filef(const char *data, const char *fmt, ...)
{
        char path[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(path, sizeof path, fmt, ap);
        va_end(ap);
        write_file(path, data);
}

/* A file of `size` bytes of real data (so it has blocks). */
static void write_blob(const char *path, size_t size)
{
        char *buf = malloc(size);

        assert_non_null(buf);
        for (size_t i = 0; i < size; i++)
                buf[i] = (char)('a' + i % 26);
        buf[size - 1] = '\0';
        write_file(path, buf);
        free(buf);
}

/* conda-meta/<name>-<version>-<build>.json as conda writes it. files are
 * relative to the prefix; the files are also created in the env when
 * `create` is set. */
static void make_record(const char *prefix, const char *name, const char *version,
                        const char *build, const char *channel_url, const char *const *files,
                        bool create)
{
        char path[1024];
        json_t *jfiles = json_array(), *paths = json_array(), *rec;
        char *text;

        for (size_t i = 0; files && files[i]; i++) {
                json_array_append_new(jfiles, json_string(files[i]));
                json_array_append_new(paths,
                                      json_pack("{s:s, s:s, s:s, s:i}", "_path", files[i], "path_type",
                                                "hardlink", "sha256",
                                                "9f2d9a6e4b0c2a1f3e5d7c9b8a6f4e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f",
                                                "size_in_bytes", 1234));
                if (create) {
                        snprintf(path, sizeof path, "%s/%s", prefix, files[i]);
                        write_file(path, "x\n");
                }
        }
        rec = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:[s], s:o, s:{s:i, s:o}, s:s, s:i, s:I}",
                        "name", name, "version", version, "build", build, "build_number", 0,
                        "channel", channel_url, "subdir", "linux-64", "fn", "pkg.conda", "url",
                        "https://conda.anaconda.org/conda-forge/linux-64/pkg.conda", "depends",
                        "libgcc-ng >=12", "files", jfiles, "paths_data", "paths_version", 1, "paths",
                        paths, "requested_spec", "None", "size", 123456, "timestamp",
                        (json_int_t)1700000000000);
        assert_non_null(rec);
        text = json_dumps(rec, JSON_INDENT(1));
        snprintf(path, sizeof path, "%s/conda-meta/%s-%s-%s.json", prefix, name, version, build);
        write_file(path, text);
        free(text);
        json_decref(rec);
}

static void set_python_atime(const char *prefix, uint64_t usec)
{
        char path[1024];
        struct timespec ts[2] = {
                { .tv_sec = (time_t)(usec / USEC_PER_SEC) },
                { .tv_sec = (time_t)(usec / USEC_PER_SEC) },
        };

        snprintf(path, sizeof path, "%s/bin/python3.11", prefix);
        write_file(path, "#!binary\n");
        snprintf(path, sizeof path, "%s/bin/python", prefix);
        unlink(path);
        assert_int_equal(symlink("python3.11", path), 0);
        snprintf(path, sizeof path, "%s/bin/python3.11", prefix);
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static const char ML_HISTORY[] =
        "==> 2026-01-05 10:00:00 <==\n"
        "# cmd: /home/alice/miniconda3/bin/conda create -n ml python=3.11\n"
        "# conda version: 24.1.2\n"
        "+conda-forge/linux-64::python-3.11.8-hab00c5b_0_cpython\n"
        "# update specs: ['python=3.11']\n"
        "==> 2026-01-06 11:00:00 <==\n"
        "# cmd: /home/alice/miniconda3/bin/conda install numpy requests\n"
        "# conda version: 24.1.2\n"
        "+conda-forge/linux-64::numpy-1.26.4-py311h64a7726_0\n"
        "+defaults/linux-64::requests-2.31.0-py311h06a4308_1\n"
        "# update specs: ['numpy', 'requests']\n"
        "==> 2026-01-07 12:00:00 <==\n"
        "# cmd: /home/alice/miniconda3/bin/conda remove requests\n"
        "# conda version: 24.1.2\n"
        "-defaults/linux-64::requests-2.31.0-py311h06a4308_1\n"
        "# remove specs: ['requests']\n"
        "==> 2026-01-08 09:30:00 <==\n"
        "# cmd: micromamba install -p /home/alice/miniconda3/envs/ml pytorch=2.3 cuda-version=12.1\n"
        "+pytorch/linux-64::pytorch-2.3.1-py3.11_cuda12.1_cudnn8.9.2_0\n"
        "+nvidia/noarch::cuda-version-12.1-h1d6eff3_3\n"
        "# update specs: [\"pytorch=2.3\", \"cuda-version=12.1\"]\n"
        "==> 2026-01-09 08:00:00 <==\n"
        "# cmd: conda install pip scipy\n"
        "# install specs: pip,scipy >=1.0,<2.0\n";

/* The "ml" env: the realistic one. */
static void build_ml(const Fixture *fx)
{
        char prefix[512], pkg[512], a[1024], b[1024];
        const char *numpy_files[] = {
                "lib/python3.11/site-packages/numpy/__init__.py",
                "lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA",
                "lib/python3.11/site-packages/numpy-1.26.4.dist-info/RECORD",
                NULL,
        };
        const char *python_files[] = { "bin/python3.11", "lib/python3.11/os.py", NULL };
        const char *pip_files[] = { "lib/python3.11/site-packages/pip-24.0.dist-info/METADATA", NULL };

        snprintf(prefix, sizeof prefix, "%s/miniconda3/envs/ml", fx->home);
        mkdir_p("%s/conda-meta", prefix);
        make_record(prefix, "python", "3.11.8", "hab00c5b_0_cpython",
                    "https://conda.anaconda.org/conda-forge/linux-64", python_files, true);
        make_record(prefix, "numpy", "1.26.4", "py311h64a7726_0",
                    "https://conda.anaconda.org/conda-forge/linux-64", numpy_files, false);
        make_record(prefix, "pip", "24.0", "pyhd8ed1ab_0", "https://conda.anaconda.org/conda-forge/noarch",
                    pip_files, true);
        make_record(prefix, "pytorch", "2.3.1", "py3.11_cuda12.1_cudnn8.9.2_0",
                    "https://conda.anaconda.org/pytorch/linux-64", NULL, false);
        make_record(prefix, "cuda-version", "12.1", "h1d6eff3_3",
                    "https://conda.anaconda.org/nvidia/noarch", NULL, false);
        /* A record whose content does not match its name: skipped, reported. */
        snprintf(a, sizeof a, "%s/conda-meta/bogus-1.0-0.json", prefix);
        write_file(a, "{\"name\": \"other\", \"version\": \"1.0\", \"build\": \"0\"}\n");
        snprintf(a, sizeof a, "%s/conda-meta/history", prefix);
        write_file(a, ML_HISTORY);

        /* numpy's files are hard links into the package cache, as conda makes them. */
        snprintf(pkg, sizeof pkg, "%s/miniconda3/pkgs/numpy-1.26.4-py311h64a7726_0", fx->home);
        write_filef("{\"name\": \"numpy\"}\n", "%s/info/index.json", pkg);
        snprintf(a, sizeof a, "%s/lib/python3.11/site-packages/numpy/core.so", pkg);
        write_blob(a, 64 * 1024);
        snprintf(a, sizeof a, "%s/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA", pkg);
        write_file(a, "Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n\nNumPy\n");
        mkdir_p("%s/lib/python3.11/site-packages/numpy", prefix);
        mkdir_p("%s/lib/python3.11/site-packages/numpy-1.26.4.dist-info", prefix);
        snprintf(a, sizeof a, "%s/lib/python3.11/site-packages/numpy/core.so", pkg);
        snprintf(b, sizeof b, "%s/lib/python3.11/site-packages/numpy/core.so", prefix);
        assert_int_equal(link(a, b), 0);
        snprintf(a, sizeof a, "%s/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA", pkg);
        snprintf(b, sizeof b, "%s/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA", prefix);
        assert_int_equal(link(a, b), 0);

        /* pip packages: not claimed by any record. */
        write_filef("Metadata-Version: 2.1\nName: requests_oauthlib\nVersion: 1.3.1\n\nName: decoy\n",
                    "%s/lib/python3.11/site-packages/requests_oauthlib-1.3.1.dist-info/METADATA", prefix);
        write_filef("Metadata-Version: 2.1\r\nName: Flask\r\nVersion: 3.0.0\r\n\r\n",
                    "%s/lib/python3.11/site-packages/Flask-3.0.0.dist-info/METADATA", prefix);
        write_filef("Metadata-Version: 1.0\nName: Old.Pkg\nVersion: 0.1\n",
                    "%s/lib/python3.11/site-packages/Old.Pkg-0.1-py3.11.egg-info", prefix);
        write_filef("Metadata-Version: 2.1\nName: pip\nVersion: 24.0\n",
                    "%s/lib/python3.11/site-packages/pip-24.0.dist-info/METADATA", prefix);

        /* A symlink out to /etc inside the env: never followed. */
        snprintf(a, sizeof a, "%s/etc-link", prefix);
        assert_int_equal(symlink("/etc", a), 0);

        set_python_atime(prefix, now_usec(CLOCK_REALTIME) - 300 * DAY_USEC);
        snprintf(a, sizeof a, "%s/conda-meta/gpukeeper-last-activated", prefix);
        snprintf(b, sizeof b, "%llu\n",
                 (unsigned long long)(now_usec(CLOCK_REALTIME) / USEC_PER_SEC - 86400));
        write_file(a, b);
}

/* A small env: python only, created by an old-format history. */
static void build_small(const char *prefix, uint64_t python_atime_usec)
{
        char a[PATH_MAX];
        const char *python_files[] = { "bin/python3.11", NULL };
        int k;

        mkdir_p("%s/conda-meta", prefix);
        make_record(prefix, "python", "3.11.8", "hab00c5b_0_cpython",
                    "https://repo.anaconda.com/pkgs/main/linux-64", python_files, true);
        k = snprintf(a, sizeof a, "%s/conda-meta/history", prefix);
        assert_true(k > 0 && (size_t)k < sizeof a);
        write_file(a, "==> 2025-03-01 08:00:00 <==\n# cmd: conda create -p x python\n"
                      "+defaults/linux-64::python-3.11.8-hab00c5b_0_cpython\n"
                      "# update specs: ['python']\n");
        if (python_atime_usec)
                set_python_atime(prefix, python_atime_usec);
}

static int fixture_setup(void **state)
{
        Fixture *fx = calloc(1, sizeof(Fixture));
        char a[1024], b[1024];
        uint64_t now = now_usec(CLOCK_REALTIME);

        assert_non_null(fx);
        snprintf(fx->root, sizeof fx->root, "/tmp/gk-test-env-XXXXXX");
        assert_non_null(mkdtemp(fx->root));
        snprintf(fx->home, sizeof fx->home, "%s/home", fx->root);
        mkdir_p("%s", fx->home);
        snprintf(fx->condarc, sizeof fx->condarc, "%s/etc-conda-condarc", fx->root);
        fx->opts.system_condarc = fx->condarc;
        assert_int_equal(env_user_make(getuid(), getgid(), "tester", fx->home, &fx->user), 0);

        /* miniconda3 root with its base env */
        snprintf(a, sizeof a, "%s/miniconda3", fx->home);
        build_small(a, now);
        mkdir_p("%s/miniconda3/condabin", fx->home);
        build_ml(fx);
        /* micromamba root (no base) with one env */
        snprintf(a, sizeof a, "%s/micromamba/envs/mm", fx->home);
        build_small(a, now);
        /* ~/.conda/envs: an old one, a busy one, a symlink to /etc, a non-env dir */
        snprintf(a, sizeof a, "%s/.conda/envs/old", fx->home);
        build_small(a, now - 200 * DAY_USEC);
        snprintf(a, sizeof a, "%s/.conda/envs/busy", fx->home);
        build_small(a, now - 200 * DAY_USEC);
        snprintf(a, sizeof a, "%s/.conda/envs/evil", fx->home);
        assert_int_equal(symlink("/etc", a), 0);
        mkdir_p("%s/.conda/envs/not-an-env/bin", fx->home);
        /* .condarc envs_dirs (with $HOME and ~) and channels */
        write_filef("envs_dirs:\n  - $HOME/work/envs\n  - ~/work/envs/\nchannels:\n  - conda-forge\n"
                    "auto_activate_base: false\n",
                    "%s/.condarc", fx->home);
        snprintf(a, sizeof a, "%s/work/envs/proj", fx->home);
        build_small(a, 0);
        /* environments.txt: duplicates, a gone path, a blank line */
        snprintf(b, sizeof b,
                 "%s/miniconda3\n%s/miniconda3/envs/ml\n\n%s/.conda/envs/old/\n%s/gone-env\n", fx->home,
                 fx->home, fx->home, fx->home);
        snprintf(a, sizeof a, "%s/.conda/environments.txt", fx->home);
        write_file(a, b);
        *state = fx;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path) < 0 ? 0 : 0;
}

static int fixture_teardown(void **state)
{
        Fixture *fx = *state;

        nftw(fx->root, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
        env_user_done(&fx->user);
        free(fx);
        return 0;
}

static const EnvInfo *find_env(const EnvList *l, const char *name)
{
        for (size_t i = 0; i < l->n_envs; i++)
                if (strcmp(l->envs[i]->name, name) == 0)
                        return l->envs[i];
        return NULL;
}

/* ---- pure parts ---- */

static void test_channel_canonical(void **state)
{
        static const char *const cases[][2] = {
                { "https://conda.anaconda.org/conda-forge/linux-64", "conda-forge" },
                { "https://conda.anaconda.org/conda-forge/noarch/", "conda-forge" },
                { "https://conda.anaconda.org/pytorch", "pytorch" },
                { "https://conda.anaconda.org/conda-forge/label/dev/linux-64", "conda-forge/label/dev" },
                { "https://conda.anaconda.org/t/tk-123/private/linux-64", "private" },
                { "https://repo.anaconda.com/pkgs/main/linux-64", "defaults" },
                { "https://repo.anaconda.com/pkgs/r/noarch", "defaults" },
                { "pkgs/main", "defaults" },
                { "conda-forge", "conda-forge" },
                { "conda-forge/linux-aarch64", "conda-forge" },
                { "https://mirrors.example.edu/anaconda/cloud/conda-forge/linux-64",
                  "https://mirrors.example.edu/anaconda/cloud/conda-forge" },
                { "file:///opt/channel/noarch", "file:///opt/channel" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *c = env_channel_canonical(cases[i][0]);
                assert_non_null(c);
                assert_string_equal(c, cases[i][1]);
                free(c);
        }
}

static void test_spec_name(void **state)
{
        static const char *const cases[][2] = {
                { "python=3.11", "python" }, { "numpy", "numpy" },
                { "conda-forge::NumPy >=1.2", "numpy" }, { "scipy >=1.0,<2.0", "scipy" },
                { "pytorch[version='>=2']", "pytorch" }, { "  cuda-version==12.1", "cuda-version" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *n = env_spec_name(cases[i][0]);
                assert_non_null(n);
                assert_string_equal(n, cases[i][1]);
                free(n);
        }
        assert_null(env_spec_name(">=1.0"));
}

static void test_history_specs(void **state)
{
        /* conda's order: dict semantics. An update keeps a name's place, a removal
         * then re-add moves it to the end; old comma lists join version pieces. */
        static const char text[] = "==> 2026-01-01 00:00:00 <==\n"
                                   "# update specs: ['python=3.11', 'numpy']\n"
                                   "==> 2026-01-02 00:00:00 <==\n"
                                   "# install specs: scipy >=1.0,<2.0,pandas\n"
                                   "==> 2026-01-03 00:00:00 <==\n"
                                   "# update specs: [\"numpy>=1.26\",\"requests\"]\n"
                                   "==> 2026-01-04 00:00:00 <==\n"
                                   "# remove specs: ['python', 'pandas']\n"
                                   "==> 2026-01-05 00:00:00 <==\n"
                                   "# update specs: ['python=3.12']\n"
                                   "# neutered specs: ['scipy']\n"
                                   "+conda-forge/linux-64::python-3.12.1-0\n";
        static const char *const want[] = { "numpy>=1.26", "scipy", "requests", "python=3.12" };
        char **specs = NULL;
        size_t n = 0;

        assert_int_equal(env_history_specs(text, strlen(text), &specs, &n, NULL, NULL), 4);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(specs[i], want[i]);
                free(specs[i]);
        }
        free(specs);

        /* The old bare list with version pieces. */
        static const char old[] = "# install specs: python >=3.5,<3.6,jupyter >=1.0.0,<2.0,matplotlib\n";
        static const char *const want_old[] = { "python >=3.5,<3.6", "jupyter >=1.0.0,<2.0", "matplotlib" };
        assert_int_equal(env_history_specs(old, strlen(old), &specs, &n, NULL, NULL), 3);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(specs[i], want_old[i]);
                free(specs[i]);
        }
        free(specs);
}

static double seconds_since(const struct timespec *t0)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A history line of `n` list items "'pN'" (each a distinct name). */
static size_t append_list_line(char *buf, size_t o, size_t first, size_t n)
{
        o += (size_t)sprintf(buf + o, "# update specs: [");
        for (size_t i = 0; i < n; i++)
                o += (size_t)sprintf(buf + o, "%s'p%zu'", i ? ", " : "", first + i);
        o += (size_t)sprintf(buf + o, "]\n");
        return o;
}

static void free_specs(char **specs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(specs[i]);
        free(specs);
}

/* Parse buf within 10 seconds (sanitizers, a busy machine) into want_n
 * specs with one warning containing want_warning (none when NULL); returns
 * the specs. */
static char **parse_history_timed(const char *buf, size_t len, int want_n, const char *want_warning)
{
        char **specs = NULL, **warn = NULL;
        size_t n = 0, n_warn = 0;
        struct timespec t0;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(env_history_specs(buf, len, &specs, &n, &warn, &n_warn), want_n);
        assert_true(seconds_since(&t0) < 10.0);
        assert_int_equal(n_warn, want_warning ? 1 : 0);
        if (want_warning)
                assert_non_null(strstr(warn[0], want_warning));
        free_specs(warn, n_warn);
        return specs;
}

/* Hostile histories (the daemon parses them as root): each used to take
 * quadratic time (a copy of the rest of the line per item, a re-copy of the
 * joined string per version piece, a linear name lookup per item). Now they
 * are linear, and over-long lines and item counts are cut with a warning. */
static void test_history_limits(void **state)
{
        char *buf = malloc(16u << 20), **specs;
        size_t o;

        assert_non_null(buf);

        /* One line of 150000 items: longer than a line may be, skipped. */
        o = append_list_line(buf, 0, 0, 150000);
        assert_true(o > ENV_MAX_HISTORY_LINE_BYTES);
        o += (size_t)sprintf(buf + o, "# update specs: ['python=3.12']\n");
        specs = parse_history_timed(buf, o, 1, "line 1 is longer than");
        assert_string_equal(specs[0], "python=3.12");
        free_specs(specs, 1);

        /* Lines under the limit with 120000 distinct items in all: at most
         * ENV_MAX_HISTORY_SPECS are read, at most ENV_MAX_PACKAGES kept. */
        o = 0;
        for (size_t k = 0; k < 3; k++)
                o = append_list_line(buf, o, k * 40000, 40000);
        specs = parse_history_timed(buf, o, ENV_MAX_PACKAGES, "more than 100000 specs");
        assert_string_equal(specs[0], "p0");
        free_specs(specs, ENV_MAX_PACKAGES);

        /* conda < 4.5's bare list: one spec continued by 100000 version pieces,
         * then many removals and re-adds of the same name. */
        o = (size_t)sprintf(buf, "# install specs: numpy");
        for (size_t i = 0; i < 100000; i++)
                o += (size_t)sprintf(buf + o, ",>1");
        o += (size_t)sprintf(buf + o, ",scipy\n");
        for (size_t i = 0; i < 5000; i++)
                o += (size_t)sprintf(buf + o, "# remove specs: ['scipy']\n# update specs: ['scipy']\n");
        specs = parse_history_timed(buf, o, 2, NULL);
        assert_int_equal(strlen(specs[0]), strlen("numpy") + 100000 * 3);
        assert_string_equal(specs[1], "scipy");
        free_specs(specs, 2);
        free(buf);
}

/* ---- discovery and inventory ---- */

static void test_discovery(void **state)
{
        Fixture *fx = *state;
        EnvList *l = NULL;
        static const char *const want[] = { "base", "proj", "ml", "mm", "busy", "evil", "old", "gone-env" };
        const EnvInfo *e;
        char path[512];

        assert_int_equal(env_list_user(&fx->user, &fx->opts, &l), 0);
        for (size_t i = 0; i < l->n_envs; i++)
                fprintf(stderr, "# env %s %s %s\n", l->envs[i]->name, l->envs[i]->path,
                        l->envs[i]->error ? l->envs[i]->error : "");
        assert_int_equal(l->n_envs, sizeof want / sizeof want[0]);
        for (size_t i = 0; i < l->n_envs; i++)
                assert_string_equal(l->envs[i]->name, want[i]);

        e = find_env(l, "base");
        assert_true(e->is_base);
        assert_null(e->error);
        snprintf(path, sizeof path, "%s/miniconda3", fx->home);
        assert_string_equal(e->path, path);

        /* .condarc envs_dirs, $HOME and ~ expanded, deduplicated, first */
        snprintf(path, sizeof path, "%s/work/envs", fx->home);
        assert_true(l->n_envs_dirs >= 3);
        assert_string_equal(l->envs_dirs[0], path);
        snprintf(path, sizeof path, "%s/miniconda3/envs", fx->home);
        assert_string_equal(l->envs_dirs[1], path);
        assert_int_equal(l->n_channels, 1);
        assert_string_equal(l->channels[0], "conda-forge");

        /* the symlink to /etc is reported, not followed */
        e = find_env(l, "evil");
        assert_non_null(e->error);
        assert_non_null(strstr(e->error, "symbolic link"));
        assert_null(e->python_version);
        assert_int_equal(e->n_packages, 0);

        /* the listed path that is gone */
        e = find_env(l, "gone-env");
        assert_non_null(e->error);
        assert_non_null(strstr(e->error, "does not exist"));
        assert_int_equal(l->n_errors, 0);
        env_list_free(l);
}

static void test_inventory_fields(void **state)
{
        Fixture *fx = *state;
        EnvOptions o = fx->opts;
        EnvList *l = NULL;
        const EnvInfo *e;
        struct tm tm = { .tm_year = 126, .tm_mon = 0, .tm_mday = 5, .tm_hour = 10, .tm_isdst = -1 };
        json_t *j;

        o.flags = ENV_LOAD_SIZE | ENV_LOAD_PACKAGES;
        assert_int_equal(env_list_user(&fx->user, &o, &l), 0);
        e = find_env(l, "ml");
        assert_non_null(e);
        assert_null(e->error);
        assert_string_equal(e->python_version, "3.11.8");
        assert_string_equal(e->torch_version, "2.3.1");
        assert_string_equal(e->cuda_version, "12.1");
        assert_int_equal(e->owner_uid, getuid());
        assert_string_equal(e->owner_name, "tester");
        assert_int_equal(e->created_usec, (uint64_t)mktime(&tm) * USEC_PER_SEC);
        assert_int_equal(e->last_used_source, ENV_LAST_USED_HOOK);
        assert_true(e->last_used_usec > now_usec(CLOCK_REALTIME) - 2 * DAY_USEC);
        assert_true(e->size_bytes > 64 * 1024);
        /* 5 valid records + 3 pip packages; the bogus record is a warning */
        assert_int_equal(e->n_conda_packages, 5);
        assert_int_equal(e->n_packages, 8);
        assert_int_equal(e->n_warnings, 1);
        assert_non_null(strstr(e->warnings[0], "bogus-1.0-0.json"));
        assert_string_equal(e->packages[0].name, "cuda-version");
        assert_string_equal(e->packages[0].channel, "nvidia");
        assert_true(e->packages[5].pip);
        assert_string_equal(e->packages[5].name, "flask");

        e = find_env(l, "old");
        assert_int_equal(e->last_used_source, ENV_LAST_USED_ATIME);
        assert_true(e->last_used_usec < now_usec(CLOCK_REALTIME) - 199 * DAY_USEC);
        assert_null(e->torch_version);
        e = find_env(l, "proj");
        assert_int_equal(e->last_used_source, ENV_LAST_USED_NONE);

        j = env_info_to_json(find_env(l, "ml"));
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "last_used_source")), "hook");
        assert_string_equal(json_string_value(json_object_get(j, "cuda")), "12.1");
        assert_int_equal(json_integer_value(json_object_get(j, "packages")), 8);
        json_decref(j);
        j = env_info_to_json(find_env(l, "proj"));
        assert_true(json_is_null(json_object_get(j, "last_used")));
        assert_true(json_is_null(json_object_get(j, "last_used_source")));
        json_decref(j);
        env_list_free(l);
}

static void test_pip_torch_fallback(void **state)
{
        Fixture *fx = *state;
        EnvInfo *e = NULL;
        char prefix[512];

        snprintf(prefix, sizeof prefix, "%s/.conda/envs/piptorch", fx->home);
        build_small(prefix, 0);
        write_filef("Name: torch\nVersion: 2.4.0+cu121\n",
                    "%s/lib/python3.11/site-packages/torch-2.4.0+cu121.dist-info/METADATA", prefix);
        assert_int_equal(env_find(&fx->user, "piptorch", &fx->opts, &e), 0);
        assert_string_equal(e->torch_version, "2.4.0+cu121");
        assert_string_equal(e->cuda_version, "12.1");
        env_info_free(e);
}

/* Size counts each inode once: the hard link pair inside the env once, the
 * file hard-linked from the cache once, the symlink to /etc as a symlink. */
static void test_size_counts_inodes_once(void **state)
{
        Fixture *fx = *state;
        char prefix[512], a[1024], b[1024];
        const char *const parts[] = { "", "/conda-meta", "/conda-meta/history", "/big", "/cached",
                                      "/etc-link" };
        uint64_t want = 0;
        EnvInfo *e = NULL;
        struct stat st;

        snprintf(prefix, sizeof prefix, "%s/.conda/envs/sizes", fx->home);
        mkdir_p("%s/conda-meta", prefix);
        snprintf(a, sizeof a, "%s/conda-meta/history", prefix);
        write_file(a, "");
        snprintf(a, sizeof a, "%s/big", prefix);
        write_blob(a, 1 << 20);
        snprintf(b, sizeof b, "%s/big-again", prefix);
        assert_int_equal(link(a, b), 0);
        snprintf(a, sizeof a, "%s/pkgs/x/cached", fx->root);
        write_blob(a, 256 * 1024);
        snprintf(b, sizeof b, "%s/cached", prefix);
        assert_int_equal(link(a, b), 0);
        snprintf(a, sizeof a, "%s/etc-link", prefix);
        assert_int_equal(symlink("/etc", a), 0);
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
                snprintf(a, sizeof a, "%s%s", prefix, parts[i]);
                assert_int_equal(lstat(a, &st), 0);
                want += (uint64_t)st.st_blocks * 512;
        }

        fx->opts.flags = ENV_LOAD_SIZE;
        assert_int_equal(env_find(&fx->user, prefix, &fx->opts, &e), 0);
        assert_null(e->error);
        assert_int_equal(e->size_bytes, want);
        env_info_free(e);
}

static uint64_t size_of_mm(const Fixture *fx, const EnvOptions *o)
{
        EnvList **lists = NULL;
        uint64_t size;

        assert_int_equal(env_list_users(&fx->user, 1, o, &lists), 0);
        size = find_env(lists[0], "mm")->size_bytes;
        env_lists_free(lists, 1);
        return size;
}

/* Whether the size cache file holds an entry for the (non-base) env at
 * HOME/rel. */
static bool cache_has(const char *cache, const Fixture *fx, const char *rel)
{
        char path[1024], key[64];
        struct stat st;
        json_t *j;
        bool found;

        snprintf(path, sizeof path, "%s/%s", fx->home, rel);
        assert_int_equal(stat(path, &st), 0);
        snprintf(key, sizeof key, "%llu:%llu:0", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        j = json_load_file(cache, 0, NULL);
        assert_non_null(j);
        found = json_object_get(json_object_get(j, "entries"), key) != NULL;
        json_decref(j);
        return found;
}

/* The size cache: a second run reuses the walk while the env's change stamp
 * holds; a package change (conda-meta touched) makes it walk again. An env
 * that changed within ENV_SIZE_CACHE_SETTLE_USEC of the walk is not recorded
 * (the file system's clock may not show the next change). */
static void test_size_cache(void **state)
{
        Fixture *fx = *state;
        char cache[256], a[1024];
        EnvOptions o = fx->opts;
        EnvList **lists = NULL;
        uint64_t first, second, third;
        struct stat st;

        snprintf(cache, sizeof cache, "%s/sizes.json", fx->root);
        mkdir_p("%s/micromamba/envs/mm/share/data", fx->home);
        /* an env deeper than a walk goes: its size is a lower bound */
        mkdir_p("%s/micromamba/envs/deep/conda-meta", fx->home);
        snprintf(a, sizeof a, "%s/micromamba/envs/deep/conda-meta/history", fx->home);
        write_file(a, "==> 2024-01-01 00:00:00 <==\n");
        snprintf(a, sizeof a, "%s/micromamba/envs/deep", fx->home);
        for (int i = 0; i <= ENV_MAX_WALK_DEPTH + 1; i++) {
                strcat(a, "/d");
                assert_int_equal(mkdir(a, 0755), 0);
        }
        o.flags = ENV_LOAD_SIZE;
        o.size_cache = cache;
        first = size_of_mm(fx, &o);
        assert_true(first > 0);
        assert_int_equal(stat(cache, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* just created: not recorded, so data written now is seen */
        snprintf(a, sizeof a, "%s/micromamba/envs/mm/share/data/early", fx->home);
        write_blob(a, 64 * 1024);
        first = size_of_mm(fx, &o);
        assert_true(first >= 64 * 1024);

        /* settled: recorded, and data written deep inside the env is not
         * noticed until the entry ages out */
        usleep((useconds_t)(ENV_SIZE_CACHE_SETTLE_USEC + 200000));
        assert_int_equal(size_of_mm(fx, &o), first);
        assert_true(cache_has(cache, fx, "micromamba/envs/mm"));
        assert_false(cache_has(cache, fx, "micromamba/envs/deep")); /* a lower bound */
        snprintf(a, sizeof a, "%s/micromamba/envs/mm/share/data/blob", fx->home);
        write_blob(a, 512 * 1024);
        second = size_of_mm(fx, &o);
        assert_int_equal(second, first);

        /* a conda transaction rewrites conda-meta: walked again */
        snprintf(a, sizeof a, "%s/micromamba/envs/mm/conda-meta/zlib-1.3-0.json", fx->home);
        write_file(a, "{\"name\": \"zlib\", \"version\": \"1.3\", \"build\": \"0\"}");
        assert_int_equal(env_list_users(&fx->user, 1, &o, &lists), 0);
        third = find_env(lists[0], "mm")->size_bytes;
        assert_true(third >= first + 512 * 1024);
        /* without the cache the walk agrees */
        env_lists_free(lists, 1);
        o.size_cache = NULL;
        assert_int_equal(env_list_users(&fx->user, 1, &o, &lists), 0);
        assert_int_equal(find_env(lists[0], "mm")->size_bytes, third);
        env_lists_free(lists, 1);
}

/* A base env's size leaves out the root's envs/ and pkgs/: those are listed
 * on their own and cleaned by clean-cache. */
static void test_base_size_leaves_out_envs_and_pkgs(void **state)
{
        Fixture *fx = *state;
        char a[1024];
        EnvOptions o = fx->opts;
        EnvList *l = NULL;
        const EnvInfo *base = NULL, *child;

        mkdir_p("%s/miniforge3/conda-meta", fx->home);
        snprintf(a, sizeof a, "%s/miniforge3/conda-meta/history", fx->home);
        write_file(a, "==> 2024-01-01 00:00:00 <==\n");
        mkdir_p("%s/miniforge3/pkgs/zlib-1.3-0", fx->home);
        snprintf(a, sizeof a, "%s/miniforge3/pkgs/zlib-1.3-0/blob", fx->home);
        write_blob(a, 512 * 1024);
        mkdir_p("%s/miniforge3/envs/child/conda-meta", fx->home);
        snprintf(a, sizeof a, "%s/miniforge3/envs/child/conda-meta/history", fx->home);
        write_file(a, "==> 2024-01-01 00:00:00 <==\n");
        snprintf(a, sizeof a, "%s/miniforge3/envs/child/blob", fx->home);
        write_blob(a, 512 * 1024);

        o.flags = ENV_LOAD_SIZE;
        assert_int_equal(env_list_user(&fx->user, &o, &l), 0);
        for (size_t i = 0; i < l->n_envs; i++)
                if (l->envs[i]->is_base && strstr(l->envs[i]->path, "/miniforge3"))
                        base = l->envs[i];
        assert_non_null(base);
        child = find_env(l, "child");
        assert_true(child->size_bytes >= 512 * 1024);
        assert_true(base->size_bytes < 512 * 1024);
        env_list_free(l);
}

/* A planted symlink never leads out: history pointing at /etc/passwd makes
 * "no env"; a symlinked envs dir and a symlinked ~/.condarc are reported. */
static void test_symlinks_not_followed(void **state)
{
        Fixture *fx = *state;
        char a[1024], prefix[512];
        EnvList *l = NULL;
        const EnvInfo *e;

        snprintf(prefix, sizeof prefix, "%s/.conda/envs/sneaky", fx->home);
        mkdir_p("%s/conda-meta", prefix);
        snprintf(a, sizeof a, "%s/conda-meta/history", prefix);
        assert_int_equal(symlink("/etc/passwd", a), 0);
        snprintf(a, sizeof a, "%s/.condarc", fx->home);
        unlink(a);
        assert_int_equal(symlink("/etc/hostname", a), 0);
        snprintf(a, sizeof a, "%s/anaconda3", fx->home);
        assert_int_equal(symlink("/etc", a), 0);

        assert_int_equal(env_list_user(&fx->user, &fx->opts, &l), 0);
        assert_null(find_env(l, "sneaky")); /* not an env: quietly skipped */
        e = find_env(l, "base");
        assert_non_null(e);
        /* the symlinked anaconda3 root is reported, after the real base */
        bool found = false;
        for (size_t i = 0; i < l->n_envs; i++)
                if (strstr(l->envs[i]->path, "/anaconda3")) {
                        assert_non_null(l->envs[i]->error);
                        assert_non_null(strstr(l->envs[i]->error, "symbolic link"));
                        found = true;
                }
        assert_true(found);
        assert_true(l->n_errors >= 1);
        assert_non_null(strstr(l->errors[0], ".condarc"));
        env_list_free(l);
}

/* env_mkdir_beneath refuses what open_beneath refuses: ".." would climb out
 * of the directory it was given, "." and absolute paths name nothing beneath
 * it; nothing is created on the way. */
static void test_mkdir_beneath_dots(void **state)
{
        Fixture *fx = *state;
        char path[1024];
        struct stat st;
        int dirfd, fd = -1;

        dirfd = open(fx->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dirfd >= 0);
        assert_int_equal(env_mkdir_beneath(dirfd, "a/../../escaped", 0700, &fd), -EINVAL);
        assert_int_equal(env_mkdir_beneath(dirfd, "..", 0700, &fd), -EINVAL);
        assert_int_equal(env_mkdir_beneath(dirfd, "./b", 0700, &fd), -EINVAL);
        assert_int_equal(env_mkdir_beneath(dirfd, "c/.", 0700, &fd), -EINVAL);
        assert_int_equal(env_mkdir_beneath(dirfd, "/tmp/x", 0700, &fd), -EINVAL);
        assert_int_equal(env_mkdir_beneath(dirfd, "", 0700, &fd), -EINVAL);
        assert_int_equal(fd, -1);
        snprintf(path, sizeof path, "%s/../escaped", fx->home);
        assert_int_equal(stat(path, &st), -1);
        snprintf(path, sizeof path, "%s/a", fx->home);
        assert_int_equal(stat(path, &st), -1); /* refused before creating "a" */
        snprintf(path, sizeof path, "%s/c", fx->home);
        assert_int_equal(stat(path, &st), -1);

        /* the ordinary case still works */
        assert_int_equal(env_mkdir_beneath(dirfd, "d/e", 0700, &fd), 0);
        assert_true(fd >= 0);
        close(fd);
        snprintf(path, sizeof path, "%s/d/e", fx->home);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        close(dirfd);
}

/* ---- export ---- */

static char *export_text(const EnvInfo *e, EnvExportMode mode)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(env_export(e, mode, f), 0);
        fclose(f);
        return buf;
}

static void test_export(void **state)
{
        Fixture *fx = *state;
        EnvOptions o = fx->opts;
        EnvInfo *e = NULL;
        char want[2048], *got;

        o.flags = ENV_LOAD_PACKAGES;
        assert_int_equal(env_find(&fx->user, "ml", &o, &e), 0);

        /* Derived by conda's rules: records sorted by name as name=version;
         * channels start from .condarc's [conda-forge] (no "defaults": .condarc
         * names channels) and each record channel not yet listed, in name
         * order, goes to the front: nvidia (cuda-version), then pytorch;
         * conda-forge keeps its place. pip list sorted, names normalised. */
        snprintf(want, sizeof want,
                 "name: ml\n"
                 "channels:\n"
                 "  - pytorch\n"
                 "  - nvidia\n"
                 "  - conda-forge\n"
                 "dependencies:\n"
                 "  - cuda-version=12.1\n"
                 "  - numpy=1.26.4\n"
                 "  - pip=24.0\n"
                 "  - python=3.11.8\n"
                 "  - pytorch=2.3.1\n"
                 "  - pip:\n"
                 "      - flask==3.0.0\n"
                 "      - old-pkg==0.1\n"
                 "      - requests-oauthlib==1.3.1\n"
                 "prefix: %s/miniconda3/envs/ml\n",
                 fx->home);
        got = export_text(e, ENV_EXPORT_NO_BUILDS);
        assert_string_equal(got, want);
        free(got);

        snprintf(want, sizeof want,
                 "name: ml\n"
                 "channels:\n"
                 "  - pytorch\n"
                 "  - nvidia\n"
                 "  - conda-forge\n"
                 "dependencies:\n"
                 "  - cuda-version=12.1=h1d6eff3_3\n"
                 "  - numpy=1.26.4=py311h64a7726_0\n"
                 "  - pip=24.0=pyhd8ed1ab_0\n"
                 "  - python=3.11.8=hab00c5b_0_cpython\n"
                 "  - pytorch=2.3.1=py3.11_cuda12.1_cudnn8.9.2_0\n"
                 "  - pip:\n"
                 "      - flask==3.0.0\n"
                 "      - old-pkg==0.1\n"
                 "      - requests-oauthlib==1.3.1\n"
                 "prefix: %s/miniconda3/envs/ml\n",
                 fx->home);
        got = export_text(e, ENV_EXPORT_BUILDS);
        assert_string_equal(got, want);
        free(got);

        /* requests was removed; scipy was asked for but is not installed. */
        snprintf(want, sizeof want,
                 "name: ml\n"
                 "channels:\n"
                 "  - conda-forge\n"
                 "dependencies:\n"
                 "  - python=3.11\n"
                 "  - numpy\n"
                 "  - pytorch=2.3\n"
                 "  - cuda-version=12.1\n"
                 "  - pip\n"
                 "prefix: %s/miniconda3/envs/ml\n",
                 fx->home);
        got = export_text(e, ENV_EXPORT_FROM_HISTORY);
        assert_string_equal(got, want);
        free(got);
        env_info_free(e);
}

static void test_export_defaults_channel(void **state)
{
        Fixture *fx = *state;
        EnvInfo *e = NULL;
        char want[1024], path[512], *got;

        /* Without .condarc channels conda appends "defaults". */
        snprintf(path, sizeof path, "%s/.condarc", fx->home);
        unlink(path);
        fx->opts.flags = ENV_LOAD_PACKAGES;
        snprintf(path, sizeof path, "%s/.conda/envs/old", fx->home);
        assert_int_equal(env_find(&fx->user, path, &fx->opts, &e), 0);
        snprintf(want, sizeof want,
                 "name: old\nchannels:\n  - defaults\ndependencies:\n  - python=3.11.8\nprefix: %s\n", path);
        got = export_text(e, ENV_EXPORT_NO_BUILDS);
        assert_string_equal(got, want);
        free(got);
        env_info_free(e);
        assert_int_equal(env_find(&fx->user, "no-such-env", &fx->opts, &e), -ENOENT);
}

/* conda's channel rule (conda/env/env.py from_environment): start from the
 * .condarc channels, then each record channel (records by name) not yet
 * listed is inserted at the front. */
static void test_export_channel_order(void **state)
{
        Fixture *fx = *state;
        EnvInfo *e = NULL;
        char path[512], *got;
        const char *want_channels = "channels:\n  - pytorch\n  - conda-forge\n  - nvidia\n  - defaults\n"
                                    "dependencies:\n";

        snprintf(path, sizeof path, "%s/.condarc", fx->home);
        write_file(path, "channels:\n  - defaults\n");
        fx->opts.flags = ENV_LOAD_PACKAGES;
        assert_int_equal(env_find(&fx->user, "ml", &fx->opts, &e), 0);
        /* [defaults]; cuda-version → nvidia in front; numpy → conda-forge in
         * front; pip, python: conda-forge is there; pytorch → in front. */
        got = export_text(e, ENV_EXPORT_NO_BUILDS);
        assert_non_null(strstr(got, want_channels));
        free(got);
        /* --from-history: the .condarc channels only */
        got = export_text(e, ENV_EXPORT_FROM_HISTORY);
        assert_non_null(strstr(got, "channels:\n  - defaults\ndependencies:\n"));
        free(got);
        env_info_free(e);
}

/* The value of key in the YAML mapping node m, or NULL. */
static yaml_node_t *yaml_get(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);

                if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

static void assert_yaml_scalar(yaml_node_t *n, const char *want)
{
        assert_non_null(n);
        assert_int_equal(n->type, YAML_SCALAR_NODE);
        assert_int_equal(n->data.scalar.length, strlen(want));
        assert_memory_equal(n->data.scalar.value, want, strlen(want));
}

/* Parse an exported environment.yml as `conda env create -f` would and check
 * it is exactly {name, channels, dependencies, prefix} with these values. */
static void assert_export_reads_back(const char *text, const char *name, const char *const *channels,
                                     const char *const *deps, const char *prefix)
{
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root, *seq;
        size_t i;

        assert_true(yaml_parser_initialize(&parser));
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
        assert_true(yaml_parser_load(&parser, &doc));
        root = yaml_document_get_root_node(&doc);
        assert_non_null(root);
        assert_int_equal(root->type, YAML_MAPPING_NODE);
        assert_int_equal(root->data.mapping.pairs.top - root->data.mapping.pairs.start, 4);
        assert_yaml_scalar(yaml_get(&doc, root, "name"), name);
        assert_yaml_scalar(yaml_get(&doc, root, "prefix"), prefix);
        for (int k = 0; k < 2; k++) {
                const char *const *want = k == 0 ? channels : deps;

                seq = yaml_get(&doc, root, k == 0 ? "channels" : "dependencies");
                assert_int_equal(seq->type, YAML_SEQUENCE_NODE);
                for (i = 0; want[i]; i++)
                        assert_yaml_scalar(yaml_document_get_node(&doc, seq->data.sequence.items.start[i]),
                                           want[i]);
                assert_int_equal(seq->data.sequence.items.top - seq->data.sequence.items.start, (long)i);
        }
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
}

/* Names from a user's files can hold newlines and YAML syntax: each stays one
 * value in environment.yml (which the backup archives and an admin may feed
 * to `conda env create -f`), no line or key is injected. */
static void test_export_hostile_names(void **state)
{
        Fixture *fx = *state;
        EnvInfo *e = NULL;
        char prefix[512], a[1024], want[2048], *got;
        const char *channels[] = { "ch\nprefix: /etc", "conda-forge", "defaults", NULL };
        const char *only_defaults[] = { "defaults", NULL };
        const char *deps_builds[] = { "#c=1.0=0", "evil\n- bad=1.0=0", "ok=2.0=h1: x",
                                      "q\"\\\t\x01" "\xc3\xa9=1=0", NULL };
        const char *deps_history[] = { "ok >=2.0 #x", NULL };

        snprintf(prefix, sizeof prefix, "%s/.conda/envs/x\nprefix: etc", fx->home);
        mkdir_p("%s/conda-meta", prefix);
        make_record(prefix, "evil\n- bad", "1.0", "0",
                    "https://conda.anaconda.org/ch\nprefix: /etc/linux-64", NULL, false);
        make_record(prefix, "#c", "1.0", "0", "https://conda.anaconda.org/conda-forge/noarch", NULL,
                    false);
        make_record(prefix, "ok", "2.0", "h1: x", "https://conda.anaconda.org/conda-forge/noarch",
                    NULL, false);
        make_record(prefix, "q\"\\\t\x01" "\xc3\xa9", "1", "0",
                    "https://conda.anaconda.org/conda-forge/noarch", NULL, false);
        snprintf(a, sizeof a, "%s/conda-meta/history", prefix);
        write_file(a, "==> 2025-03-01 08:00:00 <==\n# cmd: conda install ok\n"
                      "# update specs: ['ok >=2.0 #x']\n");
        snprintf(a, sizeof a, "%s/.condarc", fx->home);
        unlink(a);
        fx->opts.flags = ENV_LOAD_PACKAGES;
        assert_int_equal(env_find(&fx->user, prefix, &fx->opts, &e), 0);
        assert_null(e->error);
        assert_int_equal(e->n_conda_packages, 4);

        got = export_text(e, ENV_EXPORT_BUILDS);
        snprintf(want, sizeof want,
                 "name: \"x\\nprefix: etc\"\n"
                 "channels:\n"
                 "  - \"ch\\nprefix: /etc\"\n"
                 "  - conda-forge\n"
                 "  - defaults\n"
                 "dependencies:\n"
                 "  - \"#c=1.0=0\"\n"
                 "  - \"evil\\n- bad=1.0=0\"\n"
                 "  - \"ok=2.0=h1: x\"\n"
                 "  - \"q\\\"\\\\\\t\\x01\xc3\xa9=1=0\"\n"
                 "prefix: \"%s/.conda/envs/x\\nprefix: etc\"\n",
                 fx->home);
        assert_string_equal(got, want);
        assert_export_reads_back(got, "x\nprefix: etc", channels, deps_builds, prefix);
        free(got);
        got = export_text(e, ENV_EXPORT_FROM_HISTORY);
        assert_non_null(strstr(got, "  - \"ok >=2.0 #x\"\n"));
        assert_export_reads_back(got, "x\nprefix: etc", only_defaults, deps_history, prefix);
        free(got);
        env_info_free(e);
}

/* First line of the export of a small env made at HOME/.conda/envs/<name>. */
static char *export_first_line(Fixture *fx, const char *name)
{
        char prefix[512], *got, *line;
        EnvInfo *e = NULL;

        snprintf(prefix, sizeof prefix, "%s/.conda/envs/%s", fx->home, name);
        build_small(prefix, 0);
        fx->opts.flags = ENV_LOAD_PACKAGES;
        assert_int_equal(env_find(&fx->user, prefix, &fx->opts, &e), 0);
        got = export_text(e, ENV_EXPORT_NO_BUILDS);
        env_info_free(e);
        /* A copy of the first line: writing a NUL through strchr's result
         * crashed on an export without a newline (NULL) and is what GCC
         * -O3 flags as a dangling pointer into export_text's inlined buf. */
        assert_non_null(got);
        assert_non_null(strchr(got, '\n'));
        line = strndup(got, strcspn(got, "\n"));
        assert_non_null(line);
        free(got);
        return line;
}

/* Plain where YAML emitters write plain, quoted where a plain scalar would be
 * read back as something else. */
static void test_export_scalar_styles(void **state)
{
        static const struct {
                const char *name, *line;
        } cases[] = {
                { "my-env_2.0+cu121", "name: my-env_2.0+cu121" },
                { "a:b#c", "name: a:b#c" },
                { "données", "name: données" },
                { "yes", "name: \"yes\"" },
                { "null", "name: \"null\"" },
                { "1.0", "name: \"1.0\"" },
                { "0x1F", "name: \"0x1F\"" },
                { "2024-01-01", "name: \"2024-01-01\"" },
                { "-x", "name: -x" },
                { "- x", "name: \"- x\"" },
                { "a: b", "name: \"a: b\"" },
                { "a #b", "name: \"a #b\"" },
                { "*x", "name: \"*x\"" },
                { " lead", "name: \" lead\"" },
                { "\xff" "bad", "name: \"\\xFFbad\"" },
                { "tab\there", "name: \"tab\\there\"" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = export_first_line(*state, cases[i].name);

                assert_string_equal(got, cases[i].line);
                free(got);
        }
}

/* ---- backup ---- */

static void test_backup(void **state)
{
        Fixture *fx = *state;
        char dir[256], *path = NULL, want_yml[2048];
        struct archive *a;
        struct archive_entry *ent;
        bool saw_ml_yml = false, saw_ml_hist = false, saw_manifest = false, saw_evil = false;
        struct stat st;

        snprintf(dir, sizeof dir, "%s/backups", fx->root);
        mkdir_p("%s", dir);
        assert_int_equal(env_backup(&fx->user, 1, dir, &fx->opts, now_usec(CLOCK_REALTIME), &path), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_non_null(strstr(path, "/gpukeeper-envs-"));

        snprintf(want_yml, sizeof want_yml,
                 "name: ml\nchannels:\n  - pytorch\n  - nvidia\n  - conda-forge\ndependencies:\n"
                 "  - cuda-version=12.1\n  - numpy=1.26.4\n  - pip=24.0\n  - python=3.11.8\n"
                 "  - pytorch=2.3.1\n  - pip:\n      - flask==3.0.0\n      - old-pkg==0.1\n"
                 "      - requests-oauthlib==1.3.1\nprefix: %s/miniconda3/envs/ml\n",
                 fx->home);
        a = archive_read_new();
        archive_read_support_filter_gzip(a);
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
        while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(ent);
                size_t size = (size_t)archive_entry_size(ent);
                char *buf = calloc(1, size + 1);

                assert_int_equal(archive_read_data(a, buf, size), (la_ssize_t)size);
                if (strcmp(name, "tester/ml/environment.yml") == 0) {
                        assert_string_equal(buf, want_yml);
                        saw_ml_yml = true;
                } else if (strcmp(name, "tester/ml/history") == 0) {
                        assert_string_equal(buf, ML_HISTORY);
                        saw_ml_hist = true;
                } else if (strcmp(name, "MANIFEST.json") == 0) {
                        json_t *m = json_loads(buf, 0, NULL), *u, *envs, *ev;
                        size_t i;

                        assert_non_null(m);
                        u = json_array_get(json_object_get(m, "users"), 0);
                        assert_string_equal(json_string_value(json_object_get(u, "user")), "tester");
                        envs = json_object_get(u, "envs");
                        assert_int_equal(json_array_size(envs), 8);
                        json_array_foreach(envs, i, ev) {
                                if (strcmp(json_string_value(json_object_get(ev, "name")), "evil") == 0)
                                        assert_true(json_is_string(json_object_get(ev, "error")));
                                if (strcmp(json_string_value(json_object_get(ev, "name")), "ml") == 0) {
                                        assert_string_equal(
                                                json_string_value(json_object_get(ev, "archive_dir")),
                                                "tester/ml");
                                        assert_true(json_integer_value(json_object_get(ev, "size_bytes")) > 0);
                                }
                        }
                        json_decref(m);
                        saw_manifest = true;
                } else if (strncmp(name, "tester/evil", 11) == 0)
                        saw_evil = true;
                free(buf);
        }
        archive_read_free(a);
        assert_true(saw_ml_yml && saw_ml_hist && saw_manifest);
        assert_false(saw_evil);

        /* The same second again: refused, not overwritten. */
        char *again = NULL;
        uint64_t t = 0;
        struct tm tm;
        char stamp[32];
        /* Recover the stamp of the first archive to hit it exactly. */
        strncpy(stamp, strstr(path, "gpukeeper-envs-") + 15, 15);
        stamp[15] = '\0';
        memset(&tm, 0, sizeof tm);
        assert_non_null(strptime(stamp, "%Y%m%d-%H%M%S", &tm));
        tm.tm_isdst = -1;
        t = (uint64_t)mktime(&tm) * USEC_PER_SEC;
        assert_int_equal(env_backup(&fx->user, 1, dir, &fx->opts, t, &again), -EEXIST);
        free(path);

        /* Retention: keep the two newest. */
        write_filef("", "%s/gpukeeper-envs-20200101-000000.tar.gz", dir);
        write_filef("", "%s/gpukeeper-envs-20200102-000000.tar.gz", dir);
        write_filef("", "%s/unrelated.tar.gz", dir);
        assert_int_equal(env_backup_prune(dir, 2), 1);
        snprintf(want_yml, sizeof want_yml, "%s/gpukeeper-envs-20200101-000000.tar.gz", dir);
        assert_int_equal(access(want_yml, F_OK), -1);
        snprintf(want_yml, sizeof want_yml, "%s/gpukeeper-envs-20200102-000000.tar.gz", dir);
        assert_int_equal(access(want_yml, F_OK), 0);
        snprintf(want_yml, sizeof want_yml, "%s/unrelated.tar.gz", dir);
        assert_int_equal(access(want_yml, F_OK), 0);
}

/* ---- clean-cache ---- */

static void test_clean_cache(void **state)
{
        Fixture *fx = *state;
        EnvCleanPlan *p = NULL;
        char pkgs[512], a[1024];
        bool kinds[5] = {};

        snprintf(pkgs, sizeof pkgs, "%s/miniconda3/pkgs", fx->home);
        write_filef("tarball", "%s/numpy-1.26.4-py311h64a7726_0.conda", pkgs);
        write_filef("tarball", "%s/zlib-1.2.13-h5eee18b_0.tar.bz2", pkgs);
        write_filef("{}", "%s/cache/497deca9.json", pkgs);
        write_filef("{}", "%s/unused-1.0-0/info/index.json", pkgs);
        write_filef("data", "%s/unused-1.0-0/lib/libunused.so", pkgs);
        write_filef("x", "%s/half-done.c~", pkgs);
        write_filef("log", "%s/.logs/2026.log", pkgs);
        write_filef("https://conda.anaconda.org/conda-forge/linux-64/numpy.conda\n", "%s/urls.txt", pkgs);

        assert_int_equal(env_clean_plan(&fx->user, &fx->opts, &p), 0);
        assert_int_equal(p->n_pkgs_dirs, 1);
        assert_string_equal(p->pkgs_dirs[0], pkgs);
        for (size_t i = 0; i < p->n_items; i++) {
                fprintf(stderr, "# clean %s %s\n", env_clean_kind_to_string(p->items[i].kind),
                        p->items[i].path);
                assert_null(strstr(p->items[i].path, "numpy-1.26.4-py311h64a7726_0/"));
                assert_false(env_clean_kind_to_string(p->items[i].kind) == NULL);
                kinds[p->items[i].kind] = true;
        }
        /* 2 tarballs, cache, unused package, temp, logs; the hard-linked numpy stays */
        assert_int_equal(p->n_items, 6);
        for (size_t k = 0; k < 5; k++)
                assert_true(kinds[k]);
        assert_true(p->total_bytes > 0);
        /* dry run: nothing removed */
        snprintf(a, sizeof a, "%s/unused-1.0-0/info/index.json", pkgs);
        assert_int_equal(access(a, F_OK), 0);

        assert_int_equal(env_clean_apply(&fx->user, p, &fx->opts), 0);
        env_clean_plan_free(p);
        assert_int_equal(access(a, F_OK), -1);
        snprintf(a, sizeof a, "%s/numpy-1.26.4-py311h64a7726_0/info/index.json", pkgs);
        assert_int_equal(access(a, F_OK), 0);
        snprintf(a, sizeof a, "%s/numpy-1.26.4-py311h64a7726_0.conda", pkgs);
        assert_int_equal(access(a, F_OK), -1);
        snprintf(a, sizeof a, "%s/cache", pkgs);
        assert_int_equal(access(a, F_OK), -1);
        snprintf(a, sizeof a, "%s/urls.txt", pkgs);
        assert_int_equal(access(a, F_OK), 0);
        /* the env's hard link still works */
        snprintf(a, sizeof a, "%s/miniconda3/envs/ml/lib/python3.11/site-packages/numpy/core.so", fx->home);
        assert_int_equal(access(a, R_OK), 0);

        /* a second plan finds nothing more */
        assert_int_equal(env_clean_plan(&fx->user, &fx->opts, &p), 0);
        assert_int_equal(p->n_items, 0);
        env_clean_plan_free(p);
}

/* ---- prune / restore ---- */

static pid_t spawn_in(const char *dir)
{
        int ready[2];
        char c;
        pid_t pid;

        assert_int_equal(pipe(ready), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (chdir(dir) < 0)
                        _exit(1);
                (void)write(ready[1], "x", 1);
                pause();
                _exit(0);
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static const EnvPruneItem *plan_item(const EnvPrunePlan *p, const char *name)
{
        for (size_t i = 0; i < p->n_items; i++)
                if (strcmp(p->items[i].name, name) == 0)
                        return &p->items[i];
        return NULL;
}

static bool file_contains(const char *path, const char *needle)
{
        char buf[8192] = "";
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        return strstr(buf, needle) != NULL;
}

static void test_prune_and_restore(void **state)
{
        Fixture *fx = *state;
        EnvPrunePlan *p = NULL;
        const EnvPruneItem *it;
        EnvTrashEntry *trash = NULL;
        size_t n_trash = 0;
        char busy[512], old[512], envtxt[512], a[1024], *id = NULL, *restored = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        pid_t child;
        pid_t found = 0;

        snprintf(busy, sizeof busy, "%s/.conda/envs/busy", fx->home);
        snprintf(old, sizeof old, "%s/.conda/envs/old", fx->home);
        snprintf(envtxt, sizeof envtxt, "%s/.conda/environments.txt", fx->home);
        child = spawn_in(busy);
        assert_int_equal(env_find_process_inside(NULL, busy, &found), 1);
        assert_int_equal(found, child);
        assert_int_equal(env_find_process_inside(NULL, old, &found), 0);

        assert_int_equal(env_prune_plan(&fx->user, 90 * DAY_USEC, now, &fx->opts, &p), 0);
        it = plan_item(p, "busy");
        assert_non_null(it);
        assert_int_equal(it->busy_pid, child);
        assert_non_null(strstr(it->skip_reason, "in use by process"));
        assert_non_null(strstr(plan_item(p, "base")->skip_reason, "base"));
        assert_non_null(strstr(plan_item(p, "ml")->skip_reason, "used 1 days ago (hook)"));
        assert_non_null(strstr(plan_item(p, "proj")->skip_reason, "no record"));
        assert_non_null(plan_item(p, "mm")->skip_reason);
        it = plan_item(p, "old");
        assert_null(it->skip_reason);
        assert_int_equal(p->n_eligible, 1);
        assert_int_equal(p->eligible_bytes, it->size_bytes);
        assert_true(it->size_bytes > 0);
        assert_int_equal(p->n_errors, 2); /* evil and gone-env */
        assert_null(plan_item(p, "evil"));

        /* Forcing the busy one is refused even if someone built the item by hand. */
        EnvPruneItem forced = *plan_item(p, "busy");
        forced.skip_reason = NULL;
        assert_int_equal(env_prune(&fx->user, &forced, &fx->opts, now, &id), -EBUSY);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);

        assert_true(file_contains(envtxt, "/.conda/envs/old/\n")); /* as listed, with a slash */
        assert_int_equal(env_prune(&fx->user, it, &fx->opts, now, &id), 0);
        assert_non_null(strstr(id, "old-"));
        assert_int_equal(access(old, F_OK), -1);
        snprintf(a, sizeof a, "%s/.local/share/gpukeeper/trash/%s/prefix/conda-meta/history", fx->home, id);
        assert_int_equal(access(a, F_OK), 0);
        snprintf(a, sizeof a, "%s/.local/share/gpukeeper/trash/%s/manifest.json", fx->home, id);
        assert_true(file_contains(a, old));
        assert_false(file_contains(envtxt, "/.conda/envs/old"));
        assert_true(file_contains(envtxt, "/miniconda3/envs/ml\n"));
        /* pruning the same item again: the directory is gone */
        char *id2 = NULL;
        assert_int_equal(env_prune(&fx->user, it, &fx->opts, now, &id2), -ESTALE);
        env_prune_plan_free(p);

        assert_int_equal(env_trash_list(&fx->user, &fx->opts, &trash, &n_trash), 0);
        assert_int_equal(n_trash, 1);
        assert_string_equal(trash[0].id, id);
        assert_string_equal(trash[0].name, "old");
        assert_string_equal(trash[0].original_path, old);
        assert_int_equal(trash[0].trashed_usec, now / USEC_PER_SEC * USEC_PER_SEC);
        env_trash_entries_free(trash, n_trash);

        /* restore refuses while the original path exists again */
        mkdir_p("%s", old);
        assert_int_equal(env_restore(&fx->user, id, &fx->opts, &restored), -EEXIST);
        rmdir(old);
        assert_int_equal(env_restore(&fx->user, "../etc", &fx->opts, &restored), -EINVAL);
        assert_int_equal(env_restore(&fx->user, "nope", &fx->opts, &restored), -ENOENT);
        assert_int_equal(env_restore(&fx->user, id, &fx->opts, &restored), 0);
        assert_string_equal(restored, old);
        snprintf(a, sizeof a, "%s/conda-meta/history", old);
        assert_int_equal(access(a, F_OK), 0);
        assert_true(file_contains(envtxt, "/.conda/envs/old\n"));
        assert_int_equal(env_trash_list(&fx->user, &fx->opts, &trash, &n_trash), 0);
        assert_int_equal(n_trash, 0);
        free(restored);
        free(id);
}

/* Names that are not UTF-8 (a directory called "\xff"): JSON gets them with
 * the bad bytes escaped, the listing and the backup still work, and a prune
 * and restore put the env back at its exact path. */
static void test_non_utf8_names(void **state)
{
        Fixture *fx = *state;
        EnvList *l = NULL;
        EnvPrunePlan *p = NULL;
        EnvTrashEntry *trash = NULL;
        size_t n_trash = 0;
        char bad[512], want[600], dir[256], *path = NULL, *id = NULL, *restored = NULL, *text;
        const EnvInfo *e = NULL;
        const EnvPruneItem *it = NULL;
        json_t *j;
        uint64_t now = now_usec(CLOCK_REALTIME);

        j = env_json_string("a\xff" "b\xc3\xa9\xe2\x82");
        assert_string_equal(json_string_value(j), "a\\xffb\xc3\xa9\\xe2\\x82");
        json_decref(j);
        j = env_json_string(NULL);
        assert_true(json_is_null(j));
        json_decref(j);

        snprintf(bad, sizeof bad, "%s/.conda/envs/\xff" "bad", fx->home);
        build_small(bad, now - 200 * DAY_USEC);
        snprintf(want, sizeof want, "%s/.conda/envs/\\xffbad", fx->home);

        assert_int_equal(env_list_user(&fx->user, &fx->opts, &l), 0);
        for (size_t i = 0; i < l->n_envs; i++)
                if (strcmp(l->envs[i]->name, "\xff" "bad") == 0)
                        e = l->envs[i];
        assert_non_null(e);
        j = env_info_to_json(e);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "name")), "\\xffbad");
        assert_string_equal(json_string_value(json_object_get(j, "path")), want);
        json_decref(j);
        env_list_free(l);

        snprintf(dir, sizeof dir, "%s/backups", fx->root);
        mkdir_p("%s", dir);
        assert_int_equal(env_backup(&fx->user, 1, dir, &fx->opts, now, &path), 0);
        free(path);

        assert_int_equal(env_prune_plan(&fx->user, 90 * DAY_USEC, now, &fx->opts, &p), 0);
        for (size_t i = 0; i < p->n_items; i++)
                if (strcmp(p->items[i].path, bad) == 0)
                        it = &p->items[i];
        assert_non_null(it);
        assert_null(it->skip_reason);
        assert_int_equal(env_prune(&fx->user, it, &fx->opts, now, &id), 0);
        env_prune_plan_free(p);
        assert_int_equal(access(bad, F_OK), -1);
        assert_int_equal(env_trash_list(&fx->user, &fx->opts, &trash, &n_trash), 0);
        assert_int_equal(n_trash, 1);
        assert_string_equal(trash[0].original_path, bad);
        assert_string_equal(trash[0].name, "\\xffbad");
        env_trash_entries_free(trash, n_trash);
        assert_int_equal(env_restore(&fx->user, id, &fx->opts, &restored), 0);
        assert_string_equal(restored, bad);
        snprintf(want, sizeof want, "%s/conda-meta/history", bad);
        assert_int_equal(access(want, F_OK), 0);
        free(restored);
        free(id);

        /* A kernel spec for such an env is still JSON. */
        assert_int_equal(env_kernel_spec("\xff" "bad", bad, 1, &text), 0);
        assert_non_null(strstr(text, "Python (\\\\xffbad, 1 GPU via gpukeeper)"));
        free(text);
}

/* A hook file may claim a last use near the end of time: last_used plus the
 * age limit must not wrap around and make the env look abandoned. */
static void test_prune_future_last_use(void **state)
{
        Fixture *fx = *state;
        EnvPrunePlan *p = NULL;
        char a[1024];
        uint64_t now = now_usec(CLOCK_REALTIME);

        /* The largest value the hook file parser still takes. */
        snprintf(a, sizeof a, "%s/.conda/envs/old/" ENV_LAST_ACTIVATED_FILE, fx->home);
        write_file(a, "18446744073708\n");
        assert_int_equal(env_prune_plan(&fx->user, 90 * DAY_USEC, now, &fx->opts, &p), 0);
        assert_non_null(plan_item(p, "old"));
        assert_non_null(strstr(plan_item(p, "old")->skip_reason, "used 0 days ago (hook)"));
        env_prune_plan_free(p);

        /* Exactly as old as the limit is old enough; a second younger is not. */
        for (int younger = 0; younger <= 1; younger++) {
                char t[32];

                now = now / USEC_PER_SEC * USEC_PER_SEC;
                snprintf(t, sizeof t, "%llu\n",
                         (unsigned long long)((now - 90 * DAY_USEC) / USEC_PER_SEC + (unsigned)younger));
                write_file(a, t);
                assert_int_equal(env_prune_plan(&fx->user, 90 * DAY_USEC, now, &fx->opts, &p), 0);
                if (younger)
                        assert_non_null(plan_item(p, "old")->skip_reason);
                else
                        assert_null(plan_item(p, "old")->skip_reason);
                env_prune_plan_free(p);
        }
}

static void write_hook_time(const char *prefix, uint64_t secs)
{
        char a[1024], b[64];

        snprintf(a, sizeof a, "%s/" ENV_LAST_ACTIVATED_FILE, prefix);
        snprintf(b, sizeof b, "%llu\n", (unsigned long long)secs);
        write_file(a, b);
}

/* Last used is the newer of the hook's time and bin/python's atime: a kernel
 * or `env/bin/python x.py` never runs the activate hook, and such an env must
 * not be pruned on an old activation. An atime in the hook's second is the
 * hook's. */
static void test_last_used_newer_wins(void **state)
{
        Fixture *fx = *state;
        char kern[512], act[512], tie[512], path[1024];
        uint64_t now = now_usec(CLOCK_REALTIME) / USEC_PER_SEC * USEC_PER_SEC;
        struct timespec ts[2] = { { .tv_sec = (time_t)(now / USEC_PER_SEC - 3 * 86400), .tv_nsec = 500000000 },
                                  { .tv_sec = (time_t)(now / USEC_PER_SEC - 3 * 86400) } };
        EnvPrunePlan *p = NULL;
        EnvList *l = NULL;
        const EnvInfo *e;

        snprintf(kern, sizeof kern, "%s/.conda/envs/kern", fx->home);
        build_small(kern, now - 2 * DAY_USEC);
        write_hook_time(kern, (now - 100 * DAY_USEC) / USEC_PER_SEC);
        snprintf(act, sizeof act, "%s/.conda/envs/act", fx->home);
        build_small(act, now - 100 * DAY_USEC);
        write_hook_time(act, (now - 2 * DAY_USEC) / USEC_PER_SEC);
        snprintf(tie, sizeof tie, "%s/.conda/envs/tie", fx->home);
        build_small(tie, now);
        snprintf(path, sizeof path, "%s/bin/python3.11", tie);
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
        write_hook_time(tie, now / USEC_PER_SEC - 3 * 86400);

        assert_int_equal(env_list_user(&fx->user, &fx->opts, &l), 0);
        e = find_env(l, "kern");
        assert_int_equal(e->last_used_source, ENV_LAST_USED_ATIME);
        assert_int_equal(e->last_used_usec, now - 2 * DAY_USEC);
        e = find_env(l, "act");
        assert_int_equal(e->last_used_source, ENV_LAST_USED_HOOK);
        assert_int_equal(e->last_used_usec, now - 2 * DAY_USEC);
        e = find_env(l, "tie");
        assert_int_equal(e->last_used_source, ENV_LAST_USED_HOOK);
        assert_int_equal(e->last_used_usec, now - 3 * DAY_USEC);
        e = find_env(l, "ml"); /* hook a day ago, atime 300 days ago */
        assert_int_equal(e->last_used_source, ENV_LAST_USED_HOOK);
        env_list_free(l);

        assert_int_equal(env_prune_plan(&fx->user, 90 * DAY_USEC, now, &fx->opts, &p), 0);
        assert_non_null(plan_item(p, "kern")->skip_reason);
        assert_non_null(strstr(plan_item(p, "kern")->skip_reason, "(atime)"));
        assert_int_equal(plan_item(p, "kern")->last_used_source, ENV_LAST_USED_ATIME);
        assert_non_null(plan_item(p, "act")->skip_reason);
        assert_null(plan_item(p, "old")->skip_reason);
        env_prune_plan_free(p);
}

/* The passwd home may be a path its user can swap for a symlink to someone
 * else's directory (a home under a sticky shared dir pointed at /root): what
 * it leads to must be the user's, or nothing is read, and the others are
 * still listed and backed up. A home reached through a symlink that is the
 * user's own (/home → /data/home) still works. */
static void test_home_owner(void **state)
{
        Fixture *fx = *state;
        char link_home[256], dir[256], *path = NULL;
        EnvUser users[2] = {}, self_via_link = {};
        EnvList **lists = NULL, *l = NULL;
        EnvPrunePlan *p = NULL;
        EnvInfo *e = NULL;
        struct archive *a;
        struct archive_entry *ent;

        snprintf(link_home, sizeof link_home, "%s/intruder-home", fx->root);
        assert_int_equal(symlink(fx->home, link_home), 0);
        assert_int_equal(env_user_make(getuid(), getgid(), "tester", fx->home, &users[0]), 0);
        assert_int_equal(env_user_make(getuid() + 1, getgid(), "intruder", link_home, &users[1]), 0);

        assert_int_equal(env_list_user(&users[1], &fx->opts, &l), -EPERM);
        assert_int_equal(env_find(&users[1], "ml", &fx->opts, &e), -EPERM);
        assert_int_equal(env_prune_plan(&users[1], DAY_USEC, now_usec(CLOCK_REALTIME), &fx->opts, &p),
                         -EPERM);

        assert_int_equal(env_list_users(users, 2, &fx->opts, &lists), 0);
        assert_non_null(find_env(lists[0], "ml"));
        assert_int_equal(lists[0]->n_errors, 0);
        assert_int_equal(lists[1]->n_envs, 0);
        assert_int_equal(lists[1]->n_errors, 1);
        assert_non_null(strstr(lists[1]->errors[0], "not owned by intruder"));
        env_lists_free(lists, 2);

        snprintf(dir, sizeof dir, "%s/backups", fx->root);
        mkdir_p("%s", dir);
        assert_int_equal(env_backup(users, 2, dir, &fx->opts, now_usec(CLOCK_REALTIME), &path), 0);
        a = archive_read_new();
        archive_read_support_filter_gzip(a);
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
        bool saw_tester = false;
        while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
                assert_int_not_equal(strncmp(archive_entry_pathname(ent), "intruder/", 9), 0);
                saw_tester = saw_tester || strncmp(archive_entry_pathname(ent), "tester/", 7) == 0;
        }
        assert_true(saw_tester);
        archive_read_free(a);
        free(path);

        assert_int_equal(env_user_make(getuid(), getgid(), "tester", link_home, &self_via_link), 0);
        assert_int_equal(env_find(&self_via_link, "ml", &fx->opts, &e), 0);
        env_info_free(e);
        env_user_done(&self_via_link);
        env_user_done(&users[0]);
        env_user_done(&users[1]);
}

static int fail_with_enoent(void *userdata)
{
        return -ENOENT;
}

static int write_marker(void *userdata)
{
        return creat((const char *)userdata, 0600) < 0 ? -errno : 0;
}

static int check_is_nobody(void *userdata)
{
        uid_t r, e, s;
        gid_t rg, eg, sg;

        if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return -errno;
        if (r != 65534 || e != 65534 || s != 65534 || rg != 65534 || eg != 65534 || sg != 65534)
                return -EPERM;
        /* and root cannot be regained */
        return setuid(0) == 0 ? -EPERM : 0;
}

static void test_run_as_user(void **state)
{
        Fixture *fx = *state;
        char path[512];

        assert_int_equal(env_run_as_user(getuid(), getgid(), fail_with_enoent, NULL), -ENOENT);
        snprintf(path, sizeof path, "%s/marker", fx->home);
        assert_int_equal(env_run_as_user(getuid(), getgid(), write_marker, path), 0);
        assert_int_equal(access(path, F_OK), 0);
        if (geteuid() == 0)
                assert_int_equal(env_run_as_user(65534, 65534, check_is_nobody, NULL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_channel_canonical),
                cmocka_unit_test(test_spec_name),
                cmocka_unit_test(test_history_specs),
                cmocka_unit_test(test_history_limits),
                cmocka_unit_test_setup_teardown(test_discovery, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_inventory_fields, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_pip_torch_fallback, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_size_counts_inodes_once, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_size_cache, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_base_size_leaves_out_envs_and_pkgs, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_beneath_dots, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_not_followed, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_export, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_export_defaults_channel, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_backup, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_clean_cache, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_prune_and_restore, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_run_as_user, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_non_utf8_names, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_prune_future_last_use, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_export_channel_order, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_export_hostile_names, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_export_scalar_styles, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_last_used_newer_wins, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_home_owner, fixture_setup, fixture_teardown),
        };

        return cmocka_run_group_tests_name("test-env", tests, NULL, NULL);
}
