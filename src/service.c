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
#include <string.h>
#include <sys/stat.h>

#include "leadscore/error.h"

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

int service_load_model(service *svc, char *err, size_t errlen)
{
    return model_load_default(svc->cfg.model_path, &svc->model, NULL, err, errlen);
}

int service_reload_model(service *svc, const char *path, char *err, size_t errlen)
{
    model *m = NULL;
    int rc = model_load_default(path ? path : svc->cfg.model_path, &m, NULL, err, errlen);
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
