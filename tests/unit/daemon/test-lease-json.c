/* lease_reply_text() (daemon/leases.c, issue 16 sixth pass) against the
 * reply it replaces: json_dumps(JSON_COMPACT) of proto_reply_ok(id,
 * {"lease": lease_to_json(d, l)}). The same bytes for every lease it
 * writes, and -EOPNOTSUPP only for leases with text outside ASCII (which
 * the daemon then sends as the tree). Leases are generated over a hand-made
 * snapshot: whole GPUs with and without CPU affinity, MIG instances, GPUs
 * the snapshot does not know, shared leases (over budget or not, with and
 * without a snapshot), every kind, odd user names and commands. No store
 * and no socket: only the two writers are compared. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/leases.h"
#include "gpu/inventory.h"
#include "proto/proto.h"

#define N_GPUS 4

static const char *const user_names[] = {
    "alice", "o'brien", "we\"ird\\name", "tab\tname", "J\xc3\xbcrgen", "\x01" "ctl", "a/b", "",
};
#define FIRST_UID 50000u /* users above: memoised, never looked up */

static const char *const odd_text[] = {
    "python train.py --lr 0.1",
    "sh -c 'echo \"hi\" \\\\ there'",
    "tab\tnewline\ncr\rbs\bff\fdel\x7f",
    "\x1f\x01",
    "",
    "caf\xc3\xa9 --name \xe5\x90\x8d",
    "bad \xff utf-8",
    "/slash/ and </script>",
};

static uint64_t next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static GpuSnapshot *make_snapshot(uint64_t *seed)
{
        GpuSnapshot *s = calloc(1, sizeof *s);

        assert_non_null(s);
        s->nvml_available = true;
        s->n_gpus = N_GPUS;
        s->gpus = calloc(N_GPUS, sizeof *s->gpus);
        assert_non_null(s->gpus);
        for (unsigned i = 0; i < N_GPUS; i++) {
                GpuDevice *g = &s->gpus[i];

                g->index = i;
                snprintf(g->uuid, sizeof g->uuid, "GPU-%08x-1111-2222-3333-44444444444%u",
                         0xabcd0000u + i, i);
                g->memory_total_bytes = i == 3 ? GPU_VALUE_UNKNOWN : (UINT64_C(80) << 30) >> i;
                /* CPU affinity: none, one CPU, ranges, several words, all. */
                g->has_cpus = i != 0;
                for (size_t w = 0; w < GPU_NVML_CPUSET_WORDS; w++)
                        g->cpus[w] = i == 1 ? (w == 0 ? 1ul << 5 : 0)
                                     : i == 2 ? next(seed)
                                              : ~0ul;
                /* Processes of the users below, for a shared lease's use. */
                g->n_processes = 3;
                g->processes = calloc(3, sizeof *g->processes);
                assert_non_null(g->processes);
                for (unsigned k = 0; k < 3; k++)
                        g->processes[k] = (GpuProcess){
                            .pid = 100 + k,
                            .memory_used_bytes = k == 2 ? GPU_VALUE_UNKNOWN
                                                        : (uint64_t)(k + 1) << 28,
                            .instance = -1,
                            .uid = FIRST_UID + k,
                            .vanished = k == 1,
                            .owner_from_earlier = k == 1 && i % 2,
                        };
        }
        return s;
}

/* A device of a lease: a whole GPU of the snapshot, a MIG instance on one,
 * a GPU the snapshot does not know, or an odd UUID. */
static void random_device(uint64_t *s, const GpuSnapshot *snap, LeaseDevice *dev, bool long_uuid)
{
        const GpuDevice *g = &snap->gpus[next(s) % N_GPUS];

        memset(dev, 0, sizeof *dev);
        switch (next(s) % 6) {
        case 0:
        case 1:
                snprintf(dev->uuid, sizeof dev->uuid, "%s", g->uuid);
                snprintf(dev->gpu_uuid, sizeof dev->gpu_uuid, "%s", g->uuid);
                break;
        case 2:
        case 3:
                snprintf(dev->uuid, sizeof dev->uuid, "MIG-%08x-aaaa-bbbb-cccc-%012x",
                         (unsigned)next(s), (unsigned)next(s));
                snprintf(dev->gpu_uuid, sizeof dev->gpu_uuid, "%s", g->uuid);
                snprintf(dev->profile, sizeof dev->profile, "%s",
                         next(s) % 2 ? "3g.40gb" : "1g.10gb+me");
                break;
        case 4:
                snprintf(dev->uuid, sizeof dev->uuid, "GPU-gone-%u", (unsigned)next(s));
                snprintf(dev->gpu_uuid, sizeof dev->gpu_uuid, "%s", dev->uuid);
                break;
        default:
                snprintf(dev->uuid, sizeof dev->uuid, "%s",
                         next(s) % 4 ? "GPU-\"q\"\\" : "GPU-\xc3\xa9");
                snprintf(dev->gpu_uuid, sizeof dev->gpu_uuid, "%s", g->uuid);
                break;
        }
        if (long_uuid)
                memset(dev->uuid, 'M', sizeof dev->uuid - 1);
}

