/* cmd_client.c -- the one-off request commands (`track`, `score`,
 * `profile`, `ping`, `stats`, `model`): each builds one request with the C
 * client library, sends it to a running service and prints the reply,
 * readably or as JSON (--json). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cliopts.h"
#include "eventfile.h"
#include "jsonout.h"
#include "leadscore/client.h"
#include "security.h"

typedef struct {
    const char *cmd;
    const char *connect;
    int json;
    int explain;
    int timeout_ms;
    int64_t now_ms;
    int has_now;
    int k;
    const char *server_key;   /* file with the server's public key */
    const char *key_prefix;   /* PREFIX.pub / PREFIX.key of this client */
} client_opts;

#define F(field) CLIOPT_FIELD(client_opts, field)
/* The options every one-off request command takes. */
#define CLIENT_ROWS                                                                                                   \
    {.name = "connect", .kind = CLIOPT_STRING, F(connect), .arg = "EP",                                            \
     .help = "service endpoint (default $LEADSCORE_CONNECT or " CLI_DEFAULT_CONNECT ")"},                            \
        {.name = "json", .kind = CLIOPT_FLAG, F(json),                                                               \
         .help = "print the whole reply as one line of JSON (doubles to 17 digits)"},                                \
        {.name = "timeout", .kind = CLIOPT_INT, F(timeout_ms), .lo = 1, .hi = 3600000,                               \
         .want = "milliseconds from 1 to 3600000", .arg = "MS", .help = "how long to wait for the reply (default 5000)"}, \
        {.name = "server-key", .kind = CLIOPT_STRING, F(server_key), .arg = "FILE",                                  \
         .help = "CurveZMQ: the server's public key file"},                                                          \
        {.name = "key", .kind = CLIOPT_STRING, F(key_prefix), .arg = "PREFIX",                                       \
         .help = "CurveZMQ: this client's key pair (PREFIX.pub, PREFIX.key from `leadscore keygen`)"}
#define NOW_ROW                                                                                                       \
    {.name = "now", .kind = CLIOPT_TIME, F(now_ms), CLIOPT_GIVEN(client_opts, has_now), .arg = "TIME",            \
     .help = "answer as of TIME (Unix seconds or ISO 8601): the customer's\n"                                        \
             "events up to then, replayed from its history"}

static const cliopt plain_rows[] = {CLIENT_ROWS, CLIOPT_END};
static const cliopt profile_rows[] = {CLIENT_ROWS, NOW_ROW, CLIOPT_END};
static const cliopt score_rows[] = {
    CLIENT_ROWS,
    {.name = "explain", .kind = CLIOPT_FLAG, F(explain),
     .help = "list each feature's contribution to the score\n"
             "(with --json the reply is always {\"ok\":true,\"id\":N,\"results\":[...]}, one result per ID)"},
    NOW_ROW, CLIOPT_END};
static const cliopt recommend_rows[] = {
    CLIENT_ROWS,
    {.name = "k", .kind = CLIOPT_INT, F(k), .lo = 1, .hi = 50, .arg = "N", .help = "how many segments (default: the model's)"},
    NOW_ROW, CLIOPT_END};
#undef F

/* Parses the options of o->cmd (args: its operands for the usage line,
 * what: its description); returns the index of the first operand, or a
 * negative cliopts_parse status. */
