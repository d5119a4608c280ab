/* cmd_audience.c -- `leadscore audience add|list|rm|export`: define, list,
 * delete and export the audiences the service keeps live (audience.h).
 *
 * Each action works one of two ways:
 *   --connect EP  through a running service (the default, at
 *                 $LEADSCORE_CONNECT or tcp://127.0.0.1:5555): the audience_put,
 *                 audience_list, audience_delete and audience_members ops
 *                 (PROTOCOL.md); add and rm need an admin key under CURVE;
 *   --data DIR    offline, on a store: add and rm run what the writer runs
 *                 (automation.h) in a write transaction of their own, which
 *                 needs the store's writer lock (no service may be running
 *                 on DIR), and add then makes the first pass over the store
 *                 so the new audience is ready at once; list and export read
 *                 one read-only snapshot, beside a running service too.
 * Both ways print the same: a line or a table for people, --json for
 * machines (the reply's fields, without the request id), and export writes
 * the members as CSV or JSON Lines, atomically when --out names a file.
 *
 * One options struct and one set of rows: each action's table takes the
 * rows it uses; `leadscore audience --help` lists them all. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audience.h"
#include "automation.h"
#include "atomicfile.h"
#include "cli.h"
#include "cliopts.h"
#include "codec.h"
#include "jsonout.h"
#include "leadscore/error.h"
#include "model.h"
#include "store.h"
#include "timefmt.h"

#define CMD "audience"
#define PAGE 1000                /* members per audience_members request */
#define MAP_MAX (256ULL << 30)   /* the offline first pass grows the map up to this, as serve's --map-max */
#define PROGRESS_CUSTOMERS 100000 /* an offline first pass over more says so on a terminal */
#define PUT_WAIT_MS 5000         /* the longest audience_put waits for the first pass before it answers */

enum { FORMAT_CSV, FORMAT_JSONL };

typedef struct {
    const char *dir;          /* --data */
    const char *model_path;   /* --model */
    const char *out_path;     /* --out */
    int format;               /* --format */
    int json;                 /* --json */
    cli_service svc;          /* --connect (svc.endpoint NULL: not given), --timeout, keys */
} audience_cli;

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static const char *const format_words[] = {"csv", "jsonl", NULL};
static const int format_values[] = {FORMAT_CSV, FORMAT_JSONL};

#define F(field) CLIOPT_FIELD(audience_cli, field)
#define ROW_DATA                                                                                                     \
    {.name = "data", .kind = CLIOPT_STRING, F(dir), .arg = "DIR",                                                  \
     .help = "work on the store in DIR, offline (add and rm need its writer lock:\n"                               \
             "no `leadscore serve` may be running on it)"}
#define ROW_CONNECT                                                                                                  \
    {.name = "connect", .kind = CLIOPT_STRING, F(svc.endpoint), .arg = "EP",                                       \
     .help = "or through the service at EP (the default: $LEADSCORE_CONNECT,\n"                                 \
             "else " CLI_DEFAULT_CONNECT ")"}
#define ROW_TIMEOUT                                                                                                  \
    {.name = "timeout", .kind = CLIOPT_INT, F(svc.timeout_ms), .lo = 1, .hi = 3600000,                             \
     .want = "milliseconds from 1 to 3600000", .arg = "MS",                                                        \
     .help = "how long to wait for each reply of the service (default 5000; add\n"                              \
             "waits up to 5 s longer, while the service makes the first pass)"}
#define ROW_SERVER_KEY                                                                                               \
    {.name = "server-key", .kind = CLIOPT_STRING, F(svc.server_key), .arg = "FILE",                                \
     .help = "CurveZMQ: the server's public key file"}
#define ROW_KEY                                                                                                      \
    {.name = "key", .kind = CLIOPT_STRING, F(svc.key_prefix), .arg = "PREFIX",                                     \
     .help = "CurveZMQ: this client's key pair (PREFIX.pub, PREFIX.key from\n"                                     \
             "`leadscore keygen`); add and rm need an admin key"}
#define ROW_MODEL                                                                                                    \
    {.name = "model", .kind = CLIOPT_STRING, F(model_path), .arg = "FILE",                                         \
     .help = "with --data: the model the rules see scores from, as serve's --model\n"                           \
             "(default " MODEL_DEFAULT_PATH " if it exists, else the built-in copy)"}
#define ROW_JSON {.name = "json", .kind = CLIOPT_FLAG, F(json), .help = "print the result as one line of JSON"}
#define ROW_FORMAT                                                                                                   \
    {.name = "format", .kind = CLIOPT_ENUM, F(format), .choices = format_words, .values = format_values,           \
     .arg = "F", .help = "csv (default: a header row `customer`, then one id a line)\n"                            \
                         "or jsonl (one {\"customer\": ID} object a line)"}
#define ROW_OUT                                                                                                      \
    {.name = "out", .kind = CLIOPT_STRING, F(out_path), .arg = "FILE",                                             \
     .help = "write there, atomically: a temporary file renamed over FILE once\n"                                  \
             "complete (default: standard output)"}
