/* "Is it already in place?" for the lease hooks and the Jupyter kernel
 * `user add` installs: the files are read as their owner, from a child
 * process (env_run_as_user), and compared with what gpukeeper would write.
 * Reading as the user means a symlink in the user's tree resolves with the
 * user's rights only; root never opens a path the user controls. The
 * answer comes back as the child's exit value (see onboard.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/macro.h"
#include "env/hooks.h"
#include "env/kernel.h"
#include "onboard/onboard.h"

/* The child's way of saying SAME / DIFFERENT / ABSENT through
 * env_run_as_user, which passes back 0 or -errno (-1..-254): three errnos
 * no file operation below returns to the caller as such. */
#define CHILD_SAME 0
#define CHILD_DIFFERENT (-EILSEQ)
#define CHILD_ABSENT (-ENODATA)

static int state_from_child(int r)
{
        if (r == CHILD_SAME)
                return ONBOARD_SAME;
        if (r == CHILD_DIFFERENT)
                return ONBOARD_DIFFERENT;
        if (r == CHILD_ABSENT)
                return ONBOARD_ABSENT;
        return r;
}

/* Compare the file at `rel` below `dirfd` with `want` (and mode 0644): 1 same, 0 different,
 * -ENOENT absent, -errno. Larger than `want` by far is different without
 * reading it all. */
static int file_matches(int dirfd, const char *rel, const char *want)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *have = NULL;
        size_t len = 0, want_len = strlen(want);
        struct stat st;
        int r;

        fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        /* gpukeeper writes both with mode 0644 (env_write_file_atomic_at). */
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644)
                return 0;
        r = read_full_fd(fd, want_len + 1, &have, &len);
        if (r == -EFBIG || r == -EINVAL)
                return 0; /* bigger than ours, or not a regular file */
        if (r < 0)
                return r;
        return len == want_len && memcmp(have, want, len) == 0;
}

typedef struct HooksJob {
        const char *path;
        dev_t dev;
        ino_t ino;
} HooksJob;

static int hooks_as_owner(void *userdata)
{
        const HooksJob *job = userdata;
        _cleanup_close_ int prefix_fd = -1;
        unsigned same = 0, absent = 0, total = 0;
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
                        _cleanup_free_ char *text = NULL;

                        r = env_hook_text(shell, phase, &text);
                        if (r < 0)
                                return r;
                        total++;
                        r = file_matches(prefix_fd, env_hook_relpath(shell, phase), text);
                        if (r == -ENOENT || r == -ENOTDIR)
                                absent++;
                        else if (r < 0)
                                return r;
                        else if (r > 0)
                                same++;
                }
        if (same == total)
                return CHILD_SAME;
        return absent == total ? CHILD_ABSENT : CHILD_DIFFERENT;
}

int onboard_hooks_state(const EnvInfo *env)
{
        HooksJob job;
        EnvUser owner = {};
        int r;

        assert(env);
        if (env->error || !env->path)
                return -EINVAL;
        job = (HooksJob){.path = env->path, .dev = env->dev, .ino = env->ino};
        if (geteuid() != 0)
                return state_from_child(hooks_as_owner(&job));
        r = env_user_from_uid(env->owner_uid, &owner);
        if (r < 0)
                return r;
        r = env_run_as_user(owner.uid, owner.gid, hooks_as_owner, &job);
        env_user_done(&owner);
        return state_from_child(r);
}

typedef struct KernelJob {
        const char *path; /* .../kernels/<dir>/kernel.json */
        const char *text;
} KernelJob;

static int kernel_as_user(void *userdata)
{
        const KernelJob *job = userdata;
        int r = file_matches(AT_FDCWD, job->path, job->text);

        if (r == -ENOENT || r == -ENOTDIR)
                return CHILD_ABSENT;
        if (r < 0)
                return r;
        return r > 0 ? CHILD_SAME : CHILD_DIFFERENT;
}

int onboard_kernel_state(uid_t uid, gid_t gid, const char *data_dir, const char *env_name,
                         const char *prefix, unsigned gpus)
{
        _cleanup_free_ char *dir_name = NULL, *text = NULL, *path = NULL;
        KernelJob job;
        int r;

        assert(data_dir && env_name && prefix);
        if (data_dir[0] != '/')
                return -EINVAL;
        r = env_kernel_dir_name(env_name, &dir_name);
        if (r < 0)
                return r;
        r = env_kernel_spec(env_name, prefix, gpus, &text);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/kernels/%s/kernel.json", data_dir, dir_name) < 0)
                return -ENOMEM;
        job = (KernelJob){.path = path, .text = text};
        r = geteuid() == 0 ? env_run_as_user(uid, gid, kernel_as_user, &job)
                           : kernel_as_user(&job);
        return state_from_child(r);
}
