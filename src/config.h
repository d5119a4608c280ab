/* config.h -- every setting of `leadscore serve`, described once.
 *
 * config_table() lists each option with its name, kind, default and help
 * text; the command line (`serve --NAME VALUE`), `serve --help` and the
 * config file all read that one table, so they cannot drift apart. */
#ifndef LS_CONFIG_H
#define LS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_PATH_MAX 1024

typedef struct {
    char data_dir[CONFIG_PATH_MAX];
    char model_path[CONFIG_PATH_MAX];
    char bind[256];
    char pull[256];
    int workers;                 /* threads for batch requests and event decoding */
    uint64_t max_frame;          /* bytes */
    uint64_t max_events;         /* events per batch */
    uint64_t max_string;         /* bytes per id / string field (<= 256) */
    uint64_t max_customers;      /* ids per batched score */
    int64_t dedupe_window_ms;    /* how long event ids are remembered */
    int history_days;            /* per-customer history retention (store.h) */
    uint64_t commit_max_events;  /* group commit: events per transaction */
    uint64_t pull_max_events;    /* ... of PULL batches, while acknowledged writes are coming */
    int64_t commit_window_ms;    /* group commit: longest collection time */
    int sync;                    /* 1: fsync every commit (durable acks) */
    uint64_t map_size;           /* initial LMDB map size, bytes */
    uint64_t map_max;            /* the map grows up to this, bytes */
    char curve_secret[CONFIG_PATH_MAX]; /* empty: no CURVE */
    char allow[CONFIG_PATH_MAX];
    char admin[CONFIG_PATH_MAX];
    char log_level[16];
    int64_t slow_ms;             /* log requests slower than this; 0: off */
    int64_t drain_timeout_ms;    /* longest shutdown drain before a forced exit */
    char metrics[256];           /* HOST:PORT of the Prometheus endpoint; empty: off */
    int64_t retrain_every_ms;    /* scheduled retraining (retrain.h); 0: off */
    /* limits on what one client can make the server hold or do (server.c) */
    uint64_t client_hwm;         /* replies queued per client, in messages */
    uint64_t max_envelope;       /* bytes of routing frames one request may carry */
    int scan_threads;            /* threads for store scans (kpis) */
    int max_scans;               /* scans running or queued at once */
    char model_dirs[CONFIG_PATH_MAX]; /* more directories `reload` may read (':'-separated) */
    uint64_t model_max_bytes;    /* largest model file `reload` reads */
    /* marketing automation (automation.h) */
    int triggers;                /* 1: live audiences and the trigger outbox */
    int64_t abandoned_cart_after_ms;
    char trigger_cooldowns[512]; /* moment=duration,...; empty: the defaults */
    int64_t trigger_retention_ms;
    uint64_t trigger_max;
    int64_t audience_refresh_ms;
    /* cluster mode (clusternode.h); nats empty: a single node */
    char nats[1024];             /* comma-separated nats://HOST:PORT */
    char node[48];               /* this node's name in the cluster map */
    char cluster[48];            /* the cluster's name */
    char advertise[256];         /* the ROUTER endpoint other nodes and clients use; empty: the bound one */
} config;

/* CONFIG_DURATION reads a bare number as seconds, CONFIG_DURATION_MS (an
 * option named in ms, --slow-ms) as milliseconds. */
typedef enum { CONFIG_STRING, CONFIG_INT, CONFIG_SIZE, CONFIG_DURATION, CONFIG_DURATION_MS, CONFIG_BOOL } config_kind;

typedef struct {
    const char *name;        /* option name, as in --name */
    config_kind kind;
    size_t offset;           /* where in config */
    size_t cap;              /* CONFIG_STRING: buffer size */
    const char *defval;      /* default, written as on the command line */
    int64_t min, max;        /* bounds for numbers */
    const char *help;
} config_option;

/* The option table, terminated by a row with name NULL. */
const config_option *config_table(void);

/* Fills cfg with every default.  Never fails. */
void config_defaults(config *cfg);

/* Sets option `name` from text.  Returns 0, LS_ENOTFOUND for an unknown
 * name, or LS_EINVAL with a reason in err. */
int config_set(config *cfg, const char *name, const char *value, char *err, size_t errlen);

/* Reads a config file of `name = value` lines (`#` starts a comment; the
 * names are the option names without --).  Returns 0, LS_EIO when the file
 * cannot be read, or LS_EINVAL with "FILE:LINE: reason" in err. */
int config_load_file(config *cfg, const char *path, char *err, size_t errlen);

/* Prints a sample config file: every option with its help and default,
 * commented out (dist/leadscore.conf is this output). */
void config_print_sample(FILE *out);

/* Prints the options, their defaults and help, for --help. */
void config_print_help(FILE *out);

/* Parses a size such as "1048576", "64KiB", "1MiB", "64GiB".  0 or LS_EINVAL. */
int config_parse_size(const char *s, uint64_t *out);

#endif
