/* service.c -- the state one running service shares between its threads:
 * here, its model handle (see service.h).
 *
 * The active model is reference-counted and guarded by svc->model_lock:
 * a request takes its own reference (service_model_acquire) and keeps
 * scoring with that model even when reload, SIGHUP or retraining swap in
 * another meanwhile; the old model is freed with its last reference.
 * The server loop, the ops handlers and the retraining thread all swap
 * models through this file, so none of them calls into another. */
#define _POSIX_C_SOURCE 200809L
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error_internal.h"
#include "leadscore/error.h"
#include "modelpath.h"

model *service_model_acquire(service *svc)
{
    pthread_mutex_lock(&svc->model_lock);
    model *m = model_ref(svc->model);
    pthread_mutex_unlock(&svc->model_lock);
    return m;
}

void service_model_swap(service *svc, model *m)
{
    pthread_mutex_lock(&svc->model_lock);
    model *old = svc->model;
    svc->model = m;
    pthread_mutex_unlock(&svc->model_lock);
    model_unref(&old);
}

int service_model_swap_if(service *svc, const model *expected, model *m)
{
    pthread_mutex_lock(&svc->model_lock);
    model *old = svc->model;
    int same = old == expected;
    if (same)
        svc->model = m;
    pthread_mutex_unlock(&svc->model_lock);
    if (same)
        model_unref(&old);
    return same;
}

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

/* The model of --model (the built-in copy when it names the default file
 * and there is none), read under model-max-bytes: a regular file only (a
 * FIFO would hang the start or the reload), not larger than the limit. */
static int load_configured(service *svc, model **out, char *err, size_t errlen)
{
    const char *path = svc->cfg.model_path[0] ? svc->cfg.model_path : MODEL_DEFAULT_PATH;
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (model_path_is_builtin(path))
        return model_load_builtin(out, err, errlen);
    int rc = modelpath_read(path, svc->cfg.model_max_bytes, 1, &text, &len, err, errlen);
    if (rc == LS_ETOOLARGE)
        rc = ls_fail(err, errlen, LS_EINVAL, "model file %s is larger than model-max-bytes (%llu bytes)", path,
                     (unsigned long long)svc->cfg.model_max_bytes);
    else if (rc == LS_EINVAL)
        rc = ls_fail(err, errlen, LS_EINVAL, "model file %s is not a regular file", path);
    else if (rc == LS_OK)
        rc = model_load_text(text, len, out, err, errlen);
    free(text);
    return rc;
}

int service_load_model(service *svc, char *err, size_t errlen)
{
    return load_configured(svc, &svc->model, err, errlen);
}

int service_reload_model(service *svc, char *err, size_t errlen)
{
    model *m = NULL;
    int rc = load_configured(svc, &m, err, errlen);
    return rc ? rc : service_install_model(svc, m, err, errlen);
}

int service_install_model(service *svc, model *m, char *err, size_t errlen)
{
    if (!same_decay(model_decay(m), store_decay(svc->store))) {
        snprintf(err, errlen, "model %s keeps half-lives other than the store's (%.4g and %.4g days)",
                 model_name(m), store_decay(svc->store)->short_ms / 864e5, store_decay(svc->store)->long_ms / 864e5);
        model_unref(&m);
        return LS_EINVAL;
    }
    service_model_swap(svc, m);
    return LS_OK;
}
