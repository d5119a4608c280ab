/* test_cli.c -- the `leadscore` command line as a user types it: help and
 * usage errors with the documented exit codes (a table over every
 * subcommand: 0 ok, 1 failure explained on stderr, 2 usage), the one-off
 * request commands against a running server, every JSON output parsed
 * strictly (invalid UTF-8 ids, doubles that need 17 digits), gen's
 * window, keygen's refusal to overwrite, rescore's model line and times
 * before 1970 refused as usage errors. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <math.h>
#include <time.h>

#include "jsonout.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"

static char out[1 << 16];

/* Parses text as exactly one JSON value, strictly: jansson with duplicate
 * keys refused (it also refuses invalid UTF-8 and bare control bytes),
 * and nothing but one newline after it.  New reference. */
static json_t *strict_json(const char *text)
{
    json_error_t jerr;
    size_t n = strlen(text);
    ck_assert_msg(n > 1 && text[n - 1] == '\n' && !memchr(text, '\n', n - 1), "not one line: %s", text);
    json_t *j = json_loadb(text, n - 1, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "not strict JSON (%s): %s", jerr.text, text);
    return j;
}

/* The same text through python3's json module (strict UTF-8, duplicate
 * keys refused), when python3 is there. */
static void python_parses(const char *path)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys\n"
             "def h(p):\n"
             "    d=dict(p)\n"
             "    assert len(d)==len(p), \"duplicate key\"\n"
             "    return d\n"
             "n=0\n"
             "for line in open(sys.argv[1], encoding=\"utf-8\", errors=\"strict\"):\n"
             "    json.loads(line, object_pairs_hook=h); n+=1\n"
             "assert n>0' %s",
             path);
    ck_assert_msg(system(cmd) == 0, "python3 json refused %s", path);
}

START_TEST(help_and_version_exit_zero)
{
    const char *top[] = {"--help", NULL}, *ver[] = {"--version", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, top), 0);
    ck_assert_ptr_nonnull(strstr(out, "serve"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, ver), 0);
    ck_assert_ptr_nonnull(strstr(out, "leadscore 0.1.0"));
    ck_assert_ptr_nonnull(strstr(out, "libnats")); /* its version, or that the build has none */
    const char *cmds[] = {"serve", "track", "score", "recommend", "profile", "ping", "stats", "model", "reload", "gen", "alias", "forget", "compact", "import", "train", "rescore", "kpis", "bench", "keygen", "audience", "triggers"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *args[] = {cmds[i], "--help", NULL};
        ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
        ck_assert_ptr_nonnull(strstr(out, "usage: leadscore"));
    }
    const char *serve[] = {"serve", "--help", NULL};
    tu_run_cli(out, sizeof out, serve);
    ck_assert_ptr_nonnull(strstr(out, "--dedupe-window"));
}
END_TEST

START_TEST(usage_errors_exit_two)
{
    const char *none[] = {NULL}, *unknown[] = {"fly", NULL}, *badopt[] = {"serve", "--no-such-option", NULL};
    const char *badval[] = {"serve", "--max-frame", "lots", NULL}, *missing[] = {"track", "onlyone", NULL};
    const char *badfield[] = {"track", "alice", "add_to_cart", "price=cheap", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, none), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, unknown), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badopt), 2);
    ck_assert_ptr_nonnull(strstr(out, "leadscore serve: unknown option \"--no-such-option\""));
    const char *novalue[] = {"serve", "--data", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, novalue), 2);
    ck_assert_ptr_nonnull(strstr(out, "leadscore serve: --data takes a value"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badval), 2);
    ck_assert_ptr_nonnull(strstr(out, "--max-frame"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, missing), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badfield), 2);
    ck_assert_ptr_nonnull(strstr(out, "price"));
    /* a cluster setting without --nats: said, not a single node started silently */
    const char *node_alone[] = {"serve", "--node", "node1", "--data", "/nonexistent/never-made", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, node_alone), 2);
    ck_assert_ptr_nonnull(strstr(out, "--nats"));
    /* values the config table cannot check alone are still checked before
     * anything opens: a usage error naming the option, no store made */
    const char *cooldown[] = {"serve", "--trigger-cooldowns", "win_back=soon", "--data", "/nonexistent/never-made", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, cooldown), 2);
    ck_assert_ptr_nonnull(strstr(out, "--trigger-cooldowns: \"soon\" is not a duration"));
    const char *moment[] = {"serve", "--trigger-cooldowns", "lunch=1d", "--data", "/nonexistent/never-made", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, moment), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown moment \"lunch\""));
    const char *metrics[] = {"serve", "--metrics", "9464", "--data", "/nonexistent/never-made", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, metrics), 2);
    ck_assert_ptr_nonnull(strstr(out, "--metrics: \"9464\" is not IPV4-ADDRESS:PORT"));
    /* an option that would do nothing is said, not ignored */
    const char *timeout_data[] = {"import", "--data", "/nonexistent/never-made", "--timeout", "5", "x.jsonl", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, timeout_data), 2);
    ck_assert_ptr_nonnull(strstr(out, "--timeout goes with --connect"));
}
END_TEST

/* A time before 1970 (a negative epoch, as seconds, a fraction or a year
 * 0000 date) is a usage error wherever a time option is parsed, said
 * before anything connects or opens: no request ever carries one. */
START_TEST(times_before_1970_are_usage_errors)
{
    static const char *const rows[][9] = {
        {"score", "--connect", "tcp://127.0.0.1:1", "--now", "-5", "x"},
        {"recommend", "--connect", "tcp://127.0.0.1:1", "--now", "-0.5", "x"},
        {"profile", "--connect", "tcp://127.0.0.1:1", "--now", "0000-01-01", "x"},
        {"score", "--connect", "tcp://127.0.0.1:1", "--now", "1969-12-31T23:59:59.999Z", "x"},
        {"track", "--connect", "tcp://127.0.0.1:1", "x", "view", "ts=-1"},
        {"rescore", "--data", "/nonexistent/never-made", "--now", "-5"},
        {"kpis", "--data", "/nonexistent/never-made", "--from", "-5"},
        {"kpis", "--data", "/nonexistent/never-made", "--to", "-86400"},
        {"gen", "--customers", "10", "--start", "1960-01-01", "--out", "/dev/null"},
        {"train", "--cutoff", "-1", "--out", "/nonexistent/never-made.json", "/nonexistent/events.csv"},
    };
    static char e[1 << 12];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *args[10] = {0};
        for (size_t j = 0; j < 9 && rows[i][j]; j++)
            args[j] = rows[i][j];
        int rc = tu_run_cli_split(out, sizeof out, e, sizeof e, args);
        ck_assert_msg(rc == 2, "%s row %zu: exit %d, want 2 (%s)", rows[i][0], i, rc, e);
        ck_assert_msg(strstr(e, "before 1970-01-01") != NULL, "%s row %zu: %s", rows[i][0], i, e);
    }
    /* the epoch itself is a time */
    const char *epoch[] = {"rescore", "--data", "/nonexistent/never-made", "--now", "0", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, epoch), 1); /* no store there, not a usage error */
}
END_TEST

/* gen --truth with the default cutoff needs a stream longer than the
 * horizon: a shorter one is a usage error naming the way out, not a truth
 * file cut at the stream's first day. */
START_TEST(gen_truth_needs_a_stream_longer_than_the_horizon)
{
    char e[4096], truth[600];
    static char tmp[512];
    tu_tempdir(tmp, sizeof tmp);
    snprintf(truth, sizeof truth, "%s/t.csv", tmp);
    const char *shorter[] = {"gen", "--customers", "30", "--days", "10", "--end", "2026-01-01", "--truth", truth,
                             "--out", "/dev/null", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, shorter), 2);
    ck_assert_ptr_nonnull(strstr(e, "--cutoff"));
    const char *with_cutoff[] = {"gen", "--customers", "30", "--days", "10", "--end", "2026-01-01", "--truth", truth,
                                 "--cutoff", "2025-12-27", "--out", "/dev/null", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, with_cutoff), 0);
    const char *longer[] = {"gen", "--customers", "30", "--days", "40", "--end", "2026-01-01", "--truth", truth,
                            "--out", "/dev/null", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, longer), 0);
    ck_assert_ptr_nonnull(strstr(e, "truth cutoff 2025-12-02"));
    tu_rmtree(tmp);
}
END_TEST

