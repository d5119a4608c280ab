/* loadgen_request.c -- the bytes of `leadscore bench` (see
 * loadgen_request.h): which customer a request names (uniform, or Zipf
 * ranks scattered over the ids by a fixed permutation), the msgpack
 * request maps of every workload, and the fast scan of a reply for its
 * "ok" and "id" (plus the slow path that reads an error's words). */
#include "loadgen_request.h"

#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ */
/* Which customer a request names                                      */
/* ------------------------------------------------------------------ */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A multiplier coprime with n near n/phi, so hot ranks land far apart. */
void lg_request_permutation(lg_run *run, uint64_t n)
{
    uint64_t a = (uint64_t)((double)n * 0.6180339887498949) | 1;
    while (a > 1 && gcd64(a, n) != 1)
        a++;
    run->perm_a = n > 1 ? a % n : 0;
    run->perm_b = n / 3;
    if (run->perm_a == 0)
        run->perm_a = 1;
}

static uint64_t pick_customer(lg_client *c)
{
    lg_run *run = c->run;
    uint64_t n = run->cfg->customers;
    if (!run->use_zipf)
        return 1 + loadgen_rng_below(&c->rng, n);
    uint64_t r = loadgen_zipf_next(&run->zipf, &c->rng) - 1;
    return 1 + (uint64_t)(((unsigned __int128)r * run->perm_a + run->perm_b) % n);
}

/* ------------------------------------------------------------------ */
/* Request building                                                    */
/* ------------------------------------------------------------------ */

static void pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_lit(msgpack_packer *pk, const char *s)
{
    pack_strn(pk, s, strlen(s));
}

static void pack_customer(lg_client *c)
{
    char id[32];
    pack_strn(&c->pk, id, loadgen_customer_id(pick_customer(c), id, sizeof id));
}

/* Starts a request map of nfields entries after "id" and "op". */
void lg_request_begin(lg_client *c, uint32_t nfields, uint64_t id, const char *op)
{
    c->sb.size = 0;
    msgpack_pack_map(&c->pk, nfields + (id ? 2 : 1));
    if (id) {
        pack_lit(&c->pk, "id");
        msgpack_pack_fix_uint64(&c->pk, id);
    }
    pack_lit(&c->pk, "op");
    pack_lit(&c->pk, op);
}

/* A track event of realistic shape for customer id (number k): about
 * 150 bytes of msgpack. */
static void pack_event_of(lg_client *c, int64_t now_ms, const char *id, size_t id_len, uint64_t k)
{
    static const struct {
        const char *type;
        int weight, priced;
    } mix[] = {{"page_view", 35, 0}, {"product_view", 30, 1}, {"search", 10, 0}, {"add_to_cart", 10, 1},
               {"remove_from_cart", 2, 1}, {"checkout", 4, 0}, {"purchase", 4, 1}, {"email_open", 3, 0},
               {"email_click", 2, 0}};
    char buf[64];
    int roll = (int)loadgen_rng_below(&c->rng, 100), t = 0;
    while (roll >= mix[t].weight) {
        roll -= mix[t].weight;
        t++;
    }
    msgpack_pack_map(&c->pk, mix[t].priced ? 8 : 7);
    pack_lit(&c->pk, "customer");
    pack_strn(&c->pk, id, id_len);
    pack_lit(&c->pk, "type");
    pack_lit(&c->pk, mix[t].type);
    pack_lit(&c->pk, "ts");
    msgpack_pack_int64(&c->pk, now_ms);
    pack_lit(&c->pk, "event_id");
    pack_strn(&c->pk, buf,
              loadgen_event_id((loadgen_event_ids)c->run->cfg->event_ids, c->run->nonce, c->index, ++c->event_seq, buf, sizeof buf));
    pack_lit(&c->pk, "session");
    snprintf(buf, sizeof buf, "s-%016llx", (unsigned long long)(k * UINT64_C(0x9e3779b97f4a7c15)));
    pack_lit(&c->pk, buf);
    pack_lit(&c->pk, "product");
    snprintf(buf, sizeof buf, "sku-%05u", (unsigned)loadgen_rng_below(&c->rng, 100000));
    pack_lit(&c->pk, buf);
    pack_lit(&c->pk, "category");
    pack_lit(&c->pk, loadgen_categories[loadgen_rng_below(&c->rng, LOADGEN_N_CATEGORIES)]);
    if (mix[t].priced) {
        pack_lit(&c->pk, "price");
        msgpack_pack_double(&c->pk, 5.0 + (double)loadgen_rng_below(&c->rng, 19500) / 100.0);
    }
}

