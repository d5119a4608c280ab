/* test_csv.c -- Check suite for csv.c.
 *
 * Most tests write a small input to a temp file, read every row back and
 * compare a dump of the rows with the expected text.  The dump writes each
 * row as "<line>{field|field|...}" and ends with "=<last csv_next status>",
 * so one string states the fields, the line numbers and how reading ended.
 * A fixed-seed property test then writes a few MB of randomly quoted
 * records (crossing many read-buffer boundaries), plain and gzip, and
 * compares the dump with the one built while generating. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "csv.h"
#include "leadscore/error.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A growable string. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *sb, const void *data, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1)
            cap *= 2;
        sb->p = realloc(sb->p, cap);
        ck_assert_ptr_nonnull(sb->p);
        sb->cap = cap;
    }
    memcpy(sb->p + sb->len, data, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_str(sbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    ck_assert(n >= 0 && (size_t)n < sizeof tmp);
    sb_add(sb, tmp, (size_t)n);
}

static void sb_free(sbuf *sb)
{
    free(sb->p);
    sb->p = NULL;
    sb->len = sb->cap = 0;
}

/* Creates an empty temp file in $TMPDIR or /tmp; path gets its name.
 * gzip input needs no ".gz" name: zlib looks at the bytes. */
static int temp_fd(char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    int fd;
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    snprintf(path, cap, "%s/test_csv_XXXXXX", dir);
    fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemps %s: %s", path, strerror(errno));
    return fd;
}

