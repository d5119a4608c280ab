/* cmd_cluster.c -- `leadscore cluster init|status|move`: makes a cluster
 * on NATS JetStream (its map and one stream per partition), shows where
 * each partition is and how far each node has applied it, and moves a
 * partition to another node.  The nodes themselves are
 * `leadscore serve --nats` (clusternode.h). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cliopts.h"
#include "cluster_nats.h"
#include "clustermap.h"
#include "leadscore/error.h"
#include "timefmt.h"

#define DEDUPE_WINDOW_MS (2 * 60 * 1000) /* JetStream's Nats-Msg-Id window: covers the gateway's retries */

typedef struct {
    const char *nats;
    const char *cluster;
    const char *nodes;
    long partitions;
    long replicas;
    double wait_s;
    double max_age_s;
    int json;
} cluster_opts;

/* The rows, each once; every action takes its own (so an init option
 * given to status is an unknown option, as in `audience`). */
#define F(field) CLIOPT_FIELD(cluster_opts, field)
#define ROW_NATS                                                                                                     \
    {.name = "nats", .kind = CLIOPT_STRING, F(nats), .arg = "URLS",                                                \
     .help = "NATS servers, comma-separated nats://HOST:PORT (default $LEADSCORE_NATS)"}
#define ROW_CLUSTER                                                                                                  \
    {.name = "cluster", .kind = CLIOPT_STRING, F(cluster), .arg = "NAME", .help = "the cluster's name (default ls)"}
#define ROW_WAIT                                                                                                     \
    {.name = "wait", .kind = CLIOPT_DURATION, F(wait_s), .lo = 0, .hi = 600000, .arg = "DURATION",                 \
     .help = "how long to wait for NATS and JetStream to be ready (default 30s)"}
#define ROWS_EVERY ROW_NATS, ROW_CLUSTER, ROW_WAIT
#define ROWS_INIT                                                                                                    \
    {.name = "partitions", .kind = CLIOPT_INT, F(partitions), .lo = 1, .hi = PARTITION_MAX, .arg = "P",            \
     .help = "init: log partitions, fixed for the cluster's life (default 128)"},                                  \
    {.name = "nodes", .kind = CLIOPT_STRING, F(nodes), .arg = "N1,N2,...",                                         \
     .help = "init: the node names; partition p is owned by the (p mod N)-th and stood by for by the next"},       \
    {.name = "replicas", .kind = CLIOPT_INT, F(replicas), .lo = 1, .hi = 5, .arg = "R",                            \
     .help = "init: copies of every stream and of the map (default 3: survives one NATS server lost)"},            \
    {.name = "max-age", .kind = CLIOPT_DURATION, F(max_age_s), .lo = 0, .hi = 3650LL * 86400000, .arg = "DURATION", \
     .help = "init: how long the logs keep events (default 0: for ever, so a lost node rebuilds by replay)"}
#define ROW_JSON {.name = "json", .kind = CLIOPT_FLAG, F(json), .help = "status: one JSON object"}

static const cliopt init_rows[] = {ROWS_EVERY, ROWS_INIT, CLIOPT_END};
static const cliopt status_rows[] = {ROWS_EVERY, ROW_JSON, CLIOPT_END};
static const cliopt move_rows[] = {ROWS_EVERY, CLIOPT_END};
static const cliopt all_rows[] = {ROWS_EVERY, ROWS_INIT, ROW_JSON, CLIOPT_END};
#undef F

#define INIT_USAGE                                                                                                   \
    "leadscore cluster init --nats URLS --partitions P --nodes N1,N2,... [--cluster NAME] [--replicas R]\n"        \
    "                              [--max-age DURATION] [--wait DURATION]"
#define STATUS_USAGE "leadscore cluster status --nats URLS [--cluster NAME] [--json] [--wait DURATION]"
#define MOVE_USAGE "leadscore cluster move --nats URLS [--cluster NAME] [--wait DURATION] PARTITION NODE"

