/* Onboarding and offboarding of the people on this server: what
 * `gpukeeper user add NAME --group G --template T` and `gpukeeper user
 * remove NAME` (src/cli/user.c) are built from.
 *
 *   - accounts: login names checked before any tool sees them, and the
 *     command lines of useradd / usermod / userdel, run by
 *     onboard_run_tool() with an argv (never a shell string), stdin from
 *     /dev/null, a fixed PATH and environment;
 *   - "is it already there?" for what `user add` puts into the new user's
 *     files (the lease hooks of an environment, its Jupyter kernel): read
 *     as that user from a child process (env_run_as_user), so a symlink the
 *     user planted leads root nowhere, and compared with the text gpukeeper
 *     would write, so that a second run writes nothing that is in place;
 *   - the welcome text: a template (the built-in one from
 *     data/onboarding/welcome.txt, or the admin's onboarding.welcome file)
 *     with {{user}}, {{host}}, {{home}}, {{groups}} and {{envs}}.
 *
 * Conventions: 0 or a positive value on success, -errno on failure, ret_*
 * untouched on failure. Nothing here logs or prints: the CLI says what was
 * done, skipped or refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "env/env.h"

/* Longest login name useradd accepts on Debian (LOGIN_NAME_MAX is 256, but
 * utmp and most tools stop at 32). */
#define ONBOARD_NAME_MAX 32
/* Most --group and --template options of one `user add`. */
#define ONBOARD_MAX_GROUPS 16
#define ONBOARD_MAX_TEMPLATES 16
/* Largest welcome template file. */
#define ONBOARD_WELCOME_MAX (64u << 10)
/* Accounts below this uid are the system's: `user add` does not set them
 * up and `user remove` does not remove them (Debian's UID_MIN; the same
 * line env_users_all draws). */
#define ONBOARD_UID_MIN 1000
/* The PATH the account tools run with. */
#define ONBOARD_TOOL_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- accounts ------------------------------------------------------------------ */

/* Whether `name` is a login name `user add` accepts: Debian's default
 * NAME_REGEX without its '$' suffix, [a-z_][a-z0-9_-]*, 1..ONBOARD_NAME_MAX
 * bytes. Rejecting here (rather than leaving it to useradd) keeps a name
 * that starts with '-' from ever reaching a tool's command line. */
bool onboard_name_valid(const char *name);

/* The argv (NULL-terminated, heap, free with strv_free) of
 *   useradd --create-home --user-group --shell SHELL -- NAME
 * (the user's own group, a home from /etc/default/useradd's HOME with
 * /etc/skel, a login shell); supplementary groups are added afterwards
 * with onboard_usermod_argv. */
int onboard_useradd_argv(const char *name, const char *shell, char ***ret);
/*   usermod --append --groups GROUP -- NAME */
int onboard_usermod_argv(const char *name, const char *group, char ***ret);
/*   userdel [--remove] -- NAME   (--remove: the home and mail spool too) */
int onboard_userdel_argv(const char *name, bool remove_home, char ***ret);

/* Run argv[0] (a bare name looked up in ONBOARD_TOOL_PATH, or an absolute
 * path) with argv, in an environment of PATH=ONBOARD_TOOL_PATH and LANG=C
 * only, stdin from /dev/null, stdout and stderr as ours (its messages are
 * for the admin), and wait for it. Returns 0 and its wait status in
 * *ret_wstatus, -ENOENT when there is no such tool, or the -errno of
 * fork/exec/waitpid. */
int onboard_run_tool(char *const argv[], int *ret_wstatus);

/* Whether login `name` (primary group `gid`) is a member of group `group`
 * (as primary group or in its member list): 1 yes, 0 no, -ENOENT when
 * there is no such group, other -errno. */
int onboard_user_in_group(const char *name, gid_t gid, const char *group);

/* ---- what `user add` writes into the user's files --------------------------------- */

typedef enum OnboardState {
        ONBOARD_ABSENT = 0,    /* not there at all */
        ONBOARD_SAME = 1,      /* there, exactly as gpukeeper writes it */
        ONBOARD_DIFFERENT = 2, /* there, with other content (or partly there) */
} OnboardState;

/* The lease hooks of `env` (from env_find, without .error): ONBOARD_SAME
 * when all of env_hook_relpath()'s files hold env_hook_text(), ABSENT when
 * none exists, DIFFERENT otherwise. Read as the owner of the prefix (when
 * the caller is root), checking that the path still is the directory
 * env_find saw (-ESTALE otherwise). Returns the state or -errno. */
int onboard_hooks_state(const EnvInfo *env);

/* The Jupyter kernel env_kernel_install would write for (env_name,
 * prefix, gpus) below `data_dir`: ONBOARD_SAME when its kernel.json holds
 * exactly env_kernel_spec(), DIFFERENT when it holds something else,
 * ABSENT when there is none. Read as uid/gid when the caller is root.
 * Returns the state or -errno. */
int onboard_kernel_state(uid_t uid, gid_t gid, const char *data_dir, const char *env_name,
                         const char *prefix, unsigned gpus);

/* ---- backups of `user remove` ------------------------------------------------------- */

/* "<base>/<name>-YYYYMMDD-HHMMSS" in local time of now_usec (the directory
 * `user remove` puts the user's env backup archive in). -EINVAL for a
 * name onboard_name_valid refuses or a relative base, -ENOMEM. */
int onboard_backup_dir(const char *base, const char *name, uint64_t now_usec, char **ret);

/* mkdir -p `path` (absolute), mode 0700 for what it creates. Returns 0 or
 * -errno. */
int onboard_mkdir_p(const char *path);

/* ---- the welcome text ------------------------------------------------------------- */

typedef struct OnboardWelcomeVars {
        const char *user;   /* {{user}}: the login name */
        const char *host;   /* {{host}}: this machine's name */
        const char *home;   /* {{home}}: the home directory */
        const char *groups; /* {{groups}}: the --group names, comma-separated ("none") */
        const char *envs;   /* {{envs}}: the environments made, comma-separated ("none") */
} OnboardWelcomeVars;

/* The built-in template: data/onboarding/welcome.txt, embedded at build
 * time. */
extern const char onboard_welcome_default[];

/* Expand `template` (NUL-terminated): each {{name}} (spaces allowed inside
 * the braces) becomes the value of the variable `name` of `v` (a NULL
 * value is the empty string). Returns 0 and a heap string; -EINVAL for an
 * unknown name or an unclosed "{{", with *ret_line (may be NULL) its
 * 1-based line; -ENOMEM. */
int onboard_welcome_render(const char *template, const OnboardWelcomeVars *v, char **ret,
                           unsigned *ret_line);

/* Read a welcome template file (a regular file of at most
 * ONBOARD_WELCOME_MAX bytes, no NUL byte in it). Returns 0 and a heap
 * string; -EFBIG, -EINVAL (not a regular file, or a NUL byte), -errno. */
int onboard_welcome_load(const char *path, char **ret);
