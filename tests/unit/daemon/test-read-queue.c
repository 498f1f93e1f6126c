/* Unit tests for the store's read queue (store/read-queue.h): answers come
 * back on the event loop once each, in the order asked; the bounds per
 * owner and in all; a read sees every commit made before it began; freeing
 * the queue interrupts the read it runs and cancels every other. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "store/audit-store.h"
#include "store/read-queue.h"
#include "store/store.h"

typedef struct Fixture {
        char dir[64];
        Store *store;
        sd_event *event;
        ReadQueue *q;
} Fixture;

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof *f);
        _cleanup_free_ char *error = NULL;

        assert_non_null(f);
        strcpy(f->dir, "/tmp/gk-test-read-queue-XXXXXX"); /* mkdtemp's template */
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, &f->store, &error), 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(read_queue_new(f->store, f->event, &f->q), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        char path[PATH_MAX];

        read_queue_free(f->q);
        sd_event_unref(f->event);
        store_close(f->store);
        for (const char *const *n = (const char *const[]){STORE_DB_NAME, STORE_DB_NAME "-wal",
                                                          STORE_DB_NAME "-shm", NULL};
             *n; n++) {
                assert_true((size_t)snprintf(path, sizeof path, "%s/%s", f->dir, *n) <
                            sizeof path);
                unlink(path);
        }
        rmdir(f->dir);
        free(f);
        return 0;
}

/* A job: the gate it waits at in the thread (NULL: none), what it read, and
 * how it was answered. */
typedef struct Job {
        pthread_mutex_t *lock;
        pthread_cond_t *cond;
        const bool *open;
        int64_t uid;      /* whose audit records it counts */
        size_t records;   /* counted in the thread */
        bool endless;     /* run a statement that never ends */
        int answers;      /* done calls */
        int r;            /* done's r */
        int *order, *next; /* where done writes its turn */
} Job;

static int job_run(Store *reader, void *state)
{
        Job *j = state;
        StoredAuditRecord *list = NULL;
        sqlite3_stmt *st = NULL;
        int r;

        if (j->lock) {
                pthread_mutex_lock(j->lock);
                while (!*j->open)
                        pthread_cond_wait(j->cond, j->lock);
                pthread_mutex_unlock(j->lock);
        }
        if (j->endless) {
                if (sqlite3_prepare_v2(store_db(reader),
                                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                       "FROM c) SELECT count(*) FROM c",
                                       -1, &st, NULL) != SQLITE_OK)
                        return -EIO;
                r = store_errno_from_sqlite(sqlite3_step(st));
                sqlite3_finalize(st);
                return r;
        }
        r = store_audit_list(reader, 0, j->uid, NULL, 1000, &list, &j->records);
        stored_audit_free(list, j->records);
        return r;
}

static void job_done(void *state, int r, void *userdata)
{
        Job *j = state;

        (void)userdata;
        j->answers++;
        j->r = r;
        if (j->order)
                *j->order = (*j->next)++;
}

/* Run the loop until `n` jobs have been answered (or 10 s). */
static void run_until(Fixture *f, const Job *jobs, size_t n)
{
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;

        for (;;) {
                size_t answered = 0;

                for (size_t i = 0; i < n; i++)
                        answered += jobs[i].answers > 0;
                if (answered == n)
                        return;
                assert_true(now_usec(CLOCK_MONOTONIC) < end);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

static void test_order_and_bounds(void **state)
{
        Fixture *f = *state;
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
        bool open = false;
        Job jobs[READ_QUEUE_MAX] = {};
        int order[READ_QUEUE_MAX], next = 0;
        Job extra = {};

        assert_int_equal(store_audit(f->store, 42, "test.one", NULL, NULL), 0);
        /* The first waits at the gate: everything after it stays queued. */
        for (size_t i = 0; i < READ_QUEUE_MAX; i++) {
                jobs[i] = (Job){.uid = 42, .order = &order[i], .next = &next};
                if (i == 0)
                        jobs[i].lock = &lock, jobs[i].cond = &cond, jobs[i].open = &open;
        }
        /* Owner 7: two, the third refused; the others, one each. */
        assert_int_equal(read_queue_submit(f->q, 7, job_run, job_done, &jobs[0], NULL), 0);
        assert_int_equal(read_queue_submit(f->q, 7, job_run, job_done, &jobs[1], NULL), 0);
        assert_int_equal(read_queue_submit(f->q, 7, job_run, job_done, &extra, NULL), -EBUSY);
        for (size_t i = 2; i < READ_QUEUE_MAX; i++)
                assert_int_equal(read_queue_submit(f->q, 100 + i, job_run, job_done, &jobs[i], NULL),
                                 0);
        assert_int_equal(read_queue_submit(f->q, 1, job_run, job_done, &extra, NULL), -ENOBUFS);
        /* Committed while they wait: every one of them sees it. */
        assert_int_equal(store_audit(f->store, 42, "test.two", NULL, NULL), 0);

        pthread_mutex_lock(&lock);
        open = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        run_until(f, jobs, READ_QUEUE_MAX);
        for (size_t i = 0; i < READ_QUEUE_MAX; i++) {
                assert_int_equal(jobs[i].answers, 1);
                assert_int_equal(jobs[i].r, 0);
                assert_int_equal(order[i], (int)i);
                assert_int_equal(jobs[i].records, 2);
        }
        assert_int_equal(extra.answers, 0);
        /* Answered: the owner may ask again. */
        assert_int_equal(read_queue_submit(f->q, 7, job_run, job_done, &extra, NULL), 0);
        run_until(f, &extra, 1);
        assert_int_equal(extra.r, 0);
}

static void test_free_interrupts_and_cancels(void **state)
{
        Fixture *f = *state;
        Job endless = {.endless = true}, queued[3] = {};
        uint64_t t;

        assert_int_equal(read_queue_submit(f->q, 1, job_run, job_done, &endless, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(queued); i++)
                assert_int_equal(read_queue_submit(f->q, 2 + i, job_run, job_done, &queued[i], NULL),
                                 0);
        (void)nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
        t = now_usec(CLOCK_MONOTONIC);
        read_queue_free(f->q);
        f->q = NULL;
        assert_true(now_usec(CLOCK_MONOTONIC) - t < 2 * USEC_PER_SEC);
        assert_int_equal(endless.answers, 1);
        assert_int_equal(endless.r, -ECANCELED);
        for (size_t i = 0; i < ELEMENTSOF(queued); i++) {
                assert_int_equal(queued[i].answers, 1);
                assert_int_equal(queued[i].r, -ECANCELED);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_order_and_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_interrupts_and_cancels, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
