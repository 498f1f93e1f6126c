/* `gpukeeper user add NAME [--group G]... [--template T]...` and
 * `gpukeeper user remove NAME [--keep-home]`: onboarding and offboarding of
 * the people on this server, for administrators (see cli_user_usage).
 *
 * add, in this order, each step checked first and done only when missing,
 * so that a second run changes nothing that is in place and says so:
 *   account   useradd (an argv, never a shell string) when NAME has none;
 *   home      created (0750, owned by NAME) for an account without one;
 *   group     usermod --append for each --group that exists and NAME is
 *             not in yet (the group's gpukeeper policy then applies: shown);
 *   limits    gpukeeperd applies NAME's limits (request limits.apply);
 *   env       a conda environment per template, named after it, created
 *             by the `env create` path: conda run as NAME (env/create.h);
 *   hooks     its lease hooks (env/hooks.h), written as NAME;
 *   kernel    its Jupyter kernel (env/kernel.h), written as NAME;
 * then the welcome text (onboarding.welcome, else the built-in one).
 * Everything that can be refused is checked before the first change: the
 * caller, NAME, the templates, conda, the welcome template.
 *
 * remove: the user's environment specs are backed up first (env_backup into
 * onboarding.backup_dir/NAME-DATE/), their leases released through the
 * daemon (lease.list all, lease.release of each; the daemon checks that we
 * are an admin from SO_PEERCRED), then userdel. A failed backup stops it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "basic/parse.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/user-util.h"
#include "cli/cli.h"
#include "cli/user.h"
#include "config/config.h"
#include "env/create.h"
#include "env/hooks.h"
#include "env/kernel.h"
#include "onboard/onboard.h"

#ifndef GK_TEMPLATES_DIR
#error "GK_TEMPLATES_DIR must name the installed templates directory"
#endif

/* sysexits' EX_NOINPUT / EX_NOUSER / EX_CONFIG. */
#define EXIT_NOT_FOUND 66
#define EXIT_NO_USER 67
#define EXIT_CONFIG 78

#define ADMIN_GROUP "gpukeeper-admin"

enum {
        ARG_GROUP = CLI_ARG_VERB_FIRST,
        ARG_TEMPLATE,
        ARG_TEMPLATES_DIR,
        ARG_KEEP_HOME,
};

void cli_user_usage(FILE *f)
{
        fputs("Usage: gpukeeper user add NAME [--group GROUP]... [--template TEMPLATE]...\n"
              "                          [--templates-dir DIR]\n"
              "       gpukeeper user remove NAME [--keep-home]\n"
              "\n"
              "Set up a person on this server, or take them off it. Administrators only:\n"
              "root (members of " ADMIN_GROUP " run it with sudo).\n"
              "\n"
              "Commands:\n"
              "  add     the account (useradd) when NAME has none; membership of each GROUP\n"
              "          that exists (its gpukeeper policy applies); NAME's limits applied\n"
              "          by gpukeeperd; per TEMPLATE a conda environment of that name,\n"
              "          created as NAME, with the lease hooks and a Jupyter kernel; then\n"
              "          the welcome text (onboarding.welcome). Run again, it does only\n"
              "          what is missing and changes nothing that is in place.\n"
              "  remove  back up NAME's environment specs (onboarding.backup_dir), release\n"
              "          NAME's leases, then remove the account and its home (userdel)\n"
              "\n"
              "Options:\n"
              "  --group GROUP        add NAME to the Unix group GROUP (repeatable)\n"
              "  --template TEMPLATE  create the environment TEMPLATE from TEMPLATE.yml\n"
              "                       (repeatable)\n"
              "  --templates-dir DIR  look for templates in DIR first (default\n"
              "                       $GPUKEEPER_TEMPLATES_DIR), then in env.templates_dir,\n"
              "                       then in " GK_TEMPLATES_DIR "\n"
              "  --keep-home          remove: keep NAME's home directory\n"
              "  --socket PATH        talk to gpukeeperd at PATH\n"
              "  -h, --help           show this help\n"
              "\n"
              "Reads the daemon's configuration ($GPUKEEPER_CONFIG, else\n" CONFIG_DEFAULT_PATH
              ") and creates the environments with\n"
              "$GPUKEEPER_CONDA_EXE, else env.conda_exe. See gpukeeper(1), USERS.\n",
              f);
}

