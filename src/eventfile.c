/* eventfile.c -- shop events out of CSV and JSON Lines exports (see
 * eventfile.h for the contract).
 *
 * Three layers, each in its own file:
 *   sources   eventfile_source.c: the raw text of each event field for one
 *             source row, a CSV record (csv.h) or one JSON Lines object
 *             (jansson), trimmed;
 *   rows      here: the field mapping and type names (--map, --types), and
 *             that text parsed into one ls_event and checked (types,
 *             numbers, times, the time window, event_validate);
 *   events    eventfile_fold.c: order lines folded into one purchase, event
 *             ids derived.
 * Their shared reader state is eventfile_internal.h.
 * A row is read ahead only while an order is being folded: the row that
 * ends the order waits in `pending` (its strings still point into the
 * source, which is not advanced until it has been handed out). */
#define _POSIX_C_SOURCE 200809L
#include "eventfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"
#include "eventfile_fold.h"
#include "eventfile_internal.h"
#include "eventfile_source.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ */
/* Names, options and their parsers                                     */
/* ------------------------------------------------------------------ */

static const char *const field_names[EVENTFILE_NFIELDS] = {
#define EVENTFILE_FIELD_NAME(sym, name) name,
    EVENTFILE_FIELD_MAP(EVENTFILE_FIELD_NAME)
#undef EVENTFILE_FIELD_NAME
};

const char *eventfile_field_name(eventfile_field field)
{
    return (int)field >= 0 && field < EVENTFILE_NFIELDS ? field_names[field] : NULL;
}

static int field_lookup(const char *s, size_t len)
{
    for (int i = 0; i < EVENTFILE_NFIELDS; i++)
        if (strlen(field_names[i]) == len && memcmp(field_names[i], s, len) == 0)
            return i;
    return -1;
}

void eventfile_options_init(eventfile_options *o)
{
    memset(o, 0, sizeof *o);
    o->format = EVENTFILE_AUTO;
    o->ts_format = TIMEFMT_AUTO;
    o->min_ts_ms = EVENT_MIN_TS_MS;
    o->max_str = EVENT_MAX_STR;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void ef_trim(const char **s, size_t *len)
{
    while (*len && is_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_blank((*s)[*len - 1]))
        (*len)--;
}

/* Calls fn(item, len) for each comma-separated item of spec, trimmed. */
typedef int (*item_fn)(void *arg, const char *item, size_t len, char *err, size_t errlen);

static int each_item(const char *spec, item_fn fn, void *arg, char *err, size_t errlen)
{
    if (!spec)
        return ls_fail(err, errlen, LS_EPARSE, "empty specification");
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        ef_trim(&item, &len);
        if (len) {
            int rc = fn(arg, item, len, err, errlen);
            if (rc)
                return rc;
        }
        if (!comma)
            return LS_OK;
        p = comma + 1;
    }
}

typedef struct {
    eventfile_map *map;
    unsigned seen; /* fields named in this spec */
} map_parse;

static int map_item(void *arg, const char *item, size_t len, char *err, size_t errlen)
{
    map_parse *mp = arg;
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not field=column or field=:constant", (int)len, item);
    const char *name = item, *src = eq + 1;
    size_t nlen = (size_t)(eq - item), slen = len - nlen - 1;
    ef_trim(&name, &nlen);
    ef_trim(&src, &slen);
    int f = field_lookup(name, nlen);
    if (f < 0)
        return ls_fail(err, errlen, LS_EPARSE,
                       "\"%.*s\" is not an event field (customer, type, ts, event_id, session, product, category, "
                       "price, quantity, value, discounted, rating, order_id, birthday)", (int)nlen, name);
    if (mp->seen & (1u << f))
        return ls_fail(err, errlen, LS_EPARSE, "field %s is mapped twice", field_names[f]);
    mp->seen |= 1u << f;
    eventfile_source source = EVENTFILE_SRC_COLUMN;
    if (slen == 0) {
        source = EVENTFILE_SRC_NONE;
    } else if (src[0] == ':') {
        source = EVENTFILE_SRC_CONST;
        src++;
        slen--;
    }
    if (slen > EVENT_MAX_STR)
        return ls_fail(err, errlen, LS_EPARSE, "%s: the %s is longer than %d bytes", field_names[f],
                       source == EVENTFILE_SRC_CONST ? "constant" : "column name", EVENT_MAX_STR);
    mp->map->field[f].source = source;
    memcpy(mp->map->field[f].text, src, slen);
    mp->map->field[f].text[slen] = '\0';
    return LS_OK;
}

