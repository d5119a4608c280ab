/* test_audience_cli.c -- `leadscore audience` and `leadscore triggers` as a
 * user types them, against real servers on 127.0.0.1 ephemeral ports and
 * stores in temporary directories: add / list / rm / export through a
 * service (--connect) and offline (--data), a bad rule refused with its
 * column, export's CSV and JSON Lines byte for byte for a known set of
 * customers (one id needing CSV quotes), written atomically; ids holding a
 * NUL across a page boundary; a write failing midway (a full disk, a pipe
 * nobody reads) explained, exit 1; triggers printed as JSON lines (--from
 * exclusive, --limit, --data equal to --connect; a pipe nobody reads exit
 * 1), and `triggers --follow` as a child process: it prints a
 * trigger fired after it started, rides out a restart of the service, and
 * exits 0 on SIGTERM and SIGINT.  Every wait is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "testutil.h"
#include "timefmt.h"

#define HANDSET LS_SOURCE_DIR "/models/handset.json" /* the model tu_spawn_serve serves with */

static char out[1 << 16], err[1 << 16];

/* Runs the binary with args; stdout and stderr into out and err. */
static int run(const char *const *args)
{
    return tu_run_cli_split(out, sizeof out, err, sizeof err, args);
}

static void read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* How many entries directory dir holds (besides . and ..). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Runs the binary with args as a child, its stdout on fd (or, when fd is
 * -1, on a pipe read here into out: at most sizeof out - 1 bytes, their
 * count in *len) and its stderr into err (through a file in dir).  Waits at
 * most ms, then kills it (SIGKILL), as it kills a child that writes more
 * than out holds.  Returns the wait status. */
static int run_bounded(const char *dir, const char *const *args, int fd, int ms, size_t *len)
{
    char err_path[600];
    const char *argv[32] = {LEADSCORE_BIN};
    int n = 1, p[2] = {-1, -1};
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(err_path, sizeof err_path, "%s/bounded.err", dir);
    if (fd < 0) {
        ck_assert_int_eq(pipe(p), 0);
        fd = p[1];
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, 1);
        if (p[0] >= 0)
            close(p[0]);
        if (!freopen(err_path, "w", stderr))
            _exit(126);
        execv(LEADSCORE_BIN, (char *const *)argv);
        _exit(127);
    }
    int64_t deadline = tu_now_ms() + ms;
    size_t got = 0;
    if (p[0] >= 0) {
        close(p[1]);
        for (int64_t left; got < sizeof out - 1 && (left = deadline - tu_now_ms()) > 0;) {
            struct pollfd pf = {p[0], POLLIN, 0};
            if (poll(&pf, 1, (int)left) <= 0)
                continue;
            ssize_t r = read(p[0], out + got, sizeof out - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(p[0]);
    }
    out[got] = '\0';
    if (len)
        *len = got;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (tu_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    read_file(err_path, err, sizeof err);
    return status;
}

/* A pipe nobody reads: its write end (the read end is closed). */
static int closed_pipe(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    return p[1];
}

/* 1 when status is exit 1 and err explains it with text. */
static int failed_with(int status, const char *text)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(err, text) != NULL;
}

/* The customers of every test: three buyers (one id needs CSV quotes) and
 * a visitor who never bought. */
static const char *const buyers_sorted[] = {"b,2\"q", "b1", "b3"};
#define CSV_WANT "customer\n\"b,2\"\"q\"\nb1\nb3\n"
#define JSONL_WANT "{\"customer\":\"b,2\\\"q\"}\n{\"customer\":\"b1\"}\n{\"customer\":\"b3\"}\n"

static void track_customers(const char *ep)
{
    for (int i = 0; i < 3; i++) {
        char order[32];
        snprintf(order, sizeof order, "order_id=o-%d", i);
        const char *buy[] = {"track", "--connect", ep, buyers_sorted[i], "purchase", "value=25", order, NULL};
        ck_assert_msg(run(buy) == 0, "track: %s", err);
    }
    const char *view[] = {"track", "--connect", ep, "v1", "product_view", "category=books", NULL};
    ck_assert_int_eq(run(view), 0);
}

/* The audience name of `audience list --json`'s output, or NULL; asserts
 * the output is one line of strict JSON with ok true. */
static json_t *listed(json_t **all, const char *name)
{
    json_error_t jerr;
    *all = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(*all != NULL, "not JSON (%s): %s", jerr.text, out);
    ck_assert(json_is_true(json_object_get(*all, "ok")));
    json_t *arr = json_object_get(*all, "audiences");
    ck_assert(json_is_array(arr));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *a = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(a, "name")), name) == 0)
            return a;
    }
    return NULL;
}

