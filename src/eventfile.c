/* eventfile.c -- shop events out of CSV and JSON Lines exports (see
 * eventfile.h for the contract).
 *
 * Three layers, one per banner below:
 *   sources   the raw text of each event field for one source row: a CSV
 *             record (csv.h) or one JSON Lines object (jansson), trimmed;
 *   rows      that text parsed into one ls_event and checked (types,
 *             numbers, times, the time window, event_validate);
 *   events    order lines folded into one purchase, event ids assigned.
 * A row is read ahead only while an order is being folded: the row that
 * ends the order waits in `pending` (its strings still point into the
 * source, which is not advanced until it has been handed out). */
#define _POSIX_C_SOURCE 200809L
#include "eventfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "csv.h"
#include "error_internal.h"
#include "timefmt.h"

#define JSONL_READ_BUF (256u * 1024u)
#define JSONL_MAX_LINE ((size_t)1 << 20)
/* Finished orders remembered to catch lines of one order that are not
 * consecutive (a direct-mapped cache of order-key hashes). */
#define RECENT_ORDERS 4096
/* Most distinct row contents remembered per ts run (see occurrence()). */
#define OCC_MAX_USED ((size_t)1 << 20)
#define NUMBUF 40

typedef struct {
    uint64_t h;       /* content hash */
    uint32_t gen;     /* ts run it belongs to */
    uint32_t count;   /* copies seen in that run */
} occ_slot;

/* An order being folded: owned copies of its strings. */
typedef struct {
    int open;
    ls_event ev;            /* the first line, then the sums */
    uint64_t first_line, last_line, nlines;
    uint64_t key;           /* hash of (type, customer, order_id) */
    int again;              /* the key was seen finishing earlier: not consecutive */
    char customer[EVENT_MAX_STR + 1], order_id[EVENT_MAX_STR + 1], session[EVENT_MAX_STR + 1];
    char product[EVENT_MAX_STR + 1], category[EVENT_MAX_STR + 1], event_id[EVENT_MAX_STR + 1];
    char id[40];            /* "order:<hex>" */
} order_fold;

struct eventfile {
    char *path;
    eventfile_options o;
    int jsonl;
    int fd;                 /* for offsets; owned unless it is stdin */
    int own_fd;
    int64_t now_ms, min_ts_ms;
    size_t max_str;

    /* CSV */
    csv_reader *csv;
    size_t hdr_fields;      /* 0 with no header */
    int col[EVENTFILE_NFIELDS]; /* column index of each field, -1 none */

    /* JSON Lines */
    gzFile gz;
    unsigned char *buf;
    size_t pos, end;
    int gz_eof;
    char *line;
    size_t line_cap;
    uint64_t lineno;
    json_t *obj;
    char jkey[EVENTFILE_NFIELDS][EVENT_MAX_STR + 1]; /* key of each field, "" none */
    char num[EVENTFILE_NFIELDS][NUMBUF];

    /* the current row: text of each field, NULL when absent */
    const char *val[EVENTFILE_NFIELDS];
    size_t vlen[EVENTFILE_NFIELDS];
    uint64_t row_line;

    /* folding */
    order_fold grp;
    int have_pending;
    ls_event pending;
    uint64_t pending_line;
    uint64_t recent[RECENT_ORDERS];

    /* identical-row disambiguation within a run of equal ts */
    occ_slot *occ;
    size_t occ_cap, occ_used;
    uint32_t occ_gen;
    int64_t run_ts;
    int run_open;
    char row_id[40];

    int status;             /* sticky fatal status */
    int ended;
    char fatal[600];
    char err[600];
    const char *kind;
    eventfile_stats st;
};

/* ------------------------------------------------------------------ */
/* Names, options and their parsers                                     */
/* ------------------------------------------------------------------ */

static const char *const field_names[EVENTFILE_NFIELDS] = {
#define EVENTFILE_FIELD_NAME(sym, name) name,
    EVENTFILE_FIELD_MAP(EVENTFILE_FIELD_NAME)
#undef EVENTFILE_FIELD_NAME
};

const char *eventfile_field_name(eventfile_field field)
{
    return (int)field >= 0 && field < EVENTFILE_NFIELDS ? field_names[field] : NULL;
}

static int field_lookup(const char *s, size_t len)
{
    for (int i = 0; i < EVENTFILE_NFIELDS; i++)
        if (strlen(field_names[i]) == len && memcmp(field_names[i], s, len) == 0)
            return i;
    return -1;
}

void eventfile_options_init(eventfile_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = EVENTFILE_AUTO;
    o->ts_format = TIMEFMT_AUTO;
    o->min_ts_ms = EVENT_MIN_TS_MS;
    o->max_str = EVENT_MAX_STR;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_blank((*s)[*len - 1]))
        (*len)--;
}

/* Calls fn(item, len) for each comma-separated item of spec, trimmed. */
typedef int (*item_fn)(void *arg, const char *item, size_t len, char *err, size_t errlen);

static int each_item(const char *spec, item_fn fn, void *arg, char *err, size_t errlen)
{
    if (!spec)
        return ls_fail(err, errlen, LS_EPARSE, "empty specification");
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &len);
        if (len) {
            int rc = fn(arg, item, len, err, errlen);
            if (rc)
                return rc;
        }
        if (!comma)
            return LS_OK;
        p = comma + 1;
    }
}

typedef struct {
    eventfile_map *map;
    unsigned seen; /* fields named in this spec */
} map_parse;

