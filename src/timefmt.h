/* timefmt.h -- reading and writing times: epochs, ISO 8601 and durations.
 *
 * Inside leadscore a time is an int64 count of milliseconds since the Unix
 * epoch, UTC.  This module turns the spellings found in imports and on the
 * command line ("1700000000", "1700000000123", "2015-06-02T05:02:12Z",
 * "2019-10-01 00:00:00 UTC", "20150602") into that number, writes it back
 * as RFC 3339, parses durations ("30s", "1.5d") and reads the clocks.
 *
 * Everything here is pure and thread-safe: no locale, no timezone database,
 * no timegm()/mktime()/strptime(); the calendar arithmetic is done in this
 * module on the proleptic Gregorian calendar.
 *
 * Range.  Every time this module parses or formats lies between
 * 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z inclusive
 * (TIMEFMT_MIN_MS .. TIMEFMT_MAX_MS); anything outside is an overflow and
 * is rejected, so whatever timefmt_parse() accepts timefmt_format_iso()
 * can write. */
#ifndef LS_TIMEFMT_H
#define LS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, in ms. */
#define TIMEFMT_MIN_MS (-62167219200000LL)
#define TIMEFMT_MAX_MS 253402300799999LL

/* Under TIMEFMT_AUTO a number whose integer part has magnitude >= this is
 * milliseconds, below it seconds.  1e11 s is in the year 5138, 1e11 ms is
 * 1973-03-03, so only millisecond stamps before March 1973 are misread. */
#define TIMEFMT_AUTO_MS_THRESHOLD 100000000000LL

/* Buffer size that always holds timefmt_format_iso() output and its NUL:
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" is 24 characters. */
#define TIMEFMT_ISO_BUFSZ 25

/* How timefmt_parse() reads its input (`--ts-format`). */
typedef enum {
    TIMEFMT_AUTO = 0, /* ISO if it looks like a date, else a number (see below) */
    TIMEFMT_SECONDS,  /* a number of seconds, whatever its size */
    TIMEFMT_MILLIS,   /* a number of milliseconds, whatever its size */
    TIMEFMT_ISO       /* an ISO 8601 / RFC 3339 date or date-time only */
} timefmt_hint;

/* Parses the len bytes at s (no NUL needed; a NUL inside is junk) into
 * epoch milliseconds.  Returns LS_OK and sets *out_ms; on failure *out_ms
 * is untouched and the result is LS_EINVAL (s or out_ms NULL, hint not a
 * timefmt_hint) or LS_EPARSE (anything else).  No whitespace is trimmed:
 * callers strip fields before parsing.
 *
 * Numbers: an optional '-', one or more digits, optionally '.' and one or
 * more digits ("1700000000", "1700000000.5", "-86400").  No '+', no
 * exponent.  Seconds keep three fraction digits, milliseconds none; the
 * rest are dropped (truncation toward zero).  Under TIMEFMT_AUTO the unit
 * follows TIMEFMT_AUTO_MS_THRESHOLD.
 *
 * Dates and times (TIMEFMT_ISO, or TIMEFMT_AUTO when the input starts with
 * four digits and '-', or is exactly eight digits):
 *   date   YYYY-MM-DD, or the basic form YYYYMMDD (date only, as in CDNOW)
 *   time   optional: 'T', 't' or ' ', then HH:MM, HH:MM:SS or
 *          HH:MM:SS followed by '.' or ',' and 1+ fraction digits (digits
 *          past the millisecond are dropped)
 *   zone   optional, only after a time, optionally preceded by one space:
 *          'Z', 'z', "UTC", "GMT" (any case), or +HH:MM, +HHMM, +HH (or
 *          '-'), offset hours 00-23 and minutes 00-59.
 * A date-time with no zone is UTC, as is a bare date (its midnight).
 * Checked: month 01-12, day within the month (leap years Gregorian), hour
 * 00-23, minute 00-59, second 00-60; a leap second :60 is folded into the
 * next second, as POSIX time does.  So under AUTO "20150602" is a date; use
 * TIMEFMT_SECONDS to read eight digits as seconds. */
int timefmt_parse(const char *s, size_t len, int hint, int64_t *out_ms);

/* Writes ms as RFC 3339 UTC, "2015-06-02T05:02:12.345Z", leaving out the
 * ".mmm" when ms % 1000 == 0, NUL-terminated, into buf (cap bytes; cap of
 * TIMEFMT_ISO_BUFSZ is always enough).  Returns LS_OK, or LS_EINVAL when
 * buf is NULL, the text and its NUL do not fit in cap, or ms is outside
 * TIMEFMT_MIN_MS..TIMEFMT_MAX_MS; on failure buf holds "" if cap > 0. */
int timefmt_format_iso(int64_t ms, char *buf, size_t cap);

/* Parses a NUL-terminated duration: digits, optionally '.' and digits,
 * then an optional unit "ms", "s", "m", "h" or "d" (lower case, no space);
 * no unit means seconds.  "500ms", "30s", "5m", "2h", "7d", "1.5d", "90".
 * The result is truncated to whole milliseconds ("1.5ms" is 1).  Returns
 * LS_OK and sets *out_ms; LS_EINVAL for NULL arguments; LS_EPARSE for
 * anything else, including signs, whitespace and int64 overflow. */
int timefmt_parse_duration(const char *s, int64_t *out_ms);

/* Wall-clock time (CLOCK_REALTIME) in epoch ms; 0 if the clock fails. */
int64_t timefmt_now_ms(void);

/* The UTC calendar date of ms: year, month 1..12, day 1..31.  Pure. */
void timefmt_civil(int64_t ms, int64_t *year, int *month, int *day);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t timefmt_days_from_civil(int64_t year, int month, int day);

/* The day number (days since 1970-01-01) of the next month/day on or
 * after day number `today`; 29 February falls on 28 February in other
 * years.  For birthdays and anniversaries. */
int64_t timefmt_next_date(int64_t today, int month, int day);

/* Days from now_ms's UTC day until the next month/day, 0 when it is
 * today (timefmt_next_date). */
int timefmt_days_until(int64_t now_ms, int month, int day);

/* Monotonic time (CLOCK_MONOTONIC) in ns from an arbitrary origin, for
 * measuring intervals; 0 if the clock fails. */
int64_t timefmt_mono_ns(void);

/* Sleeps ms milliseconds (less when a signal interrupts it). */
void timefmt_sleep_ms(int64_t ms);

#endif