static uint64_t random_usec(uint64_t *s)
{
        switch (next(s) % 4) {
        case 0:
                return 0;
        case 1:
                return 1 + next(s) % USEC_PER_SEC;
        case 2:
                return UINT64_C(1765000000000000) + next(s) % (UINT64_C(1) << 40);
        default:
                return next(s) >> (next(s) % 64);
        }
}

static void random_lease(uint64_t *s, const GpuSnapshot *snap, Lease *l)
{
        bool many = next(s) % 50 == 0;
        size_t n = many ? LEASE_MAX_DEVICES : next(s) % 4 == 0 ? 2 + next(s) % 3 : 1;

        memset(l, 0, sizeof *l);
        l->rec.id = (int64_t)(next(s) >> (next(s) % 63));
        l->rec.uid = next(s) % 8 == 0 ? 0 : FIRST_UID + (uid_t)(next(s) % 10);
        l->rec.kind = (LeaseKind)(next(s) % 3);
        l->rec.created_usec = random_usec(s);
        l->rec.expires_usec = random_usec(s);
        l->rec.client_pid = next(s) % 3 == 0   ? 0
                            : next(s) % 5 == 0 ? -1
                                               : (pid_t)(next(s) % 4194304);
        l->rec.command = next(s) % 4 == 0 ? NULL
                                          : strdup(odd_text[next(s) % (sizeof odd_text /
                                                                        sizeof odd_text[0])]);
        l->rec.idle_device_usec = random_usec(s);
        l->rec.slurm_job_id = next(s) >> (next(s) % 64);
        l->rec.share_bytes = next(s) % 3 == 0 ? 0 : next(s) % (UINT64_C(200) << 30);
        l->rec.n_devices = n;
        l->rec.devices = calloc(n, sizeof *l->rec.devices);
        assert_non_null(l->rec.devices);
        for (size_t i = 0; i < n; i++)
                random_device(s, snap, &l->rec.devices[i], many);
        l->conn_id = next(s) % 2;
        l->idle.warned_usec = next(s) % 3 == 0 ? random_usec(s) : 0;
        l->idle.flagged = next(s) % 4 == 0;
        l->budget.over = next(s) % 2;
}

/* Whether a string lease_to_json() puts in the lease has a byte above
 * 0x7F: the one case lease_reply_text() may decline. */
static bool has_non_ascii(const char *text)
{
        for (const unsigned char *p = (const unsigned char *)text; p && *p; p++)
                if (*p >= 0x80)
                        return true;
        return false;
}

static bool lease_has_non_ascii(const Daemon *d, const Lease *l)
{
        if (has_non_ascii(daemon_user_name(d, l->rec.uid)) || has_non_ascii(l->rec.command))
                return true;
        for (size_t i = 0; i < l->rec.n_devices; i++)
                if (has_non_ascii(l->rec.devices[i].uuid) ||
                    has_non_ascii(l->rec.devices[i].gpu_uuid) ||
                    has_non_ascii(l->rec.devices[i].profile))
                        return true;
        return false;
}

/* The old reply's bytes: the tree, dumped by jansson. */
static char *tree_reply(const Daemon *d, const Lease *l, uint32_t id)
{
        json_t *m = proto_reply_ok(id, json_pack("{s:o}", "lease", lease_to_json(d, l)));
        char *text;

        assert_non_null(m);
        text = json_dumps(m, JSON_COMPACT);
        assert_non_null(text);
        json_decref(m);
        return text;
}

/* Compares the two for every lease of d->leases; returns how many the text
 * writer wrote (the others it declined, each with a reason). */
static unsigned compare_all(const Daemon *d, uint64_t *s)
{
        unsigned written = 0;

        for (const Lease *l = d->leases.leases; l; l = l->next) {
                uint32_t id = next(s) % 2 ? (uint32_t)next(s) : (uint32_t)(next(s) % 100);
                char *theirs = tree_reply(d, l, id), *mine = NULL;
                size_t len = 0;
                int r = lease_reply_text(d, l, id, &mine, &len);

                if (r == -EOPNOTSUPP) {
                        assert_true(lease_has_non_ascii(d, l));
                        free(theirs);
                        continue;
                }
                assert_int_equal(r, 0);
                assert_string_equal(mine, theirs);
                assert_int_equal(len, strlen(theirs));
                written++;
                free(mine);
                free(theirs);
        }
        return written;
}