/* An event of a customer of the base. */
static void pack_event(lg_client *c, int64_t now_ms)
{
    char id[32];
    uint64_t k = pick_customer(c);
    pack_event_of(c, now_ms, id, loadgen_customer_id(k, id, sizeof id), k);
}

/* The first event of a new customer whose id says when its request was
 * due (the triggers workload). */
static void pack_new_customer_event(lg_client *c, int64_t now_ms)
{
    char id[96];
    uint64_t seq = ++c->new_customers;
    int n = snprintf(id, sizeof id, "bt-%08x-%d-%llu-%lld", (unsigned)c->run->nonce, c->index, (unsigned long long)seq,
                     (long long)c->due_ns);
    pack_event_of(c, now_ms, id, (size_t)n, seq);
}

static void build_track(lg_client *c, uint64_t id, int nevents, int new_customers)
{
    int64_t now_ms = timefmt_now_ms();
    lg_request_begin(c, 1, id, "track");
    pack_lit(&c->pk, "events");
    msgpack_pack_array(&c->pk, (size_t)nevents);
    for (int i = 0; i < nevents; i++) {
        if (new_customers)
            pack_new_customer_event(c, now_ms);
        else
            pack_event(c, now_ms);
    }
}

int lg_request_trigger_due(uint32_t nonce, const char *id, size_t len, int64_t *due_ns)
{
    char prefix[16];
    int n = snprintf(prefix, sizeof prefix, "bt-%08x-", (unsigned)nonce);
    if (len <= (size_t)n || memcmp(id, prefix, (size_t)n) != 0)
        return -1;
    size_t i = (size_t)n;
    for (int dashes = 0; dashes < 2; i++) { /* past <client>- and <seq>- */
        if (i >= len || (id[i] != '-' && (id[i] < '0' || id[i] > '9')))
            return -1;
        dashes += id[i] == '-';
    }
    int64_t v = 0;
    if (i >= len)
        return -1;
    for (; i < len; i++) {
        if (id[i] < '0' || id[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (id[i] - '0');
    }
    *due_ns = v;
    return 0;
}

/* Builds the next request of the workload into c->sb; sets its kind and
 * the number of items it carries. */
void lg_request_build(lg_client *c, uint64_t id, int *kind, uint32_t *items)
{
    const loadgen_config *cfg = c->run->cfg;
    loadgen_workload w = cfg->workload;
    if (w == LOADGEN_MIXED)
        w = (int)loadgen_rng_below(&c->rng, 100) < cfg->mix_read_pct ? LOADGEN_SCORE : LOADGEN_TRACK;
    *kind = LOADGEN_KIND_READ;
    *items = 1;
    switch (w) {
    case LOADGEN_SCORE_BATCH:
        lg_request_begin(c, 1, id, "score");
        pack_lit(&c->pk, "customers");
        msgpack_pack_array(&c->pk, (size_t)cfg->batch);
        for (int i = 0; i < cfg->batch; i++)
            pack_customer(c);
        *items = (uint32_t)cfg->batch;
        break;
    case LOADGEN_TRACK:
    case LOADGEN_PULL:
    case LOADGEN_TRIGGERS:
        build_track(c, id, cfg->batch, w == LOADGEN_TRIGGERS);
        *kind = LOADGEN_KIND_WRITE;
        *items = (uint32_t)cfg->batch;
        break;
    case LOADGEN_RECOMMEND:
        lg_request_begin(c, 1, id, "recommend");
        pack_lit(&c->pk, "customer");
        pack_customer(c);
        break;
    default:
        lg_request_begin(c, 1, id, "score");
        pack_lit(&c->pk, "customer");
        pack_customer(c);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Reading replies                                                     */
/* ------------------------------------------------------------------ */

static uint64_t read_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads the header of the value at *pos: how many payload bytes follow it
 * and how many child values it contains.  Advances *pos past the header.
 * Returns 0, or -1 for a bad or cut-short header. */
static int mp_header(const uint8_t *p, size_t len, size_t *pos, uint64_t *payload, uint64_t *children)
{
    static const signed char fixed[32] = {0, -1, 0, 0, -2, -2, -2, -3, -3, -3, 4, 8, 1, 2, 4, 8,
                                          1, 2, 4, 8, 2, 3, 5, 9, 17, -2, -2, -2, -4, -4, -5, -5};
    static const unsigned char lenb[32] = {[4] = 1, [5] = 2, [6] = 4, [7] = 1, [8] = 2, [9] = 4,
                                           [25] = 1, [26] = 2, [27] = 4, [28] = 2, [29] = 4, [30] = 2, [31] = 4};
    if (*pos >= len)
        return -1;
    uint8_t b = p[(*pos)++];
    *payload = *children = 0;
    if (b <= 0x7f || b >= 0xe0)
        return 0;
    if (b <= 0x8f) { *children = 2u * (b & 0x0f); return 0; }
    if (b <= 0x9f) { *children = b & 0x0f; return 0; }
    if (b <= 0xbf) { *payload = b & 0x1f; return 0; }
    int idx = b - 0xc0, kind = fixed[idx];
    if (kind == -1)
        return -1;
    if (kind >= 0) {
        *payload = (uint64_t)kind;
        return 0;
    }
    if (len - *pos < lenb[idx])
        return -1;
    uint64_t v = read_be(p + *pos, lenb[idx]);
    *pos += lenb[idx];
    if (kind == -2) *payload = v;
    else if (kind == -3) *payload = v + 1;
    else if (kind == -4) *children = v;
    else *children = 2 * v;
    return 0;
}

/* Skips one whole value (and everything inside it). */
static int mp_skip(const uint8_t *p, size_t len, size_t *pos)
{
    uint64_t pending = 1;
    while (pending > 0) {
        uint64_t payload, children;
        pending--;
        if (mp_header(p, len, pos, &payload, &children) || payload > len - *pos || children > len - *pos)
            return -1;
        *pos += (size_t)payload;
        pending += children;
    }
    return 0;
}

/* Reads an unsigned integer value; -1 when the value is something else. */
static int mp_uint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint8_t b = p[*pos];
    int n = b <= 0x7f ? 0 : b >= 0xcc && b <= 0xcf ? 1 << (b - 0xcc) : -1;
    if (n < 0 || len - *pos < (size_t)n + 1)
        return -1;
    *out = n == 0 ? b : read_be(p + *pos + 1, n);
    *pos += (size_t)n + 1;
    return 0;
}

int loadgen_scan_reply(const void *buf, size_t len, int *ok, uint64_t *id, int *has_id)
{
    const uint8_t *p = buf;
    size_t pos = 0;
    uint64_t payload, entries;
    *ok = -1;
    *has_id = 0;
    if (!p || len == 0 || ((p[0] & 0xf0) != 0x80 && p[0] != 0xde && p[0] != 0xdf) ||
        mp_header(p, len, &pos, &payload, &entries))
        return LS_EPARSE;
    for (uint64_t i = 0; i < entries / 2 && (*ok < 0 || !*has_id); i++) {
        size_t kpos = pos;
        if (mp_skip(p, len, &pos) || pos >= len)
            return LS_EPARSE;
        size_t klen = pos - kpos;
        if (klen == 3 && p[kpos] == 0xa2 && memcmp(p + kpos + 1, "ok", 2) == 0 && (p[pos] == 0xc2 || p[pos] == 0xc3)) {
            *ok = p[pos++] == 0xc3;
            continue;
        }
        if (klen == 3 && p[kpos] == 0xa2 && memcmp(p + kpos + 1, "id", 2) == 0 && mp_uint(p, len, &pos, id) == 0) {
            *has_id = 1;
            continue;
        }
        if (mp_skip(p, len, &pos))
            return LS_EPARSE;
    }
    return LS_OK;
}

/* The slow path for an error reply: "code: message" into out. */
void lg_request_describe_error(const void *buf, size_t len, char *out, size_t cap)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    snprintf(out, cap, "an error reply that could not be read");
    if (msgpack_unpack_next(&up, buf, len, NULL) == MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *err = NULL;
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
                memcmp(kv->key.via.str.ptr, "error", 5) == 0 && kv->val.type == MSGPACK_OBJECT_MAP)
                err = &kv->val;
        }
        const char *code = "?", *msg = "";
        int code_len = 1, msg_len = 0;
        for (uint32_t i = 0; err && i < err->via.map.size; i++) {
            const msgpack_object_kv *kv = &err->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR)
                continue;
            if (kv->key.via.str.size == 4 && memcmp(kv->key.via.str.ptr, "code", 4) == 0) {
                code = kv->val.via.str.ptr;
                code_len = (int)kv->val.via.str.size;
            } else if (kv->key.via.str.size == 7 && memcmp(kv->key.via.str.ptr, "message", 7) == 0) {
                msg = kv->val.via.str.ptr;
                msg_len = (int)kv->val.via.str.size;
            }
        }
        if (err)
            snprintf(out, cap, "%.*s: %.*s", code_len > 64 ? 64 : code_len, code, msg_len > 160 ? 160 : msg_len, msg);
    }
    msgpack_unpacked_destroy(&up);
}

