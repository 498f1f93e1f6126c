/* `gpukeeper user add NAME [--group G]... [--template T]...`: set a person
 * up, each step checked first and done only when missing (see user.c for
 * the steps, and user-internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/user-util.h"
#include "cli/user-internal.h"
#include "config/env.h"
#include "env/create.h"
#include "env/hooks.h"
#include "env/kernel.h"


typedef struct Template {
        const char *name;
        char *file; /* absolute path of NAME.yml */
} Template;

/* Find each template in the directories, in order; print what is missing
 * (with what there is) and return the exit code. */
static int resolve_templates(const UserArgs *a, const char *const *dirs, size_t n_dirs,
                             Template *ret)
{
        for (size_t i = 0; i < a->n_templates; i++) {
                int r = -ENOENT;

                ret[i].name = a->templates[i];
                for (size_t d = 0; d < n_dirs && r == -ENOENT; d++)
                        r = env_template_path(dirs[d], a->templates[i], &ret[i].file);
                if (r == -EINVAL)
                        return cli_usage_error(a->verb, "'%s' is not a template name",
                                               a->templates[i]);
                if (r == -ENOMEM)
                        return CLI_EXIT_SOFTWARE;
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: no template '%s' in", a->templates[i]);
                        for (size_t d = 0; d < n_dirs; d++)
                                fprintf(stderr, "%s %s", d ? "," : "", dirs[d]);
                        fputs("; there are:", stderr);
                        for (size_t d = 0; d < n_dirs; d++) {
                                _cleanup_(strv_freep) char **names = NULL;
                                size_t n = 0;

                                if (env_template_list(dirs[d], &names, &n) == 0)
                                        for (size_t k = 0; k < n; k++)
                                                fprintf(stderr, " %s", names[k]);
                        }
                        fputs(" (nothing changed)\n", stderr);
                        return EXIT_NOT_FOUND;
                }
        }
        return CLI_EXIT_OK;
}

/* "a, b, c" of items[0..n), or `none`. */
static char *join(const char *const *items, size_t n, const char *none)
{
        size_t len = 1;
        char *s;

        if (n == 0)
                return strdup(none);
        for (size_t i = 0; i < n; i++)
                len += strlen(items[i]) + 2;
        s = calloc(1, len);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (i)
                        strcat(s, ", ");
                strcat(s, items[i]);
        }
        return s;
}

/* Render the welcome template; with `print`, on stdout. Returns an exit
 * code after one line naming the file and line of a bad placeholder. */
static int welcome(const Config *c, const UserArgs *a, const char *home, bool print)
{
        _cleanup_free_ char *loaded = NULL, *text = NULL, *groups = NULL, *envs = NULL;
        const char *template = onboard_welcome_default;
        char host[HOST_NAME_MAX + 1] = "";
        OnboardWelcomeVars v;
        unsigned line = 0;
        int r;

        if (c->onboarding.welcome) {
                r = onboard_welcome_load(c->onboarding.welcome, &loaded);
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot read the welcome text %s "
                                        "(onboarding.welcome): %s (nothing changed)\n",
                                c->onboarding.welcome,
                                r == -EFBIG    ? "larger than 64 KiB"
                                : r == -EINVAL ? "not a text file"
                                               : strerror(-r));
                        return r == -ENOMEM ? CLI_EXIT_SOFTWARE : EXIT_CONFIG;
                }
                template = loaded;
        }
        (void)gethostname(host, sizeof host - 1);
        groups = join(a->groups, a->n_groups, "none");
        envs = join(a->templates, a->n_templates, "none");
        if (!groups || !envs)
                return CLI_EXIT_SOFTWARE;
        v = (OnboardWelcomeVars){
                .user = a->name, .host = host, .home = home, .groups = groups, .envs = envs};
        r = onboard_welcome_render(template, &v, &text, &line);
        if (r == -EINVAL) {
                fprintf(stderr,
                        "gpukeeper: %s:%u: unknown or unclosed placeholder; the welcome text "
                        "knows {{user}}, {{host}}, {{home}}, {{groups}} and {{envs}} (nothing "
                        "changed)\n",
                        c->onboarding.welcome ? c->onboarding.welcome : "built-in welcome text",
                        line);
                return EXIT_CONFIG;
        }
        if (r < 0)
                return CLI_EXIT_SOFTWARE;
        if (print) {
                putchar('\n');
                fputs(text, stdout);
                if (text[0] && text[strlen(text) - 1] != '\n')
                        putchar('\n');
        }
        return CLI_EXIT_OK;
}

