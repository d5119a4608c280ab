/* rescore.h -- the batch job behind `leadscore rescore`: scores every
 * customer of a store from ONE consistent LMDB read snapshot, while
 * `serve` keeps running and writing, and writes one row per customer.
 *
 * The rows.  Each row is a full score result (PROTOCOL.md section 3, the
 * `score` op without explain), as
 *   - JSON Lines: one object per line with the wire reply's keys, in its
 *     order: customer, known, score, score_100, tier, p_alive,
 *     expected_purchases_30d, clv, customer_type, phase, loyalty_points,
 *     loyalty_tier, actions (array of codes), segments (array of
 *     {segment, weight, reason}), model;
 *   - CSV (RFC 4180, header row first): the same fields flattened, in the
 *     same order: actions joined with '|', segments as
 *     "segment1|segment2|..." best first, then model, and with
 *     segments_detail set a last column "segments_detail" holding the
 *     segments as a JSON array of {segment, weight, reason}.
 * Numbers have 10 significant digits (as `leadscore score --json`); a
 * non-finite number is null in JSON and an empty CSV field.  Ids are
 * opaque bytes: CSV writes them as they are (quoted when needed), JSON
 * escapes them and writes each byte that is not valid UTF-8 as U+FFFD.
 * Every stored record is a known customer, so known is always true.
 *
 * Order and memory.  Without `top` rows are streamed in customer-id
 * order as they are scored: memory is flat, whatever the number of
 * customers.  With top = N the N best rows by score, clv or
 * expected_purchases_30d are kept in bounded min-heaps (one per scoring
 * thread, merged at the end: O(N x threads) rows, never O(customers)) and
 * written best first; ties go to the smaller id.  A row is formatted only
 * when it enters a heap.
 *
 * Filters (`--where FIELD=VALUE`, repeatable, ANDed): tier, customer_type
 * (or type), phase, action (the customer has that action), segment (among
 * its returned segments), known.  A value may list alternatives separated
 * by commas (tier=hot,warm: hot OR warm).  Summary counts (tiers, types)
 * cover every customer scored; `matched` those passing the filters.
 *
 * Threads.  With threads > 1 every scoring thread has its own LMDB read
 * txn, all begun together on ONE snapshot (store_reader_begin_same: the
 * same txn id, begun again when a commit lands in between).  The snapshot
 * is cut into key ranges of about range_customers customers by split
 * keys from the B-tree's branch pages (store_reader_split_keys); each
 * thread claims the next range, scans, assesses, filters and formats it
 * into its own buffer, and ranges are written in key order: the output is
 * byte for byte the single-threaded one.  The thread whose range is next
 * streams its rows straight out; one further ahead holds at most about
 * 4 MB of rows before it waits for its turn, so memory stays bounded.
 * The calling thread is one of the scoring threads; the snapshot ends
 * when the last range is scanned.
 *
 * The library never prints: rescore_run reports through its summary, the
 * optional progress callback and a status with a message. */
#ifndef LS_RESCORE_H
#define LS_RESCORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "journey.h"
#include "model.h"
#include "segments.h"
#include "store.h"

#define RESCORE_MAX_WHERE 16
#define RESCORE_MAX_VALUES 8
#define RESCORE_MAX_THREADS 16

typedef enum { RESCORE_CSV, RESCORE_JSONL } rescore_format;

/* What --top ranks by. */
typedef enum { RESCORE_BY_SCORE, RESCORE_BY_CLV, RESCORE_BY_EXPECTED } rescore_key;

#define RESCORE_WHERE_MAP(X) \
    X(TIER, "tier") X(CUSTOMER_TYPE, "customer_type") X(PHASE, "phase") \
    X(ACTION, "action") X(SEGMENT, "segment") X(KNOWN, "known")
#define RESCORE_WHERE_ENUM(sym, name) RESCORE_WHERE_##sym,
typedef enum { RESCORE_WHERE_MAP(RESCORE_WHERE_ENUM) RESCORE_WHERE_COUNT } rescore_where_field;
#undef RESCORE_WHERE_ENUM

/* One parsed --where: a field and the values it accepts (any of them). */
typedef struct {
    rescore_where_field field;
    uint32_t mask;              /* tier (bit 0 hot, 1 warm, 2 cold), type, phase, action, known (bit 1 true, 0 false) */
    int nsegments;              /* segment: the names accepted */
    char segments[RESCORE_MAX_VALUES][SEGMENTS_NAME];
} rescore_filter;

