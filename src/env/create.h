/* Creating an environment from a template: `gpukeeper env create NAME
 * --template T` runs the configured conda executable (conda, mamba or
 * micromamba) with an argv, never through a shell, as the user the
 * environment is for, in that user's home and environment, and hands back
 * its exit status. conda does the work (solving, downloading, linking), so
 * the result is exactly what the user would get by typing the command.
 *
 * Templates are environment.yml files named <template>.yml in a templates
 * directory (/etc/gpukeeper/templates by default). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "basic/strv.h"
#include "env/env.h"

/* Find the conda executable. `configured` (may be NULL or empty) is a path
 * (containing '/') used as is, or a name searched in `path_env` (a PATH
 * value; NULL means the default "/usr/local/bin:/usr/bin:/bin"). Without
 * one, "conda", then "mamba", then "micromamba" are searched. Returns 0 and
 * the path, -ENOENT when nothing executable was found, -ENOMEM. */
int env_conda_exe_find(const char *configured, const char *path_env, char **ret);

/* The absolute path (symlinks resolved) of template `name` in `dir`:
 * dir/name.yml. -EINVAL when name is
 * not a plain name ([A-Za-z0-9._-], not starting with '.'), -ENOENT when
 * there is no such regular file, -ENOMEM. */
int env_template_path(const char *dir, const char *name, char **ret);

/* The template names in `dir` (files *.yml, without the suffix), sorted,
 * as a NULL-terminated array (free with strv_free). Returns 0
 * (also for an empty list) or -errno of opening dir. */
int env_template_list(const char *dir, char ***ret, size_t *ret_n);

/* The argv (NULL-terminated, heap) that creates an environment from `file`:
 * `name_or_prefix` is a prefix path when it contains '/', else a name.
 *   micromamba (an executable whose name contains "micromamba"):
 *     EXE create -y (-n NAME | -p PREFIX) -f FILE
 *   conda, mamba and anything else:
 *     EXE env create (-n NAME | -p PREFIX) -f FILE */
int env_create_argv(const char *conda_exe, const char *name_or_prefix, const char *file,
                    char ***ret);

/* The environment (NULL-terminated "K=V" strings, heap) for the child run
 * for `user`. inherit: the caller's own environment (the caller is that
 * user), with HOME, USER and LOGNAME added when missing. Otherwise a fresh
 * one, as a login would give: HOME (passwd), USER, LOGNAME, PATH
 * ("/usr/local/bin:/usr/bin:/bin"), and LANG, LC_ALL, TERM from the caller
 * when set. */
int env_create_envp(const EnvUser *user, bool inherit, char ***ret);


/* Run argv[0] with argv and envp as `user` (env_become_user in the child;
 * nothing to drop when the caller already is the user), in the user's home
 * (else "/"), in a session of its own (no controlling terminal: a package
 * script cannot push input into root's terminal), stdin from /dev/null,
 * stdout/stderr inherited. While it runs, SIGINT, SIGQUIT, SIGTERM and SIGHUP
 * of the caller are passed on to the child, which decides (the terminal's
 * Ctrl-C no longer reaches it directly). Returns 0 and its wait status; the -errno of execve when it
 * could not be started (-ENOENT, -EACCES...) or of becoming the user; the
 * -errno of fork / waitpid. */
int env_create_run(const EnvUser *user, char *const argv[], char *const envp[], int *ret_wstatus);
