/* error_internal.h -- the engine's error helpers that are not part of the
 * public API (include/leadscore/error.h holds the status table, which is). */
#ifndef LEADSCORE_ERROR_INTERNAL_H
#define LEADSCORE_ERROR_INTERNAL_H

#include <stddef.h>

#include "leadscore/error.h"

/* Formats a message for a person into err (when err is not NULL) and
 * returns status, so a failure path reads `return ls_fail(err, n, LS_EPARSE, "...", ...)`. */
int ls_fail(char *err, size_t errlen, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