typedef struct {
    int64_t now_ms;             /* score as of this time */
    rescore_format format;
    int segments_detail;        /* CSV: add the segments_detail column */
    size_t top;                 /* 0: every row, streamed; N: the N best by `by` */
    rescore_key by;
    int nwhere;
    rescore_filter where[RESCORE_MAX_WHERE];
    int threads;                /* scoring threads; 0: one per online CPU (at most 8); 1: all on the caller */
    size_t range_customers;     /* customers per key range with threads > 1 (0: 2048); tests set it small */
    FILE *out;                  /* rows go here (not closed) */
    /* Called on the calling thread, inside the snapshot, when the
     * customers scored by all threads pass another multiple of
     * progress_every (0: 4096), and never after the scan. */
    void (*progress)(void *arg, uint64_t scanned);
    void *progress_arg;
    uint64_t progress_every;
} rescore_options;

typedef struct {
    uint64_t customers;         /* records scored (the whole snapshot) */
    uint64_t matched;           /* of them, passing every filter */
    uint64_t rows;              /* rows written */
    uint64_t tiers[3];          /* hot, warm, cold, over every customer scored */
    uint64_t types[JT_COUNT];   /* by journey_type, over every customer scored */
    size_t top_bytes;           /* bytes the top-N heaps held at the end (their peak) */
    uint64_t replayed;          /* customers whose history was replayed (newest event after now_ms) */
    uint64_t events_replayed;   /* events those replays applied (the as-of work) */
    uint64_t ranges;            /* key ranges the snapshot was cut into */
    int threads;                /* scoring threads used */
    double seconds;             /* snapshot start to last row written */
} rescore_summary;

/* Defaults: now, CSV, every row, score, threads 0, stdout. */
void rescore_options_init(rescore_options *o);

/* Parses "FIELD=VALUE[,VALUE...]" into out.  Returns 0, or LS_EINVAL
 * with the reason (unknown field, unknown value) in err. */
int rescore_parse_where(const char *expr, rescore_filter *out, char *err, size_t errlen);

/* "score", "clv" or "expected_purchases" (also "expected_purchases_30d").
 * Returns 0 or LS_EINVAL. */
int rescore_parse_by(const char *name, rescore_key *out);

/* The CSV header line (with its '\n') for these options, static storage. */
const char *rescore_csv_header(const rescore_options *o);

/* Scores every customer of s in one read snapshot with model m and writes
 * the rows to o->out.  The model's half-lives must be the store's
 * (LS_EINVAL otherwise).  Returns 0, or a status with a message in err:
 * LS_EIO when writing failed (the scan stops early), LS_ENOMEM, or the
 * store's status.  sum (may be NULL) is filled either way. */
int rescore_run(store *s, const model *m, const rescore_options *o, rescore_summary *sum, char *err,
                size_t errlen);

/* ---- the top-N heap (bounded: at most n rows, ever) ---- */

typedef struct rescore_top rescore_top;

/* A heap for the n best rows (n >= 1; slots are allocated as rows come, so
 * a huge n costs nothing and keeps every row).  0, LS_EINVAL (n = 0) or
 * LS_ENOMEM. */
int rescore_top_new(size_t n, rescore_top **out);
/* Frees the heap and its rows; NULLs *t. */
void rescore_top_free(rescore_top **t);

/* 1 when a row with this key and id would enter the heap now (it is not
 * full, or the row beats its worst: a higher key, or an equal key and a
 * smaller id).  A NaN key counts as -infinity. */
int rescore_top_wants(const rescore_top *t, double key, const char *id, size_t id_len);

/* Offers a row; the heap copies what it keeps (evicting its worst row
 * when full, whose memory it reuses).  Returns 1 kept, 0 not, or
 * LS_ENOMEM. */
int rescore_top_offer(rescore_top *t, double key, const char *id, size_t id_len, const char *row, size_t row_len);

/* Offers every row of src to dst (src unchanged). */
int rescore_top_merge(rescore_top *dst, const rescore_top *src);

size_t rescore_top_count(const rescore_top *t);
/* Bytes the heap holds: its slots and the row buffers they own. */
size_t rescore_top_bytes(const rescore_top *t);

/* Sorts the heap best first (it stays usable only through
 * rescore_top_row afterwards: offer no more rows).  Row i, 0 = best:
 * its key and bytes (owned by the heap). */
void rescore_top_sort(rescore_top *t);
void rescore_top_row(const rescore_top *t, size_t i, double *key, const char **row, size_t *row_len);

#endif
