/* fuzz_csv.c -- libFuzzer harness for the streaming CSV reader (csv.c):
 * bytes -> a memfd -> csv_open_fd() (or csv_open() on its /proc path) ->
 * csv_next() until the end or an error, checked against a reference.
 *
 * Input layout: the first byte picks the reader settings and how the
 * bytes reach it, the rest is the file:
 *   bits 0-1  delimiter: ',' '\t' ';' '|'
 *   bit  2    whitespace mode
 *   bits 3-4  max_record_bytes: default (1 MiB), 4, 32, 1024
 *   bits 5-7  how the file reaches the reader (FEED_* below): by
 *             descriptor (csv_open_fd) or by path (csv_open); plain, or
 *             gzipped here first (zlib must inflate it back); or
 *             "straddled": the next byte o is taken too, and 256 KiB - o
 *             newlines (blank lines) go before the file, so that its bytes
 *             from o on arrive in the reader's second buffer fill and every
 *             state of the machine meets a refill; or "big field": 64 KiB
 *             of 'x' go before the file, joining its first field, so the
 *             record buffer (64 KiB at first) grows, and moves, while a
 *             record is being read.  Those two cost ~10 ordinary inputs each.
 * A file that itself starts with the gzip magic is inflated by zlib too.
 *
 * Properties, besides "never crashes, leaks or reads out of bounds":
 *  - every row has nfields >= 1, NUL-terminated fields, a record size
 *    (bytes + one per field) within max_record_bytes, and starts on a
 *    later physical line than the row before, within the input's lines;
 *  - the rows never hold more field bytes than the (inflated) input;
 *  - failures are one of the documented codes, sticky, with a "line N: "
 *    message; plain input never gives LS_EIO; a clean end stays the end;
 *  - the rows, the final status and the N of the message match ref_next(),
 *    a direct, unbuffered reading of the grammar in csv.h. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "csv.h"
#include "leadscore/error.h"

#define CHECK(cond)                   \
    do {                              \
        if (!(cond))                  \
            __builtin_trap();         \
    } while (0)

/* csv.c's read buffer (CSV_READ_BUF) and first record buffer
 * (CSV_REC_START), both private to csv.c. */
#define READ_BUF (256u * 1024)
#define BIG_FIELD (64u * 1024)

/* bits 5-7 of the settings byte */
enum { FEED_FD, FEED_FD_1, FEED_BIG_FIELD, FEED_PATH, FEED_GZIP_FD, FEED_GZIP_FD_1, FEED_GZIP_PATH, FEED_STRADDLE };

/* ------------------------------------------------------------------ */
/* The reference: csv.h's grammar, read straight from one buffer        */
/* ------------------------------------------------------------------ */

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    uint64_t line;          /* physical line of p[pos] */
    int ws;
    unsigned char delim;
    size_t max;             /* max_record_bytes */
    unsigned char *out;     /* unquoted bytes of the current record */
    size_t out_len;
    size_t *foff, *flen;    /* its fields */
    size_t nf;
    uint64_t rec_line;      /* where the record starts */
    uint64_t err_line;      /* the N of "line N: " for a failure */
} ref_reader;

static int is_blank(int c) { return c == ' ' || c == '\t'; }
static int is_eol(int c) { return c == '\n' || c == '\r'; }

/* Consumes the line end at pos: LF, CR, or CRLF as one. */
static void ref_eol(ref_reader *r)
{
    if (r->p[r->pos] == '\r' && r->pos + 1 < r->n && r->p[r->pos + 1] == '\n')
        r->pos++;
    r->pos++;
    r->line++;
}

/* The record so far: its bytes plus one per finished field. */
static int ref_over(const ref_reader *r)
{
    return r->out_len + r->nf > r->max;
}

static int ref_byte(ref_reader *r, unsigned char c)
{
    r->out[r->out_len++] = c;
    return ref_over(r);
}

static int ref_end_field(ref_reader *r, size_t start)
{
    r->foff[r->nf] = start;
    r->flen[r->nf] = r->out_len - start;
    r->nf++;
    return ref_over(r);
}

/* The next record: 1 (fields in out/foff/flen), 0 at the end, or
 * LS_EPARSE / LS_ETOOLARGE with err_line. */