#define ROWS_WHERE ROW_DATA, ROW_CONNECT, ROW_TIMEOUT, ROW_SERVER_KEY, ROW_KEY

static const cliopt add_rows[] = {ROWS_WHERE, ROW_MODEL, ROW_JSON, CLIOPT_END};
static const cliopt list_rows[] = {ROWS_WHERE, ROW_JSON, CLIOPT_END};
static const cliopt rm_rows[] = {ROWS_WHERE, ROW_JSON, CLIOPT_END};
static const cliopt export_rows[] = {ROWS_WHERE, ROW_FORMAT, ROW_OUT, CLIOPT_END};
static const cliopt all_rows[] = {
    {.kind = CLIOPT_SECTION, .help = "Where (one of --data and --connect):"},
    ROWS_WHERE,
    {.kind = CLIOPT_SECTION, .help = "add:"},
    ROW_MODEL,
    {.kind = CLIOPT_SECTION, .help = "add, list, rm:"},
    ROW_JSON,
    {.kind = CLIOPT_SECTION, .help = "export:"},
    ROW_FORMAT,
    ROW_OUT,
    CLIOPT_END};
#undef F

#define WHERE_USAGE "[--connect EP | --data DIR]"
#define ADD_USAGE "leadscore audience add NAME RULE " WHERE_USAGE " [--model FILE] [--json]"
#define LIST_USAGE "leadscore audience list " WHERE_USAGE " [--json]"
#define RM_USAGE "leadscore audience rm NAME " WHERE_USAGE " [--json]"
#define EXPORT_USAGE "leadscore audience export NAME " WHERE_USAGE " [--format csv|jsonl] [--out FILE]"

#define ABOUT_AUDIENCES                                                                                              \
    "An audience is a named rule over a customer's score result and features, e.g.\n"                              \
    "  purchase_count >= 2 and tier in (\"hot\", \"warm\") and not \"win_back\" in actions\n"                       \
    "whose members the service keeps up to date as events arrive and time passes, and\n"                          \
    "whose entries and exits go to the trigger outbox (`leadscore triggers`).  Names:\n"                          \
    "letters, digits, '_', '.', '-', at most 64.  PROTOCOL.md describes the rule language.\n"                     \
    "Each action works through a running service (--connect, the default) or offline on\n"                      \
    "a store (--data)."

static const cliopts_spec overview_spec = {
    .cmd = CMD,
    .usage = ADD_USAGE "\n       " LIST_USAGE "\n       " RM_USAGE "\n       " EXPORT_USAGE,
    .about = ABOUT_AUDIENCES "\n\n"
             "add defines NAME (or redefines it: a changed rule starts over), list shows every\n"
             "audience with its canonical rule, members and whether its first pass over the store\n"
             "is done (ready), rm deletes one, export writes its members in customer-id order.",
    .epilog = "`leadscore audience ACTION --help` shows one action's options.  Exit status: 0 ok,\n"
              "1 a failure explained on stderr (a bad rule, an unknown audience, no service), 2 a\n"
              "usage error.",
    .opts = all_rows,
};

static const cliopts_spec add_spec = {
    .cmd = CMD,
    .usage = ADD_USAGE,
    .about = "Defines audience NAME by RULE, or redefines it (the same rule changes nothing; a\n"
             "different one starts the audience over: it is not ready until its first pass over the\n"
             "store is done, and that pass fires no enter triggers).  A service answers once the\n"
             "pass is done, or after 5 s with the pass still running (`leadscore audience list`\n"
             "shows when it is ready); with --data the pass runs here, before the command returns,\n"
             "and records members only (no trigger, timer or prune: the service does those).\n"
             "Prints the audience's members and canonical rule.  A bad rule is refused with the\n"
             "column of the mistake.  --json: {\"ok\": true, \"created\", \"changed\", \"ready\"}.\n"
             "A rule that begins with '-' goes after \"--\" (options before it):\n"
             "  leadscore audience add --data DIR neg -- '-1 < score'",
    .opts = add_rows,
};

static const cliopts_spec list_spec = {
    .cmd = CMD,
    .usage = LIST_USAGE,
    .about = "Lists the audiences, by name: members, whether the first pass is done (ready), when\n"
             "each was defined, and its rule in canonical form.  --json: {\"ok\": true,\n"
             "\"audiences\": [{\"name\", \"rule\", \"members\", \"ready\", \"created\" (Unix ms)}]}.",
    .opts = list_rows,
};

static const cliopts_spec rm_spec = {
    .cmd = CMD,
    .usage = RM_USAGE,
    .about = "Deletes audience NAME and its member list.  Exit 1 when there is no such audience.",
    .opts = rm_rows,
};

static const cliopts_spec export_spec = {
    .cmd = CMD,
    .usage = EXPORT_USAGE,
    .about = "Writes the members of audience NAME in customer-id order: CSV (header `customer`) or\n"
             "JSON Lines ({\"customer\": ID}), and how many on stderr.  Through a service it pages\n"
             "through audience_members (each page a snapshot of its own); with --data it reads one\n"
             "snapshot of the store.  An audience that is not ready yet is exported as far as its\n"
             "first pass got, with a warning.",
    .opts = export_rows,
};

