/* jsonout.c -- msgpack to JSON (through jansson) and to readable text
 * (see jsonout.h). */
#include "jsonout.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t jsonout_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Calls set(j, text, len) with s cleaned of invalid UTF-8 (see jsonout.h). */
static int with_clean(const char *s, size_t n, int (*set)(void *arg, const char *text, size_t len), void *arg)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (!s)
        return set(arg, "", 0);
    while (i < n) { /* the common case: valid, no copy */
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = jsonout_utf8_len(u + i, n - i);
        if (!l)
            break;
        i += l;
    }
    if (i == n)
        return set(arg, s, n);
    /* each bad byte (1 byte) becomes U+FFFD (3 bytes) */
    char *clean = malloc(3 * n + 1);
    if (!clean)
        return -1;
    memcpy(clean, s, i);
    size_t o = i;
    while (i < n) {
        size_t l = u[i] < 0x80 ? 1 : jsonout_utf8_len(u + i, n - i);
        if (l) {
            memcpy(clean + o, s + i, l);
            o += l;
            i += l;
        } else {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    int rc = set(arg, clean, o);
    free(clean);
    return rc;
}

static int make_string(void *arg, const char *text, size_t len)
{
    *(json_t **)arg = json_stringn_nocheck(text, len);
    return *(json_t **)arg ? 0 : -1;
}

static int set_string(void *arg, const char *text, size_t len)
{
    return json_string_setn_nocheck(arg, text, len);
}

json_t *jsonout_string(const char *s, size_t n)
{
    json_t *j = NULL;
    return with_clean(s, n, make_string, &j) == 0 ? j : NULL;
}

int jsonout_string_set(json_t *str, const char *s, size_t n)
{
    return with_clean(s, n, set_string, str);
}

/* 10^k for k = 0..20, exactly */
static const unsigned __int128 pow10_u128[21] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL,
    10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
    1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL, (unsigned __int128)10000000000000000000ULL * 10u};

/* Writes v (< 10^w) as exactly w digits, zero-padded, at p. */
static void digits32(char *p, uint32_t v, int w)
{
    while (w >= 2) {
        uint32_t d = v % 100;
        v /= 100;
        w -= 2;
        p[w] = (char)('0' + d / 10);
        p[w + 1] = (char)('0' + d % 10);
    }
    if (w)
        p[0] = (char)('0' + v);
}

size_t jsonout_real_text(char out[JSONOUT_REAL_MAX], double v)
{
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e10))
        return 0; /* (NaN, 0, and the exponent forms: not here) */
    /* v = m * 2^e exactly, m < 2^53, e in about -66 .. -19 here: from
     * the bits (a is normal here) */
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
    int e = (int)(bits >> 52 & 0x7ff) - 1075;
    if (e >= 0 || e < -120)
        return 0;
    /* the decimal exponent X of the first digit: 10^X <= a < 10^(X+1) */
    int x = 0;
    double p = 1.0;
    if (a >= 1.0) {
        while (x < 9 && a >= p * 10.0) {
            p *= 10.0;
            x++;
        }
    } else {
        static const double neg[] = {1e-1, 1e-2, 1e-3, 1e-4};
        x = -1;
        while (x > -4 && a < neg[-x - 1])
            x--;
    }
    /* q = round_half_even(a * 10^k) with k = 16 - X: 17 significant digits */
    int k = 16 - x;
    unsigned __int128 q, prod, rem, half;
    for (int tries = 0;; tries++) {
        if (k < 0 || k > 20 || tries > 2)
            return 0;
        prod = (unsigned __int128)m * pow10_u128[k]; /* < 2^53 * 10^20 < 2^120 */
        int sh = -e;
        q = prod >> sh;
        if (q < pow10_u128[16]) { /* the estimate of X was one too high */
            k++;
            x--;
            continue;
        }
        if (q >= pow10_u128[17]) {
            k--;
            x++;
            continue;
        }
        rem = prod - (q << sh);
        half = (unsigned __int128)1 << (sh - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        break;
    }
    if (q == pow10_u128[17]) { /* rounded up to the next power of ten */
        q = pow10_u128[16];
        x++;
    }
    if (x < -4 || x >= 17)
        return 0;
    /* %.17g in fixed notation: the digits, the point after X + 1 of them,
     * trailing zeros dropped; then ".0" when no point is left (as jansson) */
    uint64_t q64 = (uint64_t)q; /* 10^16 <= q64 < 10^17 */
    int nd = 17;
    if (q64 % 100000000u == 0) {
        q64 /= 100000000u;
        nd -= 8;
    }
    while (q64 % 10 == 0) {
        q64 /= 10;
        nd--;
    }
    char dig[17];
    if (nd > 8) {
        digits32(dig, (uint32_t)(q64 / 100000000u), nd - 8);
        digits32(dig + nd - 8, (uint32_t)(q64 % 100000000u), 8);
    } else {
        digits32(dig, (uint32_t)q64, nd);
    }
    size_t n = 0;
    if (v < 0)
        out[n++] = '-';
    if (x < 0) { /* "0." and -x - 1 zeros (x >= -4) */
        memcpy(out + n, "0.000", 5);
        n += (size_t)(1 - x);
        memcpy(out + n, dig, (size_t)nd);
        n += (size_t)nd;
    } else {
        size_t ip = (size_t)x + 1; /* digits before the point */
        if ((size_t)nd > ip) {
            memcpy(out + n, dig, ip);
            out[n + ip] = '.';
            memcpy(out + n + ip + 1, dig + ip, (size_t)nd - ip);
            n += (size_t)nd + 1;
        } else {
            memcpy(out + n, dig, (size_t)nd);
            memset(out + n + nd, '0', ip - (size_t)nd);
            memcpy(out + n + ip, ".0", 2);
            n += ip + 2;
        }
    }
    out[n] = '\0';
    return n;
}

