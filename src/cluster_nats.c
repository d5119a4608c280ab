/* cluster_nats.c -- the NATS JetStream calls of cluster mode
 * (cluster_nats.h). */
#define _POSIX_C_SOURCE 200809L
#include "cluster_nats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define MAX_URLS 16
#define RETRY_PAUSE_MS 250

void cnats_why(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr)
{
    const char *detail = nats_GetLastError(NULL);
    if (jerr)
        snprintf(err, errlen, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(s), (int)jerr,
                 detail ? ": " : "", detail ? detail : "");
    else
        snprintf(err, errlen, "%s: %s%s%s", what, natsStatus_GetText(s), detail ? ": " : "", detail ? detail : "");
}


/* Splits "a,b,c" into up to MAX_URLS pointers into buf. */
static int split_urls(char *buf, const char **urls)
{
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && n < MAX_URLS; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            urls[n++] = tok;
    return n;
}

int cnats_usable(cnats *c)
{
    return c->nc && !natsConnection_IsClosed(c->nc);
}

int cnats_connect(cnats *c, const char *urls, const char *conn_name, int reconnect, int64_t wait_ms, char *err,
                  size_t errlen)
{
    char buf[2048];
    const char *list[MAX_URLS];
    natsOptions *opts = NULL;
    natsStatus s;
    memset(c, 0, sizeof *c);
    snprintf(buf, sizeof buf, "%s", urls);
    int n = split_urls(buf, list);
    if (n == 0) {
        snprintf(err, errlen, "--nats: no server URL given (nats://HOST:PORT,...)");
        return LS_EINVAL;
    }
    if ((s = natsOptions_Create(&opts)) != NATS_OK || (s = natsOptions_SetServers(opts, list, n)) != NATS_OK ||
        (s = natsOptions_SetName(opts, conn_name)) != NATS_OK || (s = natsOptions_SetSendAsap(opts, true)) != NATS_OK ||
        (s = natsOptions_SetAllowReconnect(opts, reconnect ? true : false)) != NATS_OK ||
        (s = natsOptions_SetMaxReconnect(opts, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(opts, 100)) != NATS_OK ||
        (s = natsOptions_SetTimeout(opts, 2000)) != NATS_OK) {
        cnats_why(err, errlen, "NATS options", s, 0);
        natsOptions_Destroy(opts);
        return LS_EINVAL;
    }
    int64_t deadline = timefmt_mono_ns() + wait_ms * 1000000LL;
    do {
        s = natsConnection_Connect(&c->nc, opts);
        if (s == NATS_OK)
            break;
        timefmt_sleep_ms(RETRY_PAUSE_MS);
    } while (timefmt_mono_ns() < deadline);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        char what[2200];
        snprintf(what, sizeof what, "cannot connect to NATS at %s", urls);
        cnats_why(err, errlen, what, s, 0);
        return LS_EUNAVAIL;
    }
    if ((s = natsConnection_JetStream(&c->js, c->nc, NULL)) != NATS_OK) {
        cnats_why(err, errlen, "JetStream context", s, 0);
        cnats_close(c);
        return LS_EUNAVAIL;
    }
    return LS_OK;
}

void cnats_close(cnats *c)
{
    if (c->kv)
        kvStore_Destroy(c->kv);
    if (c->js)
        jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    memset(c, 0, sizeof *c);
}

int cnats_js(cnats *c, jsOptions *opts, jsCtx **out, char *err, size_t errlen)
{
    natsStatus s = natsConnection_JetStream(out, c->nc, opts);
    if (s != NATS_OK) {
        cnats_why(err, errlen, "JetStream context", s, 0);
        return LS_EUNAVAIL;
    }
    return LS_OK;
}

int cnats_open_kv(cnats *c, const char *cluster, int create, int replicas, int64_t wait_ms, char *err, size_t errlen)
{
    char bucket[CLUSTER_NAME_MAX + 8];
    natsStatus s;
    snprintf(bucket, sizeof bucket, "ls_%s", cluster);
    int64_t deadline = timefmt_mono_ns() + wait_ms * 1000000LL;
    for (;;) {
        if (create) {
            kvConfig cfg;
            kvConfig_Init(&cfg);
            cfg.Bucket = bucket;
            cfg.History = 1;
            cfg.Replicas = replicas;
            cfg.StorageType = js_FileStorage;
            s = js_CreateKeyValue(&c->kv, c->js, &cfg);
        } else {
            s = js_KeyValue(&c->kv, c->js, bucket);
        }
        if (s == NATS_OK)
            return LS_OK;
        if (!create && s == NATS_NOT_FOUND) {
            snprintf(err, errlen, "cluster \"%s\" does not exist on these NATS servers (run `leadscore cluster init`)",
                     cluster);
            return LS_ENOTFOUND;
        }
        if (timefmt_mono_ns() >= deadline)
            break;
        timefmt_sleep_ms(RETRY_PAUSE_MS);
    }
    char what[128];
    snprintf(what, sizeof what, "cannot %s the KV bucket %s", create ? "create" : "open", bucket);
    cnats_why(err, errlen, what, s, 0);
    return LS_EUNAVAIL;
}

