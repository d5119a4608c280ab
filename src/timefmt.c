/* timefmt.c -- epoch, ISO 8601 and duration parsing and formatting (see
 * timefmt.h for the accepted grammar).
 *
 * The parsers walk the input with a small cursor that never reads past
 * the given length, so inputs need not be NUL-terminated.  The calendar is
 * the proleptic Gregorian one, computed with March-based years: counting
 * a year from 1 March puts the leap day last, so a day of the year follows
 * from the month by one linear formula (153 days per 5 months) and leap
 * years only matter per whole year and per 400-year era of 146097 days. */
#include "timefmt.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "leadscore/error.h"

#define MS_PER_DAY 86400000LL
/* Days from 0000-03-01 (day 0 of the March-based count) to 1970-01-01. */
#define EPOCH_DAY_OFFSET 719468LL
#define DAYS_PER_ERA 146097LL
/* Biggest integer part a timestamp may have before it is surely out of
 * range; keeps the digit loop and the seconds-to-ms product in int64. */
#define NUMBER_IPART_MAX ((uint64_t)TIMEFMT_MAX_MS)

/* ------------------------------------------------------------------ */
/* Calendar                                                            */
/* ------------------------------------------------------------------ */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char len[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Floor division for a positive divisor (C's '/' truncates toward 0). */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Days from 1970-01-01 to y-m-d; m 1..12, d 1..31, already validated. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t my = m > 2 ? y : y - 1;           /* March-based year */
    int64_t mon = m > 2 ? m - 3 : m + 9;      /* 0 = March .. 11 = February */
    int64_t era = floor_div(my, 400);
    int64_t yoe = my - era * 400;             /* year of era, 0..399 */
    int64_t doy = (153 * mon + 2) / 5 + d - 1; /* day of year, 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * DAYS_PER_ERA + doe - EPOCH_DAY_OFFSET;
}

/* Inverse of days_from_civil(). */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + EPOCH_DAY_OFFSET;
    int64_t era = floor_div(z, DAYS_PER_ERA);
    int64_t doe = z - era * DAYS_PER_ERA;     /* 0..146096 */
    /* Years of era: undo the leap days before dividing by 365. */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (yoe * 365 + yoe / 4 - yoe / 100);
    int64_t mon = (5 * doy + 2) / 153;        /* 0 = March */
    *d = (int)(doy - (153 * mon + 2) / 5 + 1);
    *m = (int)(mon < 10 ? mon + 3 : mon - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ------------------------------------------------------------------ */
/* Cursor                                                              */
/* ------------------------------------------------------------------ */

/* A read position; nothing at or past end is ever read. */
typedef struct {
    const char *p;
    const char *end;
} cursor;

static int at_end(const cursor *c)
{
    return c->p == c->end;
}

/* The next byte, or -1 at the end. */
static int peek(const cursor *c)
{
    return at_end(c) ? -1 : (unsigned char)*c->p;
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

/* Consumes ch if it is next; returns whether it did. */
static int accept(cursor *c, char ch)
{
    if (peek(c) != (unsigned char)ch)
        return 0;
    c->p++;
    return 1;
}

/* Consumes word (given in upper case) in any ASCII case; returns whether
 * it did. */
static int accept_word(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)c->p[i];
        if (ch >= 'a' && ch <= 'z')
            ch -= 'a' - 'A';
        if (ch != word[i])
            return 0;
    }
    c->p += n;
    return 1;
}

/* Reads exactly n digits (n <= 4) into *out; returns 0 if they are not
 * all there, consuming nothing. */
static int take_fixed(cursor *c, int n, int *out)
{
    int v = 0;
    if (c->end - c->p < n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((unsigned char)c->p[i]))
            return 0;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return 1;
}

/* Reads one or more fraction digits; *out_ms gets the first three as
 * milliseconds ("5" is 500), the rest are dropped.  0 if no digit. */
static int take_fraction_ms(cursor *c, int *out_ms)
{
    int ms = 0;
    int n = 0;
    for (; is_digit(peek(c)); c->p++, n++) {
        if (n < 3)
            ms = ms * 10 + (*c->p - '0');
    }
    if (n == 0)
        return 0;
    for (; n < 3; n++)
        ms *= 10;
    *out_ms = ms;
    return 1;
}

/* ------------------------------------------------------------------ */
/* ISO 8601                                                            */
/* ------------------------------------------------------------------ */

/* YYYY-MM-DD or YYYYMMDD; *basic says which.  Checks the calendar. */
static int take_date(cursor *c, int64_t *days, int *basic)
{
    int y, m, d;
    if (!take_fixed(c, 4, &y))
        return 0;
    *basic = !accept(c, '-');
    if (!take_fixed(c, 2, &m))
        return 0;
    if (!*basic && !accept(c, '-'))
        return 0;
    if (!take_fixed(c, 2, &d))
        return 0;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return 0;
    *days = days_from_civil(y, m, d);
    return 1;
}

/* HH:MM[:SS[(.|,)fraction]] into milliseconds of the day.  A leap second
 * (:60) gives 60 s, which the caller's sum carries into the next second. */
static int take_time(cursor *c, int64_t *ms_of_day)
{
    int hh, mi, ss = 0, frac = 0;
    if (!take_fixed(c, 2, &hh) || !accept(c, ':') || !take_fixed(c, 2, &mi))
        return 0;
    if (accept(c, ':')) {
        if (!take_fixed(c, 2, &ss))
            return 0;
        if ((accept(c, '.') || accept(c, ',')) && !take_fraction_ms(c, &frac))
            return 0;
    }
    if (hh > 23 || mi > 59 || ss > 60)
        return 0;
    *ms_of_day = ((hh * 60LL + mi) * 60 + ss) * 1000 + frac;
    return 1;
}

/* Optional zone after a time, into seconds east of UTC.  Does not check
 * that the input ends after it; the caller does. */
static int take_zone(cursor *c, int64_t *offset_s)
{
    int sign, hh, mm = 0;
    *offset_s = 0;
    if (at_end(c))
        return 1;
    accept(c, ' ');
    if (accept(c, 'Z') || accept(c, 'z') || accept_word(c, "UTC") ||
        accept_word(c, "GMT"))
        return 1;
    sign = accept(c, '+') ? 1 : accept(c, '-') ? -1 : 0;
    if (sign == 0 || !take_fixed(c, 2, &hh))
        return 0;
    if ((accept(c, ':') || !at_end(c)) && !take_fixed(c, 2, &mm))
        return 0;
    if (hh > 23 || mm > 59)
        return 0;
    *offset_s = sign * (hh * 3600LL + mm * 60);
    return 1;
}

static int in_range(int64_t ms)
{
    return ms >= TIMEFMT_MIN_MS && ms <= TIMEFMT_MAX_MS;
}

static int parse_iso(const char *s, size_t len, int64_t *out_ms)
{
    cursor c = {s, s + len};
    int64_t days, ms_of_day = 0, offset_s = 0, ms;
    int basic, sep;

    if (!take_date(&c, &days, &basic))
        return LS_EPARSE;
    if (!at_end(&c)) {
        sep = peek(&c);
        if (basic || (sep != 'T' && sep != 't' && sep != ' '))
            return LS_EPARSE;
        c.p++;
        if (!take_time(&c, &ms_of_day) || !take_zone(&c, &offset_s) ||
            !at_end(&c))
            return LS_EPARSE;
    }
    ms = days * MS_PER_DAY + ms_of_day - offset_s * 1000;
    if (!in_range(ms))
        return LS_EPARSE;
    *out_ms = ms;
    return LS_OK;
}

/* Whether AUTO should read s as a date: "DDDD-..." or exactly 8 digits. */
static int looks_like_date(const char *s, size_t len)
{
    size_t ndigits = 0;
    while (ndigits < len && is_digit((unsigned char)s[ndigits]))
        ndigits++;
    return (ndigits == 4 && len > 4 && s[4] == '-') ||
           (ndigits == 8 && len == 8);
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

/* A decimal as written: sign, integer part, first three fraction digits. */
typedef struct {
    int neg;
    uint64_t ipart;
    int frac_ms;
} decimal;

/* -?digits(.digits)? filling the whole input; integer parts above
 * NUMBER_IPART_MAX fail, as no unit can bring them into range. */
static int take_decimal(cursor *c, decimal *n)
{
    n->neg = accept(c, '-');
    n->ipart = 0;
    n->frac_ms = 0;
    if (!is_digit(peek(c)))
        return 0;
    for (; is_digit(peek(c)); c->p++) {
        n->ipart = n->ipart * 10 + (uint64_t)(*c->p - '0');
        if (n->ipart > NUMBER_IPART_MAX)
            return 0;
    }
    if (accept(c, '.') && !take_fraction_ms(c, &n->frac_ms))
        return 0;
    return at_end(c);
}

static int parse_number(const char *s, size_t len, int hint, int64_t *out_ms)
{
    cursor c = {s, s + len};
    decimal n;
    int64_t mag;
    int millis;

    if (!take_decimal(&c, &n))
        return LS_EPARSE;
    if (hint == TIMEFMT_AUTO)
        millis = n.ipart >= (uint64_t)TIMEFMT_AUTO_MS_THRESHOLD;
    else
        millis = hint == TIMEFMT_MILLIS;
    /* ipart <= NUMBER_IPART_MAX, so ipart * 1000 fits in int64. */
    mag = millis ? (int64_t)n.ipart : (int64_t)n.ipart * 1000 + n.frac_ms;
    mag = n.neg ? -mag : mag;
    if (!in_range(mag))
        return LS_EPARSE;
    *out_ms = mag;
    return LS_OK;
}

int timefmt_parse(const char *s, size_t len, int hint, int64_t *out_ms)
{
    if (s == NULL || out_ms == NULL)
        return LS_EINVAL;
    switch (hint) {
    case TIMEFMT_AUTO:
        if (looks_like_date(s, len))
            return parse_iso(s, len, out_ms);
        return parse_number(s, len, hint, out_ms);
    case TIMEFMT_SECONDS:
    case TIMEFMT_MILLIS:
        return parse_number(s, len, hint, out_ms);
    case TIMEFMT_ISO:
        return parse_iso(s, len, out_ms);
    default:
        return LS_EINVAL;
    }
}

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

/* Writes v as exactly n decimal digits (v >= 0); returns the end. */
static char *put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

int timefmt_format_iso(int64_t ms, char *buf, size_t cap)
{
    int64_t days, rem, y;
    int m, d, frac;
    size_t need;
    char *p;

    if (buf == NULL)
        return LS_EINVAL;
    if (cap > 0)
        buf[0] = '\0';
    if (!in_range(ms))
        return LS_EINVAL;
    days = floor_div(ms, MS_PER_DAY);
    rem = ms - days * MS_PER_DAY;          /* ms of the day, 0..86399999 */
    frac = (int)(rem % 1000);
    need = frac ? sizeof "YYYY-MM-DDTHH:MM:SS.mmmZ" : sizeof "YYYY-MM-DDTHH:MM:SSZ";
    if (cap < need)
        return LS_EINVAL;
    civil_from_days(days, &y, &m, &d);

    p = put_digits(buf, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600000, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60000 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem / 1000 % 60, 2);
    if (frac) {
        *p++ = '.';
        p = put_digits(p, frac, 3);
    }
    *p++ = 'Z';
    *p = '\0';
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Durations                                                           */
/* ------------------------------------------------------------------ */

static const struct {
    const char *suffix;
    int64_t ms;
} duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    {"d", 86400000},
};

/* Most fraction digits a duration keeps; the rest are dropped. */
#define DURATION_FRAC_DIGITS 9

int timefmt_parse_duration(const char *s, int64_t *out_ms)
{
    uint64_t ipart = 0, frac = 0, scale = 1;
    int64_t unit = 0, frac_ms;
    const char *p = s;

    if (s == NULL || out_ms == NULL)
        return LS_EINVAL;
    if (!is_digit((unsigned char)*p))
        return LS_EPARSE;
    for (; is_digit((unsigned char)*p); p++) {
        if (ipart > (uint64_t)INT64_MAX / 10)
            return LS_EPARSE;
        ipart = ipart * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        if (!is_digit((unsigned char)*++p))
            return LS_EPARSE;
        for (int n = 0; is_digit((unsigned char)*p); p++, n++) {
            if (n < DURATION_FRAC_DIGITS) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
        if (strcmp(p, duration_units[i].suffix) == 0)
            unit = duration_units[i].ms;
    }
    if (unit == 0)
        return LS_EPARSE;
    /* frac < 1e9 and unit <= 8.64e7, so the product fits in int64. */
    frac_ms = (int64_t)(frac * (uint64_t)unit / scale);
    if (ipart > (uint64_t)((INT64_MAX - frac_ms) / unit))
        return LS_EPARSE;
    *out_ms = (int64_t)ipart * unit + frac_ms;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t timefmt_mono_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void timefmt_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void timefmt_civil(int64_t ms, int64_t *year, int *month, int *day)
{
    civil_from_days(floor_div(ms, 86400000), year, month, day);
}

int64_t timefmt_days_from_civil(int64_t year, int month, int day)
{
    return days_from_civil(year, month, day);
}

int64_t timefmt_next_date(int64_t today, int month, int day)
{
    int64_t y;
    int m, d;
    timefmt_civil(today * 86400000LL, &y, &m, &d);
    for (int64_t year = y; year <= y + 1; year++) {
        int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        int dd = (month == 2 && day == 29 && !leap) ? 28 : day;
        int64_t at = timefmt_days_from_civil(year, month, dd);
        if (at >= today)
            return at;
    }
    return today + 366;
}

int timefmt_days_until(int64_t now_ms, int month, int day)
{
    int64_t y;
    int m, d;
    timefmt_civil(now_ms, &y, &m, &d);
    int64_t today = timefmt_days_from_civil(y, m, d);
    return (int)(timefmt_next_date(today, month, day) - today);
}
