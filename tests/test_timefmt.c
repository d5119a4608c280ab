/* test_timefmt.c -- Check suite for timefmt.c: known epoch values, every
 * accepted spelling, every reject case, and fixed-seed property tests that
 * compare the calendar against a slow year-by-year reference and round-trip
 * format -> parse. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define DAY_MS 86400000LL

/* Parses s under hint and asserts it gives want. */
#define ASSERT_PARSE(s, hint, want)                                           \
    do {                                                                      \
        int64_t got_ = -12345;                                                \
        int rc_ = timefmt_parse((s), strlen(s), (hint), &got_);               \
        ck_assert_msg(rc_ == LS_OK, "\"%s\" (hint %d): rc %d", (s), (hint), rc_); \
        ck_assert_msg(got_ == (int64_t)(want), "\"%s\" (hint %d): got %lld want %lld", \
                      (s), (hint), (long long)got_, (long long)(want));      \
    } while (0)

/* Asserts s is rejected with LS_EPARSE and *out is left alone. */
#define ASSERT_REJECT(s, hint)                                                \
    do {                                                                      \
        int64_t got_ = -12345;                                                \
        int rc_ = timefmt_parse((s), strlen(s), (hint), &got_);               \
        ck_assert_msg(rc_ == LS_EPARSE, "\"%s\" (hint %d): rc %d, got %lld",  \
                      (s), (hint), rc_, (long long)got_);                     \
        ck_assert_int_eq(got_, -12345);                                       \
    } while (0)

/* splitmix64: a seeded generator whose state lives with the caller. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t rng_range(uint64_t *state, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static int ref_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int ref_mdays(int y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && ref_leap(y) ? 29 : len[m - 1];
}

/* Days from 1970-01-01, the slow way: whole years, then whole months. */
static int64_t ref_days(int y, int m, int d)
{
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += ref_leap(yy) ? 366 : 365;
    for (int yy = y; yy < 1970; yy++)
        days -= ref_leap(yy) ? 366 : 365;
    for (int mm = 1; mm < m; mm++)
        days += ref_mdays(y, mm);
    return days + d - 1;
}

/* ------------------------------------------------------------------ */

START_TEST(known_epochs)
{
    ASSERT_PARSE("2015-06-02T05:02:12Z", TIMEFMT_AUTO, 1433221332000LL);
    ASSERT_PARSE("2000-01-01", TIMEFMT_AUTO, 946684800000LL);
    ASSERT_PARSE("1970-01-01", TIMEFMT_AUTO, 0);
    ASSERT_PARSE("1970-01-01T00:00:00Z", TIMEFMT_ISO, 0);
    ASSERT_PARSE("2016-02-29", TIMEFMT_AUTO, 1456704000000LL);
    ASSERT_PARSE("2016-03-01", TIMEFMT_AUTO, 1456704000000LL + DAY_MS);
    ASSERT_PARSE("2000-02-29", TIMEFMT_AUTO, 951782400000LL);
    ASSERT_PARSE("1969-12-31T23:59:59Z", TIMEFMT_AUTO, -1000);
    ASSERT_PARSE("1900-01-01", TIMEFMT_AUTO, -2208988800000LL);
    ASSERT_PARSE("0000-01-01", TIMEFMT_AUTO, TIMEFMT_MIN_MS);
    ASSERT_PARSE("9999-12-31T23:59:59.999Z", TIMEFMT_AUTO, TIMEFMT_MAX_MS);
    ASSERT_PARSE("2038-01-19T03:14:08Z", TIMEFMT_AUTO, 2147483648000LL);
}
END_TEST

