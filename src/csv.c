/* csv.c -- the streaming CSV reader (grammar and contracts in csv.h).
 *
 * Input comes through zlib's gzread(), which passes plain files through
 * and inflates gzip ones, into one large read buffer.  A byte-driven state
 * machine walks that buffer and copies each field, unquoted, into a
 * record buffer, ending every field with a NUL and remembering where it
 * starts.  The state lives in the reader, not on the stack, so a record may
 * straddle any number of buffer refills.  Runs of ordinary bytes are found
 * with a per-reader table of stop bytes and copied with one memcpy, which
 * keeps simple rows cheap.  The record buffer only grows, up to
 * max_record_bytes; field pointers are made when a record is complete,
 * because the buffer may move while it grows.
 *
 * Internal steps return STEP_MORE (keep going), STEP_ROW (a record is
 * complete) or a negative status, which fail() has already made sticky. */
#include "csv.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "leadscore/error.h"

/* Read buffer, and zlib's own buffer (its output buffer is twice this). */
#define CSV_READ_BUF (256u * 1024)
#define CSV_GZ_BUF (64u * 1024)
/* Starting sizes of the record buffer and field arrays; both double. */
#define CSV_REC_START (64u * 1024)
#define CSV_FIELDS_START 64u

#define STEP_MORE 0
#define STEP_ROW 1

/* Where the machine is inside a record. */
typedef enum {
    ST_RECORD,     /* between records: skipping empty lines */
    ST_CR,         /* just after a CR that ended a line; eat one LF */
    ST_FIELD,      /* at the start of a field */
    ST_UNQUOTED,   /* inside an unquoted field */
    ST_QUOTED,     /* inside a quoted field */
    ST_QUOTE_SEEN  /* a '"' inside a quoted field: end or first of "" */
} csv_state;

struct csv_reader {
    gzFile gz;
    unsigned char *buf;      /* read buffer, CSV_READ_BUF bytes */
    size_t pos, end;         /* unread bytes are buf[pos..end) */
    int eof;                 /* gzread() reported a clean end */
    int bom_done;            /* the start was checked for a BOM */
    int status;              /* sticky failure, LS_OK while healthy */
    csv_state st;

    uint64_t line;           /* physical line of buf[pos] */
    uint64_t rec_line;       /* line the current record started on */
    uint64_t quote_line;     /* line the open quoted field started on */

    char *rec;               /* fields of the current record, NUL-ended */
    size_t rec_len, rec_cap, rec_max;
    size_t fstart;           /* offset of the field being read */

    size_t nf, fcap;         /* fields finished, room in the arrays */
    size_t *off;             /* offset of each field in rec */
    size_t *flen;            /* length of each field */
    const char **fptr;       /* filled from off[] when a record is done */

    unsigned char delim;
    int ws;
    unsigned char stop[256]; /* bytes that end an unquoted run */
    char msg[256];           /* csv_error() text */
};

/* ------------------------------------------------------------------ */
/* Failures                                                            */
/* ------------------------------------------------------------------ */

/* Records a sticky failure with "line N: <message>" and returns status. */
__attribute__((format(printf, 4, 5)))
static int fail(csv_reader *r, int status, uint64_t line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(r->msg, sizeof r->msg, "line %llu: ", (unsigned long long)line);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->msg)
        vsnprintf(r->msg + n, sizeof r->msg - (size_t)n, fmt, ap);
    va_end(ap);
    r->status = status;
    return status;
}

/* ------------------------------------------------------------------ */
/* Record buffer                                                       */
/* ------------------------------------------------------------------ */

/* Makes room for extra more bytes of the current record. */
static int rec_reserve(csv_reader *r, size_t extra)
{
    size_t need = r->rec_len + extra;
    size_t cap;
    char *p;

    if (need <= r->rec_cap)
        return LS_OK;
    if (need > r->rec_max || need < r->rec_len)
        return fail(r, LS_ETOOLARGE, r->rec_line,
                    "record exceeds max_record_bytes (%zu)", r->rec_max);
    cap = r->rec_cap * 2 > need ? r->rec_cap * 2 : need;
    cap = cap < r->rec_max ? cap : r->rec_max;
    p = realloc(r->rec, cap);
    if (p == NULL)
        return fail(r, LS_ENOMEM, r->rec_line, "out of memory");
    r->rec = p;
    r->rec_cap = cap;
    return LS_OK;
}