typedef struct UserArgs {
        const char *verb; /* "user add" / "user remove" */
        const char *name;
        const char *groups[ONBOARD_MAX_GROUPS];
        size_t n_groups;
        const char *templates[ONBOARD_MAX_TEMPLATES];
        size_t n_templates;
        const char *templates_dir;
        bool keep_home;
} UserArgs;

/* ---- shared steps ----------------------------------------------------------------- */

/* One line of the report: "STEP     WHAT". */
static void report(const char *step, const char *fmt, ...) _printf_(2, 3);
static void report(const char *step, const char *fmt, ...)
{
        va_list ap;

        printf("%-8s ", step);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

static void warn(const char *fmt, ...) _printf_(1, 2);
static void warn(const char *fmt, ...)
{
        va_list ap;

        fflush(stdout);
        fputs("gpukeeper: warning: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* The first failure decides the exit code; later steps still run where
 * they can. */
static void fail_with(int *status, int code)
{
        if (*status == CLI_EXIT_OK)
                *status = code;
}

static bool caller_in_admin_group(void)
{
        _cleanup_free_ gid_t *groups = NULL;
        gid_t gid;
        int n;

        if (group_gid_from_name(ADMIN_GROUP, &gid) < 0)
                return false;
        if (getegid() == gid)
                return true;
        n = getgroups(0, NULL);
        if (n <= 0 || !(groups = calloc((size_t)n, sizeof(gid_t))))
                return false;
        n = getgroups(n, groups);
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

/* Accounts are made and homes written by tools that need root; an admin
 * who is not root is told to use sudo, anyone else is refused. */
static int require_admin(const char *verb)
{
        if (geteuid() == 0)
                return CLI_EXIT_OK;
        if (caller_in_admin_group())
                fprintf(stderr,
                        "gpukeeper: %s needs root (it runs useradd/userdel and writes into the "
                        "user's home as that user); run it with sudo\n",
                        verb);
        else
                fprintf(stderr,
                        "gpukeeper: %s is for administrators (root, group " ADMIN_GROUP ") only\n",
                        verb);
        return CLI_EXIT_PERMISSION;
}

/* The daemon's configuration file, as `env backup` reads it: missing at
 * the default path means the built-in defaults. */
static int load_config(Config **ret)
{
        const char *path = getenv("GPUKEEPER_CONFIG");
        _cleanup_free_ char *error = NULL;
        int r;

        if (!path || !*path)
                path = CONFIG_DEFAULT_PATH;
        if (access(path, F_OK) < 0 && errno == ENOENT && strcmp(path, CONFIG_DEFAULT_PATH) == 0)
                r = config_new_defaults(ret);
        else
                r = config_load(path, ret, &error);
        if (r == -ENOMEM)
                return CLI_EXIT_SOFTWARE;
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: cannot read the daemon's configuration: %s\n"
                        "gpukeeper: fix it (gpukeeperd --check-config) and run this again\n",
                        error ? error : strerror(-r));
                return EXIT_CONFIG;
        }
        return CLI_EXIT_OK;
}

/* NAME's passwd entry: CLI_EXIT_OK and *ret; EXIT_NO_USER when there is
 * none (nothing printed); an exit code after a message otherwise. */
static int lookup_user(const char *name, EnvUser *ret)
{
        int r = env_user_from_name(name, ret);

        if (r == -ENOENT)
                return EXIT_NO_USER;
        if (r == -EINVAL) {
                fprintf(stderr, "gpukeeper: the account %s has no absolute home directory in "
                                "passwd; fix it with usermod --home\n",
                        name);
                return CLI_EXIT_SOFTWARE;
        }
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot look up the account %s: %s\n", name,
                        strerror(-r));
                return CLI_EXIT_SOFTWARE;
        }
        return CLI_EXIT_OK;
}

