/* testutil.h -- what the test suites share: temporary directories, a
 * server running in-process on ephemeral loopback ports, the real
 * `leadscore` binary started as a child process, and raw msgpack requests.
 * Every wait here is bounded in time. */
#ifndef LS_TESTUTIL_H
#define LS_TESTUTIL_H

#include <check.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "feature.h"
#include "store.h"
#include "server.h"

/* A fresh directory under $TMPDIR (or /tmp); path written into buf. */
void tu_tempdir(char *buf, size_t cap);
/* rm -rf of a directory made by tu_tempdir. */
void tu_rmtree(const char *path);

/* A config for tests: data in dir, both endpoints on 127.0.0.1:*. */
void tu_config(config *cfg, const char *dir);

typedef struct {
    server *srv;
    pthread_t thread;
    char dir[512];
    char endpoint[256];
    char pull_endpoint[256];
    int own_dir;
} tu_server;

/* Starts a server in a thread on cfg (or tu_config defaults over a new
 * temporary directory when cfg is NULL). */
void tu_server_start(tu_server *ts, const config *cfg);
/* Asks it to stop, waits for the drain, removes its directory if owned. */
void tu_server_stop(tu_server *ts);

/* Starts `leadscore serve --data dir` with ephemeral endpoints as a child
 * process, waits (<= 20 s) until it prints its request endpoint, and
 * returns the pid.  extra is NULL or a NULL-terminated list of options. */
pid_t tu_spawn_serve(const char *dir, char *endpoint, size_t cap, const char *const *extra);
/* Sends sig to pid and waits (<= 20 s) for it; returns the wait status. */
int tu_kill_wait(pid_t pid, int sig);

/* Runs the leadscore binary with args (NULL-terminated, without argv[0]),
 * capturing stdout+stderr into out (NUL-terminated, truncated to cap).
 * Returns the exit status, or -1. */
int tu_run_cli(char *out, size_t cap, const char *const *args);

/* The same with standard output on fd (and SIGPIPE at its default, as from
 * a shell) and standard error into err. */
int tu_run_cli_output_to(int fd, char *err, size_t cap, const char *const *args);

/* The same with stdout into o and stderr into e (each NUL-terminated,
 * truncated to its cap). */
int tu_run_cli_split(char *o, size_t ocap, char *e, size_t ecap, const char *const *args);

/* A service with only a store (16 MiB map, no sync) in dir, with the
 * given half-lives and fresh stats: enough for writer_apply().  Close it
 * with tu_writer_rig_close. */
struct service;
void tu_writer_rig_open(struct service *svc, const char *dir, const feature_decay *decay);
void tu_writer_rig_close(struct service *svc);

/* Page views of the record id (len bytes) lands on, through its alias, in
 * a fresh snapshot of s; -1 when the store has none. */
int tu_store_page_views(store *s, const char *id, size_t len);

/* Runs argv (argv[0] found on PATH) with stdin from /dev/null, stdout into
 * o and stderr into e (each NUL-terminated, cut at its cap); returns the
 * exit status, or -1.  No assertions: an unchecked fixture may use it. */
int tu_run_program_split(char *o, size_t ocap, char *e, size_t ecap, const char *const *argv);

/* A DEALER connection that sends raw frames and receives replies. */
typedef struct {
    void *ctx;
    void *sock;
} tu_conn;

void tu_connect(tu_conn *c, const char *endpoint, int type);
void tu_disconnect(tu_conn *c);
/* Sends body (one frame after the empty delimiter) and receives the reply
 * body into up (<= 10 s).  Returns 0, or -1 on timeout. */
int tu_call_raw(tu_conn *c, const void *body, size_t len, msgpack_unpacked *up);

/* Packs a request from a printf-like spec is overkill; tests build maps with
 * these helpers on an sbuffer-backed packer. */
void tu_pack_str(msgpack_packer *pk, const char *s);
/* A `track` request of one event {customer, type} into sb (initialised
 * here: destroy it after use). */
void tu_pack_track(msgpack_sbuffer *sb, const char *customer, const char *type);

/* Value at key in a reply map, or NULL. */
const msgpack_object *tu_get(const msgpack_object *map, const char *key);
/* Asserting readers. */
int tu_get_bool(const msgpack_object *map, const char *key);
int64_t tu_get_int(const msgpack_object *map, const char *key);
double tu_get_double(const msgpack_object *map, const char *key);
/* 1 when the reply is {"ok": false, "error": {"code": code, ...}}. */
int tu_is_error(const msgpack_object *map, const char *code);

/* The public data sets (../shared/data, see its README): the first of
 * $LEADSCORE_DATA_DIR, the compiled LS_SHARED_DATA_DIR and /work/shared/data
 * that holds cdnow/.  Fails the test, naming where it looked, when none
 * does: a data test never passes by skipping. */
const char *tu_data_dir(void);

/* Monotonic milliseconds, for bounding waits. */
int64_t tu_now_ms(void);

/* Encodes f as a version-3 feature record (every field at its full
 * width; see the history in feature.h); returns its length.  buf holds
 * FEATURE_MAX_ENCODED bytes. */
size_t tu_encode_v3_record(const ls_features *f, uint8_t *buf);

/* Encodes f as a version-2 feature record would have stored it (no cart
 * item counts, none of the version-3 fields after good_reviews); returns
 * its length.  buf holds FEATURE_MAX_ENCODED bytes. */
size_t tu_encode_v2_record(const ls_features *f, uint8_t *buf);

/* Customers of s whose history holds at least one event (one snapshot). */
uint64_t tu_customers_with_history(store *s);

/* xorshift64*: a small generator for property tests, from a fixed seed
 * so that a failure repeats (*state must not be 0). */
uint64_t tu_rng_next(uint64_t *state);

/* Runs the suite (CK_NORMAL) and returns the process exit status. */
int tu_run_suite(Suite *s);

#endif
