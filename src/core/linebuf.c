#include "linebuf.h"

#include <stdlib.h>
#include <string.h>

static void *resize(const ua_linebuf *b, void *p, size_t n)
{
    if (b->mem)
        return b->mem(p, n);
    void *q = n ? realloc(p, n) : NULL;
    if (!q)
        free(p);   /* the same contract as a custom allocator's */
    return q;
}

void ua_linebuf_init(ua_linebuf *b)
{
    memset(b, 0, sizeof(*b));
}

void ua_linebuf_free(ua_linebuf *b)
{
    if (b->data)
        resize(b, b->data, 0);
    b->data = NULL;
    b->start = b->end = b->cap = b->scanned = 0;
}

/* The smallest doubling of from (UA_LINEBUF_FIRST_CAP if 0) that holds need, or 0. */
static size_t grown(size_t from, size_t need)
{
    size_t cap = from ? from : UA_LINEBUF_FIRST_CAP;
    while (cap < need) {
        if (cap > (size_t)-1 / 2)
            return 0;
        cap *= 2;
    }
    return cap;
}

char *ua_linebuf_space(ua_linebuf *b, size_t want, size_t *room)
{
    if (!want)
        want = 1;
    if (b->cap - b->end < want) {
        size_t len = b->end - b->start;
        if (want > (size_t)-1 - len)
            return NULL;
        size_t cap = b->cap - len >= want ? b->cap : grown(b->cap, len + want);
        if (!cap)
            return NULL;
        if (b->start) {
            /* Reclaim the consumed front first: realloc then moves (or
             * remaps) only live bytes. */
            memmove(b->data, b->data + b->start, len);
            b->start = 0;
            b->end = len;
        }
        if (cap != b->cap) {
            char *data = resize(b, b->data, cap);
            if (!data) {
                /* The block went with the failure: what was buffered is lost. */
                b->data = NULL;
                b->start = b->end = b->cap = b->scanned = 0;
                return NULL;
            }
            b->data = data;
            b->cap = cap;
        }
    }
    *room = b->cap - b->end;
    return b->data + b->end;
}

int ua_linebuf_append(ua_linebuf *b, const void *p, size_t n)
{
    if (!n)
        return 0;
    size_t room;
    char *dst = ua_linebuf_space(b, n, &room);
    if (!dst)
        return -1;
    memcpy(dst, p, n);
    b->end += n;
    return 0;
}

void ua_linebuf_commit(ua_linebuf *b, size_t n)
{
    b->end += n;
}

void ua_linebuf_consume(ua_linebuf *b, size_t n)
{
    if (n > b->end - b->start)
        n = b->end - b->start;   /* never past the end: start > end would make len() huge */
    b->start += n;
    b->scanned = b->scanned > n ? b->scanned - n : 0;
    if (b->start == b->end)
        ua_linebuf_free(b);   /* idle connections hold no buffer */
}

ssize_t ua_linebuf_find_line(ua_linebuf *b)
{
    size_t len = b->end - b->start;
    if (b->scanned >= len)
        return -1;
    const char *from = b->data + b->start + b->scanned;
    const char *nl = memchr(from, '\n', len - b->scanned);
    if (!nl) {
        b->scanned = len;
        return -1;
    }
    return (ssize_t)(nl - (b->data + b->start)) + 1;
}

char *ua_linebuf_detach(ua_linebuf *b, size_t n, size_t *cap)
{
    size_t rest = b->end - b->start - n;
    char *fresh = NULL;
    size_t fresh_cap = 0;
    if (rest) {
        fresh_cap = grown(0, rest);
        fresh = fresh_cap ? resize(b, NULL, fresh_cap) : NULL;
        if (!fresh)
            return NULL;
        memcpy(fresh, b->data + b->start + n, rest);
    }
    char *out = b->data;
    if (b->start && n)
        memmove(out, out + b->start, n);
    *cap = b->cap;
    b->scanned = b->scanned > n ? b->scanned - n : 0;
    b->data = fresh;
    b->cap = fresh_cap;
    b->start = 0;
    b->end = rest;
    return out;
}

void ua_linebuf_adopt(ua_linebuf *b, char *block, size_t cap, size_t start, size_t end)
{
    ua_linebuf_free(b);
    b->data = block;
    b->cap = cap;
    b->start = start;
    b->end = end;
}
