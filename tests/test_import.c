/* test_import.c -- Check suite for eventfile.c (reading shop events out of
 * CSV and JSON Lines exports) and `leadscore import` (cmd_import.c).
 *
 * The reader is tested in-process: each test writes a small input file
 * into a temporary directory, reads it through eventfile_next() and checks
 * every event and every bad row (with its line number).  The command is
 * tested through the real binary (tu_run_cli): summaries, exit statuses,
 * idempotent re-import read back from the store, --max-errors, a running
 * service (--connect), SIGINT in the middle of a batch, and the CDNOW data
 * set (69,659 purchases of 23,570 customers, from 1997). */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "eventfile.h"
#include "feature.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

#define MAX_GOT 64

typedef struct {
    char customer[300], eid[300], session[300], product[300], category[300], order[300];
    event_type type;
    int64_t ts;
    double price, value;
    int64_t qty;
    int discounted, rating, birthday;
    unsigned has;
    uint64_t first_line, last_line; /* eventfile_event_lines */
} got_event;

typedef struct {
    int nev, nbad, status;         /* status: how reading ended (0 or < 0) */
    got_event ev[MAX_GOT];
    char bad[MAX_GOT][600];
    char kind[MAX_GOT][120];
    eventfile_stats st;
} got;

static char tmp[512];

static void setup(void)
{
    tu_tempdir(tmp, sizeof tmp);
}

static void teardown(void)
{
    tu_rmtree(tmp);
}

static void put_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

/* Writes text to tmp/name; returns the path (static buffer per call site). */
static const char *write_file(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", tmp, name);
    put_file(path, text, strlen(text));
    return path;
}

static const char *write_gz(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", tmp, name);
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, text, (unsigned)strlen(text)), (int)strlen(text));
    ck_assert_int_eq(gzclose(gz), Z_OK);
    return path;
}

static void copy_s(char *dst, size_t cap, ls_str s)
{
    ck_assert_uint_lt(s.len, cap);
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

/* Reads the whole file, collecting events and bad rows. */
static void read_all(const char *path, const eventfile_options *o, got *g)
{
    char err[600];
    eventfile *f = NULL;
    memset(g, 0, sizeof *g);
    int rc = eventfile_open(&f, path, o, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "eventfile_open %s: %s", path, err);
    ls_event ev;
    while ((rc = eventfile_next(f, &ev)) != 0) {
        if (rc == 1) {
            ck_assert_int_lt(g->nev, MAX_GOT);
            got_event *e = &g->ev[g->nev++];
            copy_s(e->customer, sizeof e->customer, ev.customer);
            copy_s(e->eid, sizeof e->eid, ev.event_id);
            copy_s(e->session, sizeof e->session, ev.session);
            copy_s(e->product, sizeof e->product, ev.product);
            copy_s(e->category, sizeof e->category, ev.category);
            copy_s(e->order, sizeof e->order, ev.order_id);
            e->type = ev.type;
            e->ts = ev.ts_ms;
            e->price = ev.price;
            e->value = ev.value;
            e->qty = ev.quantity;
            e->discounted = ev.discounted;
            e->rating = ev.rating;
            e->birthday = ev.birthday_mmdd;
            e->has = ev.has;
            eventfile_event_lines(f, &e->first_line, &e->last_line);
        } else if (rc == EVENTFILE_BAD_ROW) {
            ck_assert_int_lt(g->nbad, MAX_GOT);
            snprintf(g->bad[g->nbad], sizeof g->bad[0], "%s", eventfile_error(f));
            snprintf(g->kind[g->nbad], sizeof g->kind[0], "%s", eventfile_error_kind(f));
            ck_assert_msg(strncmp(g->bad[g->nbad], path, strlen(path)) == 0, "message names the file: %s",
                          g->bad[g->nbad]);
            g->nbad++;
        } else {
            ck_assert_int_lt(rc, 0);
            g->status = rc;
            snprintf(g->bad[g->nbad], sizeof g->bad[0], "%s", eventfile_error(f));
            break;
        }
    }
    ck_assert_int_eq(eventfile_next(f, &ev), g->status); /* sticky */
    eventfile_get_stats(f, &g->st);
    ck_assert_uint_eq(g->st.events, (uint64_t)g->nev);
    ck_assert_uint_eq(g->st.bad_rows, (uint64_t)g->nbad);
    eventfile_close(&f);
    ck_assert_ptr_null(f);
    eventfile_close(&f); /* harmless twice */
}

/* "PATH:LINE:" prefix check for bad row i. */
static void assert_bad_line(const got *g, int i, const char *path, int line)
{
    char want[600];
    snprintf(want, sizeof want, "%s:%d: ", path, line);
    ck_assert_msg(i < g->nbad, "bad row %d missing", i);
    ck_assert_msg(strncmp(g->bad[i], want, strlen(want)) == 0, "bad row %d: want %s..., got %s", i, want, g->bad[i]);
}

static void opts(eventfile_options *o, const char *map, const char *types)
{
    char err[300];
    eventfile_options_init(o);
    if (map)
        ck_assert_msg(eventfile_parse_map(map, &o->map, err, sizeof err) == LS_OK, "map: %s", err);
    if (types)
        ck_assert_msg(eventfile_parse_types(types, &o->types, err, sizeof err) == LS_OK, "types: %s", err);
}

/* Number after "label" in the import summary, or -1. */
static long long summary_num(const char *out, const char *label)
{
    const char *p = strstr(out, label);
    if (!p)
        return -1;
    p += strlen(label);
    while (*p == ' ')
        p++;
    return strtoll(p, NULL, 10);
}

/* A read-only look at a store. */
static store *open_ro(const char *dir)
{
    store *s = NULL;
    char err[300];
    store_options so = {.read_only = 1};
    ck_assert_msg(store_open(&s, dir, &so, NULL, err, sizeof err) == LS_OK, "store_open: %s", err);
    return s;
}

static int get_features(store *s, const char *id, ls_features *f)
{
    store_reader *r;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    int rc = store_reader_get(r, id, strlen(id), f);
    store_reader_end(r);
    store_reader_close(&r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* CSV                                                                 */
/* ------------------------------------------------------------------ */

START_TEST(csv_edge_cases)
{
    char p[600];
    /* a BOM, CRLF, a quoted field with a comma, one with a line break,
     * doubled quotes, empty optional fields, a short row, a bad number,
     * blanks around fields, and a last line without its newline */
    const char *path = write_file(p, sizeof p, "edge.csv",
        "\xEF\xBB\xBF" "customer,type,ts,category,product,price\r\n"
        "alice,product_view,1700000000,\"shoes,running\",\"multi\r\nline\",10.5\r\n"
        "bob,add_to_cart,1700000001,\"say \"\"hi\"\"\",p2, 3 \r\n"
        "carol,page_view,1700000002,,,\r\n"
        "dave,page_view,1700000003\r\n"
        "eve,purchase,1700000004,c,p,abc\r\n"
        " frank ,purchase, 1700000005 ,c,p,7");
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.status, 0);
    ck_assert_int_eq(g.nev, 4);
    ck_assert_str_eq(g.ev[0].customer, "alice");
    ck_assert_int_eq(g.ev[0].type, EV_PRODUCT_VIEW);
    ck_assert_int_eq(g.ev[0].ts, 1700000000000LL);
    ck_assert_str_eq(g.ev[0].category, "shoes,running");
    ck_assert_str_eq(g.ev[0].product, "multi\r\nline");
    ck_assert_double_eq(g.ev[0].price, 10.5);
    ck_assert_str_eq(g.ev[1].category, "say \"hi\"");
    ck_assert_double_eq(g.ev[1].price, 3); /* " 3 " trimmed */
    ck_assert_str_eq(g.ev[2].customer, "carol");
    ck_assert_str_eq(g.ev[2].category, "");
    ck_assert_uint_eq(g.ev[2].has & EVF_PRICE, 0);
    ck_assert_str_eq(g.ev[3].customer, "frank");
    ck_assert_int_eq(g.ev[3].ts, 1700000005000LL);
    ck_assert_double_eq(g.ev[3].value, 7); /* price x quantity 1 */
    ck_assert_int_eq(g.nbad, 2);
    assert_bad_line(&g, 0, path, 6); /* the quoted line break makes alice lines 2-3 */
    ck_assert_str_eq(g.kind[0], "wrong number of fields");
    assert_bad_line(&g, 1, path, 7);
    ck_assert_ptr_nonnull(strstr(g.bad[1], "price \"abc\" is not a number"));
    ck_assert_uint_eq(g.st.rows, 6);
    /* every event has an id, "row:" and 16 hex digits */
    for (int i = 0; i < g.nev; i++)
        ck_assert_msg(strncmp(g.ev[i].eid, "row:", 4) == 0 && strlen(g.ev[i].eid) == 20, "id %s", g.ev[i].eid);
}
END_TEST

START_TEST(csv_bad_values)
{
    char p[600];
    const char *path = write_file(p, sizeof p, "bad.csv",
        "customer,type,ts,price,quantity,rating,discounted,birthday,value\n"
        "a,page_view,1700000000,1e3,2.0,,yes,02-29,\n"        /* fine: 1000, 2, discounted, birthday */
        "a,page_view,1700000000,0x10,,,,,\n"                  /* hex is not a decimal number */
        "a,page_view,1700000000,,1.5,,,,\n"                   /* quantity not whole */
        "a,review,1700000000,,,9,,,\n"                        /* rating out of range (event_validate) */
        "a,review,1700000000,,,0,,,\n"                        /* rating 0 (event_validate) */
        "a,page_view,1700000000,,,,maybe,,\n"
        "a,page_view,1700000000,,,,,13-01,\n"
        "a,page_view,1700000000,-5,,,,,\n"                    /* negative money (event_validate) */
        "a,page_view,1700000000,,0,,,,\n"                     /* quantity 0 (event_validate) */
        ",page_view,1700000000,,,,,,\n"
        "a,,1700000000,,,,,,\n"
        "a,page_view,,,,,,,\n"
        "a,page_view,soon,,,,,,\n"
        "a,teleport,1700000000,,,,,,\n"
        "a,purchase,1700000000,,,,,,nan\n"
        "a,page_view,1700000000,,4611686018427387904,,,,\n"  /* whole, but far out of range */
        "a,review,1700000000,,,1e300,,,\n");
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_double_eq(g.ev[0].price, 1000);
    ck_assert_int_eq(g.ev[0].qty, 2);
    ck_assert_int_eq(g.ev[0].discounted, 1);
    ck_assert_int_eq(g.ev[0].birthday, 229);
    ck_assert_int_eq(g.nbad, 16);
    static const char *const kinds[] = {
        "price is not a number", "quantity is not a whole number", "rating must be an integer from 1 to 5",
        "rating must be an integer from 1 to 5", "discounted is not true or false", "birthday is not MM-DD",
        "price must be a finite number between 0 and 1e12", "quantity must be an integer between 1 and 1000000",
        "customer is missing", "type is missing", "ts is missing", "ts is not a time", "unknown event type",
        "value is not a number", "quantity must be an integer between 1 and 1000000",
        "rating must be an integer from 1 to 5"};
    for (int i = 0; i < 16; i++) {
        assert_bad_line(&g, i, path, i + 3);
        ck_assert_str_eq(g.kind[i], kinds[i]);
    }
    ck_assert_ptr_nonnull(strstr(g.bad[12], "\"teleport\" is not an event type (translate it with --types)"));
    /* a review without a rating is a review (v1: rating is optional) */
    path = write_file(p, sizeof p, "stars.csv", "customer,type,ts,rating\na,review,1700000000,\nb,review,1700000000,4\n");
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nbad, 0);
    ck_assert_int_eq(g.nev, 2);
    ck_assert_int_eq(g.ev[0].type, EV_REVIEW);
    ck_assert_uint_eq(g.ev[0].has & EVF_RATING, 0);
    ck_assert_int_eq(g.ev[1].rating, 4);
}
END_TEST

/* A NUL byte in a CSV field is a bad row naming the field, as in JSON
 * Lines: before, `--data` stored "ab\0x" while `--connect` sent "ab". */
START_TEST(csv_nul_bytes_are_bad_rows)
{
    char p[600];
    static const char text[] = "customer,type,ts,event_id\n"
                               "ab\0x,page_view,1700000000,\n"
                               "c,page_view,1700000000,x\0a\n"
                               "c,page_view,1700000000,x\n";
    snprintf(p, sizeof p, "%s/nul.csv", tmp);
    put_file(p, text, sizeof text - 1);
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(p, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_str_eq(g.ev[0].eid, "x");
    ck_assert_int_eq(g.nbad, 2);
    assert_bad_line(&g, 0, p, 2);
    assert_bad_line(&g, 1, p, 3);
    ck_assert_str_eq(g.kind[0], "a field contains a NUL byte");
    ck_assert_ptr_nonnull(strstr(g.bad[0], "customer contains a NUL byte"));
    ck_assert_ptr_nonnull(strstr(g.bad[1], "event_id contains a NUL byte"));
}
END_TEST

START_TEST(csv_no_header_positions)
{
    char p[600];
    /* semicolons, no header; columns by position; a short row */
    const char *path = write_file(p, sizeof p, "nohdr.csv",
        "u1;2019-10-01T10:00:00Z;purchase;12.5\n"
        "u2;2019-10-01T11:00:00Z\n"
        "u3;2019-10-01T12:00:00Z;purchase;3\n");
    got g;
    eventfile_options o;
    opts(&o, "customer=1,ts=2,type=3,value=4", NULL);
    o.no_header = 1;
    o.delimiter = ';';
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 2);
    ck_assert_double_eq(g.ev[0].value, 12.5);
    ck_assert_int_eq(g.ev[0].ts, 1569924000000LL);
    ck_assert_int_eq(g.nbad, 1);
    assert_bad_line(&g, 0, path, 2);
    ck_assert_str_eq(g.kind[0], "missing column");

    /* without a map there is nothing to name the columns by */
    char err[600];
    eventfile *f = NULL;
    opts(&o, NULL, NULL);
    o.no_header = 1;
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(err, "--map customer=COLUMN"));
}
END_TEST