static int parse_opts(int argc, char **argv, client_opts *o, const char *args, const char *what)
{
    char usage[384];
    snprintf(usage, sizeof usage, "leadscore %s [--connect EP] [--json] [--timeout MS]%s\n"
             "(options may also follow the operands; -- ends them, for an id that starts with a dash)", o->cmd, args);
    const cliopts_spec spec = {
        .cmd = o->cmd,
        .usage = usage,
        .about = what,
        .opts = !strcmp(o->cmd, "score")       ? score_rows
                : !strcmp(o->cmd, "recommend") ? recommend_rows
                : !strcmp(o->cmd, "profile")   ? profile_rows
                                               : plain_rows,
        .in_order = 0, /* options may follow the operands too; "--" ends them, for an id such as "-1" */
    };
    const char *env = getenv("LEADSCORE_CONNECT");
    o->connect = env && *env ? env : CLI_DEFAULT_CONNECT;
    o->timeout_ms = 5000;
    int first = cliopts_parse(&spec, argc, argv, o);
    if (first >= 0 && !o->server_key != !o->key_prefix)
        return cli_error(o->cmd, CLI_USAGE, "--server-key and --key go together"), CLIOPTS_USAGE;
    return first;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Packs "now" when --now was given; returns the fields packed (0 or 1). */
static uint32_t pack_now(const client_opts *o, msgpack_packer *pk)
{
    if (!o->has_now)
        return 0;
    pack_str(pk, "now");
    msgpack_pack_int64(pk, o->now_ms);
    return 1;
}

int cli_connect(const char *cmd, const cli_service *svc, int timeout_ms, ls_client **c)
{
    char server[SECURITY_KEY_Z85], pub[SECURITY_KEY_Z85], sec[SECURITY_KEY_Z85], path[1100], err[600];
    *c = NULL;
    if (!svc->server_key)
        return ls_client_connect(c, svc->endpoint, timeout_ms) == LS_OK
                   ? CLI_OK
                   : cli_error(cmd, CLI_FAIL, "cannot use endpoint \"%s\"", svc->endpoint);
    int rc = security_read_key(svc->server_key, server, err, sizeof err);
    snprintf(path, sizeof path, "%s.pub", svc->key_prefix);
    if (rc == LS_OK)
        rc = security_read_key(path, pub, err, sizeof err);
    snprintf(path, sizeof path, "%s.key", svc->key_prefix);
    if (rc == LS_OK)
        rc = security_read_key(path, sec, err, sizeof err);
    if (rc != LS_OK)
        return cli_error(cmd, CLI_FAIL, "%s", err);
    rc = ls_client_connect_secure(c, svc->endpoint, timeout_ms, server, pub, sec);
    memset(sec, 0, sizeof sec);
    return rc == LS_OK ? CLI_OK : cli_error(cmd, CLI_FAIL, "cannot use endpoint \"%s\"", svc->endpoint);
}

/* Connects, over CurveZMQ when keys were given. */
static int open_client(client_opts *o, ls_client **c)
{
    const cli_service svc = {o->connect, o->timeout_ms, o->server_key, o->key_prefix};
    return cli_connect(o->cmd, &svc, o->timeout_ms, c);
}

/* The value at key in a msgpack map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    size_t n = strlen(key);
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

/* track: explains each event the service rejected on stderr; returns how
 * many there were. */
static int report_rejected(const client_opts *o, const msgpack_object *reply)
{
    const msgpack_object *rej = map_get(reply, "rejected");
    if (!rej || rej->type != MSGPACK_OBJECT_ARRAY)
        return 0;
    for (uint32_t i = 0; i < rej->via.array.size; i++) {
        const msgpack_object *code = map_get(&rej->via.array.ptr[i], "code");
        const msgpack_object *msg = map_get(&rej->via.array.ptr[i], "message");
        cli_error(o->cmd, CLI_FAIL, "the event was rejected: %.*s: %.*s",
                  code && code->type == MSGPACK_OBJECT_STR ? (int)code->via.str.size : 1,
                  code && code->type == MSGPACK_OBJECT_STR ? code->via.str.ptr : "?",
                  msg && msg->type == MSGPACK_OBJECT_STR ? (int)msg->via.str.size : 0,
                  msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr : "");
    }
    return (int)rej->via.array.size;
}

/* Sends op with the given fields and prints the reply: as one line of JSON
 * with --json (error replies too), else readably.  Exit 1 on an error reply
 * (explained on stderr either way) and, for track, when the service
 * rejected the event. */
static int call_and_print(client_opts *o, const char *op, msgpack_sbuffer *fields, uint32_t nfields)
{
    ls_client *c;
    void *reply = NULL;
    size_t len = 0;
    if (open_client(o, &c) != CLI_OK)
        return CLI_FAIL;
    int rc = ls_client_call(c, op, fields ? fields->data : NULL, fields ? fields->size : 0, nfields, &reply, &len);
    if (rc == LS_ETIMEOUT) {
        ls_client_close(&c);
        int write = strcmp(op, "track") == 0 || strcmp(op, "alias") == 0 || strcmp(op, "forget") == 0;
        return cli_error(o->cmd, CLI_FAIL, "no reply from %s within %d ms (--timeout): is `leadscore serve` running "
                         "there?%s", o->connect, o->timeout_ms,
                         write ? " The write may still be stored: send it again with the same event_id (a "
                                 "duplicate counts once). A cluster node may take up to 15 s to answer a write "
                                 "while NATS recovers: give --timeout 20000 there" : "");
    }
    int status = rc == LS_OK ? CLI_OK : CLI_FAIL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (reply && msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        if (o->json) {
            if (jsonout_json(stdout, &up.data) != 0)
                status = cli_error(o->cmd, CLI_FAIL, "cannot print the reply as JSON (out of memory?)");
            putchar('\n');
        } else if (rc == LS_OK) {
            jsonout_readable(stdout, &up.data, 0);
        }
        if (rc == LS_OK && strcmp(op, "track") == 0 && report_rejected(o, &up.data) > 0)
            status = CLI_FAIL;
    }
    msgpack_unpacked_destroy(&up);
    if (rc != LS_OK)
        cli_error(o->cmd, CLI_FAIL, "%s: %s", ls_wire_code(rc), ls_client_last_error(c));
    free(reply);
    ls_client_close(&c);
    if (fflush(stdout) != 0)
        status = cli_error(o->cmd, CLI_FAIL, "cannot write the reply to standard output");
    return status;
}

/* ------------------------------------------------------------------ */
/* track                                                               */
/* ------------------------------------------------------------------ */

/* Packs one field=value argument with the type its name calls for. */
static int pack_field(client_opts *o, msgpack_packer *pk, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_error(o->cmd, CLI_USAGE, "\"%s\" is not field=value", arg);
    char name[64];
    const char *v = eq + 1;
    snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
    pack_str(pk, name);
    if (strcmp(name, "ts") == 0) {
        int64_t ms;
        int trc = cli_parse_time(v, &ms);
        if (trc == LS_EINVAL)
            return cli_error(o->cmd, CLI_USAGE, "ts: \"%s\" is " CLI_TIME_EARLY, v);
        if (trc != 0)
            return cli_error(o->cmd, CLI_USAGE, "ts: \"%s\" is not a time (Unix seconds, ms or ISO 8601)", v);
        msgpack_pack_int64(pk, ms);
    } else if (!strcmp(name, "price") || !strcmp(name, "value")) {
        double d; /* as import reads them: no hex (0x10), blanks, inf or nan */
        if (eventfile_parse_decimal(v, strlen(v), &d) != 0)
            return cli_error(o->cmd, CLI_USAGE, "%s: \"%s\" is not a number", name, v);
        msgpack_pack_double(pk, d);
    } else if (!strcmp(name, "quantity") || !strcmp(name, "rating")) {
        int64_t n; /* as import reads them: "2" or "2.0" (the wire takes integral floats too) */
        int bad = eventfile_parse_whole(v, strlen(v), &n);
        if (bad == -2)
            return cli_error(o->cmd, CLI_USAGE, "%s: \"%s\" is beyond 9e15", name, v);
        if (bad)
            return cli_error(o->cmd, CLI_USAGE, "%s: \"%s\" is not a whole number", name, v);
        msgpack_pack_int64(pk, n);
    } else if (!strcmp(name, "discounted")) {
        int yes = !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes");
        if (!yes && strcmp(v, "false") && strcmp(v, "0") && strcmp(v, "no"))
            return cli_error(o->cmd, CLI_USAGE, "discounted: \"%s\" is not true or false", v);
        yes ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    } else {
        pack_str(pk, v);
    }
    return CLI_OK;
}

int cmd_track(int argc, char **argv)
{
    client_opts o = {.cmd = "track"};
    int first = parse_opts(argc, argv, &o, " CUSTOMER TYPE [field=value ...]",
                           "Sends one event and waits until it is durably stored.  Exit 1 when the\n"
                           "service rejects it (the reason on stderr; the reply is still printed).\n"
                           "Fields: ts, event_id, session, product, category, price, quantity, value,\n"
                           "discounted, rating, order_id, birthday (PROTOCOL.md section 2).\n"
                           "Example: leadscore track alice add_to_cart price=40 category=shoes/running");
    if (first < 0)
        return cliopts_status(first);
    if (argc - first < 2)
        return cli_error("track", CLI_USAGE, "give CUSTOMER and TYPE (see --help)");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, (size_t)(argc - first));
    pack_str(&pk, "customer");
    pack_str(&pk, argv[first]);
    pack_str(&pk, "type");
    pack_str(&pk, argv[first + 1]);
    int rc = CLI_OK;
    for (int i = first + 2; i < argc && rc == CLI_OK; i++)
        rc = pack_field(&o, &pk, argv[i]);
    if (rc == CLI_OK)
        rc = call_and_print(&o, "track", &sb, 1);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ------------------------------------------------------------------ */
/* score, profile and the field-less ones                              */
/* ------------------------------------------------------------------ */

int cmd_score(int argc, char **argv)
{
    client_opts o = {.cmd = "score"};
    int first = parse_opts(argc, argv, &o, " [--explain] [--now TIME] ID...",
                           "Scores customers: purchase readiness, tier and (with --explain) why.");
    if (first < 0)
        return cliopts_status(first);
    int n = argc - first;
    if (n < 1)
        return cli_error("score", CLI_USAGE, "give at least one customer ID (see --help)");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* With --json the request is always a batch, so the reply has one
     * shape for one ID and for many: {"ok": true, "id": N, "results": [...]}. */
    int batch = n > 1 || o.json;
    pack_str(&pk, batch ? "customers" : "customer");
    if (batch)
        msgpack_pack_array(&pk, (size_t)n);
    for (int i = first; i < argc; i++)
        pack_str(&pk, argv[i]);
    uint32_t nfields = 1;
    if (o.explain) {
        pack_str(&pk, "explain");
        msgpack_pack_true(&pk);
        nfields++;
    }
    nfields += pack_now(&o, &pk);
    int rc = call_and_print(&o, "score", &sb, nfields);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* profile and recommend: one customer ID, `now` when given, and for
 * recommend `k`. */
static int customer_read_command(int argc, char **argv, const char *cmd, const char *args, const char *what)
{
    client_opts o = {.cmd = cmd};
    int first = parse_opts(argc, argv, &o, args, what);
    if (first < 0)
        return cliopts_status(first);
    if (argc - first != 1)
        return cli_error(cmd, CLI_USAGE, "give exactly one customer ID");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_str(&pk, "customer");
    pack_str(&pk, argv[first]);
    uint32_t nfields = 1 + pack_now(&o, &pk);
    if (o.k > 0) {
        pack_str(&pk, "k");
        msgpack_pack_int(&pk, o.k);
        nfields++;
    }
    int rc = call_and_print(&o, cmd, &sb, nfields);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int cmd_recommend(int argc, char **argv)
{
    return customer_read_command(argc, argv, "recommend", " [--k N] [--now TIME] ID",
                                 "Ranks the content segments to show a customer, each with its reason.");
}

static int plain_command(int argc, char **argv, const char *cmd, const char *what)
{
    client_opts o = {.cmd = cmd};
    int first = parse_opts(argc, argv, &o, "", what);
    if (first < 0)
        return cliopts_status(first);
    if (first != argc)
        return cli_error(cmd, CLI_USAGE, "unexpected argument \"%s\"", argv[first]);
    return call_and_print(&o, cmd, NULL, 0);
}

int cmd_ping(int argc, char **argv) { return plain_command(argc, argv, "ping", "Checks that the service answers."); }
int cmd_stats(int argc, char **argv) { return plain_command(argc, argv, "stats", "Shows counters and latency percentiles."); }
int cmd_model(int argc, char **argv) { return plain_command(argc, argv, "model", "Shows the active model."); }

/* Sends op with string fields names[i] = the operands, in order. */
static int string_fields_command(int argc, char **argv, const char *cmd, const char *args, const char *what,
                                 const char *const *names, int n)
{
    client_opts o = {.cmd = cmd};
    int first = parse_opts(argc, argv, &o, args, what);
    if (first < 0)
        return cliopts_status(first);
    if (argc - first != n)
        return cli_error(cmd, CLI_USAGE, "expected%s (see --help)", args);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < n; i++) {
        pack_str(&pk, names[i]);
        pack_str(&pk, argv[first + i]);
    }
    int rc = call_and_print(&o, cmd, &sb, (uint32_t)n);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int cmd_profile(int argc, char **argv)
{
    return customer_read_command(argc, argv, "profile", " [--now TIME] ID",
                                 "Shows a customer's raw feature values (with --now, as they were then).");
}

int cmd_alias(int argc, char **argv)
{
    static const char *const names[] = {"from", "to"};
    return string_fields_command(argc, argv, "alias", " ANONYMOUS_ID CUSTOMER_ID",
                                 "Folds an anonymous visitor's history into a customer (call it at login);\n"
                                 "afterwards both ids answer for the merged customer.", names, 2);
}

int cmd_forget(int argc, char **argv)
{
    static const char *const names[] = {"customer"};
    return string_fields_command(argc, argv, "forget", " CUSTOMER_ID",
                                 "Erases a customer, its aliases and its idempotency keys (right to erasure).\n"
                                 "Run `leadscore compact` afterwards to rewrite the store without freed pages.",
                                 names, 1);
}

int cmd_reload(int argc, char **argv)
{
    client_opts o = {.cmd = "reload"};
    int first = parse_opts(argc, argv, &o, " [FILE]",
                           "Loads a model file into the running service (default: its --model file).\n"
                           "On a bad file the old model stays and the error is printed.");
    if (first < 0)
        return cliopts_status(first);
    if (argc - first > 1)
        return cli_error("reload", CLI_USAGE, "give at most one FILE");
    if (argc - first == 0)
        return call_and_print(&o, "reload", NULL, 0);
    char *abs = realpath(argv[first], NULL);
    if (!abs)
        return cli_error("reload", CLI_FAIL, "cannot find %s", argv[first]);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_str(&pk, "path");
    pack_str(&pk, abs);
    free(abs);
    int rc = call_and_print(&o, "reload", &sb, 1);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
