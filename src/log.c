/* log.c -- logfmt lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "leadscore/error.h"
#include "timefmt.h"

/* The process's log level: written once at start-up, read everywhere. */
static atomic_int current = LOG_LEVEL_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level level) { atomic_store(&current, (int)level); }
log_level log_get_level(void) { return (log_level)atomic_load_explicit(&current, memory_order_relaxed); }

int log_parse_level(const char *name, log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0) { /* DEBUG as debug, as `sync = OFF` reads */
            *out = (log_level)i;
            return LS_OK;
        }
    return LS_EINVAL;
}

/* ---- the escaping formatter ---- */

typedef struct {
    char *p;
    size_t len, cap; /* cap: usable bytes, the NUL and the truncation suffix excluded */
    int full;        /* something did not fit: the line is cut */
    int open;        /* inside a quote this formatter opened for a bare value */
} lbuf;

#define TRUNC_SUFFIX "\" truncated=true" /* the longest ending: a closing quote and the marker */

static void put(lbuf *b, const char *s, size_t n)
{
    if (b->full)
        return;
    if (n > b->cap - b->len) {
        n = b->cap - b->len;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* not inside a UTF-8 sequence */
        b->full = 1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* All of s or nothing (an escape sequence is never cut). */
static void put_whole(lbuf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - b->len) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void putc1(lbuf *b, char c) { put(b, &c, 1); }

/* Whether a bare value must be quoted. */
static int needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

/* The n bytes of s, escaped for the inside of a quoted value. */
static void put_escaped(lbuf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t len = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c != '"' && c != '\\') {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            len = 6;
        }
        put_whole(b, esc, len);
    }
    put(b, s + run, n - run);
}

/* The conversions are rebuilt from the caller's format, itself checked
 * by the compiler (log_write's format attribute). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
size_t log_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    lbuf b = {buf, 0, cap - sizeof TRUNC_SUFFIX, 0, 0};
    int quoted = 0; /* inside a "…" of the format */
    const char *f = fmt;
    while (*f && !b.full) {
        if (*f != '%') {
            putc1(&b, *f);
            if (!b.full && *f == '"')
                quoted = !quoted;
            f++;
            continue;
        }
        if (f[1] == '%') {
            putc1(&b, '%');
            f += 2;
            continue;
        }
        /* one conversion: %[flags][width][.precision][length]conv */
        char spec[32];
        size_t sl = 0;
        int prec = -1, exact = 0; /* exact: `.*`, a byte count (an id may hold NUL bytes) */
        spec[sl++] = *f++;
        while (*f && strchr("-+ #0'", *f) && sl < 8)
            spec[sl++] = *f++;
        if (*f == '*') {
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%d", va_arg(ap, int));
            f++;
        } else {
            while (*f >= '0' && *f <= '9' && sl < 16)
                spec[sl++] = *f++;
        }
        if (*f == '.') {
            spec[sl++] = *f++;
            if (*f == '*') {
                prec = va_arg(ap, int);
                exact = prec >= 0;
                sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%d", prec);
                f++;
            } else {
                prec = 0;
                while (*f >= '0' && *f <= '9' && sl < 24) {
                    prec = prec * 10 + (*f - '0');
                    spec[sl++] = *f++;
                }
            }
        }
        int lng = 0; /* 1 l, 2 ll, 3 z, 4 j, 5 t, 6 L, -1 h, -2 hh */
        for (; *f && strchr("hlzjtL", *f) && sl < 28; spec[sl++] = *f++) {
            switch (*f) {
            case 'h': lng = lng == -1 ? -2 : -1; break;
            case 'l': lng = lng == 1 ? 2 : 1; break;
            case 'z': lng = 3; break;
            case 'j': lng = 4; break;
            case 't': lng = 5; break;
            case 'L': lng = 6; break;
            }
        }
        char conv = *f;
        if (!conv)
            break;
        f++;
        spec[sl++] = conv;
        spec[sl] = '\0';
        char tmp[128];
        int n = 0;
        switch (conv) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "";
            size_t len = exact ? (size_t)prec : prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
            if (quoted) {
                put_escaped(&b, s, len);
            } else if (needs_quotes(s, len)) {
                putc1(&b, '"');
                b.open = !b.full;
                put_escaped(&b, s, len);
                putc1(&b, '"');
                b.open = b.open && b.full;
            } else {
                put(&b, s, len);
            }
            continue;
        }
        case 'd': case 'i': case 'u': case 'o': case 'x': case 'X':
            if (lng == 2)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, long long));
            else if (lng == 1)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, long));
            else if (lng == 3)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, size_t));
            else if (lng == 4)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, intmax_t));
            else if (lng == 5)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, ptrdiff_t));
            else
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, int));
            break;
        case 'c': {
            char ch = (char)va_arg(ap, int);
            if (quoted)
                put_escaped(&b, &ch, 1);
            else if (needs_quotes(&ch, 1)) {
                putc1(&b, '"');
                b.open = !b.full;
                put_escaped(&b, &ch, 1);
                putc1(&b, '"');
                b.open = b.open && b.full;
            } else
                putc1(&b, ch);
            continue;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A':
            if (lng == 6)
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, long double));
            else
                n = snprintf(tmp, sizeof tmp, spec, va_arg(ap, double));
            break;
        case 'p':
            n = snprintf(tmp, sizeof tmp, "%p", va_arg(ap, void *));
            break;
        case 'n':
            (void)va_arg(ap, void *); /* not supported: nothing written */
            continue;
        default: /* unknown conversion: written as text */
            put(&b, spec, sl);
            continue;
        }
        if (n > 0)
            put(&b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
    }
    if (b.full) {
        if (quoted || b.open) /* close the value that was cut */
            b.p[b.len++] = '"';
        memcpy(b.p + b.len, " truncated=true", sizeof " truncated=true" - 1);
        b.len += sizeof " truncated=true" - 1;
    }
    b.p[b.len] = '\0';
    return b.len;
}
#pragma GCC diagnostic pop

size_t log_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = log_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void log_write(log_level level, const char *event, const char *fmt, ...)
{
    char when[32], line[LOG_LINE_MAX + 2];
    va_list ap;
    timefmt_format_iso(timefmt_now_ms(), when, sizeof when);
    int n = snprintf(line, sizeof line, "time=%s level=%s event=%s ", when, names[level], event);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n + 64 < LOG_LINE_MAX + 1)
        n += (int)log_vformat(line + n, LOG_LINE_MAX + 1 - (size_t)n, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr); /* one write per line: lines of threads do not interleave */
}
