/* jsonout.c -- msgpack to JSON and to readable text (see jsonout.h). */
#include "jsonout.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static void json_string(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void hex(FILE *out, const char *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", (unsigned char)p[i]);
    fputc('"', out);
}

static void number(FILE *out, double v)
{
    if (!isfinite(v))
        fputs("null", out);
    else
        fprintf(out, "%.10g", v);
}

void jsonout_json(FILE *out, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", out); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", out); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(out, "%" PRIu64, o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(out, "%" PRId64, o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: number(out, o->via.f64); break;
    case MSGPACK_OBJECT_STR: json_string(out, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: hex(out, o->via.bin.ptr, o->via.bin.size); break;
    case MSGPACK_OBJECT_EXT: hex(out, o->via.ext.ptr, o->via.ext.size); break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputc(',', out);
            jsonout_json(out, &o->via.array.ptr[i]);
        }
        fputc(']', out);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i)
                fputc(',', out);
            if (k->type == MSGPACK_OBJECT_STR)
                json_string(out, k->via.str.ptr, k->via.str.size);
            else
                json_string(out, "?", 1);
            fputc(':', out);
            jsonout_json(out, &o->via.map.ptr[i].val);
        }
        fputc('}', out);
        break;
    }
}

/* Empty containers print inline, as [] and {}. */
static int is_scalar(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_MAP)
        return o->via.map.size == 0;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        return o->via.array.size == 0;
    return 1;
}

static void scalar(FILE *out, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        fprintf(out, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        fprintf(out, "%.6g", o->via.f64);
    else if (o->type == MSGPACK_OBJECT_MAP)
        fputs("{}", out);
    else if (o->type == MSGPACK_OBJECT_ARRAY)
        fputs("[]", out);
    else
        jsonout_json(out, o);
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static void readable_at(FILE *out, const msgpack_object *o, int indent, int inline_first);

/* One "key: value" entry; when pad is 0 the indentation was already written. */
static void readable_entry(FILE *out, const msgpack_object *k, const msgpack_object *v, int indent, int pad)
{
    fprintf(out, "%*s", pad ? indent : 0, "");
    scalar(out, k);
    fputc(':', out);
    if (is_scalar(v)) {
        fputc(' ', out);
        scalar(out, v);
        fputc('\n', out);
    } else {
        fputc('\n', out);
        readable_at(out, v, indent + 2, 0);
    }
}

static void readable_at(FILE *out, const msgpack_object *o, int indent, int inline_first)
{
    int first = 1;
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (indent == 0 && (key_is(k, "ok") || key_is(k, "id")))
                continue; /* the envelope of a reply, not its content */
            readable_entry(out, k, &o->via.map.ptr[i].val, indent, !(first && inline_first));
            first = 0;
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            const msgpack_object *v = &o->via.array.ptr[i];
            fprintf(out, "%*s- ", indent, "");
            if (is_scalar(v)) {
                scalar(out, v);
                fputc('\n', out);
            } else {
                readable_at(out, v, indent + 2, 1);
            }
        }
    } else {
        fprintf(out, "%*s", indent, "");
        scalar(out, o);
        fputc('\n', out);
    }
}

void jsonout_readable(FILE *out, const msgpack_object *o, int indent)
{
    readable_at(out, o, indent, 0);
}
