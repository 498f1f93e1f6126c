/* WAL checkpoints in a thread of their own (issue 16).
 *
 * A checkpoint copies the pages the WAL holds back into the database file
 * and syncs it: with synchronous=NORMAL two fdatasync() calls, 8-10 ms on
 * the machines this runs on. Run by the connection that commits (SQLite's
 * wal_autocheckpoint), or on the daemon's event loop when it is idle, it
 * stalls every request that arrives meanwhile: under a steady stream of
 * lease requests, one in every ~440 waited that long, which was a fifth of
 * the mean round trip.
 *
 * A Checkpointer opens a second connection to the same database, through
 * the same VFS, and runs SQLITE_CHECKPOINT_PASSIVE checkpoints on it in a
 * thread when asked. SQLite's WAL lets one connection checkpoint while
 * another reads and commits: a passive checkpoint takes no lock a writer
 * waits for, and the writer starts the WAL over at its next transaction once
 * a checkpoint has copied every frame. Durability does not change: a
 * checkpoint only copies pages that were committed (and so were in the
 * kernel, wal-vfs.h) before it began.
 *
 * The store (store.c) asks from its WAL hook, after a commit; asking never
 * blocks and never waits for a checkpoint in progress. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Checkpointer Checkpointer;

/* Open a connection of its own to the database at `path` through the VFS
 * registered as `vfs` (the store's), and start the thread. Returns 0, or
 * -errno: -ENOMEM, the open's error mapped as the store maps SQLite's,
 * or the error of pthread_create(). */
int checkpointer_start(const char *path, const char *vfs, Checkpointer **ret);

/* Ask for a checkpoint: the thread runs one as soon as it is not running
 * one already (asks while one runs make one more after it, not several).
 * Never blocks on the checkpoint; safe from any thread. */
void checkpointer_ask(Checkpointer *c);

/* After every commit, with the WAL's length in frames (the store's WAL
 * hook). A checkpoint copies the frames there were when it began; the WAL
 * starts over only at a commit that finds all of them copied. So when
 * commits went on during a checkpoint, the thread waits for a pause in them
 * of CHECKPOINTER_QUIET_USEC and copies the rest then, where the next
 * commit can start the WAL over; until the next ask, and while no reader
 * holds back frames. Never blocks; cheap (one relaxed atomic store). */
void checkpointer_committed(Checkpointer *c, int frames);

/* The pause in commits after which the thread copies what commits added
 * during its last checkpoint (a checkpoint takes 5-10 ms, two fdatasync()s,
 * on the machines this runs on). */
#define CHECKPOINTER_QUIET_USEC 2000

/* Stop the thread (after the checkpoint it may be running), close its
 * connection and free. NULL is fine. */
void checkpointer_stop(Checkpointer *c);

typedef struct CheckpointerCounts {
        uint64_t asked;     /* checkpointer_ask() calls */
        uint64_t done;      /* checkpoints that completed (SQLITE_OK) */
        uint64_t failed;    /* failed other than "busy": another connection was at it (logged) */
        uint64_t last_wal;  /* the WAL's length in frames at the last checkpoint */
        uint64_t last_copied; /* frames copied back by it (all of them: == last_wal) */
        uint64_t in_commit;   /* whole-WAL ones by commits at the hard limit (store.c fills it) */
        bool idle;            /* neither running one nor asked for one nor waiting for a pause */
} CheckpointerCounts;

/* Frames of the WAL no checkpoint has copied yet, as far as the thread
 * knows: the WAL's length after the last commit, less what its last
 * checkpoint copied when that covered the WAL as it was then (0 when every
 * frame is copied). Safe from any thread. */
int checkpointer_uncopied(Checkpointer *c);

/* What the thread has done so far (for tests, benchmarks and metrics). */
void checkpointer_counts(Checkpointer *c, CheckpointerCounts *ret);