START_TEST(no_server_is_a_clear_failure)
{
    const char *args[] = {"ping", "--connect", "tcp://127.0.0.1:1", "--timeout", "300", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 1);
    ck_assert_ptr_nonnull(strstr(out, "is `leadscore serve` running"));
}
END_TEST

START_TEST(track_score_profile_against_a_server)
{
    char dir[512], ep[256];
    tu_tempdir(dir, sizeof dir);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    const char *track[] = {"track", "--connect", ep, "alice", "add_to_cart", "price=40",
                           "category=shoes/running", "ts=2026-11-01T10:00:00Z", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, track), 0);
    ck_assert_ptr_nonnull(strstr(out, "accepted: 1"));
    const char *score[] = {"score", "--connect", ep, "--json", "alice", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, score), 0);
    json_t *all = strict_json(out); /* one shape for one ID and for many */
    ck_assert(json_is_true(json_object_get(all, "ok")));
    ck_assert_int_eq(json_array_size(json_object_get(all, "results")), 1);
    json_t *j = json_incref(json_array_get(json_object_get(all, "results"), 0));
    json_decref(all);
    ck_assert(json_is_true(json_object_get(j, "known")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "customer")), "alice");
    double s = json_real_value(json_object_get(j, "score"));
    ck_assert(s > 0 && s < 1);
    json_decref(j);
    const char *profile[] = {"profile", "--connect", ep, "alice", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, profile), 0);
    ck_assert_ptr_nonnull(strstr(out, "add_to_cart_count: 1"));
    ck_assert_ptr_nonnull(strstr(out, "first_seen: 1793527200000"));
    /* a whole number written "2.0" is one, as import and the wire take it */
    const char *two[] = {"track", "--connect", ep, "alice", "add_to_cart", "price=40", "quantity=2.0", "rating=5.0",
                         NULL};
    ck_assert_msg(tu_run_cli(out, sizeof out, two) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "accepted: 1"));
    const char *half[] = {"track", "--connect", ep, "alice", "add_to_cart", "quantity=2.5", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, half), 2);
    ck_assert_ptr_nonnull(strstr(out, "leadscore track: quantity: \"2.5\" is not a whole number"));
    const char *bad[] = {"track", "--connect", ep, "alice", "teleport", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, bad), 1); /* the reply is printed; the rejection is exit 1 */
    ck_assert_ptr_nonnull(strstr(out, "accepted: 0"));
    ck_assert_ptr_nonnull(strstr(out, "leadscore track: the event was rejected: bad_request"));
    const char *unknown_id[] = {"score", "--connect", ep, "nobody", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, unknown_id), 0);
    ck_assert_ptr_nonnull(strstr(out, "known: false"));
    /* options after the ids are options, as in any GNU tool ("--json"
     * was once scored as a second id); "--" ends them for an id like "-1" */
    const char *after[] = {"score", "alice", "--connect", ep, "--json", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, after), 0);
    all = strict_json(out);
    ck_assert_int_eq(json_array_size(json_object_get(all, "results")), 1);
    json_decref(all);
    const char *dashed[] = {"score", "--connect", ep, "--json", "--", "-1", "alice", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, dashed), 0);
    all = strict_json(out);
    ck_assert_int_eq(json_array_size(json_object_get(all, "results")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(all, "results"), 0), "customer")),
                     "-1");
    json_decref(all);
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

START_TEST(serve_refuses_a_bad_model_file_clearly)
{
    char dir[512], path[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\": \"x\",\n \"version\": 1,,}\n", f);
    fclose(f);
    const char *args[] = {"serve", "--data", dir, "--model", path, "--bind", "tcp://127.0.0.1:*",
                          "--pull", "none", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 1);
    ck_assert_ptr_nonnull(strstr(out, "line 2"));
    tu_rmtree(dir);
}
END_TEST

START_TEST(sighup_reloads_the_model_file)
{
    char dir[512], ep[256], model[600], src[1600];
    tu_tempdir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m.json", dir);
    snprintf(src, sizeof src, "cp %s/models/handset.json %s", LS_SOURCE_DIR, model);
    ck_assert_int_eq(system(src), 0);
    const char *extra[] = {"--model", model, NULL};
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, extra);
    const char *args[] = {"model", "--connect", ep, "--json", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    ck_assert_msg(strstr(out, "\"orders_only_customers\":\"logistic\""), "%s", out); /* handset has no key */
    /* the new file also scores customers known from orders alone by their orders */
    snprintf(src, sizeof src,
             "sed -i 's/\"version\": \"0.1.0\"/\"version\": \"0.2.0\", \"orders_only_customers\": \"repeat_purchase\"/' %s",
             model);
    ck_assert_int_eq(system(src), 0);
    kill(pid, SIGHUP);
    int reloaded = 0;
    for (int i = 0; i < 100 && !reloaded; i++) { /* <= 5 s */
        usleep(50000);
        ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
        reloaded = strstr(out, "\"version\":\"0.2.0\"") != NULL;
    }
    ck_assert(reloaded);
    ck_assert_msg(strstr(out, "\"orders_only_customers\":\"repeat_purchase\""), "%s", out);
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

START_TEST(gen_is_deterministic_and_writes_truth)
{
    char dir[512], a[600], b[600], t[600], cmp[1400];
    tu_tempdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(t, sizeof t, "%s/truth.csv", dir);
    const char *one[] = {"gen", "--customers", "300", "--days", "60", "--seed", "7", "--format", "csv",
                         "--out", a, "--truth", t, NULL};
    const char *two[] = {"gen", "--customers", "300", "--days", "60", "--seed", "7", "--format", "csv",
                         "--out", b, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, one), 0);
    ck_assert_ptr_nonnull(strstr(out, "events for"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, two), 0);
    snprintf(cmp, sizeof cmp, "cmp -s %s %s", a, b);
    ck_assert_int_eq(system(cmp), 0);
    FILE *f = fopen(t, "r");
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "customer,purchases_before_cutoff,purchased_in_horizon,purchases_in_horizon,"
                           "alive_at_cutoff,lambda_per_day,p_dropout,segment\n");
    fclose(f);
    const char *bad[] = {"gen", "--format", "xml", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, bad), 2);
    tu_rmtree(dir);
}
END_TEST

/* 1 when the bytes of needle occur in the file at path. */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 22];
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

START_TEST(forget_then_compact_leaves_no_trace_in_the_file)
{
    char dir[512], ep[256], data[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    const char *track[] = {"track", "--connect", ep, "zz-secret-person-42", "purchase", "value=10", NULL};
    const char *keep[] = {"track", "--connect", ep, "someone-who-stays", "purchase", "value=10", NULL};
    const char *forget[] = {"forget", "--connect", ep, "zz-secret-person-42", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, track), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, keep), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, forget), 0);
    ck_assert_ptr_nonnull(strstr(out, "deleted: true"));
    int status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *compact[] = {"compact", "--data", dir, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, compact), 0);
    ck_assert(!file_contains(data, "zz-secret-person-42"));
    ck_assert(file_contains(data, "someone-who-stays"));
    pid = tu_spawn_serve(dir, ep, sizeof ep, NULL); /* the compacted store serves */
    const char *profile[] = {"profile", "--connect", ep, "someone-who-stays", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, profile), 0);
    ck_assert_ptr_nonnull(strstr(out, "purchase_count: 1"));
    tu_kill_wait(pid, SIGTERM);
    tu_rmtree(dir);
}
END_TEST

/* Every --json output is one line of strict JSON: request commands (also
 * error replies and a rejected track), kpis --json, rescore --format
 * jsonl and train --json; an id with invalid UTF-8 comes out with U+FFFD
 * in its place; a double needing 17 significant digits survives. */
