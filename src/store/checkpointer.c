/* WAL checkpoints in a thread of their own; see checkpointer.h. */
#include "store/checkpointer.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "basic/log.h"
#include "basic/time-util.h"
#include "store/store.h"

struct Checkpointer {
        sqlite3 *db; /* used by the thread only, after start */
        pthread_t thread;
        pthread_mutex_t lock; /* guards the fields below but `frames` */
        pthread_cond_t wake;  /* asks and stop; on CLOCK_MONOTONIC */
        bool asked, running, stopping;
        CheckpointerCounts counts;
        atomic_int frames; /* the WAL's length after the last commit */
};

/* One passive checkpoint on the thread's connection, counted. True when it
 * copied every frame there was when it began but commits have added some
 * since: the WAL cannot start over before those are copied too. */
static bool checkpoint_once(Checkpointer *c)
{
        int log_frames = 0, copied = 0, rc;
        bool overtaken;

        rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied);
        overtaken = rc == SQLITE_OK && copied >= log_frames &&
                    atomic_load_explicit(&c->frames, memory_order_relaxed) > log_frames;
        pthread_mutex_lock(&c->lock);
        if (rc == SQLITE_OK) {
                c->counts.done++;
                c->counts.last_wal = log_frames > 0 ? (uint64_t)log_frames : 0;
                c->counts.last_copied = copied > 0 ? (uint64_t)copied : 0;
        } else if (rc != SQLITE_BUSY) /* busy: another connection was at it */
                c->counts.failed++;
        pthread_mutex_unlock(&c->lock);
        /* The commits go on whatever happens here: the WAL only grows until
         * a checkpoint succeeds (store.c bounds it), nothing is lost. */
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                log_warning_errno(store_errno_from_sqlite(rc),
                                  "Cannot checkpoint the state database's WAL: %s",
                                  sqlite3_errmsg(c->db));
        return overtaken;
}

/* With the lock held: wait for CHECKPOINTER_QUIET_USEC without a commit.
 * True to checkpoint again (the pause came, or an ask), false to stop
 * (stopping, or the WAL started over meanwhile). */
static bool wait_for_pause(Checkpointer *c)
{
        for (;;) {
                int seen = atomic_load_explicit(&c->frames, memory_order_relaxed), now;
                struct timespec deadline;
                uint64_t until = now_usec(CLOCK_MONOTONIC) + CHECKPOINTER_QUIET_USEC;

                deadline.tv_sec = (time_t)(until / USEC_PER_SEC);
                deadline.tv_nsec = (long)(until % USEC_PER_SEC) * 1000;
                while (!c->asked && !c->stopping &&
                       pthread_cond_timedwait(&c->wake, &c->lock, &deadline) == 0)
                        ;
                if (c->stopping)
                        return false;
                if (c->asked)
                        return true;
                now = atomic_load_explicit(&c->frames, memory_order_relaxed);
                if (now < seen)
                        return false;
                if (now == seen)
                        return true;
        }
}

static void *checkpointer_main(void *userdata)
{
        Checkpointer *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->asked && !c->stopping)
                        pthread_cond_wait(&c->wake, &c->lock);
                if (c->stopping)
                        break;
                c->running = true;
                for (;;) {
                        bool overtaken;

                        c->asked = false;
                        pthread_mutex_unlock(&c->lock);
                        overtaken = checkpoint_once(c);
                        pthread_mutex_lock(&c->lock);
                        if (!overtaken || !wait_for_pause(c))
                                break;
                }
                c->running = false;
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

int checkpointer_start(const char *path, const char *vfs, Checkpointer **ret)
{
        pthread_condattr_t attr;
        Checkpointer *c;
        int r;

        assert(path);
        assert(ret);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        /* The store's sync setting (a checkpoint syncs as its connection
         * says), and one read: a connection opens the WAL at its first
         * read, and a checkpoint on one that has not is a silent no-op.
         * That read may wait for an outside program as the store's open
         * does; a passive checkpoint never calls a busy handler. */
        r = store_connect(path, vfs,
                          "PRAGMA synchronous=NORMAL; " STORE_WAL_SIZE_LIMIT_SQL
                          "SELECT count(*) FROM sqlite_schema;",
                          &c->db);
        if (r < 0) {
                free(c);
                return r;
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->wake, &attr);
        pthread_condattr_destroy(&attr);
        atomic_init(&c->frames, 0);
        r = -pthread_create(&c->thread, NULL, checkpointer_main, c);
        if (r < 0) {
                pthread_cond_destroy(&c->wake);
                pthread_mutex_destroy(&c->lock);
                sqlite3_close(c->db);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void checkpointer_ask(Checkpointer *c)
{
        assert(c);
        pthread_mutex_lock(&c->lock);
        c->asked = true;
        c->counts.asked++;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
}

void checkpointer_committed(Checkpointer *c, int frames)
{
        atomic_store_explicit(&c->frames, frames, memory_order_relaxed);
}

void checkpointer_stop(Checkpointer *c)
{
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        (void)pthread_join(c->thread, NULL);
        sqlite3_close(c->db);
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

int checkpointer_uncopied(Checkpointer *c)
{
        int frames = atomic_load_explicit(&c->frames, memory_order_relaxed);
        uint64_t copied;

        pthread_mutex_lock(&c->lock);
        copied = c->counts.last_copied >= c->counts.last_wal ? c->counts.last_copied : 0;
        pthread_mutex_unlock(&c->lock);
        /* A WAL started over since (shorter than what was copied) is new. */
        return (uint64_t)frames >= copied ? frames - (int)copied : frames;
}

void checkpointer_counts(Checkpointer *c, CheckpointerCounts *ret)
{
        assert(c);
        assert(ret);
        pthread_mutex_lock(&c->lock);
        *ret = c->counts;
        ret->idle = !c->asked && !c->running;
        pthread_mutex_unlock(&c->lock);
}
