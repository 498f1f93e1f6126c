/* Generating and installing the lease hooks of a conda environment; what the
 * hooks do is described in hooks.h. The scripts are templates,
 * data/hooks/{activate,deactivate}.{sh,csh,fish} (embedded at build time,
 * see hook-templates.h), rendered here: {{#each}} blocks and {{#join}}
 * conditions are repeated per variable of ENV_HOOK_LEASE_VARS so that every
 * variable the activate hook sets is saved and restored the same way in all
 * three shells; {{NAME}} is one of the constants of template_constant(). */
#include <assert.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/memstream.h"
#include "env/env-internal.h"
#include "env/hook-templates.h"
#include "env/hooks.h"

static const char *const lease_vars[] = {ENV_HOOK_LEASE_VARS};

/* Messages for the other failures of `gpukeeper lease env`. Like
 * ENV_HOOK_NO_LEASE_MESSAGE they go into double quotes in every shell, so they
 * hold no $, `, \, ! or ". */
#define UNREACHABLE_MESSAGE                                                                        \
        "gpukeeper: gpukeeperd is not reachable, so CUDA_VISIBLE_DEVICES is unchanged"
#define UNUSABLE_MESSAGE                                                                           \
        "gpukeeper: 'gpukeeper lease env' printed no usable lease, so CUDA_VISIBLE_DEVICES is "    \
        "unchanged"
/* sysexits' EX_UNAVAILABLE: the CLI's exit code when the daemon is unreachable. */
#define EXIT_UNREACHABLE "69"

static const char *const relpaths[_ENV_HOOK_SHELL_MAX][_ENV_HOOK_PHASE_MAX] = {
    [ENV_HOOK_SH] = {"etc/conda/activate.d/gpukeeper.sh", "etc/conda/deactivate.d/gpukeeper.sh"},
    [ENV_HOOK_CSH] = {"etc/conda/activate.d/gpukeeper.csh", "etc/conda/deactivate.d/gpukeeper.csh"},
    [ENV_HOOK_FISH] = {"etc/conda/activate.d/gpukeeper.fish",
                       "etc/conda/deactivate.d/gpukeeper.fish"},
};

const char *env_hook_relpath(EnvHookShell shell, EnvHookPhase phase)
{
        assert(shell >= 0 && shell < _ENV_HOOK_SHELL_MAX);
        assert(phase >= 0 && phase < _ENV_HOOK_PHASE_MAX);
        return relpaths[shell][phase];
}

/* The comment every hook starts with (all three shells use '#'). */
static void write_header(FILE *f, EnvHookPhase phase)
{
        fputs("# gpukeeper lease hook, written by 'gpukeeper env hook install'\n"
              "# (see gpukeeper(1)).\n",
              f);
        if (phase == ENV_HOOK_ACTIVATE)
                fputs("# conda runs it on activation: it sets CUDA_VISIBLE_DEVICES,\n"
                      "# CUDA_DEVICE_ORDER and GPUKEEPER_LEASE_ID from your current GPU lease\n"
                      "# ('gpukeeper lease env'), keeping their previous values in\n"
                      "# _GPUKEEPER_SAVED_* for the deactivate hook, and records the\n"
                      "# activation time for 'gpukeeper env list'.\n",
                      f);
        else
                fputs("# conda runs it on deactivation: it gives CUDA_VISIBLE_DEVICES,\n"
                      "# CUDA_DEVICE_ORDER and GPUKEEPER_LEASE_ID back the values they had before\n"
                      "# the activate hook set them, unsetting those that were unset.\n",
                      f);
}

