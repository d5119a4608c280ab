/* segments.h -- which content to show a customer: the model file's
 * catalogue maps category prefixes to content segments, plus segments for
 * customer types and loyalty phases and optional defaults for everyone.
 *
 * A category segment's weight is the customer's interest in the matching
 * categories: recent interest (short half-life) plus long_term_weight x
 * long-term interest, both decayed to the query time.  Nothing is
 * recommended without evidence unless the catalogue lists it as a default.
 * Every segment comes with a reason a person can read. */
#ifndef LS_SEGMENTS_H
#define LS_SEGMENTS_H

#include <jansson.h>
#include <stddef.h>

#include "feature.h"
#include "journey.h"

#define SEGMENTS_MAX_RULES 256
#define SEGMENTS_MAX_DEFAULTS 8
#define SEGMENTS_MAX_K 50
#define SEGMENTS_NAME 64

typedef struct {
    char segment[SEGMENTS_NAME];
    double weight;
    int id;                             /* same id = same segment name (set by segments_parse) */
} segments_fixed;

typedef struct {
    int k;                              /* default list length */
    double long_term_weight;
    int nrules;
    struct {
        char prefix[128];
        size_t prefix_len;
        char segment[SEGMENTS_NAME];
        int id;                         /* as segments_fixed.id */
    } rules[SEGMENTS_MAX_RULES];
    segments_fixed by_type[JT_COUNT];   /* empty segment name: none */
    segments_fixed by_phase[JP_COUNT];
    int ndefaults;
    segments_fixed defaults[SEGMENTS_MAX_DEFAULTS];
} segments_catalogue;

typedef struct {
    char segment[SEGMENTS_NAME];
    double weight;
    char reason[200];
} segments_item;

/* What segments_rank needs besides the record. */
typedef struct {
    feature_ctx ctx;
    journey_result journey;
    double p_alive;
    double clv;
} segments_inputs;

/* Reads the "segments" object (NULL: an empty catalogue, k 3).  0 or
 * LS_EPARSE with the reason in err. */
int segments_parse(json_t *obj, segments_catalogue *cat, char *err, size_t errlen);

/* Ranks the segments for record f, best first, at most k (<= SEGMENTS_MAX_K)
 * into out; returns how many. */
int segments_rank(const segments_catalogue *cat, const ls_features *f, const segments_inputs *in,
                  int k, segments_item *out);

/* The same; with reasons 0 every out[i].reason is left empty (""), which
 * saves their formatting.  segments_rank is segments_rank_ex(..., 1, ...). */
int segments_rank_ex(const segments_catalogue *cat, const ls_features *f, const segments_inputs *in,
                     int k, int reasons, segments_item *out);

#endif