static int ref_next(ref_reader *r)
{
    /* skip lines with nothing on them (in whitespace mode: only blanks) */
    for (;;) {
        if (r->pos >= r->n)
            return 0;
        int c = r->p[r->pos];
        if (is_eol(c))
            ref_eol(r);
        else if (r->ws && is_blank(c))
            r->pos++;
        else
            break;
    }
    r->rec_line = r->line;
    r->out_len = 0;
    r->nf = 0;
    for (;;) {
        /* at the start of a field */
        if (r->ws) {
            while (r->pos < r->n && is_blank(r->p[r->pos]))
                r->pos++;
            if (r->pos >= r->n)
                return 1;             /* blanks after the last field */
            if (is_eol(r->p[r->pos])) {
                ref_eol(r);
                return 1;
            }
        } else if (r->pos >= r->n || is_eol(r->p[r->pos]) || r->p[r->pos] == r->delim) {
            /* an empty field: before a delimiter, a line end or the end
             * (the last two only after a delimiter: a record starts with
             * something else) */
            if (ref_end_field(r, r->out_len))
                goto too_large;
            if (r->pos >= r->n)
                return 1;
            if (is_eol(r->p[r->pos])) {
                ref_eol(r);
                return 1;
            }
            r->pos++;
            continue;
        }

        size_t start = r->out_len;
        if (r->p[r->pos] == '"') {
            uint64_t quote_line = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->n) {
                    r->err_line = quote_line;
                    return LS_EPARSE;
                }
                unsigned char c = r->p[r->pos++];
                if (c == '"') {
                    if (r->pos < r->n && r->p[r->pos] == '"') {
                        r->pos++;
                    } else {
                        break;
                    }
                }
                if (c == '\n')
                    r->line++;    /* kept, and counted (csv.c counts LF only) */
                if (ref_byte(r, c))
                    goto too_large;
            }
            /* after the closing quote: a separator, a line end or the end */
            int c = r->pos < r->n ? r->p[r->pos] : -1;
            if (c >= 0 && !is_eol(c) && !(r->ws ? is_blank(c) : c == r->delim)) {
                r->err_line = r->line;
                return LS_EPARSE;
            }
            if (ref_end_field(r, start))
                goto too_large;
            if (c < 0)
                return 1;
            if (is_eol(c)) {
                ref_eol(r);
                return 1;
            }
            r->pos++;
            continue;
        }

        /* unquoted: to the next separator or line end; '"' is data */
        while (r->pos < r->n && !is_eol(r->p[r->pos]) &&
               !(r->ws ? is_blank(r->p[r->pos]) : r->p[r->pos] == r->delim))
            if (ref_byte(r, r->p[r->pos++]))
                goto too_large;
        if (ref_end_field(r, start))
            goto too_large;
        if (r->pos >= r->n)
            return 1;
        if (is_eol(r->p[r->pos])) {
            ref_eol(r);
            return 1;
        }
        r->pos++;                 /* the separator */
    }
too_large:
    r->err_line = r->rec_line;
    return LS_ETOOLARGE;
}

/* ------------------------------------------------------------------ */
/* Feeding the bytes                                                    */
/* ------------------------------------------------------------------ */

/* gzip-compresses src into a malloc'd buffer; returns its length. */
static size_t gzip_bytes(const unsigned char *src, size_t n, unsigned char **out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    *out = malloc(cap);
    CHECK(*out != NULL);
    zs.next_in = (Bytef *)src;
    zs.avail_in = (uInt)n;
    zs.next_out = *out;
    zs.avail_out = (uInt)cap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t len = zs.total_out;
    deflateEnd(&zs);
    return len;
}

/* One memfd for the whole run, refilled for every input. */
static int input_fd(const unsigned char *bytes, size_t n)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_csv", MFD_CLOEXEC);
        CHECK(fd >= 0);
    }
    CHECK(ftruncate(fd, 0) == 0);
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(fd, bytes + done, n - done, (off_t)done);
        CHECK(w > 0);
        done += (size_t)w;
    }
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

/* The N of a "line N: ..." message, or 0. */
static uint64_t message_line(const char *msg)
{
    if (strncmp(msg, "line ", 5) != 0)
        return 0;
    return strtoull(msg + 5, NULL, 10);
}

