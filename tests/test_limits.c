/* test_limits.c -- what one client can make the server hold or do, over
 * real sockets on loopback: a client that never reads its replies (memory
 * stays bounded, its replies are dropped and counted, others are served),
 * routing envelopes too big to echo, `reload` paths outside the model
 * directories or naming something other than a model file (refused without
 * echoing a byte of the file, and without hanging on a FIFO), and store
 * scans (kpis) bounded in number and kept off the track path (a malformed
 * one is refused as such, not as busy).
 *
 * Every loop here is bounded in count and in time; the time bounds are
 * generous ("answered within 2 s"), not performance figures. */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "leadscore/error.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed memory in a quarantine (256 MB by default) before reuse,
 * which would show every freed message as resident; a small quarantine
 * lets the RSS figures below reflect memory the server actually holds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}
#endif

/* Resident set size of this process (the server runs in it), in bytes. */
static long rss_bytes(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_int_gt(kb, 0);
    return kb * 1024;
}

/* Packs {"op": op} plus nfields pairs the caller packs next. */
static void begin(msgpack_sbuffer *sb, msgpack_packer *pk, const char *op, uint32_t nfields)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, nfields + 1);
    tu_pack_str(pk, "op");
    tu_pack_str(pk, op);
}

/* A stats reply's counter. */
static int64_t stat_of(const char *endpoint, const char *name)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "stats", 0);
    ck_assert_int_eq(tu_call_raw(&c, sb.data, sb.size, &up), 0);
    msgpack_sbuffer_destroy(&sb);
    int64_t v = tu_get_int(&up.data, name);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    return v;
}

/* A fresh client pings within 2 s (a generous bound, not a figure). */
static void another_client_is_answered(const char *endpoint)
{
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, endpoint, 2000), LS_OK);
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK);
    ls_client_close(&c);
}

/* ------------------------------------------------------------------ */
/* A client that never reads                                           */
/* ------------------------------------------------------------------ */

/* Sends up to n pings, each behind a routing frame of hop bytes, never
 * reading; stops early after 20 s or when the socket will not take more
 * for 2 s.  Returns the requests sent. */
static int flood(void *sock, int n, size_t hop)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char *frame = calloc(1, hop);
    int sent = 0;
    ck_assert_ptr_nonnull(frame);
    begin(&sb, &pk, "ping", 0);
    int64_t deadline = tu_now_ms() + 20000;
    for (; sent < n && tu_now_ms() < deadline; sent++) {
        if (zmq_send(sock, frame, hop, ZMQ_SNDMORE) < 0 || zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
            zmq_send(sock, sb.data, sb.size, 0) < 0)
            break;
    }
    msgpack_sbuffer_destroy(&sb);
    free(frame);
    return sent;
}

