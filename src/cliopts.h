/* cliopts.h -- the command-line options of the `leadscore` subcommands,
 * described once in a table per subcommand.
 *
 * A row names one option (--name, an optional -x), the kind of value it
 * takes, where in the subcommand's options struct the value goes
 * (offsetof) and its help text.  cliopts_parse() reads argv against the
 * table (getopt_long underneath, taking only full option names: --k is
 * no --key), checks every value, and reports a bad one uniformly as "leadscore CMD: --opt: why" (exit status 2); the same
 * table prints --help, so the help and the parser cannot drift.  Checks
 * between options ("--data and --connect exclude each other") stay in the
 * subcommand, after the parse.
 *
 *     static const cliopt rows[] = {
 *         {.name = "data", .kind = CLIOPT_STRING, CLIOPT_FIELD(my_opts, dir), .arg = "DIR", .help = "the store"},
 *         {.name = "batch", .kind = CLIOPT_INT, CLIOPT_FIELD(my_opts, batch), .lo = 1, .hi = 1000, .arg = "N",
 *          .help = "events per transaction"},
 *         CLIOPT_END};
 *     int first = cliopts_parse(&spec, argc, argv, &o);   (spec.opts = rows)
 *     if (first < 0)
 *         return cliopts_status(first);                    (0 after --help, else 2) */
#ifndef LS_CLIOPTS_H
#define LS_CLIOPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CLIOPT_END_ = 0,  /* ends a table (CLIOPT_END) */
    CLIOPT_SECTION,   /* not an option: a heading in --help (.help) */
    CLIOPT_FLAG,      /* no value; the int destination becomes 1 */
    CLIOPT_STRING,    /* const char *, pointing into argv */
    CLIOPT_INT,       /* a whole number in [lo, hi]; int, long, size_t, int64_t or uint64_t destination */
    CLIOPT_COUNT,     /* as CLIOPT_INT, with an optional k, M or G suffix (10M) */
    CLIOPT_SIZE,      /* bytes, as config_parse_size (64MiB, 4GiB), at least lo; uint64_t */
    CLIOPT_DURATION,  /* timefmt_parse_duration (500ms, 2m, 10) in [lo, hi] ms; double destination, in seconds */
    CLIOPT_TIME,      /* Unix seconds, ms or ISO 8601 (cli_parse_time); int64_t destination, in ms */
    CLIOPT_ENUM,      /* one of .choices; int (or enum) destination gets .values[i] (i without values) */
    CLIOPT_LIST,      /* repeatable: appended to a const char *[hi] array, the count in .given */
    CLIOPT_CUSTOM     /* .parse(arg, destination, why, cap) */
} cliopt_kind;

/* A custom value parser: 0, or -1 with the reason in why (the message
 * becomes "--opt: why"). */
typedef int (*cliopt_parse_fn)(const char *arg, void *dest, char *why, size_t cap);

typedef struct {
    const char *name;         /* long name without "--"; NULL ends the table */
    int short_name;           /* 'q' for -q, or 0 */
    cliopt_kind kind;
    size_t offset;            /* of the destination in the options struct (CLIOPT_FIELD) */
    size_t size;              /* sizeof the destination (CLIOPT_FIELD) */
    size_t given;             /* 0, or 1 + offsetof an int set to 1 when the option appears
                                 (CLIOPT_LIST: the count of values, incremented) (CLIOPT_GIVEN) */
    long long lo, hi;         /* bounds, as the kind says; CLIOPT_LIST: hi is the capacity */
    const char *const *choices; /* CLIOPT_ENUM: the words, NULL-terminated */
    const int *values;        /* CLIOPT_ENUM: the value of each word, or NULL for its index */
    cliopt_parse_fn parse;    /* CLIOPT_CUSTOM */
    const char *want;         /* what a bad value is not: --batch: "x" is not <want>; NULL: from the kind */
    const char *arg;          /* --help: the value's name ("DIR"); NULL for a flag */
    const char *help;         /* --help: the text, '\n' starting each further line; NULL: not listed */
    void (*more_help)(FILE *out); /* --help: prints further lines after the text (e.g. a list of workloads) */
} cliopt;

#define CLIOPT_FIELD(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)
#define CLIOPT_GIVEN(type, field) .given = offsetof(type, field) + 1
#define CLIOPT_END {.name = NULL}

/* One subcommand: its name, the table, and the rest of its --help. */
typedef struct {
    const char *cmd;          /* "import": errors read "leadscore import: ..." */
    const char *usage;        /* printed after "usage: "; may span lines */
    const char *about;        /* the paragraph(s) between usage and options, or NULL */
    const char *epilog;       /* text after the options, or NULL */
    const cliopt *opts;       /* the table, ended by CLIOPT_END */
    int in_order;             /* options stop at the first operand (getopt's "+") */
} cliopts_spec;

#define CLIOPTS_HELP (-1)     /* cliopts_parse: --help was printed */
#define CLIOPTS_USAGE (-2)    /* cliopts_parse: a usage error, reported */

/* Parses the options of argv (argv[0] is the subcommand's name) into
 * opts, the struct the table's offsets point into; fields of options not
 * given keep what the caller put there (the defaults).  --help and -h
 * print spec's help on stdout.  Returns the index of the first operand,
 * CLIOPTS_HELP, or CLIOPTS_USAGE after "leadscore CMD: ..." on stderr.
 * String values point into argv. */
int cliopts_parse(const cliopts_spec *spec, int argc, char **argv, void *opts);

/* The exit status for a negative cliopts_parse result: CLI_OK after
 * --help, CLI_USAGE otherwise. */
int cliopts_status(int parsed);

/* Prints spec's --help to out. */
void cliopts_help(const cliopts_spec *spec, FILE *out);

struct option;

/* getopt_long(argc, argv, shorts, longopts, NULL) without its unique
 * prefixes: a long option must be given by its full name (--key, or
 * --key=VALUE), so an abbreviation such as --k (or --ex=1, a flag's
 * abbreviation given a value) returns '?' with optopt 0, like any unknown
 * long option; a flag given a value by its full name (--explain=1)
 * returns '?' with optopt its val.  After '?', argv[optind - 1] is the
 * option word that was refused.  Every command parses through this (the
 * abbreviations were never documented, and made a typo another option). */
int cliopts_getopt(int argc, char **argv, const char *shorts, const struct option *longopts);

#endif
