/* Names the daemon must turn into ids (the admin group, the groups of
 * policy.groups, enforcement.exempt.users), resolved through NSS by a worker
 * thread and kept with a TTL, so that a slow directory (sssd, LDAP) never
 * stalls the event loop: the loop only reads the last answers.
 *
 * A failed lookup (a timeout, an error other than "no such name") keeps the
 * previous answer; a name that never had one reads as -EAGAIN, and callers
 * fail closed on it (no admin rights, no lease under a policy that may apply,
 * no enforcement that may hit an exempt user). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ResolverKind {
        RESOLVER_GROUP, /* group name → gid */
        RESOLVER_USER,  /* user name → uid */
} ResolverKind;

typedef struct ResolverName {
        ResolverKind kind;
        const char *name;
} ResolverName;

typedef struct Resolver Resolver;

/* Answers are refreshed every `ttl_usec`; a failed lookup is retried after a
 * tenth of it. `test_delay_usec` (0 in production) makes every lookup take
 * that much longer, so tests can play a slow directory. Starts the thread. */
int resolver_new(uint64_t ttl_usec, uint64_t test_delay_usec, Resolver **ret);

/* Stop the thread (waiting for a lookup in progress) and free. NULL is fine. */
void resolver_free(Resolver *r);

/* Replace the set of names to keep resolved. Names already known keep their
 * answers; new ones are looked up at once (by the thread). */
int resolver_set(Resolver *r, const ResolverName *names, size_t n);

/* Wait until every name has had a first answer (success or failure), at most
 * `timeout_usec`. Returns true when all have. For startup only. */
bool resolver_wait(Resolver *r, uint64_t timeout_usec);

/* The id of `name`: 0 with *ret_id set (the latest good answer, however old
 * the failed refreshes since), -ENOENT when NSS says there is no such name,
 * -EAGAIN when there is no answer yet or every lookup so far failed,
 * -ENOKEY when the name is not in the set. Never blocks on NSS. */
int resolver_lookup(Resolver *r, ResolverKind kind, const char *name, uint32_t *ret_id);

/* uid → login name, for what the daemon shows (daemon_user_name). A uid
 * seen for the first time is queued for the thread; answers are kept and
 * refreshed every TTL while they are read, dropped after
 * RESOLVER_UID_UNUSED_TTLS TTLs unread, and at most RESOLVER_MAX_UIDS are
 * kept (the one read longest ago goes first). */
#define RESOLVER_NAME_MAX 64
#define RESOLVER_MAX_UIDS 4096
#define RESOLVER_UID_UNUSED_TTLS 10
/* A lookup in progress for longer than this means a slow directory: no
 * first-answer wait then. */
#define RESOLVER_SLOW_USEC (5 * UINT64_C(1000))
/* After a first-answer wait that ran out, no waiting for this long. */
#define RESOLVER_QUIET_USEC (1000 * UINT64_C(1000))

/* The login name of `uid` into buf (len bytes): 0; -ENOENT when there is no
 * such user; -EAGAIN when no answer has come yet (or every lookup so far
 * failed); -ENAMETOOLONG. When `uid` has no answer yet this waits up to
 * `wait_usec` for one (0: not at all), but not while the thread is inside a
 * lookup that has taken RESOLVER_SLOW_USEC already, nor within
 * RESOLVER_QUIET_USEC of a wait that ran out: a slow directory costs the
 * caller at most one short wait, never one per name. Never blocks on NSS
 * otherwise. */
int resolver_user_name(Resolver *r, uint32_t uid, uint64_t wait_usec, char *buf, size_t len);

/* login name → uid, for requests that name a user (report --user, audit
 * --user, limits show|apply NAME): kept, refreshed and dropped like the
 * login names above, in a table of at most RESOLVER_MAX_NAMES names. A
 * found uid is given from memory; "no such user" only from a lookup begun
 * at `fresh_since` (CLOCK_MONOTONIC) or later, so that a user created a
 * moment ago (`gpukeeper user add` applies the new user's limits at once)
 * is never refused from an older answer. */
#define RESOLVER_MAX_NAMES 256

/* The uid of the user called `name`: 0 with *ret_uid set; -ENOENT when there
 * is no such user (by a lookup begun at `fresh_since` or later); -EAGAIN
 * when there is no such answer yet or every lookup so far failed (the lookup
 * is queued for the thread); -ENAMETOOLONG when the name has
 * RESOLVER_NAME_MAX bytes or more; -ENOMEM. An answer is waited for as in
 * resolver_user_name; never blocks on NSS otherwise. */
int resolver_user_uid(Resolver *r, const char *name, uint64_t wait_usec, uint64_t fresh_since,
                      uint32_t *ret_uid);

/* uid → the gids of its groups (the primary group and the supplementary
 * ones, getgrouplist on its login name), for per-user limits (limits.groups).
 * Kept, refreshed and dropped like the login names above (their own table of
 * at most RESOLVER_MAX_UIDS users); at most RESOLVER_GROUPS_MAX gids a user. */
#define RESOLVER_GROUPS_MAX 4096

/* The groups of `uid`: 0 with *ret_gids (the caller frees it; the primary
 * gid first) and *ret_n set from the latest good answer; -ENOENT when there
 * is no such user; -EAGAIN when no answer has come yet or every lookup so
 * far failed (the lookup is queued for the thread;
 * resolver_groups_generation() moves when it comes); -ENOMEM. A first
 * lookup is waited for as in resolver_user_name (at most `wait_usec`, not
 * at all while the directory is slow); never blocks on NSS otherwise. */
int resolver_user_groups(Resolver *r, uint32_t uid, uint64_t wait_usec, uint32_t **ret_gids,
                         size_t *ret_n);

/* A number that changes whenever an answer of resolver_user_groups() came
 * that differs from what was known before (a first answer, or a refresh that
 * changed the groups), so the loop can recheck only then. */
uint64_t resolver_groups_generation(Resolver *r);

/* A number that changes whenever what resolver_user_name() answers for a
 * uid may have changed: a first answer, a user found or gone, a new name,
 * an answer forgotten. The thread moves it without an event on the loop, so
 * a cache of what names are shown (status-cache.h) reads it as its key. */
uint64_t resolver_names_generation(Resolver *r);

/* Lookups done and failed since the start (for /metrics). */
void resolver_counts(Resolver *r, uint64_t *ret_lookups, uint64_t *ret_failures);