static int map_item(void *arg, const char *item, size_t len, char *err, size_t errlen)
{
    map_parse *mp = arg;
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not field=column or field=:constant", (int)len, item);
    const char *name = item, *src = eq + 1;
    size_t nlen = (size_t)(eq - item), slen = len - nlen - 1;
    trim(&name, &nlen);
    trim(&src, &slen);
    int f = field_lookup(name, nlen);
    if (f < 0)
        return ls_fail(err, errlen, LS_EPARSE,
                       "\"%.*s\" is not an event field (customer, type, ts, event_id, session, product, category, "
                       "price, quantity, value, discounted, rating, order_id, birthday)", (int)nlen, name);
    if (mp->seen & (1u << f))
        return ls_fail(err, errlen, LS_EPARSE, "field %s is mapped twice", field_names[f]);
    mp->seen |= 1u << f;
    eventfile_source source = EVENTFILE_SRC_COLUMN;
    if (slen == 0) {
        source = EVENTFILE_SRC_NONE;
    } else if (src[0] == ':') {
        source = EVENTFILE_SRC_CONST;
        src++;
        slen--;
    }
    if (slen > EVENT_MAX_STR)
        return ls_fail(err, errlen, LS_EPARSE, "%s: the %s is longer than %d bytes", field_names[f],
                       source == EVENTFILE_SRC_CONST ? "constant" : "column name", EVENT_MAX_STR);
    mp->map->field[f].source = source;
    memcpy(mp->map->field[f].text, src, slen);
    mp->map->field[f].text[slen] = '\0';
    return LS_OK;
}

int eventfile_parse_map(const char *spec, eventfile_map *map, char *err, size_t errlen)
{
    map_parse mp = {map, 0};
    if (!map)
        return ls_fail(err, errlen, LS_EINVAL, "no map");
    return each_item(spec, map_item, &mp, err, errlen);
}

static int types_item(void *arg, const char *item, size_t len, char *err, size_t errlen)
{
    eventfile_types *t = arg;
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not source_value=event_type", (int)len, item);
    const char *from = item, *to = eq + 1;
    size_t flen = (size_t)(eq - item), tlen = len - flen - 1;
    trim(&from, &flen);
    trim(&to, &tlen);
    event_type type;
    if (flen == 0 || flen >= EVENTFILE_MAX_NAME)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\": the source value must have 1 to %d bytes", (int)len, item,
                       EVENTFILE_MAX_NAME - 1);
    if (event_type_parse(to, tlen, &type) != LS_OK)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not an event type (page_view, product_view, search, "
                       "add_to_cart, remove_from_cart, checkout, purchase, refund, review, email_open, email_click, "
                       "sms_click, signup, referral, share, support_ticket, profile)", (int)tlen, to);
    size_t i = 0;
    while (i < t->n && !(strlen(t->entry[i].from) == flen && memcmp(t->entry[i].from, from, flen) == 0))
        i++;
    if (i == t->n) {
        if (t->n == EVENTFILE_MAX_TYPES)
            return ls_fail(err, errlen, LS_EPARSE, "more than %d type translations", EVENTFILE_MAX_TYPES);
        t->n++;
        memcpy(t->entry[i].from, from, flen);
        t->entry[i].from[flen] = '\0';
    }
    t->entry[i].to = type;
    return LS_OK;
}

int eventfile_parse_types(const char *spec, eventfile_types *types, char *err, size_t errlen)
{
    if (!types)
        return ls_fail(err, errlen, LS_EINVAL, "no types");
    return each_item(spec, types_item, types, err, errlen);
}

int eventfile_parse_ts_format(const char *word, int *hint)
{
    static const struct {
        const char *name;
        int hint;
    } words[] = {{"auto", TIMEFMT_AUTO}, {"seconds", TIMEFMT_SECONDS}, {"s", TIMEFMT_SECONDS},
                 {"millis", TIMEFMT_MILLIS}, {"ms", TIMEFMT_MILLIS}, {"iso", TIMEFMT_ISO}};
    for (size_t i = 0; word && i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(word, words[i].name) == 0) {
            *hint = words[i].hint;
            return LS_OK;
        }
    }
    return LS_EPARSE;
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