/* ------------------------------------------------------------------ */
/* Through a service                                                   */
/* ------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Sends op with nfields packed in fields (may be NULL) and unpacks the
 * reply into up (destroy it, and free *buf).  CLI_OK for an ok reply;
 * else CLI_FAIL after explaining on stderr. */
static int request(ls_client *c, const audience_cli *o, const char *op, const msgpack_sbuffer *fields,
                   uint32_t nfields, msgpack_unpacked *up, void **buf, int wait_ms)
{
    size_t len = 0;
    *buf = NULL;
    msgpack_unpacked_init(up);
    int rc = ls_client_call(c, op, fields ? fields->data : NULL, fields ? fields->size : 0, nfields, buf, &len);
    if (rc == LS_ETIMEOUT)
        return cli_error(CMD, CLI_FAIL, "no reply from %s within %d ms: is `leadscore serve` running there?",
                         o->svc.endpoint, o->svc.timeout_ms + wait_ms);
    if (rc != LS_OK)
        return cli_error(CMD, CLI_FAIL, "%s: %s", ls_wire_code(rc), ls_client_last_error(c));
    if (msgpack_unpack_next(up, *buf, len, NULL) != MSGPACK_UNPACK_SUCCESS || up->data.type != MSGPACK_OBJECT_MAP)
        return cli_error(CMD, CLI_FAIL, "the reply of %s is not a msgpack map", o->svc.endpoint);
    return CLI_OK;
}

/* wait_ms: how long the service may hold the request besides --timeout. */
static int connect_service(const audience_cli *o, int wait_ms, ls_client **c)
{
    return cli_connect(CMD, &o->svc, o->svc.timeout_ms + wait_ms, c);
}

