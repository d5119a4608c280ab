/* ops.c -- the op table and every handler (see ops.h).  Wire field names
 * and reply shapes follow PROTOCOL.md section 3. */
#include "ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "assess.h"
#include "audience.h"
#include "clusternode.h"
#include "kpis.h"
#include "log.h"
#include "model.h"
#include "modelpath.h"
#include "nextaction.h"
#include "textfmt.h"
#include "timefmt.h"
#include "trigger.h"
#include "writer.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif

typedef int (*ops_handler)(ops_call *c);

typedef struct {
    const char *name;
    ops_handler run;
    int where;                 /* WHERE_LOOP, WHERE_WORKER, WHERE_BY_SIZE, WHERE_SCAN */
    const char *const *fields; /* allowed request keys */
    int admin;                 /* admin keys only, when CurveZMQ is on */
    ops_handler check;         /* NULL, or checks the values without the store (ops_check) */
} ops_entry;

/* WHERE_SCAN: a whole-store scan, run by a scanner thread (worker.h) so
 * it never delays the workers that decode track batches.  WHERE_READ: a
 * read of one customer, answered by the loop, or by a worker in a read
 * batch when requests queue up (WHERE_BY_SIZE: the same for one customer,
 * a worker's for many). */
enum { WHERE_LOOP, WHERE_READ, WHERE_WORKER, WHERE_BY_SIZE, WHERE_SCAN };

/* ------------------------------------------------------------------ */
/* Reply helpers                                                       */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static int fail(ops_call *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return status;
}

/* Starts {"ok": true, "id": ...; the handler adds its fields and cw_end. */
static void begin_ok(ops_call *c)
{
    codec_writer_reset(c->w);
    cw_map(c->w);
    cw_key(c->w, "ok");
    cw_bool(c->w, 1);
    if (c->req->id) {
        cw_key(c->w, "id");
        cw_object(c->w, c->req->id);
    }
}

static void kv_int(codec_writer *w, const char *k, int64_t v) { cw_key(w, k); cw_int(w, v); }
static void kv_double(codec_writer *w, const char *k, double v) { cw_key(w, k); cw_double(w, v); }
static void kv_str(codec_writer *w, const char *k, const char *v) { cw_key(w, k); cw_str(w, v); }

/* Reads the optional "now" (ms) of a request into c->now_ms. */
static int read_now(ops_call *c)
{
    int64_t now;
    int rc = codec_get_int(&c->req->root, "now", &now);
    if (rc == LS_ENOTFOUND)
        return LS_OK;
    if (rc || now < 0)
        return fail(c, LS_EBADREQ, "%s", "\"now\" must be a non-negative integer (Unix epoch milliseconds)");
    c->now_ms = now;
    c->now_given = 1;
    return LS_OK;
}

/* A customer id string within the configured limit: request field `field`,
 * or its element `index` when index >= 0 (named so in the error). */
static int check_customer(ops_call *c, const msgpack_object *o, const char *field, int64_t index, ls_str *out)
{
    char idx[24] = ""; /* only for an error: not on every request */
    int bad = !o || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0;
    if (!bad && o->via.str.size <= c->svc->cfg.max_string) {
        out->ptr = o->via.str.ptr;
        out->len = o->via.str.size;
        return LS_OK;
    }
    if (index >= 0)
        snprintf(idx, sizeof idx, "[%lld]", (long long)index);
    if (bad)
        return fail(c, LS_EBADREQ, "\"%s%s\" must be a non-empty string", field, idx);
    return fail(c, LS_ETOOLARGE, "\"%s%s\": the customer id is longer than the string limit (max-string)", field,
                idx);
}

/* The request's "id" as msgpack bytes (empty when it has none), for a
 * reply the writer will send.  Destroy the buffer after use. */
static void pack_request_id(const ops_call *c, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (c->req->id)
        msgpack_pack_object(&pk, *c->req->id);
}

/* Fills the bookkeeping every job carries and hands it to the writer
 * (which then owns it).  0, or LS_EUNAVAIL while shutting down. */
