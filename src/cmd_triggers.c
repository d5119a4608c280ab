/* cmd_triggers.c -- `leadscore triggers`: reads the trigger outbox
 * (trigger.h) in seq order and prints one line of JSON per trigger (the
 * trigger map as stored and sent: seq, id, customer, kind, name, at,
 * score, ...), for a person watching or for a pipe into whatever sends the
 * messages.
 *
 * Through a service (--connect, by default $LEADSCORE_CONNECT or
 * tcp://127.0.0.1:5555: the `triggers` op) it pages through what
 * the outbox holds after --from, then exits; with --follow it long-polls
 * (the server holds each request until a trigger is committed or --wait
 * ends) and keeps going from the last seq printed, riding out a restart of
 * the service: when no answer comes it says so on stderr and retries, with
 * a growing pause, from the same seq.  Offline (--data) it reads one
 * read-only snapshot of a store, a running service's too.
 *
 * Every line is flushed as it is written, so a consumer sees each trigger
 * at once.  SIGINT and SIGTERM end it with status 0: a trigger is printed
 * whole or not at all, and the signal takes effect at once while it waits.
 * A consumer that stored the last seq it handled resumes with --from SEQ
 * (exclusive); triggers that left the outbox (serve's --trigger-retention,
 * --trigger-max) before they were read are reported on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cliopts.h"
#include "codec.h"
#include "jsonout.h"
#include "leadscore/error.h"
#include "store.h"
#include "timefmt.h"
#include "trigger.h"

#define CMD "triggers"
#define PAGE 1000             /* triggers per request */
#define BACKOFF_FIRST_MS 500  /* --follow: the first pause after no answer, doubled each time ... */
#define BACKOFF_MAX_MS 10000  /* ... up to this */
#define EARLY_EMPTY_MS 200    /* --follow: an empty answer sooner than --wait (the server could not hold the
                                 request, or is stopping) is followed by this pause */

typedef struct {
    const char *dir;
    int64_t from;
    int64_t limit;            /* 0: no limit */
    int follow;
    int wait_ms, has_wait;
    cli_service svc;
} triggers_cli;

#define F(field) CLIOPT_FIELD(triggers_cli, field)
static const cliopt triggers_rows[] = {
    {.name = "connect", .kind = CLIOPT_STRING, F(svc.endpoint), .arg = "EP",
     .help = "read from the service at EP (the default: $LEADSCORE_CONNECT, else\n"
             CLI_DEFAULT_CONNECT ")"},
    {.name = "data", .kind = CLIOPT_STRING, F(dir), .arg = "DIR",
     .help = "or from the store in DIR, offline (one read-only snapshot; a service\n"
             "may be running on it)"},
    {.name = "from", .kind = CLIOPT_INT, F(from), .lo = 0, .hi = LLONG_MAX, .arg = "SEQ",
     .help = "print the triggers after SEQ (exclusive: the last seq you handled;\n"
             "default 0, from the oldest the outbox holds)"},
    {.name = "limit", .kind = CLIOPT_INT, F(limit), .lo = 1, .hi = LLONG_MAX, .arg = "N",
     .help = "stop after N triggers (default: no limit)"},
    {.name = "follow", .kind = CLIOPT_FLAG, F(follow),
     .help = "keep waiting for new triggers until SIGINT or SIGTERM (exit 0); when\n"
             "the service does not answer, retry from the same seq (with --connect)"},
    {.name = "wait", .kind = CLIOPT_INT, F(wait_ms), CLIOPT_GIVEN(triggers_cli, has_wait), .lo = 1, .hi = 60000, .want = "milliseconds from 1 to 60000",
     .arg = "MS", .help = "with --follow: how long the service holds each request while there\n"
                          "is nothing new (default 10000)"},
    {.name = "timeout", .kind = CLIOPT_INT, F(svc.timeout_ms), .lo = 1, .hi = 3600000,
     .want = "milliseconds from 1 to 3600000", .arg = "MS",
     .help = "how long to wait for a reply, on top of --wait (default 5000)"},
    {.name = "server-key", .kind = CLIOPT_STRING, F(svc.server_key), .arg = "FILE",
     .help = "CurveZMQ: the server's public key file"},
    {.name = "key", .kind = CLIOPT_STRING, F(svc.key_prefix), .arg = "PREFIX",
     .help = "CurveZMQ: this client's key pair (PREFIX.pub, PREFIX.key)"},
    CLIOPT_END};
