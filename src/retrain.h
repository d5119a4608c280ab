/* retrain.h -- scheduled retraining inside `serve` (--retrain-every).
 *
 * A background thread wakes every `every` and runs one retraining, never
 * on the request path: with its own store reader and one read snapshot it
 * trains from the live store's histories (train.h) for the serving
 * model's horizon h with train's cutoffs ending at c = now - h, so every
 * label is complete at the time `now`: fit rows pooled from cutoffs up to
 * now - 3h, calibration at now - 2h, hold-out rows as of now - h with
 * orders in (now - h, now].
 * The serving model is scored on the same hold-out rows exactly as the
 * service scores them (model_score).  The new model replaces it -- by the
 * atomic swap `reload` uses (service_model_swap) -- only when
 * retrain_better says it did better there: the serving model loses to it
 * by train_gate, the rule `train` refuses a model against the RFM
 * baseline by (clearly worse on log-loss or AUC and not clearly better on
 * the other).  Each run is logged (logfmt) and counted in the stats
 * (retrain_runs, retrain_swaps, retrain_failures, the last AUCs of the new
 * and the serving model) that /metrics shows.
 *
 * The new model keeps the configured --model file's name (version
 * "retrained-<time>"), and its journey, segments, tiers, half-lives and
 * clv settings come from that file (the built-in default when that is the
 * missing default path), read as the service reads it at start and on
 * `reload`: a regular file within --model-max-bytes, a valid model, no
 * duplicate keys -- else the run fails, logged, and nothing is swapped.
 * It lives in memory only: a restart or a `reload` goes back to the file.
 *
 * Note: the snapshot is held for the whole scan, and while it is open
 * LMDB cannot reuse the pages the writer frees, nor can the writer grow
 * the map (store_grow waits for open snapshots). */
#ifndef LS_RETRAIN_H
#define LS_RETRAIN_H

#include <stdatomic.h>
#include <stdint.h>

#include "service.h"
#include "store.h"
#include "train.h"

typedef struct retrain retrain;

typedef struct {
    int swapped;                 /* the new model is serving now */
    int serving_changed;         /* not swapped though better: another model (a reload) was
                                  * swapped in during the run, so the one evaluated no longer serves */
    train_metrics candidate;     /* the new model on the hold-out */
    train_metrics serving;       /* the model that was serving, on the same hold-out */
    train_paired se;             /* standard errors of candidate - serving */
    int64_t eval_cutoff_ms;      /* now - horizon */
    int horizon_days;
    double seconds;
    char version[64];            /* the new model's version */
} retrain_outcome;

/* 1 when candidate did better than serving on the same hold-out: the
 * serving model loses to it by train_gate (train.h) -- clearly worse on
 * log-loss or AUC, by more than TRAIN_GATE_SES standard errors of the
 * paired difference (se: the standard errors of candidate - serving),
 * and not clearly better on the other -- the rule `train` refuses a model
 * against the RFM baseline by.  0 otherwise: a model as good as the
 * serving one within the noise (the same one too) is not swapped in, nor
 * one whose figures are missing or not finite. */
int retrain_better(const train_metrics *candidate, const train_metrics *serving, const train_paired *se);

/* One retraining as of now_ms with reader r (a reader of svc->store owned
 * by the calling thread; the snapshot is begun and ended here).  Swaps
 * the model when retrain_better -- and only when the model serving then
 * is still the one evaluated (service_model_swap_if: a reload during the
 * run wins; the new model is dropped and out->serving_changed set) --,
 * counts the run in svc->stats, fills out.  progress (may be NULL) is the
 * trainer's hook (train.h), called with progress_arg during the scan and
 * between the fits: a non-zero return ends the run early (LS_EUNAVAIL).
 * 0, or a status with the reason in err (the serving model then stays).
 * Does not log: the thread does. */
int retrain_run(service *svc, store_reader *r, int64_t now_ms, train_progress_fn progress, void *progress_arg,
                retrain_outcome *out, char *err, size_t errlen);

/* Starts the thread (every_ms > 0) with signals blocked in it.  0 or a
 * status; *out is NULL on failure. */
int retrain_start(retrain **out, service *svc, int64_t every_ms);

/* Asks the thread to stop (a run in progress ends at its next progress
 * check).  Does not wait.  NULL is harmless. */
void retrain_request_stop(retrain *rt);

/* Stops the thread, waits for it and frees it; NULLs *rt. */
void retrain_join(retrain **rt);

#endif
