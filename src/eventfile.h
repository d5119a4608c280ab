/* eventfile.h -- reading shop events out of export files.
 *
 * `leadscore import` and `leadscore train` both read the event exports a
 * shop already has: CSV with a header row, headerless whitespace-separated
 * tables (CDNOW_master.txt), or JSON Lines, each plain or gzip-compressed.
 * This module turns one such file into a stream of validated ls_events
 * (event.h), one eventfile_next() call at a time, with bounded memory.
 *
 *     eventfile_options o;
 *     eventfile_options_init(&o);
 *     eventfile_parse_map("customer=user_id,ts=event_time", &o.map, err, sizeof err);
 *     eventfile *f;
 *     if (eventfile_open(&f, "events.csv.gz", &o, err, sizeof err) != LS_OK) ...
 *     ls_event ev;
 *     int rc;
 *     while ((rc = eventfile_next(f, &ev)) != 0) {
 *         if (rc == EVENTFILE_BAD_ROW) { fprintf(stderr, "%s\n", eventfile_error(f)); continue; }
 *         if (rc < 0) { fprintf(stderr, "%s\n", eventfile_error(f)); break; }   // fatal
 *         use(&ev);                      // strings valid until the next call
 *     }
 *     eventfile_close(&f);
 *
 * Formats.  EVENTFILE_AUTO picks JSON Lines for names ending in .jsonl,
 * .ndjson or .json (each optionally followed by .gz), CSV otherwise; gzip
 * is recognised by its magic bytes, not by the name, so "-" (stdin) works
 * compressed too (stdin is CSV unless options.format says JSONL).  CSV is
 * read by csv.h (RFC 4180: quoted fields with commas and newlines, CRLF, a
 * UTF-8 BOM, a last line without newline); CSV quoting it cannot get past
 * is fatal.  JSON Lines: one object per line (jansson), blank lines
 * skipped, CRLF and a BOM accepted, a line that is not an object is a bad
 * row.  Input is read in 256 KiB chunks: on a pipe, rows arrive in bursts.
 *
 * Columns.  Every event field (PROTOCOL.md section 2) may come from a
 * source column: for CSV a header name, or a 1-based position ("1", "2",
 * ... -- the only names there are with no_header, and usable with a header
 * too when no header column has that name); for JSON Lines a top-level key
 * of each object (strings, numbers and booleans are read as their text,
 * null or a missing key means the field is absent; other keys are
 * ignored).  The map says which column feeds which field
 * (eventfile_parse_map); a field the map does not name is read from a
 * column named like the field ("customer", "price") if the file has one
 * (CSV headers: matched exactly, else ignoring case; JSON keys: exactly).
 * A field may instead be a constant for every row ("type=:purchase").
 * customer, type and ts are required: a CSV file lacking any of them fails
 * to open.  So does one whose header holds a name the map reads (a mapped
 * column, or a field's own name) twice -- exactly, or ignoring case when
 * no column has the exact name -- as it cannot be told which is meant (a
 * position picks one); names the map does not read may repeat.  With a header, a row with another number of fields than the
 * header is a bad row (an unquoted delimiter would shift the columns).
 *
 * Values.  Fields are trimmed of blanks (space, tab, CR, LF) first.  An
 * empty optional field is absent; an empty customer, type or ts is a bad
 * row.  type goes through the --types translation (eventfile_parse_types),
 * then must be one of the event types.  ts is read by timefmt_parse() with
 * options.ts_format (Unix seconds, ms, ISO 8601 with or without a zone,
 * YYYYMMDD); when it forces one form, a ts not in it is a bad row that
 * names the form expected.  price and value are decimal numbers, quantity and rating
 * whole numbers ("2" or "2.0"), discounted true/false/1/0/yes/no (any case),
 * birthday MM-DD.  Every event then passes event_validate() (string limits
 * of options.max_str, money, ratings 1-5 when given) and a time
 * window options.min_ts_ms .. now + EVENT_MAX_FUTURE_MS that this module
 * checks itself, because its lower bound is an option (see min_ts_ms).
 *
 * Orders.  Exports often hold one row per order line.  Consecutive rows of
 * one customer with type purchase or refund and the same non-empty order_id
 * fold into ONE event: value is the sum of the lines' values (a line's
 * value, else its price x quantity), quantity the sum of the quantities,
 * ts the earliest line's, product/category/session those of the first
 * line, discounted when any line is; price is left out.  Lines of one
 * order that are NOT consecutive (another row in between) would make a
 * second event with the same event id, which a store counts as a
 * duplicate and drops: when a recently finished order shows up again, the
 * late lines are reported as a bad row instead ("sort the file by order").
 *
 * Event ids.  Every event gets an event_id, so importing a file twice
 * changes nothing.  A mapped, non-empty event_id column wins.  Otherwise:
 *   a folded order:  "order:" + 16 hex digits of a 64-bit FNV-1a hash of
 *                    (type, customer, order_id);
 *   any other row:   "row:" + 16 hex digits of a hash of the event's
 *                    content after parsing (customer, type, ts in ms,
 *                    strings, numbers), so a re-export in another column
 *                    order or time format gives the same ids.
 * Identical rows are real in exports (CDNOW has 215 rows repeating an
 * earlier row: same customer, day, CDs and dollars) and are separate
 * purchases; the k-th identical copy (k >= 2) among the rows sharing one
 * ts run (consecutive rows with the same ts) gets the hash of the content
 * plus k.  Identical events always share their ts, so in a file sorted by
 * time, or by customer then time, every copy is told apart.  (Memory for
 * this is bounded: past 2^20 distinct rows in one ts run, e.g. a constant
 * ts, the count starts over at a fixed row.)
 *
 * Memory per open file: the CSV or JSON read buffers (256 KiB each plus
 * zlib's), one record or line (at most 1 MiB), a 32 KiB table of recent
 * orders and the identical-row table of the current ts run.
 *
 * Ownership.  The eventfile owns every string an ls_event it returns points
 * to; they stay valid until the next eventfile_next() or eventfile_close()
 * on it.  eventfile_error() text likewise.  The options (and the map and
 * types inside them) are copied by eventfile_open().
 *
 * Threads: one eventfile is used by one thread at a time; different
 * eventfiles are independent.  Nothing here logs or prints. */
