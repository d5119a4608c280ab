/* cmd_import.c -- `leadscore import`: bulk-loads shop events from CSV or
 * JSON Lines exports (eventfile.h reads them) either straight into an LMDB
 * store (--data) or through a running service (--connect).
 *
 * Straight into the store, events are added exactly as the service's
 * writer adds them (writer.c): in one write transaction per batch of
 * --batch events, sorted by customer, each added to its customer's event
 * history (an event whose id the history already holds is a duplicate and
 * changes nothing), then the customer's record brought up to date and
 * written back once per batch (store_wtxn_put_back).  Every event carries
 * an id (eventfile.h derives one from the row's content and its position
 * among identical rows when the file has none), so importing a file again,
 * however much later, changes nothing (histories keep the ids of events
 * folded out of retention too).  A transaction that fills the map grows it and is
 * replayed; on SIGINT/SIGTERM the batch in progress is aborted, never
 * committed in part, and the command exits 1.
 *
 * Through a service, the same batches go out as `track` requests, each
 * waiting for its acknowledgement (the service commits durably before it
 * answers); a timed-out batch is resent with the same ids.  The events it
 * rejects are reported by file and line, as the reader's bad rows are, and
 * count toward --max-errors. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cliopts.h"
#include "config.h"
#include "eventbatch.h"
#include "eventfile.h"
#include "feature.h"
#include "leadscore/client.h"
#include "leadscore/error.h"
#include "model.h"
#include "security.h"
#include "store.h"
#include "timefmt.h"

#define DEFAULT_DATA_DIR "./leadscore-data"
#define STORE_BATCH 50000
#define SERVICE_BATCH 2000
#define MAX_BATCH 1000000
#define SHOWN_ERRORS 20
#define MAX_REASONS 32
#define MAP_MAX_BYTES (256ULL << 30)
#define TRACK_TRIES 3
/* a positive "status" of the apply functions: stopped by a signal */
#define INTERRUPTED 1

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *data_dir;
    const char *connect;
    const char *model_path;
    const char *server_key;
    const char *key_prefix;
    eventfile_options ef;
    long max_errors;        /* -1: no limit */
    uint64_t map_size;      /* 0: the store's default */
    int history_days;       /* 0: the store's default (730) */
    size_t batch;           /* 0: the mode's default */
    int timeout_ms;
    int no_sync;
    int allow_old;
    int quiet;
} import_opts;

#define STR_(x) #x
#define STR(x) STR_(x)

/* The event-file option parsers, shared with train (cli.h). */
int cli_opt_map(const char *arg, void *dest, char *why, size_t cap)
{
    return eventfile_parse_map(arg, dest, why, cap) == LS_OK ? 0 : -1;
}

int cli_opt_types(const char *arg, void *dest, char *why, size_t cap)
{
    return eventfile_parse_types(arg, dest, why, cap) == LS_OK ? 0 : -1;
}

int cli_opt_ts_format(const char *arg, void *dest, char *why, size_t cap)
{
    if (eventfile_parse_ts_format(arg, dest) == LS_OK)
        return 0;
    snprintf(why, cap, "\"%s\" is not auto, seconds, millis or iso", arg);
    return -1;
}

int cli_opt_delimiter(const char *arg, void *dest, char *why, size_t cap)
{
    char *d = dest;
    if (strcmp(arg, "tab") == 0 || strcmp(arg, "\\t") == 0)
        *d = '\t';
    else if (strlen(arg) == 1 && !strchr("\"\r\n", arg[0]))
        *d = arg[0];
    else {
        snprintf(why, cap, "takes one character (or tab), not a quote or newline");
        return -1;
    }
    return 0;
}

static const char *const format_words[] = {"csv", "jsonl", NULL};
static const int format_values[] = {EVENTFILE_CSV, EVENTFILE_JSONL};