#undef F

static const cliopts_spec triggers_spec = {
    .cmd = CMD,
    .usage = "leadscore triggers [--connect EP [--follow [--wait MS]] | --data DIR] [--from SEQ] [--limit N]",
    .about = "Prints the trigger outbox in seq order, one line of JSON per trigger: every moment that\n"
             "fired (abandoned_cart, win_back, birthday, ...) and every audience entry and exit, e.g.\n"
             "  {\"seq\":7,\"id\":\"a966...-7\",\"customer\":\"alice\",\"kind\":\"moment\",\"name\":\"abandoned_cart\",\n"
             "   \"at\":1796565232956,\"score\":0.41,\"tier\":\"warm\",\"phase\":\"prospect\",\n"
             "   \"customer_type\":\"prospect\",\"clv\":12.5,\"segment\":\"running\",\"value\":89.9}\n"
             "kind is moment, enter or exit; name the moment or the audience; at when it fired (Unix\n"
             "ms); value the open cart's value (abandoned_cart only).  id is the same on every\n"
             "delivery of one trigger: use it to deduplicate.",
    .epilog = "Without --follow it prints what the outbox holds after --from and exits 0.  Store the\n"
              "seq of the last trigger you handled and pass it as --from to resume.  Triggers that\n"
              "left the outbox before they were read (serve's --trigger-retention, --trigger-max) are\n"
              "reported on stderr.  Exit status: 0 ok (also on SIGINT/SIGTERM), 1 a failure explained\n"
              "on stderr, 2 a usage error.",
    .opts = triggers_rows,
};

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t waiting; /* in a request or a pause: nothing is half-written */

/* Every line printed is flushed before `waiting` is set, so a signal that
 * comes while waiting ends the process at once; one that comes while a
 * page is printed ends it after that page. */
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (waiting)
        _exit(CLI_OK);
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    waiting = 1;
    if (!stop_requested)
        nanosleep(&ts, NULL);
    waiting = 0;
}

/* ------------------------------------------------------------------ */
/* Printing                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t printed;
    uint64_t last_seq;        /* of the last trigger printed */
    int failed;               /* standard output failed */
    int error;                /* its errno */
    int told_ahead;           /* said that --from is past the newest trigger */
} printer;

/* One trigger map as one line of JSON, flushed. */
static int print_trigger(printer *p, const msgpack_object *t)
{
    int64_t seq = 0;
    if (jsonout_json(stdout, t) != 0 || putchar('\n') == EOF || fflush(stdout) != 0) {
        p->failed = 1;
        p->error = errno ? errno : EIO;
        return LS_EIO;
    }
    if (codec_get_int(t, "seq", &seq) == LS_OK && seq > 0)
        p->last_seq = (uint64_t)seq;
    p->printed++;
    return LS_OK;
}

/* Warns when triggers after *from left the outbox before they were read
 * (the oldest it holds is first; when it holds none, 0, and last is the
 * newest ever written), and moves *from past them, so the warning is said
 * once; from 0 ("the oldest held") there is nothing to warn of. Warns
 * once, too, when *from is past the newest trigger ever written: a
 * resume point from another store (restored, or made anew), which would
 * otherwise wait in silence for seqs this outbox has not reached. */
static void check_gap(printer *p, uint64_t *from, uint64_t first, uint64_t last)
{
    uint64_t gone_to = first ? first - 1 : last;
    if (*from > last && !p->told_ahead) {
        p->told_ahead = 1;
        fprintf(stderr,
                "leadscore triggers: warning: --from %llu is past the newest trigger this outbox has written "
                "(%llu): a resume point from another store (one restored or made anew)? Triggers up to %llu "
                "are not printed; --from %llu (or 0) reads from there\n",
                (unsigned long long)*from, (unsigned long long)last, (unsigned long long)*from,
                (unsigned long long)last);
    }
    if (gone_to <= *from)
        return;
    if (*from > 0)
        fprintf(stderr,
                "leadscore triggers: warning: triggers %llu to %llu left the outbox before they were read "
                "(pruned by serve's --trigger-retention or --trigger-max, or erased by forget); continuing "
                "with %llu\n",
                (unsigned long long)(*from + 1), (unsigned long long)gone_to, (unsigned long long)(gone_to + 1));
    *from = gone_to;
}

