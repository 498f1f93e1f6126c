/* bench-env: wall time of `gpukeeper env list --all-users --json` over the
 * conda environments of many users.
 *
 * The benchmark makes real users gkbench-env-00 .. (useradd -m, homes under
 * a scratch directory) and gives each, writing as that user, the layout of
 * a Miniconda install that has been used for a while:
 *
 *   ~/miniconda3/pkgs/<name>-<version>-<build>/   the package cache: the
 *       files of each package, and info/index.json, info/paths.json and
 *       info/repodata_record.json; the archives are gone (conda clean -t);
 *   ~/miniconda3 (base) and ~/miniconda3/envs/<name> (the others): the
 *       environments, --envs in all, each with --packages packages taken
 *       from a pool of --packages + 100 (the first 150 common to every env,
 *       the rest varying). Every file of a package is a hard link to the
 *       cache, as conda links them; conda-meta/<dist>.json is a full record
 *       (files, paths_data, link, url, hashes...); conda-meta/history holds
 *       a create block and an install block; bin/python and bin/python3 are
 *       symlinks to python3.11; half the environments carry the activate
 *       hook's conda-meta/gpukeeper-last-activated; site-packages holds 5
 *       pip packages no conda record lists;
 *   ~/.conda/environments.txt listing every prefix; ~/.condarc with two
 *       channels.
 *
 * A package has 50 files when its pool index is a multiple of 4 and 10
 * otherwise (20 on average: 4,000 links per environment), laid out as
 * conda packages are: Python packages in lib/python3.11/site-packages/<pkg>
 * with a dist-info directory, native ones in lib/, include/<pkg>/ and
 * share/licenses/<pkg>/.
 *
 * Then it times the command as root, spawned with stdout to a file: once
 * cold (the first listing after the layout was written: nothing about these
 * environments is in the CLI's size cache; the page cache is warm unless
 * --drop-caches), then --warm times. The output of the cold run and of the
 * last warm run is checked: every environment of every benchmark user
 * listed, with its packages, Python version and a size, and no errors.
 * At the end the users are removed with their homes (userdel -r).
 *
 * Target (the issue): under 1 s warm (p50 and mean). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"

#define TARGET_SEC 1.0
#define DEFAULT_USERS 50
#define DEFAULT_ENVS 10
#define DEFAULT_PACKAGES 200
#define DEFAULT_WARM 10
#define MAX_USERS 100
#define MAX_ENVS 50
#define MAX_PACKAGES 2000
#define POOL_EXTRA 100   /* the pool has packages + POOL_EXTRA dists */
#define COMMON 150       /* dists every env has (at most `packages`) */
#define PIP_PACKAGES 5
#define USER_PREFIX "gkbench-env-"
#define PYTHON_VERSION "3.11.7"
#define SITE "lib/python3.11/site-packages"
#define SIZE_CACHE "/var/cache/gpukeeper/env-sizes.json"

extern char **environ;

typedef struct Options {
        const char *gpukeeper;
        size_t users;
        size_t envs;
        size_t packages;
        size_t warm;
        bool drop_caches;
        bool keep;
} Options;

/* ---- the layout -------------------------------------------------------- */

/* Names of the first dists of the pool, so the records look like a real
 * PyTorch environment; the rest are dep-NNN. Index 0 must stay python and
 * 1 pytorch (versions and the CUDA tag are read from them). */
static const char *const real_names[] = {
        "python",       "pytorch",       "cuda-version",   "numpy",         "pip",
        "setuptools",   "wheel",         "openssl",        "libgcc-ng",     "libstdcxx-ng",
        "libzlib",      "xz",            "bzip2",          "ncurses",       "readline",
        "sqlite",       "tk",            "libffi",         "ca-certificates", "certifi",
        "requests",     "urllib3",       "idna",           "charset-normalizer", "typing_extensions",
        "filelock",     "jinja2",        "markupsafe",     "sympy",         "mpmath",
        "networkx",     "pillow",        "libjpeg-turbo",  "libpng",        "scipy",
        "pandas",       "python-dateutil", "pytz",         "six",           "tqdm",
        "pyyaml",       "cudnn",         "nccl",           "libcublas",     "libcufft",
        "libcurand",    "libcusolver",   "libcusparse",    "cuda-cudart",   "cuda-nvrtc",
        "triton",       "mkl",           "intel-openmp",   "tbb",           "llvm-openmp",
        "_openmp_mutex", "libblas",      "liblapack",      "matplotlib-base", "fonttools",
};

