/* error.c -- messages and wire codes for the status table in error.h. */
#include "error_internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *ls_strerror(int status)
{
    switch (status) {
#define LS_ERROR_MSG(name, value, wire, msg) case value: return msg;
        LS_ERROR_MAP(LS_ERROR_MSG)
#undef LS_ERROR_MSG
    }
    return "unknown error";
}

const char *ls_wire_code(int status)
{
    switch (status) {
#define LS_ERROR_WIRE(name, value, wire, msg) case value: return wire;
        LS_ERROR_MAP(LS_ERROR_WIRE)
#undef LS_ERROR_WIRE
    }
    return "internal";
}

int ls_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