START_TEST(json_outputs_parse_strictly)
{
    static char o[1 << 20], e[1 << 16];
    char dir[512], ep[256], all[600], rows[600], model[600], shop[600], trained[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(all, sizeof all, "%s/all.jsonl", dir);
    snprintf(rows, sizeof rows, "%s/rows.jsonl", dir);
    snprintf(model, sizeof model, "%s/models/handset.json", LS_SOURCE_DIR);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    const char *bad_id = "bad\xff\xfe-id\xc3";                   /* two stray bytes, a cut sequence */
    const char *bad_clean = "bad\xef\xbf\xbd\xef\xbf\xbd-id\xef\xbf\xbd"; /* each bad byte: U+FFFD */
    const char *const cmds[][12] = {
        {"track", "--json", bad_id, "purchase", "value=1234.5678901234567", "order_id=o-1", NULL},
        {"track", "--json", "alice", "add_to_cart", "price=0.1", NULL},
        {"track", "--json", "alice", "teleport", NULL}, /* rejected: exit 1, still the reply */
        {"score", "--json", bad_id, NULL},
        {"score", "--json", bad_id, "alice", "nobody", NULL},
        {"score", "--json", "--explain", "alice", NULL},
        {"profile", "--json", bad_id, NULL},
        {"recommend", "--json", bad_id, NULL},
        {"alias", "--json", "anon-\xff", "alice", NULL},
        {"model", "--json", NULL},
        {"stats", "--json", NULL},
        {"ping", "--json", NULL},
        {"reload", "--json", NULL},
        {"reload", "--json", LS_SOURCE_DIR "/CMakeLists.txt", NULL}, /* outside the model directories: error reply */
        {"forget", "--json", "nobody", NULL},
    };
    const int want[] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    FILE *f = fopen(all, "w");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *args[16] = {cmds[i][0], "--connect", ep};
        int n = 3;
        for (int k = 1; cmds[i][k]; k++)
            args[n++] = cmds[i][k];
        args[n] = NULL;
        int rc = tu_run_cli_split(o, sizeof o, e, sizeof e, args);
        ck_assert_msg(rc == want[i], "%s: exit %d, want %d (%s)", cmds[i][0], rc, want[i], e);
        json_t *j = strict_json(o);
        fputs(o, f);
        ck_assert(json_is_boolean(json_object_get(j, "ok")));
        if (rc != 0) { /* explained on stderr too */
            char prefix[64];
            snprintf(prefix, sizeof prefix, "leadscore %s: ", cmds[i][0]);
            ck_assert_msg(strstr(e, prefix) != NULL, "no explanation: %s", e);
        }
        if (i == 3 || i == 4) { /* score: {"ok", "id", "results": [...]} for one ID and for many */
            json_t *res = json_object_get(j, "results");
            ck_assert_int_eq(json_array_size(res), i == 3 ? 1 : 3);
            ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res, 0), "customer")), bad_clean);
        }
        if (i == 6) { /* the value went in as 17 digits and comes back as the same double */
            json_t *spend = json_object_get(json_object_get(j, "features"), "spend");
            ck_assert(json_real_value(spend) == strtod("1234.5678901234567", NULL));
            ck_assert_ptr_nonnull(strstr(o, "\"spend\":1234.5678901234567"));
            ck_assert_str_eq(json_string_value(json_object_get(j, "customer")), bad_clean);
        }
        json_decref(j);
    }
    /* kpis --json and train --json go to the same file */
    const char *kpis[] = {"kpis", "--data", dir, "--json", NULL};
    ck_assert_int_eq(tu_kill_wait(pid, SIGTERM), 0);
    ck_assert_int_eq(tu_run_cli_split(o, sizeof o, e, sizeof e, kpis), 0);
    json_decref(strict_json(o));
    fputs(o, f);
    snprintf(shop, sizeof shop, "%s/shop.jsonl", dir);
    snprintf(trained, sizeof trained, "%s/m.json", dir);
    const char *gen[] = {"gen", "--customers", "300", "--days", "90", "--end", "2026-03-01", "--out", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 0);
    const char *train[] = {"train", "--clv-only", "--quiet", "--json", "--out", trained, shop, NULL};
    ck_assert_int_eq(tu_run_cli_split(o, sizeof o, e, sizeof e, train), 0);
    json_t *tj = json_loads(o, JSON_REJECT_DUPLICATES, NULL); /* indented: not one line */
    ck_assert_ptr_nonnull(tj);
    json_decref(tj);
    fclose(f);
    python_parses(all);
    /* rescore --format jsonl: every line strict, the bad id cleaned */
    const char *rescore[] = {"rescore", "--data", dir, "--model", model, "--format", "jsonl", "--out", rows, "--quiet", NULL};
    ck_assert_int_eq(tu_run_cli_split(o, sizeof o, e, sizeof e, rescore), 0);
    f = fopen(rows, "r");
    char line[1 << 14];
    int lines = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = strict_json(line);
        found |= strcmp(json_string_value(json_object_get(j, "customer")), bad_clean) == 0;
        ck_assert(json_is_real(json_object_get(j, "score")));
        ck_assert(json_is_array(json_object_get(j, "segments")));
        lines++;
        json_decref(j);
    }
    fclose(f);
    ck_assert_int_eq(lines, 2); /* the bad id and alice (nobody was never stored) */
    ck_assert(found);
    python_parses(rows);
    tu_rmtree(dir);
}
END_TEST

/* One row per subcommand of main.c: arguments that succeed (0), that fail
 * with an explanation on stderr (1), and a usage error (2) besides the
 * unknown option every command is also tried with.  "@D" is replaced by a
 * temporary directory, "@EP" by a running server's endpoint, "@X" by an
 * endpoint nobody listens on.  Rows run in order (gen makes the shop that
 * import loads, which rescore, kpis and compact read). */
typedef struct {
    const char *cmd;
    const char *ok[14], *fail[14], *usage[14];
} exit_row;