static int hand_over(ops_call *c, writer_job *job, int reply)
{
    job->reply = reply;
    job->op = c->op;
    job->start_ns = c->start_ns;
    job->received_ms = timefmt_now_ms();
    job->queued = &c->svc->stats.events_queued; /* until the writer is done with it (stats: events_queued) */
    atomic_fetch_add(job->queued, job->nevents);
    if (c->handed) {
        *c->handed = job;
        return LS_OK;
    }
    if (writer_submit(c->writer_push, job) != LS_OK) {
        writer_job_free(&job);
        return fail(c, LS_EUNAVAIL, "%s", "the writer is not taking requests (shutting down)");
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* ping, model                                                         */
/* ------------------------------------------------------------------ */

static int op_ping(ops_call *c)
{
    begin_ok(c);
    cw_key(c->w, "pong");
    cw_bool(c->w, 1);
    kv_str(c->w, "version", LS_VERSION);
    cw_end(c->w);
    return LS_OK;
}

/* Cluster mode's map for clients that route by partition
 * (clusternode.h); a single node says so. */
static int op_cluster(ops_call *c)
{
    begin_ok(c);
    if (c->svc->cluster) {
        clusternode_describe(c->svc->cluster, c->w);
    } else {
        cw_key(c->w, "mode");
        cw_str(c->w, "single");
    }
    cw_end(c->w);
    return LS_OK;
}

static int op_model(ops_call *c)
{
    model *m = service_model_acquire(c->svc);
    const feature_decay *d = model_decay(m);
    begin_ok(c);
    kv_str(c->w, "name", model_name(m));
    kv_str(c->w, "version", model_version(m));
    kv_str(c->w, "trained_at", model_trained_at(m));
    kv_double(c->w, "horizon_days", model_horizon_days(m));
    cw_key(c->w, "half_lives_days");
    cw_map(c->w);
    kv_double(c->w, "short", (double)d->short_ms / 86400000.0);
    kv_double(c->w, "long", (double)d->long_ms / 86400000.0);
    cw_end(c->w);
    cw_key(c->w, "features");
    cw_array(c->w);
    for (int i = 0; i < model_nterms(m); i++)
        cw_str(c->w, model_feature_name(model_term_feature(m, i)));
    cw_end(c->w);
    kv_str(c->w, "orders_only_customers", model_orders_by_repeat(m) ? "repeat_purchase" : "logistic");
    kv_double(c->w, "unpriced_cart_value", model_unpriced_cart_value(m));
    cw_end(c->w);
    model_unref(&m);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* score                                                               */
/* ------------------------------------------------------------------ */

/* The score reply's writers name their keys with CW_KEY (lengths known
 * at compile time, no strlen per key). */
static void write_segments(codec_writer *w, const assess_result *a)
{
    cw_array(w);
    for (int i = 0; i < a->nsegments; i++) {
        cw_map(w);
        CW_KEY(w, "segment");
        cw_str(w, a->segments[i].segment);
        CW_KEY(w, "weight");
        cw_double(w, a->segments[i].weight);
        CW_KEY(w, "reason");
        cw_str(w, a->segments[i].reason);
        cw_end(w);
    }
    cw_end(w);
}

static void write_explain(codec_writer *w, const model *m, const assess_result *a)
{
    CW_KEY(w, "logit");
    cw_double(w, a->logistic.logit);
    CW_KEY(w, "intercept");
    cw_double(w, model_intercept(m));
    CW_KEY(w, "basis"); /* what scored the customer: model.h, "Customers known from orders alone" */
    cw_str(w, a->logistic.orders_only ? "repeat_purchase" : "logistic");
    CW_KEY(w, "explain");
    cw_array(w);
    for (int i = 0; i < a->logistic.ncontrib; i++) {
        cw_map(w);
        CW_KEY(w, "feature");
        cw_str(w, model_feature_name(a->logistic.contrib[i].feature));
        CW_KEY(w, "value");
        cw_double(w, a->logistic.contrib[i].value);
        CW_KEY(w, "contribution");
        cw_double(w, a->logistic.contrib[i].contribution);
        cw_end(w);
    }
    cw_end(w);
}

/* A customer's record, read in the open snapshot, and the time it is
 * assessed at (*at): as of the request's `now` when it gives one; else
 * every event stored, at the server's clock or, when the customer's
 * newest event is stamped later (a storefront whose clock runs ahead:
 * events are taken up to a day ahead), at that event's time -- a cart
 * just tracked is never left out of the next score.  1 when the store has
 * the customer.  A stored record that cannot be decoded is logged for the
 * operator (the store does not log) and answers as an unknown customer,
 * with an empty record. */
static int read_record(ops_call *c, const ls_str *id, ls_features *f, int64_t *at)
{
    int rc = store_reader_get_asof(c->reader, id->ptr, id->len, c->now_given ? c->now_ms : INT64_MAX, f);
    *at = c->now_ms;
    if (rc == LS_OK && !c->now_given && f->last_seen_ms > *at)
        *at = f->last_seen_ms;
    if (rc == LS_EPARSE || rc == LS_EVERSION) {
        LOG_ERROR("stored_record_damaged", "customer=\"%.*s\" reason=\"%s\" note=\"the stored record cannot be "
                  "read: answered as an unknown customer; restore the store from a backup\"", (int)id->len, id->ptr,
                  ls_strerror(rc));
        feature_init(f);
    }
    return rc == LS_OK;
}

/* Room for one result (a typical one is about 1 KB), reserved at once. */
#define SCORE_RESULT_RESERVE 2048

/* Writes one score result's fields (PROTOCOL.md section 3) into the open map. */
static void write_result(ops_call *c, const model *m, const ls_str *id, int explain)
{
    ls_features f;
    assess_result a;
    char tag[160];
    codec_writer *w = c->w;
    int64_t at;
    int known = read_record(c, id, &f, &at);
    feature_ctx ctx = {at, *store_decay(c->svc->store)};
    assess_customer(m, &f, &ctx, explain, -1, &a);
    codec_writer_reserve(w, SCORE_RESULT_RESERVE + id->len);
    CW_KEY(w, "customer");
    cw_strn(w, id->ptr, id->len);
    CW_KEY(w, "known");
    cw_bool(w, known);
    CW_KEY(w, "score");
    cw_double(w, a.logistic.score);
    CW_KEY(w, "score_100");
    cw_int(w, a.logistic.score_100);
    CW_KEY(w, "tier");
    cw_str(w, a.logistic.tier);
    CW_KEY(w, "p_alive");
    cw_double(w, a.p_alive);
    CW_KEY(w, "expected_purchases_30d");
    cw_double(w, a.expected_purchases_30d);
    CW_KEY(w, "clv");
    cw_double(w, a.clv);
    CW_KEY(w, "customer_type");
    cw_str(w, journey_type_name(a.journey.type));
    CW_KEY(w, "phase");
    cw_str(w, journey_phase_name(a.journey.phase));
    CW_KEY(w, "loyalty_points");
    cw_int(w, a.journey.loyalty_points);
    CW_KEY(w, "loyalty_tier");
    cw_str(w, a.journey.loyalty_tier);
    CW_KEY(w, "actions");
    cw_array(w);
    for (int i = 0; i < JA_COUNT; i++)
        if (a.journey.actions & (1u << i))
            cw_str(w, journey_action_name((journey_action)i));
    cw_end(w);
    nextaction_emit(w, m, &f, &a, at);
    CW_KEY(w, "segments");
    write_segments(w, &a);
    textfmt t = textfmt_begin(tag, sizeof tag);   /* "%s@%s", name and version */
    textfmt_str(&t, model_name(m));
    textfmt_char(&t, '@');
    textfmt_str(&t, model_version(m));
    CW_KEY(w, "model");
    cw_strn(w, tag, textfmt_end(&t, tag));
    if (explain)
        write_explain(w, m, &a);
}

static int score_many(ops_call *c, const model *m, const msgpack_object *ids, int explain)
{
    if (ids->type != MSGPACK_OBJECT_ARRAY)
        return fail(c, LS_EBADREQ, "%s", "\"customers\" must be an array of strings");
    if (ids->via.array.size > c->svc->cfg.max_customers)
        return fail(c, LS_ETOOLARGE, "%s", "too many customers in one request (max-customers)");
    ls_str id = {NULL, 0};
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        int rc = check_customer(c, &ids->via.array.ptr[i], "customers", i, &id);
        if (rc)
            return rc;
    }
    begin_ok(c);
    cw_key(c->w, "results");
    cw_array(c->w);
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        check_customer(c, &ids->via.array.ptr[i], "customers", i, &id);
        cw_map(c->w);
        write_result(c, m, &id, explain);
        cw_end(c->w);
    }
    cw_end(c->w);
    cw_end(c->w);
    return LS_OK;
}

static int op_score(ops_call *c)
{
    const msgpack_object *one = codec_map_get(&c->req->root, "customer");
    const msgpack_object *many = codec_map_get(&c->req->root, "customers");
    int explain = 0, rc;
    ls_str id = {NULL, 0};
    if ((rc = read_now(c)))
        return rc;
    if (codec_get_bool(&c->req->root, "explain", &explain) == LS_EBADREQ)
        return fail(c, LS_EBADREQ, "%s", "\"explain\" must be a boolean");
    if (!one == !many)
        return fail(c, LS_EBADREQ, "%s", "give exactly one of \"customer\" (string) or \"customers\" (array)");
    if (one && (rc = check_customer(c, one, "customer", -1, &id)))
        return rc;
    model *m = service_model_acquire(c->svc);
    if ((rc = store_reader_begin(c->reader)) != LS_OK) {
        model_unref(&m);
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    }
    if (one) {
        begin_ok(c);
        write_result(c, m, &id, explain);
        cw_end(c->w);
    } else {
        rc = score_many(c, m, many, explain);
    }
    store_reader_end(c->reader);
    model_unref(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* profile                                                             */
/* ------------------------------------------------------------------ */

static void write_features(ops_call *c, const ls_features *f, int64_t at)
{
    feature_ctx ctx = {at, *store_decay(c->svc->store)};
    cw_key(c->w, "features");
    cw_map(c->w);
    kv_int(c->w, "first_seen", f->first_seen_ms);
    kv_int(c->w, "last_seen", f->last_seen_ms);
    kv_int(c->w, "first_purchase", f->first_purchase_ms);
    kv_int(c->w, "last_purchase", f->last_purchase_ms);
    kv_int(c->w, "last_cart", f->last_cart_ms);
    kv_int(c->w, "first_visit", f->first_visit_ms);
    for (int i = 0; i < feature_count(); i++)
        kv_double(c->w, feature_name(i), feature_value(f, i, &ctx));
    cw_end(c->w);
    if (f->birthday_mmdd) {
        char bd[8];
        snprintf(bd, sizeof bd, "%02d-%02d", f->birthday_mmdd / 100, f->birthday_mmdd % 100);
        kv_str(c->w, "birthday", bd);
    }
    cw_key(c->w, "top_categories");
    cw_array(c->w);
    for (int i = 0; i < f->ncategories; i++) {
        const feature_category *cat = &f->categories[i];
        cw_map(c->w);
        cw_key(c->w, "category");
        cw_strn(c->w, cat->name, cat->len);
        kv_int(c->w, "count", cat->count);
        kv_double(c->w, "recent", cat->recent * feature_decay_factor(at - f->last_seen_ms, ctx.decay.short_ms));
        kv_double(c->w, "decayed", cat->decayed * feature_decay_factor(at - f->last_seen_ms, ctx.decay.long_ms));
        cw_end(c->w);
    }
    cw_end(c->w);
}

static int op_profile(ops_call *c)
{
    ls_str id = {NULL, 0};
    ls_features f;
    int rc;
    if ((rc = read_now(c)) || (rc = check_customer(c, codec_map_get(&c->req->root, "customer"), "customer", -1, &id)))
        return rc;
    if (store_reader_begin(c->reader) != LS_OK)
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    int64_t at;
    int known = read_record(c, &id, &f, &at);
    store_reader_end(c->reader);
    begin_ok(c);
    cw_key(c->w, "customer");
    cw_strn(c->w, id.ptr, id.len);
    cw_key(c->w, "known");
    cw_bool(c->w, known);
    write_features(c, &f, at);
    cw_end(c->w);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* recommend                                                           */
/* ------------------------------------------------------------------ */

static int op_recommend(ops_call *c)
{
    ls_str id = {NULL, 0};
    ls_features f;
    assess_result a;
    int64_t k = -1;
    int rc;
    if ((rc = read_now(c)) || (rc = check_customer(c, codec_map_get(&c->req->root, "customer"), "customer", -1, &id)))
        return rc;
    rc = codec_get_int(&c->req->root, "k", &k);
    if (rc == LS_EBADREQ || (rc == LS_OK && (k < 1 || k > SEGMENTS_MAX_K)))
        return fail(c, LS_EBADREQ, "\"k\" must be an integer from 1 to %d", SEGMENTS_MAX_K);
    model *m = service_model_acquire(c->svc);
    if (store_reader_begin(c->reader) != LS_OK) {
        model_unref(&m);
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    }
    int64_t at;
    read_record(c, &id, &f, &at);
    store_reader_end(c->reader);
    feature_ctx ctx = {at, *store_decay(c->svc->store)};
    assess_customer(m, &f, &ctx, 0, (int)k, &a);
    model_unref(&m);
    begin_ok(c);
    cw_key(c->w, "customer");
    cw_strn(c->w, id.ptr, id.len);
    cw_key(c->w, "segments");
    write_segments(c->w, &a);
    cw_end(c->w);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* alias and forget: identity changes go through the writer             */
/* ------------------------------------------------------------------ */

static int submit_identity(ops_call *c, int kind, const ls_str *subject, const ls_str *object)
{
    msgpack_sbuffer idbuf;
    pack_request_id(c, &idbuf);
    writer_job *job = writer_job_identity(kind, subject, object, c->envelope, c->envelope_len, idbuf.data, idbuf.size);
    msgpack_sbuffer_destroy(&idbuf);
    int rc = job ? hand_over(c, job, 1) : fail(c, LS_ENOMEM, "%s", "out of memory");
    c->async = rc == LS_OK;
    return rc;
}

static int op_alias(ops_call *c)
{
    ls_str from = {NULL, 0}, to = {NULL, 0};
    int rc;
    if ((rc = check_customer(c, codec_map_get(&c->req->root, "from"), "from", -1, &from)) ||
        (rc = check_customer(c, codec_map_get(&c->req->root, "to"), "to", -1, &to)))
        return rc == LS_EBADREQ ? fail(c, rc, "%s", "\"from\" and \"to\" must be non-empty strings") : rc;
    if (from.len == to.len && memcmp(from.ptr, to.ptr, to.len) == 0)
        return fail(c, LS_EBADREQ, "%s", "\"from\" and \"to\" are the same id");
    return submit_identity(c, JOB_ALIAS, &from, &to);
}

static int op_forget(ops_call *c)
{
    ls_str id = {NULL, 0};
    int rc = check_customer(c, codec_map_get(&c->req->root, "customer"), "customer", -1, &id);
    return rc ? rc : submit_identity(c, JOB_FORGET, &id, NULL);
}

/* ------------------------------------------------------------------ */
/* reload                                                              */
/* ------------------------------------------------------------------ */

/* Copies up to cap-1 bytes of s into out with every byte that could break
 * a logfmt line (control bytes, quotes, backslashes, non-ASCII) as '?'. */
static void loggable(char *out, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' ? '?' : s[i];
    out[i] = '\0';
}

/* Logs why a reload failed (err may quote the file) and answers with
 * `what` only: nothing read from the file goes back on the wire. */
static int reload_refused(ops_call *c, const char *path, const char *err, const char *what)
{
    char p[256], e[512];
    loggable(p, sizeof p, path ? path : c->svc->cfg.model_path);
    loggable(e, sizeof e, err);
    LOG_WARN("reload_refused", "path=\"%s\" reason=\"%s\" note=\"the old model stays\"", p, e);
    return fail(c, LS_EBADREQ, "the model was not reloaded, the old one stays: %s", what);
}

/* Loads the model file at path when it lies in a model directory (see
 * modelpath.h) and makes it active. */
static int reload_from(ops_call *c, const char *path)
{
    const config *cfg = &c->svc->cfg;
    char real[CONFIG_PATH_MAX], err[512] = "", what[160], *text = NULL;
    size_t len = 0;
    model *m = NULL;
    int rc = modelpath_resolve(cfg->model_path, cfg->model_dirs, path, real, sizeof real, err, sizeof err);
    if (rc)
        return reload_refused(c, path, err,
                              "\"path\" must name a file inside a model directory (that of --model, or in model-dirs)");
    rc = modelpath_read(real, cfg->model_max_bytes, 0, &text, &len, err, sizeof err);
    if (rc == LS_EINVAL)
        return reload_refused(c, path, err, "the path is not a regular file");
    if (rc == LS_ETOOLARGE) {
        snprintf(what, sizeof what, "the file is larger than model-max-bytes (%llu bytes)",
                 (unsigned long long)cfg->model_max_bytes);
        return reload_refused(c, path, err, what);
    }
    if (rc)
        return reload_refused(c, path, err, "cannot read the file: see the server log");
    rc = model_load_text(text, len, &m, err, sizeof err);
    free(text);
    if (rc)
        return reload_refused(c, path, err, "not a valid model file: see the server log");
    if (service_install_model(c->svc, m, err, sizeof err) != LS_OK)
        return fail(c, LS_EBADREQ, "the model was not reloaded, the old one stays: %s", err);
    return LS_OK;
}

static int op_reload(ops_call *c)
{
    ls_str path = {NULL, 0};
    char buf[CONFIG_PATH_MAX], err[512] = "";
    int rc = codec_get_str(&c->req->root, "path", &path);
    if (rc == LS_EBADREQ || (rc == LS_OK && (path.len == 0 || path.len >= sizeof buf)))
        return fail(c, LS_EBADREQ, "\"path\" must be a non-empty string of at most %zu bytes", sizeof buf - 1);
    if (rc == LS_OK && memchr(path.ptr, 0, path.len))
        return fail(c, LS_EBADREQ, "%s", "\"path\" holds a NUL byte: no file has that name");
    if (rc == LS_OK) {
        memcpy(buf, path.ptr, path.len);
        buf[path.len] = '\0';
        if ((rc = reload_from(c, buf)))
            return rc;
    } else if (service_reload_model(c->svc, err, sizeof err) != LS_OK) {
        return reload_refused(c, NULL, err, "the --model file did not load: see the server log");
    }
    model *m = service_model_acquire(c->svc);
    char p[256], name[128], version[64];
    loggable(p, sizeof p, rc == LS_OK ? buf : c->svc->cfg.model_path);
    loggable(name, sizeof name, model_name(m));
    loggable(version, sizeof version, model_version(m));
    LOG_INFO("model_reloaded", "path=\"%s\" model=\"%s@%s\" by=\"reload op\"", p, name, version);
    begin_ok(c);
    kv_str(c->w, "name", model_name(m));
    kv_str(c->w, "version", model_version(m));
    cw_end(c->w);
    model_unref(&m);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* stats (server loop thread only: it reads the loop's histograms)     */
/* ------------------------------------------------------------------ */

static void write_latency(codec_writer *w, const hist *h)
{
    cw_map(w);
    kv_int(w, "count", (int64_t)hist_count(h));
    kv_double(w, "p50_us", (double)hist_percentile(h, 50) / 1e3);
    kv_double(w, "p90_us", (double)hist_percentile(h, 90) / 1e3);
    kv_double(w, "p99_us", (double)hist_percentile(h, 99) / 1e3);
    kv_double(w, "p999_us", (double)hist_percentile(h, 99.9) / 1e3);
    kv_double(w, "max_us", (double)hist_max(h) / 1e3);
    cw_end(w);
}

static void write_counters(codec_writer *w, stats *st)
{
    uint64_t commits = atomic_load(&st->commits);
    kv_int(w, "events_accepted", (int64_t)atomic_load(&st->events_accepted));
    kv_int(w, "events_rejected", (int64_t)atomic_load(&st->events_rejected));
    kv_int(w, "events_duplicate", (int64_t)atomic_load(&st->events_duplicate));
    kv_int(w, "commits", (int64_t)commits);
    kv_int(w, "commit_failures", (int64_t)atomic_load(&st->commit_failures));
    kv_double(w, "events_per_commit", commits ? (double)atomic_load(&st->commit_events) / (double)commits : 0.0);
    kv_double(w, "commit_ms_avg", commits ? (double)atomic_load(&st->commit_ns) / 1e6 / (double)commits : 0.0);
    kv_int(w, "pull_batches", (int64_t)atomic_load(&st->pull_batches));
    kv_int(w, "event_ids_pruned", (int64_t)atomic_load(&st->event_ids_pruned));
    kv_int(w, "log_gaps_refused", (int64_t)atomic_load(&st->log_gaps_refused));
    kv_int(w, "events_unstored_full", (int64_t)atomic_load(&st->events_unstored_full));
    kv_int(w, "events_unstored_unavailable", (int64_t)atomic_load(&st->events_unstored_unavailable));
    kv_int(w, "events_unstored_failed", (int64_t)atomic_load(&st->events_unstored_failed));
    kv_int(w, "jobs_failed_alone", (int64_t)atomic_load(&st->jobs_failed_alone));
    kv_int(w, "events_queued", (int64_t)atomic_load(&st->events_queued));
    kv_int(w, "triggers_moments", (int64_t)atomic_load(&st->triggers_moments));
    kv_int(w, "triggers_enters", (int64_t)atomic_load(&st->triggers_enters));
    kv_int(w, "triggers_exits", (int64_t)atomic_load(&st->triggers_exits));
    kv_int(w, "triggers_suppressed", (int64_t)atomic_load(&st->triggers_suppressed));
    kv_int(w, "triggers_pruned", (int64_t)atomic_load(&st->triggers_pruned));
    kv_int(w, "automation_evaluations", (int64_t)atomic_load(&st->automation_evaluations));
    kv_int(w, "automation_timers", (int64_t)atomic_load(&st->automation_timers));
    kv_int(w, "automation_sweeps", (int64_t)atomic_load(&st->automation_sweeps));
    kv_int(w, "automation_state_writes", (int64_t)atomic_load(&st->automation_state_writes));
    kv_int(w, "automation_timer_moves", (int64_t)atomic_load(&st->automation_timer_moves));
    kv_int(w, "automation_failures", (int64_t)atomic_load(&st->automation_failures));
    kv_int(w, "retrain_runs", (int64_t)atomic_load(&st->retrain_runs));
    kv_int(w, "retrain_swaps", (int64_t)atomic_load(&st->retrain_swaps));
    kv_int(w, "retrain_failures", (int64_t)atomic_load(&st->retrain_failures));
    if (atomic_load(&st->retrain_runs) > 0) {
        uint64_t bits[2] = {atomic_load(&st->retrain_auc_new), atomic_load(&st->retrain_auc_serving)};
        double auc[2];
        memcpy(auc, bits, sizeof auc);
        kv_double(w, "retrain_auc_new", auc[0]);
        kv_double(w, "retrain_auc_serving", auc[1]);
    }
}

static int op_stats(ops_call *c)
{
    stats *st = &c->svc->stats;
    store_stats ss;
    store_stat(c->svc->store, &ss);
    begin_ok(c);
    write_counters(c->w, st);
    kv_int(c->w, "customers", (int64_t)ss.customers);
    kv_int(c->w, "event_ids", (int64_t)ss.event_ids);
    kv_int(c->w, "event_ids_unmerged", (int64_t)ss.event_ids_unmerged);
    kv_int(c->w, "event_ids_filter_bytes", (int64_t)ss.event_ids_filter_bytes);
    kv_int(c->w, "event_id_lookups_skipped", (int64_t)ss.event_id_lookups_skipped);
    kv_int(c->w, "store_bytes", (int64_t)ss.used_bytes);
    kv_int(c->w, "store_map_bytes", (int64_t)ss.map_bytes);
    kv_int(c->w, "readers", (int64_t)ss.readers);
    kv_int(c->w, "readers_active", (int64_t)ss.readers_active);
    kv_int(c->w, "readers_max", (int64_t)ss.readers_max);
    kv_int(c->w, "readers_stale_cleared", (int64_t)ss.readers_stale_cleared);
    kv_double(c->w, "uptime_s", (double)(timefmt_mono_ns() / 1000000 - st->started_mono_ms) / 1e3);
    kv_int(c->w, "replies_dropped", (int64_t)(st->replies_dropped_full + st->replies_dropped_gone));
    kv_int(c->w, "envelopes_refused", (int64_t)st->envelopes_refused);
    kv_int(c->w, "scans_refused", (int64_t)st->scans_refused);
    kv_int(c->w, "reads_by_workers", (int64_t)st->reads_by_workers);
    cw_key(c->w, "requests");
    cw_map(c->w);
    for (int i = 0; i < ops_count(); i++)
        kv_int(c->w, ops_name(i), (int64_t)st->requests[i]);
    cw_end(c->w);
    cw_key(c->w, "errors");
    cw_map(c->w);
    for (int i = 0; i < ops_count(); i++)
        kv_int(c->w, ops_name(i), (int64_t)st->errors[i]);
    cw_end(c->w);
    cw_key(c->w, "latency");
    cw_map(c->w);
    for (int i = 0; i < ops_count(); i++) {
        if (!st->latency[i] || hist_count(st->latency[i]) == 0)
            continue;
        cw_key(c->w, ops_name(i));
        write_latency(c->w, st->latency[i]);
    }
    cw_end(c->w);
    cw_end(c->w);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* track                                                               */
/* ------------------------------------------------------------------ */

static void note_rejected(ops_call *c, uint32_t index, int status, const char *message)
{
    cw_map(c->scratch);
    kv_int(c->scratch, "index", index);
    kv_str(c->scratch, "code", ls_wire_code(status));
    kv_str(c->scratch, "message", message);
    cw_end(c->scratch);
}

/* Decodes and validates every event of arr; the valid ones go to *out
 * (malloc'd, caller frees), the others into c->scratch.  Returns the count
 * of valid events through *nvalid and of rejected ones through *nrej. */
static int sort_events(ops_call *c, const msgpack_object *arr, ls_event **out, size_t *nvalid, uint32_t *nrej)
{
    ls_event *evs = malloc((arr->via.array.size ? arr->via.array.size : 1) * sizeof *evs);
    char why[160];
    if (!evs)
        return fail(c, LS_ENOMEM, "%s", "out of memory");
    *nvalid = 0;
    *nrej = 0;
    codec_writer_reset(c->scratch);
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        ls_event *ev = &evs[*nvalid];
        const char *reason = why;
        int rc = codec_decode_event(&arr->via.array.ptr[i], ev, why, sizeof why);
        if (rc == LS_OK)
            rc = event_validate(ev, c->now_ms, c->svc->cfg.max_string, &reason);
        if (rc == LS_OK) {
            (*nvalid)++;
        } else {
            note_rejected(c, i, rc, reason);
            atomic_fetch_add(rc == LS_ETOOLARGE ? &c->svc->stats.rejected_too_large : &c->svc->stats.rejected_bad_request, 1);
            (*nrej)++;
        }
    }
    atomic_fetch_add(&c->svc->stats.events_rejected, *nrej);
    *out = evs;
    return LS_OK;
}

static int events_array(ops_call *c, const msgpack_object *evs)
{
    if (!evs || evs->type != MSGPACK_OBJECT_ARRAY)
        return fail(c, LS_EBADREQ, "%s", "\"events\" must be an array of event maps");
    if (evs->via.array.size > c->svc->cfg.max_events)
        return fail(c, LS_ETOOLARGE, "%s", "too many events in one batch (max-batch)");
    return LS_OK;
}

/* Hands the valid events to the writer; reply is 1 for a track request. */
static int submit(ops_call *c, const ls_event *evs, size_t n, uint32_t nrej, int reply)
{
    msgpack_sbuffer idbuf;
    pack_request_id(c, &idbuf);
    writer_job *job = writer_job_new(evs, n, c->envelope, reply ? c->envelope_len : 0, reply ? idbuf.data : NULL,
                                     reply ? idbuf.size : 0, c->scratch->sb.data, c->scratch->sb.size, nrej);
    msgpack_sbuffer_destroy(&idbuf);
    return job ? hand_over(c, job, reply) : fail(c, LS_ENOMEM, "%s", "out of memory");
}

static int op_track(ops_call *c)
{
    const msgpack_object *arr = codec_map_get(&c->req->root, "events");
    ls_event *evs = NULL;
    size_t nvalid;
    uint32_t nrej;
    int rc = events_array(c, arr);
    if (rc || (rc = sort_events(c, arr, &evs, &nvalid, &nrej)))
        return rc;
    if (nvalid > 0) {
        rc = submit(c, evs, nvalid, nrej, 1);
        c->async = rc == LS_OK;
    } else {
        begin_ok(c);
        kv_int(c->w, "accepted", 0);
        kv_int(c->w, "duplicates", 0);
        cw_key(c->w, "rejected");
        cw_array(c->w);
        cw_raw(c->w, c->scratch->sb.data, c->scratch->sb.size, nrej);
        cw_end(c->w);
        cw_end(c->w);
    }
    free(evs);
    return rc;
}

int ops_pull_batch(ops_call *c, const char *body, size_t len, msgpack_zone *zone)
{
    codec_request req;
    const char *why;
    size_t off = 0;
    memset(&req, 0, sizeof req);
    c->req = &req;
    if (codec_prescan(body, len, CODEC_MAX_DEPTH, &why) ||
        msgpack_unpack(body, len, &off, zone, &req.root) != MSGPACK_UNPACK_SUCCESS)
        return LS_EBADREQ;
    const msgpack_object *arr = &req.root;
    if (req.root.type == MSGPACK_OBJECT_MAP)
        arr = codec_map_get(&req.root, "events");
    ls_event *evs = NULL;
    size_t nvalid;
    uint32_t nrej;
    int rc = events_array(c, arr);
    if (rc || (rc = sort_events(c, arr, &evs, &nvalid, &nrej)))
        return rc;
    atomic_fetch_add(&c->svc->stats.pull_batches, 1);
    if (nvalid > 0)
        rc = submit(c, evs, nvalid, nrej, 0);
    free(evs);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* kpis: a scan of the whole store, so it runs on a scanner thread      */
/* ------------------------------------------------------------------ */

/* The request's period [from, to): "to" defaults to now, "from" to a
 * period before it. */
static int read_period(ops_call *c, int64_t *from, int64_t *to)
{
    *to = c->now_ms;
    int rc = codec_get_int(&c->req->root, "to", to);
    if (rc == LS_EBADREQ)
        return fail(c, LS_EBADREQ, "%s", "\"to\" must be an integer (Unix epoch milliseconds)");
    rc = codec_get_int(&c->req->root, "from", from);
    if (rc == LS_EBADREQ)
        return fail(c, LS_EBADREQ, "%s", "\"from\" must be an integer (Unix epoch milliseconds)");
    if (rc == LS_ENOTFOUND)
        *from = kpis_default_from(*to); /* saturates: no overflow */
    const char *bad_period = kpis_period_error(*from, *to);
    return bad_period ? fail(c, LS_EBADREQ, "%s", bad_period) : LS_OK;
}

static int check_kpis(ops_call *c)
{
    int64_t from = 0, to = 0;
    return read_period(c, &from, &to);
}

static int op_kpis(ops_call *c)
{
    int64_t from = 0, to = 0;
    int rc = read_period(c, &from, &to);
    if (rc)
        return rc;
    kpis_result *k = malloc(sizeof *k); /* ~470 KB: not on the stack */
    if (!k)
        return fail(c, LS_ENOMEM, "%s", "out of memory");
    rc = kpis_compute(c->reader, from, to, k);
    if (rc == LS_OK) {
        begin_ok(c);
        kpis_write_msgpack(k, c->w);
        cw_end(c->w);
    }
    free(k);
    return rc == LS_OK ? LS_OK : fail(c, LS_EINTERNAL, "%s", "cannot read the store");
}

/* ------------------------------------------------------------------ */
/* audiences                                                           */
/* ------------------------------------------------------------------ */

/* The request's "name": a valid audience name. */
static int read_audience_name(ops_call *c, ls_str *name)
{
    char err[160];
    const msgpack_object *o = codec_map_get(&c->req->root, "name");
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return fail(c, LS_EBADREQ, "%s", "\"name\" must be a string (the audience's name)");
    name->ptr = o->via.str.ptr;
    name->len = o->via.str.size;
    if (audience_name_check(name->ptr, name->len, err, sizeof err) != LS_OK)
        return fail(c, LS_EBADREQ, "%s", err);
    return LS_OK;
}

static int op_audience_put(ops_call *c)
{
    ls_str name = {NULL, 0}, rule = {NULL, 0};
    char err[200], text[ARULE_MAX_TEXT + 1];
    arule *parsed = NULL;
    int rc = read_audience_name(c, &name);
    if (rc)
        return rc;
    const msgpack_object *o = codec_map_get(&c->req->root, "rule");
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return fail(c, LS_EBADREQ, "%s", "\"rule\" must be a string (e.g. \"score >= 0.6 and tier == \\\"hot\\\"\")");
    rule.ptr = o->via.str.ptr;
    rule.len = o->via.str.size;
    if (rule.len > ARULE_MAX_TEXT)
        return fail(c, LS_ETOOLARGE, "the rule is longer than %d bytes", ARULE_MAX_TEXT);
    const char *nul = memchr(rule.ptr, '\0', rule.len);
    if (nul) /* the parser reads a C string: it would stop there and keep a shorter rule */
        return fail(c, LS_EBADREQ, "bad rule: at column %zu: a NUL byte", (size_t)(nul - rule.ptr) + 1);
    memcpy(text, rule.ptr, rule.len);
    text[rule.len] = '\0';
    if (arule_parse(text, &parsed, err, sizeof err) != LS_OK)
        return fail(c, LS_EBADREQ, "bad rule: %s", err);
    arule_free(&parsed);
    msgpack_sbuffer idbuf;
    pack_request_id(c, &idbuf);
    writer_job *job = writer_job_identity(JOB_AUDIENCE_PUT, &name, &rule, c->envelope, c->envelope_len, idbuf.data,
                                          idbuf.size);
    msgpack_sbuffer_destroy(&idbuf);
    rc = job ? hand_over(c, job, 1) : fail(c, LS_ENOMEM, "%s", "out of memory");
    c->async = rc == LS_OK;
    return rc;
}

static int op_audience_delete(ops_call *c)
{
    ls_str name = {NULL, 0};
    int rc = read_audience_name(c, &name);
    return rc ? rc : submit_identity(c, JOB_AUDIENCE_DELETE, &name, NULL);
}

static void write_audience(codec_writer *w, const audience_info *a)
{
    cw_map(w);
    kv_str(w, "name", a->name);
    kv_str(w, "rule", a->rule);
    kv_int(w, "members", (int64_t)a->members);
    cw_key(w, "ready");
    cw_bool(w, a->ready);
    kv_int(w, "created", a->created_ms);
    cw_end(w);
}

static int op_audience_list(ops_call *c)
{
    audience_info *items = NULL;
    size_t n = 0;
    if (store_reader_begin(c->reader) != LS_OK)
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    int rc = audience_list(c->reader, &items, &n);
    store_reader_end(c->reader);
    if (rc)
        return fail(c, LS_EINTERNAL, "%s", "cannot read the audiences");
    begin_ok(c);
    cw_key(c->w, "audiences");
    cw_array(c->w);
    for (size_t i = 0; i < n; i++)
        write_audience(c->w, &items[i]);
    cw_end(c->w);
    cw_end(c->w);
    free(items);
    return LS_OK;
}

/* The optional integer `key` of the request, within [lo, hi]. */
static int read_bounded(ops_call *c, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    int rc = codec_get_int(&c->req->root, key, out);
    if (rc == LS_ENOTFOUND)
        return LS_OK;
    if (rc || *out < lo || *out > hi)
        return fail(c, LS_EBADREQ, "\"%s\" must be an integer from %lld to %lld", key, (long long)lo, (long long)hi);
    return LS_OK;
}

typedef struct {
    codec_writer *w;
    const char *last;
    size_t last_len;
} members_page;

static int page_member(void *arg, const char *customer, size_t len, int64_t entered_ms)
{
    members_page *p = arg;
    (void)entered_ms;
    cw_strn(p->w, customer, len);
    p->last = customer;
    p->last_len = len;
    return 0;
}

static int op_audience_members(ops_call *c)
{
    ls_str name = {NULL, 0}, cursor = {NULL, 0};
    audience_info info;
    int64_t limit = 1000;
    int more = 0, rc;
    if ((rc = read_audience_name(c, &name)) || (rc = read_bounded(c, "limit", 1, AUDIENCE_PAGE_MAX, &limit)))
        return rc;
    const msgpack_object *o = codec_map_get(&c->req->root, "cursor");
    if (o && o->type != MSGPACK_OBJECT_NIL) {
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > STORE_MAX_KEY - 4)
            return fail(c, LS_EBADREQ, "%s", "\"cursor\" must be the string a previous page returned, or nil");
        cursor.ptr = o->via.str.ptr;
        cursor.len = o->via.str.size;
    }
    if (store_reader_begin(c->reader) != LS_OK)
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    rc = audience_get(c->reader, name.ptr, name.len, &info);
    if (rc) {
        store_reader_end(c->reader);
        return rc == LS_ENOTFOUND ? fail(c, LS_EBADREQ, "no audience named \"%.*s\"", (int)name.len, name.ptr)
                                  : fail(c, LS_EINTERNAL, "%s", "cannot read the audience");
    }
    begin_ok(c);
    kv_str(c->w, "name", info.name);
    cw_key(c->w, "ready");
    cw_bool(c->w, info.ready);
    cw_key(c->w, "members");
    cw_array(c->w);
    members_page page = {c->w, NULL, 0};
    rc = audience_members(c->reader, info.id, cursor.ptr, cursor.len, (size_t)limit, page_member, &page, &more);
    cw_end(c->w);
    cw_key(c->w, "cursor");
    if (rc == LS_OK && more && page.last)
        cw_strn(c->w, page.last, page.last_len);
    else
        cw_nil(c->w);
    cw_end(c->w);
    store_reader_end(c->reader);
    return rc == LS_OK ? LS_OK : fail(c, LS_EINTERNAL, "%s", "cannot read the members");
}

/* ------------------------------------------------------------------ */
/* triggers                                                            */
/* ------------------------------------------------------------------ */

#define TRIGGERS_LIMIT_MAX 10000
#define TRIGGERS_WAIT_MAX_MS 60000

typedef struct {
    codec_writer *w;
    uint64_t last;
} triggers_page;

static int page_trigger(void *arg, uint64_t seq, const uint8_t *msgpack, size_t len)
{
    triggers_page *p = arg;
    cw_raw(p->w, msgpack, len, 1);
    p->last = seq;
    return 0;
}

static int op_triggers(ops_call *c)
{
    int64_t from = 0, limit = 100, wait = 0;
    uint64_t first = 0, last = 0;
    int rc;
    if ((rc = read_bounded(c, "from", 0, INT64_MAX, &from)) ||
        (rc = read_bounded(c, "limit", 1, TRIGGERS_LIMIT_MAX, &limit)) ||
        (rc = read_bounded(c, "wait_ms", 0, TRIGGERS_WAIT_MAX_MS, &wait)))
        return rc;
    if (store_reader_begin(c->reader) != LS_OK)
        return fail(c, LS_EINTERNAL, "%s", "cannot open a read snapshot of the store");
    begin_ok(c);
    cw_key(c->w, "triggers");
    cw_array(c->w);
    triggers_page page = {c->w, (uint64_t)from};
    rc = trigger_read(c->reader, (uint64_t)from, (size_t)limit, page_trigger, &page, &first, &last);
    store_reader_end(c->reader);
    if (rc)
        return fail(c, LS_EINTERNAL, "%s", "cannot read the trigger outbox");
    if (page.last == (uint64_t)from && wait > 0 && c->may_park) {
        codec_writer_reset(c->w);
        c->park = 1;
        c->park_ms = wait;
        return LS_OK;
    }
    cw_end(c->w);
    kv_int(c->w, "next", (int64_t)page.last);
    kv_int(c->w, "first", (int64_t)first);
    kv_int(c->w, "last", (int64_t)last);
    cw_end(c->w);
    return LS_OK;
}

static const char *const f_plain[] = {"op", "id", NULL};
static const char *const f_track[] = {"op", "id", "events", NULL};
static const char *const f_score[] = {"op", "id", "customer", "customers", "explain", "now", NULL};
static const char *const f_profile[] = {"op", "id", "customer", "now", NULL};
static const char *const f_recommend[] = {"op", "id", "customer", "k", "now", NULL};
static const char *const f_reload[] = {"op", "id", "path", NULL};
static const char *const f_alias[] = {"op", "id", "from", "to", NULL};
static const char *const f_forget[] = {"op", "id", "customer", NULL};
static const char *const f_kpis[] = {"op", "id", "from", "to", NULL};
static const char *const f_audience_put[] = {"op", "id", "name", "rule", NULL};
static const char *const f_audience_name[] = {"op", "id", "name", NULL};
static const char *const f_audience_members[] = {"op", "id", "name", "limit", "cursor", NULL};
static const char *const f_triggers[] = {"op", "id", "from", "limit", "wait_ms", NULL};

static const ops_entry table[] = {
    {"ping", op_ping, WHERE_LOOP, f_plain, 0, NULL},
    {"track", op_track, WHERE_WORKER, f_track, 0, NULL},
    {"score", op_score, WHERE_BY_SIZE, f_score, 0, NULL},
    {"profile", op_profile, WHERE_READ, f_profile, 0, NULL},
    {"stats", op_stats, WHERE_LOOP, f_plain, 1, NULL},
    {"model", op_model, WHERE_LOOP, f_plain, 0, NULL},
    {"recommend", op_recommend, WHERE_READ, f_recommend, 0, NULL},
    {"reload", op_reload, WHERE_WORKER, f_reload, 1, NULL},
    {"alias", op_alias, WHERE_WORKER, f_alias, 0, NULL},
    {"forget", op_forget, WHERE_WORKER, f_forget, 1, NULL},
    {"kpis", op_kpis, WHERE_SCAN, f_kpis, 1, check_kpis},
    {"audience_put", op_audience_put, WHERE_WORKER, f_audience_put, 1, NULL},
    {"audience_delete", op_audience_delete, WHERE_WORKER, f_audience_name, 1, NULL},
    {"audience_list", op_audience_list, WHERE_LOOP, f_plain, 0, NULL},
    {"audience_members", op_audience_members, WHERE_WORKER, f_audience_members, 0, NULL},
    {"triggers", op_triggers, WHERE_LOOP, f_triggers, 0, NULL},
    {"cluster", op_cluster, WHERE_LOOP, f_plain, 0, NULL},
    {"invalid", NULL, WHERE_LOOP, f_plain, 0, NULL},
};
#define N_OPS ((int)(sizeof table / sizeof table[0]))

int ops_count(void) { return N_OPS; }
int ops_invalid(void) { return N_OPS - 1; }

const char *ops_name(int op)
{
    return op >= 0 && op < N_OPS ? table[op].name : "invalid";
}

int ops_lookup(const ls_str *name)
{
    for (int i = 0; i < N_OPS - 1; i++)
        if (strlen(table[i].name) == name->len && memcmp(table[i].name, name->ptr, name->len) == 0)
            return i;
    return ops_invalid();
}

int ops_admin_only(int op)
{
    return op >= 0 && op < N_OPS && table[op].admin;
}

int ops_scan(int op)
{
    return op >= 0 && op < N_OPS && table[op].where == WHERE_SCAN;
}

int ops_inline(int op, const codec_request *req)
{
    if (op < 0 || op >= N_OPS)
        return 1;
    if (table[op].where == WHERE_BY_SIZE)
        return codec_map_get(&req->root, "customers") == NULL;
    return table[op].where == WHERE_LOOP || table[op].where == WHERE_READ;
}

int ops_cluster_unsupported(int op)
{
    return op >= 0 && op < N_OPS &&
           (table[op].run == op_alias || table[op].run == op_audience_put ||
            table[op].run == op_audience_delete);
}

int ops_by_customer(int op)
{
    return ops_any_thread(op) || (op >= 0 && op < N_OPS && table[op].run == op_forget);
}

int ops_any_thread(int op)
{
    return op >= 0 && op < N_OPS && (table[op].where == WHERE_READ || table[op].where == WHERE_BY_SIZE);
}

/* At most 48 bytes of s for a message, each byte that is not printable
 * ASCII (a NUL included: it must not end the text early) as '?'. */
static void printable(char *out, size_t cap, const ls_str *s)
{
    size_t n = s->len > 48 ? 48 : s->len;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s->ptr[i];
        out[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    out[n] = '\0';
}

int ops_answer(ops_call *c, codec_request *req, const char *body, size_t len, msgpack_zone *zone)
{
    const char *why = NULL;
    int rc = codec_parse_request(body, len, zone, req, &why);
    c->req = req;
    if (rc == LS_OK)
        return ops_run(c);
    codec_error_reply(c->w, req->id, rc, why);
    return rc;
}

/* The checks every request passes before its op runs: the op is known
 * and every field is one of its own (PROTOCOL.md 1.3). */
static int check_fields(ops_call *c)
{
    char name[64];
    if (c->op == ops_invalid()) {
        printable(name, sizeof name, &c->req->op);
        return fail(c, LS_EUNKNOWNOP, "unknown op \"%s\"", name);
    }
    const msgpack_object *bad = codec_unknown_key(&c->req->root, table[c->op].fields);
    if (!bad)
        return LS_OK;
    ls_str k = {bad->via.str.ptr, bad->via.str.size};
    printable(name, sizeof name, &k);
    return fail(c, LS_EBADREQ, "unknown request field \"%s\"", name);
}

int ops_check(ops_call *c)
{
    int rc = check_fields(c);
    if (rc == LS_OK && table[c->op].check)
        rc = table[c->op].check(c);
    if (rc != LS_OK)
        codec_error_reply(c->w, c->req->id, rc, c->why);
    return rc;
}

int ops_run(ops_call *c)
{
    c->async = 0;
    int rc = check_fields(c);
    if (rc == LS_OK)
        rc = table[c->op].run(c);
    if (rc != LS_OK)
        codec_error_reply(c->w, c->req->id, rc, c->why);
    return rc;
}