#define F(field) CLIOPT_FIELD(import_opts, field)
static const cliopt import_rows[] = {
    {.kind = CLIOPT_SECTION, .help = "Where to:"},
    {.name = "data", .kind = CLIOPT_STRING, F(data_dir), .arg = "DIR",
     .help = "the store (default " DEFAULT_DATA_DIR "; created if missing).  While\n"
             "`leadscore serve` runs on it, import through --connect instead"},
    {.name = "connect", .kind = CLIOPT_STRING, F(connect), .arg = "EP",
     .help = "a running service instead (e.g. tcp://127.0.0.1:5555)"},
    {.name = "server-key", .kind = CLIOPT_STRING, F(server_key), .arg = "FILE",
     .help = "--connect over CurveZMQ: the server's public key file"},
    {.name = "key", .kind = CLIOPT_STRING, F(key_prefix), .arg = "PREFIX",
     .help = "--connect over CurveZMQ: this client's key pair (PREFIX.pub, PREFIX.key)"},
    {.name = "timeout", .kind = CLIOPT_INT, F(timeout_ms), .lo = 1, .hi = 3600000, .want = "milliseconds, 1 to 3600000",
     .arg = "MS", .help = "--connect only: wait for each batch's acknowledgement (default 30000)"},
    {.name = "model", .kind = CLIOPT_STRING, F(model_path), .arg = "FILE",
     .help = "half-lives for a NEW store (default: the built-in model)"},
    {.name = "no-sync", .kind = CLIOPT_FLAG, F(no_sync),
     .help = "do not fsync each commit (faster; a crash may lose the last batches)"},
    {.name = "map-size", .kind = CLIOPT_SIZE, F(map_size), .lo = 1 << 20,
     .want = "a size of at least 1MiB (e.g. 64MiB, 4GiB)", .arg = "SIZE",
     .help = "initial LMDB map size of a new store (default 1GiB; it doubles when full)"},
    {.name = "history-days", .kind = CLIOPT_INT, F(history_days), .lo = 1, .hi = 36500,
     .want = "a number of days, 1 to 36500", .arg = "N",
     .help = "event history kept per customer, back from its newest event (default\n"
             "730; older events fold into a lifetime aggregate)"},
    {.kind = CLIOPT_SECTION, .help = "Reading:"},
    {.name = "map", .kind = CLIOPT_CUSTOM, F(ef.map), .parse = cli_opt_map, .arg = "COLUMNS",
     .help = "source column of each event field: customer=user_id,ts=event_time,\n"
             "type=event_type; a constant is field=:value (type=:purchase); field=\n"
             "leaves a field out.  Unmapped fields come from columns named like them.\n"
             "Columns can also be named by position: 1, 2, ..."},
    {.name = "types", .kind = CLIOPT_CUSTOM, F(ef.types), .parse = cli_opt_types, .arg = "VALUES",
     .help = "translate source type values: view=product_view,cart=add_to_cart"},
    {.name = "format", .kind = CLIOPT_ENUM, F(ef.format), .choices = format_words, .values = format_values,
     .arg = "csv|jsonl", .help = "default: by the file name (.jsonl/.ndjson/.json[.gz] are JSON Lines)"},
    {.name = "ts-format", .kind = CLIOPT_CUSTOM, F(ef.ts_format), .parse = cli_opt_ts_format, .arg = "F",
     .help = "auto (default), seconds, millis or iso"},
    {.name = "delimiter", .kind = CLIOPT_CUSTOM, F(ef.delimiter), .parse = cli_opt_delimiter, .arg = "C",
     .help = "CSV field separator (default ','; 'tab' for tabs)"},
    {.name = "whitespace", .kind = CLIOPT_FLAG, F(ef.whitespace),
     .help = "fields separated by runs of blanks (e.g. CDNOW_master.txt)"},
    {.name = "no-header", .kind = CLIOPT_FLAG, F(ef.no_header), .help = "no header row: columns are named 1, 2, ..."},
    {.name = "allow-old", .kind = CLIOPT_FLAG, F(allow_old),
     .help = "accept event times before 2000-01-01 (--data only)"},
    {.name = "no-fold", .kind = CLIOPT_FLAG, F(ef.no_fold),
     .help = "keep order lines as separate events (default: consecutive lines of\n"
             "one order_id fold into one purchase)"},
    {.kind = CLIOPT_SECTION, .help = "Running:"},
    {.name = "batch", .kind = CLIOPT_INT, F(batch), .lo = 1, .hi = MAX_BATCH, .arg = "N",
     .help = "events per transaction / per track request (default " STR(STORE_BATCH) " / " STR(SERVICE_BATCH) ")"},
    {.name = "max-errors", .kind = CLIOPT_INT, F(max_errors), .lo = 0, .hi = 1000000000L, .want = "a whole number >= 0",
     .arg = "N", .help = "stop after more than N rejected rows, the reader's or the service's\n"
             "(default: no limit)"},
    {.name = "quiet", .short_name = 'q', .kind = CLIOPT_FLAG, F(quiet), .help = "no progress bar"},
    CLIOPT_END};
