/* NSS lookups off the event loop; see resolver.h.
 *
 * One worker thread walks the table, picks the entry due soonest, drops the
 * lock for the NSS call and stores the answer under the lock. The loop reads
 * answers under the same lock, which is never held across an NSS call, so a
 * read waits at most for a few pointer copies. A generation number guards
 * against storing an answer into a table that resolver_set() replaced while
 * the lookup was in flight. */
#include "daemon/resolver.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "basic/user-util.h"

#define IN_FLIGHT UINT64_MAX

typedef struct Entry {
        ResolverKind kind;
        char *name;
        bool answered; /* at least one lookup finished */
        bool has_id;   /* id is the latest good answer */
        bool absent;   /* the latest answer was "no such name" */
        uint32_t id;
        uint64_t due_usec; /* CLOCK_MONOTONIC of the next lookup; IN_FLIGHT while one runs */
} Entry;

/* uid → login name, asked for by the loop on demand (daemon_user_name). */
typedef struct UidEntry {
        uint32_t uid;
        bool answered; /* at least one lookup finished */
        bool found;    /* name is the latest good answer */
        char name[RESOLVER_NAME_MAX];
        uint64_t due_usec;  /* as Entry.due_usec */
        uint64_t used_usec; /* CLOCK_MONOTONIC of the last read */
} UidEntry;

/* uid → its groups, asked for by the loop (per-user limits). */
typedef struct GroupsEntry {
        uint32_t uid;
        bool answered; /* at least one lookup finished */
        bool found;    /* gids are the latest good answer */
        uint32_t *gids;
        size_t n_gids;
        uint64_t due_usec;  /* as Entry.due_usec */
        uint64_t used_usec; /* CLOCK_MONOTONIC of the last read */
} GroupsEntry;

struct Resolver {
        pthread_mutex_t lock;
        pthread_cond_t wake;     /* the thread: new names, or stop */
        pthread_cond_t answered; /* resolver_wait() */
        pthread_t thread;
        bool started, stop;
        uint64_t ttl_usec, retry_usec, delay_usec;
        Entry *entries;
        size_t n_entries;
        uint64_t generation;
        uint64_t n_lookups, n_failures;
        UidEntry *uids; /* RESOLVER_MAX_UIDS slots, allocated on first use */
        size_t n_uids;
        uint64_t quiet_until_usec; /* no waiting in resolver_user_name() before this */
        uint64_t inflight_since_usec; /* CLOCK_MONOTONIC the current lookup began; 0: none */
        GroupsEntry *groups;          /* RESOLVER_MAX_UIDS slots, allocated on first use */
        size_t n_groups;
        uint64_t groups_generation;   /* resolver_groups_generation() */
        uint64_t names_generation;    /* resolver_names_generation() */
};

static void entries_free(Entry *e, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(e[i].name);
        free(e);
}

static void timespec_at(uint64_t usec, struct timespec *ts)
{
        ts->tv_sec = (time_t)(usec / USEC_PER_SEC);
        ts->tv_nsec = (long)(usec % USEC_PER_SEC) * 1000;
}

static int lookup(ResolverKind kind, const char *name, uint32_t *ret)
{
        if (kind == RESOLVER_GROUP) {
                gid_t gid;
                int r = group_gid_from_name(name, &gid);

                if (r >= 0)
                        *ret = gid;
                return r;
        } else {
                uid_t uid;
                int r = user_uid_from_name(name, &uid);

                if (r >= 0)
                        *ret = uid;
                return r;
        }
}

/* The login name of `uid` (basic/user-util.h's growing buffer: a long GECOS
 * field must not turn a user into "no such user"). */
static int lookup_uid(uint32_t uid, char *name, size_t len)
{
        _cleanup_free_ char *buf = NULL;
        struct passwd pw;
        int r;

        r = nss_passwd_by_uid((uid_t)uid, &pw, &buf);
        if (r < 0)
                return r;
        if (strlen(pw.pw_name) >= len)
                return -ENAMETOOLONG;
        strcpy(name, pw.pw_name);
        return 0;
}

