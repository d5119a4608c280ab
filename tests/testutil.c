/* testutil.c -- shared helpers for the test suites (see testutil.h). */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "service.h"

void tu_tempdir(char *buf, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, cap, "%s/leadscore-test-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_config(config *cfg, const char *dir)
{
    config_defaults(cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:*");
    snprintf(cfg->pull, sizeof cfg->pull, "tcp://127.0.0.1:*");
    cfg->map_size = 1ULL << 30;
    /* warnings and errors only: a failing test's own lines stay near its
     * name in ctest's output, not behind thousands of start-up lines */
    snprintf(cfg->log_level, sizeof cfg->log_level, "warn");
    /* the hand-set model: the tests' worked examples are computed with it */
    snprintf(cfg->model_path, sizeof cfg->model_path, "%s", LS_SOURCE_DIR "/models/handset.json");
}

static void *server_thread(void *arg)
{
    tu_server *ts = arg;
    server_run(ts->srv);
    return NULL;
}

void tu_server_start(tu_server *ts, const config *cfg_in)
{
    config cfg;
    char err[512] = "";
    memset(ts, 0, sizeof *ts);
    if (cfg_in) {
        cfg = *cfg_in;
    } else {
        tu_tempdir(ts->dir, sizeof ts->dir);
        ts->own_dir = 1;
        tu_config(&cfg, ts->dir);
    }
    int rc = server_start(&ts->srv, &cfg, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "server_start: %s", err);
    snprintf(ts->endpoint, sizeof ts->endpoint, "%s", server_endpoint(ts->srv));
    snprintf(ts->pull_endpoint, sizeof ts->pull_endpoint, "%s", server_pull_endpoint(ts->srv));
    ck_assert_int_eq(pthread_create(&ts->thread, NULL, server_thread, ts), 0);
}

void tu_server_stop(tu_server *ts)
{
    server_request_stop(ts->srv);
    pthread_join(ts->thread, NULL);
    server_destroy(&ts->srv);
    if (ts->own_dir)
        tu_rmtree(ts->dir);
}

int64_t tu_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads the child's stdout until the "requests" line (<= 20 s). */
static int read_endpoint(int fd, char *endpoint, size_t cap)
{
    char buf[4096];
    size_t len = 0;
    int64_t deadline = tu_now_ms() + 20000;
    while (tu_now_ms() < deadline && len < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *at = strstr(buf, "requests  ");
        if (at && strchr(at, '\n')) {
            sscanf(at + 10, "%255s", endpoint);
            (void)cap;
            return 0;
        }
    }
    return -1;
}

pid_t tu_spawn_serve(const char *dir, char *endpoint, size_t cap, const char *const *extra)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32] = {LEADSCORE_BIN, "serve", "--data", dir, "--bind", "tcp://127.0.0.1:*",
                                "--pull", "tcp://127.0.0.1:*", "--map-size", "1GiB",
                                "--model", LS_SOURCE_DIR "/models/handset.json"};
        int n = 12;
        for (int i = 0; extra && extra[i] && n < 30; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv(LEADSCORE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    int rc = read_endpoint(out[0], endpoint, cap);
    /* keep the pipe's read end open so the child never gets SIGPIPE; it is
     * closed when this test process exits */
    ck_assert_msg(rc == 0, "leadscore serve did not start");
    return pid;
}

int tu_kill_wait(pid_t pid, int sig)
{
    int status = -1;
    kill(pid, sig);
    for (int i = 0; i < 2000; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Runs leadscore ARGS with standard output on out_fd (-1: the capture
 * pipe too) and standard error into buf; the exit status, or -1. */
static int run_cli_into(int out_fd, int default_sigpipe, char *buf, size_t cap, const char *const *args)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[64] = {LEADSCORE_BIN};
        int n = 1;
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        if (default_sigpipe)
            signal(SIGPIPE, SIG_DFL);
        dup2(out_fd >= 0 ? out_fd : p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(LEADSCORE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(p[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tu_run_cli(char *out, size_t cap, const char *const *args)
{
    return run_cli_into(-1, 0, out, cap, args);
}

int tu_run_cli_output_to(int fd, char *err, size_t cap, const char *const *args)
{
    return run_cli_into(fd, 1, err, cap, args);
}

void tu_connect(tu_conn *c, const char *endpoint, int type)
{
    int zero = 0, timeout = 10000;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, type);
    ck_assert_ptr_nonnull(c->sock);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    ck_assert_int_eq(zmq_connect(c->sock, endpoint), 0);
}

void tu_disconnect(tu_conn *c)
{
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
}

int tu_call_raw(tu_conn *c, const void *body, size_t len, msgpack_unpacked *up)
{
    char buf[1 << 16];
    zmq_msg_t m;
    if (zmq_send(c->sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(c->sock, body, len, 0) < 0)
        return -1;
    if (zmq_recv(c->sock, buf, sizeof buf, 0) < 0) /* delimiter */
        return -1;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, 0) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    /* decoded strings point into the bytes they came from, so the bytes
     * are copied into the zone the unpacked object owns */
    msgpack_unpacked_destroy(up);
    msgpack_unpacked_init(up);
    size_t n = zmq_msg_size(&m), off = 0;
    up->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    char *copy = up->zone ? msgpack_zone_malloc(up->zone, n ? n : 1) : NULL;
    int rc = -1;
    if (copy) {
        memcpy(copy, zmq_msg_data(&m), n);
        rc = msgpack_unpack(copy, n, &off, up->zone, &up->data) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
    }
    zmq_msg_close(&m);
    return rc;
}

void tu_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void tu_pack_track(msgpack_sbuffer *sb, const char *customer, const char *type)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "track");
    tu_pack_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, customer);
    tu_pack_str(&pk, "type");
    tu_pack_str(&pk, type);
}

const msgpack_object *tu_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

int tu_get_bool(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_msg(v && v->type == MSGPACK_OBJECT_BOOLEAN, "no boolean \"%s\"", key);
    return v->via.boolean;
}

int64_t tu_get_int(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_msg(v && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER),
                  "no integer \"%s\"", key);
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : v->via.i64;
}

double tu_get_double(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_msg(v != NULL, "no number \"%s\"", key);
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
        return v->via.f64;
    return (double)tu_get_int(map, key);
}

int tu_is_error(const msgpack_object *map, const char *code)
{
    const msgpack_object *ok = tu_get(map, "ok"), *err = tu_get(map, "error");
    const msgpack_object *c = err ? tu_get(err, "code") : NULL;
    return ok && ok->type == MSGPACK_OBJECT_BOOLEAN && !ok->via.boolean && c && c->type == MSGPACK_OBJECT_STR &&
           c->via.str.size == strlen(code) && memcmp(c->via.str.ptr, code, c->via.str.size) == 0;
}

const char *tu_data_dir(void)
{
    static char found[1024];
    const char *env = getenv("LEADSCORE_DATA_DIR");
    const char *dirs[] = {env && *env ? env : NULL, LS_SHARED_DATA_DIR, "/work/shared/data"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char probe[1100];
        if (!dirs[i])
            continue;
        snprintf(probe, sizeof probe, "%s/cdnow/CDNOW_sample.txt", dirs[i]);
        if (access(probe, R_OK) == 0) {
            snprintf(found, sizeof found, "%s", dirs[i]);
            return found;
        }
    }
    ck_abort_msg("the CDNOW data set is not in $LEADSCORE_DATA_DIR, %s or /work/shared/data", LS_SHARED_DATA_DIR);
    return NULL;
}

uint64_t tu_rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Version 3 added 2 bytes (cart items) to each of the 6 cart slots, which
 * start at byte 316, and 36 bytes (purchase lines, days, units, last
 * checkout, last share, share days, review days) after good_reviews. */
/* Version 3 wrote every field at its full width, in this order. */
static void v3_put(uint8_t *buf, size_t *at, const void *v, size_t n)
{
    ck_assert_uint_le(*at + n, FEATURE_MAX_ENCODED);
    memcpy(buf + *at, v, n);
    *at += n;
}

#define V3_PUT(type, v)                  \
    do {                                  \
        type v3_tmp_ = (type)(v);         \
        v3_put(buf, &at, &v3_tmp_, sizeof v3_tmp_); \
    } while (0)

size_t tu_encode_v3_record(const ls_features *f, uint8_t *buf)
{
    size_t at = 0;
    V3_PUT(uint8_t, 3);
    V3_PUT(uint8_t, f->ncategories);
    V3_PUT(uint16_t, f->birthday_mmdd);
    V3_PUT(int64_t, f->birthday_ts_ms);
    V3_PUT(int64_t, f->first_seen_ms);
    V3_PUT(int64_t, f->last_seen_ms);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        V3_PUT(uint32_t, f->count[i]);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        V3_PUT(float, f->recent[i]);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        V3_PUT(float, f->decayed[i]);
    V3_PUT(uint32_t, f->sessions);
    for (int i = 0; i < FEATURE_SESSION_RING; i++) {
        V3_PUT(uint32_t, f->session_ring[i].hash);
        V3_PUT(int64_t, f->session_ring[i].ts_ms);
    }
    V3_PUT(float, f->sessions_recent);
    V3_PUT(float, f->sessions_decayed);
    V3_PUT(double, f->spend);
    V3_PUT(double, f->refunded);
    V3_PUT(double, f->discounted_spend);
    for (int i = 0; i < FEATURE_CART_RING; i++) {
        V3_PUT(int64_t, f->cart[i].ts_ms);
        V3_PUT(float, f->cart[i].value);
        V3_PUT(uint16_t, (uint16_t)f->cart[i].items);
    }
    V3_PUT(int64_t, f->first_purchase_ms);
    V3_PUT(int64_t, f->last_purchase_ms);
    V3_PUT(int64_t, f->last_cart_ms);
    V3_PUT(double, f->first_purchase_value);
    V3_PUT(int64_t, f->last_review_ms);
    V3_PUT(int64_t, f->last_negative_ms);
    V3_PUT(uint32_t, f->rating_sum);
    V3_PUT(uint32_t, f->rating_n);
    V3_PUT(uint32_t, f->bad_reviews);
    V3_PUT(uint32_t, f->good_reviews);
    V3_PUT(uint32_t, f->purchase_lines);
    V3_PUT(uint32_t, f->purchase_days);
    V3_PUT(uint32_t, f->purchase_units);
    V3_PUT(int64_t, f->last_checkout_ms);
    V3_PUT(int64_t, f->last_share_ms);
    V3_PUT(uint32_t, f->share_days);
    V3_PUT(uint32_t, f->review_days);
    for (int i = 0; i < f->ncategories; i++) {
        const feature_category *c = &f->categories[i];
        V3_PUT(uint16_t, c->len);
        v3_put(buf, &at, c->name, c->len);
        V3_PUT(uint32_t, c->count);
        V3_PUT(float, c->recent);
        V3_PUT(float, c->decayed);
    }
    return at;
}

size_t tu_encode_v2_record(const ls_features *f, uint8_t *buf)
{
    enum { CART_AT = 316, SLOT3 = 14, SLOT2 = 12, AFTER_CART = 64, V3_TAIL = 36 };
    uint8_t v3[FEATURE_MAX_ENCODED];
    size_t n = tu_encode_v3_record(f, v3), out = 0, at;
    memcpy(buf, v3, CART_AT);
    out = CART_AT;
    for (int i = 0; i < FEATURE_CART_RING; i++, out += SLOT2)
        memcpy(buf + out, v3 + CART_AT + i * SLOT3, SLOT2);
    at = CART_AT + FEATURE_CART_RING * SLOT3;
    memcpy(buf + out, v3 + at, AFTER_CART);
    out += AFTER_CART;
    at += AFTER_CART + V3_TAIL;
    memcpy(buf + out, v3 + at, n - at);
    out += n - at;
    buf[0] = 2;
    return out;
}

static int count_with_history(void *arg, const char *id, size_t len, const ls_features *f, const history *h)
{
    (void)id;
    (void)len;
    (void)f;
    *(uint64_t *)arg += h->n > 0;
    return 0;
}

uint64_t tu_customers_with_history(store *s)
{
    store_reader *r = NULL;
    uint64_t n = 0;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_scan_history(r, count_with_history, &n), LS_OK);
    store_reader_close(&r);
    return n;
}

void tu_writer_rig_open(service *svc, const char *dir, const feature_decay *decay)
{
    char err[1024] = "";
    store_options opt = {.map_size = 16ULL << 20, .no_sync = 1};
    memset(svc, 0, sizeof *svc);
    config_defaults(&svc->cfg);
    snprintf(svc->cfg.data_dir, sizeof svc->cfg.data_dir, "%s", dir);
    svc->cfg.map_size = svc->cfg.map_max = opt.map_size;
    ck_assert_int_eq(stats_init(&svc->stats, 0, 0), LS_OK);
    int rc = store_open(&svc->store, dir, &opt, decay, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "store_open: %d %s", rc, err);
}

void tu_writer_rig_close(service *svc)
{
    store_close(&svc->store);
    stats_destroy(&svc->stats);
}

int tu_run_program_split(char *o, size_t ocap, char *e, size_t ecap, const char *const *argv)
{
    char dir[512], po[600], pe[600];
    snprintf(dir, sizeof dir, "%s/leadscore-run-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(po, sizeof po, "%s/out", dir);
    snprintf(pe, sizeof pe, "%s/err", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || !freopen(po, "w", stdout) || !freopen(pe, "w", stderr))
            _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = -1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    const char *paths[2] = {po, pe};
    char *bufs[2] = {o, e};
    size_t caps[2] = {ocap, ecap};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        size_t n = f ? fread(bufs[i], 1, caps[i] - 1, f) : 0;
        bufs[i][n] = '\0';
        if (f)
            fclose(f);
    }
    tu_rmtree(dir);
    return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tu_run_cli_split(char *o, size_t ocap, char *e, size_t ecap, const char *const *args)
{
    const char *argv[64] = {LEADSCORE_BIN};
    int n = 1;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int rc = tu_run_program_split(o, ocap, e, ecap, argv);
    ck_assert_int_ge(rc, 0);
    return rc;
}

int tu_store_page_views(store *s, const char *id, size_t len)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    int rc = store_reader_get(r, id, len, &f);
    store_reader_end(r);
    store_reader_close(&r);
    if (rc == LS_ENOTFOUND)
        return -1;
    ck_assert_int_eq(rc, LS_OK);
    return (int)f.count[EV_PAGE_VIEW];
}