/* Writes at most 60 bytes of s, quoted, with control bytes as '?'. */
static const char *shown(char *buf, size_t cap, const char *s, size_t len)
{
    size_t n = 0, max = len > 60 ? 60 : len;
    if (cap < 8)
        return "";
    buf[n++] = '"';
    for (size_t i = 0; i < max && n + 5 < cap; i++)
        buf[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (max < len && n + 5 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

/* Reports a bad row at line: message "PATH:LINE: detail", static kind.
 * Returns EVENTFILE_BAD_ROW. */
__attribute__((format(printf, 4, 5)))
static int bad_row(eventfile *f, uint64_t line, const char *kind, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(f->err, sizeof f->err, "%s:%llu: %s", f->path, (unsigned long long)line, detail);
    f->kind = kind;
    return EVENTFILE_BAD_ROW;
}

/* Records a fatal failure (sticky) and returns status. */
__attribute__((format(printf, 3, 4)))
static int fatal(eventfile *f, int status, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(f->fatal, sizeof f->fatal, "%s: %s", f->path, detail);
    f->status = status;
    return status;
}

const char *eventfile_error(const eventfile *f)
{
    return f ? f->err : "";
}

const char *eventfile_error_kind(const eventfile *f)
{
    return f && f->kind ? f->kind : "";
}

void eventfile_get_stats(const eventfile *f, eventfile_stats *out)
{
    *out = f->st;
    if (f->fd >= 0) {
        off_t at = lseek(f->fd, 0, SEEK_CUR);
        if (at > 0)
            out->bytes_read = (uint64_t)at;
    }
    if (out->bytes_total && out->bytes_read > out->bytes_total)
        out->bytes_read = out->bytes_total;
}

const char *eventfile_path(const eventfile *f)
{
    return f ? f->path : "";
}

/* ------------------------------------------------------------------ */
/* Hashing (64-bit FNV-1a with a final avalanche)                      */
/* ------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* A tagged, length-prefixed string, so concatenations cannot collide. */
static uint64_t fnv_str(uint64_t h, char tag, const ls_str *s)
{
    uint32_t len = (uint32_t)s->len;
    h = fnv_bytes(h, &tag, 1);
    h = fnv_bytes(h, &len, sizeof len);
    return fnv_bytes(h, s->ptr, s->len);
}

static uint64_t fnv_u64(uint64_t h, char tag, uint64_t v)
{
    unsigned char b[9] = {(unsigned char)tag};
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i)); /* byte order fixed: ids are the same everywhere */
    return fnv_bytes(h, b, sizeof b);
}

static uint64_t fnv_double(uint64_t h, char tag, double d)
{
    uint64_t bits;
    d += 0.0; /* -0.0 -> 0.0 */
    memcpy(&bits, &d, sizeof bits);
    return fnv_u64(h, tag, bits);
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The content of a parsed event, as its id is derived from. */
static uint64_t event_hash(const ls_event *ev)
{
    uint64_t h = FNV_OFFSET;
    h = fnv_u64(h, 'y', (uint64_t)ev->type);
    h = fnv_str(h, 'c', &ev->customer);
    h = fnv_u64(h, 't', (uint64_t)ev->ts_ms);
    h = fnv_str(h, 's', &ev->session);
    h = fnv_str(h, 'p', &ev->product);
    h = fnv_str(h, 'g', &ev->category);
    h = fnv_str(h, 'o', &ev->order_id);
    if (ev->has & EVF_PRICE)
        h = fnv_double(h, 'P', ev->price);
    if (ev->has & EVF_QUANTITY)
        h = fnv_u64(h, 'Q', (uint64_t)ev->quantity);
    if (ev->has & EVF_VALUE)
        h = fnv_double(h, 'V', ev->value);
    if (ev->has & EVF_DISCOUNTED)
        h = fnv_u64(h, 'D', (uint64_t)ev->discounted);
    if (ev->has & EVF_RATING)
        h = fnv_u64(h, 'R', (uint64_t)ev->rating);
    if (ev->has & EVF_BIRTHDAY)
        h = fnv_u64(h, 'B', (uint64_t)ev->birthday_mmdd);
    return h;
}

static uint64_t order_key(event_type type, const ls_str *customer, const ls_str *order_id)
{
    uint64_t h = fnv_u64(FNV_OFFSET, 'y', (uint64_t)type);
    h = fnv_str(h, 'c', customer);
    return mix64(fnv_str(h, 'o', order_id));
}

/* ------------------------------------------------------------------ */
/* Sources: CSV                                                         */
/* ------------------------------------------------------------------ */

/* Column index for name in the header hdr: exact name, then ignoring case,
 * then a 1-based position.  -1 when none. */
static int find_column(const csv_row *hdr, const char *name)
{
    size_t nlen = strlen(name);
    for (int pass = 0; hdr && pass < 2; pass++) {
        for (size_t i = 0; i < hdr->nfields; i++) {
            const char *h = hdr->field[i];
            size_t hlen = hdr->len[i];
            trim(&h, &hlen);
            if (hlen == nlen && (pass == 0 ? memcmp(h, name, nlen) == 0 : strncasecmp(h, name, nlen) == 0))
                return (int)i;
        }
    }
    if (nlen == 0 || nlen > 9 || strspn(name, "0123456789") != nlen)
        return -1;
    long pos = strtol(name, NULL, 10);
    if (pos < 1 || (hdr && (size_t)pos > hdr->nfields))
        return -1;
    return (int)(pos - 1);
}

/* Lists the header's names into buf, for a message. */
static void list_columns(const csv_row *hdr, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < hdr->nfields && n + 8 < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s\"%.*s\"", i ? ", " : "", (int)(hdr->len[i] > 40 ? 40 : hdr->len[i]),
                         hdr->field[i]);
        if (w < 0 || (size_t)w >= cap - n) {
            buf[n] = '\0';
            break;
        }
        n += (size_t)w;
    }
}

