/* test_metrics.c -- the Prometheus endpoint scraped over HTTP on loopback
 * and parsed: exact counter values after known traffic, histogram
 * consistency, HELP/TYPE for every family, 404 elsewhere, HEAD answered
 * as GET without a body and 405 with Allow for other methods, no retraining
 * AUC series before a retraining, bad --metrics,
 * and scrapes still answered once the process has more than 1,024 files
 * open (no select(): its FD_SETSIZE stops at 1,024); latency buckets from
 * 10 us; the process_* families (memory, CPU, start time, descriptors). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "metrics.h"
#include "testutil.h"

/* Sends `method path` to 127.0.0.1:port; returns the whole reply, headers
 * and body (static), and its status. */
static const char *http_request(int port, const char *method, const char *path, int *status)
{
    static char buf[1 << 20];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    *status = atoi(buf + 9); /* "HTTP/1.x NNN" */
    return buf;
}

/* The body of reply (after the blank line), "" when there is none. */
static const char *body_of(const char *reply)
{
    const char *end = strstr(reply, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* GETs path from 127.0.0.1:port; returns the body (static) and status. */
static const char *http_get(int port, const char *path, int *status)
{
    return body_of(http_request(port, "GET", path, status));
}

/* The value of the sample whose name and labels are exactly `series`, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return atof(line + n + 1);
    return -1;
}

static double wait_for(int port, const char *series, double want)
{
    double v = -1;
    int status;
    for (int i = 0; i < 40 && v != want; i++) { /* <= 4 s: the text is renewed every 250 ms */
        usleep(100000);
        v = sample(http_get(port, "/metrics", &status), series);
    }
    return v;
}