/* Run an account tool; CLI_EXIT_OK when it exited 0, else an exit code
 * after one line naming it and its status. */
static int run_tool(char **argv)
{
        int r, wstatus = 0;

        fflush(stdout);
        r = onboard_run_tool(argv, &wstatus);
        if (r < 0) {
                fprintf(stderr, "gpukeeper: cannot run %s: %s\n", argv[0], strerror(-r));
                return r == -ENOENT ? EXIT_NOT_FOUND : CLI_EXIT_SOFTWARE;
        }
        if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
                return CLI_EXIT_OK;
        if (WIFSIGNALED(wstatus))
                fprintf(stderr, "gpukeeper: %s was killed by signal %d\n", argv[0],
                        WTERMSIG(wstatus));
        else
                fprintf(stderr, "gpukeeper: %s failed (exit status %d); see its message above\n",
                        argv[0], WEXITSTATUS(wstatus));
        return CLI_EXIT_SOFTWARE;
}

/* ---- add ----------------------------------------------------------------------------- */

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

static bool group_name_ok(const char *g)
{
        size_t len = strlen(g);

        if (len == 0 || len > 256 || g[0] == '-')
                return false;
        for (const char *p = g; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
                        return false;
        return true;
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
                        fail_with(status, CLI_EXIT_SOFTWARE);
                        return -ENOTDIR;
                }
                return 0;
        }
        r = -errno;
        if (r != -ENOENT) {
                fprintf(stderr, "gpukeeper: cannot look at the home %s of %s: %s\n", u->home,
                        u->name, strerror(-r));
                fail_with(status, CLI_EXIT_IO);
                return r;
        }
        /* Only below a directory no one but root can change (/home): root
         * makes nothing in a path a user could swap under it. */
        if (!parent_is_roots(u->home)) {
                fprintf(stderr,
                        "gpukeeper: %s has no home directory %s, and its parent is not a "
                        "directory only root can change; create it by hand\n",
                        u->name, u->home);
                fail_with(status, CLI_EXIT_PERMISSION);
                return -EPERM;
        }
        if (mkdir(u->home, 0750) < 0 ||
            (fd = open(u->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
            fchown(fd, u->uid, u->gid) < 0 || fchmod(fd, 0750) < 0) {
                r = -errno;
                fprintf(stderr, "gpukeeper: cannot create the home %s of %s: %s\n", u->home,
                        u->name, strerror(-r));
                fail_with(status, CLI_EXIT_IO);
                return r;
        }
        report("home", "%s: created", u->home);
        return 0;
}

static void add_groups(const UserArgs *a, const EnvUser *u, int *status)
{
        for (size_t i = 0; i < a->n_groups; i++) {
                _cleanup_(strv_freep) char **argv = NULL;
                int r = onboard_user_in_group(u->name, u->gid, a->groups[i]);

                if (r == -ENOENT) {
                        report("group", "%s: no such group, not added", a->groups[i]);
                        warn("there is no group '%s': gpukeeper does not create groups (groupadd "
                             "%s, then run this again)",
                             a->groups[i], a->groups[i]);
                        continue;
                }
                if (r < 0) {
                        fprintf(stderr, "gpukeeper: cannot read the group %s: %s\n", a->groups[i],
                                strerror(-r));
                        fail_with(status, CLI_EXIT_SOFTWARE);
                        continue;
                }
                if (r > 0) {
                        report("group", "%s: already a member", a->groups[i]);
                        continue;
                }
                if (onboard_usermod_argv(u->name, a->groups[i], &argv) < 0) {
                        fail_with(status, CLI_EXIT_SOFTWARE);
                        continue;
                }
                r = run_tool(argv);
                if (r != CLI_EXIT_OK) {
                        fail_with(status, r);
                        continue;
                }
                report("group", "%s: added", a->groups[i]);
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
        report("policy", "%s, leases up to %s (%s%s)", gpus, dur,
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
                report("limits", "NOT applied: gpukeeperd is not reachable at %s", sock);
                warn("%s's limits were not applied: gpukeeperd is not reachable at %s (%s); "
                     "run this again once it runs",
                     u->name, sock, strerror(-r));
                return;
        }
        args = json_pack("{s:s}", "user", u->name);
        if (!args) {
                fail_with(status, CLI_EXIT_SOFTWARE);
                return;
        }
        r = gk_client_call(client, "limits.apply", args, &result, &error);
        if (r == 0) {
                report("limits", "applied by gpukeeperd");
                return;
        }
        if (r == GK_E_UNKNOWN_OP) {
                report("limits", "NOT applied: gpukeeperd does not know limits.apply");
                warn("%s's limits were not applied: the gpukeeperd at %s does not know the "
                     "request limits.apply (it has no per-user limits); update it and run this "
                     "again",
                     u->name, sock);
                return;
        }
        if (r == GK_E_UNAVAILABLE) {
                /* Per-user limits are off (no limits section), or the daemon
                 * could not look the user up yet: its message says which. */
                report("limits", "NOT applied: %s", error.message);
                warn("%s's limits were not applied: gpukeeperd says: %s", u->name,
                     error.message);
                return;
        }
        report("limits", "NOT applied");
        fail_with(status, cli_call_failed(ctx, "limits.apply", r, &error));
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
                        report("env", "%s: NOT created", t->name);
                        fail_with(status, r);
                        return;
                }
                r = env_find(u, t->name, &o, &e);
                if (r < 0) {
                        report("env", "%s: NOT found after creating it", t->name);
                        fprintf(stderr, "gpukeeper: %s reported success, but %s has no "
                                        "environment '%s': %s\n",
                                exe, u->name, t->name, strerror(-r));
                        fail_with(status, CLI_EXIT_SOFTWARE);
                        return;
                }
                report("env", "%s: created in %s", t->name, e->path);
        } else if (r < 0) {
                report("env", "%s: cannot read %s's environments", t->name, u->name);
                fprintf(stderr, "gpukeeper: cannot read the environments of %s: %s\n", u->name,
                        r == -EPERM ? "the home is not theirs" : strerror(-r));
                fail_with(status, r == -EPERM ? CLI_EXIT_PERMISSION : CLI_EXIT_SOFTWARE);
                return;
        } else if (!e->error)
                report("env", "%s: exists (%s), left as it is", t->name, e->path);
        if (e->error) {
                report("env", "%s: unusable, left alone", t->name);
                fprintf(stderr, "gpukeeper: the environment %s of %s: %s\n", e->path, u->name,
                        e->error);
                fail_with(status, CLI_EXIT_SOFTWARE);
                return;
        }

        r = onboard_hooks_state(e);
        if (r == ONBOARD_SAME)
                report("hooks", "%s: in place", t->name);
        else if (r >= 0) {
                int k = env_hook_install(e);

                if (k < 0) {
                        report("hooks", "%s: NOT installed", t->name);
                        fprintf(stderr, "gpukeeper: cannot write the lease hooks into %s: %s\n",
                                e->path, strerror(-k));
                        fail_with(status, CLI_EXIT_IO);
                } else
                        report("hooks", "%s: %s", t->name,
                               r == ONBOARD_ABSENT ? "installed" : "updated");
        } else {
                report("hooks", "%s: cannot be checked", t->name);
                fprintf(stderr, "gpukeeper: cannot read the lease hooks of %s: %s\n", e->path,
                        strerror(-r));
                fail_with(status, CLI_EXIT_IO);
        }

        if (asprintf(&data_dir, "%s/.local/share/jupyter", u->home) < 0) {
                fail_with(status, CLI_EXIT_SOFTWARE);
                return;
        }
        r = onboard_kernel_state(u->uid, u->gid, data_dir, t->name, e->path, gpus);
        if (r == ONBOARD_SAME)
                report("kernel", "%s: in place", t->name);
        else if (r == ONBOARD_DIFFERENT)
                report("kernel", "%s: exists with other settings, left as it is", t->name);
        else if (r == ONBOARD_ABSENT) {
                int k = env_kernel_install(u->uid, u->gid, data_dir, t->name, e->path, gpus,
                                           &kernel_path);

                if (k < 0) {
                        report("kernel", "%s: NOT installed", t->name);
                        fprintf(stderr, "gpukeeper: cannot write the kernel into %s: %s\n",
                                data_dir, strerror(-k));
                        fail_with(status, CLI_EXIT_IO);
                } else
                        report("kernel", "%s: installed %s", t->name, kernel_path);
        } else {
                report("kernel", "%s: cannot be checked", t->name);
                fprintf(stderr, "gpukeeper: cannot read the kernels in %s: %s\n", data_dir,
                        strerror(-r));
                fail_with(status, CLI_EXIT_IO);
        }
}