/* The groups of `uid` through NSS: its login name and primary gid, then
 * getgrouplist with a buffer that grows up to RESOLVER_GROUPS_MAX. */
static int lookup_groups(uint32_t uid, uint32_t **ret, size_t *ret_n)
{
        _cleanup_free_ gid_t *gids = NULL;
        char name[256];
        uint32_t *out;
        gid_t primary;
        int n = 64, k;

        k = user_name_gid_from_uid((uid_t)uid, name, sizeof name, &primary);
        if (k < 0)
                return k;
        gids = calloc((size_t)n, sizeof *gids);
        if (!gids)
                return -ENOMEM;
        for (;;) {
                gid_t *grown;
                int m = n;

                if (getgrouplist(name, primary, gids, &m) >= 0) {
                        n = m;
                        break;
                }
                /* More than RESOLVER_GROUPS_MAX: the first ones (glibc fills
                 * the buffer it has). */
                if (n >= RESOLVER_GROUPS_MAX)
                        break;
                n = MIN(MAX(m, n * 2), RESOLVER_GROUPS_MAX);
                grown = reallocarray(gids, (size_t)n, sizeof *gids);
                if (!grown)
                        return -ENOMEM;
                gids = grown;
        }
        out = calloc((size_t)n + 1, sizeof *out);
        if (!out)
                return -ENOMEM;
        /* The primary first, then the others without it. */
        out[0] = primary;
        *ret_n = 1;
        for (int i = 0; i < n; i++)
                if (gids[i] != primary)
                        out[(*ret_n)++] = gids[i];
        *ret = out;
        return 0;
}

/* The bracket around every NSS call of the thread: mark the entry in flight
 * (*due_usec), note when the lookup began (resolver_user_name's slow
 * directory rule) and drop the lock, sleeping the test seam's delay first... */