static const cliopts_spec cluster_spec = {
    .cmd = "cluster",
    .usage = INIT_USAGE "\n       " STATUS_USAGE "\n       " MOVE_USAGE,
    .about = "Cluster mode runs leadscore on several machines over NATS JetStream: every event goes to its\n"
             "partition's replicated log, and each node (`leadscore serve --nats URLS --node NAME`) applies\n"
             "the partitions it owns or stands by for to its own store.\n"
             "  init    creates the cluster: its map (a KV bucket) and one stream per partition\n"
             "  status  each partition's owner, standby, log length, and how far each node applied it\n"
             "  move    makes NODE the owner of PARTITION (the old owner becomes its standby)",
    .epilog = "`leadscore cluster ACTION --help` shows one action's options.",
    .opts = all_rows};

static const cliopts_spec init_spec = {
    .cmd = "cluster",
    .usage = INIT_USAGE,
    .about = "Creates the cluster: its map (a KV bucket) and one stream per partition.",
    .opts = init_rows};

static const cliopts_spec status_spec = {
    .cmd = "cluster",
    .usage = STATUS_USAGE,
    .about = "Shows each partition's owner, standby, log length, and how far each node applied it.",
    .opts = status_rows};

static const cliopts_spec move_spec = {
    .cmd = "cluster",
    .usage = MOVE_USAGE,
    .about = "Makes NODE the owner of PARTITION (the old owner becomes its standby).",
    .opts = move_rows};

static int connect_cluster(cnats *c, const cluster_opts *o, int create_kv, char *err, size_t errlen)
{
    int64_t wait_ms = (int64_t)(o->wait_s * 1000);
    int rc = cnats_connect(c, o->nats, "leadscore cluster", 1, wait_ms, err, errlen);
    if (rc == LS_OK)
        rc = cnats_open_kv(c, o->cluster, create_kv, (int)o->replicas, wait_ms, err, errlen);
    return rc;
}

/* ---- init ---- */

static int split_nodes(char *buf, const char **names)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && n < CLUSTER_MAX_NODES + 1)
            names[n++] = t;
    return n;
}

static int cluster_init(const cluster_opts *o)
{
    char err[512], nodes_buf[4096];
    const char *names[CLUSTER_MAX_NODES + 1];
    clustermap m;
    cnats c;
    uint64_t rev;
    if (!o->nodes)
        return cli_error("cluster", CLI_USAGE, "init: --nodes N1,N2,... is required (the names the nodes will run with)");
    snprintf(nodes_buf, sizeof nodes_buf, "%s", o->nodes);
    int nn = split_nodes(nodes_buf, names);
    if (clustermap_init(&m, o->cluster, (uint32_t)o->partitions, timefmt_now_ms(), names, nn, err, sizeof err))
        return cli_error("cluster", CLI_USAGE, "init: %s", err);
    if (connect_cluster(&c, o, 1, err, sizeof err) != LS_OK)
        return cli_error("cluster", CLI_FAIL, "%s", err);
    clustermap *existing = malloc(sizeof *existing);
    int rc = existing ? cnats_map_get(&c, existing, &rev, err, sizeof err) : LS_ENOMEM;
    free(existing);
    if (rc == LS_OK) {
        cnats_close(&c);
        return cli_error("cluster", CLI_FAIL, "cluster \"%s\" exists already on these NATS servers: pick another "
                         "--cluster name (a name is never reused)", o->cluster);
    }
    for (uint32_t p = 0; p < m.nparts && rc != LS_EUNAVAIL; p++) {
        rc = cnats_stream_create(&c, &m, p, (int)o->replicas, DEDUPE_WINDOW_MS, (int64_t)(o->max_age_s * 1000),
                                 (int64_t)(o->wait_s * 1000), err, sizeof err);
        if (rc == LS_EUNAVAIL)
            break;
        fprintf(stderr, "\rcluster: streams %u/%u", p + 1, m.nparts);
    }
    fprintf(stderr, "\n");
    if (rc != LS_EUNAVAIL)
        rc = cnats_map_create(&c, &m, err, sizeof err);
    cnats_close(&c);
    if (rc == LS_EUNAVAIL || rc == LS_EPARSE || rc == LS_ENOMEM)
        return cli_error("cluster", CLI_FAIL, "%s", err);
    printf("cluster %s: %u partitions on %d node%s, %ld replicas, generation %lld\n", m.cluster, m.nparts, m.nnodes,
           m.nnodes == 1 ? "" : "s", o->replicas, (long long)m.generation);
    return CLI_OK;
}

