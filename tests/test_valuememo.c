/* test_valuememo.c -- Check suite for the write txn's value memo
 * (valuememo.h).
 *
 * The one promise a memo makes is that it never answers wrong: a hit is
 * the value last put for the key.  Known cases (overwrite, drop, clear, a
 * value too big, a full arena, growth past the first slots), then a long
 * random sequence of puts, drops, gets and clears against a plain table,
 * with an arena small enough to fill, where every hit must equal the
 * table and, while the arena has room, every key the table knows must be
 * a hit.  Exits 1 on any failure. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "valuememo.h"

static int has(valuememo *m, const char *key, const char *want)
{
    const void *v;
    size_t n;
    if (!valuememo_get(m, key, strlen(key), &v, &n))
        return 0;
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_int_eq(memcmp(v, want, n), 0);
    return 1;
}

static void put(valuememo *m, const char *key, const char *val)
{
    valuememo_put(m, key, strlen(key), val, strlen(val));
}

START_TEST(a_value_put_is_read_back_until_dropped)
{
    valuememo m;
    valuememo_init(&m, 0);
    ck_assert(!has(&m, "a", "")); /* nothing yet, no slots yet */
    put(&m, "a", "one");
    put(&m, "b", "");
    ck_assert(has(&m, "a", "one"));
    ck_assert(has(&m, "b", "")); /* an empty value is a value */
    put(&m, "a", "two");
    ck_assert(has(&m, "a", "two"));
    valuememo_drop(&m, "a", 1);
    ck_assert(!has(&m, "a", ""));
    ck_assert(has(&m, "b", ""));
    valuememo_drop(&m, "zz", 2); /* unknown: nothing happens */
    put(&m, "a", "three");      /* a dropped key comes back */
    ck_assert(has(&m, "a", "three"));
    ck_assert_uint_eq(m.hits, 5);
    ck_assert_uint_eq(m.misses, 2);
    valuememo_clear(&m);
    ck_assert(!has(&m, "a", ""));
    ck_assert(!has(&m, "b", ""));
    put(&m, "b", "again");
    ck_assert(has(&m, "b", "again"));
    valuememo_free(&m);
    valuememo_free(&m); /* twice is harmless */
}
END_TEST

START_TEST(a_value_it_cannot_keep_forgets_the_old_one)
{
    static char big[VALUEMEMO_MAX_VALUE + 2];
    memset(big, 'x', sizeof big - 1);
    valuememo m;
    valuememo_init(&m, 0);
    put(&m, "k", "small");
    put(&m, "k", big); /* too big to keep: "small" must not be answered */
    ck_assert(!has(&m, "k", ""));
    big[VALUEMEMO_MAX_VALUE] = '\0'; /* the largest it keeps */
    put(&m, "k", big);
    ck_assert(has(&m, "k", big));
    valuememo_free(&m);

    valuememo_init(&m, 256); /* an arena of 256 bytes */
    put(&m, "k1", "first");
    put(&m, "k2", "second");
    char val[200];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    put(&m, "k1", val); /* does not fit: k1 forgotten, k2 kept */
    ck_assert(!has(&m, "k1", ""));
    ck_assert(has(&m, "k2", "second"));
    put(&m, "k3", val); /* a new key that does not fit is just not kept */
    ck_assert(!has(&m, "k3", ""));
    valuememo_clear(&m); /* the room comes back */
    put(&m, "k3", val);
    ck_assert(has(&m, "k3", val));
    valuememo_free(&m);
}
END_TEST

START_TEST(many_keys_survive_the_slots_growing)
{
    valuememo m;
    valuememo_init(&m, 0);
    char key[32], val[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "cust-%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        put(&m, key, val);
        if (i % 3 == 0)
            valuememo_drop(&m, key, strlen(key));
    }
    int bad = 0;
    for (int i = 0; i < 50000; i++) {
        const void *v;
        size_t n;
        snprintf(key, sizeof key, "cust-%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        int hit = valuememo_get(&m, key, strlen(key), &v, &n);
        if (hit != (i % 3 != 0) || (hit && (n != strlen(val) || memcmp(v, val, n) != 0)))
            bad++;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_ge(m.nslots, 2 * 33334); /* grown, half full at most */
    valuememo_free(&m);
}
END_TEST

#define KEYS 300
#define MAX_VAL 120

START_TEST(random_operations_never_answer_wrong)
{
    static uint8_t ref[KEYS][MAX_VAL];
    size_t ref_len[KEYS];
    int ref_has[KEYS] = {0};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    valuememo m;
    valuememo_init(&m, 24 * 1024); /* fills up every few hundred puts */
    int wrong = 0, missed_with_room = 0, full_seen = 0, clears = 0, fulls = 0;
    for (int step = 0; step < 200000; step++) {
        uint64_t r = tu_rng_next(&seed);
        int k = (int)(r % KEYS), op = (int)((r >> 20) % 100);
        char key[16];
        size_t klen = (size_t)snprintf(key, sizeof key, "id%d", k);
        if (op < 45) {
            size_t n = (size_t)(r >> 40) % MAX_VAL;
            for (size_t i = 0; i < n; i++)
                ref[k][i] = (uint8_t)tu_rng_next(&seed);
            ref_len[k] = n;
            ref_has[k] = 1;
            size_t before = m.len;
            valuememo_put(&m, key, klen, ref[k], n);
            if (m.len == before) { /* not kept: the arena is full */
                fulls += !full_seen;
                full_seen = 1;
            }
        } else if (op < 55) {
            ref_has[k] = 0;
            valuememo_drop(&m, key, klen);
        } else {
            const void *v;
            size_t n;
            int hit = valuememo_get(&m, key, klen, &v, &n);
            if (hit && (!ref_has[k] || n != ref_len[k] || memcmp(v, ref[k], n) != 0))
                wrong++;
            if (!hit && ref_has[k] && !full_seen)
                missed_with_room++;
        }
        if ((r >> 52) % 1500 == 0) { /* a new txn, every 1,500 steps or so */
            memset(ref_has, 0, sizeof ref_has);
            valuememo_clear(&m);
            full_seen = 0;
            clears++;
        }
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert_int_eq(missed_with_room, 0);
    ck_assert_uint_gt(m.hits, 10000);
    ck_assert_int_gt(clears, 50); /* both regimes were run through, many times */
    ck_assert_int_gt(fulls, 50);
    valuememo_free(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("valuememo");
    TCase *tc = tcase_create("valuememo");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_value_put_is_read_back_until_dropped);
    tcase_add_test(tc, a_value_it_cannot_keep_forgets_the_old_one);
    tcase_add_test(tc, many_keys_survive_the_slots_growing);
    tcase_add_test(tc, random_operations_never_answer_wrong);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