START_TEST(csv_fatal_quote)
{
    char p[600];
    /* an unterminated quote: csv.h cannot resynchronise, so it is fatal
     * (LS_EPARSE) after the rows before it; an order being folded when the
     * read stops is skipped whole (the rest of it may lie past the cut: a
     * part imported now would make the whole order a duplicate later) */
    const char *path = write_file(p, sizeof p, "q.csv",
        "customer,type,ts,order_id,value\n"
        "a,page_view,1700000000,,\n"
        "a,purchase,1700000001,o1,2\n"
        "a,purchase,1700000001,o1,3\n"
        "b,page_view,1700000002,\"oops,\n"
        "c,page_view,1700000003,,\n");
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.status, LS_EPARSE);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_int_eq(g.ev[0].type, EV_PAGE_VIEW);
    ck_assert_int_eq(g.nbad, 1); /* the order; the fatal message follows it */
    ck_assert_str_eq(g.kind[0], "order has a refused line");
    ck_assert_msg(strstr(g.bad[0], "its line 5 was refused"), "%s", g.bad[0]);
    ck_assert_msg(strstr(g.bad[1], path) && strstr(g.bad[1], "line 5: unterminated quoted field"), "%s", g.bad[1]);
}
END_TEST

START_TEST(csv_open_errors)
{
    char p[600], err[600];
    eventfile *f = NULL;
    eventfile_options o;
    const char *path = write_file(p, sizeof p, "h.csv", "user_id,event_time,event_type\nx,1700000000,page_view\n");
    opts(&o, "customer=uid", NULL);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "no column \"uid\" for customer"));
    ck_assert_ptr_nonnull(strstr(err, "\"user_id\", \"event_time\", \"event_type\""));
    opts(&o, NULL, NULL);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "no column for customer"));
    snprintf(p, sizeof p, "%s/none.csv", tmp);
    ck_assert_int_eq(eventfile_open(&f, p, &o, err, sizeof err), LS_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "none.csv"));
    path = write_file(p, sizeof p, "empty.csv", "");
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    ck_assert_int_eq(eventfile_open(&f, tmp, &o, err, sizeof err), LS_EIO); /* a directory */
    ck_assert_ptr_null(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Times                                                               */
/* ------------------------------------------------------------------ */

START_TEST(timestamps)
{
    char p[600], row[200], text[4096] = "customer,type,ts\n";
    int64_t future = timefmt_now_ms() / 1000 + 3 * 86400;
    static const struct {
        const char *ts;
        int64_t ms; /* 0: a bad row */
    } cases[] = {
        {"1700000000", 1700000000000LL},
        {"1700000000123", 1700000000123LL},
        {"1700000000.5", 1700000000500LL},
        {"2019-10-01 00:00:00 UTC", 1569888000000LL},
        {"2015-06-02T05:02:12Z", 1433221332000LL},
        {"2015-06-02T07:02:12+02:00", 1433221332000LL},
        {"2015-06-02T05:02:12.250", 1433221332250LL},
        {"20150602", 1433203200000LL},
        {"\" 2015-06-02 \"", 1433203200000LL}, /* blanks inside quotes are trimmed too */
        {"19970101", 0},                       /* before 2000 */
        {"yesterday", 0},
        {"2015-13-01", 0},
        {"FUTURE", 0},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cases[i].ts, "FUTURE") == 0)
            snprintf(row, sizeof row, "c%zu,page_view,%lld\n", i, (long long)future);
        else
            snprintf(row, sizeof row, "c%zu,page_view,%s\n", i, cases[i].ts);
        strcat(text, row);
    }
    const char *path = write_file(p, sizeof p, "ts.csv", text);
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    int ev = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].ms) {
            ck_assert_msg(g.ev[ev].ts == cases[i].ms, "%s: got %lld", cases[i].ts, (long long)g.ev[ev].ts);
            ev++;
        } else {
            assert_bad_line(&g, bad++, path, (int)i + 2);
        }
    }
    ck_assert_int_eq(g.nev, ev);
    ck_assert_int_eq(g.nbad, bad);
    ck_assert_str_eq(g.kind[0], "ts is too old");
    ck_assert_ptr_nonnull(strstr(g.bad[0], "1997-01-01T00:00:00Z is before 2000-01-01"));
    ck_assert_str_eq(g.kind[1], "ts is not a time");
    ck_assert_str_eq(g.kind[3], "ts is in the future");

    /* min_ts_ms 0 (--allow-old) takes 1997 */
    o.min_ts_ms = 0;
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, ev + 1);
    ck_assert_int_eq(g.ev[ev].ts, 852076800000LL);

    /* forced formats */
    path = write_file(p, sizeof p, "forced.csv", "customer,type,ts\na,page_view,1700000000\nb,page_view,20150602\n");
    opts(&o, NULL, NULL);
    ck_assert_int_eq(eventfile_parse_ts_format("millis", &o.ts_format), LS_OK);
    read_all(path, &o, &g); /* 1.7e9 ms is 1970: too old; 20150602 ms too */
    ck_assert_int_eq(g.nev, 0);
    ck_assert_int_eq(g.nbad, 2);
    ck_assert_int_eq(eventfile_parse_ts_format("iso", &o.ts_format), LS_OK);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_str_eq(g.ev[0].customer, "b");
    ck_assert_str_eq(g.kind[0], "ts is not a time");
    ck_assert_int_eq(eventfile_parse_ts_format("seconds", &o.ts_format), LS_OK);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1); /* 20150602 s is 1970-08-22: too old */
    ck_assert_int_eq(g.ev[0].ts, 1700000000000LL);
    ck_assert_int_eq(eventfile_parse_ts_format("fortnights", &o.ts_format), LS_EPARSE);
}
END_TEST