/* The value of {{NAME}} in a template; NULL for an unknown name. */
static const char *template_constant(const char *name, size_t len)
{
        static const struct {
                const char *name;
                const char *value;
        } constants[] = {
                {"LAST_ACTIVATED_FILE", ENV_LAST_ACTIVATED_FILE},
                {"NO_LEASE_MESSAGE", ENV_HOOK_NO_LEASE_MESSAGE},
                {"UNREACHABLE_MESSAGE", UNREACHABLE_MESSAGE},
                {"UNUSABLE_MESSAGE", UNUSABLE_MESSAGE},
                {"EXIT_UNREACHABLE", EXIT_UNREACHABLE},
        };

        for (size_t i = 0; i < ELEMENTSOF(constants); i++)
                if (strlen(constants[i].name) == len && memcmp(constants[i].name, name, len) == 0)
                        return constants[i].value;
        return NULL;
}

/* Write t[0..n) with its {{...}} expanded, `var` being {{VAR}} (NULL
 * outside {{#each}} and {{#join}}). Returns 0, or -EINVAL for a malformed
 * template (a bug: the templates are part of the build). */
static int render_text(FILE *f, const char *t, size_t n, const char *var)
{
        static const char join[] = "{{#join|", join_end[] = "{{/join}}";
        const char *end = t + n;

        while (t < end) {
                const char *open = memmem(t, (size_t)(end - t), "{{", 2), *close, *value;

                if (!open) {
                        fwrite(t, 1, (size_t)(end - t), f);
                        return 0;
                }
                /* "${{{VAR}}+x}": the shell's brace, then the template's. */
                while (open + 2 < end && open[2] == '{')
                        open++;
                fwrite(t, 1, (size_t)(open - t), f);
                close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
                if (!close)
                        return -EINVAL;
                if ((size_t)(end - open) > strlen(join) &&
                    strncmp(open, join, strlen(join)) == 0) {
                        /* {{#join|SEP|}}ITEM{{/join}}: ITEM once per lease
                         * variable, SEP between them. */
                        const char *sep = open + strlen(join), *sep_end = close - 1;
                        const char *item = close + 2,
                                   *item_end = memmem(item, (size_t)(end - item), join_end,
                                                      strlen(join_end));

                        if (sep_end < sep || *sep_end != '|' || !item_end)
                                return -EINVAL;
                        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++) {
                                int r;

                                if (i > 0)
                                        fwrite(sep, 1, (size_t)(sep_end - sep), f);
                                r = render_text(f, item, (size_t)(item_end - item), lease_vars[i]);
                                if (r < 0)
                                        return r;
                        }
                        t = item_end + strlen(join_end);
                        continue;
                }
                if (close - open == 5 && memcmp(open, "{{VAR", 5) == 0)
                        value = var;
                else
                        value = template_constant(open + 2, (size_t)(close - open - 2));
                if (!value)
                        return -EINVAL;
                fputs(value, f);
                t = close + 2;
        }
        return 0;
}

/* Render a template line by line: the lines between a line "{{#each}}" and
 * a line "{{/each}}" are written once per variable of ENV_HOOK_LEASE_VARS
 * (with {{VAR}} its name), a line starting with "{{!" is a comment and is
 * dropped, any other line is written with its {{...}} expanded. */
static int render_template(FILE *f, const char *t)
{
        static const char each[] = "{{#each}}\n", each_end[] = "\n{{/each}}\n";

        while (*t) {
                const char *eol = strchrnul(t, '\n'), *next = *eol ? eol + 1 : eol;
                int r;

                if (strncmp(t, "{{!", 3) == 0) {
                        t = next;
                        continue;
                }
                if (strncmp(t, each, strlen(each)) == 0) {
                        const char *body = next, *stop = strstr(body, each_end);

                        if (!stop)
                                return -EINVAL;
                        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++) {
                                r = render_text(f, body, (size_t)(stop + 1 - body), lease_vars[i]);
                                if (r < 0)
                                        return r;
                        }
                        t = stop + strlen(each_end);
                        continue;
                }
                r = render_text(f, t, (size_t)(next - t), NULL);
                if (r < 0)
                        return r;
                t = next;
        }
        return 0;
}

