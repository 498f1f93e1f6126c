/* The bpf() system call, spoken directly: maps, program loading, cgroup
 * attachment, pinning in bpffs, and a tiny instruction builder with labels.
 *
 * gpukeeper's device programs are a few dozen instructions, so they are
 * written as instructions here (no clang, no libbpf, no BTF): the same
 * binary loads on every kernel that has BPF_PROG_TYPE_CGROUP_DEVICE (4.15+).
 * Every function returns 0 / a file descriptor or -errno; nothing logs. */
#pragma once

#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Create a map; `name` (≤ 15 chars) shows in bpftool. Returns the fd. */
int isolate_bpf_map_create(enum bpf_map_type type, const char *name, uint32_t key_size,
                           uint32_t value_size, uint32_t max_entries);
int isolate_bpf_map_lookup(int map_fd, const void *key, void *ret_value);
int isolate_bpf_map_update(int map_fd, const void *key, const void *value, uint64_t flags);
int isolate_bpf_map_delete(int map_fd, const void *key);
/* `key` NULL: the first key. -ENOENT after the last. */
int isolate_bpf_map_next_key(int map_fd, const void *key, void *ret_next);

/* Load a BPF_PROG_TYPE_CGROUP_DEVICE program. On failure the verifier's
 * log (when any) is copied into `log` (may be NULL). Returns the fd. */
int isolate_bpf_prog_load_device(const struct bpf_insn *insns, size_t n, const char *name,
                                 char *log, size_t log_len);

/* Attach / detach a device program to the cgroup directory `cgroup_fd`
 * with BPF_F_ALLOW_MULTI. Attaching a program already attached there is
 * -EEXIST. */
int isolate_bpf_attach_device(int cgroup_fd, int prog_fd);
int isolate_bpf_detach_device(int cgroup_fd, int prog_fd);

/* Whether the program `prog_fd` is attached (directly) to `cgroup_fd`.
 * Returns 1, 0 or -errno. */
int isolate_bpf_device_attached(int cgroup_fd, int prog_fd);

/* The kernel's id of a program. */
int isolate_bpf_prog_id(int prog_fd, uint32_t *ret_id);

/* Pin an object at `path` (inside a bpffs mount); open a pinned one. */
int isolate_bpf_pin(int fd, const char *path);
int isolate_bpf_get_pinned(const char *path);

/* Whether `path` lies on a bpf filesystem. */
bool isolate_is_bpffs(const char *path);
/* Whether `path` is a cgroup2 directory. */
bool isolate_is_cgroup2(const char *path);

/* An instruction sequence under construction. Jumps name labels; labels are
 * resolved by isolate_prog_finish(). Building never fails midway: an
 * overflow is reported once, by finish. */
#define ISOLATE_PROG_MAX 4096
#define ISOLATE_PROG_LABELS 8
#define ISOLATE_PROG_FIXUPS 1024

typedef struct IsolateProg {
        struct bpf_insn insns[ISOLATE_PROG_MAX];
        size_t n;
        int label_at[ISOLATE_PROG_LABELS]; /* -1 until placed */
        struct {
                size_t at;
                unsigned label;
        } fix[ISOLATE_PROG_FIXUPS];
        size_t n_fix;
        bool overflow;
} IsolateProg;

void isolate_prog_init(IsolateProg *p);
void isolate_prog_emit(IsolateProg *p, struct bpf_insn insn);
/* Emit a conditional jump (BPF_JMP or BPF_JMP32 class, BPF_K) to `label`. */
void isolate_prog_jump_imm(IsolateProg *p, uint8_t class_op, uint8_t reg, int32_t imm,
                           unsigned label);
void isolate_prog_goto(IsolateProg *p, unsigned label);
void isolate_prog_label(IsolateProg *p, unsigned label);
/* Load a map's fd into `reg` (the two-slot BPF_LD_IMM64 form). */
void isolate_prog_load_map(IsolateProg *p, uint8_t reg, int map_fd);
/* Resolve jumps. -E2BIG on overflow, -EINVAL for an unplaced label. */
int isolate_prog_finish(IsolateProg *p);

/* Instruction shorthands. */
#define ISOLATE_INSN(c, d, s, o, i)                                                                \
        ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define I_MOV64_REG(d, s) ISOLATE_INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define I_MOV64_IMM(d, i) ISOLATE_INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define I_MOV32_REG(d, s) ISOLATE_INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define I_AND32_IMM(d, i) ISOLATE_INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define I_ADD64_IMM(d, i) ISOLATE_INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define I_LDX_W(d, s, o) ISOLATE_INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define I_STX_W(d, s, o) ISOLATE_INSN(BPF_STX | BPF_W | BPF_MEM, d, s, o, 0)
#define I_ST_W(d, o, i) ISOLATE_INSN(BPF_ST | BPF_W | BPF_MEM, d, 0, o, i)
#define I_ST_DW(d, o, i) ISOLATE_INSN(BPF_ST | BPF_DW | BPF_MEM, d, 0, o, i)
/* *(u64 *)(d + o) += s, atomically (BPF_XADD's encoding, 4.x kernels too). */
#define I_XADD_DW(d, s, o) ISOLATE_INSN(BPF_STX | BPF_DW | BPF_ATOMIC, d, s, o, BPF_ADD)
#define I_CALL(f) ISOLATE_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define I_EXIT() ISOLATE_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
