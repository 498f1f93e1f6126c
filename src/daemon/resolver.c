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

/* What the loop asks for on demand, one table each. */
/* In the order first answers are looked up (pick_unanswered). */
typedef enum DemandKind {
        DEMAND_NAME,   /* uid → login name (resolver_user_name) */
        DEMAND_GROUPS, /* uid → its gids (resolver_user_groups) */
        DEMAND_UID,    /* login name → uid (resolver_user_uid) */
        _DEMAND_KIND_MAX,
} DemandKind;

static const size_t demand_capacity[_DEMAND_KIND_MAX] = {
        [DEMAND_NAME] = RESOLVER_MAX_UIDS,
        [DEMAND_UID] = RESOLVER_MAX_NAMES,
        [DEMAND_GROUPS] = RESOLVER_MAX_UIDS,
};

/* One question of the loop and its latest answer. The key is `uid` (`name`
 * for DEMAND_UID); the answer is `name`, `uid` or `gids` by kind. */
typedef struct Demand {
        uint32_t uid;
        char name[RESOLVER_NAME_MAX];
        uint32_t *gids;
        size_t n_gids;
        uint64_t tried_usec;    /* when the last lookup that finished began; 0: none */
        uint64_t answered_usec; /* when the last lookup that answered began */
        bool answered;          /* a lookup said "this" or "no such name" */
        bool found;             /* the answer's field holds the latest good answer */
        uint64_t due_usec;  /* as Entry.due_usec */
        uint64_t used_usec; /* CLOCK_MONOTONIC of the last read */
} Demand;

typedef struct DemandTable {
        Demand *slots;       /* demand_capacity[kind], allocated on first use */
        size_t n;
        uint64_t generation; /* moves when what the table answers may have changed */
} DemandTable;

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
        uint64_t quiet_until_usec;    /* no first-answer waits before this */
        uint64_t inflight_since_usec; /* CLOCK_MONOTONIC the current lookup began; 0: none */
        DemandTable demands[_DEMAND_KIND_MAX];
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

static bool demand_is(DemandKind kind, const Demand *e, uint32_t uid, const char *name)
{
        return kind == DEMAND_UID ? strcmp(e->name, name) == 0 : e->uid == uid;
}

/* The entry of a question of `kind` about `uid` (`name` for DEMAND_UID). */
static Demand *demand_find(Resolver *r, DemandKind kind, uint32_t uid, const char *name)
{
        DemandTable *t = &r->demands[kind];

        for (size_t i = 0; i < t->n; i++)
                if (demand_is(kind, &t->slots[i], uid, name))
                        return &t->slots[i];
        return NULL;
}

/* Forget slot `i`: what it answered is no longer shown. */
static void demand_drop(DemandTable *t, size_t i)
{
        t->generation += t->slots[i].answered;
        free(t->slots[i].gids);
        t->slots[i] = t->slots[--t->n];
}

/* The NSS lookup of the question `key` of `kind`, its answer into *got. */
static int demand_lookup(DemandKind kind, const Demand *key, Demand *got)
{
        switch (kind) {
        case DEMAND_NAME:
                return lookup_uid(key->uid, got->name, sizeof got->name);
        case DEMAND_UID:
                return lookup(RESOLVER_USER, key->name, &got->uid);
        default:
                return lookup_groups(key->uid, &got->gids, &got->n_gids);
        }
}

/* Whether the good answer `got` is what `e` answers already. */
static bool demand_same(DemandKind kind, const Demand *e, const Demand *got)
{
        if (!e->found)
                return false;
        switch (kind) {
        case DEMAND_NAME:
                return strcmp(e->name, got->name) == 0;
        case DEMAND_UID:
                return e->uid == got->uid;
        default:
                return e->n_gids == got->n_gids &&
                       memcmp(e->gids, got->gids, got->n_gids * sizeof *got->gids) == 0;
        }
}

/* Keep the good answer `got` in `e` (its gids move). */
static void demand_take(DemandKind kind, Demand *e, Demand *got)
{
        if (kind == DEMAND_NAME)
                memcpy(e->name, got->name, sizeof e->name);
        else if (kind == DEMAND_UID)
                e->uid = got->uid;
        else {
                free(e->gids);
                e->gids = TAKE_PTR(got->gids);
                e->n_gids = got->n_gids;
        }
}