/* Whether the directory holding `path` is root's, not writable by group
 * or others, and no symlink (its own parents are the admin's: /home). */
static bool parent_is_roots(const char *path)
{
        _cleanup_free_ char *parent = strdup(path);
        char *slash;
        struct stat st;

        if (!parent)
                return false;
        slash = strrchr(parent, '/');
        if (!slash)
                return false;
        if (slash == parent)
                slash[1] = '\0';
        else
                *slash = '\0';
        return lstat(parent, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
               (st.st_mode & 022) == 0;
}

/* A home directory for an account that has none (useradd -M, or removed
 * by hand): mode 0750, owned by the user and their primary group. mkdir
 * never follows a symlink in the last component, and the chown goes
 * through the descriptor of what was made. */
static int ensure_home(const EnvUser *u, int *status)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (lstat(u->home, &st) == 0) {
                if (!S_ISDIR(st.st_mode)) {
                        fprintf(stderr, "gpukeeper: %s, the home of %s, is not a directory\n",
                                u->home, u->name);
                        cli_user_fail(status, CLI_EXIT_SOFTWARE);
                        return -ENOTDIR;
                }
                return 0;
        }
        r = -errno;
        if (r != -ENOENT) {
                fprintf(stderr, "gpukeeper: cannot look at the home %s of %s: %s\n", u->home,
                        u->name, strerror(-r));
                cli_user_fail(status, CLI_EXIT_IO);
                return r;
        }
        /* Only below a directory no one but root can change (/home): root
         * makes nothing in a path a user could swap under it. */
        if (!parent_is_roots(u->home)) {
                fprintf(stderr,
                        "gpukeeper: %s has no home directory %s, and its parent is not a "
                        "directory only root can change; create it by hand\n",
                        u->name, u->home);
                cli_user_fail(status, CLI_EXIT_PERMISSION);
                return -EPERM;
        }
        if (mkdir(u->home, 0750) < 0 ||
            (fd = open(u->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
            fchown(fd, u->uid, u->gid) < 0 || fchmod(fd, 0750) < 0) {
                r = -errno;
                fprintf(stderr, "gpukeeper: cannot create the home %s of %s: %s\n", u->home,
                        u->name, strerror(-r));
                cli_user_fail(status, CLI_EXIT_IO);
                return r;
        }
        cli_user_report("home", "%s: created", u->home);
        return 0;
}

static void add_groups(const UserArgs *a, const EnvUser *u, int *status)
{
        for (size_t i = 0; i < a->n_groups; i++) {
                _cleanup_(strv_freep) char **argv = NULL;
                int r = onboard_user_in_group(u->name, u->gid, a->groups[i]);

                if (r == -ENOENT) {
                        cli_user_report("group", "%s: no such group, not added", a->groups[i]);
                        cli_user_warn("there is no group '%s': gpukeeper does not create groups (groupadd "
                             "%s, then run this again)",
                             a->groups[i], a->groups[i]);
                        continue;
                }
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot read the group %s: %s\n", a->groups[i],
                                strerror(-r));
                        cli_user_fail(status, CLI_EXIT_SOFTWARE);
                        continue;
                }
                if (r > 0) {
                        cli_user_report("group", "%s: already a member", a->groups[i]);
                        continue;
                }
                if (onboard_usermod_argv(u->name, a->groups[i], &argv) < 0) {
                        cli_user_fail(status, CLI_EXIT_SOFTWARE);
                        continue;
                }
                r = cli_user_run_tool(argv);
                if (r != CLI_EXIT_OK) {
                        cli_user_fail(status, r);
                        continue;
                }
                cli_user_report("group", "%s: added", a->groups[i]);
        }
}

/* Which gpukeeper policy applies to the user now, as the daemon decides it
 * (config_policy_limits over the user's groups). */
