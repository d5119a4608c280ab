/* log.c -- logfmt lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

/* The process's log level: written once at start-up, read everywhere. */
static atomic_int current = LOG_LEVEL_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level level) { atomic_store(&current, (int)level); }
log_level log_get_level(void) { return (log_level)atomic_load_explicit(&current, memory_order_relaxed); }

int log_parse_level(const char *name, log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (log_level)i;
            return LS_OK;
        }
    return LS_EINVAL;
}

void log_write(log_level level, const char *event, const char *fmt, ...)
{
    char when[32], line[2048];
    va_list ap;
    timefmt_format_iso(timefmt_now_ms(), when, sizeof when);
    int n = snprintf(line, sizeof line, "time=%s level=%s event=%s ", when, names[level], event);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line: lines of threads do not interleave */
}