static const char *const env_names[] = {
        "torch22", "nlp", "vision", "rl-exp", "py311", "jax-test", "old-proj", "thesis",
        "bench", "llm-ft", "diffusion", "audio", "tabular", "sandbox", "course",
};

typedef struct Dist {
        char name[64];
        char version[32];
        char build[48];
        char dist[160]; /* name-version-build */
        unsigned n_files;
        bool python_package; /* files in site-packages (python itself: the stdlib) */
} Dist;

static void dist_make(size_t i, Dist *d)
{
        if (i < ELEMENTSOF(real_names))
                snprintf(d->name, sizeof(d->name), "%s", real_names[i]);
        else
                snprintf(d->name, sizeof(d->name), "dep-%03zu", i);
        if (i == 0) {
                snprintf(d->version, sizeof(d->version), PYTHON_VERSION);
                snprintf(d->build, sizeof(d->build), "h955ad1f_0");
        } else if (i == 1) {
                snprintf(d->version, sizeof(d->version), "2.2.0");
                snprintf(d->build, sizeof(d->build), "py3.11_cuda12.1_cudnn8.9.2_0");
        } else if (i == 2) {
                snprintf(d->version, sizeof(d->version), "12.1");
                snprintf(d->build, sizeof(d->build), "h1d6eff3_3");
        } else {
                snprintf(d->version, sizeof(d->version), "%zu.%zu.%zu", 1 + i % 3, i % 17, i % 5);
                snprintf(d->build, sizeof(d->build), "%s%07zx_%zu",
                         i % 2 ? "py311h" : "h", (i * 2654435761u) & 0xfffffff, i % 3);
        }
        snprintf(d->dist, sizeof(d->dist), "%s-%s-%s", d->name, d->version, d->build);
        d->n_files = i % 4 == 0 ? 50 : 10;
        d->python_package = i == 0 || i % 2 == 1;
}

/* The path, relative to a prefix, of file `k` of dist `i`. */
static void dist_file(size_t i, const Dist *d, unsigned k, char *buf, size_t len)
{
        if (i == 0) {
                if (k == 0)
                        snprintf(buf, len, "bin/python3.11");
                else
                        snprintf(buf, len, "lib/python3.11/stdlib_%03u.py", k);
        } else if (d->python_package) {
                if (k == 0)
                        snprintf(buf, len, SITE "/%s-%s.dist-info/METADATA", d->name, d->version);
                else if (k == 1)
                        snprintf(buf, len, SITE "/%s-%s.dist-info/RECORD", d->name, d->version);
                else
                        snprintf(buf, len, SITE "/%s/mod_%03u.py", d->name, k);
        } else {
                if (k == 0)
                        snprintf(buf, len, "lib/lib%s.so.%s", d->name, d->version);
                else if (k == 1)
                        snprintf(buf, len, "share/licenses/%s/LICENSE", d->name);
                else
                        snprintf(buf, len, "include/%s/h_%03u.h", d->name, k);
        }
}

