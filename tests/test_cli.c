/* test_cli.c -- the `leadscore` command line as a user types it: help and
 * usage errors with the documented exit codes, and the one-off request
 * commands against a running server. */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static char out[1 << 16];

START_TEST(help_and_version_exit_zero)
{
    const char *top[] = {"--help", NULL}, *ver[] = {"--version", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, top), 0);
    ck_assert_ptr_nonnull(strstr(out, "serve"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, ver), 0);
    ck_assert_ptr_nonnull(strstr(out, "leadscore 0.1.0"));
    const char *cmds[] = {"serve", "track", "score", "recommend", "profile", "ping", "stats", "model", "reload", "gen", "alias", "forget", "compact", "import", "train", "rescore", "kpis", "bench", "keygen"};
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
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badval), 2);
    ck_assert_ptr_nonnull(strstr(out, "--max-frame"));
    ck_assert_int_eq(tu_run_cli(out, sizeof out, missing), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badfield), 2);
    ck_assert_ptr_nonnull(strstr(out, "price"));
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
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert(json_is_true(json_object_get(j, "known")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "customer")), "alice");
    double s = json_real_value(json_object_get(j, "score"));
    ck_assert(s > 0 && s < 1);
    json_decref(j);
    const char *profile[] = {"profile", "--connect", ep, "alice", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, profile), 0);
    ck_assert_ptr_nonnull(strstr(out, "add_to_cart_count: 1"));
    ck_assert_ptr_nonnull(strstr(out, "first_seen: 1793527200000"));
    const char *bad[] = {"track", "--connect", ep, "alice", "teleport", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, bad), 0); /* the batch is ok; the event is listed as rejected */
    ck_assert_ptr_nonnull(strstr(out, "accepted: 0"));
    ck_assert_ptr_nonnull(strstr(out, "bad_request"));
    const char *unknown_id[] = {"score", "--connect", ep, "nobody", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, unknown_id), 0);
    ck_assert_ptr_nonnull(strstr(out, "known: false"));
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
    snprintf(src, sizeof src, "sed -i 's/\"version\": \"0.1.0\"/\"version\": \"0.2.0\"/' %s", model);
    ck_assert_int_eq(system(src), 0);
    kill(pid, SIGHUP);
    const char *args[] = {"model", "--connect", ep, "--json", NULL};
    int reloaded = 0;
    for (int i = 0; i < 100 && !reloaded; i++) { /* <= 5 s */
        usleep(50000);
        ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
        reloaded = strstr(out, "\"version\":\"0.2.0\"") != NULL;
    }
    ck_assert(reloaded);
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
    const char *one[] = {"gen", "--customers", "300", "--days", "30", "--seed", "7", "--format", "csv",
                         "--out", a, "--truth", t, NULL};
    const char *two[] = {"gen", "--customers", "300", "--days", "30", "--seed", "7", "--format", "csv",
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

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("commands");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, help_and_version_exit_zero);
    tcase_add_test(tc, usage_errors_exit_two);
    tcase_add_test(tc, no_server_is_a_clear_failure);
    tcase_add_test(tc, track_score_profile_against_a_server);
    tcase_add_test(tc, serve_refuses_a_bad_model_file_clearly);
    tcase_add_test(tc, sighup_reloads_the_model_file);
    tcase_add_test(tc, gen_is_deterministic_and_writes_truth);
    tcase_add_test(tc, forget_then_compact_leaves_no_trace_in_the_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