int eventfile_parse_map(const char *spec, eventfile_map *map, char *err, size_t errlen)
{
    map_parse mp = {map, 0};
    if (!map)
        return ls_fail(err, errlen, LS_EINVAL, "no map");
    return each_item(spec, map_item, &mp, err, errlen);
}

static int types_item(void *arg, const char *item, size_t len, char *err, size_t errlen)
{
    eventfile_types *t = arg;
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not source_value=event_type", (int)len, item);
    const char *from = item, *to = eq + 1;
    size_t flen = (size_t)(eq - item), tlen = len - flen - 1;
    ef_trim(&from, &flen);
    ef_trim(&to, &tlen);
    event_type type;
    if (flen == 0 || flen >= EVENTFILE_MAX_NAME)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\": the source value must have 1 to %d bytes", (int)len, item,
                       EVENTFILE_MAX_NAME - 1);
    if (event_type_parse(to, tlen, &type) != LS_OK)
        return ls_fail(err, errlen, LS_EPARSE, "\"%.*s\" is not an event type (page_view, product_view, search, "
                       "add_to_cart, remove_from_cart, checkout, purchase, refund, review, email_open, email_click, "
                       "sms_click, signup, referral, share, support_ticket, profile)", (int)tlen, to);
    size_t i = 0;
    while (i < t->n && !(strlen(t->entry[i].from) == flen && memcmp(t->entry[i].from, from, flen) == 0))
        i++;
    if (i == t->n) {
        if (t->n == EVENTFILE_MAX_TYPES)
            return ls_fail(err, errlen, LS_EPARSE, "more than %d type translations", EVENTFILE_MAX_TYPES);
        t->n++;
        memcpy(t->entry[i].from, from, flen);
        t->entry[i].from[flen] = '\0';
    }
    t->entry[i].to = type;
    return LS_OK;
}

int eventfile_parse_types(const char *spec, eventfile_types *types, char *err, size_t errlen)
{
    if (!types)
        return ls_fail(err, errlen, LS_EINVAL, "no types");
    return each_item(spec, types_item, types, err, errlen);
}

int eventfile_parse_ts_format(const char *word, int *hint)
{
    static const struct {
        const char *name;
        int hint;
    } words[] = {{"auto", TIMEFMT_AUTO}, {"seconds", TIMEFMT_SECONDS}, {"s", TIMEFMT_SECONDS},
                 {"millis", TIMEFMT_MILLIS}, {"ms", TIMEFMT_MILLIS}, {"iso", TIMEFMT_ISO}};
    for (size_t i = 0; word && i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(word, words[i].name) == 0) {
            *hint = words[i].hint;
            return LS_OK;
        }
    }
    return LS_EPARSE;
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

