/* Unit tests of the pieces that keep one user or one slow directory from
 * denying service (issue 10): the rate limit of repeated events, /etc/subuid
 * parsing for per-person caps, and the resolver that keeps NSS off the event
 * loop (its answers, its failure rules, its TTL refresh, and that a lookup in
 * progress never blocks a reader). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "basic/macro.h"
#include "basic/ratelimit.h"
#include "basic/subid.h"
#include "basic/time-util.h"
#include "daemon/daemon.h"
#include "daemon/resolver.h"

static void test_ratelimit(void **state)
{
        RateLimit rl = RATELIMIT_INIT(10 * USEC_PER_SEC, 3);
        uint64_t t = 1000 * USEC_PER_SEC, n = 99;

        for (int i = 0; i < 3; i++) {
                assert_true(ratelimit_below(&rl, t + (uint64_t)i, &n));
                assert_int_equal(n, 0);
        }
        for (int i = 0; i < 5; i++)
                assert_false(ratelimit_below(&rl, t + 10 + (uint64_t)i, &n));
        assert_int_equal(rl.suppressed, 5);
        /* Still inside the interval. */
        assert_false(ratelimit_below(&rl, t + 10 * USEC_PER_SEC - 1, NULL));
        /* A new interval: the first event reports what was held back. */
        assert_true(ratelimit_below(&rl, t + 10 * USEC_PER_SEC, &n));
        assert_int_equal(n, 6);
        assert_true(ratelimit_below(&rl, t + 10 * USEC_PER_SEC + 1, &n));
        assert_int_equal(n, 0);
        /* A clock that goes back starts a new interval rather than locking. */
        rl.num = rl.burst;
        assert_true(ratelimit_below(&rl, t - USEC_PER_SEC, NULL));
}

