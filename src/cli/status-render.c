/* The text view of `gpukeeper status`. Layout, for an 80-column terminal:
 *
 *   gpu-node-01  driver 550.54.15  8 GPUs  SIMULATED                  19:34:38
 *   [0] NVIDIA A100-SXM4-80GB  GPU-5e2c1a3b…      34°C   61 W  37 %    6.0/80.0 GiB
 *          4242 alice        5.0 GiB  python train.py --epochs 10
 *   [2] NVIDIA A100-SXM4-80GB  GPU-22222222… MIG  40°C   90 W   - %   12.0/80.0 GiB
 *       ├─ 3g.40gb    MIG-1f0a2b3c…  gi 1 ci 0                         5.0/39.2 GiB
 *       │     4343 bob          5.0 GiB  python infer.py
 *       └─ 1g.10gb    MIG-9f9f9f9f…  gi 9 ci 0                          1.0/9.8 GiB
 *             4444 carol        1.0 GiB  jupyter-kernel
 *   [3] NVIDIA A100-SXM4-80GB  GPU-33333333…  UNHEALTHY
 *       nvmlDeviceGetMemoryInfo_v2: GPU is lost
 *
 * With a daemon that knows leases, a line under each GPU (not in MIG mode)
 * and each MIG instance says who holds it, and the queue follows the GPUs:
 *
 *   [0] NVIDIA A100-SXM4-80GB  GPU-5e2c1a3b…      34°C   61 W  37 %    6.0/80.0 GiB
 *       alice run 2h13m (lease 12)
 *          4242 alice        5.0 GiB  python train.py --epochs 10
 *   [1] NVIDIA A100-SXM4-80GB  GPU-11111111…      31°C   56 W   0 %    0.5/80.0 GiB
 *       DRAINED  IN USE WITHOUT LEASE: mallory
 *          5151 mallory      0.5 GiB  (no lease) ./miner
 *       ├─ 3g.40gb    MIG-1f0a2b3c…  gi 1 ci 0                         5.0/39.2 GiB
 *       │  bob manual, 1h left (lease 13)
 *       │     4343 bob          5.0 GiB  python infer.py
 *       └─ 1g.10gb    MIG-9f9f9f9f…  gi 9 ci 0                          0.0/9.8 GiB
 *             free
 *
 *   Queue: 1 waiting
 *   POS  USER       WANTS           WAITING  REASON
 *     1  carol      2 GPUs          12m      waiting for 2 GPUs: 1 free
 *
 * A process the daemon has opened a violation for (its owner holds no lease
 * on the device) gets a second line, under its command, that says what will
 * happen to it: "VIOLATION: stop at 12:03:04", "VIOLATION: SIGTERM sent",
 * "VIOLATION: SIGKILL sent", or "VIOLATION: observed" when the daemon only
 * records:
 *
 *          5151 mallory      0.5 GiB  (no lease) ./miner
 *                                     VIOLATION: stop at 12:03:04
 *
 * A lease found idle is marked after it: "IDLE: release warned" (a manual
 * lease about to be released) or "IDLE" (a run lease flagged).
 *
 * Fixed-width columns so that GPUs line up; only the last field of a line
 * (a command line, an error) grows on wider terminals. Unknown values (JSON
 * null) print as "-", never as 0: an idle GPU and an unreadable one must not
 * look alike.
 *
 * It reads the reply through an index over its text (proto/json-index.h,
 * issue 16's fifth pass), not a jansson tree: each object's members are
 * matched against the keys a printer needs in one walk (members()), each
 * process is read once (its sort keys, whether it is leased, which instance
 * it is in) before the GPU's lines are printed, and the queue, a few
 * requests, is the one part handed to jansson (cli_queue_render()). The
 * json_t entry point dumps its tree and renders that text, so both print
 * the same bytes.
 *
 * `gpukeeper status` itself prints each GPU as its part of the reply
 * arrives (issue 16, eighth pass: cli_status_stream_*() at the end): the
 * same printers, on an index of one GPU's text at a time. It asks for its
 * processes as rows ("process_rows", docs/protocol.md): a process is then
 * an array whose places "process_fields" names (read_row_places()). The
 * streamed view reads each GPU's processes straight from its text as the
 * rest is indexed (read_processes()); the whole reply's view reads them
 * from the index (process_from_refs(), rows through row_members()). Both
 * fill the same `process`, which is all the printers read. */
#include "cli/status-render.h"

#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/pointer-sort.h"
#include "cli/lease-render.h"
#include "proto/json-scan.h"
#include "proto/json-split.h"
#include "proto/proto.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Lines stop one column short of the terminal's width, so that none relies
 * on how the terminal wraps after its last column. On 80 columns that puts
 * the right-aligned memory column's end at 79. */
#define LINE_END (CLI_TERM_MIN_COLUMNS - 1)

#define UUID_W 13    /* "GPU-5e2c1a3b…": enough to tell GPUs apart */
#define MIG_W 3      /* "MIG" or blank */
#define TEMP_W 3     /* digits, then "°C" */
#define POWER_W 4    /* digits, then " W" (1000 W parts exist) */
#define UTIL_W 3     /* digits, then " %" */
#define MEM_W 15     /* "141.0/141.0 GiB" */
#define TREE_W 7     /* "    ├─ " */
#define PROFILE_W 10 /* "1g.10gb+me", "1c.3g.40gb" */
#define IDS_W 12     /* "gi 14 ci 0" */
#define PID_W 7      /* pid_max is at most 4194304 */
#define USER_W 10    /* longer login names are cut */
#define PMEM_W 9     /* "141.0 GiB" */

/* Everything on a GPU line except the index and the name. */
#define GPU_FIXED_W                                                                                \
        (1 + 2 + UUID_W + 1 + MIG_W + 1 + TEMP_W + 2 + 1 + POWER_W + 2 + 1 + UTIL_W + 2 + 1 + MEM_W)

/* Which process field (P_*) each place of a process row holds, from the
 * daemon's "process_fields" (a status asked for with "process_rows"); -1
 * for a field this view does not read. Places past ROW_PLACES_MAX are
 * not read. */
#define ROW_PLACES_MAX 64
typedef struct row_places {
        int8_t field[ROW_PLACES_MAX];
        size_t n;
} row_places;

/* What every printing function needs: the reply, where to print, how. */
typedef struct view {
        const JsonIndex *ix;
        FILE *f;
        const cli_term *term; /* narrowed to the last column a line may use */
        double now;
        const row_places *rows; /* NULL: the reply has no process rows */
        /* The GPU's processes as read_processes() read them while its text
         * was indexed (the view as the reply arrives); NULL: read them
         * from the index. */
        struct process_reader *taken;
        /* Process lines not written yet (print_process_plain()); NULL:
         * each written at once. */
        struct line_out *lines;
} view;

/* ---- Reading the reply ------------------------------------------------------------------ */

typedef struct member_key {
        const char *name;
        size_t len;
} member_key;

#define KEY(s) {s, sizeof(s) - 1}

/* Whether the decoded key name[0..len) is k: a dozen per process. The
 * length and the first byte tell most keys apart; memcmp() the rest. */
static bool key_is(const member_key *k, const char *name, size_t len)
{
        return k->len == len && (len == 0 || (k->name[0] == name[0] && memcmp(k->name, name, len) == 0));
}

/* ret[i] = the value of the member of `obj` named keys[i] (the last one, as
 * jansson keeps it), 0 when there is none or obj is not an object: one walk
 * over the members for all the keys a printer reads. The search for each
 * member starts after the key the previous one matched: with `keys` in the
 * daemon's order, that is the first one tried. */
static void members(const JsonIndex *ix, JsonIndexRef obj, const member_key *keys, size_t n,
                    JsonIndexRef *ret)
{
        size_t next = 0;

        memset(ret, 0, n * sizeof *ret);
        if (!json_index_is_object(ix, obj))
                return;
        for (JsonIndexRef k = json_index_first(ix, obj); k; k = json_index_next(ix, k)) {
                size_t len = 0;
                const char *name = json_index_string(ix, k, &len);

                for (size_t t = 0, i = next; t < n; t++, i = i + 1 == n ? 0 : i + 1)
                        if (key_is(&keys[i], name, len)) {
                                ret[i] = json_index_value(ix, k);
                                next = i + 1 == n ? 0 : i + 1;
                                break;
                        }
        }
}

#define MEMBERS(v, obj, keys, ret)                                                                 \
        do {                                                                                       \
                _Static_assert(ELEMENTSOF(keys) == ELEMENTSOF(ret), "keys and refs differ");       \
                members((v)->ix, obj, keys, ELEMENTSOF(keys), ret);                                \
        } while (0)

/* cli_json_str(): a string, or NULL when not one or empty. */
static const char *str(const view *v, JsonIndexRef r)
{
        size_t len = 0;
        const char *s = json_index_string(v->ix, r, &len);

        return s && len > 0 ? s : NULL;
}

/* cli_json_num(): a number (always finite: the scanner refuses overflow). */
static bool num(const view *v, JsonIndexRef r, double *ret)
{
        return json_index_number(v->ix, r, ret);
}

/* A number as the reply has it: its text, of a JSON_INDEX_INTEGER or
 * _REAL (type JSON_INDEX_NONE for any other value). What a process's
 * numbers are kept as, whether read from an index or from a row read
 * without one (read_processes()). */
typedef struct pnum {
        const char *text;
        uint32_t len;
        uint8_t type; /* JsonIndexType */
} pnum;

static pnum pnum_of(const JsonIndex *ix, JsonIndexRef r)
{
        size_t n = 0;
        const char *t = json_index_number_text(ix, r, &n);

        return t ? (pnum){t, (uint32_t)n, (uint8_t)json_index_type(ix, r)} : (pnum){};
}

/* num() of a number kept as text. */
static bool pnum_value(const pnum *n, double *ret)
{
        if (n->type == JSON_INDEX_INTEGER) {
                *ret = (double)json_index_integer_text(n->text, n->len);
                return true;
        }
        return n->type != JSON_INDEX_NONE &&
               json_index_number_of_text(n->text, n->len, (JsonIndexType)n->type, ret);
}

/* Whether n is an integer written as digits without a leading zero (an
 * optional minus before them), of at most 15 (so below 2^53): then its
 * text is the one cli_number_text() would make of it (a pid per process
 * line), to be used as it stands. */
