/* cliopts.c -- the table-driven option parser and --help printer every
 * `leadscore` subcommand uses (cliopts.h describes the tables).  The
 * getopt_long table is built from the rows; each value is checked by its
 * row's kind and stored at its row's offset. */
#define _GNU_SOURCE
#include "cliopts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "leadscore/error.h"
#include "timefmt.h"

#define MAX_ROWS 64
#define VAL_BASE 1000 /* getopt's value of row i: VAL_BASE + i */
#define HELP_VAL 999
#define LABEL_MAX 18  /* a longer "--name ARG" puts its text on the next line */

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

static void store_int(void *dest, size_t size, long long v)
{
    if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(dest, &x, sizeof x);
    } else {
        int64_t x = (int64_t)v;
        memcpy(dest, &x, sizeof x);
    }
}

/* A whole number, with a k/M/G suffix when suffix: 0 or -1. */
static int parse_whole(const char *s, int suffix, long long *out)
{
    char *end;
    errno = 0;
    if (!suffix) {
        long long v = strtoll(s, &end, 10);
        if (end == s || *end || errno)
            return -1;
        *out = v;
        return 0;
    }
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M')
        v *= 1e6, end++;
    else if (*end == 'G')
        v *= 1e9, end++;
    if (*end || v > 1e15 || v != floor(v))
        return -1;
    *out = (long long)v;
    return 0;
}

