/* Accounts: login names, the command lines of the shadow tools (useradd,
 * usermod, userdel) and running them; group membership; the backup
 * directory of a removed user. See onboard.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/strv.h"
#include "onboard/onboard.h"
#include "basic/user-util.h"

bool onboard_name_valid(const char *name)
{
        size_t len;

        if (!name)
                return false;
        len = strlen(name);
        if (len == 0 || len > ONBOARD_NAME_MAX)
                return false;
        if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
                return false;
        for (const char *p = name + 1; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '-'))
                        return false;
        return true;
}

/* A NULL-terminated heap copy of items[0..n). */
static int argv_make(const char *const *items, size_t n, char ***ret)
{
        _cleanup_(strv_freep) char **v = calloc(1, sizeof(char *));
        size_t k = 0;
        int r;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = strv_push(&v, &k, items[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int onboard_useradd_argv(const char *name, const char *shell, char ***ret)
{
        assert(name && shell && ret);
        if (!onboard_name_valid(name) || shell[0] != '/')
                return -EINVAL;
        const char *v[] = {"useradd", "--create-home", "--user-group", "--shell", shell, "--", name};
        return argv_make(v, ELEMENTSOF(v), ret);
}

int onboard_usermod_argv(const char *name, const char *group, char ***ret)
{
        assert(name && group && ret);
        if (!onboard_name_valid(name) || !group[0] || group[0] == '-')
                return -EINVAL;
        const char *v[] = {"usermod", "--append", "--groups", group, "--", name};
        return argv_make(v, ELEMENTSOF(v), ret);
}

int onboard_userdel_argv(const char *name, bool remove_home, char ***ret)
{
        assert(name && ret);
        if (!onboard_name_valid(name))
                return -EINVAL;
        if (remove_home) {
                const char *v[] = {"userdel", "--remove", "--", name};
                return argv_make(v, ELEMENTSOF(v), ret);
        }
        const char *v[] = {"userdel", "--", name};
        return argv_make(v, ELEMENTSOF(v), ret);
}

/* The executable for `tool`: an absolute path as is, a name in
 * ONBOARD_TOOL_PATH. */
static int tool_path(const char *tool, char *buf, size_t size)
{
        const char *p = ONBOARD_TOOL_PATH;

        if (tool[0] == '/') {
                if ((size_t)snprintf(buf, size, "%s", tool) >= size)
                        return -ENAMETOOLONG;
                return access(buf, X_OK) == 0 ? 0 : negative_errno();
        }
        if (strchr(tool, '/'))
                return -EINVAL;
        while (*p) {
                size_t n = strcspn(p, ":");

                if ((size_t)snprintf(buf, size, "%.*s/%s", (int)n, p, tool) < size &&
                    access(buf, X_OK) == 0)
                        return 0;
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

int onboard_run_tool(char *const argv[], int *ret_wstatus)
{
        char *const envp[] = {(char *)"PATH=" ONBOARD_TOOL_PATH, (char *)"LANG=C", NULL};
        char path[PATH_MAX];
        int pipefd[2], child_errno = 0, status, r;
        ssize_t k;
        pid_t pid;

        assert(argv && argv[0] && ret_wstatus);
        r = tool_path(argv[0], path, sizeof path);
        if (r < 0)
                return r;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (fd >= 0 && dup2(fd, STDIN_FILENO) >= 0)
                        execve(path, argv, envp);
                r = negative_errno();
                (void)!write(pipefd[1], &r, sizeof r);
                _exit(127);
        }
        close(pipefd[1]);
        do
                k = read(pipefd[0], &child_errno, sizeof child_errno);
        while (k < 0 && errno == EINTR);
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (k == (ssize_t)sizeof child_errno && child_errno < 0)
                return child_errno;
        *ret_wstatus = status;
        return 0;
}

int onboard_user_in_group(const char *name, gid_t gid, const char *group)
{
        _cleanup_free_ char *buf = NULL;
        struct group gr;
        int r;

        assert(name && group);
        r = nss_group_by_name(group, &gr, &buf);
        if (r < 0)
                return r;
        if (gr.gr_gid == gid)
                return 1;
        for (char **m = gr.gr_mem; m && *m; m++)
                if (strcmp(*m, name) == 0)
                        return 1;
        return 0;
}

int onboard_backup_dir(const char *base, const char *name, uint64_t now_usec, char **ret)
{
        time_t t = (time_t)(now_usec / 1000000);
        char stamp[32];
        struct tm tm;
        size_t n;

        assert(base && name && ret);
        if (base[0] != '/' || !onboard_name_valid(name))
                return -EINVAL;
        if (!localtime_r(&t, &tm) || strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm) == 0)
                return -EINVAL;
        n = strlen(base);
        while (n > 1 && base[n - 1] == '/')
                n--;
        if (asprintf(ret, "%.*s/%s-%s", (int)n, base, name, stamp) < 0)
                return -ENOMEM;
        return 0;
}

int onboard_mkdir_p(const char *path)
{
        _cleanup_free_ char *p = NULL;

        assert(path);
        if (path[0] != '/')
                return -EINVAL;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}
