/* audience_rule.h -- the audience rule language: a small boolean language
 * over one customer's score result and features, parsed once into a
 * compact tree and evaluated without allocating (issue 14, audiences).
 *
 * Grammar (keywords are lower case; the comparisons bind tightest, then
 * `not`, then `and`, then `or`):
 *     rule  := or
 *     or    := and ("or" and)*
 *     and   := unary ("and" unary)*
 *     unary := "not" unary | "(" or ")" | cond
 *     cond  := value (("==" | "!=" | "<" | "<=" | ">" | ">=") value
 *                    | "in" ( "(" literal ("," literal)* ")" | list-field ))?
 *     value := number | string | field | "true" | "false"
 * A cond without an operator must be a boolean (the field `known`).  Since
 * the operands of a comparison are plain values, `not score > 1` reads as
 * `not (score > 1)`.  Numbers: -12, 3.5, 1e3.  Strings: double-quoted,
 * with \" and \\ as the only escapes.
 *
 * Fields: the score-result fields of the `score` reply -- score,
 * score_100, tier, p_alive, expected_purchases_30d, clv, customer_type,
 * phase, loyalty_points, loyalty_tier, actions (list of strings), segment
 * (the top segment, "" when there is none), segments (list of strings),
 * known (boolean) -- and every named feature of feature.h
 * (purchase_count, days_since_last_purchase, ...).  Names are resolved and
 * types checked at parse time: `==`/`!=` need two operands of one type,
 * the ordering operators need numbers, `in` needs a single value on its
 * left and a list of the same element type on its right. */
#ifndef LS_AUDIENCE_RULE_H
#define LS_AUDIENCE_RULE_H

#include <stddef.h>

#include "assess.h"
#include "feature.h"

/* Longest rule text, and longest canonical form, in bytes. */
#define ARULE_MAX_TEXT 4096
/* Deepest nesting of parentheses and `not`. */
#define ARULE_MAX_DEPTH 32
/* Most conditions and operators in one rule. */
#define ARULE_MAX_NODES 512
/* Most items over all the literal lists of one rule. */
#define ARULE_MAX_ITEMS 256

typedef struct arule arule;

/* What a rule is evaluated against; every pointer non-NULL.  result and
 * features are what assess_customer gave and read for one customer, ctx
 * the time (and decay) the features are read at, known 1 when the store
 * has a record for the customer. */
typedef struct {
    const assess_result *result;
    const ls_features *features;
    const feature_ctx *ctx;
    int known;
} arule_input;

/* Parses text into a new rule owned by the caller (free with arule_free).
 * Returns 0, LS_EPARSE with the reason and its 1-based column in err
 * ("at column 17: expected a value after '>='", "unknown field \"scor\"
 * at column 1"), LS_EINVAL for a NULL argument or LS_ENOMEM; *out is NULL
 * on failure.  err may be NULL when errlen is 0. */
int arule_parse(const char *text, arule **out, char *err, size_t errlen);

/* 1 when the customer in `in` matches r, else 0 (also for a NULL
 * argument).  Never allocates, never fails. */
int arule_eval(const arule *r, const arule_input *in);

/* The canonical form of r (single spaces, minimal parentheses, flattened
 * and/or chains, shortest round-tripping numbers), NUL-terminated into buf.
 * arule_parse of it gives a rule that evaluates the same.  Returns 0,
 * LS_ETOOLARGE when cap is too small (buf then holds a truncated prefix)
 * or LS_EINVAL.  ARULE_MAX_TEXT + 1 bytes are always enough. */
int arule_format(const arule *r, char *buf, size_t cap);

/* The canonical form, owned by r (valid while r lives). */
const char *arule_text(const arule *r);

/* 1 when r reads `segment` or `segments` (whose ranking costs more than
 * the rest of an assessment: an evaluator may skip it otherwise). */
int arule_uses_segments(const arule *r);

/* Frees *r and sets it to NULL; harmless on NULL. */
void arule_free(arule **r);

#endif
