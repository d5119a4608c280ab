/* test_durability.c -- an acknowledged event survives `kill -9`.
 *
 * The real `leadscore serve` runs as a child process.  A client streams
 * track batches and counts what was acknowledged; the server is killed with
 * SIGKILL while batches are in flight, restarted on the same data
 * directory, and every acknowledged event must be there exactly once
 * (batches carry event_ids, and an unacknowledged batch is retried).
 * And a second writer on a served store is refused, not let race. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "testutil.h"

#define BATCH 50

static int64_t count_of(const char *endpoint, const char *customer)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "profile");
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, customer);
    tu_connect(&c, endpoint, ZMQ_DEALER);
    ck_assert_int_eq(tu_call_raw(&c, sb.data, sb.size, &up), 0);
    int64_t n = (int64_t)tu_get_double(tu_get(&up.data, "features"), "page_view_count");
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    return n;
}

/* Sends batch number b (event ids b*BATCH ...); returns 1 when acknowledged. */
static int send_batch(ls_client *c, int b)
{
    ls_client_event evs[BATCH];
    char ids[BATCH][32];
    ls_track_result tr;
    for (int i = 0; i < BATCH; i++) {
        snprintf(ids[i], sizeof ids[i], "ev-%d", b * BATCH + i);
        evs[i] = (ls_client_event){.customer = "kim", .type = "page_view", .event_id = ids[i]};
    }
    return ls_client_track(c, evs, BATCH, &tr) == LS_OK;
}

START_TEST(acknowledged_events_survive_sigkill)
{
    char dir[512], ep[256];
    tu_tempdir(dir, sizeof dir);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, ep, 2000), LS_OK);
    int acked = 0;
    for (int b = 0; b < 40; b++)
        acked += send_batch(c, b);
    ck_assert_int_eq(acked, 40);
    int status = tu_kill_wait(pid, SIGKILL);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ls_client_close(&c);
    pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ck_assert_int_eq(count_of(ep, "kim"), 40 * BATCH);
    /* a client that retries its batches after the crash does not double count */
    ck_assert_int_eq(ls_client_connect(&c, ep, 2000), LS_OK);
    for (int b = 0; b < 40; b++)
        ck_assert(send_batch(c, b));
    ls_client_close(&c);
    ck_assert_int_eq(count_of(ep, "kim"), 40 * BATCH);
    status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

/* Sends ids rnd-<seed>-0 .. rnd-<seed>-(n-1) (random-looking, as UUIDs
 * are) for customer; the accepted and duplicate counts of the replies. */
static void send_ids(ls_client *c, const char *customer, int n, uint32_t *accepted, uint32_t *duplicates)
{
    ls_client_event evs[BATCH];
    char ids[BATCH][40];
    ls_track_result tr;
    *accepted = *duplicates = 0;
    for (int b = 0; b < n; b += BATCH) {
        int k = n - b < BATCH ? n - b : BATCH;
        for (int i = 0; i < k; i++) {
            snprintf(ids[i], sizeof ids[i], "%08x-%d", (unsigned)((b + i) * 2654435761u), b + i);
            evs[i] = (ls_client_event){.customer = customer, .type = "page_view", .event_id = ids[i]};
        }
        ck_assert_int_eq(ls_client_track(c, evs, (size_t)k, &tr), LS_OK);
        *accepted += tr.accepted;
        *duplicates += tr.duplicates;
    }
}

/* The server-wide window survives a kill: ids acknowledged for one
 * customer, still held in the writer's memory (not yet merged into
 * event_ids) when the server is killed, are duplicates for another
 * customer after the restart.  That customer's history has never seen
 * them, so only the window keys, rebuilt from event_ids_by_time, can say. */