/* With --ts-format forcing one form, a ts that is not in it is reported
 * as not being that form (an ISO date is not "not a time"); a number in
 * the form but beyond the year 9999 is out of range. */
START_TEST(forced_ts_format_says_what_was_expected)
{
    char p[600];
    const char *path = write_file(p, sizeof p, "forced_msg.csv",
                                  "customer,type,ts\n"
                                  "a,page_view,2025-01-01T00:00:00Z\n"
                                  "b,page_view,1700000000\n"
                                  "c,page_view,1700000000000000\n"
                                  "d,page_view,soon\n");
    static const struct {
        const char *word;
        const char *bad[4]; /* message of each row, NULL: an event */
    } cases[] = {
        {"seconds",
         {"ts \"2025-01-01T00:00:00Z\" is not Unix seconds (--ts-format seconds)", NULL,
          "ts \"1700000000000000\" is out of range as Unix seconds (--ts-format seconds: years 0000-9999)",
          "ts \"soon\" is not Unix seconds (--ts-format seconds)"}},
        {"millis",
         {"ts \"2025-01-01T00:00:00Z\" is not Unix milliseconds (--ts-format millis)",
          "is before 2000-01-01", /* 1.7e9 ms is 1970 */
          "ts \"1700000000000000\" is out of range as Unix milliseconds (--ts-format millis: years 0000-9999)",
          "ts \"soon\" is not Unix milliseconds (--ts-format millis)"}},
        {"iso",
         {NULL, "ts \"1700000000\" is not an ISO 8601 date (--ts-format iso)",
          "ts \"1700000000000000\" is not an ISO 8601 date (--ts-format iso)",
          "ts \"soon\" is not an ISO 8601 date (--ts-format iso)"}},
        {"auto",
         {NULL, NULL, "ts \"1700000000000000\" is not a time (Unix seconds, ms or ISO 8601)",
          "ts \"soon\" is not a time (Unix seconds, ms or ISO 8601)"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        eventfile_options o;
        got g;
        opts(&o, NULL, NULL);
        ck_assert_int_eq(eventfile_parse_ts_format(cases[c].word, &o.ts_format), LS_OK);
        read_all(path, &o, &g);
        int bad = 0;
        for (int row = 0; row < 4; row++) {
            if (!cases[c].bad[row])
                continue;
            assert_bad_line(&g, bad, path, row + 2);
            ck_assert_msg(strstr(g.bad[bad], cases[c].bad[row]) != NULL, "--ts-format %s, row %d: want %s, got %s",
                          cases[c].word, row + 2, cases[c].bad[row], g.bad[bad]);
            bad++;
        }
        ck_assert_int_eq(g.nbad, bad);
    }
}
END_TEST

/* A header column the mapping reads that is in the header twice is
 * refused at open, naming it and both positions; a name it does not read
 * may repeat; a position picks one of the two. */
START_TEST(csv_duplicate_columns)
{
    char p[600], err[600];
    eventfile *f = NULL;
    eventfile_options o;
    got g;
    const char *path = write_file(p, sizeof p, "dup_ts.csv", "customer,type,ts,ts\na,page_view,1700000000,1600000000\n");
    opts(&o, NULL, NULL);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, "column \"ts\", read for ts, is in the header twice (columns 3 and 4)") != NULL, "%s",
                  err);
    ck_assert_msg(strstr(err, "--map ts=3 or ts=4") != NULL, "%s", err);
    /* a position picks one */
    opts(&o, "ts=4", NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_int_eq(g.ev[0].ts, 1600000000000LL);
    /* the mapped name of another field, repeated */
    path = write_file(p, sizeof p, "dup_user.csv", "user,type,ts,user\na,page_view,1700000000,b\n");
    opts(&o, "customer=user", NULL);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_msg(strstr(err, "column \"user\", read for customer, is in the header twice (columns 1 and 4)") != NULL,
                  "%s", err);
    /* equal ignoring case, with no exact match */
    path = write_file(p, sizeof p, "dup_case.csv", "customer,type,TS,Ts\na,page_view,1700000000,1600000000\n");
    opts(&o, NULL, NULL);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_EPARSE);
    ck_assert_msg(strstr(err, "column \"ts\", read for ts, is in the header twice ignoring case: \"TS\" (column 3) "
                              "and \"Ts\" (column 4)") != NULL, "%s", err);
    /* an exact match wins over one ignoring case: not a duplicate */
    path = write_file(p, sizeof p, "exact.csv", "customer,type,TS,ts\na,page_view,1700000000,1600000000\n");
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_int_eq(g.ev[0].ts, 1600000000000LL);
    /* repeated names the mapping does not read */
    path = write_file(p, sizeof p, "dup_unread.csv",
                      "customer,type,ts,note,note,when,when\na,page_view,1700000000,x,y,1,2\n");
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    /* ... nor one mapped away from, nor one left out */
    path = write_file(p, sizeof p, "dup_away.csv", "customer,type,ts,ts,at,product,product\na,page_view,1,2,1700000000,x,y\n");
    opts(&o, "ts=at,product=", NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_int_eq(g.ev[0].ts, 1700000000000LL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* --map and --types                                                   */
/* ------------------------------------------------------------------ */

START_TEST(map_and_constants)
{
    char p[600], err[300];
    const char *path = write_file(p, sizeof p, "m.csv",
        "user,when,what_price,product,Session\n"
        "u1,2019-10-01,9.5,p1,s1\n"
        "u2,2019-10-02,1,p2,s2\n");
    got g;
    eventfile_options o;
    opts(&o, "customer=user, ts = when ,price=what_price,type=:purchase,category=:books/fiction,product=", NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nbad, 0);
    ck_assert_int_eq(g.nev, 2);
    ck_assert_int_eq(g.ev[0].type, EV_PURCHASE);
    ck_assert_str_eq(g.ev[0].category, "books/fiction");
    ck_assert_str_eq(g.ev[0].product, ""); /* product= leaves it out */
    ck_assert_str_eq(g.ev[0].session, "s1"); /* "Session" found ignoring case */
    ck_assert_double_eq(g.ev[0].value, 9.5);
    ck_assert_int_eq(g.ev[1].ts, 1569974400000LL);

    /* a later --map overrides an earlier one */
    eventfile_map m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(eventfile_parse_map("customer=a", &m, err, sizeof err), LS_OK);
    ck_assert_int_eq(eventfile_parse_map("customer=b,type=:signup", &m, err, sizeof err), LS_OK);
    ck_assert_str_eq(m.field[EVENTFILE_F_CUSTOMER].text, "b");
    ck_assert_int_eq(m.field[EVENTFILE_F_TYPE].source, EVENTFILE_SRC_CONST);
    ck_assert_int_eq(eventfile_parse_map("colour=x", &m, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "\"colour\" is not an event field"));
    ck_assert_int_eq(eventfile_parse_map("customer", &m, err, sizeof err), LS_EPARSE);
    ck_assert_int_eq(eventfile_parse_map("ts=a,ts=b", &m, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "mapped twice"));
    ck_assert_str_eq(eventfile_field_name(EVENTFILE_F_ORDER_ID), "order_id");
    ck_assert_ptr_null(eventfile_field_name(EVENTFILE_NFIELDS));
}
END_TEST

START_TEST(types_translation)
{
    char p[600], err[300];
    const char *path = write_file(p, sizeof p, "t.csv",
        "customer,type,ts\n"
        "a,view,1700000000\n"
        "a,cart,1700000001\n"
        "a,transaction,1700000002\n"
        "a,purchase,1700000003\n"   /* already an event type */
        "a,wishlist,1700000004\n"); /* neither */
    got g;
    eventfile_options o;
    opts(&o, NULL, "view=product_view,cart=add_to_cart");
    ck_assert_int_eq(eventfile_parse_types("transaction=purchase", &o.types, err, sizeof err), LS_OK);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 4);
    ck_assert_int_eq(g.ev[0].type, EV_PRODUCT_VIEW);
    ck_assert_int_eq(g.ev[1].type, EV_ADD_TO_CART);
    ck_assert_int_eq(g.ev[2].type, EV_PURCHASE);
    ck_assert_int_eq(g.ev[3].type, EV_PURCHASE);
    ck_assert_int_eq(g.nbad, 1);
    assert_bad_line(&g, 0, path, 6);
    ck_assert_str_eq(g.kind[0], "unknown event type");
    ck_assert_ptr_nonnull(strstr(g.bad[0], "\"wishlist\" is not an event type after --types"));

    eventfile_types t;
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(eventfile_parse_types("view=glance", &t, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_nonnull(strstr(err, "\"glance\" is not an event type"));
    ck_assert_int_eq(eventfile_parse_types("view", &t, err, sizeof err), LS_EPARSE);
    ck_assert_int_eq(eventfile_parse_types("=purchase", &t, err, sizeof err), LS_EPARSE);
    ck_assert_int_eq(eventfile_parse_types("v=page_view,v=product_view", &t, err, sizeof err), LS_OK);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_int_eq(t.entry[0].to, EV_PRODUCT_VIEW);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Orders and ids                                                      */
/* ------------------------------------------------------------------ */

START_TEST(order_lines_fold)
{
    char p[600];
    const char *path = write_file(p, sizeof p, "orders.csv",
        "customer,type,ts,order_id,product,category,price,quantity,value,discounted\n"
        "a,purchase,1700000001,o1,p1,shoes,10,2,,false\n" /* 20 */
        "a,purchase,1700000000,o1,p2,socks,5,1,,true\n"   /* 5, earlier ts */
        "a,purchase,1700000001,o1,p3,hats,,1,7.5,\n"      /* 7.5 */
        "a,product_view,1700000002,,p4,,,,,\n"
        "b,purchase,1700000003,o2,p1,shoes,3,1,,\n"       /* a one-line order */
        "a,purchase,1700000004,o1,p5,,1,1,,\n"            /* o1 again, not consecutive */
        "a,refund,1700000005,o1,,,,,4,\n"                 /* refund of o1: its own event */
        "c,purchase,1700000006,o3,p1,,1,600000,,\n"
        "c,purchase,1700000006,o3,p2,,1,600000,,\n");     /* quantities sum past 1,000,000 */
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 4);
    got_event *e = &g.ev[0];
    ck_assert_str_eq(e->customer, "a");
    ck_assert_int_eq(e->type, EV_PURCHASE);
    ck_assert_double_eq_tol(e->value, 32.5, 1e-9);
    ck_assert_int_eq(e->qty, 4);
    ck_assert_int_eq(e->ts, 1700000000000LL);
    ck_assert_str_eq(e->product, "p1");
    ck_assert_str_eq(e->category, "shoes");
    ck_assert_int_eq(e->discounted, 1);
    ck_assert_uint_eq(e->has & EVF_PRICE, 0);
    ck_assert_msg(strncmp(e->eid, "order:", 6) == 0 && strlen(e->eid) == 22, "id %s", e->eid);
    ck_assert_int_eq(g.ev[1].type, EV_PRODUCT_VIEW);
    ck_assert_str_eq(g.ev[2].customer, "b");
    ck_assert_double_eq(g.ev[2].value, 3);
    ck_assert_double_eq(g.ev[2].price, 3); /* one line keeps its price */
    ck_assert_int_eq(g.ev[3].type, EV_REFUND);
    ck_assert_double_eq(g.ev[3].value, 4);
    ck_assert_str_ne(g.ev[3].eid, g.ev[0].eid);
    ck_assert_int_eq(g.nbad, 2);
    assert_bad_line(&g, 0, path, 7);
    ck_assert_str_eq(g.kind[0], "order lines not consecutive");
    assert_bad_line(&g, 1, path, 9);
    ck_assert_ptr_nonnull(strstr(g.bad[1], "(order of lines 9-10)"));
    ck_assert_uint_eq(g.st.folded_rows, 3);
    /* where each event was read: an order its first and last line */
    static const uint64_t lines[4][2] = {{2, 4}, {5, 5}, {6, 6}, {8, 8}};
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(g.ev[i].first_line, lines[i][0]);
        ck_assert_uint_eq(g.ev[i].last_line, lines[i][1]);
    }
    char first_id[300];
    snprintf(first_id, sizeof first_id, "%s", e->eid);

    /* the same file gives the same ids */
    read_all(path, &o, &g);
    ck_assert_str_eq(g.ev[0].eid, first_id);

    /* --no-fold: every line is an event */
    o.no_fold = 1;
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 9);
    ck_assert_int_eq(g.nbad, 0);
    ck_assert_double_eq(g.ev[0].value, 20);
}
END_TEST

/* A refused row that names an order (its customer and order_id) makes the
 * whole order a bad row: importing the rest would make the fixed file's
 * complete order a duplicate of the part (the id is the order's), and the
 * fixed line would never land.  Before the order, inside it, or after its
 * last line; other orders are untouched; --no-fold takes the good lines. */
START_TEST(an_order_with_a_refused_line_is_skipped_whole)
{
    char p[600];
    const char *path = write_file(p, sizeof p, "typo.csv",
        "customer,type,ts,price,order_id\n"
        "w1,purchase,2026-11-01T10:00:00Z,10,o1\n"
        "w1,purchse,2026-11-01T10:00:00Z,10,o1\n"    /* line 3: refused */
        "w1,purchase,2026-11-01T10:00:00Z,10,o1\n"
        "w2,purchase,2026-11-01T10:00:00Z,7,o2\n"
        "w3,purchase,2026-11-01T10:00:00Z,oops,o3\n" /* line 6: refused, before its order's lines */
        "w3,purchase,2026-11-01T10:00:00Z,5,o3\n"
        "w4,purchase,2026-11-01T10:00:00Z,4,o4\n"
        "w4,purchase,2026-11-01T10:00:00Z,4,o4\n"
        "w4,purchase,2026-11-01T10:00:00Z,x,o4\n");  /* line 10: refused, after two good lines */
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1); /* o2 alone */
    ck_assert_str_eq(g.ev[0].customer, "w2");
    ck_assert_int_eq(g.nbad, 6); /* three refused rows, three orders skipped */
    int skipped = 0;
    for (int i = 0; i < g.nbad; i++)
        if (strcmp(g.kind[i], "order has a refused line") == 0) {
            skipped++;
            ck_assert_ptr_nonnull(strstr(g.bad[i], "fix that line and import again"));
        }
    ck_assert_int_eq(skipped, 3);

    /* the fixed file brings each order in whole, under the id it would
     * have had: nothing of it was imported before */
    char p2[600];
    const char *fixed = write_file(p2, sizeof p2, "fixed.csv",
        "customer,type,ts,price,order_id\n"
        "w1,purchase,2026-11-01T10:00:00Z,10,o1\n"
        "w1,purchase,2026-11-01T10:00:00Z,10,o1\n"
        "w1,purchase,2026-11-01T10:00:00Z,10,o1\n");
    read_all(fixed, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_int_eq(g.nbad, 0);
    ck_assert_double_eq_tol(g.ev[0].value, 30, 1e-9);

    o.no_fold = 1; /* every line its own event: the good ones go in */
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 6);
    ck_assert_int_eq(g.nbad, 3);
    o.no_fold = 0;

    /* a refused refund line after the purchase lines of the same order id
     * names the refund order, not the purchase one; a row that cannot be
     * read at all (a decimal comma: one field too many) inside an order
     * taints the order it interrupts */
    char p3[600];
    const char *mixed = write_file(p3, sizeof p3, "mixed.csv",
        "customer,type,ts,order_id,value\n"
        "c1,purchase,2024-05-01T10:00:00Z,o1,10\n"
        "c1,purchase,2024-05-01T10:00:00Z,o1,20\n"
        "c1,refund,2024-05-03T10:00:00Z,o1,1O\n"     /* line 4: refused, a refund */
        "c1,refund,2024-05-03T10:00:00Z,o1,20\n"
        "c2,purchase,2024-05-01T10:00:00Z,o2,5\n"
        "c2,purchase,2024-05-01T10:00:00Z,o2,2,50\n" /* line 7: cannot be read */
        "c2,purchase,2024-05-01T10:00:00Z,o2,5\n");
    read_all(mixed, &o, &g);
    ck_assert_int_eq(g.nev, 1); /* the purchase order of c1, whole */
    ck_assert_int_eq(g.ev[0].type, EV_PURCHASE);
    ck_assert_double_eq_tol(g.ev[0].value, 30, 1e-9);
    ck_assert_int_eq(g.nbad, 4);
    int refund_skipped = 0, c2_skipped = 0;
    for (int i = 0; i < g.nbad; i++) {
        refund_skipped += strstr(g.bad[i], "1 line(s) of order \"o1\" of customer \"c1\" skipped: its line 4") != NULL;
        c2_skipped += strstr(g.bad[i], "2 line(s) of order \"o2\" of customer \"c2\" skipped: its line 7") != NULL;
    }
    ck_assert_int_eq(refund_skipped, 1);
    ck_assert_int_eq(c2_skipped, 1);
}
END_TEST

START_TEST(event_ids)
{
    char p[600];
    /* two identical rows are two purchases (CDNOW has 215 such pairs);
     * the same event written differently has the same id */
    const char *path = write_file(p, sizeof p, "ids.csv",
        "customer,type,ts,value,event_id\n"
        "a,purchase,1700000000,11.49,\n"
        "a,purchase,1700000000,11.49,\n"
        "a,purchase,1700000000,13.99,\n"
        "a,purchase,1700000000,11.49,\n"
        "a,purchase,2023-11-14T22:13:20Z,11.490,\n"
        "a,purchase,1700000001,11.49,\n"
        "a,purchase,1700000001,11.49,src-7\n");
    got g, g2;
    eventfile_options o;
    opts(&o, NULL, NULL);
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 7);
    ck_assert_str_ne(g.ev[0].eid, g.ev[1].eid);
    ck_assert_str_ne(g.ev[0].eid, g.ev[3].eid);
    ck_assert_str_ne(g.ev[1].eid, g.ev[3].eid);
    ck_assert_str_ne(g.ev[0].eid, g.ev[2].eid);
    ck_assert_str_ne(g.ev[4].eid, g.ev[0].eid); /* a 4th copy in the same ts run */
    ck_assert_str_ne(g.ev[5].eid, g.ev[0].eid);
    ck_assert_str_eq(g.ev[6].eid, "src-7");

    /* re-exported in another column order and time format: same ids */
    const char *path2 = write_file(p, sizeof p, "ids2.csv",
        "ts,value,type,customer\n"
        "2023-11-14 22:13:20,11.49,purchase,a\n"
        "1700000000000,11.49,purchase,a\n");
    read_all(path2, &o, &g2);
    ck_assert_int_eq(g2.nev, 2);
    ck_assert_str_eq(g2.ev[0].eid, g.ev[0].eid);
    ck_assert_str_eq(g2.ev[1].eid, g.ev[1].eid);
}
END_TEST

