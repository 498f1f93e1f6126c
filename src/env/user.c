/* The users whose environments are looked at, and how to act as one of them:
 * passwd lookups, and a forked child that has dropped to the user's uid/gid
 * for every write into a user's files (trash, environments.txt, caches, hooks). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env/env-internal.h"
#include "basic/user-util.h"

void env_user_done(EnvUser *u)
{
        if (!u)
                return;
        free(u->name);
        free(u->home);
        u->name = u->home = NULL;
}

void env_users_free(EnvUser *users, size_t n)
{
        if (!users)
                return;
        for (size_t i = 0; i < n; i++)
                env_user_done(&users[i]);
        free(users);
}

int env_user_make(uid_t uid, gid_t gid, const char *name, const char *home, EnvUser *ret)
{
        EnvUser u = { .uid = uid, .gid = gid };

        if (!home || home[0] != '/')
                return -EINVAL;
        u.name = strdup(name);
        u.home = strdup(home);
        if (!u.name || !u.home) {
                env_user_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

static int from_passwd(const struct passwd *pw, EnvUser *ret)
{
        return env_user_make(pw->pw_uid, pw->pw_gid, pw->pw_name, pw->pw_dir, ret);
}

/* getpwuid_r / getpwnam_r with a growing buffer (basic/user-util.h). */
static int lookup(bool by_name, const char *name, uid_t uid, EnvUser *ret)
{
        _cleanup_free_ char *buf = NULL;
        struct passwd pw;
        int r;

        r = by_name ? nss_passwd_by_name(name, &pw, &buf) : nss_passwd_by_uid(uid, &pw, &buf);
        if (r < 0)
                return r;
        return from_passwd(&pw, ret);
}

int env_user_from_uid(uid_t uid, EnvUser *ret)
{
        return lookup(false, NULL, uid, ret);
}

int env_user_from_name(const char *name, EnvUser *ret)
{
        return lookup(true, name, 0, ret);
}

int env_users_all(EnvUser **ret, size_t *ret_n)
{
        EnvUser *v = NULL;
        size_t n = 0;
        struct passwd *pw;
        int r = 0;

        /* getpwent is not reentrant, but nothing else in this process iterates
         * passwd concurrently (one thread). */
        setpwent();
        while (n < ENV_MAX_USERS) {
                EnvUser *nv;

                errno = 0;
                pw = getpwent();
                if (!pw) {
                        if (errno != 0 && errno != ENOENT)
                                r = -errno;
                        break;
                }
                if (pw->pw_uid < 1000 || pw->pw_uid == 65534)
                        continue;
                if (!pw->pw_dir || pw->pw_dir[0] != '/')
                        continue;
                nv = realloc(v, sizeof(*v) * (n + 1));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                r = from_passwd(pw, &v[n]);
                if (r < 0)
                        break;
                n++;
        }
        endpwent();
        if (r < 0) {
                env_users_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Supplementary groups of uid (from its passwd name), resolved in the parent so
 * the child does no NSS work after fork. Falls back to just gid. */
static int user_groups(uid_t uid, gid_t gid, gid_t **ret, int *ret_n)
{
        EnvUser u = {};
        int n = 64;
        gid_t *g;

        if (lookup(false, NULL, uid, &u) < 0) {
                g = malloc(sizeof(gid_t));
                if (!g)
                        return -ENOMEM;
                g[0] = gid;
                *ret = g;
                *ret_n = 1;
                return 0;
        }
        for (;;) {
                int want = n;

                g = malloc(sizeof(gid_t) * (size_t)n);
                if (!g) {
                        env_user_done(&u);
                        return -ENOMEM;
                }
                if (getgrouplist(u.name, gid, g, &want) >= 0) {
                        env_user_done(&u);
                        *ret = g;
                        *ret_n = want;
                        return 0;
                }
                free(g);
                if (want <= n || want > 65536) {
                        env_user_done(&u);
                        return -E2BIG;
                }
                n = want;
        }
}

static int become(uid_t uid, gid_t gid, const gid_t *groups, int n_groups)
{
        if (geteuid() == uid && getuid() == uid && getegid() == gid && geteuid() != 0)
                return 0; /* already that user, nothing to drop (and no right to) */
        if (geteuid() == 0 && uid == 0 && gid == 0)
                return 0; /* root acting for root (tests run as root) */
        if (setgroups((size_t)n_groups, groups) < 0)
                return negative_errno();
        if (setresgid(gid, gid, gid) < 0)
                return negative_errno();
        if (setresuid(uid, uid, uid) < 0)
                return negative_errno();
        /* Paranoia in the style of OpenSSH: a dropped root must not get back. */
        if (uid != 0 && setuid(0) == 0)
                return -EPERM;
        return 0;
}

int env_become_user(uid_t uid, gid_t gid)
{
        _cleanup_free_ gid_t *groups = NULL;
        int n = 0, r;

        r = user_groups(uid, gid, &groups, &n);
        if (r < 0)
                return r;
        return become(uid, gid, groups, n);
}

int env_run_as_user(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata)
{
        _cleanup_free_ gid_t *groups = NULL;
        int n = 0, r, status;
        pid_t pid;

        r = user_groups(uid, gid, &groups, &n);
        if (r < 0)
                return r;
        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                r = become(uid, gid, groups, n);
                if (r == 0)
                        r = fn(userdata);
                if (r < -254)
                        r = -EIO;
                _exit(r < 0 ? -r : 0);
        }
        for (;;) {
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                if (errno != EINTR)
                        return negative_errno();
        }
        if (WIFEXITED(status))
                return -WEXITSTATUS(status);
        return -EPROTO;
}
