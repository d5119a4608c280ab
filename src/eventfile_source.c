/* eventfile_source.c -- where an event file's text comes from (see
 * eventfile_source.h): a CSV record (csv.h) with its header mapped to the
 * event fields, or one JSON Lines object (jansson, gzip-transparent
 * through zlib) with its keys mapped likewise.  Either way the result is
 * the raw text of each field of one row in f->val[] / f->vlen[]; parsing
 * that text into an event is eventfile.c's business. */
#define _POSIX_C_SOURCE 200809L
#include "eventfile_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error_internal.h"

/* ------------------------------------------------------------------ */
/* Sources: CSV                                                         */
/* ------------------------------------------------------------------ */

/* Column index for name in the header hdr: exact name, then ignoring case,
 * then a 1-based position.  -1 when none.  *twice is the index of a
 * later header column that matches name as well as the one returned
 * (same spelling, or equal ignoring case when no column has the exact
 * one), else -1; *nocase is 1 when the match ignored case. */
static int find_column(const csv_row *hdr, const char *name, int *twice, int *nocase)
{
    size_t nlen = strlen(name);
    *twice = -1;
    for (int pass = 0; hdr && pass < 2; pass++) {
        int found = -1;
        for (size_t i = 0; i < hdr->nfields && *twice < 0; i++) {
            const char *h = hdr->field[i];
            size_t hlen = hdr->len[i];
            ef_trim(&h, &hlen);
            if (hlen == nlen && (pass == 0 ? memcmp(h, name, nlen) == 0 : strncasecmp(h, name, nlen) == 0)) {
                if (found >= 0)
                    *twice = (int)i;
                else
                    found = (int)i;
            }
        }
        if (found >= 0) {
            *nocase = pass;
            return found;
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
        char shown[80]; /* quoted, control bytes as '?': a binary file's header must not drive the terminal */
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", ef_shown(shown, sizeof shown, hdr->field[i],
                                                                         hdr->len[i] > 40 ? 40 : hdr->len[i]));
        if (w < 0 || (size_t)w >= cap - n) {
            buf[n] = '\0';
            break;
        }
        n += (size_t)w;
    }
}

/* The failure of a header where name, the column a field reads (col),
 * is there twice (again at other; nocase: as far as case goes): which
 * one is meant is not guessed.  Returns LS_EPARSE. */
static int duplicate_column(const eventfile *f, const csv_row *hdr, eventfile_field field, const char *name, int col,
                            int other, int nocase, char *err, size_t errlen)
{
    char a[80], b[80], q[80];
    const char *fname = eventfile_field_name(field);
    ef_shown(q, sizeof q, name, strlen(name));
    ef_shown(a, sizeof a, hdr->field[col], hdr->len[col] > 40 ? 40 : hdr->len[col]);
    ef_shown(b, sizeof b, hdr->field[other], hdr->len[other] > 40 ? 40 : hdr->len[other]);
    if (nocase)
        return ls_fail(err, errlen, LS_EPARSE, "%s: column %s, read for %s, is in the header twice ignoring case: "
                       "%s (column %d) and %s (column %d): rename one, or name the one to read by its position "
                       "(--map %s=%d or %s=%d)", f->path, q, fname, a, col + 1, b, other + 1, fname, col + 1, fname,
                       other + 1);
    return ls_fail(err, errlen, LS_EPARSE, "%s: column %s, read for %s, is in the header twice (columns %d and %d): "
                   "rename one, or name the one to read by its position (--map %s=%d or %s=%d)", f->path, q, fname,
                   col + 1, other + 1, fname, col + 1, fname, other + 1);
}

