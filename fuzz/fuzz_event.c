/* fuzz_event.c -- libFuzzer harness for one event: bytes -> codec_prescan
 * -> msgpack_unpack -> codec_decode_event -> event_validate.
 *
 * The input is the msgpack of one event map (PROTOCOL.md section 2) or of
 * an array of them (a PULL batch), exactly as it would sit in a frame.
 * Besides "never crashes, leaks or reads out of bounds" it asserts what
 * the rest of the service relies on (fuzz_check.h):
 *  - what codec_prescan() accepts, msgpack-c unpacks completely;
 *  - a decoded event's strings are borrowed from the input buffer;
 *  - a failed decode leaves a non-empty, NUL-terminated reason that fits
 *    the caller's buffer (checked with exact-size heap buffers, so ASan
 *    catches a write past the capacity);
 *  - an event event_validate() accepts has a known type, finite
 *    non-negative money, quantity 1..1e6, rating 1..5 when set, ts between
 *    2000-01-01 and now + 1 day, strings within max_str;
 *  - accepting is monotonic in max_str, and validating an accepted event
 *    again accepts it unchanged. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "fuzz_check.h"
#include "leadscore/error.h"

/* max_str values, ascending (the monotonicity check relies on the order):
 * 0 and 1 hit every string limit, 256 is the default, 4096 is clamped. */
static const size_t max_strs[] = {0, 1, 7, 64, 255, 256, 4096};
#define N_MAX_STRS (sizeof max_strs / sizeof max_strs[0])

/* "now" values: the usual clock, and one where a stale ts is in range. */
static const int64_t nows[] = {FUZZ_NOW_MS, EVENT_MIN_TS_MS};

/* Capacities for the decode reason: too small, short, what ops.c uses. */
static const size_t why_caps[] = {1, 9, 160};

static void validate_all(const ls_event *decoded)
{
    for (size_t n = 0; n < sizeof nows / sizeof nows[0]; n++) {
        int accepted_before = 0;
        for (size_t m = 0; m < N_MAX_STRS; m++) {
            ls_event ev = *decoded;
            const char *why = NULL;
            int rc = event_validate(&ev, nows[n], max_strs[m], &why);
            if (rc != LS_OK) {
                CHECK(rc == LS_EBADREQ || rc == LS_ETOOLARGE);
                CHECK(why != NULL && why[0] != '\0');
                /* a longer string limit never turns an accepted event away */
                CHECK(!accepted_before);
                continue;
            }
            accepted_before = 1;
            fuzz_check_valid_event(&ev, nows[n], max_strs[m]);

            ls_event again = ev;
            CHECK(event_validate(&again, nows[n], max_strs[m], &why) == LS_OK);
            CHECK(fuzz_same_event(&again, &ev));
        }
    }
}

static void decode_one(const msgpack_object *obj, const uint8_t *data, size_t size)
{
    ls_event first;
    int first_rc = 0;
    for (size_t c = 0; c < sizeof why_caps / sizeof why_caps[0]; c++) {
        char *why = malloc(why_caps[c]); /* exact size: ASan sees any overrun */
        ls_event ev;
        CHECK(why != NULL);
        memset(why, 'X', why_caps[c]);
        int rc = codec_decode_event(obj, &ev, why, why_caps[c]);
        if (rc != LS_OK) {
            CHECK(rc == LS_EBADREQ);
            CHECK(memchr(why, '\0', why_caps[c]) != NULL);
            if (why_caps[c] > 1)
                CHECK(why[0] != '\0');
        } else {
            fuzz_check_borrowed(&ev, data, size);
        }
        /* the reason's capacity does not change the outcome */
        if (c == 0) {
            first_rc = rc;
            first = ev;
        } else {
            CHECK(rc == first_rc);
            if (rc == LS_OK)
                CHECK(fuzz_same_event(&ev, &first));
        }
        free(why);
    }
    if (first_rc == LS_OK)
        validate_all(&first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    if (codec_prescan((const char *)data, size, CODEC_MAX_DEPTH, &why) != LS_OK) {
        CHECK(why != NULL && why[0] != '\0');
        return 0;
    }

    msgpack_zone zone;
    msgpack_object root;
    size_t off = 0;
    CHECK(msgpack_zone_init(&zone, 2048));
    /* the prescan promised one complete, well-formed value */
    CHECK(msgpack_unpack((const char *)data, size, &off, &zone, &root) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == size);

    if (root.type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < root.via.array.size; i++)
            decode_one(&root.via.array.ptr[i], data, size);
    } else {
        decode_one(&root, data, size);
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