static void lookup_unlock(Resolver *r, uint64_t *due_usec, uint64_t now)
{
        *due_usec = IN_FLIGHT;
        r->inflight_since_usec = now;
        pthread_mutex_unlock(&r->lock);
        if (r->delay_usec > 0) {
                struct timespec ts;

                timespec_at(r->delay_usec, &ts);
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}

/* ...then take the lock back and count the answer `k` (-ENOENT is an
 * answer, any other error a failure). */
static void lookup_relock(Resolver *r, int k)
{
        pthread_mutex_lock(&r->lock);
        r->inflight_since_usec = 0;
        r->n_lookups++;
        if (k < 0 && k != -ENOENT)
                r->n_failures++;
}

static GroupsEntry *find_groups(Resolver *r, uint32_t uid)
{
        for (size_t i = 0; i < r->n_groups; i++)
                if (r->groups[i].uid == uid)
                        return &r->groups[i];
        return NULL;
}

static bool same_gids(const GroupsEntry *e, const uint32_t *gids, size_t n)
{
        return e->found && e->n_gids == n && memcmp(e->gids, gids, n * sizeof *gids) == 0;
}

/* One groups lookup, called by the thread with the lock held (dropped around
 * NSS); as thread_uid. */
static void thread_groups(Resolver *r, size_t pick, uint64_t now)
{
        GroupsEntry *e = &r->groups[pick];
        uint32_t uid = e->uid, *gids = NULL;
        size_t n = 0;
        int k;

        if (e->answered && now - e->used_usec > RESOLVER_UID_UNUSED_TTLS * r->ttl_usec) {
                free(e->gids);
                *e = r->groups[--r->n_groups];
                return;
        }
        lookup_unlock(r, &e->due_usec, now);
        k = lookup_groups(uid, &gids, &n);
        lookup_relock(r, k);
        e = find_groups(r, uid); /* the table may have changed meanwhile */
        if (!e) {
                free(gids);
                return;
        }
        now = now_usec(CLOCK_MONOTONIC);
        if (k >= 0) {
                if (!e->answered || !same_gids(e, gids, n))
                        r->groups_generation++;
                free(e->gids);
                e->gids = gids;
                e->n_gids = n;
                e->found = true;
                e->due_usec = now + r->ttl_usec;
        } else if (k == -ENOENT) {
                if (!e->answered || e->found)
                        r->groups_generation++;
                free(e->gids);
                e->gids = NULL;
                e->n_gids = 0;
                e->found = false;
                e->due_usec = now + r->ttl_usec;
        } else
                e->due_usec = now + r->retry_usec; /* keep what we knew */
        e->answered = e->answered || k >= 0 || k == -ENOENT;
        pthread_cond_broadcast(&r->answered);
}

static UidEntry *find_uid(Resolver *r, uint32_t uid)
{
        for (size_t i = 0; i < r->n_uids; i++)
                if (r->uids[i].uid == uid)
                        return &r->uids[i];
        return NULL;
}

/* One uid lookup, called by the thread with the lock held (dropped around
 * NSS). Entries not read for RESOLVER_UID_UNUSED_TTLS TTLs are dropped
 * instead of refreshed. */
static void thread_uid(Resolver *r, size_t pick, uint64_t now)
{
        UidEntry *e = &r->uids[pick];
        char name[RESOLVER_NAME_MAX] = "";
        uint32_t uid = e->uid;
        int k;

        if (e->answered && now - e->used_usec > RESOLVER_UID_UNUSED_TTLS * r->ttl_usec) {
                *e = r->uids[--r->n_uids];
                r->names_generation++; /* its answer is no longer shown */
                return;
        }
        lookup_unlock(r, &e->due_usec, now);
        k = lookup_uid(uid, name, sizeof name);
        lookup_relock(r, k);
        e = find_uid(r, uid); /* the table may have changed meanwhile */
        if (!e)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        /* What status shows moves: a first answer, a user that came or
         * went, a new name (the status cache's key). */
        if (!e->answered || (k >= 0 && (!e->found || strcmp(e->name, name) != 0)) ||
            (k == -ENOENT && e->found))
                r->names_generation++;
        e->answered = true;
        if (k >= 0) {
                e->found = true;
                memcpy(e->name, name, sizeof name);
                e->due_usec = now + r->ttl_usec;
        } else if (k == -ENOENT) {
                e->found = false;
                e->due_usec = now + r->ttl_usec;
        } else
                e->due_usec = now + r->retry_usec; /* keep what we knew */
        pthread_cond_broadcast(&r->answered);
}

static void *resolver_thread(void *userdata)
{
        Resolver *r = userdata;

        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), soonest = IN_FLIGHT, generation;
                size_t pick = SIZE_MAX;
                _cleanup_free_ char *name = NULL;
                ResolverKind kind;
                uint32_t id = 0;
                int k;

                size_t pick_uid = SIZE_MAX;

                for (size_t i = 0; i < r->n_entries; i++)
                        if (r->entries[i].due_usec < soonest) {
                                soonest = r->entries[i].due_usec;
                                pick = i;
                        }
                for (size_t i = 0; i < r->n_uids; i++)
                        if (r->uids[i].due_usec < soonest) {
                                soonest = r->uids[i].due_usec;
                                pick_uid = i;
                        }
                /* A uid never answered goes first: someone is being shown
                 * "no name" for it. Names of the configuration were answered
                 * before the daemon served (resolver_wait), and keep their
                 * answers while refreshed; a flood of new uids only delays
                 * those refreshes. */
                for (size_t i = 0; i < r->n_uids; i++)
                        if (!r->uids[i].answered && r->uids[i].due_usec <= now) {
                                soonest = r->uids[i].due_usec;
                                pick_uid = i;
                                break;
                        }
                /* Groups of users (per-user limits) the same way, after a
                 * uid never answered (a name someone is being shown). */
                {
                        uint64_t due = IN_FLIGHT;
                        size_t pick_groups = SIZE_MAX;

                        for (size_t i = 0; i < r->n_groups; i++)
                                if (r->groups[i].due_usec < due) {
                                        due = r->groups[i].due_usec;
                                        pick_groups = i;
                                }
                        for (size_t i = 0; i < r->n_groups; i++)
                                if (!r->groups[i].answered && r->groups[i].due_usec <= now) {
                                        due = r->groups[i].due_usec;
                                        pick_groups = i;
                                        break;
                                }
                        if (pick_groups != SIZE_MAX && due <= now &&
                            !(pick_uid != SIZE_MAX && soonest <= now &&
                              !r->uids[pick_uid].answered)) {
                                thread_groups(r, pick_groups, now);
                                continue;
                        }
                        if (pick_uid != SIZE_MAX && soonest <= now) {
                                thread_uid(r, pick_uid, now);
                                continue;
                        }
                        /* Otherwise nothing of it is due yet: wait for it too. */
                        soonest = MIN(soonest, due);
                }
                if (pick_uid != SIZE_MAX)
                        pick = pick_uid; /* only to wait until it is due */
                if (pick == SIZE_MAX || soonest > now) {
                        struct timespec ts;

                        if (soonest == IN_FLIGHT)
                                pthread_cond_wait(&r->wake, &r->lock);
                        else {
                                timespec_at(soonest, &ts);
                                pthread_cond_timedwait(&r->wake, &r->lock, &ts);
                        }
                        continue;
                }

                name = strdup(r->entries[pick].name);
                if (!name) {
                        r->entries[pick].due_usec = now + r->retry_usec;
                        continue;
                }
                kind = r->entries[pick].kind;
                generation = r->generation;
                lookup_unlock(r, &r->entries[pick].due_usec, now);
                k = lookup(kind, name, &id);
                lookup_relock(r, k);
                if (generation != r->generation)
                        continue; /* the table was replaced; the new one has its own due times */
                {
                        Entry *e = &r->entries[pick];

                        now = now_usec(CLOCK_MONOTONIC);
                        e->answered = true;
                        if (k >= 0) {
                                e->has_id = true;
                                e->absent = false;
                                e->id = id;
                                e->due_usec = now + r->ttl_usec;
                        } else if (k == -ENOENT) {
                                e->has_id = false;
                                e->absent = true;
                                e->due_usec = now + r->ttl_usec;
                        } else
                                /* Keep whatever we knew; try again soon. */
                                e->due_usec = now + r->retry_usec;
                }
                pthread_cond_broadcast(&r->answered);
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

int resolver_new(uint64_t ttl_usec, uint64_t test_delay_usec, Resolver **ret)
{
        pthread_condattr_t attr;
        Resolver *r;
        int k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->ttl_usec = MAX(ttl_usec, (uint64_t)USEC_PER_MSEC);
        r->retry_usec = MAX(r->ttl_usec / 10, (uint64_t)USEC_PER_MSEC);
        r->delay_usec = test_delay_usec;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&r->wake, &attr);
        pthread_cond_init(&r->answered, &attr);
        pthread_condattr_destroy(&attr);

        k = pthread_create(&r->thread, NULL, resolver_thread, r);
        if (k != 0) {
                resolver_free(r);
                return -k;
        }
        r->started = true;
        *ret = r;
        return 0;
}

