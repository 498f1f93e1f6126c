/* Strict mode's kernel fence; see fence.h.
 *
 * The host program, in words (ctx is struct bpf_cgroup_dev_ctx):
 *   not a char device                      → allow
 *   (major, minor) not in devs             → allow   (control nodes, disks, ttys, …)
 *   uid == 0                               → allow
 *   (uid, major, minor) in allow           → allow
 *   uid in exempt                          → allow
 *   otherwise count it in denied           → deny (the open fails with EPERM)
 * Systemd's bpf-devices.c builds default-deny allow-lists per unit; Slurm's
 * cgroup/v2 ebpf.c matches rules per job and allows at the end. This one
 * is default-allow for everything but the GPU nodes, since it runs for the
 * whole machine, and keeps its rules in maps so a grant is one map update
 * instead of a program reload. */
#include "isolate/fence.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "basic/macro.h"

#define PIN_PROG_PREFIX "prog-v"

static void closedirp_(DIR **d)
{
        if (*d)
                closedir(*d);
}

struct Fence {
        char *cgroup_path;
        char *pin_dir;
        int prog_fd;
        int old_prog_fd; /* an older pinned version, detached once ours is attached */
        int devs_fd, exempt_fd, allow_fd, denied_fd;
};

typedef struct DevKey {
        uint32_t major, minor;
} DevKey;

typedef struct RuleKey {
        uint32_t uid, major, minor;
} RuleKey;

static const struct {
        const char *name;
        size_t fd_offset;
} pinned_maps[] = {
        {"devs", offsetof(Fence, devs_fd)},
        {"exempt", offsetof(Fence, exempt_fd)},
        {"allow", offsetof(Fence, allow_fd)},
        {"denied", offsetof(Fence, denied_fd)},
};

static int *map_fd_ptr(Fence *f, size_t i)
{
        return (int *)((char *)f + pinned_maps[i].fd_offset);
}

/* Which of the capabilities the fence needs the calling process lacks, as
 * words for the one-line refusal; "" when it has them. */
static const char *missing_caps(void)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2] = {};
        bool bpf, sys_admin;

        if (syscall(SYS_capget, &hdr, data) < 0)
                return "";
        sys_admin = data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
#ifdef CAP_BPF
        bpf = data[CAP_TO_INDEX(CAP_BPF)].effective & CAP_TO_MASK(CAP_BPF);
#else
        bpf = false;
#endif
        if (!bpf && !sys_admin)
                return "CAP_BPF and CAP_SYS_ADMIN are missing";
        if (!sys_admin)
                return "CAP_SYS_ADMIN is missing";
        if (!bpf)
                return "CAP_BPF is missing";
        return "";
}

static void explain_errno(char *why, size_t why_len, const char *what, int r)
{
        const char *caps = r == -EPERM || r == -EACCES ? missing_caps() : "";

        if (caps[0])
                snprintf(why, why_len, "cannot %s: %s (%s; gpukeeperd needs both)", what,
                         strerror(-r), caps);
        else
                snprintf(why, why_len, "cannot %s: %s", what, strerror(-r));
}