static void free_leases(Daemon *d)
{
        while (d->leases.leases) {
                Lease *l = d->leases.leases;

                d->leases.leases = l->next;
                stored_lease_done(&l->rec);
                free(l);
        }
}

static void test_random_leases(void **state)
{
        uint64_t seed = 0x2545f4914f6cdd1du;
        UserMemo names = {0};
        Daemon d = {0};
        unsigned written = 0, total = 0;

        (void)state;
        /* Memoised names (daemon_user_name without a resolver): the odd
         * ones above, and two uids without a passwd entry (null). */
        for (size_t i = 0; i < 10; i++) {
                names.entries[i].uid = FIRST_UID + (uid_t)i;
                names.entries[i].found = i < sizeof user_names / sizeof user_names[0];
                if (names.entries[i].found)
                        snprintf(names.entries[i].name, sizeof names.entries[i].name, "%s",
                                 user_names[i]);
        }
        names.n = 10;
        d.user_names = &names;
        d.user_names_usec = now_usec(CLOCK_MONOTONIC);
        d.snapshot = make_snapshot(&seed);

        for (int round = 0; round < 400; round++) {
                /* A few leases at once: shared leases find the head of their
                 * group (its budget state) among them. */
                for (int i = 0; i < 8; i++) {
                        Lease *l = calloc(1, sizeof *l);

                        assert_non_null(l);
                        random_lease(&seed, d.snapshot, l);
                        l->next = d.leases.leases;
                        d.leases.leases = l;
                        total++;
                }
                /* Now and then without a snapshot (before the first tick). */
                if (round % 10 == 9) {
                        GpuSnapshot *snap = d.snapshot;

                        d.snapshot = NULL;
                        written += compare_all(&d, &seed);
                        d.snapshot = snap;
                } else
                        written += compare_all(&d, &seed);
                free_leases(&d);
        }
        /* Most leases are ASCII throughout: the text path is the usual one. */
        assert_true(written > total / 3);
        gpu_snapshot_free(d.snapshot);
}

/* A plain lease as an acquire gets it, written out in full. */
static void test_plain_manual_lease(void **state)
{
        uint64_t seed = 1;
        UserMemo names = {0};
        LeaseDevice dev = {0};
        Daemon d = {0};
        Lease l = {0};
        char *text = NULL, *theirs;
        size_t len;

        (void)state;
        names.n = 1;
        names.entries[0].uid = FIRST_UID;
        names.entries[0].found = true;
        snprintf(names.entries[0].name, sizeof names.entries[0].name, "alice");
        d.user_names = &names;
        d.user_names_usec = now_usec(CLOCK_MONOTONIC);
        d.snapshot = make_snapshot(&seed);
        snprintf(dev.uuid, sizeof dev.uuid, "%s", d.snapshot->gpus[1].uuid);
        snprintf(dev.gpu_uuid, sizeof dev.gpu_uuid, "%s", d.snapshot->gpus[1].uuid);
        l.rec = (StoredLease){.id = 7,
                              .uid = FIRST_UID,
                              .kind = LEASE_MANUAL,
                              .created_usec = UINT64_C(1765000000250000),
                              .expires_usec = UINT64_C(1765003600250000),
                              .devices = &dev,
                              .n_devices = 1};
        d.leases.leases = &l;
        assert_int_equal(lease_reply_text(&d, &l, 3, &text, &len), 0);
        theirs = tree_reply(&d, &l, 3);
        assert_string_equal(text, theirs);
        assert_string_equal(
            text,
            "{\"v\":1,\"id\":3,\"ok\":true,\"result\":{\"lease\":{\"id\":7,\"uid\":50000,"
            "\"user\":\"alice\",\"kind\":\"manual\",\"state\":\"active\",\"devices\":[{\"uuid\":"
            "\"GPU-abcd0001-1111-2222-3333-444444444441\",\"gpu_uuid\":"
            "\"GPU-abcd0001-1111-2222-3333-444444444441\",\"gpu_index\":1,\"profile\":null,"
            "\"cpus\":\"5\"}],\"cuda_visible_devices\":"
            "\"GPU-abcd0001-1111-2222-3333-444444444441\",\"created_at\":1765000000.25,"
            "\"expires_at\":1765003600.25,\"released_at\":null,\"release_reason\":null,"
            "\"pid\":null,\"command\":null,\"attached\":false,\"idle_warned\":false,"
            "\"idle_flagged\":false,\"idle_device_seconds\":0.0,\"slurm_job_id\":null,"
            "\"share_bytes\":null,\"memory_used_bytes\":null,\"over_budget\":false,"
            "\"share_env\":{}}}}");
        assert_int_equal(len, strlen(text));
        free(text);
        free(theirs);
        gpu_snapshot_free(d.snapshot);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_manual_lease),
                cmocka_unit_test(test_random_leases),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