/* ---- status ---- */

typedef struct {
    cluster_live live[CLUSTER_MAX_NODES];
    int has_live[CLUSTER_MAX_NODES];
    int alive[CLUSTER_MAX_NODES];
    uint64_t last[PARTITION_MAX];
    char leader[PARTITION_MAX][64];
    int stream_ok[PARTITION_MAX];
} cluster_view;

/* Node n's position in partition p, or -1 when it does not apply it. */
static int64_t applied(const cluster_view *v, int n, uint32_t p)
{
    if (n < 0 || !v->has_live[n])
        return -1;
    for (uint32_t i = 0; i < v->live[n].nheld; i++)
        if (v->live[n].part[i] == p)
            return (int64_t)v->live[n].applied[i];
    return -1;
}

static void read_view(cnats *c, const clustermap *m, cluster_view *v)
{
    char err[256], stream[128];
    int64_t now = timefmt_now_ms();
    for (int n = 0; n < m->nnodes; n++) {
        v->has_live[n] = cnats_live_get(c, m->nodes[n], &v->live[n]) == LS_OK;
        v->alive[n] = v->has_live[n] && now - v->live[n].ts_ms < CLUSTER_LIVE_TTL_MS && v->live[n].nheld > 0;
    }
    for (uint32_t p = 0; p < m->nparts; p++) {
        clustermap_stream_name(m, p, stream, sizeof stream);
        v->stream_ok[p] = cnats_stream_state(c, stream, &v->last[p], v->leader[p], sizeof v->leader[p], err,
                                             sizeof err) == LS_OK;
    }
}

static int64_t lag_of(const clustermap *m, const cluster_view *v, uint32_t p)
{
    int64_t a = applied(v, m->owner[p], p), b = m->standby[p] >= 0 ? applied(v, m->standby[p], p) : a;
    int64_t low = a < b ? a : b;
    return low < 0 ? -1 : (int64_t)v->last[p] - low;
}

static int ready(const clustermap *m, const cluster_view *v)
{
    for (uint32_t p = 0; p < m->nparts; p++)
        if (!v->stream_ok[p] || !v->alive[m->owner[p]] || applied(v, m->owner[p], p) != (int64_t)v->last[p])
            return 0;
    return 1;
}