/* ------------------------------------------------------------------ */
/* One-off calls                                                       */
/* ------------------------------------------------------------------ */

void lg_conn_close(lg_conn *s)
{
    if (s->sock)
        zmq_close(s->sock);
    if (s->zmq)
        zmq_ctx_term(s->zmq);
    s->sock = s->zmq = NULL;
}

int lg_conn_open(lg_conn *s, const loadgen_config *cfg, const char *endpoint, int timeout_ms)
{
    int zero = 0, one = 1;
    s->timeout_ms = timeout_ms;
    s->zmq = zmq_ctx_new();
    s->sock = s->zmq ? zmq_socket(s->zmq, ZMQ_REQ) : NULL;
    if (!s->sock) {
        lg_conn_close(s);
        return LS_EINTERNAL;
    }
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_REQ_RELAXED, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_REQ_CORRELATE, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (cfg)
        lg_client_curve(cfg, s->sock);
    if (zmq_connect(s->sock, endpoint) != 0) {
        lg_conn_close(s);
        return LS_EINVAL; /* not an endpoint ZeroMQ takes */
    }
    return LS_OK;
}

int lg_call(lg_conn *s, const void *body, size_t len, lg_reply *r)
{
    zmq_msg_init(&r->msg);
    msgpack_unpacked_init(&r->up);
    if (zmq_send(s->sock, body, len, 0) < 0 || zmq_msg_recv(&r->msg, s->sock, 0) < 0)
        return LS_ETIMEOUT;
    if (msgpack_unpack_next(&r->up, zmq_msg_data(&r->msg), zmq_msg_size(&r->msg), NULL) != MSGPACK_UNPACK_SUCCESS ||
        r->up.data.type != MSGPACK_OBJECT_MAP)
        return LS_EPARSE;
    return LS_OK;
}

