/* leadscore/client.h -- the C client library for the leadscore service.
 *
 * A storefront or a batch job links libleadscore and talks to a running
 * `leadscore serve` over ZeroMQ (PROTOCOL.md), or to the nodes of a
 * leadscore cluster (see ls_client_connect).  One ls_client is one
 * connection; it is not thread-safe (use one per thread).  Every function
 * returns 0 (LS_OK) or a negative status from leadscore/error.h; when the
 * server answered with an error the status is the matching code (e.g.
 * LS_EBADREQ) and ls_client_last_error() holds the server's message.
 *
 *     ls_client *c;
 *     ls_client_connect(&c, "tcp://127.0.0.1:5555", 2000);
 *     ls_client_event ev = {.customer = "alice", .type = "add_to_cart", .price = 40, .has = LS_HAS_PRICE};
 *     ls_track_result tr;
 *     ls_client_track(c, &ev, 1, &tr);
 *     ls_score s;
 *     ls_client_score(c, "alice", &s);   // s.score, s.tier, s.actions ...
 *     ls_score_free(&s);
 *     ls_client_close(&c);
 */
#ifndef LEADSCORE_CLIENT_H
#define LEADSCORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "leadscore/error.h"
#include "leadscore/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ls_client ls_client;

/* Which optional numeric fields of an ls_client_event are set. */
enum {
    LS_HAS_PRICE = 1 << 0,
    LS_HAS_QUANTITY = 1 << 1,
    LS_HAS_VALUE = 1 << 2,
    LS_HAS_DISCOUNTED = 1 << 3,
    LS_HAS_RATING = 1 << 4
};

/* One event to send (PROTOCOL.md section 2).  NULL strings are left out;
 * ts_ms 0 means "now, by the server's clock". */
typedef struct {
    const char *customer;   /* required */
    const char *type;       /* required: "product_view", "purchase", ... */
    int64_t ts_ms;
    const char *event_id;
    const char *session;
    const char *product;
    const char *category;
    const char *order_id;
    const char *birthday;   /* "MM-DD" */
    double price;
    int64_t quantity;
    double value;
    int discounted;
    int rating;
    unsigned has;           /* LS_HAS_* bits */
} ls_client_event;

typedef struct {
    uint32_t accepted;
    uint32_t duplicates;
    uint32_t rejected;
} ls_track_result;

/* One content segment of a score reply (as the recommend op ranks them). */
typedef struct {
    char *segment;          /* the segment's name */
    double weight;
    char *reason;           /* why, for a person: "showed interest in shoes/running 5 times ..." */
} ls_segment;

/* A score reply (PROTOCOL.md section 3.2): the fields below.  It does not
 * hold next_actions, nor the explain, logit and intercept an explain
 * request adds: ls_client_call of "score" returns the whole reply (msgpack)
 * for those.  The fixed strings are NUL-terminated (cut at their size); actions and segments are
 * malloc'd by ls_client_score / ls_client_score_at: free them with
 * ls_score_free() once done (it is safe on a zeroed or failed result, and
 * zeroes the struct).  Call ls_score_free before reusing an ls_score. */
typedef struct {
    char customer[257];
    int known;                      /* the store knows the customer */
    double score;                   /* purchase readiness, 0-1 */
    int score_100;                  /* round(100 x score) */
    char tier[16];                  /* "hot", "warm" or "cold" */
    char model[160];                /* "name@version" of the model */
    double p_alive;
    double expected_purchases_30d;
    double clv;
    char customer_type[32];         /* "prospect", "big_spender", "sale_hunter", "regular", "new", "occasional" */
    char phase[32];                 /* "prospect", "illusion", "trust", "identification", "disappointment" */
    int64_t loyalty_points;
    char loyalty_tier[32];          /* a tier name from the model */
    char **actions;                 /* n_actions codes: "abandoned_cart", "win_back", ... */
    size_t n_actions;
    ls_segment *segments;           /* n_segments, best first */
    size_t n_segments;
} ls_score;