/* How many to ask for next: a page, or what --limit leaves. */
static size_t next_limit(const triggers_cli *o, const printer *p)
{
    if (o->limit && (uint64_t)o->limit - p->printed < PAGE)
        return (size_t)((uint64_t)o->limit - p->printed);
    return PAGE;
}

static int limit_reached(const triggers_cli *o, const printer *p)
{
    return o->limit && p->printed >= (uint64_t)o->limit;
}

/* ------------------------------------------------------------------ */
/* Offline                                                             */
/* ------------------------------------------------------------------ */

static int print_stored(void *arg, uint64_t seq, const uint8_t *bytes, size_t len)
{
    printer *p = arg;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = msgpack_unpack_next(&up, (const char *)bytes, len, NULL) == MSGPACK_UNPACK_SUCCESS
                 ? print_trigger(p, &up.data)
                 : LS_EPARSE;
    msgpack_unpacked_destroy(&up);
    if (rc == LS_EPARSE)
        fprintf(stderr, "leadscore triggers: trigger %llu in the store is not msgpack: skipped\n",
                (unsigned long long)seq);
    return rc == LS_EPARSE ? 0 : rc;
}

static int read_offline(const triggers_cli *o, printer *p)
{
    char err[600], path[1100];
    struct stat st;
    store *s = NULL;
    store_reader *r = NULL;
    uint64_t first = 0, last = 0;
    snprintf(path, sizeof path, "%s/data.mdb", o->dir);
    if (stat(path, &st) != 0)
        return cli_error(CMD, CLI_FAIL, "no leadscore store in %s", o->dir);
    store_options so = {.read_only = 1};
    if (store_open(&s, o->dir, &so, NULL, err, sizeof err) != LS_OK)
        return cli_error(CMD, CLI_FAIL, "%s", err);
    size_t limit = o->limit ? (size_t)o->limit : SIZE_MAX;
    int rc = store_reader_open(s, &r);
    if (rc == LS_OK && (rc = store_reader_begin(r)) == LS_OK) {
        rc = trigger_read(r, (uint64_t)o->from, limit, print_stored, p, &first, &last);
        store_reader_end(r);
    }
    store_reader_close(&r);
    store_close(&s);
    uint64_t from = (uint64_t)o->from;
    if (rc == LS_OK || p->failed)
        check_gap(p, &from, first, last);
    if (p->failed)
        return cli_error(CMD, CLI_FAIL, "cannot write to standard output: %s", strerror(p->error));
    return rc == LS_OK ? CLI_OK : cli_error(CMD, CLI_FAIL, "reading the store failed: %s", ls_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Through a service                                                   */
/* ------------------------------------------------------------------ */

static void pack_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
    msgpack_pack_str(pk, strlen(key));
    msgpack_pack_str_body(pk, key, strlen(key));
    msgpack_pack_int64(pk, v);
}

/* One `triggers` request from *from; prints what it brings and moves *from
 * on.  *got: how many came; *last: the newest seq the outbox holds.
 * Returns the ls_client_call status (LS_OK: the page was printed), or
 * LS_EPARSE when the reply is not a triggers page. */
static int fetch_page(ls_client *c, const triggers_cli *o, printer *p, uint64_t *from, int wait_ms, size_t *got,
                      uint64_t *last)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    void *reply = NULL;
    size_t len = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_kv_int(&pk, "from", (int64_t)*from);
    pack_kv_int(&pk, "limit", (int64_t)next_limit(o, p));
    pack_kv_int(&pk, "wait_ms", wait_ms);
    waiting = 1;
    int rc = stop_requested ? LS_ETIMEOUT : ls_client_call(c, "triggers", sb.data, sb.size, 3, &reply, &len);
    waiting = 0;
    msgpack_sbuffer_destroy(&sb);
    *got = 0;
    if (rc != LS_OK) {
        free(reply);
        return rc;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int64_t next = 0, first = 0, newest = 0;
    const msgpack_object *list = NULL;
    if (msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS)
        list = codec_map_get(&up.data, "triggers");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || codec_get_int(&up.data, "next", &next) != LS_OK) {
        msgpack_unpacked_destroy(&up);
        free(reply);
        return LS_EPARSE;
    }
    codec_get_int(&up.data, "first", &first);
    codec_get_int(&up.data, "last", &newest);
    check_gap(p, from, first > 0 ? (uint64_t)first : 0, newest > 0 ? (uint64_t)newest : 0);
    for (uint32_t i = 0; i < list->via.array.size && rc == LS_OK; i++)
        rc = print_trigger(p, &list->via.array.ptr[i]);
    *got = list->via.array.size;
    *last = newest > 0 ? (uint64_t)newest : 0;
    if (next > 0 && (uint64_t)next > *from)
        *from = (uint64_t)next;
    msgpack_unpacked_destroy(&up);
    free(reply);
    return rc;
}