static int user_add(const cli_context *ctx, const UserArgs *a)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *exe = NULL;
        Template templates[ONBOARD_MAX_TEMPLATES] = {};
        const char *dirs[3];
        size_t n_dirs = 0;
        EnvUser u = {};
        int r, status = CLI_EXIT_OK;

        r = require_admin(a->verb);
        if (r != CLI_EXIT_OK)
                return r;
        r = load_config(&c);
        if (r != CLI_EXIT_OK)
                return r;

        /* Everything that can refuse the whole command, before any change. */
        if (a->templates_dir)
                dirs[n_dirs++] = a->templates_dir;
        else if (getenv("GPUKEEPER_TEMPLATES_DIR") && *getenv("GPUKEEPER_TEMPLATES_DIR"))
                dirs[n_dirs++] = getenv("GPUKEEPER_TEMPLATES_DIR");
        if (n_dirs == 0 || strcmp(dirs[0], c->env.templates_dir) != 0)
                dirs[n_dirs++] = c->env.templates_dir;
        if (strcmp(dirs[n_dirs - 1], GK_TEMPLATES_DIR) != 0 &&
            (n_dirs == 1 || strcmp(dirs[0], GK_TEMPLATES_DIR) != 0))
                dirs[n_dirs++] = GK_TEMPLATES_DIR;
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
        r = lookup_user(a->name, &u);
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
                r = run_tool(argv);
                if (r != CLI_EXIT_OK)
                        goto out;
                r = lookup_user(a->name, &u);
                if (r != CLI_EXIT_OK) {
                        if (r == EXIT_NO_USER)
                                fprintf(stderr, "gpukeeper: useradd succeeded but %s has no "
                                                "passwd entry\n",
                                        a->name);
                        goto out;
                }
                report("account", "%s: created (uid %u, home %s, shell %s)", u.name,
                       (unsigned)u.uid, u.home, c->onboarding.shell);
        } else
                report("account", "%s: exists (uid %u, home %s)", u.name, (unsigned)u.uid,
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

/* ---- remove ------------------------------------------------------------------------- */

/* Release every lease the user holds (admin release through the daemon).
 * A daemon that is not running is a warning: nothing is held then that a
 * running daemon would not end by itself on restart (run leases of a gone
 * client, manual ones at expiry). */
static void release_leases(const cli_context *ctx, const EnvUser *u, int *status)
{
        _cleanup_(gk_client_freep) gk_client *client = NULL;
        _cleanup_(json_decrefp) json_t *result = NULL;
        const char *sock = gk_socket_path(ctx->socket_arg);
        gk_call_error error = {};
        json_t *leases, *lease;
        size_t i, released = 0, failed = 0;
        int r;

        r = gk_client_connect(sock, &client);
        if (r < 0) {
                report("leases", "NOT released: gpukeeperd is not reachable at %s", sock);
                warn("%s's leases were not released: gpukeeperd is not reachable at %s (%s); "
                     "they end at expiry or when their command does",
                     u->name, sock, strerror(-r));
                return;
        }
        r = gk_client_call(client, "lease.list", json_pack("{s:b}", "all", 1), &result, &error);
        if (r != 0) {
                report("leases", "NOT released");
                fail_with(status, cli_call_failed(ctx, "lease.list", r, &error));
                return;
        }
        leases = json_object_get(result, "leases");
        json_array_foreach(leases, i, lease) {
                _cleanup_(json_decrefp) json_t *res = NULL;
                json_t *uid = json_object_get(lease, "uid"), *id = json_object_get(lease, "id");

                if (!json_is_integer(uid) || json_integer_value(uid) != (json_int_t)u->uid ||
                    !json_is_integer(id))
                        continue;
                r = gk_client_call(client, "lease.release",
                                   json_pack("{s:I}", "id", json_integer_value(id)), &res,
                                   &error);
                if (r == 0) {
                        report("leases", "%" JSON_INTEGER_FORMAT ": released",
                               json_integer_value(id));
                        released++;
                } else {
                        report("leases", "%" JSON_INTEGER_FORMAT ": NOT released",
                               json_integer_value(id));
                        fail_with(status, cli_call_failed(ctx, "lease.release", r, &error));
                        failed++;
                }
        }
        if (released == 0 && failed == 0)
                report("leases", "none held");
}

static int user_remove(const cli_context *ctx, const UserArgs *a)
{
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *base = NULL, *dir = NULL, *archive = NULL;
        _cleanup_(strv_freep) char **argv = NULL;
        uint64_t now = now_usec(CLOCK_REALTIME);
        EnvOptions o = {};
        EnvUser u = {};
        int r, status = CLI_EXIT_OK;

        r = require_admin(a->verb);
        if (r != CLI_EXIT_OK)
                return r;
        r = load_config(&c);
        if (r != CLI_EXIT_OK)
                return r;
        r = lookup_user(a->name, &u);
        if (r == EXIT_NO_USER) {
                fprintf(stderr, "gpukeeper: there is no account '%s'; nothing removed\n",
                        a->name);
                return EXIT_NO_USER;
        }
        if (r != CLI_EXIT_OK)
                return r;
        if (u.uid < ONBOARD_UID_MIN) {
                fprintf(stderr,
                        "gpukeeper: %s is a system account (uid %u); user remove removes people's "
                        "accounts (uid %d and above) only\n",
                        a->name, (unsigned)u.uid, ONBOARD_UID_MIN);
                env_user_done(&u);
                return CLI_EXIT_PERMISSION;
        }
        if (onboard_userdel_argv(u.name, !a->keep_home, &argv) < 0 ||
            config_onboarding_backup_dir(&c->onboarding, c->state_dir, &base) < 0 ||
            onboard_backup_dir(base, u.name, now, &dir) < 0) {
                env_user_done(&u);
                return CLI_EXIT_SOFTWARE;
        }

        /* 1. The environment specs, before anything goes. */
        r = onboard_mkdir_p(dir);
        if (r == 0)
                r = env_backup(&u, 1, dir, &o, now, &archive);
        if (r < 0) {
                fprintf(stderr,
                        "gpukeeper: cannot back up the environments of %s into %s: %s; nothing "
                        "removed (set onboarding.backup_dir to a writable directory)\n",
                        u.name, dir, strerror(-r));
                env_user_done(&u);
                return CLI_EXIT_IO;
        }
        report("backup", "%s", archive);

        /* 2. Their leases. */
        release_leases(ctx, &u, &status);

        /* 3. The account. */
        r = run_tool(argv);
        if (r != CLI_EXIT_OK) {
                report("account", "%s: NOT removed", u.name);
                fail_with(&status, r);
        } else
                report("account", "%s: removed%s", u.name,
                       a->keep_home ? " (home kept)" : ", with its home");
        env_user_done(&u);
        return cli_finish(status);
}

/* ---- dispatch ------------------------------------------------------------------------ */

int cli_user_main(cli_context *ctx, int argc, char *argv[])
{
        static const struct option options[] = {
            CLI_COMMON_OPTIONS,
            {"group", required_argument, NULL, ARG_GROUP},
            {"template", required_argument, NULL, ARG_TEMPLATE},
            {"templates-dir", required_argument, NULL, ARG_TEMPLATES_DIR},
            {"keep-home", no_argument, NULL, ARG_KEEP_HOME},
            {},
        };
        UserArgs a = {};
        bool add;
        int c, r;

        if (argc < 2)
                return cli_usage_error("user", "no user command given: add or remove");
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                cli_user_usage(stdout);
                return cli_finish(CLI_EXIT_OK);
        }
        if (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "remove") != 0)
                return cli_usage_error("user", "unknown user command '%s'", argv[1]);
        add = strcmp(argv[1], "add") == 0;
        a.verb = add ? "user add" : "user remove";

        argc--, argv++;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_GROUP:
                        if (!add)
                                return cli_usage_error(a.verb, "--group goes with add only");
                        if (!group_name_ok(optarg))
                                return cli_usage_error(a.verb, "'%s' is not a group name",
                                                       optarg);
                        if (a.n_groups >= ONBOARD_MAX_GROUPS)
                                return cli_usage_error(a.verb, "at most %d --group options",
                                                       ONBOARD_MAX_GROUPS);
                        a.groups[a.n_groups++] = optarg;
                        break;
                case ARG_TEMPLATE:
                        if (!add)
                                return cli_usage_error(a.verb, "--template goes with add only");
                        if (a.n_templates >= ONBOARD_MAX_TEMPLATES)
                                return cli_usage_error(a.verb, "at most %d --template options",
                                                       ONBOARD_MAX_TEMPLATES);
                        for (size_t i = 0; i < a.n_templates; i++)
                                if (strcmp(a.templates[i], optarg) == 0)
                                        return cli_usage_error(a.verb, "--template %s given twice",
                                                               optarg);
                        a.templates[a.n_templates++] = optarg;
                        break;
                case ARG_TEMPLATES_DIR:
                        if (!add)
                                return cli_usage_error(a.verb, "--templates-dir goes with add "
                                                               "only");
                        if (optarg[0] != '/')
                                return cli_usage_error(a.verb, "--templates-dir takes an "
                                                               "absolute path");
                        a.templates_dir = optarg;
                        break;
                case ARG_KEEP_HOME:
                        if (add)
                                return cli_usage_error(a.verb, "--keep-home goes with remove "
                                                               "only");
                        a.keep_home = true;
                        break;
                default:
                        r = cli_common_option(ctx, a.verb, cli_user_usage, c, argv);
                        if (r != CLI_CONTINUE)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error(a.verb, "whose account? give a login name");
        if (argc - optind > 1)
                return cli_usage_error(a.verb, "unexpected argument '%s'", argv[optind + 1]);
        a.name = argv[optind];
        if (!onboard_name_valid(a.name))
                return cli_usage_error(a.verb,
                                       "'%s' is not a login name (a lowercase letter or '_', "
                                       "then lowercase letters, digits, '_' and '-'; at most %d)",
                                       a.name, ONBOARD_NAME_MAX);
        return add ? user_add(ctx, &a) : user_remove(ctx, &a);
}