void resolver_free(Resolver *r)
{
        if (!r)
                return;
        if (r->started) {
                pthread_mutex_lock(&r->lock);
                r->stop = true;
                pthread_cond_broadcast(&r->wake);
                pthread_mutex_unlock(&r->lock);
                pthread_join(r->thread, NULL);
        }
        pthread_cond_destroy(&r->wake);
        pthread_cond_destroy(&r->answered);
        pthread_mutex_destroy(&r->lock);
        entries_free(r->entries, r->n_entries);
        free(r->uids);
        for (size_t i = 0; i < r->n_groups; i++)
                free(r->groups[i].gids);
        free(r->groups);
        free(r);
}

static Entry *find(Entry *entries, size_t n, ResolverKind kind, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (entries[i].kind == kind && strcmp(entries[i].name, name) == 0)
                        return &entries[i];
        return NULL;
}

int resolver_set(Resolver *r, const ResolverName *names, size_t n)
{
        Entry *next;
        size_t m = 0;

        next = calloc(n ? n : 1, sizeof *next);
        if (!next)
                return -ENOMEM;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
                const Entry *old;
                Entry *e;

                if (find(next, m, names[i].kind, names[i].name))
                        continue; /* named twice */
                e = &next[m];
                old = find(r->entries, r->n_entries, names[i].kind, names[i].name);
                if (old)
                        *e = *old;
                else
                        *e = (Entry){.kind = names[i].kind};
                if (!old || e->due_usec == IN_FLIGHT)
                        e->due_usec = 0; /* look it up now */
                e->name = strdup(names[i].name);
                if (!e->name) {
                        pthread_mutex_unlock(&r->lock);
                        entries_free(next, m);
                        return -ENOMEM;
                }
                m++;
        }
        entries_free(r->entries, r->n_entries);
        r->entries = next;
        r->n_entries = m;
        r->generation++;
        pthread_cond_broadcast(&r->wake);
        pthread_mutex_unlock(&r->lock);
        return 0;
}

