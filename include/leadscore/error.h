/* error.h -- the one table of leadscore status codes.
 *
 * Every function in leadscore that can fail returns an int: 0 (LS_OK) on
 * success or one of the negative codes below.  The table is an X-macro so
 * that the enum, the wire code (as in PROTOCOL.md section 1, where one
 * exists) and the human message can never drift apart.  ls_strerror() and
 * ls_wire_code() read it; nothing else keeps a copy. */
#ifndef LEADSCORE_ERROR_H
#define LEADSCORE_ERROR_H

#include <stddef.h>

#include "leadscore/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  XX(name,            value, wire code,      message) */
#define LS_ERROR_MAP(XX)                                                      \
    XX(LS_OK,              0, "ok",            "success")                    \
    XX(LS_EBADREQ,        -1, "bad_request",   "malformed request")          \
    XX(LS_EUNKNOWNOP,     -2, "unknown_op",    "unknown operation")          \
    XX(LS_ETOOLARGE,      -3, "too_large",     "request exceeds a size limit") \
    XX(LS_EUNAUTH,        -4, "unauthorized",  "not allowed for this client") \
    XX(LS_EUNAVAIL,       -5, "unavailable",   "service unavailable")        \
    XX(LS_EINTERNAL,      -6, "internal",      "internal error")             \
    XX(LS_ENOMEM,         -7, "internal",      "out of memory")              \
    XX(LS_EIO,            -8, "internal",      "input/output error")         \
    XX(LS_EINVAL,         -9, "bad_request",   "invalid argument")           \
    XX(LS_ENOTFOUND,     -10, "bad_request",   "not found")                  \
    XX(LS_ETIMEOUT,      -11, "unavailable",   "timed out")                  \
    XX(LS_EPARSE,        -12, "bad_request",   "parse error")                \
    XX(LS_ECONVERGE,     -13, "internal",      "numerical method did not converge") \
    XX(LS_EVERSION,      -14, "unavailable",   "incompatible version")       \
    XX(LS_EFULL,         -15, "unavailable",   "store is full")              \
    XX(LS_EREMOTE,       -16, "internal",      "the server answered with an error")

typedef enum {
#define LS_ERROR_ENUM(name, value, wire, msg) name = value,
    LS_ERROR_MAP(LS_ERROR_ENUM)
#undef LS_ERROR_ENUM
} ls_status;

/* Human-readable message for a status code; never NULL, static storage. */
LS_API const char *ls_strerror(int status);

/* Wire error code (PROTOCOL.md section 1) for a status; never NULL. */
LS_API const char *ls_wire_code(int status);

#ifdef __cplusplus
}
#endif
#endif