START_TEST(scrape_reports_the_traffic_exactly)
{
    config cfg;
    char dir[512];
    tu_server srv;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    snprintf(cfg.metrics, sizeof cfg.metrics, "127.0.0.1:0");
    tu_server_start(&srv, &cfg);
    int port = server_metrics_port(srv.srv);
    ck_assert_int_gt(port, 0);
    ls_client *c;
    ls_track_result tr;
    ls_client_event evs[3] = {{.customer = "m1", .type = "page_view"},
                              {.customer = "m1", .type = "page_view", .event_id = "dup"},
                              {.customer = "m1", .type = "bogus"}};
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 5000), LS_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK);
    ck_assert_int_eq(ls_client_track(c, evs, 3, &tr), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &evs[1], 1, &tr), LS_OK); /* a duplicate */
    ls_client_close(&c);
    ck_assert_double_eq(wait_for(port, "leadscore_requests_total{op=\"ping\",result=\"ok\"}", 3), 3);
    int status;
    const char *text = http_get(port, "/metrics", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_double_eq(sample(text, "leadscore_requests_total{op=\"track\",result=\"ok\"}"), 2);
    ck_assert_double_eq(sample(text, "leadscore_events_total{result=\"accepted\"}"), 2);
    ck_assert_double_eq(sample(text, "leadscore_events_total{result=\"duplicate\"}"), 1);
    ck_assert_double_eq(sample(text, "leadscore_events_rejected_total{reason=\"bad_request\"}"), 1);
    ck_assert_double_eq(sample(text, "leadscore_customers"), 1);
    /* PULL messages refused whole count as `stats` counts them: one each,
     * under their reason (garbage: bad_request; over --max-frame: too_large) */
    void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(push, srv.pull_endpoint), 0);
    static char big[(1 << 20) + 16];
    memset(big, 0x91, sizeof big);
    ck_assert_int_eq(zmq_send(push, "\xc1garbage", 8, 0), 8);
    ck_assert_int_eq(zmq_send(push, big, sizeof big, 0), (int)sizeof big);
    ck_assert_double_eq(wait_for(port, "leadscore_events_rejected_total{reason=\"too_large\"}", 1), 1);
    ck_assert_double_eq(wait_for(port, "leadscore_events_rejected_total{reason=\"bad_request\"}", 2), 2);
    zmq_close(push);
    zmq_ctx_term(ctx);
    text = http_get(port, "/metrics", &status);
    ck_assert_double_eq(sample(text, "leadscore_request_duration_seconds_count{op=\"ping\"}"), 3);
    ck_assert_double_eq(sample(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"+Inf\"}"), 3);
    ck_assert_double_eq(sample(text, "leadscore_model_info{name=\"handset\",version=\"0.1.0\"}"), 1);
    ck_assert(sample(text, "leadscore_commit_events_count") >= 1);
    ck_assert(sample(text, "leadscore_store_bytes") > 0);
    /* one id claimed ("dup"), held in memory until a sweep (far off for one) */
    ck_assert_double_eq(sample(text, "leadscore_event_ids_unmerged"), 1);
    ck_assert_double_eq(sample(text, "leadscore_event_ids"), 1);
    /* the acknowledged batches were counted out of the queue (0 is exact) */
    ck_assert_double_eq(wait_for(port, "leadscore_events_queued", 0), 0);
    /* every sample line is NAME{labels} VALUE, and every family has HELP and TYPE */
    int families = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "# TYPE ", 7) == 0)
            families++;
        else if (line[0] != '#') {
            char name[256];
            double v;
            ck_assert_msg(sscanf(line, "%255[a-z_]%*[^ ] %lf", name, &v) == 2 || sscanf(line, "%255[a-z_] %lf", name, &v) == 2,
                          "bad line: %.80s", line);
            ck_assert_msg(strncmp(name, "leadscore_", 10) == 0 || strncmp(name, "process_", 8) == 0,
                          "unprefixed metric %s", name);
        }
        if (!strchr(line, '\n'))
            break;
    }
    ck_assert_int_ge(families, 12);
    /* build_info names the build that runs: the commit `leadscore --version`
     * prints ("leadscore X (git DESCRIBE)"), not the one CMake was configured at */
    char version[512], want[600];
    const char *version_args[] = {"--version", NULL};
    ck_assert_int_eq(tu_run_cli(version, sizeof version, version_args), 0);
    const char *git = strstr(version, "(git "), *close = git ? strchr(git, ')') : NULL;
    ck_assert_ptr_nonnull(close);
    snprintf(want, sizeof want, "commit=\"%.*s\"} 1", (int)(close - git - 5), git + 5);
    const char *info = strstr(text, "leadscore_build_info{");
    ck_assert_ptr_nonnull(info);
    ck_assert_msg(strstr(info, want) && strstr(info, want) < strchr(info, '\n'), "%.120s lacks %s", info, want);
    /* the latency buckets start at 10 us */
    const char *first = strstr(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",");
    ck_assert_ptr_nonnull(first);
    const char *want_first = "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"1e-05\"} ";
    ck_assert(strncmp(first, want_first, strlen(want_first)) == 0);
    ck_assert(sample(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"2.5e-05\"}") >= 0);
    ck_assert(sample(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"1e-05\"}") <=
              sample(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"0.0001\"}"));
    ck_assert_double_eq(sample(text, "leadscore_request_duration_seconds_bucket{op=\"ping\",le=\"10\"}"), 3);
    http_get(port, "/nope", &status);
    ck_assert_int_eq(status, 404);
    /* HEAD answers as GET without the body (curl -I, probes); other
     * methods are 405 with Allow */
    const char *head = http_request(port, "HEAD", "/metrics", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strcasestr(head, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", head);
    ck_assert_msg(strstr(head, "\r\n\r\n") != NULL && *body_of(head) == '\0', "%s", head);
    head = http_request(port, "POST", "/metrics", &status);
    ck_assert_int_eq(status, 405);
    ck_assert_msg(strcasestr(head, "Allow: GET, HEAD") != NULL, "%s", head);
    /* the filter of merged event ids was built at the start (an empty
     * table: one step) at its least size, 1 Mi keys -> 2 MiB; a claim of
     * a new id is then answered by it without a lookup */
    ck_assert_double_eq(wait_for(port, "leadscore_event_ids_filter_bytes", 2097152), 2097152);
    double skipped = sample(http_get(port, "/metrics", &status), "leadscore_event_id_lookups_skipped_total");
    ls_client_event fresh = {.customer = "m2", .type = "page_view", .event_id = "fresh"};
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 5000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &fresh, 1, &tr), LS_OK);
    ls_client_close(&c);
    ck_assert_double_eq(wait_for(port, "leadscore_event_id_lookups_skipped_total", skipped + 1), skipped + 1);
    tu_server_stop(&srv);
    tu_rmtree(dir);
}
END_TEST

/* The process_* families, read from /proc/self at each scrape (the
 * server runs in this test's process). */
/* A model's name and version come from its file: in a label they are
 * escaped as the text format wants (one bad line fails the whole scrape). */