/* ------------------------------------------------------------------ */
/* JSON Lines and gzip                                                 */
/* ------------------------------------------------------------------ */

static const char jsonl_text[] =
    "{\"customer\":\"alice\",\"type\":\"add_to_cart\",\"ts\":\"2019-10-01T10:00:00Z\",\"price\":12.5,\"quantity\":2}\n"
    "{\"customer\":42,\"type\":\"purchase\",\"ts\":1569924000,\"value\":30,\"discounted\":true,\"order_id\":null}\r\n"
    "\n"
    "{\"customer\":\"bob\", \"type\": \"review\", \"ts\": 1569924000000, \"rating\": 5}\n"
    "not json\n"
    "[1,2]\n"
    "{\"customer\":\"carol\",\"type\":\"page_view\",\"ts\":\"2019-10-01\",\"category\":{\"a\":1}}\n"
    "{\"customer\":\"dave\",\"type\":\"page_view\"}\n"
    "{\"customer\":\"erin\",\"type\":\"page_view\",\"ts\":1569924000,\"extra\":[1],\"birthday\":\"02-29\"}";

static void check_jsonl(const char *path, const got *g)
{
    ck_assert_int_eq(g->status, 0);
    ck_assert_int_eq(g->nev, 4);
    ck_assert_str_eq(g->ev[0].customer, "alice");
    ck_assert_double_eq(g->ev[0].value, 25);
    ck_assert_int_eq(g->ev[0].ts, 1569924000000LL);
    ck_assert_str_eq(g->ev[1].customer, "42");
    ck_assert_double_eq(g->ev[1].value, 30);
    ck_assert_int_eq(g->ev[1].discounted, 1);
    ck_assert_str_eq(g->ev[1].order, "");
    ck_assert_int_eq(g->ev[2].rating, 5);
    ck_assert_int_eq(g->ev[2].ts, 1569924000000LL);
    ck_assert_str_eq(g->ev[3].customer, "erin");
    ck_assert_int_eq(g->ev[3].birthday, 229);
    ck_assert_int_eq(g->nbad, 4);
    assert_bad_line(g, 0, path, 5);
    ck_assert_str_eq(g->kind[0], "not JSON");
    assert_bad_line(g, 1, path, 6);
    ck_assert_str_eq(g->kind[1], "not a JSON object");
    assert_bad_line(g, 2, path, 7);
    assert_bad_line(g, 3, path, 8);
    ck_assert_str_eq(g->kind[3], "ts is missing");
}