#undef F

static const cliopts_spec import_spec = {
    .cmd = "import",
    .usage = "leadscore import [--data DIR | --connect EP] [options] FILE...",
    .about = "Bulk-loads shop events from CSV (header row; or whitespace-separated) or JSON Lines files,\n"
             "plain or .gz (\"-\" is standard input), straight into the store or through a running service.\n"
             "Every event gets an id (the file's event_id column, else a hash of the row), so importing a\n"
             "file again changes nothing: its events are counted as duplicates.",
    .epilog = "Bad rows are reported on stderr as FILE:LINE: reason (the first " STR(SHOWN_ERRORS) "), then counted in the\n"
              "summary.  Exit status: 0 when every file was read, 1 on a failure, an interrupt or\n"
              "--max-errors, 2 on a usage error.",
    .opts = import_rows,
    .in_order = 0, /* options may follow the files ("--" ends them, for a file named like one) */
};

/* Parses the options; returns the index of the first file, or a negative
 * cliopts_parse status (CLIOPTS_HELP, CLIOPTS_USAGE). */
static int parse_opts(int argc, char **argv, import_opts *o)
{
    o->max_errors = -1;
    eventfile_options_init(&o->ef);
    int first = cliopts_parse(&import_spec, argc, argv, o);
    if (first < 0)
        return first;
    if (!o->connect && o->timeout_ms)
        return cli_error("import", CLI_USAGE, "--timeout goes with --connect (it bounds the wait for a service's "
                         "acknowledgement)"), CLIOPTS_USAGE;
    if (!o->timeout_ms)
        o->timeout_ms = 30000;
    if (o->allow_old)
        o->ef.min_ts_ms = 0;
    if (o->data_dir && o->connect)
        return cli_error("import", CLI_USAGE, "--data and --connect exclude each other: a store or a service"),
               CLIOPTS_USAGE;
    if (o->connect && o->allow_old)
        return cli_error("import", CLI_USAGE, "--allow-old works with --data only: the service refuses times before 2000"),
               CLIOPTS_USAGE;
    if (o->connect)
        o->ef.old_hint = "the service refuses older times: import such history with --data DIR --allow-old "
                         "while the service is stopped";
    if (!o->connect && (o->server_key || o->key_prefix))
        return cli_error("import", CLI_USAGE, "--server-key and --key go with --connect"), CLIOPTS_USAGE;
    if (!o->server_key != !o->key_prefix)
        return cli_error("import", CLI_USAGE, "--server-key and --key go together"), CLIOPTS_USAGE;
    if (o->connect && (o->model_path || o->no_sync || o->map_size || o->history_days))
        return cli_error("import", CLI_USAGE, "--model, --no-sync, --map-size and --history-days go with --data"),
               CLIOPTS_USAGE;
    if (first >= argc)
        return cli_error("import", CLI_USAGE, "give at least one FILE (\"-\" for standard input; see --help)"),
               CLIOPTS_USAGE;
    if (!o->data_dir)
        o->data_dir = DEFAULT_DATA_DIR;
    if (!o->batch)
        o->batch = o->connect ? SERVICE_BATCH : STORE_BATCH;
    return first;
}

/* ------------------------------------------------------------------ */
/* The batch: events copied out of the reader until they are applied   */
/* ------------------------------------------------------------------ */

/* Where an event of the batch was read, to name it when the service
 * rejects it: the file as given on the command line (argv outlives the
 * batch, which may span files) and its lines (a folded order's first and
 * last). */
typedef struct {
    const char *path;
    uint64_t first, last;
} batch_source;

