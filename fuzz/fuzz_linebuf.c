/* Fuzz target: the stream line buffer (src/core/linebuf.c).
 *
 * The input is a program: a sequence of operations, each an opcode byte and
 * its operands (taken from the bytes that follow; missing bytes read as 0).
 * The operations are run on a ua_linebuf and on a reference model, a flat
 * copy of everything appended with a read position, and the two must agree
 * after every step.
 *
 *   op % 10
 *   0  append n (1 byte) bytes taken from the input, via space(n) + commit
 *   1  append a generated run: want (2 bytes, & 0x3FFF), commit want + extra
 *      (1 byte) bytes but no more than the room given, a '\n' every k
 *      (1 byte) bytes
 *   2  space(want) (2 bytes) and commit nothing
 *   3  find_line, twice (asking again gives the same answer)
 *   4  readline: find_line, then consume the line found
 *   5  consume n (2 bytes) % (len + 9) bytes (past the end: all of them)
 *   6  consume everything buffered
 *   7  space(SIZE_MAX - k) (1 byte): must fail with NULL and change nothing
 *   8  free (the model drops what was buffered)
 *   9  find_line, consume part (1 byte) of the line, find_line again
 *
 * Checks: room >= want and the pointer returned is where the data ends;
 * ua_linebuf_len equals the model's length; the buffered bytes equal the
 * model's unread bytes (in full whenever the data moved, at the end, and for
 * every line read); every line found is the model's next line (same
 * length, same bytes): nothing lost, duplicated or reordered; the struct's
 * invariants (start <= end <= cap, scanned <= len and no '\n' in the scanned
 * part, no memory held when empty after a consume). */
#include "linebuf.h"

#include <stdint.h>
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

/* The model's loops are not what is being explored: keep them out of the
 * coverage feedback (and fast). */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

/* Bounds that keep one input fast: bytes buffered at once, bytes appended
 * in all. */
#define MAX_BUFFERED (256u << 10)
#define MAX_STREAM (4u << 20)

/* The reference: every byte ever appended, and how far it has been read.
 * nl[] lists the stream positions of the '\n's, in order; nl_next is the
 * first one at or after rd. */
typedef struct model {
    uint8_t *s;
    size_t cap, rd, wr;
    size_t *nl;
    size_t nl_cap, nl_len, nl_next;
} model;

NO_COVERAGE static void model_append(model *m, const uint8_t *p, size_t n)
{
    if (!n)
        return;
    if (m->wr + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->wr + n)
            cap *= 2;
        m->s = realloc(m->s, cap);
        CHECK(m->s != NULL);
        m->cap = cap;
    }
    memcpy(m->s + m->wr, p, n);
    const uint8_t *at = p, *end = p + n;
    while ((at = memchr(at, '\n', (size_t)(end - at))) != NULL) {
        if (m->nl_len == m->nl_cap) {
            m->nl_cap = m->nl_cap ? 2 * m->nl_cap : 256;
            m->nl = realloc(m->nl, m->nl_cap * sizeof(*m->nl));
            CHECK(m->nl != NULL);
        }
        m->nl[m->nl_len++] = m->wr + (size_t)(at - p);
        at++;
    }
    m->wr += n;
}

NO_COVERAGE static void model_consume(model *m, size_t n)
{
    CHECK(n <= m->wr - m->rd);
    m->rd += n;
    while (m->nl_next < m->nl_len && m->nl[m->nl_next] < m->rd)
        m->nl_next++;
}

NO_COVERAGE static size_t model_len(const model *m)
{
    return m->wr - m->rd;
}

/* Length of the next line, '\n' included, or -1. */
NO_COVERAGE static ssize_t model_line(const model *m)
{
    if (m->nl_next == m->nl_len)
        return -1;
    return (ssize_t)(m->nl[m->nl_next] - m->rd + 1);
}

/* Reading operands: missing bytes are 0. */
typedef struct reader {
    const uint8_t *p, *end;
} reader;