START_TEST(window_keys_survive_sigkill_across_customers)
{
    char dir[512], ep[256];
    uint32_t accepted, dups;
    tu_tempdir(dir, sizeof dir);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, ep, 2000), LS_OK);
    send_ids(c, "ann", 1000, &accepted, &dups); /* fewer than a sweep needs: all in memory */
    ck_assert_uint_eq(accepted, 1000);
    ck_assert_uint_eq(dups, 0);
    ls_client_close(&c);
    int status = tu_kill_wait(pid, SIGKILL);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ck_assert_int_eq(ls_client_connect(&c, ep, 2000), LS_OK);
    send_ids(c, "bob", 1000, &accepted, &dups);
    ck_assert_uint_eq(accepted, 0);
    ck_assert_uint_eq(dups, 1000);
    ls_client_close(&c);
    ck_assert_int_eq(count_of(ep, "bob"), 0); /* nothing of it stored */
    ck_assert_int_eq(count_of(ep, "ann"), 1000);
    status = tu_kill_wait(pid, SIGTERM);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tu_rmtree(dir);
}
END_TEST

/* Streams from a second process while the server is killed mid-stream:
 * whatever was acknowledged before the kill is there after restart. */
START_TEST(kill_during_a_stream_loses_no_acknowledged_event)
{
    char dir[512], ep[256];
    int pipefd[2];
    tu_tempdir(dir, sizeof dir);
    pid_t srv = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t client = fork();
    ck_assert_int_ge(client, 0);
    if (client == 0) {
        /* child: send batches, report each acknowledged batch number */
        ls_client *c;
        close(pipefd[0]);
        if (ls_client_connect(&c, ep, 1000) != LS_OK)
            _exit(1);
        for (int b = 0; b < 100000; b++) {
            if (!send_batch(c, b))
                break;
            if (write(pipefd[1], &b, sizeof b) != sizeof b)
                break;
        }
        ls_client_close(&c);
        _exit(0);
    }
    close(pipefd[1]);
    int b, acked = 0;
    while (acked < 30 && read(pipefd[0], &b, sizeof b) == sizeof b)
        acked++;
    tu_kill_wait(srv, SIGKILL);
    while (read(pipefd[0], &b, sizeof b) == sizeof b) /* acks that raced the kill */
        acked++;
    close(pipefd[0]);
    int st;
    waitpid(client, &st, 0);
    srv = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    int64_t have = count_of(ep, "kim");
    ck_assert_int_ge(have, (int64_t)acked * BATCH);      /* nothing acknowledged is lost */
    ck_assert_int_le(have, (int64_t)(acked + 1) * BATCH); /* at most the one batch in flight more */
    ck_assert_int_eq(have % BATCH, 0);                   /* batches are all-or-nothing */
    tu_kill_wait(srv, SIGTERM);
    tu_rmtree(dir);
}
END_TEST

typedef struct {
    pid_t pid;
    int delay_ms;
} killer_args;

static void *kill_later(void *arg)
{
    killer_args *k = arg;
    usleep((useconds_t)k->delay_ms * 1000);
    kill(k->pid, SIGKILL);
    return NULL;
}

/* 20 rounds on one store: stream batches until a random SIGKILL, restart,
 * check that every acknowledged batch is there, then retry every batch of
 * the round (acknowledged or not, as a client unsure of its acks would):
 * each event must end up counted exactly once. */
START_TEST(twenty_random_kills_lose_nothing_and_count_once)
{
    enum { ROUNDS = 20, MAX_BATCHES = 400 };
    char dir[512], ep[256];
    unsigned seed = 12345;
    int64_t acked_total = 0, attempted_total = 0;
    tu_tempdir(dir, sizeof dir);
    int next_batch = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
        ck_assert_int_eq(count_of(ep, "kim"), (int64_t)next_batch * BATCH); /* nothing lost, nothing doubled */
        killer_args k = {pid, 5 + (int)(rand_r(&seed) % 120)};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, kill_later, &k), 0);
        ls_client *c;
        ck_assert_int_eq(ls_client_connect(&c, ep, 400), LS_OK);
        int first = next_batch, b = first, acked = 0;
        while (b < first + MAX_BATCHES) {
            int ok = send_batch(c, b);
            b++;
            if (!ok)
                break;
            acked++;
        }
        ls_client_close(&c);
        pthread_join(t, NULL);
        int status;
        waitpid(pid, &status, 0);
        acked_total += acked;
        attempted_total += b - first;
        /* restart: all acknowledged batches must be there */
        pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
        int64_t have = count_of(ep, "kim");
        ck_assert_int_ge(have, (int64_t)(first + acked) * BATCH);
        ck_assert_int_le(have, (int64_t)b * BATCH);
        /* the client retries the whole round with the same event ids */
        ck_assert_int_eq(ls_client_connect(&c, ep, 5000), LS_OK);
        for (int r = first; r < b; r++)
            ck_assert(send_batch(c, r));
        ls_client_close(&c);
        ck_assert_int_eq(count_of(ep, "kim"), (int64_t)b * BATCH);
        next_batch = b;
        ck_assert(WIFEXITED(tu_kill_wait(pid, SIGTERM)));
    }
    fprintf(stderr, "crash test: %d kills, %lld batches acknowledged before a kill, %lld attempted, 0 lost, 0 doubled\n",
            ROUNDS, (long long)acked_total, (long long)attempted_total);
    tu_rmtree(dir);
}
END_TEST

