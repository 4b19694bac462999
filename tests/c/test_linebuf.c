/* Unit tests of linebuf.h / linebuf.c: the read buffer with an incremental
 * line scan. */
#include "check.h"
#include "linebuf.h"

#include <stdlib.h>
#include <string.h>

/* Appends n bytes the way a reader does: ask for room, copy, commit. */
static int append(ua_linebuf *b, const char *src, size_t n)
{
    size_t room = 0;
    char *at = ua_linebuf_space(b, n, &room);
    if (!at || room < n)
        return 0;
    memcpy(at, src, n);
    ua_linebuf_commit(b, n);
    return 1;
}

static int holds(const ua_linebuf *b, const char *s)
{
    size_t n = strlen(s);
    return ua_linebuf_len(b) == n && (n == 0 || memcmp(ua_linebuf_peek(b), s, n) == 0);
}

static void test_empty_buffer(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK_EQ(ua_linebuf_len(&b), 0);
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    CHECK(b.data == NULL);
    ua_linebuf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.cap, 0);
}

static void test_lines_in_one_chunk(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK(append(&b, "a\nbb\nccc\ntail", 13));
    CHECK_EQ(ua_linebuf_find_line(&b), 2);
    /* Asking again without consuming gives the same line. */
    CHECK_EQ(ua_linebuf_find_line(&b), 2);
    ua_linebuf_consume(&b, 2);
    CHECK(holds(&b, "bb\nccc\ntail"));
    CHECK_EQ(ua_linebuf_find_line(&b), 3);
    ua_linebuf_consume(&b, 3);
    CHECK_EQ(ua_linebuf_find_line(&b), 4);
    ua_linebuf_consume(&b, 4);
    CHECK(holds(&b, "tail"));
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    CHECK(append(&b, "\n", 1));
    CHECK_EQ(ua_linebuf_find_line(&b), 5);
    ua_linebuf_consume(&b, 5);
    CHECK_EQ(ua_linebuf_len(&b), 0);
    ua_linebuf_free(&b);
}

static void test_newline_first_and_empty_lines(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK(append(&b, "\n\nx\n", 4));
    CHECK_EQ(ua_linebuf_find_line(&b), 1);
    ua_linebuf_consume(&b, 1);
    CHECK_EQ(ua_linebuf_find_line(&b), 1);
    ua_linebuf_consume(&b, 1);
    CHECK_EQ(ua_linebuf_find_line(&b), 2);
    ua_linebuf_consume(&b, 2);
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    ua_linebuf_free(&b);
}

static void test_emptied_buffer_is_released(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK(append(&b, "abc\n", 4));
    CHECK(b.data != NULL);
    ua_linebuf_consume(&b, 2);
    CHECK(b.data != NULL);
    ua_linebuf_consume(&b, 2);
    /* An idle connection holds no buffer. */
    CHECK(b.data == NULL);
    CHECK_EQ(b.cap, 0);
    CHECK_EQ(ua_linebuf_len(&b), 0);
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    /* And it is usable again. */
    CHECK(append(&b, "z\n", 2));
    CHECK_EQ(ua_linebuf_find_line(&b), 2);
    ua_linebuf_free(&b);
}

static void test_consuming_more_than_is_buffered_empties_it(void)
{
    /* A miscounted n never moves the front past the end (which would make
     * the length huge and the next read run past the storage). */
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK(append(&b, "abc", 3));
    ua_linebuf_consume(&b, 1);
    ua_linebuf_consume(&b, 10);
    CHECK_EQ(ua_linebuf_len(&b), 0);
    CHECK(b.data == NULL);
    CHECK(append(&b, "de\n", 3));
    CHECK(holds(&b, "de\n"));
    CHECK_EQ(ua_linebuf_find_line(&b), 3);
    ua_linebuf_free(&b);
}

static void test_long_line_in_small_chunks_is_scanned_once(void)
{
    /* A 200 kB line arriving in chunks of 1..300 bytes: no line until the
     * '\n', and each look starts where the last one stopped. */
    enum { LINE = 200000 };
    char *line = malloc(LINE);
    if (!CHECK(line != NULL))
        return;
    for (size_t i = 0; i < LINE - 1; i++)
        line[i] = (char)('a' + i % 26);
    line[LINE - 1] = '\n';
    ua_linebuf b;
    ua_linebuf_init(&b);
    size_t done = 0;
    int ok = 1;
    while (done < LINE && ok) {
        size_t n = 1 + check_rand_below(300);
        if (n > LINE - done)
            n = LINE - done;
        ok = CHECK(append(&b, line + done, n));
        done += n;
        ssize_t got = ua_linebuf_find_line(&b);
        if (done < LINE)
            /* Everything so far is known to hold no newline. */
            ok = ok && CHECK_EQ(got, -1) && CHECK_EQ(b.scanned, done);
        else
            ok = ok && CHECK_EQ(got, LINE);
    }
    CHECK(ua_linebuf_len(&b) == LINE && memcmp(ua_linebuf_peek(&b), line, LINE) == 0);
    ua_linebuf_consume(&b, LINE);
    CHECK(b.data == NULL);
    ua_linebuf_free(&b);
    free(line);
}