static void show_policy(const Config *c, const EnvUser *u)
{
        gid_t gids[256];
        int n = (int)ELEMENTSOF(gids);
        _cleanup_(strv_freep) char **names = NULL;
        size_t n_names = 0;
        const ConfigPolicyLimits *l;
        const char *from = "the default policy";
        char gpus[64], dur[32];

        if (getgrouplist(u->name, u->gid, gids, &n) < 0)
                n = 0; /* more than 256 groups: the default is shown */
        names = calloc(1, sizeof(char *));
        if (!names)
                return;
        for (int i = 0; i < n; i++) {
                char buf[256];

                if (group_name_from_gid(gids[i], buf, sizeof buf) == 0 &&
                    strv_push(&names, &n_names, buf) < 0)
                        return;
        }
        l = config_policy_limits(c, (const char *const *)names, n_names);
        for (size_t i = 0; i < c->policy.n_groups; i++)
                if (l == &c->policy.groups[i].limits)
                        from = c->policy.groups[i].group;
        if (l->max_gpus)
                snprintf(gpus, sizeof gpus, "at most %" PRIu64 " GPU%s", l->max_gpus,
                         l->max_gpus == 1 ? "" : "s");
        else
                snprintf(gpus, sizeof gpus, "any number of GPUs");
        if (format_duration(dur, sizeof dur, l->max_duration_usec) < 0)
                snprintf(dur, sizeof dur, "?");
        cli_user_report("policy", "%s, leases up to %s (%s%s)", gpus, dur,
               l == &c->policy.limits ? "" : "policy.groups: ", from);
}

/* Ask gpukeeperd to apply the user's limits (limits.apply). A daemon that
 * does not know the request, or is not running, is a warning: the limits
 * are then NOT applied, and the report says so. */
static void apply_limits(const cli_context *ctx, const EnvUser *u, int *status)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        _cleanup_(json_decrefp) json_t *result = NULL;
        const char *sock = gk_socket_path(ctx->socket_arg);
        gk_call_error error = {};
        json_t *args;
        int r;

        r = gk_client_connect(sock, &client);
        if (r < 0) {
                cli_user_report("limits", "NOT applied: gpukeeperd is not reachable at %s", sock);
                cli_user_warn("%s's limits were not applied: gpukeeperd is not reachable at %s (%s); "
                     "run this again once it runs",
                     u->name, sock, strerror(-r));
                return;
        }
        args = json_pack("{s:s}", "user", u->name);
        if (!args) {
                cli_user_fail(status, CLI_EXIT_SOFTWARE);
                return;
        }
        r = gk_client_call(client, "limits.apply", args, &result, &error);
        if (r == 0) {
                cli_user_report("limits", "applied by gpukeeperd");
                return;
        }
        if (r == GK_E_UNKNOWN_OP) {
                cli_user_report("limits", "NOT applied: gpukeeperd does not know limits.apply");
                cli_user_warn("%s's limits were not applied: the gpukeeperd at %s does not know the "
                     "request limits.apply (it has no per-user limits); update it and run this "
                     "again",
                     u->name, sock);
                return;
        }
        if (r == GK_E_UNAVAILABLE) {
                /* Per-user limits are off (no limits section), or the daemon
                 * could not look the user up yet: its message says which. */
                cli_user_report("limits", "NOT applied: %s", error.message);
                cli_user_warn("%s's limits were not applied: gpukeeperd says: %s", u->name,
                     error.message);
                return;
        }
        cli_user_report("limits", "NOT applied");
        cli_user_fail(status, cli_call_failed(ctx, "limits.apply", r, &error));
}

/* Run conda for one template as the user, its stdout on our stderr so that
 * our stdout stays the report. Returns an exit code. */
static int create_env(const EnvUser *u, const char *exe, const Template *t)
{
        _cleanup_(strv_freep) char **argv = NULL, **envp = NULL;
        int r, saved, wstatus = 0;

        if (env_create_argv(exe, t->name, t->file, &argv) < 0 ||
            env_create_envp(u, false, &envp) < 0)
                return CLI_EXIT_SOFTWARE;
        fflush(stdout);
        saved = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
                if (saved >= 0)
                        close(saved);
                return CLI_EXIT_SOFTWARE;
        }
        r = env_create_run(u, argv, envp, &wstatus);
        (void)dup2(saved, STDOUT_FILENO);
        close(saved);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot run %s as %s: %s\n", exe, u->name,
                        strerror(-r));
                return r == -ENOENT ? 127 : 126;
        }
        if (WIFSIGNALED(wstatus)) {
                fprintf(stderr, "gpukeeper: %s was killed by signal %d\n", exe,
                        WTERMSIG(wstatus));
                return 128 + WTERMSIG(wstatus);
        }
        if (WEXITSTATUS(wstatus) != 0) {
                fprintf(stderr, "gpukeeper: %s could not create %s from %s (exit status %d)\n",
                        exe, t->name, t->file, WEXITSTATUS(wstatus));
                return WEXITSTATUS(wstatus);
        }
        return CLI_EXIT_OK;
}