/* Runs the leadscore binary with args, output into out; its exit status,
 * or -1 when a signal ended it.  The child gets SIGALRM after 20 s (an
 * alarm outlives exec), so a command that wrongly keeps running is
 * bounded. */
static int run_bounded(char *out, size_t cap, const char *const *args)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32] = {LEADSCORE_BIN};
        int n = 1;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        alarm(20);
        execv(LEADSCORE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t got;
    while (len < cap - 1 && (got = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One writer per store: a second `serve` or an `import --data` on a
 * served store is refused naming the server's pid; read-only commands run
 * beside it; once the server is killed (-9) the lock is free again. */
START_TEST(a_second_writer_on_a_served_store_is_refused)
{
    char dir[512], ep[256], out[4096], pid_text[32], csv[600];
    tu_tempdir(dir, sizeof dir);
    pid_t pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    snprintf(pid_text, sizeof pid_text, "process %ld", (long)pid);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, ep, 2000), LS_OK);
    ck_assert(send_batch(c, 0));
    ls_client_close(&c);

    const char *serve[] = {"serve", "--data", dir, "--bind", "tcp://127.0.0.1:*", "--pull", "tcp://127.0.0.1:*",
                           "--model", LS_SOURCE_DIR "/models/handset.json", NULL};
    int rc = run_bounded(out, sizeof out, serve);
    ck_assert_msg(rc > 0, "a second serve exited with %d: %s", rc, out);
    ck_assert_msg(strstr(out, "already open for writing") && strstr(out, pid_text), "output: %s", out);

    snprintf(csv, sizeof csv, "%s.csv", dir);
    FILE *fp = fopen(csv, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("customer,ts,type\nx,1700000000,page_view\n", fp);
    fclose(fp);
    const char *import[] = {"import", "--data", dir, csv, NULL};
    rc = run_bounded(out, sizeof out, import);
    ck_assert_msg(rc > 0, "import --data exited with %d: %s", rc, out);
    ck_assert_msg(strstr(out, "already open for writing") && strstr(out, pid_text), "output: %s", out);

    const char *compact[] = {"compact", "--data", dir, NULL};
    rc = run_bounded(out, sizeof out, compact);
    ck_assert_msg(rc > 0 && strstr(out, pid_text), "compact in place exited with %d: %s", rc, out);

    const char *kpis[] = {"kpis", "--data", dir, NULL}; /* read-only: allowed */
    rc = run_bounded(out, sizeof out, kpis);
    ck_assert_msg(rc == 0, "kpis beside the server exited with %d: %s", rc, out);

    tu_kill_wait(pid, SIGKILL);
    rc = run_bounded(out, sizeof out, import);
    ck_assert_msg(rc == 0, "import after the server died exited with %d: %s", rc, out);
    pid = tu_spawn_serve(dir, ep, sizeof ep, NULL);
    ck_assert_int_eq(count_of(ep, "kim"), BATCH);
    ck_assert(WIFEXITED(tu_kill_wait(pid, SIGTERM)));
    unlink(csv);
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("durability");
    TCase *tc = tcase_create("sigkill");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, acknowledged_events_survive_sigkill);
    tcase_add_test(tc, window_keys_survive_sigkill_across_customers);
    tcase_add_test(tc, kill_during_a_stream_loses_no_acknowledged_event);
    tcase_add_test(tc, twenty_random_kills_lose_nothing_and_count_once);
    tcase_add_test(tc, a_second_writer_on_a_served_store_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