static const exit_row exit_rows[] = {
    {"serve", {"serve", "--sample-config"},
     {"serve", "--data", "@D/s", "--model", "@D/no-such-model.json", "--bind", "tcp://127.0.0.1:*", "--pull", "none"},
     {"serve", "--max-frame", "lots"}},
    {"track", {"track", "--connect", "@EP", "alice", "add_to_cart", "price=40"},
     {"track", "--connect", "@EP", "alice", "teleport"},
     {"track", "--connect", "@EP", "alice"}},
    {"score", {"score", "--connect", "@EP", "alice", "bob"}, {"score", "--connect", "@X", "--timeout", "300", "alice"},
     {"score", "--connect", "@EP"}},
    {"recommend", {"recommend", "--connect", "@EP", "alice"},
     {"recommend", "--connect", "@X", "--timeout", "300", "alice"}, {"recommend", "--connect", "@EP", "--k", "0", "alice"}},
    {"profile", {"profile", "--connect", "@EP", "alice"}, {"profile", "--connect", "@X", "--timeout", "300", "alice"},
     {"profile", "--connect", "@EP"}},
    {"ping", {"ping", "--connect", "@EP"}, {"ping", "--connect", "@X", "--timeout", "300"},
     {"ping", "--connect", "@EP", "--timeout"}},
    {"stats", {"stats", "--connect", "@EP"}, {"stats", "--connect", "@X", "--timeout", "300"},
     {"stats", "--connect", "@EP", "extra"}},
    {"model", {"model", "--connect", "@EP"}, {"model", "--connect", "@X", "--timeout", "300"},
     {"model", "--connect", "@EP", "--timeout", "soon"}},
    {"reload", {"reload", "--connect", "@EP"}, {"reload", "--connect", "@EP", "@D/no-such-model.json"},
     {"reload", "--connect", "@EP", "a.json", "b.json"}},
    {"alias", {"alias", "--connect", "@EP", "anon-1", "alice"}, {"alias", "--connect", "@X", "--timeout", "300", "a", "b"},
     {"alias", "--connect", "@EP", "anon-1"}},
    {"forget", {"forget", "--connect", "@EP", "bob"}, {"forget", "--connect", "@X", "--timeout", "300", "bob"},
     {"forget", "--connect", "@EP"}},
    {"gen", {"gen", "--customers", "300", "--days", "90", "--end", "2026-03-01", "--out", "@D/shop.jsonl"},
     {"gen", "--customers", "10", "--out", "@D/no/such/dir/shop.jsonl"}, {"gen", "--days"}},
    {"import", {"import", "--data", "@D/store", "--no-sync", "--quiet", "@D/shop.jsonl"},
     {"import", "--data", "@D/store2", "--quiet", "@D/no-such.jsonl"}, {"import", "--data", "@D/store2"}},
    {"rescore", {"rescore", "--data", "@D/store", "--quiet", "--out", "@D/rows.csv"},
     {"rescore", "--data", "@D/no-such-store"}, {"rescore", "--data", "@D/store", "--top", "0"}},
    {"kpis", {"kpis", "--data", "@D/store", "--json"}, {"kpis", "--data", "@D/no-such-store"},
     {"kpis", "--data", "@D/store", "--from", "2026-02-01", "--to", "2026-01-01"}},
    {"compact", {"compact", "--data", "@D/store", "--out", "@D/compacted"}, {"compact", "--data", "@D/no-such-store"},
     {"compact", "--data"}},
    {"train", {"train", "--clv-only", "--quiet", "--out", "@D/m.json", "@D/shop.jsonl"},
     {"train", "--quiet", "--cutoff", "2026-01-01", "--out", "@D/m2.json", "@D/shop.jsonl"}, /* no history before it */
     {"train", "@D/shop.jsonl"}},
    {"keygen", {"keygen", "--out", "@D/k"}, {"keygen", "--out", "@D/k"}, /* exists: not overwritten */
     {"keygen"}},
    {"audience", {"audience", "add", "--connect", "@EP", "buyers", "purchase_count >= 1"},
     {"audience", "add", "--connect", "@EP", "bad", "purchase_count >>= 1"}, /* the column on stderr */
     {"audience", "add", "--connect", "@EP", "buyers"}},
    {"triggers", {"triggers", "--connect", "@EP"}, {"triggers", "--connect", "@X", "--timeout", "300"},
     {"triggers", "--data", "@D/store", "--follow"}},
    {"cluster", {"cluster", "--help"}, {"cluster", "status", "--nats", "nats://127.0.0.1:1", "--wait", "0"},
     {"cluster"}},
    {"bench", {"bench", "--spawn", "--customers", "200", "--requests", "100", "--warmup", "0", "--quiet"},
     {"bench", "--connect", "@X", "--requests", "5", "--warmup", "0", "--timeout", "200", "--quiet"},
     {"bench", "--workload", "no-such-workload"}},
};

static int run_row(const char *const *row, const char *dir, const char *ep, const char *dead, char *e, size_t ecap)
{
    static char o[1 << 18];
    static char words[14][700];
    const char *args[16];
    int n = 0;
    for (; row[n] && n < 14; n++) {
        const char *w = row[n];
        if (strcmp(w, "@EP") == 0)
            args[n] = ep;
        else if (strcmp(w, "@X") == 0)
            args[n] = dead;
        else if (strncmp(w, "@D", 2) == 0) {
            snprintf(words[n], sizeof words[n], "%s%s", dir, w + 2);
            args[n] = words[n];
        } else
            args[n] = w;
    }
    args[n] = NULL;
    return tu_run_cli_split(o, sizeof o, e, ecap, args);
}

START_TEST(every_subcommand_exits_as_documented)
{
    static char e[1 << 16];
    char dir[512], sdir[600], ep[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(sdir, sizeof sdir, "%s/serve", dir);
    mkdir(sdir, 0700);
    pid_t pid = tu_spawn_serve(sdir, ep, sizeof ep, NULL);
    /* every command main.c lists has a row */
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    int listed = 0;
    for (const char *l = strstr(out, "commands:\n"); l && (l = strchr(l, '\n')) != NULL; l++) {
        char name[32];
        if (sscanf(l + 1, "  %31s", name) != 1 || l[1] != ' ')
            continue;
        int found = 0;
        for (size_t i = 0; i < sizeof exit_rows / sizeof exit_rows[0]; i++)
            found |= strcmp(exit_rows[i].cmd, name) == 0;
        ck_assert_msg(found, "no exit-code row for `leadscore %s`", name);
        listed++;
    }
    ck_assert_int_eq(listed, (int)(sizeof exit_rows / sizeof exit_rows[0]));
    for (size_t i = 0; i < sizeof exit_rows / sizeof exit_rows[0]; i++) {
        const exit_row *r = &exit_rows[i];
        char prefix[64];
        snprintf(prefix, sizeof prefix, "leadscore %s: ", r->cmd);
        int rc = run_row(r->ok, dir, ep, "tcp://127.0.0.1:1", e, sizeof e);
        ck_assert_msg(rc == 0, "%s: exit %d on success (%s)", r->cmd, rc, e);
        rc = run_row(r->fail, dir, ep, "tcp://127.0.0.1:1", e, sizeof e);
        ck_assert_msg(rc == 1, "%s: exit %d on a failure, want 1 (%s)", r->cmd, rc, e);
        ck_assert_msg(strstr(e, prefix) != NULL, "%s: the failure is not explained on stderr: %s", r->cmd, e);
        rc = run_row(r->usage, dir, ep, "tcp://127.0.0.1:1", e, sizeof e);
        ck_assert_msg(rc == 2, "%s: exit %d on a usage error, want 2 (%s)", r->cmd, rc, e);
        ck_assert_msg(e[0] != '\0', "%s: the usage error says nothing", r->cmd);
        const char *unknown[] = {r->cmd, "--no-such-option", NULL};
        rc = tu_run_cli_split(out, sizeof out, e, sizeof e, unknown);
        ck_assert_msg(rc == 2, "%s: exit %d on an unknown option, want 2", r->cmd, rc);
        ck_assert_msg(e[0] != '\0', "%s: the unknown option is not reported", r->cmd);
        /* the success row with its first long option cut short is no
         * longer that option (getopt's unique prefixes are not taken) */
        const char *cut[14];
        char shorter[64] = "";
        for (int k = 0; k < 14; k++) {
            cut[k] = r->ok[k];
            if (!shorter[0] && r->ok[k] && strncmp(r->ok[k], "--", 2) == 0 && strlen(r->ok[k]) > 3) {
                snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(r->ok[k]) - 1, r->ok[k]);
                cut[k] = shorter;
            }
        }
        ck_assert_msg(shorter[0], "%s: no long option in the success row", r->cmd);
        rc = run_row(cut, dir, ep, "tcp://127.0.0.1:1", e, sizeof e);
        ck_assert_msg(rc == 2 && e[0], "%s: exit %d with %s, want 2 (%s)", r->cmd, rc, shorter, e);
    }
    ck_assert_int_eq(tu_kill_wait(pid, SIGTERM), 0);
    tu_rmtree(dir);
}
END_TEST

/* gen's window: by default it ends today (00:00 UTC) so no event lies in
 * the future; --end and --start give the same bytes for the same window;
 * --start, --end and --days must agree. */
