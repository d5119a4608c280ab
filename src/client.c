/* client.c -- the C client library (include/leadscore/client.h): DEALER
 * sockets that speak the REQ envelope, stamp every request with an id and
 * drop any late reply whose id is not the one they wait for.
 *
 * Given one endpoint the client talks to it alone, exactly as it always
 * did.  Given a comma-separated list of a cluster's nodes it routes: the
 * first call asks the listed nodes for the partition map (op `cluster`,
 * the first answer wins), and from then on a read of one customer goes to
 * the owner of the customer's partition (to its standby when the owner
 * does not answer), a track batch and a batched score are split by node
 * and the replies merged, and any other op goes to the node that answered.
 * A socket per node is connected on first use and kept. */
#include "leadscore/client.h"

#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "partition.h"

/* The partition function of docs/PROTOCOL.md ("Cluster mode") is
 * partition.c's, linked into libleadscore.so (hidden: not exported). */
#define CLUSTER_HASH PARTITION_HASH_NAME
#define CLUSTER_MAX_PARTS PARTITION_MAX
#define MAX_CONNS 256   /* endpoints listed plus those the map names */
#define ERROR_CAP 512
#define SILENT_MS 10000 /* a node that let a call time out is tried second for this long */

/* How a client sends its requests. */
enum {
    ROUTE_ONE,      /* one endpoint: everything goes there (no `cluster` op, ever) */
    ROUTE_UNKNOWN,  /* several endpoints, the map not asked for yet */
    ROUTE_HOME,     /* the nodes are no cluster: everything goes to home */
    ROUTE_CLUSTER   /* reads and writes to the partitions' nodes, the rest to home */
};

typedef struct {
    char *endpoint;
    void *sock;             /* NULL until first used */
    int64_t silent_until;   /* (mono_ms) it did not answer in time: its partitions' other node first */
} conn;

struct ls_client {
    void *ctx;
    int timeout_ms;
    uint64_t next_id;
    msgpack_sbuffer req;    /* the request being built (or a part of one) */
    msgpack_sbuffer orig;   /* several endpoints: the caller's whole request while it is routed */
    char error[ERROR_CAP];
    int secure;
    char keys[3][41];       /* CurveZMQ: server public, client public, client secret */
    conn *conns;            /* [0, nlisted): the endpoints given; then those the map named */
    size_t nconns, nlisted;
    int route;
    size_t home;            /* the node that answered the map request */
    int stale;              /* ask for the map again before the next call */
    uint64_t epoch;
    uint32_t nparts;
    int32_t *owner;         /* per partition: index into conns, -1 for none */
    int32_t *standby;
};

static int local_error(ls_client *c, int status, const char *msg)
{
    snprintf(c->error, sizeof c->error, "%s", msg);
    return status;
}

static int connect_with(ls_client **out, const char *endpoint, int timeout_ms, const char *const keys[3]);

int ls_client_connect(ls_client **out, const char *endpoint, int timeout_ms)
{
    if (!out)
        return LS_EINVAL;
    return connect_with(out, endpoint, timeout_ms, NULL);
}

int ls_client_connect_secure(ls_client **out, const char *endpoint, int timeout_ms, const char *server_public,
                             const char *client_public, const char *client_secret)
{
    const char *keys[3] = {server_public, client_public, client_secret};
    if (!out)
        return LS_EINVAL;
    *out = NULL;
    for (int i = 0; i < 3; i++)
        if (!keys[i] || strlen(keys[i]) != 40)
            return LS_EINVAL;
    return connect_with(out, endpoint, timeout_ms, keys);
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/* Sets the CURVE client options (before connect). */
static int set_curve(void *sock, const char keys[3][41])
{
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, keys[0], 40) ||
           zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys[1], 40) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys[2], 40);
}

/* The socket of connection k, made and connected on first use; NULL (and
 * c->error) when that fails. */
static void *conn_sock(ls_client *c, size_t k)
{
    conn *n = &c->conns[k];
    int zero = 0;
    if (n->sock)
        return n->sock;
    void *s = zmq_socket(c->ctx, ZMQ_DEALER);
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &c->timeout_ms, sizeof c->timeout_ms) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &c->timeout_ms, sizeof c->timeout_ms) != 0 ||
        (c->secure && set_curve(s, c->keys)) || zmq_connect(s, n->endpoint) != 0) {
        if (s)
            zmq_close(s);
        snprintf(c->error, sizeof c->error, "cannot connect to \"%s\"", n->endpoint);
        return NULL;
    }
    n->sock = s;
    return s;
}

/* The index of the connection to endpoint[0, len), or -1. */
static int32_t conn_index(const ls_client *c, const char *endpoint, size_t len)
{
    for (size_t k = 0; k < c->nconns; k++)
        if (strlen(c->conns[k].endpoint) == len && memcmp(c->conns[k].endpoint, endpoint, len) == 0)
            return (int32_t)k;
    return -1;
}

/* The index of the connection to endpoint[0, len), added when new; -1
 * when out of memory or past MAX_CONNS. */