static void *rude_dealer(void *ctx, const char *endpoint, int sndhwm)
{
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int rcvhwm = 10, zero = 0, timeout = 2000;
    zmq_setsockopt(d, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(d, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(d, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(d, endpoint), 0);
    return d;
}

START_TEST(a_client_that_never_reads_holds_bounded_memory_and_loses_replies)
{
    tu_server srv;
    tu_server_start(&srv, NULL); /* the defaults: client-hwm 1000, max-envelope 4KiB */
    another_client_is_answered(srv.endpoint);
    long before = rss_bytes();
    void *ctx = zmq_ctx_new();
    /* 40000 replies of ~3 KiB each (the envelope is echoed): 120 MB if the
     * server queued them all, as it did with a 100000-message HWM */
    void *rude = rude_dealer(ctx, srv.endpoint, 100);
    int sent = flood(rude, 40000, 3000);
    ck_assert_int_gt(sent, 20000);
    /* and envelopes too big to echo: 200 x 256 KiB, 50 MB if echoed */
    void *ruder = rude_dealer(ctx, srv.endpoint, 4);
    int sent_big = flood(ruder, 200, 256 * 1024);
    ck_assert_int_gt(sent_big, 100);
    /* the server has read them all once it answers a later client */
    another_client_is_answered(srv.endpoint);
    int64_t deadline = tu_now_ms() + 10000;
    while (stat_of(srv.endpoint, "envelopes_refused") < sent_big && tu_now_ms() < deadline)
        usleep(50000);
    long grown = rss_bytes() - before;
    ck_assert_msg(grown < 48L << 20, "RSS grew by %ld MB", grown >> 20);
    ck_assert_int_gt(stat_of(srv.endpoint, "replies_dropped"), sent / 2);
    ck_assert_int_eq(stat_of(srv.endpoint, "envelopes_refused"), sent_big);
    another_client_is_answered(srv.endpoint);
    zmq_close(rude);
    zmq_close(ruder);
    zmq_ctx_term(ctx);
    tu_server_stop(&srv);
}
END_TEST

START_TEST(an_envelope_over_the_limit_is_answered_without_it)
{
    tu_server srv;
    tu_server_start(&srv, NULL);
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 5000, zero = 0, more = 1, frames = 0;
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(d, srv.endpoint), 0);
    char hop[5000], buf[4096];
    memset(hop, 'h', sizeof hop);
    zmq_send(d, hop, sizeof hop, ZMQ_SNDMORE);
    zmq_send(d, "", 0, ZMQ_SNDMORE);
    zmq_send(d, "\x81\xa2op\xa4ping", 8, 0);
    int n = 0;
    while (more) {
        n = zmq_recv(d, buf, sizeof buf, 0);
        ck_assert_int_ge(n, 0);
        size_t len = sizeof more;
        zmq_getsockopt(d, ZMQ_RCVMORE, &more, &len);
        frames++;
    }
    ck_assert_int_eq(frames, 2); /* the delimiter and the reply: not the 5000-byte hop */
    ck_assert_ptr_nonnull(memmem(buf, (size_t)n, "too_large", 9));
    ck_assert_ptr_nonnull(memmem(buf, (size_t)n, "max-envelope", 12));
    zmq_close(d);
    zmq_ctx_term(ctx);
    tu_server_stop(&srv);
}
END_TEST

/* ------------------------------------------------------------------ */
/* reload paths                                                        */
/* ------------------------------------------------------------------ */

static void reload(tu_conn *c, const char *path, msgpack_unpacked *up)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, "reload", 1);
    tu_pack_str(&pk, "path");
    tu_pack_str(&pk, path);
    ck_assert_msg(tu_call_raw(c, sb.data, sb.size, up) == 0, "no answer to reload %s", path);
    msgpack_sbuffer_destroy(&sb);
}

/* The reply is a bad_request error whose message holds want and none of
 * the forbidden strings. */