/* One lookup of slot `pick` of table `kind`, called by the thread with the
 * lock held (dropped around NSS). A question not read for
 * RESOLVER_UID_UNUSED_TTLS TTLs is dropped instead. A failed lookup keeps
 * what was known and is tried again after the retry interval. */
static void thread_demand(Resolver *r, DemandKind kind, size_t pick, uint64_t now)
{
        DemandTable *t = &r->demands[kind];
        Demand *e = &t->slots[pick], key, got = {};
        int k;

        if (e->tried_usec && now - e->used_usec > RESOLVER_UID_UNUSED_TTLS * r->ttl_usec) {
                demand_drop(t, pick);
                return;
        }
        key = (Demand){.uid = e->uid};
        memcpy(key.name, e->name, sizeof key.name);
        lookup_unlock(r, &e->due_usec, now);
        k = demand_lookup(kind, &key, &got);
        lookup_relock(r, k);
        e = demand_find(r, kind, key.uid, key.name); /* the table may have changed meanwhile */
        if (e) {
                uint64_t began = now;

                now = now_usec(CLOCK_MONOTONIC);
                /* What is shown moves: a first answer, a user who came or
                 * went, a new name or uid or set of groups (the status
                 * cache's key, the limits' recheck). */
                if ((k >= 0 && !demand_same(kind, e, &got)) ||
                    (k == -ENOENT && (e->found || !e->answered)))
                        t->generation++;
                e->tried_usec = began;
                if (k >= 0 || k == -ENOENT)
                        e->answered_usec = began;
                if (k >= 0) {
                        demand_take(kind, e, &got);
                        e->found = e->answered = true;
                        e->due_usec = now + r->ttl_usec;
                } else if (k == -ENOENT) {
                        free(e->gids);
                        e->gids = NULL;
                        e->n_gids = 0;
                        e->found = false;
                        e->answered = true;
                        e->due_usec = now + r->ttl_usec;
                } else
                        e->due_usec = now + r->retry_usec; /* keep what we knew */
                pthread_cond_broadcast(&r->answered);
        }
        free(got.gids);
}

/* One lookup of the configuration's entry `pick`, as thread_demand. */
static void thread_entry(Resolver *r, size_t pick, uint64_t now)
{
        uint64_t generation = r->generation;
        _cleanup_free_ char *name = strdup(r->entries[pick].name);
        ResolverKind kind = r->entries[pick].kind;
        uint32_t id = 0;
        Entry *e;
        int k;

        if (!name) {
                r->entries[pick].due_usec = now + r->retry_usec;
                return;
        }
        lookup_unlock(r, &r->entries[pick].due_usec, now);
        k = lookup(kind, name, &id);
        lookup_relock(r, k);
        if (generation != r->generation)
                return; /* the table was replaced; the new one has its own due times */
        e = &r->entries[pick];
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
        pthread_cond_broadcast(&r->answered);
}

/* A question of the loop that was never answered and is due: someone is
 * waiting for it, or being shown "no name". First uid → name (what
 * everyone is shown), then groups (a new user's limits wait for them),
 * then name → uid (a request that named a user; any caller can ask for
 * many names, so these go last). */
static bool pick_unanswered(Resolver *r, uint64_t now, DemandKind *ret_kind, size_t *ret_pick)
{
        for (DemandKind kind = 0; kind < _DEMAND_KIND_MAX; kind++) {
                const DemandTable *t = &r->demands[kind];

                for (size_t i = 0; i < t->n; i++)
                        if (!t->slots[i].answered && t->slots[i].due_usec <= now) {
                                *ret_kind = kind;
                                *ret_pick = i;
                                return true;
                        }
        }
        return false;
}