static int32_t conn_find(ls_client *c, const char *endpoint, size_t len)
{
    int32_t found = conn_index(c, endpoint, len);
    if (found >= 0)
        return found;
    if (c->nconns >= MAX_CONNS)
        return -1;
    conn *grown = realloc(c->conns, (c->nconns + 1) * sizeof *grown);
    char *copy = malloc(len + 1);
    if (grown)
        c->conns = grown;
    if (!grown || !copy) {
        free(copy);
        return -1;
    }
    memcpy(copy, endpoint, len);
    copy[len] = '\0';
    c->conns[c->nconns] = (conn){copy, NULL, 0};
    return (int32_t)c->nconns++;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Adds the endpoints of a comma-separated list (blanks around each are
 * dropped); one without a comma is taken as it is. */
static int add_listed(ls_client *c, const char *list)
{
    if (!list || !*list)
        return LS_EINVAL;
    size_t items = 1;
    for (const char *p = list; *p; p++)
        items += *p == ',';
    if (items > MAX_CONNS) /* with room to spare for the nodes a map names */
        return local_error(c, LS_EINVAL, "too many endpoints in the list (at most 256)");
    if (!strchr(list, ','))
        return conn_find(c, list, strlen(list)) < 0 ? LS_ENOMEM : LS_OK;
    for (const char *at = list;; at++) {
        const char *end = strchr(at, ',');
        size_t len = end ? (size_t)(end - at) : strlen(at);
        while (len && is_blank(*at))
            at++, len--;
        while (len && is_blank(at[len - 1]))
            len--;
        if (len == 0)
            return LS_EINVAL;
        if (conn_find(c, at, len) < 0)
            return LS_ENOMEM;
        if (!end)
            return LS_OK;
        at = end;
    }
}

static int connect_with(ls_client **out, const char *endpoint, int timeout_ms, const char *const keys[3])
{
    *out = NULL;
    if (!endpoint)
        return LS_EINVAL;
    ls_client *c = calloc(1, sizeof *c);
    if (!c)
        return LS_ENOMEM;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->next_id = 1;
    msgpack_sbuffer_init(&c->req);
    msgpack_sbuffer_init(&c->orig);
    for (int i = 0; keys && i < 3; i++)
        memcpy(c->keys[i], keys[i], 41);
    c->secure = keys != NULL;
    c->ctx = zmq_ctx_new();
    int rc = c->ctx ? add_listed(c, endpoint) : LS_EINVAL;
    c->nlisted = c->nconns;
    c->route = c->nlisted == 1 ? ROUTE_ONE : ROUTE_UNKNOWN;
    if (rc == LS_OK && !conn_sock(c, 0))
        rc = LS_EINVAL;
    if (rc != LS_OK) {
        ls_client_close(&c);
        return rc == LS_ENOMEM ? LS_ENOMEM : LS_EINVAL;
    }
    *out = c;
    return LS_OK;
}

void ls_client_close(ls_client **cp)
{
    if (!cp || !*cp)
        return;
    ls_client *c = *cp;
    for (size_t k = 0; k < c->nconns; k++) {
        if (c->conns[k].sock)
            zmq_close(c->conns[k].sock);
        free(c->conns[k].endpoint);
    }
    free(c->conns);
    free(c->owner);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    msgpack_sbuffer_destroy(&c->req);
    msgpack_sbuffer_destroy(&c->orig);
    free(c);
    *cp = NULL;
}

const char *ls_client_last_error(const ls_client *c)
{
    if (!c)
        return "no client (NULL)";
    return c->error;
}

/* ------------------------------------------------------------------ */
/* Requests and replies                                                */
/* ------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int str_is(const msgpack_object *v, const char *s)
{
    size_t n = strlen(s);
    return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == n && memcmp(v->via.str.ptr, s, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

static int wire_status(const msgpack_object *code)
{
    static const struct { const char *code; int status; } map[] = {
        {"bad_request", LS_EBADREQ}, {"unknown_op", LS_EUNKNOWNOP}, {"too_large", LS_ETOOLARGE},
        {"unauthorized", LS_EUNAUTH}, {"unavailable", LS_EUNAVAIL}, {"internal", LS_EINTERNAL}};
    for (size_t i = 0; code && code->type == MSGPACK_OBJECT_STR && i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].code) == code->via.str.size && memcmp(map[i].code, code->via.str.ptr, code->via.str.size) == 0)
            return map[i].status;
    return LS_EREMOTE;
}

/* Reads the reply's ok / error into a status (and c->error). */
static int reply_status(ls_client *c, const msgpack_object *root)
{
    const msgpack_object *ok = map_get(root, "ok");
    if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN)
        return local_error(c, LS_EREMOTE, "malformed reply: no \"ok\"");
    if (ok->via.boolean)
        return LS_OK;
    const msgpack_object *err = map_get(root, "error");
    const msgpack_object *msg = err ? map_get(err, "message") : NULL;
    if (msg && msg->type == MSGPACK_OBJECT_STR) /* its length clamped first: a 2 GiB one is no negative int */
        snprintf(c->error, sizeof c->error, "%.*s",
                 (int)(msg->via.str.size < sizeof c->error ? msg->via.str.size : sizeof c->error - 1),
                 msg->via.str.ptr);
    else
        snprintf(c->error, sizeof c->error, "the server answered with an error");
    return wire_status(err ? map_get(err, "code") : NULL);
}

static uint32_t get_u32(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (uint32_t)v->via.u64 : 0;
}

/* 1 when the reply frame msg answers request id (or carries no id). */
static int reply_is_for(zmq_msg_t *msg, uint64_t id)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int mine = 0;
    if (msgpack_unpack_next(&up, zmq_msg_data(msg), zmq_msg_size(msg), NULL) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *rid = map_get(&up.data, "id");
        mine = !rid || (rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && rid->via.u64 == id);
    }
    msgpack_unpacked_destroy(&up);
    return mine;
}

/* Takes replies from sock until the one to id (into *msg): 1 then, 0 when
 * none came (within the receive timeout, or at once with ZMQ_DONTWAIT).
 * A late reply to an earlier, timed-out call is dropped. */
static int recv_reply(void *sock, uint64_t id, zmq_msg_t *msg, int flags)
{
    for (;;) {
        zmq_msg_t delim;
        zmq_msg_init(&delim);
        if (zmq_msg_recv(&delim, sock, flags) < 0) {
            zmq_msg_close(&delim);
            return 0;
        }
        int more = zmq_msg_more(&delim);
        zmq_msg_close(&delim);
        if (!more)
            continue;
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, sock, 0) < 0) {
            zmq_msg_close(msg);
            return 0;
        }
        if (reply_is_for(msg, id))
            return 1;
        zmq_msg_close(msg);
    }
}

/* Sends body as one request (after the empty delimiter) to connection k. */
static int send_to(ls_client *c, size_t k, const char *body, size_t len)
{
    void *sock = conn_sock(c, k);
    if (!sock)
        return LS_EINVAL;
    if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(sock, body, len, 0) < 0)
        return local_error(c, LS_ETIMEOUT, "cannot send the request to the server");
    return LS_OK;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* LS_ETIMEOUT: connection k did not answer in time.  Its socket goes
 * (LINGER 0): a reply the server sends later, which may carry no id (an
 * error to a request it could not parse), must not be taken for the next
 * call's, and a request still queued for a server that is down is not sent
 * when it comes back.  The next call on k connects afresh. */
static int timed_out(ls_client *c, size_t k)
{
    if (c->conns[k].sock) {
        zmq_close(c->conns[k].sock);
        c->conns[k].sock = NULL;
    }
    if (c->route == ROUTE_ONE)
        return local_error(c, LS_ETIMEOUT, "no reply from the server in time (is it running?)");
    c->stale = 1; /* the node may be gone: ask for the map again */
    c->conns[k].silent_until = mono_ms() + SILENT_MS;
    snprintf(c->error, sizeof c->error, "no reply from %s in time (is it running?)", c->conns[k].endpoint);
    return LS_ETIMEOUT;
}

/* Waits on connection k (already sent to) for the reply to id until
 * deadline (mono_ms): replies to other ids that come meanwhile do not
 * extend the wait.  A reply already there is taken even after the
 * deadline (one of several requests in flight). */
static int await_until(ls_client *c, size_t k, uint64_t id, zmq_msg_t *msg, int64_t deadline)
{
    zmq_pollitem_t item = {.socket = c->conns[k].sock, .events = ZMQ_POLLIN};
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (zmq_poll(&item, 1, left > 0 ? (long)left : 0) > 0 && recv_reply(item.socket, id, msg, ZMQ_DONTWAIT)) {
            c->conns[k].silent_until = 0;
            return LS_OK;
        }
        if (left <= 0)
            return timed_out(c, k);
    }
}

/* The same for one request: at most timeout_ms from now. */
static int await_reply(ls_client *c, size_t k, uint64_t id, zmq_msg_t *msg)
{
    return await_until(c, k, id, msg, mono_ms() + c->timeout_ms);
}

/* Sends body to connection k and waits for the reply to id. */
static int roundtrip(ls_client *c, size_t k, const msgpack_sbuffer *body, uint64_t id, zmq_msg_t *reply)
{
    int rc = send_to(c, k, body->data, body->size);
    return rc ? rc : await_reply(c, k, id, reply);
}

static uint64_t begin_request(ls_client *c, msgpack_packer *pk, const char *op, uint32_t nfields)
{
    uint64_t id = c->next_id++;
    c->req.size = 0;
    msgpack_packer_init(pk, &c->req, msgpack_sbuffer_write);
    msgpack_pack_map(pk, nfields + 2);
    pack_str(pk, "op");
    pack_str(pk, op);
    pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    return id;
}

