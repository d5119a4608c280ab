/* config.c -- the one table of serve settings, with defaults, bounds and
 * help, and the parsers for its value kinds (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "leadscore/error.h"
#include "log.h"
#include "timefmt.h"

#define OPT(field) offsetof(config, field)

static const config_option options[] = {
    {"data", CONFIG_STRING, OPT(data_dir), CONFIG_PATH_MAX, "./leadscore-data", 0, 0,
     "directory of the LMDB store (created if missing)"},
    {"model", CONFIG_STRING, OPT(model_path), CONFIG_PATH_MAX, "models/default.json", 0, 0,
     "model file; when the default path does not exist the built-in copy of models/default.json is used"},
    {"bind", CONFIG_STRING, OPT(bind), 256, "tcp://127.0.0.1:5555", 0, 0,
     "ZeroMQ ROUTER endpoint for requests (REQ and DEALER clients)"},
    {"pull", CONFIG_STRING, OPT(pull), 256, "tcp://127.0.0.1:5556", 0, 0,
     "ZeroMQ PULL endpoint for fire-and-forget event batches (\"none\" to disable)"},
    {"workers", CONFIG_INT, OPT(workers), 0, "2", 1, 64,
     "worker threads for batched requests and event decoding"},
    {"max-frame", CONFIG_SIZE, OPT(max_frame), 0, "1MiB", 64, 256LL << 20,
     "largest request frame; larger ones get too_large"},
    {"max-batch", CONFIG_SIZE, OPT(max_events), 0, "10000", 1, 1000000,
     "most events in one track batch"},
    {"max-string", CONFIG_SIZE, OPT(max_string), 0, "256", 1, 256,
     "longest customer id, event id or string field, in bytes"},
    {"max-customers", CONFIG_SIZE, OPT(max_customers), 0, "1000", 1, 100000,
     "most customers in one batched score request"},
    {"dedupe-window", CONFIG_DURATION, OPT(dedupe_window_ms), 0, "7d", 0, 3650LL * 86400000,
     "how long an event_id is remembered across customers, counted from when the server received it (a "
     "customer's own history remembers its event ids for as long as it keeps the events)"},
    {"history-days", CONFIG_INT, OPT(history_days), 0, "730", 1, 36500,
     "event history kept per customer, in days back from that customer's newest event; older events are "
     "folded into a lifetime aggregate"},
    {"commit-max-events", CONFIG_SIZE, OPT(commit_max_events), 0, "50000", 1, 10000000,
     "group commit: most events in one LMDB transaction"},
    {"commit-window", CONFIG_DURATION, OPT(commit_window_ms), 0, "2ms", 0, 1000,
     "group commit: longest time spent collecting batches for one transaction"},
    {"pull-max-events", CONFIG_SIZE, OPT(pull_max_events), 0, "5000", 1, 10000000,
     "group commit: while acknowledged writes are coming (one in the last second), most events of "
     "fire-and-forget PULL batches in one transaction, so an ack does not wait behind a PULL backlog "
     "(lower: faster acks, slower PULL; at most commit-max-events)"},
    {"sync", CONFIG_BOOL, OPT(sync), 0, "on", 0, 1,
     "fsync each commit so an acknowledged event survives power loss (off: faster, NOT durable)"},
    {"map-size", CONFIG_SIZE, OPT(map_size), 0, "1GiB", 1LL << 20, 1LL << 50,
     "initial LMDB map size (address space; the file only grows as data is written)"},
    {"map-max", CONFIG_SIZE, OPT(map_max), 0, "256GiB", 1LL << 20, 1LL << 50,
     "the map doubles when full, up to this; past it, track answers unavailable and reads go on"},
    {"curve-secret", CONFIG_STRING, OPT(curve_secret), CONFIG_PATH_MAX, "", 0, 0,
     "turn CurveZMQ on with this secret key file (from `leadscore keygen`)"},
    {"allow", CONFIG_STRING, OPT(allow), CONFIG_PATH_MAX, "", 0, 0,
     "client public keys (Z85, one per line) that may track, score, recommend, profile, alias, list audiences "
     "and their members, and read triggers"},
    {"admin", CONFIG_STRING, OPT(admin), CONFIG_PATH_MAX, "", 0, 0,
     "admin public keys: may also reload, forget, read stats, run kpis and add or remove audiences"},
    {"log-level", CONFIG_STRING, OPT(log_level), 16, "info", 0, 0,
     "error, warn, info or debug (logfmt lines on stderr; none per request at any level: --slow-ms logs "
     "the slow ones at warn)"},
    {"slow-ms", CONFIG_DURATION_MS, OPT(slow_ms), 0, "0", 0, 3600000,
     "log every request slower than this (a bare number is milliseconds: 5 = 5ms; or 2s ...); 0 turns it off"},
    {"drain-timeout", CONFIG_DURATION, OPT(drain_timeout_ms), 0, "30s", 100, 3600000,
     "on SIGTERM, the longest wait for pending batches to commit before exiting anyway"},
    {"metrics", CONFIG_STRING, OPT(metrics), 256, "", 0, 0,
     "serve Prometheus metrics on HOST:PORT at /metrics (e.g. 127.0.0.1:9464)"},
    {"retrain-every", CONFIG_DURATION, OPT(retrain_every_ms), 0, "0", 0, 3650LL * 86400000,
     "retrain from the store this often (e.g. 1d) in a background thread with its own read snapshot: for the "
     "serving model's horizon h, fitted on features as of now-3h to now-4.5h, calibrated at now-2h and tested on "
     "features as of now-h (labels: orders in the h after each); the new model replaces the serving one only when "
     "it does clearly better on the same customers (by more than 2 standard errors on hold-out log-loss or AUC, "
     "and not clearly worse on the other); in memory only (restart or reload reads --model); 0 turns it off"},
    {"client-hwm", CONFIG_SIZE, OPT(client_hwm), 0, "1000", 1, 1000000,
     "replies the server queues for one client that does not read them (ZeroMQ high-water mark, in messages); "
     "past it that client's replies are dropped and counted (leadscore_replies_dropped_total) while other "
     "clients are served as usual"},
    {"max-envelope", CONFIG_SIZE, OPT(max_envelope), 0, "4KiB", 256, 1LL << 20,
     "largest routing envelope (the frames before the empty delimiter, in bytes) a request may carry; a larger "
     "one is answered too_large without it (to the connection's own identity only) and counted"},
    {"scan-threads", CONFIG_INT, OPT(scan_threads), 0, "1", 1, 16,
     "threads that run whole-store scans (kpis), apart from the workers that serve track and score"},
    {"max-scans", CONFIG_INT, OPT(max_scans), 0, "4", 1, 1024,
     "most kpis scans running or queued at once; more get unavailable (retry later)"},
    {"model-dirs", CONFIG_STRING, OPT(model_dirs), CONFIG_PATH_MAX, "", 0, 0,
     "directories (separated by :) from which `reload` may load a model file by path, besides the directory "
     "of --model; any other path is refused"},
    {"model-max-bytes", CONFIG_SIZE, OPT(model_max_bytes), 0, "16MiB", 1024, 64LL << 20,
     "largest model file the service reads (--model at start, on SIGHUP and on `reload`, and a `reload` "
     "PATH); a larger one is refused before it is read"},
    {"nats", CONFIG_STRING, OPT(nats), 1024, "", 0, 0,
     "cluster mode: comma-separated NATS server URLs (nats://HOST:PORT,...); this process becomes a shard node "
     "of the cluster made with `leadscore cluster init` (empty: a single node, no NATS needed)"},
    {"node", CONFIG_STRING, OPT(node), 48, "", 0, 0,
     "cluster mode: this node's name, as given to `cluster init --nodes`"},
    {"cluster", CONFIG_STRING, OPT(cluster), 48, "ls", 0, 0,
     "cluster mode: the cluster's name (as given to `cluster init --cluster`)"},
    {"advertise", CONFIG_STRING, OPT(advertise), 256, "", 0, 0,
     "cluster mode: the endpoint other nodes and clients reach this node's --bind at (e.g. tcp://10.0.0.5:5555 "
     "when --bind is tcp://*:5555); empty: the endpoint bound"},
    {"triggers", CONFIG_BOOL, OPT(triggers), 0, "on", 0, 1,
     "marketing automation: live audience membership and the trigger outbox, evaluated for every customer a "
     "commit changes (off: neither, and track does a little less work)"},
    {"abandoned-cart-after", CONFIG_DURATION, OPT(abandoned_cart_after_ms), 0, "1h", 1000, 3650LL * 86400000,
     "an open cart fires the abandoned_cart trigger after this long without any event from the customer"},
    {"trigger-cooldowns", CONFIG_STRING, OPT(trigger_cooldowns), 512, "", 0, 0,
     "per-moment cool-downs as moment=duration,... (e.g. abandoned_cart=1d,win_back=30d); a moment left out "
     "keeps its default: abandoned_cart 1d, win_back 30d, birthday 300d, anniversary 300d, vip_reward 30d, "
     "review_request 7d, recovery 30d, account_invite 30d"},
    {"trigger-retention", CONFIG_DURATION, OPT(trigger_retention_ms), 0, "7d", 60000, 3650LL * 86400000,
     "triggers older than this leave the outbox"},
    {"trigger-max", CONFIG_SIZE, OPT(trigger_max), 0, "1000000", 1000, 1000000000,
     "the outbox keeps at most this many triggers (the oldest leave first)"},
    {"audience-refresh", CONFIG_DURATION, OPT(audience_refresh_ms), 0, "15m", 1000, 3650LL * 86400000,
     "pause between two passes that re-evaluate every customer (audiences over time-based fields such as "
     "score or days_since_last_purchase, and a new audience's first members); events and timers "
     "re-evaluate at once"},
    {NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

const config_option *config_table(void)
{
    return options;
}

int config_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *suffix; uint64_t mult; } units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
        {"TiB", 1ULL << 40}, {"K", 1000}, {"M", 1000000}, {"G", 1000000000}};
    char *end;
    if (!s || *s < '0' || *s > '9') /* no sign, no leading space */
        return LS_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return LS_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return LS_EINVAL;
            *out = v * units[i].mult;
            return LS_OK;
        }
    }
    return LS_EINVAL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"on", "true", "yes", "1"}, *no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return LS_OK; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return LS_OK; }
    }
    return LS_EINVAL;
}