/* Writes n bytes of data to a new temp file named into path. */
static void temp_file(char *path, size_t cap, const void *data, size_t n)
{
    int fd = temp_fd(path, cap);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

/* Writes data gzip-compressed to a new temp file named into path. */
static void temp_gz(char *path, size_t cap, const void *data, size_t n)
{
    int fd = temp_fd(path, cap);
    ck_assert_int_eq(close(fd), 0);
    gzFile gz = gzopen(path, "wb6");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}

/* Reads every row of r into the dump format; returns the last status. */
static int dump_reader(csv_reader *r, sbuf *out)
{
    csv_row row;
    int rc;
    while ((rc = csv_next(r, &row)) == 1) {
        ck_assert_uint_ge(row.nfields, 1);
        sb_printf(out, "%llu{", (unsigned long long)row.line);
        for (size_t i = 0; i < row.nfields; i++) {
            ck_assert_int_eq(row.field[i][row.len[i]], '\0');
            if (i > 0)
                sb_str(out, "|");
            sb_add(out, row.field[i], row.len[i]);
        }
        sb_str(out, "}");
    }
    sb_printf(out, "=%d", rc);
    return rc;
}

/* Opens path, dumps it into out, closes; returns the last status. */
static int dump_path(const char *path, const csv_options *opt, sbuf *out)
{
    csv_reader *r = NULL;
    ck_assert_int_eq(csv_open(&r, path, opt), LS_OK);
    int rc = dump_reader(r, out);
    csv_close(&r);
    ck_assert_ptr_null(r);
    return rc;
}

/* Writes n bytes to a temp file and asserts its dump equals want. */
static void check_csv_n(const char *data, size_t n, const csv_options *opt,
                        const char *want)
{
    char path[512];
    sbuf got = {0};
    temp_file(path, sizeof path, data, n);
    dump_path(path, opt, &got);
    unlink(path);
    ck_assert_msg(strcmp(got.p, want) == 0, "input [%s]\n got [%s]\nwant [%s]",
                  data, got.p, want);
    sb_free(&got);
}

static void check_csv(const char *data, const csv_options *opt, const char *want)
{
    check_csv_n(data, strlen(data), opt, want);
}

/* Opens a temp file holding data; the caller closes and unlinks. */
static csv_reader *open_data(const char *data, const csv_options *opt,
                             char *path, size_t cap)
{
    csv_reader *r = NULL;
    temp_file(path, cap, data, strlen(data));
    ck_assert_int_eq(csv_open(&r, path, opt), LS_OK);
    return r;
}

/* splitmix64 with caller-held state. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static const char *data_dir(void)
{
    const char *dir = getenv("LEADSCORE_DATA_DIR");
    return dir && *dir ? dir : "/work/shared/data";
}

/* ------------------------------------------------------------------ */
/* Grammar                                                             */
/* ------------------------------------------------------------------ */

START_TEST(simple_rows)
{
    check_csv("a,b,c\nd,e,f\n", NULL, "1{a|b|c}2{d|e|f}=0");
    check_csv("a,b\r\nc,d\r\n", NULL, "1{a|b}2{c|d}=0");
    check_csv("a,b\nc,d", NULL, "1{a|b}2{c|d}=0");
    check_csv("a,b\r\nc,d\r", NULL, "1{a|b}2{c|d}=0");
    check_csv("single", NULL, "1{single}=0");
    check_csv("", NULL, "=0");
    check_csv("x, y ,z \n", NULL, "1{x| y |z }=0");
}
END_TEST

START_TEST(empty_fields)
{
    check_csv(",a,,\n,\n", NULL, "1{|a||}2{|}=0");
    check_csv("a,", NULL, "1{a|}=0");
    check_csv(",", NULL, "1{|}=0");
    check_csv("\"\"\n", NULL, "1{}=0");
    check_csv("a,\"\"", NULL, "1{a|}=0");
    check_csv("\"\",\"\"\r\n", NULL, "1{|}=0");
}
END_TEST

START_TEST(empty_lines_skipped)
{
    check_csv("\n\na\n\r\n\nb\r\n\n", NULL, "3{a}6{b}=0");
    check_csv("\r\n\r\n", NULL, "=0");
    check_csv("\n", NULL, "=0");
    /* Lone CR ends a line as well. */
    check_csv("a\rb\r\nc\r\rd", NULL, "1{a}2{b}3{c}5{d}=0");
}
END_TEST

START_TEST(quoted_fields)
{
    check_csv("\"a,b\",\"say \"\"hi\"\"\",\"\"\n", NULL, "1{a,b|say \"hi\"|}=0");
    check_csv("\"\"\"\"\n", NULL, "1{\"}=0");
    check_csv("\"abc\"", NULL, "1{abc}=0");
    check_csv("\"a\"\"\"", NULL, "1{a\"}=0");
    /* Embedded newlines move the line count of later records. */
    check_csv("x,\"l1\nl2\",y\nz\n", NULL, "1{x|l1\nl2|y}3{z}=0");
    check_csv("x,\"l1\r\nl2\"\r\nz\r\n", NULL, "1{x|l1\r\nl2}3{z}=0");
    check_csv("\"\n\n\n\"\nq\n", NULL, "1{\n\n\n}5{q}=0");
    check_csv("\"a\rb\"\nc\n", NULL, "1{a\rb}2{c}=0");
    /* A quote only opens a field at its very start. */
    check_csv("x, \"a\"\n", NULL, "1{x| \"a\"}=0");
}
END_TEST

START_TEST(stray_quote_is_literal)
{
    check_csv("ab\"c,d\"\n", NULL, "1{ab\"c|d\"}=0");
    check_csv("a\"\"b\n", NULL, "1{a\"\"b}=0");
}
END_TEST

START_TEST(unterminated_quote)
{
    char path[512];
    csv_row row;
    csv_reader *r = open_data("a,b\nc,\"open\nmore\n", NULL, path, sizeof path);
    ck_assert_str_eq(csv_error(r), "");
    ck_assert_int_eq(csv_next(r, &row), 1);
    ck_assert_int_eq(csv_next(r, &row), LS_EPARSE);
    ck_assert_str_eq(csv_error(r), "line 2: unterminated quoted field");
    /* Sticky. */
    ck_assert_int_eq(csv_next(r, &row), LS_EPARSE);
    ck_assert_str_eq(csv_error(r), "line 2: unterminated quoted field");
    csv_close(&r);
    unlink(path);
    check_csv("\"", NULL, "=-12");
    check_csv("a\n\n\"x\"\"", NULL, "1{a}=-12");
}
END_TEST

START_TEST(junk_after_closing_quote)
{
    char path[512];
    csv_row row;
    csv_reader *r = open_data("x\n\"a\nb\"c,d\n", NULL, path, sizeof path);
    ck_assert_int_eq(csv_next(r, &row), 1);
    ck_assert_int_eq(csv_next(r, &row), LS_EPARSE);
    ck_assert_str_eq(csv_error(r), "line 3: unexpected character after closing quote");
    csv_close(&r);
    unlink(path);
    check_csv("\"ab\"c,d\n", NULL, "=-12");
    check_csv("\"ab\" ,d\n", NULL, "=-12");
}
END_TEST

START_TEST(byte_order_mark)
{
    check_csv("\xEF\xBB\xBF" "id,name\n1,x\n", NULL, "1{id|name}2{1|x}=0");
    check_csv("\xEF\xBB\xBF", NULL, "=0");
    check_csv("\xEF\xBB\xBF" "\"q\"", NULL, "1{q}=0");
    /* Only at the very start, and only whole. */
    check_csv("a\n\xEF\xBB\xBF" "b\n", NULL, "1{a}2{\xEF\xBB\xBF" "b}=0");
    check_csv("\xEF\xBB", NULL, "1{\xEF\xBB}=0");
    check_csv(" \xEF\xBB\xBF" "a", NULL, "1{ \xEF\xBB\xBF" "a}=0");
}
END_TEST

START_TEST(other_delimiters)
{
    csv_options tab = {.delimiter = '\t'};
    csv_options semi = {.delimiter = ';'};
    check_csv("a\tb,c\t\n\"x\ty\"\tz\n", &tab, "1{a|b,c|}2{x\ty|z}=0");
    check_csv("1;\"2;3\";4\r\n;\n", &semi, "1{1|2;3|4}2{|}=0");
    check_csv("a,b;c\n", &semi, "1{a,b|c}=0");
}
END_TEST

START_TEST(whitespace_mode)
{
    csv_options ws = {.whitespace = 1};
    check_csv(" 00004 0001 19970101  2   29.33\r\n", &ws,
              "1{00004|0001|19970101|2|29.33}=0");
    check_csv("\t a\t\tb  \n   \n\r\n\"x y\" \"\" z\n", &ws,
              "1{a|b}4{x y||z}=0");
    check_csv("a b  ", &ws, "1{a|b}=0");
    check_csv("  a,b ;c\n", &ws, "1{a,b|;c}=0");
    check_csv("   ", &ws, "=0");
    check_csv("\"a\"b\n", &ws, "=-12");
    check_csv("\"a\" b\n\"c\"\t\n", &ws, "1{a|b}2{c}=0");
}
END_TEST

START_TEST(embedded_nul)
{
    char path[512];
    csv_reader *r = NULL;
    csv_row row;
    static const char data[] = "a\0b,c\n";
    temp_file(path, sizeof path, data, sizeof data - 1);
    ck_assert_int_eq(csv_open(&r, path, NULL), LS_OK);
    ck_assert_int_eq(csv_next(r, &row), 1);
    ck_assert_uint_eq(row.nfields, 2);
    ck_assert_uint_eq(row.len[0], 3);
    ck_assert_mem_eq(row.field[0], "a\0b", 4);
    ck_assert_str_eq(row.field[1], "c");
    ck_assert_int_eq(csv_next(r, &row), 0);
    ck_assert_int_eq(csv_next(r, &row), 0);
    csv_close(&r);
    unlink(path);
}
END_TEST

START_TEST(header_index)
{
    char path[512];
    csv_row row;
    csv_reader *r = open_data("id,name,ts,,name\n", NULL, path, sizeof path);
    ck_assert_int_eq(csv_next(r, &row), 1);
    ck_assert_int_eq(csv_header_index(&row, "id"), 0);
    ck_assert_int_eq(csv_header_index(&row, "name"), 1);
    ck_assert_int_eq(csv_header_index(&row, "ts"), 2);
    ck_assert_int_eq(csv_header_index(&row, ""), 3);
    ck_assert_int_eq(csv_header_index(&row, "nope"), -1);
    ck_assert_int_eq(csv_header_index(&row, "Name"), -1);
    ck_assert_int_eq(csv_header_index(&row, "nam"), -1);
    ck_assert_int_eq(csv_header_index(NULL, "id"), -1);
    ck_assert_int_eq(csv_header_index(&row, NULL), -1);
    csv_close(&r);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits and errors                                                   */
/* ------------------------------------------------------------------ */

START_TEST(max_record_bytes)
{
    csv_options small = {.max_record_bytes = 16};
    char path[512];
    csv_row row;

    /* 15 bytes + 1 per field = 16 fits; 16 + 1 does not. */
    check_csv("abcdefghijklmno\n", &small, "1{abcdefghijklmno}=0");
    check_csv("abcdefghijklmnop\n", &small, "=-3");
    check_csv("a,b,c,d,e,f,g,h\n", &small, "1{a|b|c|d|e|f|g|h}=0");
    check_csv("a,b,c,d,e,f,g,h,i\n", &small, "=-3");
    check_csv(",,,,,,,,,,,,,,,\n", &small, "1{|||||||||||||||}=0");
    check_csv(",,,,,,,,,,,,,,,,\n", &small, "=-3");
    check_csv("\"abcdefghijklmn\"\"\"\n", &small, "1{abcdefghijklmn\"}=0");

    csv_reader *r = open_data("ok\n\n\"0123456789\n0123456789\"\nnext\n", &small,
                              path, sizeof path);
    ck_assert_int_eq(csv_next(r, &row), 1);
    ck_assert_int_eq(csv_next(r, &row), LS_ETOOLARGE);
    ck_assert_str_eq(csv_error(r), "line 3: record exceeds max_record_bytes (16)");
    ck_assert_int_eq(csv_next(r, &row), LS_ETOOLARGE);
    csv_close(&r);
    unlink(path);
}
END_TEST

START_TEST(default_limit_is_one_mib)
{
    size_t n = CSV_DEFAULT_MAX_RECORD + 100;
    char *big = malloc(n + 1);
    sbuf want = {0};
    ck_assert_ptr_nonnull(big);

    /* A quoted field just under 1 MiB spans several read buffers. */
    size_t flen = CSV_DEFAULT_MAX_RECORD - 3; /* + NUL, + "x" and NUL */
    big[0] = '"';
    memset(big + 1, 'q', flen);
    memcpy(big + 1 + flen, "\",x\ny", 5);
    sb_str(&want, "1{");
    for (size_t i = 0; i < flen; i++)
        sb_str(&want, "q");
    sb_str(&want, "|x}2{y}=0");
    check_csv_n(big, flen + 6, NULL, want.p);

    memset(big, 'z', n);
    big[n] = '\0';
    check_csv(big, NULL, "=-3");
    free(big);
    sb_free(&want);
}
END_TEST

START_TEST(open_errors)
{
    csv_reader *r = (csv_reader *)&r;
    csv_options bad = {.delimiter = '"'};
    csv_options nl = {.delimiter = '\n'};
    csv_row row;
    char path[512];

    ck_assert_int_eq(csv_open(&r, "/nonexistent/dir/x.csv", NULL), LS_ENOTFOUND);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(csv_open(&r, NULL, NULL), LS_EINVAL);
    ck_assert_int_eq(csv_open(NULL, "x", NULL), LS_EINVAL);
    ck_assert_int_eq(csv_open_fd(&r, -1, NULL), LS_EINVAL);
    ck_assert_int_eq(csv_open_fd(NULL, 0, NULL), LS_EINVAL);
    ck_assert_int_eq(csv_next(NULL, &row), LS_EINVAL);
    ck_assert_str_eq(csv_error(NULL), "");

    temp_file(path, sizeof path, "a\n", 2);
    ck_assert_int_eq(csv_open(&r, path, &bad), LS_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(csv_open(&r, path, &nl), LS_EINVAL);
    ck_assert_int_eq(csv_open(&r, path, NULL), LS_OK);
    ck_assert_int_eq(csv_next(r, NULL), LS_EINVAL);
    csv_close(&r);
    csv_close(&r);
    csv_close(NULL);
    unlink(path);

    /* A directory opens but cannot be read. */
    const char *dir = getenv("TMPDIR");
    ck_assert_int_eq(csv_open(&r, dir && *dir ? dir : "/tmp", NULL), LS_OK);
    ck_assert_int_eq(csv_next(r, &row), LS_EIO);
    ck_assert_ptr_nonnull(strstr(csv_error(r), "line 1: read error"));
    csv_close(&r);
}
END_TEST

START_TEST(read_from_fd)
{
    char path[512];
    csv_reader *r = NULL;
    sbuf got = {0};
    int fds[2];

    /* A file descriptor stays the caller's. */
    temp_file(path, sizeof path, "a,b\n\"c\nd\",e\n", 12);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(csv_open_fd(&r, fd, NULL), LS_OK);
    dump_reader(r, &got);
    csv_close(&r);
    ck_assert_str_eq(got.p, "1{a|b}2{c\nd|e}=0");
    ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
    ck_assert_int_eq(close(fd), 0);
    unlink(path);

    /* A pipe, as for stdin, BOM included. */
    static const char data[] = "\xEF\xBB\xBF" "x;y\r\n1;2";
    csv_options semi = {.delimiter = ';'};
    got.len = 0;
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], data, sizeof data - 1), (ssize_t)(sizeof data - 1));
    ck_assert_int_eq(close(fds[1]), 0);
    ck_assert_int_eq(csv_open_fd(&r, fds[0], &semi), LS_OK);
    dump_reader(r, &got);
    csv_close(&r);
    ck_assert_str_eq(got.p, "1{x|y}2{1|2}=0");
    ck_assert_int_eq(close(fds[0]), 0);
    sb_free(&got);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Property test, gzip                                                 */
/* ------------------------------------------------------------------ */

/* Appends one random field to file (encoded) and dump (decoded). */
static void random_field(uint64_t *rng, int only_field, sbuf *file, sbuf *dump)
{
    static const char alphabet[] = "abxy ,,\"\r\n\n";
    char raw[32];
    size_t n = rng_next(rng) % 14;
    int quote = rng_next(rng) % 4 == 0 || (n == 0 && only_field);

    for (size_t i = 0; i < n; i++) {
        /* Mostly plain letters so that records are not all quoted. */
        uint64_t k = rng_next(rng);
        raw[i] = k % 3 ? "abxy"[k % 4] : alphabet[(k >> 8) % (sizeof alphabet - 1)];
        if (strchr(",\"\r\n", raw[i]))
            quote = 1;
    }
    sb_add(dump, raw, n);
    if (!quote) {
        sb_add(file, raw, n);
        return;
    }
    sb_str(file, "\"");
    for (size_t i = 0; i < n; i++)
        sb_add(file, raw[i] == '"' ? "\"\"" : &raw[i], raw[i] == '"' ? 2 : 1);
    sb_str(file, "\"");
}

/* Builds a random CSV of about `bytes` bytes and its expected dump. */
static void random_csv(uint64_t seed, size_t bytes, sbuf *file, sbuf *dump)
{
    uint64_t rng = seed;
    unsigned long long line = 1;
    while (file->len < bytes) {
        size_t nf = 1 + rng_next(&rng) % 6;
        const char *eol = (const char *[]){"\n", "\r\n", "\r"}[rng_next(&rng) % 3];
        sb_printf(dump, "%llu{", line);
        for (size_t f = 0; f < nf; f++) {
            size_t before = dump->len;
            if (f > 0) {
                sb_str(file, ",");
                sb_str(dump, "|");
            }
            random_field(&rng, nf == 1, file, dump);
            for (size_t i = before; i < dump->len; i++)
                line += dump->p[i] == '\n';
        }
        sb_str(dump, "}");
        sb_str(file, eol);
        line++;
        /* Some empty lines, not after a lone CR (it would become CRLF). */
        while (eol[0] == '\n' && rng_next(&rng) % 8 == 0) {
            sb_str(file, "\n");
            line++;
        }
    }
    sb_str(dump, "=0");
}

START_TEST(random_round_trip)
{
    sbuf file = {0}, want = {0}, got = {0};
    char path[512];

    random_csv(42, 3u << 20, &file, &want);
    temp_file(path, sizeof path, file.p, file.len);
    dump_path(path, NULL, &got);
    unlink(path);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert(memcmp(got.p, want.p, want.len) == 0);

    got.len = 0;
    temp_gz(path, sizeof path, file.p, file.len);
    dump_path(path, NULL, &got);
    unlink(path);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert(memcmp(got.p, want.p, want.len) == 0);
    sb_free(&file);
    sb_free(&want);
    sb_free(&got);
}
END_TEST

START_TEST(gzip_matches_plain)
{
    static const char data[] = "\xEF\xBB\xBF" "id,ts,\"note\"\r\n"
                               "1,2015-06-02,\"multi\nline\"\r\n\r\n2,,x\n";
    char plain[512], gz[512];
    sbuf a = {0}, b = {0};
    temp_file(plain, sizeof plain, data, sizeof data - 1);
    temp_gz(gz, sizeof gz, data, sizeof data - 1);
    dump_path(plain, NULL, &a);
    dump_path(gz, NULL, &b);
    ck_assert_str_eq(a.p, "1{id|ts|note}2{1|2015-06-02|multi\nline}5{2||x}=0");
    ck_assert_str_eq(a.p, b.p);
    unlink(plain);
    unlink(gz);
    sb_free(&a);
    sb_free(&b);
}
END_TEST

/* Writes the first keep bytes of a gzip file of data, reads it back and
 * asserts the rows end with LS_EIO. */
static void check_truncated(const sbuf *gzdata, size_t keep)
{
    char path[512];
    sbuf got = {0};
    csv_reader *r = NULL;
    temp_file(path, sizeof path, gzdata->p, keep);
    ck_assert_int_eq(csv_open(&r, path, NULL), LS_OK);
    int rc = dump_reader(r, &got);
    ck_assert_msg(rc == LS_EIO, "keep %zu of %zu: rc %d", keep, gzdata->len, rc);
    ck_assert_ptr_nonnull(strstr(csv_error(r), "read error"));
    csv_close(&r);
    unlink(path);
    sb_free(&got);
}

START_TEST(truncated_gzip)
{
    sbuf file = {0}, want = {0}, gzdata = {0};
    char path[512];
    uint64_t rng = 7;

    random_csv(7, 1u << 20, &file, &want);
    temp_gz(path, sizeof path, file.p, file.len);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sb_add(&gzdata, chunk, n);
    fclose(f);
    unlink(path);

    /* Cut in the trailer, in the middle, just after the header. */
    check_truncated(&gzdata, gzdata.len - 1);
    check_truncated(&gzdata, gzdata.len - 8);
    check_truncated(&gzdata, gzdata.len / 2);
    check_truncated(&gzdata, 20);
    for (int i = 0; i < 10; i++)
        check_truncated(&gzdata, 20 + rng_next(&rng) % (gzdata.len - 21));
    sb_free(&file);
    sb_free(&want);
    sb_free(&gzdata);
}
END_TEST

START_TEST(cdnow_sample)
{
    char path[1024];
    csv_options ws = {.whitespace = 1};
    csv_reader *r = NULL;
    csv_row row;
    size_t rows = 0;
    int rc;

    snprintf(path, sizeof path, "%s/cdnow/CDNOW_sample.txt", data_dir());
    if (access(path, R_OK) != 0)
        return; /* data set not present: nothing to check */
    ck_assert_int_eq(csv_open(&r, path, &ws), LS_OK);
    while ((rc = csv_next(r, &row)) == 1) {
        rows++;
        ck_assert_uint_eq(row.nfields, 5);
        ck_assert_uint_eq(row.line, rows);
        ck_assert_uint_eq(row.len[2], 8); /* YYYYMMDD */
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(rows, 6919);
    csv_close(&r);
}
END_TEST

static Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *grammar = tcase_create("grammar");
    TCase *limits = tcase_create("limits");
    TCase *bulk = tcase_create("bulk");

    tcase_add_test(grammar, simple_rows);
    tcase_add_test(grammar, empty_fields);
    tcase_add_test(grammar, empty_lines_skipped);
    tcase_add_test(grammar, quoted_fields);
    tcase_add_test(grammar, stray_quote_is_literal);
    tcase_add_test(grammar, unterminated_quote);
    tcase_add_test(grammar, junk_after_closing_quote);
    tcase_add_test(grammar, byte_order_mark);
    tcase_add_test(grammar, other_delimiters);
    tcase_add_test(grammar, whitespace_mode);
    tcase_add_test(grammar, embedded_nul);
    tcase_add_test(grammar, header_index);
    tcase_add_test(limits, max_record_bytes);
    tcase_add_test(limits, default_limit_is_one_mib);
    tcase_add_test(limits, open_errors);
    tcase_add_test(limits, read_from_fd);
    tcase_add_test(bulk, random_round_trip);
    tcase_add_test(bulk, gzip_matches_plain);
    tcase_add_test(bulk, truncated_gzip);
    tcase_add_test(bulk, cdnow_sample);
    tcase_set_timeout(bulk, 120);
    suite_add_tcase(s, grammar);
    suite_add_tcase(s, limits);
    suite_add_tcase(s, bulk);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(csv_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
