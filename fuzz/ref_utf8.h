/* A reference UTF-8 checker for the fuzz targets, written from RFC 3629's
 * definition independently of src/core/wsproto.c: a sequence's length comes
 * from the lead byte's bit pattern, and whether its bytes so far can still
 * be (or are) a valid character is decided by arithmetic on the range of
 * code points they could complete to, not by a table of byte ranges.
 *
 * A code point is valid in a sequence of L bytes when it is at least the
 * smallest one that needs L bytes (no overlong forms), at most U+10FFFF and
 * not a surrogate (U+D800..U+DFFF). */
#ifndef UA_FUZZ_REF_UTF8_H
#define UA_FUZZ_REF_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the sequence a lead byte starts, or 0 if it cannot start one
 * (a continuation byte 10xxxxxx, or 11111xxx). */
static inline int ref_utf8_seq_len(uint8_t b)
{
    if ((b & 0x80) == 0x00)
        return 1;
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 3;
    if ((b & 0xF8) == 0xF0)
        return 4;
    return 0;
}

/* s[0..m) is a lead byte of a sequence of L bytes followed by m-1 (m <= L)
 * continuation bytes. 1 if some way of adding the L-m missing continuation
 * bytes gives a valid code point (for m == L: the code point is valid). */
static inline int ref_utf8_partial_ok(const uint8_t *s, size_t m, int L)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (L == 1)
        return 1;
    uint32_t lo = s[0] & (0x7Fu >> L);
    for (size_t j = 1; j < m; j++)
        lo = lo << 6 | (s[j] & 0x3Fu);
    uint32_t hi = lo;
    for (size_t j = m; j < (size_t)L; j++) {
        lo = lo << 6;            /* the missing bytes all 0x80 */
        hi = hi << 6 | 0x3F;     /* the missing bytes all 0xBF */
    }
    /* The completions are exactly the code points lo..hi. */
    uint32_t a = lo > min_cp[L] ? lo : min_cp[L];
    uint32_t b = hi < 0x10FFFF ? hi : 0x10FFFF;
    if (a > b)
        return 0;
    if (a >= 0xD800 && b <= 0xDFFF)
        return 0;   /* every completion is a surrogate */
    return 1;
}

/* Scans s[from..n), where from is the start of a character (or n). Returns
 * the index of the first byte at which s[0..i] stops being a prefix of any
 * valid UTF-8 text, or n when there is none; sets *boundary to the start of
 * the character the scan ended inside (n if it ended between characters),
 * so a later scan of more bytes can go on from there. */
static inline size_t ref_utf8_scan(const uint8_t *s, size_t from, size_t n, size_t *boundary)
{
    size_t i = from;
    while (i < n) {
        int L = ref_utf8_seq_len(s[i]);
        if (L == 0 || !ref_utf8_partial_ok(s + i, 1, L)) {
            *boundary = i;
            return i;
        }
        size_t j = 1;
        for (; j < (size_t)L && i + j < n; j++) {
            if ((s[i + j] & 0xC0) != 0x80 || !ref_utf8_partial_ok(s + i, j + 1, L)) {
                *boundary = i;
                return i + j;
            }
        }
        if (j < (size_t)L) {   /* the text ends inside this character */
            *boundary = i;
            return n;
        }
        i += (size_t)L;
    }
    *boundary = n;
    return n;
}

/* 1 if s[0..n) is valid UTF-8 and does not end inside a character. */
static inline int ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t boundary;
    return ref_utf8_scan(s, 0, n, &boundary) == n && boundary == n;
}

#endif