typedef struct {
    eventbatch ev;            /* the events, their strings in its arena */
    ls_client_event *cev;     /* --connect: their client form ... */
    batch_source *src;        /* ... and where each was read */
} batch;

/* Adds a copy of ev, read from f (whose file was given as path), and for a
 * service its client form and source too. */
static int batch_add(batch *b, const ls_event *ev, const eventfile *f, const char *path, int for_service, size_t cap)
{
    const ls_event *copy;
    if (!b->ev.cap && eventbatch_init(&b->ev, cap) != LS_OK)
        return LS_ENOMEM;
    if (for_service && !b->cev && !(b->cev = malloc(cap * sizeof *b->cev)))
        return LS_ENOMEM;
    if (for_service && !b->src && !(b->src = malloc(cap * sizeof *b->src)))
        return LS_ENOMEM;
    int rc = eventbatch_add(&b->ev, ev, &copy);
    if (rc || !for_service)
        return rc;
    batch_source *where = &b->src[b->ev.n - 1];
    where->path = path;
    eventfile_event_lines(f, &where->first, &where->last);
    const ls_event e = *copy;
    ls_client_event *c = &b->cev[b->ev.n - 1];
    memset(c, 0, sizeof *c);
    c->customer = e.customer.ptr;
    c->type = event_type_name(e.type);
    c->ts_ms = e.ts_ms;
    c->event_id = e.event_id.len ? e.event_id.ptr : NULL;
    c->session = e.session.len ? e.session.ptr : NULL;
    c->product = e.product.len ? e.product.ptr : NULL;
    c->category = e.category.len ? e.category.ptr : NULL;
    c->order_id = e.order_id.len ? e.order_id.ptr : NULL;
    if (e.has & EVF_BIRTHDAY) {
        char bd[8];
        snprintf(bd, sizeof bd, "%02d-%02d", (e.birthday_mmdd / 100) % 100, e.birthday_mmdd % 100);
        if (!(c->birthday = eventbatch_copy(&b->ev, bd, 5)))
            return LS_ENOMEM;
    }
    c->price = e.price;
    c->quantity = e.quantity;
    c->value = e.value;
    c->discounted = e.discounted;
    c->rating = e.rating;
    c->has = ((e.has & EVF_PRICE) ? LS_HAS_PRICE : 0u) | ((e.has & EVF_QUANTITY) ? LS_HAS_QUANTITY : 0u) |
             ((e.has & EVF_VALUE) ? LS_HAS_VALUE : 0u) | ((e.has & EVF_DISCOUNTED) ? LS_HAS_DISCOUNTED : 0u) |
             ((e.has & EVF_RATING) ? LS_HAS_RATING : 0u);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* The import: totals, progress and the two sinks                      */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *kind; /* static (eventfile_error_kind) */
    uint64_t n;
} reason_count;

typedef struct {
    import_opts *o;
    store *st;
    store_held held;          /* --data: the customer being written */
    ls_client *client;
    batch b;
    /* totals */
    uint64_t files, rows, folded, imported, duplicates, rejected, service_rejected, other_reasons;
    uint64_t orders_refused;  /* of rejected: orders skipped for a refused row, not counted again for --max-errors */
    uint64_t rows_before;   /* rows of the files already closed */
    size_t lost;            /* events of the batch an interrupt threw away */
    reason_count reasons[MAX_REASONS];
    size_t nreasons;
    /* progress */
    int progress;
    int64_t start_ns, drawn_ns;
    int drawn;
} importer;

/* ---- straight into the store (as writer.c applies a group) ---- */

/* Writes the batch (eventbatch.h: one transaction, customer order, the
 * map grown when full): LS_OK, INTERRUPTED (nothing committed) or a status. */
static int store_apply(importer *im)
{
    uint64_t accepted = 0, dups = 0;
    int rc = eventbatch_store(&im->b.ev, im->st, &im->held, MAP_MAX_BYTES, &interrupted, &accepted, &dups);
    if (rc == LS_OK) {
        im->imported += accepted;
        im->duplicates += dups;
    } else if (rc != EVENTBATCH_STOPPED) {
        cli_error("import", rc, "cannot write to the store in %s: %s%s; the %zu events of this batch were not stored",
                  im->o->data_dir, ls_strerror(rc),
                  rc == LS_EFULL     ? " (the map reached 256 GiB)"
                  : rc == LS_EUNAVAIL ? " (the disk is full: free space, then run the import again)"
                                      : "",
                  im->b.ev.n);
    }
    return rc == EVENTBATCH_STOPPED ? INTERRUPTED : rc;
}

