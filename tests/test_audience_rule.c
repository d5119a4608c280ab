/* test_audience_rule.c -- the audience rule language: good rules evaluated
 * on hand-built score results and features (every operator, precedence,
 * `not`, parentheses, `in` both ways, string escapes), bad rules with the
 * exact error and position, the canonical form and its round trip, and a
 * bounded fuzz loop over random bytes and random token soup. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assess.h"
#include "audience_rule.h"
#include "feature.h"
#include "leadscore/error.h"

#define DAY 86400000LL
#define T0 1700000000000LL

/* ------------------------------------------------------------------ */
/* Fixture: one customer                                               */
/* ------------------------------------------------------------------ */

static assess_result A;
static ls_features F;
static feature_ctx CTX;
static arule_input IN;

/* A hot regular buyer in disappointment, 40 days after the last of 3
 * purchases, with an abandoned cart and a birthday, top segment running. */
static void setup(void)
{
    memset(&A, 0, sizeof A);
    A.logistic.score = 0.7;
    A.logistic.score_100 = 70;
    A.logistic.tier = "hot";
    A.p_alive = 0.8;
    A.expected_purchases_30d = 0.25;
    A.clv = 150.0;
    A.journey.type = JT_REGULAR;
    A.journey.phase = JP_DISAPPOINTMENT;
    A.journey.loyalty_points = 1200;
    A.journey.loyalty_tier = "gold \"star\"";
    A.journey.actions = (1u << JA_ABANDONED_CART) | (1u << JA_BIRTHDAY);
    A.nsegments = 2;
    strcpy(A.segments[0].segment, "running");
    strcpy(A.segments[1].segment, "trail");
    feature_init(&F);
    F.first_seen_ms = T0 - 100 * DAY;
    F.last_seen_ms = T0 - 2 * DAY;
    F.count[EV_PURCHASE] = 3;
    F.first_purchase_ms = T0 - 90 * DAY;
    F.last_purchase_ms = T0 - 40 * DAY;
    F.spend = 300.0;
    CTX = (feature_ctx){T0, {3 * DAY, 30 * DAY}};
    IN = (arule_input){&A, &F, &CTX, 1};
}

/* Parses text (which must succeed) and evaluates it on the fixture. */
static int eval(const char *text)
{
    arule *r = NULL;
    char err[256];
    int rc = arule_parse(text, &r, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "%s: %s", text, err);
    int v = arule_eval(r, &IN);
    arule_free(&r);
    ck_assert_ptr_null(r);
    return v;
}

/* Parses text, which must fail with exactly the message want. */
static void bad(const char *text, const char *want)
{
    arule *r = (arule *)&r; /* must come back NULL */
    char err[256];
    int rc = arule_parse(text, &r, err, sizeof err);
    ck_assert_msg(rc == LS_EPARSE, "%s: rc %d", text, rc);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(err, want);
}

/* The canonical form of text. */
static void canon(const char *text, char *buf, size_t cap)
{
    arule *r = NULL;
    char err[256];
    ck_assert_msg(arule_parse(text, &r, err, sizeof err) == LS_OK, "%s: %s", text, err);
    ck_assert_int_eq(arule_format(r, buf, cap), LS_OK);
    ck_assert_str_eq(buf, arule_text(r));
    arule_free(&r);
}

/* ------------------------------------------------------------------ */
/* Good rules                                                          */
/* ------------------------------------------------------------------ */

START_TEST(test_issue_examples)
{
    ck_assert_int_eq(eval("score >= 0.6 and tier == \"hot\""), 1);
    ck_assert_int_eq(eval("customer_type in (\"regular\", \"big_spender\")"), 1);
    ck_assert_int_eq(eval("phase == \"disappointment\""), 1);
    ck_assert_int_eq(eval("days_since_last_purchase > 30"), 1);
    ck_assert_int_eq(eval("purchase_count >= 2"), 1);
    ck_assert_int_eq(eval("clv >= 100"), 1);
    ck_assert_int_eq(eval("\"abandoned_cart\" in actions"), 1);
    ck_assert_int_eq(eval("segment == \"running\""), 1);
    ck_assert_int_eq(eval("score >= 0.75 and tier == \"hot\""), 0);
    ck_assert_int_eq(eval("customer_type in (\"new\", \"big_spender\")"), 0);
    ck_assert_int_eq(eval("days_since_last_purchase > 50"), 0);
    ck_assert_int_eq(eval("\"win_back\" in actions"), 0);
    ck_assert_int_eq(eval("segment == \"trail\""), 0);
}
END_TEST