/* Every call takes NULL only where its comment allows it; a NULL it
 * needs (the client, a customer id, an out or reply pointer, fields with
 * fields_len > 0) is LS_EINVAL at once, nothing sent, with the reason in
 * ls_client_last_error.
 *
 * Connects to endpoint (e.g. "tcp://127.0.0.1:5555").  timeout_ms bounds
 * each call's wait for its reply (<= 0: 5000 ms), whatever else arrives
 * meanwhile.  After a call ends in LS_ETIMEOUT the connection is made
 * afresh on the next call: a late reply to the timed-out call can never be
 * taken for a later call's, and a request still queued for a server that
 * was down is dropped, not sent when it comes back.  On any failure *out
 * is NULL.  LS_EINVAL for an
 * endpoint ZeroMQ does not take (in a list, the first is checked here and
 * the others when first used), or for a list of more than 256; nothing is
 * sent until the first call.
 *
 * Cluster mode: endpoint may instead list some (or all) nodes of one
 * leadscore cluster, comma-separated ("tcp://10.0.0.1:5555,tcp://10.0.0.2:5555";
 * blanks around each are ignored; an empty item is LS_EINVAL).  The first
 * call then asks every listed node at once for the partition map (op
 * `cluster`, PROTOCOL.md) and keeps the first answer; then:
 *   - ls_client_score, ls_client_score_at, ls_client_profile,
 *     ls_client_recommend, and ls_client_call of "score" / "profile" /
 *     "recommend" with "customer", go to the owner of the customer's
 *     partition.  When the owner does not answer within timeout_ms (or
 *     cannot be connected to), the same read goes to the partition's
 *     standby, so such a call may take up to twice timeout_ms; for the
 *     next 10 s, reads of that node's partitions go to their standby
 *     first (and to it only if the standby does not answer).
 *   - ls_client_track, and ls_client_call of "track", send the events of
 *     each owner to it (to the standby while the owner is in such a 10 s
 *     wait; any node takes a track), all parts at once, and merge the replies:
 *     accepted and duplicates summed, "rejected" entries with their
 *     "index" in the caller's batch, in order, "log" joined.  When any
 *     part fails, the call fails with that part's status and message
 *     (other parts may have been stored: resend the batch with the same
 *     event_ids, as after any LS_ETIMEOUT).  A track part is never resent.
 *   - ls_client_call of "score" with "customers" is split by node the same
 *     way, each part to its owner (to the standby as above), and the
 *     results merged in the order of the request.
 *   - A read a node refuses because it "does not hold" the partition (the
 *     map changed) makes the client fetch the map again and retry once.
 *   - Every other op goes to the node that answered the map request.
 * After a call in which a node did not answer, the next call fetches the
 * map again first, so that call may take up to three times timeout_ms
 * (the map, then the owner, then the standby) when listed nodes are down.
 * A socket per node is connected on first use and kept while the listed
 * endpoints or the current map name the node; a new map closes the
 * sockets of nodes it no longer names (a node back under a new address
 * after a restart), so a map may name up to 256 endpoints (the listed
 * ones included), whatever the maps before it named.
 * Replies are those a single node would give (with the "id" of the call).
 * When the listed nodes say they are no cluster (mode "single", or a
 * server older than cluster mode), everything goes to the one that
 * answered.  With a single endpoint none of this happens: no `cluster`
 * request is ever sent, and a cluster node given alone forwards reads it
 * does not hold itself (one extra hop). */
LS_API int ls_client_connect(ls_client **out, const char *endpoint, int timeout_ms);

/* Same over CurveZMQ: the server's public key and this client's key pair,
 * each 40 Z85 characters (see `leadscore keygen`).  A key the server does
 * not allow gets no answer: calls then end in LS_ETIMEOUT.  endpoint may
 * list a cluster's nodes as for ls_client_connect; every node is then
 * expected to have the same server key. */
LS_API int ls_client_connect_secure(ls_client **out, const char *endpoint, int timeout_ms,
                                   const char *server_public, const char *client_public,
                                   const char *client_secret);