/* ------------------------------------------------------------------ */
/* The harness                                                          */
/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[4] = {',', '\t', ';', '|'};
    static const size_t max_recs[4] = {0, 4, 32, 1024};
    if (size < 1)
        return 0;
    unsigned opt_byte = data[0], feed = opt_byte >> 5;
    const unsigned char *body = data + 1;
    size_t body_len = size - 1;
    size_t filler = 0;
    if (feed == FEED_STRADDLE) {
        if (body_len < 1)
            return 0;
        filler = READ_BUF - body[0];
        body++;
        body_len--;
    }

    csv_options opt = {.delimiter = delims[opt_byte & 3],
                       .whitespace = (opt_byte & 4) != 0,
                       .max_record_bytes = max_recs[(opt_byte >> 3) & 3]};
    size_t rec_max = opt.max_record_bytes ? opt.max_record_bytes : CSV_DEFAULT_MAX_RECORD;
    int harness_gzip = feed == FEED_GZIP_FD || feed == FEED_GZIP_FD_1 || feed == FEED_GZIP_PATH;
    int by_path = feed == FEED_PATH || feed == FEED_GZIP_PATH;

    /* plain: what the reader should see after any inflating */
    size_t prefix = feed == FEED_BIG_FIELD ? BIG_FIELD : 0;
    size_t plain_len = filler + prefix + body_len;
    unsigned char *plain = malloc(plain_len ? plain_len : 1);
    CHECK(plain != NULL);
    memset(plain, '\n', filler);
    memset(plain + filler, 'x', prefix);
    memcpy(plain + filler + prefix, body, body_len);
    /* zlib inflates a file starting with the gzip magic: its content is
     * then unknown here, so the byte, line and reference checks are off */
    int raw_gzip = !harness_gzip && plain_len >= 2 && plain[0] == 0x1f && plain[1] == 0x8b;

    unsigned char *file = plain;
    size_t file_len = plain_len;
    if (harness_gzip)
        file_len = gzip_bytes(plain, plain_len, &file);

    int fd = input_fd(file, file_len);
    csv_reader *r = NULL;
    int rc;
    if (by_path) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        rc = csv_open(&r, path, &opt);
    } else {
        rc = csv_open_fd(&r, fd, &opt);
    }
    CHECK(rc == LS_OK && r != NULL);

    int use_ref = !raw_gzip;
    ref_reader ref = {.p = plain, .n = plain_len, .line = 1, .ws = opt.whitespace,
                      .delim = (unsigned char)opt.delimiter, .max = rec_max};
    if (use_ref) {
        static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
        if (plain_len >= 3 && memcmp(plain, bom, 3) == 0)
            ref.pos = 3;
        /* the filler is blank lines: skip them here, not byte by byte */
        ref.pos += filler;
        ref.line += filler;
        ref.out = malloc(plain_len + 1);
        ref.foff = malloc((plain_len + 1) * sizeof *ref.foff);
        ref.flen = malloc((plain_len + 1) * sizeof *ref.flen);
        CHECK(ref.out != NULL && ref.foff != NULL && ref.flen != NULL);
    }

    uint64_t line_ends = filler;
    for (size_t i = filler; i < plain_len; i++)
        line_ends += plain[i] == '\n' || plain[i] == '\r';

    uint64_t prev_line = 0, total_bytes = 0, total_fields = 0;
    int ref_rc = 0;
    csv_row row;
    for (;;) {
        if (use_ref)
            ref_rc = ref_next(&ref);
        rc = csv_next(r, &row);
        if (use_ref)
            CHECK(rc == ref_rc);
        if (rc != 1)
            break;

        CHECK(row.nfields >= 1);
        CHECK(row.field != NULL && row.len != NULL);
        CHECK(row.line >= 1 && row.line > prev_line);
        if (!raw_gzip)
            CHECK(row.line <= line_ends + 1);
        prev_line = row.line;
        size_t rec_size = row.nfields;
        for (size_t i = 0; i < row.nfields; i++) {
            CHECK(row.field[i] != NULL);
            CHECK(row.field[i][row.len[i]] == '\0');
            rec_size += row.len[i];
            total_bytes += row.len[i];
        }
        total_fields += row.nfields;
        CHECK(rec_size <= rec_max);
        if (!raw_gzip)
            CHECK(total_bytes <= plain_len && total_bytes + total_fields <= plain_len + total_fields);

        if (use_ref) {
            CHECK(row.line == ref.rec_line);
            CHECK(row.nfields == ref.nf);
            for (size_t i = 0; i < ref.nf; i++)
                CHECK(row.len[i] == ref.flen[i] &&
                      memcmp(row.field[i], ref.out + ref.foff[i], ref.flen[i]) == 0);
        }
        (void)csv_header_index(&row, "customer");
    }

    if (rc < 0) {
        CHECK(rc == LS_EPARSE || rc == LS_ETOOLARGE || rc == LS_EIO || rc == LS_ENOMEM);
        if (!raw_gzip)
            CHECK(rc != LS_EIO); /* plain bytes, or gzip made here, always read */
        CHECK(rc != LS_ENOMEM);  /* records are at most 1 MiB */
        const char *msg = csv_error(r);
        CHECK(msg != NULL && message_line(msg) >= 1);
        if (use_ref)
            CHECK(message_line(msg) == ref.err_line);
        CHECK(csv_next(r, &row) == rc); /* sticky */
        CHECK(csv_error(r) == msg || strcmp(csv_error(r), msg) == 0);
    } else {
        CHECK(rc == 0);
        CHECK(csv_next(r, &row) == 0);
    }

    csv_close(&r);
    CHECK(r == NULL);
    csv_close(&r); /* twice is harmless */
    free(ref.out);
    free(ref.foff);
    free(ref.flen);
    if (file != plain)
        free(file);
    free(plain);
    return 0;
}
