/* Unit tests for POINTER_SORT_DEFINE (src/basic/pointer-sort.h), the sort
 * of the status reply's processes in the daemon and in the command: every
 * array of up to 8 elements over 3 keys (so every pattern of ties), then
 * random arrays up to 2,000 elements, sorted, reversed and all equal;
 * each checked against a plain stable insertion sort, with the scratch
 * room exactly n / 2 (a sanitizer build catches a write past it). Every
 * array of 17 over 2 keys for the merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basic/pointer-sort.h"

typedef struct item {
        int key;
        int seq; /* position before sorting: ties must keep it */
} item;

static unsigned comparisons;

static inline bool item_before(const item *a, const item *b)
{
        comparisons++;
        return a->key < b->key;
}

POINTER_SORT_DEFINE(sort_items, item, item_before)

/* Sorts keys[0..n) with sort_items() and checks it against a stable
 * insertion sort of the same items. */
static void check(const int *keys, size_t n)
{
        item *items = malloc((n ? n : 1) * sizeof *items);
        const item **got = malloc((n ? n : 1) * sizeof *got), **want = malloc((n ? n : 1) * sizeof *want);
        const item **tmp = malloc((n / 2 ? n / 2 : 1) * sizeof *tmp);

        assert_non_null(items);
        assert_non_null(got);
        assert_non_null(want);
        assert_non_null(tmp);
        for (size_t i = 0; i < n; i++) {
                items[i] = (item){.key = keys[i], .seq = (int)i};
                got[i] = want[i] = &items[i];
        }
        for (size_t a = 1; a < n; a++) {
                const item *x = want[a];
                size_t b = a;

                for (; b > 0 && x->key < want[b - 1]->key; b--)
                        want[b] = want[b - 1];
                want[b] = x;
        }
        sort_items(got, tmp, n);
        for (size_t i = 0; i < n; i++) {
                assert_ptr_equal(got[i], want[i]);
                if (i > 0)
                        assert_true(got[i - 1]->key < got[i]->key ||
                                    (got[i - 1]->key == got[i]->key &&
                                     got[i - 1]->seq < got[i]->seq));
        }
        free(items);
        free(got);
        free(want);
        free(tmp);
}

static void test_every_small_array(void **state)
{
        int keys[8];

        (void)state;
        for (size_t n = 0; n <= 8; n++) {
                size_t total = 1;

                for (size_t i = 0; i < n; i++)
                        total *= 3;
                for (size_t code = 0; code < total; code++) {
                        size_t c = code;

                        for (size_t i = 0; i < n; i++, c /= 3)
                                keys[i] = (int)(c % 3);
                        check(keys, n);
                }
        }
}

/* Every array of 17 elements over 2 keys: the smallest size that merges
 * (two halves of 8 and 9), every pattern of ties across the halves. */
static void test_every_merge_of_17(void **state)
{
        int keys[17];

        (void)state;
        for (unsigned code = 0; code < 1u << 17; code++) {
                for (size_t i = 0; i < 17; i++)
                        keys[i] = (int)(code >> i & 1);
                check(keys, 17);
        }
}

static void test_random_arrays(void **state)
{
        static int keys[2000];
        unsigned seed = 16;

        (void)state;
        for (size_t round = 0; round < 300; round++) {
                size_t n = (size_t)rand_r(&seed) % 2000;
                int range = 1 + rand_r(&seed) % (round % 3 == 0 ? 4 : 100000);

                for (size_t i = 0; i < n; i++)
                        keys[i] = rand_r(&seed) % range;
                check(keys, n);
        }
}

/* Sorted input, the daemon's rows as the command gets them: the halves
 * are never merged, about one comparison per element. */
static void test_sorted_reversed_equal(void **state)
{
        static int keys[1000];

        (void)state;
        for (size_t i = 0; i < 1000; i++)
                keys[i] = (int)i;
        comparisons = 0;
        check(keys, 1000);
        /* check() sorts once; the insertion sort beside it counts nothing. */
        assert_true(comparisons < 1100);
        for (size_t i = 0; i < 1000; i++)
                keys[i] = (int)(1000 - i);
        check(keys, 1000);
        for (size_t i = 0; i < 1000; i++)
                keys[i] = 7;
        comparisons = 0;
        check(keys, 1000);
        assert_true(comparisons < 1100);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_small_array),
                cmocka_unit_test(test_every_merge_of_17),
                cmocka_unit_test(test_random_arrays),
                cmocka_unit_test(test_sorted_reversed_equal),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