int fence_build_host(IsolateProg *p, int devs_fd, int exempt_fd, int allow_fd, int denied_fd)
{
        enum { ALLOW, DENY, COUNT_NEW };
        /* Stack: uid at -16, major at -12, minor at -8 (the 12-byte rule
         * key; (major, minor) at -12 is the 8-byte device key); a counter
         * value of 1 at -24. */

        isolate_prog_init(p);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_6, BPF_REG_1));
        isolate_prog_emit(p, I_LDX_W(BPF_REG_2, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, access_type)));
        isolate_prog_emit(p, I_AND32_IMM(BPF_REG_2, 0xffff));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JNE, BPF_REG_2, BPF_DEVCG_DEV_CHAR, ALLOW);
        isolate_prog_emit(p, I_LDX_W(BPF_REG_2, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, major)));
        isolate_prog_emit(p, I_STX_W(BPF_REG_10, BPF_REG_2, -12));
        isolate_prog_emit(p, I_LDX_W(BPF_REG_2, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, minor)));
        isolate_prog_emit(p, I_STX_W(BPF_REG_10, BPF_REG_2, -8));

        /* Guarded at all? */
        isolate_prog_load_map(p, BPF_REG_1, devs_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -12));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_lookup_elem));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JEQ, BPF_REG_0, 0, ALLOW);

        /* Who: root always. */
        isolate_prog_emit(p, I_CALL(BPF_FUNC_get_current_uid_gid));
        isolate_prog_emit(p, I_MOV32_REG(BPF_REG_0, BPF_REG_0));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JEQ, BPF_REG_0, 0, ALLOW);
        isolate_prog_emit(p, I_STX_W(BPF_REG_10, BPF_REG_0, -16));

        /* A lease of this user on this node? (before the exempt users:
         * the allowed path is the common one and costs one lookup less) */
        isolate_prog_load_map(p, BPF_REG_1, allow_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -16));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_lookup_elem));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JNE, BPF_REG_0, 0, ALLOW);
        isolate_prog_load_map(p, BPF_REG_1, exempt_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -16));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_lookup_elem));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JNE, BPF_REG_0, 0, ALLOW);

        /* Refused: count it. */
        isolate_prog_load_map(p, BPF_REG_1, denied_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -16));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_lookup_elem));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JEQ, BPF_REG_0, 0, COUNT_NEW);
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_1, 1));
        isolate_prog_emit(p, I_XADD_DW(BPF_REG_0, BPF_REG_1, 0));
        isolate_prog_goto(p, DENY);

        /* First refusal of this (uid, node): insert 1. Two racing first
         * refusals may count one; the open is refused either way. */
        isolate_prog_label(p, COUNT_NEW);
        isolate_prog_emit(p, I_ST_DW(BPF_REG_10, -24, 1));
        isolate_prog_load_map(p, BPF_REG_1, denied_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -16));
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_3, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_3, -24));
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_4, BPF_NOEXIST));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_update_elem));

        isolate_prog_label(p, DENY);
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_0, 0));
        isolate_prog_emit(p, I_EXIT());
        isolate_prog_label(p, ALLOW);
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_0, 1));
        isolate_prog_emit(p, I_EXIT());
        return isolate_prog_finish(p);
}

int fence_build_lease(IsolateProg *p, int devs_fd, const PolicyFenceDev *allowed, size_t n)
{
        enum { ALLOW, NEXT_BASE };

        if (n > 64)
                return -E2BIG;
        isolate_prog_init(p);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_6, BPF_REG_1));
        isolate_prog_emit(p, I_LDX_W(BPF_REG_2, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, access_type)));
        isolate_prog_emit(p, I_AND32_IMM(BPF_REG_2, 0xffff));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JNE, BPF_REG_2, BPF_DEVCG_DEV_CHAR, ALLOW);
        isolate_prog_emit(p, I_LDX_W(BPF_REG_7, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, major)));
        isolate_prog_emit(p, I_LDX_W(BPF_REG_8, BPF_REG_6,
                                     offsetof(struct bpf_cgroup_dev_ctx, minor)));
        /* The lease's own nodes: two compares each, 32-bit so that majors
         * and minors above INT32_MAX compare as written. */
        for (size_t i = 0; i < n; i++) {
                /* "if major != x skip the next compare": a relative jump of 1. */
                isolate_prog_emit(p, ISOLATE_INSN(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_7, 0, 1,
                                                  (int32_t)allowed[i].major));
                isolate_prog_jump_imm(p, BPF_JMP32 | BPF_JEQ, BPF_REG_8,
                                      (int32_t)allowed[i].minor, ALLOW);
        }
        isolate_prog_emit(p, I_STX_W(BPF_REG_10, BPF_REG_7, -8));
        isolate_prog_emit(p, I_STX_W(BPF_REG_10, BPF_REG_8, -4));
        isolate_prog_load_map(p, BPF_REG_1, devs_fd);
        isolate_prog_emit(p, I_MOV64_REG(BPF_REG_2, BPF_REG_10));
        isolate_prog_emit(p, I_ADD64_IMM(BPF_REG_2, -8));
        isolate_prog_emit(p, I_CALL(BPF_FUNC_map_lookup_elem));
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JEQ, BPF_REG_0, 0, ALLOW);
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_0, 0));
        isolate_prog_emit(p, I_EXIT());
        isolate_prog_label(p, ALLOW);
        isolate_prog_emit(p, I_MOV64_IMM(BPF_REG_0, 1));
        isolate_prog_emit(p, I_EXIT());
        return isolate_prog_finish(p);
}