/* The boolean at key of a reply map (0 when absent). */
static int reply_bool(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = codec_map_get(m, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

/* Copies the string at key of a reply map into buf ("" when absent). */
static void reply_str(const msgpack_object *m, const char *key, char *buf, size_t cap)
{
    const msgpack_object *v = codec_map_get(m, key);
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    else
        buf[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Offline: the store, the model                                       */
/* ------------------------------------------------------------------ */

/* Opens the store in o->dir, which must already be one: read-only, or for
 * writing (which takes its writer lock). */
static int open_store(const audience_cli *o, int writable, store **s)
{
    char err[800], path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", o->dir);
    if (stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode) || stat(path, &st) != 0)
        return cli_error(CMD, CLI_FAIL, "no leadscore store in %s", o->dir);
    if (st.st_size == 0) /* opening it for writing would make it a store */
        return cli_error(CMD, CLI_FAIL, "no leadscore store in %s (its data.mdb is empty)", o->dir);
    store_options so = {.read_only = !writable};
    int rc = store_open(s, o->dir, &so, NULL, err, sizeof err);
    if (rc == LS_EUNAVAIL && writable)
        return cli_error(CMD, CLI_FAIL, "%s; to change the audiences of a running service, use --connect EP", err);
    return rc == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "%s", err);
}

/* The model `serve` would use with the same --model (model_load_default),
 * which must keep the store's half-lives. */
static int load_model(const audience_cli *o, store *s, model **m)
{
    char err[600];
    int rc = model_load_default(o->model_path, m, NULL, err, sizeof err);
    if (rc != LS_OK)
        return cli_error(CMD, CLI_FAIL, "%s", err);
    const feature_decay *sd = store_decay(s), *md = model_decay(*m);
    if (sd->short_ms != md->short_ms || sd->long_ms != md->long_ms) {
        cli_error(CMD, CLI_FAIL,
                  "the model %s@%s has half-lives of %.4g and %.4g days but the store keeps %.4g and %.4g: "
                  "give --model, the model the service runs with",
                  model_name(*m), model_version(*m), md->short_ms / 864e5, md->long_ms / 864e5,
                  sd->short_ms / 864e5, sd->long_ms / 864e5);
        model_unref(m);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* An automation for the audience changes and their first pass only: it
 * fires nothing, runs no timer and prunes nothing (offline_build), so the
 * service's own settings (cart delay, retention) are not needed here. */
static int open_automation(store *s, automation **a)
{
    automation_config ac;
    automation_config_defaults(&ac);
    ac.decay = *store_decay(s);
    ac.offline_build = 1;
    return automation_open(a, &ac, NULL) == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "out of memory");
}

/* One write txn that defines (rule != NULL) or deletes audience name.
 * add: *created, *changed; rm: *changed says whether it existed.  A bad
 * rule or name is explained with the reason in err and LS_EPARSE /
 * LS_EBADREQ / LS_ETOOLARGE returned, nothing written. */
static int change_offline(store *s, automation *a, const model *m, const char *name, const char *rule, int *created,
                          int *changed, char *err, size_t errlen)
{
    store_wtxn *w = NULL;
    err[0] = '\0';
    int rc = store_write_begin(s, &w);
    if (rc == LS_OK)
        rc = automation_begin(a, w, m, timefmt_now_ms());
    if (rc == LS_OK && rule)
        rc = automation_audience_put(a, w, name, strlen(name), rule, created, changed, err, errlen);
    else if (rc == LS_OK)
        rc = automation_audience_delete(a, w, name, strlen(name), changed);
    if (rc == LS_OK)
        rc = automation_finish(a, w);
    if (rc == LS_OK)
        rc = store_write_commit(&w);
    store_write_abort(&w);
    if (rc == LS_OK)
        automation_committed(a);
    else
        automation_aborted(a);
    return rc;
}

/* What the first pass prints on a terminal: a line rewritten at most
 * every half second. */
typedef struct {
    uint64_t total;
    int64_t start_ns, last_ns;
} build_progress;

static void show_progress(void *arg, uint64_t visited)
{
    build_progress *p = arg;
    int64_t now = timefmt_mono_ns();
    if (now - p->last_ns < 500000000LL)
        return;
    p->last_ns = now;
    double pct = p->total ? 100.0 * (double)visited / (double)p->total : 0.0;
    fprintf(stderr, "\raudience: first pass: %llu of %llu customers (%.0f%%), %.1f s",
            (unsigned long long)visited, (unsigned long long)p->total, pct > 100 ? 100 : pct,
            (double)(now - p->start_ns) / 1e9);
}

/* The first pass over the store for the audiences that are not ready,
 * growing the map when it fills; a progress line on a terminal for big
 * stores. */
static int build_offline(store *s, automation *a, const model *m)
{
    store_stats ss;
    build_progress p = {0, timefmt_mono_ns(), timefmt_mono_ns()};
    int talk = isatty(STDERR_FILENO) && store_stat(s, &ss) == LS_OK && ss.customers >= PROGRESS_CUSTOMERS;
    if (talk)
        p.total = ss.customers;
    int rc;
    while ((rc = automation_build(a, s, m, timefmt_now_ms(), talk ? show_progress : NULL, &p)) == LS_EFULL)
        if (store_grow(s, MAP_MAX) != LS_OK)
            break;
    if (talk)
        fprintf(stderr, "\raudience: first pass over %llu customers %s in %.1f s\n", (unsigned long long)p.total,
                rc == LS_OK ? "done" : "failed", (double)(timefmt_mono_ns() - p.start_ns) / 1e9);
    return rc;
}

/* Reads audience name in one snapshot of s.  CLI_OK, or CLI_FAIL after
 * explaining (no such audience). */
static int get_offline(store *s, const char *name, audience_info *info)
{
    store_reader *r = NULL;
    int rc = store_reader_open(s, &r);
    if (rc == LS_OK && (rc = store_reader_begin(r)) == LS_OK) {
        rc = audience_get(r, name, strlen(name), info);
        store_reader_end(r);
    }
    store_reader_close(&r);
    if (rc == LS_ENOTFOUND)
        return cli_error(CMD, CLI_FAIL, "no audience named \"%s\"", name);
    return rc == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "reading the store failed: %s", ls_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* Prints j (stolen) as one line of JSON. */
static int print_json(json_t *j)
{
    int rc = j && jsonout_dump(stdout, j) == 0 ? CLI_OK : cli_error(CMD, CLI_FAIL, "cannot print JSON (out of memory?)");
    json_decref(j);
    putchar('\n');
    return rc;
}

static int finish_stdout(int status)
{
    if (fflush(stdout) != 0 && status == CLI_OK)
        return cli_error(CMD, CLI_FAIL, "cannot write to standard output: %s", strerror(errno));
    return status;
}

/* add and rm: {"ok": true, k1: v1[, k2: v2]}. */
static json_t *ok_object(const char *k1, int v1, const char *k2, int v2)
{
    json_t *j = json_object();
    json_object_set_new(j, "ok", json_true());
    json_object_set_new(j, k1, json_boolean(v1));
    if (k2)
        json_object_set_new(j, k2, json_boolean(v2));
    return j;
}

/* ------------------------------------------------------------------ */
/* add                                                                 */
/* ------------------------------------------------------------------ */

/* The service's audience list (below). */
static int list_connect(const audience_cli *o, audience_info **items, size_t *n);

static int add_connect(const audience_cli *o, const char *name, const char *rule, int *created, int *changed,
                       audience_info *info)
{
    ls_client *c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    void *buf;
    if (connect_service(o, PUT_WAIT_MS, &c) != CLI_OK)
        return CLI_FAIL;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_str(&pk, "name");
    pack_str(&pk, name);
    pack_str(&pk, "rule");
    pack_str(&pk, rule);
    int rc = request(c, o, "audience_put", &sb, 2, &up, &buf, PUT_WAIT_MS);
    if (rc == CLI_OK) {
        *created = reply_bool(&up.data, "created");
        *changed = reply_bool(&up.data, "changed");
        info->ready = reply_bool(&up.data, "ready");
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    msgpack_sbuffer_destroy(&sb);
    ls_client_close(&c);
    if (rc != CLI_OK || o->json)
        return rc;
    /* for the line printed: the members and the canonical rule */
    audience_info *items = NULL;
    size_t n = 0;
    if (list_connect(o, &items, &n) == CLI_OK)
        for (size_t i = 0; i < n; i++)
            if (strcmp(items[i].name, name) == 0)
                *info = items[i]; /* members and ready of one later snapshot */
    free(items);
    return CLI_OK;
}

/* Defines the audience offline and makes its first pass; *info is the
 * audience afterwards. */
static int add_offline(const audience_cli *o, const char *name, const char *rule, int *created, int *changed,
                       audience_info *info)
{
    store *s = NULL;
    model *m = NULL;
    automation *a = NULL;
    char err[300];
    if (open_store(o, 1, &s) != CLI_OK)
        return CLI_FAIL;
    int rc = load_model(o, s, &m);
    if (rc == CLI_OK)
        rc = open_automation(s, &a);
    if (rc != CLI_OK)
        goto done;
    int st = change_offline(s, a, m, name, rule, created, changed, err, sizeof err);
    if (st == LS_EPARSE)
        rc = cli_error(CMD, CLI_FAIL, "bad rule: %s", err);
    else if (st != LS_OK)
        rc = cli_error(CMD, CLI_FAIL, "%s", err[0] ? err : ls_strerror(st));
    else if ((rc = get_offline(s, name, info)) == CLI_OK && !info->ready) {
        /* a new or changed rule, or one a stopped service left half-built */
        if ((st = build_offline(s, a, m)) != LS_OK)
            rc = cli_error(CMD, CLI_FAIL,
                           "audience %s is defined, but its first pass over the store failed (%s): the service "
                           "finishes it when it next runs on %s",
                           name, ls_strerror(st), o->dir);
        else
            rc = get_offline(s, name, info);
    }
done:
    automation_close(&a);
    model_unref(&m);
    store_close(&s);
    return rc;
}

static int run_add(const audience_cli *o, char **args)
{
    const char *name = args[0], *rule = args[1];
    int created = 0, changed = 0, rc;
    audience_info info = {0};
    if (o->dir)
        rc = add_offline(o, name, rule, &created, &changed, &info);
    else
        rc = add_connect(o, name, rule, &created, &changed, &info);
    if (rc != CLI_OK)
        return rc;
    if (o->json) {
        json_t *j = ok_object("created", created, "changed", changed);
        json_object_set_new(j, "ready", json_boolean(info.ready));
        return finish_stdout(print_json(j));
    }
    const char *what = created ? "created" : changed ? "redefined" : "unchanged (the same rule)";
    if (!info.rule[0]) /* the service's list did not answer: the line without the details */
        printf("audience %s %s\n", name, what);
    else if (info.ready)
        printf("audience %s %s: %llu member%s (rule: %s)\n", name, what, (unsigned long long)info.members,
               info.members == 1 ? "" : "s", info.rule);
    else
        printf("audience %s %s: the service is still finding its first members, %llu so far\n"
               "(rule: %s; `leadscore audience list` shows when it is ready)\n",
               name, what, (unsigned long long)info.members, info.rule);
    return finish_stdout(CLI_OK);
}

/* ------------------------------------------------------------------ */
/* rm                                                                  */
/* ------------------------------------------------------------------ */

static int run_rm(const audience_cli *o, char **args)
{
    const char *name = args[0];
    int deleted = 0, created = 0, rc = CLI_OK;
    if (o->dir) {
        store *s = NULL;
        automation *a = NULL;
        char err[300];
        if (open_store(o, 1, &s) != CLI_OK)
            return CLI_FAIL;
        /* deleting evaluates nobody: no model is needed */
        if ((rc = open_automation(s, &a)) == CLI_OK) {
            int st = change_offline(s, a, NULL, name, NULL, &created, &deleted, err, sizeof err);
            if (st != LS_OK)
                rc = cli_error(CMD, CLI_FAIL, "%s", err[0] ? err : ls_strerror(st));
        }
        automation_close(&a);
        store_close(&s);
    } else {
        ls_client *c;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        void *buf;
        if (connect_service(o, 0, &c) != CLI_OK)
            return CLI_FAIL;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_str(&pk, "name");
        pack_str(&pk, name);
        rc = request(c, o, "audience_delete", &sb, 1, &up, &buf, 0);
        deleted = rc == CLI_OK && reply_bool(&up.data, "deleted");
        msgpack_unpacked_destroy(&up);
        free(buf);
        msgpack_sbuffer_destroy(&sb);
        ls_client_close(&c);
    }
    if (rc != CLI_OK)
        return rc;
    if (o->json)
        rc = print_json(ok_object("deleted", deleted, NULL, 0));
    else if (deleted)
        printf("audience %s deleted\n", name);
    rc = finish_stdout(rc);
    if (rc == CLI_OK && !deleted)
        rc = cli_error(CMD, CLI_FAIL, "no audience named \"%s\": nothing deleted", name);
    return rc;
}

/* ------------------------------------------------------------------ */
/* list                                                                */
/* ------------------------------------------------------------------ */

/* The audiences of the service's audience_list reply, into a new array. */
static int list_from_reply(const msgpack_object *reply, audience_info **out, size_t *n)
{
    const msgpack_object *arr = codec_map_get(reply, "audiences");
    *out = NULL;
    *n = 0;
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return cli_error(CMD, CLI_FAIL, "the reply has no \"audiences\" list");
    *out = calloc(arr->via.array.size ? arr->via.array.size : 1, sizeof **out);
    if (!*out)
        return cli_error(CMD, CLI_FAIL, "out of memory");
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *m = &arr->via.array.ptr[i];
        audience_info *a = &(*out)[i];
        int64_t v = 0;
        reply_str(m, "name", a->name, sizeof a->name);
        reply_str(m, "rule", a->rule, sizeof a->rule);
        if (codec_get_int(m, "members", &v) == LS_OK && v >= 0)
            a->members = (uint64_t)v;
        if (codec_get_int(m, "created", &v) == LS_OK)
            a->created_ms = v;
        a->ready = reply_bool(m, "ready");
    }
    *n = arr->via.array.size;
    return CLI_OK;
}

static int list_connect(const audience_cli *o, audience_info **items, size_t *n)
{
    ls_client *c;
    msgpack_unpacked up;
    void *buf;
    if (connect_service(o, 0, &c) != CLI_OK)
        return CLI_FAIL;
    int rc = request(c, o, "audience_list", NULL, 0, &up, &buf, 0);
    if (rc == CLI_OK)
        rc = list_from_reply(&up.data, items, n);
    msgpack_unpacked_destroy(&up);
    free(buf);
    ls_client_close(&c);
    return rc;
}

static int list_offline(const audience_cli *o, audience_info **items, size_t *n)
{
    store *s = NULL;
    store_reader *r = NULL;
    if (open_store(o, 0, &s) != CLI_OK)
        return CLI_FAIL;
    int rc = store_reader_open(s, &r);
    if (rc == LS_OK && (rc = store_reader_begin(r)) == LS_OK) {
        rc = audience_list(r, items, n);
        store_reader_end(r);
    }
    store_reader_close(&r);
    store_close(&s);
    return rc == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "reading the store failed: %s", ls_strerror(rc));
}

static json_t *list_json(const audience_info *items, size_t n)
{
    json_t *j = json_object(), *arr = json_array();
    json_object_set_new(j, "ok", json_true());
    json_object_set_new(j, "audiences", arr);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_object();
        json_object_set_new(a, "name", jsonout_string(items[i].name, strlen(items[i].name)));
        json_object_set_new(a, "rule", jsonout_string(items[i].rule, strlen(items[i].rule)));
        json_object_set_new(a, "members", json_integer((json_int_t)items[i].members));
        json_object_set_new(a, "ready", json_boolean(items[i].ready));
        json_object_set_new(a, "created", json_integer(items[i].created_ms));
        json_array_append_new(arr, a);
    }
    return j;
}

static void list_table(const audience_info *items, size_t n)
{
    int width = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(items[i].name) > width)
            width = (int)strlen(items[i].name);
    if (n == 0) {
        printf("no audiences\n");
        return;
    }
    printf("%-*s  %10s  %-5s  %-24s  %s\n", width, "NAME", "MEMBERS", "READY", "CREATED", "RULE");
    for (size_t i = 0; i < n; i++) {
        char when[TIMEFMT_ISO_BUFSZ] = "?";
        timefmt_format_iso(items[i].created_ms, when, sizeof when);
        printf("%-*s  %10llu  %-5s  %-24s  %s\n", width, items[i].name, (unsigned long long)items[i].members,
               items[i].ready ? "yes" : "no", when, items[i].rule);
    }
}

static int run_list(const audience_cli *o, char **args)
{
    audience_info *items = NULL;
    size_t n = 0;
    (void)args;
    int rc = o->dir ? list_offline(o, &items, &n) : list_connect(o, &items, &n);
    if (rc == CLI_OK && o->json)
        rc = print_json(list_json(items, n));
    else if (rc == CLI_OK)
        list_table(items, n);
    free(items);
    return finish_stdout(rc);
}

/* ------------------------------------------------------------------ */
/* export                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    FILE *f;
    int format;
    uint64_t rows;
    json_t *obj, *id;        /* jsonl: {"customer": id}, id set per row */
    int failed;              /* a write failed */
    int error;               /* errno of the first failed write (0: none seen) */
    int started;             /* the CSV header is written */
    atomicfile out;          /* --out FILE: written whole or not at all */
} export_out;