bool resolver_wait(Resolver *r, uint64_t timeout_usec)
{
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;
        bool all = false;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                struct timespec ts;

                all = true;
                for (size_t i = 0; i < r->n_entries; i++)
                        all = all && r->entries[i].answered;
                if (all || now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                timespec_at(deadline, &ts);
                pthread_cond_timedwait(&r->answered, &r->lock, &ts);
        }
        pthread_mutex_unlock(&r->lock);
        return all;
}

int resolver_lookup(Resolver *r, ResolverKind kind, const char *name, uint32_t *ret_id)
{
        const Entry *e;
        int k;

        pthread_mutex_lock(&r->lock);
        e = find(r->entries, r->n_entries, kind, name);
        if (!e)
                k = -ENOKEY;
        else if (e->has_id) {
                *ret_id = e->id;
                k = 0;
        } else if (e->absent)
                k = -ENOENT;
        else
                k = -EAGAIN;
        pthread_mutex_unlock(&r->lock);
        return k;
}

void resolver_counts(Resolver *r, uint64_t *ret_lookups, uint64_t *ret_failures)
{
        pthread_mutex_lock(&r->lock);
        *ret_lookups = r->n_lookups;
        *ret_failures = r->n_failures;
        pthread_mutex_unlock(&r->lock);
}

static bool uid_answered(Resolver *r, uint32_t uid)
{
        const UidEntry *e = find_uid(r, uid);

        return !e || e->answered;
}

static bool groups_answered(Resolver *r, uint32_t uid)
{
        const GroupsEntry *e = find_groups(r, uid);

        return !e || e->answered;
}

/* With the lock held: a short, bounded wait for a first answer about `uid`
 * (`answered` says when it has come), so that a fast directory answers at
 * once. None while the thread is inside a lookup that has already taken
 * RESOLVER_SLOW_USEC (a slow directory: the answer cannot come in time),
 * and none for a while after a wait that ran out, so the loop stalls at
 * most once, not once per name. Returns whether it waited. */
