#include "linebuf.h"

#include <stdlib.h>
#include <string.h>

void ua_linebuf_init(ua_linebuf *b)
{
    memset(b, 0, sizeof(*b));
}

void ua_linebuf_free(ua_linebuf *b)
{
    free(b->data);
    ua_linebuf_init(b);
}

char *ua_linebuf_space(ua_linebuf *b, size_t want, size_t *room)
{
    if (!want)
        want = 1;
    if (b->cap - b->end < want) {
        size_t len = b->end - b->start;
        if (b->start && b->cap - len >= want && len <= b->cap / 2) {
            /* Enough room once the consumed front is reclaimed. */
            memmove(b->data, b->data + b->start, len);
        } else {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap - len < want) {
                if (cap > (size_t)-1 / 2)
                    return NULL;
                cap *= 2;
            }
            char *data = malloc(cap);
            if (!data)
                return NULL;
            if (len)
                memcpy(data, b->data + b->start, len);
            free(b->data);
            b->data = data;
            b->cap = cap;
        }
        b->end = len;
        b->start = 0;
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
    b->start += n;
    b->scanned = b->scanned > n ? b->scanned - n : 0;
    if (b->start == b->end) {
        /* Idle connections hold no buffer. */
        free(b->data);
        b->data = NULL;
        b->start = b->end = b->cap = b->scanned = 0;
    }
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