/* Waits (<= 15 s) until audience name is ready; returns its member count. */
static int64_t wait_ready(const char *ep, const char *name)
{
    const char *list[] = {"audience", "list", "--connect", ep, "--json", NULL};
    int64_t deadline = tu_now_ms() + 15000;
    for (;;) {
        ck_assert_msg(run(list) == 0, "audience list: %s", err);
        json_t *all, *a = listed(&all, name);
        if (a && json_is_true(json_object_get(a, "ready"))) {
            int64_t n = json_integer_value(json_object_get(a, "members"));
            json_decref(all);
            return n;
        }
        json_decref(all);
        ck_assert_msg(tu_now_ms() < deadline, "audience %s not ready within 15 s", name);
        usleep(100000);
    }
}

/* ------------------------------------------------------------------ */
/* audience                                                            */
/* ------------------------------------------------------------------ */

START_TEST(audience_through_a_service)
{
    static char file[1 << 12];
    char dir[512], outdir[600], path[700], nodir[700], ep[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(outdir, sizeof outdir, "%s/exports", dir);
    ck_assert_int_eq(mkdir(outdir, 0700), 0);
    snprintf(path, sizeof path, "%s/buyers.jsonl", outdir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.csv", dir);
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    ck_assert_int_eq(mkdir(data, 0700), 0);
    const char *extra[] = {"--audience-refresh", "1s", NULL};
    pid_t pid = tu_spawn_serve(data, ep, sizeof ep, extra);
    track_customers(ep);

    const char *add[] = {"audience", "add", "--connect", ep, "buyers", "purchase_count  >=  1", NULL};
    ck_assert_msg(run(add) == 0, "%s", err);
    /* the service answers once the first pass is done (a small store): members exact at once */
    ck_assert_str_eq(out, "audience buyers created: 3 members (rule: purchase_count >= 1)\n");
    ck_assert_int_eq(wait_ready(ep, "buyers"), 3);
    ck_assert_int_eq(run(add), 0); /* the same rule, canonically */
    ck_assert_ptr_nonnull(strstr(out, "audience buyers unchanged"));
    const char *add_json[] = {"audience", "add", "--connect", ep, "buyers", "purchase_count >= 1", "--json", NULL};
    ck_assert_int_eq(run(add_json), 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"created\":false,\"changed\":false,\"ready\":true}\n");

    /* a bad rule: exit 1, the column of the mistake; nothing defined */
    const char *bad[] = {"audience", "add", "--connect", ep, "bad", "purchase_count >>= 1", NULL};
    ck_assert_int_eq(run(bad), 1);
    ck_assert_msg(strstr(err, "leadscore audience: ") && strstr(err, "bad rule") && strstr(err, "column 17"), "%s",
                  err);
    ck_assert_str_eq(out, "");
    const char *unknown_field[] = {"audience", "add", "--connect", ep, "bad", "purchase_cont >= 1", NULL};
    ck_assert_int_eq(run(unknown_field), 1);
    ck_assert_ptr_nonnull(strstr(err, "unknown field \"purchase_cont\" at column 1"));
    const char *bad_name[] = {"audience", "add", "--connect", ep, "no spaces", "score > 0", NULL};
    ck_assert_int_eq(run(bad_name), 1);

    /* without --connect: $LEADSCORE_CONNECT */
    const char *list_env[] = {"audience", "list", NULL};
    setenv("LEADSCORE_CONNECT", ep, 1);
    ck_assert_int_eq(run(list_env), 0);
    unsetenv("LEADSCORE_CONNECT");
    ck_assert_ptr_nonnull(strstr(out, "buyers"));

    /* list: the table and the JSON */
    const char *list[] = {"audience", "list", "--connect", ep, NULL};
    ck_assert_int_eq(run(list), 0);
    ck_assert_ptr_nonnull(strstr(out, "NAME"));
    ck_assert_ptr_nonnull(strstr(out, "purchase_count >= 1"));
    const char *list_json[] = {"audience", "list", "--connect", ep, "--json", NULL};
    ck_assert_int_eq(run(list_json), 0);
    json_t *all, *a = listed(&all, "buyers");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(json_array_size(json_object_get(all, "audiences")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(a, "rule")), "purchase_count >= 1");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "members")), 3);
    ck_assert(json_integer_value(json_object_get(a, "created")) > 1700000000000LL);
    ck_assert_int_eq(json_object_size(a), 5);
    json_decref(all);

    /* export: CSV to stdout, JSON Lines to a file, both exact */
    const char *csv[] = {"audience", "export", "--connect", ep, "buyers", NULL};
    ck_assert_int_eq(run(csv), 0);
    ck_assert_str_eq(out, CSV_WANT);
    ck_assert_ptr_nonnull(strstr(err, "exported 3 members of audience buyers"));
    FILE *f = fopen(path, "w"); /* an older file is replaced whole */
    fputs("stale contents that are longer than the export itself ....................................\n", f);
    fclose(f);
    const char *jsonl[] = {"audience", "export", "--connect", ep, "buyers", "--format", "jsonl", "--out", path, NULL};
    ck_assert_int_eq(run(jsonl), 0);
    ck_assert_str_eq(out, "");
    read_file(path, file, sizeof file);
    ck_assert_str_eq(file, JSONL_WANT);
    ck_assert_int_eq(entries(outdir), 1); /* no temporary file left */
    ck_assert_msg(strstr(err, "exported 3 members of audience buyers to ") != NULL, "%s", err);

    /* failures: nothing on stdout, no file */
    const char *nope[] = {"audience", "export", "--connect", ep, "nope", NULL};
    ck_assert_int_eq(run(nope), 1);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "no audience named \"nope\""));
    const char *nope_file[] = {"audience", "export", "--connect", ep, "nope", "--out", path, NULL};
    ck_assert_int_eq(run(nope_file), 1);
    read_file(path, file, sizeof file);
    ck_assert_str_eq(file, JSONL_WANT); /* the old file is left alone */
    ck_assert_int_eq(entries(outdir), 1);
    const char *no_dir[] = {"audience", "export", "--connect", ep, "buyers", "--out", nodir, NULL};
    ck_assert_int_eq(run(no_dir), 1);
    ck_assert_ptr_nonnull(strstr(err, "cannot write"));

    /* rm, then rm again (exit 1), and the list is empty */
    const char *rm[] = {"audience", "rm", "--connect", ep, "buyers", NULL};
    ck_assert_int_eq(run(rm), 0);
    ck_assert_str_eq(out, "audience buyers deleted\n");
    ck_assert_int_eq(run(rm), 1);
    ck_assert_ptr_nonnull(strstr(err, "no audience named \"buyers\""));
    ck_assert_int_eq(run(list_json), 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"audiences\":[]}\n");
    ck_assert_int_eq(run(list), 0);
    ck_assert_str_eq(out, "no audiences\n");

    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* no service: a clear failure */
    const char *gone[] = {"audience", "list", "--connect", ep, "--timeout", "300", NULL};
    ck_assert_int_eq(run(gone), 1);
    ck_assert_ptr_nonnull(strstr(err, "is `leadscore serve` running there?"));
    tu_rmtree(dir);
}
END_TEST