int fence_probe_uid_helper(char *why, size_t why_len)
{
        struct bpf_insn insns[] = {
                I_CALL(BPF_FUNC_get_current_uid_gid),
                I_MOV64_IMM(BPF_REG_0, 1),
                I_EXIT(),
        };
        char log[512];
        int fd;

        fd = isolate_bpf_prog_load_device(insns, ELEMENTSOF(insns), "gk_probe", log, sizeof log);
        if (fd >= 0) {
                close(fd);
                return 1;
        }
        if (fd == -EINVAL || fd == -EACCES) {
                snprintf(why, why_len,
                         "this kernel does not let BPF device programs call "
                         "bpf_get_current_uid_gid (%s)",
                         log[0] ? log : strerror(-fd));
                return 0;
        }
        explain_errno(why, why_len, "load a BPF device program", fd);
        return fd;
}

static void fence_fds_close(Fence *f)
{
        if (f->prog_fd >= 0)
                close(f->prog_fd);
        if (f->old_prog_fd >= 0)
                close(f->old_prog_fd);
        for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++)
                if (*map_fd_ptr(f, i) >= 0)
                        close(*map_fd_ptr(f, i));
}

void fence_close(Fence *f)
{
        if (!f)
                return;
        fence_fds_close(f);
        free(f->cgroup_path);
        free(f->pin_dir);
        free(f);
}

