/* jsonout.h -- printing msgpack replies for people and for machines: JSON
 * (for --json) and an indented "key: value" form (the default on the
 * command line). */
#ifndef LS_JSONOUT_H
#define LS_JSONOUT_H

#include <msgpack.h>
#include <stdio.h>

/* Writes o as one line of JSON (binary and extension values as strings
 * of hex, non-finite floats as null). */
void jsonout_json(FILE *out, const msgpack_object *o);

/* Writes o as indented "key: value" lines; at the top level the reply
 * envelope keys "ok" and "id" are left out. */
void jsonout_readable(FILE *out, const msgpack_object *o, int indent);

#endif