static void status_json(const clustermap *m, const cluster_view *v)
{
    json_t *o = json_object(), *nodes = json_object(), *parts = json_array();
    for (int n = 0; n < m->nnodes; n++) {
        json_t *nd = json_object();
        json_object_set_new(nd, "endpoint", json_string(v->has_live[n] ? v->live[n].endpoint : ""));
        json_object_set_new(nd, "pull", json_string(v->has_live[n] ? v->live[n].pull : ""));
        json_object_set_new(nd, "live", json_boolean(v->alive[n]));
        json_object_set_new(nd, "pid", json_integer(v->has_live[n] ? v->live[n].pid : 0));
        json_object_set_new(nodes, m->nodes[n], nd);
    }
    for (uint32_t p = 0; p < m->nparts; p++) {
        char stream[128];
        json_t *pt = json_object(), *ap = json_object();
        clustermap_stream_name(m, p, stream, sizeof stream);
        for (int n = 0; n < m->nnodes; n++)
            if (applied(v, n, p) >= 0)
                json_object_set_new(ap, m->nodes[n], json_integer(applied(v, n, p)));
        json_object_set_new(pt, "p", json_integer(p));
        json_object_set_new(pt, "owner", json_string(m->nodes[m->owner[p]]));
        json_object_set_new(pt, "standby", m->standby[p] >= 0 ? json_string(m->nodes[m->standby[p]]) : json_null());
        json_object_set_new(pt, "stream", json_string(stream));
        json_object_set_new(pt, "leader", json_string(v->leader[p]));
        json_object_set_new(pt, "last_seq", json_integer((json_int_t)v->last[p]));
        json_object_set_new(pt, "applied", ap);
        json_object_set_new(pt, "lag", lag_of(m, v, p) >= 0 ? json_integer(lag_of(m, v, p)) : json_null());
        json_array_append_new(parts, pt);
    }
    json_object_set_new(o, "cluster", json_string(m->cluster));
    json_object_set_new(o, "epoch", json_integer((json_int_t)m->epoch));
    json_object_set_new(o, "partitions", json_integer(m->nparts));
    json_object_set_new(o, "ready", json_boolean(ready(m, v)));
    json_object_set_new(o, "nodes", nodes);
    json_object_set_new(o, "parts", parts);
    json_dumpf(o, stdout, JSON_COMPACT);
    printf("\n");
    json_decref(o);
}

static void status_text(const clustermap *m, const cluster_view *v)
{
    printf("cluster %s  epoch %" PRIu64 "  %u partitions  %s\n", m->cluster, m->epoch, m->nparts,
           ready(m, v) ? "ready" : "NOT READY (an owner is down or behind its log)");
    for (int n = 0; n < m->nnodes; n++)
        printf("  node %-12s %-5s %s\n", m->nodes[n], v->alive[n] ? "up" : "DOWN",
               v->has_live[n] ? v->live[n].endpoint : "(never started)");
    printf("  %4s  %-12s %-12s %-10s %10s %10s %10s %8s\n", "part", "owner", "standby", "leader", "last_seq",
           "owner@", "standby@", "lag");
    for (uint32_t p = 0; p < m->nparts; p++) {
        int64_t a = applied(v, m->owner[p], p), b = m->standby[p] >= 0 ? applied(v, m->standby[p], p) : -1;
        char as[24] = "-", bs[24] = "-", ls[24] = "-";
        if (a >= 0)
            snprintf(as, sizeof as, "%lld", (long long)a);
        if (b >= 0)
            snprintf(bs, sizeof bs, "%lld", (long long)b);
        if (lag_of(m, v, p) >= 0)
            snprintf(ls, sizeof ls, "%lld", (long long)lag_of(m, v, p));
        printf("  %4u  %-12s %-12s %-10s %10" PRIu64 " %10s %10s %8s\n", p, m->nodes[m->owner[p]],
               m->standby[p] >= 0 ? m->nodes[m->standby[p]] : "-", v->stream_ok[p] ? v->leader[p] : "(no stream)",
               v->last[p], as, bs, ls);
    }
}

static int cluster_status(const cluster_opts *o)
{
    char err[512];
    clustermap m;
    cnats c;
    cluster_view *v = calloc(1, sizeof *v);
    if (!v)
        return cli_error("cluster", CLI_FAIL, "out of memory");
    int rc = connect_cluster(&c, o, 0, err, sizeof err);
    if (rc == LS_OK)
        rc = cnats_map_get(&c, &m, NULL, err, sizeof err);
    if (rc == LS_OK) {
        read_view(&c, &m, v);
        if (o->json)
            status_json(&m, v);
        else
            status_text(&m, v);
    }
    cnats_close(&c);
    free(v);
    return rc == LS_OK ? CLI_OK : cli_error("cluster", CLI_FAIL, "%s", err);
}

/* ---- move ---- */

