/* Disk usage of many environments at once. Walking a prefix costs one fstatat
 * per file (a 200-package env has thousands), which dominates `env list
 * --all-users`. Two remedies: the walks are independent, so a few threads
 * share them (each job touches only its own EnvInfo; the job counter is the
 * only shared state), and an optional size cache (EnvOptions.size_cache) skips
 * the walk of an env whose change stamp is as it was at the last walk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/time-util.h"
#include "basic/fileio.h"
#include "env/env-internal.h"

#define SIZE_MAX_THREADS 16
#define SIZE_CACHE_MAX_BYTES (16u << 20)

typedef struct SizeJob {
        const EnvUser *user;
        unsigned flags; /* the list's: how its paths are opened */
        EnvInfo *env;
        char *cached_stamp; /* from the loaded cache, or NULL */
        uint64_t cached_size;
        char *stamp;          /* computed by the worker */
        uint64_t newest_usec; /* newest mtime in stamp */
} SizeJob;

typedef struct SizeWork {
        SizeJob *jobs;
        size_t n_jobs;
        bool want_stamps;
        atomic_size_t next;
        atomic_int error; /* first -ENOMEM */
} SizeWork;

static void *size_worker(void *userdata)
{
        SizeWork *w = userdata;

        for (;;) {
                size_t i = atomic_fetch_add(&w->next, 1);
                _cleanup_close_ int homefd = -1;
                SizeJob *j;
                int r;

                if (i >= w->n_jobs)
                        break;
                j = &w->jobs[i];
                r = env_open_home(j->user, &homefd);
                if (r >= 0)
                        r = env_info_load_size(j->user, homefd, j->env, j->flags, j->cached_stamp,
                                               j->cached_size, w->want_stamps ? &j->stamp : NULL,
                                               &j->newest_usec);
                if (r == -ENOMEM) {
                        int expected = 0;
                        atomic_compare_exchange_strong(&w->error, &expected, r);
                }
        }
        return NULL;
}

/* An entry written at `at` (unix seconds) may be used at `now` (µs): not
 * older than ENV_SIZE_CACHE_MAX_AGE_USEC, and not from the future (the clock
 * stepped back since: its age is unknown). */
static bool entry_fresh(uint64_t at, uint64_t now)
{
        return at <= now / USEC_PER_SEC && at * USEC_PER_SEC + ENV_SIZE_CACHE_MAX_AGE_USEC > now;
}

static char *cache_key(const EnvInfo *e)
{
        char *k;

        /* A base env is measured without envs/ and pkgs/: the same prefix
         * found as a plain env (someone's environments.txt) has another size. */
        if (asprintf(&k, "%llu:%llu:%d", (unsigned long long)e->dev, (unsigned long long)e->ino,
                     e->is_base) < 0)
                return NULL;
        return k;
}

/* The cache as a JSON object {"version":1,"entries":{key:{stamp,size,at}}};
 * a new empty one when missing, unreadable or not ours. */
static json_t *cache_load(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        json_t *j = NULL;

        if (fd >= 0 && read_full_fd(fd, SIZE_CACHE_MAX_BYTES, &text, &len) >= 0)
                j = json_loadb(text, len, 0, NULL);
        if (!json_is_object(json_object_get(j, "entries")) ||
            json_integer_value(json_object_get(j, "version")) != 1) {
                json_decref(j);
                j = json_pack("{s:i, s:{}}", "version", 1, "entries");
        }
        return j;
}