/* ------------------------------------------------------------------ */
/* The cluster map                                                     */
/* ------------------------------------------------------------------ */

/* The connection of an endpoint string of the map: -1 for "" (none), -2
 * when out of memory. */
static int32_t map_conn(ls_client *c, const msgpack_object *ep)
{
    if (!ep || ep->type != MSGPACK_OBJECT_STR || ep->via.str.size == 0)
        return -1;
    int32_t k = conn_find(c, ep->via.str.ptr, ep->via.str.size);
    return k < 0 ? -2 : k;
}

/* Drops the map (the route no longer uses one). */
static void forget_map(ls_client *c)
{
    free(c->owner);
    c->owner = c->standby = NULL;
    c->nparts = 0;
}

/* Closes the connections the client no longer needs: those neither listed
 * nor marked in keep[]. Called with no map held (nothing else refers to
 * them). A node replaced at a rolling restart comes back with a new
 * address; without this the old ones would pile up until a new map could
 * not be kept. */
static void conns_prune(ls_client *c, const uint8_t keep[MAX_CONNS])
{
    size_t kept = c->nlisted;
    for (size_t k = c->nlisted; k < c->nconns; k++) {
        if (keep[k]) {
            c->conns[kept++] = c->conns[k];
            continue;
        }
        if (c->conns[k].sock)
            zmq_close(c->conns[k].sock);
        free(c->conns[k].endpoint);
    }
    c->nconns = kept;
}

/* Routes everything to the node `from` (it forwards what it does not
 * hold), with no map and no connection beyond those listed. */
static void route_home(ls_client *c, size_t from)
{
    uint8_t keep[MAX_CONNS] = {0};
    forget_map(c);
    conns_prune(c, keep);
    c->route = ROUTE_HOME;
    c->home = from;
}

/* Marks in keep[] the known connections an array of endpoints names. */
static void mark_named(const ls_client *c, const msgpack_object *eps, uint8_t keep[MAX_CONNS])
{
    for (uint32_t i = 0; eps && i < eps->via.array.size; i++) {
        const msgpack_object *ep = &eps->via.array.ptr[i];
        int32_t k = ep->type == MSGPACK_OBJECT_STR ? conn_index(c, ep->via.str.ptr, ep->via.str.size) : -1;
        if (k >= 0)
            keep[k] = 1;
    }
}

/* Takes a `cluster` reply of mode "cluster" as the client's map; the
 * connections of nodes no longer named are closed first, so a map may
 * name up to 256 endpoints (the listed ones included) whatever the maps
 * before it named. */
static int adopt_cluster(ls_client *c, size_t from, const msgpack_object *root)
{
    const msgpack_object *owners = map_get(root, "owners"), *standbys = map_get(root, "standbys");
    uint32_t n = get_u32(root, "partitions");
    uint8_t keep[MAX_CONNS] = {0};
    if (!str_is(map_get(root, "hash"), CLUSTER_HASH)) {
        route_home(c, from); /* a partition function this library does not know: the node forwards */
        return LS_OK;
    }
    if (n == 0 || n > CLUSTER_MAX_PARTS || !owners || owners->type != MSGPACK_OBJECT_ARRAY ||
        owners->via.array.size != n)
        return local_error(c, LS_EREMOTE, "malformed `cluster` reply: no owner per partition");
    if (standbys && (standbys->type != MSGPACK_OBJECT_ARRAY || standbys->via.array.size != n))
        standbys = NULL;
    int32_t *own = malloc(2 * (size_t)n * sizeof *own);
    if (!own)
        return local_error(c, LS_ENOMEM, "out of memory reading the cluster map");
    mark_named(c, owners, keep);
    mark_named(c, standbys, keep);
    forget_map(c);
    conns_prune(c, keep);
    int32_t *sb = own + n, bad = 0;
    for (uint32_t p = 0; p < n; p++) {
        own[p] = map_conn(c, &owners->via.array.ptr[p]);
        sb[p] = standbys ? map_conn(c, &standbys->via.array.ptr[p]) : -1;
        bad |= own[p] == -2 || sb[p] == -2;
    }
    if (bad) {
        free(own);
        route_home(c, from); /* the old map is gone: the node forwards */
        return local_error(c, LS_ENOMEM, "cannot keep the cluster map (out of memory, or more than 256 nodes)");
    }
    c->owner = own;
    c->standby = sb;
    c->nparts = n;
    c->epoch = get_u32(root, "epoch");
    c->route = ROUTE_CLUSTER;
    c->home = from;
    return LS_OK;
}

/* Takes one node's answer to the `cluster` request: LS_OK when the client
 * now knows how to route, else why not (c->error). */