static int bad_value(const config_option *o, const char *value, const char *what, char *err, size_t n)
{
    if (err && n)
        snprintf(err, n, "--%s: \"%s\" is not %s", o->name, value, what);
    return LS_EINVAL;
}

/* ms in the largest unit that holds it whole ("1s", "3650d", "100ms"),
 * as a duration option would take it back. */
static void format_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, ms ? "%lldms" : "%lld", (long long)ms);
}

static int set_number(config *cfg, const config_option *o, const char *value, char *err, size_t n)
{
    char *p = (char *)cfg + o->offset;
    uint64_t u;
    int64_t d;
    char *end;
    switch (o->kind) {
    case CONFIG_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            char what[96]; /* say the range, as sizes do */
            snprintf(what, sizeof what, "a whole number from %lld to %lld", (long long)o->min, (long long)o->max);
            return bad_value(o, value, what, err, n);
        }
        *(int *)p = (int)v;
        return LS_OK;
    }
    case CONFIG_SIZE:
        if (config_parse_size(value, &u) || (int64_t)u < o->min || (int64_t)u > o->max) {
            char what[128]; /* counts use this kind too: say the range, not only "a size" */
            snprintf(what, sizeof what, "a number from %lld to %lld (K, M, KiB, MiB ... allowed)", (long long)o->min,
                     (long long)o->max);
            return bad_value(o, value, what, err, n);
        }
        *(uint64_t *)p = u;
        return LS_OK;
    case CONFIG_DURATION:
    case CONFIG_DURATION_MS: {
        /* "5" is 5 ms for an option named in ms, 5 s for the others */
        char ms[64];
        const char *given = value;
        size_t len = strlen(value);
        if (o->kind == CONFIG_DURATION_MS && len > 0 && len + 3 <= sizeof ms && strspn(value, "0123456789.") == len) {
            snprintf(ms, sizeof ms, "%sms", value);
            value = ms;
        }
        if (timefmt_parse_duration(value, &d) || d < o->min || d > o->max) {
            char lo[32], hi[32], what[160]; /* say the range, as the other kinds do */
            format_duration(o->min, lo, sizeof lo);
            format_duration(o->max, hi, sizeof hi);
            snprintf(what, sizeof what, "a duration from %s to %s (units ms, s, m, h, d%s)", lo, hi,
                     o->kind == CONFIG_DURATION_MS ? "; a bare number is ms" : "; a bare number is seconds");
            return bad_value(o, given, what, err, n);
        }
        if (d == 0 && value[strspn(value, "0.")] >= '1' && value[strspn(value, "0.")] <= '9')
            return bad_value(o, given, "0 or at least 1ms (durations count whole milliseconds)", err, n);
        *(int64_t *)p = d;
        return LS_OK;
    }
    case CONFIG_BOOL:
        if (parse_bool(value, (int *)p))
            return bad_value(o, value, "on or off", err, n);
        return LS_OK;
    default:
        return LS_EINVAL;
    }
}