static void refused(const msgpack_unpacked *up, const char *path, const char *want, const char *const *forbidden)
{
    ck_assert_msg(tu_is_error(&up->data, "bad_request"), "reload %s was not refused", path);
    const msgpack_object *m = tu_get(tu_get(&up->data, "error"), "message");
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(memmem(m->via.str.ptr, m->via.str.size, want, strlen(want)) != NULL, "reload %s: \"%.*s\"", path,
                  (int)m->via.str.size, m->via.str.ptr);
    ck_assert(memmem(m->via.str.ptr, m->via.str.size, "old one stays", 13) != NULL);
    for (int i = 0; forbidden && forbidden[i]; i++)
        ck_assert_msg(memmem(m->via.str.ptr, m->via.str.size, forbidden[i], strlen(forbidden[i])) == NULL,
                      "reload %s echoes \"%s\": \"%.*s\"", path, forbidden[i], (int)m->via.str.size, m->via.str.ptr);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Copies the hand-set model to path with its version replaced. */
static void copy_model(const char *path, const char *version)
{
    char *text = NULL;
    size_t len = 0;
    FILE *in = fopen(LS_SOURCE_DIR "/models/handset.json", "r");
    ck_assert_ptr_nonnull(in);
    ck_assert(getdelim(&text, &len, '\0', in) > 0);
    fclose(in);
    char *at = strstr(text, "\"version\": \"0.1.0\"");
    ck_assert_ptr_nonnull(at);
    FILE *out = fopen(path, "w");
    fprintf(out, "%.*s\"version\": \"%s\"%s", (int)(at - text), text, version, at + strlen("\"version\": \"0.1.0\""));
    fclose(out);
    free(text);
}

START_TEST(reload_reads_only_model_files_inside_the_model_directories)
{
    char top[512], models[600], outside[600], data[600], path[800], target[800];
    tu_tempdir(top, sizeof top);
    snprintf(models, sizeof models, "%s/models", top);
    snprintf(outside, sizeof outside, "%s/outside", top);
    snprintf(data, sizeof data, "%s/data", top);
    ck_assert_int_eq(mkdir(models, 0700), 0);
    ck_assert_int_eq(mkdir(outside, 0700), 0);
    config cfg;
    tu_config(&cfg, data);
    snprintf(cfg.model_dirs, sizeof cfg.model_dirs, "/nonexistent-dir:%s", models);
    tu_server srv;
    tu_server_start(&srv, &cfg);
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    static const char *const secrets[] = {"root", "SECRET", "PATH=", "daemon", NULL};
    const char *outside_msg = "inside a model directory";

    reload(&c, "/etc/passwd", &up);
    refused(&up, "/etc/passwd", outside_msg, secrets);
    reload(&c, "/proc/self/environ", &up);
    refused(&up, "/proc/self/environ", outside_msg, secrets);
    reload(&c, "/nonexistent/model.json", &up); /* the same answer: no existence oracle */
    refused(&up, "/nonexistent/model.json", outside_msg, secrets);
    /* a valid model outside, reached by .. and by a symlink inside */
    snprintf(target, sizeof target, "%s/valid.json", outside);
    copy_model(target, "6.6.6");
    snprintf(path, sizeof path, "%s/../outside/valid.json", models);
    reload(&c, path, &up);
    refused(&up, path, outside_msg, secrets);
    snprintf(path, sizeof path, "%s/escape.json", models);
    ck_assert_int_eq(symlink(target, path), 0);
    reload(&c, path, &up);
    refused(&up, path, outside_msg, secrets);
    snprintf(path, sizeof path, "%s/passwd.json", models);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    reload(&c, path, &up);
    refused(&up, path, outside_msg, secrets);
    /* the directory itself, and a directory inside */
    reload(&c, models, &up);
    refused(&up, models, outside_msg, secrets);
    snprintf(path, sizeof path, "%s/sub", models);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    reload(&c, path, &up);
    refused(&up, path, "not a regular file", secrets);
    /* a FIFO with no writer: answered at once, twice (both workers) */
    snprintf(path, sizeof path, "%s/fifo.json", models);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    for (int i = 0; i < 2; i++) {
        int64_t t0 = tu_now_ms();
        reload(&c, path, &up);
        refused(&up, path, "not a regular file", secrets);
        ck_assert_int_lt(tu_now_ms() - t0, 5000);
    }
    /* a huge (sparse) file: refused by its size, before a byte is read */
    snprintf(path, sizeof path, "%s/huge.json", models);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1LL << 30), 0);
    close(fd);
    reload(&c, path, &up);
    refused(&up, path, "larger than model-max-bytes", secrets);
    /* bad JSON, and JSON that is not a model: the content stays in the log */
    snprintf(path, sizeof path, "%s/bad.json", models);
    write_file(path, "SECRET-line-one root:x:0:0\n{\"a\": 1}\n");
    reload(&c, path, &up);
    refused(&up, path, "not a valid model file: see the server log", secrets);
    snprintf(path, sizeof path, "%s/notmodel.json", models);
    write_file(path, "{\"SECRET\": \"root:x:0:0\", \"name\": \"SECRET\"}");
    reload(&c, path, &up);
    refused(&up, path, "not a valid model file: see the server log", secrets);
    /* a good model inside is loaded, also through a relative-looking path */
    snprintf(path, sizeof path, "%s/v2.json", models);
    copy_model(path, "2.0.0");
    reload(&c, path, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    snprintf(path, sizeof path, "%s/sub/../v2.json", models);
    reload(&c, path, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    /* the --model file's own directory is allowed too */
    reload(&c, LS_SOURCE_DIR "/models/handset.json", &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    /* the workers are still serving */
    ls_client *lc;
    ls_client_event ev = {.customer = "after-reloads", .type = "page_view"};
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 2000), LS_OK);
    ck_assert_int_eq(ls_client_track(lc, &ev, 1, NULL), LS_OK);
    ls_client_close(&lc);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&srv);
    tu_rmtree(top);
}
END_TEST

/* ------------------------------------------------------------------ */
/* kpis scans                                                          */
/* ------------------------------------------------------------------ */

#define PRELOAD_CUSTOMERS 3000

static void preload(const char *endpoint)
{
    static char names[PRELOAD_CUSTOMERS][24];
    static ls_client_event evs[PRELOAD_CUSTOMERS];
    ls_client *c;
    ls_track_result tr;
    for (int i = 0; i < PRELOAD_CUSTOMERS; i++) {
        snprintf(names[i], sizeof names[i], "scan-%d", i);
        evs[i] = (ls_client_event){.customer = names[i], .type = i % 3 ? "page_view" : "purchase",
                                   .order_id = i % 3 ? NULL : names[i], .price = 20 + i % 50,
                                   .has = LS_HAS_PRICE};
    }
    ck_assert_int_eq(ls_client_connect(&c, endpoint, 30000), LS_OK);
    for (int i = 0; i < PRELOAD_CUSTOMERS; i += 1000) {
        ck_assert_int_eq(ls_client_track(c, evs + i, 1000, &tr), LS_OK);
        ck_assert_uint_eq(tr.accepted, 1000);
    }
    ls_client_close(&c);
}