static void env_step(const Config *c, const EnvUser *u, const char *exe, const Template *t,
                     int *status)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        _cleanup_free_ char *data_dir = NULL, *kernel_path = NULL;
        EnvOptions o = {};
        unsigned gpus = (unsigned)c->onboarding.kernel_gpus;
        int r;

        /* Root reads the user's tree without following symlinks. */
        r = env_find(u, t->name, &o, &e);
        if (r == -ENOENT) {
                r = create_env(u, exe, t);
                if (r != CLI_EXIT_OK) {
                        cli_user_report("env", "%s: NOT created", t->name);
                        cli_user_fail(status, r);
                        return;
                }
                r = env_find(u, t->name, &o, &e);
                if (r < 0) {
                        cli_user_report("env", "%s: NOT found after creating it", t->name);
                        fprintf(stderr, "gpukeeper: %s reported success, but %s has no "
                                        "environment '%s': %s\n",
                                exe, u->name, t->name, strerror(-r));
                        cli_user_fail(status, CLI_EXIT_SOFTWARE);
                        return;
                }
                cli_user_report("env", "%s: created in %s", t->name, e->path);
        } else if (r < 0) {
                cli_user_report("env", "%s: cannot read %s's environments", t->name, u->name);
                fprintf(stderr, "gpukeeper: cannot read the environments of %s: %s\n", u->name,
                        r == -EPERM ? "the home is not theirs" : strerror(-r));
                cli_user_fail(status, r == -EPERM ? CLI_EXIT_PERMISSION : CLI_EXIT_SOFTWARE);
                return;
        } else if (!e->error)
                cli_user_report("env", "%s: exists (%s), left as it is", t->name, e->path);
        if (e->error) {
                cli_user_report("env", "%s: unusable, left alone", t->name);
                fprintf(stderr, "gpukeeper: the environment %s of %s: %s\n", e->path, u->name,
                        e->error);
                cli_user_fail(status, CLI_EXIT_SOFTWARE);
                return;
        }

        r = onboard_hooks_state(e);
        if (r == ONBOARD_SAME)
                cli_user_report("hooks", "%s: in place", t->name);
        else if (r >= 0) {
                int k = env_hook_install(e);

                if (k < 0) {
                        cli_user_report("hooks", "%s: NOT installed", t->name);
                        fprintf(stderr, "gpukeeper: cannot write the lease hooks into %s: %s\n",
                                e->path, strerror(-k));
                        cli_user_fail(status, CLI_EXIT_IO);
                } else
                        cli_user_report("hooks", "%s: %s", t->name,
                               r == ONBOARD_ABSENT ? "installed" : "updated");
        } else {
                cli_user_report("hooks", "%s: cannot be checked", t->name);
                fprintf(stderr, "gpukeeper: cannot read the lease hooks of %s: %s\n", e->path,
                        strerror(-r));
                cli_user_fail(status, CLI_EXIT_IO);
        }

        if (asprintf(&data_dir, "%s/.local/share/jupyter", u->home) < 0) {
                cli_user_fail(status, CLI_EXIT_SOFTWARE);
                return;
        }
        r = onboard_kernel_state(u->uid, u->gid, data_dir, t->name, e->path, gpus);
        if (r == ONBOARD_SAME)
                cli_user_report("kernel", "%s: in place", t->name);
        else if (r == ONBOARD_DIFFERENT)
                cli_user_report("kernel", "%s: exists with other settings, left as it is", t->name);
        else if (r == ONBOARD_ABSENT) {
                int k = env_kernel_install(u->uid, u->gid, data_dir, t->name, e->path, gpus,
                                           &kernel_path);

                if (k < 0) {
                        cli_user_report("kernel", "%s: NOT installed", t->name);
                        fprintf(stderr, "gpukeeper: cannot write the kernel into %s: %s\n",
                                data_dir, strerror(-k));
                        cli_user_fail(status, CLI_EXIT_IO);
                } else
                        cli_user_report("kernel", "%s: installed %s", t->name, kernel_path);
        } else {
                cli_user_report("kernel", "%s: cannot be checked", t->name);
                fprintf(stderr, "gpukeeper: cannot read the kernels in %s: %s\n", data_dir,
                        strerror(-r));
                cli_user_fail(status, CLI_EXIT_IO);
        }
}

