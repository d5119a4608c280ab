/* clustermap.c -- the cluster map and liveness records and their JSON
 * (clustermap.h). */
#include "clustermap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

int clustermap_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= CLUSTER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int clustermap_init(clustermap *m, const char *cluster, uint32_t nparts, int64_t generation,
                    const char *const *nodes, int nnodes, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (!clustermap_valid_name(cluster)) {
        snprintf(err, errlen, "cluster name \"%s\": use 1-47 letters, digits, '-' or '_'", cluster);
        return LS_EINVAL;
    }
    if (nparts < 1 || nparts > PARTITION_MAX) {
        snprintf(err, errlen, "partitions: 1 to %d", PARTITION_MAX);
        return LS_EINVAL;
    }
    if (nnodes < 1 || nnodes > CLUSTER_MAX_NODES) {
        snprintf(err, errlen, "nodes: 1 to %d names", CLUSTER_MAX_NODES);
        return LS_EINVAL;
    }
    snprintf(m->cluster, sizeof m->cluster, "%s", cluster);
    m->epoch = 1;
    m->nparts = nparts;
    m->generation = generation;
    m->nnodes = nnodes;
    for (int i = 0; i < nnodes; i++) {
        if (!clustermap_valid_name(nodes[i])) {
            snprintf(err, errlen, "node name \"%s\": use 1-47 letters, digits, '-' or '_'", nodes[i]);
            return LS_EINVAL;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(nodes[i], nodes[j]) == 0) {
                snprintf(err, errlen, "node name \"%s\" is given twice", nodes[i]);
                return LS_EINVAL;
            }
        snprintf(m->nodes[i], sizeof m->nodes[i], "%s", nodes[i]);
    }
    for (uint32_t p = 0; p < nparts; p++) {
        m->owner[p] = (int16_t)(p % (uint32_t)nnodes);
        m->standby[p] = nnodes > 1 ? (int16_t)((p + 1) % (uint32_t)nnodes) : -1;
    }
    return LS_OK;
}

int clustermap_node_index(const clustermap *m, const char *name)
{
    for (int i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i], name) == 0)
            return i;
    return -1;
}

void clustermap_stream_name(const clustermap *m, uint32_t p, char *out, size_t cap)
{
    snprintf(out, cap, "LS_%s_P%03u_G%lld", m->cluster, p, (long long)m->generation);
}

void clustermap_subject(const clustermap *m, uint32_t p, char *out, size_t cap)
{
    snprintf(out, cap, "ls.%s.p.%u.ev", m->cluster, p);
}

int clustermap_move(clustermap *m, uint32_t p, const char *node, char *err, size_t errlen)
{
    if (p >= m->nparts) {
        snprintf(err, errlen, "partition %u: the cluster has partitions 0 to %u", p, m->nparts - 1);
        return LS_EINVAL;
    }
    int n = clustermap_node_index(m, node);
    if (n < 0) {
        snprintf(err, errlen, "node \"%s\" is not in the cluster map", node);
        return LS_EINVAL;
    }
    if (m->owner[p] == n) {
        snprintf(err, errlen, "node \"%s\" already owns partition %u", node, p);
        return LS_EINVAL;
    }
    int16_t old = m->owner[p];
    m->owner[p] = (int16_t)n;
    m->standby[p] = old;
    m->epoch++;
    return LS_OK;
}

int clustermap_same_holders(const clustermap *m, uint32_t a, uint32_t b)
{
    return a < m->nparts && b < m->nparts && m->owner[a] == m->owner[b] && m->standby[a] == m->standby[b];
}

char *clustermap_to_json(const clustermap *m)
{
    json_t *o = json_object(), *nodes = json_array(), *owner = json_array(), *standby = json_array();
    for (int i = 0; i < m->nnodes; i++)
        json_array_append_new(nodes, json_string(m->nodes[i]));
    for (uint32_t p = 0; p < m->nparts; p++) {
        json_array_append_new(owner, json_integer(m->owner[p]));
        json_array_append_new(standby, json_integer(m->standby[p]));
    }
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "cluster", json_string(m->cluster));
    json_object_set_new(o, "epoch", json_integer((json_int_t)m->epoch));
    json_object_set_new(o, "partitions", json_integer(m->nparts));
    json_object_set_new(o, "generation", json_integer(m->generation));
    json_object_set_new(o, "hash", json_string(PARTITION_HASH_NAME));
    json_object_set_new(o, "nodes", nodes);
    json_object_set_new(o, "owner", owner);
    json_object_set_new(o, "standby", standby);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static int int_field(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return LS_EPARSE;
    *out = json_integer_value(v);
    return LS_OK;
}