static void test_subid_parse(void **state)
{
        static const char text[] =
                "alice:100000:65536\n"
                "# a comment\n"
                "\n"
                "1001:200000:1000\n"
                "bad:notanumber:5\n"
                "zero:300000:0\n"
                "wrap:4294967000:1000\n"
                "nocount:400000\n"
                ":500000:10\n"
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:1:1\n"
                "bob:165536:65536"; /* no final newline */
        SubidRange *r = NULL;
        size_t n = 0;

        assert_int_equal(subid_parse(text, sizeof text - 1, &r, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(r[0].owner, "alice");
        assert_int_equal(r[0].start, 100000);
        assert_int_equal(r[0].count, 65536);
        assert_string_equal(r[1].owner, "1001");
        assert_string_equal(r[2].owner, "bob");

        assert_int_equal(subid_find(r, n, 100000), 0);
        assert_int_equal(subid_find(r, n, 165535), 0);
        assert_int_equal(subid_find(r, n, 165536), 2);
        assert_int_equal(subid_find(r, n, 200999), 1);
        assert_int_equal(subid_find(r, n, 201000), 2); /* bob's, past 1001's */
        assert_int_equal(subid_find(r, n, 231072), -1);
        assert_int_equal(subid_find(r, n, 99999), -1);
        assert_int_equal(subid_find(r, n, 0), -1);
        free(r);

        assert_int_equal(subid_parse("", 0, &r, &n), 0);
        assert_int_equal(n, 0);
        free(r);
}

/* A name cache as the daemon's resolver answers: alice is 1000, bob has not
 * been answered yet. */
static int fake_lookup(const char *name, uint32_t *ret_uid, void *userdata)
{
        int *calls = userdata;

        (*calls)++;
        if (strcmp(name, "alice") == 0) {
                *ret_uid = 1000;
                return 0;
        }
        return strcmp(name, "bob") == 0 ? -EAGAIN : -ENOENT;
}

/* A subordinate uid is its owner's, whether the line names the owner by
 * login name or by uid (subuid(5) allows both); before this, a range named
 * by login name counted apart from its owner, so alice got her own cap and
 * her range's. */
static void test_subid_person(void **state)
{
        static const char text[] = "alice:100000:65536\n"
                                   "1001:200000:1000\n"
                                   "bob:300000:65536\n"
                                   "ghost:400000:10\n"
                                   "4294967295:500000:10\n";
        SubidRange *r = NULL;
        size_t n = 0;
        uint32_t uid = 0;
        int calls = 0;

        assert_int_equal(subid_parse(text, sizeof text - 1, &r, &n), 0);
        assert_int_equal(n, 5);

        /* By name and by number: the owner. */
        assert_int_equal(subid_person(r, n, 100000, fake_lookup, &calls), 1000);
        assert_int_equal(subid_person(r, n, 165535, fake_lookup, &calls), 1000);
        assert_int_equal(subid_person(r, n, 200500, fake_lookup, &calls), 1001);
        /* The owner's own uid is the same person. */
        assert_int_equal(subid_person(r, n, 1000, fake_lookup, &calls), 1000);
        /* Not in any range: itself, without a lookup. */
        calls = 0;
        assert_int_equal(subid_person(r, n, 1001, fake_lookup, &calls), 1001);
        assert_int_equal(subid_person(r, n, 99999, fake_lookup, &calls), 99999);
        assert_int_equal(calls, 0);
        /* A number needs no lookup either. */
        assert_int_equal(subid_person(r, n, 200000, fake_lookup, &calls), 1001);
        assert_int_equal(calls, 0);

        /* No answer yet, or no such user: the whole range is one person of
         * its own, never one person per uid, and never anyone's uid. */
        assert_int_equal(subid_person(r, n, 300000, fake_lookup, &calls), (UINT64_C(1) << 32) | 2);
        assert_int_equal(subid_person(r, n, 365535, fake_lookup, &calls), (UINT64_C(1) << 32) | 2);
        assert_int_equal(subid_person(r, n, 400009, fake_lookup, &calls), (UINT64_C(1) << 32) | 3);
        assert_int_equal(subid_person(r, n, 500000, fake_lookup, &calls), (UINT64_C(1) << 32) | 4);
        /* Without a lookup function, names stay unresolved. */
        assert_int_equal(subid_person(r, n, 100000, NULL, NULL), (UINT64_C(1) << 32) | 0);

        assert_int_equal(subid_owner_uid(&r[0], fake_lookup, &calls, &uid), 0);
        assert_int_equal(uid, 1000);
        assert_int_equal(subid_owner_uid(&r[2], fake_lookup, &calls, &uid), -EAGAIN);
        assert_int_equal(subid_owner_uid(&r[3], fake_lookup, &calls, &uid), -ENOENT);
        assert_int_equal(subid_owner_uid(&r[4], fake_lookup, &calls, &uid), -EINVAL);
        free(r);
}

/* The name of some group and some user that exist here (root's). */
static void known_names(char *group, size_t glen, gid_t *gid, char *user, size_t ulen)
{
        struct group *g = getgrgid(0);
        struct passwd *p = getpwuid(0);

        assert_non_null(g);
        assert_non_null(p);
        snprintf(group, glen, "%s", g->gr_name);
        *gid = g->gr_gid;
        snprintf(user, ulen, "%s", p->pw_name);
}

static void test_resolver_answers(void **state)
{
        char group[256], user[256];
        Resolver *r = NULL;
        gid_t gid;
        uint32_t id = 12345;

        known_names(group, sizeof group, &gid, user, sizeof user);
        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 0, &r), 0);
        ResolverName names[] = {
                {RESOLVER_GROUP, group},
                {RESOLVER_USER, user},
                {RESOLVER_GROUP, "gkdos-no-such-group-xyz"},
                {RESOLVER_USER, "gkdos-no-such-user-xyz"},
                {RESOLVER_GROUP, group}, /* twice: kept once */
        };
        assert_int_equal(resolver_set(r, names, ELEMENTSOF(names)), 0);
        assert_true(resolver_wait(r, 10 * USEC_PER_SEC));

        assert_int_equal(resolver_lookup(r, RESOLVER_GROUP, group, &id), 0);
        assert_int_equal(id, gid);
        assert_int_equal(resolver_lookup(r, RESOLVER_USER, user, &id), 0);
        assert_int_equal(id, 0);
        assert_int_equal(resolver_lookup(r, RESOLVER_GROUP, "gkdos-no-such-group-xyz", &id),
                         -ENOENT);
        assert_int_equal(resolver_lookup(r, RESOLVER_USER, "gkdos-no-such-user-xyz", &id),
                         -ENOENT);
        /* Not asked for: the caller's mistake, said so. */
        assert_int_equal(resolver_lookup(r, RESOLVER_USER, "gkdos-not-asked", &id), -ENOKEY);

        /* A new set keeps the answers of the names it keeps, at once. */
        ResolverName fewer[] = {{RESOLVER_GROUP, group}};
        assert_int_equal(resolver_set(r, fewer, 1), 0);
        assert_int_equal(resolver_lookup(r, RESOLVER_GROUP, group, &id), 0);
        assert_int_equal(id, gid);
        assert_int_equal(resolver_lookup(r, RESOLVER_USER, user, &id), -ENOKEY);
        resolver_free(r);
}