#define KPIS_CLIENTS 4
#define KPIS_EACH 50

typedef struct {
    const char *endpoint;
    void *ctx;
    void *sock;
    int ok, unavailable, other;
    char first_other[160];     /* the first unexpected reply, printable, for the failure message */
} kpis_client;

/* Sends KPIS_EACH kpis requests at once, without reading. */
static void kpis_send(kpis_client *k)
{
    int timeout = 30000, zero = 0;
    k->ctx = zmq_ctx_new();
    k->sock = zmq_socket(k->ctx, ZMQ_DEALER);
    zmq_setsockopt(k->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(k->sock, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(k->sock, k->endpoint), 0);
    for (int i = 0; i < KPIS_EACH; i++) {
        zmq_send(k->sock, "", 0, ZMQ_SNDMORE);
        zmq_send(k->sock, "\x81\xa2op\xa4kpis", 9, 0);
    }
}

/* Reads every answer (each within 30 s) and counts them by outcome. */
static void kpis_collect(kpis_client *k)
{
    zmq_msg_t m;
    for (int i = 0; i < KPIS_EACH; i++) {
        char delim[8];
        ck_assert_int_ge(zmq_recv(k->sock, delim, sizeof delim, 0), 0);
        zmq_msg_init(&m);
        ck_assert_int_ge(zmq_msg_recv(&m, k->sock, 0), 0);
        const char *d = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        if (memmem(d, n, "\xa2ok\xc3", 4))
            k->ok++;
        else if (memmem(d, n, "unavailable", 11) && memmem(d, n, "max-scans", 9))
            k->unavailable++;
        else if (k->other++ == 0)
            for (size_t j = 0; j < n && j + 1 < sizeof k->first_other; j++)
                k->first_other[j] = d[j] >= 0x20 && d[j] < 0x7f ? d[j] : '.';
        zmq_msg_close(&m);
    }
    zmq_close(k->sock);
    zmq_ctx_term(k->ctx);
}

START_TEST(kpis_scans_are_bounded_and_keep_off_the_track_path)
{
    tu_server srv;
    tu_server_start(&srv, NULL); /* scan-threads 1, max-scans 4 */
    preload(srv.endpoint);
    kpis_client k[KPIS_CLIENTS];
    for (int i = 0; i < KPIS_CLIENTS; i++) {
        k[i] = (kpis_client){.endpoint = srv.endpoint};
        kpis_send(&k[i]);
    }
    /* with 200 scans asked for, a track and a score are still answered */
    ls_client *c;
    ls_track_result tr;
    ls_score sc;
    ls_client_event ev = {.customer = "during-scans", .type = "add_to_cart", .price = 10, .has = LS_HAS_PRICE};
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 2000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &ev, 1, &tr), LS_OK);
    ck_assert_uint_eq(tr.accepted, 1);
    ck_assert_int_eq(ls_client_score(c, "during-scans", &sc), LS_OK);
    ls_score_free(&sc);
    ls_client_close(&c);
    int ok = 0, unavailable = 0;
    for (int i = 0; i < KPIS_CLIENTS; i++) {
        kpis_collect(&k[i]);
        ck_assert_msg(k[i].other == 0, "%d unexpected replies, the first: %s", k[i].other, k[i].first_other);
        ok += k[i].ok;
        unavailable += k[i].unavailable;
    }
    ck_assert_int_eq(ok + unavailable, KPIS_CLIENTS * KPIS_EACH);
    ck_assert_int_ge(ok, 1);
    ck_assert_int_ge(unavailable, 1);
    ck_assert_int_eq(stat_of(srv.endpoint, "scans_refused"), unavailable);
    /* once the burst is over, a scan runs again */
    tu_conn t;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&t, srv.endpoint, ZMQ_DEALER);
    ck_assert_int_eq(tu_call_raw(&t, "\x81\xa2op\xa4kpis", 9, &up), 0);
    ck_assert(tu_get_bool(&up.data, "ok"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&t);
    tu_server_stop(&srv);
}
END_TEST

#define BUSY_SCANS 4 /* valid scans sent ahead, with max-scans 1 */