/* Opens where the rows go: standard output, FILE directly when it is not
 * a regular file (/dev/null, a pipe), else a temporary file beside it. */
static int export_open(export_out *x, const audience_cli *o)
{
    char err[ATOMICFILE_PATH_MAX + 200];
    x->format = o->format;
    if (!o->out_path || strcmp(o->out_path, "-") == 0) {
        x->f = stdout;
    } else {
        if (atomicfile_open(&x->out, o->out_path, err, sizeof err) != LS_OK)
            return cli_error(CMD, CLI_FAIL, "%s", err);
        x->f = x->out.f;
    }
    if (x->format == FORMAT_JSONL) {
        x->obj = json_object();
        x->id = json_string("");
        if (!x->obj || !x->id || json_object_set(x->obj, "customer", x->id) != 0)
            return cli_error(CMD, CLI_FAIL, "out of memory");
    }
    return CLI_OK;
}

/* The CSV header, once the audience is known to exist (so a failure
 * leaves standard output empty). */
static void export_start(export_out *x)
{
    if (!x->started && x->format == FORMAT_CSV && fputs("customer\n", x->f) == EOF && !x->failed) {
        x->failed = 1;
        x->error = errno ? errno : EIO;
    }
    x->started = 1;
}

/* One member: a CSV field (quoted when it holds a comma, a quote or a line
 * break, quotes doubled) or a JSON object. */