#ifndef LS_EVENTFILE_H
#define LS_EVENTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* eventfile_next() result for a row that could not be turned into an event
 * (a positive code: the file is still readable, call eventfile_next()
 * again).  eventfile_error() says "FILE:LINE: reason". */
#define EVENTFILE_BAD_ROW 2

/* Size of a --types source value buffer (so at most 127 bytes). */
#define EVENTFILE_MAX_NAME 128
/* Most translations one eventfile_types holds. */
#define EVENTFILE_MAX_TYPES 64

/* The event fields a source column can feed, in PROTOCOL.md order.  The
 * names are the wire names ("customer", "ts", ...); see
 * eventfile_field_name(). */
#define EVENTFILE_FIELD_MAP(X) \
    X(CUSTOMER, "customer")    \
    X(TYPE, "type")            \
    X(TS, "ts")                \
    X(EVENT_ID, "event_id")    \
    X(SESSION, "session")      \
    X(PRODUCT, "product")      \
    X(CATEGORY, "category")    \
    X(PRICE, "price")          \
    X(QUANTITY, "quantity")    \
    X(VALUE, "value")          \
    X(DISCOUNTED, "discounted") \
    X(RATING, "rating")        \
    X(ORDER_ID, "order_id")    \
    X(BIRTHDAY, "birthday")

typedef enum {
#define EVENTFILE_FIELD_ENUM(sym, name) EVENTFILE_F_##sym,
    EVENTFILE_FIELD_MAP(EVENTFILE_FIELD_ENUM)
#undef EVENTFILE_FIELD_ENUM
    EVENTFILE_NFIELDS
} eventfile_field;

/* How one field is fed. */
typedef enum {
    EVENTFILE_SRC_AUTO = 0, /* from a column named like the field, if any */
    EVENTFILE_SRC_COLUMN,   /* from the column named in .text */
    EVENTFILE_SRC_CONST,    /* the constant .text on every row */
    EVENTFILE_SRC_NONE      /* never: the field is left out ("field=" in a map) */
} eventfile_source;

/* Which source feeds each event field.  All-zero means every field
 * EVENTFILE_SRC_AUTO, i.e. columns named like the fields. */
typedef struct {
    struct {
        eventfile_source source;
        char text[EVENT_MAX_STR + 1]; /* column name, or the constant */
    } field[EVENTFILE_NFIELDS];
} eventfile_map;