START_TEST(gen_window_ends_today_by_default)
{
    char dir[512], a[600], b[600], c[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.jsonl", dir);
    snprintf(b, sizeof b, "%s/b.jsonl", dir);
    snprintf(c, sizeof c, "%s/c.jsonl", dir);
    int64_t now = (int64_t)time(NULL) * 1000, today = now - now % 86400000;
    const char *def[] = {"gen", "--customers", "200", "--days", "10", "--out", a, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, def), 0);
    FILE *f = fopen(a, "r");
    char line[4096];
    long long lo = INT64_MAX, hi = 0;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *ts = strstr(line, "\"ts\":");
        ck_assert_ptr_nonnull(ts);
        long long t = atoll(ts + 5);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
        n++;
    }
    fclose(f);
    ck_assert_int_gt(n, 100);
    ck_assert_msg(hi < today + 86400000 && hi < now + 1000, "an event in the future: %lld (now %lld)", hi, (long long)now);
    ck_assert_int_ge(lo, today - 10 * 86400000LL - 86400000LL); /* the day may turn during the test */
    ck_assert_int_ge(hi, today - 3 * 86400000LL);                /* and it reaches the recent days */
    const char *by_end[] = {"gen", "--customers", "200", "--days", "10", "--end", "2026-03-11", "--out", a, NULL};
    const char *by_start[] = {"gen", "--customers", "200", "--days", "10", "--start", "2026-03-01", "--out", b, NULL};
    const char *both[] = {"gen", "--customers", "200", "--start", "2026-03-01", "--end", "2026-03-11", "--out", c, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, by_end), 0);
    ck_assert_ptr_nonnull(strstr(out, "2026-03-01T00:00:00Z to 2026-03-11T00:00:00Z"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, by_start), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, both), 0);
    char cmp[2600];
    snprintf(cmp, sizeof cmp, "cmp -s %s %s && cmp -s %s %s", a, b, a, c);
    ck_assert_int_eq(system(cmp), 0);
    const char *help[] = {"gen", "--help", NULL}; /* which --help shows as allowed together */
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "[--start TIME] [--end TIME]"));
    const char *disagree[] = {"gen", "--days", "5", "--start", "2026-03-01", "--end", "2026-03-11", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, disagree), 2);
    ck_assert_ptr_nonnull(strstr(out, "--days"));
    const char *backwards[] = {"gen", "--start", "2026-03-11", "--end", "2026-03-01", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, backwards), 2);
    /* a truth cutoff outside the stream, or no one to simulate, is said
     * plainly (the cutoff was accepted, the count "out of range") */
    const char *late_cut[] = {"gen", "--start", "2026-03-01", "--days", "10", "--cutoff", "2030-01-01", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, late_cut), 2);
    ck_assert_ptr_nonnull(strstr(out, "--cutoff must fall inside the stream"));
    const char *nobody[] = {"gen", "--customers", "0", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nobody), 2);
    ck_assert_ptr_nonnull(strstr(out, "--customers: \"0\" is not a count from 1 to 100000000"));
    tu_rmtree(dir);
}
END_TEST

/* A pipe whose reader is gone: a write to it fails with EPIPE. */
static int closed_pipe(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    return p[1];
}

/* Output that does not all reach standard output is exit 1 with the
 * reason, for --help, --version and --sample-config as for reports (they
 * once exited 0 on a full disk), and a reader gone is said as "Broken
 * pipe" by gen and rescore (once "write failed (disk full?)" and no reason). */
START_TEST(lost_output_is_a_failure_with_its_reason)
{
    static char e[1 << 14];
    char dir[512], shop[600], store_dir[600];
    if (access("/dev/full", W_OK) == 0) {
        int full = open("/dev/full", O_WRONLY);
        ck_assert_int_ge(full, 0);
        const char *const tops[][3] = {{"--help"}, {"help"}, {"-h"}, {"--version"}, {"version"}};
        for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
            ck_assert_int_eq(tu_run_cli_output_to(full, e, sizeof e, tops[i]), 1);
            ck_assert_msg(strstr(e, "leadscore: cannot write standard output: No space left on device"), "%s: %s",
                          tops[i][0], e);
        }
        const char *cmds[] = {"serve", "track", "score", "recommend", "profile", "ping", "stats", "model", "reload",
                              "gen", "alias", "forget", "compact", "import", "train", "rescore", "kpis", "bench",
                              "keygen", "audience", "triggers", "cluster"};
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            const char *args[] = {cmds[i], "--help", NULL};
            char want[128];
            snprintf(want, sizeof want, "leadscore %s: cannot write standard output: No space left on device", cmds[i]);
            int rc = tu_run_cli_output_to(full, e, sizeof e, args);
            ck_assert_msg(rc == 1 && strstr(e, want), "%s --help: exit %d: %s", cmds[i], rc, e);
        }
        const char *sample[] = {"serve", "--sample-config", NULL};
        ck_assert_int_eq(tu_run_cli_output_to(full, e, sizeof e, sample), 1);
        ck_assert_ptr_nonnull(strstr(e, "leadscore serve: cannot write standard output: No space left on device"));
        close(full);
    }
    int gone = closed_pipe();
    const char *top[] = {"--help", NULL};
    ck_assert_int_eq(tu_run_cli_output_to(gone, e, sizeof e, top), 1); /* not death by SIGPIPE */
    ck_assert_ptr_nonnull(strstr(e, "Broken pipe"));
    const char *gen_out[] = {"gen", "--customers", "2000", "--days", "10", "--end", "2026-03-01", NULL};
    ck_assert_int_eq(tu_run_cli_output_to(gone, e, sizeof e, gen_out), 1);
    ck_assert_msg(strstr(e, "leadscore gen: cannot write standard output: Broken pipe"), "%s", e);
    ck_assert_int_eq(chdir(LS_SOURCE_DIR), 0); /* rescore's model, as ctest runs it */
    tu_tempdir(dir, sizeof dir);
    snprintf(shop, sizeof shop, "%s/shop.jsonl", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    const char *gen[] = {"gen", "--customers", "100", "--days", "30", "--end", "2026-03-01", "--out", shop, NULL};
    const char *imp[] = {"import", "--data", store_dir, "--no-sync", "--quiet", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, imp), 0);
    const char *rescore[] = {"rescore", "--data", store_dir, "--quiet", NULL};
    ck_assert_int_eq(tu_run_cli_output_to(gone, e, sizeof e, rescore), 1);
    ck_assert_msg(strstr(e, "leadscore rescore: writing the rows failed: Broken pipe"), "%s", e);
    close(gone);
    tu_rmtree(dir);
}
END_TEST

/* Only full option names: an abbreviation is an unknown option (exit 2),
 * never another option (`score --k 3` was once read as --key, --n as
 * --now, --ex as --explain, `serve --sample` as --sample-config). */
START_TEST(abbreviated_options_are_unknown)
{
    static char e[1 << 14];
    const char *dead = "tcp://127.0.0.1:1";
    const char *k[] = {"score", "--k", "3", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, k), 2);
    ck_assert_msg(strstr(e, "leadscore score: unknown option \"--k\""), "%s", e);
    const char *n[] = {"score", "--connect", dead, "--timeout", "300", "--n", "1700000000", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, n), 2);
    ck_assert_msg(strstr(e, "unknown option \"--n\""), "%s", e);
    const char *ex[] = {"score", "--connect", dead, "--timeout", "300", "--ex", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, ex), 2);
    ck_assert_msg(strstr(e, "unknown option \"--ex\""), "%s", e);
    const char *eq[] = {"score", "--conn=tcp://127.0.0.1:1", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, eq), 2);
    ck_assert_msg(strstr(e, "unknown option \"--conn=tcp://127.0.0.1:1\""), "%s", e);
    const char *sample[] = {"serve", "--sample", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, sample), 2);
    ck_assert_msg(strstr(e, "leadscore serve: unknown option \"--sample\""), "%s", e);
    const char *dat[] = {"serve", "--dat", NULL}; /* at the end, without a value */
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, dat), 2);
    ck_assert_msg(strstr(e, "leadscore serve: unknown option \"--dat\""), "%s", e);
    const char *flag_value[] = {"score", "--json=yes", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, flag_value), 2);
    ck_assert_msg(strstr(e, "leadscore score: --json takes no value"), "%s", e);
    /* full names, either spelling of the value, still are the options */
    const char *full[] = {"score", "--connect=tcp://127.0.0.1:1", "--timeout", "300", "--now", "1700000000",
                          "--explain", "alice", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, full), 1); /* nobody listens */
    ck_assert_msg(strstr(e, "is `leadscore serve` running"), "%s", e);
    const char *missing[] = {"serve", "--data", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, missing), 2);
    ck_assert_msg(strstr(e, "leadscore serve: --data takes a value"), "%s", e);
}
END_TEST

/* A flag's abbreviation given "=value" is an unknown option too, not the
 * flag refusing a value (`score --ex=1` once said "--explain takes no
 * value"); serve says the same as every command for its own flags
 * (`--help=x` once said "unknown option -h", `--sample-config=x`
 * "unknown option -s"), and a setting that takes the next option as its
 * value is refused for that value, not for the word left behind. */