/* The default "is not ..." of a row without .want. */
static void default_want(const cliopt *r, char *buf, size_t cap)
{
    switch (r->kind) {
    case CLIOPT_INT:
    case CLIOPT_COUNT:
        if (r->hi == LLONG_MAX)
            snprintf(buf, cap, "a whole number >= %lld", r->lo);
        else
            snprintf(buf, cap, "a whole number from %lld to %lld", r->lo, r->hi);
        break;
    case CLIOPT_SIZE: snprintf(buf, cap, "a size (e.g. 64MiB, 4GiB)"); break;
    case CLIOPT_DURATION: snprintf(buf, cap, "a duration (e.g. 500ms, 10s, 2m)"); break;
    case CLIOPT_TIME: snprintf(buf, cap, "a time (Unix seconds or ISO 8601)"); break;
    case CLIOPT_ENUM: {
        size_t n = (size_t)snprintf(buf, cap, "one of");
        for (size_t i = 0; r->choices[i] && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s %s", i ? "," : "", r->choices[i]);
        break;
    }
    default: snprintf(buf, cap, "a valid value"); break;
    }
}

/* Checks arg against row r and stores it into opts: 0, or CLIOPTS_USAGE
 * after the error message. */
static int apply(const cliopts_spec *spec, const cliopt *r, const char *arg, void *opts)
{
    char *base = opts, why[512] = "", want[256];
    void *dest = base + r->offset;
    int *given = r->given ? (int *)(void *)(base + r->given - 1) : NULL;
    long long v;
    int bad = 0;
    switch (r->kind) {
    case CLIOPT_FLAG: store_int(dest, r->size, 1); break;
    case CLIOPT_STRING: *(const char **)dest = arg; break;
    case CLIOPT_INT:
    case CLIOPT_COUNT:
        bad = parse_whole(arg, r->kind == CLIOPT_COUNT, &v) || v < r->lo || v > r->hi;
        if (!bad)
            store_int(dest, r->size, v);
        break;
    case CLIOPT_SIZE: {
        uint64_t bytes;
        bad = config_parse_size(arg, &bytes) != LS_OK || bytes < (uint64_t)r->lo;
        if (!bad)
            memcpy(dest, &bytes, sizeof bytes);
        break;
    }
    case CLIOPT_DURATION: {
        int64_t ms;
        bad = timefmt_parse_duration(arg, &ms) != LS_OK || ms < r->lo || ms > r->hi;
        if (!bad)
            *(double *)dest = (double)ms / 1000.0;
        break;
    }
    case CLIOPT_TIME: {
        int64_t ms;
        int trc = cli_parse_time(arg, &ms);
        if (trc == LS_EINVAL)
            return cli_error(spec->cmd, CLI_USAGE, "--%s: \"%s\" is " CLI_TIME_EARLY, r->name, arg), CLIOPTS_USAGE;
        bad = trc != 0;
        if (!bad)
            memcpy(dest, &ms, sizeof ms);
        break;
    }
    case CLIOPT_ENUM:
        bad = 1;
        for (int i = 0; r->choices[i]; i++)
            if (strcmp(arg, r->choices[i]) == 0) {
                *(int *)dest = r->values ? r->values[i] : i;
                bad = 0;
                break;
            }
        break;
    case CLIOPT_LIST:
        if (*given >= r->hi)
            return cli_error(spec->cmd, CLI_USAGE, "--%s: at most %lld times", r->name, r->hi), CLIOPTS_USAGE;
        ((const char **)dest)[*given] = arg;
        ++*given;
        return 0;
    case CLIOPT_CUSTOM:
        if (r->parse(arg, dest, why, sizeof why) != 0) {
            cli_error(spec->cmd, CLI_USAGE, "--%s: %s", r->name, why[0] ? why : "bad value");
            return CLIOPTS_USAGE;
        }
        break;
    default: bad = 1; break;
    }
    if (bad) {
        if (!r->want)
            default_want(r, want, sizeof want);
        cli_error(spec->cmd, CLI_USAGE, "--%s: \"%s\" is not %s", r->name, arg, r->want ? r->want : want);
        return CLIOPTS_USAGE;
    }
    if (given)
        *given = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

/* 1 when word ("--name" or "--name=value") names one of longopts in full. */
static int full_name(const char *word, const struct option *longopts)
{
    if (strncmp(word, "--", 2) != 0)
        return 0;
    word += 2;
    size_t len = strcspn(word, "=");
    for (const struct option *o = longopts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, word, len) == 0)
            return 1;
    return 0;
}

/* 1 when getopt_long's '?' was for a flag given "=value": optopt is the
 * val of a long option without a value, and argv[optind - 1] is a "--"
 * word whose name, before "=", begins that option's name (its full name,
 * or an abbreviation of it). */
static int flag_given_value(char **argv, int optind_now, const struct option *longopts)
{
    if (optopt == 0 || optind_now < 1)
        return 0;
    const char *word = argv[optind_now - 1];
    if (strncmp(word, "--", 2) != 0 || !strchr(word, '='))
        return 0;
    size_t len = strcspn(word + 2, "=");
    for (const struct option *o = longopts; o->name; o++)
        if (o->flag == NULL && o->val == optopt && o->has_arg == no_argument && len > 0 && len <= strlen(o->name)
            && strncmp(o->name, word + 2, len) == 0)
            return 1;
    return 0;
}

int cliopts_getopt(int argc, char **argv, const char *shorts, const struct option *longopts)
{
    int index = -1;
    int c = getopt_long(argc, argv, shorts, longopts, &index);
    /* the word just read: getopt_long has stepped over it, and over its
     * value when that came as the next word ("--key FILE") */
    const char *word;
    int separate = 0;
    if (index >= 0) {
        separate = longopts[index].has_arg == required_argument && optind >= 2 && optarg == argv[optind - 1];
        word = argv[optind - 1 - separate];
    } else if (c == ':' && optind >= 1 && strncmp(argv[optind - 1], "--", 2) == 0) {
        word = argv[optind - 1]; /* a long option at the end, without its value */
    } else if (c == '?' && flag_given_value(argv, optind, longopts)) {
        word = argv[optind - 1]; /* a flag given "=value": getopt_long sets optopt, not the index */
    } else {
        return c; /* a short option, an unknown one, or the end */
    }
    if (full_name(word, longopts))
        return c;
    optind -= separate; /* argv[optind - 1] is the refused word */
    optopt = 0;
    return '?';
}

static int takes_value(const cliopt *r)
{
    return r->kind != CLIOPT_FLAG;
}

int cliopts_parse(const cliopts_spec *spec, int argc, char **argv, void *opts)
{
    struct option lo[MAX_ROWS + 2];
    char shorts[2 * MAX_ROWS + 8] = "";
    size_t ns = 0, n = 0;
    if (spec->in_order)
        shorts[ns++] = '+';
    shorts[ns++] = ':'; /* a missing value: ':', not '?' */
    shorts[ns++] = 'h';
    for (size_t i = 0; spec->opts[i].kind != CLIOPT_END_ && n < MAX_ROWS; i++) {
        const cliopt *r = &spec->opts[i];
        if (r->kind == CLIOPT_SECTION)
            continue;
        lo[n++] = (struct option){r->name, takes_value(r) ? required_argument : no_argument, NULL, VAL_BASE + (int)i};
        if (r->short_name) {
            shorts[ns++] = (char)r->short_name;
            if (takes_value(r))
                shorts[ns++] = ':';
        }
    }
    lo[n++] = (struct option){"help", no_argument, NULL, HELP_VAL};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';

    int c, saved_opterr = opterr;
    opterr = 0;
    optind = 0;
    int rc = 0;
    while (rc == 0 && (c = cliopts_getopt(argc, argv, shorts, lo)) != -1) {
        if (c == 'h' || c == HELP_VAL) {
            cliopts_help(spec, stdout);
            rc = CLIOPTS_HELP;
        } else if (c == ':') {
            const char *name = optopt >= VAL_BASE ? spec->opts[optopt - VAL_BASE].name : NULL;
            if (name)
                cli_error(spec->cmd, CLI_USAGE, "--%s takes a value (see --help)", name);
            else
                cli_error(spec->cmd, CLI_USAGE, "-%c takes a value (see --help)", optopt);
            rc = CLIOPTS_USAGE;
        } else if (c == '?') {
            if (optopt && optopt < VAL_BASE)
                cli_error(spec->cmd, CLI_USAGE, "unknown option -%c (see --help)", optopt);
            else if (optopt >= VAL_BASE)
                cli_error(spec->cmd, CLI_USAGE, "--%s takes no value (see --help)", spec->opts[optopt - VAL_BASE].name);
            else
                cli_error(spec->cmd, CLI_USAGE, "unknown option \"%s\" (see --help)", argv[optind - 1]);
            rc = CLIOPTS_USAGE;
        } else {
            const cliopt *r = NULL;
            if (c >= VAL_BASE)
                r = &spec->opts[c - VAL_BASE];
            else
                for (size_t i = 0; spec->opts[i].kind != CLIOPT_END_ && !r; i++)
                    if (spec->opts[i].short_name == c && spec->opts[i].kind != CLIOPT_SECTION)
                        r = &spec->opts[i];
            rc = r ? apply(spec, r, optarg, opts) : CLIOPTS_USAGE;
        }
    }
    opterr = saved_opterr;
    return rc ? rc : optind;
}

int cliopts_status(int parsed)
{
    return parsed == CLIOPTS_HELP ? CLI_OK : CLI_USAGE;
}

/* ------------------------------------------------------------------ */
/* --help                                                              */
/* ------------------------------------------------------------------ */

/* "--name ARG" (and "-x, " before it) into buf; returns its length. */
static int label(const cliopt *r, char *buf, size_t cap)
{
    if (r->short_name)
        return snprintf(buf, cap, "-%c, --%s%s%s", r->short_name, r->name, r->arg ? " " : "", r->arg ? r->arg : "");
    return snprintf(buf, cap, "--%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
}

void cliopts_help(const cliopts_spec *spec, FILE *out)
{
    char buf[128];
    int width = 0;
    fprintf(out, "usage: %s\n\n", spec->usage);
    if (spec->about)
        fprintf(out, "%s\n\n", spec->about);
    for (const cliopt *r = spec->opts; r->kind != CLIOPT_END_; r++) {
        int len = label(r, buf, sizeof buf);
        if (r->kind != CLIOPT_SECTION && r->help && len <= LABEL_MAX && len > width)
            width = len;
    }
    int first = 1;
    for (const cliopt *r = spec->opts; r->kind != CLIOPT_END_; r++) {
        if (r->kind == CLIOPT_SECTION) {
            fprintf(out, "%s%s\n", first ? "" : "\n", r->help);
            first = 0;
            continue;
        }
        if (!r->help)
            continue;
        first = 0;
        int len = label(r, buf, sizeof buf);
        if (len > width)
            fprintf(out, "  %s\n%*s", buf, width + 4, "");
        else
            fprintf(out, "  %-*s  ", width, buf);
        for (const char *p = r->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "%*s", width + 4, "");
        }
        fputc('\n', out);
        if (r->more_help)
            r->more_help(out);
    }
    if (spec->epilog)
        fprintf(out, "\n%s\n", spec->epilog);
}
