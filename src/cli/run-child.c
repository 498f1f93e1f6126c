/* The child of `gpukeeper run`; see run-child.h. */
#include "cli/run-child.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/prctl.h>
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
        /* A shared lease's hints (share_env, string values only). */
        if (env && json_is_object(json_object_get(lease, "share_env"))) {
                const char *name;
                json_t *value;

                json_object_foreach(json_object_get(lease, "share_env"), name, value)
                        if (json_is_string(value) && strncmp(name, "CUDA_", 5) != 0 &&
                            json_object_set(env, name, value) < 0)
                                return NULL;
        }
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

/* The child's stack: execvpe builds the candidate paths on it. */
#define SPAWN_STACK_SIZE (256 * 1024)

typedef struct spawn_args {
        char *const *argv;
        char *const *envp;
        const sigset_t *mask;
        pid_t parent;
        volatile int err; /* written by the child when its exec fails */
} spawn_args;

/* Whether PATH (the search path execvpe() used: ours, not the command's
 * environment's) has a file called `name` that is not a directory; a name
 * with a slash is not searched. execvpe() reports EACCES when a directory
 * of PATH could not be searched even if none has the command; a shell then
 * says "not found" (127) and keeps 126 for a file found that cannot run.
 * No allocation: it runs in the vfork child. */
static bool found_in_path(const char *name)
{
        const char *path = getenv("PATH"), *p, *end;
        size_t name_len = strlen(name);
        char buf[PATH_MAX];
        struct stat st;

        if (strchr(name, '/'))
                return true;
        if (!path)
                path = "/bin:/usr/bin"; /* execvpe's default */
        for (p = path;; p = end + 1) {
                size_t len;

                end = strchrnul(p, ':');
                len = (size_t)(end - p);
                if (len == 0) { /* an empty entry is the working directory */
                        p = ".";
                        len = 1;
                }
                if (len + 1 + name_len < sizeof buf) {
                        memcpy(buf, p, len);
                        buf[len] = '/';
                        memcpy(buf + len + 1, name, name_len + 1);
                        if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode))
                                return true;
                }
                if (!*end)
                        return false;
        }
}

bool cli_command_found(const char *name)
{
        struct stat st;

        if (strchr(name, '/'))
                return stat(name, &st) == 0 && !S_ISDIR(st.st_mode);
        return found_in_path(name);
}

/* Runs in the child, in our memory (CLONE_VM) while we are suspended
 * (CLONE_VFORK): no allocation, no stdio, only the mask, the exec and, on
 * failure, the errno written where the parent reads it. Signal handlers
 * would run in our memory too: the CLI installs none (its signals are
 * blocked and read from a signalfd), and the mask keeps them blocked until
 * the exec. */
static int spawn_child(void *userdata)
{
        spawn_args *a = userdata;
        int e;

        /* The command must not outlive its lease: when `run` dies (even by
         * SIGKILL, when nothing of ours can forward a signal), the kernel
         * sends the command SIGTERM. A parent that died before prctl is
         * caught by the getppid check. */
        if (prctl(PR_SET_PDEATHSIG, CLI_CHILD_PARENT_DEATH_SIGNAL) < 0 || getppid() != a->parent)
                return CLI_EXIT_NOT_EXECUTABLE;
        sigprocmask(SIG_SETMASK, a->mask, NULL);
        execvpe(a->argv[0], a->argv, a->envp);
        e = errno;
        if (e == EACCES && !found_in_path(a->argv[0]))
                e = ENOENT;
        a->err = e;
        /* Returning ends the child with this status (clone(2)); unlike
         * _exit() it is no noreturn call, which ASan would have to unwind
         * on this foreign stack (it warns on stderr when it does). */
        return e == ENOENT || e == ENOTDIR ? CLI_EXIT_NOT_FOUND : CLI_EXIT_NOT_EXECUTABLE;
}

int cli_child_spawn(char *const *argv, char *const *envp, const sigset_t *mask, pid_t *ret_pid,
                    int *ret_exec_errno)
{
        spawn_args a = { .argv = argv, .envp = envp, .mask = mask, .parent = getpid() };
        void *stack;
        pid_t pid;
        int e;

        /* vfork semantics, as posix_spawn: no copy of our page tables and no
         * copy-on-write faults in either process (fork cost about 1 ms on
         * the project's VM), and we resume exactly when the exec succeeded
         * or the child gave up, so no pipe is needed to learn which. */
        stack = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (stack == MAP_FAILED)
                return negative_errno();
        pid = clone(spawn_child, (char *)stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD,
                    &a);
        e = errno;
        munmap(stack, SPAWN_STACK_SIZE);
        if (pid < 0)
                return -e;
        *ret_pid = pid;
        *ret_exec_errno = a.err;
        return 0;
}

int cli_exit_status(int wstatus)
{
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return WEXITSTATUS(wstatus);
}

/* Add the CPUs of the cpulist `s` ("0-3,8") to *set. */
static int parse_cpulist(const char *s, cpu_set_t *set)
{
        while (*s) {
                char *end;
                unsigned long lo, hi;

                errno = 0;
                lo = strtoul(s, &end, 10);
                if (errno || end == s || lo >= CPU_SETSIZE)
                        return -EINVAL;
                hi = lo;
                s = end;
                if (*s == '-') {
                        hi = strtoul(s + 1, &end, 10);
                        if (errno || end == s + 1 || hi < lo || hi >= CPU_SETSIZE)
                                return -EINVAL;
                        s = end;
                }
                for (unsigned long c = lo; c <= hi; c++)
                        CPU_SET(c, set);
                if (*s == ',')
                        s++;
                else if (*s)
                        return -EINVAL;
        }
        return 0;
}

int cli_lease_cpus(json_t *lease, const cpu_set_t *allowed, cpu_set_t *ret)
{
        json_t *devices = json_object_get(lease, "devices"), *dev;
        cpu_set_t want;
        size_t i;
        bool any = false;

        CPU_ZERO(&want);
        json_array_foreach(devices, i, dev)
        {
                const char *cpus = json_string_value(json_object_get(dev, "cpus"));

                if (!cpus)
                        continue;
                if (parse_cpulist(cpus, &want) < 0)
                        return -EINVAL;
                any = true;
        }
        if (!any)
                return 0;
        CPU_AND(&want, &want, allowed);
        if (CPU_COUNT(&want) == 0)
                return 0;
        *ret = want;
        return 1;
}