static int adopt_answer(ls_client *c, size_t from, zmq_msg_t *msg)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = LS_EREMOTE;
    if (msgpack_unpack_next(&up, zmq_msg_data(msg), zmq_msg_size(msg), NULL) != MSGPACK_UNPACK_SUCCESS)
        local_error(c, LS_EREMOTE, "the reply is not msgpack");
    else if ((rc = reply_status(c, &up.data)) == LS_OK && str_is(map_get(&up.data, "mode"), "cluster"))
        rc = adopt_cluster(c, from, &up.data);
    else if (rc == LS_OK || rc == LS_EUNKNOWNOP) { /* a single node (or one older than cluster mode) */
        route_home(c, from);
        rc = LS_OK;
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Asks every listed endpoint for the map at once and adopts the first
 * usable answer (within the timeout). */
static int discover(ls_client *c)
{
    msgpack_packer pk;
    zmq_pollitem_t *items = calloc(c->nlisted, sizeof *items);
    size_t *from = calloc(c->nlisted, sizeof *from), n = 0, answered = 0;
    if (!items || !from) {
        free(items);
        free(from);
        return local_error(c, LS_ENOMEM, "out of memory");
    }
    uint64_t id = begin_request(c, &pk, "cluster", 0);
    for (size_t k = 0; k < c->nlisted; k++)
        if (send_to(c, k, c->req.data, c->req.size) == LS_OK) {
            items[n] = (zmq_pollitem_t){.socket = c->conns[k].sock, .events = ZMQ_POLLIN};
            from[n++] = k;
        }
    int rc = n ? LS_ETIMEOUT : LS_EINVAL;
    const int64_t deadline = mono_ms() + c->timeout_ms;
    c->stale = 0;
    for (int64_t left = c->timeout_ms; rc != LS_OK && answered < n && left > 0; left = deadline - mono_ms()) {
        if (zmq_poll(items, (int)n, (long)left) < 0)
            continue; /* EINTR: the deadline still holds */
        for (size_t i = 0; i < n && rc != LS_OK; i++) {
            zmq_msg_t msg;
            if (!(items[i].revents & ZMQ_POLLIN) || !recv_reply(items[i].socket, id, &msg, ZMQ_DONTWAIT))
                continue;
            rc = adopt_answer(c, from[i], &msg);
            zmq_msg_close(&msg);
            c->conns[from[i]].silent_until = 0;
            items[i].events = 0; /* one answer per node */
            answered++;
        }
    }
    if (rc == LS_ETIMEOUT)
        snprintf(c->error, sizeof c->error, "no reply from any of the %zu endpoints in time (are they running?)",
                 c->nlisted);
    free(items);
    free(from);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Routing a request in cluster mode                                   */
/* ------------------------------------------------------------------ */

/* What is routed, and how. */
enum {
    KIND_READ_ONE = 1,  /* score / profile / recommend of "customer": to the owner, else the standby */
    KIND_READ_MANY,     /* score of "customers": split by node, the results merged in order */
    KIND_TRACK          /* track: split by node, the counts summed */
};

/* One request to one node: the whole request, or the elements items[0, n)
 * of the split array. */
typedef struct {
    int32_t ep;             /* the connection it goes to */
    int whole;              /* the caller's request as it is (with its id) */
    int dropped;            /* it failed and its elements went to the standbys */
    uint32_t *items;
    uint32_t n;
    uint64_t id;
    int rc;                 /* LS_OK once reply holds its answer */
    char why[ERROR_CAP];    /* c->error of a failed part */
    zmq_msg_t reply;
    msgpack_unpacked up;    /* the reply, parsed */
} part;

typedef struct {
    msgpack_unpacked req;           /* the caller's request (pointing into c->orig) */
    const msgpack_object *split;    /* the array split by node; NULL for KIND_READ_ONE */
    int kind;
    uint64_t id;                    /* the caller's request id */
    int32_t alt;                    /* KIND_READ_ONE: the other node of the partition */
    int64_t now;                    /* mono_ms when planned */
    uint32_t *slots;                /* 2n: the items of the parts, then of the standbys' parts */
    int32_t *eps;                   /* n: an element's connection */
    uint32_t *elems;                /* n: elements to place */
    part *parts;
    size_t nparts, cap;
} plan;

/* The route of a request: its kind, and the customer id it has or the
 * array to split (NULL kind 0: not routed). */
static int route_kind(const char *op, const msgpack_object *req, const msgpack_object **one,
                      const msgpack_object **many)
{
    int read = !strcmp(op, "score") || !strcmp(op, "profile") || !strcmp(op, "recommend");
    *one = read ? map_get(req, "customer") : NULL;
    *many = !strcmp(op, "score") ? map_get(req, "customers") : !strcmp(op, "track") ? map_get(req, "events") : NULL;
    if (*one && (*one)->type == MSGPACK_OBJECT_STR)
        return KIND_READ_ONE;
    if (*one || !*many || (*many)->type != MSGPACK_OBJECT_ARRAY || (*many)->via.array.size == 0)
        return 0; /* the node says what is wrong with it */
    return read ? KIND_READ_MANY : KIND_TRACK;
}

/* The partition of a customer id, or -1 when it is not a string. */
static int64_t partition_of_id(const ls_client *c, const msgpack_object *id)
{
    if (!id || id->type != MSGPACK_OBJECT_STR)
        return -1;
    return (int64_t)partition_of(id->via.str.ptr, id->via.str.size, c->nparts);
}

/* The customer of element i of the split array. */
static const msgpack_object *element_customer(const plan *pl, uint32_t i)
{
    const msgpack_object *e = &pl->split->via.array.ptr[i];
    return pl->kind == KIND_TRACK ? map_get(e, "customer") : e;
}

static int heard_lately(const ls_client *c, int32_t k, int64_t now)
{
    return k >= 0 && c->conns[k].silent_until <= now;
}

/* Where a customer's request goes first: its partition's owner, else its
 * standby (also when the owner did not answer lately and the standby did),
 * else home. */
static int32_t first_node(const ls_client *c, const msgpack_object *customer, int64_t now)
{
    int64_t p = partition_of_id(c, customer);
    if (p < 0)
        return (int32_t)c->home;
    int32_t o = c->owner[p], s = c->standby[p];
    if (o >= 0 && (heard_lately(c, o, now) || !heard_lately(c, s, now)))
        return o;
    return s >= 0 ? s : (int32_t)c->home;
}

/* The partition's node that is not ep (owner or standby), or -1. */
static int32_t other_node(const ls_client *c, int64_t p, int32_t ep)
{
    if (p < 0)
        return -1;
    return ep == c->owner[p] ? c->standby[p] : ep == c->standby[p] ? c->owner[p] : -1;
}

static part *new_part(plan *pl, int32_t ep)
{
    if (pl->nparts == pl->cap) {
        size_t cap = pl->cap ? 2 * pl->cap : 4;
        part *grown = realloc(pl->parts, cap * sizeof *grown);
        if (!grown)
            return NULL;
        pl->parts = grown;
        pl->cap = cap;
    }
    part *pt = &pl->parts[pl->nparts++];
    memset(pt, 0, sizeof *pt);
    pt->ep = ep;
    zmq_msg_init(&pt->reply);
    msgpack_unpacked_init(&pt->up);
    return pt;
}

/* The part of [first, nparts) going to ep, or NULL. */
static part *part_to(plan *pl, size_t first, int32_t ep)
{
    for (size_t k = first; k < pl->nparts; k++)
        if (pl->parts[k].ep == ep)
            return &pl->parts[k];
    return NULL;
}

/* Adds one part per node of eps[0, m), in order of first appearance,
 * holding the elements elems[i] going there (laid out in store). */
static int add_parts(plan *pl, const uint32_t *elems, const int32_t *eps, uint32_t m, uint32_t *store)
{
    size_t first = pl->nparts;
    uint32_t off = 0;
    for (uint32_t i = 0; i < m; i++) {
        part *pt = part_to(pl, first, eps[i]);
        if (!pt && !(pt = new_part(pl, eps[i])))
            return LS_ENOMEM;
        pt->n++;
    }
    for (size_t k = first; k < pl->nparts; k++) {
        pl->parts[k].items = store + off;
        off += pl->parts[k].n;
        pl->parts[k].n = 0;
    }
    for (uint32_t i = 0; i < m; i++) {
        part *pt = part_to(pl, first, eps[i]);
        pt->items[pt->n++] = elems[i];
    }
    return LS_OK;
}

/* Plans the request in c->orig: 1 when it is routed, 0 when it goes to
 * home as it is, or a negative status. */
static int make_plan(ls_client *c, const char *op, uint64_t id, plan *pl)
{
    const msgpack_object *one, *many;
    pl->id = id;
    pl->now = mono_ms();
    if (c->route != ROUTE_CLUSTER ||
        msgpack_unpack_next(&pl->req, c->orig.data, c->orig.size, NULL) != MSGPACK_UNPACK_SUCCESS ||
        !(pl->kind = route_kind(op, &pl->req.data, &one, &many)))
        return 0;
    if (pl->kind == KIND_READ_ONE) {
        part *pt = new_part(pl, first_node(c, one, pl->now));
        if (!pt)
            return LS_ENOMEM;
        pt->whole = 1;
        pl->alt = other_node(c, partition_of_id(c, one), pt->ep);
        return 1;
    }
    uint32_t n = many->via.array.size;
    pl->split = many;
    pl->slots = malloc(4 * (size_t)n * sizeof *pl->slots);
    if (!pl->slots)
        return LS_ENOMEM;
    pl->eps = (int32_t *)(pl->slots + 2 * (size_t)n);
    pl->elems = pl->slots + 3 * (size_t)n;
    for (uint32_t i = 0; i < n; i++) {
        pl->elems[i] = i;
        pl->eps[i] = first_node(c, element_customer(pl, i), pl->now);
    }
    if (add_parts(pl, pl->elems, pl->eps, n, pl->slots) != LS_OK)
        return LS_ENOMEM;
    pl->parts[0].whole = pl->nparts == 1;
    return 1;
}

static void init_plan(plan *pl)
{
    memset(pl, 0, sizeof *pl);
    msgpack_unpacked_init(&pl->req);
}

static void free_plan(plan *pl)
{
    for (size_t k = 0; k < pl->nparts; k++) {
        msgpack_unpacked_destroy(&pl->parts[k].up);
        zmq_msg_close(&pl->parts[k].reply);
    }
    free(pl->parts);
    free(pl->slots);
    msgpack_unpacked_destroy(&pl->req);
}

/* Packs the part's request into c->req: the caller's, with the part's id
 * and only its elements of the split array. */
static void pack_part(ls_client *c, const plan *pl, const part *pt)
{
    const msgpack_object *root = &pl->req.data;
    msgpack_packer pk;
    c->req.size = 0;
    msgpack_packer_init(&pk, &c->req, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, root->via.map.size);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr[i];
        msgpack_pack_object(&pk, kv->key);
        if (str_is(&kv->key, "id")) {
            msgpack_pack_uint64(&pk, pt->id);
        } else if (&kv->val == pl->split) {
            msgpack_pack_array(&pk, pt->n);
            for (uint32_t j = 0; j < pt->n; j++)
                msgpack_pack_object(&pk, pl->split->via.array.ptr[pt->items[j]]);
        } else {
            msgpack_pack_object(&pk, kv->val);
        }
    }
}

static void part_failed(ls_client *c, part *pt, int rc)
{
    pt->rc = rc;
    memcpy(pt->why, c->error, sizeof pt->why);
}

/* Sends parts [from, nparts). */
static void send_parts(ls_client *c, plan *pl, size_t from)
{
    for (size_t k = from; k < pl->nparts; k++) {
        part *pt = &pl->parts[k];
        int rc;
        if (pt->whole) {
            pt->id = pl->id;
            rc = send_to(c, (size_t)pt->ep, c->orig.data, c->orig.size);
        } else {
            pt->id = c->next_id++;
            pack_part(c, pl, pt);
            rc = send_to(c, (size_t)pt->ep, c->req.data, c->req.size);
        }
        if (rc)
            part_failed(c, pt, rc);
    }
}

/* Waits (at most the timeout in all) for the replies of the parts
 * [from, nparts) that went out. */
static void gather_parts(ls_client *c, plan *pl, size_t from)
{
    const int64_t deadline = mono_ms() + c->timeout_ms;
    for (size_t k = from; k < pl->nparts; k++) {
        part *pt = &pl->parts[k];
        if (pt->rc)
            continue; /* it could not be sent */
        int rc = await_until(c, (size_t)pt->ep, pt->id, &pt->reply, deadline);
        if (rc == LS_OK && msgpack_unpack_next(&pt->up, zmq_msg_data(&pt->reply), zmq_msg_size(&pt->reply), NULL) !=
                               MSGPACK_UNPACK_SUCCESS)
            rc = local_error(c, LS_EREMOTE, "the reply is not msgpack");
        if (rc)
            part_failed(c, pt, rc);
    }
}

/* Reads whose node did not answer (or could not be reached) go to the
 * other node of each element's partition (the standby, or the owner when
 * the standby was asked first); a part with an element that has none
 * stays failed. */
static int fail_over(ls_client *c, plan *pl)
{
    size_t end = pl->nparts, m = 0;
    for (size_t k = 0; k < end; k++) {
        part *pt = &pl->parts[k];
        int lost = pt->rc == LS_ETIMEOUT || pt->rc == LS_EINVAL;
        for (uint32_t j = 0; lost && pl->split && j < pt->n; j++)
            lost = other_node(c, partition_of_id(c, element_customer(pl, pt->items[j])), pt->ep) >= 0;
        if (!lost || (!pl->split && pl->alt < 0))
            continue;
        pt->dropped = 1;
        for (uint32_t j = 0; pl->split && j < pt->n; j++) {
            pl->elems[m] = pt->items[j];
            pl->eps[m++] = other_node(c, partition_of_id(c, element_customer(pl, pt->items[j])), pt->ep);
        }
    }
    if (!pl->split && pl->parts[0].dropped) {
        part *pt = new_part(pl, pl->alt);
        if (!pt)
            return LS_ENOMEM;
        pt->whole = 1;
    } else if (m && add_parts(pl, pl->elems, pl->eps, (uint32_t)m, pl->slots + pl->split->via.array.size) != LS_OK) {
        return LS_ENOMEM;
    }
    send_parts(c, pl, end);
    gather_parts(c, pl, end);
    return LS_OK;
}

/* ---- merging the parts' replies ---- */

/* A reply's entry and the index of the request element it is about. */
typedef struct {
    const msgpack_object *obj;
    uint32_t index;     /* in the caller's request */
} placed;

static int by_index(const void *a, const void *b)
{
    const placed *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* "results": every part's results, in the order of the request. */
static int merge_results(ls_client *c, const plan *pl, msgpack_packer *pk)
{
    uint32_t n = pl->split->via.array.size;
    const msgpack_object **at = calloc(n ? n : 1, sizeof *at);
    if (!at)
        return local_error(c, LS_ENOMEM, "out of memory merging the replies");
    for (size_t k = 0; k < pl->nparts; k++) {
        const part *pt = &pl->parts[k];
        const msgpack_object *res = pt->dropped ? NULL : map_get(&pt->up.data, "results");
        if (pt->dropped)
            continue;
        if (!res || res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != pt->n) {
            free(at);
            return local_error(c, LS_EREMOTE, "malformed reply to a batch: not one result per customer");
        }
        for (uint32_t j = 0; j < pt->n; j++)
            at[pt->items[j]] = &res->via.array.ptr[j];
    }
    for (uint32_t i = 0; i < n; i++)
        if (!at[i]) {
            free(at);
            return local_error(c, LS_EINTERNAL, "a customer of the batch got no result");
        }
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_object(pk, *at[i]);
    free(at);
    return LS_OK;
}

/* "rejected": every part's entries, their "index" made the request's, in
 * the order of the request. */
static int merge_rejected(ls_client *c, const plan *pl, msgpack_packer *pk)
{
    size_t total = 0, m = 0;
    for (size_t k = 0; k < pl->nparts; k++) {
        const msgpack_object *rej = pl->parts[k].dropped ? NULL : map_get(&pl->parts[k].up.data, "rejected");
        total += rej && rej->type == MSGPACK_OBJECT_ARRAY ? rej->via.array.size : 0;
    }
    placed *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return local_error(c, LS_ENOMEM, "out of memory merging the replies");
    for (size_t k = 0; k < pl->nparts; k++) {
        const part *pt = &pl->parts[k];
        const msgpack_object *rej = pt->dropped ? NULL : map_get(&pt->up.data, "rejected");
        for (uint32_t j = 0; rej && rej->type == MSGPACK_OBJECT_ARRAY && j < rej->via.array.size; j++) {
            uint32_t idx = get_u32(&rej->via.array.ptr[j], "index");
            all[m++] = (placed){&rej->via.array.ptr[j], idx < pt->n ? pt->items[idx] : idx};
        }
    }
    qsort(all, m, sizeof *all, by_index);
    msgpack_pack_array(pk, m);
    for (size_t i = 0; i < m; i++) {
        const msgpack_object *e = all[i].obj;
        if (e->type != MSGPACK_OBJECT_MAP) {
            msgpack_pack_object(pk, *e);
            continue;
        }
        msgpack_pack_map(pk, e->via.map.size);
        for (uint32_t j = 0; j < e->via.map.size; j++) {
            msgpack_pack_object(pk, e->via.map.ptr[j].key);
            if (str_is(&e->via.map.ptr[j].key, "index"))
                msgpack_pack_uint32(pk, all[i].index);
            else
                msgpack_pack_object(pk, e->via.map.ptr[j].val);
        }
    }
    free(all);
    return LS_OK;
}

/* A map key of every live part's map at key, one after the other ("log":
 * the partitions of the parts are distinct). */
static void merge_maps(const plan *pl, const char *key, msgpack_packer *pk)
{
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            msgpack_pack_map(pk, n);
        for (size_t k = 0; k < pl->nparts; k++) {
            const msgpack_object *m = pl->parts[k].dropped ? NULL : map_get(&pl->parts[k].up.data, key);
            for (uint32_t j = 0; m && m->type == MSGPACK_OBJECT_MAP && j < m->via.map.size; j++) {
                if (pass == 0)
                    n++;
                else
                    msgpack_pack_object(pk, m->via.map.ptr[j].key), msgpack_pack_object(pk, m->via.map.ptr[j].val);
            }
        }
    }
}

static void sum_counts(const plan *pl, const char *key, msgpack_packer *pk)
{
    uint64_t sum = 0;
    for (size_t k = 0; k < pl->nparts; k++)
        if (!pl->parts[k].dropped)
            sum += get_u32(&pl->parts[k].up.data, key);
    msgpack_pack_uint64(pk, sum);
}

/* One value of the merged reply: key of the first live part's reply. */
static int merge_value(ls_client *c, const plan *pl, const msgpack_object_kv *kv, msgpack_packer *pk)
{
    const msgpack_object *key = &kv->key;
    if (str_is(key, "id"))
        msgpack_pack_uint64(pk, pl->id);
    else if (pl->kind == KIND_READ_MANY && str_is(key, "results"))
        return merge_results(c, pl, pk);
    else if (pl->kind == KIND_TRACK && str_is(key, "accepted"))
        sum_counts(pl, "accepted", pk);
    else if (pl->kind == KIND_TRACK && str_is(key, "duplicates"))
        sum_counts(pl, "duplicates", pk);
    else if (pl->kind == KIND_TRACK && str_is(key, "rejected"))
        return merge_rejected(c, pl, pk);
    else if (pl->kind == KIND_TRACK && str_is(key, "log"))
        merge_maps(pl, "log", pk);
    else
        msgpack_pack_object(pk, kv->val);
    return LS_OK;
}

static void free_sbuffer_data(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* The live parts' replies as one reply to the caller's request, in *out. */
static int merge_parts(ls_client *c, const plan *pl, zmq_msg_t *out)
{
    const part *first = NULL;
    for (size_t k = 0; k < pl->nparts && !first; k++)
        first = pl->parts[k].dropped ? NULL : &pl->parts[k];
    const msgpack_object *root = &first->up.data;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc = LS_OK;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, root->via.map.size);
    for (uint32_t i = 0; i < root->via.map.size && rc == LS_OK; i++) {
        msgpack_pack_object(&pk, root->via.map.ptr[i].key);
        rc = merge_value(c, pl, &root->via.map.ptr[i], &pk);
    }
    if (rc == LS_OK && (!sb.data || zmq_msg_init_data(out, sb.data, sb.size, free_sbuffer_data, NULL) != 0))
        rc = local_error(c, LS_ENOMEM, "out of memory merging the replies");
    if (rc == LS_OK)
        msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* The call's outcome from its parts: the first failure (a part that got
 * no reply: its status; an error reply: that reply, status in *status),
 * else the one reply or the merged replies in *out. */
static int conclude(ls_client *c, plan *pl, zmq_msg_t *out, int *status)
{
    part *only = NULL;
    size_t live = 0;
    for (size_t k = 0; k < pl->nparts; k++)
        if (!pl->parts[k].dropped && pl->parts[k].rc)
            return local_error(c, pl->parts[k].rc, pl->parts[k].why);
    for (size_t k = 0; k < pl->nparts; k++) {
        part *pt = &pl->parts[k];
        if (pt->dropped)
            continue;
        const msgpack_object *epoch = map_get(&pt->up.data, "map_epoch");
        if (epoch && epoch->type == MSGPACK_OBJECT_POSITIVE_INTEGER && epoch->via.u64 > c->epoch)
            c->stale = 1;
        only = pt;
        live++;
        if ((*status = reply_status(c, &pt->up.data)) != LS_OK)
            break;
    }
    if (!only)
        return local_error(c, LS_EINTERNAL, "no part of the request was answered");
    if (*status != LS_OK || (live == 1 && only->whole)) {
        zmq_msg_init(out);
        zmq_msg_move(out, &only->reply);
        return LS_OK;
    }
    return merge_parts(c, pl, out);
}

/* Sends the request in c->orig (with id) where the route says, waits for
 * its reply (or its parts') into *reply; a read refused by a node that
 * does not hold the partition is retried once on a fresh map. */
static int routed(ls_client *c, const char *op, uint64_t id, zmq_msg_t *reply, int may_retry)
{
    plan pl;
    int status = LS_OK;
    init_plan(&pl);
    int rc = make_plan(c, op, id, &pl);
    if (rc <= 0) {
        free_plan(&pl);
        return rc < 0 ? local_error(c, rc, "out of memory") : roundtrip(c, c->home, &c->orig, id, reply);
    }
    send_parts(c, &pl, 0);
    gather_parts(c, &pl, 0);
    rc = LS_OK;
    if (pl.kind != KIND_TRACK && (rc = fail_over(c, &pl)) != LS_OK)
        local_error(c, rc, "out of memory");
    if (rc == LS_OK)
        rc = conclude(c, &pl, reply, &status);
    int retry = rc == LS_OK && status == LS_EUNAVAIL && pl.kind != KIND_TRACK && may_retry &&
                strstr(c->error, "does not hold");
    free_plan(&pl);
    if (retry && discover(c) == LS_OK) {
        zmq_msg_close(reply);
        return routed(c, op, id, reply, 0);
    }
    return rc;
}

/* Sends the request begun with id (in c->req) and waits for its reply. */
static int exec(ls_client *c, const char *op, uint64_t id, zmq_msg_t *reply)
{
    if (c->route == ROUTE_ONE)
        return roundtrip(c, 0, &c->req, id, reply);
    msgpack_sbuffer swap = c->orig; /* c->req is free for the map request and the parts */
    c->orig = c->req;
    c->req = swap;
    if (c->route == ROUTE_UNKNOWN || c->stale) {
        int rc = discover(c);
        if (rc != LS_OK && c->route == ROUTE_UNKNOWN)
            return rc;
    }
    return routed(c, op, id, reply, 1);
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

/* Sends the request begun with id and hands back the whole reply map as
 * msgpack (malloc'd into *reply) with the reply's status. */
static int call_reply(ls_client *c, const char *op, uint64_t id, void **reply, size_t *reply_len)
{
    zmq_msg_t msg;
    *reply = NULL;
    *reply_len = 0;
    int rc = exec(c, op, id, &msg);
    if (rc)
        return rc;
    *reply_len = zmq_msg_size(&msg);
    *reply = malloc(*reply_len ? *reply_len : 1);
    if (!*reply) {
        zmq_msg_close(&msg);
        return LS_ENOMEM;
    }
    memcpy(*reply, zmq_msg_data(&msg), *reply_len);
    zmq_msg_close(&msg);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int parsed = msgpack_unpack_next(&up, *reply, *reply_len, NULL) == MSGPACK_UNPACK_SUCCESS;
    const msgpack_object *ok = parsed ? map_get(&up.data, "ok") : NULL;
    int is_reply = ok && ok->type == MSGPACK_OBJECT_BOOLEAN; /* an answer, if maybe an error */
    rc = parsed ? reply_status(c, &up.data) : local_error(c, LS_EREMOTE, "the reply is not msgpack");
    msgpack_unpacked_destroy(&up);
    if (!is_reply) { /* no reply map: the caller gets none (client.h) */
        free(*reply);
        *reply = NULL;
        *reply_len = 0;
    }
    return rc;
}

int ls_client_call(ls_client *c, const char *op, const void *fields, size_t fields_len,
                   uint32_t nfields, void **reply, size_t *reply_len)
{
    msgpack_packer pk;
    if (!c)
        return LS_EINVAL;
    if (reply)
        *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    if (!op || !reply || !reply_len || (fields_len && !fields))
        return local_error(c, LS_EINVAL, "ls_client_call: op, reply and reply_len are required, and fields when fields_len > 0");
    uint64_t id = begin_request(c, &pk, op, nfields);
    if (fields_len)
        msgpack_sbuffer_write(&c->req, fields, fields_len);
    return call_reply(c, op, id, reply, reply_len);
}

/* Calls op and hands the parsed reply root to fn. */
static int call_parsed(ls_client *c, const char *op, uint64_t id,
                       int (*fn)(ls_client *, const msgpack_object *, void *), void *arg)
{
    zmq_msg_t msg;
    int rc = exec(c, op, id, &msg);
    if (rc)
        return rc;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, zmq_msg_data(&msg), zmq_msg_size(&msg), NULL) != MSGPACK_UNPACK_SUCCESS)
        rc = local_error(c, LS_EREMOTE, "the reply is not msgpack");
    else if ((rc = reply_status(c, &up.data)) == LS_OK && fn)
        rc = fn(c, &up.data, arg);
    msgpack_unpacked_destroy(&up);
    zmq_msg_close(&msg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Typed calls                                                         */
/* ------------------------------------------------------------------ */

static uint32_t event_fields(const ls_client_event *e)
{
    const char *strs[] = {e->customer, e->type, e->event_id, e->session, e->product, e->category, e->order_id, e->birthday};
    uint32_t n = (e->ts_ms != 0) + (uint32_t)__builtin_popcount(e->has & 0x1f);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        n += strs[i] != NULL;
    return n;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    if (v) {
        pack_str(pk, k);
        pack_str(pk, v);
    }
}

static void pack_event(msgpack_packer *pk, const ls_client_event *e)
{
    msgpack_pack_map(pk, event_fields(e));
    pack_kv_str(pk, "customer", e->customer);
    pack_kv_str(pk, "type", e->type);
    pack_kv_str(pk, "event_id", e->event_id);
    pack_kv_str(pk, "session", e->session);
    pack_kv_str(pk, "product", e->product);
    pack_kv_str(pk, "category", e->category);
    pack_kv_str(pk, "order_id", e->order_id);
    pack_kv_str(pk, "birthday", e->birthday);
    if (e->ts_ms) { pack_str(pk, "ts"); msgpack_pack_int64(pk, e->ts_ms); }
    if (e->has & LS_HAS_PRICE) { pack_str(pk, "price"); msgpack_pack_double(pk, e->price); }
    if (e->has & LS_HAS_QUANTITY) { pack_str(pk, "quantity"); msgpack_pack_int64(pk, e->quantity); }
    if (e->has & LS_HAS_VALUE) { pack_str(pk, "value"); msgpack_pack_double(pk, e->value); }
    if (e->has & LS_HAS_DISCOUNTED) { pack_str(pk, "discounted"); e->discounted ? msgpack_pack_true(pk) : msgpack_pack_false(pk); }
    if (e->has & LS_HAS_RATING) { pack_str(pk, "rating"); msgpack_pack_int(pk, e->rating); }
}

/* Where read_track puts a track reply: the counts, and each rejected
 * event to the caller's function. */
typedef struct {
    ls_track_result *out;
    size_t n;                     /* events sent: a valid index is below it */
    ls_track_rejected_fn on_rejected;
    void *arg;
} track_reply;

static void copy_str(char *dst, size_t cap, const msgpack_object *v)
{
    dst[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR) {
        size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(dst, v->via.str.ptr, n);
        dst[n] = '\0';
    }
}

static int read_track(ls_client *c, const msgpack_object *root, void *arg)
{
    track_reply *t = arg;
    const msgpack_object *rej = map_get(root, "rejected");
    (void)c;
    t->out->accepted = get_u32(root, "accepted");
    t->out->duplicates = get_u32(root, "duplicates");
    t->out->rejected = rej && rej->type == MSGPACK_OBJECT_ARRAY ? rej->via.array.size : 0;
    for (uint32_t i = 0; t->on_rejected && i < t->out->rejected; i++) {
        const msgpack_object *e = &rej->via.array.ptr[i], *index = map_get(e, "index");
        char code[32], message[256];
        if (!index || index->type != MSGPACK_OBJECT_POSITIVE_INTEGER || index->via.u64 >= t->n)
            continue;
        copy_str(code, sizeof code, map_get(e, "code"));
        copy_str(message, sizeof message, map_get(e, "message"));
        t->on_rejected(t->arg, (size_t)index->via.u64, code, message);
    }
    return LS_OK;
}

int ls_client_track(ls_client *c, const ls_client_event *events, size_t n, ls_track_result *out)
{
    return ls_client_track_each(c, events, n, out, NULL, NULL);
}

int ls_client_track_each(ls_client *c, const ls_client_event *events, size_t n, ls_track_result *out,
                         ls_track_rejected_fn on_rejected, void *arg)
{
    msgpack_packer pk;
    ls_track_result ignored;
    if (out)
        memset(out, 0, sizeof *out); /* zero unless the service answers */
    if (!c)
        return LS_EINVAL;
    if (n && !events)
        return local_error(c, LS_EINVAL, "ls_client_track: events is NULL");
    if (n > UINT32_MAX)
        return local_error(c, LS_ETOOLARGE, "too many events");
    uint64_t id = begin_request(c, &pk, "track", 1);
    pack_str(&pk, "events");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        pack_event(&pk, &events[i]);
    track_reply t = {.out = out ? out : &ignored, .n = n, .on_rejected = on_rejected, .arg = arg};
    return call_parsed(c, "track", id, read_track, &t);
}

static double get_double(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    if (!v)
        return 0.0;
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
        return v->via.f64;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)v->via.u64;
    return v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64 : 0.0;
}

static int get_bool(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static int64_t get_i64(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    /* a float from a server that should not send one: NaN is 0, the
     * rest clamped into range (a cast out of range is undefined) */
    double d = get_double(root, key);
    if (isnan(d))
        return 0;
    if (d >= 9223372036854775808.0)
        return INT64_MAX;
    return d <= -9223372036854775808.0 ? INT64_MIN : (int64_t)d;
}

/* get_i64 clamped into an int. */
static int get_int(const msgpack_object *root, const char *key)
{
    int64_t v = get_i64(root, key);
    return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

/* A msgpack string's length, 0 for anything else. */
static size_t str_len(const msgpack_object *v)
{
    return v && v->type == MSGPACK_OBJECT_STR ? v->via.str.size : 0;
}

/* Copies a msgpack string (or "" for anything else) to *at, NUL-terminated,
 * and returns it; *at moves past it. */
static char *take_str(char **at, const msgpack_object *v)
{
    char *s = *at;
    size_t n = str_len(v);
    if (n)
        memcpy(s, v->via.str.ptr, n);
    s[n] = '\0';
    *at += n + 1;
    return s;
}

/* actions: one block holding the pointer array and the strings. */
static int read_actions(ls_client *c, const msgpack_object *arr, ls_score *out)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
        return LS_OK;
    size_t n = arr->via.array.size, bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += str_len(&arr->via.array.ptr[i]) + 1;
    char **list = malloc(bytes);
    if (!list)
        return local_error(c, LS_ENOMEM, "out of memory reading the score's actions");
    char *at = (char *)(list + n);
    for (size_t i = 0; i < n; i++)
        list[i] = take_str(&at, &arr->via.array.ptr[i]);
    out->actions = list;
    out->n_actions = n;
    return LS_OK;
}

/* segments: one block holding the ls_segment array and the strings. */
static int read_segments(ls_client *c, const msgpack_object *arr, ls_score *out)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
        return LS_OK;
    size_t n = arr->via.array.size, bytes = n * sizeof(ls_segment);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        bytes += str_len(map_get(e, "segment")) + 1 + str_len(map_get(e, "reason")) + 1;
    }
    ls_segment *list = malloc(bytes);
    if (!list)
        return local_error(c, LS_ENOMEM, "out of memory reading the score's segments");
    char *at = (char *)(list + n);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        list[i].segment = take_str(&at, map_get(e, "segment"));
        list[i].weight = get_double(e, "weight");
        list[i].reason = take_str(&at, map_get(e, "reason"));
    }
    out->segments = list;
    out->n_segments = n;
    return LS_OK;
}