START_TEST(jsonl)
{
    char p[600], p2[600];
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    const char *path = write_file(p, sizeof p, "ev.jsonl", jsonl_text);
    read_all(path, &o, &g);
    check_jsonl(path, &g);
    /* gzip, recognised by name; and forced by --format on another name */
    path = write_gz(p, sizeof p, "ev.jsonl.gz", jsonl_text);
    read_all(path, &o, &g);
    check_jsonl(path, &g);
    path = write_gz(p2, sizeof p2, "ev.data", jsonl_text);
    o.format = EVENTFILE_JSONL;
    read_all(path, &o, &g);
    check_jsonl(path, &g);

    /* mapped keys and translated types */
    path = write_file(p, sizeof p, "m.ndjson",
                      "{\"uid\":\"x\",\"ev\":\"view\",\"t\":1700000000,\"customer\":\"ignored\"}\n");
    opts(&o, "customer=uid,type=ev,ts=t", "view=product_view");
    read_all(path, &o, &g);
    ck_assert_int_eq(g.nev, 1);
    ck_assert_str_eq(g.ev[0].customer, "x");
    ck_assert_int_eq(g.ev[0].type, EV_PRODUCT_VIEW);
}
END_TEST

START_TEST(gzip_input)
{
    char p[600];
    char text[1 << 16] = "customer,type,ts,price\n";
    size_t len = strlen(text);
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "c%d,add_to_cart,%d,%d.25\n", i % 37, 1700000000 + i, i);
    const char *path = write_gz(p, sizeof p, "ev.csv.gz", text);
    got g;
    eventfile_options o;
    opts(&o, NULL, NULL);
    /* more than MAX_GOT events: count through the stats instead */
    char err[600];
    eventfile *f;
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_OK);
    ls_event ev;
    int rc, n = 0;
    double sum = 0;
    while ((rc = eventfile_next(f, &ev)) == 1) {
        n++;
        sum += ev.price;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(n, 1000);
    ck_assert_double_eq_tol(sum, 999 * 1000 / 2 + 250, 1e-6);
    eventfile_stats st;
    eventfile_get_stats(f, &st);
    ck_assert_uint_gt(st.bytes_total, 0);
    ck_assert_uint_eq(st.bytes_read, st.bytes_total);
    eventfile_close(&f);

    /* a truncated .gz: the rows before are events, then a fatal error */
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size / 2), 0);
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_OK);
    n = 0;
    while ((rc = eventfile_next(f, &ev)) == 1)
        n++;
    ck_assert_int_eq(rc, LS_EIO);
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, 1000);
    ck_assert_ptr_nonnull(strstr(eventfile_error(f), path));
    ck_assert_int_eq(eventfile_next(f, &ev), LS_EIO);
    eventfile_close(&f);

    /* the same for JSON Lines */
    char jtext[1 << 16];
    len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(jtext + len, sizeof jtext - len,
                                "{\"customer\":\"c%d\",\"type\":\"page_view\",\"ts\":%d}\n", i, 1700000000 + i);
    path = write_gz(p, sizeof p, "ev.jsonl.gz", jtext);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size - 9), 0); /* lose the trailer */
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_OK);
    n = 0;
    while ((rc = eventfile_next(f, &ev)) == 1)
        n++;
    ck_assert_int_eq(rc, LS_EIO);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(eventfile_error(f), "read error"));
    eventfile_close(&f);
    (void)g;
}
END_TEST

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