START_TEST(audience_offline)
{
    static char via_data[1 << 16];
    char dir[512], data[600], events[700], ep[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    FILE *f = fopen(events, "w");
    fputs("{\"customer\":\"b1\",\"type\":\"purchase\",\"value\":25,\"order_id\":\"o-1\",\"ts\":\"2026-01-05T10:00:00Z\"}\n"
          "{\"customer\":\"b,2\\\"q\",\"type\":\"purchase\",\"value\":25,\"order_id\":\"o-2\",\"ts\":\"2026-01-06T10:00:00Z\"}\n"
          "{\"customer\":\"b3\",\"type\":\"purchase\",\"value\":25,\"order_id\":\"o-3\",\"ts\":\"2026-01-07T10:00:00Z\"}\n"
          "{\"customer\":\"v1\",\"type\":\"product_view\",\"category\":\"books\",\"ts\":\"2026-01-07T11:00:00Z\"}\n",
          f);
    fclose(f);
    const char *imp[] = {"import", "--data", data, "--no-sync", "--quiet", events, NULL};
    ck_assert_msg(run(imp) == 0, "%s", err);

    /* add: the first pass runs here, so the audience is ready at once */
    const char *add[] = {"audience", "add", "--data", data, "--model", HANDSET, "buyers", "purchase_count >= 1", NULL};
    ck_assert_msg(run(add) == 0, "%s", err);
    ck_assert_str_eq(out, "audience buyers created: 3 members (rule: purchase_count >= 1)\n");
    const char *add_json[] = {"audience", "add", "--data", data, "--model", HANDSET, "--json", "buyers",
                              "purchase_count >= 1", NULL};
    ck_assert_int_eq(run(add_json), 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"created\":false,\"changed\":false,\"ready\":true}\n");
    const char *bad[] = {"audience", "add", "--data", data, "--model", HANDSET, "bad", "purchase_count >= ", NULL};
    ck_assert_int_eq(run(bad), 1);
    ck_assert_msg(strstr(err, "leadscore audience: bad rule: at column 19") != NULL, "%s", err);
    const char *view[] = {"audience", "add", "--data", data, "--model", HANDSET, "viewers", "product_view_count >= 1", NULL};
    ck_assert_int_eq(run(view), 0);
    ck_assert_str_eq(out, "audience viewers created: 1 member (rule: product_view_count >= 1)\n");

    const char *list_json[] = {"audience", "list", "--data", data, "--json", NULL};
    ck_assert_int_eq(run(list_json), 0);
    json_t *all, *a = listed(&all, "buyers");
    ck_assert_ptr_nonnull(a);
    ck_assert(json_is_true(json_object_get(a, "ready")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "members")), 3);
    ck_assert_int_eq(json_array_size(json_object_get(all, "audiences")), 2); /* buyers, viewers; not bad */
    json_decref(all);

    const char *csv[] = {"audience", "export", "--data", data, "buyers", NULL};
    ck_assert_int_eq(run(csv), 0);
    ck_assert_str_eq(out, CSV_WANT);
    const char *jsonl[] = {"audience", "export", "--data", data, "buyers", "--format", "jsonl", NULL};
    ck_assert_int_eq(run(jsonl), 0);
    ck_assert_str_eq(out, JSONL_WANT);
    snprintf(via_data, sizeof via_data, "%s", out);

    /* a service on the store: writes need it (--connect), reads do not */
    const char *extra[] = {"--audience-refresh", "1s", NULL};
    pid_t pid = tu_spawn_serve(data, ep, sizeof ep, extra);
    const char *locked[] = {"audience", "add", "--data", data, "--model", HANDSET, "more", "score >= 0", NULL};
    ck_assert_int_eq(run(locked), 1);
    ck_assert_msg(strstr(err, "already open for writing") && strstr(err, "use --connect EP"), "%s", err);
    const char *rm_locked[] = {"audience", "rm", "--data", data, "buyers", NULL};
    ck_assert_int_eq(run(rm_locked), 1);
    ck_assert_int_eq(run(jsonl), 0);
    ck_assert_str_eq(out, JSONL_WANT);
    const char *jsonl_connect[] = {"audience", "export", "--connect", ep, "buyers", "--format", "jsonl", NULL};
    ck_assert_int_eq(run(jsonl_connect), 0);
    ck_assert_str_eq(out, via_data); /* the service serves what was defined offline */
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    const char *rm[] = {"audience", "rm", "--data", data, "buyers", NULL};
    ck_assert_int_eq(run(rm), 0);
    ck_assert_str_eq(out, "audience buyers deleted\n");
    ck_assert_int_eq(run(rm), 1);
    ck_assert_ptr_nonnull(strstr(err, "no audience named \"buyers\""));
    const char *export_gone[] = {"audience", "export", "--data", data, "buyers", NULL};
    ck_assert_int_eq(run(export_gone), 1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(run(list_json), 0);
    ck_assert_ptr_null(listed(&all, "buyers"));
    json_decref(all);

    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-store", dir);
    const char *nostore[] = {"audience", "add", "--data", missing, "x", "score >= 0", NULL};
    ck_assert_int_eq(run(nostore), 1);
    ck_assert_ptr_nonnull(strstr(err, "no leadscore store in"));
    struct stat st;
    ck_assert_int_ne(stat(missing, &st), 0); /* and none was created */
    /* an empty data.mdb is no store either: refused, and left as it was
     * (it once crashed, after LMDB had made it a store of 8 KiB) */
    char empty_dir[700], empty_file[760];
    snprintf(empty_dir, sizeof empty_dir, "%s/empty-store", dir);
    snprintf(empty_file, sizeof empty_file, "%s/data.mdb", empty_dir);
    ck_assert_int_eq(mkdir(empty_dir, 0700), 0);
    FILE *ef = fopen(empty_file, "w");
    ck_assert_ptr_nonnull(ef);
    fclose(ef);
    const char *add_empty[] = {"audience", "add", "--data", empty_dir, "vip", "known", NULL};
    const char *rm_empty[] = {"audience", "rm", "--data", empty_dir, "vip", NULL};
    ck_assert_int_eq(run(add_empty), 1);
    ck_assert_msg(strstr(err, "no leadscore store in") && strstr(err, "empty"), "%s", err);
    ck_assert_int_eq(run(rm_empty), 1);
    ck_assert_int_eq(stat(empty_file, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    tu_rmtree(dir);
}
END_TEST

/* The first pass of an offline `audience add` records members and does
 * nothing else: it does not know the service's settings, so it fires no
 * moment and prunes nothing.  A cart 2 h old in a store whose service
 * waits 10 h (--abandoned-cart-after) is no abandoned cart yet; an offline
 * add once judged it by the default 1 h and fired abandoned_cart. */
START_TEST(audience_offline_fires_nothing)
{
    char dir[512], data[600], events[700], ep[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    FILE *f = fopen(events, "w");
    fprintf(f, "{\"customer\":\"carter\",\"type\":\"add_to_cart\",\"price\":30,\"ts\":%lld}\n",
            (long long)(timefmt_now_ms() - 2 * 3600 * 1000LL));
    fclose(f);
    const char *imp[] = {"import", "--data", data, "--no-sync", "--quiet", events, NULL};
    ck_assert_msg(run(imp) == 0, "%s", err);
    /* the service meets the customer (its first pass keeps a state) */
    const char *extra[] = {"--abandoned-cart-after", "10h", NULL};
    pid_t pid = tu_spawn_serve(data, ep, sizeof ep, extra);
    const char *all[] = {"audience", "add", "--connect", ep, "all", "known", NULL};
    ck_assert_msg(run(all) == 0, "%s", err);
    ck_assert_int_eq(wait_ready(ep, "all"), 1);
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *add[] = {"audience", "add", "--data", data, "carts", "cart_open == 1", NULL};
    ck_assert_msg(run(add) == 0, "%s", err);
    ck_assert_str_eq(out, "audience carts created: 1 member (rule: cart_open == 1)\n");
    const char *trig[] = {"triggers", "--data", data, NULL};
    ck_assert_msg(run(trig) == 0, "%s", err);
    ck_assert_msg(!strstr(out, "abandoned_cart"), "%s", out);
    /* the service, back, counts the member once and fires no enter for it */
    pid = tu_spawn_serve(data, ep, sizeof ep, extra);
    ck_assert_int_eq(wait_ready(ep, "carts"), 1);
    status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

/* ids are bytes: "k", a NUL, four digits */
#define NUL_IDS 1501
#define NUL_ID_LEN 6

static void track_nul_ids(const char *ep)
{
    tu_conn c;
    tu_connect(&c, ep, ZMQ_DEALER);
    for (int from = 0; from < NUL_IDS; from += 500) {
        int n = NUL_IDS - from < 500 ? NUL_IDS - from : 500;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        tu_pack_str(&pk, "op");
        tu_pack_str(&pk, "track");
        tu_pack_str(&pk, "events");
        msgpack_pack_array(&pk, (size_t)n);
        for (int i = from; i < from + n; i++) {
            char id[16]; /* room for any int: only NUL_ID_LEN bytes are sent */
            snprintf(id, sizeof id, "k_%04d", i % 10000);
            id[1] = '\0';
            msgpack_pack_map(&pk, 2);
            tu_pack_str(&pk, "customer");
            msgpack_pack_str(&pk, NUL_ID_LEN);
            msgpack_pack_str_body(&pk, id, NUL_ID_LEN);
            tu_pack_str(&pk, "type");
            tu_pack_str(&pk, "page_view");
        }
        ck_assert_int_eq(tu_call_raw(&c, sb.data, sb.size, &up), 0);
        msgpack_sbuffer_destroy(&sb);
        ck_assert(tu_get_bool(&up.data, "ok"));
        ck_assert_int_eq(tu_get_int(&up.data, "accepted"), n);
        msgpack_unpacked_destroy(&up);
    }
    tu_disconnect(&c);
}

/* A page of `audience export` (1,000 members) ends on an id holding a NUL:
 * the next page starts after that whole id (it once started after "k" and
 * printed the first page for ever); --connect and --data print the same
 * bytes.  A write that fails midway -- a full disk, a pipe nobody reads --
 * is exit 1 explained on stderr (it was exit 1 with nothing said, or death
 * by SIGPIPE). */
START_TEST(audience_export_nul_ids_and_failed_writes)
{
    static char want[1 << 16], via_data[1 << 16];
    char dir[512], data[600], ep[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    ck_assert_int_eq(mkdir(data, 0700), 0);
    const char *extra[] = {"--audience-refresh", "1s", NULL};
    pid_t pid = tu_spawn_serve(data, ep, sizeof ep, extra);
    track_nul_ids(ep);
    const char *add[] = {"audience", "add", "--connect", ep, "nul", "page_view_count >= 1", NULL};
    ck_assert_msg(run(add) == 0, "%s", err);
    ck_assert_int_eq(wait_ready(ep, "nul"), NUL_IDS);

    size_t want_len = (size_t)snprintf(want, sizeof want, "customer\n");
    for (int i = 0; i < NUL_IDS; i++) {
        want_len += (size_t)snprintf(want + want_len, sizeof want - want_len, "k_%04d\n", i);
        want[want_len - NUL_ID_LEN] = '\0';
    }
    size_t len = 0;
    const char *connect[] = {"audience", "export", "--connect", ep, "nul", NULL};
    int status = run_bounded(dir, connect, -1, 20000, &len);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d, %zu bytes: %s", status, len, err);
    ck_assert_uint_eq(len, want_len);
    ck_assert(memcmp(out, want, len) == 0);
    ck_assert_msg(strstr(err, "exported 1501 members of audience nul"), "%s", err);
    const char *offline[] = {"audience", "export", "--data", data, "nul", NULL};
    status = run_bounded(dir, offline, -1, 20000, &len);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(len, want_len);
    memcpy(via_data, out, len);
    ck_assert(memcmp(via_data, want, len) == 0);

    /* a reader that went away: exit 1 and why, through a service and offline */
    int fd = closed_pipe();
    status = run_bounded(dir, connect, fd, 20000, NULL);
    ck_assert_msg(failed_with(status, "leadscore audience: writing standard output failed: Broken pipe"),
                  "status %d: %s", status, err);
    status = run_bounded(dir, offline, fd, 20000, NULL);
    ck_assert_msg(failed_with(status, "writing standard output failed: Broken pipe"), "status %d: %s", status, err);
    close(fd);
    /* a full disk after the first few KiB: standard output, --out, --data */
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        status = run_bounded(dir, connect, fd, 20000, NULL);
        ck_assert_msg(failed_with(status, "writing standard output failed: No space left on device"),
                      "status %d: %s", status, err);
        const char *to_full[] = {"audience", "export", "--connect", ep, "nul", "--out", "/dev/full", NULL};
        status = run_bounded(dir, to_full, -1, 20000, NULL);
        ck_assert_msg(failed_with(status, "writing /dev/full failed: No space left on device"), "status %d: %s",
                      status, err);
        status = run_bounded(dir, offline, fd, 20000, NULL);
        ck_assert_msg(failed_with(status, "writing standard output failed: No space left on device"),
                      "status %d: %s", status, err);
        close(fd);
    }
    status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

START_TEST(audience_usage_errors)
{
    const char *const cases[][10] = {
        {"audience", NULL},
        {"audience", "fly", NULL},
        {"audience", "--data", "x", "list", NULL},
        {"audience", "list", "--data", "x", "--connect", "tcp://127.0.0.1:1", NULL},
        {"audience", "add", "--data", "x", "onlyname", NULL},
        {"audience", "rm", "--data", "x", NULL},
        {"audience", "list", "--data", "x", "extra", NULL},
        {"audience", "export", "--data", "x", "n", "--format", "xml", NULL},
        {"audience", "add", "--connect", "tcp://127.0.0.1:1", "--model", "m.json", "n", "score > 0", NULL},
        {"audience", "list", "--connect", "tcp://127.0.0.1:1", "--key", "k", NULL},
        {"audience", "list", "--data", "x", "--server-key", "s", "--key", "k", NULL},
        {"audience", "list", "--data", "x", "--no-such-option", NULL},
        {"triggers", "--data", "x", "--follow", NULL},
        {"triggers", "--connect", "tcp://127.0.0.1:1", "--wait", "100", NULL},
        {"triggers", "--connect", "tcp://127.0.0.1:1", "--from", "-1", NULL},
        {"triggers", "--connect", "tcp://127.0.0.1:1", "--limit", "0", NULL},
        {"triggers", "--connect", "tcp://127.0.0.1:1", "--data", "x", NULL},
        {"triggers", "--connect", "tcp://127.0.0.1:1", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(cases[i]);
        ck_assert_msg(rc == 2, "case %zu (%s %s): exit %d, want 2", i, cases[i][0], cases[i][1] ? cases[i][1] : "",
                      rc);
        ck_assert_msg(strncmp(err, "leadscore ", 10) == 0, "case %zu: %s", i, err);
        ck_assert_str_eq(out, "");
    }
    const char *const helps[][4] = {{"audience", "--help", NULL}, {"audience", "add", "--help", NULL},
                                    {"audience", "export", "-h", NULL}, {"triggers", "--help", NULL}};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        ck_assert_int_eq(run(helps[i]), 0);
        ck_assert_ptr_nonnull(strstr(out, "usage: leadscore"));
    }
    const char *overview[] = {"audience", "--help", NULL};
    run(overview);
    const char *opts[] = {"--data", "--connect", "--timeout", "--server-key", "--key", "--model", "--json",
                          "--format", "--out"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        ck_assert_msg(strstr(out, opts[i]) != NULL, "audience --help lacks %s", opts[i]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* triggers                                                            */
/* ------------------------------------------------------------------ */

/* The lines of `triggers --connect ep` (<= 15 s) once there are n. */
static void wait_triggers(const char *ep, int n)
{
    const char *args[] = {"triggers", "--connect", ep, NULL};
    int64_t deadline = tu_now_ms() + 15000;
    for (;;) {
        ck_assert_msg(run(args) == 0, "triggers: %s", err);
        int lines = 0;
        for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
            lines++;
        if (lines >= n)
            return;
        ck_assert_msg(tu_now_ms() < deadline, "%d of %d triggers within 15 s:\n%s", lines, n, out);
        usleep(100000);
    }
}

/* Line i (0-based) of text, into buf with its newline. */
static void line_of(const char *text, int i, char *buf, size_t cap)
{
    const char *p = text;
    for (int k = 0; k < i; k++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    const char *e = strchr(p, '\n');
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_lt((size_t)(e - p + 1), cap);
    memcpy(buf, p, (size_t)(e - p + 1));
    buf[e - p + 1] = '\0';
}

/* Checks one trigger line: strict JSON, the keys in wire order, and what
 * an abandoned cart of customer at seq says. */
static void check_cart_line(const char *line, int64_t seq, const char *customer, double value)
{
    static const char *const keys[] = {"seq", "id", "customer", "kind", "name", "at", "score", "tier",
                                       "phase", "customer_type", "clv", "segment", "value"};
    json_error_t jerr;
    json_t *t = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(t != NULL, "not JSON (%s): %s", jerr.text, line);
    ck_assert_int_eq(json_object_size(t), sizeof keys / sizeof keys[0]);
    const char *p = line;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) { /* in this order */
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
        const char *q = strstr(p, quoted);
        ck_assert_msg(q != NULL, "key %s missing or out of order: %s", keys[i], line);
        p = q;
    }
    ck_assert_int_eq(json_integer_value(json_object_get(t, "seq")), seq);
    ck_assert_str_eq(json_string_value(json_object_get(t, "customer")), customer);
    ck_assert_str_eq(json_string_value(json_object_get(t, "kind")), "moment");
    ck_assert_str_eq(json_string_value(json_object_get(t, "name")), "abandoned_cart");
    ck_assert(json_real_value(json_object_get(t, "value")) == value);
    char suffix[32];
    snprintf(suffix, sizeof suffix, "-%lld", (long long)seq);
    const char *id = json_string_value(json_object_get(t, "id"));
    ck_assert(strlen(id) > strlen(suffix) && strcmp(id + strlen(id) - strlen(suffix), suffix) == 0);
    json_decref(t);
}

START_TEST(triggers_print_the_outbox)
{
    static char all[1 << 16], via_data[1 << 16];
    char dir[512], ep[256], l1[4096], l2[4096];
    tu_tempdir(dir, sizeof dir);
    const char *extra[] = {"--abandoned-cart-after", "1s", NULL};
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, extra);
    const char *none[] = {"triggers", NULL};
    setenv("LEADSCORE_CONNECT", ep, 1); /* the default endpoint */
    ck_assert_int_eq(run(none), 0);
    unsetenv("LEADSCORE_CONNECT");
    ck_assert_str_eq(out, ""); /* an empty outbox */

    const char *cart1[] = {"track", "--connect", ep, "cart-1", "add_to_cart", "price=40", NULL};
    ck_assert_int_eq(run(cart1), 0);
    wait_triggers(ep, 1); /* one at a time: seq order is firing order */
    const char *cart2[] = {"track", "--connect", ep, "cart-2", "add_to_cart", "price=12.5", NULL};
    ck_assert_int_eq(run(cart2), 0);
    wait_triggers(ep, 2);
    snprintf(all, sizeof all, "%s", out);
    line_of(all, 0, l1, sizeof l1);
    line_of(all, 1, l2, sizeof l2);
    ck_assert_uint_eq(strlen(all), strlen(l1) + strlen(l2)); /* exactly two */
    check_cart_line(l1, 1, "cart-1", 40.0);
    check_cart_line(l2, 2, "cart-2", 12.5);

    /* --from is exclusive; --limit stops early */
    const char *from1[] = {"triggers", "--connect", ep, "--from", "1", NULL};
    ck_assert_int_eq(run(from1), 0);
    ck_assert_str_eq(out, l2);
    const char *from2[] = {"triggers", "--connect", ep, "--from", "2", NULL};
    ck_assert_int_eq(run(from2), 0);
    ck_assert_str_eq(out, "");
    const char *limit1[] = {"triggers", "--connect", ep, "--limit", "1", NULL};
    ck_assert_int_eq(run(limit1), 0);
    ck_assert_str_eq(out, l1);
    /* --data reads the same bytes from the store (beside the running service) */
    const char *data[] = {"triggers", "--data", dir, NULL};
    ck_assert_int_eq(run(data), 0);
    snprintf(via_data, sizeof via_data, "%s", out);
    ck_assert_str_eq(via_data, all);
    const char *data_from[] = {"triggers", "--data", dir, "--from", "1", "--limit", "5", NULL};
    ck_assert_int_eq(run(data_from), 0);
    ck_assert_str_eq(out, l2);
    ck_assert_str_eq(err, "");
    /* a reader that went away is a failed write: exit 1 and why, not death
     * by SIGPIPE; --follow ends too */
    int fd = closed_pipe();
    const char *follow[] = {"triggers", "--connect", ep, "--follow", NULL};
    const char *const *to_nobody[] = {none, data, follow};
    setenv("LEADSCORE_CONNECT", ep, 1);
    for (size_t i = 0; i < sizeof to_nobody / sizeof to_nobody[0]; i++) {
        int st = run_bounded(dir, to_nobody[i], fd, 20000, NULL);
        ck_assert_msg(failed_with(st, "leadscore triggers: cannot write to standard output: Broken pipe"),
                      "case %zu: status %d: %s", i, st, err);
    }
    unsetenv("LEADSCORE_CONNECT");
    close(fd);

    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *gone[] = {"triggers", "--connect", ep, "--timeout", "300", NULL};
    ck_assert_int_eq(run(gone), 1);
    ck_assert_ptr_nonnull(strstr(err, "is `leadscore serve` running there?"));
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", dir);
    const char *nostore[] = {"triggers", "--data", missing, NULL};
    ck_assert_int_eq(run(nostore), 1);
    ck_assert_ptr_nonnull(strstr(err, "no leadscore store"));
    tu_rmtree(dir);
}
END_TEST

/* A `leadscore triggers --follow` child: its stdout on a pipe, its stderr
 * into a file. */
typedef struct {
    pid_t pid;
    int fd;
    char buf[1 << 14];
    size_t len;
    char err_path[600];
} follower;

static void follow_start(follower *fw, const char *dir, const char *const *args)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    snprintf(fw->err_path, sizeof fw->err_path, "%s/follow.err", dir);
    fw->len = 0;
    fw->pid = fork();
    ck_assert_int_ge(fw->pid, 0);
    if (fw->pid == 0) {
        const char *argv[32] = {LEADSCORE_BIN};
        int n = 1;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (!freopen(fw->err_path, "w", stderr))
            _exit(126);
        execv(LEADSCORE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    fw->fd = p[0];
}

/* Reads the child's stdout until it holds needle (<= ms); 1 when it does. */
static int follow_wait(follower *fw, const char *needle, int ms)
{
    int64_t deadline = tu_now_ms() + ms;
    for (;;) {
        fw->buf[fw->len] = '\0';
        if (strstr(fw->buf, needle))
            return 1;
        int64_t left = deadline - tu_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pf = {fw->fd, POLLIN, 0};
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fw->fd, fw->buf + fw->len, sizeof fw->buf - 1 - fw->len);
        if (n <= 0)
            return 0;
        fw->len += (size_t)n;
    }
}

/* Waits (<= ms) until the child's stderr holds needle. */
static int stderr_has(const follower *fw, const char *needle, int ms)
{
    int64_t deadline = tu_now_ms() + ms;
    do {
        read_file(fw->err_path, err, sizeof err);
        if (strstr(err, needle))
            return 1;
        usleep(50000);
    } while (tu_now_ms() < deadline);
    return 0;
}

/* Sends sig and expects exit status 0 (<= 20 s). */
static void follow_stop(follower *fw, int sig)
{
    int status = tu_kill_wait(fw->pid, sig);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "triggers --follow: status %d after signal %d",
                  status, sig);
    close(fw->fd);
}

/* A loopback port nobody listens on (bound, then released). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

START_TEST(triggers_follow)
{
    static follower fw;
    char dir[512], bind[64], ep[256], line[4096];
    tu_tempdir(dir, sizeof dir);
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:%d", free_port());
    const char *extra[] = {"--abandoned-cart-after", "1s", "--bind", bind, NULL};
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, extra);
    ck_assert_str_eq(ep, bind);
    const char *cart1[] = {"track", "--connect", ep, "early", "add_to_cart", "price=3", NULL};
    ck_assert_int_eq(run(cart1), 0);
    wait_triggers(ep, 1);

    /* started after seq 1: prints nothing until a new trigger fires, then it at once */
    const char *follow[] = {"triggers", "--connect", ep, "--follow", "--from", "1", "--wait", "1000",
                            "--timeout", "1000", NULL};
    follow_start(&fw, dir, follow);
    ck_assert(!follow_wait(&fw, "\n", 500));
    const char *cart2[] = {"track", "--connect", ep, "later", "add_to_cart", "price=9", NULL};
    ck_assert_int_eq(run(cart2), 0);
    ck_assert_msg(follow_wait(&fw, "\n", 15000), "no trigger printed: %s", fw.buf);
    line_of(fw.buf, 0, line, sizeof line);
    check_cart_line(line, 2, "later", 9.0);
    ck_assert_uint_eq(fw.len, strlen(line));

    /* the service goes away and comes back on the same endpoint: a note, then on from seq 2 */
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_msg(stderr_has(&fw, "no answer from", 10000), "no note: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "retrying after seq 2"));
    pid = tu_spawn_serve(dir, ep, sizeof ep, extra);
    const char *cart3[] = {"track", "--connect", ep, "after-restart", "add_to_cart", "price=1.5", NULL};
    ck_assert_int_eq(run(cart3), 0);
    ck_assert_msg(follow_wait(&fw, "after-restart", 20000), "no trigger after the restart: %s", fw.buf);
    ck_assert_msg(stderr_has(&fw, "answers again", 5000), "%s", err);
    line_of(fw.buf, 1, line, sizeof line);
    check_cart_line(line, 3, "after-restart", 1.5);
    follow_stop(&fw, SIGTERM);

    /* SIGINT while it waits: exit 0 too */
    const char *follow3[] = {"triggers", "--connect", ep, "--follow", "--from", "3", NULL};
    follow_start(&fw, dir, follow3);
    usleep(300000);
    follow_stop(&fw, SIGINT);
    /* --limit ends a follow */
    const char *follow_one[] = {"triggers", "--connect", ep, "--follow", "--limit", "2", NULL};
    follow_start(&fw, dir, follow_one);
    ck_assert(follow_wait(&fw, "after-restart", 5000) == 0); /* seq 1 and 2 only */
    status = tu_kill_wait(fw.pid, 0);
    close(fw.fd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_ptr_nonnull(strstr(fw.buf, "\"customer\":\"later\""));

    status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("audience_cli");
    TCase *tc = tcase_create("commands");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, audience_usage_errors);
    tcase_add_test(tc, audience_through_a_service);
    tcase_add_test(tc, audience_offline);
    tcase_add_test(tc, audience_offline_fires_nothing);
    tcase_add_test(tc, audience_export_nul_ids_and_failed_writes);
    tcase_add_test(tc, triggers_print_the_outbox);
    tcase_add_test(tc, triggers_follow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
