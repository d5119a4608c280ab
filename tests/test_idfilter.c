/* test_idfilter.c -- Check suite for the filter of merged event ids
 * (idfilter.h).
 *
 * Its one promise is that it never says "not there" of a key it was given:
 * a claim trusts that answer instead of the event_ids table.  Checked on
 * keys of every length a store can hold (0 to 511 bytes, those that share
 * their first 8 or 16 bytes), then the false positives at the capacity it
 * was sized for against the rate its size promises, the size rounding,
 * and "no filter", which must send every claim on to the table. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "idfilter.h"
#include "leadscore/error.h"
#include "testutil.h"

/* Key k of a family: a UUID-shaped id, a short counter, or a long id
 * sharing a 300-byte prefix with its neighbours. */
static size_t key_of(int family, uint64_t k, char *buf, size_t cap)
{
    int n;
    if (family == 0)
        n = snprintf(buf, cap, "%08llx-%04llx-4%03llx-a%03llx-%012llx", (unsigned long long)(k * 2654435761u),
                     (unsigned long long)(k & 0xffff), (unsigned long long)(k % 4096),
                     (unsigned long long)(k % 3989), (unsigned long long)k);
    else if (family == 1)
        n = snprintf(buf, cap, "%llu", (unsigned long long)k);
    else
        n = snprintf(buf, cap, "%0300d/%llu", 7, (unsigned long long)k);
    return (size_t)n;
}

START_TEST(no_filter_sends_every_key_on)
{
    idfilter f;
    idfilter_init(&f);
    ck_assert_int_eq(idfilter_may_hold(&f, "x", 1), 1);
    ck_assert_int_eq(idfilter_may_hold(&f, "", 0), 1);
    idfilter_add(&f, "x", 1); /* nothing to add to */
    idfilter_prefetch(&f, "x", 1);
    ck_assert_uint_eq(idfilter_bytes(&f), 0);
    ck_assert_int_eq(idfilter_overfull(&f), 0);
    idfilter_free(&f);
    ck_assert_ptr_null(f.words);
}
END_TEST

START_TEST(every_key_added_is_held)
{
    enum { N = 60000 };
    char buf[600];
    idfilter f;
    ck_assert_int_eq(idfilter_make(&f, 3 * N), LS_OK);
    ck_assert_int_eq(idfilter_may_hold(&f, "never-added", 11), 0); /* empty: no bit set */
    for (int family = 0; family < 3; family++)
        for (uint64_t k = 0; k < N; k++) {
            size_t n = key_of(family, k, buf, sizeof buf);
            if (family == 1) { /* by its hash, as a merge adds */
                idfilter_prefetch_hash(&f, idfilter_hash(buf, n));
                idfilter_add_hash(&f, idfilter_hash(buf, n));
            } else {
                idfilter_add(&f, buf, n);
            }
        }
    for (size_t len = 0; len <= 511; len++) { /* each length, 0 to LMDB's key limit */
        memset(buf, 'k', len);
        idfilter_add(&f, buf, len);
    }
    for (int family = 0; family < 3; family++)
        for (uint64_t k = 0; k < N; k++) {
            size_t n = key_of(family, k, buf, sizeof buf);
            if (!idfilter_may_hold(&f, buf, n))
                ck_abort_msg("family %d key %llu was added but is not held", family, (unsigned long long)k);
        }
    for (size_t len = 0; len <= 511; len++) {
        memset(buf, 'k', len);
        ck_assert_msg(idfilter_may_hold(&f, buf, len), "%zu bytes of 'k' not held", len);
    }
    ck_assert_uint_eq(f.added, 3 * N + 512);
    ck_assert_int_eq(idfilter_overfull(&f), 1); /* 3N + 512 > 3N */
    idfilter_free(&f);
}
END_TEST

/* At its capacity, a blocked filter of >= 10 bits a key with 7 probes
 * answers "maybe" for about 1 % of keys it never saw (2 % at most); at a
 * tenth of it, almost never. */
START_TEST(false_positives_stay_at_the_rate_its_size_promises)
{
    enum { CAP = 200000, ASKED = 200000 };
    char buf[600];
    idfilter f;
    ck_assert_int_eq(idfilter_make(&f, CAP), LS_OK);
    for (uint64_t k = 0; k < CAP / 10; k++)
        idfilter_add(&f, buf, key_of(0, k, buf, sizeof buf));
    int fp = 0;
    for (uint64_t k = 0; k < ASKED; k++)
        fp += idfilter_may_hold(&f, buf, key_of(0, 1000000000ULL + k, buf, sizeof buf));
    ck_assert_int_lt(fp, ASKED / 2000); /* < 0.05 % */
    for (uint64_t k = CAP / 10; k < CAP; k++)
        idfilter_add(&f, buf, key_of(0, k, buf, sizeof buf));
    ck_assert_int_eq(idfilter_overfull(&f), 0); /* exactly at capacity */
    for (int family = 0; family < 3; family += 2) {
        fp = 0;
        for (uint64_t k = 0; k < ASKED; k++)
            fp += idfilter_may_hold(&f, buf, key_of(family, 2000000000ULL + k, buf, sizeof buf));
        ck_assert_msg(fp < ASKED / 50, "family %d: %d false positives in %d", family, fp, ASKED);
        ck_assert_msg(fp > 0, "family %d: no false positive at all: are the keys asked really hashed?", family);
    }
    idfilter_free(&f);
}
END_TEST

START_TEST(its_size_is_a_power_of_two_of_ten_bits_a_key)
{
    idfilter f;
    ck_assert_int_eq(idfilter_make(&f, 0), LS_OK); /* one block */
    ck_assert_uint_eq(idfilter_bytes(&f), 64);
    idfilter_free(&f);
    ck_assert_int_eq(idfilter_make(&f, 1u << 20), LS_OK); /* 1.25 MiB of bits, rounded up */
    ck_assert_uint_eq(idfilter_bytes(&f), 2u << 20);
    ck_assert_uint_eq(f.nblocks, (2u << 20) / 64);
    ck_assert_uint_eq(f.capacity, 1u << 20);
    idfilter_free(&f);
    ck_assert_int_eq(idfilter_make(&f, 100000), LS_OK); /* 125,000 bytes -> 128 KiB */
    ck_assert_uint_eq(idfilter_bytes(&f), 128u << 10);
    idfilter_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("idfilter");
    TCase *tc = tcase_create("idfilter");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, no_filter_sends_every_key_on);
    tcase_add_test(tc, every_key_added_is_held);
    tcase_add_test(tc, false_positives_stay_at_the_rate_its_size_promises);
    tcase_add_test(tc, its_size_is_a_power_of_two_of_ten_bits_a_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