START_TEST(cli_usage)
{
    char out[8192], p[600], data[600];
    const char *path = write_file(p, sizeof p, "u.csv", "customer,type,ts\na,page_view,1700000000\n");
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *help[] = {"import", "--help", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "--max-errors"));
    const char *none[] = {"import", "--data", data, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, none), 2);
    const char *both[] = {"import", "--data", data, "--connect", "tcp://127.0.0.1:1", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, both), 2);
    const char *badmap[] = {"import", "--data", data, "--map", "colour=x", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badmap), 2);
    ck_assert_ptr_nonnull(strstr(out, "--map: \"colour\" is not an event field"));
    const char *badtypes[] = {"import", "--data", data, "--types", "a=b", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badtypes), 2);
    const char *badfmt[] = {"import", "--data", data, "--format", "xml", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badfmt), 2);
    const char *old[] = {"import", "--connect", "tcp://127.0.0.1:1", "--allow-old", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, old), 2);
    const char *batch[] = {"import", "--data", data, "--batch", "0", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, batch), 2);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing.csv", tmp);
    const char *nofile[] = {"import", "--data", data, missing, path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nofile), 1); /* reads the rest, then fails */
    ck_assert_ptr_nonnull(strstr(out, "missing.csv"));
    ck_assert_int_eq(summary_num(out, "events imported:"), 1);
    /* options may follow the files: --no-sync is an option, not a file */
    const char *after[] = {"import", "--data", data, path, "--no-sync", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, after), 0);
    ck_assert_int_eq(summary_num(out, "files read:"), 1);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 1); /* the row imported above */
}
END_TEST

/* A file of n customers x 3 events each, plus nbad bad rows spread in. */
static const char *make_shop(char *p, size_t cap, const char *name, int n, int nbad)
{
    size_t size = (size_t)(n * 3 + nbad + 2) * 96, len;
    char *text = malloc(size);
    ck_assert_ptr_nonnull(text);
    len = (size_t)snprintf(text, size, "user_id,event_time,event_type,price,order\n");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(text + len, size - len, "u%d,%d,view,%d.5,\n", i, 1700000000 + i, i % 50);
        len += (size_t)snprintf(text + len, size - len, "u%d,%d,cart,%d.5,\n", i, 1700000100 + i, i % 50);
        len += (size_t)snprintf(text + len, size - len, "u%d,%d,transaction,%d.5,o%d\n", i, 1700000200 + i, i % 50, i);
        if (i < nbad)
            len += (size_t)snprintf(text + len, size - len, "u%d,%d,wishlist,1,\n", i, 1700000300 + i);
    }
    snprintf(p, cap, "%s/%s", tmp, name);
    put_file(p, text, len);
    free(text);
    return p;
}

/* Events held in every customer's history (what an import stored). */
static int add_history(void *arg, const char *id, size_t len, const ls_features *f, const history *h)
{
    (void)id;
    (void)len;
    (void)f;
    *(uint64_t *)arg += h->n;
    return 0;
}

static uint64_t history_events(store *s)
{
    store_reader *r = NULL;
    uint64_t n = 0;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_scan_history(r, add_history, &n), LS_OK);
    store_reader_close(&r);
    return n;
}

START_TEST(cli_idempotent)
{
    char out[16384], p[600], data[600];
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *path = make_shop(p, sizeof p, "shop.csv", 500, 0);
    const char *args[] = {"import", "--data", data, "--map", "customer=user_id,ts=event_time,type=event_type,order_id=order",
                          "--types", "view=product_view,cart=add_to_cart,transaction=purchase",
                          "--batch", "400", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "rows read:"), 1500);
    ck_assert_int_eq(summary_num(out, "events imported:"), 1500);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 0);
    ck_assert_int_eq(summary_num(out, "rejected:"), 0);

    store *s = open_ro(data);
    ls_features f1[3];
    uint8_t enc1[3][FEATURE_MAX_ENCODED];
    size_t len1[3];
    const char *ids[3] = {"u0", "u7", "u499"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get_features(s, ids[i], &f1[i]), LS_OK);
        ck_assert_uint_eq(f1[i].count[EV_PRODUCT_VIEW], 1);
        ck_assert_uint_eq(f1[i].count[EV_ADD_TO_CART], 1);
        ck_assert_uint_eq(f1[i].count[EV_PURCHASE], 1);
        ck_assert_int_eq(feature_encode(&f1[i], enc1[i], sizeof enc1[i], &len1[i]), LS_OK);
    }
    ck_assert_double_eq_tol(f1[1].spend, 7.5, 1e-9);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 500);
    ck_assert_uint_eq(history_events(s), 1500);
    store_close(&s);

    /* again: nothing new, every event a duplicate, records byte for byte the same */
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 0);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 1500);
    s = open_ro(data);
    for (int i = 0; i < 3; i++) {
        ls_features f2;
        uint8_t enc2[FEATURE_MAX_ENCODED];
        size_t len2;
        ck_assert_int_eq(get_features(s, ids[i], &f2), LS_OK);
        ck_assert_int_eq(feature_encode(&f2, enc2, sizeof enc2, &len2), LS_OK);
        ck_assert_uint_eq(len2, len1[i]);
        ck_assert_int_eq(memcmp(enc2, enc1[i], len2), 0);
    }
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(history_events(s), 1500);
    store_close(&s);
}
END_TEST

/* A customer's history longer than retention (730 days): its oldest
 * events are folded out of the history when newer ones come, and a second
 * import must still find every one a duplicate (an event folded out once
 * counted again). */
START_TEST(cli_idempotent_beyond_retention)
{
    char out[16384], p[600], data[600];
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *path = write_file(p, sizeof p, "long.csv",
                                  "customer,type,ts,value,event_id\n"
                                  "ann,purchase,2020-06-01,40,o-1\n"
                                  "ann,purchase,2021-03-01,25,\n"
                                  "ann,page_view,2022-01-05,,\n"
                                  "ann,purchase,2026-06-01,60,o-2\n");
    const char *args[] = {"import", "--data", data, path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 4);
    store *s = open_ro(data);
    ls_features f1, f2;
    ck_assert_int_eq(get_features(s, "ann", &f1), LS_OK);
    ck_assert_uint_eq(f1.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(history_events(s), 1); /* the other three are folded */
    store_close(&s);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 0);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 4);
    s = open_ro(data);
    ck_assert_int_eq(get_features(s, "ann", &f2), LS_OK);
    ck_assert_uint_eq(f2.count[EV_PURCHASE], 3);
    ck_assert_double_eq_tol(f2.spend, 125.0, 1e-9);
    store_close(&s);
}
END_TEST

START_TEST(cli_store_grows)
{
    /* a 1 MiB map fills up: the transaction is grown and replayed, not lost */
    char out[16384], p[600], data[600];
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *path = make_shop(p, sizeof p, "big.csv", 4000, 0);
    const char *args[] = {"import", "--data", data, "--map-size", "1MiB", "--no-sync", "--map",
                          "customer=user_id,ts=event_time,type=event_type", "--types",
                          "view=product_view,cart=add_to_cart,transaction=purchase", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 12000);
    store *s = open_ro(data);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 4000);
    ck_assert_uint_eq(history_events(s), 12000);
    ck_assert_uint_gt(st.map_bytes, 1u << 20);
    store_close(&s);
    const char *bad[] = {"import", "--data", data, "--map-size", "12", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, bad), 2);
}
END_TEST

