/* test_security.c -- who may connect: `leadscore keygen`, CurveZMQ with
 * client and admin key lists, no answer at all for unknown or plain
 * clients, admin-only ops, and clear errors for bad key files. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "security.h"
#include "testutil.h"

static char dir[512];
static char out[1 << 14];

typedef struct {
    char pub[SECURITY_KEY_Z85];
    char sec[SECURITY_KEY_Z85];
} keypair;

static void make_keys(const char *name, keypair *k)
{
    char prefix[600], path[700], err[256];
    snprintf(prefix, sizeof prefix, "%s/%s", dir, name);
    const char *args[] = {"keygen", "--out", prefix, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    snprintf(path, sizeof path, "%s.pub", prefix);
    ck_assert_int_eq(security_read_key(path, k->pub, err, sizeof err), LS_OK);
    snprintf(path, sizeof path, "%s.key", prefix);
    ck_assert_int_eq(security_read_key(path, k->sec, err, sizeof err), LS_OK);
}

static void write_list(const char *name, const char *const *keys, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fprintf(f, "# %s\n\n", name);
    for (int i = 0; keys[i]; i++)
        fprintf(f, "%s   # key %d\n", keys[i], i);
    fclose(f);
}

START_TEST(keygen_writes_a_private_secret_and_a_public_key)
{
    keypair k;
    struct stat st;
    char path[700];
    tu_tempdir(dir, sizeof dir);
    make_keys("server", &k);
    snprintf(path, sizeof path, "%s/server.key", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(strlen(k.pub), 40);
    char derived[41];
    ck_assert_int_eq(zmq_curve_public(derived, k.sec), 0);
    ck_assert_str_eq(derived, k.pub);
    const char *none[] = {"keygen", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, none), 2);
    tu_rmtree(dir);
}
END_TEST

/* keygen --force replaces a pair whole or not at all: a failure on the
 * second file (its name is a directory) leaves the old secret; a key name
 * that is a symbolic link is replaced, the file it points to untouched. */
