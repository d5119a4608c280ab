/* retrain.c -- the scheduled retraining thread of `serve` and the decision
 * whether its model replaces the serving one (see retrain.h). */
#define _POSIX_C_SOURCE 200809L
#include "retrain.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>

#include "error_internal.h"
#include "log.h"
#include "modelpath.h"
#include "timefmt.h"

#define MS_PER_DAY 86400000LL
/* used only where the history is too short to choose lambda by validation */
#define RETRAIN_LAMBDA 1.0
struct retrain {
    service *svc;
    int64_t every_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* signalled on stop */
    int stop_requested;           /* under lock */
    atomic_int stop;              /* read by the trainer's progress hook */
};

/* ------------------------------------------------------------------ */
/* The decision                                                        */
/* ------------------------------------------------------------------ */

int retrain_better(const train_metrics *candidate, const train_metrics *serving, const train_paired *se)
{
    train_gate_verdict v = train_gate(serving, candidate, se);
    return v == TRAIN_GATE_LOGLOSS || v == TRAIN_GATE_AUC || v == TRAIN_GATE_BOTH;
}

/* ------------------------------------------------------------------ */
/* One run                                                             */
/* ------------------------------------------------------------------ */

/* The JSON of the configured model file, read as the service reads it
 * at start and on `reload` (service.c): a regular file (or a link to one)
 * within --model-max-bytes, a valid model, no duplicate keys. */
static json_t *load_base_json(const service *svc, char *err, size_t errlen)
{
    const char *path = svc->cfg.model_path[0] ? svc->cfg.model_path : MODEL_DEFAULT_PATH;
    json_error_t jerr;
    model *check = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (model_path_is_builtin(path)) {
        const char *builtin = model_builtin_text(&len);
        return json_loadb(builtin, len, JSON_REJECT_DUPLICATES, &jerr);
    }
    rc = modelpath_read(path, svc->cfg.model_max_bytes, 1, &text, &len, err, errlen);
    if (rc == LS_ETOOLARGE)
        ls_fail(err, errlen, LS_EINVAL, "the base model %s is larger than model-max-bytes", path);
    else if (rc == LS_EINVAL)
        ls_fail(err, errlen, LS_EINVAL, "the base model %s is not a regular file", path);
    else if (rc == LS_OK && (rc = model_load_text(text, len, &check, err, errlen)) == LS_OK)
        model_unref(&check);
    json_t *j = rc == LS_OK ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (rc == LS_OK && !j)
        ls_fail(err, errlen, LS_EPARSE, "cannot read the base model %s: %s", path, jerr.text);
    free(text);
    return j;
}

/* The name the retrained model keeps: the configured model's (the base
 * document's), whatever a `reload` made active meanwhile. */
static const char *base_name(const json_t *base)
{
    const char *name = json_string_value(json_object_get(base, "name"));
    return name ? name : "retrained";
}

/* The model JSON document j describes, loaded as `reload` loads a file. */
static int model_from_json(const json_t *j, model **out, char *err, size_t errlen)
{
    char *text = json_dumps(j, JSON_PRESERVE_ORDER);
    int rc = text ? model_load_text(text, strlen(text), out, err, errlen)
                  : ls_fail(err, errlen, LS_ENOMEM, "out of memory");
    free(text);
    return rc;
}

static int should_stop(void *arg, uint64_t done)
{
    (void)done;
    return arg && atomic_load((const atomic_int *)arg);
}

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

/* Builds the model file of rep over the base model's document and loads it. */
static int build_model(const service *svc, const train_report *rep, const train_options *opt, json_t *base,
                       const char *version, model **out, char *err, size_t errlen)
{
    json_t *j = train_model_json(rep, opt, base, base_name(base), version);
    int rc = j ? model_from_json(j, out, err, errlen) : ls_fail(err, errlen, LS_ENOMEM, "out of memory");
    if (rc == LS_OK && !same_decay(model_decay(*out), store_decay(svc->store))) {
        model_unref(out);
        rc = ls_fail(err, errlen, LS_EINVAL, "the base model %s keeps half-lives other than the store's",
                     svc->cfg.model_path);
    }
    json_decref(j);
    return rc;
}