static int pin_path(const char *dir, const char *name, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%s/%s", dir, name);

        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Find a pinned program of another version; its fd or -ENOENT. */
static int open_old_prog(const char *pin_dir, char *ret_path, size_t len)
{
        _cleanup_(closedirp_) DIR *dir = NULL;
        char mine[32];
        struct dirent *de;

        snprintf(mine, sizeof mine, PIN_PROG_PREFIX "%d", FENCE_VERSION);
        dir = opendir(pin_dir);
        if (!dir)
                return -ENOENT;
        while ((de = readdir(dir)))
                if (strncmp(de->d_name, PIN_PROG_PREFIX, strlen(PIN_PROG_PREFIX)) == 0 &&
                    strcmp(de->d_name, mine) != 0 &&
                    pin_path(pin_dir, de->d_name, ret_path, len) == 0)
                        return isolate_bpf_get_pinned(ret_path);
        return -ENOENT;
}

int fence_open(const char *cgroup_path, const char *pin_dir, Fence **ret, bool *ret_taken_over,
               char *why, size_t why_len)
{
        static const struct {
                enum bpf_map_type type;
                uint32_t key, value, max;
        } specs[] = {
                {BPF_MAP_TYPE_HASH, sizeof(DevKey), 1, FENCE_DEVS_MAX},
                {BPF_MAP_TYPE_HASH, sizeof(uint32_t), 1, FENCE_EXEMPT_MAX},
                {BPF_MAP_TYPE_HASH, sizeof(RuleKey), 1, FENCE_ALLOW_MAX},
                {BPF_MAP_TYPE_HASH, sizeof(RuleKey), sizeof(uint64_t), FENCE_DENIED_MAX},
        };
        char path[PATH_MAX], name[16], old_path[PATH_MAX];
        _cleanup_free_ char *parent = NULL;
        bool have_all = true, have_any = false;
        IsolateProg *prog = NULL;
        char *slash;
        Fence *f;
        int r;

        if (!isolate_is_cgroup2(cgroup_path)) {
                snprintf(why, why_len,
                         "enforcement.fence_cgroup %s is not a cgroup2 directory (strict mode "
                         "needs the unified cgroup hierarchy mounted)",
                         cgroup_path);
                return -ENOTDIR;
        }
        parent = strdup(pin_dir);
        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        if (slash && slash != parent)
                *slash = '\0';
        if (!isolate_is_bpffs(parent) && !isolate_is_bpffs(pin_dir)) {
                snprintf(why, why_len,
                         "enforcement.fence_pin_dir %s is not on a bpf filesystem (mount one: "
                         "mount -t bpf bpf %s)",
                         pin_dir, parent);
                return -ENOTDIR;
        }
        if (mkdir(pin_dir, 0700) < 0 && errno != EEXIST) {
                r = negative_errno();
                snprintf(why, why_len, "cannot create %s: %s", pin_dir, strerror(-r));
                return r;
        }

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->prog_fd = f->old_prog_fd = -1;
        for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++)
                *map_fd_ptr(f, i) = -1;
        f->cgroup_path = strdup(cgroup_path);
        f->pin_dir = strdup(pin_dir);
        if (!f->cgroup_path || !f->pin_dir) {
                r = -ENOMEM;
                goto fail;
        }

        /* Take over what is pinned. */
        for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++) {
                if ((r = pin_path(pin_dir, pinned_maps[i].name, path, sizeof path)) < 0)
                        goto fail;
                *map_fd_ptr(f, i) = isolate_bpf_get_pinned(path);
                if (*map_fd_ptr(f, i) >= 0)
                        have_any = true;
                else
                        have_all = false;
        }
        snprintf(name, sizeof name, PIN_PROG_PREFIX "%d", FENCE_VERSION);
        if ((r = pin_path(pin_dir, name, path, sizeof path)) < 0)
                goto fail;
        f->prog_fd = isolate_bpf_get_pinned(path);
        f->old_prog_fd = open_old_prog(pin_dir, old_path, sizeof old_path);
        if (have_all && f->prog_fd >= 0) {
                /* An older version pinned beside ours: detached by attach. */
                *ret_taken_over = true;
                *ret = f;
                return 0;
        }
        if (f->prog_fd >= 0) {
                /* Our program without all its maps: start over with both,
                 * detaching this one once the new one is attached. */
                if (f->old_prog_fd < 0)
                        f->old_prog_fd = f->prog_fd;
                else
                        close(f->prog_fd);
                f->prog_fd = -1;
                (void)unlink(path);
        }
        if (!have_all && have_any)
                for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++)
                        if (*map_fd_ptr(f, i) >= 0) {
                                close(*map_fd_ptr(f, i));
                                *map_fd_ptr(f, i) = -1;
                                if (pin_path(pin_dir, pinned_maps[i].name, path, sizeof path) == 0)
                                        (void)unlink(path);
                        }

        /* New maps (unless kept from an older version), a new program. */
        for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++) {
                if (*map_fd_ptr(f, i) >= 0)
                        continue;
                snprintf(name, sizeof name, "gk_%s", pinned_maps[i].name);
                r = isolate_bpf_map_create(specs[i].type, name, specs[i].key, specs[i].value,
                                           specs[i].max);
                if (r < 0) {
                        explain_errno(why, why_len, "create the fence's BPF maps", r);
                        goto fail_quiet;
                }
                *map_fd_ptr(f, i) = r;
        }
        prog = malloc(sizeof *prog);
        if (!prog) {
                r = -ENOMEM;
                goto fail;
        }
        r = fence_build_host(prog, f->devs_fd, f->exempt_fd, f->allow_fd, f->denied_fd);
        if (r < 0)
                goto fail;
        {
                char log[1024];

                r = isolate_bpf_prog_load_device(prog->insns, prog->n, "gk_fence", log,
                                                 sizeof log);
                if (r < 0) {
                        if (log[0] && r != -EPERM)
                                snprintf(why, why_len,
                                         "the kernel refused the fence program: %s (%.400s)",
                                         strerror(-r), log);
                        else
                                explain_errno(why, why_len, "load the fence program", r);
                        goto fail_quiet;
                }
        }
        f->prog_fd = r;
        free(TAKE_PTR(prog));

        for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++) {
                if ((r = pin_path(pin_dir, pinned_maps[i].name, path, sizeof path)) < 0)
                        goto fail;
                r = isolate_bpf_pin(*map_fd_ptr(f, i), path);
                if (r < 0 && r != -EEXIST) {
                        snprintf(why, why_len, "cannot pin %s: %s", path, strerror(-r));
                        goto fail_quiet;
                }
        }
        snprintf(name, sizeof name, PIN_PROG_PREFIX "%d", FENCE_VERSION);
        if ((r = pin_path(pin_dir, name, path, sizeof path)) < 0)
                goto fail;
        r = isolate_bpf_pin(f->prog_fd, path);
        if (r < 0) {
                snprintf(why, why_len, "cannot pin %s: %s", path, strerror(-r));
                goto fail_quiet;
        }
        *ret_taken_over = false;
        *ret = f;
        return 0;