int cli_user_add(const cli_context *ctx, const UserArgs *a)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *exe = NULL;
        Template templates[ONBOARD_MAX_TEMPLATES] = {};
        const char *dirs[3];
        size_t n_dirs = 0;
        EnvUser u = {};
        int r, status = CLI_EXIT_OK;

        r = cli_user_require_admin(a->verb);
        if (r != CLI_EXIT_OK)
                return r;
        r = cli_user_load_config(&c);
        if (r != CLI_EXIT_OK)
                return r;

        /* Everything that can refuse the whole command, before any change. */
        if (a->templates_dir)
                dirs[n_dirs++] = a->templates_dir;
        else if (getenv("GPUKEEPER_TEMPLATES_DIR") && *getenv("GPUKEEPER_TEMPLATES_DIR"))
                dirs[n_dirs++] = getenv("GPUKEEPER_TEMPLATES_DIR");
        if (n_dirs == 0 || strcmp(dirs[0], c->env.templates_dir) != 0)
                dirs[n_dirs++] = c->env.templates_dir;
        if (strcmp(dirs[n_dirs - 1], CONFIG_DEFAULT_TEMPLATES_DIR) != 0 &&
            (n_dirs == 1 || strcmp(dirs[0], CONFIG_DEFAULT_TEMPLATES_DIR) != 0))
                dirs[n_dirs++] = CONFIG_DEFAULT_TEMPLATES_DIR;
        r = resolve_templates(a, dirs, n_dirs, templates);
        if (r != CLI_EXIT_OK)
                goto out;
        if (a->n_templates > 0) {
                const char *configured = getenv("GPUKEEPER_CONDA_EXE");

                if (!configured || !*configured)
                        configured = c->env.conda_exe;
                r = env_conda_exe_find(configured, getenv("PATH"), &exe);
                if (r < 0) {
                        fprintf(stderr,
                                "gpukeeper: no conda to create the environments with: '%s' "
                                "(env.conda_exe, or $GPUKEEPER_CONDA_EXE) is not an executable "
                                "(nothing changed)\n",
                                configured);
                        r = EXIT_NOT_FOUND;
                        goto out;
                }
        }
        r = welcome(c, a, NULL, false);
        if (r != CLI_EXIT_OK)
                goto out;
        r = cli_user_lookup(a->name, &u);
        if (r == CLI_EXIT_OK && u.uid < ONBOARD_UID_MIN) {
                fprintf(stderr,
                        "gpukeeper: %s is a system account (uid %u); user add sets up people's "
                        "accounts (uid %d and above) only\n",
                        a->name, (unsigned)u.uid, ONBOARD_UID_MIN);
                r = CLI_EXIT_PERMISSION;
                goto out;
        }
        if (r != CLI_EXIT_OK && r != EXIT_NO_USER)
                goto out;

        /* The account. */
        if (r == EXIT_NO_USER) {
                _cleanup_(strv_freep) char **argv = NULL;

                if (onboard_useradd_argv(a->name, c->onboarding.shell, &argv) < 0) {
                        r = CLI_EXIT_SOFTWARE;
                        goto out;
                }
                r = cli_user_run_tool(argv);
                if (r != CLI_EXIT_OK)
                        goto out;
                r = cli_user_lookup(a->name, &u);
                if (r != CLI_EXIT_OK) {
                        if (r == EXIT_NO_USER)
                                fprintf(stderr, "gpukeeper: useradd succeeded but %s has no "
                                                "passwd entry\n",
                                        a->name);
                        goto out;
                }
                cli_user_report("account", "%s: created (uid %u, home %s, shell %s)", u.name,
                       (unsigned)u.uid, u.home, c->onboarding.shell);
        } else
                cli_user_report("account", "%s: exists (uid %u, home %s)", u.name, (unsigned)u.uid,
                       u.home);
        if (ensure_home(&u, &status) < 0) {
                r = status;
                goto out;
        }

        add_groups(a, &u, &status);
        show_policy(c, &u);
        apply_limits(ctx, &u, &status);
        for (size_t i = 0; i < a->n_templates; i++)
                env_step(c, &u, exe, &templates[i], &status);

        r = welcome(c, a, u.home, true);
        if (r == CLI_EXIT_OK)
                r = status;
out:
        for (size_t i = 0; i < a->n_templates; i++)
                free(templates[i].file);
        env_user_done(&u);
        return cli_finish(r);
}