/* Writes at most 60 bytes of s, quoted, with control bytes as '?'. */
const char *ef_shown(char *buf, size_t cap, const char *s, size_t len)
{
    size_t n = 0, max = len > 60 ? 60 : len;
    if (cap < 8)
        return "";
    buf[n++] = '"';
    for (size_t i = 0; i < max && n + 5 < cap; i++)
        buf[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (max < len && n + 5 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

/* Reports a bad row at line: message "PATH:LINE: detail", static kind.
 * Returns EVENTFILE_BAD_ROW. */
int ef_bad_row(eventfile *f, uint64_t line, const char *kind, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(f->err, sizeof f->err, "%s:%llu: %s", f->path, (unsigned long long)line, detail);
    f->kind = kind;
    return EVENTFILE_BAD_ROW;
}

/* Records a fatal failure (sticky) and returns status. */
int ef_fatal(eventfile *f, int status, const char *fmt, ...)
{
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(f->fatal, sizeof f->fatal, "%s: %s", f->path, detail);
    f->status = status;
    return status;
}

const char *eventfile_error(const eventfile *f)
{
    return f ? f->err : "";
}

const char *eventfile_error_kind(const eventfile *f)
{
    return f && f->kind ? f->kind : "";
}

void eventfile_get_stats(const eventfile *f, eventfile_stats *out)
{
    *out = f->st;
    if (f->fd >= 0) {
        off_t at = lseek(f->fd, 0, SEEK_CUR);
        if (at > 0)
            out->bytes_read = (uint64_t)at;
    }
    if (out->bytes_total && out->bytes_read > out->bytes_total)
        out->bytes_read = out->bytes_total;
}

const char *eventfile_path(const eventfile *f)
{
    return f ? f->path : "";
}


/* ------------------------------------------------------------------ */
/* Rows: text -> checked ls_event                                       */
/* ------------------------------------------------------------------ */

int eventfile_parse_decimal(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf || strspn(s, "+-.0123456789eE") < len)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + len || errno == ERANGE || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

int eventfile_parse_whole(const char *s, size_t len, int64_t *out)
{
    double d;
    if (eventfile_parse_decimal(s, len, &d) || d != floor(d))
        return -1;
    if (fabs(d) > 9e15)
        return -2;
    *out = (int64_t)d;
    return 0;
}

static int parse_bool(const char *s, size_t len, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "y", "t"}, *const no[] = {"false", "0", "no", "n", "f"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == len && strncasecmp(yes[i], s, len) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(no[i]) == len && strncasecmp(no[i], s, len) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_type(const eventfile *f, const char *s, size_t len, event_type *out)
{
    const eventfile_types *t = &f->o.types;
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->entry[i].from) == len && memcmp(t->entry[i].from, s, len) == 0) {
            *out = t->entry[i].to;
            return 0;
        }
    }
    return event_type_parse(s, len, out) == LS_OK ? 0 : -1;
}

/* 1 when the len bytes at s are a number as timefmt_parse() reads one:
 * an optional '-', digits, optionally '.' and digits. */
static int is_time_number(const char *s, size_t len)
{
    size_t i = len && s[0] == '-', digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (digits && i + 1 < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return digits && i == len;
}

/* A ts that timefmt_parse() refused, reported as what was expected: any
 * time, or the one form --ts-format forces (a number in that form is out
 * of the years 0000-9999).  Returns EVENTFILE_BAD_ROW. */
static int bad_ts(eventfile *f, uint64_t line, const char *s, size_t len)
{
    static const struct {
        const char *form, *word;
    } forced[] = {[TIMEFMT_SECONDS] = {"Unix seconds", "seconds"},
                  [TIMEFMT_MILLIS] = {"Unix milliseconds", "millis"},
                  [TIMEFMT_ISO] = {"an ISO 8601 date", "iso"}};
    char q[80];
    int hint = f->o.ts_format;
    ef_shown(q, sizeof q, s, len);
    if (hint != TIMEFMT_SECONDS && hint != TIMEFMT_MILLIS && hint != TIMEFMT_ISO)
        return ef_bad_row(f, line, "ts is not a time", "ts %s is not a time (Unix seconds, ms or ISO 8601)", q);
    if (hint != TIMEFMT_ISO && is_time_number(s, len))
        return ef_bad_row(f, line, "ts is not a time", "ts %s is out of range as %s (--ts-format %s: years 0000-9999)", q,
                          forced[hint].form, forced[hint].word);
    return ef_bad_row(f, line, "ts is not a time", "ts %s is not %s (--ts-format %s)", q, forced[hint].form,
                      forced[hint].word);
}

/* Builds ev from f->val[] (trimmed here) and checks it.  1 or BAD_ROW. */
static int build_event(eventfile *f, ls_event *ev)
{
    char q[80];
    uint64_t line = f->row_line;
    const char **v = f->val;
    size_t *n = f->vlen;
    event_init(ev);
    for (int i = 0; i < EVENTFILE_NFIELDS; i++) {
        if (f->o.map.field[i].source == EVENTFILE_SRC_CONST) {
            v[i] = f->o.map.field[i].text;
            n[i] = strlen(v[i]);
        }
        if (v[i])
            ef_trim(&v[i], &n[i]);
        if (v[i] && n[i] == 0)
            v[i] = NULL;
    }
    /* as JSON Lines: a NUL byte is no text (and `import --connect` could
     * not send it: the client library takes C strings) */
    for (int i = 0; i < EVENTFILE_NFIELDS; i++)
        if (v[i] && memchr(v[i], '\0', n[i]))
            return ef_bad_row(f, line, "a field contains a NUL byte", "%s contains a NUL byte", field_names[i]);
    if (!v[EVENTFILE_F_CUSTOMER])
        return ef_bad_row(f, line, "customer is missing", "customer is missing or empty");
    if (!v[EVENTFILE_F_TYPE])
        return ef_bad_row(f, line, "type is missing", "type is missing or empty");
    if (!v[EVENTFILE_F_TS])
        return ef_bad_row(f, line, "ts is missing", "ts is missing or empty");
    ev->customer = (ls_str){v[EVENTFILE_F_CUSTOMER], n[EVENTFILE_F_CUSTOMER]};
    if (parse_type(f, v[EVENTFILE_F_TYPE], n[EVENTFILE_F_TYPE], &ev->type) == 0)
        f->row_type = (int)ev->type;
    else
        return ef_bad_row(f, line, "unknown event type", "type %s is not an event type%s",
                       ef_shown(q, sizeof q, v[EVENTFILE_F_TYPE], n[EVENTFILE_F_TYPE]),
                       f->o.types.n ? " after --types" : " (translate it with --types)");
    if (timefmt_parse(v[EVENTFILE_F_TS], n[EVENTFILE_F_TS], f->o.ts_format, &ev->ts_ms) != LS_OK)
        return bad_ts(f, line, v[EVENTFILE_F_TS], n[EVENTFILE_F_TS]);
    ev->has |= EVF_TS;
    static const struct {
        int field;
        size_t off;
    } strs[] = {{EVENTFILE_F_EVENT_ID, offsetof(ls_event, event_id)}, {EVENTFILE_F_SESSION, offsetof(ls_event, session)},
                {EVENTFILE_F_PRODUCT, offsetof(ls_event, product)}, {EVENTFILE_F_CATEGORY, offsetof(ls_event, category)},
                {EVENTFILE_F_ORDER_ID, offsetof(ls_event, order_id)}};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        int i = strs[k].field;
        if (v[i])
            *(ls_str *)((char *)ev + strs[k].off) = (ls_str){v[i], n[i]};
    }
    int i = EVENTFILE_F_PRICE;
    if (v[i]) {
        if (eventfile_parse_decimal(v[i], n[i], &ev->price))
            return ef_bad_row(f, line, "price is not a number", "price %s is not a number", ef_shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_PRICE;
    }
    i = EVENTFILE_F_VALUE;
    if (v[i]) {
        if (eventfile_parse_decimal(v[i], n[i], &ev->value))
            return ef_bad_row(f, line, "value is not a number", "value %s is not a number", ef_shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_VALUE;
    }
    i = EVENTFILE_F_QUANTITY;
    if (v[i]) {
        int bad = eventfile_parse_whole(v[i], n[i], &ev->quantity);
        if (bad == -2)
            return ef_bad_row(f, line, "quantity must be an integer between 1 and 1000000",
                              "quantity %s must be an integer between 1 and 1000000",
                              ef_shown(q, sizeof q, v[i], n[i]));
        if (bad)
            return ef_bad_row(f, line, "quantity is not a whole number", "quantity %s is not a whole number",
                           ef_shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_QUANTITY;
    }
    i = EVENTFILE_F_RATING;
    if (v[i]) {
        int64_t r;
        int bad = eventfile_parse_whole(v[i], n[i], &r);
        if (bad == -2 || (!bad && (r < -1000 || r > 1000)))
            return ef_bad_row(f, line, "rating must be an integer from 1 to 5",
                              "rating %s must be an integer from 1 to 5", ef_shown(q, sizeof q, v[i], n[i]));
        if (bad)
            return ef_bad_row(f, line, "rating is not a whole number", "rating %s is not a whole number",
                           ef_shown(q, sizeof q, v[i], n[i]));
        ev->rating = (int)r;
        ev->has |= EVF_RATING;
    }
    i = EVENTFILE_F_DISCOUNTED;
    if (v[i]) {
        if (parse_bool(v[i], n[i], &ev->discounted))
            return ef_bad_row(f, line, "discounted is not true or false", "discounted %s is not true or false",
                           ef_shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_DISCOUNTED;
    }
    i = EVENTFILE_F_BIRTHDAY;
    if (v[i]) {
        if (event_parse_birthday(v[i], n[i], &ev->birthday_mmdd) != LS_OK)
            return ef_bad_row(f, line, "birthday is not MM-DD", "birthday %s is not MM-DD", ef_shown(q, sizeof q, v[i], n[i]));
        ev->has |= EVF_BIRTHDAY;
    }
    return 1;
}

/* The time window, then every other rule of event_validate().
 *
 * Why not just event_validate(): its lower time bound is the service's
 * (2000-01-01) and this reader's is an option (CDNOW is 1997).  The window
 * is checked here with min_ts_ms; event_validate() then sees the time
 * clamped into its own window for that one call, so every non-time rule
 * (strings, money, quantities, ratings) still has exactly one home, event.c.
 * ts is always present here, so validate never substitutes "now" for it. */
int ef_check_event(eventfile *f, ls_event *ev, uint64_t line)
{
    char t[TIMEFMT_ISO_BUFSZ];
    if (ev->ts_ms < f->min_ts_ms) {
        if (timefmt_format_iso(ev->ts_ms, t, sizeof t) != LS_OK)
            snprintf(t, sizeof t, "%lld", (long long)ev->ts_ms);
        if (f->min_ts_ms == EVENT_MIN_TS_MS)
            return ef_bad_row(f, line, "ts is too old", "ts %s is before 2000-01-01 (%s)", t,
                              f->o.old_hint ? f->o.old_hint : "--allow-old accepts older times");
        return ef_bad_row(f, line, "ts is too old", "ts %s is before the earliest time accepted", t);
    }
    if (ev->ts_ms > f->now_ms + EVENT_MAX_FUTURE_MS) {
        if (timefmt_format_iso(ev->ts_ms, t, sizeof t) != LS_OK)
            snprintf(t, sizeof t, "%lld", (long long)ev->ts_ms);
        return ef_bad_row(f, line, "ts is in the future", "ts %s is more than one day in the future", t);
    }
    int64_t ts = ev->ts_ms;
    const char *why = NULL;
    if (ev->ts_ms < EVENT_MIN_TS_MS)
        ev->ts_ms = EVENT_MIN_TS_MS;
    int rc = event_validate(ev, f->now_ms, f->max_str, &why);
    ev->ts_ms = ts;
    if (rc != LS_OK)
        return ef_bad_row(f, line, why ? why : "invalid event", "%s", why ? why : "invalid event");
    return 1;
}

/* Reads and checks the next source row.  1, 0 at the end, BAD_ROW, < 0. */
static int read_row(eventfile *f, ls_event *ev)
{
    f->row_read = 0;
    f->row_type = -1;
    int rc = f->jsonl ? efs_jsonl_row(f) : efs_csv_row(f);
    if (rc != 1)
        return rc;
    f->row_read = 1;
    if ((rc = build_event(f, ev)) != 1)
        return rc;
    return ef_check_event(f, ev, f->row_line);
}



static int counted(eventfile *f, int rc)
{
    if (rc == EVENTFILE_BAD_ROW)
        f->st.bad_rows++;
    return rc;
}

int eventfile_finish(eventfile *f, ls_event *ev)
{
    if (!f || !ev)
        return LS_EINVAL;
    f->err[0] = '\0';
    return counted(f, eff_finish_order(f, ev));
}

int eventfile_next(eventfile *f, ls_event *ev)
{
    if (!f || !ev)
        return LS_EINVAL;
    f->kind = NULL;
    f->err[0] = '\0';
    for (;;) {
        ls_event r;
        uint64_t line;
        int rc;
        if (f->have_pending) {
            r = f->pending;
            line = f->pending_line;
            f->have_pending = 0;
            rc = 1;
        } else if (f->status || f->ended) {
            rc = f->status;
            line = 0;
        } else {
            rc = read_row(f, &r);
            line = f->row_line;
        }
        if (rc <= 0) {
            if (rc == 0)
                f->ended = 1;
            else if (f->grp.open && !f->grp.refused_line)
                f->grp.refused_line = f->grp.last_line + 1; /* the order is cut where the read broke */
            if (f->grp.open)
                return counted(f, eff_emit_order(f, ev));
            if (rc < 0)
                snprintf(f->err, sizeof f->err, "%s", f->fatal);
            return rc;
        }
        if (rc == EVENTFILE_BAD_ROW) {
            eff_note_refused_row(f, line);
            return counted(f, rc);
        }
        if (f->grp.open) {
            if (eff_continues(&f->grp, &r)) {
                eff_add_line(f, &r, line);
                continue;
            }
            f->pending = r;
            f->pending_line = line;
            f->have_pending = 1;
            return counted(f, eff_emit_order(f, ev));
        }
        if (eff_foldable(f, &r)) {
            eff_start_order(f, &r, line);
            continue;
        }
        f->event_first = f->event_last = line;
        return eff_emit_row(f, &r, ev);
    }
}

void eventfile_event_lines(const eventfile *f, uint64_t *first, uint64_t *last)
{
    *first = f ? f->event_first : 0;
    *last = f ? f->event_last : 0;
}


/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */
/* ------------------------------------------------------------------ */

int eventfile_open(eventfile **out, const char *path, const eventfile_options *opt, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out || !path)
        return ls_fail(err, errlen, LS_EINVAL, "no file given");
    *out = NULL;
    eventfile *f = calloc(1, sizeof *f);
    if (!f)
        return ls_fail(err, errlen, LS_ENOMEM, "out of memory");
    f->fd = -1;
    if (opt)
        f->o = *opt;
    else
        eventfile_options_init(&f->o);
    int rc = LS_OK;
    f->path = strdup(path);
    if (!f->path) {
        rc = ls_fail(err, errlen, LS_ENOMEM, "out of memory");
        goto leave;
    }
    if (f->o.ts_format < TIMEFMT_AUTO || f->o.ts_format > TIMEFMT_ISO || f->o.format < EVENTFILE_AUTO ||
        f->o.format > EVENTFILE_JSONL) {
        rc = ls_fail(err, errlen, LS_EINVAL, "%s: bad options", path);
        goto leave;
    }
    f->now_ms = f->o.now_ms ? f->o.now_ms : timefmt_now_ms();
    f->min_ts_ms = f->o.min_ts_ms < 1 ? 1 : f->o.min_ts_ms;
    f->max_str = f->o.max_str == 0 || f->o.max_str > EVENT_MAX_STR ? EVENT_MAX_STR : f->o.max_str;
    for (int i = 0; i < EVENTFILE_NFIELDS; i++)
        f->o.map.field[i].text[EVENT_MAX_STR] = '\0';
    for (size_t i = 0; i < f->o.types.n && i < EVENTFILE_MAX_TYPES; i++)
        f->o.types.entry[i].from[EVENTFILE_MAX_NAME - 1] = '\0';
    if (f->o.types.n > EVENTFILE_MAX_TYPES)
        f->o.types.n = EVENTFILE_MAX_TYPES;
    f->jsonl = f->o.format == EVENTFILE_JSONL || (f->o.format == EVENTFILE_AUTO && efs_looks_jsonl(path));

    if (strcmp(path, "-") == 0) {
        f->fd = STDIN_FILENO;
    } else {
        f->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0) {
            rc = ls_fail(err, errlen, errno == ENOENT ? LS_ENOTFOUND : LS_EIO, "%s: %s", path, strerror(errno));
            goto leave;
        }
        f->own_fd = 1;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) == 0 && S_ISREG(sb.st_mode))
        f->st.bytes_total = (uint64_t)sb.st_size;
    else if (f->own_fd && fstat(f->fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = ls_fail(err, errlen, LS_EIO, "%s: is a directory", path);
        goto leave;
    }
    rc = f->jsonl ? efs_open_jsonl(f, err, errlen) : efs_open_csv(f, err, errlen);
leave:
    if (rc != LS_OK) {
        eventfile_close(&f);
        return rc;
    }
    *out = f;
    return LS_OK;
}

void eventfile_close(eventfile **fp)
{
    if (!fp || !*fp)
        return;
    eventfile *f = *fp;
    csv_close(&f->csv);
    if (f->gz)
        gzclose(f->gz);
    json_decref(f->obj);
    if (f->own_fd && f->fd >= 0)
        close(f->fd);
    free(f->buf);
    free(f->line);
    free(f->occ);
    free(f->path);
    free(f);
    *fp = NULL;
}
