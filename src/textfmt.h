/* textfmt.h -- exact, allocation-free stand-ins for the snprintf calls
 * that write reasons (segments.c, nextaction.c) and rescore's rows
 * (rescore.c): a bounded text builder and number appenders that give
 * printf's bytes for "%u", "%d", "%lld", "%.0f", "%.1f", "%.2f" and
 * "%.10g".
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

/* "00" .. "99": two digits a lookup. */
static const char textfmt_pairs[201] = "000102030405060708091011121314151617181920212223242526272829"
                                       "303132333435363738394041424344454647484950515253545556575859"
                                       "606162636465666768697071727374757677787980818283848586878889"
                                       "90919293949596979899";

/* Writes v < 10^8 as exactly 8 decimal digits at p. */
static inline void textfmt_digits8(char *p, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(p, textfmt_pairs + 2 * (hi / 100), 2);
    memcpy(p + 2, textfmt_pairs + 2 * (hi % 100), 2);
    memcpy(p + 4, textfmt_pairs + 2 * (lo / 100), 2);
    memcpy(p + 6, textfmt_pairs + 2 * (lo % 100), 2);
}

/* Bytes textfmt_g10 writes at most: "-", 11 digits, ".", 13 more digits. */
#define TEXTFMT_G10_MAX 32

#ifdef __SIZEOF_INT128__
/* round(a x 10^k), a finite, 0 < a < 2^53, 0 <= k <= 13, from the exact
 * binary value (ties to even, as printf rounds); 0 when it would not fit
 * in 64 bits.  a = mant x 2^e2, and mant x 10^k < 2^53 x 2^44 fits in 128
 * bits. */
static inline uint64_t textfmt_scaled(double a, int k)
{
    static const uint64_t pow10_of[14] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
                                          10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
                                          100000000000ull, 1000000000000ull, 10000000000000ull};
    uint64_t bits, mant;
    memcpy(&bits, &a, sizeof bits);
    int e2 = (int)((bits >> 52) & 0x7ff);
    mant = bits & ((1ULL << 52) - 1);
    if (e2)
        mant |= 1ULL << 52;
    else
        e2 = 1;
    e2 -= 1075;
    unsigned __int128 m = (unsigned __int128)mant * pow10_of[k], n;
    if (e2 >= 0)
        return 0; /* a >= 2^52: not asked for */
    int sh = -e2;
    if (sh >= 127)
        return 0;
    unsigned __int128 rest = m & (((unsigned __int128)1 << sh) - 1), half = (unsigned __int128)1 << (sh - 1);
    n = m >> sh;
    if (rest > half || (rest == half && (n & 1)))
        n++;
    return n >> 64 ? 0 : (uint64_t)n;
}
#endif

/* Writes v as "%.10g" does at p and returns the end (p has room for
 * TEXTFMT_G10_MAX bytes, which may all be written: past the end,
 * scratch).  Without exponent (1e-4 <= |v| rounded <
 * 1e10) the digits come from the exact binary value: the exponent X of
 * v rounded to ten significant digits, then round(|v| x 10^(9 - X)),
 * ties to even, its trailing zeros dropped; whole numbers below 1e10 as
 * their digits.  Everything else (exponent form, zeros, NaN, infinities,
 * a compiler without 128-bit integers) is printf itself. */
static inline char *textfmt_g10(char *p, double v)
{
    double a = fabs(v);
    char *start = p;
    if (v != 0 && a < 1e10 && a == (double)(uint64_t)a) {
        if (v < 0)
            *p++ = '-';
        return textfmt_digits(p, (uint64_t)a);
    }
#ifdef __SIZEOF_INT128__
    if (a >= 1e-4 && a < 1e10) {
        /* a's decimal exponent from thresholds: 10^0 .. 10^9 are exact
         * doubles and the doubles nearest 10^-3 .. 10^-1 lie above them,
         * so a >= threshold exactly when a >= the power itself */
        static const double at_least[13] = {1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
        int x = -4;
        for (int i = 0; i < 13; i++)
            x += a >= at_least[i];
        uint64_t n = textfmt_scaled(a, 9 - x);
        if (n >= 10000000000ull && x < 9)
            n = textfmt_scaled(a, 9 - ++x);       /* rounds up to 10^(x+1): X is one more */
        if (n >= 1000000000ull && n < 10000000000ull) {
            /* the w digits end dig[16]; fixed 16-byte copies, the bytes
             * past the end of the number being scratch */
            char dig[32];
            memset(dig + 16, '0', 16);
            int dec = 9 - x, w = dec + 1 > 10 ? dec + 1 : 10, nint = w - dec, nfrac = dec;
            textfmt_digits8(dig + 8, (uint32_t)(n % 100000000u));
            textfmt_digits8(dig, (uint32_t)(n / 100000000u)); /* n / 10^8 < 100 */
            const char *digits = dig + 16 - w;
            while (nfrac > 0 && digits[nint + nfrac - 1] == '0')
                nfrac--;
            if (v < 0)
                *p++ = '-';
            memcpy(p, digits, 16);
            p += nint;
            if (nfrac) {
                *p = '.';
                memcpy(p + 1, digits + nint, 16);
                p += 1 + nfrac;
            }
            return p;
        }
    }
#endif
    int len = snprintf(start, TEXTFMT_G10_MAX, "%.10g", v);
    return start + (len > 0 ? (len < TEXTFMT_G10_MAX ? len : TEXTFMT_G10_MAX - 1) : 0);
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