/* Translations of source type values into event types.  All-zero means
 * none: values must already be event type names. */
typedef struct {
    size_t n;
    struct {
        char from[EVENTFILE_MAX_NAME];
        event_type to;
    } entry[EVENTFILE_MAX_TYPES];
} eventfile_types;

typedef enum {
    EVENTFILE_AUTO = 0, /* by the file name, see above */
    EVENTFILE_CSV,
    EVENTFILE_JSONL
} eventfile_format;

/* How to read a file.  Call eventfile_options_init() first (min_ts_ms and
 * max_str have non-zero defaults), then change what you need. */
typedef struct {
    eventfile_format format;   /* default EVENTFILE_AUTO */
    char delimiter;            /* CSV field separator; 0 = ',' */
    int whitespace;            /* CSV: runs of blanks separate fields (CDNOW) */
    int no_header;             /* CSV: no header row; columns are "1", "2", ... */
    int ts_format;             /* a timefmt_hint (timefmt.h); default TIMEFMT_AUTO */
    /* Earliest accepted event time, ms.  Default EVENT_MIN_TS_MS (2000-01-01,
     * what the service accepts); 0 accepts any time from 1970 on (older
     * data sets such as CDNOW, 1997).  A ts must be >= 1 ms whatever this
     * says: feature records use 0 for "never". */
    int64_t min_ts_ms;
    /* The advice in parentheses after "ts T is before 2000-01-01" when
     * min_ts_ms is EVENT_MIN_TS_MS; NULL: "--allow-old accepts older
     * times".  Not copied: it must outlive the file (a string literal). */
    const char *old_hint;
    /* "Now" for the future bound (ts at most now + 1 day) and for
     * event_validate; 0 = the wall clock, read once at eventfile_open(). */
    int64_t now_ms;
    size_t max_str;            /* longest string field; default and ceiling EVENT_MAX_STR */
    int no_fold;               /* 1: never fold order lines into one event */
    eventfile_map map;         /* copied at open */
    eventfile_types types;     /* copied at open */
} eventfile_options;

/* Counters for one open file, for progress bars and summaries. */
typedef struct {
    uint64_t rows;          /* source rows read (not counting a header or blank lines) */
    uint64_t events;        /* events returned (eventfile_next() == 1) */
    uint64_t bad_rows;      /* EVENTFILE_BAD_ROW results */
    uint64_t folded_rows;   /* order lines folded into an earlier line's event */
    uint64_t bytes_read;    /* bytes of the file consumed so far (compressed bytes for .gz) */
    uint64_t bytes_total;   /* the file's size, 0 when unknown (stdin, a pipe) */
} eventfile_stats;

typedef struct eventfile eventfile;

/* Sets every option to its default: AUTO format, ',' delimiter, header
 * row, TIMEFMT_AUTO, min_ts_ms EVENT_MIN_TS_MS, no old_hint, the wall clock, max_str
 * EVENT_MAX_STR, folding on, an empty map and no type translations. */
void eventfile_options_init(eventfile_options *o);

/* Parses a map spec "field=column,field=:constant,field=" into *map,
 * adding to (and overriding) what it already holds, so several --map
 * options accumulate.  "field=column" reads the field from that column
 * (name or 1-based position), "field=:text" makes it the constant text,
 * "field=" leaves it out even if a column is named like it.  Names are
 * the event field names.  Returns LS_OK, or LS_EPARSE with a message in
 * err (unknown field, missing '=', a field twice in one spec, a name or
 * constant too long); *map may then be partly updated. */
int eventfile_parse_map(const char *spec, eventfile_map *map, char *err, size_t errlen);

/* Parses a types spec "from=to,from=to" (to an event type name) into
 * *types, adding to what it holds; a later "from" replaces an earlier
 * one.  Returns LS_OK, or LS_EPARSE with a message in err (unknown event
 * type, missing '=', empty or too long a value, more than
 * EVENTFILE_MAX_TYPES entries). */
int eventfile_parse_types(const char *spec, eventfile_types *types, char *err, size_t errlen);

/* Parses a --ts-format word: "auto", "seconds", "millis" (or "ms") or
 * "iso" into a timefmt_hint.  Returns LS_OK or LS_EPARSE. */
