/* The bpf() system call wrappers and the instruction builder; see bpf.h. */
#include "isolate/bpf.h"

#include <errno.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "basic/macro.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int sys_bpf(int cmd, union bpf_attr *attr)
{
        long r = syscall(__NR_bpf, cmd, attr, sizeof *attr);

        return r < 0 ? negative_errno() : (int)r;
}

static uint64_t ptr_to_u64(const void *p)
{
        return (uint64_t)(uintptr_t)p;
}

int isolate_bpf_map_create(enum bpf_map_type type, const char *name, uint32_t key_size,
                           uint32_t value_size, uint32_t max_entries)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.map_type = type;
        attr.key_size = key_size;
        attr.value_size = value_size;
        attr.max_entries = max_entries;
        if (name)
                strncpy(attr.map_name, name, sizeof attr.map_name - 1);
        return sys_bpf(BPF_MAP_CREATE, &attr);
}

int isolate_bpf_map_lookup(int map_fd, const void *key, void *ret_value)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.map_fd = (uint32_t)map_fd;
        attr.key = ptr_to_u64(key);
        attr.value = ptr_to_u64(ret_value);
        return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr);
}

int isolate_bpf_map_update(int map_fd, const void *key, const void *value, uint64_t flags)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.map_fd = (uint32_t)map_fd;
        attr.key = ptr_to_u64(key);
        attr.value = ptr_to_u64(value);
        attr.flags = flags;
        return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

int isolate_bpf_map_delete(int map_fd, const void *key)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.map_fd = (uint32_t)map_fd;
        attr.key = ptr_to_u64(key);
        return sys_bpf(BPF_MAP_DELETE_ELEM, &attr);
}

int isolate_bpf_map_next_key(int map_fd, const void *key, void *ret_next)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.map_fd = (uint32_t)map_fd;
        attr.key = ptr_to_u64(key);
        attr.next_key = ptr_to_u64(ret_next);
        return sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr);
}

int isolate_bpf_prog_load_device(const struct bpf_insn *insns, size_t n, const char *name,
                                 char *log, size_t log_len)
{
        static const char license[] = "Dual MIT/GPL";
        union bpf_attr attr;
        int r;

        memset(&attr, 0, sizeof attr);
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = ptr_to_u64(insns);
        attr.insn_cnt = (uint32_t)n;
        attr.license = ptr_to_u64(license);
        if (name)
                strncpy(attr.prog_name, name, sizeof attr.prog_name - 1);
        r = sys_bpf(BPF_PROG_LOAD, &attr);
        if (r < 0 && r != -EPERM && log && log_len > 1) {
                /* Again with the verifier's log, to say why. */
                log[0] = '\0';
                attr.log_buf = ptr_to_u64(log);
                attr.log_size = (uint32_t)MIN(log_len, (size_t)UINT32_MAX >> 8);
                attr.log_level = 1;
                (void)sys_bpf(BPF_PROG_LOAD, &attr);
                log[log_len - 1] = '\0';
        } else if (log && log_len)
                log[0] = '\0';
        return r;
}

int isolate_bpf_attach_device(int cgroup_fd, int prog_fd)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.target_fd = (uint32_t)cgroup_fd;
        attr.attach_bpf_fd = (uint32_t)prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        return sys_bpf(BPF_PROG_ATTACH, &attr);
}

int isolate_bpf_detach_device(int cgroup_fd, int prog_fd)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.target_fd = (uint32_t)cgroup_fd;
        attr.attach_bpf_fd = (uint32_t)prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        return sys_bpf(BPF_PROG_DETACH, &attr);
}

int isolate_bpf_prog_id(int prog_fd, uint32_t *ret_id)
{
        struct bpf_prog_info info;
        union bpf_attr attr;
        int r;

        memset(&info, 0, sizeof info);
        memset(&attr, 0, sizeof attr);
        attr.info.bpf_fd = (uint32_t)prog_fd;
        attr.info.info_len = sizeof info;
        attr.info.info = ptr_to_u64(&info);
        r = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
        if (r < 0)
                return r;
        *ret_id = info.id;
        return 0;
}