static int read_score(ls_client *c, const msgpack_object *root, void *arg)
{
    ls_score *out = arg;
    copy_str(out->customer, sizeof out->customer, map_get(root, "customer"));
    out->known = get_bool(root, "known");
    out->score = get_double(root, "score");
    out->score_100 = get_int(root, "score_100");
    copy_str(out->tier, sizeof out->tier, map_get(root, "tier"));
    copy_str(out->model, sizeof out->model, map_get(root, "model"));
    out->p_alive = get_double(root, "p_alive");
    out->expected_purchases_30d = get_double(root, "expected_purchases_30d");
    out->clv = get_double(root, "clv");
    copy_str(out->customer_type, sizeof out->customer_type, map_get(root, "customer_type"));
    copy_str(out->phase, sizeof out->phase, map_get(root, "phase"));
    out->loyalty_points = get_i64(root, "loyalty_points");
    copy_str(out->loyalty_tier, sizeof out->loyalty_tier, map_get(root, "loyalty_tier"));
    int rc = read_actions(c, map_get(root, "actions"), out);
    if (rc == LS_OK)
        rc = read_segments(c, map_get(root, "segments"), out);
    if (rc != LS_OK)
        ls_score_free(out);
    return rc;
}

void ls_score_free(ls_score *s)
{
    if (!s)
        return;
    free(s->actions);
    free(s->segments);
    memset(s, 0, sizeof *s);
}

