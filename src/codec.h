/* codec.h -- msgpack in and out: request parsing, event decoding and the
 * reply writer.
 *
 * Parsing is two steps.  codec_prescan() walks the raw bytes first, with no
 * allocation, and refuses anything whose declared sizes cannot fit in the
 * frame or that nests deeper than a limit: a 5-byte frame cannot make us
 * allocate a 4-billion-element array.  Only then does msgpack-c unpack it
 * into a zone owned by the caller.  Strings in decoded objects point into
 * the request buffer, which must outlive them.
 *
 * Replies are written with codec_writer: containers are opened, filled and
 * closed, and their element counts are patched in at the end (map16 /
 * array32 headers), so no handler has to count its fields. */
#ifndef LS_CODEC_H
#define LS_CODEC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define CODEC_MAX_DEPTH 16

/* Checks that buf holds exactly one well-formed msgpack value whose sizes
 * fit and whose nesting is at most max_depth.  Returns 0 or LS_EBADREQ
 * with a static reason in *why. */
int codec_prescan(const char *buf, size_t len, int max_depth, const char **why);

/* A parsed request: the root map, the op name and the echoed id. */
typedef struct {
    msgpack_object root;
    ls_str op;
    const msgpack_object *id; /* NULL when the request has none */
} codec_request;

/* Prescans and unpacks buf into zone.  The root must be a map with string
 * keys and a string "op".  Returns 0, or LS_EBADREQ with *why; even on
 * failure req->id is set when the map carried one, so the error reply can
 * echo it. */
int codec_parse_request(const char *buf, size_t len, msgpack_zone *zone, codec_request *req,
                        const char **why);

/* Value at key in a map object, or NULL. */
const msgpack_object *codec_map_get(const msgpack_object *map, const char *key);

/* The first key of map not listed in allowed (NULL-terminated), or NULL. */
const msgpack_object *codec_unknown_key(const msgpack_object *map, const char *const *allowed);

/* Typed field readers.  Each returns 0 and sets *out when the key holds
 * the type, LS_ENOTFOUND when the key is absent, LS_EBADREQ when it holds
 * something else. */
int codec_get_str(const msgpack_object *map, const char *key, ls_str *out);
int codec_get_int(const msgpack_object *map, const char *key, int64_t *out);
int codec_get_bool(const msgpack_object *map, const char *key, int *out);

/* Decodes one event map into ev (not yet validated: see event_validate).
 * Unknown fields and ill-typed values are LS_EBADREQ with a reason in why
 * (written into why_buf, of capacity why_cap). */
int codec_decode_event(const msgpack_object *obj, ls_event *ev, char *why_buf, size_t why_cap);

/* ---- the reply writer ----
 *
 * The reply is written straight into sb (a msgpack_sbuffer, so that
 * callers keep reading sb.data / sb.size and msgpack_sbuffer_destroy
 * still frees it): each token reserves its few bytes once and stores
 * them, with no per-token call through msgpack_packer's write function.
 * The bytes are those msgpack_pack_* would write (the smallest int and
 * str headers, float64 for every double), except the patched container
 * headers (map16 / array32).  The memory grows by doubling and is kept
 * across codec_writer_reset.  If it cannot grow, the writer stops writing
 * (oom is set) and the reply is short; callers do not check. */

typedef struct {
    size_t offset;  /* where the header was reserved */
    uint32_t count;
    int is_map;
} codec_frame;

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;  /* writes into sb; used only by cw_object */
    int depth;
    int oom;            /* a grow failed: later tokens were dropped */
    codec_frame stack[CODEC_MAX_DEPTH];
} codec_writer;

void codec_writer_init(codec_writer *w);
void codec_writer_destroy(codec_writer *w);
/* Empties the buffer, keeping its memory, for the next reply. */
void codec_writer_reset(codec_writer *w);
/* Grows the buffer so that n more bytes fit without another allocation
 * (a reply's usual size, reserved once).  0, or -1 (oom set). */
int codec_writer_reserve(codec_writer *w, size_t n);

void cw_map(codec_writer *w);
void cw_array(codec_writer *w);
void cw_end(codec_writer *w);
void cw_key(codec_writer *w, const char *key);
/* A key of known length (no strlen): cw_keyn(w, "score", 5). */
void cw_keyn(codec_writer *w, const char *key, size_t len);
void cw_str(codec_writer *w, const char *s);
void cw_strn(codec_writer *w, const char *s, size_t len);
void cw_int(codec_writer *w, int64_t v);
void cw_double(codec_writer *w, double v);
void cw_bool(codec_writer *w, int v);
void cw_nil(codec_writer *w);
void cw_object(codec_writer *w, const msgpack_object *o);
/* Appends len bytes of ready-made msgpack that hold nvalues values. */
void cw_raw(codec_writer *w, const void *bytes, size_t len, uint32_t nvalues);

/* A string literal as a key: its length is known at compile time. */
#define CW_KEY(w, lit) cw_keyn((w), "" lit, sizeof(lit) - 1)

/* Writes a complete error reply {"ok":false,"id":…,"error":{code,message}}. */
void codec_error_reply(codec_writer *w, const msgpack_object *id, int status, const char *message);

#endif