START_TEST(cli_max_errors)
{
    char out[32768], p[600], data[600];
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *path = make_shop(p, sizeof p, "shop.csv", 100, 30);
    const char *map = "customer=user_id,ts=event_time,type=event_type";
    const char *types = "view=product_view,cart=add_to_cart,transaction=purchase";
    /* no limit: 30 rejected, 20 shown, exit 0 */
    const char *all[] = {"import", "--data", data, "--map", map, "--types", types, path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, all), 0);
    ck_assert_int_eq(summary_num(out, "rejected:"), 30);
    ck_assert_int_eq(summary_num(out, "unknown event type"), 30);
    ck_assert_int_eq(summary_num(out, "events imported:"), 300);
    int shown = 0;
    for (const char *q = out; (q = strstr(q, "shop.csv:")) != NULL; q++)
        shown++;
    ck_assert_int_eq(shown, 20);
    ck_assert_ptr_nonnull(strstr(out, "shop.csv:5: type \"wishlist\" is not an event type"));
    ck_assert_ptr_nonnull(strstr(out, "further bad rows are counted, not shown"));

    /* --max-errors 3: stops at the 4th bad row (line 17), exit 1 */
    tu_rmtree(data);
    const char *few[] = {"import", "--data", data, "--map", map, "--types", types, "--max-errors", "3", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, few), 1);
    ck_assert_int_eq(summary_num(out, "rejected:"), 4);
    ck_assert_int_eq(summary_num(out, "events imported:"), 12); /* what was read before is kept */
    ck_assert_ptr_nonnull(strstr(out, "--max-errors"));
    const char *enough[] = {"import", "--data", data, "--map", map, "--types", types, "--max-errors", "30", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, enough), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 288);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 12);

    /* a stop keeps an order read whole before the bad row that stopped it */
    char p2[600], data2[600];
    snprintf(data2, sizeof data2, "%s/store2", tmp);
    const char *stop = write_file(p2, sizeof p2, "stop.csv",
        "customer,type,ts,order_id,value\n"
        "c0,page_view,2024-05-01T09:00:00Z,,\n"
        "c1,purchase,2024-05-01T10:00:00Z,o1,10\n"
        "c1,purchase,2024-05-01T10:00:00Z,o1,20\n"
        "c2,purchase,2024-05-01T10:00:00Z,o2,1O\n");
    const char *zero[] = {"import", "--data", data2, "--max-errors", "0", stop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, zero), 1);
    ck_assert_int_eq(summary_num(out, "events imported:"), 2); /* the view and c1's order */
    /* --max-errors counts refused rows: the order a typo skips is not a
     * second error (one typo stopped a run allowed one) */
    char p4[600], data3[600];
    snprintf(data3, sizeof data3, "%s/store3", tmp);
    const char *one = write_file(p4, sizeof p4, "one.csv",
        "customer,type,ts,order_id,value\n"
        "c1,purchase,2024-05-01T10:00:00Z,o1,10\n"
        "c1,purchse,2024-05-01T10:00:00Z,o1,20\n"
        "c2,page_view,2024-05-01T11:00:00Z,,\n");
    const char *allow_one[] = {"import", "--data", data3, "--max-errors", "1", one, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, allow_one), 0);
    ck_assert_int_eq(summary_num(out, "rejected:"), 2);
    ck_assert_int_eq(summary_num(out, "events imported:"), 1);
}
END_TEST

START_TEST(cli_connect)
{
    char out[16384], p[600];
    tu_server ts;
    tu_server_start(&ts, NULL);
    const char *path = make_shop(p, sizeof p, "shop.csv", 200, 1);
    const char *args[] = {"import", "--connect", ts.endpoint, "--batch", "128", "--map",
                          "customer=user_id,ts=event_time,type=event_type,order_id=order", "--types",
                          "view=product_view,cart=add_to_cart,transaction=purchase", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 600);
    ck_assert_int_eq(summary_num(out, "rejected:"), 1);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 0);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 600);
    tu_server_stop(&ts);

    const char *nobody[] = {"import", "--connect", "tcp://127.0.0.1:9", "--timeout", "300", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nobody), 1);
    ck_assert_ptr_nonnull(strstr(out, "no answer from tcp://127.0.0.1:9"));
}
END_TEST

/* Events the service rejects (a customer id over its --max-string) are
 * reported as the reader's bad rows are, FILE:LINE: and the service's
 * reason, also in a batch that spans files, and count toward --max-errors;
 * with a limit under 20 bytes, import's derived ids ("row:" and 16 hex
 * digits) are what the service refuses, and the message says so. */
static void start_limited(tu_server *ts, char *dir, size_t cap, uint64_t max_string)
{
    config cfg;
    tu_tempdir(dir, cap);
    tu_config(&cfg, dir);
    cfg.max_string = max_string;
    tu_server_start(ts, &cfg);
}

START_TEST(cli_connect_service_rejections)
{
    char out[16384], a[600], b[600], dir[512], line[200], when[TIMEFMT_ISO_BUFSZ];
    char text[600];
    memset(line, 'x', 100);
    line[100] = '\0';
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000 - 86400000, when, sizeof when);
    snprintf(text, sizeof text, "customer,type,ts\nalice,product_view,%s\n%s,product_view,%s\nbob,product_view,%s\n",
             when, line, when, when);
    const char *first = write_file(a, sizeof a, "ms64.csv", text);
    snprintf(text, sizeof text, "customer,type,ts\n%s,add_to_cart,%s\ncarol,product_view,%s\n", line, when, when);
    const char *second = write_file(b, sizeof b, "more.csv", text);
    tu_server ts;
    start_limited(&ts, dir, sizeof dir, 64);
    /* --max-errors 0, one event per batch: stops at the first rejection,
     * the second file never read */
    const char *stop[] = {"import", "--connect", ts.endpoint, "--batch", "1", "--max-errors", "0", first, second, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, stop), 1);
    ck_assert_msg(strstr(out, "ms64.csv:3: rejected by the service: too_large: customer is longer than") != NULL, "%s",
                  out);
    ck_assert_ptr_nonnull(strstr(out, "--max-errors"));
    ck_assert_int_eq(summary_num(out, "files read:"), 1);
    ck_assert_int_eq(summary_num(out, "events imported:"), 1);
    ck_assert_int_eq(summary_num(out, "rejected:"), 1);
    /* no limit: both files in one batch, each rejection at its own file and line */
    const char *all[] = {"import", "--connect", ts.endpoint, first, second, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, all), 0);
    ck_assert_msg(strstr(out, "ms64.csv:3: rejected by the service: too_large:") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "more.csv:2: rejected by the service: too_large:") != NULL, "%s", out);
    ck_assert_int_eq(summary_num(out, "events imported:"), 2);
    ck_assert_int_eq(summary_num(out, "duplicates:"), 1);
    ck_assert_int_eq(summary_num(out, "rejected:"), 2);
    /* --max-errors 1 with two rejected in the batch: exit 1; 2 is enough */
    const char *one[] = {"import", "--connect", ts.endpoint, "--max-errors", "1", first, second, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, one), 1);
    ck_assert_ptr_nonnull(strstr(out, "--max-errors"));
    const char *two[] = {"import", "--connect", ts.endpoint, "--max-errors", "2", first, second, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, two), 0);
    tu_server_stop(&ts);
    tu_rmtree(dir);

    /* a limit of 19 bytes: every derived event id is too long */
    start_limited(&ts, dir, sizeof dir, 19);
    const char *derived[] = {"import", "--connect", ts.endpoint, second, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, derived), 0);
    ck_assert_msg(strstr(out, "more.csv:3: rejected by the service: too_large: event_id is longer than") != NULL, "%s",
                  out);
    ck_assert_ptr_nonnull(strstr(out, "(event_id \"row:"));
    ck_assert_ptr_nonnull(strstr(out, "20 bytes)"));
    ck_assert_int_eq(summary_num(out, "rejected:"), 2);
    tu_server_stop(&ts);
    tu_rmtree(dir);
}
END_TEST

/* A row before 2000 is refused with advice that works in each mode: into
 * a store --allow-old takes it; a service refuses it whatever the
 * options, so the advice is the store path with the service stopped. */
START_TEST(cli_old_times_advice)
{
    char out[16384], p[600], data[700], text[300], when[TIMEFMT_ISO_BUFSZ];
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000 - 86400000, when, sizeof when);
    snprintf(text, sizeof text, "customer,type,ts\nold,purchase,1999-12-31\nnew,page_view,%s\n", when);
    const char *path = write_file(p, sizeof p, "old.csv", text);
    tu_server ts;
    tu_server_start(&ts, NULL);
    const char *via[] = {"import", "--connect", ts.endpoint, path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, via), 0);
    ck_assert_msg(strstr(out, "old.csv:2: ts 1999-12-31T00:00:00Z is before 2000-01-01 (the service refuses older "
                              "times: import such history with --data DIR --allow-old while the service is "
                              "stopped)") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "--allow-old accepts"));
    ck_assert_int_eq(summary_num(out, "events imported:"), 1);
    tu_server_stop(&ts);
    /* the advice given works */
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *into[] = {"import", "--data", data, path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, into), 0);
    ck_assert_msg(strstr(out, "old.csv:2: ts 1999-12-31T00:00:00Z is before 2000-01-01 (--allow-old accepts older "
                              "times)") != NULL, "%s", out);
    const char *old[] = {"import", "--data", data, "--allow-old", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, old), 0);
    ck_assert_int_eq(summary_num(out, "events imported:"), 1);
    ck_assert_int_eq(summary_num(out, "rejected:"), 0);
}
END_TEST