int cnats_map_get(cnats *c, clustermap *m, uint64_t *rev, char *err, size_t errlen)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, c->kv, "map");
    if (s == NATS_NOT_FOUND) {
        snprintf(err, errlen, "the cluster has no map yet (run `leadscore cluster init`)");
        return LS_ENOTFOUND;
    }
    if (s != NATS_OK) {
        cnats_why(err, errlen, "cannot read the cluster map", s, 0);
        return LS_EUNAVAIL;
    }
    int rc = clustermap_from_json(m, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), err, errlen);
    if (rev)
        *rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    return rc;
}

static int write_map(cnats *c, const clustermap *m, int create, uint64_t rev, char *err, size_t errlen)
{
    char *text = clustermap_to_json(m);
    uint64_t new_rev = 0;
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return LS_ENOMEM;
    }
    natsStatus s = create ? kvStore_Create(&new_rev, c->kv, "map", text, (int)strlen(text))
                          : kvStore_Update(&new_rev, c->kv, "map", text, (int)strlen(text), rev);
    free(text);
    if (s == NATS_OK)
        return LS_OK;
    if (s == NATS_ERR) { /* wrong last sequence: somebody changed it first */
        snprintf(err, errlen, "the cluster map changed meanwhile (%s): read it again and retry",
                 create ? "it exists already" : "another change came first");
        return LS_EUNAVAIL;
    }
    cnats_why(err, errlen, "cannot write the cluster map", s, 0);
    return LS_EUNAVAIL;
}

int cnats_map_create(cnats *c, const clustermap *m, char *err, size_t errlen)
{
    return write_map(c, m, 1, 0, err, errlen);
}

int cnats_map_update(cnats *c, const clustermap *m, uint64_t rev, char *err, size_t errlen)
{
    return write_map(c, m, 0, rev, err, errlen);
}

int cnats_live_put(cnats *c, const char *node, const cluster_live *l)
{
    char key[CLUSTER_NAME_MAX + 8];
    char *text = cluster_live_to_json(l);
    if (!text)
        return LS_ENOMEM;
    snprintf(key, sizeof key, "live.%s", node);
    natsStatus s = kvStore_Put(NULL, c->kv, key, text, (int)strlen(text));
    free(text);
    return s == NATS_OK ? LS_OK : LS_EUNAVAIL;
}

int cnats_live_get(cnats *c, const char *node, cluster_live *l)
{
    char key[CLUSTER_NAME_MAX + 8];
    kvEntry *e = NULL;
    snprintf(key, sizeof key, "live.%s", node);
    natsStatus s = kvStore_Get(&e, c->kv, key);
    if (s == NATS_NOT_FOUND)
        return LS_ENOTFOUND;
    if (s != NATS_OK)
        return LS_EUNAVAIL;
    int rc = cluster_live_from_json(l, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
    kvEntry_Destroy(e);
    return rc;
}

int cnats_stream_create(cnats *c, const clustermap *m, uint32_t p, int replicas, int64_t dedupe_ms,
                        int64_t max_age_ms, int64_t wait_ms, char *err, size_t errlen)
{
    char name[128], subject[128];
    const char *subjects[1] = {subject};
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    clustermap_stream_name(m, p, name, sizeof name);
    snprintf(subject, sizeof subject, "ls.%s.p.%u.>", m->cluster, p);
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    cfg.Duplicates = dedupe_ms * 1000000LL;
    cfg.MaxAge = max_age_ms * 1000000LL;
    cfg.Discard = js_DiscardOld;
    int64_t deadline = timefmt_mono_ns() + wait_ms * 1000000LL;
    for (;;) {
        jerr = 0;
        s = js_AddStream(&si, c->js, &cfg, NULL, &jerr);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(si);
            return LS_OK;
        }
        if (jerr == JSStreamNameExistErr || timefmt_mono_ns() >= deadline)
            break;
        timefmt_sleep_ms(RETRY_PAUSE_MS);
    }
    char what[160];
    snprintf(what, sizeof what, "cannot create stream %s", name);
    cnats_why(err, errlen, what, s, jerr);
    return LS_EUNAVAIL;
}

int cnats_stream_state(cnats *c, const char *stream, uint64_t *last_seq, char *leader, size_t leader_cap,
                       char *err, size_t errlen)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, stream, NULL, &jerr);
    if (s != NATS_OK) {
        char what[160];
        snprintf(what, sizeof what, "cannot read stream %s", stream);
        cnats_why(err, errlen, what, s, jerr);
        return LS_EUNAVAIL;
    }
    *last_seq = si->State.LastSeq;
    if (leader && leader_cap)
        snprintf(leader, leader_cap, "%s", si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
    jsStreamInfo_Destroy(si);
    return LS_OK;
}
