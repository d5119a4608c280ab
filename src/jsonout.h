/* jsonout.h -- printing replies for people and for machines: JSON (for
 * --json, `kpis --json`, `rescore --format jsonl`) and an indented
 * "key: value" form (the default on the command line).
 *
 * All JSON goes through jansson, so it is always well-formed:
 *   - strings: invalid UTF-8 never reaches the output.  Each byte that does
 *     not start a valid UTF-8 sequence (overlong forms, surrogates, code
 *     points past U+10FFFF, truncated sequences, stray continuation bytes)
 *     becomes U+FFFD, one U+FFFD per bad byte, so the result is the same for
 *     the same bytes.  Control characters are escaped (\n, \t, \u0001, ...);
 *     NUL bytes are kept as \u0000.
 *   - numbers: doubles with 17 significant digits (JSONOUT_FLAGS), so that
 *     a reader gets the very same double back; integers exactly; NaN and
 *     infinities as null.
 *   - msgpack binary and extension values as strings of hex; a map key that
 *     is not a string as its JSON text ("1", "true", ...). */
#ifndef LS_JSONOUT_H
#define LS_JSONOUT_H

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>

/* json_dumps flags for every JSON line leadscore prints: compact, keys in
 * insertion order, doubles to 17 significant digits (they round-trip). */
#define JSONOUT_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0 when the
 * byte at s starts none. */
size_t jsonout_utf8_len(const unsigned char *s, size_t n);

/* A JSON string from n bytes (a NULL s with n == 0 gives ""), invalid UTF-8
 * replaced as above.  New reference, NULL only when out of memory. */
json_t *jsonout_string(const char *s, size_t n);

/* Sets the JSON string str to n bytes of s, cleaned the same way (to reuse
 * one json_t for many strings).  0 or -1. */
int jsonout_string_set(json_t *str, const char *s, size_t n);

/* Room for jsonout_real_text()'s output and its NUL. */
#define JSONOUT_REAL_MAX 32

/* Writes v as jansson writes it with JSONOUT_FLAGS (byte for byte: the
 * %.17g digits, ".0" added to a whole number) without printf, for
 * 1e-4 <= |v| < 1e10, and returns the length; 0 (nothing written) for
 * any other value, which the caller then gives to jansson.  For the hot
 * loop of `rescore --format jsonl`; tests compare it with jansson. */
size_t jsonout_real_text(char out[JSONOUT_REAL_MAX], double v);

/* A JSON number for v, or null when v is not finite.  New reference. */
json_t *jsonout_real(double v);

/* Sets obj[key] = value (stealing value), the key cleaned like a string. */
int jsonout_set(json_t *obj, const char *key, size_t key_len, json_t *value);

/* The msgpack object as JSON.  New reference, NULL only when out of memory. */
json_t *jsonout_from_msgpack(const msgpack_object *o);

/* Writes j as one line of JSON (no newline) with JSONOUT_FLAGS.  0 or -1. */
int jsonout_dump(FILE *out, const json_t *j);

/* Writes o as one line of JSON (no newline).  0 or -1. */
int jsonout_json(FILE *out, const msgpack_object *o);

/* Writes o as indented "key: value" lines; at the top level the reply
 * envelope keys "ok" and "id" are left out. */
void jsonout_readable(FILE *out, const msgpack_object *o, int indent);

#endif