static int cache_save(const char *path, json_t *cache)
{
        _cleanup_free_ char *dir = strdup(path), *text = NULL;
        _cleanup_close_ int dfd = -1;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        text = json_dumps(cache, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        return env_write_file_atomic_at(dfd, slash + 1, text, strlen(text), 0600);
}

/* Run the jobs on min(cpus, jobs, SIZE_MAX_THREADS) threads, this one included. */
static int run_jobs(SizeWork *w)
{
        pthread_t threads[SIZE_MAX_THREADS];
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t n_threads = 0, want;

        want = MIN((size_t)MAX(cpus, 1), MIN(w->n_jobs, (size_t)SIZE_MAX_THREADS));
        /* A failed pthread_create only means fewer helpers. */
        for (size_t i = 1; i < want; i++)
                if (pthread_create(&threads[n_threads], NULL, size_worker, w) == 0)
                        n_threads++;
        size_worker(w);
        for (size_t i = 0; i < n_threads; i++)
                pthread_join(threads[i], NULL);
        return atomic_load(&w->error);
}

int env_lists_load_sizes(EnvList *const *lists, size_t n_lists, const EnvOptions *o)
{
        const char *cache_path = o ? o->size_cache : NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        SizeJob *jobs = NULL;
        json_t *cache = NULL, *entries = NULL;
        size_t n_jobs = 0;
        SizeWork w;
        int r = 0;

        for (size_t i = 0; i < n_lists; i++)
                n_jobs += lists[i]->n_envs;
        if (n_jobs == 0)
                return 0;
        jobs = calloc(n_jobs, sizeof(SizeJob));
        if (!jobs)
                return -ENOMEM;
        if (cache_path) {
                cache = cache_load(cache_path);
                if (!cache) {
                        free(jobs);
                        return -ENOMEM;
                }
                entries = json_object_get(cache, "entries");
        }
        n_jobs = 0;
        for (size_t i = 0; i < n_lists; i++)
                for (size_t k = 0; k < lists[i]->n_envs; k++) {
                        EnvInfo *e = lists[i]->envs[k];
                        SizeJob *j;

                        if (e->error)
                                continue;
                        j = &jobs[n_jobs++];
                        *j = (SizeJob){ .user = &lists[i]->user, .flags = lists[i]->flags, .env = e };
                        if (entries) {
                                _cleanup_free_ char *key = cache_key(e);
                                json_t *c = key ? json_object_get(entries, key) : NULL;
                                uint64_t at = (uint64_t)json_integer_value(json_object_get(c, "at"));

                                if (!key) {
                                        r = -ENOMEM;
                                        goto finish;
                                }
                                if (c && entry_fresh(at, now)) {
                                        const char *st = json_string_value(json_object_get(c, "stamp"));

                                        if (st && !(j->cached_stamp = strdup(st))) {
                                                r = -ENOMEM;
                                                goto finish;
                                        }
                                        j->cached_size = (uint64_t)json_integer_value(
                                                json_object_get(c, "size"));
                                }
                        }
                }

        w = (SizeWork){ .jobs = jobs, .n_jobs = n_jobs, .want_stamps = cache_path != NULL };
        atomic_init(&w.next, 0);
        atomic_init(&w.error, 0);
        r = run_jobs(&w);
        if (r < 0 || !cache_path)
                goto finish;

        /* Record fresh walks; reused entries keep their time, so the age limit
         * forces a walk now and then. A stamp with an mtime less than
         * ENV_SIZE_CACHE_SETTLE_USEC before the walk is not recorded: the
         * file system's clock is coarse, so a change right after the walk
         * could leave the same mtime behind (git's "racily clean" entries). */
        for (size_t i = 0; i < n_jobs; i++) {
                _cleanup_free_ char *key = NULL;

                if (!jobs[i].stamp || (jobs[i].cached_stamp && strcmp(jobs[i].cached_stamp, jobs[i].stamp) == 0))
                        continue;
                key = cache_key(jobs[i].env);
                if (!key) {
                        r = -ENOMEM;
                        goto finish;
                }
                if (jobs[i].newest_usec > now - ENV_SIZE_CACHE_SETTLE_USEC) {
                        json_object_del(entries, key);
                        continue;
                }
                if (json_object_set_new(entries, key,
                                                json_pack("{s:s, s:I, s:I}", "stamp", jobs[i].stamp,
                                                          "size", (json_int_t)jobs[i].env->size_bytes,
                                                          "at", (json_int_t)(now / USEC_PER_SEC))) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        /* Drop entries past the age limit so the file does not grow forever. */
        const char *key;
        json_t *value, *tmp;
        json_object_foreach_safe(entries, tmp, key, value) {
                uint64_t at = (uint64_t)json_integer_value(json_object_get(value, "at"));
                if (!entry_fresh(at, now))
                        json_object_del(entries, key);
        }
        /* Failing to write the cache only costs the next run a walk. */
        (void)cache_save(cache_path, cache);
        r = 0;
finish:
        for (size_t i = 0; i < n_jobs; i++) {
                free(jobs[i].stamp);
                free(jobs[i].cached_stamp);
        }
        free(jobs);
        json_decref(cache);
        return r;
}
