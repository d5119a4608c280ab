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

typedef enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

/* Sets the level (at start-up, before threads start). */
void log_set_level(log_level level);
log_level log_get_level(void);

/* "error", "warn", "info" or "debug".  0 or LS_EINVAL. */
int log_parse_level(const char *name, log_level *out);

/* Writes one line: time, level, event, then the formatted key=value text.
 * Values with spaces must be quoted by the caller (%s inside "…"). */
void log_write(log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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