static int export_row(void *arg, const char *id, size_t len, int64_t entered_ms)
{
    export_out *x = arg;
    (void)entered_ms;
    export_start(x);
    x->rows++;
    if (x->format == FORMAT_JSONL) {
        if (jsonout_string_set(x->id, id, len) != 0 || jsonout_dump(x->f, x->obj) != 0 || putc('\n', x->f) == EOF)
            x->failed = 1;
    } else if (len && !memchr(id, ',', len) && !memchr(id, '"', len) && !memchr(id, '\n', len) &&
               !memchr(id, '\r', len)) {
        if (fwrite(id, 1, len, x->f) != len || putc('\n', x->f) == EOF)
            x->failed = 1;
    } else {
        putc('"', x->f);
        for (size_t i = 0; i < len; i++) {
            if (id[i] == '"')
                putc('"', x->f);
            putc(id[i], x->f);
        }
        if (fputs("\"\n", x->f) == EOF)
            x->failed = 1;
    }
    if (x->failed && !x->error)
        x->error = errno ? errno : EIO;
    return x->failed ? LS_EIO : 0;
}

/* Finishes the output: flushed, synced and renamed into place when it
 * went to a temporary file, which a failure (status != CLI_OK) removes.
 * A failed write is explained here whatever status says: a reader stops
 * at the first one and returns CLI_FAIL without a word (x->failed). */