static void test_consume_part_of_a_scanned_line(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    CHECK(append(&b, "abcdef", 6));
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    CHECK_EQ(b.scanned, 6);
    /* Taking bytes off the front keeps what is known about the rest. */
    ua_linebuf_consume(&b, 2);
    CHECK_EQ(b.scanned, 4);
    CHECK(holds(&b, "cdef"));
    CHECK(append(&b, "\nnext", 5));
    CHECK_EQ(ua_linebuf_find_line(&b), 5);
    ua_linebuf_consume(&b, 5);
    CHECK(holds(&b, "next"));
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    ua_linebuf_free(&b);
}

static void test_space_gives_room_and_grows(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    size_t room = 0;
    char *at = ua_linebuf_space(&b, 1, &room);
    CHECK(at != NULL);
    CHECK(room >= 1);
    /* Room past what was asked is usable: fill all of it. */
    memset(at, 'q', room);
    ua_linebuf_commit(&b, room);
    CHECK_EQ(ua_linebuf_len(&b), room);
    size_t first = room;

    /* A big request grows the buffer and keeps the data. */
    at = ua_linebuf_space(&b, 1 << 20, &room);
    CHECK(at != NULL);
    CHECK(room >= (size_t)1 << 20);
    CHECK(b.cap >= first + ((size_t)1 << 20));
    memset(at, 'r', 1 << 20);
    ua_linebuf_commit(&b, 1 << 20);
    const char *d = ua_linebuf_peek(&b);
    CHECK(d[0] == 'q' && d[first - 1] == 'q' && d[first] == 'r' &&
          d[first + (1 << 20) - 1] == 'r');
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    ua_linebuf_free(&b);
}

static void test_space_reclaims_the_consumed_front(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    size_t room = 0;
    char *at = ua_linebuf_space(&b, 1, &room);
    if (!CHECK(at != NULL))
        return;
    size_t cap = b.cap;
    /* Fill to the end, then consume most of it from the front. */
    for (size_t i = 0; i < room; i++)
        at[i] = (char)('0' + i % 10);
    ua_linebuf_commit(&b, room);
    size_t keep = cap / 4;
    ua_linebuf_consume(&b, cap - keep);
    CHECK_EQ(ua_linebuf_len(&b), keep);
    char expect0 = (char)('0' + (cap - keep) % 10);
    /* Asking for what fits once the front is reclaimed: no new memory. */
    char *data = b.data;
    at = ua_linebuf_space(&b, cap / 2, &room);
    CHECK(at != NULL);
    CHECK(room >= cap / 2);
    CHECK_EQ(b.cap, cap);
    CHECK(b.data == data);
    CHECK_EQ(b.start, 0);
    CHECK(ua_linebuf_peek(&b)[0] == expect0);
    CHECK(ua_linebuf_peek(&b)[keep - 1] == (char)('0' + (cap - 1) % 10));
    ua_linebuf_free(&b);
}

/* Random appends and consumes against a flat copy of the stream. */
static void test_random_ops_match_reference(void)
{
    enum { REF = 1 << 22 };
    char *ref = malloc(REF);
    char *chunk = malloc(70001);
    if (!CHECK(ref && chunk)) {
        free(ref);
        free(chunk);
        return;
    }
    size_t ref_start = 0, ref_end = 0;
    ua_linebuf b;
    ua_linebuf_init(&b);
    int ok = 1;
    for (int op = 0; op < 20000 && ok; op++) {
        unsigned what = check_rand_below(10);
        if (what < 5) {
            /* Chunks from tiny to bigger than the first allocation. */
            size_t n = 1 + check_rand_below(what == 0 ? 70000 : 200);
            unsigned nl_every = 1 + check_rand_below(400);
            if (ref_end + n > REF) {
                /* Out of reference space: start over with an empty stream. */
                ua_linebuf_consume(&b, ua_linebuf_len(&b));
                ref_start = ref_end = 0;
            }
            for (size_t i = 0; i < n; i++)
                chunk[i] = check_rand_below(nl_every) ? (char)('A' + check_rand_below(26)) : '\n';
            ok = CHECK(append(&b, chunk, n));
            memcpy(ref + ref_end, chunk, n);
            ref_end += n;
        } else if (what < 8) {
            /* Take a line if there is one, as readline() does. */
            const char *nl = memchr(ref + ref_start, '\n', ref_end - ref_start);
            ssize_t want = nl ? (ssize_t)(nl - (ref + ref_start)) + 1 : -1;
            ssize_t got = ua_linebuf_find_line(&b);
            ok = CHECK_EQ(got, want);
            if (ok && got > 0) {
                ua_linebuf_consume(&b, (size_t)got);
                ref_start += (size_t)got;
            }
        } else {
            /* Take some bytes, as read(n) does. */
            size_t len = ref_end - ref_start;
            size_t n = len ? check_rand_below((unsigned)len + 1) : 0;
            ua_linebuf_consume(&b, n);
            ref_start += n;
        }
        size_t len = ref_end - ref_start;
        ok = ok && CHECK_EQ(ua_linebuf_len(&b), len) &&
             CHECK(len == 0 || memcmp(ua_linebuf_peek(&b), ref + ref_start, len) == 0) &&
             CHECK(b.scanned <= len) && CHECK(b.end <= b.cap);
    }
    ua_linebuf_free(&b);
    free(ref);
    free(chunk);
}

