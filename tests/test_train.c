/* test_train.c -- `leadscore train` end to end: the CDNOW fits reproduce
 * the published estimates from the raw purchase file, a model trained on
 * the synthetic shop beats the recency baseline on the hold-out and loads
 * into `serve`, and usage errors exit 2. */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"
#include "model.h"
#include "testutil.h"

static char out[1 << 16];

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    ck_assert_msg(json_is_number(v), "no %s.%s", a, b);
    return json_number_value(v);
}

START_TEST(cdnow_fits_reproduce_the_papers)
{
    char dir[512], model_path[600], data[600];
    snprintf(data, sizeof data, "%s/cdnow/CDNOW_sample.txt", tu_data_dir());
    tu_tempdir(dir, sizeof dir);
    snprintf(model_path, sizeof model_path, "%s/cdnow.json", dir);
    /* 39-week calibration from 1997-01-01; same-day purchases are one transaction */
    const char *args[] = {"train", "--clv-only", "--out", model_path, "--no-header", "--whitespace", "--allow-old",
                          "--map", "customer=2,ts=3,quantity=4,value=5,type=:purchase", "--cutoff", "1997-09-30",
                          "--horizon", "273", data, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    json_error_t jerr;
    json_t *m = json_load_file(model_path, 0, &jerr);
    ck_assert_ptr_nonnull(m);
    json_t *clv = json_object_get(m, "clv");
    /* Fader, Hardie & Lee (2005): r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4 */
    ck_assert_double_eq_tol(num(clv, "bgnbd", "r"), 0.243, 0.0005);
    ck_assert_double_eq_tol(num(clv, "bgnbd", "alpha"), 4.414, 0.005);
    ck_assert_double_eq_tol(num(clv, "bgnbd", "a"), 0.793, 0.0005);
    ck_assert_double_eq_tol(num(clv, "bgnbd", "b"), 2.426, 0.005);
    ck_assert_double_eq_tol(num(json_object_get(m, "metrics"), "clv", "bgnbd_loglik"), -9582.4, 0.05);
    ck_assert_int_eq((int)num(json_object_get(m, "metrics"), "clv", "bgnbd_customers"), 2357);
    /* Gamma-Gamma on the 946 repeat buyers: p 6.25, q 3.74, gamma 15.44 */
    ck_assert_int_eq((int)num(json_object_get(m, "metrics"), "clv", "gamma_gamma_customers"), 946);
    ck_assert_double_eq_tol(num(clv, "gamma_gamma", "p"), 6.25, 0.005);
    ck_assert_double_eq_tol(num(clv, "gamma_gamma", "q"), 3.74, 0.005);
    ck_assert_double_eq_tol(num(clv, "gamma_gamma", "gamma"), 15.44, 0.05);
    json_decref(m);
    tu_rmtree(dir);
}
END_TEST

START_TEST(a_model_trained_on_the_shop_beats_recency_and_serves)
{
    char dir[512], events[600], model_path[600], err[512];
    tu_tempdir(dir, sizeof dir);
    snprintf(events, sizeof events, "%s/shop.jsonl", dir);
    snprintf(model_path, sizeof model_path, "%s/model.json", dir);
    const char *gen[] = {"gen", "--customers", "15000", "--days", "120", "--seed", "11", "--out", events, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, gen), 0);
    const char *train[] = {"train", "--out", model_path, "--name", "shop", "--version", "t1", events, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, train), 0);
    ck_assert_ptr_nonnull(strstr(out, "recency baseline"));
    json_error_t jerr;
    json_t *m = json_load_file(model_path, 0, &jerr);
    ck_assert_ptr_nonnull(m);
    json_t *metrics = json_object_get(m, "metrics");
    double auc = num(metrics, "holdout", "auc"), base = num(metrics, "holdout_recency_baseline", "auc");
    double lift = num(metrics, "holdout", "lift_top10"), base_lift = num(metrics, "holdout_recency_baseline", "lift_top10");
    ck_assert_msg(auc > base + 0.02, "hold-out AUC %.3f vs recency %.3f", auc, base);
    ck_assert_msg(lift > base_lift, "lift %.2f vs %.2f", lift, base_lift);
    ck_assert(auc > 0.75);
    /* the sign constraints hold in what was written */
    json_t *terms = json_object_get(json_object_get(m, "logistic"), "terms"), *t;
    size_t i;
    json_array_foreach(terms, i, t) {
        const char *f = json_string_value(json_object_get(t, "feature"));
        double c = json_number_value(json_object_get(t, "coef"));
        if (strstr(f, "cart") || strstr(f, "checkout") || strstr(f, "sessions"))
            ck_assert_msg(c >= 0, "%s has coef %g", f, c);
        if (strstr(f, "refund") || strstr(f, "support") || strstr(f, "bad_reviews"))
            ck_assert_msg(c <= 0, "%s has coef %g", f, c);
    }
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "shop");
    json_decref(m);
    model *loaded;
    ck_assert_msg(model_load_file(model_path, &loaded, err, sizeof err) == LS_OK, "%s", err); /* serve/reload accept it */
    ck_assert_str_eq(model_version(loaded), "t1");
    model_unref(&loaded);
    tu_rmtree(dir);
}
END_TEST

START_TEST(usage_and_input_errors)
{
    const char *noout[] = {"train", "x.jsonl", NULL}, *nofile[] = {"train", "--out", "/tmp/x.json", NULL};
    const char *missing[] = {"train", "--out", "/tmp/never-written.json", "/nonexistent/events.csv", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, noout), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nofile), 2);
    ck_assert_int_eq(tu_run_cli(out, sizeof out, missing), 1);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent/events.csv"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, cdnow_fits_reproduce_the_papers);
    tcase_add_test(tc, a_model_trained_on_the_shop_beats_recency_and_serves);
    tcase_add_test(tc, usage_and_input_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