static int export_close(export_out *x, const audience_cli *o, int status)
{
    json_decref(x->obj);
    json_decref(x->id);
    if (!x->f)
        return status;
    if (status == CLI_OK)
        export_start(x); /* an empty audience: the header alone */
    if (x->f == stdout) {
        x->f = NULL;
        int bad = fflush(stdout) != 0 || ferror(stdout);
        if (x->failed || (bad && status == CLI_OK))
            status = cli_error(CMD, CLI_FAIL, "writing standard output failed: %s",
                               strerror(x->error ? x->error : errno ? errno : EIO));
        return status;
    }
    x->f = NULL;
    char err[ATOMICFILE_PATH_MAX + 200];
    if (x->failed) {
        status = cli_error(CMD, CLI_FAIL, "writing %s failed: %s", o->out_path, strerror(x->error ? x->error : EIO));
    } else if (status == CLI_OK && atomicfile_commit(&x->out, err, sizeof err) != LS_OK) {
        status = cli_error(CMD, CLI_FAIL, "%s", err);
    }
    atomicfile_abort(&x->out); /* never a partial file, never a temporary one left behind */
    return status;
}

static int export_connect(const audience_cli *o, const char *name, export_out *x, int *ready)
{
    ls_client *c;
    char cursor[STORE_MAX_KEY];
    size_t cursor_len = 0; /* 0: the first page (a cursor is an id: bytes, NULs included) */
    int rc;
    if (connect_service(o, 0, &c) != CLI_OK)
        return CLI_FAIL;
    for (int page = 0;; page++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        void *buf;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_str(&pk, "name");
        pack_str(&pk, name);
        pack_str(&pk, "limit");
        msgpack_pack_int(&pk, PAGE);
        pack_str(&pk, "cursor");
        if (cursor_len) {
            msgpack_pack_str(&pk, cursor_len);
            msgpack_pack_str_body(&pk, cursor, cursor_len);
        } else {
            msgpack_pack_nil(&pk);
        }
        rc = request(c, o, "audience_members", &sb, 3, &up, &buf, 0);
        msgpack_sbuffer_destroy(&sb);
        const msgpack_object *members = rc == CLI_OK ? codec_map_get(&up.data, "members") : NULL;
        const msgpack_object *next = rc == CLI_OK ? codec_map_get(&up.data, "cursor") : NULL;
        if (rc == CLI_OK && (!members || members->type != MSGPACK_OBJECT_ARRAY))
            rc = cli_error(CMD, CLI_FAIL, "the reply has no \"members\" list");
        if (rc == CLI_OK && page == 0)
            *ready = reply_bool(&up.data, "ready");
        for (uint32_t i = 0; rc == CLI_OK && i < members->via.array.size; i++) {
            const msgpack_object *id = &members->via.array.ptr[i];
            if (id->type == MSGPACK_OBJECT_STR && export_row(x, id->via.str.ptr, id->via.str.size, 0) != 0)
                rc = CLI_FAIL; /* export_close explains */
        }
        cursor_len = 0;
        if (rc == CLI_OK && next && next->type == MSGPACK_OBJECT_STR) {
            if (next->via.str.size > sizeof cursor || next->via.str.size == 0)
                rc = cli_error(CMD, CLI_FAIL, "the reply's cursor is not a customer id");
            else {
                memcpy(cursor, next->via.str.ptr, next->via.str.size);
                cursor_len = next->via.str.size;
            }
        }
        msgpack_unpacked_destroy(&up);
        free(buf);
        if (rc != CLI_OK || !cursor_len)
            break;
    }
    ls_client_close(&c);
    return rc;
}