/* An allocator that counts its live blocks and can be made to fail. */
static int live_blocks, fail_next;

static void *counting_resize(void *p, size_t n)
{
    if (!n) {
        if (p)
            live_blocks--;
        free(p);
        return NULL;
    }
    if (fail_next) {
        fail_next = 0;
        if (p)
            live_blocks--;
        free(p);   /* the contract: a failed resize releases the block */
        return NULL;
    }
    if (!p)
        live_blocks++;
    return realloc(p, n);
}

static void test_detach_hands_the_storage_over_and_keeps_the_rest(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    b.mem = counting_resize;
    CHECK(append(&b, "xxhello\nworld", 13));
    ua_linebuf_consume(&b, 2);                 /* the data no longer starts at the front */
    CHECK_EQ(ua_linebuf_find_line(&b), 6);
    size_t cap = 0;
    char *block = ua_linebuf_detach(&b, 6, &cap);
    CHECK(block != NULL);
    CHECK(memcmp(block, "hello\n", 6) == 0);  /* moved to the block's start */
    CHECK(cap >= 13);
    CHECK(holds(&b, "world"));                 /* the rest, in a block of its own */
    CHECK(b.data != block);
    CHECK_EQ(live_blocks, 2);
    CHECK_EQ(ua_linebuf_find_line(&b), -1);
    counting_resize(block, 0);
    /* Everything detached: the buffer holds no block at all. */
    CHECK(append(&b, "\n", 1));
    block = ua_linebuf_detach(&b, ua_linebuf_len(&b), &cap);
    CHECK(block != NULL && memcmp(block, "world\n", 6) == 0);
    CHECK(b.data == NULL && b.cap == 0 && ua_linebuf_len(&b) == 0);
    counting_resize(block, 0);
    ua_linebuf_free(&b);
    CHECK_EQ(live_blocks, 0);
}

static void test_growth_goes_through_the_buffers_allocator(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    b.mem = counting_resize;
    char chunk[1000];
    memset(chunk, 'a', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        CHECK(append(&b, chunk, sizeof(chunk)));
    CHECK_EQ(live_blocks, 1);                  /* grown in place: one block all along */
    CHECK(b.cap >= 100000);
    /* A resize that fails releases the block: the buffer is left empty and usable. */
    fail_next = 1;
    size_t room;
    CHECK(ua_linebuf_space(&b, b.cap, &room) == NULL);
    CHECK_EQ(live_blocks, 0);
    CHECK(append(&b, "ok\n", 3));
    CHECK(holds(&b, "ok\n"));
    ua_linebuf_free(&b);
    CHECK_EQ(live_blocks, 0);
    CHECK(b.mem == counting_resize);           /* free keeps the allocator */
}

int main(void)
{
    RUN(test_detach_hands_the_storage_over_and_keeps_the_rest);
    RUN(test_growth_goes_through_the_buffers_allocator);
    RUN(test_empty_buffer);
    RUN(test_lines_in_one_chunk);
    RUN(test_newline_first_and_empty_lines);
    RUN(test_emptied_buffer_is_released);
    RUN(test_consuming_more_than_is_buffered_empties_it);
    RUN(test_long_line_in_small_chunks_is_scanned_once);
    RUN(test_consume_part_of_a_scanned_line);
    RUN(test_space_gives_room_and_grows);
    RUN(test_space_reclaims_the_consumed_front);
    RUN(test_random_ops_match_reference);
    return check_summary("test_linebuf");
}