int config_set(config *cfg, const char *name, const char *value, char *err, size_t n)
{
    for (const config_option *o = options; o->name; o++) {
        if (strcmp(o->name, name) != 0)
            continue;
        if (o->kind != CONFIG_STRING)
            return set_number(cfg, o, value, err, n);
        size_t len = strlen(value);
        log_level level;
        if ((len == 0 && *o->defval) || len >= o->cap) /* empty only where unset is the default */
            return bad_value(o, value, "a non-empty value of sensible length", err, n);
        if (strcmp(o->name, "log-level") == 0 && log_parse_level(value, &level) != LS_OK)
            return bad_value(o, value, "error, warn, info or debug", err, n); /* a usage error, with its line */
        memcpy((char *)cfg + o->offset, value, len + 1);
        return LS_OK;
    }
    if (err && n)
        snprintf(err, n, "unknown option --%s", name);
    return LS_ENOTFOUND;
}

void config_defaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (const config_option *o = options; o->name; o++)
        config_set(cfg, o->name, o->defval, NULL, 0);
}

void config_print_help(FILE *out)
{
    for (const config_option *o = options; o->name; o++)
        fprintf(out, "  --%-18s %s\n  %-20s (default: %s)\n", o->name, o->help, "", *o->defval ? o->defval : "none");
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* Parses one line; returns 0 (also for blank and comment lines) or a status. */
static int config_line(config *cfg, char *line, char *err, size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (*s == '\0')
        return LS_OK;
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(err, errlen, "expected `name = value`");
        return LS_EINVAL;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    for (char *c = name; *c; c++)
        if (*c == '_')
            *c = '-'; /* abandoned_cart_after reads as abandoned-cart-after */
    return config_set(cfg, name, value, err, errlen);
}

/* Reads one line (with its newline, if any) into line (cap bytes, NUL-
 * terminated).  1 when a line was read, 0 at the end of the file;
 * *too_long when it does not fit, *nul when it holds a NUL byte (fgets
 * would end the text there, and the rest would be lost unseen). */
static int read_line(FILE *fp, char *line, size_t cap, int *too_long, int *nul)
{
    size_t len = 0;
    int c = EOF;
    *too_long = *nul = 0;
    while ((c = getc(fp)) != EOF) {
        if (len + 1 >= cap) {
            *too_long = 1;
            break;
        }
        *nul |= c == '\0';
        line[len++] = (char)c;
        if (c == '\n')
            break;
    }
    line[len] = '\0';
    return len > 0 || *too_long;
}

int config_load_file(config *cfg, const char *path, char *err, size_t errlen)
{
    char line[4096], why[512];
    int lineno = 0, rc = LS_OK, too_long, nul;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return LS_EIO;
    }
    while (rc == LS_OK && read_line(fp, line, sizeof line, &too_long, &nul)) {
        lineno++;
        if (too_long || nul) {
            snprintf(why, sizeof why, too_long ? "line too long" : "contains a NUL byte (is this a text file?)");
            rc = LS_EINVAL;
            break;
        }
        /* a UTF-8 byte order mark (editors on Windows write one) is no part of the first name */
        rc = config_line(cfg, lineno == 1 && memcmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line, why, sizeof why);
    }
    if (rc == LS_OK && ferror(fp)) { /* a directory opens, then cannot be read (EISDIR) */
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        fclose(fp);
        return LS_EIO;
    }
    if (rc != LS_OK)
        snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
    fclose(fp);
    return rc == LS_ENOTFOUND ? LS_EINVAL : rc;
}

void config_print_sample(FILE *out)
{
    fprintf(out, "# leadscore.conf -- settings of `leadscore serve --config FILE`.\n"
                 "# One `name = value` per line; `#` starts a comment.  Options given on the\n"
                 "# command line override this file.  Every line below shows the default.\n"
                 "# Generated by `leadscore serve --sample-config`.\n");
    for (const config_option *o = options; o->name; o++)
        fprintf(out, "\n# %s\n# %s = %s\n", o->help, o->name, o->defval);
}