int efs_open_csv(eventfile *f, char *err, size_t errlen)
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
        const char *looked_up = f->o.map.field[i].source == EVENTFILE_SRC_AUTO ? eventfile_field_name((eventfile_field)i)
                                                                                : name;
        int twice = -1, nocase = 0;
        f->col[i] = -1;
        switch (f->o.map.field[i].source) {
        case EVENTFILE_SRC_AUTO:
            if (h)
                f->col[i] = find_column(h, looked_up, &twice, &nocase);
            break;
        case EVENTFILE_SRC_COLUMN:
            f->col[i] = find_column(h, name, &twice, &nocase);
            if (f->col[i] < 0) {
                char cols[300] = "";
                if (h)
                    list_columns(h, cols, sizeof cols);
                return ls_fail(err, errlen, LS_EPARSE, "%s: no column \"%s\" for %s (%s%s)", f->path, name,
                               eventfile_field_name((eventfile_field)i), h ? "the header has " : "with --no-header columns are 1, 2, ...",
                               cols);
            }
            break;
        default:
            break;
        }
        if (twice >= 0)
            return duplicate_column(f, h, (eventfile_field)i, looked_up, f->col[i], twice, nocase, err, errlen);
    }
    static const int required[] = {EVENTFILE_F_CUSTOMER, EVENTFILE_F_TYPE, EVENTFILE_F_TS};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        int i = required[k];
        if (f->col[i] < 0 && f->o.map.field[i].source != EVENTFILE_SRC_CONST) {
            char cols[300] = "";
            if (h)
                list_columns(h, cols, sizeof cols);
            return ls_fail(err, errlen, LS_EPARSE, "%s: no column for %s: name it with --map %s=COLUMN%s (%s%s)",
                           f->path, eventfile_field_name((eventfile_field)i), eventfile_field_name((eventfile_field)i), i == EVENTFILE_F_TYPE ? " or --map type=:TYPE" : "",
                           h ? "the header has " : "with --no-header columns are 1, 2, ...", cols);
        }
    }
    return LS_OK;
}

/* Reads one CSV record into f->val[].  1, 0 at the end, BAD_ROW, < 0. */
int efs_csv_row(eventfile *f)
{
    csv_row row;
    int rc = csv_next(f->csv, &row);
    if (rc == 0)
        return 0;
    if (rc < 0)
        return ef_fatal(f, rc, "%s", csv_error(f->csv));
    f->st.rows++;
    f->row_line = row.line;
    if (f->hdr_fields && row.nfields != f->hdr_fields)
        return ef_bad_row(f, row.line, "wrong number of fields", "the row has %zu fields, the header %zu",
                       row.nfields, f->hdr_fields);
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        int c = f->col[i];
        if (c < 0) {
            f->val[i] = NULL;
            continue;
        }
        if ((size_t)c >= row.nfields)
            return ef_bad_row(f, row.line, "missing column", "no column %d for %s (the row has %zu fields)", c + 1,
                           eventfile_field_name((eventfile_field)i), row.nfields);
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
    return ef_fatal(f, LS_EIO, "line %llu: read error: %s", (unsigned long long)f->lineno + 1, why);
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
            return ef_fatal(f, LS_ENOMEM, "out of memory");
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

int efs_jsonl_row(eventfile *f)
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
            return ef_bad_row(f, f->lineno, "line too long", "the line is longer than %zu bytes", JSONL_MAX_LINE);
        }
        ef_trim(&s, &len);
        if (len)
            break;
    }
    f->st.rows++;
    f->row_line = f->lineno;
    json_error_t je;
    f->obj = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!f->obj)
        return ef_bad_row(f, f->lineno, "not JSON", "not JSON: %s (column %d)", je.text, je.column);
    if (!json_is_object(f->obj))
        return ef_bad_row(f, f->lineno, "not a JSON object", "the line is not a JSON object");
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        f->val[i] = NULL;
        if (!f->jkey[i][0])
            continue;
        json_t *v = json_object_get(f->obj, f->jkey[i]);
        if (v && json_text(f, i, v) < 0)
            return ef_bad_row(f, f->lineno, "field is not a string, number or boolean",
                           "\"%s\" (for %s) is not a string, number or boolean", f->jkey[i], eventfile_field_name((eventfile_field)i));
    }
    return 1;
}



static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int efs_looks_jsonl(const char *path)
{
    static const char *const ext[] = {".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(path, ext[i]))
            return 1;
    return 0;
}

int efs_open_jsonl(eventfile *f, char *err, size_t errlen)
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
        case EVENTFILE_SRC_AUTO: key = eventfile_field_name((eventfile_field)i); break;
        case EVENTFILE_SRC_COLUMN: key = f->o.map.field[i].text; break;
        default: break;
        }
        snprintf(f->jkey[i], sizeof f->jkey[i], "%s", key ? key : "");
    }
    return LS_OK;
}
