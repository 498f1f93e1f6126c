/* Queries in a thread of their own; see read-queue.h. */
#include "store/read-queue.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/time-util.h"

/* Before a job, while the WAL holds a backlog no checkpoint has copied
 * (store_wal_backlog), the thread keeps out of a read transaction so the
 * checkpointer can copy it all and the next commit start the WAL over:
 * looking every READ_QUEUE_WAL_POLL_USEC, for READ_QUEUE_WAL_WAIT_USEC at
 * most (an outside program's reader can hold frames back for good). */
#define READ_QUEUE_WAL_POLL_USEC USEC_PER_MSEC
#define READ_QUEUE_WAL_WAIT_USEC USEC_PER_SEC

typedef struct ReadJob ReadJob;
struct ReadJob {
        uint64_t owner;
        ReadRunFunc run;
        ReadDoneFunc done;
        void *state, *userdata;
        int r;                        /* run's answer */
        ReadJob *next;                /* in `todo` or `finished` */
        ReadJob *all_prev, *all_next; /* every job not answered yet */
};

struct ReadQueue {
        Store *reader;
        int efd; /* the thread → the loop: jobs in `finished` */
        sd_event_source *efd_source;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock; /* todo, finished, stopping */
        pthread_cond_t wake;
        ReadJob *todo, *todo_tail;
        ReadJob *finished; /* newest first */
        bool stopping;

        ReadJob *all; /* the loop's alone: for the bounds and the end */
        size_t n_all;
};

/* With the lock held: give way to the checkpointer (above). */
static void give_way_to_checkpoint(ReadQueue *q)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC), until = now + READ_QUEUE_WAL_WAIT_USEC;

        for (bool ask = true; !q->stopping && now < until && store_wal_backlog(q->reader, ask);
             ask = false) {
                uint64_t at = MIN(now + READ_QUEUE_WAL_POLL_USEC, until);
                struct timespec deadline = {.tv_sec = (time_t)(at / USEC_PER_SEC),
                                            .tv_nsec = (long)(at % USEC_PER_SEC) * 1000};

                (void)pthread_cond_timedwait(&q->wake, &q->lock, &deadline);
                now = now_usec(CLOCK_MONOTONIC);
        }
}

static void *read_queue_main(void *userdata)
{
        ReadQueue *q = userdata;
        uint64_t one = 1;

        pthread_mutex_lock(&q->lock);
        for (;;) {
                ReadJob *j;
                int r;

                while (!q->todo && !q->stopping)
                        pthread_cond_wait(&q->wake, &q->lock);
                give_way_to_checkpoint(q);
                if (q->stopping)
                        break;
                j = q->todo;
                q->todo = j->next;
                if (!q->todo)
                        q->todo_tail = NULL;
                pthread_mutex_unlock(&q->lock);

                r = store_read_begin(q->reader);
                if (r >= 0) {
                        r = j->run(q->reader, j->state);
                        store_read_end(q->reader);
                }
                j->r = r;

                pthread_mutex_lock(&q->lock);
                j->next = q->finished;
                q->finished = j;
                (void)!write(q->efd, &one, sizeof one);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

static void all_unlink(ReadQueue *q, ReadJob *j)
{
        if (j->all_prev)
                j->all_prev->all_next = j->all_next;
        else
                q->all = j->all_next;
        if (j->all_next)
                j->all_next->all_prev = j->all_prev;
        q->n_all--;
}

/* Answer `j` with `r` and forget it. */
static void job_done(ReadQueue *q, ReadJob *j, int r)
{
        all_unlink(q, j);
        j->done(j->state, r, j->userdata);
        free(j);
}

static int on_finished(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        ReadQueue *q = userdata;
        ReadJob *list, *in_order = NULL;
        uint64_t v;

        (void)source;
        (void)revents;
        (void)!read(fd, &v, sizeof v);
        pthread_mutex_lock(&q->lock);
        list = TAKE_PTR(q->finished);
        pthread_mutex_unlock(&q->lock);
        while (list) { /* answered in the order they ran */
                ReadJob *next = list->next;

                list->next = in_order;
                in_order = list;
                list = next;
        }
        while (in_order) {
                ReadJob *j = in_order;

                in_order = j->next;
                job_done(q, j, j->r);
        }
        return 0;
}

int read_queue_new(Store *store, sd_event *event, ReadQueue **ret)
{
        ReadQueue *q;
        int r;

        assert(store && event && ret);
        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->efd = -1;
        pthread_mutex_init(&q->lock, NULL);
        {
                pthread_condattr_t attr; /* timed waits on CLOCK_MONOTONIC */

                pthread_condattr_init(&attr);
                pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
                pthread_cond_init(&q->wake, &attr);
                pthread_condattr_destroy(&attr);
        }
        r = store_open_reader(store, &q->reader);
        if (r < 0)
                goto fail;
        q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->efd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(event, &q->efd_source, q->efd, EPOLLIN, on_finished, q);
        if (r < 0)
                goto fail;
        r = -pthread_create(&q->thread, NULL, read_queue_main, q);
        if (r < 0)
                goto fail;
        q->thread_started = true;
        *ret = q;
        return 0;
fail:
        read_queue_free(q);
        return r;
}

int read_queue_submit(ReadQueue *q, uint64_t owner, ReadRunFunc run, ReadDoneFunc done,
                      void *state, void *userdata)
{
        size_t mine = 0;
        ReadJob *j;

        assert(q && run && done);
        for (ReadJob *x = q->all; x; x = x->all_next)
                mine += x->owner == owner;
        if (mine >= READ_QUEUE_PER_OWNER)
                return -EBUSY;
        if (q->n_all >= READ_QUEUE_MAX)
                return -ENOBUFS;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (ReadJob){
                .owner = owner,
                .run = run,
                .done = done,
                .state = state,
                .userdata = userdata,
                .all_next = q->all,
        };
        if (q->all)
                q->all->all_prev = j;
        q->all = j;
        q->n_all++;

        pthread_mutex_lock(&q->lock);
        if (q->todo_tail)
                q->todo_tail->next = j;
        else
                q->todo = j;
        q->todo_tail = j;
        pthread_cond_signal(&q->wake);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

void read_queue_free(ReadQueue *q)
{
        if (!q)
                return;
        if (q->thread_started) {
                pthread_mutex_lock(&q->lock);
                q->stopping = true;
                pthread_cond_signal(&q->wake);
                pthread_mutex_unlock(&q->lock);
                store_interrupt(q->reader);
                pthread_join(q->thread, NULL);
        }
        /* Queued, or finished but not yet answered: every one is on `all`. */
        while (q->all)
                job_done(q, q->all, -ECANCELED);
        sd_event_source_disable_unref(q->efd_source);
        closep(&q->efd);
        store_close(q->reader);
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
}
