/* Generating and installing the lease hooks of a conda environment; what the
 * hooks do is described in hooks.h. The scripts are generated per variable
 * of ENV_HOOK_LEASE_VARS so that every variable the activate hook sets is
 * saved and restored the same way in all three shells. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env/env-internal.h"
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

/* Scripts that run `set -e` (and conda's activation in them) source this hook,
 * so no command in it may fail where that would end the shell: the command
 * substitution and the time stamp (an env on a read-only file system) run as
 * if-conditions or with `|| :`. */
static void sh_activate(FILE *f)
{
        fputs("if [ -n \"${CONDA_PREFIX:-}\" ]; then\n"
              "    { date +%s >\"$CONDA_PREFIX/" ENV_LAST_ACTIVATED_FILE "\"; } 2>/dev/null || :\n"
              "fi\n"
              "if command -v gpukeeper >/dev/null 2>&1; then\n"
              "    if _gpukeeper_out=$(gpukeeper lease env 2>/dev/null); then\n"
              "        _gpukeeper_status=0\n"
              "    else\n"
              "        _gpukeeper_status=$?\n"
              "    fi\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "    _gpukeeper_new_%s=\n", lease_vars[i]);
        fputs("    if [ \"$_gpukeeper_status\" -eq 0 ]; then\n"
              "        while IFS= read -r _gpukeeper_line; do\n"
              "            _gpukeeper_value=${_gpukeeper_line#*=\\'}\n"
              "            _gpukeeper_value=${_gpukeeper_value%\\'}\n"
              "            case $_gpukeeper_value in *\\'*) continue ;; esac\n"
              "            case $_gpukeeper_line in\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(
                    f,
                    "            \"export %s='\"*\"'\") _gpukeeper_new_%s=$_gpukeeper_value ;;\n",
                    lease_vars[i], lease_vars[i]);
        fputs("            esac\n"
              "        done <<_GPUKEEPER_EOF\n"
              "$_gpukeeper_out\n"
              "_GPUKEEPER_EOF\n"
              "    fi\n"
              "    if [ -n \"${_GPUKEEPER_DEPTH+x}\" ]; then\n"
              "        case $_GPUKEEPER_DEPTH in ''|*[!0-9]*) _GPUKEEPER_DEPTH=0 ;; esac\n"
              "    fi\n"
              "    if",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "%s [ -n \"$_gpukeeper_new_%s\" ]", i > 0 ? " &&" : "", lease_vars[i]);
        fputs("; then\n"
              "        if [ -z \"${_GPUKEEPER_DEPTH+x}\" ]; then\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "            unset _GPUKEEPER_SAVED_%1$s\n"
                        "            if [ -n \"${%1$s+x}\" ]; then\n"
                        "                export _GPUKEEPER_SAVED_%1$s=\"$%1$s\"\n"
                        "            fi\n",
                        lease_vars[i]);
        fputs("            _GPUKEEPER_DEPTH=0\n"
              "        fi\n"
              "        export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH + 1))\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "        export %1$s=\"$_gpukeeper_new_%1$s\"\n", lease_vars[i]);
        fputs("    else\n"
              "        if [ -n \"${_GPUKEEPER_DEPTH+x}\" ]; then\n"
              "            export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH + 1))\n"
              "        fi\n"
              "        if [ \"$_gpukeeper_status\" -eq 0 ]; then\n"
              "            echo \"" UNUSABLE_MESSAGE "\" >&2\n"
              "        elif [ \"$_gpukeeper_status\" -eq " EXIT_UNREACHABLE " ]; then\n"
              "            echo \"" UNREACHABLE_MESSAGE "\" >&2\n"
              "        else\n"
              "            echo \"" ENV_HOOK_NO_LEASE_MESSAGE "\" >&2\n"
              "        fi\n"
              "    fi\n"
              "    unset _gpukeeper_out _gpukeeper_status _gpukeeper_line _gpukeeper_value\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "    unset _gpukeeper_new_%s\n", lease_vars[i]);
        fputs("fi\n", f);
}

static void sh_deactivate(FILE *f)
{
        fputs("if [ -n \"${_GPUKEEPER_DEPTH+x}\" ]; then\n"
              "    case $_GPUKEEPER_DEPTH in ''|*[!0-9]*) _GPUKEEPER_DEPTH=0 ;; esac\n"
              "    if [ \"$_GPUKEEPER_DEPTH\" -gt 1 ]; then\n"
              "        export _GPUKEEPER_DEPTH=$((_GPUKEEPER_DEPTH - 1))\n"
              "    else\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "        if [ -n \"${_GPUKEEPER_SAVED_%1$s+x}\" ]; then\n"
                        "            export %1$s=\"$_GPUKEEPER_SAVED_%1$s\"\n"
                        "            unset _GPUKEEPER_SAVED_%1$s\n"
                        "        else\n"
                        "            unset %1$s\n"
                        "        fi\n",
                        lease_vars[i]);
        fputs("        unset _GPUKEEPER_DEPTH\n"
              "    fi\n"
              "fi\n",
              f);
}

/* csh cannot redirect stderr alone, so the commands whose errors must stay
 * quiet run under sh -c; `set x = "`cmd`"` keeps one word per output line.
 * Under `csh -e` a failing command, also one in backquotes, ends the shell, so
 * every sh -c here exits 0: the exit status of `gpukeeper lease env` comes
 * back as the first line of its output. That sh script holds $, which csh
 * would substitute inside "`...`", so it sits in a variable that only the
 * backquoted command (parsed by csh once more) expands, as '"$_gpukeeper_sh"'.
 * Messages are written by sh too: csh could only reopen /dev/stderr, whose
 * own offset, when stderr is a file, lets later output overwrite the message.
 * csh substitutes variables on a whole line before it looks at an if
 * condition, so a variable that may be unset is only read inside an
 * if ... then ... endif block. */
static void csh_activate(FILE *f)
{
        fputs("if ( $?CONDA_PREFIX ) then\n"
              "    sh -c 'exec 2>/dev/null; date +%s >\"$1/" ENV_LAST_ACTIVATED_FILE
              "\" || :' sh \"$CONDA_PREFIX\"\n"
              "endif\n"
              "set _gpukeeper_sh = 'if command -v gpukeeper >/dev/null 2>&1; then "
              "if o=$(gpukeeper lease env 2>/dev/null); then echo 0; printf \"%s\\n\" \"$o\"; "
              "else echo $?; fi; else echo 127; fi'\n"
              "set _gpukeeper_out = \"`sh -c \"'\"$_gpukeeper_sh\"'\"`\"\n"
              "set _gpukeeper_status = \"$_gpukeeper_out[1]\"\n"
              "if ( $_gpukeeper_status != 127 ) then\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "    set _gpukeeper_new_%s = \"\"\n", lease_vars[i]);
        fputs("    if ( $_gpukeeper_status == 0 ) then\n"
              "        foreach _gpukeeper_line ( $_gpukeeper_out:q )\n"
              "            switch ( \"$_gpukeeper_line\" )\n"
              "            case \"*'*'*'*\":\n"
              "                breaksw\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "            case \"export %1$s='*'\":\n"
                        "                set _gpukeeper_new_%1$s = "
                        "\"$_gpukeeper_line:s/export %1$s='//:s/'//\"\n"
                        "                breaksw\n",
                        lease_vars[i]);
        fputs("            endsw\n"
              "        end\n"
              "    endif\n"
              "    if ( $?_GPUKEEPER_DEPTH ) then\n"
              "        switch ( \"$_GPUKEEPER_DEPTH\" )\n"
              "        case [0-9]:\n"
              "        case [1-9][0-9]:\n"
              "            breaksw\n"
              "        default:\n"
              "            setenv _GPUKEEPER_DEPTH 0\n"
              "        endsw\n"
              "    endif\n"
              "    if (",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "%s \"$_gpukeeper_new_%s\" != \"\"", i > 0 ? " &&" : "", lease_vars[i]);
        fputs(" ) then\n"
              "        if ( ! $?_GPUKEEPER_DEPTH ) then\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "            unsetenv _GPUKEEPER_SAVED_%1$s\n"
                        "            if ( $?%1$s ) then\n"
                        "                setenv _GPUKEEPER_SAVED_%1$s \"$%1$s\"\n"
                        "            endif\n",
                        lease_vars[i]);
        fputs("            setenv _GPUKEEPER_DEPTH 0\n"
              "        endif\n"
              "        @ _gpukeeper_depth = $_GPUKEEPER_DEPTH + 1\n"
              "        setenv _GPUKEEPER_DEPTH $_gpukeeper_depth\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "        setenv %1$s \"$_gpukeeper_new_%1$s\"\n", lease_vars[i]);
        fputs("    else\n"
              "        if ( $?_GPUKEEPER_DEPTH ) then\n"
              "            @ _gpukeeper_depth = $_GPUKEEPER_DEPTH + 1\n"
              "            setenv _GPUKEEPER_DEPTH $_gpukeeper_depth\n"
              "        endif\n"
              "        if ( $_gpukeeper_status == 0 ) then\n"
              "            sh -c 'echo \"$1\" >&2' sh \"" UNUSABLE_MESSAGE "\"\n"
              "        else if ( $_gpukeeper_status == " EXIT_UNREACHABLE " ) then\n"
              "            sh -c 'echo \"$1\" >&2' sh \"" UNREACHABLE_MESSAGE "\"\n"
              "        else\n"
              "            sh -c 'echo \"$1\" >&2' sh \"" ENV_HOOK_NO_LEASE_MESSAGE "\"\n"
              "        endif\n"
              "    endif\n"
              "    unset _gpukeeper_line _gpukeeper_depth\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "    unset _gpukeeper_new_%s\n", lease_vars[i]);
        fputs("endif\n"
              "unset _gpukeeper_sh _gpukeeper_out _gpukeeper_status\n",
              f);
}

static void csh_deactivate(FILE *f)
{
        fputs("if ( $?_GPUKEEPER_DEPTH ) then\n"
              "    set _gpukeeper_depth = 0\n"
              "    switch ( \"$_GPUKEEPER_DEPTH\" )\n"
              "    case [0-9]:\n"
              "    case [1-9][0-9]:\n"
              "        set _gpukeeper_depth = $_GPUKEEPER_DEPTH\n"
              "        breaksw\n"
              "    endsw\n"
              "    if ( $_gpukeeper_depth > 1 ) then\n"
              "        @ _gpukeeper_depth = $_gpukeeper_depth - 1\n"
              "        setenv _GPUKEEPER_DEPTH $_gpukeeper_depth\n"
              "    else\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "        if ( $?_GPUKEEPER_SAVED_%1$s ) then\n"
                        "            setenv %1$s \"$_GPUKEEPER_SAVED_%1$s\"\n"
                        "            unsetenv _GPUKEEPER_SAVED_%1$s\n"
                        "        else\n"
                        "            unsetenv %1$s\n"
                        "        endif\n",
                        lease_vars[i]);
        fputs("        unsetenv _GPUKEEPER_DEPTH\n"
              "    endif\n"
              "    unset _gpukeeper_depth\n"
              "endif\n",
              f);
}

/* fish: a failed redirection is reported by fish itself whatever 2> says, so
 * the time is written under sh -c as in csh. `set -l` inside the if block
 * keeps the helpers local to it. */
static void fish_activate(FILE *f)
{
        fputs("if set -q CONDA_PREFIX\n"
              "    sh -c 'exec 2>/dev/null; date +%s >\"$1/" ENV_LAST_ACTIVATED_FILE
              "\" || :' sh \"$CONDA_PREFIX\"\n"
              "end\n"
              "if command -q gpukeeper\n"
              "    set -l _gpukeeper_out (gpukeeper lease env 2>/dev/null)\n"
              "    set -l _gpukeeper_status $status\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "    set -l _gpukeeper_new_%s ''\n", lease_vars[i]);
        fputs("    if test $_gpukeeper_status -eq 0\n"
              "        for _gpukeeper_line in $_gpukeeper_out\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "            string match -qr '^export %1$s=\\'[^\\']+\\'$' -- "
                        "$_gpukeeper_line\n"
                        "            and set _gpukeeper_new_%1$s "
                        "(string replace -r '^export %1$s=\\'([^\\']+)\\'$' '$1' -- "
                        "$_gpukeeper_line)\n",
                        lease_vars[i]);
        fputs("        end\n"
              "    end\n"
              "    if set -q _GPUKEEPER_DEPTH\n"
              "        string match -qr '^[0-9]+$' -- \"$_GPUKEEPER_DEPTH\"\n"
              "        or set -gx _GPUKEEPER_DEPTH 0\n"
              "    end\n"
              "    if",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "%s test -n \"$_gpukeeper_new_%s\"", i > 0 ? "; and" : "",
                        lease_vars[i]);
        fputs("\n"
              "        if not set -q _GPUKEEPER_DEPTH\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "            set -eg _GPUKEEPER_SAVED_%1$s\n"
                        "            set -q %1$s\n"
                        "            and set -gx _GPUKEEPER_SAVED_%1$s $%1$s\n",
                        lease_vars[i]);
        fputs("            set -gx _GPUKEEPER_DEPTH 0\n"
              "        end\n"
              "        set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH + 1)\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f, "        set -gx %1$s $_gpukeeper_new_%1$s\n", lease_vars[i]);
        fputs("    else\n"
              "        if set -q _GPUKEEPER_DEPTH\n"
              "            set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH + 1)\n"
              "        end\n"
              "        if test $_gpukeeper_status -eq 0\n"
              "            echo \"" UNUSABLE_MESSAGE "\" >&2\n"
              "        else if test $_gpukeeper_status -eq " EXIT_UNREACHABLE "\n"
              "            echo \"" UNREACHABLE_MESSAGE "\" >&2\n"
              "        else\n"
              "            echo \"" ENV_HOOK_NO_LEASE_MESSAGE "\" >&2\n"
              "        end\n"
              "    end\n"
              "end\n",
              f);
}

static void fish_deactivate(FILE *f)
{
        fputs("if set -q _GPUKEEPER_DEPTH\n"
              "    if string match -qr '^[0-9]+$' -- \"$_GPUKEEPER_DEPTH\"; "
              "and test $_GPUKEEPER_DEPTH -gt 1\n"
              "        set -gx _GPUKEEPER_DEPTH (math $_GPUKEEPER_DEPTH - 1)\n"
              "    else\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(lease_vars); i++)
                fprintf(f,
                        "        if set -q _GPUKEEPER_SAVED_%1$s\n"
                        "            set -gx %1$s $_GPUKEEPER_SAVED_%1$s\n"
                        "            set -eg _GPUKEEPER_SAVED_%1$s\n"
                        "        else\n"
                        "            set -eg %1$s\n"
                        "        end\n",
                        lease_vars[i]);
        fputs("        set -eg _GPUKEEPER_DEPTH\n"
              "    end\n"
              "end\n",
              f);
}

int env_hook_text(EnvHookShell shell, EnvHookPhase phase, char **ret)
{
        static void (*const writers[_ENV_HOOK_SHELL_MAX][_ENV_HOOK_PHASE_MAX])(FILE *) = {
            [ENV_HOOK_SH] = {sh_activate, sh_deactivate},
            [ENV_HOOK_CSH] = {csh_activate, csh_deactivate},
            [ENV_HOOK_FISH] = {fish_activate, fish_deactivate},
        };
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        assert(shell >= 0 && shell < _ENV_HOOK_SHELL_MAX);
        assert(phase >= 0 && phase < _ENV_HOOK_PHASE_MAX);
        assert(ret);

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        write_header(f, phase);
        writers[shell][phase](f);
        if (ferror(f)) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

typedef struct InstallJob {
        const char *path;
        dev_t dev;
        ino_t ino;
} InstallJob;

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