START_TEST(flags_given_values_and_swallowed_options)
{
    static char e[1 << 14];
    static const struct {
        const char *args[6];
        const char *said;
    } rows[] = {
        {{"score", "alice", "--ex=1"}, "leadscore score: unknown option \"--ex=1\""},
        {{"score", "alice", "--explain=1"}, "leadscore score: --explain takes no value"},
        {{"kpis", "--js=1"}, "leadscore kpis: unknown option \"--js=1\""},
        {{"keygen", "--out", "k", "--forc=1"}, "leadscore keygen: unknown option \"--forc=1\""},
        {{"triggers", "--fol=yes"}, "leadscore triggers: unknown option \"--fol=yes\""},
        {{"serve", "--help=x"}, "leadscore serve: --help takes no value"},
        {{"serve", "--sample-config=x"}, "leadscore serve: --sample-config takes no value"},
        {{"serve", "--sample=1"}, "leadscore serve: unknown option \"--sample=1\""},
        {{"serve", "-s"}, "leadscore serve: unknown option -s"},
        {{"serve", "--sync", "--data", "x"}, "leadscore serve: --sync: \"--data\" is not on or off"},
        {{"serve", "--triggers", "--workers", "3"}, "leadscore serve: --triggers: \"--workers\" is not on or off"},
        {{"serve", "--data", "/nonexistent/never-made", "extra"}, "leadscore serve: unexpected argument \"extra\""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, rows[i].args), 2);
        ck_assert_msg(strstr(e, rows[i].said), "%s %s: %s", rows[i].args[0], rows[i].args[1], e);
    }
}
END_TEST

/* rescore's --where errors name the option once (`--where tier` once said
 * `--where: --where "tier" is not FIELD=VALUE`). */
START_TEST(rescore_where_errors_name_the_option_once)
{
    static char e[1 << 14];
    static const struct {
        const char *where, *said;
    } rows[] = {
        {"tier", "leadscore rescore: --where: \"tier\" is not FIELD=VALUE\n"},
        {"tier=", "leadscore rescore: --where: tier: give a value\n"},
        {"tier=x", "leadscore rescore: --where: tier: \"x\" is not one of hot, warm, cold\n"},
        {"segment=a,,b", "leadscore rescore: --where: segment: empty value in \"a,,b\"\n"},
        {"colour=red", "leadscore rescore: --where: unknown field \"colour\""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *args[] = {"rescore", "--data", "/nonexistent/never-made", "--where", rows[i].where, NULL};
        ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, args), 2);
        ck_assert_msg(strstr(e, rows[i].said), "--where %s: %s", rows[i].where, e);
    }
}
END_TEST

/* Each cluster action takes only its own options (`status --partitions 3`
 * was silently accepted), and `move` says what it is missing (it said only
 * "usage: cluster init|status|move").  Nothing reaches NATS: each is a
 * usage error first. */
START_TEST(cluster_actions_take_their_own_options)
{
    static char e[1 << 14];
    const char *version[] = {"--version", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, version), 0);
    if (strstr(out, "no libnats"))
        return; /* a build without cluster mode: `cluster` only says so */
    const char *dead = "nats://127.0.0.1:1";
    static const struct {
        const char *args[12];
        const char *said;
    } rows[] = {
        {{"cluster", "status", "--partitions", "3", "--nats", "nats://127.0.0.1:1", "--wait", "200ms"},
         "leadscore cluster: unknown option \"--partitions\""},
        {{"cluster", "status", "--nats", "nats://127.0.0.1:1", "--wait", "200ms", "--nodes", "a"},
         "unknown option \"--nodes\""},
        {{"cluster", "status", "--replicas", "2", "--nats", "nats://127.0.0.1:1"}, "unknown option \"--replicas\""},
        {{"cluster", "status", "--max-age", "1d", "--nats", "nats://127.0.0.1:1"}, "unknown option \"--max-age\""},
        {{"cluster", "move", "--partitions", "3", "--nats", "nats://127.0.0.1:1", "0", "n1"},
         "unknown option \"--partitions\""},
        {{"cluster", "init", "--json", "--nats", "nats://127.0.0.1:1", "--nodes", "a"}, "unknown option \"--json\""},
        {{"cluster", "move", "--nats", "nats://127.0.0.1:1", "3"}, "leadscore cluster: cluster move needs PARTITION NODE"},
        {{"cluster", "move", "--nats", "nats://127.0.0.1:1", "3", "n1", "n2"}, "cluster move needs PARTITION NODE"},
        {{"cluster", "status", "--nats", "nats://127.0.0.1:1", "extra"}, "cluster status takes no operand"},
        {{"cluster", "fly", "--nats", "nats://127.0.0.1:1"}, "unknown action \"fly\""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, rows[i].args), 2);
        ck_assert_msg(strstr(e, rows[i].said), "row %zu: %s", i, e);
    }
    /* each action's own options still are its own */
    const char *status[] = {"cluster", "status", "--nats", dead, "--cluster", "c1", "--json", "--wait", "0", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, status), 1); /* no NATS there */
    const char *move[] = {"cluster", "move", "--nats", dead, "--wait", "0", "3", "n1", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, move), 1);
    const char *init_help[] = {"cluster", "init", "--help", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, init_help), 0);
    ck_assert_ptr_nonnull(strstr(out, "--max-age"));
    ck_assert_ptr_null(strstr(out, "--json"));
}
END_TEST

/* track reads price and value as import reads a row's: `value=0x10` was
 * sent as 16 and `value=' 5'` as 5, which import refuses.  A usage error
 * before anything is sent (nobody listens at the endpoint). */
START_TEST(track_reads_money_as_import_does)
{
    static char e[1 << 14];
    static const struct {
        const char *field, *said;
    } rows[] = {
        {"value=0x10", "leadscore track: value: \"0x10\" is not a number"},
        {"value= 5", "leadscore track: value: \" 5\" is not a number"},
        {"price=5 ", "leadscore track: price: \"5 \" is not a number"},
        {"price=inf", "leadscore track: price: \"inf\" is not a number"},
        {"value=nan", "leadscore track: value: \"nan\" is not a number"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *args[] = {"track", "--connect", "tcp://127.0.0.1:1", "--timeout", "200", "alice", "purchase",
                              rows[i].field, NULL};
        ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, args), 2);
        ck_assert_msg(strstr(e, rows[i].said), "%s: %s", rows[i].field, e);
    }
    /* the forms import takes still go (and fail only for want of a server) */
    const char *fine[] = {"track", "--connect", "tcp://127.0.0.1:1", "--timeout", "200", "alice", "purchase",
                          "value=1e3", "price=-2.5", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, fine), 1);
}
END_TEST

/* `help CMD` is CMD's help (it printed the general list), `--version`
 * takes no argument (it ignored one), `gen --truth -` is standard output
 * as `--out -` is (it made a file named "-"), and `audience export --out -`
 * says it wrote to standard output (it said "to -"). */
START_TEST(help_version_and_dash_outputs)
{
    static char e[1 << 14];
    const char *help_score[] = {"help", "score", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, help_score), 0);
    ck_assert_msg(strstr(out, "usage: leadscore score ") && !strstr(out, "commands:"), "%s", out);
    const char *dash_help[] = {"--help", "kpis", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, dash_help), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: leadscore kpis"));
    const char *help_fly[] = {"help", "fly", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, help_fly), 2);
    ck_assert_ptr_nonnull(strstr(e, "unknown command \"fly\""));
    const char *help_two[] = {"help", "score", "kpis", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, help_two), 2);
    const char *version_extra[] = {"--version", "extra", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, version_extra), 2);
    ck_assert_msg(strstr(e, "leadscore: --version takes no argument, not \"extra\""), "%s", e);
    ck_assert_str_eq(out, "");

    char dir[512], ev[600], dash[600], store_dir[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(ev, sizeof ev, "%s/shop.jsonl", dir);
    snprintf(dash, sizeof dash, "%s/-", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store_dir", dir);
    ck_assert_int_eq(chdir(dir), 0); /* a file named "-" would land here */
    const char *truth_out[] = {"gen", "--customers", "30", "--days", "60", "--out", ev, "--truth", "-", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, truth_out), 0);
    ck_assert_msg(strncmp(out, "customer,", 9) == 0, "the truth is not on standard output: %.200s", out);
    ck_assert_int_eq(access(dash, F_OK), -1);
    const char *both[] = {"gen", "--customers", "30", "--days", "60", "--out", "-", "--truth", "-", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, both), 2);
    ck_assert_msg(strstr(e, "cannot both go to standard output"), "%s", e);
    const char *both_default[] = {"gen", "--customers", "30", "--days", "60", "--truth", "-", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, both_default), 2);
    ck_assert_int_eq(access(dash, F_OK), -1);

    const char *imp[] = {"import", "--data", store_dir, "--no-sync", "--quiet", ev, NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, imp), 0);
    const char *add[] = {"audience", "add", "--data", store_dir, "everyone", "purchase_count >= 0", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, add), 0);
    const char *export[] = {"audience", "export", "--data", store_dir, "everyone", "--out", "-", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, e, sizeof e, export), 0);
    ck_assert_ptr_nonnull(strstr(out, "customer\n"));
    ck_assert_msg(strstr(e, "of audience everyone to standard output\n"), "%s", e);
    ck_assert_int_eq(access(dash, F_OK), -1);
    ck_assert_int_eq(chdir("/"), 0);
    tu_rmtree(dir);
}
END_TEST