static void *resolver_thread(void *userdata)
{
        Resolver *r = userdata;

        pthread_mutex_lock(&r->lock);
        while (!r->stop) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), soonest = IN_FLIGHT;
                size_t pick = SIZE_MAX, pick_demand = SIZE_MAX;
                DemandKind kind = _DEMAND_KIND_MAX;

                /* Names of the configuration were answered before the daemon
                 * served (resolver_wait) and keep their answers while
                 * refreshed: a flood of new questions only delays those
                 * refreshes. */
                if (pick_unanswered(r, now, &kind, &pick_demand)) {
                        thread_demand(r, kind, pick_demand, now);
                        continue;
                }
                /* Otherwise whatever is due soonest. */
                for (size_t i = 0; i < r->n_entries; i++)
                        if (r->entries[i].due_usec < soonest) {
                                soonest = r->entries[i].due_usec;
                                pick = i;
                        }
                for (DemandKind k = 0; k < _DEMAND_KIND_MAX; k++)
                        for (size_t i = 0; i < r->demands[k].n; i++)
                                if (r->demands[k].slots[i].due_usec < soonest) {
                                        soonest = r->demands[k].slots[i].due_usec;
                                        kind = k;
                                        pick_demand = i;
                                        pick = SIZE_MAX;
                                }
                if (soonest == IN_FLIGHT)
                        pthread_cond_wait(&r->wake, &r->lock);
                else if (soonest > now) {
                        struct timespec ts;

                        timespec_at(soonest, &ts);
                        pthread_cond_timedwait(&r->wake, &r->lock, &ts);
                } else if (pick != SIZE_MAX)
                        thread_entry(r, pick, now);
                else
                        thread_demand(r, kind, pick_demand, now);
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
        for (DemandKind kind = 0; kind < _DEMAND_KIND_MAX; kind++) {
                for (size_t i = 0; i < r->demands[kind].n; i++)
                        free(r->demands[kind].slots[i].gids);
                free(r->demands[kind].slots);
        }
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

/* Whether `e` has an answer to give: one that was found, or a "no such
 * name" from a lookup that began at `fresh_since` or later. */
static bool demand_usable(const Demand *e, uint64_t fresh_since)
{
        return e->answered && (e->found || e->answered_usec >= fresh_since);
}

/* With the lock held: a short, bounded wait for an answer to a question (a
 * usable one, or a lookup begun at `fresh_since` or later that failed), so
 * that a fast directory answers at once. None while the thread is inside a
 * lookup that has already taken RESOLVER_SLOW_USEC (a slow directory: the
 * answer cannot come in time), and none for a while after a wait that ran
 * out, so the loop stalls at most once, not once per question. */