int env_hook_text(EnvHookShell shell, EnvHookPhase phase, char **ret)
{
        static const char *const templates[_ENV_HOOK_SHELL_MAX][_ENV_HOOK_PHASE_MAX] = {
            [ENV_HOOK_SH] = {env_hook_template_activate_sh, env_hook_template_deactivate_sh},
            [ENV_HOOK_CSH] = {env_hook_template_activate_csh, env_hook_template_deactivate_csh},
            [ENV_HOOK_FISH] = {env_hook_template_activate_fish, env_hook_template_deactivate_fish},
        };
        MemStream m;
        int r;

        assert(shell >= 0 && shell < _ENV_HOOK_SHELL_MAX);
        assert(phase >= 0 && phase < _ENV_HOOK_PHASE_MAX);
        assert(ret);

        r = memstream_open(&m);
        if (r < 0)
                return r;
        write_header(m.f, phase);
        r = render_template(m.f, templates[shell][phase]);
        return memstream_finish(&m, r, ret, NULL);
}

typedef struct InstallJob {
        const char *path;
        dev_t dev;
        ino_t ino;
} InstallJob;

/* Whether dir_fd/name already is a regular file of mode 0644 holding exactly
 * `text`: then installing leaves it alone (no new inode, mtime or ctime), so
 * that installing again changes nothing that is in place. */
static bool hook_in_place(int dir_fd, const char *name, const char *text)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *have = NULL;
        size_t len = 0, want = strlen(text);
        struct stat st;

        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (st.st_mode & 07777) != 0644)
                return false;
        if (read_full_fd(fd, want + 1, &have, &len) < 0)
                return false;
        return len == want && memcmp(have, text, len) == 0;
}

/* Runs as the owner of the prefix (or as the unprivileged caller), so the
 * path may resolve through symlinks: they lead nowhere that user could not
 * write anyway, and the dev/ino check pins the directory env_find saw. */
static int install_as_owner(void *userdata)
{
        const InstallJob *job = userdata;
        _cleanup_close_ int prefix_fd = -1;
        struct stat st;
        int r;

        prefix_fd = open(job->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (prefix_fd < 0)
                return negative_errno();
        if (fstat(prefix_fd, &st) < 0)
                return negative_errno();
        if (st.st_dev != job->dev || st.st_ino != job->ino)
                return -ESTALE;

        for (EnvHookPhase phase = 0; phase < _ENV_HOOK_PHASE_MAX; phase++)
                for (EnvHookShell shell = 0; shell < _ENV_HOOK_SHELL_MAX; shell++) {
                        const char *rel = env_hook_relpath(shell, phase);
                        const char *slash = strrchr(rel, '/');
                        _cleanup_free_ char *dir = strndup(rel, (size_t)(slash - rel));
                        _cleanup_free_ char *text = NULL;
                        _cleanup_close_ int dir_fd = -1;

                        if (!dir)
                                return -ENOMEM;
                        r = env_hook_text(shell, phase, &text);
                        if (r < 0)
                                return r;
                        r = env_mkdir_beneath(prefix_fd, dir, 0755, &dir_fd);
                        if (r < 0)
                                return r;
                        if (hook_in_place(dir_fd, slash + 1, text))
                                continue;
                        r = env_write_file_atomic_at(dir_fd, slash + 1, text, strlen(text), 0644);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int env_hook_install(const EnvInfo *env)
{
        InstallJob job;
        EnvUser owner = {};
        int r;

        assert(env);
        if (env->error || !env->path)
                return -EINVAL;
        job = (InstallJob){.path = env->path, .dev = env->dev, .ino = env->ino};
        if (geteuid() != 0)
                return install_as_owner(&job);
        r = env_user_from_uid(env->owner_uid, &owner);
        if (r < 0)
                return r;
        r = env_run_as_user(owner.uid, owner.gid, install_as_owner, &job);
        env_user_done(&owner);
        return r;
}