fail:
        snprintf(why, why_len, "cannot set up the fence: %s", strerror(-r));
fail_quiet:
        free(prog);
        fence_close(f);
        return r;
}

int fence_attach(Fence *f, char *why, size_t why_len)
{
        _cleanup_close_ int cg = -1;
        int r;

        cg = open(f->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg < 0) {
                r = negative_errno();
                snprintf(why, why_len, "cannot open enforcement.fence_cgroup %s: %s",
                         f->cgroup_path, strerror(-r));
                return r;
        }
        r = isolate_bpf_device_attached(cg, f->prog_fd);
        if (r == 0) {
                r = isolate_bpf_attach_device(cg, f->prog_fd);
                if (r == -EEXIST)
                        r = 0;
        }
        if (r < 0) {
                char what[PATH_MAX + 64];

                snprintf(what, sizeof what, "attach the fence program to %s", f->cgroup_path);
                explain_errno(why, why_len, what, r);
                return r;
        }
        if (f->old_prog_fd >= 0) {
                char old_path[PATH_MAX];
                int old;

                /* Ours is in place: only now may the old one go. */
                (void)isolate_bpf_detach_device(cg, f->old_prog_fd);
                close(f->old_prog_fd);
                f->old_prog_fd = -1;
                while ((old = open_old_prog(f->pin_dir, old_path, sizeof old_path)) >= 0) {
                        (void)isolate_bpf_detach_device(cg, old);
                        close(old);
                        if (unlink(old_path) < 0)
                                break;
                }
        }
        return 0;
}

/* Make the hash map `fd` hold exactly the `n` sorted keys in `keys` (each
 * `key_size` bytes) with value `value`. */
static int sync_map(int fd, const void *keys, size_t n, size_t key_size, size_t max,
                    int (*cmp)(const void *, const void *), const void *value)
{
        _cleanup_free_ uint8_t *existing = NULL;
        uint8_t cur[16], next[16];
        size_t n_existing = 0;
        bool first = true;
        int r;

        for (size_t i = 0; i < n; i++) {
                r = isolate_bpf_map_update(fd, (const uint8_t *)keys + i * key_size, value,
                                           BPF_ANY);
                if (r < 0)
                        return r;
        }
        existing = malloc(max * key_size);
        if (!existing)
                return -ENOMEM;
        while (n_existing < max) {
                r = isolate_bpf_map_next_key(fd, first ? NULL : cur, next);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return r;
                memcpy(existing + n_existing * key_size, next, key_size);
                memcpy(cur, next, key_size);
                n_existing++;
                first = false;
        }
        for (size_t i = 0; i < n_existing; i++) {
                const uint8_t *k = existing + i * key_size;

                if (!bsearch(k, keys, n, key_size, cmp)) {
                        r = isolate_bpf_map_delete(fd, k);
                        if (r < 0 && r != -ENOENT)
                                return r;
                }
        }
        return 0;
}

static int dev_key_cmp(const void *a, const void *b)
{
        return policy_fence_dev_cmp(a, b);
}

static int rule_key_cmp(const void *a, const void *b)
{
        return policy_fence_rule_cmp(a, b);
}