/* A made-up but well-formed 64-hex-digit hash of a string. */
static void fake_sha256(const char *s, unsigned salt, char out[65])
{
        uint64_t h = 1469598103934665603u ^ salt;

        for (const char *p = s; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211u;
        for (int i = 0; i < 4; i++) {
                snprintf(out + 16 * i, 17, "%016" PRIx64, h);
                h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9u;
        }
}

/* A growing text buffer; on allocation failure it stays failed. */
typedef struct Buf {
        char *p;
        size_t len, cap;
        bool failed;
} Buf;

_printf_(2, 3) static void buf_printf(Buf *b, const char *fmt, ...)
{
        va_list ap;
        int k;

        if (b->failed)
                return;
        for (;;) {
                va_start(ap, fmt);
                k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (k < 0) {
                        b->failed = true;
                        return;
                }
                if (b->p && b->len + (size_t)k < b->cap) {
                        b->len += (size_t)k;
                        return;
                }
                size_t cap = MAX(b->cap * 2, b->len + (size_t)k + 4096);
                char *n = realloc(b->p, cap);
                if (!n) {
                        b->failed = true;
                        return;
                }
                b->p = n;
                b->cap = cap;
        }
}

/* Create every missing directory of `rel` (a file's path) below dirfd. */
static int mkdir_parents_at(int dirfd, const char *rel)
{
        char path[PATH_MAX];

        if (strlen(rel) >= sizeof(path))
                return -ENAMETOOLONG;
        strcpy(path, rel);
        for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                if (mkdirat(dirfd, path, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        return 0;
}

/* Write `len` bytes as file `rel` below dirfd, creating its directories. */
static int write_at(int dirfd, const char *rel, const char *data, size_t len)
{
        _cleanup_close_ int fd = -1;
        int r;

        fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ENOENT) {
                r = mkdir_parents_at(dirfd, rel);
                if (r < 0)
                        return r;
                fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                            0644);
        }
        if (fd < 0)
                return negative_errno();
        while (len > 0) {
                ssize_t k = write(fd, data, len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
                data += k;
                len -= (size_t)k;
        }
        return 0;
}

/* Hard-link `rel` from the cache directory into the prefix, as conda does. */
static int link_at(int from, int to, const char *rel)
{
        int r;

        if (linkat(from, rel, to, rel, 0) == 0)
                return 0;
        if (errno != ENOENT)
                return negative_errno();
        r = mkdir_parents_at(to, rel);
        if (r < 0)
                return r;
        return linkat(from, rel, to, rel, 0) == 0 ? 0 : negative_errno();
}

/* The package cache entry of dist i: its files and conda's info/ files. */
static int write_cache_entry(int pkgsfd, size_t i, const Dist *d)
{
        _cleanup_close_ int fd = -1;
        char rel[256], data[2048], sha[65];
        Buf paths = { 0 };
        int r;

        if (mkdirat(pkgsfd, d->dist, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        fd = openat(pkgsfd, d->dist, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        buf_printf(&paths, "{\n  \"paths\": [\n");
        for (unsigned k = 0; k < d->n_files; k++) {
                size_t len = 64 + (i * 131 + k * 977) % 1900;

                size_t head;

                /* A comment line naming the file, padded to `len`. */
                dist_file(i, d, k, rel, sizeof(rel));
                head = (size_t)snprintf(data, sizeof(data), "# %s: %s\n", d->dist, rel);
                if (head >= len)
                        head = len - 1;
                memset(data + head, '#', len - head);
                data[len - 1] = '\n';
                r = write_at(fd, rel, data, len);
                if (r < 0) {
                        free(paths.p);
                        return r;
                }
                fake_sha256(rel, (unsigned)i, sha);
                buf_printf(&paths,
                           "    {\"_path\": \"%s\", \"path_type\": \"hardlink\", \"sha256\": "
                           "\"%s\", \"size_in_bytes\": %zu}%s\n",
                           rel, sha, len, k + 1 < d->n_files ? "," : "");
        }
        buf_printf(&paths, "  ],\n  \"paths_version\": 1\n}\n");
        if (paths.failed) {
                free(paths.p);
                return -ENOMEM;
        }
        r = write_at(fd, "info/paths.json", paths.p, paths.len);
        free(paths.p);
        if (r < 0)
                return r;
        int k = snprintf(data, sizeof(data),
                         "{\n  \"arch\": \"x86_64\",\n  \"build\": \"%s\",\n  \"build_number\": "
                         "%zu,\n  \"depends\": [\"libgcc-ng >=12\"],\n  \"license\": "
                         "\"BSD-3-Clause\",\n  \"name\": \"%s\",\n  \"platform\": \"linux\",\n"
                         "  \"subdir\": \"linux-64\",\n  \"timestamp\": %zu,\n  \"version\": "
                         "\"%s\"\n}\n",
                         d->build, i % 3, d->name, 1690000000000 + i * 86400000, d->version);
        r = write_at(fd, "info/index.json", data, (size_t)k);
        if (r < 0)
                return r;
        k = snprintf(data, sizeof(data),
                     "{\n  \"build\": \"%s\",\n  \"channel\": \"conda-forge\",\n  \"fn\": "
                     "\"%s.conda\",\n  \"name\": \"%s\",\n  \"subdir\": \"linux-64\",\n  "
                     "\"url\": \"https://conda.anaconda.org/conda-forge/linux-64/%s.conda\",\n  "
                     "\"version\": \"%s\"\n}\n",
                     d->build, d->dist, d->name, d->dist, d->version);
        return write_at(fd, "info/repodata_record.json", data, (size_t)k);
}

/* conda-meta/<dist>.json of dist i in an env, as conda writes it. */
static int write_record(int metafd, const char *home, size_t i, const Dist *d)
{
        char rel[PATH_MAX], sha[65], name[PATH_MAX];
        Buf b = { 0 };
        int r;

        fake_sha256(d->dist, 7, sha);
        buf_printf(&b,
                   "{\n  \"build\": \"%s\",\n  \"build_number\": %zu,\n  \"channel\": "
                   "\"https://conda.anaconda.org/conda-forge/linux-64\",\n  \"constrains\": [],\n"
                   "  \"depends\": [\"libgcc-ng >=12\", \"python >=3.11,<3.12.0a0\"],\n"
                   "  \"extracted_package_dir\": \"%s/miniconda3/pkgs/%s\",\n  \"features\": \"\",\n"
                   "  \"files\": [\n",
                   d->build, i % 3, home, d->dist);
        for (unsigned k = 0; k < d->n_files; k++) {
                dist_file(i, d, k, rel, sizeof(rel));
                buf_printf(&b, "    \"%s\"%s\n", rel, k + 1 < d->n_files ? "," : "");
        }
        buf_printf(&b,
                   "  ],\n  \"fn\": \"%s.conda\",\n  \"license\": \"BSD-3-Clause\",\n  \"link\": "
                   "{\n    \"source\": \"%s/miniconda3/pkgs/%s\",\n    \"type\": 1\n  },\n"
                   "  \"md5\": \"%.32s\",\n  \"name\": \"%s\",\n  \"package_tarball_full_path\": "
                   "\"%s/miniconda3/pkgs/%s.conda\",\n  \"paths_data\": {\n    \"paths\": [\n",
                   d->dist, home, d->dist, sha, d->name, home, d->dist);
        for (unsigned k = 0; k < d->n_files; k++) {
                char fsha[65];

                dist_file(i, d, k, rel, sizeof(rel));
                fake_sha256(rel, (unsigned)i, fsha);
                buf_printf(&b,
                           "      {\n        \"_path\": \"%s\",\n        \"path_type\": "
                           "\"hardlink\",\n        \"sha256\": \"%s\",\n        "
                           "\"size_in_bytes\": %zu\n      }%s\n",
                           rel, fsha, 64 + (i * 131 + k * 977) % 1900,
                           k + 1 < d->n_files ? "," : "");
        }
        buf_printf(&b,
                   "    ],\n    \"paths_version\": 1\n  },\n  \"requested_spec\": \"\",\n"
                   "  \"sha256\": \"%s\",\n  \"size\": %zu,\n  \"subdir\": \"linux-64\",\n"
                   "  \"timestamp\": %zu,\n  \"url\": "
                   "\"https://conda.anaconda.org/conda-forge/linux-64/%s.conda\",\n"
                   "  \"version\": \"%s\"\n}\n",
                   sha, 10000 + i * 4099, 1690000000000 + i * 86400000, d->dist, d->version);
        if (b.failed) {
                free(b.p);
                return -ENOMEM;
        }
        snprintf(name, sizeof(name), "%s.json", d->dist);
        r = write_at(metafd, name, b.p, b.len);
        free(b.p);
        return r;
}

/* The pool index of package j of env k. */
static size_t env_dist(const Options *o, size_t k, size_t j)
{
        size_t common = MIN(COMMON, o->packages), rest = o->packages + POOL_EXTRA - common;

        if (j < common)
                return j;
        return common + (k * 11 + (j - common)) % rest;
}

/* The average number of package files (hard links) per environment. */
static size_t links_per_env(const Options *o)
{
        size_t links = 0;

        for (size_t k = 0; k < o->envs; k++)
                for (size_t j = 0; j < o->packages; j++) {
                        Dist d;

                        dist_make(env_dist(o, k, j), &d);
                        links += d.n_files;
                }
        return links / o->envs;
}

/* One environment: hard links, records, history, pip packages, hook file. */
static int write_env(const Options *o, int homefd, int pkgsfd, const char *home, size_t k,
                     const char *prefix, const Dist *pool)
{
        _cleanup_close_ int envfd = -1, metafd = -1;
        char rel[PATH_MAX], text[512];
        Buf history = { 0 };
        int r;

        if (mkdirat(homefd, prefix, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        envfd = openat(homefd, prefix, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (envfd < 0 || (mkdirat(envfd, "conda-meta", 0755) < 0 && errno != EEXIST))
                return negative_errno();
        metafd = openat(envfd, "conda-meta", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (metafd < 0)
                return negative_errno();

        buf_printf(&history,
                   "==> 2025-%02zu-14 10:21:07 <==\n# cmd: %s/miniconda3/bin/conda create "
                   "-n %s python=3.11 pytorch=2.2 pytorch-cuda=12.1 numpy\n"
                   "# conda version: 24.1.2\n",
                   1 + k % 12, home, k == 0 ? "base" : env_names[(k - 1) % ELEMENTSOF(env_names)]);
        for (size_t j = 0; j < o->packages; j++) {
                size_t i = env_dist(o, k, j);
                const Dist *d = &pool[i];
                _cleanup_close_ int fromfd = openat(pkgsfd, d->dist, O_RDONLY | O_DIRECTORY |
                                                                              O_NOFOLLOW |
                                                                              O_CLOEXEC);

                if (fromfd < 0)
                        return negative_errno();
                for (unsigned f = 0; f < d->n_files; f++) {
                        dist_file(i, d, f, rel, sizeof(rel));
                        r = link_at(fromfd, envfd, rel);
                        if (r < 0)
                                return r;
                }
                r = write_record(metafd, home, i, d);
                if (r < 0)
                        return r;
                if (j == COMMON)
                        buf_printf(&history,
                                   "# update specs: ['python=3.11', 'pytorch=2.2', "
                                   "'pytorch-cuda=12.1', 'numpy']\n"
                                   "==> 2025-%02zu-20 16:02:44 <==\n# cmd: %s/miniconda3/bin/"
                                   "conda install -c conda-forge %s\n"
                                   "# conda version: 24.1.2\n",
                                   1 + k % 12, home, d->name);
                buf_printf(&history, "+conda-forge/linux-64::%s\n", d->dist);
        }
        buf_printf(&history, "# update specs: ['%s']\n",
                   pool[env_dist(o, k, o->packages - 1)].name);
        if (history.failed) {
                free(history.p);
                return -ENOMEM;
        }
        r = write_at(metafd, "history", history.p, history.len);
        free(history.p);
        if (r < 0)
                return r;

        if (symlinkat("python3.11", envfd, "bin/python") < 0 ||
            symlinkat("python3.11", envfd, "bin/python3") < 0)
                return negative_errno();
        for (unsigned p = 0; p < PIP_PACKAGES; p++) {
                int n = snprintf(text, sizeof(text),
                                 "Metadata-Version: 2.1\nName: pip-only-%u\nVersion: 0.%u.%zu\n"
                                 "Summary: installed with pip\n",
                                 p, p, k);

                snprintf(rel, sizeof(rel), SITE "/pip_only_%u-0.%u.%zu.dist-info/METADATA", p, p,
                         k);
                r = write_at(envfd, rel, text, (size_t)n);
                if (r < 0)
                        return r;
        }
        if (k % 2 == 1) {
                int n = snprintf(text, sizeof(text), "%zu\n", (size_t)1760000000 + k * 3600);

                r = write_at(envfd, "conda-meta/gpukeeper-last-activated", text, (size_t)n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The whole layout of one user, run as that user in its home. */
static int write_user(const Options *o, const BenchUser *u)
{
        _cleanup_close_ int homefd = -1, pkgsfd = -1;
        _cleanup_free_ Dist *pool = NULL;
        size_t n_pool = o->packages + POOL_EXTRA;
        Buf envs_txt = { 0 };
        char prefix[256];
        int r;

        homefd = open(u->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (homefd < 0)
                return negative_errno();
        if ((mkdirat(homefd, "miniconda3", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(homefd, "miniconda3/pkgs", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(homefd, "miniconda3/envs", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(homefd, ".conda", 0755) < 0 && errno != EEXIST))
                return negative_errno();
        pkgsfd = openat(homefd, "miniconda3/pkgs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                           O_CLOEXEC);
        pool = calloc(n_pool, sizeof(*pool));
        if (pkgsfd < 0 || !pool)
                return pkgsfd < 0 ? negative_errno() : -ENOMEM;
        for (size_t i = 0; i < n_pool; i++) {
                dist_make(i, &pool[i]);
                r = write_cache_entry(pkgsfd, i, &pool[i]);
                if (r < 0)
                        return r;
        }
        for (size_t k = 0; k < o->envs; k++) {
                if (k == 0)
                        snprintf(prefix, sizeof(prefix), "miniconda3");
                else if (k <= ELEMENTSOF(env_names))
                        snprintf(prefix, sizeof(prefix), "miniconda3/envs/%s", env_names[k - 1]);
                else
                        snprintf(prefix, sizeof(prefix), "miniconda3/envs/%s-%zu",
                                 env_names[(k - 1) % ELEMENTSOF(env_names)], k);
                r = write_env(o, homefd, pkgsfd, u->home, k, prefix, pool);
                if (r < 0)
                        return r;
                buf_printf(&envs_txt, "%s/%s\n", u->home, prefix);
        }
        if (envs_txt.failed) {
                free(envs_txt.p);
                return -ENOMEM;
        }
        r = write_at(homefd, ".conda/environments.txt", envs_txt.p, envs_txt.len);
        free(envs_txt.p);
        if (r < 0)
                return r;
        return write_at(homefd, ".condarc", "channels:\n  - conda-forge\n  - defaults\n", 39);
}

/* Fork a child that becomes `u` and writes its layout. Returns its pid or
 * -errno. */
static pid_t start_writer(const Options *o, const BenchUser *u)
{
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int r;

                if (setgroups(0, NULL) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
                    setresuid(u->uid, u->uid, u->uid) < 0)
                        _exit(EXIT_FAILURE);
                umask(022);
                r = write_user(o, u);
                if (r < 0) {
                        fprintf(stderr, "bench-env: writing the layout of %s: %s\n", u->name,
                                strerror(-r));
                        _exit(EXIT_FAILURE);
                }
                _exit(EXIT_SUCCESS);
        }
        return pid;
}

/* Write every user's layout, as many users at a time as there are CPUs.
 * Returns 0 or -1 after a message. */
static int write_layouts(const Options *o, const BenchUser *users)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t next = 0, running = 0, failed = 0, parallel = cpus > 0 ? (size_t)cpus : 1;

        while (next < o->users || running > 0) {
                int status;
                pid_t pid;

                if (next < o->users && running < parallel) {
                        pid = start_writer(o, &users[next]);
                        if (pid < 0) {
                                fprintf(stderr, "bench-env: fork: %s\n", strerror(-pid));
                                failed++;
                                break;
                        }
                        next++;
                        running++;
                        continue;
                }
                pid = wait(&status);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                running--;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        while (running > 0 && wait(NULL) > 0)
                running--;
        if (failed > 0) {
                fprintf(stderr, "bench-env: the layout of %zu users could not be written\n",
                        failed);
                return -1;
        }
        return 0;
}

/* ---- the measurement --------------------------------------------------- */

/* Run `gpukeeper env list --all-users --json` with stdout to `out` and
 * stderr to `err`; returns the wall time in seconds, or -1 after a message. */
static double time_listing(const Options *o, const char *out, const char *err)
{
        char *argv[] = { (char *)o->gpukeeper, "env", "list", "--all-users", "--json", NULL };
        posix_spawn_file_actions_t fa;
        uint64_t t0, t1;
        pid_t pid;
        int status, r;

        r = posix_spawn_file_actions_init(&fa);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out,
                                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err,
                                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        t0 = bench_now_nsec();
        if (r == 0)
                r = posix_spawn(&pid, o->gpukeeper, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                fprintf(stderr, "bench-env: cannot run %s: %s\n", o->gpukeeper, strerror(r));
                return -1;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        perror("bench-env: waitpid");
                        return -1;
                }
        t1 = bench_now_nsec();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-env: gpukeeper env list failed (status %d); its stderr "
                                "is in %s\n",
                        status, err);
                return -1;
        }
        return (double)(t1 - t0) / 1e9;
}

/* Is the user a benchmark user? Returns its index or -1. */
static int bench_user_index(const char *owner, const BenchUser *users, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (owner && strcmp(owner, users[i].name) == 0)
                        return (int)i;
        return -1;
}

/* Check a listing: every env of every benchmark user, complete and without
 * errors. Sets *ret_total (envs listed in all, other users' included) and
 * *ret_bytes (the sum of our envs' sizes). Returns 0 or -1 after a message. */
static int check_listing(const Options *o, const char *out, const BenchUser *users,
                         size_t *ret_total, uint64_t *ret_bytes)
{
        _cleanup_free_ size_t *per_user = calloc(o->users, sizeof(size_t));
        json_error_t jerr;
        json_t *doc = json_load_file(out, 0, &jerr), *envs, *errors, *e;
        size_t i, ours = 0, bad = 0;
        uint64_t bytes = 0;
        int ret = -1;

        if (!doc || !per_user) {
                fprintf(stderr, "bench-env: %s: %s\n", out, doc ? "out of memory" : jerr.text);
                json_decref(doc);
                return -1;
        }
        envs = json_object_get(doc, "envs");
        errors = json_object_get(doc, "errors");
        if (!json_is_array(envs) || !json_is_array(errors)) {
                fprintf(stderr, "bench-env: %s: no envs or errors array\n", out);
                goto finish;
        }
        json_array_foreach(envs, i, e) {
                int u = bench_user_index(json_string_value(json_object_get(e, "owner")), users,
                                         o->users);
                const char *python = json_string_value(json_object_get(e, "python"));
                json_int_t size = json_integer_value(json_object_get(e, "size_bytes"));

                if (u < 0)
                        continue;
                ours++;
                per_user[u]++;
                bytes += (uint64_t)size;
                if (!json_is_null(json_object_get(e, "error")) || size <= 0 || !python ||
                    strcmp(python, PYTHON_VERSION) != 0 ||
                    json_integer_value(json_object_get(e, "packages")) != (json_int_t)o->packages)
                        bad++;
        }
        json_array_foreach(errors, i, e)
                if (bench_user_index(json_string_value(json_object_get(e, "user")), users,
                                     o->users) >= 0)
                        bad++;
        for (i = 0; i < o->users; i++)
                if (per_user[i] != o->envs)
                        bad++;
        if (ours != o->users * o->envs || bad > 0) {
                fprintf(stderr,
                        "bench-env: %s lists %zu environments of the benchmark users, expected "
                        "%zu; %zu problems (errors, missing sizes or packages)\n",
                        out, ours, o->users * o->envs, bad);
                goto finish;
        }
        *ret_total = json_array_size(envs);
        *ret_bytes = bytes;
        ret = 0;
finish:
        json_decref(doc);
        return ret;
}

static int drop_caches(void)
{
        _cleanup_close_ int fd = -1;

        sync();
        fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "3\n", 2) != 2) {
                fprintf(stderr, "bench-env: cannot drop the page cache: %s\n", strerror(errno));
                return -1;
        }
        return 0;
}

static void print_size_cache(const char *when)
{
        struct stat st;

        if (stat(SIZE_CACHE, &st) == 0)
                printf("bench-env: %s: " SIZE_CACHE " exists, %lld bytes\n", when,
                       (long long)st.st_size);
        else
                printf("bench-env: %s: no " SIZE_CACHE "\n", when);
}

static int measure(const Options *o, const char *scratch, const BenchUser *users)
{
        char out[PATH_MAX], err[PATH_MAX];
        _cleanup_free_ double *warm = calloc(o->warm, sizeof(double));
        size_t total_cold = 0, total_warm = 0;
        uint64_t bytes_cold = 0, bytes_warm = 0;
        double cold;
        BenchStats w;

        if (!warm) {
                fprintf(stderr, "bench-env: out of memory\n");
                return BENCH_EXIT_ERROR;
        }
        snprintf(out, sizeof(out), "%s/list.json", scratch);
        snprintf(err, sizeof(err), "%s/list.stderr", scratch);

        print_size_cache("before the cold run");
        if (o->drop_caches && drop_caches() < 0)
                return BENCH_EXIT_ERROR;
        cold = time_listing(o, out, err);
        if (cold < 0 || check_listing(o, out, users, &total_cold, &bytes_cold) < 0)
                return BENCH_EXIT_ERROR;
        print_size_cache("after the cold run");
        for (size_t i = 0; i < o->warm; i++) {
                warm[i] = time_listing(o, out, err);
                if (warm[i] < 0)
                        return BENCH_EXIT_ERROR;
        }
        if (check_listing(o, out, users, &total_warm, &bytes_warm) < 0)
                return BENCH_EXIT_ERROR;
        if (bytes_warm != bytes_cold)
                printf("bench-env: note: the warm sizes (%" PRIu64 " bytes) differ from the cold "
                       "ones (%" PRIu64 ")\n",
                       bytes_warm, bytes_cold);

        printf("bench-env: %zu environments listed (%zu of the benchmark users, %.1f GiB by the "
               "listing's sizes)\n",
               total_warm, o->users * o->envs, (double)bytes_warm / (1u << 30));
        for (size_t i = 0; i < o->warm; i++)
                warm[i] *= 1000.0;
        w = bench_stats(warm, o->warm);
        printf("\n");
        bench_print_header("ms");
        printf("  %-34s %6d %10.1f %10s %10s %10s %10s\n",
               o->drop_caches ? "cold (page cache dropped)" : "cold (first listing)", 1,
               cold * 1000.0, "", "", "", "");
        bench_print_row("warm", &w);

        bool pass_p50 = w.p50 < TARGET_SEC * 1000.0, pass_mean = w.mean < TARGET_SEC * 1000.0;

        printf("\n  %-58s %s\n", "target: warm p50 < 1 s", pass_p50 ? "PASS" : "FAIL");
        printf("  %-58s %s\n", "target: warm mean < 1 s", pass_mean ? "PASS" : "FAIL");
        printf("bench-env: %s\n", pass_p50 && pass_mean ? "PASS" : "FAIL");
        return pass_p50 && pass_mean ? BENCH_EXIT_PASS : BENCH_EXIT_MISSED;
}

static void help(void)
{
        printf("Usage: bench-env [OPTIONS]\n"
               "\n"
               "Time `gpukeeper env list --all-users --json` over the conda environments of\n"
               "many users: cold once, then warm. Needs root: it makes the users " USER_PREFIX
               "NN\n"
               "(useradd -m, homes in a scratch directory), writes their conda layouts as\n"
               "them, and removes them with their homes at the end (userdel -r).\n"
               "\n"
               "  --gpukeeper PATH   the CLI (default " BENCH_GPUKEEPER ")\n"
               "  --users N          users (default %d, at most %d)\n"
               "  --envs N           environments per user, base included (default %d)\n"
               "  --packages N       packages per environment (default %d)\n"
               "  --warm N           warm listings to time (default %d)\n"
               "  --drop-caches      drop the page cache before the cold listing\n"
               "  --keep             leave the users and their homes in place\n"
               "\n"
               "Exit status: 0 target met, 2 target missed, 1 could not measure.\n",
               DEFAULT_USERS, MAX_USERS, DEFAULT_ENVS, DEFAULT_PACKAGES, DEFAULT_WARM);
}

/* Returns 1 to run, 0 to exit successfully (help), -1 on bad usage. */
static int parse_argv(int argc, char **argv, Options *o)
{
        const BenchOption options[] = {
                BENCH_STRING("gpukeeper", &o->gpukeeper),
                BENCH_COUNT("users", &o->users, MAX_USERS),
                BENCH_COUNT("envs", &o->envs, MAX_ENVS),
                BENCH_COUNT("packages", &o->packages, MAX_PACKAGES),
                BENCH_COUNT("warm", &o->warm, 1000),
                BENCH_FLAG("drop-caches", &o->drop_caches),
                BENCH_FLAG("keep", &o->keep),
        };

        *o = (Options){
                .gpukeeper = BENCH_GPUKEEPER,
                .users = DEFAULT_USERS,
                .envs = DEFAULT_ENVS,
                .packages = DEFAULT_PACKAGES,
                .warm = DEFAULT_WARM,
        };
        return bench_parse_options(argc, argv, options, ELEMENTSOF(options), help);
}

int main(int argc, char **argv)
{
        char scratch[PATH_MAX] = "", homes[PATH_MAX + 8];
        _cleanup_free_ BenchUser *users = NULL;
        uint64_t t0;
        Options o;
        int r, ret = BENCH_EXIT_ERROR;

        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : 64;
        if (!bench_need_root("it makes users and lists every user's environments"))
                return BENCH_EXIT_ERROR;
        users = calloc(o.users, sizeof(*users));
        if (!users) {
                fprintf(stderr, "bench-env: out of memory\n");
                return BENCH_EXIT_ERROR;
        }
        if (bench_scratch_make(scratch, sizeof(scratch)) < 0)
                return BENCH_EXIT_ERROR;
        snprintf(homes, sizeof(homes), "%s/home", scratch);
        /* The users must reach their homes through the scratch directory. */
        if (chmod(scratch, 0755) < 0 || mkdir(homes, 0755) < 0) {
                fprintf(stderr, "bench-env: cannot prepare %s: %s\n", homes, strerror(errno));
                goto finish;
        }

        t0 = bench_now_nsec();
        if (bench_users_make(USER_PREFIX, o.users, homes, users) < 0)
                goto finish;
        printf("bench-env: made %zu users in %.1f s\n", o.users,
               (double)(bench_now_nsec() - t0) / 1e9);
        t0 = bench_now_nsec();
        if (write_layouts(&o, users) < 0)
                goto finish;
        printf("bench-env: wrote %zu users x %zu environments x %zu packages (%zu hard links "
               "per environment on average) in %.1f s\n",
               o.users, o.envs, o.packages, links_per_env(&o), (double)(bench_now_nsec() - t0) / 1e9);
        ret = measure(&o, scratch, users);
finish:
        if (o.keep) {
                printf("bench-env: kept the users and %s\n", scratch);
                for (size_t i = 0; i < o.users; i++)
                        free(users[i].home);
                return ret;
        }
        bench_users_remove(users, o.users, true);
        bench_scratch_remove(scratch);
        return ret;
}