START_TEST(test_operators)
{
    const struct {
        const char *rule;
        int want;
    } cases[] = {
        {"score_100 == 70", 1}, {"score_100 == 71", 0}, {"score_100 != 70", 0}, {"score_100 != 71", 1},
        {"score < 0.7", 0},     {"score < 0.71", 1},    {"score <= 0.7", 1},    {"score <= 0.69", 0},
        {"score > 0.7", 0},     {"score > 0.69", 1},    {"score >= 0.7", 1},    {"score >= 0.71", 0},
        {"p_alive == 0.8", 1},  {"expected_purchases_30d < 1", 1}, {"loyalty_points >= 1000", 1},
        {"tier != \"cold\"", 1}, {"tier != \"hot\"", 0}, {"known", 1}, {"not known", 0},
        {"known == true", 1},   {"known != false", 1},  {"known == false", 0}, {"true", 1}, {"false", 0},
        {"spend == 300", 1},    {"avg_order_value == 100", 1}, {"-1 < score", 1}, {"score > -1e3", 1},
        {"70 == score_100", 1}, {"1e2 == 100", 1}, {"score_100 in (10, 70, 90)", 1}, {"score_100 in (10)", 0},
        {"known in (true)", 1}, {"tier == tier", 1}, {"segment in segments", 1}, {"tier in segments", 0},
        {"\"trail\" in segments", 1}, {"\"hiking\" in segments", 0}, {"\"birthday\" in actions", 1},
        {"\"a\" in (\"b\", \"a\")", 1}, {"phase in (\"trust\")", 0}, {"customer_type == \"regular\"", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(eval(cases[i].rule) == cases[i].want, "%s should be %d", cases[i].rule, cases[i].want);
}
END_TEST

START_TEST(test_precedence)
{
    /* a or b and c == a or (b and c) */
    ck_assert_int_eq(eval("true or false and false"), 1);
    ck_assert_int_eq(eval("(true or false) and false"), 0);
    ck_assert_int_eq(eval("false and false or true"), 1);
    ck_assert_int_eq(eval("false and (false or true)"), 0);
    /* not binds tighter than and/or */
    ck_assert_int_eq(eval("not false and false"), 0);
    ck_assert_int_eq(eval("not (false and false)"), 1);
    ck_assert_int_eq(eval("not true or true"), 1);
    ck_assert_int_eq(eval("not (true or true)"), 0);
    /* not over a comparison */
    ck_assert_int_eq(eval("not score > 0.5"), 0);
    ck_assert_int_eq(eval("not not score > 0.5"), 1);
    ck_assert_int_eq(eval("not tier == \"cold\" and clv > 100"), 1);
    ck_assert_int_eq(eval("((((score > 0.5))))"), 1);
    ck_assert_int_eq(eval("score < 0.5 or (tier == \"hot\" and (clv < 100 or purchase_count == 3))"), 1);
}
END_TEST

START_TEST(test_strings_and_lists)
{
    ck_assert_int_eq(eval("loyalty_tier == \"gold \\\"star\\\"\""), 1);
    ck_assert_int_eq(eval("loyalty_tier == \"gold \\\"star\""), 0);
    strcpy(A.segments[0].segment, "back\\slash");
    ck_assert_int_eq(eval("segment == \"back\\\\slash\""), 1);
    ck_assert_int_eq(eval("\"back\\\\slash\" in segments"), 1);
    ck_assert_int_eq(eval("segment == \"\""), 0);
    A.nsegments = 0;
    ck_assert_int_eq(eval("segment == \"\""), 1);
    ck_assert_int_eq(eval("\"trail\" in segments"), 0);
    A.journey.actions = 0;
    ck_assert_int_eq(eval("\"abandoned_cart\" in actions"), 0);
    A.logistic.tier = NULL;
    ck_assert_int_eq(eval("tier == \"\""), 1);
    IN.known = 0;
    ck_assert_int_eq(eval("known"), 0);
    ck_assert_int_eq(eval("  score\t>\n0.5\r"), 1);
}
END_TEST

START_TEST(test_features_follow_time)
{
    ck_assert_int_eq(eval("days_since_last_purchase > 39.9 and days_since_last_purchase < 40.1"), 1);
    CTX.now_ms = T0 + 20 * DAY;
    ck_assert_int_eq(eval("days_since_last_purchase > 59.9"), 1);
    /* every named feature resolves */
    for (int i = 0; i < feature_count(); i++) {
        char rule[128];
        snprintf(rule, sizeof rule, "%s >= 0 or %s < 0", feature_name(i), feature_name(i));
        ck_assert_int_eq(eval(rule), 1);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad rules                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_errors)
{
    bad("scor >= 0.6", "unknown field \"scor\" at column 1");
    bad("score >= 0.6 and tierr == \"hot\"", "unknown field \"tierr\" at column 18");
    bad("tier == hot", "unknown field \"hot\" at column 9");
    bad("tier == \"hot", "at column 9: unterminated string");
    bad("tier == \"hot\\", "at column 9: unterminated string");
    bad("tier == \"h\\n\"", "at column 11: unknown escape '\\n' (only \\\" and \\\\)");
    bad("tier == \"a\tb\"", "at column 11: control character 0x09 in a string");
    bad("(score > 1 and clv > 2", "at column 23: expected ')' to close '(' at column 1, found the end of the rule");
    bad("score > 1)", "at column 10: expected 'and', 'or' or the end of the rule, found ')'");
    bad("customer_type in (\"a\", \"b\"", "at column 27: expected ',' or ')' to close the list opened at column 18, "
                                          "found the end of the rule");
    bad("customer_type in ()", "at column 19: expected a list item, found ')'");
    bad("score_100 in (1, \"a\")", "at column 18: list mixes a number and a string");
    bad("tier in (tier)", "at column 10: list items must be numbers, strings or booleans, not a field");
    bad("score @ 1", "at column 7: unexpected character '@'");
    bad("score = 1", "at column 7: '=' is not an operator (use '==')");
    bad("score > 1 && clv > 2", "at column 11: unexpected character '&'");
    bad("score >= 0.6 and score >=", "at column 26: expected a value after '>='");
    bad("score >= and", "at column 10: expected a value after '>=', found 'and'");
    bad("score >= 0.6 and", "at column 17: expected a condition after 'and', found the end of the rule");
    bad("score > 1 or", "at column 13: expected a condition after 'or', found the end of the rule");
    bad("not", "at column 4: expected a condition after 'not', found the end of the rule");
    bad("()", "at column 2: expected a condition after '(', found ')'");
    bad("score", "at column 6: expected a comparison operator or 'in' after score, found the end of the rule");
    bad("score tier", "at column 7: expected a comparison operator or 'in' after score, found \"tier\"");
    bad("1.", "at column 3: expected a digit after '.' in a number");
    bad("score > 30d", "at column 9: malformed number");
    bad("score > 1e999", "at column 9: number out of range");
    bad("score > 1e-400", "at column 9: number out of range"); /* not silently 0 */
    bad("score > 1e", "at column 11: expected a digit after 'e' in a number");
    bad("", "at column 1: empty rule");
    bad("   \t ", "at column 6: empty rule");
    bad("\x01", "at column 1: unexpected byte 0x01");
}
END_TEST

START_TEST(test_type_errors)
{
    bad("tier == 1", "at column 6: cannot compare field \"tier\" (a string) with a number");
    bad("score == \"hot\"", "at column 7: cannot compare field \"score\" (a number) with a string");
    bad("known == 1", "at column 7: cannot compare field \"known\" (a boolean) with a number");
    bad("tier > \"a\"", "at column 6: '>' needs numbers, not field \"tier\" (a string)");
    bad("score <= \"a\"", "at column 7: '<=' needs numbers, not a string");
    bad("actions == \"abandoned_cart\"",
        "at column 9: cannot compare field \"actions\" (a list) with a string (use 'in' for a list)");
    bad("\"x\" in tier", "at column 5: 'in' needs a list on its right, not field \"tier\" (a string)");
    bad("actions in segments", "at column 9: 'in' needs a single value on its left, not field \"actions\" (a list)");
    bad("1 in actions", "at column 3: cannot look for a number in field \"actions\" (a list)");
    bad("tier in (1, 2)", "at column 6: cannot look for field \"tier\" (a string) in a list of numbers");
    bad("actions", "at column 8: expected a comparison operator or 'in' after actions, found the end of the rule");
}
END_TEST

START_TEST(test_limits)
{
    char buf[ARULE_MAX_TEXT + 64];
    char want[128];
    /* ARULE_MAX_DEPTH levels of parentheses are fine, one more is not */
    for (int depth = ARULE_MAX_DEPTH; depth <= ARULE_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            buf[n++] = '(';
        n += (size_t)sprintf(buf + n, "known");
        for (int i = 0; i < depth; i++)
            buf[n++] = ')';
        buf[n] = '\0';
        if (depth == ARULE_MAX_DEPTH) {
            ck_assert_int_eq(eval(buf), 1);
        } else {
            snprintf(want, sizeof want, "at column %d: nesting deeper than %d levels", ARULE_MAX_DEPTH + 1,
                     ARULE_MAX_DEPTH);
            bad(buf, want);
        }
    }
    /* the same with not: an even number keeps the value */
    size_t n = 0;
    for (int i = 0; i < ARULE_MAX_DEPTH; i++)
        n += (size_t)sprintf(buf + n, "not ");
    sprintf(buf + n, "known");
    ck_assert_int_eq(eval(buf), 1);
    /* deep nesting of a huge text is bounded, not a stack overflow */
    memset(buf, '(', ARULE_MAX_TEXT);
    buf[ARULE_MAX_TEXT] = '\0';
    snprintf(want, sizeof want, "at column %d: nesting deeper than %d levels", ARULE_MAX_DEPTH + 1, ARULE_MAX_DEPTH);
    bad(buf, want);
    /* too long */
    memset(buf, ' ', ARULE_MAX_TEXT + 1);
    buf[ARULE_MAX_TEXT + 1] = '\0';
    snprintf(want, sizeof want, "rule longer than %d bytes", ARULE_MAX_TEXT);
    bad(buf, want);
    /* too many terms: a long chain of short ones */
    n = 0;
    while (n < ARULE_MAX_TEXT - 32)
        n += (size_t)sprintf(buf + n, "%snot not not true", n ? " or " : "");
    arule *r = NULL;
    char err[256];
    ck_assert_int_eq(arule_parse(buf, &r, err, sizeof err), LS_EPARSE);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(strstr(err, "rule too complex (more than 512 terms)"));
    /* a canonical form longer than the limit is refused */
    n = 0;
    while (n < ARULE_MAX_TEXT - 16)
        n += (size_t)sprintf(buf + n, "%sclv>1", n ? " or " : "");
    ck_assert_int_eq(arule_parse(buf, &r, err, sizeof err), LS_EPARSE);
    snprintf(want, sizeof want, "at column 1: rule too long (its canonical form is over %d bytes)", ARULE_MAX_TEXT);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_api_arguments)
{
    arule *r = NULL;
    char err[64] = "x";
    ck_assert_int_eq(arule_parse(NULL, &r, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(arule_parse("known", NULL, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(arule_parse("known", &r, NULL, 10), LS_EINVAL);
    ck_assert_int_eq(arule_parse("known", &r, NULL, 0), LS_OK);
    ck_assert_int_eq(arule_eval(r, NULL), 0);
    ck_assert_int_eq(arule_eval(NULL, &IN), 0);
    ck_assert_int_eq(arule_format(r, NULL, 10), LS_EINVAL);
    ck_assert_int_eq(arule_format(r, err, 0), LS_EINVAL);
    ck_assert_int_eq(arule_format(r, err, 3), LS_ETOOLARGE);
    ck_assert_str_eq(err, "kn");
    ck_assert_int_eq(arule_format(r, err, 6), LS_OK);
    ck_assert_str_eq(err, "known");
    arule_free(&r);
    arule_free(&r);
    arule_free(NULL);
    ck_assert_int_eq(arule_parse("scor", &r, NULL, 0), LS_EPARSE);
    ck_assert_int_eq(arule_parse("tier == 1", &r, err, 8), LS_EPARSE); /* truncated message */
    ck_assert_str_eq(err, "at colu");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Canonical form                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_format)
{
    char buf[ARULE_MAX_TEXT + 1];
    const struct {
        const char *in, *out;
    } cases[] = {
        {"score>=0.6 and tier==\"hot\"", "score >= 0.6 and tier == \"hot\""},
        {"score > -0", "score > 0"}, /* -0 == 0: the same rule, so the same text (it restarted the audience) */
        {"score > -0.0e5", "score > 0"},
        {"customer_type in(\"regular\",\"big_spender\")", "customer_type in (\"regular\", \"big_spender\")"},
        {"(known or known) or (known)", "known or known or known"},
        {"known or (known and known)", "known or known and known"},
        {"(known or known) and known", "(known or known) and known"},
        {"not (known and true)", "not (known and true)"},
        {"not (not (score > 1))", "not not score > 1"},
        {"((known and (known and false)))", "known and known and false"},
        {"clv >= 100.000", "clv >= 100"},
        {"score > 1e3 and score < -0.25 and score != 0.1", "score > 1000 and score < -0.25 and score != 0.1"},
        {"score > 1e300", "score > 1e+300"},
        {"loyalty_tier == \"a\\\"b\\\\c\"", "loyalty_tier == \"a\\\"b\\\\c\""},
        {"\"x\"in segments", "\"x\" in segments"},
        {"known==true", "known == true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        canon(cases[i].in, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].out);
        /* canonical is a fixed point */
        char again[ARULE_MAX_TEXT + 1];
        canon(buf, again, sizeof again);
        ck_assert_str_eq(again, buf);
    }
}
END_TEST

/* A few fixture variations to compare two rules on. */
static void vary(int k)
{
    setup();
    A.logistic.score = (k % 10) / 10.0;
    A.logistic.score_100 = (k % 10) * 10;
    A.logistic.tier = k % 3 == 0 ? "hot" : k % 3 == 1 ? "warm" : "cold";
    A.clv = k * 17.0;
    A.journey.type = (journey_type)(k % JT_COUNT);
    A.journey.phase = (journey_phase)(k % JP_COUNT);
    A.journey.actions = (unsigned)k * 37u % (1u << JA_COUNT);
    A.nsegments = k % 3;
    IN.known = k % 2;
    F.count[EV_PURCHASE] = (uint32_t)(k % 5);
    CTX.now_ms = T0 + (k % 7) * 10 * DAY;
}

static const char *const ROUND_TRIP[] = {
    "score >= 0.6 and tier == \"hot\"",
    "customer_type in (\"regular\", \"big_spender\") or phase == \"disappointment\"",
    "not (days_since_last_purchase > 30 and purchase_count >= 2) or clv >= 100",
    "\"abandoned_cart\" in actions and not \"win_back\" in actions",
    "segment == \"running\" or \"trail\" in segments or not known",
    "(score < 0.3 or score > 0.7) and (tier != \"cold\" or known == false)",
    "score_100 in (0, 30, 60, 90) and loyalty_points <= 1200.5",
    "not not not (known and (true or false))",
};

START_TEST(test_round_trip)
{
    char buf[ARULE_MAX_TEXT + 1], err[256];
    for (size_t i = 0; i < sizeof ROUND_TRIP / sizeof ROUND_TRIP[0]; i++) {
        arule *a = NULL, *b = NULL;
        ck_assert_msg(arule_parse(ROUND_TRIP[i], &a, err, sizeof err) == LS_OK, "%s", err);
        ck_assert_int_eq(arule_format(a, buf, sizeof buf), LS_OK);
        ck_assert_msg(arule_parse(buf, &b, err, sizeof err) == LS_OK, "%s: %s", buf, err);
        int seen[2] = {0, 0};
        for (int k = 0; k < 60; k++) {
            vary(k);
            int va = arule_eval(a, &IN);
            ck_assert_int_eq(va, arule_eval(b, &IN));
            seen[va]++;
        }
        ck_assert_msg(seen[0] && seen[1], "%s never changes value", ROUND_TRIP[i]);
        arule_free(&a);
        arule_free(&b);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fuzz                                                                */
/* ------------------------------------------------------------------ */

static const char *const SOUP[] = {
    "score", "tier", "actions", "segments", "segment", "known", "clv", "purchase_count", "scor",
    "and", "or", "not", "in", "true", "false", "(", ")", ",", "==", "!=", "<", "<=", ">", ">=", "=",
    "0.6", "-1", "1e3", "1.", "\"hot\"", "\"a\\\"b\"", "\"", "\\", "\"running\"", "@", " ", "\t",
};

/* Parses text; a rule that parses must format, round-trip and evaluate. */
static void fuzz_one(const char *text)
{
    arule *r = NULL, *again = NULL;
    char err[128], buf[ARULE_MAX_TEXT + 1];
    int rc = arule_parse(text, &r, err, sizeof err);
    if (rc != LS_OK) {
        ck_assert_int_eq(rc, LS_EPARSE);
        ck_assert_ptr_null(r);
        ck_assert_msg(err[0] != '\0', "no message for a failed parse");
        return;
    }
    ck_assert_int_eq(arule_format(r, buf, sizeof buf), LS_OK);
    ck_assert_msg(arule_parse(buf, &again, err, sizeof err) == LS_OK, "%s -> %s: %s", text, buf, err);
    ck_assert_int_eq(arule_eval(r, &IN), arule_eval(again, &IN));
    arule_free(&r);
    arule_free(&again);
}

START_TEST(test_fuzz)
{
    char text[256];
    int parsed = 0;
    srand(14);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        if (iter % 2 == 0) {
            size_t len = (size_t)(rand() % 64);
            for (; n < len; n++)
                text[n] = (char)(1 + rand() % 255);
        } else {
            int k = 1 + rand() % 12;
            for (int i = 0; i < k; i++) {
                const char *w = SOUP[rand() % (int)(sizeof SOUP / sizeof SOUP[0])];
                size_t wl = strlen(w);
                if (n + wl + 1 >= sizeof text)
                    break;
                memcpy(text + n, w, wl);
                n += wl;
                if (rand() % 2)
                    text[n++] = ' ';
            }
        }
        text[n] = '\0';
        arule *probe = NULL;
        if (arule_parse(text, &probe, NULL, 0) == LS_OK)
            parsed++;
        arule_free(&probe);
        fuzz_one(text);
    }
    ck_assert_int_gt(parsed, 0);
}
END_TEST

static Suite *audience_rule_suite(void)
{
    Suite *s = suite_create("audience_rule");
    TCase *good = tcase_create("good");
    tcase_add_checked_fixture(good, setup, NULL);
    tcase_add_test(good, test_issue_examples);
    tcase_add_test(good, test_operators);
    tcase_add_test(good, test_precedence);
    tcase_add_test(good, test_strings_and_lists);
    tcase_add_test(good, test_features_follow_time);
    suite_add_tcase(s, good);
    TCase *errs = tcase_create("errors");
    tcase_add_checked_fixture(errs, setup, NULL);
    tcase_add_test(errs, test_errors);
    tcase_add_test(errs, test_type_errors);
    tcase_add_test(errs, test_limits);
    tcase_add_test(errs, test_api_arguments);
    suite_add_tcase(s, errs);
    TCase *fmt = tcase_create("format");
    tcase_add_checked_fixture(fmt, setup, NULL);
    tcase_add_test(fmt, test_format);
    tcase_add_test(fmt, test_round_trip);
    tcase_add_test(fmt, test_fuzz);
    tcase_set_timeout(fmt, 120);
    suite_add_tcase(s, fmt);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audience_rule_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