START_TEST(keygen_replaces_a_pair_whole_or_not_at_all)
{
    keypair k, again;
    struct stat st;
    char prefix[600], pub[700], key[700], victim[700], err[256], text[256];
    tu_tempdir(dir, sizeof dir);
    make_keys("server", &k);
    snprintf(prefix, sizeof prefix, "%s/server", dir);
    snprintf(pub, sizeof pub, "%s.pub", prefix);
    snprintf(key, sizeof key, "%s.key", prefix);
    ck_assert_int_eq(unlink(pub), 0);
    ck_assert_int_eq(mkdir(pub, 0700), 0);
    const char *force[] = {"keygen", "--out", prefix, "--force", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, force), 1);
    ck_assert_int_eq(security_read_key(key, again.sec, err, sizeof err), LS_OK);
    ck_assert_str_eq(again.sec, k.sec); /* the old secret is still there */
    ck_assert_int_eq(rmdir(pub), 0);
    /* a symbolic link in the key's place */
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    ck_assert_int_eq(unlink(key), 0);
    ck_assert_int_eq(symlink(victim, key), 0);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, force), 0);
    f = fopen(victim, "r");
    ck_assert_ptr_nonnull(fgets(text, sizeof text, f));
    fclose(f);
    ck_assert_str_eq(text, "precious\n");
    ck_assert_int_eq(lstat(key, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(security_read_key(key, again.sec, err, sizeof err), LS_OK);
    ck_assert_int_eq(security_read_key(pub, again.pub, err, sizeof err), LS_OK);
    char derived[41];
    ck_assert_int_eq(zmq_curve_public(derived, again.sec), 0);
    ck_assert_str_eq(derived, again.pub); /* a matching pair */
    tu_rmtree(dir);
}
END_TEST

static int ping_with(const char *ep, const keypair *srvkey, const keypair *client, int timeout_ms)
{
    ls_client *c;
    int rc = client ? ls_client_connect_secure(&c, ep, timeout_ms, srvkey->pub, client->pub, client->sec)
                    : ls_client_connect(&c, ep, timeout_ms);
    ck_assert_int_eq(rc, LS_OK);
    rc = ls_client_ping(c, NULL, 0);
    ls_client_close(&c);
    return rc;
}

static int call_with(const char *ep, const keypair *srvkey, const keypair *client, const char *op, const char *field,
                     const char *value)
{
    ls_client *c;
    void *reply = NULL;
    size_t len;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (field) {
        tu_pack_str(&pk, field);
        tu_pack_str(&pk, value);
    }
    ck_assert_int_eq(ls_client_connect_secure(&c, ep, 5000, srvkey->pub, client->pub, client->sec), LS_OK);
    int rc = ls_client_call(c, op, sb.data, sb.size, field ? 1 : 0, &reply, &len);
    free(reply);
    ls_client_close(&c);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

START_TEST(only_listed_keys_get_answers_and_only_admins_admin_ops)
{
    keypair srvkeys, client, admin, stranger;
    char allow[700], admins[700], secret[700];
    tu_tempdir(dir, sizeof dir);
    make_keys("server", &srvkeys);
    make_keys("client", &client);
    make_keys("admin", &admin);
    make_keys("stranger", &stranger);
    const char *allowed[] = {client.pub, NULL}, *admin_keys[] = {admin.pub, NULL};
    write_list("allow.txt", allowed, allow, sizeof allow);
    write_list("admin.txt", admin_keys, admins, sizeof admins);
    snprintf(secret, sizeof secret, "%s/server.key", dir);
    config cfg;
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    tu_config(&cfg, data);
    snprintf(cfg.curve_secret, sizeof cfg.curve_secret, "%s", secret);
    snprintf(cfg.allow, sizeof cfg.allow, "%s", allow);
    snprintf(cfg.admin, sizeof cfg.admin, "%s", admins);
    tu_server srv;
    tu_server_start(&srv, &cfg);
    ck_assert_str_eq(server_public_key(srv.srv), srvkeys.pub);
    ck_assert_int_eq(ping_with(srv.endpoint, &srvkeys, &client, 5000), LS_OK);
    ck_assert_int_eq(ping_with(srv.endpoint, &srvkeys, &admin, 5000), LS_OK);
    ck_assert_int_eq(ping_with(srv.endpoint, &srvkeys, &stranger, 400), LS_ETIMEOUT); /* no answer at all */
    ck_assert_int_eq(ping_with(srv.endpoint, NULL, NULL, 400), LS_ETIMEOUT);          /* nor for plain text */
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "score", "customer", "x"), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "stats", NULL, NULL), LS_EUNAUTH);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "forget", "customer", "x"), LS_EUNAUTH);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "reload", NULL, NULL), LS_EUNAUTH);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "kpis", NULL, NULL), LS_EUNAUTH); /* a full scan */
    /* audiences: a client reads them and the trigger stream; only an admin defines them */
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "audience_put", "name", "vip"), LS_EUNAUTH);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "audience_delete", "name", "vip"), LS_EUNAUTH);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "audience_list", NULL, NULL), LS_OK);
    /* no such audience yet: refused as a bad request, not as unauthorized */
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "audience_members", "name", "vip"), LS_EBADREQ);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "triggers", NULL, NULL), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &client, "cluster", NULL, NULL), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &admin, "audience_delete", "name", "vip"), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &admin, "stats", NULL, NULL), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &admin, "forget", "customer", "x"), LS_OK);
    ck_assert_int_eq(call_with(srv.endpoint, &srvkeys, &admin, "kpis", NULL, NULL), LS_OK);
    /* the CLI with key files */
    char pubfile[700], prefix[700];
    snprintf(pubfile, sizeof pubfile, "%s/server.pub", dir);
    snprintf(prefix, sizeof prefix, "%s/admin", dir);
    const char *stats[] = {"stats", "--connect", srv.endpoint, "--server-key", pubfile, "--key", prefix, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, stats), 0);
    ck_assert_ptr_nonnull(strstr(out, "events_accepted"));
    tu_server_stop(&srv);
    tu_rmtree(dir);
}
END_TEST

START_TEST(bad_key_setups_are_refused_clearly)
{
    keypair srvkeys, client;
    char secret[700], pubfile[700], allow[700], bad[700], err[512];
    tu_tempdir(dir, sizeof dir);
    make_keys("server", &srvkeys);
    make_keys("client", &client);
    snprintf(secret, sizeof secret, "%s/server.key", dir);
    snprintf(pubfile, sizeof pubfile, "%s/server.pub", dir);
    const char *allowed[] = {client.pub, NULL}, *garbage[] = {"not-a-key", NULL};
    write_list("allow.txt", allowed, allow, sizeof allow);
    write_list("bad.txt", garbage, bad, sizeof bad);
    struct {
        const char *secret, *allow, *needle;
    } cases[] = {
        {secret, "", "nobody could connect"},
        {secret, bad, "bad.txt:3"},
        {"/nonexistent/key", allow, "cannot read key file"},
        {"", allow, "need --curve-secret"},
        {pubfile, allow, "is a public key file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config cfg;
        server *s = NULL;
        char data[600];
        snprintf(data, sizeof data, "%s/data%zu", dir, i);
        tu_config(&cfg, data);
        snprintf(cfg.curve_secret, sizeof cfg.curve_secret, "%s", cases[i].secret);
        snprintf(cfg.allow, sizeof cfg.allow, "%s", cases[i].allow);
        err[0] = '\0';
        ck_assert_int_ne(server_start(&s, &cfg, err, sizeof err), LS_OK);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, cases[i].needle), "case %zu: \"%s\"", i, err);
    }
    tu_rmtree(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("curve");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, keygen_writes_a_private_secret_and_a_public_key);
    tcase_add_test(tc, keygen_replaces_a_pair_whole_or_not_at_all);
    tcase_add_test(tc, only_listed_keys_get_answers_and_only_admins_admin_ops);
    tcase_add_test(tc, bad_key_setups_are_refused_clearly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