int eventfile_parse_ts_format(const char *word, int *hint);

/* Parses the len bytes at s as a decimal number, [+-]digits[.digits]
 * [e[+-]digits], finite, nothing else around it: no blanks, no hex (0x10),
 * no inf or nan (a row's price and value; `track` reads its price and
 * value so too).  Returns 0 and sets *out, or -1. */
int eventfile_parse_decimal(const char *s, size_t len, double *out);

/* Parses the len bytes at s as a whole number, also written "2.0" or
 * "2e3" (the quantity and rating of a row; `track` reads its fields so
 * too).  Returns 0 and sets *out, -1 when it is not one, -2 when it is
 * beyond +-9e15 (where a double stops holding every whole number). */
int eventfile_parse_whole(const char *s, size_t len, int64_t *out);

/* Name of a field ("customer"), or NULL when out of range. */
const char *eventfile_field_name(eventfile_field field);

/* Opens path ("-" is standard input) and, for CSV, reads its header row
 * and resolves the map against it.  Returns LS_OK and sets *out to a file
 * the caller must eventfile_close(); otherwise *out is NULL, err (if not
 * NULL) says why with the file name, and the status is LS_ENOTFOUND (no
 * such file), LS_EIO (unreadable, or a read error in the header),
 * LS_EPARSE (a mapped column the header does not have or has twice,
 * customer/type/ts not mapped, an empty file with a header expected), LS_EINVAL (bad
 * options) or LS_ENOMEM.  opt may be NULL for the defaults. */
int eventfile_open(eventfile **out, const char *path, const eventfile_options *opt, char *err, size_t errlen);

/* Reads the next event into *ev.  Returns
 *   1                  an event (validated, defaults filled: value, ts);
 *   0                  the clean end of the file (and again on every later call);
 *   EVENTFILE_BAD_ROW  a row that is not an event; eventfile_error() says
 *                      "FILE:LINE: reason", eventfile_error_kind() a short
 *                      static reason for counting; call again for the next;
 *   < 0                a fatal error (LS_EIO: read error or truncated .gz;
 *                      LS_EPARSE: CSV quoting the reader cannot get past;
 *                      LS_ETOOLARGE: a record over 1 MiB; LS_ENOMEM), with
 *                      the message in eventfile_error().  Events read before
 *                      it (an order being folded included) were returned
 *                      normally; the error is sticky.
 * The strings of *ev belong to f and are valid until the next call. */
int eventfile_next(eventfile *f, ls_event *ev);

/* The eventfile_error_kind() of an order skipped whole because one of its
 * rows was refused (that row is a bad row of its own). */
#define EVENTFILE_KIND_ORDER_REFUSED "order has a refused line"

/* For a reader stopped early (import's --max-errors): hands out the order
 * being folded from the rows read so far, as eventfile_next would at the
 * end of the file (1, EVENTFILE_BAD_ROW when it is refused), or 0 when
 * none is open.  What was read before a stop is then all accounted for. */
int eventfile_finish(eventfile *f, ls_event *ev);

/* Message for the last EVENTFILE_BAD_ROW or fatal result, "FILE:LINE:
 * reason" ("FILE: reason" when no line applies); "" if none.  Owned by f,
 * valid until the next eventfile_next() or eventfile_close(). */
const char *eventfile_error(const eventfile *f);

/* A short static description of the last bad row's problem, without the
 * row's values, for counting rejections by reason ("ts is not a time",
 * "unknown event type", "missing column", or event_validate()'s reason).
 * "" if none.  Static storage. */
const char *eventfile_error_kind(const eventfile *f);

/* The lines the last event handed out by eventfile_next() or
 * eventfile_finish() came from: a row's line twice, or a folded order's
 * first and last line (JSON Lines: line numbers; CSV: the line a record
 * starts on); 0 and 0 before the first event. */
void eventfile_event_lines(const eventfile *f, uint64_t *first, uint64_t *last);

/* The counters so far (see eventfile_stats). */
void eventfile_get_stats(const eventfile *f, eventfile_stats *out);

/* The path as given to eventfile_open() ("-" for stdin). */
const char *eventfile_path(const eventfile *f);

/* Closes the file and frees f; NULLs *f.  A NULL f or *f is harmless. */
void eventfile_close(eventfile **f);

#endif