/* Closes the connection and frees it; NULLs *c. */
LS_API void ls_client_close(ls_client **c);

/* Sends events[0..n) as one track batch; returns once the server has
 * durably committed the accepted ones.  On LS_ETIMEOUT the batch may or
 * may not have been stored: resend it with the same event_ids.  *out (may
 * be NULL) is zeroed first, so it holds counts only when the call
 * succeeds. */
LS_API int ls_client_track(ls_client *c, const ls_client_event *events, size_t n, ls_track_result *out);

/* Told about one event a track batch refused (the reply's "rejected"
 * entry): index is its 0-based position in the events passed, code
 * "bad_request" or "too_large", message the server's reason.  Both strings
 * are NUL-terminated (cut at 255 bytes) and valid only during the call. */
typedef void (*ls_track_rejected_fn)(void *arg, size_t index, const char *code, const char *message);

/* ls_client_track, and when the server answers, on_rejected (may be NULL)
 * is called with arg for each rejected event, in index order, before the
 * call returns LS_OK (an entry without a valid index is counted in
 * out->rejected but not passed on).  Nothing is called on a failure. */
LS_API int ls_client_track_each(ls_client *c, const ls_client_event *events, size_t n, ls_track_result *out,
                                ls_track_rejected_fn on_rejected, void *arg);

/* Scores one customer (unknown ones get the cold-start score) into *out,
 * which is overwritten (zeroed first, also on failure): release it with
 * ls_score_free. */
LS_API int ls_client_score(ls_client *c, const char *customer, ls_score *out);

/* Frees what a score call allocated in *s (actions, segments) and zeroes
 * it; s may be NULL. */
LS_API void ls_score_free(ls_score *s);

/* ---- reads as of a time ----
 * now_ms is the Unix epoch time, in ms, a read is made as of: the
 * customer's features are replayed from its event history up to then, so
 * a customer first seen later is unknown.  now_ms <= 0 means "now, by the
 * server's clock", as the plain calls do. */

/* ls_client_score as of now_ms. */
LS_API int ls_client_score_at(ls_client *c, const char *customer, int64_t now_ms, ls_score *out);

/* A customer's raw feature values (the profile op) as of now_ms.  *reply
 * is the whole reply map as msgpack ({"customer", "known", "features":
 * {name: value}, "top_categories", ...}), malloc'd: free() it; read one
 * value with ls_client_profile_value.  On an error reply *reply holds that
 * reply (free it too); on other failures it is NULL. */
LS_API int ls_client_profile(ls_client *c, const char *customer, int64_t now_ms, void **reply, size_t *reply_len);

/* The content segments to show a customer (the recommend op) as of
 * now_ms; k <= 0 takes the model's default.  *reply as ls_client_profile. */
LS_API int ls_client_recommend(ls_client *c, const char *customer, int k, int64_t now_ms, void **reply,
                               size_t *reply_len);

/* Reads features[name] out of a profile reply into *value: LS_OK, or
 * LS_ENOTFOUND when the reply holds no such number, or LS_EPARSE when it
 * is not a profile reply. */
LS_API int ls_client_profile_value(const void *reply, size_t reply_len, const char *name, double *value);

/* Round trip with the server; version (if not NULL) gets its version. */
LS_API int ls_client_ping(ls_client *c, char *version, size_t cap);

/* Generic call: sends {"op": op, "id": <auto>, <fields>} where fields is
 * msgpack holding nfields key/value pairs (may be NULL with 0), and returns
 * the whole reply map as msgpack in *reply (malloc'd; free() it, also
 * when the reply is an error).  The status is that of the reply: LS_OK
 * when "ok" is true; *reply is NULL when no reply came. */
LS_API int ls_client_call(ls_client *c, const char *op, const void *fields, size_t fields_len,
                          uint32_t nfields, void **reply, size_t *reply_len);

/* The server's message for the last failed call, or a local one. */
LS_API const char *ls_client_last_error(const ls_client *c);

#ifdef __cplusplus
}
#endif
#endif