int isolate_bpf_device_attached(int cgroup_fd, int prog_fd)
{
        uint32_t ids[64], id;
        union bpf_attr attr;
        int r;

        r = isolate_bpf_prog_id(prog_fd, &id);
        if (r < 0)
                return r;
        memset(&attr, 0, sizeof attr);
        attr.query.target_fd = (uint32_t)cgroup_fd;
        attr.query.attach_type = BPF_CGROUP_DEVICE;
        attr.query.prog_ids = ptr_to_u64(ids);
        attr.query.prog_cnt = ELEMENTSOF(ids);
        r = sys_bpf(BPF_PROG_QUERY, &attr);
        if (r < 0 && r != -ENOSPC)
                return r;
        for (uint32_t i = 0; i < MIN(attr.query.prog_cnt, (uint32_t)ELEMENTSOF(ids)); i++)
                if (ids[i] == id)
                        return 1;
        return 0;
}

int isolate_bpf_pin(int fd, const char *path)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.pathname = ptr_to_u64(path);
        attr.bpf_fd = (uint32_t)fd;
        return sys_bpf(BPF_OBJ_PIN, &attr);
}

int isolate_bpf_get_pinned(const char *path)
{
        union bpf_attr attr;

        memset(&attr, 0, sizeof attr);
        attr.pathname = ptr_to_u64(path);
        attr.file_flags = 0;
        return sys_bpf(BPF_OBJ_GET, &attr);
}

bool isolate_is_bpffs(const char *path)
{
        struct statfs st;

        return statfs(path, &st) == 0 && (uint64_t)st.f_type == BPF_FS_MAGIC;
}

bool isolate_is_cgroup2(const char *path)
{
        struct statfs st;

        return statfs(path, &st) == 0 && (uint64_t)st.f_type == CGROUP2_SUPER_MAGIC;
}

void isolate_prog_init(IsolateProg *p)
{
        p->n = 0;
        p->n_fix = 0;
        p->overflow = false;
        for (size_t i = 0; i < ISOLATE_PROG_LABELS; i++)
                p->label_at[i] = -1;
}

void isolate_prog_emit(IsolateProg *p, struct bpf_insn insn)
{
        if (p->n >= ISOLATE_PROG_MAX) {
                p->overflow = true;
                return;
        }
        p->insns[p->n++] = insn;
}

void isolate_prog_jump_imm(IsolateProg *p, uint8_t class_op, uint8_t reg, int32_t imm,
                           unsigned label)
{
        if (label >= ISOLATE_PROG_LABELS || p->n_fix >= ISOLATE_PROG_FIXUPS) {
                p->overflow = true;
                return;
        }
        p->fix[p->n_fix].at = p->n;
        p->fix[p->n_fix].label = label;
        p->n_fix++;
        isolate_prog_emit(p, ISOLATE_INSN(class_op | BPF_K, reg, 0, 0, imm));
}

void isolate_prog_goto(IsolateProg *p, unsigned label)
{
        isolate_prog_jump_imm(p, BPF_JMP | BPF_JA, 0, 0, label);
}

void isolate_prog_label(IsolateProg *p, unsigned label)
{
        if (label >= ISOLATE_PROG_LABELS) {
                p->overflow = true;
                return;
        }
        p->label_at[label] = (int)p->n;
}

void isolate_prog_load_map(IsolateProg *p, uint8_t reg, int map_fd)
{
        isolate_prog_emit(p, ISOLATE_INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0,
                                          map_fd));
        isolate_prog_emit(p, ISOLATE_INSN(0, 0, 0, 0, 0));
}

int isolate_prog_finish(IsolateProg *p)
{
        if (p->overflow)
                return -E2BIG;
        for (size_t i = 0; i < p->n_fix; i++) {
                int target = p->label_at[p->fix[i].label];
                long off;

                if (target < 0)
                        return -EINVAL;
                off = (long)target - (long)p->fix[i].at - 1;
                if (off < INT16_MIN || off > INT16_MAX)
                        return -E2BIG;
                p->insns[p->fix[i].at].off = (int16_t)off;
        }
        return 0;
}
