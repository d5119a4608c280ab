/* textfmt.h -- exact, allocation-free stand-ins for the snprintf calls
 * that write reasons (segments.c, nextaction.c): a bounded text builder
 * and number appenders that give printf's bytes for "%u", "%d", "%lld",
 * "%.0f", "%.1f" and "%.2f".
 *
 * A builder writes into the caller's buffer of capacity cap and keeps at
 * most cap - 1 bytes: what does not fit is dropped, exactly as snprintf
 * cuts its output, so "append the pieces, then textfmt_end" gives the same
 * bytes as one snprintf of the whole format.  The fixed-point appender is
 * exact for |v| < 1e15 (the binary value rounded to the nearest decimal,
 * ties to even, "-" on every negative value, -0.0 included, as glibc
 * prints it); NaN, infinities and larger values go to snprintf itself.
 * Header-only, like bytecur.h: these run for every reason of every score. */
#ifndef LS_TEXTFMT_H
#define LS_TEXTFMT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *p;    /* next byte */
    char *end;  /* buf + cap - 1: the place of the terminating NUL */
} textfmt;

/* Starts a builder over buf (cap >= 1). */
static inline textfmt textfmt_begin(char *buf, size_t cap)
{
    textfmt t = {buf, buf + cap - 1};
    return t;
}

/* Terminates the text; returns its length. */
static inline size_t textfmt_end(textfmt *t, char *buf)
{
    *t->p = '\0';
    return (size_t)(t->p - buf);
}

static inline void textfmt_mem(textfmt *t, const char *s, size_t n)
{
    size_t left = (size_t)(t->end - t->p);
    if (n > left)
        n = left;
    memcpy(t->p, s, n);
    t->p += n;
}

static inline void textfmt_str(textfmt *t, const char *s) { textfmt_mem(t, s, strlen(s)); }

/* A string literal, its length known at compile time. */
#define textfmt_lit(t, s) textfmt_mem((t), "" s, sizeof(s) - 1)

static inline void textfmt_char(textfmt *t, char c)
{
    if (t->p < t->end)
        *t->p++ = c;
}

/* Writes the decimal digits of v at p (at most 20 bytes); returns the end. */
static inline char *textfmt_digits(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* "%u", "%llu". */
static inline void textfmt_uint(textfmt *t, uint64_t v)
{
    char tmp[20];
    textfmt_mem(t, tmp, (size_t)(textfmt_digits(tmp, v) - tmp));
}

/* "%d", "%lld". */
static inline void textfmt_int(textfmt *t, int64_t v)
{
    char tmp[21], *p = tmp;
    if (v < 0)
        *p++ = '-';
    p = textfmt_digits(p, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    textfmt_mem(t, tmp, (size_t)(p - tmp));
}

/* Writes v as "%.Nf" does for N = digits (0, 1 or 2) at p and returns
 * the end (at most 21 bytes), or NULL, writing nothing, for NaN,
 * infinities and |v| >= 1e15.  n = |v| x 10^N rounded to an integer,
 * from the exact binary value: mant x 10^N < 2^60 and, for |v| < 1e15,
 * n < 10^17 < 2^64. */
static inline char *textfmt_fixed_fast(char *p, double v, int digits)
{
    static const uint64_t scale_of[3] = {1, 10, 100};
    uint64_t bits, mant, n, scale = scale_of[digits];
    int exp2;
    if (!(fabs(v) < 1e15))
        return NULL;
    memcpy(&bits, &v, sizeof bits);
    exp2 = (int)((bits >> 52) & 0x7ff);
    mant = bits & ((1ULL << 52) - 1);
    if (exp2)
        mant |= 1ULL << 52;
    else
        exp2 = 1;                  /* subnormal */
    exp2 -= 1075;                  /* |v| = mant x 2^exp2 */
    mant *= scale;
    if (exp2 >= 0) {
        n = mant << exp2;
    } else if (exp2 <= -64) {
        n = 0;                     /* mant x 10^N < 2^60: below 1/16 */
    } else {
        int sh = -exp2;
        uint64_t rest = mant & ((1ULL << sh) - 1), half = 1ULL << (sh - 1);
        n = mant >> sh;
        if (rest > half || (rest == half && (n & 1)))
            n++;
    }
    if (bits >> 63)
        *p++ = '-';
    p = textfmt_digits(p, n / scale);
    if (digits > 0) {
        uint64_t frac = n % scale;
        *p++ = '.';
        if (digits == 2)
            *p++ = (char)('0' + frac / 10);
        *p++ = (char)('0' + frac % 10);
    }
    return p;
}

/* "%.0f", "%.1f", "%.2f" (digits 0, 1, 2). */
static inline void textfmt_fixed(textfmt *t, double v, int digits)
{
    char tmp[24], *e = textfmt_fixed_fast(tmp, v, digits);
    if (e) {
        textfmt_mem(t, tmp, (size_t)(e - tmp));
        return;
    }
    /* NaN, inf, huge: printf itself, into what is left (its NUL lands at
     * most on end, which textfmt_end overwrites anyway) */
    size_t left = (size_t)(t->end - t->p);
    int n = snprintf(t->p, left + 1, "%.*f", digits, v);
    if (n > 0)
        t->p += (size_t)n < left ? (size_t)n : left;
}

#endif
