/* Strict mode in the daemon; see strict.h. */
#include "daemon/strict.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/parse.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/leases.h"
#include "daemon/resolver.h"
#include "isolate/devnodes.h"
#include "basic/user-util.h"

#define FENCE_RECORD_FILE "fence-cgroup" /* in state_dir: where the fence was attached */
#define DEFAULT_BPFFS "/sys/fs/bpf"

static bool strict_mode(const Daemon *d)
{
        return d->config->enforcement.mode == CONFIG_ENFORCEMENT_STRICT;
}

/* The mount point of the cgroup2 hierarchy, from /proc/self/mountinfo. */
static int find_cgroup2(char *buf, size_t len)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof line, f)) {
                /* id parent maj:min root mountpoint opts... - fstype source superopts */
                char *sep = strstr(line, " - "), mnt[PATH_MAX], fstype[64];

                if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                if ((size_t)snprintf(buf, len, "%s", mnt) >= len)
                        return -ENAMETOOLONG;
                return 0;
        }
        return -ENOENT;
}

static void record_path(const Daemon *d, char *buf, size_t len)
{
        snprintf(buf, len, "%s/" FENCE_RECORD_FILE, d->config->state_dir);
}

static void write_record(const Daemon *d, const char *cgroup)
{
        char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
        _cleanup_close_ int fd = -1;
        size_t n = strlen(cgroup);

        record_path(d, path, sizeof path);
        snprintf(tmp, sizeof tmp, "%s.new", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, cgroup, n) != (ssize_t)n || fsync(fd) < 0 ||
            rename(tmp, path) < 0)
                log_warning("Cannot record the fence cgroup in %s: %m", path);
}