static void bounded_wait(Resolver *r, uint64_t now, uint64_t wait_usec, DemandKind kind,
                         uint32_t uid, const char *name, uint64_t fresh_since)
{
        uint64_t deadline = now + wait_usec, need = MAX(fresh_since, UINT64_C(1));
        const Demand *e;
        bool done = false;

        if (wait_usec == 0 || now < r->quiet_until_usec ||
            (r->inflight_since_usec != 0 && now - r->inflight_since_usec >= RESOLVER_SLOW_USEC))
                return;
        for (;;) {
                struct timespec ts;

                e = demand_find(r, kind, uid, name);
                done = !e || demand_usable(e, fresh_since) || e->tried_usec >= need;
                if (done || now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                timespec_at(deadline, &ts);
                pthread_cond_timedwait(&r->answered, &r->lock, &ts);
        }
        if (!done)
                r->quiet_until_usec = now_usec(CLOCK_MONOTONIC) + RESOLVER_QUIET_USEC;
}

/* With the lock held: the answer about `uid` (`name` for DEMAND_UID) in
 * *ret, the question added (and the thread woken) when new, the entry read
 * longest ago making room when the table is full, and an answer waited for
 * as bounded_wait() allows. A "no such name" from a lookup begun before
 * `fresh_since` is not given: the name is looked up again (0: any answer
 * will do). Returns 0 (the answer's fields are good), or -ENOENT, -EAGAIN
 * as resolver.h says, or -ENOMEM. */
static int demand_ask(Resolver *r, DemandKind kind, uint32_t uid, const char *name,
                      uint64_t wait_usec, uint64_t fresh_since, Demand **ret)
{
        DemandTable *t = &r->demands[kind];
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        Demand *e;

        if (!t->slots) {
                t->slots = calloc(demand_capacity[kind], sizeof *t->slots);
                if (!t->slots)
                        return -ENOMEM;
        }
        e = demand_find(r, kind, uid, name);
        if (!e) {
                if (t->n == demand_capacity[kind]) {
                        /* Never the one being looked up: the thread finds
                         * it again by its key. */
                        size_t old = SIZE_MAX;

                        for (size_t i = 0; i < t->n; i++)
                                if (t->slots[i].due_usec != IN_FLIGHT &&
                                    (old == SIZE_MAX ||
                                     t->slots[i].used_usec < t->slots[old].used_usec))
                                        old = i;
                        demand_drop(t, old);
                }
                e = &t->slots[t->n++];
                *e = (Demand){.uid = uid};
                if (kind == DEMAND_UID)
                        strcpy(e->name, name); /* the caller checked its length */
                pthread_cond_broadcast(&r->wake);
        } else if (!demand_usable(e, fresh_since) && e->answered && e->due_usec != IN_FLIGHT) {
                /* A "no such name" older than the question is no answer:
                 * asked again now, before refreshes (pick_unanswered). */
                e->answered = false;
                e->due_usec = 0;
                pthread_cond_broadcast(&r->wake);
        }
        e->used_usec = now;
        if (!demand_usable(e, fresh_since)) {
                bounded_wait(r, now, wait_usec, kind, uid, name, fresh_since);
                e = demand_find(r, kind, uid, name); /* the thread may have moved it */
        }
        if (!e || !demand_usable(e, fresh_since))
                return -EAGAIN;
        if (!e->found)
                return -ENOENT;
        *ret = e;
        return 0;
}

int resolver_user_name(Resolver *r, uint32_t uid, uint64_t wait_usec, char *buf, size_t len)
{
        Demand *e;
        int k;

        pthread_mutex_lock(&r->lock);
        k = demand_ask(r, DEMAND_NAME, uid, NULL, wait_usec, 0, &e);
        if (k >= 0 && strlen(e->name) >= len)
                k = -ENAMETOOLONG;
        else if (k >= 0)
                strcpy(buf, e->name);
        pthread_mutex_unlock(&r->lock);
        return k;
}

int resolver_user_uid(Resolver *r, const char *name, uint64_t wait_usec, uint64_t fresh_since,
                      uint32_t *ret_uid)
{
        Demand *e;
        int k;

        if (strlen(name) >= RESOLVER_NAME_MAX)
                return -ENAMETOOLONG;
        pthread_mutex_lock(&r->lock);
        k = demand_ask(r, DEMAND_UID, 0, name, wait_usec, fresh_since, &e);
        if (k >= 0)
                *ret_uid = e->uid;
        pthread_mutex_unlock(&r->lock);
        return k;
}

int resolver_user_groups(Resolver *r, uint32_t uid, uint64_t wait_usec, uint32_t **ret_gids,
                         size_t *ret_n)
{
        uint32_t *copy;
        Demand *e;
        int k;

        pthread_mutex_lock(&r->lock);
        k = demand_ask(r, DEMAND_GROUPS, uid, NULL, wait_usec, 0, &e);
        if (k >= 0) {
                copy = malloc((e->n_gids ? e->n_gids : 1) * sizeof *copy);
                if (!copy)
                        k = -ENOMEM;
                else {
                        memcpy(copy, e->gids, e->n_gids * sizeof *copy);
                        *ret_gids = copy;
                        *ret_n = e->n_gids;
                }
        }
        pthread_mutex_unlock(&r->lock);
        return k;
}

/* A table's generation, which the lookup thread moves, read under the lock. */
static uint64_t generation_read(Resolver *r, DemandKind kind)
{
        uint64_t g;

        pthread_mutex_lock(&r->lock);
        g = r->demands[kind].generation;
        pthread_mutex_unlock(&r->lock);
        return g;
}

uint64_t resolver_groups_generation(Resolver *r)
{
        return generation_read(r, DEMAND_GROUPS);
}

uint64_t resolver_names_generation(Resolver *r)
{
        return generation_read(r, DEMAND_NAME);
}
