/* Jupyter kernelspecs that run an environment's python under a gpukeeper
 * lease; see kernel.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env/env-internal.h"
#include "env/kernel.h"

int env_kernel_dir_name(const char *env_name, char **ret)
{
        char *s;
        size_t len;

        assert(env_name && ret);
        len = strlen(env_name);
        if (len == 0 || len > 200)
                return -EINVAL;
        if (asprintf(&s, "gpukeeper-%s", env_name) < 0)
                return -ENOMEM;
        for (char *p = s; *p; p++) {
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
                else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                           *p == '_' || *p == '-'))
                        *p = '-';
        }
        *ret = s;
        return 0;
}

int env_kernel_spec(const char *env_name, const char *prefix, unsigned gpus, char **ret)
{
        _cleanup_(json_decrefp) json_t *spec = NULL;
        _cleanup_free_ char *python = NULL, *display = NULL, *text = NULL;
        char n[16];

        assert(env_name && prefix && ret);
        if (gpus == 0 || gpus > ENV_KERNEL_MAX_GPUS || prefix[0] != '/')
                return -EINVAL;
        snprintf(n, sizeof n, "%u", gpus);
        if (asprintf(&python, "%s/bin/python", prefix) < 0)
                return -ENOMEM;
        if (asprintf(&display, "Python (%s, %u GPU%s via gpukeeper)", env_name, gpus,
                     gpus == 1 ? "" : "s") < 0)
                return -ENOMEM;
        /* The prefix and name are a user's bytes: not necessarily UTF-8. */
        spec = json_pack("{s:[s,s,s,s,s,s,o,s,s,s,s], s:o, s:s, s:{s:b}}", "argv", "gpukeeper",
                         "run", "--gpus", n, "--wait", "--", env_json_string(python), "-m",
                         "ipykernel_launcher", "-f", "{connection_file}", "display_name",
                         env_json_string(display), "language", "python", "metadata", "debugger", 1);
        if (!spec)
                return -ENOMEM;
        text = json_dumps(spec, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        if (asprintf(ret, "%s\n", text) < 0)
                return -ENOMEM;
        return 0;
}

/* mkdir -p of an absolute path with the caller's rights. */
static int mkdir_p(const char *path)
{
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        for (char *p = copy + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        char saved = *p;

                        *p = '\0';
                        if (mkdir(copy, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        *p = saved;
                        if (saved == '\0')
                                return 0;
                }
        }
}

typedef struct KernelJob {
        const char *dir;
        const char *text;
} KernelJob;

static int write_kernel(void *userdata)
{
        const KernelJob *job = userdata;
        _cleanup_close_ int fd = -1;
        int r;

        r = mkdir_p(job->dir);
        if (r < 0)
                return r;
        fd = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return env_write_file_atomic_at(fd, "kernel.json", job->text, strlen(job->text), 0644);
}

int env_kernel_install(uid_t uid, gid_t gid, const char *data_dir, const char *env_name,
                       const char *prefix, unsigned gpus, char **ret_path)
{
        _cleanup_free_ char *dir_name = NULL, *dir = NULL, *text = NULL, *path = NULL;
        KernelJob job;
        int r;

        assert(data_dir && env_name && prefix && ret_path);
        if (data_dir[0] != '/')
                return -EINVAL;
        r = env_kernel_dir_name(env_name, &dir_name);
        if (r < 0)
                return r;
        r = env_kernel_spec(env_name, prefix, gpus, &text);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s/kernels/%s", data_dir, dir_name) < 0)
                return -ENOMEM;
        if (asprintf(&path, "%s/kernel.json", dir) < 0)
                return -ENOMEM;
        job = (KernelJob){.dir = dir, .text = text};
        r = geteuid() == 0 ? env_run_as_user(uid, gid, write_kernel, &job) : write_kernel(&job);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}
