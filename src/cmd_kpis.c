/* cmd_kpis.c -- `leadscore kpis`: the loyalty KPIs of a store over a
 * period (kpis.h computes them), as a table for people or, with --json,
 * as the same object the `kpis` op answers with (minus ok and id). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cliopts.h"
#include "codec.h"
#include "jsonout.h"
#include "kpis.h"
#include "leadscore/error.h"
#include "store.h"
#include "timefmt.h"

#define DEFAULT_DATA "./leadscore-data"

typedef struct {
    const char *dir;
    int64_t from, to;
    int has_from, has_to, json;
} kpis_cli;

#define F(field) CLIOPT_FIELD(kpis_cli, field)
static const cliopt kpis_rows[] = {
    {.name = "data", .kind = CLIOPT_STRING, F(dir), .arg = "DIR",
     .help = "the store (default " DEFAULT_DATA "); opened read-only"},
    {.name = "from", .kind = CLIOPT_TIME, F(from), CLIOPT_GIVEN(kpis_cli, has_from), .arg = "TIME",
     .help = "start of the period (Unix seconds or ISO 8601; default: 365 days before --to)"},
    {.name = "to", .kind = CLIOPT_TIME, F(to), CLIOPT_GIVEN(kpis_cli, has_to), .arg = "TIME",
     .help = "end of the period, excluded (default: now)"},
    {.name = "json", .kind = CLIOPT_FLAG, F(json), .help = "one JSON object, the `kpis` op's reply fields"},
    CLIOPT_END};
#undef F

static const cliopts_spec kpis_spec = {
    .cmd = "kpis",
    .usage = "leadscore kpis [--data DIR] [--from TIME] [--to TIME] [--json]",
    .about = "Loyalty KPIs over the period [from, to), from every customer's event history in one\n"
             "snapshot of the store (the service may keep running); only events before --to count:\n"
             "customers, active, buyers, orders, gross and net revenue, average order value, purchase\n"
             "frequency, repeat-purchase rate (in the period and lifetime), conversion, macro and micro\n"
             "conversion, retention and churn by monthly cohort of first order with a retention curve.\n"
             "src/kpis.h defines each one.",
    .opts = kpis_rows,
};

static int print_json(const kpis_result *k)
{
    codec_writer w;
    msgpack_unpacked up;
    codec_writer_init(&w);
    cw_map(&w);
    kpis_write_msgpack(k, &w);
    cw_end(&w);
    msgpack_unpacked_init(&up);
    int ok = msgpack_unpack_next(&up, w.sb.data, w.sb.size, NULL) == MSGPACK_UNPACK_SUCCESS;
    if (ok) {
        jsonout_json(stdout, &up.data);
        putchar('\n');
    }
    msgpack_unpacked_destroy(&up);
    codec_writer_destroy(&w);
    return ok ? CLI_OK : cli_error("kpis", CLI_FAIL, "internal error formatting the reply");
}

int cmd_kpis(int argc, char **argv)
{
    kpis_cli o = {.dir = DEFAULT_DATA};
    int first = cliopts_parse(&kpis_spec, argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    if (first < argc)
        return cli_error("kpis", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[first]);
    const char *dir = o.dir;
    int64_t from = o.from, to = o.to;
    int has_from = o.has_from, has_to = o.has_to, json = o.json;
    if (!has_to)
        to = timefmt_now_ms();
    if (!has_from)
        from = kpis_default_from(to);
    const char *why = kpis_period_error(from, to);
    if (why)
        return cli_error("kpis", CLI_USAGE, "bad period (--from, --to): %s", why);

    char err[600], path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0)
        return cli_error("kpis", CLI_FAIL, "no leadscore store in %s (give --data DIR)", dir);
    store *s = NULL;
    store_reader *r = NULL;
    store_options so = {.read_only = 1};
    if (store_open(&s, dir, &so, NULL, err, sizeof err) != LS_OK)
        return cli_error("kpis", CLI_FAIL, "%s", err);
    kpis_result *k = malloc(sizeof *k);
    int rc = k ? store_reader_open(s, &r) : LS_ENOMEM;
    if (rc == LS_OK)
        rc = kpis_compute(r, from, to, k);
    store_reader_close(&r);
    store_close(&s);
    if (rc != LS_OK)
        rc = cli_error("kpis", CLI_FAIL, "reading the store failed: %s", ls_strerror(rc));
    else if (json)
        rc = print_json(k);
    else {
        kpis_print_table(stdout, k);
        rc = CLI_OK;
    }
    free(k);
    return rc;
}
