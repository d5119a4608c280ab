/* test_readbatch.c -- Check suite for the read batches the server loop
 * hands to workers (readbatch.h): requests and replies come back exactly
 * as they went in, in order, and cut bytes are refused at every length
 * without reading past the end. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "readbatch.h"
#include "testutil.h"

/* A request as the loop holds it: identity, delimiter, body. */
static void make_request(msgio_parts *p, const char *identity, const char *body)
{
    const char *frames[3] = {identity, "", body};
    p->n = 3;
    p->dropped = 0;
    for (int i = 0; i < 3; i++) {
        zmq_msg_init_size(&p->frame[i], strlen(frames[i]));
        memcpy(zmq_msg_data(&p->frame[i]), frames[i], strlen(frames[i]));
    }
}

static void expect_envelope(const readbatch_entry *e, const char *identity)
{
    size_t n = strlen(identity);
    uint32_t len;
    ck_assert_uint_eq(e->env_len, 4 + n + 4); /* identity, then the empty delimiter */
    memcpy(&len, e->env, 4);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(e->env + 4, identity, n) == 0);
    memcpy(&len, e->env + 4 + n, 4);
    ck_assert_uint_eq(len, 0);
}

START_TEST(requests_come_back_in_order_with_their_envelopes)
{
    readbatch b = {0};
    msgio_parts p;
    char identity[16], body[64];
    for (int i = 0; i < 100; i++) { /* past the first buffer size: it grows */
        snprintf(identity, sizeof identity, "peer%d", i);
        snprintf(body, sizeof body, "request number %d", i);
        make_request(&p, identity, body);
        ck_assert_int_eq(readbatch_add(&b, &p, 2, i % 7, 1000 + i), LS_OK);
        msgio_close(&p);
    }
    ck_assert_int_eq(b.n, 100);
    size_t off = 0;
    readbatch_entry e;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(readbatch_next(b.buf, b.len, &off, &e), 1);
        snprintf(identity, sizeof identity, "peer%d", i);
        snprintf(body, sizeof body, "request number %d", i);
        ck_assert_int_eq(e.op, i % 7);
        ck_assert_int_eq(e.start_ns, 1000 + i);
        expect_envelope(&e, identity);
        ck_assert_uint_eq(e.body_len, strlen(body));
        ck_assert(memcmp(e.body, body, e.body_len) == 0);
    }
    ck_assert_int_eq(readbatch_next(b.buf, b.len, &off, &e), 0);
    readbatch_clear(&b);
    ck_assert_int_eq(b.n, 0);
    ck_assert_uint_eq(b.len, 0);
    readbatch_free(&b);
}
END_TEST

START_TEST(replies_carry_op_status_and_an_empty_body)
{
    readbatch req = {0}, rep = {0};
    msgio_parts p;
    make_request(&p, "client-A", "score alice");
    ck_assert_int_eq(readbatch_add(&req, &p, 2, 2, 42), LS_OK);
    msgio_close(&p);
    size_t off = 0;
    readbatch_entry e;
    ck_assert_int_eq(readbatch_next(req.buf, req.len, &off, &e), 1);
    ck_assert_int_eq(readbatch_add_reply(&rep, e.op, 0, e.start_ns, e.env, e.env_len, "an error", 8), LS_OK);
    ck_assert_int_eq(readbatch_add_reply(&rep, 5, 1, 7, e.env, e.env_len, NULL, 0), LS_OK);
    off = 0;
    ck_assert_int_eq(readbatch_next(rep.buf, rep.len, &off, &e), 1);
    ck_assert_int_eq(e.op, 2);
    ck_assert_int_eq(e.ok, 0);
    ck_assert_int_eq(e.start_ns, 42);
    expect_envelope(&e, "client-A");
    ck_assert_uint_eq(e.body_len, 8);
    ck_assert(memcmp(e.body, "an error", 8) == 0);
    ck_assert_int_eq(readbatch_next(rep.buf, rep.len, &off, &e), 1);
    ck_assert_int_eq(e.op, 5);
    ck_assert_int_eq(e.ok, 1);
    ck_assert_uint_eq(e.body_len, 0);
    ck_assert_int_eq(readbatch_next(rep.buf, rep.len, &off, &e), 0);
    readbatch_free(&req);
    readbatch_free(&rep);
}
END_TEST

/* Every cut of a two-entry batch: the whole entries before the cut are
 * read, then -1 (cut inside an entry) or 0 (cut between entries); the
 * copy is exactly as long as the cut, so ASan sees any read past it. */
START_TEST(cut_bytes_are_refused_at_every_length)
{
    readbatch b = {0};
    msgio_parts p;
    make_request(&p, "x", "first");
    readbatch_add(&b, &p, 2, 1, 1);
    msgio_close(&p);
    size_t first_end = b.len;
    make_request(&p, "yy", "second body");
    readbatch_add(&b, &p, 2, 1, 2);
    msgio_close(&p);
    for (size_t cut = 0; cut <= b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.buf, cut);
        size_t off = 0;
        readbatch_entry e;
        int got = 0, rc;
        while ((rc = readbatch_next(copy, cut, &off, &e)) == 1)
            got++;
        if (cut == 0 || cut == first_end || cut == b.len)
            ck_assert_int_eq(rc, 0);
        else
            ck_assert_int_eq(rc, -1);
        ck_assert_int_eq(got, cut < first_end ? 0 : cut < b.len ? 1 : 2);
        free(copy);
    }
    readbatch_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("readbatch");
    TCase *tc = tcase_create("readbatch");
    tcase_add_test(tc, requests_come_back_in_order_with_their_envelopes);
    tcase_add_test(tc, replies_carry_op_status_and_an_empty_body);
    tcase_add_test(tc, cut_bytes_are_refused_at_every_length);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
