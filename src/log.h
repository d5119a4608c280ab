/* log.h -- the service's log: one line per event on stderr, in logfmt
 * (time=… level=… event=… key=value …), so journald, Loki or grep can read
 * it.  Only the server side logs (server.c, writer.c, cmd_serve.c); the
 * library-like modules return status codes instead.
 *
 *     LOG_INFO("listening", "endpoint=%s", ep);
 *
 * The level is set once at start-up (--log-level); lines below it cost one
 * comparison.  Nothing is logged per request at the default level: slow
 * requests are, past --slow-ms. */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

/* Sets the level (at start-up, before threads start). */
void log_set_level(log_level level);
log_level log_get_level(void);

/* "error", "warn", "info" or "debug".  0 or LS_EINVAL. */
int log_parse_level(const char *name, log_level *out);

/* Writes one line: time, level, event, then the formatted key=value text.
 *
 * Escaping (logfmt): every %s argument is escaped, so a value can never
 * break the line or forge a key.  Inside a quoted value of the format
 * (key="%s") the argument's '"' and '\\' get a backslash, newline, CR and tab
 * become \n, \r, \t and other control bytes (0x00-0x1f, 0x7f) \u00XX.  A
 * bare %s (key=%s) is written as is when it is a plain token, else quoted
 * and escaped the same way (empty, or holding a space, '=', '"', '\\' or a
 * control byte).  `%.*s` takes exactly that many bytes (a customer id may
 * hold a NUL, shown as \u0000); `%.Ns` stops at a NUL, as printf's.
 * Numbers and the format's own text are written as is.  A
 * line longer than LOG_LINE_MAX is cut, its open quote closed, and ends
 * with truncated=true. */
void log_write(log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Longest line written, bytes (without the newline). */
#define LOG_LINE_MAX 2047

/* The key=value text log_write writes after time, level and event: fmt and
 * its arguments, escaped as above, into buf (cap > 32 bytes, always
 * NUL-terminated).  Returns the length.  Exposed for tests. */
size_t log_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t log_format(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_AT(level, event, ...)                 \
    do {                                          \
        if ((level) <= log_get_level())           \
            log_write(level, event, __VA_ARGS__); \
    } while (0)
#define LOG_ERROR(event, ...) LOG_AT(LOG_LEVEL_ERROR, event, __VA_ARGS__)
#define LOG_WARN(event, ...) LOG_AT(LOG_LEVEL_WARN, event, __VA_ARGS__)
#define LOG_INFO(event, ...) LOG_AT(LOG_LEVEL_INFO, event, __VA_ARGS__)
#define LOG_DEBUG(event, ...) LOG_AT(LOG_LEVEL_DEBUG, event, __VA_ARGS__)

#endif