/* With every lookup taking 300 ms, a reader asks while one is in progress:
 * it gets -EAGAIN at once (not an answer 300 ms later), then the answer once
 * the thread has it; a refresh in progress keeps serving the old answer. */
static void test_resolver_never_blocks(void **state)
{
        char group[256], user[256];
        Resolver *r = NULL;
        gid_t gid;
        uint32_t id;
        uint64_t t0, worst = 0, lookups, failures;

        known_names(group, sizeof group, &gid, user, sizeof user);
        assert_int_equal(resolver_new(100 * USEC_PER_MSEC, 300 * USEC_PER_MSEC, &r), 0);
        ResolverName names[] = {{RESOLVER_GROUP, group}};
        assert_int_equal(resolver_set(r, names, 1), 0);

        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_lookup(r, RESOLVER_GROUP, group, &id), -EAGAIN);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 100 * USEC_PER_MSEC);
        assert_false(resolver_wait(r, 50 * USEC_PER_MSEC));
        assert_true(resolver_wait(r, 5 * USEC_PER_SEC));

        /* For a second, refreshes run back to back (TTL 100 ms, 300 ms each):
         * every read answers from memory, quickly, with the gid. */
        while (now_usec(CLOCK_MONOTONIC) - t0 < 1300 * USEC_PER_MSEC) {
                uint64_t t = now_usec(CLOCK_MONOTONIC), dt;

                assert_int_equal(resolver_lookup(r, RESOLVER_GROUP, group, &id), 0);
                assert_int_equal(id, gid);
                dt = now_usec(CLOCK_MONOTONIC) - t;
                worst = dt > worst ? dt : worst;
                usleep(1000);
        }
        resolver_counts(r, &lookups, &failures);
        assert_true(lookups >= 2); /* refreshed, not answered once and kept */
        assert_int_equal(failures, 0);
        print_message("longest resolver_lookup() during slow lookups: %llu us\n",
                      (unsigned long long)worst);
        assert_true(worst < 50 * USEC_PER_MSEC);
        resolver_free(r); /* joins the thread, mid-lookup or not */
}

/* uid → name through the resolver (daemon_user_name): a fast directory
 * answers within the short first wait; a slow one (300 ms a lookup) costs one
 * wait that runs out, after which reads do not wait at all, and the name
 * arrives from the thread. */