START_TEST(iso_spellings)
{
    const int64_t t = 1433221332000LL; /* 2015-06-02T05:02:12Z */
    ASSERT_PARSE("2015-06-02T05:02:12", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02t05:02:12z", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12 UTC", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12UTC", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12 utc", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12 GMT", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 05:02:12 Z", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T05:02:12.345Z", TIMEFMT_AUTO, t + 345);
    ASSERT_PARSE("2015-06-02T05:02:12,345Z", TIMEFMT_AUTO, t + 345);
    ASSERT_PARSE("2015-06-02T05:02:12.3Z", TIMEFMT_AUTO, t + 300);
    ASSERT_PARSE("2015-06-02T05:02:12.34Z", TIMEFMT_AUTO, t + 340);
    ASSERT_PARSE("2015-06-02T05:02:12.345999999Z", TIMEFMT_AUTO, t + 345);
    ASSERT_PARSE("2015-06-02T05:02Z", TIMEFMT_AUTO, t - 12000);
    ASSERT_PARSE("2015-06-02", TIMEFMT_ISO, 1433203200000LL);
    ASSERT_PARSE("20150602", TIMEFMT_AUTO, 1433203200000LL);
    ASSERT_PARSE("20150602", TIMEFMT_ISO, 1433203200000LL);
    ASSERT_PARSE("19970101", TIMEFMT_AUTO, 852076800000LL);
    ASSERT_PARSE("2019-10-01 00:00:00 UTC", TIMEFMT_AUTO, 1569888000000LL);
    /* Leap second folds into the next second. */
    ASSERT_PARSE("2016-12-31T23:59:60Z", TIMEFMT_AUTO, 1483228800000LL);
}
END_TEST

START_TEST(iso_offsets)
{
    const int64_t t = 1433221332345LL; /* 2015-06-02T05:02:12.345Z */
    ASSERT_PARSE("2015-06-02T07:02:12.345+02:00", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T07:02:12.345+0200", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T07:02:12.345+02", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02 07:02:12.345 +02:00", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T00:32:12.345-04:30", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T05:02:12.345-00:00", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2015-06-02T05:02:12.345+00:00", TIMEFMT_AUTO, t);
    /* Offsets that cross a day, a year and the epoch. */
    ASSERT_PARSE("2015-06-01T23:02:12.345-06:00", TIMEFMT_AUTO, t);
    ASSERT_PARSE("2016-01-01T01:00:00+02:00", TIMEFMT_AUTO, 1451602800000LL);
    ASSERT_PARSE("1970-01-01T00:00:00+00:01", TIMEFMT_AUTO, -60000);
    ASSERT_PARSE("2015-06-02T05:02:12+23:59", TIMEFMT_AUTO,
                 1433221332000LL - (23 * 3600 + 59 * 60) * 1000LL);
}
END_TEST

START_TEST(epoch_numbers)
{
    ASSERT_PARSE("1700000000", TIMEFMT_AUTO, 1700000000000LL);
    ASSERT_PARSE("1700000000.5", TIMEFMT_AUTO, 1700000000500LL);
    ASSERT_PARSE("1700000000.123456", TIMEFMT_AUTO, 1700000000123LL);
    ASSERT_PARSE("1700000000123", TIMEFMT_AUTO, 1700000000123LL);
    ASSERT_PARSE("1700000000123.9", TIMEFMT_AUTO, 1700000000123LL);
    ASSERT_PARSE("0", TIMEFMT_AUTO, 0);
    ASSERT_PARSE("000", TIMEFMT_AUTO, 0);
    ASSERT_PARSE("-86400", TIMEFMT_AUTO, -DAY_MS);
    ASSERT_PARSE("-1.5", TIMEFMT_AUTO, -1500);
    /* The AUTO threshold, on both sides and both signs. */
    ASSERT_PARSE("99999999999", TIMEFMT_AUTO, 99999999999000LL);
    ASSERT_PARSE("100000000000", TIMEFMT_AUTO, 100000000000LL);
    ASSERT_PARSE("-62167219200", TIMEFMT_AUTO, TIMEFMT_MIN_MS);
    ASSERT_PARSE("-100000000000", TIMEFMT_AUTO, -100000000000LL);
    /* Forced units. */
    ASSERT_PARSE("1700000000", TIMEFMT_MILLIS, 1700000000LL);
    ASSERT_PARSE("100000000000", TIMEFMT_SECONDS, 100000000000000LL);
    ASSERT_PARSE("20150602", TIMEFMT_SECONDS, 20150602000LL);
    ASSERT_PARSE("20150602", TIMEFMT_MILLIS, 20150602LL);
    /* Nine digits are not a basic date. */
    ASSERT_PARSE("201506021", TIMEFMT_AUTO, 201506021000LL);
    /* Range edges. */
    ASSERT_PARSE("253402300799999", TIMEFMT_MILLIS, TIMEFMT_MAX_MS);
    ASSERT_PARSE("-62167219200", TIMEFMT_SECONDS, TIMEFMT_MIN_MS);
}
END_TEST

START_TEST(length_is_respected)
{
    int64_t ms = 0;
    const char *s = "2015-06-02T05:02:12Zjunk";
    ck_assert_int_eq(timefmt_parse(s, 20, TIMEFMT_AUTO, &ms), LS_OK);
    ck_assert_int_eq(ms, 1433221332000LL);
    ck_assert_int_eq(timefmt_parse(s, 10, TIMEFMT_AUTO, &ms), LS_OK);
    ck_assert_int_eq(ms, 1433203200000LL);
    ck_assert_int_eq(timefmt_parse("17000000009", 10, TIMEFMT_AUTO, &ms), LS_OK);
    ck_assert_int_eq(ms, 1700000000000LL);
    /* A NUL inside the given length is junk. */
    ck_assert_int_eq(timefmt_parse("2015-06-02\0", 11, TIMEFMT_AUTO, &ms), LS_EPARSE);
    ck_assert_int_eq(timefmt_parse("17\0", 3, TIMEFMT_AUTO, &ms), LS_EPARSE);
}
END_TEST

START_TEST(rejects)
{
    static const char *const bad[] = {
        /* empty and garbage */
        "", " ", "abc", "-", "--1", "+5", "1e9", "0x10", "1,5", ".5", "5.",
        "1700000000x", " 1700000000", "1700000000 ", "1700000000.5.5",
        "NaN", "inf",
        /* overflow */
        "99999999999999999999", "9223372036854775807", "-9223372036854775808",
        "253402300800000", "-62167219200001", "-99999999999", "1000000000000000000000000",
        /* calendar */
        "2015-13-01", "2015-00-10", "2015-06-32", "2015-06-00", "2015-02-30",
        "2015-02-29", "1900-02-29", "2015-04-31", "20151302", "20150631",
        "20150230", "00000000",
        /* shape */
        "2015-6-2", "2015-06-2", "15-06-02", "2015/06/02", "2015-06", "2015-0602",
        "201506-02", "2015-06-02T", "2015-06-02T05", "2015-06-02T05:02:",
        "2015-06-02T5:02:12", "2015-06-02T05:02:12.", "2015-06-02T05:02:12.Z",
        "2015-06-02X05:02:12", "2015-06-02  05:02:12", "20150602T050212Z",
        "20150602 05:02:12", "2015-06-02Z", "2015-06-02 UTC",
        "2015-06-02 ", " 2015-06-02", "2015-06-02T05:02:12 ",
        /* times */
        "2015-06-02T25:00:00Z", "2015-06-02T24:00:00Z", "2015-06-02T05:60:00Z",
        "2015-06-02T05:02:61Z", "2015-06-02T99:99:99",
        /* zones */
        "2015-06-02T05:02:12+25:00", "2015-06-02T05:02:12+24:00",
        "2015-06-02T05:02:12+02:60", "2015-06-02T05:02:12+2",
        "2015-06-02T05:02:12+02:0", "2015-06-02T05:02:12+020",
        "2015-06-02T05:02:12+02:00:00", "2015-06-02T05:02:12+", "2015-06-02T05:02:12ZZ",
        "2015-06-02T05:02:12Zjunk", "2015-06-02T05:02:12 PST",
        "2015-06-02T05:02:12 UT", "2015-06-02T05:02:12  UTC",
        "2015-06-02T05:02:12 UTC ", "2015-06-02T05:02:12+02:00 ",
        /* offsets that leave the range */
        "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01",
        "9999-12-31T23:59:60Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_REJECT(bad[i], TIMEFMT_AUTO);
}
END_TEST

START_TEST(hint_forces_grammar)
{
    int64_t ms = 0;
    ASSERT_REJECT("1700000000", TIMEFMT_ISO);
    ASSERT_REJECT("2015-06-02", TIMEFMT_SECONDS);
    ASSERT_REJECT("2015-06-02", TIMEFMT_MILLIS);
    ASSERT_REJECT("1700000000000", TIMEFMT_SECONDS); /* year 55840 */
    ASSERT_REJECT("-1", TIMEFMT_ISO);
    ck_assert_int_eq(timefmt_parse("1", 1, 42, &ms), LS_EINVAL);
    ck_assert_int_eq(timefmt_parse("1", 1, -1, &ms), LS_EINVAL);
    ck_assert_int_eq(timefmt_parse(NULL, 0, TIMEFMT_AUTO, &ms), LS_EINVAL);
    ck_assert_int_eq(timefmt_parse("1", 1, TIMEFMT_AUTO, NULL), LS_EINVAL);
}
END_TEST

/* Every date through parse against the slow reference calendar. */
START_TEST(calendar_matches_reference)
{
    uint64_t rng = 20150602;
    char buf[64];
    for (int i = 0; i < 5000; i++) {
        int y = (int)rng_range(&rng, 0, 9999);
        int m = (int)rng_range(&rng, 1, 12);
        int d = (int)rng_range(&rng, 1, ref_mdays(y, m));
        int64_t want = ref_days(y, m, d) * DAY_MS;
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
        ASSERT_PARSE(buf, TIMEFMT_AUTO, want);
        snprintf(buf, sizeof buf, "%04d%02d%02d", y, m, d);
        ASSERT_PARSE(buf, TIMEFMT_AUTO, want);
    }
    /* Every day of 1999..2001 (a 400-year leap year) and of 1899..1901. */
    for (int y = 1899; y <= 2001; y += (y == 1901 ? 98 : 1)) {
        for (int m = 1; m <= 12; m++) {
            for (int d = 1; d <= ref_mdays(y, m); d++) {
                snprintf(buf, sizeof buf, "%04d-%02d-%02dT12:34:56Z", y, m, d);
                ASSERT_PARSE(buf, TIMEFMT_ISO,
                             ref_days(y, m, d) * DAY_MS + (12 * 3600 + 34 * 60 + 56) * 1000LL);
            }
            snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, ref_mdays(y, m) + 1);
            ASSERT_REJECT(buf, TIMEFMT_ISO);
        }
    }
}
END_TEST

/* Random times formatted then parsed back, and offsets applied. */
START_TEST(round_trip_property)
{
    uint64_t rng = 0x1eadc0de;
    char buf[TIMEFMT_ISO_BUFSZ];
    char zoned[64];
    for (int i = 0; i < 50000; i++) {
        int64_t ms = rng_range(&rng, TIMEFMT_MIN_MS, TIMEFMT_MAX_MS);
        int64_t back = 0;
        if (i % 2)
            ms -= ((ms % 1000) + 1000) % 1000; /* whole seconds, floor */
        ck_assert_int_eq(timefmt_format_iso(ms, buf, sizeof buf), LS_OK);
        ck_assert_uint_eq(strlen(buf), ms % 1000 == 0 ? 20 : 24);
        ck_assert_int_eq(timefmt_parse(buf, strlen(buf), TIMEFMT_ISO, &back), LS_OK);
        ck_assert_int_eq(back, ms);
        ck_assert_int_eq(timefmt_parse(buf, strlen(buf), TIMEFMT_AUTO, &back), LS_OK);
        ck_assert_int_eq(back, ms);

        /* The same instant written in another zone. */
        int off_min = (int)rng_range(&rng, -(23 * 60 + 59), 23 * 60 + 59);
        int64_t local = ms + off_min * 60000LL;
        if (local < TIMEFMT_MIN_MS || local > TIMEFMT_MAX_MS)
            continue;
        ck_assert_int_eq(timefmt_format_iso(local, buf, sizeof buf), LS_OK);
        int a = off_min < 0 ? -off_min : off_min;
        snprintf(zoned, sizeof zoned, "%.*s%c%02d:%02d", (int)strlen(buf) - 1, buf,
                 off_min < 0 ? '-' : '+', a / 60, a % 60);
        ASSERT_PARSE(zoned, TIMEFMT_AUTO, ms);
    }
}
END_TEST

START_TEST(format_known)
{
    char buf[TIMEFMT_ISO_BUFSZ];
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1433221332000LL, "2015-06-02T05:02:12Z"},
        {1433221332345LL, "2015-06-02T05:02:12.345Z"},
        {1433221332005LL, "2015-06-02T05:02:12.005Z"},
        {946684800000LL, "2000-01-01T00:00:00Z"},
        {1456704000000LL, "2016-02-29T00:00:00Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-1000, "1969-12-31T23:59:59Z"},
        {-DAY_MS, "1969-12-31T00:00:00Z"},
        {TIMEFMT_MIN_MS, "0000-01-01T00:00:00Z"},
        {TIMEFMT_MAX_MS, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(timefmt_format_iso(cases[i].ms, buf, sizeof buf), LS_OK);
        ck_assert_str_eq(buf, cases[i].text);
    }
}
END_TEST

START_TEST(format_rejects)
{
    char buf[64];
    strcpy(buf, "xx");
    ck_assert_int_eq(timefmt_format_iso(TIMEFMT_MAX_MS + 1, buf, sizeof buf), LS_EINVAL);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(timefmt_format_iso(TIMEFMT_MIN_MS - 1, buf, sizeof buf), LS_EINVAL);
    ck_assert_int_eq(timefmt_format_iso(INT64_MIN, buf, sizeof buf), LS_EINVAL);
    ck_assert_int_eq(timefmt_format_iso(0, NULL, 64), LS_EINVAL);
    /* Exact fits and one byte short. */
    ck_assert_int_eq(timefmt_format_iso(0, buf, 21), LS_OK);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00Z");
    ck_assert_int_eq(timefmt_format_iso(0, buf, 20), LS_EINVAL);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(timefmt_format_iso(1, buf, 25), LS_OK);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.001Z");
    ck_assert_int_eq(timefmt_format_iso(1, buf, 24), LS_EINVAL);
    ck_assert_int_eq(timefmt_format_iso(1, buf, 0), LS_EINVAL);
}
END_TEST

START_TEST(durations)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        {"500ms", 500}, {"30s", 30000}, {"5m", 300000}, {"2h", 7200000},
        {"7d", 7 * DAY_MS}, {"1.5d", 129600000}, {"90", 90000}, {"0", 0},
        {"0ms", 0}, {"1.5", 1500}, {"0.001", 1}, {"0.0009", 0}, {"1.5ms", 1},
        {"0.5h", 1800000}, {"2.25m", 135000}, {"1.0000000001d", DAY_MS},
        {"0.1234567891d", 10666666}, {"007s", 7000},
        {"106751991167d", 106751991167LL * DAY_MS},
        {"9223372036854775807ms", INT64_MAX},
    };
    static const char *const bad[] = {
        "", "-5s", "+5s", "5 s", " 5s", "5s ", "s", "ms", "5x", "5sec", "5M",
        "5S", "5ms5", ".5s", "5.s", "5..5s", "1e3", "abc", "5dd",
        "106751991168d", "9223372036854775808ms", "99999999999999999999",
    };
    int64_t ms;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms = -1;
        ck_assert_msg(timefmt_parse_duration(ok[i].text, &ms) == LS_OK, "%s", ok[i].text);
        ck_assert_msg(ms == ok[i].ms, "%s: got %lld", ok[i].text, (long long)ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = -1;
        ck_assert_msg(timefmt_parse_duration(bad[i], &ms) == LS_EPARSE, "%s", bad[i]);
        ck_assert_int_eq(ms, -1);
    }
    ck_assert_int_eq(timefmt_parse_duration(NULL, &ms), LS_EINVAL);
    ck_assert_int_eq(timefmt_parse_duration("5s", NULL), LS_EINVAL);
}
END_TEST