static void read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

START_TEST(keygen_keeps_an_existing_key_without_force)
{
    char dir[512], prefix[600], key[700], pub[700], k1[256], k2[256], p1[256];
    tu_tempdir(dir, sizeof dir);
    snprintf(prefix, sizeof prefix, "%s/server", dir);
    snprintf(key, sizeof key, "%s.key", prefix);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    const char *gen[] = {"keygen", "--out", prefix, NULL}, *force[] = {"keygen", "--out", prefix, "--force", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 0);
    read_small(key, k1, sizeof k1);
    read_small(pub, p1, sizeof p1);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 1);
    ck_assert_ptr_nonnull(strstr(out, "leadscore keygen: "));
    ck_assert_ptr_nonnull(strstr(out, "--force"));
    read_small(key, k2, sizeof k2);
    ck_assert_str_eq(k1, k2);
    unlink(key); /* only the public half left: still refused */
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 1);
    read_small(pub, k2, sizeof k2);
    ck_assert_str_eq(p1, k2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, force), 0);
    read_small(key, k2, sizeof k2);
    ck_assert_str_ne(k1, k2);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    tu_rmtree(dir);
}
END_TEST

/* gen and train write their files whole or not at all: a run that fails
 * leaves no partial file, no temporary one, and an old file as it was. */
static int temporaries_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* An in-place compact swaps the store's files: it is refused while
 * another process has the store open (a read-only job: here this test
 * process), leaving the store as it was; once alone it swaps, keeps every
 * customer and removes the old lock.mdb (whose transaction count belongs
 * to the old file). A directory without a store is said to be one, and
 * no leadscore.lock is left in it. */
static void assert_compact_waits_for_readers(const char *store_dir, const char *dir)
{
    char text[4096], err[256], data[800], lockmdb[800], empty[700], lockfile[760];
    struct stat before, after;
    store *s;
    store_options ro = {.read_only = 1};
    store_stats st0, st1;
    snprintf(data, sizeof data, "%s/data.mdb", store_dir);
    snprintf(lockmdb, sizeof lockmdb, "%s/lock.mdb", store_dir);
    ck_assert_int_eq(store_open(&s, store_dir, &ro, NULL, err, sizeof err), LS_OK);
    store_stat(s, &st0);
    ck_assert_int_gt(st0.customers, 0);
    ck_assert_int_eq(stat(data, &before), 0);
    const char *compact[] = {"compact", "--data", store_dir, NULL};
    ck_assert_int_eq(tu_run_cli(text, sizeof text, compact), 1);
    char pid[40];
    snprintf(pid, sizeof pid, "open in process %ld", (long)getpid());
    ck_assert_msg(strstr(text, pid), "%s", text);
    ck_assert_int_eq(stat(data, &after), 0);
    ck_assert_int_eq(after.st_ino, before.st_ino); /* not swapped */
    store_stat(s, &st1);
    ck_assert_int_eq(st1.customers, st0.customers);
    store_close(&s);
    ck_assert_int_eq(tu_run_cli(text, sizeof text, compact), 0);
    ck_assert_int_eq(stat(data, &after), 0);
    ck_assert_int_ne(after.st_ino, before.st_ino); /* swapped */
    ck_assert_int_ne(stat(lockmdb, &after), 0);     /* made anew by the next opener */
    ck_assert_int_eq(store_open(&s, store_dir, &ro, NULL, err, sizeof err), LS_OK);
    store_stat(s, &st1);
    ck_assert_int_eq(st1.customers, st0.customers);
    store_close(&s);
    snprintf(empty, sizeof empty, "%s/no-store", dir);
    snprintf(lockfile, sizeof lockfile, "%s/leadscore.lock", empty);
    ck_assert_int_eq(mkdir(empty, 0750), 0);
    const char *compact_empty[] = {"compact", "--data", empty, NULL};
    ck_assert_int_eq(tu_run_cli(text, sizeof text, compact_empty), 1);
    ck_assert_msg(strstr(text, "holds no leadscore store"), "%s", text);
    ck_assert_int_ne(stat(lockfile, &after), 0);
}

START_TEST(failed_writes_leave_files_as_they_were)
{
    char dir[512], shop[600], truth[600], model[600], text[256], longname[80];
    struct stat st;
    tu_tempdir(dir, sizeof dir);
    snprintf(shop, sizeof shop, "%s/shop.jsonl", dir);
    snprintf(truth, sizeof truth, "%s/missing-dir/truth.csv", dir);
    snprintf(model, sizeof model, "%s/model.json", dir);
    /* a truth file that cannot be written: no events file either */
    const char *gen_bad[] = {"gen", "--customers", "300", "--out", shop, "--truth", truth, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen_bad), 1);
    ck_assert_ptr_nonnull(strstr(out, "missing-dir/truth.csv"));
    ck_assert_int_ne(stat(shop, &st), 0);
    /* both outputs in one file: refused before anything is written */
    const char *gen_same[] = {"gen", "--customers", "300", "--out", shop, "--truth", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen_same), 2);
    ck_assert_int_ne(stat(shop, &st), 0);
    const char *gen_ok[] = {"gen", "--customers", "300", "--days", "90", "--out", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen_ok), 0);
    /* train: a name the model file cannot hold is a usage error before the
     * training, and the model file already there stays as it was */
    FILE *f = fopen(model, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"kept\": true}", f);
    fclose(f);
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *train_long[] = {"train", "--quiet", "--force", "--name", longname, "--out", model, shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, train_long), 2);
    read_small(model, text, sizeof text);
    ck_assert_str_eq(text, "{\"kept\": true}");
    /* a run that succeeds replaces it */
    const char *train_ok[] = {"train", "--quiet", "--force", "--out", model, shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, train_ok), 0);
    read_small(model, text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "\"name\": \"trained\""));
    ck_assert_int_eq(temporaries_in(dir), 0);
    /* compact: a copy an interrupted run left in DIR/compact.tmp does not
     * block the next; a directory that holds a store is not a target */
    char store_dir[700], stale[760], stale_file[800];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    snprintf(stale, sizeof stale, "%s/compact.tmp", store_dir);
    snprintf(stale_file, sizeof stale_file, "%s/data.mdb", stale);
    const char *import[] = {"import", "--data", store_dir, "--no-sync", "--quiet", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, import), 0);
    ck_assert_int_eq(mkdir(stale, 0750), 0);
    f = fopen(stale_file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("half a copy", f);
    fclose(f);
    const char *compact[] = {"compact", "--data", store_dir, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, compact), 0);
    ck_assert_int_ne(stat(stale, &st), 0);
    char compacted[760];
    snprintf(compacted, sizeof compacted, "%s/data.mdb", store_dir);
    ck_assert_int_eq(stat(compacted, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640); /* the store's mode, not the umask's 0644 */
    const char *compact_onto[] = {"compact", "--data", store_dir, "--out", store_dir, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, compact_onto), 1);
    ck_assert_ptr_nonnull(strstr(out, "already holds a store"));
    assert_compact_waits_for_readers(store_dir, dir);
    /* a file written again keeps its mode: a private export stays private */
    char private_out[700];
    snprintf(private_out, sizeof private_out, "%s/private.jsonl", dir);
    f = fopen(private_out, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(chmod(private_out, 0600), 0);
    const char *regen[] = {"gen", "--customers", "20", "--days", "5", "--out", private_out, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, regen), 0);
    ck_assert_int_eq(stat(private_out, &st), 0);
    ck_assert_int_gt(st.st_size, 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* output that does not reach standard output (a full disk) is a
     * failure, said on stderr, not exit 0 */
    if (access("/dev/full", W_OK) == 0) {
        char cmd[1400], err_path[700];
        snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
        snprintf(cmd, sizeof cmd, "'%s' gen --customers 50 --days 10 > /dev/full 2> '%s'", LEADSCORE_BIN, err_path);
        int wst = system(cmd);
        ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 1);
        snprintf(cmd, sizeof cmd, "'%s' train --help > /dev/full 2> '%s'", LEADSCORE_BIN, err_path);
        wst = system(cmd);
        ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 1);
        read_small(err_path, text, sizeof text);
        ck_assert_msg(strstr(text, "leadscore train: cannot write standard output"), "%s", text);
    }
    tu_rmtree(dir);
}
END_TEST

