/* Running conda / micromamba as a user to create an environment from a
 * template; see create.h. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/strv.h"
#include "env/create.h"
#include "env/env-internal.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define TEMPLATE_SUFFIX ".yml"
/* Templates listed at most (a directory of an administrator's files). */
#define MAX_TEMPLATES 1000

extern char **environ;

static bool is_executable_file(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Search `name` in the colon-separated `path_env`, as execvp would (an empty
 * element is the current directory, which we skip: a privileged caller must
 * not pick up a program from wherever it happens to be). */
static int search_path(const char *name, const char *path_env, char **ret)
{
        const char *p = path_env;

        while (*p) {
                const char *end = strchrnul(p, ':');
                size_t len = (size_t)(end - p);
                char *candidate;

                if (len > 0 && p[0] == '/') {
                        if (asprintf(&candidate, "%.*s/%s", (int)len, p, name) < 0)
                                return -ENOMEM;
                        if (is_executable_file(candidate)) {
                                *ret = candidate;
                                return 0;
                        }
                        free(candidate);
                }
                p = *end ? end + 1 : end;
        }
        return -ENOENT;
}

int env_conda_exe_find(const char *configured, const char *path_env, char **ret)
{
        static const char *const fallbacks[] = {"conda", "mamba", "micromamba"};
        char *s;

        assert(ret);
        if (!path_env)
                path_env = DEFAULT_PATH;
        if (configured && *configured) {
                if (!strchr(configured, '/'))
                        return search_path(configured, path_env, ret);
                if (!is_executable_file(configured))
                        return -ENOENT;
                s = strdup(configured);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(fallbacks); i++) {
                int r = search_path(fallbacks[i], path_env, ret);
                if (r != -ENOENT)
                        return r;
        }
        return -ENOENT;
}

static bool template_name_ok(const char *name)
{
        size_t len = strlen(name);

        if (len == 0 || len > 100 || name[0] == '.')
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

int env_template_path(const char *dir, const char *name, char **ret)
{
        _cleanup_free_ char *path = NULL;
        struct stat st;
        char *abs;

        assert(dir && name && ret);
        if (!template_name_ok(name))
                return -EINVAL;
        if (asprintf(&path, "%s/%s" TEMPLATE_SUFFIX, dir, name) < 0)
                return -ENOMEM;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return -ENOENT;
        /* Absolute: the tool runs in the user's home, not in our directory. */
        abs = realpath(path, NULL);
        if (!abs)
                return errno == ENOMEM ? -ENOMEM : -ENOENT;
        *ret = abs;
        return 0;
}

int env_template_list(const char *dir, char ***ret, size_t *ret_n)
{
        _cleanup_(strv_freep) char **names = NULL;
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        assert(dir && ret && ret_n);
        d = opendir(dir);
        if (!d)
                return negative_errno();
        names = calloc(1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d)) && n < MAX_TEMPLATES) {
                size_t len = strlen(de->d_name);
                char *name;

                if (len <= strlen(TEMPLATE_SUFFIX) || !env_endswith(de->d_name, TEMPLATE_SUFFIX))
                        continue;
                name = strndup(de->d_name, len - strlen(TEMPLATE_SUFFIX));
                if (name && !template_name_ok(name)) {
                        free(name);
                        continue;
                }
                if (strv_consume(&names, &n, name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        qsort(names, n, sizeof(char *), env_cmp_strp);
        *ret = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

/* A NULL-terminated copy of the `n` strings in `items`. */
static int strv_make(const char *const *items, size_t n, char ***ret)
{
        _cleanup_(strv_freep) char **v = calloc(n + 1, sizeof(char *));

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(items[i]);
                if (!v[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int env_create_argv(const char *conda_exe, const char *name_or_prefix, const char *file,
                    char ***ret)
{
        const char *base, *where;

        assert(conda_exe && name_or_prefix && file && ret);
        base = strrchr(conda_exe, '/');
        base = base ? base + 1 : conda_exe;
        where = strchr(name_or_prefix, '/') ? "-p" : "-n";
        if (strstr(base, "micromamba")) {
                const char *v[] = {conda_exe, "create", "-y", where, name_or_prefix, "-f", file};
                return strv_make(v, ELEMENTSOF(v), ret);
        }
        const char *v[] = {conda_exe, "env", "create", where, name_or_prefix, "-f", file};
        return strv_make(v, ELEMENTSOF(v), ret);
}

int env_create_envp(const EnvUser *user, bool inherit, char ***ret)
{
        static const char *const passed[] = {"LANG", "LC_ALL", "TERM"};
        _cleanup_(strv_freep) char **v = calloc(1, sizeof(char *));
        size_t n = 0;
        int r;

        assert(user && ret);
        if (!v)
                return -ENOMEM;
        if (inherit) {
                for (char **e = environ; e && *e; e++) {
                        if (!strchr(*e, '='))
                                continue;
                        r = strv_push(&v, &n, *e);
                        if (r < 0)
                                return r;
                }
                if (!getenv("HOME") && (r = strv_pushf(&v, &n, "HOME=%s", user->home)) < 0)
                        return r;
                if (!getenv("USER") && (r = strv_pushf(&v, &n, "USER=%s", user->name)) < 0)
                        return r;
                if (!getenv("LOGNAME") &&
                    (r = strv_pushf(&v, &n, "LOGNAME=%s", user->name)) < 0)
                        return r;
                *ret = TAKE_PTR(v);
                return 0;
        }
        if ((r = strv_pushf(&v, &n, "HOME=%s", user->home)) < 0 ||
            (r = strv_pushf(&v, &n, "USER=%s", user->name)) < 0 ||
            (r = strv_pushf(&v, &n, "LOGNAME=%s", user->name)) < 0 ||
            (r = strv_pushf(&v, &n, "PATH=%s", DEFAULT_PATH)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(passed); i++) {
                const char *value = getenv(passed[i]);

                if (value && (r = strv_pushf(&v, &n, "%s=%s", passed[i], value)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* In the child: a session of its own and stdin from /dev/null, so the tool
 * (and any package script it runs) has no controlling terminal: root's
 * terminal cannot be driven with TIOCSTI or read from. Then become the user,
 * go home, exec. On failure the errno goes through the close-on-exec pipe,
 * which an exec closes unwritten. */
static _Noreturn void child(const EnvUser *user, char *const argv[], char *const envp[], int err_fd,
                            const sigset_t *mask)
{
        int r = 0, fd;

        if (sigprocmask(SIG_SETMASK, mask, NULL) < 0 || setsid() < 0)
                r = negative_errno();
        if (r == 0) {
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                        r = negative_errno();
        }
        if (r == 0)
                r = env_become_user(user->uid, user->gid);
        if (r == 0) {
                if (chdir(user->home) < 0 && chdir("/") < 0)
                        r = negative_errno();
                else {
                        execve(argv[0], argv, envp);
                        r = negative_errno();
                }
        }
        (void)!write(err_fd, &r, sizeof r);
        _exit(127);
}

int env_create_run(const EnvUser *user, char *const argv[], char *const envp[], int *ret_wstatus)
{
        static const int forwarded[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
        _cleanup_close_ int rfd = -1, wfd = -1;
        int pipefd[2], status, child_errno = 0, r = 0;
        sigset_t set, old_mask;
        ssize_t k;
        pid_t pid;

        assert(user && argv && argv[0] && envp && ret_wstatus);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        rfd = pipefd[0];
        wfd = pipefd[1];

        /* The child is in another session, so a Ctrl-C reaches only us: the
         * signals are taken with sigwaitinfo and passed on to it. SIGCHLD is
         * blocked too so that its exit ends the wait without a race. */
        sigemptyset(&set);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&set, forwarded[i]);
        sigaddset(&set, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &set, &old_mask) < 0)
                return negative_errno();
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                goto out;
        }
        if (pid == 0)
                child(user, argv, envp, wfd, &old_mask);

        /* Our copy of the write end must go, or the read below never sees EOF. */
        close(TAKE_FD(wfd));
        do
                k = read(rfd, &child_errno, sizeof child_errno);
        while (k < 0 && errno == EINTR);
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                int sig;

                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        r = negative_errno();
                        goto out;
                }
                sig = sigwaitinfo(&set, NULL);
                if (sig > 0 && sig != SIGCHLD)
                        (void)kill(pid, sig);
        }
        if (k == (ssize_t)sizeof child_errno && child_errno < 0)
                r = child_errno;
        else
                *ret_wstatus = status;
out:
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        return r;
}