/* ---- progress and reporting ---- */

static void clear_progress(importer *im)
{
    if (im->drawn) {
        fputs("\r\033[K", stderr);
        im->drawn = 0;
    }
}

static void draw_progress(importer *im, const eventfile *f, int force)
{
    int64_t now = timefmt_mono_ns();
    if (!im->progress || (!force && (now - im->drawn_ns < 200000000 || now - im->start_ns < 500000000)))
        return;
    im->drawn_ns = now;
    eventfile_stats s;
    eventfile_get_stats(f, &s);
    double secs = (double)(now - im->start_ns) / 1e9;
    uint64_t rows = im->rows_before + s.rows;
    double rate = secs > 0 ? (double)rows / secs : 0;
    char eta[48] = "";
    if (s.bytes_total && s.bytes_read > 0 && s.bytes_read <= s.bytes_total) {
        double frac = (double)s.bytes_read / (double)s.bytes_total;
        int n = snprintf(eta, sizeof eta, "  %3.0f%%", frac * 100);
        if (im->rows_before == 0 && n > 0 && frac >= 0.01 && secs >= 1) {
            /* the first file's own pace: its bytes so far over its time so far */
            int left = (int)(secs * (1 - frac) / frac);
            snprintf(eta + n, sizeof eta - (size_t)n, "  ETA %d:%02d", left / 60, left % 60);
        }
    }
    fprintf(stderr, "\r\033[K%s: %llu rows  %.0f rows/s%s", eventfile_path(f), (unsigned long long)rows, rate, eta);
    fflush(stderr);
    im->drawn = 1;
}

static void count_reason(importer *im, const char *kind)
{
    for (size_t i = 0; i < im->nreasons; i++) {
        if (im->reasons[i].kind == kind || strcmp(im->reasons[i].kind, kind) == 0) {
            im->reasons[i].n++;
            return;
        }
    }
    if (im->nreasons < MAX_REASONS)
        im->reasons[im->nreasons++] = (reason_count){kind, 1};
    else
        im->other_reasons++;
}

/* Counts one rejected row (the reader's or the service's) and shows
 * text, "FILE:LINE: reason", while fewer than SHOWN_ERRORS were shown. */
static void report_rejected(importer *im, const char *text)
{
    im->rejected++;
    if (im->rejected <= SHOWN_ERRORS) {
        clear_progress(im);
        fprintf(stderr, "%s\n", text);
        if (im->rejected == SHOWN_ERRORS)
            fprintf(stderr, "leadscore import: further bad rows are counted, not shown\n");
    }
}

static void bad_row(importer *im, const eventfile *f)
{
    if (strcmp(eventfile_error_kind(f), EVENTFILE_KIND_ORDER_REFUSED) == 0)
        im->orders_refused++;
    count_reason(im, eventfile_error_kind(f));
    report_rejected(im, eventfile_error(f));
}

/* 1 when more rows were rejected than --max-errors allows (an order
 * skipped for a refused line is not counted again). */
static int too_many_errors(const importer *im)
{
    return im->o->max_errors >= 0 && im->rejected - im->orders_refused > (uint64_t)im->o->max_errors;
}

/* ---- through a running service ---- */

/* What service_rejected is told: the importer and where the events sent
 * start in the batch. */
typedef struct {
    importer *im;
    size_t lo;
    uint64_t told;
} track_part;

/* One event of the part the service refused: reported as the reader's bad
 * rows are, "FILE:LINE: reason" (the event id too when the reason is about
 * it: derived ids are 20 bytes, "row:" and 16 hex digits). */