static void test_resolver_user_names(void **state)
{
        struct passwd *p = getpwuid(0);
        char name[RESOLVER_NAME_MAX], root[RESOLVER_NAME_MAX];
        uint64_t t0, dt;
        Resolver *r = NULL;

        assert_non_null(p);
        snprintf(root, sizeof root, "%s", p->pw_name);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(resolver_user_name(r, 0, 5 * USEC_PER_SEC, name, sizeof name), 0);
        assert_string_equal(name, root);
        assert_int_equal(resolver_user_name(r, 4000999999u, 5 * USEC_PER_SEC, name, sizeof name),
                         -ENOENT);
        /* Answered from memory now, without waiting. */
        assert_int_equal(resolver_user_name(r, 0, 0, name, sizeof name), 0);
        assert_int_equal(resolver_user_name(r, 0, 0, name, 2), -ENAMETOOLONG);
        resolver_free(r);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 300 * USEC_PER_MSEC, &r), 0);
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_name(r, 0, 20 * USEC_PER_MSEC, name, sizeof name),
                         -EAGAIN);
        dt = now_usec(CLOCK_MONOTONIC) - t0;
        assert_true(dt >= 20 * USEC_PER_MSEC && dt < 200 * USEC_PER_MSEC);
        /* Within the quiet period, another new uid does not wait. */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_name(r, 1, 20 * USEC_PER_MSEC, name, sizeof name),
                         -EAGAIN);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 15 * USEC_PER_MSEC);
        /* The thread answers in its own time. */
        while (resolver_user_name(r, 0, 0, name, sizeof name) == -EAGAIN) {
                assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 10 * USEC_PER_SEC);
                usleep(10000);
        }
        assert_string_equal(name, root);
        resolver_free(r); /* joins the thread, mid-lookup (uid 1) or not */
}

/* name → uid through the resolver (a request's `user`, request_parse_user):
 * answers as for uid → name; a name too long for the table is refused
 * without a lookup; the table keeps at most RESOLVER_MAX_NAMES names, the
 * one read longest ago going first; a slow directory costs one wait. */
static void test_resolver_user_uids(void **state)
{
        struct passwd *p = getpwuid(0);
        char root[RESOLVER_NAME_MAX], name[RESOLVER_NAME_MAX + 8];
        uint64_t t0, dt;
        Resolver *r = NULL;
        uint32_t uid = 77;

        assert_non_null(p);
        snprintf(root, sizeof root, "%s", p->pw_name);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(resolver_user_uid(r, root, 5 * USEC_PER_SEC, 0, &uid), 0);
        assert_int_equal(uid, 0);
        assert_int_equal(resolver_user_uid(r, "gkdos-no-such-user-xyz", 5 * USEC_PER_SEC, 0, &uid),
                         -ENOENT);
        memset(name, 'a', RESOLVER_NAME_MAX);
        name[RESOLVER_NAME_MAX] = '\0';
        assert_int_equal(resolver_user_uid(r, name, 5 * USEC_PER_SEC, 0, &uid), -ENAMETOOLONG);
        name[RESOLVER_NAME_MAX - 1] = '\0'; /* the longest the table takes */
        assert_int_equal(resolver_user_uid(r, name, 5 * USEC_PER_SEC, 0, &uid), -ENOENT);
        /* A found uid is answered from memory, without waiting... */
        uid = 77;
        assert_int_equal(resolver_user_uid(r, root, 0, now_usec(CLOCK_MONOTONIC), &uid), 0);
        assert_int_equal(uid, 0);
        /* ...but "no such user" only by a lookup begun since the request
         * (a user created a moment ago): without waiting it is asked again,
         * waited for it comes. */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_uid(r, "gkdos-no-such-user-xyz", 0, 0, &uid), -ENOENT);
        assert_int_equal(resolver_user_uid(r, "gkdos-no-such-user-xyz", 0, t0, &uid), -EAGAIN);
        assert_int_equal(
                resolver_user_uid(r, "gkdos-no-such-user-xyz", 5 * USEC_PER_SEC, t0, &uid),
                -ENOENT);
        /* More names than the table holds: root, read longest ago, goes
         * and is asked for again. */
        for (int i = 0; i < RESOLVER_MAX_NAMES; i++) {
                snprintf(name, sizeof name, "gkdos-flood-%d", i);
                assert_int_equal(resolver_user_uid(r, name, 5 * USEC_PER_SEC, 0, &uid), -ENOENT);
        }
        assert_int_equal(resolver_user_uid(r, root, 0, 0, &uid), -EAGAIN);
        assert_int_equal(resolver_user_uid(r, root, 5 * USEC_PER_SEC, 0, &uid), 0);
        resolver_free(r);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 300 * USEC_PER_MSEC, &r), 0);
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_uid(r, root, 20 * USEC_PER_MSEC, 0, &uid), -EAGAIN);
        dt = now_usec(CLOCK_MONOTONIC) - t0;
        assert_true(dt >= 20 * USEC_PER_MSEC && dt < 200 * USEC_PER_MSEC);
        /* Within the quiet period, another new name does not wait. */
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_uid(r, "gkdos-no-such-user-xyz", 20 * USEC_PER_MSEC, 0, &uid),
                         -EAGAIN);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 15 * USEC_PER_MSEC);
        uid = 77;
        while (resolver_user_uid(r, root, 0, 0, &uid) == -EAGAIN) {
                assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 10 * USEC_PER_SEC);
                usleep(10000);
        }
        assert_int_equal(uid, 0);
        resolver_free(r);
}