static void count_run(stats *st, const retrain_outcome *out)
{
    atomic_fetch_add(&st->retrain_runs, 1);
    if (out->swapped)
        atomic_fetch_add(&st->retrain_swaps, 1);
    stats_store_double(&st->retrain_auc_new, out->candidate.auc);
    stats_store_double(&st->retrain_auc_serving, out->serving.auc);
}

int retrain_run(service *svc, store_reader *r, int64_t now_ms, train_progress_fn progress, void *progress_arg,
                retrain_outcome *out, char *err, size_t errlen)
{
    int64_t t0 = timefmt_mono_ns();
    char when[40];
    train_report rep;
    model *serving = service_model_acquire(svc), *fresh = NULL, *base = NULL;
    memset(out, 0, sizeof *out);
    /* the configured model file: its repeat-purchase parameters start the
     * fits, as `train --base` of that file starts them, so a run depends on
     * the data and that file only, not on which retrained model serves;
     * the new model is built over it */
    json_t *base_json = load_base_json(svc, err, errlen);
    int rc = base_json ? model_from_json(base_json, &base, err, errlen) : LS_EPARSE;
    if (rc != LS_OK) {
        atomic_fetch_add(&svc->stats.retrain_failures, 1);
        json_decref(base_json);
        model_unref(&serving);
        return rc;
    }
    const model_clv *clv = model_clv_params(base);
    out->horizon_days = (int)lround(model_horizon_days(serving));
    out->eval_cutoff_ms = now_ms - (int64_t)out->horizon_days * MS_PER_DAY;
    train_options opt = {.cutoff_ms = out->eval_cutoff_ms, .horizon_days = out->horizon_days,
                         .lambda = RETRAIN_LAMBDA, .decay = *store_decay(svc->store),
                         .time_unit_days = clv->time_unit_days, .repeat_start = clv->repeat,
                         .gg_start = clv->gamma_gamma, .compare = serving, .progress = progress,
                         .progress_arg = progress_arg};
    if (out->horizon_days < 1) {
        rc = ls_fail(err, errlen, LS_EINVAL, "the serving model has no horizon");
    } else if ((rc = store_reader_begin(r)) != LS_OK) {
        ls_fail(err, errlen, rc, "cannot read the store: %s", ls_strerror(rc));
    } else {
        rc = train_from_store(r, &opt, &rep, err, errlen);
        store_reader_end(r);
    }
    if (rc == LS_OK) {
        out->candidate = rep.model;
        out->serving = rep.compare;
        timefmt_format_iso(timefmt_now_ms() / 1000 * 1000, when, sizeof when);
        snprintf(out->version, sizeof out->version, "retrained-%s", when);
        out->se = rep.vs_compare;
        if (retrain_better(&out->candidate, &out->serving, &out->se) &&
            (rc = build_model(svc, &rep, &opt, base_json, out->version, &fresh, err, errlen)) == LS_OK) {
            /* it beat the model serving at the start; one reloaded since was not evaluated */
            if (service_model_swap_if(svc, serving, fresh)) { /* takes the reference */
                out->swapped = 1;
            } else {
                out->serving_changed = 1;
                model_unref(&fresh);
            }
        }
    }
    if (rc == LS_OK)
        count_run(&svc->stats, out);
    else if (rc != LS_EUNAVAIL)
        atomic_fetch_add(&svc->stats.retrain_failures, 1);
    model_unref(&serving);
    model_unref(&base);
    json_decref(base_json);
    out->seconds = (double)(timefmt_mono_ns() - t0) / 1e9;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

static void run_logged(retrain *rt, store_reader *r)
{
    char err[512], cut[40];
    retrain_outcome o;
    int rc = retrain_run(rt->svc, r, timefmt_now_ms(), should_stop, &rt->stop, &o, err, sizeof err);
    if (rc == LS_EUNAVAIL)
        return; /* stopping */
    if (rc != LS_OK) {
        LOG_WARN("retrain_failed", "reason=\"%s\" note=\"the serving model stays\"", err);
        return;
    }
    timefmt_format_iso(o.eval_cutoff_ms, cut, sizeof cut);
    LOG_INFO("retrain", "swapped=%d auc_new=%.4f auc_serving=%.4f auc_diff_se=%.4f logloss_new=%.4f "
             "logloss_serving=%.4f rows=%zu buyers=%zu holdout_cutoff=%s horizon_days=%d seconds=%.2f version=%s "
             "reason=\"%s\"", o.swapped, o.candidate.auc, o.serving.auc, o.se.auc_se, o.candidate.logloss,
             o.serving.logloss, o.candidate.rows, o.candidate.positives, cut, o.horizon_days, o.seconds,
             o.swapped ? o.version : "kept",
             o.swapped ? "the serving model loses to the new one"
             : o.serving_changed ? "the serving model changed during the run (a reload): the new model was not "
                                   "compared with it"
             : "the serving model does not lose to the new one");
}

/* Waits until the next run is due; 0 when asked to stop. */
static int wait_next(retrain *rt)
{
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    due.tv_sec += (time_t)(rt->every_ms / 1000);
    due.tv_nsec += (long)(rt->every_ms % 1000) * 1000000L;
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rt->lock);
    while (!rt->stop_requested && pthread_cond_timedwait(&rt->wake, &rt->lock, &due) == 0)
        ; /* woken without a stop: wait on */
    int go = !rt->stop_requested;
    pthread_mutex_unlock(&rt->lock);
    return go;
}