static void service_rejected(void *arg, size_t index, const char *code, const char *message)
{
    track_part *t = arg;
    importer *im = t->im;
    const batch_source *where = &im->b.src[t->lo + index];
    const ls_client_event *ev = &im->b.cev[t->lo + index];
    char text[1200], lines[64] = "", id[300] = "";
    if (where->last != where->first)
        snprintf(lines, sizeof lines, " (order of lines %llu-%llu)", (unsigned long long)where->first,
                 (unsigned long long)where->last);
    if (ev->event_id && strncmp(message, "event_id", 8) == 0)
        snprintf(id, sizeof id, " (event_id \"%.200s\", %zu bytes)", ev->event_id, strlen(ev->event_id));
    snprintf(text, sizeof text, "%s:%llu: rejected by the service: %s: %s%s%s", where->path,
             (unsigned long long)where->first, code, message, id, lines);
    t->told++;
    im->service_rejected++;
    report_rejected(im, text);
}

static int service_track(importer *im, size_t lo, size_t n)
{
    ls_track_result tr;
    track_part part = {.im = im, .lo = lo};
    int rc = LS_OK;
    for (int attempt = 0; attempt < TRACK_TRIES; attempt++) {
        rc = ls_client_track_each(im->client, im->b.cev + lo, n, &tr, service_rejected, &part);
        if (rc != LS_ETIMEOUT || interrupted)
            break;
    }
    if (rc == LS_ETOOLARGE && n > 1) {
        /* over the service's frame or batch limit: send it in halves */
        if ((rc = service_track(im, lo, n / 2)) != LS_OK)
            return rc;
        return service_track(im, lo + n / 2, n - n / 2);
    }
    if (rc != LS_OK) {
        if (interrupted)
            return INTERRUPTED;
        return cli_error("import", rc, "track to %s failed: %s%s", im->o->connect, ls_client_last_error(im->client),
                         rc == LS_ETIMEOUT ? " (that batch may or may not be stored: running the import again is safe)"
                                           : "");
    }
    im->imported += tr.accepted;
    im->duplicates += tr.duplicates;
    if (tr.rejected > part.told) { /* entries without a usable index: counted, not shown */
        im->service_rejected += tr.rejected - part.told;
        im->rejected += tr.rejected - part.told;
    }
    return LS_OK;
}

static int flush_batch(importer *im)
{
    int rc = LS_OK;
    if (im->b.ev.n == 0)
        return LS_OK;
    if (interrupted)
        rc = INTERRUPTED;
    else
        rc = im->client ? service_track(im, 0, im->b.ev.n) : store_apply(im);
    if (rc == INTERRUPTED)
        im->lost = im->b.ev.n;
    eventbatch_reset(&im->b.ev);
    return rc;
}


/* At a stop for --max-errors: the order the reader was folding from rows
 * read before the stop goes into the batch (or is reported, when refused),
 * so that what was read before is imported, as the stop message says. */
static void finish_read_order(importer *im, eventfile *f, const char *path)
{
    ls_event ev;
    int rc = eventfile_finish(f, &ev);
    if (rc == 1 && batch_add(&im->b, &ev, f, path, im->client != NULL, im->o->batch) != LS_OK)
        cli_error("import", CLI_FAIL, "out of memory");
    else if (rc == EVENTFILE_BAD_ROW)
        bad_row(im, f);
}

static void summary(const importer *im)
{
    double secs = (double)(timefmt_mono_ns() - im->start_ns) / 1e9;
    printf("files read:          %llu\n", (unsigned long long)im->files);
    printf("rows read:           %llu\n", (unsigned long long)im->rows);
    if (im->folded)
        printf("order lines folded:  %llu\n", (unsigned long long)im->folded);
    printf("events imported:     %llu\n", (unsigned long long)im->imported);
    printf("duplicates:          %llu\n", (unsigned long long)im->duplicates);
    printf("rejected:            %llu\n", (unsigned long long)im->rejected);
    for (size_t i = 0; i < im->nreasons; i++)
        printf("  %-40s %llu\n", im->reasons[i].kind, (unsigned long long)im->reasons[i].n);
    if (im->other_reasons)
        printf("  %-40s %llu\n", "other reasons", (unsigned long long)im->other_reasons);
    if (im->service_rejected)
        printf("  %-40s %llu\n", "rejected by the service", (unsigned long long)im->service_rejected);
    printf("time:                %.2f s (%.0f rows/s)\n", secs, secs > 0 ? (double)im->rows / secs : 0.0);
    fflush(stdout); /* before any closing message on stderr */
}