/* Texts name a user by login name, or "uid N" while the directory has not
 * answered (never a NULL for printf's %s: an alert once read "released by
 * (null)"). */
static void test_daemon_user_text(void **state)
{
        struct passwd *p = getpwuid(0);
        Daemon d = {0};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);

        assert_non_null(p);
        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 300 * USEC_PER_MSEC, &d.resolver), 0);
        assert_null(daemon_user_name(&d, 0));
        assert_string_equal(daemon_user_text(&d, 0), "uid 0");
        assert_string_equal(daemon_user_text(&d, 4000999999u), "uid 4000999999");
        while (!daemon_user_name(&d, 0)) {
                assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 10 * USEC_PER_SEC);
                usleep(10000);
        }
        assert_string_equal(daemon_user_text(&d, 0), p->pw_name);
        resolver_free(d.resolver);
}

/* uid → groups through the resolver (per-user limits): root's groups as
 * getgrouplist gives them, the primary first; no such uid is -ENOENT; with
 * a slow directory (300 ms a lookup) the loop gets -EAGAIN at once, the
 * generation moves when the answer comes, and reads after it answer from
 * memory. */
static void test_resolver_user_groups(void **state)
{
        struct passwd *p = getpwuid(0);
        gid_t want[256];
        int n_want = 256;
        uint32_t *gids = NULL;
        size_t n = 0;
        uint64_t t0, g0;
        Resolver *r = NULL;

        assert_non_null(p);
        assert_true(getgrouplist(p->pw_name, p->pw_gid, want, &n_want) >= 0);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 0, &r), 0);
        g0 = resolver_groups_generation(r);
        assert_int_equal(resolver_user_groups(r, 0, 5 * USEC_PER_SEC, &gids, &n), 0);
        assert_true(resolver_groups_generation(r) != g0);
        assert_true(n >= 1);
        assert_int_equal(gids[0], p->pw_gid);
        for (int i = 0; i < n_want; i++) {
                bool found = false;

                for (size_t j = 0; j < n; j++)
                        found = found || gids[j] == want[i];
                assert_true(found);
        }
        free(gids);
        gids = NULL;
        assert_int_equal(resolver_user_groups(r, 4000999999u, 5 * USEC_PER_SEC, &gids, &n),
                         -ENOENT);
        assert_null(gids);
        resolver_free(r);

        assert_int_equal(resolver_new(60 * USEC_PER_SEC, 300 * USEC_PER_MSEC, &r), 0);
        g0 = resolver_groups_generation(r);
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_groups(r, 0, 0, &gids, &n), -EAGAIN);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 50 * USEC_PER_MSEC);
        while (resolver_groups_generation(r) == g0) {
                assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 10 * USEC_PER_SEC);
                usleep(10000);
        }
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(resolver_user_groups(r, 0, 0, &gids, &n), 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 50 * USEC_PER_MSEC);
        assert_int_equal(gids[0], p->pw_gid);
        free(gids);
        resolver_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ratelimit),
                cmocka_unit_test(test_subid_parse),
                cmocka_unit_test(test_subid_person),
                cmocka_unit_test(test_resolver_answers),
                cmocka_unit_test(test_resolver_never_blocks),
                cmocka_unit_test(test_resolver_user_names),
                cmocka_unit_test(test_resolver_user_uids),
                cmocka_unit_test(test_daemon_user_text),
                cmocka_unit_test(test_resolver_user_groups),
        };

        return cmocka_run_group_tests_name("dos", tests, NULL, NULL);
}