/* Packs {"op": "kpis", "id": id} plus key: a string (str) or an int. */
static void kpis_body(msgpack_sbuffer *sb, int64_t id, const char *key, const char *str, int64_t n)
{
    msgpack_packer pk;
    begin(sb, &pk, "kpis", key ? 2 : 1);
    tu_pack_str(&pk, "id");
    msgpack_pack_int64(&pk, id);
    if (!key)
        return;
    tu_pack_str(&pk, key);
    if (str)
        tu_pack_str(&pk, str);
    else
        msgpack_pack_int64(&pk, n);
}

/* A malformed kpis can never succeed: it is bad_request (PROTOCOL.md 1.3:
 * the field check comes before the op's own), never "retry later", even
 * when every scan slot is taken -- and it takes none. */
START_TEST(a_malformed_kpis_is_bad_request_while_the_scans_are_busy)
{
    static const struct {
        const char *key, *str;
        int64_t n;
        const char *why;
    } bad[] = {
        {"form", NULL, 1, "unknown request field \"form\""},
        {"from", "yesterday", 0, "\"from\" must be an integer (Unix epoch milliseconds)"},
        {"from", NULL, 4102444800000, "from must be before to"}, /* 2100: after now */
    };
    enum { NBAD = sizeof bad / sizeof bad[0] };
    tu_server srv;
    config cfg;
    char dir[512];
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.max_scans = 1;
    tu_server_start(&srv, &cfg);
    preload(srv.endpoint);
    tu_conn t;
    msgpack_sbuffer sb;
    tu_connect(&t, srv.endpoint, ZMQ_DEALER);
    for (int i = 0; i < BUSY_SCANS + NBAD; i++) { /* all at once: the first scan holds the slot */
        if (i < BUSY_SCANS)
            kpis_body(&sb, i, NULL, NULL, 0);
        else
            kpis_body(&sb, i, bad[i - BUSY_SCANS].key, bad[i - BUSY_SCANS].str, bad[i - BUSY_SCANS].n);
        zmq_send(t.sock, "", 0, ZMQ_SNDMORE);
        zmq_send(t.sock, sb.data, sb.size, 0);
        msgpack_sbuffer_destroy(&sb);
    }
    int ok = 0, unavailable = 0, seen[BUSY_SCANS + NBAD] = {0};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    for (int i = 0; i < BUSY_SCANS + NBAD; i++) {
        char delim[8], body[4096];
        ck_assert_int_ge(zmq_recv(t.sock, delim, sizeof delim, 0), 0);
        int n = zmq_recv(t.sock, body, sizeof body, 0);
        ck_assert(n > 0 && msgpack_unpack_next(&up, body, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS);
        int64_t id = tu_get_int(&up.data, "id");
        ck_assert(id >= 0 && id < BUSY_SCANS + NBAD && !seen[id]);
        seen[id] = 1;
        if (id < BUSY_SCANS) {
            ok += tu_get_bool(&up.data, "ok");
            unavailable += tu_is_error(&up.data, "unavailable");
            continue;
        }
        const char *want = bad[id - BUSY_SCANS].why;
        const msgpack_object *why = tu_get(tu_get(&up.data, "error"), "message");
        ck_assert_msg(tu_is_error(&up.data, "bad_request") && why && why->type == MSGPACK_OBJECT_STR &&
                          why->via.str.size == strlen(want) && memcmp(why->via.str.ptr, want, strlen(want)) == 0,
                      "request %lld: want bad_request \"%s\", got %.*s", (long long)id, want,
                      why && why->type == MSGPACK_OBJECT_STR ? (int)why->via.str.size : 0,
                      why && why->type == MSGPACK_OBJECT_STR ? why->via.str.ptr : "");
    }
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&t);
    ck_assert_int_eq(ok + unavailable, BUSY_SCANS);
    ck_assert_int_ge(ok, 1);
    ck_assert_int_ge(unavailable, 1); /* the slot was busy while the bad ones came */
    ck_assert_int_eq(stat_of(srv.endpoint, "scans_refused"), unavailable);
    tu_server_stop(&srv);
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, a_client_that_never_reads_holds_bounded_memory_and_loses_replies);
    tcase_add_test(tc, an_envelope_over_the_limit_is_answered_without_it);
    tcase_add_test(tc, reload_reads_only_model_files_inside_the_model_directories);
    tcase_add_test(tc, kpis_scans_are_bounded_and_keep_off_the_track_path);
    tcase_add_test(tc, a_malformed_kpis_is_bad_request_while_the_scans_are_busy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