START_TEST(label_values_are_escaped)
{
    stats st;
    memset(&st, 0, sizeof st);
    metrics_inputs in = {.st = &st, .nops = 0, .op_name = NULL, .model_name = "we\"ird\\na\nme",
                         .model_version = "v\"1"};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&in, &text, &len), 0);
    ck_assert_ptr_nonnull(strstr(text, "leadscore_model_info{name=\"we\\\"ird\\\\na\\nme\",version=\"v\\\"1\"} 1\n"));
    free(text);
}
END_TEST

/* The retraining AUCs are no series until a retraining has measured them
 * (`stats` leaves the keys out too): a 0 would read as a backwards model. */
START_TEST(retrain_auc_is_absent_before_a_retraining)
{
    stats st;
    memset(&st, 0, sizeof st);
    metrics_inputs in = {.st = &st, .nops = 0, .op_name = NULL, .model_name = "m", .model_version = "1"};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&in, &text, &len), 0);
    ck_assert_ptr_null(strstr(text, "leadscore_retrain_holdout_auc"));
    ck_assert_double_eq(sample(text, "leadscore_retrain_runs_total"), 0);
    free(text);
    atomic_store(&st.retrain_runs, 1);
    stats_store_double(&st.retrain_auc_new, 0.8125);
    stats_store_double(&st.retrain_auc_serving, 0.75);
    ck_assert_int_eq(metrics_render(&in, &text, &len), 0);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE leadscore_retrain_holdout_auc gauge\n"));
    ck_assert_double_eq(sample(text, "leadscore_retrain_holdout_auc{model=\"new\"}"), 0.8125);
    ck_assert_double_eq(sample(text, "leadscore_retrain_holdout_auc{model=\"serving\"}"), 0.75);
    free(text);
}
END_TEST

/* A scrape between the writer's two counts (the commit's bucket, then the
 * commit total) still renders a histogram: +Inf and _count are never
 * below a finite bucket. */
START_TEST(a_histogram_caught_mid_commit_stays_monotonic)
{
    stats st;
    memset(&st, 0, sizeof st);
    atomic_store(&st.commit_size_buckets[0], 3);
    atomic_store(&st.commit_time_buckets[0], 3);
    atomic_store(&st.commits, 2); /* the third commit's total not yet counted */
    metrics_inputs in = {.st = &st, .nops = 0, .op_name = NULL, .model_name = "m", .model_version = "1"};
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&in, &text, &len), 0);
    ck_assert_double_eq(sample(text, "leadscore_commit_events_bucket{le=\"+Inf\"}"), 3);
    ck_assert_double_eq(sample(text, "leadscore_commit_events_count"), 3);
    ck_assert_double_eq(sample(text, "leadscore_commit_duration_seconds_bucket{le=\"+Inf\"}"), 3);
    free(text);
}
END_TEST

START_TEST(scrape_has_process_metrics)
{
    config cfg;
    char dir[512];
    tu_server srv;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    snprintf(cfg.metrics, sizeof cfg.metrics, "127.0.0.1:0");
    tu_server_start(&srv, &cfg);
    int port = server_metrics_port(srv.srv);
    ck_assert_double_eq(wait_for(port, "leadscore_customers", 0), 0);
    /* burn a little CPU so the counter moves */
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++)
        x += i * 0.5;
    int status;
    const char *text = http_get(port, "/metrics", &status);
    ck_assert_int_eq(status, 200);
    static const char *const families[][2] = {
        {"process_cpu_seconds_total", "counter"},  {"process_resident_memory_bytes", "gauge"},
        {"process_virtual_memory_bytes", "gauge"}, {"process_start_time_seconds", "gauge"},
        {"process_open_fds", "gauge"},             {"process_max_fds", "gauge"}};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char type[128];
        snprintf(type, sizeof type, "# TYPE %s %s\n", families[i][0], families[i][1]);
        ck_assert_msg(strstr(text, type) != NULL, "no %s", type);
    }
    double rss = sample(text, "process_resident_memory_bytes");
    double vm = sample(text, "process_virtual_memory_bytes");
    double cpu = sample(text, "process_cpu_seconds_total");
    double start = sample(text, "process_start_time_seconds");
    double fds = sample(text, "process_open_fds"), max_fds = sample(text, "process_max_fds");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    ck_assert_msg(rss > 1e6 && rss < 1e11, "rss %g", rss);
    ck_assert_msg(vm >= rss, "vm %g < rss %g", vm, rss);
    ck_assert_msg(cpu > 0 && cpu < 1e5, "cpu %g", cpu);
    double now = (double)time(NULL);
    ck_assert_msg(start > now - 3600 && start <= now + 2, "start %f, now %f", start, now);
    ck_assert_msg(fds >= 4 && fds <= max_fds, "open fds %g of %g", fds, max_fds);
    ck_assert_double_eq(max_fds, (double)rl.rlim_cur);
    /* open 50 more: the next scrape counts them */
    int extra[50];
    for (int i = 0; i < 50; i++)
        extra[i] = open("/dev/null", O_RDONLY);
    double more = sample(http_get(port, "/metrics", &status), "process_open_fds");
    ck_assert_msg(more >= fds + 45 && more <= fds + 60, "open fds %g then %g", fds, more);
    for (int i = 0; i < 50; i++)
        close(extra[i]);
    tu_server_stop(&srv);
    tu_rmtree(dir);
}
END_TEST