void lg_reply_done(lg_reply *r)
{
    msgpack_unpacked_destroy(&r->up);
    zmq_msg_close(&r->msg);
}

const msgpack_object *lg_map_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    for (uint32_t i = 0; map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

int lg_map_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *v = lg_map_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return LS_EPARSE;
    *out = v->via.u64;
    return LS_OK;
}

int lg_map_str_is(const msgpack_object *map, const char *key, const char *s)
{
    const msgpack_object *v = lg_map_get(map, key);
    size_t n = strlen(s);
    return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == n && memcmp(v->via.str.ptr, s, n) == 0;
}

static int status_of_code(const char *code)
{
#define LOADGEN_CODE(name, value, wire, msg) if (strcmp(code, wire) == 0 && value != 0) return value;
    LS_ERROR_MAP(LOADGEN_CODE)
#undef LOADGEN_CODE
    return LS_EREMOTE;
}

int lg_reply_status(const msgpack_object *reply, char *why, size_t cap)
{
    const msgpack_object *err = lg_map_get(reply, "error");
    const msgpack_object *cd = err ? lg_map_get(err, "code") : NULL, *msg = err ? lg_map_get(err, "message") : NULL;
    char code[64] = "";
    if (cd && cd->type == MSGPACK_OBJECT_STR)
        snprintf(code, sizeof code, "%.*s", (int)(cd->via.str.size < 63 ? cd->via.str.size : 63), cd->via.str.ptr);
    snprintf(why, cap, "%s: %.*s", code[0] ? code : "error",
             msg && msg->type == MSGPACK_OBJECT_STR ? (int)(msg->via.str.size < 200 ? msg->via.str.size : 200) : 0,
             msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr : "");
    return code[0] ? status_of_code(code) : LS_EREMOTE;
}

int lg_reply_check(const lg_reply *r, char *why, size_t cap)
{
    const msgpack_object *ok = lg_map_get(&r->up.data, "ok");
    if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean)
        return LS_OK;
    return lg_reply_status(&r->up.data, why, cap);
}