static bool bounded_wait(Resolver *r, uint64_t now, uint64_t wait_usec,
                         bool (*answered)(Resolver *r, uint32_t uid), uint32_t uid)
{
        uint64_t deadline = now + wait_usec;

        if (wait_usec == 0 || now < r->quiet_until_usec ||
            (r->inflight_since_usec != 0 && now - r->inflight_since_usec >= RESOLVER_SLOW_USEC))
                return false;
        for (;;) {
                struct timespec ts;

                if (answered(r, uid) || now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                timespec_at(deadline, &ts);
                pthread_cond_timedwait(&r->answered, &r->lock, &ts);
        }
        if (!answered(r, uid))
                r->quiet_until_usec = now_usec(CLOCK_MONOTONIC) + RESOLVER_QUIET_USEC;
        return true;
}

int resolver_user_name(Resolver *r, uint32_t uid, uint64_t wait_usec, char *buf, size_t len)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        UidEntry *e;
        int k;

        pthread_mutex_lock(&r->lock);
        if (!r->uids) {
                r->uids = calloc(RESOLVER_MAX_UIDS, sizeof *r->uids);
                if (!r->uids) {
                        pthread_mutex_unlock(&r->lock);
                        return -ENOMEM;
                }
        }
        e = find_uid(r, uid);
        if (!e) {
                if (r->n_uids == RESOLVER_MAX_UIDS) {
                        /* Full: the one read longest ago goes (never the one
                         * being looked up, which the thread finds by uid). */
                        size_t old = SIZE_MAX;

                        for (size_t i = 0; i < r->n_uids; i++)
                                if (r->uids[i].due_usec != IN_FLIGHT &&
                                    (old == SIZE_MAX || r->uids[i].used_usec < r->uids[old].used_usec))
                                        old = i;
                        r->names_generation += r->uids[old].answered;
                        r->uids[old] = r->uids[--r->n_uids];
                }
                e = &r->uids[r->n_uids++];
                *e = (UidEntry){.uid = uid, .due_usec = 0};
                pthread_cond_broadcast(&r->wake);
        }
        e->used_usec = now;

        if (!e->answered) {
                (void)bounded_wait(r, now, wait_usec, uid_answered, uid);
                e = find_uid(r, uid); /* the thread may have moved it */
        }

        if (!e || !e->answered)
                k = -EAGAIN;
        else if (!e->found)
                k = -ENOENT;
        else if (strlen(e->name) >= len)
                k = -ENAMETOOLONG;
        else {
                strcpy(buf, e->name);
                k = 0;
        }
        pthread_mutex_unlock(&r->lock);
        return k;
}

int resolver_user_groups(Resolver *r, uint32_t uid, uint64_t wait_usec, uint32_t **ret_gids,
                         size_t *ret_n)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        GroupsEntry *e;
        int k;

        pthread_mutex_lock(&r->lock);
        if (!r->groups) {
                r->groups = calloc(RESOLVER_MAX_UIDS, sizeof *r->groups);
                if (!r->groups) {
                        pthread_mutex_unlock(&r->lock);
                        return -ENOMEM;
                }
        }
        e = find_groups(r, uid);
        if (!e) {
                if (r->n_groups == RESOLVER_MAX_UIDS) {
                        /* Full: the one read longest ago goes (never the one
                         * being looked up, which the thread finds by uid). */
                        size_t old = SIZE_MAX;

                        for (size_t i = 0; i < r->n_groups; i++)
                                if (r->groups[i].due_usec != IN_FLIGHT &&
                                    (old == SIZE_MAX ||
                                     r->groups[i].used_usec < r->groups[old].used_usec))
                                        old = i;
                        free(r->groups[old].gids);
                        r->groups[old] = r->groups[--r->n_groups];
                }
                e = &r->groups[r->n_groups++];
                *e = (GroupsEntry){.uid = uid, .due_usec = 0};
                pthread_cond_broadcast(&r->wake);
        }
        e->used_usec = now;
        if (!e->answered) {
                (void)bounded_wait(r, now, wait_usec, groups_answered, uid);
                e = find_groups(r, uid);
        }
        if (!e || !e->answered)
                k = -EAGAIN;
        else if (!e->found)
                k = -ENOENT;
        else {
                uint32_t *copy = malloc((e->n_gids ? e->n_gids : 1) * sizeof *copy);

                if (!copy)
                        k = -ENOMEM;
                else {
                        memcpy(copy, e->gids, e->n_gids * sizeof *copy);
                        *ret_gids = copy;
                        *ret_n = e->n_gids;
                        k = 0;
                }
        }
        pthread_mutex_unlock(&r->lock);
        return k;
}

/* A counter the lookup thread moves, read under the lock. */
static uint64_t generation_read(Resolver *r, const uint64_t *counter)
{
        uint64_t g;

        pthread_mutex_lock(&r->lock);
        g = *counter;
        pthread_mutex_unlock(&r->lock);
        return g;
}

uint64_t resolver_groups_generation(Resolver *r)
{
        return generation_read(r, &r->groups_generation);
}

uint64_t resolver_names_generation(Resolver *r)
{
        return generation_read(r, &r->names_generation);
}