static int rec_append(csv_reader *r, const unsigned char *src, size_t n)
{
    int rc = rec_reserve(r, n);
    if (rc == LS_OK && n > 0) {
        memcpy(r->rec + r->rec_len, src, n);
        r->rec_len += n;
    }
    return rc;
}

/* Doubles the three field arrays. */
static int grow_fields(csv_reader *r)
{
    size_t cap = r->fcap * 2;
    size_t *off = realloc(r->off, cap * sizeof *off);
    if (off != NULL)
        r->off = off;
    size_t *flen = off ? realloc(r->flen, cap * sizeof *flen) : NULL;
    if (flen != NULL)
        r->flen = flen;
    const char **fptr = flen ? realloc(r->fptr, cap * sizeof *fptr) : NULL;
    if (fptr == NULL)
        return fail(r, LS_ENOMEM, r->rec_line, "out of memory");
    r->fptr = fptr;
    r->fcap = cap;
    return LS_OK;
}

/* Ends the field being read: NUL-terminates it and records it. */
static int end_field(csv_reader *r)
{
    int rc = r->nf == r->fcap ? grow_fields(r) : LS_OK;
    if (rc == LS_OK)
        rc = rec_reserve(r, 1);
    if (rc != LS_OK)
        return rc;
    r->off[r->nf] = r->fstart;
    r->flen[r->nf] = r->rec_len - r->fstart;
    r->nf++;
    r->rec[r->rec_len++] = '\0';
    r->fstart = r->rec_len;
    return LS_OK;
}

/* Hands the finished record to the caller and starts an empty one. */
static void emit(csv_reader *r, csv_row *row)
{
    for (size_t i = 0; i < r->nf; i++)
        r->fptr[i] = r->rec + r->off[i];
    row->nfields = r->nf;
    row->field = r->fptr;
    row->len = r->flen;
    row->line = r->rec_line;
    r->nf = 0;
    r->rec_len = 0;
    r->fstart = 0;
}

/* ------------------------------------------------------------------ */
/* State machine                                                       */
/* ------------------------------------------------------------------ */