/* ------------------------------------------------------------------ */
/* Opening the sink, reading the files                                  */
/* ------------------------------------------------------------------ */

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

static int open_store(importer *im)
{
    char err[600];
    model *m = NULL;
    int rc = im->o->model_path ? model_load_file(im->o->model_path, &m, err, sizeof err)
                               : model_load_builtin(&m, err, sizeof err);
    if (rc)
        return cli_error("import", CLI_FAIL, "%s", err);
    store_options so = {.no_sync = im->o->no_sync, .map_size = im->o->map_size, .history_days = im->o->history_days};
    const feature_decay *want = model_decay(m);
    rc = store_open(&im->st, im->o->data_dir, &so, want, err, sizeof err);
    if (rc) {
        model_unref(&m);
        return cli_error("import", CLI_FAIL, "%s", err);
    }
    if (im->o->model_path && !same_decay(store_decay(im->st), want)) {
        const feature_decay *have = store_decay(im->st);
        cli_error("import", CLI_FAIL, "the store in %s keeps half-lives of %.4g and %.4g days, the model %s %.4g "
                  "and %.4g: it was created with another model", im->o->data_dir, have->short_ms / 864e5,
                  have->long_ms / 864e5, im->o->model_path, want->short_ms / 864e5, want->long_ms / 864e5);
        model_unref(&m);
        return CLI_FAIL;
    }
    model_unref(&m);
    return CLI_OK;
}

static int open_service(importer *im)
{
    import_opts *o = im->o;
    char server[SECURITY_KEY_Z85], pub[SECURITY_KEY_Z85], sec[SECURITY_KEY_Z85], path[1100], err[600];
    int rc;
    if (!o->server_key) {
        rc = ls_client_connect(&im->client, o->connect, o->timeout_ms);
    } else {
        rc = security_read_key(o->server_key, server, err, sizeof err);
        snprintf(path, sizeof path, "%s.pub", o->key_prefix);
        if (rc == LS_OK)
            rc = security_read_key(path, pub, err, sizeof err);
        snprintf(path, sizeof path, "%s.key", o->key_prefix);
        if (rc == LS_OK)
            rc = security_read_key(path, sec, err, sizeof err);
        if (rc != LS_OK)
            return cli_error("import", CLI_FAIL, "%s", err);
        rc = ls_client_connect_secure(&im->client, o->connect, o->timeout_ms, server, pub, sec);
        memset(sec, 0, sizeof sec);
    }
    if (rc != LS_OK)
        return cli_error("import", CLI_FAIL, "cannot use endpoint \"%s\"", o->connect);
    if ((rc = ls_client_ping(im->client, NULL, 0)) != LS_OK)
        return cli_error("import", CLI_FAIL, "no answer from %s: %s (is `leadscore serve` running there?)", o->connect,
                         ls_client_last_error(im->client));
    return CLI_OK;
}

/* Why the import stopped early, if it did. */
enum { GO_ON = 0, STOP_ERRORS, STOP_FAILED, STOP_SIGNAL };

/* Reads one file into batches.  Returns GO_ON, or why to stop; *file_failed
 * is set when this file could not be read to its end. */
