/* fuzz_audience_rule.c -- libFuzzer harness for the audience rule language
 * (audience_rule.c), which reads rules from the wire (`audience_put`).
 *
 * The input is the rule text.  Besides "never crashes, leaks, reads out of
 * bounds or recurses without bound" it asserts what the service relies on:
 *  - a refused rule leaves a non-empty, NUL-terminated reason within the
 *    caller's buffer (exact-size heap buffers, so ASan sees an overrun)
 *    that names where: a column, an unknown field, or a limit;
 *  - an accepted rule's canonical form is accepted again, formats to the
 *    same text (canonical is a fixed point), and evaluates the same on
 *    every customer below (the form loses nothing);
 *  - evaluation is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audience_rule.h"
#include "leadscore/error.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

/* A few customers for evaluation: empty, a buyer with actions and
 * segments, odd numbers. */
static void customers(assess_result res[3], ls_features f[3])
{
    memset(res, 0, 3 * sizeof *res);
    for (int i = 0; i < 3; i++)
        feature_init(&f[i]);
    res[1].logistic.score = 0.7;
    res[1].logistic.score_100 = 70;
    res[1].logistic.tier = "hot";
    res[1].p_alive = 0.4;
    res[1].clv = 1234.5;
    res[1].journey.type = JT_REGULAR;
    res[1].journey.phase = JP_TRUST;
    res[1].journey.loyalty_tier = "gold";
    res[1].journey.actions = (1u << JA_ABANDONED_CART) | (1u << JA_WIN_BACK);
    res[1].nsegments = 2;
    snprintf(res[1].segments[0].segment, sizeof res[1].segments[0].segment, "running");
    snprintf(res[1].segments[1].segment, sizeof res[1].segments[1].segment, "deals");
    f[1].count[EV_PURCHASE] = 3;
    f[1].spend = 300;
    f[1].first_seen_ms = f[1].last_seen_ms = 1700000000000LL;
    res[0].logistic.tier = res[2].logistic.tier = "cold";
    res[0].journey.loyalty_tier = res[2].journey.loyalty_tier = "bronze";
    res[2].logistic.score = -0.0;
    res[2].clv = 1e308;
}

static int eval_all(const arule *r, unsigned *bits)
{
    assess_result res[3];
    ls_features f[3];
    feature_ctx ctx = {1700000000000LL, {3 * 86400000LL, 30 * 86400000LL}};
    customers(res, f);
    *bits = 0;
    for (int i = 0; i < 3; i++) {
        arule_input in = {&res[i], &f[i], &ctx, i != 0};
        int a = arule_eval(r, &in), b = arule_eval(r, &in);
        CHECK(a == b && (a == 0 || a == 1));
        *bits |= (unsigned)a << i;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > ARULE_MAX_TEXT + 16)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0'; /* a NUL inside ends the rule, as a C string would */
    static const size_t caps[] = {1, 17, 200};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        char *err = malloc(caps[c]);
        arule *r = NULL;
        int rc = arule_parse(text, &r, err, caps[c]);
        if (rc != LS_OK) {
            CHECK(r == NULL);
            CHECK(rc == LS_EPARSE || rc == LS_ENOMEM);
            CHECK(memchr(err, '\0', caps[c]) != NULL);
            if (caps[c] == 200 && rc == LS_EPARSE)
                CHECK(err[0] != '\0' && (strstr(err, "column") || strstr(err, "unknown field") ||
                                         strstr(err, "longer") || strstr(err, "too ")));
            free(err);
            continue;
        }
        CHECK(r != NULL);
        unsigned bits, bits2;
        eval_all(r, &bits);
        const char *canon = arule_text(r);
        char *again = malloc(ARULE_MAX_TEXT + 1);
        CHECK(arule_format(r, again, ARULE_MAX_TEXT + 1) == LS_OK && strcmp(again, canon) == 0);
        arule *r2 = NULL;
        CHECK(arule_parse(canon, &r2, NULL, 0) == LS_OK);
        CHECK(strcmp(arule_text(r2), canon) == 0);
        eval_all(r2, &bits2);
        CHECK(bits == bits2);
        CHECK(arule_uses_segments(r) == arule_uses_segments(r2));
        arule_free(&r2);
        arule_free(&r);
        CHECK(r == NULL);
        free(again);
        free(err);
    }
    free(text);
    return 0;
}