static int is_newline(int c)
{
    return c == '\n' || c == '\r';
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* The line end c (already consumed) closes the record. */
static int end_record(csv_reader *r, int c)
{
    r->line++;
    r->st = c == '\r' ? ST_CR : ST_RECORD;
    return STEP_ROW;
}

/* buf[pos] is a separator or line end right after a field. */
static int after_field(csv_reader *r)
{
    int c = r->buf[r->pos++];
    int rc = end_field(r);
    if (rc != LS_OK)
        return rc;
    if (is_newline(c))
        return end_record(r, c);
    r->st = ST_FIELD;
    return STEP_MORE;
}

static int step_record(csv_reader *r)
{
    int c = r->buf[r->pos];
    if (is_newline(c)) {
        r->pos++;
        r->line++;
        r->st = c == '\r' ? ST_CR : ST_RECORD;
    } else if (r->ws && is_blank(c)) {
        r->pos++;
    } else {
        r->rec_line = r->line;
        r->st = ST_FIELD;
    }
    return STEP_MORE;
}

static int step_cr(csv_reader *r)
{
    if (r->buf[r->pos] == '\n')
        r->pos++;
    r->st = ST_RECORD;
    return STEP_MORE;
}

static int step_unquoted(csv_reader *r)
{
    const unsigned char *start = r->buf + r->pos;
    const unsigned char *end = r->buf + r->end;
    const unsigned char *p = start;
    int rc;

    while (p < end && !r->stop[*p])
        p++;
    r->pos = (size_t)(p - r->buf);
    rc = rec_append(r, start, (size_t)(p - start));
    if (rc != LS_OK || p == end)
        return rc;
    return after_field(r);
}

static int step_field(csv_reader *r)
{
    int c = r->buf[r->pos];

    if (c == '"') {
        r->pos++;
        r->quote_line = r->line;
        r->st = ST_QUOTED;
        return STEP_MORE;
    }
    if (r->ws) {
        if (is_blank(c)) {
            r->pos++;
            return STEP_MORE;
        }
        if (is_newline(c)) {      /* blanks after the last field */
            r->pos++;
            return end_record(r, c);
        }
    } else if (c == r->delim || is_newline(c)) {
        return after_field(r);    /* an empty field */
    }
    r->st = ST_UNQUOTED;
    return step_unquoted(r);
}

static int step_quoted(csv_reader *r)
{
    const unsigned char *start = r->buf + r->pos;
    const unsigned char *end = r->buf + r->end;
    const unsigned char *p = start;
    int rc, newline;

    while (p < end && *p != '"' && *p != '\n')
        p++;
    newline = p < end && *p == '\n';
    if (newline) {                /* kept as data, but counted */
        p++;
        r->line++;
    }
    r->pos = (size_t)(p - r->buf);
    rc = rec_append(r, start, (size_t)(p - start));
    if (rc != LS_OK || newline || p == end)
        return rc;
    r->pos++;                     /* the '"' */
    r->st = ST_QUOTE_SEEN;
    return STEP_MORE;
}

static int step_quote_seen(csv_reader *r)
{
    int c = r->buf[r->pos];
    if (c == '"') {
        r->pos++;
        r->st = ST_QUOTED;
        return rec_append(r, r->buf + r->pos - 1, 1);
    }
    if (r->stop[c])
        return after_field(r);
    return fail(r, LS_EPARSE, r->line, "unexpected character after closing quote");
}

/* Runs the machine over the buffered bytes until a record is complete
 * (STEP_ROW), the buffer is used up (STEP_MORE) or a failure. */
static int scan(csv_reader *r)
{
    int rc = STEP_MORE;
    while (rc == STEP_MORE && r->pos < r->end) {
        switch (r->st) {
        case ST_RECORD: rc = step_record(r); break;
        case ST_CR: rc = step_cr(r); break;
        case ST_FIELD: rc = step_field(r); break;
        case ST_UNQUOTED: rc = step_unquoted(r); break;
        case ST_QUOTED: rc = step_quoted(r); break;
        case ST_QUOTE_SEEN: rc = step_quote_seen(r); break;
        }
    }
    return rc;
}

/* The input is over: finishes a record in progress (STEP_ROW), reports a
 * clean end (STEP_MORE) or an open quote. */
static int finish(csv_reader *r)
{
    csv_state st = r->st;
    int rc;

    if (st == ST_QUOTED)
        return fail(r, LS_EPARSE, r->quote_line, "unterminated quoted field");
    r->st = ST_RECORD;
    if (st == ST_RECORD || st == ST_CR)
        return STEP_MORE;
    /* In ST_FIELD the input ended after a delimiter: one more, empty,
     * field; in whitespace mode after blanks: nothing more. */
    if (st != ST_FIELD || !r->ws) {
        rc = end_field(r);
        if (rc != LS_OK)
            return rc;
    }
    return STEP_ROW;
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* Reads more input after buf[end).  Returns the byte count, 0 at a clean
 * end of input, or LS_EIO (a truncated gzip stream included). */
static int fill(csv_reader *r)
{
    int n, errnum = Z_OK;
    const char *why;              /* zlib's text, with the path */

    if (r->eof)
        return 0;
    n = gzread(r->gz, r->buf + r->end, (unsigned)(CSV_READ_BUF - r->end));
    if (n > 0) {
        r->end += (size_t)n;
        return n;
    }
    why = gzerror(r->gz, &errnum);
    if (n == 0 && errnum == Z_OK) {
        r->eof = 1;
        return 0;
    }
    return fail(r, LS_EIO, r->line, "read error: %s", why);
}

/* Makes sure there is unread input, reading if the buffer is used up.
 * Returns > 0 if there is some, 0 at the end of input, or LS_EIO. */
static int ensure_input(csv_reader *r)
{
    if (r->pos < r->end)
        return 1;
    r->pos = 0;
    r->end = 0;
    return fill(r);
}

/* Once, before the first byte is parsed: skips a UTF-8 BOM. */
static int skip_bom(csv_reader *r)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    int n = 1;
    while (r->end < sizeof bom && n > 0)
        n = fill(r);
    if (n < 0)
        return n;
    if (r->end >= sizeof bom && memcmp(r->buf, bom, sizeof bom) == 0)
        r->pos = sizeof bom;
    r->bom_done = 1;
    return LS_OK;
}

int csv_next(csv_reader *r, csv_row *row)
{
    int rc;

    if (r == NULL || row == NULL)
        return LS_EINVAL;
    if (r->status != LS_OK)
        return r->status;
    if (!r->bom_done && (rc = skip_bom(r)) < 0)
        return rc;
    for (;;) {
        rc = ensure_input(r);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            rc = finish(r);
            break;
        }
        rc = scan(r);
        if (rc != STEP_MORE)
            break;
    }
    if (rc != STEP_ROW)
        return rc;                /* 0 at the end, or a failure */
    emit(r, row);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                 */
/* ------------------------------------------------------------------ */

static int check_options(const csv_options *opt)
{
    char d = opt ? opt->delimiter : 0;
    if (opt && !opt->whitespace && (d == '"' || d == '\r' || d == '\n'))
        return LS_EINVAL;
    return LS_OK;
}

/* Allocates a reader with no input yet.  *out is set as soon as the
 * struct exists, so on failure the caller csv_close()s what was built. */
static int reader_new(const csv_options *opt, csv_reader **out)
{
    csv_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return LS_ENOMEM;
    *out = r;
    r->delim = (unsigned char)(opt && opt->delimiter ? opt->delimiter : ',');
    r->ws = opt && opt->whitespace;
    r->rec_max = opt && opt->max_record_bytes ? opt->max_record_bytes
                                              : CSV_DEFAULT_MAX_RECORD;
    r->rec_cap = r->rec_max < CSV_REC_START ? r->rec_max : CSV_REC_START;
    r->fcap = CSV_FIELDS_START;
    r->line = 1;
    r->st = ST_RECORD;
    r->stop['\n'] = r->stop['\r'] = 1;
    if (r->ws)
        r->stop[' '] = r->stop['\t'] = 1;
    else
        r->stop[r->delim] = 1;
    r->buf = malloc(CSV_READ_BUF);
    r->rec = malloc(r->rec_cap);
    r->off = malloc(r->fcap * sizeof *r->off);
    r->flen = malloc(r->fcap * sizeof *r->flen);
    r->fptr = malloc(r->fcap * sizeof *r->fptr);
    if (!r->buf || !r->rec || !r->off || !r->flen || !r->fptr)
        return LS_ENOMEM;
    return LS_OK;
}

/* Status for a failed open(2)-like call, from errno. */
static int open_status(int err)
{
    switch (err) {
    case ENOENT: case ENOTDIR: return LS_ENOTFOUND;
    case 0: case ENOMEM: return LS_ENOMEM; /* zlib's own allocation */
    case EBADF: return LS_EINVAL;
    default: return LS_EIO;
    }
}

int csv_open(csv_reader **out, const char *path, const csv_options *opt)
{
    csv_reader *r = NULL;
    int rc = LS_EINVAL;

    if (out == NULL)
        return LS_EINVAL;
    *out = NULL;
    if (path == NULL || check_options(opt) != LS_OK)
        goto fail;
    rc = reader_new(opt, &r);
    if (rc != LS_OK)
        goto fail;
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (r->gz == NULL) {
        rc = open_status(errno);
        goto fail;
    }
    gzbuffer(r->gz, CSV_GZ_BUF);
    *out = r;
    return LS_OK;
fail:
    csv_close(&r);
    return rc;
}

int csv_open_fd(csv_reader **out, int fd, const csv_options *opt)
{
    csv_reader *r = NULL;
    int rc = LS_EINVAL, dupfd;

    if (out == NULL)
        return LS_EINVAL;
    *out = NULL;
    if (fd < 0 || check_options(opt) != LS_OK)
        goto fail;
    rc = reader_new(opt, &r);
    if (rc != LS_OK)
        goto fail;
    dupfd = dup(fd);
    if (dupfd < 0) {
        rc = open_status(errno);
        goto fail;
    }
    r->gz = gzdopen(dupfd, "rb");
    if (r->gz == NULL) {
        close(dupfd);
        rc = LS_ENOMEM;
        goto fail;
    }
    gzbuffer(r->gz, CSV_GZ_BUF);
    *out = r;
    return LS_OK;
fail:
    csv_close(&r);
    return rc;
}

void csv_close(csv_reader **rp)
{
    csv_reader *r = rp ? *rp : NULL;
    if (r == NULL)
        return;
    if (r->gz != NULL)
        gzclose(r->gz);
    free(r->buf);
    free(r->rec);
    free(r->off);
    free(r->flen);
    free(r->fptr);
    free(r);
    *rp = NULL;
}

const char *csv_error(const csv_reader *r)
{
    return r ? r->msg : "";
}

int csv_header_index(const csv_row *hdr, const char *name)
{
    size_t n;
    if (hdr == NULL || name == NULL)
        return -1;
    n = strlen(name);
    for (size_t i = 0; i < hdr->nfields && i < (size_t)INT_MAX; i++) {
        if (hdr->len[i] == n && memcmp(hdr->field[i], name, n) == 0)
            return (int)i;
    }
    return -1;
}