START_TEST(clocks)
{
    int64_t now = timefmt_now_ms();
    /* After 2020-01-01 and before 2100-01-01. */
    ck_assert_int_gt(now, 1577836800000LL);
    ck_assert_int_lt(now, 4102444800000LL);
    int64_t a = timefmt_mono_ns();
    int64_t b = timefmt_mono_ns();
    ck_assert_int_gt(a, 0);
    ck_assert_int_ge(b, a);
}
END_TEST

/* Birthdays and anniversaries: the next date on or after a day, by hand.
 * Day numbers: 2026-12-06 is 20793, 2027-01-03 is 20821, 2028-02-29 is
 * 21243 (days since 1970-01-01). */
START_TEST(next_dates)
{
    int64_t dec6 = timefmt_days_from_civil(2026, 12, 6);
    ck_assert_int_eq(dec6, 20793);
    ck_assert_int_eq(timefmt_next_date(dec6, 12, 6), dec6);          /* today */
    ck_assert_int_eq(timefmt_next_date(dec6, 12, 7), dec6 + 1);
    ck_assert_int_eq(timefmt_next_date(dec6, 1, 3), 20821);          /* across the new year */
    ck_assert_int_eq(timefmt_next_date(dec6, 12, 5), timefmt_days_from_civil(2027, 12, 5));
    /* 29 February: 28 February in 2027, itself in 2028 */
    ck_assert_int_eq(timefmt_next_date(dec6, 2, 29), timefmt_days_from_civil(2027, 2, 28));
    ck_assert_int_eq(timefmt_next_date(timefmt_days_from_civil(2027, 3, 1), 2, 29), 21243);
    ck_assert_int_eq(timefmt_days_until((int64_t)dec6 * 86400000 + 3600000, 12, 13), 7);
    ck_assert_int_eq(timefmt_days_until((int64_t)dec6 * 86400000 + 86399999, 12, 6), 0);
}
END_TEST

static Suite *timefmt_suite(void)
{
    Suite *s = suite_create("timefmt");
    TCase *parse = tcase_create("parse");
    TCase *format = tcase_create("format");
    TCase *misc = tcase_create("misc");

    tcase_add_test(parse, known_epochs);
    tcase_add_test(parse, iso_spellings);
    tcase_add_test(parse, iso_offsets);
    tcase_add_test(parse, epoch_numbers);
    tcase_add_test(parse, length_is_respected);
    tcase_add_test(parse, rejects);
    tcase_add_test(parse, hint_forces_grammar);
    tcase_add_test(parse, calendar_matches_reference);
    tcase_set_timeout(parse, 60);
    tcase_add_test(format, format_known);
    tcase_add_test(format, format_rejects);
    tcase_add_test(format, round_trip_property);
    tcase_set_timeout(format, 60);
    tcase_add_test(misc, durations);
    tcase_add_test(misc, clocks);
    tcase_add_test(misc, next_dates);
    suite_add_tcase(s, parse);
    suite_add_tcase(s, format);
    suite_add_tcase(s, misc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(timefmt_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