static int cluster_move(const cluster_opts *o, const char *part, const char *node)
{
    char err[512], *end;
    clustermap m;
    cnats c;
    uint64_t rev;
    unsigned long p = strtoul(part, &end, 10);
    if (!*part || *end)
        return cli_error("cluster", CLI_USAGE, "move: PARTITION must be a number, not \"%s\"", part);
    int rc = connect_cluster(&c, o, 0, err, sizeof err);
    if (rc == LS_OK && (rc = cnats_map_get(&c, &m, &rev, err, sizeof err)) == LS_OK &&
        (rc = clustermap_move(&m, (uint32_t)p, node, err, sizeof err)) == LS_OK)
        rc = cnats_map_update(&c, &m, rev, err, sizeof err);
    cnats_close(&c);
    if (rc)
        return cli_error("cluster", rc == LS_EINVAL ? CLI_USAGE : CLI_FAIL, "move: %s", err);
    printf("partition %lu: owner %s, standby %s (epoch %" PRIu64 ")\n", p, node,
           m.standby[p] >= 0 ? m.nodes[m.standby[p]] : "-", m.epoch);
    return CLI_OK;
}

static int run_init(const cluster_opts *o, char **args)
{
    (void)args;
    return cluster_init(o);
}

static int run_status(const cluster_opts *o, char **args)
{
    (void)args;
    return cluster_status(o);
}

static int run_move(const cluster_opts *o, char **args)
{
    return cluster_move(o, args[0], args[1]);
}

static const struct {
    const char *name;
    const cliopts_spec *spec;
    int nargs;
    const char *args; /* "cluster ACTION needs ..." / "takes ..." */
    int (*run)(const cluster_opts *o, char **args);
} actions[] = {
    {"init", &init_spec, 0, "no operand", run_init},
    {"status", &status_spec, 0, "no operand", run_status},
    {"move", &move_spec, 2, "PARTITION NODE", run_move},
};

int cmd_cluster(int argc, char **argv)
{
    cluster_opts o = {.cluster = "ls", .partitions = 128, .replicas = 3, .wait_s = 30};
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cliopts_help(&cluster_spec, stdout);
            return CLI_OK;
        }
        return cli_error("cluster", CLI_USAGE, "say init, status or move (see --help)");
    }
    size_t i = 0;
    while (i < sizeof actions / sizeof actions[0] && strcmp(actions[i].name, argv[1]) != 0)
        i++;
    if (i == sizeof actions / sizeof actions[0])
        return cli_error("cluster", CLI_USAGE, "unknown action \"%s\": say init, status or move (see --help)", argv[1]);
    int first = cliopts_parse(actions[i].spec, argc - 1, argv + 1, &o);
    if (first < 0)
        return cliopts_status(first);
    int operands = argc - 1 - first;
    if (operands != actions[i].nargs && actions[i].nargs > 0)
        return cli_error("cluster", CLI_USAGE,
                         "cluster %s needs %s, not %d operand%s (see `leadscore cluster %s --help`)", actions[i].name,
                         actions[i].args, operands, operands == 1 ? "" : "s", actions[i].name);
    if (operands != actions[i].nargs)
        return cli_error("cluster", CLI_USAGE, "cluster %s takes no operand, not \"%s\" (see `leadscore cluster %s "
                         "--help`)", actions[i].name, argv[1 + first], actions[i].name);
    if (!o.nats)
        o.nats = getenv("LEADSCORE_NATS");
    if (!o.nats || !*o.nats)
        return cli_error("cluster", CLI_USAGE,
                         "--nats URLS is required (the NATS servers, nats://HOST:PORT,...; or $LEADSCORE_NATS)");
    if (!clustermap_valid_name(o.cluster))
        return cli_error("cluster", CLI_USAGE, "--cluster: use 1-47 letters, digits, '-' or '_'");
    return actions[i].run(&o, argv + 1 + first);
}