static bool read_record(const Daemon *d, char *buf, size_t len)
{
        char path[PATH_MAX + 32];
        _cleanup_close_ int fd = -1;
        ssize_t n;

        record_path(d, path, sizeof path);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        n = read(fd, buf, len - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return buf[0] == '/';
}

/* The daemon mounts bpffs at its usual place when nothing is mounted
 * there, as systemd does at boot; any other pin directory must already
 * be on one. */
static void mount_bpffs_if_needed(const char *pin_dir)
{
        size_t n = strlen(DEFAULT_BPFFS);

        if (strncmp(pin_dir, DEFAULT_BPFFS "/", n + 1) != 0 || strchr(pin_dir + n + 1, '/') ||
            isolate_is_bpffs(DEFAULT_BPFFS))
                return;
        if (mount("bpf", DEFAULT_BPFFS, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
                log_warning("Cannot mount bpffs on " DEFAULT_BPFFS ": %m");
        else
                log_info("Mounted bpffs on " DEFAULT_BPFFS " for the fence's pins.");
}

/* Leave strict mode: remove a fence an earlier strict run pinned. */
static int remove_leftover(Daemon *d)
{
        const ConfigEnforcement *c = &d->config->enforcement;
        char cgroup[PATH_MAX], why[512], path[PATH_MAX + 32];
        int r;

        if (!fence_is_pinned(c->fence_pin_dir))
                return 0;
        if (!read_record(d, cgroup, sizeof cgroup)) {
                if (c->fence_cgroup)
                        snprintf(cgroup, sizeof cgroup, "%s", c->fence_cgroup);
                else if (find_cgroup2(cgroup, sizeof cgroup) < 0)
                        return log_error_errno(-ENOENT, "A fence is pinned in %s but no cgroup2 "
                                               "mount is left to detach it from",
                                               c->fence_pin_dir);
        }
        r = fence_remove(cgroup, c->fence_pin_dir, why, sizeof why);
        if (r < 0) {
                log_error("Leaving strict mode failed, the fence stays: %s", why);
                return r;
        }
        record_path(d, path, sizeof path);
        (void)unlink(path);
        log_info("Left strict mode: the fence on %s is removed.", cgroup);
        store_audit(d->store, -1, "fence.removed", cgroup, NULL);
        return 0;
}

/* Where leased device `ld` is now: from the snapshot (remembered), else as
 * last seen. False when it was never seen: it stays fenced. */
static bool resolve(StrictState *s, const GpuSnapshot *snap, const LeaseDevice *ld,
                    PolicyFenceLeased *ret)
{
        const GpuDevice *g = snap ? gpu_snapshot_find_device(snap, ld->gpu_uuid) : NULL;
        PolicyFenceLeased x = {0};
        bool found = false;

        if (g && g->minor >= 0) {
                x.gpu_minor = (uint32_t)g->minor;
                found = strcmp(ld->uuid, ld->gpu_uuid) == 0;
                for (size_t k = 0; !found && k < g->n_instances; k++)
                        if (strcmp(g->instances[k].uuid, ld->uuid) == 0) {
                                x.mig = true;
                                x.gi = g->instances[k].gpu_instance_id;
                                x.ci = g->instances[k].compute_instance_id;
                                found = true;
                        }
        }
        for (size_t i = 0; i < s->n_known; i++)
                if (strcmp(s->known[i].uuid, ld->uuid) == 0) {
                        if (found)
                                s->known[i].where = x;
                        *ret = s->known[i].where;
                        return true;
                }
        if (!found)
                return false;
        if (!s->known)
                s->known = calloc(STRICT_KNOWN_MAX, sizeof *s->known);
        if (s->known && s->n_known < STRICT_KNOWN_MAX) {
                snprintf(s->known[s->n_known].uuid, sizeof s->known[s->n_known].uuid, "%s",
                         ld->uuid);
                s->known[s->n_known++].where = x;
        }
        *ret = x;
        return true;
}

/* The leased devices as the rules want them. */
static int leased_devices(Daemon *d, const Lease *skip, PolicyFenceLeased **ret, size_t *ret_n)
{
        PolicyFenceLeased *out;
        size_t n = 0, max = 0;

        for (const Lease *l = d->leases.leases; l; l = l->next)
                max += l->rec.n_devices;
        out = calloc(max + 1, sizeof *out);
        if (!out)
                return -ENOMEM;
        for (const Lease *l = d->leases.leases; l; l = l->next)
                for (size_t i = 0; l != skip && i < l->rec.n_devices; i++)
                        if (resolve(&d->strict, d->snapshot, &l->rec.devices[i], &out[n])) {
                                out[n].uid = l->rec.uid;
                                n++;
                        }
        *ret = out;
        *ret_n = n;
        return 0;
}

/* The uid of login `name` (one long /etc/passwd line, a 5000-byte GECOS,
 * makes every lookup behind it fail with ERANGE in a small buffer:
 * basic/user-util.h's lookup grows it). */
static bool uid_by_name(const char *name, uint32_t *ret)
{
        uid_t uid;

        if (user_uid_from_name(name, &uid) < 0)
                return false;
        *ret = uid;
        return true;
}

/* The exempt users' uids. Names come from the resolver's cache (its thread
 * asks NSS, daemon_resolver_update lists them); only a name it has never
 * answered (just added by a reload) is looked up here, so that a new
 * exemption is not withheld until the next sync. */
static size_t exempt_uids(const Daemon *d, uint32_t *uids, size_t max)
{
        const ConfigEnforcement *c = &d->config->enforcement;
        size_t n = 0;

        for (size_t i = 0; i < c->n_exempt_users && n < max; i++) {
                uint64_t v;
                int k = -ENOKEY;

                if (parse_uint64(c->exempt_users[i], &v) == 0 && v < UINT32_MAX) {
                        uids[n++] = (uint32_t)v;
                        continue;
                }
                if (d->resolver)
                        k = resolver_lookup(d->resolver, RESOLVER_USER, c->exempt_users[i],
                                            &uids[n]);
                if (k == 0)
                        n++;
                else if ((k == -ENOKEY || k == -EAGAIN) && uid_by_name(c->exempt_users[i], &uids[n]))
                        n++;
        }
        return n;
}

static int uid_cmp(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

/* Re-read the driver's tables (the caps major appears with the driver,
 * mig-minors with MIG support). */
static void load_tables(Daemon *d)
{
        StrictState *s = &d->strict;
        const ConfigEnforcement *c = &d->config->enforcement;
        PolicyFenceMig *mig = NULL;
        unsigned line = 0;
        size_t n = 0;
        int r;

        if (isolate_char_major(c->proc_devices, "nvidia-caps", &s->caps_major) < 0)
                s->caps_major = 0;
        r = isolate_mig_minors_load(c->mig_minors, &mig, &n, &line);
        if (r < 0) {
                /* Keep the previous table: a torn read must not open nodes. */
                log_warning("Cannot read %s%s%u: %s; keeping the previous MIG table",
                            c->mig_minors, line ? " line " : "", line, strerror(-r));
                return;
        }
        free(s->mig);
        s->mig = mig;
        s->n_mig = n;
}

/* Bring the maps in line with the leases, leaving out `skip` (may be NULL).
 * `tables`: also the guarded nodes and exempt users, which change only with
 * the driver's tables and the config (start and sampler ticks): a grant or
 * release touches the allow map alone, a few map updates. */
static int sync_maps(Daemon *d, const Lease *skip, bool tables)
{
        StrictState *s = &d->strict;
        _cleanup_free_ PolicyFenceLeased *leased = NULL;
        _cleanup_free_ PolicyFenceRule *rules = NULL;
        _cleanup_free_ PolicyFenceDev *guarded = NULL;
        uint32_t exempt[CONFIG_EXEMPT_MAX];
        size_t n_leased = 0, n_rules = 0, n_guarded = 0, n_exempt;
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        int r = 0;

        if (tables) {
                r = policy_fence_guarded(s->mig, s->n_mig, s->caps_major, &guarded, &n_guarded);
                if (r >= 0)
                        r = fence_sync_guarded(s->fence, guarded, n_guarded);
                if (r >= 0) {
                        n_exempt = exempt_uids(d, exempt, ELEMENTSOF(exempt));
                        qsort(exempt, n_exempt, sizeof *exempt, uid_cmp);
                        r = fence_sync_exempt(s->fence, exempt, n_exempt);
                }
        }
        if (r >= 0)
                r = leased_devices(d, skip, &leased, &n_leased);
        if (r >= 0)
                r = policy_fence_rules(leased, n_leased, s->mig, s->n_mig, s->caps_major, &rules,
                                       &n_rules);
        if (r >= 0)
                r = fence_sync_allow(s->fence, rules, n_rules);
        s->sync_usec = now_usec(CLOCK_MONOTONIC) - start;
        s->syncs++;
        if (r < 0 && s->last_error != r)
                log_error_errno(r, "The fence could not be brought in line with the leases");
        else if (r >= 0 && s->last_error < 0)
                log_info("The fence matches the leases again.");
        s->last_error = r < 0 ? r : 0;
        return r;
}

static bool lease_active(int64_t id, void *userdata)
{
        Daemon *d = userdata;

        return leases_find(d, id) != NULL;
}

int strict_start(Daemon *d)
{
        StrictState *s = &d->strict;
        const ConfigEnforcement *c = &d->config->enforcement;
        bool taken_over = false;
        char why[1024];
        int r;

        s->backend = isolate_cgroup_backend();
        if (!strict_mode(d)) {
                (void)remove_leftover(d); /* logged; never fatal */
                return 0;
        }

        r = find_cgroup2(s->cgroup2_mount, sizeof s->cgroup2_mount);
        if (r < 0 && !c->fence_cgroup) {
                log_error("Cannot start in strict mode: no cgroup2 hierarchy is mounted "
                          "(mount one, or set enforcement.fence_cgroup)");
                return -ENOENT;
        }
        snprintf(s->cgroup, sizeof s->cgroup, "%s",
                 c->fence_cgroup ? c->fence_cgroup : s->cgroup2_mount);
        if ((size_t)snprintf(s->runs_dir, sizeof s->runs_dir, "%s/" ISOLATE_LEASE_CGROUPS_DIR,
                             s->cgroup) >= sizeof s->runs_dir) {
                log_error("Cannot start in strict mode: enforcement.fence_cgroup is too long");
                return -ENAMETOOLONG;
        }
        mount_bpffs_if_needed(c->fence_pin_dir);

        r = fence_open(s->cgroup, c->fence_pin_dir, &s->fence, &taken_over, why, sizeof why);
        if (r >= 0 && !taken_over) {
                /* Refuse early and clearly where the kernel lacks the helper. */
                int q = fence_probe_uid_helper(why, sizeof why);

                if (q <= 0) {
                        fence_close(TAKE_PTR(s->fence));
                        r = q < 0 ? q : -EOPNOTSUPP;
                }
        }
        if (r < 0) {
                log_error("Cannot start in strict mode: %s", why);
                return r;
        }
        load_tables(d);
        r = sync_maps(d, NULL, true);
        if (r < 0) {
                log_error("Cannot start in strict mode: cannot fill the fence's maps: %s",
                          strerror(-r));
                return r;
        }
        r = fence_attach(s->fence, why, sizeof why);
        if (r < 0) {
                log_error("Cannot start in strict mode: %s", why);
                return r;
        }
        write_record(d, s->cgroup);
        (void)isolate_lease_cgroups_sweep(s->runs_dir, lease_active, d);
        store_audit(d->store, -1, taken_over ? "fence.taken_over" : "fence.attached", s->cgroup,
                    NULL);
        log_info("Strict mode: the fence on %s is %s (pinned in %s; %zu MIG cap nodes, caps "
                 "major %u; run cgroups via %s).",
                 s->cgroup, taken_over ? "taken over" : "attached", c->fence_pin_dir, s->n_mig,
                 s->caps_major, s->backend == ISOLATE_CGROUP_SYSTEMD ? "systemd" : "cgroupfs");
        return 0;
}

void strict_done(StrictState *s)
{
        /* The fence stays in the kernel: closing is not leaving strict mode. */
        fence_close(TAKE_PTR(s->fence));
        free(TAKE_PTR(s->mig));
        free(TAKE_PTR(s->pending));
        free(TAKE_PTR(s->known));
        s->n_mig = s->n_pending = s->n_known = 0;
}

void strict_sync(Daemon *d)
{
        if (d->strict.fence)
                (void)sync_maps(d, NULL, false);
}

void strict_lease_granted(Daemon *d, const Lease *l)
{
        StrictState *s = &d->strict;
        PolicyFenceDev nodes[LEASE_MAX_DEVICES * 3];
        size_t n = 0;
        char why[512];
        int r;

        if (!s->fence)
                return;
        (void)sync_maps(d, NULL, false);
        if (l->rec.kind != LEASE_RUN || l->rec.client_pid <= 0)
                return;
        for (size_t i = 0; i < l->rec.n_devices && n + 3 <= ELEMENTSOF(nodes); i++) {
                PolicyFenceLeased x;

                if (resolve(s, d->snapshot, &l->rec.devices[i], &x))
                        n += policy_fence_nodes(&x, s->mig, s->n_mig, s->caps_major, nodes + n);
        }
        r = isolate_lease_cgroup_create(
            s->backend, s->backend == ISOLATE_CGROUP_SYSTEMD ? s->cgroup2_mount : s->runs_dir,
            l->rec.id, l->rec.client_pid, fence_guarded_fd(s->fence), nodes, n, NULL, why,
            sizeof why);
        if (r < 0) {
                /* The host fence still holds; only the split between this
                 * user's own runs is lost. Loud, not fatal. */
                log_error("Lease %" PRId64 ": cannot give the run its own cgroup, it sees all of "
                          "uid %u's leased GPUs: %s",
                          l->rec.id, (unsigned)l->rec.uid, why);
                store_audit(d->store, (int64_t)l->rec.uid, "fence.run_cgroup_failed", why, NULL);
        }
}

static void try_remove_pending(StrictState *s)
{
        size_t kept = 0;

        for (size_t i = 0; i < s->n_pending; i++)
                if (isolate_lease_cgroup_remove(s->runs_dir, s->pending[i]) == -EBUSY)
                        s->pending[kept++] = s->pending[i];
        s->n_pending = kept;
}

void strict_lease_ending(Daemon *d, const Lease *l)
{
        if (d->strict.fence)
                (void)sync_maps(d, l, false);
}

void strict_lease_ended(Daemon *d, int64_t id)
{
        StrictState *s = &d->strict;

        if (!s->fence)
                return;
        (void)sync_maps(d, NULL, false);
        if (s->backend != ISOLATE_CGROUP_CGROUPFS)
                return;
        /* The run client is usually still inside while it releases. */
        if (isolate_lease_cgroup_remove(s->runs_dir, id) == -EBUSY) {
                if (!s->pending || s->n_pending >= STRICT_PENDING_MAX) {
                        if (!s->pending)
                                s->pending = calloc(STRICT_PENDING_MAX, sizeof *s->pending);
                        if (!s->pending || s->n_pending >= STRICT_PENDING_MAX)
                                return; /* the start-up sweep gets it */
                }
                s->pending[s->n_pending++] = id;
        }
}

void strict_tick(Daemon *d)
{
        StrictState *s = &d->strict;

        if (!s->fence)
                return;
        load_tables(d);
        (void)sync_maps(d, NULL, true);
        try_remove_pending(s);
}

typedef struct DeniedJson {
        const Daemon *d;
        json_t *list;
        uint64_t total;
} DeniedJson;

void strict_device_name(const Daemon *d, const PolicyFenceRule *who, char *buf, size_t len)
{
        const StrictState *s = &d->strict;

        if (who->major == POLICY_FENCE_NVIDIA_MAJOR)
                snprintf(buf, len, "/dev/nvidia%" PRIu32, who->minor);
        else if (s->caps_major && who->major == s->caps_major)
                snprintf(buf, len, "/dev/nvidia-caps/nvidia-cap%" PRIu32, who->minor);
        else
                snprintf(buf, len, "%" PRIu32 ":%" PRIu32, who->major, who->minor);
}

static int add_denied(const PolicyFenceRule *who, uint64_t count, void *userdata)
{
        DeniedJson *j = userdata;
        const char *user = daemon_user_name(j->d, (uid_t)who->uid);
        char dev[64];

        strict_device_name(j->d, who, dev, sizeof dev);
        j->total += count;
        return json_array_append_new(
                   j->list, json_pack("{s:I, s:s?, s:s, s:I}", "uid", (json_int_t)who->uid,
                                      "user", user, "device", dev, "count", (json_int_t)count)) < 0
                   ? -ENOMEM
                   : 0;
}

json_t *strict_to_json(const Daemon *d)
{
        const StrictState *s = &d->strict;
        DeniedJson j = {.d = d, .list = json_array()};
        static const char *const modes[] = {"observe", "enforce", "strict"};
        /* (the unit tests build a Daemon without a config) */
        ConfigEnforcementMode mode =
            d->config ? d->config->enforcement.mode : CONFIG_ENFORCEMENT_ENFORCE;

        if (!j.list)
                return NULL;
        if (s->fence)
                (void)fence_denied_foreach(s->fence, add_denied, &j);
        return json_pack("{s:s, s:b, s:s?, s:s?, s:I, s:o}", "mode",
                         (size_t)mode < ELEMENTSOF(modes) ? modes[mode] : "unknown", "active",
                         s->fence != NULL && s->last_error == 0, "cgroup",
                         s->fence ? s->cgroup : NULL, "error",
                         s->fence && s->last_error ? strerror(-s->last_error) : NULL,
                         "denied_total", (json_int_t)j.total, "denied", j.list);
}

int strict_denied_foreach(const Daemon *d, fence_denied_fn fn, void *userdata)
{
        if (!d->strict.fence)
                return 0;
        return fence_denied_foreach(d->strict.fence, fn, userdata);
}
