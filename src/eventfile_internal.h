/* eventfile_internal.h -- the reader state shared by the eventfile
 * modules: eventfile.c (options, rows parsed into checked events, the
 * public calls), eventfile_source.c (CSV and JSON Lines text) and
 * eventfile_fold.c (order folding and derived event ids).  Callers use
 * eventfile.h. */
#ifndef LS_EVENTFILE_INTERNAL_H
#define LS_EVENTFILE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <zlib.h>

#include "csv.h"
#include "eventfile.h"

#define JSONL_READ_BUF (256u * 1024u)
#define JSONL_MAX_LINE ((size_t)1 << 20)
/* Finished orders remembered to catch lines of one order that are not
 * consecutive (a direct-mapped cache of order-key hashes). */
#define RECENT_ORDERS 4096
/* Most distinct row contents remembered per ts run (see occurrence()). */
#define OCC_MAX_USED ((size_t)1 << 20)
#define NUMBUF 40

typedef struct {
    uint64_t h;       /* content hash */
    uint32_t gen;     /* ts run it belongs to */
    uint32_t count;   /* copies seen in that run */
} occ_slot;

/* An order being folded: owned copies of its strings. */
typedef struct {
    int open;
    ls_event ev;            /* the first line, then the sums */
    uint64_t first_line, last_line, nlines;
    uint64_t key;           /* hash of (type, customer, order_id) */
    int again;              /* the key was seen finishing earlier: not consecutive */
    uint64_t bad_key;       /* hash of (customer, order_id), as a refused row names them */
    uint64_t refused_line;  /* a refused row named this order: it is skipped whole; 0 none */
    char customer[EVENT_MAX_STR + 1], order_id[EVENT_MAX_STR + 1], session[EVENT_MAX_STR + 1];
    char product[EVENT_MAX_STR + 1], category[EVENT_MAX_STR + 1], event_id[EVENT_MAX_STR + 1];
    char id[40];            /* "order:<hex>" */
} order_fold;

struct eventfile {
    char *path;
    eventfile_options o;
    int jsonl;
    int fd;                 /* for offsets; owned unless it is stdin */
    int own_fd;
    int64_t now_ms, min_ts_ms;
    size_t max_str;

    /* CSV */
    csv_reader *csv;
    size_t hdr_fields;      /* 0 with no header */
    int col[EVENTFILE_NFIELDS]; /* column index of each field, -1 none */

    /* JSON Lines */
    gzFile gz;
    unsigned char *buf;
    size_t pos, end;
    int gz_eof;
    char *line;
    size_t line_cap;
    uint64_t lineno;
    json_t *obj;
    char jkey[EVENTFILE_NFIELDS][EVENT_MAX_STR + 1]; /* key of each field, "" none */
    char num[EVENTFILE_NFIELDS][NUMBUF];

    /* the current row: text of each field, NULL when absent */
    const char *val[EVENTFILE_NFIELDS];
    size_t vlen[EVENTFILE_NFIELDS];
    uint64_t row_line;
    uint64_t event_first, event_last; /* the lines of the last event handed out (eventfile_event_lines) */
    int row_read;           /* the current row was read whole (f->val holds its fields) */
    int row_type;           /* its type when it parsed (a purchase or refund can be told apart), else -1 */
    uint64_t last_bad_key;  /* the last refused row's order (bad_key), 0 none ... */
    int last_bad_type;      /* ... its type, or -1 when it did not parse ... */
    uint64_t last_bad_line; /* ... and its line */

    /* folding */
    order_fold grp;
    int have_pending;
    ls_event pending;
    uint64_t pending_line;
    uint64_t recent[RECENT_ORDERS];

    /* identical-row disambiguation within a run of equal ts */
    occ_slot *occ;
    size_t occ_cap, occ_used;
    uint32_t occ_gen;
    int64_t run_ts;
    int run_open;
    char row_id[40];

    int status;             /* sticky fatal status */
    int ended;
    char fatal[600];
    char err[600];
    const char *kind;
    eventfile_stats st;
};

/* ---- helpers of eventfile.c the other modules use ---- */

/* Narrows s/len past leading and trailing blanks (space, tab, CR, LF). */
void ef_trim(const char **s, size_t *len);
/* Writes at most 60 bytes of s into buf, quoted, with control bytes as
 * '?'; returns buf. */
const char *ef_shown(char *buf, size_t cap, const char *s, size_t len);
/* Reports a bad row at line: message "PATH:LINE: detail", static kind.
 * Returns EVENTFILE_BAD_ROW. */
__attribute__((format(printf, 4, 5)))
int ef_bad_row(eventfile *f, uint64_t line, const char *kind, const char *fmt, ...);
/* Records a fatal failure (sticky in f->status) and returns status. */
__attribute__((format(printf, 3, 4)))
int ef_fatal(eventfile *f, int status, const char *fmt, ...);
/* Checks a built event (the time window, event_validate) from line.
 * 1 or EVENTFILE_BAD_ROW. */
int ef_check_event(eventfile *f, ls_event *ev, uint64_t line);

#endif