static int import_file(importer *im, const char *path, int *file_failed)
{
    char err[700];
    eventfile *f = NULL;
    int rc = eventfile_open(&f, path, &im->o->ef, err, sizeof err);
    if (rc != LS_OK) {
        clear_progress(im);
        cli_error("import", CLI_FAIL, "%s", err);
        *file_failed = 1;
        return GO_ON;
    }
    im->files++;
    int stop = GO_ON;
    ls_event ev;
    unsigned tick = 0;
    while (stop == GO_ON && (rc = eventfile_next(f, &ev)) != 0) {
        if (interrupted) {
            stop = STOP_SIGNAL;
        } else if (rc == 1) {
            if ((rc = batch_add(&im->b, &ev, f, path, im->client != NULL, im->o->batch)) != LS_OK) {
                cli_error("import", CLI_FAIL, "out of memory");
                stop = STOP_FAILED;
            } else if (im->b.ev.n == im->o->batch) {
                rc = flush_batch(im);
                stop = rc == INTERRUPTED ? STOP_SIGNAL : rc != LS_OK ? STOP_FAILED : GO_ON;
                if (stop == GO_ON && too_many_errors(im)) { /* the service rejected them */
                    stop = STOP_ERRORS;
                    finish_read_order(im, f, path);
                }
            }
        } else if (rc == EVENTFILE_BAD_ROW) {
            bad_row(im, f);
            if (too_many_errors(im)) {
                stop = STOP_ERRORS;
                finish_read_order(im, f, path); /* "what was read before is imported": an order being folded too */
            }
        } else if (interrupted) {
            stop = STOP_SIGNAL; /* the read failed with EINTR */
        } else {
            clear_progress(im);
            cli_error("import", CLI_FAIL, "%s", eventfile_error(f));
            *file_failed = 1;
            break;
        }
        if ((++tick & 1023) == 0)
            draw_progress(im, f, 0);
    }
    if (stop == GO_ON && interrupted)
        stop = STOP_SIGNAL;
    draw_progress(im, f, 1);
    eventfile_stats s;
    eventfile_get_stats(f, &s);
    im->rows += s.rows;
    im->rows_before += s.rows;
    im->folded += s.folded_rows;
    eventfile_close(&f);
    return stop;
}

int cmd_import(int argc, char **argv)
{
    import_opts o;
    memset(&o, 0, sizeof o);
    int first = parse_opts(argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);

    importer im;
    memset(&im, 0, sizeof im);
    store_held_init(&im.held);
    im.o = &o;
    if ((o.connect ? open_service(&im) : open_store(&im)) != CLI_OK) {
        ls_client_close(&im.client);
        store_close(&im.st);
        store_held_free(&im.held);
        return CLI_FAIL;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* no SA_RESTART: a read blocked on a quiet pipe returns at once; a
     * second signal ends the process (LMDB stays consistent either way) */
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    im.progress = !o.quiet && isatty(STDERR_FILENO);
    im.start_ns = timefmt_mono_ns();
    int stop = GO_ON, failed = 0;
    for (int i = first; i < argc && stop == GO_ON; i++)
        stop = import_file(&im, argv[i], &failed);
    if (stop == GO_ON || stop == STOP_ERRORS) {
        /* what was read is valid: commit it, also when stopping on errors */
        int rc = flush_batch(&im);
        if (rc == INTERRUPTED)
            stop = STOP_SIGNAL;
        else if (rc != LS_OK)
            stop = STOP_FAILED;
        else if (too_many_errors(&im)) /* the service's rejections of the last batch */
            stop = STOP_ERRORS;
    }
    if (stop == STOP_SIGNAL && im.b.ev.n)
        im.lost = im.b.ev.n;
    eventbatch_reset(&im.b.ev);
    clear_progress(&im);

    summary(&im);
    if (stop == STOP_SIGNAL && o.connect)
        cli_error("import", CLI_FAIL, "interrupted: the batches the service acknowledged are stored; the batch in "
                  "flight (%zu events) may or may not be.  Running the same import again is safe: stored events "
                  "are skipped as duplicates", im.lost);
    else if (stop == STOP_SIGNAL)
        cli_error("import", CLI_FAIL, "interrupted: the transaction in progress was aborted, so the %zu events read "
                  "into it were not committed; earlier batches stay.  Running the same import again is safe: "
                  "stored events are skipped as duplicates", im.lost);
    else if (stop == STOP_ERRORS)
        cli_error("import", CLI_FAIL, "stopped after more than %ld rejected rows (--max-errors); the events read "
                  "before were imported", o.max_errors);
    else if (failed)
        cli_error("import", CLI_FAIL, "some input could not be read (see above)");

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    eventbatch_free(&im.b.ev);
    free(im.b.cev);
    free(im.b.src);
    ls_client_close(&im.client);
    store_close(&im.st);
    store_held_free(&im.held);
    return stop == GO_ON && !failed ? CLI_OK : CLI_FAIL;
}