static void *retrain_main(void *arg)
{
    prctl(PR_SET_NAME, "ls-retrain");
    retrain *rt = arg;
    store_reader *r = NULL;
    if (store_reader_open(rt->svc->store, &r) != LS_OK) {
        LOG_ERROR("retrain_failed", "reason=\"cannot open a store reader\" note=\"scheduled retraining is off\"");
        return NULL;
    }
    while (wait_next(rt))
        run_logged(rt, r);
    store_reader_close(&r);
    return NULL;
}

int retrain_start(retrain **out, service *svc, int64_t every_ms)
{
    pthread_condattr_t ca;
    sigset_t all, old;
    *out = NULL;
    if (every_ms <= 0)
        return LS_EINVAL;
    retrain *rt = calloc(1, sizeof *rt);
    if (!rt)
        return LS_ENOMEM;
    rt->svc = svc;
    rt->every_ms = every_ms;
    atomic_init(&rt->stop, 0);
    pthread_mutex_init(&rt->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->wake, &ca);
    pthread_condattr_destroy(&ca);
    sigfillset(&all); /* signals belong to the thread that installed the handlers */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&rt->thread, NULL, retrain_main, rt);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&rt->wake);
        pthread_mutex_destroy(&rt->lock);
        free(rt);
        return LS_EINTERNAL;
    }
    *out = rt;
    return LS_OK;
}

void retrain_request_stop(retrain *rt)
{
    if (!rt)
        return;
    atomic_store(&rt->stop, 1);
    pthread_mutex_lock(&rt->lock);
    rt->stop_requested = 1;
    pthread_cond_signal(&rt->wake);
    pthread_mutex_unlock(&rt->lock);
}

void retrain_join(retrain **rtp)
{
    if (!rtp || !*rtp)
        return;
    retrain *rt = *rtp;
    retrain_request_stop(rt);
    pthread_join(rt->thread, NULL);
    pthread_cond_destroy(&rt->wake);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    *rtp = NULL;
}