static int uid_cmp(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

int fence_sync_guarded(Fence *f, const PolicyFenceDev *devs, size_t n)
{
        static const uint8_t one = 1;

        _Static_assert(sizeof(PolicyFenceDev) == sizeof(DevKey), "device key layout");
        if (n > FENCE_DEVS_MAX)
                return -E2BIG;
        return sync_map(f->devs_fd, devs, n, sizeof(DevKey), FENCE_DEVS_MAX, dev_key_cmp, &one);
}

int fence_sync_allow(Fence *f, const PolicyFenceRule *rules, size_t n)
{
        static const uint8_t one = 1;

        _Static_assert(sizeof(PolicyFenceRule) == sizeof(RuleKey), "rule key layout");
        if (n > FENCE_ALLOW_MAX)
                return -E2BIG;
        return sync_map(f->allow_fd, rules, n, sizeof(RuleKey), FENCE_ALLOW_MAX, rule_key_cmp,
                        &one);
}

int fence_sync_exempt(Fence *f, const uint32_t *uids, size_t n)
{
        static const uint8_t one = 1;

        if (n > FENCE_EXEMPT_MAX)
                return -E2BIG;
        return sync_map(f->exempt_fd, uids, n, sizeof(uint32_t), FENCE_EXEMPT_MAX, uid_cmp, &one);
}

int fence_allow(Fence *f, const PolicyFenceRule *rule, bool allow)
{
        static const uint8_t one = 1;
        int r;

        if (allow)
                return isolate_bpf_map_update(f->allow_fd, rule, &one, BPF_ANY);
        r = isolate_bpf_map_delete(f->allow_fd, rule);
        return r == -ENOENT ? 0 : r;
}

int fence_denied_foreach(Fence *f, fence_denied_fn fn, void *userdata)
{
        RuleKey cur, next;
        bool first = true;
        size_t seen = 0;
        int r;

        while (seen++ < FENCE_DENIED_MAX) {
                uint64_t count;

                r = isolate_bpf_map_next_key(f->denied_fd, first ? NULL : &cur, &next);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                first = false;
                cur = next;
                if (isolate_bpf_map_lookup(f->denied_fd, &next, &count) < 0)
                        continue; /* removed meanwhile */
                r = fn(&(PolicyFenceRule){next.uid, next.major, next.minor}, count, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int fence_guarded_fd(const Fence *f)
{
        return f->devs_fd;
}

bool fence_is_pinned(const char *pin_dir)
{
        char path[PATH_MAX], name[32];
        int fd;

        snprintf(name, sizeof name, PIN_PROG_PREFIX "%d", FENCE_VERSION);
        if (pin_path(pin_dir, name, path, sizeof path) < 0)
                return false;
        if (access(path, F_OK) == 0)
                return true;
        fd = open_old_prog(pin_dir, path, sizeof path);
        if (fd >= 0)
                close(fd);
        return fd >= 0;
}

int fence_remove(const char *cgroup_path, const char *pin_dir, char *why, size_t why_len)
{
        _cleanup_(closedirp_) DIR *dir = NULL;
        _cleanup_close_ int cg = -1;
        char path[PATH_MAX];
        struct dirent *de;
        int r = 0;

        dir = opendir(pin_dir);
        if (!dir)
                return errno == ENOENT ? 0 : negative_errno();
        cg = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cg < 0) {
                r = negative_errno();
                snprintf(why, why_len,
                         "cannot open enforcement.fence_cgroup %s to detach the fence: %s",
                         cgroup_path, strerror(-r));
                return r;
        }
        while ((de = readdir(dir))) {
                int fd;

                if (de->d_name[0] == '.' || pin_path(pin_dir, de->d_name, path, sizeof path) < 0)
                        continue;
                if (strncmp(de->d_name, PIN_PROG_PREFIX, strlen(PIN_PROG_PREFIX)) == 0) {
                        fd = isolate_bpf_get_pinned(path);
                        if (fd >= 0) {
                                int q = isolate_bpf_device_attached(cg, fd);

                                if (q > 0)
                                        q = isolate_bpf_detach_device(cg, fd);
                                if (q < 0 && r == 0) {
                                        r = q;
                                        snprintf(why, why_len,
                                                 "cannot detach the fence program from %s: %s",
                                                 cgroup_path, strerror(-q));
                                }
                        }
                        if (fd >= 0)
                                close(fd);
                        if (r < 0)
                                return r; /* keep the pins of what is still attached */
                }
        }
        rewinddir(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.' && pin_path(pin_dir, de->d_name, path, sizeof path) == 0)
                        (void)unlink(path);
        (void)rmdir(pin_dir);
        return 1;
}
