/* The child of `gpukeeper run`; see run-child.h. */
#include "cli/run-child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "cli/lease-render.h"

json_t *cli_lease_env(json_t *lease)
{
        _cleanup_(json_decrefp) json_t *env = NULL;
        _cleanup_free_ char *joined = NULL;
        const char *cvd = cli_json_str(lease, "cuda_visible_devices");
        json_t *devices = json_object_get(lease, "devices");
        char id[32];
        double v;

        if (!cli_json_num(lease, "id", &v) || v < 0 || v > 9e15)
                return NULL;
        snprintf(id, sizeof id, "%.0f", v);

        if (!cvd) {
                /* An older reply: join the UUIDs ourselves, in lease order. */
                size_t len = 0, n = json_array_size(devices);

                joined = calloc(n * 100 + 1, 1);
                if (!joined)
                        return NULL;
                for (size_t i = 0; i < n; i++) {
                        const char *u = cli_json_str(json_array_get(devices, i), "uuid");

                        if (!u || strlen(u) > 96)
                                return NULL;
                        len += (size_t)sprintf(joined + len, i ? ",%s" : "%s", u);
                }
                cvd = joined;
        }
        if (!cvd[0])
                return NULL;
        env = json_pack("{s:s, s:s, s:s}", "CUDA_VISIBLE_DEVICES", cvd, "CUDA_DEVICE_ORDER",
                        "PCI_BUS_ID", "GPUKEEPER_LEASE_ID", id);
        return TAKE_PTR(env);
}

void cli_child_env_free(char **env)
{
        strv_free(env);
}

/* Whether the NAME=value entry `entry` sets a variable that `set` names. */
static bool env_entry_in(const char *entry, json_t *set)
{
        const char *name;
        json_t *value;

        json_object_foreach(set, name, value)
        {
                size_t len = strlen(name);

                if (strncmp(entry, name, len) == 0 && entry[len] == '=')
                        return true;
        }
        return false;
}

int cli_child_env(char *const *base, json_t *set, char ***ret)
{
        size_t n = 0, used = 0;
        const char *name;
        json_t *value;
        char **env;

        json_object_foreach(set, name, value) if (!json_is_string(value)) return -EINVAL;
        while (base && base[n])
                n++;
        env = calloc(n + json_object_size(set) + 1, sizeof *env);
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (env_entry_in(base[i], set))
                        continue;
                env[used] = strdup(base[i]);
                if (!env[used]) {
                        cli_child_env_free(env);
                        return -ENOMEM;
                }
                used++;
        }
        json_object_foreach(set, name, value)
        {
                if (asprintf(&env[used], "%s=%s", name, json_string_value(value)) < 0) {
                        env[used] = NULL;
                        cli_child_env_free(env);
                        return -ENOMEM;
                }
                used++;
        }
        *ret = env;
        return 0;
}

int cli_child_spawn(char *const *argv, char *const *envp, const sigset_t *mask, pid_t *ret_pid,
                    int *ret_exec_errno)
{
        _cleanup_close_ int rfd = -1, wfd = -1;
        int fds[2], err = 0;
        ssize_t n;
        pid_t pid;

        /* Close-on-exec: the read end sees EOF the moment the exec
         * succeeds, or the errno the child writes when it fails. */
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        rfd = fds[0];
        wfd = fds[1];

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int e;

                sigprocmask(SIG_SETMASK, mask, NULL);
                execvpe(argv[0], argv, envp);
                e = errno;
                (void)!write(wfd, &e, sizeof e);
                _exit(e == ENOENT || e == ENOTDIR ? CLI_EXIT_NOT_FOUND : CLI_EXIT_NOT_EXECUTABLE);
        }

        close(TAKE_FD(wfd));
        do
                n = read(rfd, &err, sizeof err);
        while (n < 0 && errno == EINTR);
        *ret_pid = pid;
        *ret_exec_errno = n == (ssize_t)sizeof err ? err : 0;
        return 0;
}

int cli_exit_status(int wstatus)
{
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return WEXITSTATUS(wstatus);
}
