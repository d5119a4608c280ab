/* fuzz_csv.c -- libFuzzer harness for the streaming CSV reader (csv.c):
 * bytes -> a memfd -> csv_open_fd() (or csv_open() on its /proc path) ->
 * csv_next() until the end or an error.
 *
 * Input layout: the first byte picks the reader settings and how the
 * bytes reach it, the rest is the file:
 *   bits 0-1  delimiter: ',' '\t' ';' '|'
 *   bit  2    whitespace mode
 *   bits 3-4  max_record_bytes: default (1 MiB), 4, 32, 1024
 *   bits 5-7  how the file reaches the reader (FEED_* below): by
 *             descriptor (csv_open_fd) or by path (csv_open), plain or
 *             gzipped here first (zlib must inflate it back), or
 *             "straddled": the next byte o is taken too, and 256 KiB - o
 *             newlines (blank lines) go before the file, so that its bytes
 *             from o on arrive in the reader's second buffer fill and every
 *             state of the machine meets a refill.  A straddled input costs
 *             ~40 ordinary ones (the reader walks 256 KiB), hence 1 in 8.
 * A file that itself starts with the gzip magic is inflated by zlib too.
 *
 * Properties, besides "never crashes, leaks or reads out of bounds":
 *  - every row has nfields >= 1, NUL-terminated fields, a record size
 *    (bytes + one per field) within max_record_bytes, and starts on a
 *    later physical line than the row before, within the input's lines;
 *  - the rows never hold more field bytes than the (inflated) input;
 *  - failures are one of the documented codes, sticky, with a message;
 *    plain input never gives LS_EIO;
 *  - for input without any '"' the rows match a direct reference split
 *    (lines at LF, CRLF, CR; empty lines skipped; fields at the delimiter,
 *    or at runs of blanks in whitespace mode), LS_ETOOLARGE exactly at the
 *    first record over the limit. */
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

/* csv.c's read buffer (CSV_READ_BUF, private to csv.c). */
#define READ_BUF (256u * 1024)

/* ------------------------------------------------------------------ */
/* The reference splitter for quote-free input                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    uint64_t line;
    int ws;
    unsigned char delim;
    const unsigned char **fptr; /* room for n + 1 fields */
    size_t *flen;
} ref_splitter;

static int is_blank(int c) { return c == ' ' || c == '\t'; }

/* The next row: 1 with *nf fields in r->fptr/flen and *line, or 0. */
static int ref_next(ref_splitter *r, size_t *nf, uint64_t *line)
{
    while (r->pos < r->n) {
        size_t s = r->pos, e = s;
        while (e < r->n && r->p[e] != '\n' && r->p[e] != '\r')
            e++;
        *line = r->line;
        if (e < r->n) {
            r->pos = (r->p[e] == '\r' && e + 1 < r->n && r->p[e + 1] == '\n') ? e + 2 : e + 1;
            r->line++;
        } else {
            r->pos = r->n;
        }
        *nf = 0;
        if (r->ws) {
            size_t i = s;
            for (;;) {
                while (i < e && is_blank(r->p[i]))
                    i++;
                if (i == e)
                    break;
                size_t f = i;
                while (i < e && !is_blank(r->p[i]))
                    i++;
                r->fptr[*nf] = r->p + f;
                r->flen[(*nf)++] = i - f;
            }
        } else if (e > s) {
            size_t f = s;
            for (size_t i = s; i <= e; i++) {
                if (i == e || r->p[i] == r->delim) {
                    r->fptr[*nf] = r->p + f;
                    r->flen[(*nf)++] = i - f;
                    f = i + 1;
                }
            }
        }
        if (*nf > 0)
            return 1;
    }
    return 0;
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

/* ------------------------------------------------------------------ */
/* The harness                                                          */
/* ------------------------------------------------------------------ */

/* bits 5-7 of the settings byte */
enum { FEED_FD, FEED_FD_1, FEED_FD_2, FEED_PATH, FEED_GZIP_FD, FEED_GZIP_FD_1, FEED_GZIP_PATH, FEED_STRADDLE };

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
    size_t plain_len = filler + body_len;
    unsigned char *plain = malloc(plain_len ? plain_len : 1);
    CHECK(plain != NULL);
    memset(plain, '\n', filler);
    memcpy(plain + filler, body, body_len);
    /* zlib inflates a file starting with the gzip magic: its content is
     * then unknown here, so the byte and reference checks are off */
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

    /* the reference, for quote-free known content */
    int use_ref = !raw_gzip && memchr(plain, '"', plain_len) == NULL;
    ref_splitter ref = {.p = plain, .n = plain_len, .line = 1, .ws = opt.whitespace,
                        .delim = (unsigned char)opt.delimiter};
    if (use_ref) {
        static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
        if (plain_len >= 3 && memcmp(plain, bom, 3) == 0)
            ref.pos = 3;
        /* the filler is blank lines: skip them here, not byte by byte */
        ref.pos += filler;
        ref.line += filler;
        ref.fptr = malloc((plain_len + 1) * sizeof *ref.fptr);
        ref.flen = malloc((plain_len + 1) * sizeof *ref.flen);
        CHECK(ref.fptr != NULL && ref.flen != NULL);
    }

    uint64_t line_ends = filler;
    for (size_t i = filler; i < plain_len; i++)
        line_ends += plain[i] == '\n' || plain[i] == '\r';

    uint64_t prev_line = 0, total_bytes = 0, total_fields = 0;
    csv_row row;
    for (;;) {
        size_t ref_nf = 0;
        uint64_t ref_line = 0;
        int ref_has = use_ref ? ref_next(&ref, &ref_nf, &ref_line) : 0;

        rc = csv_next(r, &row);
        if (rc != 1) {
            if (use_ref) {
                if (ref_has) {
                    /* the reader stops only at the first record over the limit */
                    size_t need = ref_nf;
                    for (size_t i = 0; i < ref_nf; i++)
                        need += ref.flen[i];
                    CHECK(rc == LS_ETOOLARGE && need > rec_max);
                } else {
                    CHECK(rc == 0);
                }
            }
            break;
        }

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
            CHECK(ref_has);
            CHECK(row.line == ref_line);
            CHECK(row.nfields == ref_nf);
            for (size_t i = 0; i < ref_nf; i++)
                CHECK(row.len[i] == ref.flen[i] && memcmp(row.field[i], ref.fptr[i], ref.flen[i]) == 0);
        }
        if (row.nfields > 0)
            (void)csv_header_index(&row, "customer");
    }

    if (rc < 0) {
        CHECK(rc == LS_EPARSE || rc == LS_ETOOLARGE || rc == LS_EIO || rc == LS_ENOMEM);
        if (!raw_gzip)
            CHECK(rc != LS_EIO); /* plain bytes, or gzip made here, always read */
        CHECK(rc != LS_ENOMEM);  /* records are at most 1 MiB */
        const char *msg = csv_error(r);
        CHECK(msg != NULL && strncmp(msg, "line ", 5) == 0);
        CHECK(csv_next(r, &row) == rc); /* sticky */
    } else {
        CHECK(rc == 0);
        CHECK(csv_next(r, &row) == 0);
    }

    csv_close(&r);
    CHECK(r == NULL);
    csv_close(&r); /* twice is harmless */
    free(ref.fptr);
    free(ref.flen);
    if (file != plain)
        free(file);
    free(plain);
    return 0;
}
