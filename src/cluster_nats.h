/* cluster_nats.h -- the NATS JetStream calls cluster mode makes, in one
 * place: the connection, the cluster's KV bucket (map and liveness
 * records, clustermap.h) and the per-partition streams.
 *
 * Everything here returns a status from error.h and explains a failure
 * in err for a person.  Only cluster code includes it; a build without
 * libnats leaves it out (LS_HAVE_NATS). */
#ifndef LS_CLUSTER_NATS_H
#define LS_CLUSTER_NATS_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "clustermap.h"

/* Waits for JetStream API answers (ms). */
#define CNATS_API_WAIT_MS 5000

typedef struct {
    natsConnection *nc;
    jsCtx *js;          /* plain context for API calls, KV, fetches */
    kvStore *kv;        /* the cluster's bucket, ls_<cluster>; NULL until cnats_open_kv */
} cnats;

/* Connects to the comma-separated URLs (sending at once: SendAsap),
 * waiting up to wait_ms for a first connection.  With reconnect the
 * library reconnects for ever; without, a lost connection stays closed
 * (cnats_usable says so) and the caller connects again: the shard log's
 * fetchers do, so nats.c never re-issues their pull subscriptions itself. */
int cnats_connect(cnats *c, const char *urls, const char *conn_name, int reconnect, int64_t wait_ms, char *err,
                  size_t errlen);

/* 1 while the connection is up (or the library is reconnecting it). */
int cnats_usable(cnats *c);
void cnats_close(cnats *c);

/* A JetStream context with the given options (for async publishing). */
int cnats_js(cnats *c, jsOptions *opts, jsCtx **out, char *err, size_t errlen);

/* Binds the cluster's bucket, or creates it (replicas copies) when create.
 * Retries for up to wait_ms while JetStream has no meta leader yet. */
int cnats_open_kv(cnats *c, const char *cluster, int create, int replicas, int64_t wait_ms,
                  char *err, size_t errlen);

/* The map and its KV revision; LS_ENOTFOUND when the cluster has none. */
int cnats_map_get(cnats *c, clustermap *m, uint64_t *rev, char *err, size_t errlen);
/* Writes the map only when the key is absent (create) or still at rev
 * (update); LS_EUNAVAIL when someone else changed it first. */
int cnats_map_create(cnats *c, const clustermap *m, char *err, size_t errlen);
int cnats_map_update(cnats *c, const clustermap *m, uint64_t rev, char *err, size_t errlen);

int cnats_live_put(cnats *c, const char *node, const cluster_live *l);
/* LS_ENOTFOUND when the node never wrote one. */
int cnats_live_get(cnats *c, const char *node, cluster_live *l);

/* Creates partition p's stream (file storage, replicas copies, a
 * dedupe window of dedupe_ms for Nats-Msg-Id, kept for max_age_ms; 0:
 * for ever).  Retries for up to wait_ms while the cluster elects. */
int cnats_stream_create(cnats *c, const clustermap *m, uint32_t p, int replicas, int64_t dedupe_ms,
                        int64_t max_age_ms, int64_t wait_ms, char *err, size_t errlen);

/* The stream's last sequence and its leader's server name (may be "").
 * leader may be NULL. */
int cnats_stream_state(cnats *c, const char *stream, uint64_t *last_seq, char *leader, size_t leader_cap,
                       char *err, size_t errlen);

/* Puts "what failed: why" for a NATS status (and JetStream error code). */
void cnats_why(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr);

#endif