static int export_offline(const audience_cli *o, const char *name, export_out *x, int *ready)
{
    store *s = NULL;
    store_reader *r = NULL;
    audience_info info;
    int more = 0;
    if (open_store(o, 0, &s) != CLI_OK)
        return CLI_FAIL;
    int rc = store_reader_open(s, &r);
    if (rc == LS_OK && (rc = store_reader_begin(r)) == LS_OK) {
        rc = audience_get(r, name, strlen(name), &info);
        if (rc == LS_OK) {
            *ready = info.ready;
            rc = audience_members(r, info.id, NULL, 0, SIZE_MAX, export_row, x, &more);
        }
        store_reader_end(r);
    }
    store_reader_close(&r);
    store_close(&s);
    if (rc == LS_ENOTFOUND)
        return cli_error(CMD, CLI_FAIL, "no audience named \"%s\"", name);
    if (rc != LS_OK && x->failed)
        return CLI_FAIL; /* export_close explains */
    return rc == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "reading the store failed: %s", ls_strerror(rc));
}

static int run_export(const audience_cli *o, char **args)
{
    const char *name = args[0];
    export_out x = {0};
    int ready = 0;
    int rc = export_open(&x, o);
    if (rc == CLI_OK)
        rc = o->dir ? export_offline(o, name, &x, &ready) : export_connect(o, name, &x, &ready);
    rc = export_close(&x, o, rc);
    if (rc != CLI_OK)
        return rc;
    if (!ready)
        fprintf(stderr, "leadscore audience: warning: %s is not ready (its first pass over the store is not done): "
                        "the export may miss members\n", name);
    const char *to = !o->out_path ? "" : strcmp(o->out_path, "-") == 0 ? "standard output" : o->out_path;
    fprintf(stderr, "exported %llu member%s of audience %s%s%s\n", (unsigned long long)x.rows, x.rows == 1 ? "" : "s",
            name, to[0] ? " to " : "", to);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    const cliopts_spec *spec;
    int nargs;
    const char *args;
    int (*run)(const audience_cli *o, char **args);
} actions[] = {
    {"add", &add_spec, 2, "NAME RULE", run_add},
    {"list", &list_spec, 0, "no operand", run_list},
    {"rm", &rm_spec, 1, "NAME", run_rm},
    {"export", &export_spec, 1, "NAME", run_export},
};

int cmd_audience(int argc, char **argv)
{
    if (argc < 2)
        return cli_error(CMD, CLI_USAGE, "give an action: add, list, rm or export (see --help)");
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h") || !strcmp(action, "help")) {
        cliopts_help(&overview_spec, stdout);
        return CLI_OK;
    }
    size_t i = 0;
    while (i < sizeof actions / sizeof actions[0] && strcmp(actions[i].name, action) != 0)
        i++;
    if (i == sizeof actions / sizeof actions[0])
        return cli_error(CMD, CLI_USAGE, "%s \"%s\": the action comes first: add, list, rm or export (see --help)",
                         action[0] == '-' ? "expected an action, not" : "unknown action", action);
    audience_cli o = {.format = FORMAT_CSV, .svc.timeout_ms = 5000};
    int first = cliopts_parse(actions[i].spec, argc - 1, argv + 1, &o);
    if (first < 0)
        return cliopts_status(first);
    if (o.dir && o.svc.endpoint)
        return cli_error(CMD, CLI_USAGE, "--data and --connect exclude each other");
    if (!o.dir && !o.svc.endpoint) {
        const char *env = getenv("LEADSCORE_CONNECT");
        o.svc.endpoint = env && *env ? env : CLI_DEFAULT_CONNECT;
    }
    int nargs = argc - 1 - first;
    if (nargs != actions[i].nargs)
        return cli_error(CMD, CLI_USAGE, "%s takes %s, not %d operand%s (see `leadscore audience %s --help`)",
                         action, actions[i].args, nargs, nargs == 1 ? "" : "s", action);
    if (!o.svc.server_key != !o.svc.key_prefix)
        return cli_error(CMD, CLI_USAGE, "--server-key and --key go together");
    if (o.dir && o.svc.server_key)
        return cli_error(CMD, CLI_USAGE, "--server-key and --key are for --connect");
    if (!o.dir && o.model_path)
        return cli_error(CMD, CLI_USAGE, "--model is for --data (a service scores with its own model)");
    return actions[i].run(&o, argv + 1 + first);
}
