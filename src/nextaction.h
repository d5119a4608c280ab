/* nextaction.h -- next best action: the moments journey.c flags for a
 * customer (journey_result.actions), ranked by expected value, each with
 * a short reason a marketer can read.
 *
 * The rule.  Every action is worth
 *     value = p x stake   (rounded to cents, so equal products tie exactly)
 * where p is the chance the message pays off and stake is what it is
 * worth, in the shop's currency, when it does.  Two chances are used:
 *   s  readiness: the calibrated P(order within the model's horizon), for
 *      the actions that ask for an order now;
 *   A  P(alive) (BG/NBD), for the actions that look after the
 *      relationship: the chance there is still a customer to keep.
 * and three amounts:
 *   C  the open cart (adds minus removes since the last order);
 *   O  the customer's average order (spend / orders), or the population
 *      mean order value of the model's Gamma-Gamma part, p.gamma/(q - 1),
 *      for a customer with no priced order;
 *   V  clv: the expected value of the model's clv horizon (365 days).
 *
 *   action          p   stake
 *   abandoned_cart  s   C; O when the cart carried no prices
 *   win_back        s   O   (the order it brings back)
 *   birthday        s   O   (the order the occasion offer asks for)
 *   anniversary     s   O
 *   vip_reward      A   NEXTACTION_VIP_SHARE x V     (the value a reward protects)
 *   review_request  A   NEXTACTION_REVIEW_SHARE x V  (reviews sell to others)
 *   recovery        A   V   (the whole expected year is at risk)
 *   account_invite  s   NEXTACTION_INVITE_SHARE x V  (an account eases the next orders)
 *
 * Properties: p is clamped to [0, 1] (NaN: 0) and stake to
 * [0, NEXTACTION_MAX_STAKE] (NaN: 0, +inf: the cap), so every value is
 * finite.  A larger priced cart never lowers abandoned_cart's value, and a
 * higher readiness never lowers any action's value.  Ties keep the
 * journey_action order (abandoned_cart first, account_invite last).  The
 * shares are assumptions written here, not fitted: change them here and in
 * the README table together. */
#ifndef LS_NEXTACTION_H
#define LS_NEXTACTION_H

#include <stdint.h>

#include "assess.h"
#include "codec.h"
#include "feature.h"
#include "journey.h"
#include "model.h"

#define NEXTACTION_REASON_MAX 120
/* Shares of V credited to the relationship actions. */
#define NEXTACTION_VIP_SHARE 0.10
#define NEXTACTION_REVIEW_SHARE 0.05
#define NEXTACTION_INVITE_SHARE 0.10
/* Largest stake, so that p x stake stays finite on any record. */
#define NEXTACTION_MAX_STAKE 1e12

typedef struct {
    journey_action action;
    double value;                        /* p x stake, rounded to cents */
    double p;                            /* 0..1 */
    double stake;                        /* currency, 0..NEXTACTION_MAX_STAKE */
    char reason[NEXTACTION_REASON_MAX];  /* NUL-terminated, never empty */
} nextaction_item;

/* Ranks the actions set in a->journey.actions (bits past JA_COUNT are
 * ignored) for record f at now_ms by expected value, highest first; ties
 * keep the journey_action order.  m gives the population mean order value,
 * the clv horizon and the journey rules named in reasons; with m NULL the
 * mean order value is 0.  Fills out[0 .. n-1] and returns n (0 .. JA_COUNT).
 * Pure; never allocates, never fails. */
int nextaction_rank(const model *m, const ls_features *f, const assess_result *a, int64_t now_ms,
                    nextaction_item out[JA_COUNT]);

/* Writes items[0 .. n-1] as one msgpack array of maps
 * {action, value, p, stake, reason}, in the given order. */
void nextaction_write(codec_writer *w, const nextaction_item *items, int n);

/* The score result's field: writes the key "next_actions" and the ranked
 * array (nextaction_rank, then nextaction_write) into the open map of w. */
void nextaction_emit(codec_writer *w, const model *m, const ls_features *f, const assess_result *a, int64_t now_ms);

#endif