json_t *jsonout_real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int jsonout_set(json_t *obj, const char *key, size_t key_len, json_t *value)
{
    if (!value)
        return -1;
    json_t *k = jsonout_string(key, key_len);
    if (!k) {
        json_decref(value);
        return -1;
    }
    int rc = json_object_setn_new_nocheck(obj, json_string_value(k), json_string_length(k), value);
    json_decref(k);
    return rc;
}

static json_t *hex(const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *t = malloc(2 * n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        t[2 * i] = digits[(unsigned char)p[i] >> 4];
        t[2 * i + 1] = digits[(unsigned char)p[i] & 15];
    }
    json_t *j = json_stringn_nocheck(t, 2 * n);
    free(t);
    return j;
}

json_t *jsonout_from_msgpack(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* json_int_t is 64-bit signed: larger values as the nearest double */
        return o->via.u64 <= (uint64_t)INT64_MAX ? json_integer((json_int_t)o->via.u64) : json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return jsonout_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return jsonout_string(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return hex(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT: return hex(o->via.ext.ptr, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = jsonout_from_msgpack(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *v = jsonout_from_msgpack(&o->via.map.ptr[i].val);
            int rc;
            if (k->type == MSGPACK_OBJECT_STR) {
                rc = jsonout_set(m, k->via.str.ptr, k->via.str.size, v);
            } else { /* a key that is no string: its JSON text */
                json_t *kj = jsonout_from_msgpack(k);
                char *text = kj ? json_dumps(kj, JSONOUT_FLAGS | JSON_ENCODE_ANY) : NULL;
                json_decref(kj);
                rc = text ? jsonout_set(m, text, strlen(text), v) : (json_decref(v), -1);
                free(text);
            }
            if (rc != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return json_null();
}

int jsonout_dump(FILE *out, const json_t *j)
{
    return json_dumpf(j, out, JSONOUT_FLAGS | JSON_ENCODE_ANY) == 0 ? 0 : -1;
}

int jsonout_json(FILE *out, const msgpack_object *o)
{
    json_t *j = jsonout_from_msgpack(o);
    int rc = j ? jsonout_dump(out, j) : -1;
    json_decref(j);
    return rc;
}

/* Empty containers print inline, as [] and {}. */
static int is_scalar(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_MAP)
        return o->via.map.size == 0;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        return o->via.array.size == 0;
    return 1;
}

static void scalar(FILE *out, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        fprintf(out, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        fprintf(out, "%.6g", o->via.f64);
    else if (o->type == MSGPACK_OBJECT_MAP)
        fputs("{}", out);
    else if (o->type == MSGPACK_OBJECT_ARRAY)
        fputs("[]", out);
    else
        jsonout_json(out, o);
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static void readable_at(FILE *out, const msgpack_object *o, int indent, int inline_first);

/* One "key: value" entry; when pad is 0 the indentation was already written. */
static void readable_entry(FILE *out, const msgpack_object *k, const msgpack_object *v, int indent, int pad)
{
    fprintf(out, "%*s", pad ? indent : 0, "");
    scalar(out, k);
    fputc(':', out);
    if (is_scalar(v)) {
        fputc(' ', out);
        scalar(out, v);
        fputc('\n', out);
    } else {
        fputc('\n', out);
        readable_at(out, v, indent + 2, 0);
    }
}

static void readable_at(FILE *out, const msgpack_object *o, int indent, int inline_first)
{
    int first = 1;
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (indent == 0 && (key_is(k, "ok") || key_is(k, "id")))
                continue; /* the envelope of a reply, not its content */
            readable_entry(out, k, &o->via.map.ptr[i].val, indent, !(first && inline_first));
            first = 0;
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            const msgpack_object *v = &o->via.array.ptr[i];
            fprintf(out, "%*s- ", indent, "");
            if (is_scalar(v)) {
                scalar(out, v);
                fputc('\n', out);
            } else {
                readable_at(out, v, indent + 2, 1);
            }
        }
    } else {
        fprintf(out, "%*s", indent, "");
        scalar(out, o);
        fputc('\n', out);
    }
}

void jsonout_readable(FILE *out, const msgpack_object *o, int indent)
{
    readable_at(out, o, indent, 0);
}