static bool pnum_canonical(const pnum *n)
{
        size_t sign;

        if (n->type != JSON_INDEX_INTEGER)
                return false;
        sign = n->text[0] == '-';
        return n->len > sign && n->len - sign <= 15 && n->text[sign] >= '1' && n->text[sign] <= '9';
}

/* cli_json_int_text() of a number kept as text. */
static const char *pnum_text(char *buf, size_t len, const pnum *n)
{
        int64_t i;
        double d;

        if (n->type == JSON_INDEX_INTEGER) {
                if (pnum_canonical(n) && n->len < len) {
                        memcpy(buf, n->text, n->len);
                        buf[n->len] = '\0';
                        return buf;
                }
                i = json_index_integer_text(n->text, n->len);
                d = (double)i;
                return cli_number_text(buf, len, &i, &d);
        }
        return cli_number_text(buf, len, NULL, pnum_value(n, &d) ? &d : NULL);
}

/* cli_json_int_text() */
static const char *int_text(char *buf, size_t len, const view *v, JsonIndexRef r)
{
        pnum n = pnum_of(v->ix, r);

        return pnum_text(buf, len, &n);
}

static bool is_true(const view *v, JsonIndexRef r)
{
        return json_index_is_true(v->ix, r);
}

/* ---- Printing --------------------------------------------------------------------------- */

/* "%.1f" of bytes / GiB. A byte count below 2^53 is an exact double and so
 * is its quotient by 2^30: its tenths are then found in integers, rounded
 * to nearest, ties to even, as printf rounds the exact value; that skips
 * printf's floating point for the thousands of process lines. */
#define GIB_EXACT_MAX (INT64_C(1) << 53)

/* fmt_gib() of a byte count i in [0, GIB_EXACT_MAX), written at `to`
 * (at most 19 bytes, no NUL): the byte after it. */
static char *gib_exact(char *to, int64_t i)
{
        uint64_t x = (uint64_t)i * 10, tenths = x >> 30, rem = x & ((UINT64_C(1) << 30) - 1);
        const uint64_t half = UINT64_C(1) << 29;
        char tmp[24], *p = tmp + sizeof tmp;

        if (rem > half || (rem == half && tenths % 2 == 1))
                tenths++;
        *--p = (char)('0' + tenths % 10);
        *--p = '.';
        tenths /= 10;
        do
                *--p = (char)('0' + tenths % 10);
        while ((tenths /= 10) > 0);
        return mempcpy(to, p, (size_t)(tmp + sizeof tmp - p));
}

/* The same, NUL-terminated in buf[24]. */
static const char *fmt_gib_exact(char buf[static 24], int64_t i)
{
        *gib_exact(buf, i) = '\0';
        return buf;
}

/* "%.1f" of bytes / GiB, for a number kept as text; "-" for none. */
static const char *pnum_gib(char *buf, size_t len, const pnum *n)
{
        double d;

        if (n->type == JSON_INDEX_INTEGER && len >= 24) {
                int64_t i = json_index_integer_text(n->text, n->len);

                if (i >= 0 && i < GIB_EXACT_MAX)
                        return fmt_gib_exact(buf, i);
        }
        if (!pnum_value(n, &d))
                return "-";
        snprintf(buf, len, "%.1f", d / GIB);
        return buf;
}

static const char *fmt_gib(char *buf, size_t len, const view *v, JsonIndexRef r)
{
        pnum n = pnum_of(v->ix, r);

        return pnum_gib(buf, len, &n);
}

/* "used/total GiB" right-aligned in MEM_W columns. */
static void print_memory(const view *v, JsonIndexRef used_r, JsonIndexRef total_r)
{
        char used[32], total[32], both[80];

        stpcpy(stpcpy(stpcpy(stpcpy(both, fmt_gib(used, sizeof used, v, used_r)), "/"),
                      fmt_gib(total, sizeof total, v, total_r)),
               " GiB");
        cli_text_field(v->f, both, MEM_W, CLI_ALIGN_RIGHT, v->term->unicode);
}

/* A number right-aligned in `width` columns followed by its unit. */
static void print_quantity(const view *v, JsonIndexRef r, size_t width, const char *unit)
{
        char buf[32];

        cli_text_field(v->f, int_text(buf, sizeof buf, v, r), width, CLI_ALIGN_RIGHT,
                       v->term->unicode);
        fputs_unlocked(unit, v->f);
}

/* "HH:MM:SS" of unix time t in local time, into clock (left as it is when
 * t cannot be shown: also a time past what time_t holds, whose conversion
 * would be undefined; found by fuzz-status). */
static void fmt_clock(char *clock, size_t len, double t)
{
        time_t when;
        struct tm tm;

        if (!(t >= 0 && t < 0x1p62))
                return;
        when = (time_t)t;
        if (localtime_r(&when, &tm))
                strftime(clock, len, "%H:%M:%S", &tm);
}

/* Keys in the order the daemon writes them (members() tries that first). */
enum {
        S_SIMULATED, S_DRIVER, S_HOSTNAME, S_SAMPLED_AT, S_NVML, S_MESSAGE, S_GPU_COUNT,
        S_PROCESS_FIELDS, S_GPUS, S_QUEUE, S_FENCE, S_N,
};
static const member_key status_keys[] = {
    KEY("simulated"), KEY("driver_version"), KEY("hostname"), KEY("sampled_at"),
    KEY("nvml_available"), KEY("message"), KEY("gpu_count"), KEY("process_fields"),
    KEY("gpus"), KEY("queue"), KEY("fence"),
};