static int open_csv(eventfile *f, char *err, size_t errlen)
{
    csv_options co = {.delimiter = f->o.delimiter, .whitespace = f->o.whitespace};
    int rc = csv_open_fd(&f->csv, f->fd, &co);
    if (rc)
        return ls_fail(err, errlen, rc, "%s: cannot read: %s", f->path, ls_strerror(rc));
    csv_row hdr = {0};
    const csv_row *h = NULL;
    if (!f->o.no_header) {
        rc = csv_next(f->csv, &hdr);
        if (rc < 0)
            return ls_fail(err, errlen, rc == LS_EIO ? LS_EIO : LS_EPARSE, "%s: %s%s", f->path, csv_error(f->csv),
                           rc == LS_EIO ? "" : " (read as CSV; for JSON Lines use --format jsonl)");
        if (rc == 0)
            return ls_fail(err, errlen, LS_EPARSE, "%s: the file is empty (a header row was expected; "
                           "use --no-header for a file without one)", f->path);
        h = &hdr;
        f->hdr_fields = hdr.nfields;
    }
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        const char *name = f->o.map.field[i].text;
        f->col[i] = -1;
        switch (f->o.map.field[i].source) {
        case EVENTFILE_SRC_AUTO:
            if (h)
                f->col[i] = find_column(h, field_names[i]);
            break;
        case EVENTFILE_SRC_COLUMN:
            f->col[i] = find_column(h, name);
            if (f->col[i] < 0) {
                char cols[300] = "";
                if (h)
                    list_columns(h, cols, sizeof cols);
                return ls_fail(err, errlen, LS_EPARSE, "%s: no column \"%s\" for %s (%s%s)", f->path, name,
                               field_names[i], h ? "the header has " : "with --no-header columns are 1, 2, ...",
                               cols);
            }
            break;
        default:
            break;
        }
    }
    static const int required[] = {EVENTFILE_F_CUSTOMER, EVENTFILE_F_TYPE, EVENTFILE_F_TS};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        int i = required[k];
        if (f->col[i] < 0 && f->o.map.field[i].source != EVENTFILE_SRC_CONST) {
            char cols[300] = "";
            if (h)
                list_columns(h, cols, sizeof cols);
            return ls_fail(err, errlen, LS_EPARSE, "%s: no column for %s: name it with --map %s=COLUMN%s (%s%s)",
                           f->path, field_names[i], field_names[i], i == EVENTFILE_F_TYPE ? " or --map type=:TYPE" : "",
                           h ? "the header has " : "with --no-header columns are 1, 2, ...", cols);
        }
    }
    return LS_OK;
}