/* 64 connections that send half a request take every slot of the HTTP
 * server; a stop must not wait for their 10 s idle timeout (it once did:
 * the HTTP thread slept with no listen socket to wake it). */
START_TEST(a_stop_is_not_held_by_idle_scrape_connections)
{
    config cfg;
    char dir[512];
    tu_server srv;
    int socks[64];
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    snprintf(cfg.metrics, sizeof cfg.metrics, "127.0.0.1:0");
    tu_server_start(&srv, &cfg);
    int port = server_metrics_port(srv.srv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 64; i++) {
        socks[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(socks[i], 0);
        ck_assert_int_eq(connect(socks[i], (struct sockaddr *)&a, sizeof a), 0);
        ck_assert_int_eq(send(socks[i], "GET /met", 8, 0), 8);
    }
    usleep(300000); /* accepted, each waiting for the rest of its request */
    int64_t t0 = tu_now_ms();
    tu_server_stop(&srv);
    int64_t took = tu_now_ms() - t0;
    ck_assert_msg(took < 6000, "the stop took %lld ms", (long long)took);
    for (int i = 0; i < 64; i++)
        close(socks[i]);
    tu_rmtree(dir);
}
END_TEST

#define HIGH_FD 1100

START_TEST(scrape_works_with_more_than_1024_files_open)
{
    struct rlimit rl;
    int fds[HIGH_FD], n = 0;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_max >= HIGH_FD + 200, "the hard limit on open files (%llu) is too low for this test",
                  (unsigned long long)rl.rlim_max);
    if (rl.rlim_cur < HIGH_FD + 200) {
        rl.rlim_cur = rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    int null = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(null, 0);
    for (int fd = null; fd < HIGH_FD && n < HIGH_FD; n++) /* bounded: at most HIGH_FD dups */
        ck_assert_int_ge(fd = fds[n] = dup(null), 0);
    /* every descriptor the server and this test open from here is past 1,024 */
    config cfg;
    char dir[512];
    tu_server srv;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    snprintf(cfg.metrics, sizeof cfg.metrics, "127.0.0.1:0");
    tu_server_start(&srv, &cfg);
    int port = server_metrics_port(srv.srv);
    ck_assert_int_gt(port, 0);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 5000), LS_OK);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK);
    ls_client_close(&c);
    ck_assert_double_eq(wait_for(port, "leadscore_requests_total{op=\"ping\",result=\"ok\"}", 2), 2);
    int status = 0;
    for (int i = 0; i < 20; i++) { /* many scrapes, each on a new descriptor */
        http_get(port, "/metrics", &status);
        ck_assert_int_eq(status, 200);
    }
    tu_server_stop(&srv);
    tu_rmtree(dir);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(null);
}
END_TEST

START_TEST(bad_metrics_address_is_refused)
{
    config cfg;
    char dir[512], err[256];
    server *s = NULL;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    snprintf(cfg.metrics, sizeof cfg.metrics, "somewhere");
    ck_assert_int_ne(server_start(&s, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "--metrics"));
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("prometheus");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, scrape_reports_the_traffic_exactly);
    tcase_add_test(tc, bad_metrics_address_is_refused);
    tcase_add_test(tc, scrape_has_process_metrics);
    tcase_add_test(tc, label_values_are_escaped);
    tcase_add_test(tc, retrain_auc_is_absent_before_a_retraining);
    tcase_add_test(tc, a_histogram_caught_mid_commit_stays_monotonic);
    tcase_add_test(tc, a_stop_is_not_held_by_idle_scrape_connections);
    tcase_add_test(tc, scrape_works_with_more_than_1024_files_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