static void print_header(const view *v, const JsonIndexRef *st, size_t n_gpus)
{
        FILE *f = v->f;
        const cli_term *term = v->term;
        const char *host = str(v, st[S_HOSTNAME]), *driver = str(v, st[S_DRIVER]);
        size_t used;
        char count[32], clock[16] = "";
        double sampled;

        if (num(v, st[S_SAMPLED_AT], &sampled))
                fmt_clock(clock, sizeof clock, sampled);

        cli_text_style(f, term, CLI_STYLE_BOLD);
        used = cli_text_clip(f, host ? host : "-", 24, term->unicode);
        cli_text_style(f, term, CLI_STYLE_RESET);
        if (driver) {
                fputs_unlocked("  driver ", f);
                used += 9 + cli_text_clip(f, driver, 14, term->unicode);
        }
        if (is_true(v, st[S_NVML])) {
                snprintf(count, sizeof count, "  %zu GPU%s", n_gpus, n_gpus == 1 ? "" : "s");
                used += cli_text_clip(f, count, 12, term->unicode);
        }
        if (is_true(v, st[S_SIMULATED])) {
                fputs_unlocked("  ", f);
                cli_text_style(f, term, CLI_STYLE_YELLOW);
                fputs_unlocked("SIMULATED", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                used += 2 + 9;
        }
        if (clock[0]) {
                size_t w = strlen(clock);

                cli_text_spaces(f, used + 2 + w <= LINE_END ? LINE_END - used - w : 2);
                fputs_unlocked(clock, f);
        }
        putc_unlocked('\n', f);
}

/* Keys in the order the daemon writes them (members() tries that first). */
enum {
        P_PID, P_UID, P_USER, P_COMMAND, P_MEMORY, P_INSTANCE, P_VANISHED, P_ZOMBIE, P_EXITED,
        P_LEASED, P_VIOLATION, P_N,
};
static const member_key process_keys[] = {
    KEY("pid"), KEY("uid"), KEY("user"), KEY("command"), KEY("memory_used_bytes"),
    KEY("instance_uuid"), KEY("vanished"), KEY("zombie"), KEY("exited"), KEY("leased"),
    KEY("violation"),
};

enum { VIOLATION_NONE, VIOLATION_SIGKILL, VIOLATION_SIGTERM, VIOLATION_OBSERVED, VIOLATION_STOP };

/* A string of a process: NULL when the value is not a string, or empty;
 * its length, and whether it is all printable ASCII (cli_text_plain()),
 * worked out once per string rather than at every use. */
typedef struct pstr {
        const char *s;
        uint32_t len;
        bool plain;
} pstr;

/* A process with what the view reads of it, read once, from an object or
 * a row of the index (process_from_refs()) or from a row of the text
 * itself (read_processes()). Strings point into the index's arena or the
 * reader's; numbers into the reply's text. */
typedef struct process {
        pstr user, command, instance_uuid;
        pnum pid, uid, mem;
        bool vanished, exited, zombie;
        bool leased_false; /* "leased" is false (a daemon without leases sends none) */
        uint8_t violation; /* VIOLATION_*: what an open violation's mark says */
        double stop_at;    /* VIOLATION_STOP: when */
        /* From the above (process_finish()): */
        double memory; /* -1: unknown */
        double pid_key;
        bool memory_exact; /* an integer in [0, GIB_EXACT_MAX), so `memory` exactly:
                            * gib_exact() */
        bool unleased;        /* it runs where its owner holds no lease */
        size_t index;         /* position in the reply: ties keep the reply's order */
        ssize_t instance; /* the first of the GPU's instances whose uuid it names; -1: none */
} process;

/* Processes by GPU memory, largest first; unknown memory last; then by pid
 * so the order is stable between runs; then as the reply had them. */
static inline bool process_before(const process *a, const process *b)
{
        if (a->memory != b->memory)
                return a->memory > b->memory;
        if (a->pid_key != b->pid_key)
                return a->pid_key < b->pid_key;
        return a->index < b->index;
}

/* sort_processes(p, tmp, n): p[0..n) by process_before(), tmp room for
 * n / 2 (basic/pointer-sort.h). (qsort() moved the 100-byte processes
 * themselves through a comparison it called by pointer: 12 % of the view's
 * instructions at 4,096 processes.) Rows come from gpukeeperd in this order
 * already (docs/protocol.md): then it costs a comparison per process. */
POINTER_SORT_DEFINE(sort_processes, process, process_before)

enum { V_OUTCOME, V_SIGKILL, V_SIGTERM, V_STOP, V_N };
static const member_key violation_keys[] = {
    KEY("outcome"), KEY("sigkill_at"), KEY("sigterm_at"), KEY("stop_at"),
};

/* What the mark of violation r says (VIOLATION_*; *ret_stop for
 * VIOLATION_STOP): none unless it is an object without an outcome. */
static uint8_t violation_of(const JsonIndex *ix, JsonIndexRef r, double *ret_stop)
{
        JsonIndexRef m[V_N];
        size_t len = 0;
        double t;

        if (!json_index_is_object(ix, r))
                return VIOLATION_NONE;
        members(ix, r, violation_keys, V_N, m);
        if (json_index_string(ix, m[V_OUTCOME], &len) && len > 0)
                return VIOLATION_NONE;
        if (json_index_number(ix, m[V_SIGKILL], &t))
                return VIOLATION_SIGKILL;
        if (json_index_number(ix, m[V_SIGTERM], &t))
                return VIOLATION_SIGTERM;
        if (!json_index_number(ix, m[V_STOP], ret_stop))
                return VIOLATION_OBSERVED;
        return VIOLATION_STOP;
}

/* One value of a process: its type; for a number its text, for a string
 * its decoded text (NUL-terminated) and whether it is plain (-1: not
 * known yet), for an object where it is indexed. */
typedef struct pvalue {
        JsonIndexType type;
        const char *text;
        size_t len;
        int8_t plain;
        const JsonIndex *ix;
        JsonIndexRef r;
} pvalue;

static pvalue pvalue_of(const JsonIndex *ix, JsonIndexRef r)
{
        pvalue val = {.type = json_index_type(ix, r), .plain = -1, .ix = ix, .r = r};

        if (val.type == JSON_INDEX_STRING)
                val.text = json_index_string(ix, r, &val.len);
        else if (json_index_is_number(ix, r))
                val.text = json_index_number_text(ix, r, &val.len);
        return val;
}

/* Where each field (P_*) goes in a process, and how its value is kept: a
 * table rather than a switch per value (46,000 values at 4,096 processes). */
enum { SLOT_NUMBER, SLOT_STRING, SLOT_FLAG, SLOT_VIOLATION };
static const struct {
        uint8_t kind;
        uint8_t when; /* SLOT_FLAG: the type that sets it */
        uint16_t at;  /* offsetof() in process */
} process_slots[P_N] = {
    [P_PID] = {SLOT_NUMBER, 0, offsetof(process, pid)},
    [P_UID] = {SLOT_NUMBER, 0, offsetof(process, uid)},
    [P_USER] = {SLOT_STRING, 0, offsetof(process, user)},
    [P_COMMAND] = {SLOT_STRING, 0, offsetof(process, command)},
    [P_MEMORY] = {SLOT_NUMBER, 0, offsetof(process, mem)},
    [P_INSTANCE] = {SLOT_STRING, 0, offsetof(process, instance_uuid)},
    [P_VANISHED] = {SLOT_FLAG, JSON_INDEX_TRUE, offsetof(process, vanished)},
    [P_ZOMBIE] = {SLOT_FLAG, JSON_INDEX_TRUE, offsetof(process, zombie)},
    [P_EXITED] = {SLOT_FLAG, JSON_INDEX_TRUE, offsetof(process, exited)},
    [P_LEASED] = {SLOT_FLAG, JSON_INDEX_FALSE, offsetof(process, leased_false)},
    [P_VIOLATION] = {SLOT_VIOLATION, 0, 0},
};

/* Field `field` (P_*) of p from its value; a value of another type than
 * the field's reads as none, as the index's accessors answer. */
static inline __attribute__((always_inline)) void process_set(process *p, int field,
                                                              const pvalue *val)
{
        char *at = (char *)p + process_slots[field].at;

        switch (process_slots[field].kind) {
        case SLOT_NUMBER:
                *(pnum *)(void *)at = val->type == JSON_INDEX_INTEGER || val->type == JSON_INDEX_REAL
                                              ? (pnum){val->text, (uint32_t)val->len,
                                                       (uint8_t)val->type}
                                              : (pnum){};
                break;
        case SLOT_STRING:
                *(pstr *)(void *)at =
                        val->type == JSON_INDEX_STRING && val->len > 0
                                ? (pstr){val->text, (uint32_t)val->len,
                                         val->plain >= 0 ? val->plain
                                                         : cli_text_plain(val->text) == val->len}
                                : (pstr){};
                break;
        case SLOT_FLAG:
                *(bool *)at = val->type == process_slots[field].when;
                break;
        case SLOT_VIOLATION:
                p->violation = val->type == JSON_INDEX_OBJECT
                                       ? violation_of(val->ix, val->r, &p->stop_at)
                                       : VIOLATION_NONE;
                break;
        }
}

/* A process from the refs of its members (m[i] for process_keys[i]). */
static void process_from_refs(process *p, const JsonIndex *ix, const JsonIndexRef m[static P_N])
{
        for (int i = 0; i < P_N; i++) {
                pvalue val = pvalue_of(ix, m[i]);

                process_set(p, i, &val);
        }
}

/* What is worked out from a process's fields, once: its sort keys, its
 * memory in whole bytes, whether it runs on a device its owner holds no
 * lease on (only an explicit false counts: a daemon without leases sends
 * no "leased" at all, and an exited process holds nothing any more). */
static void process_finish(process *p)
{
        p->memory = -1;
        p->pid_key = 0;
        p->memory_exact = false;
        if (p->mem.type == JSON_INDEX_INTEGER) {
                int64_t bytes = json_index_integer_text(p->mem.text, p->mem.len);

                p->memory = (double)bytes;
                p->memory_exact = bytes >= 0 && bytes < GIB_EXACT_MAX;
        } else
                (void)pnum_value(&p->mem, &p->memory);
        (void)pnum_value(&p->pid, &p->pid_key);
        p->unleased = p->leased_false && !p->vanished;
}

/* The places of the rows from "process_fields" (the field names, in row
 * order). A reply without it has none: *ret zero-filled. */
static void read_row_places(const JsonIndex *ix, JsonIndexRef fields, row_places *ret)
{
        size_t k = 0;

        *ret = (row_places){};
        if (!json_index_is_array(ix, fields))
                return;
        for (JsonIndexRef e = json_index_first(ix, fields); e && k < ROW_PLACES_MAX;
             e = json_index_next(ix, e), k++) {
                size_t len = 0;
                const char *name = json_index_string(ix, e, &len);

                ret->field[k] = -1;
                for (size_t i = 0; name && i < P_N; i++)
                        if (key_is(&process_keys[i], name, len))
                                ret->field[k] = (int8_t)i;
        }
        ret->n = k;
}

/* The field (P_*) place k of a row holds; -1 for none. */
static int row_field(const row_places *rows, size_t k)
{
        return rows && k < rows->n ? rows->field[k] : -1;
}

/* What members() reads of a process object, from a process row: m[i] the
 * value in the place "process_fields" names field i (the last such, as
 * for an object's keys), 0 for a field no place holds. */
static void row_members(const view *v, JsonIndexRef row, JsonIndexRef m[static P_N])
{
        size_t k = 0;

        memset(m, 0, P_N * sizeof *m);
        for (JsonIndexRef e = json_index_first(v->ix, row); e; e = json_index_next(v->ix, e), k++) {
                int field = row_field(v->rows, k);

                if (field >= 0)
                        m[field] = e;
        }
}

/* ---- A GPU's processes read from the text as it is indexed ------------------------------ */

/* The view as the reply arrives reads each GPU's "processes" itself
 * (json_index_rebuild_taking()): a status of 4,096 processes is 46,000
 * values in rows, which indexed cost a token and an arena copy each and
 * were then read again from the index (issue 16, tenth pass). Here each
 * row's values go straight into a process, checked with the index's own
 * pieces (the same texts are refused); a process given as an object, or
 * an object or array inside a row (a violation), is indexed on its own in
 * `scratch` and read from there. Strings are decoded into `strings`, where
 * one equal to the same field's in the process before is kept once (the
 * processes of a device are mostly one user's, one program's). */
typedef struct process_reader {
        process *procs; /* of the GPU being read */
        size_t n, cap;
        char *strings;
        size_t strings_used, strings_size; /* strings_size >= the GPU's text + 1 */
        /* The previous process's strings, and whether each was written
         * without escapes (its bytes are then those in the text). */
        struct {
                pstr str;
                bool raw;
        } last[P_N];
        JsonIndex *scratch;
        const row_places *rows;
} process_reader;

/* The string whose quote is at s[p] (its end q, plain or not as
 * json_scan_string_end() said), decoded into the reader's strings; the
 * same field's string of the process before when equal. */
static pstr reader_string(process_reader *rd, int field, const char *s, size_t len, size_t p,
                          size_t q, bool plain)
{
        char *out = rd->strings + rd->strings_used;
        const pstr *last = &rd->last[field].str;
        size_t n;

        if (plain) {
                n = q - p - 2;
                if (last->s && last->len == n && memcmp(last->s, s + p + 1, n) == 0)
                        return *last;
                memcpy(out, s + p + 1, n);
        } else {
                (void)json_scan_string_decode(s, len, p, out, &n);
                if (last->s && last->len == n && memcmp(last->s, out, n) == 0)
                        return *last;
        }
        out[n] = '\0';
        rd->strings_used += n + 1;
        rd->last[field].str = (pstr){out, (uint32_t)n, cli_text_plain(out) == n};
        rd->last[field].raw = plain;
        return rd->last[field].str;
}

/* A container inside a row or the processes array: indexed in the
 * scratch index, then read as the value of field `field` (-1: none). */
static __attribute__((noinline)) int reader_container(process_reader *rd, process *pr, int field,
                                                      const char *s, size_t len, size_t *p,
                                                      unsigned depth)
{
        pvalue val;
        size_t q;
        int r;

        if (depth == 0)
                return -EBADMSG;
        r = json_index_rebuild_value(rd->scratch, s, len, *p, depth, &q);
        if (r < 0)
                return r;
        val = pvalue_of(rd->scratch, json_index_root(rd->scratch));
        if (field >= 0)
                process_set(pr, field, &val);
        *p = q;
        return 0;
}

/* The value at s[*p] (p < len, not whitespace) of field `field` (-1: one
 * the view does not read), its containers nested at most `depth` deep;
 * *p moved past it. Inline: once per value of every row. */
static inline __attribute__((always_inline)) int reader_value(process_reader *rd, process *pr,
                                                              int field, const char *s, size_t len,
                                                              size_t *p, unsigned depth)
{
        pvalue val = {.plain = -1};
        size_t q;

        if (s[*p] == '"') {
                const pstr *last = field >= 0 && rd->last[field].raw ? &rd->last[field].str : NULL;
                bool plain;

                /* The same string as the process before's, written the
                 * same way: its bytes, which need no escape, then the
                 * closing quote. What json_scan_string_end() would find,
                 * without the scan (a device's processes share their
                 * user, command, instance). */
                if (last && last->s && len - *p > last->len + 1 &&
                    s[*p + 1 + last->len] == '"' && memcmp(s + *p + 1, last->s, last->len) == 0) {
                        val = (pvalue){.type = JSON_INDEX_STRING, .text = last->s,
                                       .len = last->len, .plain = last->plain};
                        process_set(pr, field, &val);
                        *p += last->len + 2;
                        return 0;
                }
                q = json_scan_string_end(s, len, *p, &plain);
                if (q == 0)
                        return -EBADMSG;
                if (field >= 0) {
                        pstr str = reader_string(rd, field, s, len, *p, q, plain);

                        val = (pvalue){.type = JSON_INDEX_STRING, .text = str.s, .len = str.len,
                                       .plain = str.plain};
                        process_set(pr, field, &val);
                }
                *p = q;
                return 0;
        }
        if (s[*p] == '{' || s[*p] == '[')
                return reader_container(rd, pr, field, s, len, p, depth);
        q = json_index_scalar_end(s, len, *p, &val.type);
        if (q == 0)
                return -EBADMSG;
        if (field >= 0) {
                val.text = s + *p;
                val.len = q - *p;
                process_set(pr, field, &val);
        }
        *p = json_index_after_scalar(s, len, q);
        return 0;
}

/* The punctuation of an array the reader walks, as the index checks it.
 * array_open(): the array whose '[' is at s[*p] is empty (1, *p past its
 * ']') or not (0, *p at its first element). array_next(): after an element
 * ending at s[*p], the array ends (1, *p past the ']') or a comma follows
 * (0, *p at the next element); -EBADMSG for anything else. */
static inline int array_open(const char *s, size_t len, size_t *p)
{
        size_t q = json_scan_skip_ws(s, len, *p + 1);

        if (q < len && s[q] == ']') {
                *p = q + 1;
                return 1;
        }
        *p = q;
        return q < len ? 0 : -EBADMSG;
}

static inline int array_next(const char *s, size_t len, size_t *p)
{
        size_t q = *p;

        /* A comma right after the value is the common case. */
        if (q >= len || s[q] != ',')
                q = json_scan_skip_ws(s, len, q);
        if (q >= len)
                return -EBADMSG;
        if (s[q] == ']') {
                *p = q + 1;
                return 1;
        }
        if (s[q] != ',')
                return -EBADMSG;
        q = json_scan_skip_ws(s, len, q + 1);
        *p = q;
        return q < len ? 0 : -EBADMSG;
}

/* A process row, its '[' at s[*p], nested at most `depth` deep (the row
 * counts as one); *p moved past its ']'. */
static int reader_row(process_reader *rd, process *pr, const char *s, size_t len, size_t *p,
                      unsigned depth)
{
        int r = array_open(s, len, p);

        for (size_t k = 0; r == 0; k++) {
                r = reader_value(rd, pr, row_field(rd->rows, k), s, len, p, depth - 1);
                if (r < 0)
                        return r;
                r = array_next(s, len, p);
        }
        return r < 0 ? r : 0;
}

/* A process given as anything but a row: an object indexed on its own (a
 * daemon that sends objects), or a value that makes a process of nothing. */
static int reader_element(process_reader *rd, process *pr, const char *s, size_t len, size_t *p,
                          unsigned depth)
{
        JsonIndexRef m[P_N];
        pstr *kept[] = {&pr->user, &pr->command, &pr->instance_uuid};
        size_t q;
        int r;

        if (s[*p] != '{')
                return reader_value(rd, pr, -1, s, len, p, depth);
        if (depth == 0)
                return -EBADMSG;
        r = json_index_rebuild_value(rd->scratch, s, len, *p, depth, &q);
        if (r < 0)
                return r;
        members(rd->scratch, json_index_root(rd->scratch), process_keys, P_N, m);
        process_from_refs(pr, rd->scratch, m);
        /* Its strings are in the scratch index, which the next one
         * replaces: kept in the reader's strings. */
        for (size_t i = 0; i < ELEMENTSOF(kept); i++) {
                if (!kept[i]->s)
                        continue;
                memcpy(rd->strings + rd->strings_used, kept[i]->s, kept[i]->len + 1);
                kept[i]->s = rd->strings + rd->strings_used;
                rd->strings_used += kept[i]->len + 1;
        }
        *p = q;
        return 0;
}

/* JsonIndexTake's read() for "processes": the array at s[p]. */
static ssize_t read_processes(void *userdata, const char *s, size_t len, size_t p, unsigned depth)
{
        process_reader *rd = userdata;
        size_t q = p;
        int r = array_open(s, len, &q);

        /* jansson keeps the last "processes": a second one starts over. */
        rd->n = 0;
        rd->strings_used = 0;
        memset(rd->last, 0, sizeof rd->last);
        while (r == 0) {
                process *pr;

                if (rd->n == rd->cap) {
                        /* Enough at once for the processes the text can
                         * hold at a row of the daemon's (100 bytes and
                         * more): growing by copies touched fresh pages
                         * for each. */
                        size_t cap = MAX(rd->cap * 2, MAX(len / 100, (size_t)64));
                        process *grown = reallocarray(rd->procs, cap, sizeof *grown);

                        if (!grown)
                                return -ENOMEM;
                        rd->procs = grown;
                        rd->cap = cap;
                }
                pr = &rd->procs[rd->n];
                *pr = (process){.index = rd->n};
                rd->n++;
                r = s[q] == '[' && depth >= 2 ? reader_row(rd, pr, s, len, &q, depth - 1)
                                               : reader_element(rd, pr, s, len, &q, depth - 1);
                if (r < 0)
                        return r;
                r = array_next(s, len, &q);
        }
        return r < 0 ? r : (ssize_t)q;
}

/* The mark of a process with an open violation ("VIOLATION: stop at
 * 12:03:04"), or NULL when it has none. */
static const char *violation_mark(char *buf, size_t len, const process *p)
{
        char clock[16] = "-";

        switch (p->violation) {
        case VIOLATION_SIGKILL:
                return "VIOLATION: SIGKILL sent";
        case VIOLATION_SIGTERM:
                return "VIOLATION: SIGTERM sent";
        case VIOLATION_OBSERVED:
                return "VIOLATION: observed";
        case VIOLATION_STOP:
                fmt_clock(clock, sizeof clock, p->stop_at);
                snprintf(buf, len, "VIOLATION: stop at %s", clock);
                return buf;
        default:
                return NULL;
        }
}

/* A line built in memory and written with one call, for the process lines
 * (one or two per process). Any append that does not fit, or a field that
 * is not plain ASCII, clears `ok`: the caller then prints the line through
 * stdio the long way, nothing of it having been written. */
#define LINE_MAX_BYTES (4 * CLI_TERM_MAX_COLUMNS)
typedef struct line_buf {
        char *at, *end;
        bool ok;
} line_buf;

/* Process lines gathered before they go to stdio: a device's run of them
 * written with one fwrite() rather than one each (issue 16, tenth pass).
 * Anything else the view prints comes after lines_flush(). */
#define LINES_SIZE (16u * 1024u)
typedef struct line_out {
        size_t n;
        char buf[LINES_SIZE];
} line_out;

static void lines_flush(const view *v)
{
        if (v->lines && v->lines->n > 0) {
                fwrite_unlocked(v->lines->buf, 1, v->lines->n, v->f);
                v->lines->n = 0;
        }
}

static inline __attribute__((always_inline)) void line_add(line_buf *l, const char *s, size_t n)
{
        if (!l->ok || n > (size_t)(l->end - l->at)) {
                l->ok = false;
                return;
        }
        /* memcpy(), which the compiler writes out for a constant n. */
        memcpy(l->at, s, n);
        l->at += n;
}

static inline __attribute__((always_inline)) void line_str(line_buf *l, const char *s)
{
        line_add(l, s, strlen(s));
}

static inline __attribute__((always_inline)) void line_style(line_buf *l, const cli_term *term,
                                                             const char *sgr)
{
        if (term->color) {
                line_add(l, "\033[", 2);
                line_str(l, sgr);
                line_add(l, "m", 1);
        }
}

/* A field of `columns` columns, of a string whose length and plainness
 * are known (cli_text_field_plain()). */
static inline __attribute__((always_inline)) void line_field(line_buf *l, pstr t, size_t columns,
                                                             cli_align align)
{
        if (l->ok && (!t.plain || columns > (size_t)(l->end - l->at)))
                l->ok = false;
        if (l->ok && !(l->at = cli_text_field_plain(l->at, t.s, t.len, columns, align)))
                l->ok = false;
}

/* A string cut to `max_columns` (cli_text_clip_plain()); one that is not
 * plain goes the long way. */
static inline __attribute__((always_inline)) void line_clip(line_buf *l, pstr t, size_t max_columns,
                                                            bool unicode)
{
        char *to = l->ok && t.plain
                           ? cli_text_clip_plain(l->at, l->end, t.s, t.len, max_columns, unicode)
                           : NULL;

        if (to)
                l->at = to;
        else
                l->ok = false;
}

/* A NUL-terminated string as a pstr. */
static pstr str_of(const char *s)
{
        size_t n = strlen(s);

        return (pstr){s, (uint32_t)n, cli_text_plain(s) == n};
}

/* A process's number as the text of a column for a line built in memory
 * (not NUL-terminated): its own text when it reads as itself
 * (pnum_canonical(): digits, plain), else pnum_text() in buf. */
static pstr number_str(char *buf, size_t len, const pnum *n)
{
        return pnum_canonical(n) ? (pstr){n->text, n->len, true} : str_of(pnum_text(buf, len, n));
}

/* A live process's line (and its violation's, under it) when every field
 * is printable ASCII: built in memory and written with one call instead of
 * a dozen. Returns false, having printed nothing, for any other; then
 * print_process() prints it field by field, the same bytes. */
static bool print_process_plain(const view *v, const process *p, const char *prefix,
                                size_t prefix_w, pstr user, pstr what, pstr command,
                                const char *mark)
{
        const cli_term *term = v->term;
        size_t fields_w = PID_W + 1 + USER_W + 1 + PMEM_W + 2, used = prefix_w + fields_w;
        char pid_buf[32];
        pstr pid = number_str(pid_buf, sizeof pid_buf, &p->pid);
        char own[LINE_MAX_BYTES];
        line_out *out = v->lines;
        line_buf l = {.at = own, .end = own + sizeof own, .ok = true};

        if (out) {
                if (LINES_SIZE - out->n < LINE_MAX_BYTES)
                        lines_flush(v);
                l = (line_buf){.at = out->buf + out->n, .end = out->buf + out->n + LINE_MAX_BYTES,
                               .ok = true};
        }
        line_str(&l, prefix);
        line_field(&l, pid, PID_W, CLI_ALIGN_RIGHT);
        line_add(&l, " ", 1);
        line_field(&l, user, USER_W, CLI_ALIGN_LEFT);
        line_add(&l, " ", 1);
        line_field(&l, what, PMEM_W, CLI_ALIGN_RIGHT);
        line_add(&l, "  ", 2);
        if (mark || p->unleased) {
                line_style(&l, term, CLI_STYLE_RED);
                line_add(&l, "(no lease)", 10);
                line_style(&l, term, CLI_STYLE_RESET);
                used += 10;
                if (used + 1 < term->columns) {
                        line_add(&l, " ", 1);
                        line_clip(&l, command, term->columns - used - 1, term->unicode);
                }
        } else {
                line_clip(&l, command, term->columns - used, term->unicode);
        }
        line_add(&l, "\n", 1);
        if (mark) {
                line_str(&l, prefix);
                for (size_t i = 0; i < fields_w; i++)
                        line_add(&l, " ", 1);
                line_style(&l, term, CLI_STYLE_RED);
                line_str(&l, mark);
                line_style(&l, term, CLI_STYLE_RESET);
                line_add(&l, "\n", 1);
        }
        if (!l.ok)
                return false;
        if (out)
                out->n = (size_t)(l.at - out->buf);
        else
                fwrite_unlocked(own, 1, (size_t)(l.at - own), v->f);
        return true;
}

/* One process line, after `prefix` (which takes `prefix_w` columns). */
static void print_process(const view *v, const process *p, const char *prefix, size_t prefix_w)
{
        FILE *f = v->f;
        const cli_term *term = v->term;
        const char *user = p->user.s, *command = p->command.s;
        bool vanished = p->vanished || p->exited, zombie = p->zombie;
        char pid[32], uid[32], mem[32], what[64], mark_buf[64], *end;
        const char *mark = vanished ? NULL : violation_mark(mark_buf, sizeof mark_buf, p);
        size_t fields_w = PID_W + 1 + USER_W + 1 + PMEM_W + 2, used = prefix_w + fields_w;
        pstr user_str = p->user;

        /* No passwd entry (or the process is gone): the uid is all there is. */
        if (!user) {
                user = pnum_text(uid, sizeof uid, &p->uid);
                user_str = str_of(user);
        }
        /* "%s GiB" without printf: a line per process. */
        end = p->memory_exact ? gib_exact(what, (int64_t)p->memory)
                              : stpcpy(what, pnum_gib(mem, sizeof mem, &p->mem));
        end = mempcpy(end, " GiB", 5) - 1;
        if (!vanished &&
            print_process_plain(v, p, prefix, prefix_w, user_str,
                                (pstr){what, (uint32_t)(end - what), true},
                                command ? p->command : (pstr){"-", 1, true}, mark))
                return;
        lines_flush(v);
        fputs_unlocked(prefix, f);
        cli_text_field(f, pnum_text(pid, sizeof pid, &p->pid), PID_W, CLI_ALIGN_RIGHT,
                       term->unicode);
        putc_unlocked(' ', f);
        cli_text_field(f, user, USER_W, CLI_ALIGN_LEFT, term->unicode);
        putc_unlocked(' ', f);
        cli_text_field(f, what, PMEM_W, CLI_ALIGN_RIGHT, term->unicode);
        fputs_unlocked("  ", f);
        if (vanished) {
                /* Exited but still holding memory: gone (owner as last
                 * seen), or a zombie its parent has not reaped. */
                cli_text_style(f, term, CLI_STYLE_DIM);
                fputs_unlocked(zombie ? "(zombie)" : "(exited)", f);
                used += 8;
                if (command && used + 1 < term->columns) {
                        putc_unlocked(' ', f);
                        cli_text_clip(f, command, term->columns - used - 1, term->unicode);
                }
                cli_text_style(f, term, CLI_STYLE_RESET);
        } else if (mark || p->unleased) {
                /* Its owner holds no lease here: the status line above says
                 * so for the device, this says which process it is. */
                cli_text_style(f, term, CLI_STYLE_RED);
                fputs_unlocked("(no lease)", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                used += 10;
                if (used + 1 < term->columns) {
                        putc_unlocked(' ', f);
                        cli_text_clip(f, command ? command : "-", term->columns - used - 1,
                                      term->unicode);
                }
        } else {
                cli_text_clip(f, command ? command : "-", term->columns - used, term->unicode);
        }
        putc_unlocked('\n', f);
        if (!mark)
                return;
        /* What the daemon will do about it, under the command: the command
         * line keeps its room, and the mark is never cut. */
        fputs_unlocked(prefix, f);
        cli_text_spaces(f, fields_w);
        cli_text_style(f, term, CLI_STYLE_RED);
        fputs_unlocked(mark, f);
        cli_text_style(f, term, CLI_STYLE_RESET);
        putc_unlocked('\n', f);
}

/* Whether process p belongs to the device: instance `inst` of its GPU (the
 * first instance with that uuid), or with inst -1 to none of its instances. */
static bool process_in(const process *p, ssize_t inst)
{
        return p->instance == inst;
}

/* Append "name" to the comma-separated `list` unless it is there already. */
static void add_user(char *list, size_t len, const char *name)
{
        size_t n = strlen(name), used = strlen(list);

        /* The name added last first: most of a device's processes are one
         * user's. */
        if (used >= n && strcmp(list + used - n, name) == 0 &&
            (used == n || list[used - n - 1] == ' '))
                return;
        for (const char *p = list; (p = strstr(p, name)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
                        return;
        snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

/* One part of a holder line, after two spaces unless it is the first or
 * `glued` (it continues the part before); cut to `max_w` columns and to what
 * is left of the line. */
static void holder_part(const view *v, const char *sgr, const char *s, size_t max_w, bool glued,
                        size_t *used, bool *first)
{
        FILE *f = v->f;
        const cli_term *term = v->term;
        size_t room;

        if (!*first && !glued) {
                fputs_unlocked("  ", f);
                *used += 2;
        }
        *first = false;
        room = MIN(term->columns > *used ? term->columns - *used : 0, max_w);
        if (sgr)
                cli_text_style(f, term, sgr);
        *used += cli_text_clip(f, s, room, term->unicode);
        if (sgr)
                cli_text_style(f, term, CLI_STYLE_RESET);
}

/* What a GPU or an instance says about who holds it. */
typedef struct holder {
        JsonIndexRef lease, drained, shared;
} holder;

enum { SL_USER, SL_UID, SL_ID, SL_SHARE, SL_USED, SL_OVER, SL_N };
static const member_key shared_keys[] = {
    KEY("user"), KEY("uid"), KEY("id"), KEY("share_bytes"), KEY("memory_used_bytes"),
    KEY("over_budget"),
};

/* Shared leases: one line each, who holds which budget and how much of it
 * is used. */
static void print_shared(const view *v, JsonIndexRef shared, const char *prefix, size_t prefix_w)
{
        for (JsonIndexRef sl = json_index_first(v->ix, shared); sl; sl = json_index_next(v->ix, sl)) {
                JsonIndexRef m[SL_N];
                const char *user;
                char uid[32], id[32], text[256];
                double budget = 0, use = 0;
                bool first_part = true;
                size_t used_w = prefix_w;

                MEMBERS(v, sl, shared_keys, m);
                user = str(v, m[SL_USER]);
                (void)num(v, m[SL_SHARE], &budget);
                (void)num(v, m[SL_USED], &use);
                fputs_unlocked(prefix, v->f);
                holder_part(v, CLI_STYLE_BOLD, user ? user : int_text(uid, sizeof uid, v, m[SL_UID]),
                            USER_W + 6, false, &used_w, &first_part);
                snprintf(text, sizeof text, " shared %.1f/%.1f GiB (lease %s)",
                         use / 1073741824.0, budget / 1073741824.0,
                         int_text(id, sizeof id, v, m[SL_ID]));
                holder_part(v, NULL, text, SIZE_MAX, true, &used_w, &first_part);
                if (is_true(v, m[SL_OVER]))
                        holder_part(v, CLI_STYLE_RED, "OVER BUDGET", SIZE_MAX, false, &used_w,
                                    &first_part);
                putc_unlocked('\n', v->f);
        }
}

enum { L_USER, L_KIND, L_UID, L_ID, L_EXPIRES, L_SINCE, L_SLURM, L_WARNED, L_FLAGGED, L_N };
static const member_key lease_keys[] = {
    KEY("user"), KEY("kind"), KEY("uid"), KEY("id"), KEY("expires_at"), KEY("since"),
    KEY("slurm_job_id"), KEY("idle_warned"), KEY("idle_flagged"),
};

/* The lease part of a holder line: "alice run 2h13m (lease 12)". */
static void print_lease(const view *v, JsonIndexRef lease, size_t *used, bool *first)
{
        JsonIndexRef m[L_N];
        const char *user, *kind;
        char uid[32], id[32], span[32], exp[48] = "", text[256];
        double since, expires, job;

        MEMBERS(v, lease, lease_keys, m);
        user = str(v, m[L_USER]);
        kind = str(v, m[L_KIND]);
        if (num(v, m[L_EXPIRES], &expires))
                snprintf(exp, sizeof exp, expires > v->now ? ", %s left" : ", expired",
                         cli_format_span(span, sizeof span, expires - v->now));
        else if (num(v, m[L_SINCE], &since))
                snprintf(exp, sizeof exp, " %s", cli_format_span(span, sizeof span, v->now - since));
        /* A long login name must not push the rest off the line. */
        holder_part(v, CLI_STYLE_BOLD, user ? user : int_text(uid, sizeof uid, v, m[L_UID]),
                    USER_W + 6, false, used, first);
        if (num(v, m[L_SLURM], &job))
                snprintf(text, sizeof text, " slurm job %.0f%s (lease %s)", job, exp,
                         int_text(id, sizeof id, v, m[L_ID]));
        else
                snprintf(text, sizeof text, " %.16s%s (lease %s)", kind ? kind : "-", exp,
                         int_text(id, sizeof id, v, m[L_ID]));
        holder_part(v, CLI_STYLE_BOLD, text, SIZE_MAX, true, used, first);
        if (is_true(v, m[L_WARNED]))
                holder_part(v, CLI_STYLE_YELLOW, "IDLE: release warned", SIZE_MAX, false, used,
                            first);
        else if (is_true(v, m[L_FLAGGED]))
                holder_part(v, CLI_STYLE_YELLOW, "IDLE", SIZE_MAX, false, used, first);
}

/* The line under a GPU or MIG instance that says who holds it: "DRAINED",
 * the lease ("alice run 2h13m (lease 12)", "bob manual, 1h left (lease
 * 13)"), "IN USE WITHOUT LEASE: carol" when processes run there without
 * their owner holding a lease on it, or "free" (when `show_free`) if none of
 * these. The device's processes are those process_in(p, inst) picks.
 * Nothing at all from a daemon that knows no leases. */
static void print_holder(const view *v, const holder *h, const process *const *procs, size_t n_procs,
                         ssize_t inst, const char *prefix, size_t prefix_w, bool show_free)
{
        bool drained = is_true(v, h->drained), first = true, knows_leases;
        bool lease = json_index_is_object(v->ix, h->lease);
        JsonIndexRef shared = json_index_get(v->ix, h->shared, "leases");
        size_t shared_n;
        char users[160] = "", text[256];
        size_t used = prefix_w;

        if (!json_index_is_array(v->ix, shared))
                shared = 0;
        shared_n = json_index_size(v->ix, shared);

        for (size_t i = 0, added = 0; i < n_procs; i++)
                if (process_in(procs[i], inst) && procs[i]->unleased) {
                        const char *u = procs[i]->user.s;
                        char uid[32];

                        /* The very string added last (the reader keeps one
                         * copy of a name that repeats): nothing to do. */
                        if (u && added && u == procs[added - 1]->user.s)
                                continue;
                        add_user(users, sizeof users,
                                 u ? u : pnum_text(uid, sizeof uid, &procs[i]->uid));
                        added = i + 1;
                }

        knows_leases = h->lease || h->drained;
        if (!lease && !drained && !users[0] && !(show_free && knows_leases) && !shared_n)
                return;

        print_shared(v, shared, prefix, prefix_w);
        if (shared_n && !drained && !users[0])
                return;

        fputs_unlocked(prefix, v->f);
        if (drained)
                holder_part(v, CLI_STYLE_YELLOW, "DRAINED", SIZE_MAX, false, &used, &first);
        if (lease && !shared_n)
                print_lease(v, h->lease, &used, &first);
        if (users[0]) {
                snprintf(text, sizeof text, "IN USE WITHOUT LEASE: %s", users);
                holder_part(v, CLI_STYLE_RED, text, SIZE_MAX, false, &used, &first);
        }
        if (first)
                holder_part(v, NULL, "free", SIZE_MAX, false, &used, &first);
        putc_unlocked('\n', v->f);
}

enum { I_UUID, I_PROFILE, I_GI, I_CI, I_TOTAL, I_USED, I_LEASE, I_DRAINED, I_SHARED, I_N };
static const member_key instance_keys[] = {
    KEY("uuid"), KEY("profile"), KEY("gpu_instance_id"), KEY("compute_instance_id"),
    KEY("memory_total_bytes"), KEY("memory_used_bytes"), KEY("lease"), KEY("drained"),
    KEY("shared"),
};

/* A GPU's MIG instance as the view reads it. */
typedef struct instance {
        JsonIndexRef m[I_N];
        ssize_t first; /* the first instance of the GPU with this uuid (processes name it) */
} instance;

static void print_instance(const view *v, const instance *in, bool last,
                           const process *const *procs, size_t n_procs)
{
        FILE *f = v->f;
        const cli_term *term = v->term;
        const char *branch = last ? "       " : (term->unicode ? "    │  " : "    |  ");
        const char *profile = str(v, in->m[I_PROFILE]), *uuid = str(v, in->m[I_UUID]);
        char gi[32], ci[32], ids[80];
        size_t used = TREE_W + PROFILE_W + 1 + UUID_W + 2 + IDS_W;
        holder h = {in->m[I_LEASE], in->m[I_DRAINED], in->m[I_SHARED]};

        fputs_unlocked(term->unicode ? (last ? "    └─ " : "    ├─ ") : (last ? "    `- " : "    |- "),
                       f);
        cli_text_field(f, profile ? profile : "-", PROFILE_W, CLI_ALIGN_LEFT, term->unicode);
        putc_unlocked(' ', f);
        cli_text_field(f, uuid ? uuid : "-", UUID_W, CLI_ALIGN_LEFT, term->unicode);
        fputs_unlocked("  ", f);
        snprintf(ids, sizeof ids, "gi %s ci %s", int_text(gi, sizeof gi, v, in->m[I_GI]),
                 int_text(ci, sizeof ci, v, in->m[I_CI]));
        cli_text_field(f, ids, IDS_W, CLI_ALIGN_LEFT, term->unicode);
        cli_text_spaces(f, LINE_END - MEM_W - used);
        print_memory(v, in->m[I_USED], in->m[I_TOTAL]);
        putc_unlocked('\n', f);

        if (!uuid)
                return;
        print_holder(v, &h, procs, n_procs, in->first, branch, TREE_W, true);
        for (size_t i = 0; i < n_procs; i++)
                if (process_in(procs[i], in->first))
                        print_process(v, procs[i], branch, TREE_W);
        lines_flush(v);
}

enum {
        G_INDEX, G_UUID, G_NAME, G_TOTAL, G_USED, G_UTIL, G_TEMP, G_POWER, G_HEALTHY, G_ERROR,
        G_MIG_ENABLED, G_INSTANCES, G_PROCESSES, G_LEASE, G_DRAINED, G_SHARED, G_MIG, G_N,
};
static const member_key gpu_keys[] = {
    KEY("index"), KEY("uuid"), KEY("name"), KEY("memory_total_bytes"), KEY("memory_used_bytes"),
    KEY("utilization_gpu"), KEY("temperature_c"), KEY("power_w"), KEY("healthy"), KEY("error"),
    KEY("mig_enabled"), KEY("instances"), KEY("processes"), KEY("lease"), KEY("drained"),
    KEY("shared"), KEY("mig"),
};

/* The GPU's instances (those of its "instances" array) and processes (of
 * "processes", or those v->taken read), each process placed in the first
 * instance whose uuid its instance_uuid names; *ret_procs the processes in
 * the order they are shown (sort_processes()), in one block with the
 * processes read here (free() it). */
static int read_devices(const view *v, const JsonIndexRef *g, instance **ret_inst, size_t *ret_n_inst,
                        const process ***ret_procs, size_t *ret_n_procs)
{
        const JsonIndex *ix = v->ix;
        bool listed = json_index_is_array(ix, g[G_PROCESSES]);
        size_t n_inst = json_index_is_array(ix, g[G_INSTANCES]) ? json_index_size(ix, g[G_INSTANCES]) : 0,
               n_procs = !listed ? 0 : v->taken ? v->taken->n : json_index_size(ix, g[G_PROCESSES]),
               i = 0;
        _cleanup_free_ instance *inst = malloc(MAX(n_inst, (size_t)1) * sizeof *inst);
        /* The order, room for sort_processes(), then the processes when
         * they are read here. */
        _cleanup_free_ const process **order = malloc(
                n_procs * (sizeof(process *) * 2 + (v->taken ? 0 : sizeof(process))) + sizeof(process));
        process *procs = !order ? NULL
                         : v->taken ? v->taken->procs
                                    : (process *)(void *)(order + 2 * n_procs);
        const char *in_last = NULL;
        ssize_t in_found = -1;

        if (!inst || !order)
                return -ENOMEM;
        /* Only the elements of arrays: json_index_first() also walks an
         * object's keys, for which no room was made (found by
         * fuzz-status: "instances" or "processes" given as an object). */
        for (JsonIndexRef r = n_inst ? json_index_first(ix, g[G_INSTANCES]) : 0; r && i < n_inst;
             r = json_index_next(ix, r), i++) {
                const char *uuid;

                MEMBERS(v, r, instance_keys, inst[i].m);
                uuid = str(v, inst[i].m[I_UUID]);
                inst[i].first = (ssize_t)i;
                for (size_t j = 0; uuid && j < i; j++) {
                        const char *u = str(v, inst[j].m[I_UUID]);

                        if (u && strcmp(u, uuid) == 0) {
                                inst[i].first = (ssize_t)j;
                                break;
                        }
                }
        }
        if (!v->taken) {
                i = 0;
                for (JsonIndexRef r = n_procs ? json_index_first(ix, g[G_PROCESSES]) : 0;
                     r && i < n_procs; r = json_index_next(ix, r), i++) {
                        JsonIndexRef m[P_N];

                        if (json_index_is_array(ix, r))
                                row_members(v, r, m);
                        else
                                MEMBERS(v, r, process_keys, m);
                        procs[i] = (process){.index = i};
                        process_from_refs(&procs[i], ix, m);
                }
        }
        for (i = 0; i < n_procs; i++) {
                process *p = &procs[i];
                const char *in = p->instance_uuid.s;

                process_finish(p);
                /* An instance's processes tend to come together: the last
                 * one's answer first. */
                if (!in || !in_last || strcmp(in, in_last) != 0) {
                        in_found = -1;
                        for (size_t j = 0; in && j < n_inst; j++) {
                                const char *u = str(v, inst[j].m[I_UUID]);

                                if (u && strcmp(u, in) == 0) {
                                        in_found = (ssize_t)j;
                                        break;
                                }
                        }
                        in_last = in;
                }
                p->instance = in_found;
                order[i] = p;
        }
        sort_processes(order, order + n_procs, n_procs);
        *ret_inst = TAKE_PTR(inst);
        *ret_n_inst = n_inst;
        *ret_procs = TAKE_PTR(order);
        *ret_n_procs = n_procs;
        return 0;
}

enum { M_FREE, M_ON_DEMAND, M_DYNAMIC, M_N };
static const member_key mig_keys[] = {KEY("free_slices"), KEY("on_demand"), KEY("dynamic")};

/* The MIG layout's room (issue 13): free memory slices of 8, and instances
 * the daemon made on demand. */
static void print_mig_room(const view *v, JsonIndexRef mig)
{
        JsonIndexRef m[M_N];
        int64_t fs, od = 0;

        MEMBERS(v, mig, mig_keys, m);
        if (!json_index_integer(v->ix, m[M_FREE], &fs))
                return;
        (void)json_index_integer(v->ix, m[M_ON_DEMAND], &od);
        fprintf(v->f, "    MIG: %lld/8 memory slices free%s", (long long)fs,
                is_true(v, m[M_DYNAMIC]) ? ", instances made on demand" : "");
        if (od > 0)
                fprintf(v->f, " (%lld now)", (long long)od);
        putc_unlocked('\n', v->f);
}

static int print_gpu(const view *v, JsonIndexRef gpu, size_t index_w)
{
        FILE *f = v->f;
        const cli_term *term = v->term;
        JsonIndexRef g[G_N];
        const char *name, *uuid, *error;
        bool healthy, mig;
        size_t name_w = LINE_END - index_w - GPU_FIXED_W, n_procs, n_inst, i;
        _cleanup_free_ const process **procs = NULL;
        _cleanup_free_ instance *inst = NULL;
        char idx[40], buf[32];
        holder h;
        int r;

        MEMBERS(v, gpu, gpu_keys, g);
        name = str(v, g[G_NAME]);
        uuid = str(v, g[G_UUID]);
        error = str(v, g[G_ERROR]);
        healthy = is_true(v, g[G_HEALTHY]);
        mig = is_true(v, g[G_MIG_ENABLED]);
        h = (holder){g[G_LEASE], g[G_DRAINED], g[G_SHARED]};
        r = read_devices(v, g, &inst, &n_inst, &procs, &n_procs);
        if (r < 0)
                return r;

        if (!healthy)
                cli_text_style(f, term, CLI_STYLE_RED);
        snprintf(idx, sizeof idx, "[%s]", int_text(buf, sizeof buf, v, g[G_INDEX]));
        cli_text_field(f, idx, index_w, CLI_ALIGN_LEFT, term->unicode);
        putc_unlocked(' ', f);
        cli_text_field(f, name ? name : "-", name_w, CLI_ALIGN_LEFT, term->unicode);
        fputs_unlocked("  ", f);
        cli_text_field(f, uuid ? uuid : "-", UUID_W, CLI_ALIGN_LEFT, term->unicode);
        if (!healthy) {
                /* The reason goes on its own line: it is what the admin needs
                 * ("...: GPU is lost"), so it must not be cut short. */
                fputs_unlocked("  UNHEALTHY", f);
                cli_text_style(f, term, CLI_STYLE_RESET);
                putc_unlocked('\n', f);
                cli_text_wrap(f, term, CLI_STYLE_RED, error ? error : "no reason given", 4);
        } else {
                putc_unlocked(' ', f);
                cli_text_field(f, mig ? "MIG" : "", MIG_W, CLI_ALIGN_LEFT, term->unicode);
                putc_unlocked(' ', f);
                print_quantity(v, g[G_TEMP], TEMP_W, term->unicode ? "°C" : " C");
                putc_unlocked(' ', f);
                print_quantity(v, g[G_POWER], POWER_W, " W");
                putc_unlocked(' ', f);
                print_quantity(v, g[G_UTIL], UTIL_W, " %");
                putc_unlocked(' ', f);
                print_memory(v, g[G_USED], g[G_TOTAL]);
                putc_unlocked('\n', f);
                /* Healthy, but one reading failed: say which. */
                if (error)
                        cli_text_wrap(f, term, CLI_STYLE_YELLOW, error, 4);
        }
        if (healthy && mig)
                print_mig_room(v, g[G_MIG]);

        /* A GPU in MIG mode is leased by instance: its own line says only
         * what concerns the whole GPU (drained, processes outside any
         * instance). A lost GPU is not "free" whatever its lease says. */
        print_holder(v, &h, procs, n_procs, -1, "    ", 4, healthy && !mig);
        for (i = 0; i < n_procs; i++)
                if (process_in(procs[i], -1))
                        print_process(v, procs[i], "    ", 4);
        lines_flush(v);
        for (i = 0; i < n_inst; i++)
                print_instance(v, &inst[i], i + 1 == n_inst, procs, n_procs);
        return 0;
}

enum { F_MODE, F_ERROR, F_DENIED, F_ACTIVE, F_N };
static const member_key fence_keys[] = {KEY("mode"), KEY("error"), KEY("denied_total"), KEY("active")};

/* Strict mode's kernel fence, one line; nothing in other modes. */
static void print_fence(const view *v, JsonIndexRef fence)
{
        FILE *f = v->f;
        JsonIndexRef m[F_N];
        const char *mode, *error;
        double denied = 0;

        MEMBERS(v, fence, fence_keys, m);
        mode = str(v, m[F_MODE]);
        error = str(v, m[F_ERROR]);
        if (!mode || strcmp(mode, "strict") != 0)
                return;
        (void)num(v, m[F_DENIED], &denied);
        putc_unlocked('\n', f);
        if (is_true(v, m[F_ACTIVE])) {
                fprintf(f, "Fence: active (strict mode): only leased GPUs open; %.0f refused "
                           "open%s.\n",
                        denied, denied == 1 ? "" : "s");
                return;
        }
        cli_text_style(f, v->term, CLI_STYLE_RED);
        fprintf(f, "Fence: NOT active (strict mode)%s", error ? ": " : "");
        if (error)
                cli_text_clip(f, error, 200, false);
        cli_text_style(f, v->term, CLI_STYLE_RESET);
        putc_unlocked('\n', f);
}

/* The queue below the GPUs: the queue array's own text, parsed by jansson
 * (a few requests), for the queue table lease-render.c draws. */
static int print_queue(const view *v, JsonIndexRef queue, const cli_term *full_term)
{
        size_t n = json_index_is_array(v->ix, queue) ? json_index_size(v->ix, queue) : 0, left;
        const char *text;
        json_t *q;

        if (n == 0)
                return 0;
        text = json_index_container_text(v->ix, queue, &left);
        q = json_loadb(text, left, JSON_DISABLE_EOF_CHECK, NULL);
        if (!q)
                return -ENOMEM; /* text the scanner took: only memory can fail */
        putc_unlocked('\n', v->f);
        cli_text_style(v->f, v->term, CLI_STYLE_BOLD);
        fprintf(v->f, "Queue: %zu waiting", n);
        cli_text_style(v->f, v->term, CLI_STYLE_RESET);
        putc_unlocked('\n', v->f);
        /* The full width: it narrows by itself as this view does. */
        cli_queue_render(q, v->f, full_term, v->now, 0);
        json_decref(q);
        return 0;
}

/* The width of "[N]" for GPU index r, at most 6 columns. */
static size_t index_width(const view *v, JsonIndexRef r)
{
        char buf[32], idx[40];

        snprintf(idx, sizeof idx, "[%s]", int_text(buf, sizeof buf, v, r));
        return MIN(strlen(idx), (size_t)6);
}

/* The daemon's gpu_count, or -1 when it sent none. */
static int64_t said_count(const view *v, const JsonIndexRef *st)
{
        int64_t count;

        return json_index_integer(v->ix, st[S_GPU_COUNT], &count) && count >= 0 ? count : -1;
}

/* How many GPUs the header says: the daemon's gpu_count, else its array's
 * size. */
static size_t gpus_count(const view *v, const JsonIndexRef *st, JsonIndexRef gpus)
{
        int64_t count = said_count(v, st);

        return count >= 0 ? (size_t)count : json_index_size(v->ix, gpus);
}

/* The width of "[N]" for the GPUs a status names, at least 3: from its
 * gpu_count (the daemon's GPUs are numbered from 0: the last one is the
 * widest), else from the widest index in its array. */
static size_t gpus_index_width(const view *v, const JsonIndexRef *st, JsonIndexRef gpus)
{
        int64_t count = said_count(v, st);
        size_t w = 3;

        if (count >= 0) {
                char buf[32];

                snprintf(buf, sizeof buf, "[%lld]", (long long)(count - 1));
                return count == 0 ? w : MAX(w, MIN(strlen(buf), (size_t)6));
        }
        for (JsonIndexRef g = json_index_first(v->ix, gpus); g; g = json_index_next(v->ix, g))
                w = MAX(w, index_width(v, json_index_get(v->ix, g, "index")));
        return w;
}

/* What comes above the GPUs: the header line and NVML's message. False
 * when nothing more is shown (no NVML, no GPUs). */
static bool print_top(const view *v, const JsonIndexRef *st, size_t n_gpus)
{
        const char *message = str(v, st[S_MESSAGE]);

        print_header(v, st, n_gpus);
        if (!is_true(v, st[S_NVML])) {
                cli_text_wrap(v->f, v->term, CLI_STYLE_RED,
                              message ? message : "NVML is not available on this host.", 0);
                return false;
        }
        if (message)
                cli_text_wrap(v->f, v->term, CLI_STYLE_YELLOW, message, 0);
        if (n_gpus == 0) {
                fputs_unlocked("No GPUs found.\n", v->f);
                return false;
        }
        return true;
}

/* What comes below the GPUs: the queue, the fence. */
static int print_bottom(const view *v, const JsonIndexRef *st, const cli_term *full_term)
{
        int r;

        r = print_queue(v, st[S_QUEUE], full_term);
        if (r < 0)
                return r;
        print_fence(v, st[S_FENCE]);
        return 0;
}

/* The view's terminal: the fixed columns need 80; below that the
 * arithmetic would wrap. */
static cli_term narrowed_term(const cli_term *full_term)
{
        cli_term narrowed = *full_term;

        narrowed.columns = MAX(full_term->columns, (size_t)CLI_TERM_MIN_COLUMNS) - 1;
        return narrowed;
}

int cli_status_render_index(const JsonIndex *ix, JsonIndexRef status, FILE *f,
                            const cli_term *full_term, double now)
{
        cli_term narrowed = narrowed_term(full_term);
        _cleanup_free_ line_out *lines = malloc(sizeof *lines);
        view vw = {.ix = ix, .f = f, .term = &narrowed, .now = now, .lines = lines}, *v = &vw;
        JsonIndexRef st[S_N], gpus;
        row_places rows;
        size_t index_w;
        int r;

        if (lines)
                lines->n = 0;
        if (!json_index_is_object(ix, status))
                return -EBADMSG;
        MEMBERS(v, status, status_keys, st);
        read_row_places(ix, st[S_PROCESS_FIELDS], &rows);
        vw.rows = &rows;
        gpus = json_index_is_array(ix, st[S_GPUS]) ? st[S_GPUS] : 0;
        /* Room for the widest "[N]" so that names line up past GPU 9. */
        index_w = gpus_index_width(v, st, gpus);
        if (!print_top(v, st, gpus_count(v, st, gpus)))
                return 0;
        for (JsonIndexRef g = json_index_first(ix, gpus); g; g = json_index_next(ix, g)) {
                r = print_gpu(v, g, index_w);
                if (r < 0)
                        return r;
        }
        return print_bottom(v, st, full_term);
}

/* ---- The view as the reply arrives (issue 16) ------------------------------------------ */

/* How deep the parts may nest: the whole reply is held to PROTO_MAX_DEPTH
 * (the envelope, the result object in it, "gpus" in that, a GPU in it). */
#define REST_DEPTH_MAX (PROTO_MAX_DEPTH - 1)
#define GPU_DEPTH_MAX (PROTO_MAX_DEPTH - 3)

/* The result object read a member at a time (proto/json-split.h): every
 * member but "gpus" is kept, as text, in an object of its own (`rest`: the
 * header's few values, the queue, the fence); the GPUs are rendered one by
 * one as their elements arrive, each from an index of its own text, when a
 * "gpu_count" came before them (the daemon writes one) to print the header
 * with. Without one (a daemon of another version), "gpus" is kept too and
 * the whole view rendered from `rest` at the end. */
typedef struct status_stream {
        FILE *f;
        cli_term full, narrowed;
        double now;
        JsonSplit split;
        char *rest; /* "{" and the members, comma-joined; room for the "}" */
        size_t rest_len, rest_size;
        JsonIndex *gpu; /* each GPU's, its blocks reused */
        process_reader reader; /* each GPU's processes */
        line_out lines;
        row_places rows; /* from "process_fields", before "gpus" */
        size_t index_w;
        bool split_done; /* the GPUs were rendered as they came */
        bool quiet;      /* nothing more to show (no NVML, no GPUs) */
} status_stream;

/* Appends s[0..n) to rest, keeping room for the closing brace. */
static int rest_add(status_stream *ss, const char *s, size_t n)
{
        if (n + 1 > ss->rest_size - ss->rest_len) {
                size_t size = MAX(ss->rest_size * 2, ss->rest_len + n + 1);
                char *b = realloc(ss->rest, size);

                if (!b)
                        return -ENOMEM;
                ss->rest = b;
                ss->rest_size = size;
        }
        memcpy(ss->rest + ss->rest_len, s, n);
        ss->rest_len += n;
        return 0;
}

static int rest_add_member(status_stream *ss, const JsonSplitItem *m)
{
        int r = 0;

        if (ss->rest_len > 1)
                r = rest_add(ss, ",", 1);
        if (r >= 0)
                r = rest_add(ss, m->key, m->key_len);
        if (r >= 0)
                r = rest_add(ss, ":", 1);
        if (r >= 0)
                r = rest_add(ss, m->value, m->value_len);
        return r;
}

/* The kept members as an object, indexed, with the refs of status_keys. */
static int rest_index(status_stream *ss, JsonIndex **ret, JsonIndexRef *st)
{
        JsonIndex *ix = NULL;
        int r;

        ss->rest[ss->rest_len] = '}';
        r = json_index_build(ss->rest, ss->rest_len + 1, REST_DEPTH_MAX, &ix);
        if (r < 0)
                return r;
        members(ix, json_index_root(ix), status_keys, S_N, st);
        *ret = ix;
        return 0;
}

/* Whether a gpu_count's text is a count the header can say: digits. */
static bool count_text(const char *s, size_t n)
{
        if (n == 0 || n > 9)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return n == 1 || s[0] != '0';
}

/* The GPUs' array begins: the header from the members so far. */
static int stream_top(status_stream *ss)
{
        view vw = {.f = ss->f, .term = &ss->narrowed, .now = ss->now};
        JsonIndexRef st[S_N];
        JsonIndex *ix = NULL;
        int r;

        if (ss->split_done)
                return -EBADMSG; /* "gpus" twice */
        ss->split_done = true;
        r = rest_index(ss, &ix, st);
        if (r < 0)
                return r;
        vw.ix = ix;
        read_row_places(ix, st[S_PROCESS_FIELDS], &ss->rows);
        ss->index_w = gpus_index_width(&vw, st, 0);
        ss->quiet = !print_top(&vw, st, gpus_count(&vw, st, 0));
        json_index_free(ix);
        return 0;
}

/* One GPU, its element's text whole: checked (indexed, its processes
 * read) even when nothing more is shown, as the whole reply is checked
 * before the view prints. */
static int stream_gpu(status_stream *ss, const char *s, size_t n)
{
        view vw = {.f = ss->f, .term = &ss->narrowed, .now = ss->now, .rows = &ss->rows,
                   .taken = &ss->reader, .lines = &ss->lines};
        process_reader *rd = &ss->reader;
        const JsonIndexTake take = {.key = "processes", .key_len = strlen("processes"),
                                    .read = read_processes, .userdata = rd};
        _cleanup_free_ char *wrapped = NULL;
        JsonIndex *ix = ss->gpu;
        JsonIndexRef g;
        int r;

        /* Room for every string of the text, decoded. */
        if (rd->strings_size < n + 3) {
                free(rd->strings);
                rd->strings_size = 0;
                rd->strings = malloc(n + 3);
                if (!rd->strings)
                        return -ENOMEM;
                rd->strings_size = n + 3;
        }
        rd->n = 0;
        if (s[0] != '{' && s[0] != '[') {
                /* Not an object (a daemon of another version): indexed as
                 * the one element of an array, as the index takes only
                 * containers at the top. */
                wrapped = malloc(n + 2);
                if (!wrapped)
                        return -ENOMEM;
                wrapped[0] = '[';
                memcpy(wrapped + 1, s, n);
                wrapped[n + 1] = ']';
                r = json_index_rebuild(ix, wrapped, n + 2, GPU_DEPTH_MAX);
                g = r < 0 ? 0 : json_index_first(ix, json_index_root(ix));
        } else {
                r = json_index_rebuild_taking(ix, s, n, GPU_DEPTH_MAX, &take);
                g = r < 0 ? 0 : json_index_root(ix);
        }
        if (r < 0)
                return r;
        vw.ix = ix;
        return ss->quiet ? 0 : print_gpu(&vw, g, ss->index_w);
}

int cli_status_stream_feed(void *userdata, const char *s, size_t len, bool last, size_t *ret_taken)
{
        status_stream *ss = userdata;
        JsonSplitItem item;
        int r;

        for (;;) {
                r = json_split_next(&ss->split, s, len, last, &item);
                switch (r) {
                case JSON_SPLIT_MORE:
                        *ret_taken = json_split_taken(&ss->split);
                        return 0;
                case JSON_SPLIT_MEMBER:
                        r = rest_add_member(ss, &item);
                        /* The last gpu_count before "gpus" decides. */
                        if (!ss->split_done && item.key_len == 11 &&
                            memcmp(item.key, "\"gpu_count\"", 11) == 0)
                                ss->split.split_key =
                                        count_text(item.value, item.value_len) ? "gpus" : NULL;
                        break;
                case JSON_SPLIT_ARRAY:
                        r = stream_top(ss);
                        break;
                case JSON_SPLIT_ELEMENT:
                        r = stream_gpu(ss, item.value, item.value_len);
                        break;
                case JSON_SPLIT_ARRAY_END:
                        r = 0;
                        break;
                case JSON_SPLIT_END:
                        *ret_taken = json_split_taken(&ss->split);
                        return 1;
                }
                if (r < 0)
                        return r;
        }
}

int cli_status_stream_finish(void *userdata)
{
        status_stream *ss = userdata;
        view vw = {.f = ss->f, .term = &ss->narrowed, .now = ss->now};
        JsonIndexRef st[S_N];
        JsonIndex *ix = NULL;
        int r;

        r = rest_index(ss, &ix, st);
        if (r < 0)
                return r;
        vw.ix = ix;
        if (!ss->split_done)
                r = cli_status_render_index(ix, json_index_root(ix), ss->f, &ss->full, ss->now);
        else if (st[S_GPUS])
                r = -EBADMSG; /* "gpus" again, after the array */
        else if (!ss->quiet)
                r = print_bottom(&vw, st, &ss->full);
        json_index_free(ix);
        return r;
}

int cli_status_stream_new(FILE *f, const cli_term *term, double now, void **ret)
{
        status_stream *ss = calloc(1, sizeof *ss);

        if (!ss)
                return -ENOMEM;
        *ss = (status_stream){.f = f, .full = *term, .narrowed = narrowed_term(term), .now = now};
        json_split_init(&ss->split, NULL);
        ss->gpu = calloc(1, sizeof *ss->gpu);
        ss->reader.scratch = calloc(1, sizeof *ss->reader.scratch);
        ss->reader.rows = &ss->rows;
        if (!ss->gpu || !ss->reader.scratch || rest_add(ss, "{", 1) < 0) {
                cli_status_stream_free(ss);
                return -ENOMEM;
        }
        *ret = ss;
        return 0;
}

void cli_status_stream_free(void *userdata)
{
        status_stream *ss = userdata;

        if (!ss)
                return;
        free(ss->rest);
        json_index_free(ss->gpu);
        free(ss->reader.procs);
        free(ss->reader.strings);
        json_index_free(ss->reader.scratch);
        free(ss);
}

int cli_status_render_text(const char *text, size_t len, FILE *f, const cli_term *term, double now)
{
        JsonIndex *ix = NULL;
        int r;

        r = json_index_build(text, len, JSON_SCAN_DEPTH_MAX, &ix);
        if (r < 0)
                return r;
        r = cli_status_render_index(ix, json_index_root(ix), f, term, now);
        json_index_free(ix);
        return r;
}

int cli_status_render(json_t *status, FILE *f, const cli_term *term, double now)
{
        _cleanup_free_ char *text = NULL;

        if (!json_is_object(status))
                return -EBADMSG;
        text = json_dumps(status, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        return cli_status_render_text(text, strlen(text), f, term, now);
}
