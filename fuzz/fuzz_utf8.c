/* Fuzz target: ua_utf8_feed (src/core/wsproto.c), the incremental UTF-8
 * validator, against the reference checker in ref_utf8.h.
 *
 * Input: byte 0 chooses the split point, the rest is the text. The text is
 * fed in two pieces (each copied to a heap block of exactly its size, so an
 * over-read is caught by AddressSanitizer), from a state set up with
 * ua_utf8_init and from an all-zero one (documented as ready too), and then
 * once more a byte at a time. Checks:
 *   - each feed returns -1 exactly when the text so far has stopped being a
 *     prefix of valid UTF-8 (the validator fails at the first bad byte, not
 *     at the end of a character), else 0;
 *   - ua_utf8_complete at the end agrees with "valid and not cut inside a
 *     character";
 *   - invalid is final: every later feed, even an empty one, returns -1. */
#include "ref_utf8.h"
#include "wsproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    CHECK(q != NULL);
    if (n)
        memcpy(q, p, n);
    return q;
}

/* Feeds text in two pieces split at split; bad is the reference's first bad
 * index (n if none), complete its verdict on the whole text. */
static void two_pieces(ua_utf8 *st, const uint8_t *text, size_t n, size_t split, size_t bad,
                       int complete)
{
    uint8_t *a = dup_exact(text, split);
    uint8_t *b = dup_exact(text + split, n - split);
    int r1 = ua_utf8_feed(st, a, split);
    CHECK(r1 == (bad < split ? -1 : 0));
    int r2 = ua_utf8_feed(st, b, n - split);
    CHECK(r2 == (bad < n ? -1 : 0));
    if (r2 == 0) {
        CHECK(st->need <= 3);
        CHECK(ua_utf8_complete(st) == complete);
        /* An empty feed changes nothing. */
        ua_utf8 before = *st;
        CHECK(ua_utf8_feed(st, a, 0) == 0);
        CHECK(memcmp(&before, st, sizeof(before)) == 0);
    } else {
        CHECK(st->need == UA_UTF8_BAD);
        CHECK(!ua_utf8_complete(st));
        static const uint8_t ascii = 'a';
        CHECK(ua_utf8_feed(st, &ascii, 0) == -1);
        CHECK(ua_utf8_feed(st, &ascii, 1) == -1);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *text = data + 1;
    size_t n = size - 1;
    size_t split = data[0] % (n + 1);

    size_t boundary;
    size_t bad = ref_utf8_scan(text, 0, n, &boundary);
    int complete = bad == n && boundary == n;
    CHECK(complete == ref_utf8_valid(text, n));

    ua_utf8 st;
    ua_utf8_init(&st);
    two_pieces(&st, text, n, split, bad, complete);

    ua_utf8 zero;
    memset(&zero, 0, sizeof(zero));
    two_pieces(&zero, text, n, split, bad, complete);

    /* A byte at a time (each in a 1-byte block): the first -1 comes
     * exactly at the first bad byte. */
    ua_utf8 one;
    ua_utf8_init(&one);
    uint8_t *p = malloc(1);
    CHECK(p != NULL);
    for (size_t i = 0; i < n; i++) {
        p[0] = text[i];
        int r = ua_utf8_feed(&one, p, 1);
        CHECK(r == (i >= bad ? -1 : 0));
    }
    free(p);
    CHECK(ua_utf8_complete(&one) == complete);
    return 0;
}