/* Begins a read request {"op", "id", "customer", ["now"], [extra]}:
 * nextra more fields are packed by the caller. */
static uint64_t begin_read(ls_client *c, msgpack_packer *pk, const char *op, const char *customer, int64_t now_ms,
                           uint32_t nextra)
{
    uint64_t id = begin_request(c, pk, op, 1 + (now_ms > 0) + nextra);
    pack_str(pk, "customer");
    pack_str(pk, customer);
    if (now_ms > 0) {
        pack_str(pk, "now");
        msgpack_pack_int64(pk, now_ms);
    }
    return id;
}

/* The arguments of a read whose reply is handed back whole. */
static int read_args(ls_client *c, const char *customer, void **reply, size_t *reply_len, const char *fn)
{
    char why[160];
    if (reply)
        *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    if (!c)
        return LS_EINVAL;
    if (customer && reply && reply_len)
        return LS_OK;
    snprintf(why, sizeof why, "%s: customer, reply and reply_len are required", fn);
    return local_error(c, LS_EINVAL, why);
}

int ls_client_score(ls_client *c, const char *customer, ls_score *out)
{
    return ls_client_score_at(c, customer, 0, out);
}

int ls_client_score_at(ls_client *c, const char *customer, int64_t now_ms, ls_score *out)
{
    msgpack_packer pk;
    if (out)
        memset(out, 0, sizeof *out);
    if (!c)
        return LS_EINVAL;
    if (!customer || !out)
        return local_error(c, LS_EINVAL, "ls_client_score: customer and out are required");
    uint64_t id = begin_read(c, &pk, "score", customer, now_ms, 0);
    return call_parsed(c, "score", id, read_score, out);
}