static uint64_t event_ids_in(const char *dir)
{
    store *s = NULL;
    char err[300];
    store_options so = {.read_only = 1};
    if (store_open(&s, dir, &so, NULL, err, sizeof err) != LS_OK)
        return 0;
    uint64_t n = history_events(s);
    store_close(&s);
    return n;
}

START_TEST(cli_sigint)
{
    char data[600], outpath[700];
    snprintf(data, sizeof data, "%s/store", tmp);
    snprintf(outpath, sizeof outpath, "%s/out.txt", tmp);
    int in[2];
    ck_assert_int_eq(pipe(in), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close(in[1]);
        execl(LEADSCORE_BIN, LEADSCORE_BIN, "import", "--data", data, "--batch", "1000", "--quiet", "-", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    FILE *w = fdopen(in[1], "w");
    ck_assert_ptr_nonnull(w);
    /* csv.h reads a pipe in 256 KiB chunks: 20,000 rows (~440 KiB) make
     * some batches of 1,000 commit while the rest of a chunk waits in the
     * open batch and the reader blocks for more input */
    fprintf(w, "customer,type,ts\n");
    for (int i = 0; i < 20000; i++)
        fprintf(w, "c%d,page_view,%d\n", i % 100, 1700000000 + i);
    fflush(w);
    uint64_t committed = 0, before = 1;
    for (int i = 0; i < 400 && (committed == 0 || committed != before); i++) {
        usleep(50000);
        before = committed;
        committed = event_ids_in(data);
    }
    ck_assert_uint_gt(committed, 0);
    ck_assert_uint_lt(committed, 20000);
    ck_assert_uint_eq(committed % 1000, 0);
    int status = tu_kill_wait(pid, SIGINT);
    fclose(w);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 1);
    ck_assert_uint_eq(event_ids_in(data), committed); /* nothing of the open batch */
    char out[4096] = "";
    FILE *fp = fopen(outpath, "r");
    ck_assert_ptr_nonnull(fp);
    size_t n = fread(out, 1, sizeof out - 1, fp);
    out[n] = '\0';
    fclose(fp);
    ck_assert_msg(strstr(out, "interrupted") && strstr(out, "were not committed"), "%s", out);
    ck_assert_int_eq(summary_num(out, "events imported:"), (long long)committed);
    store *s = open_ro(data);
    ls_features f;
    ck_assert_int_eq(get_features(s, "c0", &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], committed / 100);
    store_close(&s);
}
END_TEST

START_TEST(cdnow)
{
    char path[600], data[600], out[16384];
    snprintf(path, sizeof path, "%s/cdnow/CDNOW_master.txt", tu_data_dir());
    /* the expected totals, straight from the file */
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    char line[256];
    double dollars = 0;
    long rows = 0, cds = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, fp)); /* header */
    while (fgets(line, sizeof line, fp)) {
        char id[32];
        long date, n;
        double v;
        if (sscanf(line, "%31s %ld %ld %lf", id, &date, &n, &v) == 4) {
            rows++;
            cds += n;
            dollars += v;
        }
    }
    fclose(fp);
    ck_assert_int_eq(rows, 69659);

    snprintf(data, sizeof data, "%s/store", tmp);
    const char *args[] = {"import", "--data", data, "--whitespace", "--allow-old", "--map",
                          "customer=1,ts=2,quantity=3,value=4,type=:purchase", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_int_eq(summary_num(out, "rows read:"), 69659);
    ck_assert_int_eq(summary_num(out, "events imported:"), 69659);
    ck_assert_int_eq(summary_num(out, "rejected:"), 0);

    store *s = open_ro(data);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 23570);
    ck_assert_uint_eq(history_events(s), 69659);
    ls_features f;
    ck_assert_int_eq(get_features(s, "00001", &f), LS_OK); /* 00001 19970101 1 11.77 */
    ck_assert_uint_eq(f.count[EV_PURCHASE], 1);
    ck_assert_double_eq_tol(f.spend, 11.77, 1e-9);
    ck_assert_int_eq(f.first_purchase_ms, 852076800000LL);
    store_close(&s);
    (void)cds;
    (void)dollars;

    /* without --allow-old every row is before 2000 */
    tu_rmtree(data);
    const char *strict[] = {"import", "--data", data, "--whitespace", "--map",
                            "customer=1,ts=2,quantity=3,value=4,type=:purchase", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, strict), 0);
    ck_assert_int_eq(summary_num(out, "ts is too old"), 69659);
}
END_TEST

/* Sum over every record, for the CDNOW totals. */
typedef struct {
    uint64_t purchases;
    double spend;
} totals;

static int add_up(void *arg, const char *id, size_t len, const ls_features *f)
{
    totals *t = arg;
    (void)id;
    (void)len;
    t->purchases += f->count[EV_PURCHASE];
    t->spend += f->spend;
    return 0;
}

START_TEST(cdnow_totals)
{
    char path[600];
    snprintf(path, sizeof path, "%s/cdnow/CDNOW_master.txt", tu_data_dir());
    /* the reader alone, in-process: every row an event, the dollars add up */
    eventfile_options o;
    opts(&o, "customer=1,ts=2,quantity=3,value=4,type=:purchase", NULL);
    o.whitespace = 1;
    o.min_ts_ms = 0;
    char err[600];
    eventfile *f;
    ck_assert_int_eq(eventfile_open(&f, path, &o, err, sizeof err), LS_OK);
    ls_event ev;
    int rc;
    uint64_t n = 0, cds = 0;
    double dollars = 0;
    while ((rc = eventfile_next(f, &ev)) == 1) {
        n++;
        cds += (uint64_t)ev.quantity;
        dollars += ev.value;
    }
    ck_assert_int_eq(rc, 0);
    eventfile_close(&f);
    ck_assert_uint_eq(n, 69659);

    /* and the store built from it by the command holds the same */
    char data[600], out[8192];
    snprintf(data, sizeof data, "%s/store", tmp);
    const char *args[] = {"import", "--data", data, "--whitespace", "--allow-old", "--quiet", "--map",
                          "customer=1,ts=2,quantity=3,value=4,type=:purchase", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    store *s = open_ro(data);
    store_reader *r;
    totals t = {0, 0};
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_scan(r, add_up, &t), 0);
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
    ck_assert_uint_eq(t.purchases, 69659);
    ck_assert_double_eq_tol(t.spend, dollars, 1e-6 * dollars);
    ck_assert_uint_gt(cds, n);
}
END_TEST

static Suite *import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *reader = tcase_create("reader");
    tcase_add_checked_fixture(reader, setup, teardown);
    tcase_add_test(reader, csv_edge_cases);
    tcase_add_test(reader, csv_bad_values);
    tcase_add_test(reader, csv_nul_bytes_are_bad_rows);
    tcase_add_test(reader, csv_no_header_positions);
    tcase_add_test(reader, csv_fatal_quote);
    tcase_add_test(reader, csv_open_errors);
    tcase_add_test(reader, timestamps);
    tcase_add_test(reader, forced_ts_format_says_what_was_expected);
    tcase_add_test(reader, csv_duplicate_columns);
    tcase_add_test(reader, map_and_constants);
    tcase_add_test(reader, types_translation);
    tcase_add_test(reader, order_lines_fold);
    tcase_add_test(reader, an_order_with_a_refused_line_is_skipped_whole);
    tcase_add_test(reader, event_ids);
    tcase_add_test(reader, jsonl);
    tcase_add_test(reader, gzip_input);
    suite_add_tcase(s, reader);
    TCase *cli = tcase_create("cli");
    tcase_add_checked_fixture(cli, setup, teardown);
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_usage);
    tcase_add_test(cli, cli_idempotent);
    tcase_add_test(cli, cli_idempotent_beyond_retention);
    tcase_add_test(cli, cli_store_grows);
    tcase_add_test(cli, cli_max_errors);
    tcase_add_test(cli, cli_connect);
    tcase_add_test(cli, cli_connect_service_rejections);
    tcase_add_test(cli, cli_old_times_advice);
    tcase_add_test(cli, cli_sigint);
    tcase_add_test(cli, cdnow);
    tcase_add_test(cli, cdnow_totals);
    suite_add_tcase(s, cli);
    return s;
}

int main(void)
{
    return tu_run_suite(import_suite());
}