/* rescore's summary names the model and the file it came from: --model,
 * else models/default.json of the working directory (as serve would). */
START_TEST(rescore_says_which_model_it_used)
{
    static char o[1 << 16], e[1 << 16];
    char dir[512], shop[600], store_dir[600], handset[600], want[800];
    ck_assert_int_eq(chdir(LS_SOURCE_DIR), 0); /* as ctest runs it */
    tu_tempdir(dir, sizeof dir);
    snprintf(shop, sizeof shop, "%s/shop.jsonl", dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    const char *gen[] = {"gen", "--customers", "100", "--days", "30", "--end", "2026-03-01", "--out", shop, NULL};
    const char *imp[] = {"import", "--data", store_dir, "--no-sync", "--quiet", shop, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, imp), 0);
    const char *def[] = {"rescore", "--data", store_dir, "--out", "/dev/null", NULL};
    ck_assert_int_eq(tu_run_cli_split(o, sizeof o, e, sizeof e, def), 0); /* the tests run in the source tree */
    char *real = realpath(LS_SOURCE_DIR "/models/default.json", NULL);
    snprintf(want, sizeof want, "from %s\n", real);
    free(real);
    ck_assert_msg(strstr(e, "  model          default@") && strstr(e, want), "%s", e);
    snprintf(handset, sizeof handset, "%s/models/handset.json", LS_SOURCE_DIR);
    const char *given[] = {"rescore", "--data", store_dir, "--model", handset, "--out", "/dev/null", NULL};
    int rc = tu_run_cli_split(o, sizeof o, e, sizeof e, given);
    if (rc == 0) { /* (the handset model's half-lives may differ from the store's: then exit 1) */
        real = realpath(handset, NULL);
        snprintf(want, sizeof want, "from %s\n", real);
        free(real);
        ck_assert_msg(strstr(e, want), "%s", e);
    } else {
        ck_assert_int_eq(rc, 1);
    }
    tu_rmtree(dir);
}
END_TEST

/* jsonout's pieces: invalid UTF-8 becomes one U+FFFD per bad byte (and the
 * result is strict JSON), and the printf-free number writer of rescore's
 * hot loop gives jansson's very bytes (2 million values and the edges). */
START_TEST(jsonout_strings_and_numbers)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } strs[] = {
        {"plain", 5, "\"plain\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"a\xff" "b", 3, "\"a\xef\xbf\xbd" "b\""},
        {"\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* overlong '/' */
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* past U+10FFFF */
        {"end\xe2\x82", 5, "\"end\xef\xbf\xbd\xef\xbf\xbd\""},           /* cut short */
        {"q\"b\\n\x01\n", 7, "\"q\\\"b\\\\n\\u0001\\n\""},
        {"nul\0x", 5, "\"nul\\u0000x\""},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        json_t *j = jsonout_string(strs[i].in, strs[i].n);
        ck_assert_ptr_nonnull(j);
        char *text = json_dumps(j, JSONOUT_FLAGS | JSON_ENCODE_ANY);
        ck_assert_str_eq(text, strs[i].want);
        json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        ck_assert_ptr_nonnull(back);
        json_decref(back);
        free(text);
        json_decref(j);
    }
    json_t *num = json_real(0);
    char mine[JSONOUT_REAL_MAX], theirs[64];
    uint64_t st = 88172645463325252ULL;
    int fast = 0;
    static const double edges[] = {1e-4, 0.0001000000000000001, 9.999999999999999e9, 1.0, 0.1, 0.5, 2.5, 1e9,
                                   0.30000000000000004, 1234.5678901234567, 9.9999999999999995e-5, 1e10, 0.0,
                                   -0.0, 5e-324, 1.7976931348623157e308};
    for (int i = 0; i < 2000000 + (int)(sizeof edges / sizeof edges[0]); i++) {
        double v;
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        if (i >= 2000000) {
            v = edges[i - 2000000];
        } else if (i % 3 == 0) { /* log-uniform over 1e-5 .. 1e11 */
            v = 1e-5 * exp((double)(st >> 11) / 9007199254740992.0 * log(1e16));
        } else if (i % 3 == 1) { /* any bits with an exponent around the range */
            uint64_t bits = (st & 0x000fffffffffffffULL) | ((uint64_t)(1023 - 16 + (st >> 52) % 52) << 52);
            memcpy(&v, &bits, sizeof v);
        } else { /* short decimals */
            v = (double)(st % 100000) / pow(10, (double)((st >> 20) % 8));
        }
        if (st >> 63)
            v = -v;
        size_t n = jsonout_real_text(mine, v);
        if (!n)
            continue;
        fast++;
        json_real_set(num, v);
        size_t m = json_dumpb(num, theirs, sizeof theirs - 1, JSONOUT_FLAGS | JSON_ENCODE_ANY);
        theirs[m] = '\0';
        ck_assert_msg(m == n && memcmp(mine, theirs, n) == 0, "%.17g: %s, jansson %s", v, mine, theirs);
        ck_assert(strtod(mine, NULL) == v); /* and it round-trips */
    }
    ck_assert_int_gt(fast, 1500000);
    json_decref(num);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("commands");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, help_and_version_exit_zero);
    tcase_add_test(tc, usage_errors_exit_two);
    tcase_add_test(tc, times_before_1970_are_usage_errors);
    tcase_add_test(tc, gen_truth_needs_a_stream_longer_than_the_horizon);
    tcase_add_test(tc, no_server_is_a_clear_failure);
    tcase_add_test(tc, track_score_profile_against_a_server);
    tcase_add_test(tc, serve_refuses_a_bad_model_file_clearly);
    tcase_add_test(tc, sighup_reloads_the_model_file);
    tcase_add_test(tc, gen_is_deterministic_and_writes_truth);
    tcase_add_test(tc, forget_then_compact_leaves_no_trace_in_the_file);
    tcase_add_test(tc, json_outputs_parse_strictly);
    tcase_add_test(tc, jsonout_strings_and_numbers);
    tcase_add_test(tc, every_subcommand_exits_as_documented);
    tcase_add_test(tc, gen_window_ends_today_by_default);
    tcase_add_test(tc, keygen_keeps_an_existing_key_without_force);
    tcase_add_test(tc, failed_writes_leave_files_as_they_were);
    tcase_add_test(tc, rescore_says_which_model_it_used);
    tcase_add_test(tc, lost_output_is_a_failure_with_its_reason);
    tcase_add_test(tc, abbreviated_options_are_unknown);
    tcase_add_test(tc, flags_given_values_and_swallowed_options);
    tcase_add_test(tc, rescore_where_errors_name_the_option_once);
    tcase_add_test(tc, cluster_actions_take_their_own_options);
    tcase_add_test(tc, track_reads_money_as_import_does);
    tcase_add_test(tc, help_version_and_dash_outputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