static int read_service(const triggers_cli *o, printer *p)
{
    ls_client *c = NULL;
    uint64_t from = (uint64_t)o->from, last = 0;
    int wait_ms = o->follow ? o->wait_ms : 0, backoff = 0, rc = LS_OK;
    while (!stop_requested && !limit_reached(o, p)) {
        if (!c && cli_connect(CMD, &o->svc, wait_ms + o->svc.timeout_ms, &c) != CLI_OK)
            return CLI_FAIL;
        size_t got = 0;
        uint64_t asked_from = from;
        int64_t asked = timefmt_mono_ns();
        rc = fetch_page(c, o, p, &from, wait_ms, &got, &last);
        if (p->failed)
            break;
        if (stop_requested)
            return CLI_OK;
        if (o->follow && (rc == LS_ETIMEOUT || rc == LS_EUNAVAIL)) {
            /* the service is away (stopped, restarting, overloaded): the same seq again, later */
            ls_client_close(&c);
            if (!backoff)
                fprintf(stderr, "leadscore triggers: no answer from %s (%s); retrying after seq %llu\n",
                        o->svc.endpoint, rc == LS_ETIMEOUT ? "is it running?" : "unavailable",
                        (unsigned long long)from);
            backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2) : BACKOFF_FIRST_MS;
            pause_ms(backoff);
            continue;
        }
        if (rc != LS_OK)
            break;
        if (backoff) {
            fprintf(stderr, "leadscore triggers: %s answers again; resumed after seq %llu\n", o->svc.endpoint,
                    (unsigned long long)asked_from);
            backoff = 0;
        }
        if (!o->follow && (got == 0 || from >= last))
            break;
        if (o->follow && got == 0 && (timefmt_mono_ns() - asked) / 1000000 < wait_ms / 2)
            pause_ms(EARLY_EMPTY_MS);
    }
    if (p->failed)
        rc = cli_error(CMD, CLI_FAIL, "cannot write to standard output: %s", strerror(p->error));
    else if (rc == LS_ETIMEOUT)
        rc = cli_error(CMD, CLI_FAIL, "no reply from %s within %d ms: is `leadscore serve` running there?",
                       o->svc.endpoint, o->svc.timeout_ms);
    else if (rc == LS_EPARSE)
        rc = cli_error(CMD, CLI_FAIL, "the reply of %s is not a triggers page", o->svc.endpoint);
    else if (rc != LS_OK)
        rc = cli_error(CMD, CLI_FAIL, "%s: %s", ls_wire_code(rc), c ? ls_client_last_error(c) : ls_strerror(rc));
    ls_client_close(&c);
    return rc == LS_OK ? CLI_OK : CLI_FAIL;
}

int cmd_triggers(int argc, char **argv)
{
    triggers_cli o = {.wait_ms = 10000, .svc.timeout_ms = 5000};
    int first = cliopts_parse(&triggers_spec, argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    if (first < argc)
        return cli_error(CMD, CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[first]);
    if (o.dir && o.svc.endpoint)
        return cli_error(CMD, CLI_USAGE, "--data and --connect exclude each other");
    if (!o.dir && !o.svc.endpoint) {
        const char *env = getenv("LEADSCORE_CONNECT");
        o.svc.endpoint = env && *env ? env : CLI_DEFAULT_CONNECT;
    }
    if (o.dir && o.follow)
        return cli_error(CMD, CLI_USAGE, "--follow needs --connect EP: only a running service has new triggers");
    if (o.has_wait && !o.follow)
        return cli_error(CMD, CLI_USAGE, "--wait goes with --follow");
    if (!o.svc.server_key != !o.svc.key_prefix)
        return cli_error(CMD, CLI_USAGE, "--server-key and --key go together");
    if (o.dir && o.svc.server_key)
        return cli_error(CMD, CLI_USAGE, "--server-key and --key are for --connect");
    catch_signals();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printer p = {0};
    return o.dir ? read_offline(&o, &p) : read_service(&o, &p);
}