/* Reads one CSV record into f->val[].  1, 0 at the end, BAD_ROW, < 0. */
static int csv_row_fields(eventfile *f)
{
    csv_row row;
    int rc = csv_next(f->csv, &row);
    if (rc == 0)
        return 0;
    if (rc < 0)
        return fatal(f, rc, "%s", csv_error(f->csv));
    f->st.rows++;
    f->row_line = row.line;
    if (f->hdr_fields && row.nfields != f->hdr_fields)
        return bad_row(f, row.line, "wrong number of fields", "the row has %zu fields, the header %zu",
                       row.nfields, f->hdr_fields);
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        int c = f->col[i];
        if (c < 0) {
            f->val[i] = NULL;
            continue;
        }
        if ((size_t)c >= row.nfields)
            return bad_row(f, row.line, "missing column", "no column %d for %s (the row has %zu fields)", c + 1,
                           field_names[i], row.nfields);
        f->val[i] = row.field[c];
        f->vlen[i] = row.len[c];
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Sources: JSON Lines                                                  */
/* ------------------------------------------------------------------ */

static int jl_fill(eventfile *f)
{
    if (f->gz_eof)
        return 0;
    if (f->pos > 0) {
        memmove(f->buf, f->buf + f->pos, f->end - f->pos);
        f->end -= f->pos;
        f->pos = 0;
    }
    int n = gzread(f->gz, f->buf + f->end, (unsigned)(JSONL_READ_BUF - f->end));
    if (n > 0) {
        f->end += (size_t)n;
        return n;
    }
    int errnum = Z_OK;
    const char *why = gzerror(f->gz, &errnum);
    if (n == 0 && errnum == Z_OK) {
        f->gz_eof = 1;
        return 0;
    }
    return fatal(f, LS_EIO, "line %llu: read error: %s", (unsigned long long)f->lineno + 1, why);
}

/* Appends n bytes to the line buffer, growing it up to JSONL_MAX_LINE + 1
 * (beyond that only the fact that the line is too long is kept). */
static int jl_append(eventfile *f, size_t *len, const unsigned char *p, size_t n)
{
    if (*len + n > JSONL_MAX_LINE) {
        *len = JSONL_MAX_LINE + 1;
        return LS_OK;
    }
    if (*len + n + 1 > f->line_cap) {
        size_t cap = f->line_cap ? f->line_cap : 4096;
        while (cap < *len + n + 1)
            cap *= 2;
        char *nl = realloc(f->line, cap);
        if (!nl)
            return fatal(f, LS_ENOMEM, "out of memory");
        f->line = nl;
        f->line_cap = cap;
    }
    memcpy(f->line + *len, p, n);
    *len += n;
    f->line[*len] = '\0';
    return LS_OK;
}

/* The next physical line into f->line (without its LF).  1, 0 at the end,
 * < 0 on a read error; *len is JSONL_MAX_LINE + 1 for a line too long. */
static int jl_getline(eventfile *f, size_t *len)
{
    *len = 0;
    int got = 0;
    for (;;) {
        if (f->pos == f->end) {
            int rc = jl_fill(f);
            if (rc < 0)
                return rc;
            if (rc == 0)
                return got;
        }
        if (f->lineno == 0 && !got && f->pos == 0 && f->end >= 3 && memcmp(f->buf, "\xEF\xBB\xBF", 3) == 0)
            f->pos = 3;
        unsigned char *start = f->buf + f->pos;
        unsigned char *nl = memchr(start, '\n', f->end - f->pos);
        size_t n = nl ? (size_t)(nl - start) : f->end - f->pos;
        got = 1;
        if (jl_append(f, len, start, n))
            return f->status;
        f->pos += n + (nl ? 1 : 0);
        if (nl)
            return 1;
    }
}

/* The text of a JSON value for field i (a number is formatted into
 * f->num[i]).  1 with text, 0 when absent (null), -1 for a container. */
static int json_text(eventfile *f, int i, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        f->val[i] = json_string_value(v);
        f->vlen[i] = json_string_length(v);
        return 1;
    case JSON_INTEGER:
        snprintf(f->num[i], NUMBUF, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(f->num[i], NUMBUF, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(f->num[i], NUMBUF, "true");
        break;
    case JSON_FALSE:
        snprintf(f->num[i], NUMBUF, "false");
        break;
    case JSON_NULL:
        return 0;
    default:
        return -1;
    }
    f->val[i] = f->num[i];
    f->vlen[i] = strlen(f->num[i]);
    return 1;
}

static int jsonl_row_fields(eventfile *f)
{
    size_t len;
    const char *s;
    json_decref(f->obj);
    f->obj = NULL;
    for (;;) {
        int rc = jl_getline(f, &len);
        if (rc <= 0)
            return rc;
        f->lineno++;
        s = f->line;
        if (len > JSONL_MAX_LINE) {
            f->st.rows++;
            return bad_row(f, f->lineno, "line too long", "the line is longer than %zu bytes", JSONL_MAX_LINE);
        }
        trim(&s, &len);
        if (len)
            break;
    }
    f->st.rows++;
    f->row_line = f->lineno;
    json_error_t je;
    f->obj = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!f->obj)
        return bad_row(f, f->lineno, "not JSON", "not JSON: %s (column %d)", je.text, je.column);
    if (!json_is_object(f->obj))
        return bad_row(f, f->lineno, "not a JSON object", "the line is not a JSON object");
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        f->val[i] = NULL;
        if (!f->jkey[i][0])
            continue;
        json_t *v = json_object_get(f->obj, f->jkey[i]);
        if (v && json_text(f, i, v) < 0)
            return bad_row(f, f->lineno, "field is not a string, number or boolean",
                           "\"%s\" (for %s) is not a string, number or boolean", f->jkey[i], field_names[i]);
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Rows: text -> checked ls_event                                       */
/* ------------------------------------------------------------------ */

/* A decimal number: [+-]digits[.digits][e[+-]digits]. */
static int parse_number(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf || strspn(s, "+-.0123456789eE") < len)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + len || errno == ERANGE || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

/* A whole number, also written "2.0". */
static int parse_whole(const char *s, size_t len, int64_t *out)
{
    double d;
    if (parse_number(s, len, &d) || d != floor(d) || fabs(d) > 9e15)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static int parse_bool(const char *s, size_t len, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "y", "t"}, *const no[] = {"false", "0", "no", "n", "f"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == len && strncasecmp(yes[i], s, len) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(no[i]) == len && strncasecmp(no[i], s, len) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_type(const eventfile *f, const char *s, size_t len, event_type *out)
{
    const eventfile_types *t = &f->o.types;
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->entry[i].from) == len && memcmp(t->entry[i].from, s, len) == 0) {
            *out = t->entry[i].to;
            return 0;
        }
    }
    return event_type_parse(s, len, out) == LS_OK ? 0 : -1;
}

/* Builds ev from f->val[] (trimmed here) and checks it.  1 or BAD_ROW. */
static int build_event(eventfile *f, ls_event *ev)
{
    char q[80];
    uint64_t line = f->row_line;
    const char **v = f->val;
    size_t *n = f->vlen;
    event_init(ev);
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        if (f->o.map.field[i].source == EVENTFILE_SRC_CONST) {
            v[i] = f->o.map.field[i].text;
            n[i] = strlen(v[i]);
        }
        if (v[i])
            trim(&v[i], &n[i]);
        if (v[i] && n[i] == 0)
            v[i] = NULL;
    }
    if (!v[EVENTFILE_F_CUSTOMER])
        return bad_row(f, line, "customer is missing", "customer is missing or empty");
    if (!v[EVENTFILE_F_TYPE])
        return bad_row(f, line, "type is missing", "type is missing or empty");
    if (!v[EVENTFILE_F_TS])
        return bad_row(f, line, "ts is missing", "ts is missing or empty");
    ev->customer = (ls_str){v[EVENTFILE_F_CUSTOMER], n[EVENTFILE_F_CUSTOMER]};
    if (parse_type(f, v[EVENTFILE_F_TYPE], n[EVENTFILE_F_TYPE], &ev->type))
        return bad_row(f, line, "unknown event type", "type %s is not an event type%s",
                       shown(q, sizeof q, v[EVENTFILE_F_TYPE], n[EVENTFILE_F_TYPE]),
                       f->o.types.n ? " after --types" : " (translate it with --types)");
    if (timefmt_parse(v[EVENTFILE_F_TS], n[EVENTFILE_F_TS], f->o.ts_format, &ev->ts_ms) != LS_OK)
        return bad_row(f, line, "ts is not a time", "ts %s is not a time (Unix seconds, ms or ISO 8601)",
                       shown(q, sizeof q, v[EVENTFILE_F_TS], n[EVENTFILE_F_TS]));
    ev->has |= EVF_TS;
    static const struct {
        int field;
        size_t off;
    } strs[] = {{EVENTFILE_F_EVENT_ID, offsetof(ls_event, event_id)}, {EVENTFILE_F_SESSION, offsetof(ls_event, session)},
                {EVENTFILE_F_PRODUCT, offsetof(ls_event, product)}, {EVENTFILE_F_CATEGORY, offsetof(ls_event, category)},
                {EVENTFILE_F_ORDER_ID, offsetof(ls_event, order_id)}};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        int i = strs[k].field;
        if (v[i])
            *(ls_str *)((char *)ev + strs[k].off) = (ls_str){v[i], n[i]};
    }
    int i = EVENTFILE_F_PRICE;
    if (v[i]) {
        if (parse_number(v[i], n[i], &ev->price))
            return bad_row(f, line, "price is not a number", "price %s is not a number", shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_PRICE;
    }
    i = EVENTFILE_F_VALUE;
    if (v[i]) {
        if (parse_number(v[i], n[i], &ev->value))
            return bad_row(f, line, "value is not a number", "value %s is not a number", shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_VALUE;
    }
    i = EVENTFILE_F_QUANTITY;
    if (v[i]) {
        if (parse_whole(v[i], n[i], &ev->quantity))
            return bad_row(f, line, "quantity is not a whole number", "quantity %s is not a whole number",
                           shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_QUANTITY;
    }
    i = EVENTFILE_F_RATING;
    if (v[i]) {
        int64_t r;
        if (parse_whole(v[i], n[i], &r) || r < -1000 || r > 1000)
            return bad_row(f, line, "rating is not a whole number", "rating %s is not a whole number",
                           shown(q, sizeof q, v[i], n[i]));
        ev->rating = (int)r;
        ev->has |= EVF_RATING;
    }
    i = EVENTFILE_F_DISCOUNTED;
    if (v[i]) {
        if (parse_bool(v[i], n[i], &ev->discounted))
            return bad_row(f, line, "discounted is not true or false", "discounted %s is not true or false",
                           shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_DISCOUNTED;
    }
    i = EVENTFILE_F_BIRTHDAY;
    if (v[i]) {
        if (event_parse_birthday(v[i], n[i], &ev->birthday_mmdd) != LS_OK)
            return bad_row(f, line, "birthday is not MM-DD", "birthday %s is not MM-DD", shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_BIRTHDAY;
    }
    return 1;
}

/* The time window, then every other rule of event_validate().
 *
 * Why not just event_validate(): its lower time bound is the service's
 * (2000-01-01) and this reader's is an option (CDNOW is 1997).  The window
 * is checked here with min_ts_ms; event_validate() then sees the time
 * clamped into its own window for that one call, so every non-time rule
 * (strings, money, quantities, ratings) still has exactly one home, event.c.
 * ts is always present here, so validate never substitutes "now" for it. */
static int check_event(eventfile *f, ls_event *ev, uint64_t line)
{
    char t[TIMEFMT_ISO_BUFSZ];
    if (ev->ts_ms < f->min_ts_ms) {
        if (timefmt_format_iso(ev->ts_ms, t, sizeof t) != LS_OK)
            snprintf(t, sizeof t, "%lld", (long long)ev->ts_ms);
        if (f->min_ts_ms == EVENT_MIN_TS_MS)
            return bad_row(f, line, "ts is too old", "ts %s is before 2000-01-01 (--allow-old accepts older times)", t);
        return bad_row(f, line, "ts is too old", "ts %s is before the earliest time accepted", t);
    }
    if (ev->ts_ms > f->now_ms + EVENT_MAX_FUTURE_MS) {
        if (timefmt_format_iso(ev->ts_ms, t, sizeof t) != LS_OK)
            snprintf(t, sizeof t, "%lld", (long long)ev->ts_ms);
        return bad_row(f, line, "ts is in the future", "ts %s is more than one day in the future", t);
    }
    int64_t ts = ev->ts_ms;
    const char *why = NULL;
    if (ev->ts_ms < EVENT_MIN_TS_MS)
        ev->ts_ms = EVENT_MIN_TS_MS;
    int rc = event_validate(ev, f->now_ms, f->max_str, &why);
    ev->ts_ms = ts;
    if (rc != LS_OK)
        return bad_row(f, line, why ? why : "invalid event", "%s", why ? why : "invalid event");
    return 1;
}

/* Reads and checks the next source row.  1, 0 at the end, BAD_ROW, < 0. */
static int read_row(eventfile *f, ls_event *ev)
{
    int rc = f->jsonl ? jsonl_row_fields(f) : csv_row_fields(f);
    if (rc != 1)
        return rc;
    if ((rc = build_event(f, ev)) != 1)
        return rc;
    return check_event(f, ev, f->row_line);
}

/* ------------------------------------------------------------------ */
/* Events: order folding and ids                                        */
/* ------------------------------------------------------------------ */

static void copy_str(char *dst, ls_str *s)
{
    if (s->len)
        memcpy(dst, s->ptr, s->len);
    dst[s->len] = '\0';
    s->ptr = dst;
}

static int foldable(const eventfile *f, const ls_event *ev)
{
    return !f->o.no_fold && ev->order_id.len && (ev->type == EV_PURCHASE || ev->type == EV_REFUND);
}

static int same_str(const ls_str *a, const ls_str *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static int continues(const order_fold *g, const ls_event *ev)
{
    return ev->type == g->ev.type && same_str(&ev->customer, &g->ev.customer) && same_str(&ev->order_id, &g->ev.order_id);
}

static void start_order(eventfile *f, const ls_event *ev, uint64_t line)
{
    order_fold *g = &f->grp;
    g->open = 1;
    g->ev = *ev;
    g->first_line = g->last_line = line;
    g->nlines = 1;
    copy_str(g->customer, &g->ev.customer);
    copy_str(g->order_id, &g->ev.order_id);
    copy_str(g->session, &g->ev.session);
    copy_str(g->product, &g->ev.product);
    copy_str(g->category, &g->ev.category);
    copy_str(g->event_id, &g->ev.event_id);
    g->key = order_key(ev->type, &ev->customer, &ev->order_id);
    g->again = f->recent[g->key % RECENT_ORDERS] == g->key;
}

/* Folds one more line (validated: value filled in) into the order. */
static void add_line(eventfile *f, const ls_event *ev, uint64_t line)
{
    order_fold *g = &f->grp;
    g->ev.value += ev->value;
    g->ev.quantity += ev->quantity;
    if (ev->ts_ms < g->ev.ts_ms)
        g->ev.ts_ms = ev->ts_ms;
    if (ev->discounted)
        g->ev.discounted = 1;
    g->ev.has |= ev->has & EVF_DISCOUNTED;
    g->last_line = line;
    g->nlines++;
    f->st.folded_rows++;
}

/* Hands out the finished order (1) or reports it (BAD_ROW). */
static int emit_order(eventfile *f, ls_event *out)
{
    order_fold *g = &f->grp;
    char q[80], c[80];
    g->open = 0;
    f->recent[g->key % RECENT_ORDERS] = g->key;
    if (g->again && !g->ev.event_id.len)
        return bad_row(f, g->first_line, "order lines not consecutive",
                       "%llu line(s) of order %s of customer %s come after other rows than that order's other lines "
                       "(sort the file by order): skipped, they would repeat the order's event id",
                       (unsigned long long)g->nlines, shown(q, sizeof q, g->ev.order_id.ptr, g->ev.order_id.len),
                       shown(c, sizeof c, g->ev.customer.ptr, g->ev.customer.len));
    if (g->nlines > 1) {
        g->ev.has &= ~(unsigned)EVF_PRICE;
        g->ev.price = 0;
        g->ev.has |= EVF_VALUE | EVF_QUANTITY;
        g->ev.value += 0.0;
        int rc = check_event(f, &g->ev, g->first_line);
        if (rc != 1) {
            size_t l = strlen(f->err);
            snprintf(f->err + l, sizeof f->err - l, " (order of lines %llu-%llu)", (unsigned long long)g->first_line,
                     (unsigned long long)g->last_line);
            return rc;
        }
    }
    if (!g->ev.event_id.len) {
        snprintf(g->id, sizeof g->id, "order:%016llx", (unsigned long long)g->key);
        g->ev.event_id = (ls_str){g->id, strlen(g->id)};
    }
    *out = g->ev;
    f->st.events++;
    return 1;
}

/* How many copies of content hash h the current ts run has seen,
 * counting this one.  Memory is bounded: after OCC_MAX_USED distinct
 * contents in one run (a file whose ts is a constant) the count starts
 * over, at the same row every time the file is read, so ids stay stable;
 * only an identical copy across that boundary would share an id. */
static uint32_t occurrence(eventfile *f, int64_t ts, uint64_t h)
{
    if (!f->run_open || ts != f->run_ts || f->occ_used >= OCC_MAX_USED) {
        f->run_open = 1;
        f->run_ts = ts;
        f->occ_used = 0;
        if (++f->occ_gen == 0) {
            memset(f->occ, 0, f->occ_cap * sizeof *f->occ);
            f->occ_gen = 1;
        }
    }
    if ((f->occ_used + 1) * 2 > f->occ_cap) {
        size_t cap = f->occ_cap ? f->occ_cap * 2 : 1024;
        occ_slot *t = calloc(cap, sizeof *t);
        if (!t)
            return 1; /* cannot tell copies apart: treat as first */
        for (size_t i = 0; i < f->occ_cap; i++) {
            if (f->occ[i].gen != f->occ_gen)
                continue;
            size_t j = (size_t)f->occ[i].h & (cap - 1);
            while (t[j].gen)
                j = (j + 1) & (cap - 1);
            t[j] = f->occ[i];
        }
        free(f->occ);
        f->occ = t;
        f->occ_cap = cap;
    }
    size_t j = (size_t)h & (f->occ_cap - 1);
    while (f->occ[j].gen == f->occ_gen && f->occ[j].h != h)
        j = (j + 1) & (f->occ_cap - 1);
    if (f->occ[j].gen != f->occ_gen) {
        f->occ[j] = (occ_slot){h, f->occ_gen, 0};
        f->occ_used++;
    }
    return ++f->occ[j].count;
}

/* Hands out a row that is not part of an order, with its id. */
static int emit_row(eventfile *f, ls_event *ev, ls_event *out)
{
    if (!ev->event_id.len) {
        uint64_t h = event_hash(ev);
        uint32_t k = occurrence(f, ev->ts_ms, h);
        if (k > 1)
            h = fnv_u64(h, '#', k);
        snprintf(f->row_id, sizeof f->row_id, "row:%016llx", (unsigned long long)mix64(h));
        ev->event_id = (ls_str){f->row_id, strlen(f->row_id)};
    }
    *out = *ev;
    f->st.events++;
    return 1;
}

static int counted(eventfile *f, int rc)
{
    if (rc == EVENTFILE_BAD_ROW)
        f->st.bad_rows++;
    return rc;
}

int eventfile_next(eventfile *f, ls_event *ev)
{
    if (!f || !ev)
        return LS_EINVAL;
    f->kind = NULL;
    f->err[0] = '\0';
    for (;;) {
        ls_event r;
        uint64_t line;
        int rc;
        if (f->have_pending) {
            r = f->pending;
            line = f->pending_line;
            f->have_pending = 0;
            rc = 1;
        } else if (f->status || f->ended) {
            rc = f->status;
            line = 0;
        } else {
            rc = read_row(f, &r);
            line = f->row_line;
        }
        if (rc <= 0) {
            if (rc == 0)
                f->ended = 1;
            if (f->grp.open)
                return counted(f, emit_order(f, ev));
            if (rc < 0)
                snprintf(f->err, sizeof f->err, "%s", f->fatal);
            return rc;
        }
        if (rc == EVENTFILE_BAD_ROW)
            return counted(f, rc);
        if (f->grp.open) {
            if (continues(&f->grp, &r)) {
                add_line(f, &r, line);
                continue;
            }
            f->pending = r;
            f->pending_line = line;
            f->have_pending = 1;
            return counted(f, emit_order(f, ev));
        }
        if (foldable(f, &r)) {
            start_order(f, &r, line);
            continue;
        }
        return emit_row(f, &r, ev);
    }
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */
/* ------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int looks_jsonl(const char *path)
{
    static const char *const ext[] = {".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(path, ext[i]))
            return 1;
    return 0;
}

static int open_jsonl(eventfile *f, char *err, size_t errlen)
{
    int fd = dup(f->fd);
    if (fd < 0)
        return ls_fail(err, errlen, LS_EIO, "%s: %s", f->path, strerror(errno));
    f->gz = gzdopen(fd, "rb");
    f->buf = malloc(JSONL_READ_BUF);
    if (!f->gz || !f->buf) {
        if (!f->gz)
            close(fd);
        return ls_fail(err, errlen, LS_ENOMEM, "%s: out of memory", f->path);
    }
    gzbuffer(f->gz, JSONL_READ_BUF);
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        const char *key = NULL;
        switch (f->o.map.field[i].source) {
        case EVENTFILE_SRC_AUTO: key = field_names[i]; break;
        case EVENTFILE_SRC_COLUMN: key = f->o.map.field[i].text; break;
        default: break;
        }
        snprintf(f->jkey[i], sizeof f->jkey[i], "%s", key ? key : "");
    }
    return LS_OK;
}

int eventfile_open(eventfile **out, const char *path, const eventfile_options *opt, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !path)
        return ls_fail(err, errlen, LS_EINVAL, "no file given");
    *out = NULL;
    eventfile *f = calloc(1, sizeof *f);
    if (!f)
        return ls_fail(err, errlen, LS_ENOMEM, "out of memory");
    f->fd = -1;
    if (opt)
        f->o = *opt;
    else
        eventfile_options_init(&f->o);
    int rc = LS_OK;
    f->path = strdup(path);
    if (!f->path) {
        rc = ls_fail(err, errlen, LS_ENOMEM, "out of memory");
        goto leave;
    }
    if (f->o.ts_format < TIMEFMT_AUTO || f->o.ts_format > TIMEFMT_ISO || f->o.format < EVENTFILE_AUTO ||
        f->o.format > EVENTFILE_JSONL) {
        rc = ls_fail(err, errlen, LS_EINVAL, "%s: bad options", path);
        goto leave;
    }
    f->now_ms = f->o.now_ms ? f->o.now_ms : timefmt_now_ms();
    f->min_ts_ms = f->o.min_ts_ms < 1 ? 1 : f->o.min_ts_ms;
    f->max_str = f->o.max_str == 0 || f->o.max_str > EVENT_MAX_STR ? EVENT_MAX_STR : f->o.max_str;
    for (int i = 0; i < EVENTFILE_NFIELDS; i++)
        f->o.map.field[i].text[EVENT_MAX_STR] = '\0';
    for (size_t i = 0; i < f->o.types.n && i < EVENTFILE_MAX_TYPES; i++)
        f->o.types.entry[i].from[EVENTFILE_MAX_NAME - 1] = '\0';
    if (f->o.types.n > EVENTFILE_MAX_TYPES)
        f->o.types.n = EVENTFILE_MAX_TYPES;
    f->jsonl = f->o.format == EVENTFILE_JSONL || (f->o.format == EVENTFILE_AUTO && looks_jsonl(path));

    if (strcmp(path, "-") == 0) {
        f->fd = STDIN_FILENO;
    } else {
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0) {
            rc = ls_fail(err, errlen, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s: %s", path, strerror(errno));
            goto leave;
        }
        f->own_fd = 1;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) == 0 && S_ISREG(sb.st_mode))
        f->st.bytes_total = (uint64_t)sb.st_size;
    else if (f->own_fd && fstat(f->fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = ls_fail(err, errlen, LS_EIO, "%s: is a directory", path);
        goto leave;
    }
    rc = f->jsonl ? open_jsonl(f, err, errlen) : open_csv(f, err, errlen);
leave:
    if (rc != LS_OK) {
        eventfile_close(&f);
        return rc;
    }
    *out = f;
    return LS_OK;
}

void eventfile_close(eventfile **fp)
{
    if (!fp || !*fp)
        return;
    eventfile *f = *fp;
    csv_close(&f->csv);
    if (f->gz)
        gzclose(f->gz);
    json_decref(f->obj);
    if (f->own_fd && f->fd >= 0)
        close(f->fd);
    free(f->buf);
    free(f->line);
    free(f->occ);
    free(f->path);
    free(f);
    *fp = NULL;
}