int ls_client_profile(ls_client *c, const char *customer, int64_t now_ms, void **reply, size_t *reply_len)
{
    msgpack_packer pk;
    int rc = read_args(c, customer, reply, reply_len, "ls_client_profile");
    if (rc)
        return rc;
    uint64_t id = begin_read(c, &pk, "profile", customer, now_ms, 0);
    return call_reply(c, "profile", id, reply, reply_len);
}

int ls_client_recommend(ls_client *c, const char *customer, int k, int64_t now_ms, void **reply,
                        size_t *reply_len)
{
    msgpack_packer pk;
    int rc = read_args(c, customer, reply, reply_len, "ls_client_recommend");
    if (rc)
        return rc;
    uint64_t id = begin_read(c, &pk, "recommend", customer, now_ms, k > 0);
    if (k > 0) {
        pack_str(&pk, "k");
        msgpack_pack_int(&pk, k);
    }
    return call_reply(c, "recommend", id, reply, reply_len);
}

int ls_client_profile_value(const void *reply, size_t reply_len, const char *name, double *value)
{
    msgpack_unpacked up;
    int rc = LS_EPARSE;
    if (!value || !name)
        return LS_EINVAL;
    *value = 0.0;
    msgpack_unpacked_init(&up);
    if (reply && msgpack_unpack_next(&up, reply, reply_len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *features = map_get(&up.data, "features");
        const msgpack_object *v = features ? map_get(features, name) : NULL;
        if (!features || features->type != MSGPACK_OBJECT_MAP)
            rc = LS_EPARSE;
        else if (!v || (v->type != MSGPACK_OBJECT_FLOAT64 && v->type != MSGPACK_OBJECT_FLOAT32 &&
                        v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
            rc = LS_ENOTFOUND;
        else {
            *value = get_double(features, name);
            rc = LS_OK;
        }
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

typedef struct {
    char *buf;
    size_t cap;
} version_out;

static int read_version(ls_client *c, const msgpack_object *root, void *arg)
{
    version_out *v = arg;
    (void)c;
    if (v->buf && v->cap)
        copy_str(v->buf, v->cap, map_get(root, "version"));
    return LS_OK;
}

int ls_client_ping(ls_client *c, char *version, size_t cap)
{
    msgpack_packer pk;
    version_out v = {version, cap};
    if (!c)
        return LS_EINVAL;
    uint64_t id = begin_request(c, &pk, "ping", 0);
    return call_parsed(c, "ping", id, read_version, &v);
}