static unsigned u8(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static unsigned u16(reader *r)
{
    unsigned hi = u8(r);
    return hi << 8 | u8(r);
}

/* State of the buffer as last checked, to see when its data moved. */
typedef struct seen {
    const char *data;
    size_t start;
} seen;

NO_COVERAGE static void check_all(const ua_linebuf *b, const model *m, seen *last, int full)
{
    size_t len = ua_linebuf_len(b);
    CHECK(b->start <= b->end);
    CHECK(b->end <= b->cap);
    CHECK((b->cap == 0) == (b->data == NULL));
    CHECK(len == model_len(m));
    CHECK(b->scanned <= len);
    /* The part known to hold no '\n' really holds none. */
    ssize_t line = model_line(m);
    CHECK(line < 0 || (size_t)line > b->scanned);
    if (b->data != last->data || b->start < last->start)
        full = 1;   /* moved or compacted: compare it all */
    if (len) {
        const uint8_t *have = (const uint8_t *)ua_linebuf_peek(b);
        const uint8_t *want = m->s + m->rd;
        if (full) {
            CHECK(memcmp(have, want, len) == 0);
        } else {
            size_t k = len < 64 ? len : 64;
            CHECK(memcmp(have, want, k) == 0);
            CHECK(memcmp(have + len - k, want + len - k, k) == 0);
        }
    }
    last->data = b->data;
    last->start = b->start;
}

/* A generated run for stream positions from..from+n: letters, and a '\n'
 * at every position p with p % (every + 1) == every (none if every is 255). */
NO_COVERAGE static void fill(uint8_t *out, size_t n, size_t from, unsigned every)
{
    static uint8_t letters[26 + (1u << 16)];
    if (!letters[0])
        for (size_t i = 0; i < sizeof(letters); i++)
            letters[i] = (uint8_t)('a' + i % 26);
    memcpy(out, letters + from % 26, n);
    if (every == 255)
        return;
    size_t first = (every + 1 - (from + 1) % (every + 1)) % (every + 1);
    for (size_t i = first; i < n; i += every + 1)
        out[i] = '\n';
}

/* Appends: asks for want bytes of room, writes n (<= room) bytes from src. */
static void append(ua_linebuf *b, model *m, size_t want, const uint8_t *src, size_t n)
{
    size_t room = (size_t)-1;
    size_t len = ua_linebuf_len(b);
    char *at = ua_linebuf_space(b, want, &room);
    CHECK(at != NULL);
    CHECK(room >= (want ? want : 1));
    CHECK(at == b->data + b->end);
    CHECK(room == b->cap - b->end);
    CHECK(ua_linebuf_len(b) == len);
    CHECK(n <= room);
    if (n)
        memcpy(at, src, n);
    ua_linebuf_commit(b, n);
    model_append(m, src, n);
}

static void consume(ua_linebuf *b, model *m, size_t n)
{
    ua_linebuf_consume(b, n);
    model_consume(m, n < model_len(m) ? n : model_len(m));
    if (model_len(m) == 0 && n) {
        /* An emptied buffer is released. */
        CHECK(b->data == NULL);
        CHECK(b->cap == 0);
    }
}

static ssize_t find_line(ua_linebuf *b, const model *m)
{
    ssize_t line = ua_linebuf_find_line(b);
    CHECK(line == model_line(m));
    if (line >= 0) {
        CHECK(line >= 1 && (size_t)line <= ua_linebuf_len(b));
        CHECK(memcmp(ua_linebuf_peek(b), m->s + m->rd, (size_t)line) == 0);
        CHECK(ua_linebuf_peek(b)[line - 1] == '\n');
        CHECK(b->scanned < (size_t)line);
    } else {
        CHECK(b->scanned == ua_linebuf_len(b));
    }
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t gen[1u << 16];
    /* The model's memory is kept from one input to the next. */
    static model m;
    ua_linebuf b;
    seen last = {NULL, 0};
    reader r = {data, data + size};
    ua_linebuf_init(&b);
    m.rd = m.wr = 0;
    m.nl_len = m.nl_next = 0;

    while (r.p < r.end) {
        unsigned op = u8(&r) % 10;
        switch (op) {
        case 0: {
            size_t n = u8(&r);
            size_t k = (size_t)(r.end - r.p) < n ? (size_t)(r.end - r.p) : n;
            /* The bytes (padded with 'x' if the input ends) are used up
             * even when the append is skipped. */
            memset(gen, 'x', n);
            memcpy(gen, r.p, k);
            r.p += k;
            if (model_len(&m) + n > MAX_BUFFERED || m.wr + n > MAX_STREAM)
                break;
            append(&b, &m, n, gen, n);
            break;
        }
        case 1: {
            size_t want = u16(&r) & 0x3FFF;
            size_t extra = u8(&r);
            unsigned every = u8(&r);
            if (model_len(&m) + want + extra > MAX_BUFFERED || m.wr + want + extra > MAX_STREAM)
                break;
            /* How much room the buffer will give is not known before
             * asking: ask, fill gen, then append (asking again, which must
             * not move the data). */
            size_t room = 0;
            char *at = ua_linebuf_space(&b, want, &room);
            CHECK(at != NULL);
            size_t n = want + extra;
            if (n > room)
                n = room;
            if (n > sizeof(gen))
                n = sizeof(gen);
            fill(gen, n, m.wr, every);
            append(&b, &m, want, gen, n);
            CHECK(b.data + b.end - n == at);   /* the second call did not move it */
            break;
        }
        case 2: {
            size_t want = u16(&r);
            if (model_len(&m) + want > MAX_BUFFERED)
                break;
            append(&b, &m, want, gen, 0);
            break;
        }
        case 3: {
            ssize_t a = find_line(&b, &m);
            ssize_t c = find_line(&b, &m);
            CHECK(a == c);
            break;
        }
        case 4: {
            ssize_t line = find_line(&b, &m);
            if (line >= 0)
                consume(&b, &m, (size_t)line);
            break;
        }
        case 5: {
            size_t n = u16(&r) % (model_len(&m) + 9);
            size_t have = n < model_len(&m) ? n : model_len(&m);
            if (have)
                CHECK(memcmp(ua_linebuf_peek(&b), m.s + m.rd, have) == 0);
            consume(&b, &m, n);
            break;
        }
        case 6: {
            size_t n = model_len(&m);
            if (n)
                CHECK(memcmp(ua_linebuf_peek(&b), m.s + m.rd, n) == 0);
            consume(&b, &m, n);
            break;
        }
        case 7: {
            ua_linebuf before = b;
            size_t room = 12345;
            char *at = ua_linebuf_space(&b, (size_t)-1 - u8(&r), &room);
            CHECK(at == NULL);
            CHECK(memcmp(&before, &b, sizeof(b)) == 0);
            break;
        }
        case 8:
            ua_linebuf_free(&b);
            CHECK(b.data == NULL && b.cap == 0 && ua_linebuf_len(&b) == 0);
            model_consume(&m, model_len(&m));
            break;
        case 9: {
            unsigned part = u8(&r);
            ssize_t line = find_line(&b, &m);
            if (line > 0) {
                size_t k = part % (size_t)line;
                consume(&b, &m, k);
                ssize_t again = find_line(&b, &m);
                CHECK(again == line - (ssize_t)k);
            }
            break;
        }
        }
        check_all(&b, &m, &last, 0);
    }
    check_all(&b, &m, &last, 1);

    /* Read out some of what is left line by line: it is the model's rest. */
    ssize_t line;
    for (int i = 0; i < 64 && (line = find_line(&b, &m)) >= 0; i++)
        consume(&b, &m, (size_t)line);
    check_all(&b, &m, &last, 1);

    ua_linebuf_free(&b);
    return 0;
}
