/* cmd_kpis.c -- `leadscore kpis`: the loyalty KPIs of a store over a
 * period (kpis.h computes them), as a table for people or, with --json,
 * as the same object the `kpis` op answers with (minus ok and id). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "codec.h"
#include "jsonout.h"
#include "kpis.h"
#include "leadscore/error.h"
#include "store.h"
#include "timefmt.h"

#define DEFAULT_DATA "./leadscore-data"

static void kpis_help(void)
{
    printf("usage: leadscore kpis [--data DIR] [--from TIME] [--to TIME] [--json]\n\n"
           "Loyalty KPIs over the period [from, to), from every customer's event history in one\n"
           "snapshot of the store (the service may keep running); only events before --to count:\n"
           "customers, active, buyers, orders, gross and net revenue, average order value, purchase\n"
           "frequency, repeat-purchase rate (in the period and lifetime), conversion, macro and micro\n"
           "conversion, retention and churn by monthly cohort of first order with a retention curve.\n"
           "src/kpis.h defines each one.\n\n"
           "  --data DIR   the store (default %s); opened read-only\n"
           "  --from TIME  start of the period (Unix seconds or ISO 8601; default: 365 days before --to)\n"
           "  --to TIME    end of the period, excluded (default: now)\n"
           "  --json       one JSON object, the `kpis` op's reply fields\n",
           DEFAULT_DATA);
}

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
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'}, {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},   {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *dir = DEFAULT_DATA;
    int64_t from = 0, to = 0;
    int has_from = 0, has_to = 0, json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'j': json = 1; break;
        case 'f':
        case 't':
            if (cli_parse_time(optarg, c == 'f' ? &from : &to) != 0)
                return cli_error("kpis", CLI_USAGE, "--%s: \"%s\" is not a time (Unix seconds or ISO 8601)",
                                 c == 'f' ? "from" : "to", optarg);
            *(c == 'f' ? &has_from : &has_to) = 1;
            break;
        case 'h': kpis_help(); return CLI_OK;
        default: return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_error("kpis", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[optind]);
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