static int parse_map(clustermap *m, json_t *o, char *err, size_t errlen)
{
    json_int_t v, epoch, parts, gen;
    json_t *cluster = json_object_get(o, "cluster"), *hash = json_object_get(o, "hash");
    json_t *nodes = json_object_get(o, "nodes"), *owner = json_object_get(o, "owner");
    json_t *standby = json_object_get(o, "standby");
    if (int_field(o, "v", 1, 1, &v) || int_field(o, "epoch", 1, INT64_MAX, &epoch) ||
        int_field(o, "partitions", 1, PARTITION_MAX, &parts) || int_field(o, "generation", 0, INT64_MAX, &gen) ||
        !json_is_string(cluster) || !clustermap_valid_name(json_string_value(cluster)) || !json_is_string(hash) ||
        strcmp(json_string_value(hash), PARTITION_HASH_NAME) != 0 || !json_is_array(nodes) ||
        json_array_size(nodes) < 1 || json_array_size(nodes) > CLUSTER_MAX_NODES || !json_is_array(owner) ||
        !json_is_array(standby) || json_array_size(owner) != (size_t)parts ||
        json_array_size(standby) != (size_t)parts) {
        snprintf(err, errlen, "the cluster map is not a version-1 map this leadscore can read");
        return LS_EPARSE;
    }
    snprintf(m->cluster, sizeof m->cluster, "%s", json_string_value(cluster));
    m->epoch = (uint64_t)epoch;
    m->nparts = (uint32_t)parts;
    m->generation = gen;
    m->nnodes = (int)json_array_size(nodes);
    for (int i = 0; i < m->nnodes; i++) {
        json_t *n = json_array_get(nodes, (size_t)i);
        if (!json_is_string(n) || !clustermap_valid_name(json_string_value(n))) {
            snprintf(err, errlen, "the cluster map names a node badly");
            return LS_EPARSE;
        }
        snprintf(m->nodes[i], sizeof m->nodes[i], "%s", json_string_value(n));
        if (clustermap_node_index(m, m->nodes[i]) != i) {
            snprintf(err, errlen, "the cluster map names node \"%s\" twice", m->nodes[i]);
            return LS_EPARSE;
        }
    }
    for (uint32_t p = 0; p < m->nparts; p++) {
        json_t *a = json_array_get(owner, p), *b = json_array_get(standby, p);
        if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
            json_integer_value(a) >= m->nnodes || json_integer_value(b) < -1 || json_integer_value(b) >= m->nnodes) {
            snprintf(err, errlen, "the cluster map's partition %u names no node", p);
            return LS_EPARSE;
        }
        m->owner[p] = (int16_t)json_integer_value(a);
        m->standby[p] = (int16_t)json_integer_value(b);
        if (m->owner[p] == m->standby[p]) {
            snprintf(err, errlen, "the cluster map's partition %u has one node as owner and standby", p);
            return LS_EPARSE;
        }
    }
    return LS_OK;
}

int clustermap_from_json(clustermap *m, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    memset(m, 0, sizeof *m);
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the cluster map is not JSON: %s", o ? "not an object" : jerr.text);
        json_decref(o);
        return LS_EPARSE;
    }
    int rc = parse_map(m, o, err, errlen);
    json_decref(o);
    return rc;
}

char *cluster_live_to_json(const cluster_live *l)
{
    json_t *o = json_object(), *applied = json_object();
    char key[16];
    for (uint32_t i = 0; i < l->nheld; i++) {
        snprintf(key, sizeof key, "%u", l->part[i]);
        json_object_set_new(applied, key, json_integer((json_int_t)l->applied[i]));
    }
    json_object_set_new(o, "endpoint", json_string(l->endpoint));
    json_object_set_new(o, "pull", json_string(l->pull));
    json_object_set_new(o, "pid", json_integer(l->pid));
    json_object_set_new(o, "ts", json_integer(l->ts_ms));
    json_object_set_new(o, "applied", applied);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* A partition number as a JSON key: decimal digits, no sign, no spaces,
 * no leading zero, below PARTITION_MAX. */
static int partition_key(const char *key, uint32_t *out)
{
    uint32_t p = 0;
    size_t n = strlen(key);
    if (n == 0 || n > 4 || (n > 1 && key[0] == '0'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        p = p * 10 + (uint32_t)(key[i] - '0');
    }
    if (p >= PARTITION_MAX)
        return 0;
    *out = p;
    return 1;
}

int cluster_live_from_json(cluster_live *l, const char *text, size_t len)
{
    json_error_t jerr;
    memset(l, 0, sizeof *l);
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *ep, *pull, *pid, *ts, *applied;
    int rc = LS_EPARSE;
    if (!json_is_object(o))
        goto done;
    ep = json_object_get(o, "endpoint");
    pull = json_object_get(o, "pull");
    pid = json_object_get(o, "pid");
    ts = json_object_get(o, "ts");
    applied = json_object_get(o, "applied");
    if (!json_is_string(ep) || !json_is_string(pull) || !json_is_integer(pid) || !json_is_integer(ts) ||
        !json_is_object(applied) || strlen(json_string_value(ep)) >= sizeof l->endpoint ||
        strlen(json_string_value(pull)) >= sizeof l->pull)
        goto done;
    snprintf(l->endpoint, sizeof l->endpoint, "%s", json_string_value(ep));
    snprintf(l->pull, sizeof l->pull, "%s", json_string_value(pull));
    l->pid = (long)json_integer_value(pid);
    l->ts_ms = json_integer_value(ts);
    const char *key;
    json_t *v;
    json_object_foreach(applied, key, v) {
        uint32_t p;
        if (!partition_key(key, &p) || !json_is_integer(v) || json_integer_value(v) < 0 || l->nheld >= PARTITION_MAX)
            goto done;
        for (uint32_t i = 0; i < l->nheld; i++)
            if (l->part[i] == p)
                goto done;
        l->part[l->nheld] = p;
        l->applied[l->nheld++] = (uint64_t)json_integer_value(v);
    }
    rc = LS_OK;
done:
    json_decref(o);
    return rc;
}
