/* fuzz_record.c -- libFuzzer harness for the store's feature record:
 * bytes -> feature_decode (every version it reads: 1 to FEATURE_RECORD_VERSION).
 *
 * A record comes from the store's own file, but a file can be damaged or
 * come from another build: decoding must never crash, leak or read out of
 * bounds, whatever the bytes.  Besides that it asserts (fuzz_check.h):
 *  - a decode returns LS_OK, LS_EPARSE or LS_EVERSION, nothing else;
 *  - a record it accepts has no negative time, at most
 *    FEATURE_MAX_CATEGORIES categories, names within EVENT_MAX_STR and
 *    NUL-terminated;
 *  - an accepted record encodes (as the current version) and that
 *    encoding decodes to a record that encodes to the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feature.h"
#include "fuzz_check.h"
#include "leadscore/error.h"

static void check_accepted(const ls_features *f)
{
    const int64_t t[] = {f->first_seen_ms, f->last_seen_ms, f->birthday_ts_ms, f->first_purchase_ms,
                         f->last_purchase_ms, f->last_cart_ms, f->last_review_ms, f->last_negative_ms,
                         f->last_checkout_ms, f->last_share_ms, f->last_engaged_ms, f->first_visit_ms};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(t[i] >= 0);
    CHECK(f->ncategories <= FEATURE_MAX_CATEGORIES);
    for (int i = 0; i < f->ncategories; i++) {
        CHECK(f->categories[i].len <= EVENT_MAX_STR);
        CHECK(f->categories[i].name[f->categories[i].len] == '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ls_features f, g;
    static uint8_t a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
    /* an exact-size copy: ASan sees a read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    int rc = feature_decode(&f, copy, size);
    free(copy);
    CHECK(rc == LS_OK || rc == LS_EPARSE || rc == LS_EVERSION);
    if (rc != LS_OK)
        return 0;
    check_accepted(&f);
    size_t na = 0, nb = 0;
    CHECK(feature_encode(&f, a, sizeof a, &na) == LS_OK);
    CHECK(feature_decode(&g, a, na) == LS_OK);
    CHECK(feature_encode(&g, b, sizeof b, &nb) == LS_OK);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    return 0;
}
